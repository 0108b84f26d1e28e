import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { LayerRecord, StagedLayer, Store } from '../../store/store.ts';
import { StoreError } from '../../store/store.ts';
import { sha256 } from '../../store/hashing.ts';
import type { BlobInfo, ImageDestination, ImageSource } from '../transport.ts';
import type { ImageConfig, Manifest, ManifestFormat } from '../types.ts';
import { MediaType } from '../types.ts';
import { buildManifest, getImage, imageByManifestDigest } from '../local-images.ts';

const MAX_CONFIG = 8 << 20;

/** barge's own store as a copy source: manifests and blobs exactly as kept. */
export class StorageSource implements ImageSource {
  readonly reference: string;
  constructor(private readonly store: Store, private readonly ref: string) {
    this.reference = `containers-storage:${ref}`;
  }

  /** With `instance`, a local image of that manifest digest: what an index kept here (a manifest list) names. */
  async getManifest(instance?: string): Promise<{ bytes: Buffer; mediaType: string }> {
    const img = instance === undefined ? getImage(this.store, this.ref) : imageByManifestDigest(this.store, instance);
    if (!img) throw new StoreError(`image ${instance} of ${this.reference} is not in local storage`, 'notfound');
    return { bytes: await this.store.imageManifest(img), mediaType: img.manifestMediaType };
  }

  async getBlob(info: BlobInfo): Promise<{ stream: Readable; size: number }> {
    if (!this.store.hasBlob(info.digest)) throw new StoreError(`blob ${info.digest} is not in the store`, 'corrupt');
    return { stream: createReadStream(this.store.blobPath(info.digest)), size: info.size };
  }

  async close(): Promise<void> {}
}

/**
 * barge's store as a copy destination. Layers are unpacked while they stream in (in
 * parallel, each into its own staging directory) and registered bottom-up at commit.
 */
export class StorageDestination implements ImageDestination {
  readonly reference: string;
  readonly supportedManifestFormats: ManifestFormat[] = ['oci', 'docker'];
  readonly wantsUncompressedLayers = false;
  // stageLayer checks every layer's digest and size as it unpacks it.
  readonly verifiesBlobs = true;
  private config: Buffer | undefined;
  private manifest: { bytes: Buffer; mediaType: string } | undefined;
  private readonly staged = new Map<string, StagedLayer>();
  imageId: string | undefined;

  constructor(private readonly store: Store, private readonly names: string[], readonly onLayerProgress?: (digest: string, bytes: number) => void) {
    this.reference = `containers-storage:${names[0] ?? ''}`;
  }

  async hasBlob(info: BlobInfo): Promise<boolean> {
    return this.store.hasBlob(info.digest);
  }

  async putBlob(stream: Readable, info: BlobInfo, isConfig: boolean): Promise<BlobInfo> {
    if (isConfig) {
      const chunks: Buffer[] = [];
      let n = 0;
      for await (const c of stream as AsyncIterable<Buffer>) {
        n += c.length;
        if (n > MAX_CONFIG) throw new StoreError('image config is larger than 8 MiB', 'invalid');
        chunks.push(c);
      }
      this.config = Buffer.concat(chunks);
      const digest = sha256(this.config);
      if (info.digest && digest !== info.digest) throw new StoreError(`digest mismatch for blob ${info.digest}: got ${digest}`, 'corrupt');
      return { digest, size: this.config.length };
    }
    const cb = this.onLayerProgress;
    const staged = await this.store.stageLayer({
      stream, parent: null,
      ...(info.digest && { expectedBlobDigest: info.digest }),
      ...(info.size >= 0 && { expectedBlobSize: info.size }),
      ...(info.mediaType && { mediaType: info.mediaType }),
      ...(cb && { onProgress: (b: number) => cb(info.digest, b) }),
    });
    // The blob is verified now: keep it at once, so a pull killed before commit leaves it for the
    // next pull, which then skips downloading it (publishLayer finds it already in place).
    if (staged.blobDigest === staged.rawDigest && !this.store.hasBlob(staged.blobDigest)) {
      await this.store.adoptBlobFile(join(staged.stage, 'blob'), staged.blobDigest);
    }
    this.staged.set(staged.rawDigest, staged);
    return { digest: staged.rawDigest, size: staged.blobSize, ...(info.mediaType && { mediaType: info.mediaType }) };
  }

  async putManifest(bytes: Buffer, mediaType: string): Promise<void> {
    this.manifest = { bytes, mediaType };
  }

  async commit(): Promise<void> {
    if (!this.manifest) throw new StoreError('no manifest was written', 'invalid');
    const manifest = JSON.parse(this.manifest.bytes.toString()) as Manifest;
    const configBytes = this.config ?? (await this.store.readBlob(manifest.config.digest));
    const config = JSON.parse(configBytes.toString()) as ImageConfig;
    const diffIds = config.rootfs?.diff_ids ?? [];
    if (diffIds.length !== manifest.layers.length) {
      throw new StoreError(`image config lists ${diffIds.length} layers but the manifest has ${manifest.layers.length}`, 'corrupt');
    }
    const chain: LayerRecord[] = [];
    let parent: string | null = null;
    for (const [i, desc] of manifest.layers.entries()) {
      const diffId = diffIds[i]!;
      const staged = this.staged.get(desc.digest);
      let rec: LayerRecord;
      if (staged) {
        if (staged.diffId !== diffId) {
          throw new StoreError(`layer ${i + 1} content is ${staged.diffId} but the image config says ${diffId}`, 'corrupt');
        }
        rec = await this.store.publishLayer(staged, parent);
      } else {
        // Skipped because the store already had the blob: reuse the layer, or unpack the kept blob.
        rec = await this.store.putLayer({
          stream: createReadStream(this.store.blobPath(desc.digest)), parent, expectedDiffId: diffId, expectedBlobDigest: desc.digest,
        });
      }
      chain.push(rec);
      parent = rec.id;
    }
    const keptAsIs = chain.every((l, i) => l.blobDigest === manifest.layers[i]!.digest);
    let manifestBytes = this.manifest.bytes;
    let mediaType = this.manifest.mediaType;
    if (!keptAsIs) {
      // Layers were re-encoded on the way in (e.g. uncompressed archives): describe what is kept.
      const format: ManifestFormat = mediaType === MediaType.dockerManifest ? 'docker' : 'oci';
      const m = buildManifest(format, configBytes, chain, manifest.annotations ?? {});
      manifestBytes = Buffer.from(JSON.stringify(m));
      mediaType = m.mediaType!;
    }
    const img = await this.store.createImage({
      config: configBytes, manifest: manifestBytes, manifestMediaType: mediaType, layers: chain.map((l) => l.id),
      names: this.names, ...(config.created && { created: config.created }),
    });
    this.imageId = img.id;
    await this.store.sweepTmp();
  }

  async close(): Promise<void> {
    for (const s of this.staged.values()) await this.store.discardStaged(s);
    this.staged.clear();
  }
}
