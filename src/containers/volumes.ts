// Podman's volumes: directories of the store (volumes/NAME/_data) that containers bind-mount and
// that outlive them. Named ones stay until `volume rm`; anonymous ones (`-v /dst`) go with their
// container on `rm -v` and `run --rm`. Each is a row of the store's volumes table, whose data is
// VolumeData.

import { chmod, lchown, lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { copyTree, type ContainerRecord, type Store, type VolumeRecord } from '../store/store.ts';
import { resolveInRoot } from '../store/secure-path.ts';
import { checkedMount, parseMountOptions, volumeOptions } from '../primitives/run.ts';
import type { IdMapping, MountSpec } from '../runtime/spec.ts';
import { randomHex } from '../sys/lazy-builtins.ts';
import { CONTAINER_NAME, ContainerError, type ContainerConfig, type PodContainer } from './record.ts';

export interface VolumeData {
  labels: Record<string, string>;
  options: Record<string, string>;
  /** Made for one container by `-v /dst` or a --mount without source: `rm -v` and `run --rm` remove it. */
  anonymous: boolean;
  /** Not yet filled from the image of a container that mounts it (Podman's copy-up). */
  needsCopyUp: boolean;
  /** Not yet given the owner and mode of the directory it is mounted over. */
  needsChown: boolean;
}

export interface Volume {
  name: string;
  created: string;
  data: VolumeData;
}

/** A volume as a container's config keeps it: mounted at start as a bind of its _data. */
export interface VolumeMount {
  name: string;
  destination: string;
  /** The bind options of the spec (volumeOptions: rbind first, then ro, propagation). */
  options: string[];
  /** -v NAME:/dst:nocopy: this container does not fill the volume from its image. */
  noCopy: boolean;
}

/** A volume a create asks for: `name` undefined for a new anonymous one. */
export interface VolumeRequest extends Omit<VolumeMount, 'name'> {
  name: string | undefined;
}

/** A ContainerError of a volume; Podman's exit status: 1 no such volume, 2 in use, 125 others. */
export class VolumeError extends ContainerError {
  override name = 'VolumeError';
}

const lockName = (name: string): string => `volume:${name}`;

export function dataDir(store: Store, name: string): string {
  return join(store.volumeDir(name), '_data');
}

function fromRecord(r: VolumeRecord): Volume {
  return { name: r.name, created: r.created, data: JSON.parse(r.data) as VolumeData };
}

function save(store: Store, v: Volume): void {
  store.updateVolumeData(v.name, JSON.stringify(v.data));
}

export function listVolumes(store: Store): Volume[] {
  return store.listVolumes().map(fromRecord);
}

/** By full name, else by a unique prefix of one (as Podman's lookup). */
export function findVolume(store: Store, ref: string): Volume {
  const exact = store.getVolume(ref);
  if (exact) return fromRecord(exact);
  const partial = store.listVolumes().filter((v) => v.name.startsWith(ref));
  if (partial.length === 1) return fromRecord(partial[0]!);
  if (partial.length > 1) throw new VolumeError(`more than one result for volume name ${ref}: volume already exists`);
  throw new VolumeError(`no volume with name "${ref}" found: no such volume`, 1);
}

export function validVolumeName(name: string): void {
  if (!CONTAINER_NAME.test(name)) throw new VolumeError('running volume create option: names must match [a-zA-Z0-9][a-zA-Z0-9_.-]*: invalid argument');
}

function newData(anonymous: boolean, labels: Record<string, string> = {}, copyUp = true): VolumeData {
  return { labels, options: {}, anonymous, needsCopyUp: copyUp, needsChown: true };
}

/** `volume create`: a new named volume ('conflict' StoreError when the name is taken). */
export async function createVolume(store: Store, name: string | undefined, labels: Record<string, string>): Promise<Volume> {
  if (name !== undefined) validVolumeName(name);
  const rec = await store.createVolume(name ?? randomHex(32), JSON.stringify(newData(false, labels)));
  return fromRecord(rec);
}

/**
 * A new anonymous volume not yet mounted by any container: a Kubernetes emptyDir, which the
 * containers of one pod share and which goes with the last of them (removeAnonymousVolumes).
 */
export async function createAnonymousVolume(store: Store): Promise<Volume> {
  return fromRecord(await store.createVolume(randomHex(32), JSON.stringify(newData(true))));
}

/** A -v source that names a volume rather than a host path (Podman: it does not begin with / or .). */
function isVolumeName(src: string): boolean {
  return !src.startsWith('/') && !src.startsWith('.');
}

/** -v OPTIONS with the copy-up choice taken out (nocopy and copy are about volumes, not binds). */
function splitCopyOption(opts: string): { rest: string; noCopy: boolean } {
  const all = opts.split(',').filter(Boolean);
  return { rest: all.filter((o) => o !== 'nocopy' && o !== 'copy').join(','), noCopy: all.includes('nocopy') };
}

/**
 * Takes the volumes out of create's -v and --mount values: `-v NAME:/dst[:OPTS]`, `-v /dst` (an
 * anonymous volume) and `--mount type=volume,…`. The binds and tmpfs mounts are left for
 * parseVolumes and parseMounts.
 */
export function splitVolumeArgs(volumes: readonly string[], mounts: readonly string[]): { binds: string[]; mounts: string[]; requests: VolumeRequest[] } {
  const binds: string[] = [];
  const others: string[] = [];
  const requests: VolumeRequest[] = [];
  for (const s of volumes) {
    const parts = s.split(':');
    if (parts.length === 1 && s.startsWith('/')) {
      requests.push({ name: undefined, destination: s, options: ['rbind'], noCopy: false });
      continue;
    }
    const [src, dst, opts] = parts;
    if (src === undefined || src === '' || !isVolumeName(src)) {
      binds.push(s);
      continue;
    }
    if (!dst || !dst.startsWith('/')) throw new VolumeError(`invalid volume "${s}": container path must be absolute`);
    validVolumeName(src);
    const { rest, noCopy } = splitCopyOption(opts ?? '');
    requests.push({ name: src, destination: dst, options: volumeOptions(rest, s), noCopy });
  }
  for (const s of mounts) {
    if (parseMountOptions(s).kv.get('type') !== 'volume') {
      others.push(s);
      continue;
    }
    const { kv, dst, ro } = checkedMount(s, ['volume']);
    if (!dst.startsWith('/')) throw new VolumeError(`invalid mount "${s}": container path must be absolute`);
    const src = kv.get('source') ?? kv.get('src');
    if (src !== undefined) validVolumeName(src);
    requests.push({ name: src, destination: dst, options: ['rbind', ...(ro ? ['ro'] : [])], noCopy: false });
  }
  return { binds, mounts: others, requests };
}

/**
 * Runs `create` (which writes the container's row) with the volumes it asks for in place:
 * missing named ones and new anonymous ones are made, and every one's lock is held until the row
 * exists, so that a concurrent `volume rm` never removes a volume a new container is about to
 * use, and concurrent creates of the same new volume make it once.
 */
export async function withVolumes<T>(store: Store, requests: readonly VolumeRequest[], create: (mounts: VolumeMount[]) => Promise<T>): Promise<T> {
  const mounts: VolumeMount[] = requests.map((r) => ({ ...r, name: r.name ?? randomHex(32) }));
  const anonymous = new Set(mounts.filter((_, i) => requests[i]!.name === undefined).map((m) => m.name));
  // Sorted, so that two creates of overlapping sets take the locks in the same order.
  const names = [...new Set(mounts.map((m) => m.name))].sort();
  const made: string[] = [];
  const hold = async (i: number): Promise<T> => {
    if (i === names.length) return create(mounts);
    const name = names[i]!;
    return store.withLock(lockName(name), async () => {
      if (!store.getVolume(name)) {
        // A new volume that this container mounts with nocopy is never filled (Podman's WithVolumeNoCopy).
        const copyUp = !mounts.some((m) => m.name === name && m.noCopy);
        await store.createVolume(name, JSON.stringify(newData(anonymous.has(name), {}, copyUp)));
        made.push(name);
      }
      return hold(i + 1);
    });
  };
  try {
    return await hold(0);
  } catch (e) {
    // The container was not made: the anonymous volumes made for it go again (named ones stay, as
    // with Podman: another create may already have found them).
    for (const name of made.filter((n) => anonymous.has(n))) await removeIfUnused(store, name).catch(() => false);
    throw e;
  }
}

/** The volumes of a container's config (none for containers made before volumes existed). */
export function volumesOf(cfg: ContainerConfig): VolumeMount[] {
  return cfg.volumes ?? [];
}

/** The Podman-style containers whose config mounts the volume. */
export function volumeUsers(store: Store, name: string): ContainerRecord[] {
  return store.listContainers('container').filter((r) => volumesOf((JSON.parse(r.data) as PodContainer).config).some((m) => m.name === name));
}

/** A container id as the host (barge's namespace) sees it, through the container's own id map if it has one. */
export function toHost(id: number, map: IdMapping[] | undefined): number {
  if (!map) return id;
  const m = map.find((x) => id >= x.containerID && id < x.containerID + x.size);
  return m ? m.hostID + (id - m.containerID) : id;
}

/**
 * At start, with the container's root filesystem mounted: each volume as a bind of its _data. A
 * volume new to containers first takes the owner and mode of the directory it is mounted over
 * (else the container user's ids), and the content of that directory in the image (unless
 * nocopy), as Podman does on first mount.
 */
export async function volumeMountSpecs(store: Store, cfg: ContainerConfig, rootfs: string, user: { uid: number; gid: number }): Promise<MountSpec[]> {
  const out: MountSpec[] = [];
  for (const m of volumesOf(cfg)) {
    const data = dataDir(store, m.name);
    await store.withLock(lockName(m.name), async () => {
      const rec = store.getVolume(m.name);
      if (!rec) throw new VolumeError(`no volume with name "${m.name}" found: no such volume`);
      const v = fromRecord(rec);
      if (!v.data.needsChown && (!v.data.needsCopyUp || m.noCopy)) return;
      const target = await resolveInRoot(rootfs, m.destination);
      const st = await lstat(target).catch(() => null);
      if (v.data.needsChown) {
        if (st) {
          await lchown(data, st.uid, st.gid);
          await chmod(data, st.mode & 0o7777);
        } else {
          await lchown(data, toHost(user.uid, cfg.userns?.uidMappings), toHost(user.gid, cfg.userns?.gidMappings ?? cfg.userns?.uidMappings));
        }
        v.data.needsChown = false;
      }
      // Podman leaves the volume to be filled by a later container when this image has nothing there.
      if (v.data.needsCopyUp && !m.noCopy && st?.isDirectory() && (await readdir(target)).length > 0) {
        // Content already there (put in by hand, or by a nocopy mount) is never overwritten.
        if ((await readdir(data)).length === 0) await copyTree(target, data);
        v.data.needsCopyUp = false;
      }
      save(store, v);
    });
    out.push({ destination: m.destination, type: 'bind', source: data, options: [...bindOptions(m), 'rprivate'] });
  }
  return out;
}

/** As Podman mounts volumes: nosuid and nodev, with the spec's own options. */
function bindOptions(m: VolumeMount): string[] {
  return ['nosuid', 'nodev', ...m.options.filter((o) => o !== 'rprivate')];
}

/**
 * After the container's removal: its anonymous volumes that no other container uses (`rm -v`,
 * `run --rm`). Named volumes always stay.
 */
export async function removeAnonymousVolumes(store: Store, cfg: ContainerConfig): Promise<void> {
  for (const m of volumesOf(cfg)) await removeIfUnused(store, m.name, (v) => v.data.anonymous);
}

/**
 * `volume rm`: a volume that containers use is refused (exit 2) unless `force`, which removes
 * those containers first (they are removed without the volume's lock held: a starting container
 * takes its lock under the container's).
 */
export async function removeVolume(store: Store, name: string, force: boolean, removeContainer: (id: string) => Promise<unknown>): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const users = volumeUsers(store, name);
    if (users.length && force && attempt < 5) {
      for (const c of users) await removeContainer(c.id);
      continue;
    }
    const done = await store.withLock(lockName(name), async () => {
      if (!store.getVolume(name)) throw new VolumeError(`no volume with name "${name}" found: no such volume`, 1);
      const now = volumeUsers(store, name);
      if (now.length && force && attempt < 5) return false;
      if (now.length) throw new VolumeError(`volume ${name} is being used by the following container(s): ${now.map((c) => c.id).join(', ')}: volume is being used`, 2);
      await store.deleteVolume(name);
      return true;
    });
    if (done) return;
  }
}

/** Removes the volume if it exists and no container uses it (decided under its lock). */
export async function removeIfUnused(store: Store, name: string, only: (v: Volume) => boolean = () => true): Promise<boolean> {
  return store.withLock(lockName(name), async () => {
    const rec = store.getVolume(name);
    if (!rec || !only(fromRecord(rec)) || volumeUsers(store, name).length) return false;
    await store.deleteVolume(name);
    return true;
  });
}

/** `volume prune`: removes every volume no container uses; returns their names. */
export async function pruneVolumes(store: Store, keep: (v: Volume) => boolean = () => false): Promise<string[]> {
  const removed: string[] = [];
  for (const v of listVolumes(store)) {
    if (keep(v)) continue;
    if (await removeIfUnused(store, v.name)) removed.push(v.name);
  }
  return removed;
}

/**
 * Podman's `volume inspect` object, keys in its order. Its JSON omits the last ones when empty
 * (omitempty); its templates see the whole struct, so `full` keeps them for --format.
 */
export function volumeJSON(store: Store, v: Volume, full = false): Record<string, unknown> {
  return {
    Name: v.name,
    Driver: 'local',
    Mountpoint: dataDir(store, v.name),
    CreatedAt: v.created,
    Labels: v.data.labels,
    Scope: 'local',
    Options: v.data.options,
    ...((full || v.data.anonymous) && { Anonymous: v.data.anonymous }),
    MountCount: 0,
    ...((full || v.data.needsCopyUp) && { NeedsCopyUp: v.data.needsCopyUp }),
    ...((full || v.data.needsChown) && { NeedsChown: v.data.needsChown }),
  };
}

/** Podman's container inspect entries for the container's volumes. */
export function volumeInspectMounts(store: Store, cfg: ContainerConfig): { mounts: Record<string, unknown>[]; binds: string[] } {
  const ms = volumesOf(cfg);
  return {
    mounts: ms.map((m) => {
      const opts = bindOptions(m);
      return {
        Type: 'volume', Name: m.name, Source: dataDir(store, m.name), Destination: m.destination, Driver: 'local', Mode: '',
        Options: opts.filter((o) => o !== 'ro'), RW: !opts.includes('ro'), Propagation: 'rprivate',
      };
    }),
    binds: ms.map((m) => `${m.name}:${m.destination}:${[m.options.includes('ro') ? 'ro' : 'rw', 'rprivate', ...bindOptions(m).filter((o) => o !== 'ro')].join(',')}`),
  };
}
