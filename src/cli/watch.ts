// Podman's refreshing listings (`stats`, `ps --watch`): the output again every interval until
// interrupted, a terminal cleared before each round.

import { setTimeout as sleep } from 'node:timers/promises';

/** What a terminal is sent before each round (goterm's Clear and MoveCursor(1, 1)); goterm sends nothing elsewhere. */
const CLEAR = '\x1b[2J\x1b[1;1H';

/**
 * Writes `round()`'s text every `seconds` until a signal ends the process: 1 for an interrupt and
 * 0 for a termination, as Podman exits. `clear: false` leaves even a terminal uncleared.
 */
export async function refreshEvery(seconds: number, round: () => string | Promise<string>, clear = true): Promise<never> {
  const wipe = clear && !!process.stdout.isTTY;
  process.once('SIGINT', () => process.exit(1));
  process.once('SIGTERM', () => process.exit(0));
  for (;;) {
    const text = await round();
    process.stdout.write((wipe ? CLEAR : '') + text);
    await sleep(seconds * 1000);
  }
}
