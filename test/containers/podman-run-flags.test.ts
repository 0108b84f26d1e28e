// Podman 4.3's run/create flags beyond the common ones, each checked against what Podman does:
// the image's VOLUMEs (--image-volume), the environment (--unsetenv, --env-merge, --env-host,
// --http-proxy), metadata (--label-file, --annotation, --expose), --tz, --umask, the passwd
// entries Podman adds, --sysctl, --oom-score-adj, --personality, --pidfile, --preserve-fds, --rmi,
// --timeout, -a, and the flags barge accepts as no-ops or refuses with the reason (125).
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BARGE_BIN, runCaptured, type Env } from '../helpers.ts';
import { containerSuite, expectCode } from './lib.ts';

const suite = containerSuite();
let env: Env;
beforeAll(async () => {
  env = suite();
  const ctx = join(env.tmp, 'vol-ctx');
  await mkdir(ctx, { recursive: true });
  await writeFile(join(ctx, 'Containerfile'), 'FROM busybox\nRUN mkdir -p /data && echo hi > /data/f\nVOLUME /data\nEXPOSE 80\n');
  await env.bargeOk(['build', '-q', '-t', 'withvol', ctx]);
});

const volumeCount = async (): Promise<number> => (await env.bargeOk(['volume', 'ls', '-q'])).split('\n').filter((l) => l !== '').length;
const mountOf = (out: string, dst: string): string | undefined => out.split('\n').find((l) => l.split(' ')[1] === dst);

describe('--image-volume and the image\'s VOLUMEs', () => {
  it('bind (the default): an anonymous volume filled from the image, gone with rm -v and --rm', async () => {
    const before = await volumeCount();
    const out = await env.bargeOk(['run', '--rm', 'withvol', 'sh', '-c', 'cat /data/f; cat /proc/mounts']);
    expect(out.split('\n')[0]).toBe('hi');
    expect(mountOf(out, '/data')).toBeDefined();
    expect(await volumeCount()).toBe(before);

    const id = await env.bargeOk(['create', 'withvol', 'true']);
    expect(await volumeCount()).toBe(before + 1);
    const mounts = JSON.parse(await env.bargeOk(['inspect', '--format', '{{json .Mounts}}', id])) as { Type: string; Destination: string }[];
    expect(mounts).toMatchObject([{ Type: 'volume', Destination: '/data' }]);
    await env.bargeOk(['rm', '-v', id]);
    expect(await volumeCount()).toBe(before);
  });

  it('tmpfs: a tmpfs holding the image\'s content; ignore: the image\'s directory; a -v over it wins', async () => {
    const tmpfs = await env.bargeOk(['run', '--rm', '--image-volume', 'tmpfs', 'withvol', 'sh', '-c', 'cat /data/f; cat /proc/mounts']);
    expect(tmpfs.split('\n')[0]).toBe('hi');
    expect(mountOf(tmpfs, '/data')).toMatch(/^tmpfs \/data tmpfs /);
    const before = await volumeCount();
    const ignore = await env.bargeOk(['run', '--rm', '--image-volume', 'ignore', 'withvol', 'sh', '-c', 'cat /data/f; cat /proc/mounts']);
    expect(ignore.split('\n')[0]).toBe('hi');
    expect(mountOf(ignore, '/data')).toBeUndefined();
    const dir = join(env.tmp, 'over-data');
    await mkdir(dir, { recursive: true });
    await env.bargeOk(['run', '--rm', '-v', `${dir}:/data`, 'withvol', 'touch', '/data/mine']);
    expect(existsSync(join(dir, 'mine'))).toBe(true);
    expect(await volumeCount()).toBe(before);

    const bad = await env.barge(['run', '--rm', '--image-volume', 'bogus', 'withvol', 'true']);
    expectCode(bad, 125);
    expect(bad.stderr).toContain('Error: invalid image volume mode "bogus" required value: bind, tmpfs, ignore');
  });
});

describe('environment', () => {
  const envOf = async (args: string[], vars: Record<string, string> = {}): Promise<string[]> =>
    (await env.bargeOk(['run', '--rm', ...args, 'busybox', 'env'], { env: vars })).split('\n');

  it('--unsetenv and --unsetenv-all drop defaults, not -e; --env-merge rewrites a default', async () => {
    const e = await envOf(['--unsetenv', 'TERM', '--unsetenv', 'container', '-e', 'X=1', '--env-merge', 'PATH=${PATH}:/opt', '--env-merge', 'NEW=${X}']);
    expect(e).toContain('PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/opt');
    expect(e).toContain('X=1');
    expect(e.filter((l) => /^(TERM|container|NEW)=/.test(l))).toEqual([]);
    // Without PATH the runtime finds no `env`, as with Podman.
    const r = await env.barge(['run', '--rm', '--unsetenv-all', 'busybox', 'env']);
    expectCode(r, 127);
    expect((await env.bargeOk(['run', '--rm', '--unsetenv-all', '-e', 'A=b', 'busybox', '/bin/busybox', 'env'])).split('\n').sort()).toEqual(
      expect.arrayContaining(['A=b', expect.stringMatching(/^HOME=/), expect.stringMatching(/^HOSTNAME=/)]),
    );
    expect((await env.bargeOk(['run', '--rm', '--unsetenv-all', 'busybox', '/bin/busybox', 'env'])).split('\n').some((l) => l.startsWith('PATH='))).toBe(false);
  });

  it('--http-proxy (default true) passes the host\'s proxy variables; --env-host all of them', async () => {
    const proxy = { http_proxy: 'http://proxy.test:3128', NO_PROXY: 'internal.test', UNRELATED_VAR: 'x' };
    const e = await envOf([], proxy);
    expect(e).toEqual(expect.arrayContaining(['http_proxy=http://proxy.test:3128', 'NO_PROXY=internal.test']));
    expect(e.some((l) => l.startsWith('UNRELATED_VAR='))).toBe(false);
    expect((await envOf(['--http-proxy=false'], proxy)).some((l) => /proxy/i.test(l))).toBe(false);
    // -e wins over the host's value.
    expect(await envOf(['-e', 'http_proxy=mine'], proxy)).toContain('http_proxy=mine');
    expect(await envOf(['--env-host'], proxy)).toEqual(expect.arrayContaining(['UNRELATED_VAR=x', 'http_proxy=http://proxy.test:3128']));
  });
});

describe('metadata', () => {
  it('--label-file, --annotation (in the OCI spec and inspect), --expose (with the image\'s EXPOSE)', async () => {
    const file = join(env.tmp, 'labels');
    await writeFile(file, '# team labels\nteam=db\n\ntier=back\n');
    const id = await env.bargeOk([
      'create', '--label-file', file, '--label', 'tier=front', '--annotation', 'org.test.a=b', '--expose', '90-91/udp', '--expose', '8080', 'withvol', 'true',
    ]);
    const [c] = JSON.parse(await env.bargeOk(['inspect', id])) as { Config: Record<string, unknown>; HostConfig: Record<string, unknown>; OCIConfigPath: string }[];
    expect(c!.Config.Labels).toMatchObject({ team: 'db', tier: 'front' });
    expect(c!.Config.Annotations).toMatchObject({ 'org.test.a': 'b' });
    expect(c!.HostConfig.PortBindings).toEqual({ '80/tcp': null, '90/udp': null, '91/udp': null, '8080/tcp': null });
    await env.bargeOk(['start', id]);
    const spec = JSON.parse(readFileSync(c!.OCIConfigPath, 'utf8')) as { annotations?: Record<string, string> };
    expect(spec.annotations).toMatchObject({ 'org.test.a': 'b' });
    await env.bargeOk(['rm', '-f', id]);

    const missing = await env.barge(['create', '--label-file', join(env.tmp, 'nope'), 'busybox', 'true']);
    expectCode(missing, 125);
    expect(missing.stderr).toContain('parsing label file');
    const bad = await env.barge(['create', '--expose', '0', 'busybox', 'true']);
    expectCode(bad, 125);
    expect(bad.stderr).toContain('port numbers must be between 1 and 65535 (inclusive), got 0');
  });
});

describe('--tz and --umask', () => {
  it('--tz binds the zone over /etc/localtime (inspect shows it); an unknown zone is refused at create', async () => {
    expect(await env.bargeOk(['run', '--rm', '--tz', 'Asia/Tokyo', 'busybox', 'date', '+%Z'])).toBe('JST');
    const localZone = readFileSync('/etc/localtime');
    expect(Buffer.from(await env.bargeOk(['run', '--rm', '--tz', 'local', 'busybox', 'md5sum', '/etc/localtime'])).toString().split(' ')[0]).toBe(
      (await import('node:crypto')).createHash('md5').update(localZone).digest('hex'),
    );
    const id = await env.bargeOk(['create', '--tz', 'Asia/Tokyo', '--umask', '077', 'busybox', 'true']);
    expect(await env.bargeOk(['inspect', '--format', '{{.Config.Timezone}} {{.Config.Umask}}', id])).toBe('Asia/Tokyo 0077');
    await env.bargeOk(['rm', id]);
    const bad = await env.barge(['run', '--rm', '--tz', 'Bogus/Zone', 'busybox', 'true']);
    expectCode(bad, 125);
    expect(bad.stderr).toContain('Error: running container create option: stat /usr/share/zoneinfo/Bogus/Zone: no such file or directory');
  });

  it('--umask sets the process\'s umask; a bad one is refused', async () => {
    expect(await env.bargeOk(['run', '--rm', '--umask', '0027', 'busybox', 'sh', '-c', 'umask'])).toBe('0027');
    expect(await env.bargeOk(['run', '--rm', 'busybox', 'sh', '-c', 'umask'])).toBe('0022');
    for (const v of ['999', 'abc']) {
      const r = await env.barge(['run', '--rm', '--umask', v, 'busybox', 'true']);
      expectCode(r, 125);
      expect(r.stderr).toContain(`invalid umask string ${v}: invalid argument`);
    }
  });
});

describe('passwd entries', () => {
  it('a numeric --user the image lacks gets an entry (home: the workdir), and its numeric group one', async () => {
    const out = await env.bargeOk(['run', '--rm', '-w', '/tmp', '--user', '1234:55', 'busybox', 'sh', '-c', 'id; tail -1 /etc/passwd; tail -1 /etc/group; echo $HOME']);
    expect(out.split('\n')).toEqual(['uid=1234(1234) gid=55(55) groups=55(55)', '1234:*:1234:55:container user:/tmp:/bin/sh', '55:x:55:1234', '/tmp']);
    expect(await env.bargeOk(['run', '--rm', '--passwd=false', '--user', '1234', 'busybox', 'id'])).toBe('uid=1234 gid=0(root) groups=0(root)');
    const entry = await env.bargeOk(['run', '--rm', '--user', '1234', '--passwd-entry', '$USERNAME:x:$UID:$GID:$NAME:$HOME:/bin/sh', 'busybox', 'tail', '-1', '/etc/passwd']);
    expect(entry).toBe('1234:x:1234:0:container user:/:/bin/sh');
    // A user the image has is left alone.
    expect(await env.bargeOk(['run', '--rm', '--user', '0', '--passwd-entry', 'x:x:0:0::/:/bin/sh', 'busybox', 'grep', '-c', ':0:0:', '/etc/passwd'])).toBe('1');
  });

  it('--hostuser copies the host\'s entry of a user the image lacks; an unknown one fails the start (126)', async () => {
    // root is in the image: not copied again.
    expect(await env.bargeOk(['run', '--rm', '--hostuser', 'root', 'busybox', 'grep', '-c', '^root:', '/etc/passwd'])).toBe('1');
    const inImage = (await env.bargeOk(['run', '--rm', 'busybox', 'cat', '/etc/passwd'])).split('\n').map((l) => l.split(':')[0]);
    const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l !== '' && !l.startsWith('#') && !inImage.includes(l.split(':')[0]));
    if (line !== undefined) {
      expect(await env.bargeOk(['run', '--rm', '--hostuser', line.split(':')[0]!, 'busybox', 'tail', '-1', '/etc/passwd'])).toBe(line);
    }
    const r = await env.barge(['run', '--rm', '--hostuser', 'no-such-user-here', 'busybox', 'true']);
    expectCode(r, 126);
    expect(r.stderr).toMatch(/creating temporary passwd file for container [0-9a-f]{64}: user: unknown user no-such-user-here/);
  });
});

describe('kernel and process settings', () => {
  it('--sysctl sets namespaced ones, refuses the others and net.* on the host network', async () => {
    const out = await env.bargeOk(['run', '--rm', '--sysctl', 'net.ipv4.ip_forward=1', '--sysctl', 'kernel.shmmax=1000000', 'busybox', 'cat', '/proc/sys/net/ipv4/ip_forward', '/proc/sys/kernel/shmmax']);
    expect(out.split('\n')).toEqual(['1', '1000000']);
    const cases: [string[], string][] = [
      [['--sysctl', 'kernel.panic=1'], "sysctl 'kernel.panic' is not allowed"],
      [['--sysctl', 'vm.swappiness=1'], "sysctl 'vm.swappiness' is not allowed"],
      [['--sysctl', 'bogus'], 'bogus is invalid, sysctl values must be in the form of KEY=VALUE'],
      [['--network', 'host', '--sysctl', 'net.ipv4.ip_forward=1'], "sysctl net.ipv4.ip_forward=1 can't be set since Network Namespace set to host: invalid argument"],
    ];
    for (const [args, msg] of cases) {
      const r = await env.barge(['run', '--rm', ...args, 'busybox', 'true']);
      expectCode(r, 125, args);
      expect(r.stderr).toContain(`Error: ${msg}`);
    }
  });

  it('--oom-score-adj reaches the process and inspect; out of range is refused', async () => {
    expect(await env.bargeOk(['run', '--rm', '--oom-score-adj', '500', 'busybox', 'cat', '/proc/self/oom_score_adj'])).toBe('500');
    const id = await env.bargeOk(['create', '--oom-score-adj', '100', 'busybox', 'true']);
    expect(await env.bargeOk(['inspect', '--format', '{{.HostConfig.OomScoreAdj}}', id])).toBe('100');
    await env.bargeOk(['rm', id]);
    expectCode(await env.barge(['run', '--rm', '--oom-score-adj', '5000', 'busybox', 'true']), 125);
  });

  it('--personality LINUX32 (crun) makes uname report a 32-bit machine; an unknown one is refused', async () => {
    const m = await env.bargeOk(['--runtime', 'crun', 'run', '--rm', '--personality', 'LINUX32', 'busybox', 'uname', '-m']);
    expect(m).toMatch(/^(i686|armv8l|armv7l)$/);
    const r = await env.barge(['run', '--rm', '--personality', 'bogus', 'busybox', 'true']);
    expectCode(r, 125);
    expect(r.stderr).toContain('invalid personality "bogus"');
  });

  it('--pidfile gets the container\'s pid (foreground and detached) and inspect shows it', async () => {
    const fg = join(env.tmp, 'fg.pid');
    const pid = await env.bargeOk(['run', '--rm', '--pidfile', fg, 'busybox', 'sh', '-c', 'echo $$']);
    expect(pid).toBe('1');
    expect(readFileSync(fg, 'utf8').trim()).toMatch(/^\d+$/);
    const bg = join(env.tmp, 'bg.pid');
    const id = await env.bargeOk(['run', '-d', '--pidfile', bg, 'busybox', 'sleep', '100']);
    expect(await env.bargeOk(['inspect', '--format', '{{.PidFile}} {{.State.Pid}}', id])).toBe(`${bg} ${readFileSync(bg, 'utf8').trim()}`);
    await env.bargeOk(['rm', '-f', id]);
  });

  it('--timeout kills the container after N seconds (exit code -1, run exits 255), foreground and detached', async () => {
    const t0 = Date.now();
    expectCode(await env.barge(['run', '--rm', '--timeout', '1', 'busybox', 'sleep', '100']), 255);
    expect(Date.now() - t0).toBeLessThan(20_000);
    const id = await env.bargeOk(['run', '-d', '--timeout', '1', 'busybox', 'sleep', '100']);
    expect(await env.bargeOk(['wait', id])).toBe('-1');
    expect(await env.bargeOk(['inspect', '--format', '{{.State.ExitCode}} {{.Config.Timeout}}', id])).toBe('-1 1');
    await env.bargeOk(['rm', id]);
  });

  it('--preserve-fds passes descriptors 3… on; ones barge was not given are refused', async () => {
    const file = join(env.tmp, 'fd3');
    await writeFile(file, 'from fd 3\n');
    const sh = (cmd: string): ReturnType<typeof runCaptured> =>
      runCaptured('sh', ['-c', cmd], { env: { ...process.env, NO_COLOR: '1' }, label: cmd });
    const barge = `${BARGE_BIN} --root ${env.root} --runroot ${env.runroot}`;
    const fg = await sh(`${barge} run --rm --preserve-fds 1 busybox cat /proc/self/fd/3 3<${file}`);
    expect(fg.stdout, fg.stderr).toBe('from fd 3\n');
    const d = await sh(`${barge} run -d --preserve-fds 1 busybox cat /proc/self/fd/3 3<${file}`);
    expectCode(d, 0);
    expect(await env.bargeOk(['wait', d.stdout.trim()])).toBe('0');
    expect(await env.bargeOk(['logs', d.stdout.trim()])).toBe('from fd 3');
    await env.bargeOk(['rm', d.stdout.trim()]);
    const missing = await sh(`${barge} run --rm --preserve-fds 2 busybox true 3<${file}`);
    expectCode(missing, 125);
    expect(missing.stderr).toContain('Error: file descriptor 4 is not available - the preserve-fds option requires that file descriptors must be passed');
  });
});

describe('attach and image removal', () => {
  it('-a stdout or -a stderr shows only that stream (the log keeps both); a bad stream is refused', async () => {
    const cmd = ['sh', '-c', 'echo out; echo err >&2'];
    const out = await env.barge(['run', '--name', 'attach-out', '-a', 'stdout', 'busybox', ...cmd]);
    expectCode(out, 0);
    expect([out.stdout, out.stderr]).toEqual(['out\n', '']);
    expect((await env.barge(['logs', 'attach-out'])).stderr).toBe('err\n');
    await env.bargeOk(['rm', 'attach-out']);
    const err = await env.barge(['run', '--rm', '-a', 'stderr', 'busybox', ...cmd]);
    expect([err.stdout, err.stderr]).toEqual(['', 'err\n']);
    const bad = await env.barge(['run', '--rm', '-a', 'bogus', 'busybox', 'true']);
    expectCode(bad, 125);
    expect(bad.stderr).toContain('Error: invalid stream "bogus" for --attach - must be one of stdin, stdout, or stderr: invalid argument');
  });

  it('--rmi removes the container and then the image (only the name given, if it has others); one in use stays', async () => {
    const before = await env.bargeOk(['ps', '-aq']);
    await env.bargeOk(['tag', 'busybox', 'rmi-test:1']);
    await env.bargeOk(['run', '--rmi', 'rmi-test:1', 'true']);
    expectCode(await env.barge(['image', 'exists', 'rmi-test:1']), 1);
    expectCode(await env.barge(['image', 'exists', 'busybox']), 0);
    expect(await env.bargeOk(['ps', '-aq'])).toBe(before);

    const ctx = join(env.tmp, 'rmi-ctx');
    await mkdir(ctx, { recursive: true });
    await writeFile(join(ctx, 'Containerfile'), 'FROM busybox\nLABEL rmi=only\n');
    const only = await env.bargeOk(['build', '-q', '-t', 'rmi-only', ctx]);
    await env.bargeOk(['run', '--rmi', 'rmi-only', 'true']);
    expectCode(await env.barge(['image', 'exists', only]), 1);

    const keep = await env.bargeOk(['create', 'withvol', 'true']);
    const r = await env.barge(['run', '--rmi', 'withvol', 'true']);
    expectCode(r, 0);
    expect(r.stderr).toMatch(/in use by container/);
    expectCode(await env.barge(['image', 'exists', 'withvol']), 0);
    await env.bargeOk(['rm', '-v', keep]);
  });
});

describe('accepted and refused flags', () => {
  it('accepts what changes nothing for barge', async () => {
    for (const args of [
      ['--systemd=false'], ['--systemd', 'true'], ['--sdnotify', 'conmon'], ['--sdnotify=ignore'], ['--seccomp-policy', 'default'],
      ['--no-healthcheck'], ['--disable-content-trust'], ['--detach-keys', ''], ['--detach-keys', 'ctrl-a,x'], ['--pull', 'never'], ['-q'],
    ]) {
      expectCode(await env.barge(['run', '--rm', ...args, 'busybox', 'true']), 0, args);
    }
    const id = await env.bargeOk(['create', '--sdnotify', 'conmon', 'busybox', 'true']);
    expect(await env.bargeOk(['inspect', '--format', '{{.Config.sdNotifyMode}}', id])).toBe('conmon');
    await env.bargeOk(['rm', id]);
  });

  it('refuses what barge cannot do with the reason and 125, creating nothing', async () => {
    const before = await env.bargeOk(['ps', '-aq']);
    const cases: [string[], RegExp][] = [
      // Addresses and aliases are for bridge networks (test/containers/bridge.test.ts), not barge's default.
      [['--ip', '10.0.0.2'], /^Error: --ip, --mac-address and --network-alias need a bridge network/m],
      [['--ip6', 'fd00::2'], /^Error: --ip6: barge's bridge networks are IPv4 only/m],
      [['--mac-address', '92:d0:c6:0a:29:33'], /^Error: --ip, --mac-address and --network-alias need a bridge network/m],
      [['--network-alias', 'db'], /^Error: --ip, --mac-address and --network-alias need a bridge network/m],
      [['--pod', 'p'], /^Error: no pod with name or ID p found: no such pod/m],
      [['--pod-id-file', '/nonexistent/x'], /^Error: reading pod ID file: /m],
      [['--health-cmd', 'true', '--health-retries', '0'], /^Error: healthcheck-retries must be greater than 0/m],
      [['--secret', 's'], /^Error: no secret with name or id "s": no such secret/m],
      [['--requires', 'other'], /^Error: --requires: /m],
      [['--rootfs'], /^Error: --rootfs: /m],
      [['--chrootdirs', '/x'], /^Error: --chrootdirs: /m],
      [['--systemd', 'always'], /^Error: --systemd always: barge has no systemd mode/m],
      [['--systemd', 'bogus'], /--systemd values must be one of "true, false, always"/],
      [['--sdnotify', 'container'], /^Error: --sdnotify container: barge does not pass the notify socket/m],
      [['--sdnotify', 'bogus'], /invalid sdnotify value "bogus": must be container, conmon or ignore/],
      [['--seccomp-policy', 'image'], /^Error: --seccomp-policy image: /m],
      [['--seccomp-policy', 'bogus'], /invalid seccomp policy "bogus"/],
      [['--pull', 'bogus'], /^Error: unsupported pull policy "bogus"/m],
      [['--pull', 'true'], /^Error: unsupported pull policy "true"/m],
      [['--detach-keys', 'bogus'], /invalid detach keys/],
    ];
    for (const [args, msg] of cases) {
      for (const verb of ['run', 'create']) {
        const r = await env.barge([verb, ...(verb === 'run' ? ['--rm'] : []), ...args, 'busybox', 'true']);
        expectCode(r, 125, [verb, ...args]);
        expect(r.stderr).toMatch(msg);
      }
    }
    // An init as the command is what --systemd true would run in systemd mode.
    const init = await env.barge(['run', '--rm', '--systemd', 'true', 'busybox', '/sbin/init']);
    expectCode(init, 125);
    expect(init.stderr).toContain('(the command is /sbin/init)');
    expect(await env.bargeOk(['ps', '-aq'])).toBe(before);
  });
});
