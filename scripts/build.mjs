// Bundles src/ into dist/ with one chunk per command, so a command loads only what it needs.
// The bundle is built beside dist/ and its files are renamed in one by one: chunk names are
// content hashes, so a barge already running (another test run, a benchmark) still finds the
// chunks it lazily loads, and never sees a half-written or missing dist/.
import { build } from 'esbuild';
import { mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';

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
await build({
  // The layer unpacker runs in worker threads, which load it by file name (src/store/store.ts).
  entryPoints: { main: `${root}src/cli/entry.ts`, 'unpack-worker': `${root}src/store/unpack-worker.ts` },
  outdir: tmp,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node22',
  outExtension: { '.js': '.mjs' },
  sourcemap: 'linked',
  logLevel: 'warning',
  // A native addon (conmon's SOCK_SEQPACKET attach socket): loaded from node_modules at run time.
  external: ['node-unix-socket'],
  plugins: [lazyChildProcessForCommander],
  // Some dependencies are CommonJS and call require() for node builtins.
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
});
mkdirSync(`${root}dist`, { recursive: true });
const fresh = new Set(readdirSync(tmp));
// Entries last, so they never refer to a chunk that is not there yet.
const isEntry = (f) => Number(f.startsWith('main.') || f.startsWith('unpack-worker.'));
for (const f of [...fresh].sort((a, b) => isEntry(a) - isEntry(b))) {
  renameSync(`${tmp}/${f}`, `${root}dist/${f}`);
}
rmSync(tmp, { recursive: true, force: true });
// Chunks of older builds are kept for a while for processes that may still load them.
for (const f of readdirSync(`${root}dist`)) {
  if (!fresh.has(f) && Date.now() - statSync(`${root}dist/${f}`).mtimeMs > 3600_000) rmSync(`${root}dist/${f}`, { force: true });
}
