import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crunUsable, findRuntime, runContainer, type RuntimeInfo } from '../../src/runtime/oci-runtime.ts';
import {
  DEFAULT_CAPABILITIES,
  buildSpec,
  capabilityNumber,
  hardLimits,
  mergeCapabilities,
  serializeSpec,
  type SpecOptions,
} from '../../src/runtime/spec.ts';
import { resolveUser } from '../../src/runtime/user.ts';
import { resolveInRoot } from '../../src/store/secure-path.ts';

const APPLETS = ['sh', 'echo', 'cat', 'id', 'ls', 'true', 'false', 'sleep', 'hostname', 'wc', 'grep', 'touch', 'pwd', 'cut'];

let tmp: string;
let rootfs: string;
let seq = 0;

function which(name: string): string | undefined {
  for (const dir of [...(process.env['PATH'] ?? '').split(':'), '/usr/sbin', '/sbin']) {
    const p = path.join(dir, name);
    if (dir !== '' && existsSync(p)) return p;
  }
  return undefined;
}

async function makeRootfs(dir: string): Promise<void> {
  for (const d of ['bin', 'etc', 'tmp', 'var/www', 'root']) await mkdir(path.join(dir, d), { recursive: true });
  await chmod(path.join(dir, 'tmp'), 0o1777);
  await copyFile('/bin/busybox', path.join(dir, 'bin/busybox'));
  await chmod(path.join(dir, 'bin/busybox'), 0o755);
  for (const a of APPLETS) await symlink('busybox', path.join(dir, 'bin', a));
  await writeFile(
    path.join(dir, 'etc/passwd'),
    'root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www-data:/var/www:/bin/sh\n',
  );
  await writeFile(path.join(dir, 'etc/group'), 'root:x:0:\nwww-data:x:33:\nadm:x:4:www-data\nstaff:x:50:root,www-data\n');
  await writeFile(path.join(dir, 'bin/noexec'), '#!/bin/sh\necho hi\n', { mode: 0o644 });
  await writeFile(path.join(dir, 'bin/badinterp'), '#!/nonexistent/interp\n', { mode: 0o755 });
}

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function collector(): { stream: Writable; text: () => string } {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk);
      cb();
    },
  });
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

type Overrides = Partial<SpecOptions> & { input?: string };

async function run(rt: RuntimeInfo, args: string[], over: Overrides = {}, onStdout?: (s: string) => void): Promise<Result> {
  const { input, ...specOver } = over;
  const spec = buildSpec({ rootfs, args, env: [], cwd: '/', uid: 0, gid: 0, network: 'none', ...specOver });
  const id = `barge-test-${process.pid}-${++seq}`;
  const out = collector();
  const err = collector();
  const stdout = onStdout
    ? new Writable({
        write(chunk: Buffer, enc, cb) {
          onStdout(chunk.toString());
          out.stream.write(chunk, enc, cb);
        },
      })
    : out.stream;
  const stateRoot = path.join(tmp, 'state-' + rt.name);
  const code = await runContainer({
    runtime: rt,
    bundleDir: path.join(tmp, 'bundles', id),
    spec,
    id,
    stateRoot,
    stdio: 'pipe',
    stdout,
    stderr: err.stream,
    ...(input !== undefined ? { input } : {}),
  });
  // Nothing may be left in the runtime's state after a run.
  expect(existsSync(path.join(stateRoot, id))).toBe(false);
  return { code, stdout: out.text(), stderr: err.text() };
}

function capMask(caps: readonly string[]): bigint {
  return caps.reduce((m, c) => m | (1n << BigInt(capabilityNumber(c))), 0n);
}

function capEff(status: string): bigint {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
  if (!m) throw new Error(`no CapEff in ${status}`);
  return BigInt('0x' + m[1]);
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'barge-rt-'));
  // The user-namespace test runs as an unprivileged host uid, which must be able to reach the rootfs.
  await chmod(tmp, 0o755);
  rootfs = path.join(tmp, 'rootfs');
  await makeRootfs(rootfs);
});

afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

const runtimes: RuntimeInfo[] = [];
const runcPath = which('runc');
if (runcPath) runtimes.push({ name: 'runc', path: runcPath });
const crunPath = which('crun');
if (crunPath && crunUsable()) runtimes.push({ name: 'crun', path: crunPath });

describe('findRuntime', () => {
  it('prefers crun when it is usable, else runc', () => {
    const rt = findRuntime();
    expect(rt.name).toBe(crunPath && crunUsable() ? 'crun' : 'runc');
    expect(path.isAbsolute(rt.path)).toBe(true);
  });
  it.runIf(runcPath)('accepts a name or a path', () => {
    expect(findRuntime('runc').path).toBe(runcPath);
    expect(findRuntime(runcPath!)).toEqual({ name: 'runc', path: runcPath });
  });
  it('fails clearly for an unknown runtime', () => {
    expect(() => findRuntime('no-such-runtime')).toThrow(/"no-such-runtime" not found/);
    expect(() => findRuntime('/nonexistent/runc')).toThrow(/not an executable/);
  });
});

describe('buildSpec', () => {
  const base: SpecOptions = { rootfs: '/r', args: ['sh'], env: [], cwd: '/', uid: 0, gid: 0, network: 'private' };

  it('never asks for rlimits above our own hard limits', () => {
    const hard = hardLimits();
    const spec = buildSpec({ ...base, rlimits: [{ type: 'nofile', soft: 5_000_000, hard: 5_000_000 }, { type: 'RLIMIT_CORE', soft: -1, hard: -1 }] });
    const nofile = spec.process.rlimits.find((r) => r.type === 'RLIMIT_NOFILE')!;
    expect(nofile.hard).toBe(Math.min(5_000_000, hard.get('RLIMIT_NOFILE') ?? Infinity));
    expect(nofile.soft).toBeLessThanOrEqual(nofile.hard);
    const nproc = spec.process.rlimits.find((r) => r.type === 'RLIMIT_NPROC')!;
    expect(nproc.hard).toBe(Math.min(1_048_576, hard.get('RLIMIT_NPROC') ?? Infinity));
    for (const r of spec.process.rlimits) expect(r.hard).toBeLessThanOrEqual(hard.get(r.type) ?? Infinity);
  });

  it('writes unlimited rlimits as RLIM_INFINITY', () => {
    const spec = buildSpec(base);
    spec.process.rlimits.push({ type: 'RLIMIT_CORE', soft: Infinity, hard: Infinity });
    const json = serializeSpec(spec);
    expect(json).toContain('"soft": 18446744073709551615');
    expect(json).not.toContain('null');
  });

  it('merges capabilities like Podman', () => {
    expect(mergeCapabilities()).toEqual([...DEFAULT_CAPABILITIES].sort((a, b) => capabilityNumber(a) - capabilityNumber(b)));
    expect(mergeCapabilities([], ['ALL'])).toEqual([]);
    expect(mergeCapabilities(['net_admin'], ['ALL'])).toEqual(['CAP_NET_ADMIN']);
    expect(mergeCapabilities(['NET_ADMIN'], ['chown'])).toContain('CAP_NET_ADMIN');
    expect(mergeCapabilities(['NET_ADMIN'], ['chown'])).not.toContain('CAP_CHOWN');
    expect(mergeCapabilities(['ALL'])).toContain('CAP_SYS_ADMIN');
    expect(() => mergeCapabilities(['CAP_BOGUS'])).toThrow(/unknown capability/);
  });

  it('gives a non-root user only explicitly added capabilities', () => {
    const spec = buildSpec({ ...base, uid: 33, gid: 33, capAdd: ['NET_RAW'] });
    expect(spec.process.capabilities.bounding).toContain('CAP_CHOWN');
    expect(spec.process.capabilities.effective).toEqual(['CAP_NET_RAW']);
    expect(spec.process.capabilities.ambient).toEqual(['CAP_NET_RAW']);
  });

  it('uses host namespaces when asked and replaces default mounts', () => {
    const spec = buildSpec({
      ...base,
      network: 'host',
      pidNamespace: 'host',
      utsNamespace: 'host',
      mounts: [{ destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['size=1g'] }],
    });
    const ns = spec.linux.namespaces.map((n) => n.type);
    expect(ns).not.toContain('network');
    expect(ns).not.toContain('pid');
    expect(ns).not.toContain('uts');
    expect(spec.mounts.filter((m) => m.destination === '/dev/shm')).toEqual([
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['size=1g'] },
    ]);
    expect(() => buildSpec({ ...base, utsNamespace: 'host', hostname: 'x' })).toThrow(/UTS/);
  });

  it('binds /sys for a user namespace sharing the host network', () => {
    const maps = [{ containerID: 0, hostID: 100000, size: 65536 }];
    const spec = buildSpec({ ...base, network: 'host', uidMappings: maps, gidMappings: maps });
    expect(spec.mounts.find((m) => m.destination === '/sys')).toMatchObject({ type: 'bind', source: '/sys' });
    expect(spec.linux.namespaces.map((n) => n.type)).toContain('user');
  });
});

describe('resolveUser', () => {
  it('resolves names, ids and groups', async () => {
    expect(await resolveUser(rootfs, undefined)).toEqual({ uid: 0, gid: 0, additionalGids: [50], home: '/root' });
    expect(await resolveUser(rootfs, 'www-data')).toEqual({ uid: 33, gid: 33, additionalGids: [4, 50], home: '/var/www' });
    expect(await resolveUser(rootfs, '33')).toEqual({ uid: 33, gid: 33, additionalGids: [4, 50], home: '/var/www' });
    expect(await resolveUser(rootfs, '1234')).toEqual({ uid: 1234, gid: 0, additionalGids: [], home: '/' });
    expect(await resolveUser(rootfs, '1234:99')).toEqual({ uid: 1234, gid: 99, additionalGids: [], home: '/' });
    expect(await resolveUser(rootfs, 'www-data:adm')).toEqual({ uid: 33, gid: 4, additionalGids: [], home: '/var/www' });
    expect(await resolveUser(rootfs, '33:staff')).toEqual({ uid: 33, gid: 50, additionalGids: [], home: '/var/www' });
  });

  it('reports unknown users and groups like Podman', async () => {
    await expect(resolveUser(rootfs, 'nobody')).rejects.toThrow('unable to find user nobody: no matching entries in passwd file');
    await expect(resolveUser(rootfs, 'root:wheel')).rejects.toThrow('unable to find group wheel: no matching entries in group file');
  });

  it('never reads files outside the rootfs', async () => {
    const evil = path.join(tmp, 'evil');
    await mkdir(path.join(evil, 'etc'), { recursive: true });
    // The host's passwd has users the image does not; following these links would find them.
    await symlink('/etc/passwd', path.join(evil, 'etc/passwd'));
    await symlink('../../../../../../../../etc/group', path.join(evil, 'etc/group'));
    await expect(resolveUser(evil, 'daemon')).rejects.toThrow(/unable to find user daemon/);
    expect(await resolveUser(evil, '1')).toEqual({ uid: 1, gid: 0, additionalGids: [], home: '/' });
    // Inside the rootfs the link points at itself: a loop, never the host's file.
    await expect(resolveInRoot(evil, '/etc/passwd')).rejects.toThrow(/too many levels of symbolic links/);

    // A link that stays inside the rootfs is followed there.
    const ok = path.join(tmp, 'linked');
    await mkdir(path.join(ok, 'data'), { recursive: true });
    await writeFile(path.join(ok, 'data/passwd'), 'app:x:7:8::/app:/bin/sh\n');
    await symlink('/data', path.join(ok, 'etc'));
    expect(await resolveUser(ok, 'app')).toEqual({ uid: 7, gid: 8, additionalGids: [], home: '/app' });
  });
});

describe.each(runtimes)('containers with $name', (rt) => {
  it('returns the exit status and output', async () => {
    expect(await run(rt, ['echo', 'hello'])).toEqual({ code: 0, stdout: 'hello\n', stderr: '' });
    const r = await run(rt, ['sh', '-c', 'echo out; echo err >&2; exit 3']);
    expect(r).toEqual({ code: 3, stdout: 'out\n', stderr: 'err\n' });
    expect((await run(rt, ['false'])).code).toBe(1);
  });

  it('maps a missing executable to 127 with a Podman-like message', async () => {
    for (const cmd of ['/nonexistent', 'nonexistent']) {
      const r = await run(rt, [cmd]);
      expect(r.code).toBe(127);
      expect(r.stderr).toContain(`executable file \`${cmd}\` not found in $PATH: No such file or directory`);
      expect(r.stderr).not.toContain('{');
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
    const r = await run(rt, ['/bin/badinterp']);
    expect(r.code).toBe(127);
    expect(r.stderr).toContain('No such file or directory');
  });

  it('maps a non-executable file or a directory to 126', async () => {
    for (const cmd of ['/bin/noexec', '/etc']) {
      const r = await run(rt, [cmd]);
      expect(r.code).toBe(126);
      expect(r.stderr).toMatch(/permission denied/i);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });

  it('reports other runtime failures as 125', async () => {
    const r = await run(rt, ['true'], { mounts: [{ destination: '/x', source: path.join(tmp, 'missing-dir') }] });
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(new RegExp(`^Error: ${rt.name}: `));
  });

  it('does not mistake application output for runtime errors', async () => {
    // Shaped exactly like crun's and runc's reports, but printed by a process that evidently started.
    const line = '{"msg":"executable file `x` not found in $PATH: No such file or directory","level":"error","time":"2024-01-01T00:00:00.000000Z"}';
    const a = await run(rt, ['sh', '-c', `echo starting; echo '${line}' >&2; exit 1`]);
    expect(a).toEqual({ code: 1, stdout: 'starting\n', stderr: `${line}\n` });
    const b = await run(rt, ['sh', '-c', `echo warming up >&2; echo 'exec sh: permission denied' >&2; exit 1`]);
    expect(b).toEqual({ code: 1, stdout: '', stderr: 'warming up\nexec sh: permission denied\n' });
    // An unterminated line that starts like a runtime report is not held for long.
    const c = await run(rt, ['sh', '-c', `printf 'exec> ' >&2; sleep 1; echo done`]);
    expect(c).toEqual({ code: 0, stdout: 'done\n', stderr: 'exec> ' });
  });

  it('passes stdin, env and cwd', async () => {
    expect((await run(rt, ['cat'], { input: 'from stdin' })).stdout).toBe('from stdin');
    const r = await run(rt, ['sh', '-c', 'echo "$FOO|$PATH"; pwd'], { env: ['FOO=bar baz'], cwd: '/tmp' });
    expect(r.stdout).toBe('bar baz|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n/tmp\n');
  });

  it('runs as the resolved user', async () => {
    const u = await resolveUser(rootfs, 'www-data');
    const r = await run(rt, ['sh', '-c', 'id -u; id -g; id -G; cat /proc/self/status | grep CapEff'], {
      uid: u.uid,
      gid: u.gid,
      additionalGids: u.additionalGids,
      env: [`HOME=${u.home}`],
    });
    const [uid, gid, groups, eff] = r.stdout.trim().split('\n');
    expect([uid, gid]).toEqual(['33', '33']);
    expect(groups!.split(' ').sort()).toEqual(['33', '4', '50']);
    expect(capEff(eff!)).toBe(0n);
  });

  it('isolates the network and sets the hostname', async () => {
    const r = await run(rt, ['sh', '-c', 'cat /proc/net/dev; hostname'], { hostname: 'box1' });
    const ifaces = r.stdout
      .split('\n')
      .filter((l) => l.includes(':'))
      .map((l) => l.split(':')[0]!.trim());
    expect(ifaces).toEqual(['lo']);
    expect(r.stdout.trim().split('\n').pop()).toBe('box1');
  });

  it('grants the default capabilities and honours --cap-add/--cap-drop', async () => {
    const status = ['grep', 'CapEff', '/proc/self/status'];
    expect(capEff((await run(rt, status)).stdout)).toBe(capMask(DEFAULT_CAPABILITIES));
    expect(capEff((await run(rt, status, { capDrop: ['ALL'] })).stdout)).toBe(0n);
    const added = capEff((await run(rt, status, { capAdd: ['net_admin'], capDrop: ['CAP_CHOWN'] })).stdout);
    expect(added).toBe((capMask(DEFAULT_CAPABILITIES) | capMask(['CAP_NET_ADMIN'])) & ~capMask(['CAP_CHOWN']));
  });

  it('masks and write-protects kernel paths', async () => {
    // Which of these exist depends on the kernel's configuration; /proc/keys nearly always does.
    const files = ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/proc/sched_debug'].filter((f) => existsSync(f));
    expect(files.length).toBeGreaterThan(0);
    // Root may write this file (mode 0644, no capability check); only the read-only mount stops it.
    const script =
      files.map((f) => `wc -c < ${f};`).join(' ') +
      ' ls /sys/firmware | wc -l; echo x > /proc/sys/kernel/domainname && echo wrote; grep " /proc/sys " /proc/mounts';
    const r = await run(rt, ['sh', '-c', script]);
    const lines = r.stdout.trim().split('\n');
    expect(lines.slice(0, files.length + 1)).toEqual([...files.map(() => '0'), '0']);
    expect(r.stdout).not.toContain('wrote');
    expect(lines.at(-1)).toMatch(/^\S+ \/proc\/sys \S+ ro[, ]/);
  });

  it('clamps rlimits to our hard limits', async () => {
    const nofileHard = hardLimits().get('RLIMIT_NOFILE') ?? Infinity;
    const r = await run(rt, ['sh', '-c', 'ulimit -n; ulimit -Hn'], { rlimits: [{ type: 'nofile', soft: 4_000_000, hard: 4_000_000 }] });
    expect(r.code).toBe(0);
    const expected = String(Math.min(4_000_000, nofileHard));
    expect(r.stdout).toBe(`${expected}\n${expected}\n`);
    const d = await run(rt, ['sh', '-c', 'ulimit -n']);
    expect(d.stdout.trim()).toBe(String(Math.min(1_048_576, nofileHard)));
  });

  it('supports a read-only rootfs, bind mounts and tmpfs mounts', async () => {
    const host = path.join(tmp, `bind-${rt.name}`);
    await mkdir(host, { recursive: true });
    await writeFile(path.join(host, 'in.txt'), 'host data');
    const r = await run(
      rt,
      [
        'sh',
        '-c',
        'touch /newfile 2>/dev/null && echo rootfs-writable; cat /data/in.txt; echo; echo x > /data/out.txt; ' +
          'echo t > /scratch/f && cat /scratch/f; grep " /scratch " /proc/mounts | cut -d" " -f3; ' +
          'touch /ro/y 2>/dev/null && echo ro-writable; echo ok > /dev/shm/z && cat /dev/shm/z',
      ],
      {
        readonlyRootfs: true,
        mounts: [
          { destination: '/data', type: 'bind', source: host },
          { destination: '/ro', type: 'bind', source: host, options: ['ro'] },
          { destination: '/scratch', type: 'tmpfs', source: 'tmpfs', options: ['size=1m', 'mode=1777'] },
        ],
      },
    );
    expect(r.stdout).not.toContain('writable');
    expect(r.stdout).toContain('host data\n');
    expect(r.stdout).toContain('t\n');
    expect(r.stdout).toContain('ok\n');
    expect(await readFile(path.join(host, 'out.txt'), 'utf8')).toBe('x\n');
  });

  it('reports death by signal as 128+N', async () => {
    // With the host PID namespace the shell is not an init process, so SIGKILL applies to it.
    const r = await run(rt, ['sh', '-c', 'kill -KILL $$'], { pidNamespace: 'host' });
    expect(r.code).toBe(137);
  });

  it('forwards SIGTERM to the container', async () => {
    let sent = false;
    const r = await run(
      rt,
      ['sh', '-c', 'trap "echo got-term; exit 7" TERM; echo started; while :; do sleep 0.1; done'],
      {},
      (s) => {
        if (!sent && s.includes('started')) {
          sent = true;
          process.kill(process.pid, 'SIGTERM');
        }
      },
    );
    expect(r).toMatchObject({ code: 7, stdout: 'started\ngot-term\n' });
    expect(process.listenerCount('SIGTERM')).toBe(0);
  });

  it('runs with seccomp and in a user namespace', async () => {
    expect((await run(rt, ['true'], { seccomp: true })).code).toBe(0);
    const maps = [{ containerID: 0, hostID: 200000, size: 65536 }];
    for (const network of ['none', 'host'] as const) {
      const r = await run(rt, ['sh', '-c', 'cat /proc/self/uid_map; ls /sys/fs/cgroup | wc -l'], {
        uidMappings: maps,
        gidMappings: maps,
        network,
      });
      expect(r.code).toBe(0);
      expect(r.stdout.trim().split(/\s+/).slice(0, 3)).toEqual(['0', '200000', '65536']);
    }
  });
});
