// A CI job inside an unprivileged container (no added capabilities, no /dev/fuse), as Buildah is run
// in CI pods: barge, started by barge itself in a container, builds images with chroot isolation
// and the vfs driver. The outer barge runs as root and as an unprivileged user.
import { chown } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, describeFailure, makeEnv, type BargeResult, type Env } from '../helpers.ts';
import { busyboxRootfsTar } from '../fixtures.ts';
import { assertUserCanRunBarge, ensureUser, hostToolsImageTar, isRoot, makeRootlessEnv, type RootlessEnv } from './lib.ts';

// Everything the job does, printed as KEY=VALUE lines for the assertions below.
const JOB = `set -e
b=${REPO_ROOT}/bin/barge
S="--storage-driver vfs"
echo "capeff=$(grep CapEff /proc/self/status | cut -f2)"
if [ -e /dev/fuse ]; then echo fuse=yes; else echo fuse=no; fi
echo "info=$($b $S info --format '{{.Host.Rootless}} {{.Host.IDMappings.Mode}} {{.Store.GraphDriverName}} {{.Store.GraphRoot}}')"
$b $S import /bb.tar bb >/dev/null 2>&1
mkdir /ctx
printf 'FROM bb\\nRUN echo built > /built && chown 33:44 /built\\nUSER www-data\\nRUN id -u > /tmp/who\\n' > /ctx/Containerfile
$b $S build --isolation chroot -q -t built /ctx >/dev/null
c=$($b $S from built)
$b $S run --isolation chroot --user 0 $c -- sh -c 'echo scripted > /scripted; rm /etc/group'
$b $S commit -q $c final >/dev/null
c2=$($b $S from --isolation chroot final)
echo "owners=$($b $S run $c2 -- stat -c %u:%g /built /var/www | tr '\\n' ' ')"
echo "files=$($b $S run $c2 -- sh -c 'cat /tmp/who /scripted; test -e /etc/group || echo no-group' | tr '\\n' ' ')"
echo "images=$($b $S images --format '{{.Repository}}' | sort | tr '\\n' ' ')"
`;

const CAP_SYS_ADMIN = 21n;

function parse(r: BargeResult): Record<string, string> {
  expect(r.code, describeFailure(['run', '…tools', 'sh', '-c', 'JOB'], r)).toBe(0);
  return Object.fromEntries(r.stdout.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1).trim()]));
}

function checkJob(out: Record<string, string>): void {
  expect(out.capeff).toMatch(/^[0-9a-f]{16}$/);
  expect((BigInt(`0x${out.capeff}`) >> CAP_SYS_ADMIN) & 1n, 'the job holds no CAP_SYS_ADMIN').toBe(0n);
  expect(out.fuse).toBe('no');
  // Root of the container, in a namespace barge made by mapping every id it has to itself.
  expect(out.info).toBe(`false identity vfs /var/lib/barge`);
  expect(out.owners).toBe('33:44 33:33');
  expect(out.files).toBe('33 scripted no-group');
  expect(out.images).toBe('localhost/bb localhost/built localhost/final');
}

async function runJob(barge: Env['barge'] | RootlessEnv['barge'], busybox: string): Promise<Record<string, string>> {
  const args = ['run', '--rm', '-v', '/usr:/usr:ro', '-v', `${REPO_ROOT}:${REPO_ROOT}:ro`, '-v', `${busybox}:/bb.tar:ro`, 'tools', 'sh', '-c', JOB];
  return parse(await barge(args));
}

describe.runIf(isRoot)('build inside an unprivileged container run by barge', () => {
  let env: Env;
  let user: RootlessEnv;

  beforeAll(async () => {
    env = await makeEnv();
    const u = ensureUser('bargetest', '200000-265535');
    assertUserCanRunBarge(u);
    user = await makeRootlessEnv(u);
    const tools = join(user.files, 'tools.tar');
    await hostToolsImageTar(tools);
    await chown(tools, u.uid, u.gid);
    await env.bargeOk(['import', tools, 'tools']);
    await user.bargeOk(['import', tools, 'tools']);
  });
  afterAll(async () => {
    await env?.cleanup();
    await user?.cleanup();
  });

  it('as root outside: build --isolation chroot and run --isolation chroot with vfs', async () => {
    checkJob(await runJob(env.barge, await busyboxRootfsTar()));
  });

  it('as an unprivileged user outside: the same job, nested in the user\'s namespace', async () => {
    checkJob(await runJob(user.barge, user.busyboxTar));
  });

  it('without --isolation chroot the job fails with a clear error, not a hang', async () => {
    const r = await env.barge(['run', '--rm', '-v', '/usr:/usr:ro', '-v', `${REPO_ROOT}:${REPO_ROOT}:ro`, '-v', `${await busyboxRootfsTar()}:/bb.tar:ro`, 'tools', 'sh', '-c',
      `b=${REPO_ROOT}/bin/barge; $b --storage-driver vfs import /bb.tar bb >/dev/null 2>&1; c=$($b --storage-driver vfs from bb); $b --storage-driver vfs run $c true`]);
    expect(r.code).not.toBe(0);
    // The OCI runtime needs mount rights the job does not have.
    expect(r.stderr).toMatch(/^Error: .*(runc|crun)/m);
  });
});
