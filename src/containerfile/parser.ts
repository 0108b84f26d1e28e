// Containerfile parser following BuildKit's rules: parser directives (`# syntax`, `# escape`) at
// the top, comments, line continuations with the escape character, JSON (exec) forms, leading
// `--flag=value` options and heredocs (`<<EOF`, `<<-EOF`, `<<"EOF"`). Every instruction keeps
// the file and line it starts on so errors read `FILE:LINE: message`.
//
// dockerfile-ast (the design card's choice) is a language-server AST: it keeps ranges for an
// editor but leaves escape handling, JSON forms and heredoc bodies to the caller, which is most
// of what a builder needs. This parser is the part we need, in one small file without the
// vscode-languageserver dependencies.

export class ContainerfileError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    message: string,
  ) {
    super(`${file}:${line}: ${message}`);
    this.name = 'ContainerfileError';
  }
}

export interface Heredoc {
  /** The delimiter word, e.g. EOF. */
  name: string;
  content: string;
  /** False for `<<"EOF"` / `<<'EOF'`: the body is taken literally. */
  expand: boolean;
  /** `<<-EOF`: leading tabs were stripped. */
  chomp: boolean;
}

export interface Instruction {
  /** Upper-case keyword: FROM, RUN, ... */
  keyword: string;
  /** Arguments after the keyword and the flags, continuation lines joined, trimmed. */
  args: string;
  /** `--name=value` options in the order given (value '' for a bare `--name`). */
  flags: { name: string; value: string }[];
  /** Parsed exec form when `args` is a JSON array of strings. */
  json: string[] | null;
  heredocs: Heredoc[];
  /** The instruction as written (continuations joined with a space), for STEP lines and errors. */
  original: string;
  file: string;
  line: number;
}

export interface Containerfile {
  file: string;
  escape: string;
  syntax: string | null;
  instructions: Instruction[];
}

const KEYWORDS = new Set([
  'ADD', 'ARG', 'CMD', 'COPY', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'FROM', 'HEALTHCHECK', 'LABEL', 'MAINTAINER',
  'ONBUILD', 'RUN', 'SHELL', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR',
]);
/** Instructions whose leading `--flags` are options rather than part of the command. */
const FLAGGED = new Set(['FROM', 'RUN', 'COPY', 'ADD', 'HEALTHCHECK']);
const JSON_FORMS = new Set(['RUN', 'CMD', 'ENTRYPOINT', 'SHELL', 'VOLUME', 'COPY', 'ADD']);
const HEREDOC_FORMS = new Set(['RUN', 'COPY', 'ADD']);

const DIRECTIVE = /^#\s*([a-zA-Z][a-zA-Z0-9_-]*)\s*=\s*(.*?)\s*$/;

export function parseContainerfile(text: string, file: string): Containerfile {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  let escape = '\\';
  let syntax: string | null = null;
  let i = 0;
  // Directives: only at the very top, before any other comment, blank line or instruction.
  const seen = new Set<string>();
  for (; i < lines.length; i++) {
    const m = DIRECTIVE.exec(lines[i]!.trim());
    if (!m) break;
    const key = m[1]!.toLowerCase();
    const value = m[2]!;
    if (key !== 'escape' && key !== 'syntax' && key !== 'check') break;
    if (seen.has(key)) throw new ContainerfileError(file, i + 1, `only one ${key} parser directive can be used`);
    seen.add(key);
    if (key === 'escape') {
      if (value !== '\\' && value !== '`') throw new ContainerfileError(file, i + 1, `invalid escape token '${value}' does not match ${'`'} or \\`);
      escape = value;
    } else if (key === 'syntax') syntax = value;
  }

  const instructions: Instruction[] = [];
  const isContinued = (l: string): boolean => {
    const t = l.replace(/\s+$/, '');
    if (!t.endsWith(escape)) return false;
    // An escaped escape character at the end is not a continuation.
    let n = 0;
    for (let k = t.length - 1; k >= 0 && t[k] === escape; k--) n++;
    return n % 2 === 1;
  };
  while (i < lines.length) {
    const raw = lines[i]!;
    const startLine = i + 1;
    i++;
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;

    // Join continuation lines; comment and empty lines inside a continuation are dropped.
    let logical = '';
    let cur = raw;
    for (;;) {
      if (isContinued(cur)) {
        const t = cur.replace(/\s+$/, '');
        logical += t.slice(0, -1);
        let next: string | undefined;
        while (i < lines.length) {
          const cand = lines[i]!;
          i++;
          const ct = cand.trim();
          if (ct.startsWith('#') || ct === '') continue;
          next = cand;
          break;
        }
        if (next === undefined) break;
        cur = next;
      } else {
        logical += cur;
        break;
      }
    }
    logical = logical.trim();
    const m = /^(\S+)\s*([\s\S]*)$/.exec(logical);
    const word = m?.[1] ?? '';
    const keyword = word.toUpperCase();
    if (!KEYWORDS.has(keyword)) throw new ContainerfileError(file, startLine, `unknown instruction: ${word}`);
    let rest = (m?.[2] ?? '').trim();
    const flags: { name: string; value: string }[] = [];
    if (FLAGGED.has(keyword)) {
      for (;;) {
        const fm = /^--([a-zA-Z][a-zA-Z0-9-]*)(?:=("(?:[^"\\]|\\.)*"|\S*))?(?:\s+|$)/.exec(rest);
        if (!fm) break;
        let value = fm[2] ?? '';
        if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
        flags.push({ name: fm[1]!, value });
        rest = rest.slice(fm[0].length);
      }
    }
    let json: string[] | null = null;
    if (JSON_FORMS.has(keyword) && rest.startsWith('[')) json = parseJsonArray(rest);

    const heredocs: Heredoc[] = [];
    if (HEREDOC_FORMS.has(keyword) && json === null) {
      const re = /<<(-?)\s*(?:"([A-Za-z_][A-Za-z0-9_]*)"|'([A-Za-z_][A-Za-z0-9_]*)'|([A-Za-z_][A-Za-z0-9_]*))/g;
      let hm: RegExpExecArray | null;
      while ((hm = re.exec(rest))) {
        const chomp = hm[1] === '-';
        const name = hm[2] ?? hm[3] ?? hm[4]!;
        const body: string[] = [];
        let closed = false;
        while (i < lines.length) {
          const l = lines[i]!;
          i++;
          const cmp = chomp ? l.replace(/^\t+/, '') : l;
          if (cmp === name) {
            closed = true;
            break;
          }
          body.push(cmp);
        }
        if (!closed) throw new ContainerfileError(file, startLine, `unterminated heredoc <<${name}`);
        heredocs.push({ name, content: body.length ? body.join('\n') + '\n' : '', expand: hm[2] === undefined && hm[3] === undefined, chomp });
      }
    }
    instructions.push({
      keyword, args: rest, flags, json, heredocs, file, line: startLine,
      original: `${keyword} ${logical.slice(word.length).trim()}`.trim(),
    });
  }
  validate(instructions, file);
  return { file, escape, syntax, instructions };
}

/** `["a", "b"]` → ['a','b'], or null when it is not a JSON array of strings (then it is shell form). */
export function parseJsonArray(s: string): string[] | null {
  try {
    const v: unknown = JSON.parse(s);
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  } catch {
    // Not JSON: shell form.
  }
  return null;
}

const ALLOWED_FLAGS: Record<string, string[]> = {
  FROM: ['platform'],
  RUN: ['mount', 'network', 'security'],
  COPY: ['from', 'chown', 'chmod', 'link', 'parents', 'exclude'],
  ADD: ['chown', 'chmod', 'link', 'keep-git-dir', 'checksum', 'exclude'],
  HEALTHCHECK: ['interval', 'timeout', 'start-period', 'start-interval', 'retries'],
};

/** Flags that are bare (true), `=true` or `=false`. */
const BOOLEAN_FLAGS = new Set(['link', 'parents', 'keep-git-dir']);

/** Checks that need no variable values: they fail the build before anything runs. */
function validate(instructions: Instruction[], file: string): void {
  const err = (ins: Instruction, msg: string): never => {
    throw new ContainerfileError(file, ins.line, msg);
  };
  let sawFrom = false;
  for (const ins of instructions) {
    const allowed = ALLOWED_FLAGS[ins.keyword] ?? [];
    for (const f of ins.flags) {
      if (!allowed.includes(f.name)) err(ins, `${ins.keyword}: unknown flag: --${f.name}`);
      if (BOOLEAN_FLAGS.has(f.name) && !['', 'true', 'false'].includes(f.value)) err(ins, `${ins.keyword}: invalid --${f.name} value "${f.value}" (true or false)`);
    }
    if (ins.keyword === 'FROM') sawFrom = true;
    else if (!sawFrom && ins.keyword !== 'ARG') err(ins, `${ins.keyword} instruction before the first FROM (only ARG may come first)`);
    const needsArgs = !['HEALTHCHECK'].includes(ins.keyword);
    if (needsArgs && ins.args === '' && !ins.heredocs.length) err(ins, `${ins.keyword} requires at least one argument`);
    switch (ins.keyword) {
      case 'FROM': {
        const w = ins.args.split(/\s+/);
        if (!(w.length === 1 || (w.length === 3 && w[1]!.toUpperCase() === 'AS'))) err(ins, 'FROM requires either one or three arguments (FROM IMAGE [AS NAME])');
        if (w.length === 3 && !/^[a-zA-Z][a-zA-Z0-9_.-]*$/.test(w[2]!)) err(ins, `invalid name for build stage: "${w[2]}", name can't start with a number or contain symbols`);
        break;
      }
      case 'COPY':
      case 'ADD': {
        const n = ins.json ? ins.json.length : ins.args.split(/\s+/).length;
        if (n < 2) err(ins, `${ins.keyword} requires at least two arguments, but only one was provided. Destination could not be determined`);
        break;
      }
      case 'SHELL':
        if (!ins.json) err(ins, 'SHELL requires the arguments to be in JSON form');
        break;
      case 'ONBUILD': {
        const k = ins.args.split(/\s+/)[0]!.toUpperCase();
        if (k === 'ONBUILD') err(ins, 'chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed');
        if (k === 'FROM' || k === 'MAINTAINER') err(ins, `${k} isn't allowed as an ONBUILD trigger`);
        if (!KEYWORDS.has(k)) err(ins, `unknown instruction in ONBUILD: ${k}`);
        break;
      }
      case 'HEALTHCHECK': {
        const k = ins.args.split(/\s+/)[0]!.toUpperCase();
        if (k !== 'NONE' && k !== 'CMD') err(ins, 'HEALTHCHECK requires NONE or CMD followed by a command');
        break;
      }
      case 'ENV':
      case 'LABEL':
        try {
          parseKeyValues(ins.args, ins.keyword);
        } catch (e) {
          err(ins, (e as Error).message);
        }
        break;
      case 'STOPSIGNAL':
      case 'WORKDIR':
      case 'USER':
      case 'MAINTAINER':
        break;
    }
  }
  if (!sawFrom) throw new ContainerfileError(file, instructions[0]?.line ?? 1, 'no FROM instruction: a Containerfile must name a base image');
}

/**
 * Docker's ENV/LABEL argument forms: `K=V K2="V 2"` (quotes kept for the later expansion step),
 * or the legacy `K V with spaces` for a single pair.
 */
export function parseKeyValues(args: string, keyword: string): { key: string; value: string; rawWord: string; legacy: boolean }[] {
  const words = splitKeepQuotes(args);
  if (!words.length) throw new Error(`${keyword} requires at least one argument`);
  if (!words[0]!.includes('=')) {
    const key = words[0]!;
    const value = args.slice(args.indexOf(key) + key.length).trim();
    if (value === '') throw new Error(`${keyword} must have two arguments`);
    return [{ key, value, rawWord: `${key}=${value}`, legacy: true }];
  }
  return words.map((w) => {
    const eq = w.indexOf('=');
    if (eq < 0) throw new Error(`${keyword}: "${w}" is not of the form KEY=VALUE`);
    if (eq === 0) throw new Error(`${keyword} names can not be blank`);
    return { key: w.slice(0, eq), value: w.slice(eq + 1), rawWord: w, legacy: false };
  });
}

/** Splits on unquoted whitespace, keeping quotes and escapes for the expansion step. */
export function splitKeepQuotes(s: string, escape = '\\'): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: string | null = null;
  for (let k = 0; k < s.length; k++) {
    const ch = s[k]!;
    if (quote) {
      cur += ch;
      if (ch === escape && quote === '"' && k + 1 < s.length) cur += s[++k];
      else if (ch === quote) quote = null;
      continue;
    }
    if (/\s/.test(ch)) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
      continue;
    }
    inWord = true;
    cur += ch;
    if (ch === escape && k + 1 < s.length) cur += s[++k];
    else if (ch === '"' || ch === "'") quote = ch;
  }
  if (inWord) out.push(cur);
  return out;
}
