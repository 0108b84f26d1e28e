// Drives an OCI runtime (crun or runc) to run one container in the foreground.

import type { StdioOptions } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync, statSync, statfsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { exec, exitStatus } from '../sys/exec.ts';
import { syncFdWriter } from '../sys/fd-writer.ts';
import { inTerminalForeground } from '../sys/proc.ts';
import { childProcess } from '../sys/lazy-builtins.ts';
import { warmCgroupAttach } from './cgroup-warmup.ts';
import { serializeSpec, type RuntimeSpec } from './spec.ts';

export type RuntimeName = 'crun' | 'runc';

export interface RuntimeInfo {
  name: string;
  path: string;
}

// runc lives in /usr/sbin on Debian, which is often missing from a non-login PATH.
const EXTRA_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

export function isExecutableFile(p: string): boolean {
  try {
    if (!statSync(p).isFile()) return false;
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The executable NAME in PATH (or in the sbin directories a non-login PATH often lacks). */
export function lookPath(name: string): string | undefined {
  const dirs = [...(process.env['PATH'] ?? '').split(':').filter((d) => d !== ''), ...EXTRA_DIRS];
  for (const dir of dirs) {
    const p = path.join(dir, name);
    if (isExecutableFile(p)) return p;
  }
  return undefined;
}

const CGROUP2_SUPER_MAGIC = 0x63677270;

function isCgroup2(p: string): boolean {
  try {
    return statfsSync(p).type === CGROUP2_SUPER_MAGIC;
  } catch {
    return false;
  }
}

/**
 * Why crun may be unusable: crun (at least up to 1.8) refuses hybrid cgroup setups in which the v2
 * hierarchy still has controllers attached ("cgroups in hybrid mode not supported, drop all controllers
 * from cgroupv2"). A controller ends up on v2 when nothing mounted it as v1 — typically hugetlb. Reading
 * cgroup.controllers of the v2 mount checks exactly that condition, without starting a container.
 */
export function crunUsable(): boolean {
  if (isCgroup2('/sys/fs/cgroup')) return true;
  const unified = '/sys/fs/cgroup/unified';
  if (!isCgroup2(unified)) return true;
  try {
    return readFileSync(path.join(unified, 'cgroup.controllers'), 'utf8').trim() === '';
  } catch {
    return false;
  }
}

/**
 * Picks the OCI runtime. `preferred` may be a name ("crun") or a path; an explicit choice is honoured
 * even where crun looks unusable, so a wrong guess here can always be overridden. By default crun is
 * used when installed and usable, else runc.
 */
export function findRuntime(preferred?: string): RuntimeInfo {
  if (preferred !== undefined && preferred !== '') {
    if (preferred.includes('/')) {
      const p = path.resolve(preferred);
      if (!isExecutableFile(p)) throw new Error(`OCI runtime ${preferred} is not an executable file`);
      return { name: path.basename(p), path: p };
    }
    const p = lookPath(preferred);
    if (!p) throw new Error(`OCI runtime "${preferred}" not found in $PATH`);
    return { name: preferred, path: p };
  }
  const crun = lookPath('crun');
  if (crun && crunUsable()) return { name: 'crun', path: crun };
  const runc = lookPath('runc');
  if (runc) return { name: 'runc', path: runc };
  if (crun) {
    throw new Error(
      'no usable OCI runtime: crun cannot work with this hybrid cgroup setup (mount the remaining v1 ' +
        'controllers, e.g. `mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb`) and runc is not installed',
    );
  }
  throw new Error('no OCI runtime found: install crun or runc');
}

export interface RunOptions {
  runtime: RuntimeInfo;
  bundleDir: string;
  spec: RuntimeSpec;
  id: string;
  /**
   * 'inherit' (default): the container shares barge's stdin and stdout; its stderr passes through barge
   * (the runtime's own error lines are picked out of it). 'pipe': stdin is `input` or empty, and output
   * goes to `stdout`/`stderr` (discarded when not given).
   */
  stdio?: 'inherit' | 'pipe';
  /**
   * With 'inherit': false gives the runtime /dev/null as stdin (Podman's -t without -i). A runtime
   * with a terminal copies its stdin into the container's pty, so a terminal inherited there feeds
   * whatever the user (or a terminal emulator) types into the container, echoed back as output.
   */
  stdin?: boolean;
  stdout?: Writable;
  stderr?: Writable;
  /** With 'inherit': a descriptor that gets the container's stdout and stderr instead of barge's (build --logfile). */
  output?: number;
  input?: string | Buffer;
  /** runtime state dir, e.g. under the runroot */
  stateRoot: string;
  /**
   * Podman's --sig-proxy (default true): the signals barge receives reach the container. When
   * false they are neither forwarded nor end barge, which waits for the container as before.
   */
  sigProxy?: boolean;
  /** Options for the runtime before its command (Buildah's --runtime-flag), e.g. --debug. */
  globalFlags?: string[];
  /** Options of the runtime's `run` command, e.g. --no-pivot. */
  runFlags?: string[];
  /** Where the runtime writes the container's pid (--pidfile). */
  pidFile?: string;
  /** Descriptors 3 to 3+N-1 of this process passed on into the container (--preserve-fds). */
  preserveFds?: number;
}

/** What Podman's signal proxy forwards: every catchable signal a user sends, not job control or SIGCHLD/SIGPIPE/SIGWINCH. */
const PROXIED: NodeJS.Signals[] = ['SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGALRM', 'SIGTERM'];

/**
 * Writes config.json to bundleDir and runs `RUNTIME --root STATE run --bundle DIR ID` in the foreground;
 * resolves with the container process's exit code (128+N when killed by signal N). The container is
 * always removed from the runtime state afterwards. SIGINT/SIGTERM/SIGHUP reaching barge are forwarded.
 * Failures to start the process are normalised across runtimes: not found → 127, not executable → 126,
 * any other runtime failure → 125, each with a Podman-style message on stderr.
 */
export async function runContainer(o: RunOptions): Promise<number> {
  warmCgroupAttach();
  const base = ['--root', o.stateRoot];
  await mkdir(o.bundleDir, { recursive: true });
  await mkdir(o.stateRoot, { recursive: true, mode: 0o700 });
  await writeFile(path.join(o.bundleDir, 'config.json'), serializeSpec(o.spec), { mode: 0o600 });

  const signals = PROXIED;
  let forward: (sig: NodeJS.Signals) => void = () => {};
  // Installed before anything is started so an early Ctrl-C cannot skip the cleanup below.
  const handler = (sig: NodeJS.Signals): void => {
    if (o.sigProxy !== false) forward(sig);
  };
  for (const s of signals) process.on(s, handler);
  try {
    // Both runtimes keep state in STATE/ID; a leftover from a killed barge would make `run` fail.
    if (existsSync(path.join(o.stateRoot, o.id))) await deleteContainer(o.runtime, base, o.id);
    try {
      return await runForeground(o, base, (f) => (forward = f));
    } finally {
      // `run` removes its container when the process ends; only a runtime that died mid-way leaves
      // state behind, and a check of the state directory is cheaper than spawning the runtime again.
      if (existsSync(path.join(o.stateRoot, o.id))) await deleteContainer(o.runtime, base, o.id);
    }
  } finally {
    for (const s of signals) process.off(s, handler);
  }
}

async function deleteContainer(rt: RuntimeInfo, base: string[], id: string): Promise<void> {
  await exec(rt.path, [...base, 'delete', '--force', id], { check: false }).catch(() => undefined);
}

/**
 * Whether the runtime gets /dev/null as stdin (see RunOptions.stdin). runc finds the terminal to
 * put in raw mode on stdout too; crun insists on a terminal on fd 0 when the container has one
 * (and fails on one it cannot read), so crun keeps ours, and with it the copying of its input.
 */
function closedInput(o: RunOptions): boolean {
  return o.stdin === false && !(o.spec.process.terminal && o.runtime.name === 'crun');
}

function runForeground(
  o: RunOptions,
  base: string[],
  setForward: (f: (sig: NodeJS.Signals) => void) => void,
): Promise<number> {
  const pipe = o.stdio === 'pipe';
  // --log-format json without --log: each runtime reports its own failures as one JSON line on
  // stderr, which is what lets the relay tell them apart from the container's output.
  const preserved = o.preserveFds ?? 0;
  const args = [
    ...base, ...(o.globalFlags ?? []), '--log-format', 'json', 'run', ...(o.runFlags ?? []), '--bundle', o.bundleDir,
    ...(o.pidFile !== undefined ? ['--pid-file', o.pidFile] : []), ...(preserved > 0 ? ['--preserve-fds', String(preserved)] : []), o.id,
  ];
  const kept = Array.from({ length: preserved }, (_, i) => 3 + i);
  const stdio: StdioOptions = pipe ? [o.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe', ...kept] : [closedInput(o) ? 'ignore' : 'inherit', o.output ?? 'inherit', 'pipe', ...kept];
  // Synchronous to o.output, where the process's stdout goes directly: the two keep their order.
  const errDest: Writable = o.stderr ?? (pipe ? discard() : o.output !== undefined ? syncFdWriter(o.output) : process.stderr);

  return new Promise<number>((resolve, reject) => {
    warmCgroupAttach();
    const child = childProcess().spawn(o.runtime.path, args, { stdio });
    const relay = new StderrRelay(errDest, o.spec.process.args[0] ?? '');
    let exitCode: number | undefined;
    let settled = false;
    let drainTimer: NodeJS.Timeout | undefined;

    setForward((sig) => {
      if ((sig === 'SIGINT' || sig === 'SIGHUP' || sig === 'SIGQUIT') && inTerminalForeground()) return;
      try {
        child.kill(sig);
      } catch {
        // Already gone.
      }
    });

    child.stderr!.on('data', (b: Buffer) => {
      if (!relay.push(b)) {
        child.stderr!.pause();
        errDest.once('drain', () => child.stderr!.resume());
      }
    });
    if (pipe) {
      child.stdout!.once('data', () => relay.noteOutput());
      if (o.stdout) child.stdout!.pipe(o.stdout, { end: false });
      else child.stdout!.resume();
      if (o.input !== undefined) {
        child.stdin!.on('error', () => undefined); // the container may exit without reading it
        child.stdin!.end(o.input);
      }
    }

    const finish = (): void => {
      if (settled) return;
      settled = true;
      if (drainTimer) clearTimeout(drainTimer);
      const code = exitCode ?? 125;
      const failure = relay.finish(code);
      if (failure) {
        errDest.write(`Error: ${o.runtime.name}: ${failure.message}\n`);
        resolve(failure.code);
      } else resolve(code);
    };

    child.on('error', (e: NodeJS.ErrnoException) => {
      if (settled) return;
      settled = true;
      reject(e.code === 'ENOENT' ? new Error(`OCI runtime ${o.runtime.path} not found`) : e);
    });
    child.on('exit', (code, signal) => {
      exitCode = exitStatus(code, signal);
      // A process that escaped the container can keep our pipes open; don't wait on it for long.
      drainTimer = setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
        finish();
      }, 2000);
    });
    child.on('close', finish);
  });
}

function discard(): Writable {
  return new Writable({
    write(_chunk, _enc, cb) {
      cb();
    },
  });
}

// ---------------------------------------------------------------------------------------------------
// Runtime error recognition.
//
// What each runtime reports when the container process cannot be started (runc 1.1, crun 1.8, with
// --log-format json), always with runtime exit status 1:
//
//   missing /x    runc: {"level":"error","msg":"runc run failed: unable to start container process: exec: \"/x\": stat /x: no such file or directory",...}
//                 crun: {"msg":"executable file `/x` not found in $PATH: No such file or directory","level":"error",...}
//   missing x     runc: ... exec: \"x\": executable file not found in $PATH
//                 crun: same as above
//   mode 0644     runc: ... exec: \"/x\": permission denied
//                 crun: {"msg":"open executable: Permission denied",...}
//   a directory   runc: ... exec: \"/x\": permission denied
//                 crun: {"msg":"open executable: Operation not permitted",...}
//   bad #! / ld   runc: plain "exec /x: no such file or directory" (its init fails after the start)
//                 crun: {"msg":"exec container process (missing dynamic library?) `/x`: No such file or directory",...}
//   not ELF       runc: plain "exec /x: exec format error"
//                 crun: {"msg":"exec container process `/x`: Exec format error",...}
//
// These arrive on the same stderr as the container's own output, so lines of these shapes are held
// back briefly; only when the runtime then exits non-zero with such a line last are they replaced by
// one normalised message (in crun's wording, which is what Podman users see).
// ---------------------------------------------------------------------------------------------------

const RUNC_JSON = /^\{"level":"(\w+)","msg":("(?:[^"\\]|\\.)*"),"time":"[0-9T:.+-]+Z?"\}$/;
const CRUN_JSON = /^\{"msg":("(?:[^"\\]|\\.)*"),"level":"(\w+)","time":"[0-9T:.+-]+Z?"\}$/;
// runc's logrus lines with fields first, e.g. the rootless cgroup warning {"error":"…","level":"warning","msg":"…","time":"…"}.
const RUNC_FIELDS_JSON = /^\{("\w+":"(?:[^"\\]|\\.)*",)+"level":"(\w+)","msg":("(?:[^"\\]|\\.)*"),"time":"[0-9T:.+-]+Z?"\}$/;
const LATE_EXEC = /^exec (.+): (no such file or directory|permission denied|exec format error)$/;

interface RuntimeLine {
  level: string;
  msg: string;
  /** runc's late exec failures are plain text. */
  plain: boolean;
}

export interface StartFailure {
  code: number;
  message: string;
}

const NOT_FOUND = 'OCI runtime attempted to invoke a command that was not found';
const PERMISSION = 'OCI permission denied';

/** Maps a runtime's error message for a failed start to an exit code and a Podman-style message. */
export function classifyRuntimeError(msg: string, arg0: string): StartFailure {
  const notFound = (what: string): StartFailure => ({
    code: 127,
    message: `executable file \`${what}\` not found in $PATH: No such file or directory: ${NOT_FOUND}`,
  });
  const denied = (what: string, why: string): StartFailure => ({
    code: 126,
    message: `cannot execute \`${what}\`: ${why}: ${PERMISSION}`,
  });
  let m: RegExpExecArray | null;
  // runc, before the process starts.
  if ((m = /exec: "((?:[^"\\]|\\.)*)": (.*)$/.exec(msg))) {
    const what = m[1]!;
    const why = m[2]!;
    if (/executable file not found|no such file or directory/i.test(why)) return notFound(what);
    if (/permission denied|operation not permitted/i.test(why)) return denied(what, 'Permission denied');
    if (/exec format error/i.test(why)) return denied(what, 'Exec format error');
  }
  // crun.
  if ((m = /^executable file `(.*)` not found in \$PATH/.exec(msg))) return notFound(m[1]!);
  if (/^open executable: (Permission denied|Operation not permitted)$/.test(msg)) return denied(arg0, 'Permission denied');
  if ((m = /^exec container process (\(missing dynamic library\?\) )?`(.*)`: (.*)$/.exec(msg))) {
    const what = m[2]!;
    const why = m[3]!;
    if (/No such file or directory/i.test(why)) {
      return { code: 127, message: `exec container process (missing dynamic library?) \`${what}\`: ${why}: ${NOT_FOUND}` };
    }
    return denied(what, why);
  }
  // runc, after the process started (plain text).
  if ((m = LATE_EXEC.exec(msg))) {
    const what = m[1]!;
    if (m[2] === 'no such file or directory') {
      return { code: 127, message: `exec container process (missing dynamic library?) \`${what}\`: No such file or directory: ${NOT_FOUND}` };
    }
    return denied(what, m[2] === 'exec format error' ? 'Exec format error' : 'Permission denied');
  }
  return { code: 125, message: `${msg}: OCI runtime error` };
}

function parseRuntimeLine(line: string, arg0: string): RuntimeLine | null {
  let m = RUNC_JSON.exec(line);
  if (m) return jsonLine(m[1]!, m[2]!);
  m = CRUN_JSON.exec(line);
  if (m) return jsonLine(m[2]!, m[1]!);
  m = RUNC_FIELDS_JSON.exec(line);
  if (m) return jsonLine(m[2]!, m[3]!);
  m = LATE_EXEC.exec(line);
  // Only the command we asked for, so an application's own "exec ..." output is left alone.
  if (m && arg0 !== '' && path.posix.basename(m[1]!) === path.posix.basename(arg0)) {
    return { level: 'error', msg: line, plain: true };
  }
  return null;
}

function jsonLine(level: string, quotedMsg: string): RuntimeLine | null {
  try {
    const msg: unknown = JSON.parse(quotedMsg);
    return typeof msg === 'string' ? { level, msg, plain: false } : null;
  } catch {
    return null;
  }
}

const HOLD_PREFIXES = ['{"level":"', '{"msg":"', '{"error":"', 'exec '].map((s) => Buffer.from(s));

function couldStartRuntimeLine(b: Buffer): boolean {
  return HOLD_PREFIXES.some((p) => {
    const n = Math.min(p.length, b.length);
    return b.subarray(0, n).equals(p.subarray(0, n));
  });
}

const PARTIAL_HOLD_MS = 100;
const LINE_HOLD_MS = 1000;

/** Passes container stderr through, holding back lines shaped like runtime errors until it is clear whether they are. */
class StderrRelay {
  private partial: Buffer = Buffer.alloc(0);
  private passing = false; // the current line was already judged to be ordinary output
  private held: { raw: Buffer; parsed: RuntimeLine }[] = [];
  private lastLine: RuntimeLine | null = null;
  private timer: NodeJS.Timeout | undefined;
  private ok = true;
  /** The container produced output, so its process did start: a later runtime-shaped line is its own. */
  private started = false;

  private readonly dest: Writable;
  private readonly arg0: string;

  constructor(dest: Writable, arg0: string) {
    this.dest = dest;
    this.arg0 = arg0;
  }

  /** Container stdout seen (only observable when piped). */
  noteOutput(): void {
    this.started = true;
  }

  /** Returns false when the destination wants the source paused. */
  push(chunk: Buffer): boolean {
    this.ok = true;
    let pos = 0;
    while (pos < chunk.length) {
      const nl = chunk.indexOf(10, pos);
      const end = nl < 0 ? chunk.length : nl + 1;
      const piece = chunk.subarray(pos, end);
      pos = end;
      if (this.passing) {
        this.write(piece);
        if (nl >= 0) this.passing = false;
        continue;
      }
      const cur = this.partial.length > 0 ? Buffer.concat([this.partial, piece]) : piece;
      this.partial = Buffer.alloc(0);
      if (nl >= 0) {
        const parsed = parseRuntimeLine(cur.subarray(0, cur.length - 1).toString('utf8').replace(/\r$/, ''), this.arg0);
        this.lastLine = parsed;
        if (parsed) this.held.push({ raw: cur, parsed });
        else {
          this.flushHeld();
          this.write(cur);
        }
      } else if (couldStartRuntimeLine(cur)) {
        this.partial = Buffer.from(cur);
      } else {
        this.flushHeld();
        this.write(cur);
        this.passing = true;
        this.lastLine = null;
      }
    }
    this.arm();
    return this.ok;
  }

  /** At runtime exit: a start failure to report instead of the held lines, or null. */
  finish(exitCode: number): StartFailure | null {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.partial.length > 0) {
      // An unterminated last line still counts, e.g. if a runtime omits the newline.
      const parsed = parseRuntimeLine(this.partial.toString('utf8'), this.arg0);
      if (parsed) {
        this.held.push({ raw: this.partial, parsed });
        this.lastLine = parsed;
      } else {
        this.flushHeld();
        this.write(this.partial);
        this.lastLine = null;
      }
      this.partial = Buffer.alloc(0);
    }
    const last = this.lastLine;
    if (exitCode !== 0 && !this.started && last && (last.level === 'error' || last.level === 'fatal')) {
      for (const h of this.held) {
        if (h.parsed === last) continue;
        // Other runtime lines (warnings) stay visible, in plain words rather than JSON.
        this.write(Buffer.from(h.parsed.plain ? `${h.parsed.msg}\n` : `${h.parsed.level}: ${h.parsed.msg}\n`));
      }
      this.held = [];
      return classifyRuntimeError(last.msg, this.arg0);
    }
    this.flushHeld();
    return null;
  }

  private arm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.partial.length > 0) {
      // An interactive prompt must not wait for a newline that never comes.
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.flushHeld();
        this.write(this.partial);
        this.partial = Buffer.alloc(0);
        this.passing = true;
        this.lastLine = null;
      }, PARTIAL_HOLD_MS);
    } else if (this.held.length > 0) {
      // A runtime exits right after reporting a start failure; a line that lingers was the application's.
      // lastLine survives the flush, so a late exit still maps the failure (at worst also shown raw).
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.flushHeld();
      }, LINE_HOLD_MS);
    }
    this.timer?.unref();
  }

  private flushHeld(): void {
    const started = this.started;
    for (const h of this.held) this.write(h.raw);
    this.started = started;
    this.held = [];
  }

  private write(b: Buffer): void {
    this.started = true;
    if (b.length > 0 && !this.dest.write(b)) this.ok = false;
  }
}
