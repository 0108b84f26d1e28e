// Credential helpers (docker-credential-NAME get|store|erase): named per registry by credHelpers
// or for all by credsStore, in auth.json or Docker's config.json. The helper here is a small
// shell script on PATH that keeps credentials in files and logs its calls.
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeFailure, type Env } from '../helpers.ts';
import { busyboxEnv } from '../fixtures.ts';
import { hermetic, startRegistry, type Registry } from './registry.ts';

const USER = 'helperuser';
const PASS = 'helper-secret';

let reg: Registry;
let env: Env;
let helperEnv: Record<string, string> = {};
let store = '';
let callLog = '';
const { setup, run, ok } = hermetic();

// Files are named after the server URL; stored input is printed back verbatim by get, since
// both are the same {"ServerURL","Username","Secret"} object.
const HELPER = `#!/bin/sh
set -e
read_all() { cat; }
in=$(read_all)
echo "$1 $(printf %s "$in" | head -c 200 | sed 's/"Secret":"[^"]*"/"Secret":"***"/')" >> "$HELPER_LOG"
case "$1" in
  store)
    url=$(printf %s "$in" | sed -n 's/.*"ServerURL":"\\([^"]*\\)".*/\\1/p')
    printf %s "$in" > "$HELPER_STORE/$(printf %s "$url" | tr ':/' '__')" ;;
  get)
    f="$HELPER_STORE/$(printf %s "$in" | tr ':/' '__')"
    if [ -f "$f" ]; then cat "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  erase)
    f="$HELPER_STORE/$(printf %s "$in" | tr ':/' '__')"
    if [ -f "$f" ]; then rm "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  *) exit 2 ;;
esac
`;

async function calls(): Promise<string[]> {
  return existsSync(callLog) ? (await readFile(callLog, 'utf8')).trim().split('\n') : [];
}

beforeAll(async () => {
  reg = await startRegistry({ htpasswd: { user: USER, password: PASS } });
  ({ env } = await busyboxEnv());
  await setup(env.tmp);
  const bin = join(env.tmp, 'bin');
  store = join(env.tmp, 'helper-store');
  callLog = join(env.tmp, 'helper.log');
  await mkdir(bin);
  await mkdir(store);
  await writeFile(join(bin, 'docker-credential-bargetest'), HELPER);
  await chmod(join(bin, 'docker-credential-bargetest'), 0o755);
  helperEnv = { PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`, HELPER_STORE: store, HELPER_LOG: callLog };
});

afterAll(async () => {
  await env?.cleanup();
  await reg?.stop();
});

describe('credential helpers', () => {
  it('credHelpers in auth.json: login stores through the helper, push gets from it, logout erases', async () => {
    const authfile = join(env.tmp, 'helper-auth.json');
    await writeFile(authfile, JSON.stringify({ credHelpers: { [reg.host]: 'bargetest' } }));
    const opts = { env: { ...helperEnv, REGISTRY_AUTH_FILE: authfile } };
    const login = await run(env, ['login', '--tls-verify=false', '-u', USER, '-p', PASS, reg.host], opts);
    expect(login.code, describeFailure(['login'], login)).toBe(0);
    expect(login.stdout).toContain('Login Succeeded!');
    // The password is in the helper, not in the file.
    expect(await readFile(authfile, 'utf8')).not.toContain(Buffer.from(`${USER}:${PASS}`).toString('base64'));
    expect(await readdir(store)).toEqual([reg.host.replace(':', '_')]);
    expect(await calls()).toContainEqual(expect.stringMatching(/^store \{"ServerURL":"127\.0\.0\.1:\d+","Username":"helperuser","Secret":"\*\*\*"\}$/));

    await ok(env, ['push', '-q', '--tls-verify=false', 'busybox', `${reg.host}/helper/bb:v1`], opts);
    expect(await calls()).toContain(`get ${reg.host}`);
    expect(await ok(env, ['login', '--get-login', reg.host], opts)).toBe(USER);

    await ok(env, ['logout', reg.host], opts);
    expect(await readdir(store)).toEqual([]);
    expect(await calls()).toContain(`erase ${reg.host}`);
    const denied = await run(env, ['push', '-q', '--tls-verify=false', 'busybox', `${reg.host}/helper/bb:v2`], opts);
    expect(denied.code).toBe(125);
    expect(denied.stderr).toMatch(/unauthorized|authentication required/);
    const again = await run(env, ['logout', reg.host], opts);
    expect(again.code).toBe(125);
    expect(again.stderr).toContain(`not logged into ${reg.host}`);
  });

  it('credsStore in Docker\'s config.json serves pulls; a namespaced login with a helper is refused', async () => {
    const docker = join(env.tmp, 'docker-config');
    await mkdir(docker, { recursive: true });
    await writeFile(join(docker, 'config.json'), JSON.stringify({ credsStore: 'bargetest' }));
    await writeFile(join(store, reg.host.replace(':', '_')), JSON.stringify({ ServerURL: reg.host, Username: USER, Secret: PASS }));
    const opts = { env: { ...helperEnv, DOCKER_CONFIG: docker } };
    const e = env;
    await ok(e, ['push', '-q', '--tls-verify=false', 'busybox', `${reg.host}/store/bb:v1`], opts);
    const tags = JSON.parse(await ok(e, ['list-tags', '--tls-verify=false', `docker://${reg.host}/store/bb`], opts)) as { Tags: string[] };
    expect(tags.Tags).toEqual(['v1']);

    const authfile = join(env.tmp, 'ns-auth.json');
    await writeFile(authfile, JSON.stringify({ credsStore: 'bargetest' }));
    const ns = await run(env, ['login', '--tls-verify=false', '-u', USER, '-p', PASS, `${reg.host}/some/repo`], { env: { ...helperEnv, REGISTRY_AUTH_FILE: authfile } });
    expect(ns.code).toBe(125);
    expect(ns.stderr).toContain('stores credentials per registry');
  });
});
