// Podman's bridge networks for root containers (--network bridge|NAME), driven through netavark as
// Podman 4.3 drives it: barge keeps the network definitions (Podman's JSON) and allocates the
// addresses, netavark makes the bridge, the veth pair, the firewall rules and the port forwards in
// the container's network namespace (the one netns.ts makes), and starts aardvark-dns for the
// networks with DNS. Barge keeps its own: definitions under <root>/networks, netavark's state under
// <runroot>/netavark, bridges named bargeN and subnets outside Podman's pools, so that barge and
// Podman on one host never share an address pool or fight over a bridge.
//
// The address leases are rows of the store's network_leases table, taken in one transaction per
// start and given back when the container's network is torn down (lifecycle.ts clearRuntime).
// Rootless containers keep slirp4netns: Podman 4.3 needs rootlessport and a rootless network
// namespace for bridges there, which barge does not have.

import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync, renameSync, rmSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { join } from 'node:path';
import type { Store } from '../store/store.ts';
import { exec } from '../sys/exec.ts';
import { randomHex } from '../sys/lazy-builtins.ts';
import { inBargeUserns } from '../sys/userns.ts';
import { isExecutableFile, lookPath } from '../runtime/oci-runtime.ts';
import { CONTAINER_NAME, ContainerError, type PodContainer } from './record.ts';
import { portRanges, type PortMapping } from './slirp.ts';
import { cidrText, contains, intToIp, ipToInt, overlaps, parseCidr, type Cidr } from './ipv4.ts';

/** A network as Podman 4.3 keeps it (types.Network's JSON), the form netavark reads too. */
export interface NetworkDef {
  name: string;
  id: string;
  driver: string;
  network_interface: string;
  created: string;
  subnets: NetworkSubnet[];
  ipv6_enabled: boolean;
  internal: boolean;
  dns_enabled: boolean;
  labels?: Record<string, string>;
  options?: Record<string, string>;
  ipam_options: { driver: string };
}

export interface NetworkSubnet {
  subnet: string;
  gateway: string;
  lease_range?: { start_ip: string; end_ip: string };
}

/** One network a container is attached to (its --network, --ip, --mac-address, --network-alias). */
export interface NetworkAttachment {
  interfaceName: string;
  ips?: string[];
  mac?: string;
  aliases?: string[];
}

/** What netavark reads on stdin for setup and teardown. */
interface NetavarkRequest {
  container_id: string;
  container_name: string;
  port_mappings?: { host_ip: string; container_port: number; host_port: number; range: number; protocol: string }[];
  networks: Record<string, { static_ips: string[]; aliases: string[]; static_mac?: string; interface_name: string }>;
  network_info: Record<string, NetworkDef>;
}

/** What netavark's setup answers, per network. */
export type NetavarkResult = Record<string, {
  dns_search_domains?: string[];
  dns_server_ips?: string[];
  interfaces?: Record<string, { mac_address: string; subnets?: { ipnet: string; gateway?: string }[] }>;
}>;

/** A container's bridge networking while it is set up: the request teardown repeats, and setup's answer. */
export interface BridgeState {
  request: NetavarkRequest;
  result?: NetavarkResult;
}

/** Podman's exit statuses: 1 for a network that does not exist (rm, exists), 2 in use. */
export class NetworkError extends ContainerError {
  override name = 'NetworkError';
}

/** The network `--network bridge` means, always there, as Podman's default network. */
export const DEFAULT_NETWORK = 'podman';
/** Not Podman's podman0 and 10.88.0.0/16, nor in its pools (10.89.0.0 and up): the two never meet. */
const DEFAULT_BRIDGE = 'barge0';
const DEFAULT_SUBNET = '10.87.0.0/16';
const DEFAULT_ID = 'b4a6e0c39f1d5e8a7c2b6d0f4e3a9c8b7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a';
/** Where `network create` without --subnet takes a free /24 from: below Podman's default and pools. */
const SUBNET_POOL = { base: '10.80.0.0', count: 7 * 256 };
/** Podman's search domain for the names aardvark-dns answers. */
const DNS_DOMAIN = 'dns.podman';
/** The bridge options netavark 1.4 knows. */
const BRIDGE_OPTIONS = new Set(['mtu', 'vlan', 'isolate']);

// ---------- definitions ----------

function networksDir(store: Store): string {
  return join(store.root, 'networks');
}

/** The default network, implicit as Podman's: never written, created "now" whenever it is read. */
function defaultNetwork(): NetworkDef {
  const c = parseCidr(DEFAULT_SUBNET)!;
  return {
    name: DEFAULT_NETWORK, id: DEFAULT_ID, driver: 'bridge', network_interface: DEFAULT_BRIDGE, created: new Date().toISOString(),
    subnets: [{ subnet: DEFAULT_SUBNET, gateway: intToIp(c.network + 1) }], ipv6_enabled: false, internal: false, dns_enabled: false,
    ipam_options: { driver: 'host-local' },
  };
}

/** Every network, the default first and the others by name (Podman's ls order). */
export function listNetworks(store: Store): NetworkDef[] {
  const dir = networksDir(store);
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')).sort() : [];
  const defs = files.flatMap((f) => {
    try {
      return [JSON.parse(readFileSync(join(dir, f), 'utf8')) as NetworkDef];
    } catch {
      // Removed meanwhile.
      return [];
    }
  });
  return [...defs, defaultNetwork()].sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * By name, else by full id or a unique id prefix, as Podman looks a network up. Not found is exit 1
 * for the network commands, 125 (`notFoundCode`) for a container's --network.
 */
export function findNetwork(store: Store, ref: string, notFoundCode = 1): NetworkDef {
  const all = listNetworks(store);
  const found = all.find((n) => n.name === ref) ?? all.find((n) => n.id === ref);
  if (found) return found;
  const partial = ref.length > 0 ? all.filter((n) => n.id.startsWith(ref)) : [];
  if (partial.length === 1) return partial[0]!;
  if (partial.length > 1) throw new NetworkError(`more than one result for network ID ${ref}`);
  throw new NetworkError(`unable to find network with name or ID ${ref}: network not found`, notFoundCode);
}

/** The IPv4 networks of the host's interfaces, which a new subnet must not overlap. */
async function hostSubnets(): Promise<Cidr[]> {
  const r = await exec('ip', ['-j', '-4', 'addr', 'show'], { check: false });
  try {
    const links = JSON.parse(r.stdout || '[]') as { addr_info?: { local?: string; prefixlen?: number }[] }[];
    return links.flatMap((l) => (l.addr_info ?? []).flatMap((a) => {
      const c = a.local && a.prefixlen !== undefined ? parseCidr(`${a.local}/${a.prefixlen}`) : undefined;
      return c ? [c] : [];
    }));
  } catch {
    return [];
  }
}

export interface CreateNetworkOptions {
  name?: string;
  driver?: string;
  subnet?: string;
  gateway?: string;
  ipRange?: string;
  internal?: boolean;
  disableDns?: boolean;
  labels?: Record<string, string>;
  options?: Record<string, string>;
}

function checkOptions(options: Record<string, string>): void {
  for (const [k, v] of Object.entries(options)) {
    if (!BRIDGE_OPTIONS.has(k)) throw new NetworkError(`unsupported bridge network option ${k}`);
    if ((k === 'mtu' || k === 'vlan') && !/^\d+$/.test(v)) throw new NetworkError(`${k} must be a number, not "${v}"`);
    if (k === 'isolate' && !['true', 'false'].includes(v)) throw new NetworkError(`isolate must be true or false, not "${v}"`);
  }
}

/** The subnet of a new network: --subnet checked against the others and the host, else the first free /24 of barge's pool. */
async function chooseSubnet(taken: readonly Cidr[], asked: string | undefined): Promise<Cidr> {
  const inUse = [...taken, ...(await hostSubnets())];
  if (asked !== undefined) {
    const c = parseCidr(asked);
    if (!c) {
      if (asked.includes(':')) throw new NetworkError(`subnet ${asked}: barge's bridge networks are IPv4 only`);
      throw new NetworkError(`invalid subnet ${asked}: expected an IPv4 network such as 10.231.0.0/24`);
    }
    if (c.bits > 30) throw new NetworkError(`subnet ${asked} is too small: it needs room for a gateway and a container (at most /30)`);
    if (inUse.some((u) => overlaps(u, c))) throw new NetworkError(`subnet ${cidrText(c)} is already used on the host or by another config`);
    return c;
  }
  const base = ipToInt(SUBNET_POOL.base);
  for (let i = 0; i < SUBNET_POOL.count; i++) {
    const c: Cidr = { network: base + i * 256, bits: 24, last: base + i * 256 + 255 };
    if (!inUse.some((u) => overlaps(u, c))) return c;
  }
  throw new NetworkError('could not find a free subnet for the network: give one with --subnet');
}

/** The lowest bargeN (N ≥ 1) that neither a network of barge's nor a host interface has. */
function chooseBridge(defs: readonly NetworkDef[]): string {
  const used = new Set(defs.map((d) => d.network_interface));
  for (let n = 1; ; n++) if (!used.has(`barge${n}`) && !existsSync(`/sys/class/net/barge${n}`)) return `barge${n}`;
}

/** `network create`: the new network's definition, written as <root>/networks/NAME.json. */
export async function createNetwork(store: Store, o: CreateNetworkOptions): Promise<NetworkDef> {
  const driver = o.driver ?? 'bridge';
  if (driver !== 'bridge') throw new NetworkError(`unsupported driver ${driver}: invalid argument (barge makes bridge networks only)`);
  if (o.name !== undefined && !CONTAINER_NAME.test(o.name)) throw new NetworkError(`network name ${o.name} invalid: names must match [a-zA-Z0-9][a-zA-Z0-9_.-]*: invalid argument`);
  if (o.subnet === undefined && (o.gateway !== undefined || o.ipRange !== undefined)) throw new NetworkError('cannot set gateway or range without subnet');
  checkOptions(o.options ?? {});
  // One create at a time: the name, subnet and bridge each must be unique.
  return store.withLock('networks', async () => {
    const defs = listNetworks(store);
    const bridge = chooseBridge(defs);
    const name = o.name ?? bridge;
    if (defs.some((d) => d.name === name)) throw new NetworkError(`network name ${name} already used: network already exists`);
    const c = await chooseSubnet(defs.flatMap((d) => d.subnets.flatMap((s) => parseCidr(s.subnet) ?? [])), o.subnet);
    const subnet: NetworkSubnet = { subnet: cidrText(c), gateway: intToIp(c.network + 1) };
    if (o.gateway !== undefined) {
      if (!isIPv4(o.gateway) || !contains(c, ipToInt(o.gateway))) throw new NetworkError(`gateway ip ${o.gateway} not in subnet ${cidrText(c)}`);
      subnet.gateway = o.gateway;
    }
    if (o.ipRange !== undefined) {
      const r = parseCidr(o.ipRange);
      if (!r || r.network < c.network || r.last > c.last) throw new NetworkError(`ip range ${o.ipRange} is not inside subnet ${cidrText(c)}`);
      // Podman's lease range: the first address after the range's network, to its last.
      subnet.lease_range = { start_ip: intToIp(r.network + 1), end_ip: intToIp(r.last) };
    }
    const def: NetworkDef = {
      name, id: randomHex(32), driver: 'bridge', network_interface: bridge, created: new Date().toISOString(), subnets: [subnet],
      ipv6_enabled: false, internal: !!o.internal, dns_enabled: !o.disableDns,
      ...(o.labels && Object.keys(o.labels).length > 0 && { labels: o.labels }),
      ...(o.options && Object.keys(o.options).length > 0 && { options: o.options }),
      ipam_options: { driver: 'host-local' },
    };
    const dir = networksDir(store);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const tmp = join(dir, `.${name}.${process.pid}.tmp`);
    writeFileSync(tmp, `${JSON.stringify(def, null, 5)}\n`, { mode: 0o644 });
    renameSync(tmp, join(dir, `${name}.json`));
    return def;
  });
}

/** The Podman-style containers attached to the network. */
export function networkUsers(store: Store, name: string): { id: string; name: string }[] {
  return store.listContainers('container').filter((r) => Object.hasOwn((JSON.parse(r.data) as PodContainer).config.networks ?? {}, name));
}

/**
 * `network rm`: refused for the default network, and (exit 2) for one that containers use unless
 * `force`, which removes them first through `removeContainer`.
 */
export async function removeNetwork(store: Store, ref: string, force: boolean, removeContainer: (id: string) => Promise<unknown>): Promise<NetworkDef> {
  const def = findNetwork(store, ref);
  if (def.name === DEFAULT_NETWORK) throw new NetworkError(`default network ${DEFAULT_NETWORK} cannot be removed`);
  const users = networkUsers(store, def.name);
  if (users.length > 0 && !force) throw new NetworkError(`"${def.name}" has associated containers with it. Use -f to forcibly delete containers and pods: network is being used`, 2);
  for (const u of users) await removeContainer(u.id);
  await store.withLock('networks', async () => {
    if (networkUsers(store, def.name).length > 0) throw new NetworkError(`"${def.name}" has associated containers with it: network is being used`, 2);
    rmSync(join(networksDir(store), `${def.name}.json`), { force: true });
  });
  return def;
}

// ---------- container options ----------

/** Whether a --network value names bridge networks (anything but barge's other modes). */
export function isBridgeMode(mode: string): boolean {
  return !['host', 'none', 'private'].includes(mode) && !/^(slirp4netns|ns:|container:)/.test(mode);
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

/**
 * create's bridge networks: `bridge` (the default network) or NAME[,NAME…], each one that exists,
 * with --ip, --mac-address and --network-alias given to the only one, as Podman allows.
 */
export function parseBridgeNetworks(store: Store, mode: string, o: { ip?: string; mac?: string; aliases?: readonly string[] }): Record<string, NetworkAttachment> {
  refuseRootless();
  const names = mode.split(',').map((n) => (n === 'bridge' ? DEFAULT_NETWORK : n));
  if (names.some((n) => n === '')) throw new NetworkError(`invalid network "${mode}"`);
  if (new Set(names).size !== names.length) throw new NetworkError(`network "${mode}" names a network twice`);
  if (names.length > 1 && o.ip !== undefined) throw new NetworkError('--ip can only be set for a single network: invalid argument');
  if (names.length > 1 && o.mac !== undefined) throw new NetworkError('--mac-address can only be set for a single network: invalid argument');
  if (names.length > 1 && (o.aliases ?? []).length > 0) throw new NetworkError('--network-alias can only be set for a single network: invalid argument');
  if (o.ip !== undefined && !isIPv4(o.ip)) throw new NetworkError(`${o.ip} is not an IPv4 address${o.ip.includes(':') ? ": barge's bridge networks are IPv4 only" : ''}`);
  if (o.mac !== undefined && !MAC.test(o.mac)) throw new NetworkError(`address ${o.mac}: invalid MAC address`);
  const out: Record<string, NetworkAttachment> = {};
  names.forEach((ref, i) => {
    const def = findNetwork(store, ref, 125);
    const ip = o.ip;
    if (ip !== undefined && !def.subnets.some((s) => contains(parseCidr(s.subnet)!, ipToInt(ip)))) {
      throw new NetworkError(`requested static ip ${ip} not in any subnet on network ${def.name}`);
    }
    out[def.name] = {
      interfaceName: `eth${i}`,
      ...(ip !== undefined && { ips: [ip] }),
      ...(o.mac !== undefined && { mac: o.mac.toLowerCase() }),
      ...((o.aliases ?? []).length > 0 && { aliases: [...(o.aliases ?? [])] }),
    };
  });
  return out;
}

/** Addresses and aliases without a bridge network to give them to: Podman's refusal. */
export function refuseNetworkOptions(mode: string, o: { ip?: string; mac?: string; aliases?: readonly string[] }): void {
  if (o.ip !== undefined || o.mac !== undefined || (o.aliases ?? []).length > 0) {
    throw new NetworkError(`--ip, --mac-address and --network-alias need a bridge network (--network bridge or a network's name), not "${mode}": invalid argument`);
  }
}

function refuseRootless(): void {
  if (process.getuid?.() !== 0 || inBargeUserns()) {
    throw new NetworkError('bridge networks need root: rootless barge networks containers through slirp4netns (--network slirp4netns, also the default with -p); Podman 4.3 rootless bridges need rootlessport and a rootless network namespace, which barge does not have');
  }
}

// ---------- address leases ----------

interface LeaseRow {
  ip: string;
  container_id: string;
}

/**
 * Takes each network's address for the container in one transaction: its --ip if no other
 * container holds it, else the lowest free one of the lease range (the subnet without its network,
 * gateway and broadcast addresses). Leases of removed containers are dropped on the way.
 */
function allocate(store: Store, containerId: string, networks: Record<string, NetworkAttachment>, defs: Record<string, NetworkDef>): Record<string, string[]> {
  return store.db.tx(() => {
    store.db.run('DELETE FROM network_leases WHERE container_id NOT IN (SELECT id FROM containers)');
    // A start after a crash takes its addresses afresh.
    store.db.run('DELETE FROM network_leases WHERE container_id = ?', containerId);
    const out: Record<string, string[]> = {};
    for (const [name, a] of Object.entries(networks)) {
      const def = defs[name]!;
      const s = def.subnets[0]!;
      const c = parseCidr(s.subnet)!;
      const held = new Map(store.db.all<LeaseRow>('SELECT ip, container_id FROM network_leases WHERE network_id = ?', def.id).map((r) => [r.ip, r.container_id]));
      let ip: string | undefined;
      if (a.ips?.[0] !== undefined) {
        ip = a.ips[0];
        const owner = held.get(ip);
        if (owner !== undefined) throw new NetworkError(`IPAM error: requested ip address ${ip} is already allocated to container ID ${owner}`);
        if (ip === s.gateway || ipToInt(ip) === c.network || (c.bits < 31 && ipToInt(ip) === c.last)) throw new NetworkError(`IPAM error: requested ip address ${ip} is reserved on network ${name}`);
      } else {
        const first = s.lease_range ? ipToInt(s.lease_range.start_ip) : c.network + 1;
        const last = Math.min(s.lease_range ? ipToInt(s.lease_range.end_ip) : c.last, c.last - 1);
        for (let n = first; n <= last && ip === undefined; n++) {
          const cand = intToIp(n);
          if (cand !== s.gateway && !held.has(cand)) ip = cand;
        }
        if (ip === undefined) throw new NetworkError(`IPAM error: failed to find free IP in range: ${s.subnet} (network ${name}: every address is taken)`);
      }
      store.db.run('INSERT INTO network_leases (network_id, ip, container_id) VALUES (?, ?, ?)', def.id, ip, containerId);
      out[name] = [ip];
    }
    return out;
  });
}

/** Gives back the container's addresses. */
export function releaseLeases(store: Store, containerId: string): void {
  store.db.run('DELETE FROM network_leases WHERE container_id = ?', containerId);
}

/** Who holds addresses: container id → the number of leases. */
export function leaseHolders(store: Store): Map<string, number> {
  return new Map(store.db.all<{ container_id: string; n: number }>('SELECT container_id, COUNT(*) AS n FROM network_leases GROUP BY container_id').map((r) => [r.container_id, r.n]));
}

// ---------- netavark ----------

/** netavark and aardvark-dns where Podman's helper_binaries_dir looks for them, else in PATH. */
function helper(name: string): string | undefined {
  for (const dir of ['/usr/local/libexec/podman', '/usr/local/lib/podman', '/usr/libexec/podman', '/usr/lib/podman']) {
    if (isExecutableFile(join(dir, name))) return join(dir, name);
  }
  return lookPath(name);
}

async function netavark(store: Store, verb: 'setup' | 'teardown', netns: string, request: NetavarkRequest): Promise<string> {
  const bin = helper('netavark');
  if (!bin) throw new NetworkError('bridge networks need netavark: install the "netavark" package (and "aardvark-dns" for names)');
  const config = join(store.runroot, 'netavark');
  mkdirSync(config, { recursive: true, mode: 0o700 });
  const aardvark = helper('aardvark-dns');
  const args = ['--config', config, '--rootless=false', ...(aardvark ? [`--aardvark-binary=${aardvark}`] : []), verb, netns];
  const r = await exec(bin, args, { input: JSON.stringify(request), check: false });
  if (r.exitCode !== 0) {
    // netavark reports {"error": "..."} on stdout or stderr.
    let why = (r.stderr.trim() || r.stdout.trim()).split('\n').at(-1) ?? '';
    try {
      why = (JSON.parse(why) as { error?: string }).error ?? why;
    } catch {
      // Plain text.
    }
    throw new NetworkError(`netavark ${verb}: ${why || `exit status ${r.exitCode}`}`);
  }
  return r.stdout;
}

/**
 * Sets up the container's bridge networks in the network namespace `netns`: addresses leased,
 * then `persist` records the request (so that a crash from here on leaves something cleanup tears
 * down), then netavark's setup.
 */
export async function setupBridge(
  store: Store, c: { id: string; name: string; networks: Record<string, NetworkAttachment>; ports: readonly PortMapping[] }, netns: string,
  persist: (s: BridgeState) => void,
): Promise<BridgeState> {
  refuseRootless();
  const defs = Object.fromEntries(Object.keys(c.networks).map((n) => [n, findNetwork(store, n, 125)]));
  const ips = allocate(store, c.id, c.networks, defs);
  const shortId = c.id.slice(0, 12);
  const request: NetavarkRequest = {
    container_id: c.id, container_name: c.name,
    ...(c.ports.length > 0 && {
      port_mappings: portRanges(c.ports).map(({ first: p, range }) => ({ host_ip: p.hostIp, container_port: p.containerPort, host_port: p.hostPort, range, protocol: p.protocol })),
    }),
    networks: Object.fromEntries(Object.entries(c.networks).map(([n, a]) => [n, {
      static_ips: ips[n] ?? [], aliases: [...(a.aliases ?? []), shortId], ...(a.mac !== undefined && { static_mac: a.mac }), interface_name: a.interfaceName,
    }])),
    network_info: defs,
  };
  const state: BridgeState = { request };
  persist(state);
  const out = await netavark(store, 'setup', netns, request);
  try {
    state.result = JSON.parse(out) as NetavarkResult;
  } catch {
    throw new NetworkError(`netavark setup answered what is not JSON: ${out.slice(0, 200)}`);
  }
  return state;
}

/** Undoes setupBridge (as far as it got) and gives the addresses back. */
export async function teardownBridge(store: Store, containerId: string, state: BridgeState | undefined, netns: string): Promise<void> {
  try {
    if (state && existsSync(netns)) await netavark(store, 'teardown', netns, state.request);
  } finally {
    releaseLeases(store, containerId);
  }
}

// ---------- what the container sees ----------

/** The container's address on each network: "IP/BITS", gateway and MAC, in attachment order. */
export function bridgeAddresses(state: BridgeState | undefined): { network: string; ip: string; prefixLen: number; gateway: string; mac: string; aliases: string[] }[] {
  if (!state?.result) return [];
  return Object.entries(state.request.networks).flatMap(([name, req]) => {
    const iface = state.result?.[name]?.interfaces?.[req.interface_name];
    const sub = iface?.subnets?.[0];
    if (!iface || !sub) return [];
    const [ip = '', bits = '0'] = sub.ipnet.split('/');
    return [{ network: name, ip, prefixLen: Number(bits), gateway: sub.gateway ?? '', mac: iface.mac_address, aliases: req.aliases }];
  });
}

/** Non-loopback nameservers and the search domains of the host's resolv.conf. */
function hostResolv(): { nameservers: string[]; search: string[] } {
  let text = '';
  try {
    text = readFileSync('/etc/resolv.conf', 'utf8');
  } catch {
    // No resolver configured.
  }
  const nameservers: string[] = [];
  const search: string[] = [];
  for (const line of text.split('\n')) {
    const [key, ...rest] = line.trim().split(/\s+/);
    if (key === 'nameserver' && rest[0] && !/^127\.|^::1$/.test(rest[0])) nameservers.push(rest[0]);
    if (key === 'search' || key === 'domain') search.push(...rest);
  }
  return { nameservers, search };
}

/**
 * The container's /etc/resolv.conf on bridge networks, as Podman writes it: aardvark-dns first where
 * a network has DNS (with its search domain), then the host's own resolvers.
 */
export function bridgeResolvConf(state: BridgeState | undefined): string {
  const dns = Object.values(state?.result ?? {}).flatMap((r) => r.dns_server_ips ?? []);
  const domains = Object.values(state?.result ?? {}).flatMap((r) => r.dns_search_domains ?? []);
  const host = hostResolv();
  const search = [...new Set([...(dns.length > 0 ? domains.length > 0 ? domains : [DNS_DOMAIN] : []), ...host.search])];
  return [...(search.length > 0 ? [`search ${search.join(' ')}`] : []), ...[...new Set([...dns, ...host.nameservers])].map((n) => `nameserver ${n}`)].join('\n') + '\n';
}

/** The container's /etc/hosts lines for its bridge addresses, as Podman's: the gateway as host.containers.internal, then itself. */
export function bridgeHostLines(state: BridgeState | undefined, hostname: string, name: string): string {
  const addrs = bridgeAddresses(state);
  const first = addrs[0];
  if (!first) return '';
  return `${first.gateway ? `${first.gateway}\thost.containers.internal\n` : ''}${addrs.map((a) => `${a.ip}\t${hostname} ${name}\n`).join('')}`;
}

/** Podman's NetworkSettings of a bridged container: Networks by name, and the old top-level fields for the default network alone. */
export function inspectBridge(networks: Record<string, NetworkAttachment>, state: BridgeState | undefined): { top: Record<string, unknown>; networks: Record<string, unknown> } {
  const addrs = new Map(bridgeAddresses(state).map((a) => [a.network, a]));
  const entry = (name: string, a: NetworkAttachment): Record<string, unknown> => {
    const got = addrs.get(name);
    return {
      EndpointID: '', Gateway: got?.gateway ?? '', IPAddress: got?.ip ?? '', IPPrefixLen: got?.prefixLen ?? 0, IPv6Gateway: '', GlobalIPv6Address: '', GlobalIPv6PrefixLen: 0,
      MacAddress: got?.mac ?? '', NetworkID: name, DriverOpts: null, IPAMConfig: null, Links: null, Aliases: got?.aliases ?? a.aliases ?? null,
    };
  };
  const out = Object.fromEntries(Object.entries(networks).map(([n, a]) => [n, entry(n, a)]));
  const names = Object.keys(networks);
  const only = names.length === 1 && names[0] === DEFAULT_NETWORK ? addrs.get(DEFAULT_NETWORK) : undefined;
  return {
    top: only ? { Gateway: only.gateway, IPAddress: only.ip, IPPrefixLen: only.prefixLen, MacAddress: only.mac } : {},
    networks: out,
  };
}
