import { openStore, print, humanAgo, humanSize, ExitError, type GlobalOptions } from '../context.ts';
import type { ImageRecord, Store } from '../../store/store.ts';
import { imageEvent } from '../../containers/events.ts';
import { isListRecord, StoreError } from '../../store/store.ts';
import { findImage, getImage, readImageConfig, readImageManifest } from '../../image/local-images.ts';
import { localImageName, repoAndTag } from '../../image/reference.ts';
import { dirname, join } from 'node:path';
import type { ImageConfig } from '../../image/types.ts';
import { loadBuilder } from '../../primitives/builder.ts';
import { dockerView, goJSON, ociView } from '../../primitives/config.ts';
import { GoTime } from '../../image/gotime.ts';
import { BUILDER_INFO, CONTAINER_DATA, HISTORY_REPORTER, IMAGE_DATA, IMAGE_REPORTER } from '../gotypes.ts';

type Opts = Record<string, unknown>;
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

interface ImageRow {
  ID: string;
  Id: string;
  Repository: string;
  Tag: string;
  Name: string;
  Names: string[];
  Digest: string;
  Created: string;
  CreatedAtRaw: string;
  CreatedSince: string;
  Size: string;
  VirtualSize: number;
  ReadOnly: boolean;
  Labels: Record<string, string> | null;
  Dangling: boolean;
  // The rest only for templates and --format json, as Podman's ImageSummary has them.
  RepoTags: string[];
  RepoDigests: string[];
  Containers: number;
}

async function imageRows(store: Store, images: ImageRecord[], truncate: boolean): Promise<ImageRow[]> {
  const rows: ImageRow[] = [];
  const users = new Map<string, number>();
  for (const c of store.listContainers()) if (c.imageId) users.set(c.imageId, (users.get(c.imageId) ?? 0) + 1);
  for (const img of images) {
    // A manifest list has no config: its row shows when it was made, as Buildah's does.
    const cfg = isListRecord(img) ? undefined : await readImageConfig(store, img);
    const created = cfg?.created ?? img.created ?? img.added;
    const names = img.names.length ? img.names : [''];
    for (const name of names) {
      const { repository, tag } = name ? repoAndTag(name) : { repository: '<none>', tag: '<none>' };
      rows.push({
        ID: truncate ? img.id.slice(0, 12) : `sha256:${img.id}`, Id: img.id, Repository: repository, Tag: tag, Name: repository,
        Names: img.names, Digest: img.manifestDigest, Created: humanAgo(created), CreatedSince: humanAgo(created),
        CreatedAtRaw: created, Size: humanSize(img.size), VirtualSize: img.size, ReadOnly: false,
        Labels: cfg?.config?.Labels ?? null, Dangling: img.names.length === 0,
        RepoTags: img.names, RepoDigests: repoDigests(img), Containers: users.get(img.id) ?? 0,
      });
    }
  }
  return rows;
}

/** An image's names as repository@digest, once per repository, as Podman lists them. */
function repoDigests(img: ImageRecord): string[] {
  return [...new Set(img.names.map((n) => repoAndTag(n).repository))].map((r) => `${r}@${img.manifestDigest}`);
}

/** A row as Podman's imageReporter marshals it for `{{json .}}`: the summary with its repository and tag. */
function reporterJSON(r: ImageRow): Record<string, unknown> {
  return {
    repository: r.Repository, tag: r.Tag, Id: r.Id, ParentId: '', RepoTags: r.RepoTags, RepoDigests: r.RepoDigests, Created: Math.floor(Date.parse(r.CreatedAtRaw) / 1000),
    Size: r.VirtualSize, SharedSize: 0, VirtualSize: r.VirtualSize, Labels: r.Labels, Containers: r.Containers, Names: r.Names, Digest: r.Digest, History: r.Names,
  };
}

/** Podman's `images --format json` entry (entities.ImageSummary). */
function imageSummary(r: ImageRow): Record<string, unknown> {
  const created = Math.floor(Date.parse(r.CreatedAtRaw) / 1000);
  return {
    Id: r.Id, ParentId: '', RepoTags: null, RepoDigests: r.RepoDigests, Size: r.VirtualSize, SharedSize: 0, VirtualSize: r.VirtualSize,
    Labels: r.Labels, Containers: r.Containers, Names: r.Names.length ? r.Names : null,
    Digest: r.Digest, History: r.Names.length ? r.Names : null, Created: created, CreatedAt: GoTime.unix(created),
  };
}

function globToRegExp(glob: string): RegExp {
  return new RegExp('^' + glob.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '.') + '$');
}

async function applyFilters(store: Store, images: ImageRecord[], filters: string[]): Promise<ImageRecord[]> {
  let out = images;
  for (const f of filters) {
    const i = f.indexOf('=');
    if (i < 0) throw new Error(`invalid filter "${f}": expected KEY=VALUE`);
    const key = f.slice(0, i);
    const val = f.slice(i + 1);
    switch (key) {
      case 'reference': {
        const re = globToRegExp(val.includes(':') ? val : `${val}:*`);
        out = out.filter((img) => img.names.some((n) => re.test(n) || re.test(n.slice(n.indexOf('/') + 1)) || re.test(repoAndTag(n).repository.split('/').pop() + ':' + repoAndTag(n).tag)));
        break;
      }
      case 'dangling':
        out = out.filter((img) => (img.names.length === 0) === (val === 'true'));
        break;
      case 'id':
        out = out.filter((img) => img.id.startsWith(val.replace(/^sha256:/, '')));
        break;
      case 'label': {
        const [k, v] = val.split('=', 2) as [string, string | undefined];
        const keep: ImageRecord[] = [];
        for (const img of out) {
          const labels = isListRecord(img) ? {} : (await readImageConfig(store, img)).config?.Labels ?? {};
          if (k in labels && (v === undefined || labels[k] === v)) keep.push(img);
        }
        out = keep;
        break;
      }
      case 'before':
      case 'since': {
        const ref = getImage(store, val);
        const t = Date.parse(ref.added);
        out = out.filter((img) => (key === 'before' ? Date.parse(img.added) < t : Date.parse(img.added) > t));
        break;
      }
      case 'readonly':
        out = out.filter(() => val === 'false');
        break;
      default:
        throw new Error(`invalid image filter "${key}" (reference, label, dangling, id, before, since, readonly)`);
    }
  }
  return out;
}

/**
 * Images a build left as steps of later ones (--layers): no name, and another image stands on their
 * layers. `images` leaves them out unless -a, as Buildah and Podman do; dangling images stay.
 */
function intermediateImages(store: Store, images: ImageRecord[]): Set<string> {
  const out = new Set<string>();
  const chains = new Map(images.map((i) => [i.id, new Set(store.layerChain(i.topLayer).map((l) => l.id))]));
  for (const img of images) {
    if (img.names.length > 0 || !img.topLayer) continue;
    const child = images.some((o) => o.id !== img.id && chains.get(o.id)!.has(img.topLayer!) && (o.topLayer !== img.topLayer || o.added > img.added));
    if (child) out.add(img.id);
  }
  return out;
}

export async function imagesCmd(g: GlobalOptions, args: string[], o: Opts): Promise<void> {
  const store = await openStore(g);
  let images = store.listImages();
  if (!o.all && !args[0]) {
    const hidden = intermediateImages(store, images);
    images = images.filter((i) => !hidden.has(i.id));
  }
  if (args[0]) {
    const img = findImage(store, args[0]);
    images = img ? [img] : [];
  }
  images = await applyFilters(store, images, (o.filter as string[] | undefined) ?? []);
  const truncate = o.trunc !== false;
  if (o.quiet) {
    for (const id of new Set(images.map((i) => (truncate ? i.id.slice(0, 12) : `sha256:${i.id}`)))) print(id);
    return;
  }
  const rows = await imageRows(store, images, truncate);
  const sort = str(o.sort);
  if (sort !== undefined) {
    // Podman's orders: newest first by creation, otherwise ascending.
    const by: Record<string, (a: ImageRow, b: ImageRow) => number> = {
      created: (a, b) => b.CreatedAtRaw.localeCompare(a.CreatedAtRaw),
      id: (a, b) => a.Id.localeCompare(b.Id),
      repository: (a, b) => a.Repository.localeCompare(b.Repository) || a.Tag.localeCompare(b.Tag),
      tag: (a, b) => a.Tag.localeCompare(b.Tag),
      size: (a, b) => a.VirtualSize - b.VirtualSize,
    };
    const cmp = by[sort];
    if (!cmp) throw new Error(`invalid option for --sort, options are: ${Object.keys(by).join(', ')}`);
    rows.sort(cmp);
  }
  if (o.json) {
    const json = images.map((img) => {
      const r = rows.find((x) => x.Id === img.id)!;
      return { id: img.id, names: img.names, digest: img.manifestDigest, createdat: r.Created, size: r.Size, created: Math.floor(Date.parse(r.CreatedAtRaw) / 1000), createdatraw: r.CreatedAtRaw, readonly: false, history: [] };
    });
    print(JSON.stringify(json, null, 4));
    return;
  }
  const format = str(o.format);
  const digestCol = o.digests ? '\t{{.Digest}}' : '';
  const { formatRows, isJSONFormat, isTableFormat } = await import('../table.ts');
  if (format !== undefined && isJSONFormat(format)) {
    // One entry per image, as Podman, though the table has a row per name.
    const seen = new Set<string>();
    print(goJSON(rows.filter((r) => !seen.has(r.Id) && seen.add(r.Id)).map(imageSummary), 4));
    return;
  }
  const out = formatRows(rows, {
    ...(format !== undefined && { format }),
    defaultTable: `table {{.Repository}}\t{{.Tag}}${digestCol}\t{{.ID}}\t{{.Created}}\t{{.Size}}`,
    headers: { ID: 'IMAGE ID', Created: 'CREATED', CreatedAt: 'CREATED AT', Size: 'SIZE', Digest: 'DIGEST' },
    name: 'images',
    type: { ...IMAGE_REPORTER, json: (self) => reporterJSON(self as unknown as ImageRow) },
  });
  // Only a table has a header to leave out.
  if ((o.heading === false || o.noheading) && isTableFormat(format)) process.stdout.write(out.split('\n').slice(1).join('\n'));
  else process.stdout.write(out);
}

export async function rmiCmd(g: GlobalOptions, args: string[], o: Opts): Promise<number> {
  const store = await openStore(g);
  let failed = 0;
  const removeOne = async (img: ImageRecord, ref?: string): Promise<void> => {
    if (o.force) {
      for (const c of store.listContainers().filter((c) => c.imageId === img.id)) await store.deleteContainer(c);
    }
    await removeImage(store, img, ref === undefined ? undefined : (nameOf(img, ref) ?? ref));
  };
  if (o.prune || o.all) return removeAll(o.all ? store.listImages() : unusedImages(store, false), removeOne);
  if (!args.length) throw new Error('image name or ID must be specified');
  let notFound = 0;
  for (const ref of args) {
    try {
      const { id } = getImage(store, ref);
      const untagged = untagRef(store, ref);
      if (untagged !== undefined) {
        // Podman records the removal of the name too, though the image stays.
        imageEvent(store, 'untag', { id, name: untagged });
        imageEvent(store, 'remove', { id, name: untagged });
        print(`untagged: ${untagged}`);
      } else await removeOne(getImage(store, ref), ref);
    } catch (e) {
      const missing = e instanceof StoreError && e.code === 'notfound';
      if (missing && o.ignore) continue;
      process.stderr.write(`Error: ${(e as Error).message}\n`);
      failed++;
      if (missing) notFound++;
    }
  }
  // Podman's convention: 1 only when every failure was an unknown image; anything else
  // (an image in use by a container included) is 125.
  return failed ? (notFound === failed ? 1 : 125) : 0;
}

/**
 * Removing one of several names of an image only untags it, as Podman and Buildah do: the name
 * `ref` took away, or undefined when the image itself is to go.
 */
export function untagRef(store: Store, ref: string): string | undefined {
  const img = getImage(store, ref);
  const named = nameOf(img, ref);
  if (!named || img.names.length <= 1) return undefined;
  store.removeName(img.id, named);
  return named;
}

/** The name of `img` that `ref` picks, or undefined when `ref` is its id (or a prefix of it). */
function nameOf(img: ImageRecord, ref: string): string | undefined {
  return img.names.find((n) => n === ref || n === safeLocalName(ref)) ??
    img.names.find((n) => ref !== img.id && !img.id.startsWith(ref) && n.endsWith(ref.includes(':') ? `/${ref}` : `/${ref}:latest`));
}

/**
 * Removes the image, with Podman's events, and prints its id. The remove event carries the name
 * the image was picked by (`name`: its full name, or the id as given), none for rmi -a and prune.
 */
async function removeImage(store: Store, img: ImageRecord, name?: string): Promise<void> {
  await store.deleteImage(img.id);
  // As Podman: its names go first, each with an untag event.
  for (const n of img.names) imageEvent(store, 'untag', { id: img.id, name: n });
  imageEvent(store, 'remove', { id: img.id, ...(name !== undefined && { name }) });
  print(img.id);
}

/** Images no container uses: those without a name only, unless `named` too. */
function unusedImages(store: Store, named: boolean): ImageRecord[] {
  const used = new Set(store.listContainers().map((c) => c.imageId));
  return store.listImages().filter((img) => !used.has(img.id) && (named || img.names.length === 0));
}

/** Removes each image, going on past failures: 125 if any failed. */
async function removeAll(images: ImageRecord[], remove: (img: ImageRecord) => Promise<void>): Promise<number> {
  let failed = 0;
  for (const img of images) {
    try {
      await remove(img);
    } catch (e) {
      process.stderr.write(`Error: ${(e as Error).message}\n`);
      failed++;
    }
  }
  return failed ? 125 : 0;
}

/** `podman image prune [-a]`: removes the images without a name (-a: every image) that no container uses. */
export async function imagePruneCmd(g: GlobalOptions, _args: string[], o: Opts): Promise<number> {
  const store = await openStore(g);
  return removeAll(unusedImages(store, !!o.all), async (img) => {
    await removeImage(store, img);
  });
}

/** `podman image exists`: 0 when the image is in local storage, 1 when not. */
export async function imageExistsCmd(g: GlobalOptions, args: string[]): Promise<number> {
  const store = await openStore(g);
  return findImage(store, args[0]!) ? 0 : 1;
}

/** `podman image inspect`: Podman's JSON for each image; `[]` and 125 for names it cannot find. */
export async function imageInspectCmd(g: GlobalOptions, args: string[], o: Opts): Promise<number> {
  const store = await openStore(g);
  const out: Record<string, unknown>[] = [];
  let failed = 0;
  for (const ref of args) {
    const img = findImage(store, ref);
    if (img) out.push(await podmanImageJSON(store, img));
    else {
      process.stderr.write(`Error: inspecting object: ${ref}: image not known\n`);
      failed = 125;
    }
  }
  const { printInspected } = await import('../table.ts');
  printInspected(out, str(o.format), IMAGE_DATA);
  return failed;
}

async function podmanImageJSON(store: Store, img: ImageRecord): Promise<Record<string, unknown>> {
  const cfg = await readImageConfig(store, img);
  const manifest = await readImageManifest(store, img);
  const chain = img.topLayer ? store.layerChain(img.topLayer) : [];
  const top = chain.at(-1);
  const data: Record<string, string> = {};
  if (store.driver === 'overlay' && top) {
    const lowers = chain.slice(0, -1).reverse().map((l) => store.layerDir(l.id));
    if (lowers.length) data['LowerDir'] = lowers.join(':');
    data['UpperDir'] = store.layerDir(top.id);
    data['WorkDir'] = join(dirname(store.layerDir(top.id)), 'work');
  }
  return {
    Id: img.id,
    Digest: img.manifestDigest,
    RepoTags: img.names,
    RepoDigests: repoDigests(img),
    Parent: '',
    Comment: cfg.comment ?? cfg.history?.at(-1)?.comment ?? '',
    Created: cfg.created ?? img.created,
    Config: ociView(cfg).config ?? {},
    Version: '',
    Author: cfg.author ?? '',
    Architecture: cfg.architecture,
    Os: cfg.os,
    Size: img.size,
    VirtualSize: img.size,
    GraphDriver: { Name: store.driver, Data: data },
    RootFS: { Type: 'layers', Layers: cfg.rootfs.diff_ids },
    Labels: cfg.config?.Labels ?? null,
    Annotations: manifest.annotations ?? {},
    ManifestType: img.manifestMediaType,
    User: cfg.config?.User ?? '',
    History: cfg.history ?? [],
    NamesHistory: img.names,
  };
}

function safeLocalName(ref: string): string {
  try {
    return localImageName(ref);
  } catch {
    return ref;
  }
}

export async function tagCmd(g: GlobalOptions, args: string[]): Promise<void> {
  const store = await openStore(g);
  const [ref, ...names] = args;
  const img = getImage(store, ref!);
  for (const n of names) {
    store.addName(img.id, localImageName(n));
    imageEvent(store, 'tag', { id: img.id, name: n });
  }
}

export async function untagCmd(g: GlobalOptions, args: string[]): Promise<void> {
  const store = await openStore(g);
  const [ref, ...names] = args;
  const img = getImage(store, ref!);
  const targets = names.length ? names.map(localImageName) : img.names;
  for (const n of targets) {
    if (!store.removeName(img.id, n)) throw new StoreError(`${n}: tag not known`, 'notfound');
    imageEvent(store, 'untag', { id: img.id, name: n });
  }
}

export async function historyCmd(g: GlobalOptions, args: string[], o: Opts): Promise<void> {
  const store = await openStore(g);
  const img = getImage(store, args[0]!);
  const cfg = await readImageConfig(store, img);
  const chain = store.layerChain(img.topLayer);
  const history = cfg.history ?? [];
  const truncate = o.trunc !== false;
  let layerIdx = chain.length - 1;
  const rows = [];
  for (let i = history.length - 1; i >= 0; i--) {
    const h = history[i]!;
    const layer = h.empty_layer ? undefined : chain[layerIdx--];
    const createdBy = h.created_by ?? '';
    const id = i === history.length - 1 ? img.id : '<missing>';
    const when = o.human === 'false' ? (h.created ? GoTime.from(h.created).Format('2006-01-02T15:04:05Z07:00') : '') : humanAgo(h.created);
    rows.push({
      ID: truncate && id !== '<missing>' ? id.slice(0, 12) : id,
      // Without --human, Podman's Created and CreatedSince are RFC 3339 to the second; sizes stay human.
      Created: when,
      CreatedSince: when,
      CreatedAt: h.created ?? '',
      CreatedBy: truncate && createdBy.length > 45 ? createdBy.slice(0, 42) + '...' : createdBy,
      Size: humanSize(layer?.diffSize ?? 0),
      Comment: h.comment ?? '',
    });
  }
  if (o.quiet) {
    for (const r of rows) print(r.ID);
    return;
  }
  const format = str(o.format);
  const { formatRows } = await import('../table.ts');
  process.stdout.write(
    formatRows(rows, {
      ...(format !== undefined && { format }),
      defaultTable: 'table {{.ID}}\t{{.Created}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}',
      headers: { CreatedBy: 'CREATED BY' },
      name: 'history',
      type: HISTORY_REPORTER,
    }),
  );
}

/** The JSON `buildah inspect` prints, for a working container or an image. */
export async function inspectData(store: Store, name: string, type?: string): Promise<Record<string, unknown>> {
  if (type !== 'image' && type !== 'manifest') {
    const c = store.findContainer(name);
    if (c) {
      const b = loadBuilder(store, name);
      const image = b.state.config.image;
      return {
        Type: 'buildah 0.0.1',
        FromImage: b.state.fromImage,
        FromImageID: b.state.fromImageId,
        FromImageDigest: b.state.fromImageDigest,
        Config: JSON.stringify(ociView(image)),
        Manifest: '',
        Container: c.name,
        ContainerID: c.id,
        MountPoint: store.isMounted(c) ? c.mountpoint ?? '' : '',
        ProcessLabel: '',
        MountLabel: '',
        ImageAnnotations: b.state.config.annotations,
        ImageCreatedBy: b.state.config.createdBy ?? '',
        OCIv1: ociView(image),
        Docker: dockerView(image),
        DefaultMountsFilePath: '',
        Isolation: b.state.isolation,
        NamespaceOptions: null,
        ConfigureNetwork: 'NetworkDefault',
        History: image.history ?? [],
        Devices: [],
      };
    }
    if (type === 'container') throw new StoreError(`container "${name}" not found`, 'notfound');
  }
  const img = getImage(store, name);
  const manifestBytes = await store.imageManifest(img);
  // A list is nothing but its index: Buildah shows that with --type manifest, barge for any type.
  if (type === 'manifest' || isListRecord(img)) return JSON.parse(manifestBytes.toString()) as Record<string, unknown>;
  const cfg: ImageConfig = await readImageConfig(store, img);
  const manifest = await readImageManifest(store, img);
  return {
    Type: 'buildah 0.0.1',
    FromImage: img.names[0] ?? '',
    FromImageID: img.id,
    FromImageDigest: img.manifestDigest,
    Config: (await store.imageConfig(img.id)).toString(),
    Manifest: manifestBytes.toString(),
    Container: '',
    ContainerID: '',
    MountPoint: '',
    ProcessLabel: '',
    MountLabel: '',
    ImageAnnotations: manifest.annotations ?? {},
    ImageCreatedBy: '',
    OCIv1: ociView(cfg),
    Docker: dockerView(cfg),
    DefaultMountsFilePath: '',
    Isolation: 'oci',
    NamespaceOptions: null,
    ConfigureNetwork: 'NetworkDefault',
    History: cfg.history ?? [],
    Devices: [],
  };
}

/**
 * The top-level `inspect NAME…`: Podman's JSON for containers of run/create, Buildah's for working
 * containers. One name of Buildah's kind (or one image) prints Buildah's single object, as
 * `buildah inspect`; otherwise the objects are an array as Podman prints, with Podman's JSON for
 * images. Unknown names fail with 125 after the others are shown.
 */
export async function inspectCmd(g: GlobalOptions, args: string[], o: Opts): Promise<number | void> {
  const store = await openStore(g);
  if (!args[0] && !o.latest) throw new Error('no names or ids specified');
  // -l is the latest Podman-style container.
  if (o.latest) return (await import('./containers.ts')).containerInspectCmd(g, args, o);
  const type = str(o.type);
  const format = str(o.format);
  const found: { data: Record<string, unknown>; buildah: boolean }[] = [];
  const missing: string[] = [];
  const { goTyped, parseTemplate, withGoJSONTimes } = await import('../gotemplate.ts');
  for (const name of args) {
    try {
      const ctr = type !== 'image' && type !== 'manifest' ? store.findContainer(name) : undefined;
      if (ctr?.kind === 'container') {
        // Loaded only for such a container: it brings the container lifecycle code along.
        const [{ inspectJSON }, { loadContainer }] = await Promise.all([import('./containers.ts'), import('../../containers/record.ts')]);
        found.push({ data: goTyped(inspectJSON(store, loadContainer(store, name)), { iface: CONTAINER_DATA }), buildah: false });
      } else if (ctr || args.length === 1 || type === 'container' || type === 'manifest') {
        found.push({ data: await inspectData(store, name, type), buildah: true });
      } else {
        // Among several names (Podman's form) an image is shown as Podman shows it, so that one
        // template ({{.Id}}) serves containers and images alike.
        found.push({ data: goTyped(await podmanImageJSON(store, getImage(store, name)), { iface: IMAGE_DATA }), buildah: false });
      }
    } catch (e) {
      if (!(e instanceof StoreError && e.code === 'notfound')) throw e;
      missing.push(name);
    }
  }
  const single = args.length === 1 ? found[0] : undefined;
  if (single?.buildah) {
    // A manifest list's index is no BuilderInfo: it stays map-like.
    const data = single.data['Type'] === 'buildah 0.0.1' ? goTyped(single.data, BUILDER_INFO) : single.data;
    if (format && format !== 'json') {
      const { normalizeFormat, writeBuildahTemplateOutput } = await import('../table.ts');
      writeBuildahTemplateOutput(parseTemplate(normalizeFormat(format), undefined, { name: 'format' }).execute(data));
    } else print(goJSON(withGoJSONTimes(data), '    '));
  } else {
    const { printInspected } = await import('../table.ts');
    printInspected(found.map((f) => f.data), format);
  }
  if (!missing.length) return;
  // With --type image, Buildah's words; else Podman's, which returns the first failure and
  // reports the others on the way.
  if (type === 'image') throw new ExitError(`${missing.join(', ')}: image not known`, 125);
  for (const name of missing.slice(1)) process.stderr.write(`error inspecting object: no such object: "${name}"\n`);
  throw new ExitError(`inspecting object: no such object: "${missing[0]}"`, 125);
}
