// A real registry for tests: Debian's docker-registry (distribution 2.8) on 127.0.0.1 with a
// free port and a temp storage dir; optionally TLS (a CA made here with openssl), htpasswd
// auth, or token auth with a small token issuer in this process. Plus a tampering proxy.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, createPrivateKey, sign as cryptoSign, X509Certificate } from 'node:crypto';
import { request as httpRequest, createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { mkdir, mkdtemp, readFile, rm, writeFile, copyFile } from 'node:fs/promises';
import { createServer as netServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'vitest';
import { describeFailure, type BargeResult, type Env } from '../helpers.ts';

const execFileP = promisify(execFile);

export interface RegistryOptions {
  tls?: boolean;
  /** htpasswd basic auth with this user. */
  htpasswd?: { user: string; password: string };
  /** Token auth: a token issuer in this process grants everything to this user. */
  token?: { user: string; password: string };
}

export interface Registry {
  /** "127.0.0.1:PORT" */
  host: string;
  dir: string;
  /** A directory holding ca.crt, for --cert-dir (TLS only). */
  certDir?: string;
  /** How many tokens the issuer handed out (token mode). */
  tokensIssued(): number;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = netServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function makeCerts(dir: string): Promise<{ cert: string; key: string; ca: string }> {
  const o = (...a: string[]): Promise<unknown> => execFileP('openssl', a, { cwd: dir });
  await o('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=barge test CA');
  await o('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
  await writeFile(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n');
  await o('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'ext.cnf');
  return { cert: join(dir, 'server.crt'), key: join(dir, 'server.key'), ca: join(dir, 'ca.crt') };
}

function b64url(b: Buffer | string): string {
  return Buffer.from(b).toString('base64url');
}

/** A token issuer as Docker's token spec describes; the registry trusts its self-signed cert. */
async function startTokenIssuer(dir: string, service: string, user: { user: string; password: string }): Promise<{ realm: string; bundle: string; server: Server; count: () => number }> {
  await execFileP('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'token.key', '-out', 'token.crt', '-days', '2', '-subj', '/CN=barge token issuer'], { cwd: dir });
  const key = createPrivateKey(await readFile(join(dir, 'token.key')));
  const certPem = await readFile(join(dir, 'token.crt'), 'utf8');
  const der = new X509Certificate(certPem).raw;
  let issued = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const auth = req.headers.authorization ?? '';
    const expected = `Basic ${Buffer.from(`${user.user}:${user.password}`).toString('base64')}`;
    const scopes = url.searchParams.getAll('scope');
    if (auth !== expected) {
      // Anonymous tokens carry no access; wrong credentials are refused.
      if (auth) {
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end('{"errors":[{"code":"UNAUTHORIZED","message":"invalid credentials"}]}');
        return;
      }
    }
    const access = auth === expected
      ? scopes.flatMap((s) => {
          const [type, name, actions] = s.split(':');
          return type && name && actions ? [{ type, name, actions: actions.split(',') }] : [];
        })
      : [];
    const now = Math.floor(Date.now() / 1000);
    const header = { alg: 'RS256', typ: 'JWT', x5c: [der.toString('base64')] };
    const claims = { iss: 'barge-test-issuer', sub: auth ? user.user : '', aud: service, exp: now + 300, nbf: now - 10, iat: now, jti: createHash('sha256').update(String(Math.random())).digest('hex').slice(0, 16), access };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const sig = cryptoSign('sha256', Buffer.from(input), key);
    issued++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token: `${input}.${b64url(sig)}`, expires_in: 300 }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return { realm: `http://127.0.0.1:${port}/token`, bundle: join(dir, 'token.crt'), server, count: () => issued };
}

function ping(host: string, tls: boolean): Promise<boolean> {
  return new Promise((resolve) => {
    const req = (tls ? httpsRequest : httpRequest)(`${tls ? 'https' : 'http'}://${host}/v2/`, { rejectUnauthorized: false, timeout: 1000 }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

export async function startRegistry(opts: RegistryOptions = {}): Promise<Registry> {
  const dir = await mkdtemp(join(tmpdir(), 'barge-registry-'));
  let tls: { cert: string; key: string; ca: string } | undefined;
  let certDir: string | undefined;
  if (opts.tls) {
    tls = await makeCerts(dir);
    certDir = join(dir, 'certs');
    await mkdir(certDir);
    await copyFile(tls.ca, join(certDir, 'ca.crt'));
  }
  let auth = '';
  if (opts.htpasswd) {
    const { stdout } = await execFileP('htpasswd', ['-Bbn', opts.htpasswd.user, opts.htpasswd.password]);
    await writeFile(join(dir, 'htpasswd'), stdout);
    auth = `auth:\n  htpasswd:\n    realm: barge-test\n    path: ${join(dir, 'htpasswd')}\n`;
  }
  let issuer: Awaited<ReturnType<typeof startTokenIssuer>> | undefined;
  if (opts.token) {
    issuer = await startTokenIssuer(dir, 'barge-test-registry', opts.token);
    auth = `auth:\n  token:\n    realm: ${issuer.realm}\n    service: barge-test-registry\n    issuer: barge-test-issuer\n    rootcertbundle: ${issuer.bundle}\n`;
  }
  // A port can be taken between freePort() and the registry binding it: try a few.
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const host = `127.0.0.1:${port}`;
    const config = [
      'version: 0.1',
      'log:\n  level: error\n  accesslog:\n    disabled: true',
      `storage:\n  filesystem:\n    rootdirectory: ${join(dir, 'data')}\n  delete:\n    enabled: true`,
      `http:\n  addr: ${host}${tls ? `\n  tls:\n    certificate: ${tls.cert}\n    key: ${tls.key}` : ''}`,
      auth,
    ].join('\n');
    await writeFile(join(dir, 'config.yml'), config);
    const child: ChildProcess = spawn('docker-registry', ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-4000)));
    let exited = false;
    const exitPromise = new Promise<void>((r) => child.on('exit', () => {
      exited = true;
      r();
    }));
    let ready = false;
    for (let i = 0; i < 100 && !exited; i++) {
      if (await ping(host, !!tls)) {
        ready = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    if (!ready) {
      child.kill('SIGKILL');
      await exitPromise;
      if (/address already in use/.test(stderr)) continue;
      throw new Error(`docker-registry did not start on ${host}:\n${stderr}`);
    }
    return {
      host,
      dir,
      ...(certDir && { certDir }),
      tokensIssued: () => issuer?.count() ?? 0,
      async stop() {
        if (!exited) {
          child.kill('SIGTERM');
          const t = setTimeout(() => child.kill('SIGKILL'), 5000);
          await exitPromise;
          clearTimeout(t);
        }
        if (issuer) await new Promise<void>((r) => issuer!.server.close(() => r()));
        await rm(dir, { recursive: true, force: true });
      },
    };
  }
  throw new Error('docker-registry: no free port after 5 attempts');
}

export interface Proxy {
  host: string;
  /** Requests seen, "METHOD path". */
  log: string[];
  stop(): Promise<void>;
}

/**
 * A plain-http proxy on 127.0.0.1 in front of a plain-http registry. `tamper` may rewrite a
 * response body (the whole body is buffered; test images are small) or answer itself.
 */
export async function startProxy(
  upstream: string,
  tamper: (req: IncomingMessage, status: number, body: Buffer) => Buffer | { status: number; body: Buffer } | undefined,
  before?: (req: IncomingMessage, res: ServerResponse) => boolean,
): Promise<Proxy> {
  const log: string[] = [];
  const server = createServer((req, res) => {
    log.push(`${req.method} ${req.url}`);
    if (before?.(req, res)) return;
    const up = httpRequest(`http://${upstream}${req.url}`, { method: req.method, headers: { ...req.headers, host: upstream } }, (ures) => {
      const chunks: Buffer[] = [];
      ures.on('data', (c: Buffer) => chunks.push(c));
      ures.on('end', () => {
        let body: Buffer = Buffer.concat(chunks);
        let status = ures.statusCode ?? 502;
        const t = req.method === 'HEAD' ? undefined : tamper(req, status, body);
        if (Buffer.isBuffer(t)) body = t;
        else if (t) ({ status, body } = t);
        const headers = { ...ures.headers };
        if (req.method !== 'HEAD') headers['content-length'] = String(body.length);
        delete headers['transfer-encoding'];
        // Locations name the upstream; keep clients on the proxy.
        if (typeof headers.location === 'string') headers.location = headers.location.replace(`//${upstream}`, `//${server.address() ? `127.0.0.1:${(server.address() as AddressInfo).port}` : upstream}`);
        res.writeHead(status, headers);
        res.end(req.method === 'HEAD' ? undefined : body);
      });
      ures.on('error', () => res.destroy());
    });
    up.on('error', () => {
      res.writeHead(502);
      res.end();
    });
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    log,
    stop: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

export interface HermeticOptions {
  input?: string;
  /** Added to (and overriding) the hermetic variables. */
  env?: Record<string, string>;
}

/**
 * barge runs that nothing from the machine's own auth.json or registries.conf leaks into. Call
 * setup() in beforeAll; run and ok may be destructured.
 */
export interface Hermetic {
  /** Points REGISTRY_AUTH_FILE at AUTHFILE under dir (not created) and CONTAINERS_REGISTRIES_CONF at an empty file there. */
  setup(dir: string, authFile?: string): Promise<void>;
  run(e: Env, args: string[], opts?: HermeticOptions): Promise<BargeResult>;
  /** Like run, but expects exit 0 (showing the output otherwise); returns trimmed stdout. */
  ok(e: Env, args: string[], opts?: HermeticOptions): Promise<string>;
}

export function hermetic(): Hermetic {
  let vars: Record<string, string> = {};
  const run = (e: Env, args: string[], opts: HermeticOptions = {}): Promise<BargeResult> =>
    e.barge(args, { env: { ...vars, ...opts.env }, ...(opts.input !== undefined && { input: opts.input }) });
  return {
    async setup(dir, authFile = 'auth.json') {
      const conf = join(dir, 'registries-empty.conf');
      await writeFile(conf, '');
      vars = { REGISTRY_AUTH_FILE: join(dir, authFile), CONTAINERS_REGISTRIES_CONF: conf };
    },
    run,
    async ok(e, args, opts) {
      const r = await run(e, args, opts);
      expect(r.code, describeFailure(args, r)).toBe(0);
      return r.stdout.trim();
    },
  };
}
