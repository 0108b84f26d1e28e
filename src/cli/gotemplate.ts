import { goJSON } from '../image/gojson.ts';
import { GoTime } from '../image/gotime.ts';

/**
 * A subset of Go's text/template, as used by Podman/Buildah/Skopeo `--format`.
 *
 * Values are plain JS data. Because JS cannot tell a Go struct from a Go map, every
 * plain object is treated like a `map[string]interface{}`: missing keys yield "no
 * value" instead of an error, ranges visit keys in sorted order, and `%v` prints
 * `map[k:v]`. `undefined` plays the role of Go's invalid reflect.Value (a missing
 * key) and `null` the role of a nil pointer/interface. Data whose Go type matters (struct
 * fields, time.Time, nil maps and slices) is marked with goTyped; see src/cli/gotypes.ts.
 */

export class TemplateError extends Error {
  override name = 'TemplateError';
  /**
   * What the template had written when it failed. Go writes as it goes, so Podman's output keeps
   * it before the error (main.ts prints it).
   */
  partialOutput = '';
  constructor(
    message: string,
    /** Whether it failed while running over data, rather than while parsing. */
    readonly executing = false,
  ) {
    super(message);
  }
}

export type TemplateFunc = (...args: unknown[]) => unknown;

export interface Template {
  execute(data: unknown): string;
  /**
   * Renders the template's top level with every action replaced by `label(path)`,
   * where `path` is the first field chain the action references (e.g. `.Labels.foo`
   * gives ["Labels", "foo"]); actions that reference no field render as "". Text
   * between actions is kept, so this yields a header line for a `table` format.
   */
  header(label: (fieldPath: readonly string[]) => string): string;
}

// ---------------------------------------------------------------------------
// Lexer

type TokType =
  | 'text'
  | 'leftDelim'
  | 'rightDelim'
  | 'space'
  | 'field'
  | 'dot'
  | 'variable'
  | 'identifier'
  | 'keyword'
  | 'string'
  | 'rawString'
  | 'charConst'
  | 'char'
  | 'number'
  | 'bool'
  | 'nil'
  | 'declare'
  | 'assign'
  | 'pipe'
  | 'leftParen'
  | 'rightParen'
  | 'eof';

interface Token {
  type: TokType;
  val: string;
  pos: number;
  end: number;
}

const KEYWORDS = new Set(['block', 'break', 'continue', 'define', 'else', 'end', 'if', 'range', 'template', 'with']);

const isSpaceCh = (c: string | undefined): boolean => c === ' ' || c === '\t' || c === '\r' || c === '\n';
const isDigitCh = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';
const ALNUM_RUN = /[\p{L}\p{Nd}_]*/uy;
const ALNUM_ONE = /^[\p{L}\p{Nd}_]$/u;

function codePointAt(s: string, i: number): string {
  const cp = s.codePointAt(i);
  return cp === undefined ? '' : String.fromCodePoint(cp);
}

function describeRune(ch: string): string {
  const cp = ch.codePointAt(0) ?? 0;
  return `U+${cp.toString(16).toUpperCase().padStart(4, '0')} '${ch}'`;
}

/** A template's text and how its errors name places in it. */
interface Source {
  text: string;
  /** The template's name, as Go errors show it; unnamed templates show line:column only. */
  name: string | undefined;
  /** Characters the caller's wrapper put before the text on its first line (Podman's "{{range .}}"). */
  prefix: number;
}

function lineCol(src: Source, pos: number): [number, number] {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < pos && i < src.text.length; i++) {
    if (src.text[i] === '\n') {
      line++;
      lineStart = i + 1;
    }
  }
  return [line, pos - lineStart + 1 + (line === 1 ? src.prefix : 0)];
}

function where(src: Source, pos: number): string {
  const [line, col] = lineCol(src, pos);
  return `${line}:${col}`;
}

/** A parse error as Go words it: named templates give the line only. */
function parseError(src: Source, pos: number, msg: string): TemplateError {
  if (src.name === undefined) return new TemplateError(`template: ${where(src, pos)}: ${msg}`);
  return new TemplateError(`template: ${src.name}:${lineCol(src, pos)[0]}: ${msg}`);
}

/**
 * An execution error as Go words it, at the action `text` when there is one. Go's ErrorContext
 * counts columns from 0 (the byte offset in the line).
 */
function execError(src: Source, pos: number, text: string | undefined, msg: string): TemplateError {
  if (src.name === undefined) return new TemplateError(`template: ${where(src, pos)}:${text ? ` executing at <${text}>:` : ''} ${msg}`, true);
  const [line, col] = lineCol(src, pos);
  const ctx = text ? ` executing ${JSON.stringify(src.name)} at <${text}>:` : '';
  return new TemplateError(`template: ${src.name}:${line}:${col - 1}:${ctx} ${msg}`, true);
}

function lex(source: Source): Token[] {
  const src = source.text;
  const toks: Token[] = [];
  const fail = (p: number, msg: string): never => {
    throw parseError(source, p, msg);
  };
  const skipSpace = (p: number): number => {
    while (isSpaceCh(src[p])) p++;
    return p;
  };
  // Go only treats "-" as a trim marker when it is separated from the action by
  // whitespace, so that `{{-3}}` still lexes as the number -3.
  const atRightDelim = (p: number): { len: number; trim: boolean } | null => {
    if (isSpaceCh(src[p]) && src[p + 1] === '-' && src.startsWith('}}', p + 2)) return { len: 4, trim: true };
    if (src.startsWith('}}', p)) return { len: 2, trim: false };
    return null;
  };
  const atTerminator = (p: number): boolean => {
    const c = src[p];
    if (c === undefined || isSpaceCh(c) || '.,|:=()'.includes(c)) return true;
    return src.startsWith('}}', p);
  };
  const alnumEnd = (p: number): number => {
    ALNUM_RUN.lastIndex = p;
    ALNUM_RUN.test(src);
    return ALNUM_RUN.lastIndex;
  };
  const requireTerminator = (p: number): void => {
    if (!atTerminator(p)) fail(p, `bad character ${describeRune(codePointAt(src, p))}`);
  };
  const scanQuoted = (p: number, quote: string, what: string): number => {
    let q = p + 1;
    for (;;) {
      const c = src[q];
      if (c === '\\') {
        const n = src[q + 1];
        if (n === undefined || n === '\n') fail(p, `unterminated ${what}`);
        q += 2;
        continue;
      }
      if (c === undefined || c === '\n') fail(p, `unterminated ${what}`);
      if (c === quote) return q + 1;
      q++;
    }
  };
  const scanNumber = (p: number): number => {
    let q = p;
    if (src[q] === '+' || src[q] === '-') q++;
    const dec = '0123456789_';
    const hex = '0123456789abcdefABCDEF_';
    let digits = dec;
    if (src[q] === '0') {
      q++;
      const c = src[q];
      if (c === 'x' || c === 'X') {
        q++;
        digits = hex;
      } else if (c === 'o' || c === 'O') {
        q++;
        digits = '01234567_';
      } else if (c === 'b' || c === 'B') {
        q++;
        digits = '01_';
      }
    }
    const run = (set: string): void => {
      while (q < src.length && set.includes(src[q] ?? '')) q++;
    };
    run(digits);
    if (src[q] === '.') {
      q++;
      run(digits);
    }
    if ((digits === dec && (src[q] === 'e' || src[q] === 'E')) || (digits === hex && (src[q] === 'p' || src[q] === 'P'))) {
      q++;
      if (src[q] === '+' || src[q] === '-') q++;
      run('0123456789_');
    }
    if (src[q] === 'i') q++;
    if (q < src.length && ALNUM_ONE.test(codePointAt(src, q))) {
      fail(p, `bad number syntax: ${JSON.stringify(src.slice(p, q + 1))}`);
    }
    return q;
  };

  let pos = 0;
  for (;;) {
    const open = src.indexOf('{{', pos);
    if (open < 0) {
      if (pos < src.length) toks.push({ type: 'text', val: src.slice(pos), pos, end: src.length });
      break;
    }
    const trimLeft = src[open + 2] === '-' && isSpaceCh(src[open + 3]);
    let textEnd = open;
    if (trimLeft) while (textEnd > pos && isSpaceCh(src[textEnd - 1])) textEnd--;
    if (textEnd > pos) toks.push({ type: 'text', val: src.slice(pos, textEnd), pos, end: textEnd });
    let p = open + 2 + (trimLeft ? 2 : 0);

    if (src.startsWith('/*', p)) {
      const close = src.indexOf('*/', p + 2);
      if (close < 0) fail(open, 'unclosed comment');
      p = close + 2;
      const rd = atRightDelim(p);
      if (!rd) return fail(open, 'comment ends before closing delimiter');
      p += rd.len;
      if (rd.trim) p = skipSpace(p);
      pos = p;
      continue;
    }

    toks.push({ type: 'leftDelim', val: '{{', pos: open, end: p });
    let parenDepth = 0;
    for (;;) {
      const rd = atRightDelim(p);
      if (rd) {
        if (parenDepth > 0) fail(p, 'unclosed left paren');
        toks.push({ type: 'rightDelim', val: '}}', pos: p, end: p + rd.len });
        p += rd.len;
        if (rd.trim) p = skipSpace(p);
        break;
      }
      // Podman's wrapper puts "{{end -}}" after the text, so its lexer meets that brace instead of the end.
      if (p >= src.length) fail(source.prefix > 0 ? p : open, source.prefix > 0 ? `bad character ${describeRune('{')}` : 'unclosed action');
      const c = src[p] ?? '';
      const start = p;
      const push = (type: TokType, end: number): void => {
        toks.push({ type, val: src.slice(start, end), pos: start, end });
        p = end;
      };
      if (isSpaceCh(c)) {
        let q = p;
        // Stop before a space that begins a " -}}" trim marker.
        while (isSpaceCh(src[q]) && !(src[q + 1] === '-' && src.startsWith('}}', q + 2))) q++;
        push('space', q);
      } else if (c === '=') {
        push('assign', p + 1);
      } else if (c === ':') {
        if (src[p + 1] !== '=') fail(p, 'expected :=');
        push('declare', p + 2);
      } else if (c === '|') {
        push('pipe', p + 1);
      } else if (c === '"') {
        push('string', scanQuoted(p, '"', 'quoted string'));
      } else if (c === '`') {
        const close = src.indexOf('`', p + 1);
        if (close < 0) fail(p, 'unterminated raw quoted string');
        push('rawString', close + 1);
      } else if (c === "'") {
        push('charConst', scanQuoted(p, "'", 'character constant'));
      } else if (c === '$') {
        const q = alnumEnd(p + 1);
        requireTerminator(q);
        push('variable', q);
      } else if (c === '.' && isDigitCh(src[p + 1])) {
        push('number', scanNumber(p));
      } else if (c === '.') {
        const q = alnumEnd(p + 1);
        if (q === p + 1) {
          requireTerminator(q);
          push('dot', q);
        } else {
          requireTerminator(q);
          push('field', q);
        }
      } else if (c === '+' || c === '-' || isDigitCh(c)) {
        push('number', scanNumber(p));
      } else if (ALNUM_ONE.test(codePointAt(src, p))) {
        const q = alnumEnd(p);
        requireTerminator(q);
        const word = src.slice(p, q);
        if (KEYWORDS.has(word)) push('keyword', q);
        else if (word === 'true' || word === 'false') push('bool', q);
        else if (word === 'nil') push('nil', q);
        else push('identifier', q);
      } else if (c === '(') {
        parenDepth++;
        push('leftParen', p + 1);
      } else if (c === ')') {
        parenDepth--;
        if (parenDepth < 0) fail(p, 'unexpected right paren');
        push('rightParen', p + 1);
      } else if (c >= ' ' && c <= '~') {
        push('char', p + 1);
      } else {
        fail(p, `unrecognized character in action: ${describeRune(codePointAt(src, p))}`);
      }
    }
    pos = p;
  }
  toks.push({ type: 'eof', val: '', pos: src.length, end: src.length });
  return toks;
}

// ---------------------------------------------------------------------------
// Literals

const HEX_DIGIT = /^[0-9a-fA-F]$/;

/** Decodes Go string/char literal escapes; Go strings are bytes, so \x and octal escapes build UTF-8. */
function unescapeGo(body: string, quote: '"' | "'"): string | null {
  const bytes: number[] = [];
  const enc = new TextEncoder();
  const pushCp = (cp: number): void => {
    for (const b of enc.encode(String.fromCodePoint(cp))) bytes.push(b);
  };
  const hexAt = (k: number, n: number): number | null => {
    const h = body.slice(k, k + n);
    if (h.length !== n || ![...h].every((ch) => HEX_DIGIT.test(ch))) return null;
    return parseInt(h, 16);
  };
  for (let k = 0; k < body.length; ) {
    const c = body[k];
    if (c !== '\\') {
      const cp = body.codePointAt(k) ?? 0;
      pushCp(cp >= 0xd800 && cp <= 0xdfff ? 0xfffd : cp);
      k += cp > 0xffff ? 2 : 1;
      continue;
    }
    const e = body[k + 1];
    k += 2;
    const simple: Record<string, number> = { a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11, '\\': 92 };
    const sv = e === undefined ? undefined : simple[e];
    if (e !== undefined && Object.hasOwn(simple, e) && sv !== undefined) {
      bytes.push(sv);
    } else if (e === quote) {
      bytes.push(e.charCodeAt(0));
    } else if (e === 'x') {
      const v = hexAt(k, 2);
      if (v === null) return null;
      bytes.push(v);
      k += 2;
    } else if (e !== undefined && e >= '0' && e <= '7') {
      const o = body.slice(k - 1, k + 2);
      if (!/^[0-7]{3}$/.test(o)) return null;
      const v = parseInt(o, 8);
      if (v > 255) return null;
      bytes.push(v);
      k += 2;
    } else if (e === 'u' || e === 'U') {
      const n = e === 'u' ? 4 : 8;
      const v = hexAt(k, n);
      if (v === null || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return null;
      pushCp(v);
      k += n;
    } else {
      return null;
    }
  }
  return new TextDecoder('utf-8', { ignoreBOM: true }).decode(Uint8Array.from(bytes));
}

function parseNumberLiteral(text: string, isChar: boolean): number | null {
  if (isChar) {
    const s = unescapeGo(text.slice(1, -1), "'");
    if (s === null) return null;
    const cps = [...s];
    if (cps.length !== 1) return null;
    return cps[0]?.codePointAt(0) ?? null;
  }
  if (text.endsWith('i')) return null;
  let t = text;
  let sign = 1;
  if (t.startsWith('+') || t.startsWith('-')) {
    if (t.startsWith('-')) sign = -1;
    t = t.slice(1);
  }
  if (t.includes('_')) {
    if (/__|^_|_$|\._|_\./.test(t)) return null;
    t = t.replace(/_/g, '');
  }
  if (t === '') return null;
  let m: RegExpExecArray | null;
  if (/^0[xX][0-9a-fA-F]+$/.test(t)) return sign * Number(BigInt(t));
  if (/^0[oO][0-7]+$/.test(t)) return sign * Number(BigInt('0o' + t.slice(2)));
  if (/^0[bB][01]+$/.test(t)) return sign * Number(BigInt(t));
  if (/^0[0-7]+$/.test(t)) return sign * Number(BigInt('0o' + t.slice(1)));
  if ((m = /^0[xX]([0-9a-fA-F]*)(?:\.([0-9a-fA-F]*))?[pP]([+-]?\d+)$/.exec(t))) {
    const intPart = m[1] ?? '';
    const frac = m[2] ?? '';
    if (intPart === '' && frac === '') return null;
    const mant = Number(BigInt('0x' + (intPart + frac || '0')));
    return sign * mant * 2 ** (Number(m[3]) - 4 * frac.length);
  }
  if (!/^(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t)) return null;
  return sign * Number(t);
}

// ---------------------------------------------------------------------------
// Parse tree

interface ArgBase {
  pos: number;
  text: string;
}
type Arg = ArgBase &
  (
    | { kind: 'field'; path: string[] }
    | { kind: 'variable'; name: string; path: string[] }
    | { kind: 'dot' }
    | { kind: 'nil' }
    | { kind: 'bool'; value: boolean }
    | { kind: 'number'; value: number }
    | { kind: 'string'; value: string }
    | { kind: 'ident'; name: string }
    | { kind: 'pipe'; pipe: Pipe }
    | { kind: 'chain'; node: Arg; path: string[] }
  );

interface Command {
  pos: number;
  text: string;
  args: Arg[];
}

interface Pipe {
  pos: number;
  decl: string[];
  isAssign: boolean;
  cmds: Command[];
}

type Node =
  | { kind: 'text'; text: string }
  | { kind: 'action'; pos: number; pipe: Pipe }
  | { kind: 'if' | 'with' | 'range'; pos: number; pipe: Pipe; list: Node[]; elseList: Node[] | null }
  | { kind: 'break' | 'continue'; pos: number }
  | { kind: 'template'; pos: number; name: string; pipe: Pipe | null };

type Marker = { kind: 'end'; pos: number } | { kind: 'else'; pos: number };

class Parser {
  private i = 0;
  private vars: string[] = ['$'];
  private rangeDepth = 0;
  readonly defs = new Map<string, Node[]>();

  constructor(
    private readonly src: Source,
    private readonly toks: Token[],
    private readonly hasFunc: (name: string) => boolean,
  ) {}

  private fail(pos: number, msg: string): never {
    throw parseError(this.src, pos, msg);
  }

  private next(): Token {
    // Reading past the end keeps returning EOF, and still advances so backup() stays symmetric.
    const t = this.toks[Math.min(this.i, this.toks.length - 1)];
    this.i++;
    if (!t) throw new TemplateError('template: internal error: no tokens');
    return t;
  }

  private backup(): void {
    this.i--;
  }

  private peek(): Token {
    const t = this.next();
    this.backup();
    return t;
  }

  private nextNonSpace(): Token {
    let t = this.next();
    while (t.type === 'space') t = this.next();
    return t;
  }

  private peekNonSpace(): Token {
    const t = this.nextNonSpace();
    this.backup();
    return t;
  }

  private describe(t: Token): string {
    if (t.type === 'eof') return 'EOF';
    if (t.type === 'keyword') return `<${t.val}>`;
    return JSON.stringify(t.val);
  }

  private unexpected(t: Token, context: string): never {
    return this.fail(t.pos, `unexpected ${this.describe(t)} in ${context}`);
  }

  private expect(type: TokType, context: string): Token {
    const t = this.nextNonSpace();
    if (t.type !== type) this.unexpected(t, context);
    return t;
  }

  parse(): Node[] {
    const root: Node[] = [];
    while (this.peek().type !== 'eof') {
      if (this.peek().type === 'leftDelim') {
        const save = this.i;
        this.next();
        const t = this.nextNonSpace();
        if (t.type === 'keyword' && t.val === 'define') {
          this.parseDefinition();
          continue;
        }
        this.i = save;
      }
      const n = this.textOrAction();
      if (n.kind === 'end' || n.kind === 'else') this.fail(n.pos, `unexpected {{${n.kind}}}`);
      root.push(n);
    }
    return root;
  }

  private withFreshScope<T>(fn: () => T): T {
    const savedVars = this.vars;
    const savedDepth = this.rangeDepth;
    this.vars = ['$'];
    this.rangeDepth = 0;
    try {
      return fn();
    } finally {
      this.vars = savedVars;
      this.rangeDepth = savedDepth;
    }
  }

  private parseDefinition(): void {
    const nameTok = this.nextNonSpace();
    const name = this.templateName(nameTok, 'define clause');
    this.expect('rightDelim', 'define clause');
    const list = this.withFreshScope(() => {
      const [l, end] = this.itemList('define', nameTok.pos);
      if (end.kind !== 'end') this.fail(end.pos, 'unexpected {{else}} in define clause');
      return l;
    });
    this.defs.set(name, list);
  }

  private templateName(t: Token, context: string): string {
    if (t.type !== 'string' && t.type !== 'rawString') this.unexpected(t, context);
    return this.unquote(t);
  }

  private unquote(t: Token): string {
    if (t.type === 'rawString') return t.val.slice(1, -1).replace(/\r/g, '');
    const s = unescapeGo(t.val.slice(1, -1), '"');
    if (s === null) this.fail(t.pos, `invalid syntax in string literal ${t.val}`);
    return s;
  }

  private textOrAction(): Node | Marker {
    const t = this.nextNonSpace();
    if (t.type === 'text') return { kind: 'text', text: t.val };
    if (t.type === 'leftDelim') return this.action();
    return this.unexpected(t, 'input');
  }

  private itemList(context: string, openPos: number): [Node[], Marker] {
    const list: Node[] = [];
    while (this.peekNonSpace().type !== 'eof') {
      const n = this.textOrAction();
      if (n.kind === 'end' || n.kind === 'else') return [list, n];
      list.push(n);
    }
    return this.fail(this.src.text.length, `unexpected EOF: missing {{end}} for {{${context}}} at ${where(this.src, openPos)}`);
  }

  private action(): Node | Marker {
    const t = this.nextNonSpace();
    if (t.type === 'keyword') {
      switch (t.val) {
        case 'block':
          return this.blockControl(t.pos);
        case 'break':
        case 'continue': {
          const n = this.nextNonSpace();
          if (n.type !== 'rightDelim') this.unexpected(n, `{{${t.val}}}`);
          if (this.rangeDepth === 0) this.fail(t.pos, `{{${t.val}}} outside {{range}}`);
          return { kind: t.val, pos: t.pos };
        }
        case 'else': {
          const peek = this.peekNonSpace();
          if (peek.type === 'keyword' && (peek.val === 'if' || peek.val === 'with')) return { kind: 'else', pos: t.pos };
          this.expect('rightDelim', 'else');
          return { kind: 'else', pos: t.pos };
        }
        case 'end':
          this.expect('rightDelim', 'end');
          return { kind: 'end', pos: t.pos };
        case 'if':
        case 'with':
        case 'range':
          return this.control(t.val, t.pos);
        case 'template':
          return this.templateControl(t.pos);
        default:
          break;
      }
    }
    this.backup();
    const pos = this.peek().pos;
    return { kind: 'action', pos, pipe: this.pipeline('command', 'rightDelim') };
  }

  private control(context: 'if' | 'with' | 'range', pos: number): Node {
    const mark = this.vars.length;
    try {
      const pipe = this.pipeline(context, 'rightDelim');
      if (context === 'range') this.rangeDepth++;
      const [list, next] = this.itemList(context, pos);
      if (context === 'range') this.rangeDepth--;
      let elseList: Node[] | null = null;
      if (next.kind === 'else') {
        const peek = this.peek();
        // "{{else if}}" nests a new if in the else branch; both share one {{end}}.
        if (peek.type === 'keyword' && peek.val === context && context !== 'range') {
          this.next();
          elseList = [this.control(context, peek.pos)];
        } else {
          const [l, end] = this.itemList(context, pos);
          if (end.kind !== 'end') this.fail(end.pos, 'expected {{end}}; found {{else}}');
          elseList = l;
        }
      }
      return { kind: context, pos, pipe, list, elseList };
    } finally {
      this.vars.length = mark;
    }
  }

  private templateControl(pos: number): Node {
    const name = this.templateName(this.nextNonSpace(), 'template clause');
    let pipe: Pipe | null = null;
    if (this.nextNonSpace().type !== 'rightDelim') {
      this.backup();
      pipe = this.pipeline('template clause', 'rightDelim');
    }
    return { kind: 'template', pos, name, pipe };
  }

  private blockControl(pos: number): Node {
    const name = this.templateName(this.nextNonSpace(), 'block clause');
    const pipe = this.pipeline('block clause', 'rightDelim');
    const list = this.withFreshScope(() => {
      const [l, end] = this.itemList('block', pos);
      if (end.kind !== 'end') this.fail(end.pos, 'unexpected {{else}} in block clause');
      return l;
    });
    this.defs.set(name, list);
    return { kind: 'template', pos, name, pipe };
  }

  private pipeline(context: string, end: 'rightDelim' | 'rightParen'): Pipe {
    const pipe: Pipe = { pos: this.peekNonSpace().pos, decl: [], isAssign: false, cmds: [] };
    for (;;) {
      const save = this.i;
      const v = this.peekNonSpace();
      if (v.type !== 'variable') break;
      this.next();
      const nxt = this.peekNonSpace();
      if (nxt.type === 'assign' || nxt.type === 'declare') {
        this.nextNonSpace();
        pipe.isAssign = nxt.type === 'assign';
        if (pipe.isAssign) {
          if (!this.vars.includes(v.val)) this.fail(v.pos, `undefined variable "${v.val}"`);
        } else {
          this.vars.push(v.val);
        }
        pipe.decl.push(v.val);
        break;
      }
      if (nxt.type === 'char' && nxt.val === ',') {
        this.nextNonSpace();
        pipe.decl.push(v.val);
        this.vars.push(v.val);
        if (context === 'range' && pipe.decl.length < 2) {
          const pk = this.peekNonSpace().type;
          if (pk === 'variable' || pk === 'rightDelim' || pk === 'rightParen') continue;
          this.fail(nxt.pos, 'range can only initialize variables');
        }
        this.fail(nxt.pos, `too many declarations in ${context}`);
      }
      this.i = save;
      break;
    }
    let afterPipe: Token | null = null;
    for (;;) {
      const t = this.nextNonSpace();
      if (t.type === end) {
        if (afterPipe) this.fail(afterPipe.pos, 'missing command after |');
        this.checkPipeline(pipe, context, t.pos);
        return pipe;
      }
      switch (t.type) {
        case 'bool':
        case 'charConst':
        case 'dot':
        case 'field':
        case 'identifier':
        case 'number':
        case 'nil':
        case 'rawString':
        case 'string':
        case 'variable':
        case 'leftParen':
          this.backup();
          pipe.cmds.push(this.command());
          afterPipe = this.toks[this.i - 1]?.type === 'pipe' ? (this.toks[this.i - 1] ?? null) : null;
          break;
        default:
          this.unexpected(t, context);
      }
    }
  }

  private checkPipeline(pipe: Pipe, context: string, pos: number): void {
    if (pipe.cmds.length === 0) this.fail(pos, `missing value for ${context}`);
    pipe.cmds.forEach((c, k) => {
      const first = c.args[0];
      if (k > 0 && first && ['bool', 'dot', 'nil', 'number', 'string'].includes(first.kind)) {
        this.fail(c.pos, `non executable command in pipeline stage ${k + 1}`);
      }
    });
  }

  private command(): Command {
    const cmd: Command = { pos: this.peekNonSpace().pos, text: '', args: [] };
    for (;;) {
      this.peekNonSpace();
      const op = this.operand();
      if (op) {
        cmd.args.push(op);
        cmd.text = this.src.text.slice(cmd.pos, this.toks[this.i - 1]?.end ?? cmd.pos);
      }
      const t = this.next();
      if (t.type === 'space') continue;
      if (t.type === 'rightDelim' || t.type === 'rightParen') this.backup();
      else if (t.type !== 'pipe') this.unexpected(t, 'operand');
      break;
    }
    if (cmd.args.length === 0) this.fail(cmd.pos, 'empty command');
    return cmd;
  }

  private operand(): Arg | null {
    const start = this.peek().pos;
    const node = this.term();
    if (!node) return null;
    if (this.peek().type !== 'field') return node;
    // Go places a chain (and so its errors) at its first trailing field.
    const chainPos = this.peek().pos;
    const path: string[] = [];
    while (this.peek().type === 'field') path.push(this.next().val.slice(1));
    const text = this.src.text.slice(start, this.toks[this.i - 1]?.end ?? start);
    switch (node.kind) {
      case 'field':
        return { kind: 'field', pos: chainPos, text, path: [...node.path, ...path] };
      case 'variable':
        return { kind: 'variable', pos: chainPos, text, name: node.name, path: [...node.path, ...path] };
      case 'bool':
      case 'string':
      case 'number':
      case 'nil':
      case 'dot':
        return this.fail(start, `unexpected . after term ${JSON.stringify(node.text)}`);
      default:
        return { kind: 'chain', pos: chainPos, text, node, path };
    }
  }

  private term(): Arg | null {
    const t = this.nextNonSpace();
    const base = { pos: t.pos, text: t.val };
    switch (t.type) {
      case 'identifier':
        if (!this.hasFunc(t.val)) this.fail(t.pos, `function "${t.val}" not defined`);
        return { ...base, kind: 'ident', name: t.val };
      case 'dot':
        return { ...base, kind: 'dot' };
      case 'nil':
        return { ...base, kind: 'nil' };
      case 'variable':
        if (!this.vars.includes(t.val)) this.fail(t.pos, `undefined variable "${t.val}"`);
        return { ...base, kind: 'variable', name: t.val, path: [] };
      case 'field':
        return { ...base, kind: 'field', path: [t.val.slice(1)] };
      case 'bool':
        return { ...base, kind: 'bool', value: t.val === 'true' };
      case 'number':
      case 'charConst': {
        const value = parseNumberLiteral(t.val, t.type === 'charConst');
        if (value === null) this.fail(t.pos, `illegal number syntax: ${JSON.stringify(t.val)}`);
        return { ...base, kind: 'number', value };
      }
      case 'leftParen': {
        const pipe = this.pipeline('parenthesized pipeline', 'rightParen');
        const text = this.src.text.slice(t.pos, this.toks[this.i - 1]?.end ?? t.end);
        return { pos: t.pos, text, kind: 'pipe', pipe };
      }
      case 'string':
      case 'rawString':
        return { ...base, kind: 'string', value: this.unquote(t) };
      default:
        this.backup();
        return null;
    }
  }
}

// ---------------------------------------------------------------------------
// Value helpers

type Entries = [unknown, unknown][];

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function isTypedArray(v: unknown): v is ArrayLike<number | bigint> {
  return ArrayBuffer.isView(v) && !(v instanceof DataView);
}

function listOf(v: unknown): unknown[] | null {
  if (Array.isArray(v)) return v;
  if (isTypedArray(v)) return Array.from(v);
  return null;
}

/** Objects with their own toString (class instances like URL) print like Go Stringers. */
function stringerOf(v: object): string | null {
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? 'Invalid Date' : GoTime.fromDate(v).toString();
  if (v instanceof GoTime) return v.toString();
  if (v instanceof Error) return v.message;
  if (isPlainObject(v) || Array.isArray(v) || v instanceof Map) return null;
  const ts: unknown = Reflect.get(v, 'toString');
  if (typeof ts === 'function' && ts !== Object.prototype.toString) {
    const s: unknown = ts.call(v);
    if (typeof s === 'string') return s;
  }
  return null;
}

// ---------------------------------------------------------------------------
// Go types for data whose Go counterpart is a struct

/**
 * The Go type of a value handed to a template, where JS data alone cannot say it: a struct's
 * fields (a missing one is an error, an absent or null one is its zero value), nil maps and
 * slices (`map[]` and `[]`, not `<nil>`), and times (RFC 3339 text in our records, printed
 * as Go's time.Time). Unlisted types stay JS-shaped: plain objects behave like Go maps.
 */
export type GoType =
  | 'string'
  | 'int'
  | 'float'
  | 'bool'
  | 'time'
  | 'any'
  | { readonly map: GoType }
  | { readonly slice: GoType }
  | { readonly ptr: GoType }
  /** An interface{} holding T: how Podman's inspect hands each object to the template. */
  | { readonly iface: GoType }
  | GoStructType;

export interface GoStructType {
  /** The Go type name errors show, e.g. "define.InspectContainerState". */
  readonly struct: string;
  /**
   * Fields by Go name with their types. The data may spell a field's key as its JSON name
   * (`created_by` for CreatedBy); keys of the data that are not listed are fields too.
   */
  readonly fields?: Readonly<Record<string, GoType>>;
  /** Methods, which Go finds before fields: Podman's reporters compute columns this way. */
  readonly methods?: Readonly<Record<string, (self: Record<string, unknown>, ...args: unknown[]) => unknown>>;
  /** What `{{json .}}` writes for such a value, when its Go JSON is not the data's own. */
  readonly json?: (self: Record<string, unknown>) => unknown;
}

/** Go types of the objects a template can reach, registered as it reaches them. */
const TYPES = new WeakMap<object, GoType>();
/** Empty maps and slices standing for Go's nil ones: printed `map[]`/`[]`, `null` in JSON. */
const NILS = new WeakSet<object>();

/** Marks `value` (and, as a template reaches them, the values inside it) as being of Go type `type`. */
export function goTyped<T>(value: T, type: GoType): T {
  if (typeof value === 'object' && value !== null) TYPES.set(value, type);
  return value;
}

function isStructType(t: GoType): t is GoStructType {
  return typeof t === 'object' && 'struct' in t;
}

/** The struct a value of type `t` leads to through pointers and interfaces. */
function structOf(t: GoType | undefined): GoStructType | undefined {
  if (t === undefined || typeof t === 'string') return undefined;
  if ('ptr' in t) return structOf(t.ptr);
  if ('iface' in t) return structOf(t.iface);
  return isStructType(t) ? t : undefined;
}

function goTypeString(t: GoType): string {
  if (typeof t === 'string') return t === 'time' ? 'time.Time' : t === 'any' ? 'interface {}' : t === 'float' ? 'float64' : t;
  if ('map' in t) return `map[string]${goTypeString(t.map)}`;
  if ('slice' in t) return `[]${goTypeString(t.slice)}`;
  if ('ptr' in t) return `*${goTypeString(t.ptr)}`;
  if ('iface' in t) return 'interface {}';
  return t.struct;
}

/** The element type of a map or slice type, through pointers. */
function elemType(t: GoType | undefined): GoType | undefined {
  if (t === undefined || typeof t === 'string') return undefined;
  if ('map' in t) return t.map;
  if ('slice' in t) return t.slice;
  if ('ptr' in t) return elemType(t.ptr);
  return undefined;
}

function zeroOf(t: GoType): unknown {
  switch (t) {
    case 'string':
      return '';
    case 'int':
    case 'float':
      return 0;
    case 'bool':
      return false;
    case 'time':
      return GoTime.ZERO;
    case 'any':
      return null;
    default:
      break;
  }
  if ('map' in t || 'slice' in t) {
    const nil = 'map' in t ? new Map() : [];
    NILS.add(nil);
    return goTyped(nil, t);
  }
  if ('ptr' in t || 'iface' in t) return null;
  return goTyped({}, t);
}

/** `v` as a value of Go type `t`: its zero value when absent or nil, registered when an object. */
function asType(v: unknown, t: GoType | undefined): unknown {
  if (t === undefined) return v;
  if (t === 'time') return v === undefined || v === null || v === '' ? GoTime.ZERO : GoTime.from(v);
  // A pointer to a plain value (*time.Time): nil prints <nil>, anything else as the value.
  if (typeof t === 'object' && 'ptr' in t && typeof t.ptr === 'string') return v === undefined || v === null ? null : asType(v, t.ptr);
  if (v === undefined || (v === null && t !== 'any')) return zeroOf(t);
  if (typeof v === 'object' && v !== null && !TYPES.has(v)) TYPES.set(v, t);
  return v;
}

/** The value the json function encodes for `v`: Go's null for nil maps/slices, a struct's own JSON. */
function jsonValue(v: unknown): unknown {
  if (typeof v !== 'object' || v === null) return v;
  if (NILS.has(v)) return null;
  const st = structOf(TYPES.get(v));
  return st?.json && isPlainObject(v) ? st.json(v) : v;
}

type FieldLookup = { value: unknown } | { method: (...args: unknown[]) => unknown } | undefined;

/** A struct's field or method `name` on `obj`, as Go's FieldByName/MethodByName find it. */
function structField(obj: Record<string, unknown>, st: GoStructType, name: string): FieldLookup {
  const method = st.methods?.[name];
  if (method) return { method: (...args: unknown[]) => method(obj, ...args) };
  const declared = st.fields?.[name];
  if (declared !== undefined) {
    if (Object.hasOwn(obj, name)) return { value: asType(obj[name], declared) };
    const loose = looseKey(name);
    const key = Object.keys(obj).find((k) => looseKey(k) === loose);
    return { value: asType(key === undefined ? undefined : obj[key], declared) };
  }
  if (Object.hasOwn(obj, name)) return { value: obj[name] };
  return undefined;
}

/** Whether a template could reach field or method `name` of `v`: always, unless `v` is a struct (goTyped) without it. */
export function hasGoField(v: unknown, name: string): boolean {
  const st = typeof v === 'object' && v !== null ? structOf(TYPES.get(v)) : undefined;
  return !st || !isPlainObject(v) || structField(v, st, name) !== undefined;
}

/** The declared type of a struct's data key (its Go name or JSON spelling), if any. */
function fieldType(st: GoStructType, key: string): GoType | undefined {
  const fields = st.fields ?? {};
  if (Object.hasOwn(fields, key)) return fields[key];
  const loose = looseKey(key);
  const name = Object.keys(fields).find((k) => looseKey(k) === loose);
  return name === undefined ? undefined : fields[name];
}

/**
 * `v` (of Go type `t`, by default the type goTyped gave it) with its time fields' RFC 3339 text
 * as Go's JSON writes a time.Time: the fraction without trailing zeros, so that JSON output
 * matches Podman's byte for byte. Other values are kept; the input is not changed.
 */
export function withGoJSONTimes(v: unknown, t: GoType | undefined = typeof v === 'object' && v !== null ? TYPES.get(v) : undefined): unknown {
  if (t === undefined || v === null || v === undefined) return v;
  if (t === 'time') return typeof v === 'string' ? (GoTime.parse(v)?.toJSON() ?? v) : v;
  if (typeof t === 'string') return v;
  if ('ptr' in t) return withGoJSONTimes(v, t.ptr);
  if ('iface' in t) return withGoJSONTimes(v, t.iface);
  if ('slice' in t) return Array.isArray(v) ? v.map((e) => withGoJSONTimes(e, t.slice)) : v;
  if (!isPlainObject(v)) return v;
  const typeOfKey = 'map' in t ? (): GoType => t.map : (k: string): GoType | undefined => fieldType(t, k);
  return Object.fromEntries(Object.entries(v).map(([k, e]) => [k, withGoJSONTimes(e, typeOfKey(k))]));
}

/** A struct's fields in order, for `{v1 v2 …}`: the data's keys, then declared fields it lacks. */
function structValues(obj: Record<string, unknown>, st: GoStructType): unknown[] {
  const declared = st.fields ?? {};
  const byLoose = new Map(Object.keys(declared).map((k) => [looseKey(k), k]));
  const seen = new Set<string>();
  const out: unknown[] = [];
  for (const [k, v] of Object.entries(obj)) {
    const field = byLoose.get(looseKey(k));
    if (field !== undefined) seen.add(field);
    out.push(asType(v, field === undefined ? undefined : declared[field]));
  }
  for (const [k, t] of Object.entries(declared)) if (!seen.has(k)) out.push(zeroOf(t));
  return out;
}

function isMapLike(v: unknown): v is Record<string, unknown> | Map<unknown, unknown> {
  if (v instanceof Map) return true;
  if (typeof v !== 'object' || v === null) return false;
  if (Array.isArray(v) || isTypedArray(v) || v instanceof Date || v instanceof Set || v instanceof GoTime) return false;
  return true;
}

function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Map entries in Go's sorted-key order; keys whose value is undefined count as absent. */
function sortedEntries(m: Record<string, unknown> | Map<unknown, unknown>): Entries {
  let entries: Entries;
  if (m instanceof Map) {
    entries = [...m.entries()].filter(([, v]) => v !== undefined);
  } else {
    entries = Object.keys(m)
      .map((k): [unknown, unknown] => [k, m[k]])
      .filter(([, v]) => v !== undefined);
  }
  const allNumbers = entries.every(([k]) => typeof k === 'number');
  return entries.sort(([a], [b]) => (allNumbers ? Number(a) - Number(b) : compareBytes(String(a), String(b))));
}

function truth(v: unknown): boolean {
  if (v === undefined || v === null) return false;
  switch (typeof v) {
    case 'boolean':
      return v;
    case 'number':
      return v !== 0;
    case 'bigint':
      return v !== 0n;
    case 'string':
      return v.length > 0;
    case 'object':
      break;
    default:
      return true;
  }
  const list = listOf(v);
  if (list) return list.length > 0;
  if (v instanceof Map || v instanceof Set) return v.size > 0;
  if (isPlainObject(v)) return Object.keys(v).some((k) => v[k] !== undefined);
  return true;
}

function goTypeName(v: unknown): string {
  if (v === undefined || v === null) return '<nil>';
  switch (typeof v) {
    case 'string':
      return 'string';
    case 'boolean':
      return 'bool';
    case 'number':
      return Number.isInteger(v) ? 'int' : 'float64';
    case 'bigint':
      return 'int64';
    case 'function':
      return 'func(...interface {}) interface {}';
    default:
      break;
  }
  const t = TYPES.get(v);
  if (t !== undefined) return goTypeString(t);
  if (listOf(v)) return '[]interface {}';
  if (v instanceof Date || v instanceof GoTime) return 'time.Time';
  return 'map[string]interface {}';
}

// ---------------------------------------------------------------------------
// fmt: Go's Sprint/Sprintf formatting rules

interface FmtSpec {
  minus: boolean;
  plus: boolean;
  sharp: boolean;
  space: boolean;
  zero: boolean;
  width: number | undefined;
  prec: number | undefined;
}

const NO_FLAGS: FmtSpec = { minus: false, plus: false, sharp: false, space: false, zero: false, width: undefined, prec: undefined };

function runeCount(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

function padTo(s: string, f: FmtSpec, allowZero = true): string {
  if (f.width === undefined) return s;
  const n = f.width - runeCount(s);
  if (n <= 0) return s;
  if (f.minus) return s + ' '.repeat(n);
  return (allowZero && f.zero ? '0' : ' ').repeat(n) + s;
}

const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u;

function quoteWith(s: string, q: '"' | "'", asciiOnly: boolean): string {
  let out = q;
  for (const ch of s) {
    let cp = ch.codePointAt(0) ?? 0;
    if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd;
    const c = String.fromCodePoint(cp);
    if (c === q || c === '\\') {
      out += '\\' + c;
    } else if (PRINTABLE.test(c) && (!asciiOnly || cp < 0x80)) {
      out += c;
    } else {
      const esc: Record<number, string> = { 7: '\\a', 8: '\\b', 12: '\\f', 10: '\\n', 13: '\\r', 9: '\\t', 11: '\\v' };
      const e = esc[cp];
      if (e !== undefined) out += e;
      else if (cp < 0x20 || cp === 0x7f) out += '\\x' + cp.toString(16).padStart(2, '0');
      else if (cp < 0x10000) out += '\\u' + cp.toString(16).padStart(4, '0');
      else out += '\\U' + cp.toString(16).padStart(8, '0');
    }
  }
  return out + q;
}

function canBackquote(s: string): boolean {
  for (const ch of s) {
    const cp = ch.codePointAt(0) ?? 0;
    if (ch === '`' || cp === 0x7f || cp === 0xfeff || (cp < 0x20 && ch !== '\t') || (cp >= 0xd800 && cp <= 0xdfff)) return false;
  }
  return true;
}

function validRune(n: bigint): number {
  if (n < 0n || n > 0x10ffffn || (n >= 0xd800n && n <= 0xdfffn)) return 0xfffd;
  return Number(n);
}

function fmtInteger(n: bigint, verb: string, f: FmtSpec): string | null {
  let base: number;
  switch (verb) {
    case 'v':
    case 'd':
      base = 10;
      break;
    case 'b':
      base = 2;
      break;
    case 'o':
    case 'O':
      base = 8;
      break;
    case 'x':
    case 'X':
      base = 16;
      break;
    case 'c':
      return padTo(String.fromCodePoint(validRune(n)), f);
    case 'q':
      return padTo(quoteWith(String.fromCodePoint(validRune(n)), "'", f.plus), f);
    case 'U': {
      let s = 'U+' + (n < 0n ? -n : n).toString(16).toUpperCase().padStart(f.prec ?? 4, '0');
      const r = String.fromCodePoint(validRune(n));
      if (f.sharp && PRINTABLE.test(r)) s += ` '${r}'`;
      return padTo(s, f, false);
    }
    default:
      return null;
  }
  const neg = n < 0n;
  let digits = (neg ? -n : n).toString(base);
  if (verb === 'X') digits = digits.toUpperCase();
  let prec = -1;
  if (f.prec !== undefined) {
    prec = f.prec;
    // Go prints nothing but padding for a zero value at precision zero.
    if (prec === 0 && n === 0n) return ' '.repeat(f.width ?? 0);
  } else if (f.zero && f.width !== undefined && !f.minus) {
    prec = f.width;
    if (neg || f.plus || f.space) prec--;
  }
  digits = digits.padStart(prec, '0');
  let prefix = '';
  if (f.sharp) {
    if (base === 2) prefix = '0b';
    else if (base === 8 && !digits.startsWith('0')) prefix = '0';
    else if (base === 16) prefix = verb === 'X' ? '0X' : '0x';
  }
  if (verb === 'O') prefix = '0o';
  const sign = neg ? '-' : f.plus ? '+' : f.space ? ' ' : '';
  return padTo(sign + prefix + digits, f, false);
}

/** Decimal digits of a positive float: value = 0.d × 10^dp, no leading/trailing zeros in d. */
interface Digits {
  d: string;
  dp: number;
}

function exactDigits(x: number): Digits {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const hi = view.getUint32(0);
  const lo = view.getUint32(4);
  const expBits = (hi >>> 20) & 0x7ff;
  let mant = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  let e: number;
  if (expBits === 0) {
    e = -1074;
  } else {
    mant |= 1n << 52n;
    e = expBits - 1075;
  }
  let digits: string;
  let dp: number;
  if (e >= 0) {
    digits = (mant << BigInt(e)).toString();
    dp = digits.length;
  } else {
    digits = (mant * 5n ** BigInt(-e)).toString();
    dp = digits.length + e;
  }
  const d = digits.replace(/0+$/, '');
  return d === '' ? { d: '', dp: 0 } : { d, dp };
}

function shortestDigits(x: number): Digits {
  const [mant = '0', exp = '0'] = x.toExponential().split('e');
  const d = mant.replace('.', '').replace(/0+$/, '');
  return d === '' ? { d: '', dp: 0 } : { d, dp: Number(exp) + 1 };
}

/** Rounds to nd digits, half to even on exact ties, like Go's strconv decimal. */
function roundDigits(a: Digits, nd: number): Digits {
  if (nd < 0 || nd >= a.d.length) return a;
  const next = a.d[nd] ?? '0';
  const up = next === '5' && nd + 1 === a.d.length ? nd > 0 && Number(a.d[nd - 1]) % 2 === 1 : next >= '5';
  if (up) {
    let i = nd - 1;
    while (i >= 0 && a.d[i] === '9') i--;
    if (i < 0) return { d: '1', dp: a.dp + 1 };
    return { d: a.d.slice(0, i) + String(Number(a.d[i]) + 1), dp: a.dp };
  }
  const d = a.d.slice(0, nd).replace(/0+$/, '');
  return d === '' ? { d: '', dp: 0 } : { d, dp: a.dp };
}

function fmtE(digs: Digits, prec: number, e: string): string {
  let s = digs.d[0] ?? '0';
  if (prec > 0) {
    s += '.';
    const m = Math.min(digs.d.length, prec + 1);
    s += digs.d.slice(1, m);
    s += '0'.repeat(Math.max(0, prec + 1 - Math.max(m, 1)));
  }
  const exp = digs.d.length === 0 ? 0 : digs.dp - 1;
  const abs = Math.abs(exp);
  return s + e + (exp < 0 ? '-' : '+') + (abs < 10 ? '0' : '') + String(abs);
}

function fmtF(digs: Digits, prec: number): string {
  let s: string;
  if (digs.dp > 0) {
    s = digs.d.slice(0, Math.min(digs.d.length, digs.dp));
    s += '0'.repeat(Math.max(0, digs.dp - digs.d.length));
  } else {
    s = '0';
  }
  if (prec > 0) {
    s += '.';
    for (let i = 1; i <= prec; i++) {
      const j = digs.dp + i - 1;
      s += j >= 0 && j < digs.d.length ? digs.d[j] : '0';
    }
  }
  return s;
}

/** strconv.FormatFloat for a non-negative finite x; prec -1 means shortest. */
function formatFloat(x: number, fmtChar: 'e' | 'E' | 'f' | 'g' | 'G', precIn: number): string {
  const shortest = precIn < 0;
  let prec = precIn;
  let digs: Digits;
  if (x === 0) {
    digs = { d: '', dp: 0 };
  } else if (shortest) {
    digs = shortestDigits(x);
  } else {
    digs = exactDigits(x);
    if (fmtChar === 'e' || fmtChar === 'E') digs = roundDigits(digs, prec + 1);
    else if (fmtChar === 'f') digs = roundDigits(digs, digs.dp + prec);
    else {
      if (prec === 0) prec = 1;
      digs = roundDigits(digs, prec);
    }
  }
  if (shortest) {
    if (fmtChar === 'e' || fmtChar === 'E') prec = Math.max(digs.d.length - 1, 0);
    else if (fmtChar === 'f') prec = Math.max(digs.d.length - digs.dp, 0);
    else prec = digs.d.length;
  }
  if (fmtChar === 'e' || fmtChar === 'E') return fmtE(digs, prec, fmtChar);
  if (fmtChar === 'f') return fmtF(digs, prec);
  let eprec = prec;
  if (eprec > digs.d.length && digs.d.length >= digs.dp) eprec = digs.d.length;
  if (shortest) eprec = 6;
  const exp = digs.dp - 1;
  if (exp < -4 || exp >= eprec) {
    if (prec > digs.d.length) prec = digs.d.length;
    return fmtE(digs, prec - 1, fmtChar === 'g' ? 'e' : 'E');
  }
  if (prec > digs.dp) prec = digs.d.length;
  return fmtF(digs, Math.max(prec - digs.dp, 0));
}

function fmtFloat(x: number, verb: string, f: FmtSpec): string | null {
  let fmtChar: 'e' | 'E' | 'f' | 'g' | 'G';
  let prec: number;
  switch (verb) {
    case 'v':
    case 'g':
      fmtChar = 'g';
      prec = -1;
      break;
    case 'G':
      fmtChar = 'G';
      prec = -1;
      break;
    case 'e':
    case 'E':
      fmtChar = verb;
      prec = 6;
      break;
    case 'f':
    case 'F':
      fmtChar = 'f';
      prec = 6;
      break;
    default:
      return null;
  }
  if (f.prec !== undefined) prec = f.prec;
  if (Number.isNaN(x) || !Number.isFinite(x)) {
    let s = Number.isNaN(x) ? 'NaN' : x > 0 ? '+Inf' : '-Inf';
    if (Number.isNaN(x) && (f.plus || f.space)) s = (f.plus ? '+' : ' ') + s;
    else if (x > 0 && f.space && !f.plus) s = ' Inf';
    return padTo(s, f, false);
  }
  const num = formatFloat(Math.abs(x), fmtChar, prec);
  let sign = x < 0 || Object.is(x, -0) ? '-' : '+';
  if (f.space && sign === '+' && !f.plus) sign = ' ';
  if (f.plus || sign !== '+') {
    if (f.zero && !f.minus && f.width !== undefined && f.width > num.length + 1) {
      return sign + '0'.repeat(f.width - num.length - 1) + num;
    }
    return padTo(sign + num, f, false);
  }
  return padTo(num, f);
}

function fmtString(s: string, verb: string, f: FmtSpec): string | null {
  const truncate = (str: string): string => (f.prec === undefined ? str : [...str].slice(0, f.prec).join(''));
  switch (verb) {
    case 'v':
    case 's':
      return padTo(truncate(s), f);
    case 'q': {
      const t = truncate(s);
      return padTo(f.sharp && canBackquote(t) ? '`' + t + '`' : quoteWith(t, '"', f.plus), f);
    }
    case 'x':
    case 'X': {
      let bytes = Buffer.from(s, 'utf8');
      if (f.prec !== undefined && f.prec < bytes.length) bytes = bytes.subarray(0, f.prec);
      const hex = [...bytes].map((b) => {
        const h = b.toString(16).padStart(2, '0');
        return verb === 'X' ? h.toUpperCase() : h;
      });
      const prefix = verb === 'X' ? '0X' : '0x';
      let out: string;
      if (f.space) out = hex.map((h) => (f.sharp ? prefix + h : h)).join(' ');
      else out = (f.sharp && hex.length > 0 ? prefix : '') + hex.join('');
      return padTo(out, f);
    }
    default:
      return null;
  }
}

function badVerb(verb: string, v: unknown): string {
  if (v === undefined || v === null) return `%!${verb}(<nil>)`;
  return `%!${verb}(${goTypeName(v)}=${fmtArg(v, 'v', NO_FLAGS, false)})`;
}

/** Formats one operand like Go's fmt; `top` distinguishes an untyped nil argument from a nil element. */
function fmtArg(v: unknown, verb: string, f: FmtSpec, top: boolean): string {
  if (verb === 'T') return padTo(goTypeName(v), f);
  if (v === undefined || v === null) {
    if (!top || verb === 'v') return padTo('<nil>', f, false);
    return badVerb(verb, v);
  }
  let out: string | null = null;
  switch (typeof v) {
    case 'boolean':
      out = verb === 't' || verb === 'v' ? padTo(String(v), f) : null;
      break;
    case 'bigint':
      out = fmtInteger(v, verb, f);
      break;
    case 'number':
      // JS has one number type: integral values behave like Go ints unless a float verb asks otherwise.
      if (Number.isInteger(v) && Math.abs(v) < 1e21 && !'eEfFgG'.includes(verb)) out = fmtInteger(BigInt(v), verb, f);
      else out = fmtFloat(v, verb, f);
      break;
    case 'string':
      out = fmtString(v, verb, f);
      break;
    case 'function':
      out = verb === 'v' || verb === 'p' ? padTo('<func>', f) : null;
      break;
    case 'symbol':
      out = padTo(v.toString(), f);
      break;
    case 'object': {
      const type = TYPES.get(v);
      const elem = elemType(type);
      const list = listOf(v);
      if (list) return '[' + list.map((e) => fmtArg(asType(e, elem), verb, f, false)).join(' ') + ']';
      if ('vsxXq'.includes(verb)) {
        const s = stringerOf(v);
        if (s !== null) return fmtString(s, verb, f) ?? badVerb(verb, v);
      }
      if (v instanceof Set) return '[' + [...v].map((e) => fmtArg(e, verb, f, false)).join(' ') + ']';
      const struct = structOf(type);
      if (struct && isPlainObject(v)) return '{' + structValues(v, struct).map((e) => fmtArg(e, verb, f, false)).join(' ') + '}';
      if (isMapLike(v)) {
        // The image spec's sets (ExposedPorts, Volumes) are Go maps of empty structs, printed `{}`.
        const parts = sortedEntries(v).map(([k, val]) => `${fmtArg(k, verb, f, false)}:${isEmptyPlainObject(val) ? '{}' : fmtArg(asType(val, elem), verb, f, false)}`);
        return 'map[' + parts.join(' ') + ']';
      }
      break;
    }
    default:
      break;
  }
  return out ?? badVerb(verb, v);
}

/** Go's fmt.Sprint of a single value (what `{{ . }}` prints). */
export function goString(v: unknown): string {
  return fmtArg(v, 'v', NO_FLAGS, true);
}

export function sprint(args: readonly unknown[]): string {
  let out = '';
  let prevString = false;
  args.forEach((a, k) => {
    const isString = typeof a === 'string';
    if (k > 0 && !isString && !prevString) out += ' ';
    out += goString(a);
    prevString = isString;
  });
  return out;
}

export function sprintln(args: readonly unknown[]): string {
  return args.map(goString).join(' ') + '\n';
}

export function sprintf(format: string, args: readonly unknown[]): string {
  let out = '';
  let argNum = 0;
  let reordered = false;
  let goodArgNum = true;
  const end = format.length;

  const argNumber = (i: number): [number, boolean] => {
    if (format[i] !== '[') return [i, false];
    reordered = true;
    const close = format.indexOf(']', i);
    if (close < 0) {
      goodArgNum = false;
      return [i + 1, false];
    }
    const body = format.slice(i + 1, close);
    const idx = /^\d+$/.test(body) ? Number(body) - 1 : -1;
    if (idx >= 0 && idx < args.length) {
      argNum = idx;
      return [close + 1, true];
    }
    goodArgNum = false;
    return [close + 1, /^\d+$/.test(body)];
  };
  const intFromArg = (): [number, boolean] => {
    if (argNum >= args.length) return [0, false];
    const a = args[argNum++];
    if (typeof a === 'number' && Number.isInteger(a) && Math.abs(a) <= 1e6) return [a, true];
    if (typeof a === 'bigint' && a >= -1000000n && a <= 1000000n) return [Number(a), true];
    return [0, false];
  };
  const parseNum = (i: number): [number | undefined, number] => {
    let j = i;
    while (j < end && isDigitCh(format[j])) j++;
    if (j === i) return [undefined, i];
    return [Number(format.slice(i, j)), j];
  };

  for (let i = 0; i < end; ) {
    const lasti = i;
    while (i < end && format[i] !== '%') i++;
    if (i > lasti) out += format.slice(lasti, i);
    if (i >= end) break;
    i++;
    goodArgNum = true;
    const f: FmtSpec = { ...NO_FLAGS };
    flags: for (; i < end; i++) {
      switch (format[i]) {
        case '#':
          f.sharp = true;
          break;
        case '0':
          f.zero = !f.minus;
          break;
        case '+':
          f.plus = true;
          break;
        case '-':
          f.minus = true;
          f.zero = false;
          break;
        case ' ':
          f.space = true;
          break;
        default:
          break flags;
      }
    }
    let afterIndex: boolean;
    [i, afterIndex] = argNumber(i);
    if (format[i] === '*') {
      i++;
      const [w, ok] = intFromArg();
      if (!ok) out += '%!(BADWIDTH)';
      else {
        f.width = w;
        if (w < 0) {
          f.width = -w;
          f.minus = true;
          f.zero = false;
        }
      }
      afterIndex = false;
    } else {
      const [w, ni] = parseNum(i);
      if (w !== undefined) {
        f.width = w;
        i = ni;
        if (afterIndex) goodArgNum = false;
      }
    }
    if (format[i] === '.') {
      i++;
      if (afterIndex) goodArgNum = false;
      [i, afterIndex] = argNumber(i);
      if (format[i] === '*') {
        i++;
        const [p, ok] = intFromArg();
        if (!ok) out += '%!(BADPREC)';
        else if (p >= 0) f.prec = p;
        afterIndex = false;
      } else {
        const [p, ni] = parseNum(i);
        f.prec = p ?? 0;
        i = ni;
      }
    }
    if (!afterIndex) [i, afterIndex] = argNumber(i);
    if (i >= end) {
      out += '%!(NOVERB)';
      break;
    }
    const verb = codePointAt(format, i);
    i += verb.length;
    if (verb === '%') out += '%';
    else if (!goodArgNum) out += `%!${verb}(BADINDEX)`;
    else if (argNum >= args.length) out += `%!${verb}(MISSING)`;
    else out += fmtArg(args[argNum++], verb, f, true);
  }
  if (!reordered && argNum < args.length) {
    const extra = args
      .slice(argNum)
      .map((a) => (a === undefined || a === null ? '<nil>' : `${goTypeName(a)}=${goString(a)}`))
      .join(', ');
    out += `%!(EXTRA ${extra})`;
  }
  return out;
}




// ---------------------------------------------------------------------------
// Built-in functions

/** A Go parameter type the executor checks an argument against before the call, as Go does. */
type Param = 'string' | 'int' | '[]string';

interface Builtin {
  min: number;
  max: number;
  fn: (args: unknown[]) => unknown;
  /** Types of the leading parameters; later (variadic interface{}) ones are not checked. */
  params?: readonly Param[];
}

/**
 * Whether `v` can be passed as a Go parameter of type `p`. Missing and nil values pass (the
 * function sees a zero value): our untyped rows leave out fields Go structs would carry.
 */
function fitsParam(v: unknown, p: Param): boolean {
  if (v === undefined || v === null) return true;
  switch (p) {
    case 'string':
      return typeof v === 'string';
    case 'int':
      return (typeof v === 'number' && Number.isInteger(v)) || typeof v === 'bigint';
    case '[]string': {
      const t = typeof v === 'object' ? TYPES.get(v) : undefined;
      return listOf(v) !== null && (t === undefined || goTypeString(t) === '[]string');
    }
  }
}

function strArg(v: unknown): string {
  if (typeof v === 'string') return v;
  // Missing/nil data is treated as an empty string: our rows omit fields that Go
  // structs would carry as zero values.
  if (v === undefined || v === null) return '';
  throw new Error(`wrong type for value; expected string; got ${goTypeName(v)}`);
}

function intArg(v: unknown): number {
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (typeof v === 'bigint') return Number(v);
  throw new Error(`wrong type for value; expected int; got ${goTypeName(v)}`);
}

function stringListArg(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  const list = listOf(v);
  if (!list) throw new Error(`wrong type for value; expected []string; got ${goTypeName(v)}`);
  return list.map((e) => (typeof e === 'string' ? e : goString(e)));
}

function mapRunes(s: string, fn: (c: string) => string): string {
  let out = '';
  for (const c of s) {
    const m = fn(c);
    // Go maps rune by rune, so expansions like "ß" → "SS" do not happen.
    out += runeCount(m) === 1 ? m : c;
  }
  return out;
}

const GO_SPACE = '\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const LETTER_OR_DIGIT = /^[\p{L}\p{Nd}]$/u;
const UNICODE_SPACE = new RegExp(`^[${GO_SPACE}]$`, 'u');

function isTitleSeparator(c: string): boolean {
  const cp = c.codePointAt(0) ?? 0;
  if (cp <= 0x7f) return !/^[0-9A-Za-z_]$/.test(c);
  if (LETTER_OR_DIGIT.test(c)) return false;
  return UNICODE_SPACE.test(c);
}

function goTitle(s: string): string {
  let prev = ' ';
  let out = '';
  for (const c of s) {
    if (isTitleSeparator(prev)) {
      const u = c.toUpperCase();
      out += runeCount(u) === 1 ? u : c;
    } else {
      out += c;
    }
    prev = c;
  }
  return out;
}

function byteString(s: string): Buffer {
  return Buffer.from(s, 'utf8');
}

function indexBuiltin(args: unknown[]): unknown {
  let cur = args[0];
  for (const idx of args.slice(1)) {
    if (cur === undefined || cur === null) return undefined;
    const elem = typeof cur === 'object' ? elemType(TYPES.get(cur)) : undefined;
    cur = indexOne(cur, idx);
    if (elem !== undefined && cur !== undefined) cur = asType(cur, elem);
  }
  return cur;
}

function indexOne(cur: unknown, idx: unknown): unknown {
  const list = listOf(cur);
  if (list || typeof cur === 'string') {
    if (typeof idx !== 'number' && typeof idx !== 'bigint') throw new Error(`cannot index slice/array with type ${goTypeName(idx)}`);
    const i = Number(idx);
    if (!Number.isInteger(i)) throw new Error(`cannot index slice/array with type ${goTypeName(idx)}`);
    const len = list ? list.length : byteString(cur as string).length;
    if (i < 0 || i >= len) throw new Error(`index out of range: ${i}`);
    return list ? list[i] : byteString(cur as string)[i];
  }
  if (cur instanceof Map) return cur.get(idx);
  if (isMapLike(cur)) {
    // A map typed as Podman's (labels, annotations: map[string]…) takes only string keys; untyped data may have others.
    const typedMap = (t: GoType | undefined): boolean => typeof t === 'object' && 'map' in t;
    const strict = typedMap(TYPES.get(cur));
    if (typeof idx !== 'string' && (strict || typeof idx !== 'number')) throw new Error(`value has type ${goTypeName(idx)}; should be string`);
    const key = String(idx);
    return Object.hasOwn(cur, key) ? Reflect.get(cur, key) : undefined;
  }
  throw new Error(`can't index item of type ${goTypeName(cur)}`);
}

function sliceBuiltin(args: unknown[]): unknown {
  const item = args[0];
  if (item === undefined || item === null) throw new Error('slice of untyped nil');
  const idx = args.slice(1).map(intArg);
  if (idx.length > 3) throw new Error(`too many slice indexes: ${idx.length}`);
  const list = listOf(item);
  let len: number;
  if (typeof item === 'string') {
    if (idx.length === 3) throw new Error('cannot 3-index slice a string');
    len = byteString(item).length;
  } else if (list) {
    len = list.length;
  } else {
    throw new Error(`can't slice item of type ${goTypeName(item)}`);
  }
  const bounds = [idx[0] ?? 0, idx[1] ?? len];
  for (const x of idx) if (x < 0 || x > len) throw new Error(`index out of range: ${x}`);
  const [lo = 0, hi = len] = bounds;
  if (lo > hi) throw new Error(`invalid slice index: ${lo} > ${hi}`);
  if (idx.length === 3 && hi > (idx[2] ?? len)) throw new Error(`invalid slice index: ${hi} > ${idx[2] ?? len}`);
  if (typeof item === 'string') return byteString(item).subarray(lo, hi).toString('utf8');
  return (list ?? []).slice(lo, hi);
}

type BasicKind = 'nil' | 'bool' | 'number' | 'string' | 'other';

function basicKind(v: unknown): BasicKind {
  if (v === undefined || v === null) return 'nil';
  switch (typeof v) {
    case 'boolean':
      return 'bool';
    case 'number':
    case 'bigint':
      return 'number';
    case 'string':
      return 'string';
    default:
      return 'other';
  }
}

function eqBuiltin(args: unknown[]): boolean {
  const [a, ...rest] = args;
  if (rest.length === 0) throw new Error('missing argument for comparison');
  const ka = basicKind(a);
  for (const b of rest) {
    const kb = basicKind(b);
    let t: boolean;
    if (ka !== kb) {
      if (ka !== 'nil' && kb !== 'nil') throw new Error('incompatible types for comparison');
      t = false;
    } else if (ka === 'number') {
      t = Number(a) === Number(b);
    } else if (ka === 'other') {
      if (a instanceof Date && b instanceof Date) t = a.getTime() === b.getTime();
      else if (a instanceof GoTime && b instanceof GoTime) t = a.toJSON() === b.toJSON();
      else throw new Error(`non-comparable type ${goTypeName(a)}`);
    } else {
      t = ka === 'nil' || a === b;
    }
    if (t) return true;
  }
  return false;
}

function ltBuiltin(a: unknown, b: unknown): boolean {
  const ka = basicKind(a);
  const kb = basicKind(b);
  if (ka === 'nil' || ka === 'other' || kb === 'nil' || kb === 'other') throw new Error('invalid type for comparison');
  if (ka !== kb) throw new Error('incompatible types for comparison');
  if (ka === 'bool') throw new Error('invalid type for comparison');
  if (ka === 'string') return compareBytes(String(a), String(b)) < 0;
  return Number(a) < Number(b);
}

function leBuiltin(a: unknown, b: unknown): boolean {
  return ltBuiltin(a, b) || eqBuiltin([a, b]);
}

function evalArgsString(args: unknown[]): string {
  if (args.length === 1 && typeof args[0] === 'string') return args[0];
  return sprint(args);
}

function htmlEscape(s: string): string {
  return s.replace(/[<>&'"\0]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&#39;', '"': '&#34;' })[c] ?? '\uFFFD');
}

function jsEscape(s: string): string {
  let out = '';
  for (const c of s) {
    const cp = c.codePointAt(0) ?? 0;
    const special: Record<string, string> = { '\\': '\\\\', "'": "\\'", '"': '\\"', '<': '\\u003C', '>': '\\u003E', '&': '\\u0026', '=': '\\u003D' };
    const e = special[c];
    if (e !== undefined) out += e;
    else if (cp < 0x20 || (cp >= 0x80 && !PRINTABLE.test(c))) out += '\\u' + cp.toString(16).toUpperCase().padStart(4, '0');
    else out += c;
  }
  return out;
}

function urlQueryEscape(s: string): string {
  let out = '';
  for (const b of byteString(s)) {
    const c = String.fromCharCode(b);
    if (/^[A-Za-z0-9\-_.~]$/.test(c)) out += c;
    else if (c === ' ') out += '+';
    else out += '%' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

const BUILTINS = new Map<string, Builtin>([
  // and/or are evaluated lazily by the executor; these entries only declare them.
  ['and', { min: 1, max: Infinity, fn: () => undefined }],
  ['or', { min: 1, max: Infinity, fn: () => undefined }],
  ['not', { min: 1, max: 1, fn: ([a]) => !truth(a) }],
  [
    'len',
    {
      min: 1,
      max: 1,
      fn: ([a]) => {
        if (a === undefined || a === null) return 0;
        if (typeof a === 'string') return byteString(a).length;
        const list = listOf(a);
        if (list) return list.length;
        if (a instanceof Map || a instanceof Set) return a.size;
        if (isMapLike(a)) return sortedEntries(a).length;
        throw new Error(`len of type ${goTypeName(a)}`);
      },
    },
  ],
  ['index', { min: 1, max: Infinity, fn: indexBuiltin }],
  ['slice', { min: 1, max: 4, fn: sliceBuiltin }],
  [
    'call',
    {
      min: 1,
      max: Infinity,
      fn: ([f, ...rest]) => {
        if (f === undefined || f === null) throw new Error('call of nil');
        if (typeof f !== 'function') throw new Error(`non-function of type ${goTypeName(f)}`);
        const r: unknown = f(...rest);
        return r;
      },
    },
  ],
  ['print', { min: 0, max: Infinity, fn: (args) => sprint(args) }],
  ['println', { min: 0, max: Infinity, fn: (args) => sprintln(args) }],
  [
    'printf',
    {
      min: 1,
      max: Infinity,
      params: ['string'],
      fn: ([fmt, ...rest]) => {
        if (typeof fmt !== 'string') throw new Error(`wrong type for value; expected string; got ${goTypeName(fmt)}`);
        return sprintf(fmt, rest);
      },
    },
  ],
  ['html', { min: 0, max: Infinity, fn: (args) => htmlEscape(evalArgsString(args)) }],
  ['js', { min: 0, max: Infinity, fn: (args) => jsEscape(evalArgsString(args)) }],
  ['urlquery', { min: 0, max: Infinity, fn: (args) => urlQueryEscape(evalArgsString(args)) }],
  ['eq', { min: 1, max: Infinity, fn: eqBuiltin }],
  ['ne', { min: 2, max: 2, fn: ([a, b]) => !eqBuiltin([a, b]) }],
  ['lt', { min: 2, max: 2, fn: ([a, b]) => ltBuiltin(a, b) }],
  ['le', { min: 2, max: 2, fn: ([a, b]) => leBuiltin(a, b) }],
  ['gt', { min: 2, max: 2, fn: ([a, b]) => !leBuiltin(a, b) }],
  ['ge', { min: 2, max: 2, fn: ([a, b]) => !ltBuiltin(a, b) }],
  // Podman/Docker additions.
  ['json', { min: 1, max: 1, fn: ([v]) => goJSON(jsonValue(v)) }],
  ['join', { min: 2, max: 2, params: ['[]string', 'string'], fn: ([list, sep]) => stringListArg(list).join(strArg(sep)) }],
  [
    'split',
    {
      min: 2,
      max: 2,
      params: ['string', 'string'],
      fn: ([s, sep]) => {
        const str = strArg(s);
        const sp = strArg(sep);
        return sp === '' ? [...str] : str.split(sp);
      },
    },
  ],
  ['upper', { min: 1, max: 1, params: ['string'], fn: ([s]) => mapRunes(strArg(s), (c) => c.toUpperCase()) }],
  ['lower', { min: 1, max: 1, params: ['string'], fn: ([s]) => mapRunes(strArg(s), (c) => c.toLowerCase()) }],
  ['title', { min: 1, max: 1, params: ['string'], fn: ([s]) => goTitle(strArg(s)) }],
  [
    'truncate',
    {
      min: 2,
      max: 2,
      params: ['string', 'int'],
      fn: ([s, n]) => {
        const runes = [...strArg(s)];
        const len = intArg(n);
        return runes.length < len ? runes.join('') : runes.slice(0, Math.max(0, len)).join('');
      },
    },
  ],
  [
    'pad',
    {
      min: 3,
      max: 3,
      params: ['string', 'int', 'int'],
      fn: ([s, pre, post]) => {
        const str = strArg(s);
        return str === '' ? str : ' '.repeat(Math.max(0, intArg(pre))) + str + ' '.repeat(Math.max(0, intArg(post)));
      },
    },
  ],
]);

// ---------------------------------------------------------------------------
// Executor

const MISSING = Symbol('missing');
const BREAK = Symbol('break');
const CONTINUE = Symbol('continue');
const MAX_TEMPLATE_DEPTH = 1000;

interface Variable {
  name: string;
  value: unknown;
}

interface Lookup {
  value: unknown;
}

function lookupField(obj: object, name: string): Lookup | undefined {
  if (obj instanceof Map) {
    if (obj.has(name)) return { value: obj.get(name) };
    const lower = name.toLowerCase();
    for (const k of obj.keys()) if (typeof k === 'string' && k.toLowerCase() === lower) return { value: obj.get(k) };
    return undefined;
  }
  if (Object.hasOwn(obj, name)) return { value: Reflect.get(obj, name) };
  // Getters and methods of class instances live on the prototype chain.
  for (let proto: unknown = Object.getPrototypeOf(obj); proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
    if (name !== 'constructor' && Object.hasOwn(proto, name)) return { value: Reflect.get(obj, name) };
  }
  const lower = name.toLowerCase();
  for (const k of Object.keys(obj)) if (k.toLowerCase() === lower) return { value: Reflect.get(obj, k) };
  // Our data carries the JSON keys of the specs (diff_ids, created_by); users write the Go
  // field names Podman's structs have (DiffIDs, CreatedBy). They agree once case and _ go.
  const loose = looseKey(name);
  for (const k of Object.keys(obj)) if (looseKey(k) === loose) return { value: Reflect.get(obj, k) };
  return undefined;
}

function isEmptyPlainObject(v: unknown): boolean {
  return typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype && Object.keys(v).length === 0;
}

function looseKey(k: string): string {
  return k.replace(/[_.-]/g, '').toLowerCase();
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

class Executor {
  private out = '';
  private vars: Variable[];
  private depth = 0;

  constructor(
    private readonly src: Source,
    private readonly defs: Map<string, Node[]>,
    private readonly funcs: Map<string, TemplateFunc>,
    data: unknown,
  ) {
    this.vars = [{ name: '$', value: data }];
  }

  run(root: Node[], dot: unknown): string {
    this.walk(dot, root);
    return this.out;
  }

  /** The output so far. */
  get written(): string {
    return this.out;
  }

  private fail(at: { pos: number; text?: string }, msg: string): never {
    throw execError(this.src, at.pos, at.text, msg);
  }

  private walk(dot: unknown, nodes: Node[]): void {
    for (const n of nodes) {
      switch (n.kind) {
        case 'text':
          this.out += n.text;
          break;
        case 'action': {
          const val = this.evalPipeline(dot, n.pipe);
          if (n.pipe.decl.length === 0) this.printValue(n, val);
          break;
        }
        case 'if':
        case 'with':
          this.walkIfOrWith(dot, n);
          break;
        case 'range':
          this.walkRange(dot, n);
          break;
        case 'break':
          throw BREAK;
        case 'continue':
          throw CONTINUE;
        case 'template':
          this.walkTemplate(dot, n);
          break;
      }
    }
  }

  private printValue(n: { pos: number }, v: unknown): void {
    if (v === undefined) {
      this.out += '<no value>';
      return;
    }
    if (typeof v === 'function') this.fail(n, "can't print value of type func");
    this.out += goString(v);
  }

  private walkIfOrWith(dot: unknown, n: Extract<Node, { kind: 'if' | 'with' | 'range' }>): void {
    const mark = this.vars.length;
    try {
      const val = this.evalPipeline(dot, n.pipe);
      if (truth(val)) this.walk(n.kind === 'with' ? val : dot, n.list);
      else if (n.elseList) this.walk(dot, n.elseList);
    } finally {
      this.vars.length = mark;
    }
  }

  private walkRange(dot: unknown, n: Extract<Node, { kind: 'if' | 'with' | 'range' }>): void {
    const outer = this.vars.length;
    try {
      const val = this.evalPipeline(dot, n.pipe);
      const mark = this.vars.length;
      const { decl, isAssign } = n.pipe;
      // Returns true when the body executed {{break}}.
      const one = (index: unknown, elem: unknown): boolean => {
        if (decl.length > 0) {
          if (isAssign) this.setVar(n, decl[0] ?? '', decl.length > 1 ? index : elem);
          else this.setTopVar(1, elem);
        }
        if (decl.length > 1) {
          if (isAssign) this.setVar(n, decl[1] ?? '', elem);
          else this.setTopVar(2, index);
        }
        try {
          this.walk(elem, n.list);
        } catch (e) {
          if (e === BREAK) return true;
          if (e !== CONTINUE) throw e;
        } finally {
          this.vars.length = mark;
        }
        return false;
      };
      let iterated = false;
      const elem = typeof val === 'object' && val !== null ? elemType(TYPES.get(val)) : undefined;
      const list = listOf(val) ?? (val instanceof Set ? [...val] : null);
      if (list) {
        for (let k = 0; k < list.length; k++) {
          iterated = true;
          if (one(k, asType(list[k], elem))) break;
        }
      } else if (typeof val === 'number' || typeof val === 'bigint') {
        if (typeof val === 'number' && !Number.isInteger(val)) this.fail(n, `range can't iterate over ${goString(val)}`);
        if (decl.length > 1) this.fail(n, `can't use ${goString(val)} to iterate over more than one variable`);
        for (let k = 0; k < Number(val); k++) {
          iterated = true;
          if (one(k, k)) break;
        }
      } else if (isMapLike(val) && stringerOf(val) === null) {
        for (const [k, v] of sortedEntries(val)) {
          iterated = true;
          if (one(k, asType(v, elem))) break;
        }
      } else if (val !== undefined && val !== null) {
        this.fail(n, `range can't iterate over ${goString(val)}`);
      }
      if (!iterated && n.elseList) this.walk(dot, n.elseList);
    } finally {
      this.vars.length = outer;
    }
  }

  private walkTemplate(dot: unknown, n: Extract<Node, { kind: 'template' }>): void {
    const body = this.defs.get(n.name);
    if (!body) this.fail(n, `template ${JSON.stringify(n.name)} not defined`);
    if (this.depth >= MAX_TEMPLATE_DEPTH) this.fail(n, `exceeded maximum template depth (${MAX_TEMPLATE_DEPTH})`);
    const newDot = n.pipe ? this.evalPipeline(dot, n.pipe) : undefined;
    const saved = this.vars;
    this.vars = [{ name: '$', value: newDot }];
    this.depth++;
    try {
      this.walk(newDot, body);
    } finally {
      this.vars = saved;
      this.depth--;
    }
  }

  private setTopVar(k: number, value: unknown): void {
    const v = this.vars[this.vars.length - k];
    if (v) v.value = value;
  }

  private setVar(at: { pos: number }, name: string, value: unknown): void {
    for (let k = this.vars.length - 1; k >= 0; k--) {
      const v = this.vars[k];
      if (v && v.name === name) {
        v.value = value;
        return;
      }
    }
    this.fail(at, `undefined variable: ${name}`);
  }

  private varValue(at: { pos: number; text: string }, name: string): unknown {
    for (let k = this.vars.length - 1; k >= 0; k--) {
      const v = this.vars[k];
      if (v && v.name === name) return v.value;
    }
    return this.fail(at, `undefined variable: ${name}`);
  }

  private evalPipeline(dot: unknown, pipe: Pipe): unknown {
    let value: unknown = MISSING;
    for (const cmd of pipe.cmds) value = this.evalCommand(dot, cmd, value);
    for (const name of pipe.decl) {
      if (pipe.isAssign) this.setVar(pipe, name, value);
      else this.vars.push({ name, value });
    }
    return value;
  }

  private evalCommand(dot: unknown, cmd: Command, final: unknown): unknown {
    const first = cmd.args[0];
    if (!first) return this.fail(cmd, 'empty command');
    switch (first.kind) {
      case 'field':
        return this.evalFieldChain(dot, dot, first, first.path, cmd.args, final);
      case 'chain':
        return this.evalChain(dot, first, cmd.args, final);
      case 'ident':
        return this.evalFunction(dot, { ...first, text: cmd.text }, cmd.args, final);
      case 'variable':
        return this.evalVariable(dot, first, cmd.args, final);
      case 'pipe':
        this.notAFunction(cmd.args, final);
        return this.evalPipeline(dot, first.pipe);
      default:
        break;
    }
    this.notAFunction(cmd.args, final);
    switch (first.kind) {
      case 'bool':
      case 'number':
      case 'string':
        return first.value;
      case 'dot':
        return dot;
      default:
        return this.fail(first, 'nil is not a command');
    }
  }

  private notAFunction(args: Arg[], final: unknown): void {
    const first = args[0];
    if (first && (args.length > 1 || final !== MISSING)) this.fail(first, `can't give argument to non-function ${first.text}`);
  }

  private evalArg(dot: unknown, arg: Arg): unknown {
    switch (arg.kind) {
      case 'dot':
        return dot;
      case 'nil':
        return null;
      case 'field':
        return this.evalFieldChain(dot, dot, arg, arg.path, [arg], MISSING);
      case 'variable':
        return this.evalVariable(dot, arg, [arg], MISSING);
      case 'pipe':
        return this.evalPipeline(dot, arg.pipe);
      case 'ident':
        return this.evalFunction(dot, arg, [arg], MISSING);
      case 'chain':
        return this.evalChain(dot, arg, [arg], MISSING);
      default:
        return arg.value;
    }
  }

  private evalChain(dot: unknown, chain: Extract<Arg, { kind: 'chain' }>, args: Arg[], final: unknown): unknown {
    if (chain.node.kind === 'nil') this.fail(chain, `indirection through explicit nil in ${chain.text}`);
    const recv = this.evalArg(dot, chain.node);
    return this.evalFieldChain(dot, recv, chain, chain.path, args, final);
  }

  private evalVariable(dot: unknown, v: Extract<Arg, { kind: 'variable' }>, args: Arg[], final: unknown): unknown {
    const value = this.varValue(v, v.name);
    if (v.path.length === 0) {
      this.notAFunction(args, final);
      return value;
    }
    return this.evalFieldChain(dot, value, v, v.path, args, final);
  }

  private evalFieldChain(dot: unknown, receiver: unknown, node: Arg, path: string[], args: Arg[], final: unknown): unknown {
    let recv = receiver;
    for (let k = 0; k < path.length - 1; k++) recv = this.evalField(dot, path[k] ?? '', node, [], MISSING, recv);
    return this.evalField(dot, path[path.length - 1] ?? '', node, args, final, recv);
  }

  private evalField(dot: unknown, name: string, node: Arg, args: Arg[], final: unknown, receiver: unknown): unknown {
    // A nil receiver behaves like a nil Go map: every key is missing.
    if (receiver === undefined || receiver === null) return undefined;
    const hasArgs = args.length > 1 || final !== MISSING;
    const type = typeof receiver === 'object' ? TYPES.get(receiver) : undefined;
    const struct = structOf(type);
    if (struct && isPlainObject(receiver)) {
      const found = structField(receiver, struct, name);
      if (found === undefined) return this.fail(node, `can't evaluate field ${name} in type ${goTypeName(receiver)}`);
      if ('method' in found) return this.callFunc(dot, found.method, name, node, args, final);
      if (hasArgs) this.fail(node, `${name} has arguments but cannot be invoked as function`);
      return found.value;
    }
    if (receiver instanceof GoTime) {
      const method: unknown = Object.hasOwn(GoTime.prototype, name) && /^[A-Z]/.test(name) ? Reflect.get(receiver, name) : undefined;
      if (typeof method !== 'function') return this.fail(node, `can't evaluate field ${name} in type time.Time`);
      return this.callFunc(dot, (...a: unknown[]) => (method as TemplateFunc).apply(receiver, a), name, node, args, final);
    }
    if (isMapLike(receiver)) {
      const found = lookupField(receiver, name);
      if (found && type !== undefined) found.value = asType(found.value, elemType(type));
      if (found && typeof found.value === 'function') {
        const method = found.value as TemplateFunc;
        return this.callFunc(dot, (...a: unknown[]) => method.apply(receiver, a), name, node, args, final);
      }
      if (hasArgs) this.fail(node, `${name} is not a method but has arguments`);
      return found?.value;
    }
    return this.fail(node, `can't evaluate field ${name} in type ${goTypeName(receiver)}`);
  }

  private callFunc(dot: unknown, fn: TemplateFunc, name: string, node: Arg, args: Arg[], final: unknown): unknown {
    const vals = args.slice(1).map((a) => this.evalArg(dot, a));
    if (final !== MISSING) vals.push(final);
    try {
      return fn(...vals);
    } catch (e) {
      if (e instanceof TemplateError) throw e;
      return this.fail(node, `error calling ${name}: ${errorMessage(e)}`);
    }
  }

  private evalFunction(dot: unknown, node: Extract<Arg, { kind: 'ident' }>, args: Arg[], final: unknown): unknown {
    const name = node.name;
    const user = this.funcs.get(name);
    if (user) return this.callFunc(dot, user, name, node, args, final);
    const b = BUILTINS.get(name);
    if (!b) return this.fail(node, `function "${name}" not defined`);
    const count = args.length - 1 + (final !== MISSING ? 1 : 0);
    if (count < b.min || count > b.max) {
      const want = b.min === b.max ? `${b.min}` : b.max === Infinity ? `at least ${b.min}` : `${b.min} to ${b.max}`;
      this.fail(args[0] ?? node, `wrong number of args for ${name}: want ${want} got ${count}`);
    }
    if (b.params) {
      // Go checks each argument's type before the call and blames the argument.
      const vals = args.slice(1).map((a) => this.evalArg(dot, a));
      if (final !== MISSING) vals.push(final);
      vals.forEach((v, k) => {
        const p = b.params?.[k];
        const arg = args[k + 1];
        if (arg?.kind === 'nil' && p !== undefined && p !== '[]string') this.fail(arg, `cannot assign nil to ${p}`);
        if (p === undefined || fitsParam(v, p)) return;
        // A literal is checked as Go checks constants, by its text.
        if (arg && (arg.kind === 'number' || arg.kind === 'bool' || arg.kind === 'string')) this.fail(arg, `expected ${p}; found ${arg.text}`);
        this.fail(arg ?? args[0] ?? node, `wrong type for value; expected ${p}; got ${goTypeName(v)}`);
      });
      return this.callFunc(dot, () => b.fn(vals), name, node, [], MISSING);
    }
    if (name === 'and' || name === 'or') {
      // Go 1.18+ short-circuits: later operands are not evaluated once the result is known.
      let v: unknown;
      for (const a of args.slice(1)) {
        v = this.evalArg(dot, a);
        if (truth(v) === (name === 'or')) return v;
      }
      return final !== MISSING ? final : v;
    }
    return this.callFunc(dot, (...a: unknown[]) => b.fn(a), name, node, args, final);
  }
}

// ---------------------------------------------------------------------------
// Header rendering for table formats

function firstFieldPath(pipe: Pipe): string[] | null {
  for (const cmd of pipe.cmds) {
    for (const arg of cmd.args) {
      const p = argFieldPath(arg);
      if (p) return p;
    }
  }
  return null;
}

function argFieldPath(arg: Arg): string[] | null {
  switch (arg.kind) {
    case 'field':
      return arg.path;
    case 'variable':
      return arg.path.length > 0 ? arg.path : null;
    case 'pipe':
      return firstFieldPath(arg.pipe);
    case 'chain': {
      const inner = argFieldPath(arg.node);
      return inner ? [...inner, ...arg.path] : arg.path;
    }
    default:
      return null;
  }
}

// ---------------------------------------------------------------------------
// Entry point

export interface TemplateOptions {
  /** The name Go's errors show (`template: ps:1:13: executing "ps" at …`), as the command names it. */
  name?: string;
  /**
   * How many characters the command's wrapper puts before the user's text, so that columns in
   * errors match: Podman runs user formats as "{{range . }}FORMAT{{end -}}" (12).
   */
  prefix?: number;
}

export function parseTemplate(text: string, funcs?: Record<string, (...args: unknown[]) => unknown>, opts: TemplateOptions = {}): Template {
  const userFuncs = new Map<string, TemplateFunc>(Object.entries(funcs ?? {}));
  const src: Source = { text, name: opts.name, prefix: opts.prefix ?? 0 };
  const parser = new Parser(src, lex(src), (name) => userFuncs.has(name) || BUILTINS.has(name));
  const root = parser.parse();
  const defs = parser.defs;
  return {
    execute(data: unknown): string {
      const ex = new Executor(src, defs, userFuncs, data);
      try {
        return ex.run(root, data);
      } catch (e) {
        if (e instanceof TemplateError) e.partialOutput = ex.written;
        throw e;
      }
    },
    header(label: (fieldPath: readonly string[]) => string): string {
      let out = '';
      for (const n of root) {
        if (n.kind === 'text') {
          out += n.text;
        } else if (n.kind === 'if' || n.kind === 'with' || n.kind === 'range' || (n.kind === 'action' && n.pipe.decl.length === 0)) {
          const p = firstFieldPath(n.pipe);
          if (p) out += label(p);
        }
      }
      return out;
    },
  };
}

export { goJSON };
