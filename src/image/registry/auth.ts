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

/** Runs `docker-credential-HELPER get` for a registry. */
export function credentialHelperGet(helper: string, registry: string): Promise<Credentials | undefined> {
  if (!/^[A-Za-z0-9._-]+$/.test(helper)) return Promise.reject(new Error(`invalid credential helper name ${JSON.stringify(helper)}`));
  return new Promise((resolve, reject) => {
    const child = execFile(`docker-credential-${helper}`, ['get'], { timeout: 30_000, maxBuffer: 1 << 20, encoding: 'utf8' }, (err, stdout) => {
      if (err) {
        if (/credentials not found/i.test(stdout) || /credentials not found/i.test(String(err.message))) resolve(undefined);
        else reject(new Error(`credential helper docker-credential-${helper}: ${err.message.trim()}`));
        return;
      }
      try {
        const r = JSON.parse(stdout) as { Username?: unknown; Secret?: unknown };
        if (typeof r.Secret !== 'string') return resolve(undefined);
        if (r.Username === '<token>') return resolve({ identityToken: r.Secret });
        resolve({ username: typeof r.Username === 'string' ? r.Username : '', password: r.Secret });
      } catch {
        reject(new Error(`credential helper docker-credential-${helper}: malformed answer`));
      }
    });
    child.stdin?.end(registry);
  });
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

/** Stores credentials under `key` ("host" or "host/path") in the primary auth file. */
export async function storeCredentials(key: string, username: string, password: string, authfile?: string): Promise<string> {
  const path = primaryAuthFile(authfile);
  const file = await readAuthFile(path);
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
    if (existsSync(path)) await writeAuthFile(path, { ...file, auths: {} });
    return { removed: true };
  }
  const match = Object.keys(auths).find((k) => normalizeAuthKey(k) === key);
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
