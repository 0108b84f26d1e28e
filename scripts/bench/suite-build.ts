// Suite "build" (issue 3): a 4-step Containerfile on a debootstrap minbase image with a 170 MiB
// context, cold (--no-cache) and fully cached, `barge build --layers` vs `buildah build --layers`.
// Runs directly under Node 24 (type stripping): erasable TypeScript only, no imports from src/.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BUILD_CONTEXT, makeTree } from './fixtures.ts';
import {
  bargeTool, buildahTool, flushDirty, hasCommand, lastLine, measure, newCell, quiet, StepError, tool,
  type Cell, type CmdResult, type SuiteEnv, type SuiteResult, type Tool,
} from './lib.ts';

export const BASE_IMAGE = 'localhost/bench-base';
export const TAG = 'localhost/bench-build';
// The file is kept outside the context, so COPY . copies exactly the generated tree.
export const CONTAINERFILE = `FROM ${BASE_IMAGE}
COPY . /ctx
RUN du -s /ctx > /size
LABEL org.example.bench=build
`;
export const CACHEABLE_STEPS = 3;

/** barge import / buildah from scratch + add + commit: the same one-layer base in both stores. */
export async function importBase(t: Tool, rootfsTar: string, name: string): Promise<void> {
  if (t.name === 'barge') {
    await tool(t, 'import', rootfsTar, name);
    return;
  }
  const c = lastLine((await tool(t, 'from', 'scratch')).stdout);
  try {
    await tool(t, 'add', c, rootfsTar, '/');
    await tool(t, 'commit', '-q', c, name);
  } finally {
    await quiet(t, 'rm', c);
  }
}

/**
 * One repetition's cold build, then (if it worked) its fully cached rebuild, for one tool; a
 * cached build that re-ran a cacheable step is counted in `misses` rather than hidden.
 */
export async function coldThenCached(
  o: { cold: Cell; cached: Cell; counting: boolean; misses: number[]; build: (noCache: boolean) => Promise<CmdResult>; before?: () => void },
): Promise<void> {
  o.before?.();
  const coldOk = await measure(o.cold, o.counting, async () => (await o.build(true)).ms);
  if (!coldOk) {
    if (o.cached.error === null) o.cached.error = 'not measured: the cold build failed';
    return;
  }
  o.before?.();
  await measure(o.cached, o.counting, async () => {
    const r = await o.build(false);
    const hits = (r.stdout + r.stderr).split('\n').filter((l) => /Using cache/.test(l)).length;
    if (o.counting) o.misses.push(CACHEABLE_STEPS - hits);
    return r.ms;
  });
}

/** A note for each tool whose "cached" builds were not all cache hits. */
export function cacheMissNotes(cacheMisses: Map<string, number[]>): string[] {
  const notes: string[] = [];
  for (const [name, misses] of cacheMisses) {
    const bad = misses.filter((m) => m > 0).length;
    if (bad > 0) notes.push(`${name}: ${bad} of ${misses.length} "cached" builds did not report "Using cache" for all ${CACHEABLE_STEPS} cacheable steps`);
  }
  return notes;
}

export async function buildSuite(env: SuiteEnv): Promise<SuiteResult> {
  const dir = join(env.base, 'build');
  const notes: string[] = [];
  const rootfsTar = env.debootstrapTar();
  const ctx = join(dir, 'context');
  const cfDir = join(dir, 'containerfile');
  const cf = join(cfDir, 'Containerfile');
  env.log(`build: writing the ${(BUILD_CONTEXT.bytes / 1048576).toFixed(0)} MiB, ${BUILD_CONTEXT.files}-file context`);
  makeTree(ctx, BUILD_CONTEXT);
  mkdirSync(cfDir, { recursive: true });
  writeFileSync(cf, CONTAINERFILE);

  const barge = bargeTool(env, join(dir, 'barge'));
  const tools: Tool[] = [barge];
  const cold = new Map<string, Cell>([['barge', newCell('barge')], ['buildah', newCell('buildah')]]);
  const cached = new Map<string, Cell>([['barge', newCell('barge')], ['buildah', newCell('buildah')]]);
  if (hasCommand('buildah')) tools.push(buildahTool(env, join(dir, 'buildah')));
  else for (const m of [cold, cached]) m.get('buildah')!.error = 'buildah not installed';
  for (const t of tools) env.onCleanup(() => quiet(t, 'rm', '--all'));

  env.log('build: importing the debootstrap base into both stores');
  for (const t of tools) {
    try {
      await importBase(t, rootfsTar, BASE_IMAGE);
    } catch (e) {
      if (!(e instanceof StepError)) throw e;
      for (const m of [cold, cached]) m.get(t.name)!.error = `import of the base image failed: ${e.message}`;
    }
  }

  const buildArgs = (noCache: boolean): string[] => ['build', '--layers', ...(noCache ? ['--no-cache'] : []), '-f', cf, '-t', TAG, ctx];
  const cacheMisses = new Map<string, number[]>(tools.map((t) => [t.name, []]));
  // Warm-up repetitions (BENCH_WARMUP) pay first-use costs (compile caches, network setup).
  for (let rep = 0; rep < env.warmup + env.n; rep++) {
    const counting = rep >= env.warmup;
    env.log(counting ? `build: rep ${rep - env.warmup + 1}/${env.n}` : 'build: warm-up');
    // Alternate which tool goes first, so neither always inherits the other's page cache state.
    const order = rep % 2 === 0 ? tools : [...tools].reverse();
    for (const t of order) {
      await coldThenCached({
        cold: cold.get(t.name)!, cached: cached.get(t.name)!, counting, misses: cacheMisses.get(t.name)!,
        build: (noCache) => tool(t, ...buildArgs(noCache)), before: flushDirty,
      });
    }
  }
  notes.push(...cacheMissNotes(cacheMisses));

  return {
    rows: [
      { suite: 'build', step: 'build cold (--no-cache)', barge: cold.get('barge')!, peer: cold.get('buildah')!, target: 0.7, targetRef: 'issue 3' },
      { suite: 'build', step: 'build fully cached', barge: cached.get('barge')!, peer: cached.get('buildah')!, target: 0.1, targetRef: 'issue 3' },
    ],
    tools: Object.fromEntries(tools.map((t) => [t.name, { version: t.version, error: null }])),
    fixtures: {
      base_image: `debootstrap --variant=minbase bookworm (${rootfsTar})`,
      containerfile: CONTAINERFILE,
      context_bytes: BUILD_CONTEXT.bytes,
      context_files: BUILD_CONTEXT.files,
      context_text_share: BUILD_CONTEXT.textShare,
      build_flags: buildArgs(true).slice(0, 3).join(' ') + ' (cold) / build --layers (cached)',
      cache_misses: Object.fromEntries(cacheMisses),
    },
    notes,
  };
}
