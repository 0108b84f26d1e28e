// Docker's word expansion for Containerfile instructions (BuildKit's shell lexer, the subset
// Containerfiles use): quotes are removed, the escape character escapes, and `$VAR`, `${VAR}`,
// `${VAR:-word}`, `${VAR-word}`, `${VAR:+word}`, `${VAR+word}`, `${VAR:?msg}`, `${VAR?msg}`
// are replaced. RUN, CMD, ENTRYPOINT and SHELL are not expanded here: the shell does that.

export type Vars = ReadonlyMap<string, string>;

export class ExpandError extends Error {}

/** Expands one word (quotes removed). */
export function expandWord(word: string, vars: Vars, escape = '\\'): string {
  return new Lexer(word, vars, escape).word();
}

/** Splits on unquoted whitespace, then expands each word (for EXPOSE, VOLUME, COPY sources, ...). */
export function expandWords(s: string, vars: Vars, escape = '\\'): string[] {
  return new Lexer(s, vars, escape).words();
}

/** Variables a string refers to (for deciding which ARGs a step depends on). */
export function referencedVars(s: string): string[] {
  const out = new Set<string>();
  for (const m of s.matchAll(/\$(?:\{([A-Za-z_][A-Za-z0-9_]*)|([A-Za-z_][A-Za-z0-9_]*))/g)) out.add((m[1] ?? m[2])!);
  return [...out];
}

class Lexer {
  private pos = 0;
  constructor(
    private readonly s: string,
    private readonly vars: Vars,
    private readonly esc: string,
  ) {}

  private peek(): string | undefined {
    return this.s[this.pos];
  }

  words(): string[] {
    const out: string[] = [];
    for (;;) {
      while (this.pos < this.s.length && /\s/.test(this.s[this.pos]!)) this.pos++;
      if (this.pos >= this.s.length) return out;
      out.push(this.read(true));
    }
  }

  word(): string {
    return this.read(false);
  }

  /** Reads up to unquoted whitespace when `stopAtSpace`, or the whole input. */
  private read(stopAtSpace: boolean, stopAt?: string): string {
    let out = '';
    while (this.pos < this.s.length) {
      const ch = this.s[this.pos]!;
      if (stopAt !== undefined && ch === stopAt) return out;
      if (stopAtSpace && /\s/.test(ch)) return out;
      if (ch === this.esc) {
        this.pos++;
        if (this.pos < this.s.length) out += this.s[this.pos++];
        continue;
      }
      if (ch === "'") {
        this.pos++;
        const end = this.s.indexOf("'", this.pos);
        if (end < 0) throw new ExpandError('unexpected end of statement while looking for matching single-quote');
        out += this.s.slice(this.pos, end);
        this.pos = end + 1;
        continue;
      }
      if (ch === '"') {
        this.pos++;
        out += this.doubleQuoted();
        continue;
      }
      if (ch === '$') {
        out += this.dollar();
        continue;
      }
      out += ch;
      this.pos++;
    }
    if (stopAt !== undefined) throw new ExpandError(`missing '${stopAt}'`);
    return out;
  }

  private doubleQuoted(): string {
    let out = '';
    while (this.pos < this.s.length) {
      const ch = this.s[this.pos]!;
      if (ch === '"') {
        this.pos++;
        return out;
      }
      if (ch === '$') {
        out += this.dollar();
        continue;
      }
      if (ch === this.esc) {
        const next = this.s[this.pos + 1];
        if (next === '"' || next === '$' || next === this.esc) {
          out += next;
          this.pos += 2;
          continue;
        }
      }
      out += ch;
      this.pos++;
    }
    throw new ExpandError('unexpected end of statement while looking for matching double-quote');
  }

  private dollar(): string {
    this.pos++; // $
    const ch = this.peek();
    if (ch === '{') {
      this.pos++;
      const name = this.name();
      if (!name) throw new ExpandError(`bad substitution: \${${this.s.slice(this.pos, this.s.indexOf('}', this.pos))}}`);
      const c = this.peek();
      if (c === '}') {
        this.pos++;
        return this.vars.get(name) ?? '';
      }
      let colon = false;
      if (c === ':') {
        colon = true;
        this.pos++;
      }
      const op = this.peek();
      if (op !== '-' && op !== '+' && op !== '?') throw new ExpandError(`unsupported modifier (${op ?? 'end of input'}) in substitution`);
      this.pos++;
      const word = this.read(false, '}');
      this.pos++; // }
      const val = this.vars.get(name);
      const set = colon ? val !== undefined && val !== '' : val !== undefined;
      if (op === '-') return set ? val! : word;
      if (op === '+') return set ? word : '';
      if (!set) throw new ExpandError(`${name}: ${word || 'is not allowed to be unset'}`);
      return val!;
    }
    const name = this.name();
    if (!name) return '$';
    return this.vars.get(name) ?? '';
  }

  private name(): string {
    const m = /^(?:[A-Za-z_][A-Za-z0-9_]*|[0-9])/.exec(this.s.slice(this.pos));
    if (!m) return '';
    this.pos += m[0].length;
    return m[0];
  }
}
