// Damage done behind barge's back (a deleted directory, a lost blob) must be found by
// `system check`, and --repair must leave a store that checks clean and keeps working.
import { mkdir, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Env } from '../helpers.ts';
import { busyboxEnv, importBusybox } from '../fixtures.ts';
import { containerNames, expectCheckFindsAndRepairs, expectStoreClean, imageNames, listDir, makeRandomRootfsTar } from './store-helpers.ts';

let env: Env;
beforeEach(async () => {
  ({ env } = await busyboxEnv());
});
afterEach(async () => {
  await env.cleanup();
});

async function imageId(name: string): Promise<string> {
  const out = await env.bargeOk(['images', '-q', '--no-trunc', name]);
  return out.split('\n')[0]!.replace(/^sha256:/, '');
}

/** An image built on busybox with a file of its own; returns the id of its own (top) layer. */
async function derive(name: string): Promise<string> {
  const before = new Set(await listDir(join(env.root, 'layers')));
  const c = await env.bargeOk(['from', '--name', `${name}-src`, 'busybox']);
  await env.bargeOk(['run', c, '--', 'sh', '-c', `echo ${name} > /${name}`]);
  await env.bargeOk(['commit', '--rm', '-q', c, name]);
  const added = (await listDir(join(env.root, 'layers'))).filter((l) => !before.has(l));
  expect(added).toHaveLength(1);
  return added[0]!;
}

describe('system check finds damage and --repair heals it', () => {
  it('a deleted top layer directory: the image that uses it is removed, others stay', async () => {
    const top = await derive('victim');
    await derive('bystander');
    await rm(join(env.root, 'layers', top), { recursive: true });

    await expectCheckFindsAndRepairs(env, new RegExp(`layer ${top.slice(0, 12)} has no content directory`));
    expect(await imageNames(env)).toEqual(['localhost/busybox:latest', 'localhost/bystander:latest']);
    const c = await env.bargeOk(['from', 'bystander']);
    expect(await env.bargeOk(['run', c, '--', 'cat', '/bystander'])).toBe('bystander');
  });

  it('a deleted base layer directory: every image and container on it is removed', async () => {
    const base = await listDir(join(env.root, 'layers'));
    expect(base).toHaveLength(1);
    await derive('child');
    await env.bargeOk(['from', '--name', 'on-base', 'busybox']);
    // An unrelated image on a different base must survive the repair.
    const other = join(env.tmp, 'other.tar');
    await makeRandomRootfsTar(other, env.tmp, 3, 1024);
    await env.bargeOk(['import', '-q', other, 'other']);

    await rm(join(env.root, 'layers', base[0]!), { recursive: true });
    const report = await expectCheckFindsAndRepairs(env, new RegExp(`layer ${base[0]!.slice(0, 12)} has no content directory`));
    expect(report).toMatch(/problem\(s\) found/);
    expect(await imageNames(env)).toEqual(['localhost/other:latest']);
    expect(await containerNames(env)).toEqual([]);
    expect(await listDir(join(env.root, 'containers'))).toEqual([]);
    // The store keeps working: busybox can come back.
    await importBusybox(env);
    const c = await env.bargeOk(['from', 'busybox']);
    expect(await env.bargeOk(['run', c, '--', 'echo', 'back'])).toBe('back');
    await expectStoreClean(env);
  });

  it('a deleted image config blob is reported and the image removed', async () => {
    await derive('noconfig');
    const id = await imageId('noconfig');
    await unlink(join(env.root, 'blobs', 'sha256', id));
    await expectCheckFindsAndRepairs(env, new RegExp(`image ${id.slice(0, 12)} is missing its layers, config or manifest`));
    expect(await imageNames(env)).toEqual(['localhost/busybox:latest']);
  });

  it('a deleted manifest blob is reported and the image removed', async () => {
    await derive('nomanifest');
    const id = await imageId('nomanifest');
    const digest = await env.bargeOk(['inspect', '--type', 'image', '--format', '{{.FromImageDigest}}', 'nomanifest']);
    expect(digest).toMatch(/^sha256:[a-f0-9]{64}$/);
    await unlink(join(env.root, 'blobs', 'sha256', digest.slice(7)));
    await expectCheckFindsAndRepairs(env, new RegExp(`image ${id.slice(0, 12)} is missing its layers, config or manifest`));
    expect(await imageNames(env)).toEqual(['localhost/busybox:latest']);
  });

  it('a lost layer blob is reported; repair removes the images that can no longer be saved', async () => {
    const top = await derive('noblob');
    const blobs = new Set(await listDir(join(env.root, 'blobs', 'sha256')));
    const manifestOut = await env.bargeOk(['inspect', '--type', 'manifest', 'noblob']);
    const manifest = JSON.parse(manifestOut) as { layers: { digest: string }[] };
    const layerBlob = manifest.layers.at(-1)!.digest.slice(7);
    expect(blobs.has(layerBlob)).toBe(true);
    await unlink(join(env.root, 'blobs', 'sha256', layerBlob));

    await expectCheckFindsAndRepairs(env, new RegExp(`layer ${top.slice(0, 12)} lost its blob`));
    // The image could never be pushed or saved again: repair removed it, and its base survives.
    expect(await imageNames(env)).not.toContain('localhost/noblob:latest');
    expect(await imageNames(env)).toContain('localhost/busybox:latest');
    const c = await env.bargeOk(['from', 'busybox']);
    expect(await env.bargeOk(['run', c, '--', 'echo', 'ok'])).toBe('ok');
    await env.bargeOk(['rm', c]);
    await expectStoreClean(env);
  });

  it('a deleted short link is recreated and the layer mounts again', async () => {
    const links = await listDir(join(env.root, 'l'));
    expect(links).toHaveLength(1);
    await unlink(join(env.root, 'l', links[0]!));
    await expectCheckFindsAndRepairs(env, /missing its short link/);
    const c = await env.bargeOk(['from', 'busybox']);
    expect(await env.bargeOk(['run', c, '--', 'echo', 'linked'])).toBe('linked');
  });

  it('a working container whose directory was deleted is reported and removed', async () => {
    await env.bargeOk(['from', '--name', 'gone', 'busybox']);
    const dirs = await listDir(join(env.root, 'containers'));
    expect(dirs).toHaveLength(1);
    await rm(join(env.root, 'containers', dirs[0]!), { recursive: true });
    await expectCheckFindsAndRepairs(env, /container gone is missing its layers or directory/);
    expect(await containerNames(env)).toEqual([]);
  });

  it('stray files no process is writing are reported and removed', async () => {
    // What a crash at other moments would leave: an unregistered layer directory, a dangling
    // link, a container directory without a row, and temporary data of a dead process.
    await mkdir(join(env.root, 'layers', 'f'.repeat(64), 'diff'), { recursive: true });
    await mkdir(join(env.root, 'containers', 'e'.repeat(64), 'upper'), { recursive: true });
    await symlink(join('..', 'layers', 'f'.repeat(64), 'diff'), join(env.root, 'l', 'ZZZZZZZZZZZZZZZZZZZZZZZZZZ'));
    const deadTmp = join(env.root, 'tmp', '999999999-12345-abcdef');
    await writeFile(deadTmp, 'half');
    const report = await expectCheckFindsAndRepairs(env, /layer directory ffffffffffff is not registered/);
    expect(report).toMatch(/stale layer link l\/ZZZZZZZZZZZZZZZZZZZZZZZZZZ/);
    expect(report).toMatch(/container directory eeeeeeeeeeee is not registered/);
    expect(report).toMatch(/leftover temporary data tmp\/999999999-12345-abcdef/);
    expect(await listDir(join(env.root, 'tmp'))).toEqual([]);
  });
});
