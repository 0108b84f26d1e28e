// Suite "run": Podman-style containers, barge vs podman on the same busybox image, with runc and
// with crun (podman honours containers.conf, barge too; each runtime is forced here so both
// tools use the same one in a row):
//   run --rm --network none IMAGE true   a whole foreground container life
//   run -d                               a detached container under conmon, until barge returns
//   stop                                 the stop signal (the container exits at once on TERM), wait, cleanup
//   run -d + stop                        the two together
// Also reported: the resident memory (VmRSS) of the conmon monitoring a running container, the
// only process left behind by either tool.
// Runs directly under Node 24 (type stripping): erasable TypeScript only, no imports from src/.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  bargeTool, hasCommand, lastLine, makeBusyboxRootfs, measure, newCell, podmanTool, quiet, StepError, tool, withRuntime,
  type Cell, type Row, type SuiteEnv, type SuiteResult, type Tool,
} from './lib.ts';

const IMAGE = 'localhost/busybox';
// Exits as soon as TERM arrives (a trapped signal interrupts `wait`), so `stop` measures the
// tools and not a stop timeout.
const SERVICE = ['sh', '-c', 'trap "exit 0" TERM; sleep 600 & wait'];
const STEPS = ['run --rm --network none true', 'run -d', 'stop', 'run -d + stop'] as const;
type Step = (typeof STEPS)[number];
const TARGETS: Partial<Record<Step, number>> = { 'run --rm --network none true': 0.5, 'run -d + stop': 0.5 };

/** VmRSS in KiB of a process, or null. */
function rssKiB(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

async function conmonPid(t: Tool, id: string): Promise<number> {
  const out = await tool(t, 'inspect', '--format', '{{.State.ConmonPid}}', id);
  return Number(lastLine(out.stdout));
}

export async function runSuite(env: SuiteEnv): Promise<SuiteResult> {
  const dir = join(env.base, 'run');
  mkdirSync(dir, { recursive: true });
  const notes: string[] = [];
  const rootfsTar = join(dir, 'busybox.tar');
  makeBusyboxRootfs(env, rootfsTar);

  const barge = bargeTool(env, join(dir, 'barge'));
  const tools: Tool[] = [barge];
  if (hasCommand('podman')) tools.push(podmanTool(join(dir, 'podman')));
  else notes.push('podman not found (apt-get install podman): barge numbers only');
  for (const t of tools) env.onCleanup(() => quiet(t, 'rm', '-af'));
  const failed = new Map<string, string>();
  if (tools.length < 2) failed.set('podman', 'not installed');
  for (const t of tools) {
    try {
      await tool(t, 'import', rootfsTar, IMAGE);
    } catch (e) {
      if (!(e instanceof StepError)) throw e;
      failed.set(t.name, `import of the image failed: ${e.message}`);
    }
  }

  const runtimes = env.runtime ? [env.runtime] : ['runc', 'crun'].filter((r) => hasCommand(r) || spawnSync('sh', ['-c', `test -x /usr/sbin/${r}`]).status === 0);
  const cells = new Map<string, Cell>();
  const cell = (tool: string, runtime: string, step: Step): Cell => {
    const k = `${tool}|${runtime}|${step}`;
    if (!cells.has(k)) cells.set(k, newCell(tool));
    return cells.get(k)!;
  };
  const rss = new Map<string, number[]>();

  for (let rep = 0; rep < env.warmup + env.n; rep++) {
    const counting = rep >= env.warmup;
    env.log(counting ? `run: rep ${rep - env.warmup + 1}/${env.n}` : 'run: warm-up');
    for (const runtime of runtimes) {
      // Alternate which tool goes first, so drift hits both alike.
      const order = rep % 2 === 0 ? tools : [...tools].reverse();
      for (const base of order) {
        if (failed.has(base.name)) continue;
        const t = withRuntime(base, runtime);
        await measure(cell(t.name, runtime, 'run --rm --network none true'), counting, async () =>
          (await tool(t, 'run', '--rm', '--network', 'none', IMAGE, 'true')).ms);
        let id = '';
        const started = await measure(cell(t.name, runtime, 'run -d'), counting, async () => {
          const r = await tool(t, 'run', '-d', '--network', 'none', IMAGE, ...SERVICE);
          id = lastLine(r.stdout);
          return r.ms;
        });
        if (!started) continue;
        const pid = await conmonPid(t, id).catch(() => 0);
        const kib = pid > 0 ? rssKiB(pid) : null;
        if (counting && kib !== null) rss.set(`${t.name} ${runtime}`, [...(rss.get(`${t.name} ${runtime}`) ?? []), kib]);
        let stopMs = 0;
        const stopped = await measure(cell(t.name, runtime, 'stop'), counting, async () => {
          stopMs = (await tool(t, 'stop', id)).ms;
          return stopMs;
        });
        if (stopped && counting) {
          const c = cell(t.name, runtime, 'run -d');
          cell(t.name, runtime, 'run -d + stop').samples.push(c.samples.at(-1)! + stopMs);
        }
        await quiet(t, 'rm', '-f', id);
      }
    }
  }

  const rows: Row[] = [];
  for (const runtime of runtimes) {
    for (const step of STEPS) {
      const b = cell('barge', runtime, step);
      const p = cell('podman', runtime, step);
      for (const [name, why] of failed) {
        const c = name === 'barge' ? b : p;
        if (c.samples.length < env.n) c.error ??= why;
      }
      rows.push({ suite: 'run', step: `${step} (${runtime})`, barge: b, peer: p, target: TARGETS[step] ?? null, targetRef: 'issue 6' });
    }
  }
  const rssMedians: Record<string, number> = {};
  for (const [k, v] of rss) {
    const sorted = [...v].sort((a, b) => a - b);
    rssMedians[k] = sorted[sorted.length >> 1]!;
  }
  if (Object.keys(rssMedians).length > 0) {
    notes.push(`conmon RSS of a running container (median KiB): ${Object.entries(rssMedians).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  }
  return {
    rows,
    tools: Object.fromEntries(tools.map((t) => [t.name, { version: t.version, error: failed.get(t.name) ?? null }])),
    fixtures: { image: IMAGE, runtimes, service: SERVICE.join(' '), conmon_rss_kib: rssMedians, warmup_reps: env.warmup },
    notes,
  };
}
