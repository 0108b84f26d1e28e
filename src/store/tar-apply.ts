import {
  chmodSync, closeSync, constants as fsc, fchmodSync, fchownSync, futimesSync, lchownSync, linkSync, lstatSync, lutimesSync,
  mkdirSync, openSync, readdirSync, readSync, rmSync, symlinkSync, unlinkSync, type Stats,
} from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { exec } from '../sys/exec.ts';
import { writeAllSync } from '../sys/fd-writer.ts';
import { cleanTarPath, lstatOrNullSync, resolveInRoot } from './secure-path.ts';
import { readTar, type TarHeader } from './tar-reader.ts';

export type WhiteoutMode = 'overlay' | 'apply' | 'none';

export interface ApplyOptions {
  /** Destination directory; must exist. */
  root: string;
  /**
   * 'overlay': `.wh.X` becomes a 0/0 char device X and `.wh..wh..opq` the
   * overlay opaque xattr, so the directory can serve as an overlayfs layer.
   * 'apply': whiteouts delete from root (root already holds the lower layers).
   * 'none': no special names (a user tarball for ADD).
   */
  whiteouts: WhiteoutMode;
  userxattr?: boolean;
  /** Remap ownership, e.g. for --chown on ADD; when absent, tar uid/gid are kept. */
  chown?: { uid: number; gid: number };
  /** Skip lchown entirely (e.g. unprivileged without a userns). */
  noChown?: boolean;
  /**
   * Resolve symlinks found in parent paths inside root (chroot semantics)
   * instead of rejecting the entry. Meant for extracting a user tarball into
   * an existing rootfs (e.g. ADD x.tar / onto a merged-/usr image where
   * /lib -> usr/lib); layers are always applied with the strict default.
   */
  followSymlinks?: boolean;
  onWarning?: (msg: string) => void;
}

export interface ApplyResult {
  entries: number;
  /** Sum of regular file sizes. */
  bytes: number;
}

/**
 * Content of a regular file entry that is not in a tar: an open descriptor of a host file (COPY),
 * read from its start up to the size in the header.
 */
export interface HostFile {
  fd: number;
}

/**
 * A tar header, or as much of one as an entry needs (a name, and a type unless it is unknown).
 * Its pax records are not looked at: the reader has applied the ones that matter, and xattrs
 * (SCHILY.xattr.*, security.capability included) are deliberately not applied.
 */
export type EntryHeader = Pick<TarHeader, 'name'> & Partial<TarHeader>;

interface DirMeta {
  host: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: Date | null;
}

/** Copy buffer for host-file content; one is enough, every write is synchronous. */
let copyBuffer: Buffer | null = null;

/**
 * Unpacks an (uncompressed) tar stream into opts.root. The tar is treated as
 * hostile: nothing is ever written outside root, and on error the partially
 * written root must be discarded by the caller.
 */
export async function applyTar(input: NodeJS.ReadableStream | Readable, opts: ApplyOptions): Promise<ApplyResult> {
  const writer = new TreeWriter(opts);
  // The regular file being written, from its header to the end of its body.
  let fd: number | null = null;
  let file: TarHeader | null = null;
  try {
    // Read by async iteration, which also reports a source destroyed before its end.
    await readTar(input, {
      entry: async (header) => {
        fd = await writer.begin(header);
        file = header;
        return fd !== null;
      },
      data: (buf, start, end) => writeAllSync(fd!, buf, start, end),
      end: () => {
        const done = fd!;
        fd = null;
        writer.endFile(done, file!, file!.size);
      },
    });
    writer.finish();
  } catch (err) {
    if (fd !== null) closeSync(fd);
    // Stop the producer too, so a download feeding a bad layer does not run to completion.
    if ('destroy' in input && typeof input.destroy === 'function') input.destroy();
    throw err instanceof Error ? err : new Error(String(err));
  }
  return writer.result();
}

/**
 * Creates the entries of a layer, a tar or a copied tree under a root, one at a time, never
 * writing outside it. Filesystem calls are synchronous on purpose: a layer is tens of thousands
 * of tiny calls, and a thread-pool round trip (plus a promise) for each cost more than the calls
 * themselves; the callers have nothing else to do meanwhile but receive more input.
 */
export class TreeWriter {
  private readonly root: string;
  private entries = 0;
  private bytes = 0;
  /** Relative paths checked to be real directories; lets deep trees skip re-walking every parent. */
  private readonly realDirs = new Set<string>(['']);
  /** Paths this tar created, so an opaque marker in 'apply' mode removes only what lower layers had. */
  private readonly created: Set<string> | null;
  /** Directory metadata is applied last: creating children would bump mtimes, and a read-only mode could block them. */
  private readonly dirMeta = new Map<string, DirMeta>();
  private readonly isRoot = process.getuid?.() === 0;

  private readonly opts: ApplyOptions;

  constructor(opts: ApplyOptions) {
    this.opts = opts;
    this.root = path.resolve(opts.root);
    this.created = opts.whiteouts === 'apply' ? new Set() : null;
  }

  result(): ApplyResult {
    return { entries: this.entries, bytes: this.bytes };
  }

  /** Creates one entry; a regular file gets the content of `content`, up to the header's size. */
  async entry(header: EntryHeader, content: HostFile | null): Promise<void> {
    const fd = await this.begin(header);
    if (fd === null) return;
    let written = 0;
    try {
      if (content !== null) written = copyFrom(content.fd, fd, header.size ?? 0);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    this.endFile(fd, header, written);
  }

  /**
   * Starts one entry. A regular file is created empty and its descriptor returned: the caller
   * writes the content, then hands it to endFile (or closes it on failure). Every other entry
   * is complete on return, and yields null.
   */
  async begin(header: EntryHeader): Promise<number | null> {
    this.entries++;
    const name = cleanTarPath(header.name);
    if (name === null) throw new Error(`layer entry "${header.name}" escapes the layer root`);
    // Typeflags the reader does not know (GNU sparse, volume labels) come as null.
    const type: string = header.type ?? 'unknown';
    const slash = name.lastIndexOf('/');
    const dirRel = slash < 0 ? '' : name.slice(0, slash);
    const base = slash < 0 ? name : name.slice(slash + 1);

    if (this.opts.whiteouts !== 'none' && base.startsWith('.wh.')) {
      await this.whiteoutEntry(name, dirRel, base);
      return null;
    }

    if (name === '') {
      if (type !== 'directory') throw new Error(`layer entry "${header.name}" (${type}) would replace the layer root`);
      // Like Docker, ignore "./": a tarball made with `tar -C dir .` would otherwise
      // impose its build directory's mode (often 0700) on / or on the ADD destination.
      return null;
    }

    switch (type) {
      case 'file':
      case 'contiguous-file': {
        // O_EXCL: never opens what is already there, be it a symlink or a hardlink to a file we must not touch.
        // Everything after the open goes through the descriptor, so later entries cannot redirect it.
        return (await this.create(name, dirRel, false, (host) => openSync(host, 'wx', 0o600))).value;
      }
      case 'directory': {
        const { host } = await this.create(name, dirRel, true, (h) => {
          mkdirSync(h, { mode: 0o755 });
          this.realDirs.add(name);
        });
        this.dirMeta.set(name, this.metaFor(header, host));
        return null;
      }
      case 'symlink': {
        const target = header.linkname ?? '';
        if (target === '') throw new Error(`layer entry "${header.name}" is a symlink without a target`);
        // The target is kept verbatim: it is resolved inside the container, and we never follow it here.
        const { host } = await this.create(name, dirRel, false, (h) => symlinkSync(target, h));
        this.setMeta(name, host, header, false);
        return null;
      }
      case 'link': {
        await this.hardlink(header, name, dirRel);
        return null;
      }
      case 'fifo': {
        const host = await this.prepare(name, dirRel);
        // Node has no mkfifo binding.
        await exec('mkfifo', ['-m', '0600', '--', host]);
        this.setMeta(name, host, header, true);
        return null;
      }
      case 'character-device':
      case 'block-device': {
        await this.device(header, name, dirRel, type);
        return null;
      }
      default:
        this.warn(`skipping layer entry "${header.name}": unsupported tar entry type ${type}`);
        return null;
    }
  }

  /** Completes a regular file begin() opened, with `written` bytes of content: owner, mode and time, then close. */
  endFile(fd: number, header: EntryHeader, written: number): void {
    this.bytes += written;
    try {
      const { uid, gid } = this.owner(header);
      if (!this.opts.noChown) this.guardChown(header.name, uid, gid, () => fchownSync(fd, uid, gid));
      // After chown, which clears setuid/setgid bits.
      fchmodSync(fd, (header.mode ?? 0o644) & 0o7777);
      const mtime = this.mtime(header);
      if (mtime) futimesSync(fd, mtime, mtime);
    } finally {
      closeSync(fd);
    }
  }

  /** Applies the directory metadata held back while the tree was written; call once at the end. */
  finish(): void {
    const checked = new Set<string>();
    for (const [rel, meta] of this.dirMeta) this.applyDirMeta(rel, meta, checked);
  }

  private applyDirMeta(rel: string, meta: DirMeta, checked: Set<string>): void {
    // A later entry may have replaced this directory or one of its parents
    // (with a symlink, even); its metadata is then moot and must not be
    // applied through whatever is there now.
    if (!this.isRealDirPath(meta.host, checked)) return;
    // Through a descriptor opened without following the last component: chmod(2) on a path would follow a symlink.
    let fd: number;
    try {
      fd = openSync(meta.host, fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') return;
      throw err;
    }
    try {
      if (!this.opts.noChown) this.guardChown(rel, meta.uid, meta.gid, () => fchownSync(fd, meta.uid, meta.gid));
      fchmodSync(fd, meta.mode);
      if (meta.mtime) futimesSync(fd, meta.mtime, meta.mtime);
    } finally {
      closeSync(fd);
    }
  }

  /** Whether every component of host below root is a real directory, itself included. */
  private isRealDirPath(host: string, checked: Set<string>): boolean {
    const rel = path.relative(this.root, host);
    if (rel === '..' || rel.startsWith('../') || path.isAbsolute(rel)) return false;
    let cur = this.root;
    for (const component of rel === '' ? [] : rel.split('/')) {
      cur = under(cur, component);
      if (checked.has(cur)) continue;
      const st = lstatOrNullSync(cur);
      if (st === null || !st.isDirectory()) return false;
      checked.add(cur);
    }
    return true;
  }

  private host(rel: string): string {
    return rel === '' ? this.root : under(this.root, rel);
  }

  private warn(msg: string): void {
    this.opts.onWarning?.(msg);
  }

  private async whiteoutEntry(name: string, dirRel: string, base: string): Promise<void> {
    if (base === '.wh..wh..opq') {
      await this.opaque(name, dirRel);
      return;
    }
    // Other `.wh..wh.` names are aufs bookkeeping (hardlink dirs, plink) with no meaning for us.
    if (base.startsWith('.wh..wh.')) return;
    const target = base.slice(4);
    if (target === '' || target === '.' || target === '..') throw new Error(`layer entry "${name}" is an invalid whiteout`);
    const targetRel = dirRel === '' ? target : `${dirRel}/${target}`;

    if (this.opts.whiteouts === 'overlay') {
      const host = await this.prepare(targetRel, dirRel);
      await exec('mknod', [host, 'c', '0', '0']);
      return;
    }
    const parent = await this.checkParent(targetRel, dirRel, false);
    if (parent === null) return;
    const host = path.join(parent, target);
    const st = lstatOrNullSync(host);
    if (st === null) return;
    if (st.isDirectory()) {
      rmSync(host, { recursive: true, force: true });
      this.forget(targetRel);
    } else {
      unlinkSync(host);
    }
  }

  private async opaque(name: string, dirRel: string): Promise<void> {
    const dirHost = await this.checkParent(name, dirRel, true);
    if (dirHost === null) return;
    if (this.opts.whiteouts === 'overlay') {
      const attr = this.opts.userxattr ? 'user.overlay.opaque' : 'trusted.overlay.opaque';
      await exec('setfattr', ['-h', '-n', attr, '-v', 'y', dirHost]);
      return;
    }
    this.emptyExceptCreated(dirRel, dirHost);
  }

  private emptyExceptCreated(rel: string, host: string): void {
    for (const child of readdirSync(host)) {
      const childRel = rel === '' ? child : `${rel}/${child}`;
      const childHost = path.join(host, child);
      if (this.created?.has(childRel)) {
        // A directory this tar recreated still hides whatever the lower layers had inside it.
        if (lstatSync(childHost).isDirectory()) this.emptyExceptCreated(childRel, childHost);
        continue;
      }
      rmSync(childHost, { recursive: true, force: true });
      this.forget(childRel);
    }
  }

  /**
   * Makes sure every component of dirRel is a real directory (creating
   * missing ones) and returns its host path. Without followSymlinks a symlink
   * component is fatal: writing through it is exactly how a layer escapes.
   * With create=false a missing component yields null.
   */
  private async checkParent(name: string, dirRel: string, create: boolean): Promise<string | null> {
    if (this.opts.followSymlinks) {
      const host = await resolveInRoot(this.root, dirRel);
      const st = lstatOrNullSync(host);
      if (st === null) {
        if (!create) return null;
        // resolveInRoot leaves only non-existent components unresolved, so nothing below can be a symlink.
        mkdirSync(host, { recursive: true, mode: 0o755 });
      } else if (!st.isDirectory()) {
        throw new Error(`layer entry "${name}": parent "${dirRel}" is not a directory`);
      }
      return host;
    }

    if (this.realDirs.has(dirRel)) return this.host(dirRel);
    let rel = '';
    for (const component of dirRel.split('/')) {
      rel = rel === '' ? component : `${rel}/${component}`;
      if (this.realDirs.has(rel)) continue;
      const host = this.host(rel);
      const st = lstatOrNullSync(host);
      if (st === null) {
        if (!create) return null;
        mkdirSync(host, { mode: 0o755 });
        // mkdir's mode is filtered by the umask.
        chmodSync(host, 0o755);
        this.created?.add(rel);
      } else if (st.isSymbolicLink()) {
        throw new Error(`layer entry "${name}" would write through symlink "${rel}"`);
      } else if (!st.isDirectory()) {
        throw new Error(`layer entry "${name}": parent "${rel}" is not a directory`);
      }
      this.realDirs.add(rel);
    }
    return this.host(dirRel);
  }

  /** Clears the final path for entries made by external commands, which cannot report EEXIST to create(). */
  private async prepare(name: string, dirRel: string): Promise<string> {
    const parent = await this.checkParent(name, dirRel, true);
    const host = under(parent!, name.slice(name.lastIndexOf('/') + 1));
    // Also for directories that already existed: under an opaque marker their old content must still go.
    this.created?.add(name);
    const st = lstatOrNullSync(host);
    if (st !== null) this.remove(name, host, st);
    return host;
  }

  /**
   * Creates the entry with `make`, which must fail with EEXIST rather than
   * reuse an existing path. Something already there is replaced, except that
   * an existing directory stays for a directory entry (make is not called).
   * Trying first and looking second saves a failing lstat on every entry of
   * a fresh layer.
   */
  private async create<T>(name: string, dirRel: string, isDir: boolean, make: (host: string) => T): Promise<{ host: string; value: T }> {
    const parent = await this.checkParent(name, dirRel, true);
    const host = under(parent!, name.slice(name.lastIndexOf('/') + 1));
    // Also for directories that already existed: under an opaque marker their old content must still go.
    this.created?.add(name);
    try {
      return { host, value: make(host) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const st = lstatSync(host);
    // Only directory entries get here, and their make() yields nothing.
    if (isDir && st.isDirectory()) return { host, value: undefined as T };
    this.remove(name, host, st);
    return { host, value: make(host) };
  }

  private remove(rel: string, host: string, st: Stats): void {
    if (st.isDirectory()) {
      rmSync(host, { recursive: true, force: true });
      this.forget(rel);
    } else {
      unlinkSync(host);
    }
  }

  /** Drops cached knowledge about a removed subtree. */
  private forget(rel: string): void {
    const prefix = `${rel}/`;
    for (const set of [this.realDirs, this.dirMeta]) {
      for (const key of set.keys()) {
        if (key === rel || key.startsWith(prefix)) set.delete(key);
      }
    }
  }

  private async hardlink(header: EntryHeader, name: string, dirRel: string): Promise<void> {
    const targetRel = cleanTarPath(header.linkname ?? '');
    if (targetRel === null || targetRel === '') {
      throw new Error(`hardlink "${header.name}" -> "${header.linkname ?? ''}" points outside the layer`);
    }
    if (targetRel === name) return;
    const tSlash = targetRel.lastIndexOf('/');
    const tDir = tSlash < 0 ? '' : targetRel.slice(0, tSlash);
    const targetParent = await this.checkParent(targetRel, tDir, false).catch(() => null);
    const targetHost = targetParent === null ? null : path.join(targetParent, path.posix.basename(targetRel));
    const st = targetHost === null ? null : lstatOrNullSync(targetHost);
    if (targetHost === null || st === null || st.isDirectory()) {
      throw new Error(`hardlink "${header.name}" -> "${header.linkname ?? ''}" points outside the layer (target missing or a directory)`);
    }
    // link(2) on Linux does not follow a symlink target, so this links the entry itself.
    await this.create(name, dirRel, false, (h) => linkSync(targetHost, h));
  }

  private async device(header: EntryHeader, name: string, dirRel: string, type: 'character-device' | 'block-device'): Promise<void> {
    const major = header.devmajor ?? 0;
    const minor = header.devminor ?? 0;
    const isWhiteout = type === 'character-device' && major === 0 && minor === 0 && this.opts.whiteouts === 'overlay';
    if (!isWhiteout && !this.isRoot) {
      this.warn(`skipping device node "${header.name}": creating devices needs root`);
      return;
    }
    const host = await this.prepare(name, dirRel);
    try {
      await exec('mknod', [host, type === 'character-device' ? 'c' : 'b', String(major), String(minor)]);
    } catch (err) {
      // Root inside a user namespace may not create real devices; the image still works without them.
      if (isWhiteout) throw err;
      this.warn(`skipping device node "${header.name}": ${(err as Error).message}`);
      return;
    }
    this.setMeta(name, host, header, true);
  }

  private owner(header: EntryHeader): { uid: number; gid: number } {
    if (this.opts.chown) return this.opts.chown;
    const uid = header.uid ?? 0;
    const gid = header.gid ?? 0;
    return { uid: Number.isFinite(uid) ? uid : 0, gid: Number.isFinite(gid) ? gid : 0 };
  }

  private mtime(header: EntryHeader): Date | null {
    const t = header.mtime;
    return t && !Number.isNaN(t.getTime()) ? t : null;
  }

  private metaFor(header: EntryHeader, host: string): DirMeta {
    return { host, ...this.owner(header), mode: (header.mode ?? 0o755) & 0o7777, mtime: this.mtime(header) };
  }

  private setMeta(name: string, host: string, header: EntryHeader, withMode: boolean): void {
    const { uid, gid } = this.owner(header);
    if (!this.opts.noChown) this.guardChown(name, uid, gid, () => lchownSync(host, uid, gid));
    // After chown, which clears setuid/setgid bits.
    if (withMode) chmodSync(host, (header.mode ?? 0o644) & 0o7777);
    const mtime = this.mtime(header);
    if (mtime) lutimesSync(host, mtime, mtime);
  }

  /** `name` may be uncleaned (endFile has only the header): it is cleaned for the message. */
  private guardChown(name: string, uid: number, gid: number, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EINVAL') {
        throw new Error(
          `cannot give layer entry "${cleanTarPath(name) ?? name}" owner ${uid}:${gid}: id not mapped in this user namespace (not enough subordinate ids?)`,
        );
      }
      throw err;
    }
  }
}

/**
 * path.join of a normalised absolute path and a clean relative one (no empty, "." or ".."
 * components, as cleanTarPath gives), without join's normalising pass: a layer has thousands
 * of entries, and that pass was the costliest part of placing each.
 */
function under(dir: string, rel: string): string {
  return dir === '/' ? `/${rel}` : `${dir}/${rel}`;
}

/** Copies up to `size` bytes of a host file into fd; a file that shrank meanwhile gives what it has. */
function copyFrom(src: number, fd: number, size: number): number {
  const buf = (copyBuffer ??= Buffer.allocUnsafe(1 << 20));
  let done = 0;
  while (done < size) {
    const n = readSync(src, buf, 0, Math.min(buf.length, size - done), done);
    if (n === 0) break;
    writeAllSync(fd, buf.subarray(0, n));
    done += n;
  }
  return done;
}
