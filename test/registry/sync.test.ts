// skopeo sync: registry → dir (named as skopeo names them, scoped or not), dir → registry,
// registry → registry, YAML lists with tags, digests, tag regexes and per-registry TLS and
// credentials, --dry-run, and the same spelling under `barge skopeo sync`.
import { existsSync, readdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeFailure, type Env } from '../helpers.ts';
import { busyboxEnv } from '../fixtures.ts';
import { describeTool, runTool } from '../images/lib.ts';
import { hermetic, startRegistry, type Registry } from './registry.ts';

const USER = 'syncuser';
const PASS = 'sync-pass';

let reg: Registry;
let authReg: Registry;
let env: Env;
const { setup, run, ok } = hermetic();

async function tags(r: Registry, repo: string, creds?: string): Promise<string[]> {
  const out = await ok(env, ['list-tags', '--tls-verify=false', ...(creds ? ['--creds', creds] : []), `docker://${r.host}/${repo}`]);
  return (JSON.parse(out) as { Tags: string[] }).Tags.sort();
}

async function digestOf(ref: string, creds?: string): Promise<string> {
  return (JSON.parse(await ok(env, ['skopeo', 'inspect', '--tls-verify=false', ...(creds ? ['--creds', creds] : []), ref])) as { Digest: string }).Digest;
}

beforeAll(async () => {
  [reg, authReg] = await Promise.all([startRegistry(), startRegistry({ htpasswd: { user: USER, password: PASS } })]);
  ({ env } = await busyboxEnv());
  await setup(env.tmp);
  for (const t of ['a', 'b', 'c-old']) await ok(env, ['push', '-q', '--tls-verify=false', 'busybox', `${reg.host}/src/bb:${t}`]);
  await ok(env, ['push', '-q', '--tls-verify=false', '--creds', `${USER}:${PASS}`, 'busybox', `${authReg.host}/private/bb:p1`]);
});

afterAll(async () => {
  await env?.cleanup();
  await reg?.stop();
  await authReg?.stop();
});

describe('sync', () => {
  it('registry → dir: one directory per tag, named as skopeo names them', async () => {
    const ours = join(env.tmp, 'sync-dir');
    const r = await run(env, ['sync', '--src', 'docker', '--dest', 'dir', '--src-tls-verify=false', `${reg.host}/src/bb`, ours]);
    expect(r.code, describeFailure(['sync'], r)).toBe(0);
    expect(r.stderr).toContain('Synced 3 images from 1 sources');
    const theirs = join(env.tmp, 'skopeo-sync-dir');
    const sk = await runTool('skopeo', ['sync', '--src', 'docker', '--dest', 'dir', '--src-tls-verify=false', `${reg.host}/src/bb`, theirs]);
    expect(sk.code, describeTool('skopeo', ['sync'], sk)).toBe(0);
    expect(readdirSync(ours).sort()).toEqual(readdirSync(theirs).sort());
    expect(readdirSync(ours).sort()).toEqual(['bb:a', 'bb:b', 'bb:c-old']);
    expect(existsSync(join(ours, 'bb:a', 'manifest.json'))).toBe(true);

    const scoped = join(env.tmp, 'sync-scoped');
    await ok(env, ['skopeo', 'sync', '-q', '--scoped', '--src', 'docker', '--dest', 'dir', '--src-tls-verify=false', `${reg.host}/src/bb:b`, scoped]);
    expect(readdirSync(join(scoped, reg.host, 'src'))).toEqual(['bb:b']);
  });

  it('dir → registry and registry → registry keep the digests', async () => {
    const dir = join(env.tmp, 'sync-dir');
    await ok(env, ['sync', '-q', '--src', 'dir', '--dest', 'docker', '--dest-tls-verify=false', dir, `${reg.host}/fromdir`]);
    expect(await tags(reg, 'fromdir/bb')).toEqual(['a', 'b', 'c-old']);
    const want = await digestOf(`docker://${reg.host}/src/bb:a`);
    expect(await digestOf(`docker://${reg.host}/fromdir/bb:a`)).toBe(want);

    const r = await run(env, ['skopeo', 'sync', '--src', 'docker', '--dest', 'docker', '--src-tls-verify=false', '--dest-tls-verify=false', `${reg.host}/src/bb`, `${reg.host}/mirror/ns`]);
    expect(r.code, describeFailure(['skopeo', 'sync'], r)).toBe(0);
    expect(r.stderr).toMatch(/Copying blob [0-9a-f]{12} skipped: already exists/);
    expect(await tags(reg, 'mirror/ns/bb')).toEqual(['a', 'b', 'c-old']);
    expect(await digestOf(`docker://${reg.host}/mirror/ns/bb:b`)).toBe(want);
  });

  it('a YAML list: tags, digests, tag regexes, and per-registry tls-verify and credentials', async () => {
    const digest = await digestOf(`docker://${reg.host}/src/bb:a`);
    const yaml = join(env.tmp, 'sync.yml');
    await writeFile(yaml, [
      `${reg.host}:`,
      '  tls-verify: false',
      '  images:',
      '    src/bb:',
      '      - "a"',
      `      - "${digest}"`,
      '  images-by-tag-regex:',
      '    src/bb: ^c-',
      `"${authReg.host}":`,
      '  tls-verify: false',
      '  credentials:',
      `    username: ${USER}`,
      `    password: "${PASS}"`,
      '  images:',
      '    private/bb: []',
      '',
    ].join('\n'));
    const r = await run(env, ['sync', '--src', 'yaml', '--dest', 'docker', '--dest-tls-verify=false', yaml, `${reg.host}/yaml`]);
    expect(r.code, describeFailure(['sync', '--src', 'yaml'], r)).toBe(0);
    expect(r.stderr).toContain('Synced 4 images from 3 sources');
    expect(await tags(reg, 'yaml/bb')).toEqual(['a', 'c-old', 'p1']);
    expect(await digestOf(`docker://${reg.host}/yaml/bb@${digest}`)).toBe(digest);

    // Without the YAML's credentials the private registry refuses.
    await writeFile(yaml, `"${authReg.host}":\n  tls-verify: false\n  images:\n    private/bb: [p1]\n`);
    const denied = await run(env, ['sync', '--src', 'yaml', '--dest', 'docker', '--dest-tls-verify=false', yaml, `${reg.host}/denied`]);
    expect(denied.code).toBe(125);
    expect(denied.stderr).toMatch(/unauthorized|authentication required/);
  });

  it('--dry-run copies nothing; bad transports and YAML are clear errors', async () => {
    const r = await run(env, ['sync', '--dry-run', '--src', 'docker', '--dest', 'docker', '--src-tls-verify=false', '--dest-tls-verify=false', `${reg.host}/src/bb`, `${reg.host}/dry`]);
    expect(r.code, describeFailure(['sync', '--dry-run'], r)).toBe(0);
    expect(r.stderr).toContain(`from "docker://${reg.host}/src/bb:a" to "docker://${reg.host}/dry/bb:a"`);
    expect(r.stderr).toContain('Copying image ref 3/3 from');
    expect(r.stderr).toContain('Would have synced 3 images from 1 sources');
    const list = await run(env, ['list-tags', '--tls-verify=false', `docker://${reg.host}/dry/bb`]);
    expect(list.code).toBe(125);

    const both = await run(env, ['sync', '--src', 'dir', '--dest', 'dir', env.tmp, join(env.tmp, 'x')]);
    expect(both.code).toBe(125);
    expect(both.stderr).toContain('sync from "dir" to "dir" is not supported');
    const yaml = join(env.tmp, 'bad.yml');
    await writeFile(yaml, `${reg.host}:\n  imagez:\n    src/bb: [a]\n`);
    const bad = await run(env, ['sync', '--src', 'yaml', '--dest', 'dir', yaml, join(env.tmp, 'y')]);
    expect(bad.code).toBe(125);
    expect(bad.stderr).toContain('unknown key "imagez"');
  });
});
