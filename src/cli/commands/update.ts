// `barge update [resource flags] CONTAINER` (Podman 4.3's update).

import { ExitError, openStore, print, type GlobalOptions } from '../context.ts';
import { ContainerError } from '../../containers/record.ts';
import { resourcesOf } from '../buildah-run-options.ts';

export async function updateCmd(g: GlobalOptions, args: string[], o: Record<string, unknown>): Promise<void> {
  const store = await openStore(g);
  if (args.length !== 1) throw new ExitError(`accepts 1 arg(s), received ${args.length}`, 125);
  try {
    const limits = resourcesOf(o) ?? {};
    if (typeof o.cpus === 'string') {
      const cpus = Number(o.cpus);
      if (!(cpus > 0)) throw new ContainerError(`invalid argument "${o.cpus}" for "--cpus" flag: expected a number above 0`);
      limits.cpus = cpus;
    }
    if (!Object.keys(limits).length) throw new ContainerError('no resources to update: give --memory, --cpus or another limit');
    const { updateContainer } = await import('../../containers/update.ts');
    print((await updateContainer(store, args[0]!, limits)).record.id);
  } catch (e) {
    if (e instanceof ContainerError) throw new ExitError(e.message, e.exitCode);
    throw e;
  }
}
