// --format templates print what Podman 4.3 and Buildah 1.28 print for the same data: time.Time
// fields in Go's String() form (JSON keeps RFC 3339), nil maps and slices as map[] and [],
// and a field the Go struct lacks is an error (125) worded as Go words it.
import { beforeAll, expect, it } from 'vitest';
import type { Env } from '../helpers.ts';
import { containerSuite, expectCode } from './lib.ts';

const suite = containerSuite();
let env: Env;
beforeAll(async () => {
  env = suite();
  await env.bargeOk(['run', '--name', 'done', '--network', 'none', 'busybox', 'true']);
});

/** Go's time.Time String() of an RFC 3339 UTC time, written out independently of barge's code. */
function goTime(iso: string): string {
  const m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(?:\.(\d+))?Z$/.exec(iso);
  if (!m) throw new Error(`not an RFC 3339 UTC time: ${iso}`);
  const frac = (m[3] ?? '').replace(/0+$/, '');
  return `${m[1]} ${m[2]}${frac ? `.${frac}` : ''} +0000 UTC`;
}

/** time.Unix(seconds of iso).String() with TZ=UTC. */
const goUnixTime = (iso: string): string => goTime(iso.replace(/\.\d+Z$/, 'Z'));

const UTC = { env: { TZ: 'UTC' } };

async function inspected(args: string[]): Promise<Record<string, unknown>> {
  const [j] = JSON.parse(await env.bargeOk(args)) as Record<string, unknown>[];
  if (!j) throw new Error(`${args.join(' ')} printed no object`);
  return j;
}

it('container inspect prints time.Time fields as Go does, and JSON keeps RFC 3339', async () => {
  const j = await inspected(['container', 'inspect', 'done']);
  const state = j['State'] as Record<string, string>;
  const f = '{{.Created}}|{{.State.StartedAt}}|{{.State.FinishedAt}}|{{.State.CheckpointedAt}}';
  const want = `${goTime(j['Created'] as string)}|${goTime(state['StartedAt']!)}|${goTime(state['FinishedAt']!)}|0001-01-01 00:00:00 +0000 UTC`;
  expect(await env.bargeOk(['container', 'inspect', '--format', f, 'done'])).toBe(want);
  expect(await env.bargeOk(['inspect', '--format', f, 'done'])).toBe(want);
  expect(await env.bargeOk(['inspect', '--format', '{{json .Created}}', 'done'])).toBe(JSON.stringify(j['Created']));
  expect(await env.bargeOk(['inspect', '--format', '{{.Created.Unix}}', 'done'])).toBe(String(Math.floor(Date.parse(j['Created'] as string) / 1000)));
});

it('nil maps and slices print as map[] and [], json as null', async () => {
  const f = '{{.Config.Labels}}|{{json .Config.Labels}}|{{.State.Health.Log}}|{{.HostConfig.Links}}|{{.ID}}';
  const id = await env.bargeOk(['inspect', '--format', '{{.Id}}', 'done']);
  expect(await env.bargeOk(['container', 'inspect', '--format', f, 'done'])).toBe(`map[]|null|[]|[]|${id}`);
  expect(await env.bargeOk(['image', 'inspect', '--format', '{{.Labels}}|{{.Config.Labels}}|{{.Config.Env}}', 'busybox'])).toBe('map[]|map[]|[]');
});

it("a field the struct lacks fails with 125 and Go's message", async () => {
  const r = await env.barge(['container', 'inspect', '--format', '{{.NoSuch}}', 'done']);
  expectCode(r, 125);
  expect(r.stderr).toBe(
    'Error: inspecting object: printing inspect output: template: inspect:1:13: executing "inspect" at <.NoSuch>: ' +
      "can't evaluate field NoSuch in type interface {}\n",
  );
  const nested = await env.barge(['inspect', '--format', '{{.Config.NoSuch}}', 'done']);
  expectCode(nested, 125);
  expect(nested.stderr).toContain('template: inspect:1:20: executing "inspect" at <.Config.NoSuch>: can\'t evaluate field NoSuch in type *define.InspectContainerConfig');
  const ps = await env.barge(['ps', '-a', '--format', '{{.ID}} {{.Nope}}']);
  expectCode(ps, 125);
  expect(ps.stderr).toBe('Error: template: ps:1:21: executing "ps" at <.Nope>: can\'t evaluate field Nope in type containers.psReporter\n');
  const parse = await env.barge(['images', '--format', '{{nosuch .ID}}']);
  expectCode(parse, 125);
  expect(parse.stderr).toBe('Error: template: images:1: function "nosuch" not defined\n');
});

it("ps, images, history, secrets and volumes give Podman's time columns", async () => {
  const j = await inspected(['container', 'inspect', 'done']);
  const created = j['Created'] as string;
  expect(await env.bargeOk(['ps', '-a', '--filter', 'name=^done$', '--format', '{{.CreatedAt}}|{{.Created}}'])).toBe(`${goTime(created)}|${goTime(created)}`);

  const img = await inspected(['image', 'inspect', 'busybox']);
  const imgCreated = img['Created'] as string;
  expect(await env.bargeOk(['images', '--format', '{{.CreatedAt}}|{{.CreatedTime}}', 'busybox'], UTC)).toBe(`${goUnixTime(imgCreated)}|${goUnixTime(imgCreated)}`);
  expect(await env.bargeOk(['history', '--format', '{{.CreatedAt}}', 'busybox'], UTC)).toBe(goUnixTime(imgCreated));
  expect(await env.bargeOk(['image', 'inspect', '--format', '{{range .History}}{{.Created}}{{end}}', 'busybox'])).toBe(goTime(imgCreated));
  const summary = JSON.parse(await env.bargeOk(['images', '--format', 'json'], UTC)) as Record<string, unknown>[];
  expect(summary[0]).toMatchObject({ Created: Math.floor(Date.parse(imgCreated) / 1000), CreatedAt: imgCreated.replace(/\.\d+Z$/, 'Z'), Labels: null });

  await env.bargeOk(['secret', 'create', 's1', '-'], { input: 'x' });
  const secret = JSON.parse(await env.bargeOk(['secret', 'inspect', 's1'])) as Record<string, string>[];
  expect(await env.bargeOk(['secret', 'inspect', '--format', '{{.CreatedAt}}|{{.UpdatedAt}}|{{.Spec.Labels}}', 's1'])).toBe(
    `${goTime(secret[0]!['CreatedAt']!)}|${goTime(secret[0]!['UpdatedAt']!)}|map[]`,
  );

  await env.bargeOk(['volume', 'create', 'v1']);
  const vol = await inspected(['volume', 'inspect', 'v1']);
  expect(await env.bargeOk(['volume', 'inspect', '--format', '{{.CreatedAt}}|{{.Status}}|{{.UID}}', 'v1'])).toBe(`${goTime(vol['CreatedAt'] as string)}|map[]|0`);
  expect(await env.bargeOk(['volume', 'ls', '--format', '{{.CreatedAt}}'])).toBe(goTime(vol['CreatedAt'] as string));
});

it('buildah inspect prints the image config times as Go does', async () => {
  const oci = JSON.parse(await env.bargeOk(['inspect', '--type', 'image', 'busybox'])) as { OCIv1: { created: string } };
  const r = await env.barge(['inspect', '--type', 'image', '--format', '{{.OCIv1.Created}}|{{.Docker.Created}}|{{.OCIv1.Config.Labels}}', 'busybox']);
  expectCode(r, 0);
  // Buildah ends the output with a newline only on a terminal.
  expect(r.stdout).toBe(`${goTime(oci.OCIv1.created)}|${goTime(oci.OCIv1.created)}|map[]`);
  const bad = await env.barge(['inspect', '--type', 'image', '--format', '{{.OCIv1.NoSuch}}', 'busybox']);
  expectCode(bad, 125);
  expect(bad.stderr).toBe('Error: template: format:1:8: executing "format" at <.OCIv1.NoSuch>: can\'t evaluate field NoSuch in type v1.Image\n');
});

it('a template failing midway leaves what Go wrote on stdout where the tool writes as it goes (Podman, buildah inspect), nothing where it buffers (buildah containers, skopeo)', async () => {
  const partial = async (args: string[], stdout: string, stderr: string): Promise<void> => {
    const r = await env.barge(args);
    expectCode(r, 125, args);
    expect(r.stdout).toBe(stdout);
    expect(r.stderr).toBe(stderr);
  };
  await partial(['inspect', '--format', '{{.Name}} {{.NoSuch}}', 'done'], 'done ',
    'Error: inspecting object: printing inspect output: template: inspect:1:23: executing "inspect" at <.NoSuch>: can\'t evaluate field NoSuch in type interface {}\n');
  // events' template sees Podman's *events.Event, so an unknown field is an error there too.
  await partial(['events', '--stream=false', '--filter', 'container=done', '--format', '{{.Status}} {{.Nope}}'], 'create ',
    'Error: template: events:1:14: executing "events" at <.Nope>: can\'t evaluate field Nope in type *events.Event\n');
  const ctr = await env.bargeOk(['from', '--name', 'tmpl-wc', 'busybox']);
  await partial(['inspect', '--type', 'container', '--format', '{{.Container}} {{.Nope}}', ctr], 'tmpl-wc ',
    'Error: template: format:1:17: executing "format" at <.Nope>: can\'t evaluate field Nope in type buildah.BuilderInfo\n');
  await partial(['containers', '--format', '{{.ContainerName}} {{.Nope}}'], '',
    'Error: Template parsing error: template: image:1:21: executing "image" at <.Nope>: can\'t evaluate field Nope in type main.containerOutputParams\n');
  await env.bargeOk(['rm', ctr]);
  const layout = `${env.tmp}/tmpl-layout`;
  await env.bargeOk(['push', '-q', 'busybox', `oci:${layout}:v1`]);
  const sk = await env.barge(['skopeo', 'inspect', '--format', '{{.Digest}} {{.Nope}}', `oci:${layout}:v1`]);
  expect(sk.code).toBe(1);
  expect(sk.stdout).toBe('');
  expect(sk.stderr).toContain("can't evaluate field Nope");
});
