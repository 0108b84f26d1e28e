import { closeSync, constants as fsc, fstatSync, lstatSync, openSync, readdirSync, readlinkSync, readSync, type BigIntStats } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { exec } from '../sys/exec.ts';

export interface DiffOptions {
  /** Directory whose content becomes the tar (an overlay upper dir, or a full rootfs). */
  dir: string;
  /**
   * 'overlay': 0/0 char devices are whiteouts and become `.wh.NAME`; opaque
   * directories get a `DIR/.wh..wh..opq` marker. 'plain': everything as-is.
   */
  mode: 'overlay' | 'plain';
  userxattr?: boolean;
  /**
   * Seconds since the epoch given to every entry (buildah commit --timestamp),
   * whiteout markers included, so equal trees give byte-identical tars.
   */
  timestamp?: number;
  /** With timestamp: only lower mtimes that are newer (SOURCE_DATE_EPOCH style) instead of replacing all. */
  clampOnly?: boolean;
  /** Paths (relative to dir, no leading slash) to leave out, e.g. mount targets the runtime created. */
  exclude?: ReadonlySet<string>;
  /**
   * A full tree to compare against (the vfs driver has no upper directory): entries whose
   * type, size, mode, owner and mtime match it are left out, and what it has but `dir`
   * lacks becomes a whiteout. Only used with mode 'plain'.
   */
  against?: string;
  /** Opaque directories of an overlay upper dir when the caller already has them (see upperXattrs). */
  opaqueDirs?: ReadonlySet<string>;
  /** Told about entries a tar cannot hold (sockets), which the tar leaves out. */
  onOmitted?: (rel: string) => void;
}

type EntryType = 'file' | 'link' | 'symlink' | 'character-device' | 'block-device' | 'directory' | 'fifo' | 'pax-header';

interface EntryHeader {
  name: string;
  type: EntryType;
  /** Permission bits; the file type bits are ignored. */
  mode: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch. */
  mtime: number;
  size?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  pax?: Record<string, string>;
}

/** Largest id the ustar uid/gid fields hold as tar-stream writes them (6 octal digits). */
const USTAR_MAX_ID = 0o777777;
/** File content is read and handed on in pieces of at most this size. */
const READ_CHUNK = 256 * 1024;

/**
 * Streams the content of opts.dir as an uncompressed tar. Entries come in
 * byte-wise sorted order per directory, parents first, so the same tree
 * always gives the same bytes (the same bytes tar-stream's packer gives).
 *
 * The tree is walked with synchronous calls, as the reader asks for data: a
 * layer is thousands of small files, and a thread-pool round trip per stat,
 * open and read cost more than the calls; the reader's demand is the
 * backpressure.
 */
export function diffTar(opts: DiffOptions): Readable {
  const walker = new Walker(opts);
  let chunks: Generator<Buffer, void, undefined> | null = null;
  let starting = false;
  const pump = (out: Readable): void => {
    try {
      for (;;) {
        const next = chunks!.next();
        if (next.done) {
          out.push(null);
          return;
        }
        if (!out.push(next.value)) return;
      }
    } catch (err) {
      out.destroy(err instanceof Error ? err : new Error(String(err)));
    }
  };
  return new Readable({
    highWaterMark: READ_CHUNK,
    read() {
      if (chunks !== null) {
        pump(this);
        return;
      }
      // The walk starts when someone reads: an error found before the reader attached its
      // handlers would otherwise be an unhandled 'error' event.
      if (starting) return;
      starting = true;
      walker.prepare().then(
        () => {
          if (this.destroyed) return;
          chunks = walker.chunks();
          pump(this);
        },
        (err: unknown) => this.destroy(err instanceof Error ? err : new Error(String(err))),
      );
    },
    destroy(err, cb) {
      // Closes the directories and files the walk holds open (the generators' finally blocks).
      try {
        chunks?.return();
      } finally {
        cb(err);
      }
    },
  });
}

/**
 * The tar diffTar would stream, handed to `sink` piece by piece without a stream in between: for
 * a consumer that only hashes and writes (a commit). A piece is valid only during the call, its
 * memory is reused for the next.
 */
export async function writeTar(opts: DiffOptions, sink: (chunk: Buffer) => void): Promise<void> {
  const walker = new Walker(opts, Buffer.allocUnsafe(1 << 20));
  await walker.prepare();
  for (const chunk of walker.chunks()) sink(chunk);
}

/** A plain tar of a directory (squash, vfs layers, COPY sources). */
export function tarDirectory(dir: string, opts: { timestamp?: number } = {}): Readable {
  return diffTar({ dir, mode: 'plain', timestamp: opts.timestamp });
}

interface Child {
  name: string;
  rel: string;
  path: string;
}

class Walker {
  private readonly opaque = new Set<string>();
  /** dev:ino of multiply linked files already emitted, to their first name. */
  private readonly links = new Map<string, string>();

  private readonly opts: DiffOptions;
  /** File content is read into this buffer, handed out as views, when the consumer copies or uses it at once. */
  private readonly scratch: Buffer | null;

  constructor(opts: DiffOptions, scratch: Buffer | null = null) {
    this.opts = opts;
    this.scratch = scratch;
  }

  async prepare(): Promise<void> {
    if (this.opts.mode === 'overlay') {
      for (const p of this.opts.opaqueDirs ?? (await findOpaqueDirs(this.opts.dir, this.opts.userxattr ?? false))) this.opaque.add(p);
    }
  }

  *chunks(): Generator<Buffer, void, undefined> {
    const root = openSync(this.opts.dir, fsc.O_RDONLY | fsc.O_DIRECTORY);
    try {
      yield* this.walk('', root);
    } finally {
      closeSync(root);
    }
    yield Buffer.alloc(1024);
  }

  /**
   * Everything below the root is reached through /proc/self/fd/N of an
   * already open directory and opened with O_NOFOLLOW, which works like
   * openat(2): if something swaps a directory for a symlink while we walk
   * (a rootfs still in use), we cannot be led out of the tree.
   */
  private *walk(rel: string, dirFd: number): Generator<Buffer, void, undefined> {
    const dirPath = `/proc/self/fd/${dirFd}`;
    // Sorted as raw bytes, which is how the names end up in the tar.
    const raw = readdirSync(dirPath, { encoding: 'buffer' }).sort(Buffer.compare);
    const children: Child[] = [];
    for (const rawName of raw) {
      const name = rawName.toString();
      // Names are written as UTF-8; anything else would silently come out as a different name.
      if (!Buffer.from(name).equals(rawName)) {
        throw new Error(`cannot archive ${JSON.stringify(rel === '' ? name : `${rel}/${name}`)}: file name is not valid UTF-8`);
      }
      const childRel = rel === '' ? name : `${rel}/${name}`;
      if (!this.opts.exclude?.has(childRel)) children.push({ name, rel: childRel, path: `${dirPath}/${name}` });
    }
    if (this.opts.against !== undefined) yield* this.removed(rel, children);

    for (const { name, rel: childRel, path: childPath } of children) {
      const st = lstatOrNull(childPath);
      // Vanished since readdir: it was not part of the tree we are capturing.
      if (st === null) continue;
      const base = this.baseHeader(childRel, st);
      const unchanged = this.opts.against !== undefined && this.sameInLower(childRel, st, childPath);
      if (st.isDirectory()) {
        if (!unchanged) yield encode({ ...base, type: 'directory' });
        if (this.opaque.has(childRel)) yield encode(this.marker(`${childRel}/.wh..wh..opq`, st));
        const child = openSync(childPath, fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW);
        try {
          yield* this.walk(childRel, child);
        } finally {
          closeSync(child);
        }
      } else if (unchanged) {
        continue;
      } else if (st.isFile()) {
        yield* this.file(childRel, childPath, st, base);
      } else if (st.isSymbolicLink()) {
        yield encode({ ...base, type: 'symlink', linkname: readlinkSync(childPath) });
      } else if (st.isCharacterDevice() || st.isBlockDevice()) {
        const { major, minor } = splitDev(st.rdev);
        if (this.opts.mode === 'overlay' && st.isCharacterDevice() && major === 0 && minor === 0) {
          yield encode(this.marker(rel === '' ? `.wh.${name}` : `${rel}/.wh.${name}`, st));
        } else {
          yield encode({ ...base, type: st.isCharacterDevice() ? 'character-device' : 'block-device', devmajor: major, devminor: minor });
        }
      } else if (st.isFIFO()) {
        yield encode({ ...base, type: 'fifo' });
      } else {
        // Sockets cannot be represented in a tar; they are runtime artefacts anyway.
        this.opts.onOmitted?.(childRel);
      }
    }
  }

  /** Whiteouts for what the lower tree has in this directory and the upper tree no longer does. */
  private *removed(rel: string, children: readonly Child[]): Generator<Buffer, void, undefined> {
    const present = new Set(children.map((c) => c.name));
    let lowerNames: string[];
    try {
      lowerNames = readdirSync(path.join(this.opts.against!, rel));
    } catch {
      lowerNames = [];
    }
    const st = lstatSync(path.join(this.opts.dir, rel), { bigint: true });
    for (const name of lowerNames.sort()) {
      if (!present.has(name)) yield encode(this.marker(rel === '' ? `.wh.${name}` : `${rel}/.wh.${name}`, st));
    }
  }

  /** The naive differ's test: metadata equality, as containers/storage's vfs driver does it. */
  private sameInLower(rel: string, st: BigIntStats, upperPath: string): boolean {
    const lower = lstatOrNull(path.join(this.opts.against!, rel));
    if (!lower) return false;
    const same =
      (lower.mode & 0o170000n) === (st.mode & 0o170000n) && lower.mode === st.mode && lower.uid === st.uid && lower.gid === st.gid &&
      (st.isDirectory() || (lower.size === st.size && lower.mtimeNs === st.mtimeNs));
    if (!same || !st.isSymbolicLink()) return same;
    return readlinkSync(path.join(this.opts.against!, rel)) === readlinkSync(upperPath);
  }

  private *file(rel: string, filePath: string, st: BigIntStats, base: Omit<EntryHeader, 'type'>): Generator<Buffer, void, undefined> {
    if (st.nlink > 1n) {
      const key = `${st.dev}:${st.ino}`;
      const first = this.links.get(key);
      if (first !== undefined) {
        yield encode({ ...base, type: 'link', linkname: first });
        return;
      }
      this.links.set(key, rel);
    }
    const fd = openRegular(filePath, rel, st);
    try {
      const size = Number(st.size);
      yield encode({ ...base, type: 'file', size });
      // Bounded to the size in the header: a file still growing would otherwise corrupt the archive.
      const piece = this.scratch?.length ?? READ_CHUNK;
      for (let off = 0; off < size; ) {
        const want = Math.min(piece, size - off);
        const last = off + want === size;
        // The last piece carries the padding to the next 512-byte boundary.
        const len = last ? roundUp(want) : want;
        const buf = this.scratch !== null && len <= this.scratch.length ? this.scratch.subarray(0, len) : Buffer.allocUnsafe(len);
        buf.fill(0, want);
        for (let got = 0; got < want; ) {
          const n = readSync(fd, buf, got, want - got, off + got);
          if (n === 0) throw new Error(`${rel} changed while it was being archived (it shrank)`);
          got += n;
        }
        off += want;
        yield buf;
      }
    } finally {
      closeSync(fd);
    }
  }

  private baseHeader(name: string, st: BigIntStats): Omit<EntryHeader, 'type'> {
    const uid = Number(st.uid);
    const gid = Number(st.gid);
    const header: Omit<EntryHeader, 'type'> = { name, mode: Number(st.mode), uid, gid, mtime: this.mtime(st.mtimeMs / 1000n) };
    if (uid > USTAR_MAX_ID || gid > USTAR_MAX_ID) header.pax = { uid: String(uid), gid: String(gid) };
    return header;
  }

  /** An empty, root-owned, mode 0 regular file: the OCI whiteout representation. */
  private marker(name: string, st: BigIntStats): EntryHeader {
    return { name, type: 'file', size: 0, mode: 0, uid: 0, gid: 0, mtime: this.mtime(st.mtimeMs / 1000n) };
  }

  private mtime(seconds: bigint): number {
    let secs = Number(seconds);
    const ts = this.opts.timestamp;
    if (ts !== undefined && (!this.opts.clampOnly || secs > ts)) secs = ts;
    // ustar cannot encode times before the epoch.
    return Math.max(0, secs);
  }
}

function lstatOrNull(p: string): BigIntStats | null {
  try {
    return lstatSync(p, { bigint: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/**
 * Opens a file lstat() said is regular, making sure it is still that file:
 * O_NOFOLLOW refuses a symlink swapped in, O_NONBLOCK keeps a fifo swapped
 * in from hanging the open, and the inode check catches any other swap.
 */
function openRegular(p: string, rel: string, st: BigIntStats): number {
  const fd = openSync(p, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK);
  try {
    const now = fstatSync(fd, { bigint: true });
    if (now.ino !== st.ino || now.dev !== st.dev || !now.isFile()) throw new Error(`${rel} changed while it was being archived`);
    return fd;
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/** Linux dev_t layout (see gnu_dev_major/gnu_dev_minor). */
function splitDev(rdev: bigint): { major: number; minor: number } {
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
  return { major: Number(major), minor: Number(minor) };
}

const roundUp = (n: number): number => (n + 511) & ~511;

// ---------- tar headers ----------
// Written byte for byte as tar-stream's packer writes them (ustar, with a pax header when a name
// or id does not fit), so layers keep the digests earlier versions gave the same trees.

const TYPEFLAG: Record<EntryType, number> = {
  file: 0, link: 1, symlink: 2, 'character-device': 3, 'block-device': 4, directory: 5, fifo: 6, 'pax-header': 72,
};

/** One entry's header block(s): the ustar header, preceded by a pax header when needed. */
function encode(h: EntryHeader): Buffer {
  if (!h.pax) {
    const block = ustar(h);
    if (block !== null) return block;
  }
  let records = '';
  records += paxRecord('path', h.name);
  if (h.linkname) records += paxRecord('linkpath', h.linkname);
  for (const [k, v] of Object.entries(h.pax ?? {})) records += paxRecord(k, v);
  const body = Buffer.from(records);
  const paxHeader: EntryHeader = {
    name: 'PaxHeader', type: 'pax-header', mode: h.mode, uid: h.uid, gid: h.gid, mtime: h.mtime, size: body.length,
    ...(h.linkname && { linkname: 'PaxHeader' }), ...(h.devmajor !== undefined && { devmajor: h.devmajor }), ...(h.devminor !== undefined && { devminor: h.devminor }),
  };
  return Buffer.concat([ustar(paxHeader)!, body, Buffer.alloc(roundUp(body.length) - body.length), ustar({ ...paxHeader, type: h.type, size: h.size ?? 0 })!]);
}

/** `LEN key=value\n`, LEN counting itself. */
function paxRecord(key: string, value: string): string {
  const s = ` ${key}=${value}\n`;
  const len = Buffer.byteLength(s);
  let digits = Math.floor(Math.log10(len)) + 1;
  if (len + digits >= 10 ** digits) digits++;
  return `${len + digits}${s}`;
}

/** The ustar header block, or null when the entry needs a pax header. */
function ustar(h: EntryHeader): Buffer | null {
  // Directory names without a trailing slash, as tar-stream writes them.
  let name = h.name;
  let prefix = '';
  // Non-ASCII names travel in pax records.
  if (Buffer.byteLength(name) !== name.length) return null;
  while (name.length > 100) {
    const i = name.indexOf('/');
    if (i === -1) return null;
    prefix += prefix ? '/' + name.slice(0, i) : name.slice(0, i);
    name = name.slice(i + 1);
  }
  if (prefix.length > 155) return null;
  if (h.linkname && Buffer.byteLength(h.linkname) > 100) return null;

  const buf = Buffer.alloc(512);
  buf.write(name, 0);
  buf.write(octal(h.mode & 0o7777, 6), 100);
  buf.write(octal(h.uid, 6), 108);
  buf.write(octal(h.gid, 6), 116);
  const size = h.type === 'file' ? (h.size ?? 0) : h.type === 'pax-header' ? (h.size ?? 0) : 0;
  if (size.toString(8).length > 11) {
    // base-256, for files of 8 GiB and more
    buf[124] = 0x80;
    for (let i = 11, n = size; i > 0; i--, n = Math.floor(n / 256)) buf[124 + i] = n % 256;
  } else {
    buf.write(octal(size, 11), 124);
  }
  buf.write(octal(h.mtime, 11), 136);
  buf[156] = 48 + TYPEFLAG[h.type];
  if (h.linkname) buf.write(h.linkname, 157);
  buf.write('ustar\0', 257, 'latin1');
  buf.write('00', 263);
  buf.write(octal(h.devmajor ?? 0, 6), 329);
  buf.write(octal(h.devminor ?? 0, 6), 337);
  if (prefix) buf.write(prefix, 345);
  let sum = 8 * 32;
  for (let i = 0; i < 148; i++) sum += buf[i]!;
  for (let i = 156; i < 512; i++) sum += buf[i]!;
  buf.write(octal(sum, 6), 148);
  return buf;
}

/** n zero-padded octal digits and a space (all sevens when it does not fit), as tar-stream writes numbers. */
function octal(v: number, n: number): string {
  const s = Math.floor(v).toString(8);
  if (s.length > n) return '7'.repeat(n) + ' ';
  return s.padStart(n, '0') + ' ';
}

/**
 * Lists opaque directories (relative to dir) with a single getfattr run
 * rather than one xattr lookup per directory.
 */
export async function findOpaqueDirs(dir: string, userxattr: boolean): Promise<Set<string>> {
  return (await upperXattrs(dir, userxattr, false)).opaque;
}

export interface UpperXattrs {
  /** Directories (relative to dir) marked opaque. */
  opaque: Set<string>;
  /**
   * The other xattrs, by name, with the host paths that carry them (only when asked for): overlay
   * bookkeeping (origin, impure, opaque="x" …) and whatever a tar of the tree would not hold.
   */
  others: Map<string, string[]>;
}

/**
 * xattrs of an overlay upper dir, read with a single getfattr run rather than a lookup per
 * entry: the opaque markers, and with `all` every xattr a layer tar does not carry.
 */
export async function upperXattrs(dir: string, userxattr: boolean, all = true): Promise<UpperXattrs> {
  const root = path.resolve(dir);
  const res = await exec('getfattr', ['-R', '-h', '--absolute-names', '-d', '-m', all ? '-' : '^(trusted|user)\\.overlay\\.opaque$', root], {
    check: false,
  });
  // Older getfattr exits 1 when nothing matched; anything with diagnostics is a real failure.
  if (res.exitCode !== 0 && !(res.exitCode === 1 && res.stderr.trim() === '')) {
    throw new Error(`getfattr ${root}: exit status ${res.exitCode}: ${res.stderr.trim()}`);
  }
  const opaqueName = userxattr ? 'user.overlay.opaque' : 'trusted.overlay.opaque';
  const out: UpperXattrs = { opaque: new Set(), others: new Map() };
  let current: string | null = null;
  for (const line of res.stdout.split('\n')) {
    if (line.startsWith('# file: ')) {
      current = unescapeGetfattr(line.slice('# file: '.length));
      continue;
    }
    if (current === null || line === '') continue;
    const eq = line.indexOf('=');
    const name = eq < 0 ? line : line.slice(0, eq);
    const rel = path.relative(root, current);
    if (rel.startsWith('..')) continue;
    // Kernels since 6.7 also write opaque="x" (directory merely contains whiteouts), which is not opaque.
    if (name === opaqueName && line.slice(eq + 1) === '"y"') {
      if (rel !== '') out.opaque.add(rel);
      continue;
    }
    // The security module labels files by itself.
    if (!all || name === 'security.selinux') continue;
    const list = out.others.get(name) ?? [];
    list.push(current);
    out.others.set(name, list);
  }
  return out;
}

/** Removes xattrs listed by upperXattrs(): one setfattr run per name and batch of paths. */
export async function removeXattrs(byName: Map<string, string[]>): Promise<void> {
  for (const [name, paths] of byName) {
    for (let i = 0; i < paths.length; i += 500) {
      await exec('setfattr', ['-h', '-x', name, '--', ...paths.slice(i, i + 500)]);
    }
  }
}

/** getfattr prints unusual bytes of a file name (and backslash itself) as \NNN octal escapes. */
function unescapeGetfattr(s: string): string {
  if (!s.includes('\\')) return s;
  const bytes: number[] = [];
  for (let i = 0; i < s.length; ) {
    if (s[i] === '\\' && /^[0-7]{3}$/.test(s.slice(i + 1, i + 4))) {
      bytes.push(Number.parseInt(s.slice(i + 1, i + 4), 8));
      i += 4;
      continue;
    }
    const cp = s.codePointAt(i)!;
    const ch = String.fromCodePoint(cp);
    bytes.push(...Buffer.from(ch));
    i += ch.length;
  }
  return Buffer.from(bytes).toString();
}
