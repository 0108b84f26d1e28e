// The Containerfile interpreter: every instruction is a call of a primitive (from, copy/add, run,
// config, commit) on a working container, as Buildah's imagebuildah does. What this file adds is
// ordering, variable scoping and the layer cache.

import { lstat, mkdir, mkdtemp, realpath, rm, writeFile } from 'node:fs/promises';
import { join, posix, resolve as resolvePath } from 'node:path';
import { tmpdir } from 'node:os';
import type { Store } from '../store/store.ts';
import { resolveInRoot } from '../store/secure-path.ts';
import type { ImageConfig, ManifestFormat } from '../image/types.ts';
import { readImageConfig, readImageManifest, resolveImage, type Puller } from '../image/local-images.ts';
import { localImageName } from '../image/reference.ts';
import { isValidDigest } from '../image/digest.ts';
import { fromImage, platformMismatch, type PullPolicy } from '../primitives/from.ts';
import { describePlatform, parsePlatform, platformMatches, type PlatformSpec } from '../image/manifest.ts';
import { emptyImageConfig, hostArch, saveBuilder, type Builder } from '../primitives/builder.ts';
import { copyIntoBuilder } from '../primitives/copy.ts';
import { parseMountOptions, runInBuilder, type RunOptions, type RunSettings } from '../primitives/run.ts';
import { DEFAULT_PATH } from '../runtime/spec.ts';
import { exposedPorts, parseDuration, setKeyValues, type BuilderConfig } from '../primitives/config.ts';
import { commitBuilder, writeImage } from '../primitives/commit.ts';
import { parseContainerfile, parseKeyValues, splitKeepQuotes, ContainerfileError, type Containerfile, type Instruction } from './parser.ts';
import { expandWord, expandWords, ExpandError } from './expand.ts';
import { cleanRel, glob } from './glob.ts';
import type { IgnoreMatcher } from './ignore.ts';
import { cloneGit, parseGitSource, type GitSource } from './git-source.ts';
import { cacheKey, lookupCache, recordCache, ContentHasher } from './cache.ts';
import type { ContainerUserns } from '../sys/userns.ts';

export type Network = 'host' | 'none' | 'private';

/**
 * A `--build-context NAME=VALUE`: a directory (copied from with its own ignore file, not the main
 * context's) or an image. Either stands in for a stage or image called NAME in FROM (images
 * only), COPY --from and RUN --mount=from, ahead of a stage of that name, as in Buildah.
 */
export type NamedContext = { kind: 'dir'; path: string; ignore: IgnoreMatcher } | { kind: 'image'; ref: string };

/** What COPY --from or RUN --mount=from reads: a directory on the host, or the root of a stage's container or an image. */
type FromSource = { kind: 'dir'; path: string; ignore: IgnoreMatcher } | { kind: 'root'; ref: string; key: string };

export interface BuildOptions {
  contextDir: string;
  /** Path shown in errors and used to find `<file>.containerignore`. */
  containerfilePath: string;
  parsed: Containerfile;
  ignore: IgnoreMatcher;
  tags: string[];
  buildArgs: Map<string, string>;
  target?: string;
  layers: boolean;
  noCache: boolean;
  pull: PullPolicy;
  /** Fetches FROM and COPY --from images that are not local. */
  puller?: Puller;
  /** --build-context, by name. */
  contexts?: Map<string, NamedContext>;
  labels: string[];
  annotations: string[];
  /** --env KEY=VALUE and --unsetenv KEY: the final image's environment, after the Containerfile's. */
  env?: string[];
  unsetEnv?: string[];
  /** --os-version and --os-feature: the final image's config. */
  osVersion?: string;
  osFeatures?: string[];
  /** --from: the image of the first FROM instead of the one it names. */
  fromOverride?: string;
  /** --stdin: RUN steps read barge's stdin (without it, /dev/null, as Buildah). */
  stdin?: boolean;
  /** --omit-history: the final image has no history. */
  omitHistory?: boolean;
  /** Buildah's --skip-unused-stages (default true): stages the target does not need are not built. */
  skipUnusedStages?: boolean;
  format: ManifestFormat;
  squash: boolean;
  timestamp?: number;
  network?: Network;
  volumes: string[];
  /** The run options of build (--cap-add, --ulimit, --add-host, --dns, …) for every RUN; not in the cache key, as with Buildah. */
  run?: RunSettings;
  secrets: Map<string, string>;
  /** `--ssh`: agent socket paths by id, for RUN --mount=type=ssh. */
  ssh: Map<string, string>;
  /** `--cache-ttl` in milliseconds: older cache entries are not used. */
  cacheTtlMs?: number;
  /** `--cache-from` / `--cache-to`: registry repositories holding step images tagged by cache key. */
  remoteCache?: RemoteCache;
  /** --platform/--arch/--os/--variant: what the stages are built for (FROM --platform= overrides it). */
  platform?: PlatformSpec;
  isolation?: 'oci' | 'chroot';
  /** The user namespace of every stage's RUN steps (--userns and the id maps). */
  userns?: ContainerUserns;
  runtime?: string;
  quiet: boolean;
  /** --iidfile: the final image's id goes there, not into a `--> ID` line (as Buildah). */
  iidfile?: boolean;
  /** --logfile: the descriptor that gets what RUN steps write, instead of barge's stdout and stderr. */
  runOutput?: number;
  /** Progress lines (STEP, COMMIT, -->): stdout, as Buildah writes them. */
  out: (line: string) => void;
  warn: (line: string) => void;
}

/**
 * A layer cache in registry repositories, as Buildah's --cache-from/--cache-to: each step's image
 * is pushed as REPO:<cache key>, and a step missing locally is looked up there before it runs.
 */
export interface RemoteCache {
  from: string[];
  to: string[];
  /** Pulls REF into the store; the image id, or null when the registry has no such tag. */
  fetch(ref: string): Promise<string | null>;
  push(imageId: string, ref: string): Promise<void>;
}

export interface BuildResult {
  imageId: string;
  names: string[];
}

/** A failure at a step: `building at STEP "RUN ...": ...`, exiting with the RUN's status when it has one. */
export class BuildError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = 'BuildError';
  }
}

const PROXY_ARGS = ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy'];

/**
 * The predefined platform ARGs: BUILD* of the host, TARGET* of --platform (the host's without it).
 * An arm64 platform without a variant is v8 and an arm one v7, as Buildah fills them in.
 */
export function platformArgs(target?: PlatformSpec): Map<string, string> {
  const spell = (p: PlatformSpec): { os: string; arch: string; variant: string; platform: string } => {
    const os = p.os ?? 'linux';
    const arch = p.architecture ?? hostArch();
    const variant = p.variant ?? (arch === 'arm64' ? 'v8' : arch === 'arm' ? 'v7' : '');
    return { os, arch, variant, platform: `${os}/${arch}${variant && !(arch === 'arm64' && variant === 'v8') ? `/${variant}` : ''}` };
  };
  const b = spell({});
  const t = spell(target ?? {});
  return new Map([
    ['BUILDPLATFORM', b.platform], ['BUILDOS', b.os], ['BUILDARCH', b.arch], ['BUILDVARIANT', b.variant],
    ['TARGETPLATFORM', t.platform], ['TARGETOS', t.os], ['TARGETARCH', t.arch], ['TARGETVARIANT', t.variant],
  ]);
}

interface StageDef {
  index: number;
  name: string | null;
  from: Instruction;
  body: Instruction[];
}

interface StageResult {
  imageId: string | null;
  builder: Builder | null;
}

interface Stage {
  def: StageDef;
  config: BuilderConfig;
  /** Last committed image of this stage (layers mode), or the base image. */
  imageId: string | null;
  builder: Builder | null;
  args: Map<string, string | undefined>;
  cmdSet: boolean;
  shell: string[];
  /** Whether the step running is the stage's last. */
  last: boolean;
  /** History entries the base image brought. */
  baseHistory: number;
  /** The stage gave itself the default PATH: even a FROM-only stage then has a config of its own. */
  pathAdded: boolean;
  /** FROM --platform, else --platform, else the host's ({}): what its base is pulled for. */
  platform: PlatformSpec;
}

/**
 * The stages the target needs: itself and those it builds on (FROM), copies from (COPY/ADD
 * --from) or mounts (RUN --mount=from=), transitively. A reference made of a stage's own ARGs can
 * only be known while building: it keeps every earlier stage.
 */
export function neededStages(stages: StageDef[], target: number, baseOf: (def: StageDef) => string, contexts: ReadonlySet<string> = new Set()): Set<number> {
  const byName = new Map(stages.flatMap((s) => (s.name ? [[s.name, s.index] as const] : [])));
  const refsOf = (def: StageDef): string[] => [
    baseOf(def),
    ...def.body.flatMap((ins) =>
      ins.flags.flatMap((f) => {
        if (f.name === 'from') return [f.value];
        if (f.name !== 'mount') return [];
        return f.value.split(',').flatMap((kv) => (kv.startsWith('from=') ? [kv.slice(5)] : []));
      }),
    ),
  ];
  const needed = new Set<number>();
  const visit = (i: number): void => {
    if (needed.has(i)) return;
    needed.add(i);
    for (const ref of refsOf(stages[i]!)) {
      // A named build context wins over a stage of its name.
      if (contexts.has(ref)) continue;
      if (ref.includes('$')) {
        for (let j = 0; j < i; j++) visit(j);
        continue;
      }
      const j = byName.get(ref.toLowerCase()) ?? (/^\d+$/.test(ref) ? Number(ref) : undefined);
      if (j !== undefined && j < i) visit(j);
    }
  };
  visit(target);
  return needed;
}

export function splitStages(cf: Containerfile): { globals: Instruction[]; stages: StageDef[] } {
  const globals: Instruction[] = [];
  const stages: StageDef[] = [];
  for (const ins of cf.instructions) {
    if (ins.keyword === 'FROM') {
      const w = ins.args.split(/\s+/);
      stages.push({ index: stages.length, name: w.length === 3 ? w[2]!.toLowerCase() : null, from: ins, body: [] });
    } else if (!stages.length) globals.push(ins);
    else stages[stages.length - 1]!.body.push(ins);
  }
  return { globals, stages };
}

/**
 * Where `COPY --parents` puts a matched source, relative to the destination: its whole path,
 * or with a `/./` pivot in the source as written, the part after the pivot (BuildKit's rule:
 * `COPY --parents ./src/./app/*.c /out/` gives /out/app/x.c).
 */
export function parentsPath(word: string, rel: string): string {
  const i = word.indexOf('/./');
  if (i < 0) return rel;
  return relativeTo(cleanRel(word.slice(0, i)), rel);
}

/** The directory before a source pattern's first wildcard ('' for the root), or null when it has none. */
function wildcardBase(word: string): string | null {
  const parts = cleanRel(word).split('/');
  const i = parts.findIndex((p) => /[*?[]/.test(p));
  return i < 0 ? null : parts.slice(0, i).join('/');
}

function parentOf(rel: string): string {
  const d = posix.dirname(rel);
  return d === '.' ? '' : d;
}

/** `rel` (root-relative) as seen from the directory `base` (root-relative, '' for the root). */
function relativeTo(base: string, rel: string): string {
  if (base === '') return rel;
  return rel === base ? '' : rel.startsWith(`${base}/`) ? rel.slice(base.length + 1) : rel;
}

/** `--link`, `--parents`: bare or `=true` (the parser has refused anything but `=false` else). */
function boolFlag(ins: Instruction, name: string): boolean {
  const v = ins.flags.filter((f) => f.name === name).at(-1)?.value;
  return v === '' || v === 'true';
}

export async function build(store: Store, o: BuildOptions): Promise<BuildResult> {
  return new Interpreter(store, o).run();
}

/** The base images of a build (see Interpreter.baseImages), for --all-platforms. */
export function baseImages(store: Store, o: BuildOptions): string[] {
  return new Interpreter(store, o).baseImages();
}

class Interpreter {
  private readonly containers = new Set<Builder>();
  private readonly tempImages = new Set<string>();
  private readonly tempDirs: string[] = [];
  private readonly results = new Map<number, StageResult>();
  private readonly stageNames = new Map<string, number>();
  private readonly consumed = new Set<string>();
  private readonly hasher: ContentHasher;
  private readonly predefined: Map<string, string>;
  private globalArgs = new Map<string, string | undefined>();
  private finalIndex = 0;

  constructor(
    private readonly store: Store,
    private readonly o: BuildOptions,
  ) {
    this.hasher = new ContentHasher(store);
    this.predefined = platformArgs(o.platform);
  }

  private fail(ins: Instruction, msg: string, code = 125): never {
    throw new BuildError(`building at STEP "${ins.original}": ${msg}`, code);
  }

  /** fail(), naming the instruction's file:line too: for what a remote source did, where the STEP text alone may be ambiguous. */
  private failAt(ins: Instruction, msg: string): never {
    this.fail(ins, `${ins.file}:${ins.line}: ${msg}`);
  }

  /** The stages, with their names and the global ARGs known; the target's index set. */
  private prepare(): StageDef[] {
    const { globals, stages } = splitStages(this.o.parsed);
    for (const s of stages) if (s.name) this.stageNames.set(s.name, s.index);
    if (this.o.target !== undefined) {
      const t = this.stageNames.get(this.o.target.toLowerCase());
      if (t === undefined) throw new BuildError(`the target "${this.o.target}" was not found in the provided Containerfile`, 125);
      this.finalIndex = t;
    } else this.finalIndex = stages.length - 1;

    // Global ARGs: defaults expand against earlier global ARGs, build args override.
    for (const ins of globals) {
      for (const [name, def] of this.parseArgDecl(ins, this.globalVars())) {
        this.consumed.add(name);
        this.globalArgs.set(name, this.o.buildArgs.get(name) ?? def ?? this.predefined.get(name));
      }
    }
    return stages;
  }

  /**
   * The images the stages' FROMs name (named build contexts of images resolved, scratch and
   * earlier stages left out), in order and without repeats: what --all-platforms asks for
   * platforms, as Buildah's baseImages does. Nothing is built or pulled.
   */
  baseImages(): string[] {
    const stages = this.prepare();
    const out: string[] = [];
    for (const def of stages) {
      let ref = this.fromRef(def);
      const ctx = this.o.contexts?.get(ref);
      if (ctx?.kind === 'dir') this.fail(def.from, `build context "${ref}" is not an image, can not be used for FROM ${ref}`);
      if (ctx) ref = ctx.ref;
      else if (ref.toLowerCase() === 'scratch' || (this.stageNames.get(ref.toLowerCase()) ?? Infinity) < def.index) continue;
      if (!out.includes(ref)) out.push(ref);
    }
    return out;
  }

  async run(): Promise<BuildResult> {
    const stages = this.prepare();
    let ok = false;
    try {
      let final: BuildResult | null = null;
      const contexts = new Set(this.o.contexts?.keys() ?? []);
      const needed = this.o.skipUnusedStages === false ? null : neededStages(stages, this.finalIndex, (def) => this.fromRef(def), contexts);
      for (let i = 0; i <= this.finalIndex; i++) {
        if (needed && !needed.has(i)) continue;
        const r = await this.runStage(stages[i]!, i === this.finalIndex, stages.length > 1 ? `[${i + 1}/${this.finalIndex + 1}] ` : '');
        if (r) final = r;
      }
      const unused = [...this.o.buildArgs.keys()].filter((k) => !this.consumed.has(k) && !PROXY_ARGS.includes(k) && !this.predefined.has(k)).sort();
      if (unused.length) this.o.warn(`[Warning] one or more build args were not consumed: [${unused.join(' ')}]`);
      // For tests and benchmarks: how many context files were read to hash them.
      if (process.env.BARGE_BUILD_STATS) this.o.warn(`build stats: files hashed ${this.hasher.stats.read}, unchanged (not re-read) ${this.hasher.stats.memo}`);
      ok = true;
      return final!;
    } finally {
      this.hasher.flush();
      await this.cleanup(ok);
    }
  }

  private async cleanup(ok: boolean): Promise<void> {
    for (const b of this.containers) {
      const c = this.store.findContainer(b.container.id);
      if (c) await this.store.withContainerLock(c, () => this.store.deleteContainer(c)).catch(() => {});
    }
    this.containers.clear();
    // Non-layers intermediate stages were committed only to serve FROM <stage>; they are not kept.
    for (const id of this.tempImages) await this.store.deleteImage(id).catch(() => {});
    for (const d of this.tempDirs) await rm(d, { recursive: true, force: true }).catch(() => {});
    if (!ok) await this.store.collectGarbage().catch(() => {});
  }

  private globalVars(): Map<string, string> {
    const m = new Map<string, string>();
    for (const [k, v] of this.predefined) m.set(k, v);
    for (const [k, v] of this.globalArgs) if (v !== undefined) m.set(k, v);
    return m;
  }

  /** Variables visible to expansion in a stage: its ARGs, then its ENV (ENV wins). */
  private stageVars(s: Stage): Map<string, string> {
    const m = new Map<string, string>();
    for (const [k, v] of s.args) if (v !== undefined) m.set(k, v);
    for (const e of s.config.image.config?.Env ?? []) {
      const i = e.indexOf('=');
      if (i > 0) m.set(e.slice(0, i), e.slice(i + 1));
    }
    return m;
  }

  private expand(ins: Instruction, s: string, vars: Map<string, string>): string {
    try {
      return expandWord(s, vars, this.o.parsed.escape);
    } catch (e) {
      if (e instanceof ExpandError) throw new ContainerfileError(ins.file, ins.line, e.message);
      throw e;
    }
  }

  private expandList(ins: Instruction, s: string, vars: Map<string, string>): string[] {
    try {
      return expandWords(s, vars, this.o.parsed.escape);
    } catch (e) {
      if (e instanceof ExpandError) throw new ContainerfileError(ins.file, ins.line, e.message);
      throw e;
    }
  }

  private parseArgDecl(ins: Instruction, vars: Map<string, string>): [string, string | undefined][] {
    const out: [string, string | undefined][] = [];
    for (const w of splitKeepQuotes(ins.args, this.o.parsed.escape)) {
      const eq = w.indexOf('=');
      const name = eq < 0 ? w : w.slice(0, eq);
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new ContainerfileError(ins.file, ins.line, `ARG: invalid name "${name}"`);
      out.push([name, eq < 0 ? undefined : this.expand(ins, w.slice(eq + 1), vars)]);
    }
    return out;
  }

  private step(prefix: string, n: number, total: number, ins: Instruction | string): void {
    if (!this.o.quiet) this.o.out(`${prefix}STEP ${n}/${total}: ${typeof ins === 'string' ? ins : ins.original}`);
  }

  /** A stage's FROM as Buildah shows it: with the ARGs it names substituted. */
  private fromLine(from: Instruction): string {
    const flags = from.flags.map((f) => `--${f.name}=${f.value} `).join('');
    try {
      return `${from.original.trimStart().split(/\s/)[0]} ${flags}${this.expand(from, from.args, this.globalVars())}`;
    } catch {
      // A bad substitution fails the stage's start, with its own message.
      return from.original;
    }
  }

  private async runStage(def: StageDef, isFinal: boolean, prefix: string): Promise<BuildResult | null> {
    const total = def.body.length + 1;
    this.step(prefix, 1, total, this.fromLine(def.from));
    const layers = this.o.layers && !(isFinal && this.o.squash);
    const st = await this.startStage(def, layers);
    const onbuild = st.config.image.config?.OnBuild ?? [];
    if (onbuild.length) {
      delete st.config.image.config!.OnBuild;
    }
    const triggers = onbuild.map((t) => {
      const cf = parseContainerfile(`FROM scratch\n${t}`, `${def.from.file} (ONBUILD from ${def.from.args})`);
      return { ...cf.instructions[1]!, line: def.from.line };
    });
    const body = [...triggers, ...def.body];
    for (let k = 0; k < body.length; k++) {
      const ins = body[k]!;
      const isTrigger = k < triggers.length;
      if (!isTrigger) this.step(prefix, k - triggers.length + 2, total, ins);
      st.last = k === body.length - 1;
      await this.runInstruction(st, ins, layers, isFinal && st.last);
      if (layers && !(isFinal && st.last) && !this.o.quiet) this.o.out(`--> ${st.imageId?.slice(0, 11) ?? ''}`);
    }
    if (!body.length && layers && isFinal && (st.pathAdded || this.o.labels.length || this.o.annotations.length)) {
      // FROM alone with a config change (default PATH, --label, --annotation): the base image's
      // layers under a new config.
      this.applyCliMeta(st);
      st.imageId = await this.commitConfigOnly(st, '', [], true);
    }
    return this.finishStage(st, isFinal, layers, prefix);
  }

  private async startStage(def: StageDef, layers: boolean): Promise<Stage> {
    const vars = this.globalVars();
    let ref = this.fromRef(def, vars);
    const platformFlag = def.from.flags.filter((f) => f.name === 'platform').at(-1);
    let platform: PlatformSpec = this.o.platform ?? {};
    if (platformFlag) {
      try {
        platform = parsePlatform(this.expand(def.from, platformFlag.value, vars));
      } catch (e) {
        this.fail(def.from, (e as Error).message);
      }
    }
    let imageId: string | null = null;
    let config: BuilderConfig;
    const ctx = this.o.contexts?.get(ref);
    if (ctx?.kind === 'dir') this.fail(def.from, `build context "${ref}" is not an image, can not be used for FROM ${ref}`);
    const stageIdx = ctx ? undefined : this.stageNames.get(ref.toLowerCase());
    if (ctx) ref = ctx.ref;
    if (stageIdx !== undefined && stageIdx < def.index) {
      imageId = await this.stageImage(stageIdx);
      config = await this.imageState(imageId);
    } else if (ref.toLowerCase() === 'scratch') {
      config = { image: emptyImageConfig(platform), annotations: {} };
    } else {
      let img;
      try {
        img = await resolveImage(this.store, ref, this.o.pull, this.o.puller, platformFlag || this.o.platform ? platform : undefined);
      } catch (e) {
        this.fail(def.from, (e as Error).message);
      }
      imageId = img.id;
      config = await this.imageState(img.id);
      const mismatch = platformMismatch(config.image, platformFlag || this.o.platform ? platform : undefined);
      if (mismatch) this.o.warn(`WARN[0000] ${mismatch}`);
    }
    config.image.config ??= {};
    config.image.history ??= [];
    // Buildah (imagebuilder) gives a stage whose base sets no PATH the default one, in the
    // image's Env too (appended after what the base has), so RUN, ${PATH} and the result agree.
    const env = config.image.config.Env ?? [];
    const pathAdded = !env.some((e) => e.startsWith('PATH='));
    if (pathAdded) config.image.config.Env = [...env, DEFAULT_PATH];
    delete config.createdBy;
    delete config.historyComment;
    const st: Stage = {
      def, config, imageId, builder: null, args: new Map(), cmdSet: false,
      shell: ['/bin/sh', '-c'], last: false, baseHistory: config.image.history.length, pathAdded, platform,
    };
    if (config.image.config.Shell?.length) st.shell = [...config.image.config.Shell];
    if (!layers) await this.ensureBuilder(st);
    return st;
  }

  /** What the command line gives the final image (--label, --env, --omit-history, ...): part of the final step's cache key. */
  private finalMeta(finalStep: boolean): unknown {
    if (!finalStep) return null;
    const o = this.o;
    return [o.labels, o.annotations, o.env ?? [], o.unsetEnv ?? [], o.osVersion ?? null, o.osFeatures ?? [], !!o.omitHistory];
  }

  /** The base a stage's FROM names, with the global ARGs expanded; --from replaces the first stage's. */
  private fromRef(def: StageDef, vars = this.globalVars()): string {
    if (def.index === 0 && this.o.fromOverride !== undefined) return this.o.fromOverride;
    const ref = this.expand(def.from, def.from.args.split(/\s+/)[0]!, vars);
    if (ref === '') this.fail(def.from, 'base name should not be blank');
    return ref;
  }

  /**
   * The parent in a step's cache key: the image the step builds on, or for a stage on scratch the
   * platform its config names (a COPY onto scratch for arm64 is not the one for amd64).
   */
  private parentKey(st: Stage): string {
    return st.imageId ?? `scratch ${describePlatform(st.config.image)}`;
  }

  /** For working containers of images resolveImage already found (or pulled): never pull again. */
  private fromOpts(): { pull: PullPolicy; isolation?: 'oci' | 'chroot'; userns?: ContainerUserns } {
    return { pull: 'never', ...(this.o.isolation && { isolation: this.o.isolation }), ...(this.o.userns && { userns: this.o.userns }) };
  }

  private async imageState(imageId: string): Promise<BuilderConfig> {
    const img = this.store.getImage(imageId)!;
    const image = await readImageConfig(this.store, img);
    const manifest = await readImageManifest(this.store, img);
    image.config ??= {};
    image.history ??= [];
    return { image, annotations: { ...(manifest.annotations ?? {}) } };
  }

  /** The image of an earlier stage, committing it (unnamed, removed after the build) when needed. */
  private async stageImage(idx: number): Promise<string> {
    const r = this.results.get(idx)!;
    if (r.imageId) return r.imageId;
    const res = await commitBuilder(this.store, r.builder!, { format: this.o.format, names: [] });
    r.imageId = res.imageId;
    this.tempImages.add(res.imageId);
    return res.imageId;
  }

  private async ensureBuilder(st: Stage): Promise<Builder> {
    if (!st.builder) {
      const b = await fromImage(this.store, st.imageId ?? 'scratch', this.fromOpts());
      this.containers.add(b);
      st.builder = b;
    }
    st.builder.state.config = structuredClone(st.config);
    saveBuilder(this.store, st.builder);
    return st.builder;
  }

  private async dropBuilder(st: Stage): Promise<void> {
    if (!st.builder) return;
    const b = st.builder;
    st.builder = null;
    const c = this.store.findContainer(b.container.id);
    if (c) await this.store.withContainerLock(c, () => this.store.deleteContainer(c));
    this.containers.delete(b);
  }

  private finalNames(): string[] {
    return this.o.tags.map((t) => localImageName(t));
  }

  private applyCliMeta(st: Stage): void {
    const img = st.config.image;
    const c = img.config!;
    if (this.o.labels.length) c.Labels = setKeyValues(c.Labels ?? {}, this.o.labels);
    setKeyValues(st.config.annotations, this.o.annotations);
    for (const e of this.o.env ?? []) {
      const name = e.split('=', 1)[0]!;
      // --env NAME alone takes the value from barge's own environment, as Buildah does.
      const value = e.includes('=') ? e.slice(name.length + 1) : process.env[name];
      if (value === undefined) continue;
      c.Env = [...(c.Env ?? []).filter((x) => x.split('=', 1)[0] !== name), `${name}=${value}`];
    }
    const unset = new Set(this.o.unsetEnv ?? []);
    if (unset.size && c.Env) c.Env = c.Env.filter((x) => !unset.has(x.split('=', 1)[0]!));
    if (this.o.osVersion !== undefined) img['os.version'] = this.o.osVersion;
    if (this.o.osFeatures?.length) img['os.features'] = [...new Set([...(img['os.features'] ?? []), ...this.o.osFeatures])];
  }

  private async finishStage(st: Stage, isFinal: boolean, layers: boolean, prefix: string): Promise<BuildResult | null> {
    const names = isFinal ? this.finalNames() : [];
    if (layers) {
      // Every step was committed as it ran; the last one is the stage's image.
      if (st.imageId === null) {
        // FROM scratch with nothing else: an empty image.
        st.imageId = await this.commitConfigOnly(st, '', [], isFinal);
      }
      this.results.set(st.def.index, { imageId: st.imageId, builder: null });
      if (!isFinal) return null;
      if (!this.o.quiet) this.o.out(`${prefix}COMMIT${names.length ? ` ${this.o.tags.join(' ')}` : ''}`);
      for (const n of names) this.store.addName(st.imageId, n);
      return this.announce(st.imageId, names);
    }
    if (!isFinal) {
      // Kept as a working container for COPY --from and FROM <stage>; committed only if FROM needs it.
      const b = await this.ensureBuilder(st);
      this.results.set(st.def.index, { imageId: null, builder: b });
      return null;
    }
    this.applyCliMeta(st);
    if (!this.o.quiet) this.o.out(`${prefix}COMMIT${names.length ? ` ${this.o.tags.join(' ')}` : ''}`);
    const b = await this.ensureBuilder(st);
    // Every step but the last is already in the history (empty_layer, as Buildah writes it); the
    // last one is the commit's own entry.
    const hist = b.state.config.image.history ?? [];
    const lastEntry = hist.length > st.baseHistory ? hist.pop() : undefined;
    b.state.config.createdBy = lastEntry?.created_by ?? `/bin/sh -c #(nop) ${st.def.from.original}`;
    const res = await commitBuilder(this.store, b, {
      format: this.o.format, names, squash: this.o.squash, rm: true, omitHistory: !!this.o.omitHistory, ...(this.o.timestamp !== undefined && { timestamp: this.o.timestamp }),
    });
    await this.dropBuilder(st);
    this.results.set(st.def.index, { imageId: res.imageId, builder: null });
    return this.announce(res.imageId, names);
  }

  private announce(imageId: string, names: string[]): BuildResult {
    if (!this.o.quiet) {
      if (!this.o.iidfile) this.o.out(`--> ${imageId.slice(0, 11)}`);
      for (const n of names) this.o.out(`Successfully tagged ${n}`);
    }
    return { imageId, names };
  }

  private now(): string {
    return this.o.timestamp !== undefined ? new Date(this.o.timestamp * 1000).toISOString() : new Date().toISOString();
  }

  /** Build args in scope with a value, for RUN's environment and its history text. */
  private runArgs(st: Stage): [string, string][] {
    const out: [string, string][] = [];
    for (const [k, v] of st.args) if (v !== undefined) out.push([k, v]);
    for (const k of PROXY_ARGS) {
      const v = this.o.buildArgs.get(k);
      if (v !== undefined && !st.args.has(k)) out.push([k, v]);
    }
    return out;
  }

  private async runInstruction(st: Stage, ins: Instruction, layers: boolean, finalStep: boolean): Promise<void> {
    const vars = this.stageVars(st);
    const c = st.config.image.config!;
    // History text as Buildah writes it: the instruction as written (flags and JSON spacing
    // included), except ARG, which names its variables only.
    const nop = (text?: string): string => `/bin/sh -c #(nop) ${text === undefined ? ins.original : `${ins.keyword} ${text}`}`;
    switch (ins.keyword) {
      case 'RUN':
        return this.runStep(st, ins, layers, finalStep);
      case 'COPY':
      case 'ADD':
        return this.copyStep(st, ins, layers, finalStep, vars);
      case 'ARG': {
        const decl = this.parseArgDecl(ins, vars);
        return this.configStep(st, nop(decl.map(([n]) => n).join(' ')), layers, finalStep, () => {
          for (const [name, def] of decl) {
            this.consumed.add(name);
            let v = this.o.buildArgs.get(name) ?? def;
            if (v === undefined && this.globalArgs.has(name)) v = this.globalArgs.get(name);
            if (v === undefined) v = this.predefined.get(name);
            st.args.set(name, v);
          }
        }, [...st.args.entries(), ...decl]);
      }
      case 'ENV': {
        const pairs = this.keyValues(ins, vars);
        return this.configStep(st, nop(), layers, finalStep, () => {
          const env = [...(c.Env ?? [])];
          for (const [k, v] of pairs) {
            const i = env.findIndex((e) => e.startsWith(`${k}=`));
            if (i >= 0) env[i] = `${k}=${v}`;
            else env.push(`${k}=${v}`);
          }
          c.Env = env;
        });
      }
      case 'LABEL': {
        const pairs = this.keyValues(ins, vars);
        return this.configStep(st, nop(), layers, finalStep, () => {
          c.Labels ??= {};
          for (const [k, v] of pairs) c.Labels[k] = v;
        });
      }
      case 'MAINTAINER': {
        const who = this.expand(ins, ins.args, vars);
        return this.configStep(st, nop(), layers, finalStep, () => {
          st.config.image.author = who;
        });
      }
      case 'EXPOSE': {
        const args = this.expandList(ins, ins.args, vars);
        let ports: string[];
        try {
          ports = args.flatMap(exposedPorts);
        } catch (e) {
          throw new ContainerfileError(ins.file, ins.line, `EXPOSE: ${(e as Error).message}`);
        }
        return this.configStep(st, nop(), layers, finalStep, () => {
          c.ExposedPorts ??= {};
          for (const p of ports) c.ExposedPorts[p] = {};
        });
      }
      case 'VOLUME': {
        const vols = ins.json ? ins.json.map((v) => this.expand(ins, v, vars)) : this.expandList(ins, ins.args, vars);
        if (vols.some((v) => v.trim() === '')) throw new ContainerfileError(ins.file, ins.line, 'VOLUME specified can not be an empty string');
        return this.configStep(st, nop(), layers, finalStep, () => {
          c.Volumes ??= {};
          for (const v of vols) c.Volumes[v] = {};
        });
      }
      case 'USER': {
        const u = this.expand(ins, ins.args, vars);
        return this.configStep(st, nop(), layers, finalStep, () => {
          c.User = u;
        });
      }
      case 'WORKDIR': {
        const d = this.expand(ins, ins.args, vars);
        await this.configStep(st, nop(), layers, finalStep, () => {
          c.WorkingDir = posix.isAbsolute(d) ? posix.normalize(d) : posix.join(c.WorkingDir || '/', d);
        });
        // As Buildah: without --layers the directory is made in the working container at once;
        // with --layers the step is config-only and a later RUN makes it (COPY makes what it needs).
        if (!layers && st.builder) await mkdir(await resolveInRoot(await this.store.mountContainer(st.builder.container), c.WorkingDir!), { recursive: true, mode: 0o755 });
        return;
      }
      case 'STOPSIGNAL': {
        const sig = this.expand(ins, ins.args, vars);
        if (!/^(SIG[A-Z0-9+-]+|[0-9]+)$/i.test(sig)) throw new ContainerfileError(ins.file, ins.line, `STOPSIGNAL: invalid signal "${sig}"`);
        return this.configStep(st, nop(), layers, finalStep, () => {
          c.StopSignal = sig;
        });
      }
      case 'CMD': {
        const cmd = ins.json ?? [...st.shell, ins.args];
        return this.configStep(st, nop(), layers, finalStep, () => {
          c.Cmd = cmd;
          st.cmdSet = true;
        });
      }
      case 'ENTRYPOINT': {
        const ep = ins.json ?? [...st.shell, ins.args];
        return this.configStep(st, nop(), layers, finalStep, () => {
          c.Entrypoint = ep;
          // Docker: an ENTRYPOINT resets a CMD inherited from the base image.
          if (!st.cmdSet) delete c.Cmd;
        });
      }
      case 'SHELL':
        return this.configStep(st, nop(), layers, finalStep, () => {
          st.shell = [...ins.json!];
          c.Shell = [...ins.json!];
        });
      case 'ONBUILD': {
        const trigger = ins.args.trim();
        return this.configStep(st, nop(), layers, finalStep, () => {
          c.OnBuild = [...(c.OnBuild ?? []), trigger];
        });
      }
      case 'HEALTHCHECK': {
        const hc = this.healthcheck(ins, st);
        return this.configStep(st, nop(), layers, finalStep, () => {
          c.Healthcheck = hc;
        });
      }
      default:
        throw new ContainerfileError(ins.file, ins.line, `unknown instruction: ${ins.keyword}`);
    }
  }

  /** ENV / LABEL pairs, each `K=V` word expanded as a whole (quotes removed), all against the variables before the step. */
  private keyValues(ins: Instruction, vars: Map<string, string>): [string, string][] {
    let parsed: ReturnType<typeof parseKeyValues>;
    try {
      parsed = parseKeyValues(ins.args, ins.keyword);
    } catch (e) {
      throw new ContainerfileError(ins.file, ins.line, (e as Error).message);
    }
    return parsed.map((p): [string, string] => {
      if (p.legacy) return [this.expand(ins, p.key, vars), this.expand(ins, p.value, vars)];
      const w = this.expand(ins, p.rawWord, vars);
      const i = w.indexOf('=');
      return [w.slice(0, i), w.slice(i + 1)];
    });
  }

  private healthcheck(ins: Instruction, st: Stage): NonNullable<ImageConfig['config']>['Healthcheck'] {
    const [kw, ...rest] = ins.args.split(/\s+/);
    if (kw!.toUpperCase() === 'NONE') {
      if (rest.length || ins.flags.length) throw new ContainerfileError(ins.file, ins.line, 'HEALTHCHECK NONE takes no arguments');
      return { Test: ['NONE'] };
    }
    const cmdText = ins.args.slice(kw!.length).trim();
    if (!cmdText) throw new ContainerfileError(ins.file, ins.line, 'HEALTHCHECK CMD requires a command');
    const json = cmdText.startsWith('[') ? (JSON.parse(cmdText) as string[]) : null;
    const hc: NonNullable<ImageConfig['config']>['Healthcheck'] = { Test: json ? ['CMD', ...json] : ['CMD-SHELL', cmdText] };
    void st;
    for (const f of ins.flags) {
      try {
        if (f.name === 'retries') {
          if (!/^\d+$/.test(f.value)) throw new Error(`invalid --retries "${f.value}"`);
          hc.Retries = Number(f.value);
        } else {
          const ns = parseDuration(f.value);
          if (ns !== 0 && ns < 1_000_000) throw new Error(`--${f.name} cannot be less than 1ms`);
          if (f.name === 'interval') hc.Interval = ns;
          else if (f.name === 'timeout') hc.Timeout = ns;
          else if (f.name === 'start-period') hc.StartPeriod = ns;
          else if (f.name === 'start-interval') hc.StartInterval = ns;
        }
      } catch (e) {
        throw new ContainerfileError(ins.file, ins.line, `HEALTHCHECK: ${(e as Error).message}`);
      }
    }
    return hc;
  }

  /**
   * A step that only changes the image config. Non-layers mode: the working config changes and a
   * history entry is written. Layers mode: an image with the parent's layers and the new config,
   * cached under the parent, the step and the resulting config.
   */
  private async configStep(st: Stage, createdBy: string, layers: boolean, finalStep: boolean, apply: () => void, extraKey: unknown = null): Promise<void> {
    apply();
    if (finalStep) this.applyCliMeta(st);
    if (!layers) {
      st.config.image.history!.push({ created: this.now(), created_by: createdBy, empty_layer: true });
      return;
    }
    const key = cacheKey({
      v: 1, kind: 'config', parent: this.parentKey(st), createdBy, config: st.config.image.config, author: st.config.image.author ?? null,
      annotations: st.config.annotations, format: this.o.format, ts: this.o.timestamp ?? null, extraKey, final: this.finalMeta(finalStep),
    });
    const hit = await this.cached(key);
    if (hit) {
      await this.useCached(st, hit);
      return;
    }
    st.imageId = await this.commitConfigOnly(st, createdBy, [], finalStep);
    // Reloaded, so the next step sees the config exactly as a later cache hit would.
    st.config = await this.imageState(st.imageId);
    await this.record(key, st.imageId);
  }

  /** The cached image for a step (local, else --cache-from), unless --no-cache or --cache-ttl rule it out. */
  private async cached(key: string): Promise<string | null> {
    if (this.o.noCache || this.o.cacheTtlMs === 0) return null;
    const local = lookupCache(this.store, key, this.o.cacheTtlMs);
    if (local) return local;
    for (const repo of this.o.remoteCache?.from ?? []) {
      const id = await this.o.remoteCache!.fetch(`${repo}:${key}`);
      if (id) {
        recordCache(this.store, key, id);
        return id;
      }
    }
    return null;
  }

  /** Records a step's image in the local cache and pushes it to every --cache-to repository. */
  private async record(key: string, imageId: string): Promise<void> {
    recordCache(this.store, key, imageId);
    for (const repo of this.o.remoteCache?.to ?? []) await this.o.remoteCache!.push(imageId, `${repo}:${key}`);
  }

  private async useCached(st: Stage, imageId: string): Promise<void> {
    if (!this.o.quiet) this.o.out(`--> Using cache ${imageId}`);
    st.imageId = imageId;
    const cfg = await this.imageState(imageId);
    // Stage-local state that is not in the image config survives the cache hit.
    st.config = cfg;
  }

  /** An image with the parent's layers and the working config plus one empty_layer history entry. */
  private async commitConfigOnly(st: Stage, createdBy: string, names: string[], final = false): Promise<string> {
    const parent = st.imageId ? this.store.getImage(st.imageId) : undefined;
    const chain = parent ? this.store.layerChain(parent.topLayer) : [];
    const image = structuredClone(st.config.image);
    const created = this.now();
    image.created = created;
    image.rootfs = { type: 'layers', diff_ids: chain.map((l) => l.diffId) };
    const omit = final && !!this.o.omitHistory;
    image.history = omit ? [] : [...(image.history ?? [])];
    if (createdBy && !omit) image.history.push({ created, created_by: createdBy, empty_layer: true });
    st.config.image.history = structuredClone(image.history);
    const img = await writeImage(this.store, image, chain, { format: this.o.format, annotations: st.config.annotations, names, created });
    return img.id;
  }

  /** A step that changes files: run in the working container; in layers mode commit and cache it. */
  private async changeStep(st: Stage, createdBy: string, layers: boolean, finalStep: boolean, key: string | null, act: (b: Builder) => Promise<void>): Promise<void> {
    if (finalStep) this.applyCliMeta(st);
    if (layers && key) {
      const hit = await this.cached(key);
      if (hit) {
        await this.useCached(st, hit);
        return;
      }
    }
    const b = await this.ensureBuilder(st);
    await act(b);
    if (!layers) {
      st.config.image.history!.push({ created: this.now(), created_by: createdBy, empty_layer: true });
      return;
    }
    b.state.config = structuredClone(st.config);
    b.state.config.createdBy = createdBy;
    // rm: the step's container is not used again, so the commit may take its upper dir as the layer.
    const res = await commitBuilder(this.store, b, {
      format: this.o.format, names: [], rm: true, omitHistory: finalStep && !!this.o.omitHistory, ...(this.o.timestamp !== undefined && { timestamp: this.o.timestamp }),
    });
    await this.dropBuilder(st);
    st.imageId = res.imageId;
    st.config = await this.imageState(res.imageId);
    if (key) await this.record(key, res.imageId);
  }

  private async runStep(st: Stage, ins: Instruction, layers: boolean, finalStep: boolean): Promise<void> {
    const args = this.runArgs(st);
    let argv: string[];
    let text: string;
    if (ins.json) {
      argv = ins.json;
      text = ins.json.join(' ');
    } else if (ins.heredocs.length) {
      const cmd = ins.args.replace(/<<-?\s*(?:"[A-Za-z_][A-Za-z0-9_]*"|'[A-Za-z_][A-Za-z0-9_]*'|[A-Za-z_][A-Za-z0-9_]*)/g, '').trim();
      if (cmd === '' && ins.heredocs.length === 1) {
        // RUN <<EOF: the body is the script.
        text = ins.heredocs[0]!.content;
      } else {
        // A command reading heredocs: the shell gets the line and the bodies, as it would in a script.
        text = `${ins.args}\n${ins.heredocs.map((h) => `${h.content}${h.name}\n`).join('')}`;
      }
      argv = [...st.shell, text];
    } else {
      text = ins.args;
      argv = [...st.shell, ins.args];
    }
    const shown = ins.json ? text : `${st.shell.join(' ')} ${text}`;
    const hist = args.filter(([k]) => !PROXY_ARGS.includes(k));
    const createdBy = hist.length ? `|${hist.length} ${hist.map(([k, v]) => `${k}=${v}`).join(' ')} ${shown}` : shown;

    const vars = this.stageVars(st);
    const mounts: string[] = [];
    const mountKey: unknown[] = [];
    const mountEnv: string[] = [];
    let sshMounts = 0;
    let network: Network | undefined = this.o.network;
    for (const f of ins.flags) {
      if (f.name === 'mount') {
        const m = await this.runMount(st, ins, this.expand(ins, f.value, vars), sshMounts);
        mountKey.push(m.key);
        if (m.spec) mounts.push(m.spec);
        if (m.sshAgent) {
          // BuildKit points SSH_AUTH_SOCK at the first ssh mount.
          if (!sshMounts) mountEnv.push(`SSH_AUTH_SOCK=${m.sshAgent}`);
          sshMounts++;
        }
      } else if (f.name === 'network') {
        const n = f.value === 'default' ? (this.o.network ?? 'host') : f.value;
        if (n !== 'host' && n !== 'none' && n !== 'private') this.fail(ins, `unsupported RUN --network "${f.value}" (default, none, host)`);
        network = n;
      } else if (f.name === 'security') {
        if (f.value !== 'sandbox') this.fail(ins, `RUN --security=${f.value} is not supported`);
      }
    }
    const key = cacheKey({ v: 1, kind: 'run', parent: this.parentKey(st), argv, args, mounts: mountKey, network: network ?? null, config: st.config.image.config, format: this.o.format, ts: this.o.timestamp ?? null, final: this.finalMeta(finalStep) });
    await this.changeStep(st, createdBy, layers, finalStep, key, async (b) => {
      const ro: RunOptions = {
        ...this.o.run,
        // ENV wins over an ARG of the same name.
        env: [...args.filter(([k]) => !(b.state.config.image.config?.Env ?? []).some((x) => x.startsWith(`${k}=`))).map(([k, v]) => `${k}=${v}`), ...mountEnv],
        volumes: this.o.volumes,
        mounts,
        stdin: !!this.o.stdin,
        ...(this.o.runOutput !== undefined && { output: this.o.runOutput }),
        ...(network && { network }),
        ...(this.o.runtime && { runtime: this.o.runtime }),
      };
      let code: number;
      try {
        code = await runInBuilder(this.store, b, argv, ro);
      } catch (e) {
        this.fail(ins, `while running runtime: ${(e as Error).message}`);
      }
      if (code !== 0) {
        // A foreign architecture's binaries fail to execute ("exec format error") without an emulator.
        const cfg = b.state.config.image;
        const foreign = platformMatches(cfg, { architecture: hostArch() }) ? '' : `; the stage is ${describePlatform(cfg)} and this host runs ${hostArch()} programs only, unless an emulator for ${cfg.architecture} is registered with binfmt_misc (qemu-user-static)`;
        this.fail(ins, `while running runtime: exit status ${code}${foreign}`, code);
      }
    });
  }

  /**
   * RUN --mount=type=cache|bind|secret|tmpfs|ssh -> a runInBuilder --mount spec (null when an
   * optional agent is absent), the part of the cache key it contributes, and for an ssh mount
   * where the agent's socket appears. `sshIndex` numbers the step's ssh mounts.
   */
  private async runMount(st: Stage, ins: Instruction, spec: string, sshIndex: number): Promise<{ spec: string | null; key: unknown; sshAgent?: string }> {
    const { kv, flags } = parseMountOptions(spec);
    const type = kv.get('type') ?? 'bind';
    const target = kv.get('target') ?? kv.get('dst') ?? kv.get('destination');
    const ro = flags.has('ro') || flags.has('readonly') || kv.get('ro') === 'true' || kv.get('readonly') === 'true';
    const rw = flags.has('rw') || flags.has('readwrite') || kv.get('rw') === 'true';
    const abs = (t: string): string => (posix.isAbsolute(t) ? t : posix.join(st.config.image.config?.WorkingDir || '/', t));
    switch (type) {
      case 'tmpfs':
        if (!target) this.fail(ins, `invalid mount "${spec}": target is required`);
        return { spec: `type=tmpfs,destination=${abs(target)}${kv.has('size') ? `,tmpfs-size=${kv.get('size')}` : ''}`, key: spec };
      case 'cache': {
        if (!target) this.fail(ins, `invalid mount "${spec}": target is required`);
        const id = kv.get('id') ?? abs(target);
        const dir = join(this.store.root, 'build-cache-mounts', cacheKey({ id }).slice(0, 32));
        await mkdir(dir, { recursive: true, mode: 0o755 });
        return { spec: `type=bind,source=${dir},destination=${abs(target)}${ro ? ',ro' : ''}`, key: { type, target } };
      }
      case 'secret': {
        const id = kv.get('id') ?? (target ? posix.basename(target) : undefined);
        if (!id) this.fail(ins, `invalid mount "${spec}": secret id is required`);
        const src = this.o.secrets.get(id);
        const required = kv.get('required') === 'true' || flags.has('required');
        if (!src) {
          if (required) this.fail(ins, `secret ${id}: not provided (use --secret id=${id},src=FILE)`);
          return { spec: `type=tmpfs,destination=${target ?? `/run/secrets/${id}`}`, key: { type, id, missing: true } };
        }
        // The secret's content never enters the cache key, only its id.
        return { spec: `type=bind,source=${src},destination=${target ?? `/run/secrets/${id}`},ro`, key: { type, id, target: target ?? null } };
      }
      case 'ssh': {
        const id = kv.get('id') || 'default';
        const dst = target ? abs(target) : `/run/buildkit/ssh_agent.${sshIndex}`;
        const sock = this.o.ssh.get(id);
        if (!sock) {
          // As BuildKit: an ssh mount is optional unless `required` says otherwise.
          if (flags.has('required') || kv.get('required') === 'true') this.fail(ins, `no SSH agent socket or key for id "${id}" (use --ssh ${id === 'default' ? 'default' : `${id}=SOCKET`})`);
          return { spec: null, key: { type, id, dst, missing: true } };
        }
        // The agent's socket is bind-mounted; what it holds never enters the cache key.
        return { spec: `type=bind,source=${sock},destination=${dst}`, key: { type, id, dst }, sshAgent: dst };
      }
      case 'bind': {
        const dst = target ? abs(target) : undefined;
        if (!dst) this.fail(ins, `invalid mount "${spec}": target is required`);
        const source = kv.get('source') ?? kv.get('src') ?? '/';
        const from = kv.get('from');
        const src: FromSource = from ? await this.fromSource(st, ins, from) : this.mainContext();
        let host: string;
        let contentKey: unknown;
        if (src.kind === 'root') {
          host = await resolveInRoot(await this.mountRoot(src), source);
          contentKey = src.key;
        } else {
          host = await resolveInRoot(src.path, source);
          contentKey = await this.hasher.treeHash(host, (rel) => src.ignore.skip(posix.join(posix.normalize('/' + source).slice(1), rel)));
        }
        if (!(await lstat(host).catch(() => null))) this.fail(ins, `invalid mount "${spec}": source "${source}" not found`);
        // Docker makes bind mounts read-only unless rw is asked for; writes never reach the source here
        // because a writable bind still writes through, so rw is refused rather than faked.
        if (rw) this.fail(ins, 'RUN --mount=type=bind,rw is not supported (writes would reach the build context)');
        return { spec: `type=bind,source=${host},destination=${dst},ro`, key: { type, source, dst, contentKey } };
      }
      default:
        this.fail(ins, `invalid mount "${spec}": type "${type}" is not supported (bind, cache, secret, ssh, tmpfs)`);
    }
  }

  /** The build context as a source, with its ignore rules. */
  private mainContext(): FromSource {
    return { kind: 'dir', path: resolvePath(this.o.contextDir), ignore: this.o.ignore };
  }

  /** The root filesystem of a stage's container or an image, mounted for reading. */
  private async mountRoot(src: { ref: string }): Promise<string> {
    const c = this.store.findContainer(src.ref);
    if (c) return this.store.mountContainer(c);
    const b = await fromImage(this.store, src.ref, this.fromOpts());
    this.containers.add(b);
    return this.store.mountContainer(b.container);
  }

  /**
   * `--from=` (COPY) or `from=` (RUN --mount): a named build context first, then a stage by name
   * or index, then an image, as Buildah looks them up.
   */
  private async fromSource(st: Stage, ins: Instruction, from: string): Promise<FromSource> {
    // Errors name the flag as the instruction spells it.
    const flag = ins.keyword === 'RUN' ? `--mount from=${from}` : `${ins.keyword} --from=${from}`;
    const lower = from.toLowerCase();
    let idx = this.stageNames.get(lower);
    if (idx === undefined && /^\d+$/.test(from)) idx = Number(from);
    const ctx = this.o.contexts?.get(from);
    if (ctx?.kind === 'dir') return ctx;
    if (ctx) return this.imageSource(ins, ctx.ref, `${flag}: build context ${from}`, true);
    if (idx !== undefined) {
      if (idx >= st.def.index) this.fail(ins, `${flag}: stage is not defined before this one`);
      const r = this.results.get(idx);
      if (!r) this.fail(ins, `${flag}: stage was not built`);
      if (r.imageId) return { kind: 'root', ref: r.imageId, key: r.imageId };
      return { kind: 'root', ref: r.builder!.container.id, key: `container:${r.builder!.container.id}` };
    }
    return this.imageSource(ins, from, `${flag}: no stage or image with that name`, false);
  }

  /** An image for --from, local or pulled as the build's pull policy says; a miss fails with `failure` (and why, with `why`). */
  private async imageSource(ins: Instruction, ref: string, failure: string, why: boolean): Promise<FromSource> {
    let img;
    try {
      img = await resolveImage(this.store, ref, this.o.pull, this.o.puller, this.o.platform);
    } catch (e) {
      this.fail(ins, why ? `${failure}: ${(e as Error).message}` : failure);
    }
    return { kind: 'root', ref: img.id, key: img.id };
  }

  /**
   * An ADD source that is a git repository: cloned now into a private directory (removed with the
   * build's other temporary files), so that the cache key can name the commit the ref resolved to
   * and a moved branch is not served from the cache.
   */
  private async gitSource(ins: Instruction, git: GitSource, keepGitDir: boolean, checksum: string | undefined, exclude: IgnoreMatcher | null) {
    const dir = await mkdtemp(join(tmpdir(), 'barge-git-'));
    this.tempDirs.push(dir);
    let repo;
    try {
      repo = await cloneGit(git, dir, keepGitDir);
    } catch (e) {
      this.failAt(ins, (e as Error).message);
    }
    if (checksum !== undefined && !repo.commit.startsWith(checksum)) this.failAt(ins, `${git.url}: checksum mismatch: expected commit ${checksum}, got ${repo.commit}`);
    const key = `git:${git.remote}@${repo.commit}${git.subdir !== null ? `:${git.subdir}` : ''}${keepGitDir ? '+.git' : ''}`;
    return { root: repo.dir, rel: '', label: git.url, key, skip: (p: string) => exclude !== null && exclude.skip(p) };
  }

  private async copyStep(st: Stage, ins: Instruction, layers: boolean, finalStep: boolean, vars: Map<string, string>): Promise<void> {
    const add = ins.keyword === 'ADD';
    const flag = (n: string): string | undefined => ins.flags.filter((f) => f.name === n).at(-1)?.value;
    const chown = flag('chown') !== undefined ? this.expand(ins, flag('chown')!, vars) : undefined;
    const chmod = flag('chmod') !== undefined ? this.expand(ins, flag('chmod')!, vars) : undefined;
    if (chmod !== undefined && !/^[0-7]{3,4}$/.test(chmod)) this.fail(ins, `invalid --chmod "${chmod}": expected an octal mode such as 0755`);
    const fromFlag = flag('from') !== undefined ? this.expand(ins, flag('from')!, vars) : undefined;
    if (fromFlag !== undefined && add) this.fail(ins, 'ADD does not support --from; use COPY --from');
    const parents = boolFlag(ins, 'parents');
    // (--link asks BuildKit for a layer it can rebase onto another parent. The files that land
    // are the same either way, so once the parser has checked its value it changes nothing here.)
    const keepGitDir = boolFlag(ins, 'keep-git-dir');
    const checksum = flag('checksum') !== undefined ? this.expand(ins, flag('checksum')!, vars) : undefined;
    const excludes = ins.flags.filter((f) => f.name === 'exclude').map((f) => this.expand(ins, f.value, vars));
    const words = ins.json ? ins.json.map((w) => this.expand(ins, w, vars)) : this.expandList(ins, ins.args, vars);
    // "." and "x/." name directories, as a trailing slash does (`WORKDIR /src` + `COPY a.c .`).
    const destWord = words.pop()!;
    const dest = destWord === '.' || destWord.endsWith('/.') ? destWord.slice(0, -1) || './' : destWord;
    const srcWords = words;
    if (!srcWords.length) this.fail(ins, `${ins.keyword} requires at least two arguments`);
    // ADD --checksum pins one remote source, as in BuildKit: a download's digest or a git commit.
    const gitOf = (w: string): GitSource | null => {
      try {
        return add ? parseGitSource(w, { shorthand: false }) : null;
      } catch (e) {
        this.failAt(ins, (e as Error).message);
      }
    };
    if (checksum !== undefined) {
      if (srcWords.length > 1) this.failAt(ins, "checksum can't be specified for multiple sources");
      const git = gitOf(srcWords[0]!) !== null;
      if (!git && !/^https?:\/\//.test(srcWords[0]!)) this.failAt(ins, "checksum can't be specified for non-HTTP(S) sources");
      if (git ? !/^[0-9a-f]{7,64}$/.test(checksum) : !isValidDigest(checksum)) {
        this.failAt(ins, `invalid --checksum "${checksum}": expected ${git ? 'a commit id' : 'sha256:HEX (or sha512:HEX)'}`);
      }
    }

    // Heredoc sources become files in a private directory that acts as their context.
    const heredocSrcs = new Map<string, string>();
    if (ins.heredocs.length) {
      const dir = await mkdtemp(join(tmpdir(), 'barge-heredoc-'));
      this.tempDirs.push(dir);
      for (const h of ins.heredocs) {
        // Only variable references are expanded in a heredoc body; quotes and backslashes stay.
        const content = h.expand ? h.content.replace(/\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*/g, (ref) => this.expand(ins, ref, vars)) : h.content;
        await writeFile(join(dir, h.name), content, { mode: 0o644 });
        heredocSrcs.set(h.name, dir);
      }
    }
    const isHeredocWord = (w: string): string | null => {
      const m = /^<<-?["']?([A-Za-z_][A-Za-z0-9_]*)["']?$/.exec(w);
      return m && heredocSrcs.has(m[1]!) ? m[1]! : null;
    };

    const { makeMatcher } = await import('./ignore.ts');
    const extraExclude = excludes.length ? makeMatcher(excludes) : null;
    // `into` is where --parents puts a source (see parentsPath); `skip(path)` says whether a path
    // (relative to the source's root) stays out: the ignore file's rules and --exclude.
    // `key` stands for the content in the cache key when it names it exactly (a git commit).
    type Src = { root: string; rel: string; label: string; into?: string; key?: string; skip: (path: string) => boolean };
    const sources: Src[] = [];
    const urls: string[] = [];
    const from = fromFlag !== undefined ? await this.fromSource(st, ins, fromFlag) : this.mainContext();
    // A directory (the build context, or a named one) is read with its ignore rules; the root of a
    // stage or image with none.
    const dir = from.kind === 'dir' ? from : null;
    let fromRoot: string | null = null;
    for (const w of srcWords) {
      const hd = isHeredocWord(w);
      if (hd) {
        sources.push({ root: heredocSrcs.get(hd)!, rel: hd, label: `heredoc:${hd}`, skip: () => false });
        continue;
      }
      const git = gitOf(w);
      if (git) {
        sources.push(await this.gitSource(ins, git, keepGitDir, checksum, extraExclude));
        continue;
      }
      if (add && /^https?:\/\//.test(w)) {
        urls.push(w);
        continue;
      }
      if (/^[a-z]+:\/\//.test(w) || /^git@/.test(w)) this.fail(ins, `${ins.keyword}: source "${w}" is not supported`);
      const root = dir ? dir.path : (fromRoot ??= await this.mountRoot(from as { ref: string }));
      const ignored = (rel: string): boolean => dir !== null && dir.ignore.skip(rel);
      const excluded = (base: string, rel: string): boolean => extraExclude !== null && extraExclude.skip(relativeTo(base, rel));
      const wildBase = wildcardBase(w);
      const before = sources.length;
      for (const rel of await glob(root, w, (rel) => ignored(rel) || (wildBase !== null && excluded(wildBase, rel)))) {
        // As BuildKit, --exclude patterns are relative to where the source's entries are named:
        // before a wildcard, inside a directory named as the source, or beside a named file.
        let base = wildBase;
        if (base === null) {
          const isDir = (await lstat(await resolveInRoot(root, rel)).catch(() => null))?.isDirectory() ?? false;
          base = isDir ? rel : parentOf(rel);
          if (!isDir && excluded(base, rel)) continue;
        }
        const b = base;
        sources.push({ root, rel, label: rel, ...(parents && { into: parentsPath(w, rel) }), skip: (p) => ignored(p) || excluded(b, p) });
      }
      if (sources.length === before) this.fail(ins, `checking on sources under "${fromFlag === undefined ? this.o.contextDir : (dir?.path ?? fromFlag)}": copier: stat: "${posix.normalize('/' + w)}": no such file or directory`);
    }
    if (parents && (urls.length || sources.some((x) => x.into === undefined))) this.fail(ins, `${ins.keyword} --parents takes files from the context or --from only`);
    const multi = sources.length + urls.length > 1;
    if (multi && !parents && !dest.endsWith('/') && !(srcWords.length === 1 && /[*?[]/.test(srcWords[0]!))) {
      this.fail(ins, `when using ${ins.keyword} with more than one source file, the destination must be a directory and end with a /`);
    }
    const destArg = (multi || parents) && !dest.endsWith('/') ? `${dest}/` : dest;

    // Content hash: what is copied, as it will be copied (for the cache and the history text).
    let contentHash: string | null = null;
    let key: string | null = null;
    if (layers) {
      const parts: string[] = [];
      for (const s of sources) {
        if (s.key !== undefined) {
          parts.push(s.key);
        } else if (dir && s.root === dir.path) {
          // A directory's files are hashed: its content, not its name, is what the step depends on.
          const host = await resolveInRoot(dir.path, s.rel);
          const real = await realpath(host).catch(() => host);
          if (real !== dir.path && !real.startsWith(dir.path + '/')) this.fail(ins, `copier: "${s.rel}" is outside the build context`);
          parts.push(`${s.rel}${s.into !== undefined ? `>${s.into}` : ''}:${await this.hasher.treeHash(host, (rel) => s.skip(posix.join(s.rel, rel)))}`);
        } else if (from.kind === 'root' && s.root === fromRoot) {
          parts.push(`${s.rel}@${from.key}${s.into !== undefined ? `>${s.into}` : ''}`);
        } else {
          parts.push(`${s.label}:${await this.hasher.treeHash(join(s.root, s.rel), () => false)}`);
        }
      }
      contentHash = cacheKey(parts);
      // A URL's content is known only after downloading it, so it is cached only under --checksum.
      if (checksum !== undefined) parts.push(...urls.map((u) => `${u}@${checksum}`));
      key = urls.length && checksum === undefined
        ? null
        : cacheKey({ v: 1, kind: ins.keyword, parent: this.parentKey(st), parts, excludes, dest: destArg, chown: chown ?? null, chmod: chmod ?? null, workdir: st.config.image.config?.WorkingDir ?? '', format: this.o.format, ts: this.o.timestamp ?? null, final: this.finalMeta(finalStep) });
    }
    const kind = multi ? 'multi' : (await lstat(sources[0] ? join(sources[0].root, sources[0].rel) : '/nonexistent').catch(() => null))?.isDirectory() ? 'dir' : 'file';
    // Buildah names the destination as written, before expansion.
    const destAsWritten = ins.json ? ins.json.at(-1)! : splitKeepQuotes(ins.args, this.o.parsed.escape).at(-1)!;
    const createdBy = `/bin/sh -c #(nop) ${ins.keyword} ${contentHash ? `${kind}:${contentHash}` : srcWords.join(' ')} in ${destAsWritten} `;

    await this.changeStep(st, createdBy, layers, finalStep, key, async (b) => {
      try {
        for (const s of sources) {
          await copyIntoBuilder(this.store, b, [s.rel === '' ? '.' : s.rel], s.into ? posix.join(destArg, s.into) : destArg, {
            add,
            contextDir: s.root,
            ...(chown !== undefined && { chown }),
            ...(chmod !== undefined && { chmod }),
            exclude: (rel: string) => s.skip(posix.join(s.rel, rel)),
          });
        }
        if (urls.length) {
          await copyIntoBuilder(this.store, b, urls, destArg, { add: true, ...(chown !== undefined && { chown }), ...(chmod !== undefined && { chmod }), ...(checksum !== undefined && { checksum }) });
        }
      } catch (e) {
        if (e instanceof BuildError) throw e;
        // A download is the one part of the step that depends on somebody else's server.
        if (urls.length) this.failAt(ins, (e as Error).message);
        this.fail(ins, (e as Error).message);
      }
    });
  }
}

