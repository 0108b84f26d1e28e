// barge as an unprivileged user: it re-executes itself in a user namespace mapped from the user's
// /etc/subuid and /etc/subgid ranges, keeps its store under $HOME, and files keep their owners.
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { writeFile, chown } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BARGE_BIN, describeFailure } from '../helpers.ts';
import { assertUserCanRunBarge, ensureUser, isRoot, makeRootlessEnv, subidRange, type RootlessEnv } from './lib.ts';

const runtimes = ['crun', 'runc'].filter((r) => {
  try {
    execFileSync('sh', ['-c', `command -v ${r} || test -x /usr/sbin/${r}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
});

describe.runIf(isRoot)('rootless with subordinate id ranges', () => {
  let env: RootlessEnv;
  let ctr: string;

  beforeAll(async () => {
    const user = ensureUser('bargetest', '200000-265535');
    assertUserCanRunBarge(user);
    env = await makeRootlessEnv(user);
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  it('info reports rootless, the store under $HOME and a private runtime directory under /tmp', async () => {
    const r = await env.barge(['info', '--format', 'json']);
    expect(r.code, describeFailure(['info'], r)).toBe(0);
    expect(r.stderr).not.toMatch(/WARN/);
    const info = JSON.parse(r.stdout) as { host: { rootless: boolean }; store: { graphRoot: string; runRoot: string; graphDriverName: string } };
    expect(info.host.rootless).toBe(true);
    expect(info.store.graphRoot).toBe(join(env.home, '.local', 'share', 'barge'));
    const runDir = `/tmp/barge-run-${env.user.uid}`;
    expect(info.store.runRoot).toBe(join(runDir, 'barge'));
    const st = lstatSync(runDir);
    expect(st.isDirectory()).toBe(true);
    expect(st.uid).toBe(env.user.uid);
    expect(st.mode & 0o777).toBe(0o700);
    // The store belongs to the user, not to root.
    expect(lstatSync(info.store.graphRoot).uid).toBe(env.user.uid);
  });

  it('the first run re-executes barge in the namespace; later runs enter it from bin/barge, as one process', async () => {
    const marker = `/tmp/barge-run-${env.user.uid}/barge/userns-full`;
    rmSync(marker, { force: true });
    // PPid of the barge that runs the command: the test process only when barge was never re-executed.
    const parentOfBarge = async (): Promise<number> => {
      const out = await env.bargeOk(['unshare', 'sh', '-c', 'grep ^PPid: /proc/$PPID/status']);
      return Number(out.split(/\s+/)[1]);
    };
    expect(await parentOfBarge()).not.toBe(process.pid);
    expect(lstatSync(marker).uid).toBe(env.user.uid);
    expect(await parentOfBarge()).toBe(process.pid);
    // Both ways the namespace is the same kind: the user is root, the subordinate range is mapped.
    expect(await env.bargeOk(['unshare', 'sh', '-c', 'id -u; wc -l < /proc/self/uid_map'])).toBe('0\n2');
    // The command's status comes back as a shell's: 128 + the signal that killed it.
    expect((await env.barge(['unshare', 'sh', '-c', 'kill -USR2 $$'])).code).toBe(140);
  });

  it('version and help need no user namespace', async () => {
    expect(await env.bargeOk(['version'])).toMatch(/Version:/);
    expect(await env.bargeOk(['--help'])).toMatch(/Usage: barge/);
  });

  it('imports an image and creates a working container from it', async () => {
    await env.bargeOk(['import', env.busyboxTar, 'busybox']);
    ctr = await env.bargeOk(['from', 'busybox']);
    expect(ctr).toMatch(/^busybox-working-container/);
  });

  it('run: the command is root of the user namespace', async () => {
    expect(await env.bargeOk(['run', ctr, 'id', '-u'])).toBe('0');
    for (const rt of runtimes) expect(await env.bargeOk(['--runtime', rt, 'run', ctr, 'id', '-u']), rt).toBe('0');
    // A network namespace of its own is allowed too (it belongs to barge's user namespace).
    expect(await env.bargeOk(['run', '--network', 'none', ctr, 'sh', '-c', 'grep -c : /proc/net/dev'])).toBe('1');
    // The exit code comes through the re-executed barge.
    expect((await env.barge(['run', ctr, 'sh', '-c', 'exit 7'])).code).toBe(7);
  });

  it('copy --chown 33:33: the file is owned by 33 inside, by the mapped subordinate id outside', async () => {
    const src = join(env.files, 'data.txt');
    await writeFile(src, 'hello\n');
    await chown(src, env.user.uid, env.user.gid);
    await env.bargeOk(['copy', '--chown', '33:33', ctr, src, '/data.txt']);
    expect(await env.bargeOk(['run', ctr, 'stat', '-c', '%u:%g', '/data.txt'])).toBe('33:33');
    // A file made by a command in the container keeps its owner as well.
    await env.bargeOk(['run', ctr, 'sh', '-c', 'echo x > /made.txt && chown 44:45 /made.txt']);

    // On the host the owner is the subordinate id mapped to 33 (unshare --map-auto maps 1.. onto the first range).
    const range = subidRange('/etc/subuid', env.user.name)!;
    const containers = join(env.home, '.local', 'share', 'barge', 'containers');
    const uppers = readdirSync(containers).map((id) => join(containers, id, 'upper', 'data.txt')).filter((p) => existsSync(p));
    expect(uppers).toHaveLength(1);
    expect(lstatSync(uppers[0]!).uid).toBe(range.start + 32);
  });

  it('commit: a new container from the committed image sees the owners', async () => {
    await env.bargeOk(['commit', ctr, 'owned']);
    expect(await env.bargeOk(['images', '--format', '{{.Repository}}:{{.Tag}}'])).toMatch(/^localhost\/owned:latest$/m);
    const c2 = await env.bargeOk(['from', 'owned']);
    expect(await env.bargeOk(['run', c2, 'stat', '-c', '%u:%g %n', '/data.txt', '/made.txt'])).toBe('33:33 /data.txt\n44:45 /made.txt');
    await env.bargeOk(['rm', c2]);
  });

  it('unshare: a mount made by barge in the namespace is usable by the command', async () => {
    const script = `mnt=$(${BARGE_BIN} mount ${ctr}) && ls "$mnt/bin/busybox" && stat -c %u "$mnt/data.txt"`;
    const r = await env.barge(['unshare', 'sh', '-c', script]);
    expect(r.code, describeFailure(['unshare', 'sh', '-c', script], r)).toBe(0);
    expect(r.stdout).toMatch(/\/bin\/busybox\n33\n$/);
    // --mount VAR=CONTAINER, and the id map of the namespace.
    const r2 = await env.barge(['unshare', '--mount', `M=${ctr}`, 'sh', '-c', 'cat "$M/data.txt"; id -u; cat /proc/self/uid_map']);
    expect(r2.code, describeFailure(['unshare'], r2)).toBe(0);
    const [content, uid, ...maps] = r2.stdout.trim().split('\n');
    expect(content).toBe('hello');
    expect(uid).toBe('0');
    expect(maps[0]!.trim().split(/\s+/)).toEqual(['0', String(env.user.uid), '1']);
    expect(maps.length).toBeGreaterThan(1);
  });

  it('many unshare --mount of one container at once all mount it (overlay resets the shared work directory)', async () => {
    // Rounds, because the race needs two mounts to overlap within a few milliseconds.
    for (let round = 0; round < 5; round++) {
      const results = await Promise.all(
        Array.from({ length: 12 }, () => env.barge(['unshare', '--mount', `M=${ctr}`, 'sh', '-c', 'cat "$M/data.txt"'])),
      );
      for (const r of results) {
        expect(r.code, describeFailure(['unshare', '--mount', `M=${ctr}`], r)).toBe(0);
        expect(r.stdout.trim()).toBe('hello');
      }
    }
  });

  it('a mount outlives the command, in the namespaces a pause process keeps (as rootless Podman\'s)', async () => {
    // Every barge of the user joins the same user and mount namespace...
    const ns = 'readlink /proc/self/ns/user /proc/self/ns/mnt';
    const first = await env.bargeOk(['unshare', 'sh', '-c', ns]);
    expect(await env.bargeOk(['unshare', 'sh', '-c', ns])).toBe(first);
    // ...so the container an earlier command mounted is mounted still...
    expect(await env.bargeOk(['mount'])).toMatch(new RegExp(`^${ctr} /`, 'm'));
    // ...but a path printed outside `barge unshare` would mean nothing to the shell that ran it.
    const m = await env.barge(['mount', ctr]);
    expect(m.code).toBe(125);
    expect(m.stderr).toMatch(/^Error: .*barge unshare/m);
    expect(await env.bargeOk(['run', ctr, 'cat', '/data.txt'])).toBe('hello');
    await env.bargeOk(['commit', ctr, 'owned2']);
  });

  it('a container started by one command is joined by the next (exec), with runc and crun', async () => {
    for (const runtime of ['runc', 'crun']) {
      const id = await env.bargeOk(['--runtime', runtime, 'run', '-d', 'busybox', 'sleep', '60']);
      try {
        expect(await env.bargeOk(['exec', id, 'sh', '-c', 'echo joined; id -u'])).toBe('joined\n0');
      } finally {
        await env.bargeOk(['rm', '-f', id]);
      }
    }
  });

  it('a pause process that was killed is replaced, and the namespace with it', async () => {
    const pauseFile = `/tmp/barge-run-${env.user.uid}/barge/pause.pid`;
    const [pid] = readFileSync(pauseFile, 'utf8').split(' ');
    const before = await env.bargeOk(['unshare', 'readlink', '/proc/self/ns/user']);
    process.kill(Number(pid), 'SIGKILL');
    await new Promise((r) => setTimeout(r, 100));
    const after = await env.bargeOk(['unshare', 'readlink', '/proc/self/ns/user']);
    expect(after).not.toBe(before);
    expect(readFileSync(pauseFile, 'utf8').split(' ')[0]).not.toBe(pid);
    expect(await env.bargeOk(['unshare', 'readlink', '/proc/self/ns/user'])).toBe(after);
    // system migrate ends it on purpose (Podman's way to take new subordinate ranges into use).
    await env.bargeOk(['system', 'migrate']);
    const migrated = await env.bargeOk(['unshare', 'readlink', '/proc/self/ns/user']);
    expect(migrated).not.toBe(after);
    expect(await env.bargeOk(['unshare', 'readlink', '/proc/self/ns/user'])).toBe(migrated);
  });

  it('the vfs driver keeps owners too', async () => {
    const g = ['--root', join(env.home, 'vfs'), '--runroot', join(env.home, 'vfs-run'), '--storage-driver', 'vfs'];
    await env.bargeOk([...g, 'import', env.busyboxTar, 'bb']);
    const c = await env.bargeOk([...g, 'from', 'bb']);
    await env.bargeOk([...g, 'run', c, 'sh', '-c', 'echo x > /y && chown 5:6 /y']);
    await env.bargeOk([...g, 'commit', c, 'bb2']);
    const c2 = await env.bargeOk([...g, 'from', 'bb2']);
    expect(await env.bargeOk([...g, 'run', c2, 'stat', '-c', '%u:%g', '/y', '/var/www'])).toBe('5:6\n33:33');
    await env.bargeOk([...g, 'rm', '--all']);
  });

  it('a second user has a separate store', async () => {
    const other = ensureUser('bargetest2', '300000-365535');
    const env2 = await makeRootlessEnv(other);
    try {
      expect(await env2.bargeOk(['images', '-q'])).toBe('');
      expect(await env2.bargeOk(['containers', '-q'])).toBe('');
      // And cannot read the first user's store.
      const r = await env2.run('ls', [join(env.home, '.local', 'share', 'barge')]);
      expect(r.code).not.toBe(0);
    } finally {
      await env2.cleanup();
    }
  });
});

describe.runIf(isRoot)('rootless without subordinate id ranges', () => {
  let env: RootlessEnv;

  beforeAll(async () => {
    const user = ensureUser('bargenosub', false);
    assertUserCanRunBarge(user);
    env = await makeRootlessEnv(user);
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  it('runs with a single mapping and says what to configure', async () => {
    const r = await env.barge(['info', '--format', '{{.Host.Rootless}}']);
    expect(r.code, describeFailure(['info'], r)).toBe(0);
    expect(r.stdout.trim()).toBe('true');
    expect(r.stderr).toMatch(/single uid\/gid mapped/);
    expect(r.stderr).toContain(`usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${env.user.name}`);
  });

  it('images with files of other owners fail with the same advice', async () => {
    // busybox's /var/www belongs to 33.
    const r = await env.barge(['import', env.busyboxTar, 'busybox']);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/not mapped/);
    expect(r.stderr).toMatch(/only one uid and gid are mapped.*usermod --add-subuids/);
  });

  it('root-owned content works: scratch, copy, commit', async () => {
    const src = join(env.files, 'file.txt');
    await writeFile(src, 'single\n');
    await chown(src, env.user.uid, env.user.gid);
    const c = await env.bargeOk(['from', 'scratch']);
    await env.bargeOk(['copy', c, src, '/file.txt']);
    await env.bargeOk(['commit', c, 'single']);
    expect(await env.bargeOk(['images', '--format', '{{.Repository}}'])).toMatch(/^localhost\/single$/m);
    const r = await env.barge(['copy', '--chown', '33:33', c, src, '/other.txt']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/usermod --add-subuids/);
  });
});
