import { constants as fsc, type BigIntStats } from 'node:fs';
import { lstat, open, readdir, readlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import type { Header } from 'tar-stream';
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
}

type EntryHeader = Partial<Header> & Pick<Header, 'name'>;

/** Largest id the 6-digit octal ustar uid/gid fields can hold. */
const USTAR_MAX_ID = 0o777777;

/**
 * Streams the content of opts.dir as an uncompressed tar. Entries come in
 * byte-wise sorted order per directory, parents first, so the same tree
 * always gives the same bytes.
 */
export function diffTar(opts: DiffOptions): Readable {
  const pack = tar.pack();
  let aborted = false;
  let full = false;
  let wake: (() => void) | null = null;
  const resume = (): void => {
    const w = wake;
    wake = null;
    w?.();
  };

  // A node Readable in front of the pack: the pack buffers header-only
  // entries without limit, so the walker waits for the consumer here.
  let started = false;
  const out = new Readable({
    read() {
      // The walk starts when someone reads: an error found before the reader attached its
      // handlers would otherwise be an unhandled 'error' event.
      if (!started) {
        started = true;
        start();
      }
      full = false;
      pack.resume();
      resume();
    },
    destroy(err, cb) {
      aborted = true;
      pack.destroy();
      resume();
      cb(err);
    },
  });
  pack.on('data', (chunk: unknown) => {
    if (!out.push(chunk)) {
      full = true;
      pack.pause();
    }
  });
  pack.on('end', () => out.push(null));
  pack.on('error', (err: Error) => out.destroy(err));

  const walker = new Walker(opts, pack, async () => {
    if (aborted) throw new Error('tar stream closed by its reader');
    if (full) await new Promise<void>((r) => (wake = r));
    if (aborted) throw new Error('tar stream closed by its reader');
  });
  const start = (): void => {
    walker.run().then(
      () => pack.finalize(),
      (err: unknown) => {
        if (!aborted) out.destroy(err instanceof Error ? err : new Error(String(err)));
      },
    );
  };
  return out;
}

/** A plain tar of a directory (squash, vfs layers, COPY sources). */
export function tarDirectory(dir: string, opts: { timestamp?: number } = {}): Readable {
  return diffTar({ dir, mode: 'plain', timestamp: opts.timestamp });
}

class Walker {
  private readonly opaque = new Set<string>();
  /** dev:ino of multiply linked files already emitted, to their first name. */
  private readonly links = new Map<string, string>();

  private readonly opts: DiffOptions;
  private readonly pack: tar.Pack;
  /** Resolves when the reader wants more. */
  private readonly demand: () => Promise<void>;

  constructor(opts: DiffOptions, pack: tar.Pack, demand: () => Promise<void>) {
    this.opts = opts;
    this.pack = pack;
    this.demand = demand;
  }

  async run(): Promise<void> {
    if (this.opts.mode === 'overlay') {
      for (const p of await findOpaqueDirs(this.opts.dir, this.opts.userxattr ?? false)) this.opaque.add(p);
    }
    const root = await open(this.opts.dir, fsc.O_RDONLY | fsc.O_DIRECTORY);
    try {
      await this.walk('', root);
    } finally {
      await root.close();
    }
  }

  /**
   * Everything below the root is reached through /proc/self/fd/N of an
   * already open directory and opened with O_NOFOLLOW, which works like
   * openat(2): if something swaps a directory for a symlink while we walk
   * (a rootfs still in use), we cannot be led out of the tree.
   */
  private async walk(rel: string, dir: FileHandle): Promise<void> {
    const dirPath = `/proc/self/fd/${dir.fd}`;
    // Sorted as raw bytes, which is how the names end up in the tar.
    const raw = (await readdir(dirPath, { encoding: 'buffer' })).sort(Buffer.compare);
    const children: Array<{ name: string; rel: string; path: string }> = [];
    for (const rawName of raw) {
      const name = rawName.toString();
      // tar-stream writes names as UTF-8; anything else would silently come out as a different name.
      if (!Buffer.from(name).equals(rawName)) {
        throw new Error(`cannot archive ${JSON.stringify(rel === '' ? name : `${rel}/${name}`)}: file name is not valid UTF-8`);
      }
      const childRel = rel === '' ? name : `${rel}/${name}`;
      if (!this.opts.exclude?.has(childRel)) children.push({ name, rel: childRel, path: `${dirPath}/${name}` });
    }

    // Each filesystem call is a thread-pool round trip; looking ahead keeps
    // several in flight instead of paying their latency one entry at a time.
    const ahead: Array<Promise<Prefetched | null> | undefined> = [];
    const startAt = (i: number): void => {
      if (i >= children.length || ahead[i] !== undefined) return;
      const p = prefetch(children[i]!.path, children[i]!.rel);
      p.catch(() => {});
      ahead[i] = p;
    };

    try {
      await this.emitChildren(rel, children, ahead, startAt);
    } finally {
      // Paths name this directory by descriptor number: no lookup may outlive the descriptor.
      await Promise.allSettled(ahead.filter((p) => p !== undefined));
    }
  }

  private async emitChildren(
    rel: string,
    children: ReadonlyArray<{ name: string; rel: string; path: string }>,
    ahead: Array<Promise<Prefetched | null> | undefined>,
    startAt: (i: number) => void,
  ): Promise<void> {
    if (this.opts.against !== undefined) await this.emitRemoved(rel, children);
    for (let i = 0; i < children.length; i++) {
      for (let j = i; j < i + LOOKAHEAD; j++) startAt(j);
      const got = await ahead[i]!;
      ahead[i] = undefined;
      // Vanished since readdir: it was not part of the tree we are capturing.
      if (got === null) continue;
      const { name, rel: childRel, path: childPath } = children[i]!;
      const st = got.st;
      const base = this.baseHeader(childRel, st);

      const unchanged = this.opts.against !== undefined && (await this.sameInLower(childRel, st, childPath));
      if (st.isDirectory()) {
        if (!unchanged) await this.emit({ ...base, type: 'directory' });
        if (this.opaque.has(childRel)) await this.emit(this.marker(`${childRel}/.wh..wh..opq`, st));
        const child = await open(childPath, fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW);
        try {
          await this.walk(childRel, child);
        } finally {
          await child.close();
        }
      } else if (unchanged) {
        continue;
      } else if (st.isFile()) {
        await this.file(childRel, childPath, st, base, got.data);
      } else if (st.isSymbolicLink()) {
        await this.emit({ ...base, type: 'symlink', linkname: await readlink(childPath) });
      } else if (st.isCharacterDevice() || st.isBlockDevice()) {
        const { major, minor } = splitDev(st.rdev);
        if (this.opts.mode === 'overlay' && st.isCharacterDevice() && major === 0 && minor === 0) {
          await this.emit(this.marker(rel === '' ? `.wh.${name}` : `${rel}/.wh.${name}`, st));
        } else {
          await this.emit({ ...base, type: st.isCharacterDevice() ? 'character-device' : 'block-device', devmajor: major, devminor: minor });
        }
      } else if (st.isFIFO()) {
        await this.emit({ ...base, type: 'fifo' });
      }
      // Sockets cannot be represented in a tar; they are runtime artefacts anyway.
    }
  }

  /** Whiteouts for what the lower tree has in this directory and the upper tree no longer does. */
  private async emitRemoved(rel: string, children: ReadonlyArray<{ name: string }>): Promise<void> {
    const present = new Set(children.map((c) => c.name));
    const lowerNames = await readdir(path.join(this.opts.against!, rel)).catch(() => [] as string[]);
    const st = await lstat(path.join(this.opts.dir, rel), { bigint: true });
    for (const name of lowerNames.sort()) {
      if (!present.has(name)) await this.emit(this.marker(rel === '' ? `.wh.${name}` : `${rel}/.wh.${name}`, st));
    }
  }

  /** The naive differ's test: metadata equality, as containers/storage's vfs driver does it. */
  private async sameInLower(rel: string, st: BigIntStats, upperPath: string): Promise<boolean> {
    const lower = await lstat(path.join(this.opts.against!, rel), { bigint: true }).catch(() => null);
    if (!lower) return false;
    const same =
      (lower.mode & 0o170000n) === (st.mode & 0o170000n) && lower.mode === st.mode && lower.uid === st.uid && lower.gid === st.gid &&
      (st.isDirectory() || (lower.size === st.size && lower.mtimeNs === st.mtimeNs));
    if (!same || !st.isSymbolicLink()) return same;
    return (await readlink(path.join(this.opts.against!, rel))) === (await readlink(upperPath));
  }

  private async file(rel: string, filePath: string, st: BigIntStats, base: EntryHeader, data: Buffer | undefined): Promise<void> {
    if (st.nlink > 1n) {
      const key = `${st.dev}:${st.ino}`;
      const first = this.links.get(key);
      if (first !== undefined) {
        await this.emit({ ...base, type: 'link', linkname: first, size: 0 });
        return;
      }
      this.links.set(key, rel);
    }
    if (data !== undefined) {
      await this.demand();
      await new Promise<void>((resolve, reject) => {
        const sink = this.pack.entry({ ...base, type: 'file', size: data.length }, data, (err) => (err ? reject(err) : resolve()));
        sink.on('error', reject);
      });
      return;
    }
    const fh = await openRegular(filePath, rel, st);
    try {
      const size = Number(st.size);
      await this.demand();
      await new Promise<void>((resolve, reject) => {
        let rs: Readable | null = null;
        const failed = (err: Error): void => {
          rs?.destroy();
          reject(err);
        };
        const sink = this.pack.entry({ ...base, type: 'file', size }, (err) => (err ? failed(err) : resolve()));
        sink.on('error', failed);
        if (size === 0) {
          sink.end(null);
          return;
        }
        // Bounded to the size in the header: a file still growing would otherwise corrupt the archive.
        rs = fh.createReadStream({ start: 0, end: size - 1, autoClose: false });
        rs.on('error', (err) => {
          sink.destroy(err);
          failed(err);
        });
        const source = rs;
        source.on('data', (chunk) => {
          if (!sink.write(chunk)) {
            source.pause();
            sink.once('drain', () => source.resume());
          }
        });
        source.on('end', () => sink.end(null));
      });
    } finally {
      await fh.close();
    }
  }

  private async emit(header: EntryHeader): Promise<void> {
    await this.demand();
    await new Promise<void>((resolve, reject) => {
      const sink = this.pack.entry(header, (err) => (err ? reject(err) : resolve()));
      sink.on('error', reject);
      // Header-only types complete by themselves; an empty regular file (a whiteout marker) needs its end.
      if (header.type === 'file') sink.end(null);
    });
  }

  private baseHeader(name: string, st: BigIntStats): EntryHeader {
    const uid = Number(st.uid);
    const gid = Number(st.gid);
    const header: EntryHeader = {
      name,
      // File type bits included on purpose: tar-stream replaces a falsy mode
      // (e.g. 0000 on /etc/shadow) with a default, and masks the type bits off when encoding.
      mode: Number(st.mode),
      uid,
      gid,
      mtime: this.mtime(st.mtimeMs / 1000n),
      uname: '',
      gname: '',
    };
    if (uid > USTAR_MAX_ID || gid > USTAR_MAX_ID) header.pax = { uid: String(uid), gid: String(gid) };
    return header;
  }

  /** An empty, root-owned, mode 0 regular file: the OCI whiteout representation. */
  private marker(name: string, st: BigIntStats): EntryHeader {
    return {
      name,
      type: 'file',
      size: 0,
      mode: fsc.S_IFREG,
      uid: 0,
      gid: 0,
      mtime: this.mtime(st.mtimeMs / 1000n),
      uname: '',
      gname: '',
    };
  }

  private mtime(seconds: bigint): Date {
    let secs = Number(seconds);
    const ts = this.opts.timestamp;
    if (ts !== undefined && (!this.opts.clampOnly || secs > ts)) secs = ts;
    // ustar cannot encode times before the epoch.
    return new Date(Math.max(0, secs) * 1000);
  }
}

interface Prefetched {
  st: BigIntStats;
  /** Content of a small, singly linked regular file. */
  data?: Buffer;
}

/** How many directory entries are stat()ed (and small files read) ahead of the one being written. */
const LOOKAHEAD = 16;
/** Files up to this size are read whole while looking ahead; larger ones are streamed. */
const SMALL_FILE = 256 * 1024;

async function prefetch(p: string, rel: string): Promise<Prefetched | null> {
  let st: BigIntStats;
  try {
    st = await lstat(p, { bigint: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  // Files with several names may end up as hardlink entries, whose content is not needed.
  if (!st.isFile() || st.nlink !== 1n || st.size > BigInt(SMALL_FILE)) return { st };
  const fh = await openRegular(p, rel, st);
  try {
    const buf = Buffer.allocUnsafe(Number(st.size));
    let off = 0;
    while (off < buf.length) {
      const { bytesRead } = await fh.read(buf, off, buf.length - off, off);
      if (bytesRead === 0) break;
      off += bytesRead;
    }
    // A file that shrank meanwhile is archived as it is now; one that grew is cut at the size in its header.
    return { st, data: off === buf.length ? buf : buf.subarray(0, off) };
  } finally {
    await fh.close();
  }
}

/**
 * Opens a file lstat() said is regular, making sure it is still that file:
 * O_NOFOLLOW refuses a symlink swapped in, O_NONBLOCK keeps a fifo swapped
 * in from hanging the open, and the inode check catches any other swap.
 */
async function openRegular(p: string, rel: string, st: BigIntStats): Promise<FileHandle> {
  const fh = await open(p, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK);
  try {
    const now = await fh.stat({ bigint: true });
    if (now.ino !== st.ino || now.dev !== st.dev || !now.isFile()) throw new Error(`${rel} changed while it was being archived`);
    return fh;
  } catch (err) {
    await fh.close();
    throw err;
  }
}

/** Linux dev_t layout (see gnu_dev_major/gnu_dev_minor). */
function splitDev(rdev: bigint): { major: number; minor: number } {
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
  return { major: Number(major), minor: Number(minor) };
}

/**
 * Lists opaque directories (relative to dir) with a single getfattr run
 * rather than one xattr lookup per directory.
 */
export async function findOpaqueDirs(dir: string, userxattr: boolean): Promise<Set<string>> {
  const root = path.resolve(dir);
  const res = await exec('getfattr', ['-R', '-h', '--absolute-names', '-d', '-m', '^(trusted|user)\\.overlay\\.opaque$', root], {
    check: false,
  });
  // Older getfattr exits 1 when nothing matched; anything with diagnostics is a real failure.
  if (res.exitCode !== 0 && !(res.exitCode === 1 && res.stderr.trim() === '')) {
    throw new Error(`getfattr ${root}: exit status ${res.exitCode}: ${res.stderr.trim()}`);
  }
  const wanted = userxattr ? 'user.overlay.opaque' : 'trusted.overlay.opaque';
  const found = new Set<string>();
  let current: string | null = null;
  for (const line of res.stdout.split('\n')) {
    if (line.startsWith('# file: ')) {
      current = unescapeGetfattr(line.slice('# file: '.length));
      continue;
    }
    if (current === null) continue;
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    // Kernels since 6.7 also write opaque="x" (directory merely contains whiteouts), which is not opaque.
    if (line.slice(0, eq) === wanted && line.slice(eq + 1) === '"y"') {
      const rel = path.relative(root, current);
      if (rel !== '' && !rel.startsWith('..')) found.add(rel);
    }
  }
  return found;
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
