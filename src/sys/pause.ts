// Rootless barge's namespaces outlive each command, as rootless Podman's do: the barge that makes the
// user and mount namespace also starts a pause process in them, which does nothing but keep them,
// and every later barge of the same user joins them (nsenter) instead of making its own. Without
// that, a container started by one command could not be joined by the next (`exec`, `healthcheck
// run`: setns into a sibling user namespace is refused), and mounts vanished with each command.
//
// The pause process is recorded in the runtime directory as "PID START MODE": its start time tells
// it from a later process that got the same pid, and MODE is the id mapping it was made with (a
// user who has since been given subordinate ids gets a new namespace). bin/barge reads the same
// file to join without starting barge first.
//
// Loaded before the CLI (see userns.ts): node builtins only.
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { childProcess } from './lazy-builtins.ts';
import { isAlive, processStart, statFields } from './proc.ts';

export const PAUSE_FILE = join('barge', 'pause.pid');
const PAUSE_LOCK = join('barge', 'pause.lock');

export interface Pause {
  pid: number;
  mode: string;
}

/** The pause process recorded under the runtime directory `rt`, if it still runs. */
export function livePause(rt: string): Pause | undefined {
  let fields: string[];
  try {
    fields = readFileSync(join(rt, PAUSE_FILE), 'utf8').trim().split(' ');
  } catch {
    return undefined;
  }
  const [pid, start, mode] = fields;
  if (pid === undefined || start === undefined || mode === undefined) return undefined;
  // A killed pause nobody has reaped yet (PID 1 of a container may never reap) keeps its pid and
  // start time but no namespaces.
  const f = statFields(Number(pid));
  return f !== undefined && f[19] === start && f[0] !== 'Z' ? { pid: Number(pid), mode } : undefined;
}

/**
 * Takes the lock under which one barge at a time looks for the pause process and, finding none,
 * makes the namespaces and the pause: two first commands at once would otherwise make two. Returns
 * its release. A holder that died is taken over; after a few seconds barge goes on without it.
 */
export function lockPause(rt: string): () => void {
  const file = join(rt, PAUSE_LOCK);
  const me = `${process.pid} ${processStart(process.pid)}`;
  try {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  } catch {
    return () => undefined;
  }
  for (let attempt = 0; attempt < 500; attempt++) {
    try {
      writeFileSync(file, me, { flag: 'wx', mode: 0o600 });
      return () => {
        try {
          if (readFileSync(file, 'utf8') === me) rmSync(file, { force: true });
        } catch {
          // Already gone.
        }
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') return () => undefined;
    }
    try {
      const [pid, start] = readFileSync(file, 'utf8').split(' ');
      if (!isAlive(Number(pid), start ?? '0')) rmSync(file, { force: true });
    } catch {
      // Released meanwhile: try again at once.
      continue;
    }
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
  }
  return () => undefined;
}

/**
 * In the barge that has just made the namespaces: starts the pause process there and records it in
 * `file`. It gets a session of its own (no terminal's hangup reaches it) and / as its directory (it
 * keeps no directory of the user's busy). Returns whether it runs.
 */
export function startPause(file: string, mode: string): boolean {
  const cp = childProcess();
  // catatonit -P is the pause program Podman uses; sleep is everywhere.
  const [cmd, ...args] = cp.spawnSync('catatonit', ['-V'], { stdio: 'ignore' }).status === 0 ? ['catatonit', '-P'] : ['sleep', 'infinity'];
  const child = cp.spawn(cmd!, args, { detached: true, stdio: 'ignore', cwd: '/' });
  child.on('error', () => undefined);
  child.unref();
  if (child.pid === undefined) return false;
  try {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}`;
    writeFileSync(tmp, `${child.pid} ${processStart(child.pid)} ${mode}\n`, { mode: 0o600 });
    renameSync(tmp, file);
    return true;
  } catch {
    child.kill('SIGKILL');
    return false;
  }
}

/**
 * Ends the pause process recorded under `rt` (`system migrate`, `system reset`): the next barge
 * makes the namespaces again, with the id ranges /etc/subuid and /etc/subgid give now. Whether
 * there was one.
 */
export function stopPause(rt: string): boolean {
  const pause = livePause(rt);
  rmSync(join(rt, PAUSE_FILE), { force: true });
  if (!pause) return false;
  try {
    process.kill(pause.pid, 'SIGKILL');
  } catch {
    // Gone meanwhile.
  }
  return true;
}

