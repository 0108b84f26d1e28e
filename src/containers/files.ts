// `podman cp`, `podman diff` and `podman export`: the container's files, for running and stopped
// containers alike. Paths inside the container are resolved with resolveInRoot, so a symlink in the
// container never leads out of its root filesystem.

import { constants as fsc, createWriteStream, type Stats } from 'node:fs';
import { chmod, copyFile, lchown, lstat, lutimes, mkdir, readdir, readlink, realpath, rm, stat, symlink, unlink, utimes } from 'node:fs/promises';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Store } from '../store/store.ts';
import { lstatOrNull, resolveInRoot } from '../store/secure-path.ts';
import { tarDirectory } from '../store/tar-diff.ts';
import { resolveUser } from '../runtime/user.ts';
import { exec } from '../sys/exec.ts';
import { loadContainer, type Container } from './record.ts';
import { ContainerError, isRunning } from './lifecycle.ts';

/**
 * Runs `fn` with the container's root filesystem mounted, under the container's lock so that a
 * start, stop or cleanup does not change the mount meanwhile. A stopped container's rootfs is
 * unmounted again afterwards when it was not mounted before.
 */
export async function withRootfs<T>(store: Store, c: Container, fn: (rootfs: string) => Promise<T>): Promise<T> {
  return store.withLock(`container:${c.record.id}`, async () => {
    const cur = loadContainer(store, c.record.id);
    const wasMounted = store.isMounted(cur.record);
    const rootfs = await store.mountContainer(cur.record);
    try {
      return await fn(rootfs);
    } finally {
      if (!wasMounted && !isRunning(store, loadContainer(store, cur.record.id))) await store.unmountContainer(cur.record).catch(() => undefined);
    }
  });
}

// ---------- cp ----------

export interface CopyTarget {
  /** null: the host. */
  container: string | null;
  path: string;
}

/** `CONTAINER:PATH` or a host path; host paths that contain a colon must start with / or . */
export function parseCopyTarget(arg: string): CopyTarget {
  if (arg.startsWith('/') || arg.startsWith('.')) return { container: null, path: arg };
  const i = arg.indexOf(':');
  if (i <= 0) return { container: null, path: arg };
  return { container: arg.slice(0, i), path: arg.slice(i + 1) };
}

interface Owner {
  uid: number;
  gid: number;
}

interface CopyOptions {
  /** Who owns what is copied; null keeps the source's ids (cp --archive=false into a container). */
  owner: Owner | null;
  /** cp --overwrite: a directory may replace a non-directory and the other way round. */
  overwrite: boolean;
  /** The destination path as the user names it (in the container's terms), for errors. */
  shown: (host: string) => string;
  /** "copying to container" or "copying from container", the first words of Podman's errors. */
  direction: string;
}

/** Copies src (never following symlinks below it) to dst; a non-directory at dst is replaced. */
async function copyEntry(src: string, dst: string, o: CopyOptions, st?: Stats): Promise<void> {
  const s = st ?? (await lstat(src));
  const d = await lstatOrNull(dst);
  const clash = (how: string): ContainerError => new ContainerError(`${o.direction}: copier: put: error creating "${o.shown(dst)}": ${how}: file exists`);
  if (s.isDirectory()) {
    if (d && !d.isDirectory()) {
      if (!o.overwrite) throw clash(`mkdir ${o.shown(dst)}`);
      await unlink(dst);
    }
    if (!d || !d.isDirectory()) await mkdir(dst, { mode: 0o700 });
    for (const name of (await readdir(src)).sort()) await copyEntry(path.join(src, name), path.join(dst, name), o);
  } else {
    if (d?.isDirectory()) {
      if (!o.overwrite) throw clash(`copier: put: error creating file at "${o.shown(dst)}": open ${o.shown(dst)}`);
      await rm(dst, { recursive: true });
    } else if (d) await unlink(dst);
    if (s.isSymbolicLink()) await symlink(await readlink(src), dst);
    else if (s.isFile()) await copyFile(src, dst, fsc.COPYFILE_EXCL);
    else await exec('cp', ['-a', '--no-dereference', '--', src, dst]);
  }
  const owner = o.owner ?? { uid: s.uid, gid: s.gid };
  await lchown(dst, owner.uid, owner.gid);
  if (s.isSymbolicLink()) {
    await lutimes(dst, s.atime, s.mtime).catch(() => undefined);
    return;
  }
  await chmod(dst, s.mode & 0o7777);
  await utimes(dst, s.atime, s.mtime);
}

/** Trailing "/." copies a directory's content; otherwise the last component names what is copied. */
function baseName(p: string): string {
  return path.posix.basename(path.posix.normalize(`/${p}`)) || '/';
}

export interface CopyFlags {
  /** --archive (default true): copies into a container are owned by its user, else keep the source's ids. */
  archive?: boolean;
  /** --overwrite: let a directory and a non-directory replace each other. */
  overwrite?: boolean;
}

/**
 * `podman cp SRC DEST` where one side is CONTAINER:PATH. Copies into a container are owned by the
 * container's user (unless --archive=false); copies out by the user running barge, as Podman's.
 */
export async function copyFiles(store: Store, srcArg: string, dstArg: string, flags: CopyFlags = {}): Promise<void> {
  const src = parseCopyTarget(srcArg);
  const dst = parseCopyTarget(dstArg);
  if (src.container !== null && dst.container !== null) throw new ContainerError('copying between containers is not supported');
  if (src.container === null && dst.container === null) throw new ContainerError('invalid arguments: one of SRC and DEST must be CONTAINER:PATH');
  if (src.path === '-' || dst.path === '-') throw new ContainerError('copying a tar stream from stdin or to stdout ("-") is not supported');
  const c = loadContainer(store, (src.container ?? dst.container)!);
  await withRootfs(store, c, async (rootfs) => {
    let srcHost: string;
    let dstHost: string;
    let o: CopyOptions;
    const overwrite = flags.overwrite ?? false;
    if (src.container !== null) {
      srcHost = await resolveInRoot(rootfs, src.path);
      dstHost = path.resolve(dst.path);
      o = { owner: { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 }, overwrite, shown: (p) => p, direction: 'copying from container' };
    } else {
      // A host source that is a symlink: its target is copied, as Podman does.
      srcHost = await realpath(src.path).catch(() => path.resolve(src.path));
      dstHost = await resolveInRoot(rootfs, dst.path);
      const u = flags.archive === false ? null : await resolveUser(rootfs, c.data.config.user).catch(() => ({ uid: 0, gid: 0 }));
      o = { owner: u && { uid: u.uid, gid: u.gid }, overwrite, shown: (p) => `/${path.relative(rootfs, p)}`, direction: 'copying to container' };
    }
    const s = await lstatOrNull(srcHost);
    if (!s) throw new ContainerError(`"${src.path}" could not be found on the ${src.container !== null ? 'container' : 'host'}: no such file or directory`);
    const d = src.container !== null ? await stat(dstHost).catch(() => null) : await lstatOrNull(dstHost);
    const contentOnly = /(^|\/)\.$/.test(src.path);
    if (s.isDirectory()) {
      if (d && !d.isDirectory()) throw new ContainerError('destination must be a directory when copying a directory');
      if (!d) {
        if (!(await lstatOrNull(path.dirname(dstHost)))?.isDirectory()) throw new ContainerError(`"${path.posix.dirname(dst.path)}" could not be found: no such file or directory`);
        await copyEntry(srcHost, dstHost, o, s);
      } else if (contentOnly) {
        for (const name of (await readdir(srcHost)).sort()) await copyEntry(path.join(srcHost, name), path.join(dstHost, name), o);
      } else await copyEntry(srcHost, path.join(dstHost, baseName(src.path)), o, s);
      return;
    }
    if (d?.isDirectory()) {
      await copyEntry(srcHost, path.join(dstHost, baseName(src.path)), o, s);
      return;
    }
    if (dst.path.endsWith('/')) throw new ContainerError(`"${dst.path}" could not be found: no such file or directory`);
    if (!d && !(await lstatOrNull(path.dirname(dstHost)))?.isDirectory()) {
      throw new ContainerError(`"${path.posix.dirname(dst.path)}" could not be found: no such file or directory`);
    }
    await copyEntry(srcHost, dstHost, o, s);
  });
}

// ---------- diff ----------

export interface Change {
  kind: 'A' | 'C' | 'D';
  path: string;
}

const isWhiteout = (s: Stats): boolean => s.isCharacterDevice() && s.rdev === 0;

/**
 * Mount points the runtime creates in every container (and their parents), which Podman's diff
 * leaves out: they are not the container's changes, and an export must not carry them.
 */
const INIT_INODES = new Set([
  '/dev', '/etc/hostname', '/etc/hosts', '/etc/resolv.conf', '/proc', '/run', '/run/notify', '/run/.containerenv', '/run/secrets', '/sys', '/etc/mtab',
]);

/** `podman diff`: A added, C changed, D deleted, relative to the image, sorted by path. */
export async function diffContainer(store: Store, ref: string): Promise<Change[]> {
  const c = loadContainer(store, ref);
  const out: Change[] = [];
  if (store.driver === 'vfs') {
    // vfs keeps full copies: compare the container's tree with its image's top layer.
    const merged = store.upperDir(c.record);
    const lower = c.record.topLayer ? store.layerDir(c.record.topLayer) : null;
    if (!(await lstatOrNull(merged))) return [];
    await compareTrees(merged, lower, '', out);
  } else {
    const upper = store.upperDir(c.record);
    await store.ensureLayerTrees(c.record.topLayer);
    const lowers = store.layerChain(c.record.topLayer).reverse().map((l) => store.layerDir(l.id));
    const inLower = async (rel: string): Promise<boolean> => {
      for (const dir of lowers) {
        const st = await lstatOrNull(path.join(dir, rel));
        if (st) return !isWhiteout(st);
      }
      return false;
    };
    const walk = async (rel: string): Promise<void> => {
      let names: string[];
      try {
        names = await readdir(path.join(upper, rel));
      } catch {
        return;
      }
      for (const name of names) {
        const r = rel === '' ? name : `${rel}/${name}`;
        const st = await lstat(path.join(upper, r));
        if (isWhiteout(st)) {
          out.push({ kind: 'D', path: `/${r}` });
          continue;
        }
        out.push({ kind: (await inLower(r)) ? 'C' : 'A', path: `/${r}` });
        if (st.isDirectory()) await walk(r);
      }
    };
    await walk('');
  }
  return out.filter((ch) => !INIT_INODES.has(ch.path)).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

async function compareTrees(cur: string, base: string | null, rel: string, out: Change[]): Promise<void> {
  const names = new Set(await readdir(path.join(cur, rel)).catch(() => [] as string[]));
  const baseNames = base ? await readdir(path.join(base, rel)).catch(() => [] as string[]) : [];
  for (const n of baseNames) if (!names.has(n)) out.push({ kind: 'D', path: `/${rel === '' ? n : `${rel}/${n}`}` });
  for (const n of names) {
    const r = rel === '' ? n : `${rel}/${n}`;
    const a = await lstat(path.join(cur, r));
    const b = base ? await lstatOrNull(path.join(base, r)) : null;
    if (!b) out.push({ kind: 'A', path: `/${r}` });
    else if (
      (a.mode & fsc.S_IFMT) !== (b.mode & fsc.S_IFMT) || a.mode !== b.mode || a.uid !== b.uid || a.gid !== b.gid ||
      (!a.isDirectory() && (a.size !== b.size || a.mtimeMs !== b.mtimeMs)) || (a.isDirectory() && a.mtimeMs !== b.mtimeMs)
    ) out.push({ kind: 'C', path: `/${r}` });
    if (a.isDirectory()) await compareTrees(cur, b?.isDirectory() ? base : null, r, out);
  }
}

// ---------- size ----------

/**
 * What a tree holds as containers/storage counts it (directory.Usage): the sizes of everything but
 * directories, a file with several hard links once.
 */
async function treeUsage(dir: string): Promise<number> {
  const seen = new Set<string>();
  let size = 0;
  const walk = async (d: string): Promise<void> => {
    const names = await readdir(d).catch(() => [] as string[]);
    for (const n of names) {
      const st = await lstatOrNull(path.join(d, n));
      if (!st) continue;
      const key = `${st.dev}:${st.ino}`;
      if (seen.has(key)) continue;
      seen.add(key);
      if (st.isDirectory()) await walk(path.join(d, n));
      else size += st.size;
    }
  };
  await walk(dir);
  return size;
}

/** Podman's ps --size figures (and its JSON's keys). */
export interface ContainerSize {
  rootFsSize: number;
  rwSize: number;
}

/**
 * `ps --size`: the container's own writes (its upper layer) and its image's layers, each counted
 * as Podman counts them (its rootFsSize leaves the upper layer out).
 */
export async function containerSize(store: Store, c: Container): Promise<ContainerSize> {
  const top = store.layerChain(c.record.topLayer);
  let rootFsSize = 0;
  // vfs keeps each layer (and the container) as a full tree: the top layer alone is the image.
  for (const l of store.driver === 'vfs' ? top.slice(-1) : top) {
    const dir = store.layerDir(l.id);
    rootFsSize += (await lstatOrNull(dir)) ? await treeUsage(dir) : l.diffSize;
  }
  const rw = await treeUsage(store.upperDir(c.record));
  return { rootFsSize, rwSize: store.driver === 'vfs' ? Math.max(0, rw - rootFsSize) : rw };
}

// ---------- export ----------

/** `podman export`: a tar of the container's whole root filesystem. */
export async function exportContainer(store: Store, ref: string, dest: Writable | string): Promise<void> {
  const c = loadContainer(store, ref);
  await withRootfs(store, c, async (rootfs) => {
    const out = typeof dest === 'string' ? createWriteStream(dest, { mode: 0o644 }) : dest;
    try {
      await pipeline(tarDirectory(rootfs), out, { end: typeof dest === 'string' });
    } catch (e) {
      if (typeof dest === 'string') await rm(dest, { force: true });
      throw e;
    }
  });
}
