import type { Store } from '../store/store.ts';
import { readImageConfig, readImageManifest, resolveImage, type Puller, type PullPolicy } from '../image/local-images.ts';
import { baseName } from '../image/reference.ts';
import { describePlatform, platformMatches, type PlatformSpec } from '../image/manifest.ts';
import type { ContainerUserns } from '../sys/userns.ts';
import type { RunSettings } from './run.ts';
import { emptyImageConfig, type Builder, type BuilderState } from './builder.ts';

export type { PullPolicy };

export interface FromOptions {
  name?: string;
  pull?: PullPolicy;
  /** How images that are not local are fetched; without it only local images are found. */
  puller?: Puller;
  isolation?: 'oci' | 'chroot';
  userns?: ContainerUserns;
  /** --platform/--arch/--os/--variant: the image for that platform (scratch: a config saying it). */
  platform?: PlatformSpec;
  /** Run settings kept for the container's runs (from's run options). */
  run?: RunSettings;
  format?: 'oci' | 'docker';
  /** Where a warning goes (an image that is not of the platform asked for). */
  warn?: (line: string) => void;
}

/** Podman's and Buildah's warning for a single-platform image of another platform than the one asked for. */
export function platformMismatch(cfg: PlatformSpec, want: PlatformSpec | undefined): string | null {
  if (!want || platformMatches(cfg, want)) return null;
  return `image platform (${describePlatform(cfg)}) does not match the expected platform (${describePlatform({ ...cfg, ...want })})`;
}

function kept(opts: FromOptions): Partial<BuilderState> {
  return { ...(opts.run && Object.keys(opts.run).length > 0 && { run: opts.run }), ...(opts.format && { format: opts.format }) };
}

/** `buildah from`: a working container on top of an image (or of nothing, for scratch). */
export async function fromImage(store: Store, ref: string, opts: FromOptions = {}): Promise<Builder> {
  let state: BuilderState;
  let imageId: string | null = null;
  let imageName: string | null = null;
  let nameBase: string;
  if (ref === 'scratch') {
    nameBase = 'working-container';
    state = {
      fromImage: '', fromImageId: '', fromImageDigest: '',
      config: { image: emptyImageConfig(opts.platform), annotations: {} },
      runMountTargets: [], isolation: opts.isolation ?? 'oci', ...(opts.userns && { userns: opts.userns }), ...kept(opts),
    };
  } else {
    const img = await resolveImage(store, ref, opts.pull, opts.puller, opts.platform);
    const cfg = await readImageConfig(store, img);
    const mismatch = platformMismatch(cfg, opts.platform);
    if (mismatch) opts.warn?.(mismatch);
    const manifest = await readImageManifest(store, img);
    imageId = img.id;
    imageName = img.names[0] ?? null;
    nameBase = `${imageName ? baseName(imageName) : img.id.slice(0, 12)}-working-container`;
    cfg.config ??= {};
    cfg.history ??= [];
    state = {
      fromImage: imageName ?? img.id, fromImageId: img.id, fromImageDigest: img.manifestDigest,
      config: { image: cfg, annotations: { ...(manifest.annotations ?? {}) } },
      runMountTargets: [], isolation: opts.isolation ?? 'oci', ...(opts.userns && { userns: opts.userns }), ...kept(opts),
    };
  }
  const container = await store.createContainer({
    ...(opts.name ? { name: opts.name } : { nameBase }),
    kind: 'builder', imageId, imageName, data: JSON.stringify(state),
  });
  return { container, state };
}
