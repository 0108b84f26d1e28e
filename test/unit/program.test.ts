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

describe('run of a working container', () => {
  it('every option of run is sorted into Podman\'s alone, Buildah\'s alone, or both (so none is silently ignored)', async () => {
    const { BUILDAH_RUN_ONLY, PODMAN_RUN_ONLY, RUN_SHARED } = await import('../../src/cli/commands/working.ts');
    const known = new Set<string>([...BUILDAH_RUN_ONLY, ...PODMAN_RUN_ONLY, ...RUN_SHARED, 'healthcheck']);
    const run = buildProgram('run').commands.find((c) => c.name() === 'run')!;
    // Options refused for every run (no networking, no pods, ...) need no sorting.
    const unsorted = run.options.filter((o) => !o.description.startsWith('not supported:') && !known.has(o.attributeName())).map((o) => o.long);
    expect(unsorted).toEqual([]);
  });
});
