// Registry answers altered by a proxy on 127.0.0.1: a tampered blob, transient 503s, endless
// 429s, a huge manifest, a redirect loop. Each fails (or recovers) cleanly and the store stays
// consistent.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeFailure, freshEnvs, type Env } from '../helpers.ts';
import { busyboxEnv } from '../fixtures.ts';
import { expectStoreClean, imageIds } from '../images/lib.ts';
import { hermetic, startProxy, startRegistry, type Proxy, type Registry } from './registry.ts';

let reg: Registry;
let env: Env;
let imageId = '';
let layerDigest = '';
const { freshEnv, cleanupFreshEnvs } = freshEnvs();
const { setup, run, ok } = hermetic();
const proxies: Proxy[] = [];

beforeAll(async () => {
  reg = await startRegistry();
  ({ env, imageId } = await busyboxEnv());
  await setup(env.tmp);
  await ok(env, ['push', '-q', '--tls-verify=false', 'busybox', `${reg.host}/test/bb:v1`]);
  const info = JSON.parse(await ok(env, ['skopeo', 'inspect', '--tls-verify=false', `docker://${reg.host}/test/bb:v1`])) as { Layers: string[] };
  layerDigest = info.Layers[0]!;
});

afterAll(async () => {
  for (const p of proxies) await p.stop();
  await cleanupFreshEnvs();
  await env?.cleanup();
  await reg?.stop();
});

async function proxy(...a: Parameters<typeof startProxy> extends [string, ...infer R] ? R : never): Promise<Proxy> {
  const p = await startProxy(reg.host, ...a);
  proxies.push(p);
  return p;
}

describe('hostile or flaky registries', () => {
  it('a blob altered in transit is an error naming its digest, and nothing is stored', async () => {
    const p = await proxy((req, status, body) => {
      if (status === 200 && req.url === `/v2/test/bb/blobs/${layerDigest}`) {
        const b = Buffer.from(body);
        const i = Math.floor(b.length / 2);
        b[i] = b[i]! ^ 0xff;
        return b;
      }
      return undefined;
    });
    const e = await freshEnv();
    const r = await run(e, ['pull', '-q', '--tls-verify=false', `${p.host}/test/bb:v1`]);
    expect(r.code, describeFailure(['pull'], r)).toBe(125);
    expect(r.stderr).toContain(layerDigest);
    expect(r.stderr).toMatch(/digest mismatch|size mismatch/);
    expect(await imageIds(e)).toEqual([]);
    await expectStoreClean(e);
  });

  it('copy to oci: of an altered blob fails the same way', async () => {
    const p = await proxy((req, status, body) => (status === 200 && req.url === `/v2/test/bb/blobs/${layerDigest}` ? Buffer.concat([body.subarray(0, body.length - 1), Buffer.from([body.at(-1)! ^ 1])]) : undefined));
    const r = await run(env, ['copy', '-q', '--src-tls-verify=false', `docker://${p.host}/test/bb:v1`, `oci:${join(env.tmp, 'tampered')}:v1`]);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain(`digest mismatch for blob ${layerDigest}`);
  });

  it('transient 503s are retried; the pull then succeeds', async () => {
    let failures = 0;
    const p = await proxy(
      () => undefined,
      (req, res) => {
        if (req.method === 'GET' && req.url?.includes('/manifests/') && failures < 2) {
          failures++;
          res.writeHead(503, { 'retry-after': '0' });
          res.end();
          return true;
        }
        return false;
      },
    );
    const e = await freshEnv();
    const id = await ok(e, ['pull', '-q', '--tls-verify=false', `${p.host}/test/bb:v1`]);
    expect(id.replace(/^sha256:/, '')).toBe(imageId);
    expect(failures).toBe(2);
  });

  it('an endless 429 gives up after a bounded number of attempts', async () => {
    let seen = 0;
    const p = await proxy(
      () => undefined,
      (req, res) => {
        if (req.url?.includes('/manifests/')) {
          seen++;
          res.writeHead(429, { 'retry-after': '0', 'content-type': 'application/json' });
          res.end('{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}');
          return true;
        }
        return false;
      },
    );
    const e = await freshEnv();
    const r = await run(e, ['pull', '-q', '--tls-verify=false', '--retry-times', '2', `${p.host}/test/bb:v1`]);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain('toomanyrequests: slow down');
    expect(seen).toBe(3);
  });

  it('a manifest over 4 MiB is refused without reading it all', async () => {
    const p = await proxy((req, status) => (req.url?.includes('/manifests/') && status === 200 ? Buffer.alloc(5 << 20, 0x20) : undefined));
    const e = await freshEnv();
    const r = await run(e, ['pull', '-q', '--tls-verify=false', `${p.host}/test/bb:v1`]);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/over the 4194304-byte limit|exceeds the 4194304-byte limit/);
  });

  it('a redirect loop on a blob stops after a few hops', async () => {
    const p = await proxy(
      () => undefined,
      (req, res) => {
        if (req.method === 'GET' && req.url?.includes('/blobs/')) {
          res.writeHead(307, { location: req.url });
          res.end();
          return true;
        }
        return false;
      },
    );
    const e = await freshEnv();
    const r = await run(e, ['pull', '-q', '--tls-verify=false', `${p.host}/test/bb:v1`]);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain('stopped after 5 redirects');
    await expectStoreClean(e);
  });
});
