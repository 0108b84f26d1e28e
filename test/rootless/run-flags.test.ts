// run/create flags that hand a container some of the host, when barge is rootless: --device nodes
// are bind-mounted from the host as Podman does rootless (no node can be made in a user namespace),
// read-only unless write access is asked for; --shm-size, --group-add and --add-host work as for root.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRoot, rootlessBusyboxEnv, type RootlessEnv } from './lib.ts';

describe.runIf(isRoot)('run flags, rootless', () => {
  let env: RootlessEnv;

  beforeAll(async () => {
    env = await rootlessBusyboxEnv();
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  it("--device bind-mounts the host's node: read-only with r, read-write with w", async () => {
    const script = 'head -c 4 /dev/myzero | od -An -c; grep -E " /dev/(myzero|mynull) " /proc/mounts | cut -d" " -f2,4 | cut -d, -f1';
    const out = await env.bargeOk(['run', '--rm', '--device', '/dev/zero:/dev/myzero:r', '--device', '/dev/null:/dev/mynull:rw', 'busybox', 'sh', '-c', script]);
    expect(out.split('\n').map((l) => l.trim())).toEqual(['\\0  \\0  \\0  \\0', '/dev/myzero ro', '/dev/mynull rw']);
    const missing = await env.barge(['run', '--rm', '--device', '/dev/no-such-device', 'busybox', 'true']);
    expect(missing.code).toBe(125);
    expect(missing.stderr).toBe('Error: stat /dev/no-such-device: no such file or directory\n');
  });

  it('--shm-size, --group-add and --add-host', async () => {
    const out = await env.bargeOk(['run', '--rm', '--shm-size', '1m', '--group-add', 'tty', '--add-host', 'db:10.1.2.3', 'busybox', 'sh', '-c', 'df -k /dev/shm | tail -1; id; head -1 /etc/hosts']);
    const [shm, id, hosts] = out.split('\n');
    expect(shm).toMatch(/^shm\s+1024\s/);
    expect(id).toBe('uid=0(root) gid=0(root) groups=5(tty)');
    expect(hosts).toBe('10.1.2.3\tdb');
  });
});
