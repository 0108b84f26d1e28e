import { lstat, readlink } from 'node:fs/promises';
import { lstatSync, type Stats } from 'node:fs';
import path from 'node:path';

/** Same bound the kernel uses (MAXSYMLINKS), so loops fail the way a real chroot would. */
const MAX_SYMLINK_HOPS = 40;

export interface ResolveOptions {
  /** Follow the last component when it is a symlink (default true). */
  followFinal?: boolean;
}

/**
 * Resolves `p` as if `root` were `/` and returns a host path that cannot be
 * outside `root`. Symlinks are read and reinterpreted inside root instead of
 * being left to the kernel, because the kernel would resolve absolute targets
 * and `..` against the host's root.
 */
export async function resolveInRoot(root: string, p: string, opts: ResolveOptions = {}): Promise<string> {
  const followFinal = opts.followFinal ?? true;
  const base = path.resolve(root);
  const done: string[] = [];
  // Components still to walk, last element first, so a symlink's target can
  // be spliced in front of what remains.
  const todo = splitComponents(p).reverse();
  let hops = 0;

  while (todo.length > 0) {
    const name = todo.pop()!;
    if (name === '.') continue;
    if (name === '..') {
      done.pop();
      continue;
    }
    const isFinal = todo.length === 0;
    const candidate = path.join(base, ...done, name);
    if (isFinal && !followFinal) {
      done.push(name);
      break;
    }
    const st = await lstatOrNull(candidate);
    if (st === null || !st.isSymbolicLink()) {
      // Missing components are appended as-is; a later `..` may climb back
      // into existing directories, so the walk continues component by component.
      done.push(name);
      continue;
    }
    if (++hops > MAX_SYMLINK_HOPS) {
      const err: NodeJS.ErrnoException = new Error(`${p}: too many levels of symbolic links`);
      err.code = 'ELOOP';
      throw err;
    }
    const target = await readlink(candidate);
    if (target.startsWith('/')) done.length = 0;
    todo.push(...splitComponents(target).reverse());
  }
  return path.join(base, ...done);
}

function splitComponents(p: string): string[] {
  return p.split('/').filter((c) => c !== '' && c !== '.');
}

/** lstat, or null when nothing is there. */
export async function lstatOrNull(p: string): Promise<Stats | null> {
  try {
    return await lstat(p);
  } catch (e) {
    if (isMissing(e)) return null;
    throw e;
  }
}

/** lstatOrNull for callers that do their filesystem work synchronously (layer unpacking). */
export function lstatOrNullSync(p: string): Stats | null {
  try {
    return lstatSync(p);
  } catch (e) {
    if (isMissing(e)) return null;
    throw e;
  }
}

function isMissing(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  // ENOTDIR: a path through a regular file; treat like a missing entry.
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** An empty, "." or ".." component. */
const SPECIAL_COMPONENT = /(?:^|\/)\.{0,2}(?:\/|$)/;

/**
 * Normalises a tar entry name to a root-relative path without `.`, empty or
 * leading-slash components. Returns '' for the root itself and null when a
 * `..` would climb above the root — callers must reject such entries rather
 * than clamp them, since a layer that tries this is malformed or hostile.
 */
export function cleanTarPath(name: string): string | null {
  // Most names are clean already but for a leading "./" and, on directories, a trailing "/";
  // those need no split and join (a layer has thousands of names).
  const start = name.startsWith('./') ? 2 : 0;
  const end = name.length > start && name.endsWith('/') ? name.length - 1 : name.length;
  const core = start === 0 && end === name.length ? name : name.slice(start, end);
  if (!SPECIAL_COMPONENT.test(core)) return core;
  const out: string[] = [];
  for (const c of name.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (out.length === 0) return null;
      out.pop();
      continue;
    }
    out.push(c);
  }
  return out.join('/');
}
