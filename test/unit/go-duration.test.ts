// Go's time.Duration String(), which `top` prints for ELAPSED and TIME as psgo does.
import { describe, expect, it } from 'vitest';
import { goDuration } from '../../src/containers/top.ts';

describe('goDuration', () => {
  it('formats as Go does, from nanoseconds to hours', () => {
    const cases: [number, string][] = [
      [0, '0s'], [1, '1ns'], [999, '999ns'], [1500, '1.5\u00b5s'], [1_000_000, '1ms'], [417_250_000, '417.25ms'],
      [1e9, '1s'], [2_817_214_690, '2.81721469s'], [60e9, '1m0s'], [61.5e9, '1m1.5s'], [3600e9, '1h0m0s'], [3723e9, '1h2m3s'], [-1.5e9, '-1.5s'],
    ];
    for (const [ns, s] of cases) expect(goDuration(ns), String(ns)).toBe(s);
  });
});
