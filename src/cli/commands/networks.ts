// Podman's `network` commands for barge's bridge networks: create, ls, inspect, rm, exists, prune.

import { openStore, print, ExitError, type GlobalOptions } from '../context.ts';
import type { Store } from '../../store/store.ts';
import { ContainerError } from '../../containers/record.ts';
import { removeContainer } from '../../containers/lifecycle.ts';
import { setKeyValues } from '../../primitives/config.ts';
import {
  createNetwork, DEFAULT_NETWORK, findNetwork, listNetworks, networkUsers, removeNetwork, type NetworkDef,
} from '../../containers/bridge.ts';
import { keyedFilter, labelFilter, type Predicate } from '../filters.ts';
import { NETWORK_INFO, NETWORK_LIST } from '../gotypes.ts';

type Opts = Record<string, unknown>;
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const list = (v: unknown): string[] => (Array.isArray(v) ? (v as string[]) : []);

/** Podman's errors carry their exit status; the others are 125. */
function exitError(e: unknown): ExitError {
  return e instanceof ContainerError ? new ExitError(e.message, e.exitCode) : new ExitError((e as Error).message, 125);
}

/** `network create [flags] [NAME]`: prints the new network's name. */
export async function networkCreateCmd(g: GlobalOptions, args: string[], o: Opts): Promise<void> {
  const store = await openStore(g);
  if (o.ipv6) throw new ExitError("--ipv6: barge's bridge networks are IPv4 only", 125);
  const subnets = list(o.subnet);
  if (subnets.length > 1 || list(o.gateway).length > 1 || list(o.ipRange).length > 1) {
    throw new ExitError("barge's bridge networks have one IPv4 subnet: give --subnet, --gateway and --ip-range at most once", 125);
  }
  const [subnet] = subnets;
  const [gateway] = list(o.gateway);
  const [ipRange] = list(o.ipRange);
  try {
    const def = await createNetwork(store, {
      ...(args[0] !== undefined && { name: args[0] }),
      ...(str(o.driver) !== undefined && { driver: str(o.driver) }),
      ...(subnet !== undefined && { subnet }),
      ...(gateway !== undefined && { gateway }),
      ...(ipRange !== undefined && { ipRange }),
      internal: !!o.internal, disableDns: !!o.disableDns,
      labels: setKeyValues({}, list(o.label)), options: setKeyValues({}, list(o.opt)),
    });
    print(def.name);
  } catch (e) {
    throw exitError(e);
  }
}

/**
 * --filter KEY=VALUE, as Podman's: name (a regular expression), id (a prefix), driver, label, and
 * dangling (no container attached).
 */
function networkFilter(store: Store, filters: readonly string[]): Predicate<NetworkDef> {
  return keyedFilter<NetworkDef>(filters, (key, value) => {
    switch (key) {
      case 'name': {
        const re = new RegExp(value);
        return (n) => re.test(n.name);
      }
      case 'id':
        return (n) => n.id.startsWith(value);
      case 'driver':
        return (n) => n.driver === value;
      case 'label': {
        const has = labelFilter(value);
        return (n) => has(n.labels ?? {});
      }
      case 'dangling': {
        if (!['true', 'false', '1', '0'].includes(value)) throw new ExitError(`invalid dangling filter value "${value}"`, 125);
        const dangling = value === 'true' || value === '1';
        return (n) => (networkUsers(store, n.name).length === 0) === dangling;
      }
      default:
        throw new ExitError(`invalid filter "${key}"`, 125);
    }
  });
}

/** `network ls [-q] [--format] [--filter] [--noheading]`. */
export async function networkLsCmd(g: GlobalOptions, _args: string[], o: Opts): Promise<void> {
  const store = await openStore(g);
  const defs = listNetworks(store).filter(networkFilter(store, list(o.filter)));
  if (o.quiet) {
    for (const n of defs) print(n.name);
    return;
  }
  const format = str(o.format);
  const { formatRows, isJSONFormat, isTableFormat } = await import('../table.ts');
  if (format !== undefined && isJSONFormat(format)) return print(JSON.stringify(defs, null, 2));
  const out = formatRows(defs, {
    ...(format !== undefined && { format }),
    defaultTable: 'table {{.ID}}\t{{.Name}}\t{{.Driver}}',
    headers: { ID: 'NETWORK ID' },
    name: 'ls',
    type: NETWORK_LIST,
  });
  process.stdout.write(o.noheading && isTableFormat(format) ? out.split('\n').slice(1).join('\n') : out);
}

/** `network inspect NAME… [--format]`: the found ones are printed, a missing one makes it fail with 125. */
export async function networkInspectCmd(g: GlobalOptions, args: string[], o: Opts): Promise<number> {
  const store = await openStore(g);
  const found: NetworkDef[] = [];
  let failed = 0;
  for (const ref of args) {
    try {
      found.push(findNetwork(store, ref));
    } catch (e) {
      process.stderr.write(`Error: inspecting object: network ${ref}: ${(e as Error).message}\n`);
      failed = 125;
    }
  }
  const { printInspected } = await import('../table.ts');
  printInspected(found, str(o.format), NETWORK_INFO);
  return failed;
}

/** `network rm [-f] NAME…`: prints each name removed; exit 1 when one did not exist, 2 when one is in use (no -f). */
export async function networkRmCmd(g: GlobalOptions, args: string[], o: Opts): Promise<number> {
  const store = await openStore(g);
  let code = 0;
  let removedContainers = false;
  for (const ref of args) {
    try {
      const def = await removeNetwork(store, ref, !!o.force, async (id) => {
        removedContainers = true;
        return removeContainer(store, id, { force: true, ...(str(o.time) !== undefined && { stopTimeout: Number(str(o.time)) }) });
      });
      print(def.name);
    } catch (e) {
      const err = exitError(e);
      process.stderr.write(`Error: ${err.message}\n`);
      // The worst failure decides, as Podman's: in use (2) over not found (1), and any other (125) over both.
      code = Math.max(code, err.exitCode);
    }
  }
  if (removedContainers) await store.collectGarbage();
  return code;
}

/** `network prune [-f] [--filter]`: removes the networks no container uses (never the default) and prints their names. */
export async function networkPruneCmd(g: GlobalOptions, _args: string[], o: Opts): Promise<void> {
  const store = await openStore(g);
  const match = networkFilter(store, list(o.filter));
  for (const n of listNetworks(store)) {
    if (n.name === DEFAULT_NETWORK || !match(n) || networkUsers(store, n.name).length > 0) continue;
    try {
      await removeNetwork(store, n.name, false, async () => undefined);
      print(n.name);
    } catch (e) {
      // Taken into use meanwhile: kept.
      if (!(e instanceof ContainerError && e.exitCode === 2)) throw exitError(e);
    }
  }
}

/** `network exists NAME`: 0 when it exists, 1 when not. */
export async function networkExistsCmd(g: GlobalOptions, args: string[]): Promise<number> {
  const store = await openStore(g);
  try {
    findNetwork(store, args[0] ?? '');
    return 0;
  } catch {
    return 1;
  }
}
