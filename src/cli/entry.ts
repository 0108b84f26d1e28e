// What the launcher (launcher.ts) runs: re-executes barge in its user namespace when rootless
// needs one, before any of the CLI is loaded, then runs the command.
import { explainSingleMappingErrors, inBargeUserns, needsReexec, reexecInUserns, signalStarted, usernsMode } from '../sys/userns.ts';

/** Resolves once the command has run; never, when barge runs again in a user namespace instead. */
export async function start(): Promise<void> {
  if (needsReexec(process.argv.slice(2))) await reexecInUserns();
  if (inBargeUserns()) {
    signalStarted();
    if (usernsMode() === 'single') explainSingleMappingErrors();
  }
  await (await import('./main.ts')).main();
}
