import type { ImageRecord, Store } from '../store/store.ts';
import { isListRecord, StoreError } from '../store/store.ts';
import type { LayerRecord } from '../store/store.ts';
import { sha256 } from '../store/hashing.ts';
import { MediaType, type Descriptor, type ImageConfig, type Manifest, type ManifestFormat } from './types.ts';
import { localCandidates, parseReference, ReferenceError } from './reference.ts';
import { choosePlatform, describePlatform, descriptorFor, parseManifest, platformMatches, type ParsedManifest, type PlatformSpec } from './manifest.ts';
import { hostArch } from '../primitives/builder.ts';

/**
 * Finds a local image the way Podman does: full id, unique id prefix, exact name, the name
 * completed with localhost/ or docker.io/, and finally any stored name with the same path.
 */
export function findImage(store: Store, ref: string): ImageRecord | undefined {
  const r = ref.startsWith('sha256:') ? ref.slice(7) : ref;
  if (/^[a-f0-9]{64}$/.test(r)) return store.getImage(r);
  const exact = store.imageByName(ref);
  if (exact) return exact;
  if (/^[a-f0-9]{3,63}$/.test(r)) {
    const hits = store.imagesByIdPrefix(r);
    if (hits.length === 1) return hits[0];
    if (hits.length > 1) throw new StoreError(`image id prefix "${r}" is ambiguous`, 'conflict');
  }
  let candidates: string[];
  try {
    candidates = localCandidates(ref);
  } catch (e) {
    if (e instanceof ReferenceError) return undefined;
    throw e;
  }
  for (const c of candidates) {
    const img = store.imageByName(c);
    if (img) return img;
  }
  const parsed = parseReference(ref);
  if (!parsed.domain) {
    const tag = parsed.tag ?? 'latest';
    const suffix = `/${parsed.path}:${tag}`;
    const hit = store.allNames().find((n) => n.name.endsWith(suffix));
    if (hit) return store.getImage(hit.imageId);
  }
  return undefined;
}

export type PullPolicy = 'always' | 'missing' | 'never' | 'newer';

/** Podman's run --pull and Buildah's pull --policy: the four names in any case (not build's true/false). */
export function parsePullPolicy(v: string): PullPolicy {
  const p = v.toLowerCase();
  if (p === 'always' || p === 'missing' || p === 'never' || p === 'newer') return p;
  throw new Error(`unsupported pull policy "${v}"`);
}

/** Fetches an image into the store (from a registry), for a platform when one is given, and returns its id. */
export type Puller = (ref: string, platform?: PlatformSpec) => Promise<string>;

/**
 * The image a FROM or `from` names, honouring the pull policy as Buildah does: `missing` pulls
 * only what is not local, `always` pulls first, `newer` tries to pull and falls back to the
 * local copy, `never` uses only local images. A local manifest list stands for its image for the
 * platform (this machine's unless one is given), which must be local too. With a platform, a
 * local image of another platform counts as missing (as with Podman's --arch), and is never the
 * fallback.
 */
export async function resolveImage(store: Store, ref: string, policy: PullPolicy = 'missing', pull?: Puller, platform?: PlatformSpec): Promise<ImageRecord> {
  return platformImage(store, await resolveStored(store, ref, policy, pull, platform), ref, platform);
}

/** The index in a stored list's manifest blob `bytes`. */
export function parseListIndex(bytes: Buffer, list: ImageRecord): ParsedManifest & { kind: 'index' } {
  const parsed = parseManifest(bytes, list.manifestMediaType);
  if (parsed.kind !== 'index') throw new StoreError(`${list.names[0] ?? list.id}: manifest list holds no index`, 'corrupt');
  return parsed;
}

/** A local image (not a list) whose manifest has this digest. */
export function imageByManifestDigest(store: Store, digest: string): ImageRecord | undefined {
  return store.listImages().find((i) => i.manifestDigest === digest && !isListRecord(i));
}

/** The image itself, or for a manifest list the local image it names for the platform (default: this machine's). */
export async function platformImage(store: Store, list: ImageRecord, ref: string, platform?: PlatformSpec): Promise<ImageRecord> {
  if (!isListRecord(list)) return list;
  const parsed = parseListIndex(await store.imageManifest(list), list);
  const want = choosePlatform(parsed.index, { os: 'linux', architecture: hostArch(), ...platform });
  const img = imageByManifestDigest(store, want.digest);
  if (!img) throw new StoreError(`${ref}: the image ${want.digest} that manifest list names for ${platform ? describePlatform({ os: 'linux', ...platform }) : 'this platform'} is not in local storage`, 'notfound');
  return img;
}

async function resolveStored(store: Store, ref: string, policy: PullPolicy, pull?: Puller, platform?: PlatformSpec): Promise<ImageRecord> {
  let local = policy === 'always' ? undefined : findImage(store, ref);
  let otherPlatform = '';
  // A list is checked for the platform when its member is picked (platformImage).
  if (local && platform && !isListRecord(local)) {
    const cfg = await readImageConfig(store, local);
    if (!platformMatches(cfg, platform)) {
      otherPlatform = ` (the local image is ${describePlatform(cfg)}, not ${describePlatform(platform)})`;
      local = undefined;
    }
  }
  if (local && policy !== 'newer') return local;
  if (policy === 'never' || !pull) {
    throw new StoreError(`${ref}: image not known${otherPlatform}${policy === 'never' ? ' and the pull policy is "never"' : ''}`, 'notfound');
  }
  try {
    const id = await pull(ref, platform);
    return store.getImage(id) ?? getImage(store, ref);
  } catch (e) {
    if (local) return local;
    if (policy === 'always') throw e;
    throw new StoreError(`${ref}: image not known locally${otherPlatform}, and pulling it failed: ${(e as Error).message}`, 'notfound');
  }
}

export function getImage(store: Store, ref: string): ImageRecord {
  const img = findImage(store, ref);
  if (!img) throw new StoreError(`${ref}: image not known`, 'notfound');
  return img;
}

/** A list has no config of its own: commands that need one name the list's problem, not a missing blob. */
export function requireSingleImage(img: ImageRecord): void {
  if (isListRecord(img)) throw new StoreError(`${img.names[0] ?? img.id}: image is a manifest list, not an image: use "manifest inspect" or pick an instance`, 'invalid');
}

export async function readImageConfig(store: Store, img: ImageRecord): Promise<ImageConfig> {
  requireSingleImage(img);
  return JSON.parse((await store.imageConfig(img.id)).toString()) as ImageConfig;
}

export async function readImageManifest(store: Store, img: ImageRecord): Promise<Manifest> {
  requireSingleImage(img);
  return JSON.parse((await store.imageManifest(img)).toString()) as Manifest;
}

function configDescriptor(format: ManifestFormat, bytes: Buffer, digest: string): Descriptor {
  return descriptorFor(format, { mediaType: format === 'docker' ? MediaType.dockerConfig : MediaType.ociConfig, digest, size: bytes.length });
}

/** A manifest for layers as kept in the store (their compressed blobs). */
export function buildManifest(
  format: ManifestFormat,
  configBytes: Buffer,
  chain: LayerRecord[],
  annotations: Record<string, string> = {},
): Manifest {
  const digest = sha256(configBytes);
  const layers = chain.map((l): Descriptor => {
    if (!l.blobDigest || l.blobSize === null) throw new StoreError(`layer ${l.id.slice(0, 12)} has no stored blob; run "barge system check --repair"`, 'corrupt');
    return descriptorFor(format, { mediaType: layerMediaType(format, l.blobMediaType ?? MediaType.ociLayerGzip), digest: l.blobDigest, size: l.blobSize });
  });
  const m: Manifest = {
    schemaVersion: 2,
    mediaType: format === 'docker' ? MediaType.dockerManifest : MediaType.ociManifest,
    config: configDescriptor(format, configBytes, digest),
    layers,
  };
  if (format === 'oci' && Object.keys(annotations).length) m.annotations = annotations;
  return m;
}

function layerMediaType(format: ManifestFormat, stored: string): string {
  const gz = stored.endsWith('gzip');
  if (format === 'docker') {
    if (stored.endsWith('zstd')) throw new StoreError('a zstd-compressed layer cannot be written in the docker format', 'invalid');
    return gz ? MediaType.dockerLayerGzip : MediaType.dockerLayer;
  }
  return stored.endsWith('zstd') ? MediaType.ociLayerZstd : gz ? MediaType.ociLayerGzip : MediaType.ociLayer;
}

