// Suite "pull" (issue 4): a debootstrap base plus three application layers, pushed once to a local
// docker-registry; then per repetition, into empty throwaway stores, `barge pull` vs `podman pull`,
// and registry -> oci:DIR, `barge copy` vs `skopeo copy`.
// Runs directly under Node 24 (type stripping): erasable TypeScript only, no imports from src/.
import { join } from 'node:path';
import { makeTree, PULL_LAYERS } from './fixtures.ts';
import {
  bargeTool, buildahTool, flushDirty, hasCommand, lastLine, measure, newCell, podmanTool, quiet, removeTree, skopeoTool, StepError, tool,
  type SuiteEnv, type SuiteResult, type Tool,
} from './lib.ts';
import { startRegistry, type Registry } from './registry.ts';
import { importBase } from './suite-build.ts';

const IMAGE = 'localhost/bench-pull';
const REPO_TAG = 'bench:latest';

/** base + one layer per PULL_LAYERS entry, each from its own commit (so each is its own layer). */
async function buildFixture(t: Tool, rootfsTar: string, layerDirs: string[]): Promise<void> {
  let from = 'localhost/bench-pull-base';
  await importBase(t, rootfsTar, from);
  for (let i = 0; i < PULL_LAYERS.length; i++) {
    const c = lastLine((await tool(t, 'from', from)).stdout);
    try {
      await tool(t, 'copy', c, layerDirs[i]!, PULL_LAYERS[i]!.dest);
      if (i === PULL_LAYERS.length - 1) await tool(t, 'config', '--cmd', '["/bin/bash"]', '--label', 'org.example.bench=pull', c);
      const name = i === PULL_LAYERS.length - 1 ? IMAGE : `${IMAGE}-${i}`;
      await tool(t, 'commit', c, name);
      from = name;
    } finally {
      await quiet(t, 'rm', c);
    }
  }
}

interface Pushed {
  how: string;
  failures: string[];
}

/** Pushes the fixture image once, falling back from barge push to skopeo to buildah. */
async function pushFixture(env: SuiteEnv, dir: string, reg: Registry, rootfsTar: string, layerDirs: string[]): Promise<Pushed> {
  const dest = `docker://${reg.host}/${REPO_TAG}`;
  const failures: string[] = [];
  const barge = bargeTool(env, join(dir, 'fixture-barge'));
  let built = false;
  try {
    await buildFixture(barge, rootfsTar, layerDirs);
    built = true;
    await tool(barge, 'push', '--tls-verify=false', IMAGE, dest);
    return { how: 'built with barge, pushed with barge push', failures };
  } catch (e) {
    if (!(e instanceof StepError)) throw e;
    failures.push(`${built ? 'barge push' : 'barge build of the fixture'} failed: ${e.message}`);
  }
  if (built && hasCommand('skopeo')) {
    const layout = join(dir, 'fixture-oci');
    try {
      await tool(barge, 'push', IMAGE, `oci:${layout}:latest`);
      await tool(skopeoTool(), 'copy', '--dest-tls-verify=false', `oci:${layout}:latest`, dest);
      return { how: 'built with barge, written as oci: by barge, pushed with skopeo copy', failures };
    } catch (e) {
      if (!(e instanceof StepError)) throw e;
      failures.push(`barge push to oci: + skopeo copy failed: ${e.message}`);
    }
  }
  if (hasCommand('buildah')) {
    const buildah = buildahTool(env, join(dir, 'fixture-buildah'));
    try {
      await buildFixture(buildah, rootfsTar, layerDirs);
      await tool(buildah, 'push', '--tls-verify=false', IMAGE, dest);
      return { how: 'built and pushed with buildah (barge could not)', failures };
    } catch (e) {
      if (!(e instanceof StepError)) throw e;
      failures.push(`buildah build/push of the fixture failed: ${e.message}`);
    }
  }
  throw new Error(`could not push the pull fixture to the registry: ${failures.join('; ')}`);
}

interface ManifestInfo {
  layers: number;
  compressedBytes: number;
  mediaType: string;
}

async function describeManifest(reg: Registry): Promise<ManifestInfo> {
  const [name, tag] = REPO_TAG.split(':');
  const r = await fetch(`http://${reg.host}/v2/${name}/manifests/${tag}`, {
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' },
    signal: AbortSignal.timeout(10_000),
  });
  if (!r.ok) throw new Error(`registry has no ${REPO_TAG} after the push: HTTP ${r.status}`);
  const m = (await r.json()) as { mediaType?: string; layers?: { size: number }[] };
  const layers = m.layers ?? [];
  return { layers: layers.length, compressedBytes: layers.reduce((a, l) => a + l.size, 0), mediaType: m.mediaType ?? r.headers.get('content-type') ?? '' };
}

export async function pullSuite(env: SuiteEnv): Promise<SuiteResult> {
  const dir = join(env.base, 'pull');
  const notes: string[] = [];
  const rootfsTar = env.debootstrapTar();
  const layerDirs = PULL_LAYERS.map((_, i) => join(dir, 'layers', String(i)));
  PULL_LAYERS.forEach((l, i) => makeTree(layerDirs[i]!, l.spec));

  env.log('pull: starting docker-registry on 127.0.0.1');
  const reg = await startRegistry(join(dir, 'registry'));
  env.onCleanup(reg.stop);
  try {
    env.log(`pull: building the fixture image and pushing it to ${reg.host}`);
    const pushed = await pushFixture(env, dir, reg, rootfsTar, layerDirs);
    notes.push(`fixture: ${pushed.how}`, ...pushed.failures.map((f) => `fixture: ${f}`));
    const manifest = await describeManifest(reg);
    const src = `docker://${reg.host}/${REPO_TAG}`;

    const pullB = newCell('barge');
    const pullP = newCell('podman');
    const copyB = newCell('barge');
    const copyS = newCell('skopeo');
    if (!hasCommand('podman')) pullP.error = 'podman not installed';
    if (!hasCommand('skopeo')) copyS.error = 'skopeo not installed';
    const versions: Record<string, { version: string; error: null }> = {};

    // Warm-up repetitions (BENCH_WARMUP) pay first-use costs; every repetition starts from
    // empty stores and an empty oci: directory.
    for (let rep = 0; rep < env.warmup + env.n; rep++) {
      const counting = rep >= env.warmup;
      env.log(counting ? `pull: rep ${rep - env.warmup + 1}/${env.n}` : 'pull: warm-up');
      const repDir = join(dir, `rep${rep}`);
      const barge = bargeTool(env, join(repDir, 'barge'));
      const podman = podmanTool(join(repDir, 'podman'));
      // barge copy needs no store, but give it a throwaway one in case it opens one.
      const bargeCopy = bargeTool(env, join(repDir, 'barge-copy'));
      const skopeo = skopeoTool();
      versions.barge = { version: barge.version, error: null };
      if (pullP.error === null) versions.podman = { version: podman.version, error: null };
      if (copyS.error === null) versions.skopeo = { version: skopeo.version, error: null };

      const pulls: [Tool, typeof pullB, string[]][] = [
        [barge, pullB, ['pull', '--tls-verify=false', src]],
        [podman, pullP, ['pull', '--tls-verify=false', src]],
      ];
      const copies: [Tool, typeof copyB, string[]][] = [
        [bargeCopy, copyB, ['copy', '--src-tls-verify=false', src, `oci:${join(repDir, 'oci-barge')}`]],
        [skopeo, copyS, ['copy', '--src-tls-verify=false', src, `oci:${join(repDir, 'oci-skopeo')}`]],
      ];
      // Alternate which tool goes first.
      for (const list of [pulls, copies]) {
        for (const [t, cell, args] of rep % 2 === 0 ? list : [...list].reverse()) {
          flushDirty();
          await measure(cell, counting, async () => (await tool(t, ...args)).ms);
        }
      }
      // Removed at the end, not now: ext4 skips the inodes of files deleted in the last 30 s or so
      // when it allocates new ones (recently_deleted), a scan that made every file the next
      // repetition creates several times slower, whichever tool happened to go first.
      env.onCleanup(() => removeTree(repDir));
    }

    return {
      rows: [
        { suite: 'pull', step: 'pull into empty store', barge: pullB, peer: pullP, target: 0.5, targetRef: 'issue 4' },
        { suite: 'pull', step: 'copy registry -> oci:', barge: copyB, peer: copyS, target: 1.0, targetRef: 'issue 4' },
      ],
      tools: versions,
      fixtures: {
        image: `debootstrap minbase bookworm + ${PULL_LAYERS.length} layers (${PULL_LAYERS.map((l) => `${l.dest}: ${(l.spec.bytes / 1048576).toFixed(0)} MiB in ${l.spec.files} files`).join(', ')})`,
        manifest_media_type: manifest.mediaType,
        layers: manifest.layers,
        compressed_bytes: manifest.compressedBytes,
        registry: `docker-registry on ${reg.host}, plain http`,
        pulled_as: src,
      },
      notes,
    };
  } finally {
    await reg.stop();
  }
}
