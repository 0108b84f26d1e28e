// config end to end: each option lands in the working container's config (inspect) and, after
// commit, in the image (inspect --type image). Parsing details are in test/unit/config.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Env } from '../helpers.ts';
import { busyboxEnv } from '../fixtures.ts';
import { expectError, from } from './lib.ts';

let env: Env;
let ctr: string;
let dockerImage: string;
let ociImage: string;

const inspect = (format: string, name = ctr): Promise<string> => env.bargeOk(['inspect', '--format', format, name]);
const inspectImage = (format: string, name: string): Promise<string> => env.bargeOk(['inspect', '--type', 'image', '--format', format, name]);

beforeAll(async () => {
  ({ env } = await busyboxEnv());
  ctr = await from(env);
  // Every option at once, the way a build script would set them.
  await env.bargeOk([
    'config',
    '--annotation', 'org.example.note=annotated',
    '--annotation', 'doomed=1',
    '--arch', 'arm64',
    '--variant', 'v8',
    '--os', 'linux',
    '--author', 'Test Author <t@example.org>',
    '--cmd', '["echo","from cmd"]',
    '--comment', 'image comment',
    '--created-by', 'made by the config test',
    '--domainname', 'example.org',
    '--entrypoint', '["/bin/sh","-c"]',
    '--env', 'KEEP=kept',
    '--env', 'DROP=dropped',
    '--env', 'WITH_EQUALS=a=b',
    '--healthcheck', 'CMD-SHELL test -e /healthy',
    '--healthcheck-interval', '30s',
    '--healthcheck-retries', '4',
    '--healthcheck-start-period', '5s',
    '--healthcheck-timeout', '10s',
    '--healthcheck-start-interval', '2s',
    '--history-comment', 'history comment',
    '--hostname', 'configured-host',
    '--label', 'org.example.label=labelled',
    '--label', 'drop.me=1',
    '--onbuild', 'RUN echo onbuild',
    '--port', '8080/tcp',
    '--port', '53/udp',
    '--shell', '/bin/ash -c',
    '--stop-signal', 'SIGINT',
    '--user', '33:33',
    '--volume', '/data',
    '--volume', '/cache',
    '--workingdir', '/srv/app',
    ctr,
  ]);
  // Removals use Buildah's trailing "-".
  await env.bargeOk(['config', '--env', 'DROP-', '--label', 'drop.me-', '--annotation', 'doomed-', '--volume', '/cache-', ctr]);
  dockerImage = (await env.bargeOk(['commit', '--format', 'docker', ctr, 'config-docker'])).split('\n').at(-1)!;
  ociImage = (await env.bargeOk(['commit', ctr, 'config-oci'])).split('\n').at(-1)!;
});
afterAll(async () => {
  await env?.cleanup();
});

describe('config in the working container', () => {
  it('--arch, --variant, --os', async () => {
    expect(await inspect('{{.OCIv1.Architecture}}/{{.OCIv1.Variant}}/{{.OCIv1.OS}}')).toBe('arm64/v8/linux');
    expect(await inspect('{{.Docker.Architecture}}/{{.Docker.Variant}}/{{.Docker.OS}}')).toBe('arm64/v8/linux');
  });

  it('--author', async () => {
    expect(await inspect('{{.OCIv1.Author}}|{{.Docker.Author}}')).toBe('Test Author <t@example.org>|Test Author <t@example.org>');
  });

  it('--cmd and --entrypoint (JSON form)', async () => {
    expect(await inspect('{{json .OCIv1.Config.Cmd}} {{json .OCIv1.Config.Entrypoint}}')).toBe('["echo","from cmd"] ["/bin/sh","-c"]');
  });

  it('--cmd and --entrypoint (shell form)', async () => {
    const c = await from(env);
    await env.bargeOk(['config', '--cmd', 'echo two words', '--entrypoint', 'run-me --flag', c]);
    expect(await inspect('{{json .OCIv1.Config.Cmd}} {{json .OCIv1.Config.Entrypoint}}', c)).toBe('["echo","two","words"] ["/bin/sh","-c","run-me --flag"]');
  });

  it('--env K=V adds and K- removes', async () => {
    expect(await inspect('{{json .OCIv1.Config.Env}}')).toBe('["KEEP=kept","WITH_EQUALS=a=b"]');
  });

  it('--env replaces an existing variable, moving it last as Buildah does', async () => {
    const c = await from(env);
    await env.bargeOk(['config', '--env', 'A=1', '--env', 'B=2', c]);
    await env.bargeOk(['config', '--env', 'A=3', c]);
    expect(await inspect('{{json .OCIv1.Config.Env}}', c)).toBe('["B=2","A=3"]');
  });

  it('--label adds and KEY- removes', async () => {
    expect(await inspect('{{json .OCIv1.Config.Labels}}')).toBe('{"org.example.label":"labelled"}');
    expect(await inspect('{{index .OCIv1.Config.Labels "org.example.label"}}')).toBe('labelled');
  });

  it('--annotation adds and KEY- removes', async () => {
    expect(await inspect('{{json .ImageAnnotations}}')).toBe('{"org.example.note":"annotated"}');
  });

  it('--port', async () => {
    expect(await inspect('{{json .OCIv1.Config.ExposedPorts}}')).toBe('{"53/udp":{},"8080/tcp":{}}');
  });

  it('--port PORT- removes a port', async () => {
    const c = await from(env);
    await env.bargeOk(['config', '--port', '80/tcp', '--port', '443/tcp', c]);
    await env.bargeOk(['config', '--port', '80/tcp-', c]);
    expect(await inspect('{{json .OCIv1.Config.ExposedPorts}}', c)).toBe('{"443/tcp":{}}');
  });

  it('--volume adds and PATH- removes', async () => {
    expect(await inspect('{{json .OCIv1.Config.Volumes}}')).toBe('{"/data":{}}');
  });

  it('--user, --workingdir, --stop-signal', async () => {
    expect(await inspect('{{.OCIv1.Config.User}}|{{.OCIv1.Config.WorkingDir}}|{{.OCIv1.Config.StopSignal}}')).toBe('33:33|/srv/app|SIGINT');
  });

  it('--healthcheck and its timings (Docker view)', async () => {
    // Buildah splits the whole value into words, CMD-SHELL included.
    expect(await inspect('{{json .Docker.Config.Healthcheck.Test}}')).toBe('["CMD-SHELL","test","-e","/healthy"]');
    const times = '{{.Docker.Config.Healthcheck.Interval}} {{.Docker.Config.Healthcheck.Timeout}} {{.Docker.Config.Healthcheck.StartPeriod}} {{.Docker.Config.Healthcheck.StartInterval}} {{.Docker.Config.Healthcheck.Retries}}';
    expect(await inspect(times)).toBe('30000000000 10000000000 5000000000 2000000000 4');
  });

  it('--healthcheck NONE disables the check', async () => {
    const c = await from(env);
    await env.bargeOk(['config', '--healthcheck', 'NONE', c]);
    expect(await inspect('{{json .Docker.Config.Healthcheck.Test}}', c)).toBe('["NONE"]');
  });

  it('--hostname, --domainname, --onbuild, --shell, --comment (Docker view)', async () => {
    expect(await inspect('{{.Docker.Config.Hostname}}|{{.Docker.Config.Domainname}}|{{json .Docker.Config.OnBuild}}|{{json .Docker.Config.Shell}}|{{.Docker.Comment}}')).toBe(
      'configured-host|example.org|["RUN echo onbuild"]|["/bin/ash","-c"]|image comment',
    );
  });

  it('--created-by is shown as ImageCreatedBy', async () => {
    expect(await inspect('{{.ImageCreatedBy}}')).toBe('made by the config test');
  });

  it('Docker-only options warn that the OCI format drops them', async () => {
    const c = await from(env);
    const r = await env.barge(['config', '--healthcheck', 'CMD true', '--onbuild', 'RUN true', c]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/HEALTHCHECK is not supported for OCI image format/);
    expect(r.stderr).toMatch(/ONBUILD is not supported for OCI image format/);
  });

  it('the short forms -e, -l, -p and -u work like the long ones', async () => {
    const c = await from(env);
    await env.bargeOk(['config', '-e', 'S=1', '-l', 'short=yes', '-p', '9000/tcp', '-u', 'nobody', c]);
    expect(await inspect('{{json .OCIv1.Config.Env}} {{json .OCIv1.Config.Labels}} {{json .OCIv1.Config.ExposedPorts}} {{.OCIv1.Config.User}}', c)).toBe(
      '["S=1"] {"short":"yes"} {"9000/tcp":{}} nobody',
    );
  });

  it('-v is --volume, as in Buildah', async () => {
    const c = await from(env);
    const r = await env.barge(['config', '-v', '/short-vol', c]);
    expect(r.stdout).not.toMatch(/version/);
    expect(await inspect('{{json .OCIv1.Config.Volumes}}', c)).toBe('{"/short-vol":{}}');
  });

  it('bad values exit 125', async () => {
    await expectError(env, ['config', '--healthcheck-interval', 'soon', ctr]);
    await expectError(env, ['config', '--healthcheck-retries', 'many', ctr]);
    await expectError(env, ['config', '--env', 'A=1', 'no-such-container']);
  });
});

describe('config after commit --format docker', () => {
  it('keeps every setting in the image', async () => {
    const f = [
      '{{.OCIv1.Architecture}}/{{.OCIv1.Variant}}/{{.OCIv1.OS}}',
      '{{.Docker.Author}}',
      '{{json .Docker.Config.Cmd}}',
      '{{json .Docker.Config.Entrypoint}}',
      '{{json .Docker.Config.Env}}',
      '{{json .Docker.Config.Labels}}',
      '{{json .Docker.Config.ExposedPorts}}',
      '{{json .Docker.Config.Volumes}}',
      '{{.Docker.Config.User}}',
      '{{.Docker.Config.WorkingDir}}',
      '{{.Docker.Config.StopSignal}}',
      '{{json .Docker.Config.Healthcheck.Test}}',
      '{{.Docker.Config.Healthcheck.Retries}}',
      '{{.Docker.Config.Hostname}}',
      '{{.Docker.Config.Domainname}}',
      '{{json .Docker.Config.OnBuild}}',
      '{{json .Docker.Config.Shell}}',
      '{{.Docker.Comment}}',
    ].join('\n');
    expect((await inspectImage(f, 'config-docker')).split('\n')).toEqual([
      'arm64/v8/linux',
      'Test Author <t@example.org>',
      '["echo","from cmd"]',
      '["/bin/sh","-c"]',
      '["KEEP=kept","WITH_EQUALS=a=b"]',
      '{"org.example.label":"labelled"}',
      '{"53/udp":{},"8080/tcp":{}}',
      '{"/data":{}}',
      '33:33',
      '/srv/app',
      'SIGINT',
      '["CMD-SHELL","test","-e","/healthy"]',
      '4',
      'configured-host',
      'example.org',
      '["RUN echo onbuild"]',
      '["/bin/ash","-c"]',
      'image comment',
    ]);
    expect(await inspectImage('{{.FromImageID}}', 'config-docker')).toBe(dockerImage);
  });

  it('--created-by, --history-comment and --author make the new history entry', async () => {
    const last = await inspectImage('{{with $h := index .History 1}}{{$h.created_by}}|{{$h.comment}}|{{$h.author}}{{end}}', 'config-docker');
    expect(last).toBe('made by the config test|history comment|Test Author <t@example.org>');
    expect(await inspectImage('{{len .History}}', 'config-docker')).toBe('2');
  });
});

describe('config after commit in OCI format', () => {
  it('keeps the OCI settings', async () => {
    const f = '{{.OCIv1.Config.User}}|{{.OCIv1.Config.WorkingDir}}|{{json .OCIv1.Config.Env}}|{{json .OCIv1.Config.Cmd}}|{{.OCIv1.Config.StopSignal}}|{{json .OCIv1.Config.Volumes}}';
    expect(await inspectImage(f, 'config-oci')).toBe('33:33|/srv/app|["KEEP=kept","WITH_EQUALS=a=b"]|["echo","from cmd"]|SIGINT|{"/data":{}}');
    expect(await inspectImage('{{.FromImageID}}', 'config-oci')).toBe(ociImage);
  });

  it('puts annotations in the manifest', async () => {
    const m = JSON.parse(await env.bargeOk(['inspect', '--type', 'manifest', 'config-oci'])) as { annotations?: Record<string, string> };
    expect(m.annotations?.['org.example.note']).toBe('annotated');
    expect(m.annotations?.['doomed']).toBeUndefined();
  });

  it('leaves out what the OCI format has no place for', async () => {
    const raw = JSON.parse(await inspectImage('{{.Config}}', 'config-oci')) as { config: Record<string, unknown>; comment?: string };
    expect(raw.config).not.toHaveProperty('Healthcheck');
    expect(raw.config).not.toHaveProperty('OnBuild');
    expect(raw.config).not.toHaveProperty('Shell');
    expect(raw.config).not.toHaveProperty('Hostname');
    expect(raw.comment).toBeUndefined();
  });

  it('a container from the committed image starts from its config', async () => {
    const c = await from(env, 'config-oci');
    expect(await inspect('{{.OCIv1.Config.WorkingDir}}|{{.OCIv1.Config.User}}', c)).toBe('/srv/app|33:33');
    expect(await env.bargeOk(['run', c, '--', 'sh', '-c', 'echo "$KEEP $(pwd) $(id -u)"'])).toBe('kept /srv/app 33');
  });
});
