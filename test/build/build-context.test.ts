// Buildah's `build` options for what a build reads besides its context and what it writes its
// output to: --build-context (directories, images, OCI layouts and URLs standing in for a stage
// or image name), --all-platforms (every platform the base images offer, from a multi-arch image
// in a real registry), and --logfile/--logsplit.
import { once as onceEvent } from 'node:events';
import { createServer, type Server } from 'node:http';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTar, runInImage, type Env } from '../helpers.ts';
import { busyboxEnv } from '../fixtures.ts';
import { pushTwoArch } from '../registry/multiarch-layout.ts';
import { hermetic, startRegistry, type Registry } from '../registry/registry.ts';
import { buildOk, context, imageConfig } from './lib.ts';

let env: Env;
let server: Server;
let baseUrl = '';
/** Path → body that the test's HTTP server answers with (404 for anything else). */
const served = new Map<string, Buffer>();

beforeAll(async () => {
  ({ env } = await busyboxEnv());
  server = createServer((req, res) => {
    const body = served.get(req.url ?? '');
    res.writeHead(body ? 200 : 404).end(body ?? 'not found');
  });
  server.listen(0, '127.0.0.1');
  await onceEvent(server, 'listening');
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server?.close();
  await env?.cleanup();
});

const steps = (out: string): string[] => out.split('\n').filter((l) => /STEP \d+\/\d+: /.test(l));

/** A directory under env.tmp holding `files`, for a named context. */
async function dir(name: string, files: Record<string, string>): Promise<string> {
  const d = join(env.tmp, name);
  await rm(d, { recursive: true, force: true });
  await mkdir(d, { recursive: true });
  for (const [f, body] of Object.entries(files)) await writeFile(join(d, f), body);
  return d;
}

const fail = async (args: string[], ctx: string): Promise<string> => {
  const r = await env.barge(['build', ...args, ctx]);
  expect(r.code, r.stderr).toBe(125);
  return r.stderr;
};

describe('--build-context with a directory', () => {
  it('stands in for COPY --from and RUN --mount=from, ahead of a stage of the same name, with its own ignore file', async () => {
    const other = await dir('other', { 'a.txt': 'from the context\n', 'skip.log': 'ignored\n', '.containerignore': '*.log\n' });
    const ctx = await context(env, {
      Containerfile: [
        'FROM busybox AS other', 'RUN echo stage > /a.txt',
        'FROM busybox',
        'COPY --from=other / /copied/',
        'RUN --mount=from=other,target=/m cat /m/a.txt > /mounted',
      ].join('\n'),
      // The main context's ignore file leaves out a.txt; it does not apply to the named context.
      '.containerignore': 'a.txt\n',
    });
    const r = await buildOk(env, ctx, ['--build-context', `other=${other}`, '-t', 'bc-dir']);
    // The stage called "other" is not needed, so it is not built.
    expect(steps(r.stdout).every((l) => !l.includes('echo stage'))).toBe(true);
    expect(await runInImage(env, 'bc-dir', ['cat', '/copied/a.txt', '/mounted'])).toBe('from the context\nfrom the context');
    expect((await runInImage(env, 'bc-dir', ['ls', '-a', '/copied'])).split('\n').sort()).toEqual(['.', '..', '.containerignore', 'a.txt']);
  });

  it('takes a path relative to the working directory, and its files are in the layer cache key', async () => {
    const other = await dir('cached', { 'v.txt': 'one\n' });
    const ctx = await context(env, { Containerfile: 'FROM busybox\nCOPY --from=src v.txt /v.txt\nRUN --mount=from=src,target=/m cat /m/v.txt > /m2\n' });
    const args = ['--layers', '--build-context', 'src=cached'];
    const build = (): Promise<string> => env.bargeOk(['build', ...args, ctx], { cwd: env.tmp });
    const first = await build();
    expect(first).not.toContain('Using cache');
    const again = await build();
    expect(again.match(/Using cache/g)).toHaveLength(2);
    expect(again.trim().split('\n').at(-1)).toBe(first.trim().split('\n').at(-1));

    await writeFile(join(other, 'v.txt'), 'two\n');
    const changed = await build();
    expect(changed).not.toContain('Using cache');
    const id = changed.trim().split('\n').at(-1)!;
    expect(await runInImage(env, id, ['cat', '/v.txt', '/m2'])).toBe('two\ntwo');
  });

  it('cannot be a FROM, and a malformed or missing one fails before building', async () => {
    const other = await dir('notimage', { f: 'x' });
    const ctx = await context(env, { Containerfile: 'FROM notimage\n' });
    expect(await fail(['--build-context', `notimage=${other}`], ctx)).toContain('build context "notimage" is not an image, can not be used for FROM notimage');
    expect(await fail(['--build-context', 'noequals'], ctx)).toContain('invalid --build-context "noequals": accepts value in the form of name=value');
    expect(await fail(['--build-context', 'x='], ctx)).toContain('accepts value in the form of name=value');
    expect(await fail(['--build-context', `x=${join(env.tmp, 'absent')}`], ctx)).toContain(`--build-context x=${join(env.tmp, 'absent')}: no such file or directory`);
    expect(await fail(['--build-context', `x=${join(other, 'f')}`], ctx)).toContain('not a directory');
    expect(await fail(['--build-context', 'x=docker-image://'], ctx)).toContain('no image named');
    expect((await env.barge(['system', 'check'])).code).toBe(0);
  });
});

describe('--build-context with an image', () => {
  it('docker-image:// and container-image:// replace FROM, COPY --from and RUN --mount=from, with the pull policy applied', async () => {
    const ctx = await context(env, {
      Containerfile: [
        'FROM base',
        'COPY --from=tools /bin/busybox /tools-busybox',
        'RUN --mount=from=tools,target=/t test -x /t/bin/busybox && echo mounted > /m',
      ].join('\n'),
    });
    await buildOk(env, ctx, ['--build-context', 'base=docker-image://busybox', '--build-context', 'tools=container-image://localhost/busybox:latest', '-t', 'bc-img']);
    expect(await runInImage(env, 'bc-img', ['cat', '/m'])).toBe('mounted');
    expect(await runInImage(env, 'bc-img', ['test', '-x', '/tools-busybox'])).toBe('');

    const missing = await fail(['--pull=never', '--build-context', 'base=docker-image://busybox', '--build-context', 'tools=docker-image://localhost/absent:v1'], ctx);
    expect(missing).toContain('COPY --from=tools: build context tools: ');
    expect(missing).toContain('pull policy is "never"');
  });

  it('oci-layout://DIR:TAG reads an image from an OCI layout', async () => {
    const layout = join(env.tmp, 'layout');
    await env.bargeOk(['push', '-q', 'busybox', `oci:${layout}:v1`]);
    const ctx = await context(env, { Containerfile: 'FROM lay\nRUN echo on-layout > /on\n' });
    const r = await buildOk(env, ctx, ['--build-context', `lay=oci-layout://${layout}:v1`]);
    expect(await runInImage(env, r.id, ['cat', '/on'])).toBe('on-layout');
  });
});

describe('--build-context with a URL', () => {
  it('unpacks a tarball and keeps any other file under its name', async () => {
    served.set('/src.tar.gz', gzipSync(await makeTar([{ name: 'dir/', type: 'directory' }, { name: 'dir/t.txt', data: 'in the tarball\n' }])));
    served.set('/conf/app.conf', Buffer.from('plain file\n'));
    const ctx = await context(env, { Containerfile: 'FROM busybox\nCOPY --from=tgz dir/t.txt /t.txt\nCOPY --from=file app.conf /app.conf\n' });
    const r = await buildOk(env, ctx, ['--build-context', `tgz=${baseUrl}/src.tar.gz`, '--build-context', `file=${baseUrl}/conf/app.conf`]);
    expect(await runInImage(env, r.id, ['cat', '/t.txt', '/app.conf'])).toBe('in the tarball\nplain file');

    expect(await fail(['--build-context', `tgz=${baseUrl}/absent.tar`], ctx)).toContain(`--build-context tgz=${baseUrl}/absent.tar: HTTP 404`);
  });
});

describe('--logfile and --logsplit', () => {
  it('the build\'s output, RUN steps\' included, goes to the file; the error that ends a build still reaches stderr', async () => {
    const ctx = await context(env, { Containerfile: 'FROM busybox\nRUN echo to-stdout; echo to-stderr >&2\n' });
    const log = join(env.tmp, 'build.log');
    const r = await env.barge(['build', '--logfile', log, ctx]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('');
    const text = await readFile(log, 'utf8');
    // Both streams land between the step's line and the commit; their order is the shell's (busybox
    // may flush its stdout only at exit, after the unbuffered stderr).
    const run = text.slice(text.indexOf('STEP 2/2: RUN echo to-stdout; echo to-stderr >&2\n'), text.indexOf('COMMIT'));
    expect(run.split('\n').slice(1, 3).sort()).toEqual(['to-stderr', 'to-stdout']);
    expect(text.trim().split('\n').at(-1)).toMatch(/^[0-9a-f]{64}$/);

    const chroot = await env.barge(['build', '--isolation', 'chroot', '--logfile', log, ctx]);
    expect(chroot.code, chroot.stderr).toBe(0);
    expect(chroot.stdout + chroot.stderr).toBe('');
    const chrootLog = await readFile(log, 'utf8');
    for (const line of ['to-stdout\n', 'to-stderr\n']) expect(chrootLog).toContain(line);

    const bad = await context(env, { Containerfile: 'FROM busybox\nRUN echo before\nCOPY absent /\n' });
    const failed = await env.barge(['build', '--logfile', log, bad]);
    expect(failed.code).toBe(125);
    expect(failed.stdout).toBe('');
    expect(failed.stderr).toContain('building at STEP "COPY absent /"');
    const failedLog = await readFile(log, 'utf8');
    expect(failedLog).toContain('before\n');
    expect(failedLog).not.toContain('building at STEP');
  });

  it('--logsplit needs --logfile', async () => {
    const ctx = await context(env, { Containerfile: 'FROM busybox\n' });
    expect(await fail(['--logsplit'], ctx)).toContain('cannot use --logsplit without --logfile');
  });
});

describe('--all-platforms', () => {
  let reg: Registry;
  let multi = '';
  const h = hermetic();
  beforeAll(async () => {
    reg = await startRegistry();
    await h.setup(env.tmp);
    multi = `${reg.host}/multi/bb:v1`;
    await pushTwoArch(h.ok, env, multi);
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it('builds every platform of the base into the --manifest list, one log file per platform with --logsplit', async () => {
    // The "arm64" image holds this host's busybox, but COPY and ENV alone keep the build honest.
    const ctx = await context(env, { Containerfile: `FROM ${multi}\nARG TARGETARCH\nENV BUILT_FOR=$TARGETARCH\nCOPY f /f\n`, f: 'x' });
    const log = join(env.tmp, 'all.log');
    const r = await h.run(env, ['build', '--all-platforms', '--manifest', 'localhost/all:v1', '--tls-verify=false', '--logfile', log, '--logsplit', ctx]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    const index = JSON.parse(await h.ok(env, ['manifest', 'inspect', 'localhost/all:v1'])) as { manifests: { digest: string; platform: { architecture: string } }[] };
    expect(index.manifests.map((m) => m.platform.architecture).sort()).toEqual(['amd64', 'arm64']);
    for (const arch of ['amd64', 'arm64']) {
      const text = await readFile(`${log}_linux_${arch}`, 'utf8');
      expect(text).toContain(`STEP 1/4: FROM ${multi}`);
      const id = text.trim().split('\n').at(-1)!;
      expect(id).toMatch(/^[0-9a-f]{64}$/);
      const cfg = await imageConfig(env, id);
      expect(cfg.Env).toContain(`BUILT_FOR=${arch}`);
    }
    expect(await readFile(log, 'utf8')).toBe('');
    expect((await readdir(env.tmp)).filter((f) => f.startsWith('all.log')).sort()).toEqual(['all.log', 'all.log_linux_amd64', 'all.log_linux_arm64']);
  });

  it('takes the platforms all bases offer (a local manifest list counts), and refuses what cannot work', async () => {
    await h.ok(env, ['manifest', 'create', 'localhost/amdonly:v1']);
    await h.ok(env, ['manifest', 'add', 'localhost/amdonly:v1', 'busybox']);
    const ctx = await context(env, { Containerfile: `FROM ${multi} AS a\nCOPY f /f\nFROM localhost/amdonly:v1\nCOPY --from=a /f /f\n`, f: 'x' });
    const r = await h.run(env, ['build', '--all-platforms', '--manifest', 'localhost/common:v1', '--tls-verify=false', ctx]);
    expect(r.code, r.stderr).toBe(0);
    const index = JSON.parse(await h.ok(env, ['manifest', 'inspect', 'localhost/common:v1'])) as { manifests: { platform: { architecture: string } }[] };
    expect(index.manifests.map((m) => m.platform.architecture)).toEqual(['amd64']);

    const single = await context(env, { Containerfile: 'FROM busybox\n' });
    const notList = await h.run(env, ['build', '--all-platforms', '--manifest', 'localhost/x:v1', single]);
    expect(notList.code).toBe(125);
    expect(notList.stderr).toContain('base image name "busybox" didn\'t resolve to a manifest list');

    const scratch = await context(env, { Containerfile: 'FROM scratch\nCOPY f /f\n', f: 'x' });
    expect(await fail(['--all-platforms', '--manifest', 'localhost/x:v1'], scratch)).toContain('uses no base image but scratch');
    expect(await fail(['--all-platforms'], scratch)).toContain('building for several platforms needs --manifest LIST');
    expect(await fail(['--all-platforms', '--platform', 'linux/amd64', '--manifest', 'localhost/x:v1'], scratch)).toContain('cannot be combined with --platform');
  });
});
