// The executable's entry: turn on V8's compile cache before any other module is loaded, so
// later runs skip parsing and compiling barge's code (most of a short command's start-up).
import { enableCompileCache } from 'node:module';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { explainSingleMappingErrors, hostUid, inBargeUserns, needsReexec, reexecInUserns, signalStarted, usernsMode } from '../sys/userns.ts';

// Node's default cache directory is one shared /tmp/node-compile-cache, which belongs to whoever
// made it first (usually root): any other user would silently compile everything on every run.
enableCompileCache?.(hostUid() === 0 ? undefined : join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'barge', 'node-compile-cache'));
// Rootless: run again inside barge's user namespace before any of the CLI is loaded.
if (needsReexec(process.argv.slice(2))) await reexecInUserns();
if (inBargeUserns()) {
  signalStarted();
  if (usernsMode() === 'single') explainSingleMappingErrors();
}
await import('./main.ts');
