// A streaming tar reader: ustar and GNU headers, PAX extended headers ('x' and 'g'), GNU long
// names ('L', 'K'). Headers are parsed straight out of the incoming chunks and entry bodies are
// handed on as views of those chunks, so a layer of thousands of small files costs a few
// objects per entry instead of a stream (plus its events and promises) per entry.
// The reader decides nothing about names or types; TreeWriter (tar-apply.ts) does.

/** Entry types, named as tar-stream names them (callers and tests shared those names before). */
export type TarEntryType = 'file' | 'link' | 'symlink' | 'character-device' | 'block-device' | 'directory' | 'fifo' | 'contiguous-file';

/** One entry's header, with GNU long names and pax records already applied. */
export interface TarHeader {
  name: string;
  /** null for a typeflag barge does not know (GNU sparse files, volume labels, ...). */
  type: TarEntryType | null;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: Date;
  linkname: string | null;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
  /** The entry's pax records, global ones included; null when there are none. */
  pax: Readonly<Record<string, string>> | null;
}

/** What receives the entries, one at a time, in archive order. */
export interface TarVisitor {
  /**
   * An entry's header. Returning (or resolving to) true asks for its body through `data` and
   * `end`; false skips the body. Reading waits while a returned promise is pending.
   */
  entry(header: TarHeader): boolean | Promise<boolean>;
  /**
   * The next piece of the body asked for: bytes start to end of buf, which is the input itself
   * (no copy, and no view object per piece), so only valid during the call.
   */
  data(buf: Buffer, start: number, end: number): void;
  /** The body asked for is complete (called at once for an empty one). */
  end(): void;
}

export const TRUNCATED_MESSAGE = 'unexpected end of layer data (the tar stream is truncated)';

const BLOCK = 512;
/** Bound on a pax or GNU long-name record held in memory, as tar-stream bounded it. */
const MAX_META_SIZE = 4 * 1024 * 1024;

type MetaKind = 'pax' | 'pax-global' | 'long-name' | 'long-link';

/**
 * Reads a tar stream to its end, giving every entry to the visitor. Ends at the two zero
 * blocks that close an archive; whatever follows them is read and dropped (a producer upstream
 * must never be left waiting). An archive that stops cleanly at a header boundary without the
 * zero blocks is accepted, as tar-stream accepted it; one that stops anywhere else is truncated.
 */
export async function readTar(input: AsyncIterable<Uint8Array | string>, visitor: TarVisitor): Promise<void> {
  const reader = new TarReader(visitor);
  for await (const chunk of input) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (bytes.length > 0) await reader.push(bytes);
  }
  reader.finish();
}

class TarReader {
  private readonly visitor: TarVisitor;
  /** Bytes of the input before the current chunk, for error messages. */
  private pos = 0;
  /** A header that straddles chunks is gathered here. */
  private readonly partial = Buffer.alloc(BLOCK);
  private partialFill = 0;
  /** Body bytes still to come for the visitor. */
  private body = 0;
  /** Bytes still to pass over: unwanted bodies and the padding to the next block. */
  private skip = 0;
  private meta: { kind: MetaKind; buf: Buffer; fill: number; padding: number } | null = null;
  private longName: string | null = null;
  private longLink: string | null = null;
  private pax: Record<string, string> | null = null;
  private globalPax: Record<string, string> | null = null;
  private zeroBlocks = 0;
  private ended = false;

  constructor(visitor: TarVisitor) {
    this.visitor = visitor;
  }

  async push(chunk: Buffer): Promise<void> {
    const base = this.pos;
    this.pos += chunk.length;
    const len = chunk.length;
    let off = 0;
    while (off < len && !this.ended) {
      if (this.body > 0) {
        const n = Math.min(this.body, len - off);
        this.visitor.data(chunk, off, off + n);
        off += n;
        this.body -= n;
        if (this.body === 0) this.visitor.end();
        continue;
      }
      if (this.meta !== null) {
        const m = this.meta;
        const n = Math.min(m.buf.length - m.fill, len - off);
        m.buf.set(chunk.subarray(off, off + n), m.fill);
        m.fill += n;
        off += n;
        if (m.fill === m.buf.length) this.metaDone(m.kind, m.buf, m.padding);
        continue;
      }
      if (this.skip > 0) {
        const n = Math.min(this.skip, len - off);
        off += n;
        this.skip -= n;
        continue;
      }
      // The header block: in place in the chunk, or gathered when it straddles chunks.
      let block = chunk;
      let at = off;
      if (this.partialFill === 0 && len - off >= BLOCK) {
        off += BLOCK;
      } else {
        const n = Math.min(BLOCK - this.partialFill, len - off);
        this.partial.set(chunk.subarray(off, off + n), this.partialFill);
        this.partialFill += n;
        off += n;
        if (this.partialFill < BLOCK) break;
        this.partialFill = 0;
        block = this.partial;
        at = 0;
      }
      const header = this.header(block, at, base + off - BLOCK);
      if (header === null) continue;
      const wanted = this.visitor.entry(header);
      const want = typeof wanted === 'boolean' ? wanted : await wanted;
      // tar-stream never read a body for a directory whatever its size said, nor does Go's
      // archive/tar (which writes most layers): the bytes after the header are the next header.
      const size = header.type === 'directory' ? 0 : header.size;
      if (want) {
        this.body = size;
        this.skip = padding(size);
        if (size === 0) this.visitor.end();
      } else {
        this.skip = size + padding(size);
      }
    }
  }

  /** Checks that the input stopped at a point where an archive may stop. */
  finish(): void {
    if (this.ended) return;
    if (this.body > 0 || this.skip > 0 || this.meta !== null || this.partialFill > 0) throw new Error(TRUNCATED_MESSAGE);
  }

  /**
   * Decodes the header block at b[o..o+512] (found at byte `pos` of the input); null for blocks
   * that are not entries (end markers, long names, pax).
   */
  private header(b: Buffer, o: number, pos: number): TarHeader | null {
    // The sum with the checksum field counted as spaces.
    let unsigned = 8 * 0x20;
    for (let i = o; i < o + 148; i++) unsigned += b[i]!;
    for (let i = o + 156; i < o + BLOCK; i++) unsigned += b[i]!;
    if (unsigned === 8 * 0x20) {
      // All zeros (as tar-stream, whatever the checksum field holds): two in a row end the archive.
      if (++this.zeroBlocks === 2) this.ended = true;
      return null;
    }
    this.zeroBlocks = 0;
    const stored = parseNumber(b, o + 148, 8);
    // tar also accepts the sum of signed bytes, as some old implementations computed it.
    if (stored !== unsigned && stored !== signedSum(b, o)) {
      throw new Error(`invalid tar header at byte ${pos}: checksum mismatch (the tar is corrupt, or still compressed)`);
    }
    const ustar = b[o + 257] === 0x75 && b[o + 258] === 0x73 && b[o + 259] === 0x74 && b[o + 260] === 0x61 && b[o + 261] === 0x72; // "ustar"
    const posix = ustar && b[o + 262] === 0;
    const gnu = ustar && b[o + 262] === 0x20 && b[o + 263] === 0x20 && b[o + 264] === 0;
    if (!posix && !gnu) throw new Error(`invalid tar header at byte ${pos}: unknown format (neither ustar nor GNU)`);

    const flag = b[o + 156]!;
    let size = parseNumber(b, o + 124, 12);
    const meta = metaKind(flag);
    if (meta !== null) {
      if (!(size >= 0)) throw new Error(`invalid tar header at byte ${pos}: bad size`);
      if (size > MAX_META_SIZE) throw new Error(`invalid tar header at byte ${pos}: ${size}-byte extended header is too large`);
      const buf = Buffer.allocUnsafe(size);
      if (size === 0) this.metaDone(meta, buf, 0);
      else this.meta = { kind: meta, buf, fill: 0, padding: padding(size) };
      return null;
    }

    let name = text(b, o, 100);
    // The ustar prefix; GNU headers keep other fields there.
    if (posix && b[o + 345] !== 0) name = `${text(b, o + 345, 155)}/${name}`;
    let type = entryType(flag);
    if (type === 'file' && name.endsWith('/')) type = 'directory';
    let linkname = b[o + 157] === 0 ? null : text(b, o + 157, 100);
    let uid = parseNumber(b, o + 108, 8);
    let gid = parseNumber(b, o + 116, 8);
    let mtime = parseNumber(b, o + 136, 12);
    let uname = text(b, o + 265, 32);
    let gname = text(b, o + 297, 32);

    if (this.longName !== null) {
      name = this.longName;
      this.longName = null;
    }
    if (this.longLink !== null) {
      linkname = this.longLink;
      this.longLink = null;
    }
    const pax = this.pax === null ? this.globalPax : this.globalPax === null ? this.pax : { ...this.globalPax, ...this.pax };
    this.pax = null;
    if (pax !== null) {
      // Empty values are ignored, as tar-stream did.
      if (pax.path) name = pax.path;
      if (pax.linkpath) linkname = pax.linkpath;
      if (pax.size) size = Number.parseInt(pax.size, 10);
      // ustar id fields hold only 7 octal digits; larger ids (userns ranges) travel in pax records.
      if (pax.uid !== undefined) uid = Number.parseInt(pax.uid, 10);
      if (pax.gid !== undefined) gid = Number.parseInt(pax.gid, 10);
      if (pax.mtime !== undefined) {
        const secs = Number.parseFloat(pax.mtime);
        if (Number.isFinite(secs)) mtime = secs;
      }
      if (pax.uname !== undefined) uname = pax.uname;
      if (pax.gname !== undefined) gname = pax.gname;
    }
    if (!(size >= 0)) throw new Error(`invalid tar header at byte ${pos}: bad size for "${name}"`);
    return {
      name,
      type,
      mode: parseNumber(b, o + 100, 8),
      uid,
      gid,
      size,
      mtime: new Date(mtime * 1000),
      linkname,
      uname,
      gname,
      devmajor: parseNumber(b, o + 329, 8),
      devminor: parseNumber(b, o + 337, 8),
      pax,
    };
  }

  private metaDone(kind: MetaKind, buf: Buffer, pad: number): void {
    this.meta = null;
    this.skip = pad;
    switch (kind) {
      case 'long-name':
        this.longName = text(buf, 0, buf.length);
        break;
      case 'long-link':
        this.longLink = text(buf, 0, buf.length);
        break;
      case 'pax':
        this.pax = decodePax(buf);
        break;
      case 'pax-global':
        this.globalPax = { ...this.globalPax, ...decodePax(buf) };
        break;
    }
  }
}

function signedSum(b: Buffer, o: number): number {
  let sum = 8 * 0x20;
  for (let i = o; i < o + BLOCK; i++) {
    if (i === o + 148) i = o + 156;
    const c = b[i]!;
    sum += c < 0x80 ? c : c - 0x100;
  }
  return sum;
}

function padding(size: number): number {
  const rest = size % BLOCK;
  return rest === 0 ? 0 : BLOCK - rest;
}

function metaKind(flag: number): MetaKind | null {
  switch (flag) {
    case 0x78: // 'x'
      return 'pax';
    case 0x67: // 'g'
      return 'pax-global';
    case 0x4c: // 'L'
    case 0x4e: // 'N', old GNU long names, as tar-stream reads them
      return 'long-name';
    case 0x4b: // 'K'
      return 'long-link';
    default:
      return null;
  }
}

function entryType(flag: number): TarEntryType | null {
  switch (flag) {
    case 0: // pre-POSIX regular file
    case 0x30:
      return 'file';
    case 0x31:
      return 'link';
    case 0x32:
      return 'symlink';
    case 0x33:
      return 'character-device';
    case 0x34:
      return 'block-device';
    case 0x35:
      return 'directory';
    case 0x36:
      return 'fifo';
    case 0x37:
      return 'contiguous-file';
    default:
      return null;
  }
}

/** A NUL-terminated (or field-long) UTF-8 string. */
function text(b: Buffer, start: number, length: number): string {
  const end = start + length;
  let i = start;
  while (i < end && b[i] !== 0) i++;
  return i === start ? '' : b.toString('utf8', start, i);
}

/**
 * A numeric field: octal digits (leading spaces and NULs allowed, ended by a space, a NUL or the
 * field's end), or GNU base-256 when the first byte has its high bit set. NaN when unreadable.
 */
function parseNumber(b: Uint8Array, start: number, length: number): number {
  const end = start + length;
  if ((b[start]! & 0x80) !== 0) {
    // Big-endian two's complement; the marker bit stands in for the sign bit.
    let v = b[start]! & 0x7f;
    if ((v & 0x40) !== 0) v -= 0x80;
    for (let i = start + 1; i < end; i++) v = v * 256 + b[i]!;
    return Number.isSafeInteger(v) ? v : Number.NaN;
  }
  let i = start;
  while (i < end && (b[i] === 0x20 || b[i] === 0)) i++;
  let v = 0;
  let digits = 0;
  for (; i < end; i++) {
    const c = b[i]!;
    if (c < 0x30 || c > 0x37) break;
    v = v * 8 + (c - 0x30);
    digits++;
  }
  if (digits > 0) return v;
  return i === end || b[i] === 0 || b[i] === 0x20 ? 0 : Number.NaN;
}

/** Pax records ("LEN key=value\n"); reading stops quietly at the first malformed one, as tar-stream did. */
function decodePax(buf: Buffer): Record<string, string> {
  // No prototype: a record named __proto__ is just a record.
  const out = Object.create(null) as Record<string, string>;
  let pos = 0;
  while (pos < buf.length) {
    let sp = pos;
    while (sp < buf.length && buf[sp] !== 0x20) sp++;
    const len = Number.parseInt(buf.toString('latin1', pos, sp), 10);
    if (!(len > sp - pos + 1) || pos + len > buf.length) break;
    const record = buf.toString('utf8', sp + 1, pos + len - 1);
    const eq = record.indexOf('=');
    if (eq === -1) break;
    out[record.slice(0, eq)] = record.slice(eq + 1);
    pos += len;
  }
  return out;
}
