// Local image management without any registry: import, images, tag/untag, rmi, history, inspect.
import { createReadStream, createWriteStream, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeFailure, makeEnv, type Env } from '../helpers.ts';
import { busyboxRootfsTar, importBusybox } from '../fixtures.ts';
import { bargeWithFiles, expectStoreClean, imageIds, sha256Hex } from './lib.ts';

let env: Env;
let busyboxId = '';
let rootfsTar = '';

beforeAll(async () => {
  env = await makeEnv();
  rootfsTar = await busyboxRootfsTar();
  busyboxId = (await importBusybox(env)).replace(/^sha256:/, '');
});
afterAll(async () => {
  await env?.cleanup();
});

interface InspectedImage {
  FromImageID: string;
  OCIv1: { config?: { Cmd?: string[]; Env?: string[]; Labels?: Record<string, string> }; rootfs: { diff_ids: string[] }; history?: { comment?: string; created_by?: string }[] };
  Docker: { config?: { Cmd?: string[] } };
}

async function inspectImage(name: string): Promise<InspectedImage> {
  return JSON.parse(await env.bargeOk(['inspect', '--type', 'image', name])) as InspectedImage;
}

/** Data rows of the default table as [repository, tag, id] (header checked separately). */
function tableRows(out: string): string[][] {
  return out.split('\n').slice(1).filter((l) => l.trim() !== '').map((l) => l.trim().split(/\s{2,}/));
}

describe('import', () => {
  it('prints sha256:<id> and the id is the config digest of an image with the tar as its one layer', async () => {
    expect(busyboxId).toMatch(/^[0-9a-f]{64}$/);
    const img = await inspectImage('busybox');
    expect(img.FromImageID).toBe(busyboxId);
    // diff_id is the digest of the uncompressed tar exactly as given.
    expect(img.OCIv1.rootfs.diff_ids).toEqual([`sha256:${sha256Hex(readFileSync(rootfsTar))}`]);
    const manifest = JSON.parse(await env.bargeOk(['inspect', '--type', 'manifest', 'busybox'])) as { config: { digest: string } };
    expect(manifest.config.digest).toBe(`sha256:${busyboxId}`);
  });

  it('reads a gzip tar from stdin ("-") and applies --change and --message', async () => {
    const gz = join(env.tmp, 'rootfs.tar.gz');
    await pipeline(createReadStream(rootfsTar), createGzip(), createWriteStream(gz));
    const args = ['import', '--change', 'CMD ["x"]', '--change', 'ENV FOO=bar', '--change', 'LABEL k=v', '--message', 'imported for a test', '-', 'fromstdin'];
    const r = await bargeWithFiles(env, args, { stdin: gz });
    expect(r.code, describeFailure(args, r)).toBe(0);
    const out = r.stdout;
    expect(out.trim()).toMatch(/^sha256:[0-9a-f]{64}$/);
    const img = await inspectImage('fromstdin');
    expect(img.OCIv1.config?.Cmd).toEqual(['x']);
    expect(img.OCIv1.config?.Env).toContain('FOO=bar');
    expect(img.OCIv1.config?.Labels).toEqual({ k: 'v' });
    expect(img.Docker.config?.Cmd).toEqual(['x']);
    expect(img.OCIv1.history?.at(-1)?.comment).toBe('imported for a test');
    // Compression is only transport: the layer is the same as the plain tar's.
    expect(img.OCIv1.rootfs.diff_ids).toEqual([`sha256:${sha256Hex(readFileSync(rootfsTar))}`]);
  });

  it('without a name makes a dangling image', async () => {
    const before = await imageIds(env);
    const out = await env.bargeOk(['import', '-q', rootfsTar]);
    const id = out.trim().replace(/^sha256:/, '');
    expect(before).not.toContain(id);
    const dangling = await env.bargeOk(['images', '--filter', 'dangling=true', '--format', '{{.ID}} {{.Repository}}:{{.Tag}}', '--no-trunc']);
    // Like Podman, untruncated ids carry their algorithm.
    expect(dangling.split('\n')).toContain(`sha256:${id} <none>:<none>`);
    await env.bargeOk(['rmi', id]);
  });

  it('-q prints only the id; a missing file fails with Error:', async () => {
    const r = await env.barge(['import', '-q', rootfsTar, 'quiet']);
    expect(r.code, describeFailure(['import'], r)).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toMatch(/^sha256:[0-9a-f]{64}$/);
    const bad = await env.barge(['import', join(env.tmp, 'no-such.tar'), 'nope']);
    expect(bad.code).toBe(125);
    expect(bad.stderr).toMatch(/^Error: .*no-such\.tar/m);
    // The failed import must not leave its staging directory behind.
    await expectStoreClean(env);
    await env.bargeOk(['rmi', 'quiet']);
  });

  it('a truncated tar fails and leaves the store clean', async () => {
    const cut = join(env.tmp, 'truncated.tar');
    await writeFile(cut, readFileSync(rootfsTar).subarray(0, 300_000));
    const before = await imageIds(env);
    const r = await env.barge(['import', cut, 'truncated']);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/^Error: .*truncated/m);
    expect(await imageIds(env)).toEqual(before);
    await expectStoreClean(env);
  });

  it('refuses an unknown --change instruction', async () => {
    const r = await env.barge(['import', '--change', 'RUN rm -rf /', rootfsTar, 'badchange']);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/Error: .*RUN/);
    expect(await env.barge(['inspect', '--type', 'image', 'badchange'])).toMatchObject({ code: 125 });
  });
});

describe('images', () => {
  it('prints the Podman/Buildah table', async () => {
    const out = await env.bargeOk(['images']);
    expect(out.split('\n')[0]).toMatch(/^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE\s*$/);
    expect(tableRows(out).some((r) => r[0] === 'localhost/busybox' && r[1] === 'latest' && r[2] === busyboxId.slice(0, 12))).toBe(true);
  });

  it('--format with a Go template', async () => {
    const out = await env.bargeOk(['images', '--format', '{{.ID}} {{.Repository}}:{{.Tag}}']);
    expect(out.split('\n')).toContain(`${busyboxId.slice(0, 12)} localhost/busybox:latest`);
  });

  it('--json and --format json give parseable JSON with the full id and names', async () => {
    const json = JSON.parse(await env.bargeOk(['images', '--json'])) as { id: string; names: string[] }[];
    expect(json.find((i) => i.id === busyboxId)?.names).toContain('localhost/busybox:latest');
    const fmt = JSON.parse(await env.bargeOk(['images', '--format', 'json'])) as Record<string, unknown>[];
    expect(Array.isArray(fmt)).toBe(true);
    expect(JSON.stringify(fmt)).toContain(busyboxId);
  });

  it('--filter reference=, label=k=v and dangling=true', async () => {
    const byRef = await env.bargeOk(['images', '-q', '--no-trunc', '--filter', 'reference=busybox']);
    expect(byRef.split('\n')).toEqual([`sha256:${busyboxId}`]);
    const byGlob = await env.bargeOk(['images', '-q', '--no-trunc', '--filter', 'reference=localhost/busy*:latest']);
    expect(byGlob.split('\n')).toEqual([`sha256:${busyboxId}`]);
    const none = await env.bargeOk(['images', '-q', '--filter', 'reference=nothing-like-this']);
    expect(none).toBe('');
    const byLabel = await env.bargeOk(['images', '--format', '{{.Repository}}', '--filter', 'label=k=v']);
    expect(byLabel.split('\n')).toEqual(['localhost/fromstdin']);
    const wrongValue = await env.bargeOk(['images', '-q', '--filter', 'label=k=other']);
    expect(wrongValue).toBe('');
    const dangling = await env.bargeOk(['images', '-q', '--filter', 'dangling=true']);
    expect(dangling).toBe('');
    const notDangling = await env.bargeOk(['images', '-q', '--no-trunc', '--filter', 'dangling=false']);
    expect(notDangling.split('\n')).toContain(`sha256:${busyboxId}`);
  });

  it('an unknown filter is an error', async () => {
    const r = await env.barge(['images', '--filter', 'colour=blue']);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/^Error: .*colour/m);
  });

  it('-q prints each id once, 12 hex; --no-trunc prints 64', async () => {
    await env.bargeOk(['tag', 'busybox', 'twice']);
    const q = (await env.bargeOk(['images', '-q'])).split('\n');
    expect(q.filter((l) => l === busyboxId.slice(0, 12))).toHaveLength(1);
    const full = await env.bargeOk(['images', '--no-trunc', '--noheading']);
    expect(full).toContain(busyboxId);
    await env.bargeOk(['untag', 'busybox', 'twice']);
  });

  it('--digests adds a DIGEST column with the manifest digest', async () => {
    const out = await env.bargeOk(['images', '--digests', 'busybox']);
    const [header, row] = out.split('\n');
    expect(header).toMatch(/^REPOSITORY\s+TAG\s+DIGEST\s+IMAGE ID\s+CREATED\s+SIZE\s*$/);
    const manifest = await env.bargeOk(['inspect', '--type', 'image', '--format', '{{.Manifest}}', 'busybox']);
    expect(row).toContain(`sha256:${sha256Hex(manifest)}`);
  });

  it('--noheading drops the header line only', async () => {
    const out = await env.bargeOk(['images', '--noheading']);
    expect(out).not.toMatch(/REPOSITORY/);
    expect(out.split('\n').some((l) => l.startsWith('localhost/busybox'))).toBe(true);
    // A --format without "table" has no header, so nothing is dropped.
    expect(await env.bargeOk(['images', '--noheading', '--format', '{{.Repository}}', 'busybox'])).toBe('localhost/busybox');
  });

  it('IMAGE argument restricts the listing', async () => {
    const out = await env.bargeOk(['images', '--format', '{{.Repository}}', 'busybox']);
    expect(out).toBe('localhost/busybox');
  });
});

describe('tag and untag', () => {
  it('short names become localhost/NAME:latest, full names are kept', async () => {
    await env.bargeOk(['tag', 'busybox', 'short', 'quay.io/example/full:v2', 'other:tagged']);
    const names = (await env.bargeOk(['images', '--format', '{{.Repository}}:{{.Tag}}', '--filter', `id=${busyboxId}`])).split('\n');
    expect(names).toEqual(expect.arrayContaining(['localhost/busybox:latest', 'localhost/short:latest', 'quay.io/example/full:v2', 'localhost/other:tagged']));
  });

  it('a tag is usable to find the image', async () => {
    const id = await env.bargeOk(['inspect', '--type', 'image', '--format', '{{.FromImageID}}', 'short']);
    expect(id).toBe(busyboxId);
  });

  it('untag removes given names; an unknown name is an error', async () => {
    await env.bargeOk(['untag', busyboxId, 'short', 'quay.io/example/full:v2']);
    const names = (await env.bargeOk(['images', '--format', '{{.Repository}}:{{.Tag}}', '--filter', `id=${busyboxId}`])).split('\n');
    expect(names).not.toContain('localhost/short:latest');
    expect(names).not.toContain('quay.io/example/full:v2');
    expect(names).toContain('localhost/busybox:latest');
    const r = await env.barge(['untag', 'busybox', 'never-was']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Error: .*never-was/);
    await env.bargeOk(['untag', 'busybox', 'other:tagged']);
  });

  it('tag of an unknown image and an invalid name fail', async () => {
    const r = await env.barge(['tag', 'no-such-image', 'x']);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/Error: .*no-such-image/);
    const bad = await env.barge(['tag', 'busybox', 'UPPER/Case']);
    expect(bad.code).toBe(125);
    expect(bad.stderr).toContain('Error:');
  });
});

describe('rmi', () => {
  it('of one of several names only untags', async () => {
    await env.bargeOk(['tag', 'busybox', 'alias']);
    await env.bargeOk(['rmi', 'alias']);
    expect(await imageIds(env)).toContain(busyboxId);
    const r = await env.barge(['inspect', '--type', 'image', 'alias']);
    expect(r.code).not.toBe(0);
  });

  it('of an image used by a working container fails with 125 and names the container', async () => {
    const ctr = await env.bargeOk(['from', '--name', 'rmi-user', 'busybox']);
    const r = await env.barge(['rmi', 'busybox']);
    expect(r.code, describeFailure(['rmi', 'busybox'], r)).toBe(125);
    expect(r.stderr).toMatch(/^Error: .*in use.*rmi-user/m);
    expect(await imageIds(env)).toContain(busyboxId);
    await env.bargeOk(['rm', ctr]);
  });

  it('-f removes the container too', async () => {
    const id = (await env.bargeOk(['import', '-q', rootfsTar, 'forced'])).replace(/^sha256:/, '');
    // Same tar, different created time: a distinct image from busybox.
    expect(id).not.toBe(busyboxId);
    await env.bargeOk(['from', '--name', 'forced-user', 'forced']);
    const out = await env.bargeOk(['rmi', '-f', 'forced']);
    expect(out).toContain(id);
    expect(await imageIds(env)).not.toContain(id);
    const ctrs = await env.bargeOk(['containers', '--format', '{{.ContainerName}}']);
    expect(ctrs.split('\n')).not.toContain('forced-user');
    await expectStoreClean(env);
  });

  it('of an unknown image fails with Error:', async () => {
    const r = await env.barge(['rmi', 'never-existed']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/^Error: .*never-existed/m);
  });

  it('--prune removes only dangling images', async () => {
    const id = (await env.bargeOk(['import', '-q', rootfsTar])).replace(/^sha256:/, '');
    const out = await env.bargeOk(['rmi', '--prune']);
    expect(out.split('\n')).toContain(id);
    const ids = await imageIds(env);
    expect(ids).not.toContain(id);
    expect(ids).toContain(busyboxId);
  });
});

describe('history', () => {
  let committed = '';
  beforeAll(async () => {
    const ctr = await env.bargeOk(['from', '--name', 'hist', 'busybox']);
    await writeFile(join(env.tmp, 'marker'), 'marker\n');
    await env.bargeOk(['copy', ctr, join(env.tmp, 'marker'), '/marker']);
    await env.bargeOk(['config', '--port', '8080/tcp', '--created-by', 'COPY marker /marker', ctr]);
    committed = (await env.bargeOk(['commit', '-q', '--rm', ctr, 'withhistory'])).replace(/^sha256:/, '');
  });

  it('has one row per history entry, newest first, the top one with the image id', async () => {
    const out = await env.bargeOk(['history', 'withhistory']);
    const lines = out.split('\n');
    expect(lines[0]).toMatch(/^ID\s+CREATED\s+CREATED BY\s+SIZE\s+COMMENT\s*$/);
    expect(lines).toHaveLength(3);
    expect(lines[1]).toMatch(new RegExp(`^${committed.slice(0, 12)}\\s`));
    expect(lines[1]).toContain('COPY marker /marker');
    expect(lines[2]).toMatch(/^<missing>\s/);
    expect(lines[2]).toContain('ADD file:');
  });

  it('--format and -q', async () => {
    const fmt = await env.bargeOk(['history', '--format', '{{.ID}}|{{.CreatedBy}}', '--no-trunc', 'withhistory']);
    expect(fmt.split('\n')).toEqual([`${committed}|COPY marker /marker`, expect.stringMatching(/^<missing>\|\/bin\/sh -c #\(nop\) ADD file:[0-9a-f]{64} in \/$/)]);
    const q = await env.bargeOk(['history', '-q', 'withhistory']);
    expect(q.split('\n')).toEqual([committed.slice(0, 12), '<missing>']);
  });

  it('of an unknown image fails', async () => {
    const r = await env.barge(['history', 'nothing-here']);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/^Error: .*nothing-here/m);
  });

  describe('inspect --type image', () => {
    it('prints Buildah JSON with OCIv1 and Docker views', async () => {
      const img = await inspectImage('withhistory');
      expect(img.FromImageID).toBe(committed);
      expect(img.OCIv1.rootfs.diff_ids).toHaveLength(2);
      expect(img.Docker).toBeTypeOf('object');
    });

    it('--format {{ .OCIv1.Config.ExposedPorts }} prints what Buildah prints', async () => {
      // buildah 1.28: map[8080/tcp:{}] — the value is a Go struct{}, not a map.
      const out = await env.bargeOk(['inspect', '--type', 'image', '--format', '{{ .OCIv1.Config.ExposedPorts }}', 'withhistory']);
      expect(out).toBe('map[8080/tcp:{}]');
    });

    it('of an unknown image fails with Error:', async () => {
      const r = await env.barge(['inspect', '--type', 'image', 'nothing-here']);
      expect(r.code).toBe(125);
      expect(r.stderr).toMatch(/^Error: .*nothing-here/m);
    });
  });
});

describe('command line', () => {
  const commands: string[][] = [['import'], ['images'], ['tag'], ['untag'], ['rmi'], ['history'], ['inspect'], ['save'], ['load'], ['push'], ['pull'], ['copy']];

  it.each(commands)('%s --help prints usage and exits 0', async (cmd) => {
    const r = await env.barge([cmd, '--help']);
    expect(r.code, describeFailure([cmd, '--help'], r)).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^Usage: barge ${cmd}\\b`, 'm'));
  });

  it.each(commands)('%s with an unknown flag exits 125 with Error:', async (cmd) => {
    const r = await env.barge([cmd, '--no-such-flag', 'x']);
    expect(r.code, describeFailure([cmd, '--no-such-flag'], r)).toBe(125);
    expect(r.stderr).toMatch(/^Error: .*--no-such-flag/m);
  });

  it('the store is consistent after all of the above', async () => {
    await expectStoreClean(env);
  });
});

describe('rmi --all', () => {
  it('removes every image and leaves a clean, empty store', async () => {
    expect((await imageIds(env)).length).toBeGreaterThan(1);
    await env.bargeOk(['rmi', '--all']);
    expect(await imageIds(env)).toEqual([]);
    await expectStoreClean(env);
  });
});
