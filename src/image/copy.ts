import { addAbortSignal, pipeline as pipelineCb, Readable, Transform, type TransformCallback } from 'node:stream';
import { constants as zlibConstants, createGunzip, createZstdCompress, createZstdDecompress } from 'node:zlib';
import { ParallelGzip } from './parallel-gzip.ts';
import { algorithmOf, DigestMismatchError, digestOf, validateDigest, VerifyingStream } from './digest.ts';
import {
  buildIndex,
  buildManifest,
  choosePlatform,
  configMediaTypeFor,
  convertLayerMediaType,
  detectCompression,
  indexMediaTypeFor,
  isImageConfigMediaType,
  layerCompression,
  layerMediaTypeFor,
  manifestFormatOf,
  manifestMediaTypeFor,
  MAX_CONFIG_SIZE,
  parseImageConfig,
  parseManifest,
  type Compression,
  type ParsedManifest,
  type PlatformSpec,
} from './manifest.ts';
import type { BlobInfo, ImageDestination, ImageSource, StoredSignature } from './transport.ts';
import type { Descriptor, ImageConfig, ManifestFormat } from './types.ts';

export interface CopyProgress {
  onBlobStart?(info: BlobInfo): void;
  /** `bytes` is the running total read from the source for this blob. */
  onBlobProgress?(info: BlobInfo, bytes: number): void;
  onBlobDone?(info: BlobInfo, skipped: boolean): void;
  onManifest?(): void;
}

export interface CopyOptions {
  format?: ManifestFormat;
  progress?: CopyProgress;
  /** Do not carry the source's signatures over (they are still read when the policy needs them). */
  removeSignatures?: boolean;
  /** Add a simple-signing signature with this GPG key (fingerprint or other key id). */
  signBy?: string;
  /** The first line of this file is the passphrase of the signing key. */
  signPassphraseFile?: string;
  /** The reference the new signature names (default: the destination's own). */
  signIdentity?: string;
  destCompression?: 'gzip' | 'zstd' | 'none';
  /**
   * The level of the compression layers are written with (gzip 0-9, zstd 1-22); layers already
   * compressed so are compressed again at this level rather than passed through.
   */
  compressionLevel?: number;
  platform?: PlatformSpec;
  /** Copy every image of an index and the index itself (skopeo copy --all), not one platform's. */
  all?: boolean;
  /** Fail rather than write a manifest that differs from the source's (skopeo --preserve-digests). */
  preserveDigests?: boolean;
}

/** Within the pipeline: the source's signatures are being carried, so its manifest must not change. */
interface InternalOptions extends CopyOptions {
  carriesSignatures?: boolean;
}

export interface CopyResult {
  manifestDigest: string;
  manifest: Buffer;
  mediaType: string;
  configDigest: string;
}

const LAYER_CONCURRENCY = 3;

/** Copies one image (or with `all` a whole index) from `src` to `dst` and commits `dst`. The caller closes both. */
export async function copyImage(src: ImageSource, dst: ImageDestination, opts: CopyOptions = {}): Promise<CopyResult> {
  const identity = opts.signIdentity ?? dst.dockerReference;
  if (opts.signBy !== undefined && identity === undefined) throw new Error(`Cannot determine canonical Docker reference for destination ${dst.reference}`);
  const top = await src.getManifest();
  const parsed = parseManifest(top.bytes, top.mediaType);
  let one: { bytes: Buffer; parsed: ParsedManifest & { kind: 'manifest' } } | undefined;
  let instance: string | undefined;
  if (parsed.kind === 'index' && !opts.all) {
    const desc = choosePlatform(parsed.index, opts.platform);
    one = await readInstance(src, desc);
    instance = desc.digest;
  } else if (parsed.kind === 'manifest') {
    one = { bytes: top.bytes, parsed };
  }
  // Policy and signatures concern the image copied: the chosen instance, or the top level.
  const carried = await sourceSignatures(src, dst, one?.bytes ?? top.bytes, instance, opts);
  const inner: InternalOptions = carried.length ? { ...opts, carriesSignatures: true } : opts;
  const res = one ? await copyOne(src, dst, one.bytes, one.parsed, inner, false) : await copyIndex(src, dst, top.bytes, parsed as ParsedManifest & { kind: 'index' }, inner);
  const signatures = carried.map((s) => s.blob);
  if (opts.signBy !== undefined) {
    const { gpgSign, makePayload } = await import('./signature.ts');
    signatures.push(await gpgSign(makePayload(identity!, res.manifestDigest), opts.signBy, opts.signPassphraseFile));
  }
  if (signatures.length) await dst.putSignatures!(signatures, res.manifestDigest);
  await dst.commit();
  return res;
}

/**
 * Reads the source's signatures of the image copied when the policy or the copy needs them,
 * enforces the policy's signature requirements, and returns what is to be carried over.
 */
async function sourceSignatures(src: ImageSource, dst: ImageDestination, manifest: Buffer, instance: string | undefined, opts: CopyOptions): Promise<StoredSignature[]> {
  const wanted = src.policy !== undefined || !opts.removeSignatures;
  const sigs = wanted && src.getSignatures ? await src.getSignatures(instance ?? digestOf(manifest), instance) : [];
  if (src.policy) await (await import('./registry/policy.ts')).enforcePolicy(src.policy, manifest, sigs);
  const keep = opts.removeSignatures ? [] : sigs;
  if ((keep.length || opts.signBy !== undefined) && !dst.putSignatures) {
    throw new Error(`Can not copy signatures to ${dst.reference}: it keeps no signatures${keep.length ? ' (use --remove-signatures)' : ''}`);
  }
  return keep;
}

/** Throws when the manifest copied must stay byte for byte the source's. */
function mustKeepManifest(src: ImageSource, dst: ImageDestination, opts: InternalOptions, what: string): void {
  if (opts.preserveDigests) throw new Error(`${dst.reference}: cannot preserve the digest of ${src.reference}: its ${what} would have to change (format or layer compression)`);
  if (opts.carriesSignatures) {
    throw new Error(`${dst.reference}: copying ${src.reference} would change its ${what} (format or layer compression), which would invalidate its signatures; copy with --remove-signatures`);
  }
}

/** Reads an index member, verified against its descriptor; nested indexes are refused. */
async function readInstance(src: ImageSource, desc: Descriptor): Promise<{ bytes: Buffer; parsed: ParsedManifest & { kind: 'manifest' } }> {
  const child = await src.getManifest(desc.digest);
  const actual = digestOf(child.bytes, algorithmOf(desc.digest));
  if (actual !== desc.digest) throw new DigestMismatchError(desc.digest, actual);
  const parsed = parseManifest(child.bytes, child.mediaType || desc.mediaType);
  if (parsed.kind !== 'manifest') throw new Error(`${src.reference}: index entry ${desc.digest} is itself an index; nested indexes are not supported`);
  return { bytes: child.bytes, parsed };
}

/**
 * Copies every image of an index, then the index, rewritten when members changed (another
 * format, recompressed layers) so that it names what the destination now holds.
 */
async function copyIndex(src: ImageSource, dst: ImageDestination, bytes: Buffer, parsed: ParsedManifest & { kind: 'index' }, opts: InternalOptions): Promise<CopyResult> {
  if (!dst.supportsMultiImage) throw new Error(`${dst.reference} cannot hold a list of images; copy a single image (without --all)`);
  const srcFormat = manifestFormatOf(parsed.mediaType);
  const destFormat = chooseFormat(srcFormat, dst, opts.format, opts.destCompression);
  const members: Descriptor[] = [];
  for (const desc of parsed.index.manifests) {
    const child = await readInstance(src, desc);
    const r = await copyOne(src, dst, child.bytes, child.parsed, { ...opts, format: destFormat }, true);
    members.push({ ...desc, mediaType: r.mediaType, digest: r.manifestDigest, size: r.manifest.length });
  }
  const changed =
    destFormat !== srcFormat ||
    members.some((m, i) => {
      const o = parsed.index.manifests[i]!;
      return m.digest !== o.digest || m.mediaType !== o.mediaType;
    });
  if (changed) mustKeepManifest(src, dst, opts, 'index');
  const outBytes = changed ? buildIndex(parsed.raw, destFormat, members) : bytes;
  const outType = changed ? indexMediaTypeFor(destFormat) : parsed.mediaType;
  opts.progress?.onManifest?.();
  await dst.putManifest(outBytes, outType);
  return { manifestDigest: digestOf(outBytes), manifest: outBytes, mediaType: outType, configDigest: '' };
}

/** Copies the blobs of one image and stores its manifest (as an index member with `instance`). */
async function copyOne(
  src: ImageSource,
  dst: ImageDestination,
  bytes: Buffer,
  parsed: ParsedManifest & { kind: 'manifest' },
  opts: InternalOptions,
  instance: boolean,
): Promise<CopyResult> {
  const manifest = parsed.manifest;
  const srcFormat = manifestFormatOf(parsed.mediaType);
  const destFormat = chooseFormat(srcFormat, dst, opts.format, opts.destCompression);

  const config = manifest.config;
  if (config.size > MAX_CONFIG_SIZE) throw new Error(`config ${config.digest} is ${config.size} bytes, over the ${MAX_CONFIG_SIZE}-byte limit`);
  const configBytes = await readVerified(src, config, MAX_CONFIG_SIZE);
  let imageConfig: ImageConfig | undefined;
  if (isImageConfigMediaType(config.mediaType)) {
    imageConfig = parseImageConfig(configBytes);
    if (imageConfig.rootfs.diff_ids.length !== manifest.layers.length) {
      throw new Error(`${src.reference}: manifest has ${manifest.layers.length} layers but the config lists ${imageConfig.rootfs.diff_ids.length} diff_ids`);
    }
  }

  const ctx: LayerContext = { src, dst, opts, destFormat, imageConfig };
  // The same blob may appear twice in one manifest; transfer it once.
  const inFlight = new Map<string, Promise<Descriptor>>();
  const layers = await mapLimit(manifest.layers, LAYER_CONCURRENCY, async (layer, i, signal) => {
    const key = `${layer.digest} ${layer.mediaType}`;
    const prior = inFlight.get(key);
    if (prior) {
      const d = await prior;
      opts.progress?.onBlobStart?.(blobInfo(layer));
      opts.progress?.onBlobDone?.(blobInfo(layer), true);
      return d;
    }
    const p = copyLayer(ctx, layer, i, signal);
    inFlight.set(key, p);
    return p;
  });

  const newConfig: Descriptor = { ...config, mediaType: configMediaTypeFor(destFormat, config.mediaType) };
  {
    const info = blobInfo(config);
    opts.progress?.onBlobStart?.(info);
    if (await dst.hasBlob(info)) {
      opts.progress?.onBlobDone?.(info, true);
    } else {
      const stored = await dst.putBlob(Readable.from([configBytes]), info, true);
      if (stored.digest !== config.digest) throw new DigestMismatchError(config.digest, stored.digest);
      opts.progress?.onBlobProgress?.(info, configBytes.length);
      opts.progress?.onBlobDone?.(info, false);
    }
  }

  const changed =
    destFormat !== srcFormat ||
    layers.some((l, i) => {
      const o = manifest.layers[i]!;
      return l.digest !== o.digest || l.size !== o.size || l.mediaType !== o.mediaType;
    });
  let outBytes = bytes;
  let outType = parsed.mediaType;
  if (changed) {
    mustKeepManifest(src, dst, opts, 'manifest');
    outBytes = buildManifest(parsed.raw, destFormat, newConfig, layers);
    outType = manifestMediaTypeFor(destFormat);
  }
  // Whatever we hand over must be something we would accept ourselves.
  const check = parseManifest(outBytes, outType);
  if (check.kind !== 'manifest' || check.mediaType !== outType || check.manifest.layers.length !== manifest.layers.length) {
    throw new Error('internal error: rewritten manifest does not describe the copied image');
  }
  const outDigest = digestOf(outBytes);
  opts.progress?.onManifest?.();
  await dst.putManifest(outBytes, outType, instance ? outDigest : undefined);
  return { manifestDigest: outDigest, manifest: outBytes, mediaType: outType, configDigest: config.digest };
}

function chooseFormat(srcFormat: ManifestFormat, dst: ImageDestination, wanted: ManifestFormat | undefined, compression?: Compression | 'none'): ManifestFormat {
  const supported = dst.supportedManifestFormats;
  if (wanted !== undefined) {
    if (!supported.includes(wanted)) throw new Error(`${dst.reference} cannot store ${wanted} manifests (it supports ${supported.join(', ')})`);
    if (wanted === 'docker' && compression === 'zstd') throw new Error('zstd-compressed layers need the OCI manifest format; Docker schema2 (v2s2) has no zstd layers');
    return wanted;
  }
  // Docker schema2 has no zstd layer type, so recompressing to zstd moves the image to OCI.
  if (compression === 'zstd' && supported.includes('oci')) return 'oci';
  // Keeping the source format keeps the manifest digest stable, so only convert when forced to.
  if (supported.includes(srcFormat)) return srcFormat;
  const first = supported[0];
  if (!first) throw new Error(`${dst.reference} declares no manifest formats`);
  return first;
}

function blobInfo(d: Descriptor): BlobInfo {
  return { digest: d.digest, size: d.size, mediaType: d.mediaType };
}

interface LayerContext {
  src: ImageSource;
  dst: ImageDestination;
  opts: InternalOptions;
  destFormat: ManifestFormat;
  imageConfig: ImageConfig | undefined;
}

async function copyLayer(ctx: LayerContext, layer: Descriptor, index: number, signal: AbortSignal): Promise<Descriptor> {
  const { src, dst, opts, destFormat } = ctx;
  const info = blobInfo(layer);
  const progress = opts.progress;
  const diffId = ctx.imageConfig?.rootfs.diff_ids[index];
  const srcComp = layerCompression(layer.mediaType);
  let targetComp: Compression | undefined;
  let targetType: string;
  if (srcComp === undefined) {
    if (dst.wantsUncompressedLayers) throw new Error(`layer ${layer.digest} has media type ${layer.mediaType}, which ${dst.reference} cannot store`);
    targetType = convertLayerMediaType(layer.mediaType, destFormat);
  } else {
    // A manifest that must stay as it is (signed, or --preserve-digests) keeps uncompressed layers so, as containers/image does.
    const keep = opts.carriesSignatures || opts.preserveDigests;
    targetComp = dst.wantsUncompressedLayers ? 'none' : (opts.destCompression ?? (srcComp === 'none' && dst.compressesLayers && !keep ? 'gzip' : srcComp));
    targetType = layerMediaTypeFor(destFormat, targetComp, layer.mediaType);
  }
  const out = (digest: string, size: number): Descriptor => {
    const d: Descriptor = { ...layer, mediaType: targetType, digest, size };
    return d;
  };

  progress?.onBlobStart?.(info);
  const passthrough = targetComp === srcComp && (opts.compressionLevel === undefined || targetComp === 'none');
  if (passthrough) {
    if (dst.wantsUncompressedLayers && diffId !== undefined && layer.digest !== diffId) {
      throw new Error(`layer ${index} (${layer.digest}) is declared uncompressed but does not match its diff_id ${diffId}`);
    }
    if (await dst.hasBlob(info)) {
      progress?.onBlobDone?.(info, true);
      return out(layer.digest, layer.size);
    }
  }

  signal.throwIfAborted();
  const { stream: raw } = await src.getBlob(info);
  // Another layer failing aborts this transfer instead of letting it run to the end.
  addAbortSignal(signal, raw);
  const onBytes = progress?.onBlobProgress ? (n: number): void => progress.onBlobProgress!(info, n) : undefined;
  // A destination that checks the digest of what it stores need not have it hashed twice.
  const stages: Transform[] = [new VerifyingStream(layer.digest, layer.size, onBytes, !(passthrough && dst.verifiesBlobs))];
  let putInfo: BlobInfo = info;
  if (!passthrough) {
    stages.push(new AutoDecompress());
    // Recompressing anyway, so checking the uncompressed content against the config is almost free.
    if (diffId !== undefined) stages.push(new VerifyingStream(diffId));
    const level = opts.compressionLevel;
    if (targetComp === 'gzip') stages.push(new ParallelGzip(level));
    else if (targetComp === 'zstd') stages.push(createZstdCompress(level === undefined ? {} : { params: { [zlibConstants.ZSTD_c_compressionLevel]: level } }));
    // Only the uncompressed result has a digest known in advance (the diff_id).
    putInfo = { digest: targetComp === 'none' && diffId !== undefined ? diffId : '', size: -1, mediaType: targetType };
  }
  const body = chain(raw, stages);
  let stored: BlobInfo;
  try {
    stored = await dst.putBlob(body, putInfo, false);
  } catch (e) {
    body.destroy();
    raw.destroy();
    if (e instanceof DigestMismatchError && diffId !== undefined && e.expected === diffId && diffId !== layer.digest) {
      throw new Error(`layer ${index} (${layer.digest}): uncompressed content is ${e.actual}, but the config's diff_id is ${diffId}`, { cause: e });
    }
    if (isZlibError(e) && !signal.aborted) {
      // A corrupt blob usually breaks a decompressor (ours, or the destination's when it unpacks
      // as it stores) before the digest check at the end gets to run; re-read it so the user
      // gets the real cause rather than a zlib message.
      const corrupt = await verifyBlob(src, layer).catch((err: unknown) => err);
      if (corrupt instanceof DigestMismatchError) throw corrupt;
      throw new Error(`layer ${index} (${layer.digest}): cannot decompress: ${(e as Error).message}`, { cause: e });
    }
    throw e;
  }
  if (passthrough && stored.digest !== layer.digest) throw new DigestMismatchError(layer.digest, stored.digest);
  validateDigest(stored.digest, 'stored blob digest');
  progress?.onBlobDone?.(info, false);
  return passthrough ? out(layer.digest, layer.size) : out(stored.digest, stored.size);
}

/**
 * Joins streams and returns the last. Any stage failing destroys the whole chain, so the
 * consumer sees an error instead of a clean end and discards what it wrote.
 */
function chain(first: Readable, rest: Transform[]): Readable {
  const last = rest.at(-1);
  if (!last) return first;
  pipelineCb([first, ...rest], () => {});
  return last;
}

function isZlibError(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('Z_') || code.startsWith('ERR_ZLIB') || code.startsWith('ZSTD_'));
}

/** Streams a blob through verification only; rejects with the mismatch if there is one. */
async function verifyBlob(src: ImageSource, d: Descriptor): Promise<void> {
  const { stream } = await src.getBlob(blobInfo(d));
  for await (const _ of chain(stream, [new VerifyingStream(d.digest, d.size)]));
}

/** Reads a small blob fully, verifying digest and size, refusing more than `limit` bytes. */
async function readVerified(src: ImageSource, d: Descriptor, limit: number): Promise<Buffer> {
  const { stream } = await src.getBlob(blobInfo(d));
  const verify = new VerifyingStream(d.digest, d.size);
  const chunks: Buffer[] = [];
  let n = 0;
  const body = chain(stream, [verify]);
  for await (const c of body) {
    n += (c as Buffer).length;
    if (n > limit) {
      body.destroy();
      throw new Error(`blob ${d.digest} exceeds ${limit} bytes`);
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

/**
 * Decompresses gzip or zstd input and passes anything else through, deciding by magic bytes so
 * a mislabelled media type does not matter.
 */
export class AutoDecompress extends Transform {
  #head: Buffer[] = [];
  #headLen = 0;
  #inner: Transform | null | undefined;
  #pendingFlush: TransformCallback | undefined;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.#inner === undefined) {
      this.#head.push(chunk);
      this.#headLen += chunk.length;
      if (this.#headLen < 4) {
        cb();
        return;
      }
      chunk = this.#start();
    }
    this.#feed(chunk, cb);
  }

  override _flush(cb: TransformCallback): void {
    if (this.#inner === undefined) {
      // Input shorter than the magic: whatever it is, it is not compressed.
      const head = this.#start();
      if (head.length > 0 && !this.#inner) this.push(head);
      else if (head.length > 0) {
        this.#feed(head, (err) => (err ? cb(err) : this.#finish(cb)));
        return;
      }
    }
    this.#finish(cb);
  }

  #start(): Buffer {
    const head = Buffer.concat(this.#head);
    this.#head = [];
    const kind = detectCompression(head);
    if (kind === 'none') {
      this.#inner = null;
      return head;
    }
    const inner = kind === 'gzip' ? createGunzip() : createZstdDecompress();
    inner.on('data', (d: Buffer) => {
      // Honour backpressure from our reader by pausing the decompressor.
      if (!this.push(d)) inner.pause();
    });
    inner.on('error', (e) => this.destroy(e));
    inner.on('end', () => {
      const cb = this.#pendingFlush;
      this.#pendingFlush = undefined;
      cb?.();
    });
    this.#inner = inner;
    return head;
  }

  override _read(size: number): void {
    if (this.#inner && this.#inner.isPaused()) this.#inner.resume();
    super._read(size);
  }

  #feed(chunk: Buffer, cb: TransformCallback): void {
    const inner = this.#inner;
    if (!inner) {
      cb(null, chunk);
      return;
    }
    if (inner.write(chunk)) cb();
    else inner.once('drain', () => cb());
  }

  #finish(cb: TransformCallback): void {
    const inner = this.#inner;
    if (!inner) {
      cb();
      return;
    }
    this.#pendingFlush = cb;
    inner.end();
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    if (this.#inner) this.#inner.destroy();
    cb(err);
  }
}

/**
 * Runs `fn` over `items` with at most `limit` in flight. On the first failure no new work starts,
 * in-flight work is aborted through the signal, and the first error is thrown once all settled
 * (so the destination is not closed under a running write).
 */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number, signal: AbortSignal) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  const ac = new AbortController();
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (!failure && next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i]!, i, ac.signal);
      } catch (error) {
        if (!failure) {
          failure = { error };
          ac.abort(error);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.error;
  return results;
}
