// COPY/ADD source patterns (Go's filepath.Match per path component, as Docker uses), resolved
// inside a root: `..` cannot climb out and symlinks are followed as if the root were `/`.

import { lstat, readdir } from 'node:fs/promises';
import { posix } from 'node:path';
import { resolveInRoot } from '../store/secure-path.ts';

const GLOB = /[*?[]/;

function componentRe(p: string): RegExp {
  let re = '^';
  for (let i = 0; i < p.length; i++) {
    const ch = p[i]!;
    if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else if (ch === '[') {
      const end = p.indexOf(']', i + 1);
      if (end < 0) throw new Error(`syntax error in pattern "${p}"`);
      let cls = p.slice(i + 1, end);
      if (cls.startsWith('^') || cls.startsWith('!')) cls = '^' + cls.slice(1);
      re += `[${cls.replace(/\\/g, '\\\\')}]`;
      i = end;
    } else if (ch === '\\' && i + 1 < p.length) re += `\\${p[++i]}`;
    else re += /[.+^${}()|\\/\]]/.test(ch) ? `\\${ch}` : ch;
  }
  return new RegExp(re + '$');
}

/** Cleans a source path relative to the root: `../x` and `/x` both name `x` in the root. */
export function cleanRel(p: string): string {
  return posix.normalize('/' + p).slice(1).replace(/\/+$/, '');
}

/**
 * Root-relative paths that `pattern` names ('' for the root itself), sorted, without those
 * `ignored` says are not part of the context. A pattern without wildcards names one path,
 * which must exist.
 */
export async function glob(root: string, pattern: string, ignored: (rel: string) => boolean): Promise<string[]> {
  const clean = cleanRel(pattern);
  if (!GLOB.test(clean)) {
    if (clean !== '' && ignored(clean)) return [];
    const host = await resolveInRoot(root, clean);
    return (await lstat(host).catch(() => null)) ? [clean] : [];
  }
  let cur: string[] = [''];
  for (const part of clean.split('/')) {
    const next: string[] = [];
    if (!GLOB.test(part)) {
      for (const c of cur) next.push(c ? `${c}/${part}` : part);
    } else {
      const re = componentRe(part);
      for (const c of cur) {
        const host = await resolveInRoot(root, c);
        const names = await readdir(host).catch(() => [] as string[]);
        for (const n of names) if (re.test(n)) next.push(c ? `${c}/${n}` : n);
      }
    }
    cur = next;
  }
  const out: string[] = [];
  for (const rel of cur.sort()) {
    if (ignored(rel)) continue;
    if (await lstat(await resolveInRoot(root, rel)).catch(() => null)) out.push(rel);
  }
  return out;
}
