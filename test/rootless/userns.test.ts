// Unit tests of the pieces of src/sys/userns.ts that decide whether and how barge re-executes itself.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { commandNeedsUserns, parseIdMap, parseIdMapSpecs, subordinateRange } from '../../src/sys/userns.ts';

describe('commandNeedsUserns', () => {
  it('is true for commands that touch the store, after any global options', () => {
    expect(commandNeedsUserns(['images'])).toBe(true);
    expect(commandNeedsUserns(['--root', '/x', '--runroot=/y', 'from', 'busybox'])).toBe(true);
    expect(commandNeedsUserns(['--log-level', 'debug', '--storage-driver', 'vfs', 'info'])).toBe(true);
    // A command's own --help is still parsed by barge in the namespace; only the global ones are skipped.
    expect(commandNeedsUserns(['run', 'c', '--', 'version'])).toBe(true);
  });

  it('is false for help, version, completion, no command, and command lines commander rejects', () => {
    for (const args of [[], ['--help'], ['-h'], ['--version'], ['-v'], ['version'], ['help', 'run'], ['completion', 'bash'], ['--root', '/x', 'version'], ['--bogus', 'images']]) {
      expect(commandNeedsUserns(args), args.join(' ')).toBe(false);
    }
  });
});

describe('id maps and subordinate ranges', () => {
  it('parses /proc/self/uid_map', () => {
    expect(parseIdMap('         0       1001          1\n         1     100000      65535\n')).toEqual([
      { containerID: 0, hostID: 1001, size: 1 },
      { containerID: 1, hostID: 100000, size: 65535 },
    ]);
    expect(parseIdMap('')).toEqual([]);
  });

  it('finds the first range of a user by name', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'barge-subid-'));
    try {
      const f = join(dir, 'subuid');
      await writeFile(f, 'alice:100000:65536\nbob:165536:65536\nbob:300000:10\nbroken\ncarol:x:y\n');
      expect(subordinateRange(f, 'bob')).toEqual({ start: 165536, count: 65536 });
      expect(subordinateRange(f, 'carol')).toBeUndefined();
      expect(subordinateRange(f, 'dave')).toBeUndefined();
      expect(subordinateRange(join(dir, 'missing'), 'alice')).toBeUndefined();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('--userns-uid-map / --uidmap values', () => {
  it('takes CONTAINER:HOST:SIZE triples, comma-separated or repeated', () => {
    expect(parseIdMapSpecs('uid map', ['0:1000:1,1:100000:65535', '70000:200000:10'])).toEqual([
      { containerID: 0, hostID: 1000, size: 1 },
      { containerID: 1, hostID: 100000, size: 65535 },
      { containerID: 70000, hostID: 200000, size: 10 },
    ]);
    expect(parseIdMapSpecs('uid map', [])).toEqual([]);
  });

  it('refuses malformed triples and empty ranges', () => {
    for (const bad of ['0:1', '0:1:2:3', 'a:1:2', '0:1:0', '-1:0:5', '0:0:99999999999']) {
      expect(() => parseIdMapSpecs('uid map', [bad]), bad).toThrow(/invalid uid map .*CONTAINER-ID:HOST-ID:SIZE/);
    }
  });
});
