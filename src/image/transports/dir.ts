import { createReadStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Readable } from 'node:stream';
import { hexOf, validateDigest } from '../digest.ts';
import { detectManifestMediaType, MAX_MANIFEST_SIZE, parseManifest } from '../manifest.ts';
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
  type StoredSignature,
  type Transport,
} from '../transport.ts';
import { checkSourcePolicy, dirScopes, type PendingPolicy } from '../registry/policy.ts';
import { MAX_SIGNATURE_SIZE, MAX_SIGNATURES } from '../signature.ts';
import type { ManifestFormat } from '../types.ts';

// skopeo's "dir:" layout: blobs named by the bare hex digest, no algorithm prefix.
const VERSION_FILE = 'version';
const VERSION = 'Directory Transport Version: 1.1\n';

function blobFile(dir: string, digest: string): string {
  return join(dir, hexOf(digest));
}

function instanceFile(digest: string): string {
  return `${hexOf(digest)}.manifest.json`;
}

/** skopeo's names: signature-1, … for the top-level manifest, HEX.signature-1, … for an instance. */
function signatureFile(index: number, instance?: string): string {
  return instance === undefined ? `signature-${index + 1}` : `${hexOf(instance)}.signature-${index + 1}`;
}

export function parseDirSpec(spec: string): ParsedRef {
  if (spec === '') throw new Error('dir: reference needs a directory path');
  return { transport: 'dir', path: spec };
}

export class DirSource implements ImageSource {
  readonly reference: string;
  readonly policy: PendingPolicy | undefined;
  readonly #dir: string;

  private constructor(reference: string, dir: string, policy: PendingPolicy | undefined) {
    this.reference = reference;
    this.#dir = dir;
    this.policy = policy;
  }

  static async open(reference: string, dir: string): Promise<DirSource> {
    const policy = checkSourcePolicy('dir', dirScopes(dir), reference);
    if ((await fileSize(join(dir, 'manifest.json'))) < 0) throw new NotFoundError(`${reference}: no manifest.json in ${dir}`);
    try {
      const v = await readFile(join(dir, VERSION_FILE), 'utf8');
      if (!/^Directory Transport Version: 1\.\d+\n?$/.test(v)) throw new Error(`${reference}: unsupported dir transport version ${JSON.stringify(v.trim())}`);
    } catch (e) {
      // Old skopeo versions wrote no version file; treat its absence as 1.0.
      if (!isNotFound(e)) throw e;
    }
    return new DirSource(reference, dir, policy);
  }

  async getManifest(instance?: string): Promise<{ bytes: Buffer; mediaType: string }> {
    const name = instance === undefined ? 'manifest.json' : instanceFile(validateDigest(instance, 'instance digest'));
    const path = join(this.#dir, name);
    const size = await fileSize(path);
    if (size < 0) throw new NotFoundError(instance ? `${this.reference}: no manifest for instance ${instance}` : `${this.reference}: no manifest.json`);
    if (size > MAX_MANIFEST_SIZE) throw new Error(`${path} is ${size} bytes, over the ${MAX_MANIFEST_SIZE}-byte manifest limit`);
    const bytes = await readFile(path);
    return { bytes, mediaType: detectManifestMediaType(bytes) };
  }

  async getBlob(info: BlobInfo): Promise<{ stream: Readable; size: number }> {
    const path = blobFile(this.#dir, validateDigest(info.digest, 'blob digest'));
    const size = await fileSize(path);
    if (size < 0) throw new NotFoundError(`${this.reference}: blob ${info.digest} not found`);
    return { stream: createReadStream(path), size };
  }

  async getSignatures(_manifestDigest: string, instance?: string): Promise<StoredSignature[]> {
    const out: StoredSignature[] = [];
    for (let i = 0; i < MAX_SIGNATURES; i++) {
      const path = join(this.#dir, signatureFile(i, instance));
      const size = await fileSize(path);
      if (size < 0) break;
      if (size > MAX_SIGNATURE_SIZE) throw new Error(`${path} is ${size} bytes, over the ${MAX_SIGNATURE_SIZE}-byte signature limit`);
      out.push({ blob: await readFile(path), where: path });
    }
    return out;
  }

  async close(): Promise<void> {}
}

export class DirDestination implements ImageDestination {
  readonly reference: string;
  readonly supportedManifestFormats: ManifestFormat[] = ['oci', 'docker'];
  readonly wantsUncompressedLayers = false;
  readonly supportsMultiImage = true;
  readonly #dir: string;
  readonly #staging: BlobStaging;
  readonly #created: string | undefined;
  #manifest: Buffer | undefined;
  /** Members of an index, kept as skopeo does: HEX.manifest.json beside manifest.json. */
  readonly #instances = new Map<string, Buffer>();
  #signatures: Buffer[] = [];
  #done = false;

  private constructor(reference: string, dir: string, staging: BlobStaging, created: string | undefined) {
    this.reference = reference;
    this.#dir = dir;
    this.#staging = staging;
    this.#created = created;
  }

  static async open(reference: string, dir: string): Promise<DirDestination> {
    let created: string | undefined;
    try {
      const st = await stat(dir);
      if (!st.isDirectory()) throw new Error(`${reference}: ${dir} exists and is not a directory`);
      const names = await readdir(dir);
      // Replacing the contents is only safe when they are a previous dir: image.
      if (names.length > 0 && !names.includes(VERSION_FILE)) {
        throw new Error(`${reference}: ${dir} is not empty and does not hold a dir: image; refusing to overwrite it`);
      }
    } catch (e) {
      if (!isNotFound(e)) throw e;
      created = (await mkdir(dir, { recursive: true })) ?? dir;
    }
    try {
      return new DirDestination(reference, dir, await BlobStaging.create(dir), created);
    } catch (e) {
      if (created) await rm(created, { recursive: true, force: true });
      throw e;
    }
  }

  async hasBlob(info: BlobInfo): Promise<boolean> {
    validateDigest(info.digest, 'blob digest');
    if (this.#staging.has(info.digest, info.size)) return true;
    // A blob left by the previous image in this directory is kept if the new manifest uses it.
    const size = await fileSize(blobFile(this.#dir, info.digest));
    return size >= 0 && (info.size < 0 || size === info.size);
  }

  putBlob(stream: Readable, info: BlobInfo): Promise<BlobInfo> {
    if (info.digest) validateDigest(info.digest, 'blob digest');
    return this.#staging.put(stream, info);
  }

  async putManifest(bytes: Buffer, mediaType: string, instance?: string): Promise<void> {
    parseManifest(bytes, mediaType);
    if (instance !== undefined) this.#instances.set(validateDigest(instance, 'instance digest'), bytes);
    else this.#manifest = bytes;
  }

  async putSignatures(signatures: Buffer[]): Promise<void> {
    this.#signatures = signatures;
  }

  async commit(): Promise<void> {
    if (this.#done) throw new Error(`${this.reference}: already committed or closed`);
    if (!this.#manifest) throw new Error(`${this.reference}: commit without a manifest`);
    const p = parseManifest(this.#manifest);
    const keep = new Set<string>(['manifest.json', VERSION_FILE, basename(this.#staging.dir)]);
    const referenced = p.kind === 'manifest' ? [p.manifest.config, ...p.manifest.layers] : p.index.manifests;
    for (const d of referenced) keep.add(hexOf(d.digest));
    for (const [digest, bytes] of this.#instances) {
      keep.add(instanceFile(digest));
      const m = parseManifest(bytes);
      if (m.kind === 'manifest') for (const d of [m.manifest.config, ...m.manifest.layers]) keep.add(hexOf(d.digest));
    }
    for (const [digest, blob] of this.#staging.blobs) await rename(blob.path, blobFile(this.#dir, digest));
    for (const [digest, bytes] of this.#instances) await writeFileAtomic(join(this.#dir, instanceFile(digest)), bytes);
    if (p.kind === 'manifest') {
      for (const d of referenced) {
        if ((await fileSize(blobFile(this.#dir, d.digest))) < 0) throw new Error(`${this.reference}: blob ${d.digest} named by the manifest was never written`);
      }
    }
    // Signatures of the previous image are not in `keep`, so the sweep below drops them.
    for (const [i, sig] of this.#signatures.entries()) {
      keep.add(signatureFile(i));
      await writeFileAtomic(join(this.#dir, signatureFile(i)), sig);
    }
    await writeFileAtomic(join(this.#dir, 'manifest.json'), this.#manifest);
    await writeFileAtomic(join(this.#dir, VERSION_FILE), VERSION);
    // Only now drop what the previous image left behind, so an interrupted commit still leaves a usable image.
    for (const ent of await readdir(this.#dir, { withFileTypes: true })) {
      if (ent.isFile() && !keep.has(ent.name)) await rm(join(this.#dir, ent.name), { force: true });
    }
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

export const dirTransport: Transport = {
  name: 'dir',
  parse: parseDirSpec,
  openSource: (ref) => DirSource.open(formatRef(ref), ref.path),
  openDestination: (ref) => DirDestination.open(formatRef(ref), ref.path),
};
