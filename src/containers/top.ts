// `podman top`: the container's processes, read from /proc, in the descriptors and formats of
// psgo, the library Podman's top uses: pids as the container sees them (its init is 1, with
// parent 0), users named from the container's /etc/passwd, times as Go durations.

import { readdirSync, readlinkSync } from 'node:fs';
import type { Store } from '../store/store.ts';
import { capabilityNames, runtimeHasCgroups } from '../runtime/spec.ts';
import { exec } from '../sys/exec.ts';
import { readProcFile } from '../sys/proc.ts';
import { GoTime } from '../image/gotime.ts';
import { ContainerError } from './lifecycle.ts';
import { containerPaths, type Container } from './record.ts';

/** The kernel's clock ticks per second for /proc times (USER_HZ, 100 on every Linux port in use). */
const HZ = 100;

interface Proc {
  hostPid: number;
  pid: number;
  hostPpid: number;
  pgid: number;
  comm: string;
  state: string;
  ttyNr: number;
  nice: number;
  cpuTicks: number;
  startMs: number;
  vszKiB: number;
  rssKiB: number;
  args: string;
  /** Real and effective ids, as the container sees them. */
  ruid: number;
  euid: number;
  rgid: number;
  egid: number;
  capEff: string;
}

/** What each table column shows, from the process and the context of all the container's processes. */
interface Ctx {
  procs: Map<number, Proc>;
  users: Map<number, string>;
  groups: Map<number, string>;
  nowMs: number;
}

type Column = [header: string, value: (p: Proc, ctx: Ctx) => string];

const name = (names: Map<number, string>, id: number): string => names.get(id) ?? String(id);
const elapsedMs = (p: Proc, ctx: Ctx): number => Math.max(0, ctx.nowMs - p.startMs);

const DESCRIPTORS: Record<string, Column> = {
  args: ['COMMAND', (p) => p.args],
  capeff: ['EFFECTIVE CAPS', (p) => capabilityNames(p.capEff).join(',')],
  comm: ['COMMAND', (p) => p.comm],
  etime: ['ELAPSED', (p, ctx) => goDuration(elapsedMs(p, ctx) * 1e6)],
  group: ['GROUP', (p, ctx) => name(ctx.groups, p.egid)],
  hpid: ['HPID', (p) => String(p.hostPid)],
  nice: ['NI', (p) => String(p.nice)],
  pcpu: ['%CPU', (p, ctx) => (elapsedMs(p, ctx) > 0 ? ((p.cpuTicks / HZ) * 1e5) / elapsedMs(p, ctx) : 0).toFixed(3)],
  pgid: ['PGID', (p) => String(p.pgid)],
  pid: ['PID', (p) => String(p.pid)],
  ppid: ['PPID', (p, ctx) => String(ctx.procs.get(p.hostPpid)?.pid ?? 0)],
  rgroup: ['RGROUP', (p, ctx) => name(ctx.groups, p.rgid)],
  rss: ['RSS', (p) => String(p.rssKiB)],
  ruser: ['RUSER', (p, ctx) => name(ctx.users, p.ruid)],
  state: ['STATE', (p) => p.state],
  stime: ['STIME', (p) => GoTime.unix(Math.floor(p.startMs / 1000)).toString()],
  time: ['TIME', (p) => goDuration(Math.floor(p.cpuTicks / HZ) * 1e9)],
  tty: ['TTY', (p) => ttyName(p.ttyNr)],
  user: ['USER', (p, ctx) => name(ctx.users, p.euid)],
  vsz: ['VSZ', (p) => String(p.vszKiB)],
};
const DEFAULT_DESCRIPTORS = ['user', 'pid', 'ppid', 'pcpu', 'etime', 'tty', 'time', 'args'];

/**
 * The host pids of the container's processes, from `RUNTIME ps --format json`, which lists the
 * container's cgroup. Without one (rootless on cgroup v1, where the runtime's ps fails) they are
 * found as Podman's top finds them: the processes in the pid namespace of the container's init.
 */
export async function containerPids(store: Store, c: Container): Promise<number[]> {
  if (!runtimeHasCgroups()) return pidNamespaceMembers(c.data.state.pid);
  const p = containerPaths(store, c.record.id, c.data.config.runtimeName);
  const r = await exec(c.data.config.runtime, ['--root', p.stateRoot, 'ps', '--format', 'json', c.record.id], { check: false });
  if (r.exitCode !== 0) throw new ContainerError(`${c.data.config.runtimeName} ps: ${r.stderr.trim()}`);
  const pids: unknown = JSON.parse(r.stdout.trim() || '[]');
  if (!Array.isArray(pids)) return [];
  return pids.filter((x): x is number => typeof x === 'number');
}

/** The processes in init's pid namespace (Podman's top lists the same, reading /proc there). */
function pidNamespaceMembers(init: number): number[] {
  const nsOf = (pid: number): string | undefined => {
    try {
      return readlinkSync(`/proc/${pid}/ns/pid`);
    } catch {
      // Gone, or not this user's to inspect: not the container's.
      return undefined;
    }
  };
  const ns = nsOf(init);
  if (ns === undefined) return [];
  return readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number).filter((pid) => nsOf(pid) === ns);
}

/** `podman top CONTAINER [descriptors…]`: the table of a running container's processes. */
export async function topContainer(store: Store, ref: string, descriptors: string[]): Promise<string> {
  const { runningContainer } = await import('./exec.ts');
  return topOf(store, [runningContainer(store, ref, 'top can only be used on running containers')], descriptors);
}

/** The table of the processes of running containers (one, or a pod's: `podman pod top`). */
export async function topOf(store: Store, containers: readonly Container[], descriptors: string[]): Promise<string> {
  // Podman accepts "pid,user" as well as separate words.
  const wanted = (descriptors.length ? descriptors.flatMap((d) => d.split(',')) : DEFAULT_DESCRIPTORS).filter((d) => d !== '');
  const cols = wanted.map((d) => {
    const col = DESCRIPTORS[d];
    if (!col) throw new ContainerError(`unknown descriptor: ${d}`);
    return col;
  });
  const bootMs = bootTimeMs();
  const procs = new Map<number, Proc>();
  for (const c of containers) {
    for (const pid of await containerPids(store, c)) {
      const p = readProc(pid, bootMs);
      if (p) procs.set(pid, p);
    }
  }
  const first = [...procs.values()].sort((a, b) => a.pid - b.pid);
  const root = first[0] ? `/proc/${first[0].hostPid}/root` : undefined;
  const ctx: Ctx = { procs, users: idNames(root, 'passwd'), groups: idNames(root, 'group'), nowMs: Date.now() };
  const { tabwrite } = await import('../cli/table.ts');
  return tabwrite([cols.map(([h]) => h).join('\t'), ...first.map((p) => cols.map(([, v]) => v(p, ctx)).join('\t'))]);
}

/** When the system booted, from /proc/stat (whole seconds, as psgo takes it). */
function bootTimeMs(): number {
  const m = /^btime (\d+)$/m.exec(readProcFile('/proc/stat') ?? '');
  return m ? Number(m[1]) * 1000 : 0;
}

/** A process as the container sees it, or undefined if it is gone. */
function readProc(hostPid: number, bootMs: number): Proc | undefined {
  const dir = `/proc/${hostPid}`;
  const stat = readProcFile(`${dir}/stat`);
  const status = readProcFile(`${dir}/status`);
  if (!stat || !status) return undefined;
  const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
  // From field 3 (state) on, as proc(5) numbers them.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const field = (n: number): number => Number(f[n - 3]);
  const line = (key: string): string[] => (new RegExp(`^${key}:\\s*(.*)$`, 'm').exec(status)?.[1] ?? '').split(/\s+/);
  const lastOf = (key: string, fallback: number): number => Number(line(key).at(-1) || fallback);
  const uidMap = readProcFile(`${dir}/uid_map`) ?? '';
  const gidMap = readProcFile(`${dir}/gid_map`) ?? '';
  const [ruid, euid] = line('Uid').map((u) => inside(uidMap, Number(u)));
  const [rgid, egid] = line('Gid').map((g) => inside(gidMap, Number(g)));
  const cmdline = readProcFile(`${dir}/cmdline`) ?? '';
  return {
    hostPid, pid: lastOf('NSpid', hostPid), hostPpid: field(4), pgid: lastOf('NSpgid', field(5)), comm, state: f[0] ?? '?',
    ttyNr: field(7), nice: field(19), cpuTicks: field(14) + field(15), startMs: bootMs + (field(22) / HZ) * 1000,
    vszKiB: Math.floor(field(23) / 1024), rssKiB: field(24) * 4,
    args: cmdline ? cmdline.replace(/\0$/, '').split('\0').join(' ') : `[${comm}]`,
    ruid: ruid ?? 0, euid: euid ?? 0, rgid: rgid ?? 0, egid: egid ?? 0, capEff: line('CapEff')[0] ?? '',
  };
}

/** A host id as the process's user namespace numbers it (its map's lines are "inside outside count"). */
function inside(map: string, host: number): number {
  for (const l of map.split('\n')) {
    const [i, o, n] = l.trim().split(/\s+/).map(Number);
    if (i !== undefined && o !== undefined && n !== undefined && host >= o && host < o + n) return i + (host - o);
  }
  return host;
}

/** Names by id from the container's /etc/passwd or /etc/group (empty when unreadable). */
function idNames(root: string | undefined, file: 'passwd' | 'group'): Map<number, string> {
  const names = new Map<number, string>();
  for (const l of (root ? readProcFile(`${root}/etc/${file}`) : undefined)?.split('\n') ?? []) {
    const [n, , id] = l.split(':');
    if (n && id !== undefined && !names.has(Number(id))) names.set(Number(id), n);
  }
  return names;
}

function ttyName(nr: number): string {
  if (nr === 0) return '?';
  const major = (nr >> 8) & 0xfff;
  const minor = (nr & 0xff) | ((nr >> 12) & 0xfff00);
  return major === 136 ? `pts/${minor}` : '?';
}

/** Go's time.Duration String(): "0s", "417ms", "1.5s", "1h2m3.04s". */
export function goDuration(ns: number): string {
  let u = Math.round(Math.abs(ns));
  const sign = ns < 0 ? '-' : '';
  if (u === 0) return '0s';
  const frac = (n: number, unit: number): string => {
    const whole = Math.floor(n / unit);
    const rest = String(n % unit).padStart(String(unit).length - 1, '0').replace(/0+$/, '');
    return rest ? `${whole}.${rest}` : String(whole);
  };
  if (u < 1e3) return `${sign}${u}ns`;
  if (u < 1e6) return `${sign}${frac(u, 1e3)}\u00b5s`;
  if (u < 1e9) return `${sign}${frac(u, 1e6)}ms`;
  const h = Math.floor(u / 3.6e12);
  u -= h * 3.6e12;
  const m = Math.floor(u / 6e10);
  u -= m * 6e10;
  return `${sign}${h ? `${h}h` : ''}${h || m ? `${m}m` : ''}${frac(u, 1e9)}s`;
}
