// `barge stats` / `container stats`: Podman's table of containers' resource use, once
// (--no-stream) or refreshed every --interval seconds until interrupted.

import { ExitError, goUnitsSize, isRootless, openStore, type GlobalOptions } from '../context.ts';
import type { Store } from '../../store/store.ts';
import { isActive, type Container } from '../../containers/record.ts';
import { liveState } from '../../containers/lifecycle.ts';
import { sampleStats, type ContainerStats } from '../../containers/stats.ts';
import { goDuration } from '../../containers/top.ts';
import { hostIsCgroup2 } from '../../runtime/spec.ts';
import { goJSON } from '../gotemplate.ts';
import { formatRows, isJSONFormat } from '../table.ts';
import { refreshEvery } from '../watch.ts';

type Opts = Record<string, unknown>;

const DEFAULT_TABLE = 'table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDS}}\t{{.UpTime}}\t{{.AVGCPU}}';
const HEADERS: Record<string, string> = {
  ID: 'ID', UpTime: 'CPU TIME', AVGCPU: 'AVG CPU %', CPUPerc: 'CPU %', MemUsage: 'MEM USAGE / LIMIT', MemUsageBytes: 'MEM USAGE / LIMIT',
  MemPerc: 'MEM %', NetIO: 'NET IO', BlockIO: 'BLOCK IO', PIDS: 'PIDS',
};

const toContainer = (record: Container['record']): Container => ({ record, data: JSON.parse(record.data) as Container['data'] });

/** The containers one round reports on: those named, the latest, all, or the running ones (in id order, as Podman lists them). */
function select(store: Store, refs: readonly string[], o: Opts): Container[] {
  if (refs.length) {
    return refs.flatMap((ref) => {
      const r = store.findContainer(ref);
      if (!r || r.kind !== 'container') {
        throw new ExitError(`unable to get list of containers: unable to look up container ${ref}: no container with name or ID "${ref}" found: no such container`, 125);
      }
      return [toContainer(r)];
    });
  }
  const all = store.listContainers('container').map(toContainer);
  if (o.latest) return all.slice(-1);
  const shown = o.all ? all : all.filter((c) => isActive(liveState(store, c).status));
  return shown.sort((a, b) => (a.record.id < b.record.id ? -1 : 1));
}

const humanSize = (n: number): string => goUnitsSize(n, 4);
const bytesSize = (n: number): string => goUnitsSize(n, 4, { binary: true });
const percent = (f: number): string => `${f.toFixed(2)}%`;

/**
 * The fields Podman's stats templates see: the sample's own (full-precision numbers) and the
 * formatted strings of its table, under Podman's names (PIDs is the number, PIDS the string).
 */
function statsFields(st: ContainerStats, noTrunc: boolean): Record<string, unknown> {
  const cpuTime = goDuration(st.cpuNano);
  return {
    AvgCPU: st.avgCpu, AVGCPU: percent(st.avgCpu), BlockInput: st.blockInput, BlockIO: `${humanSize(st.blockInput)} / ${humanSize(st.blockOutput)}`,
    BlockOutput: st.blockOutput, ContainerID: st.containerId, CPU: st.cpu, CPUNano: st.cpuNano, CPUPerc: percent(st.cpu),
    CPUSystemNano: st.cpuSystemNano, Duration: st.cpuNano, ID: noTrunc ? st.containerId : st.containerId.slice(0, 12),
    MemLimit: st.memLimit, MemPerc: percent(st.memPerc), MemUsage: `${humanSize(st.memUsage)} / ${humanSize(st.memLimit)}`,
    MemUsageBytes: `${bytesSize(st.memUsage)} / ${bytesSize(st.memLimit)}`, Name: st.name, NetInput: st.netInput,
    NetIO: `${humanSize(st.netInput)} / ${humanSize(st.netOutput)}`, NetOutput: st.netOutput, PerCPU: st.perCpu, PIDs: st.pids,
    PIDS: String(st.pids), SystemNano: st.systemNano, Up: cpuTime, UpTime: cpuTime,
  };
}

/** Podman's `stats --format json` entry: the table's strings under snake_case keys. */
function statsJSON(st: ContainerStats, noTrunc: boolean): Record<string, string> {
  const f = statsFields(st, noTrunc);
  const s = (k: string): string => String(f[k]);
  return {
    id: s('ID'), name: st.name, cpu_time: s('UpTime'), cpu_percent: s('CPUPerc'), avg_cpu: s('AVGCPU'), mem_usage: s('MemUsage'),
    mem_percent: s('MemPerc'), net_io: s('NetIO'), block_io: s('BlockIO'), pids: s('PIDS'),
  };
}

function render(stats: readonly ContainerStats[], format: string | undefined, noTrunc: boolean): string {
  if (format !== undefined && isJSONFormat(format)) return `${goJSON(stats.map((s) => statsJSON(s, noTrunc)), 1)}\n`;
  return formatRows(stats.map((s) => statsFields(s, noTrunc)), { ...(format !== undefined && { format }), defaultTable: DEFAULT_TABLE, headers: HEADERS });
}

/** `barge stats [-a] [-l] [--no-stream] [--no-reset] [--no-trunc] [-i N] [--format F] [CONTAINER…]` */
export async function statsCmd(g: GlobalOptions, args: string[], o: Opts): Promise<number> {
  if ([o.all === true, o.latest === true, args.length > 0].filter(Boolean).length > 1) {
    throw new ExitError('--all, --latest and containers cannot be used together', 125);
  }
  const interval = Number(o.interval ?? 5);
  if (!/^[+-]?\d+$/.test(String(o.interval ?? 5))) {
    throw new ExitError(`invalid argument "${String(o.interval)}" for "-i, --interval" flag: strconv.ParseInt: parsing "${String(o.interval)}": invalid syntax`, 125);
  }
  if (interval <= 0) throw new ExitError('invalid interval, must be a positive number greater zero', 125);
  // Rootless on cgroup v1 the runtime makes no cgroup for the container, so there is nothing to read.
  if (isRootless() && !hostIsCgroup2()) throw new ExitError('stats is not supported in rootless mode without cgroups v2', 125);
  const store = await openStore(g);
  const format = typeof o.format === 'string' ? o.format : undefined;
  const noTrunc = o.trunc === false;
  const stream = o.stream !== false;
  const previous = new Map<string, ContainerStats>();
  const round = (): string => render(select(store, args, o).map((c) => {
    const s = sampleStats(store, c, previous.get(c.record.id));
    previous.set(c.record.id, s);
    return s;
  }), format, noTrunc);
  if (!stream) {
    process.stdout.write(round());
    return 0;
  }
  return refreshEvery(interval, round, o.reset !== false);
}
