// Podman 4.3's output and exit codes for ps, rm, restart, inspect, exec, and the container
// exists/prune/rename commands, as compared side by side with podman on this machine.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Env } from '../helpers.ts';
import { containerSuite, expectCode } from './lib.ts';

const suite = containerSuite();
let env: Env;
beforeAll(() => {
  env = suite();
});

const names = async (args: string[]): Promise<string[]> => (await env.bargeOk(args)).split('\n').filter((l) => l !== '');

describe('ps', () => {
  it('lists oldest first, truncates ids and commands in templates unless --no-trunc, and keeps TABs of plain templates', async () => {
    const long = await env.bargeOk(['create', '--name', 'ps-a', 'busybox', 'sh', '-c', 'echo a rather long command line']);
    await env.bargeOk(['run', '--name', 'ps-b', 'busybox', 'true']);
    await env.bargeOk(['run', '-d', '--name', 'ps-c', 'busybox', 'sleep', '600']);
    const imageId = await env.bargeOk(['inspect', '--type', 'image', '--format', '{{.FromImageID}}', 'busybox']);
    const only = ['--filter', 'name=^ps-'];

    expect(await names(['ps', ...only, '--format', '{{.Names}}'])).toEqual(['ps-a', 'ps-b', 'ps-c']);
    // -l and -n take the newest, still listed oldest first; -n 0 is all.
    expect(await names(['ps', ...only, '-l', '--format', '{{.Names}}'])).toEqual(['ps-c']);
    expect(await names(['ps', ...only, '-n', '2', '--format', '{{.Names}}'])).toEqual(['ps-b', 'ps-c']);
    expect(await names(['ps', ...only, '-n', '0', '--format', '{{.Names}}'])).toEqual(['ps-a', 'ps-b', 'ps-c']);

    const tmpl = '{{.ID}} {{.ImageID}} {{.Command}}';
    expect(await env.bargeOk(['ps', '--filter', 'name=^ps-a$', '--format', tmpl])).toBe(
      `${long.slice(0, 12)} ${imageId.slice(0, 12)} sh -c echo a rath...`,
    );
    expect(await env.bargeOk(['ps', '--filter', 'name=^ps-a$', '--no-trunc', '--format', tmpl])).toBe(
      `${long} ${imageId} sh -c echo a rather long command line`,
    );

    const plain = await env.bargeOk(['ps', ...only, '--format', '{{.Names}}\\t{{.State}}']);
    // Podman's psReporter.State: the state as ps's STATUS words it, without the health.
    expect(plain).toMatch(/^ps-a\tCreated\nps-b\tExited \(0\) .* ago\nps-c\tUp .* ago$/);
    const table = await env.bargeOk(['ps', ...only, '--format', 'table {{.Names}}\\t{{.State}}']);
    expect(table).toMatch(/^NAMES {7}STATE\nps-a {8}Created\nps-b {8}Exited \(0\) .* ago\nps-c {8}Up .* ago$/);
    await env.bargeOk(['rm', '-f', 'ps-a', 'ps-b', 'ps-c']);
  });

  it('ORs repeated filters of one key, ANDs different keys and all labels, and rejects unknown states', async () => {
    // The label scopes every query to this test's containers (labels are ANDed).
    await env.bargeOk(['create', '--name', 'f-created', '--label', 'grp=f', '--label', 'x=1', 'busybox', 'true']);
    await env.bargeOk(['run', '--name', 'f-exited', '--label', 'grp=f', '--label', 'x=1', '--label', 'y=2', 'busybox', 'true']);
    await env.bargeOk(['run', '-d', '--name', 'f-running', '--label', 'grp=f', '--label', 'y=2', 'busybox', 'sleep', '600']);
    const ps = (...filters: string[]): Promise<string[]> =>
      names(['ps', '--filter', 'label=grp=f', ...filters.flatMap((f) => ['--filter', f]), '--format', '{{.Names}}']);

    expect(await ps('status=exited', 'status=created')).toEqual(['f-created', 'f-exited']);
    expect(await ps('status=stopped')).toEqual(['f-exited']);
    expect(await ps('status=exited', 'name=created')).toEqual([]);
    expect(await ps('name=created', 'name=running')).toEqual(['f-created', 'f-running']);
    expect(await ps('label=x=1', 'label=y=2')).toEqual(['f-exited']);

    const bogus = await env.barge(['ps', '-a', '--filter', 'status=bogus']);
    expectCode(bogus, 125);
    expect(bogus.stderr).toBe('Error: unknown container state: bogus: invalid argument\n');
    expect(bogus.stdout).toBe('');
    const key = await env.barge(['ps', '-a', '--filter', 'colour=red']);
    expectCode(key, 125);
    expect(key.stderr).toBe('Error: colour is an invalid filter\n');
    await env.bargeOk(['rm', '-f', 'f-created', 'f-exited', 'f-running']);
  });

  it('images and history print plain templates with TABs too', async () => {
    expect(await env.bargeOk(['images', '--format', '{{.Repository}}\\t{{.Tag}}'])).toBe('localhost/busybox\tlatest');
    const history = await env.bargeOk(['history', '--format', '{{.ID}}\\t{{.Size}}', 'busybox']);
    expect(history.split('\n')[0]).toMatch(/^[0-9a-f]{12}\t\S/);
  });
});

describe('rm and restart', () => {
  it('rm prints each container as named, and an unknown name fails with 1 before anything is removed', async () => {
    const id = await env.bargeOk(['create', '--name', 'rm-a', 'busybox', 'true']);
    await env.bargeOk(['create', '--name', 'rm-b', 'busybox', 'true']);

    const missing = await env.barge(['rm', 'rm-a', 'nosuch']);
    expectCode(missing, 1);
    expect(missing.stderr).toBe('Error: no container with name or ID "nosuch" found: no such container\n');
    expect(missing.stdout).toBe('');
    expectCode(await env.barge(['container', 'exists', 'rm-a']), 0);

    const forced = await env.barge(['rm', '-f', 'nosuch']);
    expectCode(forced, 0);
    expect(forced.stdout + forced.stderr).toBe('');

    expect(await env.bargeOk(['rm', id.slice(0, 6), 'rm-b'])).toBe(`${id.slice(0, 6)}\nrm-b`);
    expectCode(await env.barge(['container', 'exists', 'rm-a']), 1);
  });

  it('rm of a working container still prints its id, as Buildah', async () => {
    const wc = await env.bargeOk(['from', '--name', 'rm-working', 'busybox']);
    const id = await env.bargeOk(['inspect', '--format', '{{.ContainerID}}', wc]);
    expect(await env.bargeOk(['rm', 'rm-working'])).toBe(id);
  });

  it('restart prints the container as named', async () => {
    const id = await env.bargeOk(['run', '-d', '--name', 'rs', 'busybox', 'sleep', '600']);
    expect(await env.bargeOk(['restart', '-t', '0', 'rs'])).toBe('rs');
    expect(await env.bargeOk(['restart', '-t', '0', id.slice(0, 8)])).toBe(id.slice(0, 8));
    expect(await env.bargeOk(['inspect', '--format', '{{.State.Status}}', 'rs'])).toBe('running');
    await env.bargeOk(['rm', '-f', 'rs']);
  });
});

describe('inspect of several names', () => {
  it('shows containers, working containers and images in one array and fails with 125 for unknown names', async () => {
    const ctr = await env.bargeOk(['create', '--name', 'in-c', 'busybox', 'true']);
    const wc = await env.bargeOk(['from', '--name', 'in-w', 'busybox']);
    const imageId = await env.bargeOk(['inspect', '--type', 'image', '--format', '{{.FromImageID}}', 'busybox']);

    const r = await env.barge(['inspect', 'in-c', 'in-w', 'busybox', 'nosuch']);
    expectCode(r, 125);
    expect(r.stderr).toBe('Error: inspecting object: no such object: "nosuch"\n');
    const objects = JSON.parse(r.stdout) as Record<string, unknown>[];
    expect(objects.map((o) => o['Id'] ?? o['ContainerID'])).toEqual([ctr, expect.any(String), imageId]);
    expect(objects[0]).toMatchObject({ Name: 'in-c', State: { Status: 'created' } });
    expect(objects[1]).toMatchObject({ Type: 'buildah 0.0.1', Container: wc });

    const ids = await env.barge(['inspect', '--format', '{{.Id}}', 'in-c', 'busybox']);
    expectCode(ids, 0);
    expect(ids.stdout).toBe(`${ctr}\n${imageId}\n`);

    const none = await env.barge(['inspect', 'nosuch', 'nosuch2']);
    expectCode(none, 125);
    expect(none.stdout).toBe('[]\n');
    expect(none.stderr).toBe('error inspecting object: no such object: "nosuch2"\nError: inspecting object: no such object: "nosuch"\n');

    // Plain templates print TABs here too.
    expect(await env.bargeOk(['inspect', '--format', '{{.Name}}\\t{{.State.Status}}', 'in-c'])).toBe('in-c\tcreated');
    await env.bargeOk(['rm', 'in-c', 'in-w']);
  });
});

describe('container exists, prune and rename; exec into a stopped container', () => {
  it('container exists answers 0 or 1 without output; --external counts working containers', async () => {
    await env.bargeOk(['create', '--name', 'ex-c', 'busybox', 'true']);
    await env.bargeOk(['from', '--name', 'ex-w', 'busybox']);
    const yes = await env.barge(['container', 'exists', 'ex-c']);
    expectCode(yes, 0);
    expect(yes.stdout + yes.stderr).toBe('');
    const no = await env.barge(['container', 'exists', 'nosuch']);
    expectCode(no, 1);
    expect(no.stdout + no.stderr).toBe('');
    expectCode(await env.barge(['container', 'exists', 'ex-w']), 1);
    expectCode(await env.barge(['container', 'exists', '--external', 'ex-w']), 0);
    await env.bargeOk(['rm', 'ex-c', 'ex-w']);
  });

  it('container prune removes created and exited containers, printing their ids, and leaves the rest', async () => {
    const created = await env.bargeOk(['create', '--name', 'pr-created', 'busybox', 'true']);
    await env.bargeOk(['run', '--name', 'pr-exited', 'busybox', 'true']);
    const exited = await env.bargeOk(['inspect', '--format', '{{.Id}}', 'pr-exited']);
    await env.bargeOk(['run', '-d', '--name', 'pr-running', 'busybox', 'sleep', '600']);
    await env.bargeOk(['from', '--name', 'pr-working', 'busybox']);

    expect((await names(['container', 'prune', '-f'])).sort()).toEqual([created, exited].sort());
    expect(await names(['ps', '-a', '--format', '{{.Names}}'])).toEqual(['pr-running']);
    expectCode(await env.barge(['container', 'exists', '--external', 'pr-working']), 0);
    expect(await env.bargeOk(['container', 'prune'])).toBe('');
    await env.bargeOk(['rm', '-f', 'pr-running', 'pr-working']);
  });

  it('rename gives a container, even a running one, a valid free name', async () => {
    const id = await env.bargeOk(['run', '-d', '--name', 'rn-a', 'busybox', 'sleep', '600']);
    await env.bargeOk(['create', '--name', 'rn-b', 'busybox', 'true']);

    await env.bargeOk(['rename', 'rn-a', 'rn-new']);
    expect(await env.bargeOk(['inspect', '--format', '{{.Id}} {{.Name}} {{.State.Status}}', 'rn-new'])).toBe(`${id} rn-new running`);
    await env.bargeOk(['container', 'rename', id.slice(0, 12), 'rn-a']);
    expect(await env.bargeOk(['ps', '--filter', `id=${id}`, '--format', '{{.Names}}'])).toBe('rn-a');
    expectCode(await env.barge(['rename', 'rn-a', 'rn-a']), 0);

    const bad = await env.barge(['rename', 'rn-a', '_bad']);
    expectCode(bad, 125);
    expect(bad.stderr).toBe('Error: names must match [a-zA-Z0-9][a-zA-Z0-9_.-]*: invalid argument\n');
    const taken = await env.barge(['rename', 'rn-a', 'rn-b']);
    expectCode(taken, 125);
    expect(taken.stderr).toBe(`Error: renaming container ${id}: name rn-b already in use, cannot rename container ${id}: container already exists\n`);
    const unknown = await env.barge(['rename', 'nosuch', 'x']);
    expectCode(unknown, 125);
    expect(unknown.stderr).toBe('Error: no container with name or ID "nosuch" found: no such container\n');

    // The renamed container is still managed under its new name.
    await env.bargeOk(['stop', '-t', '0', 'rn-a']);
    expect(await env.bargeOk(['inspect', '--format', '{{.State.Status}}', 'rn-a'])).toBe('exited');
    await env.bargeOk(['rm', 'rn-a', 'rn-b']);
  });

  it('exec into a container that is not running fails with 255', async () => {
    await env.bargeOk(['create', '--name', 'ex-created', 'busybox', 'sleep', '600']);
    const r = await env.barge(['exec', 'ex-created', 'true']);
    expectCode(r, 255);
    expect(r.stderr).toBe('Error: can only create exec sessions on running containers: container state improper\n');
    await env.bargeOk(['rm', 'ex-created']);
  });
});
