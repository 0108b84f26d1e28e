// TLS with a CA made by the test, htpasswd basic auth, login/logout and auth.json, and the
// bearer-token flow against the registry's token mode with an issuer in the test.
import { statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshEnvs, type Env } from '../helpers.ts';
import { busyboxEnv } from '../fixtures.ts';
import { expectStoreClean } from '../images/lib.ts';
import { hermetic, startRegistry, type Registry } from './registry.ts';

const USER = 'bargeuser';
const PASS = 's3cret-pass';

let env: Env;
let imageId = '';
const { freshEnv, cleanupFreshEnvs } = freshEnvs();
const { setup, run, ok } = hermetic();

beforeAll(async () => {
  ({ env, imageId } = await busyboxEnv());
  await setup(env.tmp, 'default-auth.json');
});

afterAll(async () => {
  await cleanupFreshEnvs();
  await env?.cleanup();
});

describe('TLS and htpasswd', () => {
  let reg: Registry;
  beforeAll(async () => {
    reg = await startRegistry({ tls: true, htpasswd: { user: USER, password: PASS } });
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it('an unknown CA fails verification; --cert-dir with the CA gets through to auth', async () => {
    const target = `${reg.host}/secure/bb:v1`;
    const noCa = await run(env, ['push', '-q', '--creds', `${USER}:${PASS}`, 'busybox', target]);
    expect(noCa.code).toBe(125);
    expect(noCa.stderr).toMatch(/tls: failed to verify certificate: x509/);
    const noCreds = await run(env, ['push', '-q', '--cert-dir', reg.certDir!, 'busybox', target]);
    expect(noCreds.code).toBe(125);
    expect(noCreds.stderr).toContain('unauthorized: authentication required');
    await ok(env, ['push', '-q', '--cert-dir', reg.certDir!, '--creds', `${USER}:${PASS}`, 'busybox', target]);
  });

  it('--tls-verify=false skips verification of TLS (but auth still applies)', async () => {
    const e = await freshEnv();
    const id = await ok(e, ['pull', '-q', '--tls-verify=false', '--creds', `${USER}:${PASS}`, `${reg.host}/secure/bb:v1`]);
    expect(id.replace(/^sha256:/, '')).toBe(imageId);
  });

  it('login stores credentials (0600) that pull, push and list-tags use; logout removes them', async () => {
    const authfile = join(env.tmp, 'auth.json');
    const certs = ['--cert-dir', reg.certDir!];
    const bad = await run(env, ['login', ...certs, '--authfile', authfile, '-u', USER, '-p', 'wrong', reg.host]);
    expect(bad.code).toBe(125);
    expect(bad.stderr).toContain(`logging into "${reg.host}": invalid username/password`);

    expect(await ok(env, ['login', ...certs, '--authfile', authfile, '-u', USER, '--password-stdin', reg.host], { input: `${PASS}\n` })).toBe('Login Succeeded!');
    expect(statSync(authfile).mode & 0o777).toBe(0o600);
    const stored = JSON.parse(await readFile(authfile, 'utf8')) as { auths: Record<string, { auth: string }> };
    expect(Buffer.from(stored.auths[reg.host]!.auth, 'base64').toString()).toBe(`${USER}:${PASS}`);
    expect(await ok(env, ['login', '--authfile', authfile, '--get-login', reg.host])).toBe(USER);

    await ok(env, ['push', '-q', ...certs, '--authfile', authfile, 'busybox', `${reg.host}/secure/bb:v2`]);
    const e = await freshEnv();
    await ok(e, ['pull', '-q', ...certs, '--authfile', authfile, `${reg.host}/secure/bb:v2`]);
    expect(await ok(e, ['images', '--format', '{{.Repository}}:{{.Tag}}'])).toBe(`${reg.host}/secure/bb:v2`);
    const tags = JSON.parse(await ok(env, ['list-tags', ...certs, '--authfile', authfile, `docker://${reg.host}/secure/bb`])) as { Tags: string[] };
    expect(tags.Tags.sort()).toEqual(['v1', 'v2']);
    // REGISTRY_AUTH_FILE is read as well as --authfile.
    await ok(e, ['pull', '-q', ...certs, `${reg.host}/secure/bb:v1`], { env: { REGISTRY_AUTH_FILE: authfile } });

    expect(await ok(env, ['logout', '--authfile', authfile, reg.host])).toBe(`Removed login credentials for ${reg.host}`);
    const after = await run(e, ['pull', '-q', ...certs, '--authfile', authfile, `${reg.host}/secure/bb:v2`]);
    expect(after.code).toBe(125);
    expect(after.stderr).toContain('unauthorized: authentication required');
    const again = await run(env, ['logout', '--authfile', authfile, reg.host]);
    expect(again.code).toBe(125);
    expect(again.stderr).toContain(`not logged into ${reg.host}`);
    await expectStoreClean(e);
  });

  it('skopeo copy with --src-creds / --dest-creds and cert dirs', async () => {
    const layout = join(env.tmp, 'secure-layout');
    await ok(env, ['copy', '-q', '--src-cert-dir', reg.certDir!, '--src-creds', `${USER}:${PASS}`, `docker://${reg.host}/secure/bb:v1`, `oci:${layout}:x`]);
    await ok(env, ['copy', '-q', '--dest-cert-dir', reg.certDir!, '--dest-creds', `${USER}:${PASS}`, `oci:${layout}:x`, `docker://${reg.host}/secure/copy:x`]);
  });
});

describe('bearer tokens (registry token auth)', () => {
  let reg: Registry;
  beforeAll(async () => {
    reg = await startRegistry({ token: { user: USER, password: PASS } });
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it('pushes and pulls with tokens; without credentials the registry refuses', async () => {
    const target = `${reg.host}/tok/bb:v1`;
    const anon = await run(env, ['push', '-q', '--tls-verify=false', 'busybox', target]);
    expect(anon.code).toBe(125);
    expect(anon.stderr).toMatch(/unauthorized|denied/);
    await ok(env, ['push', '-q', '--tls-verify=false', '--creds', `${USER}:${PASS}`, 'busybox', target]);
    const e = await freshEnv();
    const id = await ok(e, ['pull', '-q', '--tls-verify=false', '--creds', `${USER}:${PASS}`, target]);
    expect(id.replace(/^sha256:/, '')).toBe(imageId);
    expect(reg.tokensIssued()).toBeGreaterThan(0);
  });

  it('login checks credentials against the token issuer', async () => {
    const authfile = join(env.tmp, 'token-auth.json');
    const bad = await run(env, ['login', '--tls-verify=false', '--authfile', authfile, '-u', USER, '-p', 'nope', reg.host]);
    expect(bad.code).toBe(125);
    expect(bad.stderr).toContain('invalid username/password');
    expect(await ok(env, ['login', '--tls-verify=false', '--authfile', authfile, '-u', USER, '-p', PASS, reg.host])).toBe('Login Succeeded!');
    const tags = JSON.parse(await ok(env, ['list-tags', '--tls-verify=false', '--authfile', authfile, `docker://${reg.host}/tok/bb`])) as { Tags: string[] };
    expect(tags.Tags).toEqual(['v1']);
  });
});
