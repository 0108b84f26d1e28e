import type { Store } from '../store/store.ts';
import { StoreError } from '../store/store.ts';
import { findImage, readImageConfig, readImageManifest } from '../image/local-images.ts';
import { baseName } from '../image/reference.ts';
import { emptyImageConfig, type Builder, type BuilderState } from './builder.ts';

export type PullPolicy = 'always' | 'missing' | 'never' | 'newer';

export interface FromOptions {
  name?: string;
  pull?: PullPolicy;
  isolation?: 'oci' | 'chroot';
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
      config: { image: emptyImageConfig(), annotations: {} },
      runMountTargets: [], isolation: opts.isolation ?? 'oci',
    };
  } else {
    const img = findImage(store, ref);
    if (!img) {
      const hint = opts.pull === 'never' ? ' and the pull policy is "never"' : '; pulling from registries is not available yet';
      throw new StoreError(`${ref}: image not known${hint}`, 'notfound');
    }
    const cfg = await readImageConfig(store, img);
    const manifest = await readImageManifest(store, img);
    imageId = img.id;
    imageName = img.names[0] ?? null;
    nameBase = `${imageName ? baseName(imageName) : img.id.slice(0, 12)}-working-container`;
    cfg.config ??= {};
    cfg.history ??= [];
    state = {
      fromImage: imageName ?? img.id, fromImageId: img.id, fromImageDigest: img.manifestDigest,
      config: { image: cfg, annotations: { ...(manifest.annotations ?? {}) } },
      runMountTargets: [], isolation: opts.isolation ?? 'oci',
    };
  }
  const container = await store.createContainer({
    ...(opts.name ? { name: opts.name } : { nameBase }),
    kind: 'builder', imageId, imageName, data: JSON.stringify(state),
  });
  return { container, state };
}
