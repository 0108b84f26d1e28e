// Helpers shared by the working-container suites (test/primitives/*.test.ts).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { expect } from 'vitest';
import { describeFailure, readTar, type BargeResult, type Env } from '../helpers.ts';

/** Asserts the exit code, showing the command's output when it differs. */
export function expectCode(r: BargeResult, code: number, args: readonly string[] = []): void {
  expect(r.code, describeFailure(args, r)).toBe(code);
}

/** Runs barge, expects a non-zero exit of exactly `code` and an `Error:` line, and returns stderr. */
export async function expectError(env: Env, args: string[], code = 125): Promise<string> {
  const r = await env.barge(args);
  expectCode(r, code, args);
  expect(r.stderr).toMatch(/^Error: /m);
  return r.stderr;
}

/** `barge run CTR -- sh -c SCRIPT`, which must succeed; returns trimmed stdout. */
export function sh(env: Env, ctr: string, script: string, runFlags: string[] = []): Promise<string> {
  return env.bargeOk(['run', ...runFlags, ctr, '--', 'sh', '-c', script]);
}

/** The effective capability mask in a /proc/PID/status text. */
export function capEff(status: string): bigint {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
  if (!m) throw new Error(`no CapEff in:\n${status}`);
  return BigInt(`0x${m[1]}`);
}

/** A new working container from `image`; returns its name. */
export function from(env: Env, image = 'busybox', extra: string[] = []): Promise<string> {
  return env.bargeOk(['from', ...extra, image]);
}

/** Host path of the container's merged root filesystem (mounts it). */
export function mountPath(env: Env, ctr: string): Promise<string> {
  return env.bargeOk(['mount', ctr]);
}

/** Names of the entries of a tar (gzip or plain), in archive order, without "./" or a trailing "/". */
export async function tarNames(bytes: Buffer): Promise<string[]> {
  const raw = bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes) : bytes;
  return (await readTar(raw)).map((e) => normaliseName(e.header.name));
}

export function normaliseName(name: string): string {
  return name.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
}

interface OciManifest {
  mediaType?: string;
  config: { mediaType: string; digest: string };
  layers: { mediaType: string; digest: string }[];
  annotations?: Record<string, string>;
}

function blobPath(dir: string, digest: string): string {
  const [alg, hex] = digest.split(':');
  return join(dir, 'blobs', alg!, hex!);
}

/** The single image manifest of an OCI layout directory. */
export async function ociManifest(dir: string): Promise<OciManifest> {
  const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  expect(index.manifests.length).toBe(1);
  return JSON.parse(await readFile(blobPath(dir, index.manifests[0]!.digest), 'utf8')) as OciManifest;
}

/** Entry names of the top (last) layer of the image in an OCI layout directory. */
export async function ociTopLayerNames(dir: string): Promise<string[]> {
  const m = await ociManifest(dir);
  const top = m.layers.at(-1);
  if (!top) throw new Error(`${dir}: image has no layers`);
  return tarNames(await readFile(blobPath(dir, top.digest)));
}

/** Pushes a local image to oci:DIR with barge and returns its top layer's entry names. */
export async function bargeTopLayer(env: Env, image: string, dir: string): Promise<string[]> {
  await env.bargeOk(['push', image, `oci:${dir}`]);
  return ociTopLayerNames(dir);
}

/** A throwaway HTTP server on 127.0.0.1 serving fixed paths. */
export async function serve(
  files: Record<string, { body: string; headers?: Record<string, string> }>,
): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const f = files[req.url ?? ''];
    if (!f) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', ...f.headers }).end(f.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
