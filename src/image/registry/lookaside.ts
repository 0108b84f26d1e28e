// Signature storage beside registries (containers-registries.d(5)): YAML files naming, per
// registry, namespace or image, the "lookaside" URL signatures are read from and the
// "lookaside-staging" one new signatures are written to. A signature of image REPO with manifest
// digest ALGO:HEX is BASE/REPO-PATH@ALGO=HEX/signature-N, N counting from 1.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { algorithmOf, hexOf } from '../digest.ts';
import { repoName, type DockerReference } from '../reference.ts';
import { MAX_SIGNATURE_SIZE, MAX_SIGNATURES } from '../signature.ts';
import { isNotFound, writeFileAtomic } from '../transport.ts';
import { hostUid } from '../../sys/userns.ts';
import { dockerScopes } from './policy.ts';

const SYSTEM_DIR = '/etc/containers/registries.d';
const MAX_CONFIG_FILE = 1024 * 1024;
const HTTP_TIMEOUT_MS = 60_000;

interface Section {
  lookaside?: string;
  'lookaside-staging'?: string;
  // The names before containers/image 5.21, still read.
  sigstore?: string;
  'sigstore-staging'?: string;
}

interface RegistriesD {
  defaultDocker?: Section;
  docker: Map<string, Section>;
}

let explicitDir: string | undefined;

/** skopeo --registries.d: use this directory instead of the user's or the system's. */
export function setRegistriesDir(dir: string | undefined): void {
  explicitDir = dir;
}

function home(): string {
  return process.env.HOME || homedir();
}

/** --registries.d, else ~/.config/containers/registries.d if it exists, else the system's. */
function registriesDirPath(): string {
  if (explicitDir) return explicitDir;
  const user = join(home(), '.config', 'containers', 'registries.d');
  return existsSync(user) ? user : SYSTEM_DIR;
}

function section(v: unknown, where: string): Section {
  if (v === null || v === undefined) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new Error(`${where}: expected a mapping`);
  const out: Section = {};
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
    if (k === 'lookaside' || k === 'lookaside-staging' || k === 'sigstore' || k === 'sigstore-staging') {
      if (typeof val !== 'string') throw new Error(`${where}: ${k} must be a URL string`);
      out[k] = val;
    }
    // use-sigstore-attachments and unknown keys do not concern simple signing.
  }
  return out;
}

/** Merges every *.yaml of the directory; a scope described twice is an error, as containers/image has it. */
function loadRegistriesD(dir: string): RegistriesD {
  const out: RegistriesD = { docker: new Map() };
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.yaml')).sort();
  } catch (e) {
    if (isNotFound(e)) return out;
    throw e;
  }
  // Loaded only when there is a file to parse: every pull and copy from a registry looks its
  // signatures up, and the YAML parser is some 80 files of node_modules (~20 ms of a 350 ms copy).
  const parseYaml = names.length ? (createRequire(import.meta.url)('yaml') as typeof import('yaml')).parse : null;
  for (const name of names) {
    const file = join(dir, name);
    const text = readFileSync(file);
    if (text.length > MAX_CONFIG_FILE) throw new Error(`${file}: larger than ${MAX_CONFIG_FILE} bytes`);
    let doc: unknown;
    try {
      doc = parseYaml!(text.toString('utf8'));
    } catch (e) {
      throw new Error(`parsing ${file}: ${(e as Error).message}`, { cause: e });
    }
    if (doc === null || doc === undefined) continue;
    if (typeof doc !== 'object' || Array.isArray(doc)) throw new Error(`parsing ${file}: expected a mapping`);
    const d = doc as Record<string, unknown>;
    if (d['default-docker'] !== undefined) {
      if (out.defaultDocker) throw new Error(`Error parsing signature storage configuration: "default-docker" defined both in "${file}" and elsewhere`);
      out.defaultDocker = section(d['default-docker'], `${file}: default-docker`);
    }
    const docker = d.docker;
    if (docker !== undefined && docker !== null) {
      if (typeof docker !== 'object' || Array.isArray(docker)) throw new Error(`${file}: docker must be a mapping`);
      for (const [scope, v] of Object.entries(docker as Record<string, unknown>)) {
        if (out.docker.has(scope)) throw new Error(`Error parsing signature storage configuration: "docker:${scope}" defined both in "${file}" and elsewhere`);
        out.docker.set(scope, section(v, `${file}: docker: ${scope}`));
      }
    }
  }
  return out;
}

/** The default store when nothing is configured: /var/lib/containers/sigstore, or the user's own. */
function builtinDefault(): string {
  return hostUid() === 0 ? 'file:///var/lib/containers/sigstore' : pathToFileURL(join(home(), '.local', 'share', 'containers', 'sigstore')).href;
}

/**
 * The base URL for an image: the most specific scope's section only, then default-docker, then
 * the built-in default. undefined when the section chosen names no storage (of that kind).
 */
function baseURL(ref: DockerReference, write: boolean): URL | undefined {
  const conf = loadRegistriesD(registriesDirPath());
  // The registry's scopes, without policy.json's "" (registries.d has default-docker for that).
  const scopes = dockerScopes(repoName(ref), ref.digest ?? ref.tag).filter((s) => s !== '');
  let chosen: Section | undefined;
  for (const s of scopes) {
    chosen = conf.docker.get(s);
    if (chosen) break;
  }
  chosen ??= conf.defaultDocker;
  const url = !chosen ? builtinDefault() : write ? (chosen['lookaside-staging'] ?? chosen['sigstore-staging'] ?? chosen.lookaside ?? chosen.sigstore) : (chosen.lookaside ?? chosen.sigstore);
  if (url === undefined) return undefined;
  try {
    return new URL(url);
  } catch {
    throw new Error(`invalid signature storage URL ${JSON.stringify(url)} in ${registriesDirPath()}`);
  }
}

/** BASE/REPO-PATH@ALGO=HEX/signature-(index+1); the registry host is not part of the path. */
function signatureURL(base: URL, ref: DockerReference, digest: string, index: number): URL {
  const u = new URL(base.href);
  u.pathname = `${u.pathname.replace(/\/$/, '')}/${ref.repo}@${algorithmOf(digest)}=${hexOf(digest)}/signature-${index + 1}`;
  return u;
}

async function readOne(url: URL): Promise<Buffer | undefined> {
  if (url.protocol === 'file:') {
    try {
      const b = await readFile(fileURLToPath(url));
      if (b.length > MAX_SIGNATURE_SIZE) throw new Error(`${url.href}: signature larger than ${MAX_SIGNATURE_SIZE} bytes`);
      return b;
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`unsupported signature storage URL scheme in ${url.href}`);
  const res = await fetch(url, { signal: AbortSignal.timeout(HTTP_TIMEOUT_MS), redirect: 'follow' });
  if (res.status === 404) {
    await res.body?.cancel();
    return undefined;
  }
  if (res.status !== 200) {
    await res.body?.cancel();
    throw new Error(`reading signature from ${url.href}: status ${res.status} (${res.statusText})`);
  }
  const declared = Number(res.headers.get('content-length') ?? -1);
  if (declared > MAX_SIGNATURE_SIZE) {
    await res.body?.cancel();
    throw new Error(`${url.href}: signature larger than ${MAX_SIGNATURE_SIZE} bytes`);
  }
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res.body ?? []) {
    n += (c as Uint8Array).length;
    if (n > MAX_SIGNATURE_SIZE) throw new Error(`${url.href}: signature larger than ${MAX_SIGNATURE_SIZE} bytes`);
    chunks.push(Buffer.from(c as Uint8Array));
  }
  return Buffer.concat(chunks);
}

/** The signatures of an image (by manifest digest) in its lookaside, with the URL each came from. */
export async function readLookasideSignatures(ref: DockerReference, manifestDigest: string): Promise<{ blob: Buffer; where: string }[]> {
  const base = baseURL(ref, false);
  const out: { blob: Buffer; where: string }[] = [];
  if (!base) return out;
  for (let i = 0; i < MAX_SIGNATURES; i++) {
    const url = signatureURL(base, ref, manifestDigest, i);
    const blob = await readOne(url);
    if (blob === undefined) break;
    out.push({ blob, where: url.href });
  }
  return out;
}

/**
 * Replaces the image's signatures in the lookaside staging directory: signature-1… are written,
 * and any later ones from before are removed. Only file:// can be written, as containers/image.
 */
export async function writeLookasideSignatures(ref: DockerReference, manifestDigest: string, sigs: readonly Buffer[]): Promise<void> {
  if (sigs.length === 0) return;
  const base = baseURL(ref, true);
  if (!base) throw new Error(`no signature storage (lookaside-staging) is configured for ${repoName(ref)} in ${registriesDirPath()}`);
  if (base.protocol !== 'file:') {
    throw new Error(`writing signatures to ${base.href}: only a file:// lookaside can be written; configure a lookaside-staging directory in ${registriesDirPath()}`);
  }
  for (const [i, sig] of sigs.entries()) {
    const file = fileURLToPath(signatureURL(base, ref, manifestDigest, i));
    await mkdir(join(file, '..'), { recursive: true });
    await writeFileAtomic(file, sig);
  }
  for (let i = sigs.length; i < MAX_SIGNATURES; i++) {
    const file = fileURLToPath(signatureURL(base, ref, manifestDigest, i));
    if (!existsSync(file)) break;
    await rm(file, { force: true });
  }
}
