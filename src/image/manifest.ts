import { isValidDigest } from './digest.ts';
import { MediaType, type Descriptor, type ImageConfig, type ImageIndex, type Manifest, type ManifestFormat } from './types.ts';

/** Registries cap manifests at 4 MiB; anything larger is hostile or broken. */
export const MAX_MANIFEST_SIZE = 4 * 1024 * 1024;
export const MAX_CONFIG_SIZE = 8 * 1024 * 1024;

// Layer types not in types.ts: they only matter for conversion, never for writing new images.
const OCI_NONDIST = 'application/vnd.oci.image.layer.nondistributable.v1.tar';
const OCI_NONDIST_GZIP = 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip';
const OCI_NONDIST_ZSTD = 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd';
const DOCKER_FOREIGN_GZIP = 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip';
const DOCKER_SCHEMA1 = 'application/vnd.docker.distribution.manifest.v1+json';
const DOCKER_SCHEMA1_SIGNED = 'application/vnd.docker.distribution.manifest.v1+prettyjws';

import type { Compression } from '../store/hashing.ts';

export type { Compression };

export type ParsedManifest =
  | { kind: 'manifest'; mediaType: string; manifest: Manifest; raw: Record<string, unknown> }
  | { kind: 'index'; mediaType: string; index: ImageIndex; raw: Record<string, unknown> };

export class ManifestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ManifestError';
  }
}

export function isManifestMediaType(mt: string): boolean {
  return mt === MediaType.ociManifest || mt === MediaType.dockerManifest;
}

export function isIndexMediaType(mt: string): boolean {
  return mt === MediaType.ociIndex || mt === MediaType.dockerManifestList;
}

export function isImageConfigMediaType(mt: string): boolean {
  return mt === MediaType.ociConfig || mt === MediaType.dockerConfig;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseJsonObject(bytes: Buffer, what: string, limit: number): Record<string, unknown> {
  if (bytes.length > limit) throw new ManifestError(`${what} is ${bytes.length} bytes, over the ${limit}-byte limit`);
  let v: unknown;
  try {
    v = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new ManifestError(`malformed ${what} JSON: ${(e as Error).message}`);
  }
  if (!isObject(v)) throw new ManifestError(`malformed ${what}: not a JSON object`);
  return v;
}

/** Media type from the `mediaType` field, or guessed from the shape when the field is absent. */
export function detectManifestMediaType(input: Buffer | Record<string, unknown>): string {
  const obj = Buffer.isBuffer(input) ? parseJsonObject(input, 'manifest', MAX_MANIFEST_SIZE) : input;
  if (typeof obj.mediaType === 'string' && obj.mediaType !== '') return obj.mediaType;
  if (obj.schemaVersion === 1) return obj.signatures !== undefined ? DOCKER_SCHEMA1_SIGNED : DOCKER_SCHEMA1;
  if (Array.isArray(obj.manifests)) return MediaType.ociIndex;
  if (obj.config !== undefined || obj.layers !== undefined) return MediaType.ociManifest;
  throw new ManifestError('cannot determine the manifest media type: no mediaType field and neither layers nor manifests');
}

function validateDescriptor(v: unknown, where: string): Descriptor {
  if (!isObject(v)) throw new ManifestError(`${where}: not an object`);
  if (typeof v.mediaType !== 'string' || v.mediaType === '') throw new ManifestError(`${where}: missing mediaType`);
  if (!isValidDigest(v.digest)) throw new ManifestError(`${where}: invalid digest ${JSON.stringify(v.digest)}`);
  if (typeof v.size !== 'number' || !Number.isSafeInteger(v.size) || v.size < 0) {
    throw new ManifestError(`${where}: invalid size ${JSON.stringify(v.size)}`);
  }
  if (v.annotations !== undefined) {
    if (!isObject(v.annotations) || Object.values(v.annotations).some((a) => typeof a !== 'string')) {
      throw new ManifestError(`${where}: annotations must map strings to strings`);
    }
  }
  if (v.platform !== undefined) {
    const p = v.platform;
    if (!isObject(p) || typeof p.os !== 'string' || typeof p.architecture !== 'string') {
      throw new ManifestError(`${where}: platform needs string os and architecture`);
    }
  }
  if (v.urls !== undefined && (!Array.isArray(v.urls) || v.urls.some((u) => typeof u !== 'string'))) {
    throw new ManifestError(`${where}: urls must be an array of strings`);
  }
  return v as unknown as Descriptor;
}

/**
 * Parses and validates an image manifest or index. `mediaTypeHint` (e.g. from a descriptor or a
 * transport) is used only when the document has no mediaType field of its own.
 */
export function parseManifest(bytes: Buffer, mediaTypeHint?: string): ParsedManifest {
  const raw = parseJsonObject(bytes, 'manifest', MAX_MANIFEST_SIZE);
  if (raw.schemaVersion !== 2) {
    const v = raw.schemaVersion;
    throw new ManifestError(
      v === 1 ? 'Docker schema1 manifests are not supported' : `unsupported manifest schemaVersion ${JSON.stringify(v)} (want 2)`,
    );
  }
  let mediaType: string;
  if (typeof raw.mediaType === 'string' && raw.mediaType !== '') mediaType = raw.mediaType;
  else if (mediaTypeHint && (isManifestMediaType(mediaTypeHint) || isIndexMediaType(mediaTypeHint))) mediaType = mediaTypeHint;
  else mediaType = detectManifestMediaType(raw);
  // Docker schema2 requires the mediaType field; a document without it cannot be a docker manifest.
  if ((mediaType === MediaType.dockerManifest || mediaType === MediaType.dockerManifestList) && raw.mediaType !== mediaType) {
    throw new ManifestError(`manifest declared as ${mediaType} lacks the matching mediaType field`);
  }

  if (isManifestMediaType(mediaType)) {
    if (raw.manifests !== undefined) throw new ManifestError('image manifest must not contain "manifests"');
    if (raw.config === undefined) throw new ManifestError('manifest has no config');
    if (!Array.isArray(raw.layers)) throw new ManifestError('manifest has no layers array');
    validateDescriptor(raw.config, 'manifest config');
    raw.layers.forEach((l, i) => validateDescriptor(l, `manifest layer ${i}`));
    return { kind: 'manifest', mediaType, manifest: raw as unknown as Manifest, raw };
  }
  if (isIndexMediaType(mediaType)) {
    if (!Array.isArray(raw.manifests)) throw new ManifestError('index has no manifests array');
    if (raw.config !== undefined || raw.layers !== undefined) throw new ManifestError('index must not contain config or layers');
    raw.manifests.forEach((m, i) => validateDescriptor(m, `index entry ${i}`));
    return { kind: 'index', mediaType, index: raw as unknown as ImageIndex, raw };
  }
  throw new ManifestError(`unsupported manifest media type ${mediaType}`);
}

/** Parses an image config far enough to trust `rootfs.diff_ids`. */
export function parseImageConfig(bytes: Buffer): ImageConfig {
  const raw = parseJsonObject(bytes, 'image config', MAX_CONFIG_SIZE);
  const rootfs = raw.rootfs;
  if (!isObject(rootfs) || !Array.isArray(rootfs.diff_ids)) throw new ManifestError('image config has no rootfs.diff_ids');
  if (rootfs.type !== 'layers') throw new ManifestError(`image config rootfs.type is ${JSON.stringify(rootfs.type)}, want "layers"`);
  rootfs.diff_ids.forEach((d, i) => {
    if (!isValidDigest(d)) throw new ManifestError(`image config diff_id ${i} is invalid: ${JSON.stringify(d)}`);
  });
  return raw as unknown as ImageConfig;
}

export function manifestFormatOf(mediaType: string): ManifestFormat {
  switch (mediaType) {
    case MediaType.ociManifest:
    case MediaType.ociIndex:
      return 'oci';
    case MediaType.dockerManifest:
    case MediaType.dockerManifestList:
      return 'docker';
    default:
      throw new ManifestError(`unsupported manifest media type ${mediaType}`);
  }
}

export function manifestMediaTypeFor(format: ManifestFormat): string {
  return format === 'oci' ? MediaType.ociManifest : MediaType.dockerManifest;
}

export function configMediaTypeFor(format: ManifestFormat, current: string): string {
  if (!isImageConfigMediaType(current)) {
    if (format === 'docker') throw new ManifestError(`config media type ${current} cannot be expressed in a Docker schema2 manifest`);
    return current;
  }
  return format === 'oci' ? MediaType.ociConfig : MediaType.dockerConfig;
}

interface LayerType {
  compression: Compression;
  nondistributable: boolean;
  format: ManifestFormat;
}

const LAYER_TYPES: Record<string, LayerType> = {
  [MediaType.ociLayer]: { compression: 'none', nondistributable: false, format: 'oci' },
  [MediaType.ociLayerGzip]: { compression: 'gzip', nondistributable: false, format: 'oci' },
  [MediaType.ociLayerZstd]: { compression: 'zstd', nondistributable: false, format: 'oci' },
  [OCI_NONDIST]: { compression: 'none', nondistributable: true, format: 'oci' },
  [OCI_NONDIST_GZIP]: { compression: 'gzip', nondistributable: true, format: 'oci' },
  [OCI_NONDIST_ZSTD]: { compression: 'zstd', nondistributable: true, format: 'oci' },
  [MediaType.dockerLayer]: { compression: 'none', nondistributable: false, format: 'docker' },
  [MediaType.dockerLayerGzip]: { compression: 'gzip', nondistributable: false, format: 'docker' },
  [DOCKER_FOREIGN_GZIP]: { compression: 'gzip', nondistributable: true, format: 'docker' },
};

/** Compression implied by a layer media type; undefined for types that are not image layers. */
export function layerCompression(mediaType: string): Compression | undefined {
  return LAYER_TYPES[mediaType]?.compression;
}

export function isLayerMediaType(mediaType: string): boolean {
  return mediaType in LAYER_TYPES;
}

/** The layer media type for `format` and `compression`, keeping the non-distributable flavour of `current`. */
export function layerMediaTypeFor(format: ManifestFormat, compression: Compression, current?: string): string {
  const nondist = current !== undefined && LAYER_TYPES[current]?.nondistributable === true;
  if (format === 'oci') {
    if (nondist) return compression === 'gzip' ? OCI_NONDIST_GZIP : compression === 'zstd' ? OCI_NONDIST_ZSTD : OCI_NONDIST;
    return compression === 'gzip' ? MediaType.ociLayerGzip : compression === 'zstd' ? MediaType.ociLayerZstd : MediaType.ociLayer;
  }
  if (compression === 'zstd') {
    throw new ManifestError('zstd-compressed layers cannot be stored in a Docker schema2 manifest; use the OCI format or another compression');
  }
  if (nondist) {
    if (compression !== 'gzip') throw new ManifestError('Docker schema2 has no uncompressed foreign-layer media type');
    return DOCKER_FOREIGN_GZIP;
  }
  return compression === 'gzip' ? MediaType.dockerLayerGzip : MediaType.dockerLayer;
}

/** Same layer, expressed in the other format's vocabulary. Unknown (non-layer) types pass through for OCI only. */
export function convertLayerMediaType(mediaType: string, to: ManifestFormat): string {
  const t = LAYER_TYPES[mediaType];
  if (!t) {
    if (to === 'docker') throw new ManifestError(`layer media type ${mediaType} cannot be expressed in a Docker schema2 manifest`);
    return mediaType;
  }
  if (t.format === to) return mediaType;
  return layerMediaTypeFor(to, t.compression, mediaType);
}

/**
 * A descriptor as `format` writes it. The key order is part of the manifest's digest: Docker's
 * schema2 structs put size before digest, OCI's digest before size, so tools that convert (skopeo,
 * buildah) write these orders, and a conversion gives the same digest with any of them.
 */
export function descriptorFor(format: ManifestFormat, d: Descriptor): Descriptor {
  const out: Descriptor = format === 'docker' ? { mediaType: d.mediaType, size: d.size, digest: d.digest } : { mediaType: d.mediaType, digest: d.digest, size: d.size };
  if (d.urls && d.urls.length > 0) out.urls = d.urls;
  // Docker schema2 descriptors have no annotations; dropping them is what a conversion has to do.
  if (format === 'oci' && d.annotations && Object.keys(d.annotations).length > 0) out.annotations = d.annotations;
  return out;
}

/**
 * Serialises a manifest in `format` with the given config and layers, keeping the other fields
 * of `raw` that the target format can carry.
 */
export function buildManifest(raw: Record<string, unknown>, format: ManifestFormat, config: Descriptor, layers: Descriptor[]): Buffer {
  const out: Record<string, unknown> = { schemaVersion: 2, mediaType: manifestMediaTypeFor(format) };
  // Docker schema2 has only these four fields; OCI keeps everything else (artifactType, subject, …).
  const extra = format === 'oci' ? Object.entries(raw).filter(([k]) => !['schemaVersion', 'mediaType', 'config', 'layers', 'annotations'].includes(k)) : [];
  for (const [k, v] of extra) out[k] = v;
  out.config = descriptorFor(format, config);
  out.layers = layers.map((l) => descriptorFor(format, l));
  if (format === 'oci' && isObject(raw.annotations)) out.annotations = raw.annotations;
  return Buffer.from(JSON.stringify(out));
}

export function indexMediaTypeFor(format: ManifestFormat): string {
  return format === 'oci' ? MediaType.ociIndex : MediaType.dockerManifestList;
}

/**
 * Serialises an index (OCI) or manifest list (Docker) naming `manifests`, keeping the fields of
 * `raw` the target format can carry. Entries keep their platform in both formats.
 */
export function buildIndex(raw: Record<string, unknown>, format: ManifestFormat, manifests: Descriptor[]): Buffer {
  const out: Record<string, unknown> = { schemaVersion: 2, mediaType: indexMediaTypeFor(format) };
  if (format === 'oci') {
    for (const [k, v] of Object.entries(raw)) if (!['schemaVersion', 'mediaType', 'manifests'].includes(k)) out[k] = v;
  }
  out.manifests = manifests.map((m) => {
    const d = descriptorFor(format, m);
    if (m.platform) d.platform = m.platform;
    return d;
  });
  return Buffer.from(JSON.stringify(out));
}

/** Converts an image manifest to `to`, changing only media types. Returns the input unchanged when already in `to`. */
export function convertManifest(bytes: Buffer, to: ManifestFormat, mediaTypeHint?: string): { bytes: Buffer; mediaType: string } {
  const p = parseManifest(bytes, mediaTypeHint);
  if (p.kind !== 'manifest') throw new ManifestError('cannot convert an index; pick a platform instance first');
  if (manifestFormatOf(p.mediaType) === to) return { bytes, mediaType: p.mediaType };
  const m = p.manifest;
  const config = { ...m.config, mediaType: configMediaTypeFor(to, m.config.mediaType) };
  const layers = m.layers.map((l) => ({ ...l, mediaType: convertLayerMediaType(l.mediaType, to) }));
  return { bytes: buildManifest(p.raw, to, config, layers), mediaType: manifestMediaTypeFor(to) };
}

export interface PlatformSpec {
  os?: string;
  architecture?: string;
  variant?: string;
}

const ARCH_ALIASES: Record<string, string> = { x86_64: 'amd64', 'x86-64': 'amd64', aarch64: 'arm64', armhf: 'arm', armel: 'arm', i386: '386' };

function normArch(a: string): string {
  return ARCH_ALIASES[a] ?? a;
}

// An arm64 image without a variant is v8 and an arm one v7, so those spellings must compare equal.
function normVariant(arch: string, variant: string | undefined): string {
  if (variant) return variant;
  if (arch === 'arm64') return 'v8';
  if (arch === 'arm') return 'v7';
  return '';
}

/** containerd's rule for an OS, architecture or variant (which Buildah applies): letters, digits, _ and -. */
export const PLATFORM_PART = /^[A-Za-z0-9_-]+$/;

/** `OS/ARCH[/VARIANT]` (--platform, FROM --platform=), case folded. */
export function parsePlatform(p: string): PlatformSpec {
  const parts = p.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((x) => !PLATFORM_PART.test(x))) {
    throw new Error(`invalid platform syntax for ${JSON.stringify(p)} (use OS/ARCH[/VARIANT])`);
  }
  const [os, architecture, variant] = parts.map((x) => x.toLowerCase()) as [string, string, string | undefined];
  return { os, architecture, ...(variant !== undefined && { variant }) };
}

/** OS/ARCH[/VARIANT], as Podman and Buildah spell a platform. */
export function describePlatform(p: PlatformSpec | undefined): string {
  if (!p) return '(no platform)';
  return `${p.os ?? 'linux'}/${p.architecture ?? '?'}${p.variant ? `/${p.variant}` : ''}`;
}

/**
 * Whether a platform (an index entry's, an image config's) is the one wanted: what `want` leaves
 * out does not count, and architecture spellings (x86_64, aarch64) and implied variants (arm64 is
 * v8) compare equal.
 */
export function platformMatches(have: PlatformSpec, want: PlatformSpec): boolean {
  if (want.os !== undefined && want.os !== (have.os || 'linux')) return false;
  if (want.architecture === undefined) return want.variant === undefined;
  const arch = normArch(want.architecture);
  if (normArch(have.architecture ?? '') !== arch) return false;
  return want.variant === undefined || normVariant(arch, have.variant) === normVariant(arch, want.variant);
}

/** Picks the index entry for a platform (default linux/amd64). Throws listing what is available. */
export function choosePlatform(index: ImageIndex, want: PlatformSpec = {}): Descriptor {
  const os = want.os ?? 'linux';
  const arch = normArch(want.architecture ?? 'amd64');
  const candidates = index.manifests.filter((d) => d.platform && platformMatches(d.platform, { os, architecture: arch }));
  const wantVariant = normVariant(arch, want.variant);
  const exact = candidates.find((d) => normVariant(arch, d.platform!.variant) === wantVariant);
  if (exact) return exact;
  // Without an explicit variant any variant of the architecture will do (e.g. arm/v6 on an arm request).
  if (!want.variant && candidates.length > 0) return candidates[0]!;
  const available = index.manifests.map((d) => describePlatform(d.platform)).join(', ');
  throw new ManifestError(
    `no image for platform ${os}/${arch}${want.variant ? `/${want.variant}` : ''} in the index; available: ${available || 'none'}`,
  );
}

/** Compression of a blob judged by its first bytes (at least 4 are needed). */
export { detectCompression } from '../store/hashing.ts';
