// Helpers for the Podman-style container suites.
import { readdirSync, readFileSync, statfsSync } from 'node:fs';
import { createServer } from 'node:net';
import { afterAll, beforeAll, expect } from 'vitest';
import { describeFailure, ROOTLESS, type BargeResult, type Env } from '../helpers.ts';
import { busyboxEnv } from '../fixtures.ts';
import { expectStoreClean } from '../store/store-helpers.ts';

/**
 * Rootless on a cgroup v1 (or hybrid) host: the runtime makes no cgroup for a container, so there
 * is no freezer for pause, no pids or device rules, and Podman refuses or ignores what needs them.
 */
export const NO_CGROUPS = ROOTLESS && statfsSync('/sys/fs/cgroup').type !== 0x63677270;

/** Podman's refusal of pause rootless on cgroup v1. */
export const NO_FREEZER = 'can not pause containers on rootless containers with cgroup V1: this container does not have a cgroup';

/**
 * A busybox store shared by one test file: set up before its tests, and afterwards every
 * container and conmon removed and the store deleted. Tests read it through the getter.
 */
export function containerSuite(): () => Env {
  let env: Env | undefined;
  beforeAll(async () => {
    env = (await busyboxEnv()).env;
  });
  afterAll(async () => {
    if (!env) return;
    await removeAll(env);
    await env.cleanup();
  });
  return () => env!;
}

/**
 * containerSuite for suites that make pods: afterwards every pod goes (with its containers and
 * conmons), then `cleanup` (further removals of the suite's own), and the store must be clean.
 */
export function podSuite(cleanup: (env: Env) => Promise<unknown> = async () => undefined): () => Env {
  const suite = containerSuite();
  afterAll(async () => {
    const env = suite();
    if (!env) return;
    expect((await env.barge(['pod', 'rm', '-fa', '-t', '0'])).code).toBe(0);
    await cleanup(env);
    await expectStoreClean(env);
  });
  return suite;
}

export function expectCode(r: BargeResult, code: number, args: readonly string[] = []): void {
  expect(r.code, describeFailure(args, r)).toBe(code);
}

/** Polls `check` every 50 ms until it returns true; fails after timeoutMs. */
export async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Pids of conmon processes whose command line mentions this env's runroot. */
export function conmonsOf(env: Env): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8');
      if (cmd.startsWith('/usr/bin/conmon\0') || cmd.split('\0')[0]?.endsWith('/conmon')) {
        if (cmd.includes(env.runroot)) out.push(Number(d));
      }
    } catch {
      // gone
    }
  }
  return out;
}

/** Removes every container of the env (force) and checks no conmon of it is left. */
export async function removeAll(env: Env): Promise<void> {
  const ids = (await env.barge(['ps', '-aq', '--no-trunc'])).stdout.split('\n').filter((l) => l.trim() !== '');
  if (ids.length) await env.barge(['rm', '-f', ...ids]);
  await until('conmon processes to exit', () => conmonsOf(env).length === 0, 20_000).catch(() => {
    for (const pid of conmonsOf(env)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  });
}

/** A port free on the host now (the kernel's pick, released again). */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const addr = srv.address();
  await new Promise((r) => srv.close(r));
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  return addr.port;
}
