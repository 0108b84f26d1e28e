// The command tree as a whole: commander refuses an option declared twice on one command only
// when that command is built, so every command and subcommand is built and asked for its help.
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/program.ts';

function all(c: Command): Command[] {
  return [c, ...c.commands.flatMap(all)];
}

describe('the command tree', () => {
  it('builds whole, and every command renders its help', () => {
    const program = buildProgram();
    const commands = all(program);
    expect(commands.length).toBeGreaterThan(100);
    for (const c of commands) expect(c.helpInformation(), c.name()).toContain('Usage:');
  });

  it('builds each top-level command alone, as the launcher does for a plain command word', () => {
    for (const c of buildProgram().commands) {
      const only = buildProgram(c.name());
      expect(only.commands.some((x) => x.name() === c.name()), c.name()).toBe(true);
    }
  });
});
