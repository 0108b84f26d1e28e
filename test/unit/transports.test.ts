import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer as readAll } from 'node:stream/consumers';
import { gunzipSync, gzipSync, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import * as tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AutoDecompress, copyImage, type CopyOptions } from '../../src/image/copy.ts';
import { sha256, validateDigest, verifyingStream } from '../../src/image/digest.ts';
import { choosePlatform, convertManifest, parseManifest } from '../../src/image/manifest.ts';
import type { ImageSource } from '../../src/image/transport.ts';
import { normalizeRepoTag } from '../../src/image/transports/docker-archive.ts';
import { openDestination, openSource, parseImageName, parseReference, registerTransport } from '../../src/image/transports/index.ts';
import { TarArchive, writeTar } from '../../src/image/transports/oci-archive.ts';
import { MediaType, type ImageConfig, type ImageIndex, type Manifest } from '../../src/image/types.ts';

// ---------------------------------------------------------------------------------------------
// Building a tiny image by hand, independent of the code under test.

async function makeTar(files: Record<string, string>): Promise<Buffer> {
  const pack = tar.pack();
  for (const [name, content] of Object.entries(files)) {
    pack.entry({ name, mode: 0o644, mtime: new Date(0) }, content);
  }
  pack.finalize();
  return readAll(pack);
}

async function untar(data: Buffer): Promise<Record<string, string>> {
  let raw = data;
  if (raw[0] === 0x1f && raw[1] === 0x8b) raw = gunzipSync(raw);
  else if (raw.readUInt32LE(0) === 0xfd2fb528) raw = zstdDecompressSync(raw);
  const out: Record<string, string> = {};
  const ex = tar.extract();
  const done = (async () => {
    for await (const entry of ex) {
      const body = await readAll(entry);
      if (entry.header.type === 'file') out[entry.header.name] = body.toString();
    }
  })();
  ex.end(raw);
  await done;
  return out;
}

const LAYER_FILES: Record<string, string>[] = [{ 'etc/hello.txt': 'hello\n', 'bin/tool': '#!/bin/sh\necho tool\n' }, { 'etc/hello.txt': 'hello again\n', 'data/x': 'x'.repeat(5000) }];

interface TestImage {
  config: Buffer;
  configDigest: string;
  manifest: Buffer;
  manifestDigest: string;
  layers: { gz: Buffer; digest: string; diffId: string }[];
}

async function makeImage(arch = 'amd64', extra = ''): Promise<TestImage> {
  const layers = [];
  for (const files of LAYER_FILES) {
    const raw = await makeTar({ ...files, ...(extra ? { [`arch-${arch}`]: extra } : {}) });
    const gz = gzipSync(raw);
    layers.push({ gz, digest: sha256(gz), diffId: sha256(raw) });
  }
  const cfg: ImageConfig = {
    created: '2024-01-01T00:00:00Z',
    architecture: arch,
    os: 'linux',
    config: { Env: ['PATH=/usr/bin:/bin'], Cmd: ['/bin/tool'], Labels: { 'test.label': 'yes' } },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: [{ created_by: 'layer one' }, { created_by: 'layer two' }],
  };
  const config = Buffer.from(JSON.stringify(cfg));
  const m: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: sha256(config), size: config.length },
    layers: layers.map((l) => ({ mediaType: MediaType.ociLayerGzip, digest: l.digest, size: l.gz.length })),
    annotations: { 'org.example.note': 'test' },
  };
  const manifest = Buffer.from(JSON.stringify(m));
  return { config, configDigest: sha256(config), manifest, manifestDigest: sha256(manifest), layers };
}

async function writeBlob(layout: string, data: Buffer): Promise<string> {
  const d = sha256(data);
  await mkdir(join(layout, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(layout, 'blobs', 'sha256', d.slice(7)), data);
  return d;
}

async function writeLayout(layout: string, img: TestImage, ref = 'latest'): Promise<void> {
  await mkdir(layout, { recursive: true });
  await writeFile(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeBlob(layout, img.config);
  for (const l of img.layers) await writeBlob(layout, l.gz);
  await writeBlob(layout, img.manifest);
  const index: ImageIndex = {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: [
      {
        mediaType: MediaType.ociManifest,
        digest: img.manifestDigest,
        size: img.manifest.length,
        annotations: { 'org.opencontainers.image.ref.name': ref },
      },
    ],
  };
  await writeFile(join(layout, 'index.json'), JSON.stringify(index));
}

/** Reads an image through a source: manifest, parsed config, and the unpacked files of each layer. */
async function readImage(name: string, opts: { instance?: string } = {}) {
  const src = await openSource(name);
  try {
    let { bytes, mediaType } = await src.getManifest();
    let p = parseManifest(bytes, mediaType);
    if (p.kind === 'index') {
      const d = choosePlatform(p.index);
      ({ bytes, mediaType } = await src.getManifest(opts.instance ?? d.digest));
      p = parseManifest(bytes, mediaType);
    }
    if (p.kind !== 'manifest') throw new Error('nested index');
    const configBytes = await blob(src, p.manifest.config.digest);
    const config = JSON.parse(configBytes.toString()) as ImageConfig;
    const layers = [];
    for (const l of p.manifest.layers) {
      const data = await blob(src, l.digest);
      expect(sha256(data)).toBe(l.digest);
      expect(data.length).toBe(l.size);
      layers.push(await untar(data));
    }
    return { manifest: p.manifest, mediaType: p.mediaType, bytes, config, configBytes, layers };
  } finally {
    await src.close();
  }
}

async function blob(src: ImageSource, digest: string): Promise<Buffer> {
  const { stream } = await src.getBlob({ digest, size: -1 });
  return readAll(stream);
}

async function copy(from: string, to: string, opts?: CopyOptions) {
  const src = await openSource(from);
  try {
    const dst = await openDestination(to);
    try {
      return await copyImage(src, dst, opts);
    } finally {
      await dst.close();
    }
  } finally {
    await src.close();
  }
}

async function tarMembers(file: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const ex = tar.extract();
  const done = (async () => {
    for await (const entry of ex) {
      const body = await readAll(entry);
      out.set(entry.header.name, body);
    }
  })();
  ex.end(await readFile(file));
  await done;
  return out;
}

function expectSameFiles(layers: Record<string, string>[]): void {
  expect(layers.length).toBe(LAYER_FILES.length);
  layers.forEach((files, i) => expect(files).toEqual(LAYER_FILES[i]));
}

let tmp: string;
let img: TestImage;
let layout: string;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'barge-transports-test-'));
  img = await makeImage();
  layout = join(tmp, 'src-layout');
  await writeLayout(layout, img);
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------

describe('image names', () => {
  it('splits transport and spec', () => {
    expect(parseImageName('oci:/tmp/x:latest')).toEqual({ transport: 'oci', spec: '/tmp/x:latest' });
    expect(parseImageName('docker-archive:/f.tar:@1')).toEqual({ transport: 'docker-archive', spec: '/f.tar:@1' });
    expect(parseImageName('docker://quay.io/a/b:1')).toEqual({ transport: 'docker', spec: '//quay.io/a/b:1' });
    expect(parseImageName('containers-storage:alpine')).toEqual({ transport: 'containers-storage', spec: 'alpine' });
    expect(() => parseImageName('bogus:/x')).toThrow(/unknown transport "bogus".*oci, oci-archive, docker-archive, dir/);
    expect(() => parseImageName('alpine')).toThrow(/expected TRANSPORT:REFERENCE/);
  });

  it('parses local references', () => {
    expect(parseReference('oci:/tmp/x:v1')).toEqual({ transport: 'oci', path: '/tmp/x', ref: 'v1' });
    expect(parseReference('oci:/tmp/x')).toEqual({ transport: 'oci', path: '/tmp/x' });
    expect(parseReference('oci-archive:/f.tar:a/b:c')).toEqual({ transport: 'oci-archive', path: '/f.tar', ref: 'a/b:c' });
    expect(parseReference('docker-archive:/f.tar:alpine')).toEqual({ transport: 'docker-archive', path: '/f.tar', ref: 'alpine:latest' });
    expect(parseReference('docker-archive:/f.tar:@2')).toEqual({ transport: 'docker-archive', path: '/f.tar', index: 2 });
    expect(parseReference('dir:/d')).toEqual({ transport: 'dir', path: '/d' });
    expect(() => parseReference('oci:/x:bad ref')).toThrow(/invalid reference name/);
    expect(() => parseReference('docker-archive:/f.tar:Bad/Name')).toThrow(/invalid image name/);
  });

  it('normalises RepoTags to the familiar form', () => {
    expect(normalizeRepoTag('alpine')).toBe('alpine:latest');
    expect(normalizeRepoTag('docker.io/library/alpine:3')).toBe('alpine:3');
    expect(normalizeRepoTag('docker.io/foo/bar')).toBe('foo/bar:latest');
    expect(normalizeRepoTag('localhost/foo')).toBe('localhost/foo:latest');
    expect(normalizeRepoTag('localhost:5000/a/b:v1')).toBe('localhost:5000/a/b:v1');
    expect(() => normalizeRepoTag('alpine@sha256:' + 'a'.repeat(64))).toThrow(/digest references/);
  });

  it('lets other transports register', async () => {
    let opened = '';
    registerTransport('test-fake', {
      openSource: async (spec) => {
        opened = spec;
        throw new Error('fake source');
      },
      openDestination: async () => {
        throw new Error('fake destination');
      },
    });
    await expect(openSource('test-fake:abc')).rejects.toThrow(/fake source/);
    expect(opened).toBe('abc');
    expect(() => registerTransport('oci', { openSource: openSource, openDestination: openDestination })).toThrow(/built in/);
    await expect(openSource('docker://x')).rejects.toThrow(/not available/);
  });
});

describe('digests and manifests', () => {
  it('validates digests strictly', () => {
    expect(validateDigest('sha256:' + 'a'.repeat(64))).toBeTruthy();
    expect(validateDigest('sha512:' + 'b'.repeat(128))).toBeTruthy();
    for (const bad of ['sha256:../../x', 'sha256:' + 'A'.repeat(64), 'md5:abc', 'sha256:' + 'a'.repeat(63), 'sha256:' + 'a'.repeat(64) + '/']) {
      expect(() => validateDigest(bad)).toThrow(/invalid digest/);
    }
  });

  it('verifying stream rejects wrong content', async () => {
    const data = Buffer.from('hello');
    await expect(readAll(Readable.from([data]).pipe(verifyingStream(sha256(data), 5)))).resolves.toEqual(data);
    const wrong = verifyingStream(sha256('other'), 5);
    await expect(readAll(Readable.from([data]).pipe(wrong))).rejects.toThrow(/digest mismatch for blob sha256:[0-9a-f]{64}: got sha256:/);
    const long = verifyingStream(sha256(data), 3);
    await expect(readAll(Readable.from([data]).pipe(long))).rejects.toThrow(/size mismatch/);
  });

  it('rejects malformed manifests', () => {
    const good = JSON.parse(img.manifest.toString()) as Record<string, unknown>;
    const bad = (m: unknown) => Buffer.from(JSON.stringify(m));
    expect(() => parseManifest(Buffer.from('{not json'))).toThrow(/malformed manifest JSON/);
    expect(() => parseManifest(bad({ ...good, schemaVersion: 1 }))).toThrow(/schema1/);
    expect(() => parseManifest(bad({ ...good, schemaVersion: 3 }))).toThrow(/schemaVersion/);
    expect(() => parseManifest(bad({ ...good, config: undefined }))).toThrow(/no config/);
    expect(() => parseManifest(bad({ ...good, layers: undefined }))).toThrow(/no layers/);
    const layers = (good.layers as { digest: string; size: number }[]).map((l) => ({ ...l }));
    layers[0]!.digest = 'sha256:../../x';
    expect(() => parseManifest(bad({ ...good, layers }))).toThrow(/invalid digest/);
    layers[0]!.digest = sha256('x');
    layers[0]!.size = -1;
    expect(() => parseManifest(bad({ ...good, layers }))).toThrow(/invalid size/);
    expect(() => parseManifest(Buffer.alloc(5 * 1024 * 1024, 0x20))).toThrow(/limit/);
    expect(() => parseManifest(bad({ schemaVersion: 2, mediaType: MediaType.dockerManifest, manifests: [] }))).toThrow();
  });

  it('converts between OCI and Docker media types', () => {
    const d = convertManifest(img.manifest, 'docker');
    expect(d.mediaType).toBe(MediaType.dockerManifest);
    const dm = JSON.parse(d.bytes.toString()) as Manifest;
    expect(dm.config.mediaType).toBe(MediaType.dockerConfig);
    expect(dm.layers.map((l) => l.mediaType)).toEqual([MediaType.dockerLayerGzip, MediaType.dockerLayerGzip]);
    expect(dm.annotations).toBeUndefined();
    const o = convertManifest(d.bytes, 'oci');
    const om = JSON.parse(o.bytes.toString()) as Manifest;
    expect(om.mediaType).toBe(MediaType.ociManifest);
    expect(om.layers.map((l) => l.digest)).toEqual(img.layers.map((l) => l.digest));
    const z = JSON.parse(img.manifest.toString()) as Manifest;
    z.layers[0]!.mediaType = MediaType.ociLayerZstd;
    expect(() => convertManifest(Buffer.from(JSON.stringify(z)), 'docker')).toThrow(/zstd/);
  });

  it('decompresses by magic bytes', async () => {
    const data = Buffer.from('x'.repeat(100000) + 'tail');
    for (const enc of [gzipSync(data), zstdCompressSync(data), data]) {
      expect(await readAll(Readable.from([enc.subarray(0, 1), enc.subarray(1, 3), enc.subarray(3)]).pipe(new AutoDecompress()))).toEqual(data);
    }
    expect(await readAll(Readable.from([Buffer.from('ab')]).pipe(new AutoDecompress()))).toEqual(Buffer.from('ab'));
    expect(await readAll(Readable.from([]).pipe(new AutoDecompress()))).toEqual(Buffer.alloc(0));
  });
});

describe('local transports', () => {
  it('reads the hand-made OCI layout', async () => {
    const r = await readImage(`oci:${layout}:latest`);
    expect(r.bytes).toEqual(img.manifest);
    expectSameFiles(r.layers);
    await expect(openSource(`oci:${layout}:nope`)).rejects.toThrow(/no image named "nope".*latest/);
  });

  it('copies oci → dir → docker-archive → oci-archive → oci', async () => {
    const dir = join(tmp, 'chain-dir');
    const r1 = await copy(`oci:${layout}:latest`, `dir:${dir}`);
    // Nothing needed changing, so the manifest (and its digest) is carried over byte for byte.
    expect(r1.manifestDigest).toBe(img.manifestDigest);
    expect(await readFile(join(dir, 'version'), 'utf8')).toBe('Directory Transport Version: 1.1\n');
    expect(await readFile(join(dir, 'manifest.json'))).toEqual(img.manifest);
    expect(existsSync(join(dir, img.layers[0]!.digest.slice(7)))).toBe(true);
    expect((await readdir(dir)).sort()).toEqual([img.configDigest, ...img.layers.map((l) => l.digest)].map((d) => d.slice(7)).concat(['manifest.json', 'version']).sort());

    const archive = join(tmp, 'chain.tar');
    const r2 = await copy(`dir:${dir}`, `docker-archive:${archive}:example.com/test/img:v1`);
    expect(r2.mediaType).toBe(MediaType.dockerManifest);
    expect(r2.configDigest).toBe(img.configDigest);
    const d = await readImage(`docker-archive:${archive}`);
    expect(d.mediaType).toBe(MediaType.dockerManifest);
    expect(d.configBytes).toEqual(img.config);
    expect(d.manifest.layers.map((l) => l.digest)).toEqual(img.layers.map((l) => l.diffId));
    expect(d.manifest.layers.every((l) => l.mediaType === MediaType.dockerLayer)).toBe(true);
    expectSameFiles(d.layers);
    // Selecting by tag, by a non-normalised spelling of the tag, and by index all find it.
    await expect(readImage(`docker-archive:${archive}:example.com/test/img:v1`)).resolves.toBeTruthy();
    await expect(readImage(`docker-archive:${archive}:@0`)).resolves.toBeTruthy();
    await expect(openSource(`docker-archive:${archive}:other:v1`)).rejects.toThrow(/no image tagged other:v1.*example.com\/test\/img:v1/);
    await expect(openDestination(`docker-archive:${join(tmp, 'no-such-dir', 'x.tar')}`)).rejects.toThrow(/does not exist/);
    await expect(openDestination(`oci-archive:${tmp}`)).rejects.toThrow(/is a directory/);

    const ociArchive = join(tmp, 'chain-oci.tar');
    // Docker → OCI conversion is implied: OCI layouts only hold OCI manifests.
    const r3 = await copy(`docker-archive:${archive}`, `oci-archive:${ociArchive}:v1`, { destCompression: 'gzip' });
    expect(r3.mediaType).toBe(MediaType.ociManifest);
    const members = await tarMembers(ociArchive);
    expect(members.has('oci-layout')).toBe(true);
    expect(members.has('index.json')).toBe(true);
    expect([...members.keys()].some((n) => n.includes('staging'))).toBe(false);

    const final = join(tmp, 'chain-final');
    const r4 = await copy(`oci-archive:${ociArchive}:v1`, `oci:${final}:end`);
    expect(r4.manifestDigest).toBe(r3.manifestDigest);
    const f = await readImage(`oci:${final}:end`);
    expect(f.mediaType).toBe(MediaType.ociManifest);
    expect(f.configBytes).toEqual(img.config);
    expect(f.config.rootfs.diff_ids).toEqual(img.layers.map((l) => l.diffId));
    expect(f.manifest.layers.every((l) => l.mediaType === MediaType.ociLayerGzip)).toBe(true);
    expect(f.manifest.config.mediaType).toBe(MediaType.ociConfig);
    expectSameFiles(f.layers);
    expect(existsSync(`${archive}.tmp`)).toBe(false);
  });

  it('writes docker-archive in the layout docker load / podman load expect', async () => {
    const archive = join(tmp, 'layout-check.tar');
    await copy(`oci:${layout}:latest`, `docker-archive:${archive}:localhost/check`);
    const members = await tarMembers(archive);
    const manifest = JSON.parse(members.get('manifest.json')!.toString()) as { Config: string; RepoTags: string[]; Layers: string[] }[];
    expect(manifest).toHaveLength(1);
    expect(Object.keys(manifest[0]!)).toEqual(['Config', 'RepoTags', 'Layers']);
    expect(manifest[0]!.Config).toBe(`${img.configDigest.slice(7)}.json`);
    expect(manifest[0]!.RepoTags).toEqual(['localhost/check:latest']);
    expect(manifest[0]!.Layers).toEqual(img.layers.map((l) => `${l.diffId.slice(7)}.tar`));
    for (const [i, name] of manifest[0]!.Layers.entries()) {
      const layer = members.get(name)!;
      expect(sha256(layer)).toBe(img.layers[i]!.diffId);
      expect(await untar(layer)).toEqual(LAYER_FILES[i]);
    }
    expect(members.get(manifest[0]!.Config)).toEqual(img.config);
    expect(JSON.parse(members.get('repositories')!.toString())).toEqual({ 'localhost/check': { latest: img.layers[1]!.diffId.slice(7) } });

    // Without a name: no RepoTags, no repositories.
    const unnamed = join(tmp, 'unnamed.tar');
    await copy(`oci:${layout}`, `docker-archive:${unnamed}`);
    const m2 = await tarMembers(unnamed);
    expect(Object.keys((JSON.parse(m2.get('manifest.json')!.toString()) as object[])[0]!)).toEqual(['Config', 'Layers']);
    expect(m2.has('repositories')).toBe(false);
  });

  it('rejects a corrupted blob and leaves nothing behind', async () => {
    const bad = join(tmp, 'corrupt-layout');
    await writeLayout(bad, img);
    const victim = join(bad, 'blobs', 'sha256', img.layers[1]!.digest.slice(7));
    const data = await readFile(victim);
    data[data.length - 10] ^= 0xff;
    await writeFile(victim, data);
    const msg = new RegExp(`digest mismatch for blob ${img.layers[1]!.digest}: got sha256:[0-9a-f]{64}`);

    const dir = join(tmp, 'corrupt-out-dir');
    await expect(copy(`oci:${bad}`, `dir:${dir}`)).rejects.toThrow(msg);
    expect(existsSync(dir)).toBe(false);

    const archive = join(tmp, 'corrupt-out.tar');
    // docker-archive decompresses; the compressed digest check must still be what is reported,
    // also when the damage is early enough to trip up the decompressor first.
    await expect(copy(`oci:${bad}`, `docker-archive:${archive}`)).rejects.toThrow(msg);
    expect(existsSync(archive)).toBe(false);
    data[data.length - 10] ^= 0xff;
    data[30] ^= 0xff;
    await writeFile(victim, data);
    await expect(copy(`oci:${bad}`, `docker-archive:${archive}`)).rejects.toThrow(msg);
    expect(existsSync(archive)).toBe(false);
    expect((await readdir(tmp)).filter((n) => n.startsWith('corrupt-out.tar'))).toEqual([]);

    const ociOut = join(tmp, 'corrupt-out-oci');
    await expect(copy(`oci:${bad}`, `oci:${ociOut}:x`)).rejects.toThrow(msg);
    expect(existsSync(ociOut)).toBe(false);

    // Into an existing layout: the layout stays as it was.
    const existing = join(tmp, 'corrupt-existing');
    await copy(`oci:${layout}`, `oci:${existing}:good`);
    const before = (await readdir(join(existing, 'blobs', 'sha256'))).sort();
    const indexBefore = await readFile(join(existing, 'index.json'));
    await expect(copy(`oci:${bad}`, `oci:${existing}:bad`, { destCompression: 'zstd' })).rejects.toThrow(msg);
    expect((await readdir(join(existing, 'blobs', 'sha256'))).sort()).toEqual(before);
    expect(await readFile(join(existing, 'index.json'))).toEqual(indexBefore);
    expect((await readdir(existing)).sort()).toEqual(['blobs', 'index.json', 'oci-layout']);
  });

  it('rejects wrong diff_ids when decompressing', async () => {
    const lying = join(tmp, 'lying-layout');
    const cfg = JSON.parse(img.config.toString()) as ImageConfig;
    cfg.rootfs.diff_ids[0] = sha256('something else');
    const config = Buffer.from(JSON.stringify(cfg));
    const m = JSON.parse(img.manifest.toString()) as Manifest;
    m.config = { ...m.config, digest: sha256(config), size: config.length };
    const manifest = Buffer.from(JSON.stringify(m));
    await writeLayout(lying, { ...img, config, configDigest: sha256(config), manifest, manifestDigest: sha256(manifest) });
    const archive = join(tmp, 'lying.tar');
    await expect(copy(`oci:${lying}`, `docker-archive:${archive}`)).rejects.toThrow(/diff_id/);
    expect(existsSync(archive)).toBe(false);
  });

  it('refuses path-traversal digests', async () => {
    const evil = join(tmp, 'evil-layout');
    await writeLayout(evil, img);
    const m = JSON.parse(img.manifest.toString()) as Manifest;
    m.layers[0]!.digest = 'sha256:../../../../etc/passwd';
    const manifest = Buffer.from(JSON.stringify(m));
    const md = await writeBlob(evil, manifest);
    await writeFile(
      join(evil, 'index.json'),
      JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: MediaType.ociManifest, digest: md, size: manifest.length }] }),
    );
    await expect(copy(`oci:${evil}`, `dir:${join(tmp, 'evil-out')}`)).rejects.toThrow(/invalid digest/);
    expect(existsSync(join(tmp, 'evil-out'))).toBe(false);

    await writeFile(
      join(evil, 'index.json'),
      JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: MediaType.ociManifest, digest: 'sha256:../../index.json', size: 10 }] }),
    );
    await expect(openSource(`oci:${evil}`)).rejects.toThrow(/invalid digest/);

    const src = await openSource(`oci:${layout}`);
    try {
      await expect(src.getBlob({ digest: 'sha256:../../../etc/passwd', size: -1 })).rejects.toThrow(/invalid blob digest/);
      await expect(src.getManifest('sha256:../x')).rejects.toThrow(/invalid instance digest/);
    } finally {
      await src.close();
    }
  });

  it('picks a platform from an index', async () => {
    const multi = join(tmp, 'multi-layout');
    const amd = img;
    const arm = await makeImage('arm64', 'arm');
    await writeLayout(multi, amd);
    for (const l of arm.layers) await writeBlob(multi, l.gz);
    await writeBlob(multi, arm.config);
    await writeBlob(multi, arm.manifest);
    const index: ImageIndex = {
      schemaVersion: 2,
      mediaType: MediaType.ociIndex,
      manifests: [
        { mediaType: MediaType.ociManifest, digest: arm.manifestDigest, size: arm.manifest.length, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
        { mediaType: MediaType.ociManifest, digest: amd.manifestDigest, size: amd.manifest.length, platform: { os: 'linux', architecture: 'amd64' } },
      ],
    };
    const indexBytes = Buffer.from(JSON.stringify(index));
    const indexDigest = await writeBlob(multi, indexBytes);
    await writeFile(
      join(multi, 'index.json'),
      JSON.stringify({
        schemaVersion: 2,
        manifests: [{ mediaType: MediaType.ociIndex, digest: indexDigest, size: indexBytes.length, annotations: { 'org.opencontainers.image.ref.name': 'multi' } }],
      }),
    );
    const def = await copy(`oci:${multi}:multi`, `oci:${join(tmp, 'multi-out')}:amd`);
    expect(def.manifestDigest).toBe(amd.manifestDigest);
    const a = await copy(`oci:${multi}:multi`, `oci:${join(tmp, 'multi-out')}:arm`, { platform: { architecture: 'arm64' } });
    expect(a.manifestDigest).toBe(arm.manifestDigest);
    expect((await readImage(`oci:${join(tmp, 'multi-out')}:arm`)).config.architecture).toBe('arm64');
    expect((await readImage(`oci:${join(tmp, 'multi-out')}:amd`)).config.architecture).toBe('amd64');
    await expect(copy(`oci:${multi}:multi`, `dir:${join(tmp, 'multi-s390x')}`, { platform: { architecture: 's390x' } })).rejects.toThrow(
      /no image for platform linux\/s390x.*linux\/arm64\/v8, linux\/amd64/,
    );
  });

  it('adds to an existing layout and replaces a ref', async () => {
    const shared = join(tmp, 'shared-layout');
    await copy(`oci:${layout}`, `oci:${shared}:one`);
    const r2 = await copy(`oci:${layout}`, `oci:${shared}:two`, { destCompression: 'zstd' });
    await expect(copy(`oci:${layout}`, `oci:${shared}:one`, { format: 'docker' })).rejects.toThrow(/cannot store docker manifests/);
    const r3 = await copy(`oci:${layout}`, `oci:${shared}:one`, { destCompression: 'none' });
    const index = JSON.parse(await readFile(join(shared, 'index.json'), 'utf8')) as ImageIndex;
    const refs = index.manifests.map((m) => [m.annotations?.['org.opencontainers.image.ref.name'], m.digest]);
    expect(refs).toEqual([
      ['two', r2.manifestDigest],
      ['one', r3.manifestDigest],
    ]);
    // The replaced "one" and the zstd "two" share one config blob.
    const blobs = await readdir(join(shared, 'blobs', 'sha256'));
    expect(blobs.filter((b) => b === img.configDigest.slice(7))).toHaveLength(1);
    const two = await readImage(`oci:${shared}:two`);
    expect(two.manifest.layers.every((l) => l.mediaType === MediaType.ociLayerZstd)).toBe(true);
    expectSameFiles(two.layers);
    const one = await readImage(`oci:${shared}:one`);
    expect(one.manifest.layers.map((l) => l.digest)).toEqual(img.layers.map((l) => l.diffId));
    expect(one.manifest.layers.every((l) => l.mediaType === MediaType.ociLayer)).toBe(true);
    expectSameFiles(one.layers);
    await expect(openSource(`oci:${shared}`)).rejects.toThrow(/contains 2 images.*two, one/);
    // zstd cannot go into a Docker manifest.
    await expect(copy(`oci:${shared}:two`, `docker-archive:${join(tmp, 'zstd.tar')}`)).resolves.toBeTruthy();
    await expect(copy(`oci:${shared}:two`, `dir:${join(tmp, 'zstd-docker')}`, { format: 'docker' })).rejects.toThrow(/zstd/);
  });

  it('reads multi-image and compressed-layer docker archives', async () => {
    const cfgName = `${img.configDigest.slice(7)}.json`;
    const layerTars = await Promise.all(LAYER_FILES.map((f) => makeTar(f)));
    const manifest = [
      { Config: cfgName, RepoTags: ['first:1'], Layers: ['l0/layer.tar', 'l1.tar.gz'] },
      { Config: cfgName, RepoTags: ['docker.io/library/second:2'], Layers: ['l0/layer.tar', 'l1.tar.zst'] },
    ];
    const file = join(tmp, 'multi-docker.tar');
    await writeTar(file, [
      { name: cfgName, data: img.config },
      { name: 'l0', directory: true },
      { name: 'l0/layer.tar', data: layerTars[0]! },
      { name: 'l1.tar.gz', data: gzipSync(layerTars[1]!) },
      { name: 'l1.tar.zst', data: zstdCompressSync(layerTars[1]!) },
      { name: 'manifest.json', data: JSON.stringify(manifest) },
    ]);
    await expect(openSource(`docker-archive:${file}`)).rejects.toThrow(/contains 2 images.*@0 \(first:1\), @1/);
    const a = await readImage(`docker-archive:${file}:@0`);
    expect(a.manifest.layers.map((l) => l.mediaType)).toEqual([MediaType.dockerLayer, MediaType.dockerLayerGzip]);
    expectSameFiles(a.layers);
    const b = await readImage(`docker-archive:${file}:second:2`);
    expect(b.manifest.layers.map((l) => l.digest)).toEqual(img.layers.map((l) => l.diffId));
    expectSameFiles(b.layers);
    // gzip layer → uncompressed for docker-archive, verified against diff_ids.
    const out = join(tmp, 'from-multi.tar');
    await copy(`docker-archive:${file}:first:1`, `docker-archive:${out}:first:1`);
    const again = await readImage(`docker-archive:${out}`);
    expect(again.manifest.layers.map((l) => l.digest)).toEqual(img.layers.map((l) => l.diffId));

    // A gzip-compressed archive as a whole is accepted too.
    const gz = join(tmp, 'whole.tar.gz');
    await writeFile(gz, gzipSync(await readFile(out)));
    expectSameFiles((await readImage(`docker-archive:${gz}`)).layers);
  });

  it('indexes tar archives with long names and links', async () => {
    const file = join(tmp, 'long.tar');
    const long = `${'d'.repeat(120)}/${'f'.repeat(120)}`;
    const pack = tar.pack();
    pack.entry({ name: long }, 'content');
    pack.entry({ name: 'link', type: 'symlink', linkname: long });
    pack.entry({ name: 'hard', type: 'link', linkname: 'link' });
    pack.entry({ name: '../escape', type: 'file' }, 'x');
    pack.finalize();
    await writeFile(file, await readAll(pack));
    const a = await TarArchive.open(file);
    try {
      expect((await a.readFile(long, 100)).toString()).toBe('content');
      expect((await a.readFile('link', 100)).toString()).toBe('content');
      expect((await a.readFile('./hard', 100)).toString()).toBe('content');
      expect(a.names()).not.toContain('../escape');
      expect(a.resolve('escape')).toBeUndefined();
    } finally {
      await a.close();
    }
    await writeFile(join(tmp, 'not.tar'), 'definitely not a tar archive'.repeat(40));
    await expect(TarArchive.open(join(tmp, 'not.tar'))).rejects.toThrow(/not a tar archive/);
  });

  it('reports progress', async () => {
    const events: string[] = [];
    await copy(`oci:${layout}`, `dir:${join(tmp, 'progress-dir')}`, {
      progress: {
        onBlobStart: (i) => events.push(`start ${i.digest.slice(7, 15)}`),
        onBlobDone: (i, skipped) => events.push(`done ${i.digest.slice(7, 15)} ${skipped}`),
        onManifest: () => events.push('manifest'),
      },
    });
    expect(events.filter((e) => e.startsWith('done')).length).toBe(3);
    expect(events.at(-1)).toBe('manifest');
    // Second copy into the same dir reuses every blob.
    const again: boolean[] = [];
    await copy(`oci:${layout}`, `dir:${join(tmp, 'progress-dir')}`, { progress: { onBlobDone: (_i, s) => again.push(s) } });
    expect(again).toEqual([true, true, true]);
  });
});

// ---------------------------------------------------------------------------------------------

const haveSkopeo = (() => {
  try {
    execFileSync('skopeo', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

function skopeo(...args: string[]): string {
  return execFileSync('skopeo', ['--insecure-policy', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

describe.skipIf(!haveSkopeo)('skopeo interop', () => {
  it('reads a docker-archive written by skopeo', async () => {
    const archive = join(tmp, 'skopeo-written.tar');
    skopeo('copy', `oci:${layout}:latest`, `docker-archive:${archive}:example.com/sk/img:v2`);
    const r = await readImage(`docker-archive:${archive}:example.com/sk/img:v2`);
    expect(r.config.rootfs.diff_ids).toEqual(img.layers.map((l) => l.diffId));
    expectSameFiles(r.layers);
    const out = join(tmp, 'from-skopeo');
    await copy(`docker-archive:${archive}`, `oci:${out}:x`);
    const o = await readImage(`oci:${out}:x`);
    expect(o.mediaType).toBe(MediaType.ociManifest);
    // skopeo only sees index.json entries that are OCI manifests: this checks the conversion happened.
    // Uncompressed archive layers are gzipped for an OCI layout, as skopeo itself does.
    expect((JSON.parse(skopeo('inspect', `oci:${out}:x`)) as { Layers: string[] }).Layers).toEqual(o.manifest.layers.map((l) => l.digest));
    expect(o.manifest.layers.every((l) => l.mediaType === MediaType.ociLayerGzip)).toBe(true);
    expect(o.config.rootfs.diff_ids).toEqual(img.layers.map((l) => l.diffId));
    expectSameFiles(o.layers);
  });

  it('skopeo reads what we write', async () => {
    const archive = join(tmp, 'for-skopeo.tar');
    await copy(`oci:${layout}`, `docker-archive:${archive}:example.com/ours/img:v3`);
    const ociOut = join(tmp, 'skopeo-oci');
    skopeo('copy', `docker-archive:${archive}`, `oci:${ociOut}:latest`);
    const inspected = JSON.parse(skopeo('inspect', `docker-archive:${archive}`)) as { Layers: string[]; RepoTags: string[]; Architecture: string };
    expect(inspected.Layers).toEqual(img.layers.map((l) => l.diffId));
    expect(inspected.Architecture).toBe('amd64');
    const r = await readImage(`oci:${ociOut}:latest`);
    expectSameFiles(r.layers);

    const ociArchive = join(tmp, 'for-skopeo-oci.tar');
    await copy(`oci:${layout}`, `oci-archive:${ociArchive}:tagged`);
    const viaArchive = JSON.parse(skopeo('inspect', `oci-archive:${ociArchive}:tagged`)) as { Layers: string[] };
    expect(viaArchive.Layers).toEqual(img.layers.map((l) => l.digest));
    const dir = join(tmp, 'for-skopeo-dir');
    await copy(`oci:${layout}`, `dir:${dir}`, { destCompression: 'zstd' });
    const viaDir = JSON.parse(skopeo('inspect', '--raw', `dir:${dir}`)) as Manifest;
    expect(viaDir.layers.every((l) => l.mediaType === MediaType.ociLayerZstd)).toBe(true);
    skopeo('copy', `dir:${dir}`, `oci:${join(tmp, 'skopeo-from-dir')}:z`);
  });
});
