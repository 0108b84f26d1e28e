// Checkpointing through the OCI runtime (`RUNTIME checkpoint`, which drives CRIU). Restoring goes
// through conmon (`--restore`), so that a restored container is monitored like a started one.

import { readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { exec } from '../sys/exec.ts';
import { freezeCgroupOf } from '../sys/freezer.ts';
import { lookPath, type RuntimeInfo } from './oci-runtime.ts';

export class CheckpointError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CheckpointError';
  }
}

const supportChecked = new Map<string, boolean>();

/**
 * Refuses a runtime that cannot checkpoint: crun is often built without CRIU support (Debian 12's
 * crun 1.8 answers "unknown command checkpoint"). runc always has it.
 */
export async function ensureCheckpointSupport(rt: RuntimeInfo): Promise<void> {
  if (rt.name === 'runc') return;
  let ok = supportChecked.get(rt.path);
  if (ok === undefined) {
    const r = await exec(rt.path, ['checkpoint', '--help'], { check: false }).catch(() => null);
    ok = r !== null && r.exitCode === 0;
    supportChecked.set(rt.path, ok);
  }
  if (!ok) {
    throw new CheckpointError(
      `the OCI runtime ${rt.name} (${rt.path}) cannot checkpoint or restore containers (built without CRIU support); ` +
        'create the container with --runtime runc',
    );
  }
}

export interface RuntimeCheckpointOptions {
  imagePath: string;
  /** Where CRIU writes dump.log and stats-dump. */
  workPath: string;
  leaveRunning?: boolean;
  tcpEstablished?: boolean;
  /** The container's process: its cgroup is frozen before the runtime is called (see sys/freezer.ts). */
  pid?: number;
  /**
   * Where barge may keep a CRIU configuration file, when the container's network namespace is its
   * own (only loopback): see skipNetworkLockEnv.
   */
  privateNetworkConfDir?: string;
}

/** `RUNTIME checkpoint`: dumps the container's processes into imagePath (and stops them unless leaveRunning). */
export async function runtimeCheckpoint(rt: RuntimeInfo, stateRoot: string, id: string, o: RuntimeCheckpointOptions): Promise<void> {
  await ensureCheckpointSupport(rt);
  const args = ['--root', stateRoot, 'checkpoint', '--image-path', o.imagePath, '--work-path', o.workPath];
  if (o.leaveRunning) args.push('--leave-running');
  if (o.tcpEstablished) args.push('--tcp-established');
  args.push(id);
  const [thaw, lockEnv] = await Promise.all([
    o.pid ? freezeCgroupOf(o.pid, id) : null,
    o.privateNetworkConfDir !== undefined ? skipNetworkLockEnv(o.privateNetworkConfDir) : {},
  ]);
  let r;
  try {
    r = await exec(rt.path, args, { check: false, env: { ...process.env, ...lockEnv } });
  } finally {
    // CRIU leaves a cgroup it found frozen frozen: thaw what still lives (--leave-running, a failure).
    try {
      thaw?.();
    } catch {
      // The cgroup went with the dumped processes.
    }
  }
  if (r.exitCode !== 0) {
    throw new CheckpointError(`${rt.name} checkpoint: ${r.stderr.trim() || `exit status ${r.exitCode}`}${await criuLogHint(path.join(o.workPath, 'dump.log'))}`);
  }
}

/** The last error CRIU logged, and where its whole log is, for an error message. */
export async function criuLogHint(log: string): Promise<string> {
  try {
    const lines = (await readFile(log, 'utf8')).split('\n');
    const err = lines.filter((l) => /Error|error/.test(l)).at(-1)?.replace(/^\([\d.]+\)\s*/, '').trim();
    return `${err ? `\nCRIU: ${err}` : ''}\nlog file: ${log}`;
  } catch {
    return '';
  }
}

/** CRIU's version as Podman records it (4.1.1 → "40101"), or "" when criu is not found. */
export async function criuVersion(): Promise<string> {
  const r = await exec('criu', ['--version'], { check: false }).catch(() => null);
  const m = r ? /Version:\s*(\d+)\.(\d+)(?:\.(\d+))?/.exec(r.stdout) : null;
  if (!m) return '';
  return String(Number(m[1]) * 10000 + Number(m[2]) * 100 + Number(m[3] ?? 0));
}

/** The first CRIU with `--network-lock skip` (3.18). */
const NETWORK_LOCK_SKIP_SINCE = 31800;
const SKIP_CONF = 'criu-network-lock.conf';

/**
 * The environment that has CRIU dump a container without locking its network, for a container
 * whose network namespace holds only the loopback interface: no packet from outside can reach its
 * sockets while they are dumped. The lock is iptables rules set and removed around the dump, and
 * around the restore too, as CRIU records the method in the dump: measured here, 85 ms of a 250 ms
 * restore (iptables-restore in a fresh namespace), for nothing; the dump's share was within noise.
 *
 * runc passes CRIU no lock method; a `network-lock` line in runc's configuration file (the
 * org.criu.config annotation) crashes CRIU 4.1 in its RPC mode; CRIU_CONFIG_FILE, read when CRIU
 * starts, works. Nothing for a CRIU that predates the option, or when the user set
 * CRIU_CONFIG_FILE (their file rules).
 *
 * The file records which criu binary (path, mtime, size) it was made for, so that the version is
 * asked once per installed CRIU rather than on every checkpoint.
 */
export async function skipNetworkLockEnv(dir: string): Promise<Record<string, string>> {
  if (process.env['CRIU_CONFIG_FILE']) return {};
  const criu = lookPath('criu');
  if (!criu) return {};
  let key: string;
  try {
    const st = statSync(criu);
    key = `# barge: for ${criu} ${st.mtimeMs} ${st.size}`;
  } catch {
    return {};
  }
  const file = path.join(dir, SKIP_CONF);
  let text: string | undefined;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    // Not made yet.
  }
  if (text?.split('\n')[0] !== key) {
    const version = Number(await criuVersion()) || 0;
    text = `${key}\n${version >= NETWORK_LOCK_SKIP_SINCE ? 'network-lock skip\n' : ''}`;
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, text, { mode: 0o644 });
    renameSync(tmp, file);
  }
  return text.includes('\nnetwork-lock skip\n') ? { CRIU_CONFIG_FILE: file } : {};
}
