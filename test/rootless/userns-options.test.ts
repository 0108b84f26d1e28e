// --userns, --userns-uid-map/--uidmap on from, build and run: containers in user namespaces of their
// own, and keep-id for work directories bind-mounted from the user's home.
import { lstatSync } from 'node:fs';
import { mkdir, chown, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeFailure, makeEnv, type Env } from '../helpers.ts';
import { importBusybox } from '../fixtures.ts';
import { ensureUser, isRoot, rootlessBusyboxEnv, type RootlessEnv } from './lib.ts';

describe.runIf(isRoot)('user namespace options, rootless', () => {
  let env: RootlessEnv;
  let work: string;

  beforeAll(async () => {
    env = await rootlessBusyboxEnv();
    work = join(env.files, 'work');
    await mkdir(work);
    await chown(work, env.user.uid, env.user.gid);
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  it('run --userns=keep-id: the user keeps its uid inside, and files made in a bind mount are its own on the host', async () => {
    const out = await env.bargeOk(['run', '--rm', '--userns=keep-id', '-v', `${work}:/work`, 'busybox', 'sh', '-c', 'id -u; id -g; echo made > /work/by-run; cat /proc/self/uid_map']);
    const [uid, gid, ...map] = out.split('\n');
    expect(uid).toBe(String(env.user.uid));
    expect(gid).toBe(String(env.user.gid));
    // The user's id is barge's root (0), the ids below it shift up by one, and those above keep their numbers.
    expect(map.map((l) => l.trim().split(/\s+/).join(' '))).toEqual([`0 1 ${env.user.uid}`, `${env.user.uid} 0 1`, `${env.user.uid + 1} ${env.user.uid + 1} ${65535 - env.user.uid}`]);
    const st = lstatSync(join(work, 'by-run'));
    expect([st.uid, st.gid]).toEqual([env.user.uid, env.user.gid]);
    // --user still wins over keep-id's default.
    expect(await env.bargeOk(['run', '--rm', '--userns=keep-id', '--user', '0', 'busybox', 'id', '-u'])).toBe('0');
  });

  it('from --userns keep-id: every run of the working container gets the mapping', async () => {
    const ctr = await env.bargeOk(['from', '--userns', 'keep-id', 'busybox']);
    await env.bargeOk(['run', '-v', `${work}:/w`, ctr, '--', 'sh', '-c', 'echo x > /w/by-buildah-run']);
    expect(lstatSync(join(work, 'by-buildah-run')).uid).toBe(env.user.uid);
    expect(await env.bargeOk(['run', ctr, '--', 'id', '-u'])).toBe(String(env.user.uid));
    await env.bargeOk(['rm', ctr]);
  });

  it('--userns=private (and auto): a namespace of the container\'s own with the same ids, so files keep their owners', async () => {
    for (const mode of ['private', 'auto']) {
      // uid_map shows a namespace's map onto its parent: the container's own onto barge's ids.
      const out = await env.bargeOk(['run', '--rm', `--userns=${mode}`, 'busybox', 'sh', '-c', 'cat /proc/self/uid_map; stat -c %u /var/www']);
      const lines = out.split('\n');
      expect(lines.slice(0, 2).map((l) => l.trim().split(/\s+/).join(' ')), mode).toEqual(['0 0 1', '1 1 65535']);
      expect(lines[2]).toBe('33');
    }
    // Without --userns the container shares barge's namespace, whose map is onto the host's ids.
    const shared = await env.bargeOk(['run', '--rm', 'busybox', 'head', '-1', '/proc/self/uid_map']);
    expect(shared.trim().split(/\s+/)).toEqual(['0', String(env.user.uid), '1']);
  });

  it('--uidmap/--gidmap and --userns-uid-map: explicit maps, relative to barge\'s namespace', async () => {
    // Cut where barge's own map changes ranges (0 is the user, 1… the subordinate ids), as the kernel requires.
    const lines = (s: string): string[] => s.split('\n').map((l) => l.trim().split(/\s+/).join(' '));
    expect(lines(await env.bargeOk(['run', '--rm', '--uidmap', '0:0:1000', '--gidmap', '0:0:2000', 'busybox', 'sh', '-c', 'cat /proc/self/uid_map /proc/self/gid_map']))).toEqual(
      ['0 0 1', '1 1 999', '0 0 1', '1 1 1999'],
    );
    // Buildah's spelling on from; the gid map defaults to the uid map.
    const ctr = await env.bargeOk(['from', '--userns-uid-map', '0:0:500', 'busybox']);
    expect(lines(await env.bargeOk(['run', ctr, '--', 'cat', '/proc/self/gid_map']))).toEqual(['0 0 1', '1 1 499']);
    await env.bargeOk(['rm', ctr]);
  });

  it('build --userns container: RUN steps get a namespace of their own', async () => {
    const ctx = join(env.files, 'ctx');
    await mkdir(ctx);
    await writeFile(join(ctx, 'Containerfile'), 'FROM busybox\nRUN cat /proc/self/uid_map > /uidmap\n');
    await chown(ctx, env.user.uid, env.user.gid);
    await env.bargeOk(['build', '--userns', 'container', '-t', 'nsbuilt', ctx]);
    expect(await env.bargeOk(['run', '--rm', 'nsbuilt', 'cat', '/uidmap'])).toMatch(/^\s*0\s+0\s+1\n\s*1\s+1\s+65535$/);
  });

  it('maps outside barge\'s namespace and unknown modes are clear errors (125)', async () => {
    const cases: [string[], RegExp][] = [
      [['run', '--rm', '--uidmap', '0:70000:10', 'busybox', 'true'], /not mapped into barge's user namespace.*ids 0-65535/],
      [['run', '--rm', '--uidmap', '0:x:10', 'busybox', 'true'], /expected CONTAINER-ID:HOST-ID:SIZE/],
      [['run', '--rm', '--userns=bogus', 'busybox', 'true'], /invalid --userns "bogus"/],
      [['run', '--rm', '--userns=container:other', 'busybox', 'true'], /not supported/],
      [['run', '--rm', '--userns=host', '--uidmap', '0:0:10', 'busybox', 'true'], /cannot be combined/],
      [['from', '--userns=keep-id:uid=x', 'busybox'], /invalid --userns=keep-id option/],
      // Container files are not shifted to a map, so barge's root (the user) must stay mapped.
      [['run', '--rm', '--uidmap', '0:1:1000', 'busybox', 'true'], /leaves id 0 of barge's user namespace \(your own uid\) unmapped/],
      [['run', '--rm', '--userns=nomap', 'busybox', 'true'], /--userns=nomap leaves id 0/],
    ];
    for (const [args, msg] of cases) {
      const r = await env.barge(args);
      expect(r.code, describeFailure(args, r)).toBe(125);
      expect(r.stderr).toMatch(msg);
    }
  });
});

describe.runIf(isRoot)('user namespace options, as root', () => {
  let env: Env;
  beforeAll(async () => {
    env = await makeEnv();
    await importBusybox(env);
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  it('keep-id and nomap are for rootless users only, as in Podman', async () => {
    for (const mode of ['keep-id', 'nomap']) {
      const r = await env.barge(['run', '--rm', `--userns=${mode}`, 'busybox', 'true']);
      expect(r.code).toBe(125);
      expect(r.stderr).toMatch(new RegExp(`--userns=${mode} is only supported in rootless mode`));
    }
  });

  it('--userns=private maps every id to itself in a new namespace', async () => {
    expect(await env.bargeOk(['run', '--rm', '--userns=private', 'busybox', 'sh', '-c', 'cat /proc/self/uid_map; stat -c %u /var/www'])).toMatch(/^\s*0\s+0\s+4294967295\n33$/);
  });

  it('--userns-uid-map-user reads /etc/subuid, and a map without the host\'s root is refused clearly', async () => {
    const user = ensureUser('bargetest', '200000-265535');
    const r = await env.barge(['from', '--userns-uid-map-user', user.name, 'busybox']);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/leaves id 0 of the host unmapped/);
    const missing = await env.barge(['from', '--userns-uid-map-user', 'no-such-user-here', 'busybox']);
    expect(missing.code).toBe(125);
    expect(missing.stderr).toMatch(/no ranges for "no-such-user-here" in \/etc\/subuid/);
    expect(await env.bargeOk(['from', '--userns-uid-map', '0:0:1000', '--userns-gid-map', '0:0:2000', 'busybox'])).toMatch(/working-container/);
  });
});
