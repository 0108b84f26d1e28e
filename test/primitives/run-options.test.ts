// Buildah's run options: those of `from`, kept with the working container for every later run
// (capabilities, limits, hosts, DNS, namespaces, volumes, proxies), the namespace and runtime
// flags of `run` itself, and the Podman-only flags that a working container's run refuses.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOTLESS, type Env } from '../helpers.ts';
import { busyboxEnv } from '../fixtures.ts';
import { capEff, expectCode, expectError, from, sh } from './lib.ts';

let env: Env;
beforeAll(async () => {
  ({ env } = await busyboxEnv());
});
afterAll(async () => {
  await env?.cleanup();
});

const CAP_SYS_ADMIN = 21n;
const CAP_NET_ADMIN = 12n;
const CAP_CHOWN = 0n;

const has = (mask: bigint, cap: bigint): boolean => ((mask >> cap) & 1n) === 1n;

/** A cgroup file of the run's own cgroup, on a cgroup v2 host or in a v1 controller's hierarchy. */
const cgroupFile = (v2: string, v1: string): string => `cat /sys/fs/cgroup/${v2} 2>/dev/null || cat /sys/fs/cgroup/${v1}`;

describe('from keeps run options for the container\'s runs', () => {
  it('--cap-add and --cap-drop (comma lists too) set the capabilities; run\'s own add to them', async () => {
    const c = await from(env, 'busybox', ['--cap-add', 'SYS_ADMIN,net_admin', '--cap-drop', 'CHOWN']);
    const mask = capEff(await sh(env, c, 'grep CapEff /proc/self/status'));
    expect(has(mask, CAP_SYS_ADMIN)).toBe(true);
    expect(has(mask, CAP_NET_ADMIN)).toBe(true);
    expect(has(mask, CAP_CHOWN)).toBe(false);
    // Kept for every run, and run --cap-drop removes one of the kept ones for that run only.
    const dropped = capEff(await sh(env, c, 'grep CapEff /proc/self/status', ['--cap-drop', 'SYS_ADMIN']));
    expect(has(dropped, CAP_SYS_ADMIN)).toBe(false);
    expect(has(capEff(await sh(env, c, 'grep CapEff /proc/self/status')), CAP_SYS_ADMIN)).toBe(true);
  });

  it('--ulimit sets the soft and hard limits', async () => {
    const c = await from(env, 'busybox', ['--ulimit', 'nofile=100:200']);
    expect(await sh(env, c, 'ulimit -n; ulimit -Hn')).toBe('100\n200');
  });

  // Rootless on a cgroup v1 host (as here), the limits cannot be set: the run goes on without them
  // and says so, as Podman does.
  const NO_LIMITS = 'WARN[0000] Resource limits are not supported and ignored on cgroups V1 rootless systems';

  it('--memory and --memory-swap limit the run\'s cgroup', async () => {
    const c = await from(env, 'busybox', ['-m', '64m', '--memory-swap', '128m']);
    const r = await env.barge(['run', c, '--', 'sh', '-c', cgroupFile('memory.max', 'memory/memory.limit_in_bytes')]);
    expect(r.code, r.stderr).toBe(0);
    if (ROOTLESS) expect(r.stderr).toContain(NO_LIMITS);
    else expect(r.stdout.trim()).toBe(String(64 * 1024 * 1024));
  });

  it('--cpuset-cpus and --cgroup-parent place the run\'s cgroup', async () => {
    const c = await from(env, 'busybox', ['--cpuset-cpus', '0', '--cpu-shares', '512', '--cgroup-parent', '/barge-test-parent']);
    if (ROOTLESS) {
      const r = await env.barge(['run', c, '--', 'true']);
      expect([r.code, r.stderr]).toEqual([0, `${NO_LIMITS}\n`]);
      return;
    }
    expect(await sh(env, c, cgroupFile('cpuset.cpus', 'cpuset/cpuset.cpus'))).toBe('0');
    expect(await sh(env, c, 'cat /proc/self/cgroup', ['--cgroupns', 'host'])).toMatch(/:\/barge-test-parent\/barge-/);
  });

  it('--add-host entries come first in /etc/hosts', async () => {
    const c = await from(env, 'busybox', ['--add-host', 'db.example:10.1.2.3', '--add-host', 'v6:fd00::1']);
    const hosts = await sh(env, c, 'cat /etc/hosts');
    expect(hosts.split('\n').slice(0, 2)).toEqual(['10.1.2.3\tdb.example', 'fd00::1\tv6']);
  });

  it('--dns, --dns-search and --dns-option write /etc/resolv.conf as Buildah does; --dns none keeps the image\'s', async () => {
    const c = await from(env, 'busybox', ['--dns', '1.2.3.4', '--dns', '5.6.7.8', '--dns-search', 'example.com', '--dns-option', 'ndots:2']);
    expect(await sh(env, c, 'cat /etc/resolv.conf')).toBe('search example.com\nnameserver 1.2.3.4\nnameserver 5.6.7.8\noptions ndots:2');
    const none = await from(env, 'busybox', ['--dns', 'none']);
    await sh(env, none, 'echo "nameserver 7.7.7.7" > /etc/resolv.conf');
    expect(await sh(env, none, 'cat /etc/resolv.conf')).toBe('nameserver 7.7.7.7');
  });

  it('--security-opt no-new-privileges and --shm-size', async () => {
    const c = await from(env, 'busybox', ['--security-opt', 'no-new-privileges', '--security-opt', 'label=disable', '--shm-size', '1m']);
    expect(await sh(env, c, 'grep NoNewPrivs /proc/self/status')).toMatch(/NoNewPrivs:\s+1/);
    expect((await sh(env, c, 'df -k /dev/shm | tail -1')).split(/\s+/)[1]).toBe('1024');
  });

  it('--device gives every run the host\'s device node', async () => {
    const c = await from(env, 'busybox', ['--device', '/dev/zero:/dev/myzero:rw']);
    expect(await sh(env, c, 'test -c /dev/myzero && head -c 3 /dev/myzero | od -An -tx1')).toBe('00 00 00');
  });

  it('-v binds into every run; run -v adds another', async () => {
    const a = join(env.tmp, 'vol-a');
    const b = join(env.tmp, 'vol-b');
    await mkdir(a, { recursive: true });
    await mkdir(b, { recursive: true });
    await writeFile(join(a, 'f'), 'from-a');
    await writeFile(join(b, 'f'), 'from-b');
    const c = await from(env, 'busybox', ['-v', `${a}:/a:ro`]);
    expect(await sh(env, c, 'cat /a/f')).toBe('from-a');
    expect(await sh(env, c, 'cat /a/f /b/f', ['-v', `${b}:/b`])).toBe('from-afrom-b');
    expectCode(await env.barge(['run', c, '--', 'sh', '-c', 'echo x > /a/g']), 1);
  });

  it('--network none and --pid host are kept', async () => {
    const c = await from(env, 'busybox', ['--network', 'none', '--pid', 'host']);
    expect(await sh(env, c, 'ls /sys/class/net')).toBe('lo');
    // In a PID namespace of its own the shell would be pid 1.
    expect(await sh(env, c, 'echo $$')).not.toBe('1');
    expect(await sh(env, c, 'echo $$', ['--pid', 'private'])).toBe('1');
  });

  it('--network ns:PATH joins that namespace; run --network replaces it for the run', async () => {
    const c = await from(env, 'busybox', ['--network', 'ns:/proc/self/ns/net']);
    if (ROOTLESS) {
      // The host's namespace belongs to the host's user namespace, which barge's cannot enter.
      expect((await env.barge(['run', c, '--', 'true'])).code).not.toBe(0);
      expect(await sh(env, c, 'ls /sys/class/net', ['--network', 'none'])).toBe('lo');
      return;
    }
    const hostIfaces = await sh(env, c, 'ls /sys/class/net');
    expect(hostIfaces.split('\n')).toContain('lo');
    expect(hostIfaces).not.toBe('lo');
    expect(await sh(env, c, 'ls /sys/class/net', ['--network', 'none'])).toBe('lo');
  });

  it('--http-proxy (default true) passes barge\'s proxy variables; --http-proxy=false does not', async () => {
    const proxyEnv = { env: { http_proxy: 'http://proxy.invalid:3128', NO_PROXY: 'localhost' } };
    const c = await from(env);
    const r = await env.bargeOk(['run', c, '--', 'sh', '-c', 'echo "$http_proxy|$NO_PROXY"'], proxyEnv);
    expect(r).toBe('http://proxy.invalid:3128|localhost');
    // The command's own -e wins.
    expect(await env.bargeOk(['run', '-e', 'http_proxy=mine', c, '--', 'sh', '-c', 'echo $http_proxy'], proxyEnv)).toBe('mine');
    const off = await env.bargeOk(['from', '--http-proxy=false', 'busybox']);
    expect(await env.bargeOk(['run', off, '--', 'sh', '-c', 'echo "[$http_proxy]"'], proxyEnv)).toBe('[]');
  });

  it('--cidfile gets the container id; --format, --retry and --retry-delay are accepted', async () => {
    const cid = join(env.tmp, 'from.cid');
    await from(env, 'busybox', ['--cidfile', cid, '--format', 'docker', '--retry', '2', '--retry-delay', '1s']);
    const id = await readFile(cid, 'utf8');
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    expect((await env.bargeOk(['containers', '-q'])).split('\n')).toContain(id);
  });

  it('chroot isolation refuses what it cannot apply, and writes hosts and resolv.conf as oci does', async () => {
    const limited = await from(env, 'busybox', ['--isolation', 'chroot', '--ulimit', 'nofile=10']);
    expect(await expectError(env, ['run', limited, '--', 'true'])).toMatch(/--ulimit is not applied by barge's chroot isolation: use --isolation oci/);
    const c = await from(env, 'busybox', ['--isolation', 'chroot', '--add-host', 'a.example:10.0.0.9', '--dns', '8.8.4.4']);
    expect(await sh(env, c, 'head -1 /etc/hosts; cat /etc/resolv.conf')).toBe('10.0.0.9\ta.example\nnameserver 8.8.4.4');
  });

  it('a container made without run options runs as before', async () => {
    const c = await from(env);
    expect(await sh(env, c, 'ulimit -n; cat /etc/hostname')).toMatch(/^\d+\n[0-9a-f]{12}$/);
  });
});

describe('bad from values fail at once, with 125 and no container', () => {
  const cases: [string[], RegExp][] = [
    [['--ulimit', 'bogus=1'], /invalid ulimit type "bogus"/],
    [['--ulimit', 'nofile=x'], /invalid ulimit "nofile=x"/],
    [['--memory', 'lots'], /invalid memory size "lots"/],
    [['--memory-swap', '1g'], /--memory-swap/],
    [['-m', '1g', '--memory-swap', '512m'], /--memory-swap must be larger/],
    [['--dns', '1.2.3'], /1\.2\.3 is not an ip address/],
    [['--dns', 'none', '--dns', '1.1.1.1'], /--dns=none may not be used/],
    [['--add-host', 'nocolon'], /bad format for add-host/],
    [['--security-opt', 'seccomp=/no/such.json'], /unsupported --security-opt "seccomp=\/no\/such.json"/],
    [['--cap-add', 'NOPE'], /"CAP_NOPE": unknown capability/],
    [['--shm-size', '1x'], /unable to translate --shm-size/],
    [['--device', '/no/such/device'], /stat \/no\/such\/device: no such file or directory/],
    [['--pid', 'bogus'], /invalid --pid "bogus"/],
    [['--uts', 'ns:/no/such/ns'], /no such file or directory/],
    [['--cgroupns', 'bogus'], /invalid --cgroupns "bogus"/],
    [['--network', 'carrier-pigeon'], /unsupported --network "carrier-pigeon"/],
    [['--cpu-shares', '-1'], /--cpu-shares/],
    [['--cpuset-cpus', 'all'], /invalid --cpuset-cpus "all"/],
    [['--http-proxy=maybe'], /--http-proxy/],
    [['--retry', 'often'], /--retry/],
    [['--retry-delay', 'soon'], /invalid --retry-delay "soon"/],
    [['--decryption-key', '/tmp/key.pem'], /cannot decrypt/],
    [['--format', 'tar'], /format/],
  ];
  it.each(cases)('from %j', async (flags, message) => {
    const before = await env.bargeOk(['containers', '-q']);
    const stderr = await expectError(env, ['from', ...flags, 'busybox']);
    expect(stderr).toMatch(message);
    expect(await env.bargeOk(['containers', '-q'])).toBe(before);
  });
});

describe('buildah run\'s own flags on a working container', () => {
  let c: string;
  beforeAll(async () => {
    c = await from(env);
  });

  it('--uts host keeps the host\'s name; --hostname with it is refused', async () => {
    expect(await sh(env, c, 'hostname', ['--uts', 'host'])).toBe(hostname());
    expect(await expectError(env, ['run', '--uts', 'host', '--hostname', 'x', c, '--', 'true'])).toMatch(/--hostname needs the run's own UTS namespace/);
  });

  it('--pid ns:PATH joins a namespace; --cgroupns host shows the host\'s cgroup paths', async () => {
    if (ROOTLESS) expect((await env.barge(['run', '--pid', 'ns:/proc/self/ns/pid', c, '--', 'true'])).code).not.toBe(0);
    else expect(await sh(env, c, 'echo $$', ['--pid', 'ns:/proc/self/ns/pid'])).not.toBe('1');
    // Rootless on cgroup v1 the runtime makes no cgroup of its own, so there is no /barge- path to see.
    const paths = await sh(env, c, 'grep -c /barge- /proc/self/cgroup || true', ['--cgroupns', 'host']);
    if (!ROOTLESS) expect(paths).not.toBe('0');
  });

  it('--no-pivot and --runtime-flag reach the runtime', async () => {
    expect(await sh(env, c, 'echo pivotless', ['--no-pivot'])).toBe('pivotless');
    expect(await sh(env, c, 'echo debugged', ['--runtime-flag', 'debug'])).toBe('debugged');
    // The runtime itself refuses a global flag it does not have.
    const r = await env.barge(['run', '--runtime-flag', 'no-such-runtime-flag', c, '--', 'true']);
    expect(r.code).not.toBe(0);
  });

  it('--contextdir is where relative --mount sources are', async () => {
    const ctx = join(env.tmp, 'run-context');
    await mkdir(join(ctx, 'sub'), { recursive: true });
    await writeFile(join(ctx, 'sub', 'f'), 'in-context');
    expect(await sh(env, c, 'cat /m/f', ['--contextdir', ctx, '--mount', 'type=bind,src=sub,dst=/m'])).toBe('in-context');
  });

  it.each([
    ['--privileged'], ['--ulimit', 'nofile=10'], ['--memory', '64m'], ['--add-host', 'a:1.2.3.4'], ['--group-add', 'tty'],
    ['--shm-size', '1m'], ['--device', '/dev/null'], ['--security-opt', 'no-new-privileges'], ['-i'], ['--rm'], ['-w', '/tmp'],
  ])('Podman\'s %s is refused for a working container, not ignored', async (...flags) => {
    const stderr = await expectError(env, ['run', ...flags, c, '--', 'true']);
    expect(stderr).toMatch(new RegExp(`${flags[0] === '-i' ? '--interactive' : flags[0] === '-w' ? '--workdir' : flags[0]} is not an option of buildah run`));
  });

  it('Buildah\'s --pid and --no-pivot are refused for an image (Podman-style run)', async () => {
    expect(await expectError(env, ['run', '--rm', '--pid', 'host', 'busybox', 'true'])).toMatch(/--pid is an option of buildah run/);
    expect(await expectError(env, ['run', '--rm', '--no-pivot', 'busybox', 'true'])).toMatch(/--no-pivot is an option of buildah run/);
  });

  it('bad namespace values exit 125', async () => {
    expect(await expectError(env, ['run', '--ipc', 'nope', c, '--', 'true'])).toMatch(/invalid --ipc "nope"/);
    expect(await expectError(env, ['run', '--cgroupns', 'ns:/x', c, '--', 'true'])).toMatch(/invalid --cgroupns/);
  });
});
