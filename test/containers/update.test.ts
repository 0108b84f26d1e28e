// `barge update` (Podman 4.3's): new cgroup limits for a running container through the
// runtime's update, for this run only. Rootless on a cgroup v1 host the container has no cgroup
// and update is refused.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Env } from '../helpers.ts';
import { containerSuite, expectCode, NO_CGROUPS } from './lib.ts';

const suite = containerSuite();
let env: Env;
beforeAll(() => {
  env = suite();
});

/** The container's own cgroup files, as the runtime mounts them inside it on a v1 host. */
const cgroupFile = (name: string, file: string): Promise<string> => env.bargeOk(['exec', name, 'cat', `/sys/fs/cgroup/${file}`]);

describe.each(['runc', 'crun'])('update with %s', (runtime) => {
  it.runIf(!NO_CGROUPS)('changes the memory and CPU limits of the running container, for this run only', async () => {
    const name = `upd-${runtime}`;
    const id = await env.bargeOk(['--runtime', runtime, 'run', '-d', '--name', name, 'busybox', 'sleep', '600']);
    expect(await env.bargeOk(['update', '--memory', '64m', '--cpus', '0.5', '--cpu-shares', '512', name])).toBe(id);
    expect(await cgroupFile(name, 'memory/memory.limit_in_bytes')).toBe(String(64 * 1024 * 1024));
    expect(await cgroupFile(name, 'cpu/cpu.cfs_quota_us')).toBe('50000');
    expect(await cgroupFile(name, 'cpu/cpu.shares')).toBe('512');
    // As Podman 4.3: the container's configuration keeps what it was created with.
    expect(await env.bargeOk(['inspect', '--format', '{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}', name])).toBe('0 0');
    await env.bargeOk(['restart', '-t', '0', name]);
    expect(await cgroupFile(name, 'memory/memory.limit_in_bytes')).not.toBe(String(64 * 1024 * 1024));
    await env.bargeOk(['stop', '-t', '0', name]);
    const stopped = await env.barge(['update', '--memory', '32m', name]);
    expectCode(stopped, 125);
    expect(stopped.stderr).toBe(`Error: container ${id} is not running, can't update its resources: container state improper\n`);
    await env.bargeOk(['rm', name]);
  });
});

describe('update', () => {
  it.runIf(NO_CGROUPS)('rootless on cgroup v1: refused, as the container has no cgroup', async () => {
    await env.bargeOk(['run', '-d', '--name', 'upd-nocg', 'busybox', 'sleep', '600']);
    const r = await env.barge(['update', '--memory', '64m', 'upd-nocg']);
    expectCode(r, 125);
    expect(r.stderr).toBe('Error: can not update containers on rootless containers with cgroup V1: this container does not have a cgroup\n');
    await env.bargeOk(['rm', '-f', 'upd-nocg']);
  });

  it('refuses bad input with 125: no limits, a bad value, an unknown container', async () => {
    await env.bargeOk(['run', '-d', '--name', 'upd-bad', 'busybox', 'sleep', '600']);
    const none = await env.barge(['update', 'upd-bad']);
    expectCode(none, 125);
    expect(none.stderr).toBe('Error: no resources to update: give --memory, --cpus or another limit\n');
    expectCode(await env.barge(['update', '--cpus', 'lots', 'upd-bad']), 125);
    expectCode(await env.barge(['update', '--memory', 'huge', 'upd-bad']), 125);
    const missing = await env.barge(['update', '--memory', '64m', 'upd-none']);
    expectCode(missing, 125);
    expect(missing.stderr).toBe('Error: no container with name or ID "upd-none" found: no such container\n');
    await env.bargeOk(['rm', '-f', 'upd-bad']);
  });
});
