// The top-level `inspect` shows Podman's JSON for Podman-style containers and Buildah's for
// working containers, so one habit serves both.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { makeEnv, type Env } from '../helpers.ts';
import { importBusybox } from '../fixtures.ts';

let env: Env;

beforeAll(async () => {
  env = await makeEnv();
  await importBusybox(env);
});

afterAll(async () => {
  await env.barge(['rm', '-f', '--all']);
  await env.cleanup();
});

it('inspect NAME answers for a run container and for a working container', async () => {
  await env.bargeOk(['run', '-d', '--name', 'svc', 'busybox', 'sleep', '30']);
  expect(await env.bargeOk(['inspect', '--format', '{{.State.Status}} {{.Name}}', 'svc'])).toBe('running svc');
  const wc = await env.bargeOk(['from', 'busybox']);
  expect(await env.bargeOk(['inspect', '--format', '{{.Container}} {{.Type}}', wc])).toBe(`${wc} buildah 0.0.1`);
  await env.bargeOk(['rm', '-f', 'svc']);
  const gone = await env.barge(['inspect', 'svc']);
  expect(gone.code).toBe(125);
});
