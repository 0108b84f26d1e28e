// A small OCI distribution-spec client on node:http/https: ping, basic and bearer-token auth,
// manifests, blobs (with redirects), uploads, cross-repository mounts, tags, deletes.
// Verification of what comes back (digests, sizes) is the copy pipeline's job, except for
// manifests fetched by digest, which are checked here because nothing else knows the digest.
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { createRequire } from 'node:module';
// Loaded through require: an ESM import of node:http evaluates all its exports, among them the
// lazy WebSocket/EventSource getters that load undici, which cost 40-60 ms per command here.
const nodeRequire = createRequire(import.meta.url);
const { Agent: HttpAgent, request: httpRequest } = nodeRequire('node:http') as typeof import('node:http');
const { Agent: HttpsAgent, request: httpsRequest } = nodeRequire('node:https') as typeof import('node:https');
import { PassThrough, Readable } from 'node:stream';
import { rootCertificates } from 'node:tls';
import { algorithmOf, DigestingStream, DigestMismatchError, digestOf, isValidDigest, SizeMismatchError } from '../digest.ts';
import { detectManifestMediaType, isIndexMediaType, isManifestMediaType, MAX_MANIFEST_SIZE } from '../manifest.ts';
import { MediaType } from '../types.ts';

export const MANIFEST_ACCEPT = [
  MediaType.ociManifest,
  MediaType.ociIndex,
  MediaType.dockerManifest,
  MediaType.dockerManifestList,
  'application/vnd.docker.distribution.manifest.v1+prettyjws',
  'application/vnd.docker.distribution.manifest.v1+json',
];

const MAX_ERROR_BODY = 64 * 1024;
const MAX_TOKEN_BODY = 1024 * 1024;
const MAX_TAGS_BODY = 4 * 1024 * 1024;
const MAX_TAG_PAGES = 1000;
const MAX_REDIRECTS = 5;
const REQUEST_TIMEOUT_MS = 60_000;
const MAX_RETRY_AFTER_MS = 30_000;

export type Credentials = { username: string; password: string } | { identityToken: string };

export interface TLSFiles {
  /** Extra CA certificates (PEM), trusted in addition to the system roots. */
  ca: Buffer[];
  cert?: Buffer;
  key?: Buffer;
}

export interface RegistryClientOptions {
  /** The registry's name as users write it (auth.json key, messages): "quay.io", "127.0.0.1:5000". */
  registry: string;
  /** Host[:port] actually contacted; defaults to `registry` (docker.io → registry-1.docker.io). */
  endpoint?: string;
  /** Allows plain http and unverified TLS (insecure = true, --tls-verify=false). */
  insecure?: boolean;
  tls?: TLSFiles;
  credentials?: Credentials;
  /** Attempts after the first for transient failures; default 3. */
  retryTimes?: number;
  /** Base delay of the exponential backoff; default 250 ms. */
  retryDelayMs?: number;
}

/** An error answer of the registry, with its HTTP status and distribution error codes. */
export class RegistryError extends Error {
  readonly status: number;
  readonly codes: string[];
  constructor(message: string, status: number, codes: string[] = []) {
    super(message);
    this.name = 'RegistryError';
    this.status = status;
    this.codes = codes;
  }
}

interface Challenge {
  scheme: 'basic' | 'bearer';
  params: Record<string, string>;
}

interface RequestSpec {
  method: string;
  /** Path below the origin ("/v2/…") or an absolute URL (upload locations, redirects). */
  url: string;
  headers?: OutgoingHttpHeaders;
  body?: Buffer | Readable;
  /** Token scopes for this request ("repository:x:pull"). */
  scopes?: string[];
  /** Follow redirects (blob downloads); the Authorization header is dropped across origins. */
  followRedirects?: boolean;
}

/** Parses a WWW-Authenticate header: `Bearer realm="…",service="…",scope="…"`. */
export function parseChallenge(header: string | undefined): Challenge | undefined {
  if (!header) return undefined;
  const m = /^\s*(\w+)\s*(.*)$/s.exec(header);
  if (!m) return undefined;
  const scheme = m[1]!.toLowerCase();
  if (scheme !== 'basic' && scheme !== 'bearer') return undefined;
  const params: Record<string, string> = {};
  const re = /([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g;
  for (let p = re.exec(m[2]!); p; p = re.exec(m[2]!)) {
    params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3]!;
  }
  return { scheme, params };
}

/** "MANIFEST_UNKNOWN" + message → "manifest unknown: …", as containers/image prints them. */
function describeErrorBody(status: number, body: Buffer, contentType: string | undefined): { message: string; codes: string[] } {
  if (body.length && (contentType?.includes('json') || body[0] === 0x7b)) {
    try {
      const parsed = JSON.parse(body.toString('utf8')) as { errors?: { code?: unknown; message?: unknown; detail?: unknown }[] };
      if (Array.isArray(parsed.errors) && parsed.errors.length) {
        const codes: string[] = [];
        const parts = parsed.errors.map((e) => {
          const code = typeof e.code === 'string' ? e.code : 'UNKNOWN';
          codes.push(code);
          const text = code.toLowerCase().replace(/_/g, ' ');
          const msg = typeof e.message === 'string' && e.message ? e.message : '';
          return msg ? `${text}: ${msg.slice(0, 500)}` : text;
        });
        return { message: parts.join('; '), codes };
      }
    } catch {
      // Not the distribution error format; fall through.
    }
  }
  const text = body.toString('utf8').replace(/\s+/g, ' ').trim().slice(0, 300);
  return { message: `received unexpected HTTP status: ${status}${text && !/^</.test(text) ? ` (${text})` : ''}`, codes: [] };
}

export async function readBody(res: Readable & { headers?: IncomingHttpHeaders }, limit: number, what: string): Promise<Buffer> {
  const declared = Number(res.headers?.['content-length'] ?? -1);
  if (declared > limit) {
    res.destroy();
    throw new Error(`${what} is ${declared} bytes, over the ${limit}-byte limit`);
  }
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > limit) {
      res.destroy();
      throw new Error(`${what} exceeds the ${limit}-byte limit`);
    }
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

function drain(res: IncomingMessage): void {
  res.resume();
  res.on('error', () => {});
}

function isTransientNetworkError(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return (
    typeof code === 'string' &&
    ['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'EAI_AGAIN', 'UND_ERR_SOCKET', 'ERR_STREAM_PREMATURE_CLOSE'].includes(code)
  ) || (e as Error | null)?.message === 'socket hang up';
}

const TLS_ERROR_CODES = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED', 'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_UNTRUSTED', 'UNABLE_TO_GET_ISSUER_CERT', 'CERT_NOT_YET_VALID',
]);

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function retryAfterMs(h: string | string[] | undefined): number | undefined {
  const v = Array.isArray(h) ? h[0] : h;
  if (!v) return undefined;
  const secs = Number(v);
  if (Number.isFinite(secs) && secs >= 0) return Math.min(secs * 1000, MAX_RETRY_AFTER_MS);
  const at = Date.parse(v);
  if (Number.isFinite(at)) return Math.min(Math.max(0, at - Date.now()), MAX_RETRY_AFTER_MS);
  return undefined;
}

function headerString(h: string | string[] | undefined): string | undefined {
  return Array.isArray(h) ? h[0] : h;
}

export interface ManifestResponse {
  bytes: Buffer;
  mediaType: string;
  /** Docker-Content-Digest, or computed from the bytes. */
  digest: string;
}

export class RegistryClient {
  readonly registry: string;
  readonly endpoint: string;
  readonly insecure: boolean;
  readonly #opts: RegistryClientOptions;
  #origin: string | undefined;
  #pinging: Promise<void> | undefined;
  #challenge: Challenge | undefined;
  readonly #tokens = new Map<string, { token: string; expires: number }>();
  readonly #httpsAgent: InstanceType<typeof HttpsAgent>;
  readonly #httpAgent: InstanceType<typeof HttpAgent>;

  constructor(opts: RegistryClientOptions) {
    this.#opts = opts;
    this.registry = opts.registry;
    this.endpoint = opts.endpoint ?? opts.registry;
    this.insecure = !!opts.insecure;
    const tls = opts.tls;
    this.#httpsAgent = new HttpsAgent({
      keepAlive: true,
      maxSockets: 8,
      rejectUnauthorized: !this.insecure,
      ...(tls?.ca.length ? { ca: [...rootCertificates, ...tls.ca.map((b) => b.toString('utf8'))] } : {}),
      ...(tls?.cert && tls.key ? { cert: tls.cert, key: tls.key } : {}),
    });
    this.#httpAgent = new HttpAgent({ keepAlive: true, maxSockets: 8 });
  }

  close(): void {
    this.#httpsAgent.destroy();
    this.#httpAgent.destroy();
  }

  /** The scheme and host the registry answered on ("https://host:port"), after ping(). */
  get origin(): string | undefined {
    return this.#origin;
  }

  /**
   * GET /v2/ over https (and, when insecure, plain http if https fails). Records the auth
   * challenge. Any answer (200, 401) counts: it is a registry.
   */
  ping(): Promise<void> {
    this.#pinging ??= this.#ping().catch((e: unknown) => {
      this.#pinging = undefined;
      throw e;
    });
    return this.#pinging;
  }

  async #ping(): Promise<void> {
    const schemes = this.insecure ? ['https', 'http'] : ['https'];
    let firstError: unknown;
    for (const scheme of schemes) {
      const url = `${scheme}://${this.endpoint}/v2/`;
      try {
        const res = await this.#withRetries('GET', undefined, () => this.#send('GET', new URL(url), {}, undefined));
        const status = res.statusCode ?? 0;
        drain(res);
        if (status === 200 || status === 401) {
          this.#origin = `${scheme}://${this.endpoint}`;
          if (status === 401) this.#challenge = parseChallenge(headerString(res.headers['www-authenticate']));
          return;
        }
        throw new Error(`Get "${url}": unexpected HTTP status ${status}`);
      } catch (e) {
        firstError ??= this.#describeNetworkError(e, url);
      }
    }
    throw new Error(`pinging container registry ${this.registry}: ${(firstError as Error).message}`, { cause: firstError });
  }

  #describeNetworkError(e: unknown, url: string): Error {
    const err = e as NodeJS.ErrnoException;
    if (typeof err.code === 'string' && TLS_ERROR_CODES.has(err.code)) {
      return new Error(`Get "${url}": tls: failed to verify certificate: x509: ${err.message}`, { cause: e });
    }
    if (err.message?.startsWith('Get "')) return err;
    if (err.code === 'EPROTO' && /wrong version number|packet length too long/.test(err.message)) {
      return new Error(`Get "${url}": http: server gave HTTP response to HTTPS client`, { cause: e });
    }
    return new Error(`Get "${url}": ${err.message}`, { cause: e });
  }

  // -------------------------------------------------------------------------------------------
  // Authentication

  async #token(scopes: string[], force: boolean): Promise<string> {
    const ch = this.#challenge!;
    const key = [...scopes].sort().join(' ');
    const cached = this.#tokens.get(key);
    if (!force && cached && cached.expires > Date.now()) return cached.token;
    const realm = ch.params.realm;
    if (!realm) throw new Error(`${this.registry}: bearer challenge without a realm`);
    const url = new URL(realm);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error(`${this.registry}: unsupported token realm ${realm}`);
    const creds = this.#opts.credentials;
    let res: IncomingMessage;
    if (creds && 'identityToken' in creds) {
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.identityToken, client_id: 'barge' });
      if (ch.params.service) form.set('service', ch.params.service);
      if (scopes.length) form.set('scope', scopes.join(' '));
      const body = Buffer.from(form.toString());
      res = await this.#withRetries('POST', body, () =>
        this.#send('POST', url, { 'content-type': 'application/x-www-form-urlencoded', 'content-length': body.length }, body),
      );
    } else {
      if (ch.params.service) url.searchParams.set('service', ch.params.service);
      for (const s of scopes) url.searchParams.append('scope', s);
      const headers: OutgoingHttpHeaders = {};
      if (creds) headers.authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
      res = await this.#withRetries('GET', undefined, () => this.#send('GET', url, headers, undefined));
    }
    const status = res.statusCode ?? 0;
    const body = await readBody(res, status === 200 ? MAX_TOKEN_BODY : MAX_ERROR_BODY, 'token response');
    if (status === 401 || status === 403) throw new RegistryError('unauthorized: authentication required', status, ['UNAUTHORIZED']);
    if (status !== 200) throw new RegistryError(`requesting bearer token: ${describeErrorBody(status, body, headerString(res.headers['content-type'])).message}`, status);
    let parsed: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      parsed = JSON.parse(body.toString('utf8')) as typeof parsed;
    } catch {
      throw new Error(`${this.registry}: malformed token response`);
    }
    const token = typeof parsed.token === 'string' && parsed.token ? parsed.token : typeof parsed.access_token === 'string' ? parsed.access_token : '';
    if (!token) throw new Error(`${this.registry}: token response has no token`);
    const ttl = typeof parsed.expires_in === 'number' && parsed.expires_in > 0 ? parsed.expires_in : 60;
    // Refresh a little before the registry would.
    this.#tokens.set(key, { token, expires: Date.now() + Math.max(5, ttl - 10) * 1000 });
    return token;
  }

  async #authorization(scopes: string[], force: boolean): Promise<string | undefined> {
    const ch = this.#challenge;
    if (!ch) return undefined;
    const creds = this.#opts.credentials;
    if (ch.scheme === 'basic') {
      if (!creds || 'identityToken' in creds) return undefined;
      return `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
    }
    return `Bearer ${await this.#token(scopes, force)}`;
  }

  /** Checks that the configured credentials are accepted (login). */
  async checkCredentials(): Promise<void> {
    await this.ping();
    if (!this.#challenge) return;
    if (this.#challenge.scheme === 'bearer') {
      await this.#token([], true);
      return;
    }
    const res = await this.#request({ method: 'GET', url: '/v2/' });
    if (res.statusCode === 401 || res.statusCode === 403) {
      drain(res);
      throw new RegistryError('unauthorized: authentication required', res.statusCode, ['UNAUTHORIZED']);
    }
    if (res.statusCode !== 200) return this.#fail(res, 'checking credentials');
    drain(res);
  }

  // -------------------------------------------------------------------------------------------
  // Transport

  #send(method: string, url: URL, headers: OutgoingHttpHeaders, body: Buffer | Readable | undefined): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const isHttps = url.protocol === 'https:';
      if (!isHttps && url.protocol !== 'http:') {
        reject(new Error(`unsupported URL scheme in ${url.href}`));
        return;
      }
      if (!isHttps && !this.insecure) {
        reject(new Error(`refusing plain http to ${url.host} (use --tls-verify=false or insecure = true in registries.conf)`));
        return;
      }
      const req = (isHttps ? httpsRequest : httpRequest)(url, {
        method,
        headers: { 'user-agent': 'barge/0.1', ...headers },
        agent: isHttps ? this.#httpsAgent : this.#httpAgent,
      });
      let bodyError: unknown;
      req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(Object.assign(new Error(`${method} ${url.href}: timed out`), { code: 'ETIMEDOUT' })));
      req.on('response', (res) => {
        res.setTimeout(REQUEST_TIMEOUT_MS, () => res.destroy(Object.assign(new Error(`${method} ${url.href}: body timed out`), { code: 'ETIMEDOUT' })));
        resolve(res);
      });
      req.on('error', (e) => reject(bodyError ?? e));
      if (body === undefined) req.end();
      else if (Buffer.isBuffer(body)) req.end(body);
      else {
        body.on('error', (e) => {
          bodyError = e;
          req.destroy(e);
        });
        body.pipe(req);
      }
    });
  }

  /** Retries transient failures of a request whose body can be sent again. */
  async #withRetries(_method: string, body: Buffer | Readable | undefined, attempt: () => Promise<IncomingMessage>): Promise<IncomingMessage> {
    const replayable = body === undefined || Buffer.isBuffer(body);
    const max = replayable ? (this.#opts.retryTimes ?? 3) : 0;
    const base = this.#opts.retryDelayMs ?? 250;
    for (let i = 0; ; i++) {
      let res: IncomingMessage;
      try {
        res = await attempt();
      } catch (e) {
        // A refused connection is retried only when retries were asked for (--retry, --retry-times):
        // by default a registry that is not there fails at once, as it does with Podman.
        const refused = (e as NodeJS.ErrnoException | null)?.code === 'ECONNREFUSED' && this.#opts.retryTimes !== undefined;
        if (i < max && (isTransientNetworkError(e) || refused)) {
          await sleep(base * 2 ** i);
          continue;
        }
        throw e;
      }
      const status = res.statusCode ?? 0;
      if (i < max && (status === 429 || status === 502 || status === 503 || status === 504 || status === 500)) {
        const wait = retryAfterMs(res.headers['retry-after']) ?? base * 2 ** i;
        drain(res);
        await sleep(wait);
        continue;
      }
      return res;
    }
  }

  async #request(spec: RequestSpec): Promise<IncomingMessage> {
    await this.ping();
    const scopes = spec.scopes ?? [];
    let url = new URL(spec.url, this.#origin);
    let auth = await this.#authorization(scopes, false);
    let retriedAuth = false;
    for (let redirects = 0; ; ) {
      const sameOrigin = url.origin === this.#origin;
      const headers: OutgoingHttpHeaders = { ...spec.headers };
      if (auth && sameOrigin) headers.authorization = auth;
      const res = await this.#withRetries(spec.method, spec.body, () => this.#send(spec.method, url, headers, spec.body));
      const status = res.statusCode ?? 0;
      if (status === 401 && sameOrigin && !retriedAuth && (spec.body === undefined || Buffer.isBuffer(spec.body))) {
        // A new or changed challenge (first request, expired token, more scopes): authenticate and retry once.
        const ch = parseChallenge(headerString(res.headers['www-authenticate']));
        drain(res);
        if (ch) this.#challenge = ch;
        const more = ch?.params.scope ? ch.params.scope.split(' ').filter((s) => !scopes.includes(s)) : [];
        const creds = this.#opts.credentials;
        if (this.#challenge?.scheme === 'basic' && !creds) {
          throw new RegistryError('unauthorized: authentication required', 401, ['UNAUTHORIZED']);
        }
        auth = await this.#authorization([...scopes, ...more], true);
        retriedAuth = true;
        continue;
      }
      if (spec.followRedirects && [301, 302, 303, 307, 308].includes(status)) {
        const loc = headerString(res.headers.location);
        drain(res);
        if (!loc) throw new Error(`${spec.method} ${url.href}: redirect without a Location`);
        if (++redirects > MAX_REDIRECTS) throw new Error(`${spec.method} ${spec.url}: stopped after ${MAX_REDIRECTS} redirects`);
        url = new URL(loc, url);
        continue;
      }
      return res;
    }
  }

  /** Turns an unexpected answer into a RegistryError with the registry's own words. */
  async #fail(res: IncomingMessage, context: string): Promise<never> {
    const status = res.statusCode ?? 0;
    let body: Buffer = Buffer.alloc(0);
    try {
      body = await readBody(res, MAX_ERROR_BODY, 'error body');
    } catch {
      // An oversized or broken error body: the status alone must do.
    }
    const { message, codes } = describeErrorBody(status, body, headerString(res.headers['content-type']));
    let text = message;
    if (status === 401 && !codes.length) text = 'unauthorized: authentication required';
    throw new RegistryError(`${context}: ${text}`, status, codes);
  }

  // -------------------------------------------------------------------------------------------
  // API

  static pullScope(repo: string): string {
    return `repository:${repo}:pull`;
  }

  static pushScope(repo: string): string {
    return `repository:${repo}:pull,push`;
  }

  async getManifest(repo: string, reference: string, scopes = [RegistryClient.pullScope(repo)]): Promise<ManifestResponse> {
    const res = await this.#request({
      method: 'GET',
      url: `/v2/${repo}/manifests/${reference}`,
      headers: { accept: MANIFEST_ACCEPT.join(', ') },
      scopes,
    });
    const context = `reading manifest ${reference} in ${this.registry}/${repo}`;
    if (res.statusCode !== 200) return this.#fail(res, context);
    const bytes = await readBody(res, MAX_MANIFEST_SIZE, `manifest ${reference} in ${this.registry}/${repo}`);
    let mediaType = (headerString(res.headers['content-type']) ?? '').split(';')[0]!.trim();
    if (!isManifestMediaType(mediaType) && !isIndexMediaType(mediaType) && !mediaType.startsWith('application/vnd.docker.distribution.manifest.v1')) {
      mediaType = detectManifestMediaType(bytes);
    }
    let digest: string;
    if (isValidDigest(reference)) {
      const actual = digestOf(bytes, algorithmOf(reference));
      if (actual !== reference) throw new DigestMismatchError(reference, actual);
      digest = reference;
    } else {
      digest = digestOf(bytes);
    }
    return { bytes, mediaType, digest };
  }

  /** HEAD of a manifest: its digest and media type, or undefined when it does not exist. */
  async headManifest(repo: string, reference: string): Promise<{ digest: string; mediaType: string; size: number } | undefined> {
    const res = await this.#request({
      method: 'HEAD',
      url: `/v2/${repo}/manifests/${reference}`,
      headers: { accept: MANIFEST_ACCEPT.join(', ') },
      scopes: [RegistryClient.pullScope(repo)],
    });
    drain(res);
    if (res.statusCode === 404) return undefined;
    if (res.statusCode !== 200) throw new RegistryError(`checking manifest ${reference} in ${this.registry}/${repo}: received unexpected HTTP status: ${res.statusCode}`, res.statusCode ?? 0);
    const digest = headerString(res.headers['docker-content-digest']) ?? '';
    return { digest, mediaType: headerString(res.headers['content-type']) ?? '', size: Number(res.headers['content-length'] ?? -1) };
  }

  async #blobResponse(repo: string, digest: string, offset: number): Promise<IncomingMessage> {
    const res = await this.#request({
      method: 'GET',
      url: `/v2/${repo}/blobs/${digest}`,
      scopes: [RegistryClient.pullScope(repo)],
      followRedirects: true,
      ...(offset > 0 && { headers: { range: `bytes=${offset}-` } }),
    });
    const want = offset > 0 ? 206 : 200;
    if (res.statusCode !== want) {
      if (offset > 0 && res.statusCode === 200) {
        drain(res);
        throw new Error(`the registry does not resume downloads (answered a range request with the whole blob)`);
      }
      return this.#fail(res, `fetching blob ${digest} from ${this.registry}/${repo}`);
    }
    return res;
  }

  /**
   * Streams a blob as stored; follows redirects (to storage backends), a bounded number of times.
   * A body cut short (reset, truncated) is resumed with a range request from where it broke, up
   * to the retry limit; then the stream fails with an error naming the blob. Verifying the
   * content stays with the caller.
   */
  async getBlob(repo: string, digest: string): Promise<{ stream: Readable; size: number }> {
    const first = await this.#blobResponse(repo, digest, 0);
    const len = first.headers['content-length'];
    const size = len === undefined ? -1 : Number(len);
    const max = this.#opts.retryTimes ?? 3;
    const base = this.#opts.retryDelayMs ?? 250;
    const where = `${this.registry}/${repo}`;
    const out = new PassThrough({ highWaterMark: 1 << 20 });
    let current = first;
    let offset = 0;
    let attempt = 0;
    // Piped by hand rather than through an async generator: at a few thousand chunks per layer the
    // promise per chunk showed up as garbage-collector time on large pulls.
    const attach = (res: IncomingMessage): void => {
      current = res;
      let settled = false;
      const onDrain = (): void => void res.resume();
      out.on('drain', onDrain);
      const settle = (failure: unknown): void => {
        if (settled) return;
        settled = true;
        out.off('drain', onDrain);
        if (failure === undefined) {
          out.end();
          return;
        }
        void resume(failure);
      };
      res.on('data', (c: Buffer) => {
        offset += c.length;
        if (!out.write(c)) res.pause();
      });
      res.on('end', () => settle(size < 0 || offset >= size ? undefined : new Error('connection closed early')));
      res.on('error', (e) => settle(e));
      res.on('close', () => settle(res.complete ? undefined : new Error('connection closed early')));
    };
    const resume = async (failure: unknown): Promise<void> => {
      if (out.destroyed) return;
      const got = `after ${offset} of ${size < 0 ? 'an unknown number of' : size} bytes`;
      const transient = isTransientNetworkError(failure) || (failure as Error).message === 'aborted' || (failure as Error).message === 'connection closed early';
      if (!transient || attempt >= max) {
        const why = `${(failure as Error).message} ${got}${transient && max > 0 ? `, ${max} resumptions failed` : ''}`;
        out.destroy(new Error(`fetching blob ${digest} from ${where}: ${why}`, { cause: failure }));
        return;
      }
      await sleep(base * 2 ** attempt++);
      if (out.destroyed) return;
      try {
        attach(await this.#blobResponse(repo, digest, offset));
      } catch (e) {
        out.destroy(new Error(`fetching blob ${digest} from ${where}: resuming ${got}: ${(e as Error).message}`, { cause: e }));
      }
    };
    // The consumer giving up (another layer failed, a digest mismatch) ends the download too.
    out.on('close', () => current.destroy());
    attach(first);
    return { stream: out, size };
  }

  /** Size of a blob in the repository, or -1 when absent. */
  async blobSize(repo: string, digest: string, scopes = [RegistryClient.pullScope(repo)]): Promise<number> {
    const res = await this.#request({ method: 'HEAD', url: `/v2/${repo}/blobs/${digest}`, scopes, followRedirects: true });
    drain(res);
    if (res.statusCode === 200) return Number(res.headers['content-length'] ?? -1);
    if (res.statusCode === 404) return -1;
    if (res.statusCode === 401 || res.statusCode === 403) throw new RegistryError(`checking blob ${digest} in ${this.registry}/${repo}: unauthorized: authentication required`, res.statusCode);
    throw new RegistryError(`checking blob ${digest} in ${this.registry}/${repo}: received unexpected HTTP status: ${res.statusCode}`, res.statusCode ?? 0);
  }

  /** Cross-repository mount; true when the registry mounted it (201), false when it did not. */
  async mountBlob(repo: string, digest: string, from: string): Promise<boolean> {
    const q = new URLSearchParams({ mount: digest, from });
    const res = await this.#request({
      method: 'POST',
      url: `/v2/${repo}/blobs/uploads/?${q.toString()}`,
      headers: { 'content-length': 0 },
      scopes: [RegistryClient.pushScope(repo), RegistryClient.pullScope(from)],
    });
    drain(res);
    if (res.statusCode === 201) return true;
    if (res.statusCode === 202) {
      // The registry opened an ordinary upload instead; cancel it.
      const loc = headerString(res.headers.location);
      if (loc) await this.#request({ method: 'DELETE', url: loc, scopes: [RegistryClient.pushScope(repo)] }).then(drain, () => {});
    }
    return false;
  }

  async #startUpload(repo: string): Promise<URL> {
    const res = await this.#request({ method: 'POST', url: `/v2/${repo}/blobs/uploads/`, headers: { 'content-length': 0 }, scopes: [RegistryClient.pushScope(repo)] });
    if (res.statusCode !== 202) return this.#fail(res, `initiating upload to ${this.registry}/${repo}`);
    drain(res);
    const loc = headerString(res.headers.location);
    if (!loc) throw new Error(`initiating upload to ${this.registry}/${repo}: no Location in the answer`);
    return new URL(loc, this.#origin);
  }

  /**
   * Uploads a blob. A Buffer goes up in one PUT; a stream goes up in one PATCH while it is
   * hashed, then the PUT names the digest. With `expected.digest` a different content fails
   * (and the upload is cancelled) before the registry would make it visible.
   */
  async uploadBlob(repo: string, body: Buffer | Readable, expected: { digest?: string; size?: number } = {}): Promise<{ digest: string; size: number }> {
    const scopes = [RegistryClient.pushScope(repo)];
    let location = await this.#startUpload(repo);
    let digest: string;
    let size: number;
    if (Buffer.isBuffer(body)) {
      digest = digestOf(body, expected.digest ? algorithmOf(expected.digest) : 'sha256');
      size = body.length;
      this.#checkExpected(expected, digest, size);
      location.searchParams.set('digest', digest);
      const res = await this.#request({ method: 'PUT', url: location.href, headers: { 'content-type': 'application/octet-stream', 'content-length': size }, body, scopes });
      if (res.statusCode !== 201) return this.#fail(res, `uploading blob ${digest} to ${this.registry}/${repo}`);
      drain(res);
      return { digest, size };
    }
    const hasher = new DigestingStream(expected.digest ? algorithmOf(expected.digest) : 'sha256');
    body.on('error', (e) => hasher.destroy(e));
    const piped = body.pipe(hasher);
    try {
      const res = await this.#request({ method: 'PATCH', url: location.href, headers: { 'content-type': 'application/octet-stream' }, body: piped, scopes });
      if (res.statusCode !== 202) return await this.#fail(res, `uploading blob to ${this.registry}/${repo}`);
      drain(res);
      const loc = headerString(res.headers.location);
      if (loc) location = new URL(loc, this.#origin);
      digest = hasher.digest;
      size = hasher.size;
      this.#checkExpected(expected, digest, size);
    } catch (e) {
      body.destroy();
      await this.#request({ method: 'DELETE', url: location.href, scopes }).then(drain, () => {});
      throw e;
    }
    location.searchParams.set('digest', digest);
    const res = await this.#request({ method: 'PUT', url: location.href, headers: { 'content-length': 0 }, scopes });
    if (res.statusCode !== 201) return this.#fail(res, `completing upload of ${digest} to ${this.registry}/${repo}`);
    drain(res);
    return { digest, size };
  }

  #checkExpected(expected: { digest?: string; size?: number }, digest: string, size: number): void {
    if (expected.digest && expected.digest !== digest) throw new DigestMismatchError(expected.digest, digest);
    if (expected.size !== undefined && expected.size >= 0 && expected.size !== size) throw new SizeMismatchError(digest, expected.size, size);
  }

  async putManifest(repo: string, reference: string, bytes: Buffer, mediaType: string): Promise<string> {
    const res = await this.#request({
      method: 'PUT',
      url: `/v2/${repo}/manifests/${reference}`,
      headers: { 'content-type': mediaType, 'content-length': bytes.length },
      body: bytes,
      scopes: [RegistryClient.pushScope(repo)],
    });
    if (res.statusCode !== 201 && res.statusCode !== 200) return this.#fail(res, `writing manifest ${reference} to ${this.registry}/${repo}`);
    drain(res);
    return headerString(res.headers['docker-content-digest']) ?? digestOf(bytes);
  }

  async deleteManifest(repo: string, digest: string): Promise<void> {
    const res = await this.#request({ method: 'DELETE', url: `/v2/${repo}/manifests/${digest}`, scopes: [`repository:${repo}:delete`, RegistryClient.pushScope(repo)] });
    if (res.statusCode !== 202 && res.statusCode !== 200) return this.#fail(res, `deleting manifest ${digest} from ${this.registry}/${repo}`);
    drain(res);
  }

  /** All tags, following Link pagination (bounded). */
  listTags(repo: string): Promise<string[]> {
    return this.#listPaged(`/v2/${repo}/tags/list`, [RegistryClient.pullScope(repo)], `tags list of ${this.registry}/${repo}`, 'tags');
  }

  /** Every repository the registry lists in /v2/_catalog (`podman search` where there is no search API). */
  listCatalog(): Promise<string[]> {
    return this.#listPaged('/v2/_catalog', ['registry:catalog:*'], `catalog of ${this.registry}`, 'repositories');
  }

  /** The strings of a paginated list answer's `key`, following Link pagination (bounded). */
  async #listPaged(first: string, scopes: string[], what: string, key: 'tags' | 'repositories'): Promise<string[]> {
    const out: string[] = [];
    let url = first;
    for (let page = 0; page < MAX_TAG_PAGES; page++) {
      const res = await this.#request({ method: 'GET', url, scopes });
      if (res.statusCode !== 200) return this.#fail(res, `fetching ${what}`);
      const body = await readBody(res, MAX_TAGS_BODY, what);
      let parsed: Partial<Record<typeof key, unknown>>;
      try {
        parsed = JSON.parse(body.toString('utf8')) as typeof parsed;
      } catch {
        throw new Error(`fetching ${what}: malformed answer`);
      }
      const items = parsed[key];
      if (Array.isArray(items)) for (const t of items) if (typeof t === 'string') out.push(t);
      const link = headerString(res.headers.link);
      const next = link ? /<([^>]+)>\s*;\s*rel="?next"?/.exec(link)?.[1] : undefined;
      if (!next) return out;
      const nextUrl = new URL(next, this.#origin);
      if (nextUrl.origin !== this.#origin) throw new Error(`fetching ${what}: pagination leaves the registry`);
      url = nextUrl.pathname + nextUrl.search;
    }
    throw new Error(`fetching ${what}: more than ${MAX_TAG_PAGES} pages`);
  }
}
