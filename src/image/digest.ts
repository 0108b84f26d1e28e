import type { Hash } from 'node:crypto';
import { crypto } from '../sys/lazy-builtins.ts';
import { Transform, type TransformCallback } from 'node:stream';

import { HashingStream, type DigestAlgorithm } from '../store/hashing.ts';

export { sha256 } from '../store/hashing.ts';

export type { DigestAlgorithm };

// Anchored and lowercase-only: a digest is later joined into file paths, so anything looser
// (upper case, "..", separators) could name a file outside a layout.
const DIGEST_RE = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

export function isValidDigest(d: unknown): d is string {
  return typeof d === 'string' && DIGEST_RE.test(d);
}

/** Returns `d` unchanged, or throws when it is not a canonical sha256/sha512 digest. */
export function validateDigest(d: unknown, what = 'digest'): string {
  if (!isValidDigest(d)) {
    const shown = typeof d === 'string' ? JSON.stringify(d.length > 200 ? `${d.slice(0, 200)}…` : d) : String(d);
    throw new Error(`invalid ${what} ${shown}: expected sha256:<64 hex> or sha512:<128 hex>`);
  }
  return d;
}

export function algorithmOf(d: string): DigestAlgorithm {
  return validateDigest(d).slice(0, 6) as DigestAlgorithm;
}

export function hexOf(d: string): string {
  return validateDigest(d).slice(7);
}


export function digestOf(data: Buffer | string, algorithm: DigestAlgorithm = 'sha256'): string {
  return `${algorithm}:${crypto().createHash(algorithm).update(data).digest('hex')}`;
}

/** Pass-through stream that hashes and counts what flows through it (the store's implementation). */
export { HashingStream as DigestingStream } from '../store/hashing.ts';

export function digestStream(algorithm: DigestAlgorithm = 'sha256'): HashingStream {
  return new HashingStream(algorithm);
}

export class DigestMismatchError extends Error {
  readonly expected: string;
  readonly actual: string;
  constructor(expected: string, actual: string) {
    super(`digest mismatch for blob ${expected}: got ${actual}`);
    this.name = 'DigestMismatchError';
    this.expected = expected;
    this.actual = actual;
  }
}

export class SizeMismatchError extends Error {
  readonly digest: string;
  readonly expected: number;
  /** With `overrun`, the count at which reading stopped; the blob is at least this long. */
  readonly actual: number;
  constructor(digest: string, expected: number, actual: number, overrun = false) {
    super(`size mismatch for blob ${digest}: expected ${expected} bytes, got ${overrun ? `more than ${expected}` : actual}`);
    this.name = 'SizeMismatchError';
    this.digest = digest;
    this.expected = expected;
    this.actual = actual;
  }
}

/**
 * Pass-through that fails the stream when the content does not hash to `expected` or has the
 * wrong size. The failure arrives as a stream error before 'end', so a consumer writing to a
 * temp file sees the error instead of a completed write.
 */
export class VerifyingStream extends Transform {
  readonly expected: string;
  readonly expectedSize: number;
  #hash: Hash;
  #size = 0;

  readonly #onProgress: ((bytes: number) => void) | undefined;

  /** Without hashing, only the size is checked: for a consumer that verifies the digest itself. */
  readonly #hashing: boolean;

  /** `expectedSize` < 0 means unknown. `onProgress` hears the running byte count (one stage less than a separate counter). */
  constructor(expected: string, expectedSize = -1, onProgress?: (bytes: number) => void, hashing = true) {
    super({ highWaterMark: 1 << 20 });
    this.expected = validateDigest(expected);
    this.expectedSize = expectedSize;
    this.#hash = crypto().createHash(algorithmOf(expected));
    this.#onProgress = onProgress;
    this.#hashing = hashing;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#size += chunk.length;
    this.#onProgress?.(this.#size);
    // Stop as soon as a source overruns its declared size rather than reading an endless stream.
    if (this.expectedSize >= 0 && this.#size > this.expectedSize) {
      cb(new SizeMismatchError(this.expected, this.expectedSize, this.#size, true));
      return;
    }
    if (this.#hashing) this.#hash.update(chunk);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    const actual = this.#hashing ? `${algorithmOf(this.expected)}:${this.#hash.digest('hex')}` : this.expected;
    if (actual !== this.expected) cb(new DigestMismatchError(this.expected, actual));
    else if (this.expectedSize >= 0 && this.#size !== this.expectedSize) cb(new SizeMismatchError(this.expected, this.expectedSize, this.#size));
    else cb();
  }

  get size(): number {
    return this.#size;
  }
}

export function verifyingStream(expected: string, expectedSize = -1): VerifyingStream {
  return new VerifyingStream(expected, expectedSize);
}
