// `barge container checkpoint`, `restore` and `migrate`.

import { defaultPaths, isRootless, openStore, print, ExitError, selectedRuntime, type GlobalOptions } from '../context.ts';
import type { Store } from '../../store/store.ts';
import { StoreError } from '../../store/store.ts';
import { ContainerError, liveState } from '../../containers/lifecycle.ts';
import { loadContainer } from '../../containers/record.ts';
import type { Compression, RestoreOptions } from '../../containers/checkpoint.ts';

type Opts = Record<string, unknown>;
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** Errors of the checkpoint code as Podman reports them: "Error: …" and exit status 125. */
function message(e: unknown): string {
  return (e as Error).message;
}

function isEngineError(e: unknown): boolean {
  return e instanceof ContainerError || e instanceof StoreError || (e as Error).name === 'CheckpointError';
}

/** CRIU needs root: rootless, Podman refuses checkpoint and restore with these messages. */
const CHECKPOINT_NEEDS_ROOT = 'checkpointing a container requires root';

/** The operands, or every running container with --all, or the latest one with --latest. */
function targets(store: Store, args: string[], o: Opts, running: boolean): string[] {
  const pick = (!!o.all ? 1 : 0) + (!!o.latest ? 1 : 0) + (args.length > 0 ? 1 : 0);
  if (pick > 1) throw new ExitError('--all, --latest and containers cannot be used together', 125);
  if (o.all) {
    return store
      .listContainers('container')
      .filter((r) => !running || liveState(store, loadContainer(store, r.id)).status === 'running')
      .map((r) => r.name);
  }
  if (o.latest) {
    const last = store.listContainers('container').at(-1);
    if (!last) throw new ExitError('no containers to act on', 125);
    return [last.name];
  }
  if (args.length === 0) throw new ExitError('at least one container name or ID must be specified', 125);
  return args;
}

async function forEach(refs: string[], fn: (ref: string) => Promise<string>): Promise<number> {
  let failed = 0;
  for (const ref of refs) {
    try {
      print(await fn(ref));
    } catch (e) {
      if (!isEngineError(e) && !(e instanceof ExitError)) throw e;
      process.stderr.write(`Error: ${message(e)}\n`);
      failed = e instanceof ContainerError || e instanceof ExitError ? e.exitCode : 125;
    }
  }
  return failed;
}

/** `barge container checkpoint [-a|-l] [--keep] [-R] [--tcp-established] [-e FILE] [--compress] [--create-image IMAGE] CONTAINER…` */
export async function checkpointCmd(g: GlobalOptions, args: string[], o: Opts): Promise<number> {
  const store = await openStore(g);
  const refs = targets(store, args, o, true);
  if (isRootless()) throw new ExitError(CHECKPOINT_NEEDS_ROOT, 125);
  const exportTo = str(o.export);
  const createImage = str(o.createImage);
  if ((exportTo !== undefined || createImage !== undefined) && refs.length > 1) {
    throw new ExitError('--export and --create-image can only be used with one container', 125);
  }
  if (o.ignoreRootfs && exportTo === undefined && createImage === undefined) {
    throw new ExitError('--ignore-rootfs can only be used with --export or --create-image', 125);
  }
  const { checkpointContainer } = await import('../../containers/checkpoint.ts');
  return forEach(refs, async (ref) => {
    await checkpointContainer(store, ref, {
      keep: !!o.keep, leaveRunning: !!o.leaveRunning, tcpEstablished: !!o.tcpEstablished, ignoreRootfs: !!o.ignoreRootfs,
      compress: (str(o.compress) ?? 'zstd') as Compression,
      ...(exportTo !== undefined && { export: exportTo }),
      ...(createImage !== undefined && { createImage }),
    });
    return ref;
  });
}

/** `barge container restore [-a|-l] [--keep] [--tcp-established] [-i FILE [-n NAME] [--import-previous FILE]] CONTAINER|IMAGE…` */
export async function restoreCmd(g: GlobalOptions, args: string[], o: Opts): Promise<number> {
  if (isRootless()) throw new ExitError('restoring a container requires root', 125);
  const store = await openStore(g);
  const importFrom = str(o.import);
  const name = str(o.name);
  const previous = str(o.importPrevious);
  const runtime = await selectedRuntime(g);
  const ro: RestoreOptions = {
    keep: !!o.keep, tcpEstablished: !!o.tcpEstablished, ignoreRootfs: !!o.ignoreRootfs,
    ...(name !== undefined && { name }),
    ...(runtime !== undefined && { runtime }),
    ...(previous !== undefined && { importPrevious: previous }),
  };
  const cr = await import('../../containers/checkpoint.ts');
  if (previous !== undefined && importFrom === undefined) throw new ExitError('--import-previous can only be used with --import', 125);
  if (importFrom !== undefined) {
    if (args.length > 0 || o.all || o.latest) throw new ExitError('--import cannot be used with containers, --all or --latest', 125);
    return forEach([importFrom], async (file) => (await cr.importCheckpoint(store, file, ro)).record.id);
  }
  const refs = targets(store, args, o, false).filter((r) => !o.all || cr.hasCheckpoint(store, loadContainer(store, r)));
  if (name !== undefined && refs.length > 1) throw new ExitError('--name can only be used with one checkpoint image or --import', 125);
  return forEach(refs, async (ref) => {
    if (!store.findContainer(ref)) {
      const img = await cr.findCheckpointImage(store, ref);
      if (img) return (await cr.restoreFromImage(store, img, ro)).record.id;
      throw new ContainerError(`no container or checkpoint image with name or ID "${ref}" found: no such container`);
    }
    if (name !== undefined) throw new ContainerError('--name can only be used with --import or a checkpoint image');
    await cr.restoreContainer(store, ref, ro);
    return ref;
  });
}

/** `barge container migrate [--keep] [--tcp-established] [--dest-runroot DIR] CONTAINER DEST` */
export async function migrateCmd(g: GlobalOptions, args: string[], o: Opts): Promise<number> {
  const [ref, dest] = args;
  if (!ref || !dest) throw new ExitError('usage: barge container migrate CONTAINER DEST (DEST: a store root directory or ssh://[USER@]HOST[:PORT])', 125);
  if (isRootless()) throw new ExitError(CHECKPOINT_NEEDS_ROOT, 125);
  const store = await openStore(g);
  const { migrateContainer } = await import('../../containers/migrate.ts');
  const destRunroot = str(o.destRunroot);
  return forEach([ref], async (r) => {
    const out = await migrateContainer(store, r, dest, {
      // A local store's runroot is the one barge would use for that --root, unless told otherwise.
      tcpEstablished: !!o.tcpEstablished, keep: !!o.keep, defaultRunroot: defaultPaths().runroot,
      ...(destRunroot !== undefined && { destRunroot }),
      ...(g.storageDriver !== undefined && { destDriver: g.storageDriver }),
    });
    return out;
  });
}
