import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline as pipelineCb, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createZstdDecompress } from 'node:zlib';
import { digestStream, hexOf, sha256, validateDigest } from '../digest.ts';
import { detectCompression, MAX_CONFIG_SIZE, parseImageConfig, parseManifest } from '../manifest.ts';
import { BlobStaging, formatRef, NotFoundError, type BlobInfo, type ImageDestination, type ImageSource, type Transport } from '../transport.ts';
import { MediaType, type Descriptor, type ManifestFormat } from '../types.ts';
import { checkArchiveTarget, TarArchive, writeTarAtomic, type TarInput } from './oci-archive.ts';
import { parseDockerArchiveSpec, tryNormalize } from './docker-archive-ref.ts';

const MAX_ARCHIVE_MANIFEST = 16 * 1024 * 1024;

/** One entry of a docker/podman save archive's manifest.json. */
export interface ArchiveManifestItem {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

export { normalizeRepoTag, parseDockerArchiveSpec } from './docker-archive-ref.ts';

function parseArchiveManifest(file: string, bytes: Buffer): ArchiveManifestItem[] {
  let v: unknown;
  try {
    v = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new Error(`${file}: malformed manifest.json: ${(e as Error).message}`);
  }
  if (!Array.isArray(v)) throw new Error(`${file}: manifest.json is not an array`);
  return v.map((it: unknown, n) => {
    const item = it as Partial<ArchiveManifestItem> | null;
    if (
      typeof item !== 'object' ||
      item === null ||
      typeof item.Config !== 'string' ||
      !Array.isArray(item.Layers) ||
      item.Layers.some((l) => typeof l !== 'string') ||
      (item.RepoTags != null && (!Array.isArray(item.RepoTags) || item.RepoTags.some((t) => typeof t !== 'string')))
    ) {
      throw new Error(`${file}: manifest.json entry ${n} is malformed`);
    }
    return item as ArchiveManifestItem;
  });
}

function selectItem(reference: string, items: ArchiveManifestItem[], ref: string | undefined, index: number | undefined): ArchiveManifestItem {
  if (index !== undefined) {
    const item = items[index];
    if (!item) throw new NotFoundError(`${reference}: no image @${index}; the archive holds ${items.length} image(s)`);
    return item;
  }
  if (ref !== undefined) {
    const item = items.find((it) => (it.RepoTags ?? []).some((t) => tryNormalize(t) === ref));
    if (!item) {
      const tags = items.flatMap((it) => it.RepoTags ?? []);
      throw new NotFoundError(`${reference}: no image tagged ${ref} in the archive${tags.length ? `; it has: ${tags.join(', ')}` : ''}`);
    }
    return item;
  }
  if (items.length === 1) return items[0]!;
  if (items.length === 0) throw new NotFoundError(`${reference}: the archive contains no images`);
  const listing = items.map((it, n) => `@${n}${it.RepoTags?.length ? ` (${it.RepoTags.join(', ')})` : ''}`).join(', ');
  throw new Error(`${reference}: the archive contains ${items.length} images; pick one with ":name:tag" or ":@N": ${listing}`);
}

interface ArchiveBlob {
  member: string;
  /** zstd layers are served decompressed: Docker schema2 has no zstd media type. */
  zstd: boolean;
}

export class DockerArchiveSource implements ImageSource {
  readonly reference: string;
  readonly #archive: TarArchive;
  readonly #manifest: Buffer;
  readonly #config: { digest: string; bytes: Buffer };
  readonly #blobs: Map<string, ArchiveBlob>;

  private constructor(reference: string, archive: TarArchive, manifest: Buffer, config: { digest: string; bytes: Buffer }, blobs: Map<string, ArchiveBlob>) {
    this.reference = reference;
    this.#archive = archive;
    this.#manifest = manifest;
    this.#config = config;
    this.#blobs = blobs;
  }

  static async open(reference: string, file: string, ref: string | undefined, index: number | undefined): Promise<DockerArchiveSource> {
    const archive = await TarArchive.open(file);
    try {
      const items = parseArchiveManifest(file, await archive.readFile('manifest.json', MAX_ARCHIVE_MANIFEST).catch((e: unknown) => {
        if (e instanceof NotFoundError) throw new Error(`${reference}: not a docker archive (no manifest.json)`);
        throw e;
      }));
      const item = selectItem(reference, items, ref, index);
      const configBytes = await archive.readFile(item.Config, MAX_CONFIG_SIZE);
      const config = parseImageConfig(configBytes);
      const diffIds = config.rootfs.diff_ids;
      if (diffIds.length !== item.Layers.length) {
        throw new Error(`${reference}: manifest.json lists ${item.Layers.length} layers but the config has ${diffIds.length} diff_ids`);
      }
      const configDigest = sha256(configBytes);
      const blobs = new Map<string, ArchiveBlob>();
      const layers: Descriptor[] = [];
      for (const [i, member] of item.Layers.entries()) {
        const diffId = diffIds[i]!;
        const size = archive.size(member);
        if (size < 0) throw new NotFoundError(`${reference}: layer file ${member} is missing from the archive`);
        const compression = detectCompression(await archive.readHead(member, 4));
        let desc: Descriptor;
        if (compression === 'none') {
          // Uncompressed, so the digest is the diff_id; the copy pipeline verifies it while streaming.
          desc = { mediaType: MediaType.dockerLayer, digest: diffId, size };
          blobs.set(diffId, { member, zstd: false });
        } else if (compression === 'gzip') {
          const h = digestStream();
          await pipeline(archive.openRead(member).stream, h, async (s: AsyncIterable<Buffer>) => {
            for await (const _ of s);
          });
          desc = { mediaType: MediaType.dockerLayerGzip, digest: h.digest, size };
          blobs.set(h.digest, { member, zstd: false });
        } else {
          const h = digestStream();
          await pipeline(archive.openRead(member).stream, createZstdDecompress(), h, async (s: AsyncIterable<Buffer>) => {
            for await (const _ of s);
          });
          if (h.digest !== diffId) throw new Error(`${reference}: layer ${member} decompresses to ${h.digest}, but the config says ${diffId}`);
          desc = { mediaType: MediaType.dockerLayer, digest: h.digest, size: h.size };
          blobs.set(h.digest, { member, zstd: true });
        }
        layers.push(desc);
      }
      const manifest = {
        schemaVersion: 2,
        mediaType: MediaType.dockerManifest,
        config: { mediaType: MediaType.dockerConfig, size: configBytes.length, digest: configDigest },
        layers,
      };
      return new DockerArchiveSource(reference, archive, Buffer.from(JSON.stringify(manifest)), { digest: configDigest, bytes: configBytes }, blobs);
    } catch (e) {
      await archive.close();
      throw e;
    }
  }

  async getManifest(instance?: string): Promise<{ bytes: Buffer; mediaType: string }> {
    if (instance !== undefined && instance !== sha256(this.#manifest)) {
      throw new NotFoundError(`${this.reference}: has a single image; no instance ${instance}`);
    }
    return { bytes: this.#manifest, mediaType: MediaType.dockerManifest };
  }

  async getBlob(info: BlobInfo): Promise<{ stream: Readable; size: number }> {
    validateDigest(info.digest, 'blob digest');
    if (info.digest === this.#config.digest) return { stream: Readable.from([this.#config.bytes]), size: this.#config.bytes.length };
    const blob = this.#blobs.get(info.digest);
    if (!blob) throw new NotFoundError(`${this.reference}: blob ${info.digest} not found`);
    const { stream, size } = this.#archive.openRead(blob.member);
    if (!blob.zstd) return { stream, size };
    // The callback form of pipeline returns the last stream and tears down both ends on error.
    return { stream: pipelineCb(stream, createZstdDecompress(), () => {}), size: -1 };
  }

  close(): Promise<void> {
    return this.#archive.close();
  }
}

/**
 * Writes a single-image archive in the layout `podman save` produces (and `docker load` accepts):
 * `<config-hex>.json`, uncompressed `<diffid-hex>.tar` layers, `manifest.json`, `repositories`.
 */
export class DockerArchiveDestination implements ImageDestination {
  readonly reference: string;
  readonly supportedManifestFormats: ManifestFormat[] = ['docker'];
  readonly wantsUncompressedLayers = true;
  readonly #file: string;
  #repoTag: string | undefined;
  readonly #tempDir: string;
  readonly #staging: BlobStaging;
  #manifest: Buffer | undefined;
  #closed = false;
  /** Set by openMulti(): commit() adds an image and finish() writes the archive (podman save -m). */
  #multi = false;
  readonly #items: ArchiveManifestItem[] = [];
  readonly #entries: TarInput[] = [];
  readonly #written = new Set<string>();
  readonly #repositories: Record<string, Record<string, string>> = {};

  private constructor(reference: string, file: string, repoTag: string | undefined, tempDir: string, staging: BlobStaging) {
    this.reference = reference;
    this.#file = file;
    this.#repoTag = repoTag;
    this.#tempDir = tempDir;
    this.#staging = staging;
  }

  static async open(reference: string, file: string, repoTag: string | undefined): Promise<DockerArchiveDestination> {
    await checkArchiveTarget(reference, file);
    const tempDir = await mkdtemp(join(tmpdir(), 'barge-docker-archive-'));
    try {
      return new DockerArchiveDestination(reference, file, repoTag, tempDir, await BlobStaging.create(tempDir));
    } catch (e) {
      await rm(tempDir, { recursive: true, force: true });
      throw e;
    }
  }

  /** An archive that holds several images: copy each in (setting its tag first), then finish(). */
  static async openMulti(reference: string, file: string): Promise<DockerArchiveDestination> {
    const d = await DockerArchiveDestination.open(reference, file, undefined);
    d.#multi = true;
    return d;
  }

  /** The name the next committed image gets (multi-image archives). */
  setRepoTag(repoTag: string | undefined): void {
    this.#repoTag = repoTag;
  }

  async finish(): Promise<void> {
    await this.#write();
    await this.close();
  }

  async hasBlob(info: BlobInfo): Promise<boolean> {
    return this.#staging.has(validateDigest(info.digest, 'blob digest'), info.size);
  }

  putBlob(stream: Readable, info: BlobInfo): Promise<BlobInfo> {
    if (info.digest) validateDigest(info.digest, 'blob digest');
    return this.#staging.put(stream, info);
  }

  async putManifest(bytes: Buffer, mediaType: string): Promise<void> {
    if (mediaType !== MediaType.dockerManifest) throw new Error(`${this.reference}: can only store Docker schema2 manifests, not ${mediaType}`);
    const p = parseManifest(bytes, mediaType);
    if (p.kind !== 'manifest') throw new Error(`${this.reference}: cannot store an image index`);
    this.#manifest = bytes;
  }

  async commit(): Promise<void> {
    if (this.#closed) throw new Error(`${this.reference}: already committed or closed`);
    if (!this.#manifest) throw new Error(`${this.reference}: commit without a manifest`);
    const p = parseManifest(this.#manifest, MediaType.dockerManifest);
    if (p.kind !== 'manifest') throw new Error(`${this.reference}: not an image manifest`);
    const m = p.manifest;
    const configBlob = this.#staging.get(m.config.digest);
    if (!configBlob) throw new Error(`${this.reference}: config ${m.config.digest} was not written`);
    const config = parseImageConfig(await readFile(configBlob.path));
    const diffIds = config.rootfs.diff_ids;
    if (diffIds.length !== m.layers.length) {
      throw new Error(`${this.reference}: manifest has ${m.layers.length} layers but the config has ${diffIds.length} diff_ids`);
    }
    const layerNames: string[] = [];
    for (const [i, layer] of m.layers.entries()) {
      // Loaders match layers to diff_ids by content, so anything but the uncompressed tar is unusable.
      if (layer.digest !== diffIds[i]) {
        throw new Error(`${this.reference}: layer ${i} (${layer.digest}) is not the uncompressed tar ${diffIds[i]}; docker-archive stores uncompressed layers`);
      }
      const blob = this.#staging.get(layer.digest);
      if (!blob) throw new Error(`${this.reference}: layer ${layer.digest} was not written`);
      const name = `${hexOf(layer.digest)}.tar`;
      layerNames.push(name);
      this.#add({ name, file: blob.path });
    }
    const configName = `${hexOf(m.config.digest)}.json`;
    this.#add({ name: configName, file: configBlob.path });
    this.#items.push(
      this.#repoTag !== undefined ? { Config: configName, RepoTags: [this.#repoTag], Layers: layerNames } : { Config: configName, Layers: layerNames },
    );
    if (this.#repoTag !== undefined && layerNames.length > 0) {
      const colon = this.#repoTag.lastIndexOf(':');
      // Legacy loaders map name → tag → top layer ID; modern ones read manifest.json and ignore this.
      (this.#repositories[this.#repoTag.slice(0, colon)] ??= {})[this.#repoTag.slice(colon + 1)] = hexOf(m.layers[m.layers.length - 1]!.digest);
    }
    this.#manifest = undefined;
    if (this.#multi) return;
    await this.#write();
    await this.close();
  }

  #add(entry: TarInput): void {
    if (this.#written.has(entry.name)) return;
    this.#written.add(entry.name);
    this.#entries.push(entry);
  }

  async #write(): Promise<void> {
    if (!this.#items.length) throw new Error(`${this.reference}: no image was written`);
    const entries = [...this.#entries, { name: 'manifest.json', data: JSON.stringify(this.#items) }];
    if (Object.keys(this.#repositories).length) entries.push({ name: 'repositories', data: JSON.stringify(this.#repositories) });
    await writeTarAtomic(this.#file, entries);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await rm(this.#tempDir, { recursive: true, force: true });
  }
}

export const dockerArchiveTransport: Transport = {
  name: 'docker-archive',
  parse: parseDockerArchiveSpec,
  openSource: (ref) => DockerArchiveSource.open(formatRef(ref), ref.path, ref.ref, ref.index),
  openDestination: (ref) => {
    if (ref.index !== undefined) return Promise.reject(new Error('docker-archive: ":@N" selects an image to read; it cannot be used as a destination'));
    return DockerArchiveDestination.open(formatRef(ref), ref.path, ref.ref);
  },
};
