// Simple signing (containers-signature(5)) against a real registry and a real gpg: push --sign-by
// writes a signature to the lookaside registries.d names; pull under a signedBy policy verifies it
// and refuses unsigned images, other keys, tampered signatures, signatures of another digest or
// another name; skopeo reads what barge signs and barge reads what skopeo signs; dir: images keep
// their signatures beside the manifest.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeFailure, type BargeResult, type Env } from '../helpers.ts';
import { busyboxEnv } from '../fixtures.ts';
import { describeTool, expectStoreClean, runTool } from '../images/lib.ts';
import { hermetic, startRegistry, type Registry } from './registry.ts';

const execFileP = promisify(execFile);

let reg: Registry;
let env: Env;
/** A throwaway GNUPGHOME under /tmp: gpg-agent's socket path must stay short. */
let gnupg = '';
let fpr = '';
/** Public keys: the signer's, and another key's. */
let signerKey = '';
let otherKey = '';
/** file:// lookaside (read and written) and the registries.d directories naming it. */
let lookaside = '';
let registriesD = '';
/** HOME for barge's Podman-style commands, whose registries.d is ~/.config/containers/registries.d. */
let home = '';
let http: Server | undefined;
let httpRegistriesD = '';
const { setup, run } = hermetic();

const gpg = (args: string[]): Promise<{ stdout: string }> => execFileP('gpg', ['--batch', '--no-tty', ...args], { env: { ...process.env, GNUPGHOME: gnupg } });

/** barge with this suite's keyring and registries.d. */
function barge(args: string[]): Promise<BargeResult> {
  return run(env, args, { env: { GNUPGHOME: gnupg, HOME: home } });
}

async function ok(args: string[]): Promise<string> {
  const r = await barge(args);
  expect(r.code, describeFailure(args, r)).toBe(0);
  return r.stdout.trim();
}

/** Expects exit 125 with this message, nothing stored under `name`, and a clean store. */
async function refused(args: string[], message: string | RegExp, name?: string): Promise<void> {
  const r = await barge(args);
  expect(r.code, describeFailure(args, r)).toBe(125);
  expect(r.stderr).toMatch(typeof message === 'string' ? new RegExp(message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) : message);
  if (name) expect((await barge(['image', 'exists', name])).code).toBe(1);
  await expectStoreClean(env);
}

async function policy(name: string, requirement: Record<string, unknown>): Promise<string> {
  const file = join(env.tmp, `${name}.json`);
  await writeFile(file, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }], transports: { docker: { [reg.host]: [requirement] }, dir: { [env.tmp]: [requirement] } } }));
  return file;
}

const signedBy = (keyPath: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ type: 'signedBy', keyType: 'GPGKeys', keyPath, ...extra });

/** The manifest digest of a pushed image, from the registry. */
async function digestOf(ref: string): Promise<string> {
  return ok(['skopeo', 'inspect', '--tls-verify=false', '--format', '{{.Digest}}', `docker://${ref}`]);
}

/** Where a signature of REPO (without the host) lives in the lookaside. */
function sigFile(repo: string, digest: string, n = 1): string {
  return join(lookaside, `${repo}@${digest.replace(':', '=')}`, `signature-${n}`);
}

const pullArgs = (pol: string, ref: string): string[] => ['pull', '-q', '--tls-verify=false', '--signature-policy', pol, ref];

beforeAll(async () => {
  reg = await startRegistry();
  ({ env } = await busyboxEnv());
  await setup(env.tmp);
  gnupg = await mkdtemp('/tmp/bsg-');
  await gpg(['--passphrase', '', '--quick-gen-key', 'barge signer <signer@example.com>', 'ed25519', 'sign', 'never']);
  fpr = (await gpg(['--with-colons', '--list-keys'])).stdout.split('\n').find((l) => l.startsWith('fpr:'))!.split(':')[9]!;
  signerKey = join(env.tmp, 'signer.asc');
  await writeFile(signerKey, (await gpg(['--armor', '--export', fpr])).stdout);
  // Another key, made in its own keyring: the policy may list it, barge never signs with it.
  const other = await mkdtemp('/tmp/bsg-');
  const otherGpg = (args: string[]): Promise<{ stdout: string }> => execFileP('gpg', ['--batch', '--no-tty', ...args], { env: { ...process.env, GNUPGHOME: other } });
  await otherGpg(['--passphrase', '', '--quick-gen-key', 'someone else <other@example.com>', 'ed25519', 'sign', 'never']);
  otherKey = join(env.tmp, 'other.asc');
  await writeFile(otherKey, (await otherGpg(['--armor', '--export'])).stdout);
  await execFileP('gpgconf', ['--kill', 'gpg-agent'], { env: { ...process.env, GNUPGHOME: other } });
  await rm(other, { recursive: true, force: true });

  lookaside = join(env.tmp, 'lookaside');
  home = join(env.tmp, 'home');
  registriesD = join(home, '.config', 'containers', 'registries.d');
  await mkdir(registriesD, { recursive: true });
  await writeFile(join(registriesD, 'test.yaml'), `docker:\n  ${reg.host}:\n    lookaside: file://${lookaside}\n`);
  // skopeo (run by the tests, not by barge) signs with the same keyring.
  process.env.GNUPGHOME = gnupg;
});

afterAll(async () => {
  http?.close();
  await env?.cleanup();
  await reg?.stop();
  if (gnupg) {
    await execFileP('gpgconf', ['--kill', 'gpg-agent'], { env: { ...process.env, GNUPGHOME: gnupg } }).catch(() => undefined);
    await rm(gnupg, { recursive: true, force: true });
  }
});

describe('push --sign-by and pull under a signedBy policy', () => {
  it('signs into the lookaside, and a pull verifying it stores the image', async () => {
    await ok(['push', '-q', '--tls-verify=false', '--sign-by', fpr, 'busybox', `${reg.host}/sig/bb:v1`]);
    const digest = await digestOf(`${reg.host}/sig/bb:v1`);
    const sig = await readFile(sigFile('sig/bb', digest));
    // The payload is the containers-signature JSON, signed by our key.
    const { stdout } = await execFileP('gpg', ['--batch', '--decrypt', sigFile('sig/bb', digest)], { env: { ...process.env, GNUPGHOME: gnupg } });
    const payload = JSON.parse(stdout) as { critical: Record<string, Record<string, string> | string> };
    expect(payload.critical).toEqual({ identity: { 'docker-reference': `${reg.host}/sig/bb:v1` }, image: { 'docker-manifest-digest': digest }, type: 'atomic container signature' });
    expect(sig.length).toBeGreaterThan(100);

    const pol = await policy('signer', signedBy(signerKey));
    const id = await ok(pullArgs(pol, `${reg.host}/sig/bb:v1`));
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    expect((await barge(['image', 'exists', `${reg.host}/sig/bb:v1`])).code).toBe(0);
    // Out again, so that the refusals below can show that nothing was stored.
    await ok(['rmi', `${reg.host}/sig/bb:v1`]);
  });

  it('--sign-passphrase-file unlocks a protected key; a wrong passphrase fails the push', async () => {
    await gpg(['--passphrase', 'open sesame', '--quick-gen-key', 'barge locked <locked@example.com>', 'ed25519', 'sign', 'never']);
    const locked = (await gpg(['--with-colons', '--list-keys', 'locked@example.com'])).stdout.split('\n').find((l) => l.startsWith('fpr:'))!.split(':')[9]!;
    // The agent remembers the passphrase it was given at generation; forget it.
    await execFileP('gpgconf', ['--reload', 'gpg-agent'], { env: { ...process.env, GNUPGHOME: gnupg } });
    const wrong = join(env.tmp, 'wrong-pass');
    const right = join(env.tmp, 'right-pass');
    await writeFile(wrong, 'open barley\n');
    await writeFile(right, 'open sesame\nignored second line\n');
    const r = await barge(['push', '-q', '--tls-verify=false', '--sign-by', locked, '--sign-passphrase-file', wrong, 'busybox', `${reg.host}/sig/locked:v1`]);
    expect(r.code, describeFailure([], r)).toBe(125);
    expect(r.stderr).toContain(`signing with key ${locked} failed`);
    await ok(['push', '-q', '--tls-verify=false', '--sign-by', locked, '--sign-passphrase-file', right, 'busybox', `${reg.host}/sig/locked:v1`]);
    const lockedKey = join(env.tmp, 'locked.asc');
    await writeFile(lockedKey, (await gpg(['--armor', '--export', locked])).stdout);
    await ok(pullArgs(await policy('locked', signedBy(lockedKey)), `${reg.host}/sig/locked:v1`));
  });

  it('refuses an unsigned image, storing nothing', async () => {
    await ok(['push', '-q', '--tls-verify=false', 'busybox', `${reg.host}/sig/unsigned:v1`]);
    const pol = await policy('signer', signedBy(signerKey));
    await refused(pullArgs(pol, `${reg.host}/sig/unsigned:v1`), 'Source image rejected: A signature was required, but no signature exists', `${reg.host}/sig/unsigned:v1`);
  });

  it('refuses a signature by a key the policy does not list', async () => {
    const pol = await policy('other', signedBy(otherKey));
    await refused(pullArgs(pol, `${reg.host}/sig/bb:v1`), `Source image rejected: Invalid GPG signature: signed by key ${fpr.slice(-16)}, which the policy does not list`, `${reg.host}/sig/bb:v1`);
  });

  it('refuses a tampered signature', async () => {
    await ok(['push', '-q', '--tls-verify=false', '--sign-by', fpr, 'busybox', `${reg.host}/sig/tampered:v1`]);
    const file = sigFile('sig/tampered', await digestOf(`${reg.host}/sig/tampered:v1`));
    const bytes = await readFile(file);
    // A byte of the signed payload (the literal data packet sits in the middle).
    bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
    await writeFile(file, bytes);
    const pol = await policy('signer', signedBy(signerKey));
    await refused(pullArgs(pol, `${reg.host}/sig/tampered:v1`), /Source image rejected: (Invalid GPG signature|Invalid signature payload)/, `${reg.host}/sig/tampered:v1`);
  });

  it('refuses a signature of another manifest digest', async () => {
    const ctr = await ok(['from', '-q', 'busybox']);
    await ok(['config', '--label', 'variant=other', ctr]);
    await ok(['commit', '-q', '--rm', ctr, 'other']);
    await ok(['push', '-q', '--tls-verify=false', 'other', `${reg.host}/sig/digest:v1`]);
    const manifest = join(env.tmp, 'bb-manifest.json');
    await writeFile(manifest, await ok(['skopeo', 'inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/sig/bb:v1`]));
    // Signed for the right name, but over busybox's manifest, not this image's.
    const digest = await digestOf(`${reg.host}/sig/digest:v1`);
    await mkdir(join(sigFile('sig/digest', digest), '..'), { recursive: true });
    await ok(['skopeo', 'standalone-sign', manifest, `${reg.host}/sig/digest:v1`, fpr, '-o', sigFile('sig/digest', digest)]);
    const pol = await policy('signer', signedBy(signerKey));
    await refused(pullArgs(pol, `${reg.host}/sig/digest:v1`), `Source image rejected: Signature for digest ${await digestOf(`${reg.host}/sig/bb:v1`)} does not match`, `${reg.host}/sig/digest:v1`);
  });

  it('refuses a signature naming another image, unless signedIdentity accepts that name', async () => {
    // The same image under another name: the signature of sig/bb:v1 placed where sig/renamed's is looked for.
    await ok(['push', '-q', '--tls-verify=false', 'busybox', `${reg.host}/sig/renamed:v1`]);
    const digest = await digestOf(`${reg.host}/sig/renamed:v1`);
    expect(digest).toBe(await digestOf(`${reg.host}/sig/bb:v1`));
    await mkdir(join(sigFile('sig/renamed', digest), '..'), { recursive: true });
    await writeFile(sigFile('sig/renamed', digest), await readFile(sigFile('sig/bb', digest)));
    const pol = await policy('signer', signedBy(signerKey));
    await refused(pullArgs(pol, `${reg.host}/sig/renamed:v1`), `Source image rejected: Signature for identity ${reg.host}/sig/bb:v1 is not accepted`, `${reg.host}/sig/renamed:v1`);
    // By digest, matchRepoDigestOrExact asks only for the repository, which still differs.
    await refused(pullArgs(pol, `${reg.host}/sig/renamed@${digest}`), 'is not accepted');
    const byRepo = await policy('by-repo', signedBy(signerKey, { signedIdentity: { type: 'exactRepository', dockerRepository: `${reg.host}/sig/bb` } }));
    await ok(pullArgs(byRepo, `${reg.host}/sig/renamed:v1`));
    const remapped = await policy('remapped', signedBy(signerKey, { signedIdentity: { type: 'remapIdentity', prefix: `${reg.host}/sig/renamed`, signedPrefix: `${reg.host}/sig/bb` } }));
    await ok(pullArgs(remapped, `${reg.host}/sig/renamed:v1`));
  });

  it('reads signatures from an http:// lookaside', async () => {
    http = createServer((req, res) => {
      const path = join(lookaside, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
      readFile(path).then(
        (b) => res.end(b),
        () => {
          res.statusCode = 404;
          res.end();
        },
      );
    });
    await new Promise<void>((r) => http!.listen(0, '127.0.0.1', r));
    httpRegistriesD = join(env.tmp, 'registries-http.d');
    await mkdir(httpRegistriesD);
    await writeFile(join(httpRegistriesD, 'http.yaml'), `default-docker:\n  lookaside: http://127.0.0.1:${(http.address() as AddressInfo).port}\n`);
    const pol = await policy('signer', signedBy(signerKey));
    const args = ['skopeo', '--registries.d', httpRegistriesD, '--policy', pol, 'copy', '-q', '--src-tls-verify=false', `docker://${reg.host}/sig/bb:v1`, `dir:${join(env.tmp, 'via-http')}`];
    await ok(args);
    expect(existsSync(join(env.tmp, 'via-http', 'signature-1'))).toBe(true);
    const r = await barge(['skopeo', '--registries.d', httpRegistriesD, '--policy', pol, 'copy', '-q', '--src-tls-verify=false', `docker://${reg.host}/sig/unsigned:v1`, `dir:${join(env.tmp, 'via-http-2')}`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('A signature was required, but no signature exists');
    expect(existsSync(join(env.tmp, 'via-http-2'))).toBe(false);
  });

  it('sigstoreSigned requirements are refused with the reason', async () => {
    const pol = await policy('sigstore', { type: 'sigstoreSigned', keyPath: signerKey });
    await refused(pullArgs(pol, `${reg.host}/sig/bb:v1`), 'requires a sigstoreSigned signature; barge verifies only GPG (signedBy) signatures');
  });
});

describe('interoperability with skopeo', () => {
  const skopeo = async (args: string[]): Promise<void> => {
    const r = await runTool('skopeo', args);
    expect(r.code, describeTool('skopeo', args, r)).toBe(0);
  };

  it('skopeo verifies what barge signed, and refuses the unsigned image under the same policy', async () => {
    const pol = await policy('signer', signedBy(signerKey));
    const out = join(env.tmp, 'skopeo-verified');
    await skopeo(['--registries.d', registriesD, '--policy', pol, 'copy', '-q', '--src-tls-verify=false', `docker://${reg.host}/sig/bb:v1`, `dir:${out}`]);
    expect(readdirSync(out)).toContain('signature-1');
    const r = await runTool('skopeo', ['--registries.d', registriesD, '--policy', pol, 'copy', '-q', '--src-tls-verify=false', `docker://${reg.host}/sig/unsigned:v1`, `dir:${join(env.tmp, 'skopeo-refused')}`]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('A signature was required, but no signature exists');
  });

  it('barge verifies what skopeo signed, and carries the signature on to dir:', async () => {
    await skopeo(['--insecure-policy', '--registries.d', registriesD, 'copy', '-q', '--src-tls-verify=false', '--dest-tls-verify=false', '--sign-by', fpr, `docker://${reg.host}/sig/unsigned:v1`, `docker://${reg.host}/sk/bb:v1`]);
    const pol = await policy('signer', signedBy(signerKey));
    await ok(pullArgs(pol, `${reg.host}/sk/bb:v1`));
    const out = join(env.tmp, 'from-skopeo');
    await ok(['skopeo', '--policy', pol, 'copy', '-q', '--src-tls-verify=false', `docker://${reg.host}/sk/bb:v1`, `dir:${out}`]);
    const digest = await digestOf(`${reg.host}/sk/bb:v1`);
    expect(await readFile(join(out, 'signature-1'))).toEqual(await readFile(sigFile('sk/bb', digest)));
  });
});

describe('dir: signatures', () => {
  it('skopeo copy --sign-by --sign-identity writes signature-1, which a copy verifies, carries, or drops', async () => {
    const signed = join(env.tmp, 'dir-signed');
    const identity = `${reg.host}/dir/bb:1`;
    await ok(['skopeo', 'copy', '-q', '--sign-by', fpr, '--sign-identity', identity, 'containers-storage:busybox', `dir:${signed}`]);
    expect(readdirSync(signed)).toContain('signature-1');
    const exact = await policy('exact', signedBy(signerKey, { signedIdentity: { type: 'exactReference', dockerReference: identity } }));
    // dir: has no name of its own, so only exactReference or exactRepository can accept it.
    const carried = join(env.tmp, 'dir-carried');
    await ok(['skopeo', '--policy', exact, 'copy', '-q', `dir:${signed}`, `dir:${carried}`]);
    expect(await readFile(join(carried, 'signature-1'))).toEqual(await readFile(join(signed, 'signature-1')));
    const dropped = join(env.tmp, 'dir-dropped');
    await ok(['skopeo', '--policy', exact, 'copy', '-q', '--remove-signatures', `dir:${signed}`, `dir:${dropped}`]);
    expect(readdirSync(dropped)).not.toContain('signature-1');
    // skopeo accepts barge's dir: signature under the same policy.
    const sk = await runTool('skopeo', ['--policy', exact, 'copy', '-q', `dir:${signed}`, `dir:${join(env.tmp, 'dir-skopeo')}`]);
    expect(sk.code, describeTool('skopeo', [], sk)).toBe(0);
    // A destination that keeps no signatures needs --remove-signatures.
    const r = await barge(['skopeo', 'copy', '-q', `dir:${signed}`, `oci:${join(env.tmp, 'dir-oci')}:x`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Can not copy signatures to oci:');
    await ok(['skopeo', 'copy', '-q', '--remove-signatures', `dir:${signed}`, `oci:${join(env.tmp, 'dir-oci')}:x`]);
  });

  it('dir: → docker:// puts the signature in the lookaside, where a pull verifies it', async () => {
    const signed = join(env.tmp, 'dir-signed');
    await ok(['skopeo', 'copy', '-q', '--dest-tls-verify=false', `dir:${signed}`, `docker://${reg.host}/dir/bb:1`]);
    const digest = await digestOf(`${reg.host}/dir/bb:1`);
    expect(existsSync(sigFile('dir/bb', digest))).toBe(true);
    await ok(pullArgs(await policy('signer', signedBy(signerKey)), `${reg.host}/dir/bb:1`));
  });

  it('refuses a dir: image whose signature names another identity, and one signed without --sign-identity', async () => {
    const pol = await policy('exact-other', signedBy(signerKey, { signedIdentity: { type: 'exactReference', dockerReference: `${reg.host}/dir/bb:2` } }));
    const r = await barge(['skopeo', '--policy', pol, 'copy', '-q', `dir:${join(env.tmp, 'dir-signed')}`, `dir:${join(env.tmp, 'dir-refused')}`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`Source image rejected: Signature for identity ${reg.host}/dir/bb:1 is not accepted`);
    expect(existsSync(join(env.tmp, 'dir-refused'))).toBe(false);
    const noName = await barge(['skopeo', 'copy', '-q', '--sign-by', fpr, 'containers-storage:busybox', `dir:${join(env.tmp, 'dir-noname')}`]);
    expect(noName.code).toBe(1);
    expect(noName.stderr).toContain('Cannot determine canonical Docker reference for destination dir:');
  });
});

describe('commit and build', () => {
  it('commit --sign-by signs the image written to docker://', async () => {
    const ctr = await ok(['from', '-q', 'busybox']);
    await ok(['commit', '-q', '--tls-verify=false', '--sign-by', fpr, ctr, `docker://${reg.host}/commit/bb:v1`]);
    await ok(pullArgs(await policy('signer', signedBy(signerKey)), `${reg.host}/commit/bb:v1`));
    await refused(['commit', '-q', '--sign-by', fpr, ctr, 'local-signed'], "--sign-by: barge's local storage keeps no signatures", 'local-signed');
    await ok(['rm', ctr]);
  });

  it('build --sign-by is refused with the reason', async () => {
    await refused(['build', '--sign-by', fpr, env.tmp], "--sign-by: barge's local storage keeps no signatures; sign when pushing (push --sign-by)");
  });
});
