// Podman's flags of the container verbs that scripts pass and that barge once refused as unknown:
// --filter and --cidfile on start/stop/restart/kill/pause/unpause/rm, rm -t and --depend, wait
// --condition/--interval/--ignore, logs --names, exec --privileged and --preserve-fds, ps --sort,
// images --sort and rmi --ignore.
import { closeSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Env } from '../helpers.ts';
import { containerSuite, NO_CGROUPS, NO_FREEZER, removeAll } from './lib.ts';

const suite = containerSuite();
let env: Env;
beforeAll(() => {
  env = suite();
});

const SERVICE = ['sh', '-c', 'trap "exit 0" TERM; sleep 600 & wait'];
const names = async (...args: string[]): Promise<string[]> => (await env.bargeOk(['ps', ...args, '--format', '{{.Names}}'])).split('\n').filter((l) => l !== '');

describe('--filter and --cidfile on the container verbs', () => {
  it('stop, start, restart, kill, pause and unpause act on the containers ps --filter lists', async () => {
    await env.bargeOk(['run', '-d', '--name', 'f-web', '-l', 'tier=web', 'busybox', ...SERVICE]);
    await env.bargeOk(['run', '-d', '--name', 'f-db', '-l', 'tier=db', 'busybox', ...SERVICE]);
    expect(await env.bargeOk(['stop', '--filter', 'label=tier=web'])).toBe('f-web');
    expect(await names()).toEqual(['f-db']);
    expect(await env.bargeOk(['start', '--filter', 'name=f-web'])).toBe('f-web');
    if (NO_CGROUPS) expect((await env.barge(['pause', '--filter', 'label=tier=db'])).stderr).toBe(`Error: ${NO_FREEZER}\n`);
    else {
      expect(await env.bargeOk(['pause', '--filter', 'label=tier=db'])).toBe('f-db');
      expect(await env.bargeOk(['ps', '--filter', 'name=f-db', '--format', '{{.Status}}'])).toMatch(/^Paused$/);
      expect(await env.bargeOk(['unpause', '--filter', 'label=tier=db'])).toBe('f-db');
    }
    expect(await env.bargeOk(['restart', '--filter', 'label=tier=db'])).toBe('f-db');
    expect(await env.bargeOk(['kill', '--filter', 'label=tier', '-s', 'TERM'])).toBe('f-web\nf-db');
    const withName = await env.barge(['stop', '--filter', 'name=f', 'f-web']);
    expect(withName.code).toBe(125);
    expect(withName.stderr).toContain('--filter takes no container names');
    await removeAll(env);
  });

  it('kill, restart and pause take --cidfile', async () => {
    const cidfile = join(env.tmp, 'svc.cid');
    await env.bargeOk(['run', '-d', '--cidfile', cidfile, '--name', 'c-svc', 'busybox', ...SERVICE]);
    if (NO_CGROUPS) expect((await env.barge(['pause', '--cidfile', cidfile])).stderr).toBe(`Error: ${NO_FREEZER}\n`);
    else {
      expect(await env.bargeOk(['pause', '--cidfile', cidfile])).toMatch(/^[0-9a-f]{64}$/);
      await env.bargeOk(['unpause', 'c-svc']);
    }
    await env.bargeOk(['restart', '--cidfile', cidfile]);
    await env.bargeOk(['kill', '--cidfile', cidfile]);
    expect(await env.bargeOk(['wait', 'c-svc'])).toBe('137');
    await removeAll(env);
  });

  it('rm --filter removes the matching containers, -t stops a running one gracefully, --depend is accepted', async () => {
    await env.bargeOk(['create', '--name', 'r-one', '-l', 'gone=yes', 'busybox', 'true']);
    await env.bargeOk(['create', '--name', 'r-two', 'busybox', 'true']);
    expect(await env.bargeOk(['rm', '--depend', '--filter', 'label=gone=yes'])).toBe('r-one');
    expect(await names('-a')).toEqual(['r-two']);
    // A service that exits 0 on TERM: rm -f -t 5 stops it (exit 0) instead of killing it.
    await env.bargeOk(['run', '-d', '--name', 'r-svc', 'busybox', ...SERVICE]);
    const started = Date.now();
    expect(await env.bargeOk(['rm', '-f', '-t', '5', 'r-svc'])).toBe('r-svc');
    expect(Date.now() - started).toBeLessThan(5000);
    const bad = await env.barge(['rm', '-f', '-t', 'soon', 'r-two']);
    expect(bad.code).toBe(125);
    expect(bad.stderr).toContain('invalid --time "soon"');
    await removeAll(env);
  });
});

describe('wait, logs, exec', () => {
  it('wait --condition running returns once the container runs; --ignore skips a missing one', async () => {
    await env.bargeOk(['create', '--name', 'w-svc', 'busybox', ...SERVICE]);
    const waiting = env.barge(['wait', '--condition', 'running', '--interval', '50ms', 'w-svc']);
    await env.bargeOk(['start', 'w-svc']);
    const r = await waiting;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('-1');
    expect(await env.bargeOk(['wait', '--ignore', 'nosuch-container'])).toBe('');
    const bad = await env.barge(['wait', '--condition', 'healthy', 'w-svc']);
    expect(bad.code).toBe(125);
    expect(bad.stderr).toContain('invalid condition "healthy"');
    await removeAll(env);
  });

  it('logs --names prefixes each line with the container name', async () => {
    await env.bargeOk(['run', '--name', 'l-one', 'busybox', 'echo', 'hello']);
    expect(await env.bargeOk(['logs', '--names', 'l-one'])).toBe('l-one hello');
    await removeAll(env);
  });

  it('exec --privileged gets every capability; --preserve-fds passes descriptor 3 down', async () => {
    await env.bargeOk(['run', '-d', '--name', 'e-svc', 'busybox', ...SERVICE]);
    const plain = await env.bargeOk(['exec', 'e-svc', 'grep', 'CapEff', '/proc/self/status']);
    const priv = await env.bargeOk(['exec', '--privileged', 'e-svc', 'grep', 'CapEff', '/proc/self/status']);
    const bits = (line: string): bigint => BigInt(`0x${line.split(/\s+/)[1]}`);
    expect(bits(priv) & ~bits(plain)).not.toBe(0n);
    // CAP_SYS_ADMIN (21) is not among the defaults, and --privileged has it.
    expect((bits(plain) >> 21n) & 1n).toBe(0n);
    expect((bits(priv) >> 21n) & 1n).toBe(1n);

    const file = join(env.tmp, 'fd3.txt');
    writeFileSync(file, 'through fd 3\n');
    const fd = openSync(file, 'r');
    try {
      const r = await env.barge(['exec', '--preserve-fds', '1', 'e-svc', 'cat', '/proc/self/fd/3'], { extraFds: [fd] });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe('through fd 3\n');
    } finally {
      closeSync(fd);
    }
    await removeAll(env);
  });
});

describe('ps, images and rmi', () => {
  it('ps --sort names orders by name; an unknown key lists the valid ones', async () => {
    for (const n of ['s-c', 's-a', 's-b']) await env.bargeOk(['create', '--name', n, 'busybox', 'true']);
    expect(await names('-a', '--sort', 'names')).toEqual(['s-a', 's-b', 's-c']);
    expect(await names('-a')).toEqual(['s-c', 's-a', 's-b']);
    const bad = await env.barge(['ps', '--sort', 'colour']);
    expect(bad.code).toBe(125);
    expect(bad.stderr).toContain('invalid option for --sort, options are: command, created, id, image, names, runningfor, status');
    await removeAll(env);
  });

  it('images --sort repository orders by name; rmi --ignore skips a missing image', async () => {
    await env.bargeOk(['tag', 'busybox', 'localhost/aaa:v1', 'localhost/zzz:v1']);
    const repos = (await env.bargeOk(['images', '--sort', 'repository', '--format', '{{.Repository}}'])).split('\n');
    expect(repos).toEqual([...repos].sort());
    expect(repos[0]).toBe('localhost/aaa');
    const r = await env.barge(['rmi', '--ignore', 'localhost/nosuch:v1', 'localhost/zzz:v1']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('untagged: localhost/zzz:v1\n');
    expect((await env.barge(['rmi', 'localhost/nosuch:v1'])).code).toBe(1);
  });
});
