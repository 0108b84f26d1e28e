import { readFileSync } from 'node:fs';

/** A /proc or /sys file's text, or undefined when it cannot be read (the process is gone, no such cgroup). */
export function readProcFile(path: string): string | undefined {
  try {
    return readFileSync(path, 'latin1');
  } catch {
    return undefined;
  }
}

/**
 * The fields of /proc/PID/stat from the state on (proc(5)'s field 3 is [0], the start time, field
 * 22, is [19]), or undefined for a process that is gone. The command name before them may contain
 * spaces and parentheses: fields are counted after the last ')'.
 */
export function statFields(pid: number): string[] | undefined {
  const stat = readProcFile(`/proc/${pid}/stat`);
  return stat === undefined ? undefined : stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** The start time of a process (clock ticks since boot), which tells a live pid from a reused one. */
export function processStart(pid: number): string {
  return statFields(pid)?.[19] ?? '0';
}

export function isAlive(pid: number, start: string): boolean {
  return processStart(pid) === start && start !== '0';
}

/**
 * Whether this process is in the foreground process group of a controlling terminal: keyboard
 * signals (^C) and hangups then reach its children in that group too, and forwarding them again
 * would deliver them twice.
 */
export function inTerminalForeground(): boolean {
  // From the state on: state ppid pgrp session tty_nr tpgid
  const f = statFields(process.pid);
  return f !== undefined && Number(f[4]) !== 0 && Number(f[5]) === Number(f[2]);
}

