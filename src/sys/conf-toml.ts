// The containers tools' configuration files (containers.conf, registries.conf) are TOML, and the
// ones Debian ships are mostly commented-out defaults: /usr/share/containers/containers.conf is
// 700 lines, of which about 20 set anything. The TOML parser spent 4 ms of every `run` walking
// those comments, so whole-line comments are blanked first (blank, not removed: error messages
// keep their line numbers).
import { parse } from 'smol-toml';

/** Blanks the lines that are only a comment, outside multi-line strings. */
export function blankCommentLines(text: string): string {
  const lines = text.split('\n');
  let inString: '"""' | "'''" | null = null;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (inString === null && /^\s*#/.test(line)) {
      lines[i] = '';
      continue;
    }
    // Track multi-line strings: each delimiter outside a string opens one, inside closes it.
    for (const m of line.matchAll(/"""|'''/g)) {
      const d = m[0] as '"""' | "'''";
      if (inString === null) inString = d;
      else if (inString === d) inString = null;
    }
  }
  return lines.join('\n');
}

/** Parses a containers configuration file's text. */
export function parseConfToml(text: string): Record<string, unknown> {
  return parse(blankCommentLines(text)) as Record<string, unknown>;
}
