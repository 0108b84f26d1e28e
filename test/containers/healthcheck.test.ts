// Podman's healthchecks, checked against Podman 4.3's behaviour: the --health-* options and the
// image's HEALTHCHECK as inspect shows them, `healthcheck run` and what it records in State.Health,
// ps's "(healthy)" status and --filter health=, the start period, the timeout and the
// --health-on-failure actions. barge has no daemon: checks run only on `healthcheck run`.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Env } from '../helpers.ts';
import { containerSuite, expectCode, until } from './lib.ts';

const suite = containerSuite();
let env: Env;
beforeAll(() => {
  env = suite();
});

const S = 1_000_000_000;

interface Health {
  Status: string;
  FailingStreak: number;
  Log: { Start: string; End: string; ExitCode: number; Output: string }[] | null;
}

async function health(ctr: string): Promise<Health> {
  return JSON.parse(await env.bargeOk(['inspect', '--format', '{{json .State.Health}}', ctr])) as Health;
}

async function healthConfig(ctr: string): Promise<unknown> {
  return JSON.parse(await env.bargeOk(['inspect', '--format', '{{json .Config.Healthcheck}}', ctr]));
}

const status = async (ctr: string): Promise<string> => env.bargeOk(['ps', '-a', '--filter', `name=^${ctr}$`, '--format', '{{.Status}}']);

describe('healthcheck configuration', () => {
  it("records --health-* as Podman 4.3's inspect shows them", async () => {
    await env.bargeOk(['create', '--name', 'shell', '--health-cmd', 'test -e /ok', 'busybox', 'true']);
    expect(await healthConfig('shell')).toEqual({ Test: ['CMD-SHELL', 'test -e /ok'], Interval: 30 * S, Timeout: 30 * S, Retries: 3 });
    await env.bargeOk([
      'create', '--name', 'array', '--health-cmd', '["sh","-c","exit 0"]', '--health-interval', 'disable', '--health-retries', '2',
      '--health-timeout', '2s', '--health-start-period', '1m', '--health-on-failure', 'stop', 'busybox', 'true',
    ]);
    expect(await healthConfig('array')).toEqual({ Test: ['CMD', 'sh', '-c', 'exit 0'], StartPeriod: 60 * S, Timeout: 2 * S, Retries: 2 });
    expect(await env.bargeOk(['inspect', '--format', '{{.Config.HealthcheckOnFailureAction}}', 'array'])).toBe('stop');
    expect(await env.bargeOk(['inspect', '--format', '{{.Config.HealthcheckOnFailureAction}}', 'shell'])).toBe('none');
    await env.bargeOk(['create', '--name', 'none-cmd', '--health-cmd', 'none', 'busybox', 'true']);
    expect(await healthConfig('none-cmd')).toEqual({ Test: ['NONE'], Interval: 30 * S, Timeout: 30 * S, Retries: 3 });
    // Podman 4.3's readings of the command: a one-element array is a shell command, CMD and NONE as Docker's.
    for (const [cmd, test] of [['["true"]', ['CMD-SHELL', 'true']], ['CMD echo  hi', ['CMD', 'echo', 'hi']], ['CMD-SHELL echo hi', ['CMD-SHELL', 'echo hi']], ['NONE', ['NONE']]] as const) {
      const id = await env.bargeOk(['create', '--health-cmd', cmd, 'busybox', 'true']);
      expect(await env.bargeOk(['inspect', '--format', '{{json .Config.Healthcheck.Test}}', id])).toBe(JSON.stringify(test));
      await env.bargeOk(['rm', id]);
    }
    // As in Podman 4.3, the other flags count only with --health-cmd.
    await env.bargeOk(['create', '--name', 'no-cmd', '--health-interval', '5s', 'busybox', 'true']);
    expect(await healthConfig('no-cmd')).toBeNull();
    // A container without a healthcheck still shows Podman's empty Health.
    expect(await health('no-cmd')).toEqual({ Status: '', FailingStreak: 0, Log: null });
    await env.bargeOk(['rm', 'shell', 'array', 'none-cmd', 'no-cmd']);
  });

  it("takes the image's HEALTHCHECK with Podman's defaults, and --no-healthcheck disables it", async () => {
    await writeFile(join(env.tmp, 'Containerfile.hc'), 'FROM busybox\nHEALTHCHECK --start-period=5s CMD test -e /ok\nCMD ["sleep","1000"]\n');
    await env.bargeOk(['build', '--format', 'docker', '-q', '-t', 'with-hc', '-f', join(env.tmp, 'Containerfile.hc'), env.tmp]);
    await env.bargeOk(['create', '--name', 'img-hc', 'with-hc']);
    expect(await healthConfig('img-hc')).toEqual({ Test: ['CMD-SHELL', 'test -e /ok'], StartPeriod: 5 * S, Interval: 30 * S, Timeout: 30 * S });
    await env.bargeOk(['create', '--name', 'img-no-hc', '--no-healthcheck', 'with-hc']);
    expect(await healthConfig('img-no-hc')).toEqual({ Test: ['NONE'] });
    await env.bargeOk(['create', '--name', 'img-own-hc', '--health-cmd', 'true', 'with-hc']);
    expect(await healthConfig('img-own-hc')).toEqual({ Test: ['CMD-SHELL', 'true'], Interval: 30 * S, Timeout: 30 * S, Retries: 3 });
    await env.bargeOk(['rm', 'img-hc', 'img-no-hc', 'img-own-hc']);
  });

  it('refuses bad values with 125 and creates nothing', async () => {
    const before = await env.bargeOk(['ps', '-aq']);
    const cases: [string[], string][] = [
      [['--health-cmd', 'true', '--health-retries', '0'], 'healthcheck-retries must be greater than 0'],
      [['--health-cmd', 'true', '--health-timeout', '0s'], 'healthcheck-timeout must be at least 1 second'],
      [['--health-cmd', 'true', '--health-interval', '5'], 'invalid healthcheck-interval: time: missing unit in duration "5"'],
      [['--health-cmd', 'true', '--health-start-period', '-1s'], 'healthcheck-start-period must be 0 seconds or greater'],
      [['--health-cmd', 'true', '--health-on-failure', 'bogus'], 'invalid on-failure action "bogus" for health check: supported actions are none,kill,restart,stop'],
      [['--health-cmd', 'true', '--no-healthcheck'], 'cannot specify both --no-healthcheck and --health-cmd'],
    ];
    for (const [flags, message] of cases) {
      const r = await env.barge(['create', ...flags, 'busybox', 'true']);
      expectCode(r, 125, flags);
      expect(r.stderr).toContain(message);
    }
    expect(await env.bargeOk(['ps', '-aq'])).toBe(before);
  });
});

describe('healthcheck run', () => {
  it('goes from starting to unhealthy after --health-retries failures and to healthy on a success, as Podman records it', async () => {
    await env.bargeOk(['run', '-d', '--name', 'web', '--health-cmd', 'echo probing; echo oops >&2; test -e /tmp/ok', '--health-retries', '2', 'busybox', 'sleep', '1000']);
    expect(await health('web')).toEqual({ Status: 'starting', FailingStreak: 0, Log: null });
    expect(await status('web')).toMatch(/^Up .* ago \(starting\)$/);

    const first = await env.barge(['healthcheck', 'run', 'web']);
    expectCode(first, 1);
    expect(first.stdout).toBe('unhealthy\n');
    let h = await health('web');
    expect(h).toMatchObject({ Status: 'starting', FailingStreak: 1 });
    expect(h.Log).toHaveLength(1);
    // Both streams, without the trailing newline (their order is the order the pipes deliver them in).
    expect(h.Log![0]!.ExitCode).toBe(1);
    expect(h.Log![0]!.Output.split('\n').sort()).toEqual(['oops', 'probing']);
    expect(Date.parse(h.Log![0]!.End)).toBeGreaterThanOrEqual(Date.parse(h.Log![0]!.Start));

    expectCode(await env.barge(['healthcheck', 'run', 'web']), 1);
    expect(await health('web')).toMatchObject({ Status: 'unhealthy', FailingStreak: 2 });
    expect(await status('web')).toMatch(/\(unhealthy\)$/);
    expect(await env.bargeOk(['ps', '--filter', 'health=unhealthy', '--format', '{{.Names}}'])).toBe('web');
    expect(await env.bargeOk(['ps', '--filter', 'health=healthy', '--format', '{{.Names}}'])).toBe('');

    await env.bargeOk(['exec', 'web', 'touch', '/tmp/ok']);
    const ok = await env.barge(['healthcheck', 'run', 'web']);
    expectCode(ok, 0);
    expect(ok.stdout).toBe('');
    h = await health('web');
    expect(h).toMatchObject({ Status: 'healthy', FailingStreak: 0 });
    expect(h.Log!.map((l) => l.ExitCode)).toEqual([1, 1, 0]);
    expect(await status('web')).toMatch(/^Up .* ago \(healthy\)$/);
    expect(await env.bargeOk(['ps', '--filter', 'health=healthy', '--format', '{{.Names}}'])).toBe('web');

    // Podman keeps the last five results.
    for (let i = 0; i < 3; i++) await env.bargeOk(['healthcheck', 'run', 'web']);
    h = await health('web');
    expect(h.Log!.map((l) => l.ExitCode)).toEqual([1, 0, 0, 0, 0]);

    // The health filter: none is a container without a healthcheck.
    await env.bargeOk(['run', '-d', '--name', 'plain', 'busybox', 'sleep', '1000']);
    expect(await env.bargeOk(['ps', '--filter', 'health=none', '--format', '{{.Names}}'])).toBe('plain');
    expect(await status('plain')).toMatch(/^Up .* ago$/);
    await env.bargeOk(['rm', '-f', '-t', '0', 'web', 'plain']);
  });

  it("fails with Podman's errors (125) for a missing, stopped or check-less container", async () => {
    await env.bargeOk(['create', '--name', 'idle', '--health-cmd', 'true', 'busybox', 'sleep', '1000']);
    const idleId = await env.bargeOk(['inspect', '--format', '{{.Id}}', 'idle']);
    await env.bargeOk(['run', '-d', '--name', 'nocheck', '--no-healthcheck', 'busybox', 'sleep', '1000']);
    const nocheckId = await env.bargeOk(['inspect', '--format', '{{.Id}}', 'nocheck']);
    const cases: [string, string][] = [
      ['no-such-ctr', 'unable to look up no-such-ctr to perform a health check: no container with name or ID "no-such-ctr" found: no such container'],
      ['idle', `container ${idleId} is not running`],
      ['nocheck', `container ${nocheckId} has no defined healthcheck`],
    ];
    for (const [ctr, message] of cases) {
      const r = await env.barge(['healthcheck', 'run', ctr]);
      expectCode(r, 125, ['healthcheck', 'run', ctr]);
      expect(r.stderr).toContain(message);
    }
    await env.bargeOk(['rm', '-f', '-t', '0', 'idle', 'nocheck']);
  });

  it('does not count failures in the start period, and a check over the timeout fails with exit code -1', async () => {
    await env.bargeOk(['run', '-d', '--name', 'booting', '--health-cmd', 'false', '--health-retries', '1', '--health-start-period', '1h', 'busybox', 'sleep', '1000']);
    expectCode(await env.barge(['healthcheck', 'run', 'booting']), 1);
    expect(await health('booting')).toMatchObject({ Status: 'starting', FailingStreak: 0 });

    await env.bargeOk(['run', '-d', '--name', 'slow', '--health-cmd', 'sleep 3', '--health-timeout', '1s', 'busybox', 'sleep', '1000']);
    const r = await env.barge(['healthcheck', 'run', 'slow']);
    expectCode(r, 125);
    expect(r.stderr).toContain('healthcheck command exceeded timeout of 1s');
    const h = await health('slow');
    expect(h.FailingStreak).toBe(1);
    expect(h.Log!.map((l) => l.ExitCode)).toEqual([-1]);
    await env.bargeOk(['rm', '-f', '-t', '0', 'booting', 'slow']);
  });

  it('--health-on-failure kill, stop and restart act once the container is unhealthy', async () => {
    const unhealthy = ['--health-cmd', 'false', '--health-retries', '1', '--stop-timeout', '0'];
    await env.bargeOk(['run', '-d', '--name', 'killed', ...unhealthy, '--health-on-failure', 'kill', 'busybox', 'sleep', '1000']);
    expectCode(await env.barge(['healthcheck', 'run', 'killed']), 1);
    await until('the killed container to exit', async () => (await env.bargeOk(['inspect', '--format', '{{.State.Status}}', 'killed'])) === 'exited');
    expect(await env.bargeOk(['inspect', '--format', '{{.State.ExitCode}}', 'killed'])).toBe('137');

    await env.bargeOk(['run', '-d', '--name', 'stopped', ...unhealthy, '--health-on-failure', 'stop', 'busybox', 'sleep', '1000']);
    expectCode(await env.barge(['healthcheck', 'run', 'stopped']), 1);
    expect(await env.bargeOk(['inspect', '--format', '{{.State.Status}}', 'stopped'])).toBe('exited');

    await env.bargeOk(['run', '-d', '--name', 'restarted', ...unhealthy, '--health-on-failure', 'restart', 'busybox', 'sleep', '1000']);
    const pid = await env.bargeOk(['inspect', '--format', '{{.State.Pid}}', 'restarted']);
    expectCode(await env.barge(['healthcheck', 'run', 'restarted']), 1);
    expect(await env.bargeOk(['inspect', '--format', '{{.State.Status}} {{.State.Health.Status}}', 'restarted'])).toBe('running starting');
    expect(await env.bargeOk(['inspect', '--format', '{{.State.Pid}}', 'restarted'])).not.toBe(pid);

    // Without an action the container keeps running, unhealthy.
    await env.bargeOk(['run', '-d', '--name', 'left', ...unhealthy, 'busybox', 'sleep', '1000']);
    expectCode(await env.barge(['healthcheck', 'run', 'left']), 1);
    expect(await env.bargeOk(['inspect', '--format', '{{.State.Status}} {{.State.Health.Status}}', 'left'])).toBe('running unhealthy');
    await env.bargeOk(['rm', '-f', '-t', '0', 'killed', 'stopped', 'restarted', 'left']);
  });
});
