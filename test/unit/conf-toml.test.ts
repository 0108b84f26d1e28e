import { readFileSync } from 'node:fs';
import { parse } from 'smol-toml';
import { describe, expect, it } from 'vitest';
import { blankCommentLines, parseConfToml } from '../../src/sys/conf-toml.ts';

describe('containers configuration TOML', () => {
  it('blanks whole-line comments, keeping line numbers and multi-line strings', () => {
    const text = ['# top', 'a = 1  # trailing', '  # indented', 'b = """', '# kept: inside a string', '"""', "c = '''", '#kept', "'''", '#x'].join('\n');
    const out = blankCommentLines(text);
    expect(out.split('\n')).toEqual(['', 'a = 1  # trailing', '', 'b = """', '# kept: inside a string', '"""', "c = '''", '#kept', "'''", '']);
    expect(parseConfToml(text)).toEqual(parse(text));
  });

  it('reads the system containers.conf and registries.conf as the plain parser does', () => {
    // Installed by scripts/setup.sh (podman, buildah): the real, comment-heavy files.
    for (const f of ['/usr/share/containers/containers.conf', '/etc/containers/registries.conf']) {
      const text = readFileSync(f, 'utf8');
      expect(parseConfToml(text), f).toEqual(parse(text));
    }
  });

  it('a syntax error still names its line', () => {
    expect(() => parseConfToml('# c\n# c\n[engine\n')).toThrow(/^3: +\[engine$/m);
  });
});
