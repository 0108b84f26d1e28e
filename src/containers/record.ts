// A Podman-style container as kept in the store: a row of kind 'container' whose data is this JSON.

import { randomBelow } from '../sys/lazy-builtins.ts';
import { join } from 'node:path';
import type { ContainerRecord, Store } from '../store/store.ts';
import { StoreError } from '../store/store.ts';
import type { ContainerUserns } from '../sys/userns.ts';
import type { MountSpec } from '../runtime/spec.ts';
import type { VolumeMount } from './volumes.ts';
import type { HealthConfig } from '../image/types.ts';
import type { SecretUse } from './secrets.ts';
import type { HealthState } from './health.ts';
import type { PortMapping, SlirpOptions, SlirpProcess } from './slirp.ts';
import type { PodNamespace } from './pods.ts';
import type { BridgeState, NetworkAttachment } from './bridge.ts';

export type RestartPolicy = { name: 'no' | 'always' | 'on-failure' | 'unless-stopped'; maxRetries: number };

/** What `create`/`run` decided; fixed for the container's life. */
export interface ContainerConfig {
  /** The image reference as the user gave it. */
  image: string;
  imageId: string;
  entrypoint: string[];
  cmd: string[];
  env: string[];
  workingDir: string;
  user: string;
  hostname: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  mounts: MountSpec[];
  /** Named and anonymous volumes (containers/volumes.ts), mounted at start; absent in older records. */
  volumes?: VolumeMount[];
  readOnly: boolean;
  readOnlyTmpfs: boolean;
  capAdd: string[];
  capDrop: string[];
  network: 'host' | 'none' | 'private' | 'slirp4netns' | 'bridge';
  /** --network slirp4netns:OPTIONS (the defaults when absent). */
  slirp?: SlirpOptions;
  /** --network bridge|NAME[,NAME…]: the bridge networks by name, in order (eth0, eth1, …). */
  networks?: Record<string, NetworkAttachment>;
  /** -p/-P: host ports forwarded into the container by its slirp4netns, or by netavark on a bridge. */
  ports?: PortMapping[];
  stopSignal: string;
  stopTimeout: number;
  logDriver: 'k8s-file' | 'none';
  resources: { memory?: number; cpus?: number; pidsLimit?: number };
  ulimits: { type: string; soft: number; hard: number }[];
  terminal: boolean;
  interactive: boolean;
  autoRemove: boolean;
  restart: RestartPolicy;
  /** Runtime path chosen at create time, so every later verb talks to the same runtime. */
  runtime: string;
  runtimeName: string;
  /** --init: the command runs under an init process (lifecycle.ts processArgs). */
  init: boolean;
  /** The host's init binary, bind-mounted read-only for --init; fixed at create so restarts use the same. */
  initPath?: string;
  noNewPrivileges: boolean;
  /** --security-opt seccomp=unconfined: no seccomp filter. */
  seccompUnconfined?: boolean;
  /** --privileged (see SpecOptions.privileged). */
  privileged?: boolean;
  /** barge's arguments when it created the container (for `generate systemd --new`). */
  createCommand?: string[];
  /** --conmon-pidfile: where conmon writes its pid instead of the runroot. */
  conmonPidFile?: string;
  /** --userns, --uidmap, --gidmap: a user namespace of the container's own. */
  userns?: ContainerUserns;
  /** --add-host HOST:IP entries, first in the container's /etc/hosts. */
  extraHosts?: string[];
  /** --no-hosts: no /etc/hosts of barge's; the image's is left as it is. */
  noHosts?: boolean;
  /** --group-add names and numbers, looked up in the container's /etc/group at each start. */
  groupAdd?: string[];
  /** --shm-size in bytes; Podman's 65536000 when absent. */
  shmSize?: number;
  /** --device mappings, the host's nodes looked up at each start. */
  devices?: DeviceMapping[];
  /** --unsetenv/--unsetenv-all: env is complete, nothing (PATH, TERM) is added at start. */
  envComplete?: boolean;
  /** --expose: "PORT/PROTO" keys. */
  expose?: string[];
  /** --tz: an IANA zone or "local", bound over /etc/localtime at each start. */
  timezone?: string;
  /** --umask as four octal digits. */
  umask?: string;
  /** --passwd=false: no entries added to the container's /etc/passwd and /etc/group. */
  passwd?: boolean;
  /** --passwd-entry template. */
  passwdEntry?: string;
  /** --hostuser names, copied from the host's /etc/passwd when the image lacks them. */
  hostUsers?: string[];
  sysctl?: Record<string, string>;
  oomScoreAdj?: number;
  /** --personality execution domain (LINUX, LINUX32). */
  personality?: string;
  /** --pidfile: where the runtime writes the container's pid instead of the runroot. */
  pidFile?: string;
  /** --preserve-fds: descriptors 3… of the starting barge passed into the container. */
  preserveFds?: number;
  /** --timeout seconds after which the container is killed. */
  timeout?: number;
  /** --detach-keys of a foreground run under conmon. */
  detachKeys?: string;
  /** --sdnotify (conmon or ignore; Podman's default "container" when absent). */
  sdNotify?: string;
  /** --secret uses (containers/secrets.ts); only names and ids, never the content. */
  secrets?: SecretUse[];
  /** --health-* or the image's HEALTHCHECK, as Podman's inspect shows it (Test ["NONE"]: none). */
  healthcheck?: HealthConfig;
  /** --health-on-failure: none (when absent), kill, restart or stop. */
  healthOnFailure?: string;
  /** The namespaces a container of a pod (record.podId) joins from the pod's infra container. */
  podShare?: PodNamespace[];
  /** The infra container of its pod: holds the shared namespaces, removed only with the pod. */
  infra?: boolean;
}

/** One --device: the host's path (symbolic links resolved), the container's, and the cgroup access (r, w, m). */
export interface DeviceMapping {
  pathOnHost: string;
  pathInContainer: string;
  permissions: string;
}

/** 'initialized': created by the runtime (`podman init`), its process not yet started. */
export type Status = 'created' | 'initialized' | 'running' | 'stopping' | 'paused' | 'exited';

/** A container whose process exists: running, being stopped, or frozen by `pause`. */
export function isActive(status: Status): boolean {
  return status === 'running' || status === 'stopping' || status === 'paused';
}

export interface ContainerState {
  status: Status;
  /** 'conmon' for detached containers; 'barge' while a foreground `run`/`start -a` watches it. */
  monitor: 'conmon' | 'barge' | null;
  pid: number;
  /** /proc start time of pid, so a reused pid is never taken for the container. */
  pidStart: string;
  monitorPid: number;
  monitorStart: string;
  exitCode: number | null;
  startedAt: string | null;
  finishedAt: string | null;
  /** The user stopped it: restart policies other than always leave it alone. */
  stoppedByUser: boolean;
  restartCount: number;
  error: string;
  /** The slirp4netns of the container's network (--network slirp4netns), while it runs. */
  slirp?: SlirpProcess;
  /** The container's bridge networks (containers/bridge.ts) while they are set up: torn down with this. */
  bridge?: BridgeState;
  /** The results of `healthcheck run` (containers/health.ts); absent until the first start with a healthcheck. */
  health?: HealthState;
}

export interface PodContainer {
  kind: 'podman-container';
  config: ContainerConfig;
  state: ContainerState;
  /** Set once the container was checkpointed or restored (containers/checkpoint.ts). */
  checkpoint?: CheckpointState;
}

export interface CheckpointState {
  /** A checkpoint is stored with the container and can be restored. */
  checkpointed: boolean;
  checkpointedAt: string | null;
  restored: boolean;
  restoredAt: string | null;
}

/** A container's checkpoint (CRIU's images) and CRIU's logs, in its userdata as in Podman's bundle. */
export function checkpointPaths(userdata: string): { images: string; dumpLog: string; restoreLog: string } {
  return { images: join(userdata, 'checkpoint'), dumpLog: join(userdata, 'dump.log'), restoreLog: join(userdata, 'restore.log') };
}

export interface Container {
  record: ContainerRecord;
  data: PodContainer;
}

export function isPodContainer(r: ContainerRecord): boolean {
  return r.kind === 'container';
}

export function loadContainer(store: Store, ref: string): Container {
  const record = store.findContainer(ref);
  if (!record || record.kind !== 'container') {
    throw new StoreError(`no container with name or ID "${ref}" found: no such container`, 'notfound');
  }
  return { record, data: JSON.parse(record.data) as PodContainer };
}

/** Re-reads the row (another process may have changed it). */
export function reload(store: Store, c: Container): Container {
  return loadContainer(store, c.record.id);
}

export function saveContainer(store: Store, c: Container): void {
  c.record.data = JSON.stringify(c.data);
  store.updateContainerData(c.record.id, c.record.data);
}

export function initialState(): ContainerState {
  return {
    status: 'created', monitor: null, pid: 0, pidStart: '0', monitorPid: 0, monitorStart: '0', exitCode: null,
    startedAt: null, finishedAt: null, stoppedByUser: false, restartCount: 0, error: '',
  };
}

export interface ContainerPaths {
  /** Persistent per-container data: bundle (config.json), log, etc files. */
  userdata: string;
  logPath: string;
  /** Volatile (runroot) data: exit file, pid files, attach socket links. */
  run: string;
  /** Present while a `stop` that cleans the container up itself waits for it (see exitCommand in lifecycle.ts). */
  stopping: string;
  exitDir: string;
  conmonPidFile: string;
  pidFile: string;
  stateRoot: string;
  socketDir: string;
}

export function containerPaths(store: Store, id: string, runtimeName: string): ContainerPaths {
  const userdata = join(store.containerDir(id), 'userdata');
  const run = store.containerRunDir(id);
  return {
    userdata,
    logPath: join(userdata, 'ctr.log'),
    run,
    exitDir: join(run, 'exits'),
    stopping: join(run, 'stopping'),
    conmonPidFile: join(run, 'conmon.pid'),
    pidFile: join(run, 'pidfile'),
    stateRoot: join(store.runroot, `oci-${runtimeName}`),
    socketDir: join(store.runroot, 'socket'),
  };
}

const ADJECTIVES = [
  'admiring', 'agitated', 'amazing', 'angry', 'awesome', 'blissful', 'bold', 'brave', 'charming', 'clever', 'cool',
  'compassionate', 'competent', 'confident', 'crazy', 'dazzling', 'determined', 'eager', 'ecstatic', 'elastic',
  'elegant', 'epic', 'festive', 'focused', 'friendly', 'gallant', 'gifted', 'goofy', 'gracious', 'happy', 'hopeful',
  'hungry', 'inspiring', 'jolly', 'keen', 'kind', 'laughing', 'loving', 'lucid', 'magical', 'modest', 'musing',
  'nervous', 'nice', 'nifty', 'nostalgic', 'optimistic', 'peaceful', 'pensive', 'practical', 'priceless', 'quirky',
  'quizzical', 'relaxed', 'reverent', 'romantic', 'serene', 'sharp', 'silly', 'sleepy', 'stoic', 'strange',
  'suspicious', 'sweet', 'tender', 'thirsty', 'trusting', 'upbeat', 'vibrant', 'vigilant', 'wizardly', 'wonderful',
  'xenodochial', 'youthful', 'zealous', 'zen',
];
const NOUNS = [
  'albattani', 'allen', 'archimedes', 'babbage', 'banach', 'bardeen', 'bell', 'blackwell', 'bohr', 'booth', 'borg',
  'brahmagupta', 'cannon', 'carson', 'cerf', 'curie', 'darwin', 'dijkstra', 'edison', 'einstein', 'euclid', 'euler',
  'faraday', 'fermat', 'fermi', 'feynman', 'galileo', 'gauss', 'goldberg', 'goodall', 'hamilton', 'hawking',
  'heisenberg', 'hopper', 'hypatia', 'johnson', 'kepler', 'knuth', 'lalande', 'lamarr', 'leakey', 'lovelace',
  'lumiere', 'mayer', 'mccarthy', 'meitner', 'mendel', 'morse', 'newton', 'nobel', 'noether', 'pascal', 'pasteur',
  'perlman', 'pike', 'poincare', 'ptolemy', 'ramanujan', 'ride', 'ritchie', 'rubin', 'shannon', 'shockley', 'sinoussi',
  'stonebraker', 'swanson', 'tesla', 'thompson', 'torvalds', 'turing', 'volhard', 'wescoff', 'wilbur', 'wiles',
  'wing', 'wozniak', 'wright', 'yalow', 'yonath',
];

/** An error with Podman's exit status for it. */
export class ContainerError extends Error {
  constructor(
    message: string,
    readonly exitCode = 125,
  ) {
    super(message);
    this.name = 'ContainerError';
  }
}

/** The names Podman accepts for a container. */
export const CONTAINER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** A Podman-style random name ("happy_turing"). */
export function randomName(): string {
  return `${ADJECTIVES[randomBelow(ADJECTIVES.length)]}_${NOUNS[randomBelow(NOUNS.length)]}`;
}

/** Whether the container uses its pod's network namespace (and so starts no network of its own). */
export function joinsPodNetwork(cfg: ContainerConfig): boolean {
  return !cfg.infra && (cfg.podShare ?? []).includes('net');
}
