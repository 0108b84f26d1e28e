// The Skopeo habits scripts rely on, checked against the real skopeo where it can run the same
// command: inspect --format, the global flags before (and after) the subcommand, bare
// --tls-verify, the credential spellings, `barge copy -a -f`, and exit status 1 on failure.
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeFailure, type Env } from '../helpers.ts';
import { busyboxEnv } from '../fixtures.ts';
import { describeTool, readJson, runTool } from '../images/lib.ts';
import { makeTwoArchLayout, type Index } from './multiarch-layout.ts';
import { hermetic, startRegistry, type Registry } from './registry.ts';

const USER = 'skuser';
const PASS = 'sk-pass';

let reg: Registry;
let authReg: Registry;
let env: Env;
/** oci:LAYOUT:v1 holds busybox with a label; oci:MULTI:multi an amd64/arm64 index. */
let layout = '';
let multi = '';
const { setup, run, ok } = hermetic();

/** barge skopeo ARGS and skopeo ARGS: both must succeed; returns both outputs. */
async function both(args: string[]): Promise<{ ours: string; theirs: string }> {
  const ours = await ok(env, ['skopeo', ...args]);
  const sk = await runTool('skopeo', args);
  expect(sk.code, describeTool('skopeo', args, sk)).toBe(0);
  return { ours, theirs: sk.stdout.trim() };
}

beforeAll(async () => {
  [reg, authReg] = await Promise.all([startRegistry(), startRegistry({ htpasswd: { user: USER, password: PASS } })]);
  ({ env } = await busyboxEnv());
  await setup(env.tmp);
  const ctr = await ok(env, ['from', '-q', 'busybox']);
  await ok(env, ['config', '--label', 'org.example.tier=base', ctr]);
  await ok(env, ['commit', '-q', ctr, 'labelled']);
  layout = join(env.tmp, 'layout');
  await ok(env, ['push', '-q', 'labelled', `oci:${layout}:v1`]);
  multi = join(env.tmp, 'two-arch');
  await makeTwoArchLayout(layout, multi);
  await ok(env, ['push', '-q', '--tls-verify=false', 'labelled', `${reg.host}/sk/bb:one`]);
  await ok(env, ['push', '-q', '--tls-verify=false', 'labelled', `${reg.host}/sk/bb:two`]);
  await ok(env, ['push', '-q', '--tls-verify=false', '--creds', `${USER}:${PASS}`, 'labelled', `${authReg.host}/private/bb:p1`]);
});

afterAll(async () => {
  await env?.cleanup();
  await reg?.stop();
  await authReg?.stop();
});

describe('skopeo inspect --format', () => {
  it.each([
    '{{.Digest}}',
    '[{{.Name}}]',
    '{{.RepoTags}}',
    '{{.Architecture}}/{{.Os}}',
    '{{index .Layers 0}}',
    '{{len .Layers}}',
    '{{.Created}}',
    '{{.Labels}}',
    '{{index .Labels "org.example.tier"}}',
    '{{.Labels.nothere}}',
    '{{range .Layers}}{{.}},{{end}}',
    '{{printf "%T" .}}',
    'Digest: {{.Digest}}\\n',
  ])('%s prints what skopeo prints (oci:)', async (format) => {
    const { ours, theirs } = await both(['inspect', '--format', format, `oci:${layout}:v1`]);
    expect(ours).toBe(theirs);
    expect(ours).not.toBe('');
  });

  it('over a registry image: Name and RepoTags, with -f, as skopeo', async () => {
    const ref = `docker://${reg.host}/sk/bb:one`;
    const { ours, theirs } = await both(['inspect', '--tls-verify=false', '-f', '{{.Name}} {{.RepoTags}} {{.Digest}}', ref]);
    expect(ours).toBe(theirs);
    expect(ours).toMatch(new RegExp(`^${reg.host}/sk/bb \\[one two\\] sha256:[0-9a-f]{64}$`));
  });

  it('{{json .Labels}} is the JSON of the labels, and "json" the whole document', async () => {
    const plain = JSON.parse(await ok(env, ['skopeo', 'inspect', `oci:${layout}:v1`])) as { Labels: Record<string, string>; Digest: string };
    expect(JSON.parse(await ok(env, ['skopeo', 'inspect', '-f', '{{json .Labels}}', `oci:${layout}:v1`]))).toEqual(plain.Labels);
    expect(plain.Labels['org.example.tier']).toBe('base');
    expect(JSON.parse(await ok(env, ['skopeo', 'inspect', '-f', '{{json .}}', `oci:${layout}:v1`]))).toEqual(plain);
  });

  it('--config --format runs over the image config, as skopeo', async () => {
    const { ours, theirs } = await both(['inspect', '--config', '-f', '{{.Architecture}} {{.OS}} {{.Config.Labels}} {{.RootFS.Type}}', `oci:${layout}:v1`]);
    expect(ours).toBe(theirs);
    expect(ours).toBe('amd64 linux map[org.example.tier:base] layers');
  });

  it('an unknown field, or --raw with --format, fails with status 1 as in skopeo', async () => {
    for (const args of [['inspect', '-f', '{{.Foo}}', `oci:${layout}:v1`], ['inspect', '-f', '{{.digest}}', `oci:${layout}:v1`], ['inspect', '--raw', '-f', '{{.Digest}}', `oci:${layout}:v1`]]) {
      const r = await run(env, ['skopeo', ...args]);
      expect(r.code, describeFailure(args, r)).toBe(1);
      expect(r.stdout).toBe('');
      const sk = await runTool('skopeo', args);
      expect(sk.code, describeTool('skopeo', args, sk)).toBe(1);
    }
    const r = await run(env, ['skopeo', 'inspect', '-f', '{{.Foo}}', `oci:${layout}:v1`]);
    expect(r.stderr).toContain("can't evaluate field Foo");
  });
});

describe('skopeo global flags', () => {
  it('--version names barge and its version', async () => {
    const version = (await ok(env, ['--version'])).replace(/^barge version /, '');
    expect(version).toMatch(/^\d+\.\d+/);
    expect(await ok(env, ['skopeo', '--version'])).toBe(`barge skopeo version ${version}`);
    expect(await ok(env, ['skopeo', '-v'])).toBe(`barge skopeo version ${version}`);
  });

  it('are accepted before the subcommand and after it', async () => {
    const flags = ['--insecure-policy', '--debug', '--tmpdir', env.tmp, '--command-timeout', '2m', '--registries.d', env.tmp, '--policy', '/dev/null'];
    expect(await ok(env, ['skopeo', ...flags, 'inspect', '-f', '{{.Os}}', `oci:${layout}:v1`])).toBe('linux');
    expect(await ok(env, ['skopeo', 'inspect', ...flags, '-f', '{{.Os}}', `oci:${layout}:v1`])).toBe('linux');
  });

  it('--override-arch picks that platform of an index for inspect and copy, before or after the subcommand', async () => {
    const amdLayers = Number(await ok(env, ['skopeo', 'inspect', '-f', '{{len .Layers}}', `oci:${layout}:v1`]));
    const { ours, theirs } = await both(['--override-arch', 'arm64', 'inspect', '-f', '{{.Architecture}} {{len .Layers}}', `oci:${multi}:multi`]);
    expect(ours).toBe(theirs);
    // The arm64 image has a marker layer on top of the amd64 one's.
    expect(ours).toBe(`arm64 ${amdLayers + 1}`);
    expect(await ok(env, ['skopeo', 'inspect', '--override-arch', 'amd64', '-f', '{{.Architecture}}', `oci:${multi}:multi`])).toBe('amd64');
    const out = join(env.tmp, 'arm-dir');
    await ok(env, ['skopeo', '--override-arch', 'arm64', '--override-os', 'linux', 'copy', '-q', `oci:${multi}:multi`, `dir:${out}`]);
    const manifest = await readJson<{ config: { digest: string } }>(join(out, 'manifest.json'));
    expect((await readJson<{ architecture: string }>(join(out, manifest.config.digest.slice(7)))).architecture).toBe('arm64');
  });

  it('--policy is consulted and --insecure-policy skips it', async () => {
    const reject = join(env.tmp, 'reject.json');
    await writeFile(reject, '{"default":[{"type":"reject"}]}');
    const src = `docker://${reg.host}/sk/bb:one`;
    const refused = await run(env, ['skopeo', '--policy', reject, 'copy', '-q', '--src-tls-verify=false', src, `dir:${join(env.tmp, 'refused')}`]);
    expect(refused.code, describeFailure(['--policy'], refused)).toBe(1);
    expect(existsSync(join(env.tmp, 'refused', 'manifest.json'))).toBe(false);
    const out = join(env.tmp, 'insecure');
    await ok(env, ['skopeo', '--insecure-policy', '--policy', reject, 'copy', '-q', '--src-tls-verify=false', src, `dir:${out}`]);
    expect(existsSync(join(out, 'manifest.json'))).toBe(true);
  });

  it('--tmpdir is where temporary files go, and --command-timeout stops the command', async () => {
    // A docker-archive is assembled in a temporary directory: under a --tmpdir that does not exist, it cannot be.
    const missing = join(env.tmp, 'no-such-tmp');
    const r = await run(env, ['skopeo', '--tmpdir', missing, 'copy', '-q', `oci:${layout}:v1`, `docker-archive:${join(env.tmp, 'via-tmp.tar')}`]);
    expect(r.code, describeFailure(['--tmpdir'], r)).toBe(1);
    expect(r.stderr).toContain(missing);
    await ok(env, ['skopeo', '--tmpdir', env.tmp, 'copy', '-q', `oci:${layout}:v1`, `docker-archive:${join(env.tmp, 'via-tmp.tar')}`]);
    const t = await run(env, ['skopeo', '--command-timeout', '1ns', 'copy', '-q', `oci:${layout}:v1`, `dir:${join(env.tmp, 'timed-out')}`]);
    expect(t.code, describeFailure(['--command-timeout'], t)).toBe(1);
    expect(t.stderr).toContain('context deadline exceeded');
    const bad = await run(env, ['skopeo', '--command-timeout', '1x', 'inspect', `oci:${layout}:v1`]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('unknown unit "x"');
  });
});

describe('bare --tls-verify flags', () => {
  it('mean true and leave the next argument alone; =false keeps working', async () => {
    const out = join(env.tmp, 'bare-dest');
    await ok(env, ['skopeo', 'copy', '-q', '--dest-tls-verify', `oci:${layout}:v1`, `dir:${out}`]);
    expect(existsSync(join(out, 'manifest.json'))).toBe(true);
    const sk = await runTool('skopeo', ['copy', '-q', '--dest-tls-verify', `oci:${layout}:v1`, `dir:${join(env.tmp, 'bare-dest-skopeo')}`]);
    expect(sk.code, describeTool('skopeo', ['copy'], sk)).toBe(0);
    // The test registry speaks plain HTTP: true must refuse it, false must reach it.
    const src = `docker://${reg.host}/sk/bb:one`;
    const verified = await run(env, ['skopeo', 'copy', '-q', '--src-tls-verify', src, `dir:${join(env.tmp, 'bare-src')}`]);
    expect(verified.code, describeFailure(['--src-tls-verify'], verified)).toBe(1);
    const inspected = await run(env, ['skopeo', 'inspect', '--tls-verify', src]);
    expect(inspected.code, describeFailure(['--tls-verify'], inspected)).toBe(1);
    expect(await ok(env, ['skopeo', 'inspect', '--tls-verify=false', '-f', '{{.Name}}', src])).toBe(`${reg.host}/sk/bb`);
    await ok(env, ['skopeo', 'copy', '-q', '--src-tls-verify=false', '--dest-tls-verify=true', src, `dir:${join(env.tmp, 'src-false')}`]);
  });
});

describe('credentials and signatures', () => {
  const priv = (): string => `docker://${authReg.host}/private/bb:p1`;

  // Stored credentials, so that the anonymous spellings have something to leave out.
  beforeAll(async () => {
    await ok(env, ['skopeo', 'login', '--tls-verify=false', '-u', USER, '-p', PASS, authReg.host]);
    await ok(env, ['skopeo', 'inspect', '--tls-verify=false', '-f', '{{.Digest}}', priv()]);
  });

  it('copy: --src-username/--src-password, --src-creds, --remove-signatures; --src-no-creds is anonymous', async () => {
    const a = join(env.tmp, 'cred-a');
    await ok(env, ['skopeo', 'copy', '-q', '--remove-signatures', '--src-tls-verify=false', '--src-username', USER, '--src-password', PASS, priv(), `dir:${a}`]);
    expect(existsSync(join(a, 'manifest.json'))).toBe(true);
    const b = join(env.tmp, 'cred-b');
    await ok(env, ['skopeo', 'copy', '-q', '--src-tls-verify=false', '--src-creds', `${USER}:${PASS}`, priv(), `dir:${b}`]);
    expect(readFileSync(join(b, 'manifest.json'), 'utf8')).toBe(readFileSync(join(a, 'manifest.json'), 'utf8'));
    const anon = await run(env, ['skopeo', 'copy', '-q', '--src-tls-verify=false', '--src-no-creds', priv(), `dir:${join(env.tmp, 'cred-anon')}`]);
    expect(anon.code, describeFailure(['--src-no-creds'], anon)).toBe(1);
    // Destination spellings: push with --dest-username/--dest-password, refused with --dest-no-creds.
    await ok(env, ['skopeo', 'copy', '-q', '--dest-tls-verify=false', '--dest-username', USER, '--dest-password', PASS, `oci:${layout}:v1`, `docker://${authReg.host}/private/bb:d1`]);
    const anonPush = await run(env, ['skopeo', 'copy', '-q', '--dest-tls-verify=false', '--dest-no-creds', `oci:${layout}:v1`, `docker://${authReg.host}/private/bb:d2`]);
    expect(anonPush.code, describeFailure(['--dest-no-creds'], anonPush)).toBe(1);
  });

  it('inspect, list-tags and delete: --creds, --username/--password, --no-creds', async () => {
    const name = await ok(env, ['skopeo', 'inspect', '--tls-verify=false', '--username', USER, '--password', PASS, '-f', '{{.Name}}', priv()]);
    expect(name).toBe(`${authReg.host}/private/bb`);
    const anon = await run(env, ['skopeo', 'inspect', '--tls-verify=false', '--no-creds', priv()]);
    expect(anon.code, describeFailure(['inspect', '--no-creds'], anon)).toBe(1);
    const tags = JSON.parse(await ok(env, ['skopeo', 'list-tags', '--tls-verify=false', '--username', USER, '--password', PASS, `docker://${authReg.host}/private/bb`])) as { Tags: string[] };
    expect(tags.Tags).toContain('p1');
    const noTags = await run(env, ['skopeo', 'list-tags', '--tls-verify=false', '--no-creds', `docker://${authReg.host}/private/bb`]);
    expect(noTags.code).toBe(1);
    await ok(env, ['skopeo', 'copy', '-q', '--dest-tls-verify=false', '--dest-creds', `${USER}:${PASS}`, `oci:${layout}:v1`, `docker://${authReg.host}/private/bb:gone`]);
    const refused = await run(env, ['skopeo', 'delete', '--tls-verify=false', '--no-creds', `docker://${authReg.host}/private/bb:gone`]);
    expect(refused.code, describeFailure(['delete', '--no-creds'], refused)).toBe(1);
    await ok(env, ['skopeo', 'delete', '--tls-verify=false', '--username', USER, '--password', PASS, `docker://${authReg.host}/private/bb:gone`]);
    const after = await run(env, ['skopeo', 'inspect', '--tls-verify=false', '--creds', `${USER}:${PASS}`, `docker://${authReg.host}/private/bb:gone`]);
    expect(after.code).toBe(1);
  });
});

describe('barge copy TRANSPORT:SRC TRANSPORT:DEST', () => {
  it('takes -a and -f as skopeo copy does', async () => {
    const v2 = join(env.tmp, 'short-f');
    await ok(env, ['copy', '-q', '-f', 'v2s2', `oci:${layout}:v1`, `dir:${v2}`]);
    expect((await readJson<{ mediaType: string }>(join(v2, 'manifest.json'))).mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    const all = join(env.tmp, 'short-a');
    await ok(env, ['copy', '-q', '-a', `oci:${multi}:multi`, `oci:${all}:m`]);
    const top = (await readJson<Index>(join(all, 'index.json'))).manifests[0]!;
    const idx = await readJson<Index>(join(all, 'blobs', 'sha256', top.digest.slice(7)));
    expect(idx.manifests.map((m) => m.platform?.architecture)).toEqual(['amd64', 'arm64']);
  });
});

describe('exit status and output streams', () => {
  it('barge skopeo fails with 1 as skopeo does; barge\'s own commands keep 125', async () => {
    for (const args of [['inspect', 'nosuch:x'], ['inspect', '--no-such-flag', `oci:${layout}:v1`], ['copy', `oci:${join(env.tmp, 'absent')}:x`, `dir:${join(env.tmp, 'never')}`]]) {
      const r = await run(env, ['skopeo', ...args]);
      expect(r.code, describeFailure(args, r)).toBe(1);
      const sk = await runTool('skopeo', args);
      expect(sk.code, describeTool('skopeo', args, sk)).toBe(1);
    }
    const own = await run(env, ['copy', `oci:${join(env.tmp, 'absent')}:x`, `dir:${join(env.tmp, 'never')}`]);
    expect(own.code).toBe(125);
    expect((await run(env, ['images', '--no-such-flag'])).code).toBe(125);
  });

  it('copy reports progress on stderr and leaves stdout empty', async () => {
    const r = await run(env, ['skopeo', 'copy', `oci:${layout}:v1`, `dir:${join(env.tmp, 'progress')}`]);
    expect(r.code, describeFailure(['copy'], r)).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('Copying blob');
  });
});
