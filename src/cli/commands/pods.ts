// Podman's `pod` commands: create, ps/ls, inspect, start, stop, restart, kill, rm, exists, prune.

import { writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { openStore, print, ExitError, humanDuration, type GlobalOptions } from '../context.ts';
import type { Store } from '../../store/store.ts';
import {
  createPod, infraConfig, killPod, listPods, loadPod, podMembers, podStatus, removePod, startPod, stopPod, type Pod, type PodMember,
} from '../../containers/pods.ts';
import { ContainerError, isActive } from '../../containers/record.ts';
import { inspectPorts } from '../../containers/slirp.ts';
import { keyedFilter, labelFilter, type Predicate } from '../filters.ts';

type Opts = Record<string, unknown>;
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const list = (v: unknown): string[] => (Array.isArray(v) ? (v as string[]) : []);

function rethrow(e: unknown): never {
  if (e instanceof ContainerError) throw new ExitError(e.message, e.exitCode);
  throw e;
}

/** --infra[=BOOL] (and commander's --no-infra). */
function infraOpt(v: unknown): boolean {
  if (v === undefined || v === true) return true;
  if (v === false || v === 'false') return false;
  if (v === 'true') return true;
  throw new ExitError(`invalid argument "${String(v)}" for "--infra" flag: strconv.ParseBool: parsing "${String(v)}": invalid syntax`, 125);
}

/** `pod create [--name N] …`: prints the pod's id (and writes it to --pod-id-file). */
export async function podCreateCmd(g: GlobalOptions, args: string[], o: Opts): Promise<void> {
  const store = await openStore(g);
  const idFile = str(o.podIdFile);
  if (idFile !== undefined && existsSync(idFile)) throw new ExitError(`pod id file exists. Ensure another pod is not using it or delete ${idFile}`, 125);
  if (args.length) throw new ExitError('barge pod create takes no arguments (pod create with containers is not supported yet: use kube play for a pod with its containers)', 125);
  try {
    const pod = await createPod(store, {
      infra: infraOpt(o.infra), labels: list(o.label), publish: list(o.publish), createCommand: ['barge', ...process.argv.slice(2)],
      ...(str(o.name) !== undefined && { name: str(o.name)! }),
      ...(str(o.infraImage) !== undefined && { infraImage: str(o.infraImage)! }),
      ...(str(o.infraCommand) !== undefined && { infraCommand: str(o.infraCommand)! }),
      ...(str(o.infraName) !== undefined && { infraName: str(o.infraName)! }),
      ...(str(o.share) !== undefined && { share: str(o.share)! }),
      ...(str(o.hostname) !== undefined && { hostname: str(o.hostname)! }),
      ...((str(o.network) ?? str(o.net)) !== undefined && { network: (str(o.network) ?? str(o.net))! }),
    });
    if (idFile !== undefined) await writeFile(idFile, pod.record.id);
    print(pod.record.id);
  } catch (e) {
    rethrow(e);
  }
}

/** The pods named: by name or id, by --pod-id-file, --all or --latest. */
function podTargets(store: Store, args: string[], o: Opts): Pod[] {
  if (o.all) return listPods(store);
  if (o.latest) {
    const last = listPods(store).at(-1);
    if (!last) throw new ExitError('no pods to act on', 125);
    return [last];
  }
  const refs = [...args, ...list(o.podIdFile).map((f) => readIdFile(f))];
  if (!refs.length) throw new ExitError('you must provide at least one name or id', 125);
  // --ignore (stop, rm): a pod that does not exist is passed over.
  return refs.flatMap((r) => {
    if (o.ignore && !store.findPod(r)) return [];
    try {
      return [loadPod(store, r)];
    } catch (e) {
      return rethrow(e);
    }
  });
}

function readIdFile(f: string): string {
  try {
    return readFileSync(f, 'utf8').trim();
  } catch (e) {
    throw new ExitError(`reading pod ID file: ${(e as Error).message}`, 125);
  }
}

/** Runs fn on each pod, printing its id; the last failure's status is the command's (Podman reports each). */
async function eachPod(pods: Pod[], fn: (p: Pod) => Promise<void>): Promise<number> {
  let code = 0;
  for (const p of pods) {
    try {
      await fn(p);
      print(p.record.id);
    } catch (e) {
      process.stderr.write(`Error: ${(e as Error).message}\n`);
      code = e instanceof ContainerError ? e.exitCode : 125;
    }
  }
  return code;
}

export async function podStartCmd(g: GlobalOptions, args: string[], o: Opts): Promise<number> {
  const store = await openStore(g);
  return eachPod(podTargets(store, args, o), (p) => startPod(store, p));
}

function timeOpt(o: Opts): number | undefined {
  const t = str(o.time);
  if (t === undefined) return undefined;
  if (!/^-?\d+$/.test(t)) throw new ExitError(`invalid argument "${t}" for "-t, --time" flag`, 125);
  return Number(t);
}

export async function podStopCmd(g: GlobalOptions, args: string[], o: Opts): Promise<number> {
  const store = await openStore(g);
  const t = timeOpt(o);
  return eachPod(podTargets(store, args, o), (p) => stopPod(store, p, t));
}

export async function podRestartCmd(g: GlobalOptions, args: string[], o: Opts): Promise<number> {
  const store = await openStore(g);
  return eachPod(podTargets(store, args, o), async (p) => {
    await stopPod(store, p);
    await startPod(store, p);
  });
}

export async function podKillCmd(g: GlobalOptions, args: string[], o: Opts): Promise<number> {
  const store = await openStore(g);
  const sig = str(o.signal) ?? 'SIGKILL';
  return eachPod(podTargets(store, args, o), (p) => killPod(store, p, sig));
}

/** `pod rm [-f] [-a] [-i] [-t N] POD…`: the pods and their containers; prints each id. */
export async function podRmCmd(g: GlobalOptions, args: string[], o: Opts): Promise<number> {
  const store = await openStore(g);
  const t = timeOpt(o);
  // As Podman: a pod that does not exist is reported, and makes the exit status 1 rather than 125.
  const missing = o.ignore ? [] : args.filter((a) => !store.findPod(a));
  for (const m of missing) process.stderr.write(`Error: no pod with name or ID ${m} found: no such pod\n`);
  const found = args.filter((a) => !missing.includes(a));
  const code = found.length || !args.length || o.all
    ? await eachPod(podTargets(store, found, o), (p) => removePod(store, p, { force: !!o.force, ...(t !== undefined && { timeoutSec: t }) }))
    : 0;
  await store.collectGarbage();
  return code || (missing.length ? 1 : 0);
}

/** `pod top POD [descriptors…]`: the processes of the pod's running containers, as `top` shows one container's. */
export async function podTopCmd(g: GlobalOptions, args: string[], o: Opts): Promise<void> {
  const store = await openStore(g);
  // With --latest every argument is a descriptor.
  const [pod] = podTargets(store, o.latest ? [] : args.slice(0, 1), o);
  const descriptors = o.latest ? args : args.slice(1);
  const running = podMembers(store, pod!).filter((m) => isActive(m.s.status)).map((m) => m.c);
  if (running.length === 0) throw new ExitError('pod top can only be used on pods with at least one running container', 125);
  const { topOf } = await import('../../containers/top.ts');
  try {
    process.stdout.write(await topOf(store, running, descriptors));
  } catch (e) {
    rethrow(e);
  }
}

/** `pod prune [-f]`: removes the pods none of whose containers is running. */
export async function podPruneCmd(g: GlobalOptions): Promise<number> {
  const store = await openStore(g);
  const idle = listPods(store).filter((p) => !['Running', 'Degraded', 'Paused'].includes(podStatus(podMembers(store, p))));
  const code = await eachPod(idle, (p) => removePod(store, p, { force: false }));
  if (idle.length) await store.collectGarbage();
  return code;
}

export async function podExistsCmd(g: GlobalOptions, args: string[]): Promise<number> {
  const store = await openStore(g);
  return store.findPod(args[0]!) ? 0 : 1;
}

/** Podman's `pod inspect` JSON, with the fields barge has. */
function podInspectJSON(store: Store, p: Pod): Record<string, unknown> {
  const members = podMembers(store, p);
  const infra = infraConfig(store, p);
  return {
    Id: p.record.id,
    Name: p.record.name,
    Created: p.record.created,
    CreateCommand: p.data.createCommand,
    ExitPolicy: 'continue',
    State: podStatus(members),
    Hostname: p.data.hostname,
    Labels: p.data.labels,
    CreateCgroup: false,
    CreateInfra: p.data.createInfra,
    ...(p.record.infraId && { InfraContainerID: p.record.infraId }),
    ...(infra && {
      InfraConfig: {
        PortBindings: inspectPorts(infra.ports ?? []), HostNetwork: infra.network === 'host', StaticIP: '', StaticMAC: '', NoManageResolvConf: false,
        DNSServer: null, DNSSearch: null, DNSOption: null, NoManageHosts: !!infra.noHosts, HostAdd: null, Networks: [infra.network], NetworkOptions: null,
        pid_ns: p.data.share.includes('pid') ? 'pod' : 'private', userns: 'host', uts_ns: 'private',
      },
    }),
    SharedNamespaces: p.data.share.length ? p.data.share : null,
    NumContainers: members.length,
    Containers: members.map((m) => ({ Id: m.c.record.id, Name: m.c.record.name, State: stateName(m) })),
  };
}

function stateName(m: PodMember): string {
  return m.s.status === 'stopping' ? 'stopping' : m.s.status;
}

export async function podInspectCmd(g: GlobalOptions, args: string[], o: Opts): Promise<void> {
  const store = await openStore(g);
  const [pod] = podTargets(store, args, o);
  if (args.length > 1) throw new ExitError('you must provide one pod name or id', 125);
  const json = podInspectJSON(store, pod!);
  const format = str(o.format);
  if (format === undefined || format === 'json') return print(JSON.stringify(json, null, 5));
  const { printInspected } = await import('../table.ts');
  printInspected([json], format);
}

interface PodRow {
  ID: string;
  Name: string;
  Status: string;
  Created: string;
  CreatedAt: string;
  InfraID: string;
  NumberOfContainers: number;
  Labels: Record<string, string>;
  Networks: string;
  Cgroup: string;
  ContainerIds: string;
  ContainerNames: string;
  ContainerStatuses: string;
}

/** --filter for pod ps, as Podman's: values of one key are alternatives, different keys must all hold. */
function podFilter(filters: readonly string[]): Predicate<{ p: Pod; members: PodMember[] }> {
  return keyedFilter(filters, (key, value) => {
    switch (key) {
      case 'id':
        return (x) => x.p.record.id.startsWith(value);
      case 'name': {
        const re = new RegExp(value);
        return (x) => re.test(x.p.record.name);
      }
      case 'label': {
        const has = labelFilter(value);
        return (x) => has(x.p.data.labels);
      }
      case 'status': {
        const states = ['stopped', 'running', 'paused', 'exited', 'dead', 'created', 'degraded'];
        if (!states.includes(value)) throw new ExitError(`${value} is not a valid status`, 125);
        return (x) => podStatus(x.members).toLowerCase() === value;
      }
      case 'ctr-names':
        return (x) => x.members.some((m) => m.c.record.name === value);
      case 'ctr-ids':
        return (x) => x.members.some((m) => m.c.record.id.startsWith(value));
      case 'ctr-number':
        return (x) => String(x.members.length) === value;
      case 'ctr-status':
        return (x) => x.members.some((m) => stateName(m) === value);
      default:
        throw new ExitError(`${key} is an invalid filter`, 125);
    }
  });
}

/** `pod ps` (ls, list): Podman's table, templates (ListPodsReport's fields), JSON, -q. */
export async function podPsCmd(g: GlobalOptions, _args: string[], o: Opts): Promise<void> {
  const store = await openStore(g);
  const noTrunc = !!o.noTrunc || o.trunc === false;
  const short = (id: string): string => (noTrunc ? id : id.slice(0, 12));
  let pods = listPods(store).map((p) => ({ p, members: podMembers(store, p) })).filter(podFilter(list(o.filter)));
  if (o.latest) pods = pods.slice(-1);
  const sort = str(o.sort);
  if (sort !== undefined) {
    const keys: Record<string, (x: (typeof pods)[number]) => string> = {
      created: (x) => x.p.record.created, id: (x) => x.p.record.id, name: (x) => x.p.record.name,
      number: (x) => String(x.members.length).padStart(6, '0'), status: (x) => podStatus(x.members),
    };
    const key = keys[sort];
    if (!key) throw new ExitError(`invalid option for --sort, options are: ${Object.keys(keys).join(', ')}`, 125);
    pods.sort((a, b) => key(a).localeCompare(key(b)));
  }
  if (o.quiet) {
    for (const x of pods) print(short(x.p.record.id));
    return;
  }
  const format = str(o.format);
  const { formatRows, isJSONFormat, isTableFormat } = await import('../table.ts');
  if (format !== undefined && isJSONFormat(format)) {
    const json = pods.map(({ p, members }) => ({
      Cgroup: '', Containers: members.map((m) => ({ Id: m.c.record.id, Names: m.c.record.name, Status: stateName(m) })), Created: p.record.created,
      Id: p.record.id, InfraId: p.record.infraId ?? '', Name: p.record.name, Namespace: '', Networks: networksOf(store, p), Status: podStatus(members), Labels: p.data.labels,
    }));
    return print(JSON.stringify(json, null, 2));
  }
  const rows: PodRow[] = pods.map(({ p, members }) => ({
    ID: short(p.record.id), Name: p.record.name, Status: podStatus(members), Created: `${humanDuration(Date.now() - Date.parse(p.record.created))} ago`,
    CreatedAt: p.record.created, InfraID: p.record.infraId ? short(p.record.infraId) : '', NumberOfContainers: members.length, Labels: p.data.labels,
    Networks: networksOf(store, p).join(','), Cgroup: '', ContainerIds: members.map((m) => short(m.c.record.id)).join(','),
    ContainerNames: members.map((m) => m.c.record.name).join(','), ContainerStatuses: members.map(stateName).join(','),
  }));
  // As Podman: the columns of --ctr-ids, --ctr-names and --ctr-status replace the container count.
  const ctrColumns = [o.ctrIds && '{{.ContainerIds}}', o.ctrNames && '{{.ContainerNames}}', o.ctrStatus && '{{.ContainerStatuses}}'].filter((x): x is string => !!x);
  const defaultTable = `table {{.ID}}\t{{.Name}}\t{{.Status}}\t{{.Created}}\t{{.InfraID}}\t${ctrColumns.length ? ctrColumns.join('\t') : '{{.NumberOfContainers}}'}`;
  const out = formatRows(rows, {
    ...(format !== undefined && { format }),
    defaultTable,
    headers: {
      ID: 'POD ID', Name: 'NAME', Status: 'STATUS', Created: 'CREATED', InfraID: 'INFRA ID', NumberOfContainers: '# OF CONTAINERS',
      ContainerIds: 'IDS', ContainerNames: 'NAMES', ContainerStatuses: 'STATUS',
    },
    name: 'pod ps',
  });
  if (o.noheading && isTableFormat(format)) process.stdout.write(out.split('\n').slice(1).join('\n'));
  else process.stdout.write(out);
}

function networksOf(store: Store, p: Pod): string[] {
  const infra = infraConfig(store, p);
  return infra ? [infra.network] : [];
}
