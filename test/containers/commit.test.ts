// `commit` of a container made by run or create, as Podman commits one: its changes become a layer,
// the settings it ran with become the image's config, and --change, --message, --author, --pause,
// --include-volumes and --rm do what Podman's do.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Env } from '../helpers.ts';
import { containerSuite, expectCode, NO_CGROUPS, NO_FREEZER, until } from './lib.ts';

const suite = containerSuite();
let env: Env;
beforeAll(() => {
  env = suite();
});

async function imageField(ref: string, template: string): Promise<string> {
  return env.bargeOk(['inspect', '--type', 'image', '--format', template, ref]);
}

/** The paths in the top layer of an image written to an oci: directory. */
function topLayerPaths(dir: string): string[] {
  const blob = (digest: string): string => join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length));
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const manifest = JSON.parse(readFileSync(blob(index.manifests[0]!.digest), 'utf8')) as { layers: { digest: string }[] };
  return execFileSync('tar', ['-tf', blob(manifest.layers.at(-1)!.digest)], { encoding: 'utf8' }).split('\n').filter((l) => l !== '').sort();
}

describe('commit of a container of run or create', () => {
  it('takes its changes and the settings it ran with; --change, --message and --author apply; the mount targets stay out', async () => {
    await env.bargeOk([
      'run', '--name', 'pc', '-e', 'FOO=bar', '-w', '/work', '-u', '0:0', '--label', 'ran=yes', '-v', `${env.tmp}:/data`, 'busybox',
      'sh', '-c', 'echo hello > /work/f && rm /bin/ls',
    ]);
    const id = await env.bargeOk(['commit', '-q', '-m', 'from pc', '-a', 'Jane Doe', '-c', 'LABEL extra=1', '-c', 'EXPOSE=8080', '--include-volumes', 'pc', 'pcimg']);
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.parse(await imageField('pcimg', '{{json .OCIv1.Config.Cmd}}'))).toEqual(['sh', '-c', 'echo hello > /work/f && rm /bin/ls']);
    expect(await imageField('pcimg', '{{.OCIv1.Config.WorkingDir}} {{.OCIv1.Config.User}} {{.OCIv1.Author}}')).toBe('/work 0:0 Jane Doe');
    expect(JSON.parse(await imageField('pcimg', '{{json .OCIv1.Config.Env}}'))).toContain('FOO=bar');
    expect(JSON.parse(await imageField('pcimg', '{{json .OCIv1.Config.Labels}}'))).toMatchObject({ ran: 'yes', extra: '1' });
    expect(JSON.parse(await imageField('pcimg', '{{json .OCIv1.Config.ExposedPorts}}'))).toEqual({ '8080/tcp': {} });
    expect(JSON.parse(await imageField('pcimg', '{{json .OCIv1.Config.Volumes}}'))).toEqual({ '/data': {} });
    const history = JSON.parse(await imageField('pcimg', '{{json .OCIv1.History}}')) as { comment?: string; author?: string }[];
    expect(history.at(-1)).toMatchObject({ comment: 'from pc', author: 'Jane Doe' });

    // The image holds the changes: the file, and the deletion.
    const out = await env.bargeOk(['run', '--rm', '--entrypoint', 'sh', 'pcimg', '-c', 'cat /work/f; test -e /bin/ls || echo no-ls; echo $FOO']);
    expect(out.split('\n')).toEqual(['hello', 'no-ls', 'bar']);

    // The files the runtime made to mount on (/etc/hostname, /run/.containerenv, /data) are not in the layer.
    const dir = join(env.tmp, 'pc-oci');
    await env.bargeOk(['commit', '-q', 'pc', `oci:${dir}`]);
    const paths = topLayerPaths(dir);
    expect(paths).toEqual(expect.arrayContaining(['work/f', 'bin/.wh.ls']));
    for (const p of ['etc/hostname', 'etc/hosts', 'run/.containerenv', 'data/']) expect(paths).not.toContain(p);
    await env.bargeOk(['rm', 'pc']);
  });

  it('--pause freezes a running container for the commit, which then runs on; --rm removes a stopped one only', async () => {
    // Written beside and renamed over: a freeze between the truncation and the write of a plain
    // `> /count` would commit an empty file (seen once in CI under load).
    await env.bargeOk(['run', '-d', '--name', 'live', 'busybox', 'sh', '-c', 'i=0; while true; do i=$((i+1)); echo $i > /count.new; mv /count.new /count; sleep 0.1; done']);
    await until('the counter to start', async () => (await env.barge(['exec', 'live', 'cat', '/count'])).stdout.trim() !== '');
    if (NO_CGROUPS) {
      // No freezer: Podman's commit fails to pause, and a commit without --pause takes the running container.
      const id = await env.bargeOk(['inspect', '--format', '{{.Id}}', 'live']);
      const frozen = await env.barge(['commit', '-q', '--pause', 'live', 'liveimg']);
      expectCode(frozen, 125);
      expect(frozen.stderr).toBe(`Error: pausing container "${id}" to commit: ${NO_FREEZER}\n`);
      expectCode(await env.barge(['image', 'exists', 'liveimg']), 1);
    }
    await env.bargeOk(['commit', '-q', ...(NO_CGROUPS ? [] : ['--pause']), 'live', 'liveimg']);
    expect(Number(await env.bargeOk(['run', '--rm', 'liveimg', 'cat', '/count']))).toBeGreaterThan(0);
    expect(await env.bargeOk(['ps', '--filter', 'name=^live$', '--format', '{{.State}}'])).toMatch(/^Up .* ago$/);
    const before = Number(await env.bargeOk(['exec', 'live', 'cat', '/count']));
    await until('the counter to go on after the commit', async () => Number(await env.bargeOk(['exec', 'live', 'cat', '/count'])) > before);

    const r = await env.barge(['commit', '-q', '--rm', 'live', 'liveimg2']);
    expectCode(r, 125);
    expect(r.stderr).toMatch(/Error: .*running/);
    await env.bargeOk(['stop', '-t', '0', 'live']);
    await env.bargeOk(['commit', '-q', '--rm', 'live', 'liveimg3']);
    expectCode(await env.barge(['container', 'inspect', 'live']), 125);
  });

  it('gives clear errors for an unknown container and a bad --change', async () => {
    const r = await env.barge(['commit', 'no-such-container', 'x']);
    expectCode(r, 125);
    expect(r.stderr).toMatch(/^Error: .*no-such-container/m);
    await env.bargeOk(['create', '--name', 'bad', 'busybox', 'true']);
    const b = await env.barge(['commit', '-c', 'FROB x', 'bad', 'x']);
    expectCode(b, 125);
    expect(b.stderr).toMatch(/Error: --change: instruction FROB is not supported/);
    await env.bargeOk(['rm', 'bad']);
  });
});
