// The launcher's per-command V8 code cache (src/cli/launcher.ts): written by a command's first
// runs, then only read; never taken from a directory someone else could write; a damaged cache
// costs speed, never the command.
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeFailure, makeEnv, type Env } from './helpers.ts';
import { importBusybox } from './fixtures.ts';

let env: Env;
beforeAll(async () => {
  env = await makeEnv();
});
afterAll(async () => {
  await env?.cleanup();
});

/** A cache home of the test's own, so the runs of other tests do not touch it. */
function cacheHome(name: string): { home: string; dir: string; run(args: string[]): Promise<void> } {
  const home = join(env.tmp, name);
  mkdirSync(home, { recursive: true });
  const dir = join(home, 'barge', 'code');
  return {
    home,
    dir,
    run: async (args) => {
      const r = await env.barge(args, { env: { XDG_CACHE_HOME: home } });
      expect(r.code, describeFailure(args, r)).toBe(0);
    },
  };
}

const files = (dir: string): string[] => readdirSync(dir).filter((f) => f.endsWith('.bin')).sort();
/** The number of runs a cache file has learnt from (the header's second word). */
const runsOf = (file: string): number => readFileSync(file).readUInt32LE(4);

describe('the launcher\'s code cache', () => {
  it('each command gets its own cache, learnt from its first three runs and then only read', async () => {
    const c = cacheHome('learn');
    await c.run(['images']);
    await c.run(['ps', '-a']);
    const [images, ps] = files(c.dir);
    expect([images, ps].map((f) => f!.split('.').slice(1).join('.'))).toEqual(['images.bin', 'ps.bin']);
    expect(images!.slice(0, 9), 'named after the install, then the build').toBe(ps!.slice(0, 9));
    const file = join(c.dir, images!);
    expect(runsOf(file)).toBe(1);
    await c.run(['images']);
    await c.run(['images']);
    expect(runsOf(file)).toBe(3);
    const learnt = statSync(file).mtimeMs;
    await c.run(['images', '--format', 'json']);
    expect(statSync(file).mtimeMs, 'a learnt cache is not written again').toBe(learnt);
    expect((statSync(c.dir).mode & 0o777).toString(8)).toBe('700');
    expect((statSync(file).mode & 0o777).toString(8)).toBe('600');
  });

  it('a damaged or truncated cache is ignored and made again', async () => {
    const c = cacheHome('damaged');
    for (let i = 0; i < 3; i++) await c.run(['images']);
    const file = join(c.dir, files(c.dir)[0]!);
    const good = readFileSync(file);
    const flipped = Buffer.from(good);
    flipped[flipped.length >> 1]! ^= 0xff;
    writeFileSync(file, flipped);
    const out = await env.bargeOk(['images', '--format', '{{.ID}}'], { env: { XDG_CACHE_HOME: c.home } });
    expect(out).toBe('');
    expect(runsOf(file), 'the damaged cache was replaced by a fresh one').toBe(1);
    expect(readFileSync(file).equals(flipped)).toBe(false);
    writeFileSync(file, good.subarray(0, 1000));
    await c.run(['images']);
    expect(runsOf(file)).toBe(1);
  });

  it('a cache directory others can write to is neither read nor written', async () => {
    const c = cacheHome('shared');
    await c.run(['images']);
    const file = join(c.dir, files(c.dir)[0]!);
    chmodSync(c.dir, 0o777);
    const before = readFileSync(file);
    await c.run(['images']);
    await c.run(['ps']);
    expect(readFileSync(file).equals(before)).toBe(true);
    expect(files(c.dir)).toHaveLength(1);
  });

  it("a new cache removes its own install's stale caches and unnamed leftovers, never another install's", async () => {
    const c = cacheHome('installs');
    await c.run(['images']);
    const [mine] = files(c.dir);
    const place = mine!.slice(0, 8);
    const other = place === '00000000' ? '11111111' : '00000000';
    const theirs = `${other}-1-2-3.images.bin`;
    const stale = `${place}-1-2-3.images.bin`;
    const unnamed = '1-2-3.images.bin';
    for (const f of [theirs, stale, unnamed]) writeFileSync(join(c.dir, f), 'x');
    await c.run(['ps']);
    expect(files(c.dir)).toEqual([theirs, mine!, mine!.replace('.images.', '.ps.')].sort());
  });
});

describe('node\'s own options', () => {
  it('are not taken from barge\'s arguments: an --env-file there is barge\'s (node would read it and exit 9)', async () => {
    const r = await env.barge(['images', '--env-file', join(env.tmp, 'no-such-file')]);
    expect(r.code, describeFailure(['images', '--env-file'], r)).toBe(125);
    expect(r.stderr).toBe("Error: unknown option '--env-file'\n");
    await importBusybox(env);
    const run = await env.barge(['run', '--rm', '--env-file', join(env.tmp, 'no-such-file'), 'busybox', 'true']);
    expect(run.code).toBe(125);
    expect(run.stderr).toContain(`Error: parsing env file "${join(env.tmp, 'no-such-file')}": open ${join(env.tmp, 'no-such-file')}: no such file or directory`);
  });
});
