// `podman stats`: a container's resource use, read from the cgroups its runtime made for it (v1
// controllers on v1 and hybrid hosts, the unified hierarchy on v2) and from its network
// namespace, computed as Podman 4.3's libpod does: CPU % is the CPU time used since the previous
// sample (the container's start for the first) over the wall time between them.

import { readlinkSync } from 'node:fs';
import { totalmem } from 'node:os';
import { join } from 'node:path';
import type { Store } from '../store/store.ts';
import { liveState } from './lifecycle.ts';
import type { Container } from './record.ts';
import { readProcFile } from '../sys/proc.ts';

export interface ContainerStats {
  containerId: string;
  name: string;
  /** CPU % since the previous sample, and its running average over the samples taken. */
  cpu: number;
  avgCpu: number;
  dataPoints: number;
  cpuNano: number;
  cpuSystemNano: number;
  /** When the sample was taken, in ns since the epoch. */
  systemNano: number;
  perCpu: number[];
  memUsage: number;
  memLimit: number;
  memPerc: number;
  /** Bytes the container's eth0 sent (input, as Podman labels it) and received. */
  netInput: number;
  netOutput: number;
  blockInput: number;
  blockOutput: number;
  pids: number;
}

const readNum = (path: string): number => Number(readProcFile(path)?.trim() ?? 0) || 0;

/** "key value" lines (memory.stat, cpu.stat) as a map. */
function keyed(text: string | undefined): Map<string, number> {
  const m = new Map<string, number>();
  for (const l of (text ?? '').split('\n')) {
    const [k, v] = l.trim().split(/\s+/);
    if (k && v !== undefined) m.set(k, Number(v));
  }
  return m;
}

interface CgroupDirs {
  /** v1: each controller's directory (by controller name); v2: the one unified directory. */
  v1: Map<string, string>;
  v2: string | undefined;
}

/**
 * The directories of pid's cgroups, from its /proc/PID/cgroup joined with the hierarchies
 * mounted here (mountinfo gives each mount's root within its hierarchy).
 */
function cgroupDirs(pid: number): CgroupDirs {
  const v1Mounts = new Map<string, { root: string; at: string }>();
  let v2Mount: { root: string; at: string } | undefined;
  for (const line of (readProcFile('/proc/self/mountinfo') ?? '').split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!pre || !post) continue;
    const f = pre.split(' ');
    const [fstype, , superOpts] = post.split(' ');
    const m = { root: f[3] ?? '/', at: (f[4] ?? '').replace(/\\040/g, ' ') };
    if (fstype === 'cgroup2') v2Mount ??= m;
    else if (fstype === 'cgroup') for (const o of (superOpts ?? '').split(',')) if (!v1Mounts.has(o)) v1Mounts.set(o, m);
  }
  const under = (m: { root: string; at: string }, path: string): string | undefined => {
    if (m.root === '/') return join(m.at, path);
    return path === m.root || path.startsWith(`${m.root}/`) ? join(m.at, path.slice(m.root.length)) : undefined;
  };
  const dirs: CgroupDirs = { v1: new Map(), v2: undefined };
  for (const line of (readProcFile(`/proc/${pid}/cgroup`) ?? '').split('\n')) {
    const [, controllers, path] = /^\d+:([^:]*):(.*)$/.exec(line) ?? [];
    if (controllers === undefined || path === undefined) continue;
    if (controllers === '') {
      if (v2Mount) dirs.v2 = under(v2Mount, path);
      continue;
    }
    for (const c of controllers.split(',')) {
      const m = v1Mounts.get(c);
      const dir = m && under(m, path);
      if (dir) dirs.v1.set(c, dir);
    }
  }
  return dirs;
}

interface CgroupSample {
  cpuNano: number;
  cpuSystemNano: number;
  perCpu: number[];
  memUsage: number;
  blockRead: number;
  blockWrite: number;
  pids: number;
}

/** USER_HZ: cpuacct.stat counts in these ticks. */
const HZ = 100;

/** The counters Podman's cgroups package reads, from v1 controllers when the memory one is there, else from v2. */
function readCgroup(dirs: CgroupDirs): CgroupSample {
  const mem = dirs.v1.get('memory');
  if (mem !== undefined || dirs.v2 === undefined) {
    const cpu = dirs.v1.get('cpuacct') ?? '';
    const stat = keyed(readProcFile(join(cpu, 'cpuacct.stat')));
    const memStat = keyed(mem === undefined ? undefined : readProcFile(join(mem, 'memory.stat')));
    // The page cache the kernel may drop at once is not counted, as Podman (and docker) leave it out.
    const usage = mem === undefined ? 0 : readNum(join(mem, 'memory.usage_in_bytes'));
    const inactive = memStat.get('total_inactive_file') ?? 0;
    let blockRead = 0;
    let blockWrite = 0;
    for (const l of (readProcFile(join(dirs.v1.get('blkio') ?? '', 'blkio.throttle.io_service_bytes_recursive')) ?? '').split('\n')) {
      const [, op, v] = l.trim().split(/\s+/);
      if (op === 'Read') blockRead += Number(v) || 0;
      else if (op === 'Write') blockWrite += Number(v) || 0;
    }
    return {
      cpuNano: readNum(join(cpu, 'cpuacct.usage')),
      cpuSystemNano: ((stat.get('system') ?? 0) * 1e9) / HZ,
      perCpu: (readProcFile(join(cpu, 'cpuacct.usage_percpu')) ?? '').trim().split(/\s+/).filter((x) => x !== '').map(Number),
      memUsage: usage > inactive ? usage - inactive : usage,
      blockRead, blockWrite,
      pids: readNum(join(dirs.v1.get('pids') ?? '', 'pids.current')),
    };
  }
  const dir = dirs.v2;
  const cpu = keyed(readProcFile(join(dir, 'cpu.stat')));
  const usage = readNum(join(dir, 'memory.current'));
  const inactive = keyed(readProcFile(join(dir, 'memory.stat'))).get('inactive_file') ?? 0;
  let blockRead = 0;
  let blockWrite = 0;
  for (const l of (readProcFile(join(dir, 'io.stat')) ?? '').split('\n')) {
    blockRead += Number(/\brbytes=(\d+)/.exec(l)?.[1] ?? 0);
    blockWrite += Number(/\bwbytes=(\d+)/.exec(l)?.[1] ?? 0);
  }
  return {
    cpuNano: (cpu.get('usage_usec') ?? 0) * 1000,
    cpuSystemNano: (cpu.get('system_usec') ?? 0) * 1000,
    perCpu: [],
    memUsage: usage > inactive ? usage - inactive : usage,
    blockRead, blockWrite,
    pids: readNum(join(dir, 'pids.current')),
  };
}

/** eth0's transmitted and received bytes in pid's network namespace; none when it shares ours (host network). */
function netIO(pid: number): { tx: number; rx: number } {
  const ns = (p: string): string | undefined => {
    try {
      return readlinkSync(`${p}/ns/net`);
    } catch {
      return undefined;
    }
  };
  const theirs = ns(`/proc/${pid}`);
  if (theirs === undefined || theirs === ns('/proc/self')) return { tx: 0, rx: 0 };
  const line = (readProcFile(`/proc/${pid}/net/dev`) ?? '').split('\n').find((l) => l.trim().startsWith('eth0:'));
  // "eth0: rx_bytes rx_packets … (8 receive fields) tx_bytes …"
  const f = line?.slice(line.indexOf(':') + 1).trim().split(/\s+/).map(Number) ?? [];
  return { tx: f[8] ?? 0, rx: f[0] ?? 0 };
}

/** The container's memory limit: its own, or the machine's memory when it has none (or a larger one). */
function memLimit(c: Container): number {
  const physical = totalmem();
  const own = c.data.config.resources.memory;
  return own === undefined || own <= 0 || own > physical ? physical : own;
}

/**
 * One sample of a container's use. `previous` is the container's last sample when streaming;
 * a container that is neither running nor paused reports zeros, as Podman's does.
 */
export function sampleStats(store: Store, c: Container, previous?: ContainerStats): ContainerStats {
  const s = liveState(store, c);
  const now = Date.now() * 1e6;
  const zero: ContainerStats = {
    containerId: c.record.id, name: c.record.name, cpu: 0, avgCpu: 0, dataPoints: 0, cpuNano: 0, cpuSystemNano: 0, systemNano: now,
    perCpu: [], memUsage: 0, memLimit: 0, memPerc: 0, netInput: 0, netOutput: 0, blockInput: 0, blockOutput: 0, pids: 0,
  };
  if ((s.status !== 'running' && s.status !== 'paused') || s.pid <= 0) return zero;
  const cg = readCgroup(cgroupDirs(s.pid));
  const prevCpu = previous?.cpuNano ?? 0;
  const prevSystem = previous?.systemNano ?? (s.startedAt ? Date.parse(s.startedAt) * 1e6 : now);
  const cpuDelta = cg.cpuNano - prevCpu;
  const systemDelta = now - prevSystem;
  const cpu = systemDelta > 0 && cpuDelta > 0 ? (cpuDelta / systemDelta) * 100 : 0;
  const points = previous?.dataPoints ?? 0;
  const limit = memLimit(c);
  const net = netIO(s.pid);
  return {
    ...zero,
    cpu,
    avgCpu: ((previous?.avgCpu ?? 0) * points + cpu) / (points + 1),
    dataPoints: points + 1,
    cpuNano: cg.cpuNano,
    cpuSystemNano: cg.cpuSystemNano,
    perCpu: cg.perCpu,
    memUsage: cg.memUsage,
    memLimit: limit,
    memPerc: (cg.memUsage / limit) * 100,
    netInput: net.tx,
    netOutput: net.rx,
    blockInput: cg.blockRead,
    blockOutput: cg.blockWrite,
    pids: cg.pids,
  };
}
