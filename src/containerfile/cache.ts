// The layer cache: step keys → image ids (table build_cache), and a stat-fingerprint memo of
// build-context file hashes (table file_hashes) so an unchanged file is never read twice.

import { crypto } from '../sys/lazy-builtins.ts';
import { closeSync, lstatSync, openSync, readdirSync, readlinkSync, readSync, statSync, type Stats } from 'node:fs';
import type { Store } from '../store/store.ts';

export function cacheKey(parts: unknown): string {
  return crypto().createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

/** The image cached for `key`, when it is still in the store (and recorded less than `maxAgeMs` ago). */
export function lookupCache(store: Store, key: string, maxAgeMs?: number): string | null {
  const row = store.db.get<{ image_id: string; created: string }>('SELECT image_id, created FROM build_cache WHERE key = ?', key);
  if (!row) return null;
  if (maxAgeMs !== undefined && !(Date.now() - Date.parse(row.created) < maxAgeMs)) return null;
  if (store.getImage(row.image_id)) return row.image_id;
  store.db.run('DELETE FROM build_cache WHERE key = ?', key);
  return null;
}

export function recordCache(store: Store, key: string, imageId: string): void {
  store.db.run('INSERT OR REPLACE INTO build_cache (key, image_id, created) VALUES (?, ?, ?)', key, imageId, new Date().toISOString());
}

export interface HashStats {
  /** Files whose content was read and hashed. */
  read: number;
  /** Files whose hash came from the stat-fingerprint memo. */
  memo: number;
}

/**
 * Plain (not bigint) stats: a context walk makes thousands, and bigint ones cost a dozen BigInts
 * each. Their millisecond times keep sub-microsecond precision, finer than file timestamps move.
 */
function fingerprint(st: Stats): string {
  return `${st.size}:${st.mtimeMs}:${st.ctimeMs}:${st.ino}:${st.dev}:${st.mode}`;
}

/**
 * Content hashes of build-context trees, memoised by stat fingerprint. A file whose size, mtime,
 * ctime, inode and mode are unchanged since it was last hashed is not read again.
 */
export class ContentHasher {
  readonly stats: HashStats = { read: 0, memo: 0 };
  private readonly pending: [string, string, string][] = [];
  /** Memo rows of the trees hashed so far, each tree's loaded with one query rather than one per file. */
  private readonly memo = new Map<string, { fingerprint: string; hash: string }>();
  private readonly loadedRoots: string[] = [];

  constructor(private readonly store: Store) {}

  private loadMemo(root: string): void {
    if (this.loadedRoots.some((r) => root === r || root.startsWith(r + '/'))) return;
    // Everything at or below root: '0' is the character after '/'.
    const rows = this.store.db.all<{ path: string; fingerprint: string; hash: string }>(
      'SELECT path, fingerprint, hash FROM file_hashes WHERE path = ? OR (path >= ? AND path < ?)', root, root + '/', root + '0',
    );
    for (const r of rows) this.memo.set(r.path, r);
    this.loadedRoots.push(root);
  }

  /** Content hash of a file, read only when its stat fingerprint changed since it was last hashed. */
  fileHash(path: string, st: Stats): string {
    const fp = fingerprint(st);
    this.loadMemo(path);
    const row = this.memo.get(path);
    if (row && row.fingerprint === fp) {
      this.stats.memo++;
      return row.hash;
    }
    const hash = hashFile(path);
    this.stats.read++;
    this.pending.push([path, fp, hash]);
    this.memo.set(path, { fingerprint: fp, hash });
    return hash;
  }

  /**
   * Hash of a tree as COPY would copy it: names, types, modes, link targets and file contents.
   * `skip(rel)` leaves ignored entries out (rel is relative to `path`, '' for the top). The walk
   * is synchronous: a context is thousands of stat calls, and nothing else runs meanwhile.
   */
  treeHash(path: string, skip: (rel: string) => boolean): string {
    this.loadMemo(path);
    const h = crypto().createHash('sha256');
    const walk = (host: string, rel: string, top: boolean): void => {
      // As COPY does: the top-level source symlink is followed, links below are copied as links.
      const st = top ? statSync(host) : lstatSync(host);
      const mode = st.mode & 0o7777;
      if (st.isDirectory()) {
        h.update(`d ${rel} ${mode}\0`);
        for (const child of readdirSync(host).sort()) {
          const childRel = rel ? `${rel}/${child}` : child;
          if (skip(childRel)) continue;
          walk(`${host}/${child}`, childRel, false);
        }
      } else if (st.isSymbolicLink()) {
        h.update(`l ${rel} ${readlinkSync(host)}\0`);
      } else if (st.isFile()) {
        h.update(`f ${rel} ${mode} ${this.fileHash(host, st)}\0`);
      } else {
        h.update(`o ${rel} ${mode}\0`);
      }
    };
    walk(path.replace(/\/+$/, '') || '/', '', true);
    return h.digest('hex');
  }

  /** Writes the memo rows gathered so far (one transaction). */
  flush(): void {
    if (!this.pending.length) return;
    const rows = this.pending.splice(0);
    this.store.db.tx(() => {
      for (const [p, fp, hash] of rows) this.store.db.run('INSERT OR REPLACE INTO file_hashes (path, fingerprint, hash) VALUES (?, ?, ?)', p, fp, hash);
    });
  }
}

/** sha256 of a file's content, read through one reused buffer. */
function hashFile(path: string): string {
  const h = crypto().createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let n = readSync(fd, buf); n > 0; n = readSync(fd, buf)) h.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}
