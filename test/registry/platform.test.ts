// `from` and `build` for another platform (--platform, --arch, --os, --variant, FROM --platform=),
// as Buildah does: the base is pulled for that platform from a multi-arch image, a local image of
// another platform does not stand in for it, scratch gets the platform in its config, and the
// TARGET* build arguments name it. The "arm64" image of the test index holds the same (amd64)
// busybox, so RUN steps in it can run here; /etc/marker says which image a container is on.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeEnv, type BargeResult, type Env } from '../helpers.ts';
import { busyboxEnv } from '../fixtures.ts';
import { pushTwoArch } from './multiarch-layout.ts';
import { hermetic, startRegistry, type Registry } from './registry.ts';

let reg: Registry;
let src: Env;
let env: Env;
let multi = '';
const h = hermetic();
const run = (args: string[]): Promise<BargeResult> => h.run(env, args);
const ok = (args: string[]): Promise<string> => h.ok(env, args);
const arch = { x64: 'amd64', arm64: 'arm64' }[process.arch as 'x64' | 'arm64'] ?? process.arch;

async function context(name: string, containerfile: string, files: Record<string, string> = {}): Promise<string> {
  const dir = join(env.tmp, name);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'Containerfile'), containerfile);
  for (const [f, body] of Object.entries(files)) await writeFile(join(dir, f), body);
  return dir;
}

const imageArch = (ref: string): Promise<string> => ok(['inspect', '--type', 'image', '--format', '{{.OCIv1.OS}}/{{.OCIv1.Architecture}}', ref]);

beforeAll(async () => {
  reg = await startRegistry();
  ({ env: src } = await busyboxEnv());
  env = await makeEnv();
  await h.setup(env.tmp);
  await h.setup(src.tmp);
  multi = `${reg.host}/multi/bb:v1`;
  await pushTwoArch(h.ok, src, multi);
});

afterAll(async () => {
  await env?.cleanup();
  await src?.cleanup();
  await reg?.stop();
});

describe('from for a platform', () => {
  it('from --arch pulls that instance; a local image of another platform counts as missing', async () => {
    const host = await ok(['from', '--tls-verify=false', '-q', multi]);
    expect((await run(['run', host, '--', 'cat', '/etc/marker'])).code).not.toBe(0);
    expect(await imageArch(multi)).toBe(`linux/${arch}`);

    const never = await run(['from', '--arch', 'arm64', '--pull', 'never', multi]);
    expect(never.code).toBe(125);
    expect(never.stderr).toContain(`the local image is linux/${arch}, not linux/arm64`);

    const c = await ok(['from', '--tls-verify=false', '-q', '--arch', 'arm64', multi]);
    expect(await ok(['run', c, '--', 'cat', '/etc/marker'])).toBe('arm64');
    expect(await imageArch(multi)).toBe('linux/arm64');
    // Now the local image is arm64: --platform names the same thing, and nothing is pulled.
    const again = await run(['from', '--platform', 'linux/arm64', '--pull', 'never', multi]);
    expect(again.code, again.stderr).toBe(0);
  });

  it('from --arch on a single-platform image of another platform warns and uses it', async () => {
    const r = await run(['from', '--arch', 's390x', '--pull', 'never', 'localhost/nothing:v1']);
    expect(r.code).toBe(125);
    await h.ok(src, ['push', '-q', '--tls-verify=false', 'busybox', `${reg.host}/single/bb:v1`]);
    const w = await run(['from', '--tls-verify=false', '-q', '--arch', 's390x', `${reg.host}/single/bb:v1`]);
    expect(w.code, w.stderr).toBe(0);
    expect(w.stderr).toContain(`image platform (linux/${arch}) does not match the expected platform (linux/s390x)`);
  });

  it('from scratch with --platform gives the config that platform, and commit keeps it', async () => {
    const c = await ok(['from', '--platform', 'linux/arm/v7', 'scratch']);
    await ok(['commit', '-q', c, 'scratch-arm']);
    expect(await imageArch('scratch-arm')).toBe('linux/arm');
    expect(await ok(['inspect', '--type', 'image', '--format', '{{.OCIv1.Variant}}', 'scratch-arm'])).toBe('v7');
  });

  it('bad platform flags are errors', async () => {
    const both = await run(['from', '--platform', 'linux/arm64', '--arch', 'arm64', 'scratch']);
    expect(both.code).toBe(125);
    expect(both.stderr).toContain('--platform cannot be combined with --os, --arch or --variant');
    const bad = await run(['from', '--platform', 'arm64', 'scratch']);
    expect(bad.code).toBe(125);
    expect(bad.stderr).toContain('invalid platform syntax for "arm64" (use OS/ARCH[/VARIANT])');
    const escape = await run(['from', '--platform', '../../x/y', 'scratch']);
    expect(escape.code).toBe(125);
    expect(escape.stderr).toContain('invalid platform syntax for "../../x/y"');
    const badArch = await run(['from', '--arch', '../x', 'scratch']);
    expect(badArch.code).toBe(125);
    expect(badArch.stderr).toContain('invalid --arch "../x": letters, digits, _ and - only');
  });
});

describe('build for a platform', () => {
  it('--platform pulls bases for it, TARGET* name it, BUILD* the host, and the image says it', async () => {
    const ctx = await context('target', [
      `FROM --platform=$BUILDPLATFORM ${multi} AS tools`,
      'RUN (cat /etc/marker 2>/dev/null || echo none) > /tools-marker',
      `FROM ${multi}`,
      'ARG TARGETPLATFORM',
      'ARG TARGETARCH',
      'ARG BUILDARCH',
      'COPY --from=tools /tools-marker /tools-marker',
      'RUN echo "$TARGETPLATFORM $TARGETARCH $BUILDARCH $(cat /etc/marker)" > /args',
      '',
    ].join('\n'));
    await run(['rmi', '-f', multi]);
    await ok(['build', '--tls-verify=false', '-q', '--platform', 'linux/arm64', '-t', 'built-arm', ctx]);
    expect(await imageArch('built-arm')).toBe('linux/arm64');
    const c = await ok(['from', 'built-arm']);
    expect(await ok(['run', c, '--', 'cat', '/args'])).toBe(`linux/arm64 arm64 ${arch} arm64`);
    expect(await ok(['run', c, '--', 'cat', '/tools-marker'])).toBe('none');
  });

  it('--arch with --layers does not take a scratch step cached for another platform', async () => {
    const ctx = await context('scratch', 'FROM scratch\nCOPY f /f\n', { f: 'same content\n' });
    const host = await ok(['build', '--layers', '-q', '-t', 'sc-host', ctx]);
    const arm = await ok(['build', '--layers', '-q', '--arch', 'arm64', '-t', 'sc-arm', ctx]);
    expect(arm).not.toBe(host);
    expect(await imageArch('sc-host')).toBe(`linux/${arch}`);
    expect(await imageArch('sc-arm')).toBe('linux/arm64');
    // And the same build again is a cache hit for its own platform.
    expect(await ok(['build', '--layers', '-q', '--arch', 'arm64', '-t', 'sc-arm', ctx])).toBe(arm);
  });

  it('a failing RUN in a stage of a foreign architecture says that an emulator is needed', async () => {
    const ctx = await context('foreign', 'FROM scratch\nCOPY f /f\nRUN /f\n', { f: 'not a program\n' });
    const r = await run(['build', '-q', '--arch', 'arm64', ctx]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(new RegExp(`the stage is linux/arm64 and this host runs ${arch} programs only, unless an emulator for arm64 is registered with binfmt_misc`));
  });
});
