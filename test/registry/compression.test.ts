// Layer compression on the way out (--compression-format, --dest-compress-format) and zstd
// layers on the way in; blobs the registry already has are never uploaded again, counted in
// the log of a proxy in front of the registry.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeFailure, freshEnvs, runInImage, type Env } from '../helpers.ts';
import { busyboxEnv } from '../fixtures.ts';
import { describeTool, expectStoreClean, podmanIn, runTool } from '../images/lib.ts';
import { hermetic, startProxy, startRegistry, type Proxy, type Registry } from './registry.ts';
import { join } from 'node:path';

interface Manifest {
  mediaType: string;
  layers: { mediaType: string; digest: string }[];
}

let reg: Registry;
let proxy: Proxy;
let env: Env;
const { freshEnv, cleanupFreshEnvs } = freshEnvs();
const { setup, run, ok } = hermetic();

/** Blob uploads started through the proxy since `from` (cross-repository mounts are not uploads). */
function uploadsSince(from: number): string[] {
  return proxy.log.slice(from).filter((l) => /^POST \/v2\/.*\/blobs\/uploads\/(\?)?$/.test(l) || /^PATCH /.test(l) || (/^PUT .*\/blobs\/uploads\//.test(l)));
}

async function manifestOf(ref: string): Promise<Manifest> {
  return JSON.parse(await ok(env, ['skopeo', 'inspect', '--raw', '--tls-verify=false', ref])) as Manifest;
}

beforeAll(async () => {
  reg = await startRegistry();
  proxy = await startProxy(reg.host, () => undefined);
  ({ env } = await busyboxEnv());
  await setup(env.tmp);
});

afterAll(async () => {
  await cleanupFreshEnvs();
  await env?.cleanup();
  await proxy?.stop();
  await reg?.stop();
});

describe('compression', () => {
  it('push --compression-format zstd writes zstd OCI layers that pull, run, and podman reads', async () => {
    const ref = `${proxy.host}/z/bb:v1`;
    const r = await run(env, ['push', '--tls-verify=false', '--compression-format', 'zstd', 'busybox', ref]);
    expect(r.code, describeFailure(['push', '--compression-format', 'zstd'], r)).toBe(0);
    const m = await manifestOf(`docker://${ref}`);
    expect(m.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(m.layers.map((l) => l.mediaType)).toEqual(['application/vnd.oci.image.layer.v1.tar+zstd']);

    const e = await freshEnv();
    await ok(e, ['pull', '-q', '--tls-verify=false', ref]);
    expect(await runInImage(e, ref, ['echo', 'zstd ok'])).toBe('zstd ok');
    await expectStoreClean(e);

    const podman = podmanIn(join(env.tmp, 'podman'));
    const p = await podman(['pull', '-q', '--tls-verify=false', `${reg.host}/z/bb:v1`]);
    expect(p.code, describeTool('podman', ['pull'], p)).toBe(0);
  });

  it('a second push, recompressed or not, uploads nothing the registry has', async () => {
    const ref = `${proxy.host}/z/bb:v1`;
    const mark = proxy.log.length;
    await ok(env, ['push', '-q', '--tls-verify=false', '--compression-format', 'zstd', 'busybox', ref]);
    expect(uploadsSince(mark), proxy.log.slice(mark).join('\n')).toEqual([]);

    // First gzip push to a new repository uploads; the same push again does not.
    const g = `${proxy.host}/g/bb:v1`;
    const m1 = proxy.log.length;
    await ok(env, ['push', '-q', '--tls-verify=false', '--compression-format', 'gzip', 'busybox', g]);
    expect(uploadsSince(m1).length).toBeGreaterThan(0);
    const m2 = proxy.log.length;
    const again = await run(env, ['push', '--tls-verify=false', '--compression-format', 'gzip', 'busybox', g]);
    expect(again.code, describeFailure(['push'], again)).toBe(0);
    expect(uploadsSince(m2), proxy.log.slice(m2).join('\n')).toEqual([]);
    expect((await manifestOf(`docker://${g}`)).layers[0]!.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+gzip');
  });

  it('skopeo copy --dest-compress-format converts zstd to gzip and back between repositories', async () => {
    const src = `docker://${proxy.host}/z/bb:v1`;
    const gz = `docker://${proxy.host}/conv/bb:gzip`;
    await ok(env, ['skopeo', 'copy', '-q', '--src-tls-verify=false', '--dest-tls-verify=false', '--dest-compress-format', 'gzip', src, gz]);
    expect((await manifestOf(gz)).layers[0]!.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+gzip');
    // Copying the zstd image to another repository again re-encodes, finds the blob there, and uploads nothing.
    const mark = proxy.log.length;
    await ok(env, ['skopeo', 'copy', '-q', '--src-tls-verify=false', '--dest-tls-verify=false', '--dest-compress-format', 'gzip', src, `docker://${proxy.host}/conv/bb:again`]);
    expect(uploadsSince(mark), proxy.log.slice(mark).join('\n')).toEqual([]);
    // skopeo reads what barge wrote.
    const sk = await runTool('skopeo', ['inspect', '--tls-verify=false', gz]);
    expect(sk.code, describeTool('skopeo', ['inspect'], sk)).toBe(0);

    const bad = await run(env, ['skopeo', 'copy', '-f', 'v2s2', '--dest-compress-format', 'zstd', '--src-tls-verify=false', '--dest-tls-verify=false', src, gz]);
    expect(bad.code).toBe(1); // skopeo's failure status
    expect(bad.stderr).toContain('zstd-compressed layers need the OCI manifest format');
    const unknown = await run(env, ['push', '--compression-format', 'lz4', 'busybox', `${proxy.host}/x/y:z`]);
    expect(unknown.code).toBe(125);
  });
});
