// Generates OCI runtime-spec (config.json) documents for running one process in a prepared rootfs.
// The defaults follow what Podman/Buildah hand to their runtimes, so images behave the same way here.

import { lstatSync, readdirSync, readFileSync, statfsSync, statSync } from 'node:fs';
import path from 'node:path';
import { inUserNamespace, readIdMap } from '../sys/userns.ts';

export interface MountSpec {
  destination: string;
  type?: string;
  source: string;
  options?: string[];
}

export interface IdMapping {
  containerID: number;
  hostID: number;
  size: number;
}

export interface SpecOptions {
  rootfs: string;
  readonlyRootfs?: boolean;
  args: string[];
  env: string[];
  cwd: string;
  uid: number;
  gid: number;
  additionalGids?: number[];
  terminal?: boolean;
  /** Only meaningful with a private UTS namespace; left unset the container keeps the host's name. */
  hostname?: string;
  /** host: no netns; none/private/slirp4netns/bridge: a new netns (only lo until someone wires it up). */
  network: 'host' | 'none' | 'private' | 'slirp4netns' | 'bridge';
  pidNamespace?: 'private' | 'host';
  ipcNamespace?: 'private' | 'host';
  utsNamespace?: 'private' | 'host';
  /** Default: private where the host is pure cgroup v2 (as Podman), host on v1/hybrid hosts. */
  cgroupNamespace?: 'private' | 'host';
  /** Accepts "CAP_NET_ADMIN", "net_admin", "ALL". */
  capAdd?: string[];
  capDrop?: string[];
  /** Extra user mounts (bind/tmpfs), applied after the defaults; one on a default's destination replaces it. */
  mounts?: MountSpec[];
  /** `type` may be "nofile", "RLIMIT_NOFILE", ...; -1 or Infinity mean unlimited. Clamped to our own hard limits. */
  rlimits?: { type: string; soft: number; hard: number }[];
  noNewPrivileges?: boolean;
  annotations?: Record<string, string>;
  resources?: SpecResourceLimits;
  /** Namespaces to join rather than make (ns:PATH); a type named here is joined whatever its mode above. */
  namespacePaths?: Partial<Record<NamespaceType, string>>;
  /** The container's cgroup (Buildah's --cgroup-parent joined with the container's id); the runtime's default when absent. */
  cgroupsPath?: string;
  /** For rootless work: uid/gid mappings; when given the container gets a user namespace. */
  uidMappings?: IdMapping[];
  gidMappings?: IdMapping[];
  /** Join this existing user namespace (e.g. /proc/PID/ns/user) instead; no mappings then. */
  userNamespacePath?: string;
  /** Defaults as Podman's when absent. */
  maskedPaths?: string[];
  readonlyPaths?: string[];
  /**
   * Default true: a seccomp filter refuses (EPERM) the syscalls that Podman's default profile keeps
   * from every container whatever its capabilities (kernel modules, kexec, keyrings, clock setting,
   * swap, accounting, ...). Podman writes its profile as an allow-list; this deny-list of the same
   * syscalls has the same effect on them, and capabilities and namespaces guard the rest as they do
   * under Podman. `false` is `--security-opt seccomp=unconfined`.
   */
  seccomp?: boolean;
  /**
   * Podman's --privileged: every capability, no seccomp filter, nothing masked or read-only in
   * /proc and /sys, and the host's devices in /dev with access to every device.
   */
  privileged?: boolean;
  /** Bytes of the /dev/shm tmpfs (0: no limit); 65536k when absent. Not for a shared IPC namespace. */
  shmSize?: number;
  /** --device: host device nodes for the container, each with the access its cgroup rule allows. */
  devices?: AddedDevice[];
  /** The process's umask; 0022 when absent. */
  umask?: number;
  /** Namespaced kernel parameters (linux.sysctl). */
  sysctl?: Record<string, string>;
  oomScoreAdj?: number;
  /** Execution domain (LINUX, LINUX32). */
  personality?: string;
  /** env is complete: no PATH (or TERM with a terminal) is added when missing (--unsetenv). */
  envComplete?: boolean;
}

/** Cgroup limits: memory and swap in bytes (swap: memory plus swap, -1 unlimited), CFS period and quota in µs, CPU shares, cpusets. */
export interface SpecResourceLimits {
  memory?: number;
  memorySwap?: number;
  cpus?: number;
  cpuShares?: number;
  cpuPeriod?: number;
  cpuQuota?: number;
  cpusetCpus?: string;
  cpusetMems?: string;
  pidsLimit?: number;
}

/** A host device given to the container: the node the runtime makes, the host's path, the access (r, w, m). */
export interface AddedDevice {
  node: SpecDevice;
  hostPath: string;
  access: string;
}

export type NamespaceType = 'pid' | 'network' | 'mount' | 'ipc' | 'uts' | 'user' | 'cgroup';

export interface SpecUser {
  uid: number;
  gid: number;
  umask?: number;
  additionalGids?: number[];
}

export interface SpecCapabilities {
  bounding: string[];
  effective: string[];
  permitted: string[];
  inheritable: string[];
  ambient: string[];
}

/** soft/hard of Infinity serialise as RLIM_INFINITY (see serializeSpec). */
export interface SpecRlimit {
  type: string;
  soft: number;
  hard: number;
}

export interface SpecProcess {
  terminal: boolean;
  user: SpecUser;
  args: string[];
  env: string[];
  cwd: string;
  capabilities: SpecCapabilities;
  rlimits: SpecRlimit[];
  noNewPrivileges: boolean;
  oomScoreAdj?: number;
}

export interface SpecMount {
  destination: string;
  type: string;
  source: string;
  options?: string[];
}

export interface SpecDeviceRule {
  allow: boolean;
  type?: 'a' | 'c' | 'b';
  major?: number;
  minor?: number;
  access: string;
}

export interface SpecResources {
  devices: SpecDeviceRule[];
  memory?: { limit?: number; swap?: number };
  cpu?: { quota?: number; period?: number; shares?: number; cpus?: string; mems?: string };
  pids?: { limit: number };
}

export interface SpecSeccompRule {
  names: string[];
  action: string;
  errnoRet?: number;
}

export interface SpecSeccomp {
  defaultAction: string;
  architectures: string[];
  syscalls: SpecSeccompRule[];
}

export interface SpecLinux {
  namespaces: { type: NamespaceType; path?: string }[];
  uidMappings?: IdMapping[];
  gidMappings?: IdMapping[];
  resources: SpecResources;
  cgroupsPath?: string;
  maskedPaths: string[];
  readonlyPaths: string[];
  seccomp?: SpecSeccomp;
  devices?: SpecDevice[];
  sysctl?: Record<string, string>;
  personality?: { domain: string };
}

/** A device node the runtime makes in the container (mknod, or a bind mount in a user namespace). */
export interface SpecDevice {
  path: string;
  type: 'c' | 'b';
  major: number;
  minor: number;
  fileMode: number;
  uid: number;
  gid: number;
}

/** The subset of the OCI runtime-spec that barge emits. */
export interface RuntimeSpec {
  ociVersion: string;
  process: SpecProcess;
  root: { path: string; readonly: boolean };
  hostname?: string;
  mounts: SpecMount[];
  annotations?: Record<string, string>;
  linux: SpecLinux;
}

/** Podman's default capability set. */
export const DEFAULT_CAPABILITIES: readonly string[] = Object.freeze([
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_NET_BIND_SERVICE',
  'CAP_SETFCAP',
  'CAP_SETGID',
  'CAP_SETPCAP',
  'CAP_SETUID',
  'CAP_SYS_CHROOT',
]);

/** Linux capabilities by number (index = capability number). */
const ALL_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL',
  'CAP_SETGID', 'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT',
  'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE',
  'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG',
  'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
];

/** The capabilities a /proc/PID/status mask (hex) holds, by name, as `top` shows them: no CAP_ prefix, sorted. */
export function capabilityNames(hexMask: string): string[] {
  const mask = BigInt(`0x${hexMask || '0'}`);
  return ALL_CAPABILITIES.filter((_, n) => ((mask >> BigInt(n)) & 1n) === 1n).map((c) => c.slice(4)).sort();
}

/** Bit number of a capability name, for comparing against /proc/PID/status masks. */
export function capabilityNumber(name: string): number {
  const n = ALL_CAPABILITIES.indexOf(normalizeCapability(name));
  if (n < 0) throw new Error(`unknown capability "${name}"`);
  return n;
}

/** "net_admin" / "NET_ADMIN" / "CAP_NET_ADMIN" → "CAP_NET_ADMIN"; "all" → "ALL". */
export function normalizeCapability(name: string): string {
  const up = name.trim().toUpperCase();
  if (up === 'ALL') return 'ALL';
  const full = up.startsWith('CAP_') ? up : `CAP_${up}`;
  if (!ALL_CAPABILITIES.includes(full)) throw new Error(`unknown capability "${name}"`);
  return full;
}

/** Capabilities the running kernel knows; asking a runtime for newer ones only earns warnings or errors. */
function kernelCapabilities(): string[] {
  let last = ALL_CAPABILITIES.length - 1;
  try {
    const n = Number.parseInt(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim(), 10);
    if (Number.isInteger(n) && n >= 0) last = Math.min(last, n);
  } catch {
    // Without procfs, assume the kernel knows everything we do.
  }
  return ALL_CAPABILITIES.slice(0, last + 1);
}

/** The effective capability list for --cap-add/--cap-drop, with Podman's precedence rules. */
export function mergeCapabilities(capAdd: readonly string[] = [], capDrop: readonly string[] = []): string[] {
  const add = capAdd.map(normalizeCapability);
  const drop = capDrop.map(normalizeCapability);
  const known = kernelCapabilities();
  const explicitAdd = add.filter((c) => c !== 'ALL');
  let caps: string[];
  if (drop.includes('ALL')) {
    // "--cap-drop=ALL --cap-add=X" is the idiom for "only X".
    caps = add.includes('ALL') ? [...known] : explicitAdd;
  } else {
    const base = add.includes('ALL') ? known : [...DEFAULT_CAPABILITIES, ...explicitAdd];
    caps = base.filter((c) => !drop.includes(c));
  }
  const set = new Set(caps);
  return ALL_CAPABILITIES.filter((c) => set.has(c));
}

export const DEFAULT_MASKED_PATHS: readonly string[] = Object.freeze([
  '/proc/acpi',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
  '/sys/fs/selinux',
  '/sys/dev/block',
]);

export const DEFAULT_READONLY_PATHS: readonly string[] = Object.freeze([
  '/proc/asound',
  '/proc/bus',
  '/proc/fs',
  '/proc/irq',
  '/proc/sys',
  '/proc/sysrq-trigger',
]);

export const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Podman's default limit for both nofile and nproc; never more than we hold ourselves. */
const DEFAULT_RLIMIT = 1_048_576;

const RLIMIT_NAMES: Record<string, string> = {
  'Max cpu time': 'RLIMIT_CPU',
  'Max file size': 'RLIMIT_FSIZE',
  'Max data size': 'RLIMIT_DATA',
  'Max stack size': 'RLIMIT_STACK',
  'Max core file size': 'RLIMIT_CORE',
  'Max resident set': 'RLIMIT_RSS',
  'Max processes': 'RLIMIT_NPROC',
  'Max open files': 'RLIMIT_NOFILE',
  'Max locked memory': 'RLIMIT_MEMLOCK',
  'Max address space': 'RLIMIT_AS',
  'Max file locks': 'RLIMIT_LOCKS',
  'Max pending signals': 'RLIMIT_SIGPENDING',
  'Max msgqueue size': 'RLIMIT_MSGQUEUE',
  'Max nice priority': 'RLIMIT_NICE',
  'Max realtime priority': 'RLIMIT_RTPRIO',
  'Max realtime timeout': 'RLIMIT_RTTIME',
};

/**
 * Our own hard limits, keyed by RLIMIT_* name (Infinity = unlimited). The runtime runs with these, and
 * an unprivileged process (or one in a user namespace) cannot raise a hard limit, so a larger value in
 * the spec makes the container fail to start.
 */
export function hardLimits(limitsFile = '/proc/self/limits'): Map<string, number> {
  const out = new Map<string, number>();
  let text: string;
  try {
    text = readFileSync(limitsFile, 'utf8');
  } catch {
    return out;
  }
  for (const line of text.split('\n')) {
    for (const [label, type] of Object.entries(RLIMIT_NAMES)) {
      if (!line.startsWith(label + ' ')) continue;
      // Columns: label, soft, hard, [units]; the label itself contains spaces.
      const cols = line.slice(label.length).trim().split(/\s+/);
      const hard = cols[1];
      if (hard === undefined) continue;
      out.set(type, hard === 'unlimited' ? Infinity : Number(hard));
    }
  }
  return out;
}

export function normalizeRlimitType(type: string): string {
  const up = type.trim().toUpperCase();
  const full = up.startsWith('RLIMIT_') ? up : `RLIMIT_${up}`;
  if (!Object.values(RLIMIT_NAMES).includes(full)) throw new Error(`unknown rlimit "${type}"`);
  return full;
}

function rlimitValue(v: number): number {
  if (v === -1 || v === Infinity) return Infinity;
  if (!Number.isInteger(v) || v < 0) throw new Error(`invalid rlimit value ${v}`);
  return v;
}

function buildRlimits(user: SpecOptions['rlimits'], hard: Map<string, number>): SpecRlimit[] {
  const byType = new Map<string, { soft: number; hard: number }>();
  for (const type of ['RLIMIT_NOFILE', 'RLIMIT_NPROC']) {
    const v = Math.min(DEFAULT_RLIMIT, hard.get(type) ?? DEFAULT_RLIMIT);
    byType.set(type, { soft: v, hard: v });
  }
  for (const r of user ?? []) {
    const type = normalizeRlimitType(r.type);
    const max = hard.get(type) ?? Infinity;
    const h = Math.min(rlimitValue(r.hard), max);
    const s = Math.min(rlimitValue(r.soft), h);
    byType.set(type, { soft: s, hard: h });
  }
  return [...byType].map(([type, v]) => ({ type, soft: v.soft, hard: v.hard }));
}

function coversId(maps: readonly IdMapping[], id: number): boolean {
  return maps.some((m) => id >= m.containerID && id < m.containerID + m.size);
}

const CGROUP2_SUPER_MAGIC = 0x63677270;

let warnedNoLimits = false;

/** The OCI resources of cgroup limits (memory, CPU, pids): for a spec, and for `update` of a running container. */
export function cgroupResources(r: SpecResourceLimits): Omit<SpecResources, 'devices'> {
  const out: Omit<SpecResources, 'devices'> = {};
  if (r.memory !== undefined) {
    if (!Number.isInteger(r.memory) || r.memory <= 0) throw new Error(`invalid memory limit ${r.memory}`);
    out.memory = { limit: r.memory };
  }
  if (r.cpus !== undefined) {
    if (!(r.cpus > 0)) throw new Error(`invalid cpus ${r.cpus}`);
    const period = 100_000;
    out.cpu = { quota: Math.round(r.cpus * period), period };
  }
  if (r.memorySwap !== undefined) {
    if (!Number.isInteger(r.memorySwap) || (r.memorySwap <= 0 && r.memorySwap !== -1)) throw new Error(`invalid memory swap limit ${r.memorySwap}`);
    out.memory = { ...out.memory, swap: r.memorySwap };
  }
  const cpu: NonNullable<SpecResources['cpu']> = { ...out.cpu };
  if (r.cpuPeriod !== undefined) cpu.period = r.cpuPeriod;
  if (r.cpuQuota !== undefined) cpu.quota = r.cpuQuota;
  if (r.cpuShares !== undefined) cpu.shares = r.cpuShares;
  if (r.cpusetCpus !== undefined) cpu.cpus = r.cpusetCpus;
  if (r.cpusetMems !== undefined) cpu.mems = r.cpusetMems;
  if (Object.keys(cpu).length > 0) out.cpu = cpu;
  if (r.pidsLimit !== undefined) {
    if (!Number.isInteger(r.pidsLimit)) throw new Error(`invalid pids limit ${r.pidsLimit}`);
    out.pids = { limit: r.pidsLimit };
  }
  return out;
}

/**
 * Whether the runtime can make a cgroup for a container: not rootless on a cgroup v1 host, where
 * the user may not write to the v1 hierarchies. Without one, what reads or writes the container's
 * cgroup (limits, the freezer of pause, the runtime's ps) cannot work.
 */
export function runtimeHasCgroups(): boolean {
  return !inUserNamespace() || hostIsCgroup2();
}

/**
 * Without cgroups (see runtimeHasCgroups) the runtime would fail a container that asks for limits
 * (memory, CPU, pids, a --cgroup-parent): Podman ignores the limits there with this warning, and so
 * does barge.
 */
function cgroupLimitsAllowed(o: SpecOptions): boolean {
  if (runtimeHasCgroups()) return true;
  const r = o.resources ?? {};
  if (!warnedNoLimits && (Object.values(r).some((v) => v !== undefined) || o.cgroupsPath !== undefined)) {
    warnedNoLimits = true;
    process.stderr.write('WARN[0000] Resource limits are not supported and ignored on cgroups V1 rootless systems\n');
  }
  return false;
}

/** Whether /sys/fs/cgroup is the unified hierarchy alone (a pure cgroup v2 host). */
export function hostIsCgroup2(): boolean {
  try {
    return statfsSync('/sys/fs/cgroup').type === CGROUP2_SUPER_MAGIC;
  } catch {
    return false;
  }
}

function defaultMounts(o: SpecOptions, userns: boolean, gidMaps: readonly IdMapping[]): SpecMount[] {
  const ptsOpts = ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'];
  // devpts refuses a gid= that is not mapped into the user namespace.
  if (!userns || coversId(gidMaps, 5)) ptsOpts.push('gid=5');
  const mounts: SpecMount[] = [
    // proc may only be mounted by the owner of the PID namespace: in a user namespace that shares
    // the host's, bind the host's /proc instead (as Podman does rootless with --pid host).
    userns && o.pidNamespace === 'host'
      ? { destination: '/proc', type: 'bind', source: '/proc', options: ['rbind', 'nosuid', 'noexec', 'nodev'] }
      : { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ptsOpts },
  ];
  if (o.ipcNamespace === 'host') {
    // A shared IPC namespace must also share its POSIX shm and message queues.
    mounts.push(
      { destination: '/dev/shm', type: 'bind', source: '/dev/shm', options: ['rbind', 'nosuid', 'noexec', 'nodev'] },
      { destination: '/dev/mqueue', type: 'bind', source: '/dev/mqueue', options: ['rbind', 'nosuid', 'noexec', 'nodev'] },
    );
  } else {
    mounts.push(
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', `size=${o.shmSize ?? '65536k'}`] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    );
  }
  if (userns && o.network === 'host') {
    // sysfs may only be mounted by the owner of the network namespace; inside a user namespace that
    // shares the host network we are not, so expose the host's /sys (cgroups included) read-only.
    mounts.push({ destination: '/sys', type: 'bind', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] });
  } else {
    mounts.push({ destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] });
    if (userns) {
      // A cgroup v1 hierarchy cannot be mounted from a user namespace; bind the host's view instead.
      mounts.push({
        destination: '/sys/fs/cgroup',
        type: 'bind',
        source: '/sys/fs/cgroup',
        options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'],
      });
    } else {
      mounts.push({
        destination: '/sys/fs/cgroup',
        type: 'cgroup',
        source: 'cgroup',
        options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'],
      });
    }
  }
  return mounts;
}

function userMount(m: MountSpec): SpecMount {
  if (!path.isAbsolute(m.destination)) throw new Error(`mount destination ${m.destination} must be an absolute path`);
  const type = m.type ?? 'bind';
  const options = [...(m.options ?? [])];
  if (type === 'bind') {
    if (!path.isAbsolute(m.source)) throw new Error(`bind mount source ${m.source} must be an absolute path`);
    // Runtimes key bind semantics off these options; without one a "bind" may be treated as a fs type.
    if (!options.includes('bind') && !options.includes('rbind')) options.unshift('rbind');
  }
  const out: SpecMount = { destination: path.posix.normalize(m.destination), type, source: m.source };
  if (options.length > 0) out.options = options;
  return out;
}

/**
 * A container's capability set: the default one with --cap-add and --cap-drop, or everything
 * with --privileged; never more than barge holds itself (its bounding set), as the runtime could
 * not grant the rest, and --privileged or --cap-add ALL would fail where the host withholds some.
 */
export function containerCapabilities(o: { capAdd?: readonly string[]; capDrop?: readonly string[]; privileged?: boolean }): string[] {
  const held = boundingSet();
  return mergeCapabilities(o.privileged ? ['ALL', ...(o.capAdd ?? [])] : o.capAdd, o.capDrop).filter((c) => !held || held.has(c));
}

/** This process's capability bounding set, by name (undefined when /proc cannot tell). */
function boundingSet(): Set<string> | undefined {
  const m = /^CapBnd:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'latin1'));
  return m ? new Set(capabilityNames(m[1]!).map((c) => `CAP_${c}`)) : undefined;
}

/** Made by the runtime in every container's /dev anyway. */
const RUNTIME_DEVICES = new Set(['null', 'zero', 'full', 'random', 'urandom', 'tty', 'console', 'ptmx']);

/** The host's device nodes at the top of /dev, as --privileged gives them to the container. */
function hostDevices(): SpecDevice[] {
  const out: SpecDevice[] = [];
  let names: string[];
  try {
    names = readdirSync('/dev');
  } catch {
    return out;
  }
  for (const name of names.filter((n) => !RUNTIME_DEVICES.has(n)).sort()) {
    try {
      const dev = deviceNode(`/dev/${name}`, lstatSync);
      if (dev) out.push(dev);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * The device node at `hostPath` as the runtime is to make it (at the same path), or undefined for
 * anything else; `stat` decides whether a symbolic link is followed. Throws what stat throws.
 */
export function deviceNode(hostPath: string, stat: typeof statSync = statSync): SpecDevice | undefined {
  const st = stat(hostPath);
  if (!st.isCharacterDevice() && !st.isBlockDevice()) return undefined;
  // glibc's major()/minor() split of dev_t.
  const major = Number((BigInt(st.rdev) >> 8n) & 0xfffn) | Number((BigInt(st.rdev) >> 32n) & ~0xfffn);
  const minor = Number(BigInt(st.rdev) & 0xffn) | Number((BigInt(st.rdev) >> 12n) & ~0xffn);
  return { path: hostPath, type: st.isBlockDevice() ? 'b' : 'c', major, minor, fileMode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
}

/**
 * --device: the runtime makes each node (runtimes bind-mount it in a user namespace of the
 * container's own), and a cgroup rule allows the access asked for. Rootless, barge's runtime can
 * rely on no cgroup rule: the host's node is bind-mounted, as Podman does rootless, read-only
 * unless write access was asked for. That keeps the node's attributes; its data stays writable
 * (the kernel opens a device for writing on a read-only mount), as under Podman.
 */
function addDevices(devices: readonly AddedDevice[], linux: SpecLinux, mounts: SpecMount[], rootless: boolean): void {
  for (const d of devices) {
    if (rootless) {
      mounts.push({ destination: d.node.path, type: 'bind', source: d.hostPath, options: ['slave', 'nosuid', 'noexec', d.access.includes('w') ? 'rw' : 'ro', 'rbind'] });
      continue;
    }
    // A --privileged container has the host's nodes already; the one asked for takes its path.
    linux.devices = [...(linux.devices ?? []).filter((n) => n.path !== d.node.path), d.node];
    linux.resources.devices.push({ allow: true, type: d.node.type, major: d.node.major, minor: d.node.minor, access: d.access });
  }
}

/** Cgroup device rules: deny everything except the devices the runtime creates by default. */
function deviceRules(): SpecDeviceRule[] {
  const allow = (type: 'c', major: number, minor: number | undefined): SpecDeviceRule =>
    minor === undefined ? { allow: true, type, major, access: 'rwm' } : { allow: true, type, major, minor, access: 'rwm' };
  return [
    { allow: false, access: 'rwm' },
    allow('c', 1, 3), // null
    allow('c', 1, 5), // zero
    allow('c', 1, 7), // full
    allow('c', 1, 8), // random
    allow('c', 1, 9), // urandom
    allow('c', 5, 0), // tty
    allow('c', 5, 1), // console
    allow('c', 5, 2), // ptmx
    allow('c', 136, undefined), // pts/*
  ];
}

/** Syscalls refused when seccomp is enabled; see SpecOptions.seccomp. */
const SECCOMP_DENY: readonly string[] = [
  'acct', 'add_key', 'bpf', 'clock_adjtime', 'clock_settime', 'create_module', 'delete_module',
  'finit_module', 'get_kernel_syms', 'init_module', 'ioperm', 'iopl', 'kcmp', 'kexec_file_load',
  'kexec_load', 'keyctl', 'lookup_dcookie', 'nfsservctl', 'open_by_handle_at', 'perf_event_open',
  'query_module', 'quotactl', 'reboot', 'request_key', 'settimeofday', 'stime', 'swapoff', 'swapon',
  '_sysctl', 'uselib', 'userfaultfd', 'ustat', 'vm86', 'vm86old',
];

function seccompProfile(): SpecSeccomp {
  const arch: Record<string, string[]> = {
    x64: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
    arm64: ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'],
    ppc64: ['SCMP_ARCH_PPC64LE'],
    s390x: ['SCMP_ARCH_S390X', 'SCMP_ARCH_S390'],
    riscv64: ['SCMP_ARCH_RISCV64'],
  };
  return {
    defaultAction: 'SCMP_ACT_ALLOW',
    architectures: arch[process.arch] ?? [],
    syscalls: [{ names: [...SECCOMP_DENY], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }],
  };
}

function checkMappings(what: string, maps: readonly IdMapping[]): void {
  for (const m of maps) {
    for (const v of [m.containerID, m.hostID, m.size]) {
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Error(`invalid ${what} mapping ${JSON.stringify(m)}`);
    }
    if (m.size === 0) throw new Error(`invalid ${what} mapping ${JSON.stringify(m)}: size 0`);
  }
}

function checkId(what: string, v: number): void {
  // (uid_t)-1 means "no change" to the kernel, so it can never be a real id.
  if (!Number.isInteger(v) || v < 0 || v >= 0xffffffff) throw new Error(`invalid ${what} ${v}`);
}

/** A process's capability sets: `granted` in effect, for a non-root user also kept across execve. */
export function capabilitySets(bounding: string[], granted: string[], uid: number): SpecCapabilities {
  return {
    bounding,
    effective: granted,
    permitted: granted,
    inheritable: uid === 0 ? [] : granted,
    // Ambient capabilities are how a non-root process keeps them across execve.
    ambient: uid === 0 ? [] : granted,
  };
}

export function buildSpec(o: SpecOptions): RuntimeSpec {
  if (o.args.length === 0) throw new Error('no command specified');
  if (!path.isAbsolute(o.cwd)) throw new Error(`working directory ${o.cwd} must be an absolute path`);
  checkId('uid', o.uid);
  checkId('gid', o.gid);
  for (const g of o.additionalGids ?? []) checkId('gid', g);
  if (o.hostname !== undefined && o.utsNamespace === 'host') {
    throw new Error('cannot set the hostname when sharing the host UTS namespace');
  }
  const uidMaps = o.uidMappings ?? [];
  const gidMaps = o.gidMappings ?? [];
  checkMappings('uid', uidMaps);
  checkMappings('gid', gidMaps);
  const userns = uidMaps.length > 0 || gidMaps.length > 0;
  if (userns && (uidMaps.length === 0 || gidMaps.length === 0)) {
    throw new Error('a user namespace needs both uid and gid mappings');
  }

  const env = [...o.env];
  if (!o.envComplete && !env.some((e) => e.startsWith('PATH='))) env.push(DEFAULT_PATH);
  if (!o.envComplete && o.terminal && !env.some((e) => e.startsWith('TERM='))) env.push('TERM=xterm');

  const caps = containerCapabilities(o);
  // A non-root process only keeps what was explicitly granted, as with Podman: the default set is
  // for root's convenience, not something every image user should silently hold.
  const granted =
    o.uid === 0 ? caps : caps.filter((c) => (o.capAdd ?? []).map(normalizeCapability).some((a) => a === c || a === 'ALL'));
  const capabilities = capabilitySets(caps, granted, o.uid);

  const user: SpecUser = { uid: o.uid, gid: o.gid, umask: o.umask ?? 0o022 };
  // The primary gid may be listed too: Podman and Buildah list it for a --user they are given.
  const extraGids = [...new Set(o.additionalGids ?? [])];
  if (extraGids.length > 0) user.additionalGids = extraGids;

  const namespaces: SpecLinux['namespaces'] = [{ type: 'mount' }];
  if (o.pidNamespace !== 'host') namespaces.push({ type: 'pid' });
  if (o.network !== 'host') namespaces.push({ type: 'network' });
  if (o.ipcNamespace !== 'host') namespaces.push({ type: 'ipc' });
  if (o.utsNamespace !== 'host') namespaces.push({ type: 'uts' });
  if (o.cgroupNamespace === 'private' || (o.cgroupNamespace === undefined && hostIsCgroup2())) {
    namespaces.push({ type: 'cgroup' });
  }
  if (userns) namespaces.push({ type: 'user' });
  else if (o.userNamespacePath !== undefined) namespaces.push({ type: 'user', path: o.userNamespacePath });
  for (const [type, nsPath] of Object.entries(o.namespacePaths ?? {}) as [NamespaceType, string][]) {
    const i = namespaces.findIndex((n) => n.type === type);
    if (i < 0) namespaces.push({ type, path: nsPath });
    else namespaces[i] = { type, path: nsPath };
  }

  // User mounts on a default destination replace the default (e.g. a bigger /dev/shm).
  const extra = (o.mounts ?? []).map(userMount);
  const replaced = new Set(extra.map((m) => m.destination));
  // Rootless barge runs the runtime inside its own user namespace: the same mount limits apply as in
  // a user namespace of the container's own, with the ids that namespace maps.
  const inNs = !userns && inUserNamespace();
  const defaults = defaultMounts(o, userns || inNs, inNs ? readIdMap('gid') : gidMaps);
  const mounts = [...defaults.filter((m) => !replaced.has(m.destination)), ...extra];
  if (o.privileged) {
    for (const m of mounts) if (m.destination === '/sys' || m.destination === '/sys/fs/cgroup') m.options = (m.options ?? []).filter((x) => x !== 'ro');
  }

  const resources: SpecResources = {
    devices: o.privileged ? [{ allow: true, access: 'rwm' }] : deviceRules(),
    ...cgroupResources(cgroupLimitsAllowed(o) ? (o.resources ?? {}) : {}),
  };

  const linux: SpecLinux = {
    namespaces,
    resources,
    maskedPaths: o.privileged ? [] : [...(o.maskedPaths ?? DEFAULT_MASKED_PATHS)],
    readonlyPaths: o.privileged ? [] : [...(o.readonlyPaths ?? DEFAULT_READONLY_PATHS)],
  };
  if (o.privileged) linux.devices = hostDevices();
  addDevices(o.devices ?? [], linux, mounts, inNs);
  // cgroupsPath is left unset unless asked for: runc and crun then both use "/<container id>" under
  // each hierarchy, which works on v1, hybrid and v2 hosts alike and leaves no parent directories behind.
  if (o.cgroupsPath !== undefined && cgroupLimitsAllowed(o)) linux.cgroupsPath = o.cgroupsPath;
  if (userns) {
    linux.uidMappings = uidMaps.map((m) => ({ ...m }));
    linux.gidMappings = gidMaps.map((m) => ({ ...m }));
  }
  if (o.seccomp !== false && !o.privileged) linux.seccomp = seccompProfile();

  const spec: RuntimeSpec = {
    ociVersion: '1.0.2',
    process: {
      terminal: o.terminal ?? false,
      user,
      args: [...o.args],
      env,
      cwd: o.cwd,
      capabilities,
      rlimits: buildRlimits(o.rlimits, hardLimits()),
      noNewPrivileges: o.noNewPrivileges ?? false,
    },
    root: { path: path.resolve(o.rootfs), readonly: o.readonlyRootfs ?? false },
    mounts,
    linux,
  };
  if (o.hostname !== undefined) spec.hostname = o.hostname;
  if (o.annotations && Object.keys(o.annotations).length > 0) spec.annotations = { ...o.annotations };
  if (o.sysctl && Object.keys(o.sysctl).length > 0) linux.sysctl = { ...o.sysctl };
  if (o.personality !== undefined) linux.personality = { domain: o.personality };
  if (o.oomScoreAdj !== undefined) spec.process.oomScoreAdj = o.oomScoreAdj;
  return spec;
}

const RLIM_INFINITY_MARK = '\u0000RLIM_INFINITY\u0000';

/**
 * JSON for config.json. RLIM_INFINITY is 2^64-1, which a JS number cannot carry exactly (and Go's
 * uint64 decoder rejects the rounded value), so it is spliced in as a literal.
 */
export function serializeSpec(spec: RuntimeSpec): string {
  const json = JSON.stringify(
    spec,
    (key, value: unknown) => ((key === 'soft' || key === 'hard') && value === Infinity ? RLIM_INFINITY_MARK : value),
    2,
  );
  return json.split(JSON.stringify(RLIM_INFINITY_MARK)).join('18446744073709551615') + '\n';
}
