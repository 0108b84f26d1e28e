// The registry library's pure parts: references, challenges, registries.conf, auth.json lookup, policy scopes.
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { authKeysFor, lookupCredentials, normalizeAuthKey, parseCreds, storeCredentials, removeCredentials } from '../../src/image/registry/auth.ts';
import { parseChallenge } from '../../src/image/registry/client.ts';
import { checkPolicy, dirScopes, dockerScopes, identityMatches, type IdentityRule } from '../../src/image/registry/policy.ts';
import { makePayload, openPGPMessage, parsePayload, SignatureError } from '../../src/image/signature.ts';
import {
  loadRegistriesConf,
  pullEndpoints,
  pushEndpoint,
  resetRegistriesConfCache,
  resolveShortName,
  type RegistriesConf,
} from '../../src/image/registry/registries-conf.ts';
import { formatDockerReference, normalizeDockerName, parseDockerSpec } from '../../src/image/transports/docker.ts';
import { parseReference } from '../../src/image/reference.ts';

const D = `sha256:${'a'.repeat(64)}`;
const saved = { ...process.env };
const temps: string[] = [];

afterEach(async () => {
  process.env = { ...saved };
  resetRegistriesConfCache();
  for (const t of temps.splice(0)) await rm(t, { recursive: true, force: true });
});

async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'barge-reg-unit-'));
  temps.push(d);
  return d;
}

const split = (s: string): { domain: string; path: string; suffix: string } => {
  const r = parseReference(s);
  return { domain: r.domain, path: r.path, suffix: `${r.tag ? `:${r.tag}` : ''}${r.digest ? `@${r.digest}` : ''}` };
};

describe('docker references', () => {
  it('normalises like Docker', () => {
    expect(formatDockerReference(normalizeDockerName('busybox'))).toBe('docker.io/library/busybox:latest');
    expect(formatDockerReference(normalizeDockerName('index.docker.io/foo/bar:1'))).toBe('docker.io/foo/bar:1');
    expect(formatDockerReference(normalizeDockerName(`localhost:5000/a/b@${D}`))).toBe(`localhost:5000/a/b@${D}`);
    expect(formatDockerReference(normalizeDockerName(`quay.io/x:t@${D}`))).toBe(`quay.io/x:t@${D}`);
    expect(() => parseDockerSpec('quay.io/x')).toThrow(/must start with docker:\/\//);
    expect(() => parseDockerSpec('//Quay.io/X')).toThrow(/invalid docker reference/);
  });
});

describe('WWW-Authenticate', () => {
  it('parses bearer and basic challenges', () => {
    expect(parseChallenge('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"')).toEqual({
      scheme: 'bearer',
      params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull' },
    });
    expect(parseChallenge('Basic realm="x"')).toEqual({ scheme: 'basic', params: { realm: 'x' } });
    expect(parseChallenge('Negotiate')).toBeUndefined();
    expect(parseChallenge(undefined)).toBeUndefined();
  });
});

describe('registries.conf', () => {
  const base = (over: Partial<RegistriesConf> = {}): RegistriesConf => ({ unqualifiedSearchRegistries: [], registries: [], aliases: {}, shortNameMode: 'permissive', files: [], ...over });

  it('resolves short names: aliases, search registries (docker.io gets library/), errors', () => {
    const conf = base({ unqualifiedSearchRegistries: ['reg.example:5000', 'docker.io'], aliases: { fedora: 'registry.fedoraproject.org/fedora' } });
    expect(resolveShortName(conf, 'alpine:3', split)).toEqual(['reg.example:5000/alpine:3', 'docker.io/library/alpine:3']);
    expect(resolveShortName(conf, 'fedora:39', split)).toEqual(['registry.fedoraproject.org/fedora:39']);
    expect(resolveShortName(conf, 'quay.io/x/y', split)).toEqual(['quay.io/x/y']);
    expect(() => resolveShortName(base(), 'x', split)).toThrow(/no unqualified-search registries are defined/);
    expect(() => resolveShortName({ ...conf, shortNameMode: 'enforcing' }, 'alpine', split)).toThrow(/cannot prompt without a TTY/);
  });

  it('reads v2 files with drop-ins; prefixes rewrite; mirrors come first', async () => {
    const d = await tmp();
    await mkdir(join(d, 'conf.d'));
    await writeFile(join(d, 'main.conf'), 'unqualified-search-registries = ["a.example"]\n[[registry]]\nprefix = "example.com/foo"\nlocation = "internal.example/mirror/foo"\n');
    await writeFile(
      join(d, 'conf.d', '10-more.conf'),
      '[[registry]]\nlocation = "docker.io"\n[[registry.mirror]]\nlocation = "m1.example"\n[[registry.mirror]]\nlocation = "m2.example"\npull-from-mirror = "digest-only"\n[aliases]\n"app" = "example.com/foo/app"\n',
    );
    process.env.CONTAINERS_REGISTRIES_CONF = join(d, 'main.conf');
    process.env.CONTAINERS_REGISTRIES_CONF_DIR = join(d, 'conf.d');
    const conf = loadRegistriesConf();
    expect(conf.unqualifiedSearchRegistries).toEqual(['a.example']);
    expect(conf.aliases.app).toBe('example.com/foo/app');
    expect(pushEndpoint(conf, 'example.com/foo/bar').name).toBe('internal.example/mirror/foo/bar');
    expect(pushEndpoint(conf, 'example.com/foobar').name).toBe('example.com/foobar');
    expect(pullEndpoints(conf, 'docker.io/library/busybox', false).endpoints.map((e) => e.name)).toEqual(['m1.example/library/busybox', 'docker.io/library/busybox']);
    expect(pullEndpoints(conf, 'docker.io/library/busybox', true).endpoints.map((e) => e.name)).toEqual([
      'm1.example/library/busybox',
      'm2.example/library/busybox',
      'docker.io/library/busybox',
    ]);
  });

  it('alias-only drop-ins are read when aliases are needed, in file order', async () => {
    const d = await tmp();
    await mkdir(join(d, 'conf.d'));
    await writeFile(join(d, 'main.conf'), '[aliases]\n"app" = "one.example/app"\n"keep" = "one.example/keep"\n');
    await writeFile(join(d, 'conf.d', '20-aliases.conf'), '# short names\n[aliases]\n  "app" = "two.example/app"\n  "x" = "two.example/x"\n');
    await writeFile(join(d, 'conf.d', '30-more.conf'), '[[registry]]\nlocation = "three.example"\ninsecure = true\n[aliases]\n"x" = "three.example/x"\n');
    await writeFile(join(d, 'conf.d', '40-broken.conf'), '[aliases]\n"y" = \n');
    process.env.CONTAINERS_REGISTRIES_CONF = join(d, 'main.conf');
    process.env.CONTAINERS_REGISTRIES_CONF_DIR = join(d, 'conf.d');
    const conf = loadRegistriesConf();
    // Registries come without touching the aliases; the broken alias file only fails when they are read.
    expect(pushEndpoint(conf, 'three.example/a').insecure).toBe(true);
    expect(conf.files.map((f) => f.slice(d.length + 1))).toEqual(['main.conf', 'conf.d/20-aliases.conf', 'conf.d/30-more.conf', 'conf.d/40-broken.conf']);
    expect(() => conf.aliases).toThrow(/40-broken\.conf/);
    await writeFile(join(d, 'conf.d', '40-broken.conf'), '[aliases]\n"y" = "four.example/y"\n');
    resetRegistriesConfCache();
    expect(loadRegistriesConf().aliases).toEqual({ app: 'two.example/app', keep: 'one.example/keep', x: 'three.example/x', y: 'four.example/y' });
  });
});

describe('auth.json', () => {
  it('normalises keys and looks up the most specific entry, falling back to Docker\'s config', async () => {
    expect(normalizeAuthKey('https://index.docker.io/v1/')).toBe('docker.io');
    expect(authKeysFor('quay.io', 'a/b')).toEqual(['quay.io/a/b', 'quay.io/a', 'quay.io']);
    expect(parseCreds('u:p:q')).toEqual({ username: 'u', password: 'p:q' });
    const d = await tmp();
    process.env.HOME = d;
    delete process.env.REGISTRY_AUTH_FILE;
    delete process.env.DOCKER_CONFIG;
    process.env.XDG_RUNTIME_DIR = join(d, 'run');
    process.env.XDG_CONFIG_HOME = join(d, 'config');
    await mkdir(join(d, '.docker'));
    await writeFile(join(d, '.docker', 'config.json'), JSON.stringify({ auths: { 'https://index.docker.io/v1/': { auth: Buffer.from('dock:er').toString('base64') } } }));
    expect((await lookupCredentials('docker.io', 'library/busybox'))?.credentials).toEqual({ username: 'dock', password: 'er' });
    const path = await storeCredentials('quay.io/org', 'u1', 'p1');
    expect(path).toBe(join(d, 'run', 'containers', 'auth.json'));
    await storeCredentials('quay.io', 'u2', 'p2');
    expect((await lookupCredentials('quay.io', 'org/app'))?.credentials).toEqual({ username: 'u1', password: 'p1' });
    expect((await lookupCredentials('quay.io', 'other/app'))?.credentials).toEqual({ username: 'u2', password: 'p2' });
    expect((await removeCredentials('quay.io/org')).removed).toBe(true);
    expect((await lookupCredentials('quay.io', 'org/app'))?.credentials).toEqual({ username: 'u2', password: 'p2' });
    expect(await removeCredentials('docker.io')).toEqual({ removed: false, elsewhere: join(d, '.docker', 'config.json') });
  });
});

describe('policy.json', () => {
  it('picks the most specific scope', async () => {
    expect(dockerScopes('reg.example:5000/a/b', 'v1')).toEqual(['reg.example:5000/a/b:v1', 'reg.example:5000/a/b', 'reg.example:5000/a', 'reg.example:5000', '*.example', '']);
    const d = await tmp();
    const p = join(d, 'policy.json');
    await writeFile(p, JSON.stringify({ default: [{ type: 'reject' }], transports: { docker: { 'ok.example/a': [{ type: 'insecureAcceptAnything' }], 'ok.example/a/secret': [{ type: 'reject' }] } } }));
    expect(() => checkPolicy('docker', dockerScopes('ok.example/a/b', 'latest'), 'x', p)).not.toThrow();
    expect(() => checkPolicy('docker', dockerScopes('ok.example/a/secret', 'latest'), 'x', p)).toThrow(/rejected by policy/);
    expect(() => checkPolicy('docker', dockerScopes('other.example/a', 'latest'), 'x', p)).toThrow(/rejected by policy/);
    expect(() => checkPolicy('docker', [''], 'x', join(d, 'missing.json'))).toThrow(/no such file/);
  });

  it('returns the signedBy checks still to make, and refuses malformed ones and sigstoreSigned', async () => {
    const d = await tmp();
    const key = join(d, 'key.asc');
    await writeFile(key, 'not really a key');
    const p = join(d, 'policy.json');
    const write = (req: Record<string, unknown>): Promise<void> => writeFile(p, JSON.stringify({ default: [req] }));
    await write({ type: 'signedBy', keyType: 'GPGKeys', keyPath: key, signedIdentity: { type: 'exactRepository', dockerRepository: 'r.example/a' } });
    const pending = checkPolicy('docker', [''], 'x', p, normalizeDockerName('r.example/a:1'));
    expect(pending?.requirements).toHaveLength(1);
    expect(pending?.requirements[0]!.keys[0]!.toString()).toBe('not really a key');
    expect(pending?.requirements[0]!.identity).toEqual({ type: 'exactRepository', dockerRepository: 'r.example/a' });
    await write({ type: 'signedBy', keyType: 'signedByX509CAs', keyPath: key });
    expect(() => checkPolicy('docker', [''], 'x', p)).toThrow(/keyType "signedByX509CAs" is not supported/);
    await write({ type: 'signedBy', keyType: 'GPGKeys', keyPath: key, keyData: 'eA==' });
    expect(() => checkPolicy('docker', [''], 'x', p)).toThrow(/exactly one of keyPath, keyPaths and keyData/);
    await write({ type: 'signedBy', keyType: 'GPGKeys', keyData: 'eA==', signedIdentity: { type: 'exactReference', dockerReference: 'r.example/a' } });
    expect(() => checkPolicy('docker', [''], 'x', p)).toThrow(/names no tag or digest/);
    await write({ type: 'sigstoreSigned', keyPath: key });
    expect(() => checkPolicy('docker', [''], 'x', p)).toThrow(/requires a sigstoreSigned signature; barge verifies only GPG/);
    await write({ type: 'insecureAcceptAnything' });
    expect(checkPolicy('docker', [''], 'x', p)).toBeUndefined();
  });

  it('dir: scopes run from the directory up to, not including, /', () => {
    expect(dirScopes('/srv/images/a')).toEqual(['/srv/images/a', '/srv/images', '/srv', '']);
  });

  it('signedIdentity rules decide which signed names stand for the image', () => {
    const ref = normalizeDockerName;
    const m = (rule: IdentityRule, intended: string | undefined, signed: string): boolean => identityMatches(rule, intended === undefined ? undefined : ref(intended), ref(signed));
    const digest = `sha256:${'a'.repeat(64)}`;
    const def: IdentityRule = { type: 'matchRepoDigestOrExact' };
    expect(m(def, 'r.example/a:1', 'r.example/a:1')).toBe(true);
    expect(m(def, 'r.example/a:1', 'r.example/a:2')).toBe(false);
    expect(m(def, `r.example/a@${digest}`, 'r.example/a:2')).toBe(true);
    expect(m(def, `r.example/a@${digest}`, 'r.example/b:2')).toBe(false);
    expect(m(def, undefined, 'r.example/a:1')).toBe(false);
    expect(m({ type: 'matchExact' }, `r.example/a@${digest}`, 'r.example/a:1')).toBe(false);
    expect(m({ type: 'matchRepository' }, 'r.example/a:1', 'r.example/a:7')).toBe(true);
    expect(m({ type: 'exactReference', dockerReference: ref('r.example/a:1') }, undefined, 'r.example/a:1')).toBe(true);
    expect(m({ type: 'exactRepository', dockerRepository: 'r.example/a' }, 'other.example/x:1', 'r.example/a:9')).toBe(true);
    const remap: IdentityRule = { type: 'remapIdentity', prefix: 'mirror.example/ns', signedPrefix: 'r.example/ns' };
    expect(m(remap, 'mirror.example/ns/app:1', 'r.example/ns/app:1')).toBe(true);
    expect(m(remap, 'mirror.example/nsx/app:1', 'r.example/nsx/app:1')).toBe(false);
    // Short names in a signature mean what Docker makes of them.
    expect(m(def, 'docker.io/library/busybox:1', 'busybox:1')).toBe(true);
  });
});

describe('simple-signing payloads', () => {
  it('round-trips the claims and refuses other shapes', () => {
    const digest = `sha256:${'b'.repeat(64)}`;
    const payload = makePayload('r.example/a:1', digest);
    expect(JSON.parse(payload.toString()).critical).toEqual({ identity: { 'docker-reference': 'r.example/a:1' }, image: { 'docker-manifest-digest': digest }, type: 'atomic container signature' });
    expect(parsePayload(payload)).toEqual({ dockerReference: 'r.example/a:1', manifestDigest: digest });
    expect(() => parsePayload(Buffer.from('{"critical":{"type":"other"}}'))).toThrow(SignatureError);
    expect(() => parsePayload(Buffer.from('nope'))).toThrow(/Invalid signature payload/);
  });

  it('takes bare OpenPGP and prefixed simple-signing blobs, refuses sigstore and text', () => {
    const pgp = Buffer.from([0xa3, 1, 2, 3]);
    expect(openPGPMessage(pgp, 's')).toEqual(pgp);
    expect(openPGPMessage(Buffer.concat([Buffer.from('\x00simple-signing\n'), pgp]), 's')).toEqual(pgp);
    expect(() => openPGPMessage(Buffer.from('\x00sigstore-json\n{}'), 's')).toThrow(/"sigstore-json" signatures are not supported/);
    expect(() => openPGPMessage(Buffer.from('hello'), 's')).toThrow(/unrecognized signature format, starting with binary 0x68/);
  });
});
