import { CommanderError, type Command } from 'commander';
import { closeStore, ExitError } from './context.ts';
import { commandLine, commandWords, GLOBAL_VALUE_OPTIONS } from './command-line.ts';
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

/** The command a command line invokes in `program`, and where its own arguments begin. */
function invoked(program: Command, args: readonly string[]): { cmd: Command | undefined; end: number } {
  const { words, end } = commandLine(args);
  let cmd: Command | undefined = program;
  for (const w of words) cmd = cmd?.commands.find((c) => c.name() === w || c.aliases().includes(w));
  return { cmd: cmd === program ? undefined : cmd, end };
}

/**
 * Podman's and Buildah's global flags are persistent flags, also taken after the command
 * (`podman images --root DIR`, `buildah bud --storage-driver vfs .`); commander's are not. Those
 * given among the command's own options (up to its first operand) move in front of the command,
 * unless the command has an option of that name, which then wins as in cobra (`build --runtime`).
 */
export function hoistGlobalFlags(program: Command, args: readonly string[]): string[] {
  const { cmd, end } = invoked(program, args);
  if (!cmd) return [...args];
  const own = new Set(cmd.options.flatMap((o) => [o.long, o.short]).filter((f) => f !== undefined));
  const valued = new Set(cmd.options.filter((o) => o.required).flatMap((o) => [o.long, o.short]).filter((f) => f !== undefined));
  const hoisted: string[] = [];
  const rest: string[] = [];
  for (let i = end; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--' || !a.startsWith('-')) {
      rest.push(...args.slice(i));
      break;
    }
    const name = a.includes('=') ? a.slice(0, a.indexOf('=')) : a;
    if (GLOBAL_VALUE_OPTIONS.has(name) && !own.has(name)) {
      hoisted.push(a);
      if (name === a && i + 1 < args.length) hoisted.push(args[++i]!);
      continue;
    }
    rest.push(a);
    if (valued.has(a) && i + 1 < args.length) rest.push(args[++i]!);
  }
  return hoisted.length ? [...hoisted, ...args.slice(0, end), ...rest] : [...args];
}

/**
 * Podman's and Buildah's boolean flags also take a value (`--rm=true`, `--layers=false`), as Go's
 * pflag allows; commander's take none. Such a flag of the invoked command becomes the plain flag
 * (true), its `--no-` form when there is one (false), or nothing (false, the default). Flags
 * declared `[bool]` keep a value given with `=`, and given bare become `--flag=true`: pflag never
 * takes a boolean's value from the next argument, commander would (`copy --dest-tls-verify SRC
 * DEST` lost SRC). Only up to the command's first operand: what follows an image or a container
 * may be the container's own command line.
 */
export function plainBooleanFlags(program: Command, args: readonly string[]): string[] {
  const { cmd, end } = invoked(program, args);
  if (!cmd) return [...args];
  const booleans = new Set(cmd.options.filter((o) => !o.required && !o.optional && o.long).map((o) => o.long!));
  const goBooleans = new Set(cmd.options.filter((o) => o.optional && o.long && o.flags.endsWith('[bool]')).map((o) => o.long!));
  // The value of `--authfile FILE` is not the first operand.
  const valued = new Set(cmd.options.filter((o) => o.required).flatMap((o) => [o.long, o.short]).filter((f) => f !== undefined));
  const out = args.slice(0, end);
  let operands = false;
  let value = false;
  for (const a of args.slice(end)) {
    if (value) {
      value = false;
      out.push(a);
      continue;
    }
    const m = operands ? null : /^(--[\w-]+)=(true|false)$/i.exec(a);
    if (a === '--' || (!a.startsWith('-') && !operands)) operands = true;
    if (!operands && goBooleans.has(a)) {
      out.push(`${a}=true`);
      continue;
    }
    if (!operands && valued.has(a)) value = true;
    if (!m || !booleans.has(m[1]!)) {
      out.push(a);
      continue;
    }
    const flag = m[1]!;
    if (m[2]!.toLowerCase() === 'true') out.push(flag);
    else if (booleans.has(`--no-${flag.slice(2)}`)) out.push(`--no-${flag.slice(2)}`);
  }
  return out;
}

/**
 * Calls f with process.stdout when something first uses it. Node makes the stream on first use,
 * and making it costs 2-3 ms (a pipe's loads net and stream modules): `run` and `exec`, whose
 * containers write to barge's stdout directly, never need it.
 */
function whenStdoutUsed(f: (out: NodeJS.WriteStream) => void): void {
  const d = Object.getOwnPropertyDescriptor(process, 'stdout');
  if (!d?.get || !d.configurable) {
    f(process.stdout);
    return;
  }
  const make = d.get;
  let made: NodeJS.WriteStream | undefined;
  Object.defineProperty(process, 'stdout', {
    configurable: true,
    enumerable: d.enumerable,
    get(): NodeJS.WriteStream {
      if (!made) {
        made = make.call(process) as NodeJS.WriteStream;
        f(made);
      }
      return made;
    },
  });
}

export async function main(): Promise<void> {
  // `barge images | head -1` closes the pipe early: that is not an error.
  whenStdoutUsed((out) => out.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  }));
  const program = programFor(process.argv.slice(2));
  // Commander's own parse errors become Podman-style "Error: ..." lines.
  const writeErr = (s: string): void => {
    process.stderr.write(s.startsWith('error: ') ? `Error: ${s.slice(7)}` : s);
  };
  for (const c of [program, ...program.commands, ...program.commands.flatMap((c) => c.commands)]) {
    c.exitOverride();
    c.configureOutput({ writeErr });
  }
  // Skopeo's commands fail with 1, Podman's and Buildah's with 125.
  const failure = commandWords(process.argv.slice(2))[0] === 'skopeo' ? 1 : 125;
  try {
    const args = hoistGlobalFlags(program, process.argv.slice(2));
    await program.parseAsync([...process.argv.slice(0, 2), ...plainBooleanFlags(program, args)]);
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') process.exitCode = 0;
      else process.exitCode = failure;
    } else {
      const err = e as Error;
      // A --format template that failed midway: Podman has already printed what it wrote.
      const partial = (e as { partialOutput?: unknown }).partialOutput;
      if (typeof partial === 'string') process.stdout.write(partial);
      if (process.env.BARGE_DEBUG) process.stderr.write(`${err.stack}\n`);
      process.stderr.write(`Error: ${err.message}\n`);
      process.exitCode = e instanceof ExitError ? e.exitCode : failure;
    }
  } finally {
    closeStore();
  }
}
