import { describe, expect, it } from 'vitest';
import { commandWords } from '../../src/cli/command-line.ts';

describe('commandWords (the command a launcher caches code for and main.ts builds)', () => {
  it.each([
    [['images'], ['images']],
    [['--root', '/s', '--runroot', '/r', 'run', '-d', 'busybox', 'sleep', '9'], ['run']],
    [['--log-level', 'debug', '--runtime', 'crun', 'config', '--label', 'a=b', 'c'], ['config']],
    // A group's subcommand belongs to the command; an ordinary command's operand does not.
    [['container', 'checkpoint', '--keep', 'ctr'], ['container', 'checkpoint']],
    [['--root', 'container', 'generate', 'systemd', 'x'], ['generate', 'systemd']],
    [['skopeo', '--debug', 'copy', 'a', 'b'], ['skopeo', 'copy']],
    [['from', 'container'], ['from']],
    [['--version'], []],
    [[], []],
  ])('%j → %j', (args, words) => {
    expect(commandWords(args)).toEqual(words);
  });
});
