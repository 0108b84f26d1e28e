import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { openStore, print, warn, selectedRuntime, usernsFromOptions, ExitError, type GlobalOptions } from '../context.ts';
import type { ContainerRecord } from '../../store/store.ts';
import { fromImage, type PullPolicy } from '../../primitives/from.ts';
import { platformFlags } from '../platform.ts';
import { retryFlags } from '../retry-flags.ts';
import { loadBuilder, saveBuilder } from '../../primitives/builder.ts';
import type { ConfigOptions } from '../../primitives/config.ts';
import { localImageName } from '../../image/reference.ts';
import { execInteractive } from '../../sys/exec.ts';
import { ContainerError } from '../../containers/record.ts';

type Opts = Record<string, unknown>;
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const list = (v: unknown): string[] => (Array.isArray(v) ? (v as string[]) : []);

export async function fromCmd(g: GlobalOptions, args: string[], o: Opts): Promise<void> {
  const { buildahRunSettings } = await import('../buildah-run-options.ts');
  const run = buildahRunSettings(o, 'from');
  // A bad --retry or --retry-delay fails before a container is made, not at the first pull.
  retryFlags(o);
  if (run.volumes) (await import('../../primitives/run.ts')).parseVolumes(run.volumes);
  const store = await openStore(g);
  const userns = usernsFromOptions(o);
  const pull = str(o.pull) === 'false' ? 'never' : str(o.pull) === 'true' ? 'always' : (str(o.pull) as PullPolicy | undefined);
  const platform = platformFlags(o);
  const b = await fromImage(store, args[0]!, {
    // Loaded only when an image must be pulled: the registry code is most of barge.
    puller: async (ref, want) => {
      (await import('./registry.ts')).applyRegistryFlags(o, 'pull');
      return (await import('./transfer.ts')).pullByName(store, ref, { quiet: !!o.quiet, ...(want && { platform: want }) });
    },
    ...(platform && { platform }),
    warn,
    ...(str(o.name) && { name: str(o.name)! }),
    ...(pull && { pull }),
    ...(str(o.isolation) && { isolation: str(o.isolation) === 'chroot' ? 'chroot' : 'oci' }),
    ...(userns && { userns }),
    run,
    ...(str(o.format) && { format: str(o.format) as 'oci' | 'docker' }),
  });
  if (str(o.cidfile) !== undefined) await writeFile(str(o.cidfile)!, b.container.id);
  print(b.container.name);
}

/** Buildah's copy; program.ts sends "copy SRC DST" with transport names to Skopeo's copy instead. */
export async function copyCmd(g: GlobalOptions, args: string[], o: Opts): Promise<number | void> {
  return copyOrAdd(g, args, o, false);
}

export async function addCmd(g: GlobalOptions, args: string[], o: Opts): Promise<void> {
  return copyOrAdd(g, args, o, true);
}

async function copyOrAdd(g: GlobalOptions, args: string[], o: Opts, add: boolean): Promise<void> {
  const [ctr, ...rest] = args;
  if (!rest.length) throw new Error(`${add ? 'add' : 'copy'} requires at least a container and a source`);
  const store = await openStore(g);
  const b = loadBuilder(store, ctr!);
  const srcs = rest.length > 1 ? rest.slice(0, -1) : rest;
  const dest = rest.length > 1 ? rest[rest.length - 1] : undefined;
  const { copyIntoBuilder } = await import('../../primitives/copy.ts');
  const contextDir = str(o.contextdir);
  const ignoreFile = str(o.ignorefile);
  if (ignoreFile !== undefined && contextDir === undefined) throw new ExitError('--ignorefile option requires that you specify a context dir using --contextdir', 125);
  // A context brings its .containerignore (or .dockerignore), as Buildah's copy reads it; --ignorefile replaces it.
  const { loadIgnore, makeMatcher, parseIgnore } = await import('../../containerfile/ignore.ts');
  const ignored = ignoreFile !== undefined ? makeMatcher(parseIgnore(readFileSync(ignoreFile, 'utf8')), ignoreFile) : contextDir !== undefined ? loadIgnore(contextDir, null) : undefined;
  await copyIntoBuilder(store, b, srcs, dest, {
    add,
    ...(str(o.chown) && { chown: str(o.chown)! }),
    ...(str(o.chmod) && { chmod: str(o.chmod)! }),
    ...(str(o.from) && { from: str(o.from)! }),
    ...(contextDir !== undefined && { contextDir }),
    ...(ignored && { ignored: { skip: ignored.skip, file: ignoreFile ?? ignored.file } }),
    // BUILDAH_HISTORY=true turns it on when the flag is not given.
    addHistory: o.addHistory === undefined ? process.env.BUILDAH_HISTORY === 'true' : o.addHistory === true,
  });
}

/**
 * The options of barge's run that are Podman's alone: Buildah's run does not have them, so a
 * working container's run refuses them rather than run without what was asked for.
 */
export const PODMAN_RUN_ONLY = [
  'name', 'interactive', 'rm', 'envFile', 'workdir', 'entrypoint', 'tmpfs', 'readOnly', 'readOnlyTmpfs', 'label', 'stopSignal',
  'stopTimeout', 'logDriver', 'pidsLimit', 'memory', 'cpus', 'ulimit', 'securityOpt', 'privileged', 'restart', 'cidfile', 'replace',
  'conmonPidfile', 'init', 'initPath', 'addHost', 'groupAdd', 'shmSize', 'device', 'detach', 'sigProxy', 'uidmap', 'gidmap',
  'pull', 'platform', 'arch', 'os', 'variant', 'tlsVerify', 'authfile', 'quiet', 'disableContentTrust', 'imageVolume', 'unsetenv',
  'unsetenvAll', 'envHost', 'envMerge', 'httpProxy', 'labelFile', 'annotation', 'expose', 'publish', 'publishAll', 'tz', 'umask', 'passwd', 'passwdEntry',
  'hostuser', 'sysctl', 'oomScoreAdj', 'personality', 'pidfile', 'preserveFds', 'rmi', 'timeout', 'attach', 'detachKeys', 'sdnotify',
  'systemd', 'seccompPolicy', 'secret', 'ip', 'macAddress', 'networkAlias', 'healthCmd', 'healthInterval', 'healthRetries', 'healthStartPeriod', 'healthTimeout', 'healthOnFailure', 'pod', 'podIdFile',
] as const;

/** The options of barge's run that are Buildah's alone (for a working container's run). */
export const BUILDAH_RUN_ONLY = ['pid', 'ipc', 'uts', 'cgroupns', 'runtimeFlag', 'contextdir'] as const;

/**
 * The options a working container's run takes too (`--no-pivot` and `--no-hosts` are pivot and hosts;
 * --userns is barge's own addition there).
 */
export const RUN_SHARED = ['user', 'env', 'volume', 'mount', 'network', 'net', 'capAdd', 'capDrop', 'tty', 'hostname', 'workingdir', 'isolation', 'terminal', 'hosts', 'pivot', 'userns'] as const;

const flagName = (key: string): string => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

export async function runCmd(g: GlobalOptions, args: string[], o: Opts): Promise<number> {
  // Buildah's `run CONTAINER CMD` when the operand is a working container, else Podman's `run IMAGE [CMD]`.
  const operand = args[0] ? (await openStore(g)).findContainer(args[0]) : undefined;
  if (!operand || operand.kind !== 'builder') {
    const buildahOnly = [...BUILDAH_RUN_ONLY.filter((k) => o[k] !== undefined).map(flagName), ...(o.pivot === false ? ['--no-pivot'] : [])];
    if (buildahOnly.length) throw new ContainerError(`${buildahOnly[0]} is an option of buildah run (of a working container), not of podman run: "${args[0] ?? ''}" is not a working container`);
    return (await import('./containers.ts')).runContainerCmd(g, args, o);
  }
  const podmanOnly = [...PODMAN_RUN_ONLY.filter((k) => o[k] !== undefined).map(flagName), ...(o.healthcheck === false ? ['--no-healthcheck'] : [])];
  if (podmanOnly.length) {
    throw new ContainerError(`${podmanOnly[0]!} is not an option of buildah run: "${operand.name}" is a working container (podman run takes it, for an image)`);
  }
  const runtime = await selectedRuntime(g);
  const [ctr, ...rest] = args;
  const argv = dropDashes(rest);
  const store = await openStore(g);
  const b = loadBuilder(store, ctr!);
  const network = str(o.network) ?? str(o.net);
  const { runInBuilder } = await import('../../primitives/run.ts');
  const { namespaceSettings, parseNetwork } = await import('../buildah-run-options.ts');
  const userns = usernsFromOptions(o);
  const isolation = str(o.isolation);
  return runInBuilder(store, b, argv, {
    ...(network && parseNetwork(network)),
    ...namespaceSettings(o),
    ...(o.pivot === false && { noPivot: true }),
    ...(list(o.runtimeFlag).length && { runtimeFlags: list(o.runtimeFlag) }),
    ...(str(o.contextdir) && { contextDir: str(o.contextdir)! }),
    ...(userns && { userns }),
    // "rootless" is Buildah's name for the OCI runtime run rootless, which is what barge does anyway.
    ...(isolation && { isolation: isolation === 'chroot' ? 'chroot' : 'oci' }),
    ...(str(o.user) && { user: str(o.user)! }),
    ...(str(o.workingdir) && { workingDir: str(o.workingdir)! }),
    env: list(o.env),
    volumes: list(o.volume),
    mounts: list(o.mount),
    capAdd: list(o.capAdd),
    capDrop: list(o.capDrop),
    terminal: !!(o.tty || o.terminal),
    noHosts: o.hosts === false,
    ...(str(o.hostname) && { hostname: str(o.hostname)! }),
    ...(runtime && { runtime }),
  });
}

export async function mountCmd(g: GlobalOptions, args: string[], o: Opts): Promise<void> {
  const { outsideUnshareSession } = await import('../../sys/userns.ts');
  // Rootless mounts live in barge's namespace: the path printed would mean nothing to the shell outside.
  if (args.length && outsideUnshareSession()) {
    throw new Error('cannot mount in rootless mode outside its namespace: run it in a `barge unshare` session, e.g. barge unshare sh -c \'mnt=$(barge mount CTR); ...\'');
  }
  const store = await openStore(g);
  if (!args.length) {
    const rows = store.listContainers('builder').filter((c) => store.isMounted(c));
    if (o.json) print(JSON.stringify(rows.map((c) => ({ container: c.name, mountPoint: c.mountpoint })), null, 4));
    else for (const c of rows) print(`${c.name} ${c.mountpoint}`);
    return;
  }
  const out: { container: string; mountPoint: string }[] = [];
  for (const ref of args) {
    const c = store.getContainer(ref);
    const mp = await store.withContainerLock(c, () => store.mountContainer(c));
    out.push({ container: c.name, mountPoint: mp });
  }
  if (o.json) print(JSON.stringify(out, null, 4));
  else if (out.length === 1) print(out[0]!.mountPoint);
  else for (const m of out) print(`${m.container} ${m.mountPoint}`);
}

export async function umountCmd(g: GlobalOptions, args: string[], o: Opts): Promise<void> {
  const store = await openStore(g);
  const targets = o.all ? store.listContainers().filter((c) => store.isMounted(c)) : args.map((a) => store.getContainer(a));
  if (!o.all && !args.length) throw new Error('at least one container name or id must be specified');
  for (const c of targets) {
    await store.withContainerLock(c, () => store.unmountContainer(c));
    print(c.id);
  }
}

export async function configCmd(g: GlobalOptions, args: string[], o: Opts): Promise<void> {
  const store = await openStore(g);
  const b = loadBuilder(store, args[0]!);
  const opts: ConfigOptions = {};
  // Commander's camel-cased option names are ConfigOptions' names.
  const single = [
    'arch', 'author', 'cmd', 'comment', 'createdBy', 'domainname', 'entrypoint', 'healthcheck', 'healthcheckInterval',
    'healthcheckRetries', 'healthcheckStartPeriod', 'healthcheckStartInterval', 'healthcheckTimeout', 'historyComment',
    'hostname', 'os', 'osVersion', 'shell', 'stopSignal', 'user', 'variant', 'workingdir',
  ] as const;
  const target = opts as Record<string, unknown>;
  for (const k of single) if (typeof o[k] === 'string') target[k] = o[k];
  for (const k of ['annotation', 'env', 'label', 'onbuild', 'port', 'volume', 'osFeature'] as const) if (o[k]) target[k] = list(o[k]);
  if (o.unsetlabel) opts.unsetLabel = list(o.unsetlabel);
  await store.withContainerLock(b.container, async () => {
    const { applyConfig } = await import('../../primitives/config.ts');
    b.state.config = applyConfig(b.state.config, opts, { warn });
    saveBuilder(store, b);
  });
}

export async function commitCmd(g: GlobalOptions, args: string[], o: Opts): Promise<void> {
  const store = await openStore(g);
  const [ctr, dest] = args;
  const pc = await import('../../containers/commit.ts');
  // A container of run/create is committed as Podman does; a working container as Buildah does.
  const pod = store.findContainer(ctr!)?.kind === 'container';
  const b = pod ? await pc.builderOfContainer(store, ctr!, !!o.includeVolumes) : loadBuilder(store, ctr!);
  pc.applyCommitOptions(b, { author: str(o.author), message: str(o.message), changes: (o.change as string[] | undefined) ?? [], unsetEnv: (o.unsetenv as string[] | undefined) ?? [] });
  const transportDest = dest && /^(oci|oci-archive|docker-archive|dir|docker):/.test(dest) ? dest : undefined;
  const names = dest && !transportDest ? [localImageName(dest.replace(/^containers-storage:/, ''))] : [];
  if (str(o.manifest) !== undefined && transportDest) throw new Error('--manifest: the image must be committed into local storage to join a list (commit without a transport, then manifest push)');
  if (o.signBy !== undefined && !transportDest) throw new Error('--sign-by: barge\'s local storage keeps no signatures; commit to a TRANSPORT:DESTINATION (docker://…, dir:…) or sign when pushing (push --sign-by)');
  const { signingFlags } = await import('./transfer.ts');
  const signing = signingFlags(o);
  const ts = str(o.timestamp);
  if (ts !== undefined && !/^\d+$/.test(ts)) throw new Error(`invalid --timestamp "${ts}": expected seconds since the epoch`);
  const { commitBuilder } = await import('../../primitives/commit.ts');
  const commit = (): ReturnType<typeof commitBuilder> => commitBuilder(store, b, {
    format: str(o.format) === 'docker' ? 'docker' : 'oci',
    names,
    squash: !!o.squash,
    // A Podman-style container is removed as such (below), with its runtime files.
    rm: !!o.rm && !transportDest && !pod,
    ...(ts !== undefined && { timestamp: Number(ts) }),
    omitHistory: !!o.omitHistory,
  });
  // What local storage held before, so that an image staged only for the push is not left there.
  const before = transportDest ? new Set(store.listImages().map((i) => i.id)) : undefined;
  const res = pod ? await pc.withPaused(store, b.container.id, !!o.pause, commit) : await commit();
  if (pod) pc.recordCommit(store, b.container.id);
  if (str(o.manifest) !== undefined) {
    await (await import('./manifest.ts')).addImageToList(store, str(o.manifest)!, res.imageId);
  }
  if (transportDest) {
    (await import('./registry.ts')).applyRegistryFlags(o, 'push');
    const { pushImage } = await import('./transfer.ts');
    try {
      await pushImage(store, res.imageId, transportDest, { quiet: !!o.quiet, signing });
    } finally {
      // The image went to the destination (or nowhere), not into local storage, where it was only staged.
      if (!before?.has(res.imageId)) await store.deleteImage(res.imageId);
    }
  } else if (!o.quiet) {
    const { storedImageReport } = await import('../progress.ts');
    process.stderr.write(storedImageReport([res.layerDigest], `sha256:${res.imageId}`));
  }
  if (o.rm && pod) {
    const { removeContainer } = await import('../../containers/lifecycle.ts');
    await removeContainer(store, b.container.id, { force: false });
  } else if (o.rm && transportDest) await store.deleteContainer(store.getContainer(b.container.id));
  if (typeof o.iidfile === 'string') await writeFile(o.iidfile, `sha256:${res.imageId}`);
  // As Buildah: the id on stdout only for a commit into local storage without --iidfile.
  else if (!transportDest) print(res.imageId);
}

/** Buildah's `containers --filter KEY=VALUE`: id (a prefix), name (a regular expression) or ancestor (an image name or id). */
function containerFilter(spec: string | undefined): (c: ContainerRecord) => boolean {
  if (spec === undefined) return () => true;
  const i = spec.indexOf('=');
  const [key, value] = i < 0 ? [spec, ''] : [spec.slice(0, i), spec.slice(i + 1)];
  switch (key) {
    case 'id':
      return (c) => c.id.startsWith(value);
    case 'name': {
      const re = new RegExp(value);
      return (c) => re.test(c.name);
    }
    case 'ancestor':
      return (c) => (c.imageId ?? '').startsWith(value.replace(/^sha256:/, '')) || c.imageName === value || c.imageName === localImageName(value);
    default:
      throw new Error(`invalid filter "${spec}": the keys are id, name and ancestor`);
  }
}

export async function containersCmd(g: GlobalOptions, _args: string[], o: Opts): Promise<void> {
  const store = await openStore(g);
  const keep = containerFilter(str(o.filter));
  const rows = store.listContainers(o.all ? undefined : 'builder').filter(keep).map((c) => ({
    ContainerID: c.id,
    Builder: c.kind === 'builder',
    ImageID: c.imageId ?? '',
    // Buildah names the image of `from scratch` so.
    ImageName: c.imageName ?? (c.imageId ? '' : 'scratch'),
    ContainerName: c.name,
  }));
  if (o.quiet) {
    // Buildah prints whole ids here, --notruncate or not.
    for (const r of rows) print(r.ContainerID);
    return;
  }
  if (o.json) {
    const json = rows.map((r) => ({ id: r.ContainerID, builder: r.Builder, imageid: r.ImageID, imagename: r.ImageName, containername: r.ContainerName }));
    print(JSON.stringify(json, null, 4));
    return;
  }
  const format = str(o.format);
  // Buildah truncates ids only in its own table; a --format sees them whole, and Builder as "   *".
  const trunc = !o.notruncate && format === undefined;
  const display = rows.map((r) => ({
    ...r,
    ContainerID: trunc ? r.ContainerID.slice(0, 12) : r.ContainerID,
    ImageID: trunc ? r.ImageID.slice(0, 12) : r.ImageID,
    Builder: r.Builder ? (format === undefined ? '    *' : '   *') : '',
  }));
  const { formatRows } = await import('../table.ts');
  const { TemplateError } = await import('../gotemplate.ts');
  let out: string;
  try {
    out = formatRows(display, {
      ...(format !== undefined && { format }),
      defaultTable: 'table {{.ContainerID}}\t{{.Builder}}\t{{.ImageID}}\t{{.ImageName}}\t{{.ContainerName}}',
      headers: { ContainerID: 'CONTAINER ID', Builder: 'BUILDER', ImageID: 'IMAGE ID', ImageName: 'IMAGE NAME', ContainerName: 'CONTAINER NAME' },
      // Buildah's names, and no range around the text.
      name: 'image',
      prefix: 0,
      type: { struct: 'main.containerOutputParams' },
    });
  } catch (e) {
    if (e instanceof TemplateError) {
      e.message = `Template parsing error: ${e.message}`;
      // Buildah renders the list into a buffer: a failed template prints nothing of it.
      e.partialOutput = '';
    }
    throw e;
  }
  if (o.noheading && !format) process.stdout.write(out.split('\n').slice(1).join('\n'));
  else process.stdout.write(out);
}

export async function rmCmd(g: GlobalOptions, args: string[], o: Opts): Promise<number> {
  const store = await openStore(g);
  // Podman's --cidfile names containers by id files; --ignore skips those already gone.
  const fromFiles = o.cidfile !== undefined ? (await import('./containers.ts')).cidfileRefs(o) : [];
  const filters = Array.isArray(o.filter) ? (o.filter as string[]) : [];
  const time = o.time === undefined ? undefined : Number(o.time);
  if (time !== undefined && (!Number.isInteger(time) || time < 0)) throw new Error(`invalid --time "${String(o.time)}": expected seconds`);
  if (filters.length) {
    if (args.length) throw new Error('--filter takes no container names');
    const matching = (await import('./containers.ts')).containersMatching(store, filters);
    if (!matching.length) return 0;
    fromFiles.push(...matching);
  }
  if (o.latest) {
    const last = store.listContainers('container').at(-1);
    if (!last) throw new Error('no containers to act on');
    fromFiles.push(last.id);
  }
  if (!o.all && !args.length && !fromFiles.length) {
    if (o.ignore && o.cidfile !== undefined) return 0;
    throw new Error('at least one container name or id must be specified');
  }
  // --all leaves pods' infra containers to their pods (Podman refuses each, and so fails the whole command).
  const targets = o.all ? store.listContainers().filter((c) => !c.podId || !(JSON.parse(c.data) as { config?: { infra?: boolean } }).config?.infra).map((c) => c.id) : [...args, ...fromFiles];
  // As Podman: every name is looked up before anything is removed, and an unknown one (not
  // skipped by -f or -i) removes nothing. Buildah (only working containers named) removes the
  // others and fails with 125 at the end.
  const found: { ref: string; c: ContainerRecord }[] = [];
  const unknown: string[] = [];
  for (const ref of targets) {
    const c = store.findContainer(ref);
    if (c) found.push({ ref, c });
    else if (!o.force && !o.ignore) unknown.push(ref);
  }
  const buildah = found.length > 0 && found.every((f) => f.c.kind === 'builder');
  if (unknown.length && !buildah) throw new ExitError(`no container with name or ID "${unknown[0]}" found: no such container`, 1);
  let failed = unknown.length;
  for (const ref of unknown) process.stderr.write(`Error: removing container "${ref}": container not known\n`);
  let code = 125;
  for (const { ref, c } of found) {
    try {
      // Podman-style containers may be running: stop (with -f) and clean up first. Podman prints
      // the name as given, Buildah the id of a working container.
      if (c.kind === 'container') {
        await (await import('./containers.ts')).removePodContainer(store, c.id, !!o.force, !!o.volumes, time);
        print(ref);
      } else {
        await store.withContainerLock(c, () => store.deleteContainer(c));
        print(c.id);
      }
    } catch (e) {
      process.stderr.write(`Error: ${(e as Error).message}\n`);
      failed++;
      if (e instanceof ExitError) code = e.exitCode;
    }
  }
  if (targets.length) await store.collectGarbage();
  return failed ? code : 0;
}

export async function unshareCmd(g: GlobalOptions, args: string[], o: Opts): Promise<number> {
  // As root no new namespace is needed; the rootless issue makes this enter barge's user namespace.
  const store = await openStore(g);
  const env: NodeJS.ProcessEnv = { ...process.env, BARGE_ISOLATION: 'unshare' };
  for (const spec of list(o.mount)) {
    const [v, ref] = spec.includes('=') ? spec.split('=', 2) : [undefined, spec];
    const c = store.getContainer(ref!);
    // Each unshare has its own mount namespace, but all mount the same upper and work
    // directories, and overlay resets the work directory while mounting: one at a time.
    const mp = await store.withContainerLock(c, () => store.mountContainer(c));
    env[v ?? c.name] = mp;
  }
  const cmd = dropDashes(args);
  const argv = cmd.length ? cmd : [process.env.SHELL || '/bin/sh'];
  let code: number;
  try {
    code = await execInteractive(argv[0]!, argv.slice(1), { env });
  } catch (e) {
    // spawn reports a missing or unrunnable command as an error event, not as a shell's 127/126.
    const errno = (e as NodeJS.ErrnoException).code;
    // execvp reports EACCES when some PATH directory was unsearchable even if the command is nowhere:
    // as a shell does, that is "not found" unless a file of that name exists.
    if (errno === 'ENOENT' || (errno === 'EACCES' && !argv[0]!.includes('/') && !onPath(argv[0]!))) {
      throw new ExitError(`${argv[0]}: command not found`, 127);
    }
    if (errno === 'EACCES') throw new ExitError(`${argv[0]}: permission denied`, 126);
    throw e;
  }
  return code;
}

function onPath(name: string): boolean {
  return (process.env.PATH ?? '').split(':').some((d) => d !== '' && existsSync(join(d, name)));
}

/** Options pass through to the command, so a `--` separating them arrives here: drop it. */
function dropDashes(args: string[]): string[] {
  return args[0] === '--' ? args.slice(1) : args;
}
