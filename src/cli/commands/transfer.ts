import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, open, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { ExitError, openStore, print, type GlobalOptions } from '../context.ts';
import { Progress } from '../progress.ts';
import type { Store } from '../../store/store.ts';
import { copyImage, type CopyOptions } from '../../image/copy.ts';
import { openDestination, openSource, parseImageName } from '../../image/transports/index.ts';
import type { ImageDestination, ImageSource } from '../../image/transport.ts';
import { localImageName, parseReference } from '../../image/reference.ts';
import type { ImageConfig } from '../../image/types.ts';
import type { PlatformSpec } from '../../image/manifest.ts';
import { platformFlags } from '../platform.ts';
// Registers the docker:// transport.
import '../../image/transports/docker.ts';
import { applyRegistryFlags, pullCandidates, repositoryTags, withTransport } from './registry.ts';
import { imageEvent } from '../../containers/events.ts';

type Opts = Record<string, unknown>;

// The store side is loaded only by commands that use a store: registry and directory copies
// start without it (and without SQLite).
const storage = async (): Promise<typeof import('../../image/transports/containers-storage.ts') & typeof import('../../image/local-images.ts')> => ({
  ...(await import('../../image/transports/containers-storage.ts')),
  ...(await import('../../image/local-images.ts')),
});

export interface MoveOptions {
  quiet?: boolean;
  format?: 'oci' | 'docker';
  platform?: PlatformSpec;
  /** Every image of an index and the index itself. */
  all?: boolean;
  compression?: 'gzip' | 'zstd';
  compressionLevel?: number;
  preserveDigests?: boolean;
  /** --remove-signatures, --sign-by, --sign-passphrase-file, --sign-identity */
  signing?: Pick<CopyOptions, 'removeSignatures' | 'signBy' | 'signPassphraseFile' | 'signIdentity'>;
}

/** The signing flags of push, commit, skopeo copy and sync. */
export function signingFlags(o: Opts): NonNullable<MoveOptions['signing']> {
  const s = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
  const signBy = s(o.signBy);
  const passphrase = s(o.signPassphraseFile);
  const identity = s(o.signIdentity);
  if (signBy === '') throw new Error('--sign-by: a key fingerprint is needed');
  if (signBy === undefined && (passphrase !== undefined || identity !== undefined)) throw new Error(`${passphrase !== undefined ? '--sign-passphrase-file' : '--sign-identity'} needs --sign-by`);
  if (identity !== undefined) {
    // As skopeo: the identity must be fully specified, so the signature cannot be read two ways.
    const r = parseReference(identity);
    if (!r.domain || (!r.tag && !r.digest)) throw new Error(`--sign-identity ${JSON.stringify(identity)}: must be a fully specified docker reference (registry/repository:tag or @digest)`);
  }
  return {
    ...(o.removeSignatures === true && { removeSignatures: true }),
    ...(signBy !== undefined && { signBy }),
    ...(passphrase !== undefined && { signPassphraseFile: passphrase }),
    ...(identity !== undefined && { signIdentity: identity }),
  };
}

function copyOpts(o: MoveOptions, progress: Progress): CopyOptions {
  return {
    ...o.signing,
    ...(o.format && { format: o.format }),
    ...(o.platform && { platform: o.platform }),
    ...(o.all && { all: true }),
    ...(o.compression && { destCompression: o.compression }),
    ...(o.compressionLevel !== undefined && { compressionLevel: o.compressionLevel }),
    ...(o.preserveDigests && { preserveDigests: true }),
    progress: progress.callbacks(),
  };
}

/** Opens either end of a copy: containers-storage names barge's own store. */
async function openEnd(store: () => Promise<Store>, name: string, dir: 'src' | 'dst'): Promise<ImageSource | ImageDestination> {
  const n = parseImageName(name);
  if (n.transport === 'containers-storage') {
    const { StorageDestination, StorageSource, getImage } = await storage();
    const s = await store();
    const ref = n.spec.replace(/^\[[^\]]*\]/, '');
    return dir === 'src' ? new StorageSource(s, getImage(s, ref).id) : new StorageDestination(s, ref ? [localImageName(ref)] : []);
  }
  return dir === 'src' ? openSource(n) : openDestination(n);
}

export async function runCopy(src: ImageSource, dst: ImageDestination, o: MoveOptions): Promise<string> {
  const progress = new Progress(!!o.quiet);
  try {
    const res = await copyImage(src, dst, copyOpts(o, progress));
    progress.done();
    return res.manifestDigest;
  } finally {
    await src.close();
    await dst.close();
  }
}

/** Copies a stored image to a transport destination (push, save, commit to TRANSPORT:DEST). */
export async function pushImage(store: Store, ref: string, dest: string, o: MoveOptions = {}): Promise<string> {
  const { StorageSource, getImage } = await storage();
  const img = getImage(store, ref);
  const dst = (await openEnd(async () => store, dest, 'dst')) as ImageDestination;
  return runCopy(new StorageSource(store, img.id), dst, o);
}

/** Copies an image from a transport into the store, naming it; returns the image id. */
export async function pullImage(store: Store, src: string, names: string[], o: MoveOptions = {}): Promise<string> {
  const source = (await openEnd(async () => store, src, 'src')) as ImageSource;
  const { StorageDestination } = await storage();
  const dst = new StorageDestination(store, names);
  // Signatures are checked as policy.json asks, but local storage keeps none.
  await runCopy(source, dst, { ...o, signing: { ...o.signing, removeSignatures: true } });
  return dst.imageId!;
}

export function formatFlag(f: unknown): 'oci' | 'docker' | undefined {
  if (f === 'oci') return 'oci';
  if (f === 'v2s2' || f === 'docker') return 'docker';
  if (f === undefined) return undefined;
  throw new Error(`unsupported manifest format "${String(f)}" (oci, v2s2)`);
}

/** --compression-format (Podman/Buildah) or --dest-compress-format (Skopeo). */
function compressionFlag(o: Opts): 'gzip' | 'zstd' | undefined {
  const v = o.compressionFormat ?? o.destCompressFormat;
  if (v === undefined) return o.destCompress ? 'gzip' : undefined;
  if (v === 'gzip' || v === 'zstd') return v;
  throw new Error(`unsupported compression format ${JSON.stringify(String(v))}: use gzip or zstd`);
}

/**
 * --compression-level for the compression the layers get (gzip when none is asked for, as
 * containers/image defaults): gzip takes 0-9; zstd any level, held to zstd's 1-22 as Buildah's
 * encoder maps levels onto its own few.
 */
function compressionLevelFlag(o: Opts, compression: 'gzip' | 'zstd'): number | undefined {
  if (o.compressionLevel === undefined) return undefined;
  const s = String(o.compressionLevel);
  const n = Number(s);
  if (!/^-?\d+$/.test(s)) throw new ExitError(`invalid argument "${s}" for "--compression-level" flag: strconv.ParseInt: parsing "${s}": invalid syntax`, 125);
  if (compression === 'zstd') return Math.min(22, Math.max(1, n));
  if (n < 0 || n > 9) throw new ExitError(`gzip: invalid compression level: ${n}`, 125);
  return n;
}

/** Skopeo's --all and --multi-arch=all|system. */
function allFlag(o: Opts): boolean {
  const m = o.multiArch;
  if (m !== undefined && m !== 'system' && m !== 'all') throw new Error(`unsupported --multi-arch ${JSON.stringify(String(m))}: use system or all`);
  return !!o.all || m === 'all';
}

/** The flags skopeo copy and sync share, checked before anything is opened. */
function imageCopyFlags(o: Opts): MoveOptions {
  const format = formatFlag(o.format);
  const compression = compressionFlag(o);
  const platform = platformFlags(o);
  return {
    quiet: !!o.quiet, all: allFlag(o), ...(o.preserveDigests === true && { preserveDigests: true }), signing: signingFlags(o),
    ...(format && { format }), ...(compression && { compression }), ...(platform && { platform }),
  };
}

export async function pullCmd(g: GlobalOptions, args: string[], o: Opts): Promise<void> {
  const store = await openStore(g);
  const platform = platformFlags(o);
  applyRegistryFlags(o, 'pull');
  const moveOpts = { quiet: !!o.quiet, ...(platform && { platform }) };
  if (o.allTags) {
    const { repository, tags } = await repositoryTags(args[0]!, o);
    for (const tag of tags) print(await pullByName(store, `docker://${repository}:${tag}`, moveOpts));
    return;
  }
  // Buildah's pull takes Podman's run's policy names, with the same error for others.
  const { parsePullPolicy, resolveImage } = await storage();
  const policy = typeof o.policy === 'string' ? parsePullPolicy(o.policy) : 'always';
  if (policy !== 'always' && policy !== 'newer') {
    // Buildah's pull policies: a local image (of the platform asked for) is the answer.
    const img = await resolveImage(store, args[0]!, policy, (ref, want) => pullByName(store, ref, { ...moveOpts, ...(want && { platform: want }) }), platform);
    print(img.id);
    return;
  }
  print(await pullByName(store, args[0]!, moveOpts));
}

/**
 * Pulls SRC into the store and returns the image id. Registry names without a transport resolve
 * through registries.conf, and each candidate is tried in turn, as Podman does.
 */
export async function pullByName(store: Store, src: string, moveOpts: MoveOptions = {}): Promise<string> {
  const id = await pullFromCandidates(store, src, moveOpts);
  imageEvent(store, 'pull', { name: src });
  return id;
}

async function pullFromCandidates(store: Store, src: string, moveOpts: MoveOptions): Promise<string> {
  const candidates = pullCandidates(src);
  if (!candidates) {
    const n = parseImageName(src);
    return pullImage(store, src, await defaultNames(n.transport, n.spec), moveOpts);
  }
  const errors: string[] = [];
  for (const c of candidates) {
    if (!moveOpts.quiet) process.stderr.write(`Trying to pull ${c.name}...\n`);
    try {
      return await pullImage(store, c.ref, [c.name], moveOpts);
    } catch (e) {
      if (candidates.length === 1) throw e;
      errors.push(`${c.name}: ${(e as Error).message}`);
    }
  }
  throw new Error(`${src}: pulling from all candidate registries failed:\n  ${errors.join('\n  ')}`);
}

/** The name Podman gives an image pulled from a local transport. */
async function defaultNames(transport: string, spec: string): Promise<string[]> {
  const { archiveImageNames } = await import('../../image/archive-names.ts');
  const names = await archiveImageNames(transport, spec);
  if (names.length) return names.map(localImageName);
  if (transport === 'oci' || transport === 'dir' || transport === 'oci-archive' || transport === 'docker-archive') {
    const [path, tag] = splitPathTag(spec);
    const base = basename(path).toLowerCase().replace(/\.(tar|tgz|tar\.gz)$/, '').replace(/[^a-z0-9._-]/g, '') || 'image';
    return [localImageName(`${base}:${tag ?? 'latest'}`)];
  }
  return [];
}

function splitPathTag(spec: string): [string, string | undefined] {
  const i = spec.lastIndexOf(':');
  if (i > spec.lastIndexOf('/') && i > 0) return [spec.slice(0, i), spec.slice(i + 1)];
  return [spec, undefined];
}

export async function pushCmd(g: GlobalOptions, args: string[], o: Opts): Promise<void> {
  const store = await openStore(g);
  const [ref, destArg] = args;
  const dest = withTransport(destArg ?? ref!);
  const { findImage } = await storage();
  const { isListRecord } = await import('../../store/store.ts');
  const local = findImage(store, ref!);
  if (local && isListRecord(local) && (o.all || o.rm)) {
    // A manifest list with --all or --rm is pushed as `manifest push` pushes it.
    return (await import('./manifest.ts')).pushCmd(g, [ref!, dest], o);
  }
  applyRegistryFlags(o, 'push');
  const format = formatFlag(o.format);
  const compression = compressionFlag(o);
  const level = compressionLevelFlag(o, compression ?? 'gzip');
  const signing = signingFlags(o);
  const digest = await pushImage(store, ref!, dest, {
    quiet: !!o.quiet, signing, ...(format && { format }), ...(compression && { compression }), ...(level !== undefined && { compressionLevel: level }),
  });
  imageEvent(store, 'push', { name: destArg ?? ref! });
  if (typeof o.digestfile === 'string') await writeFile(o.digestfile, digest);
}

export async function skopeoCopyCmd(g: GlobalOptions, args: string[], o: Opts): Promise<void> {
  const [srcName, dstName] = args as [string, string];
  applyRegistryFlags(o, 'copy');
  // Flags first: a bad one must not leave a half-opened destination behind.
  const moveOpts = imageCopyFlags(o);
  const store = (): Promise<Store> => openStore(g);
  const src = (await openEnd(store, srcName, 'src')) as ImageSource;
  let dst: ImageDestination;
  try {
    dst = (await openEnd(store, dstName, 'dst')) as ImageDestination;
  } catch (e) {
    await src.close();
    throw e;
  }
  const digest = await runCopy(src, dst, moveOpts);
  if (typeof o.digestfile === 'string') await writeFile(o.digestfile, digest);
}

/** skopeo sync --src docker|dir|yaml --dest docker|dir SOURCE DESTINATION */
export async function syncCmd(_g: GlobalOptions, args: string[], o: Opts): Promise<void> {
  const [source, destination] = args as [string, string];
  const srcKind = o.src;
  const destKind = o.dest;
  if (srcKind !== 'docker' && srcKind !== 'dir' && srcKind !== 'yaml') throw new Error(`--src must be docker, dir or yaml, not ${JSON.stringify(srcKind ?? '')}`);
  if (destKind !== 'docker' && destKind !== 'dir') throw new Error(`--dest must be docker or dir, not ${JSON.stringify(destKind ?? '')}`);
  if (srcKind === 'dir' && destKind === 'dir') throw new Error('sync from "dir" to "dir" is not supported');
  const { dockerOptions } = await import('./registry.ts');
  const { DockerSource, DockerDestination, parseDockerSpec } = await import('../../image/transports/docker.ts');
  const { dirSyncImages, dockerSyncImages, syncDestination, yamlSyncImages } = await import('../../image/sync.ts');
  const srcOpts = dockerOptions(o, 'src');
  const destOpts = dockerOptions(o, 'dest');
  const moveOpts = imageCopyFlags(o);
  const groups =
    srcKind === 'docker' ? [await dockerSyncImages(source, srcOpts)] : srcKind === 'dir' ? [await dirSyncImages(source)] : await yamlSyncImages(source, srcOpts);
  const images = groups.flatMap((gr) => gr.images);
  const scoped = !!o.scoped;
  const failures: string[] = [];
  let synced = 0;
  for (const [i, im] of images.entries()) {
    const to = syncDestination(destKind, destination, im.suffix, scoped);
    process.stderr.write(`Copying image ref ${i + 1}/${images.length} from "${im.source}" to "${to}"\n`);
    if (o.dryRun) {
      synced++;
      continue;
    }
    try {
      const src = im.source.startsWith('docker:') ? await DockerSource.open(parseDockerSpec(im.source.slice('docker:'.length)), im.sourceOptions ?? srcOpts) : await openSource(im.source);
      let dst: ImageDestination;
      try {
        dst = to.startsWith('docker:') ? await DockerDestination.open(parseDockerSpec(to.slice('docker:'.length)), destOpts) : await openDestination(to);
      } catch (e) {
        await src.close();
        throw e;
      }
      await runCopy(src, dst, moveOpts);
      synced++;
    } catch (e) {
      if (!o.keepGoing) throw e;
      failures.push(`${im.source}: ${(e as Error).message}`);
      process.stderr.write(`Error copying ${im.source}: ${(e as Error).message}\n`);
    }
  }
  process.stderr.write(`${o.dryRun ? 'Would have synced' : 'Synced'} ${synced} images from ${groups.length} sources\n`);
  if (failures.length) throw new Error(`${failures.length} of ${images.length} images failed to sync:\n  ${failures.join('\n  ')}`);
}

export async function loadCmd(g: GlobalOptions, _args: string[], o: Opts): Promise<void> {
  const store = await openStore(g);
  let file = typeof o.input === 'string' ? o.input : undefined;
  let tmp: string | undefined;
  if (!file || file === '-') {
    if (process.stdin.isTTY) throw new Error('no input: use -i FILE or pipe an archive to standard input');
    tmp = await mkdtemp(join(tmpdir(), 'barge-load-'));
    file = join(tmp, 'input.tar');
    await pipeline(process.stdin, createWriteStream(file));
  }
  try {
    // podman load also takes an OCI layout directory; without this it failed with a bare EISDIR.
    const { archiveContents, layoutImages } = await import('../../image/archive-names.ts');
    const { transport, images } = (await stat(file)).isDirectory() ? { transport: 'oci', images: await layoutImages(file) } : await archiveContents(file);
    for (const im of images) {
      const names = im.names.map(localImageName);
      const id = await pullImage(store, `${transport}:${file}${im.selector}`, names, { quiet: !!o.quiet });
      print(names.length ? names.map((n) => `Loaded image: ${n}`).join('\n') : `Loaded image: sha256:${id}`);
    }
    imageEvent(store, 'loadfromarchive', { name: file });
  } finally {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  }
}

export async function saveCmd(g: GlobalOptions, args: string[], o: Opts): Promise<void> {
  const store = await openStore(g);
  const format = typeof o.format === 'string' ? o.format : 'docker-archive';
  // Only a docker archive can hold several images (podman save -m); elsewhere one would overwrite the other.
  if (args.length > 1 && format !== 'docker-archive') throw new Error(`--format ${format} holds one image; save the images one at a time`);
  let out = typeof o.output === 'string' ? o.output : undefined;
  let tmp: string | undefined;
  if (!out) {
    if (process.stdout.isTTY) throw new Error('refusing to write an archive to a terminal: use -o FILE');
    tmp = await mkdtemp(join(tmpdir(), 'barge-save-'));
    out = join(tmp, 'out.tar');
  }
  try {
    const { getImage } = await storage();
    const saved = args.map((ref) => getImage(store, ref).id);
    if (args.length > 1) {
      await saveMulti(store, args, out, o.quiet !== false);
      args = [];
    }
    for (const ref of args) {
      const img = getImage(store, ref);
      const name = img.names.find((n) => n === localImageName(ref)) ?? img.names[0];
      const transport = { 'docker-archive': 'docker-archive', 'oci-archive': 'oci-archive', 'oci-dir': 'oci', 'docker-dir': 'dir' }[format];
      if (!transport) throw new Error(`unsupported format "${format}"`);
      const tagPart = transport === 'dir' || !name ? '' : `:${name}`;
      await pushImage(store, img.id, `${transport}:${out}${tagPart}`, {
        quiet: o.quiet !== false, ...(transport === 'docker-archive' || transport === 'dir' ? { format: 'docker' as const } : { format: 'oci' as const }),
      });
    }
    for (const id of saved) imageEvent(store, 'save', { id, name: out });
    if (tmp) await pipeline(createReadStream(out), process.stdout);
  } finally {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  }
}

async function saveMulti(store: Store, refs: string[], out: string, quiet: boolean): Promise<void> {
  const { DockerArchiveDestination } = await import('../../image/transports/docker-archive.ts');
  const { StorageSource, getImage } = await storage();
  const dst = await DockerArchiveDestination.openMulti(`docker-archive:${out}`, out);
  try {
    for (const ref of refs) {
      const img = getImage(store, ref);
      dst.setRepoTag(img.names.find((n) => n === localImageName(ref)) ?? img.names[0]);
      const progress = new Progress(quiet);
      await copyImage(new StorageSource(store, img.id), dst, { ...copyOpts({ format: 'docker' }, progress) });
      progress.done();
    }
    await dst.finish();
  } finally {
    await dst.close();
  }
}

export async function importCmd(g: GlobalOptions, args: string[], o: Opts): Promise<void> {
  const store = await openStore(g);
  const [file, name] = args;
  // Opened up front: a stream that fails to open emits 'error' before the store listens,
  // which crashed the process and left its staging directory behind.
  const stream = file === '-' ? process.stdin : (await open(file!, 'r')).createReadStream();
  const layer = await store.putLayer({ stream, parent: null });
  const { emptyImageConfig } = await import('../../primitives/builder.ts');
  const image: ImageConfig = emptyImageConfig();
  const created = new Date().toISOString();
  image.created = created;
  image.rootfs.diff_ids = [layer.diffId];
  image.history = [{ created, created_by: `/bin/sh -c #(nop) ADD file:${layer.diffId.slice(7)} in /`, ...(typeof o.message === 'string' && { comment: o.message }) }];
  const { applyChanges } = await import('../../primitives/config.ts');
  const changed = applyChanges(image, (o.change as string[] | undefined) ?? []);
  const { writeImage } = await import('../../primitives/commit.ts');
  const img = await writeImage(store, changed, [layer], { format: 'oci', annotations: {}, names: name ? [localImageName(name)] : [], created });
  if (name) imageEvent(store, 'tag', { id: img.id, name });
  if (!o.quiet) {
    const { storedImageReport } = await import('../progress.ts');
    process.stderr.write(storedImageReport([layer.blobDigest ?? layer.diffId], `sha256:${img.id}`));
  }
  print(`sha256:${img.id}`);
}
