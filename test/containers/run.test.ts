// Podman-style `run IMAGE` in the foreground: exit codes, output, environment, user, working
// directory, --rm, and the dispatch that keeps Buildah's `run CONTAINER -- CMD` working.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOTLESS, type Env } from '../helpers.ts';
import { containerSuite, expectCode } from './lib.ts';

const suite = containerSuite();
let env: Env;
beforeAll(() => {
  env = suite();
});

describe('run IMAGE (foreground)', () => {
  it('passes the container\'s output and exit code through', async () => {
    const args = ['run', '--rm', 'busybox', 'sh', '-c', 'echo out; echo err >&2; exit 3'];
    const r = await env.barge(args);
    expectCode(r, 3, args);
    expect(r.stdout).toBe('out\n');
    expect(r.stderr).toBe('err\n');
    expectCode(await env.barge(['run', '--rm', 'busybox', 'true']), 0);
  });

  it('is 127 for a missing command and 126 for a file that cannot be executed', async () => {
    const missing = await env.barge(['run', '--rm', 'busybox', 'no-such-command']);
    expectCode(missing, 127);
    expect(missing.stderr).toMatch(/^Error: .*no-such-command/m);
    const denied = await env.barge(['run', '--rm', 'busybox', '/etc/passwd']);
    expectCode(denied, 126);
    expect(denied.stderr).toMatch(/^Error: .*\/etc\/passwd/m);
  });

  it('is 125 for an unknown image', async () => {
    const r = await env.barge(['run', '--rm', 'no-such-image', 'true']);
    expectCode(r, 125);
    expect(r.stderr).toMatch(/^Error: .*no-such-image/m);
  });

  it('sets -e, --env-file, -w and -u', async () => {
    const envFile = join(env.tmp, 'env.list');
    await writeFile(envFile, '# comment\nFROMFILE=yes\n\nBOTH=file\n');
    const out = await env.bargeOk([
      'run', '--rm', '-e', 'FOO=bar', '--env-file', envFile, '-e', 'BOTH=flag', '-w', '/tmp/work', '-u', '33',
      'busybox', 'sh', '-c', 'echo "$FOO $FROMFILE $BOTH $(pwd) $(id -u) $HOSTNAME $container"',
    ]);
    const [foo, fromFile, both, cwd, uid, hostname, container] = out.split(' ');
    expect([foo, fromFile, both, cwd, uid]).toEqual(['bar', 'yes', 'flag', '/tmp/work', '33']);
    expect(hostname).toMatch(/^[0-9a-f]{12}$/);
    expect(container).toBe('podman');
  });

  it('--entrypoint replaces the image\'s entrypoint, --hostname and --read-only apply', async () => {
    expect(await env.bargeOk(['run', '--rm', '--entrypoint', 'echo', 'busybox', 'hello', 'there'])).toBe('hello there');
    expect(await env.bargeOk(['run', '--rm', '--hostname', 'box1', 'busybox', 'hostname'])).toBe('box1');
    const r = await env.barge(['run', '--rm', '--read-only', 'busybox', 'sh', '-c', 'touch /tmp/ok && touch /etc/nope']);
    expectCode(r, 1);
    expect(r.stderr).toMatch(/Read-only file system/);
  });

  it('uses Podman\'s capability set and no network with --network none', async () => {
    const caps = await env.bargeOk(['run', '--rm', '--network', 'none', 'busybox', 'sh', '-c', 'grep CapEff /proc/self/status; ls /sys/class/net']);
    expect(caps).toMatch(/CapEff:\s*00000000800405fb/);
    expect(caps.split('\n').slice(1)).toEqual(['lo']);
  });

  it('filters syscalls with seccomp as Podman does (swapoff is refused even with CAP_SYS_ADMIN), unless seccomp=unconfined', async () => {
    // swapoff of a file that is no swap: EINVAL when the kernel is asked, EPERM when seccomp refuses.
    const script = ['sh', '-c', 'grep Seccomp: /proc/self/status; swapoff /etc/passwd 2>&1; true'];
    const filtered = await env.bargeOk(['run', '--rm', '--cap-add', 'SYS_ADMIN', 'busybox', ...script]);
    expect(filtered).toMatch(/^Seccomp:\s+2$/m);
    expect(filtered).toMatch(/Operation not permitted/);
    const unconfined = await env.bargeOk(['run', '--rm', '--cap-add', 'SYS_ADMIN', '--security-opt', 'seccomp=unconfined', 'busybox', ...script]);
    expect(unconfined).toMatch(/^Seccomp:\s+0$/m);
    // Rootless, CAP_SYS_ADMIN is the container's user namespace's, and swapoff needs the host's: the kernel refuses too.
    expect(unconfined).toMatch(ROOTLESS ? /Operation not permitted/ : /Invalid argument/);
  });

  it('--rm removes the container; without it ps -a shows it Exited with its code', async () => {
    await env.bargeOk(['run', '--rm', '--name', 'gone', 'busybox', 'true']);
    expect((await env.barge(['container', 'inspect', 'gone'])).code).toBe(125);
    const r = await env.barge(['run', '--name', 'kept', 'busybox', 'sh', '-c', 'echo kept-output; exit 4']);
    expectCode(r, 4);
    const ps = await env.bargeOk(['ps', '-a', '--filter', 'name=^kept$', '--format', '{{.Names}} {{.Status}}']);
    expect(ps).toMatch(/^kept Exited \(4\) .* ago$/);
    // A foreground run's output is in the log too.
    expect(await env.bargeOk(['logs', 'kept'])).toBe('kept-output');
    const j = JSON.parse(await env.bargeOk(['container', 'inspect', 'kept'])) as { State: { ExitCode: number; Status: string } }[];
    expect(j[0]!.State).toMatchObject({ ExitCode: 4, Status: 'exited' });
    await env.bargeOk(['rm', 'kept']);
  });

  it('--rm mounts the rootfs volatile (its changes are thrown away, so nothing syncs them), as Podman does; a kept container not', async () => {
    const rootOptions = ['sh', '-c', "grep ' / / ' /proc/self/mountinfo"];
    expect(await env.bargeOk(['run', '--rm', 'busybox', ...rootOptions])).toMatch(/[ ,](fsync=)?volatile(,|$)/);
    expect(await env.bargeOk(['run', '--name', 'synced', 'busybox', ...rootOptions])).not.toMatch(/volatile/);
    await env.bargeOk(['rm', 'synced']);
  });

  it('`run` on a working container is still Buildah\'s run', async () => {
    const wc = await env.bargeOk(['from', 'busybox']);
    await env.bargeOk(['run', wc, '--', 'sh', '-c', 'echo persisted > /marker']);
    expect(await env.bargeOk(['run', wc, 'cat', '/marker'])).toBe('persisted');
    expectCode(await env.barge(['run', wc, '--', 'sh', '-c', 'exit 6']), 6);
    // The image itself is unchanged: a Podman-style run does not see the marker.
    expectCode(await env.barge(['run', '--rm', 'busybox', 'test', '-e', '/marker']), 1);
    await env.bargeOk(['rm', wc]);
  });
});
