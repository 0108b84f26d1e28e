// IPv4 addresses as 32-bit numbers, for the networks barge drives: a bridge's subnets and leases
// (bridge.ts) and the addresses slirp4netns gives out in its network (slirp.ts).
import { isIPv4 } from 'node:net';

export function ipToInt(ip: string): number {
  return ip.split('.').reduce((acc, part) => ((acc << 8) | Number(part)) >>> 0, 0);
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** The netmask of a prefix length, as a number. */
export function prefixMask(bits: number): number {
  return bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
}

export interface Cidr {
  network: number;
  bits: number;
  /** The broadcast address (the last of the subnet). */
  last: number;
}

/** "10.1.2.0/24" (any host bits cleared, as Podman stores it); undefined when it is not IPv4 CIDR. */
export function parseCidr(s: string): Cidr | undefined {
  const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d{1,2})$/.exec(s);
  if (!m || !isIPv4(m[1]!) || Number(m[2]) > 32) return undefined;
  const bits = Number(m[2]);
  const mask = prefixMask(bits);
  const network = (ipToInt(m[1]!) & mask) >>> 0;
  return { network, bits, last: (network | (~mask >>> 0)) >>> 0 };
}

export const cidrText = (c: Cidr): string => `${intToIp(c.network)}/${c.bits}`;
export const contains = (c: Cidr, ip: number): boolean => ip >= c.network && ip <= c.last;
export const overlaps = (a: Cidr, b: Cidr): boolean => a.network <= b.last && b.network <= a.last;
