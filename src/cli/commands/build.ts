import { closeSync, createReadStream, createWriteStream, existsSync, openSync, readFileSync, statSync } from 'node:fs';
import { syncFdWriter } from '../../sys/fd-writer.ts';
import { mkdtemp, open, realpath, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, isAbsolute, join, resolve as resolvePath } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { openStore, print, selectedRuntime, usernsFromOptions, ExitError, type GlobalOptions } from '../context.ts';
import type { PullPolicy } from '../../primitives/from.ts';
import type { Store } from '../../store/store.ts';
import type { BuildOptions, NamedContext, RemoteCache } from '../../containerfile/interpreter.ts';
import { platformFlags } from '../platform.ts';
import { retryFlags } from '../retry-flags.ts';
import { parsePlatform, platformMatches, type PlatformSpec } from '../../image/manifest.ts';
import { hostArch } from '../../primitives/builder.ts';

type Opts = Record<string, unknown>;
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const list = (v: unknown): string[] => (Array.isArray(v) ? (v as string[]) : []);

/** Reads standard input into a file. */
async function stdinToFile(file: string): Promise<void> {
  const fh = await open(file, 'w', 0o600);
  try {
    for await (const chunk of process.stdin) await fh.write(chunk as Buffer);
  } finally {
    await fh.close();
  }
}

async function isArchiveFile(path: string): Promise<boolean> {
  const { detectCompression } = await import('../../store/hashing.ts');
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(512);
    const { bytesRead } = await fh.read(buf, 0, 512, 0);
    if (detectCompression(buf.subarray(0, bytesRead)) !== 'none') return true;
    return bytesRead >= 262 && buf.subarray(257, 262).toString() === 'ustar';
  } finally {
    await fh.close();
  }
}

/** Unpacks a context tarball with the store's hardened tar reader (no entry leaves the directory). */
async function extractContext(tarball: string, dir: string): Promise<void> {
  const { detectCompression, decompressor } = await import('../../store/hashing.ts');
  const { applyTar } = await import('../../store/tar-apply.ts');
  const fh = await open(tarball, 'r');
  const head = Buffer.alloc(8);
  await fh.read(head, 0, 8, 0);
  await fh.close();
  const dec = decompressor(detectCompression(head));
  const input: Readable = dec ? createReadStream(tarball).pipe(dec) : createReadStream(tarball);
  await applyTar(input, { root: dir, whiteouts: 'none', chown: { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 } });
}

/**
 * `--ssh default|ID[=SOCKET|KEY[,KEY…]]`, as in Buildah: an agent socket per id, a bare id meaning
 * $SSH_AUTH_SOCK. Key files are loaded into a private ssh-agent (openssh-client) that `stop`
 * ends, since an agent socket is what RUN --mount=type=ssh hands to the step.
 */
async function sshSockets(specs: string[], temps: string[], stop: (() => void)[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    const id = eq < 0 ? spec : spec.slice(0, eq);
    const paths = eq < 0 ? [] : spec.slice(eq + 1).split(',').filter((p) => p !== '');
    if (!/^[A-Za-z0-9_.-]+$/.test(id)) throw new Error(`invalid --ssh "${spec}": expected default or ID[=SOCKET|KEY[,KEY...]]`);
    if (!paths.length) {
      const sock = process.env.SSH_AUTH_SOCK;
      if (!sock) throw new Error(`--ssh ${spec}: SSH_AUTH_SOCK is not set; start an ssh-agent or give a socket or key (--ssh ${id}=PATH)`);
      paths.push(sock);
    }
    for (const p of paths) if (!existsSync(p)) throw new Error(`--ssh ${spec}: ${p}: no such file or directory`);
    const sockets = paths.filter((p) => statSync(p).isSocket());
    if (sockets.length && sockets.length < paths.length) throw new Error(`invalid --ssh "${spec}": give one agent socket or key files, not both`);
    if (sockets.length > 1) throw new Error(`invalid --ssh "${spec}": one agent socket per id`);
    out.set(id, sockets.length ? resolvePath(sockets[0]!) : await keyAgent(paths, temps, stop));
  }
  return out;
}

/** `--cache-from/--cache-to REPO`: a registry repository (tags are the cache keys, so none is given). */
function cacheRepo(spec: string, flag: string): string {
  const repo = spec.replace(/^docker:\/\//, '');
  const last = repo.slice(repo.lastIndexOf('/') + 1);
  if (!repo.includes('/') || last.includes(':') || repo.includes('@') || /[A-Z\s]/.test(repo)) {
    throw new Error(`invalid ${flag} "${spec}": expected a registry repository such as registry.example.com/project/cache (no tag or digest)`);
  }
  return repo;
}

async function remoteCache(store: Store, o: Opts, from: string[], to: string[], warn: (l: string) => void): Promise<RemoteCache> {
  const { applyRegistryFlags } = await import('./registry.ts');
  const { pullImage, pushImage } = await import('./transfer.ts');
  applyRegistryFlags(o, 'push');
  return {
    from,
    to,
    async fetch(ref) {
      try {
        return await pullImage(store, `docker://${ref}`, [], { quiet: true });
      } catch (e) {
        const msg = (e as Error).message;
        // A miss is the common case; anything else (TLS, auth) is worth a line but not a failure.
        if (!/manifest unknown|not found|name unknown|404/i.test(msg)) warn(`WARN: --cache-from ${ref}: ${msg}`);
        return null;
      }
    },
    async push(imageId, ref) {
      await pushImage(store, imageId, `docker://${ref}`, { quiet: true });
    },
  };
}

/** A private ssh-agent holding the given keys; returns its socket. */
async function keyAgent(keys: string[], temps: string[], stop: (() => void)[]): Promise<string> {
  const { spawn, execFileSync } = await import('node:child_process');
  const dir = await mkdtemp(join(tmpdir(), 'barge-ssh-'));
  temps.push(dir);
  const sock = join(dir, 'agent.sock');
  // -D keeps the agent in the foreground as barge's child, so it cannot outlive a normal exit.
  const agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
  const spawned = new Promise<void>((ok, fail) => {
    agent.once('spawn', ok);
    agent.once('error', (e) => fail(new Error(`--ssh: starting ssh-agent (package openssh-client): ${e.message}`)));
  });
  await spawned;
  stop.push(() => agent.kill());
  for (let i = 0; !existsSync(sock); i++) {
    if (i >= 200 || agent.exitCode !== null) throw new Error('--ssh: ssh-agent did not create its socket');
    await new Promise((r) => setTimeout(r, 10));
  }
  try {
    execFileSync('ssh-add', ['-q', ...keys.map((k) => resolvePath(k))], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    const stderr = (e as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(`--ssh: ssh-add ${keys.join(' ')}: ${stderr || (e as Error).message}`);
  }
  return sock;
}

type Output = { type: 'local'; dest: string } | { type: 'tar'; dest: string };

/** `-o DIR`, `-o type=local,dest=DIR`, `-o type=tar,dest=FILE` (`-` is standard output), as Buildah. */
function parseOutput(spec: string): Output {
  if (!spec.includes('=')) return spec === '-' ? { type: 'tar', dest: '-' } : { type: 'local', dest: spec };
  const kv = new Map(spec.split(',').map((p) => [p.slice(0, p.indexOf('=') < 0 ? p.length : p.indexOf('=')), p.slice(p.indexOf('=') + 1)] as [string, string]));
  const type = kv.get('type');
  const dest = kv.get('dest');
  if (type !== 'local' && type !== 'tar') throw new Error(`invalid --output "${spec}": type must be local or tar`);
  if (!dest) throw new Error(`invalid --output "${spec}": dest= is required`);
  for (const k of kv.keys()) if (k !== 'type' && k !== 'dest') throw new Error(`invalid --output "${spec}": unknown key "${k}"`);
  return { type, dest };
}

/** Writes the files of an image to a directory or a tar archive, through a working container that is removed after. */
async function writeOutput(store: Store, imageId: string, out: Output): Promise<void> {
  const { fromImage } = await import('../../primitives/from.ts');
  const { tarDirectory } = await import('../../store/tar-diff.ts');
  const b = await fromImage(store, imageId, { pull: 'never' });
  try {
    const tar = tarDirectory(await store.mountContainer(b.container));
    if (out.type === 'tar') {
      // Standard output through a stream of its own: a reader that stops early (`| head`) must end
      // this pipeline, not barge (the EPIPE handler of process.stdout exits at once), so that the
      // container below is still removed.
      const sink = out.dest === '-' ? createWriteStream('', { fd: 1, autoClose: false }) : createWriteStream(out.dest);
      await pipeline(tar, sink).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'EPIPE') throw e;
      });
    } else {
      const { mkdir } = await import('node:fs/promises');
      const { applyTar } = await import('../../store/tar-apply.ts');
      await mkdir(out.dest, { recursive: true });
      await applyTar(tar, { root: out.dest, whiteouts: 'none', chown: { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 } });
    }
  } finally {
    await store.withContainerLock(b.container, () => store.deleteContainer(b.container));
  }
}

/**
 * `--layers`, `--logsplit` and `--pull` take optional values (`--layers=false`, `--pull=never`).
 * Commander lets them swallow the next word, so a value that is not one of theirs was the context.
 */
function reclaimContext(o: Opts, key: string, values: string[], args: string[], expected: string): void {
  const v = o[key];
  if (typeof v !== 'string' || values.includes(v)) return;
  if (args.length) throw new Error(`invalid --${key} value "${v}": expected ${expected}`);
  args.push(v);
  o[key] = true;
}

/**
 * `--build-context NAME=VALUE`, as Buildah reads VALUE: `docker-image://`, `container-image://`
 * or `docker://` and an image, `oci-layout://DIR[:TAG]` (an image in an OCI layout),
 * `http(s)://` and a file or tarball (fetched now, a tarball unpacked), else a directory.
 */
async function namedContexts(specs: string[], temps: string[]): Promise<Map<string, NamedContext>> {
  const { loadIgnore } = await import('../../containerfile/ignore.ts');
  const { parseGitSource, cloneGit } = await import('../../containerfile/git-source.ts');
  const out = new Map<string, NamedContext>();
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    const name = spec.slice(0, eq);
    const value = spec.slice(eq + 1);
    if (eq <= 0 || value === '') throw new Error(`invalid --build-context "${spec}": accepts value in the form of name=value`);
    const image = /^(docker-image|container-image|docker):\/\/(.*)$/.exec(value);
    const layout = /^oci-layout:\/\/(.*)$/.exec(value);
    if (image || layout) {
      const ref = image ? image[2]! : `oci:${resolvePath(layout![1]!)}`;
      if (ref === '' || ref === 'oci:') throw new Error(`invalid --build-context "${spec}": no image named`);
      out.set(name, { kind: 'image', ref });
      continue;
    }
    let dir: string;
    const git = parseGitSource(value);
    if (git && !existsSync(value)) {
      const clone = await mkdtemp(join(tmpdir(), 'barge-context-'));
      temps.push(clone);
      dir = await realpath((await cloneGit(git, clone, true)).dir);
    } else if (/^https?:\/\//.test(value)) {
      dir = await mkdtemp(join(tmpdir(), 'barge-context-'));
      temps.push(dir);
      await fetchContext(spec, value, dir, temps);
    } else {
      if (!existsSync(value)) throw new Error(`--build-context ${spec}: no such file or directory`);
      if (!statSync(value).isDirectory()) throw new Error(`--build-context ${spec}: not a directory (give a directory, an image, or a URL)`);
      // Its real path: COPY refuses what resolves outside it, which a symlinked path would upset.
      dir = await realpath(value);
    }
    // Its own ignore file, as Buildah reads one there; the main context's does not apply.
    out.set(name, { kind: 'dir', path: dir, ignore: loadIgnore(dir, null) });
  }
  return out;
}

/** A URL context: a tarball is unpacked into DIR; any other file lands there under its URL's name. */
async function fetchContext(spec: string, url: string, dir: string, temps: string[]): Promise<void> {
  const file = await download(url, `${dir}.download`, temps, `--build-context ${spec}`);
  if (await isArchiveFile(file)) await extractContext(file, dir);
  else await rename(file, join(dir, basename(new URL(url).pathname) || 'index.html'));
}

/** Fetches URL into FILE (listed in temps for removal); errors start with `label`. */
async function download(url: string, file: string, temps: string[], label: string): Promise<string> {
  let res: Response;
  try {
    res = await fetch(url, { redirect: 'follow' });
  } catch (e) {
    throw new Error(`${label}: ${(e as Error & { cause?: Error }).cause?.message ?? (e as Error).message}`);
  }
  if (!res.ok || !res.body) throw new Error(`${label}: HTTP ${res.status}`);
  temps.push(file);
  await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>), createWriteStream(file, { mode: 0o600 }));
  return file;
}

/** Whether a build context that is no local path names a git repository or an http(s) URL. */
async function isRemoteContext(context: string): Promise<boolean> {
  const { parseGitSource } = await import('../../containerfile/git-source.ts');
  return /^https?:\/\//.test(context) || parseGitSource(context) !== null;
}

/**
 * `build URL`, as Buildah: a git repository is cloned (its `#ref:subdir` picks what), a tarball
 * unpacked, and any other file is the Containerfile, with the empty DIR as its context.
 */
async function fetchRemote(url: string, dir: string, temps: string[]): Promise<{ dir: string; containerfile: string | null }> {
  const { parseGitSource, cloneGit } = await import('../../containerfile/git-source.ts');
  const git = parseGitSource(url);
  if (git) return { dir: await realpath((await cloneGit(git, dir, true)).dir), containerfile: null };
  const file = await download(url, `${dir}.download`, temps, `build context ${url}`);
  if (await isArchiveFile(file)) {
    await extractContext(file, dir).catch((e: Error) => {
      throw new Error(`build context ${url}: ${e.message}`);
    });
    return { dir, containerfile: null };
  }
  return { dir, containerfile: readFileSync(file, 'utf8') };
}

/**
 * Sends what barge writes to process.stdout and process.stderr to FD until the returned function
 * is called. Writes are synchronous, so they keep their order with the output of RUN steps,
 * which write to FD themselves.
 */
function redirectOutput(fd: number): () => void {
  const sink = syncFdWriter(fd);
  const saved = (['stdout', 'stderr'] as const).map((k) => [k, Object.getOwnPropertyDescriptor(process, k)!] as const);
  for (const [k] of saved) Object.defineProperty(process, k, { configurable: true, get: () => sink });
  return () => {
    for (const [k, d] of saved) Object.defineProperty(process, k, d);
  };
}

/**
 * --all-platforms: the platforms every base image offers, as Buildah finds them: each base must
 * name a multi-platform image (a registry's list or index, else a local manifest list).
 */
async function commonPlatforms(store: Store, bases: string[], o: Opts): Promise<PlatformSpec[]> {
  if (!bases.length) throw new Error('--all-platforms: the build uses no base image but scratch, so there are no platforms to build for');
  const same = (a: PlatformSpec, b: PlatformSpec): boolean => platformMatches(a, b) && platformMatches(b, a);
  let common: PlatformSpec[] | null = null;
  for (const base of bases) {
    const offered = await offeredPlatforms(store, base, o);
    common = common === null ? offered.filter((p, i) => offered.findIndex((q) => same(p, q)) === i) : common.filter((p) => offered.some((q) => same(p, q)));
  }
  if (!common!.length) throw new Error(`--all-platforms: the base images (${bases.join(', ')}) have no platforms in common`);
  return common!;
}

/** The platforms of the images a multi-platform base names (entries of an unknown platform, as attestations have, left out). */
async function offeredPlatforms(store: Store, base: string, o: Opts): Promise<PlatformSpec[]> {
  const { parseManifest } = await import('../../image/manifest.ts');
  const { applyRegistryFlags, pullCandidates } = await import('./registry.ts');
  const { openSource } = await import('../../image/transports/index.ts');
  applyRegistryFlags(o, 'pull');
  const platformsOf = (bytes: Buffer, mediaType?: string): PlatformSpec[] | null => {
    const parsed = parseManifest(bytes, mediaType);
    if (parsed.kind !== 'index') return null;
    return parsed.index.manifests.flatMap((d) => {
      const p = d.platform;
      if (!p?.os || !p.architecture || p.os === 'unknown' || p.architecture === 'unknown') return [];
      return [{ os: p.os, architecture: p.architecture, ...(p.variant && { variant: p.variant }) }];
    });
  };
  const errors: string[] = [];
  let candidates: { ref: string; name: string }[] = [];
  try {
    candidates = pullCandidates(base) ?? [{ ref: base, name: base }];
  } catch (e) {
    errors.push((e as Error).message);
  }
  for (const c of candidates) {
    try {
      const src = await openSource(c.ref);
      try {
        const top = await src.getManifest();
        const found = platformsOf(top.bytes, top.mediaType);
        if (found) return found;
        errors.push(`${c.name}: not a manifest list`);
      } finally {
        await src.close();
      }
    } catch (e) {
      errors.push(`${c.name}: ${(e as Error).message}`);
    }
  }
  // Offline, a manifest list kept in local storage answers too.
  const { findImage } = await import('../../image/local-images.ts');
  const { isListRecord } = await import('../../store/store.ts');
  const local = findImage(store, base);
  if (local && isListRecord(local)) return platformsOf(await store.imageManifest(local), local.manifestMediaType)!;
  throw new Error(`--all-platforms: base image name "${base}" didn't resolve to a manifest list: ${errors.join('; ')}`);
}

export async function buildCmd(g: GlobalOptions, args: string[], o: Opts): Promise<number> {
  if (args.length > 1) throw new Error('accepts at most one argument: the build context');
  args = [...args];
  reclaimContext(o, 'layers', ['true', 'false'], args, 'true or false');
  reclaimContext(o, 'logsplit', ['true', 'false'], args, 'true or false');
  reclaimContext(o, 'pull', ['true', 'false', 'always', 'missing', 'never', 'newer', 'ifmissing', 'ifnewer'], args, 'always, missing, never or newer');
  const logfile = str(o.logfile);
  const logsplit = o.logsplit === true || o.logsplit === 'true';
  if (logsplit && logfile === undefined) throw new Error('cannot use --logsplit without --logfile');
  // A bad --retry or --retry-delay fails before anything is built, not at the first pull.
  retryFlags(o);
  const temps: string[] = [];
  const stop: (() => void)[] = [];
  try {
    let context = args[0] ?? '.';
    // A Containerfile that is not a file of the context: standard input, or a URL that named one.
    let inline: { text: string; name: string } | null = null;
    // A context fetched from a URL is untrusted: its Containerfile is looked up inside it.
    let remote = false;
    if (!existsSync(context) && (await isRemoteContext(context))) {
      const dir = await mkdtemp(join(tmpdir(), 'barge-context-'));
      temps.push(dir);
      const got = await fetchRemote(context, dir, temps);
      if (got.containerfile !== null) inline = { text: got.containerfile, name: context };
      context = got.dir;
      remote = true;
    } else if (context === '-' || (existsSync(context) && statSync(context).isFile())) {
      // A tarball (or, on standard input, a tarball or a Containerfile) becomes a private context.
      const dir = await mkdtemp(join(tmpdir(), 'barge-context-'));
      temps.push(dir);
      let file = context;
      if (context === '-') {
        file = join(dir, '..', `${dir.split('/').pop()}.stdin`);
        temps.push(file);
        await stdinToFile(file);
      }
      if (await isArchiveFile(file)) await extractContext(file, dir);
      else if (context === '-') inline = { text: readFileSync(file, 'utf8'), name: '-' };
      else throw new Error(`build context "${context}" is a file but not a tar archive`);
      context = dir;
    } else if (!existsSync(context)) {
      throw new Error(`no such file or directory: build context "${context}"`);
    }
    const contextDir = resolvePath(context);

    // Containerfile: -f (relative to the working directory, else to the context), else
    // Containerfile before Dockerfile in the context.
    let file = str(o.file);
    let text: string;
    if (inline !== null && !file) {
      file = inline.name;
      text = inline.text;
    } else if (file === '-') {
      text = readFileSync(0, 'utf8');
    } else {
      const { resolveInRoot } = await import('../../store/secure-path.ts');
      // In a fetched context, -f names a file of the context, as in Buildah, and neither it nor
      // the default Containerfile may be a symlink leading out of it.
      const inContext = async (name: string): Promise<string> => (remote ? resolveInRoot(contextDir, name) : join(contextDir, name));
      if (file) {
        if (remote && !isAbsolute(file)) file = await inContext(file);
        else if (!existsSync(file) && existsSync(join(contextDir, file))) file = join(contextDir, file);
      } else {
        const candidates = await Promise.all(['Containerfile', 'Dockerfile'].map(inContext));
        file = candidates.find((p) => existsSync(p));
        if (!file) throw new Error(`no Containerfile or Dockerfile specified or found in context directory, ${contextDir}`);
      }
      if (!existsSync(file) || !statSync(file).isFile()) throw new Error(`the specified Containerfile or Dockerfile does not exist, ${file}`);
      text = readFileSync(file, 'utf8');
    }

    const { parseContainerfile, ContainerfileError } = await import('../../containerfile/parser.ts');
    const { loadIgnore, makeMatcher, parseIgnore } = await import('../../containerfile/ignore.ts');
    const ignoreFile = str(o.ignorefile);
    if (ignoreFile !== undefined && !existsSync(ignoreFile)) throw new Error(`--ignorefile ${ignoreFile}: no such file`);
    const { build, baseImages, BuildError } = await import('../../containerfile/interpreter.ts');

    const buildArgs = new Map<string, string>();
    for (const f of list(o.buildArgFile)) {
      for (const line of readFileSync(f, 'utf8').split(/\r?\n/)) {
        const t = line.trim();
        if (!t || t.startsWith('#')) continue;
        const i = t.indexOf('=');
        if (i < 0) {
          if (process.env[t] !== undefined) buildArgs.set(t, process.env[t]!);
        } else buildArgs.set(t.slice(0, i), t.slice(i + 1));
      }
    }
    for (const a of list(o.buildArg)) {
      const i = a.indexOf('=');
      // "--build-arg NAME" takes the value from the environment, as Buildah does.
      if (i < 0) {
        if (process.env[a] !== undefined) buildArgs.set(a, process.env[a]!);
      } else buildArgs.set(a.slice(0, i), a.slice(i + 1));
    }
    const secrets = new Map<string, string>();
    for (const s of list(o.secret)) {
      const kv = new Map(s.split(',').map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)] as [string, string]));
      const id = kv.get('id');
      const src = kv.get('src') ?? kv.get('source');
      const envName = kv.get('env');
      if (!id) throw new Error(`invalid --secret "${s}": id= is required`);
      if (src) secrets.set(id, resolvePath(src));
      else if (envName && process.env[envName] !== undefined) {
        const dir = await mkdtemp(join(tmpdir(), 'barge-secret-'));
        temps.push(dir);
        await writeFile(join(dir, id), process.env[envName]!, { mode: 0o600 });
        secrets.set(id, join(dir, id));
      } else throw new Error(`invalid --secret "${s}": src= or env= is required`);
    }

    const ssh = await sshSockets(list(o.ssh), temps, stop);
    let cacheTtlMs: number | undefined;
    if (str(o.cacheTtl) !== undefined) {
      const { parseDuration } = await import('../../primitives/config.ts');
      let ns: number;
      try {
        ns = parseDuration(str(o.cacheTtl)!);
      } catch (e) {
        throw new Error(`invalid --cache-ttl: ${(e as Error).message}`);
      }
      if (ns < 0) throw new Error(`invalid --cache-ttl "${str(o.cacheTtl)}": must not be negative`);
      cacheTtlMs = ns / 1e6;
    }
    const cacheFrom = list(o.cacheFrom).map((r) => cacheRepo(r, '--cache-from'));
    const cacheTo = list(o.cacheTo).map((r) => cacheRepo(r, '--cache-to'));

    const pullOpt = str(o.pull);
    // Bare --pull is Buildah's --pull=true: pull when missing.
    const pull: PullPolicy =
      pullOpt === undefined || pullOpt === 'true' || pullOpt === 'missing' || pullOpt === 'ifmissing' || o.pull === true ? 'missing'
        : pullOpt === 'false' || pullOpt === 'never' ? 'never'
        : pullOpt === 'ifnewer' ? 'newer' : (pullOpt as PullPolicy);
    const ts = str(o.timestamp);
    if (ts !== undefined && !/^\d+$/.test(ts)) throw new Error(`invalid --timestamp "${ts}": expected seconds since the epoch`);
    const { buildahRunSettings, parseNetwork } = await import('../buildah-run-options.ts');
    const network = str(o.network) === undefined ? {} : parseNetwork(str(o.network)!);
    const net = network.network;
    const run = { ...buildahRunSettings(o, 'build'), ...(network.networkPath !== undefined && { networkPath: network.networkPath }) };
    const format = (str(o.format) ?? process.env.BUILDAH_FORMAT ?? 'oci').toLowerCase();
    if (format !== 'oci' && format !== 'docker') throw new Error(`unrecognized image type "${format}"`);
    const isolation = str(o.isolation);
    const userns = usernsFromOptions(o);
    if (isolation && isolation !== 'oci' && isolation !== 'chroot' && isolation !== 'rootless') throw new Error(`unrecognized isolation type "${isolation}"`);
    const layersOpt = o.layers;
    const layers = layersOpt === undefined ? process.env.BUILDAH_LAYERS === 'true' : layersOpt === true || layersOpt === 'true';
    // Several platforms are built one after another, each image joining the --manifest list.
    const allPlatforms = !!o.allPlatforms;
    if (allPlatforms && (o.platform !== undefined || o.arch !== undefined || o.os !== undefined || o.variant !== undefined)) {
      throw new Error('--all-platforms builds for the platforms of the base images: it cannot be combined with --platform, --arch, --os or --variant');
    }
    let platforms = str(o.platform)?.includes(',') ? str(o.platform)!.split(',').map((p) => parsePlatform(p.trim())) : [platformFlags(o)];
    const manifest = str(o.manifest);
    const several = allPlatforms ? '--all-platforms' : `--platform ${str(o.platform)}`;
    if ((platforms.length > 1 || allPlatforms) && manifest === undefined) throw new Error(`${several}: building for several platforms needs --manifest LIST to hold the images`);
    if ((platforms.length > 1 || allPlatforms) && list(o.tag).length) throw new Error('--tag cannot name the image of each of several platforms: name the list with --manifest');
    const output = str(o.output) !== undefined ? parseOutput(str(o.output)!) : undefined;
    const toStdout = output?.type === 'tar' && output.dest === '-';
    const contexts = await namedContexts(list(o.buildContext), temps);

    const fileOnDisk = file !== '-' && file !== inline?.name;
    const shownFile = file!;
    const parsed = (() => {
      try {
        return parseContainerfile(text, shownFile);
      } catch (e) {
        if (e instanceof ContainerfileError) throw new ExitError(e.message, 125);
        throw e;
      }
    })();
    const store = await openStore(g);
    const runtime = str(o.runtime) ?? (await selectedRuntime(g));
    const quiet = !!o.quiet;
    const options = (platform: PlatformSpec | undefined, runOutput: number | undefined): BuildOptions => ({
      contextDir, containerfilePath: shownFile, parsed,
      ignore: ignoreFile !== undefined ? makeMatcher(parseIgnore(readFileSync(ignoreFile, 'utf8')), ignoreFile) : loadIgnore(contextDir, fileOnDisk ? file! : null),
      tags: list(o.tag), buildArgs, layers, noCache: o.cache === false || !!o.noCache, pull,
      puller: async (ref, want) => {
        (await import('./registry.ts')).applyRegistryFlags(o, 'pull');
        return (await import('./transfer.ts')).pullByName(store, ref, { quiet: !!o.quiet, ...(want && { platform: want }) });
      },
      contexts,
      labels: list(o.label), annotations: list(o.annotation), format, squash: !!o.squash,
      env: list(o.env), unsetEnv: list(o.unsetenv), osFeatures: list(o.osFeature),
      ...(str(o.osVersion) !== undefined && { osVersion: str(o.osVersion)! }),
      ...(str(o.from) !== undefined && { fromOverride: str(o.from)! }),
      skipUnusedStages: o.skipUnusedStages !== false && o.skipUnusedStages !== 'false',
      omitHistory: !!o.omitHistory,
      stdin: !!o.stdin,
      ...(ts !== undefined && { timestamp: Number(ts) }),
      ...(str(o.target) !== undefined && { target: str(o.target)! }),
      ...(net && { network: net }),
      volumes: list(o.volume), secrets, ssh, run,
      ...(cacheTtlMs !== undefined && { cacheTtlMs }),
      ...(platform && { platform }),
      ...(isolation && isolation !== 'rootless' && { isolation: isolation as 'oci' | 'chroot' }),
      ...(userns && { userns }),
      ...(runtime && { runtime }),
      ...(runOutput !== undefined && { runOutput }),
      quiet,
      iidfile: typeof o.iidfile === 'string',
      // With the archive on stdout (-o -), the progress lines go to stderr.
      out: (l) => (toStdout ? process.stderr : process.stdout).write(`${l}\n`),
      warn: (l) => process.stderr.write(`${l}\n`),
    });
    // --logfile: what the build writes, RUN steps' output too, goes to FILE (with --logsplit, to
    // FILE_OS_ARCH for each platform); an error that ends the build still reaches stderr.
    const log = logfile === undefined ? undefined : openSync(logfile, 'w', 0o600);
    let restore: (() => void) | undefined;
    try {
      if (log !== undefined && !logsplit) restore = redirectOutput(log);
      if (allPlatforms) {
        platforms = await commonPlatforms(store, baseImages(store, options(undefined, undefined)), o);
      }
      // As in Buildah, the registry cache is a layer cache: without --layers it is not used.
      const remote = layers && (cacheFrom.length || cacheTo.length) ? await remoteCache(store, o, cacheFrom, cacheTo, (l) => process.stderr.write(`${l}\n`)) : undefined;
      const splitNames = new Set<string>();
      for (const platform of platforms) {
        let split: number | undefined;
        if (log !== undefined && logsplit) {
          const p = { os: 'linux', architecture: hostArch(), ...platform };
          const name = `${logfile}_${p.os}_${p.architecture}`;
          // Variants of one architecture share a name: the second one's output follows the first's.
          split = openSync(name, splitNames.has(name) ? 'a' : 'w', 0o600);
          splitNames.add(name);
          restore = redirectOutput(split);
        }
        try {
          const res = await build(store, { ...options(platform, split ?? log), ...(remote && { remoteCache: remote }) });
          if (manifest !== undefined) await (await import('./manifest.ts')).addImageToList(store, manifest, res.imageId);
          if (output) await writeOutput(store, res.imageId, output);
          // As Buildah: the id goes to the --iidfile, or else to stdout.
          if (typeof o.iidfile === 'string') await writeFile(o.iidfile, `sha256:${res.imageId}`);
          else if (!toStdout) print(res.imageId);
        } finally {
          if (split !== undefined) {
            restore?.();
            restore = undefined;
            closeSync(split);
          }
        }
      }
      return 0;
    } catch (e) {
      if (e instanceof BuildError) throw new ExitError(e.message, e.exitCode);
      if (e instanceof ContainerfileError) throw new ExitError(e.message, 125);
      throw e;
    } finally {
      restore?.();
      if (log !== undefined) closeSync(log);
    }
  } finally {
    for (const s of stop) s();
    for (const t of temps) await rm(t, { recursive: true, force: true }).catch(() => {});
  }
}


