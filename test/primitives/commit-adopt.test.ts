// `commit --rm` (and every layered build step) makes the container's upper directory the new
// layer instead of unpacking the layer's tar again. The layer directory must then be exactly what
// its tar says: no overlay bookkeeping xattrs, no sockets, the same metadata; and its blob must
// be that tar.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, renameSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { diffTar } from '../../src/store/tar-diff.ts';
import { describeFailure, readTar, runInImage, type Env } from '../helpers.ts';
import { busyboxEnv } from '../fixtures.ts';
import { expectStoreClean } from '../images/lib.ts';
import { expectCheckFindsAndRepairs } from '../store/store-helpers.ts';
import { from, mountPath, sh } from './lib.ts';

let env: Env;

beforeAll(async () => {
  ({ env } = await busyboxEnv());
});
afterAll(async () => {
  await env?.cleanup();
});

function layerDirs(): Set<string> {
  return new Set(readdirSync(join(env.root, 'layers')));
}

/** The image's config: rootfs diff ids. */
async function diffIds(image: string): Promise<string[]> {
  const out = JSON.parse(await env.bargeOk(['inspect', '--type', 'image', image])) as { OCIv1: { rootfs: { diff_ids: string[] } } };
  return out.OCIv1.rootfs.diff_ids;
}

async function tarOf(dir: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of diffTar({ dir, mode: 'overlay' })) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const digestOf = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** The entries in which two tars differ (name, type, mode, owner, mtime, size, content), for a failure message. */
async function tarDifferences(a: Buffer, b: Buffer): Promise<string> {
  const lines = async (t: Buffer): Promise<string[]> =>
    (await readTar(t)).map(({ header: h, data }) =>
      `${h.name} ${h.type} ${h.mode?.toString(8)} ${h.uid}:${h.gid} ${h.mtime?.toISOString()} ${h.size} ${h.linkname ?? ''} ${digestOf(data).slice(7, 19)}`);
  const [la, lb] = await Promise.all([lines(a), lines(b)]);
  const only = (x: string[], y: string[]): string[] => x.filter((l) => !y.includes(l));
  return `in the blob only:\n  ${only(la, lb).join('\n  ')}\nin the layer directory only:\n  ${only(lb, la).join('\n  ')}`;
}

/** Every xattr under dir as "path name=value" lines (getfattr's dump), without the file headers. */
function xattrs(dir: string): string[] {
  const out = execFileSync('getfattr', ['-R', '-h', '--absolute-names', '-d', '-m', '-', dir], { encoding: 'utf8' });
  const lines: string[] = [];
  let file = '';
  for (const line of out.split('\n')) {
    if (line.startsWith('# file: ')) file = line.slice(8);
    else if (line.trim() !== '') lines.push(`${file.slice(dir.length) || '/'} ${line}`);
  }
  return lines;
}

/**
 * Leaves a unix socket file named `name` in dir: a child listens on it and exits without closing
 * it (closing would unlink it). Relative, from dir, as socket paths are limited to 108 bytes.
 */
function makeSocket(dir: string, name: string): void {
  execFileSync(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(name)}, () => process.exit(0))`], { cwd: dir });
}

describe('commit --rm adopts the upper directory as the layer', () => {
  it('gives a layer that reproduces its own tar, keeps opaque markers only, and holds the changes', async () => {
    const ctr = await from(env);
    // A copied-up file (overlay may mark it with origin), a deleted file (whiteout), an opaque
    // directory, a new tree with a hardlink and a symlink.
    await sh(
      env,
      ctr,
      'echo appended >> /etc/passwd && rm /bin/ls && rm -rf /srv && mkdir /srv && echo fresh > /srv/new && ' +
        'mkdir -p /data/sub && echo one > /data/sub/a && ln /data/sub/a /data/b && ln -s sub/a /data/c && chmod 4755 /data/sub/a',
    );
    const merged = await mountPath(env, ctr);
    // A socket left behind (a runtime artefact); no tar can hold it.
    makeSocket(join(merged, 'data'), 'sock');
    expect(statSync(join(merged, 'data', 'sock')).isSocket()).toBe(true);
    const before = layerDirs();
    const id = await env.bargeOk(['commit', '-q', '--rm', ctr, 'adopted']);
    expect(id).toMatch(/^[0-9a-f]{64}$/);

    const added = [...layerDirs()].filter((d) => !before.has(d));
    expect(added).toHaveLength(1);
    const dir = join(env.root, 'layers', added[0]!, 'diff');
    // Only the opaque marker of the recreated /srv survives; origin, impure and the like are gone.
    expect(xattrs(dir)).toEqual(['/srv trusted.overlay.opaque="y"']);
    expect(existsSync(join(dir, 'data', 'sock'))).toBe(false);
    expect(statSync(join(dir, 'bin', 'ls')).isCharacterDevice()).toBe(true);

    const ids = await diffIds('adopted');
    // The blob is the tar the diff id names, and the layer directory gives that tar again.
    const blob = await readFile(join(env.root, 'blobs', 'sha256', ids.at(-1)!.slice(7)));
    expect(digestOf(blob)).toBe(ids.at(-1));
    const again = await tarOf(dir);
    expect(digestOf(again), digestOf(again) === ids.at(-1) ? '' : await tarDifferences(blob, again)).toBe(ids.at(-1));

    // Mount targets the runtime made for RUN (busybox has no /etc/hosts) are not part of the layer.
    expect(existsSync(join(dir, 'etc', 'hosts'))).toBe(false);
    // The container is gone, and the image has the changes.
    const list = await env.bargeOk(['containers', '--format', '{{.ContainerName}}']);
    expect(list.split('\n')).not.toContain(ctr);
    const out = await runInImage(env, 'adopted', ['sh', '-c', 'tail -1 /etc/passwd; ls /srv; cat /data/b /data/c; stat -c %a /data/sub/a; test -e /bin/ls || echo no-ls']);
    expect(out.split('\n')).toEqual(['appended', 'new', 'one', 'one', '4755', 'no-ls']);
    await expectStoreClean(env);
  });

  it('gives the same layer as a plain commit of the same container', async () => {
    const ctr = await from(env);
    await sh(env, ctr, 'mkdir -p /app/x && echo same > /app/x/f && rm /bin/cat');
    await env.bargeOk(['commit', '-q', ctr, 'plain']);
    // Committed again, now adopting the upper dir: the store already has this layer, so it is reused.
    await env.bargeOk(['commit', '-q', '--rm', ctr, 'adopted2']);
    expect(await diffIds('adopted2')).toEqual(await diffIds('plain'));
    const list = await env.bargeOk(['containers', '--format', '{{.ContainerName}}']);
    expect(list.split('\n')).not.toContain(ctr);
    expect(await runInImage(env, 'adopted2', ['sh', '-c', 'cat /app/x/f; test -e /bin/cat || echo no-cat'])).toBe('same\nno-cat');
    await expectStoreClean(env);
  });

  it('system check finds a container whose upper dir a killed commit --rm had already taken, and --repair removes it', async () => {
    const before = new Set(readdirSync(join(env.root, 'containers')));
    const ctr = await from(env);
    const id = readdirSync(join(env.root, 'containers')).find((d) => !before.has(d))!;
    // The state a kill -9 leaves between moving the upper dir into staging and removing the container.
    renameSync(join(env.root, 'containers', id, 'upper'), join(env.tmp, `taken-${id}`));
    const out = await expectCheckFindsAndRepairs(env, new RegExp(`container ${ctr} is missing its layers or directory`));
    expect(out).toContain(ctr);
    const list = await env.bargeOk(['containers', '--format', '{{.ContainerName}}']);
    expect(list.split('\n')).not.toContain(ctr);
  });

  it('a commit --rm whose image cannot be written leaves no container behind with a missing upper dir', async () => {
    const ctr = await from(env);
    await sh(env, ctr, 'echo x > /x');
    const r = await env.barge(['commit', '-q', '--rm', ctr, 'not a valid name!']);
    expect(r.code, describeFailure(['commit', '--rm'], r)).not.toBe(0);
    // Either the name was refused before anything happened (the container is intact), or the
    // container went with its upper dir; never a container that cannot be mounted.
    const list = (await env.bargeOk(['containers', '--format', '{{.ContainerName}}'])).split('\n');
    if (list.includes(ctr)) {
      expect(await env.bargeOk(['run', ctr, '--', 'cat', '/x'])).toBe('x');
      await env.bargeOk(['rm', ctr]);
    }
    await expectStoreClean(env);
  });
});
