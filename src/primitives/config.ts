// `buildah config` semantics on barge's builder state, modelled on what Buildah 1.28.2 actually
// does (observed by running it), including its quirks: the point is that scripts written for
// Buildah give the same image with barge.

import type { ContainerConfig, HealthConfig, HistoryEntry, ImageConfig, ManifestFormat } from '../image/types.ts';
import { hostArch } from './builder.ts';

/** What a working container carries until commit. */
export interface BuilderConfig {
  /** Docker superset: Docker-only keys (Hostname, Domainname, Healthcheck, OnBuild, Shell) stay in image.config. */
  image: ImageConfig;
  /** Manifest annotations. */
  annotations: Record<string, string>;
  /** --history-comment for the next commit. */
  historyComment?: string;
  /** --created-by for the next commit. */
  createdBy?: string;
}

/** Each as given on the command line; repeatable options are arrays, one element per occurrence. */
export interface ConfigOptions {
  annotation?: string[];
  arch?: string;
  author?: string;
  cmd?: string;
  comment?: string;
  createdBy?: string;
  domainname?: string;
  entrypoint?: string;
  env?: string[];
  healthcheck?: string;
  healthcheckInterval?: string;
  healthcheckRetries?: string;
  healthcheckStartPeriod?: string;
  healthcheckStartInterval?: string;
  healthcheckTimeout?: string;
  historyComment?: string;
  hostname?: string;
  label?: string[];
  onbuild?: string[];
  os?: string;
  osFeature?: string[];
  osVersion?: string;
  /** Each occurrence is split on commas (CSV), as Buildah's string-slice flags are. */
  port?: string[];
  shell?: string;
  stopSignal?: string;
  user?: string;
  variant?: string;
  /** Each occurrence is split on commas (CSV), as Buildah's string-slice flags are. */
  volume?: string[];
  workingdir?: string;
  /** buildah --unsetlabel */
  unsetLabel?: string[];
}

export interface ApplyConfigContext {
  /** The working container's format: Docker-only settings draw a warning for 'oci' (the default). */
  format?: ManifestFormat;
  /** Non-fatal diagnostics, worded as Buildah words them. */
  warn?: (message: string) => void;
  /** Where `--env NAME` (no "=") finds its value; process.env by default. */
  getenv?: (name: string) => string | undefined;
  /** Filled in when the architecture / OS is empty; the host's by default. */
  hostArch?: string;
  hostOS?: string;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Mutable = ImageConfig & { 'os.features'?: string[] };
type PathSet = Record<string, Record<string, never>>;

/**
 * `buildah config`: returns an updated copy of `cfg`. Options are applied in Buildah's fixed
 * order (not command-line order), and the first bad value throws a ConfigError with Buildah's
 * message, leaving `cfg` untouched as Buildah leaves the container unsaved.
 */
export function applyConfig(cfg: BuilderConfig, opts: ConfigOptions, ctx: ApplyConfigContext = {}): BuilderConfig {
  const warn = ctx.warn ?? (() => {});
  const oci = (ctx.format ?? 'oci') === 'oci';
  const getenv = ctx.getenv ?? ((n: string) => process.env[n]);

  // Flag-parsing failures come before anything is applied.
  const retries = opts.healthcheckRetries !== undefined ? parseFlagInt('--healthcheck-retries', opts.healthcheckRetries) : undefined;
  const ports = splitSliceFlag('-p, --port', opts.port);
  const volumes = splitSliceFlag('-v, --volume', opts.volume);
  const onbuilds = splitSliceFlag('--onbuild', opts.onbuild);

  const out: BuilderConfig = structuredClone(cfg);
  const img = out.image as Mutable;
  const c: ContainerConfig = (img.config ??= {});

  if (opts.author !== undefined) setOrDelete(img, 'author', opts.author);
  if (opts.createdBy !== undefined) setOrDelete(out, 'createdBy', opts.createdBy);
  if (opts.arch !== undefined) img.architecture = opts.arch;
  if (opts.os !== undefined) img.os = opts.os;
  if (opts.osVersion !== undefined) setOrDelete(img, 'os.version', opts.osVersion);
  if (opts.variant !== undefined) setOrDelete(img, 'variant', opts.variant);
  if (opts.osFeature !== undefined) {
    for (const f of opts.osFeature) {
      if (f === '-') img['os.features'] = [];
      else if (f.endsWith('-')) img['os.features'] = (img['os.features'] ?? []).filter((x) => x !== f.slice(0, -1));
      else if (!(img['os.features'] ?? []).includes(f)) img['os.features'] = [...(img['os.features'] ?? []), f];
    }
    if (!img['os.features']?.length) delete img['os.features'];
  }
  if (opts.user !== undefined) setOrDelete(c, 'User', opts.user);
  if (opts.shell !== undefined) {
    const shell = wordsOrFail('--shell', opts.shell);
    if (shell.length) {
      c.Shell = shell;
      if (oci) warn(`SHELL is not supported for OCI image format, [${shell.join(' ')}] will be ignored. Must use \`docker\` format`);
    } else {
      delete c.Shell;
    }
  }
  if (opts.stopSignal !== undefined) setOrDelete(c, 'StopSignal', opts.stopSignal);
  for (const p of ports) c.ExposedPorts = editPathSet(c.ExposedPorts, p);
  if (opts.env) applyEnv(c, opts.env, getenv, warn);
  if (opts.entrypoint !== undefined) {
    const ep = opts.entrypoint;
    const current = c.Cmd ?? [];
    if (ep.trim() === '') {
      c.Entrypoint = [];
    } else {
      const json = jsonStringArray(ep);
      if (json) {
        c.Entrypoint = json;
        if (current.length) warn(`cmd ${goQuote(current.join(' '))} exists and will be passed to entrypoint as a parameter`);
      } else {
        c.Entrypoint = ['/bin/sh', '-c', ep];
        if (current.length) warn(`cmd ${goQuote(current.join(' '))} exists but will be ignored because of entrypoint settings`);
      }
    }
  }
  if (opts.cmd !== undefined) c.Cmd = jsonStringArray(opts.cmd) ?? wordsOrFail('--cmd', opts.cmd);
  for (const v of volumes) c.Volumes = editPathSet(c.Volumes, v);
  applyHealthcheck(c, opts, retries, oci, warn);
  if (opts.label) {
    for (const spec of opts.label) {
      if (spec === '-') c.Labels = {};
      else c.Labels = editKeyValue(c.Labels, spec);
    }
  }
  if (opts.unsetLabel && c.Labels) for (const k of opts.unsetLabel) delete c.Labels[k];
  if (opts.workingdir !== undefined) setOrDelete(c, 'WorkingDir', opts.workingdir);
  if (opts.comment !== undefined) {
    if (opts.comment && oci) warn(`COMMENT is not supported for OCI image format, comment ${opts.comment} will be ignored. Must use \`docker\` format`);
    setOrDelete(img, 'comment', opts.comment);
  }
  if (opts.historyComment !== undefined) setOrDelete(out, 'historyComment', opts.historyComment);
  if (opts.domainname !== undefined) {
    if (opts.domainname && oci) warn(`DOMAINNAME is not supported for OCI image format, domainname ${opts.domainname} will be ignored. Must use \`docker\` format`);
    setOrDelete(c, 'Domainname', opts.domainname);
  }
  if (opts.hostname !== undefined) {
    if (opts.hostname && oci) warn(`HOSTNAME is not supported for OCI V1 image format, hostname ${opts.hostname} will be ignored. Must use \`docker\` format`);
    setOrDelete(c, 'Hostname', opts.hostname);
  }
  for (const ob of onbuilds) {
    if (ob && oci) warn(`ONBUILD is not supported for OCI image format, ${ob} will be ignored. Must use \`docker\` format`);
    c.OnBuild = [...(c.OnBuild ?? []), ob];
  }
  if (opts.annotation) {
    for (const spec of opts.annotation) {
      // Buildah drops the whole map, base-image annotations included.
      if (spec === '-') out.annotations = {};
      else out.annotations = editKeyValue(out.annotations, spec) ?? {};
    }
  }

  fixupPlatform(img, ctx.hostArch ?? hostArch(), ctx.hostOS ?? hostOS());
  return out;
}

function setOrDelete<T extends object, K extends keyof T>(obj: T, key: K, value: string): void {
  // Every one of these is `omitempty` on the wire, so an empty string and absence are the same thing.
  if (value === '') delete obj[key];
  else (obj as Record<K, string>)[key] = value;
}

function defineKey<V>(obj: Record<string, V>, key: string, value: V): void {
  // defineProperty, so that a key such as "__proto__" is stored rather than swallowed.
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/** "-" empties the set, "X-" removes X if present (and is otherwise a no-op), anything else is added verbatim. */
function editPathSet(set: PathSet | undefined, spec: string): PathSet | undefined {
  if (spec === '-') return {};
  if (spec.endsWith('-')) {
    if (set) delete set[spec.slice(0, -1)];
    return set;
  }
  const next = set ?? {};
  defineKey(next, spec, {});
  return next;
}

/** The KEY=VALUE words of --label and --annotation set on `into`, a bare KEY as an empty value. */
export function setKeyValues(into: Record<string, string>, pairs: readonly string[]): Record<string, string> {
  for (const p of pairs) {
    const eq = p.indexOf('=');
    defineKey(into, eq < 0 ? p : p.slice(0, eq), eq < 0 ? '' : p.slice(eq + 1));
  }
  return into;
}

/** "K=V" sets, "K-" removes, a bare "K" sets an empty value. */
function editKeyValue(map: Record<string, string> | undefined, spec: string): Record<string, string> | undefined {
  const eq = spec.indexOf('=');
  if (eq < 0 && spec.endsWith('-')) {
    if (map) delete map[spec.slice(0, -1)];
    return map;
  }
  const next = map ?? {};
  if (eq < 0) defineKey(next, spec, '');
  else defineKey(next, spec.slice(0, eq), spec.slice(eq + 1));
  return next;
}

function applyEnv(c: ContainerConfig, specs: string[], getenv: (n: string) => string | undefined, warn: (m: string) => void): void {
  const lookup = (name: string): string => {
    for (const e of c.Env ?? []) {
      const eq = e.indexOf('=');
      if (eq >= 0 && e.slice(0, eq) === name) return e.slice(eq + 1);
    }
    // Buildah logs this and substitutes the bare name.
    warn(`error expanding variable ${goQuote(name)}: no value set in configuration`);
    return name;
  };
  const without = (name: string): string[] => (c.Env ?? []).filter((e) => !e.startsWith(`${name}=`));
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    if (eq >= 0) {
      const name = spec.slice(0, eq);
      const value = goExpand(spec.slice(eq + 1), lookup);
      c.Env = [...without(name), `${name}=${value}`];
    } else if (spec === '-') {
      c.Env = [];
    } else if (spec.endsWith('-')) {
      c.Env = without(spec.slice(0, -1));
    } else {
      // The caller's value is taken literally: no expansion against the image's environment.
      const value = getenv(spec);
      if (!value) throw new ConfigError(`setting env ${goQuote(spec)}: no value given`);
      c.Env = [...without(spec), `${spec}=${value}`];
    }
  }
}

const SECOND = 1_000_000_000;

function applyHealthcheck(
  c: ContainerConfig, opts: ConfigOptions, retries: number | undefined, oci: boolean, warn: (m: string) => void,
): void {
  const touched = opts.healthcheck !== undefined || opts.healthcheckInterval !== undefined || retries !== undefined
    || opts.healthcheckStartPeriod !== undefined || opts.healthcheckStartInterval !== undefined || opts.healthcheckTimeout !== undefined;
  if (!touched) return;
  // With no healthcheck yet, Buildah starts from Docker's defaults with a "NONE" test.
  const hc: HealthConfig = c.Healthcheck ? { ...c.Healthcheck } : { Test: ['NONE'], Interval: 30 * SECOND, Timeout: 30 * SECOND, Retries: 3 };
  if (opts.healthcheck !== undefined) hc.Test = wordsOrFail('--healthcheck', opts.healthcheck);
  const dur = (flag: string, v: string): number => {
    try {
      return parseDuration(v);
    } catch (e) {
      throw new ConfigError(`parsing ${flag} ${goQuote(v)}: ${(e as Error).message}`);
    }
  };
  if (opts.healthcheckInterval !== undefined) hc.Interval = dur('--healthcheck-interval', opts.healthcheckInterval);
  if (retries !== undefined) hc.Retries = retries;
  if (opts.healthcheckStartPeriod !== undefined) hc.StartPeriod = dur('--healthcheck-start-period', opts.healthcheckStartPeriod);
  if (opts.healthcheckStartInterval !== undefined) hc.StartInterval = dur('--healthcheck-start-interval', opts.healthcheckStartInterval);
  if (opts.healthcheckTimeout !== undefined) hc.Timeout = dur('--healthcheck-timeout', opts.healthcheckTimeout);
  if (!hc.Test?.length) {
    delete c.Healthcheck;
    return;
  }
  c.Healthcheck = healthOut(hc);
  if (oci) warn('HEALTHCHECK is not supported for OCI image format and will be ignored. Must use `docker` format');
}

/** Docker's field order, zero values left out as `omitempty` does. */
function healthOut(h: HealthConfig): HealthConfig {
  const o: HealthConfig = {};
  if (h.Test?.length) o.Test = [...h.Test];
  if (h.Interval) o.Interval = h.Interval;
  if (h.Timeout) o.Timeout = h.Timeout;
  if (h.StartPeriod) o.StartPeriod = h.StartPeriod;
  if (h.StartInterval) o.StartInterval = h.StartInterval;
  if (h.Retries) o.Retries = h.Retries;
  return o;
}

/** Go's json.Unmarshal into []string: null is accepted (as empty) and so are null elements (as ""). */
function jsonStringArray(s: string): string[] | null {
  let v: unknown;
  try {
    v = JSON.parse(s);
  } catch {
    return null;
  }
  if (v === null) return [];
  if (!Array.isArray(v)) return null;
  const out: string[] = [];
  for (const x of v as unknown[]) {
    if (x === null) out.push('');
    else if (typeof x === 'string') out.push(x);
    else return null;
  }
  return out;
}

function wordsOrFail(flag: string, value: string): string[] {
  try {
    return parseShellWords(value);
  } catch (e) {
    throw new ConfigError(`parsing ${flag} ${goQuote(value)}: ${(e as Error).message}`);
  }
}

/**
 * Word splitting as mattn/go-shellwords v1.0.12 does it for Buildah (no variable or command
 * expansion). Quirks kept on purpose: parsing stops silently at an unquoted ; & | < > (so
 * `a || b` gives ["a"]), a backslash escapes any character even inside double quotes (`\n` is
 * "n"), and a bare parenthesis is an error.
 */
export function parseShellWords(line: string): string[] {
  const args: string[] = [];
  let buf = '';
  let escaped = false, dq = false, sq = false, bq = false, dollar = false;
  let got = false;
  const fail = (): never => {
    throw new ConfigError('invalid command line string');
  };
  scan: for (const r of line) {
    if (escaped) {
      buf += r;
      escaped = false;
      got = true;
      continue;
    }
    if (r === '\\') {
      if (sq) buf += r;
      else escaped = true;
      continue;
    }
    if (r === ' ' || r === '\t' || r === '\r' || r === '\n') {
      if (sq || dq || bq || dollar) buf += r;
      else if (got) {
        args.push(buf);
        buf = '';
        got = false;
      }
      continue;
    }
    switch (r) {
      case '`':
        if (!sq && !dq && !dollar) bq = !bq;
        break;
      case ')':
        if (!sq && !dq && !bq) dollar = !dollar;
        break;
      case '(':
        if (!sq && !dq && !bq) {
          if (dollar || !buf.endsWith('$')) fail();
          dollar = true;
          buf += r;
          continue;
        }
        break;
      case '"':
        if (!sq && !dollar) {
          if (dq) got = true;
          dq = !dq;
          continue;
        }
        break;
      case "'":
        if (!dq && !dollar) {
          if (sq) got = true;
          sq = !sq;
          continue;
        }
        break;
      case ';': case '&': case '|': case '<': case '>':
        if (!(sq || dq || bq || dollar)) {
          // "2>file": the descriptor number is part of the redirection, not a word.
          if (r === '>' && /^[0-9]+$/.test(buf)) got = false;
          break scan;
        }
        break;
    }
    got = true;
    buf += r;
  }
  if (got) args.push(buf);
  if (escaped || sq || dq || bq || dollar) fail();
  return args;
}

/**
 * pflag's string-slice flags read each occurrence as one CSV record (encoding/csv, first record
 * only), so "80,443" is two ports and a stray quote is a usage error.
 */
function splitSliceFlag(flag: string, values: string[] | undefined): string[] {
  const out: string[] = [];
  for (const v of values ?? []) {
    if (v === '') continue;
    try {
      out.push(...csvFirstRecord(v));
    } catch (e) {
      throw new ConfigError(`invalid argument ${goQuote(v)} for ${goQuote(flag)} flag: ${(e as Error).message}`);
    }
  }
  return out;
}

function csvFirstRecord(value: string): string[] {
  const data = Buffer.from(value, 'utf8');
  const NL = 0x0a, CR = 0x0d, QUOTE = 0x22, COMMA = 0x2c;
  let off = 0;
  let numLine = 0;
  const readLine = (): { line: Buffer; eof: boolean } => {
    if (off >= data.length) return { line: Buffer.alloc(0), eof: true };
    const nl = data.indexOf(NL, off);
    let line: Buffer;
    if (nl < 0) {
      line = data.subarray(off);
      off = data.length;
      if (line[line.length - 1] === CR) line = line.subarray(0, -1);
    } else {
      line = data.subarray(off, nl + 1);
      off = nl + 1;
    }
    numLine++;
    if (line.length >= 2 && line[line.length - 1] === NL && line[line.length - 2] === CR) line = Buffer.concat([line.subarray(0, -2), Buffer.from('\n')]);
    return { line, eof: false };
  };
  const nlLen = (b: Buffer): number => (b.length && b[b.length - 1] === NL ? 1 : 0);
  const parseError = (start: number, lineNo: number, col: number, what: string): Error => new Error(start !== lineNo
    ? `record on line ${start}; parse error on line ${lineNo}, column ${col}: ${what}`
    : `parse error on line ${lineNo}, column ${col}: ${what}`);
  const bareQuote = 'bare " in non-quoted-field';
  const badQuote = 'extraneous or missing " in quoted-field';

  let line: Buffer;
  for (;;) {
    const r = readLine();
    if (r.eof) throw new Error('EOF');
    line = r.line;
    if (line.length !== nlLen(line)) break;
  }
  const recLine = numLine;
  const fields: string[] = [];
  let pos = { line: numLine, col: 1 };
  fields: for (;;) {
    if (line.length === 0 || line[0] !== QUOTE) {
      const i = line.indexOf(COMMA);
      const field = i >= 0 ? line.subarray(0, i) : line.subarray(0, line.length - nlLen(line));
      const j = field.indexOf(QUOTE);
      if (j >= 0) throw parseError(recLine, numLine, pos.col + j, bareQuote);
      fields.push(field.toString('utf8'));
      if (i < 0) break;
      line = line.subarray(i + 1);
      pos.col += i + 1;
      continue;
    }
    const parts: Buffer[] = [];
    line = line.subarray(1);
    pos.col += 1;
    for (;;) {
      const i = line.indexOf(QUOTE);
      if (i >= 0) {
        parts.push(line.subarray(0, i));
        line = line.subarray(i + 1);
        pos.col += i + 1;
        if (line[0] === QUOTE) {
          parts.push(Buffer.from('"'));
          line = line.subarray(1);
          pos.col += 1;
        } else if (line[0] === COMMA) {
          line = line.subarray(1);
          pos.col += 1;
          fields.push(Buffer.concat(parts).toString('utf8'));
          continue fields;
        } else if (nlLen(line) === line.length) {
          fields.push(Buffer.concat(parts).toString('utf8'));
          break fields;
        } else {
          throw parseError(recLine, numLine, pos.col - 1, badQuote);
        }
      } else if (line.length > 0) {
        parts.push(line);
        pos.col += line.length;
        line = readLine().line;
        if (line.length > 0) pos = { line: pos.line + 1, col: 1 };
      } else {
        throw parseError(recLine, pos.line, pos.col, badQuote);
      }
    }
  }
  return fields;
}

/** strconv.ParseInt(s, 0, 64) as pflag's int flags use it. */
function parseFlagInt(flag: string, s: string): number {
  const fail = (why: string): never => {
    throw new ConfigError(`invalid argument ${goQuote(s)} for ${goQuote(flag)} flag: strconv.ParseInt: parsing ${goQuote(s)}: ${why}`);
  };
  let body = s;
  let neg = false;
  if (body[0] === '+' || body[0] === '-') {
    neg = body[0] === '-';
    body = body.slice(1);
  }
  if (body === '') fail('invalid syntax');
  let base = 10n;
  let digits = body;
  if (body[0] === '0') {
    const p = body[1]?.toLowerCase();
    if (body.length >= 3 && (p === 'b' || p === 'o' || p === 'x')) {
      base = p === 'b' ? 2n : p === 'o' ? 8n : 16n;
      digits = body.slice(2);
    } else {
      base = 8n;
      digits = body.slice(1);
    }
  }
  const limit = neg ? 1n << 63n : (1n << 63n) - 1n;
  let n = 0n;
  let underscores = false;
  for (const ch of digits) {
    if (ch === '_') {
      underscores = true;
      continue;
    }
    const d = /[0-9]/.test(ch) ? BigInt(ch.charCodeAt(0) - 48) : /[a-z]/i.test(ch) ? BigInt(ch.toLowerCase().charCodeAt(0) - 87) : 99n;
    if (d >= base) fail('invalid syntax');
    n = n * base + d;
    if (n >= 1n << 64n) fail('value out of range');
  }
  if (underscores && !underscoresOK(s)) fail('invalid syntax');
  if (n > limit) fail('value out of range');
  return Number(neg ? -n : n);
}

/** Go's rule: an underscore may only sit between digits (a base prefix counts as a digit). */
function underscoresOK(s: string): boolean {
  let t = s[0] === '+' || s[0] === '-' ? s.slice(1) : s;
  let saw = '^';
  let hex = false;
  if (t.length >= 2 && t[0] === '0' && 'box'.includes(t[1]!.toLowerCase())) {
    hex = t[1]!.toLowerCase() === 'x';
    saw = '0';
    t = t.slice(2);
  }
  for (const ch of t) {
    if (/[0-9]/.test(ch) || (hex && /[a-f]/i.test(ch))) saw = '0';
    else if (ch === '_') {
      if (saw !== '0') return false;
      saw = '_';
    } else {
      if (saw === '_') return false;
      saw = '!';
    }
  }
  return saw !== '_';
}

const UNITS: Record<string, bigint> = {
  ns: 1n, us: 1_000n, 'µs': 1_000n, 'μs': 1_000n, ms: 1_000_000n, s: 1_000_000_000n, m: 60_000_000_000n, h: 3_600_000_000_000n,
};

/**
 * Go's time.ParseDuration ("1h2m3.5s", "500ms", "-5s", "0") → nanoseconds; throws ConfigError
 * carrying Go's message. Values beyond 2^53 ns (~104 days) lose precision as a JS number.
 */
export function parseDuration(s: string): number {
  const invalid = (): never => {
    throw new ConfigError(`time: invalid duration ${timeQuote(s)}`);
  };
  const max = 1n << 63n;
  let rest = s;
  let neg = false;
  if (rest[0] === '-' || rest[0] === '+') {
    neg = rest[0] === '-';
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  if (rest === '') invalid();
  let total = 0n;
  while (rest !== '') {
    if (!/^[0-9.]/.test(rest)) invalid();
    const intPart = /^[0-9]*/.exec(rest)![0];
    rest = rest.slice(intPart.length);
    let v = 0n;
    for (const ch of intPart) {
      if (v > max / 10n) invalid();
      v = v * 10n + BigInt(ch.charCodeAt(0) - 48);
      if (v > max) invalid();
    }
    let frac = 0;
    let scale = 1;
    let fracDigits = '';
    if (rest[0] === '.') {
      fracDigits = /^[0-9]*/.exec(rest.slice(1))![0];
      rest = rest.slice(1 + fracDigits.length);
      // Go stops accumulating once the fraction would overflow, ignoring later digits.
      let f = 0n;
      let overflow = false;
      for (const ch of fracDigits) {
        if (overflow) continue;
        if (f > (max - 1n) / 10n) {
          overflow = true;
          continue;
        }
        const y = f * 10n + BigInt(ch.charCodeAt(0) - 48);
        if (y > max) {
          overflow = true;
          continue;
        }
        f = y;
        scale *= 10;
      }
      frac = Number(f);
    }
    if (intPart === '' && fracDigits === '') invalid();
    const unitStr = /^[^0-9.]*/.exec(rest)![0];
    if (unitStr === '') throw new ConfigError(`time: missing unit in duration ${timeQuote(s)}`);
    rest = rest.slice(unitStr.length);
    const unit = UNITS[unitStr];
    if (unit === undefined) throw new ConfigError(`time: unknown unit ${timeQuote(unitStr)} in duration ${timeQuote(s)}`);
    if (v > max / unit) invalid();
    v *= unit;
    if (frac > 0) {
      // Same float arithmetic as Go, so rounding matches.
      v += BigInt(Math.trunc(frac * (Number(unit) / scale)));
      if (v > max) invalid();
    }
    total += v;
    if (total > max) invalid();
  }
  if (!neg && total > max - 1n) invalid();
  return Number(neg ? -total : total);
}

/** os.Expand: $NAME, ${NAME}, and the one-character specials ($1, $$, ...); bad syntax is eaten. */
function goExpand(s: string, mapping: (name: string) => string): string {
  let out = '';
  let i = 0;
  for (let j = 0; j < s.length; j++) {
    if (s[j] !== '$' || j + 1 >= s.length) continue;
    out += s.slice(i, j);
    const [name, w] = shellName(s.slice(j + 1));
    if (name === '' && w > 0) {
      // Invalid syntax such as "${" or "${}": dropped.
    } else if (name === '') {
      out += '$';
    } else {
      out += mapping(name);
    }
    j += w;
    i = j + 1;
  }
  return i === 0 ? s : out + s.slice(i);
}

function shellName(s: string): [string, number] {
  const special = (ch: string | undefined): boolean => ch !== undefined && '*#$@!?-0123456789'.includes(ch);
  if (s[0] === '{') {
    if (s.length > 2 && special(s[1]) && s[2] === '}') return [s[1]!, 3];
    for (let i = 1; i < s.length; i++) {
      if (s[i] === '}') return i === 1 ? ['', 2] : [s.slice(1, i), i + 1];
    }
    return ['', 1];
  }
  if (special(s[0])) return [s[0]!, 1];
  const m = /^[A-Za-z0-9_]*/.exec(s)![0];
  return [m, m.length];
}

/** strconv.Quote, as Go's %q prints strings in Buildah's messages. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (cp >= 0x20 && cp < 0x7f) out += ch;
    else if (cp === 7) out += '\\a';
    else if (cp === 8) out += '\\b';
    else if (cp === 12) out += '\\f';
    else if (cp === 10) out += '\\n';
    else if (cp === 13) out += '\\r';
    else if (cp === 9) out += '\\t';
    else if (cp === 11) out += '\\v';
    else if (cp < 0x20 || cp === 0x7f) out += `\\x${cp.toString(16).padStart(2, '0')}`;
    else if (/[\p{L}\p{M}\p{N}\p{P}\p{S}]/u.test(ch)) out += ch;
    else if (cp < 0x10000) out += `\\u${cp.toString(16).padStart(4, '0')}`;
    else out += `\\U${cp.toString(16).padStart(8, '0')}`;
  }
  return `${out}"`;
}

/** The time package's own quoting: anything outside printable ASCII becomes \x bytes. */
function timeQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (cp < 0x20 || cp >= 0x80) for (const b of Buffer.from(ch, 'utf8')) out += `\\x${b.toString(16).padStart(2, '0')}`;
    else out += ch === '"' || ch === '\\' ? `\\${ch}` : ch;
  }
  return `${out}"`;
}

function hostOS(): string {
  return process.platform === 'win32' ? 'windows' : process.platform;
}

/**
 * What Buildah does each time it opens a working container: an empty architecture or OS becomes
 * the host's, and while no variant is set the architecture is normalised (x86_64 → amd64,
 * aarch64 → arm64, arm → arm + v7, "arm64/v8" → arm64 + v8). With a variant set, nothing is
 * touched. Mutates `img`.
 */
export function fixupPlatform(img: ImageConfig, arch: string = hostArch(), os: string = hostOS()): void {
  const renormalize = (): void => {
    const n = normalizePlatform(img.os, img.architecture, img.variant ?? '', arch, os);
    img.architecture = n.architecture;
    if (n.variant) img.variant = n.variant;
    else delete img.variant;
  };
  if (!img.architecture) {
    img.architecture = arch;
    renormalize();
  }
  if (!img.variant) renormalize();
  if (!img.os) img.os = os;
}

/** containers/common libimage.Normalize (architecture and variant only), on containerd's rules. */
function normalizePlatform(os: string, arch: string, variant: string, hostA: string, hostO: string): { architecture: string; variant: string } {
  const n = normalizeArch(arch, variant);
  const nv = n.variant === '' && variant !== '' ? variant : n.variant;
  const spec = [normalizeOS(os, hostO), n.arch || hostA, ...(nv ? [nv] : [])].join('/');
  const parts = spec.split('/');
  if (spec.includes('*') || parts.some((p) => !/^[A-Za-z0-9_-]+$/.test(p)) || parts.length < 2 || parts.length > 3) {
    return { architecture: arch, variant };
  }
  let parsed: { arch: string; variant: string };
  if (parts.length === 2) {
    parsed = normalizeArch(parts[1]!, '');
    if (parsed.arch === 'arm' && parsed.variant === 'v7') parsed.variant = '';
  } else {
    parsed = normalizeArch(parts[1]!, parts[2]!);
    if (parsed.arch === 'arm64' && parsed.variant === '') parsed.variant = 'v8';
  }
  return {
    architecture: arch !== '' ? parsed.arch : arch,
    variant: variant !== '' || parsed.variant !== '' ? parsed.variant : variant,
  };
}

function normalizeOS(os: string, hostO: string): string {
  if (os === '') return hostO;
  const l = os.toLowerCase();
  return l === 'macos' ? 'darwin' : l;
}

function normalizeArch(rawArch: string, rawVariant: string): { arch: string; variant: string } {
  let arch = rawArch.toLowerCase();
  let variant = rawVariant.toLowerCase();
  switch (arch) {
    case 'i386':
      arch = '386';
      variant = '';
      break;
    case 'x86_64': case 'x86-64': case 'amd64':
      arch = 'amd64';
      if (variant === 'v1') variant = '';
      break;
    case 'aarch64': case 'arm64':
      arch = 'arm64';
      if (variant === '8' || variant === 'v8') variant = '';
      break;
    case 'armhf':
      arch = 'arm';
      variant = 'v7';
      break;
    case 'armel':
      arch = 'arm';
      variant = 'v6';
      break;
    case 'arm':
      if (variant === '' || variant === '7') variant = 'v7';
      else if (variant === '5' || variant === '6' || variant === '8') variant = `v${variant}`;
      break;
  }
  return { arch, variant };
}

// ---- views -------------------------------------------------------------------------------------

/** Docker's container Config with every non-`omitempty` field present, as Buildah prints and writes it. */
export interface DockerContainerConfig {
  Hostname: string;
  Domainname: string;
  User: string;
  AttachStdin: boolean;
  AttachStdout: boolean;
  AttachStderr: boolean;
  ExposedPorts?: PathSet;
  Tty: boolean;
  OpenStdin: boolean;
  StdinOnce: boolean;
  Env: string[] | null;
  Cmd: string[] | null;
  Healthcheck?: HealthConfig;
  ArgsEscaped?: boolean;
  Image: string;
  Volumes: PathSet | null;
  WorkingDir: string;
  Entrypoint: string[] | null;
  NetworkDisabled?: boolean;
  MacAddress?: string;
  OnBuild: string[];
  Labels: Record<string, string> | null;
  StopSignal?: string;
  StopTimeout?: number;
  Shell?: string[];
}

/** Docker schema2 image config, keys in Buildah's (docker.V2Image) order. */
export interface DockerImageConfig {
  comment?: string;
  created?: string;
  container?: string;
  container_config: DockerContainerConfig;
  docker_version?: string;
  author?: string;
  config: DockerContainerConfig;
  architecture?: string;
  variant?: string;
  os?: string;
  rootfs?: { type: string; diff_ids?: string[] };
  history?: HistoryEntry[];
  'os.version'?: string;
  'os.features'?: string[];
}

function extra(obj: object | undefined, key: string): unknown {
  return obj ? (obj as Record<string, unknown>)[key] : undefined;
}

/** Go marshals maps with their keys sorted bytewise. */
function sortedMap<V>(m: Record<string, V>): Record<string, V> {
  const out: Record<string, V> = {};
  const keys = Object.keys(m).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  for (const k of keys) defineKey(out, k, structuredClone(m[k]!));
  return out;
}

function nonEmptyMap<V>(m: Record<string, V> | undefined): m is Record<string, V> {
  return m !== undefined && m !== null && Object.keys(m).length > 0;
}

/** The OCI image config: Docker-only keys dropped, empty values left out (`omitempty`), OCI key order. */
export function ociView(image: ImageConfig): ImageConfig {
  const c = image.config ?? {};
  const config: ContainerConfig = {
    ...(c.User ? { User: c.User } : {}),
    ...(nonEmptyMap(c.ExposedPorts) ? { ExposedPorts: sortedMap(c.ExposedPorts) } : {}),
    ...(c.Env?.length ? { Env: [...c.Env] } : {}),
    ...(c.Entrypoint?.length ? { Entrypoint: [...c.Entrypoint] } : {}),
    ...(c.Cmd?.length ? { Cmd: [...c.Cmd] } : {}),
    ...(nonEmptyMap(c.Volumes) ? { Volumes: sortedMap(c.Volumes) } : {}),
    ...(c.WorkingDir ? { WorkingDir: c.WorkingDir } : {}),
    ...(nonEmptyMap(c.Labels) ? { Labels: sortedMap(c.Labels) } : {}),
    ...(c.StopSignal ? { StopSignal: c.StopSignal } : {}),
    ...(c.ArgsEscaped ? { ArgsEscaped: true } : {}),
  };
  const features = extra(image, 'os.features');
  const out: ImageConfig & { 'os.features'?: string[] } = {
    ...(image.created ? { created: image.created } : {}),
    ...(image.author ? { author: image.author } : {}),
    architecture: image.architecture,
    ...(image.variant ? { variant: image.variant } : {}),
    os: image.os,
    ...(image['os.version'] ? { 'os.version': image['os.version'] } : {}),
    ...(Array.isArray(features) && features.length ? { 'os.features': [...(features as string[])] } : {}),
    config,
    rootfs: { type: image.rootfs.type, diff_ids: [...image.rootfs.diff_ids] },
  };
  if (image.history?.length) {
    out.history = image.history.map((h) => ({
      ...(h.created ? { created: h.created } : {}),
      ...(h.created_by ? { created_by: h.created_by } : {}),
      ...(h.author ? { author: h.author } : {}),
      ...(h.comment ? { comment: h.comment } : {}),
      ...(h.empty_layer ? { empty_layer: true } : {}),
    }));
  }
  return out;
}

function dockerContainerConfig(c: ContainerConfig): DockerContainerConfig {
  const bool = (k: string): boolean => extra(c, k) === true;
  const image = extra(c, 'Image');
  const mac = extra(c, 'MacAddress');
  const stopTimeout = extra(c, 'StopTimeout');
  return {
    Hostname: c.Hostname ?? '',
    Domainname: c.Domainname ?? '',
    User: c.User ?? '',
    AttachStdin: bool('AttachStdin'),
    AttachStdout: bool('AttachStdout'),
    AttachStderr: bool('AttachStderr'),
    ...(nonEmptyMap(c.ExposedPorts) ? { ExposedPorts: sortedMap(c.ExposedPorts) } : {}),
    Tty: bool('Tty'),
    OpenStdin: bool('OpenStdin'),
    StdinOnce: bool('StdinOnce'),
    Env: c.Env ? [...c.Env] : null,
    Cmd: c.Cmd ? [...c.Cmd] : null,
    ...(c.Healthcheck ? { Healthcheck: healthOut(c.Healthcheck) } : {}),
    ...(c.ArgsEscaped ? { ArgsEscaped: true } : {}),
    Image: typeof image === 'string' ? image : '',
    Volumes: c.Volumes ? sortedMap(c.Volumes) : null,
    WorkingDir: c.WorkingDir ?? '',
    Entrypoint: c.Entrypoint ? [...c.Entrypoint] : null,
    ...(bool('NetworkDisabled') ? { NetworkDisabled: true } : {}),
    ...(typeof mac === 'string' && mac ? { MacAddress: mac } : {}),
    // Buildah always has a (possibly empty) ONBUILD list, never null.
    OnBuild: c.OnBuild ? [...c.OnBuild] : [],
    Labels: c.Labels ? sortedMap(c.Labels) : null,
    ...(c.StopSignal ? { StopSignal: c.StopSignal } : {}),
    ...(typeof stopTimeout === 'number' ? { StopTimeout: stopTimeout } : {}),
    ...(c.Shell?.length ? { Shell: [...c.Shell] } : {}),
  };
}

/**
 * The Docker image config: every Config field present (null for unset lists and maps, as Buildah
 * shows them), container_config a copy of config, Docker's key order.
 */
export function dockerView(image: ImageConfig): DockerImageConfig {
  const c = image.config ?? {};
  const container = extra(image, 'container');
  const features = extra(image, 'os.features');
  const out: DockerImageConfig = {
    ...(image.comment ? { comment: image.comment } : {}),
    ...(image.created ? { created: image.created } : {}),
    ...(typeof container === 'string' && container ? { container } : {}),
    container_config: dockerContainerConfig(c),
    ...(image.docker_version ? { docker_version: image.docker_version } : {}),
    ...(image.author ? { author: image.author } : {}),
    config: dockerContainerConfig(c),
    ...(image.architecture ? { architecture: image.architecture } : {}),
    ...(image.variant ? { variant: image.variant } : {}),
    ...(image.os ? { os: image.os } : {}),
    rootfs: { type: image.rootfs.type, ...(image.rootfs.diff_ids.length ? { diff_ids: [...image.rootfs.diff_ids] } : {}) },
  };
  if (image.history?.length) {
    out.history = image.history.map((h) => ({
      ...(h.created ? { created: h.created } : {}),
      ...(h.author ? { author: h.author } : {}),
      ...(h.created_by ? { created_by: h.created_by } : {}),
      ...(h.comment ? { comment: h.comment } : {}),
      ...(h.empty_layer ? { empty_layer: true } : {}),
    }));
  }
  if (image['os.version']) out['os.version'] = image['os.version'];
  if (Array.isArray(features) && features.length) out['os.features'] = [...(features as string[])];
  return out;
}

export { goJSON } from '../image/gojson.ts';

/**
 * `--change` of `import` and of Podman's `commit`: the Containerfile instructions Podman accepts
 * there, each applied as the config option it amounts to.
 */
export function applyChanges(image: ImageConfig, changes: readonly string[]): ImageConfig {
  let cfg: BuilderConfig = { image, annotations: {} };
  for (const ch of changes) {
    // Podman takes `CMD /bin/sh` and `CMD=/bin/sh` alike.
    const m = /^\s*(\w+)(?:\s+|=)([\s\S]*)$/.exec(ch);
    if (!m) throw new Error(`invalid --change "${ch}"`);
    const [, instr, rest] = m as unknown as [string, string, string];
    const opts: ConfigOptions = {};
    switch (instr.toUpperCase()) {
      case 'CMD': opts.cmd = rest; break;
      case 'ENTRYPOINT': opts.entrypoint = rest; break;
      case 'ENV': opts.env = [rest.includes('=') ? rest : rest.replace(/\s+/, '=')]; break;
      case 'EXPOSE': opts.port = rest.trim().split(/\s+/).flatMap(exposedPorts); break;
      case 'LABEL': opts.label = [rest.replace(/"/g, '')]; break;
      case 'USER': opts.user = rest; break;
      case 'VOLUME': opts.volume = rest.startsWith('[') ? (JSON.parse(rest) as string[]) : rest.split(/\s+/); break;
      case 'WORKDIR': opts.workingdir = rest; break;
      case 'STOPSIGNAL': opts.stopSignal = rest; break;
      default: throw new Error(`--change: instruction ${instr} is not supported (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR)`);
    }
    cfg = applyConfig(cfg, opts);
  }
  return cfg.image;
}

/** An EXPOSE argument ("80", "8000-8001/udp") as the ports it names ("80/tcp", "8000/udp", "8001/udp"). */
export function exposedPorts(arg: string): string[] {
  const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(arg);
  if (!m) throw new Error(`invalid port "${arg}"`);
  const proto = (m[3] ?? 'tcp').toLowerCase();
  const lo = Number(m[1]);
  const hi = m[2] ? Number(m[2]) : lo;
  if (hi < lo || hi > 65535) throw new Error(`invalid port range "${arg}"`);
  const ports: string[] = [];
  for (let n = lo; n <= hi; n++) ports.push(`${n}/${proto}`);
  return ports;
}
