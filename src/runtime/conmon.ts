// Starts a detached container under conmon, the monitor Podman uses, and drives the OCI runtime
// for the verbs that act on a created container (start, kill, delete, state).
//
// conmon (api version 1) forks itself into the background at once; the daemonised monitor runs
// `RUNTIME create`, reports the container's pid (or the runtime's error) as one JSON line on the
// sync pipe (fd 3, named by $_OCI_SYNCPIPE), and keeps watching. When the container exits it
// writes the exit code to EXIT-DIR/ID and runs the exit command. barge itself never stays running.

import type { ChildProcess } from 'node:child_process';
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { exec } from '../sys/exec.ts';
import { childProcess } from '../sys/lazy-builtins.ts';
import { warmCgroupAttach } from './cgroup-warmup.ts';
import { classifyRuntimeError, type RuntimeInfo, type StartFailure } from './oci-runtime.ts';

const CONMON_DIRS = ['/usr/bin', '/usr/local/bin', '/usr/libexec/podman', '/usr/local/libexec/podman', '/usr/lib/podman', '/usr/sbin'];

/** Path of conmon: $BARGE_CONMON, $PATH, then the places distributions put it. */
export function findConmon(): string {
  const env = process.env['BARGE_CONMON'];
  const dirs = [...(process.env['PATH'] ?? '').split(':').filter((d) => d !== ''), ...CONMON_DIRS];
  const candidates = env ? [env] : dirs.map((d) => path.join(d, 'conmon'));
  for (const p of candidates) {
    try {
      if (!statSync(p).isFile()) continue;
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  throw new Error('conmon not found: install it (Debian package "conmon") to run detached containers');
}

/** A failure to create or start the container process, with Podman's exit code (125/126/127). */
export class ContainerStartError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = 'ContainerStartError';
  }
}

export interface ConmonOptions {
  conmon?: string;
  runtime: RuntimeInfo;
  /** Runtime --root. */
  stateRoot: string;
  id: string;
  name: string;
  /** Holds config.json; conmon also puts its attach socket and fifos here. */
  bundleDir: string;
  /** Where conmon writes EXITDIR/ID. */
  exitDir: string;
  /** Short directory for the attach-socket symlink (socket paths are limited to 108 bytes). */
  socketDir: string;
  containerPidFile: string;
  conmonPidFile: string;
  /** k8s-file path, or null for no log. */
  logPath: string | null;
  terminal?: boolean;
  stdin?: boolean;
  /** Program and arguments conmon runs after the container exits. */
  exitCommand?: string[];
  /** The command the container runs, for error messages. */
  arg0: string;
  /**
   * Restore from this CRIU image directory instead of creating afresh: conmon then runs
   * `RUNTIME restore --detach`, and the container is already running when this resolves.
   */
  /**
   * A descriptor conmon only holds open for its life (after the sync pipe), so that a process
   * polling the other end learns when conmon, and so the container, is gone.
   */
  heldFd?: number;
  restore?: { imagePath: string; runtimeOpts: string[] };
  /** Descriptors 3 to 3+N-1 of this process passed on into the container (--preserve-fds). */
  preserveFds?: number;
  /** Seconds after which conmon kills the container (--timeout); its exit code is then -1. */
  timeout?: number;
}

export interface ConmonStarted {
  /** The container's init pid (created, not yet started). */
  pid: number;
  conmonPid: number;
}

/** The arguments every conmon session takes; the runtime's own errors go to BUNDLE/oci-log as JSON. */
function commonArgs(a: {
  containerId: string; sessionId: string; runtime: string; bundle: string; pidFile: string; name: string;
  exitDir: string; socketDir: string; log: string; stateRoot: string;
}): string[] {
  return [
    '--api-version', '1',
    '-c', a.containerId,
    '-u', a.sessionId,
    '-r', a.runtime,
    '-b', a.bundle,
    '-p', a.pidFile,
    '-n', a.name,
    '--exit-dir', a.exitDir,
    '--socket-dir-path', a.socketDir,
    '-l', a.log,
    '--log-level', 'error',
    '--runtime-arg', '--root', '--runtime-arg', a.stateRoot,
    '--runtime-arg', '--log-format=json',
    '--runtime-arg', `--log=${path.join(a.bundle, 'oci-log')}`,
  ];
}

/**
 * Runs conmon and waits until the runtime has created the container (not started it: call
 * runtimeStart next). Throws ContainerStartError when the runtime refuses.
 */
export async function createWithConmon(o: ConmonOptions): Promise<ConmonStarted> {
  warmCgroupAttach();
  await mkdir(o.exitDir, { recursive: true, mode: 0o700 });
  await mkdir(o.socketDir, { recursive: true, mode: 0o700 });
  await mkdir(o.stateRoot, { recursive: true, mode: 0o700 });
  await rm(path.join(o.exitDir, o.id), { force: true });
  const args = [
    ...commonArgs({
      containerId: o.id, sessionId: o.id, runtime: o.runtime.path, bundle: o.bundleDir, pidFile: o.containerPidFile, name: o.name,
      exitDir: o.exitDir, socketDir: o.socketDir, log: o.logPath ? `k8s-file:${o.logPath}` : 'none:', stateRoot: o.stateRoot,
    }),
    '--conmon-pidfile', o.conmonPidFile,
  ];
  if (o.restore) {
    args.push('--restore', o.restore.imagePath);
    for (const opt of o.restore.runtimeOpts) args.push('--runtime-opt', opt);
  }
  if (o.terminal) args.push('-t');
  const preserved = o.preserveFds ?? 0;
  // conmon has no option of its own for them: the runtime's create takes them from conmon.
  if (preserved > 0) args.push('--runtime-opt', '--preserve-fds', '--runtime-opt', String(preserved));
  if (o.timeout) args.push('--timeout', String(o.timeout));
  // An attach client that detaches (or reaches the end of its input) must not close the
  // container's stdin: the next one attaches to the same session.
  if (o.stdin) args.push('-i', '--leave-stdin-open');
  if (o.exitCommand && o.exitCommand.length > 0) {
    args.push('--exit-command', o.exitCommand[0]!);
    for (const a of o.exitCommand.slice(1)) args.push('--exit-command-arg', a);
  }
  // Preserved descriptors keep their numbers; the sync pipe comes after them.
  const kept = Array.from({ length: preserved }, (_, i) => 3 + i);
  warmCgroupAttach();
  const child = childProcess().spawn(o.conmon ?? findConmon(), args, {
    stdio: ['ignore', 'ignore', 'ignore', ...kept, 'pipe', ...(o.heldFd !== undefined ? [o.heldFd] : [])],
    env: { ...process.env, _OCI_SYNCPIPE: String(3 + preserved) },
    detached: true,
  });
  child.unref();
  const sync = new ConmonMessages(child.stdio[3 + preserved] as Readable, child);
  const msg = await sync.next();
  sync.close();
  if (!msg) throw new Error('conmon exited without reporting the container (see its log in syslog)');
  if (msg.data <= 0) {
    const f = classifyRuntimeError((msg.message ?? 'container create failed').trim(), o.arg0);
    throw new ContainerStartError(`${o.runtime.name}: ${f.message}`, f.code);
  }
  let conmonPid = 0;
  try {
    conmonPid = Number(readFileSync(o.conmonPidFile, 'utf8').trim()) || 0;
  } catch {
    // conmon writes it before creating the container; a missing file only loses a detail.
  }
  return { pid: msg.data, conmonPid };
}

interface ConmonMessage {
  data: number;
  message?: string;
}

/**
 * conmon's messages on a pipe (the sync pipe, the attach pipe): one JSON object a line, such as
 * {"data": PID} or {"data": -1, "message": "why"}.
 */
class ConmonMessages {
  private buf = '';
  private readonly queue: (ConmonMessage | Error | null)[] = [];
  private waiter: ((m: ConmonMessage | Error | null) => void) | undefined;

  constructor(
    private readonly stream: Readable,
    child: ChildProcess,
  ) {
    stream.on('data', (b: Buffer) => {
      this.buf += b.toString();
      for (let nl = this.buf.indexOf('\n'); nl >= 0; nl = this.buf.indexOf('\n')) {
        const line = this.buf.slice(0, nl).trim();
        this.buf = this.buf.slice(nl + 1);
        if (line !== '') this.push(parseMessage(line));
      }
    });
    stream.once('end', () => this.push(null));
    stream.once('error', (e) => this.push(e));
    child.once('error', (e) => this.push(e));
  }

  private push(m: ConmonMessage | Error | null): void {
    const w = this.waiter;
    this.waiter = undefined;
    if (w) w(m);
    else this.queue.push(m);
  }

  /** The next message; null once conmon closed the pipe. */
  async next(): Promise<ConmonMessage | null> {
    const m = this.queue.length > 0 ? this.queue.shift()! : await new Promise<ConmonMessage | Error | null>((r) => (this.waiter = r));
    if (m instanceof Error) throw m;
    return m;
  }

  close(): void {
    this.stream.removeAllListeners('data');
    this.stream.destroy();
  }
}

function parseMessage(line: string): ConmonMessage | Error {
  try {
    const j = JSON.parse(line) as { data?: unknown; message?: unknown };
    if (typeof j.data === 'number') return { data: j.data, ...(typeof j.message === 'string' && { message: j.message }) };
  } catch {
    // reported below
  }
  return new Error(`conmon: unexpected message: ${line}`);
}

export interface ConmonExecOptions {
  conmon?: string;
  runtime: RuntimeInfo;
  stateRoot: string;
  containerId: string;
  name: string;
  /** A fresh id for the exec session. */
  sessionId: string;
  /** Holds the process spec; conmon puts the session's attach socket and FIFOs here. */
  sessionDir: string;
  processSpec: string;
  socketDir: string;
  terminal: boolean;
  stdin: boolean;
  arg0: string;
}

export interface ConmonExec<T> {
  pid: number;
  /** What `attach` returned (it ran before the process started, so no output is missed). */
  attached: T;
  /** The process's exit code, once it exits. */
  exitCode: Promise<number>;
}

/**
 * `podman exec` under conmon (which gives the process a terminal whatever barge's stdin is):
 * conmon sets up the session's attach socket and reports it on the attach pipe, waits on the
 * start pipe until `attach` has connected, then runs `RUNTIME exec` and reports the pid and
 * later the exit code on the sync pipe.
 */
export async function execWithConmon<T>(o: ConmonExecOptions, attach: (sessionDir: string) => Promise<T>): Promise<ConmonExec<T>> {
  warmCgroupAttach();
  await mkdir(path.join(o.sessionDir, 'exit'), { recursive: true, mode: 0o700 });
  const args = [
    ...commonArgs({
      containerId: o.containerId, sessionId: o.sessionId, runtime: o.runtime.path, bundle: o.sessionDir, pidFile: path.join(o.sessionDir, 'pid'),
      name: o.name, exitDir: path.join(o.sessionDir, 'exit'), socketDir: o.socketDir, log: 'none:', stateRoot: o.stateRoot,
    }),
    '--exec', '--exec-attach', '--exec-process-spec', o.processSpec,
  ];
  if (o.terminal) args.push('-t');
  if (o.stdin) args.push('-i');
  warmCgroupAttach();
  const child = childProcess().spawn(o.conmon ?? findConmon(), args, {
    stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe', 'pipe'],
    env: { ...process.env, _OCI_SYNCPIPE: '3', _OCI_STARTPIPE: '4', _OCI_ATTACHPIPE: '5' },
    detached: true,
  });
  child.unref();
  // Node types child.stdio as five entries; the sixth is there as asked.
  const fds = child.stdio as unknown as (Readable | Writable)[];
  const sync = new ConmonMessages(fds[3] as Readable, child);
  const ready = new ConmonMessages(fds[5] as Readable, child);
  const start = fds[4] as Writable;
  start.on('error', () => undefined);
  try {
    start.write('0');
    const r = await ready.next();
    if (!r || r.data < 0) throw new Error(`conmon: setting up the exec session failed${r?.message ? `: ${r.message}` : ''}`);
    const attached = await attach(o.sessionDir);
    start.end('0');
    const m = await sync.next();
    if (!m || m.data <= 0) {
      // The runtime's own words are in its log; conmon's message, if any, is a fallback.
      const why = lastRuntimeLogError(path.join(o.sessionDir, 'oci-log')) ?? logfmtMessage(m?.message ?? '') ?? 'exec failed';
      const f = classifyRuntimeError(why, o.arg0);
      throw new ContainerStartError(`${o.runtime.name}: ${f.message}`, f.code);
    }
    const exitCode = sync.next().then((x) => x?.data ?? -1).finally(() => sync.close());
    return { pid: m.data, attached, exitCode };
  } finally {
    ready.close();
  }
}

/** The last error of a runtime's JSON log (--log-format=json --log=FILE), or null. */
export function lastRuntimeLogError(file: string): string | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  let last: string | null = null;
  for (const line of text.split('\n')) {
    try {
      const j = JSON.parse(line) as { level?: unknown; msg?: unknown };
      if (j.level === 'error' && typeof j.msg === 'string') last = j.msg;
    } catch {
      // not JSON
    }
  }
  return last;
}

/** The msg="…" of a logfmt line (what runc prints without --log-format json), or the text itself. */
function logfmtMessage(text: string): string | null {
  const t = text.trim();
  if (t === '') return null;
  const m = /msg="((?:[^"\\]|\\.)*)"/.exec(t);
  if (!m) return t;
  try {
    return JSON.parse(`"${m[1]!}"`) as string;
  } catch {
    return m[1]!;
  }
}

function runtimeBase(_rt: RuntimeInfo, stateRoot: string): string[] {
  return ['--root', stateRoot];
}

/** `RUNTIME start ID`; a failure is mapped like a failed `run` (126/127/125). */
export async function runtimeStart(rt: RuntimeInfo, stateRoot: string, id: string, arg0: string): Promise<void> {
  const r = await exec(rt.path, [...runtimeBase(rt, stateRoot), '--log-format', 'json', 'start', id], { check: false });
  if (r.exitCode === 0) return;
  const f = lastRuntimeError(r.stderr, arg0) ?? { code: 125, message: `${r.stderr.trim() || `exit status ${r.exitCode}`}: OCI runtime error` };
  throw new ContainerStartError(`${rt.name}: ${f.message}`, f.code);
}

function lastRuntimeError(stderr: string, arg0: string): StartFailure | null {
  const lines = stderr.split('\n').filter((l) => l.trim() !== '');
  for (let i = lines.length - 1; i >= 0; i--) {
    try {
      const j = JSON.parse(lines[i]!) as { msg?: unknown };
      if (typeof j.msg === 'string') return classifyRuntimeError(j.msg, arg0);
    } catch {
      return classifyRuntimeError(lines[i]!.trim(), arg0);
    }
  }
  return null;
}

/** `RUNTIME delete --force ID`, ignoring a container the runtime no longer knows. */
export async function runtimeDelete(rt: RuntimeInfo, stateRoot: string, id: string): Promise<void> {
  await exec(rt.path, [...runtimeBase(rt, stateRoot), 'delete', '--force', id], { check: false }).catch(() => undefined);
}

/** `RUNTIME pause|resume ID`: freezes or thaws every process of the container (the cgroup freezer). */
export async function runtimeFreeze(rt: RuntimeInfo, stateRoot: string, id: string, freeze: boolean): Promise<void> {
  const r = await exec(rt.path, [...runtimeBase(rt, stateRoot), freeze ? 'pause' : 'resume', id], { check: false });
  if (r.exitCode !== 0) throw new Error(`${rt.name} ${freeze ? 'pause' : 'resume'}: ${r.stderr.trim() || `exit status ${r.exitCode}`}`);
}

/** `RUNTIME update --resources FILE ID`: new cgroup limits (OCI LinuxResources JSON in FILE) for a running container. */
export async function runtimeUpdate(rt: RuntimeInfo, stateRoot: string, id: string, resourcesFile: string): Promise<void> {
  const r = await exec(rt.path, [...runtimeBase(rt, stateRoot), 'update', '--resources', resourcesFile, id], { check: false });
  if (r.exitCode !== 0) throw new Error(`${rt.name} update: ${r.stderr.trim() || `exit status ${r.exitCode}`}`);
}

export interface RuntimeState {
  status: string;
  pid: number;
}

/** `RUNTIME state ID`, or null when the runtime does not know the container. */
export async function runtimeState(rt: RuntimeInfo, stateRoot: string, id: string): Promise<RuntimeState | null> {
  const r = await exec(rt.path, [...runtimeBase(rt, stateRoot), 'state', id], { check: false }).catch(() => null);
  if (!r || r.exitCode !== 0) return null;
  try {
    const j = JSON.parse(r.stdout) as { status?: string; pid?: number };
    return { status: j.status ?? 'unknown', pid: j.pid ?? 0 };
  } catch {
    return null;
  }
}

/** Reads conmon's exit file: the exit code and when it was written, or null if there is none yet. */
export function readExitFile(exitDir: string, id: string): { code: number; at: Date } | null {
  const f = path.join(exitDir, id);
  try {
    const text = readFileSync(f, 'utf8').trim();
    if (text === '') return null;
    const code = Number.parseInt(text, 10);
    if (!Number.isInteger(code)) return null;
    return { code, at: statSync(f).mtime };
  } catch {
    return null;
  }
}
