// Registry commands: login, logout, list-tags, Skopeo's inspect and delete, and the flag
// plumbing (--tls-verify, --creds, --authfile, --cert-dir) the transfer commands share.
import { readFile } from 'node:fs/promises';
import { print, type GlobalOptions } from '../context.ts';
import { algorithmOf, digestOf, DigestMismatchError } from '../../image/digest.ts';
import { choosePlatform, isImageConfigMediaType, MAX_CONFIG_SIZE, parseManifest } from '../../image/manifest.ts';
import type { ImageSource } from '../../image/transport.ts';
import { knownTransports, openSource, parseImageName } from '../../image/transports/index.ts';
import type { ImageConfig, Manifest } from '../../image/types.ts';
import { lookupCredentials, normalizeAuthKey, removeCredentials, storeCredentials, storedUsername } from '../../image/registry/auth.ts';
import { RegistryClient, readBody, type Credentials } from '../../image/registry/client.ts';
import { isInsecureRegistry, loadRegistriesConf, loadTLSFiles, pushEndpoint, resolveShortName } from '../../image/registry/registries-conf.ts';
import { parseDuration } from '../../primitives/config.ts';
import { retryFlags } from '../retry-flags.ts';
import type { GoType } from '../gotemplate.ts';
import { OCI_IMAGE, SKOPEO_INSPECT } from '../gotypes.ts';
import { GoTime } from '../../image/gotime.ts';
import { parseReference } from '../../image/reference.ts';
import { setPolicyOptions } from '../../image/registry/policy.ts';
import {
  clientFor,
  DockerSource,
  formatDockerReference,
  normalizeDockerName,
  parseDockerSpec,
  repoName,
  setDockerOptions,
  type DockerOptions,
} from '../../image/transports/docker.ts';

type Opts = Record<string, unknown>;

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** Go-style boolean flag values ("--tls-verify=false"). */
export function boolFlag(v: unknown, flag: string): boolean | undefined {
  if (v === undefined) return undefined;
  if (v === true || v === 'true' || v === '1' || v === 't' || v === 'TRUE' || v === 'True') return true;
  if (v === false || v === 'false' || v === '0' || v === 'f' || v === 'FALSE' || v === 'False') return false;
  throw new Error(`invalid argument ${JSON.stringify(String(v))} for "--${flag}" flag: strconv.ParseBool: parsing ${JSON.stringify(String(v))}: invalid syntax`);
}

export function dockerOptions(o: Opts, prefix: '' | 'src' | 'dest'): DockerOptions {
  const key = (name: string): string => (prefix ? prefix + name[0]!.toUpperCase() + name.slice(1) : name);
  const flag = (name: string): string => (prefix ? `${prefix}-${name}` : name).replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  const out: DockerOptions = {};
  const tls = boolFlag(o[key('tlsVerify')] ?? (prefix ? o.tlsVerify : undefined), flag('tlsVerify'));
  if (tls !== undefined) out.tlsVerify = tls;
  const certDir = str(o[key('certDir')]) ?? (prefix ? str(o.certDir) : undefined);
  if (certDir) out.certDir = certDir;
  const creds = str(o[key('creds')]);
  const username = str(o[key('username')]);
  const password = str(o[key('password')]);
  if (creds !== undefined && (username !== undefined || password !== undefined)) throw new Error(`--${flag('creds')} cannot be combined with --${flag('username')} or --${flag('password')}`);
  if (creds !== undefined) out.creds = creds;
  else if (username !== undefined) out.creds = `${username}:${password ?? ''}`;
  // Commander gives a --no-creds defined beside --creds to the same key, as false.
  if (o[key('noCreds')] === true || o[key('creds')] === false) {
    if (out.creds !== undefined) throw new Error(`--${flag('noCreds')} cannot be combined with credentials`);
    out.noCreds = true;
  }
  const token = str(o[key('registryToken')]);
  if (token) out.registryToken = token;
  const authfile = str(o[key('authfile')]) ?? str(o.authfile);
  if (authfile) out.authfile = authfile;
  Object.assign(out, retryFlags(o));
  const policy = str(o.signaturePolicy) ?? str(o.policy);
  if (policy) out.signaturePolicy = policy;
  if (o.insecurePolicy === true) out.insecurePolicy = true;
  return out;
}

/**
 * Skopeo's global flags that act on the whole process (the others, --policy, --insecure-policy
 * and --override-*, are read with each command's own options).
 */
export async function applySkopeoGlobals(o: Opts): Promise<void> {
  const registriesD = str(o['registries.d']);
  if (registriesD !== undefined) (await import('../../image/registry/lookaside.ts')).setRegistriesDir(registriesD);
  // Every temporary file barge makes goes through os.tmpdir(), which reads TMPDIR on each call.
  const tmp = str(o.tmpdir);
  if (tmp) process.env.TMPDIR = tmp;
  // barge has no debug log yet; what it has is the stack trace of a failure.
  if (o.debug === true) process.env.BARGE_DEBUG = '1';
  const timeout = str(o.commandTimeout);
  if (timeout !== undefined) {
    let ns: number;
    try {
      ns = parseDuration(timeout);
    } catch (e) {
      throw new Error(`invalid argument ${JSON.stringify(timeout)} for "--command-timeout" flag: ${(e as Error).message}`, { cause: e });
    }
    // As Skopeo: zero or less is no timeout. A timer cannot wait longer than 2^31-1 ms (24.8
    // days); no command runs that long, so such a limit is as good as none.
    const ms = Math.max(1, Math.round(ns / 1e6));
    if (ns > 0 && ms <= 0x7fffffff) {
      setTimeout(() => {
        process.stderr.write(`Error: command timed out after ${timeout}: context deadline exceeded\n`);
        process.exit(1);
      }, ms).unref();
    }
  }
}

/** pull/push: one set of flags for both ends. copy: --src-* and --dest-* (plus the shared ones). */
export function applyRegistryFlags(o: Opts, kind: 'pull' | 'push' | 'copy'): void {
  const policy = str(o.signaturePolicy) ?? str(o.policy);
  setPolicyOptions({ ...(policy !== undefined && { path: policy }), insecure: o.insecurePolicy === true });
  if (kind === 'copy') setDockerOptions({ src: dockerOptions(o, 'src'), dst: dockerOptions(o, 'dest') });
  else {
    const d = dockerOptions(o, '');
    setDockerOptions({ src: d, dst: d });
  }
}

/** True when `name` starts with a transport ("oci:", "docker://"), not a registry ("localhost:5000/x"). */
export function hasTransport(name: string): boolean {
  const m = /^([a-z][a-z0-9-]*):/.exec(name);
  return !!m && knownTransports().includes(m[1]!) && !/^[a-z0-9.-]+:\d+\//.test(name);
}

/** A push destination: names without a transport go to a registry. */
export function withTransport(name: string): string {
  return hasTransport(name) ? name : `docker://${name}`;
}

export interface PullCandidate {
  ref: string;
  /** The name the pulled image gets in the store. */
  name: string;
}

/**
 * What `pull NAME` tries, in order: undefined for names of a non-registry transport; for
 * registry names the fully qualified candidates from short-name resolution.
 */
export function pullCandidates(name: string): PullCandidate[] | undefined {
  if (hasTransport(name)) {
    const n = parseImageName(name);
    if (n.transport !== 'docker') return undefined;
    const r = parseDockerSpec(n.spec);
    return [{ ref: `docker://${formatDockerReference(r)}`, name: formatDockerReference(r) }];
  }
  const conf = loadRegistriesConf();
  const split = (s: string): { domain: string; path: string; suffix: string } => {
    const r = parseReference(s);
    const suffix = `${r.tag ? `:${r.tag}` : ''}${r.digest ? `@${r.digest}` : ''}`;
    return { domain: r.domain, path: r.path, suffix };
  };
  return resolveShortName(conf, name, split, !!process.stdin.isTTY).map((full) => {
    const r = normalizeDockerName(full);
    return { ref: `docker://${formatDockerReference(r)}`, name: formatDockerReference(r) };
  });
}

// ---------------------------------------------------------------------------------------------
// login / logout

/** "https://host/path" → "host/path"; docker.io spellings → "docker.io". */
function loginKey(arg: string): string {
  let k = arg.replace(/^https?:\/\//, '').replace(/\/+$/, '');
  const [host, ...rest] = k.split('/');
  k = [normalizeAuthKey(host!), ...rest].join('/');
  if (!k || /\s/.test(k)) throw new Error(`invalid registry name ${JSON.stringify(arg)}`);
  return k;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of process.stdin as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > 1 << 20) throw new Error('password on standard input is larger than 1 MiB');
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

async function checkLogin(key: string, creds: Credentials, o: Opts): Promise<void> {
  const host = key.split('/')[0]!;
  const tls = boolFlag(o.tlsVerify, 'tls-verify');
  const client = new RegistryClient({
    registry: host,
    endpoint: host === 'docker.io' ? 'registry-1.docker.io' : host,
    insecure: tls === undefined ? isInsecureRegistry(loadRegistriesConf(), host) : !tls,
    tls: loadTLSFiles(host, str(o.certDir)),
    credentials: creds,
  });
  try {
    await client.checkCredentials();
  } catch (e) {
    const msg = (e as Error).message;
    if (/unauthorized|authentication required/i.test(msg)) throw new Error(`logging into "${key}": invalid username/password`, { cause: e });
    throw new Error(`authenticating creds for "${key}": ${msg}`, { cause: e });
  } finally {
    client.close();
  }
}

export async function loginCmd(_g: GlobalOptions, args: string[], o: Opts): Promise<void> {
  const arg = args[0];
  if (!arg) throw new Error('please provide a registry to log in to');
  const key = loginKey(arg);
  const authfile = str(o.authfile);
  if (o.getLogin) {
    const user = await storedUsername(key, authfile);
    if (user === undefined) throw new Error(`not logged into ${key}`);
    print(user);
    return;
  }
  let username = str(o.username);
  let password = str(o.password);
  if (o.passwordStdin) {
    if (password !== undefined) throw new Error('--password and --password-stdin are mutually exclusive');
    if (username === undefined) throw new Error('--username must be provided with --password-stdin');
    password = await readStdin();
  }
  if (username === undefined && password === undefined) {
    const existing = await lookupCredentials(key.split('/')[0]!, key.split('/').slice(1).join('/') || undefined, authfile);
    if (existing) {
      await checkLogin(key, existing.credentials, o);
      print(`Authenticating with existing credentials for ${key}\nExisting credentials are valid. Already logged in to ${key}`);
      return;
    }
  }
  if (username === undefined || username === '') throw new Error('username is required: use -u USERNAME (reading it from a terminal is not supported)');
  if (password === undefined) throw new Error('password is required: use -p PASSWORD or --password-stdin');
  if (password === '') throw new Error('password must not be empty');
  await checkLogin(key, { username, password }, o);
  await storeCredentials(key, username, password, authfile);
  print('Login Succeeded!');
}

export async function logoutCmd(_g: GlobalOptions, args: string[], o: Opts): Promise<void> {
  const authfile = str(o.authfile);
  if (o.all) {
    await removeCredentials(undefined, authfile);
    print('Removed login credentials for all registries');
    return;
  }
  const arg = args[0];
  if (!arg) throw new Error('please provide a registry to log out of (or --all)');
  const key = loginKey(arg);
  const r = await removeCredentials(key, authfile);
  if (!r.removed) {
    if (r.elsewhere) throw new Error(`not logged into ${key} with current tool. Existing credentials were established via docker login. Please use docker logout instead.`);
    throw new Error(`not logged into ${key}`);
  }
  print(`Removed login credentials for ${key}`);
}

// ---------------------------------------------------------------------------------------------
// list-tags, inspect, delete

function goJson(v: unknown): string {
  return JSON.stringify(v, null, 4);
}

/** The tags of a registry repository, named without a tag or digest (list-tags, pull --all-tags). */
export async function repositoryTags(name: string, o: Opts): Promise<{ repository: string; tags: string[] }> {
  const n = parseImageName(withTransport(name));
  if (n.transport !== 'docker') throw new Error(`unsupported transport "${n.transport}" for listing tags; only docker:// is supported`);
  const r = parseDockerSpec(n.spec);
  if (r.tag || r.digest) throw new Error(`tag or digest are not supported in the reference ${JSON.stringify(name)}: a repository is needed to list its tags`);
  const ep = pushEndpoint(loadRegistriesConf(), repoName(r));
  const { client, repo } = await clientFor(ep.name, ep.insecure, dockerOptions(o, ''));
  try {
    return { repository: repoName(r), tags: await client.listTags(repo) };
  } finally {
    client.close();
  }
}

export async function listTagsCmd(_g: GlobalOptions, args: string[], o: Opts): Promise<void> {
  const { repository, tags } = await repositoryTags(args[0]!, o);
  print(goJson({ Repository: repository, Tags: tags }));
}

async function readConfig(src: ImageSource, m: Manifest): Promise<Buffer> {
  const { stream } = await src.getBlob({ digest: m.config.digest, size: m.config.size, mediaType: m.config.mediaType });
  const bytes = await readBody(stream, MAX_CONFIG_SIZE, 'image config');
  const actual = digestOf(bytes, algorithmOf(m.config.digest));
  if (actual !== m.config.digest) throw new DigestMismatchError(m.config.digest, actual);
  return bytes;
}

/** The OCI image config Skopeo prints for `inspect --config`. */
function ociConfigView(c: ImageConfig): Record<string, unknown> {
  return {
    ...(c.created !== undefined && { created: c.created }),
    ...(c.author !== undefined && { author: c.author }),
    architecture: c.architecture,
    ...(c.variant !== undefined && { variant: c.variant }),
    os: c.os,
    ...(c.config !== undefined && { config: c.config }),
    rootfs: c.rootfs,
    ...(c.history !== undefined && { history: c.history }),
  };
}

/**
 * skopeo inspect --format: the Go template over `data` as the Go struct Skopeo fills (`type`:
 * its times, nil maps and slices, unknown fields), or the plain JSON for `json`/`{{json .}}`, as
 * Skopeo's report package does. A newline ends the output unless the template wrote one.
 */
async function printInspectTemplate(format: string, data: object, type: GoType, json: string): Promise<void> {
  const { isJSONFormat, normalizeFormat } = await import('../table.ts');
  if (isJSONFormat(format)) return print(json);
  const { goTyped, parseTemplate, TemplateError } = await import('../gotemplate.ts');
  let out: string;
  try {
    out = parseTemplate(normalizeFormat(format)).execute(goTyped(data, type));
  } catch (e) {
    // Skopeo renders into a buffer: a failed template prints nothing of it.
    if (e instanceof TemplateError) e.partialOutput = '';
    throw e;
  }
  process.stdout.write(out.endsWith('\n') ? out : `${out}\n`);
}

export async function inspectCmd(_g: GlobalOptions, args: string[], o: Opts): Promise<void> {
  applyRegistryFlags(o, 'pull');
  const format = str(o.format) || undefined;
  if (format !== undefined && o.raw) throw new Error('raw output does not support format option');
  const name = args[0]!;
  const n = parseImageName(name);
  if (n.transport === 'containers-storage') throw new Error('inspecting containers-storage: images: use "barge inspect --type image" instead');
  const src = await openSource(n);
  try {
    const top = await src.getManifest();
    if (o.raw && !o.config) {
      process.stdout.write(top.bytes);
      return;
    }
    let parsed = parseManifest(top.bytes, top.mediaType);
    if (parsed.kind === 'index') {
      const want = { ...(str(o.overrideOs) && { os: str(o.overrideOs)! }), ...(str(o.overrideArch) && { architecture: str(o.overrideArch)! }), ...(str(o.overrideVariant) && { variant: str(o.overrideVariant)! }) };
      const d = choosePlatform(parsed.index, want);
      const child = await src.getManifest(d.digest);
      const actual = digestOf(child.bytes, algorithmOf(d.digest));
      if (actual !== d.digest) throw new DigestMismatchError(d.digest, actual);
      parsed = parseManifest(child.bytes, child.mediaType || d.mediaType);
      if (parsed.kind !== 'manifest') throw new Error(`${src.reference}: nested indexes are not supported`);
    }
    const m = parsed.manifest;
    const configBytes = await readConfig(src, m);
    if (o.config) {
      if (o.raw) process.stdout.write(configBytes);
      else {
        const view = ociConfigView(JSON.parse(configBytes.toString('utf8')) as ImageConfig);
        if (format === undefined) print(goJson(view));
        else await printInspectTemplate(format, view, OCI_IMAGE, goJson(view));
      }
      return;
    }
    if (!isImageConfigMediaType(m.config.mediaType)) throw new Error(`${src.reference}: config media type ${m.config.mediaType} is not an image config`);
    const c = JSON.parse(configBytes.toString('utf8')) as ImageConfig;
    let tags: string[] = [];
    let repo = '';
    if (src instanceof DockerSource) {
      repo = repoName(src.ref);
      if (!o.noTags && o.tags !== false) tags = await src.listTags();
    }
    const out = {
      Name: repo,
      Digest: digestOf(top.bytes),
      RepoTags: tags,
      Created: c.created === undefined ? null : (GoTime.parse(c.created)?.toJSON() ?? c.created),
      DockerVersion: c.docker_version ?? '',
      Labels: c.config?.Labels ?? null,
      Architecture: c.architecture,
      // omitempty in Skopeo's JSON; undefined keeps the key's place for the template's struct.
      Variant: c.variant || undefined,
      Os: c.os,
      Layers: m.layers.map((l) => l.digest),
      LayersData: m.layers.map((l) => ({ MIMEType: l.mediaType, Digest: l.digest, Size: l.size, Annotations: l.annotations ?? null })),
      Env: c.config?.Env ?? null,
    };
    if (format === undefined) print(goJson(out));
    else await printInspectTemplate(format, out, SKOPEO_INSPECT, goJson(out));
  } finally {
    await src.close();
  }
}

export async function deleteCmd(_g: GlobalOptions, args: string[], o: Opts): Promise<void> {
  const n = parseImageName(args[0]!);
  if (n.transport !== 'docker') throw new Error(`deleting images is only supported for docker:// references, not ${n.transport}:`);
  const r = parseDockerSpec(n.spec);
  const ep = pushEndpoint(loadRegistriesConf(), repoName(r));
  const { client, repo } = await clientFor(ep.name, ep.insecure, dockerOptions(o, ''));
  try {
    let digest = r.digest;
    if (!digest) {
      const head = await client.headManifest(repo, r.tag ?? 'latest');
      if (!head) throw new Error(`reading manifest ${r.tag ?? 'latest'} in ${repoName(r)}: manifest unknown`);
      digest = head.digest || (await client.getManifest(repo, r.tag ?? 'latest')).digest;
    }
    await client.deleteManifest(repo, digest);
  } finally {
    client.close();
  }
}

/** skopeo manifest-digest FILE */
export async function manifestDigestCmd(_g: GlobalOptions, args: string[]): Promise<void> {
  const bytes = await readFile(args[0]!);
  print(digestOf(bytes));
}

/** The reference as a signature names it: normalised, without the :latest a pull would add. */
function signedReference(ref: string): string {
  return formatDockerReference(normalizeDockerName(ref), false);
}

/** skopeo standalone-sign MANIFEST REFERENCE FINGERPRINT -o SIGNATURE */
export async function standaloneSignCmd(_g: GlobalOptions, args: string[], o: Opts): Promise<void> {
  const [manifestFile, ref, fingerprint] = args as [string, string, string];
  const { gpgSign, makePayload } = await import('../../image/signature.ts');
  const manifest = await readFile(manifestFile);
  const sig = await gpgSign(makePayload(signedReference(ref), digestOf(manifest)), fingerprint, str(o.passphraseFile));
  const { writeFile } = await import('node:fs/promises');
  await writeFile(str(o.output)!, sig, { mode: 0o644 });
}

/**
 * skopeo standalone-verify MANIFEST REFERENCE FINGERPRINT SIGNATURE: the key comes from the
 * user's keyring, and the check is made in a keyring holding only that key.
 */
export async function standaloneVerifyCmd(_g: GlobalOptions, args: string[]): Promise<void> {
  const [manifestFile, ref, fingerprint, sigFile] = args as [string, string, string, string];
  const { exec } = await import('../../sys/exec.ts');
  const { manifestMatchesDigest, openPGPMessage, parsePayload, TrustedKeys } = await import('../../image/signature.ts');
  const manifest = await readFile(manifestFile);
  const exported = await exec('gpg', ['--batch', '--no-tty', '--armor', '--export', fingerprint]);
  if (exported.stdout === '') throw new Error(`Error verifying signature: key ${fingerprint} is not in the keyring`);
  const keys = await TrustedKeys.create([Buffer.from(exported.stdout)]);
  try {
    const fail = (why: string): never => {
      throw new Error(`Error verifying signature: ${why}`);
    };
    const { payload, fingerprint: signer } = await keys.verify(openPGPMessage(await readFile(sigFile), sigFile)).catch((e: Error) => fail(e.message));
    if (signer !== fingerprint.toUpperCase() && ![...keys.fingerprints].some((f) => f.endsWith(fingerprint.toUpperCase()))) fail(`Signature by ${signer} does not match expected fingerprint ${fingerprint}`);
    const claims = (() => {
      try {
        return parsePayload(payload);
      } catch (e) {
        return fail((e as Error).message);
      }
    })();
    const expected = signedReference(ref);
    if (signedReference(claims.dockerReference) !== expected) fail(`Docker reference ${claims.dockerReference} does not match ${expected}`);
    if (!manifestMatchesDigest(manifest, claims.manifestDigest)) fail(`Signature for docker digest ${JSON.stringify(claims.manifestDigest)} does not match`);
    print(`Signature verified, digest ${claims.manifestDigest}`);
  } finally {
    await keys.close();
  }
}
