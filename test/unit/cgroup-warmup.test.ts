import { readFileSync } from 'node:fs';
import { access } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { ownProcsFile, warmCgroupAttach } from '../../src/runtime/cgroup-warmup.ts';

describe('cgroup attach warm-up', () => {
  it('finds the unified hierarchy on hybrid and pure cgroup v2 hosts, else the systemd one', () => {
    const hybrid = '11:hugetlb:/\n9:name=systemd:/user.slice\n4:memory:/x\n0::/user.slice/session-1.scope\n';
    expect(ownProcsFile(hybrid)).toBe('/sys/fs/cgroup/unified/user.slice/session-1.scope/cgroup.procs');
    expect(ownProcsFile('0::/\n')).toBe('/sys/fs/cgroup/cgroup.procs');
    expect(ownProcsFile('0::/system.slice/ci.service\n')).toBe('/sys/fs/cgroup/system.slice/ci.service/cgroup.procs');
    expect(ownProcsFile('4:memory:/a\n1:name=systemd:/b\n')).toBe('/sys/fs/cgroup/systemd/b/cgroup.procs');
    expect(ownProcsFile('4:memory:/a\n')).toBeUndefined();
  });

  it('names a file that exists here, and leaves the process in the cgroups it was in', async () => {
    const before = readFileSync('/proc/self/cgroup', 'utf8');
    const file = ownProcsFile(before);
    expect(file).toBeDefined();
    await access(file!);
    warmCgroupAttach();
    // The write runs on a libuv thread and may wait for an RCU grace period.
    await new Promise((r) => setTimeout(r, 100));
    expect(readFileSync('/proc/self/cgroup', 'utf8')).toBe(before);
  });
});
