import { describe, expect, it } from 'vitest';
import { checksum } from '../../src/cli/checksum.ts';

/** The same function in plain JavaScript. */
function fnv1aWords(data: Uint8Array): number {
  const padded = new Uint8Array((data.length + 3) & ~3);
  padded.set(data);
  const view = new DataView(padded.buffer);
  let h = 0x811c9dc5;
  for (let i = 0; i < padded.length; i += 4) h = Math.imul(h ^ view.getInt32(i, true), 0x01000193);
  return h >>> 0;
}

describe('the launcher\'s code cache checksum (WebAssembly FNV-1a)', () => {
  it('equals FNV-1a over little-endian words, for any length, across memory growth', () => {
    let seed = 7;
    const random = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24);
    for (const n of [0, 1, 3, 4, 5, 1000, 65536, 524288, 524291, 700001]) {
      const data = random(n);
      expect(checksum(data), `${n} bytes`).toBe(fnv1aWords(data));
    }
  });

  it('sees one flipped bit', () => {
    const data = new Uint8Array(400_000).fill(0x5a);
    const before = checksum(data);
    data[199_999]! ^= 0x10;
    expect(checksum(data)).not.toBe(before);
  });
});
