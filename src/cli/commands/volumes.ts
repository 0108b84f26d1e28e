// Podman's `volume` commands: create, ls, inspect, rm, prune, exists.

import { volumeEvent } from '../../containers/events.ts';
import { openStore, print, ExitError, type GlobalOptions } from '../context.ts';
import { StoreError, type Store } from '../../store/store.ts';
import {
  createVolume, findVolume, listVolumes, pruneVolumes, removeVolume, volumeJSON, volumeUsers, VolumeError, type Volume,
} from '../../containers/volumes.ts';
import { removeContainer } from '../../containers/lifecycle.ts';
import { setKeyValues } from '../../primitives/config.ts';
import { keyedFilter, labelFilter, type Predicate } from '../filters.ts';
import { VOLUME_INFO, VOLUME_LIST } from '../gotypes.ts';

type Opts = Record<string, unknown>;
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const list = (v: unknown): string[] => (Array.isArray(v) ? (v as string[]) : []);

/** Podman's errors carry their exit status; the others are 125. */
function exitError(e: unknown): ExitError {
  return e instanceof VolumeError ? new ExitError(e.message, e.exitCode) : new ExitError((e as Error).message, 125);
}

/** `volume create [NAME] [--label K=V] [--ignore]`: prints the name; --ignore accepts an existing one. */
export async function volumeCreateCmd(g: GlobalOptions, args: string[], o: Opts): Promise<void> {
  const store = await openStore(g);
  const name = args[0];
  try {
    const v = await createVolume(store, name, setKeyValues({}, list(o.label)));
    volumeEvent(store, 'create', v.name);
    print(v.name);
  } catch (e) {
    if (e instanceof StoreError && e.code === 'conflict' && o.ignore && name !== undefined) return print(name);
    throw exitError(e);
  }
}

/**
 * --filter KEY=VALUE, as Podman's: values of one key are alternatives, different keys must all
 * hold. name is a regular expression; label is KEY or KEY=VALUE; dangling=true is unused.
 */
function volumeFilter(store: Store, filters: readonly string[]): Predicate<Volume> {
  return keyedFilter<Volume>(filters, (key, value) => {
    switch (key) {
      case 'name': {
        const re = new RegExp(value);
        return (v) => re.test(v.name);
      }
      case 'label': {
        const has = labelFilter(value);
        return (v) => has(v.data.labels);
      }
      case 'dangling': {
        if (!['true', 'false', '1', '0'].includes(value)) throw new ExitError(`${value} is not a valid value for the "dangling" filter - must be true or false`, 125);
        const dangling = value === 'true' || value === '1';
        return (v) => (volumeUsers(store, v.name).length === 0) === dangling;
      }
      case 'driver':
      case 'scope':
        return () => value === 'local';
      default:
        throw new ExitError(`"${key}" is an invalid volume filter`, 125);
    }
  });
}

/** `volume ls [-q] [--format] [--filter] [--noheading]`, by name as Podman lists. */
export async function volumeLsCmd(g: GlobalOptions, _args: string[], o: Opts): Promise<void> {
  const store = await openStore(g);
  const vs = listVolumes(store).filter(volumeFilter(store, list(o.filter)));
  if (o.quiet) {
    for (const v of vs) print(v.name);
    return;
  }
  const format = str(o.format);
  const { formatRows, isJSONFormat, isTableFormat } = await import('../table.ts');
  const json = format !== undefined && isJSONFormat(format);
  const rows = vs.map((v) => volumeJSON(store, v, !json));
  if (json) return print(JSON.stringify(rows, null, 2));
  const out = formatRows(rows, {
    ...(format !== undefined && { format }),
    defaultTable: 'table {{.Driver}}\t{{.Name}}',
    headers: { Name: 'VOLUME NAME' },
    name: 'ls',
    type: VOLUME_LIST,
  });
  process.stdout.write(o.noheading && isTableFormat(format) ? out.split('\n').slice(1).join('\n') : out);
}

/** `volume inspect NAME… | --all [--format]`: the found ones are printed, a missing one makes it fail with 125. */
export async function volumeInspectCmd(g: GlobalOptions, args: string[], o: Opts): Promise<number> {
  const store = await openStore(g);
  if (!o.all && !args.length) throw new ExitError('provide one or more volume names or use --all', 125);
  const vs: Volume[] = [];
  let failed = 0;
  for (const ref of o.all ? listVolumes(store).map((v) => v.name) : args) {
    try {
      vs.push(findVolume(store, ref));
    } catch {
      process.stderr.write(`Error: inspecting object: no such volume ${ref}\n`);
      failed = 125;
    }
  }
  const { printInspected } = await import('../table.ts');
  const format = str(o.format);
  printInspected(vs.map((v) => volumeJSON(store, v, format !== undefined && format !== 'json')), format, VOLUME_INFO);
  return failed;
}

/**
 * `volume rm [-f] [-a] NAME…`: prints each name removed. Exit 1 when one did not exist, 2 when
 * one is in use (no -f), as Podman's.
 */
export async function volumeRmCmd(g: GlobalOptions, args: string[], o: Opts): Promise<number> {
  const store = await openStore(g);
  if (!o.all && !args.length) throw new ExitError('choose either one or more volumes or all', 125);
  const force = !!o.force;
  let code = 0;
  let removedContainers = false;
  for (const ref of o.all ? listVolumes(store).map((v) => v.name) : args) {
    try {
      const v = findVolume(store, ref);
      await removeVolume(store, v.name, force, async (id) => {
        removedContainers = true;
        return removeContainer(store, id, { force: true });
      });
      volumeEvent(store, 'remove', v.name);
      print(v.name);
    } catch (e) {
      const err = exitError(e);
      process.stderr.write(`Error: ${err.message}\n`);
      // The worst failure decides, as Podman's: in use (2) over not found (1).
      code = code === 0 || err.exitCode > code ? err.exitCode : code;
    }
  }
  if (removedContainers) await store.collectGarbage();
  return code;
}

/** `volume prune [-f] [--filter]`: removes the volumes no container uses and prints their names (barge never asks). */
export async function volumePruneCmd(g: GlobalOptions, _args: string[], o: Opts): Promise<void> {
  const store = await openStore(g);
  const match = volumeFilter(store, list(o.filter));
  for (const name of await pruneVolumes(store, (v) => !match(v))) {
    volumeEvent(store, 'prune', name);
    print(name);
  }
}

/** `volume exists NAME`: 0 when it exists, 1 when not. */
export async function volumeExistsCmd(g: GlobalOptions, args: string[]): Promise<number> {
  const store = await openStore(g);
  return store.getVolume(args[0]!) ? 0 : 1;
}
