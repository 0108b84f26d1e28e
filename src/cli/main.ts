import { CommanderError, type Command } from 'commander';
import { closeStore, ExitError } from './context.ts';
import { commandWords } from './command-line.ts';
import { buildProgram } from './program.ts';

/** Only the invoked command's subtree when the command word is plain; the whole tree for help, aliases and the like. */
function programFor(argv: string[]): Command {
  const [word] = commandWords(argv);
  if (word !== undefined && word !== 'help') {
    const program = buildProgram(word);
    if (program.commands.some((c) => c.name() === word)) return program;
  }
  return buildProgram();
}

export async function main(): Promise<void> {
  // `barge images | head -1` closes the pipe early: that is not an error.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
  const program = programFor(process.argv.slice(2));
  // Commander's own parse errors become Podman-style "Error: ..." lines.
  const writeErr = (s: string): void => {
    process.stderr.write(s.startsWith('error: ') ? `Error: ${s.slice(7)}` : s);
  };
  for (const c of [program, ...program.commands, ...program.commands.flatMap((c) => c.commands)]) {
    c.exitOverride();
    c.configureOutput({ writeErr });
  }
  try {
    await program.parseAsync(process.argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') process.exitCode = 0;
      else process.exitCode = 125;
    } else {
      const err = e as Error;
      if (process.env.BARGE_DEBUG) process.stderr.write(`${err.stack}\n`);
      process.stderr.write(`Error: ${err.message}\n`);
      process.exitCode = e instanceof ExitError ? e.exitCode : 125;
    }
  } finally {
    closeStore();
  }
}
