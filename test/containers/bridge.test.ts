// Bridge networks (root only: rootless barge keeps slirp4netns, test/rootless/bridge.test.ts):
// `network create/ls/inspect/exists/rm/prune`, containers on a user network reaching each other by
// address and by name (aardvark-dns), --ip/--mac-address/--network-alias, -p on a bridge, address
// leases given back, --internal, and nothing of netavark's left once the network is gone.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Env } from '../helpers.ts';
import { containerSuite, expectCode, freePort, until } from './lib.ts';

const suite = containerSuite();
let env: Env;
beforeAll(() => {
  env = suite();
});

// Names and subnets of this run only: other stores and Podman keep theirs.
const tag = `bt${process.pid}`;
const octet = 10 + (process.pid % 200);
const subnet = (n: number): string => `10.${231 + n}.${octet}.0`;
const made: string[] = [];

async function createNetwork(name: string, ...flags: string[]): Promise<string> {
  made.push(name);
  return env.bargeOk(['network', 'create', ...flags, name]);
}

afterAll(async () => {
  // Also after a failure: the containers go with their networks.
  if (env && made.length > 0) await env.barge(['network', 'rm', '-f', '-t', '0', ...made]);
});

const HTTPD = (text: string): string[] => ['sh', '-c', `mkdir -p /www && echo ${text} > /www/index.html && exec httpd -f -p 80 -h /www`];

/** Fetches over a short-lived client container on `net`; its output (wget's body). */
function wgetFrom(net: string, url: string): Promise<string> {
  return env.bargeOk(['run', '--rm', '--network', net, 'busybox', 'wget', '-q', '-O', '-', url]);
}

/** iptables-save's rules mentioning `text` (netavark's chains and NAT rules for a subnet). */
function firewallRules(text: string): string[] {
  return execFileSync('iptables-save', { encoding: 'utf8' }).split('\n').filter((l) => l.includes(text));
}

function bridgeOf(info: string): string {
  return (JSON.parse(info) as { network_interface: string }[])[0]!.network_interface;
}

describe('network create, ls, inspect, exists', () => {
  const name = `${tag}-a`;
  it('creates a bridge network in Podman\'s JSON and lists it beside the default one', async () => {
    expect(await createNetwork(name, '--subnet', `${subnet(0)}/24`, '--label', 'team=qa', '--opt', 'mtu=1400')).toBe(name);
    const [net] = JSON.parse(await env.bargeOk(['network', 'inspect', name])) as Record<string, unknown>[];
    expect(net).toMatchObject({
      name, driver: 'bridge', subnets: [{ subnet: `${subnet(0)}/24`, gateway: subnet(0).replace(/0$/, '1') }],
      ipv6_enabled: false, internal: false, dns_enabled: true, labels: { team: 'qa' }, options: { mtu: '1400' }, ipam_options: { driver: 'host-local' },
    });
    expect(net?.network_interface).toMatch(/^barge[1-9]\d*$/);
    expect(net?.id).toMatch(/^[0-9a-f]{64}$/);
    expect((await env.bargeOk(['network', 'ls', '-q'])).split('\n')).toEqual(expect.arrayContaining([name, 'podman']));
    const table = (await env.bargeOk(['network', 'ls', '--filter', `name=^${name}$`])).split('\n');
    expect(table[0]).toMatch(/^NETWORK ID +NAME +DRIVER$/);
    expect(table[1]).toMatch(new RegExp(`^${String(net?.id).slice(0, 12)} +${name} +bridge$`));
    expect(table).toHaveLength(2);
    expect(await env.bargeOk(['network', 'ls', '--filter', 'label=team=qa', '--format', '{{.Name}} {{.Labels}}'])).toBe(`${name} team=qa`);
    expect(await env.bargeOk(['network', 'inspect', '--format', '{{.DNSEnabled}} {{.Internal}} {{range .Subnets}}{{.Subnet}}{{end}}', name])).toBe(`true false ${subnet(0)}/24`);
    expect((await env.barge(['network', 'exists', name])).code).toBe(0);
    expect((await env.barge(['network', 'exists', `${tag}-none`])).code).toBe(1);
  });

  it('refuses what Podman refuses, with its messages', async () => {
    const dup = await env.barge(['network', 'create', name]);
    expectCode(dup, 125);
    expect(dup.stderr).toContain(`network name ${name} already used: network already exists`);
    const overlap = await env.barge(['network', 'create', '--subnet', `${subnet(0)}/25`, `${tag}-b`]);
    expectCode(overlap, 125);
    expect(overlap.stderr).toContain('is already used on the host or by another config');
    const badName = await env.barge(['network', 'create', 'bad/name']);
    expectCode(badName, 125);
    expect(badName.stderr).toContain('names must match');
    const driver = await env.barge(['network', 'create', '-d', 'macvlan', `${tag}-c`]);
    expectCode(driver, 125);
    expect(driver.stderr).toContain('unsupported driver macvlan');
    const opt = await env.barge(['network', 'create', '--opt', 'bogus=1', `${tag}-c`]);
    expectCode(opt, 125);
    expect(opt.stderr).toContain('unsupported bridge network option bogus');
    const missing = await env.barge(['network', 'inspect', `${tag}-none`]);
    expectCode(missing, 125);
    expect(missing.stderr).toContain(`unable to find network with name or ID ${tag}-none: network not found`);
    const dflt = await env.barge(['network', 'rm', 'podman']);
    expectCode(dflt, 125);
    expect(dflt.stderr).toContain('default network podman cannot be removed');
    const run = await env.barge(['run', '--rm', '--network', `${tag}-none`, 'busybox', 'true']);
    expectCode(run, 125);
    expect(run.stderr).toContain('network not found');
    const twoIps = await env.barge(['create', '--network', `${name},podman`, '--ip', '10.1.1.1', 'busybox', 'true']);
    expectCode(twoIps, 125);
    expect(twoIps.stderr).toContain('--ip can only be set for a single network');
    const noBridge = await env.barge(['create', '--network', 'private', '--mac-address', '02:00:00:00:00:01', 'busybox', 'true']);
    expectCode(noBridge, 125);
    expect(noBridge.stderr).toContain('need a bridge network');
  });
});

describe('containers on a user network', () => {
  const net = `${tag}-web`;
  const ip = `${subnet(1).replace(/0$/, '')}42`;
  const mac = '02:42:0a:e7:00:2a';
  let port = 0;

  it('reach each other by address, by name and by alias; --ip and --mac-address are honoured', async () => {
    await createNetwork(net, '--subnet', `${subnet(1)}/24`);
    port = await freePort();
    await env.bargeOk(['run', '-d', '--name', 'web', '--network', net, '--ip', ip, '--mac-address', mac, '--network-alias', 'www', '-p', `127.0.0.1:${port}:80`, 'busybox', ...HTTPD('from-web')]);
    const settings = JSON.parse(await env.bargeOk(['inspect', '--format', '{{json .NetworkSettings.Networks}}', 'web'])) as Record<string, Record<string, unknown>>;
    expect(settings[net]).toMatchObject({ IPAddress: ip, MacAddress: mac, Gateway: subnet(1).replace(/0$/, '1'), IPPrefixLen: 24, NetworkID: net });
    expect(settings[net]?.Aliases).toEqual(expect.arrayContaining(['www']));
    expect(await env.bargeOk(['exec', 'web', 'cat', '/sys/class/net/eth0/address'])).toBe(mac);
    expect(await env.bargeOk(['inspect', '--format', '{{.HostConfig.NetworkMode}}', 'web'])).toBe('bridge');
    // aardvark-dns answers at the gateway; the host's resolvers come after it.
    expect((await env.bargeOk(['exec', 'web', 'cat', '/etc/resolv.conf'])).split('\n').slice(0, 2)).toEqual(['search dns.podman', `nameserver ${subnet(1).replace(/0$/, '1')}`]);
    expect(await env.bargeOk(['exec', 'web', 'cat', '/etc/hosts'])).toContain(`${ip}\t`);
    await until('httpd to listen', async () => (await env.barge(['exec', 'web', 'netstat', '-ltn'])).stdout.includes(':80 '));
    expect(await wgetFrom(net, `http://${ip}/`)).toBe('from-web');
    expect(await wgetFrom(net, 'http://web/')).toBe('from-web');
    expect(await wgetFrom(net, 'http://www/')).toBe('from-web');
  });

  it('publishes -p 127.0.0.1:PORT:80 through netavark, shown by port and ps', async () => {
    const r = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(5000) });
    expect(await r.text()).toBe('from-web\n');
    expect(await env.bargeOk(['port', 'web'])).toBe(`80/tcp -> 127.0.0.1:${port}`);
    expect(await env.bargeOk(['ps', '--filter', `network=${net}`, '--format', '{{.Names}} {{.Ports}} {{.Networks}}'])).toBe(`web 127.0.0.1:${port}->80/tcp ${net}`);
  });

  it('refuses to remove a network in use without -f (exit 2), and a taken --ip', async () => {
    const rm = await env.barge(['network', 'rm', net]);
    expectCode(rm, 2);
    expect(rm.stderr).toContain(`"${net}" has associated containers with it. Use -f to forcibly delete containers and pods: network is being used`);
    const taken = await env.barge(['run', '--rm', '--network', net, '--ip', ip, 'busybox', 'true']);
    expectCode(taken, 125);
    expect(taken.stderr).toContain(`requested ip address ${ip} is already allocated to container ID`);
  });

  it('rm -f takes the containers along; nothing of the bridge, its veths or its rules is left', async () => {
    const bridge = bridgeOf(await env.bargeOk(['network', 'inspect', net]));
    expect(existsSync(`/sys/class/net/${bridge}`)).toBe(true);
    expect(firewallRules(subnet(1)).length).toBeGreaterThan(0);
    expect(await env.bargeOk(['network', 'rm', '-f', '-t', '0', net])).toBe(net);
    expect((await env.barge(['container', 'exists', 'web'])).code).toBe(1);
    expect(existsSync(`/sys/class/net/${bridge}`)).toBe(false);
    expect(readdirSync('/sys/class/net').filter((l) => existsSync(`/sys/class/net/${l}/master`) && l.startsWith('veth') && execFileSync('readlink', [`/sys/class/net/${l}/master`], { encoding: 'utf8' }).trim().endsWith(`/${bridge}`))).toEqual([]);
    expect(firewallRules(subnet(1))).toEqual([]);
    expect(firewallRules(`:${port}`)).toEqual([]);
    expect(await env.bargeOk(['system', 'check'])).toBe('No problems found');
  });
});

describe('address leases', () => {
  const net = `${tag}-small`;

  it('are given back: a /29 (5 addresses) serves many containers one after another, and says when it is full', async () => {
    await createNetwork(net, '--subnet', `${subnet(2)}/29`);
    for (let i = 0; i < 8; i++) await env.bargeOk(['run', '--rm', '--network', net, 'busybox', 'true']);
    for (let i = 0; i < 5; i++) await env.bargeOk(['run', '-d', '--name', `lease${i}`, '--network', net, 'busybox', 'sleep', '600']);
    // Go templates cannot name a key with '-': read them through json instead.
    const ips = await Promise.all([0, 1, 2, 3, 4].map(async (i) => (JSON.parse(await env.bargeOk(['inspect', '--format', '{{json .NetworkSettings.Networks}}', `lease${i}`])) as Record<string, { IPAddress: string }>)[net]?.IPAddress));
    expect(new Set(ips).size).toBe(5);
    for (const ip of ips) expect(ip).toMatch(new RegExp(`^${subnet(2).replace(/0$/, '').replaceAll('.', '\\.')}[2-6]$`));
    const full = await env.barge(['run', '--rm', '--network', net, 'busybox', 'true']);
    expectCode(full, 125);
    expect(full.stderr).toContain('failed to find free IP');
    await env.bargeOk(['rm', '-f', '-t', '0', 'lease0']);
    await env.bargeOk(['run', '--rm', '--network', net, 'busybox', 'true']);
  });

  it('of a container whose conmon was killed are found by system check and given back by --repair', async () => {
    const [conmon, pid] = (await env.bargeOk(['inspect', '--format', '{{.State.ConmonPid}} {{.State.Pid}}', 'lease1'])).split(' ').map(Number);
    process.kill(conmon!, 'SIGKILL');
    process.kill(pid!, 'SIGKILL');
    await until('lease1 to be seen exited', async () => (await env.bargeOk(['inspect', '--format', '{{.State.Status}}', 'lease1'])) === 'exited');
    const check = await env.barge(['system', 'check']);
    expectCode(check, 1);
    expect(check.stdout).toContain('container lease1 is not running but holds 1 network address(es)');
    await env.bargeOk(['system', 'check', '--repair']);
    expect(await env.bargeOk(['system', 'check'])).toBe('No problems found');
    await env.bargeOk(['run', '--rm', '--network', net, 'busybox', 'true']);
  });

  it('network prune removes the unused networks only, never the default', async () => {
    const unused = `${tag}-unused`;
    await createNetwork(unused, '--subnet', `${subnet(3)}/24`);
    const pruned = (await env.bargeOk(['network', 'prune', '-f'])).split('\n');
    expect(pruned).toContain(unused);
    expect(pruned).not.toContain(net);
    expect(pruned).not.toContain('podman');
    expect((await env.barge(['network', 'exists', net])).code).toBe(0);
    expect((await env.barge(['network', 'exists', unused])).code).toBe(1);
  });
});

describe('--internal and the default network', () => {
  it('an --internal network has no route out', async () => {
    const net = `${tag}-int`;
    await createNetwork(net, '--internal', '--subnet', `${subnet(4)}/24`);
    const routes = await env.bargeOk(['run', '--rm', '--network', net, 'busybox', 'ip', 'route']);
    expect(routes).toContain(`${subnet(4)}/24 dev eth0`);
    expect(routes).not.toContain('default');
    // The kernel's answer, no packet sent.
    const out = await env.barge(['run', '--rm', '--network', net, 'busybox', 'ip', 'route', 'get', '192.0.2.1']);
    expect(out.code).not.toBe(0);
    expect(out.stderr).toMatch(/unreachable/i);
  });

  it('--network bridge is the default network podman, shown at the top of NetworkSettings as Podman does', async () => {
    await env.bargeOk(['run', '-d', '--name', 'dflt', '--network', 'bridge', 'busybox', 'sleep', '600']);
    const s = JSON.parse(await env.bargeOk(['inspect', '--format', '{{json .NetworkSettings}}', 'dflt'])) as { IPAddress: string; Gateway: string; Networks: Record<string, { IPAddress: string }> };
    expect(s.IPAddress).toMatch(/^10\.87\.\d+\.\d+$/);
    expect(s.Gateway).toBe('10.87.0.1');
    expect(s.Networks.podman?.IPAddress).toBe(s.IPAddress);
    await env.bargeOk(['rm', '-f', '-t', '0', 'dflt']);
    expect(await env.bargeOk(['system', 'check'])).toBe('No problems found');
  });

  it('containers.conf\'s netns = "bridge" makes it the default, as Podman\'s root default', async () => {
    const conf = join(env.tmp, 'containers.conf');
    writeFileSync(conf, '[containers]\nnetns = "bridge"\n');
    const id = await env.bargeOk(['create', 'busybox', 'true'], { env: { CONTAINERS_CONF: conf } });
    expect(await env.bargeOk(['inspect', '--format', '{{.HostConfig.NetworkMode}} {{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}', id])).toBe('bridge podman');
    // Without it, barge's own default: loopback only.
    const plain = await env.bargeOk(['create', 'busybox', 'true']);
    expect(await env.bargeOk(['inspect', '--format', '{{.HostConfig.NetworkMode}}', plain])).toBe('none');
    await env.bargeOk(['rm', id, plain]);
  });
});

describe('a pod on a user network', () => {
  it('puts its infra container on the bridge: members share its address, its hosts and its DNS, and serve the network', async () => {
    const net = `${tag}-pod`;
    const pod = `${tag}-p`;
    await createNetwork(net, '--subnet', `${subnet(5)}/24`);
    await env.bargeOk(['pod', 'create', '--name', pod, '--network', net]);
    // The first member starts the infra container, which holds the pod's address.
    const seen = await env.bargeOk(['run', '--rm', '--pod', pod, 'busybox', 'sh', '-c', 'ip -4 -o addr show eth0; cat /etc/resolv.conf /etc/hosts']);
    const infra = (JSON.parse(await env.bargeOk(['pod', 'inspect', pod])) as { InfraContainerID: string }).InfraContainerID;
    const networks = JSON.parse(await env.bargeOk(['inspect', '--format', '{{json .NetworkSettings.Networks}}', infra])) as Record<string, { IPAddress: string }>;
    const ip = networks[net]!.IPAddress;
    expect(ip.startsWith(subnet(5).replace(/0$/, ''))).toBe(true);
    expect(seen).toContain(`inet ${ip}/24`);
    expect(seen).toContain(`nameserver ${subnet(5).replace(/0$/, '1')}`);
    expect(seen).toMatch(new RegExp(`^${ip.replace(/\./g, '\\.')}\\t${pod}\\b`, 'm'));
    await env.bargeOk(['run', '-d', '--pod', pod, 'busybox', ...HTTPD('in-the-pod')]);
    await until('the pod\'s httpd', async () => (await env.barge(['run', '--rm', '--network', net, 'busybox', 'wget', '-q', '-O', '-', `http://${ip}/`])).stdout === 'in-the-pod\n');
    expect(await wgetFrom(net, `http://${ip}/`)).toBe('in-the-pod');
    await env.bargeOk(['pod', 'rm', '-f', '-t', '0', pod]);
    expect(await env.bargeOk(['system', 'check'])).toBe('No problems found');
  });
});
