import { createHash } from 'node:crypto';
import {
  closeSync, constants as fsc, createReadStream, createWriteStream, fstatSync, lstatSync, openSync, readdirSync, readFileSync, readlinkSync, realpathSync,
  statSync, type Stats,
} from 'node:fs';
import { lchown, lstat, mkdir, open, rm, stat } from 'node:fs/promises';
import { basename, isAbsolute, join, posix, relative, resolve as resolvePath } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Store } from '../store/store.ts';
import { detectCompression, decompressor, type Compression } from '../store/hashing.ts';
import { resolveInRoot } from '../store/secure-path.ts';
import { applyTar, TreeWriter, type EntryHeader } from '../store/tar-apply.ts';
import { findImage } from '../image/local-images.ts';
import { DigestMismatchError, VerifyingStream } from '../image/digest.ts';
import { resolveUser } from '../runtime/user.ts';
import { saveBuilder, type Builder } from './builder.ts';

export interface CopyOptions {
  chown?: string;
  chmod?: string;
  /** Image or container whose root filesystem holds the sources. */
  from?: string;
  /** Sources are confined to this directory (symlinks and .. cannot leave it). */
  contextDir?: string;
  /** ADD semantics: local archives are extracted, URLs fetched. */
  add?: boolean;
  /** ADD --checksum: the digest (sha256:HEX or sha512:HEX) every fetched URL must have. */
  checksum?: string;
  /** Sources as given are skipped when they match (Containerfile ignore rules). */
  exclude?: (relPath: string) => boolean;
  /** With contextDir: paths of the context (relative to it) that are left out, an ignore file's rules. */
  ignored?: { skip: (contextRel: string) => boolean; file: string | null };
  /**
   * Buildah's --add-history: the image committed from the container gets a history entry
   * ("/bin/sh -c #(nop) COPY file:DIGEST", empty_layer) for this copy.
   */
  addHistory?: boolean;
}

interface Source {
  /** Host path of the source. */
  path: string;
  /** The directory the source is confined to, when any. */
  root: string | null;
}

/**
 * `buildah copy` / `buildah add`. Sources are written by the same hardened code that unpacks
 * image layers (fed directly, without a tar in between), so a destination symlink can never
 * lead out of the container's root.
 */
export async function copyIntoBuilder(store: Store, b: Builder, srcs: string[], dest: string | undefined, o: CopyOptions = {}): Promise<void> {
  if (!srcs.length) throw new Error('no source files given');
  await store.withContainerLock(b.container, async () => {
    const rootfs = await store.mountContainer(b.container);
    const cfg = b.state.config.image.config ?? {};
    const workdir = cfg.WorkingDir || '/';
    // "." and "x/." name a directory as surely as a trailing slash does; posix.join would drop that.
    const namesDir = dest === undefined || dest.endsWith('/') || dest === '.' || dest.endsWith('/.');
    const base = dest === undefined ? workdir : posix.isAbsolute(dest) ? dest : posix.join(workdir, dest);
    const destPath = namesDir && !base.endsWith('/') ? `${base}/` : base;
    const owner = o.chown ? await resolveOwner(rootfs, o.chown) : { uid: 0, gid: 0 };
    const mode = o.chmod ? parseChmod(o.chmod) : undefined;

    let srcRoot: string | null = o.contextDir ? resolvePath(o.contextDir) : null;
    let release: (() => Promise<void>) | undefined;
    if (o.from) ({ root: srcRoot, release } = await openFromRoot(store, o.from));
    const context = o.from ? null : srcRoot;
    // Paths of the context left out by the ignore rules, by host path.
    const ignored = (host: string): boolean => {
      if (context === null || o.ignored === undefined) return false;
      const rel = relative(context, host);
      return rel !== '' && !rel.startsWith('..') && o.ignored.skip(rel);
    };
    try {
      const sources: Source[] = [];
      const urls: string[] = [];
      for (const s of srcs) {
        if (o.add && /^https?:\/\//.test(s)) {
          urls.push(s);
          continue;
        }
        // Buildah names sources in the context by their host paths; barge also takes them relative to it.
        const inContext = context !== null && (s === context || s.startsWith(`${context}/`)) ? relative(context, s) || '.' : s;
        const found = await expandSource(inContext, srcRoot);
        const kept = found.filter((x) => !ignored(x.path));
        if (!kept.length) {
          throw new Error(`no items matching glob "${s}" copied (${found.length} filtered out using ${o.ignored?.file ?? '.containerignore'}): no such file or directory`);
        }
        sources.push(...kept);
      }
      const intoDir = destPath.endsWith('/') || sources.length + urls.length > 1 || (await isDirIn(rootfs, destPath));
      const targetDir = async (dir: string, chownCreated = false): Promise<string> => {
        const existed = await isDirIn(rootfs, dir);
        await mkdirInRoot(rootfs, dir);
        const host = await resolveInRoot(rootfs, dir);
        // A directory COPY creates for a directory source belongs to --chown, as in Docker and Buildah.
        if (chownCreated && !existed && o.chown) await lchown(host, owner.uid, owner.gid);
        return host;
      };

      for (const src of sources) {
        const st = await stat(src.path);
        const archive = o.add && st.isFile() ? await archiveCompression(src.path) : null;
        if (archive !== null) {
          await extractArchive(src.path, archive, await targetDir(destPath), o.chown ? owner : undefined);
          continue;
        }
        // A directory's contents go into DEST; a file goes into DEST/ or becomes DEST.
        const dir = st.isDirectory() || intoDir ? destPath : posix.dirname(destPath);
        const name = st.isDirectory() ? '' : intoDir ? basename(src.path) : posix.basename(destPath);
        const writer = new TreeWriter({ root: await targetDir(dir, st.isDirectory()), whiteouts: 'none' });
        await copyTree(writer, src, name, owner, mode, (rel, host) => !!o.exclude?.(rel) || ignored(host));
        writer.finish();
      }
      const urlDir = intoDir ? await targetDir(destPath) : await targetDir(posix.dirname(destPath));
      const fetched: string[] = [];
      for (const url of urls) {
        const name = intoDir ? basename(new URL(url).pathname) || 'index.html' : posix.basename(destPath);
        await fetchInto(url, join(urlDir, name), owner, mode, o.checksum);
        fetched.push(join(urlDir, name));
      }
      if (o.addHistory) {
        const hashed = [...sources.map((x) => x.path), ...fetched];
        const kind = hashed.length > 1 ? 'multi' : (await stat(hashed[0]!)).isDirectory() ? 'dir' : 'file';
        const digest = contentDigest(hashed, (host) => ignored(host));
        b.state.config.image.history = [
          ...(b.state.config.image.history ?? []),
          { created: new Date().toISOString(), created_by: `/bin/sh -c #(nop) ${o.add ? 'ADD' : 'COPY'} ${kind}:${digest}`, empty_layer: true },
        ];
      }
      saveBuilder(store, b);
    } finally {
      await release?.();
    }
  });
}

async function openFromRoot(store: Store, ref: string): Promise<{ root: string; release: () => Promise<void> }> {
  const c = store.findContainer(ref);
  if (c) return { root: await store.mountContainer(c), release: async () => {} };
  const img = findImage(store, ref);
  if (!img) throw new Error(`--from ${ref}: no such container or image`);
  // A throwaway container gives the image's merged view without unpacking anything.
  const tmp = await store.createContainer({ nameBase: `copy-from-${img.id.slice(0, 12)}`, kind: 'builder', imageId: img.id, imageName: img.names[0] ?? null, data: '{}' });
  return { root: await store.mountContainer(tmp), release: () => store.deleteContainer(tmp) };
}

async function expandSource(s: string, root: string | null): Promise<Source[]> {
  const hasGlob = /[*?[]/.test(s);
  const base = root ?? process.cwd();
  if (!hasGlob) {
    const path = root ? await resolveInRoot(root, s) : resolvePath(base, s);
    if (!(await lstat(path).catch(() => null))) throw new Error(`copier: stat: "${s}": no such file or directory`);
    return [{ path, root }];
  }
  const { glob } = await import('node:fs/promises');
  const out: Source[] = [];
  const pattern = root ? s.replace(/^\/+/, '') : s;
  for await (const m of glob(pattern, { cwd: base })) {
    const abs = isAbsolute(m) ? m : join(base, m);
    const path = root ? await resolveInRoot(root, relative(root, abs)) : abs;
    out.push({ path, root });
  }
  if (!out.length) throw new Error(`copier: "${s}": no files matched`);
  return out.sort((a, b) => (a.path < b.path ? -1 : 1));
}

/**
 * Writes a source file or directory tree under `name` through the writer. Filesystem calls are
 * synchronous: a context is thousands of small files and nothing else runs meanwhile.
 */
async function copyTree(
  writer: TreeWriter,
  src: Source,
  name: string,
  owner: { uid: number; gid: number },
  mode: number | undefined,
  skip: (rel: string, host: string) => boolean,
): Promise<void> {
  const walk = async (host: string, rel: string): Promise<void> => {
    // Following the top-level source symlink matches Docker; inside trees, links are copied as links.
    const top = rel === name;
    const st = top ? statSync(host) : lstatSync(host);
    if (src.root && top) {
      const real = realpathSync(host);
      if (real !== src.root && !real.startsWith(src.root + '/')) throw new Error(`copier: "${host}" is outside the build context`);
    }
    const header: EntryHeader = { name: rel, uid: owner.uid, gid: owner.gid, mtime: st.mtime, mode: mode ?? st.mode & 0o7777 };
    if (st.isDirectory()) {
      if (rel) await writer.entry({ ...header, type: 'directory' }, null);
      for (const child of readdirSync(host).sort()) {
        const childRel = rel ? `${rel}/${child}` : child;
        if (skip(childRel, join(host, child))) continue;
        await walk(join(host, child), childRel);
      }
    } else if (st.isSymbolicLink()) {
      await writer.entry({ ...header, type: 'symlink', linkname: readlinkSync(host), mode: 0o777 }, null);
    } else if (st.isFile()) {
      const fd = openSource(host, st, top);
      try {
        await writer.entry({ ...header, type: 'file', size: st.size }, { fd });
      } finally {
        closeSync(fd);
      }
    }
  };
  await walk(src.path, name);
}

/**
 * A digest of what a copy took, for its history entry: each entry's path (relative to its source),
 * type, mode and content, in name order. Buildah's digest is of its own tar stream, which barge
 * does not make, so the two differ; both change exactly when the content does.
 */
function contentDigest(paths: readonly string[], skip: (host: string) => boolean): string {
  const h = createHash('sha256');
  const walk = (host: string, rel: string): void => {
    const st = rel === '' ? statSync(host) : lstatSync(host);
    h.update(`${rel}\0${st.mode}\0`);
    if (st.isDirectory()) {
      for (const child of readdirSync(host).sort()) if (!skip(join(host, child))) walk(join(host, child), rel ? `${rel}/${child}` : child);
    } else if (st.isSymbolicLink()) h.update(readlinkSync(host));
    else if (st.isFile()) h.update(readFileSync(host));
    h.update('\0');
  };
  for (const p of paths) walk(p, '');
  return h.digest('hex');
}

/**
 * Opens a source file stat() said is regular, making sure it still is that file: below the top,
 * O_NOFOLLOW refuses a symlink swapped in (it could point out of the context), O_NONBLOCK keeps a
 * swapped-in fifo from hanging the open, and the inode check catches any other swap.
 */
function openSource(host: string, st: Stats, followLink: boolean): number {
  const fd = openSync(host, fsc.O_RDONLY | fsc.O_NONBLOCK | (followLink ? 0 : fsc.O_NOFOLLOW));
  try {
    const now = fstatSync(fd);
    if (now.ino !== st.ino || now.dev !== st.dev || !now.isFile()) throw new Error(`copier: "${host}" changed while it was being copied`);
    return fd;
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/** The compression of a local archive ADD extracts, or null when the file is not an archive. */
async function archiveCompression(path: string): Promise<Compression | null> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(512);
    const { bytesRead } = await fh.read(buf, 0, 512, 0);
    const c = detectCompression(buf);
    if (c !== 'none') return c;
    // A plain tar has "ustar" at offset 257.
    return bytesRead >= 262 && buf.subarray(257, 262).toString() === 'ustar' ? 'none' : null;
  } finally {
    await fh.close();
  }
}

async function extractArchive(path: string, compression: Compression, destHost: string, chown?: { uid: number; gid: number }): Promise<void> {
  const dec = decompressor(compression);
  const input: Readable = dec ? createReadStream(path).pipe(dec) : createReadStream(path);
  await applyTar(input, { root: destHost, whiteouts: 'none', ...(chown && { chown }) });
}

async function fetchInto(url: string, dest: string, owner: { uid: number; gid: number }, mode: number | undefined, checksum?: string): Promise<void> {
  const res = await fetch(url, { redirect: 'follow' });
  if (!res.ok || !res.body) throw new Error(`fetching ${url}: HTTP ${res.status}`);
  await rm(dest, { force: true, recursive: true });
  const body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
  const file = createWriteStream(dest, { flags: 'wx', mode: mode ?? 0o600 });
  try {
    await (checksum === undefined ? pipeline(body, file) : pipeline(body, new VerifyingStream(checksum), file));
  } catch (e) {
    // Nothing of a download that failed its checksum stays in the container.
    await rm(dest, { force: true });
    if (e instanceof DigestMismatchError) throw new Error(`checksum mismatch for ${url}: expected ${e.expected}, got ${e.actual}`);
    throw e;
  }
  const { chown, chmod, utimes } = await import('node:fs/promises');
  await chown(dest, owner.uid, owner.gid);
  await chmod(dest, mode ?? 0o600);
  const lm = res.headers.get('last-modified');
  if (lm) await utimes(dest, new Date(lm), new Date(lm));
}

async function resolveOwner(rootfs: string, spec: string): Promise<{ uid: number; gid: number }> {
  const u = await resolveUser(rootfs, spec);
  // "--chown user" without a group uses the user's primary group, as Docker does.
  return { uid: u.uid, gid: u.gid };
}

export function parseChmod(s: string): number {
  if (!/^[0-7]{3,4}$/.test(s)) throw new Error(`invalid --chmod "${s}": expected an octal mode such as 0755`);
  return parseInt(s, 8);
}

async function isDirIn(rootfs: string, p: string): Promise<boolean> {
  const st = await stat(await resolveInRoot(rootfs, p)).catch(() => null);
  return !!st?.isDirectory();
}

/** mkdir -p inside the rootfs, each component resolved within it. */
async function mkdirInRoot(rootfs: string, p: string): Promise<void> {
  let cur = '/';
  for (const part of p.split('/').filter(Boolean)) {
    cur = posix.join(cur, part);
    const host = await resolveInRoot(rootfs, cur);
    const st = await lstat(host).catch(() => null);
    if (!st) await mkdirResolved(rootfs, host, cur);
    else if (!st.isDirectory()) throw new Error(`copier: "${cur}" exists in the container and is not a directory`);
  }
}

/**
 * Creates a path resolveInRoot returned. A symlink (e.g. /evil -> /some/dir) can resolve to a
 * place whose parents are missing too; they are made one at a time, and anything found on the
 * way that is not a real directory (a symlink swapped in, a file) stops us rather than being followed.
 */
async function mkdirResolved(rootfs: string, host: string, shown: string): Promise<void> {
  const root = resolvePath(rootfs);
  const rel = relative(root, host);
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) throw new Error(`copier: "${shown}" resolves outside the container`);
  let cur = root;
  for (const c of rel.split('/')) {
    cur = join(cur, c);
    const st = await lstat(cur).catch(() => null);
    if (!st) await mkdir(cur, { mode: 0o755 });
    else if (!st.isDirectory()) throw new Error(`copier: "${shown}" exists in the container and is not a directory`);
  }
}
