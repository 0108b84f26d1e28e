// Podman-style container commands: run IMAGE, create, start, stop, kill, restart, wait, logs, ps,
// container inspect/cleanup, and the removal of such containers for `rm`.

import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { openStore, print, ExitError, boolOpt, goUnitsSize, humanDuration, selectedRuntime, usernsFromOptions, type GlobalOptions } from '../context.ts';
import type { ContainerRecord, Store } from '../../store/store.ts';
import { StoreError } from '../../store/store.ts';
import {
  cleanupContainer, ContainerError, ContainerStartError, createContainer, DEFAULT_SHM_SIZE, liveState, markStoppedByUser, pauseContainer, processArgs, removeContainer, signalContainer, signalNumber,
  startAttached, startDetached, stopContainer, waitExited, type CreateOptions,
} from '../../containers/lifecycle.ts';
import { checkpointPaths, CONTAINER_NAME, containerPaths, isActive, loadContainer, type Container } from '../../containers/record.ts';
import { inspectPorts, portLines, portRanges, psPorts } from '../../containers/slirp.ts';
import { inspectBridge, listNetworks } from '../../containers/bridge.ts';
import { ownNetnsPath } from '../../containers/netns.ts';
import type { ContainerSize } from '../../containers/files.ts';
import type { ContainerState } from '../../containers/record.ts';
import { parseSince, readLog, writeEntries, type LogEntry } from '../../containers/logs.ts';
import { findImage, getImage, resolveImage } from '../../image/local-images.ts';
import { platformFlags } from '../platform.ts';
import { checkPreservedFds, parseExpose } from '../../containers/podman-run-options.ts';
import { containerCapabilities, normalizeCapability, runtimeHasCgroups } from '../../runtime/spec.ts';
import { volumeInspectMounts, volumesOf } from '../../containers/volumes.ts';
import { inBargeUserns } from '../../sys/userns.ts';
import { healthMatches, healthStatus } from '../../containers/health.ts';
import { inspectSecrets } from '../../containers/secrets.ts';
import { CONTAINER_DATA, PS_REPORTER } from '../gotypes.ts';
import { containerEvent } from '../../containers/events.ts';

type Opts = Record<string, unknown>;
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const list = (v: unknown): string[] => (Array.isArray(v) ? (v as string[]) : []);

function num(v: unknown, what: string): number | undefined {
  const s = str(v);
  if (s === undefined) return undefined;
  const n = Number(s);
  if (!Number.isFinite(n)) throw new ExitError(`invalid ${what} "${s}"`, 125);
  return n;
}

/** Maps lifecycle errors to Podman's exit statuses. */
function rethrow(e: unknown): never {
  if (e instanceof ContainerStartError || e instanceof ContainerError) throw new ExitError(e.message, e.exitCode);
  throw e;
}

/** Podman's pids limit when containers.conf sets none. */
const DEFAULT_PIDS_LIMIT = 2048;

function createOptions(args: string[], o: Opts, runtime: string | undefined): CreateOptions {
  const [image, ...rest] = args;
  if (!image) throw new ExitError('an image name is required', 125);
  const command = rest[0] === '--' ? rest.slice(1) : rest;
  const network = str(o.network) ?? str(o.net);
  const stopTimeout = num(o.stopTimeout, '--stop-timeout');
  const pidsLimit = num(o.pidsLimit, '--pids-limit');
  const cpus = num(o.cpus, '--cpus');
  const opts: CreateOptions = {
    image, command,
    env: list(o.env), envFiles: list(o.envFile), volumes: list(o.volume), mounts: list(o.mount), tmpfs: list(o.tmpfs),
    capAdd: list(o.capAdd), capDrop: list(o.capDrop), labels: list(o.label), ulimits: list(o.ulimit), securityOpt: list(o.securityOpt),
    readOnly: !!o.readOnly, terminal: !!(o.tty || o.terminal), interactive: !!o.interactive, rm: !!o.rm, init: !!o.init, privileged: !!o.privileged,
    addHost: list(o.addHost), noHosts: o.hosts === false, groupAdd: list(o.groupAdd), devices: list(o.device),
  };
  const set = <K extends keyof CreateOptions>(k: K, v: CreateOptions[K] | undefined): void => {
    if (v !== undefined) opts[k] = v;
  };
  set('name', str(o.name));
  set('entrypoint', str(o.entrypoint));
  set('workingDir', str(o.workdir) ?? str(o.workingdir));
  set('user', str(o.user));
  set('userns', usernsFromOptions(o));
  set('hostname', str(o.hostname));
  set('network', network);
  set('ip', str(o.ip));
  set('macAddress', str(o.macAddress));
  if (list(o.networkAlias).length > 0) opts.networkAliases = list(o.networkAlias);
  set('stopSignal', str(o.stopSignal));
  set('stopTimeout', stopTimeout);
  set('logDriver', str(o.logDriver));
  set('pidsLimit', pidsLimit);
  set('memory', str(o.memory));
  set('cpus', cpus);
  set('restart', str(o.restart));
  set('runtime', runtime);
  set('conmonPidFile', str(o.conmonPidfile));
  set('initPath', str(o.initPath));
  set('shmSize', str(o.shmSize));
  if (o.readOnlyTmpfs !== undefined) opts.readOnlyTmpfs = str(o.readOnlyTmpfs) !== 'false';
  // --rmi implies --rm, as Podman's.
  if (o.rmi) opts.rm = true;
  opts.envOptions = {
    unsetEnv: list(o.unsetenv), unsetEnvAll: !!o.unsetenvAll, envMerge: list(o.envMerge), envHost: !!o.envHost,
    httpProxy: boolOpt(o.httpProxy, '--http-proxy'),
  };
  opts.labelFiles = list(o.labelFile);
  opts.annotations = list(o.annotation);
  opts.expose = list(o.expose);
  opts.publish = list(o.publish);
  if (o.publishAll) opts.publishAll = true;
  opts.hostUsers = list(o.hostuser);
  opts.sysctls = list(o.sysctl);
  if (!boolOpt(o.passwd, '--passwd')) opts.passwd = false;
  set('imageVolume', str(o.imageVolume));
  set('timezone', str(o.tz));
  set('umask', str(o.umask));
  set('passwdEntry', str(o.passwdEntry));
  set('oomScoreAdj', str(o.oomScoreAdj));
  set('personality', str(o.personality));
  set('pidFile', str(o.pidfile));
  set('preserveFds', num(o.preserveFds, '--preserve-fds'));
  set('timeout', num(o.timeout, '--timeout'));
  set('detachKeys', str(o.detachKeys));
  set('sdNotify', str(o.sdnotify));
  set('systemd', str(o.systemd));
  set('seccompPolicy', str(o.seccompPolicy));
  opts.secrets = list(o.secret);
  opts.health = {
    ...(o.healthcheck === false && { disable: true }), cmd: str(o.healthCmd), interval: str(o.healthInterval), retries: str(o.healthRetries),
    startPeriod: str(o.healthStartPeriod), timeout: str(o.healthTimeout), onFailure: str(o.healthOnFailure),
  };
  opts.createCommand = process.argv.slice(2);
  const pod = podRef(o);
  if (pod !== undefined) opts.pod = pod;
  return opts;
}

/** --pod NAME|ID|new:NAME, or the id in --pod-id-file. */
function podRef(o: Opts): string | undefined {
  const file = str(o.podIdFile);
  if (file !== undefined && str(o.pod) !== undefined) throw new ExitError('cannot specify both --pod and --pod-id-file', 125);
  if (file === undefined) return str(o.pod);
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (e) {
    throw new ExitError(`reading pod ID file: ${(e as Error).message}`, 125);
  }
}

/** Root outside any user namespace of barge's: the case with cgroups to limit and bridge networks. */
export function isRootful(): boolean {
  return process.getuid?.() === 0 && !inBargeUserns();
}

/**
 * containers.conf's defaults for a container to create (init path, ulimits under the container's
 * own --ulimit, which win, and the pids limit), set in `opts`; returns the configuration.
 */
export async function withContainersConf(opts: CreateOptions): Promise<import('../containers-conf.ts').ContainersConf> {
  const { loadContainersConf } = await import('../containers-conf.ts');
  const conf = loadContainersConf();
  if (opts.init && opts.initPath === undefined && conf.initPath !== undefined) opts.initPath = conf.initPath;
  opts.ulimits = [...(conf.defaultUlimits ?? []), ...(opts.ulimits ?? [])];
  // Only root has a pids cgroup to limit (a rootless barge on cgroup v1 has none delegated).
  if (opts.pidsLimit === undefined && isRootful()) opts.pidsLimit = conf.pidsLimit ?? DEFAULT_PIDS_LIMIT;
  return conf;
}

/**
 * `create`/`run` with --replace and --cidfile: an existing container of the same name is removed
 * first; the id file must not exist yet (it names one container) and is written once created.
 */
async function createFor(store: Store, args: string[], o: Opts, runtime: string | undefined): Promise<Container> {
  const opts = createOptions(args, o, runtime);
  const conf = await withContainersConf(opts);
  const rootful = isRootful();
  // containers.conf's netns, as Podman's default network mode. private is barge's own default (with
  // slirp4netns for -p); bridge only as root, where barge has it (rootless Podman's is slirp4netns).
  if (opts.network === undefined && conf.netns !== undefined && conf.netns !== 'private' && (conf.netns !== 'bridge' || rootful)) opts.network = conf.netns;
  const cidfile = str(o.cidfile);
  if (cidfile !== undefined && existsSync(cidfile)) {
    throw new ExitError(`container id file exists. Ensure another container is not using it or delete ${cidfile}`, 125);
  }
  if (o.replace && opts.name !== undefined && store.findContainer(opts.name)?.kind === 'container') {
    await removeContainer(store, opts.name, { force: true });
  }
  opts.imageId = await imageFor(store, opts.image, o);
  // --pod new:NAME: a pod made for the container, with Podman's defaults, and removed again if the container cannot be made.
  const newPod = opts.pod?.startsWith('new:') ? opts.pod.slice(4) : undefined;
  let made: import('../../containers/pods.ts').Pod | undefined;
  if (newPod !== undefined) {
    const pods = await import('../../containers/pods.ts');
    made = await pods.createPod(store, { name: newPod, createCommand: ['barge', 'pod', 'create', '--name', newPod] });
    opts.pod = made.record.id;
  }
  let c: Container;
  try {
    c = await createContainer(store, opts);
  } catch (e) {
    if (made) await (await import('../../containers/pods.ts')).removePod(store, made, { force: true }).catch(() => undefined);
    throw e;
  }
  if (cidfile !== undefined) {
    try {
      await writeFile(cidfile, c.record.id, { flag: 'wx' });
    } catch (e) {
      await removeContainer(store, c.record.id, { force: true }).catch(() => undefined);
      throw new ExitError(`writing the container id file ${cidfile}: ${(e as Error).message}`, 125);
    }
  }
  return c;
}

/**
 * The image run and create use: local, or pulled as --pull says (default: only when missing), for
 * the platform --platform/--arch/--os/--variant name, with --tls-verify and --authfile.
 */
export async function imageFor(store: Store, ref: string, o: Opts): Promise<string> {
  const pull = str(o.pull);
  const policy = pull === undefined ? 'missing' : (await import('../../image/local-images.ts')).parsePullPolicy(pull);
  const platform = platformFlags(o);
  const img = await resolveImage(store, ref, policy, async (name, want) => {
    // Loaded only when an image must be pulled: the registry code is most of barge.
    (await import('./registry.ts')).applyRegistryFlags(o, 'pull');
    return (await import('./transfer.ts')).pullByName(store, name, { quiet: !!o.quiet, ...(want && { platform: want }) });
  }, platform);
  return img.id;
}

/** --attach/-a: which of the container's streams a foreground run shows. */
function attachStreams(o: Opts): string[] {
  const streams = list(o.attach).map((a) => a.toLowerCase());
  const bad = streams.find((a) => !['stdin', 'stdout', 'stderr'].includes(a));
  if (bad !== undefined) throw new ExitError(`invalid stream "${bad}" for --attach - must be one of stdin, stdout, or stderr: invalid argument`, 125);
  return streams;
}

/**
 * --rmi: once its container is gone, the image as run names it goes (only that name, if it has
 * others), unless another container uses it, which is no failure of the run.
 */
async function removeImageAfterRun(store: Store, ref: string): Promise<void> {
  try {
    const { untagRef } = await import('./images.ts');
    if (untagRef(store, ref) === undefined) await store.deleteImage(getImage(store, ref).id);
  } catch (e) {
    process.stderr.write(`Error: ${(e as Error).message}\n`);
  }
}

/** `barge run IMAGE [CMD…]` — Podman's run (working.ts's runCmd sends here when the operand is not a working container). */
export async function runContainerCmd(g: GlobalOptions, args: string[], o: Opts): Promise<number> {
  const store = await openStore(g);
  const runtime = await selectedRuntime(g);
  try {
    const attach = attachStreams(o);
    const preserveFds = num(o.preserveFds, '--preserve-fds');
    // Before the container is made, as Podman checks.
    if (preserveFds) checkPreservedFds(preserveFds);
    const c = await createFor(store, args, o, runtime);
    let code: number;
    try {
      if (o.detach) await startDetached(store, c.record.id);
      code = o.detach ? 0 : await startAttached(store, c.record.id, { sigProxy: boolOpt(o.sigProxy, '--sig-proxy'), attach });
    } catch (e) {
      // It never ran (no such user, bad working directory, …): --rm leaves nothing behind, as Podman's.
      if (c.data.config.autoRemove) await removeContainer(store, c.record.id, { force: true, volumes: true }).catch(() => undefined);
      throw e;
    }
    if (o.detach) print(c.record.id);
    else if (o.rmi) await removeImageAfterRun(store, c.data.config.image);
    return code;
  } catch (e) {
    return rethrow(e);
  }
}

export async function createCmd(g: GlobalOptions, args: string[], o: Opts): Promise<void> {
  const store = await openStore(g);
  try {
    const c = await createFor(store, args, o, await selectedRuntime(g));
    print(c.record.id);
  } catch (e) {
    rethrow(e);
  }
}

export function forEach(args: string[], fn: (ref: string) => Promise<string | void>): Promise<number> {
  return (async () => {
    let failed = 0;
    for (const ref of args) {
      try {
        const out = await fn(ref);
        if (out !== undefined) print(out);
      } catch (e) {
        process.stderr.write(`Error: ${(e as Error).message}\n`);
        failed = e instanceof ContainerStartError || e instanceof ContainerError ? e.exitCode : e instanceof StoreError && e.code === 'notfound' ? 125 : 125;
      }
    }
    return failed;
  })();
}

/** The ids in --cidfile files; with --ignore a missing file names no container. */
export function cidfileRefs(o: Opts): string[] {
  const refs: string[] = [];
  for (const f of list(o.cidfile).length ? list(o.cidfile) : str(o.cidfile) !== undefined ? [str(o.cidfile)!] : []) {
    try {
      refs.push(readFileSync(f, 'utf8').trim());
    } catch (e) {
      if (o.ignore && (e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw new ExitError(`reading CIDFile: ${(e as Error).message}`, 125);
    }
  }
  return refs;
}

/** The names of the containers of run/create that ps --filter would list (running ones only, if asked). */
export function containersMatching(store: Store, filters: string[], running = false): string[] {
  const match = psFilter(store, filters);
  return store.listContainers('container').flatMap((r) => {
    const c = loadContainerOrNull(store, r.id);
    if (!c) return [];
    const s = liveState(store, c);
    return match(c, s) && (!running || isUp(s)) ? [r.name] : [];
  });
}

/** The containers a verb acts on: named, from --cidfile files, --all, --latest, or --filter (as ps --filter). */
export function targets(store: Store, args: string[], o: Opts, running = false): string[] {
  if (o.cidfile !== undefined) return [...args, ...cidfileRefs(o)];
  if (list(o.filter).length) {
    if (args.length) throw new ExitError('--filter takes no container names', 125);
    return containersMatching(store, list(o.filter), running);
  }
  if (o.all) {
    return store.listContainers('container').filter((r) => !running || isUp(liveState(store, loadContainer(store, r.id)))).map((r) => r.name);
  }
  if (o.latest) {
    const last = store.listContainers('container').at(-1);
    if (!last) throw new ExitError('no containers to act on', 125);
    return [last.name];
  }
  if (!args.length) throw new ExitError('at least one container name or ID must be specified', 125);
  return args;
}

function isUp(s: ContainerState): boolean {
  return s.status === 'running' || s.status === 'stopping';
}

/** A container with a process (paused, or initialized and not yet started, included): inspect and ps show its pid. */
function hasProcess(s: ContainerState): boolean {
  return isUp(s) || s.status === 'paused' || s.status === 'initialized';
}

export async function startCmd(g: GlobalOptions, args: string[], o: Opts): Promise<number> {
  const store = await openStore(g);
  const refs = targets(store, args, o);
  if (o.attach) {
    if (refs.length !== 1) throw new ExitError('you cannot start and attach multiple containers at once', 125);
    try {
      return await startAttached(store, refs[0]!, { sigProxy: boolOpt(o.sigProxy, '--sig-proxy') });
    } catch (e) {
      return rethrow(e);
    }
  }
  return forEach(refs, async (ref) => {
    await startDetached(store, ref);
    return ref;
  });
}

export async function stopCmd(g: GlobalOptions, args: string[], o: Opts): Promise<number> {
  const store = await openStore(g);
  const t = num(o.time, '--time');
  const refs = targets(store, args, o, true);
  return forEach(refs, async (ref) => {
    // --ignore: a container that is already gone is not an error (systemd's ExecStop after a crash).
    if (o.ignore && !store.findContainer(ref)) return;
    await stopContainer(store, ref, t);
    return ref;
  });
}

export async function restartCmd(g: GlobalOptions, args: string[], o: Opts): Promise<number> {
  const store = await openStore(g);
  const t = num(o.time, '--time');
  return forEach(targets(store, args, o, !!o.running), async (ref) => {
    await stopContainer(store, ref, t);
    containerEvent(store, await startDetached(store, ref), 'restart');
    // Podman prints the container as it was named.
    return ref;
  });
}

/** `barge pause|unpause [-a] [-l] CONTAINER…`; --all takes every running (or paused) container. */
export async function pauseCmd(g: GlobalOptions, args: string[], o: Opts, pause = true): Promise<number> {
  const store = await openStore(g);
  const refs = o.all
    ? store.listContainers('container').filter((r) => liveState(store, loadContainer(store, r.id)).status === (pause ? 'running' : 'paused')).map((r) => r.id)
    : targets(store, args, o);
  if (!refs.length && !o.all) throw new ExitError('you must provide at least one name or id', 125);
  return forEach(refs, async (ref) => {
    await pauseContainer(store, ref, pause);
    return ref;
  });
}

export function unpauseCmd(g: GlobalOptions, args: string[], o: Opts): Promise<number> {
  // Nothing can be paused without a freezer cgroup; Podman says so before looking at any container.
  if (!runtimeHasCgroups()) throw new ExitError('unpause is not supported for cgroupv1 rootless containers', 125);
  return pauseCmd(g, args, o, false);
}

/**
 * `barge port [-a] [-l] CONTAINER [PRIVATE[/PROTO]]`: the published ports of running containers,
 * as Podman's ("80/tcp -> 0.0.0.0:8080"; with a port, only the host's side of its mappings).
 */
export async function portCmd(g: GlobalOptions, args: string[], o: Opts): Promise<void> {
  const store = await openStore(g);
  const published = (c: Container): string[] => (isActive(liveState(store, c).status) ? portLines(c.data.config.ports ?? []) : []);
  if (o.all) {
    for (const r of store.listContainers().filter((x) => x.kind === 'container')) {
      for (const line of published(loadContainer(store, r.id))) print(`${r.id.slice(0, 12)}\t${line}`);
    }
    return;
  }
  const { ref, rest } = o.latest || args.length ? containerAndRest(store, args, o) : { ref: undefined, rest: [] };
  if (ref === undefined) throw new ExitError('you must supply a running container name or id', 125);
  const c = loadContainer(store, ref);
  const [port] = rest;
  if (port === undefined) {
    for (const line of published(c)) print(line);
    return;
  }
  if (!/^\d+(\/(tcp|udp|sctp))?$/.test(port)) throw new ExitError(`invalid port "${port}"`, 125);
  const key = port.includes('/') ? port : `${port}/tcp`;
  const all = published(c);
  const found = all.filter((line) => line.startsWith(`${key} -> `));
  // As Podman's: silence for a container without published ports, an error for one without this port.
  if (found.length === 0 && all.length > 0) throw new ExitError(`failed to find published port "${port}"`, 125);
  for (const line of found) print(line.slice(key.length + 4));
}

export async function killCmd(g: GlobalOptions, args: string[], o: Opts): Promise<number> {
  const store = await openStore(g);
  const sig = str(o.signal) ?? 'SIGKILL';
  return forEach(targets(store, args, o, true), async (ref) => {
    signalNumber(sig);
    await markStoppedByUser(store, ref);
    containerEvent(store, await signalContainer(store, ref, sig), 'kill');
    return ref;
  });
}

/** wait --condition: the states Podman waits for, as barge's states (stopped is Podman's name for exited). */
const WAIT_CONDITIONS: Record<string, ContainerState['status'][]> = {
  stopped: ['exited'], exited: ['exited'], running: ['running'], paused: ['paused'], created: ['created'],
};

export async function waitCmd(g: GlobalOptions, args: string[], o: Opts): Promise<number> {
  const store = await openStore(g);
  const conditions = list(o.condition).length ? list(o.condition) : ['stopped'];
  for (const c of conditions) if (!(c in WAIT_CONDITIONS)) throw new ExitError(`invalid condition "${c}": running, paused, created, stopped or exited`, 125);
  const wanted = new Set(conditions.flatMap((c) => WAIT_CONDITIONS[c]!));
  let intervalMs = 250;
  if (str(o.interval) !== undefined) {
    const { parseDuration } = await import('../../primitives/config.ts');
    // A bare number is milliseconds, as Podman reads it.
    intervalMs = /^\d+$/.test(str(o.interval)!) ? Number(str(o.interval)) : parseDuration(str(o.interval)!) / 1e6;
  }
  return forEach(targets(store, args, o), async (ref) => {
    if (o.ignore && !store.findContainer(ref)) return;
    loadContainer(store, ref);
    if (wanted.size === 1 && wanted.has('exited')) {
      const st = await waitExited(store, ref);
      return String(st?.exitCode ?? -1);
    }
    for (;;) {
      const st = liveState(store, loadContainer(store, ref));
      if (wanted.has(st.status)) return String(st.status === 'exited' ? st.exitCode ?? -1 : -1);
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  });
}

export async function cleanupCmd(g: GlobalOptions, args: string[], o: Opts): Promise<void> {
  const store = await openStore(g);
  // As Podman's cleanup (conmon's exit command), this is where the restart policy is applied.
  for (const ref of o.latest ? targets(store, args, o) : args) await cleanupContainer(store, ref, { rm: !!o.rm, restart: true });
}

/** `container exists [--external] NAME`: 0 for a container of run/create (--external: also a working container), else 1. */
export async function containerExistsCmd(g: GlobalOptions, args: string[], o: Opts): Promise<number> {
  const store = await openStore(g);
  const r = store.findContainer(args[0]!);
  return r && (r.kind === 'container' || o.external) ? 0 : 1;
}

/**
 * `container prune [-f]`: removes every container of run/create that is not running (created or
 * exited; paused ones stay, as with Podman) and prints their ids. barge never asks, so -f only
 * exists for Podman's command lines.
 */
export async function containerPruneCmd(g: GlobalOptions): Promise<number> {
  const store = await openStore(g);
  const stopped = store.listContainers('container').filter((r) => {
    const c = loadContainer(store, r.id);
    // A pod's infra container goes with its pod (pod rm, pod prune).
    if (c.data.config.infra) return false;
    const st = liveState(store, c).status;
    return st === 'created' || st === 'exited';
  });
  const code = await forEach(stopped.map((r) => r.id), (id) => removeContainer(store, id, { force: false }));
  if (stopped.length) await store.collectGarbage();
  return code;
}

/** `rename CONTAINER NAME` (also `container rename`): a container of run/create gets a new name, running or not. */
export async function renameCmd(g: GlobalOptions, args: string[]): Promise<void> {
  const store = await openStore(g);
  const [ref, name] = args as [string, string];
  if (!CONTAINER_NAME.test(name)) throw new ExitError(`names must match ${CONTAINER_NAME.source.slice(1, -1)}: invalid argument`, 125);
  const wc = store.findContainer(ref);
  if (wc?.kind === 'builder') {
    // Buildah's rename, with its messages.
    if (wc.name === name) throw new ExitError('renaming a container with the same name as its current name', 125);
    const holder = store.findContainer(name);
    if (holder && holder.name === name) throw new ExitError(`The container name "${name}" is already in use by container "${holder.id}"`, 125);
    store.renameContainer(wc.id, name);
    return;
  }
  const c = loadContainer(store, ref);
  if (c.record.name === name) return;
  try {
    store.renameContainer(c.record.id, name);
    containerEvent(store, loadContainer(store, c.record.id), 'rename');
  } catch (e) {
    if (!(e instanceof StoreError && e.code === 'conflict')) throw e;
    const id = c.record.id;
    throw new ExitError(`renaming container ${id}: name ${name} already in use, cannot rename container ${id}: container already exists`, 125);
  }
}

/** For `rm`: removes a Podman-style container (force kills a running one; volumes: its anonymous volumes too). Prints nothing. */
export async function removePodContainer(store: Store, ref: string, force: boolean, volumes = false, stopTimeout?: number): Promise<string> {
  try {
    return await removeContainer(store, ref, { force, volumes, ...(stopTimeout !== undefined && { stopTimeout }) });
  } catch (e) {
    return rethrow(e);
  }
}

// ---------- logs ----------

export async function logsCmd(g: GlobalOptions, args: string[], o: Opts): Promise<number> {
  const store = await openStore(g);
  const refs = o.latest ? targets(store, args, o) : args;
  if (!refs.length) throw new ExitError('at least one container name or ID must be specified', 125);
  const tailS = str(o.tail);
  const tail = tailS === undefined || tailS === '-1' ? -1 : Number(tailS);
  if (!Number.isInteger(tail) || tail < -1) throw new ExitError(`invalid --tail "${tailS}"`, 125);
  const since = str(o.since) !== undefined ? parseSince(str(o.since)!) : undefined;
  const until = str(o.until) !== undefined ? parseSince(str(o.until)!) : undefined;
  const multi = refs.length > 1;
  for (const ref of refs) {
    const c = loadContainer(store, ref);
    if (c.data.config.logDriver === 'none') throw new ExitError(`failed to read the logs of ${c.record.name}: the log driver is "none"`, 125);
    const path = containerPaths(store, c.record.id, c.data.config.runtimeName).logPath;
    let entries: LogEntry[] = [];
    const offset = await readLog(path, 0, (e) => entries.push(...e));
    if (tail >= 0) entries = tail === 0 ? [] : entries.slice(-tail);
    const emit = (es: LogEntry[]): void =>
      writeEntries(
        es.filter((e) => (since === undefined || e.ms >= since) && (until === undefined || e.ms <= until)),
        // Podman prefixes the lines of several containers with their ids, or with --names their names.
        (e) => `${o.names ? `${c.record.name} ` : multi ? `${c.record.id.slice(0, 12)} ` : ''}${o.timestamps ? `${e.time} ` : ''}${e.text}`,
      );
    emit(entries);
    if (o.follow) {
      await readLog(path, offset, emit, () => {
        const now = loadContainerOrNull(store, c.record.id);
        return now ? isUp(liveState(store, now)) : false;
      });
    }
  }
  return 0;
}

function loadContainerOrNull(store: Store, id: string): Container | null {
  try {
    return loadContainer(store, id);
  } catch {
    return null;
  }
}

// ---------- ps / inspect ----------

/**
 * Podman's psReporter.State(), which ps's STATE and {{.State}} show: how long a running container
 * has been up, how an exited one ended, else its state capitalized ("Created", "Paused").
 */
function stateText(s: ContainerState): string {
  const state = podmanState(s);
  switch (state) {
    case 'running':
      return `Up ${humanDuration(Date.now() - Date.parse(s.startedAt ?? ''))} ago`;
    case 'exited':
      return `Exited (${s.exitCode ?? -1}) ${humanDuration(Date.now() - Date.parse(s.finishedAt ?? ''))} ago`;
    default:
      return state.charAt(0).toUpperCase() + state.slice(1);
  }
}

/** psReporter.Status(): the state, and a running container's health after it. */
function statusText(s: ContainerState, c: Container): string {
  const health = s.status === 'running' ? healthStatus(c) : '';
  return `${stateText(s)}${health ? ` (${health})` : ''}`;
}

/** A running container shows 0, as in Podman, even when a restart policy keeps the last run's code. */
function shownExitCode(s: ContainerState): number {
  return isUp(s) ? 0 : (s.exitCode ?? 0);
}

function podmanState(s: ContainerState): string {
  return s.status === 'stopping' ? 'stopping' : s.status;
}

interface PsRow {
  ID: string;
  Image: string;
  ImageID: string;
  Command: string;
  CreatedHuman: string;
  CreatedAt: string;
  Created: number;
  Status: string;
  State: string;
  Ports: string;
  Names: string;
  Labels: Record<string, string>;
  ExitCode: number;
  Pid: number;
  AutoRemove: boolean;
  Size: string;
  // The rest only for templates, as Podman's ListContainer has them.
  StartedAt: number;
  ExitedAt: number;
  Exited: boolean;
  Pod: string;
  PodName: string;
  IsInfra: boolean;
  /** Bridge network names (the reporter's Networks method joins them). */
  Networks: string[];
}

/** Unix seconds of a time, Go's for the zero time when there is none (ListContainer's StartedAt/ExitedAt). */
function unixOrZero(t: string | null): number {
  return t ? Math.floor(Date.parse(t) / 1000) : -62135596800;
}

function psRow(c: Container, s: ContainerState, noTrunc: boolean, size: ContainerSize | undefined, podNames: ReadonlyMap<string, string>): PsRow {
  const podId = c.record.podId ?? '';
  const cmd = [...c.data.config.entrypoint, ...c.data.config.cmd].join(' ');
  return {
    ID: noTrunc ? c.record.id : c.record.id.slice(0, 12),
    Image: c.record.imageName ?? c.data.config.image,
    ImageID: noTrunc ? c.data.config.imageId : c.data.config.imageId.slice(0, 12),
    Command: !noTrunc && cmd.length > 17 ? `${cmd.slice(0, 17)}...` : cmd,
    CreatedHuman: `${humanDuration(Date.now() - Date.parse(c.record.created))} ago`,
    CreatedAt: c.record.created,
    Created: Math.floor(Date.parse(c.record.created) / 1000),
    Status: statusText(s, c),
    State: stateText(s),
    Ports: psPorts(c.data.config.ports ?? []),
    Names: c.record.name,
    Labels: c.data.config.labels,
    ExitCode: shownExitCode(s),
    Pid: hasProcess(s) ? s.pid : 0,
    AutoRemove: c.data.config.autoRemove,
    Size: size ? `${goUnitsSize(size.rwSize, 3)} (virtual ${goUnitsSize(size.rootFsSize, 3)})` : '',
    StartedAt: unixOrZero(s.startedAt),
    ExitedAt: unixOrZero(s.finishedAt),
    Exited: s.status === 'exited',
    Pod: noTrunc ? podId : podId.slice(0, 12),
    PodName: podNames.get(podId) ?? '',
    IsInfra: !!c.data.config.infra,
    Networks: Object.keys(c.data.config.networks ?? {}),
  };
}

/** A working container as Podman's ps --external shows one: no image name, "buildah" as its command. */
function externalRow(r: ContainerRecord, noTrunc: boolean): PsRow {
  const created = Date.parse(r.created);
  return {
    ID: noTrunc ? r.id : r.id.slice(0, 12), Image: '', ImageID: noTrunc ? r.imageId ?? '' : (r.imageId ?? '').slice(0, 12), Command: 'buildah',
    CreatedHuman: `${humanDuration(Date.now() - created)} ago`, CreatedAt: r.created, Created: Math.floor(created / 1000),
    Status: 'Storage', State: 'storage', Ports: '', Names: r.name, Labels: {}, ExitCode: 0, Pid: 0, AutoRemove: false, Size: '',
    StartedAt: 0, ExitedAt: 0, Exited: false, IsInfra: false, Pod: '', PodName: '', Networks: [],
  };
}

function externalJSON(r: ContainerRecord): Record<string, unknown> {
  const row = externalRow(r, true);
  return {
    AutoRemove: false, Command: ['buildah'], Created: row.Created, CreatedAt: row.CreatedHuman, Exited: false, ExitedAt: 0, ExitCode: 0, Id: r.id,
    Image: '', ImageID: r.imageId ?? '', Labels: null, Names: [r.name], Pid: 0, Ports: null, StartedAt: 0, State: 'storage', Status: 'Storage',
  };
}

/** The states `--filter status=` accepts, as Podman 4.3's StringToContainerStatus. */
const FILTER_STATES = new Set(['created', 'running', 'stopped', 'paused', 'exited', 'unknown', 'removing']);

type PsPredicate = (c: Container, s: ContainerState) => boolean;

/** When the container of a since= or before= filter was created (ms). */
function createdAt(c: Container): number {
  return Date.parse(c.record.created);
}

/** The "PORT/PROTO" keys of a publish= or expose= filter (a port, or a range, tcp unless named). */
function portKeys(key: string, v: string): Set<string> {
  try {
    return new Set(parseExpose([v], `${key} filter`));
  } catch (e) {
    throw new ExitError((e as Error).message, 125);
  }
}

/** The container ports a container publishes, as "PORT/PROTO" keys. */
function publishedKeys(c: Container): string[] {
  return (c.data.config.ports ?? []).map((p) => `${p.containerPort}/${p.protocol}`);
}

/** One --filter key's test for one value; values of the same key are ORed by psFilter. */
function filterValue(store: Store, key: string, v: string): PsPredicate {
  switch (key) {
    case 'pod': {
      // A name or id (prefix) of a pod, as Podman's: a pod that does not exist matches nothing.
      const pod = store.findPod(v);
      return (c) => !!pod && c.record.podId === pod.id;
    }
    case 'id':
      return (c) => c.record.id.startsWith(v);
    case 'name': {
      const re = new RegExp(v);
      return (c) => re.test(c.record.name);
    }
    case 'status':
      if (!FILTER_STATES.has(v)) throw new ExitError(`unknown container state: ${v}: invalid argument`, 125);
      return (_c, s) => podmanState(s) === (v === 'stopped' ? 'exited' : v);
    case 'exited':
      return (_c, s) => s.status === 'exited' && String(s.exitCode) === v;
    case 'label': {
      const j = v.indexOf('=');
      const k = j < 0 ? v : v.slice(0, j);
      return (c) => {
        const labels = c.data.config.labels;
        return k in labels && (j < 0 || labels[k] === v.slice(j + 1));
      };
    }
    case 'health':
      return (c, s) => healthMatches(c, s, v);
    case 'restart-policy':
      return (c) => c.data.config.restart.name === (v === '' ? 'no' : v);
    case 'since': {
      const t = createdAt(loadContainer(store, v));
      return (c) => createdAt(c) > t;
    }
    case 'before': {
      const t = createdAt(loadContainer(store, v));
      return (c) => createdAt(c) < t;
    }
    case 'until': {
      let t: number;
      try {
        t = parseSince(v);
      } catch {
        throw new ExitError(`failed to parse value as time or duration: ${JSON.stringify(v)}`, 125);
      }
      return (c) => createdAt(c) < t;
    }
    case 'volume': {
      // NAME or DESTINATION, or SOURCE:DESTINATION (a volume's name or a bind's source), as Podman matches them.
      const [source, dest] = v.includes(':') ? [v.slice(0, v.indexOf(':')), v.slice(v.indexOf(':') + 1)] : [v, undefined];
      return (c) => {
        const cfg = c.data.config;
        if (dest === undefined) return cfg.mounts.some((m) => m.destination === source) || volumesOf(cfg).some((m) => m.name === source || m.destination === source);
        return cfg.mounts.some((m) => m.source === source && m.destination === dest) || volumesOf(cfg).some((m) => m.name === source && m.destination === dest);
      };
    }
    case 'network': {
      // By name or id (prefix), as Podman's; an unknown one matches none.
      const ids = new Map(listNetworks(store).map((n) => [n.name, n.id]));
      return (c) => Object.keys(c.data.config.networks ?? {}).some((n) => n === v || (v !== '' && (ids.get(n) ?? '').startsWith(v)));
    }
    case 'publish': {
      const want = portKeys(key, v);
      return (c) => publishedKeys(c).some((k) => want.has(k));
    }
    case 'expose': {
      // The exposed ports, and those published (which are exposed too, as Docker counts them).
      const want = portKeys(key, v);
      return (c) => [...(c.data.config.expose ?? []), ...publishedKeys(c)].some((k) => want.has(k));
    }
    case 'ancestor':
      return (c) => c.data.config.image === v || c.record.imageName === v || c.data.config.imageId.startsWith(v.replace(/^sha256:/, '')) ||
        (c.record.imageName ?? '').replace(/^localhost\//, '').replace(/:latest$/, '') === v.replace(/:latest$/, '');
    default:
      throw new ExitError(`${key} is an invalid filter`, 125);
  }
}

/**
 * ps's --filter list as one test, as Podman combines them: values of one key are alternatives
 * (status=exited or status=created), different keys must all hold; labels must all be present.
 * Every filter is checked here, so a bad one fails even when no container is listed.
 */
function psFilter(store: Store, filters: string[]): PsPredicate {
  const byKey = new Map<string, PsPredicate[]>();
  for (const f of filters) {
    const i = f.indexOf('=');
    if (i < 0) throw new ExitError(`invalid filter "${f}"`, 125);
    const key = f.slice(0, i);
    byKey.set(key, [...(byKey.get(key) ?? []), filterValue(store, key, f.slice(i + 1))]);
  }
  const groups = [...byKey].map(([key, tests]): PsPredicate =>
    key === 'label' ? (c, s) => tests.every((t) => t(c, s)) : (c, s) => tests.some((t) => t(c, s)));
  return (c, s) => groups.every((g) => g(c, s));
}

/**
 * `ps [--watch N]`: the list once or, with --watch, again every N seconds until interrupted; as
 * Podman, -q and --format json print once whatever --watch says.
 */
export async function psCmd(g: GlobalOptions, _args: string[], o: Opts): Promise<void> {
  const store = await openStore(g);
  const watch = str(o.watch) ?? '0';
  if (!/^\d+$/.test(watch)) throw new ExitError(`invalid argument "${watch}" for "-w, --watch" flag: strconv.ParseUint: parsing "${watch}": invalid syntax`, 125);
  const format = str(o.format);
  const { isJSONFormat } = await import('../table.ts');
  if (Number(watch) > 0 && !o.quiet && !(format !== undefined && isJSONFormat(format))) {
    const { refreshEvery } = await import('../watch.ts');
    await refreshEvery(Number(watch), () => psOutput(store, o));
  }
  process.stdout.write(await psOutput(store, o));
}

/** What one `ps` prints. */
async function psOutput(store: Store, o: Opts): Promise<string> {
  const noTrunc = !!o.noTrunc || o.trunc === false;
  let cs = store.listContainers('container').map((r) => {
    const c: Container = { record: r, data: JSON.parse(r.data) as Container['data'] };
    return { c, s: liveState(store, c) };
  });
  const last = num(o.last, '--last');
  const all = !!o.all || last !== undefined || !!o.latest || list(o.filter).length > 0;
  const matches = psFilter(store, list(o.filter));
  if (!all) cs = cs.filter((x) => isUp(x.s));
  cs = cs.filter((x) => matches(x.c, x.s));
  // Oldest first, as Podman lists; -l and -n take the newest ones of that list (-n 0: all).
  if (o.latest) cs = cs.slice(-1);
  if (last !== undefined && last > 0) cs = cs.slice(-last);
  // Buildah's working containers, which Podman lists after its own in the "storage" state.
  const external = o.external ? store.listContainers('builder') : [];
  if (o.quiet) return [...cs.map((x) => x.c.record.id), ...external.map((r) => r.id)].map((id) => `${noTrunc ? id : id.slice(0, 12)}\n`).join('');
  const format = str(o.format);
  const { formatRows, isJSONFormat, isTableFormat } = await import('../table.ts');
  const { containerSize } = await import('../../containers/files.ts');
  const sizes = o.size ? await Promise.all(cs.map((x) => containerSize(store, x.c))) : [];
  if (format !== undefined && isJSONFormat(format)) return `${JSON.stringify([...cs.map((x, i) => psJSON(x.c, x.s, sizes[i])), ...external.map(externalJSON)], null, 4)}\n`;
  // As Podman 4.3: the pod's name only with --pod.
  const podNames = o.pod ? new Map(store.listPods().map((p) => [p.id, p.name])) : new Map<string, string>();
  const rows = [...cs.map((x, i) => psRow(x.c, x.s, noTrunc, sizes[i], podNames)), ...external.map((r) => externalRow(r, noTrunc))];
  const sort = str(o.sort);
  if (sort !== undefined) {
    // Podman's keys; created and runningfor keep the list's own order, oldest first.
    const keys: Record<string, keyof PsRow | null> = { command: 'Command', created: null, id: 'ID', image: 'Image', names: 'Names', runningfor: null, status: 'Status' };
    if (!(sort in keys)) throw new ExitError(`invalid option for --sort, options are: ${Object.keys(keys).join(', ')}`, 125);
    const key = keys[sort];
    if (key) rows.sort((a, b) => String(a[key]).localeCompare(String(b[key])));
  }
  const out = formatRows(rows, {
    ...(format !== undefined && { format }),
    defaultTable: `table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.CreatedHuman}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}${o.size ? '\t{{.Size}}' : ''}${o.pod ? '\t{{.Pod}}\t{{.PodName}}' : ''}`,
    headers: { ID: 'CONTAINER ID', CreatedHuman: 'CREATED', Pod: 'POD ID', PodName: 'PODNAME' },
    name: 'ps',
    type: PS_REPORTER,
  });
  if (o.noheading && isTableFormat(format)) return out.split('\n').slice(1).join('\n');
  if (out === '' && format === undefined) return `CONTAINER ID  IMAGE       COMMAND     CREATED     STATUS      PORTS       NAMES${o.size ? '       SIZE' : ''}${o.pod ? '       POD ID      PODNAME' : ''}\n`;
  return out;
}

function psJSON(c: Container, s: ContainerState, size?: ContainerSize): Record<string, unknown> {
  return {
    AutoRemove: c.data.config.autoRemove,
    Command: [...c.data.config.entrypoint, ...c.data.config.cmd],
    Created: Math.floor(Date.parse(c.record.created) / 1000),
    CreatedAt: humanDuration(Date.now() - Date.parse(c.record.created)) + ' ago',
    Exited: s.status === 'exited',
    ExitedAt: s.finishedAt ? Math.floor(Date.parse(s.finishedAt) / 1000) : 0,
    ExitCode: shownExitCode(s),
    Id: c.record.id,
    Image: c.record.imageName ?? c.data.config.image,
    ImageID: c.data.config.imageId,
    Labels: Object.keys(c.data.config.labels).length ? c.data.config.labels : null,
    Names: [c.record.name],
    // The bridge networks by name (Podman's reporter joins them for {{.Networks}}).
    Networks: Object.keys(c.data.config.networks ?? {}),
    Pid: hasProcess(s) ? s.pid : 0,
    Pod: c.record.podId ?? '',
    Ports: c.data.config.ports?.length
      ? portRanges(c.data.config.ports).map(({ first: p, range }) => ({ host_ip: p.hostIp, container_port: p.containerPort, host_port: p.hostPort, range, protocol: p.protocol }))
      : null,
    ...(size && { Size: size }),
    StartedAt: s.startedAt ? Math.floor(Date.parse(s.startedAt) / 1000) : 0,
    State: podmanState(s),
    Status: statusText(s, c),
  };
}

const ZERO_TIME = '0001-01-01T00:00:00Z';

/** Podman's checkpoint fields of State: the flags only when set, the files only while they exist. */
function checkpointState(c: Container, userdata: string): Record<string, unknown> {
  const ck = c.data.checkpoint;
  const files = checkpointPaths(userdata);
  return {
    ...(ck?.checkpointed && { Checkpointed: true }),
    CheckpointedAt: ck?.checkpointedAt ?? ZERO_TIME,
    RestoredAt: ck?.restoredAt ?? ZERO_TIME,
    ...(existsSync(files.dumpLog) && { CheckpointLog: files.dumpLog }),
    ...(existsSync(files.images) && { CheckpointPath: files.images }),
    ...(existsSync(files.restoreLog) && { RestoreLog: files.restoreLog }),
    ...(ck?.restored && { Restored: true }),
  };
}

export function inspectJSON(store: Store, c: Container): Record<string, unknown> {
  const s = liveState(store, c);
  const cfg = c.data.config;
  const p = containerPaths(store, c.record.id, cfg.runtimeName);
  // As Podman: the process, so with --init the init and its `--`.
  const args = processArgs(cfg);
  const up = isUp(s);
  // What the spec gives the process (--privileged included), sorted as Podman lists them.
  const caps = containerCapabilities(cfg).sort();
  // Exposed ports are listed unbound, as Podman's; the published with their host side.
  const portBindings = Object.fromEntries(Object.entries({ ...Object.fromEntries((cfg.expose ?? []).map((e) => [e, null])), ...inspectPorts(cfg.ports ?? []) }).sort(([a], [b]) => a.localeCompare(b)));
  const binds = cfg.mounts.filter((m) => m.type === 'bind');
  const volumes = volumeInspectMounts(store, cfg);
  const bridge = cfg.network === 'bridge' ? inspectBridge(cfg.networks ?? {}, c.data.state.bridge) : undefined;
  const image = findImage(store, cfg.imageId);
  // Podman's keys in Podman's order, with its values for what barge does not have (pods, networks, devices).
  return {
    Id: c.record.id,
    Created: c.record.created,
    Path: args[0] ?? '',
    Args: args.slice(1),
    State: {
      OciVersion: '1.0.2',
      Status: podmanState(s),
      Running: up,
      Paused: s.status === 'paused',
      Restarting: false,
      OOMKilled: false,
      Dead: false,
      Pid: hasProcess(s) ? s.pid : 0,
      ConmonPid: hasProcess(s) && s.monitor === 'conmon' ? s.monitorPid : 0,
      ExitCode: shownExitCode(s),
      Error: s.error,
      StartedAt: s.startedAt ?? ZERO_TIME,
      FinishedAt: s.finishedAt ?? ZERO_TIME,
      Health: s.health ?? { Status: '', FailingStreak: 0, Log: null },
      ...checkpointState(c, p.userdata),
    },
    Image: cfg.imageId,
    ImageDigest: image?.manifestDigest ?? '',
    ImageName: c.record.imageName ?? cfg.image,
    Rootfs: '',
    Pod: c.record.podId ?? '',
    // Without a network there is no resolv.conf of the container's own (lifecycle.ts containerFiles).
    ResolvConfPath: cfg.network === 'none' ? '' : `${p.userdata}/resolv.conf`,
    HostnamePath: `${p.userdata}/hostname`,
    HostsPath: cfg.noHosts ? '' : `${p.userdata}/hosts`,
    StaticDir: p.userdata,
    OCIConfigPath: `${p.userdata}/config.json`,
    OCIRuntime: cfg.runtimeName,
    ConmonPidFile: p.conmonPidFile,
    PidFile: cfg.pidFile ?? p.pidFile,
    Name: c.record.name,
    RestartCount: s.restartCount,
    Driver: store.driver,
    MountLabel: '',
    ProcessLabel: '',
    AppArmorProfile: '',
    EffectiveCaps: caps,
    BoundingCaps: caps,
    ExecIDs: [],
    GraphDriver: { Name: store.driver, Data: store.driver === 'overlay' ? { UpperDir: store.upperDir(c.record), WorkDir: join(store.containerDir(c.record.id), 'work'), MergedDir: join(store.containerDir(c.record.id), 'merged') } : {} },
    Mounts: [
      ...binds.map((m) => ({
        Type: 'bind', Source: m.source, Destination: m.destination, Driver: '', Mode: '',
        Options: (m.options ?? []).filter((x) => x !== 'ro'), RW: !(m.options ?? []).includes('ro'), Propagation: 'rprivate',
      })),
      ...volumes.mounts,
    ],
    Dependencies: [],
    NetworkSettings: {
      EndpointID: '', Gateway: '', IPAddress: '', IPPrefixLen: 0, IPv6Gateway: '', GlobalIPv6Address: '', GlobalIPv6PrefixLen: 0,
      MacAddress: '', Bridge: '', SandboxID: '', HairpinMode: false, LinkLocalIPv6Address: '', LinkLocalIPv6PrefixLen: 0, Ports: portBindings, SandboxKey: '',
      ...(bridge && { ...bridge.top, SandboxKey: c.data.state.bridge ? ownNetnsPath(p.run) : '', Networks: bridge.networks }),
    },
    Namespace: '',
    IsInfra: !!cfg.infra,
    IsService: false,
    Config: {
      Hostname: cfg.hostname,
      Domainname: '',
      User: cfg.user,
      AttachStdin: false,
      AttachStdout: false,
      AttachStderr: false,
      Tty: cfg.terminal,
      OpenStdin: cfg.interactive,
      StdinOnce: false,
      Env: cfg.env,
      Cmd: cfg.cmd,
      Image: c.record.imageName ?? cfg.image,
      Volumes: null,
      WorkingDir: cfg.workingDir,
      Entrypoint: cfg.entrypoint.join(' '),
      OnBuild: null,
      Labels: Object.keys(cfg.labels).length ? cfg.labels : null,
      Annotations: cfg.annotations,
      StopSignal: signalNum(cfg.stopSignal),
      ...(cfg.healthcheck && { Healthcheck: cfg.healthcheck }),
      HealthcheckOnFailureAction: cfg.healthOnFailure ?? 'none',
      ...(cfg.createCommand && { CreateCommand: ['barge', ...cfg.createCommand] }),
      ...(cfg.timezone !== undefined && { Timezone: cfg.timezone }),
      Umask: cfg.umask ?? '0022',
      ...(cfg.secrets?.some((u) => u.type === 'mount') && { Secrets: inspectSecrets(cfg) }),
      Timeout: cfg.timeout ?? 0,
      StopTimeout: cfg.stopTimeout,
      Passwd: cfg.passwd ?? true,
      ...(cfg.passwdEntry !== undefined && { PasswdEntry: cfg.passwdEntry }),
      sdNotifyMode: cfg.sdNotify ?? 'container',
    },
    HostConfig: {
      Binds: [...binds.map((m) => `${m.source}:${m.destination}${(m.options ?? []).includes('ro') ? ':ro' : ''}`), ...volumes.binds],
      CgroupManager: 'cgroupfs',
      CgroupMode: 'host',
      ContainerIDFile: '',
      LogConfig: { Type: cfg.logDriver, Config: null, Path: cfg.logDriver === 'none' ? '' : p.logPath, Tag: '', Size: '0B' },
      NetworkMode: cfg.network === 'private' ? 'none' : cfg.network,
      PortBindings: portBindings,
      RestartPolicy: { Name: cfg.restart.name === 'no' ? '' : cfg.restart.name, MaximumRetryCount: cfg.restart.maxRetries },
      AutoRemove: cfg.autoRemove,
      VolumeDriver: '',
      VolumesFrom: null,
      CapAdd: cfg.capAdd.map(normalizeCapability),
      CapDrop: cfg.capDrop.map(normalizeCapability),
      Dns: [],
      DnsOptions: [],
      DnsSearch: [],
      ExtraHosts: cfg.extraHosts ?? [],
      GroupAdd: cfg.groupAdd ?? [],
      IpcMode: 'shareable',
      Cgroup: '',
      Cgroups: 'default',
      Links: null,
      OomScoreAdj: cfg.oomScoreAdj ?? 0,
      PidMode: 'private',
      Privileged: !!cfg.privileged,
      PublishAllPorts: false,
      ReadonlyRootfs: cfg.readOnly,
      SecurityOpt: [...(cfg.noNewPrivileges ? ['no-new-privileges'] : []), ...(cfg.seccompUnconfined ? ['seccomp=unconfined'] : [])],
      Tmpfs: Object.fromEntries(cfg.mounts.filter((m) => m.type === 'tmpfs').map((m) => [m.destination, (m.options ?? []).join(',')])),
      UTSMode: 'private',
      UsernsMode: '',
      ShmSize: cfg.shmSize ?? DEFAULT_SHM_SIZE,
      Runtime: 'oci',
      ConsoleSize: [0, 0],
      Isolation: '',
      CpuShares: 0,
      Memory: cfg.resources.memory ?? 0,
      NanoCpus: Math.round((cfg.resources.cpus ?? 0) * 1e9),
      CgroupParent: '',
      BlkioWeight: 0,
      BlkioWeightDevice: null,
      BlkioDeviceReadBps: null,
      BlkioDeviceWriteBps: null,
      BlkioDeviceReadIOps: null,
      BlkioDeviceWriteIOps: null,
      CpuPeriod: 0,
      CpuQuota: 0,
      CpuRealtimePeriod: 0,
      CpuRealtimeRuntime: 0,
      CpusetCpus: '',
      CpusetMems: '',
      // Podman 4.3 leaves CgroupPermissions empty, whatever was asked.
      Devices: (cfg.devices ?? []).map((d) => ({ PathOnHost: d.pathOnHost, PathInContainer: d.pathInContainer, CgroupPermissions: '' })),
      DiskQuota: 0,
      KernelMemory: 0,
      MemoryReservation: 0,
      MemorySwap: 0,
      MemorySwappiness: 0,
      OomKillDisable: false,
      PidsLimit: cfg.resources.pidsLimit ?? 0,
      // Podman names them RLIMIT_NOFILE etc., and -1 is unlimited.
      Ulimits: cfg.ulimits.map((u) => ({
        Name: `RLIMIT_${u.type.toUpperCase().replace(/^RLIMIT_/, '')}`, Soft: Number.isFinite(u.soft) ? u.soft : -1, Hard: Number.isFinite(u.hard) ? u.hard : -1,
      })),
      CpuCount: 0,
      CpuPercent: 0,
      IOMaximumIOps: 0,
      IOMaximumBandwidth: 0,
      CgroupConf: null,
      // Podman has the key only for --init.
      ...(cfg.init && { Init: true }),
    },
  };
}

function signalNum(sig: string): number {
  try {
    return signalNumber(sig);
  } catch {
    return 15;
  }
}

export async function containerInspectCmd(g: GlobalOptions, args: string[], o: Opts): Promise<number> {
  const store = await openStore(g);
  const refs = o.latest ? targets(store, args, o) : args;
  if (!refs.length) throw new ExitError('at least one container name or ID must be specified', 125);
  const out: Record<string, unknown>[] = [];
  let failed = 0;
  for (const ref of refs) {
    try {
      out.push(inspectJSON(store, loadContainer(store, ref)));
    } catch (e) {
      process.stderr.write(`Error: ${(e as Error).message}\n`);
      failed = 125;
    }
  }
  const { printInspected } = await import('../table.ts');
  printInspected(out, str(o.format), CONTAINER_DATA);
  return failed;
}

/** Whether `ref` names a Podman-style container (for commands shared with Buildah's verbs). */
export function isPodContainerRef(store: Store, ref: string): boolean {
  try {
    const r = store.findContainer(ref);
    return !!r && r.kind === 'container' && existsSync(store.containerDir(r.id));
  } catch {
    return false;
  }
}

// ---------- exec / top / cp / diff / export ----------

/** The container operand, or the latest container with -l/--latest (then every operand is the command). */
function containerAndRest(store: Store, args: string[], o: Opts): { ref: string; rest: string[] } {
  if (o.latest) {
    const last = store.listContainers('container').at(-1);
    if (!last) throw new ExitError('no containers to act on', 125);
    return { ref: last.name, rest: args };
  }
  const [ref, ...rest] = args;
  if (!ref) throw new ExitError('a container name or ID must be specified', 125);
  return { ref, rest };
}

/** `barge exec [-i] [-t] [-d] [-e] [--env-file] [-u] [-w] [-l] CONTAINER CMD…` */
export async function execCmd(g: GlobalOptions, args: string[], o: Opts): Promise<number> {
  const store = await openStore(g);
  const { execInContainer } = await import('../../containers/exec.ts');
  try {
    const { ref, rest } = containerAndRest(store, args, o);
    const command = rest[0] === '--' ? rest.slice(1) : rest;
    const r = await execInContainer(store, ref, {
      command, env: list(o.env), envFiles: list(o.envFile), interactive: !!o.interactive, tty: !!o.tty, detach: !!o.detach, privileged: !!o.privileged,
      ...(num(o.preserveFds, '--preserve-fds') !== undefined && { preserveFds: num(o.preserveFds, '--preserve-fds')! }),
      ...(str(o.user) !== undefined && { user: str(o.user) }), ...(str(o.workdir) !== undefined && { workdir: str(o.workdir) }),
    });
    if (r.session) print(r.session);
    return r.code;
  } catch (e) {
    if (e instanceof StoreError && e.code === 'notfound') throw new ExitError(e.message, 125);
    return rethrow(e);
  }
}

/** `barge top [-l] CONTAINER [descriptors…]` */
export async function topCmd(g: GlobalOptions, args: string[], o: Opts): Promise<void> {
  const store = await openStore(g);
  const { topContainer } = await import('../../containers/top.ts');
  try {
    const { ref, rest } = containerAndRest(store, args, o);
    process.stdout.write(await topContainer(store, ref, rest));
  } catch (e) {
    rethrow(e);
  }
}

/** `barge cp [--archive=false] [--overwrite] SRC DEST`, one of them CONTAINER:PATH. */
export async function cpCmd(g: GlobalOptions, args: string[], o: Opts): Promise<void> {
  const store = await openStore(g);
  const { copyFiles } = await import('../../containers/files.ts');
  if (args.length !== 2) throw new ExitError('requires exactly 2 arguments: SRC DEST', 125);
  try {
    await copyFiles(store, args[0]!, args[1]!, { archive: o.archive !== false, overwrite: !!o.overwrite });
  } catch (e) {
    if (e instanceof ContainerError) rethrow(e);
    throw new ExitError((e as Error).message, 125);
  }
}

/** `barge diff [-l] CONTAINER` (Podman's A/C/D lines; --format json as Podman's {"changed","added","deleted"}). */
export async function diffCmd(g: GlobalOptions, args: string[], o: Opts): Promise<void> {
  const store = await openStore(g);
  const { diffContainer } = await import('../../containers/files.ts');
  const { ref } = containerAndRest(store, args, o);
  const changes = await diffContainer(store, ref);
  if (str(o.format) === 'json') {
    const pick = (k: string): string[] => changes.filter((c) => c.kind === k).map((c) => c.path);
    print(JSON.stringify({ changed: pick('C'), added: pick('A'), deleted: pick('D') }, null, 4));
    return;
  }
  for (const c of changes) print(`${c.kind} ${c.path}`);
}

/** `barge export [-o FILE] CONTAINER` */
export async function exportCmd(g: GlobalOptions, args: string[], o: Opts): Promise<void> {
  const store = await openStore(g);
  const { exportContainer } = await import('../../containers/files.ts');
  const [ref] = args;
  if (!ref) throw new ExitError('a container name or ID must be specified', 125);
  const out = str(o.output);
  if (out === undefined && process.stdout.isTTY) throw new ExitError('refusing to export to terminal. Use -o flag or redirect', 125);
  await exportContainer(store, ref, out ?? process.stdout);
}

// ---------- generate systemd ----------

/** The launcher bin/barge beside the running bundle, by its real path (a unit must not depend on $PATH). */
function bargeExecutable(): string {
  const script = process.argv[1] ?? '';
  const launcher = resolve(dirname(script), '..', 'bin', 'barge');
  try {
    return realpathSync(launcher);
  } catch {
    return realpathSync(script);
  }
}

/** `barge generate systemd [--new] [--name] [--files] [--restart-policy] … CONTAINER` */
export async function generateSystemdCmd(g: GlobalOptions, args: string[], o: Opts): Promise<void> {
  const store = await openStore(g);
  const { generateUnit, UNIT_RESTART_POLICIES } = await import('../../containers/systemd.ts');
  const [ref] = args;
  if (!ref) throw new ExitError('a container name or ID must be specified', 125);
  const policy = str(o.restartPolicy) ?? 'on-failure';
  const restartPolicy = UNIT_RESTART_POLICIES.find((p) => p === policy);
  if (!restartPolicy) throw new ExitError(`${policy} is not a valid restart policy`, 125);
  let c: Container;
  try {
    c = loadContainer(store, ref);
  } catch (e) {
    throw new ExitError(`${ref} does not refer to a container: ${(e as Error).message}`, 125);
  }
  if (c.data.config.restart.name !== 'no') {
    process.stderr.write(
      `Warning: container ${c.record.id} has restart policy "${c.data.config.restart.name}" which can lead to issues on shutdown: ` +
        'consider recreating the container without a restart policy and use systemd\'s restart mechanism instead\n',
    );
  }
  // Which of run's options take a value, from the command tree itself, to rewrite the create command.
  const { buildProgram } = await import('../program.ts');
  const run = buildProgram().commands.find((x) => x.name() === 'run');
  const valueOptions = new Set<string>();
  for (const opt of run?.options ?? []) {
    if (!opt.required && !opt.optional) continue;
    if (opt.long) valueOptions.add(opt.long);
    if (opt.short) valueOptions.add(opt.short);
  }
  const globalArgs: string[] = [];
  for (const [flag, v] of [['--root', g.root], ['--runroot', g.runroot], ['--storage-driver', g.storageDriver], ['--runtime', g.runtime]] as const) {
    if (v !== undefined) globalArgs.push(flag, flag === '--root' || flag === '--runroot' ? resolve(v) : v);
  }
  const { VERSION } = await import('../version.ts');
  const { pathsOf } = await import('../../containers/lifecycle.ts');
  const unit = generateUnit(c, {
    barge: bargeExecutable(), globalArgs, useName: !!o.name, new: !!o.new, restartPolicy,
    ...(num(o.restartSec, '--restart-sec') !== undefined && { restartSec: num(o.restartSec, '--restart-sec')! }),
    ...(num(o.startTimeout, '--start-timeout') !== undefined && { startTimeout: num(o.startTimeout, '--start-timeout')! }),
    ...(num(o.time ?? o.stopTimeout, '--stop-timeout') !== undefined && { stopTimeout: num(o.time ?? o.stopTimeout, '--stop-timeout')! }),
    prefix: str(o.containerPrefix) ?? 'container', separator: str(o.separator) ?? '-', header: o.header !== false,
    version: VERSION, now: new Date(), runroot: store.runroot, conmonPidFile: pathsOf(store, c).conmonPidFile, valueOptions,
  });
  if (o.files) {
    const file = resolve(unit.name);
    await writeFile(file, unit.text);
    print(file);
  } else process.stdout.write(unit.text);
}

// ---------- attach ----------

/** `barge attach [--no-stdin] [--sig-proxy] [--detach-keys] [-l] CONTAINER` */
export async function attachCmd(g: GlobalOptions, args: string[], o: Opts): Promise<number> {
  const store = await openStore(g);
  const { attachContainer, DEFAULT_DETACH_KEYS, parseDetachKeys } = await import('../../containers/attach.ts');
  const { ref } = containerAndRest(store, args, o);
  const detachKeys = str(o.detachKeys) ?? DEFAULT_DETACH_KEYS;
  try {
    parseDetachKeys(detachKeys);
    return await attachContainer(store, ref, { stdin: o.stdin !== false, sigProxy: boolOpt(o.sigProxy, '--sig-proxy'), detachKeys });
  } catch (e) {
    if (e instanceof StoreError && e.code === 'notfound') throw new ExitError(e.message, 125);
    return rethrow(e);
  }
}
