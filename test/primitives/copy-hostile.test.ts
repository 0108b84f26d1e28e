// copy/add against hostile input: symlinks in the container, in the build context and in
// archives must never lead reads or writes out of their root.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTar, type Env } from '../helpers.ts';
import { busyboxEnv } from '../fixtures.ts';
import { from, sh } from './lib.ts';

let env: Env;
/** Host-only content: finding it in a container means a confinement failed. */
const SECRET = `host-secret-${process.pid}\n`;
let secretFile: string;
let payload: string;
beforeAll(async () => {
  ({ env } = await busyboxEnv());
  secretFile = join(env.tmp, 'secret.txt');
  await writeFile(secretFile, SECRET);
  payload = join(env.tmp, 'payload.txt');
  await writeFile(payload, 'payload\n');
});
afterAll(async () => {
  await env?.cleanup();
});

/** Whether any regular file of the container's root holds the host secret (GNU grep -r never follows symlinks). */
async function containerHasSecret(ctr: string): Promise<boolean> {
  const merged = await env.bargeOk(['mount', ctr]);
  const r = spawnSync('grep', ['-rlsF', '--', SECRET.trim(), merged], { encoding: 'utf8' });
  return r.stdout.trim() !== '';
}

describe('the secret probe', () => {
  it('finds the host secret when it is copied on purpose (so its silence below means something)', async () => {
    const ctr = await from(env);
    expect(await containerHasSecret(ctr)).toBe(false);
    await env.bargeOk(['copy', ctr, secretFile, '/deliberate/']);
    expect(await containerHasSecret(ctr)).toBe(true);
  });
});

describe('destination symlinks in the container', () => {
  it('an absolute symlink to a host directory is resolved inside the container', async () => {
    const ctr = await from(env);
    const hostDir = join(env.tmp, 'host-target-abs');
    await mkdir(hostDir);
    await sh(env, ctr, `ln -s ${hostDir} /evil && ln -s /tmp /evil-tmp`);
    await env.bargeOk(['copy', ctr, payload, '/evil/x']);
    await env.bargeOk(['copy', ctr, payload, '/evil-tmp/barge-hostile-probe']);
    expect(existsSync(join(hostDir, 'x'))).toBe(false);
    expect(existsSync('/tmp/barge-hostile-probe')).toBe(false);
    // Both landed where the container itself sees them.
    expect(await sh(env, ctr, 'cat /evil/x /tmp/barge-hostile-probe')).toBe('payload\npayload');
    const merged = await env.bargeOk(['mount', ctr]);
    expect(await readFile(join(merged, hostDir, 'x'), 'utf8')).toBe('payload\n');
  });

  it('a relative symlink climbing with .. stays at the container root', async () => {
    const ctr = await from(env);
    const hostDir = join(env.tmp, 'host-target-rel');
    await mkdir(hostDir);
    // Enough .. to reach the host root from anywhere in the store, then down to hostDir.
    const climb = '../'.repeat(30) + hostDir.replace(/^\/+/, '');
    await sh(env, ctr, `rm -rf /etc/sub; ln -s ${climb} /etc/sub; ln -s ../../../../../../../../../../host /escape`);
    await env.bargeOk(['copy', ctr, payload, '/etc/sub/y']);
    await env.bargeOk(['copy', ctr, payload, '/escape/z']);
    expect(existsSync(join(hostDir, 'y'))).toBe(false);
    expect(existsSync('/host/z')).toBe(false);
    expect(await sh(env, ctr, 'cat /etc/sub/y /escape/z')).toBe('payload\npayload');
  });

  it('a final-component symlink to a host file replaces the link, never the host file', async () => {
    const ctr = await from(env);
    await sh(env, ctr, `ln -s ${secretFile} /victim`);
    await env.bargeOk(['copy', ctr, payload, '/victim']);
    expect(await readFile(secretFile, 'utf8')).toBe(SECRET);
    expect(await sh(env, ctr, 'cat /victim')).toBe('payload');
  });

  it('add of an archive through a symlinked directory stays in the container', async () => {
    const ctr = await from(env);
    const hostDir = join(env.tmp, 'host-target-add');
    await mkdir(hostDir);
    await sh(env, ctr, `ln -s ${hostDir} /evil`);
    const { execFileSync } = await import('node:child_process');
    const tarFile = join(env.tmp, 'small.tar');
    execFileSync('tar', ['-C', env.tmp, '-cf', tarFile, 'payload.txt']);
    await env.bargeOk(['add', ctr, tarFile, '/evil/']);
    expect(existsSync(join(hostDir, 'payload.txt'))).toBe(false);
    expect(await sh(env, ctr, `cat ${hostDir}/payload.txt`)).toBe('payload');
  });
});

describe('hostile archives given to add', () => {
  it('an entry climbing out with .. is refused and nothing is written outside', async () => {
    const ctr = await from(env);
    const escapeName = `escaped-${process.pid}.txt`;
    const bytes = await makeTar([
      { name: 'ok.txt', data: 'ok\n' },
      { name: `../../../../../../../../../../tmp/${escapeName}`, data: 'pwned\n' },
    ]);
    const tarFile = join(env.tmp, 'dotdot.tar');
    await writeFile(tarFile, bytes);
    const r = await env.barge(['add', ctr, tarFile, '/unpack/']);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/^Error: /m);
    expect(existsSync(`/tmp/${escapeName}`)).toBe(false);
  });

  it('an entry written through a symlink from the same archive does not reach the host', async () => {
    const ctr = await from(env);
    const hostDir = join(env.tmp, 'host-target-tar');
    await mkdir(hostDir);
    const bytes = await makeTar([
      { name: 'link', type: 'symlink', linkname: hostDir, mode: 0o777 },
      { name: 'link/pwned.txt', data: 'pwned\n' },
    ]);
    const tarFile = join(env.tmp, 'symlink.tar');
    await writeFile(tarFile, bytes);
    await env.barge(['add', ctr, tarFile, '/unpack2/']);
    expect(existsSync(join(hostDir, 'pwned.txt'))).toBe(false);
  });
});

describe('--contextdir confines sources', () => {
  let ctx: string;
  beforeAll(async () => {
    ctx = join(env.tmp, 'ctx');
    await mkdir(join(ctx, 'etc'), { recursive: true });
    await mkdir(join(ctx, 'sub'), { recursive: true });
    await writeFile(join(ctx, 'inside.txt'), 'inside\n');
    // What a confined lookup of /etc/passwd finds: the context's own copy.
    await writeFile(join(ctx, 'etc', 'passwd'), 'confined\n');
    await symlink(secretFile, join(ctx, 'leak'));
    await symlink('/etc/passwd', join(ctx, 'leak-passwd'));
    await symlink(env.tmp, join(ctx, 'outdir'));
    await symlink('../secret.txt', join(ctx, 'leak-rel'));
  });

  /** Copies with --contextdir; the result must be an error or confined content, never the host's. */
  async function confinedCopy(src: string, dest: string): Promise<{ code: number; content: string | null }> {
    const ctr = await from(env);
    const r = await env.barge(['copy', '--contextdir', ctx, ctr, src, dest], { cwd: ctx });
    if (r.code !== 0) {
      expect(r.code).toBe(125);
      expect(r.stderr).toMatch(/^Error: /m);
    }
    expect(await containerHasSecret(ctr)).toBe(false);
    const cat = await env.barge(['run', ctr, '--', 'cat', dest]);
    return { code: r.code, content: cat.code === 0 ? cat.stdout : null };
  }

  it('an absolute symlink to a host file does not copy the host file', async () => {
    const { content } = await confinedCopy('leak', '/leak');
    expect(content === null || content !== SECRET).toBe(true);
  });

  it('a symlink to /etc/passwd resolves inside the context, if at all', async () => {
    const hostPasswd = await readFile('/etc/passwd', 'utf8');
    const { content } = await confinedCopy('leak-passwd', '/leak-passwd');
    expect(content).not.toBe(hostPasswd);
    if (content !== null) expect(content).toBe('confined\n');
  });

  it('a relative symlink out of the context does not copy its target', async () => {
    const { content } = await confinedCopy('leak-rel', '/leak-rel');
    expect(content).not.toBe(SECRET);
  });

  it('a path through a symlinked directory out of the context does not copy its target', async () => {
    const { content } = await confinedCopy('outdir/secret.txt', '/through-dir');
    expect(content).not.toBe(SECRET);
  });

  it('.. cannot climb out of the context', async () => {
    const { content } = await confinedCopy('../secret.txt', '/dotdot');
    expect(content).not.toBe(SECRET);
    const deeper = await confinedCopy('sub/../../secret.txt', '/dotdot2');
    expect(deeper.content).not.toBe(SECRET);
  });

  it('a glob does not pick up what a symlink points at outside', async () => {
    const ctr = await from(env);
    await env.barge(['copy', '--contextdir', ctx, ctr, 'lea*', '/globbed/'], { cwd: ctx });
    expect(await containerHasSecret(ctr)).toBe(false);
  });

  it('copying the whole context keeps symlinks as links instead of following them', async () => {
    const ctr = await from(env);
    await env.bargeOk(['copy', '--contextdir', ctx, ctr, '.', '/ctx/'], { cwd: ctx });
    expect(await sh(env, ctr, 'readlink /ctx/leak; readlink /ctx/leak-rel')).toBe(`${secretFile}\n../secret.txt`);
    expect(await containerHasSecret(ctr)).toBe(false);
  });

  it('.. that stays inside the context still works', async () => {
    const ctr = await from(env);
    await env.bargeOk(['copy', '--contextdir', ctx, ctr, 'sub/../inside.txt', '/inside.txt'], { cwd: ctx });
    expect(await sh(env, ctr, 'cat /inside.txt')).toBe('inside');
  });
});

describe('--from confines sources to the source container', () => {
  it('an absolute symlink in the source container is resolved in that container', async () => {
    const src = await from(env);
    const ctr = await from(env);
    await sh(env, src, `ln -s ${secretFile} /leak && ln -s ${'../'.repeat(30)}${secretFile.replace(/^\/+/, '')} /leak-rel`);
    for (const s of ['/leak', '/leak-rel']) {
      const r = await env.barge(['copy', '--from', src, ctr, s, `/got${s}`]);
      if (r.code !== 0) expect(r.stderr).toMatch(/^Error: /m);
    }
    expect(await containerHasSecret(ctr)).toBe(false);
  });
});
