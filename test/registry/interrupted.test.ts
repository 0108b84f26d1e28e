// Interrupted downloads: a pull killed with SIGKILL in the middle of a slow blob leaves no image
// and no layer, and the next pull fetches only what was not yet verified; a body cut short by a
// proxy is resumed with a range request, and when it keeps breaking the error names the blob.
import { spawn } from 'node:child_process';
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BARGE_BIN, describeFailure, freshEnvs, runInImage, type Env } from '../helpers.ts';
import { importBusybox } from '../fixtures.ts';
import { commitMarkerImage, expectStoreClean, imageIds } from '../images/lib.ts';
import { hermetic, startProxy, startRegistry, type Proxy, type Registry } from './registry.ts';

let reg: Registry;
let env: Env;
let base = '';
let marker = '';
const { freshEnv, cleanupFreshEnvs } = freshEnvs();
const { setup, run, ok } = hermetic();
const REF = 'int/bb:v1';

function fetchUpstream(path: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    httpRequest(`http://${reg.host}${path}`, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks)));
      res.on('error', reject);
    }).on('error', reject).end();
  });
}

/** The blob GETs of `digest` in a proxy's log. */
function gets(p: Proxy, digest: string): number {
  return p.log.filter((l) => l === `GET /v2/${REF.split(':')[0]}/blobs/${digest}`).length;
}

/** Answers a blob GET itself: the whole blob, or only `cut` bytes of it, `delayMs` between 16 KiB pieces. */
function serveBlob(req: IncomingMessage, res: ServerResponse, opts: { cut?: number; delayMs?: number; onBytes?: (n: number) => void }): void {
  void fetchUpstream(req.url!).then((blob) => {
    res.writeHead(200, { 'content-length': String(blob.length), 'content-type': 'application/octet-stream' });
    const end = opts.cut ?? blob.length;
    let sent = 0;
    const step = (): void => {
      if (res.destroyed) return;
      if (sent >= end) {
        if (end < blob.length) res.socket?.destroy();
        else res.end();
        return;
      }
      const n = Math.min(16 * 1024, end - sent);
      res.write(blob.subarray(sent, sent + n));
      sent += n;
      opts.onBytes?.(sent);
      if (opts.delayMs) setTimeout(step, opts.delayMs);
      else setImmediate(step);
    };
    step();
  }, () => res.destroy());
}

beforeAll(async () => {
  reg = await startRegistry();
  env = await freshEnv();
  await setup(env.tmp);
  await commitMarkerImage(env, { ctr: 'int-ctr', name: 'twolayer', marker: 'interrupted', config: ['--cmd', '["cat","/marker"]'] });
  await ok(env, ['push', '-q', '--tls-verify=false', 'twolayer', `${reg.host}/${REF}`]);
  const m = JSON.parse(await ok(env, ['skopeo', 'inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/${REF}`])) as { layers: { digest: string }[] };
  [base, marker] = m.layers.map((l) => l.digest) as [string, string];
});

afterAll(async () => {
  await cleanupFreshEnvs();
  await reg?.stop();
});

describe('interrupted pulls', () => {
  it('SIGKILL in the middle of a blob leaves no image; the next pull fetches only the unfinished blob', async () => {
    let thresholdHit: () => void = () => {};
    const halfway = new Promise<void>((r) => (thresholdHit = r));
    let slow = true;
    const proxy = await startProxy(reg.host, () => undefined, (req, res) => {
      if (!slow || req.method !== 'GET' || !req.url?.endsWith(base)) return false;
      serveBlob(req, res, { delayMs: 40, onBytes: (n) => n >= 128 * 1024 && thresholdHit() });
      return true;
    });
    try {
      const e = await freshEnv();
      await importBusybox(e, 'keep-me');
      const before = await imageIds(e);
      const conf = join(e.tmp, 'empty-registries.conf');
      await writeFile(conf, '');
      const child = spawn(BARGE_BIN, ['--root', e.root, '--runroot', e.runroot, 'pull', '-q', '--tls-verify=false', `${proxy.host}/${REF}`], {
        stdio: 'ignore',
        env: { ...process.env, REGISTRY_AUTH_FILE: join(e.tmp, 'auth.json'), CONTAINERS_REGISTRIES_CONF: conf },
      });
      const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
      await Promise.race([halfway, exited.then(() => { throw new Error('the pull ended before the slow blob was half sent'); })]);
      child.kill('SIGKILL');
      await exited;

      expect(await imageIds(e)).toEqual(before);
      // Only the killed command's staging is left, which check names as such; no layer or image is broken.
      const check = await e.barge(['system', 'check']);
      const problems = check.stdout.split('\n').filter((l) => l.trim() !== '' && !/problem\(s\) found/.test(l));
      expect(problems.length).toBeGreaterThan(0);
      for (const line of problems) expect(line).toMatch(/^leftover temporary data tmp\/\d+-|^No problems found$/);

      slow = false;
      const mark = proxy.log.length;
      const r = await run(e, ['pull', '-q', '--tls-verify=false', `${proxy.host}/${REF}`]);
      expect(r.code, describeFailure(['pull'], r)).toBe(0);
      const again = { log: proxy.log.slice(mark) } as Proxy;
      // The marker layer was verified before the kill: it is not fetched again; the base is.
      expect(gets(again, marker), again.log.join('\n')).toBe(0);
      expect(gets(again, base)).toBe(1);
      expect(await runInImage(e, `${proxy.host}/${REF}`, ['cat', '/marker'])).toBe('interrupted');
      await expectStoreClean(e);
    } finally {
      await proxy.stop();
    }
  });

  it('a body cut short is resumed where it broke', async () => {
    let cuts = 0;
    const proxy = await startProxy(reg.host, () => undefined, (req, res) => {
      if (req.method !== 'GET' || !req.url?.endsWith(base) || req.headers.range || cuts > 0) return false;
      cuts++;
      serveBlob(req, res, { cut: 100 * 1024 });
      return true;
    });
    try {
      const e = await freshEnv();
      const r = await run(e, ['pull', '-q', '--tls-verify=false', `${proxy.host}/${REF}`]);
      expect(r.code, describeFailure(['pull'], r)).toBe(0);
      expect(cuts).toBe(1);
      expect(gets(proxy, base)).toBe(2);
      expect(await runInImage(e, `${proxy.host}/${REF}`, ['cat', '/marker'])).toBe('interrupted');
      await expectStoreClean(e);
    } finally {
      await proxy.stop();
    }
  });

  it('a body that keeps breaking fails naming the blob, and leaves the store as it was', async () => {
    const proxy = await startProxy(reg.host, () => undefined, (req, res) => {
      if (req.method !== 'GET' || !req.url?.endsWith(base)) return false;
      if (req.headers.range) {
        res.socket?.destroy();
        return true;
      }
      serveBlob(req, res, { cut: 64 * 1024 });
      return true;
    });
    try {
      const e = await freshEnv();
      const r = await run(e, ['pull', '-q', '--tls-verify=false', '--retry-times', '2', `${proxy.host}/${REF}`]);
      expect(r.code).toBe(125);
      expect(r.stderr).toContain(`fetching blob ${base}`);
      expect(r.stderr).toMatch(/after 65536 of \d+ bytes/);
      expect(gets(proxy, base)).toBeGreaterThanOrEqual(2);
      expect(await imageIds(e)).toEqual([]);
      await expectStoreClean(e);
    } finally {
      await proxy.stop();
    }
  });
});
