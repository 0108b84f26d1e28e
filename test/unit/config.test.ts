// Expected values are what buildah 1.28.2 produced for the same `buildah config` invocations on a
// `buildah from scratch` container (observed with `buildah inspect`), unless a test says otherwise.
import { describe, expect, it } from 'vitest';
import {
  applyConfig, ConfigError, dockerView, fixupPlatform, goJSON, ociView, parseDuration, parseShellWords,
  type ApplyConfigContext, type BuilderConfig, type ConfigOptions,
} from '../../src/primitives/config.ts';
import type { ContainerConfig, ImageConfig } from '../../src/image/types.ts';

function scratch(): BuilderConfig {
  return { image: { architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [] } }, annotations: {} };
}

const host: ApplyConfigContext = { hostArch: 'amd64', hostOS: 'linux', getenv: () => undefined };

/** Applies each option set in turn, as successive `buildah config` runs; collects warnings. */
function run(...steps: ConfigOptions[]): { cfg: BuilderConfig; warnings: string[] } {
  const warnings: string[] = [];
  let cfg = scratch();
  for (const s of steps) cfg = applyConfig(cfg, s, { ...host, warn: (m) => warnings.push(m) });
  return { cfg, warnings };
}

const config = (...steps: ConfigOptions[]): ContainerConfig => ociView(run(...steps).cfg.image).config ?? {};
const docker = (...steps: ConfigOptions[]) => dockerView(run(...steps).cfg.image).config;

function fails(opts: ConfigOptions, message: string, ctx: ApplyConfigContext = host): void {
  const before = scratch();
  const snapshot = JSON.stringify(before);
  expect(() => applyConfig(before, opts, ctx)).toThrow(ConfigError);
  expect(() => applyConfig(before, opts, ctx)).toThrow(message);
  expect(JSON.stringify(before)).toBe(snapshot);
}

const S = 1_000_000_000;

describe('--cmd', () => {
  it('splits shell form into words (no sh -c)', () => {
    expect(config({ cmd: 'echo hi' }).Cmd).toEqual(['echo', 'hi']);
    expect(config({ cmd: 'sh -c "echo $HOME" x' }).Cmd).toEqual(['sh', '-c', 'echo $HOME', 'x']);
  });
  it('takes a JSON array as is', () => {
    expect(config({ cmd: '["a", "b c"]' }).Cmd).toEqual(['a', 'b c']);
    expect(config({ cmd: '["a",null]' }).Cmd).toEqual(['a', '']);
    expect(config({ cmd: '[1]' }).Cmd).toEqual(['[1]']);
    expect(config({ cmd: '[bad' }).Cmd).toEqual(['[bad']);
    expect(config({ cmd: '"str"' }).Cmd).toEqual(['str']);
  });
  it('stops at shell operators, as go-shellwords does', () => {
    expect(config({ cmd: 'a && b' }).Cmd).toEqual(['a']);
    expect(config({ cmd: 'a 2>f' }).Cmd).toEqual(['a']);
    expect(config({ cmd: 'a2>f' }).Cmd).toEqual(['a2']);
  });
  it('clears to an empty list with "", whitespace, [] or null', () => {
    for (const cmd of ['', ' ', '[]', 'null']) {
      expect(config({ cmd: 'a b' }, { cmd }).Cmd).toBeUndefined();
      expect(docker({ cmd: 'a b' }, { cmd }).Cmd).toEqual([]);
    }
    expect(docker().Cmd).toBeNull();
  });
  it('rejects unbalanced quoting', () => {
    fails({ cmd: "it's" }, 'parsing --cmd "it\'s": invalid command line string');
    fails({ cmd: '(a) b' }, 'parsing --cmd "(a) b": invalid command line string');
    fails({ cmd: 'a\\' }, 'parsing --cmd "a\\\\": invalid command line string');
  });
});

describe('--entrypoint', () => {
  it('wraps shell form in /bin/sh -c and takes JSON as is', () => {
    expect(config({ entrypoint: 'echo hi' }).Entrypoint).toEqual(['/bin/sh', '-c', 'echo hi']);
    expect(config({ entrypoint: '["a","b"]' }).Entrypoint).toEqual(['a', 'b']);
    expect(config({ entrypoint: '"str"' }).Entrypoint).toEqual(['/bin/sh', '-c', '"str"']);
    expect(config({ entrypoint: '[bad' }).Entrypoint).toEqual(['/bin/sh', '-c', '[bad']);
  });
  it('clears with "", whitespace, [] or null', () => {
    for (const entrypoint of ['', ' ', '[]', 'null']) {
      expect(config({ entrypoint: 'a b' }, { entrypoint }).Entrypoint).toBeUndefined();
      expect(docker({ entrypoint: 'a b' }, { entrypoint }).Entrypoint).toEqual([]);
    }
  });
  it('keeps Cmd and warns about it', () => {
    const shell = run({ cmd: 'x' }, { entrypoint: 'a b' });
    expect(config({ cmd: 'x' }, { entrypoint: 'a b' })).toEqual({ Entrypoint: ['/bin/sh', '-c', 'a b'], Cmd: ['x'] });
    expect(shell.warnings).toEqual(['cmd "x" exists but will be ignored because of entrypoint settings']);
    const json = run({ cmd: 'x y' }, { entrypoint: '["a"]' });
    expect(ociView(json.cfg.image).config).toEqual({ Entrypoint: ['a'], Cmd: ['x', 'y'] });
    expect(json.warnings).toEqual(['cmd "x y" exists and will be passed to entrypoint as a parameter']);
  });
  it('is applied before --cmd in the same invocation', () => {
    const r = run({ cmd: 'new', entrypoint: 'e' });
    expect(r.warnings).toEqual([]);
    expect(ociView(r.cfg.image).config).toEqual({ Entrypoint: ['/bin/sh', '-c', 'e'], Cmd: ['new'] });
  });
});

describe('--env', () => {
  it('sets, replacing an earlier value by moving it to the end', () => {
    expect(config({ env: ['A=1', 'B=2'] }, { env: ['A=x'] }).Env).toEqual(['B=2', 'A=x']);
    expect(config({ env: ['A=1', 'A=2', 'A-', 'A=3'] }).Env).toEqual(['A=3']);
    expect(config({ env: [' A = b '] }).Env).toEqual([' A = b ']);
    expect(config({ env: ['A-=2'] }).Env).toEqual(['A-=2']);
    expect(config({ env: ['=v'] }).Env).toEqual(['=v']);
  });
  it('expands $VAR from the config being built, os.Expand style', () => {
    const r = run({ env: ['PATH=/usr/bin'] }, { env: ['PATH=$PATH:/x', 'Q=${PATH}/y', 'U=$UNSET'] });
    expect(r.cfg.image.config?.Env).toEqual(['PATH=/usr/bin:/x', 'Q=/usr/bin:/x/y', 'U=UNSET']);
    expect(r.warnings).toEqual(['error expanding variable "UNSET": no value set in configuration']);
    expect(config({ env: ['A=1', 'B=$A', 'C=${A}x$A', 'D=$A_x', 'E=$1', 'F=${A:-z}'] }).Env)
      .toEqual(['A=1', 'B=1', 'C=1x1', 'D=A_x', 'E=1', 'F=A:-z']);
    expect(config({ env: ['A=$'] }).Env).toEqual(['A=$']);
    expect(config({ env: ['A=$$'] }).Env).toEqual(['A=$']);
    expect(config({ env: ['A=${B'] }).Env).toEqual(['A=B']);
    expect(config({ env: ['A=${}x'] }).Env).toEqual(['A=x']);
  });
  it('takes a bare NAME from the caller, literally', () => {
    const getenv = (n: string) => ({ C: 'fromhost', D: '$A', E: '' } as Record<string, string>)[n];
    const cfg = applyConfig(scratch(), { env: ['A=1', 'C', 'D'] }, { ...host, getenv });
    expect(cfg.image.config?.Env).toEqual(['A=1', 'C=fromhost', 'D=$A']);
    fails({ env: ['E'] }, 'setting env "E": no value given', { ...host, getenv });
    fails({ env: ['A=1', 'NOPE'] }, 'setting env "NOPE": no value given');
    fails({ env: [''] }, 'setting env "": no value given');
  });
  it('removes NAME- (exact name only) and everything with -', () => {
    expect(config({ env: ['AB=1', 'A=2'] }, { env: ['A-'] }).Env).toEqual(['AB=1']);
    expect(config({ env: ['A=1'] }, { env: ['A-'] }).Env).toBeUndefined();
    expect(docker({ env: ['A=1'] }, { env: ['A-'] }).Env).toEqual([]);
    expect(docker({ env: ['A-'] }).Env).toEqual([]);
    expect(docker({ env: ['A=1', '-'] }).Env).toEqual([]);
  });
});

describe('--label / --unsetlabel / --annotation', () => {
  it('sets, removes and clears labels', () => {
    expect(config({ label: ['a=1', 'b=2', 'c'] }, { label: ['a-', 'd=x=y', 'e=$A'] }).Labels).toEqual({ b: '2', c: '', d: 'x=y', e: '$A' });
    expect(config({ label: ['=z'] }).Labels).toEqual({ '': 'z' });
    expect(config({ label: ['a=1'] }, { label: ['a-=3'] }).Labels).toEqual({ a: '1', 'a-': '3' });
    expect(docker({ label: ['a=1', 'b=2'] }, { label: ['-'] }).Labels).toEqual({});
    expect(docker({ label: ['a=1'] }, { label: ['a-'] }).Labels).toEqual({});
    expect(docker({ label: ['a-'] }).Labels).toBeNull();
  });
  it('keeps a "__proto__" key as data', () => {
    expect(Object.keys(config({ label: ['__proto__=x'] }).Labels ?? {})).toEqual(['__proto__']);
  });
  it('removes labels named by --unsetlabel (newer buildah)', () => {
    expect(config({ label: ['a=1', 'b=2'] }, { unsetLabel: ['a', 'zz'] }).Labels).toEqual({ b: '2' });
  });
  it('edits manifest annotations the same way, "-" dropping base-image ones too', () => {
    expect(run({ annotation: ['a=1', 'b'] }, { annotation: ['a-', 'c=3'] }).cfg.annotations).toEqual({ b: '', c: '3' });
    const base = { ...scratch(), annotations: { 'org.opencontainers.image.base.name': 'x' } };
    expect(applyConfig(base, { annotation: ['-'] }, host).annotations).toEqual({});
    expect(run({ annotation: ['a=$HOME'] }).cfg.annotations).toEqual({ a: '$HOME' });
  });
});

describe('--port / --volume / --onbuild (comma-separated flags)', () => {
  it('stores ports verbatim: no /tcp added, no validation', () => {
    expect(config({ port: ['80', '443/udp,8080/tcp', 'abc', '99999', '80/foo'] }).ExposedPorts)
      .toEqual({ '443/udp': {}, '80': {}, '8080/tcp': {}, abc: {}, '99999': {}, '80/foo': {} });
    expect(config({ port: ['"80,90"', ' 70 , 60 '] }).ExposedPorts).toEqual({ '80,90': {}, ' 70 ': {}, ' 60 ': {} });
    expect(config({ port: [''] }).ExposedPorts).toBeUndefined();
  });
  it('removes an exact port with a trailing -, and all with -', () => {
    expect(config({ port: ['80', '443/udp'] }, { port: ['80-', '443/udp-', '9/sctp'] }).ExposedPorts).toEqual({ '9/sctp': {} });
    expect(config({ port: ['80'] }, { port: ['80/tcp-'] }).ExposedPorts).toEqual({ '80': {} });
    expect(config({ port: ['80/tcp-'] }).ExposedPorts).toBeUndefined();
    expect(config({ port: ['80'] }, { port: ['-'] }).ExposedPorts).toBeUndefined();
  });
  it('rejects malformed CSV like pflag does', () => {
    fails({ port: ['"a'] }, 'invalid argument "\\"a" for "-p, --port" flag: parse error on line 1, column 3: extraneous or missing " in quoted-field');
    fails({ volume: ['a"b'] }, 'invalid argument "a\\"b" for "-v, --volume" flag: parse error on line 1, column 2: bare " in non-quoted-field');
    fails({ onbuild: ['RUN echo "hi"'] }, 'invalid argument "RUN echo \\"hi\\"" for "--onbuild" flag: parse error on line 1, column 10: bare " in non-quoted-field');
    fails({ onbuild: ['éa"b'] }, 'parse error on line 1, column 4: bare " in non-quoted-field');
    fails({ onbuild: ['"abc"def'] }, 'parse error on line 1, column 5: extraneous or missing " in quoted-field');
    fails({ onbuild: ['x,"éa'] }, 'parse error on line 1, column 7: extraneous or missing " in quoted-field');
    fails({ onbuild: ['"a\nb'] }, 'record on line 1; parse error on line 2, column 2: extraneous or missing " in quoted-field');
    fails({ onbuild: ['\n\n'] }, 'invalid argument "\\n\\n" for "--onbuild" flag: EOF');
  });
  it('adds and removes volumes verbatim', () => {
    expect(config({ volume: ['/data', '/a,/b', 'rel', '/x/'] }, { volume: ['/a-', '/nonexist-'] }).Volumes)
      .toEqual({ '/b': {}, '/data': {}, '/x/': {}, rel: {} });
    expect(docker({ volume: ['/x'] }, { volume: ['-'] }).Volumes).toEqual({});
    expect(docker({ volume: ['/x'] }, { volume: ['/x-'] }).Volumes).toEqual({});
    expect(docker({ volume: ['/x-'] }).Volumes).toBeNull();
  });
  it('appends ONBUILD triggers (Docker only), split on commas', () => {
    const r = run({ onbuild: ['RUN echo a,b', 'RUN x'] }, { onbuild: ['COPY . /'] });
    expect(dockerView(r.cfg.image).config.OnBuild).toEqual(['RUN echo a', 'b', 'RUN x', 'COPY . /']);
    expect(r.warnings[0]).toBe('ONBUILD is not supported for OCI image format, RUN echo a will be ignored. Must use `docker` format');
    expect(r.warnings).toHaveLength(4);
    expect(docker({ onbuild: ['"RUN echo ""hi"", there"'] }).OnBuild).toEqual(['RUN echo "hi", there']);
    expect(docker({ onbuild: ['RUN x'] }, { onbuild: ['-'] }).OnBuild).toEqual(['RUN x', '-']);
    expect(docker({ onbuild: [','] }).OnBuild).toEqual(['', '']);
    expect(docker({ onbuild: ['RUN a\nRUN b'] }).OnBuild).toEqual(['RUN a']);
    expect(docker({ onbuild: ['"a\r\nb"'] }).OnBuild).toEqual(['a\nb']);
    expect(docker({ onbuild: ['a\rb'] }).OnBuild).toEqual(['a\rb']);
    expect(docker().OnBuild).toEqual([]);
    expect(ociView(r.cfg.image).config).toEqual({});
  });
});

describe('--shell', () => {
  it('splits words and never parses JSON', () => {
    const r = run({ shell: '/bin/bash -c' });
    expect(dockerView(r.cfg.image).config.Shell).toEqual(['/bin/bash', '-c']);
    expect(r.warnings).toEqual(['SHELL is not supported for OCI image format, [/bin/bash -c] will be ignored. Must use `docker` format']);
    expect(docker({ shell: '["/bin/bash","-c"]' }).Shell).toEqual(['[/bin/bash,-c]']);
  });
  it('clears with "" and warns nothing', () => {
    const r = run({ shell: 'sh' }, { shell: '' });
    expect(dockerView(r.cfg.image).config.Shell).toBeUndefined();
    expect(r.warnings).toHaveLength(1);
  });
  it('rejects bad quoting before looking at --env', () => {
    fails({ shell: "it's", env: ['NOPE'] }, 'parsing --shell "it\'s": invalid command line string');
  });
});

describe('--healthcheck*', () => {
  const hc = (...steps: ConfigOptions[]) => docker(...steps).Healthcheck;
  it('splits the test into words, CMD-SHELL included, cut at ||', () => {
    expect(hc({ healthcheck: 'CMD curl -f http://x/' })).toEqual({ Test: ['CMD', 'curl', '-f', 'http://x/'], Interval: 30 * S, Timeout: 30 * S, Retries: 3 });
    expect(hc({ healthcheck: 'CMD-SHELL curl -f http://x/ || exit 1' })?.Test).toEqual(['CMD-SHELL', 'curl', '-f', 'http://x/']);
    expect(hc({ healthcheck: 'CMD-SHELL "curl -f x || exit 1"' })?.Test).toEqual(['CMD-SHELL', 'curl -f x || exit 1']);
    expect(hc({ healthcheck: 'NONE' })?.Test).toEqual(['NONE']);
    expect(hc({ healthcheck: 'curl x' })?.Test).toEqual(['curl', 'x']);
  });
  it('starts from Docker defaults with a NONE test when only timings are given', () => {
    expect(hc({ healthcheckInterval: '10s' })).toEqual({ Test: ['NONE'], Interval: 10 * S, Timeout: 30 * S, Retries: 3 });
  });
  it('sets every timing, and drops zero ones', () => {
    expect(hc({ healthcheck: 'CMD a', healthcheckInterval: '1m30s', healthcheckTimeout: '500ms', healthcheckStartPeriod: '1h', healthcheckRetries: '5' }))
      .toEqual({ Test: ['CMD', 'a'], Interval: 90 * S, Timeout: 500_000_000, StartPeriod: 3600 * S, Retries: 5 });
    expect(hc({ healthcheck: 'CMD a' }, { healthcheckRetries: '0', healthcheckInterval: '0s' })).toEqual({ Test: ['CMD', 'a'], Timeout: 30 * S });
    expect(hc({ healthcheck: 'CMD a' }, { healthcheckTimeout: '2s' })).toEqual({ Test: ['CMD', 'a'], Interval: 30 * S, Timeout: 2 * S, Retries: 3 });
    expect(hc({ healthcheckStartInterval: '2s' })?.StartInterval).toBe(2 * S);
    expect(hc({ healthcheckInterval: '-5s' })?.Interval).toBe(-5 * S);
  });
  it('reads retries as a Go integer literal', () => {
    expect(hc({ healthcheckRetries: '0x10' })?.Retries).toBe(16);
    expect(hc({ healthcheckRetries: '010' })?.Retries).toBe(8);
    expect(hc({ healthcheckRetries: '0b11' })?.Retries).toBe(3);
    expect(hc({ healthcheckRetries: '1_000' })?.Retries).toBe(1000);
    expect(hc({ healthcheckRetries: '+4' })?.Retries).toBe(4);
    expect(hc({ healthcheckRetries: '-1' })?.Retries).toBe(-1);
  });
  it('removes the healthcheck with an empty test', () => {
    expect(hc({ healthcheck: 'CMD a' }, { healthcheck: '', healthcheckInterval: '5s' })).toBeUndefined();
    expect(run({ healthcheck: '' }).warnings).toEqual([]);
  });
  it('warns once for OCI containers, not for docker ones', () => {
    expect(run({ healthcheck: 'CMD a', healthcheckInterval: '1s' }).warnings)
      .toEqual(['HEALTHCHECK is not supported for OCI image format and will be ignored. Must use `docker` format']);
    const warnings: string[] = [];
    applyConfig(scratch(), { healthcheck: 'CMD a', comment: 'c', hostname: 'h', shell: 'sh' }, { ...host, format: 'docker', warn: (m) => warnings.push(m) });
    expect(warnings).toEqual([]);
  });
  it('rejects bad values with buildah\'s messages', () => {
    fails({ healthcheck: "CMD 'x" }, 'parsing --healthcheck "CMD \'x": invalid command line string');
    fails({ healthcheckInterval: '10' }, 'parsing --healthcheck-interval "10": time: missing unit in duration "10"');
    fails({ healthcheckInterval: '10x' }, 'parsing --healthcheck-interval "10x": time: unknown unit "x" in duration "10x"');
    fails({ healthcheckInterval: '' }, 'parsing --healthcheck-interval "": time: invalid duration ""');
    fails({ healthcheckTimeout: '1x' }, 'parsing --healthcheck-timeout "1x": time: unknown unit "x" in duration "1x"');
    fails({ healthcheckStartPeriod: '-' }, 'parsing --healthcheck-start-period "-": time: invalid duration "-"');
    fails({ healthcheckRetries: 'abc' }, 'invalid argument "abc" for "--healthcheck-retries" flag: strconv.ParseInt: parsing "abc": invalid syntax');
    fails({ healthcheckRetries: '' }, 'strconv.ParseInt: parsing "": invalid syntax');
    fails({ healthcheckRetries: ' 3' }, 'strconv.ParseInt: parsing " 3": invalid syntax');
    fails({ healthcheckRetries: '99999999999999999999' }, 'strconv.ParseInt: parsing "99999999999999999999": value out of range');
  });
});

describe('plain settings', () => {
  it('sets user, workdir, stop signal, author, comment, created-by, history comment, hostname, domainname', () => {
    const r = run({
      user: 'app:grp', workingdir: '/srv', hostname: 'h1', domainname: 'example.com', author: 'Me <me@x>', comment: 'c1',
      createdBy: 'cb x', historyComment: 'hc', stopSignal: 'SIGTERM',
    });
    expect(ociView(r.cfg.image)).toEqual({
      author: 'Me <me@x>', architecture: 'amd64', os: 'linux', config: { User: 'app:grp', WorkingDir: '/srv', StopSignal: 'SIGTERM' },
      rootfs: { type: 'layers', diff_ids: [] },
    });
    const d = dockerView(r.cfg.image);
    expect(d.comment).toBe('c1');
    expect(d.config).toMatchObject({ Hostname: 'h1', Domainname: 'example.com', User: 'app:grp', WorkingDir: '/srv' });
    expect(r.cfg.createdBy).toBe('cb x');
    expect(r.cfg.historyComment).toBe('hc');
    expect(r.warnings).toEqual([
      'COMMENT is not supported for OCI image format, comment c1 will be ignored. Must use `docker` format',
      'DOMAINNAME is not supported for OCI image format, domainname example.com will be ignored. Must use `docker` format',
      'HOSTNAME is not supported for OCI V1 image format, hostname h1 will be ignored. Must use `docker` format',
    ]);
  });
  it('unsets with empty values, without warnings', () => {
    const r = run({ user: 'u', stopSignal: 'x', comment: 'c', hostname: 'h' }, { user: '', stopSignal: '', comment: '', hostname: '', domainname: '', createdBy: '' });
    expect(ociView(r.cfg.image).config).toEqual({});
    expect(dockerView(r.cfg.image).comment).toBeUndefined();
    expect(r.cfg.createdBy).toBeUndefined();
    expect(r.warnings).toHaveLength(2);
  });
  it('does not validate stop signals', () => {
    for (const s of ['bogus', 'term', '0', '99', '-9', 'SIGRTMIN+3', ' 9']) expect(config({ stopSignal: s }).StopSignal).toBe(s);
  });
});

describe('platform', () => {
  const platform = (...steps: ConfigOptions[]) => {
    const o = ociView(run(...steps).cfg.image);
    return [o.architecture, o.variant, o.os, o['os.version']];
  };
  it('sets arch, os, variant and os.version', () => {
    expect(platform({ arch: 'arm64', os: 'freebsd', variant: 'v8', osVersion: '10.0' })).toEqual(['arm64', 'v8', 'freebsd', '10.0']);
    expect(platform({ arch: 'arm64', variant: 'v8', osVersion: '1' }, { variant: '', osVersion: '' })).toEqual(['arm64', undefined, 'linux', undefined]);
  });
  it('normalises the architecture while no variant is set', () => {
    expect(platform({ arch: 'x86_64', os: 'Linux' })).toEqual(['amd64', undefined, 'Linux', undefined]);
    expect(platform({ arch: 'aarch64' })[0]).toBe('arm64');
    expect(platform({ arch: 'armhf' })).toEqual(['arm', 'v7', 'linux', undefined]);
    expect(platform({ arch: 'armel' })).toEqual(['arm', 'v6', 'linux', undefined]);
    expect(platform({ arch: 'arm' })).toEqual(['arm', 'v7', 'linux', undefined]);
    expect(platform({ arch: 'i386' })[0]).toBe('386');
    expect(platform({ arch: 'AMD64' })[0]).toBe('amd64');
    expect(platform({ arch: 'arm64/v8' })).toEqual(['arm64', 'v8', 'linux', undefined]);
    expect(platform({ arch: 'arm/8' })).toEqual(['arm', 'v8', 'linux', undefined]);
    expect(platform({ arch: 'amd64/v1' })).toEqual(['amd64', undefined, 'linux', undefined]);
    expect(platform({ arch: 'a/b/c' })[0]).toBe('a/b/c');
    expect(platform({ arch: 'bogus' })[0]).toBe('bogus');
    expect(platform({ os: 'bogusos', arch: 'aarch64' })).toEqual(['arm64', undefined, 'bogusos', undefined]);
  });
  it('leaves the architecture alone once a variant is set', () => {
    expect(platform({ variant: 'v9' }, { arch: 'aarch64' })).toEqual(['aarch64', 'v9', 'linux', undefined]);
    expect(platform({ arch: 'armhf', variant: 'v6' })).toEqual(['armhf', 'v6', 'linux', undefined]);
    expect(platform({ arch: 'arm', variant: 'v7' }, { arch: 'amd64' })).toEqual(['amd64', 'v7', 'linux', undefined]);
  });
  it('falls back to the host for an empty arch or os', () => {
    expect(platform({ arch: 'arm64', os: 'freebsd' }, { arch: '', os: '' })).toEqual(['amd64', undefined, 'linux', undefined]);
    const img: ImageConfig = { architecture: '', os: '', rootfs: { type: 'layers', diff_ids: [] } };
    fixupPlatform(img, 'arm', 'linux');
    expect([img.architecture, img.variant, img.os]).toEqual(['arm', 'v7', 'linux']);
  });
  it('edits os.features', () => {
    const o = (...s: ConfigOptions[]) => (ociView(run(...s).cfg.image) as ImageConfig & { 'os.features'?: string[] })['os.features'];
    expect(o({ osFeature: ['a', 'b,c'] }, { osFeature: ['a-'] })).toEqual(['b,c']);
    expect(o({ osFeature: ['a'] }, { osFeature: ['-'] })).toBeUndefined();
  });
});

describe('applyConfig', () => {
  it('returns a new object and leaves its input alone', () => {
    const before = scratch();
    const after = applyConfig(before, { env: ['A=1'], label: ['x=y'] }, host);
    expect(after).not.toBe(before);
    expect(before.image.config).toEqual({});
  });
  it('reports the first error in buildah\'s processing order', () => {
    fails({ env: ['NOPE'], cmd: "it's" }, 'setting env "NOPE"');
    fails({ cmd: "it's", healthcheck: "'" }, 'parsing --cmd');
    fails({ healthcheck: "'", healthcheckInterval: '1x' }, 'parsing --healthcheck ');
    fails({ healthcheckTimeout: '1x', healthcheckInterval: '1x' }, 'parsing --healthcheck-interval');
    fails({ healthcheckStartPeriod: '1x', healthcheckTimeout: '1x' }, 'parsing --healthcheck-start-period');
    fails({ healthcheck: 'CMD a', healthcheckRetries: 'x', env: ['NOPE'] }, '--healthcheck-retries');
  });
  it('warns in buildah\'s order', () => {
    const r = run({ cmd: 'x' }, {
      onbuild: ['RUN a'], hostname: 'h', domainname: 'd', comment: 'c', healthcheck: 'CMD a', shell: 'sh -c', entrypoint: 'e', stopSignal: 'x',
    });
    expect(r.warnings.map((w) => w.split(' ')[0])).toEqual(['SHELL', 'cmd', 'HEALTHCHECK', 'COMMENT', 'DOMAINNAME', 'HOSTNAME', 'ONBUILD']);
  });
});

describe('views', () => {
  const full = () => run({
    arch: 'arm64', variant: 'v8', osVersion: '1.0', author: 'au', comment: 'co', label: ['a=b'], env: ['A=1'], cmd: 'x y',
    healthcheck: 'CMD a', shell: 'sh -c', port: ['80'], volume: ['/v'], onbuild: ['RUN x'], hostname: 'h', domainname: 'd',
    user: 'u', workingdir: '/w', stopSignal: 'TERM', entrypoint: '["e"]',
  }).cfg.image;

  it('ociView matches buildah inspect\'s OCIv1, key order included', () => {
    expect(JSON.stringify(ociView(full()))).toBe(JSON.stringify({
      author: 'au', architecture: 'arm64', variant: 'v8', os: 'linux', 'os.version': '1.0',
      config: {
        User: 'u', ExposedPorts: { 80: {} }, Env: ['A=1'], Entrypoint: ['e'], Cmd: ['x', 'y'], Volumes: { '/v': {} },
        WorkingDir: '/w', Labels: { a: 'b' }, StopSignal: 'TERM',
      },
      rootfs: { type: 'layers', diff_ids: [] },
    }));
  });

  it('dockerView matches buildah inspect\'s Docker, key order included', () => {
    const cc = {
      Hostname: 'h', Domainname: 'd', User: 'u', AttachStdin: false, AttachStdout: false, AttachStderr: false, ExposedPorts: { 80: {} },
      Tty: false, OpenStdin: false, StdinOnce: false, Env: ['A=1'], Cmd: ['x', 'y'],
      Healthcheck: { Test: ['CMD', 'a'], Interval: 30 * S, Timeout: 30 * S, Retries: 3 }, Image: '', Volumes: { '/v': {} },
      WorkingDir: '/w', Entrypoint: ['e'], OnBuild: ['RUN x'], Labels: { a: 'b' }, StopSignal: 'TERM', Shell: ['sh', '-c'],
    };
    const d = dockerView(full());
    delete d.rootfs;
    expect(JSON.stringify(d)).toBe(JSON.stringify({
      comment: 'co', container_config: cc, author: 'au', config: cc, architecture: 'arm64', variant: 'v8', os: 'linux', 'os.version': '1.0',
    }));
  });

  it('dockerView of a fresh scratch container', () => {
    const empty = {
      Hostname: '', Domainname: '', User: '', AttachStdin: false, AttachStdout: false, AttachStderr: false, Tty: false, OpenStdin: false,
      StdinOnce: false, Env: null, Cmd: null, Image: '', Volumes: null, WorkingDir: '', Entrypoint: null, OnBuild: [], Labels: null,
    };
    expect(dockerView(scratch().image)).toEqual({ container_config: empty, config: empty, architecture: 'amd64', os: 'linux', rootfs: { type: 'layers' } });
  });

  it('orders history fields per format', () => {
    const img: ImageConfig = { ...scratch().image, history: [{ comment: 'hc', author: 'au', created_by: 'cb', created: '2024-01-01T00:00:00Z' }] };
    expect(JSON.stringify(ociView(img).history)).toBe('[{"created":"2024-01-01T00:00:00Z","created_by":"cb","author":"au","comment":"hc"}]');
    expect(JSON.stringify(dockerView(img).history)).toBe('[{"created":"2024-01-01T00:00:00Z","author":"au","created_by":"cb","comment":"hc"}]');
  });
});

describe('goJSON', () => {
  it('writes maps in Go order and escapes like encoding/json', () => {
    const c = ociView(run({ port: ['8080', '443/tcp'], label: ['k=a<b'], author: 'Me <me@x> & y' }).cfg.image);
    // Compared with the config blob buildah 1.28.2 committed for the same settings.
    expect(goJSON({ author: c.author, config: c.config }))
      .toBe('{"author":"Me \\u003cme@x\\u003e \\u0026 y","config":{"ExposedPorts":{"443/tcp":{},"8080":{}},"Labels":{"k":"a\\u003cb"}}}');
    expect(goJSON({ a: [1, { b: null }], c: {} }, '    ')).toBe(JSON.stringify({ a: [1, { b: null }], c: {} }, null, 4));
  });
});

describe('parseDuration', () => {
  it('parses Go durations to nanoseconds', () => {
    expect(parseDuration('30s')).toBe(30 * S);
    expect(parseDuration('1m30s')).toBe(90 * S);
    expect(parseDuration('500ms')).toBe(500_000_000);
    expect(parseDuration('1h2m3.5s')).toBe(3_723_500_000_000);
    expect(parseDuration('1.5s')).toBe(1_500_000_000);
    expect(parseDuration('.5s')).toBe(500_000_000);
    expect(parseDuration('1us')).toBe(1000);
    expect(parseDuration('1µs')).toBe(1000);
    expect(parseDuration('2ns')).toBe(2);
    expect(parseDuration('+3s')).toBe(3 * S);
    expect(parseDuration('-5s')).toBe(-5 * S);
    expect(parseDuration('0')).toBe(0);
    expect(parseDuration('1s1s')).toBe(2 * S);
    expect(parseDuration('1.0000000001s')).toBe(S);
  });
  it('rejects what Go rejects', () => {
    expect(() => parseDuration('10')).toThrow('time: missing unit in duration "10"');
    expect(() => parseDuration('1e3s')).toThrow('time: unknown unit "e" in duration "1e3s"');
    expect(() => parseDuration(' 3s')).toThrow('time: invalid duration " 3s"');
    expect(() => parseDuration('9999999999h')).toThrow('time: invalid duration "9999999999h"');
    expect(() => parseDuration('.s')).toThrow('time: invalid duration ".s"');
    expect(() => parseDuration('1µx')).toThrow('time: unknown unit "\\xc2\\xb5x" in duration "1\\xc2\\xb5x"');
    expect(() => parseDuration('3S')).toThrow(ConfigError);
  });
});

describe('parseShellWords (go-shellwords 1.0.12)', () => {
  const cases: [string, string[]][] = [
    ['a\\ b', ['a b']], [`a 'b c' "d \\"e"`, ['a', 'b c', 'd "e']], ['a "b\\nc"', ['a', 'bnc']], ["a 'b\\nc'", ['a', 'b\\nc']],
    ['a\\tb', ['atb']], [';a b', []], ['a #b', ['a', '#b']], ['a  "" b', ['a', '', 'b']], ['a"b"c', ['abc']], ['a\tb\nc', ['a', 'b', 'c']],
    ['echo `x`', ['echo', '`x`']], ['echo $(x)', ['echo', '$(x)']], ['$(a b) c', ['$(a b)', 'c']], ['$(a "b)', ['$(a "b)']],
    ['a) b)', ['a) b)']], ['"a;b" c', ['a;b', 'c']], ['a\\;b', ['a;b']], ["'a\\'", ['a\\']], ['é ü', ['é', 'ü']],
  ];
  it.each(cases)('%j', (line, words) => expect(parseShellWords(line)).toEqual(words));
  it.each(['a)', '`a "b`', "`a 'b`", '$(a (b))', 'x$(', '$ (a)', '"$(a" b)'])('rejects %j', (line) => {
    expect(() => parseShellWords(line)).toThrow('invalid command line string');
  });
});
