// Buildah's copy/add --contextdir with the context's ignore file or --ignorefile, and --add-history
// (also through $BUILDAH_HISTORY): the history entries the committed image gets.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Env } from '../helpers.ts';
import { busyboxEnv } from '../fixtures.ts';
import { expectError, from, sh } from './lib.ts';

let env: Env;
let ctx: string;
beforeAll(async () => {
  env = (await busyboxEnv()).env;
  ctx = join(env.tmp, 'ctx');
  await mkdir(join(ctx, 'sub'), { recursive: true });
  await writeFile(join(ctx, 'a'), 'a\n');
  await writeFile(join(ctx, 'b.log'), 'b\n');
  await writeFile(join(ctx, 'sub', 'c.log'), 'c\n');
  await writeFile(join(ctx, '.containerignore'), 'b.log\n');
  await writeFile(join(env.tmp, 'ign'), '*.log\n**/*.log\n');
});
afterAll(async () => {
  await env?.cleanup();
});

const files = (ctr: string, dir: string): Promise<string> => sh(env, ctr, `cd ${dir} && find . | sort`);

describe('copy --contextdir / --ignorefile', () => {
  it('leaves out what the context\'s .containerignore or --ignorefile names, as Buildah does', async () => {
    const ctr = await from(env);
    // Sources named by host paths in the context (Buildah's way) or relative to it.
    await env.bargeOk(['copy', '--contextdir', ctx, ctr, ctx, '/c1']);
    await env.bargeOk(['copy', '--contextdir', ctx, '--ignorefile', join(env.tmp, 'ign'), ctr, '.', '/c2']);
    expect(await files(ctr, '/c1')).toBe(['.', './.containerignore', './a', './sub', './sub/c.log'].join('\n'));
    expect(await files(ctr, '/c2')).toBe(['.', './.containerignore', './a', './sub'].join('\n'));
    // Without a context, nothing is ignored.
    await env.bargeOk(['copy', ctr, ctx, '/c3']);
    expect(await files(ctr, '/c3')).toContain('./b.log');

    const only = await expectError(env, ['copy', '--contextdir', ctx, '--ignorefile', join(env.tmp, 'ign'), ctr, join(ctx, 'b.log'), '/c4']);
    expect(only).toContain(`no items matching glob "${join(ctx, 'b.log')}" copied (1 filtered out using ${join(env.tmp, 'ign')}): no such file or directory`);
    const noCtx = await expectError(env, ['copy', '--ignorefile', join(env.tmp, 'ign'), ctr, join(ctx, 'a'), '/c5']);
    expect(noCtx).toBe('Error: --ignorefile option requires that you specify a context dir using --contextdir\n');
  });
});

describe('copy/add --add-history', () => {
  it('adds Buildah\'s empty_layer entries before the commit\'s own', async () => {
    const ctr = await from(env);
    await env.bargeOk(['copy', '--add-history', ctr, join(ctx, 'a'), '/x']);
    await env.bargeOk(['add', '--add-history', ctr, join(ctx, 'a'), join(ctx, 'b.log'), '/m/']);
    await env.bargeOk(['copy', ctr, join(ctx, 'sub'), '/plain']);
    await env.bargeOk(['copy', '--add-history=false', ctr, join(ctx, 'a'), '/plain2']);
    await env.bargeOk(['copy', ctr, join(ctx, 'sub'), '/d'], { env: { BUILDAH_HISTORY: 'true' } });
    await env.bargeOk(['commit', '-q', ctr, 'hist']);
    const history = JSON.parse(await env.bargeOk(['inspect', '--type', 'image', '--format', '{{json .OCIv1.History}}', 'hist'])) as Record<string, unknown>[];
    const added = history.slice(-4);
    expect(added.map((h) => String(h.created_by).replace(/[0-9a-f]{64}$/, 'D'))).toEqual([
      '/bin/sh -c #(nop) COPY file:D', '/bin/sh -c #(nop) ADD multi:D', '/bin/sh -c #(nop) COPY dir:D', '/bin/sh',
    ]);
    expect(added.slice(0, 3).every((h) => h.empty_layer === true)).toBe(true);
    expect(added[3]!.empty_layer).toBeUndefined();

    // The digest follows the content: the same file gives the same entry, another file another.
    const again = await from(env);
    await env.bargeOk(['copy', '--add-history', again, join(ctx, 'a'), '/y']);
    await env.bargeOk(['copy', '--add-history', again, join(ctx, 'b.log'), '/z']);
    await env.bargeOk(['commit', '-q', again, 'hist2']);
    const h2 = JSON.parse(await env.bargeOk(['inspect', '--type', 'image', '--format', '{{json .OCIv1.History}}', 'hist2'])) as Record<string, unknown>[];
    expect(h2.at(-3)!.created_by).toBe(added[0]!.created_by);
    expect(h2.at(-2)!.created_by).not.toBe(added[0]!.created_by);
  });
});
