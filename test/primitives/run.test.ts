// run: exit codes, persistence, user, working directory, environment, mounts, network,
// capabilities and terminals.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BARGE_BIN, type Env } from '../helpers.ts';
import { busyboxEnv } from '../fixtures.ts';
import { capEff, expectCode, expectError, from, sh } from './lib.ts';

let env: Env;
let ctr: string;
beforeAll(async () => {
  ({ env } = await busyboxEnv());
  ctr = await from(env);
});
afterAll(async () => {
  await env?.cleanup();
});

const CAP_SYS_ADMIN = 21n;
const CAP_CHOWN = 0n;
const CAP_NET_RAW = 13n;


describe('exit codes', () => {
  it('is the command\'s own exit code', async () => {
    expectCode(await env.barge(['run', ctr, '--', 'sh', '-c', 'exit 7']), 7);
    expectCode(await env.barge(['run', ctr, '--', 'true']), 0);
    expectCode(await env.barge(['run', ctr, '--', 'false']), 1);
  });

  it('is 127 for a command that does not exist', async () => {
    const r = await env.barge(['run', ctr, '--', 'no-such-command']);
    expectCode(r, 127);
    expect(r.stderr).toMatch(/^Error: .*no-such-command/m);
    expectCode(await env.barge(['run', ctr, '--', '/no/such/path']), 127);
  });

  it('is 126 for a file that is not executable', async () => {
    const r = await env.barge(['run', ctr, '--', '/etc/passwd']);
    expectCode(r, 126);
    expect(r.stderr).toMatch(/^Error: .*\/etc\/passwd/m);
  });

  it('is 125 for barge\'s own errors (no command, unknown container)', async () => {
    await expectError(env, ['run', ctr]);
    await expectError(env, ['run', 'no-such-container', '--', 'true']);
  });

  it('the command\'s own flags need no -- (Buildah stops parsing options at the command)', async () => {
    const args = ['run', ctr, 'sh', '-c', 'exit 4'];
    expectCode(await env.barge(args), 4, args);
    const ls = ['run', ctr, 'ls', '-d', '/etc'];
    const r = await env.barge(ls);
    expectCode(r, 0, ls);
    expect(r.stdout).toBe('/etc\n');
  });

  it('passes stdout and stderr through separately', async () => {
    const r = await env.barge(['run', ctr, '--', 'sh', '-c', 'echo out; echo err >&2']);
    expectCode(r, 0);
    expect(r.stdout).toBe('out\n');
    expect(r.stderr).toBe('err\n');
  });
});

describe('the container keeps its changes', () => {
  it('a second run sees what the first wrote and deleted', async () => {
    const c = await from(env);
    await sh(env, c, 'echo kept > /kept && rm /etc/group && mkdir -p /var/state');
    expect(await sh(env, c, 'cat /kept; test -e /etc/group || echo group-gone; test -d /var/state && echo dir-kept')).toBe('kept\ngroup-gone\ndir-kept');
  });

  it('containers from one image do not see each other\'s changes', async () => {
    const a = await from(env);
    const b = await from(env);
    await sh(env, a, 'echo only-a > /mine');
    expect(await sh(env, b, 'test -e /mine && echo leaked || echo isolated')).toBe('isolated');
  });
});

describe('environment, user and working directory', () => {
  let c: string;
  beforeAll(async () => {
    c = await from(env);
    await env.bargeOk(['config', '--env', 'FROM_CONFIG=cfg', '--env', 'OVERRIDDEN=cfg', c]);
  });

  it('sees the image config\'s environment and a default PATH', async () => {
    expect(await sh(env, c, 'echo "$FROM_CONFIG"; echo "$PATH"')).toBe('cfg\n/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
  });

  it('-e and --env add and override variables for this run only', async () => {
    expect(await sh(env, c, 'echo "$OVERRIDDEN $EXTRA $SECOND"', ['-e', 'OVERRIDDEN=flag', '--env', 'EXTRA=x', '-e', 'SECOND=2'])).toBe('flag x 2');
    expect(await sh(env, c, 'echo "$OVERRIDDEN${EXTRA:-unset}"')).toBe('cfgunset');
  });

  it('runs as root by default, with HOME from /etc/passwd', async () => {
    expect(await sh(env, c, 'id -u; id -g; echo $HOME')).toBe('0\n0\n/root');
  });

  it('--user UID runs as that uid with its passwd group', async () => {
    expect(await sh(env, c, 'id -u; id -g; echo $HOME', ['--user', '33'])).toBe('33\n33\n/var/www');
  });

  it('--user NAME:GID and the config\'s user are honoured', async () => {
    expect(await sh(env, c, 'id -u; id -g', ['--user', 'www-data:100'])).toBe('33\n100');
    const u = await from(env);
    await env.bargeOk(['config', '--user', '2:2', u]);
    expect(await sh(env, u, 'id -u; id -g')).toBe('2\n2');
    expect(await sh(env, u, 'id -u', ['--user', '0'])).toBe('0');
  });

  it('a file written as --user 33 is owned by 33', async () => {
    await sh(env, c, 'touch /tmp/by-www', ['--user', '33']);
    expect(await env.bargeOk(['run', c, '--', 'stat', '-c', '%u:%g', '/tmp/by-www'])).toBe('33:33');
  });

  it('--workingdir sets the directory, creating it; config --workingdir is the default', async () => {
    expect(await sh(env, c, 'pwd', ['--workingdir', '/made/for/run'])).toBe('/made/for/run');
    expect(await sh(env, c, 'pwd')).toBe('/');
    const w = await from(env);
    await env.bargeOk(['config', '--workingdir', '/srv', w]);
    expect(await sh(env, w, 'pwd')).toBe('/srv');
    expect(await sh(env, w, 'pwd', ['--workingdir', '/tmp'])).toBe('/tmp');
  });

  it('--hostname sets the hostname', async () => {
    expect(await sh(env, c, 'hostname', ['--hostname', 'built-here', '--network', 'none'])).toBe('built-here');
  });
});

describe('volumes and mounts', () => {
  let vol: string;
  beforeAll(async () => {
    vol = join(env.tmp, 'vol');
    await mkdir(vol);
    await writeFile(join(vol, 'from-host'), 'host data\n');
  });

  it('--volume shows host files and writes land on the host', async () => {
    expect(await sh(env, ctr, 'cat /vol/from-host && echo written > /vol/from-ctr', ['--volume', `${vol}:/vol`])).toBe('host data');
    expect(await readFile(join(vol, 'from-ctr'), 'utf8')).toBe('written\n');
  });

  it('-v is the short form of --volume', async () => {
    const args = ['run', '-v', `${vol}:/short`, ctr, '--', 'cat', '/short/from-host'];
    const r = await env.barge(args);
    expectCode(r, 0, args);
    expect(r.stdout).toBe('host data\n');
  });

  it('a :ro volume cannot be written', async () => {
    const r = await env.barge(['run', '--volume', `${vol}:/ro:ro`, ctr, '--', 'sh', '-c', 'echo x > /ro/nope']);
    expect(r.code).not.toBe(0);
    expect(readdirSync(vol)).not.toContain('nope');
  });

  it('volume contents are not written into the container', async () => {
    expect(await sh(env, ctr, 'ls -A /vol 2>/dev/null | wc -l')).toBe('0');
  });

  it('--mount type=bind binds a host directory, ro honoured', async () => {
    expect(await sh(env, ctr, 'cat /b/from-host', ['--mount', `type=bind,src=${vol},dst=/b`])).toBe('host data');
    const r = await env.barge(['run', '--mount', `type=bind,source=${vol},target=/b2,ro`, ctr, '--', 'sh', '-c', 'echo x > /b2/nope']);
    expect(r.code).not.toBe(0);
    expect(readdirSync(vol)).not.toContain('nope');
  });

  it('--mount type=tmpfs mounts a tmpfs whose files vanish after the run', async () => {
    const out = await sh(env, ctr, 'grep " /scratch " /proc/mounts | cut -d" " -f3; echo temp > /scratch/f', ['--mount', 'type=tmpfs,destination=/scratch']);
    expect(out).toBe('tmpfs');
    expect(await sh(env, ctr, 'test -e /scratch/f && echo kept || echo gone')).toBe('gone');
  });

  it('an invalid volume or mount exits 125', async () => {
    await expectError(env, ['run', '--volume', 'relative-only', ctr, '--', 'true']);
    await expectError(env, ['run', '--mount', 'type=bind,dst=/x', ctr, '--', 'true']);
    await expectError(env, ['run', '--mount', 'type=nfs,dst=/x', ctr, '--', 'true']);
  });
});

describe('network', () => {
  it('--network none leaves only lo', async () => {
    expect(await sh(env, ctr, 'ls /sys/class/net', ['--network', 'none'])).toBe('lo');
  });

  it('--network host shows the host\'s interfaces', async () => {
    const host = readdirSync('/sys/class/net').sort();
    expect(host.length).toBeGreaterThan(1);
    expect((await sh(env, ctr, 'ls /sys/class/net', ['--network', 'host'])).split(/\s+/).sort()).toEqual(host);
  });

  it('an unknown network mode exits 125', async () => {
    await expectError(env, ['run', '--network', 'bridge-of-sighs', ctr, '--', 'true']);
  });
});

describe('capabilities', () => {
  it('--cap-drop ALL leaves no effective capabilities', async () => {
    expect(capEff(await sh(env, ctr, 'cat /proc/self/status', ['--cap-drop', 'ALL']))).toBe(0n);
  });

  it('the default set lacks CAP_SYS_ADMIN; --cap-add adds it, --cap-drop removes one', async () => {
    const dflt = capEff(await sh(env, ctr, 'cat /proc/self/status'));
    expect(dflt & (1n << CAP_SYS_ADMIN)).toBe(0n);
    // containers.conf's default set: CHOWN yes, NET_RAW no (dropped from the defaults in 2022).
    expect(dflt & (1n << CAP_CHOWN)).not.toBe(0n);
    expect(dflt & (1n << CAP_NET_RAW)).toBe(0n);
    const added = capEff(await sh(env, ctr, 'cat /proc/self/status', ['--cap-add', 'SYS_ADMIN', '--cap-add', 'CAP_NET_RAW']));
    expect(added).toBe(dflt | (1n << CAP_SYS_ADMIN) | (1n << CAP_NET_RAW));
    const dropped = capEff(await sh(env, ctr, 'cat /proc/self/status', ['--cap-drop', 'CAP_CHOWN']));
    expect(dropped).toBe(dflt & ~(1n << CAP_CHOWN));
    expect(await env.barge(['run', '--cap-drop', 'CHOWN', ctr, '--', 'chown', '33', '/tmp'])).toMatchObject({ code: 1 });
  });
});

describe('terminal', () => {
  it('-t gives the command a terminal', () => {
    // script(1) provides the pseudo-terminal a CI job lacks.
    const cmd = [BARGE_BIN, '--root', env.root, '--runroot', env.runroot, 'run', '-t', ctr, '--', 'sh', '-c', 'tty; exit 3'].join(' ');
    const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(3);
    expect(r.stdout).toMatch(/\/dev\/pts\/\d+/);
  });

  it('without -t the command has no terminal', async () => {
    const r = await env.barge(['run', ctr, '--', 'sh', '-c', 'tty']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('not a tty\n');
  });
});

describe('BUILDAH_ISOLATION', () => {
  it('is the default --isolation of from, run and build, as in Buildah; an invalid value is refused', async () => {
    const chroot = { env: { BUILDAH_ISOLATION: 'chroot' } };
    const c = await env.bargeOk(['from', '-q', 'busybox'], chroot);
    expect(await env.bargeOk(['inspect', '--format', '{{.Isolation}}', c])).toBe('chroot');
    // A chroot run shares barge's pid namespace; an OCI run's shell is pid 1 of its own.
    expect(Number(await sh(env, c, 'echo $$'))).toBeGreaterThan(1);
    expect(await env.bargeOk(['run', c, 'sh', '-c', 'echo $$'], { env: { BUILDAH_ISOLATION: 'oci' } })).toBe('1');
    await env.bargeOk(['rm', c]);

    const dir = join(env.tmp, 'iso-build');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'Containerfile'), 'FROM busybox\nRUN echo $$ > /pid\n');
    await env.bargeOk(['build', '-q', '-t', 'iso', dir], chroot);
    expect(Number(await env.bargeOk(['run', '--rm', 'iso', 'cat', '/pid']))).toBeGreaterThan(1);

    const bad = await env.barge(['from', 'busybox'], { env: { BUILDAH_ISOLATION: 'vm' } });
    expectCode(bad, 125);
    expect(bad.stderr).toContain("from env 'BUILDAH_ISOLATION' is invalid");
  });
});

describe('the run\'s host name and terminal, as Buildah\'s', () => {
  it('/etc/hostname holds the name the run\'s own hostname has, on the host network too; -t without a terminal runs without one', async () => {
    const [file, uts] = (await sh(env, ctr, 'cat /etc/hostname; hostname', ['--network', 'host'])).split('\n');
    expect(file).toBe(uts);
    expect(uts).toBe((await env.bargeOk(['inspect', '--format', '{{.ContainerID}}', ctr])).slice(0, 12));
    // barge's stdin here is no terminal: -t is dropped rather than failing on /dev/tty.
    expect(await env.bargeOk(['run', '-t', ctr, '--', 'sh', '-c', 'test -t 0 || echo no-tty'])).toBe('no-tty');
  });
});

describe('groups, as Buildah\'s run', () => {
  it('lists the primary group among the groups, root\'s too', async () => {
    expect(await sh(env, ctr, 'id')).toBe('uid=0(root) gid=0(root) groups=0(root)');
    expect(await env.bargeOk(['run', '--user', 'nobody', ctr, '--', 'id'])).toBe('uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)');
  });
});
