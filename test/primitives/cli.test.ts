// --help and flag errors of Buildah's working-container commands.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BARGE_BIN, makeEnv, runBarge, runCaptured, type Env } from '../helpers.ts';
import { expectCode } from './lib.ts';

let env: Env;
beforeAll(async () => {
  env = await makeEnv();
});
afterAll(async () => {
  await env?.cleanup();
});

// Long flag names each command's help must show; the list is the brief's (Buildah's) surface.
const FLAGS: Record<string, string[]> = {
  from: ['--name', '--pull'],
  copy: ['--chown', '--chmod', '--from', '--contextdir'],
  add: ['--chown', '--chmod', '--from', '--contextdir'],
  run: ['--user', '--workingdir', '--env', '--volume', '--mount', '--network', '--cap-add', '--cap-drop', '--tty'],
  mount: [],
  umount: ['--all'],
  config: [
    '--annotation', '--arch', '--author', '--cmd', '--comment', '--created-by', '--domainname', '--entrypoint', '--env',
    '--healthcheck', '--healthcheck-interval', '--healthcheck-retries', '--healthcheck-start-period', '--healthcheck-timeout',
    '--history-comment', '--hostname', '--label', '--onbuild', '--os', '--port', '--shell', '--stop-signal', '--user',
    '--variant', '--volume', '--workingdir',
  ],
  commit: ['--format', '--squash', '--rm', '--timestamp', '--quiet', '--iidfile'],
  containers: ['--all', '--format', '--json', '--quiet', '--notruncate'],
  rm: ['--all'],
  inspect: ['--type', '--format'],
  unshare: ['--mount'],
};

describe('--help', () => {
  for (const [cmd, flags] of Object.entries(FLAGS)) {
    it(`${cmd} --help exits 0 and lists its flags`, async () => {
      const r = await env.barge([cmd, '--help']);
      expectCode(r, 0, [cmd, '--help']);
      expect(r.stdout).toMatch(new RegExp(`Usage: barge ${cmd}\\b`));
      for (const f of flags) expect(r.stdout, `${cmd} --help should mention ${f}`).toMatch(new RegExp(`${f}\\b`));
    });
  }

  it('short aliases Buildah users type are documented', async () => {
    expect(await env.bargeOk(['run', '--help'])).toMatch(/-e, --env/);
    expect(await env.bargeOk(['run', '--help'])).toMatch(/-v, --volume/);
    expect(await env.bargeOk(['run', '--help'])).toMatch(/-t, --tty/);
    expect(await env.bargeOk(['commit', '--help'])).toMatch(/-q, --quiet/);
    expect(await env.bargeOk(['containers', '--help'])).toMatch(/-q, --quiet/);
    expect(await env.bargeOk(['umount', '--help'])).toMatch(/-a, --all/);
  });
});

describe('unknown flags', () => {
  for (const cmd of Object.keys(FLAGS)) {
    it(`${cmd} --no-such-flag exits 125 with an Error: line`, async () => {
      const args = [cmd, '--no-such-flag', 'x'];
      const r = await env.barge(args);
      expectCode(r, 125, args);
      expect(r.stderr).toMatch(/^Error: .*--no-such-flag/m);
    });
  }

  it('an invalid choice (--pull sometimes) is a usage error', async () => {
    const r = await env.barge(['from', '--pull', 'sometimes', 'busybox']);
    expectCode(r, 125);
    expect(r.stderr).toMatch(/^Error: .*sometimes/m);
  });

  it('commit --format with an unknown format is a usage error', async () => {
    const r = await env.barge(['commit', '--format', 'tarball', 'c']);
    expectCode(r, 125);
    expect(r.stderr).toMatch(/^Error: /m);
  });
});

describe('a reader that stops early', () => {
  it('`barge … | true` is not an error: exit 0 and nothing on stderr', async () => {
    // The reader is gone before barge writes: every write meets EPIPE.
    for (const args of [['--help'], ['--root', env.root, '--runroot', env.runroot, 'images'], ['--root', env.root, '--runroot', env.runroot, 'containers', '--format', 'json']]) {
      const line = `"$0" "$@" | (exec true); echo "status=\${PIPESTATUS[0]}"`;
      const r = await runCaptured('bash', ['-c', line, BARGE_BIN, ...args], { env: process.env, label: `barge ${args.join(' ')} | true` });
      expect(r.stdout.trim(), args.join(' ')).toBe('status=0');
      expect(r.stderr, args.join(' ')).toBe('');
    }
  });
});

describe('global flags after the command (persistent flags, as cobra takes them)', () => {
  it('`containers --root R --runroot RR` reads the store R, as `--root R --runroot RR containers` does', async () => {
    const ctr = await env.bargeOk(['from', '--name', 'late-globals', 'scratch']);
    const after = await runBarge(['containers', '--root', env.root, '--runroot', env.runroot, '--format', '{{.ContainerName}}']);
    expectCode(after, 0);
    expect(after.stdout.trim().split('\n')).toContain('late-globals');
    await env.bargeOk(['rm', ctr]);
  });
});

