// `run`/`create` flags checked against Podman 4.3: --init, mount options barge must not drop,
// --tmpfs defaults, --user/--workdir/--name errors, --rm after a failed start, -t output, and
// --add-host, --no-hosts, --group-add, --shm-size and --device.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BARGE_BIN, ROOTLESS, runCaptured, type BargeResult, type Env } from '../helpers.ts';
import { containerSuite, expectCode, NO_CGROUPS } from './lib.ts';

const suite = containerSuite();
let env: Env;
beforeAll(() => {
  env = suite();
});

/**
 * What /proc/mounts adds to a tmpfs's options rootless: the kernel names the owner of a tmpfs
 * mounted in a user namespace, the host's id of the container's root (the user's own).
 */
const TMPFS_OWNER = ROOTLESS ? `,uid=${process.getuid!()},gid=${process.getgid!()}` : '';

async function containerCount(): Promise<number> {
  return (await env.bargeOk(['ps', '-aq'])).split('\n').filter((l) => l !== '').length;
}

describe('run --init', () => {
  it('runs catatonit as pid 1 with the command as its child, and passes the exit code through', async () => {
    const ps = await env.bargeOk(['run', '--rm', '--init', 'busybox', 'sh', '-c', 'cat /proc/1/cmdline | tr "\\0" " "; echo; echo $$; grep PPid /proc/$$/status']);
    const [init, pid, ppid] = ps.split('\n');
    expect(init).toBe('/run/podman-init -- sh -c cat /proc/1/cmdline | tr "\\0" " "; echo; echo $$; grep PPid /proc/$$/status ');
    expect(Number(pid)).toBeGreaterThan(1);
    expect(ppid).toMatch(/^PPid:\s+1$/);
    expectCode(await env.barge(['run', '--rm', '--init', 'busybox', 'sh', '-c', 'exit 7']), 7);
    // The init is the host's binary, read-only.
    const w = await env.barge(['run', '--rm', '--init', 'busybox', 'sh', '-c', 'echo x > /run/podman-init']);
    expectCode(w, 1);
    expect(w.stderr).toMatch(/Read-only file system/);
  });

  it('is recorded: inspect shows it, stop reaches the command through the init, and a restart keeps it', async () => {
    const id = await env.bargeOk(['run', '-d', '--init', '--name', 'with-init', 'busybox', 'sleep', '1000']);
    const f = '{{.HostConfig.Init}} {{.Path}} {{.Args}} {{.Config.Cmd}}';
    expect(await env.bargeOk(['inspect', '--format', f, id])).toBe('true /run/podman-init [-- sleep 1000] [sleep 1000]');
    const t0 = Date.now();
    await env.bargeOk(['stop', '-t', '20', 'with-init']);
    // catatonit forwards SIGTERM to sleep, which dies of it: no wait for the SIGKILL timeout.
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(await env.bargeOk(['inspect', '--format', '{{.State.ExitCode}}', id])).toBe('143');
    await env.bargeOk(['start', 'with-init']);
    expect((await env.bargeOk(['exec', 'with-init', 'cat', '/proc/1/cmdline'])).split('\0')).toEqual(['/run/podman-init', '--', 'sleep', '1000', '']);
    await env.bargeOk(['rm', '-f', 'with-init']);
    expect((await env.bargeOk(['run', '--rm', '--name', 'no-init', 'busybox', 'cat', '/proc/1/cmdline'])).split('\0')).toEqual(['cat', '/proc/1/cmdline', '']);
  });

  it('names what to install when the init binary is missing (125), and creates no container', async () => {
    const before = await containerCount();
    const r = await env.barge(['run', '--rm', '--init', '--init-path', join(env.tmp, 'no-catatonit'), 'busybox', 'true']);
    expectCode(r, 125);
    expect(r.stderr).toMatch(/^Error: container-init binary not found on the host: .*no-catatonit/m);
    expect(await containerCount()).toBe(before);
  });
});

describe('mount options', () => {
  it('refuses -v options barge does not implement (:O would write to the host), naming them', async () => {
    const dir = join(env.tmp, 'vol-o');
    await mkdir(dir, { recursive: true });
    for (const opt of ['O', 'U', 'ro,U']) {
      const r = await env.barge(['run', '--rm', '-v', `${dir}:/v:${opt}`, 'busybox', 'touch', '/v/written']);
      expectCode(r, 125);
      expect(r.stderr).toMatch(/^Error: the mount option "(O|U)" .* is not supported by barge/m);
    }
    expect(await readdir(dir)).toEqual([]);
    const bogus = await env.barge(['run', '--rm', '-v', `${dir}:/v:bogus`, 'busybox', 'true']);
    expectCode(bogus, 125);
    expect(bogus.stderr).toMatch(/invalid option type "bogus"/);
    // What barge does implement still works.
    const ro = await env.barge(['run', '--rm', '-v', `${dir}:/v:ro,z,rslave`, 'busybox', 'touch', '/v/x']);
    expectCode(ro, 1);
    expect(ro.stderr).toMatch(/Read-only file system/);
  });

  it('refuses unknown --mount keys and flags, and honours bind-nonrecursive and tmpfs-mode', async () => {
    const dir = join(env.tmp, 'vol-m');
    await mkdir(dir, { recursive: true });
    for (const extra of ['bogus=1', 'bogus', 'U', 'idmap']) {
      const r = await env.barge(['run', '--rm', '--mount', `type=bind,src=${dir},dst=/v,${extra}`, 'busybox', 'true']);
      expectCode(r, 125);
      expect(r.stderr).toMatch(/^Error: .*(bogus|U|idmap).*invalid mount option/m);
    }
    const t = await env.barge(['run', '--rm', '--mount', 'type=tmpfs,dst=/v,tmpfs-size=1m,wat', 'busybox', 'true']);
    expectCode(t, 125);
    expect(t.stderr).toMatch(/wat: invalid mount option/);
    const m = await env.bargeOk(['run', '--rm', '--mount', 'type=tmpfs,dst=/v,tmpfs-size=1m,tmpfs-mode=700', 'busybox', 'grep', ' /v ', '/proc/mounts']);
    expect(m).toMatch(new RegExp(`^tmpfs /v tmpfs rw,nosuid,nodev,relatime,size=1024k,mode=700${TMPFS_OWNER} `));
  });

  it('--tmpfs has Podman\'s defaults (rw,nosuid,nodev, exec allowed) and merges the user\'s options onto them', async () => {
    const grep = ['busybox', 'grep', ' /x ', '/proc/mounts'];
    const options = async (spec: string): Promise<string> => (await env.bargeOk(['run', '--rm', '--tmpfs', spec, ...grep])).replace(TMPFS_OWNER, '');
    expect(await options('/x')).toMatch(/^tmpfs \/x tmpfs rw,nosuid,nodev,relatime 0 0$/);
    expect(await options('/x:size=1m')).toMatch(/^tmpfs \/x tmpfs rw,nosuid,nodev,relatime,size=1024k 0 0$/);
    expect(await options('/x:noexec,size=1m')).toMatch(/^tmpfs \/x tmpfs rw,nosuid,nodev,noexec,relatime,size=1024k /);
    expect(await options('/x:ro,exec')).toMatch(/^tmpfs \/x tmpfs ro,nosuid,nodev,relatime /);
    // Executables on it run, as under Podman.
    expect(await env.bargeOk(['run', '--rm', '--tmpfs', '/x', 'busybox', 'sh', '-c', 'cp /bin/busybox /x/echo && /x/echo ran'])).toBe('ran');
    const bad = await env.barge(['run', '--rm', '--tmpfs', '/x:bogus', 'busybox', 'true']);
    expectCode(bad, 125);
    expect(bad.stderr).toMatch(/^Error: unknown mount option "bogus": invalid mount option$/m);
  });
});

describe('errors as Podman reports them', () => {
  it('-u with a user the image lacks is 126 with Podman\'s message', async () => {
    const r = await env.barge(['run', '--rm', '-u', 'nouser', 'busybox', 'true']);
    expectCode(r, 126);
    expect(r.stderr).toBe('Error: unable to find user nouser: no matching entries in passwd file\n');
  });

  it('a relative -w is 126: the working directory does not exist', async () => {
    const r = await env.barge(['run', '--rm', '-w', 'tmp', 'busybox', 'pwd']);
    expectCode(r, 126);
    expect(r.stderr).toMatch(/^Error: workdir "tmp" does not exist on container [0-9a-f]{64}$/m);
  });

  it('--name must match Podman\'s pattern', async () => {
    for (const name of ['bad/name', '-lead', '.dot', 'sp ace']) {
      const r = await env.barge(['create', '--name', name, 'busybox', 'true']);
      expectCode(r, 125);
      expect(r.stderr).toBe('Error: running container create option: names must match [a-zA-Z0-9][a-zA-Z0-9_.-]*: invalid argument\n');
    }
    const ok = await env.bargeOk(['create', '--name', 'Ok_1.a-b', 'busybox', 'true']);
    await env.bargeOk(['rm', ok]);
  });

  it('run --rm leaves no container behind when it fails before the command ran (-d too)', async () => {
    const before = await containerCount();
    const cases: [string[], number, RegExp][] = [
      [['--cap-add', 'BOGUS'], 125, /"CAP_BOGUS": unknown capability/],
      [['-u', 'nouser'], 126, /unable to find user nouser/],
      [['-w', 'rel'], 126, /workdir "rel" does not exist/],
      [['-d', '-u', 'nouser'], 126, /unable to find user nouser/],
    ];
    for (const [flags, code, msg] of cases) {
      const r = await env.barge(['run', '--rm', ...flags, 'busybox', 'true']);
      expectCode(r, code, flags);
      expect(r.stderr).toMatch(msg);
    }
    expectCode(await env.barge(['run', '--rm', 'busybox', 'no-such-command']), 127);
    expect(await containerCount()).toBe(before);
    // Without --rm the container stays, as with Podman.
    expectCode(await env.barge(['run', '--name', 'kept-nouser', '-u', 'nouser', 'busybox', 'true']), 126);
    expect(await env.bargeOk(['ps', '-a', '--format', '{{.Names}}'])).toMatch(/^kept-nouser$/m);
    await env.bargeOk(['rm', 'kept-nouser']);
  });
});

describe('-t', () => {
  it('writes only the command\'s output to the terminal: without -i the terminal\'s input is not copied in', () => {
    // script(1) provides the terminal; its stdin at EOF makes it type a NUL into a raw-mode
    // terminal, which the container's terminal would echo as "^@" were the input copied there.
    const cmd = [BARGE_BIN, '--root', env.root, '--runroot', env.runroot, '--runtime', 'runc', 'run', '--rm', '-t', 'busybox', 'sh', '-c', '"sleep 0.3; echo hi; tty"'].join(' ');
    const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(JSON.stringify(r.stdout)).toMatch(/^"hi\\r\\n\/dev\/pts\/\d+\\r\\n"$/);
  });
});

describe('groups', () => {
  it("a named user keeps its primary group among its groups, as Podman's; the image's default root does not", async () => {
    expect(await env.bargeOk(['run', '--rm', 'busybox', 'id'])).toBe('uid=0(root) gid=0(root)');
    expect(await env.bargeOk(['run', '--rm', '-u', 'nobody', 'busybox', 'id'])).toBe('uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)');
    expect(await env.bargeOk(['run', '--rm', '-u', '1000:1000', 'busybox', 'sh', '-c', 'id -G'])).toBe('1000');
  });
});

describe('terminals without one to take over', () => {
  it('run -t with stdin no terminal gets a pty from conmon, as Podman\'s in a CI job: output, exit code, --rm', async () => {
    const r = await env.barge(['run', '--rm', '-t', '--name', 'ttyless', 'busybox', 'sh', '-c', 'tty; echo ok; exit 3']);
    expectCode(r, 3);
    expect(r.stdout).toMatch(/^\/dev\/pts\/\d+\r\nok\r\n$/);
    expectCode(await env.barge(['container', 'inspect', 'ttyless']), 125);
  });

  it("a terminal container's log keeps its lines (they end in \\r\\n)", async () => {
    const id = await env.bargeOk(['run', '-d', '-t', 'busybox', 'sh', '-c', 'echo from-the-pty']);
    await env.bargeOk(['wait', id]);
    expect((await env.barge(['logs', id])).stdout).toBe('from-the-pty\r\n');
    await env.bargeOk(['rm', id]);
  });
});

describe("containers.conf's defaults", () => {
  it('default_ulimits and pids_limit apply under --ulimit and --pids-limit, and inspect shows them as Podman does', async () => {
    const conf = join(env.tmp, 'limits.conf');
    await writeFile(conf, '[containers]\ndefault_ulimits = ["nofile=512:512", "nproc=700:700"]\npids_limit = 300\n');
    const withConf = { env: { CONTAINERS_CONF: conf } };
    const script = ['sh', '-c', 'ulimit -n; ulimit -u; cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max 2>/dev/null || echo no-pids-cgroup'];
    // Without cgroups the pids limit is ignored, silently for the default and with Podman's warning
    // for --pids-limit; the rlimits still apply.
    const limits = async (args: string[]): Promise<string[]> => {
      const r = await env.barge(['run', '--rm', ...args, 'busybox', ...script], withConf);
      expectCode(r, 0, args);
      const warned = r.stderr.includes('WARN[0000] Resource limits are not supported and ignored on cgroups V1 rootless systems\n');
      expect(warned).toBe(NO_CGROUPS && args.includes('--pids-limit'));
      return r.stdout.trim().split('\n');
    };
    const pids = (n: string): string => (NO_CGROUPS ? 'no-pids-cgroup' : n);
    expect(await limits([])).toEqual(['512', '700', pids('300')]);
    expect(await limits(['--ulimit', 'nofile=256:256', '--pids-limit', '50'])).toEqual(['256', '700', pids('50')]);
    await env.bargeOk(['create', '--name', 'limited', 'busybox', 'true'], withConf);
    const host = JSON.parse(await env.bargeOk(['inspect', '--format', '{{json .HostConfig}}', 'limited'])) as { PidsLimit: number; Ulimits: unknown[] };
    // Rootless, Podman leaves containers.conf's pids_limit out (its cgroupfs manager has no pids cgroup to limit).
    expect(host.PidsLimit).toBe(ROOTLESS ? 0 : 300);
    expect(host.Ulimits).toEqual([{ Name: 'RLIMIT_NOFILE', Soft: 512, Hard: 512 }, { Name: 'RLIMIT_NPROC', Soft: 700, Hard: 700 }]);
    await env.bargeOk(['rm', 'limited']);
  });
});

describe('--privileged', () => {
  it("gives every capability barge holds, no seccomp filter, unmasked /proc and /sys, and the host's devices; without it none of these", async () => {
    // Rootless, barge holds the capabilities of its own user namespace.
    const status = ROOTLESS ? await env.bargeOk(['unshare', 'cat', '/proc/self/status']) : readFileSync('/proc/self/status', 'utf8');
    const held = /^CapBnd:\s*([0-9a-f]+)$/m.exec(status)![1];
    const script = ['sh', '-c', 'grep -E "^(CapEff|Seccomp):" /proc/self/status; test -c /dev/kmsg && echo host-kmsg; mount -t tmpfs none /tmp 2>/dev/null && echo mounted; grep -q " /proc/sys " /proc/mounts || echo proc-sys-unmasked; echo 1 > /proc/sys/kernel/printk_ratelimit_burst 2>/dev/null && echo proc-sys-rw; true'];
    const priv = (await env.bargeOk(['run', '--rm', '--privileged', 'busybox', ...script])).split('\n');
    // Rootless, /proc/sys is not read-only, but its files are the host root's, which the container's root is not.
    expect(priv).toEqual([`CapEff:\t${held}`, 'Seccomp:\t0', 'host-kmsg', 'mounted', 'proc-sys-unmasked', ...(ROOTLESS ? [] : ['proc-sys-rw'])]);
    const plain = (await env.bargeOk(['run', '--rm', 'busybox', ...script])).split('\n');
    expect(plain).toEqual(['CapEff:\t00000000800405fb', 'Seccomp:\t2']);
    await env.bargeOk(['create', '--privileged', '--name', 'priv', 'busybox', 'true']);
    expect(await env.bargeOk(['inspect', '--format', '{{.HostConfig.Privileged}}', 'priv'])).toBe('true');
    await env.bargeOk(['rm', 'priv']);
  });
});

describe('--add-host and --no-hosts', () => {
  it("puts the entries first in /etc/hosts (IPv6 too), and inspect's ExtraHosts lists them", async () => {
    const hosts = await env.bargeOk(['run', '--rm', '--add-host', 'db:10.1.2.3', '--add-host', 'v6:::1', '--hostname', 'h', 'busybox', 'cat', '/etc/hosts']);
    expect(hosts.split('\n')).toEqual(['10.1.2.3\tdb', '::1\tv6', '127.0.0.1\tlocalhost localhost.localdomain', '::1\tlocalhost ip6-localhost ip6-loopback', '127.0.1.1\th']);
    await env.bargeOk(['create', '--name', 'hosts-added', '--add-host', 'db:10.1.2.3', '--add-host', 'v6:::1', 'busybox', 'true']);
    expect(await env.bargeOk(['inspect', '--format', '{{json .HostConfig.ExtraHosts}}', 'hosts-added'])).toBe('["db:10.1.2.3","v6:::1"]');
    await env.bargeOk(['rm', 'hosts-added']);
  });

  it("refuses a malformed value with Podman's message (125), and creates no container", async () => {
    const before = await containerCount();
    const cases: [string[], string][] = [
      [['--add-host', 'db'], 'Error: bad format for add-host: "db"\n'],
      [['--add-host', ':10.1.2.3'], 'Error: bad format for add-host: ":10.1.2.3"\n'],
      [['--add-host', 'db:bad'], 'Error: invalid IP address in add-host: "bad"\n'],
      [['--add-host', 'db:10.1.2.3:5'], 'Error: invalid IP address in add-host: "10.1.2.3:5"\n'],
      [['--add-host', 'db:[::1]'], 'Error: invalid IP address in add-host: "[::1]"\n'],
      [['--no-hosts', '--add-host', 'db:10.1.2.3'], 'Error: --no-hosts and --add-host cannot be set together\n'],
    ];
    for (const [flags, stderr] of cases) {
      const r = await env.barge(['run', '--rm', ...flags, 'busybox', 'true']);
      expectCode(r, 125, flags);
      expect(r.stderr).toBe(stderr);
    }
    expect(await containerCount()).toBe(before);
  });

  it("--no-hosts leaves the image's /etc/hosts alone (busybox has none), and inspect has no HostsPath", async () => {
    const r = await env.barge(['run', '--rm', '--no-hosts', 'busybox', 'cat', '/etc/hosts']);
    expectCode(r, 1);
    expect(r.stderr).toMatch(/can't open '\/etc\/hosts': No such file or directory/);
    await env.bargeOk(['create', '--name', 'no-hosts', '--no-hosts', 'busybox', 'true']);
    expect(await env.bargeOk(['inspect', '--format', '[{{.HostsPath}}]', 'no-hosts'])).toBe('[]');
    await env.bargeOk(['rm', 'no-hosts']);
  });

  it("Buildah's run of a working container takes --no-hosts too", async () => {
    const ctr = await env.bargeOk(['from', 'busybox']);
    const file = join(env.tmp, 'image-hosts');
    await writeFile(file, '10.9.8.7\tfrom-image\n');
    await env.bargeOk(['copy', ctr, file, '/etc/hosts']);
    expect(await env.bargeOk(['run', '--no-hosts', ctr, '--', 'cat', '/etc/hosts'])).toBe('10.9.8.7\tfrom-image');
    expect(await env.bargeOk(['run', ctr, '--', 'cat', '/etc/hosts'])).toMatch(/^127\.0\.0\.1\tlocalhost\n/);
    await env.bargeOk(['rm', ctr]);
  });
});

describe('--group-add', () => {
  it("adds groups by name (the image's /etc/group) or number, to root, to a named user and to exec's processes, as Podman", async () => {
    expect(await env.bargeOk(['run', '--rm', '--group-add', 'tty', '--group-add', '1234', '--group-add', 'users', 'busybox', 'id'])).toBe('uid=0(root) gid=0(root) groups=5(tty),100(users),1234');
    expect(await env.bargeOk(['run', '--rm', '-u', 'nobody', '--group-add', 'tty', 'busybox', 'id'])).toBe('uid=65534(nobody) gid=65534(nogroup) groups=5(tty),65534(nogroup)');
    // Empty values are dropped, as by Podman.
    expect(await env.bargeOk(['run', '--rm', '--group-add', '', 'busybox', 'id'])).toBe('uid=0(root) gid=0(root)');
    await env.bargeOk(['run', '-d', '--name', 'grouped', '--group-add', 'tty', 'busybox', 'sleep', '1000']);
    expect(await env.bargeOk(['exec', 'grouped', 'id'])).toBe('uid=0(root) gid=0(root) groups=5(tty)');
    // Another user asked of exec does not get them.
    expect(await env.bargeOk(['exec', '-u', 'nobody', 'grouped', 'id'])).toBe('uid=65534(nobody) gid=65534(nogroup)');
    expect(await env.bargeOk(['inspect', '--format', '{{json .HostConfig.GroupAdd}}', 'grouped'])).toBe('["tty"]');
    await env.bargeOk(['rm', '-f', 'grouped']);
  });

  it("a group the image lacks, or a number out of range, fails the start with Podman's message (126)", async () => {
    for (const [group, why] of [['nosuch', 'Unable to find group nosuch: no matching entries in group file'], ['5x', 'Unable to find group 5x: no matching entries in group file'], ['-1', 'uids and gids must be in range 0-2147483647'], ['4294967295', 'uids and gids must be in range 0-2147483647']]) {
      const r = await env.barge(['run', '--rm', '--group-add', group!, 'busybox', 'true']);
      expectCode(r, 126, [group!]);
      expect(r.stderr).toMatch(new RegExp(`^Error: looking up supplemental groups for container [0-9a-f]{64}: ${why}$`, 'm'));
    }
  });

  it('keep-groups must be alone, and needs crun', async () => {
    const mixed = await env.barge(['run', '--rm', '--group-add', 'keep-groups', '--group-add', '5', 'busybox', 'true']);
    expectCode(mixed, 125);
    expect(mixed.stderr).toBe("Error: the '--group-add keep-groups' option is not allowed with any other --group-add options\n");
    const runc = await env.barge(['--runtime', 'runc', 'run', '--rm', '--group-add', 'keep-groups', 'busybox', 'true']);
    expectCode(runc, 125);
    expect(runc.stderr).toMatch(/^Error: the '--group-add keep-groups' option needs the crun runtime/);
  });

  it.runIf(existsSync('/usr/bin/crun'))("keep-groups with crun: the container keeps barge's own supplementary groups, as the annotation Podman sets tells crun", async () => {
    // barge started with groups 5 and 100, as a user in those groups would be. Rootless the test
    // cannot add groups: the user's own, its primary group, is root's in barge's namespace.
    const asGrouped = (flags: string[]): Promise<BargeResult> => {
      const run = ['--runtime', 'crun', 'run', '--rm', ...flags, 'busybox', 'id'];
      if (ROOTLESS) return env.barge(run);
      return runCaptured('setpriv', ['--groups', '5,100', '--', BARGE_BIN, '--root', env.root, '--runroot', env.runroot, ...run], { env: process.env, label: 'setpriv barge run' });
    };
    const kept = await asGrouped(['--group-add', 'keep-groups']);
    expectCode(kept, 0);
    expect(kept.stdout).toBe(ROOTLESS ? 'uid=0(root) gid=0(root) groups=0(root)\n' : 'uid=0(root) gid=0(root) groups=5(tty),100(users)\n');
    expect((await asGrouped([])).stdout).toBe('uid=0(root) gid=0(root)\n');
    await env.bargeOk(['--runtime', 'crun', 'create', '--name', 'keeps-groups', '--group-add', 'keep-groups', 'busybox', 'true']);
    expect(await env.bargeOk(['inspect', '--format', '{{json .Config.Annotations}} {{json .HostConfig.GroupAdd}}', 'keeps-groups'])).toBe('{"run.oci.keep_original_groups":"1"} []');
    await env.bargeOk(['rm', 'keeps-groups']);
  });
});

describe('--shm-size', () => {
  const shm = ['busybox', 'grep', ' /dev/shm ', '/proc/mounts'];
  it("sizes /dev/shm as Podman does (its default 65536000 bytes), and inspect's ShmSize says so", async () => {
    expect(await env.bargeOk(['run', '--rm', ...shm])).toMatch(new RegExp(` rw,nosuid,nodev,noexec,relatime,size=64000k${TMPFS_OWNER} `));
    for (const [size, kib] of [['64m', 65536], ['1g', 1048576], ['1.5g', 1572864], ['64MiB', 65536], ['100000', 100]] as const) {
      expect(await env.bargeOk(['run', '--rm', '--shm-size', size, ...shm])).toMatch(new RegExp(`,size=${kib}k${TMPFS_OWNER} `));
    }
    expect(await env.bargeOk(['run', '--rm', '--shm-size', '1m', 'busybox', 'sh', '-c', 'df -k /dev/shm | tail -1'])).toMatch(/^shm\s+1024\s/);
    await env.bargeOk(['create', '--name', 'shm-default', 'busybox', 'true']);
    await env.bargeOk(['create', '--name', 'shm-1g', '--shm-size', '1g', 'busybox', 'true']);
    expect(await env.bargeOk(['inspect', '--format', '{{.HostConfig.ShmSize}}', 'shm-default', 'shm-1g'])).toBe('65536000\n1073741824');
    await env.bargeOk(['rm', 'shm-default', 'shm-1g']);
  });

  it("refuses a size it cannot read with Podman's message (125)", async () => {
    for (const size of ['bad', '-1']) {
      const r = await env.barge(['run', '--rm', '--shm-size', size, 'busybox', 'true']);
      expectCode(r, 125, [size]);
      expect(r.stderr).toBe(`Error: unable to translate --shm-size: invalid size: '${size}'\n`);
    }
  });
});

describe('--device', () => {
  it('makes the host device at the path asked for, where the container can use it; inspect lists it', async () => {
    const script = 'ls -l /dev/myzero; head -c 4 /dev/myzero | od -An -c; test -e /dev/fuse && echo has-fuse; true';
    const out = await env.bargeOk(['run', '--rm', '--device', '/dev/zero:/dev/myzero', 'busybox', 'sh', '-c', script]);
    // Rootless the host's node is bind-mounted, owned by the host's root, whom the namespace does not map.
    const owner = ROOTLESS ? 'nobody +nogroup' : 'root +root';
    expect(out).toMatch(new RegExp(`^crw-rw-rw- +1 ${owner} +1, +5 .* /dev/myzero\n +\\\\0 +\\\\0 +\\\\0 +\\\\0$`));
    // Without --device there is no such node.
    const none = await env.barge(['run', '--rm', 'busybox', 'sh', '-c', script]);
    expect(none.stdout).toBe('');
    expect(none.stderr).toMatch(/\/dev\/myzero: No such file or directory/);
    // A symbolic link is resolved first, and its target is the default container path (as Podman's).
    const link = join(env.tmp, 'zero-link');
    await symlink('/dev/zero', link);
    await env.bargeOk(['create', '--name', 'with-devices', '--device', '/dev/zero:/dev/myzero:r', '--device', link, 'busybox', 'true']);
    expect(JSON.parse(await env.bargeOk(['inspect', '--format', '{{json .HostConfig.Devices}}', 'with-devices']))).toEqual([
      { PathOnHost: '/dev/zero', PathInContainer: '/dev/myzero', CgroupPermissions: '' },
      { PathOnHost: '/dev/zero', PathInContainer: '/dev/zero', CgroupPermissions: '' },
    ]);
    await env.bargeOk(['rm', 'with-devices']);
  });

  it('gives every device node of a directory, under the container path', async () => {
    const dir = join(env.tmp, 'devdir');
    await mkdir(join(dir, 'sub'), { recursive: true });
    await writeFile(join(dir, 'not-a-device'), '');
    const node = join(dir, 'sub', 'n');
    // Rootless the test cannot make a device node: the host's /dev/null is bind-mounted there in
    // barge's namespace, which every barge command shares.
    if (ROOTLESS) {
      await writeFile(node, '');
      await env.bargeOk(['unshare', 'mount', '--bind', '/dev/null', node]);
    } else spawnSync('cp', ['-a', '/dev/null', node]);
    try {
      expect(await env.bargeOk(['run', '--rm', '--device', `${dir}:/dev/dd`, 'busybox', 'sh', '-c', 'find /dev/dd | sort; test -c /dev/dd/sub/n && echo char'])).toBe('/dev/dd\n/dev/dd/sub\n/dev/dd/sub/n\nchar');
    } finally {
      if (ROOTLESS) await env.bargeOk(['unshare', 'umount', node]);
    }
  });

  // Rootless on cgroup v1 there is no device cgroup, so nothing enforces the access (nor under Podman).
  it.runIf(existsSync('/dev/fuse') && !NO_CGROUPS)("allows only the access asked for (the device cgroup's rule)", async () => {
    const script = 'exec 3</dev/f && echo read-ok; exec 4>/dev/f && echo write-ok; true';
    const ro = await env.barge(['run', '--rm', '--device', '/dev/fuse:/dev/f:r', 'busybox', 'sh', '-c', script]);
    expect(ro.stdout).toBe('read-ok\n');
    expect(ro.stderr).toMatch(/can't create \/dev\/f: Operation not permitted/);
    expect(await env.bargeOk(['run', '--rm', '--device', '/dev/fuse:/dev/f', 'busybox', 'sh', '-c', script])).toBe('read-ok\nwrite-ok');
  });

  it("refuses a missing device, a file that is none, and malformed values with Podman's messages (125), creating no container", async () => {
    const before = await containerCount();
    const empty = join(env.tmp, 'no-devices');
    await mkdir(empty, { recursive: true });
    const cases: [string, string][] = [
      ['/dev/no-such-device', 'Error: stat /dev/no-such-device: no such file or directory\n'],
      [':/dev/z', 'Error: stat : no such file or directory\n'],
      ['/etc/passwd', 'Error: /etc/passwd is not a valid device: not a device node\n'],
      [empty, `Error: no devices found in ${empty}: invalid argument\n`],
      ['/dev/zero:rel', 'Error: invalid device mode: rel\n'],
      ['/dev/zero:/dev/z:bogus', 'Error: invalid device mode: bogus\n'],
      ['/dev/zero:/dev/z:rr', 'Error: invalid device mode: rr\n'],
      ['/dev/zero:/dev/z:rw:x', 'Error: invalid device specification: /dev/zero:/dev/z:rw:x\n'],
    ];
    for (const [device, stderr] of cases) {
      const r = await env.barge(['run', '--rm', '--device', device, 'busybox', 'true']);
      expectCode(r, 125, [device]);
      expect(r.stderr).toBe(stderr);
    }
    expect(await containerCount()).toBe(before);
  });
});
