// Shared helpers of the bench suites: timed commands, result cells, medians, mounts, ports.
// Runs directly under Node 24 (type stripping): erasable TypeScript only, no imports from src/.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { basename, join } from 'node:path';

export interface Tool {
  name: string;
  /** argv prefix: executable and global store flags */
  argv: string[];
  /** options of `run` itself, after the word run */
  runOpts: string[];
  version: string;
}

export interface CmdResult {
  ms: number;
  stdout: string;
  stderr: string;
}

/** A command of a tool under test failed: reported in the table, the bench goes on. */
export class StepError extends Error {}

/** Everything a suite needs from the driver. */
export interface SuiteEnv {
  repo: string;
  /** the run's throwaway work directory; suites make their own subdirectory */
  base: string;
  n: number;
  warmup: number;
  runtime: string;
  /** the cached debootstrap rootfs tarball (made lazily, once per machine) */
  debootstrapTar: () => string;
  /** registered functions run at the end, also on failure and on SIGINT/SIGTERM */
  onCleanup: (fn: () => Promise<void> | void) => void;
  log: (msg: string) => void;
}

/** One tool's measurements of one step. */
export interface Cell {
  tool: string;
  samples: number[];
  error: string | null;
}

export interface Row {
  suite: string;
  step: string;
  barge: Cell;
  peer: Cell;
  /** the largest barge/peer ratio the issues accept, or null when there is none */
  target: number | null;
  /** where the target comes from (issue number) */
  targetRef?: string;
}

export interface SuiteResult {
  rows: Row[];
  tools: Record<string, { version: string; error: string | null }>;
  fixtures: Record<string, unknown>;
  notes: string[];
}

export function positiveInt(v: string | undefined, dflt: number, allowZero = false): number {
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < (allowZero ? 0 : 1)) throw new Error(`not a ${allowZero ? 'non-negative' : 'positive'} integer: ${v}`);
  return n;
}

const STEP_TIMEOUT_MS = positiveInt(process.env.BENCH_STEP_TIMEOUT, 600) * 1000;

/** The line of a failing command's stderr that says why (Node dumps end in a stack and version line). */
function reason(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  return lines.find((l) => /error|fatal|failed|denied|not found/i.test(l)) ?? lines.at(-1) ?? '';
}

const STORE_FLAGS = new Set(['--root', '--runroot', '--storage-driver', '--tmpdir', '--cgroup-manager', '--events-backend']);

/** A command line short enough for an error message: program name, no store flags. */
export function describe(argv: string[]): string {
  const words = [basename(argv[0]!)];
  for (let i = 1; i < argv.length; i++) {
    if (STORE_FLAGS.has(argv[i]!)) i++;
    else if (![...STORE_FLAGS].some((f) => argv[i]!.startsWith(f + '='))) words.push(argv[i]!);
  }
  const s = words.join(' ');
  return s.length > 120 ? s.slice(0, 117) + '...' : s;
}

/** Runs one command to completion and times it from spawn to exit. */
export function timed(argv: string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<CmdResult> {
  return new Promise((res, rej) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], cwd: opts.cwd });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? STEP_TIMEOUT_MS);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => {
      clearTimeout(timer);
      rej(new StepError(`${e.message} [${describe(argv)}]`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      const stderr = Buffer.concat(err).toString();
      if (code !== 0) {
        const why = timedOut ? `timed out after ${((opts.timeoutMs ?? STEP_TIMEOUT_MS) / 1000).toFixed(0)} s` : (signal ?? `exit ${code}`);
        const msg = reason(stderr);
        // The reason first: the table shows only the start of the message.
        rej(new StepError(`${why}${msg ? `: ${msg}` : ''} [${describe(argv)}]`));
      } else res({ ms, stdout: Buffer.concat(out).toString(), stderr });
    });
  });
}

export function tool(t: Tool, ...args: string[]): Promise<CmdResult> {
  return timed([...t.argv, ...args]);
}

/** Runs a command whose time does not count; failures are ignored (cleanup between reps). */
export async function quiet(t: Tool, ...args: string[]): Promise<void> {
  await timed([...t.argv, ...args]).catch(() => undefined);
}

export function lastLine(s: string): string {
  return s.trim().split('\n').at(-1)?.trim() ?? '';
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function versionOf(argv: string[]): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim().split('\n')[0]! : '';
}

export function hasCommand(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

export function newCell(toolName: string): Cell {
  return { tool: toolName, samples: [], error: null };
}

/**
 * Runs one timed step for one tool unless that step already failed for it; a StepError marks
 * the cell failed (later repetitions skip it), anything else is a harness error and propagates.
 */
export async function measure(cell: Cell, counting: boolean, fn: () => Promise<number>): Promise<boolean> {
  if (cell.error !== null) return false;
  try {
    const ms = await fn();
    if (counting) cell.samples.push(ms);
    return true;
  } catch (e) {
    if (!(e instanceof StepError)) throw e;
    cell.error = e.message;
    return false;
  }
}

/** Median of a cell, or null when it failed or has fewer samples than repetitions. */
export function cellMedian(c: Cell, n: number): number | null {
  return c.error === null && c.samples.length === n ? median(c.samples) : null;
}

export function unmountUnder(dir: string): void {
  for (let round = 0; round < 5; round++) {
    const points = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[4] ?? '')
      .map((p) => p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
      .filter((p) => p === dir || p.startsWith(dir + '/'))
      .sort((a, b) => b.split('/').length - a.split('/').length);
    if (points.length === 0) return;
    for (const p of points) spawnSync('umount', ['-l', p], { stdio: 'ignore' });
  }
}

/**
 * Writes out dirty page-cache data before a timed step (untimed), so no tool pays for the
 * writeback of what the previous one wrote.
 */
export function flushDirty(): void {
  spawnSync('sync', { stdio: 'ignore' });
}

/** Unmounts anything under dir and deletes it (throwaway stores between repetitions). */
export function removeTree(dir: string): void {
  unmountUnder(dir);
  rmSync(dir, { recursive: true, force: true });
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.on('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      const port = typeof a === 'object' && a !== null ? a.port : 0;
      srv.close(() => (port ? res(port) : rej(new Error('no free port'))));
    });
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const versions = new Map<string, string>();
function cachedVersion(argv: string[]): string {
  const key = argv.join(' ');
  if (!versions.has(key)) versions.set(key, versionOf(argv));
  return versions.get(key)!;
}

/** Writes the busybox root filesystem tar every suite imports as its small base image. */
export function makeBusyboxRootfs(env: SuiteEnv, tar: string): void {
  const s = spawnSync('bash', [join(env.repo, 'scripts', 'make-busybox-rootfs.sh'), tar], { stdio: 'inherit' });
  if (s.status !== 0) throw new Error('make-busybox-rootfs.sh failed');
}

/** The same tool forced to one OCI runtime (a global flag of barge and podman alike). */
export function withRuntime(t: Tool, runtime: string): Tool {
  return { ...t, argv: [...t.argv.filter((_, i, a) => a[i] !== '--runtime' && a[i - 1] !== '--runtime'), '--runtime', runtime] };
}

/** barge on a store of its own under dir. */
export function bargeTool(env: SuiteEnv, dir: string): Tool {
  const bin = join(env.repo, 'bin', 'barge');
  return {
    name: 'barge',
    // barge takes --runtime as a global flag, buildah as an option of run.
    argv: [bin, '--root', join(dir, 'root'), '--runroot', join(dir, 'runroot'), ...(env.runtime ? ['--runtime', env.runtime] : [])],
    runOpts: [],
    version: cachedVersion([bin, '--version']),
  };
}

/** buildah on a throwaway overlay store under dir. */
export function buildahTool(env: SuiteEnv, dir: string): Tool {
  return {
    name: 'buildah',
    argv: ['buildah', '--root', join(dir, 'root'), '--runroot', join(dir, 'runroot'), '--storage-driver', 'overlay'],
    runOpts: env.runtime ? ['--runtime', env.runtime] : [],
    version: cachedVersion(['buildah', '--version']),
  };
}

/** podman on a throwaway overlay store under dir (its libpod tmpdir too). */
export function podmanTool(dir: string): Tool {
  return {
    name: 'podman',
    argv: ['podman', '--root', join(dir, 'root'), '--runroot', join(dir, 'runroot'), '--tmpdir', join(dir, 'tmp'), '--storage-driver', 'overlay'],
    runOpts: [],
    version: cachedVersion(['podman', '--version']),
  };
}

/** skopeo needs no store. */
export function skopeoTool(): Tool {
  return { name: 'skopeo', argv: ['skopeo'], runOpts: [], version: cachedVersion(['skopeo', '--version']) };
}
