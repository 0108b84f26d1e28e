// How Podman's run and create get an image that is not local: --pull (missing by default, always,
// never, newer), with --tls-verify, --authfile and -q, and --arch/--platform choosing from a
// multi-arch image (the "arm64" one holds the same amd64 busybox plus /etc/marker).
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeEnv, type BargeResult, type Env } from '../helpers.ts';
import { busyboxEnv } from '../fixtures.ts';
import { makeTwoArchLayout } from './multiarch-layout.ts';
import { hermetic, startRegistry, type Registry } from './registry.ts';

const USER = 'runner';
const PASS = 'pull-secret';
let reg: Registry;
let src: Env;
let env: Env;
let authfile = '';
let image = '';
let multi = '';
const h = hermetic();
const run = (args: string[]): Promise<BargeResult> => h.run(env, args);
const ok = (args: string[]): Promise<string> => h.ok(env, args);
const creds = ['--creds', `${USER}:${PASS}`];

beforeAll(async () => {
  reg = await startRegistry({ tls: true, htpasswd: { user: USER, password: PASS } });
  ({ env: src } = await busyboxEnv());
  env = await makeEnv();
  await h.setup(env.tmp);
  await h.setup(src.tmp);
  image = `${reg.host}/run/bb:v1`;
  await h.ok(src, ['push', '-q', '--tls-verify=false', ...creds, 'busybox', image]);
  const single = join(src.tmp, 'single');
  await h.ok(src, ['push', '-q', 'busybox', `oci:${single}:v1`]);
  const layout = join(src.tmp, 'two-arch');
  await makeTwoArchLayout(single, layout);
  multi = `${reg.host}/run/multi:v1`;
  await h.ok(src, ['copy', '-q', '--all', `oci:${layout}:multi`, `docker://${multi}`, '--dest-tls-verify=false', '--dest-creds', `${USER}:${PASS}`]);
  authfile = join(env.tmp, 'my-auth.json');
  await writeFile(authfile, JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from(`${USER}:${PASS}`).toString('base64') } } }));
});

afterAll(async () => {
  await env?.cleanup();
  await src?.cleanup();
  await reg?.stop();
});

describe('run and create pull what is missing', () => {
  it('--pull never fails on a missing image; TLS is verified and credentials needed unless told otherwise', async () => {
    const never = await run(['run', '--rm', '--pull', 'never', image, 'true']);
    expect(never.code).toBe(125);
    expect(never.stderr).toContain('image not known');
    const tls = await run(['run', '--rm', '--authfile', authfile, image, 'true']);
    expect(tls.code).toBe(125);
    expect(tls.stderr).toMatch(/x509|certificate/);
    const anon = await run(['run', '--rm', '--tls-verify=false', image, 'true']);
    expect(anon.code).toBe(125);
    expect(anon.stderr).toContain('unauthorized');
    expect(await ok(['images', '-q'])).toBe('');
  });

  it('pulls a missing image (default: missing) with --authfile, quietly with -q, then uses the local one', async () => {
    const r = await run(['run', '--rm', '-q', '--tls-verify=false', '--authfile', authfile, image, 'echo', 'ran']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('ran\n');
    expect(r.stderr).toBe('');
    // Local now: no registry access (and so no credentials) needed.
    expect(await ok(['run', '--rm', image, 'echo', 'again'])).toBe('again');
    const created = await ok(['create', '--pull', 'missing', image, 'true']);
    await ok(['rm', created]);
  });

  it('--pull always pulls again (with progress unless -q); newer falls back to the local image', async () => {
    const always = await run(['run', '--rm', '--pull', 'always', '--tls-verify=false', '--authfile', authfile, image, 'true']);
    expect(always.code, always.stderr).toBe(0);
    expect(always.stderr).toContain(`Trying to pull ${image}`);
    const failing = await run(['run', '--rm', '--pull', 'always', '--tls-verify=false', image, 'true']);
    expect(failing.code).toBe(125);
    const newer = await run(['run', '--rm', '--pull', 'newer', '-q', '--tls-verify=false', image, 'echo', 'local']);
    expect(newer.code, newer.stderr).toBe(0);
    expect(newer.stdout).toBe('local\n');
  });

  it('--arch and --platform pull that instance of a multi-arch image; a local one of another platform counts as missing', async () => {
    const pull = ['-q', '--tls-verify=false', '--authfile', authfile];
    const host = await run(['run', '--rm', ...pull, multi, 'cat', '/etc/marker']);
    expect(host.code).not.toBe(0);
    expect(await ok(['run', '--rm', '--arch', 'arm64', ...pull, multi, 'cat', '/etc/marker'])).toBe('arm64');
    expect(await ok(['run', '--rm', '--platform', 'linux/arm64', '--pull', 'never', multi, 'cat', '/etc/marker'])).toBe('arm64');
    const id = await ok(['create', '--os', 'linux', '--arch', 'arm64', '--pull', 'never', multi, 'true']);
    expect(await ok(['inspect', '--format', '{{.ImageName}}', id])).toBe(multi);
    await ok(['rm', id]);
    const both = await run(['run', '--rm', '--platform', 'linux/arm64', '--arch', 'amd64', multi, 'true']);
    expect(both.code).toBe(125);
    expect(both.stderr).toContain('--platform cannot be combined with');
  });
});
