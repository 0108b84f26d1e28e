import type { ContainerRecord, Store } from '../store/store.ts';
import type { ImageConfig } from '../image/types.ts';
import type { PlatformSpec } from '../image/manifest.ts';
import type { BuilderConfig } from './config.ts';
import type { ContainerUserns } from '../sys/userns.ts';
import type { RunSettings } from './run.ts';

/** What a Buildah working container carries between commands (kept as the container's JSON data). */
export interface BuilderState {
  fromImage: string;
  fromImageId: string;
  fromImageDigest: string;
  config: BuilderConfig;
  /** Mount targets the runtime had to create in the rootfs; they are not part of the image. */
  runMountTargets: string[];
  isolation: 'oci' | 'chroot';
  /** The user namespace every run gets (from --userns and the id maps of from/build); absent: barge's own. */
  userns?: ContainerUserns;
  /** Defaults for every run, from the run options of `from` (states of older barges have none). */
  run?: RunSettings;
  /** from's --format, kept as Buildah keeps it (its commit does not default to it). */
  format?: 'oci' | 'docker';
}

export interface Builder {
  container: ContainerRecord;
  state: BuilderState;
}

export function loadBuilder(store: Store, ref: string): Builder {
  const container = store.getContainer(ref);
  return { container, state: JSON.parse(container.data) as BuilderState };
}

export function saveBuilder(store: Store, b: Builder): void {
  b.container.data = JSON.stringify(b.state);
  store.updateContainerData(b.container.id, b.container.data);
}

/** The config of an image built on nothing (scratch), for the host's platform unless told another. */
export function emptyImageConfig(platform: PlatformSpec = {}): ImageConfig {
  return {
    architecture: platform.architecture ?? hostArch(),
    os: platform.os ?? 'linux',
    ...(platform.variant && { variant: platform.variant }),
    config: {},
    rootfs: { type: 'layers', diff_ids: [] },
    history: [],
  };
}

export function hostArch(): string {
  const map: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  return map[process.arch] ?? process.arch;
}
