// ps as Podman 4.3 prints it, compared side by side with podman on this machine: {{.State}} and
// {{.Status}} for each state, table headers, the filters of man podman-ps (and Docker's publish=
// and expose=), --watch, and a template that fails midway (what it printed stays on stdout).
import { spawn } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { BARGE_BIN, type Env } from '../helpers.ts';
import { containerSuite, expectCode, NO_CGROUPS, until } from './lib.ts';

const suite = containerSuite();
let env: Env;
beforeAll(() => {
  env = suite();
});

const lines = async (args: string[]): Promise<string[]> => (await env.bargeOk(args)).split('\n').filter((l) => l !== '');

describe('ps --format', () => {
  it('shows State and Status as Podman\'s psReporter: how long up or since exiting, else the state capitalized; health only in Status', async () => {
    await env.bargeOk(['create', '--name', 'st-created', 'busybox', 'true']);
    expectCode(await env.barge(['run', '--name', 'st-exited', 'busybox', 'sh', '-c', 'exit 2']), 2);
    await env.bargeOk(['run', '-d', '--name', 'st-running', '--health-cmd', 'true', 'busybox', 'sleep', '600']);
    await env.bargeOk(['run', '-d', '--name', 'st-paused', 'busybox', 'sleep', '600']);
    if (!NO_CGROUPS) await env.bargeOk(['pause', 'st-paused']);
    const f = ['ps', '-a', '--filter', 'name=^st-', '--format', '{{.Names}}|{{.State}}|{{.Status}}'];
    const before = await lines(f);
    expect(before.slice(0, 3)).toEqual([
      'st-created|Created|Created',
      expect.stringMatching(/^st-exited\|Exited \(2\) .+ ago\|Exited \(2\) .+ ago$/),
      expect.stringMatching(/^st-running\|Up .+ ago\|Up .+ ago \(starting\)$/),
    ]);
    expect(before[3]).toMatch(NO_CGROUPS ? /^st-paused\|Up .+ ago\|Up .+ ago$/ : /^st-paused\|Paused\|Paused$/);
    await env.bargeOk(['healthcheck', 'run', 'st-running']);
    expect(await lines([...f.slice(0, 3), 'name=^st-running$', ...f.slice(4)])).toEqual([expect.stringMatching(/^st-running\|Up .+ ago\|Up .+ ago \(healthy\)$/)]);
    // The JSON keeps the machine state, with the text as Status.
    const json = JSON.parse(await env.bargeOk(['ps', '-a', '--filter', 'name=^st-exited$', '--format', 'json'])) as { State: string; Status: string }[];
    expect(json[0]).toMatchObject({ State: 'exited', Status: expect.stringMatching(/^Exited \(2\) /) as unknown });
    await env.bargeOk(['rm', '-f', 'st-created', 'st-exited', 'st-running', 'st-paused']);
  });

  it('names table columns as Podman does, makes every space of a table a column break, and heads a field ps lacks "<no value>"', async () => {
    await env.bargeOk(['create', '--name', 'hd-one', 'busybox', 'true']);
    const only = ['ps', '-a', '--filter', 'name=^hd-one$', '--format'];
    expect(await env.bargeOk([...only, 'table {{.Pod}}\t{{.PodName}}\t{{.IsInfra}}\t{{.Names}}'])).toBe('POD ID      PODNAME     IS INFRA    NAMES\n                        false       hd-one');
    // "table {{.Names}} X": three columns (Podman's formatter turns the spaces into tabs); a plain template keeps them.
    expect(await env.bargeOk([...only, 'table {{.Names}} X {{.State}}'])).toBe('NAMES       X           STATE\nhd-one      X           Created');
    expect(await env.bargeOk([...only, '{{.Names}} X {{.State}}'])).toBe('hd-one X Created');
    const r = await env.barge([...only, 'table {{.Names}} {{.Restarts}}']);
    expectCode(r, 125);
    expect(r.stdout).toBe('NAMES       <no value>\nhd-one');
    expect(r.stderr).toBe('Error: template: ps:1:24: executing "ps" at <.Restarts>: can\'t evaluate field Restarts in type containers.psReporter\n');
    await env.bargeOk(['rm', 'hd-one']);
  });

  it('keeps what a template printed before it failed on stdout, as Go writes as it goes, and exits 125', async () => {
    await env.bargeOk(['create', '--name', 'tf-a', '--label', 'app=x', 'busybox', 'true']);
    await env.bargeOk(['create', '--name', 'tf-b', 'busybox', 'true']);
    const only = ['ps', '-a', '--filter', 'name=^tf-', '--format'];
    const plain = await env.barge([...only, '{{.Names}} {{.Nope}}']);
    expectCode(plain, 125);
    expect(plain.stdout).toBe('tf-a ');
    expect(plain.stderr).toBe('Error: template: ps:1:24: executing "ps" at <.Nope>: can\'t evaluate field Nope in type containers.psReporter\n');
    // Rows before the failing one are whole; the failing one is cut where it failed.
    const second = await env.barge([...only, '{{.Names}}:{{if eq .Names "tf-b"}}{{.Nope}}{{end}}']);
    expectCode(second, 125);
    expect(second.stdout).toBe('tf-a:\ntf-b:');
    // A table goes through the tabwriter: the cut line is not padded and has no newline.
    const table = await env.barge([...only, 'table {{.Names}} X {{.Nope}}']);
    expectCode(table, 125);
    expect(table.stdout).toBe('NAMES       X           <no value>\ntf-a        X');
    // index of a labels map takes only a string key.
    const index = await env.barge([...only, '{{.Names}} {{index .Labels 1}}']);
    expectCode(index, 125);
    expect(index.stdout).toBe('tf-a ');
    expect(index.stderr).toBe('Error: template: ps:1:24: executing "ps" at <index .Labels 1>: error calling index: value has type int; should be string\n');
    // An action left open: Podman's lexer meets the brace of the "{{end -}}" it wraps the format in.
    const open = await env.barge([...only, '{{.Names']);
    expectCode(open, 125);
    expect(open.stdout).toBe('');
    expect(open.stderr).toBe('Error: template: ps:1: bad character U+007B \'{\'\n');
    await env.bargeOk(['rm', 'tf-a', 'tf-b']);
  });
});

describe('ps --filter', () => {
  it('since= and before= (by the creation of a container), until= (a time or a duration), and their errors', async () => {
    for (const n of ['fl-1', 'fl-2', 'fl-3']) await env.bargeOk(['create', '--name', n, 'busybox', 'true']);
    const ps = (...filters: string[]): Promise<string[]> => lines(['ps', '-a', ...filters.flatMap((f) => ['--filter', f]), '--filter', 'name=^fl-', '--format', '{{.Names}}']);
    expect(await ps('since=fl-1')).toEqual(['fl-2', 'fl-3']);
    expect(await ps('before=fl-3')).toEqual(['fl-1', 'fl-2']);
    expect(await ps('since=fl-1', 'before=fl-3')).toEqual(['fl-2']);
    expect(await ps('until=1h')).toEqual([]);
    expect(await ps(`until=${Math.floor(Date.now() / 1000) + 60}`)).toEqual(['fl-1', 'fl-2', 'fl-3']);
    const missing = await env.barge(['ps', '-a', '--filter', 'since=fl-none']);
    expectCode(missing, 125);
    expect(missing.stderr).toBe('Error: no container with name or ID "fl-none" found: no such container\n');
    const bad = await env.barge(['ps', '-a', '--filter', 'until=garbage']);
    expectCode(bad, 125);
    expect(bad.stderr).toBe('Error: failed to parse value as time or duration: "garbage"\n');
    await env.bargeOk(['rm', 'fl-1', 'fl-2', 'fl-3']);
  });

  it('volume= (a volume\'s name, a mount\'s destination, or SOURCE:DESTINATION); network= and pod= match nothing here', async () => {
    await env.bargeOk(['create', '--name', 'vf-named', '-v', 'vf-data:/data', 'busybox', 'true']);
    await env.bargeOk(['create', '--name', 'vf-bind', '-v', `${env.tmp}:/host`, 'busybox', 'true']);
    await env.bargeOk(['create', '--name', 'vf-none', 'busybox', 'true']);
    const ps = (f: string): Promise<string[]> => lines(['ps', '-a', '--filter', f, '--filter', 'name=^vf-', '--format', '{{.Names}}']);
    expect(await ps('volume=vf-data')).toEqual(['vf-named']);
    expect(await ps('volume=/data')).toEqual(['vf-named']);
    expect(await ps('volume=vf-data:/data')).toEqual(['vf-named']);
    expect(await ps('volume=vf-data:/elsewhere')).toEqual([]);
    expect(await ps('volume=/host')).toEqual(['vf-bind']);
    expect(await ps(`volume=${env.tmp}:/host`)).toEqual(['vf-bind']);
    expect(await ps('network=podman')).toEqual([]);
    expect(await ps('pod=anything')).toEqual([]);
    await env.bargeOk(['rm', '-v', 'vf-named', 'vf-bind', 'vf-none']);
    await env.bargeOk(['volume', 'rm', 'vf-data']);
  });

  it('publish= (a published container port) and expose= (an exposed or published one), with ranges and protocols', async () => {
    await env.bargeOk(['create', '--name', 'pf-pub', '-p', '127.0.0.1:18181:80', '-p', '127.0.0.1:18182:53/udp', 'busybox', 'true']);
    await env.bargeOk(['create', '--name', 'pf-exp', '--expose', '8080', 'busybox', 'true']);
    const ps = (f: string): Promise<string[]> => lines(['ps', '-a', '--filter', f, '--filter', 'name=^pf-', '--format', '{{.Names}}']);
    expect(await ps('publish=80')).toEqual(['pf-pub']);
    expect(await ps('publish=80/tcp')).toEqual(['pf-pub']);
    expect(await ps('publish=80/udp')).toEqual([]);
    expect(await ps('publish=53/udp')).toEqual(['pf-pub']);
    expect(await ps('publish=18181')).toEqual([]);
    expect(await ps('publish=8080')).toEqual([]);
    expect(await ps('expose=8080')).toEqual(['pf-exp']);
    expect(await ps('expose=79-81')).toEqual(['pf-pub']);
    expect(await ps('expose=1-9000')).toEqual(['pf-pub', 'pf-exp']);
    const bad = await env.barge(['ps', '-a', '--filter', 'publish=http']);
    expectCode(bad, 125);
    expect(bad.stderr).toBe('Error: invalid range format for publish filter: http: expected PORT[-PORT][/tcp|udp|sctp]\n');
    await env.bargeOk(['rm', 'pf-pub', 'pf-exp']);
  });
});

describe('ps --watch', () => {
  /** barge ps with `args`, run until its output is `enough`, then sent `signal`: its output and exit code. */
  async function watched(args: string[], signal: NodeJS.Signals, enough: (out: string) => boolean): Promise<{ out: string; code: number | null }> {
    const child = spawn(BARGE_BIN, ['--root', env.root, '--runroot', env.runroot, 'ps', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    try {
      await until('enough rounds of ps --watch', () => enough(out)).catch((e: Error) => {
        throw new Error(`${e.message}: got ${JSON.stringify(out)}, stderr ${JSON.stringify(err)}`);
      });
    } finally {
      child.kill(signal);
    }
    return { out, code: await exited };
  }

  it('prints the list again every N seconds until interrupted (exit 1) or terminated (exit 0), without clearing a pipe', async () => {
    await env.bargeOk(['create', '--name', 'w-one', 'busybox', 'true']);
    const only = ['--filter', 'name=^w-', '--format', '{{.Names}}'];
    const int = await watched(['-a', '-w', '1', ...only], 'SIGINT', (o) => o.startsWith('w-one\nw-one\n'));
    expect(int.code).toBe(1);
    expect(int.out).toMatch(/^(w-one\n){2,}$/);
    // Each round looks again: a container made meanwhile shows up.
    let made = false;
    const term = await watched(['--watch', '1', ...only], 'SIGTERM', (o) => {
      if (!made && o === 'w-one\n') {
        made = true;
        void env.bargeOk(['create', '--name', 'w-two', 'busybox', 'true']);
      }
      return o.endsWith('w-one\nw-two\n');
    });
    expect(term.code).toBe(0);
    expect(term.out).toMatch(/^(w-one\n)+(w-one\nw-two\n)+$/);
    await env.bargeOk(['rm', 'w-one', 'w-two']);
  });

  it('prints once with -q or --format json, as Podman does, and refuses a watch that is not a count of seconds', async () => {
    const id = await env.bargeOk(['create', '--name', 'w-once', 'busybox', 'true']);
    expect(await env.bargeOk(['ps', '-a', '-w', '1', '-q', '--filter', 'name=^w-once$'])).toBe(id.slice(0, 12));
    const json = JSON.parse(await env.bargeOk(['ps', '-a', '-w', '1', '--format', 'json', '--filter', 'name=^w-once$'])) as { Names: string[] }[];
    expect(json.map((c) => c.Names)).toEqual([['w-once']]);
    expect(await env.bargeOk(['ps', '-a', '-w', '0', '--filter', 'name=^w-once$', '--format', '{{.Names}}'])).toBe('w-once');
    for (const v of ['-1', 'x']) {
      const r = await env.barge(['ps', '-w', v]);
      expectCode(r, 125);
      expect(r.stderr).toBe(`Error: invalid argument "${v}" for "-w, --watch" flag: strconv.ParseUint: parsing "${v}": invalid syntax\n`);
    }
    await env.bargeOk(['rm', 'w-once']);
  });
});
