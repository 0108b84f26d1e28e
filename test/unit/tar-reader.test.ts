// barge's streaming tar reader against archives made by GNU tar and by hand: chunking at every
// offset, GNU and PAX extensions, numeric encodings, damaged and hostile input.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { link, mkdir, mkdtemp, readdir, readFile, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyTar } from '../../src/store/tar-apply.ts';
import { readTar, TRUNCATED_MESSAGE, type TarHeader } from '../../src/store/tar-reader.ts';

let scratch: string;
let counter = 0;

async function newDir(label: string): Promise<string> {
  const d = path.join(scratch, `${label}-${++counter}`);
  await mkdir(d);
  return d;
}

interface Seen {
  header: TarHeader;
  data: Buffer | null;
}

async function* chunked(pieces: Iterable<Buffer>): AsyncGenerator<Buffer> {
  for (const p of pieces) yield p;
}

/** Reads an archive given in pieces, asking for the bodies of regular files. */
async function read(pieces: Iterable<Buffer>): Promise<Seen[]> {
  const seen: Seen[] = [];
  let parts: Buffer[] | null = null;
  await readTar(chunked(pieces), {
    entry(header) {
      const want = header.type === 'file';
      seen.push({ header, data: null });
      parts = want ? [] : null;
      return want;
    },
    // A copy: the piece is the input itself, which the reader may reuse.
    data: (buf, start, end) => parts!.push(Buffer.from(buf.subarray(start, end))),
    end() {
      seen.at(-1)!.data = Buffer.concat(parts!);
      parts = null;
    },
  });
  return seen;
}

/** What a reading gave, without the Date objects and with bodies as hex: comparable with toEqual. */
function summary(seen: Seen[]): unknown[] {
  return seen.map(({ header, data }) => ({ ...header, mtime: header.mtime.getTime(), data: data?.toString('hex') ?? null }));
}

function splitAt(buf: Buffer, ...offsets: number[]): Buffer[] {
  const out: Buffer[] = [];
  let prev = 0;
  for (const o of [...offsets, buf.length]) {
    out.push(buf.subarray(prev, o));
    prev = o;
  }
  return out;
}

function gnuTar(dir: string, ...args: string[]): Buffer {
  return execFileSync('tar', ['-C', dir, ...args, '-cf', '-', '.'], { maxBuffer: 64 << 20 });
}

const LONG_NAME = `d/${'n'.repeat(150)}`;
const LONG_TARGET = 't'.repeat(120);
const FRACTIONAL_MTIME = new Date('2020-01-02T03:04:05.123Z');
let tree: string;
let fileB: Buffer;

beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'barge-tar-reader-'));
  tree = await newDir('tree');
  fileB = randomBytes(513);
  await writeFile(path.join(tree, 'a'), '');
  await writeFile(path.join(tree, 'b'), fileB);
  await utimes(path.join(tree, 'b'), FRACTIONAL_MTIME, FRACTIONAL_MTIME);
  await symlink(LONG_TARGET, path.join(tree, 's'));
  await link(path.join(tree, 'b'), path.join(tree, 'hl'));
  await mkdir(path.join(tree, 'd'));
  await writeFile(path.join(tree, LONG_NAME), 'x\n');
});
afterAll(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

/** A hand-made header block, for what GNU tar will not write. */
function block(
  fields: { name: string; flag?: string; size?: number; linkname?: string; magic?: 'ustar' | 'gnu' | 'none'; prefix?: string },
  checksum: 'unsigned' | 'signed' | 'wrong' = 'unsigned',
): Buffer {
  const b = Buffer.alloc(512);
  b.write(fields.name, 0, 100, 'utf8');
  b.write('0000644\0', 100, 'latin1');
  b.write('0000000\0', 108, 'latin1');
  b.write('0000000\0', 116, 'latin1');
  b.write(`${(fields.size ?? 0).toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  b.write('14000000000\0', 136, 'latin1');
  b.write(fields.flag ?? '0', 156, 'latin1');
  if (fields.linkname !== undefined) b.write(fields.linkname, 157, 100, 'utf8');
  const magic = fields.magic ?? 'ustar';
  if (magic === 'ustar') b.write('ustar\u000000', 257, 'latin1');
  if (magic === 'gnu') b.write('ustar  \0', 257, 'latin1');
  if (fields.prefix !== undefined) b.write(fields.prefix, 345, 155, 'utf8');
  return withChecksum(b, checksum);
}

function withChecksum(b: Buffer, kind: 'unsigned' | 'signed' | 'wrong' = 'unsigned'): Buffer {
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const c of b) sum += kind === 'signed' && c >= 0x80 ? c - 0x100 : c;
  if (kind === 'wrong') sum += 1;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return b;
}

function body(data: string | Buffer): Buffer {
  const d = typeof data === 'string' ? Buffer.from(data) : data;
  return Buffer.concat([d, Buffer.alloc((512 - (d.length % 512)) % 512)]);
}

function paxRecord(key: string, value: string): string {
  const rest = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(rest) + 1;
  while (String(len).length + Buffer.byteLength(rest) !== len) len++;
  return `${len}${rest}`;
}

function paxHeader(flag: 'x' | 'g', records: Record<string, string>): Buffer {
  const text = Object.entries(records)
    .map(([k, v]) => paxRecord(k, v))
    .join('');
  return Buffer.concat([block({ name: 'PaxHeader', flag, size: Buffer.byteLength(text) }), body(text)]);
}

const END = Buffer.alloc(1024);

describe('readTar on GNU tar archives', () => {
  for (const format of ['gnu', 'pax'] as const) {
    it(`reads ${format} long names, links, ids and times, in one piece or split anywhere`, async () => {
      const archive = gnuTar(tree, `--format=${format}`, '--owner=u:3000000', '--group=g:3000001', '--sort=name', ...(format === 'pax' ? ['--pax-option=comment=hello'] : []));
      const whole = await read([archive]);
      const byName = new Map(whole.map((s) => [s.header.name, s]));
      expect([...byName.keys()].sort()).toEqual(['./', './a', './b', './d/', `./${LONG_NAME}`, './hl', './s']);
      expect(byName.get('./b')!.data).toEqual(fileB);
      expect(byName.get('./a')!.data).toEqual(Buffer.alloc(0));
      expect(byName.get(`./${LONG_NAME}`)!.data!.toString()).toBe('x\n');
      expect(byName.get('./s')!.header).toMatchObject({ type: 'symlink', linkname: LONG_TARGET });
      expect(byName.get('./hl')!.header).toMatchObject({ type: 'link', linkname: './b' });
      expect(byName.get('./d/')!.header.type).toBe('directory');
      for (const s of whole) expect(s.header).toMatchObject({ uid: 3000000, gid: 3000001, uname: 'u', gname: 'g' });
      if (format === 'pax') {
        // Sub-second times only travel in pax records; the global header reaches every entry.
        expect(byName.get('./b')!.header.mtime.getTime()).toBe(FRACTIONAL_MTIME.getTime());
        for (const s of whole) expect(s.header.pax).toMatchObject({ comment: 'hello', uid: '3000000' });
      } else {
        expect(byName.get('./b')!.header.mtime.getTime()).toBe(Math.floor(FRACTIONAL_MTIME.getTime() / 1000) * 1000);
        for (const s of whole) expect(s.header.pax).toBeNull();
      }

      const expected = summary(whole);
      expect(summary(await read([...archive].map((b) => Buffer.from([b]))))).toEqual(expected);
      for (let at = 1; at < archive.length; at++) {
        const got = summary(await read(splitAt(archive, at)));
        if (JSON.stringify(got) !== JSON.stringify(expected)) expect({ at, got }).toEqual({ at, got: expected });
      }
    });
  }

  it('unpacks what it reads (applyTar), the same as GNU tar does', async () => {
    const root = await newDir('apply');
    const res = await applyTar(Readable.from([gnuTar(tree, '--format=pax')]), { root, whiteouts: 'none', noChown: true });
    // The hardlink has no body of its own.
    expect(res).toEqual({ entries: 7, bytes: 513 + 2 });
    const viaTar = await newDir('viatar');
    execFileSync('tar', ['-C', viaTar, '-xf', '-'], { input: gnuTar(tree, '--format=pax') });
    const list = async (dir: string): Promise<string[]> => (await readdir(dir, { recursive: true })).sort();
    expect(await list(root)).toEqual(await list(viaTar));
    expect(await readFile(path.join(root, LONG_NAME), 'utf8')).toBe('x\n');
  });
});

describe('readTar on hand-made archives', () => {
  it('accepts signed checksums and reads the ustar prefix', async () => {
    const archive = Buffer.concat([block({ name: 'caf\u00e9', prefix: 'dir', size: 2 }, 'signed'), body('ok'), END]);
    const [e] = await read([archive]);
    expect(e!.header.name).toBe('dir/caf\u00e9');
    expect(e!.data!.toString()).toBe('ok');
  });

  it('refuses a bad checksum, and a header of no known format', async () => {
    const bad = Buffer.concat([block({ name: 'f' }, 'wrong'), END]);
    await expect(read([bad])).rejects.toThrow(/invalid tar header at byte 0: checksum mismatch/);
    const later = Buffer.concat([block({ name: 'ok', size: 1 }), body('1'), block({ name: 'f' }, 'wrong'), END]);
    await expect(read([later])).rejects.toThrow(/invalid tar header at byte 1024: checksum mismatch/);
    await expect(read([Buffer.concat([block({ name: 'v7', magic: 'none' }), END])])).rejects.toThrow(/unknown format/);
    // Compressed data is not a tar: its first block fails the checksum.
    await expect(read([Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0]), Buffer.alloc(4096, 0x5a)])])).rejects.toThrow(/checksum mismatch/);
  });

  it('reads GNU base-256 sizes and ids', async () => {
    const h = block({ name: 'big', magic: 'gnu' });
    // 0x80 marker, then a big-endian value: size 1000, uid 3000000.
    h.fill(0, 124, 136);
    h[124] = 0x80;
    h.writeUInt16BE(1000, 134);
    h.fill(0, 108, 116);
    h[108] = 0x80;
    h.writeUInt32BE(3000000, 112);
    withChecksum(h);
    const data = randomBytes(1000);
    const [e] = await read([Buffer.concat([h, body(data), END])]);
    expect(e!.header).toMatchObject({ size: 1000, uid: 3000000 });
    expect(e!.data).toEqual(data);
  });

  it('applies per-entry pax records over global ones, and long names', async () => {
    const archive = Buffer.concat([
      paxHeader('g', { uname: 'everyone', 'SCHILY.xattr.user.a': 'b' }),
      paxHeader('x', { path: 'p/from-pax', size: '3', uid: '70000', mtime: '1.5' }),
      block({ name: 'short', size: 0 }),
      body('abc'),
      block({ name: '././@LongLink', flag: 'L', size: 9, magic: 'gnu' }),
      body('long/nam\0'),
      block({ name: 'cut', flag: '2', linkname: 'cut', magic: 'gnu' }),
      block({ name: 'plain' }),
      END,
    ]);
    const seen = await read([archive]);
    expect(seen.map((s) => s.header.name)).toEqual(['p/from-pax', 'long/nam', 'plain']);
    expect(seen[0]!.header).toMatchObject({ size: 3, uid: 70000, uname: 'everyone', pax: { 'SCHILY.xattr.user.a': 'b', path: 'p/from-pax' } });
    expect(seen[0]!.header.mtime.getTime()).toBe(1500);
    expect(seen[0]!.data!.toString()).toBe('abc');
    // The global record stays for later entries; the per-entry ones do not.
    expect(seen[2]!.header).toMatchObject({ uname: 'everyone', uid: 0, size: 0 });
  });

  it('refuses an oversized extended header', async () => {
    const archive = Buffer.concat([block({ name: 'PaxHeader', flag: 'x', size: 5 * 1024 * 1024 }), END]);
    await expect(read([archive])).rejects.toThrow(/extended header is too large/);
  });

  it('fails on a stream cut inside a header, a body or its padding', async () => {
    const archive = Buffer.concat([block({ name: 'f', size: 700 }), body(randomBytes(700)), END]);
    for (const cut of [100, 512 + 10, 512 + 700, 512 + 1020]) {
      await expect(read([archive.subarray(0, cut)])).rejects.toThrow(TRUNCATED_MESSAGE);
    }
    // Inside a pax header's records, too.
    const pax = paxHeader('x', { path: 'x'.repeat(600) });
    await expect(read([pax.subarray(0, 700)])).rejects.toThrow(TRUNCATED_MESSAGE);
  });

  it('accepts an archive without end blocks, and one ending after a lone zero block', async () => {
    const entry = Buffer.concat([block({ name: 'f', size: 1 }), body('1')]);
    expect((await read([entry])).map((s) => s.header.name)).toEqual(['f']);
    expect((await read([entry, Buffer.alloc(512)])).map((s) => s.header.name)).toEqual(['f']);
    // A lone zero block inside the archive is passed over, as tar-stream did.
    expect((await read([entry, Buffer.alloc(512), block({ name: 'g' }), END])).map((s) => s.header.name)).toEqual(['f', 'g']);
  });

  it('reads and drops whatever follows the end blocks', async () => {
    const archive = Buffer.concat([block({ name: 'f', size: 1 }), body('1'), END, Buffer.from('garbage that is no tar header at all'), Buffer.alloc(100_000, 0x41)]);
    const src = Readable.from(splitAt(archive, 700, 2000, 5000));
    let ended = false;
    src.on('end', () => (ended = true));
    const seen: string[] = [];
    await readTar(src, { entry: (h) => (seen.push(h.name), false), data: () => {}, end: () => {} });
    expect(seen).toEqual(['f']);
    expect(ended).toBe(true);
  });

  it('reads no body for a directory, whatever its size field says', async () => {
    const archive = Buffer.concat([block({ name: 'dir/', flag: '5', size: 1024 }), block({ name: 'next' }), END]);
    expect((await read([archive])).map((s) => [s.header.name, s.header.type])).toEqual([
      ['dir/', 'directory'],
      ['next', 'file'],
    ]);
  });

  it('gives unknown typeflags as null and skips their bodies', async () => {
    const archive = Buffer.concat([block({ name: 'sparse', flag: 'S', size: 600, magic: 'gnu' }), body(Buffer.alloc(600, 1)), block({ name: 'after' }), END]);
    expect((await read([archive])).map((s) => [s.header.name, s.header.type])).toEqual([
      ['sparse', null],
      ['after', 'file'],
    ]);
  });
});

describe('hostile names through the extensions', () => {
  it('still refuses escapes given by pax paths and GNU long names', async () => {
    const cases = [
      Buffer.concat([paxHeader('x', { path: '../../etc/evil' }), block({ name: 'innocent', size: 1 }), body('x'), END]),
      Buffer.concat([block({ name: '././@LongLink', flag: 'L', size: 15, magic: 'gnu' }), body('a/../../../evil'), block({ name: 'innocent', magic: 'gnu' }), END]),
    ];
    for (const archive of cases) {
      const root = await newDir('hostile');
      await expect(applyTar(Readable.from([archive]), { root, whiteouts: 'none' })).rejects.toThrow(/escapes the layer root/);
      expect(await readdir(root)).toEqual([]);
    }
  });

  it('still refuses hardlinks out of the root given by pax linkpath', async () => {
    const root = await newDir('hostile-link');
    const archive = Buffer.concat([paxHeader('x', { linkpath: '../../etc/passwd' }), block({ name: 'h', flag: '1', linkname: 'harmless' }), END]);
    await expect(applyTar(Readable.from([archive]), { root, whiteouts: 'none' })).rejects.toThrow(/points outside the layer/);
  });
});
