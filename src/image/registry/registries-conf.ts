// registries.conf (containers-registries.conf(5), v2 with drop-ins; v1 tables read too),
// short-name resolution, and the TLS files of certs.d directories.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseConfToml } from '../../sys/conf-toml.ts';
import type { TLSFiles } from './client.ts';
import { inBargeUserns } from '../../sys/userns.ts';

export interface Mirror {
  location: string;
  insecure: boolean;
  pullFromMirror: 'all' | 'digest-only' | 'tag-only';
}

export interface RegistryEntry {
  prefix: string;
  location: string;
  insecure: boolean;
  blocked: boolean;
  mirrorByDigestOnly: boolean;
  mirrors: Mirror[];
}

export type ShortNameMode = 'enforcing' | 'permissive' | 'disabled';

export interface RegistriesConf {
  unqualifiedSearchRegistries: string[];
  registries: RegistryEntry[];
  aliases: Record<string, string>;
  shortNameMode: ShortNameMode;
  /** Files read, for messages ("… defined in /etc/containers/registries.conf"). */
  files: string[];
}

const SYSTEM_CONF = '/etc/containers/registries.conf';
const SYSTEM_DROPINS = '/etc/containers/registries.conf.d';

function home(): string {
  return process.env.HOME || homedir();
}

/** The main file and drop-in directories, as containers/image picks them. */
export function registriesConfPaths(): { main: string; dropins: string[] } {
  const env = process.env.CONTAINERS_REGISTRIES_CONF;
  if (env) return { main: env, dropins: process.env.CONTAINERS_REGISTRIES_CONF_DIR ? [process.env.CONTAINERS_REGISTRIES_CONF_DIR] : [] };
  const cfg = process.env.XDG_CONFIG_HOME || join(home(), '.config');
  const user = join(cfg, 'containers', 'registries.conf');
  const main = existsSync(user) ? user : SYSTEM_CONF;
  return { main, dropins: [SYSTEM_DROPINS, join(cfg, 'containers', 'registries.conf.d')] };
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function strArray(v: unknown, where: string): string[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new Error(`${where}: expected an array of strings`);
  return v as string[];
}

function asTable(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

function parseEntry(t: Record<string, unknown>, file: string): RegistryEntry {
  const location = str(t.location) ?? '';
  const prefix = str(t.prefix) || location;
  if (!prefix) throw new Error(`${file}: [[registry]] needs a prefix or a location`);
  const mirrors: Mirror[] = [];
  if (t.mirror !== undefined) {
    if (!Array.isArray(t.mirror)) throw new Error(`${file}: [[registry.mirror]] must be an array of tables`);
    for (const m of t.mirror) {
      const mt = asTable(m);
      const loc = str(mt?.location);
      if (!mt || !loc) throw new Error(`${file}: a [[registry.mirror]] needs a location`);
      const pfm = str(mt['pull-from-mirror']) ?? 'all';
      if (pfm !== 'all' && pfm !== 'digest-only' && pfm !== 'tag-only') throw new Error(`${file}: invalid pull-from-mirror ${JSON.stringify(pfm)}`);
      mirrors.push({ location: loc, insecure: mt.insecure === true, pullFromMirror: pfm });
    }
  }
  return {
    prefix,
    location: location || prefix,
    insecure: t.insecure === true,
    blocked: t.blocked === true,
    mirrorByDigestOnly: t['mirror-by-digest-only'] === true,
    mirrors,
  };
}

function parseConfFile(file: string, text: string): Record<string, unknown> {
  try {
    return parseConfToml(text);
  } catch (e) {
    throw new Error(`loading registries configuration "${file}": ${(e as Error).message}`);
  }
}

function aliasTable(doc: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  const aliases = asTable(doc.aliases);
  if (aliases) for (const [k, v] of Object.entries(aliases)) if (typeof v === 'string') out[k] = v;
  return out;
}

/** True when a file holds nothing but an [aliases] table (as Debian's shortnames.conf does). */
function onlyAliases(text: string): boolean {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  return lines[0] === '[aliases]' && !lines.slice(1).some((l) => l.startsWith('[')) && !text.includes('"""') && !text.includes("'''");
}

function mergeFile(conf: RegistriesConf, file: string, aliasSources: (() => Record<string, string>)[]): void {
  const text = readFileSync(file, 'utf8');
  conf.files.push(file);
  // Parsing the many short-name aliases costs tens of milliseconds on a cold start, and only
  // short names need them: such files are parsed when aliases are first asked for.
  if (onlyAliases(text)) {
    aliasSources.push(() => aliasTable(parseConfFile(file, text)));
    return;
  }
  const doc = parseConfFile(file, text);
  const usr = strArray(doc['unqualified-search-registries'], `${file}: unqualified-search-registries`);
  if (usr) conf.unqualifiedSearchRegistries = usr;
  const mode = str(doc['short-name-mode']);
  if (mode !== undefined && mode !== '') {
    if (mode !== 'enforcing' && mode !== 'permissive' && mode !== 'disabled') throw new Error(`${file}: invalid short-name-mode ${JSON.stringify(mode)}`);
    conf.shortNameMode = mode;
  }
  if (doc.registry !== undefined) {
    if (!Array.isArray(doc.registry)) throw new Error(`${file}: [[registry]] must be an array of tables`);
    for (const r of doc.registry) {
      const t = asTable(r);
      if (!t) throw new Error(`${file}: [[registry]] entries must be tables`);
      const e = parseEntry(t, file);
      // A drop-in redefining a prefix replaces the earlier definition.
      conf.registries = conf.registries.filter((x) => x.prefix !== e.prefix);
      conf.registries.push(e);
    }
  }
  const aliases = aliasTable(doc);
  aliasSources.push(() => aliases);
  // v1 format: [registries.search] registries = [...], [registries.insecure], [registries.block].
  const v1 = asTable(doc.registries);
  if (v1) {
    const list = (name: string): string[] => strArray(asTable(v1[name])?.registries, `${file}: registries.${name}`) ?? [];
    const search = list('search');
    if (search.length) conf.unqualifiedSearchRegistries = search;
    for (const h of list('insecure')) conf.registries.push({ prefix: h, location: h, insecure: true, blocked: false, mirrorByDigestOnly: false, mirrors: [] });
    for (const h of list('block')) conf.registries.push({ prefix: h, location: h, insecure: false, blocked: true, mirrorByDigestOnly: false, mirrors: [] });
  }
}

let cached: RegistriesConf | undefined;

export function loadRegistriesConf(): RegistriesConf {
  if (cached) return cached;
  // Later files override earlier ones, alias by alias.
  const aliasSources: (() => Record<string, string>)[] = [];
  let aliases: Record<string, string> | undefined;
  const conf: RegistriesConf = {
    unqualifiedSearchRegistries: [],
    registries: [],
    get aliases() {
      aliases ??= Object.assign({}, ...aliasSources.map((f) => f())) as Record<string, string>;
      return aliases;
    },
    shortNameMode: 'permissive',
    files: [],
  };
  const { main, dropins } = registriesConfPaths();
  if (existsSync(main)) mergeFile(conf, main, aliasSources);
  for (const dir of dropins) {
    let names: string[] = [];
    try {
      names = readdirSync(dir).filter((n) => n.endsWith('.conf')).sort();
    } catch {
      continue;
    }
    for (const n of names) mergeFile(conf, join(dir, n), aliasSources);
  }
  cached = conf;
  return conf;
}

/** For tests within one process. */
export function resetRegistriesConfCache(): void {
  cached = undefined;
}

/** Does `prefix` cover `name` ("host/repo")? Wildcards "*.example.com" match subdomains. */
function prefixMatches(prefix: string, name: string): number {
  if (prefix.startsWith('*.')) {
    const host = name.split('/')[0]!;
    return host.endsWith(prefix.slice(1)) ? prefix.length : -1;
  }
  if (name === prefix) return prefix.length;
  if (name.startsWith(prefix) && (name[prefix.length] === '/' || name[prefix.length] === ':' || name[prefix.length] === '@')) return prefix.length;
  return -1;
}

/** The [[registry]] entry with the longest prefix matching "host/repo". */
export function findRegistry(conf: RegistriesConf, name: string): RegistryEntry | undefined {
  let best: RegistryEntry | undefined;
  let bestLen = -1;
  for (const r of conf.registries) {
    const n = prefixMatches(r.prefix, name);
    if (n > bestLen) {
      best = r;
      bestLen = n;
    }
  }
  return best;
}

export interface PullEndpoint {
  /** "host[:port]/repo" to contact. */
  name: string;
  insecure: boolean;
  mirror: boolean;
}

/**
 * Where to pull "host/repo" from: mirrors first (as pull-from-mirror and
 * mirror-by-digest-only allow), then the (possibly rewritten) primary location.
 */
export function pullEndpoints(conf: RegistriesConf, repoName: string, byDigest: boolean): { endpoints: PullEndpoint[]; entry: RegistryEntry | undefined } {
  const entry = findRegistry(conf, repoName);
  if (!entry) return { endpoints: [{ name: repoName, insecure: false, mirror: false }], entry };
  if (entry.blocked) throw new Error(`registry ${repoName.split('/')[0]} is blocked in ${conf.files.join(' or ') || 'registries.conf'}`);
  const rewrite = (loc: string): string => (entry.prefix.startsWith('*.') ? repoName : loc + repoName.slice(entry.prefix.length));
  const endpoints: PullEndpoint[] = [];
  for (const m of entry.mirrors) {
    if (entry.mirrorByDigestOnly && !byDigest) continue;
    if (m.pullFromMirror === 'digest-only' && !byDigest) continue;
    if (m.pullFromMirror === 'tag-only' && byDigest) continue;
    endpoints.push({ name: rewrite(m.location), insecure: m.insecure, mirror: true });
  }
  endpoints.push({ name: rewrite(entry.location), insecure: entry.insecure, mirror: false });
  return { endpoints, entry };
}

/** The push target for "host/repo": the primary location, rewritten, never a mirror. */
export function pushEndpoint(conf: RegistriesConf, repoName: string): PullEndpoint {
  const entry = findRegistry(conf, repoName);
  if (!entry) return { name: repoName, insecure: false, mirror: false };
  if (entry.blocked) throw new Error(`registry ${repoName.split('/')[0]} is blocked in ${conf.files.join(' or ') || 'registries.conf'}`);
  const name = entry.prefix.startsWith('*.') ? repoName : entry.location + repoName.slice(entry.prefix.length);
  return { name, insecure: entry.insecure, mirror: false };
}

/** Whether a registry host is marked insecure (for login, which has no repository). */
export function isInsecureRegistry(conf: RegistriesConf, host: string): boolean {
  return findRegistry(conf, host)?.insecure ?? false;
}

// ---------------------------------------------------------------------------------------------
// TLS files

/** certs.d directories consulted for a host, first existing one wins (as containers/image). */
export function certDirsFor(hostPort: string, certDir?: string): string[] {
  if (certDir) return [certDir];
  const cfg = process.env.XDG_CONFIG_HOME || join(home(), '.config');
  // Root in barge's own user namespace is still the user: their certs.d applies.
  const dirs = process.getuid?.() === 0 && !inBargeUserns() ? [] : [join(cfg, 'containers', 'certs.d', hostPort)];
  dirs.push(join('/etc/containers/certs.d', hostPort), join('/etc/docker/certs.d', hostPort));
  return dirs;
}

/** *.crt are CAs; NAME.cert with NAME.key is a client certificate. */
export function loadTLSFiles(hostPort: string, certDir?: string): TLSFiles {
  const out: TLSFiles = { ca: [] };
  for (const dir of certDirsFor(hostPort, certDir)) {
    let names: string[];
    try {
      if (!statSync(dir).isDirectory()) continue;
      names = readdirSync(dir).sort();
    } catch {
      continue;
    }
    for (const n of names) {
      if (n.endsWith('.crt')) out.ca.push(readFileSync(join(dir, n)));
      else if (n.endsWith('.cert')) {
        const key = join(dir, `${n.slice(0, -5)}.key`);
        if (!existsSync(key)) throw new Error(`missing key ${n.slice(0, -5)}.key for client certificate ${join(dir, n)}`);
        out.cert = readFileSync(join(dir, n));
        out.key = readFileSync(key);
      } else if (n.endsWith('.key') && !existsSync(join(dir, `${n.slice(0, -4)}.cert`))) {
        throw new Error(`missing client certificate ${n.slice(0, -4)}.cert for key ${join(dir, n)}`);
      }
    }
    // containers/image reads only the first directory that exists for the host.
    if (certDir === undefined) break;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Short names

export class ShortNameError extends Error {}

/**
 * Fully qualified candidates for a name as the user typed it ("busybox", "ns/app:1",
 * "quay.io/x"), in the order Podman tries them: an alias wins, otherwise each
 * unqualified-search registry. Names with a registry are returned as they are.
 */
export function resolveShortName(conf: RegistriesConf, name: string, domainOf: (n: string) => { domain: string; path: string; suffix: string }, isTTY = false): string[] {
  const { domain, path, suffix } = domainOf(name);
  if (domain) return [name];
  const alias = conf.aliases[path];
  if (alias !== undefined && conf.shortNameMode !== 'disabled') return [alias + suffix];
  const regs = conf.unqualifiedSearchRegistries;
  if (regs.length === 0) {
    throw new ShortNameError(
      `short-name "${name}" did not resolve to an alias and no unqualified-search registries are defined in ${conf.files.length ? conf.files.map((f) => `"${f}"`).join(', ') : '"/etc/containers/registries.conf"'}`,
    );
  }
  if (conf.shortNameMode === 'enforcing' && regs.length > 1 && !isTTY) {
    throw new ShortNameError(`short-name resolution enforced but cannot prompt without a TTY ("${name}" could be any of ${regs.join(', ')})`);
  }
  return regs.map((r) => `${r}/${r === 'docker.io' && !path.includes('/') ? `library/${path}` : path}${suffix}`);
}
