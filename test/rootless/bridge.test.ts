// Bridge networks rootless: barge keeps slirp4netns there, and refuses a bridge with the reason
// (Podman 4.3 would need rootlessport and a rootless network namespace).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRoot, rootlessBusyboxEnv, type RootlessEnv } from './lib.ts';

describe.runIf(isRoot)('bridge networks, rootless', () => {
  let env: RootlessEnv;

  beforeAll(async () => {
    env = await rootlessBusyboxEnv();
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  it('are refused with a message naming slirp4netns, and no container is made', async () => {
    for (const net of ['bridge', 'podman']) {
      const r = await env.barge(['create', '--name', 'br-rl', '--network', net, 'busybox', 'true']);
      expect(r.code).toBe(125);
      expect(r.stderr).toContain('bridge networks need root: rootless barge networks containers through slirp4netns');
    }
    expect((await env.barge(['container', 'exists', 'br-rl'])).code).toBe(1);
  });
});
