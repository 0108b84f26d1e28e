// The network namespace of a detached container without a network (--network none): made by
// barge and kept as a bind mount under the container's run directory, rather than made by the
// runtime. CRIU treats a namespace the runtime joined by path as external, so a checkpoint does
// not dump the namespace, and a restore joins a fresh one. (Nor does it lock the network: see
// skipNetworkLockEnv in runtime/criu.ts.) Podman keeps its containers' network namespaces the
// same way.
//
// Only as real root: the namespace is kept for CRIU, which needs root anyway; rootless, the runtime
// makes the container's.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { RuntimeSpec } from '../runtime/spec.ts';
import { exec } from '../sys/exec.ts';
import { mountPoints, unmount } from '../sys/mount.ts';
import { inBargeUserns } from '../sys/userns.ts';

/** Marks a spec whose network namespace barge made: a restore may give it a fresh one. */
const OWN_NETNS_ANNOTATION = 'io.barge.netns';

/** Whether the spec's network namespace is one barge made (useOwnNetns). */
export function hasOwnNetns(spec: RuntimeSpec): boolean {
  return spec.annotations?.[OWN_NETNS_ANNOTATION] === 'true';
}

/** Where the namespace makeOwnNetns made is kept (a bind mount). */
export const ownNetnsPath = (runDir: string): string => join(runDir, 'netns');

/**
 * Makes the container's namespace, with only the loopback interface, up, as a runtime would set
 * it up (or finds the one already there). False where barge cannot make one: the runtime then
 * makes it. A child process of its own, so callers start it beside the rootfs mount.
 */
export async function makeOwnNetns(runDir: string): Promise<boolean> {
  if (process.getuid?.() !== 0 || inBargeUserns()) return false;
  const file = ownNetnsPath(runDir);
  if (mountPoints().has(file)) return true;
  // Synchronous, so that unshare starts before the caller's next child process (the rootfs mount).
  mkdirSync(runDir, { recursive: true, mode: 0o700 });
  writeFileSync(file, '');
  try {
    await exec('unshare', [`--net=${file}`, 'ip', 'link', 'set', 'lo', 'up']);
    return true;
  } catch {
    // No iproute2 here (or no unshare).
    await releaseOwnNetns(runDir).catch(() => undefined);
    return false;
  }
}

/**
 * Gives a spec that asks the runtime for a new network namespace (or had one of barge's) the
 * namespace makeOwnNetns made; without one (made false), such a spec asks the runtime for a new
 * one. Whether the spec took barge's namespace: if not, the caller releases it.
 */
export function useOwnNetns(spec: RuntimeSpec, runDir: string, made: boolean): boolean {
  const ns = spec.linux?.namespaces.find((n) => n.type === 'network');
  if (!ns || (ns.path && !hasOwnNetns(spec))) return false;
  if (!made) {
    delete ns.path;
    return false;
  }
  ns.path = ownNetnsPath(runDir);
  spec.annotations = { ...spec.annotations, [OWN_NETNS_ANNOTATION]: 'true' };
  return true;
}

/** Releases the namespace useOwnNetns made, if any (the processes in it are gone). */
export async function releaseOwnNetns(runDir: string): Promise<void> {
  const file = ownNetnsPath(runDir);
  if (!existsSync(file)) return;
  if (mountPoints().has(file)) await unmount(file);
  await rm(file, { force: true });
}
