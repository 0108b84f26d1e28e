// `from` and `build` fetch base images that are not local, honouring --pull, as Buildah does.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeEnv, type BargeResult, type Env } from '../helpers.ts';
import { importBusybox } from '../fixtures.ts';
import { startRegistry, type Registry } from './registry.ts';

let reg: Registry;
let src: Env;
let env: Env;
let hermetic: Record<string, string> = {};

beforeAll(async () => {
  reg = await startRegistry();
  src = await makeEnv();
  env = await makeEnv();
  const conf = join(env.tmp, 'registries-empty.conf');
  await writeFile(conf, '');
  hermetic = { REGISTRY_AUTH_FILE: join(env.tmp, 'auth.json'), CONTAINERS_REGISTRIES_CONF: conf };
  await importBusybox(src);
  await src.bargeOk(['push', '-q', '--tls-verify=false', 'busybox', `${reg.host}/base/bb:v1`], { env: hermetic });
});

afterAll(async () => {
  await env?.cleanup();
  await src?.cleanup();
  await reg?.stop();
});

const run = (args: string[]): Promise<BargeResult> => env.barge(args, { env: hermetic });
async function ok(args: string[]): Promise<string> {
  const r = await run(args);
  expect(r.code, `${args.join(' ')}\n${r.stderr}`).toBe(0);
  return r.stdout.trim();
}

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
