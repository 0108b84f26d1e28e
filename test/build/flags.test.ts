// `barge build` flags beyond the basics: --ssh with a real ssh-agent, --cache-ttl and the
// registry cache flags, --pull policies against a real registry, --build-arg-file, --platform,
// --volume, --network, --squash, --isolation, --secret from the environment, a tarball
// context on standard input, and the run options applied to every RUN.
import { execFileSync } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeFailure, makeEnv, ROOTLESS, type Env } from '../helpers.ts';
import { busyboxEnv } from '../fixtures.ts';
import { hermetic, startRegistry } from '../registry/registry.ts';
import { buildOk, context, imageConfig, imageCount, imageJSON, noContainers, readFiles, runIn } from './lib.ts';
import { capEff } from '../primitives/lib.ts';

let env: Env;
beforeAll(async () => {
  ({ env } = await busyboxEnv());
});
afterAll(async () => {
  await env?.cleanup();
});

const cacheHits = (out: string): number => (out.match(/^--> Using cache [0-9a-f]{64}$/gm) ?? []).length;

describe('--ssh and RUN --mount=type=ssh', () => {
  let agentPid = 0;
  let sock = '';
  let fingerprint = '';
  let clientCtx = '';
  let key = '';

  beforeAll(async () => {
    // A real agent holding a fresh key.
    const dir = join(env.tmp, 'ssh');
    await mkdir(dir);
    key = join(dir, 'id_ed25519');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'barge-build-test', '-f', key]);
    sock = join(dir, 'agent.sock');
    const out = execFileSync('ssh-agent', ['-s', '-a', sock], { encoding: 'utf8' });
    agentPid = Number(/SSH_AGENT_PID=(\d+)/.exec(out)![1]);
    execFileSync('ssh-add', ['-q', key], { env: { ...process.env, SSH_AUTH_SOCK: sock } });
    fingerprint = execFileSync('ssh-keygen', ['-l', '-f', `${key}.pub`], { encoding: 'utf8' }).trim();
    // busybox has no ssh client: the context brings the host's ssh-add with the libraries it
    // loads, so the RUN step asks the agent for real.
    clientCtx = join(env.tmp, 'ssh-client');
    const ldd = execFileSync('ldd', ['/usr/bin/ssh-add'], { encoding: 'utf8' });
    const files = ['/usr/bin/ssh-add', ...[...ldd.matchAll(/(\/\S+) \(0x/g)].map((m) => m[1]!)];
    for (const f of files) {
      await mkdir(dirname(join(clientCtx, 'client', f)), { recursive: true });
      await copyFile(f, join(clientCtx, 'client', f));
    }
    execFileSync('chmod', ['0755', join(clientCtx, 'client', 'usr', 'bin', 'ssh-add')]);
  });
  afterAll(() => {
    if (agentPid) process.kill(agentPid);
  });

  const withClient = async (lines: string[]): Promise<string> => {
    await writeFile(join(clientCtx, 'Containerfile'), ['FROM busybox', 'COPY client/ /', ...lines].join('\n'));
    return clientCtx;
  };

  it('the agent answers ssh-add -l inside RUN; the socket and SSH_AUTH_SOCK stay out of the image', async () => {
    const ctx = await withClient([
      'RUN --mount=type=ssh ssh-add -l > /keys-default && echo "$SSH_AUTH_SOCK" > /sock-default',
      'RUN --mount=type=ssh,id=deploy,target=/tmp/agent,required ssh-add -l > /keys-deploy && echo "$SSH_AUTH_SOCK" > /sock-deploy',
    ]);
    // `default` means $SSH_AUTH_SOCK, as in Buildah; `deploy=` names a socket.
    await buildOk(env, ctx, ['--ssh', 'default', '--ssh', `deploy=${sock}`, '-t', 'ssh1'], { SSH_AUTH_SOCK: sock });
    const [keysDefault, sockDefault, keysDeploy, sockDeploy] = await readFiles(env, 'ssh1', ['keys-default', 'sock-default', 'keys-deploy', 'sock-deploy']);
    // `256 SHA256:… barge-build-test (ED25519)`: the key the agent holds, listed by the agent.
    expect(keysDefault!.trim()).toBe(fingerprint);
    expect(keysDeploy!.trim()).toBe(fingerprint);
    expect(sockDefault).toBe('/run/buildkit/ssh_agent.0\n');
    expect(sockDeploy).toBe('/tmp/agent\n');
    expect(await runIn(env, 'ssh1', 'ls -A /run; test -e /tmp/agent || echo no-agent-socket')).toBe('no-agent-socket');
    expect((await imageConfig(env, 'ssh1')).Env).toEqual([expect.stringMatching(/^PATH=/)]);
    await noContainers(env);
  });

  it('an ssh mount without its --ssh is skipped, unless it is required', async () => {
    const ctx = await withClient(['RUN --mount=type=ssh echo "[$SSH_AUTH_SOCK]" > /sock; ssh-add -l; echo "ssh-add: $?" >> /sock']);
    await buildOk(env, ctx, ['-t', 'ssh2']);
    // ssh-add exits 2 when it cannot reach an agent.
    expect((await readFiles(env, 'ssh2', ['sock']))[0]).toBe('[]\nssh-add: 2\n');

    const req = await withClient(['RUN --mount=type=ssh,id=deploy,required=true ssh-add -l']);
    const before = await imageCount(env);
    const r = await env.barge(['build', '--ssh', `other=${sock}`, req]);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain('building at STEP "RUN --mount=type=ssh,id=deploy,required=true ssh-add -l": no SSH agent socket or key for id "deploy" (use --ssh deploy=SOCKET)');
    expect(await imageCount(env)).toBe(before);
    await noContainers(env);
  });

  it('--ssh ID=KEY loads the key into a private agent for the build, and stops it after', async () => {
    const ctx = await withClient(['RUN --mount=type=ssh,id=k ssh-add -l > /keys']);
    await buildOk(env, ctx, ['--ssh', `k=${key}`, '-t', 'ssh3'], { SSH_AUTH_SOCK: '' });
    expect((await readFiles(env, 'ssh3', ['keys']))[0]!.trim()).toBe(fingerprint);
    const agents = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes('barge-ssh-'));
    expect(agents).toEqual([]);
  });

  it('--ssh errors: not a key, no such path, no agent', async () => {
    const ctx = await context(env, { Containerfile: 'FROM busybox\nRUN --mount=type=ssh true\n', notakey: 'not a key' });
    const notKey = await env.barge(['build', '--ssh', `default=${join(ctx, 'notakey')}`, ctx]);
    expect(notKey.code).toBe(125);
    expect(notKey.stderr).toContain(`--ssh: ssh-add ${join(ctx, 'notakey')}: `);
    const missing = await env.barge(['build', '--ssh', 'default=/nonexistent/agent.sock', ctx]);
    expect(missing.code).toBe(125);
    expect(missing.stderr).toContain('--ssh default=/nonexistent/agent.sock: /nonexistent/agent.sock: no such file or directory');
    const noAgent = await env.barge(['build', '--ssh', 'default', ctx], { env: { SSH_AUTH_SOCK: '' } });
    expect(noAgent.code).toBe(125);
    expect(noAgent.stderr).toContain('SSH_AUTH_SOCK is not set');
    for (const r of [notKey, missing, noAgent]) expect(r.stdout).not.toContain('STEP');
  });
});

describe('cache flags', () => {
  it('--cache-ttl: entries younger than the TTL are used, older ones are not; 0 is --no-cache', async () => {
    const ctx = await context(env, { Containerfile: 'FROM busybox\nRUN echo one > /one\nRUN echo two > /two\n' });
    const first = await buildOk(env, ctx, ['--layers']);
    expect(cacheHits((await buildOk(env, ctx, ['--layers', '--cache-ttl', '1h'])).stdout)).toBe(2);
    // The entries were recorded more than 1 ms ago: too old for this TTL, so both steps run again.
    const expired = await buildOk(env, ctx, ['--layers', '--cache-ttl=1ms']);
    expect(cacheHits(expired.stdout)).toBe(0);
    expect(expired.stdout).toContain('STEP 3/3: RUN echo two > /two\n');
    expect(cacheHits((await buildOk(env, ctx, ['--layers', '--cache-ttl', '0'])).stdout)).toBe(0);
    // The rebuilt steps refreshed the entries: a TTL of an hour finds them again.
    const again = await buildOk(env, ctx, ['--layers', '--cache-ttl', '60m']);
    expect(cacheHits(again.stdout)).toBe(2);
    expect(first.id).toMatch(/^[0-9a-f]{64}$/);
    const bad = await env.barge(['build', '--layers', '--cache-ttl', 'soon', ctx]);
    expect(bad.code).toBe(125);
    expect(bad.stderr).toContain('invalid --cache-ttl: time: invalid duration "soon"');
  });

  it('--cache-to pushes each step to a registry; another store builds from it with --cache-from', async () => {
    const reg = await startRegistry();
    const h = hermetic();
    await h.setup(env.tmp);
    const other = await makeEnv();
    try {
      // Both stores start from the same base image, shared through the registry.
      const base = `${reg.host}/base/bb:v1`;
      await h.ok(env, ['push', '-q', '--tls-verify=false', 'busybox', base]);
      const ctx = await context(env, { Containerfile: `FROM ${base}\nENV A=1\nRUN echo built-once > /f && echo step-"ran"\nCOPY data.txt /\n`, 'data.txt': 'data\n' });
      const cache = `${reg.host}/project/cache`;
      const first = await h.ok(env, ['build', '--layers', '--tls-verify=false', '--cache-to', cache, ctx]);
      expect(first).toContain('\nstep-ran\n');
      const tags = await h.ok(env, ['list-tags', '--tls-verify=false', `docker://${cache}`]);
      // One tag per step (ENV, RUN, COPY), each a cache key.
      expect((JSON.parse(tags) as { Tags: string[] }).Tags.filter((t) => /^[0-9a-f]{64}$/.test(t))).toHaveLength(3);

      const r = await h.run(other, ['build', '--layers', '--tls-verify=false', '--cache-from', cache, '-t', 'from-remote', ctx]);
      expect(r.code, describeFailure(['build', '--cache-from'], r)).toBe(0);
      expect(cacheHits(r.stdout)).toBe(3);
      // The RUN did not run again: its output is not there, and the image is the very same one.
      expect(r.stdout).not.toContain('\nstep-ran\n');
      expect(r.stdout.trim().split('\n').at(-1)).toBe(first.split('\n').at(-1));
      expect(await readFiles(other, 'from-remote', ['f', 'data.txt'])).toEqual(['built-once\n', 'data\n']);
      // Without --layers the registry cache is not consulted.
      const plain = await h.run(other, ['build', '--tls-verify=false', '--cache-from', cache, ctx]);
      expect(plain.code).toBe(0);
      expect(cacheHits(plain.stdout)).toBe(0);

      const bad = await env.barge(['build', '--layers', '--cache-to', `${cache}:tagged`, ctx]);
      expect(bad.code).toBe(125);
      expect(bad.stderr).toContain(`invalid --cache-to "${cache}:tagged": expected a registry repository`);
    } finally {
      await other.cleanup();
      await reg.stop();
    }
  });
});

describe('--pull', () => {
  it('missing (the default) uses the local image, always fetches the registry\'s, never does not reach it', async () => {
    const reg = await startRegistry();
    const h = hermetic();
    await h.setup(env.tmp);
    try {
      const ref = `${reg.host}/pulls/base:v1`;
      // v1 in the registry is busybox plus /version=1; the local copy is then tagged over with 2.
      const push = async (version: string): Promise<void> => {
        const c = await env.bargeOk(['from', 'busybox']);
        await env.bargeOk(['run', c, '--', 'sh', '-c', `echo ${version} > /version`]);
        await env.bargeOk(['commit', '--rm', c, `pulls-${version}`]);
        await h.ok(env, ['push', '-q', '--tls-verify=false', `pulls-${version}`, ref]);
      };
      await push('1');
      const ctx = await context(env, { Containerfile: `FROM ${ref}\nRUN cat /version > /seen\n` });
      const never = await h.run(env, ['build', '--pull=never', ctx]);
      expect(never.code).toBe(125);
      expect(never.stderr).toContain('image not known and the pull policy is "never"');

      await h.ok(env, ['build', '--tls-verify=false', '-t', 'pulled-missing', ctx]);
      expect((await readFiles(env, 'pulled-missing', ['seen']))[0]).toBe('1\n');
      await push('2');
      // The local copy of v1 is still the old one: missing keeps it, always fetches the new one.
      await h.ok(env, ['build', '--pull', 'missing', '--tls-verify=false', '-t', 'pulled-missing2', ctx]);
      expect((await readFiles(env, 'pulled-missing2', ['seen']))[0]).toBe('1\n');
      await h.ok(env, ['build', '--pull=always', '--tls-verify=false', '-t', 'pulled-always', ctx]);
      expect((await readFiles(env, 'pulled-always', ['seen']))[0]).toBe('2\n');
    } finally {
      await reg.stop();
    }
  });
});

describe('build arguments and platform', () => {
  it('--secret id=ID,env=VAR takes the secret from the environment', async () => {
    const ctx = await context(env, { Containerfile: 'FROM busybox\nRUN --mount=type=secret,id=tok wc -c < /run/secrets/tok > /len\n' });
    await buildOk(env, ctx, ['--secret', 'id=tok,env=BUILD_TOKEN', '-t', 'envsecret'], { BUILD_TOKEN: 'twelve chars' });
    expect((await readFiles(env, 'envsecret', ['len']))[0]!.trim()).toBe('12');
    expect(await runIn(env, 'envsecret', 'grep -rl "twelve chars" /etc /run /len 2>/dev/null || echo absent')).toBe('absent');
    const r = await env.barge(['build', '--secret', 'id=tok,env=UNSET_BUILD_TOKEN', ctx]);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain('invalid --secret "id=tok,env=UNSET_BUILD_TOKEN": src= or env= is required');
  });

  it('--build-arg-file: KEY=VALUE lines, comments, bare names from the environment; --build-arg wins', async () => {
    const ctx = await context(env, { Containerfile: 'FROM busybox\nARG A\nARG B\nARG C\nARG D\nRUN echo "$A|$B|$C|$D" > /args\n' });
    const file = join(env.tmp, 'args.conf');
    await writeFile(file, '# build settings\nA=from-file\n\nB=file b with spaces\nC\nD=file\n');
    await buildOk(env, ctx, ['--build-arg-file', file, '--build-arg', 'D=cli', '-t', 'argfile'], { C: 'from-env' });
    expect((await readFiles(env, 'argfile', ['args']))[0]).toBe('from-file|file b with spaces|from-env|cli\n');
  });

  it('--platform and FROM --platform: the host platform builds; for another, a local image of the host\'s is not used', async () => {
    const arch = { x64: 'amd64', arm64: 'arm64' }[process.arch as 'x64' | 'arm64'] ?? process.arch;
    const other = arch === 's390x' ? 'linux/ppc64le' : 'linux/s390x';
    const ctx = await context(env, {
      Containerfile: 'FROM --platform=$BUILDPLATFORM busybox AS b\nARG TARGETPLATFORM\nRUN echo "$TARGETPLATFORM" > /p\nFROM --platform=linux/' + arch + ' b\n',
    });
    await buildOk(env, ctx, ['--platform', `linux/${arch}`, '-t', 'plat']);
    expect((await readFiles(env, 'plat', ['p']))[0]).toBe(`linux/${arch}\n`);

    const inFile = await context(env, { Containerfile: `FROM --platform=${other} busybox\nRUN true\n` });
    const r = await env.barge(['build', '--pull=never', inFile]);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain(`building at STEP "FROM --platform=${other} busybox": busybox: image not known (the local image is linux/${arch}, not ${other}) and the pull policy is "never"`);
    const cli = await env.barge(['build', '--pull=never', '--platform', other, await context(env, { Containerfile: 'FROM busybox\n' })]);
    expect(cli.code).toBe(125);
    expect(cli.stderr).toContain(`(the local image is linux/${arch}, not ${other})`);
    await noContainers(env);
  });
});

describe('RUN environment flags', () => {
  it('--volume: a host directory is mounted into every RUN, and is not in the image', async () => {
    const host = join(env.tmp, 'vol');
    await mkdir(host);
    await writeFile(join(host, 'in.txt'), 'from host\n');
    const ctx = await context(env, { Containerfile: 'FROM busybox\nRUN cat /mnt/vol/in.txt > /seen && echo written > /mnt/vol/out.txt\nRUN ls /mnt/vol > /listing\n' });
    await buildOk(env, ctx, ['-v', `${host}:/mnt/vol`, '-t', 'vol']);
    expect(await readFiles(env, 'vol', ['seen', 'listing'])).toEqual(['from host\n', 'in.txt\nout.txt\n']);
    // Writes went to the host directory; the image has no trace of the mount.
    expect(await readFile(join(host, 'out.txt'), 'utf8')).toBe('written\n');
    expect(await runIn(env, 'vol', 'test -e /mnt/vol || echo absent')).toBe('absent');
    const ro = await env.barge(['build', '--volume', `${host}:/mnt/vol:ro`, await context(env, { Containerfile: 'FROM busybox\nRUN touch /mnt/vol/nope\n' })]);
    expect(ro.code).not.toBe(0);
    expect(ro.stderr).toContain('while running runtime: exit status 1');
  });

  it('--network none leaves RUN only a loopback; RUN --network overrides the build default', async () => {
    // Other processes on the machine may add or remove interfaces meanwhile (a veth of a podman
    // container): a RUN in the host's network sees the host's interfaces of some moment of the build.
    const hostIfaces = (): string[] => execFileSync('ls', ['/sys/class/net'], { encoding: 'utf8' }).trim().split('\n').sort();
    const buildSeesHost = async (args: string[], files: string[]): Promise<string[]> => {
      const before = hostIfaces();
      await buildOk(env, ctx, args);
      const seen = new Set([...before, ...hostIfaces()]);
      const out = await readFiles(env, args.at(-1)!, files);
      for (const f of out.filter((x) => x !== 'lo\n')) {
        const names = f!.trim().split('\n');
        expect(names.length, `${f} is the host's network`).toBeGreaterThan(1);
        expect(names.filter((i) => !seen.has(i)), `${f} holds only host interfaces`).toEqual([]);
      }
      return out.map((x) => x!);
    };
    expect(hostIfaces().length).toBeGreaterThan(1);
    const ctx = await context(env, {
      Containerfile: 'FROM busybox\nRUN ls /sys/class/net > /default-net\nRUN --network=host ls /sys/class/net > /host-net\nRUN --network=none ls /sys/class/net > /none-net\n',
    });
    // Without --network, barge's RUN shares the host's network.
    const [d, h, n] = await buildSeesHost(['-t', 'net-default'], ['default-net', 'host-net', 'none-net']);
    expect(d).not.toBe('lo\n');
    expect(h).not.toBe('lo\n');
    expect(n).toBe('lo\n');
    const [d2, h2, n2] = await buildSeesHost(['--network', 'none', '-t', 'net-none'], ['default-net', 'host-net', 'none-net']);
    expect([d2, n2]).toEqual(['lo\n', 'lo\n']);
    expect(h2).not.toBe('lo\n');
    const bad = await env.barge(['build', '--network', 'carrier-pigeon', ctx]);
    expect(bad.code).toBe(125);
    expect(bad.stderr).toContain('unsupported --network "carrier-pigeon"');
  });

  it('--isolation chroot runs RUN steps too', async () => {
    const ctx = await context(env, { Containerfile: 'FROM busybox\nRUN echo chrooted > /iso\n' });
    await buildOk(env, ctx, ['--isolation', 'chroot', '-t', 'iso']);
    expect((await readFiles(env, 'iso', ['iso']))[0]).toBe('chrooted\n');
    const bad = await env.barge(['build', '--isolation', 'vm', ctx]);
    expect(bad.code).toBe(125);
    expect(bad.stderr).toContain('unrecognized isolation type "vm"');
  });
});

describe('output shape', () => {
  it('--squash: the final image is one layer with the base included, whatever --layers says', async () => {
    const ctx = await context(env, { Containerfile: 'FROM busybox\nRUN echo a > /a\nCOPY f /f\nRUN echo b > /b\n', f: 'f\n' });
    for (const layers of [[], ['--layers']]) {
      await buildOk(env, ctx, [...layers, '--squash', '-t', 'squashed']);
      expect((await imageJSON(env, 'squashed')).OCIv1.rootfs.diff_ids).toHaveLength(1);
      expect(await readFiles(env, 'squashed', ['a', 'f', 'b'])).toEqual(['a\n', 'f\n', 'b\n']);
      expect(await runIn(env, 'squashed', 'test -x /bin/busybox && echo base-included')).toBe('base-included');
    }
  });

  it('a tarball context on standard input (-)', async () => {
    const ctx = await context(env, { Containerfile: 'FROM busybox\nCOPY payload.txt /\n', 'payload.txt': 'via stdin tar\n' });
    const tarball = join(env.tmp, 'stdin-ctx.tar');
    execFileSync('tar', ['-C', ctx, '-cf', tarball, '.']);
    const fd = openSync(tarball, 'r');
    try {
      const r = await env.barge(['build', '-t', 'stdintar', '-'], { stdinFd: fd });
      expect(r.code, describeFailure(['build', '-'], r)).toBe(0);
    } finally {
      closeSync(fd);
    }
    expect((await readFiles(env, 'stdintar', ['payload.txt']))[0]).toBe('via stdin tar\n');
  });
});

describe('build run options reach every RUN (as Buildah: --cap-add, --ulimit, --add-host, --dns, …)', () => {
  const CAP_SYS_ADMIN = 21n;

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
    // Rootless on cgroup v1 the limit is left out (with Podman's warning), so the RUN still runs.
    if (!ROOTLESS) expect(mem).toBe(`${96 * 1024 * 1024}\n`);
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
