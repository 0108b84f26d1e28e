// Rootless overlay: the kernel's with userxattr where it works, fuse-overlayfs only as a fallback,
// and `barge info` says which and why. The kernel path works on the test machines, so the fallback
// is forced through storage.conf's mount_program (the knob Podman and Buildah read too).
import { execFileSync } from 'node:child_process';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeFailure } from '../helpers.ts';
import { assertUserCanRunBarge, ensureUser, isRoot, makeRootlessEnv, type RootlessEnv } from './lib.ts';

function fuseProcessesOf(uid: number): string {
  try {
    // Zombies (exited, not yet reaped by init) hold no mount or namespace.
    const out = execFileSync('pgrep', ['-u', String(uid), '-a', 'fuse-overlayfs'], { encoding: 'utf8' });
    return out.split('\n').filter((l) => l !== '' && !l.includes('<defunct>')).join('\n');
  } catch {
    return '';
  }
}

describe.runIf(isRoot)('rootless overlay through the kernel or fuse-overlayfs', () => {
  let env: RootlessEnv;
  let fuseEnv: Record<string, string>;
  const g = (name: string): string[] => ['--root', join(env.home, name), '--runroot', join(env.home, `${name}-run`)];

  beforeAll(async () => {
    const user = ensureUser('bargetest', '200000-265535');
    assertUserCanRunBarge(user);
    env = await makeRootlessEnv(user);
    const conf = join(env.files, 'storage.conf');
    await writeFile(conf, '[storage]\ndriver = "overlay"\n\n[storage.options.overlay]\nmount_program = "/usr/bin/fuse-overlayfs"\n');
    await chmod(conf, 0o644);
    fuseEnv = { CONTAINERS_STORAGE_CONF: conf };
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  it('info: the kernel overlay with userxattr by default, fuse-overlayfs when storage.conf names it', async () => {
    expect(await env.bargeOk([...g('k'), 'info', '--format', '{{.Store.GraphDriverName}}: {{.Store.GraphDriverReason}}'])).toBe(
      'overlay: overlay (default): kernel overlay filesystem with userxattr in the user namespace',
    );
    const info = JSON.parse(await env.bargeOk([...g('f'), 'info'], { env: fuseEnv })) as { store: { graphDriverReason: string; graphOptions?: Record<string, { Executable: string }> } };
    expect(info.store.graphDriverReason).toBe(`overlay (driver in ${fuseEnv.CONTAINERS_STORAGE_CONF}) through /usr/bin/fuse-overlayfs: mount_program in ${fuseEnv.CONTAINERS_STORAGE_CONF}`);
    expect(info.store.graphOptions?.['overlay.mount_program']?.Executable).toBe('/usr/bin/fuse-overlayfs');
    // --storage-driver vfs says so too.
    expect(await env.bargeOk([...g('v'), '--storage-driver', 'vfs', 'info', '--format', '{{.Store.GraphDriverReason}}'])).toBe('vfs: --storage-driver');
  });

  it('through fuse-overlayfs: owners, whiteouts and commits work, and no FUSE daemon outlives its mount', async () => {
    const b = (args: string[]): Promise<string> => env.bargeOk([...g('f'), ...args], { env: fuseEnv });
    await b(['import', env.busyboxTar, 'busybox']);
    const ctr = await b(['from', 'busybox']);
    await b(['run', ctr, '--', 'sh', '-c', 'rm /etc/group; mkdir -p /srv/d; echo x > /srv/d/f; chown 44:45 /srv/d/f']);
    await b(['commit', ctr, 'changed']);
    const c2 = await b(['from', 'changed']);
    expect(await b(['run', c2, '--', 'sh', '-c', 'stat -c %u:%g /srv/d/f /var/www; test -e /etc/group || echo gone'])).toBe('44:45\n33:33\ngone');
    // Each working container's root is a FUSE mount in barge's namespace, which the pause process
    // keeps: both stay mounted between commands, as working containers do as root.
    const r = await env.barge([...g('f'), 'unshare', '--mount', `M=${c2}`, '--', 'sh', '-c', 'grep -c " - fuse.fuse-overlayfs " /proc/self/mountinfo; cat "$M/srv/d/f"'], { env: fuseEnv });
    expect(r.code, describeFailure(['unshare'], r)).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual(['2', 'x']);
    expect(fuseProcessesOf(env.user.uid).split('\n')).toHaveLength(2);
    // Unmounted (here by rm), a container's FUSE daemon ends.
    await b(['rm', ctr, c2]);
    expect(fuseProcessesOf(env.user.uid)).toBe('');
  });
});
