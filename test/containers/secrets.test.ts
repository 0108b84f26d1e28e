// Podman's secrets (file driver), checked against Podman 4.3's behaviour: the `secret` commands
// and their output, how the store keeps them (modes, atomic metadata, concurrent creates), and
// run/create --secret as a read-only file or a variable whose content never reaches inspect or
// a committed image. `secret rm` of a secret in use succeeds, as in Podman 4.3.
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Env } from '../helpers.ts';
import { containerSuite, expectCode } from './lib.ts';

const suite = containerSuite();
let env: Env;
beforeAll(() => {
  env = suite();
});

afterAll(async () => {
  if (!env) return;
  const r = await env.barge(['system', 'check']);
  expectCode(r, 0, ['system', 'check']);
  expect(r.stdout.trim()).toBe('No problems found');
});

const CONTENT = 'hunter2-s3cr3t';

async function secretFile(name: string, content: string): Promise<string> {
  const f = join(env.tmp, name);
  await writeFile(f, content);
  return f;
}

async function create(name: string, content: string, ...flags: string[]): Promise<string> {
  return env.bargeOk(['secret', 'create', ...flags, name, await secretFile(`${name}.txt`, content)]);
}

const secretsDir = (): string => join(env.root, 'secrets');

describe('secret create, ls, inspect, exists, rm', () => {
  it('creates secrets from a file, stdin and a variable, kept 0600 in 0700 directories', async () => {
    const id = await create('db-pass', CONTENT, '--label', 'team=db', '--label', 'tier');
    expect(id).toMatch(/^[0-9a-f]{25}$/);
    const fromStdin = await env.bargeOk(['secret', 'create', 'from-stdin', '-'], { input: 'piped' });
    const fromEnv = await env.bargeOk(['secret', 'create', '--env', 'from-env', 'MY_SECRET_VAR'], { env: { MY_SECRET_VAR: 'from-variable' } });
    expect(new Set([id, fromStdin, fromEnv]).size).toBe(3);

    expect((await stat(secretsDir())).mode & 0o777).toBe(0o700);
    expect((await stat(join(secretsDir(), 'filedriver'))).mode & 0o777).toBe(0o700);
    expect((await stat(join(secretsDir(), 'filedriver', id))).mode & 0o777).toBe(0o600);
    expect(await readFile(join(secretsDir(), 'filedriver', id), 'utf8')).toBe(CONTENT);
    expect(await readFile(join(secretsDir(), 'filedriver', fromStdin), 'utf8')).toBe('piped');
    expect(await readFile(join(secretsDir(), 'filedriver', fromEnv), 'utf8')).toBe('from-variable');
    // The metadata names the secrets but holds none of their content.
    const meta = await readFile(join(secretsDir(), 'secrets.json'), 'utf8');
    expect(meta).toContain('db-pass');
    expect(meta).not.toContain(CONTENT);
    expect((await stat(join(secretsDir(), 'secrets.json'))).mode & 0o777).toBe(0o600);
    // No temporary file of the atomic writes is left behind.
    expect((await readdir(secretsDir())).filter((f) => f.includes('.tmp-'))).toEqual([]);

    expectCode(await env.barge(['secret', 'exists', 'db-pass']), 0);
    expectCode(await env.barge(['secret', 'exists', id]), 0);
    expectCode(await env.barge(['secret', 'exists', 'no-such-secret']), 1);
  });

  it('refuses what Podman refuses, with its messages and 125', async () => {
    const cases: [string[], string][] = [
      [['secret', 'create', 'db-pass', await secretFile('dup.txt', 'x')], 'Error: db-pass: secret name in use'],
      [['secret', 'create', 'bad name', await secretFile('bad.txt', 'x')], 'bad name: invalid secret name'],
      [['secret', 'create', 'empty', await secretFile('empty.txt', '')], 'secret data must be larger than 0 and less than 512000 bytes'],
      [['secret', 'create', 'nofile', join(env.tmp, 'missing')], `open ${join(env.tmp, 'missing')}: no such file or directory`],
      [['secret', 'create', '--env', 'noenv', 'BARGE_TEST_UNSET_VAR'], 'environment variable BARGE_TEST_UNSET_VAR is not set'],
      [['secret', 'create', '--driver', 'pass', 'pass1', await secretFile('p.txt', 'x')], 'barge has only the file driver'],
      [['secret', 'inspect', 'no-such-secret'], 'Error: inspecting secret: no secret with name or id "no-such-secret": no such secret'],
      [['secret', 'rm', 'no-such-secret'], 'Error: no secret with name or id "no-such-secret": no such secret'],
      [['secret', 'rm'], 'requires one argument, or the --all flag'],
      [['secret', 'ls', '--filter', 'driver=file'], 'invalid filter "driver"'],
    ];
    for (const [args, message] of cases) {
      const r = await env.barge(args);
      expectCode(r, 125, args);
      expect(r.stderr).toContain(message);
    }
    // Nothing of the refused creates was stored.
    const names = (await env.bargeOk(['secret', 'ls', '--format', '{{.Name}}'])).split('\n');
    expect(names).not.toContain('empty');
    expect(names).not.toContain('bad name');
  });

  it("lists and inspects as Podman 4.3: its columns, templates, filters and JSON", async () => {
    const lines = (await env.bargeOk(['secret', 'ls'])).split('\n');
    expect(lines[0]).toMatch(/^ID {2,}NAME {2,}DRIVER {2,}CREATED {2,}UPDATED$/);
    const dbLine = lines.find((l) => l.includes(' db-pass '));
    expect(dbLine).toMatch(/^[0-9a-f]{25} {2}db-pass {2,}file {2,}(Less than a second|\d+ seconds?) ago {2,}/);
    const id = (await env.bargeOk(['secret', 'ls', '--filter', 'name=^db-pass$', '--format', '{{.ID}}']));
    expect(id).toMatch(/^[0-9a-f]{25}$/);
    expect(await env.bargeOk(['secret', 'ls', '--filter', `id=${id.slice(0, 6)}`, '--format', '{{.Name}} {{.Driver}}'])).toBe('db-pass file');
    expect(await env.bargeOk(['secret', 'ls', '--filter', 'label=team=db', '-q'])).toBe(id);
    expect((await env.bargeOk(['secret', 'ls', '--noheading'])).split('\n').some((l) => l.startsWith('ID'))).toBe(false);
    expect((await env.bargeOk(['secret', 'ls', '-q'])).split('\n')).toContain(id);

    const [j] = JSON.parse(await env.bargeOk(['secret', 'inspect', 'db-pass'])) as Record<string, unknown>[];
    expect(Object.keys(j!)).toEqual(['ID', 'CreatedAt', 'UpdatedAt', 'Spec']);
    expect(j).toMatchObject({
      ID: id,
      Spec: { Name: 'db-pass', Driver: { Name: 'file', Options: { path: join(secretsDir(), 'filedriver') } }, Labels: { team: 'db', tier: '' } },
    });
    expect(j!.CreatedAt).toBe(j!.UpdatedAt);
    expect(JSON.stringify(j)).not.toContain(CONTENT);
    // Found by a unique prefix of its id; --showsecret adds the content.
    expect(await env.bargeOk(['secret', 'inspect', '--format', '{{.Spec.Name}} {{.Spec.Labels}}', id.slice(0, 8)])).toBe('db-pass map[team:db tier:]');
    const [shown] = JSON.parse(await env.bargeOk(['secret', 'inspect', '--showsecret', 'db-pass'])) as Record<string, unknown>[];
    expect(shown!.SecretData).toBe(CONTENT);
    const pretty = await env.bargeOk(['secret', 'inspect', '--pretty', 'db-pass']);
    expect(pretty).toContain(`ID:              ${id}\nName:              db-pass\nLabels:\n - team=db\n - tier\nDriver:            file\nCreated at:        `);

    // A missing one among found ones: the found ones are printed, and it fails.
    const both = await env.barge(['secret', 'inspect', 'db-pass', 'no-such-secret']);
    expectCode(both, 125);
    expect((JSON.parse(both.stdout) as unknown[]).length).toBe(1);
  });

  it('--replace keeps the id and creation time and changes the content', async () => {
    const id = await create('rotating', 'first');
    const [before] = JSON.parse(await env.bargeOk(['secret', 'inspect', 'rotating'])) as Record<string, string>[];
    expect(await create('rotating', 'second', '--replace', '--label', 'v=2')).toBe(id);
    const [after] = JSON.parse(await env.bargeOk(['secret', 'inspect', '--showsecret', 'rotating'])) as Record<string, unknown>[];
    expect(after).toMatchObject({ ID: id, CreatedAt: before!.CreatedAt, SecretData: 'second', Spec: { Labels: { v: '2' } } });
    expect(Date.parse(after!.UpdatedAt as string)).toBeGreaterThanOrEqual(Date.parse(before!.UpdatedAt!));
    expect(await readFile(join(secretsDir(), 'filedriver', id), 'utf8')).toBe('second');
  });

  it('rm prints the ids, --ignore passes over missing ones, --all removes every secret', async () => {
    const a = await create('rm-a', 'a');
    expect(await env.bargeOk(['secret', 'rm', 'rm-a'])).toBe(a);
    await expect(stat(join(secretsDir(), 'filedriver', a))).rejects.toThrow();
    const b = await create('rm-b', 'b');
    const partial = await env.barge(['secret', 'rm', 'rm-b', 'rm-a']);
    expectCode(partial, 125);
    expect(partial.stdout.trim()).toBe(b);
    expect(partial.stderr).toContain('no secret with name or id "rm-a"');
    expectCode(await env.barge(['secret', 'rm', '--ignore', 'rm-a']), 0);
  });
});

describe('concurrent creates', () => {
  it('of one name: exactly one succeeds and its content is the one kept; of many names: none is lost', async () => {
    const n = 6;
    const files = await Promise.all(Array.from({ length: n }, (_, i) => secretFile(`race-${i}.txt`, `content-${i}`)));
    const same = await Promise.all(files.map((f) => env.barge(['secret', 'create', 'race', f])));
    const winners = same.map((r, i) => ({ r, i })).filter(({ r }) => r.code === 0);
    expect(winners.length).toBe(1);
    for (const r of same.filter((x) => x.code !== 0)) expect(r.stderr).toContain('race: secret name in use');
    const [w] = winners;
    const [shown] = JSON.parse(await env.bargeOk(['secret', 'inspect', '--showsecret', 'race'])) as Record<string, unknown>[];
    expect(shown).toMatchObject({ ID: w!.r.stdout.trim(), SecretData: `content-${w!.i}` });

    const many = await Promise.all(files.map((f, i) => env.barge(['secret', 'create', `many-${i}`, f])));
    for (const r of many) expectCode(r, 0);
    const names = (await env.bargeOk(['secret', 'ls', '--filter', 'name=^many-', '--format', '{{.Name}}'])).split('\n').sort();
    expect(names).toEqual(Array.from({ length: n }, (_, i) => `many-${i}`));
    // Exactly one content file per secret.
    const ids = (await env.bargeOk(['secret', 'ls', '-q'])).split('\n').sort();
    expect((await readdir(join(secretsDir(), 'filedriver'))).sort()).toEqual(ids);
  });
});

describe('run/create --secret', () => {
  it('mounts secrets read-only at /run/secrets/NAME or a target, with the owner and mode asked for, and sets env secrets', async () => {
    await create('api-key', 'key-123');
    const script = [
      'stat -c "%a %u %g" /run/secrets/db-pass /etc/app.key /run/secrets/renamed', 'cat /run/secrets/db-pass; echo', 'cat /etc/app.key; echo',
      'echo "env=$DB_PASSWORD"', 'echo x > /run/secrets/db-pass 2>/dev/null || echo read-only',
    ].join('; ');
    const out = await env.bargeOk([
      'run', '--rm', '--secret', 'db-pass', '--secret', 'api-key,target=/etc/app.key,uid=5,gid=6,mode=0440', '--secret', 'api-key,target=renamed',
      '--secret', 'db-pass,type=env,target=DB_PASSWORD', 'busybox', 'sh', '-c', script,
    ]);
    expect(out.split('\n')).toEqual(['444 0 0', '440 5 6', '444 0 0', CONTENT, 'key-123', `env=${CONTENT}`, 'read-only']);
    // type=env without a target: the secret's name.
    expect(await env.bargeOk(['run', '--rm', '--secret', 'api-key,type=env', 'busybox', 'env'])).toContain('api-key=key-123');
  });

  it("keeps the content out of inspect and out of a committed image", async () => {
    await env.bargeOk(['run', '--name', 'holder', '--secret', 'db-pass', '--secret', 'db-pass,type=env,target=PW', 'busybox', 'sh', '-c', 'cat /run/secrets/db-pass > /dev/null']);
    const inspect = await env.bargeOk(['container', 'inspect', 'holder']);
    expect(inspect).not.toContain(CONTENT);
    const [j] = JSON.parse(inspect) as { Config: { Secrets: unknown[]; Env: string[] } }[];
    const id = await env.bargeOk(['secret', 'ls', '--filter', 'name=^db-pass$', '-q']);
    expect(j!.Config.Secrets).toEqual([{ Name: 'db-pass', ID: id, UID: 0, GID: 0, Mode: 0o444 }]);
    expect(j!.Config.Env.some((e) => e.startsWith('PW='))).toBe(false);

    await env.bargeOk(['commit', '-q', 'holder', 'with-secrets']);
    expect(await env.bargeOk(['image', 'inspect', 'with-secrets'])).not.toContain(CONTENT);
    const inImage = await env.barge(['run', '--rm', 'with-secrets', 'sh', '-c', 'ls -A /run/secrets; echo "PW=$PW"']);
    expect(inImage.stdout).toBe('PW=\n');
    // Nor in the exported filesystem of the committed image.
    await env.bargeOk(['create', '--name', 'from-commit', 'with-secrets', 'true']);
    const tar = join(env.tmp, 'export.tar');
    await env.bargeOk(['export', '-o', tar, 'from-commit']);
    expect((await readFile(tar)).includes(Buffer.from(CONTENT))).toBe(false);
    await env.bargeOk(['rm', 'holder', 'from-commit']);
  });

  it('refuses bad --secret values and missing secrets with 125, and creates nothing', async () => {
    const before = await env.bargeOk(['ps', '-aq']);
    const cases: [string, string][] = [
      ['no-such-secret', 'no secret with name or id "no-such-secret": no such secret'],
      ['db-pass,type=bogus', 'type bogus is invalid: parsing secret'],
      ['db-pass,type=env,uid=3', 'UID, GID, Mode options cannot be set with secret type env: parsing secret'],
      ['db-pass,foo=bar', 'option foo=bar invalid: parsing secret'],
      ['db-pass,mode=abc', 'mode abc invalid: parsing secret'],
    ];
    for (const [spec, message] of cases) {
      const r = await env.barge(['create', '--secret', spec, 'busybox', 'true']);
      expectCode(r, 125, ['create', '--secret', spec]);
      expect(r.stderr).toContain(message);
    }
    expect(await env.bargeOk(['ps', '-aq'])).toBe(before);
  });

  it('secret rm of a secret in use succeeds, as in Podman 4.3: mount secrets stay (copied at create), env secrets must exist at start', async () => {
    await create('used-mount', 'mounted-content');
    await create('used-env', 'env-content');
    await env.bargeOk(['create', '--name', 'user', '--secret', 'used-mount', 'busybox', 'cat', '/run/secrets/used-mount']);
    await env.bargeOk(['create', '--name', 'env-user', '--secret', 'used-env,type=env,target=V', 'busybox', 'sh', '-c', 'echo $V']);
    await env.bargeOk(['secret', 'rm', 'used-mount', 'used-env']);
    expect(await env.bargeOk(['start', '-a', 'user'])).toBe('mounted-content');
    const failed = await env.barge(['start', '-a', 'env-user']);
    expectCode(failed, 125);
    expect(failed.stderr).toContain('no secret with name or id "used-env": no such secret');
    await create('used-env', 'recreated');
    expect(await env.bargeOk(['start', '-a', 'env-user'])).toBe('recreated');
    await env.bargeOk(['rm', 'user', 'env-user']);
  });
});
