// `barge init` (Podman's init): the runtime creates the container under conmon without starting
// its process; `start` then starts that same process.
import { existsSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Env } from '../helpers.ts';
import { containerSuite, expectCode } from './lib.ts';

const suite = containerSuite();
let env: Env;
beforeAll(() => {
  env = suite();
});

const state = (name: string): Promise<string> => env.bargeOk(['inspect', '--format', '{{.State.Status}} {{.State.Pid}}', name]);

describe('init', () => {
  it('leaves a created container initialized; start starts the process init made', async () => {
    const id = await env.bargeOk(['create', '--name', 'in-one', 'busybox', 'sleep', '600']);
    expect(await env.bargeOk(['init', 'in-one'])).toBe('in-one');
    const [status, pid] = (await state('in-one')).split(' ');
    expect(status).toBe('initialized');
    expect(Number(pid)).toBeGreaterThan(0);
    expect(existsSync(`/proc/${pid}`)).toBe(true);
    expect(await env.bargeOk(['ps', '-a', '--filter', 'name=^in-one$', '--format', '{{.Status}}'])).toBe('Initialized');
    const again = await env.barge(['init', 'in-one']);
    expectCode(again, 125);
    expect(again.stderr).toBe(`Error: container ${id} has already been created in runtime: container state improper\n`);
    expect(await env.bargeOk(['start', 'in-one'])).toBe('in-one');
    expect(await state('in-one')).toBe(`running ${pid}`);
    expect(await env.bargeOk(['exec', 'in-one', 'echo', 'up'])).toBe('up');
    expectCode(await env.barge(['container', 'init', 'in-one']), 125);
    const events = await env.bargeOk(['events', '--stream=false', '--filter', 'container=in-one', '--format', '{{.Status}}']);
    expect(events.split('\n')).toEqual(['create', 'init', 'start', 'exec', 'exec_died']);
    await env.bargeOk(['rm', '-f', 'in-one']);
  });

  it('--all initializes every created container; an initialized one is removed without force; unknown names fail with 125', async () => {
    await env.bargeOk(['create', '--name', 'in-a', 'busybox', 'true']);
    await env.bargeOk(['create', '--name', 'in-b', 'busybox', 'true']);
    await env.bargeOk(['init', '--all']);
    for (const n of ['in-a', 'in-b']) expect((await state(n)).split(' ')[0]).toBe('initialized');
    expect(await env.bargeOk(['rm', 'in-a'])).toBeTruthy();
    // Started after init, it runs to its end as any container does.
    await env.bargeOk(['start', 'in-b']);
    expect(await env.bargeOk(['wait', 'in-b'])).toBe('0');
    await env.bargeOk(['rm', 'in-b']);
    const missing = await env.barge(['init', 'in-none']);
    expectCode(missing, 125);
    expect(missing.stderr).toBe('Error: no container with name or ID "in-none" found: no such container\n');
    expect(await env.bargeOk(['system', 'check'])).toBe('No problems found');
  });
});
