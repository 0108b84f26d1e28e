// Removal of a directory tree barge owns (a container's directories, a checkpoint, a trashed layer).
// fs.rmSync removes a tree in native code in one call; fs.promises.rm walks it in JavaScript with
// an event-loop round trip per entry. For a container's few dozen entries that was 2-3 ms against
// 0.3 ms, on the path of every `run --rm`; nothing else waits on the loop meanwhile.
import { rmSync } from 'node:fs';

/** `rm -rf path`: gone afterwards, or never there. */
export function removeTree(path: string): void {
  rmSync(path, { recursive: true, force: true });
}
