// `barge container migrate CONTAINER DEST` (beyond Podman): checkpoint a running container, carry
// the checkpoint and the image layers the destination lacks to another store (a local --root, or
// barge on another machine over ssh), restore it there, and remove the source only once the
// destination runs it. If the destination cannot restore it, the source is restored from its own
// checkpoint, so a failed migration leaves the container running where it was.

import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import path, { join } from 'node:path';
import { Store, type Driver } from '../store/store.ts';
import { copyImage } from '../image/copy.ts';
import { StorageDestination, StorageSource } from '../image/transports/containers-storage.ts';
import { openDestination } from '../image/transports/index.ts';
import { ContainerError, liveState, removeContainer } from './lifecycle.ts';
import { checkpointContainer, importCheckpoint, restoreContainer } from './checkpoint.ts';
import { loadContainer, type Container } from './record.ts';

export interface MigrateOptions {
  tcpEstablished?: boolean;
  /** Keep CRIU's files on the destination. */
  keep?: boolean;
  /** Runroot of the destination store: a local one's, or passed to barge on the ssh host. */
  destRunroot?: string;
  /** A local destination store's runroot when destRunroot is not given. */
  defaultRunroot: string;
  destDriver?: string;
}

export type Destination =
  | { kind: 'store'; root: string }
  | { kind: 'ssh'; target: string; port: number | undefined; root: string | undefined };

/** DEST: `ssh://[USER@]HOST[:PORT][/STORE-ROOT]`, or the root directory of another store. */
export function parseDestination(dest: string): Destination {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(dest)) {
    let u: URL;
    try {
      u = new URL(dest);
    } catch {
      throw new ContainerError(`invalid migration destination "${dest}": expected ssh://[USER@]HOST[:PORT] or a store root directory`);
    }
    if (u.protocol !== 'ssh:') throw new ContainerError(`unsupported migration destination "${dest}": use ssh://[USER@]HOST[:PORT] or a store root directory`);
    if (!u.hostname) throw new ContainerError(`invalid migration destination "${dest}": no host`);
    if (u.password) throw new ContainerError(`invalid migration destination "${dest}": passwords in the URL are not supported (use ssh keys)`);
    if (u.search || u.hash) throw new ContainerError(`invalid migration destination "${dest}": unexpected query or fragment`);
    const root = u.pathname && u.pathname !== '/' ? decodeURIComponent(u.pathname) : undefined;
    return { kind: 'ssh', target: u.username ? `${decodeURIComponent(u.username)}@${u.hostname}` : u.hostname, port: u.port ? Number(u.port) : undefined, root };
  }
  if (dest === '') throw new ContainerError('empty migration destination');
  return { kind: 'store', root: path.resolve(dest) };
}

/** Migrates the container; resolves with its id on the destination. */
export async function migrateContainer(store: Store, ref: string, dest: string, o: MigrateOptions): Promise<string> {
  const d = parseDestination(dest);
  const c = loadContainer(store, ref);
  const st = liveState(store, c).status;
  if (st !== 'running') throw new ContainerError(`"${st}" is not running, cannot migrate: container state improper`);
  return d.kind === 'store' ? migrateToStore(store, c, d.root, o) : migrateOverSsh(store, c, d, o);
}

async function migrateToStore(store: Store, c: Container, root: string, o: MigrateOptions): Promise<string> {
  if (root === path.resolve(store.root)) throw new ContainerError(`${root} is the container's own store`);
  const runroot = path.resolve(o.destRunroot ?? o.defaultRunroot);
  const target = await Store.open({ root, runroot, driver: (o.destDriver ?? store.driver) as Driver, ...(store.userxattr && { userxattr: true }) });
  try {
    await ensureImage(store, target, c);
    // Two stores sharing a runroot would share the container's runtime directories under one id.
    const newId = runroot === path.resolve(store.runroot);
    return await viaArchive(store, c, async (archive) => {
      const r = await importCheckpoint(target, archive, {
        tcpEstablished: !!o.tcpEstablished, keep: !!o.keep, runtime: c.data.config.runtimeName, ...(newId && { newId: true }),
      });
      return r.record.id;
    }, 'none');
  } finally {
    target.close();
  }
}

/** Copies the container's image into target unless it is there; the copy skips blobs target has. */
async function ensureImage(store: Store, target: Store, c: Container): Promise<void> {
  const id = c.data.config.imageId;
  if (target.getImage(id)) return;
  const img = store.getImage(id);
  if (!img) throw new ContainerError(`the image ${id.slice(0, 12)} of container ${c.record.name} is gone from the store`);
  const src = new StorageSource(store, id);
  const dst = new StorageDestination(target, img.names);
  try {
    await copyImage(src, dst);
  } finally {
    await dst.close();
    await src.close();
  }
}

/**
 * Checkpoints c into an archive, has `restoreThere` restore it, and removes c once that worked;
 * when it fails, c is restored here again.
 */
async function viaArchive(store: Store, c: Container, restoreThere: (archive: string) => Promise<string>, compress: 'none' | 'zstd'): Promise<string> {
  const stage = await store.staging();
  const archive = join(stage, 'checkpoint.tar');
  try {
    await checkpointContainer(store, c.record.id, { export: archive, compress });
    let id: string;
    try {
      id = await restoreThere(archive);
    } catch (e) {
      await restoreContainer(store, c.record.id).catch((e2: unknown) => {
        process.stderr.write(`Error: restoring ${c.record.name} in its own store after the failed migration: ${(e2 as Error).message}\n`);
      });
      throw e;
    }
    await removeContainer(store, c.record.id, { force: false });
    return id;
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
}

// ---------- ssh ----------

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function sshArgs(d: Extract<Destination, { kind: 'ssh' }>, remote: string[]): string[] {
  const quoted = remote.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  return ['-o', 'BatchMode=yes', ...(d.port !== undefined ? ['-p', String(d.port)] : []), d.target, quoted];
}

/** Runs `barge ARGS` on the remote host (stdin from a file, if given). */
function remoteBarge(d: SshDestination, args: string[], stdinFile?: string): Promise<Run> {
  return ssh(d, ['barge', ...(d.root !== undefined ? ['--root', d.root] : []), ...(d.runroot !== undefined ? ['--runroot', d.runroot] : []), ...args], stdinFile);
}

/** Runs a command on the remote host (stdin from a file, if given). */
function ssh(d: SshDestination, remote: string[], stdinFile?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.env['BARGE_SSH'] ?? 'ssh', sshArgs(d, remote), { stdio: [stdinFile ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', (e: NodeJS.ErrnoException) =>
      reject(new ContainerError(e.code === 'ENOENT' ? 'cannot migrate over ssh: the ssh client is not installed' : `ssh: ${e.message}`)),
    );
    child.on('close', (code) => resolve({ code: code ?? 255, stdout, stderr }));
    if (stdinFile && child.stdin) {
      child.stdin.on('error', () => undefined);
      createReadStream(stdinFile).on('error', reject).pipe(child.stdin);
    }
  });
}

function sshFailure(dest: string, what: string, r: Run): ContainerError {
  return new ContainerError(`migrate to ${dest}: ${what} failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim() || 'no output'}`);
}

/** An ssh destination, with the remote runroot --dest-runroot names. */
type SshDestination = Extract<Destination, { kind: 'ssh' }> & { runroot?: string };

async function migrateOverSsh(store: Store, c: Container, dest0: Extract<Destination, { kind: 'ssh' }>, o: MigrateOptions): Promise<string> {
  const d: SshDestination = { ...dest0, ...(o.destRunroot !== undefined && { runroot: o.destRunroot }) };
  const dest = `ssh://${d.target}${d.port !== undefined ? `:${d.port}` : ''}`;
  // Before anything is checkpointed: the host must be reachable and run barge.
  const probe = await remoteBarge(d, ['images', '-q', '--no-trunc']);
  if (probe.code !== 0) throw sshFailure(dest, 'reaching barge on the destination', probe);
  const id = c.data.config.imageId;
  if (!probe.stdout.split('\n').some((l) => l.trim().replace(/^sha256:/, '') === id)) {
    const img = store.getImage(id);
    if (!img) throw new ContainerError(`the image ${id.slice(0, 12)} of container ${c.record.name} is gone from the store`);
    const stage = await store.staging();
    try {
      const file = join(stage, 'image.tar');
      const src = new StorageSource(store, id);
      const dst = await openDestination(`oci-archive:${file}:${img.names[0] ?? ''}`);
      try {
        await copyImage(src, dst);
      } finally {
        await dst.close();
        await src.close();
      }
      const r = await remoteBarge(d, ['load', '-q'], file);
      if (r.code !== 0) throw sshFailure(dest, 'loading the image', r);
    } finally {
      await rm(stage, { recursive: true, force: true });
    }
  }
  return viaArchive(store, c, async (archive) => {
    const remoteFile = `/tmp/barge-migrate-${c.record.id.slice(0, 12)}-${process.pid}.tar.zst`;
    const put = await ssh(d, ['sh', '-c', `cat > ${remoteFile}`], archive);
    if (put.code !== 0) throw sshFailure(dest, 'sending the checkpoint', put);
    const args = ['container', 'restore', '-i', remoteFile, ...(o.tcpEstablished ? ['--tcp-established'] : []), ...(o.keep ? ['--keep'] : [])];
    const r = await remoteBarge(d, args);
    await ssh(d, ['rm', '-f', remoteFile]).catch(() => undefined);
    if (r.code !== 0) throw sshFailure(dest, 'restoring', r);
    return r.stdout.trim().split('\n').at(-1) ?? '';
  }, 'zstd');
}
