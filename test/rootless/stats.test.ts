// `stats` rootless: on a cgroup v1 (or hybrid) host the runtime makes no cgroup for a rootless
// container, so there is nothing to read, and barge refuses as Podman does.
import { statfsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRoot, rootlessBusyboxEnv, type RootlessEnv } from './lib.ts';

const CGROUP_V1 = statfsSync('/sys/fs/cgroup').type !== 0x63677270;

describe.runIf(isRoot && CGROUP_V1)('stats, rootless on cgroup v1', () => {
  let env: RootlessEnv;

  beforeAll(async () => {
    env = await rootlessBusyboxEnv();
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  it('is refused with Podman\'s message and exit 125', async () => {
    await env.bargeOk(['create', '--name', 'st-rl', 'busybox', 'true']);
    for (const args of [['stats', '--no-stream'], ['stats', '--no-stream', 'st-rl'], ['container', 'stats', '-a', '--no-stream']]) {
      const r = await env.barge(args);
      expect(r.code).toBe(125);
      expect(r.stderr).toBe('Error: stats is not supported in rootless mode without cgroups v2\n');
    }
  });
});
