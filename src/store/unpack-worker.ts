// A worker thread that unpacks one layer (layer-unpack.ts: decompress, hash, apply the tar): the
// zlib work, tar parsing and the synchronous filesystem calls run here, beside the main thread that
// downloads, hashes and keeps the blob, so neither waits for the other. Started by
// Store.stageLayer for large layers; bundled as dist/unpack-worker.mjs.
import { PassThrough } from 'node:stream';
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { unpackLayerBytes, type UnpackJob, type UnpackResult } from './layer-unpack.ts';

/** Main thread to worker: the layer's bytes as they arrive, then the end. */
export type ToWorker = { chunk: Uint8Array } | { end: true };

/** Worker to main thread: bytes taken in (flow control), then the result or the failure. */
export type FromWorker = { ack: number } | { done: UnpackResult } | { error: { message: string; code?: string } };

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
  unpackLayerBytes(input, job).then(
    (done) => port.postMessage({ done } satisfies FromWorker),
    (err: unknown) => {
      const e = err instanceof Error ? err : new Error(String(err));
      const code = (e as NodeJS.ErrnoException).code;
      port.postMessage({ error: { message: e.message, ...(code !== undefined && { code }) } } satisfies FromWorker);
    },
  );
}
