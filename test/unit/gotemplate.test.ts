import { describe, expect, it } from 'vitest';
import { TemplateError, goJSON, goTyped, parseTemplate, sprintf } from '../../src/cli/gotemplate.ts';
import { fieldHeader, formatRows, isJSONFormat, normalizeFormat, tabwrite } from '../../src/cli/table.ts';
import { humanAgo, humanDuration } from '../../src/cli/context.ts';

const run = (src: string, data?: unknown, funcs?: Record<string, (...args: unknown[]) => unknown>): string =>
  parseTemplate(src, funcs).execute(data);

const parseError = (src: string): TemplateError => {
  try {
    parseTemplate(src);
  } catch (e) {
    expect(e).toBeInstanceOf(TemplateError);
    return e as TemplateError;
  }
  throw new Error(`expected ${JSON.stringify(src)} to fail to parse`);
};

const execError = (src: string, data?: unknown): TemplateError => {
  const t = parseTemplate(src);
  try {
    t.execute(data);
  } catch (e) {
    expect(e).toBeInstanceOf(TemplateError);
    return e as TemplateError;
  }
  throw new Error(`expected ${JSON.stringify(src)} to fail to execute`);
};

const image = {
  Id: 'sha256:4f7a',
  RepoTags: ['docker.io/library/alpine:latest', 'alpine:3'],
  Size: 7_800_000,
  Config: { Env: ['PATH=/bin', 'A=1'], Cmd: ['/bin/sh'], Labels: { maintainer: 'me', 'org.x': 'y' } },
  Labels: { foo: 'bar', zed: 'z' },
  Digest: null,
  Created: '2024-01-02T03:04:05Z',
  Healthy: true,
};

describe('text and fields', () => {
  it('copies text and prints dot', () => {
    expect(run('hello')).toBe('hello');
    expect(run('')).toBe('');
    expect(run('{{.}}', 'x')).toBe('x');
  });

  it('evaluates field chains and map keys', () => {
    expect(run('{{.Id}}', image)).toBe('sha256:4f7a');
    expect(run('{{.Config.Cmd}}', image)).toBe('[/bin/sh]');
    expect(run('{{.Labels.foo}}', image)).toBe('bar');
    expect(run('{{.Config.Labels.maintainer}}', image)).toBe('me');
  });

  it('falls back to a case-insensitive key match', () => {
    expect(run('{{.ID}} {{.repotags}}', image)).toBe('sha256:4f7a [docker.io/library/alpine:latest alpine:3]');
    expect(run('{{.id}}', { id: 'lower', ID: 'upper' })).toBe('lower');
    expect(run('{{.ID}}', { id: 'lower', ID: 'upper' })).toBe('upper');
  });

  it('prints <no value> for missing keys and <nil> for null', () => {
    expect(run('{{.Missing}}', image)).toBe('<no value>');
    expect(run('{{.Labels.nope}}', image)).toBe('<no value>');
    expect(run('{{.Missing.Deeper}}', image)).toBe('<no value>');
    expect(run('{{.Digest}}', image)).toBe('<nil>');
    expect(run('{{.Digest.Algo}}', image)).toBe('<no value>');
    expect(run('{{.}}')).toBe('<no value>');
  });

  it('rejects fields on non-maps', () => {
    expect(execError('{{.Id.Foo}}', image).message).toMatch(/can't evaluate field Foo in type string/);
    expect(execError('{{.RepoTags.Foo}}', image).message).toMatch(/can't evaluate field Foo in type \[\]interface \{\}/);
  });

  it('calls function-valued fields as methods', () => {
    const data = {
      Name: 'n',
      Greet(this: { Name: string }, who: unknown) {
        return `hi ${String(who)} from ${this.Name}`;
      },
    };
    expect(run('{{.Greet "bob"}}', data)).toBe('hi bob from n');
    expect(run('{{"al" | .Greet}}', data)).toBe('hi al from n');
    expect(execError('{{.Name "x"}}', data).message).toMatch(/Name is not a method but has arguments/);
  });

  it('reads getters of class instances', () => {
    class Img {
      constructor(private readonly id: string) {}
      get ID(): string {
        return this.id.slice(0, 3);
      }
    }
    expect(run('{{.ID}}', new Img('abcdef'))).toBe('abc');
  });
});

describe('Go value printing', () => {
  it('prints scalars like Go', () => {
    expect(run('{{.}}', 42)).toBe('42');
    expect(run('{{.}}', -0)).toBe('0');
    expect(run('{{.}}', 7_800_000)).toBe('7800000');
    expect(run('{{.}}', 2.5)).toBe('2.5');
    expect(run('{{.}}', 0.1)).toBe('0.1');
    expect(run('{{.}}', 123456789.5)).toBe('1.234567895e+08');
    expect(run('{{.}}', 0.00001)).toBe('1e-05');
    expect(run('{{.}}', 1e21)).toBe('1e+21');
    expect(run('{{.}}', Infinity)).toBe('+Inf');
    expect(run('{{.}}', NaN)).toBe('NaN');
    expect(run('{{.}}', true)).toBe('true');
    expect(run('{{.}}', false)).toBe('false');
    expect(run('{{.}}', null)).toBe('<nil>');
    expect(run('{{.}}', 10n)).toBe('10');
  });

  it('prints arrays and maps like fmt', () => {
    expect(run('{{.}}', ['a', 'b', 'c'])).toBe('[a b c]');
    expect(run('{{.}}', [])).toBe('[]');
    expect(run('{{.}}', [1, null, [2, 3]])).toBe('[1 <nil> [2 3]]');
    expect(run('{{.}}', { b: 2, a: 'x', c: [1] })).toBe('map[a:x b:2 c:[1]]');
    expect(run('{{.}}', {})).toBe('map[]');
    expect(run('{{.}}', { a: { b: 1 } })).toBe('map[a:map[b:1]]');
    expect(run('{{.}}', new Map([['z', 1], ['y', 2]]))).toBe('map[y:2 z:1]');
    expect(run('{{.}}', { a: undefined, b: 1 })).toBe('map[b:1]');
  });

  it('prints dates like time.Time', () => {
    expect(run('{{.}}', new Date('2024-01-02T03:04:05.120Z'))).toBe('2024-01-02 03:04:05.12 +0000 UTC');
  });
});

describe('literals', () => {
  it('handles strings, raw strings and escapes', () => {
    expect(run('{{"a\\tb\\n"}}')).toBe('a\tb\n');
    expect(run('{{"\\u00e9\\x41\\101\\""}}')).toBe('éAA"');
    expect(run('{{`raw\\n`}}')).toBe('raw\\n');
    expect(run('{{`multi\nline`}}')).toBe('multi\nline');
  });

  it('handles numbers, chars, bools and nil', () => {
    expect(run('{{1}} {{-3}} {{1.5}} {{1e3}} {{0x1F}} {{0o17}} {{017}} {{0b101}} {{1_000}}')).toBe('1 -3 1.5 1000 31 15 15 5 1000');
    expect(run("{{'a'}} {{'\\n'}}")).toBe('97 10');
    expect(run('{{true}} {{false}}')).toBe('true false');
    expect(run('{{eq nil nil}}')).toBe('true');
  });

  it('rejects bad literals', () => {
    expect(parseError('{{"abc}}').message).toMatch(/unterminated quoted string/);
    expect(parseError('{{`abc}}').message).toMatch(/unterminated raw quoted string/);
    expect(parseError('{{3x}}').message).toMatch(/bad number syntax/);
    expect(parseError('{{"\\q"}}').message).toMatch(/invalid syntax/);
    expect(parseError("{{'ab'}}").message).toMatch(/illegal number syntax/);
    expect(execError('{{nil}}').message).toMatch(/nil is not a command/);
  });
});

describe('trim markers and comments', () => {
  it('trims whitespace around actions', () => {
    expect(run('a  \n {{- "b" -}} \n\t c')).toBe('abc');
    expect(run('a {{- "b" }} c')).toBe('ab c');
    expect(run('a {{ "b" -}} c')).toBe('a bc');
    expect(run('{{ range . -}}\n  {{ . }}\n{{- end }}', [1, 2])).toBe('12');
  });

  it('does not mistake a negative number for a trim marker', () => {
    expect(run('x {{-3}} y')).toBe('x -3 y');
  });

  it('drops comments', () => {
    expect(run('a{{/* a comment */}}b')).toBe('ab');
    expect(run('a {{- /* multi\nline */ -}} b')).toBe('ab');
    expect(parseError('{{/* never closed').message).toMatch(/unclosed comment/);
    expect(parseError('{{/* x */ x}}').message).toMatch(/comment ends before closing delimiter/);
  });
});

describe('control structures', () => {
  it('if / else if / else', () => {
    const t = parseTemplate('{{if eq . 1}}one{{else if eq . 2}}two{{else if eq . 3}}three{{else}}many{{end}}');
    expect([1, 2, 3, 4].map((n) => t.execute(n))).toEqual(['one', 'two', 'three', 'many']);
    expect(run('{{if .Healthy}}ok{{end}}', image)).toBe('ok');
    expect(run('{{if .Missing}}yes{{else}}no{{end}}', image)).toBe('no');
  });

  it('uses Go truthiness', () => {
    const t = parseTemplate('{{if .}}T{{else}}F{{end}}');
    const falsy = [false, 0, '', null, undefined, [], {}, new Map()];
    const truthy = [true, 1, -1, 'x', [0], { a: 0 }, new Date(0)];
    expect(falsy.map((v) => t.execute(v)).join('')).toBe('FFFFFFFF');
    expect(truthy.map((v) => t.execute(v)).join('')).toBe('TTTTTTT');
  });

  it('with / else / else with', () => {
    expect(run('{{with .Config}}{{.Cmd}}{{end}}', image)).toBe('[/bin/sh]');
    expect(run('{{with .Missing}}x{{else}}none{{end}}', image)).toBe('none');
    expect(run('{{with .Missing}}x{{else with .Labels}}{{.foo}}{{end}}', image)).toBe('bar');
  });

  it('range over arrays with else', () => {
    expect(run('{{range .}}<{{.}}>{{end}}', ['a', 'b'])).toBe('<a><b>');
    expect(run('{{range .}}x{{else}}empty{{end}}', [])).toBe('empty');
    expect(run('{{range .}}x{{else}}empty{{end}}', null)).toBe('empty');
    expect(run('{{range .Missing}}x{{else}}empty{{end}}', {})).toBe('empty');
  });

  it('range over maps visits sorted keys', () => {
    expect(run('{{range $k, $v := .}}{{$k}}={{$v}};{{end}}', { b: 2, a: 1, c: 3 })).toBe('a=1;b=2;c=3;');
    expect(run('{{range .}}{{.}}{{end}}', { b: 2, a: 1 })).toBe('12');
    expect(run('{{range $k, $v := .Labels}}{{$k}}={{$v}}\n{{end}}', image)).toBe('foo=bar\nzed=z\n');
  });

  it('range with index/element variables', () => {
    expect(run('{{range $i, $e := .}}{{$i}}:{{$e}} {{end}}', ['a', 'b'])).toBe('0:a 1:b ');
    expect(run('{{range $e := .}}{{$e}}{{end}}', ['a', 'b'])).toBe('ab');
    expect(run('{{range 3}}{{.}}{{end}}')).toBe('012');
  });

  it('break and continue', () => {
    expect(run('{{range .}}{{if eq . 2}}{{continue}}{{end}}{{.}}{{end}}', [1, 2, 3])).toBe('13');
    expect(run('{{range .}}{{if eq . 2}}{{break}}{{end}}{{.}}{{end}}', [1, 2, 3])).toBe('1');
    expect(parseError('{{break}}').message).toMatch(/\{\{break\}\} outside \{\{range\}\}/);
  });

  it('rejects non-iterable ranges', () => {
    expect(execError('{{range .}}{{end}}', 'str').message).toMatch(/range can't iterate over str/);
  });

  it('define, template and block', () => {
    expect(run('{{define "T"}}[{{.}}]{{end}}{{template "T" .Id}}{{template "T" "x"}}', image)).toBe('[sha256:4f7a][x]');
    expect(run('{{block "B" .RepoTags}}{{len .}}{{end}}', image)).toBe('2');
    expect(execError('{{template "nope"}}').message).toMatch(/template "nope" not defined/);
  });
});

describe('variables', () => {
  it('declares, assigns and scopes variables', () => {
    expect(run('{{$x := .Id}}{{$x}}', image)).toBe('sha256:4f7a');
    expect(run('{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}')).toBe('2');
    expect(run('{{$x := 1}}{{if true}}{{$x := 2}}{{$x}}{{end}}{{$x}}')).toBe('21');
    expect(parseError('{{if true}}{{$y := 1}}{{end}}{{$y}}').message).toMatch(/undefined variable "\$y"/);
    expect(parseError('{{$z = 1}}').message).toMatch(/undefined variable "\$z"/);
  });

  it('$ is the root data', () => {
    expect(run('{{range .RepoTags}}{{$.Id}} {{end}}', image)).toBe('sha256:4f7a sha256:4f7a ');
    expect(run('{{with .Config}}{{$.Labels.foo}}{{end}}', image)).toBe('bar');
  });

  it('variables support field chains', () => {
    expect(run('{{$c := .Config}}{{$c.Labels.maintainer}}', image)).toBe('me');
  });
});

describe('pipelines and sub-expressions', () => {
  it('passes the previous value as the last argument', () => {
    expect(run('{{.Id | printf "%s!"}}', image)).toBe('sha256:4f7a!');
    expect(run('{{.Labels.foo | upper | printf "[%s]"}}', image)).toBe('[BAR]');
    expect(run('{{"," | split "x,y,z" | len}}')).toBe('3');
  });

  it('evaluates parenthesised expressions and chains on them', () => {
    expect(run('{{printf "%d-%s" (len .RepoTags) (index .RepoTags 1)}}', image)).toBe('2-alpine:3');
    expect(run('{{(index .Config.Env 0)}}', image)).toBe('PATH=/bin');
    expect(run('{{(.Config).Labels.maintainer}}', image)).toBe('me');
  });

  it('rejects literals in later stages and arguments to non-functions', () => {
    expect(parseError('{{.Id | "x"}}').message).toMatch(/non executable command in pipeline stage 2/);
    expect(execError('{{"x" 1}}').message).toMatch(/can't give argument to non-function "x"/);
    expect(parseError('{{.Id |}}').message).toMatch(/missing command/);
  });
});

describe('functions', () => {
  it('printf verbs, flags and widths', () => {
    expect(run('{{printf "%s|%d|%v|%q|%t|%x|%X" "a" 5 .RepoTags "q" true 255 "hi"}}', image)).toBe(
      'a|5|[docker.io/library/alpine:latest alpine:3]|"q"|true|ff|6869',
    );
    expect(run('{{printf "%-10s|" "left"}}')).toBe('left      |');
    expect(run('{{printf "%10s|" "right"}}')).toBe('     right|');
    expect(run('{{printf "%5d|%-5d|%05d|%+d" 42 42 42 42}}')).toBe('   42|42   |00042|+42');
    expect(run('{{printf "%.2f|%8.3f|%e|%g" 3.14159 2.5 1234.5678 0.00001234}}')).toBe('3.14|   2.500|1.234568e+03|1.234e-05');
    expect(run('{{printf "%.3s|%5.1s|" "abcdef" "xyz"}}')).toBe('abc|    x|');
    expect(run('{{printf "%c%c|%U|%#o|%b|%%" 72 105 65 8 5}}')).toBe('Hi|U+0041|010|101|%');
    expect(run('{{printf "%*d|%-*d|" 4 7 3 1}}')).toBe('   7|1  |');
    expect(run('{{printf "%[2]s-%[1]s" "a" "b"}}')).toBe('b-a');
  });

  it('printf reports bad verbs, missing and extra arguments like Go', () => {
    expect(run('{{printf "%d" "x"}}')).toBe('%!d(string=x)');
    expect(run('{{printf "%s" 5}}')).toBe('%!s(int=5)');
    expect(run('{{printf "%s %s" "a"}}')).toBe('a %!s(MISSING)');
    expect(run('{{printf "%s" "a" 1}}')).toBe('a%!(EXTRA int=1)');
    expect(run('{{printf "%s" .Missing}}', {})).toBe('%!s(<nil>)');
    expect(run('{{printf "%v" .Missing}}', {})).toBe('<nil>');
  });

  it('sprintf rounds like Go (half to even on exact ties)', () => {
    expect(sprintf('%.0f %.0f %.0f %.1f %.2f', [0.5, 1.5, 2.5, 0.25, 1.005])).toBe('0 2 2 0.2 1.00');
    expect(sprintf('%5.2f%%', [99.5])).toBe('99.50%');
    expect(sprintf('%08.3f', [-3.14159])).toBe('-003.142');
  });

  it('print and println', () => {
    expect(run('{{print "a" 1 2 "b"}}')).toBe('a1 2b');
    expect(run('{{println "a" 1}}')).toBe('a 1\n');
    expect(run('{{print .Missing}}', {})).toBe('<nil>');
  });

  it('json encodes compactly like json.Marshal', () => {
    expect(run('{{json .Labels}}', image)).toBe('{"foo":"bar","zed":"z"}');
    expect(run('{{json .Config.Cmd}}', image)).toBe('["/bin/sh"]');
    expect(run('{{json .}}', '<a&b>')).toBe('"\\u003ca\\u0026b\\u003e"');
    expect(run('{{json .Missing}}', {})).toBe('null');
    expect(run('{{json .}}', { d: new Date('2024-01-02T03:04:05Z'), n: null, u: undefined })).toBe('{"d":"2024-01-02T03:04:05Z","n":null}');
  });

  it('len and index', () => {
    expect(run('{{len .RepoTags}} {{len .Labels}} {{len "héllo"}} {{len .Missing}}', image)).toBe('2 2 6 0');
    expect(run('{{index .RepoTags 1}} {{index .Labels "foo"}} {{index .Config "Labels" "org.x"}}', image)).toBe('alpine:3 bar y');
    expect(run('{{index .Labels "nope"}}', image)).toBe('<no value>');
    expect(execError('{{index .RepoTags 5}}', image).message).toMatch(/error calling index: index out of range: 5/);
    expect(execError('{{len 3}}').message).toMatch(/len of type int/);
  });

  it('slice', () => {
    expect(run('{{slice .RepoTags 1}} {{slice "hello" 1 3}}', image)).toBe('[alpine:3] el');
  });

  it('comparisons', () => {
    expect(run('{{eq 1 1}} {{eq "a" "b"}} {{eq 1 2 3 1}} {{ne 1 2}} {{lt 1 2}} {{le 2 2}} {{gt "b" "a"}} {{ge 1 2}}')).toBe(
      'true false true true true true true false',
    );
    expect(run('{{eq .Missing nil}} {{eq .Id nil}}', image)).toBe('true false');
    expect(execError('{{eq 1 "1"}}').message).toMatch(/incompatible types for comparison/);
    expect(execError('{{lt true false}}').message).toMatch(/invalid type for comparison/);
  });

  it('and / or / not short-circuit and return operands', () => {
    expect(run('{{and 1 0 2}}|{{and 1 2}}|{{or 0 "" "z"}}|{{or 0 ""}}|{{not 0}}|{{not "x"}}')).toBe('0|2|z||true|false');
    // The second operand would fail if evaluated.
    expect(run('{{and false (index .List 9)}}', { List: [] })).toBe('false');
    expect(run('{{or .Missing "default"}}', {})).toBe('default');
  });

  it('string helpers', () => {
    expect(run('{{join .RepoTags ", "}}', image)).toBe('docker.io/library/alpine:latest, alpine:3');
    expect(run('{{join .Missing ","}}', {})).toBe('');
    expect(run('{{split "a:b:c" ":"}} {{len (split "abc" "")}}')).toBe('[a b c] 3');
    expect(run('{{upper "abc"}} {{lower "ÀBC"}} {{title "hello wide-world"}}')).toBe('ABC àbc Hello Wide-World');
    expect(run('{{truncate "abcdef" 3}}|{{truncate "ab" 3}}|{{truncate .Id 9}}', image)).toBe('abc|ab|sha256:4f');
    expect(run('{{pad "x" 1 2}}|{{pad "" 1 2}}|')).toBe(' x  ||');
    // Podman 4.3 has none of these.
    for (const f of ['trim', 'contains', 'hasPrefix', 'hasSuffix', 'replace']) expect(parseError(`{{${f} "a"}}`).message).toContain(`function "${f}" not defined`);
    // Go checks argument types before the call, and blames the argument.
    expect(execError('{{upper 3}}').message).toMatch(/at <3>: expected string; found 3$/);
    expect(execError('{{upper .N}}', { N: 3 }).message).toMatch(/at <\.N>: wrong type for value; expected string; got int$/);
    expect(execError('{{join .S ","}}', { S: 'x' }).message).toMatch(/at <\.S>: wrong type for value; expected \[\]string; got string$/);
    expect(execError('{{upper nil}}').message).toMatch(/at <nil>: cannot assign nil to string$/);
    expect(execError('{{upper "a" "b"}}').message).toMatch(/at <upper>: wrong number of args for upper: want 1 got 2$/);
  });

  it('html, js, urlquery', () => {
    expect(run(`{{html "<a href='x'>&</a>"}}`)).toBe('&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;');
    expect(run('{{urlquery "a b&c/d"}}')).toBe('a+b%26c%2Fd');
    expect(run(`{{js "it's <b>"}}`)).toBe("it\\'s \\u003Cb\\u003E");
  });

  it('checks argument counts', () => {
    expect(execError('{{join "a"}}').message).toMatch(/wrong number of args for join: want 2 got 1/);
    expect(execError('{{and}}').message).toMatch(/wrong number of args for and: want at least 1 got 0/);
  });

  it('accepts extra functions, which may override built-ins', () => {
    const funcs = {
      double: (n: unknown) => Number(n) * 2,
      upper: (s: unknown) => `U(${String(s)})`,
      boom: () => {
        throw new Error('kaboom');
      },
    };
    expect(run('{{double 21}} {{3 | double}} {{upper "x"}}', undefined, funcs)).toBe('42 6 U(x)');
    expect(() => run('{{boom}}', undefined, funcs)).toThrow(/error calling boom: kaboom/);
  });
});

describe('syntax errors', () => {
  it('reports unclosed actions with position', () => {
    const e = parseError('line1\n  {{ .Foo');
    expect(e.message).toMatch(/unclosed action/);
    expect(e.message).toMatch(/2:3/);
  });

  it('reports unknown functions by name', () => {
    const e = parseError('{{ .Foo | nosuchfunc }}');
    expect(e.message).toContain('function "nosuchfunc" not defined');
    expect(e.message).toMatch(/1:11/);
    expect(parseError('{{ table .Foo }}').message).toContain('function "table" not defined');
  });

  it('reports structural errors', () => {
    expect(parseError('{{if .X}}never ended').message).toMatch(/unexpected EOF.*missing \{\{end\}\} for \{\{if\}\} at 1:3/);
    expect(parseError('{{end}}').message).toMatch(/unexpected \{\{end\}\}/);
    expect(parseError('{{else}}').message).toMatch(/unexpected \{\{else\}\}/);
    expect(parseError('{{if}}{{end}}').message).toMatch(/missing value for if/);
    expect(parseError('{{range .}}{{else}}{{else}}{{end}}').message).toMatch(/expected \{\{end\}\}/);
    expect(parseError('{{ (.X }}').message).toMatch(/unclosed left paren/);
    expect(parseError('{{ .X) }}').message).toMatch(/unexpected right paren/);
    expect(parseError('{{ .X # }}').message).toMatch(/unexpected "#"/);
    expect(parseError('{{ $x }}').message).toMatch(/undefined variable "\$x"/);
    expect(parseError('{{ 3.X }}').message).toMatch(/bad number syntax|unexpected/);
  });
});

describe('goJSON', () => {
  it('indents like json.MarshalIndent', () => {
    expect(goJSON({ a: [1, 2], b: {}, c: [] }, 4)).toBe('{\n    "a": [\n        1,\n        2\n    ],\n    "b": {},\n    "c": []\n}');
  });

  it('escapes like Go', () => {
    expect(goJSON('\u2028<\n')).toBe('"\\u2028\\u003c\\n"');
    expect(() => goJSON(NaN)).toThrow(/unsupported value/);
  });
});

describe('tabwrite', () => {
  it('aligns columns with padding and minimum width', () => {
    expect(tabwrite(['ID\tNAME', 'abc\tfirst', 'abcdefghijklmnop\tsecond'])).toBe(
      'ID                NAME\n' + 'abc               first\n' + 'abcdefghijklmnop  second\n',
    );
  });

  it('uses Podman defaults: min width 12, padding 2', () => {
    expect(tabwrite(['a\tb\tc'])).toBe('a' + ' '.repeat(11) + 'b' + ' '.repeat(11) + 'c\n');
  });

  it('follows tabwriter column blocks', () => {
    // "x" has no tab-terminated cell, so it ends the first block; "y\tz" is aligned on its own.
    expect(tabwrite(['a\tb\tc', 'aaaaaaaaaaaaaaaa\tb', 'x', 'y\tz'], 2, 0)).toBe(
      'a                 b  c\n' + 'aaaaaaaaaaaaaaaa  b\n' + 'x\n' + 'y  z\n',
    );
  });

  it('pads tab-terminated trailing cells and counts runes', () => {
    expect(tabwrite(['é\t', 'ab\t'], 1, 0)).toBe('é  \nab \n');
    expect(tabwrite(['one\nt\two'], 1, 0)).toBe('one\nt wo\n');
  });

  it('renders nothing for no lines', () => {
    expect(tabwrite([])).toBe('');
  });
});

describe('formatRows', () => {
  const rows = [
    { ID: 'abc123', ImageID: 'sha256:1', CreatedAt: 'now', Names: ['web'], Size: 10 },
    { ID: 'def4567890123456', ImageID: 'sha256:2', CreatedAt: 'later', Names: ['db', 'x'], Size: 2000 },
  ];
  const defaultTable = 'table {{.ID}}\\t{{.ImageID}}\\t{{.Size}}';

  it('uses the default table when no format is given', () => {
    const out = formatRows(rows, { defaultTable });
    expect(out).toBe(
      'ID                IMAGE ID    SIZE\n' + 'abc123            sha256:1    10\n' + 'def4567890123456  sha256:2    2000\n',
    );
    expect(formatRows(rows, { format: '', defaultTable })).toBe(out);
    expect(formatRows(rows, { format: 'table', defaultTable })).toBe(out);
  });

  it('derives headers from fields, honouring overrides', () => {
    const out = formatRows(rows, {
      format: 'table {{.ID}}\\t{{.CreatedAt}}\\t{{join .Names ","}}',
      defaultTable,
      headers: { id: 'CONTAINER ID' },
    });
    expect(out.split('\n')[0]).toBe('CONTAINER ID      CREATED AT  NAMES');
    expect(out.split('\n')[2]).toBe('def4567890123456  later       db,x');
  });

  it('keeps literal text in the header, each space of a table a column break as in Podman', () => {
    const out = formatRows(rows.slice(0, 1), { format: 'table {{.ID}} | {{.Size}}', defaultTable });
    expect(out).toBe('ID          |           SIZE\nabc123      |           10\n');
    // A plain template keeps its spaces.
    expect(formatRows(rows.slice(0, 1), { format: '{{.ID}} | {{.Size}}', defaultTable })).toBe('abc123 | 10\n');
  });

  it('leaves what was written before a failing row on the error, as Go writes as it goes', () => {
    // The second row's ID is too short for the slice.
    const fail = (format: string): TemplateError => {
      try {
        formatRows([...rows].reverse(), { format, defaultTable, name: 'ps' });
      } catch (e) {
        if (e instanceof TemplateError) return e;
      }
      throw new Error('no error');
    };
    expect(fail('{{.Size}} {{slice .ID 10}}').partialOutput).toBe('2000 123456\n10 ');
    // A table is flushed through the tabwriter: the cut line unpadded, without its newline.
    expect(fail('table {{.Size}} {{slice .ID 10}}').partialOutput).toBe('SIZE        ID\n2000        123456\n10');
    expect(fail('table {{.Size}}\t{{.CreatedAt}}\t{{slice .ID 10}}').partialOutput)
      .toBe('SIZE        CREATED AT  ID\n2000        later       123456\n10          now');
    // A parse error printed nothing.
    expect(fail('{{.ID').partialOutput).toBe('');
    expect(fail('{{.ID').message).toBe("template: ps:1: bad character U+007B '{'");
  });

  it('renders json as an indented array', () => {
    const out = formatRows(rows.slice(0, 1), { format: 'json', defaultTable });
    expect(out).toBe(
      '[\n    {\n        "ID": "abc123",\n        "ImageID": "sha256:1",\n        "CreatedAt": "now",\n' +
        '        "Names": [\n            "web"\n        ],\n        "Size": 10\n    }\n]\n',
    );
    expect(JSON.parse(formatRows(rows, { format: '{{ json . }}', defaultTable }))).toEqual(rows);
    expect(formatRows([], { format: 'json', defaultTable })).toBe('[]\n');
  });

  it('renders plain templates one row per line without a header', () => {
    expect(formatRows(rows, { format: '{{.ID}} {{.Size}}', defaultTable })).toBe('abc123 10\ndef4567890123456 2000\n');
    expect(formatRows(rows, { format: '{{.ID}}\\n', defaultTable })).toBe('abc123\ndef4567890123456\n');
    expect(formatRows([], { format: '{{.ID}}', defaultTable })).toBe('');
  });

  it('keeps the TABs of plain templates and aligns only tables, as Podman', () => {
    expect(formatRows(rows, { format: '{{.ID}}\\t{{.Size}}', defaultTable })).toBe('abc123\t10\ndef4567890123456\t2000\n');
    expect(formatRows(rows, { format: 'table {{.ID}}\\t{{.Size}}', defaultTable })).toBe(
      'ID                SIZE\nabc123            10\ndef4567890123456  2000\n',
    );
  });

  it('prints only the header for an empty table', () => {
    expect(formatRows([], { defaultTable })).toBe('ID          IMAGE ID    SIZE\n');
  });

  it('propagates template errors', () => {
    expect(() => formatRows(rows, { format: '{{ .ID | bogus }}', defaultTable })).toThrow(TemplateError);
    expect(() => formatRows(rows, { format: '{{ .ID | bogus }}', defaultTable })).toThrow(/function "bogus" not defined/);
  });
});

describe('format helpers', () => {
  it('normalizeFormat converts escaped tabs/newlines outside actions only', () => {
    expect(normalizeFormat('{{.A}}\\t{{.B}}\\n')).toBe('{{.A}}\t{{.B}}\n');
    expect(normalizeFormat('{{ "a\\nb" }}')).toBe('{{ "a\\nb" }}');
    expect(run(normalizeFormat('{{ "a\\tb" }}\\t'))).toBe('a\tb\t');
  });

  it('isJSONFormat', () => {
    expect(isJSONFormat('json')).toBe(true);
    expect(isJSONFormat(' {{json .}} ')).toBe(true);
    expect(isJSONFormat('{{json .ID}}')).toBe(false);
  });

  it('fieldHeader splits CamelCase like Podman', () => {
    expect(fieldHeader('ImageID')).toBe('IMAGE ID');
    expect(fieldHeader('CreatedAt')).toBe('CREATED AT');
    expect(fieldHeader('ID')).toBe('ID');
    expect(fieldHeader('RepoTags')).toBe('REPO TAGS');
    expect(fieldHeader('IDName')).toBe('ID NAME');
    expect(fieldHeader('image_id')).toBe('IMAGE ID');
  });
});

describe('humanDuration and humanAgo (go-units HumanDuration, as ps and images print ages)', () => {
  const sec = 1000;
  const min = 60 * sec;
  const hour = 60 * min;
  const day = 24 * hour;
  it.each([
    [500, 'Less than a second'], [1 * sec, '1 second'], [59 * sec, '59 seconds'], [60 * sec, 'About a minute'],
    [119 * sec, 'About a minute'], [120 * sec, '2 minutes'], [59 * min, '59 minutes'], [60 * min, 'About an hour'],
    [89 * min, 'About an hour'], [90 * min, '2 hours'], [47 * hour, '47 hours'], [48 * hour, '2 days'],
    [13 * day, '13 days'], [14 * day, '2 weeks'], [59 * day, '8 weeks'], [60 * day, '2 months'],
    [729 * day, '24 months'], [730 * day, '2 years'],
  ])('%d ms is "%s"', (ms, text) => {
    expect(humanDuration(ms)).toBe(text);
  });

  it('humanAgo says "ago", and "Unknown" without a valid time', () => {
    expect(humanAgo(new Date(Date.now() - 3 * hour).toISOString())).toBe('3 hours ago');
    expect(humanAgo(null)).toBe('Unknown');
    expect(humanAgo('not a date')).toBe('Unknown');
  });
});

describe('goTyped structs (data whose Go counterpart is a struct)', () => {
  const data = (): object => goTyped({ Name: 'bb', Tags: ['a', 'b'], Labels: { k: 'v' } }, { struct: 'inspect.Output' });

  it('reads its fields by their exact names; nested objects stay maps', () => {
    expect(run('{{.Name}} {{index .Tags 1}} {{.Labels.k}} {{.Labels.missing}}', data())).toBe('bb b v <no value>');
  });

  it('fails on a field it lacks, or a field spelt in another case, as Go does', () => {
    expect(execError('{{.Nope}}', data()).message).toContain("can't evaluate field Nope in type inspect.Output");
    expect(execError('{{.name}}', data()).message).toContain("can't evaluate field name in type inspect.Output");
    // A plain object is a map: the same lookups give "<no value>" and a case-insensitive match.
    expect(run('{{.Nope}} {{.name}}', { Name: 'bb' })).toBe('<no value> bb');
  });

  it('prints as {v1 v2 …} in field order, and %T names its type', () => {
    expect(run('{{.}}', data())).toBe('{bb [a b] map[k:v]}');
    expect(run('{{printf "%T" .}}', data())).toBe('inspect.Output');
  });
});
