// Moving a process into a cgroup (a write to cgroup.procs) takes the kernel's one global
// cgroup_threadgroup_rwsem for writing. The first writer after a quiet spell waits for an RCU
// grace period before it gets it (rcu_sync); writers that follow within about one more grace
// period do not. On these machines that wait was the slowest system call of a container's start:
// crun's first cgroup.procs write took 10-19 ms of a ~100 ms `run --rm` (strace -T), and 15-40 µs
// when another write had just gone before it.
//
// So barge makes such a write itself, on a libuv thread, just before it starts the runtime: it
// moves itself into the cgroup it is already in (which changes nothing), and the grace period
// passes while the runtime loads instead of after. Where barge may not write there (rootless on
// cgroup v1, a read-only /sys/fs/cgroup) the write fails at once and nothing is lost.
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';

let file: string | null | undefined;
let inFlight = false;

/**
 * The cgroup.procs of the cgroup a /proc/PID/cgroup text names: the unified hierarchy's (cgroup v2,
 * or v1's "unified" beside it), else the named systemd hierarchy's.
 */
export function ownProcsFile(lines: string): string | undefined {
  const v2 = /^0::(\/.*)$/m.exec(lines)?.[1];
  if (v2 !== undefined) {
    // Hybrid hosts mount the unified hierarchy at /sys/fs/cgroup/unified, pure v2 ones at the top.
    const hybrid = /^\d+:[^:]+:/m.test(lines);
    return `/sys/fs/cgroup${hybrid ? '/unified' : ''}${v2 === '/' ? '' : v2}/cgroup.procs`;
  }
  // v1 only: any hierarchy takes the same global lock; the named systemd one is nearly always there.
  const v1 = /^\d+:name=systemd:(\/.*)$/m.exec(lines)?.[1];
  return v1 === undefined ? undefined : `/sys/fs/cgroup/systemd${v1 === '/' ? '' : v1}/cgroup.procs`;
}

/**
 * Starts the write in the background unless one is under way; never fails. Call it as early as the
 * runtime is sure to start, and again right before starting it: when the first write has long
 * finished, the second (fast) one holds the kernel's fast path open for another grace period.
 */
export function warmCgroupAttach(): void {
  if (inFlight) return;
  if (file === undefined) {
    try {
      file = ownProcsFile(readFileSync('/proc/self/cgroup', 'utf8')) ?? null;
    } catch {
      file = null;
    }
  }
  if (file === null) return;
  inFlight = true;
  writeFile(file, String(process.pid)).then(
    () => { inFlight = false; },
    // Not allowed here: no later write will be either.
    () => { file = null; },
  );
}
