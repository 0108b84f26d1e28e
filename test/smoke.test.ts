// First black-box checks of bin/barge: the contract every other CLI test builds on.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeFailure, makeEnv, REPO_ROOT, runBarge, type Env } from './helpers.ts';
import { importBusybox } from './fixtures.ts';

const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };

let env: Env;
beforeAll(async () => {
  env = await makeEnv();
});
afterAll(async () => {
  await env?.cleanup();
});

describe('barge CLI basics', () => {
  it('--version prints the package version', async () => {
    const r = await env.barge(['--version']);
    expect(r.code, describeFailure(['--version'], r)).toBe(0);
    expect(r.stdout).toContain(pkg.version);
  });

  it('version prints the package version', async () => {
    const r = await env.barge(['version']);
    expect(r.code, describeFailure(['version'], r)).toBe(0);
    expect(r.stdout).toContain(pkg.version);
  });

  it('--help lists the commands', async () => {
    const r = await env.barge(['--help']);
    expect(r.code, describeFailure(['--help'], r)).toBe(0);
    for (const cmd of ['from', 'copy', 'run', 'config', 'commit', 'images', 'import']) {
      expect(r.stdout).toMatch(new RegExp(`^\\s+${cmd}\\b`, 'm'));
    }
  });

  it('an unknown command exits 125 with an error', async () => {
    const r = await env.barge(['no-such-command']);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain('Error:');
  });
});

describe('busybox image', () => {
  let imageId = '';
  let ctr = '';

  it('import then images lists localhost/busybox', async () => {
    imageId = await importBusybox(env);
    expect(imageId).toMatch(/^(sha256:)?[0-9a-f]{64}$/);
    const out = await env.bargeOk(['images']);
    const lines = out.split('\n');
    expect(lines[0]).toMatch(/^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE\s*$/);
    const shortId = imageId.replace(/^sha256:/, '').slice(0, 12);
    expect(lines.slice(1).some((l) => new RegExp(`^localhost/busybox\\s+latest\\s+${shortId}\\s`).test(l)), out).toBe(true);
  });

  it('from busybox names the working container after the image', async () => {
    ctr = await env.bargeOk(['from', 'busybox']);
    expect(ctr).toBe('busybox-working-container');
  });

  it('run executes a command in the working container', async () => {
    expect(ctr).not.toBe('');
    const out = await env.bargeOk(['run', ctr, '--', 'echo', 'hi']);
    expect(out).toBe('hi');
  });
});

describe('shell completions', () => {
  it('bash, zsh and fish scripts name the real commands and are valid scripts', async () => {
    const bash = await runBarge(['completion', 'bash']);
    expect(bash.code).toBe(0);
    for (const c of ['build', 'from', 'commit', 'ps', 'login']) expect(bash.stdout).toContain(` ${c} `);
    const { execFileSync } = await import('node:child_process');
    // bash -n parses without running: a syntax error in the generated script fails here.
    execFileSync('bash', ['-n'], { input: bash.stdout });
    const zsh = await runBarge(['completion', 'zsh']);
    expect(zsh.stdout).toContain("'build'");
    const fish = await runBarge(['completion', 'fish']);
    expect(fish.stdout).toContain("complete -c barge -n '__fish_use_subcommand' -a build");
    const bad = await runBarge(['completion', 'tcsh']);
    expect(bad.code).toBe(125);
    expect(bad.stderr).toMatch(/^Error: unsupported shell/m);
  });
});
