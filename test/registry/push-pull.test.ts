// docker:// against a real registry over plain http: push, pull and run, copy to and from oci:,
// registry to registry, list-tags, inspect (against skopeo's own), delete, short names,
// mirrors, blocked registries, policy.json, and interop with skopeo.
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeFailure, freshEnvs, runInImage, type Env } from '../helpers.ts';
import { busyboxEnv } from '../fixtures.ts';
import { describeTool, expectStoreClean, runTool } from '../images/lib.ts';
import { hermetic, startRegistry, type HermeticOptions, type Registry } from './registry.ts';

let reg: Registry;
let env: Env;
let imageId = '';
const { freshEnv, cleanupFreshEnvs } = freshEnvs();
const { setup, run, ok } = hermetic();

beforeAll(async () => {
  reg = await startRegistry();
  ({ env, imageId } = await busyboxEnv());
  await setup(env.tmp);
  await ok(env, ['push', '-q', '--tls-verify=false', 'busybox', `${reg.host}/test/bb:v1`]);
});

afterAll(async () => {
  await cleanupFreshEnvs();
  await env?.cleanup();
  await reg?.stop();
});

describe('push and pull', () => {
  it('pulls what it pushed into a fresh store and runs it', async () => {
    const e = await freshEnv();
    const r = await run(e, ['pull', '--tls-verify=false', `${reg.host}/test/bb:v1`]);
    expect(r.code, describeFailure(['pull'], r)).toBe(0);
    expect(r.stdout.trim().replace(/^sha256:/, '')).toBe(imageId);
    expect(r.stderr).toContain(`Trying to pull ${reg.host}/test/bb:v1...`);
    expect(r.stderr).toMatch(/Copying blob [0-9a-f]{12} done/);
    expect(await ok(e, ['images', '--format', '{{.Repository}}:{{.Tag}}'])).toBe(`${reg.host}/test/bb:v1`);
    expect(await runInImage(e, `${reg.host}/test/bb:v1`, ['echo', 'pulled and running'])).toBe('pulled and running');
    await expectStoreClean(e);
  });

  it('docker:// names and pulls by digest work too', async () => {
    const e = await freshEnv();
    await ok(e, ['pull', '-q', '--tls-verify=false', `docker://${reg.host}/test/bb:v1`]);
    const digest = JSON.parse(await ok(env, ['skopeo', 'inspect', '--tls-verify=false', `docker://${reg.host}/test/bb:v1`])).Digest as string;
    const e2 = await freshEnv();
    const id = await ok(e2, ['pull', '-q', '--tls-verify=false', `${reg.host}/test/bb@${digest}`]);
    expect(id.replace(/^sha256:/, '')).toBe(imageId);
  });

  it('refuses plain http unless told (TLS is verified by default)', async () => {
    const e = await freshEnv();
    const r = await run(e, ['pull', '-q', `${reg.host}/test/bb:v1`]);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain(`pinging container registry ${reg.host}`);
    expect(r.stderr).toContain('server gave HTTP response to HTTPS client');
  });

  it('a missing tag or repository is "manifest unknown"', async () => {
    const e = await freshEnv();
    const r = await run(e, ['pull', '-q', '--tls-verify=false', `${reg.host}/test/bb:nosuchtag`]);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/Error: initializing source docker:\/\/.*reading manifest nosuchtag in .*test\/bb: manifest unknown/);
    await expectStoreClean(e);
  });

  it('push --digestfile and a second push skips existing blobs', async () => {
    const df = join(env.tmp, 'digest');
    const r = await run(env, ['push', '--tls-verify=false', '--digestfile', df, 'busybox', `docker://${reg.host}/test/bb:again`]);
    expect(r.code, describeFailure(['push'], r)).toBe(0);
    expect(r.stderr).toContain('skipped: already exists');
    const inspected = JSON.parse(await ok(env, ['skopeo', 'inspect', '--tls-verify=false', `docker://${reg.host}/test/bb:again`])) as { Digest: string };
    expect((await readFile(df, 'utf8')).trim()).toBe(inspected.Digest);
  });
});

describe('copy between transports', () => {
  it('docker:// → oci: → docker:// keeps the manifest digest, and the result runs', async () => {
    const layout = join(env.tmp, 'layout');
    await ok(env, ['copy', '-q', '--src-tls-verify=false', `docker://${reg.host}/test/bb:v1`, `oci:${layout}:v1`]);
    expect(existsSync(join(layout, 'index.json'))).toBe(true);
    await ok(env, ['copy', '-q', '--dest-tls-verify=false', `oci:${layout}:v1`, `docker://${reg.host}/copied/bb:v2`]);
    const a = JSON.parse(await ok(env, ['skopeo', 'inspect', '--tls-verify=false', `docker://${reg.host}/test/bb:v1`])) as { Digest: string };
    const b = JSON.parse(await ok(env, ['skopeo', 'inspect', '--tls-verify=false', `docker://${reg.host}/copied/bb:v2`])) as { Digest: string };
    expect(b.Digest).toBe(a.Digest);
    const e = await freshEnv();
    await ok(e, ['pull', '-q', '--tls-verify=false', `${reg.host}/copied/bb:v2`]);
    expect(await runInImage(e, `${reg.host}/copied/bb:v2`, ['echo', 'copied'])).toBe('copied');
  });

  it('registry → registry in the same registry mounts blobs instead of uploading them', async () => {
    const r = await run(env, ['skopeo', 'copy', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${reg.host}/test/bb:v1`, `docker://${reg.host}/mounted/bb:v1`]);
    expect(r.code, describeFailure(['skopeo', 'copy'], r)).toBe(0);
    expect(r.stderr).toMatch(/Copying blob [0-9a-f]{12} skipped: already exists/);
    expect(JSON.parse(await ok(env, ['list-tags', '--tls-verify=false', `docker://${reg.host}/mounted/bb`])).Tags).toEqual(['v1']);
  });

  it('converts to a docker v2s2 manifest on request', async () => {
    await ok(env, ['skopeo', 'copy', '-q', '-f', 'v2s2', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${reg.host}/test/bb:v1`, `docker://${reg.host}/test/bb:v2s2`]);
    const raw = JSON.parse(await ok(env, ['skopeo', 'inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/test/bb:v2s2`])) as { mediaType: string };
    expect(raw.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
  });
});

describe('list-tags, inspect, delete', () => {
  it('list-tags prints Skopeo\'s JSON', async () => {
    await ok(env, ['push', '-q', '--tls-verify=false', 'busybox', `${reg.host}/tags/bb:a`]);
    await ok(env, ['push', '-q', '--tls-verify=false', 'busybox', `${reg.host}/tags/bb:b`]);
    const out = JSON.parse(await ok(env, ['list-tags', '--tls-verify=false', `docker://${reg.host}/tags/bb`])) as { Repository: string; Tags: string[] };
    expect(out.Repository).toBe(`${reg.host}/tags/bb`);
    expect(out.Tags.sort()).toEqual(['a', 'b']);
    const r = await run(env, ['list-tags', '--tls-verify=false', `docker://${reg.host}/tags/bb:a`]);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain('tag or digest are not supported');
  });

  it('inspect agrees with skopeo inspect', async () => {
    const ref = `docker://${reg.host}/test/bb:v1`;
    const ours = JSON.parse(await ok(env, ['skopeo', 'inspect', '--tls-verify=false', ref])) as Record<string, unknown>;
    const sk = await runTool('skopeo', ['inspect', '--tls-verify=false', ref]);
    expect(sk.code, describeTool('skopeo', ['inspect'], sk)).toBe(0);
    const theirs = JSON.parse(sk.stdout) as Record<string, unknown>;
    for (const k of ['Name', 'Digest', 'RepoTags', 'Created', 'DockerVersion', 'Labels', 'Architecture', 'Os', 'Layers', 'Env']) {
      expect(ours[k], k).toEqual(theirs[k]);
    }
    expect((ours.LayersData as { Digest: string }[]).map((l) => l.Digest)).toEqual(ours.Layers);
  });

  it('inspect --raw prints the manifest bytes, --config the config', async () => {
    const ref = `docker://${reg.host}/test/bb:v1`;
    const raw = await run(env, ['skopeo', 'inspect', '--raw', '--tls-verify=false', ref]);
    const sk = await runTool('skopeo', ['inspect', '--raw', '--tls-verify=false', ref]);
    expect(raw.stdout).toBe(sk.stdout);
    const cfg = JSON.parse(await ok(env, ['skopeo', 'inspect', '--config', '--tls-verify=false', ref])) as { rootfs: { diff_ids: string[] }; os: string };
    expect(cfg.os).toBe('linux');
    expect(cfg.rootfs.diff_ids).toHaveLength(1);
    const rawCfg = await run(env, ['skopeo', 'inspect', '--config', '--raw', '--tls-verify=false', ref]);
    expect(`sha256:${(await import('node:crypto')).createHash('sha256').update(rawCfg.stdout).digest('hex')}`).toBe(`sha256:${imageId}`);
  });

  it('skopeo delete removes a tag\'s manifest', async () => {
    await ok(env, ['push', '-q', '--tls-verify=false', 'busybox', `${reg.host}/del/bb:gone`]);
    await ok(env, ['skopeo', 'delete', '--tls-verify=false', `docker://${reg.host}/del/bb:gone`]);
    const r = await run(env, ['skopeo', 'inspect', '--tls-verify=false', `docker://${reg.host}/del/bb:gone`]);
    expect(r.code).toBe(1); // skopeo's failure status
    expect(r.stderr).toContain('manifest unknown');
  });
});

describe('registries.conf and policy.json', () => {
  async function conf(name: string, text: string): Promise<HermeticOptions> {
    const f = join(env.tmp, name);
    await writeFile(f, text);
    return { env: { CONTAINERS_REGISTRIES_CONF: f } };
  }

  it('short names resolve through unqualified-search-registries, insecure from [[registry]]', async () => {
    const extra = await conf('search.conf', `unqualified-search-registries = ["${reg.host}"]\n[[registry]]\nlocation = "${reg.host}"\ninsecure = true\n`);
    const e = await freshEnv();
    const r = await run(e, ['pull', 'test/bb:v1'], extra);
    expect(r.code, describeFailure(['pull', 'test/bb:v1'], r)).toBe(0);
    expect(r.stdout.trim().replace(/^sha256:/, '')).toBe(imageId);
    expect(await ok(e, ['images', '--format', '{{.Repository}}:{{.Tag}}'])).toBe(`${reg.host}/test/bb:v1`);
  });

  it('without search registries a short name is an error naming the file', async () => {
    const extra = await conf('none.conf', '');
    const r = await run(env, ['pull', 'test/bb:v1'], extra);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain('short-name "test/bb:v1" did not resolve to an alias and no unqualified-search registries are defined');
  });

  it('enforcing mode with several candidates and no TTY refuses to guess', async () => {
    const extra = await conf('enforcing.conf', `short-name-mode = "enforcing"\nunqualified-search-registries = ["${reg.host}", "127.0.0.1:1"]\n`);
    const r = await run(env, ['pull', 'test/bb:v1'], extra);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain('short-name resolution enforced but cannot prompt without a TTY');
  });

  it('aliases name the image; blocked registries are refused', async () => {
    const extra = await conf('alias.conf', `[aliases]\n"myalias" = "${reg.host}/test/bb"\n[[registry]]\nlocation = "${reg.host}"\ninsecure = true\n[[registry]]\nlocation = "127.0.0.1:1"\nblocked = true\n`);
    const e = await freshEnv();
    await ok(e, ['pull', '-q', 'myalias:v1'], extra);
    const r = await run(e, ['pull', '-q', '127.0.0.1:1/x/y:z'], extra);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain('registry 127.0.0.1:1 is blocked');
  });

  it('mirrors are tried before the primary location', async () => {
    const extra = await conf('mirror.conf', `[[registry]]\nprefix = "mirrored.test"\nlocation = "127.0.0.1:1"\ninsecure = true\n[[registry.mirror]]\nlocation = "${reg.host}"\ninsecure = true\n`);
    const e = await freshEnv();
    const id = await ok(e, ['pull', '-q', 'mirrored.test/test/bb:v1'], extra);
    expect(id.replace(/^sha256:/, '')).toBe(imageId);
    expect(await ok(e, ['images', '--format', '{{.Repository}}:{{.Tag}}'])).toBe('mirrored.test/test/bb:v1');
  });

  it('policy.json "reject" for a scope refuses the pull', async () => {
    const policy = join(env.tmp, 'policy.json');
    await writeFile(policy, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }], transports: { docker: { [`${reg.host}/test`]: [{ type: 'reject' }] } } }));
    const e = await freshEnv();
    const r = await run(e, ['pull', '-q', '--tls-verify=false', '--signature-policy', policy, `${reg.host}/test/bb:v1`]);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain('rejected by policy');
    await ok(e, ['pull', '-q', '--tls-verify=false', '--signature-policy', policy, `${reg.host}/tags/bb:a`]);
  });
});

describe('interop with skopeo', () => {
  it('skopeo copies what barge pushed to oci: and back; barge pulls and runs the result', async () => {
    const layout = join(env.tmp, 'skopeo-layout');
    const a1 = ['copy', '--src-tls-verify=false', `docker://${reg.host}/test/bb:v1`, `oci:${layout}:v1`];
    const r1 = await runTool('skopeo', a1);
    expect(r1.code, describeTool('skopeo', a1, r1)).toBe(0);
    const a2 = ['copy', '--dest-tls-verify=false', `oci:${layout}:v1`, `docker://${reg.host}/skopeo/bb:v1`];
    const r2 = await runTool('skopeo', a2);
    expect(r2.code, describeTool('skopeo', a2, r2)).toBe(0);
    const e = await freshEnv();
    const id = await ok(e, ['pull', '-q', '--tls-verify=false', `${reg.host}/skopeo/bb:v1`]);
    expect(id.replace(/^sha256:/, '')).toBe(imageId);
    expect(await runInImage(e, `${reg.host}/skopeo/bb:v1`, ['echo', 'via skopeo'])).toBe('via skopeo');
    await expectStoreClean(e);
  });

  it('what skopeo pushes from a docker-archive made by barge, barge pulls', async () => {
    const archive = join(env.tmp, 'bb-docker.tar');
    await ok(env, ['save', '-q', '-o', archive, 'busybox']);
    const a = ['copy', '--dest-tls-verify=false', `docker-archive:${archive}`, `docker://${reg.host}/skopeo/fromarchive:v1`];
    const r = await runTool('skopeo', a);
    expect(r.code, describeTool('skopeo', a, r)).toBe(0);
    const e = await freshEnv();
    await ok(e, ['pull', '-q', '--tls-verify=false', `${reg.host}/skopeo/fromarchive:v1`]);
    expect(await runInImage(e, `${reg.host}/skopeo/fromarchive:v1`, ['echo', 'v2s2 ok'])).toBe('v2s2 ok');
  });
});
