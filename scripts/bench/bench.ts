// `npm run bench`: barge against its peers (buildah, podman, skopeo), same run, same fixtures,
// separate throwaway stores. Suites:
//   primitives  each Buildah primitive alone and a scripted build, vs buildah (busybox base)
//   build       4-step Containerfile, 170 MiB context, cold and cached, vs buildah --layers (issue 3)
//   pull        local registry -> empty store vs podman; registry -> oci: vs skopeo (issue 4)
//   run         run --rm true, run -d, stop, with runc and crun, vs podman; conmon's RSS (issue 6)
//   checkpoint  CRIU checkpoint and restore of a running container (runc), vs podman (issue 6)
//   rootless    scripted and Containerfile builds as an unprivileged user, vs rootless buildah (issue 5)
// Env: BENCH_SUITES (comma list, default all), BENCH_N (repetitions, default 5), BENCH_WARMUP
// (untimed warm-up reps per suite, default 1), BENCH_RUNTIME (runc|crun for both tools'
// `run`), BENCH_OUT (default .bench/results.json), BENCH_CACHE (default /var/cache/barge-bench,
// where the debootstrap base tarball is kept), BENCH_STEP_TIMEOUT (seconds per command, 600),
// BENCH_STEPS=1 (print each command of the scripted builds with its time, on stderr).
// Exit status: 0 when every suite ran (a tool failing a step is a result, shown in the table),
// 1 on harness errors (fixtures, registry, bad settings).
// Runs directly under Node 24 (type stripping): erasable TypeScript only, no imports from src/.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cellMedian, positiveInt, removeTree, type Cell, type Row, type SuiteEnv, type SuiteResult } from './lib.ts';
import { buildSuite } from './suite-build.ts';
import { primitivesSuite } from './suite-primitives.ts';
import { pullSuite } from './suite-pull.ts';
import { runSuite } from './suite-run.ts';
import { checkpointSuite } from './suite-checkpoint.ts';
import { rootlessSuite } from './suite-rootless.ts';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SUITES: Record<string, (env: SuiteEnv) => Promise<SuiteResult>> = {
  primitives: primitivesSuite,
  build: buildSuite,
  pull: pullSuite,
  run: runSuite,
  checkpoint: checkpointSuite,
  rootless: rootlessSuite,
};

function selectedSuites(): string[] {
  const v = (process.env.BENCH_SUITES ?? '').trim();
  if (v === '' || v === 'all') return Object.keys(SUITES);
  const names = v.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const unknown = names.filter((s) => !(s in SUITES));
  if (unknown.length > 0) throw new Error(`BENCH_SUITES: unknown suite ${unknown.join(', ')} (known: ${Object.keys(SUITES).join(', ')})`);
  return Object.keys(SUITES).filter((s) => names.includes(s));
}

const fmtMs = (v: number | null): string => (v === null ? 'n/a' : v.toFixed(0));
const load = (): string => loadavg().map((l) => l.toFixed(2)).join(' ');

/** Half the range of the samples relative to their median: a rough noise figure. */
function spread(c: Cell, n: number): string {
  const m = cellMedian(c, n);
  if (m === null || m === 0 || c.samples.length < 2) return '';
  return `±${((50 * (Math.max(...c.samples) - Math.min(...c.samples))) / m).toFixed(0)}%`;
}

function cellText(c: Cell, n: number): string {
  if (c.error !== null) {
    const short = c.error.length > 60 ? c.error.slice(0, 57) + '...' : c.error;
    return c.error.startsWith('not measured') || c.error.includes('not installed') ? short : `failed: ${short}`;
  }
  return fmtMs(cellMedian(c, n));
}

async function main(): Promise<void> {
  const n = positiveInt(process.env.BENCH_N, 5);
  const warmup = positiveInt(process.env.BENCH_WARMUP, 1, true);
  const out = process.env.BENCH_OUT ?? join(REPO, '.bench', 'results.json');
  const runtime = process.env.BENCH_RUNTIME ?? '';
  const cacheDir = process.env.BENCH_CACHE ?? '/var/cache/barge-bench';
  const suites = selectedSuites();

  const base = mkdtempSync(join(tmpdir(), 'barge-bench-'));
  const cleanups: (() => Promise<void> | void)[] = [];
  let cleaned = false;
  const cleanupAll = async (): Promise<void> => {
    if (cleaned) return;
    cleaned = true;
    // Last registered first: containers before stores, registries stopped.
    for (const c of [...cleanups].reverse()) await Promise.resolve().then(c).catch(() => undefined);
    removeTree(base);
  };
  for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.on(sig, () => {
      console.error(`\nbench: ${sig}, cleaning up`);
      void cleanupAll().finally(() => process.exit(code));
    });
  }

  let debootstrapTar = '';
  const env: SuiteEnv = {
    repo: REPO,
    base,
    n,
    warmup,
    runtime,
    debootstrapTar: () => {
      if (debootstrapTar) return debootstrapTar;
      const r = spawnSync('bash', [join(REPO, 'scripts', 'bench', 'debootstrap-base.sh'), cacheDir], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
      if (r.status !== 0) throw new Error('scripts/bench/debootstrap-base.sh failed (see above)');
      debootstrapTar = r.stdout.trim().split('\n').at(-1)!;
      return debootstrapTar;
    },
    onCleanup: (fn) => cleanups.push(fn),
    log: (msg) => console.log(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${msg}`),
  };

  const t0 = Date.now();
  const loadStart = load();
  const rows: Row[] = [];
  const results: Record<string, SuiteResult> = {};
  const harnessErrors: string[] = [];
  try {
    console.log(`barge bench: suites ${suites.join(',')}, N=${n} (warm-up ${warmup} per suite), ${cpus().length} CPUs, kernel ${release()}, load ${loadStart}, work dir ${base}`);
    console.log(runtime ? `OCI runtime for run: ${runtime} (both tools)` : 'OCI runtime for run: each tool\'s default (BENCH_RUNTIME=runc|crun to force one)');
    for (const name of suites) {
      const ts = Date.now();
      try {
        const r = await SUITES[name]!(env);
        results[name] = r;
        rows.push(...r.rows);
      } catch (e) {
        // A harness error stops this suite only; the others still run.
        const msg = (e as Error).message;
        harnessErrors.push(`${name}: ${msg}`);
        console.error(`bench: suite ${name} aborted (harness error): ${msg}`);
      }
      env.log(`${name}: done in ${((Date.now() - ts) / 1000).toFixed(0)} s`);
    }
  } finally {
    await cleanupAll();
  }
  const loadEnd = load();
  const totalS = (Date.now() - t0) / 1000;

  const resultRows = rows.map((r) => {
    const b = cellMedian(r.barge, n);
    const p = cellMedian(r.peer, n);
    const ratio = b !== null && p !== null && p > 0 ? b / p : null;
    return { ...r, bargeMs: b, peerMs: p, ratio, met: ratio === null || r.target === null ? null : ratio <= r.target };
  });

  const header = ['suite', 'step', 'barge ms', '±', 'peer', 'peer ms', '±', 'barge/peer', 'target'];
  const table = [
    header,
    ...resultRows.map((r) => [
      r.suite,
      r.step,
      cellText(r.barge, n),
      spread(r.barge, n),
      r.peer.tool,
      cellText(r.peer, n),
      spread(r.peer, n),
      r.ratio === null ? 'n/a' : r.ratio.toFixed(2),
      r.target === null ? '-' : `<= ${r.target.toFixed(2)} ${r.met === null ? '' : r.met ? 'met' : 'MISSED'}`.trim(),
    ]),
  ];
  const widths = header.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  const numeric = new Set([2, 3, 5, 6, 7]);
  console.log(`\nmedians of ${n} runs${runtime ? `, run --runtime ${runtime}` : ''}; ratio < 1: barge is faster; ± is half the range of the runs`);
  for (const row of table) console.log(row.map((c, i) => (numeric.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd());

  const failures = resultRows.flatMap((r) =>
    [r.barge, r.peer].filter((c) => c.error !== null).map((c) => `${r.suite} / ${r.step} / ${c.tool}: ${c.error}`));
  if (failures.length > 0) {
    console.log('\nfailed or not measured:');
    for (const f of failures) console.log(`  ${f}`);
  }
  const notes = Object.entries(results).flatMap(([s, r]) => r.notes.map((x) => `${s}: ${x}`));
  if (notes.length > 0) {
    console.log('\nnotes:');
    for (const x of notes) console.log(`  ${x}`);
  }
  for (const h of harnessErrors) console.log(`\nHARNESS ERROR in suite ${h}`);
  console.log(`\nload average (1/5/15 min) at start ${loadStart}, at end ${loadEnd}; total ${totalS.toFixed(0)} s`);

  const tools: Record<string, { version: string; error: string | null }> = {};
  for (const r of Object.values(results)) for (const [k, v] of Object.entries(r.tools)) tools[k] ??= v;
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(
    out,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        n,
        warmup,
        suites,
        runtime: runtime || null,
        total_seconds: Math.round(totalS),
        machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? '', kernel: release(), loadavg_start: loadStart, loadavg_end: loadEnd },
        tools,
        fixtures: Object.fromEntries(Object.entries(results).map(([s, r]) => [s, r.fixtures])),
        notes,
        harness_errors: harnessErrors,
        results: resultRows.map((r) => ({
          suite: r.suite,
          step: r.step,
          barge_ms: r.bargeMs,
          peer: r.peer.tool,
          peer_ms: r.peerMs,
          ratio: r.ratio,
          target: r.target,
          target_ref: r.targetRef ?? null,
          target_met: r.met,
          errors: { barge: r.barge.error, [r.peer.tool]: r.peer.error },
          samples: { barge: r.barge.samples, [r.peer.tool]: r.peer.samples },
        })),
      },
      null,
      2,
    ) + '\n',
  );
  console.log(`results written to ${out}`);
  if (harnessErrors.length > 0) process.exitCode = 1;
}

try {
  await main();
} catch (e) {
  console.error(`bench: ${(e as Error).message}`);
  process.exitCode = 1;
}
