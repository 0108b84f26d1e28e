// from, containers, mount/umount, rm, inspect and unshare against a real store.
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Env } from '../helpers.ts';
import { busyboxEnv } from '../fixtures.ts';
import { expectCode, expectError, from, mountPath, sh } from './lib.ts';

let env: Env;
let imageId: string;
beforeAll(async () => {
  ({ env, imageId } = await busyboxEnv());
});
afterAll(async () => {
  await env?.cleanup();
});

async function mountedPaths(): Promise<Set<string>> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  return new Set(text.split('\n').map((l) => l.split(' ')[4] ?? '').filter((p) => p !== ''));
}

interface ContainerJSON {
  id: string;
  builder: boolean;
  imageid: string;
  imagename: string;
  containername: string;
}

async function containerList(): Promise<ContainerJSON[]> {
  return JSON.parse(await env.bargeOk(['containers', '--json'])) as ContainerJSON[];
}

describe('from', () => {
  it('names working containers after the image, then -1, -2', async () => {
    expect(await from(env)).toBe('busybox-working-container');
    expect(await from(env)).toBe('busybox-working-container-1');
    expect(await from(env)).toBe('busybox-working-container-2');
  });

  it('accepts --pull never for a local image and records the image it came from', async () => {
    const name = await from(env, 'busybox', ['--pull', 'never', '--name', 'pulled-never']);
    expect(name).toBe('pulled-never');
    const c = (await containerList()).find((x) => x.containername === 'pulled-never');
    expect(c).toMatchObject({ builder: true, imageid: imageId, imagename: 'localhost/busybox:latest' });
  });

  it('--name gives the container that name; a second use of the name exits 125', async () => {
    expect(await from(env, 'busybox', ['--name', 'taken'])).toBe('taken');
    const stderr = await expectError(env, ['from', '--name', 'taken', 'busybox']);
    expect(stderr).toContain('taken');
    expect((await containerList()).filter((c) => c.containername === 'taken')).toHaveLength(1);
  });

  it('an unknown image exits 125 with "image not known" and creates nothing', async () => {
    const before = (await containerList()).length;
    expect(await expectError(env, ['from', 'no-such-image'])).toContain('image not known');
    expect(await expectError(env, ['from', '--pull', 'never', 'localhost/no-such-image:v1'])).toContain('image not known');
    expect((await containerList()).length).toBe(before);
  });

  it('scratch gives an empty root filesystem named working-container', async () => {
    const a = await from(env, 'scratch');
    const b = await from(env, 'scratch');
    expect(a).toBe('working-container');
    expect(b).toBe('working-container-1');
    expect(await readdir(await mountPath(env, a))).toEqual([]);
    expect(await env.bargeOk(['inspect', '--format', '{{.FromImage}}|{{.FromImageID}}', a])).toBe('|');
  });

  it('concurrent froms get distinct names', async () => {
    const names = await Promise.all(Array.from({ length: 5 }, () => from(env)));
    expect(new Set(names).size).toBe(5);
    for (const n of names) expect(n).toMatch(/^busybox-working-container(-\d+)?$/);
  });

  it('accepts an image id (prefix) as well as a name', async () => {
    const name = await from(env, imageId.slice(0, 12), ['--name', 'by-id']);
    expect(await env.bargeOk(['inspect', '--format', '{{.FromImageID}}', name])).toBe(imageId);
  });
});

describe('containers', () => {
  let ctr: string;
  let id: string;
  beforeAll(async () => {
    ctr = await from(env, 'busybox', ['--name', 'listed']);
    id = await env.bargeOk(['inspect', '--format', '{{.ContainerID}}', ctr]);
  });

  it('prints a Buildah table with truncated ids', async () => {
    const lines = (await env.bargeOk(['containers'])).split('\n');
    expect(lines[0]).toMatch(/^CONTAINER ID\s+BUILDER\s+IMAGE ID\s+IMAGE NAME\s+CONTAINER NAME$/);
    const row = lines.find((l) => l.endsWith(' listed'));
    expect(row).toMatch(new RegExp(`^${id.slice(0, 12)}\\s+\\*\\s+${imageId.slice(0, 12)}\\s+localhost/busybox:latest\\s+listed$`));
  });

  it('--notruncate shows full ids', async () => {
    const out = await env.bargeOk(['containers', '--notruncate']);
    expect(out.split('\n').find((l) => l.endsWith(' listed'))).toMatch(new RegExp(`^${id}\\s+\\*\\s+${imageId}\\s`));
  });

  it('-q prints whole ids, as Buildah 1.28 does, --notruncate or not', async () => {
    const ids = (await env.bargeOk(['containers', '-q'])).split('\n');
    expect(ids).toContain(id);
    expect(ids.every((l) => /^[0-9a-f]{64}$/.test(l))).toBe(true);
    expect((await env.bargeOk(['containers', '-q', '--notruncate'])).split('\n')).toEqual(ids);
  });

  it('names the image of a scratch container "scratch", and --format sees Builder as Buildah shows it', async () => {
    const s = await env.bargeOk(['from', '--name', 'fromscratch', 'scratch']);
    const out = (await env.bargeOk(['containers', '--format', '{{.ContainerName}} {{.ImageName}} [{{.Builder}}]'])).split('\n');
    expect(out).toContain('fromscratch scratch [   *]');
    await env.bargeOk(['rm', s]);
  });

  it('--json has Buildah\'s keys', async () => {
    const c = (await containerList()).find((x) => x.containername === 'listed');
    expect(c).toEqual({ id, builder: true, imageid: imageId, imagename: 'localhost/busybox:latest', containername: 'listed' });
  });

  it('--format runs a Go template per container', async () => {
    const out = await env.bargeOk(['containers', '--format', '{{.ContainerName}}={{.ImageName}}']);
    expect(out.split('\n')).toContain('listed=localhost/busybox:latest');
    const r = await env.barge(['containers', '--format', '{{.ContainerName}}']);
    expect(r.stdout.endsWith('\n')).toBe(true);
  });

  it('--all lists the working containers too', async () => {
    const all = (await env.bargeOk(['containers', '--all', '--format', '{{.ContainerName}}'])).split('\n');
    const builders = (await env.bargeOk(['containers', '--format', '{{.ContainerName}}'])).split('\n');
    expect(all).toContain('listed');
    for (const b of builders) expect(all).toContain(b);
  });
});

describe('mount and umount', () => {
  let a: string;
  let b: string;
  beforeAll(async () => {
    a = await from(env, 'busybox', ['--name', 'mnt-a']);
    b = await from(env, 'busybox', ['--name', 'mnt-b']);
  });

  it('mount CTR prints the merged path, which holds the image files and the container changes', async () => {
    await sh(env, a, 'echo from-run > /made-by-run');
    const path = await mountPath(env, a);
    expect(path.startsWith(env.root + '/')).toBe(true);
    expect((await mountedPaths()).has(path)).toBe(true);
    expect(existsSync(join(path, 'bin', 'busybox'))).toBe(true);
    expect(await readFile(join(path, 'made-by-run'), 'utf8')).toBe('from-run\n');
    expect(await readFile(join(path, 'etc', 'passwd'), 'utf8')).toMatch(/^root:x:0:0:/);
  });

  it('writes through the mount path are seen by run', async () => {
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(await mountPath(env, a), 'from-host'), 'hello\n');
    expect(await sh(env, a, 'cat /from-host')).toBe('hello');
  });

  it('mount with no arguments lists NAME PATH of mounted containers', async () => {
    const pa = await mountPath(env, a);
    const pb = await mountPath(env, b);
    const lines = (await env.bargeOk(['mount'])).split('\n');
    expect(lines).toContain(`${a} ${pa}`);
    expect(lines).toContain(`${b} ${pb}`);
  });

  it('mount of several containers prints NAME PATH for each', async () => {
    const lines = (await env.bargeOk(['mount', a, b])).split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(new RegExp(`^${a} /\\S+/merged$`));
    expect(lines[1]).toMatch(new RegExp(`^${b} /\\S+/merged$`));
  });

  it('umount CTR unmounts only that container', async () => {
    const pa = await mountPath(env, a);
    const pb = await mountPath(env, b);
    await env.bargeOk(['umount', a]);
    const mounted = await mountedPaths();
    expect(mounted.has(pa)).toBe(false);
    expect(mounted.has(pb)).toBe(true);
    const listed = (await env.bargeOk(['mount'])).split('\n');
    expect(listed.some((l) => l.startsWith(`${a} `))).toBe(false);
    // The container's changes are still there after a remount.
    expect(await readFile(join(await mountPath(env, a), 'made-by-run'), 'utf8')).toBe('from-run\n');
  });

  it('umount --all unmounts every container', async () => {
    const pa = await mountPath(env, a);
    const pb = await mountPath(env, b);
    await env.bargeOk(['umount', '--all']);
    const mounted = await mountedPaths();
    expect(mounted.has(pa)).toBe(false);
    expect(mounted.has(pb)).toBe(false);
    expect(await env.bargeOk(['mount'])).toBe('');
  });

  it('mount and umount of an unknown container exit 125', async () => {
    await expectError(env, ['mount', 'no-such-container']);
    await expectError(env, ['umount', 'no-such-container']);
    await expectError(env, ['umount']);
  });
});

describe('inspect', () => {
  let ctr: string;
  beforeAll(async () => {
    ctr = await from(env, 'busybox', ['--name', 'inspected']);
  });

  it('a container as JSON has Buildah\'s top-level keys', async () => {
    const data = JSON.parse(await env.bargeOk(['inspect', ctr])) as Record<string, unknown>;
    for (const k of ['Type', 'FromImage', 'FromImageID', 'FromImageDigest', 'Config', 'Manifest', 'Container', 'ContainerID', 'OCIv1', 'Docker', 'History']) {
      expect(data, `key ${k}`).toHaveProperty(k);
    }
    expect(data.Type).toBe('buildah 0.0.1');
    expect(data.Container).toBe('inspected');
    expect(data.FromImage).toBe('localhost/busybox:latest');
    expect(data.FromImageID).toBe(imageId);
  });

  it('--format reaches .Container, .FromImage, .OCIv1 and .Docker', async () => {
    const f = '{{.Container}}|{{.FromImage}}|{{.OCIv1.OS}}|{{.OCIv1.Architecture}}|{{.Docker.OS}}';
    const arch = { x64: 'amd64', arm64: 'arm64' }[process.arch as 'x64' | 'arm64'] ?? process.arch;
    expect(await env.bargeOk(['inspect', '--format', f, ctr])).toBe(`inspected|localhost/busybox:latest|linux|${arch}|linux`);
  });

  it('--type container refuses an image and --type image refuses a container', async () => {
    await expectError(env, ['inspect', '--type', 'container', 'busybox']);
    expect(await expectError(env, ['inspect', '--type', 'image', 'inspected'])).toContain('image not known');
    await expectError(env, ['inspect', 'nothing-by-this-name']);
  });

  it('--type image shows the image: its id, manifest and config', async () => {
    const out = await env.bargeOk(['inspect', '--type', 'image', '--format', '{{.FromImageID}} {{.Container}}|{{.OCIv1.OS}}', 'busybox']);
    expect(out).toBe(`${imageId} |linux`);
    const manifest = JSON.parse(await env.bargeOk(['inspect', '--type', 'image', '--format', '{{.Manifest}}', 'busybox'])) as { layers: unknown[] };
    expect(manifest.layers).toHaveLength(1);
  });

  it('Go field names work in templates, e.g. {{len .OCIv1.RootFS.DiffIDs}}', async () => {
    // Buildah users write the Go struct names (RootFS.DiffIDs), not the JSON keys (rootfs.diff_ids).
    expect(await env.bargeOk(['inspect', '--type', 'image', '--format', '{{len .OCIv1.RootFS.DiffIDs}}', 'busybox'])).toBe('1');
    expect(await env.bargeOk(['inspect', '--format', '{{len .OCIv1.RootFS.DiffIDs}}', ctr])).toBe('1');
  });
});

describe('unshare', () => {
  it('runs the command and passes its exit code through', async () => {
    const r = await env.barge(['unshare', '--', 'sh', '-c', 'echo inside; exit 5']);
    expectCode(r, 5);
    expect(r.stdout).toBe('inside\n');
  });

  it('takes the command\'s own flags without -- (Buildah stops parsing at the command)', async () => {
    const r = await env.barge(['unshare', 'sh', '-c', 'exit 6']);
    expectCode(r, 6, ['unshare', 'sh', '-c', 'exit 6']);
  });

  it('a missing command exits 127', async () => {
    const r = await env.barge(['unshare', 'no-such-command-anywhere']);
    expectCode(r, 127);
    expect(r.stderr).toMatch(/^Error: .*no-such-command-anywhere/m);
  });

  it('--mount VAR=CTR mounts the container and exports its path', async () => {
    const ctr = await from(env, 'busybox', ['--name', 'unshared']);
    const out = await env.bargeOk(['unshare', '--mount', `ROOTFS=${ctr}`, '--', 'sh', '-c', 'head -1 "$ROOTFS/etc/passwd"']);
    expect(out).toBe('root:x:0:0:root:/root:/bin/sh');
  });
});

describe('rm', () => {
  it('removes a container: its record, its directory and its mount', async () => {
    const ctr = await from(env, 'busybox', ['--name', 'doomed']);
    const id = await env.bargeOk(['inspect', '--format', '{{.ContainerID}}', ctr]);
    const path = await mountPath(env, ctr);
    expect(await env.bargeOk(['rm', ctr])).toBe(id);
    expect((await containerList()).some((c) => c.containername === 'doomed')).toBe(false);
    expect((await mountedPaths()).has(path)).toBe(false);
    expect(existsSync(join(env.root, 'containers', id))).toBe(false);
    // The name is free again.
    expect(await from(env, 'busybox', ['--name', 'doomed'])).toBe('doomed');
  });

  it('an unknown container exits 125 but the others given are still removed', async () => {
    const ctr = await from(env, 'busybox', ['--name', 'doomed-2']);
    const r = await env.barge(['rm', 'no-such-container', ctr]);
    expectCode(r, 125);
    expect(r.stderr).toMatch(/^Error: .*no-such-container/m);
    expect((await containerList()).some((c) => c.containername === 'doomed-2')).toBe(false);
    await expectError(env, ['rm']);
  });

  it('rm --all then rmi --all leaves a clean, empty store', async () => {
    const ctr = await from(env, 'busybox', ['--name', 'last']);
    await sh(env, ctr, 'echo x > /x');
    await env.bargeOk(['commit', ctr, 'leftover']);
    await mountPath(env, ctr);
    await env.bargeOk(['rm', '--all']);
    expect(await containerList()).toEqual([]);
    await env.bargeOk(['rmi', '--all']);
    expect(await env.bargeOk(['images', '-q'])).toBe('');
    expect(await env.bargeOk(['system', 'check'])).toContain('No problems found');
    expect(await readdir(join(env.root, 'containers'))).toEqual([]);
    expect(await readdir(join(env.root, 'layers'))).toEqual([]);
    const mounts = [...(await mountedPaths())].filter((p) => p.startsWith(env.root + '/'));
    expect(mounts).toEqual([]);
  });
});
