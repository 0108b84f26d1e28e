// build's run options, applied to every RUN step as Buildah applies them: capabilities, ulimits,
// hosts and DNS, security options, cgroup limits, --no-hosts, --http-proxy, and their place (none)
// in the layer cache key.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Env } from '../helpers.ts';
import { busyboxEnv } from '../fixtures.ts';
import { buildOk, context, readFiles } from './lib.ts';

let env: Env;
beforeAll(async () => {
  ({ env } = await busyboxEnv());
});
afterAll(async () => {
  await env?.cleanup();
});

const CAP_SYS_ADMIN = 21n;
const capEff = (status: string): bigint => BigInt(`0x${/^CapEff:\s*([0-9a-f]+)$/m.exec(status)![1]}`);

describe('build run options reach every RUN', () => {
  it('--cap-add, --ulimit, --add-host, --dns, --security-opt and --memory', async () => {
    const ctx = await context(env, {
      Containerfile: [
        'FROM busybox',
        'RUN grep CapEff /proc/self/status > /caps',
        'RUN ulimit -n > /nofile && head -1 /etc/hosts > /hosts && cat /etc/resolv.conf > /resolv',
        'RUN grep NoNewPrivs /proc/self/status > /nnp && (cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes) > /mem',
        '',
      ].join('\n'),
    });
    await buildOk(env, ctx, [
      '-t', 'runopts', '--cap-add', 'SYS_ADMIN', '--ulimit', 'nofile=200:200', '--add-host', 'bar.example:10.9.8.7',
      '--dns', '9.9.9.9', '--dns-search', 'example.org', '--security-opt', 'no-new-privileges', '--memory', '96m',
    ]);
    const [caps, nofile, hosts, resolv, nnp, mem] = await readFiles(env, 'runopts', ['caps', 'nofile', 'hosts', 'resolv', 'nnp', 'mem']);
    expect(((capEff(caps!) >> CAP_SYS_ADMIN) & 1n) === 1n).toBe(true);
    expect(nofile).toBe('200\n');
    expect(hosts).toBe('10.9.8.7\tbar.example\n');
    expect(resolv).toBe('search example.org\nnameserver 9.9.9.9\n');
    expect(nnp).toMatch(/NoNewPrivs:\s+1/);
    expect(mem).toBe(`${96 * 1024 * 1024}\n`);
    // None of it is left in the image: the files barge mounts are per run.
    const [imageHosts] = await readFiles(env, 'runopts', ['etc/resolv.conf']);
    expect(imageHosts ?? '').not.toContain('9.9.9.9');
  });

  it('without them a RUN has the default capabilities and limits', async () => {
    const ctx = await context(env, { Containerfile: 'FROM busybox\nRUN grep CapEff /proc/self/status > /caps\n' });
    await buildOk(env, ctx, ['-t', 'plain']);
    const [caps] = await readFiles(env, 'plain', ['caps']);
    expect(((capEff(caps!) >> CAP_SYS_ADMIN) & 1n) === 1n).toBe(false);
  });

  it('--no-hosts leaves the base image\'s /etc/hosts; --http-proxy=false keeps the proxy variables out', async () => {
    // COPY, not RUN: a RUN's /etc/hosts is barge's mounted one, and its writes stay out of the image.
    const base = await context(env, { Containerfile: 'FROM busybox\nCOPY hosts /etc/hosts\n', hosts: '10.0.0.1 from-the-image\n' });
    await buildOk(env, base, ['-t', 'hosts-base']);
    const ctx = await context(env, { Containerfile: 'FROM hosts-base\nRUN cat /etc/hosts > /seen && echo "[$http_proxy]" > /proxy\n' });
    const proxy = { http_proxy: 'http://proxy.invalid:3128' };
    await buildOk(env, ctx, ['-t', 'nohosts', '--no-hosts', '--http-proxy=false'], proxy);
    expect(await readFiles(env, 'nohosts', ['seen', 'proxy'])).toEqual(['10.0.0.1 from-the-image\n', '[]\n']);
    await buildOk(env, ctx, ['-t', 'withhosts'], proxy);
    const [seen, passed] = await readFiles(env, 'withhosts', ['seen', 'proxy']);
    expect(seen).toContain('localhost');
    expect(passed).toBe('[http://proxy.invalid:3128]\n');
  });

  it('run options are not part of the layer cache key (as with Buildah)', async () => {
    const ctx = await context(env, { Containerfile: 'FROM busybox\nRUN ulimit -n > /nofile\n' });
    await buildOk(env, ctx, ['--layers', '-t', 'cached-a', '--ulimit', 'nofile=300:300']);
    const second = await buildOk(env, ctx, ['--layers', '-t', 'cached-b', '--ulimit', 'nofile=400:400']);
    expect(second.stdout).toMatch(/^--> Using cache [0-9a-f]{64}$/m);
    expect((await readFiles(env, 'cached-b', ['nofile']))[0]).toBe('300\n');
  });

  it('bad values exit 125 before any step runs', async () => {
    const ctx = await context(env, { Containerfile: 'FROM busybox\nRUN touch /ran\n' });
    for (const [flags, message] of [
      [['--ulimit', 'nofile'], /invalid ulimit "nofile"/],
      [['--cap-add', 'NOPE'], /"CAP_NOPE": unknown capability/],
      [['--no-hosts', '--add-host', 'a:1.2.3.4'], /--no-hosts and --add-host cannot be set together/],
      [['--decryption-key', 'k'], /cannot decrypt/],
      [['--pid', 'bogus'], /invalid --pid "bogus"/],
      [['--security-opt', 'apparmor=my-profile'], /unsupported --security-opt/],
    ] as [string[], RegExp][]) {
      const r = await env.barge(['build', ...flags, ctx]);
      expect(r.code, r.stderr).toBe(125);
      expect(r.stderr).toMatch(message);
      expect(r.stdout).not.toContain('STEP 2/2');
    }
  });
});
