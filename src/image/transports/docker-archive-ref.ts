// docker-archive: reference syntax, kept apart from the archive code so that parsing a name
// does not load the tar implementation.
import type { ParsedRef } from '../transport.ts';

// Image names, as docker save writes them into RepoTags: the "familiar" form (no docker.io/library
// prefix) with an explicit tag.

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DOMAIN = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:]+\])(?::[0-9]+)?$/;

/** Normalises an image name to the familiar "name:tag" form used in RepoTags ("alpine" → "alpine:latest"). */
export function normalizeRepoTag(ref: string): string {
  if (ref.includes('@')) throw new Error(`docker-archive: digest references are not supported (${ref}); use name:tag`);
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  let name = ref;
  let tag = 'latest';
  if (colon > slash) {
    name = ref.slice(0, colon);
    tag = ref.slice(colon + 1);
  }
  if (!TAG.test(tag)) throw new Error(`invalid tag ${JSON.stringify(tag)} in ${JSON.stringify(ref)}`);
  const parts = name.split('/');
  let domain: string | undefined;
  const first = parts[0]!;
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase())) {
    domain = parts.shift();
    if (!DOMAIN.test(domain!)) throw new Error(`invalid registry ${JSON.stringify(domain)} in ${JSON.stringify(ref)}`);
  }
  if (parts.length === 0 || parts.some((p) => !PATH_COMPONENT.test(p))) {
    throw new Error(`invalid image name ${JSON.stringify(name)}: name components must be lowercase letters, digits and separators`);
  }
  let path = parts.join('/');
  if (domain === undefined || domain === 'docker.io' || domain === 'index.docker.io') {
    if (path.startsWith('library/') && parts.length === 2) path = path.slice('library/'.length);
    return `${path}:${tag}`;
  }
  return `${domain}/${path}:${tag}`;
}

export function tryNormalize(tag: string): string | undefined {
  try {
    return normalizeRepoTag(tag);
  } catch {
    return undefined;
  }
}

/** Parses "FILE[:name[:tag]]" or "FILE:@N"; the first colon separates, as in containers/image. */
export function parseDockerArchiveSpec(spec: string): ParsedRef {
  const i = spec.indexOf(':');
  const path = i < 0 ? spec : spec.slice(0, i);
  const rest = i < 0 ? undefined : spec.slice(i + 1);
  if (path === '') throw new Error('docker-archive: reference needs a file path');
  const out: ParsedRef = { transport: 'docker-archive', path };
  if (rest === undefined) return out;
  if (rest.startsWith('@')) {
    if (!/^@\d+$/.test(rest)) throw new Error(`docker-archive: invalid image index ${JSON.stringify(rest)}; use @N`);
    out.index = Number(rest.slice(1));
    return out;
  }
  if (rest === '') throw new Error('docker-archive: empty image name after ":"');
  out.ref = normalizeRepoTag(rest);
  return out;
}

