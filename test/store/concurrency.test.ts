// Many short-lived barge processes share one store with no daemon: SQLite transactions and the
// locks table must serialise them without losing, duplicating or corrupting anything.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { describeFailure, makeEnv, type BargeResult, type Env } from '../helpers.ts';
import { busyboxEnv } from '../fixtures.ts';
import { containerNames, expectStoreClean, expectSuccessOrCleanError, imageNames, removeRuntimeContainers } from './store-helpers.ts';

let env: Env;
beforeEach(async () => {
  ({ env } = await busyboxEnv());
});
afterEach(async () => {
  await removeRuntimeContainers(env);
  await env.cleanup();
});

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** from → run → commit, as a shell script of barge calls would do it; returns the container name. */
async function pipeline(n: number): Promise<string> {
  const name = await env.bargeOk(['from', 'busybox']);
  await env.bargeOk(['run', name, '--', 'sh', '-c', 'echo $RANDOM > /f']);
  await env.bargeOk(['commit', name, `img-${n}`]);
  return name;
}

describe('parallel barge processes on one store', () => {
  it('20 from/run/commit pipelines all succeed with distinct names', async () => {
    const names = await Promise.all(range(20).map((n) => pipeline(n)));
    const expected = ['busybox-working-container', ...range(19).map((i) => `busybox-working-container-${i + 1}`)];
    expect([...names].sort()).toEqual([...expected].sort());
    expect(await containerNames(env)).toEqual([...expected].sort());

    const images = await imageNames(env);
    for (const n of range(20)) expect(images).toContain(`localhost/img-${n}:latest`);
    expect(images).toHaveLength(21);
    // Each commit took its own container's change, not a neighbour's.
    const files = await Promise.all(
      range(20).map(async (n) => {
        const c = await env.bargeOk(['from', '--name', `verify-${n}`, `img-${n}`]);
        return env.bargeOk(['run', c, '--', 'cat', '/f']);
      }),
    );
    for (const f of files) expect(f).toMatch(/^\d+$/);
    await expectStoreClean(env);
  });

  it('rmi -f racing from on the same images: clean outcomes, consistent store', async () => {
    await Promise.all(range(10).map(async (n) => {
      const c = await env.bargeOk(['from', '--name', `base-${n}`, 'busybox']);
      await env.bargeOk(['run', c, '--', 'sh', '-c', `echo ${n} > /f`]);
      await env.bargeOk(['commit', '--rm', c, `img-${n}`]);
    }));
    const jobs: { args: string[]; r: Promise<BargeResult> }[] = [];
    for (const n of range(10)) {
      for (const args of [['rmi', '-f', `img-${n}`], ['from', '--name', `racer-${n}`, `img-${n}`]]) {
        jobs.push({ args, r: env.barge(args) });
      }
    }
    const results = await Promise.all(jobs.map(async (j) => ({ args: j.args, r: await j.r })));
    // rmi of a single image exits 1 when it is gone already, as Podman's does.
    for (const { args, r } of results) expectSuccessOrCleanError(args, r, [1, 125]);

    const images = await imageNames(env);
    const ctrs = await containerNames(env);
    for (const n of range(10)) {
      const racer = ctrs.includes(`racer-${n}`);
      // A working container may only survive on an image that survived.
      if (racer) expect(images, `racer-${n} outlived img-${n}`).toContain(`localhost/img-${n}:latest`);
      if (racer) expect(await env.bargeOk(['run', `racer-${n}`, '--', 'cat', '/f'])).toBe(String(n));
    }
    await expectStoreClean(env);
  });

  it('rm racing rm, run and commit of the same containers', async () => {
    const ctrs = await Promise.all(range(6).map((n) => env.bargeOk(['from', '--name', `c-${n}`, 'busybox'])));
    const jobs: { args: string[]; r: Promise<BargeResult> }[] = [];
    for (const [n, c] of ctrs.entries()) {
      const other = [['rm', c], ['run', c, '--', 'sh', '-c', 'echo x > /g'], ['commit', c, `out-${n}`]][n % 3]!;
      for (const args of [['rm', c], other]) jobs.push({ args, r: env.barge(args) });
    }
    const results = await Promise.all(jobs.map(async (j) => ({ args: j.args, r: await j.r })));
    // An rm that finds its container already gone answers as Podman's does: 1, "no such container".
    for (const { args, r } of results) expectSuccessOrCleanError(args, r, args[0] === 'rm' ? [1, 125] : [125]);
    expect(await containerNames(env)).toEqual([]);
    // Whichever of rm and commit went first, a commit that reported success left a real image.
    for (const { args, r } of results) {
      if (args[0] === 'commit' && r.code === 0) expect(await imageNames(env)).toContain(`localhost/${args[2]}:latest`);
    }
    await expectStoreClean(env);
  });

  it('two commits of one container at once both produce complete images', async () => {
    const c = await env.bargeOk(['from', 'busybox']);
    await env.bargeOk(['run', c, '--', 'sh', '-c', 'echo twice > /f']);
    const [a, b] = await Promise.all([env.barge(['commit', c, 'twin-a']), env.barge(['commit', c, 'twin-b'])]);
    expect(a.code, describeFailure(['commit', c, 'twin-a'], a)).toBe(0);
    expect(b.code, describeFailure(['commit', c, 'twin-b'], b)).toBe(0);
    for (const img of ['twin-a', 'twin-b']) {
      const v = await env.bargeOk(['from', img]);
      expect(await env.bargeOk(['run', v, '--', 'cat', '/f'])).toBe('twice');
    }
    await expectStoreClean(env);
  });

  it('two from --name with the same name: exactly one wins', async () => {
    const args = ['from', '--name', 'same', 'busybox'];
    const results = await Promise.all([env.barge(args), env.barge(args)]);
    const wins = results.filter((r) => r.code === 0);
    const losses = results.filter((r) => r.code !== 0);
    expect(wins, results.map((r) => describeFailure(args, r)).join('\n')).toHaveLength(1);
    expect(wins[0]!.stdout.trim()).toBe('same');
    expectSuccessOrCleanError(args, losses[0]!);
    expect(losses[0]!.stderr).toMatch(/already in use/);
    expect(await containerNames(env)).toEqual(['same']);
    // The loser's half-created container directory must not be left behind.
    await expectStoreClean(env);
  });

  it('commits racing rmi of unrelated images keep every new image whole', async () => {
    // rmi collects garbage; a layer another process has just registered but not yet tied to
    // its image must not be collected from under it.
    await Promise.all(range(8).map(async (n) => {
      const c = await env.bargeOk(['from', '--name', `victim-src-${n}`, 'busybox']);
      await env.bargeOk(['run', c, '--', 'sh', '-c', `echo ${n} > /v`]);
      await env.bargeOk(['commit', '--rm', c, `victim-${n}`]);
    }));
    const makers = await Promise.all(range(8).map(async (n) => {
      const c = await env.bargeOk(['from', '--name', `maker-${n}`, 'busybox']);
      await env.bargeOk(['run', c, '--', 'sh', '-c', `echo ${n} > /m`]);
      return c;
    }));
    const jobs: { args: string[]; r: Promise<BargeResult> }[] = [];
    for (const n of range(8)) {
      jobs.push({ args: ['commit', makers[n]!, `made-${n}`], r: env.barge(['commit', makers[n]!, `made-${n}`]) });
      jobs.push({ args: ['rmi', `victim-${n}`], r: env.barge(['rmi', `victim-${n}`]) });
    }
    const results = await Promise.all(jobs.map(async (j) => ({ args: j.args, r: await j.r })));
    for (const { args, r } of results) expect(r.code, describeFailure(args, r)).toBe(0);
    for (const n of range(8)) {
      const v = await env.bargeOk(['from', `made-${n}`]);
      expect(await env.bargeOk(['run', v, '--', 'cat', '/m'])).toBe(String(n));
    }
    await expectStoreClean(env);
  });

  it('system check run during concurrent work reports no false problems', async () => {
    // check names live writers' staging by pid; nothing a live command is in the middle of
    // may be reported (and so offered to --repair for deletion).
    const work = Promise.all(range(8).map((n) => pipeline(n)));
    const checks: BargeResult[] = [];
    let finished = false;
    void work.finally(() => {
      finished = true;
    });
    while (!finished) checks.push(await env.barge(['system', 'check']));
    await work;
    for (const r of checks) {
      expect(r.code, describeFailure(['system', 'check'], r)).toBe(0);
    }
    await expectStoreClean(env);
  });

  it('20 processes opening a brand-new store at once', async () => {
    // The first opener creates the store's files while the others read them; a few rounds
    // because the window is narrow.
    for (const round of range(3)) {
      const fresh = await makeEnv();
      try {
        const results = await Promise.all(range(20).map(() => fresh.barge(['images', '-q'])));
        for (const r of results) expect(r.code, `round ${round}: ${describeFailure(['images', '-q'], r)}`).toBe(0);
        await expectStoreClean(fresh);
      } finally {
        await fresh.cleanup();
      }
    }
  });
});
