// pause/unpause (the runtime's freezer), the `port` placeholder, and -l/--latest on the verbs
// Podman accepts it for. Rootless on cgroup v1 there is no freezer, and rootless CRIU cannot run:
// barge refuses pause, checkpoint and restore there with Podman's messages.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOTLESS, type Env } from '../helpers.ts';
import { containerSuite, expectCode, NO_CGROUPS, NO_FREEZER } from './lib.ts';

const suite = containerSuite();
let env: Env;
beforeAll(() => {
  env = suite();
});

/** What the runtime itself says about the container. */
function runtimeStatus(runtime: string, id: string): string {
  const out = execFileSync(runtime, ['--root', join(env.runroot, `oci-${runtime}`), 'state', id], { encoding: 'utf8' });
  return (JSON.parse(out) as { status: string }).status;
}

describe.each(['runc', 'crun'])('pause and unpause with %s', (runtime) => {
  it.runIf(NO_CGROUPS)('rootless on cgroup v1: pause is refused as Podman refuses it, and the container runs on', async () => {
    const name = `unfrozen-${runtime}`;
    const id = await env.bargeOk(['--runtime', runtime, 'run', '-d', '--name', name, 'busybox', 'sleep', '600']);
    const r = await env.barge(['pause', name]);
    expectCode(r, 125);
    expect(r.stderr).toBe(`Error: ${NO_FREEZER}\n`);
    expect(runtimeStatus(runtime, id)).toBe('running');
    expect(await env.bargeOk(['inspect', '--format', '{{.State.Status}}', name])).toBe('running');
    for (const args of [['unpause', name], ['unpause', '-a'], ['unpause', 'no-such']]) {
      const un = await env.barge(args);
      expectCode(un, 125, args);
      expect(un.stderr).toBe('Error: unpause is not supported for cgroupv1 rootless containers\n');
    }
    await env.bargeOk(['rm', '-f', name]);
  });

  it.runIf(!NO_CGROUPS)('freezes the container; ps and inspect say paused; exec is refused; unpause thaws it', async () => {
    const name = `frozen-${runtime}`;
    const id = await env.bargeOk(['--runtime', runtime, 'run', '-d', '--name', name, 'busybox', 'sleep', '600']);
    expect(await env.bargeOk(['pause', name])).toBe(name);
    expect(runtimeStatus(runtime, id)).toBe('paused');
    expect(await env.bargeOk(['ps', '-a', '--filter', `name=^${name}$`, '--format', '{{.Status}} {{.State}}'])).toBe('Paused Paused');
    expect(await env.bargeOk(['inspect', '--format', '{{.State.Status}} {{.State.Paused}} {{.State.Running}}', name])).toBe('paused true false');
    // ps without -a lists running containers only, as Podman's.
    expect(await env.bargeOk(['ps', '--format', '{{.Names}}'])).not.toMatch(new RegExp(`^${name}$`, 'm'));
    const again = await env.barge(['pause', name]);
    expectCode(again, 125);
    expect(again.stderr).toMatch(/is already paused: container state improper/);
    expectCode(await env.barge(['exec', name, 'true']), 255);
    expect(await env.bargeOk(['unpause', name])).toBe(name);
    expect(runtimeStatus(runtime, id)).toBe('running');
    expect(await env.bargeOk(['inspect', '--format', '{{.State.Status}}', name])).toBe('running');
    const un = await env.barge(['unpause', name]);
    expectCode(un, 125);
    expect(un.stderr).toMatch(/is not paused, can't unpause: container state improper/);
  });

  it.runIf(!NO_CGROUPS)('a paused container can be stopped, killed and removed', async () => {
    const a = `stop-paused-${runtime}`;
    await env.bargeOk(['--runtime', runtime, 'run', '-d', '--name', a, 'busybox', 'sh', '-c', 'trap "exit 3" TERM; while :; do sleep 0.1; done']);
    await env.bargeOk(['pause', a]);
    expect(await env.bargeOk(['stop', a])).toBe(a);
    expect(await env.bargeOk(['inspect', '--format', '{{.State.Status}} {{.State.ExitCode}}', a])).toBe('exited 3');
    const b = `kill-paused-${runtime}`;
    await env.bargeOk(['--runtime', runtime, 'run', '-d', '--name', b, 'busybox', 'sleep', '600']);
    await env.bargeOk(['pause', b]);
    await env.bargeOk(['kill', b]);
    expect(await env.bargeOk(['wait', b])).toBe('137');
    const c = `rm-paused-${runtime}`;
    await env.bargeOk(['--runtime', runtime, 'run', '-d', '--name', c, 'busybox', 'sleep', '600']);
    await env.bargeOk(['pause', c]);
    await env.bargeOk(['rm', '-f', c]);
    expectCode(await env.barge(['inspect', c]), 125);
  });
});

describe('pause errors and --all', () => {
  it('pause needs a running container; pause -a and unpause -a take every one', async () => {
    await env.bargeOk(['create', '--name', 'never-started', 'busybox', 'true']);
    const r = await env.barge(['pause', 'never-started']);
    expectCode(r, 125);
    expect(r.stderr).toMatch(/"created" is not running, can't pause: container state improper/);
    expectCode(await env.barge(['pause']), 125);
    expectCode(await env.barge(['pause', 'no-such']), 125);
    const id1 = await env.bargeOk(['run', '-d', 'busybox', 'sleep', '600']);
    const id2 = await env.bargeOk(['run', '-d', 'busybox', 'sleep', '600']);
    if (NO_CGROUPS) {
      const all = await env.barge(['pause', '-a']);
      expectCode(all, 125);
      expect(all.stderr).toBe(`Error: ${NO_FREEZER}\n`.repeat(2));
      await env.bargeOk(['rm', '-f', id1, id2]);
      return;
    }
    const paused = (await env.bargeOk(['pause', '-a'])).split('\n');
    expect(paused).toEqual(expect.arrayContaining([id1, id2]));
    expect(await env.bargeOk(['inspect', '--format', '{{.State.Status}}', id1])).toBe('paused');
    expect((await env.bargeOk(['unpause', '--all'])).split('\n')).toEqual(expect.arrayContaining([id1, id2]));
    expect(await env.bargeOk(['inspect', '--format', '{{.State.Status}}', id2])).toBe('running');
    await env.bargeOk(['rm', '-f', id1, id2]);
  });
});

describe('port and --latest', () => {
  it('port lists nothing for a container without published ports, as Podman', async () => {
    await env.bargeOk(['run', '-d', '--name', 'noports', 'busybox', 'sleep', '600']);
    const r = await env.barge(['port', 'noports']);
    expectCode(r, 0);
    expect(r.stdout).toBe('');
    expectCode(await env.barge(['port', 'noports', '80/tcp']), 0);
    expectCode(await env.barge(['port', '-a']), 0);
    const none = await env.barge(['port']);
    expectCode(none, 125);
    expect(none.stderr).toMatch(/you must supply a running container name or id/);
    expectCode(await env.barge(['port', 'no-such']), 125);
    expectCode(await env.barge(['port', 'noports', 'http']), 125);
  });

  it('-l acts on the latest container for inspect, port, pause, unpause, logs, wait, rm', async () => {
    const id = await env.bargeOk(['run', '-d', '--name', 'newest', 'busybox', 'sh', '-c', 'echo hi; sleep 600']);
    expect(await env.bargeOk(['inspect', '-l', '--format', '{{.Name}}'])).toBe('newest');
    expect(await env.bargeOk(['container', 'inspect', '-l', '--format', '{{.Id}}'])).toBe(id);
    expectCode(await env.barge(['port', '-l']), 0);
    if (NO_CGROUPS) expect((await env.barge(['pause', '-l'])).stderr).toBe(`Error: ${NO_FREEZER}\n`);
    else {
      expect(await env.bargeOk(['pause', '-l'])).toBe('newest');
      expect(await env.bargeOk(['unpause', '-l'])).toBe('newest');
    }
    await env.bargeOk(['kill', '-l']);
    expect(await env.bargeOk(['wait', '-l'])).toBe('137');
    expect(await env.bargeOk(['logs', '-l'])).toBe('hi');
    expect(await env.bargeOk(['rm', '-l'])).toBe(id);
    expectCode(await env.barge(['inspect', 'newest']), 125);
  });
});

describe.runIf(ROOTLESS)('checkpoint and restore rootless', () => {
  it('are refused as Podman refuses them (CRIU needs root), migrate too, and the container runs on', async () => {
    await env.bargeOk(['run', '-d', '--name', 'no-criu', 'busybox', 'sleep', '600']);
    for (const [args, msg] of [
      [['container', 'checkpoint', 'no-criu'], 'checkpointing a container requires root'],
      [['container', 'checkpoint', '-e', `${env.tmp}/cp.tar`, 'no-criu'], 'checkpointing a container requires root'],
      [['container', 'migrate', 'no-criu', `${env.tmp}/elsewhere`], 'checkpointing a container requires root'],
      [['container', 'restore', 'no-criu'], 'restoring a container requires root'],
      [['container', 'restore', '-i', `${env.tmp}/cp.tar`], 'restoring a container requires root'],
    ] as const) {
      const r = await env.barge([...args]);
      expectCode(r, 125, args);
      expect(r.stderr).toBe(`Error: ${msg}\n`);
    }
    expect(await env.bargeOk(['inspect', '--format', '{{.State.Status}}', 'no-criu'])).toBe('running');
    await env.bargeOk(['rm', '-f', 'no-criu']);
  });
});
