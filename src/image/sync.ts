// What Skopeo's sync copies and where to: the images of a registry repository, of a directory
// tree of dir: images, or of a YAML list; each is then an ordinary copy through copy.ts.
import { readdir, readFile } from 'node:fs/promises';
import { basename, join, posix } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { isValidDigest } from './digest.ts';
import { loadRegistriesConf, pushEndpoint } from './registry/registries-conf.ts';
import { clientFor, formatDockerReference, normalizeDockerName, repoName, type DockerOptions, type DockerReference } from './transports/docker.ts';

export type SyncSourceKind = 'docker' | 'dir' | 'yaml';
export type SyncDestKind = 'docker' | 'dir';

/** One image to copy: where it comes from and the name it gets below the destination. */
export interface SyncImage {
  /** "docker://HOST/REPO:TAG" or "dir:PATH". */
  source: string;
  /** Registry options for the source (the YAML file sets them per registry). */
  sourceOptions?: DockerOptions;
  /** Path below the destination: "busybox:latest", or with --scoped "HOST/REPO:TAG". */
  suffix: string;
}

/** One source of a sync (a repository, a directory, a YAML registry entry) and its images. */
export interface SyncGroup {
  images: SyncImage[];
}

const MAX_SYNC_FILE = 4 * 1024 * 1024;
const MAX_DIR_DEPTH = 32;

/** The destination name for an image, as skopeo forms it (the last path element unless scoped). */
export function syncDestination(kind: SyncDestKind, destination: string, suffix: string, scoped: boolean): string {
  const rel = scoped ? suffix : posix.basename(suffix);
  if (kind === 'dir') return `dir:${join(destination, rel)}`;
  return `docker://${posix.join(destination.replace(/^docker:\/\//, ''), rel)}`;
}

async function listRepoTags(ref: DockerReference, o: DockerOptions): Promise<string[]> {
  const ep = pushEndpoint(loadRegistriesConf(), repoName(ref));
  const { client, repo } = await clientFor(ep.name, ep.insecure, o);
  try {
    return await client.listTags(repo);
  } finally {
    client.close();
  }
}

function dockerImage(ref: DockerReference, o: DockerOptions | undefined): SyncImage {
  const name = formatDockerReference(ref);
  return { source: `docker://${name}`, ...(o && { sourceOptions: o }), suffix: name };
}

/** --src docker: the named tag or digest, or every tag of the repository. */
export async function dockerSyncImages(source: string, o: DockerOptions): Promise<SyncGroup> {
  const ref = normalizeDockerName(source.replace(/^docker:\/\//, ''));
  if (ref.tag !== undefined || ref.digest !== undefined) return { images: [dockerImage(ref, o)] };
  const tags = await listRepoTags(ref, o);
  if (tags.length === 0) throw new Error(`${repoName(ref)}: the repository has no tags to sync`);
  return { images: tags.map((tag) => dockerImage({ ...ref, tag }, o)) };
}

/** --src dir: every dir: image (a directory with manifest.json) under `source`, or `source` itself. */
export async function dirSyncImages(source: string): Promise<SyncGroup> {
  const base = source.replace(/\/+$/, '') || '/';
  const found: string[] = [];
  const walk = async (dir: string, depth: number): Promise<void> => {
    if (depth > MAX_DIR_DEPTH) throw new Error(`${source}: directories nested deeper than ${MAX_DIR_DEPTH} levels`);
    const entries = await readdir(dir, { withFileTypes: true });
    if (entries.some((e) => e.isFile() && e.name === 'manifest.json')) {
      found.push(dir);
      return;
    }
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      if (e.isDirectory()) await walk(join(dir, e.name), depth + 1);
    }
  };
  await walk(base, 0);
  if (found.length === 0) throw new Error(`${source}: no dir: images (directories with a manifest.json) found`);
  return {
    images: found.map((dir) => {
      // The path below the source names the image; a source that is itself an image is named by its last element.
      const rel = dir === base ? basename(base) : dir.slice(base.length + 1);
      return { source: `dir:${dir}`, suffix: rel };
    }),
  };
}

interface YamlRegistry {
  images?: Record<string, string[] | null>;
  'images-by-tag-regex'?: Record<string, string>;
  credentials?: { username?: string; password?: string };
  'tls-verify'?: boolean;
  'cert-dir'?: string;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function validateYamlRegistry(file: string, host: string, v: unknown): YamlRegistry {
  const where = `${file}: registry ${JSON.stringify(host)}`;
  if (!isRecord(v)) throw new Error(`${where}: expected a mapping`);
  const known = ['images', 'images-by-tag-regex', 'credentials', 'tls-verify', 'cert-dir'];
  for (const k of Object.keys(v)) if (!known.includes(k)) throw new Error(`${where}: unknown key ${JSON.stringify(k)} (known: ${known.join(', ')})`);
  if (v.images !== undefined && v.images !== null) {
    if (!isRecord(v.images)) throw new Error(`${where}: "images" must map repositories to lists of tags`);
    for (const [repo, tags] of Object.entries(v.images)) {
      if (tags !== null && (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string'))) {
        throw new Error(`${where}: images.${repo} must be a list of tags or digests`);
      }
    }
  }
  if (v['images-by-tag-regex'] !== undefined && v['images-by-tag-regex'] !== null) {
    const r = v['images-by-tag-regex'];
    if (!isRecord(r) || Object.values(r).some((x) => typeof x !== 'string')) throw new Error(`${where}: "images-by-tag-regex" must map repositories to regular expressions`);
  }
  if (v.credentials !== undefined && (!isRecord(v.credentials) || typeof v.credentials.username !== 'string' || typeof v.credentials.password !== 'string')) {
    throw new Error(`${where}: "credentials" needs string username and password`);
  }
  if (v['tls-verify'] !== undefined && typeof v['tls-verify'] !== 'boolean') throw new Error(`${where}: "tls-verify" must be true or false`);
  if (v['cert-dir'] !== undefined && typeof v['cert-dir'] !== 'string') throw new Error(`${where}: "cert-dir" must be a path`);
  return v as YamlRegistry;
}

/**
 * --src yaml: per registry, `images` (repository → tags or digests; none means all tags) and
 * `images-by-tag-regex` (repository → regex over its tags), with `credentials`, `tls-verify`
 * and `cert-dir` for that registry overriding the command line's source options.
 */
export async function yamlSyncImages(file: string, base: DockerOptions): Promise<SyncGroup[]> {
  const text = await readFile(file);
  if (text.length > MAX_SYNC_FILE) throw new Error(`${file}: larger than ${MAX_SYNC_FILE} bytes`);
  let doc: unknown;
  try {
    doc = parseYaml(text.toString('utf8'));
  } catch (e) {
    throw new Error(`${file}: malformed YAML: ${(e as Error).message}`, { cause: e });
  }
  if (doc === null || doc === undefined) return [];
  if (!isRecord(doc)) throw new Error(`${file}: expected a mapping of registries`);
  const groups: SyncGroup[] = [];
  for (const [host, raw] of Object.entries(doc)) {
    const reg = validateYamlRegistry(file, host, raw);
    const o: DockerOptions = { ...base };
    if (reg['tls-verify'] !== undefined) o.tlsVerify = reg['tls-verify'];
    if (reg['cert-dir'] !== undefined) o.certDir = reg['cert-dir'];
    if (reg.credentials) o.creds = `${reg.credentials.username}:${reg.credentials.password}`;
    const named = (repo: string): DockerReference => {
      const r = normalizeDockerName(`${host}/${repo}`);
      if (r.tag !== undefined || r.digest !== undefined) throw new Error(`${file}: ${host}/${repo}: put tags in the list, not in the repository name`);
      return r;
    };
    for (const [repo, tags] of Object.entries(reg.images ?? {})) {
      const ref = named(repo);
      const list = tags && tags.length > 0 ? tags : await listRepoTags(ref, o);
      const images = list.map((t) => dockerImage(isValidDigest(t) ? { ...ref, digest: t } : normalizeDockerName(`${repoName(ref)}:${t}`), o));
      groups.push({ images });
    }
    for (const [repo, pattern] of Object.entries(reg['images-by-tag-regex'] ?? {})) {
      const ref = named(repo);
      let re: RegExp;
      try {
        re = new RegExp(pattern);
      } catch (e) {
        throw new Error(`${file}: ${host}/${repo}: invalid regular expression ${JSON.stringify(pattern)}: ${(e as Error).message}`, { cause: e });
      }
      const tags = (await listRepoTags(ref, o)).filter((t) => re.test(t));
      groups.push({ images: tags.map((tag) => dockerImage({ ...ref, tag }, o)) });
    }
  }
  return groups;
}
