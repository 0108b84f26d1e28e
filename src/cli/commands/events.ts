// `barge events`: Podman's events command over its "file" backend (see containers/events.ts).

import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { openStore, boolOpt, ExitError, type GlobalOptions } from '../context.ts';
import { eventsLogPath, type BargeEvent } from '../../containers/events.ts';
import { parseSince } from '../../containers/logs.ts';
import { GoTime } from '../../image/gotime.ts';
import { keyedFilter, labelFilter, type Predicate } from '../filters.ts';

type Opts = Record<string, unknown>;

interface Parsed {
  event: BargeEvent;
  time: GoTime;
  /** The JSON line as written. */
  line: string;
}

/**
 * --filter KEY=VALUE as Podman's events filters: values of one key are alternatives, different
 * keys must all hold; container=, image= and volume= also pick the event type.
 */
function eventFilter(filters: readonly string[]): Predicate<BargeEvent> {
  const byNameOrId = (type: string, v: string): Predicate<BargeEvent> => (e) => e.Type === type && (e.Name === v || (!!v && (e.ID ?? '').startsWith(v)));
  return keyedFilter<BargeEvent>(filters, (key, value) => {
    switch (key) {
      case 'container':
      case 'image':
      case 'pod':
        return byNameOrId(key, value);
      case 'volume':
        return (e) => e.Type === 'volume' && (e.Name ?? '').startsWith(value);
      case 'event':
      case 'status':
        return (e) => e.Status === value;
      case 'type':
        return (e) => e.Type === value;
      case 'label': {
        const has = labelFilter(value);
        return (e) => e.Attributes !== null && has(e.Attributes);
      }
      default:
        throw new ExitError(`${key} is an invalid filter`, 125);
    }
  });
}

/** Podman's default line (ToHumanReadable), with the ids cut to 12 digits unless `noTrunc`. */
function humanLine(p: Parsed, noTrunc: boolean): string {
  const e = p.event;
  const id = noTrunc ? (e.ID ?? '') : (e.ID ?? '').slice(0, 12);
  const head = `${p.time.Local().toString()} ${e.Type} ${e.Status}`;
  switch (e.Type) {
    case 'container':
    case 'pod': {
      const health = e.health_status ? `, health_status=${e.health_status}` : '';
      const attrs = Object.entries(e.Attributes ?? {}).map(([k, v]) => `, ${k}=${v}`).join('');
      return `${head} ${id} (image=${e.Image ?? ''}, name=${e.Name ?? ''}${health}${attrs})`;
    }
    case 'image':
      return `${head} ${id} ${e.Name ?? ''}`;
    case 'network':
      return `${head} ${id} (container=${id}, name=${e.Network ?? ''})`;
    default:
      return e.Name ? `${head} ${e.Name}` : head;
  }
}

function parseLine(line: string): Parsed | undefined {
  try {
    const event = JSON.parse(line) as BargeEvent;
    const time = GoTime.parse(event.Time);
    return time && typeof event.Status === 'string' ? { event, time, line } : undefined;
  } catch {
    return undefined; // a line cut short by a crash
  }
}

/** Reads the whole lines of `path` from `offset`; a partial last line is left for the next read. */
function readLines(path: string, offset: number): { lines: string[]; offset: number; ino: number } | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return undefined;
  }
  try {
    const st = fstatSync(fd);
    // A log shorter than what was read has been replaced (rotated): start it over.
    const from = st.size < offset ? 0 : offset;
    const buf = Buffer.alloc(st.size - from);
    const n = buf.length ? readSync(fd, buf, 0, buf.length, from) : 0;
    const text = buf.subarray(0, n).toString('utf8');
    const cut = text.lastIndexOf('\n') + 1;
    return { lines: text.slice(0, cut).split('\n').filter(Boolean), offset: from + Buffer.byteLength(text.slice(0, cut)), ino: st.ino };
  } finally {
    closeSync(fd);
  }
}

function inode(path: string): number | undefined {
  try {
    return statSync(path).ino;
  } catch {
    return undefined;
  }
}

/** `events [--filter] [--format] [--since] [--until] [--stream=false] [--no-trunc]`. */
export async function eventsCmd(g: GlobalOptions, _args: string[], o: Opts): Promise<void> {
  const store = await openStore(g);
  const stream = boolOpt(o.stream, '--stream');
  // commander reads --no-trunc as the negation of a "trunc" option: true when absent, false when
  // given bare, the text when given a value. Only --no-trunc=false truncates.
  const noTrunc = typeof o.trunc === 'string' ? boolOpt(o.trunc, '--no-trunc') : true;
  const match = eventFilter(Array.isArray(o.filter) ? (o.filter as string[]) : []);
  const at = (what: string, v: unknown): number | undefined => {
    if (typeof v !== 'string') return undefined;
    try {
      return parseSince(v);
    } catch (e) {
      throw new ExitError(`${what}: ${(e as Error).message}`, 125);
    }
  };
  const since = at('--since', o.since);
  const until = at('--until', o.until);
  const format = typeof o.format === 'string' ? o.format : undefined;
  const render = await renderer(format, noTrunc);
  const show = (lines: readonly string[]): void => {
    let out = '';
    for (const line of lines) {
      const p = parseLine(line);
      if (!p || !match(p.event)) continue;
      const ms = Number(p.time.UnixNano() / 1_000_000n);
      if ((since !== undefined && ms < since) || (until !== undefined && ms > until)) continue;
      out += `${render(p)}\n`;
    }
    if (out) process.stdout.write(out);
  };
  const path = eventsLogPath(store);
  // As Podman: streaming without --since or --until shows only the events still to come.
  const past = !stream || since !== undefined || until !== undefined;
  let cur = readLines(path, 0);
  if (past) show([...(readLines(`${path}.1`, 0)?.lines ?? []), ...(cur?.lines ?? [])]);
  if (!stream) return;
  process.once('SIGINT', () => process.exit(0));
  process.once('SIGTERM', () => process.exit(0));
  let offset = cur?.offset ?? 0;
  let ino = cur?.ino;
  for (;;) {
    if (until !== undefined && Date.now() > until) return;
    await new Promise((r) => setTimeout(r, 100));
    const now = inode(path);
    if (ino !== undefined && now !== ino) {
      // Rotated: the rest of the old log is in events.log.1 now, then the new one from its start.
      if (inode(`${path}.1`) === ino) show(readLines(`${path}.1`, offset)?.lines ?? []);
      offset = 0;
    }
    cur = readLines(path, offset);
    if (!cur) continue;
    show(cur.lines);
    offset = cur.offset;
    ino = cur.ino;
  }
}

/** How one event is printed: Podman's line, its JSON line (--format json), or a Go template. */
async function renderer(format: string | undefined, noTrunc: boolean): Promise<(p: Parsed) => string> {
  if (format === undefined || format === '') return (p) => humanLine(p, noTrunc);
  const { isJSONFormat, normalizeFormat } = await import('../table.ts');
  if (isJSONFormat(format)) return (p) => p.line;
  const [{ goTyped, parseTemplate }, { EVENT }] = await Promise.all([import('../gotemplate.ts'), import('../gotypes.ts')]);
  const t = parseTemplate(normalizeFormat(format), undefined, { name: 'events' });
  return (p) => {
    const { health_status: health, ...e } = p.event;
    const event = { ContainerExitCode: 0, ID: '', Image: '', Name: '', Network: '', ...e, HealthStatus: health ?? '', PodID: '', Time: p.time.Local(), Attributes: e.Attributes ?? {} };
    return t.execute(goTyped(event, EVENT));
  };
}
