// The layer cache: step keys → image ids (table build_cache), and a stat-fingerprint memo of
// build-context file hashes (table file_hashes) so an unchanged file is never read twice.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink, stat } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import { join } from 'node:path';
import type { Store } from '../store/store.ts';

export function cacheKey(parts: unknown): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

/** The image cached for `key`, when it is still in the store. */
export function lookupCache(store: Store, key: string): string | null {
  const row = store.db.get<{ image_id: string }>('SELECT image_id FROM build_cache WHERE key = ?', key);
  if (!row) return null;
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

function fingerprint(st: BigIntStats): string {
  return `${st.size}:${st.mtimeNs}:${st.ctimeNs}:${st.ino}:${st.dev}:${st.mode}`;
}

/**
 * Content hashes of build-context trees, memoised by stat fingerprint. A file whose size, mtime,
 * ctime, inode and mode are unchanged since it was last hashed is not read again.
 */
export class ContentHasher {
  readonly stats: HashStats = { read: 0, memo: 0 };
  private readonly pending: [string, string, string][] = [];

  constructor(private readonly store: Store) {}

  async fileHash(path: string, st: BigIntStats): Promise<string> {
    const fp = fingerprint(st);
    const row = this.store.db.get<{ fingerprint: string; hash: string }>('SELECT fingerprint, hash FROM file_hashes WHERE path = ?', path);
    if (row && row.fingerprint === fp) {
      this.stats.memo++;
      return row.hash;
    }
    const h = createHash('sha256');
    for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
    const hash = h.digest('hex');
    this.stats.read++;
    this.pending.push([path, fp, hash]);
    return hash;
  }

  /**
   * Hash of a tree as COPY would copy it: names, types, modes, link targets and file contents.
   * `skip(rel)` leaves ignored entries out (rel is relative to `path`, '' for the top).
   */
  async treeHash(path: string, skip: (rel: string) => boolean): Promise<string> {
    const h = createHash('sha256');
    const walk = async (host: string, rel: string, top: boolean): Promise<void> => {
      // As COPY does: the top-level source symlink is followed, links below are copied as links.
      const st = top ? await stat(host, { bigint: true }) : await lstat(host, { bigint: true });
      const mode = Number(st.mode & 0o7777n);
      if (st.isDirectory()) {
        h.update(`d ${rel} ${mode}\0`);
        for (const child of (await readdir(host)).sort()) {
          const childRel = rel ? `${rel}/${child}` : child;
          if (skip(childRel)) continue;
          await walk(join(host, child), childRel, false);
        }
      } else if (st.isSymbolicLink()) {
        h.update(`l ${rel} ${await readlink(host)}\0`);
      } else if (st.isFile()) {
        h.update(`f ${rel} ${mode} ${await this.fileHash(host, st)}\0`);
      } else {
        h.update(`o ${rel} ${mode}\0`);
      }
    };
    await walk(path, '', true);
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
