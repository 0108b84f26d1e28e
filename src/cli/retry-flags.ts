import { parseDuration } from '../primitives/config.ts';

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/**
 * Skopeo's --retry-times, Podman's and Buildah's --retry and --retry-delay. Kept apart from the
 * registry code so that a command can refuse a bad value before it does anything, without
 * loading that code.
 */
export function retryFlags(o: Record<string, unknown>): { retryTimes?: number; retryDelayMs?: number } {
  const out: { retryTimes?: number; retryDelayMs?: number } = {};
  const retries = o.retryTimes ?? o.retry;
  if (retries !== undefined) {
    const n = Number(retries);
    if (!Number.isInteger(n) || n < 0) throw new Error(`invalid --${o.retryTimes !== undefined ? 'retry-times' : 'retry'} ${JSON.stringify(retries)}: expected a number of retries`);
    out.retryTimes = n;
  }
  const delay = str(o.retryDelay);
  if (delay !== undefined) {
    let ns: number;
    try {
      ns = parseDuration(delay);
    } catch (e) {
      throw new Error(`invalid --retry-delay ${JSON.stringify(delay)}: ${(e as Error).message}`, { cause: e });
    }
    if (ns < 0) throw new Error(`invalid --retry-delay ${JSON.stringify(delay)}: must not be negative`);
    out.retryDelayMs = Math.round(ns / 1e6);
  }
  return out;
}
