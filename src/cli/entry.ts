// The executable's entry: turn on V8's compile cache before any other module is loaded, so
// later runs skip parsing and compiling barge's code (most of a short command's start-up).
import { enableCompileCache } from 'node:module';
import { explainSingleMappingErrors, inBargeUserns, needsReexec, reexecInUserns, signalStarted, usernsMode } from '../sys/userns.ts';

enableCompileCache?.();
// Rootless: run again inside barge's user namespace before any of the CLI is loaded.
if (needsReexec(process.argv.slice(2))) await reexecInUserns();
if (inBargeUserns()) {
  signalStarted();
  if (usernsMode() === 'single') explainSingleMappingErrors();
}
await import('./main.ts');
