// -p values, --network slirp4netns options and the ways Podman shows port mappings.
import { describe, expect, it } from 'vitest';
import { inspectPorts, parsePublish, parseSlirpMode, portLines, portRanges, psPorts, slirpAddress } from '../../src/containers/slirp.ts';

describe('parsePublish', () => {
  it('reads host ports, addresses, protocols and ranges', async () => {
    const ports = await parsePublish(['8080:80', '127.0.0.1:5353:53/udp', '9000-9001:90-91', '0.0.0.0:8443:443']);
    expect(ports).toEqual([
      { hostIp: '', hostPort: 8080, containerPort: 80, protocol: 'tcp' },
      { hostIp: '', hostPort: 9000, containerPort: 90, protocol: 'tcp' },
      { hostIp: '', hostPort: 9001, containerPort: 91, protocol: 'tcp' },
      { hostIp: '', hostPort: 8443, containerPort: 443, protocol: 'tcp' },
      { hostIp: '127.0.0.1', hostPort: 5353, containerPort: 53, protocol: 'udp' },
    ]);
    expect(psPorts(ports)).toBe('0.0.0.0:8080->80/tcp, 0.0.0.0:9000-9001->90-91/tcp, 0.0.0.0:8443->443/tcp, 127.0.0.1:5353->53/udp');
    expect(portRanges(ports).map((r) => r.range)).toEqual([1, 2, 1, 1]);
    expect(portLines(ports)[4]).toBe('53/udp -> 127.0.0.1:5353');
    expect(inspectPorts(ports)['53/udp']).toEqual([{ HostIp: '127.0.0.1', HostPort: '5353' }]);
  });

  it('chooses free host ports where none is given, for -p and for -P\'s exposed ports', async () => {
    const ports = await parsePublish(['80', '127.0.0.1::81/udp'], ['80/tcp', '443/tcp', '132/sctp']);
    expect(ports.map((p) => `${p.containerPort}/${p.protocol}@${p.hostIp}`)).toEqual(['80/tcp@', '443/tcp@', '81/udp@127.0.0.1']);
    for (const p of ports) expect(p.hostPort).toBeGreaterThan(0);
  });

  it('refuses what cannot be forwarded', async () => {
    await expect(parsePublish(['80/sctp'])).rejects.toThrow(/tcp and udp/);
    await expect(parsePublish(['9000-9002:90-91'])).rejects.toThrow(/ranges differ/);
    await expect(parsePublish(['70000:80'])).rejects.toThrow(/between 1 and 65535/);
    await expect(parsePublish(['[::1]:8080:80'])).rejects.toThrow(/IPv4/);
    await expect(parsePublish(['8080:80', '8080:81'])).rejects.toThrow(/given twice/);
  });
});

describe('parseSlirpMode', () => {
  it('takes Podman\'s options and refuses the rest', () => {
    expect(parseSlirpMode('private')).toBeUndefined();
    expect(parseSlirpMode('slirp4netns')).toEqual({ allowHostLoopback: false, mtu: 65520 });
    expect(parseSlirpMode('slirp4netns:allow_host_loopback=true,mtu=1500,cidr=10.5.0.0/16,port_handler=slirp4netns')).toEqual({
      allowHostLoopback: true, mtu: 1500, cidr: '10.5.0.0/16',
    });
    expect(() => parseSlirpMode('slirp4netns:mtu=x')).toThrow(/unknown option/);
    expect(() => parseSlirpMode('slirp4netns:port_handler=rootlesskit')).toThrow(/rootlesskit/);
  });

  it('finds the guest and DNS addresses in the cidr', () => {
    expect(slirpAddress(undefined, 100)).toBe('10.0.2.100');
    expect(slirpAddress('10.5.7.9/16', 3)).toBe('10.5.0.3');
  });
});
