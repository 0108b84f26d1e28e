// `barge search`: Podman's search for registries without a search API (the distribution
// registry): the repositories of /v2/_catalog whose name contains the term, or with --list-tags
// the tags of one repository.

import { ExitError, type GlobalOptions } from '../context.ts';
import { dockerOptions } from './registry.ts';
import { clientFor } from '../../image/transports/docker.ts';
import { isInsecureRegistry, loadRegistriesConf } from '../../image/registry/registries-conf.ts';

type Opts = Record<string, unknown>;

/** Podman's default --limit: results per registry. */
const DEFAULT_LIMIT = 25;

interface SearchRow {
  Index: string;
  Name: string;
  Description: string;
  Stars: number;
  Official: string;
  Automated: string;
  Tag: string;
}

/** A term's registry ("HOST[:PORT]/…", or localhost) and what is left; without one, the registries.conf search list. */
function splitTerm(term: string): { registries: string[]; query: string } {
  const slash = term.indexOf('/');
  const head = slash < 0 ? '' : term.slice(0, slash);
  if (head && (head.includes('.') || head.includes(':') || head === 'localhost')) return { registries: [head], query: term.slice(slash + 1) };
  return { registries: loadRegistriesConf().unqualifiedSearchRegistries, query: term };
}

/** --filter stars=N, is-official=BOOL, is-automated=BOOL; a catalog entry has no stars and is neither. */
function rowFilter(filters: readonly string[]): (r: SearchRow) => boolean {
  const tests = filters.map((f): ((r: SearchRow) => boolean) => {
    const [key, value = ''] = f.split(/=(.*)/s);
    switch (key) {
      case 'stars': {
        const n = Number(value);
        if (!/^\d+$/.test(value)) throw new ExitError(`incorrect value type for stars filter: ${value}`, 125);
        return (r) => r.Stars >= n;
      }
      case 'is-official':
      case 'is-automated': {
        if (value !== 'true' && value !== 'false') throw new ExitError(`non-boolean value for ${key} filter: ${value}`, 125);
        const field = key === 'is-official' ? 'Official' : 'Automated';
        return (r) => (r[field] === '[OK]') === (value === 'true');
      }
      default:
        throw new ExitError(`invalid filter type "${key}"`, 125);
    }
  });
  return (r) => tests.every((t) => t(r));
}

function limitOf(o: Opts): number {
  if (o.limit === undefined) return DEFAULT_LIMIT;
  const n = Number(o.limit);
  if (!Number.isInteger(n)) throw new ExitError(`invalid argument "${String(o.limit)}" for "--limit" flag: strconv.ParseInt: parsing "${String(o.limit)}": invalid syntax`, 125);
  return n > 0 ? n : DEFAULT_LIMIT;
}

/** `search [--limit N] [--format] [--no-trunc] [--tls-verify] [--authfile] [--cert-dir] [--creds] [--list-tags] [--filter] [--compatible] TERM`. */
export async function searchCmd(_g: GlobalOptions, args: string[], o: Opts): Promise<void> {
  const term = args[0]!;
  const limit = limitOf(o);
  const keep = rowFilter(Array.isArray(o.filter) ? (o.filter as string[]) : []);
  const { registries, query } = splitTerm(term);
  if (o.listTags && !query) throw new ExitError(`reference "${query}" must be a docker reference`, 125);
  const conf = loadRegistriesConf();
  const format = typeof o.format === 'string' ? o.format : undefined;
  const { formatRows, isJSONFormat } = await import('../table.ts');
  const rows: SearchRow[] = [];
  const tagLists: { Name: string; Tags: string[] }[] = [];
  for (const registry of registries) {
    const { client } = await clientFor(registry, isInsecureRegistry(conf, registry), dockerOptions(o, ''));
    try {
      const row = (name: string, tag = ''): SearchRow => ({ Index: registry, Name: `${registry}/${name}`, Description: '', Stars: 0, Official: '', Automated: '', Tag: tag });
      if (o.listTags) {
        const tags = (await client.listTags(query)).slice(0, limit);
        tagLists.push({ Name: `${registry}/${query}`, Tags: tags });
        rows.push(...tags.map((t) => row(query, t)));
      } else {
        rows.push(...(await client.listCatalog()).filter((r) => r.includes(query)).map((r) => row(r)).filter(keep).slice(0, limit));
      }
    } catch (e) {
      throw new ExitError(`couldn't search registry "${registry}": ${(e as Error).message}`, 125);
    } finally {
      client.close();
    }
  }
  if (format !== undefined && isJSONFormat(format)) {
    process.stdout.write(`${JSON.stringify(o.listTags ? tagLists : rows, null, 4)}\n`);
    return;
  }
  if (!rows.length) return;
  const columns = o.listTags ? '{{.Name}}\t{{.Tag}}' : `{{.Name}}\t{{.Description}}${o.compatible ? '\t{{.Stars}}\t{{.Official}}\t{{.Automated}}' : ''}`;
  process.stdout.write(formatRows(rows, { ...(format !== undefined && { format }), defaultTable: `table ${columns}`, name: 'search' }));
}
