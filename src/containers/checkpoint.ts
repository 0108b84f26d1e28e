// `podman container checkpoint` / `restore` for barge's containers: CRIU through the OCI runtime,
// restored containers monitored by conmon like started ones, and Podman's export format so that
// archives and checkpoint images move between barge and podman.
//
// A container's checkpoint lives in its userdata directory, where Podman keeps it in its bundle:
//   checkpoint/    CRIU's images (runc --image-path)
//   spec.dump      the runtime spec the dumped processes ran with; a restore reuses it, with this
//                  host's paths put in (rootfs, bind-mounted files)
//   config.dump    the container's configuration in libpod's JSON, plus barge's own under "bargeConfig"
//   dump.log, restore.log, stats-dump, stats-restore   CRIU's logs and statistics (--keep keeps them)
// An export archive (and a checkpoint image's single layer) holds the same names at its top, plus
// ctr.log, artifacts/, and the root filesystem's changes: rootfs-diff.tar (added and changed files)
// and deleted.files (a JSON list of removed paths). Podman's archives may also carry
// devshm-checkpoint.tar (its /dev/shm is a bind mount) and network.status.

import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { chmod, copyFile, cp, link, mkdir, readdir, readFile, readlink, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path, { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Transform } from 'node:stream';
import type { ImageRecord, Store } from '../store/store.ts';
import { StoreError } from '../store/store.ts';
import { resolveInRoot } from '../store/secure-path.ts';
// Tar, layer and image code is imported where exports, imports and checkpoint images need it:
// a checkpoint or restore in place loads none of it.
import { findImage, readImageManifest } from '../image/local-images.ts';
import { localImageName } from '../image/reference.ts';
import type { ImageConfig } from '../image/types.ts';
import { findRuntime, type RuntimeInfo } from '../runtime/oci-runtime.ts';
import { CheckpointError, criuLogHint, criuVersion, ensureCheckpointSupport, runtimeCheckpoint } from '../runtime/criu.ts';
import type { RuntimeSpec } from '../runtime/spec.ts';
import { exec } from '../sys/exec.ts';
import { zlib } from '../sys/lazy-builtins.ts';
import { removeTree } from '../sys/remove-tree.ts';
import { hasOwnNetns } from './netns.ts';
import { ContainerError, liveState, releaseContainer, removeContainer, ROOTFS_MODE, signalNumber, startDetached } from './lifecycle.ts';
import {
  containerPaths, initialState, loadContainer, reload, saveContainer,
  type Container, type ContainerConfig, type ContainerPaths, type PodContainer,
} from './record.ts';
import { volumesOf, withVolumes } from './volumes.ts';
import { containerEvent } from './events.ts';

export { CheckpointError };

export type Compression = 'gzip' | 'zstd' | 'none';

export interface CheckpointOptions {
  keep?: boolean;
  leaveRunning?: boolean;
  tcpEstablished?: boolean;
  /** Write the checkpoint as an archive to this file. */
  export?: string;
  compress?: Compression;
  /** Also store the checkpoint as a checkpoint image with this name. */
  createImage?: string;
  /** Leave the root filesystem's changes out of an export. */
  ignoreRootfs?: boolean;
}

export interface RestoreOptions {
  keep?: boolean;
  tcpEstablished?: boolean;
  /** For an imported checkpoint: the new container's name (it then also gets a new id). */
  name?: string;
  /** For an imported checkpoint: the runtime to restore with (default: the one it was dumped with, if here). */
  runtime?: string;
  /** An archive of a pre-checkpoint (`--import-previous`), unpacked as CRIU's parent images. */
  importPrevious?: string;
  ignoreRootfs?: boolean;
  /** For an imported checkpoint: a new id even when the name stays (e.g. a store sharing the runroot). */
  newId?: boolean;
}

const CHECKPOINT = 'checkpoint';
const PRE_CHECKPOINT = 'pre-checkpoint';
const SPEC_DUMP = 'spec.dump';
const CONFIG_DUMP = 'config.dump';
const ROOTFS_DIFF = 'rootfs-diff.tar';
const DELETED_FILES = 'deleted.files';
const DEVSHM = 'devshm-checkpoint.tar';
const CTR_LOG = 'ctr.log';
const CRIU_FILES = ['dump.log', 'restore.log', 'stats-dump', 'stats-restore'];
/** Podman's annotation prefix for checkpoint images; its `name` key marks an image as one. */
const ANNOTATION = 'io.podman.annotations.checkpoint.';

const lockName = (id: string): string => `container:${id}`;

function runtimeOf(c: Container): RuntimeInfo {
  return { name: c.data.config.runtimeName, path: c.data.config.runtime };
}

function pathsOf(store: Store, c: Container): ContainerPaths {
  return containerPaths(store, c.record.id, c.data.config.runtimeName);
}

export function hasCheckpoint(store: Store, c: Container): boolean {
  return existsSync(join(pathsOf(store, c).userdata, CHECKPOINT, 'inventory.img'));
}

// ---------- checkpoint ----------

/** `podman container checkpoint`: dumps a running container's processes with CRIU. */
export async function checkpointContainer(store: Store, ref: string, o: CheckpointOptions = {}): Promise<Container> {
  const first = loadContainer(store, ref);
  // Its namespaces are another container's, which a restore would have to find again.
  if (first.record.podId) throw new ContainerError(`checkpointing containers of pods is not supported yet: ${first.record.name} belongs to pod ${first.record.podId}`);
  if (first.data.config.autoRemove && !o.export && !o.createImage) {
    throw new ContainerError("cannot checkpoint containers that have been started with '--rm' unless '--export' is used");
  }
  const imageName = o.createImage !== undefined ? localImageName(o.createImage) : undefined;
  if (imageName && findImage(store, imageName)) throw new ContainerError(`image ${imageName} already exists: choose another name for --create-image`);
  await ensureCheckpointSupport(runtimeOf(first));
  const c = await store.withLock(lockName(first.record.id), async () => {
    const c = reload(store, first);
    const live = liveState(store, c);
    if (live.status !== 'running') throw new ContainerError(`"${live.status}" is not running, cannot checkpoint: container state improper`);
    if (live.monitor !== 'conmon') {
      throw new ContainerError(`container ${c.record.name} runs in the foreground of another barge process; only detached containers can be checkpointed`);
    }
    const p = pathsOf(store, c);
    removeCheckpointFiles(p.userdata);
    // The dump files describe the container as it is dumped; a restore (here or elsewhere) reads them.
    const spec = JSON.parse(await readFile(join(p.userdata, 'config.json'), 'utf8')) as RuntimeSpec;
    // barge's network namespace is of this host and this run: a restore, here or by podman, gives a fresh one.
    if (hasOwnNetns(spec)) {
      for (const ns of spec.linux?.namespaces ?? []) if (ns.type === 'network') delete ns.path;
    }
    await writeFile(join(p.userdata, SPEC_DUMP), JSON.stringify(spec, null, 2), { mode: 0o600 });
    const rootfsMode = (await stat(spec.root.path)).mode & 0o7777;
    await writeFile(join(p.userdata, CONFIG_DUMP), JSON.stringify(libpodConfig(c, spec, rootfsMode), null, 2), { mode: 0o600 });
    await runtimeCheckpoint(runtimeOf(c), p.stateRoot, c.record.id, {
      imagePath: join(p.userdata, CHECKPOINT), workPath: p.userdata, leaveRunning: !!o.leaveRunning, tcpEstablished: !!o.tcpEstablished,
      // Unlocked only where no packet from outside can arrive: loopback alone (a slirp4netns tap or
      // a bridge's veth carries traffic in during the dump).
      pid: live.pid, ...((c.data.config.network === 'none' || c.data.config.network === 'private') && { privateNetworkConfDir: store.runroot }),
    });
    const now = new Date().toISOString();
    if (!o.leaveRunning) {
      // CRIU killed the processes; conmon's exit code (137) says nothing about the container.
      c.data.state = { ...c.data.state, status: 'exited', exitCode: 0, finishedAt: now, pid: 0, monitor: null, error: '' };
      // As Podman: only a container that stopped is "checkpointed"; one left running keeps its earlier state.
      c.data.checkpoint = { checkpointed: true, checkpointedAt: now, restored: false, restoredAt: null };
    }
    saveContainer(store, c);
    containerEvent(store, c, 'checkpoint');
    try {
      if (o.export !== undefined || imageName !== undefined) {
        const stage = await store.staging();
        try {
          await assembleExport(store, c, p, stage, !o.ignoreRootfs);
          if (o.export !== undefined) await writeArchive(stage, o.export, o.compress ?? 'zstd');
          if (imageName !== undefined) await createCheckpointImage(store, c, stage, imageName);
        } finally {
          await rm(stage, { recursive: true, force: true });
        }
      }
    } finally {
      if (!o.leaveRunning) await releaseContainer(store, c);
      if (!o.keep) await Promise.all(['dump.log', 'stats-dump'].map((f) => rm(join(p.userdata, f), { force: true })));
    }
    return c;
  });
  if (c.data.config.autoRemove && !o.leaveRunning) await removeContainer(store, c.record.id, { force: true }).catch(() => undefined);
  return c;
}

function removeCheckpointFiles(userdata: string): void {
  for (const f of [CHECKPOINT, PRE_CHECKPOINT, SPEC_DUMP, CONFIG_DUMP, ...CRIU_FILES]) removeTree(join(userdata, f));
}

/**
 * config.dump: the fields of libpod's ContainerConfig that Podman's import reads, so podman can
 * restore barge's archives; barge reads its own configuration back from bargeConfig.
 */
function libpodConfig(c: Container, spec: RuntimeSpec, rootfsMode: number): Record<string, unknown> {
  const cfg = c.data.config;
  return {
    spec,
    id: c.record.id,
    name: c.record.name,
    rootfsImageID: cfg.imageId,
    rootfsImageName: c.record.imageName ?? cfg.image,
    RawImageName: cfg.image,
    command: cfg.cmd,
    entrypoint: cfg.entrypoint,
    labels: cfg.labels,
    user: cfg.user,
    stopSignal: signalNumber(cfg.stopSignal),
    stopTimeout: cfg.stopTimeout,
    createdTime: c.record.created,
    logDriver: cfg.logDriver,
    // A namespace of barge's (netns.ts) was external to CRIU: podman must make one to restore into.
    createNetNS: hasOwnNetns(spec),
    ...(hasOwnNetns(spec) && { netmode: 'none' }),
    createWorkingDir: true,
    runtime: cfg.runtimeName,
    umask: '0022',
    bargeConfig: cfg,
    bargeRootfsMode: rootfsMode,
  };
}

/** Puts the export's files into stage (hard links where the files stay, copies where they change). */
async function assembleExport(store: Store, c: Container, p: ContainerPaths, stage: string, withRootfs: boolean): Promise<void> {
  await linkTree(join(p.userdata, CHECKPOINT), join(stage, CHECKPOINT));
  for (const f of [SPEC_DUMP, CONFIG_DUMP, 'stats-dump']) {
    if (existsSync(join(p.userdata, f))) await link(join(p.userdata, f), join(stage, f));
  }
  // conmon may still append to the log of a container left running.
  if (existsSync(p.logPath)) await copyFile(p.logPath, join(stage, CTR_LOG));
  await mkdir(join(stage, 'artifacts'));
  if (withRootfs) await writeRootfsDiff(store, c, stage);
}

async function linkTree(src: string, dst: string): Promise<void> {
  await mkdir(dst, { mode: 0o700 });
  for (const e of await readdir(src, { withFileTypes: true })) {
    const s = join(src, e.name);
    const d = join(dst, e.name);
    if (e.isDirectory()) await linkTree(s, d);
    else if (e.isSymbolicLink()) await symlink(await readlink(s), d);
    else await link(s, d);
  }
}

/** Podman's form of the rootfs changes: the added and changed paths as a tar, deletions listed apart. */
async function writeRootfsDiff(store: Store, c: Container, stage: string): Promise<void> {
  const { diffContainer } = await import('./files.ts');
  const changes = await diffContainer(store, c.record.id);
  const deleted = changes.filter((ch) => ch.kind === 'D').map((ch) => ch.path);
  const changed = changes.filter((ch) => ch.kind !== 'D').map((ch) => ch.path.replace(/^\/+/, ''));
  if (deleted.length > 0) await writeFile(join(stage, DELETED_FILES), JSON.stringify(deleted));
  if (changed.length === 0) return;
  const rootfs = await store.mountContainer(c.record);
  const list = join(stage, '.rootfs-diff.list');
  await writeFile(list, changed.join('\0') + '\0');
  try {
    await exec('tar', ['-C', rootfs, '--no-recursion', '--xattrs', '--numeric-owner', '--null', '-T', list, '-cf', join(stage, ROOTFS_DIFF)]);
  } finally {
    await rm(list, { force: true });
  }
}

function compressor(kind: Compression): Transform[] {
  if (kind === 'gzip') return [zlib().createGzip()];
  if (kind === 'zstd') return [zlib().createZstdCompress()];
  return [];
}

/** Writes dir as a (compressed) tar to file, which appears only once complete. */
async function writeArchive(dir: string, file: string, kind: Compression): Promise<void> {
  const tmp = `${file}.barge-tmp-${process.pid}`;
  try {
    const { tarDirectory } = await import('../store/tar-diff.ts');
    await pipeline([tarDirectory(dir), ...compressor(kind), createWriteStream(tmp, { mode: 0o600 })]);
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    const err = e as NodeJS.ErrnoException;
    throw new ContainerError(`cannot write checkpoint archive ${file}: ${err.code === 'ENOENT' ? 'no such file or directory' : err.message}`);
  }
}

/** A checkpoint image as Podman makes them: one layer holding the export's files, described by annotations. */
async function createCheckpointImage(store: Store, c: Container, stage: string, name: string): Promise<ImageRecord> {
  const cfg = c.data.config;
  const [{ tarDirectory }, { hostArch }, { writeImage }] = await Promise.all([
    import('../store/tar-diff.ts'), import('../primitives/builder.ts'), import('../primitives/commit.ts'),
  ]);
  const layer = await store.putLayer({ stream: tarDirectory(stage), parent: null });
  const created = new Date().toISOString();
  const image: ImageConfig = {
    created, architecture: hostArch(), os: 'linux', config: {},
    rootfs: { type: 'layers', diff_ids: [layer.diffId] },
    history: [{ created, created_by: 'barge container checkpoint --create-image' }],
  };
  const annotations: Record<string, string> = {
    [`${ANNOTATION}name`]: c.record.name,
    [`${ANNOTATION}rawImageName`]: cfg.image,
    [`${ANNOTATION}rootfsImageID`]: cfg.imageId,
    [`${ANNOTATION}rootfsImageName`]: c.record.imageName ?? cfg.image,
    [`${ANNOTATION}runtime.name`]: cfg.runtimeName,
    [`${ANNOTATION}criu.version`]: await criuVersion(),
    [`${ANNOTATION}host.arch`]: hostArch(),
    [`${ANNOTATION}host.kernel`]: os.release(),
  };
  return writeImage(store, image, [layer], { format: 'oci', annotations, names: [name], created });
}

// ---------- restore ----------

/** `podman container restore CONTAINER`: restores a checkpointed container of this store. */
export async function restoreContainer(store: Store, ref: string, o: RestoreOptions = {}): Promise<Container> {
  const c = loadContainer(store, ref);
  const p = pathsOf(store, c);
  if (liveState(store, c).status === 'running') {
    throw new ContainerError(`cannot restore container ${c.record.id}: it is running: container state improper`);
  }
  if (!hasCheckpoint(store, c)) {
    throw new ContainerError(`a complete checkpoint for container ${c.record.name} cannot be found, cannot restore: no such file or directory`);
  }
  await ensureCheckpointSupport(runtimeOf(c));
  let dumped: RuntimeSpec;
  try {
    dumped = JSON.parse(await readFile(join(p.userdata, SPEC_DUMP), 'utf8')) as RuntimeSpec;
  } catch (e) {
    throw new ContainerError(`the checkpoint of container ${c.record.name} has no readable ${SPEC_DUMP}: ${(e as Error).message}`);
  }
  const opts = o.tcpEstablished ? ['--tcp-established'] : [];
  try {
    await startDetached(store, c.record.id, {
      restore: { imagePath: join(p.userdata, CHECKPOINT), runtimeOpts: opts, adaptSpec: (fresh) => adaptSpec(dumped, fresh, p.userdata) },
    });
  } catch (e) {
    const hint = await criuLogHint(join(p.userdata, 'restore.log'));
    if (e instanceof ContainerError || e instanceof CheckpointError) throw e;
    throw new ContainerError(`${(e as Error).message}${hint}`);
  }
  return store.withLock(lockName(c.record.id), async () => {
    const now = reload(store, c);
    now.data.checkpoint = { checkpointed: false, checkpointedAt: null, restored: true, restoredAt: new Date().toISOString() };
    saveContainer(store, now);
    if (!o.keep) removeCheckpointFiles(p.userdata);
    return now;
  });
}

/** Podman's per-container bind-mounted files, by destination, and their names in userdata. */
const STAND_INS = new Map([
  ['/etc/hosts', 'hosts'], ['/etc/hostname', 'hostname'], ['/etc/resolv.conf', 'resolv.conf'], ['/run/.containerenv', '.containerenv'],
]);

/**
 * The spec to restore with: the dumped one (CRIU needs the same namespaces and mounts), with this
 * host's paths: the rootfs, and bind mounts matched by destination to those a fresh start would
 * use. Podman's own per-container mounts that barge does not make get stand-ins in userdata.
 */
async function adaptSpec(dumped: RuntimeSpec, fresh: RuntimeSpec, userdata: string): Promise<RuntimeSpec> {
  const spec = structuredClone(dumped);
  spec.root = { ...spec.root, path: fresh.root.path };
  const isBind = (m: { type: string; options?: string[] }): boolean => m.type === 'bind' || (m.options ?? []).some((x) => x === 'bind' || x === 'rbind');
  const freshBinds = new Map(fresh.mounts.filter(isBind).map((m) => [m.destination, m.source]));
  for (const m of spec.mounts ?? []) {
    if (!isBind(m)) continue;
    const src = freshBinds.get(m.destination);
    if (src !== undefined) {
      m.source = src;
    } else if (m.destination === '/dev/shm') {
      m.source = join(userdata, 'shm');
      await mkdir(m.source, { recursive: true, mode: 0o1777 });
    } else if (STAND_INS.has(m.destination)) {
      // A per-container file this start does not make (e.g. resolv.conf of a checkpoint taken with
      // a network): CRIU only needs something to mount there; the process has read it already.
      m.source = join(userdata, STAND_INS.get(m.destination)!);
      if (!existsSync(m.source)) await writeFile(m.source, '');
    } else if (!existsSync(m.source)) {
      throw new CheckpointError(`cannot restore: the checkpointed container had ${m.source} mounted at ${m.destination}, which does not exist on this host`);
    }
  }
  // barge's own network namespace has no path in the dump (checkpointContainer): the start gives a fresh one.
  for (const ns of spec.linux?.namespaces ?? []) {
    if (ns.path !== undefined && ns.path !== '') {
      throw new CheckpointError(
        `cannot restore: the checkpointed container joined the ${ns.type} namespace ${ns.path} (e.g. Podman's bridge network), ` +
          'which barge cannot recreate; checkpoint containers run with --network none or --network host',
      );
    }
  }
  // barge leaves the cgroup to the runtime's default (/<id>); Podman's parent cgroup may not exist here.
  if (spec.linux) delete spec.linux.cgroupsPath;
  delete (spec as { hooks?: unknown }).hooks;
  return spec;
}

/** `podman container restore --import FILE`: a new container from an exported checkpoint, restored. */
export async function importCheckpoint(store: Store, file: string, o: RestoreOptions = {}): Promise<Container> {
  if (!existsSync(file)) throw new ContainerError(`failed to open checkpoint archive ${file}: no such file or directory`);
  const stage = await store.staging();
  try {
    await extractArchive(file, stage);
    const previous = o.importPrevious !== undefined ? await store.staging() : undefined;
    try {
      if (previous && o.importPrevious) await extractArchive(o.importPrevious, previous);
      return await restoreFromDir(store, stage, { ...o, move: true, previous }, `checkpoint archive ${file}`);
    } finally {
      if (previous) await rm(previous, { recursive: true, force: true });
    }
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
}

async function extractArchive(file: string, dir: string): Promise<void> {
  try {
    const [{ applyTar }, { AutoDecompress }] = await Promise.all([import('../store/tar-apply.ts'), import('../image/copy.ts')]);
    await applyTar(createReadStream(file).pipe(new AutoDecompress()), { root: dir, whiteouts: 'none' });
  } catch (e) {
    throw new ContainerError(`failed to read checkpoint archive ${file}: ${(e as Error).message.replace(/layer data/, 'archive data')}`);
  }
}

/** The checkpoint image `ref` names (Podman's annotation marks it), or undefined for any other image. */
export async function findCheckpointImage(store: Store, ref: string): Promise<ImageRecord | undefined> {
  let img: ImageRecord | undefined;
  try {
    img = findImage(store, ref);
  } catch {
    return undefined;
  }
  if (!img || !img.topLayer) return undefined;
  const m = await readImageManifest(store, img).catch(() => null);
  return m?.annotations?.[`${ANNOTATION}name`] !== undefined ? img : undefined;
}

/** `podman container restore IMAGE` for a checkpoint image: a new container from its layer, restored. */
export async function restoreFromImage(store: Store, img: ImageRecord, o: RestoreOptions = {}): Promise<Container> {
  if (store.layerChain(img.topLayer).length !== 1) throw new ContainerError(`image ${img.id.slice(0, 12)} is not a checkpoint image: it has more than one layer`);
  await store.ensureLayerTrees(img.topLayer);
  return restoreFromDir(store, store.layerDir(img.topLayer!), { ...o, move: false }, `checkpoint image ${img.names[0] ?? img.id.slice(0, 12)}`);
}

interface FromDirOptions extends RestoreOptions {
  /** dir is a private staging copy whose files may be moved away. */
  move: boolean;
  /** Unpacked pre-checkpoint archive. */
  previous?: string | undefined;
}

async function readDump<T>(dir: string, name: string, what: string): Promise<T> {
  let text: string;
  try {
    text = await readFile(join(dir, name), 'utf8');
  } catch {
    throw new ContainerError(`${what} is not a complete checkpoint: it has no ${name}`);
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new ContainerError(`${what}: ${name} is not valid JSON: ${(e as Error).message}`);
  }
}

interface ConfigDump {
  id?: string;
  name?: string;
  rootfsImageID?: string;
  rootfsImageName?: string;
  RawImageName?: string;
  command?: string[] | null;
  entrypoint?: string[] | null;
  labels?: Record<string, string> | null;
  user?: string;
  stopSignal?: number;
  stopTimeout?: number;
  stdin?: boolean;
  runtime?: string;
  bargeConfig?: ContainerConfig;
  bargeRootfsMode?: number;
}

async function restoreFromDir(store: Store, dir: string, o: FromDirOptions, what: string): Promise<Container> {
  const dump = await readDump<ConfigDump>(dir, CONFIG_DUMP, what);
  const spec = await readDump<RuntimeSpec>(dir, SPEC_DUMP, what);
  if (!existsSync(join(dir, CHECKPOINT, 'inventory.img'))) throw new ContainerError(`${what} is not a complete checkpoint: it has no ${CHECKPOINT}/inventory.img`);
  if (typeof spec.process !== 'object' || spec.process === null || !Array.isArray(spec.mounts)) {
    throw new ContainerError(`${what}: ${SPEC_DUMP} is not an OCI runtime spec`);
  }
  const img =
    (dump.rootfsImageID ? findImageQuiet(store, dump.rootfsImageID) : undefined) ??
    (dump.rootfsImageName ? findImageQuiet(store, dump.rootfsImageName) : undefined);
  if (!img) {
    throw new ContainerError(
      `the image of the checkpointed container, ${dump.rootfsImageName ?? '?'} (${(dump.rootfsImageID ?? '?').slice(0, 12)}), is not in the store: pull or load it first`,
    );
  }
  const rt = findRuntime(o.runtime ?? dump.bargeConfig?.runtimeName ?? dump.runtime);
  await ensureCheckpointSupport(rt);
  const config = dump.bargeConfig
    ? { ...dump.bargeConfig, imageId: img.id, runtime: rt.path, runtimeName: rt.name }
    : configFromPodman(dump, spec, img, rt);
  const name = o.name ?? dump.name;
  if (!name) throw new ContainerError(`${what}: ${CONFIG_DUMP} names no container; restore it with --name`);
  const id = o.name === undefined && !o.newId && dump.id && /^[a-f0-9]{64}$/.test(dump.id) ? dump.id : undefined;
  if (id && store.findContainer(id)) throw new ContainerError(`a container with ID ${id} already exists: restore it with --name to give it a new one`);
  const data: PodContainer = { kind: 'podman-container', config, state: initialState() };
  let record;
  try {
    // The volumes it mounts must exist (barge does not carry their content in the archive): made empty when missing.
    record = await withVolumes(store, volumesOf(config), () =>
      store.createContainer({ ...(id && { id }), name, kind: 'container', imageId: img.id, imageName: img.names[0] ?? null, data: JSON.stringify(data) }),
    );
  } catch (e) {
    if (e instanceof StoreError && e.code === 'conflict') throw new ContainerError(`${e.message}: restore it with --name to give it another`);
    throw e;
  }
  const c: Container = { record, data };
  try {
    const p = pathsOf(store, c);
    await mkdir(p.userdata, { recursive: true, mode: 0o700 });
    const take = (from: string, to: string): Promise<void> => (o.move ? rename(from, to) : cp(from, to, { recursive: true, preserveTimestamps: true }));
    await take(join(dir, CHECKPOINT), join(p.userdata, CHECKPOINT));
    await writeFile(join(p.userdata, SPEC_DUMP), JSON.stringify(spec, null, 2), { mode: 0o600 });
    await writeFile(join(p.userdata, CONFIG_DUMP), JSON.stringify(dump, null, 2), { mode: 0o600 });
    if (existsSync(join(dir, CTR_LOG))) await take(join(dir, CTR_LOG), p.logPath);
    if (o.previous && existsSync(join(o.previous, CHECKPOINT))) await take(join(o.previous, CHECKPOINT), join(p.userdata, PRE_CHECKPOINT));
    if (existsSync(join(dir, DEVSHM))) {
      await mkdir(join(p.userdata, 'shm'), { recursive: true, mode: 0o1777 });
      const { applyTar } = await import('../store/tar-apply.ts');
      await applyTar(createReadStream(join(dir, DEVSHM)), { root: join(p.userdata, 'shm'), whiteouts: 'none' });
    }
    if (!o.ignoreRootfs) await applyRootfsDiff(store, c, dir);
    // CRIU checks that the root directory it restores into has the mode it had when dumped.
    // Podman's archives do not record it: containers/storage gives a container's root 0555.
    await chmod(await store.mountContainer(record), typeof dump.bargeRootfsMode === 'number' ? dump.bargeRootfsMode & 0o7777 : ROOTFS_MODE);
    return await restoreContainer(store, record.id, o);
  } catch (e) {
    await removeContainer(store, record.id, { force: true }).catch(() => undefined);
    throw e;
  }
}

function findImageQuiet(store: Store, ref: string): ImageRecord | undefined {
  try {
    return findImage(store, ref);
  } catch {
    return undefined;
  }
}

/** barge's configuration for a container Podman checkpointed, from its config.dump and spec. */
function configFromPodman(dump: ConfigDump, spec: RuntimeSpec, img: ImageRecord, rt: RuntimeInfo): ContainerConfig {
  const proc = spec.process;
  const namespaces = spec.linux?.namespaces ?? [];
  const signal = Object.entries(os.constants.signals).find(([, n]) => n === dump.stopSignal)?.[0] ?? 'SIGTERM';
  const user = proc.user ? `${proc.user.uid}:${proc.user.gid}` : '';
  return {
    image: dump.RawImageName || dump.rootfsImageName || img.id, imageId: img.id,
    entrypoint: dump.entrypoint ?? [], cmd: dump.command ?? (dump.entrypoint ? [] : proc.args ?? []),
    env: proc.env ?? [], workingDir: proc.cwd || '/', user: dump.user || user, hostname: spec.hostname ?? '',
    labels: dump.labels ?? {}, annotations: {}, mounts: [], readOnly: !!spec.root?.readonly, readOnlyTmpfs: true,
    capAdd: [], capDrop: [], network: namespaces.some((n) => n.type === 'network') ? 'none' : 'host',
    stopSignal: signal, stopTimeout: dump.stopTimeout ?? 10, logDriver: 'k8s-file', resources: {}, ulimits: [],
    terminal: !!proc.terminal, interactive: !!dump.stdin, autoRemove: false, restart: { name: 'no', maxRetries: 0 },
    runtime: rt.path, runtimeName: rt.name, init: false, noNewPrivileges: !!proc.noNewPrivileges,
  };
}

/** Podman's rootfs changes into the new container's root filesystem: deletions, then rootfs-diff.tar. */
async function applyRootfsDiff(store: Store, c: Container, dir: string): Promise<void> {
  const hasDeleted = existsSync(join(dir, DELETED_FILES));
  const hasDiff = existsSync(join(dir, ROOTFS_DIFF));
  if (!hasDeleted && !hasDiff) return;
  const rootfs = await store.mountContainer(c.record);
  if (hasDeleted) {
    const list = await readDump<unknown>(dir, DELETED_FILES, 'the checkpoint');
    if (!Array.isArray(list) || !list.every((x) => typeof x === 'string')) throw new ContainerError(`${DELETED_FILES} in the checkpoint is not a list of paths`);
    for (const p of list as string[]) {
      const host = await resolveInRoot(rootfs, p, { followFinal: false });
      if (host !== path.resolve(rootfs)) await rm(host, { recursive: true, force: true });
    }
  }
  if (hasDiff) {
    try {
      const { applyTar } = await import('../store/tar-apply.ts');
      await applyTar(createReadStream(join(dir, ROOTFS_DIFF)), { root: rootfs, whiteouts: 'none' });
    } catch (e) {
      throw new ContainerError(`cannot apply ${ROOTFS_DIFF} of the checkpoint: ${(e as Error).message}`);
    }
  }
}
