// auth.json as Podman reads and writes it (containers-auth.json(5)), with Docker's config.json
// as a fallback and credential helpers (docker-credential-NAME).
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Credentials } from './client.ts';

interface AuthEntry {
  auth?: string;
  identitytoken?: string;
  [k: string]: unknown;
}

interface AuthFile {
  auths?: Record<string, AuthEntry>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
  [k: string]: unknown;
}

const MAX_AUTH_FILE = 4 * 1024 * 1024;

function uid(): number {
  return process.getuid?.() ?? 0;
}

/** Where login writes: --authfile, $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, /run/containers/UID/auth.json. */
export function primaryAuthFile(authfile?: string): string {
  if (authfile) return authfile;
  if (process.env.REGISTRY_AUTH_FILE) return process.env.REGISTRY_AUTH_FILE;
  if (process.env.XDG_RUNTIME_DIR) return join(process.env.XDG_RUNTIME_DIR, 'containers', 'auth.json');
  return `/run/containers/${uid()}/auth.json`;
}

/** Every file consulted for credentials, in order (the first one with an entry wins). */
export function authFilePaths(authfile?: string): { path: string; legacy: boolean }[] {
  const userSpecified = !!(authfile || process.env.REGISTRY_AUTH_FILE);
  const out = [{ path: primaryAuthFile(authfile), legacy: false }];
  const home = process.env.HOME || homedir();
  if (!userSpecified) {
    const cfg = process.env.XDG_CONFIG_HOME || join(home, '.config');
    out.push({ path: join(cfg, 'containers', 'auth.json'), legacy: false });
  }
  out.push({ path: join(process.env.DOCKER_CONFIG || join(home, '.docker'), 'config.json'), legacy: false });
  out.push({ path: join(home, '.dockercfg'), legacy: true });
  return out;
}

async function readAuthFile(path: string, legacy = false): Promise<AuthFile> {
  let text: Buffer;
  try {
    text = await readFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return {};
    throw e;
  }
  if (text.length > MAX_AUTH_FILE) throw new Error(`${path}: auth file larger than ${MAX_AUTH_FILE} bytes`);
  if (text.toString('utf8').trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text.toString('utf8'));
  } catch (e) {
    throw new Error(`${path}: malformed auth file: ${(e as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error(`${path}: malformed auth file: not a JSON object`);
  return legacy ? { auths: parsed as Record<string, AuthEntry> } : (parsed as AuthFile);
}

/** "https://index.docker.io/v1/" → "docker.io"; other keys keep their host/path form. */
export function normalizeAuthKey(key: string): string {
  let k = key;
  if (/^https?:\/\//.test(k)) {
    k = k.replace(/^https?:\/\//, '');
    k = k.split('/')[0]!;
  }
  if (k === 'index.docker.io' || k === 'registry-1.docker.io') return 'docker.io';
  return k;
}

/** "host/ns/repo", "host/ns", "host": the keys that may hold credentials for a repository. */
export function authKeysFor(registry: string, repo?: string): string[] {
  const keys: string[] = [];
  if (repo) {
    const parts = repo.split('/');
    for (let i = parts.length; i > 0; i--) keys.push(`${registry}/${parts.slice(0, i).join('/')}`);
  }
  keys.push(registry);
  return keys;
}

function decodeEntry(e: AuthEntry, where: string): Credentials | undefined {
  if (typeof e.identitytoken === 'string' && e.identitytoken) return { identityToken: e.identitytoken };
  if (typeof e.auth !== 'string' || e.auth === '') return undefined;
  const decoded = Buffer.from(e.auth, 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  if (i < 0) throw new Error(`${where}: malformed "auth" field (want base64 of user:password)`);
  return { username: decoded.slice(0, i), password: decoded.slice(i + 1) };
}

const HELPER_NOT_FOUND = /credentials not found/i;

/**
 * Runs `docker-credential-HELPER ACTION` with `input` on standard input (the docker credential
 * helper protocol) and returns its standard output.
 */
function runCredentialHelper(helper: string, action: 'get' | 'store' | 'erase', input: string): Promise<{ ok: true; out: string } | { ok: false; notFound: boolean; message: string }> {
  if (!/^[A-Za-z0-9._-]+$/.test(helper)) return Promise.reject(new Error(`invalid credential helper name ${JSON.stringify(helper)}`));
  return new Promise((resolve) => {
    const child = execFile(`docker-credential-${helper}`, [action], { timeout: 30_000, maxBuffer: 1 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (!err) return resolve({ ok: true, out: stdout });
      const message = `${stdout} ${stderr} ${err.message}`.replace(/\s+/g, ' ').trim();
      resolve({ ok: false, notFound: HELPER_NOT_FOUND.test(stdout) || HELPER_NOT_FOUND.test(stderr), message });
    });
    // A helper that exits without reading its input must not crash us with EPIPE.
    child.stdin?.on('error', () => {});
    child.stdin?.end(input);
  });
}

/** Runs `docker-credential-HELPER get` for a registry. */
export async function credentialHelperGet(helper: string, registry: string): Promise<Credentials | undefined> {
  const r = await runCredentialHelper(helper, 'get', registry);
  if (!r.ok) {
    if (r.notFound) return undefined;
    throw new Error(`credential helper docker-credential-${helper}: ${r.message}`);
  }
  let parsed: { Username?: unknown; Secret?: unknown };
  try {
    parsed = JSON.parse(r.out) as typeof parsed;
  } catch {
    throw new Error(`credential helper docker-credential-${helper}: malformed answer`);
  }
  if (typeof parsed.Secret !== 'string' || parsed.Secret === '') return undefined;
  if (parsed.Username === '<token>') return { identityToken: parsed.Secret };
  return { username: typeof parsed.Username === 'string' ? parsed.Username : '', password: parsed.Secret };
}

async function credentialHelperStore(helper: string, registry: string, username: string, secret: string): Promise<void> {
  const r = await runCredentialHelper(helper, 'store', JSON.stringify({ ServerURL: registry, Username: username, Secret: secret }));
  if (!r.ok) throw new Error(`credential helper docker-credential-${helper}: storing credentials for ${registry}: ${r.message}`);
}

/** Erases a registry's credentials in a helper; false when it had none. */
async function credentialHelperErase(helper: string, registry: string): Promise<boolean> {
  const r = await runCredentialHelper(helper, 'erase', registry);
  if (r.ok) return true;
  if (r.notFound) return false;
  throw new Error(`credential helper docker-credential-${helper}: erasing credentials for ${registry}: ${r.message}`);
}

/** The helper an auth file assigns to `key` (credHelpers for its host, else credsStore), as Docker and Podman pick it. */
function helperFor(file: AuthFile, key: string): string | undefined {
  const host = key.split('/')[0]!;
  const h = file.credHelpers?.[host] ?? file.credsStore;
  if (h === undefined) return undefined;
  // The helper protocol knows registries, not repositories.
  if (key !== host) throw new Error(`credential helper docker-credential-${h} stores credentials per registry, not for ${key}`);
  return h;
}

export interface FoundCredentials {
  credentials: Credentials;
  /** The file (or "helper NAME") they came from, for messages. */
  source: string;
  key: string;
}

/** Credentials for a repository, looked up as containers/image does. */
export async function lookupCredentials(registry: string, repo: string | undefined, authfile?: string): Promise<FoundCredentials | undefined> {
  const keys = authKeysFor(registry, repo);
  for (const { path, legacy } of authFilePaths(authfile)) {
    const file = await readAuthFile(path, legacy);
    const helper = file.credHelpers?.[registry];
    if (helper) {
      const c = await credentialHelperGet(helper, registry);
      if (c) return { credentials: c, source: `helper ${helper}`, key: registry };
      continue;
    }
    const auths = new Map<string, AuthEntry>();
    for (const [k, v] of Object.entries(file.auths ?? {})) {
      if (typeof v === 'object' && v !== null) auths.set(normalizeAuthKey(k), v);
    }
    for (const key of keys) {
      const e = auths.get(key);
      if (!e) continue;
      const c = decodeEntry(e, path);
      if (c) return { credentials: c, source: path, key };
    }
    if (file.credsStore) {
      const c = await credentialHelperGet(file.credsStore, registry).catch(() => undefined);
      if (c) return { credentials: c, source: `helper ${file.credsStore}`, key: registry };
    }
  }
  return undefined;
}

async function writeAuthFile(path: string, data: AuthFile): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp-${randomUUID()}`;
  try {
    await writeFile(tmp, `${JSON.stringify(data, null, '\t')}\n`, { mode: 0o600, flag: 'wx' });
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/**
 * Stores credentials under `key` ("host" or "host/path") in the primary auth file, or in the
 * credential helper that file names for the registry. Returns where they went.
 */
export async function storeCredentials(key: string, username: string, password: string, authfile?: string): Promise<string> {
  const path = primaryAuthFile(authfile);
  const file = await readAuthFile(path);
  const helper = helperFor(file, key);
  if (helper !== undefined) {
    await credentialHelperStore(helper, key, username, password);
    return `helper ${helper}`;
  }
  const auths = { ...(file.auths ?? {}) };
  auths[key] = { ...(auths[key] ?? {}), auth: Buffer.from(`${username}:${password}`).toString('base64') };
  delete auths[key]!.identitytoken;
  await writeAuthFile(path, { ...file, auths });
  return path;
}

/**
 * Removes the entry for `key` (or every entry with `all`). Returns false when there was none
 * in the primary file; `elsewhere` names a fallback file that still has one (Docker's config).
 */
export async function removeCredentials(key: string | undefined, authfile?: string): Promise<{ removed: boolean; elsewhere?: string }> {
  const path = primaryAuthFile(authfile);
  const file = await readAuthFile(path);
  const auths = { ...(file.auths ?? {}) };
  if (key === undefined) {
    // Every registry a helper is named for, and every one the file lists, may hold credentials there.
    for (const [host, helper] of Object.entries(file.credHelpers ?? {})) await credentialHelperErase(helper, host);
    if (file.credsStore) for (const k of Object.keys(auths)) await credentialHelperErase(file.credsStore, normalizeAuthKey(k));
    if (existsSync(path)) await writeAuthFile(path, { ...file, auths: {} });
    return { removed: true };
  }
  const helper = helperFor(file, key);
  const match = Object.keys(auths).find((k) => normalizeAuthKey(k) === key);
  if (helper !== undefined) {
    const erased = await credentialHelperErase(helper, key);
    if (match !== undefined) {
      delete auths[match];
      await writeAuthFile(path, { ...file, auths });
    }
    if (erased || match !== undefined) return { removed: true };
  }
  if (match === undefined) {
    for (const { path: p, legacy } of authFilePaths(authfile).slice(1)) {
      const f = await readAuthFile(p, legacy).catch(() => ({}) as AuthFile);
      if (Object.keys(f.auths ?? {}).some((k) => normalizeAuthKey(k) === key)) return { removed: false, elsewhere: p };
    }
    return { removed: false };
  }
  delete auths[match];
  await writeAuthFile(path, { ...file, auths });
  return { removed: true };
}

/** The username stored for `key` in any consulted file (login --get-login). */
export async function storedUsername(key: string, authfile?: string): Promise<string | undefined> {
  const [registry, ...rest] = key.split('/');
  const found = await lookupCredentials(registry!, rest.length ? rest.join('/') : undefined, authfile);
  if (!found) return undefined;
  return 'username' in found.credentials ? found.credentials.username : '<token>';
}

/** Parses --creds "USER[:PASSWORD]". */
export function parseCreds(s: string): Credentials {
  const i = s.indexOf(':');
  if (s === '' || i === 0) throw new Error('invalid --creds: username must not be empty');
  return i < 0 ? { username: s, password: '' } : { username: s.slice(0, i), password: s.slice(i + 1) };
}
