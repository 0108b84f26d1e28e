// A commit that keeps its container stores the new layer as its blob only; the layer's tree is
// unpacked from the blob the first time a container mounts it. The image must behave exactly as
// one whose tree was written at commit time, whoever unpacks it first, however many at once, and
// a kill -9 during the unpack must lose nothing.
import { existsSync, readdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Env } from '../helpers.ts';
import { busyboxEnv } from '../fixtures.ts';
import { expectCheckFindsAndRepairs, expectStoreClean, killWhileStaging } from './store-helpers.ts';

let env: Env;

beforeAll(async () => {
  ({ env } = await busyboxEnv());
});
afterAll(async () => {
  await env?.cleanup();
});

const layerIds = (): Set<string> => new Set(readdirSync(join(env.root, 'layers')));

/** Commits container c as `name` (keeping c) and returns the id of the one layer the commit added. */
async function commitKeeping(c: string, name: string): Promise<string> {
  const before = layerIds();
  await env.bargeOk(['commit', '-q', c, name]);
  const added = [...layerIds()].filter((id) => !before.has(id));
  expect(added, `the layers commit ${name} added`).toHaveLength(1);
  return added[0]!;
}

/** A committed image whose layer adds, deletes and makes an opaque dir; returns its layer id. */
async function commitChanges(name: string): Promise<string> {
  const c = await env.bargeOk(['from', 'busybox']);
  await env.bargeOk(['run', c, '--', 'sh', '-c', `mkdir -p /data/sub && echo ${name} > /data/name && echo one > /data/a && echo two > /data/sub/b && rm /bin/ls && rm -rf /var && mkdir /var && echo x > /var/only`]);
  return commitKeeping(c, name);
}

describe('layers committed without --rm are unpacked on first use', () => {
  it('the layer is stored packed, checks clean, and a container of the image sees every change', async () => {
    const layer = await commitChanges('packed-one');
    expect(existsSync(join(env.root, 'layers', layer)), 'the layer is registered').toBe(true);
    expect(existsSync(join(env.root, 'layers', layer, 'diff')), 'no tree before first use').toBe(false);
    await expectStoreClean(env);

    const v = await env.bargeOk(['from', 'packed-one']);
    const seen = await env.bargeOk(['run', v, '--', 'sh', '-c', 'cat /data/a /data/sub/b; test -e /bin/ls && echo ls-present; ls /var']);
    expect(seen.split('\n')).toEqual(['one', 'two', 'only']);
    expect(existsSync(join(env.root, 'layers', layer, 'diff')), 'the tree after first use').toBe(true);
    await expectStoreClean(env);
  });

  it('many first mounts at once unpack the layer once and all see it', async () => {
    const layer = await commitChanges('packed-many');
    const ctrs = await Promise.all(Array.from({ length: 6 }, () => env.bargeOk(['from', 'packed-many'])));
    const outs = await Promise.all(ctrs.map((c) => env.bargeOk(['run', c, '--', 'cat', '/data/sub/b'])));
    expect(outs).toEqual(ctrs.map(() => 'two'));
    expect(readdirSync(join(env.root, 'layers', layer))).toEqual(['diff']);
    await expectStoreClean(env);
  });

  it('kill -9 during the unpack leaves the layer packed; check repairs the leftover and the next mount unpacks it', async () => {
    const c = await env.bargeOk(['from', 'busybox']);
    // ~100 MB in 400 files: an unpack long enough for the kill to land mid-way.
    await env.bargeOk(['run', c, '--', 'sh', '-c', 'mkdir /big && for i in $(seq 400); do head -c 250000 /dev/urandom > /big/f$i; done']);
    const layer = await commitKeeping(c, 'packed-big');
    const v = await env.bargeOk(['from', 'packed-big']);

    // run, not mount: rootless, mount works only inside `barge unshare`.
    await killWhileStaging(env, ['run', v, '--', 'true'], 20);
    expect(existsSync(join(env.root, 'layers', layer, 'diff')), 'no half tree published').toBe(false);
    await expectCheckFindsAndRepairs(env, /leftover temporary data/);

    expect(await env.bargeOk(['run', v, '--', 'sh', '-c', 'ls /big | wc -l'])).toBe('400');
    await expectStoreClean(env);
  });

  it('a packed layer whose blob is lost is reported by check and removed with its users', async () => {
    await commitChanges('packed-lost');
    const inspect = JSON.parse(await env.bargeOk(['inspect', '--type', 'image', 'packed-lost'])) as { OCIv1: { rootfs: { diff_ids: string[] } } };
    const diffId = inspect.OCIv1.rootfs.diff_ids.at(-1)!;
    await rm(join(env.root, 'blobs', 'sha256', diffId.slice('sha256:'.length)));
    const out = await expectCheckFindsAndRepairs(env, /has no content directory|lost its blob/);
    expect(out).toMatch(/lost its blob/);
    expect(await env.bargeOk(['images', '-q', '--filter', 'reference=packed-lost'])).toBe('');
  });
});
