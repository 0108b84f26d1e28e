// `run`/`create` flags checked against Podman 4.3: --init, mount options barge must not drop,
// --tmpfs defaults, --user/--workdir/--name errors, --rm after a failed start, and -t output.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BARGE_BIN, type Env } from '../helpers.ts';
import { containerSuite, expectCode } from './lib.ts';

const suite = containerSuite();
let env: Env;
beforeAll(() => {
  env = suite();
});

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
    expect(m).toMatch(/^tmpfs \/v tmpfs rw,nosuid,nodev,relatime,size=1024k,mode=700 /);
  });

  it('--tmpfs has Podman\'s defaults (rw,nosuid,nodev, exec allowed) and merges the user\'s options onto them', async () => {
    const grep = ['busybox', 'grep', ' /x ', '/proc/mounts'];
    expect(await env.bargeOk(['run', '--rm', '--tmpfs', '/x', ...grep])).toMatch(/^tmpfs \/x tmpfs rw,nosuid,nodev,relatime 0 0$/);
    expect(await env.bargeOk(['run', '--rm', '--tmpfs', '/x:size=1m', ...grep])).toMatch(/^tmpfs \/x tmpfs rw,nosuid,nodev,relatime,size=1024k 0 0$/);
    expect(await env.bargeOk(['run', '--rm', '--tmpfs', '/x:noexec,size=1m', ...grep])).toMatch(/^tmpfs \/x tmpfs rw,nosuid,nodev,noexec,relatime,size=1024k /);
    expect(await env.bargeOk(['run', '--rm', '--tmpfs', '/x:ro,exec', ...grep])).toMatch(/^tmpfs \/x tmpfs ro,nosuid,nodev,relatime /);
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
    const script = ['sh', '-c', 'ulimit -n; ulimit -u; cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max'];
    expect((await env.bargeOk(['run', '--rm', 'busybox', ...script], withConf)).split('\n')).toEqual(['512', '700', '300']);
    expect((await env.bargeOk(['run', '--rm', '--ulimit', 'nofile=256:256', '--pids-limit', '50', 'busybox', ...script], withConf)).split('\n')).toEqual(['256', '700', '50']);
    await env.bargeOk(['create', '--name', 'limited', 'busybox', 'true'], withConf);
    const host = JSON.parse(await env.bargeOk(['inspect', '--format', '{{json .HostConfig}}', 'limited'])) as { PidsLimit: number; Ulimits: unknown[] };
    expect(host.PidsLimit).toBe(300);
    expect(host.Ulimits).toEqual([{ Name: 'RLIMIT_NOFILE', Soft: 512, Hard: 512 }, { Name: 'RLIMIT_NPROC', Soft: 700, Hard: 700 }]);
    await env.bargeOk(['rm', 'limited']);
  });
});

describe('--privileged', () => {
  it("gives every capability barge holds, no seccomp filter, unmasked /proc and /sys, and the host's devices; without it none of these", async () => {
    const held = /^CapBnd:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))![1];
    const script = ['sh', '-c', 'grep -E "^(CapEff|Seccomp):" /proc/self/status; test -c /dev/kmsg && echo host-kmsg; mount -t tmpfs none /tmp 2>/dev/null && echo mounted; echo 1 > /proc/sys/kernel/printk_ratelimit_burst 2>/dev/null && echo proc-sys-rw; true'];
    const priv = (await env.bargeOk(['run', '--rm', '--privileged', 'busybox', ...script])).split('\n');
    expect(priv).toEqual([`CapEff:\t${held}`, 'Seccomp:\t0', 'host-kmsg', 'mounted', 'proc-sys-rw']);
    const plain = (await env.bargeOk(['run', '--rm', 'busybox', ...script])).split('\n');
    expect(plain).toEqual(['CapEff:\t00000000800405fb', 'Seccomp:\t2']);
    await env.bargeOk(['create', '--privileged', '--name', 'priv', 'busybox', 'true']);
    expect(await env.bargeOk(['inspect', '--format', '{{.HostConfig.Privileged}}', 'priv'])).toBe('true');
    await env.bargeOk(['rm', 'priv']);
  });
});
