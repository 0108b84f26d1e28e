// attach (conmon's attach socket), signal proxying for run/attach, and `exec -t` when barge's
// stdin is not a terminal (conmon makes the terminal then), with runc and crun.
import { spawn } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { BARGE_BIN, type BargeResult, type Env } from '../helpers.ts';
import { containerSuite, expectCode, until } from './lib.ts';

const suite = containerSuite();
let env: Env;
beforeAll(() => {
  env = suite();
});

/**
 * Runs barge with piped stdio; once stdout contains `waitFor`, calls `then` with the child (to
 * signal it or write its stdin). Resolves with the result when barge exits.
 */
function bargeInteractive(args: string[], waitFor: string, then: (child: ReturnType<typeof spawn>) => void): Promise<BargeResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(BARGE_BIN, ['--root', env.root, '--runroot', env.runroot, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let fired = false;
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stdout.on('data', (b: Buffer) => {
      stdout += b.toString();
      if (!fired && stdout.includes(waitFor)) {
        fired = true;
        then(child);
      }
    });
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 137, stdout, stderr });
    });
  });
}

describe.each(['runc', 'crun'])('attach with %s', (runtime) => {
  const bargeOk = (args: string[]) => env.bargeOk(['--runtime', runtime, ...args]);

  it('relays stdin, stdout and stderr and ends with the container\'s exit code', async () => {
    const name = `echo-${runtime}`;
    await bargeOk(['run', '-d', '-i', '--name', name, 'busybox', 'sh', '-c', 'while read l; do [ "$l" = quit ] && exit 5; echo "out $l"; echo "err $l" >&2; done']);
    const r = await env.barge(['attach', name], { input: 'one\ntwo\nquit\n' });
    expectCode(r, 5);
    expect(r.stdout).toBe('out one\nout two\n');
    expect(r.stderr).toBe('err one\nerr two\n');
    expect(await env.bargeOk(['inspect', '--format', '{{.State.Status}} {{.State.ExitCode}}', name])).toBe('exited 5');
  });

  it('the detach keys leave the container running with its stdin open', async () => {
    const name = `detach-${runtime}`;
    await bargeOk(['run', '-d', '-i', '--name', name, 'busybox', 'sh', '-c', 'while read l; do echo "got $l"; [ "$l" = stop ] && exit 6; done']);
    const r = await env.barge(['attach', '--detach-keys', 'ctrl-x,q', name], { input: 'a\n\x18qnever\n' });
    expectCode(r, 0);
    expect(await env.bargeOk(['inspect', '--format', '{{.State.Status}}', name])).toBe('running');
    // What came after the detach keys never reached it.
    await until('the first line in the log', async () => (await env.bargeOk(['logs', name])) === 'got a');
    const again = await env.barge(['attach', name], { input: 'stop\n' });
    expectCode(again, 6);
    expect(again.stdout).toBe('got stop\n');
    expect(await env.bargeOk(['logs', name])).toBe('got a\ngot stop');
  });

  it('forwards signals to the container (--sig-proxy)', async () => {
    const name = `sig-${runtime}`;
    await bargeOk(['run', '-d', '--name', name, 'busybox', 'sh', '-c', 'trap "echo caught; exit 9" USR1; while :; do echo tick; sleep 0.2; done']);
    const r = await bargeInteractive(['attach', '--no-stdin', name], 'tick', (child) => child.kill('SIGUSR1'));
    expect(r.code).toBe(9);
    expect(r.stdout).toMatch(/caught\n$/);
  });
});

describe('attach errors', () => {
  it('is 125 for a container that is not running, an unknown one, or bad detach keys', async () => {
    await env.bargeOk(['create', '--name', 'idle', 'busybox', 'true']);
    const r = await env.barge(['attach', 'idle']);
    expectCode(r, 125);
    expect(r.stderr).toMatch(/you can only attach to running containers/);
    expectCode(await env.barge(['attach', 'nope']), 125);
    const keys = await env.barge(['attach', '--detach-keys', 'ctrl-', 'idle']);
    expectCode(keys, 125);
    expect(keys.stderr).toMatch(/invalid detach keys/);
  });
});

describe.each(['runc', 'crun'])('signals and terminals with %s', (runtime) => {
  it('run --sig-proxy forwards a signal sent to barge; --sig-proxy=false does not', async () => {
    const cmd = ['busybox', 'sh', '-c', 'trap "exit 9" USR1; echo ready; sleep 2; exit 0'];
    const proxied = await bargeInteractive(['--runtime', runtime, 'run', '--rm', ...cmd], 'ready', (c) => c.kill('SIGUSR1'));
    expect(proxied.code).toBe(9);
    const kept = await bargeInteractive(['--runtime', runtime, 'run', '--rm', '--sig-proxy=false', ...cmd], 'ready', (c) => c.kill('SIGUSR1'));
    expect(kept.code).toBe(0);
  });

  it('exec -t gives a terminal although barge\'s stdin is not one; exit codes as Podman\'s', async () => {
    const name = `term-${runtime}`;
    await env.bargeOk(['--runtime', runtime, 'run', '-d', '--name', name, 'busybox', 'sleep', '600']);
    const t = await env.barge(['exec', '-t', name, 'sh', '-c', 'tty; echo "$TERM"; exit 3']);
    expectCode(t, 3);
    // A terminal's line discipline ends lines with CR LF.
    expect(t.stdout).toMatch(/^\/dev\/pts\/\d+\r\nxterm\r\n$/);
    const it2 = await env.barge(['exec', '-i', '-t', name, 'sh', '-c', 'read x; echo "got $x"; exit 4'], { input: 'abc\n' });
    expectCode(it2, 4);
    expect(it2.stdout).toMatch(/got abc\r\n$/);
    // Without -t there is no terminal.
    const plain = await env.barge(['exec', name, 'tty']);
    expectCode(plain, 1);
    expect(plain.stdout).toBe('not a tty\n');
    const missing = await env.barge(['exec', '-t', name, 'no-such-command']);
    expectCode(missing, 127);
    expect(missing.stderr).toMatch(/no-such-command.*not found/);
    expectCode(await env.barge(['exec', '-t', name, '/etc/passwd']), 126);
  });
});
