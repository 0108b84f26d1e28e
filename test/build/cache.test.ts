// The layer cache (--layers): hits, and misses on changed content, ARG and parent; unchanged
// context files are not re-read.
import { utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Env } from '../helpers.ts';
import { busyboxEnv } from '../fixtures.ts';
import { buildOk, context, imageJSON, noContainers, readFiles } from './lib.ts';

let env: Env;
beforeAll(async () => {
  ({ env } = await busyboxEnv());
});
afterAll(async () => {
  await env?.cleanup();
});

const STATS = { BARGE_BUILD_STATS: '1' };
const cacheHits = (out: string): number => (out.match(/^--> Using cache [0-9a-f]{64}$/gm) ?? []).length;
const stats = (err: string): { read: number; memo: number } => {
  const m = /build stats: files hashed (\d+), unchanged \(not re-read\) (\d+)/.exec(err);
  if (!m) throw new Error(`no build stats in:\n${err}`);
  return { read: Number(m[1]), memo: Number(m[2]) };
};

describe('--layers cache', () => {
  let ctx: string;
  beforeAll(async () => {
    ctx = await context(env, {
      Containerfile: [
        'FROM busybox',
        'ARG V=1',
        'ENV E=e',
        'RUN echo "run $V" > /run-out',
        'COPY app/ /app/',
        'RUN cat /app/* > /joined',
      ].join('\n'),
      'app/one.txt': 'one\n',
      'app/two.txt': 'two\n',
    });
  });

  it('a second build hits every step and gives the same image', async () => {
    const first = await buildOk(env, ctx, ['--layers', '-t', 'c1'], STATS);
    expect(cacheHits(first.stdout)).toBe(0);
    expect(first.stdout).toMatch(/STEP 2\/6: ARG V=1\n--> [0-9a-f]{11}\n/);
    expect(stats(first.stderr)).toEqual({ read: 2, memo: 0 });
    const second = await buildOk(env, ctx, ['--layers', '-t', 'c1'], STATS);
    expect(cacheHits(second.stdout)).toBe(5);
    expect(second.id).toBe(first.id);
    expect(second.stdout).not.toContain('run 1');
    // Unchanged files are recognised by their stat fingerprint, not read again.
    expect(stats(second.stderr)).toEqual({ read: 0, memo: 2 });
    // Config-only steps have no layer of their own.
    const img = await imageJSON(env, 'c1');
    expect(img.OCIv1.history.filter((h) => !h.empty_layer)).toHaveLength(4);
    expect(img.OCIv1.rootfs.diff_ids).toHaveLength(4);
    await noContainers(env);
  });

  it('--no-cache rebuilds every step', async () => {
    const r = await buildOk(env, ctx, ['--layers', '--no-cache']);
    expect(cacheHits(r.stdout)).toBe(0);
    expect(r.stdout).toContain('STEP 4/6: RUN echo "run $V" > /run-out\n');
  });

  it('changed file content misses from the COPY on; a touched but identical file still hits', async () => {
    await buildOk(env, ctx, ['--layers']);
    const later = new Date(Date.now() + 5000);
    await utimes(join(ctx, 'app', 'one.txt'), later, later);
    const touched = await buildOk(env, ctx, ['--layers'], STATS);
    expect(cacheHits(touched.stdout)).toBe(5);
    expect(stats(touched.stderr)).toEqual({ read: 1, memo: 1 });

    await writeFile(join(ctx, 'app', 'two.txt'), 'TWO\n');
    const changed = await buildOk(env, ctx, ['--layers', '-t', 'c2']);
    expect(cacheHits(changed.stdout)).toBe(3);
    expect((await readFiles(env, 'c2', ['joined']))[0]).toBe('one\nTWO\n');
    await writeFile(join(ctx, 'app', 'two.txt'), 'two\n');
  });

  it('a changed ARG misses from the first RUN that sees it', async () => {
    const r = await buildOk(env, ctx, ['--layers', '--build-arg', 'V=2', '-t', 'c3']);
    // The ARG and ENV steps give the same config whatever V is; the RUN that sees V cannot be reused.
    expect(cacheHits(r.stdout)).toBe(2);
    expect(r.stdout).toMatch(/STEP 4\/6: RUN echo "run \$V" > \/run-out\n-->/);
    expect((await readFiles(env, 'c3', ['run-out']))[0]).toBe('run 2\n');
    const again = await buildOk(env, ctx, ['--layers', '--build-arg', 'V=2']);
    expect(cacheHits(again.stdout)).toBe(5);
  });

  it('a changed parent image misses every step', async () => {
    const base = await context(env, { Containerfile: 'FROM busybox\nRUN echo v1 > /base\n' });
    await buildOk(env, base, ['-t', 'parent']);
    const child = await context(env, { Containerfile: 'FROM parent\nRUN cat /base > /seen\nLABEL x=y\n' });
    await buildOk(env, child, ['--layers']);
    expect(cacheHits((await buildOk(env, child, ['--layers'])).stdout)).toBe(2);
    await writeFile(join(base, 'Containerfile'), 'FROM busybox\nRUN echo v2 > /base\n');
    await buildOk(env, base, ['-t', 'parent']);
    const r = await buildOk(env, child, ['--layers', '-t', 'child2']);
    expect(cacheHits(r.stdout)).toBe(0);
    expect((await readFiles(env, 'child2', ['seen']))[0]).toBe('v2\n');
  });

  it('a changed instruction misses from that step on', async () => {
    const c = await context(env, { Containerfile: 'FROM busybox\nRUN echo a > /a\nRUN echo b > /b\n' });
    await buildOk(env, c, ['--layers']);
    await writeFile(join(c, 'Containerfile'), 'FROM busybox\nRUN echo a > /a\nRUN echo B > /b\n');
    const r = await buildOk(env, c, ['--layers']);
    expect(cacheHits(r.stdout)).toBe(1);
  });

  it('without --layers (the default, as Buildah) nothing is cached', async () => {
    const r = await buildOk(env, ctx, []);
    expect(cacheHits(r.stdout)).toBe(0);
    expect(r.stdout).not.toMatch(/STEP 2\/6: ARG V=1\n-->/);
  });
});

describe('images after a --layers build', () => {
  it('leaves out the step images (no name, another image on their layers) unless -a, as Buildah and Podman', async () => {
    const ctx = await context(env, { Containerfile: 'FROM busybox\nRUN echo 1 > /one\nRUN echo 2 > /two\nLABEL step=last\n' });
    const { id } = await buildOk(env, ctx, ['--layers', '-q', '-t', 'stepped']);
    const shown = (await env.bargeOk(['images', '-q', '--no-trunc'])).split('\n');
    const all = (await env.bargeOk(['images', '-a', '-q', '--no-trunc'])).split('\n');
    expect(shown).toContain(`sha256:${id}`);
    expect(all.length).toBeGreaterThanOrEqual(shown.length + 2);
    for (const hidden of all.filter((i) => !shown.includes(i))) {
      expect(await env.bargeOk(['images', '-a', '--no-trunc', '--format', '{{.Repository}}', hidden.replace(/^sha256:/, '')])).toBe('<none>');
    }
  });
});
