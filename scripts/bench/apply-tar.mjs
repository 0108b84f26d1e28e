#!/usr/bin/env node
// CPU cost of applying one layer tar: bundles each checkout's src/store/tar-apply.ts with
// esbuild, then applies the tar into a fresh temporary directory N times per checkout, in this
// process, and prints the median wall time and process CPU (user + system, GC threads included)
// per run. CPU, not wall time, is the figure to compare: the machine is shared and its load
// varies. With several --src the runs alternate between them, so a change of load hits both.
// The tar is read into memory once and fed in chunks of zlib's output size (what applyTar gets
// in a pull, where layers come gzipped), so reading the file is not counted; --stream reads it
// with a file stream instead.
//
//   node scripts/bench/apply-tar.mjs [--src CHECKOUT]... [--n 7] [--tar FILE] [--dir TMPDIR] [--chunk BYTES] [--stream]
//
// e.g. --src /work/main --src . compares main with this checkout (the default is this checkout).
import { build } from 'esbuild';
import { createReadStream, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    src: { type: 'string', multiple: true, default: [new URL('../..', import.meta.url).pathname] },
    n: { type: 'string', default: '7' },
    tar: { type: 'string', default: '/var/cache/barge-bench/bookworm-minbase.tar' },
    // zlib's output chunk size: what applyTar is fed in a pull, where layers come gzipped.
    chunk: { type: 'string', default: String(16 * 1024) },
    stream: { type: 'boolean', default: false },
    // tmpfs by default: ext4 here spends seconds of growing, noisy system time on file
    // creation, which hides the parser's share; --dir /var/tmp measures the real disk.
    dir: { type: 'string', default: existsSync('/dev/shm') ? '/dev/shm' : tmpdir() },
  },
});
const runs = Number.parseInt(args.n, 10);
const chunkSize = Number.parseInt(args.chunk, 10);
const scratch = mkdtempSync(path.join(args.dir, 'barge-apply-bench-'));

/** Bundles a checkout's applyTar into its own module, so that two checkouts can share a process. */
async function load(src, i) {
  const bundle = path.join(scratch, `tar-apply-${i}.mjs`);
  await build({
    entryPoints: [path.join(src, 'src/store/tar-apply.ts')],
    outfile: bundle,
    bundle: true,
    platform: 'node',
    format: 'esm',
    logLevel: 'warning',
    // esbuild's ESM output still needs require() for CommonJS packages (tar-stream).
    banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" },
  });
  const { applyTar } = await import(bundle);
  return { src, applyTar, wall: [], user: [], sys: [], cpu: [] };
}

try {
  const subjects = [];
  for (const [i, src] of args.src.entries()) subjects.push(await load(path.resolve(src), i));
  const whole = args.stream ? null : readFileSync(args.tar);
  const chunks = [];
  for (let off = 0; whole !== null && off < whole.length; off += chunkSize) chunks.push(whole.subarray(off, off + chunkSize));
  const input = () => (whole === null ? createReadStream(args.tar, { highWaterMark: chunkSize }) : Readable.from(chunks));

  // One untimed run each first: module initialisation and the page cache are not the parser.
  for (let i = -1; i < runs; i++) {
    for (const s of subjects) {
      const root = mkdtempSync(path.join(scratch, 'root-'));
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      // The store applies layers in 'overlay' mode; ownership is kept when running as root.
      await s.applyTar(input(), { root, whiteouts: 'overlay', noChown: process.getuid() !== 0 });
      const t1 = performance.now();
      const c = process.cpuUsage(c0);
      rmSync(root, { recursive: true, force: true });
      if (i < 0) continue;
      s.wall.push(t1 - t0);
      s.user.push(c.user / 1000);
      s.sys.push(c.system / 1000);
      s.cpu.push((c.user + c.system) / 1000);
      console.log(`${s.src} run ${i + 1}: wall ${(t1 - t0).toFixed(0)} ms, cpu ${((c.user + c.system) / 1000).toFixed(0)} ms (user ${(c.user / 1000).toFixed(0)}, sys ${(c.system / 1000).toFixed(0)})`);
    }
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const first = subjects[0];
  for (const s of subjects) {
    const change = s === first ? '' : `, cpu ${(((median(s.cpu) - median(first.cpu)) / median(first.cpu)) * 100).toFixed(0)}% against ${first.src}`;
    console.log(
      `${s.src}: median wall ${median(s.wall).toFixed(0)} ms, cpu ${median(s.cpu).toFixed(0)} ms (user ${median(s.user).toFixed(0)}, sys ${median(s.sys).toFixed(0)}) over ${runs} runs of ${path.basename(args.tar)}${change}`,
    );
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
