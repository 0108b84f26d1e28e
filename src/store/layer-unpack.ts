// The part of a layer's unpacking that runs beside its download: decompressing, hashing the
// uncompressed bytes (the diff id) and applying the tar. Large layers do it in a worker thread
// (unpack-worker.ts), small ones on the main thread; the main thread itself only receives, hashes
// and keeps the compressed blob. Decompression and the diff hash used to run on the main thread
// too, which made it the slowest stage of a pull while the unpack workers waited for input.
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { HashingStream, decompressor, type Compression } from './hashing.ts';
import type { WhiteoutMode } from './tar-apply.ts';

export interface UnpackJob {
  root: string;
  whiteouts: WhiteoutMode;
  userxattr: boolean;
  compression: Compression;
}

export interface UnpackResult {
  /** Of the uncompressed tar; null when the input was not compressed (its own digest is the diff id). */
  diffId: string | null;
  diffSize: number;
}

/** Decompresses (as job.compression says), hashes and applies src into job.root. */
export async function unpackLayerBytes(src: Readable, job: UnpackJob): Promise<UnpackResult> {
  // Loaded here, not with the store: most commands never unpack a layer.
  const { applyTar } = await import('./tar-apply.ts');
  const dec = decompressor(job.compression);
  if (!dec) {
    await applyTar(src, job);
    return { diffId: null, diffSize: 0 };
  }
  const diff = new HashingStream();
  const applying = applyTar(diff, job);
  await settleAll([pipeline(src, dec, diff)], [src, dec, diff], [applying]);
  return { diffId: diff.digest, diffSize: diff.size };
}

/**
 * Waits for every branch of a fanned-out pipeline. The first failure tears all streams down;
 * then, once every stream has closed and every non-stream branch (the unpacker) has stopped —
 * so nothing still writes into the staging directory — that first error, the real cause, is
 * thrown. Stream pipelines are awaited through their streams' close events: a pipeline whose
 * streams were destroyed around it does not always settle its promise.
 */
export async function settleAll(
  branches: Promise<unknown>[],
  streams: { destroy(e?: Error): void; closed?: boolean; once(ev: 'close', fn: () => void): unknown }[],
  workers: Promise<unknown>[] = [],
): Promise<void> {
  let first: unknown;
  let failed!: () => void;
  const failure = new Promise<void>((r) => (failed = r));
  const watched = [...branches, ...workers].map((p) =>
    p.catch((e: unknown) => {
      if (first !== undefined) return;
      first = e;
      for (const s of streams) s.destroy();
      failed();
    }),
  );
  const closed = (s: (typeof streams)[number]): Promise<void> =>
    s.closed ? Promise.resolve() : new Promise<void>((r) => s.once('close', r));
  await Promise.race([
    Promise.all(watched),
    failure.then(() => Promise.all([...streams.map(closed), ...workers.map((w) => w.catch(() => undefined))])),
  ]);
  if (first !== undefined) throw first;
}
