// kill -9 at the worst moment: while a command is writing into the store. The half-written
// object must stay invisible, `system check` must find what is left and --repair remove it,
// and the same command must then succeed.
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeFailure, makeEnv, type Env } from '../helpers.ts';
import { importBusybox } from '../fixtures.ts';
import {
  expectCheckFindsAndRepairs,
  expectStoreClean,
  imageNames,
  killGroup,
  killWhileStaging,
  makeRandomRootfsTar,
  removeRuntimeContainers,
  spawnBarge,
  waitFor,
} from './store-helpers.ts';

const LEFTOVER = /leftover temporary data|not registered/;

let env: Env;
let bigTar = '';
beforeAll(async () => {
  env = await makeEnv();
  bigTar = join(env.tmp, 'big.tar');
  // ~200 MB of incompressible files: long enough to import that a kill lands mid-way.
  await makeRandomRootfsTar(bigTar, env.tmp, 1900, 100 * 1024);
});
afterAll(async () => {
  if (env) await removeRuntimeContainers(env);
  await env?.cleanup();
});

describe('kill -9 while writing to the store', () => {
  it('import: no half image, check finds the leftover, repair, import again', async () => {
    await killWhileStaging(env, ['import', bigTar, 'big']);
    expect(await imageNames(env)).not.toContain('localhost/big:latest');
    await expectCheckFindsAndRepairs(env, LEFTOVER);
    expect(await readdir(join(env.root, 'tmp'))).toEqual([]);

    await env.bargeOk(['import', '-q', bigTar, 'big']);
    expect(await imageNames(env)).toContain('localhost/big:latest');
    await expectStoreClean(env);
  });

  it('load -i: no half image, check finds the leftover, repair, load again', async () => {
    const archive = join(env.tmp, 'big-oci.tar');
    await env.bargeOk(['save', '-q', '--format', 'oci-archive', '-o', archive, 'big']);
    await env.bargeOk(['rmi', 'big']);
    await expectStoreClean(env);

    await killWhileStaging(env, ['load', '-q', '-i', archive]);
    expect(await imageNames(env)).toEqual([]);
    await expectCheckFindsAndRepairs(env, LEFTOVER);

    const out = await env.bargeOk(['load', '-q', '-i', archive]);
    expect(out).toContain('Loaded image');
    expect(await imageNames(env)).toContain('localhost/big:latest');
    await expectStoreClean(env);
  });

  it('commit: no half image, the container survives intact, commit again', async () => {
    await importBusybox(env);
    const c = await env.bargeOk(['from', '--name', 'heavy', 'busybox']);
    // ~100 MB of changes in the container's upper layer.
    await env.bargeOk(['run', c, '--', 'sh', '-c', 'mkdir /data && for i in 1 2 3 4 5; do head -c 20000000 /dev/urandom > /data/f$i; done']);
    const before = await imageNames(env);

    // Local layers are stored uncompressed, so a commit is fast: kill it as soon as it stages.
    await killWhileStaging(env, ['commit', '-q', c, 'heavy-img'], 20);
    expect(await imageNames(env)).toEqual(before);
    await expectCheckFindsAndRepairs(env, LEFTOVER);

    await env.bargeOk(['commit', '-q', c, 'heavy-img']);
    const v = await env.bargeOk(['from', 'heavy-img']);
    expect(await env.bargeOk(['run', v, '--', 'sh', '-c', 'ls /data | wc -l'])).toBe('5');
    await env.bargeOk(['rm', v, c]);
    await expectStoreClean(env);
  });

  it('copy containers-storage → oci: the store is untouched by a killed export', async () => {
    const dir = join(env.tmp, 'oci-big');
    const p = spawnBarge(env, ['copy', '-q', 'containers-storage:big', `oci:${dir}`]);
    try {
      // The export is quick now (layers are stored uncompressed): kill it the moment it starts writing.
      await waitFor('the OCI layout to appear', () => existsSync(dir), p);
      expect(p.child.exitCode, 'the copy finished before it could be killed').toBeNull();
      process.kill(p.pid, 'SIGKILL');
      expect(await p.exited, 'the copy was not killed mid-way').toBe(137);
    } finally {
      killGroup(p.pid);
    }
    await expectStoreClean(env);
    // As with skopeo, what a killed copy left in the directory must not block the next copy.
    await env.bargeOk(['copy', '-q', 'containers-storage:big', `oci:${dir}`]);
    expect(existsSync(join(dir, 'index.json'))).toBe(true);
  });

  it('copy oci → containers-storage: no half image, check finds the leftover, copy again', async () => {
    const dir = join(env.tmp, 'oci-big-src');
    await env.bargeOk(['copy', '-q', 'containers-storage:big', `oci:${dir}`]);
    // Otherwise the store already has every blob and the copy has nothing to stage.
    await env.bargeOk(['rmi', 'big']);
    await killWhileStaging(env, ['copy', '-q', `oci:${dir}`, 'containers-storage:big2']);
    expect(await imageNames(env)).not.toContain('localhost/big2:latest');
    await expectCheckFindsAndRepairs(env, LEFTOVER);

    await env.bargeOk(['copy', '-q', `oci:${dir}`, 'containers-storage:big2']);
    expect(await imageNames(env)).toContain('localhost/big2:latest');
    await expectStoreClean(env);
  });

  it('a container lock held by a killed barge is taken over, not waited for', async () => {
    const c = await env.bargeOk(['from', '--name', 'sleeper', 'busybox']);
    const p = spawnBarge(env, ['run', c, '--', 'sleep', '30']);
    const stateRoot = join(env.runroot, 'runtime');
    try {
      // The runtime's state appears once barge holds the lock and has started the container.
      await waitFor('the container to start', async () => existsSync(stateRoot) && (await readdir(stateRoot)).length > 0, p);
      // Only barge dies; the runtime and the container it started live on.
      process.kill(p.pid, 'SIGKILL');
      expect(await p.exited).toBe(137);

      const started = Date.now();
      const args = ['run', c, '--', 'echo', 'took over'];
      const r = await env.barge(args, { timeoutMs: 20_000 });
      expect(r.code, describeFailure(args, r)).toBe(0);
      expect(r.stdout.trim()).toBe('took over');
      // Far below the lock's 120 s wait and the 30 s sleep: the dead holder was recognised.
      expect(Date.now() - started).toBeLessThan(10_000);

      for (const more of [['config', '--label', 'after=kill', c], ['commit', '-q', c, 'after-kill']]) {
        const m = await env.barge(more, { timeoutMs: 20_000 });
        expect(m.code, describeFailure(more, m)).toBe(0);
      }
    } finally {
      killGroup(p.pid);
      await removeRuntimeContainers(env);
    }
    await env.bargeOk(['rm', c]);
    await expectStoreClean(env);
  });
});
