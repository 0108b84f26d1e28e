// A stream that writes straight to a descriptor, synchronously: what goes through it keeps its
// order with what child processes write to the same descriptor themselves (build --logfile, where
// a RUN step's stdout reaches the file directly and its stderr through barge).
import { writeSync } from 'node:fs';
import { Writable } from 'node:stream';

/** Writes bytes start..end of buf to fd, all of them: writeSync may write less than asked. */
export function writeAllSync(fd: number, buf: Uint8Array, start = 0, end = buf.length): void {
  for (let off = start; off < end; ) off += writeSync(fd, buf, off, end - off);
}

export function syncFdWriter(fd: number): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      try {
        writeAllSync(fd, chunk);
        done();
      } catch (e) {
        done(e as Error);
      }
    },
  });
}
