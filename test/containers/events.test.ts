// `barge events` over the events log (Podman's "file" backend): what the container, image and
// volume commands record, the filters and formats, following the log, and its rotation.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BARGE_BIN, ROOTLESS, type Env } from '../helpers.ts';
import { containerSuite, expectCode, until } from './lib.ts';

const suite = containerSuite();
let env: Env;
beforeAll(() => {
  env = suite();
});

const logPath = (): string => join(env.runroot, 'events', 'events.log');

/** The statuses of the events of one container (by name), oldest first. */
async function statuses(name: string): Promise<string[]> {
  return (await env.bargeOk(['events', '--stream=false', '--filter', `container=${name}`, '--format', '{{.Status}}'])).split('\n').filter(Boolean);
}

describe('events', () => {
  it('records a detached container\'s life, its labels and its exit code, in Podman\'s JSON lines and line format', async () => {
    const id = await env.bargeOk(['run', '-d', '--name', 'ev-life', '--label', 'team=blue', 'busybox', 'sleep', '600']);
    await env.bargeOk(['exec', 'ev-life', 'true']);
    await env.bargeOk(['kill', 'ev-life']);
    await env.bargeOk(['wait', 'ev-life']);
    await env.bargeOk(['rm', 'ev-life']);
    const got = await statuses('ev-life');
    expect(got.slice(0, 6)).toEqual(['create', 'init', 'start', 'exec', 'exec_died', 'kill']);
    expect(got).toContain('died');
    expect(got.at(-1)).toBe('remove');
    const died = await env.bargeOk(['events', '--stream=false', '--filter', 'container=ev-life', '--filter', 'event=died', '--format', 'json']);
    expect(JSON.parse(died)).toEqual({
      ContainerExitCode: 137, ID: id, Image: 'localhost/busybox:latest', Name: 'ev-life', Status: 'died', Time: expect.stringMatching(/^\d{4}-\d\d-\d\dT[\d:.]+Z$/) as unknown,
      Type: 'container', Attributes: { team: 'blue' },
    });
    // The file holds the same lines, whole.
    expect((await readFile(logPath(), 'utf8')).split('\n')).toContain(died);
    const line = await env.bargeOk(['events', '--stream=false', '--filter', `container=${id.slice(0, 12)}`, '--filter', 'event=start']);
    expect(line).toMatch(new RegExp(`^\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d(\\.\\d+)? \\+0000 UTC container start ${id} \\(image=localhost/busybox:latest, name=ev-life, team=blue\\)$`));
    const short = await env.bargeOk(['events', '--stream=false', '--no-trunc=false', '--filter', 'container=ev-life', '--filter', 'event=start']);
    expect(short).toContain(` container start ${id.slice(0, 12)} (image=`);
  });

  it('sees a detached container\'s own exit through conmon\'s exit command, and a foreground run\'s directly', async () => {
    await env.bargeOk(['run', '-d', '--name', 'ev-exit', 'busybox', 'sh', '-c', 'exit 3']);
    await until('the cleanup event of ev-exit', async () => (await statuses('ev-exit')).includes('cleanup'));
    expect(await statuses('ev-exit')).toEqual(['create', 'init', 'start', 'died', 'cleanup']);
    const code = (name: string): Promise<string> =>
      env.bargeOk(['events', '--stream=false', '--filter', `container=${name}`, '--filter', 'event=died', '--format', '{{.ContainerExitCode}}']);
    expect(await code('ev-exit')).toBe('3');
    expectCode(await env.barge(['run', '--rm', '--name', 'ev-fg', 'busybox', 'sh', '-c', 'exit 5']), 5);
    expect(await statuses('ev-fg')).toEqual(['create', 'init', 'start', 'attach', 'died', 'remove']);
    expect(await code('ev-fg')).toBe('5');
  });

  it('records exec sessions and their exit codes, as Podman 4.3: exec, then exec_died (a zero code left out)', async () => {
    const id = await env.bargeOk(['run', '-d', '--name', 'ev-exec', '--label', 'k=v', 'busybox', 'sleep', '600']);
    expectCode(await env.barge(['exec', 'ev-exec', 'sh', '-c', 'exit 3']), 3);
    await env.bargeOk(['exec', 'ev-exec', 'true']);
    const lines = (await env.bargeOk(['events', '--stream=false', '--filter', 'container=ev-exec', '--filter', 'event=exec', '--filter', 'event=exec_died', '--format', 'json']))
      .split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const time = expect.stringMatching(/Z$/) as unknown;
    const common = { ID: id, Image: 'localhost/busybox:latest', Name: 'ev-exec', Time: time, Type: 'container', Attributes: { k: 'v' } };
    expect(lines).toEqual([
      { ...common, Status: 'exec' }, { ContainerExitCode: 3, ...common, Status: 'exec_died' },
      { ...common, Status: 'exec' }, { ...common, Status: 'exec_died' },
    ]);
    // Key order as Podman's Go struct writes it.
    expect(Object.keys(lines[1]!)).toEqual(['ContainerExitCode', 'ID', 'Image', 'Name', 'Status', 'Time', 'Type', 'Attributes']);
    expect(await env.bargeOk(['events', '--stream=false', '--filter', 'container=ev-exec', '--filter', 'event=exec_died', '--format', '{{.ContainerExitCode}}'])).toBe('3\n0');
    await env.bargeOk(['rm', '-f', 'ev-exec']);
  });

  it('records a healthcheck as health_status with the status it starts from, then its exec_died', async () => {
    await env.bargeOk(['run', '-d', '--name', 'ev-health', '--health-cmd', 'exit 1', '--health-retries', '1', 'busybox', 'sleep', '600']);
    for (let i = 0; i < 2; i++) expectCode(await env.barge(['healthcheck', 'run', 'ev-health']), 1);
    // No exec event for the check itself.
    expect(await statuses('ev-health')).toEqual(['create', 'init', 'start', 'health_status', 'exec_died', 'health_status', 'exec_died']);
    const health = await env.bargeOk(['events', '--stream=false', '--filter', 'container=ev-health', '--filter', 'event=health_status', '--format', '{{.HealthStatus}} {{.Name}}']);
    expect(health).toBe('starting ev-health\nunhealthy ev-health');
    const json = await env.bargeOk(['events', '--stream=false', '--filter', 'container=ev-health', '--filter', 'event=health_status', '--format', 'json']);
    const first = JSON.parse(json.split('\n')[0]!) as Record<string, unknown>;
    expect(Object.keys(first)).toEqual(['ID', 'Image', 'Name', 'Status', 'Time', 'Type', 'health_status', 'Attributes']);
    expect(first.health_status).toBe('starting');
    const line = (await env.bargeOk(['events', '--stream=false', '--filter', 'container=ev-health', '--filter', 'event=health_status'])).split('\n')[1];
    expect(line).toMatch(/ container health_status [0-9a-f]{64} \(image=localhost\/busybox:latest, name=ev-health, health_status=unhealthy\)$/);
    expect(await env.bargeOk(['events', '--stream=false', '--filter', 'container=ev-health', '--filter', 'event=exec_died', '--format', '{{.ContainerExitCode}}'])).toBe('1\n1');
    await env.bargeOk(['rm', '-f', 'ev-health']);
  });

  it('records a container\'s commit and its rename, under the new name', async () => {
    const id = await env.bargeOk(['create', '--name', 'ev-named', 'busybox', 'true']);
    await env.bargeOk(['commit', '-q', 'ev-named', 'ev-committed']);
    await env.bargeOk(['rename', 'ev-named', 'ev-renamed']);
    const got = await env.bargeOk(['events', '--stream=false', '--filter', `container=${id}`, '--format', '{{.Status}} {{.Name}}']);
    expect(got.split('\n')).toEqual(['create ev-named', 'commit ev-named', 'rename ev-renamed']);
    expect(await env.bargeOk(['events', '--stream=false', '--filter', 'event=rename', '--filter', 'container=ev-renamed', '--format', '{{.ID}}'])).toBe(id);
    await env.bargeOk(['rm', 'ev-renamed']);
    await env.bargeOk(['rmi', 'ev-committed']);
  });

  // CRIU needs root (see test/containers/checkpoint.test.ts).
  it.runIf(!ROOTLESS)('records a checkpoint and a restore', async () => {
    await env.bargeOk(['run', '-d', '--name', 'ev-ckpt', 'busybox', 'sleep', '600']);
    await env.bargeOk(['container', 'checkpoint', 'ev-ckpt']);
    await env.bargeOk(['container', 'restore', 'ev-ckpt']);
    expect(await statuses('ev-ckpt')).toEqual(['create', 'init', 'start', 'checkpoint', 'restore']);
    await env.bargeOk(['rm', '-f', 'ev-ckpt']);
  });

  it('records image and volume events; filters of one key are alternatives, of different keys all hold', async () => {
    const id = await env.bargeOk(['images', '--no-trunc', '--format', '{{.ID}}', 'busybox']);
    await env.bargeOk(['tag', 'busybox', 'ev-tag:1']);
    await env.bargeOk(['untag', 'busybox', 'ev-tag:1']);
    await env.bargeOk(['volume', 'create', '--label', 'x=1', 'ev-vol']);
    await env.bargeOk(['volume', 'rm', 'ev-vol']);
    const img = await env.bargeOk(['events', '--stream=false', '--filter', 'type=image', '--filter', 'event=tag', '--filter', 'event=untag', '--format', '{{.Status}} {{.ID}} {{.Name}}']);
    expect(img.split('\n').slice(-2)).toEqual([`tag ${id.replace(/^sha256:/, '')} ev-tag:1`, `untag ${id.replace(/^sha256:/, '')} localhost/ev-tag:1`]);
    // save, load and rmi, with Podman's fields: the archive as the name.
    const archive = join(env.tmp, 'ev-save.tar');
    const since = new Date().toISOString();
    await env.bargeOk(['tag', 'busybox', 'ev-saved:1']);
    await env.bargeOk(['save', '-q', '-o', archive, 'ev-saved:1']);
    await env.bargeOk(['rmi', 'ev-saved:1']);
    await env.bargeOk(['load', '-q', '-i', archive]);
    await env.bargeOk(['rmi', 'ev-saved:1']);
    const hex = id.replace(/^sha256:/, '');
    const moves = await env.bargeOk(['events', '--stream=false', '--filter', 'type=image', '--since', since, '--format', '{{.Status}} {{.ID}} {{.Name}}']);
    // rmi of one of several names records its removal too, as Podman's does.
    expect(moves.split('\n')).toEqual([
      `tag ${hex} ev-saved:1`, `save ${hex} ${archive}`, `untag ${hex} localhost/ev-saved:1`, `remove ${hex} localhost/ev-saved:1`, `loadfromarchive  ${archive}`,
      `untag ${hex} localhost/ev-saved:1`, `remove ${hex} localhost/ev-saved:1`,
    ]);
    // Removing the image itself: the remove event names it as it was picked, by its name or its id.
    const since2 = new Date().toISOString();
    for (const by of ['name', 'id'] as const) {
      // An image of its own (a commit), so that removing it deletes it.
      await env.bargeOk(['create', '--name', 'ev-src', 'busybox', 'true']);
      await env.bargeOk(['commit', '-q', 'ev-src', `ev-gone-${by}`]);
      await env.bargeOk(['rm', 'ev-src']);
      await env.bargeOk(['rmi', by === 'name' ? `ev-gone-${by}` : await env.bargeOk(['images', '-q', `ev-gone-${by}`])]);
    }
    const removed = await env.bargeOk(['events', '--stream=false', '--filter', 'event=remove', '--filter', 'type=image', '--since', since2, '--format', '{{.Name}}']);
    expect(removed.split('\n')).toEqual(['localhost/ev-gone-name:latest', expect.stringMatching(/^[0-9a-f]{12}$/)]);
    const vol = await env.bargeOk(['events', '--stream=false', '--filter', 'volume=ev-vol']);
    expect(vol).toMatch(/^\S+ \S+ \+0000 UTC volume create ev-vol\n\S+ \S+ \+0000 UTC volume remove ev-vol$/);
    // Only events in the time window.
    expect(await env.bargeOk(['events', '--stream=false', '--filter', 'volume=ev-vol', '--since', String(Date.now() / 1000 + 3600)])).toBe('');
    expect(await env.bargeOk(['events', '--stream=false', '--filter', 'volume=ev-vol', '--until', '2000-01-01T00:00:00Z'])).toBe('');
    const bad = await env.barge(['events', '--stream=false', '--filter', 'colour=red']);
    expectCode(bad, 125);
    expect(bad.stderr).toBe('Error: colour is an invalid filter\n');
  });

  it('keeps whole lines when many processes write at once', async () => {
    const names = Array.from({ length: 6 }, (_, i) => `ev-many-${i}`);
    await Promise.all(names.map((n) => env.bargeOk(['volume', 'create', n])));
    const lines = (await readFile(logPath(), 'utf8')).split('\n').filter(Boolean);
    // Every line parses: no two writes were interleaved.
    const created = lines.map((l) => JSON.parse(l) as { Name?: string; Status: string }).filter((e) => e.Status === 'create' && names.includes(e.Name ?? ''));
    expect(created.map((e) => e.Name).sort()).toEqual(names);
    await env.bargeOk(['volume', 'rm', ...names]);
  });

  it('follows the log until interrupted, and exits 0', async () => {
    const since = new Date().toISOString();
    const child = spawn(BARGE_BIN, ['--root', env.root, '--runroot', env.runroot, 'events', '--since', since, '--filter', 'volume=ev-follow', '--format', '{{.Status}}'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    try {
      await env.bargeOk(['volume', 'create', 'ev-follow']);
      await until('the create event', () => out === 'create\n');
      // Written after the follower read the log for certain: it comes through the follow loop.
      await env.bargeOk(['volume', 'rm', 'ev-follow']);
      await until('the remove event', () => out === 'create\nremove\n');
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited).toBe(0);
  });

  it('rotates a full log to events.log.1 and still shows what it held', async () => {
    const old = JSON.stringify({ Name: 'ev-old', Status: 'create', Time: '2026-01-02T03:04:05.5Z', Type: 'volume', Attributes: null });
    await mkdir(join(env.runroot, 'events'), { recursive: true });
    const before = await readFile(logPath(), 'utf8').catch(() => '');
    // Past the 1 MB limit.
    await writeFile(logPath(), before + `${old}\n`.repeat(Math.ceil(1_000_000 / old.length) + 1));
    await env.bargeOk(['volume', 'create', 'ev-rotated']);
    expect(existsSync(`${logPath()}.1`)).toBe(true);
    expect((await readFile(logPath(), 'utf8')).split('\n').filter(Boolean)).toHaveLength(1);
    const shown = await env.bargeOk(['events', '--stream=false', '--filter', 'volume=ev-old', '--filter', 'volume=ev-rotated', '--format', '{{.Time}} {{.Name}}']);
    const lines = shown.split('\n');
    expect(lines[0]).toBe('2026-01-02 03:04:05.5 +0000 UTC ev-old');
    expect(lines.at(-1)).toMatch(/ ev-rotated$/);
    await env.bargeOk(['volume', 'rm', 'ev-rotated']);
  });
});
