// Test images made locally: there is no registry to pull from on the test machines.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT, makeEnv, type Env } from './helpers.ts';

const execFileP = promisify(execFile);

export const FIXTURE_DIR = join(tmpdir(), 'barge-fixtures');
const MAKE_ROOTFS = join(REPO_ROOT, 'scripts', 'make-busybox-rootfs.sh');

let busyboxTar: Promise<string> | undefined;

/**
 * Path of the busybox rootfs tar (see scripts/make-busybox-rootfs.sh). Built once and cached
 * across runs, keyed by the busybox version and the script's content so either changing
 * rebuilds it. Concurrent test processes may build it at once; the script renames into place,
 * so each sees a whole file.
 */
export function busyboxRootfsTar(): Promise<string> {
  busyboxTar ??= buildBusyboxTar().catch((e: unknown) => {
    busyboxTar = undefined;
    throw e;
  });
  return busyboxTar;
}

async function buildBusyboxTar(): Promise<string> {
  const { stdout } = await execFileP('busybox', [], { encoding: 'utf8' });
  // "BusyBox v1.35.0 (Debian 1:1.35.0-4+deb12u1+b1) multi-call binary."
  const version = /BusyBox (v\S+(?: \([^)]*\))?)/.exec(stdout)?.[1] ?? 'unknown';
  const script = await readFile(MAKE_ROOTFS);
  const key = createHash('sha256').update(version).update('\0').update(script).digest('hex').slice(0, 16);
  const safeVersion = version.replace(/[^A-Za-z0-9.+-]+/g, '_').replace(/^_+|_+$/g, '');
  const out = join(FIXTURE_DIR, `busybox-${safeVersion}-${key}.tar`);
  if (existsSync(out)) return out;
  await mkdir(FIXTURE_DIR, { recursive: true });
  await execFileP('bash', [MAKE_ROOTFS, out]);
  return out;
}

/** Imports the busybox rootfs as NAME into env's store and returns the image id barge prints. */
export async function importBusybox(env: Env, name = 'busybox'): Promise<string> {
  const tar = await busyboxRootfsTar();
  const out = await env.bargeOk(['import', tar, name]);
  const lines = out.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const id = lines.at(-1);
  if (!id) throw new Error(`barge import ${tar} ${name} printed no image id`);
  return id;
}

/** A private store with localhost/busybox:latest imported, and that image's id (no "sha256:"). */
export async function busyboxEnv(): Promise<{ env: Env; imageId: string }> {
  const env = await makeEnv();
  const imageId = (await importBusybox(env)).replace(/^sha256:/, '');
  return { env, imageId };
}
