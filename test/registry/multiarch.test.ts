// Multi-arch images: a two-platform OCI index made here from busybox (amd64, and an "arm64"
// image with a marker layer), copied whole with --all between oci:, docker:// and dir:,
// converted to a Docker manifest list and back, and picked from by platform on pull.
import { readFile } from 'node:fs/promises';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeFailure, freshEnvs, runInImage, type Env } from '../helpers.ts';
import { busyboxEnv } from '../fixtures.ts';
import { describeTool, podmanIn, readJson, runTool, sha256Hex } from '../images/lib.ts';
import { makeTwoArchLayout, OCI_INDEX, type Index } from './multiarch-layout.ts';
import { hermetic, startRegistry, type Registry } from './registry.ts';

let reg: Registry;
let env: Env;
let layout = '';
let indexDigest = '';
const { freshEnv, cleanupFreshEnvs } = freshEnvs();
const { setup, run, ok } = hermetic();
const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';

async function rawManifest(ref: string): Promise<{ bytes: string; digest: string }> {
  const bytes = await ok(env, ['skopeo', 'inspect', '--raw', '--tls-verify=false', ref]);
  return { bytes, digest: `sha256:${sha256Hex(bytes)}` };
}

beforeAll(async () => {
  reg = await startRegistry();
  ({ env } = await busyboxEnv());
  await setup(env.tmp);
  const single = join(env.tmp, 'single');
  await ok(env, ['push', '-q', 'busybox', `oci:${single}:v1`]);
  layout = join(env.tmp, 'two-arch');
  indexDigest = await makeTwoArchLayout(single, layout);
  await ok(env, ['copy', '-q', '--all', `oci:${layout}:multi`, `docker://${reg.host}/multi/bb:v1`, '--dest-tls-verify=false']);
});

afterAll(async () => {
  await cleanupFreshEnvs();
  await env?.cleanup();
  await reg?.stop();
});

describe('copy --all', () => {
  it('oci: → registry pushes the index unchanged with both images, and skopeo copies it back whole', async () => {
    const raw = await rawManifest(`docker://${reg.host}/multi/bb:v1`);
    expect(raw.digest).toBe(indexDigest);
    const idx = JSON.parse(raw.bytes) as Index;
    expect(idx.manifests.map((m) => m.platform?.architecture)).toEqual(['amd64', 'arm64']);
    const out = join(env.tmp, 'skopeo-out');
    const sk = await runTool('skopeo', ['copy', '--all', '--src-tls-verify=false', `docker://${reg.host}/multi/bb:v1`, `oci:${out}:m`]);
    expect(sk.code, describeTool('skopeo', ['copy', '--all'], sk)).toBe(0);
    const skIdx = await readJson<Index>(join(out, 'index.json'));
    expect(skIdx.manifests[0]!.digest).toBe(indexDigest);
  });

  it('registry → oci: keeps the index digest and stores every member', async () => {
    const out = join(env.tmp, 'pulled-layout');
    await ok(env, ['copy', '-q', '--all', '--src-tls-verify=false', `docker://${reg.host}/multi/bb:v1`, `oci:${out}:copied`]);
    const idx = await readJson<Index>(join(out, 'index.json'));
    expect(idx.manifests).toHaveLength(1);
    expect(idx.manifests[0]!.digest).toBe(indexDigest);
    expect(idx.manifests[0]!.mediaType).toBe(OCI_INDEX);
    const inner = await readJson<Index>(join(out, 'blobs', 'sha256', indexDigest.slice(7)));
    for (const m of inner.manifests) expect(existsSync(join(out, 'blobs', 'sha256', m.digest.slice(7))), m.digest).toBe(true);
    // Every blob the members name is there too: skopeo reads the whole thing back.
    const sk = await runTool('skopeo', ['inspect', '--override-arch', 'arm64', `oci:${out}:copied`]);
    expect(sk.code, describeTool('skopeo', ['inspect'], sk)).toBe(0);
    expect((JSON.parse(sk.stdout) as { Architecture: string }).Architecture).toBe('arm64');
  });

  it('-f v2s2 makes a Docker manifest list, and copying that to oci: converts it back', async () => {
    await ok(env, ['skopeo', 'copy', '-q', '--all', '-f', 'v2s2', '--dest-tls-verify=false', `oci:${layout}:multi`, `docker://${reg.host}/multi/bb:list`]);
    const list = JSON.parse((await rawManifest(`docker://${reg.host}/multi/bb:list`)).bytes) as Index;
    expect(list.mediaType).toBe(DOCKER_LIST);
    expect(list.manifests.map((m) => [m.mediaType, m.platform?.architecture])).toEqual([[DOCKER_MANIFEST, 'amd64'], [DOCKER_MANIFEST, 'arm64']]);
    // podman reads the list barge pushed and picks the arm64 member.
    const podman = podmanIn(join(env.tmp, 'podman'));
    const p = await podman(['pull', '-q', '--tls-verify=false', '--arch', 'arm64', `${reg.host}/multi/bb:list`]);
    expect(p.code, describeTool('podman', ['pull'], p)).toBe(0);
    const arch = await podman(['image', 'inspect', '--format', '{{.Architecture}}', `${reg.host}/multi/bb:list`]);
    expect(arch.stdout.trim()).toBe('arm64');

    const out = join(env.tmp, 'converted');
    await ok(env, ['copy', '-q', '--all', '--src-tls-verify=false', `docker://${reg.host}/multi/bb:list`, `oci:${out}:c`]);
    const top = (await readJson<Index>(join(out, 'index.json'))).manifests[0]!;
    expect(top.mediaType).toBe(OCI_INDEX);
    const idx = await readJson<Index>(join(out, 'blobs', 'sha256', top.digest.slice(7)));
    expect(idx.mediaType).toBe(OCI_INDEX);
    expect(idx.manifests.map((m) => [m.mediaType, m.platform?.architecture])).toEqual([
      ['application/vnd.oci.image.manifest.v1+json', 'amd64'],
      ['application/vnd.oci.image.manifest.v1+json', 'arm64'],
    ]);
    // Converting back from the list gives the original OCI members again.
    expect(idx.manifests.map((m) => m.digest)).toEqual((JSON.parse((await rawManifest(`docker://${reg.host}/multi/bb:v1`)).bytes) as Index).manifests.map((m) => m.digest));
  });

  it('dir: holds a list as skopeo lays it out, and it copies back to a registry unchanged', async () => {
    const dir = join(env.tmp, 'dir-multi');
    await ok(env, ['copy', '-q', '--all', '--src-tls-verify=false', `docker://${reg.host}/multi/bb:v1`, `dir:${dir}`]);
    const inner = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as Index;
    for (const m of inner.manifests) expect(readdirSync(dir)).toContain(`${m.digest.slice(7)}.manifest.json`);
    await ok(env, ['copy', '-q', '--all', '--dest-tls-verify=false', `dir:${dir}`, `docker://${reg.host}/multi/fromdir:v1`]);
    expect((await rawManifest(`docker://${reg.host}/multi/fromdir:v1`)).digest).toBe(indexDigest);
  });

  it('without --all one platform is copied; a store cannot take a whole list', async () => {
    const out = join(env.tmp, 'one-arch');
    await ok(env, ['skopeo', 'copy', '-q', '--override-arch', 'arm64', `oci:${layout}:multi`, `oci:${out}:one`]);
    const top = (await readJson<Index>(join(out, 'index.json'))).manifests[0]!;
    expect(top.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    const r = await run(env, ['copy', '--all', `oci:${layout}:multi`, 'containers-storage:localhost/multi:all']);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain('cannot hold a list of images');
    const keep = await run(env, ['skopeo', 'copy', '--all', '--preserve-digests', '-f', 'v2s2', '--dest-tls-verify=false', `oci:${layout}:multi`, `docker://${reg.host}/multi/bb:kept`]);
    expect(keep.code).toBe(1); // skopeo's failure status
    expect(keep.stderr).toContain('cannot preserve the digest');
  });
});

describe('pull by platform', () => {
  it('--arch, --platform and the default pick the matching member; an absent platform lists the others', async () => {
    const ref = `${reg.host}/multi/bb:v1`;
    const e = await freshEnv();
    await ok(e, ['pull', '-q', '--tls-verify=false', '--arch', 'arm64', ref]);
    expect(await ok(e, ['inspect', '--type', 'image', '--format', '{{.OCIv1.architecture}}', ref])).toBe('arm64');
    expect(await runInImage(e, ref, ['cat', '/etc/marker'])).toBe('arm64');

    const e2 = await freshEnv();
    await ok(e2, ['pull', '-q', '--tls-verify=false', '--platform', 'linux/amd64', ref]);
    expect(await ok(e2, ['inspect', '--type', 'image', '--format', '{{.OCIv1.architecture}}', ref])).toBe('amd64');

    const bad = await run(await freshEnv(), ['pull', '-q', '--tls-verify=false', '--arch', 's390x', ref]);
    expect(bad.code, describeFailure(['pull', '--arch', 's390x'], bad)).toBe(125);
    expect(bad.stderr).toContain('no image for platform linux/s390x');
    expect(bad.stderr).toContain('linux/arm64');
    const conflict = await run(await freshEnv(), ['pull', '-q', '--tls-verify=false', '--platform', 'linux/arm64', '--arch', 'amd64', ref]);
    expect(conflict.code).toBe(125);
    expect(conflict.stderr).toContain('--platform cannot be combined');
  });
});
