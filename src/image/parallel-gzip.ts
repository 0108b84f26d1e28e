import { availableParallelism } from 'node:os';
import { Transform, type TransformCallback } from 'node:stream';
import { gzip } from 'node:zlib';

const BLOCK = 1 << 20;

/**
 * Gzip on every core: input is cut into 1 MiB blocks, each compressed on libuv's thread pool as
 * its own gzip member, and the members are emitted in order. Concatenated members are one valid
 * gzip stream (RFC 1952), which every gunzip reads — the technique pigz and pgzip use. Node's
 * streaming gzip runs on one core and made pushes of large layers CPU-bound.
 */
export class ParallelGzip extends Transform {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private readonly inFlight: Promise<Buffer>[] = [];
  private readonly maxInFlight = Math.max(2, availableParallelism());

  constructor(private readonly level = 6) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    this.drainBlocks(false).then(() => cb(), cb);
  }

  override _flush(cb: TransformCallback): void {
    this.drainBlocks(true).then(async () => {
      while (this.inFlight.length) this.push(await this.inFlight.shift()!);
      cb();
    }, cb);
  }

  private async drainBlocks(final: boolean): Promise<void> {
    while (this.pendingBytes >= BLOCK || (final && this.pendingBytes > 0)) {
      const all = Buffer.concat(this.pending);
      const block = all.subarray(0, Math.min(BLOCK, all.length));
      const rest = all.subarray(block.length);
      this.pending = rest.length ? [rest] : [];
      this.pendingBytes = rest.length;
      this.inFlight.push(compress(block, this.level));
      // Bounded work in flight keeps memory at a few blocks; results leave in input order.
      while (this.inFlight.length >= this.maxInFlight) this.push(await this.inFlight.shift()!);
    }
  }
}

function compress(block: Buffer, level: number): Promise<Buffer> {
  return new Promise((resolve, reject) => gzip(block, { level }, (err, out) => (err ? reject(err) : resolve(out))));
}
