// Podman's `image` commands: ls/list, inspect (Podman's JSON), exists, prune, and the shared verbs
// (rm, tag, untag, history, save, load, import, pull, push) under the group.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeEnv, type Env } from '../helpers.ts';
import { importBusybox } from '../fixtures.ts';

let env: Env;
let busyboxId = '';

beforeAll(async () => {
  env = await makeEnv();
  busyboxId = (await importBusybox(env)).replace(/^sha256:/, '');
});
afterAll(async () => {
  await env?.cleanup();
});

/** The keys of `podman image inspect` (Podman 4.3), in its order. */
const PODMAN_KEYS = [
  'Id', 'Digest', 'RepoTags', 'RepoDigests', 'Parent', 'Comment', 'Created', 'Config', 'Version', 'Author', 'Architecture', 'Os', 'Size',
  'VirtualSize', 'GraphDriver', 'RootFS', 'Labels', 'Annotations', 'ManifestType', 'User', 'History', 'NamesHistory',
];

describe('image group', () => {
  it('ls and list are images; rm, tag and untag work under the group', async () => {
    expect(await env.bargeOk(['image', 'ls', '-q'])).toBe(await env.bargeOk(['images', '-q']));
    expect(await env.bargeOk(['image', 'list', '--format', '{{.Repository}}'])).toBe('localhost/busybox');
    await env.bargeOk(['image', 'tag', 'busybox', 'second:v1']);
    expect(await env.bargeOk(['image', 'inspect', '--format', '{{len .RepoTags}}', 'busybox'])).toBe('2');
    await env.bargeOk(['image', 'untag', 'busybox', 'second:v1']);
    await env.bargeOk(['image', 'tag', 'busybox', 'third']);
    expect(await env.bargeOk(['image', 'rm', 'third'])).toBe('untagged: localhost/third:latest');
    expect(await env.bargeOk(['image', 'inspect', '--format', '{{json .RepoTags}}', 'busybox'])).toBe('["localhost/busybox:latest"]');
  });

  it("inspect prints Podman's JSON, takes --format, and answers [] and 125 for an unknown image", async () => {
    // A config worth seeing: commit a working container with settings.
    const ctr = await env.bargeOk(['from', 'busybox']);
    await env.bargeOk(['config', '--cmd', '["sh","-c","echo hi"]', '--env', 'A=1', '--label', 'k=v', '--author', 'Ann', '--user', '12', ctr]);
    await env.bargeOk(['commit', '-q', '--rm', ctr, 'configured']);

    const out = await env.bargeOk(['image', 'inspect', 'configured']);
    expect(out.split('\n')[1]).toBe('     {');
    const [img] = JSON.parse(out) as Record<string, unknown>[];
    expect(Object.keys(img!)).toEqual(PODMAN_KEYS);
    const manifestDigest = await env.bargeOk(['inspect', '--type', 'image', '--format', '{{.FromImageDigest}}', 'configured']);
    expect(img).toMatchObject({
      Digest: manifestDigest,
      RepoTags: ['localhost/configured:latest'],
      RepoDigests: [`localhost/configured@${manifestDigest}`],
      Config: { Cmd: ['sh', '-c', 'echo hi'], User: '12', Labels: { k: 'v' } },
      Author: 'Ann',
      User: '12',
      Labels: { k: 'v' },
      Architecture: expect.any(String),
      ManifestType: 'application/vnd.oci.image.manifest.v1+json',
      GraphDriver: { Name: expect.stringMatching(/^(overlay|vfs)$/) },
      NamesHistory: ['localhost/configured:latest'],
    });
    expect((img!['RootFS'] as { Layers: string[] }).Layers).toHaveLength(2);
    expect(await env.bargeOk(['image', 'inspect', '--format', '{{.Id}} {{.Os}}', 'busybox'])).toBe(`${busyboxId} linux`);

    const r = await env.barge(['image', 'inspect', 'busybox', 'no-such-image']);
    expect(r.code).toBe(125);
    expect(JSON.parse(r.stdout)).toHaveLength(1);
    expect(r.stderr).toContain('Error: inspecting object: no-such-image: image not known');
    const none = await env.barge(['image', 'inspect', 'no-such-image']);
    expect([none.code, none.stdout.trim()]).toEqual([125, '[]']);
    await env.bargeOk(['rmi', 'configured']);
  });

  it('exists answers 0 or 1; prune removes unnamed unused images, -a every unused one', async () => {
    expect((await env.barge(['image', 'exists', 'busybox'])).code).toBe(0);
    expect((await env.barge(['image', 'exists', 'no-such-image'])).code).toBe(1);

    // A dangling image: committed under a name that then moves to another image.
    const c1 = await env.bargeOk(['from', 'busybox']);
    await env.bargeOk(['config', '--label', 'n=1', c1]);
    const dangling = await env.bargeOk(['commit', '-q', '--rm', c1, 'moving']);
    const c2 = await env.bargeOk(['from', 'busybox']);
    await env.bargeOk(['config', '--label', 'n=2', c2]);
    await env.bargeOk(['commit', '-q', '--rm', c2, 'moving']);
    // A named image that a container uses, and one that none does.
    await env.bargeOk(['tag', 'busybox', 'spare']);
    const user = await env.bargeOk(['from', 'moving']);

    expect(await env.bargeOk(['image', 'prune'])).toBe(dangling);
    expect((await env.barge(['image', 'exists', dangling])).code).toBe(1);
    const all = (await env.bargeOk(['image', 'prune', '-a'])).split('\n');
    // busybox (with its spare name) goes; moving stays, as the container uses it.
    expect(all).toEqual([busyboxId]);
    expect((await env.barge(['image', 'exists', 'moving'])).code).toBe(0);
    await env.bargeOk(['rm', user]);
  });
});
