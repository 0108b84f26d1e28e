import { closeSync, createReadStream, createWriteStream, existsSync, lstatSync, openSync, readFileSync } from 'node:fs';
import { chmod, link, mkdir, readdir, readFile, readlink, rename, rm, symlink, writeFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Db } from './db.ts';
import { HashingStream, decompressor, detectCompression, hexOf, peek, sha256, DIGEST_RE } from './hashing.ts';
import type { ApplyResult } from './tar-apply.ts';
import type { FromWorker, ToWorker, UnpackJob } from './unpack-worker.ts';
import { exec } from '../sys/exec.ts';
import { writeAllSync } from '../sys/fd-writer.ts';
import { mountOverlay, mountPoints, unmount } from '../sys/mount.ts';
import { crypto, randomHex } from '../sys/lazy-builtins.ts';
import { isAlive, processStart } from '../sys/proc.ts';
import { removeTree } from '../sys/remove-tree.ts';
import { MediaType } from '../image/types.ts';

export type Driver = 'overlay' | 'vfs';

export interface StoreOptions {
  root: string;
  runroot: string;
  driver: Driver;
  /** Overlay metadata in user.* xattrs, as unprivileged overlay mounts require. */
  userxattr?: boolean;
  /** Mount overlays with this FUSE program (fuse-overlayfs) instead of the kernel's driver. */
  overlayMountProgram?: string;
}

export interface LayerRecord {
  id: string;
  parent: string | null;
  diffId: string;
  diffSize: number;
  blobDigest: string | null;
  blobSize: number | null;
  blobMediaType: string | null;
  link: string;
  created: string;
}

export interface ImageRecord {
  id: string;
  topLayer: string | null;
  manifestDigest: string;
  manifestMediaType: string;
  created: string | null;
  added: string;
  size: number;
  names: string[];
}

export interface ContainerRecord {
  id: string;
  name: string;
  kind: 'builder' | 'container';
  imageId: string | null;
  imageName: string | null;
  topLayer: string | null;
  created: string;
  mountpoint: string | null;
  data: string;
  /** The pod the container belongs to (a Podman container of `run/create --pod`, or a pod's infra container). */
  podId: string | null;
}

/** A Podman-style pod: `data` is owned by containers/pods.ts. */
export interface PodRecord {
  id: string;
  name: string;
  created: string;
  /** Its infra container, which holds the shared namespaces; null without one (--infra=false) or until it is made. */
  infraId: string | null;
  data: string;
}

export interface LayerInput {
  stream: Readable;
  parent: string | null;
  /** A known diff id lets an existing layer be reused without reading the stream. */
  expectedDiffId?: string;
  expectedBlobDigest?: string;
  expectedBlobSize?: number;
  /** Media type of the stream when it is compressed; uncompressed input is gzipped for the kept blob. */
  mediaType?: string;
  /** Called with bytes read from `stream`, for progress bars. */
  onProgress?: (bytes: number) => void;
}

export interface StagedLayer {
  stage: string;
  /** Digest of the stream as it was given (compressed or not). */
  rawDigest: string;
  diffId: string;
  diffSize: number;
  blobDigest: string;
  blobSize: number;
  mediaType: string;
}

export interface NewImage {
  config: Buffer;
  manifest: Buffer;
  manifestMediaType: string;
  /** Layer ids bottom to top; the last one is the image's top layer. */
  layers: string[];
  names: string[];
  created?: string;
}

/** A manifest list: kept as an image row with no layers and no config, whose manifest is the index. */
export interface NewList {
  manifest: Buffer;
  mediaType: string;
  names: string[];
  /** For each instance manifest digest, where push reads that image (see list_instances in db.ts). */
  sources: ReadonlyMap<string, string>;
}

export interface NewContainer {
  name?: string;
  nameBase?: string;
  /** Keep this id (a restored checkpoint keeps its container's); fails if it is taken. */
  id?: string;
  kind: 'builder' | 'container';
  imageId: string | null;
  imageName: string | null;
  data: string;
  /** Member of this pod; the pod must exist when the row is written. */
  podId?: string;
}

/** A Podman-style volume: its content is volumeDir(name)/_data; `data` is owned by containers/volumes.ts. */
export interface VolumeRecord {
  name: string;
  created: string;
  data: string;
}

/** A problem found by check(); `repair` says what --repair would do. */
export interface CheckIssue {
  what: string;
  repair: string;
  fix: () => Promise<void>;
}

export class StoreError extends Error {
  constructor(
    message: string,
    readonly code: 'notfound' | 'inuse' | 'conflict' | 'corrupt' | 'invalid' = 'invalid',
  ) {
    super(message);
    this.name = 'StoreError';
  }
}

type LayerRow = {
  id: string; parent: string | null; diff_id: string; diff_size: number; blob_digest: string | null;
  blob_size: number | null; blob_media_type: string | null; link: string; created: string;
};
type ImageRow = {
  id: string; top_layer: string | null; manifest_digest: string; manifest_media_type: string;
  created: string | null; added: string; size: number;
};
type ContainerRow = {
  id: string; name: string; kind: string; image_id: string | null; image_name: string | null;
  top_layer: string | null; created: string; mountpoint: string | null; data: string; pod_id: string | null;
};

const now = (): string => new Date().toISOString();
/** A pods row as a PodRecord. */
const POD_COLUMNS = 'SELECT id, name, created, infra_id AS infraId, data FROM pods';
const LIST_MEDIA_TYPES: ReadonlySet<string> = new Set([MediaType.ociIndex, MediaType.dockerManifestList]);

/** Whether the image row is a manifest list (its manifest an index, with no config or layers). */
export function isListRecord(img: Pick<ImageRecord, 'manifestMediaType'>): boolean {
  return LIST_MEDIA_TYPES.has(img.manifestMediaType);
}

/** Media type of layers kept as plain tars (imports, commits). */
const UNCOMPRESSED_LAYER = 'application/vnd.oci.image.layer.v1.tar';

export function chainId(parent: LayerRecord | null, diffId: string): string {
  return parent ? hexOf(sha256(`sha256:${parent.id} ${diffId}`)) : hexOf(diffId);
}

/**
 * The shared store. Content is written once under a private staging name and renamed into
 * place before its metadata row appears, so a crash at any point leaves at most an orphan
 * that check() and the next writer clean up — never a visible half object.
 */
export class Store {
  readonly db: Db;
  readonly root: string;
  readonly runroot: string;
  readonly driver: Driver;
  readonly userxattr: boolean;
  readonly overlayMountProgram: string | undefined;
  private readonly heldLocks = new Map<string, number>();
  private pinned = false;

  private constructor(opts: StoreOptions, db: Db) {
    this.root = opts.root;
    this.runroot = opts.runroot;
    this.driver = opts.driver;
    this.userxattr = opts.userxattr ?? false;
    this.overlayMountProgram = opts.overlayMountProgram;
    this.db = db;
  }

  static async open(opts: StoreOptions): Promise<Store> {
    const driverFile = join(opts.root, 'driver');
    // The driver file is written last when a store is made: with it there, the layout exists.
    const made = existsSync(driverFile);
    if (!made) {
      for (const d of ['blobs/sha256', 'layers', 'l', 'containers', 'volumes', 'tmp', 'empty']) {
        await mkdir(join(opts.root, d), { recursive: true, mode: 0o700 });
      }
    }
    // The runroot is usually on tmpfs and may have been emptied by a reboot.
    await mkdir(opts.runroot, { recursive: true, mode: 0o700 });
    if (!made) {
      // Written whole and linked into place, so processes opening a new store at once never read
      // a half-written file, and the first one's driver is the store's.
      const tmp = join(opts.root, 'tmp', `${process.pid}-${processStart(process.pid)}-driver`);
      await writeFile(tmp, opts.driver + '\n');
      try {
        await link(tmp, driverFile);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      } finally {
        await rm(tmp, { force: true });
      }
    }
    const existing = readFileSync(driverFile, 'utf8').trim();
    if (existing !== opts.driver) {
      throw new StoreError(
        `store at ${opts.root} uses the "${existing}" storage driver, not "${opts.driver}"; use --storage-driver ${existing} or another --root`,
      );
    }
    return new Store(opts, new Db(join(opts.root, 'barge.db')));
  }

  close(): void {
    // Most commands pin nothing; a write here would cost every command a transaction.
    if (this.pinned) {
      try {
        this.db.run("DELETE FROM locks WHERE name LIKE 'pin:%' AND pid = ?", process.pid);
      } catch {
        // Pins of a process that is gone are ignored anyway.
      }
    }
    this.db.close();
  }

  // ---------- paths ----------

  blobPath(digest: string): string {
    if (!DIGEST_RE.test(digest)) throw new StoreError(`invalid digest "${digest}"`);
    return join(this.root, 'blobs', digest.slice(0, digest.indexOf(':')), hexOf(digest));
  }

  layerDir(id: string): string {
    return join(this.root, 'layers', id, 'diff');
  }

  containerDir(id: string): string {
    return join(this.root, 'containers', id);
  }

  containerRunDir(id: string): string {
    return join(this.runroot, 'containers', id);
  }

  /** Podman's layout: the volume's content is in its _data subdirectory. */
  volumeDir(name: string): string {
    return join(this.root, 'volumes', name);
  }

  /** A path under tmp/ named so that check() knows whether its writer is still alive. */
  private tmpPath(): string {
    return join(this.root, 'tmp', `${process.pid}-${processStart(process.pid)}-${randomHex(6)}`);
  }

  /** A private staging directory, named so that check() knows whether its writer is still alive. */
  async staging(): Promise<string> {
    const dir = this.tmpPath();
    await mkdir(dir, { recursive: true });
    return dir;
  }

  /**
   * Removes what killed writers left under tmp/ (the entries check() reports as leftovers), so
   * an interrupted pull's debris goes with the next pull. One readdir when there is nothing.
   */
  async sweepTmp(): Promise<void> {
    for (const d of await readdir(join(this.root, 'tmp'))) {
      const m = /^(\d+)-(\d+)-/.exec(d);
      if (m && !isAlive(Number(m[1]), m[2]!)) await rm(join(this.root, 'tmp', d), { recursive: true, force: true });
    }
  }

  private async trash(path: string): Promise<void> {
    // Named like staging, so a check running meanwhile does not report a deletion in progress.
    const t = this.tmpPath();
    try {
      await rename(path, t);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    removeTree(t);
  }

  // ---------- locks ----------

  /**
   * A cross-process mutex held in the database. A lock whose holder has died (or whose pid
   * was reused by another process) is taken over, so a kill -9 never wedges the store.
   */
  async withLock<T>(name: string, fn: () => Promise<T>, timeoutMs = 120_000): Promise<T> {
    const held = this.heldLocks.get(name) ?? 0;
    if (held > 0) {
      this.heldLocks.set(name, held + 1);
      try {
        return await fn();
      } finally {
        this.heldLocks.set(name, (this.heldLocks.get(name) ?? 1) - 1);
      }
    }
    const me = processStart(process.pid);
    const deadline = Date.now() + timeoutMs;
    for (let delay = 5; ; delay = Math.min(delay * 2, 100)) {
      const got = this.db.tx(() => {
        const row = this.db.get<{ pid: number; start: string }>('SELECT pid, start FROM locks WHERE name = ?', name);
        if (row && isAlive(row.pid, row.start)) return false;
        this.db.run('INSERT OR REPLACE INTO locks (name, pid, start) VALUES (?, ?, ?)', name, process.pid, me);
        return true;
      });
      if (got) break;
      if (Date.now() > deadline) throw new StoreError(`timed out waiting for lock on ${name}`, 'inuse');
      await new Promise((r) => setTimeout(r, delay));
    }
    this.heldLocks.set(name, 1);
    try {
      return await fn();
    } finally {
      this.heldLocks.delete(name);
      this.db.run('DELETE FROM locks WHERE name = ? AND pid = ?', name, process.pid);
    }
  }

  /** Whether a live process (possibly this one) holds the named lock. */
  lockHeld(name: string): boolean {
    const row = this.db.get<{ pid: number; start: string }>('SELECT pid, start FROM locks WHERE name = ?', name);
    return !!row && isAlive(row.pid, row.start);
  }

  /**
   * Keeps a layer this process registered or reused out of garbage collection until the image or
   * container that will use it exists (or the process ends): between the two, nothing refers to it.
   * Must run inside a transaction that saw the layer's row.
   */
  private pin(id: string): void {
    this.pinned = true;
    this.db.run('INSERT OR REPLACE INTO locks (name, pid, start) VALUES (?, ?, ?)', `pin:${id}:${process.pid}`, process.pid, processStart(process.pid));
  }

  /** The layer, pinned for this process; undefined when it is not in the store. */
  private pinnedLayer(id: string): LayerRecord | undefined {
    return this.db.tx(() => {
      const l = this.getLayer(id);
      if (l) this.pin(id);
      return l;
    });
  }

  // ---------- blobs ----------

  hasBlob(digest: string): boolean {
    return existsSync(this.blobPath(digest));
  }

  async readBlob(digest: string): Promise<Buffer> {
    try {
      return await readFile(this.blobPath(digest));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new StoreError(`blob ${digest} is missing from the store`, 'corrupt');
      throw e;
    }
  }

  /**
   * Stores small content (configs, manifests) by digest; returns the digest. With `fresh`, a blob
   * already there is written again, so its mtime tells collectGarbage() that a writer has just
   * claimed it (lists share index blobs, and their blobs are left to that collection).
   */
  async putBlobBytes(data: Buffer, fresh = false): Promise<string> {
    const digest = sha256(data);
    const dest = this.blobPath(digest);
    if (!fresh && existsSync(dest)) return digest;
    // Under tmp/, not beside dest: a kill here leaves something check() finds and removes.
    const tmp = this.tmpPath();
    await writeFile(tmp, data);
    await rename(tmp, dest);
    return digest;
  }

  /** Moves a fully written and verified file into the blob directory. */
  async adoptBlobFile(file: string, digest: string): Promise<void> {
    await rename(file, this.blobPath(digest));
  }

  // ---------- layers ----------

  getLayer(id: string): LayerRecord | undefined {
    const r = this.db.get<LayerRow>('SELECT * FROM layers WHERE id = ?', id);
    return r && toLayer(r);
  }

  /** The layer and its parents, bottom first. */
  layerChain(top: string | null): LayerRecord[] {
    const chain: LayerRecord[] = [];
    for (let id = top; id; ) {
      const l = this.getLayer(id);
      if (!l) throw new StoreError(`layer ${id} is missing from the store`, 'corrupt');
      chain.push(l);
      id = l.parent;
    }
    return chain.reverse();
  }

  /**
   * Unpacks a layer in one pass: the stream is hashed (blob digest), kept as a blob, decompressed,
   * hashed again (diff id) and unpacked, all as it flows. Only a fully verified layer becomes visible.
   */
  async putLayer(input: LayerInput): Promise<LayerRecord> {
    const parent = input.parent ? this.getLayer(input.parent) ?? null : null;
    if (input.parent && !parent) throw new StoreError(`parent layer ${input.parent} not found`, 'notfound');
    if (input.expectedDiffId) {
      const existing = this.pinnedLayer(chainId(parent, input.expectedDiffId));
      if (existing) {
        input.stream.destroy();
        return existing;
      }
    }
    const staged = await this.stageLayer(input);
    try {
      if (input.expectedDiffId && staged.diffId !== input.expectedDiffId) {
        throw new StoreError(`layer diff id mismatch: the image config says ${input.expectedDiffId}, the layer content is ${staged.diffId}`, 'corrupt');
      }
      return await this.publishLayer(staged, parent?.id ?? null);
    } finally {
      await this.discardStaged(staged);
    }
  }

  /**
   * Unpacks and verifies a layer into a private staging directory without registering it.
   * Layers of one image can be staged in parallel and published bottom-up afterwards.
   */
  async stageLayer(input: LayerInput): Promise<StagedLayer> {
    const stage = await this.staging();
    try {
      const diffDir = join(stage, 'diff');
      await mkdir(diffDir, { mode: 0o755 });
      if (input.parent && this.driver === 'vfs') await copyTree(this.layerDir(input.parent), diffDir);
      const blobFile = join(stage, 'blob');
      const head = await peek(input.stream);
      const compression = detectCompression(head);
      const raw = new HashingStream();
      if (input.onProgress) {
        const cb = input.onProgress;
        raw.on('data', (c: Buffer) => cb(c.length));
      }
      // The stream is fanned out: kept as the blob as it arrives, and decompressed, hashed and
      // applied (in a worker thread for large layers: the tar's filesystem calls block, and there
      // they run beside the download, the hashing and the decompression).
      const toApply = new PassThrough();
      const toBlob = new PassThrough();
      const fan = fanout(toApply, toBlob);
      const file = createWriteStream(blobFile);
      const dec = decompressor(compression);
      // Uncompressed input is its own diff: raw's digest is the diff id.
      const diff = dec ? new HashingStream() : raw;
      const tarStream = new PassThrough();
      const job: UnpackJob = { root: diffDir, whiteouts: this.driver === 'overlay' ? 'overlay' : 'apply', userxattr: this.userxattr };
      const applying = applyTarStream(tarStream, job, input.expectedBlobSize ?? 0);
      const unpack = dec ? [toApply, dec, diff, tarStream] : [toApply, tarStream];
      await settleAll(
        [pipeline(input.stream, raw, fan), pipeline(toBlob, file), pipeline(unpack)],
        [input.stream, raw, fan, toBlob, file, ...unpack],
        [applying],
      );
      const diffId = diff.digest;
      const diffSize = diff.size;
      // Uncompressed input (import, commit, docker-archive) is kept uncompressed, as Buildah
      // keeps local layers: compression costs CPU at every commit and is done once, at push.
      const mediaType = compression === 'none'
        ? UNCOMPRESSED_LAYER
        : input.mediaType ?? (compression === 'zstd' ? 'application/vnd.oci.image.layer.v1.tar+zstd' : 'application/vnd.oci.image.layer.v1.tar+gzip');
      if (input.expectedBlobDigest && raw.digest !== input.expectedBlobDigest) {
        throw new StoreError(`digest mismatch for blob ${input.expectedBlobDigest}: got ${raw.digest}`, 'corrupt');
      }
      if (input.expectedBlobSize !== undefined && input.expectedBlobSize >= 0 && raw.size !== input.expectedBlobSize) {
        throw new StoreError(`size mismatch for blob ${input.expectedBlobDigest ?? raw.digest}: expected ${input.expectedBlobSize} bytes, got ${raw.size}`, 'corrupt');
      }
      return {
        stage, rawDigest: raw.digest, diffId, diffSize,
        blobDigest: raw.digest, blobSize: raw.size, mediaType,
      };
    } catch (e) {
      input.stream.destroy();
      await rm(stage, { recursive: true, force: true });
      throw e;
    }
  }

  /**
   * A layer on `parent` from a tar that `writeTar` produces synchronously (a commit), hashed into
   * the diff id and kept as the blob. With `tree`, a directory that already holds the layer's
   * content (the upper dir of a container that goes away) becomes the layer's tree: `prepare`
   * makes it hold exactly what the tar says and it is moved into the store. Without, the tree is
   * unpacked from the blob when a container first mounts the layer (ensureLayerTrees): a commit
   * whose image is pushed or saved but never run here writes its content once, not twice. When
   * the store already has the layer, `tree` is left as it is and the existing layer is returned.
   */
  async putLayerFromTar(
    writeTar: (sink: (chunk: Buffer) => void) => Promise<void>,
    parent: string | null,
    tree?: { dir: string; prepare: () => Promise<void> },
  ): Promise<LayerRecord> {
    const parentRec = parent ? this.getLayer(parent) ?? null : null;
    if (parent && !parentRec) throw new StoreError(`parent layer ${parent} not found`, 'notfound');
    const stage = await this.staging();
    try {
      // Hashed and written synchronously as the tar is made: nothing else runs meanwhile, and a
      // thread-pool write per piece only added waiting.
      const hash = crypto().createHash('sha256');
      let size = 0;
      const fd = openSync(join(stage, 'blob'), 'wx', 0o600);
      try {
        await writeTar((chunk) => {
          hash.update(chunk);
          size += chunk.length;
          writeAllSync(fd, chunk);
        });
      } finally {
        closeSync(fd);
      }
      const diffId = `sha256:${hash.digest('hex')}`;
      const existing = this.pinnedLayer(chainId(parentRec, diffId));
      if (existing) return existing;
      if (tree) {
        await tree.prepare();
        await rename(tree.dir, join(stage, 'diff'));
      }
      return await this.publishLayer(
        { stage, rawDigest: diffId, diffId, diffSize: size, blobDigest: diffId, blobSize: size, mediaType: UNCOMPRESSED_LAYER },
        parent,
      );
    } finally {
      await rm(stage, { recursive: true, force: true });
    }
  }

  async discardStaged(staged: StagedLayer): Promise<void> {
    await rm(staged.stage, { recursive: true, force: true });
  }

  /** Registers a staged layer on top of `parent`; an identical layer already present wins. */
  async publishLayer(staged: StagedLayer, parentId: string | null): Promise<LayerRecord> {
    const parent = parentId ? this.getLayer(parentId) ?? null : null;
    if (parentId && !parent) throw new StoreError(`parent layer ${parentId} not found`, 'notfound');
    const rec: LayerRecord = {
      id: chainId(parent, staged.diffId), parent: parentId, diffId: staged.diffId, diffSize: staged.diffSize,
      blobDigest: staged.blobDigest, blobSize: staged.blobSize, blobMediaType: staged.mediaType,
      link: randomHex(13).toUpperCase(), created: now(),
    };
    return this.registerLayer(staged.stage, rec, join(staged.stage, 'blob'));
  }

  private async registerLayer(stage: string, rec: LayerRecord, blobFile: string): Promise<LayerRecord> {
    // One writer per layer id at a time, and never while collectGarbage() is removing a layer of
    // that id: both work on the same layers/<id> path. check() also reads this lock to tell a
    // directory being published from one a crash left behind.
    return this.withLock(`layer:${rec.id}`, async () => {
      const existing = this.pinnedLayer(rec.id);
      if (existing) return existing;
      if (rec.blobDigest && !this.hasBlob(rec.blobDigest)) await this.adoptBlobFile(blobFile, rec.blobDigest);
      const dest = join(this.root, 'layers', rec.id);
      await rm(join(stage, 'blob'), { force: true });
      try {
        await rename(stage, dest);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
        // Not registered (checked under the lock above): a crashed writer left it.
        await this.trash(dest);
        await rename(stage, dest);
      }
      await mkdir(stage); // the caller removes its staging dir; keep that call harmless
      const linkPath = join(this.root, 'l', rec.link);
      await symlink(join('..', 'layers', rec.id, 'diff'), linkPath);
      return this.db.tx(() => {
        this.db.run(
          'INSERT INTO layers (id, parent, diff_id, diff_size, blob_digest, blob_size, blob_media_type, link, created) VALUES (?,?,?,?,?,?,?,?,?)',
          rec.id, rec.parent, rec.diffId, rec.diffSize, rec.blobDigest, rec.blobSize, rec.blobMediaType, rec.link, rec.created,
        );
        this.pin(rec.id);
        return rec;
      });
    });
  }

  // ---------- images ----------

  private imageFromRow(r: ImageRow): ImageRecord {
    const names = this.db.all<{ name: string }>('SELECT name FROM names WHERE image_id = ? ORDER BY rowid', r.id).map((n) => n.name);
    return {
      id: r.id, topLayer: r.top_layer, manifestDigest: r.manifest_digest, manifestMediaType: r.manifest_media_type,
      created: r.created, added: r.added, size: r.size, names,
    };
  }

  listImages(): ImageRecord[] {
    return this.db.all<ImageRow>('SELECT * FROM images ORDER BY added DESC').map((r) => this.imageFromRow(r));
  }

  getImage(id: string): ImageRecord | undefined {
    const r = this.db.get<ImageRow>('SELECT * FROM images WHERE id = ?', id);
    return r && this.imageFromRow(r);
  }

  imageByName(name: string): ImageRecord | undefined {
    const n = this.db.get<{ image_id: string }>('SELECT image_id FROM names WHERE name = ?', name);
    return n ? this.getImage(n.image_id) : undefined;
  }

  /** Images whose id starts with the given hex prefix. */
  imagesByIdPrefix(prefix: string): ImageRecord[] {
    if (!/^[a-f0-9]+$/.test(prefix)) return [];
    return this.db.all<ImageRow>("SELECT * FROM images WHERE id LIKE ? || '%'", prefix).map((r) => this.imageFromRow(r));
  }

  allNames(): { name: string; imageId: string }[] {
    return this.db.all<{ name: string; image_id: string }>('SELECT name, image_id FROM names').map((r) => ({ name: r.name, imageId: r.image_id }));
  }

  async imageConfig(id: string): Promise<Buffer> {
    return this.readBlob('sha256:' + id);
  }

  async imageManifest(img: ImageRecord): Promise<Buffer> {
    return this.readBlob(img.manifestDigest);
  }

  /** Registers an image whose layers are already in the store; names move to it from other images. */
  async createImage(n: NewImage): Promise<ImageRecord> {
    const id = hexOf(sha256(n.config));
    // deleteImage() removes an image's config and manifest blobs under the same lock.
    return this.withLock(`image:${id}`, () => this.createImageLocked(id, n));
  }

  private async createImageLocked(id: string, n: NewImage): Promise<ImageRecord> {
    await this.putBlobBytes(n.config);
    const manifestDigest = await this.putBlobBytes(n.manifest);
    const top = n.layers.length ? n.layers[n.layers.length - 1]! : null;
    this.db.tx(() => {
      // Inside the transaction, so no concurrent garbage collection can remove a layer in between.
      const chain = this.layerChain(top);
      if (chain.length !== n.layers.length || chain.some((l, i) => l.id !== n.layers[i])) {
        throw new StoreError('image layers do not form a chain in the store', 'corrupt');
      }
      const size = chain.reduce((s, l) => s + l.diffSize, 0);
      const existing = this.db.get<ImageRow>('SELECT * FROM images WHERE id = ?', id);
      if (!existing) {
        this.db.run(
          'INSERT INTO images (id, top_layer, manifest_digest, manifest_media_type, created, added, size) VALUES (?,?,?,?,?,?,?)',
          id, top, manifestDigest, n.manifestMediaType, n.created ?? null, now(), size,
        );
      }
      for (const name of n.names) this.db.run('INSERT OR REPLACE INTO names (name, image_id) VALUES (?, ?)', name, id);
      // The image keeps its layers alive now.
      for (const l of chain) this.db.run('DELETE FROM locks WHERE name = ?', `pin:${l.id}:${process.pid}`);
    });
    return this.getImage(id)!;
  }

  /**
   * Registers a manifest list under a new random id, as Buildah does: the id stays while the list
   * is edited. A name that another image has is a conflict, not moved to the list.
   */
  async createList(n: NewList): Promise<ImageRecord> {
    const id = randomHex(32);
    return this.withLock(`image:${id}`, async () => {
      const digest = await this.putBlobBytes(n.manifest, true);
      this.db.tx(() => {
        for (const name of n.names) {
          const holder = this.db.get<{ image_id: string }>('SELECT image_id FROM names WHERE name = ?', name);
          if (holder) throw new StoreError(`image name "${name}" is already associated with image "${holder.image_id}": that name is already in use`, 'conflict');
        }
        const t = now();
        this.db.run(
          'INSERT INTO images (id, top_layer, manifest_digest, manifest_media_type, created, added, size) VALUES (?,?,?,?,?,?,?)',
          id, null, digest, n.mediaType, t, t, n.manifest.length,
        );
        for (const name of n.names) this.db.run('INSERT INTO names (name, image_id) VALUES (?, ?)', name, id);
        this.writeListSources(id, n.sources);
      });
      return this.getImage(id)!;
    });
  }

  /** For each instance manifest digest of a list, where push reads that image. */
  listSources(id: string): Map<string, string> {
    const rows = this.db.all<{ digest: string; source: string }>('SELECT digest, source FROM list_instances WHERE list_id = ?', id);
    return new Map(rows.map((r) => [r.digest, r.source]));
  }

  /**
   * Rewrites a list under its lock: `edit` gets the current index and sources and returns the new
   * ones (or throws, leaving the list as it was). The old index blob is left to collectGarbage().
   */
  async updateList(
    id: string,
    edit: (manifest: Buffer, sources: Map<string, string>) => { manifest: Buffer; mediaType: string; sources: ReadonlyMap<string, string> },
  ): Promise<ImageRecord> {
    return this.withLock(`image:${id}`, async () => {
      const img = this.getImage(id);
      if (!img || !isListRecord(img)) throw new StoreError(`${id}: manifest list was removed`, 'notfound');
      const next = edit(await this.readBlob(img.manifestDigest), this.listSources(id));
      const digest = await this.putBlobBytes(next.manifest, true);
      this.db.tx(() => {
        // deleteImage() takes no lock before it drops the row: a list removed meanwhile stays removed.
        if (this.db.run('UPDATE images SET manifest_digest = ?, manifest_media_type = ?, size = ? WHERE id = ?', digest, next.mediaType, next.manifest.length, id) === 0) {
          throw new StoreError(`${id}: manifest list was removed`, 'notfound');
        }
        this.db.run('DELETE FROM list_instances WHERE list_id = ?', id);
        this.writeListSources(id, next.sources);
      });
      return this.getImage(id)!;
    });
  }

  private writeListSources(id: string, sources: ReadonlyMap<string, string>): void {
    for (const [digest, source] of sources) this.db.run('INSERT INTO list_instances (list_id, digest, source) VALUES (?,?,?)', id, digest, source);
  }

  addName(imageId: string, name: string): void {
    this.db.tx(() => {
      if (!this.getImage(imageId)) throw new StoreError(`image ${imageId} not found`, 'notfound');
      this.db.run('INSERT OR REPLACE INTO names (name, image_id) VALUES (?, ?)', name, imageId);
    });
  }

  removeName(imageId: string, name: string): boolean {
    return this.db.run('DELETE FROM names WHERE name = ? AND image_id = ?', name, imageId) > 0;
  }

  /** Deletes an image no container uses, then collects layers and blobs nothing references. */
  async deleteImage(id: string): Promise<void> {
    const manifestDigest = this.db.tx(() => {
      const users = this.db.all<{ name: string }>('SELECT name FROM containers WHERE image_id = ?', id);
      if (users.length) {
        throw new StoreError(`image ${id.slice(0, 12)} is in use by container(s): ${users.map((u) => u.name).join(', ')}`, 'inuse');
      }
      const row = this.db.get<{ manifest_digest: string; manifest_media_type: string }>('SELECT manifest_digest, manifest_media_type FROM images WHERE id = ?', id);
      if (!row) throw new StoreError(`image ${id} not found`, 'notfound');
      this.db.run('DELETE FROM names WHERE image_id = ?', id);
      this.db.run('DELETE FROM list_instances WHERE list_id = ?', id);
      this.db.run('DELETE FROM images WHERE id = ?', id);
      // Two lists of the same content share their index blob, and no lock covers both: a list's
      // blob is left to collectGarbage(), which spares what a writer has just (re)written.
      return LIST_MEDIA_TYPES.has(row.manifest_media_type) ? null : row.manifest_digest;
    });
    // Under the image's lock, so a writer registering the same image again keeps its blobs.
    if (manifestDigest !== null) {
      await this.withLock(`image:${id}`, async () => {
        if (this.getImage(id)) return;
        await rm(this.blobPath(`sha256:${id}`), { force: true });
        await rm(this.blobPath(manifestDigest), { force: true });
      });
    }
    await this.collectGarbage();
  }

  /** Removes layers no image or container reaches, and their blobs. */
  async collectGarbage(): Promise<{ layers: number; blobs: number }> {
    const { layers, blobs } = this.db.tx(() => {
      const reachable = new Set<string>();
      const tops = this.db.all<{ t: string | null }>('SELECT top_layer AS t FROM images UNION SELECT top_layer AS t FROM containers');
      // Layers a live writer registered for an image or container it has not created yet.
      for (const p of this.db.all<{ name: string; pid: number; start: string }>("SELECT name, pid, start FROM locks WHERE name LIKE 'pin:%'")) {
        if (isAlive(p.pid, p.start)) tops.push({ t: p.name.split(':')[1] ?? null });
        else this.db.run('DELETE FROM locks WHERE name = ?', p.name);
      }
      for (const { t } of tops) {
        for (let id = t; id && !reachable.has(id); ) {
          reachable.add(id);
          id = this.db.get<{ parent: string | null }>('SELECT parent FROM layers WHERE id = ?', id)?.parent ?? null;
        }
      }
      const dead = this.db.all<LayerRow>('SELECT * FROM layers').filter((l) => !reachable.has(l.id));
      for (const l of dead) this.db.run('DELETE FROM layers WHERE id = ?', l.id);
      const referenced = this.referencedBlobs();
      return { layers: dead, blobs: [...new Set(dead.map((l) => l.blob_digest).filter((d): d is string => !!d && !referenced.has(d)))] };
    });
    for (const l of layers) {
      await this.withLock(`layer:${l.id}`, async () => {
        await rm(join(this.root, 'l', l.link), { force: true });
        // A writer may have registered the same layer again since the transaction above.
        if (!this.getLayer(l.id)) await this.trash(join(this.root, 'layers', l.id));
      });
    }
    for (const b of blobs) {
      if (!this.db.get('SELECT 1 FROM layers WHERE blob_digest = ?', b)) await rm(this.blobPath(b), { force: true });
    }
    const orphanMeta = await this.unreferencedMetadataBlobs();
    for (const b of orphanMeta) await rm(this.blobPath(b), { force: true });
    return { layers: layers.length, blobs: blobs.length + orphanMeta.length };
  }

  /** Digests of every blob a layer or image row still names. */
  private referencedBlobs(): Set<string> {
    return new Set(this.db.all<{ d: string }>("SELECT blob_digest AS d FROM layers WHERE blob_digest IS NOT NULL UNION SELECT 'sha256:' || id AS d FROM images UNION SELECT manifest_digest AS d FROM images").map((r) => r.d));
  }

  /** Config and manifest blobs are small; find those of deleted images by scanning for JSON-sized files. */
  private async unreferencedMetadataBlobs(): Promise<string[]> {
    const referenced = this.referencedBlobs();
    const out: string[] = [];
    const dir = join(this.root, 'blobs', 'sha256');
    for (const f of await readdir(dir)) {
      if (!/^[a-f0-9]{64}$/.test(f) || referenced.has('sha256:' + f)) continue;
      const st = await stat(join(dir, f)).catch(() => null);
      // Recently written blobs may belong to a writer that has not registered them yet.
      if (st && st.size < 4 << 20 && Date.now() - st.mtimeMs > 60_000) out.push('sha256:' + f);
    }
    return out;
  }

  // ---------- containers ----------

  private containerFromRow(r: ContainerRow): ContainerRecord {
    return {
      id: r.id, name: r.name, kind: r.kind === 'container' ? 'container' : 'builder', imageId: r.image_id,
      imageName: r.image_name, topLayer: r.top_layer, created: r.created, mountpoint: r.mountpoint, data: r.data, podId: r.pod_id ?? null,
    };
  }

  listContainers(kind?: 'builder' | 'container'): ContainerRecord[] {
    const rows = kind
      ? this.db.all<ContainerRow>('SELECT * FROM containers WHERE kind = ? ORDER BY created', kind)
      : this.db.all<ContainerRow>('SELECT * FROM containers ORDER BY created');
    return rows.map((r) => this.containerFromRow(r));
  }

  /**
   * Runs fn under the container's lock, after checking the container still exists: another
   * process may have removed it between our lookup and the lock.
   */
  async withContainerLock<T>(c: ContainerRecord, fn: (current: ContainerRecord) => Promise<T>): Promise<T> {
    return this.withLock(`container:${c.id}`, async () => {
      const row = this.db.get<ContainerRow>('SELECT * FROM containers WHERE id = ?', c.id);
      if (!row) throw new StoreError(`container "${c.name}" was removed by another process`, 'notfound');
      return fn(this.containerFromRow(row));
    });
  }

  /** Finds a container by name, full id or unique id prefix. */
  findContainer(ref: string): ContainerRecord | undefined {
    let r = this.db.get<ContainerRow>('SELECT * FROM containers WHERE name = ? OR id = ?', ref, ref);
    if (!r && /^[a-f0-9]{3,63}$/.test(ref)) {
      const rows = this.db.all<ContainerRow>("SELECT * FROM containers WHERE id LIKE ? || '%'", ref);
      if (rows.length > 1) throw new StoreError(`container id prefix "${ref}" is ambiguous`, 'conflict');
      r = rows[0];
    }
    return r && this.containerFromRow(r);
  }

  getContainer(ref: string): ContainerRecord {
    const c = this.findContainer(ref);
    if (!c) throw new StoreError(`container "${ref}" not found`, 'notfound');
    return c;
  }

  /**
   * Creates a container with its own upper layer. `nameBase` without `name` picks
   * nameBase, nameBase-1, nameBase-2 ... like Buildah.
   */
  async createContainer(c: NewContainer): Promise<ContainerRecord> {
    if (c.id !== undefined && (!/^[a-f0-9]{64}$/.test(c.id) || this.db.get('SELECT 1 FROM containers WHERE id = ?', c.id))) {
      throw new StoreError(`container id ${c.id} is invalid or already in use`, 'conflict');
    }
    const id = c.id ?? randomHex(32);
    // Held from the rename until the row exists, so check() can tell this directory from a crash's.
    return this.withLock(`container:${id}`, () => this.createContainerLocked(id, c));
  }

  private async createContainerLocked(id: string, c: NewContainer): Promise<ContainerRecord> {
    const stage = await this.staging();
    for (const d of ['upper', 'work', 'merged']) await mkdir(join(stage, d), { mode: 0o755 });
    const dir = this.containerDir(id);
    try {
      await rename(stage, dir);
      return this.db.tx(() => {
        let topLayer: string | null = null;
        if (c.imageId) {
          const img = this.db.get<ImageRow>('SELECT * FROM images WHERE id = ?', c.imageId);
          if (!img) throw new StoreError(`image ${c.imageId} was removed`, 'notfound');
          topLayer = img.top_layer;
        }
        let name = c.name;
        if (!name) {
          const base = c.nameBase ?? 'working-container';
          const taken = new Set(
            this.db.all<{ name: string }>("SELECT name FROM containers WHERE name = ? OR name LIKE ? || '-%'", base, base).map((r) => r.name),
          );
          name = base;
          for (let i = 1; taken.has(name); i++) name = `${base}-${i}`;
        } else if (this.db.get('SELECT 1 FROM containers WHERE name = ?', name)) {
          throw new StoreError(`the container name "${name}" is already in use by another container`, 'conflict');
        } else if (this.db.get('SELECT 1 FROM pods WHERE name = ?', name)) {
          throw new StoreError(`name "${name}" is in use: pod already exists`, 'conflict');
        }
        // In the same transaction as the insert, so a concurrent `pod rm` either sees this member or has removed the pod.
        if (c.podId !== undefined && !this.db.get('SELECT 1 FROM pods WHERE id = ?', c.podId)) {
          throw new StoreError(`no pod with name or ID ${c.podId} found: no such pod`, 'notfound');
        }
        const row: ContainerRow = {
          id, name, kind: c.kind, image_id: c.imageId, image_name: c.imageName, top_layer: topLayer, created: now(), mountpoint: null, data: c.data,
          pod_id: c.podId ?? null,
        };
        this.db.run(
          'INSERT INTO containers (id, name, kind, image_id, image_name, top_layer, created, mountpoint, data, pod_id) VALUES (?,?,?,?,?,?,?,?,?,?)',
          row.id, row.name, row.kind, row.image_id, row.image_name, row.top_layer, row.created, row.mountpoint, row.data, row.pod_id,
        );
        return this.containerFromRow(row);
      });
    } catch (e) {
      await this.trash(dir);
      throw e;
    }
  }

  updateContainerData(id: string, data: string): void {
    if (this.db.run('UPDATE containers SET data = ? WHERE id = ?', data, id) === 0) {
      throw new StoreError(`container ${id} was removed`, 'notfound');
    }
  }

  /** Gives a container a new name; 'conflict' when another container (of either kind) has it. */
  renameContainer(id: string, name: string): void {
    this.db.tx(() => {
      const holder = this.db.get<{ id: string }>('SELECT id FROM containers WHERE name = ?', name);
      if (holder && holder.id !== id) throw new StoreError(`name ${name} is in use by container ${holder.id}`, 'conflict');
      if (this.db.get('SELECT 1 FROM pods WHERE name = ?', name)) throw new StoreError(`name ${name} is in use by a pod`, 'conflict');
      if (this.db.run('UPDATE containers SET name = ? WHERE id = ?', name, id) === 0) {
        throw new StoreError(`container ${id} was removed`, 'notfound');
      }
    });
  }

  upperDir(c: ContainerRecord): string {
    return join(this.containerDir(c.id), this.driver === 'vfs' ? 'merged' : 'upper');
  }

  /**
   * Unpacks the trees of the layers under `topLayer` that commits left as blobs only
   * (putLayerFromTar), so that they can be overlay lower layers or be read as directories.
   */
  async ensureLayerTrees(topLayer: string | null): Promise<void> {
    for (const l of this.layerChain(topLayer)) {
      if (!existsSync(this.layerDir(l.id))) await this.unpackLayerTree(l);
    }
  }

  private async unpackLayerTree(l: LayerRecord): Promise<void> {
    // The same lock as publishing and removing the layer: one unpacker, and never a half-removed layer.
    await this.withLock(`layer:${l.id}`, async () => {
      if (existsSync(this.layerDir(l.id))) return;
      if (!this.getLayer(l.id)) throw new StoreError(`layer ${l.id.slice(0, 12)} was removed by another process`, 'notfound');
      if (!l.blobDigest || !this.hasBlob(l.blobDigest)) {
        throw new StoreError(`layer ${l.id.slice(0, 12)} has neither a content directory nor a blob; run "barge system check --repair"`, 'corrupt');
      }
      const stage = await this.staging();
      try {
        const diffDir = join(stage, 'diff');
        await mkdir(diffDir, { mode: 0o755 });
        const src = createReadStream(this.blobPath(l.blobDigest));
        const head = await peek(src);
        const dec = decompressor(detectCompression(head));
        const tarStream = new PassThrough();
        const job: UnpackJob = { root: diffDir, whiteouts: 'overlay', userxattr: this.userxattr };
        const applying = applyTarStream(tarStream, job, l.blobSize ?? 0);
        const chain = dec ? [src, dec, tarStream] : [src, tarStream];
        await settleAll([pipeline(chain)], chain, [applying]);
        await rename(diffDir, this.layerDir(l.id));
      } finally {
        await rm(stage, { recursive: true, force: true });
      }
    });
  }

  /**
   * Mounts the container's root filesystem (idempotent) and returns its path. `volatile` is for a
   * container whose changes are thrown away (run --rm, as Podman mounts them): see OverlayMount.
   */
  async mountContainer(c: ContainerRecord, o: { volatile?: boolean } = {}): Promise<string> {
    const merged = join(this.containerDir(c.id), 'merged');
    if (this.driver === 'vfs') {
      const marker = join(this.containerDir(c.id), 'populated');
      if (!existsSync(marker)) {
        if (c.topLayer) await copyTree(this.layerDir(c.topLayer), merged);
        await writeFile(marker, '');
      }
    } else if (!mountPoints().has(merged)) {
      await this.ensureLayerTrees(c.topLayer);
      // The kernel leaves this behind a volatile mount and refuses the next mount while it is there,
      // as the upper dir may have lost writes in a crash; a container mounted so is disposable.
      if (o.volatile) removeTree(this.volatileMarker(c));
      const lowers = this.layerChain(c.topLayer).reverse().map((l) => join('l', l.link));
      await mountOverlay({
        lowers: lowers.length ? lowers : ['empty'],
        upper: join(this.containerDir(c.id), 'upper'),
        work: join(this.containerDir(c.id), 'work'),
        target: merged,
        cwd: this.root,
        userxattr: this.userxattr,
        ...(this.overlayMountProgram && { program: this.overlayMountProgram }),
        ...(o.volatile && { volatile: true }),
      });
    }
    this.db.run('UPDATE containers SET mountpoint = ? WHERE id = ?', merged, c.id);
    return merged;
  }

  /** Present once the container's rootfs was mounted volatile (and its upper dir maybe not synced). */
  volatileMarker(c: ContainerRecord): string {
    return join(this.containerDir(c.id), 'work', 'incompat', 'volatile');
  }

  isMounted(c: ContainerRecord): boolean {
    if (this.driver === 'vfs') return c.mountpoint !== null;
    return mountPoints().has(join(this.containerDir(c.id), 'merged'));
  }

  async unmountContainer(c: ContainerRecord): Promise<void> {
    const merged = join(this.containerDir(c.id), 'merged');
    if (this.driver === 'overlay' && mountPoints().has(merged)) await unmount(merged);
    this.db.run('UPDATE containers SET mountpoint = NULL WHERE id = ?', c.id);
  }

  async deleteContainer(c: ContainerRecord): Promise<void> {
    await this.unmountContainer(c);
    this.db.run('DELETE FROM containers WHERE id = ?', c.id);
    await this.trash(this.containerDir(c.id));
    removeTree(this.containerRunDir(c.id));
  }

  // ---------- pods ----------

  listPods(): PodRecord[] {
    return this.db.all<PodRecord>(`${POD_COLUMNS} ORDER BY created`);
  }

  /** Finds a pod by name, full id or unique id prefix. */
  findPod(ref: string): PodRecord | undefined {
    let r = this.db.get<PodRecord>(`${POD_COLUMNS} WHERE name = ? OR id = ?`, ref, ref);
    if (!r && /^[a-f0-9]{3,63}$/.test(ref)) {
      const rows = this.db.all<PodRecord>(`${POD_COLUMNS} WHERE id LIKE ? || '%'`, ref);
      if (rows.length > 1) throw new StoreError(`more than one result for pod ID ${ref}`, 'conflict');
      r = rows[0];
    }
    return r;
  }

  /** Adds a pod row; its name must be free among pods and containers alike, as in Podman. */
  createPod(p: PodRecord): void {
    this.db.tx(() => {
      if (this.db.get('SELECT 1 FROM pods WHERE name = ?', p.name)) throw new StoreError(`name "${p.name}" is in use: pod already exists`, 'conflict');
      if (this.db.get('SELECT 1 FROM containers WHERE name = ?', p.name)) throw new StoreError(`name "${p.name}" is in use: container already exists`, 'conflict');
      this.db.run('INSERT INTO pods (id, name, created, infra_id, data) VALUES (?,?,?,?,?)', p.id, p.name, p.created, p.infraId, p.data);
    });
  }

  setPodInfra(id: string, infraId: string): void {
    if (this.db.run('UPDATE pods SET infra_id = ? WHERE id = ?', infraId, id) === 0) throw new StoreError(`no pod with name or ID ${id} found: no such pod`, 'notfound');
  }

  updatePodData(id: string, data: string): void {
    if (this.db.run('UPDATE pods SET data = ? WHERE id = ?', data, id) === 0) throw new StoreError(`no pod with name or ID ${id} found: no such pod`, 'notfound');
  }

  /** The pod's containers, oldest first. */
  podContainers(podId: string): ContainerRecord[] {
    return this.db.all<ContainerRow>('SELECT * FROM containers WHERE pod_id = ? ORDER BY created', podId).map((r) => this.containerFromRow(r));
  }

  /** Deletes the pod's row; 'inuse' while a container still belongs to it. */
  deletePod(id: string): void {
    this.db.tx(() => {
      const left = this.db.get<{ n: number }>('SELECT count(*) AS n FROM containers WHERE pod_id = ?', id)?.n ?? 0;
      if (left > 0) throw new StoreError(`pod ${id} still has ${left} container(s)`, 'inuse');
      this.db.run('DELETE FROM pods WHERE id = ?', id);
    });
  }

  // ---------- volumes ----------

  listVolumes(): VolumeRecord[] {
    return this.db.all<VolumeRecord>('SELECT name, created, data FROM volumes ORDER BY name');
  }

  getVolume(name: string): VolumeRecord | undefined {
    return this.db.get<VolumeRecord>('SELECT name, created, data FROM volumes WHERE name = ?', name);
  }

  /**
   * Makes volumes/NAME/_data and then its row, under the volume's lock (held from the rename until
   * the row exists, so check() can tell this directory from a crash's); 'conflict' when it exists.
   */
  async createVolume(name: string, data: string): Promise<VolumeRecord> {
    return this.withLock(`volume:${name}`, async () => {
      if (this.getVolume(name)) throw new StoreError(`volume with name ${name} already exists: volume already exists`, 'conflict');
      const dir = this.volumeDir(name);
      // Stores made before volumes existed have no volumes/ yet.
      await mkdir(join(this.root, 'volumes'), { recursive: true, mode: 0o700 });
      // Under the lock and without a row, a directory of this name is what a crash left.
      if (existsSync(dir)) await this.trash(dir);
      const stage = await this.staging();
      await chmod(stage, 0o700);
      await mkdir(join(stage, '_data'), { mode: 0o755 });
      await rename(stage, dir);
      try {
        const rec: VolumeRecord = { name, created: now(), data };
        this.db.run('INSERT INTO volumes (name, created, data) VALUES (?,?,?)', rec.name, rec.created, rec.data);
        return rec;
      } catch (e) {
        await this.trash(dir);
        throw e;
      }
    });
  }

  updateVolumeData(name: string, data: string): void {
    if (this.db.run('UPDATE volumes SET data = ? WHERE name = ?', data, name) === 0) throw new StoreError(`no volume with name "${name}" found: no such volume`, 'notfound');
  }

  /** Removes the row, then the directory (a directory without a row is what check() reports). */
  async deleteVolume(name: string): Promise<void> {
    await this.withLock(`volume:${name}`, async () => {
      this.db.run('DELETE FROM volumes WHERE name = ?', name);
      await this.trash(this.volumeDir(name));
    });
  }

  // ---------- consistency ----------

  /** Finds everything a crash or a bug could have left inconsistent. */
  async check(): Promise<CheckIssue[]> {
    const issues: CheckIssue[] = [];
    const layerRows = this.db.all<LayerRow>('SELECT * FROM layers');
    const layerIds = new Set(layerRows.map((l) => l.id));
    for (const l of layerRows) {
      // A committed layer's tree is unpacked from its blob on first use (ensureLayerTrees).
      const packed = this.driver === 'overlay' && l.blob_digest !== null && this.hasBlob(l.blob_digest);
      if (!existsSync(join(this.root, 'layers', l.id)) || (!packed && !existsSync(this.layerDir(l.id)))) {
        issues.push({
          what: `layer ${l.id.slice(0, 12)} has no content directory`,
          repair: 'remove the layer and every image and container that uses it',
          fix: async () => this.dropBrokenLayer(l.id),
        });
      } else if (!lstatSync(join(this.root, 'l', l.link), { throwIfNoEntry: false })) {
        // lstat: a packed layer's link points at the tree it does not have yet.
        issues.push({
          what: `layer ${l.id.slice(0, 12)} is missing its short link`,
          repair: 'recreate the link',
          fix: async () => symlink(join('..', 'layers', l.id, 'diff'), join(this.root, 'l', l.link)),
        });
      }
      if (l.parent && !layerIds.has(l.parent)) {
        issues.push({ what: `layer ${l.id.slice(0, 12)} has a missing parent`, repair: 'remove it and its users', fix: async () => this.dropBrokenLayer(l.id) });
      }
      if (l.blob_digest && !this.hasBlob(l.blob_digest)) {
        issues.push({
          what: `layer ${l.id.slice(0, 12)} lost its blob ${l.blob_digest}`,
          // An unpacked layer cannot be turned back into the exact bytes its digests name, so
          // images that use it could never be pushed or saved again: they go, and pull rebuilds them.
          repair: 'remove the layer and every image and container that uses it',
          fix: async () => this.dropBrokenLayer(l.id),
        });
      }
    }
    for (const d of await readdir(join(this.root, 'layers'))) {
      if (!layerIds.has(d) && !this.lockHeld(`layer:${d}`) && !this.getLayer(d)) {
        issues.push({ what: `layer directory ${d.slice(0, 12)} is not registered (interrupted write)`, repair: 'delete it', fix: async () => this.trash(join(this.root, 'layers', d)) });
      }
    }
    const links = new Set(layerRows.map((l) => l.link));
    for (const d of await readdir(join(this.root, 'l'))) {
      if (links.has(d)) continue;
      // "../layers/<id>/diff": a layer being published gets its link just before its row.
      const target = await readlink(join(this.root, 'l', d)).catch(() => '');
      const owner = /^\.\.\/layers\/([a-f0-9]+)\/diff$/.exec(target)?.[1];
      if (owner && this.lockHeld(`layer:${owner}`)) continue;
      // Registered since this check read the table (its writer finished meanwhile).
      if (this.db.get('SELECT 1 FROM layers WHERE link = ?', d)) continue;
      issues.push({ what: `stale layer link l/${d}`, repair: 'delete it', fix: async () => rm(join(this.root, 'l', d), { force: true }) });
    }
    for (const img of this.db.all<ImageRow>('SELECT * FROM images')) {
      const list = LIST_MEDIA_TYPES.has(img.manifest_media_type);
      const broken =
        (img.top_layer && !layerIds.has(img.top_layer) && !this.getLayer(img.top_layer)) ||
        // A list has no config: its id is random, not a digest.
        (!list && !this.hasBlob('sha256:' + img.id)) ||
        !this.hasBlob(img.manifest_digest) ||
        (list && !(await this.isIndexBlob(img.manifest_digest)));
      // An image removed while this check ran is gone, not broken (a list edited meanwhile names another blob).
      const current = this.getImage(img.id);
      if (broken && current && current.manifestDigest === img.manifest_digest) {
        issues.push({
          what: list ? `manifest list ${img.id.slice(0, 12)} is missing its index or it is not one` : `image ${img.id.slice(0, 12)} is missing its layers, config or manifest`,
          repair: 'remove the image',
          fix: async () => {
            this.db.tx(() => {
              this.db.run('DELETE FROM names WHERE image_id = ?', img.id);
              this.db.run('DELETE FROM list_instances WHERE list_id = ?', img.id);
              this.db.run('DELETE FROM images WHERE id = ?', img.id);
            });
          },
        });
      }
    }
    for (const { list_id: list } of this.db.all<{ list_id: string }>('SELECT DISTINCT list_id FROM list_instances WHERE list_id NOT IN (SELECT id FROM images)')) {
      issues.push({
        what: `instance records of a removed manifest list ${list.slice(0, 12)}`,
        repair: 'delete them',
        fix: async () => {
          this.db.run('DELETE FROM list_instances WHERE list_id = ? AND list_id NOT IN (SELECT id FROM images)', list);
        },
      });
    }
    const ctrRows = this.db.all<ContainerRow>('SELECT * FROM containers');
    const ctrIds = new Set(ctrRows.map((c) => c.id));
    for (const c of ctrRows) {
      const broken =
        (c.top_layer && !layerIds.has(c.top_layer) && !this.getLayer(c.top_layer)) ||
        !existsSync(this.containerDir(c.id)) ||
        // A commit that makes the upper dir its layer (commit --rm) and was killed before it removed the container.
        (this.driver === 'overlay' && !existsSync(this.upperDir(this.containerFromRow(c))) && !this.lockHeld(`container:${c.id}`));
      if (broken && this.db.get('SELECT 1 FROM containers WHERE id = ?', c.id)) {
        // A pod cannot run without its infra container: it goes too, as `pod rm` would remove it.
        const pod = this.db.get<{ id: string; name: string }>('SELECT id, name FROM pods WHERE infra_id = ?', c.id);
        issues.push({
          what: `container ${c.name} is missing its layers or directory`,
          repair: pod ? `remove the container and its pod ${pod.name} with the pod's containers` : 'remove the container',
          fix: async () => (pod ? this.removePodAndContainers(pod.id) : this.deleteContainer(this.containerFromRow(c))),
        });
      }
    }
    for (const d of await readdir(join(this.root, 'containers'))) {
      if (!ctrIds.has(d) && !this.lockHeld(`container:${d}`) && !this.db.get('SELECT 1 FROM containers WHERE id = ?', d)) {
        issues.push({ what: `container directory ${d.slice(0, 12)} is not registered (interrupted create)`, repair: 'delete it', fix: async () => this.trash(join(this.root, 'containers', d)) });
      }
    }
    issues.push(...this.checkPods());
    issues.push(...(await this.checkVolumes()));
    for (const d of await readdir(join(this.root, 'tmp'))) {
      const m = /^(\d+)-(\d+)-/.exec(d);
      if (m && isAlive(Number(m[1]), m[2]!)) continue;
      // Its owner may have finished, removing it, between the listing and the liveness check.
      if (!existsSync(join(this.root, 'tmp', d))) continue;
      issues.push({ what: `leftover temporary data tmp/${d} from an interrupted command`, repair: 'delete it', fix: async () => rm(join(this.root, 'tmp', d), { recursive: true, force: true }) });
    }
    return issues;
  }

  /** Whether a list's blob holds an image index (parses, and names its manifests); false for a missing blob. */
  private async isIndexBlob(digest: string): Promise<boolean> {
    try {
      const v = JSON.parse((await this.readBlob(digest)).toString()) as { schemaVersion?: unknown; manifests?: unknown };
      return v.schemaVersion === 2 && Array.isArray(v.manifests);
    } catch {
      return false;
    }
  }

  /**
   * Pods whose infra container is gone (removed behind the pod's back, or a `pod rm` that died
   * between its containers and its row): they can never start again.
   */
  private checkPods(): CheckIssue[] {
    const broken = this.db.all<{ id: string; name: string }>(
      'SELECT id, name FROM pods WHERE infra_id IS NOT NULL AND infra_id NOT IN (SELECT id FROM containers)',
    );
    return broken
      .filter((p) => !this.lockHeld(`pod:${p.id}`))
      .map((p) => ({
        what: `pod ${p.name} is missing its infra container`,
        repair: 'remove the pod and its containers',
        fix: () => this.removePodAndContainers(p.id),
      }));
  }

  /** The repair of a pod that cannot run: its containers' rows and files, then its row. */
  private async removePodAndContainers(podId: string): Promise<void> {
    for (const c of this.podContainers(podId)) await this.deleteContainer(c);
    this.deletePod(podId);
  }

  /** Volume rows without their directory, and volume directories without a row (a create that died). */
  private async checkVolumes(): Promise<CheckIssue[]> {
    const issues: CheckIssue[] = [];
    for (const v of this.listVolumes()) {
      const data = join(this.volumeDir(v.name), '_data');
      if (!existsSync(data) && !this.lockHeld(`volume:${v.name}`) && this.getVolume(v.name)) {
        issues.push({
          what: `volume ${v.name} is missing its directory`,
          repair: 'recreate it empty',
          fix: async () => {
            await mkdir(data, { recursive: true, mode: 0o755 });
          },
        });
      }
    }
    const dirs = await readdir(join(this.root, 'volumes')).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return [];
      throw e;
    });
    for (const d of dirs) {
      if (!this.lockHeld(`volume:${d}`) && !this.getVolume(d)) {
        issues.push({ what: `volume directory ${d} is not registered (interrupted create or removal)`, repair: 'delete it', fix: async () => this.trash(this.volumeDir(d)) });
      }
    }
    return issues;
  }

  private async dropBrokenLayer(id: string): Promise<void> {
    const doomed = new Set<string>([id]);
    // Children of a broken layer are broken too.
    for (let grew = true; grew; ) {
      grew = false;
      for (const l of this.db.all<LayerRow>('SELECT * FROM layers')) {
        if (l.parent && doomed.has(l.parent) && !doomed.has(l.id)) {
          doomed.add(l.id);
          grew = true;
        }
      }
    }
    for (const c of this.listContainers()) if (c.topLayer && doomed.has(c.topLayer)) await this.deleteContainer(c);
    this.db.tx(() => {
      for (const img of this.db.all<ImageRow>('SELECT * FROM images')) {
        if (img.top_layer && doomed.has(img.top_layer)) {
          this.db.run('DELETE FROM names WHERE image_id = ?', img.id);
          this.db.run('DELETE FROM images WHERE id = ?', img.id);
        }
      }
    });
    await this.collectGarbage();
  }
}

function toLayer(r: LayerRow): LayerRecord {
  return {
    id: r.id, parent: r.parent, diffId: r.diff_id, diffSize: r.diff_size, blobDigest: r.blob_digest,
    blobSize: r.blob_size, blobMediaType: r.blob_media_type, link: r.link, created: r.created,
  };
}

/**
 * Waits for every branch of a fanned-out pipeline. The first failure tears all streams down;
 * then, once every stream has closed and every non-stream branch (the unpacker) has stopped —
 * so nothing still writes into the staging directory — that first error, the real cause, is
 * thrown. Stream pipelines are awaited through their streams' close events: a pipeline whose
 * streams were destroyed around it does not always settle its promise.
 */
async function settleAll(
  branches: Promise<unknown>[],
  streams: { destroy(e?: Error): void; closed?: boolean; once(ev: 'close', fn: () => void): unknown }[],
  workers: Promise<unknown>[] = [],
): Promise<void> {
  let first: unknown;
  let failed!: () => void;
  const failure = new Promise<void>((r) => (failed = r));
  const watched = [...branches, ...workers].map((p) =>
    p.catch((e: unknown) => {
      if (first !== undefined) return;
      first = e;
      for (const s of streams) s.destroy();
      failed();
    }),
  );
  const closed = (s: (typeof streams)[number]): Promise<void> =>
    s.closed ? Promise.resolve() : new Promise<void>((r) => s.once('close', r));
  await Promise.race([
    Promise.all(watched),
    failure.then(() => Promise.all([...streams.map(closed), ...workers.map((w) => w.catch(() => undefined))])),
  ]);
  if (first !== undefined) throw first;
}

/** A writable that forwards every chunk to two streams, waiting for the slower one. */
function fanout(a: PassThrough, b: PassThrough): PassThrough {
  const out = new PassThrough();
  out.on('data', (chunk: Buffer) => {
    const okA = a.write(chunk);
    const okB = b.write(chunk);
    if (!okA || !okB) {
      out.pause();
      let waiting = (okA ? 0 : 1) + (okB ? 0 : 1);
      const resume = (): void => {
        if (--waiting === 0) out.resume();
      };
      if (!okA) a.once('drain', resume);
      if (!okB) b.once('drain', resume);
    }
  });
  out.on('end', () => {
    a.end();
    b.end();
  });
  out.on('error', (e) => {
    a.destroy(e);
    b.destroy(e);
  });
  return out;
}

/** Layers at least this large are unpacked in a worker thread; below it, starting one costs more than it saves. */
const WORKER_MIN_BYTES = 1 << 20;
/** Bytes gathered before they are handed to an unpack worker in one message. */
const WORKER_BATCH = 1 << 20;
/**
 * Bytes handed to an unpack worker and not yet taken in, before the download waits: enough to go
 * on downloading, hashing and decompressing while the worker starts (some 50 ms).
 */
const WORKER_BACKLOG = 32 << 20;
/** The bundled worker beside this module; none when running from sources (tests import the store directly). */
const WORKER_URL: URL | null = import.meta.url.endsWith('.ts') ? null : new URL('./unpack-worker.mjs', import.meta.url);

/** Applies a layer's tar of `size` bytes (0 when unknown): in a worker thread from WORKER_MIN_BYTES up. */
function applyTarStream(src: Readable, job: UnpackJob, size: number): Promise<ApplyResult> {
  return WORKER_URL !== null && size >= WORKER_MIN_BYTES ? applyInWorker(WORKER_URL, src, job) : applyHere(src, job);
}

/** Applies the tar on this thread. */
async function applyHere(src: Readable, job: UnpackJob): Promise<ApplyResult> {
  // Loaded here, not with the store: most commands never unpack a layer.
  const { applyTar } = await import('./tar-apply.ts');
  return applyTar(src, job);
}

/**
 * Applies the tar in a worker thread (src/store/unpack-worker.ts), feeding it src with bounded
 * backlog. Settles only once the worker has stopped, so nothing writes into the staging directory after.
 */
async function applyInWorker(url: URL, src: Readable, job: UnpackJob): Promise<ApplyResult> {
  const { Worker } = await import('node:worker_threads');
  const worker = new Worker(url, { workerData: job });
  let backlog = 0;
  let wake: (() => void) | null = null;
  const state: { result: ApplyResult | null; error: Error | null } = { result: null, error: null };
  const finished = new Promise<ApplyResult>((resolve, reject) => {
    const settle = (result: ApplyResult | null, error: Error | null): void => {
      if (state.result === null && state.error === null) {
        state.result = result;
        state.error = error;
      }
      wake?.();
      if (state.result !== null) resolve(state.result);
      else reject(state.error);
    };
    worker.on('message', (m: FromWorker) => {
      if ('ack' in m) {
        backlog -= m.ack;
        if (backlog < WORKER_BACKLOG) wake?.();
      } else if ('done' in m) {
        settle(m.done, null);
      } else {
        settle(null, Object.assign(new Error(m.error.message), m.error.code !== undefined ? { code: m.error.code } : {}));
      }
    });
    worker.on('error', (e) => settle(null, e));
    worker.on('exit', () => settle(null, new Error('the layer unpacker stopped unexpectedly')));
  });
  const over = (): boolean => state.result !== null || state.error !== null;
  // Chunks are gathered into batches of their own memory and transferred, not cloned: a
  // structured clone copies a chunk's whole backing buffer (often shared with other chunks) twice.
  let batch: Buffer[] = [];
  let batched = 0;
  const send = (): void => {
    if (batched === 0) return;
    const bytes = Buffer.concat(batch, batched);
    const chunk = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    // A concat of this size has a backing buffer of its own (not Buffer's shared pool), so it can move.
    worker.postMessage({ chunk } satisfies ToWorker, bytes.byteOffset === 0 && bytes.buffer.byteLength === batched ? [bytes.buffer] : []);
    backlog += batched;
    batch = [];
    batched = 0;
  };
  const feed = async (): Promise<void> => {
    for await (const chunk of src as AsyncIterable<Buffer>) {
      if (over()) return;
      batch.push(chunk);
      batched += chunk.length;
      if (batched >= WORKER_BATCH) send();
      while (backlog >= WORKER_BACKLOG && !over()) await new Promise<void>((r) => (wake = r));
    }
    send();
    worker.postMessage({ end: true } satisfies ToWorker);
  };
  try {
    const [, result] = await Promise.all([feed(), finished]);
    return result;
  } catch (e) {
    // The worker's own error explains more than a torn-down stream. src is left to the caller,
    // whose teardown must come after this failure, or it would be reported as the cause.
    throw state.error ?? e;
  } finally {
    await worker.terminate();
  }
}

/** Full copy preserving everything (vfs driver, volume copy-up); cp keeps xattrs, devices and hardlinks. */
export async function copyTree(from: string, to: string): Promise<void> {
  await exec('cp', ['-a', '--reflink=auto', from + '/.', to]);
}
