// `barge build` command line: aliases, Containerfile lookup, -f, tarball and stdin contexts.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeFailure, type Env } from '../helpers.ts';
import { busyboxEnv } from '../fixtures.ts';
import { buildOk, context, readFiles } from './lib.ts';

let env: Env;
beforeAll(async () => {
  ({ env } = await busyboxEnv());
});
afterAll(async () => {
  await env?.cleanup();
});

describe('barge build CLI', () => {
  it('Containerfile is preferred over Dockerfile; Dockerfile is the fallback; bud and build-using-dockerfile are aliases', async () => {
    const both = await context(env, { Containerfile: 'FROM busybox\nRUN echo container > /which\n', Dockerfile: 'FROM busybox\nRUN echo docker > /which\n' });
    await buildOk(env, both, ['-t', 'which1']);
    expect((await readFiles(env, 'which1', ['which']))[0]).toBe('container\n');
    const onlyDocker = await context(env, { Dockerfile: 'FROM busybox\nRUN echo docker > /which\n' });
    const r = await env.barge(['bud', '-t', 'which2', onlyDocker]);
    expect(r.code, describeFailure(['bud'], r)).toBe(0);
    expect((await readFiles(env, 'which2', ['which']))[0]).toBe('docker\n');
    const r2 = await env.barge(['build-using-dockerfile', '--layers', onlyDocker]);
    expect(r2.code, describeFailure(['build-using-dockerfile'], r2)).toBe(0);
  });

  it('-f relative to the working directory, and the context defaults to .', async () => {
    const ctx = await context(env, { 'files/My.Containerfile': 'FROM busybox\nCOPY data.txt /\n', 'data.txt': 'data\n' });
    const r = await env.barge(['build', '-f', 'files/My.Containerfile', '-t', 'dashf'], { cwd: ctx });
    expect(r.code, describeFailure(['build'], r)).toBe(0);
    expect((await readFiles(env, 'dashf', ['data.txt']))[0]).toBe('data\n');
  });

  it('a tarball context, and a Containerfile on standard input', async () => {
    const ctx = await context(env, { Containerfile: 'FROM busybox\nCOPY in-tar.txt /\n', 'in-tar.txt': 'from tar\n' });
    const tarball = join(env.tmp, 'ctx.tar.gz');
    execFileSync('tar', ['-C', ctx, '-czf', tarball, '.']);
    await buildOk(env, tarball, ['-t', 'fromtar']);
    expect((await readFiles(env, 'fromtar', ['in-tar.txt']))[0]).toBe('from tar\n');

    const r = await env.barge(['build', '-t', 'fromstdin', '-'], { input: 'FROM busybox\nRUN echo stdin > /s\n' });
    expect(r.code, describeFailure(['build', '-'], r)).toBe(0);
    expect((await readFiles(env, 'fromstdin', ['s']))[0]).toBe('stdin\n');

  });
});
