// Broken Containerfiles, failing steps and hostile build contexts: clear errors, nothing
// committed, no containers left behind.
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Env } from '../helpers.ts';
import { busyboxEnv } from '../fixtures.ts';
import { buildOk, context, imageCount, noContainers, readFiles, runIn } from './lib.ts';

let env: Env;
beforeAll(async () => {
  ({ env } = await busyboxEnv());
});
afterAll(async () => {
  await env?.cleanup();
});

async function expectFailure(files: Record<string, string>, args: string[] = []): Promise<{ code: number; stderr: string; stdout: string; ctx: string }> {
  const ctx = await context(env, files);
  const before = await imageCount(env);
  const r = await env.barge(['build', ...args, ctx]);
  expect(r.code).not.toBe(0);
  await noContainers(env);
  // With --layers the steps that succeeded stay as (unnamed) cache images, as with Buildah.
  if (!args.includes('--layers')) expect(await imageCount(env)).toBe(before);
  return { ...r, ctx };
}

describe('broken Containerfiles', () => {
  it.each([
    ['FROM busybox\nRUN true\nBOGUS thing\n', 3, 'unknown instruction: BOGUS'],
    ['FROM busybox\nCOPY only-one\n', 2, 'COPY requires at least two arguments'],
    ['FROM busybox\nRUN --frobnicate true\n', 2, 'RUN: unknown flag: --frobnicate'],
    ['FROM busybox\nRUN <<EOF\ntrue\n', 2, 'unterminated heredoc <<EOF'],
    ['RUN true\nFROM busybox\n', 1, 'RUN instruction before the first FROM'],
    ['FROM busybox\n\n\nENV ${NOPE:?unset}=x\n', 4, 'NOPE: unset'],
    ['FROM busybox AS 1st\n', 1, 'invalid name for build stage: "1st"'],
    ['FROM busybox\nSHELL /bin/bash -c\n', 2, 'SHELL requires the arguments to be in JSON form'],
    ['FROM busybox\nONBUILD ONBUILD RUN true\n', 2, 'chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed'],
    ['FROM busybox\nHEALTHCHECK --interval=5s SOMETIMES\n', 2, 'HEALTHCHECK requires NONE or CMD'],
    ['FROM busybox\nCOPY --parents=perhaps a /b/\n', 2, 'COPY: invalid --parents value "perhaps" (true or false)'],
    ['FROM busybox\nRUN true\nADD --from=x a /b\n', 3, 'ADD: unknown flag: --from'],
  ])('%j → line %i', async (text, line, msg) => {
    const r = await expectFailure({ Containerfile: text });
    expect(r.stderr).toContain(`${join(r.ctx, 'Containerfile')}:${line}: ${msg}`);
    expect(r.code).toBe(125);
  });

  it('a syntax error is reported before any step runs', async () => {
    const r = await expectFailure({ Containerfile: 'FROM busybox\nRUN echo ran-too-early\nNOPE\n' });
    expect(r.stdout).not.toContain('STEP');
    expect(r.stdout).not.toContain('ran-too-early');
  });

  it('unknown base image, unknown --target, missing Containerfile', async () => {
    expect((await expectFailure({ Containerfile: 'FROM no-such-image\n' })).stderr).toContain('no-such-image: image not known');
    expect((await expectFailure({ Containerfile: 'FROM busybox\n' }, ['--target', 'nope'])).stderr).toContain('the target "nope" was not found');
    expect((await expectFailure({ 'other.txt': '' })).stderr).toContain('no Containerfile or Dockerfile specified or found');
  });
});

describe('failing steps', () => {
  it('a failing RUN reports the step and exit status, exits with it, and leaves nothing', async () => {
    for (const layers of [[], ['--layers']]) {
      const r = await expectFailure({ Containerfile: 'FROM busybox\nRUN touch /partial\nRUN echo failing; exit 7\nRUN echo never\n' }, [...layers, '-t', 'half']);
      expect(r.stderr).toContain('Error: building at STEP "RUN echo failing; exit 7": while running runtime: exit status 7');
      expect(r.code).toBe(7);
      expect(r.stdout).not.toContain('never');
      expect((await env.barge(['inspect', '--type', 'image', 'half'])).code).not.toBe(0);
      expect(await env.bargeOk(['images', '--format', '{{.Repository}}'])).not.toContain('half');
    }
  });

  it('a failing later stage removes the earlier stage\'s containers and images', async () => {
    const r = await expectFailure({ Containerfile: 'FROM busybox AS a\nRUN touch /x\nFROM busybox\nCOPY --from=a /x /x\nRUN false\n' });
    expect(r.stderr).toContain('building at STEP "RUN false"');
  });

  it('COPY of a missing file fails at its step', async () => {
    const r = await expectFailure({ Containerfile: 'FROM busybox\nCOPY missing.txt /\n' });
    expect(r.stderr).toContain('building at STEP "COPY missing.txt /"');
    expect(r.stderr).toContain('no such file or directory');
  });
});

describe('hostile contexts', () => {
  let outside: string;
  beforeAll(async () => {
    outside = join(env.tmp, 'outside-secret');
    await writeFile(outside, 'TOP SECRET\n');
  });

  it('a symlink to a file outside the context is resolved inside the context', async () => {
    const ctx = await context(env, { Containerfile: 'FROM busybox\nCOPY link /copied\n' });
    await symlink(outside, join(ctx, 'link'));
    const r = await env.barge(['build', ctx]);
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).not.toContain('TOP SECRET');
    await noContainers(env);
  });

  it('a relative symlink climbing out stays inside too', async () => {
    const ctx = await context(env, { Containerfile: 'FROM busybox\nCOPY dir/ /copied/\n', 'dir/ok.txt': 'ok\n' });
    await symlink('../../../outside-secret', join(ctx, 'dir', 'up'));
    await buildOk(env, ctx, ['-t', 'symlinked']);
    // Links inside a copied tree are copied as links; nothing from outside comes with them.
    expect(await runIn(env, 'symlinked', 'readlink /copied/up; cat /copied/ok.txt; test -e /copied/up || echo dangling')).toBe('../../../outside-secret\nok\ndangling');
  });

  it('COPY ../x names x in the context, never the parent directory', async () => {
    const ctx = await context(env, { Containerfile: 'FROM busybox\nCOPY ../outside-secret /x\n' });
    const r = await env.barge(['build', ctx]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('no such file or directory');
    const ctx2 = await context(env, { Containerfile: 'FROM busybox\nCOPY ../../inside.txt /x\n', 'inside.txt': 'inside\n' });
    await buildOk(env, ctx2, ['-t', 'dotdot']);
    expect((await readFiles(env, 'dotdot', ['x']))[0]).toBe('inside\n');
  });

  it('a directory symlink pointing at / is the context root', async () => {
    const ctx = await context(env, { Containerfile: 'FROM busybox\nCOPY root/etc/passwd /p\n' });
    await symlink('/', join(ctx, 'root'));
    const r = await env.barge(['build', ctx]);
    expect(r.code).not.toBe(0);
    await noContainers(env);
  });

  it('ignored files are not in the context, even by exact name or through a wildcard', async () => {
    const ctx = await context(env, {
      Containerfile: 'FROM busybox\nCOPY . /all/\n',
      '.containerignore': 'secret.txt\n*.log\nsub/**\n!sub/keep\n',
      'secret.txt': 's', 'a.log': 'l', 'ok.txt': 'ok', 'sub/drop': 'd', 'sub/keep': 'k',
    });
    await buildOk(env, ctx, ['-t', 'ignored']);
    expect(await runIn(env, 'ignored', 'cd /all && find . | sort')).toBe('.\n./.containerignore\n./Containerfile\n./ok.txt\n./sub\n./sub/keep');
    await writeFile(join(ctx, 'Containerfile'), 'FROM busybox\nCOPY secret.txt /\n');
    const r = await env.barge(['build', ctx]);
    expect(r.code).not.toBe(0);
    await writeFile(join(ctx, 'Containerfile'), 'FROM busybox\nCOPY *.txt /t/\n');
    await buildOk(env, ctx, ['-t', 'ignored2']);
    expect(await runIn(env, 'ignored2', 'ls /t')).toBe('ok.txt');
  });

  it('X.containerignore wins over X.dockerignore next to the Containerfile; .containerignore over .dockerignore in the context', async () => {
    const ctx = await context(env, {
      'build/app.Containerfile': 'FROM busybox\nCOPY . /all/\n',
      'build/app.Containerfile.containerignore': 'a.txt\nbuild\n',
      'build/app.Containerfile.dockerignore': 'b.txt\nbuild\n',
      '.containerignore': 'c.txt\n',
      '.dockerignore': 'd.txt\n',
      'a.txt': 'a', 'b.txt': 'b', 'c.txt': 'c', 'd.txt': 'd',
    });
    await buildOk(env, ctx, ['-f', join(ctx, 'build/app.Containerfile'), '-t', 'cignore']);
    expect(await runIn(env, 'cignore', 'cd /all && ls -A')).toBe('.containerignore\n.dockerignore\nb.txt\nc.txt\nd.txt');
    // Without a file next to it, the context's .containerignore applies (and not .dockerignore).
    await writeFile(join(ctx, 'Containerfile'), 'FROM busybox\nCOPY . /all/\n');
    await buildOk(env, ctx, ['-t', 'cignore2']);
    expect(await runIn(env, 'cignore2', 'cd /all && ls -A')).toBe('.containerignore\n.dockerignore\nContainerfile\na.txt\nb.txt\nbuild\nd.txt');
  });

  it('-f X uses X.containerignore / X.dockerignore before the context\'s', async () => {
    const ctx = await context(env, {
      'build/app.Containerfile': 'FROM busybox\nCOPY . /all/\n',
      'build/app.Containerfile.dockerignore': 'a.txt\nbuild\n',
      '.dockerignore': 'b.txt\n',
      'a.txt': 'a', 'b.txt': 'b',
    });
    await mkdir(join(ctx, 'empty'), { recursive: true });
    await buildOk(env, ctx, ['-f', join(ctx, 'build/app.Containerfile'), '-t', 'fignore']);
    expect(await runIn(env, 'fignore', 'cd /all && ls -A')).toBe('.dockerignore\nb.txt\nempty');
  });
});
