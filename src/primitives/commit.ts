import { existsSync, type Stats } from 'node:fs';
import { lstat, readdir, rm, utimes } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { ImageRecord, LayerRecord, Store } from '../store/store.ts';
import { diffTar, removeXattrs, upperXattrs, writeTar } from '../store/tar-diff.ts';
import type { ImageConfig, ManifestFormat } from '../image/types.ts';
import { buildManifest } from '../image/local-images.ts';
import { dockerView, goJSON, ociView } from './config.ts';
import type { Builder } from './builder.ts';

export interface CommitOptions {
  format: ManifestFormat;
  names: string[];
  squash?: boolean;
  /** Seconds since the epoch: clamps file times and the created dates, for reproducible images. */
  timestamp?: number;
  rm?: boolean;
  /** No history at all in the image (Buildah's --omit-history). */
  omitHistory?: boolean;
}

export interface CommitResult {
  imageId: string;
  manifestDigest: string;
  /** The digest of the layer the commit made (an existing layer's when the changes were already stored). */
  layerDigest: string;
}

/** `buildah commit`: the container's changes become one new layer on its image's layers. */
export async function commitBuilder(store: Store, b: Builder, opts: CommitOptions): Promise<CommitResult> {
  return store.withContainerLock(b.container, async () => {
    const exclude = await untouchedMountTargets(store.upperDir(b.container), b.state.runMountTargets);
    let layer: LayerRecord;
    if (opts.squash) {
      const root = await store.mountContainer(b.container);
      // The merged view shows the runtime's mount targets too; they are no more part of the image here.
      layer = await store.putLayer({ stream: diffTar({ dir: root, mode: 'plain', exclude, ...withTimestamp(opts.timestamp) }), parent: null });
    } else if (store.driver === 'overlay' && opts.rm && opts.timestamp === undefined && !existsSync(store.volatileMarker(b.container))) {
      // Not after a volatile mount (run --rm): it skipped the sync that makes an upper dir safe to keep as a layer.
      layer = await adoptUpper(store, b, exclude);
    } else if (store.driver === 'overlay') {
      const tar = { dir: store.upperDir(b.container), mode: 'overlay', userxattr: store.userxattr, exclude, ...withTimestamp(opts.timestamp) } as const;
      layer = await store.putLayerFromTar((sink) => writeTar(tar, sink), b.container.topLayer);
    } else {
      // vfs keeps a full copy per container: the layer is its difference from the image's tree.
      const root = await store.mountContainer(b.container);
      const against = b.container.topLayer ? store.layerDir(b.container.topLayer) : join(store.root, 'empty');
      const stream = diffTar({ dir: root, mode: 'plain', against, exclude, ...withTimestamp(opts.timestamp) });
      layer = await store.putLayer({ stream, parent: b.container.topLayer });
    }
    try {
      return await registerCommit(store, b, opts, layer);
    } catch (e) {
      // A container whose upper dir became the layer cannot be used any more; it was going anyway.
      if (opts.rm && !existsSync(store.upperDir(b.container))) await store.deleteContainer(b.container);
      throw e;
    }
  });
}

/** The image of a commit whose layer is in the store. */
async function registerCommit(store: Store, b: Builder, opts: CommitOptions, layer: LayerRecord): Promise<CommitResult> {
  const chain = store.layerChain(layer.id);
  const created = opts.timestamp !== undefined ? new Date(opts.timestamp * 1000).toISOString() : new Date().toISOString();
  const image = structuredClone(b.state.config.image);
  image.created = created;
  image.rootfs = { type: 'layers', diff_ids: chain.map((l) => l.diffId) };
  // Buildah's --omit-history leaves the image without any history, its base's included.
  const history = opts.squash || opts.omitHistory ? [] : [...(image.history ?? [])];
  if (!opts.omitHistory) {
    history.push({
      created,
      created_by: b.state.config.createdBy ?? '/bin/sh',
      ...(image.author && { author: image.author }),
      ...(b.state.config.historyComment !== undefined && { comment: b.state.config.historyComment }),
    });
  }
  image.history = history;
  const img = await writeImage(store, image, chain, { format: opts.format, annotations: b.state.config.annotations, names: opts.names, created });
  if (opts.rm) await store.deleteContainer(b.container);
  return { imageId: img.id, manifestDigest: img.manifestDigest, layerDigest: layer.blobDigest ?? layer.diffId };
}

/**
 * Registers an image: `image` in the format's view as its config, over layers already in the
 * store. Commits and config-only build steps both end here.
 */
export async function writeImage(
  store: Store,
  image: ImageConfig,
  chain: LayerRecord[],
  o: { format: ManifestFormat; annotations: Record<string, string>; names: string[]; created: string },
): Promise<ImageRecord> {
  const configBytes = Buffer.from(goJSON(o.format === 'docker' ? dockerView(image) : ociView(image)));
  const manifest = buildManifest(o.format, configBytes, chain, o.format === 'oci' ? o.annotations : {});
  return store.createImage({
    config: configBytes, manifest: Buffer.from(JSON.stringify(manifest)), manifestMediaType: manifest.mediaType!,
    layers: chain.map((l) => l.id), names: o.names, created: o.created,
  });
}

function withTimestamp(t: number | undefined): { timestamp?: number } {
  return t === undefined ? {} : { timestamp: t };
}

/**
 * Commit of a container that is removed afterwards: its upper dir becomes the layer itself instead
 * of being tarred and unpacked again, so only the tar's digest and blob are computed. Before the
 * move the upper dir is made to hold exactly what the tar says: the kernel's overlay bookkeeping
 * (origin, impure …) and other xattrs a tar does not carry are removed, and so are the paths the
 * tar leaves out (sockets, untouched mount targets), their directories keeping the mtimes the tar
 * recorded.
 */
async function adoptUpper(store: Store, b: Builder, exclude: ReadonlySet<string>): Promise<LayerRecord> {
  // Unmounted first: an upper dir must not change under a mounted overlay.
  await store.unmountContainer(b.container);
  const upper = store.upperDir(b.container);
  const xattrs = await upperXattrs(upper, store.userxattr);
  const dropped = [...exclude];
  const tar = { dir: upper, mode: 'overlay', userxattr: store.userxattr, exclude, opaqueDirs: xattrs.opaque, onOmitted: (rel: string) => dropped.push(rel) } as const;
  const prepare = async (): Promise<void> => {
    await removeXattrs(xattrs.others);
    const parents = new Map<string, Stats>();
    for (const rel of dropped) {
      const parent = dirname(rel);
      if (!parents.has(parent)) parents.set(parent, await lstat(join(upper, parent)));
    }
    for (const rel of dropped) await rm(join(upper, rel), { recursive: true, force: true });
    for (const [parent, st] of parents) {
      if (existsSync(join(upper, parent))) await utimes(join(upper, parent), st.atime, st.mtime);
    }
  };
  return store.putLayerFromTar((sink) => writeTar(tar, sink), b.container.topLayer, { dir: upper, prepare });
}

/**
 * Mount targets the runtime created (e.g. /etc/hosts in an image without one) are left out of
 * the layer when the container never put anything in them.
 */
async function untouchedMountTargets(upper: string, targets: string[]): Promise<Set<string>> {
  const out = new Set<string>();
  // Deepest first: a parent the runtime created for a nested target is untouched when all it
  // holds is untouched targets.
  const rels = targets.map((t) => t.replace(/^\/+/, '')).filter((r) => r !== '');
  rels.sort((a, b) => b.split('/').length - a.split('/').length);
  for (const rel of rels) {
    const st = await lstat(join(upper, rel)).catch(() => null);
    if (!st) continue;
    if (st.isFile() && st.size === 0) out.add(rel);
    else if (st.isDirectory() && (await readdir(join(upper, rel))).every((c) => out.has(`${rel}/${c}`))) out.add(rel);
  }
  return out;
}

