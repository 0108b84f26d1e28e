// The top-level `inspect` shows Podman's JSON for Podman-style containers and Buildah's for
// working containers, so one habit serves both.
import { beforeAll, expect, it } from 'vitest';
import type { Env } from '../helpers.ts';
import { containerSuite } from './lib.ts';

const suite = containerSuite();
let env: Env;
beforeAll(() => {
  env = suite();
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
