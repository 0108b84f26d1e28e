import { DatabaseSync, type SQLInputValue } from 'node:sqlite';

// Metadata lives in one SQLite file in WAL mode: every barge process opens it, and
// SQLite's locking is what makes concurrent commands safe without a daemon.
const SCHEMA = `
CREATE TABLE IF NOT EXISTS layers (
  id TEXT PRIMARY KEY,            -- chain id (hex): identifies the layer together with all its parents
  parent TEXT,
  diff_id TEXT NOT NULL,          -- sha256 of the uncompressed tar
  diff_size INTEGER NOT NULL,
  blob_digest TEXT,               -- compressed blob kept in blobs/ so push and save need no recompression
  blob_size INTEGER,
  blob_media_type TEXT,
  link TEXT NOT NULL UNIQUE,      -- short name under l/ that keeps overlay mount options small
  created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS images (
  id TEXT PRIMARY KEY,            -- config digest hex, as Podman and Buildah print it
  top_layer TEXT,
  manifest_digest TEXT NOT NULL,
  manifest_media_type TEXT NOT NULL,
  created TEXT,
  added TEXT NOT NULL,
  size INTEGER NOT NULL,
  read_only INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS names (
  name TEXT PRIMARY KEY,
  image_id TEXT NOT NULL REFERENCES images(id)
);
CREATE INDEX IF NOT EXISTS names_image ON names(image_id);
CREATE TABLE IF NOT EXISTS containers (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL,             -- 'builder' (Buildah working container) or 'container' (Podman-style)
  image_id TEXT,
  image_name TEXT,
  top_layer TEXT,
  created TEXT NOT NULL,
  mountpoint TEXT,
  data TEXT NOT NULL              -- JSON owned by the layer above the store
);
CREATE TABLE IF NOT EXISTS volumes (
  name TEXT PRIMARY KEY,          -- Podman's volume name; its content is volumes/<name>/_data
  created TEXT NOT NULL,
  data TEXT NOT NULL              -- JSON owned by src/containers/volumes.ts (labels, anonymous, copy-up state)
);
CREATE TABLE IF NOT EXISTS pods (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,      -- shares Podman's one namespace of names with the containers
  created TEXT NOT NULL,
  infra_id TEXT,                  -- the pod's infra container, once made (NULL for --infra=false)
  data TEXT NOT NULL              -- JSON owned by src/containers/pods.ts (the options of pod create)
);
CREATE TABLE IF NOT EXISTS list_instances (
  list_id TEXT NOT NULL,          -- images.id of a manifest list (a row whose manifest is an index)
  digest TEXT NOT NULL,           -- manifest digest of one image the list names
  source TEXT NOT NULL,           -- where push reads it: a local image id, or TRANSPORT:REFERENCE
  PRIMARY KEY (list_id, digest)
);
CREATE TABLE IF NOT EXISTS locks (
  name TEXT PRIMARY KEY,
  pid INTEGER NOT NULL,
  start TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS network_leases (
  network_id TEXT NOT NULL,       -- id of a bridge network (src/containers/bridge.ts)
  ip TEXT NOT NULL,               -- an IPv4 address of its subnet, held while the container's network is set up
  container_id TEXT NOT NULL,
  PRIMARY KEY (network_id, ip)
);
CREATE INDEX IF NOT EXISTS network_leases_container ON network_leases(container_id);
CREATE TABLE IF NOT EXISTS build_cache (
  key TEXT PRIMARY KEY,           -- sha256 of parent image, instruction and copied content (src/containerfile/cache.ts)
  image_id TEXT NOT NULL,
  created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS file_hashes (
  path TEXT PRIMARY KEY,          -- absolute host path of a build-context file
  fingerprint TEXT NOT NULL,      -- size, mtime, ctime, inode and mode when it was hashed
  hash TEXT NOT NULL
);
`;

/** A 31-bit hash of the schema text: any change to SCHEMA makes stores apply it again. */
const SCHEMA_VERSION = [...SCHEMA].reduce((h, c) => (Math.imul(h, 31) + c.charCodeAt(0)) | 0, 7) & 0x7fffffff;

export type Row = Record<string, SQLInputValue>;

/** Columns added after a table's first release: CREATE TABLE IF NOT EXISTS leaves older stores' tables as they were. */
function addColumn(sql: DatabaseSync, table: string, column: string): void {
  const name = column.split(' ')[0]!;
  const have = sql.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[];
  if (have.some((c) => c.name === name)) return;
  try {
    sql.exec(`ALTER TABLE ${table} ADD COLUMN ${column}`);
  } catch (e) {
    // Another process opening the store added it in between.
    if (!/duplicate column/.test((e as Error).message)) throw e;
  }
}

export class Db {
  readonly sql: DatabaseSync;
  private depth = 0;

  constructor(file: string) {
    this.sql = new DatabaseSync(file, { timeout: 60_000 });
    this.sql.exec('PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;');
    // The schema's fingerprint in user_version: the common open of an up-to-date store reads one
    // integer instead of running every CREATE (a write transaction) again.
    // Many processes opening a brand-new store at once: SQLite can answer the switch to WAL with
    // "database is locked" at once, without waiting out the busy timeout (its deadlock avoidance).
    // The setup is idempotent, so it is tried again, re-reading the version each time.
    for (let attempt = 0; ; attempt++) {
      try {
        const version = (this.sql.prepare('PRAGMA user_version').get() as { user_version: number }).user_version;
        if (version !== SCHEMA_VERSION) {
          this.sql.exec('PRAGMA journal_mode = WAL');
          this.sql.exec(SCHEMA);
          addColumn(this.sql, 'containers', 'pod_id TEXT REFERENCES pods(id)');
          this.sql.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
        }
        return;
      } catch (e) {
        if (attempt >= 200 || !/database is locked/.test((e as Error).message)) throw e;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10 + attempt);
      }
    }
  }

  /** Runs fn in one write transaction; nested calls join the outer one. */
  tx<T>(fn: () => T): T {
    if (this.depth > 0) return fn();
    this.sql.exec('BEGIN IMMEDIATE');
    this.depth++;
    try {
      const r = fn();
      this.sql.exec('COMMIT');
      return r;
    } catch (e) {
      this.sql.exec('ROLLBACK');
      throw e;
    } finally {
      this.depth--;
    }
  }

  all<T>(query: string, ...params: SQLInputValue[]): T[] {
    return this.sql.prepare(query).all(...params) as T[];
  }

  get<T>(query: string, ...params: SQLInputValue[]): T | undefined {
    return this.sql.prepare(query).get(...params) as T | undefined;
  }

  run(query: string, ...params: SQLInputValue[]): number {
    return Number(this.sql.prepare(query).run(...params).changes);
  }

  close(): void {
    this.sql.close();
  }
}
