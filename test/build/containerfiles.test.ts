// The real-world Containerfiles in containerfiles/ build (on the busybox test image, and
// gcc-hello on a debootstrap Debian base with gcc) and work.
import { randomInt } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containerDirEntries, REPO_ROOT, runInImage, type Env } from '../helpers.ts';
import { busyboxEnv } from '../fixtures.ts';
import { buildOk, DEFAULT_PATH, imageConfig, imageJSON, importGccBase, noContainers, readFiles, runIn } from './lib.ts';

let env: Env;
beforeAll(async () => {
  ({ env } = await busyboxEnv());
});
afterAll(async () => {
  await env?.cleanup();
});

const dir = (name: string): string => join(REPO_ROOT, 'containerfiles', name);

describe('containerfiles/', () => {
  it('static-site: busybox httpd serves the site; drafts stay out', async () => {
    const { stdout } = await buildOk(env, dir('static-site'), ['--format', 'docker', '-t', 'site']);
    expect(stdout).toContain('STEP 1/12: FROM busybox');
    const c = await imageConfig(env, 'site');
    expect(c).toMatchObject({
      User: 'www', WorkingDir: '/srv/www', ExposedPorts: { '8080/tcp': {} }, StopSignal: 'SIGTERM',
      Env: [DEFAULT_PATH, 'PORT=8080', 'DOCROOT=/srv/www'],
      Labels: { 'org.opencontainers.image.title': 'static site', 'org.opencontainers.image.description': 'busybox httpd serving /srv/www' },
    });
    const d = (await imageJSON(env, 'site')).Docker.config;
    expect((d.Healthcheck as { Test: string[] }).Test).toEqual(['CMD-SHELL', 'wget -q -O /dev/null http://127.0.0.1:${PORT}/ || exit 1']);
    expect(await runIn(env, 'site', 'cd /srv/www && find . -type f | sort && stat -c %U index.html')).toBe(
      './css/site.css\n./drafts/published.html\n./index.html\nwww',
    );
    // Serve it for real (host network, a random high port) and fetch the page.
    const port = randomInt(20000, 60000);
    const page = await runIn(env, 'site', `httpd -p 127.0.0.1:${port} -h /srv/www && sleep 0.3 && wget -q -O - http://127.0.0.1:${port}/`);
    expect(page).toContain('<h1>Built by barge</h1>');
    await noContainers(env);
  });

  it('multi-stage: only the artefact reaches the final image', async () => {
    await buildOk(env, dir('multi-stage'), ['--build-arg', 'VERSION=2.5', '-t', 'hello']);
    expect((await imageConfig(env, 'hello')).Entrypoint).toEqual(['/usr/local/bin/hello']);
    expect(await runIn(env, 'hello', '/usr/local/bin/hello; test -e /build || echo no-build-dir')).toBe('hello from version 2.5\nno-build-dir');
    const cached = await buildOk(env, dir('multi-stage'), ['--layers', '--build-arg', 'VERSION=2.5']);
    const again = await buildOk(env, dir('multi-stage'), ['--layers', '--build-arg', 'VERSION=2.5']);
    expect(again.id).toBe(cached.id);
    expect(again.stdout).toContain('--> Using cache');
  });

  it('gcc-hello: gcc on a Debian base compiles a static program; only it reaches the scratch image', async () => {
    await importGccBase(env);
    // No network in RUN: the base brings gcc, so nothing is fetched during the build.
    const first = await buildOk(env, dir('gcc-hello'), ['--network', 'none', '--layers', '-t', 'gcc-hello']);
    expect(first.stdout).toContain('[1/2] STEP 5/5: RUN gcc -O2 -static -o hello hello.c && strip hello');
    expect(await runInImage(env, 'gcc-hello', ['/hello'])).toBe('hello from a static C program built by barge');
    const img = await imageJSON(env, 'gcc-hello');
    expect(img.OCIv1.rootfs.diff_ids).toHaveLength(1);
    expect(await imageConfig(env, 'gcc-hello')).toEqual({ Env: [DEFAULT_PATH], Entrypoint: ['/hello'] });
    const ctr = await env.bargeOk(['from', 'gcc-hello']);
    try {
      expect(await containerDirEntries(env, ctr, '/')).toEqual(['hello']);
    } finally {
      await env.bargeOk(['rm', ctr]);
    }
    // Rebuilt unchanged, every step is a cache hit: gcc does not run again.
    const again = await buildOk(env, dir('gcc-hello'), ['--network', 'none', '--layers']);
    expect(again.id).toBe(first.id);
    expect((again.stdout.match(/^--> Using cache /gm) ?? []).length).toBe(6);
    expect(again.stdout).not.toContain('STEP 5/5: RUN gcc -O2 -static -o hello hello.c && strip hello\n--> [0-9a-f]');
    await noContainers(env);
  });

  it('heredoc-cache-secret: heredocs, a cache mount and a secret', async () => {
    const secret = join(env.tmp, 'token');
    await writeFile(secret, 'tok-123');
    await buildOk(env, dir('heredoc-cache-secret'), ['--secret', `id=token,src=${secret}`, '--build-arg', 'GREETING=hi', '-t', 'hcs']);
    expect(await readFiles(env, 'hcs', ['opt/app/greeting', 'opt/app/config.ini', 'opt/app/cache-runs', 'opt/app/secret-status'])).toEqual([
      'hi from a heredoc\n', '[app]\ngreeting = hi\n', '1\n', 'secret seen\n',
    ]);
    expect(await runIn(env, 'hcs', 'ls /run/secrets /var/cache/app 2>&1 | grep -c "No such file"; grep -rl tok-123 /opt /run /var /etc || true')).toBe('2');
  });
});
