// `--isolation chroot`, as Buildah's: the command runs chrooted into the container's rootfs, in a
// mount namespace of its own with the host's /proc and /sys bound in, and no OCI runtime. /sys and
// the parts of /proc that change the whole system are read-only, and /dev is a fresh tmpfs with only
// the harmless devices of the host's bound in (null, zero, full, random, urandom, tty) and a devpts
// of its own.
// It needs no cgroups, no fresh proc mount and no pid namespace, so it works where a runtime
// cannot: inside an unprivileged container (a CI pod), where barge holds capabilities only in a
// user namespace it made itself. The isolation is correspondingly weaker: the command sees the
// host's processes and devices, and only the network can be separated.
//
// It is a chain of util-linux tools: `unshare --mount` makes the namespace, a short shell script
// makes the mounts, `setpriv` limits capabilities to Podman's default set, and `unshare --root
// --wd --setuid --setgid` enters the rootfs and becomes the user (exiting 126/127 as a runtime
// does when the command cannot be run).

import { mkdir, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { isatty } from 'node:tty';
import { resolveInRoot, lstatOrNull } from '../store/secure-path.ts';
import { execInteractive } from '../sys/exec.ts';
import { DEFAULT_CAPABILITIES, DEFAULT_PATH, type MountSpec } from './spec.ts';

const HOST_PATH = DEFAULT_PATH.slice('PATH='.length);

export interface ChrootRun {
  rootfs: string;
  args: string[];
  env: string[];
  cwd: string;
  uid: number;
  gid: number;
  /** Bind and tmpfs mounts, applied after /dev, /proc and /sys. */
  mounts: MountSpec[];
  network: 'host' | 'none' | 'private';
  capAdd?: string[];
  capDrop?: string[];
  /** false: the command's stdin is /dev/null rather than barge's. */
  stdin?: boolean;
  /** A descriptor for the command's stdout and stderr instead of barge's. */
  output?: number;
}

// Positional parameters of the script: $1 rootfs, $2 cwd, $3 uid, $4 gid, $5 capabilities, $6 the
// command's PATH, $7-$9 where /proc, /sys and /dev are in the rootfs, ${10} "host" to bind the
// host's /dev/pts (see runChroot), ${11} number of mount records, then 4 words per mount (kind,
// source, target, options), then the command. The script itself runs
// with the host's PATH; the command is looked up with its own, inside the rootfs.
const SCRIPT = `set -e
root=$1 wd=$2 uid=$3 gid=$4 caps=$5 cpath=$6 proc=$7 sys=$8 dev=$9 pts=\${10} n=\${11}
shift 11
mount --rbind /proc "$proc"
for p in sys sysrq-trigger irq bus; do
  if [ -e "$proc/$p" ]; then mount --bind "$proc/$p" "$proc/$p"; mount -o remount,bind,ro "$proc/$p"; fi
done
mount --rbind /sys "$sys"
mount -o remount,bind,ro "$sys"
mount -t tmpfs -o mode=755,nosuid tmpfs "$dev"
for d in null zero full random urandom tty; do
  if [ -e "/dev/$d" ]; then : > "$dev/$d"; mount --bind "/dev/$d" "$dev/$d"; fi
done
mkdir "$dev/pts" "$dev/shm"
if [ "$pts" = host ]; then
  mount --rbind /dev/pts "$dev/pts"
  : > "$dev/ptmx"; mount --bind /dev/ptmx "$dev/ptmx"
else
  mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$dev/pts"
  ln -s pts/ptmx "$dev/ptmx"
fi
mount -t tmpfs -o mode=1777,nosuid,nodev shm "$dev/shm"
ln -s /proc/self/fd "$dev/fd"
ln -s /proc/self/fd/0 "$dev/stdin"
ln -s /proc/self/fd/1 "$dev/stdout"
ln -s /proc/self/fd/2 "$dev/stderr"
while [ "$n" -gt 0 ]; do
  kind=$1 src=$2 dst=$3 opts=$4
  shift 4
  n=$((n - 1))
  case $kind in
    bind) mount --rbind "$src" "$dst"
          case ",$opts," in *,ro,*) mount -o remount,bind,ro "$dst" ;; esac ;;
    tmpfs) mount -t tmpfs -o "$opts" tmpfs "$dst" ;;
  esac
done
setpriv=$(command -v setpriv) unshare=$(command -v unshare)
PATH=$cpath
exec "$setpriv" --bounding-set "$caps" --inh-caps=-all -- "$unshare" --root="$root" --wd="$wd" --setgid="$gid" --setuid="$uid" -- "$@"
`;

const BIND_OPTION_WORDS = new Set(['bind', 'rbind', 'private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave', 'rw']);

/** The mount points, inside the rootfs, made safe to mount on: symlinks resolved within the rootfs, created if missing. */
async function prepareTarget(rootfs: string, m: MountSpec): Promise<string> {
  const target = await resolveInRoot(rootfs, m.destination);
  if (await lstatOrNull(target)) return target;
  const srcIsDir = m.type !== 'bind' || (await stat(m.source)).isDirectory();
  if (srcIsDir) await mkdir(target, { recursive: true });
  else {
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, '');
  }
  return target;
}

/** Capability names as setpriv spells them: "-all,+chown,+setuid". */
function boundingSet(capAdd: readonly string[], capDrop: readonly string[]): string {
  const norm = (c: string): string => c.toLowerCase().replace(/^cap_/, '');
  const drop = new Set(capDrop.map(norm));
  const add = capAdd.map(norm);
  if (add.includes('all')) return drop.size ? ['+all', ...[...drop].map((c) => `-${c}`)].join(',') : '+all';
  const keep = [...new Set([...DEFAULT_CAPABILITIES.map(norm), ...add])].filter((c) => !drop.has(c) && !drop.has('all'));
  return ['-all', ...keep.map((c) => `+${c}`)].join(',');
}

/** Runs the command with chroot isolation and resolves to its exit status (stdio inherited). */
export async function runChroot(r: ChrootRun): Promise<number> {
  const system = await Promise.all(['/proc', '/sys', '/dev'].map((d) => prepareTarget(r.rootfs, { destination: d, type: 'tmpfs', source: 'tmpfs' })));
  const mounts = r.mounts;
  const words: string[] = [];
  for (const m of mounts) {
    const kind = m.type === 'tmpfs' ? 'tmpfs' : 'bind';
    if (kind === 'bind' && m.type !== 'bind' && m.type !== undefined) throw new Error(`mount type "${m.type}" is not supported with chroot isolation`);
    const opts = (m.options ?? []).filter((o) => kind === 'tmpfs' ? !BIND_OPTION_WORDS.has(o) && o !== 'tmpcopyup' : o === 'ro');
    words.push(kind, m.source, await prepareTarget(r.rootfs, m), opts.join(',') || (kind === 'tmpfs' ? 'mode=1777' : '-'));
  }
  const ns = ['--mount', '--propagation', 'private', ...(r.network === 'host' ? [] : ['--net']), '--ipc', '--uts'];
  const env: NodeJS.ProcessEnv = {};
  for (const e of r.env) {
    const i = e.indexOf('=');
    if (i > 0) env[e.slice(0, i)] = e.slice(i + 1);
  }
  const args = [
    ...ns, '--', 'sh', '-c', SCRIPT, 'barge-chroot',
    r.rootfs, r.cwd, String(r.uid), String(r.gid), boundingSet(r.capAdd ?? [], r.capDrop ?? []), env.PATH ?? HOST_PATH,
    // A terminal barge was given stays the command's, as with Buildah: its /dev/pts/N must be
    // there for ttyname() and job control, so the host's ptys are bound in instead of a new
    // instance (chroot isolation shows the host's devices anyway).
    ...system, [0, 1, 2].some((fd) => isatty(fd)) ? 'host' : 'new', String(mounts.length), ...words,
    ...r.args,
  ];
  // The command's environment, except that the tools on the way are found through the host's PATH.
  const out = r.output ?? 'inherit';
  return execInteractive('unshare', args, { env: { ...env, PATH: HOST_PATH }, stdio: [r.stdin === false ? 'ignore' : 'inherit', out, out] });
}
