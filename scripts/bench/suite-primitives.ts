// Suite "primitives": each Buildah primitive timed alone, then a scripted build, barge vs buildah,
// on a busybox base image and a 20 MiB copy tree.
// Runs directly under Node 24 (type stripping): erasable TypeScript only, no imports from src/.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { COPY_TREE, makeTree } from './fixtures.ts';
import {
  bargeTool, buildahTool, hasCommand, lastLine, makeBusyboxRootfs, newCell, quiet, StepError, tool,
  type Cell, type Row, type SuiteEnv, type SuiteResult, type Tool,
} from './lib.ts';

export const BUSYBOX_IMAGE = 'localhost/busybox';
const BASE_IMAGE = BUSYBOX_IMAGE;
const STEPS = ['from', 'copy 20MB dir', 'run true', 'config --label', 'commit', 'scripted build'] as const;
type StepName = (typeof STEPS)[number];
export type Record = (s: StepName, ms: number) => void;

function runArgs(t: Tool, ctr: string, cmd: string[]): string[] {
  return ['run', ...t.runOpts, ctr, '--', ...cmd];
}

/** (a) each primitive timed alone, in the order a build uses them. */
async function primitives(t: Tool, copyDir: string, rep: number, record: Record): Promise<void> {
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
export async function scripted(t: Tool, copyDir: string, rep: number, record: Record): Promise<void> {
  let ctr = '';
  const t0 = process.hrtime.bigint();
  try {
    // BENCH_STEPS=1 prints each command's time: the total alone hides which step moved.
    const steps: number[] = [];
    const step = async (...args: string[]): Promise<{ stdout: string; ms: number }> => {
      const r = await tool(t, ...args);
      steps.push(Math.round(r.ms));
      return r;
    };
    ctr = lastLine((await step('from', BASE_IMAGE)).stdout);
    await step('copy', ctr, copyDir, '/data');
    await step(...runArgs(t, ctr, ['true']));
    await step(...runArgs(t, ctr, ['sh', '-c', 'echo a > /a']));
    await step(...runArgs(t, ctr, ['sh', '-c', 'rm -f /a']));
    await step('config', '--label', 'x=y', '--cmd', '["cat","/data/d0/s0/f0.bin"]', ctr);
    await step('commit', ctr, `bench-script-${rep}`);
    if (process.env.BENCH_STEPS) console.error(`${t.name} scripted build steps (from copy run run run config commit), ms: ${steps.join(' ')}`);
    record('scripted build', Number(process.hrtime.bigint() - t0) / 1e6);
  } finally {
    if (ctr) await quiet(t, 'rm', ctr);
    await quiet(t, 'rmi', `bench-script-${rep}`);
  }
}

export async function primitivesSuite(env: SuiteEnv): Promise<SuiteResult> {
  const dir = join(env.base, 'primitives');
  const notes: string[] = [];
  const rootfsTar = join(dir, 'busybox.tar');
  const copyDir = join(dir, 'copy-src');
  mkdirSync(dir, { recursive: true });
  makeBusyboxRootfs(env, rootfsTar);
  makeTree(copyDir, COPY_TREE);

  const tools: Tool[] = [bargeTool(env, join(dir, 'barge'))];
  env.onCleanup(() => quiet(tools[0]!, 'rm', '--all'));
  if (hasCommand('buildah')) {
    const b = buildahTool(env, join(dir, 'buildah'));
    tools.push(b);
    env.onCleanup(() => quiet(b, 'rm', '--all'));
  } else {
    notes.push('buildah not found (apt-get install buildah): barge numbers only');
  }

  const cells = new Map<string, Map<StepName, Cell>>();
  for (const name of ['barge', 'buildah']) cells.set(name, new Map(STEPS.map((st) => [st, newCell(name)])));
  const failed = new Map<string, string>();
  if (tools.length < 2) failed.set('buildah', 'not installed');

  // The same base image in both stores.
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
      if (!(e instanceof StepError)) throw e;
      failed.set(t.name, `import of the base image failed: ${e.message}`);
    }
  }

  // Interleave tools within each repetition so drift (page cache, other load) hits both alike.
  for (let rep = 0; rep < env.warmup + env.n; rep++) {
    const counting = rep >= env.warmup;
    env.log(counting ? `primitives: rep ${rep - env.warmup + 1}/${env.n}` : 'primitives: warm-up');
    for (const t of tools) {
      if (failed.has(t.name)) continue;
      const record: Record = (st, ms) => {
        if (counting) cells.get(t.name)!.get(st)!.samples.push(ms);
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

  // A tool that failed has no numbers for the steps it did not finish N times.
  for (const [name, why] of failed) {
    for (const c of cells.get(name)!.values()) if (c.samples.length < env.n) c.error = why;
  }

  const rows: Row[] = STEPS.map((st) => ({
    suite: 'primitives',
    step: st,
    barge: cells.get('barge')!.get(st)!,
    peer: cells.get('buildah')!.get(st)!,
    target: null,
  }));
  return {
    rows,
    tools: Object.fromEntries(tools.map((t) => [t.name, { version: t.version, error: failed.get(t.name) ?? null }])),
    fixtures: { copy_bytes: COPY_TREE.bytes, copy_files: COPY_TREE.files, base_image: BASE_IMAGE, warmup_reps: env.warmup },
    notes,
  };
}
