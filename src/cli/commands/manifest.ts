// Buildah's `manifest` commands: manifest lists (OCI indexes, Docker manifest lists) kept in the
// local store, edited there, and pushed with the images they name.
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ExitError, openStore, print, type GlobalOptions } from '../context.ts';
import type { ImageRecord, Store } from '../../store/store.ts';
import { isListRecord, StoreError } from '../../store/store.ts';
import { findImage } from '../../image/local-images.ts';
import {
  createList,
  editEntry,
  editList,
  getList,
  ListSource,
  localInstances,
  readList,
  remoteInstances,
  requireInstance,
  serializeList,
  withInstances,
  type EntryEdits,
  type Instance,
} from '../../image/manifest-list.ts';
import { indexMediaTypeFor } from '../../image/manifest.ts';
import type { Descriptor } from '../../image/types.ts';
import { localImageName, parseReference, ReferenceError } from '../../image/reference.ts';
import { formatRef } from '../../image/transport.ts';
import { getTransport, openDestination, openSource, parseImageName } from '../../image/transports/index.ts';
import { digestOf } from '../../image/digest.ts';
import { goJSON } from '../../image/gojson.ts';
import { hostArch } from '../../primitives/builder.ts';
import { setKeyValues } from '../../primitives/config.ts';
import { applyRegistryFlags, hasTransport, withTransport } from './registry.ts';
import { formatFlag, runCopy } from './transfer.ts';

type Opts = Record<string, unknown>;
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** The instance chosen from a list added without --all: this machine's, as Buildah chooses. */
const HOST_PLATFORM = { os: 'linux', architecture: hostArch() };

/** Values of a repeatable flag that Buildah also splits at commas (--features, --os-features). */
function commaList(v: unknown): string[] | undefined {
  const all = ((v as string[] | undefined) ?? []).flatMap((x) => x.split(',')).filter((x) => x !== '');
  return all.length ? all : undefined;
}

function entryEdits(o: Opts): EntryEdits {
  const features = commaList(o.features);
  const osFeatures = commaList(o.osFeatures);
  const annotations = o.annotation ? setKeyValues({}, o.annotation as string[]) : undefined;
  return {
    ...(str(o.arch) !== undefined && { arch: str(o.arch) }),
    ...(str(o.os) !== undefined && { os: str(o.os) }),
    ...(str(o.variant) !== undefined && { variant: str(o.variant) }),
    ...(str(o.osVersion) !== undefined && { osVersion: str(o.osVersion) }),
    ...(features && { features }),
    ...(osFeatures && { osFeatures }),
    ...(annotations && { annotations }),
  };
}

/**
 * A transport reference as it is recorded for push: a local path made absolute, so that a push
 * from another directory reads the same image.
 */
function recordedReference(name: string): string {
  const n = parseImageName(name);
  const t = getTransport(n.transport);
  if (!t) return name;
  const parsed = t.parse(n.spec);
  return formatRef({ ...parsed, path: resolve(parsed.path) });
}

/** Whether a name without a transport names its registry (so that it can be read from there). */
function hasRegistry(name: string): boolean {
  try {
    return parseReference(name).domain !== '';
  } catch (e) {
    if (e instanceof ReferenceError) return false;
    throw e;
  }
}

/**
 * The images IMAGE names: a local image (or list) first, as Buildah looks; then, for a transport
 * reference or a name with a registry, the image there. A short name that is not local is not
 * looked for in registries: that would be a guess among search registries.
 */
async function instancesOf(store: Store, name: string, all: boolean): Promise<Instance[]> {
  const localName = name.startsWith('containers-storage:') ? name.slice('containers-storage:'.length) : hasTransport(name) ? undefined : name;
  if (localName !== undefined) {
    const img = findImage(store, localName);
    if (img) return localInstances(store, img, all, HOST_PLATFORM);
    if (name !== localName || !hasRegistry(name)) throw new StoreError(`${name}: image not known`, 'notfound');
  }
  const reference = recordedReference(withTransport(name));
  const src = await openSource(reference);
  try {
    return await remoteInstances(src, reference, all, HOST_PLATFORM);
  } catch (e) {
    throw new Error(`reading image "${reference}": ${(e as Error).message}`, { cause: e });
  } finally {
    await src.close();
  }
}

async function instancesOfAll(store: Store, names: readonly string[], all: boolean): Promise<Instance[]> {
  const out: Instance[] = [];
  for (const n of names) out.push(...(await instancesOf(store, n, all)));
  return out;
}

/** Adds instances to a stored list (one rewrite for all of them); returns the list. */
function addInstances(store: Store, list: ImageRecord, added: Instance[], edits: EntryEdits): Promise<ImageRecord> {
  return editList(store, list, (index, sources) => withInstances(index.manifests, sources, added, edits));
}

/** build --manifest, commit --manifest: the image joins LIST, which is made when there is none. */
export async function addImageToList(store: Store, listName: string, imageId: string): Promise<void> {
  const img = store.getImage(imageId);
  if (!img) throw new StoreError(`${imageId}: image not known`, 'notfound');
  const added = await localInstances(store, img, false, HOST_PLATFORM);
  const fullName = localImageName(listName);
  const existing = findImage(store, fullName);
  if (existing && !isListRecord(existing)) throw new StoreError(`${fullName}: image is not a manifest list`, 'invalid');
  if (existing) await addInstances(store, existing, added, {});
  else await createList(store, fullName, added);
}

/** manifest create LIST [IMAGE...] */
export async function createCmd(g: GlobalOptions, args: string[], o: Opts): Promise<void> {
  const store = await openStore(g);
  const [name, ...images] = args as [string, ...string[]];
  applyRegistryFlags(o, 'pull');
  const all = !!o.all;
  const fullName = localImageName(name);
  const existing = o.amend ? findImage(store, fullName) : undefined;
  if (existing && !isListRecord(existing)) throw new StoreError(`${fullName}: image is not a manifest list`, 'invalid');
  const added = await instancesOfAll(store, images, all);
  const list = existing ? await addInstances(store, existing, added, {}) : await createList(store, fullName, added);
  print(list.id);
}

/** manifest add LIST IMAGE */
export async function addCmd(g: GlobalOptions, args: string[], o: Opts): Promise<void> {
  const store = await openStore(g);
  const [listName, image] = args as [string, string];
  const list = getList(store, listName);
  applyRegistryFlags(o, 'pull');
  const added = await instancesOf(store, image, !!o.all);
  await addInstances(store, list, added, entryEdits(o));
  for (const a of added) print(`${list.id}: ${a.descriptor.digest}`);
}

/** The digest an annotate or remove argument names: a digest, or a local image's manifest digest. */
function instanceDigest(store: Store, arg: string): string {
  if (/^[a-z0-9]+:[a-f0-9]{32,}$/.test(arg)) return arg;
  const img = findImage(store, arg);
  if (!img || isListRecord(img)) throw new StoreError(`${arg}: not a digest and not a local image`, 'notfound');
  return img.manifestDigest;
}

/**
 * annotate and remove: finds the entry that the second argument names (a digest or a local image)
 * in the list, rewrites the entries with `change`, and prints what Buildah prints.
 */
async function changeEntry(
  g: GlobalOptions,
  args: string[],
  change: (entries: Descriptor[], digest: string, sources: Map<string, string>) => Descriptor[],
): Promise<void> {
  const store = await openStore(g);
  const [listName, target] = args as [string, string];
  const list = getList(store, listName);
  const digest = instanceDigest(store, target);
  await editList(store, list, (index, sources) => {
    requireInstance(index, digest, listName);
    return change(index.manifests, digest, sources);
  });
  print(`${list.id}: ${digest}`);
}

/** manifest annotate LIST DIGEST|IMAGE */
export async function annotateCmd(g: GlobalOptions, args: string[], o: Opts): Promise<void> {
  const edits = entryEdits(o);
  await changeEntry(g, args, (entries, digest) => entries.map((d) => (d.digest === digest ? editEntry(d, edits) : d)));
}

/** manifest remove LIST DIGEST */
export async function removeCmd(g: GlobalOptions, args: string[]): Promise<void> {
  await changeEntry(g, args, (entries, digest, sources) => {
    sources.delete(digest);
    return entries.filter((d) => d.digest !== digest);
  });
}

/**
 * manifest inspect LIST: the index as stored, indented as Buildah prints it. A name that is not a
 * local list is read from its transport (a registry for names with one), as Buildah does.
 */
export async function inspectCmd(g: GlobalOptions, args: string[], o: Opts): Promise<void> {
  const store = await openStore(g);
  const name = args[0]!;
  const local = hasTransport(name) ? undefined : findImage(store, name);
  let bytes: Buffer;
  if (local) {
    bytes = await store.imageManifest(getList(store, name));
  } else {
    if (!hasTransport(name) && !hasRegistry(name)) throw new StoreError(`${name}: image not known`, 'notfound');
    applyRegistryFlags(o, 'pull');
    const src = await openSource(withTransport(name));
    try {
      bytes = (await src.getManifest()).bytes;
    } finally {
      await src.close();
    }
  }
  print(goJSON(JSON.parse(bytes.toString()), '    '));
}

/** manifest exists LIST: 0 for a local list, 1 otherwise (an image that is not a list included). */
export async function existsCmd(g: GlobalOptions, args: string[]): Promise<number> {
  const store = await openStore(g);
  const img = findImage(store, args[0]!);
  return img && isListRecord(img) ? 0 : 1;
}

/** manifest rm LIST...: removes the lists, never the images they name. */
export async function rmCmd(g: GlobalOptions, args: string[]): Promise<void> {
  const store = await openStore(g);
  const errors: string[] = [];
  for (const name of args) {
    try {
      const list = getList(store, name);
      await store.deleteImage(list.id);
      for (const n of list.names) print(`untagged: ${n}`);
      print(list.id);
    } catch (e) {
      errors.push(`${(e as Error).message}`);
    }
  }
  if (errors.length) throw new ExitError(errors.join('\n'), 125);
}

/**
 * manifest push LIST DEST: with --all the images first (converted and compressed as a push of each
 * would be) and then the index naming what was pushed; without, the index alone, as Buildah 1.28.
 */
export async function pushCmd(g: GlobalOptions, args: string[], o: Opts): Promise<void> {
  const store = await openStore(g);
  const [listName, destination] = args as [string, string];
  const format = formatFlag(o.format);
  if (o.signBy !== undefined) throw new Error('--sign-by: barge signs single images (push, skopeo copy), not manifest lists');
  applyRegistryFlags(o, 'push');
  const list = await readList(store, getList(store, listName));
  const dst = await openDestination(withTransport(destination));
  let digest: string;
  if (o.all) {
    const src = new ListSource(store, list, (ref) => openSource(ref));
    digest = await runCopy(src, dst, { quiet: !!o.quiet, all: true, ...(format && { format }) });
  } else {
    try {
      // Without a format the stored bytes go as they are, so the digest is the one inspect shows.
      const out = format ? serializeList({ raw: list.raw, mediaType: indexMediaTypeFor(format) }, list.index.manifests) : { manifest: await store.imageManifest(list.record), mediaType: list.mediaType };
      await dst.putManifest(out.manifest, out.mediaType);
      await dst.commit();
      digest = digestOf(out.manifest);
    } finally {
      await dst.close();
    }
  }
  if (typeof o.digestfile === 'string') await writeFile(o.digestfile, digest);
  if (o.rm) await store.deleteImage(list.record.id);
}
