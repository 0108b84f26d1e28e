/**
 * Podman-style `--format` handling for list commands: `json`, `table <template>`,
 * plain Go templates, and column alignment compatible with Go's text/tabwriter.
 */
import { TemplateError, goJSON, goTyped, hasGoField, parseTemplate, withGoJSONTimes } from './gotemplate.ts';
import type { GoType, TemplateFunc } from './gotemplate.ts';

/** Podman's report writer: tabwriter.NewWriter(w, 12, 2, 2, ' ', 0). */
export const TABLE_MIN_WIDTH = 12;
export const TABLE_PADDING = 2;

function cellWidth(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/**
 * Aligns tab-separated cells like Go's text/tabwriter (left-aligned, space padding).
 *
 * Each line's cells are separated by '\t'; a line's last cell is not tab-terminated
 * and so never takes part in alignment. A column block is a run of consecutive
 * lines that all have a tab-terminated cell in that column; every cell in the
 * block is padded to max(minWidth, widest cell + padding). Lines may contain '\n'
 * and are split. Every output line ends with '\n'.
 */
export function tabwrite(lines: string[], padding = TABLE_PADDING, minWidth = TABLE_MIN_WIDTH): string {
  const rows = lines.flatMap((l) => l.split('\n')).map((l) => l.split('\t'));
  const out: string[] = [];

  const writeLines = (line0: number, line1: number, widths: readonly number[]): void => {
    for (let i = line0; i < line1; i++) {
      const cells = rows[i] ?? [];
      let s = '';
      cells.forEach((c, j) => {
        const w = widths[j];
        s += w === undefined ? c : c + ' '.repeat(Math.max(0, w - cellWidth(c)));
      });
      out.push(s);
    }
  };

  // Mirrors tabwriter's recursive formatting: widths of the columns to the left are
  // fixed, and each block of lines sharing the next column gets its own width.
  const format = (line0In: number, line1: number, widths: readonly number[]): void => {
    let line0 = line0In;
    const column = widths.length;
    for (let i = line0; i < line1; i++) {
      if (column >= (rows[i]?.length ?? 0) - 1) continue;
      writeLines(line0, i, widths);
      line0 = i;
      let width = minWidth;
      for (; i < line1; i++) {
        const cells = rows[i] ?? [];
        if (column >= cells.length - 1) break;
        width = Math.max(width, cellWidth(cells[column] ?? '') + padding);
      }
      format(line0, i, [...widths, width]);
      line0 = i;
    }
    writeLines(line0, line1, widths);
  };

  format(0, rows.length, []);
  return out.map((l) => l + '\n').join('');
}

export interface FormatOptions {
  format?: string;
  /** The command's default, e.g. "table {{.ID}}\t{{.Name}}". */
  defaultTable: string;
  /** Header overrides keyed by field name (e.g. { ID: 'IMAGE ID' }); matched case-insensitively. */
  headers?: Record<string, string>;
  /** Extra template functions. */
  funcs?: Record<string, TemplateFunc>;
  /** The template's name in Go's errors: Podman names it after the command ("ps", "images"). */
  name?: string;
  /** The Go type of each row (its struct, with time fields and methods), for templates. */
  type?: GoType;
  /** Characters before the text on its first line in the template the command runs (default: Podman's "{{range .}}"). */
  prefix?: number;
}

/** A format that ranges over the rows itself, which Podman then runs once over them all. */
const RANGE_FORMAT = /\{\{\s*range\s*\.\s*\}\}[^]*\{\{\s*end\s*-?\s*\}\}/;

const JSON_FORMAT = /^\s*(json|\{\{\s*json\s*\.?\s*\}\})\s*$/;

/** True for Podman's whole-output JSON formats: `json` and `{{json .}}`. */
export function isJSONFormat(format: string): boolean {
  return JSON_FORMAT.test(format);
}

/**
 * Shells pass `\t` and `\n` in --format through as two characters; Podman turns them
 * into a real tab and newline. Only text outside `{{ }}` is rewritten: inside an
 * action they can only appear in Go string literals, which already decode them, and
 * a raw newline there would break the literal.
 */
export function normalizeFormat(format: string): string {
  let out = '';
  let pos = 0;
  const fix = (s: string): string => s.replace(/\\t/g, '\t').replace(/\\n/g, '\n');
  for (;;) {
    const open = format.indexOf('{{', pos);
    if (open < 0) return out + fix(format.slice(pos));
    const close = format.indexOf('}}', open + 2);
    if (close < 0) return out + fix(format.slice(pos, open)) + format.slice(open);
    out += fix(format.slice(pos, open)) + format.slice(open, close + 2);
    pos = close + 2;
  }
}

/**
 * Splits a Go field name into words the way Podman derives column headers
 * (fatih/camelcase): "ImageID" → "IMAGE ID", "CreatedAt" → "CREATED AT".
 */
export function fieldHeader(field: string): string {
  const cls = (c: string): number => (/\p{Ll}/u.test(c) ? 1 : /\p{Lu}/u.test(c) ? 2 : /\p{Nd}/u.test(c) ? 3 : 4);
  const runs: string[][] = [];
  let last = 0;
  for (const c of field) {
    const k = cls(c);
    const run = runs[runs.length - 1];
    if (run && k === last) run.push(c);
    else runs.push([c]);
    last = k;
  }
  // An upper-case run followed by lower case gives its last letter to the next word ("IDName" → "ID", "Name").
  for (let i = 0; i + 1 < runs.length; i++) {
    const cur = runs[i] ?? [];
    const next = runs[i + 1] ?? [];
    if (cur.length > 0 && cls(cur[0] ?? '') === 2 && cls(next[0] ?? '') === 1) {
      const moved = cur.pop();
      if (moved !== undefined) next.unshift(moved);
    }
  }
  return runs
    .map((r) => r.join(''))
    .filter((w) => w !== '' && !/^[\s_\-.]+$/u.test(w))
    .join(' ')
    .toUpperCase();
}

function headerLabel(path: readonly string[], headers: Record<string, string> | undefined): string {
  const find = (key: string): string | undefined => {
    if (!headers) return undefined;
    if (Object.hasOwn(headers, key)) return headers[key];
    const lower = key.toLowerCase();
    const k = Object.keys(headers).find((h) => h.toLowerCase() === lower);
    return k === undefined ? undefined : headers[k];
  };
  const last = path[path.length - 1] ?? '';
  return find(path.join('.')) ?? find(last) ?? fieldHeader(last);
}

/** Splits one row's output into lines, ignoring the template's own trailing newline. */
function rowLines(s: string): string[] {
  return (s.endsWith('\n') ? s.slice(0, -1) : s).split('\n');
}

const TABLE_PREFIX = /^\s*table(\s|$)/;

/** Whether a --format prints a table, with its header: none given, or one starting with "table". */
export function isTableFormat(format: string | undefined): boolean {
  return format === undefined || format.trim() === '' || TABLE_PREFIX.test(format);
}

/**
 * Renders rows for a list command's --format, returning text ready to write (each
 * line newline-terminated):
 *  - undefined, "" or "table": the command's defaultTable;
 *  - "json" / "{{json .}}": the rows as a JSON array indented by 4 spaces;
 *  - "table <tmpl>": a header line derived from the fields in the template, then
 *    one line per row, aligned as Podman's tabwriter would;
 *  - any other template: one line per row, with no header and as written: a `\t` stays
 *    a TAB (Podman's report formatter only aligns tables and its own templates).
 * Throws TemplateError for a bad template.
 */
export function formatRows(rows: unknown[], opts: FormatOptions): string {
  let format = opts.format;
  if (format === undefined || format.trim() === '' || format.trim() === 'table') format = opts.defaultTable;
  if (isJSONFormat(format)) return goJSON(rows, 4) + '\n';

  const table = TABLE_PREFIX.exec(format);
  let src = normalizeFormat(table ? format.slice(table[0].length) : format);
  // Podman's report formatter makes every space of a user's table a column break (string literals too).
  if (table) src = src.replaceAll(' ', '\t');
  if (table && src.trim() === '') {
    const def = TABLE_PREFIX.exec(opts.defaultTable);
    src = normalizeFormat(def ? opts.defaultTable.slice(def[0].length) : opts.defaultTable);
  }
  const typed = (row: unknown): unknown => (opts.type ? goTyped(row, opts.type) : row);
  const name = opts.name !== undefined ? { name: opts.name } : {};
  if (!table && RANGE_FORMAT.test(src)) {
    const list = opts.type ? goTyped(rows, { slice: opts.type }) : rows;
    const out = parseTemplate(src, opts.funcs, name).execute(list);
    return out === '' || out.endsWith('\n') ? out : `${out}\n`;
  }
  // Podman runs each format as "{{range .}}" + its text + "{{end -}}".
  const tmpl = parseTemplate(src, opts.funcs, { ...name, prefix: opts.prefix ?? 11 });

  const lines: string[] = [];
  // Podman's header runs the template over a map of column names, where a field its rows lack has "<no value>".
  const known = (field: string): boolean => rows.length === 0 || hasGoField(typed(rows[0]), field);
  if (table) lines.push(...rowLines(tmpl.header((path) => (known(path[0] ?? '') ? headerLabel(path, opts.headers) : '<no value>'))));
  for (const row of rows) {
    try {
      lines.push(...rowLines(tmpl.execute(typed(row))));
    } catch (e) {
      if (e instanceof TemplateError) e.partialOutput = partialOutput(lines, e.partialOutput, !!table);
      throw e;
    }
  }
  if (lines.length === 0) return '';
  return table ? tabwrite(lines) : lines.map((l) => l + '\n').join('');
}

/**
 * What Podman has printed when a row's template fails: the rows before it, then the failed row as
 * far as it got. A table goes through the tabwriter's final flush, so the unfinished last line
 * has no newline and a tab that ends it makes no padded cell (Go's tabwriter leaves the empty
 * cell after it out of the line).
 */
function partialOutput(done: readonly string[], failed: string, table: boolean): string {
  if (!table) return done.map((l) => l + '\n').join('') + failed;
  if (failed === '') return done.length ? tabwrite([...done]) : '';
  return tabwrite([...done, failed.endsWith('\t') ? failed.slice(0, -1) : failed]).slice(0, -1);
}

/** Buildah writes a template's output as it is, and ends it with a newline only on a terminal. */
export function writeBuildahTemplateOutput(out: string): void {
  process.stdout.write(process.stdout.isTTY ? `${out}\n` : out);
}

/**
 * Podman's `inspect` output: the objects as a JSON array (indented by five spaces, as Podman
 * does), or each through `--format`'s template.
 */
export function printInspected(objects: unknown[], format: string | undefined, type?: GoType): void {
  if (format === undefined || format === 'json') {
    process.stdout.write(`${goJSON(objects.map((o) => withGoJSONTimes(o, type)), 5)}\n`);
    return;
  }
  // Each object reaches the template as the interface{} element of a list.
  const opts: FormatOptions = { format, defaultTable: format, name: 'inspect', ...(type && { type: { iface: type } }) };
  try {
    process.stdout.write(formatRows(objects, opts));
  } catch (e) {
    if (e instanceof TemplateError && e.executing) e.message = `inspecting object: printing inspect output: ${e.message}`;
    throw e;
  }
}
