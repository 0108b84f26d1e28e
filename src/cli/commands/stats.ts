// `barge stats` / `container stats`: Podman's table of containers' resource use, once
// (--no-stream) or refreshed every --interval seconds until interrupted.

import { setTimeout as sleep } from 'node:timers/promises';
import { ExitError, isRootless, openStore, type GlobalOptions } from '../context.ts';
import type { Store } from '../../store/store.ts';
import { isActive, type Container } from '../../containers/record.ts';
import { liveState } from '../../containers/lifecycle.ts';
import { sampleStats, statsFields, statsJSON, type ContainerStats } from '../../containers/stats.ts';
import { hostIsCgroup2 } from '../../runtime/spec.ts';
import { goJSON } from '../gotemplate.ts';
import { formatRows, isJSONFormat } from '../table.ts';

type Opts = Record<string, unknown>;

const DEFAULT_TABLE = 'table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDS}}\t{{.UpTime}}\t{{.AVGCPU}}';
const HEADERS: Record<string, string> = {
  ID: 'ID', UpTime: 'CPU TIME', AVGCPU: 'AVG CPU %', CPUPerc: 'CPU %', MemUsage: 'MEM USAGE / LIMIT', MemUsageBytes: 'MEM USAGE / LIMIT',
  MemPerc: 'MEM %', NetIO: 'NET IO', BlockIO: 'BLOCK IO', PIDS: 'PIDS',
};
/** What a terminal is sent before each refresh (goterm's Clear and MoveCursor(1, 1)). */
const CLEAR = '\x1b[2J\x1b[1;1H';

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
  const clear = stream && o.reset !== false && process.stdout.isTTY;
  if (stream) {
    // Podman ends a stream with 1 on an interrupt and 0 when terminated.
    process.once('SIGINT', () => process.exit(1));
    process.once('SIGTERM', () => process.exit(0));
  }
  const previous = new Map<string, ContainerStats>();
  for (;;) {
    const stats = select(store, args, o).map((c) => {
      const s = sampleStats(store, c, previous.get(c.record.id));
      previous.set(c.record.id, s);
      return s;
    });
    process.stdout.write((clear ? CLEAR : '') + render(stats, format, noTrunc));
    if (!stream) return 0;
    await sleep(interval * 1000);
  }
}
