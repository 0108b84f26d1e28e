// Detached containers under conmon: ps, logs, stop, kill, wait, inspect, rm -f, --rm, and a
// container that exits while no barge process is running.
import { existsSync, readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Env } from '../helpers.ts';
import { containerSuite, conmonsOf, expectCode, removeAll, until } from './lib.ts';

const suite = containerSuite();
let env: Env;
beforeAll(() => {
  env = suite();
});

interface Inspect {
  Id: string;
  Name: string;
  State: { Status: string; Running: boolean; ExitCode: number; Pid: number; ConmonPid: number; StartedAt: string; FinishedAt: string };
  Config: { Cmd: string[]; Env: string[]; Labels: Record<string, string> | null; StopSignal: number };
  HostConfig: { AutoRemove: boolean; LogConfig: { Type: string; Path: string } };
}

async function inspect(ref: string): Promise<Inspect> {
  return (JSON.parse(await env.bargeOk(['container', 'inspect', ref])) as Inspect[])[0]!;
}

async function status(name: string): Promise<string> {
  return env.bargeOk(['ps', '-a', '--filter', `name=^${name}$`, '--format', '{{.Status}}']);
}

describe('run -d', () => {
  it('prints the id; ps shows it Up; logs show its output; it runs under conmon', async () => {
    const id = await env.bargeOk(['run', '-d', '--name', 'web', '-l', 'app=demo', 'busybox', 'sh', '-c', 'echo ready; echo warn >&2; exec sleep 600']);
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    const ps = await env.bargeOk(['ps']);
    expect(ps.split('\n')[0]).toMatch(/^CONTAINER ID +IMAGE +COMMAND +CREATED +STATUS +PORTS +NAMES$/);
    expect(ps).toMatch(new RegExp(`^${id.slice(0, 12)} +localhost/busybox:latest +sh -c echo ready.\\.\\.\\. .* Up .* ago +web$`, 'm'));
    await until('the log to have both lines', async () => (await env.barge(['logs', 'web'])).stderr === 'warn\n');
    const logs = await env.barge(['logs', 'web']);
    expect(logs.stdout).toBe('ready\n');
    const ins = await inspect('web');
    expect(ins.State).toMatchObject({ Status: 'running', Running: true });
    expect(ins.State.Pid).toBeGreaterThan(0);
    expect(ins.Config.Labels).toEqual({ app: 'demo' });
    // The container's monitor is conmon, and barge is not running.
    const conmon = ins.State.ConmonPid;
    expect(readFileSync(`/proc/${conmon}/comm`, 'utf8').trim()).toBe('conmon');
    expect(readFileSync(`/proc/${ins.State.Pid}/cmdline`, 'utf8').split('\0')[0]).toBe('sleep');
    expect(await env.bargeOk(['ps', '-q', '--filter', 'label=app=demo'])).toBe(id.slice(0, 12));
    // --noheading drops a table's header, and nothing from a template without one.
    expect(await env.bargeOk(['ps', '--noheading'])).toMatch(new RegExp(`^${id.slice(0, 12)} +localhost/busybox:latest .* web$`));
    expect(await env.bargeOk(['ps', '--noheading', '--format', 'table {{.Names}}'])).toBe('web');
    expect(await env.bargeOk(['ps', '--noheading', '--format', '{{.Names}}'])).toBe('web');
  });

  it('stop ends it within -t (SIGKILL after the stop signal is ignored) and ps -a shows Exited (137)', async () => {
    const t0 = Date.now();
    expect(await env.bargeOk(['stop', '-t', '1', 'web'])).toBe('web');
    expect(Date.now() - t0).toBeLessThan(8000);
    expect(await status('web')).toMatch(/^Exited \(137\) .* ago$/);
    expect(await env.bargeOk(['ps', '-q'])).toBe('');
    const ins = await inspect('web');
    expect(ins.State).toMatchObject({ Status: 'exited', Running: false, ExitCode: 137, Pid: 0 });
  });

  it('stop with a signal the process handles exits with its code (143 for a trapped TERM default)', async () => {
    await env.bargeOk(['run', '-d', '--name', 'polite', 'busybox', 'sh', '-c', 'trap "exit 143" TERM; while :; do sleep 0.1; done']);
    const t0 = Date.now();
    await env.bargeOk(['stop', '-t', '10', 'polite']);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(await status('polite')).toMatch(/^Exited \(143\)/);
  });

  it('stop cleans up itself; a later exit of the restarted container is cleaned up by conmon\'s exit command', async () => {
    const id = await env.bargeOk(['run', '-d', '--name', 'stopper', 'busybox', 'sh', '-c', 'trap "exit 0" TERM; sleep 600 & wait']);
    const merged = await env.bargeOk(['inspect', '--format', '{{.GraphDriver.Data.MergedDir}}', id]);
    // Rootless, the mount is in barge's namespace: look from there.
    const mounted = async (): Promise<boolean> => (await env.bargeOk(['unshare', 'cat', '/proc/self/mountinfo'])).includes(` ${merged} `);
    expect(await mounted()).toBe(true);
    await env.bargeOk(['stop', id]);
    expect(await status('stopper')).toMatch(/^Exited \(0\)/);
    expect(await mounted()).toBe(false);
    // Started again, the stop that cleaned up itself leaves conmon's exit command to do it next time.
    await env.bargeOk(['start', id]);
    expect(await mounted()).toBe(true);
    await env.bargeOk(['kill', '-s', 'TERM', id]);
    await until('conmon\'s exit command to unmount the exited container', async () => !(await mounted()));
    expect(await status('stopper')).toMatch(/^Exited \(0\)/);
    await env.bargeOk(['rm', id]);
  });

  it('kill -s sends the given signal; wait prints the exit code', async () => {
    await env.bargeOk(['run', '-d', '--name', 'k', 'busybox', 'sh', '-c', 'trap "exit 42" USR1; while :; do sleep 0.1; done']);
    expect(await env.bargeOk(['kill', '-s', 'USR1', 'k'])).toBe('k');
    expect(await env.bargeOk(['wait', 'k'])).toBe('42');
    expect(await status('k')).toMatch(/^Exited \(42\)/);
    const r = await env.barge(['kill', 'k']);
    expectCode(r, 125);
    expect(r.stderr).toMatch(/can only kill running containers/);
  });

  it('a container that exits while nobody watches has the right state, exit code and log', async () => {
    await env.bargeOk(['run', '-d', '--name', 'brief', 'busybox', 'sh', '-c', 'echo one; echo two >&2; sleep 0.3; exit 9']);
    // No barge process is running now; conmon records the exit and runs the cleanup.
    const ins0 = await inspect('brief');
    await until('conmon to exit', () => !existsSync(`/proc/${ins0.State.ConmonPid}`) || readFileSync(`/proc/${ins0.State.ConmonPid}/stat`, 'utf8').includes(') Z'));
    expect(await status('brief')).toMatch(/^Exited \(9\) .* ago$/);
    const ins = await inspect('brief');
    expect(ins.State).toMatchObject({ Status: 'exited', Running: false, ExitCode: 9 });
    expect(Date.parse(ins.State.FinishedAt)).toBeGreaterThanOrEqual(Date.parse(ins.State.StartedAt) - 5);
    const logs = await env.barge(['logs', 'brief']);
    expect(logs.stdout).toBe('one\n');
    expect(logs.stderr).toBe('two\n');
    expect(await env.bargeOk(['wait', 'brief'])).toBe('9');
    const tail = await env.barge(['logs', '-t', '--tail', '1', 'brief']);
    const ts = (tail.stdout + tail.stderr).trim();
    expect(ts).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}\+00:00 (one|two)$/);
  });

  it('wait blocks until a running container exits', async () => {
    await env.bargeOk(['run', '-d', '--name', 'w', 'busybox', 'sh', '-c', 'sleep 1; exit 3']);
    const t0 = Date.now();
    expect(await env.bargeOk(['wait', 'w'])).toBe('3');
    expect(Date.now() - t0).toBeGreaterThan(300);
  });

  it('logs -f follows until the container exits; --tail and --since select lines', async () => {
    await env.bargeOk(['run', '-d', '--name', 'f', 'busybox', 'sh', '-c', 'for i in 1 2 3 4; do echo line$i; sleep 0.2; done']);
    const r = await env.barge(['logs', '-f', 'f'], { timeoutMs: 20_000 });
    expectCode(r, 0);
    expect(r.stdout).toBe('line1\nline2\nline3\nline4\n');
    expect(await env.bargeOk(['logs', '--tail', '2', 'f'])).toBe('line3\nline4');
    expect(await env.bargeOk(['logs', '--since', '2000-01-01T00:00:00Z', 'f'])).toBe('line1\nline2\nline3\nline4');
    expect(await env.bargeOk(['logs', '--since', '2099-01-01T00:00:00Z', 'f'])).toBe('');
  });

  it('rm refuses a running container without -f and removes it with -f', async () => {
    const id = await env.bargeOk(['run', '-d', '--name', 'busy', 'busybox', 'sleep', '600']);
    const conmon = (await inspect('busy')).State.ConmonPid;
    const r = await env.barge(['rm', 'busy']);
    expectCode(r, 2);
    expect(r.stderr).toMatch(/running/);
    // Podman prints the container as it was named.
    expect(await env.bargeOk(['rm', '-f', id.slice(0, 12)])).toBe(id.slice(0, 12));
    expect((await env.barge(['container', 'inspect', 'busy'])).code).toBe(125);
    await until('its conmon to exit', () => !existsSync(`/proc/${conmon}`) || readFileSync(`/proc/${conmon}/stat`, 'utf8').includes(') Z'));
  });

  it('run -d --rm: the container removes itself after it exits (conmon\'s exit command)', async () => {
    await env.bargeOk(['run', '-d', '--rm', '--name', 'self', 'busybox', 'sh', '-c', 'sleep 0.2']);
    await until('the --rm container to be removed', async () => (await env.barge(['container', 'inspect', 'self'])).code !== 0);
    expect(await env.bargeOk(['ps', '-a', '--format', '{{.Names}}'])).not.toMatch(/^self$/m);
  });

  it('create, start, restart and start -a', async () => {
    const id = await env.bargeOk(['create', '--name', 'later', 'busybox', 'sh', '-c', 'echo run; exit 7']);
    expect(await status('later')).toBe('Created');
    expect((await inspect(id)).State.Status).toBe('created');
    const r = await env.barge(['start', '-a', 'later']);
    expectCode(r, 7);
    expect(r.stdout).toBe('run\n');
    await env.bargeOk(['start', 'later']);
    expect(await env.bargeOk(['wait', 'later'])).toBe('7');
    await env.bargeOk(['run', '-d', '--name', 'again', 'busybox', 'sleep', '600']);
    const pid1 = (await inspect('again')).State.Pid;
    await env.bargeOk(['restart', '-t', '0', 'again']);
    const after = await inspect('again');
    expect(after.State.Running).toBe(true);
    expect(after.State.Pid).not.toBe(pid1);
    await env.bargeOk(['rm', '-f', 'again', 'later']);
  });

  it('the container group has the same verbs; ps -a --format json is Podman-shaped', async () => {
    await env.bargeOk(['container', 'start', 'polite']);
    expect(await env.bargeOk(['container', 'ls', '-q', '--no-trunc'])).toMatch(/^[0-9a-f]{64}$/);
    await env.bargeOk(['container', 'stop', '-t', '5', 'polite']);
    const j = JSON.parse(await env.bargeOk(['ps', '-a', '--format', 'json'])) as { Names: string[]; State: string; ExitCode: number }[];
    expect(j.find((c) => c.Names[0] === 'polite')).toMatchObject({ State: 'exited', ExitCode: 143 });
  });

  it('leaves no conmon behind once the containers are removed', async () => {
    await removeAll(env);
    expect(conmonsOf(env)).toEqual([]);
    expect(await env.bargeOk(['ps', '-aq'])).toBe('');
  });
});
