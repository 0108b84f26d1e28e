// Unit tests of the Containerfile parser, word expansion, ignore rules and source globbing.
import { mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseContainerfile, ContainerfileError } from '../../src/containerfile/parser.ts';
import { expandWord, expandWords } from '../../src/containerfile/expand.ts';
import { makeMatcher, parseIgnore } from '../../src/containerfile/ignore.ts';
import { glob } from '../../src/containerfile/glob.ts';
import { parentsPath, platformArgs } from '../../src/containerfile/interpreter.ts';
import { parsePlatform, platformMatches } from '../../src/image/manifest.ts';

const parse = (t: string) => parseContainerfile(t, 'Containerfile');
const err = (t: string): string => {
  try {
    parse(t);
  } catch (e) {
    expect(e).toBeInstanceOf(ContainerfileError);
    return (e as Error).message;
  }
  throw new Error('expected a parse error');
};

describe('parser', () => {
  it('keeps file:line, joins continuations and skips comments inside them', () => {
    const cf = parse('# comment\nFROM busybox\n\nRUN echo a \\\n  # inner comment\n  && echo b\nCMD ["sh", "-c", "x"]\n');
    expect(cf.instructions.map((i) => [i.keyword, i.line])).toEqual([['FROM', 2], ['RUN', 4], ['CMD', 7]]);
    expect(cf.instructions[1]!.args).toBe('echo a   && echo b');
    expect(cf.instructions[2]!.json).toEqual(['sh', '-c', 'x']);
  });

  it('honours the escape and syntax directives', () => {
    const cf = parse('# syntax=docker/dockerfile:1\n# escape=`\nFROM busybox\nRUN echo a `\n  b\nCOPY c:\\dir\\x /x\n');
    expect(cf.syntax).toBe('docker/dockerfile:1');
    expect(cf.escape).toBe('`');
    expect(cf.instructions[1]!.args).toBe('echo a   b');
    expect(cf.instructions[2]!.args).toBe('c:\\dir\\x /x');
  });

  it('a directive after the first instruction is a comment', () => {
    expect(parse('FROM busybox\n# escape=`\nRUN a \\\n b\n').escape).toBe('\\');
  });

  it('parses flags and heredocs', () => {
    const cf = parse('FROM busybox\nCOPY --from=b --chown=1:2 a /b\nRUN <<EOF\necho 1\nEOF\nRUN <<-"X" cat\n\techo $A\n\tX\n');
    expect(cf.instructions[1]!.flags).toEqual([{ name: 'from', value: 'b' }, { name: 'chown', value: '1:2' }]);
    expect(cf.instructions[2]!.heredocs).toEqual([{ name: 'EOF', content: 'echo 1\n', expand: true, chomp: false }]);
    expect(cf.instructions[3]!.heredocs[0]).toMatchObject({ name: 'X', content: 'echo $A\n', expand: false, chomp: true });
  });

  it('reports broken files as FILE:LINE', () => {
    expect(err('FROM busybox\nFROBNICATE x\n')).toBe('Containerfile:2: unknown instruction: FROBNICATE');
    expect(err('RUN echo\n')).toMatch(/^Containerfile:1: RUN instruction before the first FROM/);
    expect(err('FROM busybox\nCOPY onlyone\n')).toMatch(/^Containerfile:2: COPY requires at least two arguments/);
    expect(err('FROM busybox\nRUN --bogus=1 true\n')).toBe('Containerfile:2: RUN: unknown flag: --bogus');
    expect(err('FROM busybox\n\nRUN <<EOF\necho\n')).toBe('Containerfile:3: unterminated heredoc <<EOF');
    expect(err('FROM busybox\nSHELL /bin/bash -c\n')).toMatch(/^Containerfile:2: SHELL requires the arguments to be in JSON form/);
    expect(err('FROM a b\n')).toMatch(/^Containerfile:1: FROM requires either one or three arguments/);
    expect(err('FROM busybox\nENV\n')).toMatch(/^Containerfile:2: ENV requires at least one argument/);
    expect(err('FROM busybox\nONBUILD ONBUILD RUN x\n')).toMatch(/^Containerfile:2: chaining ONBUILD/);
    expect(err('# only a comment\n')).toMatch(/no FROM instruction/);
  });
});

describe('expansion', () => {
  const vars = new Map([['A', 'alpha'], ['EMPTY', ''], ['SP', 'x y']]);
  it.each([
    ['$A', 'alpha'], ['${A}', 'alpha'], ['${A}-$A', 'alpha-alpha'], ['${NOPE}', ''],
    ['${NOPE:-dflt}', 'dflt'], ['${EMPTY:-dflt}', 'dflt'], ['${EMPTY-dflt}', ''], ['${A:-dflt}', 'alpha'],
    ['${A:+set}', 'set'], ['${NOPE:+set}', ''], ['${EMPTY:+set}', ''], ['${EMPTY+set}', 'set'],
    ["'$A'", '$A'], ['"$A b"', 'alpha b'], ['\\$A', '$A'], ['"\\$A"', '$A'], ['a\\ b', 'a b'], ['$', '$'], ['${NOPE:-$A}', 'alpha'],
  ])('%s → %s', (input, out) => {
    expect(expandWord(input, vars)).toBe(out);
  });
  it('splits words after expansion only on unquoted whitespace in the source', () => {
    expect(expandWords('a "b c" $SP', vars)).toEqual(['a', 'b c', 'x y']);
  });
  it('fails on ${VAR:?msg} when unset', () => {
    expect(() => expandWord('${NOPE:?must be set}', vars)).toThrow(/NOPE: must be set/);
  });
});

describe('ignore rules', () => {
  const m = makeMatcher(parseIgnore('# comment\n*.log\n/build\n**/tmp\ndocs/**/*.md\n!docs/keep.md\nsecret*\n!secret.pub\n'));
  it.each([
    ['a.log', true], ['dir/a.log', false], ['build', true], ['build/x/y', true], ['src/build', false],
    ['tmp', true], ['a/b/tmp/c', true], ['docs/x.md', true], ['docs/a/b/x.md', true], ['docs/keep.md', false],
    ['secret.key', true], ['secret.pub', false], ['main.c', false],
  ])('%s ignored: %s', (p, expected) => {
    expect(m.ignored(p)).toBe(expected);
  });
  it('descends into an ignored directory when an exception names something inside', () => {
    const d = makeMatcher(parseIgnore('drafts\n!drafts/published.html\n'));
    expect(d.ignored('drafts')).toBe(true);
    expect(d.skip('drafts')).toBe(false);
    expect(d.skip('drafts/wip.html')).toBe(true);
    expect(d.skip('drafts/published.html')).toBe(false);
    expect(makeMatcher(parseIgnore('drafts\n')).skip('drafts')).toBe(true);
  });
});

describe('source globbing inside a root', () => {
  it('matches per component, never leaves the root, and drops ignored paths', async () => {
    const root = await mkdtemp(join(tmpdir(), 'barge-glob-'));
    try {
      await mkdir(join(root, 'src', 'sub'), { recursive: true });
      for (const f of ['a.txt', 'b.txt', 'c.md', 'src/x.txt', 'src/sub/y.txt']) await writeFile(join(root, f), f);
      await symlink('/etc', join(root, 'escape'));
      const none = () => false;
      expect(await glob(root, '*.txt', none)).toEqual(['a.txt', 'b.txt']);
      expect(await glob(root, 'src/*.txt', none)).toEqual(['src/x.txt']);
      expect(await glob(root, '*/sub/?.txt', none)).toEqual(['src/sub/y.txt']);
      expect(await glob(root, '../a.txt', none)).toEqual(['a.txt']);
      expect(await glob(root, '/../../c.md', none)).toEqual(['c.md']);
      expect(await glob(root, '.', none)).toEqual(['']);
      expect(await glob(root, 'escape/passwd', none)).toEqual([]);
      expect(await glob(root, '*.txt', (p) => p === 'a.txt')).toEqual(['b.txt']);
      expect(await glob(root, 'a.txt', (p) => p === 'a.txt')).toEqual([]);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('COPY --parents and --platform helpers', () => {
  it('parentsPath keeps the whole path, or what follows a /./ pivot', () => {
    expect(parentsPath('a/b/c.txt', 'a/b/c.txt')).toBe('a/b/c.txt');
    expect(parentsPath('./a/./b/c.txt', 'a/b/c.txt')).toBe('b/c.txt');
    expect(parentsPath('src/./lib/*.c', 'src/lib/m.c')).toBe('lib/m.c');
    expect(parentsPath('/out/./sub', 'out/sub')).toBe('sub');
    // A leading ./ is not a pivot; a pivot at the root keeps everything.
    expect(parentsPath('./x/y', 'x/y')).toBe('x/y');
    expect(parentsPath('././x/y', 'x/y')).toBe('x/y');
  });

  it('platformArgs: BUILD* of the host, TARGET* of --platform, with Buildah\'s implied arm variants', () => {
    const arch = { x64: 'amd64', arm64: 'arm64' }[process.arch as 'x64' | 'arm64'] ?? process.arch;
    const host = platformArgs();
    expect(host.get('TARGETARCH')).toBe(arch);
    expect(host.get('TARGETPLATFORM')).toBe(host.get('BUILDPLATFORM'));
    const arm = platformArgs(parsePlatform('linux/arm/v6'));
    expect([arm.get('TARGETPLATFORM'), arm.get('TARGETARCH'), arm.get('TARGETVARIANT'), arm.get('BUILDARCH')]).toEqual(['linux/arm/v6', 'arm', 'v6', arch]);
    const arm64 = platformArgs({ architecture: 'arm64' });
    expect([arm64.get('TARGETPLATFORM'), arm64.get('TARGETVARIANT'), arm64.get('TARGETOS')]).toEqual(['linux/arm64', 'v8', 'linux']);
  });

  it('parsePlatform and platformMatches: what is not asked for does not count; spellings and implied variants compare equal', () => {
    expect(parsePlatform('linux/arm64/v8')).toEqual({ os: 'linux', architecture: 'arm64', variant: 'v8' });
    for (const bad of ['linux', 'linux/', 'a/b/c/d', '/amd64', '../../x/y', 'linux/a b']) expect(() => parsePlatform(bad), bad).toThrow(/invalid platform syntax for .* \(use OS\/ARCH\[\/VARIANT\]\)/);
    expect(parsePlatform('Linux/AMD64')).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(platformMatches({ os: 'linux', architecture: 'aarch64' }, { architecture: 'arm64', variant: 'v8' })).toBe(true);
    expect(platformMatches({ os: 'linux', architecture: 'amd64' }, { architecture: 'arm64' })).toBe(false);
    expect(platformMatches({ os: 'linux', architecture: 'arm', variant: 'v6' }, { architecture: 'arm' })).toBe(true);
    expect(platformMatches({ os: 'linux', architecture: 'arm', variant: 'v6' }, { architecture: 'arm', variant: 'v7' })).toBe(false);
    expect(platformMatches({ os: 'linux', architecture: 'amd64' }, { os: 'windows' })).toBe(false);
  });

  it('boolean flags take no value, true or false; anything else is a FILE:LINE error', () => {
    expect(parse('FROM busybox\nCOPY --link --parents=false a /b/\n').instructions[1]!.flags).toEqual([{ name: 'link', value: '' }, { name: 'parents', value: 'false' }]);
    expect(err('FROM busybox\nCOPY --link=yes a /b\n')).toBe('Containerfile:2: COPY: invalid --link value "yes" (true or false)');
  });
});
