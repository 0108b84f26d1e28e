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

/** The keys of `podman container inspect` (Podman 4.3), in its order. */
const PODMAN_KEYS = [
  'Id', 'Created', 'Path', 'Args', 'State', 'Image', 'ImageDigest', 'ImageName', 'Rootfs', 'Pod', 'ResolvConfPath', 'HostnamePath', 'HostsPath',
  'StaticDir', 'OCIConfigPath', 'OCIRuntime', 'ConmonPidFile', 'PidFile', 'Name', 'RestartCount', 'Driver', 'MountLabel', 'ProcessLabel',
  'AppArmorProfile', 'EffectiveCaps', 'BoundingCaps', 'ExecIDs', 'GraphDriver', 'Mounts', 'Dependencies', 'NetworkSettings', 'Namespace',
  'IsInfra', 'IsService', 'Config', 'HostConfig',
];

it("container inspect has Podman's keys in Podman's order, with Podman's values for what scripts read", async () => {
  await env.bargeOk(['run', '-d', '--name', 'keys', '--cap-add', 'net_admin', '--network', 'none', 'busybox', 'sleep', '30']);
  const [j] = JSON.parse(await env.bargeOk(['container', 'inspect', 'keys'])) as Record<string, unknown>[];
  expect(Object.keys(j!)).toEqual(PODMAN_KEYS);
  const f = '{{.NetworkSettings.IPAddress}}|{{.HostConfig.Privileged}}|{{.HostConfig.ShmSize}}|{{.State.Health.Status}}|{{.HostConfig.CapAdd}}|{{len .ImageDigest}}';
  expect(await env.bargeOk(['inspect', '--format', f, 'keys'])).toBe('|false|65536000||[CAP_NET_ADMIN]|71');
  const caps = JSON.parse(await env.bargeOk(['inspect', '--format', '{{json .EffectiveCaps}}', 'keys'])) as string[];
  expect(caps).toContain('CAP_NET_ADMIN');
  expect(caps).toEqual([...caps].sort());
  await env.bargeOk(['rm', '-f', 'keys']);
});
