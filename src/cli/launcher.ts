// The executable's start (dist/main.cjs): runs barge's one-file bundle (dist/barge.cjs) with a V8
// code cache of the functions the same command compiled on its earlier runs.
//
// Node's own compile cache is written as soon as a module is compiled, so it holds top-level code
// only: every function a command calls was parsed and compiled again on every run, which was most
// of a short command's start-up. A cache V8 makes after the command has run holds those functions
// too. Measured against the split ESM build with Node's cache (medians of 25 alternating runs):
// `config` 61 → 50 ms, `inspect` 62 → 47, `ps` 63 → 54, `run --rm` 121 → 98.
//
// One cache per command (`run`, `config`, `container checkpoint`, ...): a command's first runs
// after a build each write one, and as a run's cache keeps what the cache it loaded held, the
// last holds what they all used; later runs only read it. The caches live in the user's own cache
// directory, which must belong to the user and be writable by no one else: V8 runs cached code as
// it finds it, so a cache another user could write would be code that user runs as this one.
import { closeSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { createRequire, enableCompileCache } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { constants, Script } from 'node:vm';
import { checksum } from './checksum.ts';
import { commandWords } from './command-line.ts';

const BUNDLE = join(__dirname, 'barge.cjs');
/** How many runs of a command after a build add to its cache. */
const LEARNING_RUNS = 3;
const MAGIC = 0x42524743; // "BRGC"
// magic, runs, payload length, payload checksum (four u32): V8 checks a cache's version and length
// but not its content, and deserialising damaged code can crash the process or change what it does.
const HEADER = 16;

/** The cache directory if it is this user's own and no one else can write to it. */
function trustedDir(dir: string, create: boolean): boolean {
  try {
    if (create) mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = statSync(dir);
    return st.isDirectory() && st.uid === process.getuid?.() && (st.mode & 0o022) === 0;
  } catch {
    return false;
  }
}

interface Cached {
  runs: number;
  data: Buffer;
}

function readCache(file: string): Cached | undefined {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch {
    return undefined;
  }
  if (buf.length < HEADER || buf.readUInt32LE(0) !== MAGIC || buf.readUInt32LE(8) !== buf.length - HEADER) return undefined;
  const data = buf.subarray(HEADER);
  return checksum(data) === buf.readUInt32LE(12) ? { runs: buf.readUInt32LE(4), data } : undefined;
}

/** Written beside and renamed over: concurrent runs of one command never see half a cache. */
function writeCache(dir: string, file: string, runs: number, data: Buffer, build: string): void {
  const header = Buffer.alloc(HEADER);
  header.writeUInt32LE(MAGIC, 0);
  header.writeUInt32LE(runs, 4);
  header.writeUInt32LE(data.length, 8);
  header.writeUInt32LE(checksum(data), 12);
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, header);
    writeSync(fd, data);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  // Caches of this install's earlier builds are of no more use; another install's (a second
  // checkout, the bench's old build) are left to it, or two installs would keep deleting each other's.
  for (const f of readdirSync(dir)) {
    if (f.startsWith(`${place}-`) ? !f.startsWith(`${place}-${build}.`) : !/^[0-9a-f]{8}-/.test(f)) rmSync(join(dir, f), { force: true });
  }
}

const cacheRoot = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'barge');
// The layer unpacker's worker threads load an ES module of their own (dist/unpack-worker.mjs).
enableCompileCache?.(join(cacheRoot, 'node-compile-cache'));

// A rebuilt bundle is a new file (build.mjs renames it into place): its cache starts afresh. The
// identity and the source come from one open file, so a build landing in between cannot give
// this source the next build's cache, or the next build this source's.
const bundleFd = openSync(BUNDLE, 'r');
const st = fstatSync(bundleFd);
const build = `${st.ino}-${st.size}-${Math.trunc(st.mtimeMs)}`;
// Which install (the bundle's path) a cache belongs to: FNV-1a of the path, as a name, not a check.
let pathHash = 0x811c9dc5;
for (let i = 0; i < BUNDLE.length; i++) pathHash = Math.imul(pathHash ^ BUNDLE.charCodeAt(i), 0x01000193) >>> 0;
const place = pathHash.toString(16).padStart(8, '0');
// build.mjs makes it ASCII only.
const source = readFileSync(bundleFd, 'latin1');
closeSync(bundleFd);
const key = commandWords(process.argv.slice(2))
  .filter((w) => /^[a-z][a-z-]{0,23}$/.test(w))
  .join('-') || 'none';
const dir = join(cacheRoot, 'code');
const file = join(dir, `${place}-${build}.${key}.bin`);
const cached = trustedDir(dir, false) ? readCache(file) : undefined;

const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
  filename: BUNDLE,
  ...(cached && { cachedData: cached.data }),
  importModuleDynamically: constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
});
const runs = cached && !script.cachedDataRejected ? cached.runs : 0;
let ran = false;
if (runs < LEARNING_RUNS) {
  process.on('exit', () => {
    // Only a run that got through its command knows what the command uses (not the parent of a
    // re-execution in the user namespace, not a run that exited early).
    if (!ran || !trustedDir(dir, true)) return;
    try {
      writeCache(dir, file, runs + 1, script.createCachedData(), build);
    } catch {
      // A cache is an optimisation: a full disk or a read-only home costs speed, not the command.
    }
  });
}

const bundle: { exports: { start?: () => Promise<void> } } = { exports: {} };
(script.runInThisContext() as (e: object, r: NodeJS.Require, m: object, f: string, d: string) => void)(
  bundle.exports, createRequire(BUNDLE), bundle, BUNDLE, dirname(BUNDLE),
);
void bundle.exports.start!().then(() => {
  ran = true;
});
