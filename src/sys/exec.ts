import type { StdioOptions } from 'node:child_process';
import { constants } from 'node:os';
import { childProcess } from './lazy-builtins.ts';

/** A failed external command, carrying what a user needs to see why. */
export class ExecError extends Error {
  constructor(
    readonly command: string,
    readonly args: readonly string[],
    readonly exitCode: number | null,
    readonly signal: string | null,
    readonly stderr: string,
  ) {
    const why = signal ? `killed by ${signal}` : `exit status ${exitCode}`;
    super(`${command} ${args.join(' ')}: ${why}${stderr ? `: ${stderr.trim()}` : ''}`);
    this.name = 'ExecError';
  }
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export interface ExecOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: string | Buffer;
  /** When false, a non-zero exit resolves instead of rejecting. */
  check?: boolean;
}

/** Runs a command to completion, capturing its output. */
export function exec(command: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = childProcess().spawn(command, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e: NodeJS.ErrnoException) => {
      // The code stays, for callers that explain a missing command better themselves.
      reject(e.code === 'ENOENT' ? Object.assign(new Error(`${command} not found in PATH; install it to use this feature`), { code: 'ENOENT' }) : e);
    });
    child.on('close', (code, signal) => {
      const res = { stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), exitCode: code ?? 128 };
      if ((code !== 0 || signal) && opts.check !== false) {
        reject(new ExecError(command, args, code, signal, res.stderr));
      } else resolve(res);
    });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
  });
}

/** Runs a command with the given stdio (inherited by default) and resolves to its exit code. */
export function execInteractive(
  command: string,
  args: readonly string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; stdio?: StdioOptions } = {},
): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = childProcess().spawn(command, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: opts.stdio ?? 'inherit' });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve(exitStatus(code, signal)));
  });
}

/**
 * A finished child's status as a shell reports it: its exit code, or 128 + the number of the
 * signal that killed it (137 for SIGKILL). 125 when neither is known.
 */
export function exitStatus(code: number | null, signal: NodeJS.Signals | null): number {
  if (signal) return 128 + (constants.signals[signal] ?? 0);
  return code ?? 125;
}
