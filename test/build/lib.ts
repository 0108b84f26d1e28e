// Shared helpers for the `barge build` black-box tests.
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'vitest';
import { describeFailure, readContainerFiles, REPO_ROOT, runInImage, type BargeResult, type Env } from '../helpers.ts';

/**
 * What Buildah (imagebuilder) and barge put into a stage's Env when its base image sets no PATH
 * (the busybox test image sets none).
 */
export const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

let gccTar: Promise<string> | undefined;

/**
 * The Debian bookworm base that containerfiles/gcc-hello builds on: debootstrap minbase with gcc
 * and libc6-dev. The bench's script makes it the first time (about 40 s, ~90 MB from
 * deb.debian.org) and caches the tarball in /var/cache/barge-bench ($BENCH_CACHE), so later runs
 * and other test files only import it. Building gcc in from apt inside a RUN step instead would
 * download on every build and need the network in the container.
 */
export async function importGccBase(env: Env, name = 'debian-gcc'): Promise<void> {
  gccTar ??= promisify(execFile)('bash', [join(REPO_ROOT, 'scripts', 'bench', 'debootstrap-base.sh')], {
    env: { ...process.env, DEBOOTSTRAP_INCLUDE: 'gcc,libc6-dev' },
    encoding: 'utf8',
  }).then((r) => r.stdout.trim().split('\n').at(-1)!);
  await env.bargeOk(['import', await gccTar, name]);
}

let ctxCounter = 0;

/** A fresh build context under env.tmp holding `files` (path → content). */
export async function context(env: Env, files: Record<string, string>): Promise<string> {
  const dir = join(env.tmp, `ctx-${++ctxCounter}`);
  await mkdir(dir, { recursive: true });
  for (const [p, content] of Object.entries(files)) {
    await mkdir(dirname(join(dir, p)), { recursive: true });
    await writeFile(join(dir, p), content);
  }
  return dir;
}

/** `barge build ARGS... CTX`; throws with the output unless it exits 0. Returns the result. */
export async function buildOk(env: Env, ctx: string, args: string[] = [], extraEnv?: Record<string, string>): Promise<BargeResult & { id: string }> {
  const r = await env.barge(['build', ...args, ctx], extraEnv ? { env: extraEnv } : {});
  if (r.code !== 0) throw new Error(describeFailure(['build', ...args, ctx], r));
  const id = r.stdout.trim().split('\n').at(-1)!;
  expect(id).toMatch(/^[0-9a-f]{64}$/);
  return { ...r, id };
}

export async function imageConfig(env: Env, image: string): Promise<Record<string, unknown>> {
  return JSON.parse(await env.bargeOk(['inspect', '--type', 'image', '--format', '{{json .OCIv1.Config}}', image])) as Record<string, unknown>;
}

export async function imageJSON(env: Env, image: string): Promise<{ OCIv1: { history: { created_by?: string; empty_layer?: boolean }[]; rootfs: { diff_ids: string[] } }; Docker: { config: Record<string, unknown> } }> {
  return JSON.parse(await env.bargeOk(['inspect', '--type', 'image', image])) as never;
}

/** Reads files of an image through a throwaway working container's mount. */
export async function readFiles(env: Env, image: string, paths: string[]): Promise<(string | null)[]> {
  const ctr = await env.bargeOk(['from', image]);
  try {
    return await readContainerFiles(env, ctr, paths);
  } finally {
    await env.bargeOk(['rm', ctr]);
  }
}

/** Output of a command run in a throwaway working container of the image. */
export function runIn(env: Env, image: string, script: string): Promise<string> {
  return runInImage(env, image, ['sh', '-c', script]);
}

export async function noContainers(env: Env): Promise<void> {
  expect(await env.bargeOk(['containers', '-q'])).toBe('');
}

export async function imageCount(env: Env): Promise<number> {
  const out = await env.bargeOk(['images', '-q', '-a']);
  return out ? out.split('\n').length : 0;
}
