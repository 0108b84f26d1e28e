// Layers of 1 MiB and more are applied in a worker thread (src/store/unpack-worker.ts), beside the
// main thread's download, hashing and decompression. The guarantees are the same there: the
// content is exact, hostile entries are refused with a clear error, a wrong digest is named, and
// nothing is left behind, inside the store or out.
import { randomBytes } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeFailure, makeEnv, makeTar, type Env, type TarEntry } from '../helpers.ts';
import { expectStoreClean, imageConfig, imageIds, makeDockerArchive, sha256Hex } from './lib.ts';

const envs: Env[] = [];
let scratch: Env;

beforeAll(async () => {
  scratch = await makeEnv();
  envs.push(scratch);
});
afterAll(async () => {
  for (const e of envs) await e.cleanup();
});

async function freshEnv(): Promise<Env> {
  const e = await makeEnv();
  envs.push(e);
  return e;
}

/** About `mib` MiB of random files in 20 directories, with a symlink and a hardlink, deterministic names. */
function bulkEntries(prefix: string, mib: number): TarEntry[] {
  const entries: TarEntry[] = [];
  const files = mib * 64;
  for (let d = 0; d < 20; d++) entries.push({ name: `${prefix}d${d}/`, type: 'directory' });
  for (let f = 0; f < files; f++) entries.push({ name: `${prefix}d${f % 20}/f${f}`, data: randomBytes(16 * 1024) });
  return entries;
}

async function archive(name: string, layer: Buffer, config?: Buffer): Promise<string> {
  const file = join(scratch.tmp, name);
  await writeFile(file, await makeDockerArchive({ layers: [layer], ...(config && { config }), repoTags: ['localhost/large:latest'] }));
  return file;
}

/** The one layer directory of a store that holds one single-layer image. */
function onlyLayerDir(env: Env): string {
  const ids = readdirSync(join(env.root, 'layers'));
  expect(ids).toHaveLength(1);
  return join(env.root, 'layers', ids[0]!, 'diff');
}

async function expectRejected(env: Env, file: string, message: RegExp): Promise<void> {
  const r = await env.barge(['load', '-q', '-i', file]);
  expect(r.code, describeFailure(['load', '-i', file], r)).toBe(125);
  expect(r.stderr, describeFailure(['load', '-i', file], r)).toMatch(message);
  // A clear error, not a crash of the worker or a stack trace.
  expect(r.stderr).not.toMatch(/^\s+at .*\(.*:\d+:\d+\)$/m);
  expect(await imageIds(env)).toEqual([]);
  expect(readdirSync(join(env.root, 'layers'))).toEqual([]);
  expect(readdirSync(join(env.root, 'tmp'))).toEqual([]);
  await expectStoreClean(env);
}

describe('large layers (applied in a worker thread)', () => {
  it('an 8 MiB layer of many files, links and modes loads exactly', async () => {
    const entries: TarEntry[] = [
      ...bulkEntries('', 8),
      { name: 'bin/', type: 'directory' },
      { name: 'bin/tool', data: 'tool\n', mode: 0o4755 },
      { name: 'bin/alias', type: 'link', linkname: 'bin/tool' },
      { name: 'bin/sym', type: 'symlink', linkname: '../d3/f3' },
      { name: 'empty/', type: 'directory', mode: 0o700 },
    ];
    const layer = await makeTar(entries);
    expect(layer.length).toBeGreaterThan(8 << 20);
    const env = await freshEnv();
    const file = await archive('big.tar', layer);
    await env.bargeOk(['load', '-q', '-i', file]);
    expect(await imageIds(env)).toHaveLength(1);

    const dir = onlyLayerDir(env);
    for (const e of entries) {
      const p = join(dir, e.name);
      const st = lstatSync(p);
      if (e.type === 'directory') expect(st.isDirectory(), e.name).toBe(true);
      else if (e.type === 'symlink') expect(readlinkSync(p)).toBe(e.linkname);
      else if (e.type !== 'link') expect(readFileSync(p).equals(Buffer.from(e.data!)), e.name).toBe(true);
    }
    expect(statSync(join(dir, 'bin/alias')).ino).toBe(statSync(join(dir, 'bin/tool')).ino);
    expect(statSync(join(dir, 'bin/tool')).mode & 0o7777).toBe(0o4755);
    expect(statSync(join(dir, 'empty')).mode & 0o7777).toBe(0o700);
    expect(statSync(join(dir, 'd7/f7')).mtime.getTime()).toBe(1704067200_000);
    await expectStoreClean(env);
  });

  it('refuses an escaping entry deep into a large layer, and writes nothing outside', async () => {
    const token = `barge-escape-${randomBytes(6).toString('hex')}`;
    const cases: TarEntry[][] = [
      [...bulkEntries('', 6), { name: `../../../../../tmp/${token}`, data: 'escaped\n' }, ...bulkEntries('late-', 1)],
      [...bulkEntries('', 6), { name: 'lnk', type: 'symlink', linkname: '/tmp' }, { name: `lnk/${token}`, data: 'escaped\n' }],
    ];
    for (const [i, entries] of cases.entries()) {
      const env = await freshEnv();
      const file = await archive(`escape-${i}.tar`, await makeTar(entries));
      await expectRejected(env, file, /escapes the layer root|would write through symlink/);
      expect(readdirSync('/tmp').filter((n) => n.includes(token))).toEqual([]);
    }
  });

  it('a large gzip layer whose diff_id is wrong fails naming both digests', async () => {
    const layer = await makeTar(bulkEntries('', 6));
    const gz = gzipSync(layer);
    expect(gz.length).toBeGreaterThan(4 << 20);
    const wrong = `sha256:${'0'.repeat(64)}`;
    const env = await freshEnv();
    const file = await archive('wrong-diffid.tar', gz, imageConfig([layer], { rootfs: { type: 'layers', diff_ids: [wrong] } }));
    await expectRejected(env, file, new RegExp(`content is sha256:${sha256Hex(layer)}.*config says ${wrong}`));
  });

  it('a large gzip layer cut short fails with a clear error', async () => {
    const layer = await makeTar(bulkEntries('', 6));
    const gz = gzipSync(layer);
    const cut = gz.subarray(0, gz.length - 100_000);
    const env = await freshEnv();
    // The archive lists the cut blob as it is, so only its content is wrong.
    const file = await archive('cut.tar', cut, imageConfig([layer]));
    await expectRejected(env, file, /unexpected end|truncated|mismatch/i);
  });
});
