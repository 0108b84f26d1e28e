// barge against buildah, same run, same fixtures, separate throwaway stores.
// Runs directly under Node 24 (type stripping): erasable TypeScript only, no imports from src/.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const N = positiveInt(process.env.BENCH_N, 5);
const WARMUP = positiveInt(process.env.BENCH_WARMUP, 1, true);
const OUT = process.env.BENCH_OUT ?? join(REPO, '.bench', 'results.json');
// Optional: force both tools onto the same OCI runtime so `run` compares engines, not runtimes.
const RUNTIME = process.env.BENCH_RUNTIME ?? '';
const COPY_BYTES = 20 * 1024 * 1024;
const COPY_FILES = 200;
const BASE_IMAGE = 'localhost/busybox';

interface Tool {
  name: string;
  /** argv prefix: executable and global store flags */
  argv: string[];
  /** options of `run` itself, after the word run */
  runOpts: string[];
  version: string;
}

interface CmdResult {
  ms: number;
  stdout: string;
}

class StepError extends Error {}

function positiveInt(v: string | undefined, dflt: number, allowZero = false): number {
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < (allowZero ? 0 : 1)) throw new Error(`not a ${allowZero ? 'non-negative' : 'positive'} integer: ${v}`);
  return n;
}

/** Runs one command to completion and times it from spawn to exit. */
function timed(argv: string[]): Promise<CmdResult> {
  return new Promise((res, rej) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', rej);
    child.on('close', (code, signal) => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (code !== 0) {
        // Node's uncaught-error dumps end in a stack and version line; the Error line says why.
        const lines = Buffer.concat(err).toString().split('\n').map((l) => l.trim()).filter((l) => l !== '');
        const msg = lines.find((l) => /error/i.test(l)) ?? lines[0] ?? '';
        rej(new StepError(`${argv.join(' ')}: ${signal ?? `exit ${code}`}${msg ? `: ${msg}` : ''}`));
      } else res({ ms, stdout: Buffer.concat(out).toString() });
    });
  });
}

async function tool(t: Tool, ...args: string[]): Promise<CmdResult> {
  return timed([...t.argv, ...args]);
}

/** Runs a command whose time does not count; failures are ignored (cleanup between reps). */
async function quiet(t: Tool, ...args: string[]): Promise<void> {
  await timed([...t.argv, ...args]).catch(() => undefined);
}

function lastLine(s: string): string {
  return s.trim().split('\n').at(-1)?.trim() ?? '';
}

// Deterministic data (xorshift128, fixed seed): both tools copy byte-identical trees, every run.
function makeCopyTree(dir: string): void {
  let x = 0x12345678, y = 0x9abcdef0, z = 0x0badf00d, w = 0xdeadbeef;
  const next = (): number => {
    const t = x ^ (x << 11);
    x = y; y = z; z = w;
    w = (w ^ (w >>> 19) ^ (t ^ (t >>> 8))) >>> 0;
    return w;
  };
  // Sizes vary (50%..150% of the mean) but sum exactly to COPY_BYTES.
  const weights = Array.from({ length: COPY_FILES }, () => 0.5 + next() / 0x100000000);
  const total = weights.reduce((a, b) => a + b, 0);
  const sizes = weights.map((w2) => Math.floor((w2 / total) * COPY_BYTES));
  sizes[0]! += COPY_BYTES - sizes.reduce((a, b) => a + b, 0);
  for (let i = 0; i < COPY_FILES; i++) {
    // 10 top dirs x 4 subdirs x 5 files: some nesting, as in a real source tree.
    const sub = join(dir, `d${i % 10}`, `s${Math.floor(i / 10) % 4}`);
    mkdirSync(sub, { recursive: true });
    const words = new Uint32Array(Math.ceil(sizes[i]! / 4));
    for (let j = 0; j < words.length; j++) words[j] = next();
    writeFileSync(join(sub, `f${i}.bin`), Buffer.from(words.buffer, 0, sizes[i]!));
  }
}

type StepName = 'from' | 'copy 20MB dir' | 'run true' | 'config --label' | 'commit' | 'scripted build';
const STEPS: StepName[] = ['from', 'copy 20MB dir', 'run true', 'config --label', 'commit', 'scripted build'];

function runArgs(t: Tool, ctr: string, cmd: string[]): string[] {
  return ['run', ...t.runOpts, ctr, '--', ...cmd];
}

/** (a) each primitive timed alone, in the order a build uses them. */
async function primitives(t: Tool, copyDir: string, rep: number, record: (s: StepName, ms: number) => void): Promise<void> {
  const from = await tool(t, 'from', BASE_IMAGE);
  const ctr = lastLine(from.stdout);
  record('from', from.ms);
  try {
    record('copy 20MB dir', (await tool(t, 'copy', ctr, copyDir, '/data')).ms);
    record('run true', (await tool(t, ...runArgs(t, ctr, ['true']))).ms);
    record('config --label', (await tool(t, 'config', '--label', 'x=y', ctr)).ms);
    record('commit', (await tool(t, 'commit', ctr, `bench-prim-${rep}`)).ms);
  } finally {
    await quiet(t, 'rm', ctr);
    await quiet(t, 'rmi', `bench-prim-${rep}`);
  }
}

/** (b) a scripted build as a shell user would write it, timed as a whole. */
async function scripted(t: Tool, copyDir: string, rep: number, record: (s: StepName, ms: number) => void): Promise<void> {
  let ctr = '';
  const t0 = process.hrtime.bigint();
  try {
    ctr = lastLine((await tool(t, 'from', BASE_IMAGE)).stdout);
    await tool(t, 'copy', ctr, copyDir, '/data');
    await tool(t, ...runArgs(t, ctr, ['true']));
    await tool(t, ...runArgs(t, ctr, ['sh', '-c', 'echo a > /a']));
    await tool(t, ...runArgs(t, ctr, ['sh', '-c', 'rm -f /a']));
    await tool(t, 'config', '--label', 'x=y', '--cmd', '["cat","/data/d0/s0/f0.bin"]', ctr);
    await tool(t, 'commit', ctr, `bench-script-${rep}`);
    record('scripted build', Number(process.hrtime.bigint() - t0) / 1e6);
  } finally {
    if (ctr) await quiet(t, 'rm', ctr);
    await quiet(t, 'rmi', `bench-script-${rep}`);
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function versionOf(argv: string[]): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim().split('\n')[0]! : '';
}

function hasCommand(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function unmountUnder(dir: string): void {
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

async function main(): Promise<void> {
  const base = mkdtempSync(join(tmpdir(), 'barge-bench-'));
  const tools: Tool[] = [];
  const cleanups: (() => Promise<void>)[] = [];
  const cleanupAll = async (): Promise<void> => {
    for (const c of cleanups) await c().catch(() => undefined);
    unmountUnder(base);
    rmSync(base, { recursive: true, force: true });
  };
  process.on('SIGINT', () => {
    void cleanupAll().finally(() => process.exit(130));
  });

  try {
    console.log(`barge bench: N=${N} (warm-up ${WARMUP}), ${cpus().length} CPUs, kernel ${release()}, work dir ${base}`);
    console.log(RUNTIME ? `OCI runtime for run: ${RUNTIME} (both tools)` : 'OCI runtime for run: each tool\'s default (BENCH_RUNTIME=runc|crun to force one)');
    const rootfsTar = join(base, 'busybox.tar');
    const copyDir = join(base, 'copy-src');
    const s = spawnSync('bash', [join(REPO, 'scripts', 'make-busybox-rootfs.sh'), rootfsTar], { stdio: 'inherit' });
    if (s.status !== 0) throw new Error('make-busybox-rootfs.sh failed');
    makeCopyTree(copyDir);

    const barge: Tool = {
      name: 'barge',
      // barge takes --runtime as a global flag, buildah as an option of run.
      argv: [
        join(REPO, 'bin', 'barge'),
        '--root', join(base, 'barge', 'root'),
        '--runroot', join(base, 'barge', 'runroot'),
        ...(RUNTIME ? ['--runtime', RUNTIME] : []),
      ],
      runOpts: [],
      version: versionOf([join(REPO, 'bin', 'barge'), '--version']),
    };
    tools.push(barge);
    cleanups.push(() => quiet(barge, 'rm', '--all'));

    if (hasCommand('buildah')) {
      const buildah: Tool = {
        name: 'buildah',
        argv: ['buildah', '--root', join(base, 'buildah', 'root'), '--runroot', join(base, 'buildah', 'runroot'), '--storage-driver', 'overlay'],
        runOpts: RUNTIME ? ['--runtime', RUNTIME] : [],
        version: versionOf(['buildah', '--version']),
      };
      tools.push(buildah);
      cleanups.push(() => quiet(buildah, 'rm', '--all'));
    } else {
      console.log('buildah not found (apt-get install buildah): printing barge numbers only');
    }

    // The same base image in both stores.
    const failed = new Map<string, string>();
    for (const t of tools) {
      try {
        if (t.name === 'barge') {
          await tool(t, 'import', rootfsTar, BASE_IMAGE);
        } else {
          // buildah has no import; build the same single-layer image from scratch.
          const c = lastLine((await tool(t, 'from', 'scratch')).stdout);
          await tool(t, 'add', c, rootfsTar, '/');
          await tool(t, 'commit', '-q', c, BASE_IMAGE);
          await quiet(t, 'rm', c);
        }
      } catch (e) {
        failed.set(t.name, `import of the base image failed: ${(e as Error).message}`);
      }
    }

    const samples = new Map<string, Map<StepName, number[]>>();
    for (const t of tools) samples.set(t.name, new Map(STEPS.map((st) => [st, [] as number[]])));

    // Interleave tools within each repetition so drift (page cache, other load) hits both alike.
    for (let rep = 0; rep < WARMUP + N; rep++) {
      const counting = rep >= WARMUP;
      process.stdout.write(counting ? `rep ${rep - WARMUP + 1}/${N}\n` : 'warm-up\n');
      for (const t of tools) {
        if (failed.has(t.name)) continue;
        const record = (st: StepName, ms: number): void => {
          if (counting) samples.get(t.name)!.get(st)!.push(ms);
        };
        try {
          await primitives(t, copyDir, rep, record);
          await scripted(t, copyDir, rep, record);
        } catch (e) {
          if (!(e instanceof StepError)) throw e;
          failed.set(t.name, e.message);
        }
      }
    }

    for (const [name, why] of failed) console.log(`\n${name} failed, its numbers are missing: ${why}`);

    const rows = STEPS.map((st) => {
      const med = (name: string): number | null => {
        const xs = samples.get(name)?.get(st) ?? [];
        return xs.length === N ? median(xs) : null;
      };
      const b = med('barge');
      const h = med('buildah');
      return {
        step: st,
        barge_ms: b,
        buildah_ms: h,
        ratio: b !== null && h !== null && h > 0 ? b / h : null,
        samples: Object.fromEntries(tools.map((t) => [t.name, samples.get(t.name)!.get(st)!])),
      };
    });

    const fmt = (v: number | null, digits: number): string => (v === null ? 'n/a' : v.toFixed(digits));
    const table = [['step', 'barge ms', 'buildah ms', 'barge/buildah'], ...rows.map((r) => [r.step, fmt(r.barge_ms, 1), fmt(r.buildah_ms, 1), fmt(r.ratio, 2)])];
    const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
    console.log(`\nmedians of ${N} runs${RUNTIME ? `, run --runtime ${RUNTIME}` : ''} (ratio < 1: barge is faster)`);
    for (const row of table) console.log(row.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '));

    mkdirSync(dirname(OUT), { recursive: true });
    writeFileSync(
      OUT,
      JSON.stringify(
        {
          date: new Date().toISOString(),
          n: N,
          warmup: WARMUP,
          runtime: RUNTIME || null,
          machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? '', kernel: release() },
          tools: Object.fromEntries(tools.map((t) => [t.name, { version: t.version, error: failed.get(t.name) ?? null }])),
          fixtures: { copy_bytes: COPY_BYTES, copy_files: COPY_FILES, base_image: BASE_IMAGE },
          results: rows,
        },
        null,
        2,
      ) + '\n',
    );
    console.log(`\nresults written to ${OUT}`);
    if (failed.has('barge')) process.exitCode = 1;
  } finally {
    await cleanupAll();
  }
}

await main();
