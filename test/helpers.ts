// Black-box harness for CLI tests: each Env is a private store that runs the real bin/barge.
import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, readFile, rm } from 'node:fs/promises';
import { constants as osConstants, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const BARGE_BIN = join(REPO_ROOT, 'bin', 'barge');

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
  return new Promise((resolvePromise, reject) => {
    const child = spawn(BARGE_BIN, args, {
      cwd: opts.cwd ?? REPO_ROOT,
      env: { ...process.env, NO_COLOR: '1', ...opts.env },
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      // Own process group, so a timeout also kills the runtime and any children barge started.
      detached: true,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      let stderr = Buffer.concat(err).toString();
      if (timedOut) stderr += `\n[test harness] barge ${args.join(' ')}: killed after ${opts.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms\n`;
      const sigNum = signal ? (osConstants.signals[signal] ?? 0) : 0;
      resolvePromise({ code: code ?? 128 + sigNum, stdout: Buffer.concat(out).toString(), stderr });
    });
    if (opts.input !== undefined) {
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

export async function makeEnv(): Promise<Env> {
  const base = await mkdtemp(join(tmpdir(), 'barge-test-'));
  const root = join(base, 'root');
  const runroot = join(base, 'runroot');
  const tmp = join(base, 'tmp');
  await Promise.all([mkdir(root), mkdir(runroot), mkdir(tmp)]);
  let cleaned = false;

  const barge = (args: string[], opts?: BargeOptions): Promise<BargeResult> =>
    runBarge(['--root', root, '--runroot', runroot, ...args], opts);

  return {
    root,
    runroot,
    tmp,
    barge,
    async bargeOk(args, opts) {
      const r = await barge(args, opts);
      if (r.code !== 0) throw new Error(describeFailure(args, r));
      return r.stdout.trim();
    },
    async cleanup() {
      if (cleaned) return;
      cleaned = true;
      await unmountUnder(base);
      await rm(base, { recursive: true, force: true, maxRetries: 3, retryDelay: 100 });
    },
  };
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
