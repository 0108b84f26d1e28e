// cp --archive and --overwrite, as Podman's: copies into a container are owned by its user unless
// --archive=false keeps the source's ids; a directory and a file replace each other only with
// --overwrite.
import { chown, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOTLESS, type Env } from '../helpers.ts';
import { containerSuite, expectCode } from './lib.ts';

const suite = containerSuite();
let env: Env;
beforeAll(() => {
  env = suite();
});

const owners = async (ctr: string, paths: string[]): Promise<string[]> =>
  (await env.bargeOk(['exec', ctr, 'stat', '-c', '%u:%g %F', ...paths])).split('\n');

/** Rootless, only barge's namespace may give files other owners (there, ids of the user's subordinate range). */
async function giveOwner(owner: string, ...paths: string[]): Promise<void> {
  if (ROOTLESS) await env.bargeOk(['unshare', 'chown', owner, ...paths]);
  else for (const p of paths) await chown(p, ...(owner.split(':').map(Number) as [number, number]));
}

describe('cp flags', () => {
  it('--archive (the default) gives the container\'s user; --archive=false keeps the source\'s ids', async () => {
    await env.bargeOk(['run', '-d', '--name', 'cpa', '-u', '33:33', 'busybox', 'sleep', '600']);
    const src = join(env.tmp, 'cpa');
    await mkdir(join(src, 'd'), { recursive: true });
    await writeFile(join(src, 'f'), 'hi\n');
    await writeFile(join(src, 'd', 'in'), 'x\n');
    await giveOwner('1234:1234', join(src, 'f'));
    await giveOwner('4321:4321', join(src, 'd'), join(src, 'd', 'in'));
    await env.bargeOk(['cp', join(src, 'f'), 'cpa:/tmp/f1']);
    await env.bargeOk(['cp', '-a', join(src, 'd'), 'cpa:/tmp/d1']);
    await env.bargeOk(['cp', '--archive=false', join(src, 'f'), 'cpa:/tmp/f2']);
    await env.bargeOk(['container', 'cp', '--archive=false', join(src, 'd'), 'cpa:/tmp/d2']);
    expect(await owners('cpa', ['/tmp/f1', '/tmp/d1', '/tmp/d1/in', '/tmp/f2', '/tmp/d2', '/tmp/d2/in'])).toEqual([
      '33:33 regular file', '33:33 directory', '33:33 regular file', '1234:1234 regular file', '4321:4321 directory', '4321:4321 regular file',
    ]);
  });

  it('--overwrite lets a file replace a directory and a directory a file; without it both fail', async () => {
    await env.bargeOk(['run', '-d', '--name', 'cpo', 'busybox', 'sh', '-c', 'mkdir -p /t/dir && echo old > /t/dir/x && echo old > /t/file && exec sleep 600']);
    const ctx = join(env.tmp, 'cpo');
    await mkdir(join(ctx, 'file'), { recursive: true });
    await writeFile(join(ctx, 'file', 'new'), 'new\n');
    const ctx2 = join(env.tmp, 'cpo2');
    await mkdir(ctx2, { recursive: true });
    await writeFile(join(ctx2, 'dir'), 'now a file\n');
    const dirOverFile = ['cp', `${ctx}/.`, 'cpo:/t/'];
    const r1 = await env.barge(dirOverFile);
    expectCode(r1, 125, dirOverFile);
    expect(r1.stderr).toBe('Error: copying to container: copier: put: error creating "/t/file": mkdir /t/file: file exists\n');
    const fileOverDir = ['cp', `${ctx2}/.`, 'cpo:/t/'];
    const r2 = await env.barge(fileOverDir);
    expectCode(r2, 125, fileOverDir);
    expect(r2.stderr).toBe('Error: copying to container: copier: put: error creating "/t/dir": copier: put: error creating file at "/t/dir": open /t/dir: file exists\n');
    expect(await owners('cpo', ['/t/file', '/t/dir'])).toEqual(['0:0 regular file', '0:0 directory']);

    await env.bargeOk(['cp', '--overwrite', `${ctx}/.`, 'cpo:/t/']);
    await env.bargeOk(['cp', '--overwrite', `${ctx2}/.`, 'cpo:/t/']);
    expect(await env.bargeOk(['exec', 'cpo', 'sh', '-c', 'cat /t/file/new /t/dir'])).toBe('new\nnow a file');

    // A directory never lands on a file named as the destination itself, as Podman refuses too.
    const onto = ['cp', '--overwrite', ctx, 'cpo:/t/dir'];
    const r3 = await env.barge(onto);
    expectCode(r3, 125, onto);
    expect(r3.stderr).toBe('Error: destination must be a directory when copying a directory\n');
  });
});
