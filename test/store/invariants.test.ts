// After ordinary deletions the store holds exactly what its images and containers need:
// nothing leaks, nothing shared disappears, and the maintenance commands keep it working.
import { existsSync, readFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { describeFailure, type Env } from '../helpers.ts';
import { busyboxEnv, importBusybox } from '../fixtures.ts';
import { containerNames, countEntries, expectStoreClean, imageNames, listDir } from './store-helpers.ts';

let env: Env;
beforeEach(async () => {
  ({ env } = await busyboxEnv());
});
afterEach(async () => {
  await env.cleanup();
});

interface Usage {
  layers: string[];
  blobs: string[];
  links: string[];
  entries: number;
}

async function usage(): Promise<Usage> {
  return {
    layers: await listDir(join(env.root, 'layers')),
    blobs: await listDir(join(env.root, 'blobs', 'sha256')),
    links: await listDir(join(env.root, 'l')),
    entries: (await countEntries(join(env.root, 'layers'))) + (await countEntries(join(env.root, 'blobs', 'sha256'))),
  };
}

/** A new image on top of `base` with one file of its own; the working container is removed. */
async function derive(base: string, name: string, content: string): Promise<void> {
  const c = await env.bargeOk(['from', '--name', `${name}-ctr`, base]);
  await env.bargeOk(['run', c, '--', 'sh', '-c', `echo ${content} > /${name}`]);
  await env.bargeOk(['commit', '--rm', '-q', c, name]);
}

describe('store contents after deletion', () => {
  it('rmi frees the image\'s layer directories, links and blobs', async () => {
    const before = await usage();
    await derive('busybox', 'img-a', 'a');
    const during = await usage();
    expect(during.layers.length).toBe(before.layers.length + 1);
    // The layer's compressed blob, the config and the manifest.
    expect(during.blobs.length).toBe(before.blobs.length + 3);
    expect(during.links.length).toBe(before.links.length + 1);

    await env.bargeOk(['rmi', 'img-a']);
    expect(await usage()).toEqual(before);
    expect(await readdir(join(env.root, 'tmp'))).toEqual([]);
    await expectStoreClean(env);
  });

  it('shared base layers survive while another image uses them', async () => {
    const base = await usage();
    await derive('busybox', 'img-a', 'a');
    await derive('busybox', 'img-b', 'b');
    // busybox itself goes, but its layer is the bottom of img-a and img-b.
    await env.bargeOk(['rmi', 'busybox']);
    for (const l of base.layers) expect(existsSync(join(env.root, 'layers', l, 'diff'))).toBe(true);

    await env.bargeOk(['rmi', 'img-a']);
    for (const l of base.layers) expect(existsSync(join(env.root, 'layers', l, 'diff'))).toBe(true);
    const c = await env.bargeOk(['from', 'img-b']);
    expect(await env.bargeOk(['run', c, '--', 'sh', '-c', 'cat /img-b; test ! -e /img-a && busybox true && echo ok'])).toBe('b\nok');
    await expectStoreClean(env);

    await env.bargeOk(['rm', c]);
    await env.bargeOk(['rmi', 'img-b']);
    const empty = await usage();
    expect(empty).toEqual({ layers: [], blobs: [], links: [], entries: 0 });
    await expectStoreClean(env);
  });

  it('rm of a working container frees its directory and keeps the image', async () => {
    const before = await listDir(join(env.root, 'containers'));
    const c = await env.bargeOk(['from', 'busybox']);
    await env.bargeOk(['run', c, '--', 'sh', '-c', 'echo x > /x']);
    expect((await listDir(join(env.root, 'containers'))).length).toBe(before.length + 1);
    await env.bargeOk(['rm', c]);
    expect(await listDir(join(env.root, 'containers'))).toEqual(before);
    expect(await imageNames(env)).toEqual(['localhost/busybox:latest']);
    await expectStoreClean(env);
  });

  it('rmi refuses an image a working container uses; rmi -f removes both', async () => {
    const c = await env.bargeOk(['from', 'busybox']);
    const r = await env.barge(['rmi', 'busybox']);
    expect(r.code, describeFailure(['rmi', 'busybox'], r)).not.toBe(0);
    expect(r.stderr).toMatch(/^Error: .*in use/m);
    expect(await containerNames(env)).toEqual([c]);

    await env.bargeOk(['rmi', '-f', 'busybox']);
    expect(await containerNames(env)).toEqual([]);
    expect(await usage()).toEqual({ layers: [], blobs: [], links: [], entries: 0 });
    expect(await listDir(join(env.root, 'containers'))).toEqual([]);
    await expectStoreClean(env);
  });

  it('system df has the Images and Containers rows', async () => {
    await env.bargeOk(['from', 'busybox']);
    const out = await env.bargeOk(['system', 'df']);
    const lines = out.split('\n');
    expect(lines[0]).toMatch(/^TYPE\s+TOTAL\s+ACTIVE\s+SIZE\s+RECLAIMABLE\s*$/);
    expect(out).toMatch(/^Images\s+1\s+1\s+\d[\d.]* [kMG]?B\s+0 B\s*$/m);
    expect(out).toMatch(/^Containers\s+1\s+\d+\s+\d[\d.]* [kMG]?B\s+/m);
  });

  it('system prune removes dangling images and keeps named and used ones', async () => {
    // Committing twice to one name leaves the first image without a name.
    const c = await env.bargeOk(['from', '--name', 'work', 'busybox']);
    await env.bargeOk(['run', c, '--', 'sh', '-c', 'echo 1 > /v']);
    const first = await env.bargeOk(['commit', '-q', c, 'moving']);
    await env.bargeOk(['run', c, '--', 'sh', '-c', 'echo 2 > /v']);
    const second = await env.bargeOk(['commit', '-q', c, 'moving']);
    expect(first).not.toBe(second);
    const unnamed = await env.bargeOk(['commit', '-q', c]);
    const ids = async (): Promise<string[]> => (await env.bargeOk(['images', '-q', '--no-trunc'])).split('\n').map((l) => l.replace(/^sha256:/, ''));
    expect(await ids()).toEqual(expect.arrayContaining([first, second, unnamed]));

    await env.bargeOk(['system', 'prune', '--force']);
    const left = await ids();
    expect(left).not.toContain(first);
    expect(left).not.toContain(unnamed);
    expect(left).toContain(second);
    expect(await imageNames(env)).toEqual(['localhost/busybox:latest', 'localhost/moving:latest']);
    expect(await containerNames(env)).toEqual(['work']);
    expect(await env.bargeOk(['run', c, '--', 'cat', '/v'])).toBe('2');
    await expectStoreClean(env);
  });

  it('system reset --force leaves an empty store that still works', async () => {
    const c = await env.bargeOk(['from', 'busybox']);
    await env.bargeOk(['mount', c]);
    await derive('busybox', 'img-a', 'a');
    await env.bargeOk(['system', 'reset', '--force']);
    // Nothing of the old store is left, and nothing of it is still mounted.
    expect(await listDir(env.root)).toEqual([]);
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8');
    expect(mounts).not.toContain(env.root);

    expect(await imageNames(env)).toEqual([]);
    expect(await containerNames(env)).toEqual([]);
    await expectStoreClean(env);
    await importBusybox(env);
    const again = await env.bargeOk(['from', 'busybox']);
    expect(await env.bargeOk(['run', again, '--', 'echo', 'alive'])).toBe('alive');
    await expectStoreClean(env);
  });
});
