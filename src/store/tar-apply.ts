import { constants as fsc, type Stats } from 'node:fs';
import { chmod, lchown, link, lstat, lutimes, mkdir, open, readdir, rm, symlink, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import tar from 'tar-stream';
import type { Header } from 'tar-stream';
import { exec } from '../sys/exec.ts';
import { cleanTarPath, lstatOrNull, resolveInRoot } from './secure-path.ts';

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

/** Entry body as tar-stream hands it over (a streamx stream, async iterable like node's). */
type EntryBody = AsyncIterable<unknown>;

interface DirMeta {
  host: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: Date | null;
}

/** Background file completions allowed at once (each holds a descriptor and up to HOLD_LIMIT bytes). */
const MAX_IN_FLIGHT = 32;
/** Bodies up to this size are written in the background; larger ones are written as they arrive. */
const HOLD_LIMIT = 256 * 1024;

const TRUNCATED_MESSAGE = 'unexpected end of layer data (the tar stream is truncated)';

/**
 * Unpacks an (uncompressed) tar stream into opts.root. The tar is treated as
 * hostile: nothing is ever written outside root, and on error the partially
 * written root must be discarded by the caller.
 */
export function applyTar(input: NodeJS.ReadableStream | Readable, opts: ApplyOptions): Promise<ApplyResult> {
  const applier = new Applier(opts);
  const extract = tar.extract();
  return new Promise<ApplyResult>((resolve, reject) => {
    let settled = false;
    const fail = (err: unknown): void => {
      if (settled) return;
      settled = true;
      reject(normaliseError(err));
      extract.destroy();
      // Stop the producer too, so a download feeding a bad layer does not run to completion.
      if ('destroy' in input && typeof input.destroy === 'function') input.destroy();
    };

    let extractError: Error | null = null;
    extract.on('entry', (header, stream, next) => {
      // The body may be destroyed (truncated input) before anything reads it; that
      // surfaces through our reads, and must not become an uncaught 'error' event.
      stream.on('error', () => {});
      if (settled) {
        stream.resume();
        return;
      }
      // A body torn down by the extractor reports a vaguer error than the extractor's own.
      applier.entry(header, stream).then(
        () => next(),
        (err: unknown) => fail(extractError ?? err),
      );
    });
    extract.on('finish', () => {
      if (settled) return;
      applier.finish().then(() => {
        if (settled) return;
        settled = true;
        resolve(applier.result());
      }, fail);
    });
    extract.on('error', (err: Error) => {
      extractError = err;
      fail(err);
    });

    // Fed by hand rather than with pipe(): async iteration also reports a
    // source destroyed before its end, which pipe() would silently wait on.
    const feed = async (): Promise<void> => {
      for await (const chunk of input as AsyncIterable<Buffer | string>) {
        if (settled) return;
        if (!extract.write(typeof chunk === 'string' ? Buffer.from(chunk) : chunk)) await writable(extract);
      }
      if (!settled) extract.end(null);
    };
    feed().catch(fail);
  });
}

/** Resolves once a backpressured writable drains, or is gone. */
function writable(w: tar.Extract): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      w.off('drain', done);
      w.off('close', done);
      resolve();
    };
    w.on('drain', done);
    w.on('close', done);
  });
}

function normaliseError(err: unknown): Error {
  if (err instanceof Error) {
    // tar-stream's wording for a stream ending inside a header or an entry body.
    if (err.message === 'Unexpected end of data') return new Error(TRUNCATED_MESSAGE);
    return err;
  }
  return new Error(String(err));
}

class Applier {
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
  private readonly inFlight = new Set<Promise<void>>();
  private backgroundError: Error | null = null;

  private readonly opts: ApplyOptions;

  constructor(opts: ApplyOptions) {
    this.opts = opts;
    this.root = path.resolve(opts.root);
    this.created = opts.whiteouts === 'apply' ? new Set() : null;
  }

  result(): ApplyResult {
    return { entries: this.entries, bytes: this.bytes };
  }

  async entry(header: Header, stream: EntryBody): Promise<void> {
    if (this.backgroundError !== null) throw this.backgroundError;
    this.entries++;
    const name = cleanTarPath(header.name);
    if (name === null) throw new Error(`layer entry "${header.name}" escapes the layer root`);
    // tar-stream reports typeflags it does not know (GNU sparse, volume labels) as null.
    const type: string = header.type ?? 'unknown';
    const slash = name.lastIndexOf('/');
    const dirRel = slash < 0 ? '' : name.slice(0, slash);
    const base = slash < 0 ? name : name.slice(slash + 1);

    if (this.opts.whiteouts !== 'none' && base.startsWith('.wh.')) {
      await drain(stream);
      await this.whiteoutEntry(name, dirRel, base);
      return;
    }

    if (name === '') {
      await drain(stream);
      if (type !== 'directory') throw new Error(`layer entry "${header.name}" (${type}) would replace the layer root`);
      // Like Docker, ignore "./": a tarball made with `tar -C dir .` would otherwise
      // impose its build directory's mode (often 0700) on / or on the ADD destination.
      return;
    }

    switch (type) {
      case 'file':
      case 'contiguous-file': {
        // O_EXCL: never opens what is already there, be it a symlink or a hardlink to a file we must not touch.
        const { value: fh } = await this.create(name, dirRel, false, (host) => open(host, 'wx', 0o600));
        // Small bodies are held and written together with the metadata in the
        // background: everything after the exclusive open goes through the
        // descriptor, so later entries cannot redirect it, and most files of
        // a layer then cost one waited-for filesystem call instead of six.
        let held: Buffer[] | null = [];
        let heldBytes = 0;
        try {
          for await (const c of stream) {
            const chunk = c as Buffer;
            this.bytes += chunk.length;
            if (held !== null && heldBytes + chunk.length <= HOLD_LIMIT) {
              held.push(chunk);
              heldBytes += chunk.length;
              continue;
            }
            if (held !== null) {
              for (const h of held) await writeAll(fh, h);
              held = null;
            }
            await writeAll(fh, chunk);
          }
        } catch (err) {
          await fh.close();
          throw err;
        }
        const { uid, gid } = this.owner(header);
        const mode = (header.mode ?? 0o644) & 0o7777;
        const mtime = this.mtime(header);
        const pending = held ?? [];
        await this.background(async () => {
          try {
            for (const h of pending) await writeAll(fh, h);
            if (!this.opts.noChown) await this.guardChown(name, uid, gid, () => fh.chown(uid, gid));
            // After chown, which clears setuid/setgid bits.
            await fh.chmod(mode);
            if (mtime) await fh.utimes(mtime, mtime);
          } finally {
            await fh.close();
          }
        });
        return;
      }
      case 'directory': {
        await drain(stream);
        const { host } = await this.create(name, dirRel, true, async (h) => {
          await mkdir(h, { mode: 0o755 });
          this.realDirs.add(name);
        });
        this.dirMeta.set(name, this.metaFor(header, host));
        return;
      }
      case 'symlink': {
        await drain(stream);
        const target = header.linkname ?? '';
        if (target === '') throw new Error(`layer entry "${header.name}" is a symlink without a target`);
        // The target is kept verbatim: it is resolved inside the container, and we never follow it here.
        const { host } = await this.create(name, dirRel, false, (h) => symlink(target, h));
        await this.setMeta(name, host, header, false);
        return;
      }
      case 'link': {
        await drain(stream);
        await this.hardlink(header, name, dirRel);
        return;
      }
      case 'fifo': {
        await drain(stream);
        const host = await this.prepare(name, dirRel);
        // Node has no mkfifo binding.
        await exec('mkfifo', ['-m', '0600', '--', host]);
        await this.setMeta(name, host, header, true);
        return;
      }
      case 'character-device':
      case 'block-device': {
        await drain(stream);
        await this.device(header, name, dirRel, type);
        return;
      }
      default:
        await drain(stream);
        this.warn(`skipping layer entry "${header.name}": unsupported tar entry type ${type}`);
    }
  }

  /** Runs fd-only work off the critical path, with a bounded number in flight. */
  private async background(task: () => Promise<void>): Promise<void> {
    while (this.inFlight.size >= MAX_IN_FLIGHT) await Promise.race(this.inFlight);
    const p: Promise<void> = task()
      .catch((err: unknown) => {
        this.backgroundError ??= err instanceof Error ? err : new Error(String(err));
      })
      .finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }

  async finish(): Promise<void> {
    await Promise.all(this.inFlight);
    if (this.backgroundError !== null) throw this.backgroundError;
    const checked = new Set<string>();
    const dirs = [...this.dirMeta];
    // Independent of each other and done through descriptors, so several at a time.
    await Promise.all(
      Array.from({ length: Math.min(MAX_IN_FLIGHT, dirs.length) }, async () => {
        for (let next = dirs.pop(); next !== undefined; next = dirs.pop()) await this.applyDirMeta(next[0], next[1], checked);
      }),
    );
  }

  private async applyDirMeta(rel: string, meta: DirMeta, checked: Set<string>): Promise<void> {
    // A later entry may have replaced this directory or one of its parents
    // (with a symlink, even); its metadata is then moot and must not be
    // applied through whatever is there now.
    if (!(await this.isRealDirPath(meta.host, checked))) return;
    // Through a descriptor opened without following the last component: chmod(2) on a path would follow a symlink.
    let fh: FileHandle;
    try {
      fh = await open(meta.host, fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') return;
      throw err;
    }
    try {
      if (!this.opts.noChown) await this.guardChown(rel, meta.uid, meta.gid, () => fh.chown(meta.uid, meta.gid));
      await fh.chmod(meta.mode);
      if (meta.mtime) await fh.utimes(meta.mtime, meta.mtime);
    } finally {
      await fh.close();
    }
  }

  /** Whether every component of host below root is a real directory, itself included. */
  private async isRealDirPath(host: string, checked: Set<string>): Promise<boolean> {
    const rel = path.relative(this.root, host);
    if (rel === '..' || rel.startsWith('../') || path.isAbsolute(rel)) return false;
    let cur = this.root;
    for (const component of rel === '' ? [] : rel.split('/')) {
      cur = path.join(cur, component);
      if (checked.has(cur)) continue;
      const st = await lstatOrNull(cur);
      if (st === null || !st.isDirectory()) return false;
      checked.add(cur);
    }
    return true;
  }

  private host(rel: string): string {
    return rel === '' ? this.root : path.join(this.root, rel);
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
    const st = await lstatOrNull(host);
    if (st === null) return;
    if (st.isDirectory()) {
      await rm(host, { recursive: true, force: true });
      this.forget(targetRel);
    } else {
      await unlink(host);
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
    await this.emptyExceptCreated(dirRel, dirHost);
  }

  private async emptyExceptCreated(rel: string, host: string): Promise<void> {
    for (const child of await readdir(host)) {
      const childRel = rel === '' ? child : `${rel}/${child}`;
      const childHost = path.join(host, child);
      if (this.created?.has(childRel)) {
        // A directory this tar recreated still hides whatever the lower layers had inside it.
        const st = await lstat(childHost);
        if (st.isDirectory()) await this.emptyExceptCreated(childRel, childHost);
        continue;
      }
      await rm(childHost, { recursive: true, force: true });
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
      const st = await lstatOrNull(host);
      if (st === null) {
        if (!create) return null;
        // resolveInRoot leaves only non-existent components unresolved, so nothing below can be a symlink.
        await mkdir(host, { recursive: true, mode: 0o755 });
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
      const st = await lstatOrNull(host);
      if (st === null) {
        if (!create) return null;
        await mkdir(host, { mode: 0o755 });
        // mkdir's mode is filtered by the umask.
        await chmod(host, 0o755);
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
    const host = path.join(parent!, path.posix.basename(name));
    // Also for directories that already existed: under an opaque marker their old content must still go.
    this.created?.add(name);
    const st = await lstatOrNull(host);
    if (st !== null) await this.remove(name, host, st);
    return host;
  }

  /**
   * Creates the entry with `make`, which must fail with EEXIST rather than
   * reuse an existing path. Something already there is replaced, except that
   * an existing directory stays for a directory entry (make is not called).
   * Trying first and looking second saves a failing lstat on every entry of
   * a fresh layer.
   */
  private async create<T>(
    name: string,
    dirRel: string,
    isDir: boolean,
    make: (host: string) => Promise<T>,
  ): Promise<{ host: string; value: T }> {
    const parent = await this.checkParent(name, dirRel, true);
    const host = path.join(parent!, path.posix.basename(name));
    // Also for directories that already existed: under an opaque marker their old content must still go.
    this.created?.add(name);
    try {
      return { host, value: await make(host) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const st = await lstat(host);
    // Only directory entries get here, and their make() yields nothing.
    if (isDir && st.isDirectory()) return { host, value: undefined as T };
    await this.remove(name, host, st);
    return { host, value: await make(host) };
  }

  private async remove(rel: string, host: string, st: Stats): Promise<void> {
    if (st.isDirectory()) {
      await rm(host, { recursive: true, force: true });
      this.forget(rel);
    } else {
      await unlink(host);
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

  private async hardlink(header: Header, name: string, dirRel: string): Promise<void> {
    const targetRel = cleanTarPath(header.linkname ?? '');
    if (targetRel === null || targetRel === '') {
      throw new Error(`hardlink "${header.name}" -> "${header.linkname ?? ''}" points outside the layer`);
    }
    if (targetRel === name) return;
    const tSlash = targetRel.lastIndexOf('/');
    const tDir = tSlash < 0 ? '' : targetRel.slice(0, tSlash);
    const targetParent = await this.checkParent(targetRel, tDir, false).catch(() => null);
    const targetHost = targetParent === null ? null : path.join(targetParent, path.posix.basename(targetRel));
    const st = targetHost === null ? null : await lstatOrNull(targetHost);
    if (targetHost === null || st === null || st.isDirectory()) {
      throw new Error(`hardlink "${header.name}" -> "${header.linkname ?? ''}" points outside the layer (target missing or a directory)`);
    }
    // link(2) on Linux does not follow a symlink target, so this links the entry itself.
    await this.create(name, dirRel, false, (h) => link(targetHost, h));
  }

  private async device(header: Header, name: string, dirRel: string, type: 'character-device' | 'block-device'): Promise<void> {
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
    await this.setMeta(name, host, header, true);
  }

  private owner(header: Header): { uid: number; gid: number } {
    if (this.opts.chown) return this.opts.chown;
    // ustar fields hold only 7 octal digits; larger ids (userns ranges) travel in pax records.
    const pax = paxRecords(header);
    const uid = pax.uid !== undefined ? Number.parseInt(pax.uid, 10) : (header.uid ?? 0);
    const gid = pax.gid !== undefined ? Number.parseInt(pax.gid, 10) : (header.gid ?? 0);
    return { uid: Number.isFinite(uid) ? uid : 0, gid: Number.isFinite(gid) ? gid : 0 };
  }

  private mtime(header: Header): Date | null {
    const paxTime = paxRecords(header).mtime;
    if (paxTime !== undefined) {
      const secs = Number.parseFloat(paxTime);
      if (Number.isFinite(secs)) return new Date(secs * 1000);
    }
    const t = header.mtime;
    return t && !Number.isNaN(t.getTime()) ? t : null;
  }

  private metaFor(header: Header, host: string): DirMeta {
    return { host, ...this.owner(header), mode: (header.mode ?? 0o755) & 0o7777, mtime: this.mtime(header) };
  }

  private async setMeta(name: string, host: string, header: Header, withMode: boolean): Promise<void> {
    const { uid, gid } = this.owner(header);
    if (!this.opts.noChown) await this.guardChown(name, uid, gid, () => lchown(host, uid, gid));
    // After chown, which clears setuid/setgid bits.
    if (withMode) await chmod(host, (header.mode ?? 0o644) & 0o7777);
    const mtime = this.mtime(header);
    if (mtime) await lutimes(host, mtime, mtime);
  }

  private async guardChown(name: string, uid: number, gid: number, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EINVAL') {
        throw new Error(
          `cannot give layer entry "${name}" owner ${uid}:${gid}: id not mapped in this user namespace (not enough subordinate ids?)`,
        );
      }
      throw err;
    }
  }
}

/**
 * tar-stream applies only path, linkpath and size from pax records and
 * leaves the rest here. xattrs (SCHILY.xattr.*, security.capability
 * included) are deliberately not applied.
 */
function paxRecords(header: Header): Partial<Record<string, string>> {
  const pax = header.pax;
  return pax !== null && typeof pax === 'object' ? (pax as Partial<Record<string, string>>) : {};
}

async function writeAll(fh: FileHandle, buf: Buffer): Promise<void> {
  for (let off = 0; off < buf.length; ) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off);
    off += bytesWritten;
  }
}


/** Reads an entry body we do not store; tar-stream cannot move on until it is consumed. */
async function drain(stream: EntryBody): Promise<void> {
  for await (const chunk of stream) void chunk;
}
