// policy.json (containers-policy.json(5)): which images may be pulled. "signedBy" requirements
// (GPG simple signing) are checked once the manifest and signatures are at hand (enforcePolicy,
// from the copy pipeline); sigstoreSigned (cosign) ones are refused.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { formatDockerReference, normalizeDockerName, repoName, type DockerReference } from '../reference.ts';

const SYSTEM_POLICY = '/etc/containers/policy.json';
const MAX_POLICY = 4 * 1024 * 1024;

interface Requirement {
  type?: unknown;
  keyType?: unknown;
  keyPath?: unknown;
  keyPaths?: unknown;
  keyData?: unknown;
  signedIdentity?: unknown;
}

/** signedIdentity of a signedBy requirement: which references in a signature name this image. */
export type IdentityRule =
  | { type: 'matchRepoDigestOrExact' | 'matchExact' | 'matchRepository' }
  | { type: 'exactReference'; dockerReference: DockerReference }
  | { type: 'exactRepository'; dockerRepository: string }
  | { type: 'remapIdentity'; prefix: string; signedPrefix: string };

export interface SignedByRequirement {
  /** The public keys, as files or keyData hold them (armored or binary). */
  keys: Buffer[];
  identity: IdentityRule;
}

/** What the policy still demands once the manifest and the signatures are read. */
export interface PendingPolicy {
  requirements: SignedByRequirement[];
  /** The reference the image is read by; undefined for transports without one (dir:). */
  identity: DockerReference | undefined;
  display: string;
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

/** dir: scopes: the directory, then each parent but "/", then the transport's "" default. */
export function dirScopes(dir: string): string[] {
  const out: string[] = [];
  for (let p = resolve(dir); p !== '/'; p = dirname(p)) out.push(p);
  out.push('');
  return out;
}

let processPolicy: { path?: string; insecure?: boolean } = {};

/** --signature-policy / --policy and --insecure-policy, for the transports that have no options of their own (dir:). */
export function setPolicyOptions(o: { path?: string; insecure?: boolean }): void {
  processPolicy = { ...o };
}

/** checkPolicy with this process's --signature-policy and --insecure-policy. */
export function checkSourcePolicy(transport: string, scopes: string[], display: string): PendingPolicy | undefined {
  return processPolicy.insecure ? undefined : checkPolicy(transport, scopes, display, processPolicy.path);
}

function str(v: unknown): v is string {
  return typeof v === 'string' && v !== '';
}

function parseRef(v: unknown, what: string, path: string): DockerReference {
  if (!str(v)) throw new Error(`invalid policy in "${path}": ${what} must be a non-empty string`);
  try {
    return normalizeDockerName(v);
  } catch (e) {
    throw new Error(`invalid policy in "${path}": ${what} ${JSON.stringify(v)}: ${(e as Error).message}`, { cause: e });
  }
}

function identityRule(v: unknown, path: string): IdentityRule {
  if (v === undefined) return { type: 'matchRepoDigestOrExact' };
  const o = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
  switch (o.type) {
    case 'matchRepoDigestOrExact':
    case 'matchExact':
    case 'matchRepository':
      return { type: o.type };
    case 'exactReference': {
      const ref = parseRef(o.dockerReference, 'exactReference.dockerReference', path);
      if (!ref.tag && !ref.digest) throw new Error(`invalid policy in "${path}": exactReference.dockerReference ${JSON.stringify(o.dockerReference)} names no tag or digest`);
      return { type: 'exactReference', dockerReference: ref };
    }
    case 'exactRepository':
      return { type: 'exactRepository', dockerRepository: repoName(parseRef(o.dockerRepository, 'exactRepository.dockerRepository', path)) };
    case 'remapIdentity':
      if (!str(o.prefix) || !str(o.signedPrefix)) throw new Error(`invalid policy in "${path}": remapIdentity needs prefix and signedPrefix`);
      return { type: 'remapIdentity', prefix: o.prefix, signedPrefix: o.signedPrefix };
    default:
      throw new Error(`invalid policy in "${path}": unknown signedIdentity type ${JSON.stringify(o.type)}`);
  }
}

function signedBy(r: Requirement, path: string): SignedByRequirement {
  if (r.keyType !== 'GPGKeys') throw new Error(`invalid policy in "${path}": signedBy keyType ${JSON.stringify(r.keyType)} is not supported (only GPGKeys)`);
  const given = [r.keyPath, r.keyPaths, r.keyData].filter((k) => k !== undefined).length;
  if (given !== 1) throw new Error(`invalid policy in "${path}": signedBy needs exactly one of keyPath, keyPaths and keyData`);
  let keys: Buffer[];
  if (r.keyData !== undefined) {
    if (!str(r.keyData)) throw new Error(`invalid policy in "${path}": keyData must be a base64 string`);
    keys = [Buffer.from(r.keyData, 'base64')];
  } else {
    const files = r.keyPath !== undefined ? [r.keyPath] : r.keyPaths;
    if (!Array.isArray(files) || files.length === 0 || !files.every(str)) throw new Error(`invalid policy in "${path}": keyPath/keyPaths must name files`);
    keys = files.map((f: string) => readFileSync(f));
  }
  return { keys, identity: identityRule(r.signedIdentity, path) };
}

/**
 * Throws unless the policy may admit the image; returns the signature checks still to make
 * (undefined when none). `scopes` come from the transport, most specific first (see
 * dockerScopes). A missing system policy admits everything; a missing --signature-policy file
 * is an error.
 */
export function checkPolicy(transport: string, scopes: string[], display: string, explicit?: string, identity?: DockerReference): PendingPolicy | undefined {
  const path = policyPath(explicit);
  if (!path) return undefined;
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
  const pending: SignedByRequirement[] = [];
  for (const r of reqs) {
    const type = r.type;
    if (type === 'insecureAcceptAnything') continue;
    if (type === 'reject') throw new Error(`Source image rejected: Running image ${display} is rejected by policy.`);
    if (type === 'signedBy') pending.push(signedBy(r, path));
    else if (type === 'sigstoreSigned') {
      throw new Error(`Source image rejected: ${display} requires a sigstoreSigned signature; barge verifies only GPG (signedBy) signatures`);
    } else throw new Error(`invalid policy in "${path}": unknown requirement type ${JSON.stringify(type)}`);
  }
  return pending.length ? { requirements: pending, identity, display } : undefined;
}

/** Whether a signature's reference names the image read by `intended`, under a signedIdentity rule. */
export function identityMatches(rule: IdentityRule, intended: DockerReference | undefined, signed: DockerReference): boolean {
  const signedText = formatDockerReference(signed, false);
  switch (rule.type) {
    case 'exactReference':
      return signedText === formatDockerReference(rule.dockerReference, false);
    case 'exactRepository':
      return repoName(signed) === rule.dockerRepository;
    default:
      break;
  }
  if (!intended) return false;
  switch (rule.type) {
    case 'matchExact':
      return (!!intended.tag || !!intended.digest) && signedText === formatDockerReference(intended, false);
    case 'matchRepository':
      return repoName(signed) === repoName(intended);
    case 'remapIdentity': {
      const text = formatDockerReference(intended, false);
      // The prefix must end at a component boundary: "host/ns" covers "host/ns/x", not "host/nsx".
      if (!text.startsWith(rule.prefix) || (text.length > rule.prefix.length && !'/:@'.includes(text[rule.prefix.length]!) && !rule.prefix.endsWith('/'))) {
        return identityMatches({ type: 'matchRepoDigestOrExact' }, intended, signed);
      }
      let remapped: DockerReference;
      try {
        remapped = normalizeDockerName(rule.signedPrefix + text.slice(rule.prefix.length));
      } catch {
        return false;
      }
      return identityMatches({ type: 'matchRepoDigestOrExact' }, remapped, signed);
    }
    default:
      // matchRepoDigestOrExact: a tag must be signed exactly; a digest, by any name of the repository.
      if (intended.tag) return signedText === formatDockerReference(intended, false);
      if (intended.digest) return repoName(signed) === repoName(intended);
      return false;
  }
}

/**
 * Enforces the pending signedBy requirements on an image's manifest and its signatures: every
 * requirement needs one signature that verifies with its keys, names the image and its digest.
 * Throws "Source image rejected: …" otherwise.
 */
export async function enforcePolicy(pending: PendingPolicy, manifest: Buffer, signatures: readonly { blob: Buffer; where: string }[]): Promise<void> {
  const { manifestMatchesDigest, openPGPMessage, parsePayload, SignatureError, TrustedKeys } = await import('../signature.ts');
  for (const req of pending.requirements) {
    if (signatures.length === 0) throw new Error('Source image rejected: A signature was required, but no signature exists');
    const keys = await TrustedKeys.create(req.keys);
    const reasons: string[] = [];
    try {
      let accepted = false;
      for (const sig of signatures) {
        try {
          const { payload } = await keys.verify(openPGPMessage(sig.blob, sig.where));
          const claims = parsePayload(payload);
          let signed: DockerReference;
          try {
            signed = normalizeDockerName(claims.dockerReference);
          } catch {
            throw new SignatureError(`Invalid signature reference ${JSON.stringify(claims.dockerReference)}`);
          }
          if (!identityMatches(req.identity, pending.identity, signed)) throw new SignatureError(`Signature for identity ${claims.dockerReference} is not accepted`);
          if (!manifestMatchesDigest(manifest, claims.manifestDigest)) throw new SignatureError(`Signature for digest ${claims.manifestDigest} does not match`);
          accepted = true;
          break;
        } catch (e) {
          if (!(e instanceof SignatureError)) throw e;
          reasons.push(e.message);
        }
      }
      if (!accepted) {
        throw new Error(`Source image rejected: ${reasons.length === 1 ? reasons[0] : `None of the signatures were accepted, reasons: ${reasons.join('; ')}`}`);
      }
    } finally {
      await keys.close();
    }
  }
}
