// Buildah's `build` flags that scripts pass and that barge once refused as unknown: stages the
// target does not need are skipped (--skip-unused-stages), --from, --env/--unsetenv, --os-version
// and --os-feature, --ignorefile, -o/--output, --manifest with several platforms, the options
// that are accepted without effect, and the ones refused with a reason.
import { execFileSync } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BARGE_BIN, type Env } from '../helpers.ts';
import { busyboxEnv } from '../fixtures.ts';
import { buildOk, context, imageJSON, noContainers, readFiles } from './lib.ts';

let env: Env;
beforeAll(async () => {
  ({ env } = await busyboxEnv());
});
afterAll(async () => {
  await env?.cleanup();
});

const steps = (out: string): string[] => out.split('\n').filter((l) => /STEP \d+\/\d+: /.test(l));
const THREE_STAGES = 'FROM busybox AS a\nRUN echo a > /a\nFROM busybox AS b\nRUN echo b > /b\nFROM busybox\nCOPY --from=b /b /b\n';

describe('--skip-unused-stages', () => {
  it('by default builds only the stages the target needs, numbered as Buildah numbers them', async () => {
    const ctx = await context(env, { Containerfile: THREE_STAGES });
    const r = await buildOk(env, ctx);
    expect(steps(r.stdout)).toEqual([
      '[2/3] STEP 1/2: FROM busybox AS b', '[2/3] STEP 2/2: RUN echo b > /b', '[3/3] STEP 1/2: FROM busybox', '[3/3] STEP 2/2: COPY --from=b /b /b',
    ]);
    const all = await buildOk(env, ctx, ['--skip-unused-stages=false']);
    expect(steps(all.stdout)).toHaveLength(6);
  });

  it('follows FROM <stage>, COPY --from=<index> and RUN --mount=from=, and keeps every earlier stage for a --from made of an ARG', async () => {
    const ctx = await context(env, {
      Containerfile: [
        'FROM busybox AS unused', 'RUN true',
        'FROM busybox AS mounted', 'RUN echo m > /m',
        'FROM busybox AS copied', 'RUN echo c > /c',
        'FROM copied AS base', 'RUN --mount=type=bind,from=mounted,target=/mnt cp /mnt/m /m',
        'FROM busybox', 'COPY --from=3 /m /c /',
        '',
      ].join('\n'),
    });
    const r = await buildOk(env, ctx, ['-t', 'followed']);
    expect(steps(r.stdout).some((l) => l.includes('AS unused'))).toBe(false);
    expect(await readFiles(env, 'followed', ['m', 'c'])).toEqual(['m\n', 'c\n']);

    const byArg = await context(env, { Containerfile: 'FROM busybox AS one\nRUN echo 1 > /n\nFROM busybox AS two\nRUN echo 2 > /n\nFROM busybox\nARG SRC=one\nCOPY --from=$SRC /n /n\n' });
    const both = await buildOk(env, byArg, ['--build-arg', 'SRC=two', '-t', 'byarg']);
    expect(steps(both.stdout).filter((l) => l.includes('STEP 1/2: FROM'))).toHaveLength(2);
    expect(await readFiles(env, 'byarg', ['n'])).toEqual(['2\n']);
  });
});

describe('what the built image gets', () => {
  it('--from replaces the first FROM; --env, --unsetenv, --os-version and --os-feature set the final config', async () => {
    const ctx = await context(env, { Containerfile: 'FROM nosuch.example/never:pulled\nENV KEEP=1 DROP=2\nRUN test -f /bin/busybox\n' });
    await buildOk(env, ctx, ['--from', 'busybox', '--pull=never', '--env', 'ADDED=yes', '--env', 'KEEP=changed', '--unsetenv', 'DROP', '--os-version', '10.0.1', '--os-feature', 'win32k', '-t', 'meta']);
    const cfg = (await imageJSON(env, 'meta')).OCIv1 as unknown as { config: { Env: string[] }; 'os.version': string; 'os.features': string[] };
    expect(cfg.config.Env).toContain('ADDED=yes');
    expect(cfg.config.Env).toContain('KEEP=changed');
    expect(cfg.config.Env.some((e) => e.startsWith('DROP='))).toBe(false);
    expect(cfg['os.version']).toBe('10.0.1');
    expect(cfg['os.features']).toEqual(['win32k']);
  });

  it('--omit-history leaves the image without history, with and without --layers; commit --omit-history too', async () => {
    const ctx = await context(env, { Containerfile: 'FROM busybox\nRUN echo x > /x\nENV A=1\n' });
    for (const layers of ['--layers=false', '--layers=true']) {
      await buildOk(env, ctx, [layers, '--omit-history', '-t', 'nohist']);
      expect((await imageJSON(env, 'nohist')).OCIv1.history ?? [], layers).toEqual([]);
      await buildOk(env, ctx, [layers, '-t', 'hist']);
      expect((await imageJSON(env, 'hist')).OCIv1.history.length, layers).toBeGreaterThan(1);
    }
    const c = await env.bargeOk(['from', 'busybox']);
    await env.bargeOk(['commit', '-q', '--rm', '--omit-history', c, 'committed-nohist']);
    expect((await imageJSON(env, 'committed-nohist')).OCIv1.history ?? []).toEqual([]);
  });

  it('with --layers, a cached final step is not reused for other --env, --unsetenv or --os-version values', async () => {
    const ctx = await context(env, { Containerfile: 'FROM busybox\nRUN echo x > /x\n' });
    await buildOk(env, ctx, ['--layers', '--env', 'V=1', '-t', 'env1']);
    await buildOk(env, ctx, ['--layers', '--env', 'V=2', '--os-version', '2', '-t', 'env2']);
    const envOf = async (img: string): Promise<string[]> => ((await imageJSON(env, img)).OCIv1 as unknown as { config: { Env: string[] } }).config.Env;
    expect(await envOf('env1')).toContain('V=1');
    expect(await envOf('env2')).toContain('V=2');
    expect((await imageJSON(env, 'env2')).OCIv1).toMatchObject({ 'os.version': '2' });
  });

  it('--ignorefile replaces the context\'s .containerignore', async () => {
    const ctx = await context(env, { Containerfile: 'FROM busybox\nCOPY . /ctx/\n', '.containerignore': 'a.txt\n', 'a.txt': 'a', 'b.txt': 'b' });
    const other = join(env.tmp, 'other.ignore');
    await writeFile(other, 'b.txt\n');
    await buildOk(env, ctx, ['--ignorefile', other, '-t', 'ignored']);
    expect(await readFiles(env, 'ignored', ['ctx/a.txt', 'ctx/b.txt'])).toEqual(['a', null]);
    const missing = await env.barge(['build', '--ignorefile', join(env.tmp, 'none'), ctx]);
    expect(missing.code).toBe(125);
    expect(missing.stderr).toContain('no such file');
  });
});

describe('--stdin', () => {
  it('RUN reads nothing from barge\'s stdin without --stdin, as Buildah; with it, what barge was given', async () => {
    const ctx = await context(env, { Containerfile: 'FROM busybox\nRUN cat > /got\n' });
    const without = await env.barge(['build', '-q', '-t', 'no-stdin', ctx], { input: 'typed\n' });
    expect(without.code, without.stderr).toBe(0);
    expect(await readFiles(env, 'no-stdin', ['got'])).toEqual(['']);
    const withIt = await env.barge(['build', '-q', '--stdin', '-t', 'with-stdin', ctx], { input: 'typed\n' });
    expect(withIt.code, withIt.stderr).toBe(0);
    expect(await readFiles(env, 'with-stdin', ['got'])).toEqual(['typed\n']);
  });
});

describe('-o/--output', () => {
  const files = { Containerfile: 'FROM busybox AS build\nRUN echo artifact > /out.txt\nFROM scratch\nCOPY --from=build /out.txt /dist/out.txt\n' };

  it('type=local writes the image\'s files to a directory, and a bare DIR is the same', async () => {
    const ctx = await context(env, files);
    const dest = join(env.tmp, 'out-local');
    await buildOk(env, ctx, ['-o', `type=local,dest=${dest}`]);
    expect(await readFile(join(dest, 'dist', 'out.txt'), 'utf8')).toBe('artifact\n');
    const bare = join(env.tmp, 'out-bare');
    await buildOk(env, ctx, ['--output', bare]);
    expect(await readdir(join(bare, 'dist'))).toEqual(['out.txt']);
    await noContainers(env);
  });

  it('type=tar writes an archive, and - writes it to stdout with the progress on stderr', async () => {
    const ctx = await context(env, files);
    const file = join(env.tmp, 'out.tar');
    await buildOk(env, ctx, ['-o', `type=tar,dest=${file}`]);
    expect(execFileSync('tar', ['-tf', file], { encoding: 'utf8' })).toContain('dist/out.txt');
    const piped = join(env.tmp, 'piped.tar');
    const fd = openSync(piped, 'w');
    const r = await env.barge(['build', '-o', '-', ctx], { stdoutFd: fd }).finally(() => closeSync(fd));
    expect(r.code, r.stderr).toBe(0);
    // Only the archive is on stdout: tar reads it to the end.
    expect(execFileSync('tar', ['-tf', piped], { encoding: 'utf8' })).toContain('dist/out.txt');
    expect(r.stderr).toContain('STEP 1/2: FROM busybox AS build');
    // A reader that stops early ends the copy, and the container it was read through is removed.
    execFileSync('sh', ['-c', `"${BARGE_BIN}" --root "${env.root}" --runroot "${env.runroot}" build -q -o - "${ctx}" | head -c 512 > /dev/null`]);
    await noContainers(env);
    const bad = await env.barge(['build', '-o', 'type=registry,dest=x', ctx]);
    expect(bad.code).toBe(125);
    expect(bad.stderr).toContain('type must be local or tar');
  });
});

describe('--manifest', () => {
  it('with several --platform values builds each and puts every image in the list', async () => {
    const ctx = await context(env, { Containerfile: 'FROM scratch\nARG TARGETARCH\nCOPY f /f\n', f: 'x' });
    const r = await buildOk(env, ctx, ['--platform', 'linux/amd64,linux/arm64', '--manifest', 'localhost/multi:v1']);
    expect(r.stdout.trim().split('\n').filter((l) => /^[0-9a-f]{64}$/.test(l))).toHaveLength(2);
    const index = JSON.parse((await env.barge(['manifest', 'inspect', 'localhost/multi:v1'])).stdout) as { manifests: { platform: { architecture: string } }[] };
    expect(index.manifests.map((m) => m.platform.architecture).sort()).toEqual(['amd64', 'arm64']);

    const noList = await env.barge(['build', '--platform', 'linux/amd64,linux/arm64', ctx]);
    expect(noList.code).toBe(125);
    expect(noList.stderr).toContain('building for several platforms needs --manifest LIST');
  });
});

describe('accepted and refused options', () => {
  it('Buildah\'s options without effect here are accepted', async () => {
    const ctx = await context(env, { Containerfile: 'FROM busybox\nRUN true\n' });
    await buildOk(env, ctx, ['--rm', '--force-rm=false', '--jobs', '2', '-D', '--compress', '--disable-content-trust', '--identity-label=false', '--retry', '1', '--retry-delay', '1s', '--runtime', 'runc']);
  });

  it('options barge does not implement fail with the reason, not "unknown option"', async () => {
    const ctx = await context(env, { Containerfile: 'FROM busybox\n' });
    for (const [args, reason] of [
      [['--sign-by', 'ABCD'], "--sign-by: barge's local storage keeps no signatures; sign when pushing (push --sign-by)"],
      [['--cpp-flag', '-DX'], '--cpp-flag: barge reads Containerfile.in without running the C preprocessor'],
    ] as const) {
      const r = await env.barge(['build', ...args, ctx]);
      expect(r.code, r.stderr).toBe(125);
      expect(r.stderr).toContain(reason);
    }
  });
});

describe('working-container commands', () => {
  it('config --os-feature adds and removes required OS features', async () => {
    const c = await env.bargeOk(['from', 'scratch']);
    await env.bargeOk(['config', '--os-feature', 'a', '--os-feature', 'b', c]);
    await env.bargeOk(['config', '--os-feature', 'a-', c]);
    await env.bargeOk(['commit', '-q', c, 'with-features']);
    expect((await imageJSON(env, 'with-features')).OCIv1).toMatchObject({ 'os.features': ['b'] });
  });

  it('rename gives a working container a new name, with Buildah\'s messages for the same name and a taken one', async () => {
    const c = await env.bargeOk(['from', '--name', 'ren-old', 'busybox']);
    await env.bargeOk(['from', '--name', 'ren-taken', 'busybox']);
    await env.bargeOk(['rename', c, 'ren-new']);
    expect(await env.bargeOk(['containers', '--filter', 'name=^ren-', '--format', '{{.ContainerName}}'])).toBe('ren-new\nren-taken');
    const same = await env.barge(['rename', 'ren-new', 'ren-new']);
    expect([same.code, same.stderr.trim()]).toEqual([125, 'Error: renaming a container with the same name as its current name']);
    const taken = await env.barge(['rename', 'ren-new', 'ren-taken']);
    expect(taken.code).toBe(125);
    expect(taken.stderr).toContain('The container name "ren-taken" is already in use by container');
  });

  it('containers --filter selects by name, id and ancestor; a bad key says which exist', async () => {
    const a = await env.bargeOk(['from', '--name', 'filt-a', 'busybox']);
    await env.bargeOk(['from', '--name', 'filt-b', 'scratch']);
    const list = async (f: string): Promise<string> => env.bargeOk(['containers', '--filter', f, '--format', '{{.ContainerName}}']);
    expect(await list('name=^filt-a$')).toBe('filt-a');
    expect(await list('ancestor=busybox')).toContain('filt-a');
    expect(await list('ancestor=busybox')).not.toContain('filt-b');
    const id = await env.bargeOk(['containers', '--filter', 'name=^filt-a$', '-q']);
    expect(await list(`id=${id.slice(0, 10)}`)).toBe(a);
    const bad = await env.barge(['containers', '--filter', 'colour=red']);
    expect(bad.code).toBe(125);
    expect(bad.stderr).toContain('the keys are id, name and ancestor');
  });
});
