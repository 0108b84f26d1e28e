// --isolation chroot (Buildah's): commands run without an OCI runtime, chrooted into the container,
// which is what works inside unprivileged CI containers. Run here as root, where the limits matter most.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BARGE_BIN, describeFailure, type Env } from '../helpers.ts';
import { busyboxEnv } from '../fixtures.ts';
import { isRoot } from './lib.ts';

const execFileP = promisify(execFile);

describe.runIf(isRoot)('chroot isolation', () => {
  let env: Env;
  let ctr: string;

  beforeAll(async () => {
    ({ env } = await busyboxEnv());
    ctr = await env.bargeOk(['from', '--isolation', 'chroot', 'busybox']);
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  it('/dev holds only harmless devices and a private devpts; /sys and /proc/sys are read-only', async () => {
    expect((await env.bargeOk(['run', ctr, '--', 'ls', '/dev'])).split('\n')).toEqual(
      ['fd', 'full', 'null', 'ptmx', 'pts', 'random', 'shm', 'stderr', 'stdin', 'stdout', 'tty', 'urandom', 'zero'],
    );
    const r = await env.barge(['run', ctr, '--', 'sh', '-c', 'echo 1 > /proc/sys/kernel/printk_ratelimit || echo sysctl refused; touch /sys/x || echo sys refused; echo x > /dev/null && echo null ok']);
    expect(r.stdout).toBe('sysctl refused\nsys refused\nnull ok\n');
  });

  it('the user, capabilities, working directory and network are the container\'s', async () => {
    expect(await env.bargeOk(['run', '--user', '33', '--workingdir', '/var/www', ctr, '--', 'sh', '-c', 'id -u; pwd; grep CapEff /proc/self/status'])).toBe('33\n/var/www\nCapEff:\t0000000000000000');
    // Podman's default set for root: no CAP_SYS_ADMIN (bit 21), CAP_CHOWN (bit 0) kept.
    const eff = BigInt(`0x${(await env.bargeOk(['run', ctr, '--', 'sh', '-c', 'grep CapEff /proc/self/status | cut -f2']))}`);
    expect([(eff >> 21n) & 1n, eff & 1n]).toEqual([0n, 1n]);
    expect(await env.bargeOk(['run', '--network', 'none', ctr, '--', 'sh', '-c', 'grep -c : /proc/net/dev'])).toBe('1');
  });

  it('exit codes: the command\'s own (128+N when signal N killed it), 127 when it does not exist, 126 when it cannot be run', async () => {
    const cases = [[['sh', '-c', 'exit 9'], 9], [['sh', '-c', 'kill -USR1 $$'], 138], [['no-such-command'], 127], [['/etc/passwd'], 126]] as const;
    for (const [cmd, code] of cases) {
      const r = await env.barge(['run', ctr, '--', ...cmd]);
      expect(r.code, describeFailure(['run', ctr, ...cmd], r)).toBe(code);
    }
  });

  it('a terminal barge is given stays the command\'s (its /dev/pts/N is there), as with Buildah', async () => {
    // script(1) gives barge a pty as stdin, stdout and stderr.
    const cmd = [BARGE_BIN, '--root', env.root, '--runroot', env.runroot, 'run', '-t', ctr, '--', 'sh', '-c', 'tty; [ -t 0 ] && [ -t 1 ] && echo both-tty']
      .map((w) => `'${w.replace(/'/g, "'\\''")}'`).join(' ');
    const { stdout } = await execFileP('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8' });
    expect(stdout).toMatch(/\/dev\/pts\/\d+\r?\nboth-tty/);
    // Without a terminal: a devpts of its own, and no tty.
    const r = await env.barge(['run', ctr, '--', 'sh', '-c', 'tty; ls /dev/pts']);
    expect(r.stdout).toBe('not a tty\nptmx\n');
  });

  it('changes land in the container and are committed', async () => {
    await env.bargeOk(['run', ctr, '--', 'sh', '-c', 'echo chrooted > /made && chown 33:33 /made']);
    await env.bargeOk(['commit', ctr, 'chrooted']);
    const c2 = await env.bargeOk(['from', 'chrooted']);
    expect(await env.bargeOk(['run', c2, '--', 'stat', '-c', '%u %n', '/made'])).toBe('33 /made');
  });
});
