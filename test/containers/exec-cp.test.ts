// exec, top, cp, diff and export on real containers (run -d busybox sleep under conmon).
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Env } from '../helpers.ts';
import { containerSuite, expectCode } from './lib.ts';

const execFileP = promisify(execFile);

const suite = containerSuite();
let env: Env;
beforeAll(() => {
  env = suite();
});

async function sleeper(name: string): Promise<void> {
  await env.bargeOk(['run', '-d', '--name', name, 'busybox', 'sleep', '600']);
}

describe('exec', () => {
  it('passes output and the exit code through; -e, -u 33 and -w apply', async () => {
    await sleeper('ex1');
    const args = ['exec', 'ex1', 'sh', '-c', 'echo out; echo err >&2; exit 3'];
    const r = await env.barge(args);
    expectCode(r, 3, args);
    expect(r.stdout).toBe('out\n');
    expect(r.stderr).toBe('err\n');
    const out = await env.bargeOk(['exec', '-e', 'FOO=bar', '-u', '33', '-w', '/tmp', 'ex1', 'sh', '-c', 'echo $FOO; id -u; id -g; pwd']);
    expect(out.split('\n')).toEqual(['bar', '33', '33', '/tmp']);
    // The container's own environment is kept.
    expect(await env.bargeOk(['exec', 'ex1', 'sh', '-c', 'echo $container $HOSTNAME'])).toMatch(/^podman [0-9a-f]{12}$/);
    // --env-file, and -i passes stdin.
    const envFile = join(env.tmp, 'exec.env');
    await writeFile(envFile, '# comment\nFROMFILE=yes\n');
    expect(await env.bargeOk(['exec', '--env-file', envFile, 'ex1', 'sh', '-c', 'echo $FROMFILE'])).toBe('yes');
    expect(await env.bargeOk(['exec', '-i', 'ex1', 'cat'], { input: 'piped\n' })).toBe('piped');
  });

  it('is 127 for a missing command and 126 for a file that cannot be executed', async () => {
    const missing = await env.barge(['exec', 'ex1', 'no-such-command']);
    expectCode(missing, 127);
    expect(missing.stderr).toMatch(/not found/);
    expectCode(await env.barge(['exec', 'ex1', '/etc/passwd']), 126);
  });

  it('-d runs the process in the background; top shows the container\'s processes', async () => {
    const session = await env.bargeOk(['exec', '-d', 'ex1', 'sleep', '417']);
    expect(session).toMatch(/^[0-9a-f]{64}$/);
    const top = await env.bargeOk(['top', 'ex1']);
    expect(top.split('\n')[0]).toMatch(/^USER +PID +PPID +%CPU +ELAPSED +TTY +TIME +COMMAND$/);
    expect(top).toMatch(/sleep 600$/m);
    expect(top).toMatch(/sleep 417$/m);
    // As psgo prints them: pids as the container sees them, Go durations, three-decimal %CPU.
    expect(top).toMatch(/^root +1 +0 +\d+\.\d{3} +[\d.]+(ms|s) +\? +0s +sleep 600$/m);
    expect(top).toMatch(/^root +\d+ +0 +.* sleep 417$/m);
    const custom = await env.bargeOk(['top', 'ex1', 'pid,args', 'capeff']);
    expect(custom.split('\n')[0]).toMatch(/^PID +COMMAND +EFFECTIVE CAPS$/);
    expect(custom).toMatch(/^1 +sleep 600 +CHOWN,DAC_OVERRIDE,FOWNER,FSETID,KILL,NET_BIND_SERVICE,SETFCAP,SETGID,SETPCAP,SETUID,SYS_CHROOT$/m);
    const bad = await env.barge(['top', 'ex1', 'pid', 'bogus']);
    expectCode(bad, 125);
    expect(bad.stderr).toContain('unknown descriptor: bogus');
  });

  it('into a stopped container fails with Podman\'s 255', async () => {
    await sleeper('ex2');
    await env.bargeOk(['stop', '-t', '0', 'ex2']);
    const r = await env.barge(['exec', 'ex2', 'true']);
    expectCode(r, 255);
    expect(r.stderr).toBe('Error: can only create exec sessions on running containers: container state improper\n');
    const top = await env.barge(['top', 'ex2']);
    expectCode(top, 125);
    expect(top.stderr).toBe('Error: top can only be used on running containers\n');
    expectCode(await env.barge(['exec', 'no-such-container', 'true']), 125);
  });
});

describe('cp', () => {
  it('copies files and directories into and out of a running container', async () => {
    await sleeper('cp1');
    const host = join(env.tmp, 'cp');
    await mkdir(join(host, 'dir', 'sub'), { recursive: true });
    await writeFile(join(host, 'file.txt'), 'hello\n');
    await writeFile(join(host, 'dir', 'sub', 'inner'), 'inner\n');
    await env.bargeOk(['cp', join(host, 'file.txt'), 'cp1:/tmp/']);
    await env.bargeOk(['cp', join(host, 'file.txt'), 'cp1:/tmp/renamed']);
    await env.bargeOk(['cp', join(host, 'dir'), 'cp1:/srv']);
    expect(await env.bargeOk(['exec', 'cp1', 'cat', '/tmp/file.txt', '/tmp/renamed', '/srv/dir/sub/inner'])).toBe('hello\nhello\ninner');

    await env.bargeOk(['exec', 'cp1', 'sh', '-c', 'mkdir -p /data/a && echo made > /data/a/f && echo top > /data/g']);
    await env.bargeOk(['cp', 'cp1:/data', join(host, 'out')]);
    expect(await readFile(join(host, 'out', 'a', 'f'), 'utf8')).toBe('made\n');
    expect(await readFile(join(host, 'out', 'g'), 'utf8')).toBe('top\n');
    await env.bargeOk(['cp', 'cp1:/data/g', join(host, 'g-copy')]);
    expect(await readFile(join(host, 'g-copy'), 'utf8')).toBe('top\n');
    const missing = await env.barge(['cp', 'cp1:/no/such/file', join(host, 'x')]);
    expectCode(missing, 125);
  });

  it('resolves symlinks inside the container\'s root, never the host\'s', async () => {
    await env.bargeOk(['exec', 'cp1', 'sh', '-c', 'ln -s / /escape && echo "ctr-marker:x:4242:4242::/:/bin/false" >> /etc/passwd']);
    const dest = join(env.tmp, 'passwd-out');
    await env.bargeOk(['cp', 'cp1:/escape/etc/passwd', dest]);
    const got = await readFile(dest, 'utf8');
    expect(got).toContain('ctr-marker:x:4242');
    expect(got).toBe(await env.bargeOk(['exec', 'cp1', 'cat', '/etc/passwd']).then((s) => `${s}\n`));
    expect(got).not.toBe(readFileSync('/etc/passwd', 'utf8'));
    // Copying in through the symlink lands inside the container, not in the host's /tmp.
    const name = `barge-cp-escape-${process.pid}`;
    await writeFile(join(env.tmp, name), 'in\n');
    await env.bargeOk(['cp', join(env.tmp, name), `cp1:/escape/tmp/${name}`]);
    expect(await env.bargeOk(['exec', 'cp1', 'cat', `/tmp/${name}`])).toBe('in');
    await expect(readFile(join('/tmp', name), 'utf8')).rejects.toThrow();
  });

  it('works on a stopped container', async () => {
    await env.bargeOk(['stop', '-t', '0', 'cp1']);
    const dest = join(env.tmp, 'from-stopped');
    await env.bargeOk(['cp', 'cp1:/tmp/renamed', dest]);
    expect(await readFile(dest, 'utf8')).toBe('hello\n');
    await env.bargeOk(['cp', dest, 'cp1:/tmp/while-stopped']);
    await env.bargeOk(['start', 'cp1']);
    expect(await env.bargeOk(['exec', 'cp1', 'cat', '/tmp/while-stopped'])).toBe('hello');
  });
});

describe('diff and export', () => {
  it('diff shows A, C and D from the container\'s upper layer', async () => {
    await sleeper('df1');
    await env.bargeOk(['exec', 'df1', 'sh', '-c', 'echo new > /newfile && rm /bin/ls && echo x >> /etc/group']);
    const lines = (await env.bargeOk(['diff', 'df1'])).split('\n');
    expect(lines).toContain('A /newfile');
    expect(lines).toContain('D /bin/ls');
    expect(lines).toContain('C /etc/group');
    expect(lines).toContain('C /etc');
    expect(lines).not.toContain('C /bin/sh');
    const json = JSON.parse(await env.bargeOk(['diff', '--format', 'json', 'df1'])) as { added: string[]; changed: string[]; deleted: string[] };
    expect(json.added).toContain('/newfile');
    expect(json.deleted).toContain('/bin/ls');
    expect(json.changed).toContain('/etc/group');
  });

  it('export -o writes a tar of the whole root filesystem', async () => {
    const out = join(env.tmp, 'df1.tar');
    await env.bargeOk(['export', '-o', out, 'df1']);
    const { stdout } = await execFileP('tar', ['-tf', out], { maxBuffer: 16 * 1024 * 1024 });
    const names = stdout.split('\n').map((n) => n.replace(/^\.\//, '').replace(/\/$/, ''));
    expect(names).toContain('newfile');
    expect(names).toContain('bin/busybox');
    expect(names).toContain('etc/passwd');
    expect(names).not.toContain('bin/ls');
  });
});
