// The same changes made with barge and with buildah 1.28 must give top layers with the same
// entries, whiteouts and opaque markers included.
import { execFile } from 'node:child_process';
import { appendFile, chmod, mkdir, readdir, readFile, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTar, type Env } from '../helpers.ts';
import { busyboxEnv, busyboxRootfsTar } from '../fixtures.ts';
import { from, mountPath, normaliseName, ociManifest } from './lib.ts';

const execFileP = promisify(execFile);

let env: Env;
let buildahArgs: string[];
beforeAll(async () => {
  ({ env } = await busyboxEnv());
  const broot = join(env.tmp, 'buildah');
  await mkdir(broot);
  buildahArgs = ['--root', join(broot, 'root'), '--runroot', join(broot, 'runroot'), '--storage-driver', 'overlay'];
});
afterAll(async () => {
  if (buildahArgs) {
    // Buildah's own mounts live under env.tmp; env.cleanup() unmounts whatever this leaves.
    await buildah('rm', '--all').catch(() => '');
    await buildah('rmi', '--all', '--force').catch(() => '');
  }
  await env?.cleanup();
});

async function buildah(...args: string[]): Promise<string> {
  const { stdout } = await execFileP('buildah', [...buildahArgs, ...args], { maxBuffer: 64 << 20 });
  return stdout.trim();
}

/** The same edits, made on a mounted root filesystem by either tool's `mount`. */
async function edit(root: string): Promise<void> {
  await writeFile(join(root, 'added'), 'added\n');
  await appendFile(join(root, 'etc', 'group'), 'extra:x:1000:\n');
  await unlink(join(root, 'etc', 'passwd'));
  await unlink(join(root, 'bin', 'vi'));
  await rm(join(root, 'var', 'tmp'), { recursive: true });
  // Removed and re-created: an opaque directory.
  await rm(join(root, 'usr', 'sbin'), { recursive: true });
  await mkdir(join(root, 'usr', 'sbin'));
  await writeFile(join(root, 'usr', 'sbin', 'new'), 'new\n');
  await mkdir(join(root, 'srv', 'a', 'b'), { recursive: true });
  await writeFile(join(root, 'srv', 'a', 'b', 'file'), 'nested\n');
  await chmod(join(root, 'home'), 0o700);
  await symlink('/added', join(root, 'usr', 'added-link'));
  // A rename is a whiteout plus an addition.
  await unlink(join(root, 'bin', 'cat'));
  await symlink('/bin/busybox', join(root, 'bin', 'cat2'));
}

/** (name, type) of each entry of the top layer of the single image in an OCI layout. */
async function topLayer(dir: string): Promise<string[]> {
  const m = await ociManifest(dir);
  const blob = await readFile(join(dir, 'blobs', ...m.layers.at(-1)!.digest.split(':')));
  const raw = blob[0] === 0x1f && blob[1] === 0x8b ? gunzipSync(blob) : blob;
  return (await readTar(raw)).map((e) => `${normaliseName(e.header.name)} ${e.header.type}`).sort();
}

describe('commit against buildah', () => {
  let ours: string[];
  let theirs: string[];
  beforeAll(async () => {
    const tar = await busyboxRootfsTar();
    const hostDir = join(env.tmp, 'app');
    await mkdir(join(hostDir, 'lib'), { recursive: true });
    await writeFile(join(hostDir, 'main'), 'main\n');
    await writeFile(join(hostDir, 'lib', 'dep'), 'dep\n');

    // barge, on the imported busybox image.
    const ctr = await from(env);
    await edit(await mountPath(env, ctr));
    await env.bargeOk(['copy', ctr, hostDir, '/opt/app/']);
    await env.bargeOk(['commit', ctr, 'compared']);
    const bargeDir = join(env.tmp, 'oci-barge');
    await env.bargeOk(['push', 'compared', `oci:${bargeDir}`]);

    // buildah, on an image made from the same rootfs tar.
    const base = await buildah('from', 'scratch');
    await buildah('add', base, tar, '/');
    await buildah('commit', '-q', base, 'busybox-base');
    const bctr = await buildah('from', '--pull-never', 'busybox-base');
    await edit(await buildah('mount', bctr));
    await buildah('copy', bctr, hostDir, '/opt/app/');
    await buildah('commit', '-q', bctr, 'compared');
    const buildahDir = join(env.tmp, 'oci-buildah');
    await buildah('push', '-q', 'compared', `oci:${buildahDir}`);

    ours = await topLayer(bargeDir);
    theirs = await topLayer(buildahDir);
  });

  it('both layers record the changes (sanity)', () => {
    for (const l of [ours, theirs]) {
      expect(l).toContain('etc/.wh.passwd file');
      expect(l).toContain('usr/sbin/.wh..wh..opq file');
      expect(l).toContain('opt/app/lib/dep file');
    }
  });

  it('the top layers have the same entries, whiteouts and opaque markers', () => {
    expect(ours).toEqual(theirs);
  });

  it('the whiteouts match one for one', () => {
    const wh = (l: string[]): string[] => l.filter((e) => e.includes('.wh.'));
    expect(wh(ours)).toEqual(['bin/.wh.cat file', 'bin/.wh.vi file', 'etc/.wh.passwd file', 'usr/sbin/.wh..wh..opq file', 'var/.wh.tmp file']);
    expect(wh(theirs)).toEqual(wh(ours));
  });

  it('a container from either image shows the same tree', async () => {
    const c = await from(env, 'compared');
    const list = async (root: string): Promise<string[]> => (await readdir(root, { recursive: true })).map(String).sort();
    const b = await buildah('from', '--pull-never', 'compared');
    const bargeTree = await list(await mountPath(env, c));
    const buildahTree = await list(await buildah('mount', b));
    expect(bargeTree).toEqual(buildahTree);
    expect(bargeTree).not.toContain('etc/passwd');
    expect(bargeTree.filter((p) => p.startsWith('usr/sbin/'))).toEqual(['usr/sbin/new']);
  });
});
