// Black-box harness for CLI tests: each Env is a private store that runs the real bin/barge.
import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { constants as osConstants, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { extract, pack, type Header } from 'tar-stream';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const BARGE_BIN = join(REPO_ROOT, 'bin', 'barge');
/** Whether this worker runs the rootless project (test/rootless/project.ts sets the user's name). */
export const ROOTLESS = process.env.BARGE_TEST_USER !== undefined;

export interface BargeResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface BargeOptions {
  /** Written to stdin, which is then closed; without it stdin is /dev/null. */
  input?: string;
  /** Added to (and overriding) the test process's environment. */
  env?: Record<string, string>;
  cwd?: string;
  /** After this the whole process group is killed and the result has code 137. */
  timeoutMs?: number;
  /** An open file descriptor to use as stdin instead (for binary input); `input` then must be absent. */
  stdinFd?: number;
  /** An open file descriptor to use as stdout (for binary output); the result's stdout is then empty. */
  stdoutFd?: number;
  /** Open file descriptors the child gets as its descriptors 3, 4, … */
  extraFds?: number[];
}

export interface Env {
  /** --root of this env's store. */
  root: string;
  /** --runroot of this env's store. */
  runroot: string;
  /** Scratch directory for the test's own files; removed by cleanup(). */
  tmp: string;
  barge(args: string[], opts?: BargeOptions): Promise<BargeResult>;
  /** Like barge(), but throws (with the command, exit code and stderr) unless it exits 0; returns trimmed stdout. */
  bargeOk(args: string[], opts?: BargeOptions): Promise<string>;
  /** Unmounts everything under this env (deepest first) and deletes it. Safe to call twice. */
  cleanup(): Promise<void>;
}

// Below vitest's 120 s test timeout, so a hung command fails with its own output rather than
// with a bare vitest timeout.
const DEFAULT_TIMEOUT_MS = 100_000;

/** Runs bin/barge with exactly the given arguments (no --root/--runroot added). */
export function runBarge(args: readonly string[], opts: BargeOptions = {}): Promise<BargeResult> {
  return runCaptured(BARGE_BIN, args, {
    ...opts,
    cwd: opts.cwd ?? REPO_ROOT,
    env: { ...process.env, NO_COLOR: '1', ...opts.env },
    label: `barge ${args.join(' ')}`,
  });
}

export interface CapturedOptions extends Omit<BargeOptions, 'env'> {
  /** The child's whole environment. */
  env: NodeJS.ProcessEnv;
  /** Names the command in the note added to stderr when it is killed for taking too long. */
  label: string;
}

/**
 * Runs a command in its own process group and collects its output; a timeout kills the whole
 * group, so also the runtime and any children barge started.
 */
export function runCaptured(cmd: string, args: readonly string[], opts: CapturedOptions): Promise<BargeResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env,
      stdio: [opts.stdinFd ?? (opts.input === undefined ? 'ignore' : 'pipe'), opts.stdoutFd ?? 'pipe', 'pipe', ...(opts.extraFds ?? [])],
      detached: true,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      let stderr = Buffer.concat(err).toString();
      if (timedOut) stderr += `\n[test harness] ${opts.label}: killed after ${timeoutMs} ms\n`;
      const sigNum = signal ? (osConstants.signals[signal] ?? 0) : 0;
      resolvePromise({ code: code ?? 128 + sigNum, stdout: Buffer.concat(out).toString(), stderr });
    });
    if (opts.input !== undefined && opts.stdinFd === undefined) {
      // A command that exits without reading stdin must not turn into an EPIPE crash here.
      child.stdin!.on('error', () => {});
      child.stdin!.end(opts.input);
    }
  });
}

/** Describes a failed command for an assertion message. */
export function describeFailure(args: readonly string[], r: BargeResult): string {
  return `barge ${args.join(' ')} exited ${r.code}\n--- stderr ---\n${r.stderr.trimEnd()}\n--- stdout ---\n${r.stdout.trimEnd()}`;
}

/** The bargeOk of a barge function: throws (with the command's output) unless it exits 0; returns trimmed stdout. */
export function bargeOkOf<O>(barge: (args: string[], opts?: O) => Promise<BargeResult>): (args: string[], opts?: O) => Promise<string> {
  return async (args, opts) => {
    const r = await barge(args, opts);
    if (r.code !== 0) throw new Error(describeFailure(args, r));
    return r.stdout.trim();
  };
}

/** fn, run on the first call only; later calls get the first call's promise. */
export function once(fn: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | undefined;
  return () => (done ??= fn());
}

export async function makeEnv(): Promise<Env> {
  const base = await mkdtemp(join(tmpdir(), 'barge-test-'));
  const root = join(base, 'root');
  const runroot = join(base, 'runroot');
  const tmp = join(base, 'tmp');
  await Promise.all([mkdir(root), mkdir(runroot), mkdir(tmp)]);

  const barge = (args: string[], opts?: BargeOptions): Promise<BargeResult> =>
    runBarge(['--root', root, '--runroot', runroot, ...args], opts);

  return { root, runroot, tmp, barge, bargeOk: bargeOkOf(barge), cleanup: once(() => removeTree(base)) };
}

/** Stores a suite's tests make on demand, all removed by one cleanupFreshEnvs() in afterAll. */
export function freshEnvs(): { freshEnv(): Promise<Env>; cleanupFreshEnvs(): Promise<void> } {
  const made: Env[] = [];
  return {
    async freshEnv() {
      const e = await makeEnv();
      made.push(e);
      return e;
    },
    async cleanupFreshEnvs() {
      for (const e of made) await e.cleanup();
    },
  };
}

/** Output of CMD run in a throwaway working container of IMAGE (removed again). */
export async function runInImage(env: Env, image: string, cmd: readonly string[]): Promise<string> {
  const ctr = await env.bargeOk(['from', image]);
  try {
    return await env.bargeOk(['run', ctr, '--', ...cmd]);
  } finally {
    await env.bargeOk(['rm', ctr]);
  }
}

/**
 * Contents of files of a working container (null where missing), read through its mount. Rootless,
 * barge's mounts exist only in its own namespace, so they are read inside `barge unshare`.
 */
export async function readContainerFiles(env: Env, ctr: string, paths: readonly string[]): Promise<(string | null)[]> {
  if (process.getuid?.() === 0) {
    const mp = await env.bargeOk(['mount', ctr]);
    return Promise.all(paths.map((p) => readFile(join(mp, p), 'utf8').catch(() => null)));
  }
  return Promise.all(
    paths.map(async (p) => {
      const r = await env.barge(['unshare', '--mount', `M=${ctr}`, '--', 'sh', '-c', 'test -f "$M/$1" || exit 3; cat "$M/$1"', 'sh', p]);
      if (r.code === 3) return null;
      if (r.code !== 0) throw new Error(describeFailure(['unshare', '--mount', `M=${ctr}`], r));
      return r.stdout;
    }),
  );
}

/** Names in a directory of a working container (sorted), through its mount as readContainerFiles reads. */
export async function containerDirEntries(env: Env, ctr: string, dir: string): Promise<string[]> {
  if (process.getuid?.() === 0) return (await readdir(join(await env.bargeOk(['mount', ctr]), dir))).sort();
  const out = await env.bargeOk(['unshare', '--mount', `M=${ctr}`, '--', 'sh', '-c', 'cd "$M/$1" && for f in * .*; do [ -e "$f" ] || [ -L "$f" ] && echo "$f"; done', 'sh', dir]);
  return out.split('\n').filter((n) => n !== '' && n !== '.' && n !== '..').sort();
}

/** Unmounts everything at or below dir and deletes it. */
export async function removeTree(dir: string): Promise<void> {
  await unmountUnder(dir);
  try {
    await rm(dir, { recursive: true, force: true, maxRetries: 3, retryDelay: 100 });
  } catch (e) {
    // Rootless, a store holds files of the user's subordinate ids, which only its namespace can delete.
    const code = (e as NodeJS.ErrnoException).code;
    if (process.getuid?.() === 0 || (code !== 'EACCES' && code !== 'EPERM')) throw e;
    const r = await runBarge(['unshare', 'rm', '-rf', '--', dir]);
    if (r.code !== 0) throw new Error(`cannot remove ${dir}: ${(e as Error).message}; barge unshare rm: ${r.stderr.trim()}`);
  }
}

/** Lazily unmounts every mount point at or below dir, deepest first, ignoring failures. */
export async function unmountUnder(dir: string): Promise<void> {
  // A mount can be stacked several times on one point; repeat until nothing is left (bounded).
  for (let round = 0; round < 5; round++) {
    const points = (await mountPoints()).filter((p) => p === dir || p.startsWith(dir + '/'));
    if (points.length === 0) return;
    points.sort((a, b) => depth(b) - depth(a) || b.length - a.length);
    for (const p of points) await umountLazy(p);
  }
}

async function mountPoints(): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  const points: string[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    if (fields.length > 4) points.push(fields[4]!.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
  }
  return points;
}

function depth(p: string): number {
  return p.split('/').length;
}

function umountLazy(target: string): Promise<void> {
  return new Promise((resolvePromise) => {
    const child = spawn('umount', ['-l', target], { stdio: 'ignore' });
    child.on('error', () => resolvePromise());
    child.on('close', () => resolvePromise());
  });
}

export interface TarEntry {
  name: string;
  type?: Header['type'];
  /** File content; absent for directories, symlinks and hardlinks. */
  data?: Buffer | string;
  linkname?: string;
  mode?: number;
}

/** Packs entries into an uncompressed tar, in order, with fixed metadata. */
export async function makeTar(entries: readonly TarEntry[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    p.on('data', (c: unknown) => chunks.push(c as Buffer));
    p.on('end', () => resolve(Buffer.concat(chunks)));
    p.on('error', reject);
  });
  for (const e of entries) {
    const type = e.type ?? 'file';
    const header = {
      name: e.name,
      type,
      mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644),
      mtime: new Date(1704067200_000),
      uid: 0,
      gid: 0,
      ...(e.linkname !== undefined && { linkname: e.linkname }),
    };
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null): void => (err ? reject(err) : resolve());
      if (type === 'file') p.entry(header, e.data ?? '', cb);
      else p.entry(header, '', cb);
    });
  }
  p.finalize();
  return done;
}

/** Reads every member of an uncompressed tar into memory (archives in tests are a few MB). */
export async function readTar(bytes: Buffer): Promise<{ header: Header; data: Buffer }[]> {
  const ex = extract();
  const out: { header: Header; data: Buffer }[] = [];
  const done = (async () => {
    for await (const entry of ex) {
      const parts: Buffer[] = [];
      for await (const c of entry) parts.push(c as Buffer);
      out.push({ header: entry.header, data: Buffer.concat(parts) });
    }
  })();
  ex.end(bytes);
  await done;
  return out;
}
