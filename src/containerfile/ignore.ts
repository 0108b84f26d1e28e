// .containerignore / .dockerignore with Docker's pattern rules (moby/patternmatcher): patterns are
// cleaned paths relative to the context (a leading `/` is dropped), `*` and `?` stay within one
// path component, `**` spans any number of them, `!` re-includes, the last matching pattern
// wins, and a pattern that matches a directory also covers everything below it.

import { existsSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';

interface Pattern {
  re: RegExp;
  exclusion: boolean;
  text: string;
}

export interface IgnoreMatcher {
  /** True when the context-relative path (no leading slash) is ignored. */
  ignored(rel: string): boolean;
  /**
   * True when a walk should leave `rel` out entirely: it is ignored and no `!` exception can
   * bring back anything below it (Docker's walker descends into such directories).
   */
  skip(rel: string): boolean;
  patterns: string[];
  /** Where the patterns came from, or null. */
  file: string | null;
}

export function parseIgnore(text: string): string[] {
  const out: string[] = [];
  for (let line of text.split(/\r?\n/)) {
    if (line.startsWith('#')) continue;
    line = line.trim();
    if (line === '') continue;
    let excl = false;
    if (line.startsWith('!')) {
      excl = true;
      line = line.slice(1).trim();
    }
    let p = posix.normalize(line);
    if (p.length > 1 && p.startsWith('/')) p = p.slice(1);
    p = p.replace(/\/+$/, '') || '.';
    out.push((excl ? '!' : '') + p);
  }
  return out;
}

export function compilePattern(p: string): RegExp {
  let re = '^';
  for (let i = 0; i < p.length; i++) {
    const ch = p[i]!;
    if (ch === '*') {
      if (p[i + 1] === '*') {
        i++;
        // `**/` matches zero or more directories; a trailing `**` matches everything.
        if (p[i + 1] === '/') {
          i++;
          re += '(?:.*/)?';
        } else re += '.*';
      } else re += '[^/]*';
    } else if (ch === '?') re += '[^/]';
    else if (ch === '[') {
      const end = p.indexOf(']', i + 1);
      if (end < 0) {
        re += '\\[';
        continue;
      }
      let cls = p.slice(i + 1, end);
      if (cls.startsWith('^') || cls.startsWith('!')) cls = '^' + cls.slice(1);
      re += `[${cls.replace(/\\/g, '\\\\')}]`;
      i = end;
    } else if (ch === '\\' && i + 1 < p.length) {
      re += escapeRe(p[++i]!);
    } else re += escapeRe(ch);
  }
  return new RegExp(re + '$');
}

function escapeRe(c: string): string {
  return /[.*+?^${}()|[\]\\/]/.test(c) ? `\\${c}` : c;
}

export function makeMatcher(patterns: string[], file: string | null = null): IgnoreMatcher {
  const compiled: Pattern[] = patterns.map((t) => {
    const exclusion = t.startsWith('!');
    const text = exclusion ? t.slice(1) : t;
    return { re: compilePattern(text), exclusion, text };
  });
  const cache = new Map<string, boolean>();
  const ignored = (rel: string): boolean => {
    // Most contexts have no ignore file; their walks ask this for every path.
    if (compiled.length === 0) return false;
    rel = posix.normalize(rel).replace(/^\/+/, '').replace(/\/+$/, '');
    if (rel === '' || rel === '.') return false;
    const hit = cache.get(rel);
    if (hit !== undefined) return hit;
    let matched = false;
    const parents: string[] = [];
    const parts = rel.split('/');
    for (let k = 1; k < parts.length; k++) parents.push(parts.slice(0, k).join('/'));
    for (const p of compiled) {
      if (p.exclusion !== matched) continue; // cannot change the outcome
      let m = p.re.test(rel);
      if (!m) m = parents.some((d) => p.re.test(d));
      if (m) matched = !p.exclusion;
    }
    cache.set(rel, matched);
    return matched;
  };
  const exceptions = compiled.filter((p) => p.exclusion).map((p) => p.text);
  const skip = (rel: string): boolean => {
    if (!ignored(rel)) return false;
    const dirSlash = posix.normalize(rel).replace(/^\/+|\/+$/g, '') + '/';
    return !exceptions.some((t) => (t + '/').startsWith(dirSlash) || t.startsWith('**') || /^[*?[]/.test(t));
  };
  return { ignored, skip, patterns, file };
}

/**
 * The ignore file for a build: `<Containerfile>.containerignore` / `.dockerignore` next to the
 * Containerfile, else `.containerignore` / `.dockerignore` in the context.
 */
export function loadIgnore(contextDir: string, containerfile: string | null): IgnoreMatcher {
  const candidates: string[] = [];
  if (containerfile) candidates.push(`${containerfile}.containerignore`, `${containerfile}.dockerignore`);
  candidates.push(join(contextDir, '.containerignore'), join(contextDir, '.dockerignore'));
  for (const f of candidates) {
    if (existsSync(f)) return makeMatcher(parseIgnore(readFileSync(f, 'utf8')), f);
  }
  return makeMatcher([], null);
}
