// Docker-style image references: [domain[:port]/]path[:tag][@digest].
import { validateDigest } from './digest.ts';

export interface ImageReference {
  domain: string;
  path: string;
  tag?: string;
  digest?: string;
}

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;

export class ReferenceError extends Error {}

function looksLikeDomain(s: string): boolean {
  return s.includes('.') || s.includes(':') || s === 'localhost' || s !== s.toLowerCase();
}

/** Parses a reference without adding defaults; `domain` is '' when the user gave none. */
export function parseReference(input: string): ImageReference {
  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw new ReferenceError(`invalid reference "${input}": bad digest`);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw new ReferenceError(`invalid reference "${input}": bad tag "${tag}"`);
  }
  const parts = rest.split('/');
  let domain = '';
  if (parts.length > 1 && looksLikeDomain(parts[0]!)) domain = parts.shift()!;
  const path = parts.join('/');
  if (!path || !parts.every((p) => PATH_COMPONENT.test(p))) {
    throw new ReferenceError(`invalid reference "${input}": repository name must be lowercase letters, digits and separators`);
  }
  return { domain, path, ...(tag !== undefined && { tag }), ...(digest !== undefined && { digest }) };
}

export function formatReference(r: ImageReference): string {
  let s = r.domain ? `${r.domain}/${r.path}` : r.path;
  if (r.tag) s += `:${r.tag}`;
  if (r.digest) s += `@${r.digest}`;
  return s;
}

/**
 * The name a locally created image gets, as Podman names them: no domain means localhost/,
 * no tag means :latest.
 */
export function localImageName(input: string): string {
  const r = parseReference(input);
  return formatReference({ ...r, domain: r.domain || 'localhost', ...(!r.tag && !r.digest && { tag: 'latest' }) });
}

/** Names under which a short name may be stored locally, most specific first. */
export function localCandidates(input: string): string[] {
  const r = parseReference(input);
  const tagged = { ...r, ...(!r.tag && !r.digest && { tag: 'latest' }) };
  if (r.domain) return [formatReference(tagged)];
  const out = [formatReference({ ...tagged, domain: 'localhost' })];
  if (!r.path.includes('/')) out.push(formatReference({ ...tagged, domain: 'docker.io', path: `library/${r.path}` }));
  else out.push(formatReference({ ...tagged, domain: 'docker.io' }));
  return out;
}

/** Splits a stored full name into Podman's REPOSITORY and TAG columns. */
export function repoAndTag(name: string): { repository: string; tag: string } {
  const at = name.indexOf('@');
  const base = at >= 0 ? name.slice(0, at) : name;
  const colon = base.lastIndexOf(':');
  if (colon > base.lastIndexOf('/')) return { repository: base.slice(0, colon), tag: base.slice(colon + 1) };
  return { repository: base, tag: '<none>' };
}

/** `localhost/busybox:latest` → `busybox`, the base of Buildah's working-container names. */
export function baseName(name: string): string {
  const { repository } = repoAndTag(name);
  return repository.slice(repository.lastIndexOf('/') + 1);
}

export interface DockerReference {
  /** Registry host[:port], normalised ("docker.io", never "index.docker.io"). */
  registry: string;
  /** Repository path ("library/busybox"). */
  repo: string;
  tag?: string;
  digest?: string;
}

/** Normalises a name as Docker does: no registry → docker.io, one component → library/. */
export function normalizeDockerName(input: string): DockerReference {
  const r = parseReference(input);
  let registry = r.domain || 'docker.io';
  if (registry === 'index.docker.io' || registry === 'registry-1.docker.io') registry = 'docker.io';
  let repo = r.path;
  if (registry === 'docker.io' && !repo.includes('/')) repo = `library/${repo}`;
  const out: DockerReference = { registry, repo };
  if (r.tag !== undefined) out.tag = r.tag;
  if (r.digest !== undefined) {
    validateDigest(r.digest, 'image digest');
    out.digest = r.digest;
  }
  return out;
}

export function repoName(r: DockerReference): string {
  return `${r.registry}/${r.repo}`;
}

/** "host/repo:tag", "host/repo@digest" or "host/repo:tag@digest"; `:latest` when neither. */
export function formatDockerReference(r: DockerReference, defaultTag = true): string {
  let s = repoName(r);
  if (r.tag) s += `:${r.tag}`;
  else if (!r.digest && defaultTag) s += ':latest';
  if (r.digest) s += `@${r.digest}`;
  return s;
}

