// Manifest lists kept in the local store (Buildah's `manifest` commands): an image row whose
// manifest is an OCI index or Docker manifest list, plus where each named image can be read.
import type { Readable } from 'node:stream';
import type { ImageRecord, Store } from '../store/store.ts';
import { isListRecord, StoreError } from '../store/store.ts';
import { algorithmOf, digestOf, DigestMismatchError } from './digest.ts';
import { findImage, imageByManifestDigest, parseListIndex, readImageConfig } from './local-images.ts';
import {
  buildIndex,
  choosePlatform,
  indexMediaTypeFor,
  manifestFormatOf,
  MAX_CONFIG_SIZE,
  parseImageConfig,
  parseManifest,
  type PlatformSpec,
} from './manifest.ts';
import type { BlobInfo, ImageSource } from './transport.ts';
import { StorageSource } from './transports/containers-storage.ts';
import { MediaType, type Descriptor, type ImageConfig, type ImageIndex, type ManifestFormat, type Platform } from './types.ts';

/** Media type of a new list. Buildah 1.28 keeps an OCI index and pushes one unless told otherwise. */
export const NEW_LIST_MEDIA_TYPE = MediaType.ociIndex;

export interface StoredList {
  record: ImageRecord;
  index: ImageIndex;
  /** Fields of the stored index other than its manifests, kept across edits. */
  raw: Record<string, unknown>;
  mediaType: string;
  sources: Map<string, string>;
}

/** The list an argument names; not-found and not-a-list are the errors Buildah gives. */
export function getList(store: Store, name: string): ImageRecord {
  const img = findImage(store, name);
  if (!img) throw new StoreError(`${name}: image not known`, 'notfound');
  if (!isListRecord(img)) throw new StoreError(`${img.names[0] ?? name}: image is not a manifest list`, 'invalid');
  return img;
}

export async function readList(store: Store, record: ImageRecord): Promise<StoredList> {
  const parsed = parseListIndex(await store.imageManifest(record), record);
  return { record, index: parsed.index, raw: parsed.raw, mediaType: parsed.mediaType, sources: store.listSources(record.id) };
}

/**
 * Rewrites a list's entries under its lock: `change` gets the current entries and the sources
 * (which it may edit) and returns the new entries; the list keeps its format and other fields.
 */
export function editList(store: Store, record: ImageRecord, change: (index: ImageIndex, sources: Map<string, string>) => Descriptor[]): Promise<ImageRecord> {
  return store.updateList(record.id, (bytes, sources) => {
    const parsed = parseListIndex(bytes, record);
    return { ...serializeList(parsed, change(parsed.index, sources)), sources };
  });
}

/** Registers a new list of `added` (maybe none) named `name`. */
export function createList(store: Store, name: string, added: Instance[]): Promise<ImageRecord> {
  const sources = new Map<string, string>();
  const { manifest, mediaType } = serializeList({ raw: {}, mediaType: NEW_LIST_MEDIA_TYPE }, withInstances([], sources, added, {}));
  return store.createList({ manifest, mediaType, names: [name], sources });
}

/** One image to put in a list: its descriptor and where push will read it. */
export interface Instance {
  descriptor: Descriptor;
  source: string;
}

/** The platform an image config declares, as an index entry carries it. */
function platformOf(cfg: Pick<ImageConfig, 'architecture' | 'os' | 'variant' | 'os.version'>): Platform {
  const p: Platform = { architecture: cfg.architecture, os: cfg.os };
  if (cfg.variant) p.variant = cfg.variant;
  if (cfg['os.version']) p['os.version'] = cfg['os.version'];
  return p;
}

function pickInstances(index: ImageIndex, all: boolean, platform: PlatformSpec): Descriptor[] {
  return all ? index.manifests : [choosePlatform(index, platform)];
}

/**
 * The instances a local image contributes: itself, or for a list (as Buildah) the instance for
 * `platform`, or every instance with `all`.
 */
export async function localInstances(store: Store, img: ImageRecord, all: boolean, platform: PlatformSpec): Promise<Instance[]> {
  if (isListRecord(img)) {
    const list = await readList(store, img);
    return pickInstances(list.index, all, platform).map((d) => ({ descriptor: d, source: list.sources.get(d.digest) ?? img.id }));
  }
  const bytes = await store.imageManifest(img);
  const descriptor: Descriptor = { mediaType: img.manifestMediaType, digest: img.manifestDigest, size: bytes.length, platform: platformOf(await readImageConfig(store, img)) };
  return [{ descriptor, source: img.id }];
}

/** The instances an image of another transport contributes; `reference` is recorded for push. */
export async function remoteInstances(src: ImageSource, reference: string, all: boolean, platform: PlatformSpec): Promise<Instance[]> {
  const top = await src.getManifest();
  const parsed = parseManifest(top.bytes, top.mediaType);
  if (parsed.kind === 'index') return pickInstances(parsed.index, all, platform).map((d) => ({ descriptor: d, source: reference }));
  const cfg = parsed.manifest.config;
  if (cfg.size > MAX_CONFIG_SIZE) throw new Error(`${reference}: config ${cfg.digest} is ${cfg.size} bytes, over the ${MAX_CONFIG_SIZE}-byte limit`);
  const { stream } = await src.getBlob({ digest: cfg.digest, size: cfg.size, mediaType: cfg.mediaType });
  const chunks: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c);
  const cfgBytes = Buffer.concat(chunks);
  const actual = digestOf(cfgBytes, algorithmOf(cfg.digest));
  if (actual !== cfg.digest) throw new DigestMismatchError(cfg.digest, actual);
  const descriptor: Descriptor = { mediaType: parsed.mediaType, digest: digestOf(top.bytes), size: top.bytes.length, platform: platformOf(parseImageConfig(cfgBytes)) };
  return [{ descriptor, source: reference }];
}

/** What --arch, --os, --variant, --os-version, --features, --os-features and --annotation change in an entry. */
export interface EntryEdits {
  arch?: string;
  os?: string;
  variant?: string;
  osVersion?: string;
  features?: string[];
  osFeatures?: string[];
  annotations?: Record<string, string>;
}

export function editEntry(d: Descriptor, e: EntryEdits): Descriptor {
  const out: Descriptor = { ...d };
  const platformEdited = [e.arch, e.os, e.variant, e.osVersion, e.features, e.osFeatures].some((v) => v !== undefined);
  // An entry without a platform (an artifact) gets one only when asked to.
  if (d.platform || platformEdited) {
    const platform: Platform = { ...(d.platform ?? { architecture: '', os: '' }) };
    if (e.arch !== undefined) platform.architecture = e.arch;
    if (e.os !== undefined) platform.os = e.os;
    if (e.variant !== undefined) platform.variant = e.variant;
    if (e.osVersion !== undefined) platform['os.version'] = e.osVersion;
    if (e.features !== undefined) platform.features = e.features;
    if (e.osFeatures !== undefined) platform['os.features'] = e.osFeatures;
    out.platform = platform;
  }
  if (e.annotations && Object.keys(e.annotations).length) out.annotations = { ...d.annotations, ...e.annotations };
  return out;
}

/** A list's index with `manifests`, in the list's own format. */
export function serializeList(list: Pick<StoredList, 'raw' | 'mediaType'>, manifests: Descriptor[]): { manifest: Buffer; mediaType: string } {
  const format: ManifestFormat = manifestFormatOf(list.mediaType);
  return { manifest: buildIndex(list.raw, format, manifests), mediaType: indexMediaTypeFor(format) };
}

/**
 * Adds instances to an index as Buildah does: an image already listed (same digest) has its entry
 * replaced in place, others are appended. `edits` apply to each added entry.
 */
export function withInstances(current: Descriptor[], sources: Map<string, string>, added: Instance[], edits: EntryEdits): Descriptor[] {
  const out = [...current];
  for (const inst of added) {
    const entry = editEntry(inst.descriptor, edits);
    const at = out.findIndex((d) => d.digest === entry.digest);
    if (at >= 0) out[at] = entry;
    else out.push(entry);
    sources.set(entry.digest, inst.source);
  }
  return out;
}

export function requireInstance(index: ImageIndex, digest: string, list: string): Descriptor {
  const d = index.manifests.find((m) => m.digest === digest);
  if (!d) throw new StoreError(`no instance matching digest "${digest}" found in manifest list ${list}`, 'notfound');
  return d;
}

/**
 * A list as a copy source for push: the index at the top, and each instance read from where it was
 * added (the store for local images, its transport otherwise). `open` opens a recorded reference.
 */
export class ListSource implements ImageSource {
  readonly reference: string;
  readonly #remote = new Map<string, Promise<ImageSource>>();
  /** The source holding each blob, filled as instance manifests are read (before their blobs). */
  readonly #blobOwners = new Map<string, ImageSource>();
  readonly #local: StorageSource;

  constructor(
    private readonly store: Store,
    private readonly list: StoredList,
    private readonly open: (reference: string) => Promise<ImageSource>,
  ) {
    this.#local = new StorageSource(store, list.record.id);
    this.reference = this.#local.reference;
  }

  async getManifest(instance?: string): Promise<{ bytes: Buffer; mediaType: string }> {
    // Any local image of the digest will do: the digest is of the manifest, which is all that is read.
    if (instance === undefined || imageByManifestDigest(this.store, instance)) return this.#local.getManifest(instance);
    const source = this.list.sources.get(instance);
    if (source === undefined || !source.includes(':')) {
      throw new StoreError(`image ${instance} of manifest list ${this.list.record.names[0] ?? this.list.record.id} is no longer in local storage`, 'notfound');
    }
    const src = await this.remote(source);
    // A reference to the image itself (not to a list holding it) is its own top manifest.
    const top = await src.getManifest();
    const m = digestOf(top.bytes, algorithmOf(instance)) === instance ? top : await src.getManifest(instance);
    const parsed = parseManifest(m.bytes, m.mediaType);
    if (parsed.kind === 'manifest') for (const d of [parsed.manifest.config, ...parsed.manifest.layers]) this.#blobOwners.set(d.digest, src);
    return m;
  }

  private remote(reference: string): Promise<ImageSource> {
    let p = this.#remote.get(reference);
    if (!p) {
      p = this.open(reference);
      this.#remote.set(reference, p);
    }
    return p;
  }

  async getBlob(info: BlobInfo): Promise<{ stream: Readable; size: number }> {
    const owner = this.#blobOwners.get(info.digest);
    return (owner ?? this.#local).getBlob(info);
  }

  async close(): Promise<void> {
    for (const p of this.#remote.values()) await (await p.catch(() => undefined))?.close();
  }
}
