// Where the command is in a command line, before commander has parsed it: main.ts builds only
// that command's part of the program, the launcher picks that command's code cache, and
// `generate systemd` finds the verb of the line it writes into a unit.

/** barge's global options that take a value: their values are never the command word. */
export const GLOBAL_VALUE_OPTIONS = new Set(['--root', '--runroot', '--storage-driver', '--log-level', '--runtime']);

/** Commands whose first operand is a subcommand. */
const GROUPS = new Set(['container', 'generate', 'image', 'skopeo', 'system']);

/** A group's own options that take a value (Skopeo's global flags), given before its subcommand. */
const GROUP_VALUE_OPTIONS: Record<string, ReadonlySet<string>> = {
  skopeo: new Set(['--policy', '--override-arch', '--override-os', '--override-variant', '--tmpdir', '--command-timeout', '--registries.d']),
};

/** The command word of a command line (arguments after the executable), and the subcommand's for a group. */
export function commandWords(args: readonly string[]): string[] {
  return commandLine(args).words;
}

/** commandWords, and the index in `args` just after the last of them (where the command's own arguments begin). */
export function commandLine(args: readonly string[]): { words: string[]; end: number } {
  const words: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (GLOBAL_VALUE_OPTIONS.has(a) || (words.length === 1 && GROUP_VALUE_OPTIONS[words[0]!]?.has(a))) i++;
    else if (!a.startsWith('-')) {
      words.push(a);
      if (words.length === 2 || !GROUPS.has(a)) return { words, end: i + 1 };
    }
  }
  return { words, end: args.length };
}
