// Rootless barge: an unprivileged user's barge re-executes itself inside a user namespace in which
// it is root, mapped from the user's /etc/subuid and /etc/subgid ranges (`unshare --map-auto`,
// util-linux ≥ 2.38, which runs newuidmap/newgidmap), with a private mount namespace for its overlay
// mounts. Without ranges only the user's own id is mapped (to root), which suffices for images whose
// files all belong to root.
//
// This module is loaded by the entry before anything else, so it stays small: node builtins only.

import { spawn } from 'node:child_process';
import { accessSync, closeSync, constants, lstatSync, mkdirSync, readFileSync, writeSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';

/** Set (to the mapping mode) in the environment of the re-executed barge and everything it starts. */
export const USERNS_ENV = '_BARGE_USERNS';
/** The fd on which the re-executed barge reports that it started (so unshare's own failures are told apart). */
const READY_ENV = '_BARGE_USERNS_READY';

export type UsernsMode = 'full' | 'single';

export interface IdMapping {
  containerID: number;
  hostID: number;
  size: number;
}

/** The id map of this process's user namespace (/proc/self/uid_map or gid_map). */
export function readIdMap(kind: 'uid' | 'gid'): IdMapping[] {
  try {
    return parseIdMap(readFileSync(`/proc/self/${kind}_map`, 'utf8'));
  } catch {
    return [];
  }
}

export function parseIdMap(text: string): IdMapping[] {
  const out: IdMapping[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/).map(Number);
    if (f.length === 3 && f.every((n) => Number.isInteger(n))) out.push({ containerID: f[0]!, hostID: f[1]!, size: f[2]! });
  }
  return out;
}

/** The initial user namespace maps every id to itself: "0 0 4294967295". */
function isInitialMap(m: readonly IdMapping[]): boolean {
  return m.length === 1 && m[0]!.containerID === 0 && m[0]!.hostID === 0 && m[0]!.size === 4294967295;
}

let inNs: boolean | undefined;

/** Whether this process runs in a user namespace other than the initial one (any, not only barge's). */
export function inUserNamespace(): boolean {
  inNs ??= (() => {
    const m = readIdMap('uid');
    return m.length > 0 && !isInitialMap(m);
  })();
  return inNs;
}

/** Whether this process is a barge (or a child of one) inside the user namespace barge made. */
export function inBargeUserns(): boolean {
  return !!process.env[USERNS_ENV] && inUserNamespace();
}

/** The mapping mode of barge's namespace: `single` when only one uid is mapped. */
export function usernsMode(): UsernsMode {
  const total = readIdMap('uid').reduce((s, m) => s + m.size, 0);
  return total > 1 ? 'full' : 'single';
}

/** The uid this process has outside its user namespace (the user who ran barge). */
export function hostUid(): number {
  const uid = process.getuid?.() ?? 0;
  if (!inUserNamespace()) return uid;
  const m = readIdMap('uid').find((r) => uid >= r.containerID && uid < r.containerID + r.size);
  return m ? m.hostID + (uid - m.containerID) : uid;
}

/**
 * The runtime directory when $XDG_RUNTIME_DIR is unset: /tmp/barge-run-UID, created mode 0700. /tmp is
 * world-writable, so someone else could have made it first: it is used only if it is a real directory
 * of ours that nobody else can enter.
 */
export function privateRuntimeDir(): string {
  const dir = `/tmp/barge-run-${hostUid()}`;
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  const st = lstatSync(dir);
  if (!st.isDirectory() || st.uid !== process.getuid?.() || (st.mode & 0o077) !== 0) {
    throw new Error(`${dir} is not a private directory (mode 0700) of this user; remove it or set XDG_RUNTIME_DIR`);
  }
  return dir;
}

/** The first subordinate range of a user in /etc/subuid or /etc/subgid, looked up by name as util-linux does. */
export function subordinateRange(file: string, user: string): { start: number; count: number } | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const [name, start, count] = line.trim().split(':');
    if (name !== user || start === undefined || count === undefined) continue;
    const s = Number(start);
    const c = Number(count);
    if (Number.isInteger(s) && Number.isInteger(c) && c > 0) return { start: s, count: c };
  }
  return undefined;
}

// Global options that take a value (see main.ts); all must come before the command.
const VALUED_GLOBALS = new Set(['--root', '--runroot', '--storage-driver', '--log-level', '--runtime']);
const NO_STORE_COMMANDS = new Set(['help', 'version', 'completion']);

/** Whether this command line runs a command that touches the store (everything but help/version/completion). */
export function commandNeedsUserns(args: readonly string[]): boolean {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '-h' || a === '--help' || a === '-v' || a === '--version') return false;
    if (VALUED_GLOBALS.has(a)) {
      i++;
      continue;
    }
    if (a.startsWith('-')) {
      if (a.includes('=') && VALUED_GLOBALS.has(a.slice(0, a.indexOf('=')))) continue;
      // An unknown option: commander reports it, no namespace needed for that.
      return false;
    }
    return !NO_STORE_COMMANDS.has(a);
  }
  return false;
}

/** The name of the user who ran barge (inside the namespace getpwuid would answer "root"). */
export function userName(): string | undefined {
  if (!inUserNamespace()) {
    try {
      return userInfo().username;
    } catch {
      return undefined;
    }
  }
  const uid = String(hostUid());
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = line.split(':');
      if (f[2] === uid) return f[0];
    }
  } catch {
    // No user database.
  }
  return process.env.USER;
}

function executable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function findTool(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':').filter((d) => d !== ''), '/usr/local/bin', '/usr/bin', '/bin', '/usr/sbin', '/sbin'];
  return dirs.map((d) => join(d, name)).find(executable);
}

export const SUBID_HINT = (user: string): string =>
  `as root: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${user} (and install newuidmap/newgidmap, package uidmap)`;

/** Why barge cannot map a full id range for this user, or undefined when it can. */
function fullMappingProblem(user: string | undefined): string | undefined {
  if (!user) return `user ${process.getuid?.()} has no name in the user database`;
  const missing = ['/etc/subuid', '/etc/subgid'].filter((f) => !subordinateRange(f, user));
  if (missing.length) return `no subordinate id range for user "${user}" in ${missing.join(' and ')}`;
  const tools = ['newuidmap', 'newgidmap'].filter((t) => !findTool(t));
  if (tools.length) return `${tools.join(' and ')} not installed (package uidmap)`;
  return undefined;
}

/**
 * Whether this process must re-execute itself in barge's user namespace: not root, not already in it,
 * and a command that touches the store.
 */
export function needsReexec(args: readonly string[]): boolean {
  if ((process.getuid?.() ?? 0) === 0) return false;
  if (inBargeUserns()) return false;
  return commandNeedsUserns(args);
}

/** Whether we are in the foreground process group of a terminal, so keyboard signals reach the child as well. */
function inTerminalForeground(): boolean {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[4]) !== 0 && Number(f[5]) === Number(f[2]);
  } catch {
    return false;
  }
}

function kernelHint(): string {
  const read = (p: string): string | undefined => {
    try {
      return readFileSync(p, 'utf8').trim();
    } catch {
      return undefined;
    }
  };
  if (read('/proc/sys/kernel/unprivileged_userns_clone') === '0') return ' (unprivileged user namespaces are disabled: sysctl kernel.unprivileged_userns_clone=1)';
  if (read('/proc/sys/user/max_user_namespaces') === '0') return ' (user namespaces are disabled: sysctl user.max_user_namespaces)';
  return '';
}

/**
 * Re-executes barge (same node, same flags, same arguments, same stdio) inside a new user and mount
 * namespace and never returns: this process exits as the namespaced barge does (its exit status, or
 * the same signal). Signals sent to this process are forwarded.
 */
export function reexecInUserns(): Promise<never> {
  const user = userName();
  const problem = fullMappingProblem(user);
  const mode: UsernsMode = problem ? 'single' : 'full';
  if (problem) {
    process.stderr.write(
      `WARN[0000] ${problem}: running with a single uid/gid mapped (only files owned by root can be used); ` +
        `for full rootless support ${SUBID_HINT(user ?? 'USER')}\n`,
    );
  }
  const unshare = findTool('unshare');
  if (!unshare) {
    process.stderr.write('Error: barge needs unshare (util-linux 2.38 or later) to run rootless\n');
    process.exit(125);
  }
  const script = process.argv[1]!;
  const args = [
    '--user', ...(mode === 'full' ? ['--map-auto'] : []), '--map-root-user', '--mount', '--propagation', 'private', '--',
    process.execPath, ...process.execArgv, script, ...process.argv.slice(2),
  ];
  const env: NodeJS.ProcessEnv = { ...process.env, [USERNS_ENV]: mode, [READY_ENV]: '3' };
  // Inside, getpwuid(0) is root's entry: keep the user's home however it was found here.
  if (!env.HOME) env.HOME = homedir();
  // As rootless Podman does: runtime files (runroot, auth.json, ...) of a user without a session go
  // to a private directory, and everything barge starts agrees on where that is.
  if (!env.XDG_RUNTIME_DIR) {
    try {
      env.XDG_RUNTIME_DIR = privateRuntimeDir();
    } catch (e) {
      process.stderr.write(`Error: ${(e as Error).message}\n`);
      process.exit(125);
    }
  }

  return new Promise<never>(() => {
    const child = spawn(unshare, args, { stdio: ['inherit', 'inherit', 'inherit', 'pipe'], env });
    let started = false;
    child.stdio[3]?.on('data', () => (started = true));
    child.stdio[3]?.on('error', () => undefined);

    const forwarded: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'];
    const forward = (sig: NodeJS.Signals): void => {
      // ^C and hangups of the terminal already reached the child, which shares our process group.
      if ((sig === 'SIGINT' || sig === 'SIGHUP' || sig === 'SIGQUIT' || sig === 'SIGWINCH') && inTerminalForeground()) return;
      try {
        child.kill(sig);
      } catch {
        // Already gone.
      }
    };
    for (const s of forwarded) process.on(s, forward);

    child.on('error', (e) => {
      process.stderr.write(`Error: cannot start ${unshare}: ${e.message}\n`);
      process.exit(125);
    });
    // 'close' rather than 'exit': by then the start report on fd 3 has certainly been read.
    child.on('close', (code, signal) => {
      for (const s of forwarded) process.off(s, forward);
      if (signal) {
        process.kill(process.pid, signal);
        return;
      }
      if (!started && code !== 0) {
        process.stderr.write(
          `Error: cannot create a user namespace for rootless barge (unshare ${args.slice(0, args.indexOf('--')).join(' ')} exited ${code})` +
            `${kernelHint()}\n`,
        );
        process.exit(125);
      }
      process.exit(code ?? 125);
    });
  });
}

let namespaceOwner = false;

/**
 * Whether this barge created its user and mount namespace itself (it was re-executed, not started by
 * `barge unshare`): its mounts then vanish when it exits, so a mount path it prints is of no use to others.
 */
export function mountsEndWithProcess(): boolean {
  return namespaceOwner;
}

/** In the re-executed barge: tell the parent we started, and keep the fd from every child process. */
export function signalStarted(): void {
  const fd = Number(process.env[READY_ENV]);
  delete process.env[READY_ENV];
  if (!Number.isInteger(fd) || fd < 3) return;
  namespaceOwner = true;
  try {
    writeSync(fd, '1');
    closeSync(fd);
  } catch {
    // The parent went away; nothing to tell.
  }
}

/**
 * With a single mapped id, giving files any other owner fails with EINVAL. The error that reaches the
 * user then gets a line saying what to configure.
 */
export function explainSingleMappingErrors(): void {
  const write = process.stderr.write.bind(process.stderr);
  let hinted = false;
  const idError = /not mapped in this user namespace|EINVAL[^\n]*chown|invalid argument, [fl]?chown/i;
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]): boolean => {
    const ok = (write as (c: string | Uint8Array, ...r: unknown[]) => boolean)(chunk, ...rest);
    if (!hinted && idError.test(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString())) {
      hinted = true;
      write(
        `Error: only one uid and gid are mapped in barge's user namespace, so files and processes can only belong to root; ` +
          `${SUBID_HINT(userName() ?? 'USER')}\n`,
      );
    }
    return ok;
  }) as typeof process.stderr.write;
}
