// Hostile and broken archives: each must fail with a clear error, write nothing outside the
// store, and leave the store consistent with no new image.
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { describeFailure, makeEnv, makeTar, readContainerFiles, readTar, type BargeResult, type Env, type TarEntry } from '../helpers.ts';
import { busyboxEnv } from '../fixtures.ts';
import { expectStoreClean, harmlessLayer, imageConfig, imageIds, makeDockerArchive, sha256Hex } from './lib.ts';

let env: Env;
/** Each case loads into its own empty store, so one failure's leftovers cannot fail the next. */
let target: Env;
const targets: Env[] = [];
/** A valid docker-archive and oci-archive of busybox saved by barge, as members, for tampering with. */
let savedMembers: Awaited<ReturnType<typeof readTar>> = [];
let savedOci: Awaited<ReturnType<typeof readTar>> = [];

beforeAll(async () => {
  ({ env } = await busyboxEnv());
  const docker = join(env.tmp, 'good-docker.tar');
  const oci = join(env.tmp, 'good-oci.tar');
  await env.bargeOk(['save', '-q', '-o', docker, 'busybox']);
  await env.bargeOk(['save', '-q', '--format', 'oci-archive', '-o', oci, 'busybox']);
  savedMembers = await readTar(await readFile(docker));
  savedOci = await readTar(await readFile(oci));
});
beforeEach(async () => {
  target = await makeEnv();
  targets.push(target);
});
afterAll(async () => {
  for (const t of targets) await t.cleanup();
  await env?.cleanup();
});

function token(): string {
  return `barge-escape-${randomBytes(6).toString('hex')}`;
}

/** Every path under dir whose name contains needle (dir's own tree only, no symlink following). */
function findNamed(dir: string, needle: string): string[] {
  const hits: string[] = [];
  const walk = (d: string): void => {
    let entries;
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.name.includes(needle)) hits.push(p);
      if (e.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return hits;
}

/**
 * Nothing named after tok in / , /tmp or /etc, nor anywhere in the test stores (all live under
 * the same temporary directory as env).
 */
function expectNoTrace(tok: string): void {
  for (const d of ['/', '/tmp', '/etc']) expect(readdirSync(d).filter((n) => n.includes(tok))).toEqual([]);
  for (const e of [env, ...targets]) expect(findNamed(dirname(e.root), tok)).toEqual([]);
}

async function writeArchive(name: string, bytes: Buffer): Promise<string> {
  const file = join(env.tmp, name);
  await writeFile(file, bytes);
  return file;
}

/** Runs args in the current target store, expecting a clear failure and no change to the store. */
async function expectRejected(args: string[], message: RegExp): Promise<BargeResult> {
  const r = await target.barge(args);
  expect(r.code, describeFailure(args, r)).toBe(125);
  expect(r.stderr, describeFailure(args, r)).toMatch(/^Error: /m);
  expect(r.stderr, describeFailure(args, r)).toMatch(message);
  // A stack trace is not a clear error.
  expect(r.stderr).not.toMatch(/^\s+at .*\(.*:\d+:\d+\)$/m);
  expect(await imageIds(target)).toEqual([]);
  await expectStoreClean(target);
  return r;
}

async function repack(members: Awaited<ReturnType<typeof readTar>>, edit: (name: string, data: Buffer) => Buffer | null): Promise<Buffer> {
  const entries: TarEntry[] = [];
  for (const m of members) {
    const data = edit(m.header.name, m.data);
    if (data === null) continue;
    entries.push(m.header.type === 'directory' ? { name: m.header.name, type: 'directory' } : { name: m.header.name, data });
  }
  return makeTar(entries);
}

describe('corrupt archives', () => {
  it('a docker-archive whose layer was altered fails naming a digest mismatch', async () => {
    const tampered = await repack(savedMembers, (name, data) => {
      if (!name.endsWith('.tar')) return data;
      const copy = Buffer.from(data);
      // The middle of the layer is inside bin/busybox's content, so the tar still parses.
      const at = Math.floor(copy.length / 2);
      copy[at] = copy[at]! ^ 0xff;
      return copy;
    });
    const file = await writeArchive('altered-layer.tar', tampered);
    await expectRejected(['load', '-i', file], /digest mismatch|does not match|mismatch/i);
    const r = await target.barge(['load', '-i', file]);
    expect(r.stderr).toMatch(/sha256:[0-9a-f]{64}/);
  });

  it('an oci-archive whose compressed layer blob was altered fails naming a digest mismatch', async () => {
    const index = JSON.parse(savedOci.find((m) => m.header.name === 'index.json')!.data.toString()) as { manifests: { digest: string }[] };
    const manifestName = `blobs/sha256/${index.manifests[0]!.digest.slice(7)}`;
    const manifest = JSON.parse(savedOci.find((m) => m.header.name === manifestName)!.data.toString()) as { layers: { digest: string }[] };
    const layerName = `blobs/sha256/${manifest.layers[0]!.digest.slice(7)}`;
    const tampered = await repack(savedOci, (name, data) => {
      if (name !== layerName) return data;
      const copy = Buffer.from(data);
      // Past the gzip header, inside the deflate stream.
      const at = Math.floor(copy.length / 2);
      copy[at] = copy[at]! ^ 0x01;
      return copy;
    });
    const file = await writeArchive('altered-oci.tar', tampered);
    await expectRejected(['load', '-i', file], /digest|mismatch|corrupt/i);
  });

  it('a many-file layer whose diff_id is wrong fails naming the mismatch and leaves no staging data', async () => {
    // Many small files keep the unpacker busy after the digest check has already failed, so
    // clean-up must wait for it rather than race it.
    const entries: TarEntry[] = [];
    for (let d = 0; d < 20; d++) {
      entries.push({ name: `d${d}/`, type: 'directory' });
      for (let f = 0; f < 200; f++) entries.push({ name: `d${d}/f${f}`, data: `${d}-${f}\n` });
    }
    const layer = await makeTar(entries);
    const config = imageConfig([layer], { rootfs: { type: 'layers', diff_ids: [`sha256:${'0'.repeat(64)}`] } });
    const file = await writeArchive('many-files-wrong-diffid.tar', await makeDockerArchive({ layers: [layer], config }));
    await expectRejected(['load', '-i', file], /mismatch.*sha256:0{64}|sha256:0{64}.*mismatch/i);
  });

  it('a truncated archive fails', async () => {
    const good = await readFile(join(env.tmp, 'good-docker.tar'));
    const file = await writeArchive('truncated.tar', good.subarray(0, Math.floor(good.length / 2)));
    await expectRejected(['load', '-i', file], /truncated|unexpected end/i);
  });

  it('a malformed manifest.json fails naming it', async () => {
    const layer = await harmlessLayer();
    const file = await writeArchive('bad-manifest.tar', await makeDockerArchive({ layers: [layer], manifestJson: '[{"Config": "x.json", "Layers": [' }));
    await expectRejected(['load', '-i', file], /manifest\.json/);
  });

  it('a manifest.json whose Config points outside the archive fails', async () => {
    const layer = await harmlessLayer();
    const layerName = `${sha256Hex(layer)}/layer.tar`;
    for (const config of ['../../../../etc/passwd', '/etc/passwd']) {
      const manifestJson = JSON.stringify([{ Config: config, RepoTags: ['localhost/evil:latest'], Layers: [layerName] }]);
      const file = await writeArchive('config-outside.tar', await makeDockerArchive({ layers: [layer], manifestJson }));
      await expectRejected(['load', '-i', file], /passwd|not found|missing/i);
    }
  });

  it('a diff_id that does not match the layer fails', async () => {
    const layer = await harmlessLayer();
    const other = await harmlessLayer('other');
    const file = await writeArchive('wrong-diffid.tar', await makeDockerArchive({ layers: [layer], config: imageConfig([other]) }));
    // A layer this small can be verified (and fail) before the store starts reading it; that
    // window is narrow, so try several times.
    for (let i = 0; i < 10; i++) {
      const r = await target.barge(['load', '-q', '-i', file]);
      expect(r.code, describeFailure(['load', '-i', file], r)).toBe(125);
      expect(r.stderr, describeFailure(['load', '-i', file], r)).toMatch(/^Error: .*mismatch.*sha256:[0-9a-f]{64}/m);
    }
    await expectRejected(['load', '-i', file], /sha256:[0-9a-f]{64}/);
  });
});

describe('an OCI layout naming a blob "sha256:../../etc/passwd"', () => {
  const evilIndex = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: 'sha256:../../etc/passwd', size: 100 }],
  });

  it('pull oci:DIR fails', async () => {
    const dir = join(env.tmp, 'evil-layout');
    await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
    await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    await writeFile(join(dir, 'index.json'), evilIndex);
    await expectRejected(['pull', `oci:${dir}`], /digest/i);
  });

  it('load -i of an oci-archive fails', async () => {
    const file = await writeArchive(
      'evil-oci.tar',
      await makeTar([
        { name: 'oci-layout', data: '{"imageLayoutVersion":"1.0.0"}' },
        { name: 'index.json', data: evilIndex },
        { name: 'blobs/', type: 'directory' },
        { name: 'blobs/sha256/', type: 'directory' },
      ]),
    );
    await expectRejected(['load', '-i', file], /digest/i);
  });

  it('a manifest naming a layer "sha256:../../etc/passwd" fails too', async () => {
    const layer = await harmlessLayer();
    const config = imageConfig([layer]);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${sha256Hex(config)}`, size: config.length },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: 'sha256:../../../../etc/passwd', size: 1000 }],
      }),
    );
    const index = JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${sha256Hex(manifest)}`, size: manifest.length }],
    });
    const file = await writeArchive(
      'evil-layer-digest.tar',
      await makeTar([
        { name: 'oci-layout', data: '{"imageLayoutVersion":"1.0.0"}' },
        { name: 'index.json', data: index },
        { name: `blobs/sha256/${sha256Hex(manifest)}`, data: manifest },
        { name: `blobs/sha256/${sha256Hex(config)}`, data: config },
      ]),
    );
    await expectRejected(['load', '-i', file], /digest/i);
  });
});

describe('layer tars that try to leave the layer root', () => {
  async function loadLayer(name: string, entries: TarEntry[]): Promise<string> {
    const layer = await makeTar(entries);
    return writeArchive(name, await makeDockerArchive({ layers: [layer], repoTags: [`localhost/${name.replace(/\.tar$/, '').replace(/\W/g, '')}:latest`] }));
  }

  it('"../escape" is refused', async () => {
    const tok = token();
    for (const prefix of ['../', '../../../../../../../../../../tmp/', 'etc/../../']) {
      const file = await loadLayer('dotdot.tar', [
        { name: 'etc/', type: 'directory' },
        { name: `${prefix}${tok}`, data: 'escaped\n' },
      ]);
      await expectRejected(['load', '-i', file], /escape|outside|\.\./i);
    }
    expectNoTrace(tok);
  });

  it('an absolute path is refused or kept inside the layer, never written to the host', async () => {
    // Docker, containers/storage and GNU tar strip the leading "/" and unpack inside the
    // root; barge does the same. Either that or a refusal is safe — writing /tmp/<tok> is not.
    const tok = token();
    const name = `abs${tok.replace(/\W/g, '')}`;
    const file = await loadLayer(`${name}.tar`, [
      { name: 'etc/', type: 'directory' },
      { name: `/tmp/${tok}`, data: 'absolute\n' },
    ]);
    const r = await target.barge(['load', '-i', file]);
    for (const d of ['/', '/tmp', '/etc']) expect(readdirSync(d).filter((n) => n.includes(tok))).toEqual([]);
    if (r.code === 0) {
      const ctr = await target.bargeOk(['from', `localhost/${name}`]);
      expect(await readContainerFiles(target, ctr, [join('tmp', tok)])).toEqual(['absolute\n']);
      await target.bargeOk(['rmi', '-f', `localhost/${name}`]);
    } else {
      expect(r.code, describeFailure(['load', '-i', file], r)).toBe(125);
      expect(r.stderr).toMatch(/^Error: .*(absolute|outside|escape)/im);
    }
    expect(await imageIds(target)).toEqual([]);
    await expectStoreClean(target);
    expectNoTrace(tok);
  });

  it('a symlink "evil -> /" followed by "evil/tmp/pwned" is refused', async () => {
    const tok = token();
    const file = await loadLayer('symlink.tar', [
      { name: 'evil', type: 'symlink', linkname: '/' },
      { name: `evil/tmp/${tok}`, data: 'through the symlink\n' },
    ]);
    await expectRejected(['load', '-i', file], /symlink|outside|escape/i);
    expectNoTrace(tok);
  });

  it('a relative symlink "up -> ../../.." followed by a write through it is refused', async () => {
    const tok = token();
    const file = await loadLayer('symlink-rel.tar', [
      { name: 'd/', type: 'directory' },
      { name: 'd/up', type: 'symlink', linkname: '../../../../../../../../..' },
      { name: `d/up/tmp/${tok}`, data: 'through the symlink\n' },
    ]);
    await expectRejected(['load', '-i', file], /symlink|outside|escape/i);
    expectNoTrace(tok);
  });

  it('a hardlink to /etc/passwd is refused and the host file is untouched', async () => {
    const nlink = statSync('/etc/passwd').nlink;
    const passwd = await readFile('/etc/passwd');
    const tok = token();
    const file = await loadLayer('hardlink.tar', [
      { name: 'etc/', type: 'directory' },
      { name: `etc/${tok}`, type: 'link', linkname: '/etc/passwd' },
    ]);
    await expectRejected(['load', '-i', file], /hardlink|outside|link/i);
    const file2 = await loadLayer('hardlink-dotdot.tar', [
      { name: 'etc/', type: 'directory' },
      { name: `etc/${tok}`, type: 'link', linkname: '../../../../../../../../etc/passwd' },
    ]);
    await expectRejected(['load', '-i', file2], /hardlink|outside|link/i);
    expect(statSync('/etc/passwd').nlink).toBe(nlink);
    expect(await readFile('/etc/passwd')).toEqual(passwd);
    expectNoTrace(tok);
  });

  it('a hardlink through a symlinked directory is refused', async () => {
    const tok = token();
    const file = await loadLayer('hardlink-symlink.tar', [
      { name: 'evil', type: 'symlink', linkname: '/etc' },
      { name: tok, type: 'link', linkname: 'evil/passwd' },
    ]);
    await expectRejected(['load', '-i', file], /hardlink|outside|link|symlink/i);
    expectNoTrace(tok);
  });

  it('the same hostile archive fed to pull docker-archive: is refused too', async () => {
    const tok = token();
    const file = await loadLayer('pull-symlink.tar', [
      { name: 'evil', type: 'symlink', linkname: '/' },
      { name: `evil/tmp/${tok}`, data: 'through the symlink\n' },
    ]);
    await expectRejected(['pull', `docker-archive:${file}`], /symlink|outside|escape/i);
    expectNoTrace(tok);
  });

  it('a well-formed hand-made archive still loads (the checks above are not just refusing everything)', async () => {
    const layer = await harmlessLayer('fine');
    const file = await writeArchive('fine.tar', await makeDockerArchive({ layers: [layer], repoTags: ['localhost/fine:latest'] }));
    const out = await target.bargeOk(['load', '-i', file]);
    expect(out).toContain('Loaded image: localhost/fine:latest');
    expect(existsSync(file)).toBe(true);
    await target.bargeOk(['rmi', 'fine']);
    await expectStoreClean(target);
  });
});
