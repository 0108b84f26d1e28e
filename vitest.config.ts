import { defineConfig } from 'vitest/config';
import { ROOTLESS_USER, ROOTLESS_USER_ENV } from './test/rootless/project.ts';

// The black-box suites that run a second time as an unprivileged user (see test/rootless/project.ts).
const ROOTLESS_SUITES = ['primitives', 'images', 'store', 'build', 'registry', 'containers'];
// Test files of those suites that cannot hold for an unprivileged user, and why. Rootless, barge's
// mounts exist only in its own namespace (as Buildah's: scripts run them under `barge unshare`), and
// the store holds files of the user's subordinate ids, which the user cannot touch from outside it.
const HOST_MOUNTS = 'checks `barge mount` paths from the test process, which cannot see mounts made in barge\'s namespace';
const NOT_ROOTLESS: Record<string, string> = {
  'test/primitives/containers.test.ts': HOST_MOUNTS,
  'test/primitives/commit.test.ts': HOST_MOUNTS,
  'test/primitives/commit-adopt.test.ts': `${HOST_MOUNTS}; and reads the xattrs of store directories owned by subordinate ids`,
  'test/primitives/copy-hostile.test.ts': HOST_MOUNTS,
  'test/primitives/buildah-compare.test.ts': `${HOST_MOUNTS}; and mounts buildah's containers as root`,
  'test/primitives/copy.test.ts': 'creates host files owned by other users (chown), which needs root',
  'test/store/invariants.test.ts': `${HOST_MOUNTS}; and reads store directories owned by subordinate ids`,
  'test/store/corruption.test.ts': 'damages store files owned by subordinate ids, which the user cannot change outside barge\'s namespace',
  'test/build/interop.test.ts': 'builds and runs with rootful buildah and podman for comparison (image content is compared in the root project)',
  'test/containers/checkpoint.test.ts': 'CRIU needs root to checkpoint and restore; rootless, barge refuses them as Podman does (test/containers/pause.test.ts)',
  'test/containers/bridge.test.ts': 'bridge networks need root (netavark makes bridges, veths and firewall rules); rootless, barge keeps slirp4netns and refuses them, as Podman 4.3 would need rootlessport (test/rootless/bridge.test.ts)',
  'test/containers/stats.test.ts': 'reads the container\'s cgroups; rootless on cgroup v1 there are none, and barge refuses as Podman does (test/rootless/stats.test.ts)',
};

// Making the user needs root; run as an ordinary user, every test is rootless already.
// BARGE_TEST_ROOTLESS=0 leaves the project out; `--project root` or `--project rootless` picks one.
const rootless = process.getuid?.() === 0 && process.env.BARGE_TEST_ROOTLESS !== '0';

export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 300_000,
    pool: 'forks',
    reporters: ['default', './test/summary-reporter.ts'],
    projects: [
      { extends: true, test: { name: 'root', include: ['test/**/*.test.ts'], globalSetup: ['test/global-setup.ts'] } },
      ...(rootless
        ? [
            {
              extends: true,
              test: {
                name: 'rootless',
                include: ROOTLESS_SUITES.map((s) => `test/${s}/**/*.test.ts`),
                exclude: Object.keys(NOT_ROOTLESS),
                env: { [ROOTLESS_USER_ENV]: ROOTLESS_USER },
                setupFiles: ['test/rootless/as-user.ts'],
                globalSetup: ['test/rootless/global-setup.ts'],
              },
            },
          ]
        : []),
    ],
  },
});
