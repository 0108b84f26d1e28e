// barge build: every instruction's effect on the image config and files, ARG/ENV scoping,
// multi-stage builds and COPY/ADD flags (black-box, busybox base, no --layers).
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeFailure, type Env } from '../helpers.ts';
import { busyboxEnv } from '../fixtures.ts';
import { buildOk, context, DEFAULT_PATH, imageConfig, imageJSON, noContainers, readFiles, runIn } from './lib.ts';

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
    expect(c.Env).toEqual([DEFAULT_PATH, 'A=1', 'B=two words', 'C=-x', 'LEGACY=value with spaces']);
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
    const args = ['build', '-q', '--label', 'b=2', '--annotation', 'org.example=yes', '--iidfile', iid, '--timestamp', '0', '-t', 'meta', ctx];
    const built = await env.barge(args);
    expect(built.code, describeFailure(args, built)).toBe(0);
    // As Buildah: with --iidfile the id goes only to the file.
    expect(built.stdout).toBe('');
    const { readFile } = await import('node:fs/promises');
    const r = { id: (await readFile(iid, 'utf8')).replace(/^sha256:/, '') };
    expect(r.id).toMatch(/^[0-9a-f]{64}$/);
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
    const { stderr, stdout } = await buildOk(env, ctx, ['--build-arg', 'GLOBAL=cli', '--build-arg', 'FROMENV', '--build-arg', 'NOBODY=x', '-t', 'args'], { FROMENV: 'host-env' });
    // As Buildah shows it: the base after substitution.
    expect(stdout).toContain('STEP 1/10: FROM busybox\n');
    const [out] = await readFiles(env, 'args', ['out']);
    const arch = { x64: 'amd64', arm64: 'arm64' }[process.arch as 'x64' | 'arm64'] ?? process.arch;
    expect(out).toBe(`before:[]\nafter:[cli] local:[env-wins] fromenv:[host-env]\narch:[${arch}] plat:[]\n`);
    const c = await imageConfig(env, 'args');
    expect(c.Env).toEqual([DEFAULT_PATH, 'LOCAL=env-wins', 'COPYOFARG=cli']);
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

describe('COPY --parents, --exclude and --link', () => {
  it('--parents keeps each source\'s directories, below a /./ pivot when there is one', async () => {
    const ctx = await context(env, {
      Containerfile: [
        'FROM busybox AS build',
        'RUN mkdir -p /out/sub && echo f > /out/sub/f && echo g > /out/g',
        'FROM busybox',
        'COPY --parents a/x.txt b/c/y.txt /p1/',
        'COPY --parents src/./lib/*.c /p2/',
        'COPY --parents */*.md /p3',
        'COPY --parents dir /p4/',
        'COPY --parents ./a/../b/c/y.txt /p5/',
        'COPY --from=build --parents /out/./sub/f /out/g /p6/',
        'WORKDIR /w',
        'COPY --parents=true a/x.txt rel/',
        'COPY --parents=false a/x.txt b/c/y.txt /flat/',
      ].join('\n'),
      'a/x.txt': 'x\n', 'a/doc.md': 'a-doc\n', 'b/doc.md': 'b-doc\n', 'b/c/y.txt': 'y\n',
      'src/lib/m.c': 'm\n', 'src/lib/n.c': 'n\n', 'src/lib/readme.txt': 'r\n', 'dir/inner/z': 'z\n',
    });
    await buildOk(env, ctx, ['-t', 'parents']);
    const listing = await runIn(env, 'parents', 'cd / && find p1 p2 p3 p4 p5 p6 w flat -type f | sort');
    expect(listing.split('\n')).toEqual([
      'flat/x.txt', 'flat/y.txt',
      'p1/a/x.txt', 'p1/b/c/y.txt',
      // Below the pivot only: src/ is dropped, lib/ kept.
      'p2/lib/m.c', 'p2/lib/n.c',
      'p3/a/doc.md', 'p3/b/doc.md',
      'p4/dir/inner/z',
      'p5/b/c/y.txt',
      // From a stage: /out/./sub/f pivots at /out; /out/g keeps its whole path.
      'p6/out/g', 'p6/sub/f',
      'w/rel/a/x.txt',
    ]);
    // The same with --layers, where the parents path is part of each step's cache key.
    await buildOk(env, ctx, ['--layers', '-t', 'parents-layers']);
    expect(await runIn(env, 'parents-layers', 'cd / && find p1 p2 p3 p4 p5 p6 w flat -type f | sort')).toBe(listing);
  });

  it('--exclude leaves matching files out, from the context and from --from', async () => {
    const ctx = await context(env, {
      Containerfile: [
        'FROM busybox AS build',
        'RUN mkdir -p /out/tmp && echo keep > /out/keep.txt && echo drop > /out/drop.tmp && echo t > /out/tmp/t',
        'FROM busybox',
        'COPY --exclude=*.log --exclude=secrets app/ /app/',
        'COPY --exclude=**/*.tmp --exclude=tmp --from=build /out/ /from/',
        'ADD --exclude=b.txt *.txt /added/',
      ].join('\n'),
      'app/main.sh': 'main\n', 'app/debug.log': 'log\n', 'app/secrets/key': 'k\n', 'app/sub/keep.log.txt': 'kept\n',
      'a.txt': 'a\n', 'b.txt': 'b\n',
    });
    for (const layers of [[], ['--layers']]) {
      await buildOk(env, ctx, [...layers, '-t', 'excluded']);
      expect(await runIn(env, 'excluded', 'cd / && find app from added -type f | sort')).toBe(
        'added/a.txt\napp/main.sh\napp/sub/keep.log.txt\nfrom/keep.txt',
      );
    }
  });

  it('--link is accepted (the files are the same); a bad value is an error at its line', async () => {
    const ctx = await context(env, { Containerfile: 'FROM busybox\nCOPY --link a.txt /linked\nCOPY --link=false a.txt /unlinked\n', 'a.txt': 'A\n' });
    await buildOk(env, ctx, ['-t', 'linked']);
    expect(await readFiles(env, 'linked', ['linked', 'unlinked'])).toEqual(['A\n', 'A\n']);
    const bad = await context(env, { Containerfile: 'FROM busybox\n\nCOPY --link=sometimes a.txt /x\n', 'a.txt': 'A\n' });
    const r = await env.barge(['build', bad]);
    expect(r.code).toBe(125);
    expect(r.stderr).toContain(`${join(bad, 'Containerfile')}:3: COPY: invalid --link value "sometimes" (true or false)`);
    await noContainers(env);
  });
});

describe('ADD from a URL', () => {
  it('fetches into the destination (mode 0600, Last-Modified kept) over loopback HTTP', async () => {
    const { createServer } = await import('node:http');
    const server = createServer((req, res) => {
      if (req.url === '/files/data.txt') {
        res.writeHead(200, { 'Content-Type': 'text/plain', 'Last-Modified': 'Wed, 01 Jan 2020 00:00:00 GMT' });
        res.end('served over http\n');
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    const port = (server.address() as { port: number }).port;
    try {
      const ctx = await context(env, {
        Containerfile: `FROM busybox\nADD http://127.0.0.1:${port}/files/data.txt /dl/\nADD http://127.0.0.1:${port}/files/data.txt /named.txt\n`,
      });
      await buildOk(env, ctx, ['-t', 'fromurl']);
      expect(await runIn(env, 'fromurl', 'cat /dl/data.txt /named.txt; stat -c "%a %Y" /dl/data.txt')).toBe('served over http\nserved over http\n600 1577836800');
      const missing = await context(env, { Containerfile: `FROM busybox\nADD http://127.0.0.1:${port}/nope /x\n` });
      const r = await env.barge(['build', missing]);
      expect(r.code).toBe(125);
      expect(r.stderr).toContain('HTTP 404');
      await noContainers(env);
    } finally {
      server.close();
    }
  });
});

describe('default PATH (as Buildah)', () => {
  it('FROM scratch: the stage gets the default PATH in its config and in RUN', async () => {
    const ctx = await context(env, { Containerfile: 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "sh", "-c", "/bin/busybox env > /env"]\n' });
    execFileSync('cp', ['/bin/busybox', join(ctx, 'busybox')]);
    for (const layers of [[], ['--layers']]) {
      await buildOk(env, ctx, [...layers, '-t', 'scratch-path']);
      expect(await imageConfig(env, 'scratch-path')).toEqual({ Env: [DEFAULT_PATH] });
      expect((await readFiles(env, 'scratch-path', ['env']))[0]!.split('\n')).toContain(DEFAULT_PATH);
    }
  });

  it('a base whose Env lacks PATH gets it appended; a base PATH is kept; ENV can extend it', async () => {
    const ctr = await env.bargeOk(['from', 'busybox']);
    await env.bargeOk(['config', '--env', 'X=1', ctr]);
    await env.bargeOk(['commit', '--rm', ctr, 'xenv']);
    const noPath = await context(env, { Containerfile: 'FROM xenv\nRUN echo "$PATH" > /path\n' });
    await buildOk(env, noPath, ['-t', 'xenv-built']);
    expect((await imageConfig(env, 'xenv-built')).Env).toEqual(['X=1', DEFAULT_PATH]);
    expect((await readFiles(env, 'xenv-built', ['path']))[0]).toBe(`${DEFAULT_PATH.slice(5)}\n`);
    // The primitives themselves leave Env alone, as buildah from/commit do.
    expect((await imageConfig(env, 'xenv')).Env).toEqual(['X=1']);

    const own = await context(env, { Containerfile: 'FROM xenv-built\nENV PATH=/opt/bin:$PATH\nRUN echo "$PATH" > /path\n' });
    await buildOk(env, own, ['-t', 'own-path']);
    expect((await imageConfig(env, 'own-path')).Env).toEqual(['X=1', `PATH=/opt/bin:${DEFAULT_PATH.slice(5)}`]);
    expect((await readFiles(env, 'own-path', ['path']))[0]).toBe(`/opt/bin:${DEFAULT_PATH.slice(5)}\n`);
  });

  it('a FROM-only build of such a base gets a config of its own, with and without --layers', async () => {
    const ctx = await context(env, { Containerfile: 'FROM busybox\n' });
    const base = (await env.bargeOk(['images', '-q', '--no-trunc', 'busybox'])).replace(/^sha256:/, '');
    for (const layers of [[], ['--layers']]) {
      const { id } = await buildOk(env, ctx, [...layers, '-t', 'from-only']);
      expect(id).not.toBe(base);
      expect((await imageConfig(env, 'from-only')).Env).toEqual([DEFAULT_PATH]);
    }
  });
});

describe('directives and triggers', () => {
  it('# escape=` makes the backtick the escape and line-continuation character', async () => {
    const ctx = await context(env, {
      Containerfile: ['# escape=`', 'FROM busybox', 'ENV LIT=`$HOME WIN=C:\\dir\\x', 'RUN echo one `', '    two > /joined && echo "back\\slash" > /bs'].join('\n'),
    });
    await buildOk(env, ctx, ['-t', 'escaped']);
    expect((await imageConfig(env, 'escaped')).Env).toEqual([DEFAULT_PATH, 'LIT=$HOME', 'WIN=C:\\dir\\x']);
    expect(await readFiles(env, 'escaped', ['joined', 'bs'])).toEqual(['one two\n', 'back\\slash\n']);
  });

  it('ONBUILD COPY and RUN triggers run first in the child build, with the child\'s context', async () => {
    const parent = await context(env, { Containerfile: 'FROM busybox\nONBUILD COPY app.txt /app/\nONBUILD RUN cat /app/app.txt > /app/seen\n' });
    await buildOk(env, parent, ['--format', 'docker', '-t', 'onbuild-parent']);
    const child = await context(env, { Containerfile: 'FROM onbuild-parent\nRUN echo "after: $(cat /app/seen)" > /after\n', 'app.txt': 'child context\n' });
    for (const layers of [[], ['--layers']]) {
      await buildOk(env, child, [...layers, '--format', 'docker', '-t', 'onbuild-child']);
      expect(await readFiles(env, 'onbuild-child', ['app/app.txt', 'after'])).toEqual(['child context\n', 'after: child context\n']);
    }
  });

  it('WORKDIR makes its directory without --layers; with --layers a later step does (as Buildah)', async () => {
    const ctx = await context(env, { Containerfile: 'FROM busybox\nWORKDIR /made/here\nWORKDIR /src\nCOPY a.c .\n', 'a.c': 'int x;\n' });
    await buildOk(env, ctx, ['-t', 'wd']);
    expect(await runIn(env, 'wd', 'test -d /made/here && echo made; cat /src/a.c')).toBe('made\nint x;');
    await buildOk(env, ctx, ['--layers', '-t', 'wd-layers']);
    expect(await runIn(env, 'wd-layers', 'test -d /made/here || echo not-made; cat /src/a.c')).toBe('not-made\nint x;');
  });
});
