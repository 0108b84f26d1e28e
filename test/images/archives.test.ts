// save/load round trips, and archives exchanged with podman in both directions.
import { existsSync, statSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeFailure, freshEnvs, makeEnv, readTar, type Env } from '../helpers.ts';
import { bargeWithFiles, commitMarkerImage, describeTool, expectStoreClean, imageIds, podmanIn, type ToolResult } from './lib.ts';

let env: Env;
/** The image every round trip moves: busybox plus a marker layer, with a label and a port. */
let imageId = '';
const NAME = 'localhost/roundtrip:v1';
const MARKER = 'barge was here\n';
let podman: (args: readonly string[]) => Promise<ToolResult>;
const { freshEnv, cleanupFreshEnvs } = freshEnvs();

beforeAll(async () => {
  env = await makeEnv();
  podman = podmanIn(join(env.tmp, 'podman'));
  imageId = await commitMarkerImage(env, { ctr: 'rt', name: NAME, marker: MARKER, config: ['--label', 'made.by=barge', '--port', '8080/tcp'] });
});
afterAll(async () => {
  // Podman's store lives in env.tmp; let podman drop its mounts before the directory goes.
  await podman?.(['rmi', '-a', '-f']);
  await cleanupFreshEnvs();
  await env?.cleanup();
});

/** Names of one image in env as REPO:TAG. */
async function namesOf(e: Env, id: string): Promise<string[]> {
  const out = await e.bargeOk(['images', '--format', '{{.Repository}}:{{.Tag}}', '--filter', `id=${id}`]);
  return out.split('\n').filter((l) => l !== '');
}

/** `from` + `run -- cat FILE` in env. */
async function catInImage(e: Env, image: string, file: string): Promise<string> {
  const ctr = await e.bargeOk(['from', image]);
  try {
    const r = await e.barge(['run', ctr, '--', 'cat', file]);
    expect(r.code, describeFailure(['run', ctr, '--', 'cat', file], r)).toBe(0);
    return r.stdout;
  } finally {
    await e.bargeOk(['rm', ctr]);
  }
}

describe('save and load round trips keep the image id and names', () => {
  it.each(['docker-archive', 'oci-archive'])('save --format %s, load -i', async (format) => {
    const file = join(env.tmp, `rt-${format}.tar`);
    await env.bargeOk(['save', '-q', '--format', format, '-o', file, NAME]);
    expect(statSync(file).isFile()).toBe(true);
    const e = await freshEnv();
    const out = await e.bargeOk(['load', '-i', file]);
    expect(out).toContain(`Loaded image: ${NAME}`);
    expect(await imageIds(e)).toEqual([imageId]);
    expect(await namesOf(e, imageId)).toEqual([NAME]);
    expect(await catInImage(e, NAME, '/marker')).toBe(MARKER);
    await expectStoreClean(e);
  });

  it('the default format is a docker-archive in the podman layout', async () => {
    const file = join(env.tmp, 'default.tar');
    await env.bargeOk(['save', '-o', file, NAME]);
    const members = await readTar(await readFile(file));
    const names = members.map((m) => m.header.name);
    expect(names).toContain('manifest.json');
    expect(names).toContain(`${imageId}.json`);
    const manifest = JSON.parse(members.find((m) => m.header.name === 'manifest.json')!.data.toString()) as { Config: string; RepoTags: string[]; Layers: string[] }[];
    expect(manifest).toHaveLength(1);
    expect(manifest[0]!.RepoTags).toEqual([NAME]);
    expect(manifest[0]!.Layers).toHaveLength(2);
  });

  it('save --format oci-dir writes an OCI layout that pulls back with the same id', async () => {
    const dir = join(env.tmp, 'rt-oci-dir');
    await env.bargeOk(['save', '-q', '--format', 'oci-dir', '-o', dir, NAME]);
    expect(existsSync(join(dir, 'oci-layout'))).toBe(true);
    expect(existsSync(join(dir, 'index.json'))).toBe(true);
    const e = await freshEnv();
    const out = await e.bargeOk(['pull', '-q', `oci:${dir}`]);
    expect(out.replace(/^sha256:/, '')).toBe(imageId);
    expect(await imageIds(e)).toEqual([imageId]);
  });

  it('load -i of an oci-dir (as podman load accepts) keeps the id and name', async () => {
    const dir = join(env.tmp, 'rt-oci-dir');
    const e = await freshEnv();
    const r = await e.barge(['load', '-i', dir]);
    expect(r.code, describeFailure(['load', '-i', dir], r)).toBe(0);
    expect(await imageIds(e)).toEqual([imageId]);
    expect(await namesOf(e, imageId)).toEqual([NAME]);
  });

  it('save to stdout and load from stdin', async () => {
    const file = join(env.tmp, 'stdout.tar');
    const saved = await bargeWithFiles(env, ['save', NAME], { stdout: file });
    expect(saved.code, describeFailure(['save', NAME], saved)).toBe(0);
    const e = await freshEnv();
    const loaded = await bargeWithFiles(e, ['load'], { stdin: file });
    expect(loaded.code, describeFailure(['load'], loaded)).toBe(0);
    expect(loaded.stdout).toContain(`Loaded image: ${NAME}`);
    expect(await imageIds(e)).toEqual([imageId]);
    expect(await namesOf(e, imageId)).toEqual([NAME]);
  });

  it('loading the same archive twice is idempotent', async () => {
    const file = join(env.tmp, 'rt-docker-archive.tar');
    const e = await freshEnv();
    await e.bargeOk(['load', '-q', '-i', file]);
    await e.bargeOk(['load', '-q', '-i', file]);
    expect(await imageIds(e)).toEqual([imageId]);
    await expectStoreClean(e);
  });

  it('an image without a name loads as <none> by id', async () => {
    const id = (await env.bargeOk(['commit', '-q', await env.bargeOk(['from', 'busybox'])])).replace(/^sha256:/, '');
    const file = join(env.tmp, 'unnamed.tar');
    await env.bargeOk(['save', '-q', '-o', file, id]);
    const e = await freshEnv();
    const out = await e.bargeOk(['load', '-i', file]);
    expect(out).toContain(id);
    expect(await imageIds(e)).toEqual([id]);
    expect(await namesOf(e, id)).toEqual(['<none>:<none>']);
  });

  it('save of two images never silently drops one', async () => {
    const other = (await env.bargeOk(['commit', '-q', await env.bargeOk(['from', 'busybox']), 'localhost/second:v1'])).replace(/^sha256:/, '');
    const file = join(env.tmp, 'two.tar');
    const r = await env.barge(['save', '-q', '-o', file, NAME, 'localhost/second:v1']);
    if (r.code === 0) {
      const e = await freshEnv();
      await e.bargeOk(['load', '-q', '-i', file]);
      expect(await imageIds(e)).toContain(imageId);
      expect((await imageIds(e)).includes(other) || (await namesOf(e, imageId)).includes('localhost/second:v1')).toBe(true);
    } else {
      expect(r.code).toBe(125);
      expect(r.stderr).toMatch(/^Error: /m);
    }
  });

  it('save -m writes a multi-image docker-archive that loads both images (as podman save -m does)', async () => {
    const other = await env.bargeOk(['inspect', '--type', 'image', '--format', '{{.FromImageID}}', 'localhost/second:v1']);
    const file = join(env.tmp, 'multi.tar');
    const r = await env.barge(['save', '-q', '-m', '-o', file, NAME, 'localhost/second:v1']);
    expect(r.code, describeFailure(['save', '-m'], r)).toBe(0);
    const e = await freshEnv();
    const out = await e.bargeOk(['load', '-i', file]);
    expect(out).toContain(`Loaded image: ${NAME}`);
    expect(out).toContain('Loaded image: localhost/second:v1');
    expect(await imageIds(e)).toEqual([imageId, other].sort());
  });

  it('load with no input and save of an unknown image fail with Error:', async () => {
    const r = await env.barge(['load', '-i', join(env.tmp, 'absent.tar')]);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/^Error: .*absent\.tar/m);
    const s = await env.barge(['save', '-o', join(env.tmp, 'x.tar'), 'no-such-image']);
    expect(s.code).toBe(125);
    expect(s.stderr).toMatch(/^Error: .*no-such-image/m);
    expect(existsSync(join(env.tmp, 'x.tar'))).toBe(false);
  });
});

describe('podman interop', () => {
  it('podman loads what barge saved (docker-archive) and runs it', async () => {
    const file = join(env.tmp, 'rt-docker-archive.tar');
    const load = await podman(['load', '-i', file]);
    expect(load.code, describeTool('podman load', [file], load)).toBe(0);
    expect(load.stdout).toContain(NAME);
    const inspect = await podman(['image', 'inspect', '--format', '{{.Id}} {{index .Labels "made.by"}}', NAME]);
    expect(inspect.code, describeTool('podman image inspect', [NAME], inspect)).toBe(0);
    expect(inspect.stdout.trim()).toBe(`${imageId} barge`);
    const run = await podman(['run', '--rm', '--network', 'none', NAME, 'cat', '/marker']);
    expect(run.code, describeTool('podman run', [NAME], run)).toBe(0);
    expect(run.stdout).toBe(MARKER);
  });

  it('podman loads what barge saved (oci-archive)', async () => {
    const file = join(env.tmp, 'rt-oci-archive.tar');
    await podman(['rmi', '-f', NAME]);
    const load = await podman(['load', '-i', file]);
    expect(load.code, describeTool('podman load', [file], load)).toBe(0);
    const inspect = await podman(['image', 'inspect', '--format', '{{.Id}}', NAME]);
    expect(inspect.code, describeTool('podman image inspect', [NAME], inspect)).toBe(0);
    expect(inspect.stdout.trim()).toBe(imageId);
    const run = await podman(['run', '--rm', '--network', 'none', NAME, 'cat', '/marker']);
    expect(run.code, describeTool('podman run', [NAME], run)).toBe(0);
    expect(run.stdout).toBe(MARKER);
  });

  describe('barge loads what podman saved', () => {
    const PODMAN_NAME = 'localhost/frompodman:1';
    const PODMAN_MARKER = 'written by podman build\n';
    let podmanId = '';

    beforeAll(async () => {
      // An image podman itself made, so its layer tars come from podman's tar writer.
      const ctx = join(env.tmp, 'ctx');
      await mkdir(ctx, { recursive: true });
      await writeFile(join(ctx, 'pmarker'), PODMAN_MARKER);
      await writeFile(join(ctx, 'Containerfile'), `FROM ${NAME}\nCOPY pmarker /pmarker\nLABEL made.by=podman\n`);
      const build = await podman(['build', '-q', '--network', 'none', '-t', PODMAN_NAME, ctx]);
      expect(build.code, describeTool('podman build', [ctx], build)).toBe(0);
      podmanId = build.stdout.trim().split('\n').at(-1)!.replace(/^sha256:/, '');
    });

    it.each([
      ['docker-archive', 'docker-archive'],
      ['oci-archive', 'oci-archive'],
    ])('podman save --format %s', async (format) => {
      const file = join(env.tmp, `podman-${format}.tar`);
      const save = await podman(['save', '--format', format, '-o', file, PODMAN_NAME]);
      expect(save.code, describeTool('podman save', [file], save)).toBe(0);
      const e = await freshEnv();
      const out = await e.bargeOk(['load', '-i', file]);
      expect(out).toContain(`Loaded image: ${PODMAN_NAME}`);
      expect(await imageIds(e)).toEqual([podmanId]);
      expect(await catInImage(e, PODMAN_NAME, '/pmarker')).toBe(PODMAN_MARKER);
      expect(await catInImage(e, PODMAN_NAME, '/marker')).toBe(MARKER);
      await expectStoreClean(e);
    });
  });
});
