// The run options of Buildah's from and build (and the namespace flags its run shares with them),
// read from commander's values into the RunSettings that a working container keeps or a build
// applies to each RUN. Everything is checked here, so that a bad value fails before a container
// is made or a step is run.

import { existsSync } from 'node:fs';
import { isIP } from 'node:net';
import type { NamespaceMode, RunSettings } from '../primitives/run.ts';
import type { SpecResourceLimits } from '../runtime/spec.ts';
import { ContainerError } from '../containers/record.ts';
import { checkCapabilities, parseMemory, parseSecurityOpts, parseShmSize, parseUlimit } from '../containers/shared-run-flags.ts';
import { checkExtraHost, parseDevice } from '../containers/host-access.ts';

type Opts = Record<string, unknown>;
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const list = (v: unknown): string[] => (Array.isArray(v) ? (v as string[]) : []);
/** Buildah's flags of type "strings" (pflag's StringSlice) take comma-separated values too. */
const slice = (v: unknown): string[] => list(v).flatMap((s) => s.split(',')).filter((s) => s !== '');

/** --network: host, none, private (Buildah's default and bridge-like names alike), or ns:PATH. */
export function parseNetwork(v: string): Pick<RunSettings, 'network' | 'networkPath'> {
  if (v === 'host' || v === 'none' || v === 'private') return { network: v };
  if (v === 'default' || v === 'bridge' || v === 'slirp4netns' || v === 'pasta' || v === 'container') return { network: 'private' };
  const path = namespacePath(v);
  if (path !== undefined) return { networkPath: checkedPath('--network', path) };
  throw new ContainerError(`unsupported --network "${v}" (host, none, private, ns:PATH)`);
}

/** --pid, --ipc, --uts: host, private (or container), or ns:PATH (a bare absolute path too, as Buildah). */
export function parseNamespace(flag: string, v: string): NamespaceMode {
  if (v === 'host' || v === 'private') return v;
  if (v === 'container') return 'private';
  const path = namespacePath(v);
  if (path !== undefined) return { path: checkedPath(flag, path) };
  throw new ContainerError(`invalid ${flag} "${v}": expected host, private or ns:PATH`);
}

export function parseCgroupns(v: string): 'private' | 'host' {
  if (v === 'host' || v === 'private') return v;
  throw new ContainerError(`invalid --cgroupns "${v}": expected host or private`);
}

function namespacePath(v: string): string | undefined {
  if (v.startsWith('ns:')) return v.slice(3);
  return v.startsWith('/') ? v : undefined;
}

function checkedPath(flag: string, path: string): string {
  if (!existsSync(path)) throw new ContainerError(`invalid ${flag}: namespace "${path}": no such file or directory`);
  return path;
}

function unsigned(flag: string, v: string): number {
  if (!/^\d+$/.test(v)) throw new ContainerError(`invalid argument "${v}" for "${flag}" flag: expected a non-negative integer`);
  return Number(v);
}

function cpuset(flag: string, v: string): string {
  if (!/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(v)) throw new ContainerError(`invalid ${flag} "${v}": expected a list such as 0-3 or 0,1`);
  return v;
}

/** The cgroup limit flags Buildah's run and Podman's update share (--memory, --memory-swap, --cpu-*, --cpuset-*). */
export function resourcesOf(o: Opts): SpecResourceLimits | undefined {
  const r: SpecResourceLimits = {};
  const memory = str(o.memory);
  if (memory !== undefined) r.memory = parseMemory(memory);
  const swap = str(o.memorySwap);
  if (swap !== undefined) {
    if (r.memory === undefined) throw new ContainerError('you must provide a memory limit (--memory) when setting --memory-swap');
    r.memorySwap = swap === '-1' ? -1 : parseMemory(swap);
    if (r.memorySwap !== -1 && r.memorySwap < r.memory) throw new ContainerError('--memory-swap must be larger than or equal to --memory (memory plus swap)');
  }
  if (str(o.cpuPeriod) !== undefined) r.cpuPeriod = unsigned('--cpu-period', str(o.cpuPeriod)!);
  const quota = str(o.cpuQuota);
  if (quota !== undefined) {
    if (!/^-?\d+$/.test(quota)) throw new ContainerError(`invalid argument "${quota}" for "--cpu-quota" flag: expected an integer`);
    r.cpuQuota = Number(quota);
  }
  if (str(o.cpuShares) !== undefined) r.cpuShares = unsigned('--cpu-shares', str(o.cpuShares)!);
  if (str(o.cpusetCpus) !== undefined) r.cpusetCpus = cpuset('--cpuset-cpus', str(o.cpusetCpus)!);
  if (str(o.cpusetMems) !== undefined) r.cpusetMems = cpuset('--cpuset-mems', str(o.cpusetMems)!);
  return Object.keys(r).length ? r : undefined;
}

function dnsOf(o: Opts): Pick<RunSettings, 'dns' | 'dnsOptions' | 'dnsSearch'> {
  const dns = slice(o.dns);
  if (dns.includes('none') && dns.length > 1) throw new ContainerError('invalid --dns, --dns=none may not be used with any other --dns options');
  for (const d of dns) if (d !== 'none' && isIP(d) === 0) throw new ContainerError(`${d} is not an ip address`);
  const dnsOptions = slice(o.dnsOption);
  const dnsSearch = slice(o.dnsSearch);
  if (dns.includes('none') && (dnsOptions.length || dnsSearch.length)) throw new ContainerError('invalid --dns=none: --dns-option and --dns-search need a resolv.conf');
  return { ...(dns.length && { dns }), ...(dnsOptions.length && { dnsOptions }), ...(dnsSearch.length && { dnsSearch }) };
}

/** Go's strconv.ParseBool, which Buildah's boolean flags use. */
function boolValue(flag: string, v: unknown): boolean | undefined {
  if (v === undefined || typeof v === 'boolean') return v;
  const s = String(v);
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(s)) return true;
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(s)) return false;
  throw new ContainerError(`invalid argument "${s}" for "${flag}" flag: strconv.ParseBool: parsing "${s}": invalid syntax`);
}

/** --pid, --ipc, --uts and --cgroupns, which from, build and run all take. */
export function namespaceSettings(o: Opts): Pick<RunSettings, 'pid' | 'ipc' | 'uts' | 'cgroupns'> {
  const out: Pick<RunSettings, 'pid' | 'ipc' | 'uts' | 'cgroupns'> = {};
  for (const key of ['pid', 'ipc', 'uts'] as const) {
    const v = str(o[key]);
    if (v !== undefined) out[key] = parseNamespace(`--${key}`, v);
  }
  if (str(o.cgroupns) !== undefined) out.cgroupns = parseCgroupns(str(o.cgroupns)!);
  return out;
}

/**
 * The run settings of from's or build's options. from also takes --network and -v here (build
 * has its own handling of those for RUN --network and its cache key).
 */
export function buildahRunSettings(o: Opts, kind: 'from' | 'build'): RunSettings {
  if (list(o.decryptionKey).length) throw new ContainerError('--decryption-key: barge cannot decrypt encrypted images (decrypt it with skopeo copy --decryption-key, then use the copy)');
  const capAdd = slice(o.capAdd);
  const capDrop = slice(o.capDrop);
  checkCapabilities([...capAdd, ...capDrop]);
  const security = parseSecurityOpts(list(o.securityOpt));
  const ulimits = slice(o.ulimit).map(parseUlimit);
  const resources = resourcesOf(o);
  const shm = str(o.shmSize);
  const devices = list(o.device).map(parseDevice);
  const addHost = slice(o.addHost).map(checkExtraHost);
  const noHosts = kind === 'build' && o.hosts === false;
  if (noHosts && addHost.length) throw new ContainerError('--no-hosts and --add-host cannot be set together');
  const network = kind === 'from' && str(o.network) !== undefined ? parseNetwork(str(o.network)!) : {};
  const httpProxy = boolValue('--http-proxy', o.httpProxy);
  const runtimeFlags = list(o.runtimeFlag);
  const cgroupParent = str(o.cgroupParent);
  return {
    ...(capAdd.length && { capAdd }),
    ...(capDrop.length && { capDrop }),
    ...(security.noNewPrivileges && { noNewPrivileges: true }),
    ...(security.seccompUnconfined && { seccompUnconfined: true }),
    ...(ulimits.length && { ulimits }),
    ...(resources && { resources }),
    ...(shm !== undefined && { shmSize: parseShmSize(shm) }),
    ...(devices.length && { devices }),
    ...(addHost.length && { addHost }),
    ...(noHosts && { noHosts }),
    ...dnsOf(o),
    ...(kind === 'from' && list(o.volume).length && { volumes: list(o.volume) }),
    ...network,
    ...namespaceSettings(o),
    ...(cgroupParent !== undefined && { cgroupParent }),
    ...(httpProxy === false && { httpProxy }),
    ...(runtimeFlags.length && { runtimeFlags }),
  };
}
