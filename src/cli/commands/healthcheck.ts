// Podman's `healthcheck run`: the container's healthcheck once, its result kept in the state.

import { openStore, print, ExitError, type GlobalOptions } from '../context.ts';
import { ContainerError } from '../../containers/record.ts';
import { runHealthcheck } from '../../containers/health.ts';

/** Exit 0 when healthy; "unhealthy" and 1 when the check failed; 125 for errors, as Podman's. */
export async function healthcheckRunCmd(g: GlobalOptions, args: string[]): Promise<number> {
  const store = await openStore(g);
  try {
    const { code } = await runHealthcheck(store, args[0] ?? '');
    if (code !== 0) print('unhealthy');
    return code;
  } catch (e) {
    if (e instanceof ContainerError) throw new ExitError(e.message, e.exitCode);
    throw e;
  }
}
