// The docker:// transport: images in registries (OCI distribution spec), as an ImageSource and
// an ImageDestination for the one copy pipeline. Verification, conversion and progress stay in
// copy.ts; this module only talks to registries.
import { createReadStream } from 'node:fs';
import { tmpdir } from 'node:os';
import type { Readable } from 'node:stream';
import { digestOf, isValidDigest, validateDigest } from '../digest.ts';
import { MAX_CONFIG_SIZE } from '../manifest.ts';
import { formatDockerReference, normalizeDockerName, ReferenceError, repoName, type DockerReference } from '../reference.ts';
import { BlobStaging, type BlobInfo, type ImageDestination, type ImageSource, type StoredSignature } from '../transport.ts';
import type { ManifestFormat } from '../types.ts';
import { lookupCredentials, parseCreds } from '../registry/auth.ts';
import { RegistryClient, readBody, type Credentials, type ManifestResponse } from '../registry/client.ts';
import { checkPolicy, dockerScopes, type PendingPolicy } from '../registry/policy.ts';
import { loadRegistriesConf, loadTLSFiles, pullEndpoints, pushEndpoint } from '../registry/registries-conf.ts';
import { registerTransport } from './index.ts';

// The reference helpers live in reference.ts (policy.ts needs them too); callers keep importing them from here.
export { formatDockerReference, normalizeDockerName, repoName, type DockerReference };

/** Parses the part after "docker:": "//HOST/REPO[:TAG][@DIGEST]". */
export function parseDockerSpec(spec: string): DockerReference {
  if (!spec.startsWith('//')) throw new Error(`invalid docker reference "docker:${spec}": it must start with docker://`);
  try {
    return normalizeDockerName(spec.slice(2));
  } catch (e) {
    if (e instanceof ReferenceError) throw new Error(`invalid docker reference "docker:${spec}": ${e.message}`);
    throw e;
  }
}

function tagOrDigest(r: DockerReference): string {
  return r.digest ?? r.tag ?? 'latest';
}

export interface DockerOptions {
  /** undefined: as registries.conf says; false allows http and unverified TLS. */
  tlsVerify?: boolean;
  certDir?: string;
  /** "USER[:PASSWORD]" */
  creds?: string;
  /** Access the registry anonymously, ignoring stored credentials (skopeo --no-creds). */
  noCreds?: boolean;
  /** A bearer token used as is (skopeo --registry-token). */
  registryToken?: string;
  authfile?: string;
  retryTimes?: number;
  /** The first wait before a retry (later ones double it). */
  retryDelayMs?: number;
  signaturePolicy?: string;
  /** Skip the policy.json check (skopeo --insecure-policy). */
  insecurePolicy?: boolean;
}

let sourceOptions: DockerOptions = {};
let destOptions: DockerOptions = {};

/** Options for what this process opens next (the transport registry passes only the name). */
export function setDockerOptions(o: { src?: DockerOptions; dst?: DockerOptions }): void {
  if (o.src) sourceOptions = { ...o.src };
  if (o.dst) destOptions = { ...o.dst };
}

/** A client for "host/repo" of an endpoint, with TLS files and credentials found as Podman finds them. */
export async function clientFor(endpointName: string, confInsecure: boolean, o: DockerOptions): Promise<{ client: RegistryClient; repo: string }> {
  const slash = endpointName.indexOf('/');
  const host = slash < 0 ? endpointName : endpointName.slice(0, slash);
  const repo = slash < 0 ? '' : endpointName.slice(slash + 1);
  const insecure = o.tlsVerify === undefined ? confInsecure : !o.tlsVerify;
  let credentials: Credentials | undefined;
  if (o.creds !== undefined) credentials = parseCreds(o.creds);
  else if (o.registryToken) credentials = { identityToken: o.registryToken };
  else if (o.noCreds) credentials = undefined;
  else credentials = (await lookupCredentials(host, repo || undefined, o.authfile))?.credentials;
  const client = new RegistryClient({
    registry: host,
    endpoint: host === 'docker.io' ? 'registry-1.docker.io' : host,
    insecure,
    tls: loadTLSFiles(host, o.certDir),
    ...(credentials && { credentials }),
    ...(o.retryTimes !== undefined && { retryTimes: o.retryTimes }),
    ...(o.retryDelayMs !== undefined && { retryDelayMs: o.retryDelayMs }),
  });
  return { client, repo };
}

// Loaded when signatures are read or written: it brings the YAML parser along.
const lookaside = (): Promise<typeof import('../registry/lookaside.ts')> => import('../registry/lookaside.ts');

// Repositories read in this process, so a push to the same registry can mount instead of upload.
const readFrom: { endpoint: string; repo: string }[] = [];

export class DockerSource implements ImageSource {
  readonly reference: string;
  readonly ref: DockerReference;
  readonly client: RegistryClient;
  readonly repo: string;
  readonly policy: PendingPolicy | undefined;
  readonly #top: ManifestResponse;

  private constructor(ref: DockerReference, client: RegistryClient, repo: string, top: ManifestResponse, policy: PendingPolicy | undefined) {
    this.ref = ref;
    this.reference = `docker://${formatDockerReference(ref)}`;
    this.client = client;
    this.repo = repo;
    this.#top = top;
    this.policy = policy;
  }

  static async open(ref: DockerReference, o: DockerOptions = sourceOptions): Promise<DockerSource> {
    const display = `docker://${formatDockerReference(ref)}`;
    const policy = o.insecurePolicy ? undefined : checkPolicy('docker', dockerScopes(repoName(ref), tagOrDigest(ref)), display, o.signaturePolicy, { ...ref, ...(!ref.tag && !ref.digest && { tag: 'latest' }) });
    const conf = loadRegistriesConf();
    const { endpoints } = pullEndpoints(conf, repoName(ref), ref.digest !== undefined);
    const failures: string[] = [];
    let primaryError: unknown;
    for (const ep of endpoints) {
      const { client, repo } = await clientFor(ep.name, ep.insecure, o);
      try {
        const top = await client.getManifest(repo, tagOrDigest(ref));
        readFrom.push({ endpoint: client.endpoint, repo });
        return new DockerSource(ref, client, repo, top, policy);
      } catch (e) {
        client.close();
        if (ep.mirror) failures.push(`${ep.name}: ${(e as Error).message}`);
        else primaryError = e;
      }
    }
    const err = primaryError as Error;
    const mirrors = failures.length ? ` (Mirrors also failed: [${failures.join('; ')}])` : '';
    throw new Error(`initializing source ${display}${mirrors}: ${err.message}`, { cause: err });
  }

  /** Digest of the manifest the reference names (an index for multi-arch images). */
  get manifestDigest(): string {
    return this.#top.digest;
  }

  async getManifest(instance?: string): Promise<{ bytes: Buffer; mediaType: string }> {
    if (instance === undefined || instance === this.#top.digest) return { bytes: this.#top.bytes, mediaType: this.#top.mediaType };
    validateDigest(instance, 'instance digest');
    const m = await this.client.getManifest(this.repo, instance);
    return { bytes: m.bytes, mediaType: m.mediaType };
  }

  async getBlob(info: BlobInfo): Promise<{ stream: Readable; size: number }> {
    validateDigest(info.digest, 'blob digest');
    return this.client.getBlob(this.repo, info.digest);
  }

  /** Signatures live beside the registry, in the lookaside registries.d names, not in it. */
  async getSignatures(manifestDigest: string): Promise<StoredSignature[]> {
    return (await lookaside()).readLookasideSignatures(this.ref, manifestDigest);
  }

  async listTags(): Promise<string[]> {
    return this.client.listTags(this.repo);
  }

  async close(): Promise<void> {
    this.client.close();
  }
}

export class DockerDestination implements ImageDestination {
  readonly reference: string;
  readonly supportedManifestFormats: ManifestFormat[] = ['oci', 'docker'];
  readonly wantsUncompressedLayers = false;
  readonly compressesLayers = true;
  readonly supportsMultiImage = true;
  readonly ref: DockerReference;
  readonly client: RegistryClient;
  readonly repo: string;
  #manifest: { bytes: Buffer; mediaType: string } | undefined;
  #spool: Promise<BlobStaging> | undefined;
  #signatures: Buffer[] = [];
  /** Set by commit(): the digest of the manifest written. */
  manifestDigest: string | undefined;
  readonly dockerReference: string;

  private constructor(ref: DockerReference, client: RegistryClient, repo: string) {
    this.ref = ref;
    this.reference = `docker://${formatDockerReference(ref)}`;
    this.dockerReference = formatDockerReference(ref);
    this.client = client;
    this.repo = repo;
  }

  static async open(ref: DockerReference, o: DockerOptions = destOptions): Promise<DockerDestination> {
    const ep = pushEndpoint(loadRegistriesConf(), repoName(ref));
    const { client, repo } = await clientFor(ep.name, ep.insecure, o);
    return new DockerDestination(ref, client, repo);
  }

  async hasBlob(info: BlobInfo): Promise<boolean> {
    if (!isValidDigest(info.digest)) return false;
    const size = await this.client.blobSize(this.repo, info.digest, [RegistryClient.pushScope(this.repo)]);
    if (size >= 0) return info.size < 0 || size === info.size;
    // Same registry, another repository we read from: let the registry link it (no transfer).
    for (const s of readFrom) {
      if (s.endpoint !== this.client.endpoint || s.repo === this.repo) continue;
      if (await this.client.mountBlob(this.repo, info.digest, s.repo).catch(() => false)) return true;
    }
    return false;
  }

  async putBlob(stream: Readable, info: BlobInfo, isConfig: boolean): Promise<BlobInfo> {
    const mediaType = info.mediaType !== undefined ? { mediaType: info.mediaType } : {};
    if (!info.digest && !isConfig) {
      // Re-encoded on the way (--compression-format): its digest is known only at the end, so
      // spool it while hashing and upload only when the registry does not have it yet.
      // Layers arrive in parallel: they share one spool directory, created once.
      this.#spool ??= BlobStaging.create(tmpdir(), '.barge-push-');
      const spool = await this.#spool;
      const spooled = await spool.put(stream, info);
      const file = spool.get(spooled.digest)!.path;
      if ((await this.client.blobSize(this.repo, spooled.digest, [RegistryClient.pushScope(this.repo)])) === spooled.size) return { ...spooled, ...mediaType };
      const stored = await this.client.uploadBlob(this.repo, createReadStream(file), spooled);
      return { ...stored, ...mediaType };
    }
    const expected = { ...(info.digest && { digest: info.digest }), size: info.size };
    const body = isConfig ? await readBody(stream, MAX_CONFIG_SIZE, 'image config') : stream;
    const stored = await this.client.uploadBlob(this.repo, body, expected);
    return { ...stored, ...mediaType };
  }

  async putManifest(bytes: Buffer, mediaType: string, instance?: string): Promise<void> {
    // An index's members go up by digest first: the registry refuses an index naming unknown manifests.
    if (instance !== undefined) await this.client.putManifest(this.repo, validateDigest(instance, 'instance digest'), bytes, mediaType);
    else this.#manifest = { bytes, mediaType };
  }

  async putSignatures(signatures: Buffer[]): Promise<void> {
    this.#signatures = signatures;
  }

  async commit(): Promise<void> {
    const m = this.#manifest;
    if (!m) throw new Error(`${this.reference}: commit without a manifest`);
    const digest = digestOf(m.bytes);
    if (this.ref.digest && this.ref.digest !== digest) {
      throw new Error(`${this.reference}: the manifest to push has digest ${digest}, not the one in the reference`);
    }
    // A tag and a digest in the reference: the tag is what users want moved.
    await this.client.putManifest(this.repo, this.ref.tag ?? this.ref.digest ?? 'latest', m.bytes, m.mediaType);
    this.manifestDigest = digest;
    // After the manifest, as containers/image: a signature never names an image that is not there.
    if (this.#signatures.length) await (await lookaside()).writeLookasideSignatures(this.ref, digest, this.#signatures);
  }

  async close(): Promise<void> {
    this.client.close();
    await (await this.#spool?.catch(() => undefined))?.remove();
  }
}

registerTransport('docker', {
  openSource: (spec) => DockerSource.open(parseDockerSpec(spec)),
  openDestination: (spec) => DockerDestination.open(parseDockerSpec(spec)),
});
