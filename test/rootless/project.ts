// The "rootless" vitest project: the black-box suites run a second time as an unprivileged user
// with subordinate id ranges, as a CI builder would. The main vitest process stays root (it made
// the user); each worker drops to that user before any test file is loaded, so barge, the test's
// own files and every helper the test starts are that user's, with its own HOME and TMPDIR.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, removeTree } from '../helpers.ts';

/** Set in the environment of the rootless project's workers: the user's name. */
export const ROOTLESS_USER_ENV = 'BARGE_TEST_USER';
export const ROOTLESS_USER = 'bargeci';
/** Its subordinate ranges; disjoint from those of the users test/rootless makes. */
export const ROOTLESS_SUBIDS = '400000-465535';

declare module 'vitest' {
  export interface ProvidedContext {
    /** This run's directory for the rootless project (see rootlessDirs). */
    bargeRootlessBase: string;
  }
}


/** HOME, TMPDIR and XDG_RUNTIME_DIR of the user under a run's base (a CI job with a session). */
export function rootlessDirs(base: string): { home: string; tmp: string; run: string } {
  return { home: join(base, 'h'), tmp: join(base, 't'), run: join(base, 'r') };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Global setup (as root): the user exists with its ranges, and this run gets fresh HOME, TMPDIR and
 * runtime directories of the user's, under a base named after this process (short: podman, which
 * some tests compare against, refuses a runroot path over 50 characters). Bases of runs that are
 * gone are removed (they hold files of the user's subordinate ids, which only root can delete);
 * those of runs still going, e.g. another engineer's, are left alone.
 */
export async function prepareRootlessUser(): Promise<string> {
  const { ensureUser, assertUserCanRunBarge } = await import('./lib.ts');
  const user = ensureUser(ROOTLESS_USER, ROOTLESS_SUBIDS);
  assertUserCanRunBarge(user);
  for (const name of readdirSync('/tmp')) {
    const pid = /^bci-(\d+)$/.exec(name)?.[1];
    if (pid === undefined || Number(pid) === process.pid || alive(Number(pid))) continue;
    if (statSync(join('/tmp', name)).uid === user.uid) await removeTree(join('/tmp', name));
  }
  const base = `/tmp/bci-${process.pid}`;
  if (existsSync(base)) await removeTree(base);
  const { home, tmp, run } = rootlessDirs(base);
  for (const d of [base, home, tmp, run]) {
    mkdirSync(d, { mode: 0o700 });
    execFileSync('chown', [`${user.uid}:${user.gid}`, d]);
  }
  // A first barge run, as any CI job has made by its second command: barge finds the mapping works
  // and from then on bin/barge enters the namespace itself, so the pid a test starts is barge's
  // (test/store/crash.test.ts kills it). The first-run path is tested in test/rootless.
  execFileSync('setpriv', ['--reuid', String(user.uid), '--regid', String(user.gid), '--init-groups', join(REPO_ROOT, 'bin', 'barge'), 'info'], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, XDG_RUNTIME_DIR: run, USER: ROOTLESS_USER },
    stdio: 'ignore',
  });
  if (!existsSync(join(run, 'barge', 'userns-full'))) throw new Error(`barge did not enter its user namespace as ${ROOTLESS_USER}`);
  // The Debian base with gcc that build tests import is made by debootstrap, which needs root.
  execFileSync('bash', [join(REPO_ROOT, 'scripts', 'bench', 'debootstrap-base.sh')], {
    env: { ...process.env, DEBOOTSTRAP_INCLUDE: 'gcc,libc6-dev' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return base;
}
