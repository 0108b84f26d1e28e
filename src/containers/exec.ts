// `podman exec`: a further process in a running container, through
// `RUNTIME --root STATE exec --process process.json ID`, built from the container's own spec.

import type { StdioOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Store } from '../store/store.ts';
import { capabilitySets, containerCapabilities, type RuntimeSpec, type SpecProcess } from '../runtime/spec.ts';
import { classifyRuntimeError } from '../runtime/oci-runtime.ts';
import { warmCgroupAttach } from '../runtime/cgroup-warmup.ts';
import { ContainerStartError, execWithConmon, lastRuntimeLogError } from '../runtime/conmon.ts';
import { resolveUser } from '../runtime/user.ts';
import { mergeEnv, readEnvFiles } from '../primitives/run.ts';
import { exitStatus } from '../sys/exec.ts';
import { childProcess, randomHex } from '../sys/lazy-builtins.ts';
import { containerPaths, loadContainer, type Container } from './record.ts';
import { addedGroups, ContainerError, liveState } from './lifecycle.ts';
import { containerEvent } from './events.ts';

export interface ExecOptions {
  command: string[];
  env?: string[];
  envFiles?: string[];
  user?: string;
  workdir?: string;
  interactive?: boolean;
  tty?: boolean;
  detach?: boolean;
  /** --privileged: every capability barge holds, whatever the container was given. */
  privileged?: boolean;
  /** --preserve-fds N: barge's descriptors 3 to 3+N-1 are passed down as they are. */
  preserveFds?: number;
  /**
   * Takes the process's stdout and stderr, and the runtime's error, in the order they come,
   * instead of barge's own streams (a healthcheck keeps them in the container's state).
   */
  output?: (text: string) => void;
  /** A healthcheck's exec, which Podman records only by its exec_died (its health_status comes first). */
  healthcheck?: boolean;
}

/** The container, which must be running; otherwise `refusal`, whose text and exit status Podman words per verb. */
export function runningContainer(store: Store, ref: string, refusal: string, exitCode = 125): Container {
  const c = loadContainer(store, ref);
  const s = liveState(store, c);
  if (s.status !== 'running' && s.status !== 'stopping') throw new ContainerError(refusal, exitCode);
  return c;
}

function readSpec(store: Store, c: Container): RuntimeSpec {
  const p = containerPaths(store, c.record.id, c.data.config.runtimeName);
  return JSON.parse(readFileSync(join(p.userdata, 'config.json'), 'utf8')) as RuntimeSpec;
}

/** The exec process: the container's capabilities, rlimits and no-new-privileges; env, user and cwd as asked. */
export async function execProcess(store: Store, c: Container, o: ExecOptions): Promise<SpecProcess> {
  const spec = readSpec(store, c);
  const fromFiles = await readEnvFiles(o.envFiles ?? []);
  const userSpec = o.user ?? c.data.config.user;
  let user;
  try {
    user = await resolveUser(spec.root.path, userSpec);
  } catch (e) {
    throw new ContainerError(`unable to resolve user ${userSpec}: ${(e as Error).message}`);
  }
  // As Podman's exec: the --group-add groups go with the container's user, not with another asked for.
  const groups = o.user === undefined ? await addedGroups(c, spec.root.path) : [];
  const additionalGids = [...new Set([...user.additionalGids, ...groups])];
  let env = mergeEnv(spec.process.env, [...fromFiles, ...(o.env ?? [])]);
  // Another user than the container's gets its own HOME unless one was asked for.
  if (o.user !== undefined && !(o.env ?? []).some((e) => e.startsWith('HOME='))) env = mergeEnv(env, [`HOME=${user.home || '/'}`]);
  const privileged = o.privileged ? containerCapabilities({ privileged: true }) : [];
  const cwd = o.workdir ?? spec.process.cwd;
  if (!cwd.startsWith('/')) throw new ContainerError(`working directory "${cwd}" must be an absolute path`);
  // A detached process has nobody to read its terminal.
  const terminal = !!o.tty && !o.detach;
  if (terminal && !env.some((e) => e.startsWith('TERM='))) env.push('TERM=xterm');
  return {
    terminal,
    user: { uid: user.uid, gid: user.gid, ...(spec.process.user.umask !== undefined && { umask: spec.process.user.umask }), ...(additionalGids.length > 0 && { additionalGids }) },
    args: o.command,
    env,
    cwd,
    // exec --privileged, as Podman: all of barge's capabilities, granted to whichever user runs.
    capabilities: o.privileged ? capabilitySets(privileged, privileged, user.uid) : spec.process.capabilities,
    rlimits: spec.process.rlimits,
    noNewPrivileges: spec.process.noNewPrivileges,
  };
}

/** Runtime error lines as they reach stderr (runc and crun print them there besides --log). */
const RUNTIME_LINE = /^(exec failed: |executable file `|open executable: |exec container process |\{"(level|msg)":")/;

/**
 * `podman exec`: resolves with the command's exit code (127 not found, 126 not executable, 125
 * other failures), or with 0 and the session id printed for -d.
 */
export async function execInContainer(store: Store, ref: string, o: ExecOptions): Promise<{ code: number; session?: string }> {
  if (o.command.length === 0) throw new ContainerError('must provide a non-empty command to start an exec session');
  const c = runningContainer(store, ref, 'can only create exec sessions on running containers: container state improper', 255);
  warmCgroupAttach();
  const proc = await execProcess(store, c, o);
  if (!o.healthcheck) containerEvent(store, c, 'exec');
  const p = containerPaths(store, c.record.id, c.data.config.runtimeName);
  const dir = await mkdtemp(join(p.run, 'exec-'));
  // runc and crun give the process a terminal of their own only when barge's stdin is one;
  // otherwise conmon makes the terminal and barge relays it, as Podman always does.
  if (proc.terminal && !process.stdin.isTTY) {
    try {
      return { code: await execUnderConmon(store, c, proc, dir, !!o.interactive) };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  try {
    const procFile = join(dir, 'process.json');
    const logFile = join(dir, 'runtime.log');
    await writeFile(procFile, JSON.stringify(proc), { mode: 0o600 });
    const fds = o.preserveFds ?? 0;
    const args = ['--root', p.stateRoot, '--log', logFile, '--log-format', 'json', 'exec', '--process', procFile, ...(o.detach ? ['--detach'] : []), ...(fds ? ['--preserve-fds', String(fds)] : []), c.record.id];
    // A detached process must not hold a pipe of ours open (runtime errors still reach the --log file).
    const stdio: StdioOptions = [
      ...(o.detach ? ['ignore', 'ignore', 'ignore'] as const : [o.interactive || proc.terminal ? 'inherit' : 'ignore', o.output ? 'pipe' : 'inherit', 'pipe'] as const),
      ...Array.from({ length: fds }, (_, i) => i + 3),
    ];
    const held: string[] = [];
    const errOut = o.output ?? ((t: string): boolean => process.stderr.write(t));
    const code = await new Promise<number>((resolve, reject) => {
      warmCgroupAttach();
      const child = childProcess().spawn(c.data.config.runtime, args, { stdio });
      if (o.output) child.stdout?.on('data', (b: Buffer) => o.output!(b.toString('utf8')));
      const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
      const forward = (sig: NodeJS.Signals): void => {
        try {
          child.kill(sig);
        } catch {
          // gone
        }
      };
      for (const s of signals) process.on(s, forward);
      let partial = '';
      child.stderr?.on('data', (b: Buffer) => {
        const text = partial + b.toString('utf8');
        const lines = text.split('\n');
        partial = lines.pop() ?? '';
        for (const l of lines) {
          if (RUNTIME_LINE.test(l)) held.push(l);
          else errOut(`${l}\n`);
        }
      });
      child.on('error', (e: NodeJS.ErrnoException) => {
        for (const s of signals) process.off(s, forward);
        reject(e.code === 'ENOENT' ? new ContainerError(`OCI runtime ${c.data.config.runtime} not found`) : e);
      });
      child.on('close', (code, signal) => {
        for (const s of signals) process.off(s, forward);
        if (partial !== '') {
          if (RUNTIME_LINE.test(partial)) held.push(partial);
          else errOut(partial);
        }
        resolve(exitStatus(code, signal));
      });
    });
    const msg = lastRuntimeLogError(logFile);
    if (code !== 0 && msg !== null) {
      const f = classifyRuntimeError(msg, o.command[0] ?? '');
      errOut(`${o.output ? '' : 'Error: '}${c.data.config.runtimeName}: ${f.message}\n`);
      return { code: f.code };
    }
    // Held lines that were not the runtime's after all are the command's own output.
    for (const l of held) errOut(`${l}\n`);
    // A detached process has no monitor here to see it end, so it gets no exec_died.
    if (o.detach) return code === 0 ? { code: 0, session: randomHex(32) } : { code: 125 };
    containerEvent(store, c, 'exec_died', { exitCode: code });
    return { code };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function execUnderConmon(store: Store, c: Container, proc: SpecProcess, dir: string, interactive: boolean): Promise<number> {
  const { connectAttachSocket, relayAttach } = await import('./attach.ts');
  const p = containerPaths(store, c.record.id, c.data.config.runtimeName);
  const processSpec = join(dir, 'process.json');
  await writeFile(processSpec, JSON.stringify(proc), { mode: 0o600 });
  const sessionId = randomHex(32);
  try {
    const started = await execWithConmon(
      {
        runtime: { name: c.data.config.runtimeName, path: c.data.config.runtime }, stateRoot: p.stateRoot, containerId: c.record.id,
        name: c.record.name, sessionId, sessionDir: dir, processSpec, socketDir: p.socketDir,
        terminal: true, stdin: interactive, arg0: proc.args[0] ?? '',
      },
      (sessionDir) => connectAttachSocket(sessionDir),
    );
    // No detach keys: an exec session ends with its process.
    await relayAttach(started.attached, { terminal: true, stdin: interactive, detachKeys: '', ctlPath: join(dir, 'ctl') });
    const code = await started.exitCode;
    containerEvent(store, c, 'exec_died', { exitCode: code });
    return code;
  } catch (e) {
    if (e instanceof ContainerStartError) {
      process.stderr.write(`Error: ${e.message}\n`);
      return e.exitCode;
    }
    throw e;
  } finally {
    await rm(join(p.socketDir, sessionId), { force: true });
  }
}
