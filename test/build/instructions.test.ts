// barge build: every instruction's effect on the image config and files, ARG/ENV scoping,
// multi-stage builds and COPY/ADD flags (black-box, busybox base, no --layers).
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Env } from '../helpers.ts';
import { busyboxEnv } from '../fixtures.ts';
import { buildOk, context, imageConfig, imageJSON, noContainers, readFiles, runIn } from './lib.ts';

let env: Env;
beforeAll(async () => {
  ({ env } = await busyboxEnv());
});
afterAll(async () => {
  await env?.cleanup();
});

describe('config instructions', () => {
  it('ENV, LABEL, EXPOSE, VOLUME, USER, WORKDIR, STOPSIGNAL, CMD, ENTRYPOINT, MAINTAINER', async () => {
    const ctx = await context(env, {
      Containerfile: [
        'FROM busybox',
        'MAINTAINER Jane <jane@example.com>',
        'ENV A=1 B="two words" \\',
        '    C=${A}-x',
        'ENV LEGACY value with spaces',
        'LABEL version="1.0" "quoted key"=v desc=${B}',
        'EXPOSE 80 443/tcp 53/udp 8000-8002',
        'VOLUME /data /logs',
        'VOLUME ["/json1", "/json2"]',
        'USER 1000:1000',
        'WORKDIR /app',
        'WORKDIR sub',
        'STOPSIGNAL SIGINT',
        'ENTRYPOINT ["/bin/echo"]',
        'CMD echo $HOME',
      ].join('\n'),
    });
    const { id, stdout } = await buildOk(env, ctx, ['-t', 'cfg']);
    expect(stdout).toContain('STEP 1/14: FROM busybox\n');
    expect(stdout).toContain('STEP 14/14: CMD echo $HOME\n');
    expect(stdout).toMatch(/COMMIT cfg\n--> [0-9a-f]{11}\nSuccessfully tagged localhost\/cfg:latest\n[0-9a-f]{64}\n$/);
    expect(stdout.trim().split('\n').at(-1)).toBe(id);
    const c = await imageConfig(env, 'cfg');
    // Docker: every pair of one ENV expands against the variables from before it, so C sees no A.
    expect(c.Env).toEqual(['A=1', 'B=two words', 'C=-x', 'LEGACY=value with spaces']);
    expect(c.Labels).toEqual({ version: '1.0', 'quoted key': 'v', desc: 'two words' });
    expect(Object.keys(c.ExposedPorts as object).sort()).toEqual(['443/tcp', '53/udp', '80/tcp', '8000/tcp', '8001/tcp', '8002/tcp']);
    expect(Object.keys(c.Volumes as object).sort()).toEqual(['/data', '/json1', '/json2', '/logs']);
    expect(c.User).toBe('1000:1000');
    expect(c.WorkingDir).toBe('/app/sub');
    expect(c.StopSignal).toBe('SIGINT');
    expect(c.Entrypoint).toEqual(['/bin/echo']);
    expect(c.Cmd).toEqual(['/bin/sh', '-c', 'echo $HOME']);
    const img = await imageJSON(env, 'cfg');
    const hist = img.OCIv1.history.slice(1).map((h) => h.created_by);
    expect(hist[0]).toBe('/bin/sh -c #(nop) MAINTAINER Jane <jane@example.com>');
    expect(hist).toContain('/bin/sh -c #(nop) ENV A=1 B="two words"     C=${A}-x');
    expect(hist.at(-1)).toBe('/bin/sh -c #(nop) CMD echo $HOME');
    // One layer for the whole build, as Buildah without --layers.
    expect(img.OCIv1.rootfs.diff_ids).toHaveLength(2);
    await noContainers(env);
  });

  it('ENTRYPOINT resets an inherited CMD; a CMD in the same stage survives', async () => {
    const base = await context(env, { Containerfile: 'FROM busybox\nCMD ["base-cmd"]\n' });
    await buildOk(env, base, ['-t', 'withcmd']);
    const a = await context(env, { Containerfile: 'FROM withcmd\nENTRYPOINT ["/bin/ep"]\n' });
    await buildOk(env, a, ['-t', 'ep1']);
    expect((await imageConfig(env, 'ep1')).Cmd).toBeUndefined();
    const b = await context(env, { Containerfile: 'FROM withcmd\nCMD ["mine"]\nENTRYPOINT /bin/ep --flag\n' });
    await buildOk(env, b, ['-t', 'ep2']);
    const c = await imageConfig(env, 'ep2');
    expect(c.Cmd).toEqual(['mine']);
    expect(c.Entrypoint).toEqual(['/bin/sh', '-c', '/bin/ep --flag']);
  });

  it('SHELL changes the shell form of RUN and CMD; HEALTHCHECK and ONBUILD land in docker format', async () => {
    const ctx = await context(env, {
      Containerfile: [
        'FROM busybox',
        'SHELL ["/bin/sh", "-ec"]',
        'RUN echo "$0 $-" > /shell-info',
        'CMD run-me',
        'HEALTHCHECK --interval=5s --timeout=2s --retries=4 CMD wget -q http://localhost/ || exit 1',
        'ONBUILD RUN echo triggered > /onbuild-ran',
      ].join('\n'),
    });
    await buildOk(env, ctx, ['--format', 'docker', '-t', 'shelled']);
    const [info] = await readFiles(env, 'shelled', ['shell-info']);
    expect(info).toMatch(/^\/bin\/sh .*e/);
    const d = (await imageJSON(env, 'shelled')).Docker.config;
    expect(d.Cmd).toEqual(['/bin/sh', '-ec', 'run-me']);
    expect(d.Shell).toEqual(['/bin/sh', '-ec']);
    expect(d.Healthcheck).toEqual({ Test: ['CMD-SHELL', 'wget -q http://localhost/ || exit 1'], Interval: 5e9, Timeout: 2e9, Retries: 4 });
    expect(d.OnBuild).toEqual(['RUN echo triggered > /onbuild-ran']);

    // The trigger runs in the child build, and is not inherited further.
    const child = await context(env, { Containerfile: 'FROM shelled\nRUN test -f /onbuild-ran\n' });
    await buildOk(env, child, ['--format', 'docker', '-t', 'child']);
    expect((await readFiles(env, 'child', ['onbuild-ran']))[0]).toBe('triggered\n');
    expect((await imageJSON(env, 'child')).Docker.config.OnBuild).toEqual([]);
  });

  it('--label, --annotation, --iidfile, -q and --timestamp', async () => {
    const ctx = await context(env, { Containerfile: 'FROM busybox\nLABEL a=1\nRUN touch /f\n' });
    const iid = join(env.tmp, 'iid');
    const r = await buildOk(env, ctx, ['-q', '--label', 'b=2', '--annotation', 'org.example=yes', '--iidfile', iid, '--timestamp', '0', '-t', 'meta']);
    expect(r.stdout.trim()).toBe(r.id);
    const { readFile } = await import('node:fs/promises');
    expect(await readFile(iid, 'utf8')).toBe(`sha256:${r.id}`);
    expect((await imageConfig(env, 'meta')).Labels).toEqual({ a: '1', b: '2' });
    const manifest = JSON.parse(await env.bargeOk(['inspect', '--type', 'manifest', 'meta'])) as { annotations?: Record<string, string> };
    expect(manifest.annotations?.['org.example']).toBe('yes');
    const created = await env.bargeOk(['inspect', '--type', 'image', '--format', '{{.OCIv1.Created}}', 'meta']);
    expect(created).toContain('1970-01-01');
    // Same inputs and timestamp: the same image.
    expect((await buildOk(env, ctx, ['-q', '--label', 'b=2', '--annotation', 'org.example=yes', '--timestamp', '0'])).id).toBe(r.id);
  });
});

describe('ARG and ENV scoping', () => {
  it('global ARGs feed FROM; a stage sees them only when it re-declares them; --build-arg overrides', async () => {
    const ctx = await context(env, {
      Containerfile: [
        'ARG BASE=busybox',
        'ARG GLOBAL=g1',
        'FROM ${BASE}',
        'RUN echo "before:[$GLOBAL]" > /out',
        'ARG GLOBAL',
        'ARG LOCAL=l1',
        'ARG FROMENV',
        'ENV LOCAL=env-wins',
        'RUN echo "after:[$GLOBAL] local:[$LOCAL] fromenv:[$FROMENV]" >> /out',
        'ENV COPYOFARG=${GLOBAL}',
        'ARG TARGETARCH',
        'RUN echo "arch:[$TARGETARCH] plat:[$TARGETPLATFORM]" >> /out',
      ].join('\n'),
    });
    const { stderr } = await buildOk(env, ctx, ['--build-arg', 'GLOBAL=cli', '--build-arg', 'FROMENV', '--build-arg', 'NOBODY=x', '-t', 'args'], { FROMENV: 'host-env' });
    const [out] = await readFiles(env, 'args', ['out']);
    const arch = { x64: 'amd64', arm64: 'arm64' }[process.arch as 'x64' | 'arm64'] ?? process.arch;
    expect(out).toBe(`before:[]\nafter:[cli] local:[env-wins] fromenv:[host-env]\narch:[${arch}] plat:[]\n`);
    const c = await imageConfig(env, 'args');
    expect(c.Env).toEqual(['LOCAL=env-wins', 'COPYOFARG=cli']);
    expect(stderr).toContain('[Warning] one or more build args were not consumed: [NOBODY]');
    // ARG values are in RUN's history, not in the image's environment.
    const hist = (await imageJSON(env, 'args')).OCIv1.history.map((h) => h.created_by ?? '');
    expect(hist.some((h) => h.startsWith('|3 GLOBAL=cli LOCAL=l1 FROMENV=host-env /bin/sh -c echo "after:'))).toBe(true);
  });

  it('ARGs do not leak between stages', async () => {
    const ctx = await context(env, {
      Containerfile: 'FROM busybox AS one\nARG X=one\nRUN echo $X > /x\nFROM busybox\nRUN echo "[$X]" > /x\n',
    });
    await buildOk(env, ctx, ['-t', 'noleak']);
    expect((await readFiles(env, 'noleak', ['x']))[0]).toBe('[]\n');
  });

  it('proxy build args reach RUN without an ARG and stay out of the history', async () => {
    const ctx = await context(env, { Containerfile: 'FROM busybox\nRUN echo "$http_proxy" > /proxy\n' });
    await buildOk(env, ctx, ['--build-arg', 'http_proxy=http://proxy:3128', '-t', 'proxied']);
    expect((await readFiles(env, 'proxied', ['proxy']))[0]).toBe('http://proxy:3128\n');
    const hist = (await imageJSON(env, 'proxied')).OCIv1.history.map((h) => h.created_by ?? '');
    expect(hist.join('\n')).not.toContain('proxy:3128');
  });
});

describe('multi-stage', () => {
  it('COPY --from a stage by name and by index, FROM an earlier stage, --target', async () => {
    const ctx = await context(env, {
      Containerfile: [
        'FROM busybox AS build',
        'RUN mkdir /out && echo artefact > /out/a && echo second > /out/b',
        'FROM build AS derived',
        'RUN echo derived > /out/c',
        'FROM busybox',
        'COPY --from=build /out/a /a',
        'COPY --from=1 /out/ /all/',
        'COPY --from=busybox /bin/busybox /copied-busybox',
      ].join('\n'),
    });
    const { stdout } = await buildOk(env, ctx, ['-t', 'multi']);
    expect(stdout).toContain('[1/3] STEP 1/2: FROM busybox AS build');
    expect(stdout).toContain('[3/3] STEP 4/4: COPY --from=busybox /bin/busybox /copied-busybox');
    const files = await readFiles(env, 'multi', ['a', 'all/a', 'all/c', 'out/a']);
    expect(files).toEqual(['artefact\n', 'artefact\n', 'derived\n', null]);
    expect(await runIn(env, 'multi', 'test -x /copied-busybox && echo ok')).toBe('ok');
    // Intermediate stages leave no named images and no containers behind.
    await noContainers(env);
    const { stdout: t } = await buildOk(env, ctx, ['--target', 'build', '-t', 'justbuild']);
    expect(t).not.toContain('STEP 1/4');
    expect((await readFiles(env, 'justbuild', ['out/b']))[0]).toBe('second\n');
  });

  it('FROM scratch with COPY', async () => {
    const ctx = await context(env, { Containerfile: 'FROM scratch\nCOPY hello.txt /\nCMD ["/nothing"]\n', 'hello.txt': 'hi\n' });
    await buildOk(env, ctx, ['-t', 'fromscratch']);
    const img = await imageJSON(env, 'fromscratch');
    expect(img.OCIv1.rootfs.diff_ids).toHaveLength(1);
  });
});

describe('COPY and ADD', () => {
  it('wildcards, directories, --chown, --chmod, relative destinations and WORKDIR', async () => {
    const ctx = await context(env, {
      Containerfile: [
        'FROM busybox',
        'WORKDIR /w',
        'COPY *.txt rel/',
        'COPY dir /dir-contents',
        'COPY --chown=1234:5678 --chmod=0640 a.txt /owned',
        'ARG DEST=/from-arg',
        'COPY ["a.txt", "${DEST}"]',
        'COPY a.txt b.txt /multi/',
      ].join('\n'),
      'a.txt': 'A\n', 'b.txt': 'B\n', 'c.md': 'C\n', 'dir/inner/x': 'X\n',
    });
    await buildOk(env, ctx, ['-t', 'copies']);
    const out = await runIn(env, 'copies', 'cd / && ls /w/rel && cat /dir-contents/inner/x && stat -c "%u:%g %a" /owned && cat /from-arg && ls /multi');
    expect(out.split('\n')).toEqual(['a.txt', 'b.txt', 'X', '1234:5678 640', 'A', 'a.txt', 'b.txt']);
  });

  it('multiple sources need a directory destination ending in /', async () => {
    const ctx = await context(env, { Containerfile: 'FROM busybox\nCOPY a.txt b.txt /notadir\n', 'a.txt': 'A', 'b.txt': 'B' });
    const r = await env.barge(['build', ctx]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('the destination must be a directory and end with a /');
    await noContainers(env);
  });

  it('ADD extracts local tarballs; COPY does not', async () => {
    const ctx = await context(env, { Containerfile: 'FROM busybox\nADD files.tar.gz /unpacked/\nCOPY files.tar.gz /kept/\n' });
    const src = join(env.tmp, 'tarsrc');
    await mkdir(join(src, 'd'), { recursive: true });
    await writeFile(join(src, 'd', 'inside.txt'), 'inside\n');
    execFileSync('tar', ['-C', src, '-czf', join(ctx, 'files.tar.gz'), 'd']);
    await buildOk(env, ctx, ['-t', 'added']);
    expect(await runIn(env, 'added', 'cat /unpacked/d/inside.txt && ls /kept')).toBe('inside\nfiles.tar.gz');
  });

  it('COPY heredocs and RUN heredocs', async () => {
    const ctx = await context(env, {
      Containerfile: [
        'FROM busybox',
        'ARG WHO=world',
        'COPY <<EOF /etc/greeting',
        'hello ${WHO} "quoted" \\back',
        'EOF',
        'COPY <<"RAW" /etc/raw',
        'not $WHO',
        'RAW',
        'RUN <<EOF',
        'echo one > /script-out',
        'echo "$WHO" >> /script-out',
        'EOF',
        'RUN cat <<A > /cat-out',
        'via cat',
        'A',
      ].join('\n'),
    });
    await buildOk(env, ctx, ['-t', 'heredocs']);
    expect(await readFiles(env, 'heredocs', ['etc/greeting', 'etc/raw', 'script-out', 'cat-out'])).toEqual([
      'hello world "quoted" \\back\n', 'not $WHO\n', 'one\nworld\n', 'via cat\n',
    ]);
  });
});

describe('RUN', () => {
  it('exec form, shell form, WORKDIR and USER apply', async () => {
    const ctx = await context(env, {
      Containerfile: [
        'FROM busybox',
        'RUN ["sh", "-c", "echo exec > /exec"]',
        'WORKDIR /work',
        'RUN pwd > /pwd',
        'RUN echo "someone:x:4321:4321::/home/someone:/bin/sh" >> /etc/passwd',
        'USER someone',
        'RUN id -u > /tmp/uid',
      ].join('\n'),
    });
    await buildOk(env, ctx, ['-t', 'runs']);
    expect(await readFiles(env, 'runs', ['exec', 'pwd', 'tmp/uid'])).toEqual(['exec\n', '/work\n', '4321\n']);
  });

  it('--mount=type=cache persists across builds, secrets and tmpfs stay out of the image', async () => {
    const ctx = await context(env, {
      Containerfile: [
        'FROM busybox',
        'RUN --mount=type=cache,target=/cache echo x >> /cache/runs && wc -l < /cache/runs > /runs',
        'RUN --mount=type=secret,id=tok cp /run/secrets/tok /copied-secret-length && wc -c < /run/secrets/tok > /secret-len',
        'RUN --mount=type=tmpfs,target=/scratch touch /scratch/f',
        'RUN --mount=type=bind,source=data,target=/ctxdata cat /ctxdata/d.txt > /from-bind',
      ].join('\n'),
      'data/d.txt': 'bound\n',
    });
    const secret = join(env.tmp, 'secret');
    await writeFile(secret, 'abcdef');
    await buildOk(env, ctx, ['--secret', `id=tok,src=${secret}`, '-t', 'mounts1']);
    await buildOk(env, ctx, ['--secret', `id=tok,src=${secret}`, '-t', 'mounts2']);
    expect((await readFiles(env, 'mounts1', ['runs']))[0]?.trim()).toBe('1');
    expect((await readFiles(env, 'mounts2', ['runs']))[0]?.trim()).toBe('2');
    expect(await runIn(env, 'mounts2', 'cat /secret-len /from-bind; ls -d /cache /scratch /run/secrets/tok 2>&1 | grep -c "No such file"')).toBe('6\nbound\n3');
  });
});
