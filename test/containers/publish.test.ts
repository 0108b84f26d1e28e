// -p/--publish and --network slirp4netns: a busybox httpd reached from this process through a
// published port, `port`, ps's PORTS, inspect, and no slirp4netns left once the container is gone.
import { execFileSync } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Env } from '../helpers.ts';
import { containerSuite, expectCode, freePort, until } from './lib.ts';

const suite = containerSuite();
let env: Env;
beforeAll(() => {
  env = suite();
});

/** The pids of the slirp4netns processes serving this store's containers (their API sockets are under its runroot). */
function slirpsOf(e: Env): string[] {
  try {
    return execFileSync('pgrep', ['-f', `slirp4netns .*${e.runroot}`], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

const HTTPD = ['sh', '-c', 'mkdir -p /www && echo hello from barge > /www/index.html && exec httpd -f -p 80 -h /www'];

async function fetchBody(port: number): Promise<string> {
  let body = '';
  await until('httpd to answer', async () => {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) });
      body = await r.text();
      return r.ok;
    } catch {
      return false;
    }
  });
  return body;
}

describe('run -d -p', () => {
  let port = 0;
  it('serves the container\'s httpd on the published host port', async () => {
    port = await freePort();
    await env.bargeOk(['run', '-d', '--name', 'web', '-p', `${port}:80`, '-p', '127.0.0.1::81/udp', 'busybox', ...HTTPD]);
    expect(await fetchBody(port)).toBe('hello from barge\n');
    expect(slirpsOf(env)).toHaveLength(1);
  });

  it('port, ps and inspect show the mappings as Podman does', async () => {
    const lines = (await env.bargeOk(['port', 'web'])).split('\n');
    expect(lines[0]).toBe(`80/tcp -> 0.0.0.0:${port}`);
    expect(lines[1]).toMatch(/^81\/udp -> 127\.0\.0\.1:\d+$/);
    expect(await env.bargeOk(['port', 'web', '80'])).toBe(`0.0.0.0:${port}`);
    const missing = await env.barge(['port', 'web', '99']);
    expectCode(missing, 125);
    expect(missing.stderr).toContain('failed to find published port "99"');
    const id = await env.bargeOk(['inspect', '--format', '{{.Id}}', 'web']);
    expect((await env.bargeOk(['port', '-a'])).split('\n')[0]).toBe(`${id.slice(0, 12)}\t80/tcp -> 0.0.0.0:${port}`);
    expect(await env.bargeOk(['ps', '--format', '{{.Ports}}'])).toMatch(new RegExp(`^0\\.0\\.0\\.0:${port}->80/tcp, 127\\.0\\.0\\.1:\\d+->81/udp$`));
    const ins = JSON.parse(await env.bargeOk(['inspect', '--format', '{{json .HostConfig.PortBindings}}', 'web'])) as Record<string, { HostIp: string; HostPort: string }[]>;
    expect(ins['80/tcp']).toEqual([{ HostIp: '', HostPort: String(port) }]);
    expect(ins['81/udp']?.[0]?.HostIp).toBe('127.0.0.1');
    expect(await env.bargeOk(['inspect', '--format', '{{.HostConfig.NetworkMode}}', 'web'])).toBe('slirp4netns');
    // The container resolves names through slirp4netns's DNS address.
    expect(await env.bargeOk(['exec', 'web', 'cat', '/etc/resolv.conf'])).toBe('nameserver 10.0.2.3');
  });

  it('stop ends its slirp4netns; start brings the port back; rm leaves nothing running', async () => {
    await env.bargeOk(['stop', '-t', '0', 'web']);
    expect(slirpsOf(env)).toEqual([]);
    expect(await env.bargeOk(['port', 'web'])).toBe('');
    await env.bargeOk(['start', 'web']);
    expect(await fetchBody(port)).toBe('hello from barge\n');
    await env.bargeOk(['rm', '-f', 'web']);
    expect(slirpsOf(env)).toEqual([]);
  });

  it('an exited container\'s slirp4netns goes with it (conmon\'s cleanup)', async () => {
    await env.bargeOk(['run', '-d', '--name', 'brief', '-p', '80', 'busybox', 'sh', '-c', 'sleep 1']);
    await until('the container to exit and its slirp4netns to go', async () => (await env.bargeOk(['ps', '-q'])) === '' && slirpsOf(env).length === 0);
    await env.bargeOk(['rm', 'brief']);
  });
});

describe('--network slirp4netns', () => {
  it('gives a container tap0 without published ports; its slirp4netns ends when conmon does, however conmon ends', async () => {
    await env.bargeOk(['run', '-d', '--name', 'net', '--network', 'slirp4netns:mtu=1500,allow_host_loopback=true', 'busybox', 'sleep', '600']);
    expect(await env.bargeOk(['exec', 'net', 'cat', '/sys/class/net/tap0/mtu'])).toBe('1500');
    expect(await env.bargeOk(['exec', 'net', 'ip', '-4', 'addr', 'show', 'tap0'])).toContain('inet 10.0.2.100/24');
    expect(await env.bargeOk(['port', 'net'])).toBe('');
    expect(slirpsOf(env)).toHaveLength(1);
    // A monitor killed outright runs no cleanup: the exit pipe it held still ends slirp4netns.
    const conmon = Number(await env.bargeOk(['inspect', '--format', '{{.State.ConmonPid}}', 'net']));
    process.kill(conmon, 'SIGKILL');
    await until('slirp4netns to exit after conmon', () => slirpsOf(env).length === 0);
    await env.bargeOk(['rm', '-f', 'net']);
  });
});

describe('-p refusals', () => {
  let busy: Server;
  afterAll(() => new Promise((r) => busy.close(r)));

  it('a host port in use: exit 125, a clear error, and no container running', async () => {
    busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '0.0.0.0', r));
    const addr = busy.address();
    if (addr === null || typeof addr === 'string') throw new Error('no port');
    const r = await env.barge(['run', '-d', '--name', 'clash', '-p', `${addr.port}:80`, 'busybox', ...HTTPD]);
    expectCode(r, 125);
    expect(r.stderr).toContain(`cannot listen on tcp 0.0.0.0:${addr.port}`);
    expect(await env.bargeOk(['ps', '-q'])).toBe('');
    expect(slirpsOf(env)).toEqual([]);
    await env.bargeOk(['rm', '-f', 'clash']);
  });

  it('--network none and host discard the ports with Podman\'s warning; private refuses them', async () => {
    const r = await env.barge(['run', '--rm', '--network', 'none', '-p', '80', 'busybox', 'true']);
    expectCode(r, 0);
    expect(r.stderr).toContain('Port mappings have been discarded as one of the Host, Container, Pod, and None network modes are in use');
    const priv = await env.barge(['create', '--network', 'private', '-p', '80', 'busybox', 'true']);
    expectCode(priv, 125);
    expect(priv.stderr).toContain("private network has only a loopback interface");
    const bad = await env.barge(['create', '-p', '80/sctp', 'busybox', 'true']);
    expectCode(bad, 125);
    const opt = await env.barge(['create', '--network', 'slirp4netns:enable_ipv6=true', 'busybox', 'true']);
    expectCode(opt, 125);
    expect(opt.stderr).toContain('enable_ipv6');
  });

  it('run --rm -p in the foreground serves, then leaves no container and no slirp4netns', async () => {
    const port = await freePort();
    const run = env.barge(['run', '--rm', '--name', 'fg', '-p', `${port}:80`, 'busybox', 'sh', '-c', 'mkdir /www && echo fg > /www/index.html && exec httpd -f -p 80 -h /www']);
    expect(await fetchBody(port)).toBe('fg\n');
    await env.bargeOk(['stop', '-t', '0', 'fg']);
    expectCode(await run, 137);
    expect(await env.bargeOk(['ps', '-aq'])).toBe('');
    expect(slirpsOf(env)).toEqual([]);
  });
});
