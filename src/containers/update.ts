// `podman update` (4.3): new cgroup limits for a running container through the runtime's update.
// As in Podman 4.3 they last for this run only: the container's configuration keeps its own.

import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Store } from '../store/store.ts';
import { runtimeUpdate } from '../runtime/conmon.ts';
import { cgroupResources, runtimeHasCgroups, type SpecResourceLimits } from '../runtime/spec.ts';
import { ContainerError, loadContainer, type Container } from './record.ts';
import { liveState, pathsOf, runtimeOf } from './lifecycle.ts';

export async function updateContainer(store: Store, ref: string, limits: SpecResourceLimits): Promise<Container> {
  const c = loadContainer(store, ref);
  const s = liveState(store, c);
  if (s.status !== 'running' && s.status !== 'paused' && s.status !== 'initialized') {
    throw new ContainerError(`container ${c.record.id} is not running, can't update its resources: container state improper`);
  }
  // Where the runtime made no cgroup there is nothing to update (Podman's message for pause there).
  if (!runtimeHasCgroups()) throw new ContainerError('can not update containers on rootless containers with cgroup V1: this container does not have a cgroup');
  const p = pathsOf(store, c);
  const file = join(p.userdata, 'update-resources.json');
  await writeFile(file, JSON.stringify(cgroupResources(limits)), { mode: 0o600 });
  try {
    await runtimeUpdate(runtimeOf(c), p.stateRoot, c.record.id, file);
  } catch (e) {
    throw new ContainerError((e as Error).message);
  } finally {
    await rm(file, { force: true });
  }
  return c;
}
