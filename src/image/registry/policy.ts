// policy.json (containers-policy.json(5)): which images may be pulled. Signature verification
// itself is not implemented yet, so a requirement for signatures rejects the image.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

const SYSTEM_POLICY = '/etc/containers/policy.json';
const MAX_POLICY = 4 * 1024 * 1024;

interface Requirement {
  type?: unknown;
}

interface PolicyFile {
  default?: Requirement[];
  transports?: Record<string, Record<string, Requirement[]>>;
}

/** --signature-policy, then ~/.config/containers/policy.json, then /etc/containers/policy.json. */
export function policyPath(explicit?: string): string | undefined {
  if (explicit) return explicit;
  const cfg = process.env.XDG_CONFIG_HOME || join(process.env.HOME || homedir(), '.config');
  const user = join(cfg, 'containers', 'policy.json');
  if (existsSync(user)) return user;
  return existsSync(SYSTEM_POLICY) ? SYSTEM_POLICY : undefined;
}

function loadPolicy(path: string): PolicyFile {
  const text = readFileSync(path);
  if (text.length > MAX_POLICY) throw new Error(`${path}: policy file larger than ${MAX_POLICY} bytes`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text.toString('utf8'));
  } catch (e) {
    throw new Error(`invalid policy in "${path}": ${(e as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error(`invalid policy in "${path}": not a JSON object`);
  const p = parsed as PolicyFile;
  if (!Array.isArray(p.default)) throw new Error(`invalid policy in "${path}": Policy.Default is missing`);
  return p;
}

/**
 * Docker-transport scopes from most to least specific: "host/ns/repo:tag", "host/ns/repo",
 * "host/ns", "host", "*.domain" wildcards, then the transport's "" default.
 */
export function dockerScopes(repoName: string, tagOrDigest?: string): string[] {
  const out: string[] = [];
  if (tagOrDigest) out.push(tagOrDigest.includes(':') && tagOrDigest.startsWith('sha') ? `${repoName}@${tagOrDigest}` : `${repoName}:${tagOrDigest}`);
  const parts = repoName.split('/');
  for (let i = parts.length; i > 0; i--) out.push(parts.slice(0, i).join('/'));
  const host = parts[0]!.split(':')[0]!;
  const labels = host.split('.');
  for (let i = 1; i < labels.length; i++) out.push(`*.${labels.slice(i).join('.')}`);
  out.push('');
  return out;
}

/**
 * Throws unless the policy admits the image. `scopes` come from the transport, most specific
 * first (see dockerScopes). A missing system policy admits everything; a missing
 * --signature-policy file is an error.
 */
export function checkPolicy(transport: string, scopes: string[], display: string, explicit?: string): void {
  const path = policyPath(explicit);
  if (!path) return;
  if (explicit && !existsSync(explicit)) throw new Error(`open ${explicit}: no such file or directory`);
  const policy = loadPolicy(path);
  const byScope = policy.transports?.[transport] ?? {};
  let reqs: Requirement[] | undefined;
  for (const s of scopes) {
    if (Object.prototype.hasOwnProperty.call(byScope, s)) {
      reqs = byScope[s];
      break;
    }
  }
  reqs ??= policy.default;
  if (!Array.isArray(reqs) || reqs.length === 0) throw new Error(`invalid policy in "${path}": no requirements for ${display}`);
  for (const r of reqs) {
    const type = r.type;
    if (type === 'insecureAcceptAnything') continue;
    if (type === 'reject') throw new Error(`Source image rejected: Running image ${display} is rejected by policy.`);
    if (type === 'signedBy' || type === 'sigstoreSigned') {
      throw new Error(`Source image rejected: ${display} requires a ${type} signature, and signature verification is not supported yet`);
    }
    throw new Error(`invalid policy in "${path}": unknown requirement type ${JSON.stringify(type)}`);
  }
}
