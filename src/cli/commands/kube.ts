// Podman's Kubernetes YAML commands: `kube play` (alias `play kube`), `kube down`, and
// `generate kube` (alias `kube generate`).

import { readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { text as streamText } from 'node:stream/consumers';
import { openStore, print, boolOpt, ExitError, selectedRuntime, type GlobalOptions } from '../context.ts';
import type { Store } from '../../store/store.ts';
import { ContainerError } from '../../containers/record.ts';
import { ContainerStartError } from '../../containers/lifecycle.ts';
import { generateKube, kubePodNames, parseKubeDocuments, planKube, playKube, tearDown } from '../../containers/kube.ts';
import { imageFor, isRootful, withContainersConf } from './containers.ts';
import { VERSION } from '../version.ts';

type Opts = Record<string, unknown>;
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const list = (v: unknown): string[] => (Array.isArray(v) ? (v as string[]) : []);

function rethrow(e: unknown): never {
  if (e instanceof ContainerError || e instanceof ContainerStartError) throw new ExitError(e.message, e.exitCode);
  throw e;
}

/** Podman's network for kube pods run as root: a bridge network of this name, made on first use. */
const KUBE_NETWORK = 'podman-default-kube-network';

async function readYaml(file: string | undefined): Promise<string> {
  if (file === undefined) throw new ExitError('a Kubernetes YAML file (or - for standard input) is required', 125);
  if (file === '-') return streamText(process.stdin);
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    throw new ExitError(`open ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (e as Error).message}`, 125);
  }
}

function printTeardown(r: { stopped: string[]; removed: string[] }): void {
  if (!r.stopped.length && !r.removed.length) return;
  print(['Pods stopped:', ...r.stopped, 'Pods removed:', ...r.removed].join('\n'));
}

/** The network kube pods join without --network: rootless, slirp4netns; as root, Podman's kube bridge network. */
async function defaultNetwork(store: Store): Promise<string> {
  if (!isRootful()) return 'slirp4netns';
  const bridge = await import('../../containers/bridge.ts');
  if (!bridge.listNetworks(store).some((n) => n.name === KUBE_NETWORK)) {
    await bridge.createNetwork(store, { name: KUBE_NETWORK }).catch((e: unknown) => {
      // Another play made it meanwhile.
      if (!bridge.listNetworks(store).some((n) => n.name === KUBE_NETWORK)) throw e;
    });
  }
  return KUBE_NETWORK;
}

/** `kube play [--replace] [--start=false] [--network N] [-p …] FILE|-`: prints what it made, as Podman. */
export async function kubePlayCmd(g: GlobalOptions, args: string[], o: Opts): Promise<void> {
  const store = await openStore(g);
  const source = await readYaml(args[0]);
  // Podman builds an image from a directory named after it beside the YAML; barge builds nothing (so only --build=false).
  if (o.build !== undefined && boolOpt(o.build, '--build')) throw new ExitError('--build: barge does not build images for kube play; build them first with barge build', 125);
  const runtime = await selectedRuntime(g);
  try {
    const docs = parseKubeDocuments(source);
    const plan = await planKube(store, docs);
    if (o.replace) printTeardown(await tearDown(store, plan.pods.map((p) => p.name), { missingOk: true }));
    const network = str(o.network) ?? str(o.net) ?? (plan.pods.some((p) => !p.hostNetwork) ? await defaultNetwork(store) : 'private');
    const report = await playKube(store, plan, {
      start: boolOpt(o.start, '--start'), replace: !!o.replace, network, publish: list(o.publish), createCommand: ['barge', ...process.argv.slice(2)],
      image: (ref, policy) => imageFor(store, ref, { ...o, pull: policy }),
      prepare: async (c) => {
        const opts = { ...c, ...(runtime !== undefined && { runtime }) };
        await withContainersConf(opts);
        return opts;
      },
    });
    const out: string[] = [];
    if (report.volumes.length) out.push('Volumes:', ...report.volumes);
    for (const p of report.pods) {
      out.push('Pod:', p.id);
      if (p.containers.length) out.push(p.containers.length === 1 ? 'Container:' : 'Containers:', ...p.containers);
      out.push('');
    }
    if (out.length) process.stdout.write(`${out.join('\n')}\n`);
  } catch (e) {
    rethrow(e);
  }
}

/** `kube down FILE|-`: the YAML's pods stopped and removed (their volumes stay), as Podman reports it. */
export async function kubeDownCmd(g: GlobalOptions, args: string[]): Promise<void> {
  const store = await openStore(g);
  const source = await readYaml(args[0]);
  try {
    printTeardown(await tearDown(store, kubePodNames(parseKubeDocuments(source)), { missingOk: false }));
    await store.collectGarbage();
  } catch (e) {
    rethrow(e);
  }
}

/** `generate kube [-s] [-f FILE] CTR|POD…`: the YAML on standard output, or written to FILE. */
export async function generateKubeCmd(g: GlobalOptions, args: string[], o: Opts): Promise<void> {
  const store = await openStore(g);
  if (!args.length) throw new ExitError('generate kube needs at least one container or pod', 125);
  const file = str(o.filename);
  if (file !== undefined && existsSync(file)) throw new ExitError(`cannot write to "${file}"; file exists`, 125);
  let yaml: string;
  try {
    yaml = await generateKube(store, args, { service: !!o.service, version: VERSION });
  } catch (e) {
    return rethrow(e);
  }
  if (file === undefined) process.stdout.write(yaml);
  else await writeFile(file, yaml, { flag: 'wx' });
}
