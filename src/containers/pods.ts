// Podman-style pods: a row in the store's pods table (the options of `pod create`), an infra
// container that holds the namespaces the pod's containers share, and member containers whose
// rows name the pod (containers.pod_id). The infra container is an ordinary container of
// lifecycle.ts, started and stopped under conmon as any other; a member joins its namespaces
// through /proc/INFRA_PID/ns/... in its OCI spec.

import { readFileSync, readlinkSync } from 'node:fs';
import { Readable } from 'node:stream';
import { lookPath } from '../runtime/oci-runtime.ts';
import { hexOf, sha256 } from '../store/hashing.ts';
import { StoreError, type PodRecord, type Store } from '../store/store.ts';
import type { NamespaceType } from '../runtime/spec.ts';
import { randomHex } from '../sys/lazy-builtins.ts';
import { setKeyValues } from '../primitives/config.ts';
import {
  createContainer, isRunning, liveState, markStoppedByUser, removeContainer, signalContainer, signalNumber, startDetached, stopContainer,
  type CreateOptions,
} from './lifecycle.ts';
import { CONTAINER_NAME, ContainerError, isActive, loadContainer, type Container, type ContainerConfig, type ContainerState } from './record.ts';
import { writeEvent } from './events.ts';

/** The namespaces `--share` may name, as Podman's. */
export type PodNamespace = 'cgroup' | 'ipc' | 'net' | 'pid' | 'uts';
const NAMESPACES: readonly PodNamespace[] = ['cgroup', 'ipc', 'net', 'pid', 'uts'];
/** Kubernetes' set, Podman's default. */
const DEFAULT_SHARE: readonly PodNamespace[] = ['ipc', 'net', 'uts'];
/** The OCI spec's name of each. */
const SPEC_NAMESPACE: Record<PodNamespace, NamespaceType> = { cgroup: 'cgroup', ipc: 'ipc', net: 'network', pid: 'pid', uts: 'uts' };

/** What `pod create` decided; kept as the pod row's data. */
export interface PodData {
  hostname: string;
  labels: Record<string, string>;
  /** The namespaces its containers join from the infra container (empty without one). */
  share: PodNamespace[];
  createInfra: boolean;
  createCommand: string[];
}

export interface Pod {
  record: PodRecord;
  data: PodData;
}

export interface PodCreateOptions {
  name?: string;
  /** false: --infra=false. */
  infra?: boolean;
  infraImage?: string;
  /** --infra-command: a JSON array or a command string. */
  infraCommand?: string;
  infraName?: string;
  /** --share values as given (a leading "+" adds to the default set). */
  share?: string;
  labels?: string[];
  hostname?: string;
  publish?: string[];
  network?: string;
  createCommand?: string[];
}

export function parseShare(v: string | undefined): PodNamespace[] {
  if (v === undefined) return [...DEFAULT_SHARE];
  const add = v.startsWith('+');
  const named = (add ? v.slice(1) : v).split(',').map((s) => s.trim()).filter((s) => s !== '' && s !== 'none');
  for (const n of named) {
    if (n === 'user') throw new ContainerError('--share user: sharing the user namespace of a pod is not supported yet');
    if (!NAMESPACES.includes(n as PodNamespace)) throw new ContainerError(`invalid kernel namespace to share: ${n}. Options are: cgroup, ipc, net, pid, uts or none`);
  }
  return [...new Set([...(add ? DEFAULT_SHARE : []), ...(named as PodNamespace[])])];
}

export function podEvent(store: Store, pod: PodRecord, status: string): void {
  writeEvent(store, { ID: pod.id, Name: pod.name, Status: status, Type: 'pod', Attributes: null });
}

export function loadPod(store: Store, ref: string): Pod {
  let record: PodRecord | undefined;
  try {
    record = store.findPod(ref);
  } catch (e) {
    throw new ContainerError((e as Error).message);
  }
  if (!record) throw new ContainerError(`no pod with name or ID ${ref} found: no such pod`);
  return { record, data: JSON.parse(record.data) as PodData };
}

export function listPods(store: Store): Pod[] {
  return store.listPods().map((record) => ({ record, data: JSON.parse(record.data) as PodData }));
}

const podLock = (id: string): string => `pod:${id}`;

/** `podman pod create`: the pod's row, then its infra container (not started, as Podman's). */
export async function createPod(store: Store, o: PodCreateOptions): Promise<Pod> {
  if (o.name !== undefined && !CONTAINER_NAME.test(o.name)) throw new ContainerError('pod name must match [a-zA-Z0-9][a-zA-Z0-9_.-]*: invalid argument');
  let share = parseShare(o.share);
  const createInfra = o.infra ?? true;
  if (!createInfra) {
    const infraOnly = ['infraImage', 'infraCommand', 'infraName', 'hostname', 'network'] as const;
    const given = infraOnly.find((k) => o[k] !== undefined) ?? ((o.publish ?? []).length ? 'publish' : undefined);
    if (given) throw new ContainerError(`cannot set ${given.replace(/[A-Z]/g, (m) => `-${m.toLowerCase()}`)} without an infra container: invalid argument`);
    // Nothing to share namespaces through.
    share = [];
  }
  if ((o.publish ?? []).length && !share.includes('net')) throw new ContainerError('you must share network namespace to run a pod with published ports: invalid argument');
  const id = randomHex(32);
  const name = o.name ?? `${id.slice(0, 12)}-pod`;
  const data: PodData = {
    hostname: o.hostname ?? '', labels: setKeyValues({}, o.labels ?? []), share, createInfra, createCommand: o.createCommand ?? [],
  };
  const record: PodRecord = { id, name, created: new Date().toISOString(), infraId: null, data: JSON.stringify(data) };
  return store.withLock(podLock(id), async () => {
    try {
      store.createPod(record);
    } catch (e) {
      throw new ContainerError(e instanceof StoreError && e.code === 'conflict' ? `adding pod to state: ${e.message}` : (e as Error).message);
    }
    if (createInfra) {
      try {
        const image = o.infraImage === undefined ? await pauseImage(store) : undefined;
        const infraOpts: CreateOptions = {
          image: image?.name ?? o.infraImage!, command: [], name: o.infraName ?? `${id.slice(0, 12)}-infra`,
          ...(image && { imageId: image.id }),
          // Without --infra-command, the pause image's own entrypoint (catatonit -P) or the --infra-image's.
          ...(o.infraCommand !== undefined && { entrypoint: o.infraCommand }),
          // The containers' shared UTS namespace is named after the pod unless --hostname says otherwise.
          hostname: data.hostname || name,
          ...(o.network !== undefined && { network: o.network }),
          publish: o.publish ?? [],
          infraOf: { id, share },
        };
        const infra = await createContainer(store, infraOpts);
        store.setPodInfra(id, infra.record.id);
        record.infraId = infra.record.id;
      } catch (e) {
        await removePodLocked(store, { record, data }, true).catch(() => undefined);
        throw e;
      }
    }
    podEvent(store, record, 'create');
    return { record, data };
  });
}

/**
 * What a container joining the pod takes from it (lifecycle.ts createContainer): its network and
 * hostname when those namespaces are shared, which the container may then not set itself.
 */
export async function memberSettings(store: Store, ref: string, o: { network?: string | undefined; publish?: readonly string[]; hostname?: string | undefined }): Promise<{
  pod: NonNullable<CreateOptions['infraOf']>;
  network?: ContainerConfig['network'];
  hostname?: string;
}> {
  const pod = loadPod(store, ref);
  const infra = pod.record.infraId ? await infraOf(store, pod) : undefined;
  const shares = (ns: PodNamespace): boolean => !!infra && pod.data.share.includes(ns);
  if (shares('net') && (o.network !== undefined || (o.publish ?? []).length)) {
    throw new ContainerError('invalid config provided: published or exposed ports and networks must be defined when the pod is created: network cannot be configured when it is shared with a pod');
  }
  if (shares('uts') && o.hostname !== undefined) throw new ContainerError('invalid config provided: cannot set hostname when joining the pod UTS namespace');
  const cfg = infra?.data.config;
  return {
    pod: { id: pod.record.id, share: infra ? pod.data.share : [] },
    ...(shares('net') && cfg && { network: cfg.network }),
    ...(shares('uts') && cfg && { hostname: cfg.hostname }),
  };
}

/**
 * The pod's infra container. A `pod rm` removes it before the pod's row: once that removal is over
 * (its lock released), a pod that is gone is reported as such.
 */
async function infraOf(store: Store, pod: Pod): Promise<Container> {
  try {
    return loadContainer(store, pod.record.infraId!);
  } catch (e) {
    const gone = await store.withLock(podLock(pod.record.id), async () => !store.findPod(pod.record.id));
    if (gone) throw new ContainerError(`no pod with name or ID ${pod.record.name} found: no such pod`);
    throw e;
  }
}

/** The bridge networks the pod's infra container is on (undefined when it has none, or no infra container). */
export function infraBridgeState(store: Store, podId: string): Container['data']['state']['bridge'] {
  const infraId = store.findPod(podId)?.infraId;
  return infraId ? loadContainer(store, infraId).data.state.bridge : undefined;
}

/** Before a member container starts: its pod's infra container, started first if it is not running. */
export async function startPodInfra(store: Store, podId: string): Promise<void> {
  const pod = store.findPod(podId);
  if (!pod?.infraId) return;
  const infra = loadContainer(store, pod.infraId);
  if (!isRunning(store, infra)) await startDetached(store, infra.record.id);
}

/**
 * The namespaces a member joins, as paths of the running infra container's process. A cgroup
 * namespace is joined only when the infra container has one of its own (it has none on a host
 * whose cgroups are v1), so that sharing never means entering the host's.
 */
export function podNamespacePaths(store: Store, c: Container): Partial<Record<NamespaceType, string>> {
  const share = c.data.config.podShare ?? [];
  if (c.data.config.infra || share.length === 0 || !c.record.podId) return {};
  const pod = store.findPod(c.record.podId);
  if (!pod?.infraId) return {};
  const infra = loadContainer(store, pod.infraId);
  const s = liveState(store, infra);
  if (!isActive(s.status) || s.pid <= 0) throw new ContainerError(`the infra container of pod ${pod.name} is not running: container state improper`);
  const paths: Partial<Record<NamespaceType, string>> = {};
  for (const ns of share) {
    // A host network is no namespace of the pod's: the member has the host's too (its config says host).
    if (ns === 'net' && infra.data.config.network === 'host') continue;
    const path = `/proc/${s.pid}/ns/${ns}`;
    if (ns === 'cgroup' && sameNamespace(path, '/proc/self/ns/cgroup')) continue;
    paths[SPEC_NAMESPACE[ns]] = path;
  }
  return paths;
}

function sameNamespace(a: string, b: string): boolean {
  try {
    return readlinkSync(a) === readlinkSync(b);
  } catch {
    return false;
  }
}

export interface PodMember {
  c: Container;
  s: ContainerState;
}

/** The pod's containers with their live states, oldest (the infra container) first. */
export function podMembers(store: Store, pod: Pod): PodMember[] {
  return store.podContainers(pod.record.id).map((record) => {
    const c: Container = { record, data: JSON.parse(record.data) as Container['data'] };
    return { c, s: liveState(store, c) };
  });
}

/** Podman's pod status from its containers' states (libpod's GetPodStatus). */
export function podStatus(members: readonly PodMember[]): string {
  const n = members.length;
  if (n === 0) return 'Created';
  const count = (f: (s: ContainerState['status']) => boolean): number => members.filter((m) => f(m.s.status)).length;
  const running = count((s) => s === 'running' || s === 'stopping');
  const paused = count((s) => s === 'paused');
  const exited = count((s) => s === 'exited');
  if (running === n) return 'Running';
  if (running > 0) return 'Degraded';
  if (paused === n) return 'Paused';
  if (exited === n) return 'Exited';
  if (exited > 0) return 'Stopped';
  return 'Created';
}

/** `pod start`: the infra container first, then the others. */
export async function startPod(store: Store, pod: Pod): Promise<void> {
  const members = podMembers(store, pod);
  if (members.length === 0) throw new ContainerError(`no containers in pod ${pod.record.id} have no dependencies, cannot start pod: no such container`);
  const infraFirst = [...members.filter((m) => m.c.data.config.infra), ...members.filter((m) => !m.c.data.config.infra)];
  const errors: string[] = [];
  for (const m of infraFirst) {
    await startDetached(store, m.c.record.id).catch((e: unknown) => errors.push(`starting container ${m.c.record.id}: ${(e as Error).message}`));
  }
  if (errors.length) throw new ContainerError(errors.join('\n'));
  podEvent(store, pod.record, 'start');
}

/** `pod stop`: the members (side by side), then the infra container that holds their namespaces. */
export async function stopPod(store: Store, pod: Pod, timeoutSec?: number): Promise<void> {
  const members = podMembers(store, pod);
  const stopAll = async (ms: PodMember[]): Promise<void> => {
    await Promise.all(ms.filter((m) => isActive(m.s.status)).map((m) => stopContainer(store, m.c.record.id, timeoutSec)));
  };
  await stopAll(members.filter((m) => !m.c.data.config.infra));
  await stopAll(members.filter((m) => m.c.data.config.infra));
  podEvent(store, pod.record, 'stop');
}

/** `pod kill`: the signal to every running container of the pod. */
export async function killPod(store: Store, pod: Pod, sig: string): Promise<void> {
  signalNumber(sig);
  const running = podMembers(store, pod).filter((m) => isActive(m.s.status));
  if (running.length === 0) throw new ContainerError(`no containers in pod ${pod.record.id} are running: pod state improper`);
  for (const m of running) {
    await markStoppedByUser(store, m.c.record.id);
    await signalContainer(store, m.c.record.id, sig);
  }
  podEvent(store, pod.record, 'kill');
}

/**
 * `pod rm`: the pod with all its containers. Running ones only with force (they are stopped
 * first, with `timeoutSec` as pod stop -t); Podman's error otherwise.
 */
export async function removePod(store: Store, pod: Pod, o: { force: boolean; timeoutSec?: number }): Promise<void> {
  await store.withLock(podLock(pod.record.id), async () => {
    const running = podMembers(store, pod).filter((m) => isActive(m.s.status));
    if (running.length && !o.force) {
      const m = running.find((r) => !r.c.data.config.infra) ?? running[0]!;
      throw new ContainerError(
        `removing container ${m.c.record.id} from pod ${pod.record.id}: cannot remove container ${m.c.record.id} as it is running - running or paused containers cannot be removed without force: container state improper`,
      );
    }
    if (running.length) await stopPod(store, pod, o.timeoutSec);
    await removePodLocked(store, pod, false);
  });
  podEvent(store, pod.record, 'remove');
}

/** Removes the members, then the infra container, then the row (the store refuses a pod that still has containers). */
async function removePodLocked(store: Store, pod: Pod, quiet: boolean): Promise<void> {
  const members = store.podContainers(pod.record.id);
  const infraId = pod.record.infraId;
  for (const r of [...members.filter((m) => m.id !== infraId), ...members.filter((m) => m.id === infraId)]) {
    await removeContainer(store, r.id, { force: true, volumes: true, podRemoval: true });
  }
  try {
    store.deletePod(pod.record.id);
  } catch (e) {
    if (!quiet) throw new ContainerError((e as Error).message);
  }
}

/** The infra container's published ports and network, for inspect's InfraConfig. */
export function infraConfig(store: Store, pod: Pod): ContainerConfig | undefined {
  if (!pod.record.infraId) return undefined;
  try {
    return loadContainer(store, pod.record.infraId).data.config;
  } catch {
    return undefined;
  }
}

/** Where Podman's pause image keeps catatonit, and how it runs it. */
const PAUSE_COMMAND = ['/catatonit', '-P'];

/**
 * The image of infra containers, as Podman builds its "localhost/podman-pause" locally rather than
 * pulling one: a single layer holding the host's catatonit (statically linked, so nothing else),
 * with `catatonit -P` as its entrypoint. Its tag carries catatonit's digest, so a changed
 * catatonit makes a new image; made once per store, under a lock so that concurrent `pod create`s
 * build it once.
 */
export async function pauseImage(store: Store): Promise<{ id: string; name: string }> {
  const catatonit = lookPath('catatonit') ?? '/usr/libexec/podman/catatonit';
  let binary: Buffer;
  try {
    binary = readFileSync(catatonit);
  } catch {
    throw new ContainerError('building the pause image: catatonit not found (install the "catatonit" package), or give --infra-image');
  }
  const name = `localhost/podman-pause:barge-${hexOf(sha256(binary)).slice(0, 12)}`;
  const { findImage } = await import('../image/local-images.ts');
  const existing = findImage(store, name);
  if (existing) return { id: existing.id, name };
  return store.withLock('pause-image', async () => {
    const again = findImage(store, name);
    if (again) return { id: again.id, name };
    const tar = await import('tar-stream');
    const pack = tar.pack();
    const mtime = new Date(0);
    pack.entry({ name: 'catatonit', mode: 0o755, uid: 0, gid: 0, mtime, size: binary.length }, binary);
    pack.finalize();
    // tar-stream's pack is a streamx stream, which the store reads as any Readable.
    const layer = await store.putLayer({ stream: Readable.from(pack), parent: null });
    const { emptyImageConfig } = await import('../primitives/builder.ts');
    const { writeImage } = await import('../primitives/commit.ts');
    const image = emptyImageConfig();
    const created = new Date().toISOString();
    image.created = created;
    image.rootfs.diff_ids = [layer.diffId];
    image.config = { ...image.config, Entrypoint: PAUSE_COMMAND, WorkingDir: '/' };
    image.history = [{ created, created_by: `COPY catatonit /catatonit (${catatonit})` }];
    const img = await writeImage(store, image, [layer], { format: 'oci', annotations: {}, names: [name], created });
    return { id: img.id, name };
  });
}
