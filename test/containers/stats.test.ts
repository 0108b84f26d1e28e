// `stats` on real containers: the cgroup's counters in Podman's table, JSON and template fields,
// a refreshing stream that an interrupt ends (rootless: test/rootless/stats.test.ts).
import { spawn } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { BARGE_BIN, type BargeResult, type Env } from '../helpers.ts';
import { containerSuite, expectCode } from './lib.ts';

const suite = containerSuite();
let env: Env;
beforeAll(() => {
  env = suite();
});

const HEADER = /^ID +NAME +CPU % +MEM USAGE \/ LIMIT +MEM % +NET IO +BLOCK IO +PIDS +CPU TIME +AVG CPU %$/;

/** Runs `barge stats` with piped stdout; once `reports` headers have appeared, sends SIGINT. */
function interrupted(args: string[], reports: number): Promise<BargeResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(BARGE_BIN, ['--root', env.root, '--runroot', env.runroot, 'stats', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let sent = false;
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stdout.on('data', (b: Buffer) => {
      stdout += b.toString();
      if (!sent && stdout.split('\n').filter((l) => HEADER.test(l)).length >= reports) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 137, stdout, stderr });
    });
  });
}

describe('stats', () => {
  it('reads the container\'s memory, pids and CPU time from its cgroups', async () => {
    await env.bargeOk(['run', '-d', '--name', 'st1', '--memory', '64m', 'busybox', 'sh', '-c',
      'dd if=/dev/zero of=/dev/shm/fill bs=1M count=20 2>/dev/null; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; touch /tmp/ready; exec sleep 600']);
    // Wait for the fill and the busy loop to be done.
    for (let i = 0; i < 300; i++) {
      if ((await env.barge(['exec', 'st1', 'test', '-e', '/tmp/ready'])).code === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await env.bargeOk(['exec', '-d', 'st1', 'sleep', '500']);
    const out = await env.bargeOk(['stats', '--no-stream']);
    const lines = out.split('\n');
    expect(lines[0]).toMatch(HEADER);
    expect(lines).toHaveLength(2);
    const row = lines[1]!;
    // The 20 MB written to the shm tmpfs is the container's memory; the limit is --memory's.
    expect(row).toMatch(/^[0-9a-f]{12} +st1 +\d+\.\d\d% +[\d.]+MB \/ 67\.11MB +\d+\.\d\d% +0B \/ 0B +[\d.]+[kMG]?B \/ [\d.]+[kMG]?B +2 +[\d.]+(ms|s) +\d+\.\d\d%$/);
    const mb = Number(/ ([\d.]+)MB \/ 67\.11MB/.exec(row)?.[1]);
    expect(mb).toBeGreaterThanOrEqual(20);

    const f = (await env.bargeOk(['container', 'stats', '--no-stream', '--format', '{{.ContainerID}} {{.MemLimit}} {{.PIDs}} {{.CPUNano}} {{.MemUsageBytes}}', 'st1'])).split(' ');
    expect(f[0]).toMatch(/^[0-9a-f]{64}$/);
    expect(f[1]).toBe('67108864');
    expect(f[2]).toBe('2');
    expect(Number(f[3])).toBeGreaterThan(0);
    expect(f.slice(5)).toEqual(['/', '64MiB']);

    const json = JSON.parse(await env.bargeOk(['stats', '--no-stream', '--format', 'json', 'st1'])) as Record<string, string>[];
    expect(json).toHaveLength(1);
    expect(Object.keys(json[0]!)).toEqual(['id', 'name', 'cpu_time', 'cpu_percent', 'avg_cpu', 'mem_usage', 'mem_percent', 'net_io', 'block_io', 'pids']);
    expect(json[0]).toMatchObject({ id: f[0]!.slice(0, 12), name: 'st1', pids: '2', net_io: '0B / 0B' });
    expect(json[0]!.mem_usage).toMatch(/^[\d.]+MB \/ 67\.11MB$/);
  });

  it('shows stopped containers only with -a, with zeros; a table template gets Podman\'s headers', async () => {
    await env.bargeOk(['create', '--name', 'st-created', 'busybox', 'true']);
    expect(await env.bargeOk(['stats', '--no-stream', '--format', '{{.Name}}'])).not.toContain('st-created');
    const all = await env.bargeOk(['stats', '--no-stream', '-a', '--no-trunc', '--format', 'table {{.ID}}\t{{.Name}}\t{{.MemUsage}}\t{{.PIDS}}\t{{.UpTime}}']);
    expect(all.split('\n')[0]).toMatch(/^ID +NAME +MEM USAGE \/ LIMIT +PIDS +CPU TIME$/);
    expect(all).toMatch(/^[0-9a-f]{64} +st-created +0B \/ 0B +0 +0s$/m);
    expect(all).toMatch(/ st1 /);
  });

  it('refreshes until interrupted, then exits 1 as Podman does', async () => {
    const r = await interrupted(['-i', '1', 'st1'], 2);
    expectCode(r, 1);
    const headers = r.stdout.split('\n').filter((l) => HEADER.test(l));
    expect(headers.length).toBeGreaterThanOrEqual(2);
    // Not a terminal: no screen clearing.
    expect(r.stdout).not.toContain('\x1b[');
    const json = await interrupted(['-i', '1', '--format', 'json', 'st1'], 0);
    expect(json.stdout).toMatch(/^\[\n \{\n {2}"id": "[0-9a-f]{12}",/);
  });

  it('rejects bad arguments with exit 125', async () => {
    const cases: [string[], string][] = [
      [['stats', '--no-stream', 'no-such'], 'no container with name or ID "no-such" found'],
      [['stats', '--no-stream', '-a', 'st1'], '--all, --latest and containers cannot be used together'],
      [['stats', '-i', '0'], 'invalid interval, must be a positive number greater zero'],
    ];
    for (const [args, msg] of cases) {
      const r = await env.barge(args);
      expectCode(r, 125, args);
      expect(r.stderr).toContain(msg);
    }
  });
});
