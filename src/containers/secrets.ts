// Podman's secrets with its file driver: the content of each under ROOT/secrets/filedriver/ID
// (0600, in 0700 directories), their names, times and labels in ROOT/secrets/secrets.json. Every
// change happens under one store lock and replaces files by rename, so concurrent barge processes
// never see a torn file and two creates of one name cannot both succeed. A container's --secret
// uses keep only names and ids: mount secrets are copied into the container's own directory at
// create (so, as with Podman, removing the secret later does not break the container), env
// secrets are read at each start and go only into the runtime's config.json, never into the
// container's record, its inspect output or a committed image.

import { readFileSync } from 'node:fs';
import { chmod, lchown, mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { Store } from '../store/store.ts';
import { writeFileAtomic } from '../image/transport.ts';
import type { MountSpec } from '../runtime/spec.ts';
import { randomHex } from '../sys/lazy-builtins.ts';
import { ContainerError, type ContainerConfig } from './record.ts';
import { toHost } from './volumes.ts';

export interface SecretMeta {
  id: string;
  name: string;
  createdAt: string;
  updatedAt: string;
  driver: 'file';
  labels: Record<string, string>;
}

interface SecretsFile {
  secrets: Record<string, SecretMeta>;
}

/** One --secret of a container: a file at `target` (mount) or the variable `target` (env). */
export interface SecretUse {
  name: string;
  id: string;
  type: 'mount' | 'env';
  target: string;
  uid: number;
  gid: number;
  mode: number;
}

/** A secret's error with Podman's exit status (125 for all of them, 1 for `exists`). */
export class SecretError extends ContainerError {
  override name = 'SecretError';
}

/** Podman's limits: some content, less than 512000 bytes. */
const MAX_SIZE = 512_000;
const NAME = /^[a-zA-Z0-9](?:[a-zA-Z0-9_.-]{0,62}[a-zA-Z0-9])?$/;
const LOCK = 'secrets';
const SECRETS_DIR = '/run/secrets';

export function secretsDir(store: Store): string {
  return join(store.root, 'secrets');
}

function driverDir(store: Store): string {
  return join(secretsDir(store), 'filedriver');
}

function metaFile(store: Store): string {
  return join(secretsDir(store), 'secrets.json');
}

function readMeta(store: Store): SecretsFile {
  try {
    return JSON.parse(readFileSync(metaFile(store), 'utf8')) as SecretsFile;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { secrets: {} };
    throw e;
  }
}

/** Every secret, oldest first. */
export function listSecrets(store: Store): SecretMeta[] {
  return Object.values(readMeta(store).secrets).sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.name.localeCompare(b.name));
}

function lookup(all: readonly SecretMeta[], ref: string): SecretMeta {
  const exact = all.find((s) => s.name === ref) ?? all.find((s) => s.id === ref);
  if (exact) return exact;
  const byPrefix = all.filter((s) => s.id.startsWith(ref));
  if (byPrefix.length > 1) throw new SecretError(`more than one result secret with prefix ${ref}: secret is ambiguous`);
  if (byPrefix.length === 1) return byPrefix[0]!;
  throw new SecretError(`no secret with name or id "${ref}": no such secret`);
}

/** By name, full id, or a unique prefix of an id, as Podman looks secrets up. */
export function findSecret(store: Store, ref: string): SecretMeta {
  return lookup(listSecrets(store), ref);
}

export async function readSecretData(store: Store, s: SecretMeta): Promise<Buffer> {
  try {
    return await readFile(join(driverDir(store), s.id));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new SecretError(`no secret with name or id "${s.name}": no such secret`);
    throw e;
  }
}

/**
 * Runs a change under the secrets lock with the metadata read fresh. Content files that no entry
 * names, and temporary files, are left by a writer that died between its two renames: only a
 * holder of the lock writes, so they are dropped here.
 */
async function changeSecrets<T>(store: Store, fn: (meta: SecretsFile) => Promise<T>): Promise<T> {
  return store.withLock(LOCK, async () => {
    await mkdir(driverDir(store), { recursive: true, mode: 0o700 });
    await Promise.all([chmod(secretsDir(store), 0o700), chmod(driverDir(store), 0o700)]);
    const meta = readMeta(store);
    const result = await fn(meta);
    const stray = (await readdir(driverDir(store))).filter((f) => !Object.hasOwn(meta.secrets, f));
    await Promise.all(stray.map((f) => rm(join(driverDir(store), f), { force: true })));
    return result;
  });
}

function writeMeta(store: Store, meta: SecretsFile): Promise<void> {
  return writeFileAtomic(metaFile(store), JSON.stringify(meta, null, 2), 0o600);
}

export interface CreateSecretOptions {
  labels?: Record<string, string>;
  /** --replace: a secret of that name gets the new content and labels, keeping its id and creation time. */
  replace?: boolean;
}

/** `secret create`: the content first, then the entry naming it, each by rename. */
export async function createSecret(store: Store, name: string, data: Buffer, o: CreateSecretOptions = {}): Promise<SecretMeta> {
  if (!NAME.test(name)) throw new SecretError(`only 64 [a-zA-Z0-9-_.] characters allowed, and the start and end character must be [a-zA-Z0-9]: ${name}: invalid secret name`);
  if (data.length === 0 || data.length >= MAX_SIZE) throw new SecretError('secret data must be larger than 0 and less than 512000 bytes');
  return changeSecrets(store, async (meta) => {
    const now = new Date().toISOString();
    const old = Object.values(meta.secrets).find((s) => s.name === name);
    if (old && !o.replace) throw new SecretError(`${name}: secret name in use`);
    const s: SecretMeta = old
      ? { ...old, updatedAt: now, labels: o.labels ?? {} }
      : { id: newId(meta), name, createdAt: now, updatedAt: now, driver: 'file', labels: o.labels ?? {} };
    await writeFileAtomic(join(driverDir(store), s.id), data, 0o600);
    meta.secrets[s.id] = s;
    await writeMeta(store, meta);
    return s;
  });
}

/** Podman's secret ids: 25 hex digits. */
function newId(meta: SecretsFile): string {
  for (;;) {
    const id = randomHex(13).slice(0, 25);
    if (!Object.hasOwn(meta.secrets, id)) return id;
  }
}

/**
 * `secret rm`: the entry goes first, then the content. Containers keep working as with Podman
 * 4.3, which removes a secret in use: their mount secrets were copied at create; a container
 * with it as an env secret fails to start until a secret of that name exists again.
 */
export async function removeSecret(store: Store, ref: string): Promise<string> {
  return changeSecrets(store, async (meta) => {
    const s = lookup(Object.values(meta.secrets), ref);
    delete meta.secrets[s.id];
    await writeMeta(store, meta);
    await rm(join(driverDir(store), s.id), { force: true });
    return s.id;
  });
}

const parseFailure = (what: string): SecretError => new SecretError(`${what}: parsing secret`);

/** run/create --secret NAME[,type=mount|env][,target=…][,uid=,gid=,mode=], looked up now as Podman does. */
export function parseSecretUses(store: Store, specs: readonly string[]): SecretUse[] {
  if (specs.length === 0) return [];
  const all = listSecrets(store);
  return specs.map((spec) => {
    const [name = '', ...opts] = spec.split(',');
    let type: SecretUse['type'] = 'mount';
    let target: string | undefined;
    const ids: Partial<Record<'uid' | 'gid' | 'mode', number>> = {};
    for (const opt of opts) {
      const i = opt.indexOf('=');
      const [k, v] = i < 0 ? [opt, ''] : [opt.slice(0, i), opt.slice(i + 1)];
      if (k === 'type') {
        if (v !== 'mount' && v !== 'env') throw parseFailure(`type ${v} is invalid`);
        type = v;
      } else if (k === 'target') target = v;
      else if (k === 'uid' || k === 'gid') {
        if (!/^\d+$/.test(v) || Number(v) > 0xffffffff) throw parseFailure(`${k.toUpperCase()} ${v} invalid`);
        ids[k] = Number(v);
      } else if (k === 'mode') {
        if (!/^[0-7]+$/.test(v) || parseInt(v, 8) > 0o7777) throw parseFailure(`mode ${v} invalid`);
        ids.mode = parseInt(v, 8);
      } else throw parseFailure(`option ${opt} invalid`);
    }
    if (type === 'env' && Object.keys(ids).length > 0) throw parseFailure('UID, GID, Mode options cannot be set with secret type env');
    const s = lookup(all, name);
    // As Podman's: an absolute target is used as it is, a relative one is under /run/secrets.
    const dest = type === 'env' ? (target || s.name) : target?.startsWith('/') ? posix.normalize(target) : posix.join(SECRETS_DIR, target || s.name);
    return { name: s.name, id: s.id, type, target: dest, uid: ids.uid ?? 0, gid: ids.gid ?? 0, mode: ids.mode ?? 0o444 };
  });
}

const mountUses = (cfg: ContainerConfig): SecretUse[] => (cfg.secrets ?? []).filter((u) => u.type === 'mount');

/** Where a container keeps the copy of its i-th mount secret. */
function copyPath(store: Store, containerId: string, i: number, u: SecretUse): string {
  return join(store.containerDir(containerId), 'userdata', 'secrets', `${i}-${u.name}`);
}

/** At create: the container's own copies of its mount secrets, with the owner and mode asked for. */
export async function copyContainerSecrets(store: Store, containerId: string, cfg: ContainerConfig): Promise<void> {
  const uses = mountUses(cfg);
  if (uses.length === 0) return;
  const all = listSecrets(store);
  await mkdir(join(store.containerDir(containerId), 'userdata', 'secrets'), { recursive: true, mode: 0o700 });
  for (const [i, u] of uses.entries()) {
    const file = copyPath(store, containerId, i, u);
    await writeFileAtomic(file, await readSecretData(store, lookup(all, u.id)), 0o600);
    await lchown(file, toHost(u.uid, cfg.userns?.uidMappings), toHost(u.gid, cfg.userns?.gidMappings ?? cfg.userns?.uidMappings));
    await chmod(file, u.mode);
  }
}

/** At start: each mount secret as a read-only bind of the container's copy. */
export function secretMounts(store: Store, containerId: string, cfg: ContainerConfig): MountSpec[] {
  return mountUses(cfg).map((u, i) => ({ destination: u.target, type: 'bind', source: copyPath(store, containerId, i, u), options: ['rbind', 'ro', 'rprivate'] }));
}

/** At start: NAME=content of each env secret, read now (an error of 125 when it is gone, as Podman's). */
export async function secretEnv(store: Store, cfg: ContainerConfig): Promise<string[]> {
  const uses = (cfg.secrets ?? []).filter((u) => u.type === 'env');
  if (uses.length === 0) return [];
  const all = listSecrets(store);
  return Promise.all(uses.map(async (u) => `${u.target}=${(await readSecretData(store, lookup(all, u.name))).toString('utf8')}`));
}

/** The mount secrets as Podman's inspect lists them under Config.Secrets. */
export function inspectSecrets(cfg: ContainerConfig): { Name: string; ID: string; UID: number; GID: number; Mode: number }[] {
  return mountUses(cfg).map((u) => ({ Name: u.name, ID: u.id, UID: u.uid, GID: u.gid, Mode: u.mode }));
}

/** The destinations of the mount secrets (left out of a commit while the runtime's mount points stay empty). */
export function secretTargets(cfg: ContainerConfig): string[] {
  const targets = mountUses(cfg).map((u) => u.target);
  return targets.length ? [SECRETS_DIR, ...targets] : [];
}
