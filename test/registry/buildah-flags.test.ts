// Registry flags of Buildah's and Podman's commit, push and pull that barge once refused as unknown:
// commit straight to a registry with --tls-verify, commit --unsetenv and --manifest, pull
// --all-tags and --policy, push --all of a manifest list, --retry/--retry-delay, and the options
// refused with a reason.
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeEnv, type BargeResult, type Env } from '../helpers.ts';
import { busyboxEnv } from '../fixtures.ts';
import { hermetic, startRegistry, type Registry } from './registry.ts';

let reg: Registry;
let env: Env;
let other: Env;
const h = hermetic();
const run = (args: string[]): Promise<BargeResult> => h.run(env, args);
const ok = (args: string[]): Promise<string> => h.ok(env, args);

beforeAll(async () => {
  reg = await startRegistry();
  ({ env } = await busyboxEnv());
  other = await makeEnv();
  await h.setup(env.tmp);
});

afterAll(async () => {
  await env?.cleanup();
  await other?.cleanup();
  await reg?.stop();
});

describe('commit', () => {
  it('to a registry with --tls-verify=false and --retry, and --unsetenv drops a variable', async () => {
    const c = await ok(['from', 'busybox']);
    await ok(['config', '--env', 'SECRET=1', '--env', 'KEEP=2', c]);
    await ok(['commit', '-q', '--tls-verify=false', '--retry', '1', '--retry-delay', '10ms', '--unsetenv', 'SECRET', c, `docker://${reg.host}/commit/direct:v1`]);
    const raw = JSON.parse(await ok(['skopeo', 'inspect', '--tls-verify=false', '--config', `docker://${reg.host}/commit/direct:v1`])) as { config: { Env: string[] } };
    expect(raw.config.Env).toContain('KEEP=2');
    expect(raw.config.Env.some((e) => e.startsWith('SECRET='))).toBe(false);
  });

  it('--manifest adds the committed image to a list, made when missing', async () => {
    const c = await ok(['from', 'busybox']);
    const id = await ok(['commit', '-q', '--manifest', 'localhost/committed-list', c, 'committed-one']);
    const index = JSON.parse(await ok(['manifest', 'inspect', 'localhost/committed-list'])) as { manifests: { digest: string }[] };
    expect(index.manifests).toHaveLength(1);
    const digest = await ok(['inspect', '--type', 'image', '--format', '{{.FromImageDigest}}', id]);
    expect(index.manifests[0]!.digest).toBe(digest);
    const r = await run(['commit', '--manifest', 'x', c, `oci:${env.tmp}/o:1`]);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain('--manifest: the image must be committed into local storage');
  });

  it('--sign-by into local storage and --encrypt-layer are refused with the reason', async () => {
    const c = await ok(['from', 'busybox']);
    for (const [flag, reason] of [['--sign-by', "barge's local storage keeps no signatures"], ['--encryption-key', 'barge does not encrypt layers']] as const) {
      const r = await run(['commit', flag, 'x', c, 'refused']);
      expect(r.code).toBe(125);
      expect(r.stderr).toContain(`${flag}: ${reason}`);
    }
  });
});

describe('pull', () => {
  it('--all-tags pulls every tag of the repository', async () => {
    for (const t of ['a', 'b', 'c']) await ok(['push', '-q', '--tls-verify=false', 'busybox', `${reg.host}/tags/bb:${t}`]);
    const r = await h.run(other, ['pull', '-q', '--all-tags', '--tls-verify=false', `${reg.host}/tags/bb`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(3);
    const names = await h.ok(other, ['images', '--format', '{{.Repository}}:{{.Tag}}']);
    expect(names.split('\n').sort()).toEqual(['a', 'b', 'c'].map((t) => `${reg.host}/tags/bb:${t}`));
    const tagged = await h.run(other, ['pull', '--all-tags', '--tls-verify=false', `${reg.host}/tags/bb:a`]);
    expect(tagged.code).toBe(125);
    expect(tagged.stderr).toContain('a repository is needed to list its tags');
  });

  it('--policy missing and never answer with the local image; never without one fails', async () => {
    const local = await ok(['images', '-q', '--no-trunc', 'busybox']);
    expect(await ok(['pull', '--policy', 'never', 'busybox'])).toBe(local.replace(/^sha256:/, ''));
    expect(await ok(['pull', '--policy', 'missing', 'busybox'])).toBe(local.replace(/^sha256:/, ''));
    const r = await run(['pull', '--policy', 'never', `${reg.host}/nothere/x:v1`]);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain('the pull policy is "never"');
    const bad = await run(['pull', '--policy', 'sometimes', 'busybox']);
    expect(bad.code).toBe(125);
    expect(bad.stderr).toContain('unsupported pull policy "sometimes"');
  });
});

describe('retries', () => {
  it('--retry retries a refused connection until the registry is up; without it the pull fails at once', async () => {
    await ok(['push', '-q', '--tls-verify=false', 'busybox', `${reg.host}/late/bb:v1`]);
    // A port nothing listens on yet, then a forwarder to the registry on it.
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const p = (probe.address() as AddressInfo).port;
        probe.close(() => resolve(p));
      });
    });
    const late = `127.0.0.1:${port}/late/bb:v1`;
    const refused = await h.run(other, ['pull', '-q', '--tls-verify=false', late]);
    expect(refused.code).toBe(125);
    expect(refused.stderr).toMatch(/connection refused|ECONNREFUSED/);

    const [regHost, regPort] = reg.host.split(':') as [string, string];
    const pulling = h.run(other, ['pull', '-q', '--tls-verify=false', '--retry', '5', '--retry-delay', '200ms', late]);
    await new Promise((r) => setTimeout(r, 500));
    const forwarder: Server = createServer((c) => c.pipe(connect(Number(regPort), regHost)).pipe(c)).listen(port, '127.0.0.1');
    try {
      const r = await pulling;
      expect(r.code, r.stderr).toBe(0);
    } finally {
      forwarder.close();
    }
  });
});

describe('push', () => {
  it('--all of a manifest list pushes the list and its images; --rm then removes the list', async () => {
    await ok(['manifest', 'create', 'localhost/pushed-list', 'busybox']);
    await ok(['push', '-q', '--all', '--rm', '--tls-verify=false', 'localhost/pushed-list', `docker://${reg.host}/lists/bb:v1`]);
    const index = JSON.parse(await ok(['skopeo', 'inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/lists/bb:v1`])) as { manifests: { digest: string }[] };
    expect(index.manifests).toHaveLength(1);
    // The member was pushed too: it can be read by digest.
    await ok(['skopeo', 'inspect', '--tls-verify=false', `docker://${reg.host}/lists/bb@${index.manifests[0]!.digest}`]);
    expect((await run(['manifest', 'exists', 'localhost/pushed-list'])).code).toBe(1);
  });
});
