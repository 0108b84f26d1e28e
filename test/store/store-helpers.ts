// Shared by the store tests: what "clean" means for a command's outcome and for the store on disk.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'vitest';
import { BARGE_BIN, REPO_ROOT, describeFailure, type BargeResult, type Env } from '../helpers.ts';

const execFileP = promisify(execFile);

/** Signs that barge died of something other than a handled error. */
const CRASH_SIGNS = [
  /^\s+at .+:\d+:\d+\)?$/m, // a JavaScript stack frame
  /SQLITE_BUSY|database is locked/i,
  /\b(TypeError|ReferenceError|RangeError|SyntaxError)\b/,
  /Unhandled|uncaught/i,
  /node:internal/,
  /\[test harness\].*killed after/,
];

/**
 * A command under contention may lose, but only the way a user can read: exit 0, or a
 * non-zero exit with Podman's one-line "Error: ..." and nothing that looks like a crash.
 */
export function expectSuccessOrCleanError(args: readonly string[], r: BargeResult, allowedCodes: readonly number[] = [125]): void {
  const why = describeFailure(args, r);
  for (const sign of CRASH_SIGNS) expect(r.stderr, why).not.toMatch(sign);
  if (r.code === 0) return;
  expect(allowedCodes, why).toContain(r.code);
  expect(r.stderr, why).toMatch(/^Error: \S/m);
}

/** `system check` must pass with Podman's wording. */
export async function expectStoreClean(env: Env): Promise<void> {
  const r = await env.barge(['system', 'check']);
  expect(r.code, describeFailure(['system', 'check'], r)).toBe(0);
  expect(r.stdout.trim(), describeFailure(['system', 'check'], r)).toBe('No problems found');
}

/** Regular files, symlinks and directories below dir (not dir itself); 0 when dir is missing. */
export async function countEntries(dir: string): Promise<number> {
  if (!existsSync(dir)) return 0;
  let n = 0;
  for (const e of await readdir(dir, { withFileTypes: true })) {
    n++;
    if (e.isDirectory()) n += await countEntries(join(dir, e.name));
  }
  return n;
}

export async function listDir(dir: string): Promise<string[]> {
  return existsSync(dir) ? (await readdir(dir)).sort() : [];
}

/**
 * A rootfs-like tar of `files` files of random (incompressible) content spread over
 * directories, so that importing it takes long enough to be interrupted.
 */
export async function makeRandomRootfsTar(tarPath: string, scratch: string, files: number, fileBytes: number): Promise<void> {
  const dir = join(scratch, `rootfs-${randomBytes(4).toString('hex')}`);
  for (const d of ['etc', 'bin', 'tmp']) await mkdir(join(dir, d), { recursive: true });
  await writeFile(join(dir, 'etc', 'os-release'), 'NAME=random\n');
  const perDir = 100;
  for (let i = 0; i < files; i++) {
    const sub = join(dir, 'usr', 'share', `d${Math.floor(i / perDir)}`);
    if (i % perDir === 0) await mkdir(sub, { recursive: true });
    await writeFile(join(sub, `f${i}`), randomBytes(fileBytes));
  }
  await execFileP('tar', ['-cf', tarPath, '-C', dir, '.']);
  await rm(dir, { recursive: true, force: true });
}

export interface Spawned {
  child: ChildProcess;
  pid: number;
  /** When barge itself has exited (its runtime may still hold the output pipes open). */
  exited: Promise<number>;
  /** When barge and everything sharing its output have finished. */
  done: Promise<BargeResult>;
}

/** Starts barge on env's store without waiting, so the test can kill it mid-way. */
export function spawnBarge(env: Env, args: readonly string[]): Spawned {
  const child = spawn(BARGE_BIN, ['--root', env.root, '--runroot', env.runroot, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Own process group, so cleanup can also reach the runtime and container barge started.
    detached: true,
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout!.on('data', (b: Buffer) => out.push(b));
  child.stderr!.on('data', (b: Buffer) => err.push(b));
  const done = new Promise<BargeResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      resolve({ code: code ?? (signal === 'SIGKILL' ? 137 : 128), stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    });
  });
  const exited = new Promise<number>((resolve) => {
    child.on('exit', (code, signal) => resolve(code ?? (signal === 'SIGKILL' ? 137 : 128)));
  });
  if (child.pid === undefined) throw new Error(`could not start ${BARGE_BIN}`);
  // bin/barge execs node, so this pid is the barge process itself (it names its staging dirs after it).
  return { child, pid: child.pid, exited, done };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls until `probe` is true; fails with `what` if the process ends or time runs out first. */
export async function waitFor(what: string, probe: () => boolean | Promise<boolean>, proc?: Spawned, timeoutMs = 30_000): Promise<void> {
  let exited: BargeResult | undefined;
  void proc?.done.then((r) => {
    exited = r;
  });
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (exited) throw new Error(`process ended before ${what}: exit ${exited.code}\n${exited.stderr}${exited.stdout}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Staging entries of a given barge process under ROOT/tmp (named "<pid>-<start>-<rand>"). */
export async function stagingOf(env: Env, pid: number): Promise<string[]> {
  return (await listDir(join(env.root, 'tmp'))).filter((d) => d.startsWith(`${pid}-`));
}

/**
 * Runs a barge command, waits until it is writing into the store's staging area, lets it
 * work ~300 ms more and kills it with SIGKILL: the crash the store promises to survive.
 */
export async function killWhileStaging(env: Env, args: readonly string[], delayMs = 300): Promise<void> {
  const p = spawnBarge(env, args);
  try {
    await waitFor(`barge ${args.join(' ')} to start staging`, async () => (await stagingOf(env, p.pid)).length > 0, p);
    await sleep(delayMs);
    expect(p.child.exitCode, `barge ${args.join(' ')} finished before it could be killed`).toBeNull();
    process.kill(p.pid, 'SIGKILL');
    expect(await p.exited, `barge ${args.join(' ')} was not killed mid-way`).toBe(137);
  } finally {
    killGroup(p.pid);
  }
}

/** Kills a spawned process group, ignoring one already gone. */
export function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/**
 * After `system check` found problems: it exits non-zero and names each one; --repair fixes
 * them and a second check is clean.
 */
export async function expectCheckFindsAndRepairs(env: Env, problem: RegExp): Promise<string> {
  const r = await env.barge(['system', 'check']);
  const why = describeFailure(['system', 'check'], r);
  expect(r.code, why).not.toBe(0);
  expect(r.stdout, why).toMatch(problem);
  expect(r.stdout, why).not.toContain('No problems found');
  for (const sign of CRASH_SIGNS) expect(r.stderr, why).not.toMatch(sign);
  const fix = await env.barge(['system', 'check', '--repair']);
  expect(fix.code, describeFailure(['system', 'check', '--repair'], fix)).toBe(0);
  await expectStoreClean(env);
  return r.stdout;
}

/** Image names as `images` lists them, REPOSITORY:TAG. */
export async function imageNames(env: Env): Promise<string[]> {
  const out = await env.bargeOk(['images', '--format', '{{.Repository}}:{{.Tag}}']);
  return out.split('\n').map((l) => l.trim()).filter((l) => l !== '' && l !== '<none>:<none>').sort();
}

export async function containerNames(env: Env): Promise<string[]> {
  const out = await env.bargeOk(['containers', '--format', '{{.ContainerName}}']);
  return out.split('\n').map((l) => l.trim()).filter((l) => l !== '').sort();
}

/**
 * Stops and removes runtime containers that a killed barge left behind (crun or runc, whichever
 * started them), so no test leaves a process running.
 */
export async function removeRuntimeContainers(env: Env): Promise<void> {
  const stateRoot = join(env.runroot, 'runtime');
  for (const id of await listDir(stateRoot)) {
    for (const rt of ['crun', 'runc']) {
      await execFileP(rt, ['--root', stateRoot, 'delete', '--force', id]).catch(() => undefined);
    }
  }
}
