import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { isAlive, processStart } from '../sys/proc.ts';
import { randomHex } from '../sys/lazy-builtins.ts';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { algorithmOf, digestStream, DigestMismatchError, hexOf, SizeMismatchError, VerifyingStream, type DigestAlgorithm } from './digest.ts';
import type { ManifestFormat } from './types.ts';
import type { PendingPolicy } from './registry/policy.ts';

/** A stored signature and where it came from (for messages). */
export interface StoredSignature {
  blob: Buffer;
  where: string;
}

export interface BlobInfo {
  digest: string;
  size: number;
  mediaType?: string;
}

export interface ImageSource {
  /** For messages, e.g. "oci:/tmp/x:latest". */
  readonly reference: string;
  /**
   * Raw manifest bytes and media type. For a multi-image source (OCI index / manifest list)
   * `instance` picks a child by digest; without it the top-level manifest (may be an index).
   */
  getManifest(instance?: string): Promise<{ bytes: Buffer; mediaType: string }>;
  /** Stream of the blob exactly as stored (compressed layers stay compressed). size -1 when unknown. */
  getBlob(info: BlobInfo): Promise<{ stream: Readable; size: number }>;
  /**
   * The signatures of the image whose manifest has this digest (the top-level manifest or one
   * instance). Absent on transports that keep none.
   */
  getSignatures?(manifestDigest: string, instance?: string): Promise<StoredSignature[]>;
  /** Signature checks policy.json demands before the image may be copied (decided at open). */
  readonly policy?: PendingPolicy | undefined;
  close(): Promise<void>;
}

export interface ImageDestination {
  readonly reference: string;
  /** Manifest formats accepted, preferred first. */
  readonly supportedManifestFormats: ManifestFormat[];
  /** When true the copy pipeline decompresses layers before putBlob (docker-archive). */
  readonly wantsUncompressedLayers: boolean;
  /**
   * Uncompressed source layers are gzipped on the way in (OCI layouts and registries, as
   * containers/image does); without it they are stored as they come (dir).
   */
  readonly compressesLayers?: boolean;
  /**
   * True when the destination can hold an index together with its instances (copy --all):
   * putManifest then accepts `instance`, and the index written last names them.
   */
  readonly supportsMultiImage?: boolean;
  /**
   * True when putBlob itself fails on a layer whose bytes do not match info.digest and info.size
   * (barge's store, which hashes every layer as it unpacks it): the pipeline then still bounds the
   * size but does not hash the same bytes a second time.
   */
  readonly verifiesBlobs?: boolean;
  /** True when the destination already holds this blob, so the transfer can be skipped. */
  hasBlob(info: BlobInfo): Promise<boolean>;
  /**
   * Stores a blob. `info.digest` is the expected digest when known (may be empty when the
   * pipeline re-encoded the blob and cannot know it in advance). The destination hashes what it
   * receives, writes to a temp file, and makes the blob visible only after the stream ended
   * without error (or at commit). Returns what was actually stored.
   */
  putBlob(stream: Readable, info: BlobInfo, isConfig: boolean): Promise<BlobInfo>;
  /**
   * Stores the manifest that commit() makes visible, or with `instance` (its digest) one image of
   * an index, written before the index and reachable only through it.
   */
  putManifest(bytes: Buffer, mediaType: string, instance?: string): Promise<void>;
  /**
   * Replaces the signatures of the top-level manifest (called after putManifest, before commit,
   * which writes them). Absent on transports that keep no signatures.
   */
  putSignatures?(signatures: Buffer[], manifestDigest: string): Promise<void>;
  /** The Docker reference a new signature names by default (registries), if the transport has one. */
  readonly dockerReference?: string;
  /** Makes everything visible atomically (rename into place, write index/tag). */
  commit(): Promise<void>;
  /** Releases resources; without a prior commit() all staged state is discarded. */
  close(): Promise<void>;
}

/** A transport-specific reference, parsed from the part after "name:". */
export interface ParsedRef {
  transport: string;
  /** Directory or archive file. */
  path: string;
  /** Tag / ref name (oci: ref.name annotation; docker-archive: normalised "name:tag"). */
  ref?: string;
  /** docker-archive "@N": the N-th image of a multi-image archive (source only). */
  index?: number;
}

export interface Transport {
  /** 'oci', 'oci-archive', 'docker-archive', 'dir'. */
  readonly name: string;
  /** Parses the part after "name:". Throws on malformed references. */
  parse(spec: string): ParsedRef;
  openSource(ref: ParsedRef): Promise<ImageSource>;
  openDestination(ref: ParsedRef): Promise<ImageDestination>;
}

/** Formats a parsed reference back to "transport:spec" for messages. */
export function formatRef(ref: ParsedRef): string {
  let s = `${ref.transport}:${ref.path}`;
  if (ref.ref !== undefined) s += `:${ref.ref}`;
  else if (ref.index !== undefined) s += `:@${ref.index}`;
  return s;
}

// ---------------------------------------------------------------------------------------------
// Shared plumbing for file-backed destinations.

/** Thrown by transports when a file or blob is absent, so callers can tell "missing" from "broken". */
export class NotFoundError extends Error {
  readonly code = 'ENOENT';
  constructor(message: string) {
    super(message);
    this.name = 'NotFoundError';
  }
}

export function isNotFound(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: unknown }).code === 'ENOENT';
}

const STAGING_PREFIX = '.barge-staging-';

interface StagedBlob {
  path: string;
  size: number;
}

/**
 * A private directory where a destination keeps blobs until commit(). Blobs are written under
 * random names and renamed to their digest only after the stream ended and hashed correctly,
 * so a failed or concurrent transfer never leaves a file named after a digest it does not have.
 */
export class BlobStaging {
  readonly dir: string;
  readonly #blobs = new Map<string, StagedBlob>();

  private constructor(dir: string) {
    this.dir = dir;
  }

  /** Creates the staging directory inside `parent` (created if needed), on the same filesystem so commit can rename. */
  static async create(parent: string, prefix = STAGING_PREFIX): Promise<BlobStaging> {
    await mkdir(parent, { recursive: true });
    // The writer's pid and start time in the name let a later writer clear what a killed one left.
    return new BlobStaging(await mkdtemp(join(parent, `${prefix}${process.pid}-${processStart(process.pid)}-`)));
  }

  /** Removes staging directories whose writer is gone; returns the names of entries that remain. */
  static async sweep(parent: string): Promise<string[]> {
    const left: string[] = [];
    for (const name of await readdir(parent)) {
      const m = new RegExp(`^${STAGING_PREFIX.replace(/\./g, '\\.')}(\\d+)-(\\d+)-`).exec(name);
      if (m && !isAlive(Number(m[1]), m[2]!)) await rm(join(parent, name), { recursive: true, force: true });
      else if (!name.startsWith(STAGING_PREFIX)) left.push(name);
    }
    return left;
  }

  async put(stream: Readable, info: BlobInfo): Promise<BlobInfo> {
    const algorithm: DigestAlgorithm = info.digest ? algorithmOf(info.digest) : 'sha256';
    const tmp = join(this.dir, `tmp-${randomHex(16)}`);
    // A stream that verifies this very digest fails before its end on a mismatch, so hashing
    // it a second time here would only cost time (a third of a registry → oci: copy's CPU).
    const verified = stream instanceof VerifyingStream && info.digest !== '' && stream.expected === info.digest ? stream : undefined;
    const hasher = verified ? undefined : digestStream(algorithm);
    try {
      // A deep write buffer lets chunks that arrive during a write go out together in one writev.
      const file = createWriteStream(tmp, { flags: 'wx', mode: 0o644, highWaterMark: 4 << 20 });
      if (hasher) await pipeline(stream, hasher, file);
      else await pipeline(stream, file);
      const digest = verified ? verified.expected : hasher!.digest;
      const size = verified ? verified.size : hasher!.size;
      // Callers verify, but a destination must not store a blob under a name it does not match.
      if (info.digest && digest !== info.digest) throw new DigestMismatchError(info.digest, digest);
      if (info.size >= 0 && size !== info.size) throw new SizeMismatchError(info.digest || digest, info.size, size);
      const existing = this.#blobs.get(digest);
      if (existing) {
        await rm(tmp, { force: true });
      } else {
        const final = join(this.dir, `${algorithm}-${hexOf(digest)}`);
        await rename(tmp, final);
        this.#blobs.set(digest, { path: final, size });
      }
      const out: BlobInfo = { digest, size };
      if (info.mediaType !== undefined) out.mediaType = info.mediaType;
      return out;
    } catch (e) {
      stream.destroy();
      await rm(tmp, { force: true });
      throw e;
    }
  }

  putBuffer(data: Buffer, info: Partial<BlobInfo> = {}): Promise<BlobInfo> {
    return this.put(Readable.from([data]), { digest: info.digest ?? '', size: info.size ?? data.length, ...(info.mediaType ? { mediaType: info.mediaType } : {}) });
  }

  get(digest: string): StagedBlob | undefined {
    return this.#blobs.get(digest);
  }

  has(digest: string, size = -1): boolean {
    const b = this.#blobs.get(digest);
    return b !== undefined && (size < 0 || b.size === size);
  }

  get blobs(): ReadonlyMap<string, StagedBlob> {
    return this.#blobs;
  }

  async remove(): Promise<void> {
    this.#blobs.clear();
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** Writes a small file atomically: readers see the old content or the new one, never a torn write. */
export async function writeFileAtomic(path: string, data: Buffer | string, mode = 0o644): Promise<void> {
  const tmp = `${path}.tmp-${randomHex(16)}`;
  try {
    await writeFile(tmp, data, { mode });
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** Size of a regular file, or -1 when it does not exist. */
export async function fileSize(path: string): Promise<number> {
  try {
    const st = await stat(path);
    return st.isFile() ? st.size : -1;
  } catch (e) {
    if (isNotFound(e) || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return -1;
    throw e;
  }
}
