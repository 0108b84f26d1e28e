// Layer tar code against real files: round trips, overlay whiteouts, and hostile layers.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmod,
  link,
  lchown,
  lstat,
  lutimes,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rm,
  stat,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import tar from 'tar-stream';
import type { Header } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyTar, type ApplyOptions } from '../../src/store/tar-apply.ts';
import { diffTar, tarDirectory } from '../../src/store/tar-diff.ts';
import { cleanTarPath, resolveInRoot } from '../../src/store/secure-path.ts';
import { readTar } from '../helpers.ts';

let scratch: string;
let counter = 0;

beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'barge-tar-test-'));
});
afterAll(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

async function newDir(label: string): Promise<string> {
  const d = path.join(scratch, `${label}-${++counter}`);
  await mkdir(d);
  return d;
}

function sh(cmd: string, ...args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8' });
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

type TestEntry = { header: Partial<Header> & { name: string }; body?: string | Buffer };

/** Builds a tar in memory, the way a hostile registry could. */
async function packTar(entries: TestEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => chunks.push(c as Buffer));
  const ended = new Promise<void>((r) => pack.on('end', () => r()));
  for (const e of entries) {
    await new Promise<void>((resolve, reject) => {
      if (e.body !== undefined) pack.entry(e.header, e.body, (err) => (err ? reject(err) : resolve()));
      else pack.entry(e.header, (err) => (err ? reject(err) : resolve()));
    });
  }
  pack.finalize();
  await ended;
  return Buffer.concat(chunks);
}

function apply(buf: Buffer, opts: ApplyOptions): ReturnType<typeof applyTar> {
  return applyTar(Readable.from([buf]), opts);
}

interface Snapshot {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  target?: string;
  sha?: string;
  rdev?: number;
}

/** A comparable description of a tree: types, permission bits, owners, mtimes, link targets, content. */
async function snapshot(root: string): Promise<Record<string, Snapshot>> {
  const out: Record<string, Snapshot> = {};
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(path.join(root, rel))).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const p = path.join(root, r);
      const st = await lstat(p);
      const s: Snapshot = { type: '', mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: Math.floor(st.mtimeMs / 1000) };
      if (st.isDirectory()) s.type = 'dir';
      else if (st.isSymbolicLink()) {
        s.type = 'symlink';
        s.target = await readlink(p);
      } else if (st.isFile()) {
        s.type = 'file';
        s.sha = createHash('sha256').update(await readFile(p)).digest('hex');
      } else if (st.isFIFO()) s.type = 'fifo';
      else if (st.isCharacterDevice()) {
        s.type = 'chr';
        s.rdev = st.rdev;
      } else if (st.isBlockDevice()) {
        s.type = 'blk';
        s.rdev = st.rdev;
      }
      out[r] = s;
      if (st.isDirectory()) await walk(r);
    }
  };
  await walk('');
  return out;
}

const LONG_NAME = `${'long-directory-name-'.repeat(4)}/${'x'.repeat(120)}.txt`;

/** A tree with every kind of entry a layer carries. */
async function buildTree(dir: string): Promise<void> {
  await writeFile(path.join(dir, 'a.txt'), 'hello\n');
  await chmod(path.join(dir, 'a.txt'), 0o644);
  await mkdir(path.join(dir, 'bin'));
  await writeFile(path.join(dir, 'bin/su'), 'setuid binary');
  await chmod(path.join(dir, 'bin/su'), 0o4755);
  await writeFile(path.join(dir, 'bin/wall'), 'setgid binary');
  await lchown(path.join(dir, 'bin/wall'), 0, 5);
  await chmod(path.join(dir, 'bin/wall'), 0o2755);
  await mkdir(path.join(dir, 'tmp'));
  await chmod(path.join(dir, 'tmp'), 0o1777);
  await writeFile(path.join(dir, 'shadow'), 'secret');
  await chmod(path.join(dir, 'shadow'), 0o000);
  await mkdir(path.join(dir, 'sub/deep/er'), { recursive: true });
  await writeFile(path.join(dir, 'sub/deep/er/f'), randomBytes(3 * 1024 * 1024 + 17));
  await symlink('a.txt', path.join(dir, 'link'));
  await symlink('/etc/passwd', path.join(dir, 'abs-link'));
  await link(path.join(dir, 'a.txt'), path.join(dir, 'sub/hard'));
  await link(path.join(dir, 'a.txt'), path.join(dir, 'sub/deep/hard2'));
  sh('mkfifo', path.join(dir, 'pipe'));
  await mkdir(path.join(dir, 'www'));
  await writeFile(path.join(dir, 'www/index.html'), '<html>');
  await lchown(path.join(dir, 'www/index.html'), 33, 33);
  await lchown(path.join(dir, 'www'), 33, 33);
  await symlink('index.html', path.join(dir, 'www/home'));
  await lchown(path.join(dir, 'www/home'), 33, 33);
  await writeFile(path.join(dir, 'big-uid'), 'userns id');
  await lchown(path.join(dir, 'big-uid'), 1_000_000, 1_000_001);
  await mkdir(path.join(dir, 'dev'));
  sh('mknod', path.join(dir, 'dev/null'), 'c', '1', '3');
  sh('mknod', path.join(dir, 'dev/loop9'), 'b', '7', '9');
  await writeFile(path.join(dir, 'é-ünïcode.txt'), 'utf8 name');
  await mkdir(path.join(dir, path.dirname(LONG_NAME)));
  await writeFile(path.join(dir, LONG_NAME), 'long name');
  await writeFile(path.join(dir, 'empty'), '');
  // Read-only directory with content: its mode must be applied after its children are written.
  await mkdir(path.join(dir, 'ro'));
  await writeFile(path.join(dir, 'ro/inside'), 'x');
  await chmod(path.join(dir, 'ro'), 0o555);
  // Fixed times, set last (bottom up) so that creating children does not disturb them.
  const t = new Date('2020-02-02T02:02:02Z');
  for (const p of ['a.txt', 'sub/deep/er/f', 'sub/deep/er', 'sub/deep', 'sub', 'ro', 'www']) await utimes(path.join(dir, p), t, t);
  await lutimes(path.join(dir, 'link'), t, t);
}

describe('cleanTarPath', () => {
  it('normalises names and rejects escapes', () => {
    expect(cleanTarPath('./a/b')).toBe('a/b');
    expect(cleanTarPath('/etc//passwd')).toBe('etc/passwd');
    expect(cleanTarPath('a/./b/')).toBe('a/b');
    expect(cleanTarPath('a/../b')).toBe('b');
    expect(cleanTarPath('./')).toBe('');
    expect(cleanTarPath('..')).toBeNull();
    expect(cleanTarPath('../etc/passwd')).toBeNull();
    expect(cleanTarPath('a/../../b')).toBeNull();
    expect(cleanTarPath('/../x')).toBeNull();
    expect(cleanTarPath('..foo/bar..')).toBe('..foo/bar..');
  });
});

describe('resolveInRoot', () => {
  let root: string;
  beforeAll(async () => {
    root = await newDir('resolve');
    await mkdir(path.join(root, 'usr/lib'), { recursive: true });
    await symlink('usr/lib', path.join(root, 'lib'));
    await symlink('/usr/lib', path.join(root, 'abslib'));
    await symlink('lib', path.join(root, 'chain1'));
    await symlink('chain1', path.join(root, 'chain2'));
    await symlink('../../../../..', path.join(root, 'up'));
    await symlink('/etc', path.join(root, 'hostetc'));
    // In chroot terms this points at itself.
    await symlink('/abs-self', path.join(root, 'abs-self'));
    await symlink('loop-b', path.join(root, 'loop-a'));
    await symlink('loop-a', path.join(root, 'loop-b'));
    await symlink('self', path.join(root, 'self'));
    await mkdir(path.join(root, 'usr/lib/sub'));
    await symlink('../../bin', path.join(root, 'usr/lib/sub/rel'));
  });

  it('keeps plain paths and appends missing components', async () => {
    expect(await resolveInRoot(root, '/usr/lib')).toBe(path.join(root, 'usr/lib'));
    expect(await resolveInRoot(root, 'usr/lib/missing/deeper')).toBe(path.join(root, 'usr/lib/missing/deeper'));
    expect(await resolveInRoot(root, '/')).toBe(root);
    expect(await resolveInRoot(root, '')).toBe(root);
  });

  it('follows relative, absolute and chained symlinks inside root', async () => {
    expect(await resolveInRoot(root, '/lib/x')).toBe(path.join(root, 'usr/lib/x'));
    expect(await resolveInRoot(root, 'abslib/x')).toBe(path.join(root, 'usr/lib/x'));
    expect(await resolveInRoot(root, '/chain2/sub')).toBe(path.join(root, 'usr/lib/sub'));
    expect(await resolveInRoot(root, '/lib/sub/rel/sh')).toBe(path.join(root, 'usr/bin/sh'));
  });

  it('clamps .. and absolute targets at root', async () => {
    expect(await resolveInRoot(root, '/../../../usr/passwd')).toBe(path.join(root, 'usr/passwd'));
    expect(await resolveInRoot(root, '/hostetc/passwd')).toBe(path.join(root, 'etc/passwd'));
    expect(await resolveInRoot(root, 'up/usr/shadow')).toBe(path.join(root, 'usr/shadow'));
    expect(await resolveInRoot(root, 'up/../../hostetc/../../x')).toBe(path.join(root, 'x'));
    expect(await resolveInRoot(root, 'missing/../../up')).toBe(root);
  });

  it('leaves a final symlink alone when asked', async () => {
    expect(await resolveInRoot(root, '/lib', { followFinal: false })).toBe(path.join(root, 'lib'));
    expect(await resolveInRoot(root, '/chain2/sub', { followFinal: false })).toBe(path.join(root, 'usr/lib/sub'));
    expect(await resolveInRoot(root, '/lib')).toBe(path.join(root, 'usr/lib'));
  });

  it('fails on loops', async () => {
    await expect(resolveInRoot(root, '/loop-a/x')).rejects.toThrow(/too many levels of symbolic links/);
    await expect(resolveInRoot(root, 'self')).rejects.toThrow(/too many levels of symbolic links/);
    await expect(resolveInRoot(root, '/abs-self/passwd')).rejects.toThrow(/too many levels of symbolic links/);
    expect(await resolveInRoot(root, 'self', { followFinal: false })).toBe(path.join(root, 'self'));
  });
});

describe('diffTar / applyTar round trip', () => {
  it('reproduces types, modes, owners, times, links and content', async () => {
    const src = await newDir('src');
    await buildTree(src);
    const buf = await collect(tarDirectory(src));
    const dst = await newDir('dst');
    const res = await apply(buf, { root: dst, whiteouts: 'none' });

    const want = await snapshot(src);
    const got = await snapshot(dst);
    expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
    for (const [rel, s] of Object.entries(want)) {
      // Directory mtimes included: they are set after the directory's children are written.
      expect(got[rel], rel).toEqual(s);
    }
    expect(got['bin/su']!.mode).toBe(0o4755);
    expect(got['bin/wall']!.mode).toBe(0o2755);
    expect(got['tmp']!.mode).toBe(0o1777);
    expect(got['shadow']!.mode).toBe(0);
    expect(got['www/index.html']!.uid).toBe(33);
    expect(got['big-uid']!.uid).toBe(1_000_000);
    expect(got['big-uid']!.gid).toBe(1_000_001);
    expect(got['abs-link']!.target).toBe('/etc/passwd');
    expect(got['dev/null']).toMatchObject({ type: 'chr', rdev: (await stat('/dev/null')).rdev });
    expect(got['sub']!.mtime).toBe(Date.parse('2020-02-02T02:02:02Z') / 1000);

    const ino = (await stat(path.join(dst, 'a.txt'))).ino;
    expect((await stat(path.join(dst, 'sub/hard'))).ino).toBe(ino);
    expect((await stat(path.join(dst, 'sub/deep/hard2'))).ino).toBe(ino);

    const entries = await readTar(buf);
    expect(res.entries).toBe(entries.length);
    expect(res.bytes).toBe(entries.filter((e) => e.header.type === 'file').reduce((n, e) => n + e.header.size, 0));
    // One body for the three names of a.txt.
    expect(entries.filter((e) => e.header.type === 'link').map((e) => e.header.linkname)).toEqual(['a.txt', 'a.txt']);
    expect(entries.some((e) => e.header.name === '' || e.header.name === '.' || e.header.name.startsWith('./'))).toBe(false);
  });

  it('walks in byte order, parents first, and leaves out excluded paths', async () => {
    const src = await newDir('order');
    for (const n of ['b', 'a.txt', 'B', 'é', 'a-x', 'z']) await writeFile(path.join(src, n), n);
    await mkdir(path.join(src, 'a'));
    await writeFile(path.join(src, 'a/inner'), '');
    await mkdir(path.join(src, 'proc'));
    await writeFile(path.join(src, 'proc/cpuinfo'), '');
    await writeFile(path.join(src, 'resolv.conf'), '');
    const names = (await readTar(await collect(diffTar({ dir: src, mode: 'plain', exclude: new Set(['proc', 'resolv.conf']) })))).map(
      (e) => e.header.name,
    );
    expect(names).toEqual(['B', 'a', 'a/inner', 'a-x', 'a.txt', 'b', 'z', 'é']);
  });

  it('gives identical bytes for the same tree with a timestamp', async () => {
    const src = await newDir('det');
    await buildTree(src);
    const digest = async (): Promise<string> =>
      createHash('sha256')
        .update(await collect(diffTar({ dir: src, mode: 'plain', timestamp: 1_700_000_000 })))
        .digest('hex');
    const first = await digest();
    // Touch every mtime: with a timestamp they must not matter.
    await utimes(path.join(src, 'a.txt'), new Date(), new Date());
    expect(await digest()).toBe(first);
    const entries = await readTar(await collect(tarDirectory(src, { timestamp: 1_700_000_000 })));
    expect(new Set(entries.map((e) => e.header.mtime.getTime()))).toEqual(new Set([1_700_000_000_000]));
  });

  it('only lowers newer mtimes with clampOnly', async () => {
    const src = await newDir('clamp');
    await writeFile(path.join(src, 'old'), '');
    await writeFile(path.join(src, 'new'), '');
    await utimes(path.join(src, 'old'), 1000, 1000);
    const entries = await readTar(await collect(diffTar({ dir: src, mode: 'plain', timestamp: 5000, clampOnly: true })));
    const times = Object.fromEntries(entries.map((e) => [e.header.name, e.header.mtime.getTime() / 1000]));
    expect(times).toEqual({ new: 5000, old: 1000 });
  });

  it('lets a slow reader apply backpressure', async () => {
    const src = await newDir('bp');
    await writeFile(path.join(src, 'big'), randomBytes(8 * 1024 * 1024));
    for (let i = 0; i < 2000; i++) await mkdir(path.join(src, `d${i}`));
    const stream = diffTar({ dir: src, mode: 'plain' });
    await new Promise((r) => setTimeout(r, 200));
    // Nothing reads yet, so the producer must have stopped well short of the whole 9 MB.
    expect(stream.readableLength).toBeLessThan(1024 * 1024);
    const buf = await collect(stream);
    expect(buf.length).toBeGreaterThan(8 * 1024 * 1024);
  });

  it('stops cleanly when the reader goes away', async () => {
    const src = await newDir('early');
    for (let i = 0; i < 50; i++) await writeFile(path.join(src, `f${i}`), randomBytes(256 * 1024));
    const stream = diffTar({ dir: src, mode: 'plain' });
    await new Promise<void>((resolve) => stream.once('data', () => resolve()));
    stream.destroy();
    await new Promise((r) => setTimeout(r, 200));
    expect(stream.destroyed).toBe(true);
  });

  it('keeps directory metadata for names starting with dots', async () => {
    const root = await newDir('dots');
    await apply(await packTar([{ header: { name: '..d/', type: 'directory', mode: 0o711, mtime: new Date(86_400_000) } }]), {
      root,
      whiteouts: 'none',
    });
    const st = await stat(path.join(root, '..d'));
    expect([st.mode & 0o7777, st.mtimeMs]).toEqual([0o711, 86_400_000]);
  });

  it('replaces what is in the way, and the last entry of a name wins', async () => {
    const root = await newDir('replace-kinds');
    await mkdir(path.join(root, 'was-dir/inner'), { recursive: true });
    await writeFile(path.join(root, 'was-dir/inner/x'), 'x');
    await writeFile(path.join(root, 'was-file'), 'x');
    await mkdir(path.join(root, 'stays-dir'));
    await writeFile(path.join(root, 'stays-dir/old'), 'old');
    await apply(
      await packTar([
        { header: { name: 'was-dir', mode: 0o640 }, body: 'now a file' },
        { header: { name: 'was-file/', type: 'directory', mode: 0o750 } },
        { header: { name: 'was-file/child' }, body: 'child' },
        { header: { name: 'stays-dir/', type: 'directory', mode: 0o700 } },
        { header: { name: 'twice' }, body: 'first' },
        { header: { name: 'twice', mode: 0o600 }, body: 'second' },
      ]),
      { root, whiteouts: 'none' },
    );
    expect(await readFile(path.join(root, 'was-dir'), 'utf8')).toBe('now a file');
    expect((await stat(path.join(root, 'was-file'))).mode & 0o7777).toBe(0o750);
    expect(await readFile(path.join(root, 'was-file/child'), 'utf8')).toBe('child');
    expect(await readFile(path.join(root, 'stays-dir/old'), 'utf8')).toBe('old');
    expect((await stat(path.join(root, 'stays-dir'))).mode & 0o7777).toBe(0o700);
    expect(await readFile(path.join(root, 'twice'), 'utf8')).toBe('second');
    expect((await stat(path.join(root, 'twice'))).mode & 0o7777).toBe(0o600);
  });

  it('applies --chown style ownership', async () => {
    const src = await newDir('chown-src');
    await mkdir(path.join(src, 'd'));
    await writeFile(path.join(src, 'd/f'), 'x');
    await symlink('f', path.join(src, 'd/l'));
    const dst = await newDir('chown-dst');
    await apply(await collect(tarDirectory(src)), { root: dst, whiteouts: 'none', chown: { uid: 1234, gid: 5678 } });
    for (const p of ['d', 'd/f', 'd/l']) {
      const st = await lstat(path.join(dst, p));
      expect([st.uid, st.gid], p).toEqual([1234, 5678]);
    }
  });
});

describe('overlay whiteouts', () => {
  async function buildUpper(userxattr = false): Promise<string> {
    const upper = await newDir('upper');
    sh('mknod', path.join(upper, 'gone'), 'c', '0', '0');
    await mkdir(path.join(upper, 'opq'));
    await writeFile(path.join(upper, 'opq/new.txt'), 'new');
    sh('setfattr', '-n', userxattr ? 'user.overlay.opaque' : 'trusted.overlay.opaque', '-v', 'y', path.join(upper, 'opq'));
    await mkdir(path.join(upper, 'keep'));
    sh('mknod', path.join(upper, 'keep/gone2'), 'c', '0', '0');
    await mkdir(path.join(upper, 'plain'));
    // Kernels mark directories holding whiteouts with opaque="x"; that is not opaque.
    sh('setfattr', '-n', 'trusted.overlay.opaque', '-v', 'x', path.join(upper, 'plain'));
    return upper;
  }

  it('emits .wh. markers and opaque markers', async () => {
    const upper = await buildUpper();
    const entries = await readTar(await collect(diffTar({ dir: upper, mode: 'overlay', timestamp: 42 })));
    expect(entries.map((e) => e.header.name)).toEqual(['.wh.gone', 'keep', 'keep/.wh.gone2', 'opq', 'opq/.wh..wh..opq', 'opq/new.txt', 'plain']);
    for (const e of entries.filter((x) => x.header.name.includes('.wh.'))) {
      expect(e.header).toMatchObject({ type: 'file', size: 0, mode: 0, uid: 0, gid: 0 });
      expect(e.header.mtime.getTime()).toBe(42_000);
    }
    // In plain mode the same device is just a device.
    const plain = await readTar(await collect(diffTar({ dir: upper, mode: 'plain' })));
    expect(plain.find((e) => e.header.name === 'gone')?.header.type).toBe('character-device');
    expect(plain.some((e) => e.header.name.includes('.wh.'))).toBe(false);
  });

  it('recreates whiteout devices and opaque xattrs in overlay mode', async () => {
    const upper = await buildUpper();
    const dst = await newDir('ovl-dst');
    await apply(await collect(diffTar({ dir: upper, mode: 'overlay' })), { root: dst, whiteouts: 'overlay' });
    for (const p of ['gone', 'keep/gone2']) {
      const st = await lstat(path.join(dst, p));
      expect(st.isCharacterDevice(), p).toBe(true);
      expect(st.rdev).toBe(0);
    }
    expect(sh('getfattr', '--absolute-names', '--only-values', '-n', 'trusted.overlay.opaque', path.join(dst, 'opq'))).toBe('y');
    expect(await readFile(path.join(dst, 'opq/new.txt'), 'utf8')).toBe('new');
    // A second diff of the result gives the same layer.
    const again = await readTar(await collect(diffTar({ dir: dst, mode: 'overlay' })));
    expect(again.map((e) => e.header.name)).toContain('opq/.wh..wh..opq');
  });

  it('uses user.overlay.opaque with userxattr', async () => {
    const upper = await buildUpper(true);
    const entries = await readTar(await collect(diffTar({ dir: upper, mode: 'overlay', userxattr: true })));
    expect(entries.map((e) => e.header.name)).toContain('opq/.wh..wh..opq');
    // The trusted name does not count in userxattr mode, nor the user name without it.
    const trusted = await readTar(await collect(diffTar({ dir: upper, mode: 'overlay' })));
    expect(trusted.map((e) => e.header.name)).not.toContain('opq/.wh..wh..opq');
    const dst = await newDir('ovl-user');
    await apply(await collect(diffTar({ dir: upper, mode: 'overlay', userxattr: true })), { root: dst, whiteouts: 'overlay', userxattr: true });
    expect(sh('getfattr', '--absolute-names', '--only-values', '-n', 'user.overlay.opaque', path.join(dst, 'opq'))).toBe('y');
  });

  it('finds opaque directories whose names need escaping', async () => {
    const upper = await newDir('escaped');
    const weird = ['sp ace', 'new\nline', 'back\\slash', 'ünï', 'eq=1'];
    for (const w of weird) {
      await mkdir(path.join(upper, w));
      sh('setfattr', '-n', 'trusted.overlay.opaque', '-v', 'y', path.join(upper, w));
    }
    const names = (await readTar(await collect(diffTar({ dir: upper, mode: 'overlay' })))).map((e) => e.header.name);
    for (const w of weird) expect(names, JSON.stringify(w)).toContain(`${w}/.wh..wh..opq`);
  });

  it('deletes whiteout targets and empties opaque directories in apply mode', async () => {
    const lower = await newDir('lower');
    await writeFile(path.join(lower, 'gone'), 'old');
    await mkdir(path.join(lower, 'keep/gone2'), { recursive: true });
    await writeFile(path.join(lower, 'keep/gone2/x'), 'x');
    await writeFile(path.join(lower, 'keep/stays'), 'stays');
    await mkdir(path.join(lower, 'opq/olddir'), { recursive: true });
    await writeFile(path.join(lower, 'opq/old.txt'), 'old');
    await writeFile(path.join(lower, 'opq/olddir/x'), 'x');
    await writeFile(path.join(lower, 'opq/new.txt'), 'to be replaced');

    const upper = await buildUpper();
    await apply(await collect(diffTar({ dir: upper, mode: 'overlay' })), { root: lower, whiteouts: 'apply' });
    const got = await snapshot(lower);
    expect(Object.keys(got).sort()).toEqual(['keep', 'keep/stays', 'opq', 'opq/new.txt', 'plain']);
    expect(await readFile(path.join(lower, 'opq/new.txt'), 'utf8')).toBe('new');
  });

  it('keeps what the same tar wrote before a late opaque marker', async () => {
    const lower = await newDir('late-opq');
    await mkdir(path.join(lower, 'd/-sub'), { recursive: true });
    await writeFile(path.join(lower, 'd/-sub/old'), 'old');
    await writeFile(path.join(lower, 'd/other'), 'other');
    // Sorted the way Docker writes it: "-sub" sorts before ".wh..wh..opq".
    const buf = await packTar([
      { header: { name: 'd/', type: 'directory', mode: 0o755 } },
      { header: { name: 'd/-sub/', type: 'directory', mode: 0o755 } },
      { header: { name: 'd/-sub/new', mode: 0o644 }, body: 'new' },
      { header: { name: 'd/.wh..wh..opq', mode: 0o644 }, body: '' },
    ]);
    await apply(buf, { root: lower, whiteouts: 'apply' });
    expect(Object.keys(await snapshot(lower)).sort()).toEqual(['d', 'd/-sub', 'd/-sub/new']);
  });

  it('treats .wh. names literally in none mode', async () => {
    const dst = await newDir('literal');
    await writeFile(path.join(dst, 'x'), 'x');
    await apply(await packTar([{ header: { name: '.wh.x' }, body: '' }]), { root: dst, whiteouts: 'none' });
    expect((await readdir(dst)).sort()).toEqual(['.wh.x', 'x']);
  });
});

describe('hostile layers', () => {
  async function outsideDir(): Promise<string> {
    const d = await newDir('outside');
    await writeFile(path.join(d, 'victim'), 'precious');
    await chmod(d, 0o750);
    return d;
  }

  it('rejects entries that climb out with ..', async () => {
    const parent = await newDir('dotdot');
    const root = path.join(parent, 'root');
    await mkdir(root);
    for (const name of ['../escape', 'a/../../escape', './../escape']) {
      await expect(apply(await packTar([{ header: { name }, body: 'x' }]), { root, whiteouts: 'none' })).rejects.toThrow(
        `layer entry "${name}" escapes the layer root`,
      );
    }
    await expect(lstat(path.join(parent, 'escape'))).rejects.toThrow(/ENOENT/);
  });

  it('puts absolute names under root', async () => {
    const root = await newDir('abs');
    await apply(await packTar([{ header: { name: '/abs/path' }, body: 'inside' }]), { root, whiteouts: 'none' });
    expect(await readFile(path.join(root, 'abs/path'), 'utf8')).toBe('inside');
  });

  it('refuses to write through a symlink to an outside directory', async () => {
    const outside = await outsideDir();
    for (const target of [outside, '../../..', `../..${outside}`]) {
      const root = await newDir('through');
      const buf = await packTar([
        { header: { name: 'evil', type: 'symlink', linkname: target } },
        { header: { name: 'evil/pwned' }, body: 'pwned' },
      ]);
      await expect(apply(buf, { root, whiteouts: 'none' })).rejects.toThrow(/layer entry "evil\/pwned" would write through symlink "evil"/);
    }
    expect(await readdir(outside)).toEqual(['victim']);
  });

  it('refuses symlinks met deeper in the path, and whiteouts and opaque markers through symlinks', async () => {
    const outside = await outsideDir();
    const cases: Array<{ entries: TestEntry[]; mode: ApplyOptions['whiteouts'] }> = [
      {
        mode: 'none',
        entries: [
          { header: { name: 'a/b/', type: 'directory' } },
          { header: { name: 'a/b/c', type: 'symlink', linkname: outside } },
          { header: { name: 'a/b/c/d/e' }, body: 'x' },
        ],
      },
      {
        mode: 'apply',
        entries: [
          { header: { name: 'evil', type: 'symlink', linkname: outside } },
          { header: { name: 'evil/.wh.victim' }, body: '' },
        ],
      },
      {
        mode: 'apply',
        entries: [
          { header: { name: 'evil', type: 'symlink', linkname: outside } },
          { header: { name: 'evil/.wh..wh..opq' }, body: '' },
        ],
      },
      {
        mode: 'overlay',
        entries: [
          { header: { name: 'evil', type: 'symlink', linkname: outside } },
          { header: { name: 'evil/.wh.victim' }, body: '' },
        ],
      },
    ];
    for (const c of cases) {
      const root = await newDir('deep');
      await expect(apply(await packTar(c.entries), { root, whiteouts: c.mode })).rejects.toThrow(/write through symlink/);
    }
    expect(await readdir(outside)).toEqual(['victim']);
    expect(await readFile(path.join(outside, 'victim'), 'utf8')).toBe('precious');
  });

  it('replaces an existing symlink instead of writing through it', async () => {
    const outside = await outsideDir();
    const root = await newDir('replace');
    await symlink(path.join(outside, 'victim'), path.join(root, 'f'));
    await symlink(outside, path.join(root, 'd'));
    await apply(
      await packTar([
        { header: { name: 'f', mode: 0o600 }, body: 'mine' },
        { header: { name: 'd/', type: 'directory', mode: 0o700 } },
      ]),
      { root, whiteouts: 'none' },
    );
    expect(await readFile(path.join(root, 'f'), 'utf8')).toBe('mine');
    expect((await lstat(path.join(root, 'd'))).isDirectory()).toBe(true);
    expect(await readFile(path.join(outside, 'victim'), 'utf8')).toBe('precious');
    expect((await stat(outside)).mode & 0o7777).toBe(0o750);
  });

  it('does not apply directory metadata through a symlink that later replaced the directory', async () => {
    const outside = await outsideDir();
    const root = await newDir('late-swap');
    const buf = await packTar([
      { header: { name: 'd/', type: 'directory', mode: 0o777, uid: 4242, mtime: new Date(0) } },
      { header: { name: 'd', type: 'symlink', linkname: outside } },
    ]);
    await apply(buf, { root, whiteouts: 'none' });
    const st = await stat(outside);
    expect(st.mode & 0o7777).toBe(0o750);
    expect(st.uid).toBe(0);
    expect(await readlink(path.join(root, 'd'))).toBe(outside);
  });

  it('never writes into an existing file (it could be a hardlink to something precious)', async () => {
    const outside = await outsideDir();
    const root = await newDir('hl-existing');
    await link(path.join(outside, 'victim'), path.join(root, 'f'));
    await apply(await packTar([{ header: { name: 'f' }, body: 'mine' }]), { root, whiteouts: 'none' });
    expect(await readFile(path.join(root, 'f'), 'utf8')).toBe('mine');
    expect(await readFile(path.join(outside, 'victim'), 'utf8')).toBe('precious');
  });

  it('rejects hardlinks that point outside the layer', async () => {
    for (const linkname of ['../../etc/passwd', '/etc/passwd', 'etc/passwd', 'missing']) {
      const root = await newDir('hl');
      const buf = await packTar([{ header: { name: 'h', type: 'link', linkname } }]);
      await expect(apply(buf, { root, whiteouts: 'none' })).rejects.toThrow(/hardlink "h" -> .* points outside the layer/);
      expect(await readdir(root)).toEqual([]);
    }
  });

  it('rejects hardlinks through symlinks and to directories', async () => {
    const cases: TestEntry[][] = [
      [
        { header: { name: 's', type: 'symlink', linkname: '/etc' } },
        { header: { name: 'h', type: 'link', linkname: 's/passwd' } },
      ],
      [{ header: { name: 'd/', type: 'directory' } }, { header: { name: 'h', type: 'link', linkname: 'd' } }],
    ];
    for (const entries of cases) {
      const root = await newDir('hl2');
      await expect(apply(await packTar(entries), { root, whiteouts: 'none' })).rejects.toThrow(/points outside the layer/);
    }
  });

  it('links an absolute hardlink target to the file inside root', async () => {
    const root = await newDir('hl-ok');
    const buf = await packTar([
      { header: { name: 'etc/passwd' }, body: 'root:x:0:0::/root:/bin/sh\n' },
      { header: { name: 'h', type: 'link', linkname: '/etc/passwd' } },
    ]);
    await apply(buf, { root, whiteouts: 'none' });
    const st = await stat(path.join(root, 'h'));
    expect(st.ino).toBe((await stat(path.join(root, 'etc/passwd'))).ino);
    expect(st.ino).not.toBe((await stat('/etc/passwd')).ino);
  });

  it('rejects a truncated layer with a clear message', async () => {
    const full = await packTar([{ header: { name: 'big' }, body: Buffer.alloc(1024 * 1024, 7) }]);
    for (const cut of [512 + 10, 100]) {
      const root = await newDir('trunc');
      const started = Date.now();
      await expect(apply(full.subarray(0, cut), { root, whiteouts: 'none' })).rejects.toThrow(/unexpected end of layer data/);
      expect(Date.now() - started).toBeLessThan(5000);
    }
  });

  it('rejects when the source is destroyed midway', async () => {
    const root = await newDir('destroyed');
    const full = await packTar([{ header: { name: 'big' }, body: Buffer.alloc(256 * 1024, 7) }]);
    const src = new PassThrough();
    const p = applyTar(src, { root, whiteouts: 'none' });
    src.write(full.subarray(0, 4096));
    setTimeout(() => src.destroy(), 50);
    await expect(p).rejects.toThrow();
  });

  it('consumes trailing padding after the end-of-archive marker', async () => {
    const root = await newDir('padding');
    const buf = Buffer.concat([await packTar([{ header: { name: 'f' }, body: 'x' }]), Buffer.alloc(8192)]);
    const src = Readable.from([buf.subarray(0, 700), buf.subarray(700)]);
    let ended = false;
    src.on('end', () => (ended = true));
    const res = await applyTar(src, { root, whiteouts: 'none' });
    expect(res).toEqual({ entries: 1, bytes: 1 });
    expect(ended).toBe(true);
  });

  it('skips entries of unknown type with a warning', async () => {
    const root = await newDir('unknown');
    const buf = await packTar([
      { header: { name: 'label' }, body: 'volume' },
      { header: { name: 'after' }, body: 'ok' },
    ]);
    // Turn the first entry into a GNU volume label ('V'), fixing up the header checksum.
    buf[156] = 'V'.charCodeAt(0);
    buf.fill(0x20, 148, 156);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += buf[i]!;
    buf.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    const warnings: string[] = [];
    const res = await apply(buf, { root, whiteouts: 'none', onWarning: (m) => warnings.push(m) });
    expect(res.entries).toBe(2);
    expect(await readdir(root)).toEqual(['after']);
    expect(warnings.join('\n')).toMatch(/skipping layer entry "label": unsupported tar entry type/);
  });

  it('ignores pax xattrs such as security.capability', async () => {
    const root = await newDir('pax');
    const buf = await packTar([
      { header: { name: 'ping', mode: 0o755, pax: { 'SCHILY.xattr.security.capability': '\u0001\u0000\u0000\u0002' } }, body: 'bin' },
    ]);
    await apply(buf, { root, whiteouts: 'none' });
    expect(await readFile(path.join(root, 'ping'), 'utf8')).toBe('bin');
  });

  it('creates device nodes as root, or skips them with a warning', async () => {
    // The non-root branch is what runs unprivileged; as root the device is created.
    const root = await newDir('dev');
    const warnings: string[] = [];
    await apply(await packTar([{ header: { name: 'null', type: 'character-device', devmajor: 1, devminor: 3 } }]), {
      root,
      whiteouts: 'none',
      onWarning: (m) => warnings.push(m),
    });
    if (process.getuid?.() === 0) expect((await lstat(path.join(root, 'null'))).isCharacterDevice()).toBe(true);
    else expect(warnings.join('\n')).toMatch(/skipping device node/);
  });
});

describe('followSymlinks', () => {
  it('writes through in-root symlinks with chroot semantics', async () => {
    const root = await newDir('follow');
    await mkdir(path.join(root, 'usr/lib'), { recursive: true });
    await symlink('usr/lib', path.join(root, 'lib'));
    await symlink('/', path.join(root, 'toroot'));
    const outside = await newDir('follow-outside');
    await apply(
      await packTar([
        { header: { name: 'lib/libfoo.so' }, body: 'so' },
        { header: { name: 'toroot/etc/conf' }, body: 'conf' },
        { header: { name: 'lib/sub/', type: 'directory', mode: 0o700 } },
      ]),
      { root, whiteouts: 'none', followSymlinks: true },
    );
    expect(await readFile(path.join(root, 'usr/lib/libfoo.so'), 'utf8')).toBe('so');
    expect(await readFile(path.join(root, 'etc/conf'), 'utf8')).toBe('conf');
    expect((await stat(path.join(root, 'usr/lib/sub'))).mode & 0o7777).toBe(0o700);
    expect((await lstat(path.join(root, 'lib'))).isSymbolicLink()).toBe(true);
    expect(await readdir(outside)).toEqual([]);
  });
});
