// Suite "rootless" (issue 5): the scripted build of the primitives suite and the Containerfile build
// of the build suite (cold and fully cached), both tools run as an unprivileged user with
// subordinate id ranges: barge in its user namespace, buildah likewise, each on overlay (buildah
// reads driver = "overlay" from the user's storage.conf; without it buildah would fall back to vfs).
// Runs directly under Node 24 (type stripping): erasable TypeScript only, no imports from src/.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BUILD_CONTEXT, COPY_TREE, makeTree } from './fixtures.ts';
import {
  bargeTool, buildahTool, hasCommand, makeBusyboxRootfs, measure, newCell, quiet, StepError, tool,
  type Cell, type SuiteEnv, type SuiteResult, type Tool,
} from './lib.ts';
import { BASE_IMAGE, cacheMissNotes, coldThenCached, CONTAINERFILE, importBase, TAG } from './suite-build.ts';
import { BUSYBOX_IMAGE, scripted } from './suite-primitives.ts';

const USER = 'bargebench';
// Disjoint from the ranges the test suites give their users.
const SUBIDS = '500000-565535';

interface BenchUser {
  uid: number;
  gid: number;
}

function idOf(flag: '-u' | '-g'): number | undefined {
  const r = spawnSync('id', [flag, USER], { encoding: 'utf8' });
  return r.status === 0 ? Number(r.stdout.trim()) : undefined;
}

/** The bench user, made once (with subordinate ranges) and reused by later runs. */
function ensureUser(): BenchUser {
  if (idOf('-u') === undefined) execFileSync('useradd', ['-m', '-s', '/bin/sh', USER], { stdio: 'pipe' });
  for (const [file, flag] of [['/etc/subuid', '--add-subuids'], ['/etc/subgid', '--add-subgids']] as const) {
    const r = spawnSync('grep', ['-q', `^${USER}:`, file]);
    if (r.status !== 0) execFileSync('usermod', [flag, SUBIDS, USER], { stdio: 'pipe' });
  }
  return { uid: idOf('-u')!, gid: idOf('-g')! };
}

/** A directory owned by the user. */
function userDir(u: BenchUser, path: string): string {
  mkdirSync(path, { recursive: true });
  chownSync(path, u.uid, u.gid);
  return path;
}

/** The same tool, run as the user with its own HOME and runtime directory. */
function asUser(t: Tool, u: BenchUser, home: string, run: string): Tool {
  const env = [`HOME=${home}`, `XDG_RUNTIME_DIR=${run}`, `USER=${USER}`, `LOGNAME=${USER}`, 'XDG_CONFIG_HOME=', 'XDG_DATA_HOME='];
  return { ...t, argv: ['setpriv', '--reuid', String(u.uid), '--regid', String(u.gid), '--init-groups', 'env', ...env, ...t.argv] };
}

export async function rootlessSuite(env: SuiteEnv): Promise<SuiteResult> {
  const notes: string[] = [];
  const u = ensureUser();
  // The run's work directory is root's and private: let the user through to its own part of it.
  chmodSync(env.base, 0o711);
  const dir = userDir(u, join(env.base, 'rootless'));
  const home = userDir(u, join(dir, 'home'));
  const run = userDir(u, join(dir, 'run'));
  chmodSync(run, 0o700);
  // Last of the cleanups (they run in reverse): the pause process that keeps the user's barge
  // namespaces for this runtime directory (src/sys/pause.ts) would otherwise outlive the run.
  env.onCleanup(() => {
    try {
      process.kill(Number(readFileSync(join(run, 'barge', 'pause.pid'), 'utf8').split(' ')[0]), 'SIGKILL');
    } catch {
      // None was started, or it is gone.
    }
  });
  // What buildah needs to use overlay rootless; barge needs nothing.
  const conf = userDir(u, join(home, '.config', 'containers'));
  writeFileSync(join(conf, 'storage.conf'), `[storage]\ndriver = "overlay"\ngraphroot = "${join(dir, 'buildah-default')}"\nrunroot = "${join(run, 'buildah')}"\n`);
  chownSync(join(conf, 'storage.conf'), u.uid, u.gid);

  const busyboxTar = join(dir, 'busybox.tar');
  makeBusyboxRootfs(env, busyboxTar);
  const rootfsTar = env.debootstrapTar();
  const copyDir = join(dir, 'copy-src');
  makeTree(copyDir, COPY_TREE);
  const ctx = join(dir, 'context');
  env.log(`rootless: writing the ${(BUILD_CONTEXT.bytes / 1048576).toFixed(0)} MiB build context`);
  makeTree(ctx, BUILD_CONTEXT);
  const cf = join(dir, 'containerfile', 'Containerfile');
  mkdirSync(join(dir, 'containerfile'));
  writeFileSync(cf, CONTAINERFILE);

  const tools: Tool[] = [asUser(bargeTool(env, userDir(u, join(dir, 'barge'))), u, home, run)];
  const names = ['barge', 'buildah'];
  const cell = (): Map<string, Cell> => new Map(names.map((n) => [n, newCell(n)]));
  const scriptedCells = cell();
  const cold = cell();
  const cached = cell();
  if (hasCommand('buildah')) tools.push(asUser(buildahTool(env, userDir(u, join(dir, 'buildah'))), u, home, run));
  else for (const m of [scriptedCells, cold, cached]) m.get('buildah')!.error = 'buildah not installed';
  for (const t of tools) env.onCleanup(() => quiet(t, 'rm', '--all'));

  env.log('rootless: importing busybox and the debootstrap base into both stores, as the user');
  for (const t of tools) {
    try {
      await importBase(t, busyboxTar, BUSYBOX_IMAGE);
      await importBase(t, rootfsTar, BASE_IMAGE);
    } catch (e) {
      if (!(e instanceof StepError)) throw e;
      for (const m of [scriptedCells, cold, cached]) m.get(t.name)!.error = `import of the base images failed: ${e.message}`;
    }
  }

  const buildArgs = (noCache: boolean): string[] => ['build', '--layers', ...(noCache ? ['--no-cache'] : []), '-f', cf, '-t', TAG, ctx];
  const cacheMisses = new Map<string, number[]>(tools.map((t) => [t.name, []]));
  for (let rep = 0; rep < env.warmup + env.n; rep++) {
    const counting = rep >= env.warmup;
    env.log(counting ? `rootless: rep ${rep - env.warmup + 1}/${env.n}` : 'rootless: warm-up');
    const order = rep % 2 === 0 ? tools : [...tools].reverse();
    for (const t of order) {
      await measure(scriptedCells.get(t.name)!, counting, async () => {
        let ms = 0;
        await scripted(t, copyDir, rep, (_step, v) => (ms = v));
        return ms;
      });
      await coldThenCached({
        cold: cold.get(t.name)!, cached: cached.get(t.name)!, counting, misses: cacheMisses.get(t.name)!,
        build: (noCache) => tool(t, ...buildArgs(noCache)),
      });
    }
  }
  notes.push(...cacheMissNotes(cacheMisses));
  const driver = spawnSync(tools[0]!.argv[0]!, [...tools[0]!.argv.slice(1), 'info', '--format', '{{.Store.GraphDriverReason}}'], { encoding: 'utf8' });
  notes.push(`barge as ${USER}: ${driver.stdout.trim() || driver.stderr.trim()}`);

  return {
    rows: [
      { suite: 'rootless', step: 'scripted build', barge: scriptedCells.get('barge')!, peer: scriptedCells.get('buildah')!, target: null },
      { suite: 'rootless', step: 'build cold (--no-cache)', barge: cold.get('barge')!, peer: cold.get('buildah')!, target: 0.7, targetRef: 'issue 3 (root target)' },
      { suite: 'rootless', step: 'build fully cached', barge: cached.get('barge')!, peer: cached.get('buildah')!, target: 0.1, targetRef: 'issue 3 (root target)' },
    ],
    tools: Object.fromEntries(tools.map((t) => [t.name, { version: t.version, error: null }])),
    fixtures: {
      user: `${USER} (uid ${u.uid}), subordinate ids ${SUBIDS}`,
      scripted: `as the primitives suite: from ${BUSYBOX_IMAGE}, copy ${COPY_TREE.bytes} bytes, 3 runs, config, commit`,
      containerfile: CONTAINERFILE,
      context_bytes: BUILD_CONTEXT.bytes,
      buildah_storage_conf: 'driver = "overlay" in ~/.config/containers/storage.conf',
      cache_misses: Object.fromEntries(cacheMisses),
    },
    notes,
  };
}
