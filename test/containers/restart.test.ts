// Restart policies without a daemon: conmon's exit command (`barge container cleanup`) restarts
// a container as its policy says; a stop or kill by the user is final.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Env } from '../helpers.ts';
import { containerSuite, expectCode, until } from './lib.ts';

const suite = containerSuite();
let env: Env;
beforeAll(() => {
  env = suite();
});

async function state(ref: string): Promise<{ status: string; restarts: number; code: number }> {
  const [status, restarts, code] = (await env.bargeOk(['inspect', '--format', '{{.State.Status}} {{.RestartCount}} {{.State.ExitCode}}', ref])).split(' ');
  return { status: status!, restarts: Number(restarts), code: Number(code) };
}

describe.each(['runc', 'crun'])('restart policies with %s', (runtime) => {
  const barge = (args: string[], opts?: { input: string }) => env.barge(['--runtime', runtime, ...args], opts);
  const bargeOk = (args: string[]) => env.bargeOk(['--runtime', runtime, ...args]);

  it('on-failure:2 restarts a failing container twice, then leaves it exited with its code', async () => {
    const name = `fail-${runtime}`;
    await bargeOk(['run', '-d', '--name', name, '--restart', 'on-failure:2', 'busybox', 'sh', '-c', 'echo attempt; exit 3']);
    await until('two restarts and the last exit', async () => {
      const s = await state(name);
      return s.restarts === 2 && s.status === 'exited';
    });
    expect(await state(name)).toEqual({ status: 'exited', restarts: 2, code: 3 });
    // Three runs, one log.
    expect(await env.bargeOk(['logs', name])).toBe('attempt\nattempt\nattempt');
    expect(await env.bargeOk(['inspect', '--format', '{{.HostConfig.RestartPolicy.Name}} {{.HostConfig.RestartPolicy.MaximumRetryCount}}', name])).toBe('on-failure 2');
  });

  it('on-failure does not restart a container that exits 0', async () => {
    const name = `ok-${runtime}`;
    await bargeOk(['run', '-d', '--name', name, '--restart', 'on-failure', 'busybox', 'true']);
    expect(await env.bargeOk(['wait', name])).toBe('0');
    await until('the exit to be recorded', async () => (await state(name)).status === 'exited');
    // conmon has run the cleanup by the time its process is gone; the count stays 0.
    await new Promise((r) => setTimeout(r, 500));
    expect(await state(name)).toEqual({ status: 'exited', restarts: 0, code: 0 });
  });

  it('always restarts a container that exits 0, until the user stops it', async () => {
    const name = `always-${runtime}`;
    await bargeOk(['run', '-d', '--name', name, '--restart', 'always', 'busybox', 'sh', '-c', 'sleep 0.2']);
    await until('two restarts', async () => (await state(name)).restarts >= 2);
    const s = await state(name);
    // A running container shows exit code 0 although the previous run's is kept.
    if (s.status === 'running') expect(s.code).toBe(0);
    expect(await bargeOk(['stop', '-t', '0', name])).toBe(name);
    const after = await state(name);
    expect(after.status).toBe('exited');
    await new Promise((r) => setTimeout(r, 800));
    expect(await state(name)).toEqual(after);
    expect(await env.bargeOk(['ps', '-q', '--filter', 'status=running', '--filter', `name=^${name}$`])).toBe('');
  });

  it('unless-stopped: kill by the user is final too', async () => {
    const name = `killed-${runtime}`;
    await bargeOk(['run', '-d', '--name', name, '--restart', 'unless-stopped', 'busybox', 'sleep', '600']);
    expect(await bargeOk(['kill', name])).toBe(name);
    expect(await env.bargeOk(['wait', name])).toBe('137');
    await new Promise((r) => setTimeout(r, 800));
    expect(await state(name)).toEqual({ status: 'exited', restarts: 0, code: 137 });
  });

  it('a foreground run returns the first run\'s exit code and output; the policy goes on in the background', async () => {
    const name = `fg-${runtime}`;
    const r = await barge(['run', '--name', name, '--restart', 'on-failure:1', 'busybox', 'sh', '-c', 'echo out; echo err >&2; exit 4']);
    expectCode(r, 4);
    expect(r.stdout).toBe('out\n');
    expect(r.stderr).toBe('err\n');
    await until('the restart', async () => {
      const s = await state(name);
      return s.restarts === 1 && s.status === 'exited';
    });
    expect((await state(name)).code).toBe(4);
  });

  it('a foreground run with -i feeds barge\'s stdin to the container through conmon\'s attach socket', async () => {
    const r = await barge(['run', '-i', '--name', `in-${runtime}`, '--restart', 'on-failure:1', 'busybox', 'sh', '-c', 'read x; echo "in:$x"; exit 2'], { input: 'data\n' });
    expectCode(r, 2);
    expect(r.stdout).toBe('in:data\n');
  });
});

describe('restart policy errors', () => {
  it('--rm conflicts with --restart, and unknown policies are refused, with 125', async () => {
    const rm = await env.barge(['run', '--rm', '--restart', 'always', 'busybox', 'true']);
    expectCode(rm, 125);
    expect(rm.stderr).toMatch(/--rm option conflicts with --restart/);
    const bad = await env.barge(['run', '-d', '--restart', 'sometimes', 'busybox', 'true']);
    expectCode(bad, 125);
    expect(bad.stderr).toMatch(/invalid restart policy/);
    expectCode(await env.barge(['create', '--restart', 'on-failure:x', 'busybox', 'true']), 125);
  });

  it('ps filters by restart policy', async () => {
    await env.bargeOk(['create', '--name', 'pol', '--restart', 'always', 'busybox', 'true']);
    expect(await env.bargeOk(['ps', '-a', '--filter', 'restart-policy=always', '--format', '{{.Names}}'])).toMatch(/^pol$/m);
    expect(await env.bargeOk(['ps', '-a', '--filter', 'restart-policy=on-failure', '--format', '{{.Names}}'])).not.toMatch(/^pol$/m);
  });
});
