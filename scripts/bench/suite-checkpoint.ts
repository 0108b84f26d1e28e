// Suite "checkpoint": CRIU checkpoint and restore of a running container, barge vs podman, both
// with runc (the runtime that has CRIU support here), on the same busybox image:
//   checkpoint             `container checkpoint CTR` of a running counter (the process is dumped and stops)
//   restore                `container restore CTR` (the container runs again under conmon)
//   checkpoint + restore   the two together
// Runs directly under Node 24 (type stripping): erasable TypeScript only, no imports from src/.
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  bargeTool, hasCommand, lastLine, makeBusyboxRootfs, measure, newCell, podmanTool, quiet, StepError, tool, withRuntime,
  type Cell, type Row, type SuiteEnv, type SuiteResult, type Tool,
} from './lib.ts';

const IMAGE = 'localhost/busybox';
// Some memory state to dump: a shell counting in a loop.
const COUNTER = ['sh', '-c', 'i=0; while true; do i=$((i+1)); echo $i; sleep 0.1; done'];
const STEPS = ['checkpoint', 'restore', 'checkpoint + restore'] as const;
type Step = (typeof STEPS)[number];
const TARGETS: Record<Step, number> = { checkpoint: 0.7, restore: 0.7, 'checkpoint + restore': 0.7 };
const RUNTIME = 'runc';

export async function checkpointSuite(env: SuiteEnv): Promise<SuiteResult> {
  const dir = join(env.base, 'checkpoint');
  mkdirSync(dir, { recursive: true });
  const notes: string[] = [];
  const rootfsTar = join(dir, 'busybox.tar');
  makeBusyboxRootfs(env, rootfsTar);
  if (env.runtime && env.runtime !== RUNTIME) notes.push(`BENCH_RUNTIME=${env.runtime} ignored: checkpoints are measured with ${RUNTIME}`);

  const tools: Tool[] = [withRuntime(bargeTool(env, join(dir, 'barge')), RUNTIME)];
  if (hasCommand('podman')) tools.push(withRuntime(podmanTool(join(dir, 'podman')), RUNTIME));
  else notes.push('podman not found (apt-get install podman): barge numbers only');
  for (const t of tools) env.onCleanup(() => quiet(t, 'rm', '-af'));
  const failed = new Map<string, string>();
  if (tools.length < 2) failed.set('podman', 'not installed');
  if (!hasCommand('criu') && spawnSync('sh', ['-c', 'test -x /usr/local/sbin/criu']).status !== 0) {
    for (const t of tools) failed.set(t.name, 'criu not installed (run scripts/setup.sh)');
  }
  for (const t of tools) {
    if (failed.has(t.name)) continue;
    try {
      await tool(t, 'import', rootfsTar, IMAGE);
    } catch (e) {
      if (!(e instanceof StepError)) throw e;
      failed.set(t.name, `import of the image failed: ${e.message}`);
    }
  }

  const cells = new Map<string, Cell>();
  const cell = (toolName: string, step: Step): Cell => {
    const k = `${toolName}|${step}`;
    if (!cells.has(k)) cells.set(k, newCell(toolName));
    return cells.get(k)!;
  };

  for (let rep = 0; rep < env.warmup + env.n; rep++) {
    const counting = rep >= env.warmup;
    env.log(counting ? `checkpoint: rep ${rep - env.warmup + 1}/${env.n}` : 'checkpoint: warm-up');
    // Alternate which tool goes first, so drift hits both alike.
    const order = rep % 2 === 0 ? tools : [...tools].reverse();
    for (const t of order) {
      if (failed.has(t.name)) continue;
      let id = '';
      try {
        id = lastLine((await tool(t, 'run', '-d', '--network', 'none', IMAGE, ...COUNTER)).stdout);
      } catch (e) {
        if (!(e instanceof StepError)) throw e;
        failed.set(t.name, `run -d failed: ${e.message}`);
        continue;
      }
      // Let it count a little, so there is a process state worth dumping.
      await new Promise((r) => setTimeout(r, 300));
      let ckMs = 0;
      const dumped = await measure(cell(t.name, 'checkpoint'), counting, async () => {
        ckMs = (await tool(t, 'container', 'checkpoint', id)).ms;
        return ckMs;
      });
      if (dumped) {
        let rsMs = 0;
        const restored = await measure(cell(t.name, 'restore'), counting, async () => {
          rsMs = (await tool(t, 'container', 'restore', id)).ms;
          return rsMs;
        });
        if (restored && counting) cell(t.name, 'checkpoint + restore').samples.push(ckMs + rsMs);
      }
      await quiet(t, 'rm', '-f', id);
    }
  }

  const rows: Row[] = STEPS.map((step) => {
    const b = cell('barge', step);
    const p = cell('podman', step);
    for (const [name, why] of failed) {
      const c = name === 'barge' ? b : p;
      if (c.samples.length < env.n) c.error ??= why;
    }
    // A step that failed earlier leaves its sum cell short of samples: say why.
    for (const c of [b, p]) {
      if (step === 'checkpoint + restore' && c.samples.length < env.n) c.error ??= cell(c.tool, 'restore').error ?? cell(c.tool, 'checkpoint').error;
    }
    return { suite: 'checkpoint', step: `${step} (${RUNTIME})`, barge: b, peer: p, target: TARGETS[step], targetRef: 'issue 6' };
  });
  return {
    rows,
    tools: Object.fromEntries(tools.map((t) => [t.name, { version: t.version, error: failed.get(t.name) ?? null }])),
    fixtures: { image: IMAGE, runtime: RUNTIME, workload: COUNTER.join(' '), warmup_reps: env.warmup },
    notes,
  };
}
