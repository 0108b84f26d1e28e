// Interop for `barge build`: each Containerfile in containerfiles/ is built by barge and by
// buildah 1.28 (on the same base image: busybox, or for gcc-hello the debootstrap Debian base with
// gcc), and the two images must have the same config, the same history and the same files; then
// podman (in a throwaway store) loads what barge built and runs it. The last test checks that no
// Containerfile in containerfiles/ is left out.
//
// Differences that remain on purpose are listed, per case, next to what they compare; each is
// asserted as it is, so a change on either side shows up here.
import { createHash } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, type Env } from '../helpers.ts';
import { describeTool, podmanIn, runTool, type ToolResult } from '../images/lib.ts';
import { busyboxEnv } from '../fixtures.ts';
import { buildOk, DEFAULT_PATH, imageJSON, importGccBase } from './lib.ts';

let env: Env;
let buildahBase: string[];
let buildahTmp: string;
let podman: (args: readonly string[]) => Promise<ToolResult>;

beforeAll(async () => {
  ({ env } = await busyboxEnv());
  const broot = join(env.tmp, 'buildah');
  buildahTmp = join(broot, 'tmp');
  await mkdir(buildahTmp, { recursive: true });
  buildahBase = ['--root', join(broot, 'root'), '--runroot', join(broot, 'runroot'), '--storage-driver', 'overlay'];
  podman = podmanIn(join(env.tmp, 'podman'));
  // Buildah's store gets the very image barge builds on: barge's save, named localhost/busybox
  // (which FROM busybox finds with --pull=never).
  const bb = join(env.tmp, 'busybox.tar');
  await env.bargeOk(['save', '-o', bb, 'busybox']);
  await buildahOk(['pull', '-q', `docker-archive:${bb}`]);
});

afterAll(async () => {
  // Both tools' mounts live under env.tmp; env.cleanup() unmounts whatever these leave.
  if (buildahBase) {
    await buildah(['rm', '--all']);
    await buildah(['rmi', '--all', '--force']);
  }
  await podman?.(['rm', '-a', '-f']);
  await podman?.(['rmi', '-a', '-f']);
  await env?.cleanup();
});

/**
 * Buildah confined to a store under env.tmp. TMPDIR keeps its scratch files and its
 * `RUN --mount=type=cache` directories (by default /var/tmp/buildah-cache) in there too.
 */
function buildah(args: readonly string[]): Promise<ToolResult> {
  return runTool('env', [`TMPDIR=${buildahTmp}`, 'buildah', ...buildahBase, ...args]);
}

async function buildahOk(args: readonly string[]): Promise<string> {
  const r = await buildah(args);
  if (r.code !== 0) throw new Error(describeTool('buildah', args, r));
  return r.stdout.trim();
}

interface HistoryEntry {
  created_by?: string;
  empty_layer?: boolean;
}
interface Inspected {
  OCIv1: { config?: Record<string, unknown>; history?: HistoryEntry[] };
}

/** barge's and buildah's OCIv1 config and history of an image. */
async function inspectBoth(bargeImage: string, buildahImage: string): Promise<{ barge: Inspected['OCIv1']; buildah: Inspected['OCIv1'] }> {
  const b = (await imageJSON(env, bargeImage)).OCIv1 as Inspected['OCIv1'];
  // buildah 1.28's --format has no `json` function, so the whole document is parsed instead.
  const bb = JSON.parse(await buildahOk(['inspect', '--type', 'image', buildahImage])) as Inspected;
  return { barge: { config: b.config ?? {}, history: b.history ?? [] }, buildah: { config: bb.OCIv1.config ?? {}, history: bb.OCIv1.history ?? [] } };
}

/**
 * Buildah's config without the io.buildah.version label it stamps on every image it commits,
 * the one legitimate difference. (Both add the default PATH to Env when the base sets none, as
 * the busybox test image and FROM scratch do; the callers assert it is there.)
 */
function normaliseBuildahConfig(c: Record<string, unknown>): Record<string, unknown> {
  const out = structuredClone(c);
  const labels = { ...(out.Labels as Record<string, string> | undefined) };
  expect(labels['io.buildah.version']).toMatch(/^1\.28\./);
  delete labels['io.buildah.version'];
  if (Object.keys(labels).length) out.Labels = labels;
  else delete out.Labels;
  return out;
}

/**
 * History as comparable text. COPY/ADD summaries differ by design: buildah always names the
 * content by a digest (`dir:<sha256>`), barge without --layers names the sources as written
 * (it does not read the whole context just for the history text; with --layers it writes
 * `dir:<hash>` of its own, which is a different digest). Both become `<src>`.
 */
function historyText(h: HistoryEntry[]): string[] {
  return h.map((e) => {
    const by = (e.created_by ?? '').replace(/^(\/bin\/sh -c #\(nop\) (?:COPY|ADD)) .+? in /, '$1 <src> in ');
    return `${by}${e.empty_layer ? '  [empty]' : ''}`;
  });
}

/**
 * Buildah 1.28 writes a RUN's flags into its history (`/bin/sh -c --mount=... cmd`, it keeps
 * the instruction's text after "RUN "); barge, like Docker, records the command only.
 */
function dropRunFlags(lines: string[]): string[] {
  return lines.map((l) => l.replace(/(\/bin\/sh -c )((?:--[a-z]+=\S+\s+)+)/, '$1'));
}

/** `path → "type mode uid:gid size sha256"` for every entry under a mounted root (the root itself left out). */
async function listTree(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(join(root, rel))).sort()) {
      const p = rel ? `${rel}/${name}` : name;
      const st = await lstat(join(root, p));
      const mode = (st.mode & 0o7777).toString(8);
      const own = `${st.uid}:${st.gid}`;
      if (st.isDirectory()) {
        out.set(p, `dir ${mode} ${own}`);
        await walk(p);
      } else if (st.isSymbolicLink()) out.set(p, `link ${own} -> ${await readlink(join(root, p))}`);
      else if (st.isFile()) out.set(p, `file ${mode} ${own} ${st.size} ${createHash('sha256').update(await readFile(join(root, p))).digest('hex').slice(0, 16)}`);
      else out.set(p, `other ${mode} ${own}`);
    }
  };
  await walk('');
  return out;
}

async function bargeFiles(image: string): Promise<Map<string, string>> {
  const ctr = await env.bargeOk(['from', image]);
  try {
    return await listTree(await env.bargeOk(['mount', ctr]));
  } finally {
    await env.bargeOk(['rm', ctr]);
  }
}

async function buildahFiles(image: string): Promise<Map<string, string>> {
  const ctr = await buildahOk(['from', '--pull-never', image]);
  try {
    return await listTree(await buildahOk(['mount', ctr]));
  } finally {
    await buildahOk(['rm', ctr]);
  }
}

/**
 * Compares the two listings. `buildahOnly` are paths only buildah's image has (each must be
 * there, and absent from barge's); `differs` are paths whose entry is expected to differ, given
 * as [barge, buildah]. Everything else must be identical.
 */
function compareTrees(barge: Map<string, string>, buildah: Map<string, string>, known: { buildahOnly?: Record<string, string>; differs?: Record<string, [string, string]> }): void {
  for (const [p, desc] of Object.entries(known.buildahOnly ?? {})) {
    expect(barge.has(p), `${p} in barge's image`).toBe(false);
    expect(buildah.get(p), `${p} in buildah's image`).toBe(desc);
    buildah.delete(p);
  }
  for (const [p, [b, bh]] of Object.entries(known.differs ?? {})) {
    expect([barge.get(p), buildah.get(p)], p).toEqual([b, bh]);
    barge.delete(p);
    buildah.delete(p);
  }
  const render = (m: Map<string, string>): string => [...m].map(([p, d]) => `${p} ${d}`).join('\n');
  expect(render(barge)).toBe(render(buildah));
}

/**
 * Buildah leaves empty /etc/hostname, /etc/hosts and /etc/resolv.conf behind when a RUN step of
 * the final stage bind-mounted them over paths the image does not have (mode 0755, even); barge
 * creates nothing in the image for its RUN-time mounts.
 */
const BUILDAH_RUN_PLACEHOLDERS: Record<string, string> = Object.fromEntries(
  ['etc/hostname', 'etc/hosts', 'etc/resolv.conf'].map((p) => [p, `file 755 0:0 0 ${createHash('sha256').digest('hex').slice(0, 16)}`]),
);

const dir = (name: string): string => join(REPO_ROOT, 'containerfiles', name);

/** `barge save` then `podman load` into the throwaway store; returns the name podman knows it by. */
async function toPodman(image: string): Promise<string> {
  const file = join(env.tmp, `${image}.tar`);
  await env.bargeOk(['save', '-o', file, image]);
  const load = await podman(['load', '-i', file]);
  expect(load.code, describeTool('podman load -i', [file], load)).toBe(0);
  expect(load.stdout).toContain(`localhost/${image}:latest`);
  return `localhost/${image}:latest`;
}

async function podmanRun(image: string, cmd: string[]): Promise<string> {
  const args = ['run', '--rm', '--network', 'none', image, ...cmd];
  const r = await podman(args);
  expect(r.code, describeTool('podman', args, r)).toBe(0);
  return r.stdout;
}

describe('static-site', () => {
  it('barge and buildah build the same image', async () => {
    await buildOk(env, dir('static-site'), ['-t', 'site']);
    await buildahOk(['build', '--pull=never', '-q', '-t', 'bh-site', dir('static-site')]);
    const { barge, buildah: bh } = await inspectBoth('site', 'bh-site');

    expect(barge.config).toEqual(normaliseBuildahConfig(bh.config!));
    expect(barge.config).toMatchObject({ Env: [DEFAULT_PATH, 'PORT=8080', 'DOCROOT=/srv/www'], User: 'www', WorkingDir: '/srv/www' });

    // The same history, entry for entry (the ADD of the base included, the same in both).
    expect(historyText(barge.history!)).toEqual(historyText(bh.history!));
    expect(historyText(barge.history!)).toHaveLength(12);
    // The text of each step as written: flags, JSON spacing and the unexpanded COPY destination.
    expect(historyText(barge.history!).slice(-7)).toEqual([
      '/bin/sh -c #(nop) COPY <src> in ${DOCROOT}/   [empty]',
      '/bin/sh -c #(nop) WORKDIR ${DOCROOT}  [empty]',
      '/bin/sh -c #(nop) USER www  [empty]',
      '/bin/sh -c #(nop) EXPOSE ${PORT}  [empty]',
      '/bin/sh -c #(nop) STOPSIGNAL SIGTERM  [empty]',
      '/bin/sh -c #(nop) HEALTHCHECK --interval=30s --timeout=3s CMD wget -q -O /dev/null http://127.0.0.1:${PORT}/ || exit 1  [empty]',
      '/bin/sh -c #(nop) CMD ["sh", "-c", "exec httpd -f -v -p \\"$PORT\\" -h \\"$DOCROOT\\""]',
    ]);

    const files = await bargeFiles('site');
    expect(files.get('srv/www/index.html')).toMatch(/^file 644 1000:1000 /);
    expect(files.has('srv/www/drafts/wip.html')).toBe(false);
    // COPY --chown gives the destination directory it creates to the --chown user too, as buildah does.
    expect(files.get('srv/www')).toMatch(/^dir 755 1000:1000/);
    compareTrees(files, await buildahFiles('bh-site'), { buildahOnly: BUILDAH_RUN_PLACEHOLDERS });
  });

  it('podman runs it: the site is there, owned by www, and httpd serves it', async () => {
    const name = await toPodman('site');
    expect(await podmanRun(name, ['sh', '-c', 'id -un; pwd; cat index.html'])).toContain('www\n/srv/www\n<!doctype html>');
    // The image's own command line, in the background, on the loopback of --network none.
    const page = await podmanRun(name, ['sh', '-c', 'httpd -p 127.0.0.1:$PORT -h "$DOCROOT" && sleep 0.3 && wget -q -O - http://127.0.0.1:$PORT/']);
    expect(page).toContain('<h1>Built by barge</h1>');
  });
});

describe('multi-stage', () => {
  it('barge and buildah build the same image', async () => {
    await buildOk(env, dir('multi-stage'), ['--build-arg', 'VERSION=2.5', '-t', 'hello']);
    await buildahOk(['build', '--pull=never', '-q', '--build-arg', 'VERSION=2.5', '-t', 'bh-hello', dir('multi-stage')]);
    const { barge, buildah: bh } = await inspectBoth('hello', 'bh-hello');

    expect(barge.config).toEqual(normaliseBuildahConfig(bh.config!));
    expect(barge.config).toEqual({ Env: [DEFAULT_PATH], Entrypoint: ['/usr/local/bin/hello'] });
    // Only the final stage's steps are in the history.
    expect(historyText(barge.history!)).toEqual(historyText(bh.history!));
    expect(historyText(barge.history!).slice(1)).toEqual([
      '/bin/sh -c #(nop) COPY <src> in /usr/local/bin/hello   [empty]',
      '/bin/sh -c #(nop) ENTRYPOINT ["/usr/local/bin/hello"]',
    ]);

    const files = await bargeFiles('hello');
    expect(files.get('usr/local/bin/hello')).toMatch(/^file 755 0:0 /);
    expect(files.has('build')).toBe(false);
    // No RUN in the final stage, so buildah leaves no placeholders either.
    compareTrees(files, await buildahFiles('bh-hello'), {});
  });

  it('podman runs it: the entrypoint prints the version built in', async () => {
    const name = await toPodman('hello');
    expect(await podmanRun(name, [])).toBe('hello from version 2.5\n');
  });
});

describe('heredoc-cache-secret', () => {
  // Buildah 1.28 predates heredoc support (it reads `set -e` as an instruction), so buildah
  // builds this translation: the same steps with the RUN heredoc as a one-line script and the
  // COPY heredoc as a context file with the body as barge expands it. The cache mount and the
  // secret are as in the original.
  const TRANSLATED = [
    'FROM busybox',
    'ARG GREETING=hello',
    'RUN set -e; mkdir -p /opt/app; echo "${GREETING} from a heredoc" > /opt/app/greeting',
    'COPY config.ini /opt/app/config.ini',
    'RUN --mount=type=cache,target=/var/cache/app \\',
    '    echo run >> /var/cache/app/runs && wc -l < /var/cache/app/runs > /opt/app/cache-runs',
    'RUN --mount=type=secret,id=token \\',
    '    test -s /run/secrets/token && echo "secret seen" > /opt/app/secret-status',
    'CMD ["cat", "/opt/app/greeting"]',
    '',
  ].join('\n');

  it('barge (heredocs) and buildah (their translation) build the same image', async () => {
    const secret = join(env.tmp, 'token');
    await writeFile(secret, 'tok-123');
    const bctx = join(env.tmp, 'hcs-buildah');
    await mkdir(bctx);
    await writeFile(join(bctx, 'Containerfile'), TRANSLATED);
    await writeFile(join(bctx, 'config.ini'), '[app]\ngreeting = hi\n', { mode: 0o644 });

    await buildOk(env, dir('heredoc-cache-secret'), ['--secret', `id=token,src=${secret}`, '--build-arg', 'GREETING=hi', '-t', 'hcs']);
    await buildahOk(['build', '--pull=never', '-q', '--secret', `id=token,src=${secret}`, '--build-arg', 'GREETING=hi', '-t', 'bh-hcs', bctx]);
    const { barge, buildah: bh } = await inspectBoth('hcs', 'bh-hcs');

    expect(barge.config).toEqual(normaliseBuildahConfig(bh.config!));
    expect(barge.config).toEqual({ Env: [DEFAULT_PATH], Cmd: ['cat', '/opt/app/greeting'] });

    const bargeHist = historyText(barge.history!);
    const buildahHist = dropRunFlags(historyText(bh.history!));
    expect(bargeHist).toHaveLength(buildahHist.length);
    // The two translated steps differ in text only; barge's say what the Containerfile says.
    expect(bargeHist.slice(2, 4)).toEqual([
      '|1 GREETING=hi /bin/sh -c set -e\nmkdir -p /opt/app\necho "${GREETING} from a heredoc" > /opt/app/greeting\n  [empty]',
      '/bin/sh -c #(nop) COPY <src> in /opt/app/config.ini   [empty]',
    ]);
    expect(barge.history![3]!.created_by).toBe('/bin/sh -c #(nop) COPY <<EOF in /opt/app/config.ini ');
    expect([...bargeHist.slice(0, 2), ...bargeHist.slice(3)]).toEqual([...buildahHist.slice(0, 2), ...buildahHist.slice(3)]);
    // Buildah's RUN entries do carry the flags (see dropRunFlags).
    expect(bh.history![4]!.created_by).toContain('/bin/sh -c --mount=type=cache,target=/var/cache/app ');

    const files = await bargeFiles('hcs');
    const digest = (s: string): string => createHash('sha256').update(s).digest('hex').slice(0, 16);
    expect(files.get('opt/app/greeting')).toBe(`file 644 0:0 18 ${digest('hi from a heredoc\n')}`);
    expect(files.get('opt/app/config.ini')).toBe(`file 644 0:0 20 ${digest('[app]\ngreeting = hi\n')}`);
    expect(files.get('opt/app/cache-runs')).toBe(`file 644 0:0 2 ${digest('1\n')}`);
    expect(files.get('opt/app/secret-status')).toBe(`file 644 0:0 12 ${digest('secret seen\n')}`);
    compareTrees(files, await buildahFiles('bh-hcs'), {
      buildahOnly: {
        ...BUILDAH_RUN_PLACEHOLDERS,
        // Buildah keeps the directories it made as mount points for the secret and the cache
        // mount; barge's image has no trace of either mount (containerfiles.test.ts asserts that).
        'run/secrets': 'dir 755 0:0',
        'var/cache': 'dir 755 0:0',
      },
    });
  });

  it('podman runs it: the default command prints the heredoc-written greeting', async () => {
    const name = await toPodman('hcs');
    expect(await podmanRun(name, [])).toBe('hi from a heredoc\n');
    expect(await podmanRun(name, ['cat', '/opt/app/config.ini', '/opt/app/secret-status'])).toBe('[app]\ngreeting = hi\nsecret seen\n');
  });
});

describe('gcc-hello', () => {
  beforeAll(async () => {
    // Buildah gets barge's debian-gcc through a docker-archive, as it gets busybox.
    await importGccBase(env);
    const tar = join(env.tmp, 'debian-gcc.tar');
    await env.bargeOk(['save', '-o', tar, 'debian-gcc']);
    await buildahOk(['pull', '-q', `docker-archive:${tar}`]);
  });

  it('barge and buildah build the same image', async () => {
    await buildOk(env, dir('gcc-hello'), ['--network', 'none', '-t', 'gcc-hello']);
    await buildahOk(['build', '--pull=never', '--network', 'none', '-q', '-t', 'bh-gcc-hello', dir('gcc-hello')]);
    const { barge, buildah: bh } = await inspectBoth('gcc-hello', 'bh-gcc-hello');

    // FROM scratch sets no PATH: both give the final stage the default one.
    expect(barge.config).toEqual(normaliseBuildahConfig(bh.config!));
    expect(barge.config).toEqual({ Env: [DEFAULT_PATH], Entrypoint: ['/hello'] });
    expect(historyText(barge.history!)).toEqual(historyText(bh.history!));
    expect(historyText(barge.history!)).toEqual([
      '/bin/sh -c #(nop) COPY <src> in /hello   [empty]',
      '/bin/sh -c #(nop) ENTRYPOINT ["/hello"]',
    ]);

    // The same gcc and source give the same static binary, byte for byte.
    const files = await bargeFiles('gcc-hello');
    expect([...files.keys()]).toEqual(['hello']);
    expect(files.get('hello')).toMatch(/^file 755 0:0 /);
    compareTrees(files, await buildahFiles('bh-gcc-hello'), {});
  });

  it('podman runs it', async () => {
    const name = await toPodman('gcc-hello');
    expect(await podmanRun(name, [])).toBe('hello from a static C program built by barge\n');
  });
});

describe('coverage', () => {
  it('every directory in containerfiles/ has its interop case here', async () => {
    const dirs = (await readdir(join(REPO_ROOT, 'containerfiles'), { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name).sort();
    const source = await readFile(new URL(import.meta.url), 'utf8');
    const cases = [...source.matchAll(/^describe\('([^']+)'/gm)].map((m) => m[1]!).filter((n) => n !== 'coverage').sort();
    expect(cases).toEqual(dirs);
  });
});
