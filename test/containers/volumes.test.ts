// Podman's volumes, checked against Podman 4.3's behaviour: the `volume` commands, named and
// anonymous volumes of run/create (-v and --mount type=volume), copy-up from the image, their
// removal with rm -v and run --rm, and a store that `system check` finds consistent throughout.
import { mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOTLESS, type Env } from '../helpers.ts';
import { containerSuite, expectCode, until } from './lib.ts';

const suite = containerSuite();
let env: Env;
beforeAll(() => {
  env = suite();
});

const dataOf = (name: string): string => join(env.root, 'volumes', name, '_data');

/**
 * A volume's data directory: owner, group and mode, and its entries. Rootless they belong to the
 * user's subordinate ids, which only barge's namespace may read (and shows as the container does).
 */
async function volumeData(name: string): Promise<{ owner: number[]; entries: string[] }> {
  const dir = dataOf(name);
  if (!ROOTLESS) {
    const st = await stat(dir);
    return { owner: [st.uid, st.gid, st.mode & 0o7777], entries: (await readdir(dir)).sort() };
  }
  const [ids, ...entries] = (await env.bargeOk(['unshare', 'sh', '-c', 'stat -c "%u %g %a" "$1" && ls -A "$1"', 'sh', dir])).split('\n');
  const [uid, gid, mode] = (ids ?? '').split(' ');
  return { owner: [Number(uid), Number(gid), parseInt(mode ?? '', 8)], entries: entries.sort() };
}

async function volumeNames(): Promise<string[]> {
  return (await env.bargeOk(['volume', 'ls', '-q'])).split('\n').filter((l) => l !== '');
}

async function storeIsClean(): Promise<void> {
  const r = await env.barge(['system', 'check']);
  expectCode(r, 0, ['system', 'check']);
  expect(r.stdout.trim()).toBe('No problems found');
}

afterAll(async () => {
  // Every test leaves the store consistent; checked once more after all of them.
  if (env) await storeIsClean();
});

describe('volume create, ls, inspect, exists', () => {
  it('creates a named volume with labels and shows it as Podman does', async () => {
    expect(await env.bargeOk(['volume', 'create', '--label', 'team=db', '--label', 'tier', 'meta'])).toBe('meta');
    const [v] = JSON.parse(await env.bargeOk(['volume', 'inspect', 'meta'])) as Record<string, unknown>[];
    expect(Object.keys(v!)).toEqual(['Name', 'Driver', 'Mountpoint', 'CreatedAt', 'Labels', 'Scope', 'Options', 'MountCount', 'NeedsCopyUp', 'NeedsChown']);
    expect(v).toMatchObject({
      Name: 'meta', Driver: 'local', Mountpoint: dataOf('meta'), Labels: { team: 'db', tier: '' }, Scope: 'local', Options: {},
      MountCount: 0, NeedsCopyUp: true, NeedsChown: true,
    });
    expect(Date.now() - Date.parse(v!.CreatedAt as string)).toBeLessThan(60_000);
    expect((await stat(dataOf('meta'))).isDirectory()).toBe(true);
    expect(await env.bargeOk(['volume', 'inspect', '--format', '{{.Name}} {{.Driver}} {{.NeedsCopyUp}} {{.Anonymous}}', 'meta'])).toBe('meta local true false');

    const again = await env.barge(['volume', 'create', 'meta']);
    expectCode(again, 125);
    expect(again.stderr).toContain('Error: volume with name meta already exists: volume already exists');
    expect(await env.bargeOk(['volume', 'create', '--ignore', 'meta'])).toBe('meta');
    const bad = await env.barge(['volume', 'create', 'a/b']);
    expectCode(bad, 125);
    expect(bad.stderr).toContain('names must match [a-zA-Z0-9][a-zA-Z0-9_.-]*: invalid argument');

    // Without a name: a random 64-hex one.
    const anon = await env.bargeOk(['volume', 'create']);
    expect(anon).toMatch(/^[a-f0-9]{64}$/);
    expectCode(await env.barge(['volume', 'exists', anon]), 0);
    expectCode(await env.barge(['volume', 'exists', 'no-such-volume']), 1);
    await env.bargeOk(['volume', 'rm', anon]);
    expectCode(await env.barge(['volume', 'exists', anon]), 1);
  });

  it('lists by name, with -q, templates, json and filters', async () => {
    await env.bargeOk(['volume', 'create', '--label', 'team=web', 'list-b']);
    await env.bargeOk(['volume', 'create', 'list-a']);
    const table = (await env.bargeOk(['volume', 'ls', '--filter', 'name=^list-'])).split('\n');
    expect(table[0]).toMatch(/^DRIVER\s+VOLUME NAME$/);
    expect(table.slice(1).map((l) => l.split(/\s+/))).toEqual([['local', 'list-a'], ['local', 'list-b']]);
    expect(await env.bargeOk(['volume', 'ls', '--noheading', '--filter', 'name=list-a'])).toMatch(/^local\s+list-a$/);
    expect(await env.bargeOk(['volume', 'ls', '--filter', 'name=^list-', '--format', '{{.Name}}={{.Labels}}'])).toBe('list-a=map[]\nlist-b=map[team:web]');
    expect(await env.bargeOk(['volume', 'ls', '-q', '--filter', 'label=team=web'])).toBe('list-b');
    // Values of one key are alternatives; different keys must all match.
    expect(await env.bargeOk(['volume', 'ls', '-q', '--filter', 'label=team=web', '--filter', 'label=team=db'])).toBe('list-b\nmeta');
    expect(await env.bargeOk(['volume', 'ls', '-q', '--filter', 'label=team', '--filter', 'name=list'])).toBe('list-b');
    const json = JSON.parse(await env.bargeOk(['volume', 'ls', '--format', 'json', '--filter', 'name=list-b'])) as Record<string, unknown>[];
    expect(json).toHaveLength(1);
    expect(json[0]).toMatchObject({ Name: 'list-b', Mountpoint: dataOf('list-b'), Labels: { team: 'web' } });
    const bad = await env.barge(['volume', 'ls', '--filter', 'colour=red']);
    expectCode(bad, 125);
    expect(bad.stderr).toContain('"colour" is an invalid volume filter');
    await env.bargeOk(['volume', 'rm', 'list-a', 'list-b']);
  });

  it('inspects the volumes it finds and fails with 125 for the others', async () => {
    const r = await env.barge(['volume', 'inspect', 'meta', 'no-such-volume']);
    expectCode(r, 125);
    expect((JSON.parse(r.stdout) as { Name: string }[]).map((v) => v.Name)).toEqual(['meta']);
    expect(r.stderr).toContain('Error: inspecting object: no such volume no-such-volume');
    const rm = await env.barge(['volume', 'rm', 'no-such-volume']);
    expectCode(rm, 1);
    expect(rm.stderr).toContain('no volume with name "no-such-volume" found: no such volume');
  });
});

describe('volumes of run and create', () => {
  it('keeps a named volume\'s data across containers, made on first use; --mount type=volume mounts it too', async () => {
    expect(await volumeNames()).not.toContain('keep');
    await env.bargeOk(['run', '--rm', '-v', 'keep:/data', 'busybox', 'sh', '-c', 'echo one > /data/f']);
    expect(await volumeNames()).toContain('keep');
    await env.bargeOk(['run', '--rm', '--mount', 'type=volume,src=keep,dst=/other', 'busybox', 'sh', '-c', 'echo two >> /other/f']);
    expect(await env.bargeOk(['run', '--rm', '-v', 'keep:/data:ro', 'busybox', 'cat', '/data/f'])).toBe('one\ntwo');
    // :ro and ro of --mount are read-only mounts.
    const ro = await env.barge(['run', '--rm', '-v', 'keep:/data:ro', 'busybox', 'sh', '-c', 'echo x > /data/g']);
    expectCode(ro, 1);
    expect(ro.stderr).toMatch(/Read-only file system/);
    expectCode(await env.barge(['run', '--rm', '--mount', 'type=volume,source=keep,target=/data,ro', 'busybox', 'touch', '/data/g']), 1);
    // Named volumes stay after --rm.
    expect(await volumeNames()).toContain('keep');
  });

  it('lists volume mounts in the container\'s inspect as Podman does', async () => {
    await env.bargeOk(['create', '--name', 'insp', '-v', 'meta:/m:ro', '-v', '/anon', 'busybox', 'true']);
    const [c] = JSON.parse(await env.bargeOk(['inspect', 'insp'])) as { Mounts: Record<string, unknown>[]; HostConfig: { Binds: string[] } }[];
    const anon = c!.Mounts.find((m) => m.Destination === '/anon')!;
    expect(anon.Name).toMatch(/^[a-f0-9]{64}$/);
    expect(c!.Mounts).toEqual([
      { Type: 'volume', Name: 'meta', Source: dataOf('meta'), Destination: '/m', Driver: 'local', Mode: '', Options: ['nosuid', 'nodev', 'rbind'], RW: false, Propagation: 'rprivate' },
      { Type: 'volume', Name: anon.Name, Source: dataOf(anon.Name as string), Destination: '/anon', Driver: 'local', Mode: '', Options: ['nosuid', 'nodev', 'rbind'], RW: true, Propagation: 'rprivate' },
    ]);
    expect(c!.HostConfig.Binds).toEqual(['meta:/m:ro,rprivate,nosuid,nodev,rbind', `${anon.Name}:/anon:rw,rprivate,nosuid,nodev,rbind`]);
    const [v] = JSON.parse(await env.bargeOk(['volume', 'inspect', anon.Name as string])) as Record<string, unknown>[];
    expect(v).toMatchObject({ Anonymous: true, NeedsCopyUp: true });
    await env.bargeOk(['rm', '-v', 'insp']);
  });

  it('fills a new volume with the image\'s content at its path, owned as in the image; nocopy leaves it empty', async () => {
    await env.bargeOk(['from', '--name', 'vol-img-work', 'busybox']);
    await env.bargeOk(['run', 'vol-img-work', '--', 'sh', '-c', 'mkdir -p /srv/app && echo from-image > /srv/app/seed && chown -R 1000:1001 /srv/app && chmod 750 /srv/app']);
    await env.bargeOk(['commit', '-q', 'vol-img-work', 'vol-img']);
    await env.bargeOk(['rm', 'vol-img-work']);

    expect(await env.bargeOk(['run', '--rm', '-v', 'seeded:/srv/app', 'vol-img', 'sh', '-c', 'cat /srv/app/seed; echo more > /srv/app/added'])).toBe('from-image');
    expect(await volumeData('seeded')).toEqual({ owner: [1000, 1001, 0o750], entries: ['added', 'seed'] });
    expect(await env.bargeOk(['volume', 'inspect', '--format', '{{.NeedsCopyUp}} {{.NeedsChown}}', 'seeded'])).toBe('false false');
    // Only once: a later container's image does not overwrite what the volume holds.
    await env.bargeOk(['run', '--rm', '-v', 'seeded:/srv/app', 'vol-img', 'sh', '-c', 'rm /srv/app/seed']);
    expect(await env.bargeOk(['run', '--rm', '-v', 'seeded:/srv/app', 'vol-img', 'ls', '/srv/app'])).toBe('added');

    // An anonymous volume is filled the same way.
    expect(await env.bargeOk(['run', '--rm', '-v', '/srv/app', 'vol-img', 'cat', '/srv/app/seed'])).toBe('from-image');
    // nocopy: nothing copied in.
    expect(await env.bargeOk(['run', '--rm', '-v', 'empty:/srv/app:nocopy', 'vol-img', 'ls', '-A', '/srv/app'])).toBe('');
    // Nothing at that path in the image: left for a later container to fill, as Podman does.
    await env.bargeOk(['run', '--rm', '-v', 'later:/srv/app', 'busybox', 'true']);
    expect(await env.bargeOk(['volume', 'inspect', '--format', '{{.NeedsCopyUp}}', 'later'])).toBe('true');
    expect(await env.bargeOk(['run', '--rm', '-v', 'later:/srv/app', 'vol-img', 'cat', '/srv/app/seed'])).toBe('from-image');
    await env.bargeOk(['volume', 'rm', 'seeded', 'empty', 'later']);
    await storeIsClean();
  });

  it('removes anonymous volumes with rm -v and run --rm (also under conmon), and keeps named ones', async () => {
    const before = await volumeNames();
    const newOnes = async (): Promise<string[]> => (await volumeNames()).filter((n) => !before.includes(n));

    await env.bargeOk(['create', '--name', 'anon-kept', '-v', '/a', 'busybox', 'true']);
    const [kept] = await newOnes();
    expect(kept).toMatch(/^[a-f0-9]{64}$/);
    // Without -v the anonymous volume stays (dangling), as with Podman.
    await env.bargeOk(['rm', 'anon-kept']);
    expect(await newOnes()).toEqual([kept]);
    expect(await env.bargeOk(['volume', 'ls', '-q', '--filter', 'dangling=true'])).toContain(kept!);
    await env.bargeOk(['volume', 'rm', kept!]);

    await env.bargeOk(['create', '--name', 'anon-rm', '-v', '/a', '--mount', 'type=volume,dst=/b', '-v', 'named-stays:/n', 'busybox', 'true']);
    expect(await newOnes()).toHaveLength(3);
    await env.bargeOk(['rm', '-v', 'anon-rm']);
    expect(await newOnes()).toEqual(['named-stays']);

    await env.bargeOk(['run', '--rm', '-v', '/a', '-v', 'named-stays:/n', 'busybox', 'sh', '-c', 'touch /a/x /n/x']);
    expect(await newOnes()).toEqual(['named-stays']);
    // Detached, conmon's exit command removes the container and its anonymous volume.
    await env.bargeOk(['run', '-d', '--rm', '-v', '/a', 'busybox', 'true']);
    await until('the --rm container and its anonymous volume to go', async () => (await newOnes()).length === 1);
    expect(await newOnes()).toEqual(['named-stays']);
    await env.bargeOk(['volume', 'rm', 'named-stays']);
  });
});

describe('volume rm and prune', () => {
  it('refuses a volume in use (2); -f removes its containers first, running ones too', async () => {
    await env.bargeOk(['create', '--name', 'user-1', '-v', 'busy:/b', 'busybox', 'true']);
    const id2 = await env.bargeOk(['run', '-d', '--name', 'user-2', '-v', 'busy:/b', 'busybox', 'sleep', '1000']);
    const r = await env.barge(['volume', 'rm', 'busy']);
    expectCode(r, 2);
    expect(r.stderr).toMatch(/^Error: volume busy is being used by the following container\(s\): [a-f0-9]{64}, [a-f0-9]{64}: volume is being used$/m);
    expect(r.stderr).toContain(id2);
    expectCode(await env.barge(['volume', 'exists', 'busy']), 0);
    expect(await env.bargeOk(['volume', 'rm', '-f', 'busy'])).toBe('busy');
    expectCode(await env.barge(['volume', 'exists', 'busy']), 1);
    expectCode(await env.barge(['container', 'exists', 'user-1']), 1);
    expectCode(await env.barge(['container', 'exists', 'user-2']), 1);
  });

  it('prune removes exactly the volumes no container uses', async () => {
    await env.bargeOk(['volume', 'create', 'unused-1']);
    await env.bargeOk(['volume', 'create', 'unused-2']);
    await env.bargeOk(['create', '--name', 'holder', '-v', 'used:/u', 'busybox', 'true']);
    expect(await env.bargeOk(['volume', 'ls', '-q', '--filter', 'dangling=false'])).toBe('used');
    const pruned = (await env.bargeOk(['volume', 'prune', '-f'])).split('\n');
    expect(pruned).toEqual(expect.arrayContaining(['unused-1', 'unused-2', 'meta']));
    expect(pruned).not.toContain('used');
    expect(await volumeNames()).toEqual(['used']);
    await env.bargeOk(['rm', 'holder']);
    expect(await env.bargeOk(['volume', 'prune', '-f'])).toBe('used');
    expect(await volumeNames()).toEqual([]);
    await storeIsClean();
  });
});

describe('store consistency', () => {
  it('makes a volume once when containers that name it are created at the same time', async () => {
    const rs = await Promise.all([1, 2, 3, 4].map((i) => env.barge(['create', '--name', `racer-${i}`, '-v', 'raced:/r', 'busybox', 'true'])));
    for (const r of rs) expectCode(r, 0);
    expect(await volumeNames()).toEqual(['raced']);
    const creates = await Promise.all([1, 2, 3].map(() => env.barge(['volume', 'create', 'twice'])));
    expect(creates.map((r) => r.code).sort()).toEqual([0, 125, 125]);
    expect(await env.bargeOk(['volume', 'rm', '-f', 'raced', 'twice'])).toBe('raced\ntwice');
    expect(await env.bargeOk(['ps', '-aq', '--filter', 'name=racer'])).toBe('');
    await storeIsClean();
  });

  it('reports a volume directory a crash left behind, and repairs it', async () => {
    await mkdir(join(env.root, 'volumes', 'crashed', '_data'), { recursive: true });
    const r = await env.barge(['system', 'check']);
    expectCode(r, 1);
    expect(r.stdout).toContain('volume directory crashed is not registered');
    await env.bargeOk(['system', 'check', '--repair']);
    await storeIsClean();
    // The name is free again.
    expect(await env.bargeOk(['volume', 'create', 'crashed'])).toBe('crashed');
    await env.bargeOk(['volume', 'rm', 'crashed']);
  });
});
