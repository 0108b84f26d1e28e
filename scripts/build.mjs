// Bundles src/ into dist/:
//   main.cjs            the launcher bin/barge runs (src/cli/launcher.ts): small, and loads
//   barge.cjs           all of barge in one script, which it runs with a per-command V8 code cache;
//                       a command's modules are initialised only when it reaches them
//   unpack-worker.mjs   the layer unpacker's worker threads (src/store/unpack-worker.ts)
// The files are built beside dist/ and renamed in one by one, so a barge already running (another
// test run, a benchmark) never sees a half-written or missing file.
import { build } from 'esbuild';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';

const root = new URL('..', import.meta.url).pathname;

// commander requires node:child_process when it loads, only for executable subcommands, which
// barge has none of. Loading child_process (with net and dgram) costs every command about 4 ms,
// and `config` or `images` never start a process: commander gets a stand-in that loads the real
// module on first use.
const lazyChildProcessForCommander = {
  name: 'lazy-child-process-for-commander',
  setup(b) {
    b.onResolve({ filter: /^(node:)?child_process$/ }, (args) =>
      args.importer.includes('/node_modules/commander/') ? { path: 'child_process', namespace: 'lazy-builtin' } : undefined);
    b.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, () => ({
      contents: "module.exports = new Proxy({}, { get: (_, k) => process.getBuiltinModule('node:child_process')[k] });",
      loader: 'js',
    }));
  },
};

const tmp = `${root}dist.tmp-${process.pid}`;
mkdirSync(tmp, { recursive: true });
// The bundle's `import.meta.url` (store.ts finds the worker by it): the URL of the file the
// launcher runs it as, which it passes as __filename.
const metaShim = `${tmp}/import-meta-url.js`;
writeFileSync(metaShim, "export const import_meta_url = require('node:url').pathToFileURL(__filename).href;\n");
const common = {
  bundle: true,
  platform: 'node',
  target: 'node22',
  sourcemap: 'linked',
  logLevel: 'warning',
  // Loaded from node_modules at run time: a native addon (conmon's SOCK_SEQPACKET attach socket),
  // and the YAML parser only `sync --src yaml` needs (a fifth of the bundle otherwise).
  external: ['node-unix-socket', 'yaml'],
  // ASCII only: the launcher reads the bundle as latin1, a third of the time UTF-8 decoding takes.
  charset: 'ascii',
};
await Promise.all([
  build({ ...common, entryPoints: [`${root}src/cli/launcher.ts`], outfile: `${tmp}/out/main.cjs`, format: 'cjs' }),
  build({
    ...common,
    entryPoints: [`${root}src/cli/entry.ts`],
    outfile: `${tmp}/out/barge.cjs`,
    format: 'cjs',
    plugins: [lazyChildProcessForCommander],
    inject: [metaShim],
    define: { 'import.meta.url': 'import_meta_url' },
  }),
  build({
    ...common,
    entryPoints: [`${root}src/store/unpack-worker.ts`],
    outfile: `${tmp}/out/unpack-worker.mjs`,
    format: 'esm',
    // Some dependencies are CommonJS and call require() for node builtins.
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  }),
]);
// esbuild escapes strings, but not regular expression literals or the comments it keeps.
const nonAscii = readFileSync(`${tmp}/out/barge.cjs`, 'utf8').split('\n').flatMap((l, i) => (/[^\x00-\x7f]/.test(l) ? [`  barge.cjs:${i + 1}: ${l.trim()}`] : []));
if (nonAscii.length) {
  rmSync(tmp, { recursive: true, force: true });
  throw new Error(`the bundle must be ASCII only (the launcher reads it as latin1); escape these in src/:\n${nonAscii.join('\n')}`);
}
mkdirSync(`${root}dist`, { recursive: true });
const fresh = new Set(readdirSync(`${tmp}/out`));
// The launcher last, so that it never runs a bundle that is not there yet.
const isLauncher = (f) => Number(f.startsWith('main.'));
for (const f of [...fresh].sort((a, b) => isLauncher(a) - isLauncher(b))) {
  renameSync(`${tmp}/out/${f}`, `${root}dist/${f}`);
}
rmSync(tmp, { recursive: true, force: true });
// Files of older builds are kept for a while for processes that may still load them.
for (const f of readdirSync(`${root}dist`)) {
  if (!fresh.has(f) && Date.now() - statSync(`${root}dist/${f}`).mtimeMs > 3600_000) rmSync(`${root}dist/${f}`, { force: true });
}
