// The executable's entry: turn on V8's compile cache before any other module is loaded, so
// later runs skip parsing and compiling barge's code (most of a short command's start-up).
import { enableCompileCache } from 'node:module';

enableCompileCache?.();
await import('./main.ts');
