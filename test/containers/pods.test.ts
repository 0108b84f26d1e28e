// Podman's pods, checked against Podman 4.3's behaviour: an infra container (from a pause image
// barge builds from the host's catatonit) holds the namespaces the pod's containers join; pod
// create/ps/inspect/start/stop/kill/rm/prune, run --pod (new:), ps --pod, the refusals, and a
// store that `system check` finds consistent afterwards.
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOTLESS, type Env } from '../helpers.ts';
import { expectStoreClean } from '../store/store-helpers.ts';
import { expectCode, podSuite } from './lib.ts';

const suite = podSuite();
let env: Env;
beforeAll(() => {
  env = suite();
});

const lines = (s: string): string[] => s.split('\n').filter((l) => l.trim() !== '');

async function podStatus(pod: string): Promise<string> {
  return env.bargeOk(['pod', 'inspect', pod, '--format', '{{.State}}']);
}

describe('pod create, ps, inspect', () => {
  it('makes a pod with an infra container from a locally built pause image', async () => {
    const id = await env.bargeOk(['pod', 'create', '--name', 'p-info', '--label', 'team=web', '--share', 'net,uts']);
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    const info = JSON.parse(await env.bargeOk(['pod', 'inspect', 'p-info'])) as Record<string, unknown>;
    expect(info).toMatchObject({
      Id: id, Name: 'p-info', State: 'Created', Hostname: '', Labels: { team: 'web' }, CreateInfra: true, SharedNamespaces: ['net', 'uts'], NumContainers: 1,
    });
    const infraId = info.InfraContainerID as string;
    expect(info.Containers).toEqual([{ Id: infraId, Name: `${id.slice(0, 12)}-infra`, State: 'created' }]);
    // The pause image: catatonit alone, run as `catatonit -P`.
    expect(await env.bargeOk(['images', '--format', '{{.Repository}}'])).toContain('localhost/podman-pause');
    expect(await env.bargeOk(['inspect', infraId, '--format', '{{.Path}} {{.Args}} {{.IsInfra}} {{.Pod}}'])).toBe(`/catatonit [-P] true ${id}`);

    const table = lines(await env.bargeOk(['pod', 'ps', '--filter', 'name=^p-info$']));
    expect(table[0]).toMatch(/^POD ID\s+NAME\s+STATUS\s+CREATED\s+INFRA ID\s+# OF CONTAINERS$/);
    expect(table[1]).toMatch(new RegExp(`^${id.slice(0, 12)}\\s+p-info\\s+Created\\s+.+ago\\s+${infraId.slice(0, 12)}\\s+1$`));
    expect(await env.bargeOk(['pod', 'ps', '--filter', 'label=team=web', '--format', '{{.Name}} {{.Status}} {{.InfraID}} {{.NumberOfContainers}} {{.Labels}}']))
      .toBe(`p-info Created ${infraId.slice(0, 12)} 1 map[team:web]`);
    expect(await env.bargeOk(['pod', 'ps', '-q', '--no-trunc', '--filter', `id=${id.slice(0, 8)}`])).toBe(id);
    expect(await env.bargeOk(['pod', 'ps', '--filter', 'name=p-info', '--ctr-names', '--ctr-status', '--format', '{{.ContainerNames}} {{.ContainerStatuses}}']))
      .toBe(`${id.slice(0, 12)}-infra created`);
    expect(await env.bargeOk(['pod', 'inspect', 'p-info', '--format', '{{.Name}} {{.NumContainers}} {{.CreateInfra}}'])).toBe('p-info 1 true');
    expect((await env.barge(['pod', 'exists', 'p-info'])).code).toBe(0);
    expect((await env.barge(['pod', 'exists', 'no-such-pod'])).code).toBe(1);
    // Pods and containers share one namespace of names, as in Podman.
    const clash = await env.barge(['create', '--name', 'p-info', 'busybox', 'true']);
    expectCode(clash, 125);
    expect(clash.stderr).toContain('pod already exists');
    expectCode(await env.barge(['pod', 'create', '--name', `${id.slice(0, 12)}-infra`]), 125);
    // The infra container goes only with its pod.
    const rmInfra = await env.barge(['rm', '-f', infraId]);
    expectCode(rmInfra, 125);
    expect(rmInfra.stderr).toContain(`is the infra container of pod ${id} and cannot be removed without removing the pod`);
    expect(await env.bargeOk(['pod', 'rm', 'p-info'])).toBe(id);
    expect(lines(await env.bargeOk(['ps', '-aq', '--no-trunc']))).not.toContain(infraId);
  });

  it('writes --pod-id-file, and --infra=false makes a pod without an infra container', async () => {
    const idFile = join(env.tmp, 'pod-id');
    const id = await env.bargeOk(['pod', 'create', '--infra=false', '--name', 'p-bare', '--pod-id-file', idFile]);
    expect(await env.bargeOk(['pod', 'inspect', 'p-bare', '--format', '{{.CreateInfra}} {{.NumContainers}} {{.State}}'])).toBe('false 0 Created');
    const start = await env.barge(['pod', 'start', 'p-bare']);
    expectCode(start, 125);
    expect(start.stderr).toContain('cannot start pod');
    // A container joins it without sharing anything.
    expect(await env.bargeOk(['run', '--rm', '--pod-id-file', idFile, 'busybox', 'hostname'])).not.toBe('p-bare');
    expectCode(await env.barge(['pod', 'create', '--pod-id-file', idFile]), 125);
    expect(await env.bargeOk(['pod', 'rm', id])).toBe(id);
  });
});

describe('containers of a pod', () => {
  it('share the network and UTS namespaces of the infra container', async () => {
    await env.bargeOk(['pod', 'create', '--name', 'p-net']);
    await writeFile(join(env.tmp, 'index.html'), 'hello from the pod\n');
    await env.bargeOk(['run', '-d', '--pod', 'p-net', '--name', 'p-web', '-v', `${env.tmp}:/srv:ro`, 'busybox', 'httpd', '-f', '-p', '127.0.0.1:8080', '-h', '/srv']);
    expect(await podStatus('p-net')).toBe('Running');
    // The other container reaches the server on the pod's loopback, and has the pod's hostname.
    const out = await env.bargeOk(['run', '--rm', '--pod', 'p-net', 'busybox', 'sh', '-c', 'hostname; wget -q -O - http://127.0.0.1:8080/index.html']);
    expect(lines(out)).toEqual(['p-net', 'hello from the pod']);
    const netOf = (args: string[]): Promise<string> => env.bargeOk(['run', '--rm', ...args, 'busybox', 'readlink', '/proc/self/ns/net']);
    const [a, b, outside] = await Promise.all([netOf(['--pod', 'p-net']), netOf(['--pod', 'p-net']), netOf([])]);
    expect(a).toBe(b);
    expect(outside).not.toBe(a);
    // Outside the pod nothing listens on 127.0.0.1:8080.
    expect((await env.barge(['run', '--rm', 'busybox', 'wget', '-q', '-O', '-', 'http://127.0.0.1:8080/index.html'])).code).not.toBe(0);

    const podId = await env.bargeOk(['pod', 'inspect', 'p-net', '--format', '{{.Id}}']);
    expect(await env.bargeOk(['inspect', 'p-web', '--format', '{{.Pod}} {{.IsInfra}}'])).toBe(`${podId} false`);
    expect(await env.bargeOk(['ps', '--filter', 'pod=p-net', '--format', '{{.Names}}'])).toContain('p-web');
    expect(await env.bargeOk(['ps', '--filter', `pod=${podId.slice(0, 12)}`, '--filter', 'name=p-web', '--format', '{{.Names}} {{.Pod}}'])).toBe(`p-web ${podId.slice(0, 12)}`);
    const table = lines(await env.bargeOk(['ps', '--pod', '--filter', 'name=p-web']));
    expect(table[0]).toMatch(/NAMES\s+POD ID\s+PODNAME$/);
    expect(table[1]).toMatch(new RegExp(`p-web\\s+${podId.slice(0, 12)}\\s+p-net$`));
    expect(await env.bargeOk(['pod', 'ps', '--filter', 'name=p-net', '--format', '{{.NumberOfContainers}} {{.Status}}'])).toBe('2 Running');
  });

  it('refuse what the pod decides: ports, networks and the hostname of shared namespaces', async () => {
    for (const args of [['-p', '8081:80'], ['--network', 'none'], ['--hostname', 'other']]) {
      const r = await env.barge(['create', '--pod', 'p-net', ...args, 'busybox', 'true']);
      expectCode(r, 125, args);
      expect(r.stderr).toContain('invalid config provided');
    }
    const missing = await env.barge(['create', '--pod', 'no-such-pod', 'busybox', 'true']);
    expectCode(missing, 125);
    expect(missing.stderr).toContain('no pod with name or ID no-such-pod found');
  });

  it('stops members before the infra container, and starts the infra container with a member', async () => {
    const stop = await env.bargeOk(['pod', 'stop', '-t', '0', 'p-net']);
    expect(stop).toMatch(/^[0-9a-f]{64}$/);
    expect(await podStatus('p-net')).toBe('Exited');
    const states = JSON.parse(await env.bargeOk(['pod', 'inspect', 'p-net'])) as { Containers: { State: string }[] };
    expect(states.Containers.map((c) => c.State)).toEqual(['exited', 'exited']);
    // Starting the member alone brings the infra container up first, whose namespaces it joins.
    await env.bargeOk(['start', 'p-web']);
    expect(await podStatus('p-net')).toBe('Running');
    expect(await env.bargeOk(['run', '--rm', '--pod', 'p-net', 'busybox', 'wget', '-q', '-O', '-', 'http://127.0.0.1:8080/index.html'])).toBe('hello from the pod');
    // A member that has exited makes the pod degraded.
    await env.bargeOk(['run', '--pod', 'p-net', '--name', 'p-once', 'busybox', 'true']);
    expect(await podStatus('p-net')).toBe('Degraded');
    // Removed, so that the restart below has only long-running containers to bring up.
    await env.bargeOk(['rm', 'p-once']);
    await env.bargeOk(['pod', 'kill', 'p-net']);
    expect(await env.bargeOk(['pod', 'ps', '--filter', 'name=p-net', '--format', '{{.Status}}'])).toBe('Exited');
    await env.bargeOk(['pod', 'restart', 'p-net']);
    expect(await podStatus('p-net')).toBe('Running');
    expect(await env.bargeOk(['pod', 'ps', '--filter', 'status=running', '--filter', 'name=p-net', '-q'])).toMatch(/^[0-9a-f]{12}$/);
  });

  it('removes a pod with its containers, running ones only with -f', async () => {
    const podId = await env.bargeOk(['pod', 'inspect', 'p-net', '--format', '{{.Id}}']);
    const refused = await env.barge(['pod', 'rm', 'p-net']);
    expectCode(refused, 125);
    expect(refused.stderr).toContain('running or paused containers cannot be removed without force');
    expect(await podStatus('p-net')).toBe('Running');
    expect(await env.bargeOk(['pod', 'rm', '-f', '-t', '0', 'p-net'])).toBe(podId);
    expect(await env.bargeOk(['ps', '-a', '--filter', 'name=p-', '--format', '{{.Names}}'])).toBe('');
    // As Podman: a missing pod makes pod rm exit 1 (pod stop: 125).
    expectCode(await env.barge(['pod', 'rm', 'p-net']), 1);
    expectCode(await env.barge(['pod', 'stop', 'p-net']), 125);
    expect(await env.bargeOk(['pod', 'stop', '-i', 'p-net'])).toBe('');
    expect(await env.bargeOk(['pod', 'rm', '-i', 'p-net'])).toBe('');
    const events = lines(await env.bargeOk(['events', '--stream=false', '--filter', 'type=pod', '--filter', `pod=${podId}`, '--format', '{{.Status}}']));
    expect(events[0]).toBe('create');
    expect(events).toContain('stop');
    expect(events).toContain('start');
    expect(events.at(-1)).toBe('remove');
  });

  it('run --pod new:NAME makes the pod first; pod prune removes pods with nothing running', async () => {
    await env.bargeOk(['run', '-d', '--pod', 'new:p-new', '--name', 'p-new-ctr', 'busybox', 'sleep', '300']);
    expect(await env.bargeOk(['pod', 'ps', '--filter', 'name=p-new', '--format', '{{.Name}} {{.Status}} {{.NumberOfContainers}}'])).toBe('p-new Running 2');
    expect(await env.bargeOk(['exec', 'p-new-ctr', 'hostname'])).toBe('p-new');
    // pod top: the processes of every running container of the pod, each the pid 1 of its own pid namespace.
    const top = lines(await env.bargeOk(['pod', 'top', 'p-new', 'pid,args']));
    expect(top[0]).toMatch(/^PID\s+COMMAND$/);
    expect(top.slice(1).map((l) => l.replace(/\s+/, ' ')).sort()).toEqual(['1 /catatonit -P', '1 sleep 300']);
    await env.bargeOk(['pod', 'create', '--name', 'p-idle']);
    const pruned = lines(await env.bargeOk(['pod', 'prune', '-f']));
    expect(pruned).toHaveLength(1);
    expect((await env.barge(['pod', 'exists', 'p-idle'])).code).toBe(1);
    expect((await env.barge(['pod', 'exists', 'p-new'])).code).toBe(0);
    // A container that cannot be made leaves no pod behind.
    expectCode(await env.barge(['create', '--pod', 'new:p-failed', 'no-such-image-here', 'true']), 125);
    expect((await env.barge(['pod', 'exists', 'p-failed'])).code).toBe(1);
    await env.bargeOk(['pod', 'stop', '-t', '0', 'p-new']);
    expect(lines(await env.bargeOk(['pod', 'prune', '-f']))).toHaveLength(1);
    expect(await env.bargeOk(['ps', '-a', '--filter', 'name=p-new', '-q'])).toBe('');
  });
});

describe('concurrent barge processes', () => {
  it('never leave a container in a removed pod when run --pod races pod rm', async () => {
    const podId = await env.bargeOk(['pod', 'create', '--name', 'p-race']);
    const creates = [1, 2, 3].map((i) => env.barge(['create', '--pod', 'p-race', '--name', `p-race-${i}`, 'busybox', 'true']));
    const rm = env.barge(['pod', 'rm', '-f', '-t', '0', 'p-race']);
    const results = await Promise.all(creates);
    expectCode(await rm, 0);
    // Each create either finished before the removal (and went with the pod) or found the pod gone.
    for (const r of results) {
      if (r.code !== 0) expect(r.stderr).toContain('no pod with name or ID');
    }
    expect((await env.barge(['pod', 'exists', 'p-race'])).code).toBe(1);
    expect(lines(await env.bargeOk(['ps', '-a', '--no-trunc', '--format', '{{.Pod}}']))).not.toContain(podId);
    expect(await env.bargeOk(['ps', '-a', '--filter', 'name=p-race', '-q'])).toBe('');
    await expectStoreClean(env);
  });
});

describe('system check', () => {
  it('finds a pod whose infra container is gone, and --repair removes it with its containers', async () => {
    const podId = await env.bargeOk(['pod', 'create', '--name', 'p-check']);
    const infraId = await env.bargeOk(['pod', 'inspect', 'p-check', '--format', '{{.InfraContainerID}}']);
    await env.bargeOk(['create', '--pod', 'p-check', '--name', 'p-check-ctr', 'busybox', 'true']);
    // The infra container's directory lost (a disk repair, a hand's rm): the pod can never run again.
    await rm(join(env.root, 'containers', infraId), { recursive: true, force: true });
    const found = await env.barge(['system', 'check']);
    expectCode(found, 1);
    expect(found.stdout).toContain(`container ${podId.slice(0, 12)}-infra is missing its layers or directory`);
    expect(await env.bargeOk(['system', 'check', '--repair'])).toContain('remove the container and its pod p-check with the pod\'s containers');
    await expectStoreClean(env);
    expect((await env.barge(['pod', 'exists', podId])).code).toBe(1);
    expect((await env.barge(['container', 'exists', 'p-check-ctr'])).code).toBe(1);
  });
});

describe('published ports of a pod', () => {
  it('forwards a port of the pod, through its infra container\'s slirp4netns, to a member', async () => {
    await env.bargeOk(['pod', 'create', '--name', 'p-port', '-p', '127.0.0.1:18391:8080']);
    expect(await env.bargeOk(['pod', 'inspect', 'p-port', '--format', '{{.InfraConfig.PortBindings}}'])).toBe('map[8080/tcp:[map[HostIp:127.0.0.1 HostPort:18391]]]');
    await env.bargeOk(['run', '-d', '--pod', 'p-port', 'busybox', 'httpd', '-f', '-p', '8080', '-h', '/etc']);
    let body = '';
    for (let i = 0; i < 50 && body === ''; i++) {
      body = await fetch('http://127.0.0.1:18391/hostname').then((r) => r.text(), () => '');
      if (body === '') await new Promise((r) => setTimeout(r, 100));
    }
    expect(body).toBe('p-port\n');
    await env.bargeOk(['pod', 'rm', '-f', '-t', '0', 'p-port']);
  });
});

describe('refusals', () => {
  it('refuses what barge does not implement of Podman\'s pods, with 125', async () => {
    for (const args of [
      ['pod', 'stats'], ['pod', 'logs', 'x'], ['pod', 'clone', 'x'], ['pod', 'pause', 'x'],
      ['pod', 'create', '--infra-conmon-pidfile', '/tmp/x'], ['pod', 'create', '--share', 'user'], ['pod', 'create', '--share', 'bogus'],
      ['pod', 'create', '--infra=false', '--hostname', 'h'], ['pod', 'create', '--share', 'uts', '-p', '8080:80'], ['pod', 'ps', '--ns'],
    ]) {
      const r = await env.barge(args);
      expectCode(r, 125, args);
      expect(r.stderr).not.toBe('');
    }
    expect((await env.barge(['pod', 'stats'])).stderr).toContain('not supported yet');
    await env.bargeOk(['run', '-d', '--pod', 'new:p-ck', '--name', 'p-ck-ctr', 'busybox', 'sleep', '300']);
    const ck = await env.barge(['container', 'checkpoint', 'p-ck-ctr']);
    expectCode(ck, 125);
    // Rootless, barge refuses every checkpoint first (CRIU needs root), as Podman does.
    expect(ck.stderr).toContain(ROOTLESS ? 'checkpointing a container requires root' : 'checkpointing containers of pods is not supported yet');
    await env.bargeOk(['pod', 'rm', '-f', '-t', '0', 'p-ck']);
    expect(await env.bargeOk(['pod', 'ps', '-q'])).toBe('');
  });
});
