// Podman's healthchecks: the --health-* options (or the image's HEALTHCHECK) fixed at create, and
// `healthcheck run`, which runs the check once through exec and keeps the result in the
// container's state as Podman's State.Health. Podman runs the checks periodically from systemd
// timers; barge has no daemon and starts no timers, so a check runs only when `healthcheck run`
// is called (from cron, a systemd timer of the user's, or a script). --health-interval is kept
// for inspect.

import type { Store } from '../store/store.ts';
import type { HealthConfig } from '../image/types.ts';
import { parseDuration } from '../primitives/config.ts';
import { goDuration } from './top.ts';
import { containerEvent } from './events.ts';
import { ContainerError, isActive, loadContainer, reload, saveContainer, type Container, type ContainerConfig, type ContainerState } from './record.ts';

export type HealthStatus = '' | 'starting' | 'healthy' | 'unhealthy';

export interface HealthLogEntry {
  Start: string;
  End: string;
  ExitCode: number;
  Output: string;
}

/** Podman's HealthCheckResults, as inspect shows them. */
export interface HealthState {
  Status: HealthStatus;
  FailingStreak: number;
  Log: HealthLogEntry[] | null;
}

export interface HealthOptions {
  cmd?: string;
  interval?: string;
  retries?: string;
  startPeriod?: string;
  timeout?: string;
  onFailure?: string;
  /** --no-healthcheck. */
  disable?: boolean;
}

const SECOND = 1_000_000_000;
/** Podman keeps the last five results, each output cut to 500 bytes. */
const MAX_LOG = 5;
const MAX_OUTPUT = 500;
const ACTIONS = ['none', 'kill', 'restart', 'stop'];

function duration(flag: string, v: string): number {
  try {
    return parseDuration(v);
  } catch (e) {
    throw new ContainerError(`invalid healthcheck-${flag}: ${(e as Error).message}`);
  }
}

/** Podman's Schema2HealthConfig: its field order, zero values left out. */
function podmanOrder(h: HealthConfig): HealthConfig {
  return {
    ...(h.Test && { Test: h.Test }), ...(h.StartPeriod && { StartPeriod: h.StartPeriod }), ...(h.Interval && { Interval: h.Interval }),
    ...(h.Timeout && { Timeout: h.Timeout }), ...(h.Retries && { Retries: h.Retries }),
  };
}

/** --health-cmd as Podman 4.3 reads it: a JSON array (CMD), else a shell command (CMD-SHELL); "none" disables. */
function healthTest(cmd: string): string[] {
  let words: string[];
  let isArray = true;
  try {
    const v: unknown = JSON.parse(cmd);
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new Error('not an array');
    words = v as string[];
  } catch {
    const sp = cmd.indexOf(' ');
    words = sp < 0 ? [cmd] : [cmd.slice(0, sp), cmd.slice(sp + 1)];
    isArray = false;
  }
  if (words.length === 0) throw new ContainerError('must define a healthcheck command for all healthchecks');
  const none = (w: string | undefined): boolean => w?.toLowerCase() === 'none';
  if (words[0] === 'CMD' || none(words[0])) words = cmd.split(/\s+/).filter(Boolean);
  else if (words[0] !== 'CMD-SHELL') words = isArray && words.length > 1 ? ['CMD', ...words] : ['CMD-SHELL', words.join(' ')];
  return none(words[0]) ? ['NONE'] : words;
}

/**
 * The container's healthcheck: --health-cmd with the other --health-* flags (which, as in Podman
 * 4.3, count only with it), else the image's with Podman's defaults filled in; --no-healthcheck
 * records the test NONE.
 */
export function healthConfigFor(image: HealthConfig | undefined, o: HealthOptions): Pick<ContainerConfig, 'healthcheck' | 'healthOnFailure'> {
  const action = o.onFailure ?? 'none';
  if (!ACTIONS.includes(action)) throw new ContainerError(`invalid on-failure action "${action}" for health check: supported actions are ${ACTIONS.join(',')}`);
  const onFailure = action === 'none' ? {} : { healthOnFailure: action };
  if (o.disable) {
    if (o.cmd !== undefined) throw new ContainerError('cannot specify both --no-healthcheck and --health-cmd');
    return { healthcheck: { Test: ['NONE'] }, ...onFailure };
  }
  if (o.cmd === undefined) {
    if (!image?.Test?.length) return onFailure;
    return { healthcheck: podmanOrder({ ...image, Interval: image.Interval || 30 * SECOND, Timeout: image.Timeout || 30 * SECOND }), ...onFailure };
  }
  const interval = o.interval === undefined ? 30 * SECOND : o.interval === 'disable' ? 0 : duration('interval', o.interval);
  const retries = o.retries === undefined ? 3 : Number(o.retries);
  if (!/^-?\d+$/.test(o.retries ?? '3')) throw new ContainerError(`invalid argument "${o.retries}" for "--health-retries" flag: strconv.ParseUint: parsing "${o.retries}": invalid syntax`);
  if (retries < 1) throw new ContainerError('healthcheck-retries must be greater than 0');
  const timeout = duration('timeout', o.timeout ?? '30s');
  if (timeout < SECOND) throw new ContainerError('healthcheck-timeout must be at least 1 second');
  const startPeriod = duration('start-period', o.startPeriod ?? '0s');
  if (startPeriod < 0) throw new ContainerError('healthcheck-start-period must be 0 seconds or greater');
  return { healthcheck: podmanOrder({ Test: healthTest(o.cmd), StartPeriod: startPeriod, Interval: interval, Timeout: timeout, Retries: retries }), ...onFailure };
}

/** The command the check runs, or null for a container without one. */
function healthCommand(cfg: ContainerConfig): string[] | null {
  const test = cfg.healthcheck?.Test ?? [];
  let cmd: string[];
  switch (test[0]) {
    case undefined:
    case '':
    case 'NONE':
      return null;
    case 'CMD':
      cmd = test.slice(1);
      break;
    case 'CMD-SHELL':
      cmd = ['/bin/sh', '-c', test.slice(1).join(' ')];
      break;
    default:
      cmd = test;
  }
  return cmd.length > 0 && cmd[0] !== '' ? cmd : null;
}

export function hasHealthcheck(cfg: ContainerConfig): boolean {
  return healthCommand(cfg) !== null;
}

/** The health state a start leaves: "starting", keeping the earlier results, as Podman's. */
export function healthAtStart(cfg: ContainerConfig, s: ContainerState): Pick<ContainerState, 'health'> {
  if (!hasHealthcheck(cfg)) return {};
  return { health: { Status: 'starting', FailingStreak: s.health?.FailingStreak ?? 0, Log: s.health?.Log ?? null } };
}

/** The status `ps` shows after "Up …" and its health filter matches ("" without a healthcheck or a result). */
export function healthStatus(c: Container): HealthStatus {
  return hasHealthcheck(c.data.config) ? (c.data.state.health?.Status ?? '') : '';
}

/** Podman's rule: a success makes it healthy; failures outside the start period count, and enough of them make it unhealthy. */
function nextHealth(h: HealthState | undefined, entry: HealthLogEntry, retries: number, inStartPeriod: boolean): HealthState {
  const next: HealthState = { Status: h?.Status || 'healthy', FailingStreak: h?.FailingStreak ?? 0, Log: [...(h?.Log ?? []), entry].slice(-MAX_LOG) };
  if (entry.ExitCode === 0) return { ...next, Status: 'healthy', FailingStreak: 0 };
  if (!inStartPeriod) {
    next.FailingStreak++;
    if (next.FailingStreak >= retries) next.Status = 'unhealthy';
  }
  return next;
}

export interface HealthRun {
  /** `healthcheck run`'s exit status: 0 healthy, 1 unhealthy. */
  code: 0 | 1;
  state: HealthState;
}

/**
 * `healthcheck run`: the check once, as an exec of the container's user, its result kept in the
 * state (under the container's lock, as another check may run alongside), then the
 * --health-on-failure action if the container became, or stays, unhealthy. A check that took
 * longer than --health-timeout failed with exit code -1 and makes the command fail, as Podman
 * 4.3's: it is timed, not cut short.
 */
export async function runHealthcheck(store: Store, ref: string): Promise<HealthRun> {
  let c: Container;
  try {
    c = loadContainer(store, ref);
  } catch (e) {
    throw new ContainerError(`unable to look up ${ref} to perform a health check: ${(e as Error).message}`);
  }
  const { liveState, stopContainer, signalContainer, startDetached } = await import('./lifecycle.ts');
  const live = liveState(store, c);
  if (live.status !== 'running' && live.status !== 'stopping') throw new ContainerError(`container ${c.record.id} is not running`);
  const command = healthCommand(c.data.config);
  const hc = c.data.config.healthcheck;
  if (!command || !hc) throw new ContainerError(`container ${c.record.id} has no defined healthcheck`);
  const { execInContainer } = await import('./exec.ts');
  // Podman 4.3 records the event before the check runs, so it carries the status the check starts from.
  containerEvent(store, c, 'health_status', { health: c.data.state.health?.Status ?? '' });
  let output = '';
  const start = new Date();
  const { code } = await execInContainer(store, c.record.id, { command, output: (t) => (output += t), healthcheck: true });
  const end = new Date();
  const timeout = hc.Timeout ?? 0;
  const timedOut = timeout > 0 && (end.getTime() - start.getTime()) * 1e6 > timeout;
  const exitCode = timedOut ? -1 : code === 0 ? 0 : 1;
  const entry: HealthLogEntry = { Start: start.toISOString(), End: end.toISOString(), ExitCode: exitCode, Output: output.replace(/\n+$/, '').slice(0, MAX_OUTPUT) };
  const startedAt = Date.parse(c.data.state.startedAt ?? '');
  const inStartPeriod = (hc.StartPeriod ?? 0) > 0 && start.getTime() < startedAt + (hc.StartPeriod ?? 0) / 1e6;
  const state = await store.withLock(`container:${c.record.id}`, async () => {
    const now = reload(store, c);
    now.data.state.health = nextHealth(now.data.state.health, entry, hc.Retries ?? 0, inStartPeriod);
    saveContainer(store, now);
    return now.data.state.health;
  });
  if (exitCode !== 0 && state.Status === 'unhealthy') {
    const action = c.data.config.healthOnFailure;
    if (action === 'kill') await signalContainer(store, c.record.id, 'SIGKILL');
    else if (action === 'stop' || action === 'restart') {
      await stopContainer(store, c.record.id);
      if (action === 'restart') await startDetached(store, c.record.id);
    }
  }
  if (timedOut) throw new ContainerError(`healthcheck command exceeded timeout of ${goDuration(timeout)}`);
  return { code: exitCode === 0 ? 0 : 1, state };
}

/** Whether a running container's health is that of ps's --filter health=VALUE (none: it has no healthcheck). */
export function healthMatches(c: Container, s: ContainerState, value: string): boolean {
  if (value === 'none') return !hasHealthcheck(c.data.config);
  return isActive(s.status) && healthStatus(c) === value;
}
