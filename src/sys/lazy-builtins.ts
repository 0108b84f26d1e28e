// Node's crypto, zlib and child_process modules take 3–7 ms each to load, a tenth of a short
// command's whole run time; `from`, `config` and `run --rm` never hash or inflate anything, and
// `config` or `images` start no process. Modules every command reaches get these builtins through
// the getters, which load them on first use.
import { closeSync, openSync, readSync } from 'node:fs';

export const crypto = (): typeof import('node:crypto') => process.getBuiltinModule('node:crypto');
export const zlib = (): typeof import('node:zlib') => process.getBuiltinModule('node:zlib');
export const childProcess = (): typeof import('node:child_process') => process.getBuiltinModule('node:child_process');
export const net = (): typeof import('node:net') => process.getBuiltinModule('node:net');
export const dgram = (): typeof import('node:dgram') => process.getBuiltinModule('node:dgram');

/** `n` random bytes as hex, from the kernel's generator without loading crypto. */
export function randomHex(n: number): string {
  const buf = Buffer.allocUnsafe(n);
  const fd = openSync('/dev/urandom', 'r');
  try {
    let got = 0;
    while (got < n) got += readSync(fd, buf, got, n - got, null);
  } finally {
    closeSync(fd);
  }
  return buf.toString('hex');
}

/** A uniformly random integer in [0, max), max ≤ 2^32. */
export function randomBelow(max: number): number {
  // Rejection sampling: plain modulo would favour the small values.
  const limit = Math.floor(0x1_0000_0000 / max) * max;
  for (;;) {
    const v = Number.parseInt(randomHex(4), 16);
    if (v < limit) return v % max;
  }
}
