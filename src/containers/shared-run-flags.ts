// Values of the run-time flags that Podman's run/create and Buildah's from/build/run share, parsed
// and checked in one place so that both paths accept and refuse the same things with the same
// messages (exit 125, before anything is made).

import { normalizeCapability, normalizeRlimitType } from '../runtime/spec.ts';
import { ContainerError } from './record.ts';

export interface Ulimit {
  type: string;
  soft: number;
  hard: number;
}

/** Podman's memory sizes (go-units' RAMInBytes): 512m, 1g, 100k, 1024 (bytes), 1.5g, 64MiB, 64mb. */
export function parseMemory(v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgtp]?)i?b?$/i.exec(v.trim());
  if (!m) throw new ContainerError(`invalid memory size "${v}"`);
  const mult: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };
  return Math.round(Number(m[1]) * mult[m[2]!.toLowerCase()]!);
}

/** --shm-size, with the message Podman and Buildah give for a size they cannot read. */
export function parseShmSize(v: string): number {
  try {
    return parseMemory(v);
  } catch {
    throw new ContainerError(`unable to translate --shm-size: invalid size: '${v}'`);
  }
}

/** TYPE=SOFT[:HARD]; -1 is unlimited. The type must be one the kernel has (nofile, RLIMIT_NPROC, …). */
export function parseUlimit(v: string): Ulimit {
  const m = /^([a-z_]+)=(-?\d+)(?::(-?\d+))?$/i.exec(v);
  if (!m) throw new ContainerError(`invalid ulimit "${v}": expected TYPE=SOFT[:HARD]`);
  try {
    normalizeRlimitType(m[1]!);
  } catch {
    throw new ContainerError(`invalid ulimit type "${m[1]}" in "${v}"`);
  }
  const soft = Number(m[2]);
  const hard = m[3] === undefined ? soft : Number(m[3]);
  if (soft >= 0 && hard >= 0 && soft > hard) throw new ContainerError(`invalid ulimit "${v}": the soft limit is above the hard limit`);
  return { type: m[1]!, soft: soft < 0 ? Infinity : soft, hard: hard < 0 ? Infinity : hard };
}

/** One limit per type, the last one given (defaults, such as containers.conf's, come first). */
export function lastOfEachType<T extends { type: string }>(limits: readonly T[]): T[] {
  const byType = new Map<string, T>();
  for (const l of limits) byType.set(l.type.toLowerCase().replace(/^rlimit_/, ''), l);
  return [...byType.values()];
}

/** What the --security-opt values barge implements ask for; any other value is refused by name. */
export function parseSecurityOpts(values: readonly string[]): { noNewPrivileges: boolean; seccompUnconfined: boolean } {
  for (const s of values) {
    if (!/^(no-new-privileges(=true|=false)?|seccomp=unconfined|label=disable|apparmor=unconfined)$/.test(s)) {
      throw new ContainerError(`unsupported --security-opt "${s}"`);
    }
  }
  return {
    noNewPrivileges: values.some((s) => s === 'no-new-privileges' || s === 'no-new-privileges=true'),
    seccompUnconfined: values.includes('seccomp=unconfined'),
  };
}

/** --cap-add/--cap-drop names, refused with Podman's message when the kernel has no such capability. */
export function checkCapabilities(caps: readonly string[]): void {
  for (const cap of caps) {
    try {
      normalizeCapability(cap);
    } catch {
      const up = cap.toUpperCase();
      throw new ContainerError(`"${up.startsWith('CAP_') ? up : `CAP_${up}`}": unknown capability`);
    }
  }
}
