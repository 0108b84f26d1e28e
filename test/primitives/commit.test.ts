// commit: the new layer holds exactly the container's changes; format, squash, timestamp,
// --rm, --iidfile, -q and transport destinations.
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Env } from '../helpers.ts';
import { busyboxEnv, busyboxRootfsTar } from '../fixtures.ts';
import { bargeTopLayer, expectCode, expectError, from, mountPath, ociManifest, ociTopLayerNames, sh } from './lib.ts';

let env: Env;
let baseId: string;
beforeAll(async () => {
  ({ env, imageId: baseId } = await busyboxEnv());
});
afterAll(async () => {
  await env?.cleanup();
});

const ID = /^[0-9a-f]{64}$/;
let dirCounter = 0;
const ociDir = (): string => join(env.tmp, `oci-${++dirCounter}`);

/** Commits and returns the image id, which must be the last line commit prints. */
async function commit(ctr: string, ...args: string[]): Promise<string> {
  const id = (await env.bargeOk(['commit', ...args, ctr])).split('\n').at(-1)!;
  expect(id).toMatch(ID);
  return id;
}

async function commitAs(ctr: string, image: string, ...args: string[]): Promise<string> {
  const id = (await env.bargeOk(['commit', ...args, ctr, image])).split('\n').at(-1)!;
  expect(id).toMatch(ID);
  return id;
}

describe('the new layer', () => {
  let image: string;
  let topLayer: string[];
  beforeAll(async () => {
    const ctr = await from(env);
    await sh(env, ctr, [
      'echo added > /added',
      'mkdir -p /srv/new/dir && echo nested > /srv/new/dir/file',
      'echo modified >> /etc/group',
      'rm /bin/vi /etc/passwd',
      'rm -rf /var/tmp',
      'chmod 0700 /home',
      'ln -s /added /usr/added-link',
    ].join(' && '));
    image = await commitAs(ctr, 'changes');
    topLayer = await bargeTopLayer(env, 'changes', ociDir());
  });

  it('holds additions, modifications and whiteouts for deletions, and nothing else', () => {
    expect([...topLayer].sort()).toEqual([
      'added',
      'bin',
      'bin/.wh.vi',
      'etc',
      'etc/.wh.passwd',
      'etc/group',
      'home',
      'srv',
      'srv/new',
      'srv/new/dir',
      'srv/new/dir/file',
      'usr',
      'usr/added-link',
      'var',
      'var/.wh.tmp',
    ]);
  });

  it('a container from the committed image sees the changes', async () => {
    const c = await from(env, image);
    expect(await sh(env, c, 'cat /added /srv/new/dir/file; tail -1 /etc/group; readlink /usr/added-link; stat -c %a /home')).toBe(
      'added\nnested\nmodified\n/added\n700',
    );
  });

  it('deleted files and directories are absent in a container from the committed image', async () => {
    const c = await from(env, image);
    expect(await sh(env, c, 'for p in /bin/vi /etc/passwd /var/tmp; do test -e $p || test -L $p && echo "$p present" || echo "$p absent"; done')).toBe(
      '/bin/vi absent\n/etc/passwd absent\n/var/tmp absent',
    );
    // Everything else of the base is still there.
    expect(await sh(env, c, 'test -x /bin/busybox && test -d /var && echo base-intact')).toBe('base-intact');
  });

  it('has one more layer than the base, and a history entry for it', async () => {
    expect(await env.bargeOk(['inspect', '--type', 'image', '--format', '{{len .History}}', image])).toBe('2');
    const m = JSON.parse(await env.bargeOk(['inspect', '--type', 'manifest', image])) as { layers: unknown[] };
    expect(m.layers).toHaveLength(2);
  });

  it('is named and listed in images', async () => {
    const rows = (await env.bargeOk(['images'])).split('\n');
    expect(rows.some((r) => new RegExp(`^localhost/changes\\s+latest\\s+${image.slice(0, 12)}\\s`).test(r)), rows.join('\n')).toBe(true);
  });

  it('images shows it with Buildah\'s --format fields and --no-trunc ids', async () => {
    // Buildah: .Name is the repository without the tag; --no-trunc ids carry "sha256:".
    expect((await env.bargeOk(['images', '--format', '{{.Name}} {{.Tag}} {{.ID}}', '--no-trunc'])).split('\n')).toContain(`localhost/changes latest sha256:${image}`);
    expect((await env.bargeOk(['images', '-q', '--no-trunc'])).split('\n')).toContain(`sha256:${image}`);
  });
});

describe('opaque directories', () => {
  it('a directory removed and re-created holds only its new content (through mount)', async () => {
    const ctr = await from(env);
    const merged = await mountPath(env, ctr);
    await rm(join(merged, 'etc'), { recursive: true });
    await mkdir(join(merged, 'etc'));
    await writeFile(join(merged, 'etc', 'new'), '');
    await commitAs(ctr, 'opaque-etc');
    const names = await bargeTopLayer(env, 'opaque-etc', ociDir());
    expect(names).toContain('etc/.wh..wh..opq');
    expect(names.filter((n) => n.startsWith('etc/')).sort()).toEqual(['etc/.wh..wh..opq', 'etc/new']);
    const c = await from(env, 'opaque-etc');
    expect(await readdir(join(await mountPath(env, c), 'etc'))).toEqual(['new']);
  });

  it('the same made by run (rm -rf && mkdir && touch)', async () => {
    const ctr = await from(env);
    await sh(env, ctr, 'rm -rf /usr/sbin && mkdir /usr/sbin && touch /usr/sbin/new');
    await commitAs(ctr, 'opaque-run');
    const c = await from(env, 'opaque-run');
    expect(await sh(env, c, 'ls -A /usr/sbin')).toBe('new');
    expect(await sh(env, c, 'test -L /usr/bin/env && echo sibling-kept')).toBe('sibling-kept');
  });
});

describe('mount targets the runtime created', () => {
  let topLayer: string[];
  beforeAll(async () => {
    // From scratch there is no /etc/hosts or /etc/resolv.conf, so the runtime must create them.
    const ctr = await from(env, 'scratch');
    await env.bargeOk(['add', ctr, await busyboxRootfsTar(), '/']);
    const vol = join(env.tmp, 'targets-vol');
    await mkdir(vol, { recursive: true });
    await sh(env, ctr, 'echo real > /made-by-run', ['--volume', `${vol}:/deep/a/b`, '--mount', 'type=tmpfs,destination=/tmpfs-target']);
    await sh(env, ctr, 'echo kept > /keep/file', ['--volume', `${vol}:/keep/x/y`]);
    await commitAs(ctr, 'targets');
    topLayer = await bargeTopLayer(env, 'targets', ociDir());
  });

  it('/etc/hosts, /etc/resolv.conf and /etc/hostname are not committed', () => {
    expect(topLayer).toContain('bin/busybox');
    expect(topLayer).toContain('made-by-run');
    for (const p of ['etc/hosts', 'etc/resolv.conf', 'etc/hostname']) expect(topLayer).not.toContain(p);
  });

  it('volume and tmpfs targets are not committed, nested ones with their parents', () => {
    for (const p of ['tmpfs-target', 'deep', 'deep/a', 'deep/a/b', 'keep/x', 'keep/x/y']) expect(topLayer).not.toContain(p);
  });

  it('a created parent the container also used is kept', () => {
    expect(topLayer).toEqual(expect.arrayContaining(['keep', 'keep/file']));
  });

  it('nor are they in a container from the committed image', async () => {
    const c = await from(env, 'targets');
    const merged = await mountPath(env, c);
    expect(existsSync(join(merged, 'etc', 'hosts'))).toBe(false);
    expect(existsSync(join(merged, 'deep'))).toBe(false);
  });
});

describe('from scratch', () => {
  it('copy into an empty container and commit gives a one-layer image of just that', async () => {
    const ctr = await from(env, 'scratch');
    const src = join(env.tmp, 'scratch-src');
    await mkdir(src, { recursive: true });
    await writeFile(join(src, 'only'), 'only\n');
    // No /etc/passwd here: a numeric --chown needs none.
    await env.bargeOk(['copy', '--chown', '33:44', ctr, join(src, 'only'), '/app/only']);
    await env.bargeOk(['config', '--cmd', '["/app/only"]', ctr]);
    await commitAs(ctr, 'from-scratch');
    const dir = ociDir();
    await env.bargeOk(['push', 'from-scratch', `oci:${dir}`]);
    expect((await ociManifest(dir)).layers).toHaveLength(1);
    expect([...(await ociTopLayerNames(dir))].sort()).toEqual(['app', 'app/only']);
    const c = await from(env, 'from-scratch');
    const { stat } = await import('node:fs/promises');
    const st = await stat(join(await mountPath(env, c), 'app', 'only'));
    expect(`${st.uid}:${st.gid}`).toBe('33:44');
  });
});

describe('--squash', () => {
  let image: string;
  beforeAll(async () => {
    const first = await from(env);
    await sh(env, first, 'echo one > /one');
    await commitAs(first, 'two-layers');
    const second = await from(env, 'two-layers');
    await sh(env, second, 'echo two > /two && rm /one /bin/vi');
    image = await commitAs(second, 'squashed', '--squash');
  });

  it('gives an image of one layer', async () => {
    const m = JSON.parse(await env.bargeOk(['inspect', '--type', 'manifest', image])) as { layers: unknown[] };
    expect(m.layers).toHaveLength(1);
    const cfg = JSON.parse(await env.bargeOk(['inspect', '--type', 'image', '--format', '{{.Config}}', image])) as { rootfs: { diff_ids: string[] } };
    expect(cfg.rootfs.diff_ids).toHaveLength(1);
  });

  it('the one layer has the base, the changes, and no whiteouts', async () => {
    const dir = ociDir();
    await env.bargeOk(['push', 'squashed', `oci:${dir}`]);
    expect((await ociManifest(dir)).layers).toHaveLength(1);
    const names = await ociTopLayerNames(dir);
    expect(names).toEqual(expect.arrayContaining(['bin/busybox', 'two', 'etc/passwd']));
    expect(names).not.toContain('one');
    expect(names).not.toContain('bin/vi');
    expect(names.some((n) => n.includes('.wh.'))).toBe(false);
    // The runtime's mount targets are not part of a squashed image either.
    for (const p of ['etc/hosts', 'etc/resolv.conf', 'etc/hostname']) expect(names).not.toContain(p);
  });

  it('a container from it sees the same files as the unsquashed history would give', async () => {
    const c = await from(env, 'squashed');
    expect(await sh(env, c, 'cat /two; test -e /one || echo one-gone; test -e /bin/vi || echo vi-gone')).toBe('two\none-gone\nvi-gone');
  });
});

describe('--timestamp', () => {
  it('0 on two equivalent containers gives identical image ids', async () => {
    const a = await from(env);
    const b = await from(env);
    for (const c of [a, b]) await sh(env, c, 'echo same > /same && mkdir -p /d && rm /bin/vi');
    const ia = await commit(a, '--timestamp', '0');
    const ib = await commit(b, '--timestamp', '0');
    expect(ia).toBe(ib);
    // Without it, the creation times differ.
    await new Promise((r) => setTimeout(r, 1100));
    expect(await commit(a)).not.toBe(ia);
  });

  it('sets the created date and clamps file times', async () => {
    const c = await from(env);
    await sh(env, c, 'echo t > /timed');
    const id = await commit(c, '--timestamp', '86400');
    expect(await env.bargeOk(['inspect', '--type', 'image', '--format', '{{.OCIv1.Created}}', id])).toBe('1970-01-02 00:00:00 +0000 UTC');
    const n = await from(env, id);
    expect(await env.bargeOk(['run', n, '--', 'stat', '-c', '%Y', '/timed'])).toBe('86400');
  });

  it('rejects a value that is not a number of seconds', async () => {
    const c = await from(env);
    await expectError(env, ['commit', '--timestamp', 'yesterday', c]);
  });
});

describe('--format', () => {
  let ctr: string;
  beforeAll(async () => {
    ctr = await from(env);
  });

  it('oci (default) writes an OCI manifest and config', async () => {
    const id = await commit(ctr);
    const m = JSON.parse(await env.bargeOk(['inspect', '--type', 'manifest', id])) as { mediaType: string; config: { mediaType: string } };
    expect(m.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(m.config.mediaType).toBe('application/vnd.oci.image.config.v1+json');
  });

  it('docker writes a Docker schema 2 manifest', async () => {
    const id = await commit(ctr, '--format', 'docker');
    const m = JSON.parse(await env.bargeOk(['inspect', '--type', 'image', '--format', '{{.Manifest}}', id])) as {
      mediaType: string;
      config: { mediaType: string };
      layers: { mediaType: string }[];
    };
    expect(m.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(m.config.mediaType).toBe('application/vnd.docker.container.image.v1+json');
    // Local layers may be kept uncompressed (as Buildah does); either way they are Docker layer types.
    for (const l of m.layers) expect(l.mediaType).toMatch(/^application\/vnd\.docker\.image\.rootfs\.diff\.tar(\.gzip)?$/);
    const viaManifest = JSON.parse(await env.bargeOk(['inspect', '--type', 'manifest', id])) as { mediaType: string };
    expect(viaManifest.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
  });
});

describe('output and side effects', () => {
  it('-q prints only the image id', async () => {
    const c = await from(env);
    const r = await env.barge(['commit', '-q', c, 'quiet-image']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^[0-9a-f]{64}\n$/);
    expect(await env.bargeOk(['inspect', '--type', 'image', '--format', '{{.FromImageID}}', 'quiet-image'])).toBe(r.stdout.trim());
  });

  it('--iidfile writes sha256:<id> there instead of on stdout, as Buildah', async () => {
    const c = await from(env);
    const file = join(env.tmp, 'iid');
    const r = await env.barge(['commit', '--iidfile', file, c, 'iid-image']);
    expectCode(r, 0);
    expect(r.stdout).toBe('');
    const id = await env.bargeOk(['inspect', '--type', 'image', '--format', '{{.FromImageID}}', 'iid-image']);
    expect(await readFile(file, 'utf8')).toBe(`sha256:${id}`);
    // Buildah's report of the write, on stderr.
    expect(r.stderr).toBe(`Getting image source signatures\nCopying blob ${r.stderr.match(/Copying blob (sha256:[0-9a-f]{64})/)?.[1]}\nCopying config sha256:${id}\nWriting manifest to image destination\nStoring signatures\n`);
  });

  it('--rm removes the working container, the image stays', async () => {
    const c = await from(env, 'busybox', ['--name', 'removed-on-commit']);
    await sh(env, c, 'echo x > /x');
    const id = await commitAs(c, 'after-rm', '--rm');
    expect(await env.bargeOk(['containers', '--format', '{{.ContainerName}}'])).not.toMatch(/^removed-on-commit$/m);
    const n = await from(env, id);
    expect(await sh(env, n, 'cat /x')).toBe('x');
  });

  it('without --rm the container stays and can be committed again', async () => {
    const c = await from(env);
    await sh(env, c, 'echo 1 > /v');
    const first = await commit(c);
    await sh(env, c, 'echo 2 > /v');
    const second = await commit(c);
    expect(second).not.toBe(first);
    expect(await sh(env, await from(env, second), 'cat /v')).toBe('2');
    expect(await sh(env, await from(env, first), 'cat /v')).toBe('1');
  });

  it('commits to an oci: directory, printing nothing and leaving no image in local storage, as Buildah', async () => {
    const c = await from(env);
    await sh(env, c, 'echo to-oci > /oci-file');
    const dir = ociDir();
    const images = await env.bargeOk(['images', '-q', '--no-trunc']);
    expect(await env.bargeOk(['commit', '-q', c, `oci:${dir}`])).toBe('');
    expect(await env.bargeOk(['images', '-q', '--no-trunc'])).toBe(images);
    expect(existsSync(join(dir, 'oci-layout'))).toBe(true);
    const m = await ociManifest(dir);
    expect(m.config.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(m.layers).toHaveLength(2);
    const names = await ociTopLayerNames(dir);
    expect(names).toContain('oci-file');
  });

  it('an unknown container exits 125', async () => {
    await expectError(env, ['commit', 'no-such-container', 'x']);
  });

  it('the base image is untouched by commits of its containers', async () => {
    expect(await env.bargeOk(['inspect', '--type', 'image', '--format', '{{.FromImageID}}', 'busybox'])).toBe(baseId);
    const c = await from(env);
    expect(await sh(env, c, 'test -e /added || test -e /one || echo pristine')).toBe('pristine');
  });
});
