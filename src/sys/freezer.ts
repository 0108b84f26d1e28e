// Freezing a process's cgroup directly through cgroupfs. CRIU freezes a container's cgroup
// itself before a dump, but checks whether the freeze has completed only every 100 ms, so the
// first check nearly always misses and a checkpoint waits a tenth of a second for nothing; a
// cgroup found frozen already is dumped at once (and left frozen, as CRIU found it).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const CGROUPFS = '/sys/fs/cgroup';

interface Freezer {
  /** The file to write and the values that freeze and thaw. */
  control: string;
  freeze: string;
  thaw: string;
  frozen: () => boolean;
}

/**
 * The freezer of the cgroup `pid` is in (cgroup v1's freezer controller, or v2's cgroup.freeze),
 * if that cgroup is the container's own: its path names the container's id, as the runtime's
 * default cgroup does. A process left in a shared cgroup (a rootless container without cgroup
 * delegation) is never frozen this way: barge could freeze itself and others.
 */
function freezerOf(pid: number, id: string): Freezer | null {
  let lines: string[];
  try {
    lines = readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n');
  } catch {
    return null;
  }
  const own = (path: string): boolean => path.split('/').some((seg) => seg.includes(id));
  const v1 = lines.find((l) => l.split(':')[1]?.split(',').includes('freezer'));
  if (v1 !== undefined) {
    const path = v1.slice(v1.indexOf(':', v1.indexOf(':') + 1) + 1);
    if (!own(path)) return null;
    const control = join(CGROUPFS, 'freezer', path, 'freezer.state');
    return { control, freeze: 'FROZEN', thaw: 'THAWED', frozen: () => readFileSync(control, 'utf8').trim() === 'FROZEN' };
  }
  const v2 = lines.find((l) => l.startsWith('0::'));
  if (v2 === undefined || !own(v2.slice(3))) return null;
  const dir = join(CGROUPFS, v2.slice(3));
  return { control: join(dir, 'cgroup.freeze'), freeze: '1', thaw: '0', frozen: () => /^frozen 1$/m.test(readFileSync(join(dir, 'cgroup.events'), 'utf8')) };
}

/**
 * Freezes the cgroup of `pid`, the process of container `id`, and waits (up to `timeoutMs`) until every task in it is frozen.
 * Returns a function that thaws it, or null when there is no freezer to use or it would not
 * freeze in time (then it is thawed again and the caller goes on without).
 */
export async function freezeCgroupOf(pid: number, id: string, timeoutMs = 1000): Promise<(() => void) | null> {
  const f = freezerOf(pid, id);
  if (!f) return null;
  const thaw = (): void => writeFileSync(f.control, f.thaw);
  try {
    // Paused by the user: it stays paused whatever the caller does next.
    if (f.frozen()) return () => undefined;
    writeFileSync(f.control, f.freeze);
    const deadline = Date.now() + timeoutMs;
    while (!f.frozen()) {
      if (Date.now() > deadline) {
        thaw();
        return null;
      }
      await new Promise((r) => setTimeout(r, 1));
    }
    return thaw;
  } catch {
    try {
      thaw();
    } catch {
      // No freezer there after all (the process is gone, or cgroupfs is read-only).
    }
    return null;
  }
}
