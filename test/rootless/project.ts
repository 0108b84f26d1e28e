// The "rootless" vitest project: the black-box suites run a second time as an unprivileged user
// with subordinate id ranges, as a CI builder would. The main vitest process stays root (it made
// the user); each worker drops to that user before any test file is loaded, so barge, the test's
// own files and every helper the test starts are that user's, with its own HOME and TMPDIR.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, removeTree } from '../helpers.ts';

/** Set in the environment of the rootless project's workers: the user's name. */
export const ROOTLESS_USER_ENV = 'BARGE_TEST_USER';
export const ROOTLESS_USER = 'bargeci';
/** Its subordinate ranges; disjoint from those of the users test/rootless makes. */
export const ROOTLESS_SUBIDS = '400000-465535';

/** Everything the rootless project's tests write lives below this directory (owned by the user). */
export function rootlessBase(uid: number): string {
  // Short: podman, which some tests compare against, refuses a runroot path over 50 characters.
  return `/tmp/bci-${uid}`;
}

/** HOME, TMPDIR and XDG_RUNTIME_DIR of the user for these tests (a CI job with a session). */
export function rootlessDirs(uid: number): { home: string; tmp: string; run: string } {
  const base = rootlessBase(uid);
  return { home: join(base, 'h'), tmp: join(base, 't'), run: join(base, 'r') };
}

/**
 * Global setup (as root): the user exists with its ranges, and it gets fresh HOME and TMPDIR
 * directories. The previous run's are removed first (they hold files of the user's subordinate
 * ids, which only root, or barge unshare, can delete).
 */
export async function prepareRootlessUser(): Promise<void> {
  const { ensureUser, assertUserCanRunBarge } = await import('./lib.ts');
  const user = ensureUser(ROOTLESS_USER, ROOTLESS_SUBIDS);
  assertUserCanRunBarge(user);
  const base = rootlessBase(user.uid);
  if (existsSync(base)) {
    await removeTree(base);
  }
  const { home, tmp, run } = rootlessDirs(user.uid);
  for (const d of [base, home, tmp, run]) {
    mkdirSync(d, { mode: 0o700 });
    execFileSync('chown', [`${user.uid}:${user.gid}`, d]);
  }
  // The Debian base with gcc that build tests import is made by debootstrap, which needs root.
  execFileSync('bash', [join(REPO_ROOT, 'scripts', 'bench', 'debootstrap-base.sh')], {
    env: { ...process.env, DEBOOTSTRAP_INCLUDE: 'gcc,libc6-dev' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}
