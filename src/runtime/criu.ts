// Checkpointing through the OCI runtime (`RUNTIME checkpoint`, which drives CRIU). Restoring goes
// through conmon (`--restore`), so that a restored container is monitored like a started one.

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { exec } from '../sys/exec.ts';
import { freezeCgroupOf } from '../sys/freezer.ts';
import type { RuntimeInfo } from './oci-runtime.ts';

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
}

/** `RUNTIME checkpoint`: dumps the container's processes into imagePath (and stops them unless leaveRunning). */
export async function runtimeCheckpoint(rt: RuntimeInfo, stateRoot: string, id: string, o: RuntimeCheckpointOptions): Promise<void> {
  await ensureCheckpointSupport(rt);
  const args = ['--root', stateRoot, 'checkpoint', '--image-path', o.imagePath, '--work-path', o.workPath];
  if (o.leaveRunning) args.push('--leave-running');
  if (o.tcpEstablished) args.push('--tcp-established');
  args.push(id);
  const thaw = o.pid ? await freezeCgroupOf(o.pid, id) : null;
  let r;
  try {
    r = await exec(rt.path, args, { check: false });
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
