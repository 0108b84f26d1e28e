// Buildah's manifest-list commands: a list made here from two one-platform images (amd64 and
// arm64, committed from scratch), edited, pushed with its images to a real registry and to an OCI
// layout, and picked from by architecture by skopeo and by barge's own pull.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeFailure, freshEnvs, makeEnv, type Env } from '../helpers.ts';
import { describeTool, expectStoreClean, runTool, sha256Hex } from '../images/lib.ts';
import { hermetic, startRegistry, type Registry } from './registry.ts';

const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';

interface Entry {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { architecture: string; os: string; variant?: string; 'os.version'?: string; features?: string[] };
  annotations?: Record<string, string>;
}
interface Index {
  schemaVersion: number;
  mediaType: string;
  manifests: Entry[];
}

let reg: Registry;
let env: Env;
const { freshEnv, cleanupFreshEnvs } = freshEnvs();
const { setup, run, ok } = hermetic();
/** arch → image id and manifest digest of the two images. */
const images: Record<string, { id: string; digest: string }> = {};

async function commitArch(e: Env, arch: string): Promise<{ id: string; digest: string }> {
  const ctr = await ok(e, ['from', '-q', 'scratch']);
  await ok(e, ['config', '--arch', arch, '--os', 'linux', ctr]);
  const id = (await ok(e, ['commit', '-q', '--rm', ctr, `img-${arch}`])).replace(/^sha256:/, '');
  const digest = await ok(e, ['inspect', '--type', 'image', '--format', '{{.FromImageDigest}}', `img-${arch}`]);
  return { id, digest };
}

async function inspectList(e: Env, name: string): Promise<Index> {
  return JSON.parse(await ok(e, ['manifest', 'inspect', name])) as Index;
}

async function expectFail(e: Env, args: string[], message: string | RegExp): Promise<void> {
  const r = await run(e, args);
  expect(r.code, describeFailure(args, r)).toBe(125);
  expect(r.stderr).toMatch(message);
}

/** The architecture in the config of the image skopeo finds at `ref` for `arch`. */
async function skopeoArch(ref: string, arch: string): Promise<string> {
  const args = ['inspect', '--tls-verify=false', '--override-arch', arch, '--config', ref];
  const r = await runTool('skopeo', args);
  expect(r.code, describeTool('skopeo', args, r)).toBe(0);
  return (JSON.parse(r.stdout) as { architecture: string }).architecture;
}

beforeAll(async () => {
  reg = await startRegistry();
  env = await makeEnv();
  await setup(env.tmp);
  for (const arch of ['amd64', 'arm64']) images[arch] = await commitArch(env, arch);
});

afterAll(async () => {
  await cleanupFreshEnvs();
  await env?.cleanup();
  await reg?.stop();
});

describe('manifest create, add, inspect', () => {
  it('creates an empty OCI index under localhost/NAME:latest and prints its id', async () => {
    const id = await ok(env, ['manifest', 'create', 'empty']);
    expect(id).toMatch(/^[a-f0-9]{64}$/);
    const idx = await inspectList(env, 'empty');
    expect(idx).toEqual({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] });
    expect(await ok(env, ['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}'])).toContain(`localhost/empty:latest ${id.slice(0, 12)}`);
    await ok(env, ['manifest', 'exists', 'empty']);
  });

  it('adds local images with their digest, size, media type and the platform of their config', async () => {
    const id = await ok(env, ['manifest', 'create', 'multi']);
    expect(await ok(env, ['manifest', 'add', 'multi', 'img-arm64'])).toBe(`${id}: ${images.arm64!.digest}`);
    expect(await ok(env, ['manifest', 'add', 'multi', 'img-amd64'])).toBe(`${id}: ${images.amd64!.digest}`);
    const idx = await inspectList(env, 'multi');
    expect(idx.mediaType).toBe(OCI_INDEX);
    const manifestBytes = await ok(env, ['inspect', '--type', 'image', '--format', '{{.Manifest}}', 'img-arm64']);
    expect(idx.manifests.map((m) => [m.digest, m.platform])).toEqual([
      [images.arm64!.digest, { architecture: 'arm64', os: 'linux' }],
      [images.amd64!.digest, { architecture: 'amd64', os: 'linux' }],
    ]);
    expect(idx.manifests[0]!.size).toBe(Buffer.byteLength(manifestBytes));
    expect(idx.manifests[0]!.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    // Adding an image again replaces its entry rather than listing it twice.
    await ok(env, ['manifest', 'add', '--annotation', 'note=again', 'multi', 'img-amd64']);
    const again = await inspectList(env, 'multi');
    expect(again.manifests).toHaveLength(2);
    expect(again.manifests[1]!.annotations).toEqual({ note: 'again' });
  });

  it('create takes images to add, and --amend adds to a list of that name', async () => {
    const id = await ok(env, ['manifest', 'create', 'both', 'img-amd64']);
    await expectFail(env, ['manifest', 'create', 'both'], /image name "localhost\/both:latest" is already associated with image ".*": that name is already in use/);
    expect(await ok(env, ['manifest', 'create', '--amend', 'both', 'img-arm64'])).toBe(id);
    expect((await inspectList(env, 'both')).manifests.map((m) => m.platform?.architecture)).toEqual(['amd64', 'arm64']);
  });

  it('add overrides the platform with --arch, --os, --variant, --os-version and --features', async () => {
    await ok(env, ['manifest', 'create', 'overridden']);
    await ok(env, ['manifest', 'add', '--arch', 'arm', '--variant', 'v7', '--os-version', '1.2', '--features', 'f1,f2', 'overridden', 'img-arm64']);
    expect((await inspectList(env, 'overridden')).manifests[0]!.platform).toEqual({ architecture: 'arm', os: 'linux', variant: 'v7', 'os.version': '1.2', features: ['f1', 'f2'] });
  });

  it('exists is 1 for an unknown name and for an image that is not a list', async () => {
    for (const name of ['no-such-list', 'img-amd64']) {
      const r = await run(env, ['manifest', 'exists', name]);
      expect(r.code, describeFailure(['manifest', 'exists', name], r)).toBe(1);
    }
  });
});

describe('manifest annotate and remove', () => {
  it('annotate changes the platform and annotations of the entry a digest or an image names', async () => {
    const id = await ok(env, ['manifest', 'create', 'annotated', 'img-amd64', 'img-arm64']);
    const d = images.arm64!.digest;
    expect(await ok(env, ['manifest', 'annotate', '--arch', 'arm', '--variant', 'v6', '--annotation', 'a=b', 'annotated', d])).toBe(`${id}: ${d}`);
    await ok(env, ['manifest', 'annotate', '--annotation', 'c=d', 'annotated', 'img-arm64']);
    const e = (await inspectList(env, 'annotated')).manifests.find((m) => m.digest === d)!;
    expect(e.platform).toEqual({ architecture: 'arm', os: 'linux', variant: 'v6' });
    expect(e.annotations).toEqual({ a: 'b', c: 'd' });
  });

  it('remove drops the entry; a digest that is not in the list fails with 125', async () => {
    const id = await ok(env, ['manifest', 'create', 'shrinking', 'img-amd64', 'img-arm64']);
    expect(await ok(env, ['manifest', 'remove', 'shrinking', images.amd64!.digest])).toBe(`${id}: ${images.amd64!.digest}`);
    expect((await inspectList(env, 'shrinking')).manifests.map((m) => m.digest)).toEqual([images.arm64!.digest]);
    const absent = `sha256:${'0'.repeat(64)}`;
    await expectFail(env, ['manifest', 'remove', 'shrinking', absent], `no instance matching digest "${absent}" found in manifest list`);
    await expectFail(env, ['manifest', 'annotate', '--arch', 'x', 'shrinking', absent], 'no instance matching digest');
  });
});

describe('errors', () => {
  it('an unknown list, a non-existent image and an image that is not a list fail with 125 and say so', async () => {
    await expectFail(env, ['manifest', 'inspect', 'no-such-list'], 'no-such-list: image not known');
    await expectFail(env, ['manifest', 'add', 'no-such-list', 'img-amd64'], 'no-such-list: image not known');
    await expectFail(env, ['manifest', 'add', 'multi', 'no-such-image'], 'no-such-image: image not known');
    await expectFail(env, ['manifest', 'add', 'img-amd64', 'img-arm64'], 'localhost/img-amd64:latest: image is not a manifest list');
    await expectFail(env, ['manifest', 'inspect', 'img-amd64'], 'image is not a manifest list');
    await expectFail(env, ['manifest', 'rm', 'no-such-list'], 'no-such-list: image not known');
    await expectFail(env, ['manifest', 'add', '--tls-verify=false', 'multi', `docker://${reg.host}/missing/image:v1`], /manifest unknown/);
  });
});

describe('manifest push', () => {
  it('--all pushes the images and the index; skopeo and barge pull pick each architecture', async () => {
    const dest = `${reg.host}/lists/multi:v1`;
    const digestFile = join(env.tmp, 'digest');
    await ok(env, ['manifest', 'create', 'pushed', 'img-amd64', 'img-arm64']);
    await ok(env, ['manifest', 'push', '-q', '--all', '--tls-verify=false', '--digestfile', digestFile, 'pushed', `docker://${dest}`]);
    const raw = await runTool('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${dest}`]);
    expect(raw.code, describeTool('skopeo', ['inspect', '--raw'], raw)).toBe(0);
    expect(await readFile(digestFile, 'utf8')).toBe(`sha256:${sha256Hex(raw.stdout)}`);
    const idx = JSON.parse(raw.stdout) as Index;
    expect(idx.mediaType).toBe(OCI_INDEX);
    expect(idx.manifests.map((m) => m.platform)).toEqual([{ architecture: 'amd64', os: 'linux' }, { architecture: 'arm64', os: 'linux' }]);
    for (const arch of ['amd64', 'arm64']) expect(await skopeoArch(`docker://${dest}`, arch)).toBe(arch);
    // skopeo copy with an override takes that architecture's image out of the list.
    const out = join(env.tmp, 'skopeo-arm64');
    const cp = await runTool('skopeo', ['copy', '-q', '--src-tls-verify=false', '--override-arch', 'arm64', `docker://${dest}`, `oci:${out}:x`]);
    expect(cp.code, describeTool('skopeo', ['copy'], cp)).toBe(0);
    expect(await skopeoArch(`oci:${out}:x`, 'amd64')).toBe('arm64');
    // barge's own pull picks by --arch; the config, and so the image id, is the one committed here.
    const e = await freshEnv();
    for (const arch of ['arm64', 'amd64']) {
      const id = await ok(e, ['pull', '-q', '--tls-verify=false', '--arch', arch, dest]);
      expect(id.replace(/^sha256:/, '')).toBe(images[arch]!.id);
    }
    await expectStoreClean(e);
  });

  it('without --all pushes the index alone, as Buildah 1.28: the registry refuses one whose images it lacks', async () => {
    await ok(env, ['manifest', 'create', 'alone', 'img-amd64']);
    await expectFail(env, ['manifest', 'push', '--tls-verify=false', 'alone', `docker://${reg.host}/lists/alone:v1`], /manifest blob unknown/);
    // A list of images the repository has already goes through alone, byte for byte.
    await ok(env, ['manifest', 'create', '--all', '--tls-verify=false', 'fromreg', `docker://${reg.host}/lists/multi:v1`]);
    await ok(env, ['manifest', 'push', '-q', '--tls-verify=false', 'fromreg', `docker://${reg.host}/lists/multi:v2`]);
    const raw = await runTool('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/lists/multi:v2`]);
    expect(raw.stdout).toBe(await ok(env, ['manifest', 'inspect', 'fromreg']).then((s) => JSON.stringify(JSON.parse(s))));
    expect((JSON.parse(raw.stdout) as Index).manifests.map((m) => m.platform?.architecture)).toEqual(['amd64', 'arm64']);
  });

  it('--format v2s2 pushes a Docker manifest list, and --rm removes the local list afterwards', async () => {
    await ok(env, ['manifest', 'create', 'dockerlist', 'img-amd64', 'img-arm64']);
    await ok(env, ['manifest', 'push', '-q', '--all', '--rm', '-f', 'v2s2', '--tls-verify=false', 'dockerlist', `${reg.host}/lists/docker:v1`]);
    const raw = await runTool('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/lists/docker:v1`]);
    const idx = JSON.parse(raw.stdout) as Index;
    expect(idx.mediaType).toBe(DOCKER_LIST);
    expect(idx.manifests.map((m) => [m.mediaType, m.platform?.architecture])).toEqual([
      ['application/vnd.docker.distribution.manifest.v2+json', 'amd64'],
      ['application/vnd.docker.distribution.manifest.v2+json', 'arm64'],
    ]);
    expect(await skopeoArch(`docker://${reg.host}/lists/docker:v1`, 'arm64')).toBe('arm64');
    expect((await run(env, ['manifest', 'exists', 'dockerlist'])).code).toBe(1);
  });

  it('pushes to an OCI layout, which skopeo reads per architecture', async () => {
    const layout = join(env.tmp, 'layout');
    await ok(env, ['manifest', 'create', 'tolayout', 'img-amd64', 'img-arm64']);
    await ok(env, ['manifest', 'push', '-q', '--all', 'tolayout', `oci:${layout}:multi`]);
    const top = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as Index;
    expect(top.manifests[0]!.mediaType).toBe(OCI_INDEX);
    for (const arch of ['amd64', 'arm64']) expect(await skopeoArch(`oci:${layout}:multi`, arch)).toBe(arch);
  });

  it('--creds and --authfile reach a registry that requires a login', async () => {
    const secured = await startRegistry({ htpasswd: { user: 'lister', password: 'pw' } });
    try {
      await ok(env, ['manifest', 'create', 'secured', 'img-amd64', 'img-arm64']);
      const dest = `docker://${secured.host}/lists/secured:v1`;
      await expectFail(env, ['manifest', 'push', '--all', '--tls-verify=false', 'secured', dest], /unauthorized|authentication required/i);
      await ok(env, ['manifest', 'push', '-q', '--all', '--tls-verify=false', '--creds', 'lister:pw', 'secured', dest]);
      const authfile = join(env.tmp, 'secured-auth.json');
      await writeFile(authfile, JSON.stringify({ auths: { [secured.host]: { auth: Buffer.from('lister:pw').toString('base64') } } }));
      await ok(env, ['manifest', 'push', '-q', '--all', '--tls-verify=false', '--authfile', authfile, 'secured', `docker://${secured.host}/lists/secured:v2`]);
      await ok(env, ['manifest', 'inspect', '--tls-verify=false', '--authfile', authfile, `docker://${secured.host}/lists/secured:v2`]);
    } finally {
      await secured.stop();
    }
  });

  it('plain push of a list pushes the image for the default platform (linux/amd64), as a copy without --all', async () => {
    await ok(env, ['manifest', 'create', 'plain', 'img-arm64', 'img-amd64']);
    const layout = join(env.tmp, 'plain-layout');
    await ok(env, ['push', '-q', 'plain', `oci:${layout}:x`]);
    expect(await skopeoArch(`oci:${layout}:x`, 'arm64')).toBe('amd64');
  });

  it('a list of images added from a registry and a layout is pushed from where they were added', async () => {
    const layout = join(env.tmp, 'single-layout');
    images.arm = await commitArch(env, 'arm');
    await ok(env, ['push', '-q', 'img-arm', `oci:${layout}:one`]);
    await ok(env, ['manifest', 'create', 'remote', '--all', '--tls-verify=false', `docker://${reg.host}/lists/multi:v1`]);
    const layoutArm = (await ok(env, ['manifest', 'add', '--variant', 'v7', 'remote', `oci:${layout}:one`])).split(': ')[1]!;
    const idx = await inspectList(env, 'remote');
    expect(idx.manifests).toHaveLength(3);
    expect(idx.manifests[2]!.digest).toBe(layoutArm);
    await ok(env, ['manifest', 'push', '-q', '--all', '--tls-verify=false', 'remote', `docker://${reg.host}/lists/elsewhere:v1`]);
    const raw = await runTool('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/lists/elsewhere:v1`]);
    expect((JSON.parse(raw.stdout) as Index).manifests.map((m) => m.platform?.architecture)).toEqual(['amd64', 'arm64', 'arm']);
    for (const arch of ['arm64', 'arm']) expect(await skopeoArch(`docker://${reg.host}/lists/elsewhere:v1`, arch)).toBe(arch);
  });
});

describe('lists in the store', () => {
  it('inspect prints a list\'s index; images, rmi and manifest rm leave the images alone', async () => {
    const id1 = await ok(env, ['manifest', 'create', 'gone1', 'img-amd64']);
    const id2 = await ok(env, ['manifest', 'create', 'gone2', 'img-arm64']);
    expect((JSON.parse(await ok(env, ['inspect', 'gone1'])) as Index).manifests).toHaveLength(1);
    expect(await ok(env, ['manifest', 'rm', 'gone1'])).toBe(`untagged: localhost/gone1:latest\n${id1}`);
    expect(await ok(env, ['rmi', 'gone2'])).toBe(id2);
    const names = await ok(env, ['images', '--format', '{{.Repository}}']);
    expect(names).toContain('localhost/img-amd64');
    expect(names).toContain('localhost/img-arm64');
    expect(names).not.toContain('gone');
  });

  it('from LIST and create LIST start from the list\'s image for this machine, which must be local', async () => {
    const host = process.arch === 'arm64' ? 'arm64' : 'amd64';
    await ok(env, ['manifest', 'create', 'base', 'img-amd64', 'img-arm64']);
    const ctr = await ok(env, ['from', '-q', 'base']);
    expect(await ok(env, ['inspect', '--format', '{{.FromImageID}}', ctr])).toBe(images[host]!.id);
    await ok(env, ['rm', ctr]);
    // Podman's create (and so run) too.
    await ok(env, ['create', '--name', 'from-list', 'base', 'true']);
    expect(await ok(env, ['container', 'inspect', '--format', '{{.Image}}', 'from-list'])).toBe(images[host]!.id);
    await ok(env, ['rm', 'from-list']);
    await ok(env, ['manifest', 'create', 'foreign', 'img-arm']);
    await expectFail(env, ['from', 'foreign'], `no image for platform linux/${host} in the index; available: linux/arm`);
    // The registry's copies were compressed on the way: the list names images not kept here.
    await ok(env, ['manifest', 'create', '--all', '--tls-verify=false', 'elsewhere', `docker://${reg.host}/lists/multi:v1`]);
    await expectFail(env, ['from', 'elsewhere'], 'that manifest list names for this platform is not in local storage');
  });

  it('push --all names an image removed since it was added', async () => {
    const e = await freshEnv();
    await setup(e.tmp);
    await commitArch(e, 's390x');
    await ok(e, ['manifest', 'create', 'orphaned', 'img-s390x']);
    await ok(e, ['rmi', 'img-s390x']);
    await expectFail(e, ['manifest', 'push', '--all', 'orphaned', `oci:${join(e.tmp, 'out')}:x`], /image sha256:[a-f0-9]{64} of manifest list localhost\/orphaned:latest is no longer in local storage/);
    await expectStoreClean(e);
  });

  it('concurrent adds to one list both land (each rewrites the list under its lock)', async () => {
    await ok(env, ['manifest', 'create', 'raced']);
    await Promise.all(['img-amd64', 'img-arm64'].map((img) => ok(env, ['manifest', 'add', 'raced', img])));
    expect((await inspectList(env, 'raced')).manifests.map((m) => m.digest).sort()).toEqual([images.amd64!.digest, images.arm64!.digest].sort());
  });

  it('system check reports a list whose index blob is not an index, and --repair removes the list only', async () => {
    const e = await freshEnv();
    await setup(e.tmp);
    await commitArch(e, 'amd64');
    await ok(e, ['manifest', 'create', 'damaged', 'img-amd64']);
    const digest = await ok(e, ['images', '--filter', 'reference=damaged', '--format', '{{.Digest}}']);
    await writeFile(join(e.root, 'blobs', 'sha256', digest.slice('sha256:'.length)), '{"not":"an index"}');
    const r = await run(e, ['system', 'check']);
    expect(r.code, describeFailure(['system', 'check'], r)).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/manifest list [a-f0-9]{12} is missing its index or it is not one/);
    await ok(e, ['system', 'check', '--repair']);
    expect((await run(e, ['manifest', 'exists', 'damaged'])).code).toBe(1);
    expect(await ok(e, ['images', '--format', '{{.Repository}}'])).toBe('localhost/img-amd64');
    await expectStoreClean(e);
  });

  it('lists of the same content share an index blob: removing one leaves the other whole', async () => {
    await ok(env, ['manifest', 'create', 'twin1']);
    await ok(env, ['manifest', 'create', 'twin2']);
    await ok(env, ['manifest', 'rm', 'twin1']);
    expect((await inspectList(env, 'twin2')).manifests).toEqual([]);
    await expectStoreClean(env);
  });

  it('system check finds the store clean after everything above', async () => {
    await expectStoreClean(env);
  });
});
