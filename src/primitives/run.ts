import { lstat, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import { join, posix, resolve as resolvePath } from 'node:path';
import type { Store } from '../store/store.ts';
import { resolveInRoot } from '../store/secure-path.ts';
import { buildSpec, DEFAULT_PATH, type MountSpec, type SpecResourceLimits } from '../runtime/spec.ts';
import type { DeviceMapping } from '../containers/record.ts';
import { addedDevices, extraHostLines } from '../containers/host-access.ts';
import { lastOfEachType, type Ulimit } from '../containers/shared-run-flags.ts';
import { findRuntime, runContainer } from '../runtime/oci-runtime.ts';
import { resolveUser } from '../runtime/user.ts';
import type { ContainerUserns } from '../sys/userns.ts';
import { randomHex } from '../sys/lazy-builtins.ts';
import { saveBuilder, type Builder } from './builder.ts';

/** A namespace of a run: a new one, the host's, or the one at a path (ns:PATH). */
export type NamespaceMode = 'private' | 'host' | { path: string };

/**
 * Run settings that Buildah keeps with a working container (`from`) and applies to each of its
 * runs, or applies to every RUN of a build. Parsed and checked before they are kept.
 */
export interface RunSettings {
  capAdd?: string[];
  capDrop?: string[];
  noNewPrivileges?: boolean;
  seccompUnconfined?: boolean;
  ulimits?: Ulimit[];
  resources?: SpecResourceLimits;
  /** Bytes of /dev/shm. */
  shmSize?: number;
  devices?: DeviceMapping[];
  /** --add-host HOST:IP values. */
  addHost?: string[];
  /** --no-hosts: the image's /etc/hosts, not one of barge's. */
  noHosts?: boolean;
  /** --dns servers; ['none'] leaves the image's /etc/resolv.conf alone. */
  dns?: string[];
  dnsOptions?: string[];
  dnsSearch?: string[];
  volumes?: string[];
  network?: 'host' | 'none' | 'private';
  /** --network ns:PATH: the network namespace joined. */
  networkPath?: string;
  pid?: NamespaceMode;
  ipc?: NamespaceMode;
  uts?: NamespaceMode;
  cgroupns?: 'private' | 'host';
  cgroupParent?: string;
  /** --http-proxy (default true): the host's *_proxy variables reach the command. */
  httpProxy?: boolean;
  /** Global options for the runtime (--runtime-flag, "--" added as Buildah does). */
  runtimeFlags?: string[];
}

export interface RunOptions extends RunSettings {
  user?: string;
  workingDir?: string;
  env?: string[];
  mounts?: string[];
  terminal?: boolean;
  hostname?: string;
  runtime?: string;
  /** Overrides the working container's isolation for this run. */
  isolation?: 'oci' | 'chroot';
  /** Overrides the working container's own user namespace setting for this run. */
  userns?: ContainerUserns;
  /** --contextdir: where relative --mount sources are. */
  contextDir?: string;
  /** --no-pivot: the runtime enters the rootfs without pivot_root. */
  noPivot?: boolean;
  /** false: the command reads /dev/null, not barge's stdin (a build's RUN without --stdin). */
  stdin?: boolean;
  /** A descriptor that gets the command's stdout and stderr instead of barge's (build --logfile). */
  output?: number;
}

/** The variables that --http-proxy passes from barge's environment, as Buildah's list. */
export const PROXY_VARS = ['http_proxy', 'https_proxy', 'ftp_proxy', 'no_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'FTP_PROXY', 'NO_PROXY'];

/**
 * A run's settings: the working container's, with the run's own over them as `buildah run` does:
 * lists (capabilities, volumes, hosts, devices, limits) add to the kept ones, single values replace them.
 */
export function mergeRunSettings(kept: RunSettings, run: RunOptions): RunOptions {
  const out: RunOptions = { ...kept, ...stripUndefined(run) };
  const lists = ['capAdd', 'capDrop', 'ulimits', 'devices', 'addHost', 'volumes', 'dns', 'dnsOptions', 'dnsSearch', 'runtimeFlags'] as const;
  for (const k of lists) {
    const both = [...(kept[k] ?? []), ...(run[k] ?? [])];
    if (both.length) (out as Record<string, unknown>)[k] = both;
  }
  if (kept.resources || run.resources) out.resources = { ...kept.resources, ...run.resources };
  // A network named for this run replaces a kept namespace path too.
  if (run.network !== undefined && run.networkPath === undefined) delete out.networkPath;
  return out;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The spec's view of a namespace mode: its private/host choice, and the path joined if any. */
function nsMode(m: NamespaceMode | undefined): { mode?: 'private' | 'host'; path?: string } {
  if (m === undefined) return {};
  return typeof m === 'string' ? { mode: m } : { mode: 'private', path: m.path };
}

/** `buildah run`: a command in the working container; its changes stay in the container. */
export async function runInBuilder(store: Store, b: Builder, argv: string[], given: RunOptions = {}): Promise<number> {
  if (!argv.length) throw new Error('command must be specified');
  const o = mergeRunSettings(b.state.run ?? {}, given);
  return store.withContainerLock(b.container, async () => {
    const rootfs = await store.mountContainer(b.container);
    const cfg = b.state.config.image.config ?? {};
    const ns = o.userns ?? b.state.userns ?? {};
    // keep-id runs the command as the user's own ids unless --user says otherwise (as Podman).
    const user = await resolveUser(rootfs, o.user ?? (ns.user ? `${ns.user.uid}:${ns.user.gid}` : (cfg.User ?? '')));
    const cwd = o.workingDir ?? (cfg.WorkingDir || '/');
    const cwdHost = await resolveInRoot(rootfs, cwd);
    await mkdir(cwdHost, { recursive: true });

    const env = mergeEnv(cfg.Env ?? [], o.env ?? []);
    if (!env.some((e) => e.startsWith('PATH='))) env.unshift(DEFAULT_PATH);
    if (!env.some((e) => e.startsWith('HOME='))) env.push(`HOME=${user.home || '/'}`);
    if (o.httpProxy !== false) {
      for (const k of PROXY_VARS) {
        const v = process.env[k];
        if (v !== undefined && !env.some((e) => e.startsWith(`${k}=`))) env.push(`${k}=${v}`);
      }
    }

    const runDir = join(store.containerRunDir(b.container.id), randomHex(6));
    await mkdir(runDir, { recursive: true });
    try {
      const uts = nsMode(o.uts);
      if (o.hostname !== undefined && (uts.mode === 'host' || uts.path !== undefined)) throw new Error('--hostname needs the run\'s own UTS namespace: it cannot be set with --uts host or ns:PATH');
      // A UTS namespace not of the run's own (the host's, or one joined) keeps its name: setting
      // one there would rename the host or another container.
      const hostname = uts.mode === 'host' || uts.path !== undefined ? undefined : (o.hostname ?? (cfg.Hostname || b.container.id.slice(0, 12)));
      const network = o.networkPath !== undefined ? 'private' : (o.network ?? 'host');
      const etc = await etcFiles(runDir, { hostname: hostname ?? osHostname(), network, noHosts: !!o.noHosts, addHost: o.addHost ?? [], dns: o.dns ?? [], dnsOptions: o.dnsOptions ?? [], dnsSearch: o.dnsSearch ?? [] });
      const mounts: MountSpec[] = [...etc, ...parseVolumes(o.volumes ?? []), ...parseMounts(o.mounts ?? [], o.contextDir)];
      const targets = [...mounts.map((m) => m.destination), '/proc', '/dev', '/sys', cwd];
      const created = await missingPaths(rootfs, targets);
      if (created.length) {
        b.state.runMountTargets = [...new Set([...b.state.runMountTargets, ...created])];
        saveBuilder(store, b);
      }
      if ((o.isolation ?? b.state.isolation) === 'chroot') {
        if (ns.uidMappings || ns.path !== undefined) throw new Error('--userns options need --isolation oci: chroot isolation runs in barge\'s own user namespace');
        const unhonoured = chrootUnhonoured(o);
        if (unhonoured) throw new Error(`${unhonoured} is not applied by barge's chroot isolation: use --isolation oci`);
        const { runChroot } = await import('../runtime/chroot.ts');
        return await runChroot({
          rootfs, args: argv, env, cwd, uid: user.uid, gid: user.gid, mounts, network,
          capAdd: o.capAdd ?? [], capDrop: o.capDrop ?? [], ...(o.stdin === false && { stdin: false }), ...(o.output !== undefined && { output: o.output }),
        });
      }
      const id = `barge-${b.container.id.slice(0, 12)}-${randomHex(4)}`;
      const pid = nsMode(o.pid);
      const ipc = nsMode(o.ipc);
      const namespacePaths = stripUndefined({ pid: pid.path, ipc: ipc.path, uts: uts.path, network: o.networkPath });
      const spec = buildSpec({
        // Buildah lists the primary group among the groups, root's too.
        rootfs, args: argv, env, cwd, uid: user.uid, gid: user.gid, additionalGids: [user.gid, ...user.additionalGids],
        // Without a terminal to take over, -t means none, as in Buildah (CI jobs pass -t out of habit).
        terminal: !!o.terminal && (await import('node:tty')).isatty(0), network, capAdd: o.capAdd ?? [], capDrop: o.capDrop ?? [], mounts,
        ...(hostname !== undefined && { hostname }),
        ...(pid.mode && { pidNamespace: pid.mode }),
        ...(ipc.mode && { ipcNamespace: ipc.mode }),
        ...(uts.mode && { utsNamespace: uts.mode }),
        ...(o.cgroupns && { cgroupNamespace: o.cgroupns }),
        ...(Object.keys(namespacePaths).length > 0 && { namespacePaths }),
        ...(o.cgroupParent !== undefined && { cgroupsPath: posix.join(o.cgroupParent, id) }),
        ...(o.ulimits && { rlimits: lastOfEachType(o.ulimits) }),
        ...(o.resources && { resources: o.resources }),
        ...(o.noNewPrivileges && { noNewPrivileges: true }),
        ...(o.seccompUnconfined && { seccomp: false }),
        ...(o.shmSize !== undefined && { shmSize: o.shmSize }),
        ...(o.devices?.length && { devices: addedDevices(o.devices) }),
        ...(ns.uidMappings && { uidMappings: ns.uidMappings, gidMappings: ns.gidMappings ?? ns.uidMappings }),
        ...(ns.path !== undefined && { userNamespacePath: ns.path }),
      });
      return await runContainer({
        runtime: findRuntime(o.runtime), bundleDir: runDir, spec, id,
        stateRoot: join(store.runroot, 'runtime'), stdio: 'inherit', ...(o.stdin === false && { stdin: false }), ...(o.output !== undefined && { output: o.output }),
        ...(o.runtimeFlags?.length && { globalFlags: o.runtimeFlags.map((f) => `--${f.replace(/^-+/, '')}`) }),
        ...(o.noPivot && { runFlags: ['--no-pivot'] }),
      });
    } finally {
      await rm(runDir, { recursive: true, force: true });
    }
  });
}

/** The first run setting that chroot isolation cannot apply, by its flag; undefined when none. */
function chrootUnhonoured(o: RunOptions): string | undefined {
  const flags: [unknown, string][] = [
    [o.ulimits?.length, '--ulimit'], [o.resources, '--memory/--cpu-* limits'], [o.devices?.length, '--device'], [o.shmSize, '--shm-size'],
    [o.noNewPrivileges, '--security-opt no-new-privileges'], [o.seccompUnconfined, '--security-opt seccomp=unconfined'],
    [o.pid, '--pid'], [o.ipc, '--ipc'], [o.uts, '--uts'], [o.cgroupns, '--cgroupns'], [o.cgroupParent, '--cgroup-parent'],
    [o.networkPath, '--network ns:PATH'], [o.runtimeFlags?.length, '--runtime-flag'], [o.noPivot, '--no-pivot'],
  ];
  return flags.find(([v]) => v !== undefined && v !== 0 && v !== false)?.[1];
}

/** Image env first, then the caller's: later KEY= entries replace earlier ones. */
export function mergeEnv(base: string[], extra: string[]): string[] {
  const m = new Map<string, string>();
  for (const e of [...base, ...extra]) {
    const i = e.indexOf('=');
    if (i < 0) {
      const v = process.env[e];
      if (v !== undefined) m.set(e, `${e}=${v}`);
    } else m.set(e.slice(0, i), e);
  }
  return [...m.values()];
}

/** KEY=VALUE lines of --env-file (or --label-file) files, in order; blank lines and # comments skipped. */
export async function readEnvFiles(files: readonly string[], kind = 'env'): Promise<string[]> {
  const out: string[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw new Error(`parsing ${kind} file "${file}": open ${file}: ${err.code === 'ENOENT' ? 'no such file or directory' : err.message}`);
    }
    for (const raw of text.split('\n')) {
      const line = raw.replace(/\r$/, '').trimStart();
      if (line.trim() === '' || line.startsWith('#')) continue;
      out.push(line);
    }
  }
  return out;
}

interface EtcSettings {
  hostname: string;
  network: string;
  noHosts: boolean;
  addHost: readonly string[];
  dns: readonly string[];
  dnsOptions: readonly string[];
  dnsSearch: readonly string[];
}

/** Per-run /etc/hosts, /etc/resolv.conf and /etc/hostname: mounted, never committed. */
async function etcFiles(runDir: string, s: EtcSettings): Promise<MountSpec[]> {
  const hosts = `${extraHostLines(s.addHost)}127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t${s.hostname}\n`;
  const files: [string, string][] = [];
  if (!s.noHosts) files.push(['hosts', hosts]);
  // --dns none: no resolv.conf of barge's, the image's stays (as Buildah).
  if (!s.dns.includes('none')) files.push(['resolv.conf', resolvConf(s.network === 'host' ? await readFile('/etc/resolv.conf', 'utf8').catch(() => '') : '', s)]);
  // The name the run's own UTS namespace has, whatever its network (as Buildah's /etc/hostname).
  files.push(['hostname', `${s.hostname}\n`]);
  const out: MountSpec[] = [];
  for (const [name, content] of files) {
    await writeFile(join(runDir, name), content);
    out.push({ destination: `/etc/${name}`, type: 'bind', source: join(runDir, name), options: ['rbind', 'rprivate'] });
  }
  return out;
}

/**
 * The run's resolv.conf: the host's (for the host's network), with its search domains, name servers
 * and options each replaced by --dns-search, --dns and --dns-option where given, in Buildah's order.
 */
export function resolvConf(base: string, s: Pick<EtcSettings, 'dns' | 'dnsOptions' | 'dnsSearch'>): string {
  if (!s.dns.length && !s.dnsOptions.length && !s.dnsSearch.length) return base;
  const lines = base.split('\n').map((l) => l.trim());
  const field = (key: string): string[] => lines.filter((l) => new RegExp(`^${key}\\s`).test(l)).flatMap((l) => l.split(/\s+/).slice(1));
  const search = s.dnsSearch.length ? s.dnsSearch.filter((d) => d !== '.') : field('search');
  const servers = s.dns.length ? s.dns : field('nameserver');
  const options = s.dnsOptions.length ? s.dnsOptions : field('options');
  return [
    ...(search.length ? [`search ${search.join(' ')}`] : []),
    ...servers.map((n) => `nameserver ${n}`),
    ...(options.length ? [`options ${options.join(' ')}`] : []),
  ].map((l) => `${l}\n`).join('');
}

/** Mount propagation modes and the bind options passed to the runtime as given. */
const BIND_FLAGS = ['private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave', 'unbindable', 'runbindable', 'nosuid', 'nodev', 'noexec', 'suid', 'dev', 'exec'];

/**
 * Options Podman has and barge does not implement. They change where writes land or who owns the
 * files, so ignoring one would silently do something else than asked (:O's writes would reach the
 * host directory): refused by name instead.
 */
const UNIMPLEMENTED: Record<string, string> = {
  O: 'an overlay mount of the source',
  U: 'chowning the source to the container user',
  idmap: 'an idmapped mount',
  chown: 'chowning the source to the container user',
};

function unimplemented(option: string, spec: string): Error {
  return new Error(`the mount option "${option}" (${UNIMPLEMENTED[option]}) in "${spec}" is not supported by barge: invalid mount option`);
}

/** -v HOST-DIR:CONTAINER-DIR[:OPTIONS]; an option barge does not know or implement is an error. */
export function parseVolumes(specs: string[]): MountSpec[] {
  return specs.map((s) => {
    const [src, dst, opts] = s.split(':');
    if (!src || !dst) throw new Error(`invalid volume "${s}": expected HOST-DIR:CONTAINER-DIR[:OPTIONS]`);
    if (!dst.startsWith('/')) throw new Error(`invalid volume "${s}": container path must be absolute`);
    return { destination: dst, type: 'bind', source: resolvePath(src), options: volumeOptions(opts ?? '', s) };
  });
}

/** The bind options of -v's OPTIONS field ("ro,rslave"): rbind or bind first, then the rest. */
export function volumeOptions(opts: string, spec: string): string[] {
  const options = ['rbind'];
  for (const o of opts.split(',').filter(Boolean)) {
    if (o in UNIMPLEMENTED) throw unimplemented(o, spec);
    // SELinux relabelling: nothing to do on a host without SELinux, as with Podman there.
    if (o === 'z' || o === 'Z' || o === 'rw' || o === 'rbind') continue;
    if (o === 'ro') options.push('ro');
    else if (o === 'bind') options[0] = 'bind';
    else if (BIND_FLAGS.includes(o)) options.push(o);
    else throw new Error(`invalid option type "${o}" in volume "${spec}"`);
  }
  return options;
}

/** Splits a --mount value ("type=bind,src=x,ro") into its KEY=VALUE pairs and bare flags. */
export function parseMountOptions(spec: string): { kv: Map<string, string>; flags: Set<string> } {
  const kv = new Map<string, string>();
  const flags = new Set<string>();
  for (const part of spec.split(',')) {
    const i = part.indexOf('=');
    if (i < 0) flags.add(part);
    else kv.set(part.slice(0, i), part.slice(i + 1));
  }
  return { kv, flags };
}

/** The --mount keys and flags barge understands, by mount type (others are refused, as by Podman). */
const MOUNT_KEYS = {
  bind: { kv: ['type', 'source', 'src', 'destination', 'dst', 'target', 'ro', 'readonly', 'rw', 'bind-propagation', 'relabel', 'consistency'], flags: ['ro', 'readonly', 'rw', 'bind-nonrecursive', 'z', 'Z'] },
  tmpfs: { kv: ['type', 'destination', 'dst', 'target', 'ro', 'readonly', 'rw', 'tmpfs-size', 'tmpfs-mode'], flags: ['ro', 'readonly', 'rw', 'noexec', 'exec', 'nosuid', 'suid', 'nodev', 'dev', 'tmpcopyup', 'notmpcopyup'] },
  volume: { kv: ['type', 'source', 'src', 'destination', 'dst', 'target', 'ro', 'readonly', 'rw'], flags: ['ro', 'readonly', 'rw'] },
} satisfies Record<string, { kv: string[]; flags: string[] }>;

export type MountType = keyof typeof MOUNT_KEYS;

/**
 * One --mount value (the `type` one of `types`), its keys and flags checked against that type's:
 * anything else is an error, an option barge does not implement named as such.
 */
export function checkedMount(s: string, types: readonly MountType[]): { type: MountType; kv: Map<string, string>; flags: Set<string>; dst: string; ro: boolean } {
  const { kv, flags } = parseMountOptions(s);
  const type = (kv.get('type') ?? 'bind') as MountType;
  if (!types.includes(type)) throw new Error(`invalid mount "${s}": type "${type}" is not supported (${types.join(', ')})`);
  for (const k of [...kv.keys(), ...flags]) {
    if (k in UNIMPLEMENTED) throw unimplemented(k, s);
  }
  const known = MOUNT_KEYS[type];
  for (const k of kv.keys()) if (!known.kv.includes(k)) throw new Error(`${k}: invalid mount option`);
  for (const f of flags) if (!known.flags.includes(f)) throw new Error(`${f}: invalid mount option`);
  const dst = kv.get('destination') ?? kv.get('dst') ?? kv.get('target');
  if (!dst) throw new Error(`invalid mount "${s}": destination is required`);
  const ro = flags.has('ro') || flags.has('readonly') || kv.get('ro') === 'true' || kv.get('readonly') === 'true';
  return { type, kv, flags, dst, ro };
}

/** --mount type=bind,src=…,dst=…[,ro][,bind-propagation=P][,bind-nonrecursive] and type=tmpfs,dst=…[,tmpfs-size=S][,tmpfs-mode=M] */
export function parseMounts(specs: string[], baseDir = '.'): MountSpec[] {
  return specs.map((s) => {
    const { type, kv, flags, dst, ro } = checkedMount(s, ['bind', 'tmpfs']);
    if (type === 'tmpfs') {
      const options = tmpfsOptions([
        ...(ro ? ['ro'] : []), ...[...flags].filter((f) => !['ro', 'readonly', 'rw'].includes(f)),
        ...(kv.has('tmpfs-size') ? [`size=${kv.get('tmpfs-size')}`] : []), ...(kv.has('tmpfs-mode') ? [`mode=${kv.get('tmpfs-mode')}`] : []),
      ], s);
      return { destination: dst, type: 'tmpfs', source: 'tmpfs', options };
    }
    const src = kv.get('source') ?? kv.get('src');
    if (!src) throw new Error(`invalid mount "${s}": source is required for bind mounts`);
    const propagation = kv.get('bind-propagation');
    if (propagation !== undefined && !BIND_FLAGS.slice(0, 8).includes(propagation)) throw new Error(`invalid bind-propagation "${propagation}" in "${s}"`);
    return {
      destination: dst, type: 'bind', source: resolvePath(baseDir, src),
      options: [flags.has('bind-nonrecursive') ? 'bind' : 'rbind', ...(ro ? ['ro'] : []), ...(propagation ? [propagation] : [])],
    };
  });
}

/** Options a tmpfs mount takes: each one replaces the default or earlier value it contradicts. */
const TMPFS_OPPOSITES: Record<string, string> = { ro: 'rw', rw: 'ro', noexec: 'exec', exec: 'noexec', nosuid: 'suid', suid: 'nosuid', nodev: 'dev', dev: 'nodev', tmpcopyup: 'notmpcopyup', notmpcopyup: 'tmpcopyup' };
const TMPFS_KEYS = ['size', 'mode', 'uid', 'gid', 'nr_inodes', 'nr_blocks'];
const TMPFS_OTHERS = ['atime', 'noatime', 'relatime', 'norelatime', 'strictatime', 'nostrictatime', 'diratime', 'nodiratime', 'sync', 'async', 'dirsync', ...BIND_FLAGS.slice(0, 8)];

/**
 * Podman's tmpfs options: rw,nosuid,nodev (exec allowed) with the user's options merged on top, so
 * `--tmpfs /x:size=1m` keeps the defaults. An unknown option is an error, not passed to the kernel.
 */
export function tmpfsOptions(user: readonly string[], spec: string): string[] {
  const out = ['rw', 'nosuid', 'nodev'];
  for (const o of user) {
    if (o === '') continue;
    if (o in UNIMPLEMENTED) throw unimplemented(o, spec);
    const eq = o.indexOf('=');
    const key = eq < 0 ? o : o.slice(0, eq);
    let at: number;
    if (o in TMPFS_OPPOSITES) at = out.findIndex((x) => x === o || x === TMPFS_OPPOSITES[o]);
    else if (eq > 0 && TMPFS_KEYS.includes(key)) at = out.findIndex((x) => x.startsWith(`${key}=`));
    else if (eq < 0 && TMPFS_OTHERS.includes(o)) at = out.indexOf(o);
    else throw new Error(`unknown mount option "${o}": invalid mount option`);
    if (at < 0) out.push(o);
    else out[at] = o;
  }
  // Not copying up is the runtimes' default; they know only the positive spelling.
  return out.filter((x) => x !== 'notmpcopyup');
}

/**
 * Every path the runtime will have to create for these mount targets: the target itself and any
 * missing parents (a volume on /a/b/c in an image without /a makes /a and /a/b too).
 */
async function missingPaths(rootfs: string, paths: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) {
    let cur = '';
    for (const part of posix.normalize(`/${p}`).split('/').filter((c) => c !== '')) {
      cur = `${cur}/${part}`;
      const host = await resolveInRoot(rootfs, cur, { followFinal: false });
      if (!(await lstat(host).catch(() => null)) && !out.includes(cur)) out.push(cur);
    }
  }
  return out;
}
