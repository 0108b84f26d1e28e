// ps --size and --external on real containers: the container's writes and its image's size, as
// Podman counts them, and working containers in the storage state.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Env } from '../helpers.ts';
import { containerSuite } from './lib.ts';

const suite = containerSuite();
let env: Env;
beforeAll(() => {
  env = suite();
});

describe('ps --size and --external', () => {
  it('--size shows the container\'s writes and its image, as Podman counts them', async () => {
    await env.bargeOk(['run', '-d', '--name', 'sz1', 'busybox', 'sleep', '600']);
    await env.bargeOk(['exec', 'sz1', 'sh', '-c', 'head -c 12345 /dev/zero > /tmp/f']);
    const out = await env.bargeOk(['ps', '--size', '--filter', 'name=^sz1$']);
    expect(out.split('\n')[0]).toMatch(/ NAMES +SIZE$/);
    // The busybox image's files add up to about 2 MB (Podman shows Debian 12's as 1.99MB).
    expect(out.split('\n')[1]).toMatch(/ sz1 +12\.3kB \(virtual [12]\.\d\dMB\)$/);
    const json = JSON.parse(await env.bargeOk(['ps', '-s', '--format', 'json', '--filter', 'name=^sz1$'])) as { Size: { rootFsSize: number; rwSize: number } }[];
    expect(Object.keys(json[0]!.Size)).toEqual(['rootFsSize', 'rwSize']);
    expect(json[0]!.Size.rwSize).toBe(12345);
    expect(json[0]!.Size.rootFsSize).toBeGreaterThan(1e6);
    expect(await env.bargeOk(['ps', '--filter', 'name=^sz1$', '--format', 'json'])).not.toContain('"Size"');
  });

  it('--external lists working containers in the storage state', async () => {
    const id = await env.bargeOk(['from', '--name', 'ext-w', 'busybox']);
    expect(id).toBe('ext-w');
    const table = await env.bargeOk(['ps', '--external']);
    expect(table).toMatch(/^[0-9a-f]{12} {16,}buildah +.+ago +Storage +ext-w$/m);
    expect(await env.bargeOk(['ps'])).not.toContain('ext-w');
    const json = JSON.parse(await env.bargeOk(['ps', '--external', '--format', 'json'])) as Record<string, unknown>[];
    expect(json.find((c) => (c.Names as string[])[0] === 'ext-w')).toMatchObject({ State: 'storage', Status: 'Storage', Image: '', Command: ['buildah'] });
    await env.bargeOk(['rm', 'ext-w']);
  });
});
