// `barge search` against the distribution registry, which has no search API: the repositories
// of its /v2/_catalog that contain the term, or with --list-tags one repository's tags, printed
// as Podman 4.3 prints them. Also the push and pull events.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BargeResult, Env } from '../helpers.ts';
import { busyboxEnv } from '../fixtures.ts';
import { hermetic, startRegistry, type Registry } from './registry.ts';

const USER = 'searcher';
const PASS = 'search-secret';
let reg: Registry;
let env: Env;
const h = hermetic();
const creds = ['--tls-verify=false', '--creds', `${USER}:${PASS}`];
const search = (args: string[]): Promise<string> => h.ok(env, ['search', ...creds, ...args]);
const searchRun = (args: string[]): Promise<BargeResult> => h.run(env, ['search', ...creds, ...args]);

beforeAll(async () => {
  reg = await startRegistry({ tls: true, htpasswd: { user: USER, password: PASS } });
  ({ env } = await busyboxEnv());
  await h.setup(env.tmp);
  for (const ref of ['library/busybox:1', 'library/busybox:latest', 'team/busytool:2', 'alpine:3']) {
    await h.ok(env, ['push', '-q', ...creds, 'busybox', `${reg.host}/${ref}`]);
  }
});

afterAll(async () => {
  await env?.cleanup();
  await reg?.stop();
});

describe('search', () => {
  it('lists the catalog\'s repositories containing the term, in Podman\'s table', async () => {
    const pad = (s: string): string => s.padEnd(`${reg.host}/library/busybox`.length + 2);
    expect(await search([`${reg.host}/busy`])).toBe(
      [`${pad('NAME')}DESCRIPTION`, `${pad(`${reg.host}/library/busybox`)}`, `${pad(`${reg.host}/team/busytool`)}`].join('\n').trim(),
    );
    expect((await search([`${reg.host}/`, '--format', '{{.Name}}'])).split('\n')).toEqual(['alpine', 'library/busybox', 'team/busytool'].map((r) => `${reg.host}/${r}`));
    expect(await search([`${reg.host}/`, '--limit', '1', '--format', '{{.Index}} {{.Name}} {{.Stars}}'])).toBe(`${reg.host} ${reg.host}/alpine 0`);
    expect(JSON.parse(await search([`${reg.host}/alp`, '--format', 'json']))).toEqual([
      { Index: reg.host, Name: `${reg.host}/alpine`, Description: '', Stars: 0, Official: '', Automated: '', Tag: '' },
    ]);
    // Nothing found: nothing printed, not even the header, and success.
    expect(await search([`${reg.host}/nothing-like-it`])).toBe('');
    expect(await search([`${reg.host}/`, '--filter', 'is-official=true'])).toBe('');
  });

  it('--list-tags lists one repository\'s tags; it needs a repository', async () => {
    expect((await search(['--list-tags', `${reg.host}/library/busybox`, '--format', '{{.Name}} {{.Tag}}'])).split('\n').sort()).toEqual(
      [`${reg.host}/library/busybox 1`, `${reg.host}/library/busybox latest`],
    );
    const json = JSON.parse(await search(['--list-tags', `${reg.host}/library/busybox`, '--format', 'json'])) as { Name: string; Tags: string[] }[];
    expect(json.map((j) => ({ ...j, Tags: [...j.Tags].sort() }))).toEqual([{ Name: `${reg.host}/library/busybox`, Tags: ['1', 'latest'] }]);
    const bare = await searchRun(['--list-tags', `${reg.host}/`]);
    expect(bare.code).toBe(125);
    expect(bare.stderr).toBe('Error: reference "" must be a docker reference\n');
  });

  it('fails with 125 and the registry\'s answer without credentials, with a bad filter, or with no registry there', async () => {
    const anon = await h.run(env, ['search', '--tls-verify=false', `${reg.host}/`]);
    expect(anon.code).toBe(125);
    expect(anon.stderr).toMatch(new RegExp(`^Error: couldn't search registry "${reg.host.replace(/\./g, '\\.')}": .*unauthorized`));
    const bad = await searchRun([`${reg.host}/`, '--filter', 'colour=red']);
    expect(bad.code).toBe(125);
    expect(bad.stderr).toBe('Error: invalid filter type "colour"\n');
    const closed = await h.run(env, ['search', '--tls-verify=false', '127.0.0.1:1/x']);
    expect(closed.code).toBe(125);
    expect(closed.stderr).toMatch(/^Error: couldn't search registry "127\.0\.0\.1:1": .*ECONNREFUSED/);
  });

  it('the pushes were recorded as push events, a pull as a pull event', async () => {
    const pushed = await h.ok(env, ['events', '--stream=false', '--filter', 'event=push', '--format', '{{.Type}} {{.Name}}']);
    expect(pushed.split('\n')).toEqual(['library/busybox:1', 'library/busybox:latest', 'team/busytool:2', 'alpine:3'].map((r) => `image ${reg.host}/${r}`));
    await h.ok(env, ['pull', '-q', ...creds, `${reg.host}/team/busytool:2`]);
    expect(await h.ok(env, ['events', '--stream=false', '--filter', 'event=pull', '--format', '{{.Name}}'])).toBe(`${reg.host}/team/busytool:2`);
  });
});
