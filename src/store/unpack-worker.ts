// A worker thread that applies one layer's (uncompressed) tar: tar parsing and the synchronous
// filesystem calls run here, beside the main thread that downloads, hashes, decompresses and keeps
// the blob, so neither waits for the other. Started by Store.stageLayer for large layers; bundled
// as dist/unpack-worker.mjs.
import { PassThrough } from 'node:stream';
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { applyTar, type ApplyResult, type WhiteoutMode } from './tar-apply.ts';

export interface UnpackJob {
  root: string;
  whiteouts: WhiteoutMode;
  userxattr: boolean;
}

/** Main thread to worker: the tar's bytes as they arrive, then the end. */
export type ToWorker = { chunk: Uint8Array } | { end: true };

/** Worker to main thread: bytes taken in (flow control), then the result or the failure. */
export type FromWorker = { ack: number } | { done: ApplyResult } | { error: { message: string; code?: string } };

if (parentPort !== null && workerData !== null) run(workerData as UnpackJob, parentPort);

function run(job: UnpackJob, port: MessagePort): void {
  const input = new PassThrough({ highWaterMark: 1 << 20 });
  let unacked = 0;
  const ack = (): void => {
    if (unacked === 0) return;
    port.postMessage({ ack: unacked } satisfies FromWorker);
    unacked = 0;
  };
  input.on('drain', ack);
  port.on('message', (m: ToWorker) => {
    if ('end' in m) {
      input.end();
      return;
    }
    unacked += m.chunk.byteLength;
    if (input.write(Buffer.from(m.chunk.buffer, m.chunk.byteOffset, m.chunk.byteLength))) ack();
  });
  // The main thread ends this worker once it has the answer.
  applyTar(input, job).then(
    (done) => port.postMessage({ done } satisfies FromWorker),
    (err: unknown) => {
      const e = err instanceof Error ? err : new Error(String(err));
      const code = (e as NodeJS.ErrnoException).code;
      port.postMessage({ error: { message: e.message, ...(code !== undefined && { code }) } } satisfies FromWorker);
    },
  );
}
