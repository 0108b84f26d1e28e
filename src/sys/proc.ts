import { readFileSync } from 'node:fs';

/** The start time of a process (clock ticks since boot), which tells a live pid from a reused one. */
export function processStart(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may contain spaces and parentheses: fields are counted after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? '0';
  } catch {
    return '0';
  }
}

export function isAlive(pid: number, start: string): boolean {
  return processStart(pid) === start && start !== '0';
}
