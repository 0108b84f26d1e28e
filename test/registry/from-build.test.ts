// `from` and `build` fetch base images that are not local, honouring --pull, as Buildah does.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeEnv, type BargeResult, type Env } from '../helpers.ts';
import { busyboxEnv } from '../fixtures.ts';
import { hermetic, startRegistry, type Registry } from './registry.ts';

let reg: Registry;
let src: Env;
let env: Env;
const h = hermetic();
const run = (args: string[]): Promise<BargeResult> => h.run(env, args);
const ok = (args: string[]): Promise<string> => h.ok(env, args);

beforeAll(async () => {
  reg = await startRegistry();
  ({ env: src } = await busyboxEnv());
  env = await makeEnv();
  await h.setup(env.tmp);
  await h.ok(src, ['push', '-q', '--tls-verify=false', 'busybox', `${reg.host}/base/bb:v1`]);
});

afterAll(async () => {
  await env?.cleanup();
  await src?.cleanup();
  await reg?.stop();
});

describe('pulling base images', () => {
  it('from --pull never does not reach the registry', async () => {
    const r = await run(['from', '--pull', 'never', `${reg.host}/base/bb:v1`]);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/image not known and the pull policy is "never"/);
  });

  it('from pulls a missing image, then uses the local copy', async () => {
    const c = await ok(['from', '--tls-verify=false', `${reg.host}/base/bb:v1`]);
    expect(c).toBe('bb-working-container');
    expect(await ok(['run', c, '--', 'echo', 'pulled'])).toBe('pulled');
    expect(await ok(['images', '--format', '{{.Repository}}:{{.Tag}}'])).toContain(`${reg.host}/base/bb:v1`);
    // Now local: no registry needed even with verification on (which would refuse plain http).
    expect(await ok(['from', `${reg.host}/base/bb:v1`])).toBe('bb-working-container-1');
  });

  it('a missing image that no registry has is a clear error', async () => {
    const r = await run(['from', '--tls-verify=false', `${reg.host}/base/nothere:v1`]);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/^Error: .*(manifest unknown|not found|unknown)/im);
  });

  it('build pulls its FROM image and COPY --from images', async () => {
    const ctx = join(env.tmp, 'ctx');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(ctx, { recursive: true });
    await writeFile(join(ctx, 'Containerfile'), `FROM ${reg.host}/base/bb:v1\nCOPY --from=${reg.host}/base/bb:v1 /bin/busybox /copied\nRUN test -x /copied && echo ok > /built\n`);
    await run(['rmi', '-f', `${reg.host}/base/bb:v1`]);
    const id = await ok(['build', '--tls-verify=false', '-q', '-t', 'frombuild', ctx]);
    expect(id).toMatch(/[a-f0-9]{64}$/);
    const c = await ok(['from', 'frombuild']);
    expect(await ok(['run', c, '--', 'cat', '/built'])).toBe('ok');
  });
});
