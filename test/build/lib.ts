// Shared helpers for the `barge build` black-box tests.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { expect } from 'vitest';
import { describeFailure, runInImage, type BargeResult, type Env } from '../helpers.ts';

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
    const mp = await env.bargeOk(['mount', ctr]);
    return await Promise.all(paths.map((p) => readFile(join(mp, p), 'utf8').catch(() => null)));
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
