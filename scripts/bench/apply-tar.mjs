#!/usr/bin/env node
// CPU cost of applying one layer tar: bundles a checkout's src/store/tar-apply.ts with esbuild,
// then applies the tar into a fresh temporary directory N times, in this process, and prints the
// median wall time and process CPU (user + system, GC threads included) per run. CPU, not wall
// time, is the figure to compare: the machine is shared and its load varies.
// The tar is read into memory once and fed in chunks of zlib's output size (what applyTar gets
// in a pull, where layers come gzipped), so reading the file is not counted; --stream reads it
// with a file stream instead.
//
//   node scripts/bench/apply-tar.mjs [--src CHECKOUT] [--n 7] [--tar FILE] [--label NAME] [--dir TMPDIR] [--chunk BYTES] [--stream]
//
// Compare two checkouts by running it once per --src (e.g. /work/main, then this worktree).
import { build } from 'esbuild';
import { createReadStream, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    src: { type: 'string', default: new URL('../..', import.meta.url).pathname },
    n: { type: 'string', default: '7' },
    tar: { type: 'string', default: '/var/cache/barge-bench/bookworm-minbase.tar' },
    label: { type: 'string' },
    // zlib's output chunk size: what applyTar is fed in a pull, where layers come gzipped.
    chunk: { type: 'string', default: String(16 * 1024) },
    stream: { type: 'boolean', default: false },
    dir: { type: 'string', default: existsSync('/dev/shm') ? '/dev/shm' : tmpdir() },
  },
});
const src = path.resolve(args.src);
const runs = Number.parseInt(args.n, 10);
// tmpfs by default: ext4 here spends seconds of growing, noisy system time on file creation,
// which hides the parser's share; --dir /var/tmp measures the real disk.
const scratch = mkdtempSync(path.join(args.dir, 'barge-apply-bench-'));

try {
  const bundle = path.join(scratch, 'tar-apply.mjs');
  await build({
    entryPoints: [path.join(src, 'src/store/tar-apply.ts')],
    outfile: bundle,
    bundle: true,
    platform: 'node',
    format: 'esm',
    logLevel: 'warning',
    // esbuild's ESM output still needs require() for the CommonJS packages (tar-stream).
    banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" },
  });
  const { applyTar } = await import(bundle);

  const chunk = Number.parseInt(args.chunk, 10);
  const whole = args.stream ? null : readFileSync(args.tar);
  const chunks = [];
  for (let off = 0; whole !== null && off < whole.length; off += chunk) chunks.push(whole.subarray(off, off + chunk));
  const input = () => (whole === null ? createReadStream(args.tar, { highWaterMark: chunk }) : Readable.from(chunks));

  const wall = [];
  const cpu = [];
  const user = [];
  const sys = [];
  // One untimed run first: module initialisation and the page cache of the tar are not the parser.
  for (let i = -1; i < runs; i++) {
    const root = mkdtempSync(path.join(scratch, 'root-'));
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    // The store applies layers in 'overlay' mode; ownership is kept when running as root.
    await applyTar(input(), { root, whiteouts: 'overlay', noChown: process.getuid() !== 0 });
    const t1 = performance.now();
    const c = process.cpuUsage(c0);
    if (i >= 0) {
      wall.push(t1 - t0);
      cpu.push((c.user + c.system) / 1000);
      user.push(c.user / 1000);
      sys.push(c.system / 1000);
      console.log(`run ${i + 1}: wall ${(t1 - t0).toFixed(0)} ms, cpu ${((c.user + c.system) / 1000).toFixed(0)} ms (user ${(c.user / 1000).toFixed(0)}, sys ${(c.system / 1000).toFixed(0)})`);
    }
    rmSync(root, { recursive: true, force: true });
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log(`${args.label ?? src}: median wall ${median(wall).toFixed(0)} ms, median cpu ${median(cpu).toFixed(0)} ms (user ${median(user).toFixed(0)}, sys ${median(sys).toFixed(0)}) over ${runs} runs of ${path.basename(args.tar)}`);
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
