import { readFileSync } from 'node:fs';
import { exec } from './exec.ts';

export interface OverlayMount {
  /** Lower directories, topmost first; relative to `cwd` when given (keeps the option string short). */
  lowers: string[];
  upper: string;
  work: string;
  target: string;
  cwd?: string;
  /** Rootless kernels store overlay metadata in user.* xattrs. */
  userxattr?: boolean;
  /** A FUSE implementation (fuse-overlayfs) to mount with instead of the kernel's overlay. */
  program?: string;
  /**
   * The kernel's `volatile`: no sync of the upper layer, neither the container's fsyncs nor the
   * whole-filesystem sync an unmount does, for a container whose changes are thrown away.
   */
  volatile?: boolean;
}

/** Mounts an overlay filesystem with the kernel driver, or with m.program. */
export async function mountOverlay(m: OverlayMount): Promise<void> {
  const opts = [`lowerdir=${m.lowers.join(':')}`, `upperdir=${m.upper}`, `workdir=${m.work}`];
  if (m.program) {
    // fuse-overlayfs reads the same whiteouts and user.* opaque markers the kernel writes rootless.
    await exec(m.program, ['-o', opts.join(','), m.target], m.cwd ? { cwd: m.cwd } : {});
    return;
  }
  // Redirects and metacopy make the upper dir unreadable as a plain diff; keep them off.
  // With userxattr the kernel refuses to follow redirects (redirect_dir=off still follows them).
  opts.push(m.userxattr ? 'redirect_dir=nofollow' : 'redirect_dir=off', 'metacopy=off', 'index=off');
  if (m.userxattr) opts.push('userxattr');
  const mount = (o: string[]): Promise<unknown> => exec('mount', ['-t', 'overlay', 'overlay', '-o', o.join(','), m.target], m.cwd ? { cwd: m.cwd } : {});
  if (!m.volatile) {
    await mount(opts);
    return;
  }
  // Kernels before 5.10 do not know the option: such a container is synced like any other.
  await mount([...opts, 'volatile']).catch(() => mount(opts));
}

export async function unmount(target: string, lazy = false): Promise<void> {
  await exec('umount', lazy ? ['-l', target] : [target]);
}

export async function bindMount(src: string, target: string, readonly = false): Promise<void> {
  await exec('mount', ['--bind', src, target]);
  if (readonly) await exec('mount', ['-o', 'remount,bind,ro', target]);
}

/** FUSE overlay mounts in this mount namespace (their daemons live as long as the mounts do). */
export function fuseOverlayMounts(): string[] {
  const out: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const fstype = line.slice(sep + 3).split(' ')[0] ?? '';
    if (fstype === 'fuse.fuse-overlayfs') out.push(unescapeMountPath(line.split(' ')[4]!));
  }
  return out;
}

/** Mount points currently visible to this process. */
export function mountPoints(): Set<string> {
  const set = new Set<string>();
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    if (f.length > 4) set.add(unescapeMountPath(f[4]!));
  }
  return set;
}

function unescapeMountPath(p: string): string {
  return p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}
