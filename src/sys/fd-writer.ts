// A stream that writes straight to a descriptor, synchronously: what goes through it keeps its
// order with what child processes write to the same descriptor themselves (build --logfile, where
// a RUN step's stdout reaches the file directly and its stderr through barge).
import { writeSync } from 'node:fs';
import { Writable } from 'node:stream';

export function syncFdWriter(fd: number): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      try {
        for (let off = 0; off < chunk.length; ) off += writeSync(fd, chunk, off);
        done();
      } catch (e) {
        done(e as Error);
      }
    },
  });
}
