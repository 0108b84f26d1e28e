// push/pull/copy between local transports and the store, skopeo in both directions, progress output.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeFailure, freshEnvs, makeEnv, runInImage, type Env } from '../helpers.ts';
import { commitMarkerImage, describeTool, expectStoreClean, imageIds, readJson, runTool } from './lib.ts';

let env: Env;
let imageId = '';
const NAME = 'localhost/moved:v1';
const MARKER = 'moved between transports\n';
const { freshEnv, cleanupFreshEnvs } = freshEnvs();

beforeAll(async () => {
  env = await makeEnv();
  imageId = await commitMarkerImage(env, { ctr: 'mv', name: NAME, marker: MARKER, config: ['--label', 'made.by=barge'] });
});
afterAll(async () => {
  await cleanupFreshEnvs();
  await env?.cleanup();
});

/** The destination and source spelling of each local transport, under dir. */
function transports(dir: string): [string, string, string][] {
  return [
    ['oci', `oci:${join(dir, 'layout')}:v1`, `oci:${join(dir, 'layout')}:v1`],
    ['oci-archive', `oci-archive:${join(dir, 'image-oci.tar')}`, `oci-archive:${join(dir, 'image-oci.tar')}`],
    ['docker-archive', `docker-archive:${join(dir, 'image-docker.tar')}`, `docker-archive:${join(dir, 'image-docker.tar')}`],
    ['dir', `dir:${join(dir, 'dirimage')}`, `dir:${join(dir, 'dirimage')}`],
  ];
}

describe('push to each transport and pull back into a fresh store', () => {
  it.each(['oci', 'oci-archive', 'docker-archive', 'dir'])('%s', async (transport) => {
    const [, dst, src] = transports(env.tmp).find((t) => t[0] === transport)!;
    const push = await env.barge(['push', NAME, dst]);
    expect(push.code, describeFailure(['push', NAME, dst], push)).toBe(0);
    const e = await freshEnv();
    const pull = await e.barge(['pull', src]);
    expect(pull.code, describeFailure(['pull', src], pull)).toBe(0);
    expect(pull.stdout.trim().replace(/^sha256:/, '')).toBe(imageId);
    expect(await imageIds(e)).toEqual([imageId]);
    expect(await runInImage(e, imageId, ['cat', '/marker'])).toBe(MARKER.trimEnd());
    await expectStoreClean(e);
  });

  it('two tags in one oci layout pull back as two different images', async () => {
    const layout = join(env.tmp, 'two-tags');
    const busyboxId = await env.bargeOk(['inspect', '--type', 'image', '--format', '{{.FromImageID}}', 'busybox']);
    await env.bargeOk(['push', '-q', NAME, `oci:${layout}:one`]);
    await env.bargeOk(['push', '-q', 'busybox', `oci:${layout}:two`]);
    const e = await freshEnv();
    expect((await e.bargeOk(['pull', '-q', `oci:${layout}:one`])).replace(/^sha256:/, '')).toBe(imageId);
    expect((await e.bargeOk(['pull', '-q', `oci:${layout}:two`])).replace(/^sha256:/, '')).toBe(busyboxId);
    // Without a tag the choice is ambiguous: an error that lists the tags, not a guess.
    const r = await e.barge(['pull', '-q', `oci:${layout}`]);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/^Error: .*one.*two/m);
    expect((await imageIds(e)).sort()).toEqual([imageId, busyboxId].sort());
  });

  it('push --digestfile writes the manifest digest of what was pushed', async () => {
    const layout = join(env.tmp, 'digestfile-layout');
    const df = join(env.tmp, 'digest.txt');
    await env.bargeOk(['push', '-q', '--digestfile', df, NAME, `oci:${layout}:d`]);
    const index = await readJson<{ manifests: { digest: string }[] }>(join(layout, 'index.json'));
    expect((await readFile(df, 'utf8')).trim()).toBe(index.manifests[0]!.digest);
  });

  it('push to an unknown transport or of an unknown image fails with Error:', async () => {
    const r = await env.barge(['push', NAME, `nosuch:${join(env.tmp, 'x')}`]);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/^Error: .*nosuch/m);
    const u = await env.barge(['push', 'no-such-image', `oci:${join(env.tmp, 'never')}`]);
    expect(u.code).toBe(125);
    expect(u.stderr).toMatch(/^Error: .*no-such-image/m);
    expect(existsSync(join(env.tmp, 'never'))).toBe(false);
  });

  it('pull of a missing layout fails with Error: and leaves the store clean', async () => {
    const e = await freshEnv();
    const r = await e.barge(['pull', `oci:${join(env.tmp, 'absent-layout')}`]);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain('Error:');
    expect(await imageIds(e)).toEqual([]);
    await expectStoreClean(e);
  });
});

describe('copy SRC DST (skopeo style)', () => {
  it('chains oci → dir → oci-archive → docker-archive → containers-storage → oci and keeps the config', async () => {
    const d = join(env.tmp, 'chain');
    const steps: [string, string][] = [
      [`containers-storage:${NAME}`, `oci:${d}/a:one`],
      [`oci:${d}/a:one`, `dir:${d}/b`],
      [`dir:${d}/b`, `oci-archive:${d}/c.tar`],
      [`oci-archive:${d}/c.tar`, `docker-archive:${d}/d.tar:chain/copied:v2`],
      [`docker-archive:${d}/d.tar`, 'containers-storage:localhost/copied:v3'],
      ['containers-storage:localhost/copied:v3', `oci:${d}/e:last`],
    ];
    for (const [src, dst] of steps) {
      const r = await env.barge(['copy', src, dst]);
      expect(r.code, describeFailure(['copy', src, dst], r)).toBe(0);
    }
    const copied = await env.bargeOk(['inspect', '--type', 'image', '--format', '{{.FromImageID}}', 'localhost/copied:v3']);
    expect(copied).toBe(imageId);
    const e = await freshEnv();
    expect((await e.bargeOk(['pull', '-q', `oci:${d}/e:last`])).replace(/^sha256:/, '')).toBe(imageId);
  });

  it('copy between two transports does not touch the store', async () => {
    const before = await imageIds(env);
    const d = join(env.tmp, 'nostore');
    await env.bargeOk(['copy', '-q', `containers-storage:${NAME}`, `oci:${d}/src:x`]);
    await env.bargeOk(['copy', '-q', `oci:${d}/src:x`, `oci-archive:${d}/out.tar`]);
    expect(await imageIds(env)).toEqual(before);
  });

  it('copy from a missing source fails with Error: and writes no destination', async () => {
    const d = join(env.tmp, 'missing');
    const r = await env.barge(['copy', `oci:${d}/none:x`, `oci-archive:${d}/out.tar`]);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain('Error:');
    expect(existsSync(join(d, 'out.tar'))).toBe(false);
  });
});

describe('skopeo interop', () => {
  it('skopeo inspect reads the oci layout barge pushed', async () => {
    const layout = join(env.tmp, 'for-skopeo');
    await env.bargeOk(['push', '-q', NAME, `oci:${layout}:sk`]);
    const args = ['inspect', `oci:${layout}:sk`];
    const r = await runTool('skopeo', args);
    expect(r.code, describeTool('skopeo', args, r)).toBe(0);
    const info = JSON.parse(r.stdout) as { Labels: Record<string, string>; Layers: string[]; Os: string };
    expect(info.Labels).toEqual({ 'made.by': 'barge' });
    expect(info.Layers).toHaveLength(2);
    expect(info.Os).toBe('linux');
    const cfg = await runTool('skopeo', ['inspect', '--config', `oci:${layout}:sk`]);
    expect(cfg.code, describeTool('skopeo', ['inspect', '--config'], cfg)).toBe(0);
    // --config prints the config re-encoded, so compare what matters rather than bytes.
    expect((JSON.parse(cfg.stdout) as { rootfs: { diff_ids: string[] } }).rootfs.diff_ids).toHaveLength(2);
  });

  it('a conversion to Docker schema2 writes the very manifest skopeo writes (same digest)', async () => {
    const layout = join(env.tmp, 'for-skopeo');
    const [mine, theirs] = [join(env.tmp, 'v2s2-barge'), join(env.tmp, 'v2s2-skopeo')];
    await env.bargeOk(['copy', '-q', '--format', 'v2s2', `oci:${layout}:sk`, `dir:${mine}`]);
    const args = ['copy', '-q', '-f', 'v2s2', `oci:${layout}:sk`, `dir:${theirs}`];
    const r = await runTool('skopeo', args);
    expect(r.code, describeTool('skopeo', args, r)).toBe(0);
    expect(readFileSync(join(mine, 'manifest.json'), 'utf8')).toBe(readFileSync(join(theirs, 'manifest.json'), 'utf8'));
  });

  it('skopeo copies barge layouts to every transport and barge pulls each back', async () => {
    const layout = join(env.tmp, 'for-skopeo');
    const d = join(env.tmp, 'skopeo-out');
    // skopeo, unlike barge, wants the parent directory to exist.
    await mkdir(d, { recursive: true });
    const dests = [
      `oci:${d}/layout:s1`,
      `dir:${d}/dir`,
      `docker-archive:${d}/da.tar:sk/img:t`,
      `oci-archive:${d}/oa.tar:t2`,
    ];
    for (const dst of dests) {
      const args = ['copy', '-q', `oci:${layout}:sk`, dst];
      const r = await runTool('skopeo', args);
      expect(r.code, describeTool('skopeo', args, r)).toBe(0);
    }
    // A docker v2s2 dir with gzip layers, which barge itself never writes to dir:.
    const v2s2 = ['copy', '-q', '--format', 'v2s2', `oci:${layout}:sk`, `dir:${d}/dir-v2s2`];
    const r = await runTool('skopeo', v2s2);
    expect(r.code, describeTool('skopeo', v2s2, r)).toBe(0);
    for (const src of [`oci:${d}/layout:s1`, `dir:${d}/dir`, `docker-archive:${d}/da.tar`, `oci-archive:${d}/oa.tar`, `dir:${d}/dir-v2s2`]) {
      const e = await freshEnv();
      const pull = await e.barge(['pull', '-q', src]);
      expect(pull.code, describeFailure(['pull', src], pull)).toBe(0);
      expect(pull.stdout.trim().replace(/^sha256:/, '')).toBe(imageId);
      expect(await imageIds(e)).toEqual([imageId]);
    }
  });

  it('a docker-archive written by skopeo keeps its RepoTag as the image name', async () => {
    const e = await freshEnv();
    await e.bargeOk(['load', '-q', '-i', join(env.tmp, 'skopeo-out', 'da.tar')]);
    const names = await e.bargeOk(['images', '--format', '{{.Repository}}:{{.Tag}}']);
    expect(names).toBe('docker.io/sk/img:t');
  });

  it('skopeo copy reads a dir: and docker-archive: that barge wrote', async () => {
    const d = join(env.tmp, 'barge-for-skopeo');
    await env.bargeOk(['push', '-q', NAME, `dir:${d}/dir`]);
    await env.bargeOk(['push', '-q', NAME, `docker-archive:${d}/da.tar`]);
    for (const src of [`dir:${d}/dir`, `docker-archive:${d}/da.tar`]) {
      const args = ['copy', '-q', src, `oci:${d}/check:x`];
      const r = await runTool('skopeo', args);
      expect(r.code, describeTool('skopeo', args, r)).toBe(0);
    }
    expect(readdirSync(join(d, 'check', 'blobs', 'sha256'))).toContain(imageId);
  });
});

describe('progress output', () => {
  it('pull and push print "Copying blob <12 hex> done" lines on stderr when it is not a terminal', async () => {
    const layout = join(env.tmp, 'progress');
    const push = await env.barge(['push', NAME, `oci:${layout}:p`]);
    expect(push.code, describeFailure(['push'], push)).toBe(0);
    const copying = push.stderr.split('\n').filter((l) => l.startsWith('Copying blob '));
    // Two layers (busybox and the marker), each once.
    expect(copying).toHaveLength(2);
    for (const l of copying) expect(l).toMatch(/^Copying blob [0-9a-f]{12} (done|skipped: already exists)$/);
    // As skopeo and podman label it.
    expect(push.stderr).toContain(`Copying config ${imageId.slice(0, 12)} done`);
    // Not a TTY: no cursor movement or redraws.
    expect(push.stderr).not.toContain('\x1b[');
    expect(push.stderr).toContain('Writing manifest to image destination');

    const e = await freshEnv();
    const pull = await e.barge(['pull', `oci:${layout}:p`]);
    expect(pull.code, describeFailure(['pull'], pull)).toBe(0);
    const lines = pull.stderr.split('\n').filter((l) => l.startsWith('Copying blob '));
    expect(lines).toHaveLength(2);
    for (const l of lines) expect(l).toMatch(/^Copying blob [0-9a-f]{12} done$/);
    expect(pull.stderr).not.toContain('\x1b[');
    // Progress is for people; the id on stdout is for scripts.
    expect(pull.stdout.trim().replace(/^sha256:/, '')).toBe(imageId);
  });

  it('-q prints no progress', async () => {
    const layout = join(env.tmp, 'quiet');
    const push = await env.barge(['push', '-q', NAME, `oci:${layout}:q`]);
    expect(push.code, describeFailure(['push', '-q'], push)).toBe(0);
    expect(push.stderr).toBe('');
    const e = await freshEnv();
    const pull = await e.barge(['pull', '-q', `oci:${layout}:q`]);
    expect(pull.code, describeFailure(['pull', '-q'], pull)).toBe(0);
    expect(pull.stderr).toBe('');
    const load = await e.barge(['load', '-q', '-i', join(env.tmp, 'image-docker.tar')]);
    expect(load.code, describeFailure(['load', '-q'], load)).toBe(0);
    expect(load.stderr).toBe('');
  });

  it('the store is consistent after all of the above', async () => {
    await expectStoreClean(env);
  });
});
