// Podman-style container lifecycle on the shared store: create, start (detached under conmon, or
// in the foreground), stop, kill, wait, cleanup and remove. No barge process stays behind for a
// detached container: its state is read back from conmon's exit file and /proc.

import { existsSync, readFileSync, statSync, watch, type FSWatcher } from 'node:fs';
import { chmod, copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { PassThrough } from 'node:stream';
import { join, resolve } from 'node:path';
import type { CheckIssue, ContainerRecord, Store } from '../store/store.ts';
import { StoreError } from '../store/store.ts';
import { resolveInRoot } from '../store/secure-path.ts';
import { getImage, platformImage, readImageConfig } from '../image/local-images.ts';
import { buildSpec, DEFAULT_PATH, runtimeHasCgroups, serializeSpec, type MountSpec, type RuntimeSpec } from '../runtime/spec.ts';
import { findRuntime, isExecutableFile, lookPath, runContainer, type RuntimeInfo } from '../runtime/oci-runtime.ts';
import { resolveGroups, resolveUser } from '../runtime/user.ts';
import { createWithConmon, readExitFile, runtimeDelete, runtimeFreeze, runtimeStart, ContainerStartError } from '../runtime/conmon.ts';
import { exec } from '../sys/exec.ts';
import { randomHex } from '../sys/lazy-builtins.ts';
import { makeOwnNetns, ownNetnsPath, releaseOwnNetns, useOwnNetns } from './netns.ts';
import {
  bridgeHostLines, bridgeResolvConf, isBridgeMode, leaseHolders, parseBridgeNetworks, refuseNetworkOptions, releaseLeases, setupBridge, teardownBridge, type BridgeState,
} from './bridge.ts';
import { DEFAULT_SLIRP_OPTIONS, exitPipe, parsePublish, parseSlirpMode, slirpAddress, slirpSocketPath, startSlirp, stopSlirp } from './slirp.ts';
import { isAlive, processStart } from '../sys/proc.ts';
import { mergeEnv, parseMounts, parseVolumes, readEnvFiles, tmpfsOptions } from '../primitives/run.ts';
import { setKeyValues } from '../primitives/config.ts';
import {
  CONTAINER_NAME, ContainerError, containerPaths, initialState, isActive, joinsPodNetwork, loadContainer, randomName, reload, saveContainer,
  type Container, type ContainerConfig, type ContainerPaths, type ContainerState, type PodContainer, type RestartPolicy,
} from './record.ts';
import type { ContainerUserns } from '../sys/userns.ts';
import { readLog, teeToLog, writeEntries } from './logs.ts';
import { addedDevices, checkExtraHost, extraHostLines, parseDevice } from './host-access.ts';
import { checkCapabilities, lastOfEachType, parseMemory, parseSecurityOpts, parseShmSize, parseUlimit } from './shared-run-flags.ts';
import { removeAnonymousVolumes, splitVolumeArgs, volumeMountSpecs, volumesOf, withVolumes } from './volumes.ts';
import {
  addPasswdEntries, checkPersonality, checkPreservedFds, checkSdNotify, checkSeccompPolicy, checkSystemd, defaultEnv, imageVolumes, parseExpose, parseOomScoreAdj,
  parseSysctls, parseUmask, timezoneFile, type EnvOptions,
} from './podman-run-options.ts';
import { copyContainerSecrets, parseSecretUses, secretEnv, secretMounts } from './secrets.ts';
import { healthAtStart, healthConfigFor, type HealthOptions } from './health.ts';
import { containerEvent } from './events.ts';
import type { PodNamespace } from './pods.ts';

export { ContainerStartError };
// Defined beside the container records, so that volumes.ts can extend it without importing this module.
export { ContainerError } from './record.ts';

/** The options kept in the container's config as given. */
type PlainOptions = 'timezone' | 'passwd' | 'passwdEntry' | 'hostUsers' | 'personality' | 'pidFile' | 'preserveFds' | 'timeout' | 'detachKeys' | 'sdNotify';

export interface CreateOptions extends Partial<Pick<ContainerConfig, PlainOptions>> {
  image: string;
  command: string[];
  name?: string;
  /** undefined: the image's; '' clears it; a JSON array or a plain command string. */
  entrypoint?: string;
  env?: string[];
  envFiles?: string[];
  workingDir?: string;
  user?: string;
  volumes?: string[];
  mounts?: string[];
  tmpfs?: string[];
  readOnly?: boolean;
  readOnlyTmpfs?: boolean;
  hostname?: string;
  capAdd?: string[];
  capDrop?: string[];
  network?: string;
  /** --ip, --mac-address and --network-alias: for the one bridge network. */
  ip?: string;
  macAddress?: string;
  networkAliases?: string[];
  /** -p/--publish values. */
  publish?: string[];
  /** -P/--publish-all: the exposed ports to free host ports. */
  publishAll?: boolean;
  labels?: string[];
  stopSignal?: string;
  stopTimeout?: number;
  logDriver?: string;
  pidsLimit?: number;
  memory?: string;
  cpus?: number;
  ulimits?: string[];
  terminal?: boolean;
  interactive?: boolean;
  rm?: boolean;
  restart?: string;
  runtime?: string;
  securityOpt?: string[];
  privileged?: boolean;
  createCommand?: string[];
  conmonPidFile?: string;
  userns?: ContainerUserns;
  /** --init: catatonit as the container's pid 1, forwarding signals and reaping zombies. */
  init?: boolean;
  /** --init-path, else containers.conf's init_path; the default locations when neither. */
  initPath?: string;
  /** --add-host HOST:IP values. */
  addHost?: string[];
  noHosts?: boolean;
  /** --group-add names or numbers, or keep-groups alone. */
  groupAdd?: string[];
  /** --shm-size as given (64m, 1g, bytes). */
  shmSize?: string;
  /** --device HOST[:CONTAINER][:PERMISSIONS] values. */
  devices?: string[];
  /** The image `image` names, already resolved (pulled) for the platform asked for. */
  imageId?: string;
  /** --image-volume: bind (default), tmpfs or ignore. */
  imageVolume?: string;
  /** --unsetenv, --unsetenv-all, --env-merge, --env-host, --http-proxy. */
  envOptions?: EnvOptions;
  labelFiles?: string[];
  annotations?: string[];
  expose?: string[];
  umask?: string;
  sysctls?: string[];
  oomScoreAdj?: string;
  systemd?: string;
  seccompPolicy?: string;
  /** --secret NAME[,type=…][,target=…][,uid=,gid=,mode=] values. */
  secrets?: string[];
  /** --health-*, --no-healthcheck. */
  health?: HealthOptions;
  /** --pod: the name or id of the pod the container joins. */
  pod?: string;
  /** pods.ts making a pod's infra container: the pod, and the namespaces its containers will join. */
  infraOf?: { id: string; share: PodNamespace[] };
}

const lockName = (id: string): string => `container:${id}`;

/** The mode of a container's root directory, as containers/storage makes it. */
export const ROOTFS_MODE = 0o555;

/** Where Podman bind-mounts the init of --init, and so where its command lines show it. */
export const INIT_DESTINATION = '/run/podman-init';

const DEFAULT_INIT_PATH = '/usr/libexec/podman/catatonit';

/** The configured init, else Podman's default init_path, else catatonit anywhere in PATH. */
function findInit(configured: string | undefined): string {
  if (configured !== undefined) {
    if (!isExecutableFile(configured)) throw new ContainerError(`container-init binary not found on the host: stat ${configured}: no such executable file`);
    return resolve(configured);
  }
  const found = isExecutableFile(DEFAULT_INIT_PATH) ? DEFAULT_INIT_PATH : lookPath('catatonit');
  if (!found) throw new ContainerError(`container-init binary not found on the host: --init needs catatonit (install the "catatonit" package, or set init_path in containers.conf)`);
  return found;
}

/** The process the runtime starts: the command, behind the init when there is one. */
export function processArgs(cfg: ContainerConfig): string[] {
  const command = [...cfg.entrypoint, ...cfg.cmd];
  return cfg.init ? [INIT_DESTINATION, '--', ...command] : command;
}

/** "SIGTERM", "TERM", "term", "15" → 15. */
export function signalNumber(sig: string): number {
  const s = sig.trim();
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    if (n < 1 || n > 64) throw new ContainerError(`invalid signal: ${sig}`);
    return n;
  }
  const up = s.toUpperCase();
  const name = up.startsWith('SIG') ? up : `SIG${up}`;
  const n = (os.constants.signals as Record<string, number>)[name];
  if (n === undefined) throw new ContainerError(`invalid signal: ${sig}`);
  return n;
}

/** Podman's /dev/shm size when --shm-size is not given (what its inspect shows, and mounts: 64000k). */
export const DEFAULT_SHM_SIZE = 65_536_000;

/** The annotation that has crun leave the groups barge runs with to the container (--group-add keep-groups). */
const KEEP_GROUPS_ANNOTATION = 'run.oci.keep_original_groups';

/**
 * --group-add values: empty ones dropped, as Podman's; keep-groups, which only crun implements,
 * alone, and recorded as the annotation crun reads.
 */
function groupAddOf(values: readonly string[], runtimeName: string): { groupAdd: string[]; annotations: Record<string, string> } {
  const groupAdd = values.filter((g) => g !== '');
  if (!groupAdd.includes('keep-groups')) return { groupAdd, annotations: {} };
  if (groupAdd.length > 1) throw new ContainerError("the '--group-add keep-groups' option is not allowed with any other --group-add options");
  if (runtimeName !== 'crun') throw new ContainerError(`the '--group-add keep-groups' option needs the crun runtime: ${runtimeName} cannot keep barge's supplementary groups`);
  return { groupAdd: [], annotations: { [KEEP_GROUPS_ANNOTATION]: '1' } };
}

function parseRestart(v: string | undefined): RestartPolicy {
  if (!v || v === 'no') return { name: 'no', maxRetries: 0 };
  const [name, n] = v.split(':');
  if (name === 'on-failure') {
    const max = n === undefined ? 0 : Number(n);
    if (!Number.isInteger(max) || max < 0) throw new ContainerError(`invalid restart policy "${v}"`);
    return { name, maxRetries: max };
  }
  if ((name === 'always' || name === 'unless-stopped') && n === undefined) return { name, maxRetries: 0 };
  throw new ContainerError(`invalid restart policy "${v}": use no, on-failure[:N], always or unless-stopped`);
}

function parseCommandString(v: string): string[] {
  const t = v.trim();
  if (t.startsWith('[')) {
    try {
      const a: unknown = JSON.parse(t);
      if (Array.isArray(a) && a.every((x) => typeof x === 'string')) return a as string[];
    } catch {
      // not JSON: a plain command
    }
  }
  return [v];
}

/** `podman create`: the container row, its config, and nothing running yet. */
export async function createContainer(store: Store, o: CreateOptions): Promise<Container> {
  const img = await platformImage(store, getImage(store, o.imageId ?? o.image), o.image);
  const imgCfg = (await readImageConfig(store, img)).config ?? {};
  const entrypoint = o.entrypoint === undefined ? (imgCfg.Entrypoint ?? []) : o.entrypoint === '' ? [] : parseCommandString(o.entrypoint);
  // A new entrypoint drops the image's Cmd, as with Podman.
  const cmd = o.command.length > 0 ? o.command : o.entrypoint !== undefined ? [] : (imgCfg.Cmd ?? []);
  if (entrypoint.length === 0 && cmd.length === 0) throw new ContainerError('no command or entrypoint provided, and no CMD or ENTRYPOINT from image');
  checkSystemd(o.systemd, [...entrypoint, ...cmd]);
  checkSdNotify(o.sdNotify);
  checkSeccompPolicy(o.seccompPolicy);
  checkPersonality(o.personality);
  const oomScoreAdj = parseOomScoreAdj(o.oomScoreAdj);
  if (o.detachKeys !== undefined) (await import('./attach.ts')).parseDetachKeys(o.detachKeys);
  if (o.name !== undefined && !CONTAINER_NAME.test(o.name)) {
    throw new ContainerError('running container create option: names must match [a-zA-Z0-9][a-zA-Z0-9_.-]*: invalid argument');
  }
  // Checked here, as by Podman, so that no container is made that could never start.
  checkCapabilities([...(o.capAdd ?? []), ...(o.capDrop ?? [])]);
  const initPath = o.init ? findInit(o.initPath) : undefined;
  // A container of a pod takes the network and hostname of the namespaces it shares with the pod.
  const pods = o.pod !== undefined ? await import('./pods.ts') : undefined;
  const member = await pods?.memberSettings(store, o.pod!, o);
  if (member?.network !== undefined) o = { ...o, network: member.network };
  if (member?.hostname !== undefined) o = { ...o, hostname: member.hostname };
  const pod = member?.pod ?? o.infraOf;

  const publishing = (o.publish ?? []).length > 0 || !!o.publishAll;
  // Published ports need a network to reach them through: slirp4netns, as rootless Podman's default.
  const networkArg = o.network ?? (publishing ? 'slirp4netns' : 'private');
  const slirp = parseSlirpMode(networkArg);
  const bridged = !slirp && isBridgeMode(networkArg);
  const network = slirp ? 'slirp4netns' : bridged ? 'bridge' : networkArg;
  if (!['host', 'none', 'private', 'slirp4netns', 'bridge'].includes(network)) {
    throw new ContainerError(`unsupported network mode "${network}": barge supports none, host, private, slirp4netns, bridge and the names of bridge networks`);
  }
  const addressing = { ip: o.ip, mac: o.macAddress, aliases: o.networkAliases };
  if (!bridged) refuseNetworkOptions(network, addressing);
  const networks = bridged ? parseBridgeNetworks(store, networkArg, addressing) : undefined;
  if (publishing && network === 'private') {
    throw new ContainerError('barge\'s private network has only a loopback interface, so no ports to publish: use --network slirp4netns (the default with -p)');
  }
  // Podman's warning, and the ports dropped: these modes have no network of the container's own to publish from.
  if (publishing && (network === 'host' || network === 'none')) process.stderr.write('Port mappings have been discarded as one of the Host, Container, Pod, and None network modes are in use\n');
  const logDriver = o.logDriver === undefined || o.logDriver === 'json-file' || o.logDriver === 'k8s-file' ? 'k8s-file' : o.logDriver;
  if (logDriver !== 'k8s-file' && logDriver !== 'none') throw new ContainerError(`unsupported log driver "${o.logDriver}" (k8s-file, json-file, none)`);

  const fromFiles = await readEnvFiles(o.envFiles ?? []);
  const envOptions = o.envOptions ?? {};
  const env = mergeEnv(defaultEnv([DEFAULT_PATH, 'TERM=xterm', 'container=podman', ...(imgCfg.Env ?? [])], envOptions), [...fromFiles, ...(o.env ?? [])]);

  const labels = setKeyValues({ ...(imgCfg.Labels ?? {}) }, [...(await readEnvFiles(o.labelFiles ?? [], 'label')), ...(o.labels ?? [])]);
  const split = splitVolumeArgs(o.volumes ?? [], o.mounts ?? []);
  const mounts: MountSpec[] = [...parseVolumes(split.binds), ...parseMounts(split.mounts)];
  for (const t of o.tmpfs ?? []) {
    const [dst, opts] = t.split(':');
    if (!dst || !dst.startsWith('/')) throw new ContainerError(`invalid tmpfs "${t}": expected CONTAINER-DIR[:OPTIONS]`);
    mounts.push({ destination: dst, type: 'tmpfs', source: 'tmpfs', options: tmpfsOptions(opts ? opts.split(',') : [], t) });
  }
  for (const m of mounts) {
    if (m.type === 'bind' && !existsSync(m.source)) throw new ContainerError(`statfs ${m.source}: no such file or directory`);
  }
  imageVolumes(o.imageVolume, Object.keys(imgCfg.Volumes ?? {}), mounts, split.requests);
  const security = parseSecurityOpts(o.securityOpt ?? []);
  const rt = findRuntime(o.runtime);
  if (o.noHosts && (o.addHost ?? []).length > 0) throw new ContainerError('--no-hosts and --add-host cannot be set together');
  const extraHosts = (o.addHost ?? []).map(checkExtraHost);
  const { groupAdd, annotations: groupAnnotations } = groupAddOf(o.groupAdd ?? [], rt.name);
  const annotations = setKeyValues(groupAnnotations, o.annotations ?? []);
  const sysctl = parseSysctls(o.sysctls ?? [], network);
  // The image's EXPOSE too, as Podman lists them.
  const expose = parseExpose([...Object.keys(imgCfg.ExposedPorts ?? {}), ...(o.expose ?? [])]);
  if (o.timezone !== undefined) timezoneFile(o.timezone);
  const devices = (o.devices ?? []).map(parseDevice);
  const shmSize = o.shmSize === undefined ? undefined : parseShmSize(o.shmSize);
  const resources: ContainerConfig['resources'] = {};
  if (o.memory !== undefined) resources.memory = parseMemory(o.memory);
  if (o.cpus !== undefined) resources.cpus = o.cpus;
  if (o.pidsLimit !== undefined && o.pidsLimit > 0) resources.pidsLimit = o.pidsLimit;
  const stopSignal = o.stopSignal ?? imgCfg.StopSignal ?? 'SIGTERM';
  signalNumber(stopSignal);
  const secrets = parseSecretUses(store, o.secrets ?? []);
  const health = healthConfigFor(imgCfg.Healthcheck, o.health ?? {});
  const ports = network === 'slirp4netns' || network === 'bridge' ? await parsePublish(o.publish ?? [], o.publishAll ? expose : []) : [];

  const config: ContainerConfig = {
    image: o.image, imageId: img.id, entrypoint, cmd, env, workingDir: o.workingDir ?? (imgCfg.WorkingDir || '/'),
    // keep-id runs the command as the user's own ids unless --user says otherwise (as Podman).
    user: o.user ?? (o.userns?.user ? `${o.userns.user.uid}:${o.userns.user.gid}` : (imgCfg.User ?? '')), hostname: o.hostname ?? '', labels, annotations, mounts,
    readOnly: !!o.readOnly, readOnlyTmpfs: o.readOnlyTmpfs ?? true, capAdd: o.capAdd ?? [], capDrop: o.capDrop ?? [],
    network: network as ContainerConfig['network'], stopSignal, stopTimeout: o.stopTimeout ?? 10, logDriver,
    resources, ulimits: lastOfEachType((o.ulimits ?? []).map(parseUlimit)), terminal: !!o.terminal, interactive: !!o.interactive,
    autoRemove: !!o.rm, restart: parseRestart(o.restart), runtime: rt.path, runtimeName: rt.name, init: !!o.init,
    ...(initPath !== undefined && { initPath }),
    ...(slirp && { slirp }),
    ...(networks && { networks }),
    ...(ports.length > 0 && { ports }),
    noNewPrivileges: security.noNewPrivileges,
    ...(security.seccompUnconfined && { seccompUnconfined: true }),
    ...(o.privileged && { privileged: true }),
    ...(o.createCommand && { createCommand: o.createCommand }),
    ...(o.conmonPidFile !== undefined && { conmonPidFile: resolve(o.conmonPidFile) }),
    ...(o.userns && { userns: o.userns }),
    ...(extraHosts.length > 0 && { extraHosts }),
    ...(o.noHosts && { noHosts: true }),
    ...(groupAdd.length > 0 && { groupAdd }),
    ...(shmSize !== undefined && { shmSize }),
    ...(devices.length > 0 && { devices }),
    ...((envOptions.unsetEnvAll || (envOptions.unsetEnv ?? []).length > 0) && { envComplete: true }),
    ...(expose.length > 0 && { expose }),
    ...(o.timezone !== undefined && { timezone: o.timezone }),
    ...(o.umask !== undefined && { umask: parseUmask(o.umask) }),
    ...(o.passwd === false && { passwd: false }),
    ...(o.passwdEntry !== undefined && { passwdEntry: o.passwdEntry }),
    ...((o.hostUsers ?? []).length > 0 && { hostUsers: o.hostUsers }),
    ...(Object.keys(sysctl).length > 0 && { sysctl }),
    ...(oomScoreAdj !== undefined && { oomScoreAdj }),
    ...(o.personality !== undefined && { personality: o.personality }),
    ...(o.pidFile !== undefined && { pidFile: resolve(o.pidFile) }),
    ...(o.preserveFds && { preserveFds: o.preserveFds }),
    ...(o.timeout && { timeout: o.timeout }),
    ...(o.detachKeys !== undefined && { detachKeys: o.detachKeys }),
    ...(o.sdNotify !== undefined && { sdNotify: o.sdNotify }),
    ...(secrets.length > 0 && { secrets }),
    ...health,
    ...(pod && { podShare: pod.share }),
    ...(o.infraOf && { infra: true }),
  };
  if (config.autoRemove && config.restart.name !== 'no') throw new ContainerError('the --rm option conflicts with --restart');
  const data: PodContainer = { kind: 'podman-container', config, state: initialState() };
  const defaultHostname = !config.hostname;
  return withVolumes(store, split.requests, async (volumes) => {
    if (volumes.length) config.volumes = volumes;
    for (let attempt = 0; ; attempt++) {
      try {
        // The id is chosen here so the default hostname (its first 12 digits) is in the first write.
        const id = randomHex(32);
        if (defaultHostname) config.hostname = id.slice(0, 12);
        const row = {
          id, name: o.name ?? randomName(), kind: 'container' as const, imageId: img.id, imageName: img.names[0] ?? null, data: JSON.stringify(data),
          ...(pod && { podId: pod.id }),
        };
        const make = async (): Promise<ContainerRecord> => {
          const record = await store.createContainer(row);
          // containers/storage gives a container's root directory 0555 (its layers' "./" entries aside,
          // which barge ignores). Podman containers see that mode, and CRIU checks it on restore: a
          // checkpoint restores under Podman only if it was taken with the same.
          await chmod(store.upperDir(record), ROOTFS_MODE);
          await copyContainerSecrets(store, record.id, config).catch(async (e: unknown) => {
            await store.deleteContainer(record).catch(() => undefined);
            throw e;
          });
          return record;
        };
        // A member is made whole under the pod's lock, which `pod rm` holds while it removes the pod's containers.
        const record = member ? await store.withLock(`pod:${member.pod.id}`, make) : await make();
        containerEvent(store, { record, data }, 'create');
        return { record, data };
      } catch (e) {
        if (!(e instanceof StoreError && e.code === 'conflict') || o.name !== undefined || attempt > 20) throw e;
      }
    }
  });
}

export function runtimeOf(c: Container): RuntimeInfo {
  return { name: c.data.config.runtimeName, path: c.data.config.runtime };
}

export function pathsOf(store: Store, c: Container): ContainerPaths {
  const cfg = c.data.config;
  const p = containerPaths(store, c.record.id, cfg.runtimeName);
  return { ...p, ...(cfg.conmonPidFile && { conmonPidFile: cfg.conmonPidFile }), ...(cfg.pidFile && { pidFile: cfg.pidFile }) };
}

/**
 * The per-container files Podman bind-mounts, with their content. Podman's layout is kept so that
 * a checkpoint's mount tree is the one Podman rebuilds on restore: no /etc/resolv.conf without a
 * network, and an (empty, as for unprivileged containers) /run/.containerenv that tells programs
 * they run in a container.
 */
export function containerFiles(cfg: ContainerConfig, name = '', bridge?: BridgeState): { name: string; destination: string; content: string }[] {
  // On a bridge the container's own addresses name it, as in Podman's hosts file.
  const self = cfg.network === 'bridge' && bridge?.result ? bridgeHostLines(bridge, cfg.hostname, name) : `127.0.1.1\t${cfg.hostname}\n`;
  const hosts = `${extraHostLines(cfg.extraHosts ?? [])}127.0.0.1\tlocalhost localhost.localdomain\n::1\tlocalhost ip6-localhost ip6-loopback\n${self}`;
  const out = [{ name: 'hostname', destination: '/etc/hostname', content: `${cfg.hostname}\n` }];
  if (!cfg.noHosts) out.push({ name: 'hosts', destination: '/etc/hosts', content: hosts });
  // slirp4netns answers DNS itself, at its network's address + 3.
  const resolv = cfg.network === 'host' ? readFileOr('/etc/resolv.conf')
    : cfg.network === 'slirp4netns' ? `nameserver ${slirpAddress(cfg.slirp?.cidr, 3)}\n`
    : cfg.network === 'bridge' ? bridgeResolvConf(bridge) : '';
  if (cfg.network !== 'none') out.push({ name: 'resolv.conf', destination: '/etc/resolv.conf', content: resolv });
  out.push({ name: '.containerenv', destination: '/run/.containerenv', content: '' });
  return out;
}

/** The gids of the container's --group-add, in its mounted rootfs; Podman's error (126) for one it lacks. */
export function addedGroups(c: Container, rootfs: string): Promise<number[]> {
  return resolveGroups(rootfs, c.data.config.groupAdd ?? []).catch((e: unknown) => {
    throw new ContainerError(`looking up supplemental groups for container ${c.record.id}: ${(e as Error).message}`, 126);
  });
}

/** Mounts the rootfs and writes the bundle; returns the spec (also written as config.json). */
async function prepare(store: Store, c: Container): Promise<RuntimeSpec> {
  const cfg = c.data.config;
  const p = pathsOf(store, c);
  // A pod member on the pod's bridge is named by the infra container's addresses and uses its DNS.
  const podBridge = c.record.podId && cfg.network === 'bridge' && joinsPodNetwork(cfg) ? (await import('./pods.ts')).infraBridgeState(store, c.record.podId) : undefined;
  const files = containerFiles(cfg, c.record.name, podBridge);
  const writeFiles = async (): Promise<void> => {
    await mkdir(p.userdata, { recursive: true, mode: 0o700 });
    await mkdir(p.run, { recursive: true, mode: 0o700 });
    await Promise.all(files.map((f) => writeFile(join(p.userdata, f.name), f.content)));
  };
  // The mount is a child process: write the container's files meanwhile.
  const [rootfs] = await Promise.all([store.mountContainer(c.record, { volatile: cfg.autoRemove }), writeFiles()]);
  // Podman's exit status for a container that cannot run its command as asked: 126.
  const user = await resolveUser(rootfs, cfg.user).catch((e: unknown) => {
    throw new ContainerError((e as Error).message, 126);
  });
  const addedHome = await addPasswdEntries(rootfs, cfg, user, c.record.id);
  if (addedHome !== undefined) user.home = addedHome;
  const groups = await addedGroups(c, rootfs);
  if (!cfg.workingDir.startsWith('/')) throw new ContainerError(`workdir "${cfg.workingDir}" does not exist on container ${c.record.id}`, 126);
  if (cfg.workingDir !== '/') {
    const host = await resolveInRoot(rootfs, cfg.workingDir);
    await mkdir(host, { recursive: true });
  }
  const bind = (f: (typeof files)[number]): MountSpec => ({ destination: f.destination, type: 'bind', source: join(p.userdata, f.name), options: ['rbind', 'rprivate'] });
  const mounts: MountSpec[] = files.filter((f) => f.destination.startsWith('/etc/')).map(bind);
  if (cfg.readOnly && cfg.readOnlyTmpfs) {
    for (const d of ['/run', '/tmp', '/var/tmp']) {
      if (![...cfg.mounts, ...volumesOf(cfg)].some((m) => m.destination === d)) {
        mounts.push({ destination: d, type: 'tmpfs', source: 'tmpfs', options: ['rw', 'rprivate', 'nosuid', 'nodev', 'tmpcopyup'] });
      }
    }
  }
  mounts.push(...cfg.mounts, ...(await volumeMountSpecs(store, cfg, rootfs, user)));
  if (cfg.timezone !== undefined) {
    // A copy, as Podman's: the zone the container saw at its start, whatever the host's changes.
    await copyFile(timezoneFile(cfg.timezone), join(p.userdata, 'localtime'));
    mounts.push({ destination: '/etc/localtime', type: 'bind', source: join(p.userdata, 'localtime'), options: ['rbind', 'rprivate'] });
  }
  if (cfg.initPath !== undefined) mounts.push({ destination: INIT_DESTINATION, type: 'bind', source: cfg.initPath, options: ['bind', 'ro', 'rprivate'] });
  // Last, so that no tmpfs on /run hides them.
  mounts.push(...files.filter((f) => !f.destination.startsWith('/etc/')).map(bind), ...secretMounts(store, c.record.id, cfg));
  const env = mergeEnv([...cfg.env], await secretEnv(store, cfg));
  if (!env.some((e) => e.startsWith('HOSTNAME='))) env.push(`HOSTNAME=${cfg.hostname}`);
  if (!env.some((e) => e.startsWith('HOME='))) env.push(`HOME=${user.home || '/'}`);
  const spec = buildSpec({
    rootfs, readonlyRootfs: cfg.readOnly, args: processArgs(cfg), env, cwd: cfg.workingDir,
    // As Podman: a named user (--user, or the image's USER) keeps its primary group among its groups.
    uid: user.uid, gid: user.gid, additionalGids: [...(cfg.user !== '' ? [user.gid] : []), ...user.additionalGids, ...groups],
    terminal: cfg.terminal, hostname: cfg.hostname,
    network: cfg.network, capAdd: cfg.capAdd, capDrop: cfg.capDrop, mounts, rlimits: cfg.ulimits,
    noNewPrivileges: cfg.noNewPrivileges, resources: cfg.resources, seccomp: !cfg.seccompUnconfined, privileged: !!cfg.privileged,
    shmSize: cfg.shmSize ?? DEFAULT_SHM_SIZE, devices: addedDevices(cfg.devices ?? []), annotations: cfg.annotations,
    ...(cfg.userns?.uidMappings && { uidMappings: cfg.userns.uidMappings, gidMappings: cfg.userns.gidMappings ?? cfg.userns.uidMappings }),
    ...(cfg.userns?.path !== undefined && { userNamespacePath: cfg.userns.path }),
    ...(cfg.umask !== undefined && { umask: parseInt(cfg.umask, 8) }),
    ...(cfg.sysctl && { sysctl: cfg.sysctl }),
    ...(cfg.oomScoreAdj !== undefined && { oomScoreAdj: cfg.oomScoreAdj }),
    ...(cfg.personality !== undefined && { personality: cfg.personality }),
    ...(cfg.envComplete && { envComplete: true }),
    ...(c.record.podId && !cfg.infra && { namespacePaths: (await import('./pods.ts')).podNamespacePaths(store, c) }),
  });
  return spec;
}

function readFileOr(f: string): string {
  try {
    return readFileSync(f, 'utf8');
  } catch {
    return '';
  }
}

/**
 * The container's state as it is now: a running container whose conmon wrote an exit file, or
 * whose processes are gone, has exited even if nobody recorded it yet.
 */
export function liveState(store: Store, c: Container): ContainerState {
  const s = c.data.state;
  if (!isActive(s.status)) return s;
  if (s.monitor === 'conmon') {
    const ex = readExitFile(pathsOf(store, c).exitDir, c.record.id);
    if (ex) return { ...s, status: 'exited', exitCode: ex.code, finishedAt: ex.at.toISOString(), pid: 0 };
    if (isAlive(s.pid, s.pidStart)) return s;
    // The process is gone; a live conmon is about to write the exit file.
    if (s.monitorPid > 0 && isAlive(s.monitorPid, s.monitorStart)) return s;
    return { ...s, status: 'exited', exitCode: s.exitCode ?? -1, finishedAt: s.finishedAt ?? new Date().toISOString(), pid: 0, error: 'the container monitor (conmon) died' };
  }
  if (isAlive(s.monitorPid, s.monitorStart)) return s;
  return { ...s, status: 'exited', exitCode: s.exitCode ?? -1, finishedAt: s.finishedAt ?? new Date().toISOString(), pid: 0, error: 'barge, which ran it in the foreground, died' };
}

export function isRunning(store: Store, c: Container): boolean {
  return isActive(liveState(store, c).status);
}

/**
 * What conmon runs when the container exits: `container cleanup`, unless a `stop` is under way,
 * which cleans up itself. The check is the shell's, so that a stop does not share the machine with
 * a second barge starting up only to find nothing left to do.
 */
function exitCommand(store: Store, c: Container, rm: boolean): string[] {
  const script = process.argv[1] ?? '';
  return [
    '/bin/sh', '-c', 'test -e "$0" || exec "$@"', pathsOf(store, c).stopping,
    process.execPath, ...process.execArgv, '--', script,
    '--root', store.root, '--runroot', store.runroot, '--storage-driver', store.driver,
    'container', 'cleanup', ...(rm ? ['--rm'] : []), c.record.id,
  ];
}

/** Runtime state left over from an earlier run (a crash, or a failed start) would make create fail. */
async function clearRuntime(store: Store, c: Container): Promise<void> {
  const p = pathsOf(store, c);
  // Before the namespace goes: netavark's teardown works inside it.
  if (c.data.config.network === 'bridge') {
    const had = c.data.state.bridge !== undefined;
    await teardownBridge(store, c.record.id, c.data.state.bridge, ownNetnsPath(p.run)).catch((e: unknown) => {
      process.stderr.write(`Error: tearing down the network of container ${c.record.id}: ${(e as Error).message}\n`);
    });
    delete c.data.state.bridge;
    if (had) saveContainer(store, c);
  }
  // Independent processes (runtime delete, umount): run side by side.
  await Promise.all([
    existsSync(join(p.stateRoot, c.record.id)) ? runtimeDelete(runtimeOf(c), p.stateRoot, c.record.id) : undefined,
    rm(join(p.socketDir, c.record.id), { force: true }),
    releaseOwnNetns(p.run),
    c.data.config.network === 'slirp4netns' ? stopSlirp(c.data.state.slirp, slirpSocketPath(store.runroot, c.record.id)) : undefined,
  ]);
  delete c.data.state.slirp;
}

/**
 * Once the container's processes are gone: its runtime state, attach socket, network namespace
 * and rootfs mount are released.
 */
export async function releaseContainer(store: Store, c: Container): Promise<void> {
  await Promise.all([clearRuntime(store, c), store.unmountContainer(c.record).catch(() => undefined)]);
}

/** Whether the restart policy asks for another run of a container that has exited in state `s`. */
export function restartDue(policy: RestartPolicy, s: ContainerState): boolean {
  if (policy.name === 'no' || s.stoppedByUser || s.status !== 'exited') return false;
  if (policy.name === 'on-failure') return s.exitCode !== 0 && (policy.maxRetries === 0 || s.restartCount < policy.maxRetries);
  return true; // always, unless-stopped (they differ only at boot, where a systemd unit starts the container)
}

export interface StartOptions {
  /**
   * Started by the restart policy (conmon's exit command), not by the user: only if the policy
   * still asks for it once the lock is held, and the restart count goes up instead of to zero.
   */
  byPolicy?: boolean;
  /** Restore from a checkpoint instead of starting afresh (see containers/checkpoint.ts). */
  restore?: RestoreRequest;
  /** Runs once conmon has created the container and before it starts (to attach without missing output). */
  beforeStart?: (c: Container, p: ContainerPaths) => Promise<void>;
  /** A foreground barge removes the --rm container itself, once it has its exit code (conmon's exit command does not). */
  removedByCaller?: boolean;
  /** `podman init`: the runtime creates the container under conmon and it is left "initialized", its process not started. */
  initOnly?: boolean;
}

/** How checkpoint.ts has a container restored by CRIU under conmon, through the same path as start. */
export interface RestoreRequest {
  /** CRIU image directory. */
  imagePath: string;
  /** Extra `RUNTIME restore` options, e.g. --tcp-established. */
  runtimeOpts: string[];
  /** The spec to restore with, given the one a fresh start would use (rootfs mounted, bundle files written). */
  adaptSpec(fresh: RuntimeSpec, c: Container): Promise<RuntimeSpec>;
}

/** `podman start` (and `run -d`): the container runs under conmon; barge returns once it is started. */
export async function startDetached(store: Store, ref: string, o: StartOptions = {}): Promise<Container> {
  const first = loadContainer(store, ref);
  await startPodInfraOf(store, first);
  return store.withLock(lockName(first.record.id), async () => {
    const c = reload(store, first);
    const initialized = c.data.state.status === 'initialized' && isAlive(c.data.state.pid, c.data.state.pidStart);
    if (o.initOnly && (initialized || isRunning(store, c))) throw new ContainerError(`container ${c.record.id} has already been created in runtime: container state improper`);
    if (isRunning(store, c)) {
      if (o.restore) throw new ContainerError(`cannot restore container ${c.record.id}: it is running: container state improper`);
      return c;
    }
    if (initialized && !o.restore) return startInitialized(store, c);
    if (o.byPolicy && !restartDue(c.data.config.restart, c.data.state)) return c;
    // Podman counts restarts made by the policy; a start by the user begins the count again.
    const restartCount = o.byPolicy ? c.data.state.restartCount + 1 : 0;
    const p = pathsOf(store, c);
    const rt = runtimeOf(c);
    await clearRuntime(store, c);
    // Both are child processes (mount, unshare): side by side. Only a host network needs no namespace.
    const podNet = joinsPodNetwork(c.data.config);
    const netns = c.data.config.network === 'host' || podNet ? Promise.resolve(false) : makeOwnNetns(p.run);
    // Settled both, so that a failed mount never releases a namespace unshare is still making.
    const [prepared, madeNetns] = await Promise.allSettled([prepare(store, c), netns]);
    let spec: RuntimeSpec;
    try {
      if (prepared.status === 'rejected') throw prepared.reason;
      spec = o.restore ? await o.restore.adaptSpec(prepared.value, c) : prepared.value;
    } catch (e) {
      await releaseOwnNetns(p.run).catch(() => undefined);
      throw e;
    }
    const ownNetns = useOwnNetns(spec, p.run, madeNetns.status === 'fulfilled' && madeNetns.value);
    if (!ownNetns) await releaseOwnNetns(p.run);
    await writeFile(join(p.userdata, 'config.json'), serializeSpec(spec), { mode: 0o600 });
    if (c.data.config.logDriver === 'k8s-file' && !existsSync(p.logPath)) await writeFile(p.logPath, '');
    const arg0 = spec.process.args[0] ?? '';
    const fail = async (e: unknown): Promise<never> => {
      c.data.state = { ...c.data.state, status: c.data.state.startedAt ? 'exited' : 'created', monitor: null, pid: 0, error: (e as Error).message };
      saveContainer(store, c);
      // The start's own error is the one to report.
      await releaseContainer(store, c).catch(() => undefined);
      throw e;
    };
    // A pod's bridge is its infra container's, whose namespace the member joins.
    if (c.data.config.network === 'bridge' && !podNet) {
      try {
        await connectBridge(store, c, p, ownNetns);
      } catch (e) {
        return fail(e);
      }
    }
    // A restart by the policy happens in conmon's exit command, which has no descriptors to pass.
    const preserveFds = o.byPolicy ? 0 : (c.data.config.preserveFds ?? 0);
    // Left by a stop that died waiting: this run's exit must be cleaned up.
    await rm(p.stopping, { force: true });
    const cfg = c.data.config;
    let started;
    let slirpExit: Awaited<ReturnType<typeof exitPipe>> | undefined;
    try {
      if (preserveFds) checkPreservedFds(preserveFds);
      // A pod's slirp4netns is its infra container's.
      if (cfg.network === 'slirp4netns' && !podNet) slirpExit = await exitPipe(p.run);
      started = await createWithConmon({
        runtime: rt, stateRoot: p.stateRoot, id: c.record.id, name: c.record.name, bundleDir: p.userdata, exitDir: p.exitDir,
        socketDir: p.socketDir, containerPidFile: p.pidFile, conmonPidFile: p.conmonPidFile,
        logPath: c.data.config.logDriver === 'k8s-file' ? p.logPath : null, terminal: c.data.config.terminal,
        stdin: c.data.config.interactive, exitCommand: exitCommand(store, c, c.data.config.autoRemove && !o.removedByCaller), arg0,
        ...(o.restore && { restore: { imagePath: o.restore.imagePath, runtimeOpts: o.restore.runtimeOpts } }),
        ...(preserveFds && { preserveFds }),
        ...(c.data.config.timeout && { timeout: c.data.config.timeout }),
        ...(slirpExit && { heldFd: slirpExit.monitorEnd }),
      });
    } catch (e) {
      slirpExit?.close();
      return fail(e);
    }
    const pidStart = processStart(started.pid);
    const conmonStart = started.conmonPid > 0 ? processStart(started.conmonPid) : '0';
    const startedAt = new Date().toISOString();
    try {
      // Once the runtime has made the container's network namespace, before its command runs.
      if (slirpExit) {
        const exitFd = slirpExit.slirpEnd;
        c.data.state.slirp = await startSlirp({
          pid: started.pid, socket: slirpSocketPath(store.runroot, c.record.id), logPath: join(p.run, 'slirp4netns.log'), exitFd,
          options: cfg.slirp ?? DEFAULT_SLIRP_OPTIONS, ports: cfg.ports ?? [],
        }).finally(() => slirpExit?.close());
      }
      await o.beforeStart?.(c, p);
      // A restored container is already running.
      if (!o.restore && !o.initOnly) await runtimeStart(rt, p.stateRoot, c.record.id, arg0);
    } catch (e) {
      return fail(e);
    }
    c.data.state = {
      ...c.data.state, status: o.initOnly ? 'initialized' : 'running', monitor: 'conmon', pid: started.pid, pidStart, monitorPid: started.conmonPid,
      monitorStart: conmonStart, startedAt: o.initOnly ? c.data.state.startedAt : startedAt, finishedAt: null, stoppedByUser: false, error: '', restartCount, ...healthAtStart(c.data.config, c.data.state),
      // A restart keeps the previous run's exit code visible, as Podman's inspect does.
      exitCode: o.byPolicy ? c.data.state.exitCode : null,
    };
    saveContainer(store, c);
    for (const status of o.restore ? ['restore'] : o.initOnly ? ['init'] : ['init', 'start']) containerEvent(store, c, status);
    return c;
  });
}

/** A container of a pod needs its pod's infra container running first: its namespaces are joined. */
async function startPodInfraOf(store: Store, c: Container): Promise<void> {
  if (c.record.podId && !c.data.config.infra) await (await import('./pods.ts')).startPodInfra(store, c.record.podId);
}

/**
 * Sets up the container's bridge networks in its namespace (before the runtime joins it), and
 * gives it the hosts and resolv.conf that name its addresses and aardvark-dns.
 */
async function connectBridge(store: Store, c: Container, p: ContainerPaths, ownNetns: boolean): Promise<void> {
  if (!ownNetns) throw new ContainerError("a bridge network needs a network namespace of barge's own: as root, with iproute2's ip and util-linux's unshare");
  const cfg = c.data.config;
  c.data.state.bridge = await setupBridge(store, { id: c.record.id, name: c.record.name, networks: cfg.networks ?? {}, ports: cfg.ports ?? [] }, ownNetnsPath(p.run), (s) => {
    c.data.state.bridge = s;
    saveContainer(store, c);
  });
  const files = containerFiles(cfg, c.record.name, c.data.state.bridge).filter((f) => f.name === 'hosts' || f.name === 'resolv.conf');
  await Promise.all(files.map((f) => writeFile(join(p.userdata, f.name), f.content)));
}

/** `start` of an initialized container (`podman init`): the runtime starts the process it created. */
async function startInitialized(store: Store, c: Container): Promise<Container> {
  const p = pathsOf(store, c);
  // The spec init wrote: its first argument names the command in the runtime's errors.
  const spec = JSON.parse(readFileSync(join(p.userdata, 'config.json'), 'utf8')) as RuntimeSpec;
  await runtimeStart(runtimeOf(c), p.stateRoot, c.record.id, spec.process.args[0] ?? '');
  c.data.state = {
    ...c.data.state, status: 'running', startedAt: new Date().toISOString(), stoppedByUser: false, error: '', restartCount: 0, ...healthAtStart(c.data.config, c.data.state),
  };
  saveContainer(store, c);
  containerEvent(store, c, 'start');
  return c;
}

/**
 * `podman run` without -d, `start -a`: the container runs with barge as its monitor and barge's
 * stdio. Output is also appended to the container's log unless stdin or a terminal is attached.
 * Resolves with the container's exit code (125/126/127 for failures to start it).
 */
export async function startAttached(store: Store, ref: string, o: { sigProxy?: boolean; attach?: readonly string[] } = {}): Promise<number> {
  const first = loadContainer(store, ref);
  const id = first.record.id;
  await startPodInfraOf(store, first);
  // Under conmon also when a terminal is asked for and barge has none to give: conmon makes the
  // pty, as Podman's run -t does in a CI job.
  // And with a slirp4netns network, which must be started between the runtime's create and start,
  // or a bridge, set up in a namespace of barge's (a foreground runtime makes its own).
  if (first.data.config.restart.name !== 'no' || first.data.config.network === 'slirp4netns' || first.data.config.network === 'bridge' || (first.data.config.terminal && !(await import('node:tty')).isatty(0))) {
    return startFollowing(store, id, o);
  }
  const prep = await store.withLock(lockName(id), async () => {
    const c = reload(store, first);
    if (isRunning(store, c)) throw new ContainerError(`container ${c.record.name} is already running`);
    const spec = await prepare(store, c);
    const p = pathsOf(store, c);
    await clearRuntime(store, c);
    c.data.state = {
      ...c.data.state, status: 'running', monitor: 'barge', pid: 0, pidStart: '0', monitorPid: process.pid,
      monitorStart: processStart(process.pid), exitCode: null, startedAt: new Date().toISOString(), finishedAt: null,
      stoppedByUser: false, error: '', ...healthAtStart(c.data.config, c.data.state),
    };
    saveContainer(store, c);
    for (const status of ['init', 'start', 'attach']) containerEvent(store, c, status);
    return { c, spec, p };
  });
  const { c, spec, p } = prep;
  const cfg = c.data.config;
  const attachedIn = cfg.interactive || cfg.terminal;
  const log = cfg.logDriver === 'k8s-file' ? p.logPath : null;
  // -a: a stream not attached still goes to the log.
  const shown = (stream: 'stdout' | 'stderr'): NodeJS.WritableStream => (!o.attach?.length || o.attach.includes(stream) ? process[stream] : new PassThrough().resume());
  let code: number;
  let error = '';
  let timedOut = false;
  const timer = cfg.timeout
    ? setTimeout(() => {
        timedOut = true;
        void signalContainer(store, id, 'SIGKILL').catch(() => undefined);
      }, cfg.timeout * 1000)
    : undefined;
  try {
    if (cfg.preserveFds) checkPreservedFds(cfg.preserveFds);
    code = await runContainer({
      runtime: runtimeOf(c), bundleDir: p.userdata, spec, id, stateRoot: p.stateRoot, sigProxy: o.sigProxy ?? true,
      ...(cfg.pidFile !== undefined && { pidFile: cfg.pidFile }),
      ...(cfg.preserveFds && { preserveFds: cfg.preserveFds }),
      ...(attachedIn
        ? { stdio: 'inherit' as const, stdin: cfg.interactive }
        : { stdio: 'pipe' as const, stdout: teeToLog(shown('stdout'), 'stdout', log), stderr: teeToLog(shown('stderr'), 'stderr', log) }),
    });
    // As conmon's --timeout: the container killed for it exits with -1.
    if (timedOut) code = -1;
  } catch (e) {
    code = 125;
    error = (e as Error).message;
    process.stderr.write(`Error: ${error}\n`);
  } finally {
    clearTimeout(timer);
  }
  await store.withLock(lockName(id), async () => {
    let now: Container;
    try {
      now = reload(store, c);
    } catch {
      return; // removed meanwhile (rm -f)
    }
    containerEvent(store, now, 'died', { exitCode: code });
    if (cfg.autoRemove) {
      // Straight to removal: recording the exit of a container about to vanish is wasted work.
      await clearRuntime(store, now);
      await store.deleteContainer(now.record).then(() => containerEvent(store, now, 'remove'), () => undefined);
      return;
    }
    now.data.state = { ...now.data.state, status: 'exited', monitor: null, pid: 0, exitCode: code, finishedAt: new Date().toISOString(), error };
    saveContainer(store, now);
    await store.unmountContainer(now.record).catch(() => undefined);
    containerEvent(store, now, 'cleanup');
  });
  // Once the row is gone, so that the volumes no longer count it as a user.
  if (cfg.autoRemove) await removeAnonymousVolumes(store, c.data.config).catch(() => undefined);
  return code & 0xff;
}

/**
 * The foreground run of a container with a restart policy (the policy must outlive barge), or with
 * a terminal barge cannot give: conmon monitors it as for `run -d`, and barge relays the first
 * run, and removes an --rm container once it has its exit code. Its output comes from the
 * log (conmon may accept the attach connection only after the container has written): the attach
 * socket, connected before the start, carries stdin, and the output too when there is no log.
 * Resolves with the first run's exit code, as Podman's does; the policy may restart it.
 */
async function startFollowing(store: Store, id: string, o: { sigProxy?: boolean }): Promise<number> {
  const { connectAttachSocket, proxySignals, relayAttach, DEFAULT_DETACH_KEYS } = await import('./attach.ts');
  const before = loadContainer(store, id);
  const cfg = before.data.config;
  const log = cfg.logDriver === 'k8s-file' ? pathsOf(store, before).logPath : null;
  const from = log ? sizeOr0(log) : 0;
  if (isRunning(store, before)) throw new ContainerError(`container ${before.record.name} is already running`);
  let sock: Awaited<ReturnType<typeof connectAttachSocket>> | undefined;
  const c = await startDetached(store, id, {
    beforeStart: async (_c, p) => {
      if (cfg.interactive || !log) sock = await connectAttachSocket(p.userdata);
    },
    removedByCaller: cfg.autoRemove,
  });
  const runs = c.data.state.restartCount;
  let code: number | null = null;
  const firstRunOver = (): boolean => {
    let now: Container;
    try {
      now = reload(store, c);
    } catch {
      code ??= -1;
      return true;
    }
    const s = liveState(store, now);
    if (isActive(s.status) && s.restartCount === runs) return false;
    code ??= s.exitCode ?? -1;
    return true;
  };
  const unproxy = (o.sigProxy ?? true) && !cfg.terminal ? proxySignals(store, id) : () => {};
  const stopRelay = new AbortController();
  try {
    const relay = sock
      ? relayAttach(sock, {
          terminal: cfg.terminal, stdin: cfg.interactive, detachKeys: cfg.detachKeys ?? DEFAULT_DETACH_KEYS, ctlPath: join(pathsOf(store, c).userdata, 'ctl'),
          output: !log, signal: stopRelay.signal,
        })
      : undefined;
    let detached = false;
    void relay?.then((how) => (detached = how === 'detached'));
    if (log) {
      await readLog(log, from, (e) => writeEntries(e), () => !detached && !firstRunOver());
      stopRelay.abort();
    } else await relay;
    // Detached (the detach keys on stdin), an --rm container stays until `rm`: conmon was told
    // to leave the removal to this process.
    if (detached) return 0;
    while (!firstRunOver()) await new Promise((r) => setTimeout(r, 20));
    if (cfg.autoRemove) await removeContainer(store, id, { force: true, volumes: true }).catch(() => undefined);
    return code ?? -1;
  } finally {
    unproxy();
  }
}

function sizeOr0(f: string): number {
  try {
    return statSync(f).size;
  } catch {
    return 0;
  }
}

/**
 * conmon's exit command (and what stop/rm do afterwards): records the exit, releases the runtime
 * state and the rootfs mount, and removes an --rm container. Quietly does nothing for a container
 * that is gone or still running.
 */
export async function cleanupContainer(store: Store, ref: string, o: { rm?: boolean; restart?: boolean } = {}): Promise<void> {
  let c: Container;
  try {
    c = loadContainer(store, ref);
  } catch {
    return;
  }
  const running = await store.withLock(lockName(c.record.id), async () => {
    c = reload(store, c);
    const live = liveState(store, c);
    if (isActive(live.status)) return true;
    const exitSeen = live !== c.data.state;
    if (exitSeen) {
      c.data.state = { ...live, monitor: null };
      saveContainer(store, c);
      containerEvent(store, c, 'died', { exitCode: live.exitCode });
    }
    await releaseContainer(store, c);
    if (exitSeen) containerEvent(store, c, 'cleanup');
    return false;
  });
  if (running) return;
  // No daemon watches the container: conmon's exit command is where the restart policy acts.
  if (o.restart && restartDue(c.data.config.restart, c.data.state)) {
    try {
      await startDetached(store, c.record.id, { byPolicy: true });
    } catch {
      // startDetached recorded why in the container's state; trying again would only loop.
    }
    return;
  }
  if ((o.rm ?? false) && c.data.config.autoRemove) await removeContainer(store, c.record.id, { force: false, volumes: true }).catch(() => undefined);
}

/**
 * The user stops, kills or removes the container: its restart policy must not bring it back.
 * Set under the lock before any signal, so the cleanup that runs when the process dies sees it;
 * also when the process has just exited and that cleanup has yet to run.
 */
export async function markStoppedByUser(store: Store, ref: string, stopping = false): Promise<Container> {
  const first = loadContainer(store, ref);
  return store.withLock(lockName(first.record.id), async () => {
    const c = reload(store, first);
    if (c.data.state.status === 'created') return c;
    c.data.state.stoppedByUser = true;
    if (stopping && c.data.state.status === 'running') c.data.state.status = 'stopping';
    saveContainer(store, c);
    return c;
  });
}

/** Polls until the container has exited; false after timeoutMs. */
export async function waitExited(store: Store, ref: string, timeoutMs = Infinity): Promise<ContainerState | null> {
  const deadline = Date.now() + timeoutMs;
  let c = loadContainer(store, ref);
  // conmon's exit file is the first sign of an exit: watching its directory wakes us at once
  // (the poll stays, for exits no file reports: a foreground barge or a conmon that died).
  let wake: (() => void) | undefined;
  let watcher: FSWatcher | undefined;
  if (c.data.state.monitor === 'conmon') {
    try {
      watcher = watch(pathsOf(store, c).exitDir, () => wake?.());
      watcher.on('error', () => undefined);
    } catch {
      // No exit dir yet: polling alone.
    }
  }
  try {
    for (let delay = 10; ; delay = Math.min(delay * 2, 200)) {
      const st = liveState(store, c);
      if (st.status === 'exited' || st.status === 'created') return st;
      if (Date.now() >= deadline) return null;
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(delay, Math.max(1, deadline - Date.now())));
        wake = () => {
          clearTimeout(t);
          r();
        };
      });
      try {
        c = reload(store, c);
      } catch {
        // Removed (an --rm container): it has exited.
        return { ...c.data.state, status: 'exited' };
      }
    }
  } finally {
    watcher?.close();
  }
}

/**
 * For `system check`: bridge addresses that no set-up network holds, left by a container whose
 * cleanup never ran (its conmon killed, or the barge that started it killed midway) or by one
 * removed meanwhile. Repaired by that cleanup, which tears the network down and gives them back.
 */
export function leaseIssues(store: Store): CheckIssue[] {
  const out: CheckIssue[] = [];
  for (const [id, n] of leaseHolders(store)) {
    // Being started or cleaned up right now.
    if (store.lockHeld(lockName(id))) continue;
    const c = store.findContainer(id) ? loadContainer(store, id) : undefined;
    if (c && isRunning(store, c)) continue;
    out.push(c
      ? { what: `container ${c.record.name} is not running but holds ${n} network address(es)`, repair: 'tear down its network', fix: () => cleanupContainer(store, id) }
      : { what: `removed container ${id.slice(0, 12)} holds ${n} network address(es)`, repair: 'release them', fix: async () => releaseLeases(store, id) });
  }
  return out;
}

/** Delivers a signal to the container's init process. */
export async function signalContainer(store: Store, ref: string, sig: string): Promise<Container> {
  const c = loadContainer(store, ref);
  const n = signalNumber(sig);
  const s = liveState(store, c);
  if (!isActive(s.status)) {
    throw new ContainerError(`can only kill running containers. ${c.record.id} is in state ${s.status}: container state improper`);
  }
  if (s.monitor === 'conmon' && isAlive(s.pid, s.pidStart)) {
    try {
      process.kill(s.pid, n);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
    }
    // A frozen process only dies once thawed; other signals wait, pending, for `unpause`.
    if (s.status === 'paused' && n === os.constants.signals.SIGKILL) await runtimeFreeze(runtimeOf(c), pathsOf(store, c).stateRoot, c.record.id, false).catch(() => undefined);
    return c;
  }
  const p = pathsOf(store, c);
  const r = await exec(c.data.config.runtime, ['--root', p.stateRoot, 'kill', c.record.id, String(n)], { check: false });
  if (r.exitCode !== 0 && isRunning(store, reload(store, c))) throw new ContainerError(`${c.data.config.runtimeName} kill: ${r.stderr.trim()}`);
  return c;
}

/** `podman pause` and `podman unpause`: the runtime freezes or thaws the container's processes. */
export async function pauseContainer(store: Store, ref: string, pause: boolean): Promise<Container> {
  const first = loadContainer(store, ref);
  return store.withLock(lockName(first.record.id), async () => {
    const c = reload(store, first);
    const s = liveState(store, c);
    const id = c.record.id;
    if (pause && s.status === 'paused') throw new ContainerError(`"${id}" is already paused: container state improper`);
    if (pause && s.status !== 'running') throw new ContainerError(`"${s.status}" is not running, can't pause: container state improper`);
    if (!pause && s.status !== 'paused') throw new ContainerError(`"${id}" is not paused, can't unpause: container state improper`);
    // The freezer is a cgroup's: Podman's message where the runtime made none.
    if (pause && !runtimeHasCgroups()) throw new ContainerError('can not pause containers on rootless containers with cgroup V1: this container does not have a cgroup');
    try {
      await runtimeFreeze(runtimeOf(c), pathsOf(store, c).stateRoot, id, pause);
    } catch (e) {
      throw new ContainerError((e as Error).message);
    }
    c.data.state.status = pause ? 'paused' : 'running';
    saveContainer(store, c);
    containerEvent(store, c, pause ? 'pause' : 'unpause');
    return c;
  });
}

/** `podman stop`: the stop signal, then SIGKILL after `timeoutSec`; returns once it has exited. */
export async function stopContainer(store: Store, ref: string, timeoutSec?: number): Promise<Container> {
  // A frozen container could not act on the stop signal: thaw it first.
  if (liveState(store, loadContainer(store, ref)).status === 'paused') await pauseContainer(store, ref, false);
  const c = await markStoppedByUser(store, ref, true);
  // An --rm container is removed by conmon's exit command; any other's cleanup is this stop's own.
  const marker = c.data.config.autoRemove ? undefined : pathsOf(store, c).stopping;
  try {
    if (isRunning(store, c)) {
      if (marker) await writeFile(marker, '').catch(() => undefined);
      const t = timeoutSec ?? c.data.config.stopTimeout;
      let exited = null;
      if (t > 0) {
        await signalContainer(store, c.record.id, c.data.config.stopSignal).catch(() => undefined);
        exited = await waitExited(store, c.record.id, t * 1000);
      }
      if (!exited) {
        await signalContainer(store, c.record.id, 'SIGKILL').catch(() => undefined);
        exited = await waitExited(store, c.record.id, 30_000);
        if (!exited) throw new ContainerError(`container ${c.record.name} did not exit after SIGKILL`);
      }
    }
    await cleanupContainer(store, c.record.id);
  } finally {
    if (marker) await rm(marker, { force: true });
  }
  containerEvent(store, c, 'stop');
  return c;
}

/** `podman rm`: a running container needs force (then it is killed first); `volumes` (rm -v, --rm) removes its anonymous volumes too. */
/** `rm`: with `force` a running container is killed first, or with `stopTimeout` (rm -t) stopped as `stop -t` does. */
export async function removeContainer(store: Store, ref: string, o: { force: boolean; volumes?: boolean; stopTimeout?: number; podRemoval?: boolean }): Promise<string> {
  let c = loadContainer(store, ref);
  if (c.data.config.infra && !o.podRemoval) {
    throw new ContainerError(`container ${c.record.id} is the infra container of pod ${c.record.podId} and cannot be removed without removing the pod`);
  }
  if (isRunning(store, c)) {
    if (!o.force) {
      throw new ContainerError(
        `cannot remove container ${c.record.id} as it is running - running or paused containers cannot be removed without force: container state improper`,
        2,
      );
    }
    if (o.stopTimeout !== undefined) await stopContainer(store, c.record.id, o.stopTimeout);
    await markStoppedByUser(store, c.record.id);
    await signalContainer(store, c.record.id, 'SIGKILL').catch(() => undefined);
    if (!(await waitExited(store, c.record.id, 30_000))) throw new ContainerError(`container ${c.record.name} did not exit after SIGKILL`);
  }
  const removed = await store.withLock(lockName(c.record.id), async () => {
    try {
      c = reload(store, c);
    } catch {
      return false;
    }
    await clearRuntime(store, c);
    await store.deleteContainer(c.record);
    containerEvent(store, c, 'remove');
    return true;
  });
  // Once the row is gone, so that the volumes no longer count it as a user.
  if (removed && o.volumes) await removeAnonymousVolumes(store, c.data.config);
  return c.record.id;
}
