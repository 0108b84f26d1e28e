import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Driver, Store } from '../store/store.ts';
import { inBargeUserns, privateRuntimeDir } from '../sys/userns.ts';

export interface GlobalOptions {
  root?: string;
  runroot?: string;
  storageDriver?: string;
  logLevel?: string;
  runtime?: string;
}

/** An error whose exit status is not the default 125. */
export class ExitError extends Error {
  constructor(message: string, readonly exitCode: number) {
    super(message);
  }
}

/** Not root, or root only inside the user namespace barge re-executed itself in. */
export function isRootless(): boolean {
  return process.getuid?.() !== 0 || inBargeUserns();
}

/**
 * barge keeps its own store: storage.conf's graphroot names Podman's store, whose layout is
 * not ours, so only its driver setting is honoured.
 */
export function defaultPaths(): { root: string; runroot: string } {
  if (!isRootless()) return { root: '/var/lib/barge', runroot: '/run/barge' };
  const data = process.env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  const run = process.env.XDG_RUNTIME_DIR || privateRuntimeDir();
  return { root: join(data, 'barge'), runroot: join(run, 'barge') };
}

function configuredDriver(): string | undefined {
  const files = [process.env.CONTAINERS_STORAGE_CONF, '/etc/containers/storage.conf'].filter((f): f is string => !!f);
  for (const f of files) {
    if (!existsSync(f)) continue;
    const m = /^\s*driver\s*=\s*"([^"]*)"/m.exec(readFileSync(f, 'utf8'));
    if (m?.[1]) return m[1];
  }
  return undefined;
}

let opened: Store | undefined;

export async function openStore(g: GlobalOptions): Promise<Store> {
  if (opened) return opened;
  const { Store } = await import('../store/store.ts');
  const d = g.root !== undefined && g.runroot !== undefined ? { root: g.root, runroot: g.runroot } : defaultPaths();
  const driver = g.storageDriver ?? process.env.STORAGE_DRIVER ?? configuredDriver() ?? 'overlay';
  if (driver !== 'overlay' && driver !== 'vfs') throw new Error(`unsupported storage driver "${driver}" (supported: overlay, vfs)`);
  // In a user namespace the kernel keeps overlay's metadata in user.* xattrs (trusted.* needs real root).
  const rootless = isRootless();
  opened = await Store.open({ root: g.root ?? d.root, runroot: g.runroot ?? d.runroot, driver: driver as Driver, ...(rootless && { userxattr: true }) });
  return opened;
}

export function closeStore(): void {
  opened?.close();
  opened = undefined;
}

export function print(s: string): void {
  process.stdout.write(s.endsWith('\n') ? s : s + '\n');
}

export function warn(s: string): void {
  process.stderr.write(`WARN[0000] ${s}\n`);
}

/** Podman's human sizes: 1.23 MB, powers of 1000, 3 significant digits. */
export function humanSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let v = bytes;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${Number(v.toPrecision(3))} ${units[i]}`;
}

/** Podman's "2 hours ago" style. */
export function humanAgo(iso: string | null | undefined): string {
  if (!iso) return 'Unknown';
  const secs = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (secs < 1) return 'Less than a second ago';
  const steps: [number, string][] = [[60, 'second'], [60, 'minute'], [24, 'hour'], [7, 'day'], [4.345, 'week'], [12, 'month'], [Infinity, 'year']];
  let v = secs;
  for (const [div, unit] of steps) {
    if (v < div) {
      const n = Math.floor(v);
      if (unit === 'second' && n < 60) return n === 1 ? 'About a second ago' : `${n} seconds ago`;
      return n === 1 ? `About a${unit === 'hour' ? 'n' : ''} ${unit} ago` : `${n} ${unit}s ago`;
    }
    v /= div;
  }
  return 'Unknown';
}

/** --runtime, then $BARGE_RUNTIME, then containers.conf's [engine] runtime; undefined lets barge pick. */
export async function selectedRuntime(g: GlobalOptions): Promise<string | undefined> {
  if (g.runtime) return g.runtime;
  if (process.env.BARGE_RUNTIME) return process.env.BARGE_RUNTIME;
  const { loadContainersConf } = await import('./containers-conf.ts');
  return loadContainersConf().runtime;
}
