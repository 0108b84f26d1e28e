// `barge init` (`container init`): Podman's init, the runtime's create of a container without its start.

import { openStore, type GlobalOptions } from '../context.ts';
import { liveState, startDetached } from '../../containers/lifecycle.ts';
import { loadContainer } from '../../containers/record.ts';
import { forEach, targets } from './containers.ts';

/** `init [-a] [-l] CONTAINER…`: each is left "initialized"; `start` then starts it. Prints what it was given, as Podman. */
export async function initCmd(g: GlobalOptions, args: string[], o: Record<string, unknown>): Promise<number> {
  const store = await openStore(g);
  // As Podman: --all passes over the containers that are already initialized or running.
  const fresh = (ref: string): boolean => ['created', 'exited'].includes(liveState(store, loadContainer(store, ref)).status);
  const refs = targets(store, args, o).filter((ref) => !o.all || fresh(ref));
  return forEach(refs, async (ref) => {
    await startDetached(store, ref, { initOnly: true });
    return ref;
  });
}
