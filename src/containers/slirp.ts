// User-mode networking for a container (--network slirp4netns, and -p/--publish), as rootless
// Podman's: a slirp4netns process gives the container's network namespace a tap0 with outbound
// connectivity, and forwards the published host ports into it through its API socket. The process
// is detached from barge (it must outlive it, as conmon does) and recorded in the container's state,
// so that whichever barge cleans the container up ends it.

import { closeSync, constants, mkdirSync, openSync, rmSync } from 'node:fs';
import { exec } from '../sys/exec.ts';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
// net and dgram are loaded when a port is checked or forwarded, not by every command that reaches
// the container code.
import { childProcess, dgram, net } from '../sys/lazy-builtins.ts';
import type { Readable } from 'node:stream';
import { isAlive, processStart } from '../sys/proc.ts';
import { ContainerError } from './record.ts';
import { intToIp, ipToInt, prefixMask } from './ipv4.ts';

export type PortProtocol = 'tcp' | 'udp';

/** One published port: hostIp '' is every address (Podman shows 0.0.0.0). */
export interface PortMapping {
  hostIp: string;
  hostPort: number;
  containerPort: number;
  protocol: PortProtocol;
}

/** The --network slirp4netns:OPTIONS barge implements. */
export interface SlirpOptions {
  allowHostLoopback: boolean;
  mtu: number;
  cidr?: string;
}

/** Podman's defaults for slirp4netns. */
export const DEFAULT_SLIRP_OPTIONS: SlirpOptions = { allowHostLoopback: false, mtu: 65520 };

/** `slirp4netns[:opt=value,…]` → its options; undefined for any other network mode. */
export function parseSlirpMode(mode: string): SlirpOptions | undefined {
  const [name, rest] = splitOnce(mode, ':');
  if (name !== 'slirp4netns') return undefined;
  const out: SlirpOptions = { ...DEFAULT_SLIRP_OPTIONS };
  for (const opt of rest === undefined || rest === '' ? [] : rest.split(',')) {
    const [key, value = ''] = splitOnce(opt, '=');
    if (key === 'allow_host_loopback' && (value === 'true' || value === 'false')) out.allowHostLoopback = value === 'true';
    else if (key === 'mtu' && /^\d+$/.test(value) && Number(value) >= 68 && Number(value) <= 65521) out.mtu = Number(value);
    else if (key === 'cidr' && /^\d+\.\d+\.\d+\.\d+\/\d+$/.test(value)) out.cidr = value;
    else if (key === 'port_handler' && value === 'slirp4netns') continue;
    else if (key === 'port_handler' && value === 'rootlesskit') throw new ContainerError('slirp4netns port_handler=rootlesskit: barge forwards ports through slirp4netns only');
    else if (['enable_ipv6', 'outbound_addr', 'outbound_addr6'].includes(key ?? '')) throw new ContainerError(`slirp4netns option "${key}" is not supported by barge (allow_host_loopback, mtu, cidr, port_handler=slirp4netns)`);
    else throw new ContainerError(`unknown option for slirp4netns: "${opt}"`);
  }
  return out;
}

function splitOnce(s: string, sep: string): [string, string | undefined] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, undefined] : [s.slice(0, i), s.slice(i + 1)];
}

function portRange(v: string, what: string): [number, number] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(v);
  if (!m) throw new ContainerError(`invalid ${what} port "${v}"`);
  const first = Number(m[1]);
  const last = m[2] === undefined ? first : Number(m[2]);
  for (const n of [first, last]) if (n < 1 || n > 65535) throw new ContainerError(`${what} port ${n} is not between 1 and 65535`);
  if (last < first) throw new ContainerError(`invalid ${what} port range "${v}": the end is below the start`);
  return [first, last];
}

/** A free port on the host for `protocol` at `ip` ('' for every address), as the kernel picks one. */
async function freePort(protocol: PortProtocol, ip: string): Promise<number> {
  const host = ip || '0.0.0.0';
  if (protocol === 'udp') {
    const s = dgram().createSocket(net().isIPv4(host) ? 'udp4' : 'udp6');
    await new Promise<void>((res, rej) => s.once('error', rej).bind(0, host, res));
    const { port } = s.address();
    s.close();
    return port;
  }
  const srv = net().createServer();
  await new Promise<void>((res, rej) => srv.once('error', rej).listen(0, host, res));
  const addr = srv.address();
  await new Promise((res) => srv.close(res));
  if (addr === null || typeof addr === 'string') throw new ContainerError('no free host port');
  return addr.port;
}

/**
 * -p values (`[[ip:][hostPort]:]containerPort[/tcp|udp]`, ports or ranges) and, for -P, the
 * exposed ports ("PORT/PROTO"), as mappings; omitted host ports are free ones chosen now, as
 * Podman chooses them at create.
 */
export async function parsePublish(values: readonly string[], exposed: readonly string[] = []): Promise<PortMapping[]> {
  const out: PortMapping[] = [];
  for (const v of values) {
    const [spec, proto = 'tcp'] = splitOnce(v, '/');
    if (proto !== 'tcp' && proto !== 'udp') throw new ContainerError(`invalid port format "${v}": barge publishes tcp and udp ports (slirp4netns forwards no ${proto})`);
    // An IPv6 host address is bracketed: [::1]:8080:80.
    const m = /^(?:(?:\[([^\]]*)\]|([^:]*)):)?(?:([^:]*):)?([^:]+)$/.exec(spec);
    if (!m) throw new ContainerError(`invalid port format "${v}": expected [[ip:][hostPort]:]containerPort[/protocol]`);
    const ip = m[1] ?? m[2] ?? '';
    // "a:b": hostPort:containerPort, not ip:containerPort.
    const [hostIp, hostSpec] = m[3] === undefined ? ['', m[2] ?? ''] : [ip, m[3]];
    if (hostIp !== '' && hostIp !== '0.0.0.0' && !net().isIPv4(hostIp)) throw new ContainerError(`invalid IP address "${hostIp}" in port mapping "${v}": slirp4netns forwards IPv4 addresses only`);
    const [cFirst, cLast] = portRange(m[4] ?? '', 'container');
    const host = hostSpec === '' ? undefined : portRange(hostSpec, 'host');
    if (host && host[1] - host[0] !== cLast - cFirst) throw new ContainerError(`invalid port format "${v}": the host and container port ranges differ in length`);
    for (let p = cFirst; p <= cLast; p++) {
      const hostPort = host ? host[0] + (p - cFirst) : await freePort(proto, hostIp);
      out.push({ hostIp: hostIp === '0.0.0.0' ? '' : hostIp, hostPort, containerPort: p, protocol: proto });
    }
  }
  for (const e of exposed) {
    const [port, proto] = splitOnce(e, '/');
    if (proto !== 'tcp' && proto !== 'udp') continue;
    const containerPort = Number(port);
    if (out.some((o) => o.containerPort === containerPort && o.protocol === proto)) continue;
    out.push({ hostIp: '', hostPort: await freePort(proto, ''), containerPort, protocol: proto });
  }
  const seen = new Set<string>();
  for (const o of out) {
    const key = `${o.hostIp || '0.0.0.0'}:${o.hostPort}/${o.protocol}`;
    if (seen.has(key)) throw new ContainerError(`conflicting port mappings: host port ${key} is given twice`);
    seen.add(key);
  }
  return sortPorts(out);
}

/** By protocol (tcp first), then container port: the order Podman lists them in. */
function sortPorts(ports: readonly PortMapping[]): PortMapping[] {
  return [...ports].sort((a, b) => a.protocol.localeCompare(b.protocol) || a.containerPort - b.containerPort || a.hostPort - b.hostPort);
}

/** A running slirp4netns, as the container's state records it. */
export interface SlirpProcess {
  pid: number;
  start: string;
}

/**
 * The pipe that ends slirp4netns with the container's monitor: a FIFO (Node makes no anonymous
 * pipes) whose writing end conmon holds and whose reading end is slirp4netns's --exit-fd. Once
 * conmon is gone, for whatever reason, slirp4netns sees the hang-up and exits: no crash of barge
 * leaves one running forever. close() releases barge's own ends once both processes hold theirs.
 */
export async function exitPipe(dir: string): Promise<{ monitorEnd: number; slirpEnd: number; close(): void }> {
  const fifo = join(dir, 'slirp-exit');
  await rm(fifo, { force: true });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  await exec('mkfifo', ['-m', '600', fifo]);
  // Read-write: opening a FIFO's writing end alone would wait for a reader.
  const monitorEnd = openSync(fifo, constants.O_RDWR);
  const slirpEnd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  rmSync(fifo);
  return {
    monitorEnd, slirpEnd,
    close: () => {
      closeSync(monitorEnd);
      closeSync(slirpEnd);
    },
  };
}

/** The API socket: under the runroot, named short, for a unix socket's 108-byte path limit. */
export function slirpSocketPath(runroot: string, id: string): string {
  return join(runroot, 'slirp', `${id.slice(0, 16)}.sock`);
}

/**
 * Starts slirp4netns for the network namespace of process `pid` (the container's, created and
 * not yet started), waits until tap0 is configured, and forwards `ports`. Ended again if any step
 * fails. Its output goes to `logPath`.
 */
export async function startSlirp(o: { pid: number; socket: string; logPath: string; exitFd: number; options: SlirpOptions; ports: readonly PortMapping[] }): Promise<SlirpProcess> {
  mkdirSync(join(o.socket, '..'), { recursive: true, mode: 0o700 });
  await rm(o.socket, { force: true });
  const args = [
    '--configure', `--mtu=${o.options.mtu}`, ...(o.options.allowHostLoopback ? [] : ['--disable-host-loopback']),
    ...(o.options.cidr !== undefined ? [`--cidr=${o.options.cidr}`] : []),
    `--api-socket=${o.socket}`, '--ready-fd=3', '--exit-fd=4', String(o.pid), 'tap0',
  ];
  const log = openSync(o.logPath, 'a', 0o600);
  let child;
  try {
    child = childProcess().spawn('slirp4netns', args, { detached: true, stdio: ['ignore', log, log, 'pipe', o.exitFd] });
  } finally {
    closeSync(log);
  }
  const ready = child.stdio[3] as Readable;
  const spawned = await new Promise<boolean>((res) => {
    let got = '';
    child.once('error', () => res(false));
    ready.on('data', (d: Buffer) => (got += d.toString()));
    ready.once('close', () => res(got.includes('1')));
    child.once('exit', () => res(false));
  });
  ready.destroy();
  child.unref();
  const proc = { pid: child.pid ?? 0, start: child.pid ? processStart(child.pid) : '0' };
  if (!spawned) {
    await stopSlirp(proc, o.socket);
    throw new ContainerError(`slirp4netns failed to set up the container's network (see ${o.logPath})${child.pid ? '' : ': is slirp4netns installed?'}`);
  }
  try {
    for (const p of o.ports) await addHostForward(o.socket, p, o.options.cidr);
  } catch (e) {
    await stopSlirp(proc, o.socket);
    throw e;
  }
  return proc;
}

/** The address `offset` into the cidr's network (slirp4netns's: +3 its DNS, +100 the guest). */
export function slirpAddress(cidr: string | undefined, offset: number): string {
  const [addr = '10.0.2.0', bits = '24'] = (cidr ?? '10.0.2.0/24').split('/');
  return intToIp((((ipToInt(addr) & prefixMask(Number(bits))) >>> 0) + offset) >>> 0);
}

async function addHostForward(socket: string, p: PortMapping, cidr: string | undefined): Promise<void> {
  const request = {
    execute: 'add_hostfwd',
    arguments: { proto: p.protocol, host_addr: p.hostIp || '0.0.0.0', host_port: p.hostPort, guest_addr: slirpAddress(cidr, 100), guest_port: p.containerPort },
  };
  const reply = await new Promise<string>((res, rej) => {
    let got = '';
    const s = net().connect(socket, () => s.end(JSON.stringify(request)));
    s.on('data', (d: Buffer) => (got += d.toString()));
    s.once('error', rej);
    s.once('close', () => res(got));
  });
  let parsed: { error?: { desc?: string } } = {};
  try {
    parsed = JSON.parse(reply) as typeof parsed;
  } catch {
    parsed = { error: { desc: reply.trim() || 'no reply' } };
  }
  if (parsed.error) {
    const where = `${p.hostIp || '0.0.0.0'}:${p.hostPort}`;
    throw new ContainerError(`failed to expose ports via slirp4netns: cannot listen on ${p.protocol} ${where} (is the port in use?): ${parsed.error.desc ?? 'error'}`);
  }
}

/** Ends the container's slirp4netns (if that process still runs) and removes its socket. */
export async function stopSlirp(proc: SlirpProcess | undefined, socket: string): Promise<void> {
  if (proc && isAlive(proc.pid, proc.start)) {
    try {
      process.kill(proc.pid, 'SIGTERM');
    } catch {
      // Gone meanwhile.
    }
    // It is not barge's child once barge that started it has gone: wait for it to go.
    for (let i = 0; i < 100 && isAlive(proc.pid, proc.start); i++) await new Promise((r) => setTimeout(r, 10));
    if (isAlive(proc.pid, proc.start)) process.kill(proc.pid, 'SIGKILL');
  }
  await rm(socket, { force: true });
}

const hostOf = (p: PortMapping): string => p.hostIp || '0.0.0.0';

/** `podman port` lines: "80/tcp -> 0.0.0.0:8080". */
export function portLines(ports: readonly PortMapping[]): string[] {
  return ports.map((p) => `${p.containerPort}/${p.protocol} -> ${hostOf(p)}:${p.hostPort}`);
}

/** Consecutive ports on the same address and protocol as one range (count ports), as Podman keeps them. */
export function portRanges(ports: readonly PortMapping[]): { first: PortMapping; range: number }[] {
  const out: { first: PortMapping; range: number }[] = [];
  const sorted = sortPorts(ports);
  for (let i = 0; i < sorted.length; ) {
    const first = sorted[i] as PortMapping;
    let n = 1;
    for (let next = sorted[i + n]; next && next.protocol === first.protocol && next.hostIp === first.hostIp && next.containerPort === first.containerPort + n && next.hostPort === first.hostPort + n; next = sorted[i + n]) n++;
    out.push({ first, range: n });
    i += n;
  }
  return out;
}

/** ps's PORTS: "0.0.0.0:8080->80/tcp, 0.0.0.0:9000-9001->90-91/tcp". */
export function psPorts(ports: readonly PortMapping[]): string {
  return portRanges(ports)
    .map(({ first, range }) => {
      const span = (a: number): string => (range > 1 ? `${a}-${a + range - 1}` : `${a}`);
      return `${hostOf(first)}:${span(first.hostPort)}->${span(first.containerPort)}/${first.protocol}`;
    })
    .join(', ');
}

/** inspect's NetworkSettings.Ports and HostConfig.PortBindings. */
export function inspectPorts(ports: readonly PortMapping[]): Record<string, { HostIp: string; HostPort: string }[]> {
  const out: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const p of [...ports].sort((a, b) => `${a.containerPort}/${a.protocol}`.localeCompare(`${b.containerPort}/${b.protocol}`))) {
    (out[`${p.containerPort}/${p.protocol}`] ??= []).push({ HostIp: p.hostIp, HostPort: String(p.hostPort) });
  }
  return out;
}
