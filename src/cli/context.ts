import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Driver, Store } from '../store/store.ts';
import { inBargeUserns, mountsEndWithProcess, privateRuntimeDir, usernsMode, resolveContainerUserns, type ContainerUserns } from '../sys/userns.ts';

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

/**
 * Not root, or root only inside the user namespace barge re-executed itself in for a user. Root of
 * an unprivileged container, in the namespace barge made to gain mount rights, is not rootless.
 */
export function isRootless(): boolean {
  return process.getuid?.() !== 0 || (inBargeUserns() && usernsMode() !== 'identity');
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

/**
 * The storage.conf in force: $CONTAINERS_STORAGE_CONF, else (rootless) the user's own, else the
 * system's. Only driver and mount_program are honoured: graphroot names Podman's store.
 */
function storageConf(): { file: string; text: string } | undefined {
  const user = isRootless() ? join(process.env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'containers', 'storage.conf') : undefined;
  const files = process.env.CONTAINERS_STORAGE_CONF ? [process.env.CONTAINERS_STORAGE_CONF] : [user, '/etc/containers/storage.conf'];
  for (const f of files) if (f && existsSync(f)) return { file: f, text: readFileSync(f, 'utf8') };
  return undefined;
}

function confValue(conf: { text: string } | undefined, key: string): string | undefined {
  return new RegExp(`^\\s*${key}\\s*=\\s*"([^"]*)"`, 'm').exec(conf?.text ?? '')?.[1] || undefined;
}

export interface DriverChoice {
  driver: Driver;
  /** Why, for `barge info`. */
  reason: string;
  /** Overlay through this FUSE program rather than the kernel. */
  mountProgram?: string;
}

/**
 * Whether the kernel mounts overlay here as barge would (in a user namespace: with userxattr): the
 * error if not. Tried once per runroot (it lives until reboot, as a kernel does) and remembered.
 */
async function kernelOverlayProblem(root: string, runroot: string): Promise<string | undefined> {
  const memo = join(runroot, 'overlay-kernel');
  try {
    const text = readFileSync(memo, 'utf8');
    return text === 'ok' ? undefined : text;
  } catch {
    // Not tried yet.
  }
  const { mkdir, mkdtemp, rm, writeFile } = await import('node:fs/promises');
  const { mountOverlay, unmount } = await import('../sys/mount.ts');
  await mkdir(root, { recursive: true, mode: 0o700 });
  await mkdir(runroot, { recursive: true, mode: 0o700 });
  const dir = await mkdtemp(join(root, '.overlay-probe-'));
  let problem: string | undefined;
  try {
    for (const d of ['l', 'u', 'w', 'm']) await mkdir(join(dir, d));
    await mountOverlay({ lowers: [join(dir, 'l')], upper: join(dir, 'u'), work: join(dir, 'w'), target: join(dir, 'm'), userxattr: true });
    await unmount(join(dir, 'm'));
  } catch (e) {
    problem = (e as Error).message.split('\n')[0]!;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  await writeFile(memo, problem ?? 'ok');
  return problem;
}

function fuseOverlayfs(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/bin', '/usr/local/bin'].filter((d) => d !== '');
  const bin = dirs.map((d) => join(d, 'fuse-overlayfs')).find((p) => existsSync(p));
  if (!bin) return undefined;
  try {
    accessSync('/dev/fuse', constants.R_OK | constants.W_OK);
    return bin;
  } catch {
    return undefined;
  }
}

/**
 * The storage driver and why: --storage-driver, $STORAGE_DRIVER, storage.conf, else overlay. Overlay
 * is the kernel's unless storage.conf names a mount_program; in a user namespace where the kernel
 * will not mount it, fuse-overlayfs takes over when it can.
 */
export async function chooseDriver(g: GlobalOptions, root: string, runroot: string): Promise<DriverChoice> {
  const conf = storageConf();
  const [name, why] =
    g.storageDriver !== undefined ? [g.storageDriver, '--storage-driver']
    : process.env.STORAGE_DRIVER ? [process.env.STORAGE_DRIVER, '$STORAGE_DRIVER']
    : confValue(conf, 'driver') ? [confValue(conf, 'driver')!, `driver in ${conf!.file}`]
    : ['overlay', 'default'];
  if (name !== 'overlay' && name !== 'vfs') throw new Error(`unsupported storage driver "${name}" (supported: overlay, vfs)`);
  if (name === 'vfs') return { driver: 'vfs', reason: `vfs: ${why}` };
  const program = confValue(conf, 'mount_program');
  if (program) return { driver: 'overlay', reason: `overlay (${why}) through ${program}: mount_program in ${conf!.file}`, mountProgram: program };
  if (!inBargeUserns()) return { driver: 'overlay', reason: `overlay (${why}): kernel overlay filesystem` };
  const problem = await kernelOverlayProblem(root, runroot);
  if (!problem) return { driver: 'overlay', reason: `overlay (${why}): kernel overlay filesystem with userxattr in the user namespace` };
  const fuse = fuseOverlayfs();
  if (fuse) return { driver: 'overlay', reason: `overlay (${why}) through ${fuse}: the kernel does not mount overlay in this user namespace (${problem})`, mountProgram: fuse };
  throw new Error(
    `the kernel does not mount overlay in this user namespace (${problem}) and fuse-overlayfs with a usable /dev/fuse is not available: ` +
      'install fuse-overlayfs or use --storage-driver vfs',
  );
}

/**
 * The user namespace the --userns family of options asks for (Buildah's --userns-uid-map… and
 * Podman's --uidmap/--gidmap alike); undefined when none of them was given.
 */
export function usernsFromOptions(o: Record<string, unknown>): ContainerUserns | undefined {
  const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
  const list = (...vs: unknown[]): string[] => vs.flatMap((v) => (Array.isArray(v) ? (v as string[]) : []));
  const req = {
    userns: str(o.userns),
    uidMap: list(o.usernsUidMap, o.uidmap),
    gidMap: list(o.usernsGidMap, o.gidmap),
    uidMapUser: str(o.usernsUidMapUser),
    gidMapGroup: str(o.usernsGidMapGroup),
  };
  if (req.userns === undefined && !req.uidMap.length && !req.gidMap.length && !req.uidMapUser && !req.gidMapGroup) return undefined;
  return resolveContainerUserns(req);
}

let opened: Store | undefined;
let openedReason = '';

/** Why the open store uses its driver (after openStore). */
export function driverReason(): string {
  return openedReason;
}

export async function openStore(g: GlobalOptions): Promise<Store> {
  if (opened) return opened;
  const { Store } = await import('../store/store.ts');
  const d = g.root !== undefined && g.runroot !== undefined ? { root: g.root, runroot: g.runroot } : defaultPaths();
  const root = g.root ?? d.root;
  const runroot = g.runroot ?? d.runroot;
  const choice = await chooseDriver(g, root, runroot);
  // In a user namespace the kernel keeps overlay's metadata in user.* xattrs (trusted.* needs real root).
  const userxattr = isRootless() || inBargeUserns();
  opened = await Store.open({
    root, runroot, driver: choice.driver, ...(userxattr && { userxattr }), ...(choice.mountProgram && { overlayMountProgram: choice.mountProgram }),
  });
  openedReason = choice.reason;
  if (choice.mountProgram && mountsEndWithProcess()) {
    // A FUSE daemon lives in the namespace it serves, so it would keep that namespace alive for good:
    // the barge that owns the namespace unmounts them all on its way out.
    const { fuseOverlayMounts } = await import('../sys/mount.ts');
    const { spawnSync } = await import('node:child_process');
    process.on('exit', () => {
      for (const m of fuseOverlayMounts()) spawnSync('umount', [m], { stdio: 'ignore' });
    });
  }
  return opened;
}

export function closeStore(): void {
  opened?.close();
  opened = undefined;
}

export function print(s: string): void {
  process.stdout.write(s.endsWith('\n') ? s : s + '\n');
}

/** A boolean flag that may be given a value (--sig-proxy, --sig-proxy=false); true when absent. */
export function boolOpt(v: unknown, what: string): boolean {
  if (v === undefined || v === true || v === 'true') return true;
  if (v === false || v === 'false') return false;
  throw new ExitError(`invalid value "${String(v)}" for ${what}: use true or false`, 125);
}

export function warn(s: string): void {
  process.stderr.write(`WARN[0000] ${s}\n`);
}

/** Podman's human sizes: 1.23 MB, powers of 1000, 3 significant digits. */
export function humanSize(bytes: number): string {
  return goUnitsSize(bytes, 3, { sep: ' ' });
}

const DECIMAL_UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'];
const BINARY_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB', 'ZiB', 'YiB'];

/**
 * go-units' sizes ("%.Ng%s"): HumanSizeWithPrecision in powers of 1000 ("2.245MB"), or BytesSize
 * in powers of 1024 ("1.832MiB") with `binary`.
 */
export function goUnitsSize(bytes: number, precision: number, o: { binary?: boolean; sep?: string } = {}): string {
  const base = o.binary ? 1024 : 1000;
  const units = o.binary ? BINARY_UNITS : DECIMAL_UNITS;
  let v = bytes;
  let i = 0;
  while (v >= base && i < units.length - 1) {
    v /= base;
    i++;
  }
  return `${Number(v.toPrecision(precision))}${o.sep ?? ''}${units[i]}`;
}

/**
 * A duration as Podman and Buildah print it (go-units' HumanDuration): "Less than a second",
 * "About a minute", "3 hours", "2 weeks", "4 months"…
 */
export function humanDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 1) return 'Less than a second';
  if (s === 1) return '1 second';
  if (s < 60) return `${s} seconds`;
  const m = Math.floor(s / 60);
  if (m === 1) return 'About a minute';
  if (m < 60) return `${m} minutes`;
  const h = Math.round(s / 3600);
  if (h === 1) return 'About an hour';
  if (h < 48) return `${h} hours`;
  if (h < 24 * 7 * 2) return `${Math.floor(h / 24)} days`;
  if (h < 24 * 30 * 2) return `${Math.floor(h / 24 / 7)} weeks`;
  if (h < 24 * 365 * 2) return `${Math.floor(h / 24 / 30)} months`;
  return `${Math.floor(h / 24 / 365)} years`;
}

/** "About a minute ago" for a timestamp; "Unknown" without one. */
export function humanAgo(iso: string | null | undefined): string {
  const t = iso ? Date.parse(iso) : NaN;
  return Number.isNaN(t) ? 'Unknown' : `${humanDuration(Math.max(0, Date.now() - t))} ago`;
}

/** --runtime, then $BARGE_RUNTIME, then containers.conf's [engine] runtime; undefined lets barge pick. */
export async function selectedRuntime(g: GlobalOptions): Promise<string | undefined> {
  if (g.runtime) return g.runtime;
  if (process.env.BARGE_RUNTIME) return process.env.BARGE_RUNTIME;
  const { loadContainersConf } = await import('./containers-conf.ts');
  return loadContainersConf().runtime;
}
