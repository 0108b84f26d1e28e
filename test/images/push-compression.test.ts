// push --compression-level: the pushed layers are compressed again at the level asked for (gzip
// 0-9, zstd), and a level gzip cannot take fails with Buildah's error before anything is written.
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Env } from '../helpers.ts';
import { busyboxEnv } from '../fixtures.ts';

let env: Env;
beforeAll(async () => {
  env = (await busyboxEnv()).env;
});
afterAll(async () => {
  await env?.cleanup();
});

/** Pushes busybox to an oci: layout with the flags; returns its single layer's media type and size. */
async function pushedLayer(name: string, flags: string[]): Promise<{ mediaType: string; size: number }> {
  const dir = join(env.tmp, name);
  await env.bargeOk(['push', '-q', ...flags, 'busybox', `oci:${dir}`]);
  const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const blob = (d: string): string => join(dir, 'blobs', 'sha256', d.replace(/^sha256:/, ''));
  const manifest = JSON.parse(await readFile(blob(index.manifests[0]!.digest), 'utf8')) as { layers: { mediaType: string; digest: string; size: number }[] };
  const layer = manifest.layers[0]!;
  expect((await stat(blob(layer.digest))).size).toBe(layer.size);
  return { mediaType: layer.mediaType, size: layer.size };
}

describe('push --compression-level', () => {
  it('compresses gzip and zstd layers at the level given', async () => {
    const gz1 = await pushedLayer('gz1', ['--compression-level', '1']);
    const gz9 = await pushedLayer('gz9', ['--compression-level', '9']);
    expect(gz1.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+gzip');
    expect(gz9.size).toBeLessThan(gz1.size);
    const zs1 = await pushedLayer('zs1', ['--compression-format', 'zstd', '--compression-level', '1']);
    const zs19 = await pushedLayer('zs19', ['--compression-format', 'zstd', '--compression-level', '19']);
    expect(zs1.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+zstd');
    expect(zs19.size).toBeLessThan(zs1.size);
    // What was pushed reads back as the same image.
    const back = await env.bargeOk(['pull', '-q', `oci:${join(env.tmp, 'zs19')}`]);
    expect(back).toMatch(/^[0-9a-f]{64}$/);
  });

  it('refuses a gzip level out of 0-9 with exit 125, writing nothing', async () => {
    const dest = join(env.tmp, 'bad');
    const r = await env.barge(['push', '--compression-level', '15', 'busybox', `oci:${dest}`]);
    expect(r.code).toBe(125);
    expect(r.stderr).toBe('Error: gzip: invalid compression level: 15\n');
    expect(existsSync(dest)).toBe(false);
  });
});
