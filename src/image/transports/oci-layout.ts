import { createReadStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { algorithmOf, digestOf, hexOf, validateDigest } from '../digest.ts';
import { detectManifestMediaType, isIndexMediaType, isManifestMediaType, MAX_MANIFEST_SIZE, parseManifest } from '../manifest.ts';
import {
  BlobStaging,
  fileSize,
  formatRef,
  isNotFound,
  NotFoundError,
  writeFileAtomic,
  type BlobInfo,
  type ImageDestination,
  type ImageSource,
  type ParsedRef,
  type Transport,
} from '../transport.ts';
import { MediaType, type Descriptor, type ImageIndex, type ManifestFormat } from '../types.ts';

export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';
const LAYOUT_FILE = 'oci-layout';
const LAYOUT_VERSION = '1.0.0';
/** index.json can list many images; still, refuse to slurp something absurd. */
const MAX_INDEX_SIZE = 16 * 1024 * 1024;

/**
 * Read access to the files of an OCI layout, wherever they live (a directory, or a tar indexed in
 * place). Paths are relative and built only from fixed names and validated digests.
 */
export interface LayoutFiles {
  readFile(rel: string, limit: number): Promise<Buffer>;
  openRead(rel: string): Promise<{ stream: Readable; size: number }>;
  close(): Promise<void>;
}

export class DirLayoutFiles implements LayoutFiles {
  readonly root: string;
  constructor(root: string) {
    this.root = root;
  }

  async readFile(rel: string, limit: number): Promise<Buffer> {
    const p = join(this.root, rel);
    const size = await fileSize(p);
    if (size < 0) throw new NotFoundError(`${p} does not exist`);
    if (size > limit) throw new Error(`${p} is ${size} bytes, over the ${limit}-byte limit`);
    return readFile(p);
  }

  async openRead(rel: string): Promise<{ stream: Readable; size: number }> {
    const p = join(this.root, rel);
    const size = await fileSize(p);
    if (size < 0) throw new NotFoundError(`${p} does not exist`);
    return { stream: createReadStream(p), size };
  }

  async close(): Promise<void> {}
}

export function blobPath(digest: string): string {
  return `blobs/${algorithmOf(digest)}/${hexOf(digest)}`;
}

function refNameOf(d: Descriptor): string | undefined {
  return d.annotations?.[REF_NAME_ANNOTATION];
}

/** Parses "PATH[:REF]"; the first colon separates, as in containers/image. */
export function parseLayoutSpec(transport: string, spec: string): ParsedRef {
  const i = spec.indexOf(':');
  const path = i < 0 ? spec : spec.slice(0, i);
  const ref = i < 0 ? undefined : spec.slice(i + 1);
  if (path === '') throw new Error(`${transport}: reference needs a path`);
  if (ref !== undefined) {
    // The OCI spec restricts ref names to this character set (components separated by . - _ : / +).
    if (ref === '' || !/^[A-Za-z0-9._:/+@-]+$/.test(ref) || !/^[A-Za-z0-9]/.test(ref) || !/[A-Za-z0-9]$/.test(ref)) {
      throw new Error(`${transport}: invalid reference name ${JSON.stringify(ref)}`);
    }
  }
  const out: ParsedRef = { transport, path };
  if (ref !== undefined) out.ref = ref;
  return out;
}

export class OciLayoutSource implements ImageSource {
  readonly reference: string;
  readonly #files: LayoutFiles;
  readonly #desc: Descriptor;
  #top: { bytes: Buffer; mediaType: string } | undefined;

  private constructor(reference: string, files: LayoutFiles, desc: Descriptor) {
    this.reference = reference;
    this.#files = files;
    this.#desc = desc;
  }

  /** Takes ownership of `files` (closed by close(), or on failure here). */
  static async open(reference: string, files: LayoutFiles, ref: string | undefined): Promise<OciLayoutSource> {
    try {
      const layout = await files.readFile(LAYOUT_FILE, 64 * 1024).catch((e: unknown) => {
        if (isNotFound(e)) throw new Error(`${reference}: not an OCI image layout (no ${LAYOUT_FILE} file)`);
        throw e;
      });
      let version: unknown;
      try {
        version = (JSON.parse(layout.toString('utf8')) as { imageLayoutVersion?: unknown }).imageLayoutVersion;
      } catch {
        throw new Error(`${reference}: malformed ${LAYOUT_FILE} file`);
      }
      if (typeof version !== 'string' || !version.startsWith('1.')) {
        throw new Error(`${reference}: unsupported OCI layout version ${JSON.stringify(version)}`);
      }
      const index = readIndex(reference, await files.readFile('index.json', MAX_INDEX_SIZE));
      return new OciLayoutSource(reference, files, selectDescriptor(reference, index, ref));
    } catch (e) {
      await files.close();
      throw e;
    }
  }

  /** The index.json entry this source reads. */
  get descriptor(): Descriptor {
    return this.#desc;
  }

  async #readManifestBlob(digest: string, expectedSize: number): Promise<Buffer> {
    const bytes = await this.#files.readFile(blobPath(digest), MAX_MANIFEST_SIZE).catch((e: unknown) => {
      if (isNotFound(e)) throw new NotFoundError(`${this.reference}: manifest ${digest} is missing from the layout`);
      throw e;
    });
    const actual = digestOf(bytes, algorithmOf(digest));
    if (actual !== digest) throw new Error(`digest mismatch for blob ${digest}: got ${actual}`);
    if (expectedSize >= 0 && bytes.length !== expectedSize) {
      throw new Error(`size mismatch for blob ${digest}: expected ${expectedSize} bytes, got ${bytes.length}`);
    }
    return bytes;
  }

  async getManifest(instance?: string): Promise<{ bytes: Buffer; mediaType: string }> {
    if (!this.#top) {
      const bytes = await this.#readManifestBlob(this.#desc.digest, this.#desc.size);
      const dt = this.#desc.mediaType;
      const mediaType = isManifestMediaType(dt) || isIndexMediaType(dt) ? dt : detectManifestMediaType(bytes);
      this.#top = { bytes, mediaType };
    }
    if (instance === undefined || instance === this.#desc.digest) return this.#top;
    validateDigest(instance, 'instance digest');
    let listed: Descriptor | undefined;
    if (isIndexMediaType(this.#top.mediaType)) {
      const p = parseManifest(this.#top.bytes, this.#top.mediaType);
      if (p.kind === 'index') listed = p.index.manifests.find((m) => m.digest === instance);
    }
    if (!listed) throw new NotFoundError(`${this.reference}: ${instance} is not an instance of ${this.#desc.digest}`);
    const bytes = await this.#readManifestBlob(instance, listed.size);
    const mediaType = isManifestMediaType(listed.mediaType) || isIndexMediaType(listed.mediaType) ? listed.mediaType : detectManifestMediaType(bytes);
    return { bytes, mediaType };
  }

  async getBlob(info: BlobInfo): Promise<{ stream: Readable; size: number }> {
    const rel = blobPath(validateDigest(info.digest, 'blob digest'));
    try {
      return await this.#files.openRead(rel);
    } catch (e) {
      if (isNotFound(e)) throw new NotFoundError(`${this.reference}: blob ${info.digest} not found`);
      throw e;
    }
  }

  close(): Promise<void> {
    return this.#files.close();
  }
}

function readIndex(reference: string, bytes: Buffer): ImageIndex {
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new Error(`${reference}: malformed index.json: ${(e as Error).message}`);
  }
  // parseManifest enforces the per-descriptor checks; the size cap there is for manifests, so
  // apply it only when index.json is small enough to be one.
  if (bytes.length <= MAX_MANIFEST_SIZE) {
    const p = parseManifest(bytes, MediaType.ociIndex);
    if (p.kind !== 'index') throw new Error(`${reference}: index.json is not an image index`);
    return p.index;
  }
  const idx = raw as ImageIndex;
  if (!Array.isArray(idx.manifests)) throw new Error(`${reference}: index.json has no manifests array`);
  for (const m of idx.manifests) validateDigest(m.digest, 'index.json entry digest');
  return idx;
}

function selectDescriptor(reference: string, index: ImageIndex, ref: string | undefined): Descriptor {
  if (ref !== undefined) {
    const found = index.manifests.find((m) => refNameOf(m) === ref);
    if (!found) {
      const names = index.manifests.map(refNameOf).filter((n): n is string => n !== undefined);
      throw new NotFoundError(
        `${reference}: no image named ${JSON.stringify(ref)} in the layout${names.length ? `; it has: ${names.join(', ')}` : ''}`,
      );
    }
    return found;
  }
  if (index.manifests.length === 1) return index.manifests[0]!;
  if (index.manifests.length === 0) throw new NotFoundError(`${reference}: the layout contains no images`);
  const listing = index.manifests.map((m) => refNameOf(m) ?? `(unnamed ${m.digest})`).join(', ');
  throw new Error(`${reference}: the layout contains ${index.manifests.length} images; pick one with ":REF" from: ${listing}`);
}

/** An OCI layout being written. Blobs wait in a staging directory inside the layout until commit. */
export class OciLayoutDestination implements ImageDestination {
  readonly reference: string;
  // containers/image (skopeo, podman) skips index.json entries that are not OCI manifests or
  // indexes, so a Docker manifest stored here would be invisible to them: always convert.
  readonly supportedManifestFormats: ManifestFormat[] = ['oci'];
  readonly wantsUncompressedLayers = false;
  readonly compressesLayers = true;
  readonly supportsMultiImage = true;
  readonly #dir: string;
  readonly #ref: string | undefined;
  readonly #staging: BlobStaging;
  /** Topmost directory this destination created, removed again if nothing is committed. */
  readonly #created: string | undefined;
  #manifest: Descriptor | undefined;
  #done = false;

  private constructor(reference: string, dir: string, ref: string | undefined, staging: BlobStaging, created: string | undefined) {
    this.reference = reference;
    this.#dir = dir;
    this.#ref = ref;
    this.#staging = staging;
    this.#created = created;
  }

  static async open(reference: string, dir: string, ref: string | undefined): Promise<OciLayoutDestination> {
    let created: string | undefined;
    try {
      const st = await stat(dir);
      if (!st.isDirectory()) throw new Error(`${reference}: ${dir} exists and is not a directory`);
      if ((await fileSize(join(dir, LAYOUT_FILE))) < 0 && (await BlobStaging.sweep(dir)).length > 0) {
        throw new Error(`${reference}: ${dir} is not empty and is not an OCI layout; refusing to write into it`);
      }
    } catch (e) {
      if (!isNotFound(e)) throw e;
      created = (await mkdir(dir, { recursive: true })) ?? dir;
    }
    try {
      const staging = await BlobStaging.create(dir);
      return new OciLayoutDestination(reference, dir, ref, staging, created);
    } catch (e) {
      if (created) await rm(created, { recursive: true, force: true });
      throw e;
    }
  }

  async hasBlob(info: BlobInfo): Promise<boolean> {
    validateDigest(info.digest, 'blob digest');
    if (this.#staging.has(info.digest, info.size)) return true;
    const size = await fileSize(join(this.#dir, blobPath(info.digest)));
    return size >= 0 && (info.size < 0 || size === info.size);
  }

  putBlob(stream: Readable, info: BlobInfo): Promise<BlobInfo> {
    if (info.digest) validateDigest(info.digest, 'blob digest');
    return this.#staging.put(stream, info);
  }

  async putManifest(bytes: Buffer, mediaType: string, instance?: string): Promise<void> {
    // An index's members are plain blobs of the layout; only the index gets an index.json entry.
    if (instance !== undefined) {
      await this.#staging.putBuffer(bytes, { digest: validateDigest(instance, 'instance digest') });
      return;
    }
    const stored = await this.#staging.putBuffer(bytes);
    const desc: Descriptor = { mediaType, digest: stored.digest, size: stored.size };
    if (this.#ref !== undefined) desc.annotations = { [REF_NAME_ANNOTATION]: this.#ref };
    this.#manifest = desc;
  }

  async commit(): Promise<void> {
    if (this.#done) throw new Error(`${this.reference}: already committed or closed`);
    if (!this.#manifest) throw new Error(`${this.reference}: commit without a manifest`);
    for (const [digest, blob] of this.#staging.blobs) {
      const dest = join(this.#dir, blobPath(digest));
      await mkdir(join(this.#dir, 'blobs', algorithmOf(digest)), { recursive: true });
      // Content-addressed: an existing file with this name already has these bytes.
      if ((await fileSize(dest)) >= 0) continue;
      await rename(blob.path, dest);
    }
    if ((await fileSize(join(this.#dir, LAYOUT_FILE))) < 0) {
      await writeFileAtomic(join(this.#dir, LAYOUT_FILE), JSON.stringify({ imageLayoutVersion: LAYOUT_VERSION }));
    }
    // Re-read index.json now rather than at open, so a concurrent writer's entries survive.
    let index: ImageIndex = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] };
    try {
      index = readIndex(this.reference, await readFile(join(this.#dir, 'index.json')));
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
    const desc = this.#manifest;
    const manifests = index.manifests.filter((m) => {
      const name = refNameOf(m);
      if (this.#ref !== undefined) return name !== this.#ref;
      return !(name === undefined && m.digest === desc.digest);
    });
    manifests.push(desc);
    const out = { ...index, schemaVersion: 2, mediaType: index.mediaType ?? MediaType.ociIndex, manifests };
    await writeFileAtomic(join(this.#dir, 'index.json'), JSON.stringify(out));
    this.#done = true;
    await this.#staging.remove();
  }

  async close(): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    await this.#staging.remove();
    if (this.#created) await rm(this.#created, { recursive: true, force: true });
  }
}

export const ociTransport: Transport = {
  name: 'oci',
  parse: (spec) => parseLayoutSpec('oci', spec),
  openSource: (ref) => OciLayoutSource.open(formatRef(ref), new DirLayoutFiles(ref.path), ref.ref),
  openDestination: (ref) => OciLayoutDestination.open(formatRef(ref), ref.path, ref.ref),
};
