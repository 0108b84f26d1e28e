import type { Hash } from 'node:crypto';
import { Transform, type TransformCallback, type Readable } from 'node:stream';
import { crypto, zlib } from '../sys/lazy-builtins.ts';

export const DIGEST_RE = /^sha256:[a-f0-9]{64}$|^sha512:[a-f0-9]{128}$/;

export function sha256(data: string | Buffer): string {
  return 'sha256:' + crypto().createHash('sha256').update(data).digest('hex');
}

export function hexOf(digest: string): string {
  const i = digest.indexOf(':');
  return i < 0 ? digest : digest.slice(i + 1);
}

export type DigestAlgorithm = 'sha256' | 'sha512';

/** Passes bytes through while hashing and counting them, so a digest costs no second read. */
export class HashingStream extends Transform {
  private readonly hash: Hash;
  /** Bytes seen so far (final once the stream has ended). */
  size = 0;
  private result: string | undefined;

  constructor(readonly algorithm: DigestAlgorithm = 'sha256') {
    super();
    this.hash = crypto().createHash(algorithm);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    this.result = `${this.algorithm}:${this.hash.digest('hex')}`;
    cb();
  }

  /** Valid once the stream has ended. */
  get digest(): string {
    if (!this.result) throw new Error('digest read before the stream ended');
    return this.result;
  }
}

export type Compression = 'gzip' | 'zstd' | 'none';

export function detectCompression(head: Buffer): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'none';
}

/** Reads the first bytes of a stream without consuming them, to sniff compression. */
export async function peek(stream: Readable, n = 8): Promise<Buffer> {
  // A stream that already failed or finished emits nothing more: answer now instead of waiting forever.
  if (stream.errored) throw stream.errored;
  if (stream.destroyed || stream.readableEnded) return Buffer.alloc(0);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let len = 0;
    const done = (): void => {
      stream.off('readable', onReadable);
      stream.off('end', onEnd);
      stream.off('error', onError);
      stream.off('close', onClose);
      const buf = Buffer.concat(chunks);
      if (buf.length) stream.unshift(buf);
      resolve(buf);
    };
    const onReadable = (): void => {
      let c: Buffer | null;
      while (len < n && (c = stream.read() as Buffer | null) !== null) {
        chunks.push(c);
        len += c.length;
      }
      if (len >= n) done();
    };
    const onEnd = (): void => done();
    const onError = (e: Error): void => reject(e);
    const onClose = (): void => (stream.errored ? reject(stream.errored) : done());
    stream.on('readable', onReadable);
    stream.on('end', onEnd);
    stream.on('error', onError);
    stream.once('close', onClose);
  });
}

/**
 * Output chunk size of decompressors. zlib's default (16 KiB) makes a layer millions of
 * thread-pool round trips and callbacks; large chunks cut gunzip's time by about a third.
 */
const INFLATE_CHUNK = 256 * 1024;

export function decompressor(c: Compression): Transform | null {
  if (c === 'gzip') return zlib().createGunzip({ chunkSize: INFLATE_CHUNK });
  if (c === 'zstd') return zlib().createZstdDecompress({ chunkSize: INFLATE_CHUNK });
  return null;
}
