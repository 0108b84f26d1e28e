// Helpers shared by the image suites: hand-made archives (tar-stream) and throwaway
// podman/skopeo stores for interop checks.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'vitest';
import { describeFailure, makeTar, type BargeResult, type Env, type TarEntry } from '../helpers.ts';
import { importBusybox } from '../fixtures.ts';

const execFileP = promisify(execFile);

export function sha256Hex(b: Buffer | string): string {
  return createHash('sha256').update(b).digest('hex');
}

/** A minimal valid image config for the given layer tars. */
export function imageConfig(layers: readonly Buffer[], extra: Record<string, unknown> = {}): Buffer {
  return Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      created: '2024-01-01T00:00:00Z',
      config: { Cmd: ['/bin/sh'] },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => `sha256:${sha256Hex(l)}`) },
      history: layers.map(() => ({ created: '2024-01-01T00:00:00Z', created_by: 'test' })),
      ...extra,
    }),
  );
}

export interface DockerArchiveSpec {
  layers: Buffer[];
  repoTags?: string[];
  /** Replaces the generated config bytes (diff_ids then come from the caller). */
  config?: Buffer;
  /** Replaces the generated manifest.json bytes verbatim. */
  manifestJson?: Buffer | string;
}

/** A docker-archive the way `docker save` lays it out: config json, layer tars, manifest.json. */
export async function makeDockerArchive(spec: DockerArchiveSpec): Promise<Buffer> {
  const config = spec.config ?? imageConfig(spec.layers);
  const configName = `${sha256Hex(config)}.json`;
  const layerNames = spec.layers.map((l) => `${sha256Hex(l)}/layer.tar`);
  const manifest = spec.manifestJson ?? JSON.stringify([{ Config: configName, RepoTags: spec.repoTags ?? ['localhost/crafted:latest'], Layers: layerNames }]);
  const entries: TarEntry[] = [{ name: configName, data: config }];
  spec.layers.forEach((l, i) => {
    entries.push({ name: `${sha256Hex(l)}/`, type: 'directory' }, { name: layerNames[i]!, data: l });
  });
  entries.push({ name: 'manifest.json', data: manifest });
  return makeTar(entries);
}

/** A layer with one harmless file, so an image made from it is small but real. */
export function harmlessLayer(marker = 'ok'): Promise<Buffer> {
  return makeTar([
    { name: 'etc/', type: 'directory' },
    { name: 'etc/marker', data: `${marker}\n` },
  ]);
}

/** Asserts `system check` finds nothing wrong, with the store's own words in the failure. */
export async function expectStoreClean(env: Env): Promise<void> {
  const r = await env.barge(['system', 'check']);
  expect(r.code, describeFailure(['system', 'check'], r)).toBe(0);
  expect(r.stdout).toContain('No problems found');
}

/** Full image ids in the store, sorted. */
export async function imageIds(env: Env): Promise<string[]> {
  const out = await env.bargeOk(['images', '-q', '--no-trunc']);
  return out.split('\n').map((l) => l.trim().replace(/^sha256:/, '')).filter((l) => l !== '').sort();
}

export function expectFailure(args: readonly string[], r: BargeResult): void {
  expect(r.code, describeFailure(args, r)).not.toBe(0);
  expect(r.stderr, describeFailure(args, r)).toContain('Error:');
}

export interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a host tool without throwing, so assertions can show its output. */
export async function runTool(cmd: string, args: readonly string[], timeoutMs = 90_000): Promise<ToolResult> {
  try {
    const { stdout, stderr } = await execFileP(cmd, [...args], { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: unknown; stdout?: string; stderr?: string; message: string };
    return { code: typeof err.code === 'number' ? err.code : 1, stdout: err.stdout ?? '', stderr: err.stderr ?? err.message };
  }
}

export function describeTool(cmd: string, args: readonly string[], r: ToolResult): string {
  return `${cmd} ${args.join(' ')} exited ${r.code}\n--- stderr ---\n${r.stderr.trimEnd()}\n--- stdout ---\n${r.stdout.trimEnd()}`;
}

/**
 * Podman confined to a store under `dir`: the system store is never touched. runc and the
 * rlimits come from /etc/containers/containers.conf on the test machines.
 */
export function podmanIn(dir: string): (args: readonly string[]) => Promise<ToolResult> {
  const base = ['--root', join(dir, 'proot'), '--runroot', join(dir, 'prun'), '--storage-driver', 'overlay', '--runtime', 'runc'];
  return (args) => runTool('podman', [...base, ...args]);
}

export async function readJson<T>(file: string): Promise<T> {
  return JSON.parse(await readFile(file, 'utf8')) as T;
}

/**
 * Runs barge in env with files as standard input and/or output (archives are binary, `input`
 * is a string). `stdout` in the result is empty when it went to a file.
 */
export async function bargeWithFiles(env: Env, args: readonly string[], files: { stdin?: string; stdout?: string }): Promise<BargeResult> {
  const inFh = files.stdin === undefined ? undefined : await open(files.stdin, 'r');
  const outFh = files.stdout === undefined ? undefined : await open(files.stdout, 'w');
  try {
    return await env.barge([...args], { stdinFd: inFh?.fd, stdoutFd: outFh?.fd, timeoutMs: 90_000 });
  } finally {
    await inFh?.close();
    await outFh?.close();
  }
}

/**
 * Imports busybox into env and commits it as NAME with a /marker file holding MARKER and the
 * given `config` flags, through a working container called CTR; returns the image id.
 */
export async function commitMarkerImage(env: Env, spec: { ctr: string; name: string; marker: string; config: string[] }): Promise<string> {
  await importBusybox(env);
  const ctr = await env.bargeOk(['from', '--name', spec.ctr, 'busybox']);
  await writeFile(join(env.tmp, 'marker'), spec.marker);
  await env.bargeOk(['copy', ctr, join(env.tmp, 'marker'), '/marker']);
  await env.bargeOk(['config', ...spec.config, ctr]);
  return (await env.bargeOk(['commit', '-q', '--rm', ctr, spec.name])).replace(/^sha256:/, '');
}
