// Kubernetes YAML for pods, as Podman 4.3 reads and writes it: `kube play` turns the documents
// (Pod, Deployment, PersistentVolumeClaim, ConfigMap) into plans that pods.ts and lifecycle.ts
// carry out as `pod create` and `create --pod` would, `kube down` names the pods to remove, and
// `generate kube` writes containers and pods back as a Pod (and a Service).

import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import type { Store } from '../store/store.ts';
import type { PullPolicy } from '../image/local-images.ts';
import { findImage, getImage, readImageConfig } from '../image/local-images.ts';
import { parseReference } from '../image/reference.ts';
import { DEFAULT_CAPABILITIES, normalizeCapability } from '../runtime/spec.ts';
import { createContainer, removeContainer, startDetached, waitExited, type CreateOptions } from './lifecycle.ts';
import { createPod, loadPod, podMembers, removePod, startPod, stopPod, type Pod } from './pods.ts';
import { ContainerError, loadContainer, type Container, type ContainerConfig } from './record.ts';
import { createAnonymousVolume, createVolume, dataDir, findVolume, removeIfUnused, removeVolume, volumesOf } from './volumes.ts';
import { findSecret, readSecretData } from './secrets.ts';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const obj = (v: unknown): Obj => (isObj(v) ? v : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? (v as unknown[]) : []);
/** A scalar as text: YAML gives numbers and booleans where Kubernetes means strings ("8080", "true"). */
const text = (v: unknown): string | undefined => (typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined);
const textMap = (v: unknown): Record<string, string> =>
  Object.fromEntries(Object.entries(obj(v)).flatMap(([k, x]) => (text(x) === undefined ? [] : [[k, text(x)!]])));
const pairs = (m: Record<string, string>): string[] => Object.entries(m).map(([k, v]) => `${k}=${v}`);

export class KubeError extends ContainerError {
  override name = 'KubeError';
}

/** The documents of a YAML stream; a stream that is no YAML fails as Podman's splitting does. */
export function parseKubeDocuments(source: string): Obj[] {
  const out: Obj[] = [];
  for (const doc of parseAllDocuments(source, { uniqueKeys: false })) {
    const err = doc.errors[0];
    if (err) throw new KubeError(`multi doc yaml could not be split: ${err.message.split('\n')[0]!.replace(/:$/, '')}`);
    const v: unknown = doc.toJS();
    if (v === null || v === undefined) continue;
    if (!isObj(v)) throw new KubeError('multi doc yaml could not be split: a document is not a mapping of Kubernetes fields');
    out.push(v);
  }
  return out;
}

/** A container of a pod as `create --pod` takes it, with what the pod decides left to the player. */
export interface ContainerPlan {
  /** An init container: run to completion before the others, then removed (Podman's "once"). */
  init: boolean;
  /** imagePullPolicy; undefined leaves it to defaultPullPolicy. */
  pullPolicy: PullPolicy | undefined;
  options: CreateOptions;
  /** Mounts of the pod's anonymous volumes (emptyDir, configMap) by their YAML names, made when the pod is. */
  anonymousMounts: { volume: string; destination: string; readOnly: boolean }[];
}

export interface PodPlan {
  name: string;
  labels: Record<string, string>;
  hostname?: string;
  hostNetwork: boolean;
  /** hostPorts of its containers, as `pod create -p` values. */
  publish: string[];
  /** The pod's emptyDir and configMap volumes by YAML name: anonymous volumes its containers share, a configMap's holding its files. */
  anonymous: { name: string; files?: Record<string, string>; mode?: number }[];
  containers: ContainerPlan[];
}

export interface KubePlan {
  /** PersistentVolumeClaims: named volumes made first. */
  volumes: { name: string; labels: Record<string, string> }[];
  pods: PodPlan[];
}

const PLAYABLE = new Set(['Pod', 'Deployment', 'PersistentVolumeClaim']);

function metadataName(doc: Obj): string {
  const name = text(obj(doc.metadata).name);
  if (!name) throw new KubeError(`${String(doc.kind)} metadata.name must be set`);
  return name;
}

/** The pods a document makes, by name: a Deployment's replicas are NAME-pod-0, NAME-pod-1, … as Podman names them. */
function podsOf(doc: Obj): { name: string; template: Obj }[] {
  if (doc.kind === 'Pod') return [{ name: metadataName(doc), template: doc }];
  if (doc.kind !== 'Deployment') return [];
  const name = metadataName(doc);
  const spec = obj(doc.spec);
  const replicas = spec.replicas === undefined ? 1 : Number(spec.replicas);
  if (!Number.isInteger(replicas) || replicas < 0) throw new KubeError(`Deployment ${name}: invalid replicas ${String(spec.replicas)}`);
  return Array.from({ length: replicas }, (_, i) => ({ name: `${name}-pod-${i}`, template: obj(spec.template) }));
}

/** The names of the pods the YAML describes (what `kube down` removes). */
export function kubePodNames(docs: readonly Obj[]): string[] {
  return docs.flatMap((d) => podsOf(d).map((p) => p.name));
}

/** Reads the named Podman secret as a Kubernetes Secret (Podman 4.3 keeps them so for secretKeyRef). */
async function secretValues(store: Store, name: string): Promise<Record<string, string> | undefined> {
  let data: Buffer;
  try {
    data = await readSecretData(store, findSecret(store, name));
  } catch {
    return undefined;
  }
  let doc: unknown;
  try {
    doc = parseAllDocuments(data.toString('utf8'))[0]?.toJS();
  } catch {
    doc = undefined;
  }
  if (!isObj(doc) || (!isObj(doc.data) && !isObj(doc.stringData))) throw new KubeError(`secret ${name} is not a Kubernetes Secret (a YAML or JSON object with data or stringData)`);
  const decoded = Object.fromEntries(Object.entries(textMap(doc.data)).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
  return { ...decoded, ...textMap(doc.stringData) };
}

const RESTART: Record<string, string> = { Always: 'always', OnFailure: 'on-failure', Never: 'no' };

const PULL: Record<string, PullPolicy> = { always: 'always', ifnotpresent: 'missing', never: 'never' };

/**
 * Kubernetes quantities (64Mi, 1G, 500m, 1.5, 2e3) as numbers: bytes for memory, cores for CPU.
 */
export function parseQuantity(v: string, what: string): number {
  const m = /^([0-9.]+)(?:([eE][-+]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E))?$/.exec(v.trim());
  if (!m || Number.isNaN(Number(m[1]))) throw new KubeError(`invalid ${what} quantity "${v}"`);
  const base = Number(m[1]);
  if (m[2]) return base * 10 ** Number(m[2].slice(1));
  const unit = m[3] ?? '';
  const binary = ['Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'].indexOf(unit);
  if (binary >= 0) return base * 1024 ** (binary + 1);
  if (unit === 'm') return base / 1000;
  const decimal = ['k', 'M', 'G', 'T', 'P', 'E'].indexOf(unit);
  return decimal >= 0 ? base * 1000 ** (decimal + 1) : base;
}

type PodVolume =
  | { kind: 'bind'; source: string }
  | { kind: 'volume'; name: string }
  | { kind: 'emptyDir'; memory: boolean }
  | { kind: 'configMap'; files: Record<string, string>; mode: number };

/** A configMap volume: a file per key (or per item, at its path), with defaultMode. */
function configMapVolume(name: string, cm: Obj, configMaps: ReadonlyMap<string, Record<string, string>>): PodVolume {
  const source = text(cm.name) ?? '';
  const data = configMaps.get(source);
  if (!data && cm.optional !== true) throw new KubeError(`failed to create volume "${name}": no such ConfigMap "${source}"`);
  const items = arr(cm.items).map(obj);
  const files = items.length
    ? Object.fromEntries(items.flatMap((i) => (data?.[text(i.key) ?? ''] === undefined ? [] : [[text(i.path) ?? text(i.key)!, data[text(i.key)!]!]])))
    : { ...data };
  for (const path of Object.keys(files)) {
    if (path.startsWith('/') || path.split('/').includes('..')) throw new KubeError(`failed to create volume "${name}": invalid item path "${path}"`);
  }
  return { kind: 'configMap', files, mode: cm.defaultMode === undefined ? 0o644 : Number(cm.defaultMode) };
}

/** A hostPath volume: checked, or made, as its type says (Podman's messages). */
function hostPathVolume(name: string, hp: Obj): PodVolume {
  const path = text(hp.path) ?? '';
  const type = text(hp.type) ?? '';
  // Without a slash the path names a volume, as Podman reads it.
  if (!path.includes('/')) return { kind: 'volume', name: path };
  const fail = (why: string): never => {
    throw new KubeError(`failed to create volume "${name}": in parsing HostPath in YAML: ${why}`);
  };
  const stat = (): ReturnType<typeof statSync> | undefined => statSync(path, { throwIfNoEntry: false });
  switch (type) {
    case '':
      break;
    case 'DirectoryOrCreate':
      if (!stat()) mkdirSync(path, { recursive: true, mode: 0o755 });
      if (!stat()?.isDirectory()) fail(`checking path "${path}": path is not a directory`);
      break;
    case 'FileOrCreate':
      if (!stat()) writeFileSync(path, '', { mode: 0o644 });
      if (!stat()?.isFile()) fail(`checking path "${path}": path is not a file`);
      break;
    case 'Directory':
    case 'File':
    case 'Socket':
    case 'CharDevice':
    case 'BlockDevice': {
      const s = stat() ?? fail(`stat ${path}: no such file or directory`);
      const ok = { Directory: s.isDirectory(), File: s.isFile(), Socket: s.isSocket(), CharDevice: s.isCharacterDevice(), BlockDevice: s.isBlockDevice() }[type];
      if (!ok) fail(`checking path "${path}": path is not a ${type.replace(/[A-Z]/g, (c, i: number) => (i ? ' ' : '') + c.toLowerCase())}`);
      break;
    }
    default:
      fail(`invalid HostPath type ${type}`);
  }
  return { kind: 'bind', source: path };
}

function podVolumes(spec: Obj, configMaps: ReadonlyMap<string, Record<string, string>>): Map<string, PodVolume> {
  const out = new Map<string, PodVolume>();
  for (const v of arr(spec.volumes).map(obj)) {
    const name = text(v.name) ?? '';
    if (isObj(v.hostPath)) out.set(name, hostPathVolume(name, v.hostPath));
    else if (isObj(v.persistentVolumeClaim)) out.set(name, { kind: 'volume', name: text(v.persistentVolumeClaim.claimName) ?? '' });
    else if (isObj(v.emptyDir)) out.set(name, { kind: 'emptyDir', memory: v.emptyDir.medium === 'Memory' });
    else if (isObj(v.configMap)) out.set(name, configMapVolume(name, v.configMap, configMaps));
    else throw new KubeError(`failed to create volume "${name}": HostPath, ConfigMap, EmptyDir, and PersistentVolumeClaim are currently the only supported VolumeSource`);
  }
  return out;
}

interface PodContext {
  name: string;
  spec: Obj;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  volumes: Map<string, PodVolume>;
  configMaps: Map<string, Record<string, string>>;
  store: Store;
  publish: string[];
}

/** A configMap's data (undefined for an optional one that is missing). */
function configMap(ctx: PodContext, name: string, optional: boolean, what: string): Record<string, string> | undefined {
  const cm = ctx.configMaps.get(name);
  if (!cm && !optional) throw new KubeError(`${what}: configmap ${name} not found`);
  return cm;
}

async function secretMap(ctx: PodContext, name: string, optional: boolean, what: string): Promise<Record<string, string> | undefined> {
  const s = await secretValues(ctx.store, name);
  if (!s && !optional) throw new KubeError(`${what}: secret ${name} not found`);
  return s;
}

/** env and envFrom as KEY=VALUE, from values, ConfigMaps of the YAML, and Kubernetes Secrets kept as Podman secrets. */
async function containerEnv(ctx: PodContext, c: Obj): Promise<string[]> {
  const env: string[] = [];
  for (const from of arr(c.envFrom).map(obj)) {
    const prefix = text(from.prefix) ?? '';
    const ref = isObj(from.configMapRef) ? from.configMapRef : isObj(from.secretRef) ? from.secretRef : undefined;
    if (!ref) continue;
    const name = text(ref.name) ?? '';
    const what = `cannot set env from ${name}`;
    const values = ref === from.configMapRef ? configMap(ctx, name, ref.optional === true, what) : await secretMap(ctx, name, ref.optional === true, what);
    env.push(...pairs(values ?? {}).map((p) => prefix + p));
  }
  for (const e of arr(c.env).map(obj)) {
    const name = text(e.name);
    if (!name) continue;
    const valueFrom = obj(e.valueFrom);
    const keyRef = isObj(valueFrom.configMapKeyRef) ? valueFrom.configMapKeyRef : isObj(valueFrom.secretKeyRef) ? valueFrom.secretKeyRef : undefined;
    if (!keyRef) {
      env.push(`${name}=${text(e.value) ?? ''}`);
      continue;
    }
    const source = text(keyRef.name) ?? '';
    const key = text(keyRef.key) ?? '';
    const optional = keyRef.optional === true;
    const what = `cannot set env ${name}`;
    const values = keyRef === valueFrom.configMapKeyRef ? configMap(ctx, source, optional, what) : await secretMap(ctx, source, optional, what);
    const value = values?.[key];
    if (value === undefined && values && !optional) throw new KubeError(`${what}: key ${key} not found in ${source}`);
    if (value !== undefined) env.push(`${name}=${value}`);
  }
  return env;
}

/** One container of a pod's spec as create options, its hostPorts added to the pod's. */
async function containerPlan(ctx: PodContext, c: Obj, init: boolean): Promise<ContainerPlan> {
  const cname = text(c.name);
  if (!cname) throw new KubeError(`a container of pod ${ctx.name} has no name`);
  const image = text(c.image);
  if (!image) throw new KubeError(`container ${cname} of pod ${ctx.name} has no image`);
  const command = arr(c.command).map((x) => text(x) ?? '');
  const args = arr(c.args).map((x) => text(x) ?? '');
  const o: CreateOptions = {
    image, name: `${ctx.name}-${cname}`, command: args, env: await containerEnv(ctx, c),
    labels: pairs(ctx.labels), annotations: pairs(ctx.annotations),
    // Init containers run once; the others as the pod's restartPolicy says (Kubernetes' default Always).
    restart: init ? 'no' : RESTART[text(ctx.spec.restartPolicy) ?? 'Always'] ?? 'always',
  };
  // command is the entrypoint and args the command, so a command alone drops the image's CMD.
  if (command.length) o.entrypoint = JSON.stringify(command);
  if (text(c.workingDir)) o.workingDir = text(c.workingDir)!;
  if (c.stdin === true) o.interactive = true;
  if (c.tty === true) o.terminal = true;

  const expose: string[] = [];
  for (const p of arr(c.ports).map(obj)) {
    const port = Number(p.containerPort);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new KubeError(`container ${cname}: invalid containerPort ${String(p.containerPort)}`);
    const proto = (text(p.protocol) ?? 'TCP').toLowerCase();
    if (p.hostPort === undefined) expose.push(`${port}/${proto}`);
    else ctx.publish.push(`${text(p.hostIP) ? `${text(p.hostIP)}:` : ''}${text(p.hostPort)}:${port}/${proto}`);
  }
  if (expose.length) o.expose = expose;

  const volumes: string[] = [];
  const tmpfs: string[] = [];
  const anonymousMounts: ContainerPlan['anonymousMounts'] = [];
  for (const m of arr(c.volumeMounts).map(obj)) {
    const name = text(m.name) ?? '';
    const v = ctx.volumes.get(name);
    if (!v) throw new KubeError(`volume mount ${name} specified for container but not configured in volumes`);
    const destination = text(m.mountPath) ?? '';
    if (!destination.startsWith('/')) throw new KubeError(`volume mount ${name}: mountPath must be absolute`);
    const readOnly = m.readOnly === true;
    if (v.kind === 'emptyDir' && v.memory) tmpfs.push(destination);
    else if (v.kind === 'emptyDir' || v.kind === 'configMap') anonymousMounts.push({ volume: name, destination, readOnly });
    else volumes.push(`${v.kind === 'bind' ? v.source : v.name}:${destination}${readOnly ? ':ro' : ''}`);
  }
  if (volumes.length) o.volumes = volumes;
  if (tmpfs.length) o.tmpfs = tmpfs;

  // The pod's securityContext is each container's default.
  const podSec = obj(ctx.spec.securityContext);
  const sec = { ...podSec, ...obj(c.securityContext) };
  const uid = text(sec.runAsUser);
  const gid = text(sec.runAsGroup);
  if (uid !== undefined) o.user = gid === undefined ? uid : `${uid}:${gid}`;
  else if (gid !== undefined) o.user = `0:${gid}`;
  const caps = obj(sec.capabilities);
  o.capAdd = arr(caps.add).map((x) => text(x) ?? '');
  o.capDrop = arr(caps.drop).map((x) => text(x) ?? '');
  if (sec.privileged === true) o.privileged = true;
  if (sec.readOnlyRootFilesystem === true) o.readOnly = true;
  if (sec.allowPrivilegeEscalation === false) o.securityOpt = ['no-new-privileges'];

  const limits = obj(obj(c.resources).limits);
  if (text(limits.memory) !== undefined) o.memory = String(Math.round(parseQuantity(text(limits.memory)!, 'memory')));
  if (text(limits.cpu) !== undefined) o.cpus = parseQuantity(text(limits.cpu)!, 'cpu');

  const pull = text(c.imagePullPolicy);
  const pullPolicy = pull === undefined ? undefined : PULL[pull.toLowerCase()];
  if (pull !== undefined && !pullPolicy) throw new KubeError(`unsupported pull policy "${pull}"`);
  return { init, pullPolicy, options: o, anonymousMounts };
}

/** The YAML's documents as what to make. Unknown kinds are passed over, as Podman does, unless nothing is left. */
export async function planKube(store: Store, docs: readonly Obj[]): Promise<KubePlan> {
  if (!docs.some((d) => PLAYABLE.has(String(d.kind)))) throw new KubeError('YAML document does not contain any supported kube kind');
  const configMaps = new Map(docs.filter((d) => d.kind === 'ConfigMap').map((d) => [metadataName(d), textMap(d.data)] as const));
  const plan: KubePlan = { volumes: [], pods: [] };
  for (const doc of docs) {
    if (doc.kind === 'PersistentVolumeClaim') plan.volumes.push({ name: metadataName(doc), labels: textMap(obj(doc.metadata).labels) });
    for (const { name, template } of podsOf(doc)) {
      const meta = obj(template.metadata);
      const spec = obj(template.spec);
      const ctx: PodContext = {
        name, spec, labels: textMap(meta.labels), annotations: textMap(meta.annotations), volumes: podVolumes(spec, configMaps), configMaps, store, publish: [],
      };
      const containers = [
        ...(await Promise.all(arr(spec.initContainers).map((c) => containerPlan(ctx, obj(c), true)))),
        ...(await Promise.all(arr(spec.containers).map((c) => containerPlan(ctx, obj(c), false)))),
      ];
      if (!containers.some((c) => !c.init)) throw new KubeError(`pod ${name} has no containers`);
      plan.pods.push({
        name, labels: ctx.labels, hostNetwork: spec.hostNetwork === true, publish: ctx.publish, containers,
        anonymous: [...ctx.volumes].flatMap(([n, v]) => (v.kind === 'configMap' ? [{ name: n, files: v.files, mode: v.mode }] : v.kind === 'emptyDir' && !v.memory ? [{ name: n }] : [])),
        ...(text(spec.hostname) && { hostname: text(spec.hostname)! }),
      });
    }
  }
  return plan;
}

/**
 * Podman's pull policy when the YAML gives none: an image tagged latest (or untagged) is pulled
 * anew unless a local image of the localhost domain answers to it; others only when missing.
 */
export function defaultPullPolicy(store: Store, image: string): PullPolicy {
  let tag: string | undefined;
  let digest: string | undefined;
  try {
    ({ tag, digest } = parseReference(image));
  } catch {
    return 'missing';
  }
  if (digest !== undefined || (tag ?? 'latest') !== 'latest') return 'missing';
  return findImage(store, image)?.names.some((n) => n.startsWith('localhost/')) ? 'missing' : 'newer';
}

export interface PlayOptions {
  start: boolean;
  /** --replace: a claim's volume that exists already is used again rather than refused. */
  replace: boolean;
  /** --network: the pods' network (hostNetwork aside); the default when absent. */
  network: string;
  /** --publish: more ports for every pod. */
  publish: string[];
  /** The image id for a reference under a pull policy (pulling as the CLI's flags say). */
  image: (ref: string, policy: PullPolicy) => Promise<string>;
  /** The containers.conf defaults the CLI applies to every created container. */
  prepare: (o: CreateOptions) => Promise<CreateOptions>;
  createCommand: string[];
}

export interface PlayReport {
  volumes: string[];
  pods: { id: string; containers: string[] }[];
}

/**
 * Makes what the plan says: volumes, then each pod and its containers through the ordinary pod and
 * container code, then starts them (init containers first, each run once and removed). A failure
 * anywhere removes everything this play made.
 */
export async function playKube(store: Store, plan: KubePlan, o: PlayOptions): Promise<PlayReport> {
  // Every image first, so that a missing one fails before anything is made.
  const images = new Map<string, string>();
  for (const c of plan.pods.flatMap((p) => p.containers)) {
    const ref = c.options.image;
    const policy = c.pullPolicy ?? defaultPullPolicy(store, ref);
    const key = `${policy} ${ref}`;
    if (!images.has(key)) images.set(key, await o.image(ref, policy));
    c.options.imageId = images.get(key)!;
  }
  const madeVolumes: string[] = [];
  const madePods: Pod[] = [];
  const anonymous: string[] = [];
  const report: PlayReport = { volumes: [], pods: [] };
  try {
    for (const v of plan.volumes) {
      if (store.getVolume(v.name)) {
        if (!o.replace) throw new KubeError(`volume with name ${v.name} already exists: volume already exists`);
      } else {
        await createVolume(store, v.name, v.labels);
        madeVolumes.push(v.name);
      }
      report.volumes.push(v.name);
    }
    const toStart: { pod: Pod; init: string[] }[] = [];
    for (const p of plan.pods) {
      const pod = await createPod(store, {
        name: p.name, labels: pairs(p.labels), createCommand: o.createCommand,
        // The pod's UTS namespace is named after it, and inspect says so, as Podman's kube pods are.
        hostname: p.hostname ?? p.name,
        ...(p.hostNetwork ? { network: 'host' } : { network: o.network, publish: [...p.publish, ...o.publish] }),
      });
      madePods.push(pod);
      const volumeNames = new Map<string, string>();
      for (const a of p.anonymous) {
        const v = await createAnonymousVolume(store);
        anonymous.push(v.name);
        volumeNames.set(a.name, v.name);
        if (a.files) await writeVolumeFiles(dataDir(store, v.name), a.files, a.mode ?? 0o644);
      }
      const ids: string[] = [];
      const init: string[] = [];
      for (const c of p.containers) {
        const mounts = c.anonymousMounts.map((m) => `${volumeNames.get(m.volume)!}:${m.destination}${m.readOnly ? ':ro' : ''}`);
        const made = await createContainer(store, await o.prepare({ ...c.options, pod: pod.record.id, volumes: [...(c.options.volumes ?? []), ...mounts] }));
        (c.init ? init : ids).push(made.record.id);
      }
      report.pods.push({ id: pod.record.id, containers: ids });
      toStart.push({ pod, init });
    }
    if (o.start) {
      for (const { pod, init } of toStart) {
        for (const id of init) await runInitContainer(store, id);
        await startPod(store, loadPod(store, pod.record.id));
      }
    }
    return report;
  } catch (e) {
    for (const pod of madePods.reverse()) await removePod(store, pod, { force: true, timeoutSec: 0 }).catch(() => undefined);
    for (const name of anonymous) await removeIfUnused(store, name).catch(() => false);
    for (const name of madeVolumes) await removeVolume(store, name, false, async () => undefined).catch(() => undefined);
    throw e;
  }
}

/** A configMap's files in its volume (paths checked when planned), so that the container sees them from its first start. */
async function writeVolumeFiles(dir: string, files: Record<string, string>, mode: number): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    const target = join(dir, path);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, content, { mode });
    await chmod(target, mode);
  }
}

/** An init container: run to its end (starting the pod's infra container first), then removed; a failure stops the play. */
async function runInitContainer(store: Store, id: string): Promise<void> {
  const c = await startDetached(store, id);
  const s = await waitExited(store, id);
  const code = s?.exitCode ?? -1;
  await removeContainer(store, id, { force: true, volumes: true });
  if (code !== 0) throw new KubeError(`init container ${c.record.name} exited with code ${code}`);
}

/** `kube down` and `kube play --replace`: the pods of these names, all of which must exist, stopped and removed. */
export async function tearDown(store: Store, names: readonly string[], o: { missingOk: boolean }): Promise<{ stopped: string[]; removed: string[] }> {
  const pods = names.flatMap((n) => {
    if (o.missingOk && !store.findPod(n)) return [];
    return [loadPod(store, n)];
  });
  const stopped: string[] = [];
  const removed: string[] = [];
  for (const p of pods) {
    await stopPod(store, p);
    stopped.push(p.record.id);
  }
  for (const p of pods) {
    await removePod(store, p, { force: true, timeoutSec: 0 });
    removed.push(p.record.id);
  }
  return { stopped, removed };
}

// ---------- generate kube ----------

/** The capabilities Kubernetes (and Docker) grant by default; Podman writes adds and drops against these. */
const KUBE_DEFAULT_CAPS = [...DEFAULT_CAPABILITIES, 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_AUDIT_WRITE'];

const RESTART_KUBE: Record<string, string> = { always: 'Always', 'unless-stopped': 'Always', 'on-failure': 'OnFailure', no: 'Never' };

interface KubeVolume {
  name: string;
  hostPath?: { path: string; type: string };
  persistentVolumeClaim?: { claimName: string };
  emptyDir?: Obj;
}

function capabilities(cfg: ContainerConfig): Obj | undefined {
  const drop = cfg.capDrop.map(normalizeCapability);
  const add = cfg.capAdd.map(normalizeCapability).filter((c) => !drop.includes(c) && !KUBE_DEFAULT_CAPS.includes(c));
  const held = new Set([...DEFAULT_CAPABILITIES, ...add].filter((c) => !drop.includes(c)));
  const dropped = [...new Set([...drop.filter((c) => KUBE_DEFAULT_CAPS.includes(c)), ...KUBE_DEFAULT_CAPS.filter((c) => !held.has(c))])];
  if (drop.includes('ALL')) return { drop: ['ALL'], ...(add.length && { add }) };
  return { ...(add.length && { add }), ...(dropped.length && { drop: dropped }) };
}

/** A container as a Pod's container entry; `volumes` collects the pod's volumes as it goes. */
async function kubeContainer(store: Store, c: Container, name: string, volumes: KubeVolume[], ports: Obj[]): Promise<Obj> {
  const cfg = c.data.config;
  const img = getImage(store, cfg.imageId);
  const imgCfg = (await readImageConfig(store, img)).config ?? {};
  const out: Obj = { image: c.record.imageName ?? cfg.image, name };
  const imageEntrypoint = imgCfg.Entrypoint ?? [];
  const imageCmd = imgCfg.Cmd ?? [];
  const sameEntrypoint = JSON.stringify(cfg.entrypoint) === JSON.stringify(imageEntrypoint);
  if (!sameEntrypoint && cfg.entrypoint.length) {
    out.command = cfg.entrypoint;
    if (cfg.cmd.length) out.args = cfg.cmd;
  } else if (JSON.stringify(cfg.cmd) !== JSON.stringify(imageCmd) && cfg.cmd.length) {
    // Without an entrypoint the command stands alone; beside the image's it is the entrypoint's arguments.
    if (imageEntrypoint.length) out.args = cfg.cmd;
    else out.command = cfg.cmd;
  }
  const imageEnv = new Set(imgCfg.Env ?? []);
  const env = cfg.env.filter((e) => !imageEnv.has(e) && !/^(PATH|TERM|container|HOSTNAME|HOME)=/.test(e)).map((e) => {
    const eq = e.indexOf('=');
    return { name: e.slice(0, eq), value: e.slice(eq + 1) };
  });
  if (env.length) out.env = env;
  if (ports.length) out.ports = ports;
  const limits: Obj = {};
  if (cfg.resources.cpus !== undefined) limits.cpu = `${Math.round(cfg.resources.cpus * 1000)}m`;
  if (cfg.resources.memory !== undefined) limits.memory = cfg.resources.memory % 1048576 === 0 ? `${cfg.resources.memory / 1048576}Mi` : String(cfg.resources.memory);
  if (Object.keys(limits).length) out.resources = { limits };
  const sec: Obj = {};
  if (cfg.noNewPrivileges) sec.allowPrivilegeEscalation = false;
  if (cfg.privileged) sec.privileged = true;
  else sec.capabilities = capabilities(cfg);
  if (cfg.readOnly) sec.readOnlyRootFilesystem = true;
  const user = /^(\d+)(?::(\d+))?$/.exec(cfg.user);
  if (user) {
    sec.runAsGroup = Number(user[2] ?? 0);
    sec.runAsUser = Number(user[1]);
  }
  out.securityContext = sec;
  if (cfg.interactive) out.stdin = true;
  if (cfg.terminal) out.tty = true;
  const mounts: Obj[] = [];
  for (const m of cfg.mounts.filter((x) => x.type === 'bind')) {
    const vname = `${m.source.replace(/\//g, '-').replace(/^-+|-+$/g, '')}-host-${volumes.filter((v) => v.hostPath).length}`;
    const st = statSync(m.source, { throwIfNoEntry: false });
    volumes.push({ name: vname, hostPath: { path: m.source, type: st?.isFile() ? 'File' : st?.isDirectory() ? 'Directory' : 'DirectoryOrCreate' } });
    mounts.push({ mountPath: m.destination, name: vname, ...((m.options ?? []).includes('ro') && { readOnly: true }) });
  }
  for (const v of volumesOf(cfg)) {
    // An anonymous volume (a played emptyDir among them) is one again when played back, not a claim of its random name.
    const anonymous = store.getVolume(v.name) && findVolume(store, v.name).data.anonymous;
    const vname = anonymous ? `empty-dir-${v.name.slice(0, 12)}` : `${v.name}-pvc`;
    if (!volumes.some((x) => x.name === vname)) volumes.push(anonymous ? { name: vname, emptyDir: {} } : { name: vname, persistentVolumeClaim: { claimName: v.name } });
    mounts.push({ mountPath: v.destination, name: vname, ...(v.options.includes('ro') && { readOnly: true }) });
  }
  if (mounts.length) out.volumeMounts = mounts;
  if (cfg.workingDir !== '/' && cfg.workingDir !== (imgCfg.WorkingDir ?? '')) out.workingDir = cfg.workingDir;
  return out;
}

/** The container's published ports as Kubernetes ports (hostPort beside containerPort). */
function publishedPorts(cfg: ContainerConfig | undefined): Obj[] {
  return (cfg?.ports ?? []).map((p) => ({
    containerPort: p.containerPort, ...(p.hostIp && p.hostIp !== '0.0.0.0' && { hostIP: p.hostIp }), hostPort: p.hostPort, ...(p.protocol !== 'tcp' && { protocol: p.protocol.toUpperCase() }),
  }));
}

interface KubeDoc {
  pod: Obj;
  ports: Obj[];
  labels: Record<string, string>;
  name: string;
  hasVolumes: boolean;
}

/** User annotations, keyed as Podman writes them: KEY/CONTAINER. */
function annotationsOf(members: readonly { name: string; cfg: ContainerConfig }[]): Record<string, string> {
  return Object.fromEntries(members.flatMap((m) => Object.entries(m.cfg.annotations).filter(([k]) => k !== 'run.oci.keep_original_groups').map(([k, v]) => [`${k}/${m.name}`, v])));
}

async function podDoc(store: Store, o: {
  name: string; created: string; labels: Record<string, string>; members: Container[]; portsOf: (c: Container, i: number) => Obj[];
  podMode: boolean; hostname?: string; hostNetwork: boolean;
}): Promise<KubeDoc> {
  const volumes: KubeVolume[] = [];
  const ports: Obj[] = [];
  const containers: Obj[] = [];
  for (const [i, c] of o.members.entries()) {
    const p = o.portsOf(c, i);
    ports.push(...p);
    containers.push(await kubeContainer(store, c, c.record.name, volumes, p));
  }
  const annotations = annotationsOf(o.members.map((c) => ({ name: c.record.name, cfg: c.data.config })));
  const restart = RESTART_KUBE[o.members[0]?.data.config.restart.name ?? 'always'] ?? 'Always';
  const spec: Obj = {
    automountServiceAccountToken: false, containers, enableServiceLinks: false,
    ...(o.podMode && o.hostname && { hostname: o.hostname }),
    ...(o.hostNetwork && { hostNetwork: true }),
    ...(o.podMode && restart !== 'Always' && { restartPolicy: restart }),
    ...(volumes.length && { volumes }),
  };
  const pod: Obj = {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { ...(Object.keys(annotations).length && { annotations }), creationTimestamp: o.created.replace(/\.\d+Z$/, 'Z'), labels: o.labels, name: o.name },
    spec,
    ...(o.podMode && { status: {} }),
  };
  return { pod, ports, labels: o.labels, name: o.name, hasVolumes: volumes.length > 0 };
}

/** A Service publishing the pod's ports on NodePorts (30000–32767), as `generate kube -s` writes. */
function serviceDoc(d: KubeDoc, created: string): Obj {
  return {
    apiVersion: 'v1', kind: 'Service',
    metadata: { creationTimestamp: created, labels: d.labels, name: d.name },
    spec: {
      ports: d.ports.map((p) => ({
        name: String(p.containerPort), nodePort: 30000 + Math.floor(Math.random() * 2768), port: p.containerPort, ...(p.protocol !== undefined && { protocol: p.protocol }), targetPort: p.containerPort,
      })),
      selector: d.labels, type: 'NodePort',
    },
  };
}

// YAML 1.1, as Go's encoder writes it: strings that 1.1 reads otherwise (timestamps, yes/no) are quoted.
const toYaml = (doc: Obj): string => stringify(doc, { version: '1.1', sortMapEntries: true, indentSeq: false, lineWidth: 0, aliasDuplicateObjects: false });

/**
 * `generate kube`: each pod named becomes a Pod of its containers (the infra container aside);
 * the containers named (outside pods) become one Pod, NAME-pod after the first. With `service`,
 * each Pod is preceded by a Service of its published ports.
 */
export async function generateKube(store: Store, refs: readonly string[], o: { service: boolean; version: string }): Promise<string> {
  const docs: KubeDoc[] = [];
  const loose: Container[] = [];
  for (const ref of refs) {
    if (store.findPod(ref)) {
      const pod = loadPod(store, ref);
      const all = podMembers(store, pod).map((m) => m.c);
      const infra = all.find((c) => c.data.config.infra);
      const members = all.filter((c) => !c.data.config.infra);
      const published = publishedPorts(infra?.data.config);
      // Each published port goes to the member that exposes it, else to the first.
      const owner = (port: Obj): number => Math.max(0, members.findIndex((c) => (c.data.config.expose ?? []).some((e) => e.startsWith(`${String(port.containerPort)}/`))));
      docs.push(await podDoc(store, {
        name: pod.record.name, created: pod.record.created, labels: pod.data.labels, members, podMode: true, hostname: pod.data.hostname || pod.record.name,
        hostNetwork: infra?.data.config.network === 'host', portsOf: (_c, i) => published.filter((p) => owner(p) === i),
      }));
      continue;
    }
    try {
      loose.push(loadContainer(store, ref));
    } catch {
      throw new KubeError(`name or ID "${ref}" not found`);
    }
  }
  if (loose.length) {
    const name = `${loose[0]!.record.name}-pod`;
    docs.push(await podDoc(store, {
      name, created: new Date().toISOString(), labels: { app: name }, members: loose, podMode: false, hostNetwork: loose[0]!.data.config.network === 'host',
      portsOf: (c) => publishedPorts(c.data.config),
    }));
  }
  const header = `# Save the output of this file and use kubectl create -f to import\n# it into Kubernetes.\n#\n# Created with barge-${o.version}\n`;
  const note = loose.length && docs.some((d) => d.hasVolumes)
    ? '\n# NOTE: If you generated this yaml from an unprivileged and rootless podman container on an SELinux\n# enabled system, check the podman generate kube man page for steps to follow to ensure that your pod/container\n# has the right permissions to access the volumes added.\n---\n'
    : '';
  const created = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const body = docs.flatMap((d) => [...(o.service ? [toYaml(serviceDoc(d, created))] : []), toYaml(d.pod)]).join('---\n');
  return `${header}${note}${body}`;
}
