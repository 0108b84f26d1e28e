// Rootless barge: an unprivileged user's barge re-executes itself inside a user namespace in which
// it is root, mapped from the user's /etc/subuid and /etc/subgid ranges (`unshare --map-auto`,
// util-linux ≥ 2.38, which runs newuidmap/newgidmap), with a private mount namespace for its overlay
// mounts. Without ranges only the user's own id is mapped (to root), which suffices for images whose
// files all belong to root.
//
// This module is loaded by the entry before anything else, so it stays small: node builtins only.

import { GLOBAL_VALUE_OPTIONS } from '../cli/command-line.ts';
import { childProcess } from './lazy-builtins.ts';
import { livePause, lockPause, PAUSE_FILE, startPause } from './pause.ts';
import { inTerminalForeground } from './proc.ts';
import { accessSync, closeSync, constants, lstatSync, mkdirSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';

/** Set (to the mapping mode) in the environment of the re-executed barge and everything it starts. */
export const USERNS_ENV = '_BARGE_USERNS';
/** The fd on which the re-executed barge reports that it started (so unshare's own failures are told apart). */
const READY_ENV = '_BARGE_USERNS_READY';
/**
 * Set for a re-executed barge: `held` when a pause process keeps the namespaces (they outlive this
 * barge), or the file in which the barge that has just made them records the pause it starts.
 */
const PAUSE_ENV = '_BARGE_USERNS_PAUSE';
/**
 * Left in the runtime directory once a re-executed barge started with the full mapping: from then on
 * bin/barge enters the namespace itself (`exec unshare …`), which saves this process's start-up and
 * keeps barge one process. Removing it (or a reboot) brings back the checks made here.
 */
const FULL_MAPPING_MARKER = join('barge', 'userns-full');

/**
 * full: the user's subordinate ranges; single: only the user's own id; identity: root without
 * CAP_SYS_ADMIN (an unprivileged container) maps every id it has to itself.
 */
export type UsernsMode = 'full' | 'single' | 'identity';

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
  // A full identity map reads like the initial namespace's, so that one is taken on barge's word.
  return !!process.env[USERNS_ENV] && (inUserNamespace() || process.env[USERNS_ENV] === 'identity');
}

/** The mapping mode of barge's namespace: `single` when only one uid is mapped. */
export function usernsMode(): UsernsMode {
  if (process.env[USERNS_ENV] === 'identity' && inBargeUserns()) return 'identity';
  const total = readIdMap('uid').reduce((s, m) => s + m.size, 0);
  return total > 1 ? 'full' : 'single';
}

/** The uid this process has outside its user namespace (the user who ran barge). */
export function hostUid(): number {
  return hostId('uid', process.getuid?.() ?? 0);
}

/** The gid this process has outside its user namespace. */
export function hostGid(): number {
  return hostId('gid', process.getgid?.() ?? 0);
}

function hostId(kind: 'uid' | 'gid', id: number): number {
  if (!inUserNamespace()) return id;
  const m = readIdMap(kind).find((r) => id >= r.containerID && id < r.containerID + r.size);
  return m ? m.hostID + (id - m.containerID) : id;
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

const NO_STORE_COMMANDS = new Set(['help', 'version', 'completion']);

/** Whether this command line runs a command that touches the store (everything but help/version/completion). */
export function commandNeedsUserns(args: readonly string[]): boolean {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '-h' || a === '--help' || a === '-v' || a === '--version') return false;
    if (GLOBAL_VALUE_OPTIONS.has(a)) {
      i++;
      continue;
    }
    if (a.startsWith('-')) {
      if (a.includes('=') && GLOBAL_VALUE_OPTIONS.has(a.slice(0, a.indexOf('=')))) continue;
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
  if ((process.getuid?.() ?? 0) === 0 && hasCapability(CAP_SYS_ADMIN)) return false;
  if (inBargeUserns()) return false;
  return commandNeedsUserns(args);
}

const CAP_SETGID = 6;
const CAP_SETUID = 7;
const CAP_SYS_ADMIN = 21;

/** Whether this process holds capability NUMBER in its effective set (in its own user namespace). */
function hasCapability(n: number): boolean {
  try {
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return !!m && ((BigInt(`0x${m[1]}`) >> BigInt(n)) & 1n) === 1n;
  } catch {
    return false;
  }
}

/**
 * Root that may not mount (an unprivileged container: no CAP_SYS_ADMIN) can still make a user
 * namespace and, holding CAP_SETUID/CAP_SETGID where it is, map into it every id it has, each to
 * itself: files keep their numeric owners and barge gets the mount rights it needs there.
 */
function identityMappingPossible(): boolean {
  return (process.getuid?.() ?? 0) === 0 && hasCapability(CAP_SETUID) && hasCapability(CAP_SETGID);
}

/** "ID ID SIZE" lines mapping each range of this process's own namespace to itself. */
function identityMapText(kind: 'uid' | 'gid'): string {
  const own = readIdMap(kind);
  const ranges = own.length ? own : [{ containerID: 0, hostID: 0, size: 4294967295 }];
  return ranges.map((r) => `${r.containerID} ${r.containerID} ${r.size}\n`).join('');
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
  const identity = identityMappingPossible();
  const problem = identity ? undefined : fullMappingProblem(user);
  const mode: UsernsMode = identity ? 'identity' : problem ? 'single' : 'full';
  if (problem) {
    process.stderr.write(
      `WARN[0000] ${problem}: running with a single uid/gid mapped (only files owned by root can be used); ` +
        `for full rootless support ${SUBID_HINT(user ?? 'USER')}\n`,
    );
  }
  const script = process.argv[1]!;
  // "--": see bin/barge (node would read an --env-file among barge's arguments).
  const self = [process.execPath, ...process.execArgv, '--', script, ...process.argv.slice(2)];
  const env: NodeJS.ProcessEnv = { ...process.env, [USERNS_ENV]: mode, [READY_ENV]: '3' };
  // Inside, getpwuid(0) is root's entry: keep the user's home however it was found here.
  if (!env.HOME) env.HOME = homedir();
  // As rootless Podman does: runtime files (runroot, auth.json, ...) of a user without a session go
  // to a private directory, and everything barge starts agrees on where that is.
  if (!env.XDG_RUNTIME_DIR && mode !== 'identity') {
    try {
      env.XDG_RUNTIME_DIR = privateRuntimeDir();
    } catch (e) {
      process.stderr.write(`Error: ${(e as Error).message}\n`);
      process.exit(125);
    }
  }
  const rt = env.XDG_RUNTIME_DIR;
  let release = rt ? lockPause(rt) : (): void => undefined;
  const pause = rt ? livePause(rt) : undefined;
  let tool: string | undefined;
  let args: string[];
  const joining = !!pause && pause.mode === mode;
  if (pause && joining) {
    // Join the namespaces of the user's earlier barges. --preserve-credentials: the user's own ids are
    // root's in there already, and a namespace of one mapped id refuses setgroups. --wd=.: the
    // directory is opened before the mount namespace changes (the same tree: it follows the host's).
    tool = findTool('nsenter');
    args = ['--user', '--mount', '--target', String(pause.pid), '--preserve-credentials', '--wd=.', '--', ...self];
    env[PAUSE_ENV] = 'held';
    release();
    release = (): void => undefined;
  } else {
    tool = findTool('unshare');
    // In identity mode barge writes the maps itself. unshare then runs a shell that reports the new
    // namespace and waits for the maps before starting barge: a program started before its uid is
    // mapped would lose its capabilities at exec. Propagation slave: mounts made on the host later
    // (a CI job's work directory) still appear in the namespace, which outlives this command.
    args =
      mode === 'identity'
        ? ['--user', '--mount', '--propagation', 'slave', '--', findTool('sh') ?? '/bin/sh', '-c', 'echo >&3 && read -r _ <&3 && exec "$@"', 'sh', ...self]
        : ['--user', ...(mode === 'full' ? ['--map-auto'] : []), '--map-root-user', '--mount', '--propagation', 'slave', '--', ...self];
    if (rt) env[PAUSE_ENV] = join(rt, PAUSE_FILE);
  }
  if (!tool) {
    process.stderr.write('Error: barge needs unshare and nsenter (util-linux 2.38 or later) to run rootless\n');
    process.exit(125);
  }
  const unshare = tool;

  return new Promise<never>(() => {
    const child = childProcess().spawn(unshare, args, { stdio: ['inherit', 'inherit', 'inherit', 'pipe'], env });
    let started = false;
    // Joined namespaces have their maps already.
    let mapped = mode !== 'identity' || joining;
    child.stdio[3]?.on('data', () => {
      if (mapped) {
        if (!started && mode === 'full' && env.XDG_RUNTIME_DIR) {
          try {
            mkdirSync(join(env.XDG_RUNTIME_DIR, 'barge'), { recursive: true, mode: 0o700 });
            writeFileSync(join(env.XDG_RUNTIME_DIR, FULL_MAPPING_MARKER), '');
          } catch {
            // Only a shortcut for later runs.
          }
        }
        started = true;
        release();
        return;
      }
      mapped = true;
      try {
        writeFileSync(`/proc/${child.pid}/uid_map`, identityMapText('uid'));
        writeFileSync(`/proc/${child.pid}/gid_map`, identityMapText('gid'));
      } catch (e) {
        process.stderr.write(`Error: cannot map ids into barge's user namespace: ${(e as Error).message}\n`);
        child.kill('SIGKILL');
        return;
      }
      (child.stdio[3] as NodeJS.WritableStream).write('\n');
    });
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
      release();
      for (const s of forwarded) process.off(s, forward);
      if (signal) {
        process.kill(process.pid, signal);
        return;
      }
      if (!started && code !== 0) {
        process.stderr.write(
          `Error: cannot ${joining ? 'enter' : 'create'} a user namespace for rootless barge (${unshare.split('/').pop()} ${args.slice(0, args.indexOf('--')).join(' ')} exited ${code})` +
            `${kernelHint()}\n`,
        );
        process.exit(125);
      }
      process.exit(code ?? 125);
    });
  });
}

let namespaceOwner = false;
let namespaceHeld = false;

/**
 * Whether this barge's mounts vanish when it exits: it entered barge's namespaces itself (it was
 * re-executed, not started by `barge unshare`) and no pause process keeps them.
 */
export function mountsEndWithProcess(): boolean {
  return namespaceOwner && !namespaceHeld;
}

/**
 * Whether this barge was re-executed into its namespaces rather than started inside them by `barge
 * unshare`: a mount path it printed would mean nothing to the shell that ran it.
 */
export function outsideUnshareSession(): boolean {
  return namespaceOwner;
}

/**
 * In the re-executed barge: start the pause process when this barge made the namespaces, tell the
 * parent we started, and keep the fd from every child process.
 */
export function signalStarted(): void {
  const ready = process.env[READY_ENV];
  const pause = process.env[PAUSE_ENV];
  delete process.env[READY_ENV];
  delete process.env[PAUSE_ENV];
  namespaceHeld = pause === 'held' || (pause !== undefined && startPause(pause, usernsMode()));
  // bin/barge made the namespace and exec'd this process into it: nobody waits for a report.
  if (ready === 'exec') {
    namespaceOwner = true;
    return;
  }
  const fd = Number(ready);
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

/** What --userns, --userns-uid-map/--uidmap and friends ask for a container's processes. */
export interface UsernsRequest {
  /** host, private/container/auto (a new namespace), keep-id[:uid=U,gid=G], nomap, ns:PATH or a path. */
  userns?: string;
  uidMap?: readonly string[];
  gidMap?: readonly string[];
  /** --userns-uid-map-user: the uid map is this user's /etc/subuid ranges. */
  uidMapUser?: string;
  /** --userns-gid-map-group: the gid map is this group's /etc/subgid ranges. */
  gidMapGroup?: string;
}

/** The user namespace of a container, kept with a working container so every run uses it. */
export interface ContainerUserns {
  /** Maps from container ids to ids of barge's own namespace (the runtime's); absent: no new namespace. */
  uidMappings?: IdMapping[];
  gidMappings?: IdMapping[];
  /** An existing user namespace to join (ns:PATH). */
  path?: string;
  /** keep-id: the process runs as this uid:gid unless --user says otherwise. */
  user?: { uid: number; gid: number };
}

/** "C:H:S" triples, comma-separated and/or repeated, as Buildah's --userns-uid-map and Podman's --uidmap take them. */
export function parseIdMapSpecs(flag: string, specs: readonly string[]): IdMapping[] {
  const out: IdMapping[] = [];
  for (const spec of specs.flatMap((s) => s.split(',')).map((s) => s.trim()).filter((s) => s !== '')) {
    const f = spec.split(':');
    const n = f.map((x) => (/^\d+$/.test(x) ? Number(x) : NaN));
    if (f.length !== 3 || !n.every((x) => Number.isSafeInteger(x) && x <= 0xffffffff) || n[2] === 0) {
      throw new Error(`invalid ${flag} "${spec}": expected CONTAINER-ID:HOST-ID:SIZE`);
    }
    out.push({ containerID: n[0]!, hostID: n[1]!, size: n[2]! });
  }
  return out;
}

/** All ranges of NAME in a subordinate id file, as a map starting at container id 0 (for --userns-uid-map-user). */
function subordinateMap(file: string, name: string): IdMapping[] {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    // Reported below as no ranges.
  }
  const out: IdMapping[] = [];
  let next = 0;
  for (const line of text.split('\n')) {
    const [n, s, c] = line.trim().split(':');
    if (n !== name || !/^\d+$/.test(s ?? '') || !/^\d+$/.test(c ?? '') || Number(c) === 0) continue;
    out.push({ containerID: next, hostID: Number(s), size: Number(c) });
    next += Number(c);
  }
  if (!out.length) throw new Error(`no ranges for "${name}" in ${file}`);
  return out;
}

/** The ids this process can hand to a container: those its own namespace maps, as one identity map. */
function availableIds(kind: 'uid' | 'gid'): IdMapping[] {
  const own = readIdMap(kind);
  if (!own.length) return [{ containerID: 0, hostID: 0, size: 4294967295 }];
  return own.map((m) => ({ containerID: m.containerID, hostID: m.containerID, size: m.size }));
}

function covered(avail: readonly IdMapping[], m: IdMapping): boolean {
  // Adjacent ranges (barge's own id, then the subordinate ones) count as one.
  let from = m.hostID;
  const end = m.hostID + m.size;
  for (const a of [...avail].sort((x, y) => x.hostID - y.hostID)) {
    if (a.hostID <= from && from < a.hostID + a.size) from = a.hostID + a.size;
    if (from >= end) return true;
  }
  return false;
}

/**
 * The maps cut wherever the ranges of this process's own namespace meet: the kernel wants each line
 * of a child's map inside one line of its parent's (0 → the user, 1… → the subordinate range).
 */
function splitAtExtents(maps: readonly IdMapping[], avail: readonly IdMapping[]): IdMapping[] {
  const cuts = [...new Set(avail.flatMap((a) => [a.hostID, a.hostID + a.size]))].sort((x, y) => x - y);
  const out: IdMapping[] = [];
  for (const m of maps) {
    let start = m.hostID;
    const end = m.hostID + m.size;
    for (const c of [...cuts.filter((c) => c > start && c < end), end]) {
      out.push({ containerID: m.containerID + (start - m.hostID), hostID: start, size: c - start });
      start = c;
    }
  }
  return out;
}

/**
 * barge keeps container files owned as in the image (it does not shift a copy of the layers for each
 * mapping), and its store is private to its own root: a map must give that root some id in the container.
 */
function checkRootMapped(uid: readonly IdMapping[], gid: readonly IdMapping[], what: string): void {
  const maps0 = (m: readonly IdMapping[]): boolean => m.some((r) => r.hostID === 0);
  if (!maps0(uid) || !maps0(gid)) {
    throw new Error(
      `${what} leaves id 0 of ${(process.getuid?.() ?? 0) !== 0 || process.env[USERNS_ENV] ? "barge's user namespace (your own uid)" : 'the host'} unmapped, ` +
        'which barge does not support: container files are not shifted to the map, so the container could not reach its root filesystem',
    );
  }
}

/** Total count of contiguous ids from 0 that this namespace maps. */
function contiguousFromZero(avail: readonly IdMapping[]): number {
  let n = 0;
  for (const a of [...avail].sort((x, y) => x.hostID - y.hostID)) {
    if (a.hostID > n) break;
    n = Math.max(n, a.hostID + a.size);
  }
  return n;
}

/**
 * Podman's keep-id: container id ID is barge's 0 (the user on the host); 0..ID-1 come from the ids
 * after it, and ids above ID keep their numbers, so the image's other owners stay usable.
 */
function keepIdMap(id: number, total: number): IdMapping[] {
  const out: IdMapping[] = [];
  const below = Math.min(id, total - 1);
  if (below > 0) out.push({ containerID: 0, hostID: 1, size: below });
  out.push({ containerID: id, hostID: 0, size: 1 });
  if (id + 1 < total) out.push({ containerID: id + 1, hostID: id + 1, size: total - id - 1 });
  return out;
}

/** Turns the command-line request into the namespace a container runs in; throws on what cannot be honoured. */
export function resolveContainerUserns(r: UsernsRequest): ContainerUserns {
  const explicitUid = r.uidMapUser ? subordinateMap('/etc/subuid', r.uidMapUser) : parseIdMapSpecs('uid map', r.uidMap ?? []);
  const gidName = r.gidMapGroup ?? r.uidMapUser;
  const explicitGid = gidName ? subordinateMap('/etc/subgid', gidName) : parseIdMapSpecs('gid map', r.gidMap ?? []);
  const mode = (r.userns ?? '').trim();
  const [kind, optText] = [mode.split(':')[0]!, mode.includes(':') ? mode.slice(mode.indexOf(':') + 1) : ''];
  const rootless = (process.getuid?.() ?? 0) !== 0 || !!process.env[USERNS_ENV];

  if (explicitUid.length || explicitGid.length) {
    if (mode !== '' && kind !== 'private' && kind !== 'container' && kind !== 'auto') {
      throw new Error(`--userns=${mode} cannot be combined with explicit uid/gid maps`);
    }
    const uid = explicitUid.length ? explicitUid : explicitGid;
    const gid = explicitGid.length ? explicitGid : explicitUid;
    for (const [what, maps] of [['uid', uid], ['gid', gid]] as const) {
      const avail = availableIds(what);
      const bad = maps.find((m) => !covered(avail, m));
      if (bad) {
        throw new Error(
          `${what} map ${bad.containerID}:${bad.hostID}:${bad.size} uses ids that are not mapped into ${rootless ? "barge's user namespace" : 'this system'}` +
            (rootless ? ` (rootless maps are relative to it: ids 0-${contiguousFromZero(avail) - 1})` : ''),
        );
      }
    }
    checkRootMapped(uid, gid, 'the uid/gid map');
    return { uidMappings: splitAtExtents(uid, availableIds('uid')), gidMappings: splitAtExtents(gid, availableIds('gid')) };
  }

  switch (kind) {
    case '':
    case 'host':
      return {};
    case 'container':
    case 'private':
    case 'auto':
      // Buildah's "container" is a new namespace; Podman's container:ID would join another one's.
      if (kind === 'container' && optText) throw new Error(`--userns=${mode}: joining another container's user namespace is not supported`);
      // A namespace of the container's own that maps the same ids: files keep their owners, while
      // the container's root holds its capabilities only over its own namespace.
      return { uidMappings: availableIds('uid'), gidMappings: availableIds('gid') };
    case 'keep-id':
    case 'nomap': {
      // nomap is refused below (checkRootMapped), after the rootless check Podman makes first.
      if (!rootless) throw new Error(`--userns=${kind} is only supported in rootless mode`);
      const total = Math.min(contiguousFromZero(availableIds('uid')), contiguousFromZero(availableIds('gid')));
      if (kind === 'nomap') checkRootMapped([], [], '--userns=nomap');
      let uid = hostUid();
      let gid = hostGid();
      for (const o of optText.split(',').filter((x) => x !== '')) {
        const m = /^(uid|gid)=(\d+)$/.exec(o);
        if (!m) throw new Error(`invalid --userns=keep-id option "${o}" (uid=UID, gid=GID)`);
        if (m[1] === 'uid') uid = Number(m[2]);
        else gid = Number(m[2]);
      }
      return { uidMappings: keepIdMap(uid, total), gidMappings: keepIdMap(gid, total), user: { uid, gid } };
    }
    case 'ns':
      if (!optText.startsWith('/')) throw new Error(`invalid --userns=${mode}: ns: takes an absolute path`);
      return { path: optText };
    default:
      if (mode.startsWith('/')) return { path: mode };
      throw new Error(`invalid --userns "${mode}" (host, private, auto, keep-id, nomap, ns:PATH)`);
  }
}
