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
    // Skopeo's global flags with a value, before the subcommand.
    [['skopeo', '--tmpdir', '/t', '--override-arch', 'arm64', 'inspect', 'oci:x'], ['skopeo', 'inspect']],
    [['from', 'container'], ['from']],
    [['--version'], []],
    [[], []],
  ])('%j → %j', (args, words) => {
    expect(commandWords(args)).toEqual(words);
  });
});

describe('plainBooleanFlags (pflag\'s --flag=true|false on commander)', () => {
  it.each([
    [['run', '--rm=true', 'busybox', 'true'], ['run', '--rm', 'busybox', 'true']],
    [['run', '--rm=False', '-d=true', 'busybox'], ['run', '-d=true', 'busybox']],
    // After the image, arguments are the container's command line.
    [['run', '--rm', 'busybox', 'prog', '--rm=true'], ['run', '--rm', 'busybox', 'prog', '--rm=true']],
    [['--root', 'images', 'images', '--no-trunc=true', '--noheading=false'], ['--root', 'images', 'images', '--no-trunc']],
    [['image', 'prune', '--all=true'], ['image', 'prune', '--all']],
    // Flags that take a value, and unknown ones, are left to commander.
    [['build', '--no-cache=true', '--layers=true', '--pull=false', '--nope=true', '.'], ['build', '--no-cache', '--layers=true', '--pull=false', '--nope=true', '.']],
    // A bare Go boolean that also takes a value means true and leaves the next argument alone.
    [['skopeo', 'copy', '-q', '--dest-tls-verify', 'oci:a', 'dir:b'], ['skopeo', 'copy', '-q', '--dest-tls-verify=true', 'oci:a', 'dir:b']],
    [['skopeo', 'copy', '--authfile', 'a.json', '--src-tls-verify', 'oci:a', 'dir:b'], ['skopeo', 'copy', '--authfile', 'a.json', '--src-tls-verify=true', 'oci:a', 'dir:b']],
    [['pull', '--tls-verify=false', 'x'], ['pull', '--tls-verify=false', 'x']],
    [['build', '--layers', '.'], ['build', '--layers=true', '.']],
  ])('%j → %j', async (args, out) => {
    const { plainBooleanFlags } = await import('../../src/cli/main.ts');
    const { buildProgram } = await import('../../src/cli/program.ts');
    expect(plainBooleanFlags(buildProgram(), args)).toEqual(out);
  });
});

describe('hoistGlobalFlags (cobra\'s persistent flags after the command)', () => {
  it.each([
    [['images', '--root', '/s', '-q'], ['--root', '/s', 'images', '-q']],
    [['images', '--root=/s', '--runroot', '/r', '--storage-driver', 'vfs'], ['--root=/s', '--runroot', '/r', '--storage-driver', 'vfs', 'images']],
    [['container', 'ls', '-a', '--log-level', 'debug'], ['--log-level', 'debug', 'container', 'ls', '-a']],
    // After the first operand: the container's own command line.
    [['run', '--rm', 'busybox', 'echo', '--root', '/x'], ['run', '--rm', 'busybox', 'echo', '--root', '/x']],
    // A value of the command's own option is not a flag, and the command's own --runtime wins.
    [['run', '-e', '--root', 'busybox'], ['run', '-e', '--root', 'busybox']],
    [['build', '--runtime', 'crun', '--root', '/s', '.'], ['--root', '/s', 'build', '--runtime', 'crun', '.']],
    [['--root', '/s', 'images'], ['--root', '/s', 'images']],
  ])('%j → %j', async (args, out) => {
    const { hoistGlobalFlags } = await import('../../src/cli/main.ts');
    const { buildProgram } = await import('../../src/cli/program.ts');
    expect(hoistGlobalFlags(buildProgram(), args)).toEqual(out);
  });
});
