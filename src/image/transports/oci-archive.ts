import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, open, readdir, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, posix, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createZstdDecompress } from 'node:zlib';
import * as tar from 'tar-stream';
import { detectCompression } from '../manifest.ts';
import { formatRef, NotFoundError, type BlobInfo, type ImageDestination, type ImageSource, type Transport } from '../transport.ts';
import type { ManifestFormat } from '../types.ts';
import { OciLayoutDestination, OciLayoutSource, parseLayoutSpec, type LayoutFiles } from './oci-layout.ts';

// ---------------------------------------------------------------------------------------------
// Reading tar archives in place: one pass over the headers records where each member's data
// lives, so blobs are later streamed straight out of the archive without extracting anything
// (nothing is written, hence no path-traversal surface).

interface TarMember {
  name: string;
  type: 'file' | 'directory' | 'symlink' | 'link' | 'other';
  offset: number;
  size: number;
  linkname: string;
}

const BLOCK = 512;
const MAX_PAX_SIZE = 1024 * 1024;

function cString(buf: Buffer, start: number, end: number): string {
  const slice = buf.subarray(start, end);
  const nul = slice.indexOf(0);
  return (nul < 0 ? slice : slice.subarray(0, nul)).toString('utf8');
}

function parseNumeric(buf: Buffer, start: number, end: number): number {
  // GNU base-256: high bit of the first byte set, used for sizes over 8 GiB.
  if (buf[start]! & 0x80) {
    let n = buf[start]! & 0x7f;
    for (let i = start + 1; i < end; i++) n = n * 256 + buf[i]!;
    return n;
  }
  const s = cString(buf, start, end).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new Error(`invalid octal number ${JSON.stringify(s)} in tar header`);
  return parseInt(s, 8);
}

function checksumOk(hdr: Buffer): boolean {
  let want: number;
  try {
    want = parseNumeric(hdr, 148, 156);
  } catch {
    return false;
  }
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : hdr[i]!;
    unsigned += b;
    signed += b >= 0x80 ? b - 256 : b;
  }
  return want === unsigned || want === signed;
}

function parsePax(data: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let pos = 0;
  while (pos < data.length) {
    const sp = data.indexOf(0x20, pos);
    if (sp < 0) break;
    const len = parseInt(data.subarray(pos, sp).toString('ascii'), 10);
    if (!Number.isFinite(len) || len <= 0 || pos + len > data.length) break;
    const rec = data.subarray(sp + 1, pos + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    if (eq > 0) out.set(rec.slice(0, eq), rec.slice(eq + 1));
    pos += len;
  }
  return out;
}

/** Canonical member name, or undefined for names that would point outside the archive root. */
function normalizeMemberName(name: string): string | undefined {
  // Absolute member names are taken relative to the archive root; ".." may not climb out of it.
  const n = posix.normalize(name.replace(/^\/+/, '')).replace(/\/+$/, '');
  if (n === '' || n === '.' || n === '..' || n.startsWith('../')) return undefined;
  return n;
}

export class TarArchive {
  readonly path: string;
  readonly #members = new Map<string, TarMember>();
  readonly #tempDir: string | undefined;

  private constructor(path: string, tempDir: string | undefined) {
    this.path = path;
    this.#tempDir = tempDir;
  }

  /** Indexes `file`; a gzip- or zstd-compressed archive is first decompressed to a temp file. */
  static async open(file: string): Promise<TarArchive> {
    const head = Buffer.alloc(4);
    {
      const fh = await open(file, 'r');
      try {
        await fh.read(head, 0, 4, 0);
      } finally {
        await fh.close();
      }
    }
    const compression = detectCompression(head);
    let path = file;
    let tempDir: string | undefined;
    if (compression !== 'none') {
      tempDir = await mkdtemp(join(tmpdir(), 'barge-archive-'));
      path = join(tempDir, 'archive.tar');
      try {
        await pipeline(createReadStream(file), compression === 'gzip' ? createGunzip() : createZstdDecompress(), createWriteStream(path));
      } catch (e) {
        await rm(tempDir, { recursive: true, force: true });
        throw new Error(`${file}: cannot decompress archive: ${(e as Error).message}`);
      }
    }
    const archive = new TarArchive(path, tempDir);
    try {
      const fh = await open(path, 'r');
      try {
        await archive.#index(fh, file);
      } finally {
        await fh.close();
      }
    } catch (e) {
      await archive.close();
      throw e;
    }
    return archive;
  }

  async #index(fh: FileHandle, shownName: string): Promise<void> {
    const total = (await fh.stat()).size;
    const hdr = Buffer.alloc(BLOCK);
    let pos = 0;
    let pax = new Map<string, string>();
    let longName: string | undefined;
    let longLink: string | undefined;
    const readData = async (offset: number, size: number): Promise<Buffer> => {
      if (size > MAX_PAX_SIZE) throw new Error(`${shownName}: oversized tar extended header`);
      const b = Buffer.alloc(size);
      await fh.read(b, 0, size, offset);
      return b;
    };
    while (pos + BLOCK <= total) {
      const { bytesRead } = await fh.read(hdr, 0, BLOCK, pos);
      if (bytesRead < BLOCK) break;
      if (hdr.every((b) => b === 0)) break;
      if (!checksumOk(hdr)) {
        throw new Error(pos === 0 ? `${shownName}: not a tar archive` : `${shownName}: corrupt tar header at offset ${pos}`);
      }
      const flag = String.fromCharCode(hdr[156]!);
      let size = parseNumeric(hdr, 124, 136);
      const dataOffset = pos + BLOCK;
      if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
        const data = await readData(dataOffset, size);
        if (flag === 'x') pax = parsePax(data);
        else if (flag === 'L') longName = cString(data, 0, data.length);
        else if (flag === 'K') longLink = cString(data, 0, data.length);
        pos = dataOffset + Math.ceil(size / BLOCK) * BLOCK;
        continue;
      }
      let name = cString(hdr, 0, 100);
      // Only POSIX ustar has a prefix field; GNU tar stores other data at that offset.
      if (hdr.subarray(257, 263).toString('latin1') === 'ustar\0') {
        const prefix = cString(hdr, 345, 500);
        if (prefix) name = `${prefix}/${name}`;
      }
      name = pax.get('path') ?? longName ?? name;
      const linkname = pax.get('linkpath') ?? longLink ?? cString(hdr, 157, 257);
      const paxSize = pax.get('size');
      if (paxSize !== undefined && /^\d+$/.test(paxSize)) size = Number(paxSize);
      pax = new Map();
      longName = undefined;
      longLink = undefined;
      const type: TarMember['type'] =
        flag === '0' || flag === '\0' || flag === '7' ? 'file' : flag === '5' ? 'directory' : flag === '2' ? 'symlink' : flag === '1' ? 'link' : 'other';
      const hasData = type === 'file' || type === 'other';
      const norm = normalizeMemberName(name);
      if (norm !== undefined) this.#members.set(norm, { name: norm, type, offset: dataOffset, size: hasData ? size : 0, linkname });
      pos = dataOffset + (hasData ? Math.ceil(size / BLOCK) * BLOCK : 0);
      if (hasData && dataOffset + size > total) throw new Error(`${shownName}: truncated tar archive (member ${name})`);
    }
  }

  names(): string[] {
    return [...this.#members.keys()];
  }

  /** The regular-file member `name` refers to, following symlinks and hard links inside the archive. */
  resolve(name: string): TarMember | undefined {
    let cur = normalizeMemberName(name);
    for (let hops = 0; cur !== undefined && hops < 32; hops++) {
      const m = this.#members.get(cur);
      if (!m) return undefined;
      if (m.type === 'file') return m;
      if (m.type === 'symlink') {
        cur = normalizeMemberName(m.linkname.startsWith('/') ? m.linkname : posix.join(posix.dirname(cur), m.linkname));
      } else if (m.type === 'link') {
        cur = normalizeMemberName(m.linkname);
      } else return undefined;
    }
    return undefined;
  }

  #need(name: string): TarMember {
    const m = this.resolve(name);
    if (!m) throw new NotFoundError(`${this.path}: no file ${name} in the archive`);
    return m;
  }

  size(name: string): number {
    return this.resolve(name)?.size ?? -1;
  }

  async readFile(name: string, limit: number): Promise<Buffer> {
    const m = this.#need(name);
    if (m.size > limit) throw new Error(`${name} in ${this.path} is ${m.size} bytes, over the ${limit}-byte limit`);
    const fh = await open(this.path, 'r');
    try {
      const b = Buffer.alloc(m.size);
      const { bytesRead } = await fh.read(b, 0, m.size, m.offset);
      if (bytesRead !== m.size) throw new Error(`${this.path}: truncated archive reading ${name}`);
      return b;
    } finally {
      await fh.close();
    }
  }

  /** Reads the first bytes of a member (fewer when the member is shorter). */
  async readHead(name: string, n: number): Promise<Buffer> {
    const m = this.#need(name);
    const len = Math.min(n, m.size);
    const fh = await open(this.path, 'r');
    try {
      const b = Buffer.alloc(len);
      await fh.read(b, 0, len, m.offset);
      return b;
    } finally {
      await fh.close();
    }
  }

  openRead(name: string): { stream: Readable; size: number } {
    const m = this.#need(name);
    const stream = m.size === 0 ? Readable.from([]) : createReadStream(this.path, { start: m.offset, end: m.offset + m.size - 1 });
    return { stream, size: m.size };
  }

  async close(): Promise<void> {
    if (this.#tempDir) await rm(this.#tempDir, { recursive: true, force: true });
  }
}

class TarLayoutFiles implements LayoutFiles {
  readonly archive: TarArchive;
  constructor(archive: TarArchive) {
    this.archive = archive;
  }
  readFile(rel: string, limit: number): Promise<Buffer> {
    return this.archive.readFile(rel, limit);
  }
  async openRead(rel: string): Promise<{ stream: Readable; size: number }> {
    return this.archive.openRead(rel);
  }
  close(): Promise<void> {
    return this.archive.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Writing tar archives.

export type TarInput = { name: string; directory: true } | { name: string; file: string } | { name: string; data: Buffer | string };

// A fixed timestamp keeps archives of the same image byte-identical.
const EPOCH = new Date(0);

/** Writes `entries` as a tar to `out` (which must not be the final name: callers rename). */
export async function writeTar(out: string, entries: readonly TarInput[]): Promise<void> {
  const pack = tar.pack();
  const done = pipeline(pack, createWriteStream(out, { mode: 0o644 }));
  const filling = (async () => {
    for (const e of entries) {
      if ('directory' in e) {
        await new Promise<void>((res, rej) => pack.entry({ name: `${e.name.replace(/\/+$/, '')}/`, type: 'directory', mode: 0o755, mtime: EPOCH }, (err) => (err ? rej(err) : res())));
      } else if ('data' in e) {
        const data = Buffer.isBuffer(e.data) ? e.data : Buffer.from(e.data);
        await new Promise<void>((res, rej) => pack.entry({ name: e.name, size: data.length, mode: 0o644, mtime: EPOCH }, data, (err) => (err ? rej(err) : res())));
      } else {
        const { size } = await stat(e.file);
        const w = pack.entry({ name: e.name, size, mode: 0o644, mtime: EPOCH });
        await pipeline(createReadStream(e.file), w);
      }
    }
    pack.finalize();
  })();
  try {
    await Promise.all([done, filling.catch((err: unknown) => {
      pack.destroy(err as Error);
      throw err;
    })]);
  } catch (e) {
    pack.destroy();
    throw e;
  }
}

/** Lists a directory tree as tar inputs, parents before children, names sorted for reproducibility. */
export async function treeEntries(root: string, prefix = ''): Promise<TarInput[]> {
  const out: TarInput[] = [];
  const names = (await readdir(join(root, prefix), { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const d of names) {
    const rel = prefix ? `${prefix}/${d.name}` : d.name;
    if (d.isDirectory()) {
      out.push({ name: rel, directory: true });
      out.push(...(await treeEntries(root, rel)));
    } else if (d.isFile()) out.push({ name: rel, file: join(root, rel) });
  }
  return out;
}

/** Fails early, before any copying, when an archive could not be written to `file` at commit. */
export async function checkArchiveTarget(reference: string, file: string): Promise<void> {
  const st = await stat(file).catch(() => undefined);
  if (st?.isDirectory()) throw new Error(`${reference}: ${file} is a directory`);
  const parent = await stat(dirname(resolve(file))).catch(() => undefined);
  if (!parent?.isDirectory()) throw new Error(`${reference}: directory ${dirname(resolve(file))} does not exist`);
}

/** Writes to `${file}.tmp-…` and renames, so a reader never sees a half-written archive. */
export async function writeTarAtomic(file: string, entries: readonly TarInput[]): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  try {
    await writeTar(tmp, entries);
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------

export async function openOciArchiveSource(reference: string, file: string, ref: string | undefined): Promise<ImageSource> {
  const archive = await TarArchive.open(file);
  return OciLayoutSource.open(reference, new TarLayoutFiles(archive), ref);
}

/** Builds the layout in a temp directory, then tars it over FILE in commit(). */
export class OciArchiveDestination implements ImageDestination {
  readonly reference: string;
  readonly supportedManifestFormats: ManifestFormat[];
  readonly wantsUncompressedLayers = false;
  readonly compressesLayers = true;
  readonly supportsMultiImage = true;
  readonly #file: string;
  readonly #tempDir: string;
  readonly #layout: OciLayoutDestination;
  #closed = false;

  private constructor(reference: string, file: string, tempDir: string, layout: OciLayoutDestination) {
    this.reference = reference;
    this.#file = file;
    this.#tempDir = tempDir;
    this.#layout = layout;
    this.supportedManifestFormats = layout.supportedManifestFormats;
  }

  static async open(reference: string, file: string, ref: string | undefined): Promise<OciArchiveDestination> {
    await checkArchiveTarget(reference, file);
    const tempDir = await mkdtemp(join(tmpdir(), 'barge-oci-archive-'));
    try {
      const layout = await OciLayoutDestination.open(reference, join(tempDir, 'layout'), ref);
      return new OciArchiveDestination(reference, file, tempDir, layout);
    } catch (e) {
      await rm(tempDir, { recursive: true, force: true });
      throw e;
    }
  }

  hasBlob(info: BlobInfo): Promise<boolean> {
    return this.#layout.hasBlob(info);
  }

  putBlob(stream: Readable, info: BlobInfo): Promise<BlobInfo> {
    return this.#layout.putBlob(stream, info);
  }

  putManifest(bytes: Buffer, mediaType: string, instance?: string): Promise<void> {
    return this.#layout.putManifest(bytes, mediaType, instance);
  }

  async commit(): Promise<void> {
    await this.#layout.commit();
    const root = join(this.#tempDir, 'layout');
    await writeTarAtomic(this.#file, await treeEntries(root));
    await this.close();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#layout.close();
    await rm(this.#tempDir, { recursive: true, force: true });
  }
}

export const ociArchiveTransport: Transport = {
  name: 'oci-archive',
  parse: (spec) => parseLayoutSpec('oci-archive', spec),
  openSource: (ref) => openOciArchiveSource(formatRef(ref), ref.path, ref.ref),
  openDestination: (ref) => OciArchiveDestination.open(formatRef(ref), ref.path, ref.ref),
};
