// copy and add: destination semantics, ownership, modes, --from, archives and URLs.
import { execFileSync } from 'node:child_process';
import { chmod, chown, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Env } from '../helpers.ts';
import { busyboxEnv } from '../fixtures.ts';
import { expectError, from, serve, sh } from './lib.ts';

let env: Env;
let ctx: string;
beforeAll(async () => {
  ({ env } = await busyboxEnv());
  // A host build context: files, a nested directory with a symlink, and tarballs of it.
  ctx = join(env.tmp, 'ctx');
  await mkdir(join(ctx, 'dir', 'sub'), { recursive: true });
  await writeFile(join(ctx, 'a.txt'), 'alpha\n');
  await writeFile(join(ctx, 'b.txt'), 'bravo\n');
  await writeFile(join(ctx, 'c.md'), 'charlie\n');
  await writeFile(join(ctx, 'dir', 'd.txt'), 'delta\n');
  await writeFile(join(ctx, 'dir', 'sub', 's.txt'), 'sierra\n');
  await symlink('d.txt', join(ctx, 'dir', 'link'));
  await writeFile(join(ctx, 'owned.txt'), 'owned\n');
  await chown(join(ctx, 'owned.txt'), 1234, 2345);
  await chmod(join(ctx, 'owned.txt'), 0o751);
  const tarSrc = join(env.tmp, 'tarsrc');
  await mkdir(join(tarSrc, 'inner'), { recursive: true });
  await writeFile(join(tarSrc, 'top.txt'), 'top\n');
  await writeFile(join(tarSrc, 'inner', 'deep.txt'), 'deep\n');
  execFileSync('tar', ['-C', tarSrc, '--owner=0', '--group=0', '-cf', join(ctx, 'plain.tar'), '.']);
  execFileSync('tar', ['-C', tarSrc, '--owner=0', '--group=0', '-czf', join(ctx, 'packed.tar.gz'), '.']);
});
afterAll(async () => {
  await env?.cleanup();
});

/** `stat -c '%u:%g %a'` of each path, one line each. */
async function owners(ctr: string, ...paths: string[]): Promise<string[]> {
  return (await env.bargeOk(['run', ctr, '--', 'stat', '-c', '%u:%g %a', ...paths])).split('\n');
}

async function find(ctr: string, dir: string): Promise<string[]> {
  return (await sh(env, ctr, `find ${dir} | sort`)).split('\n');
}

describe('copy: destination semantics', () => {
  let ctr: string;
  beforeAll(async () => {
    ctr = await from(env);
  });
  const copy = (...args: string[]): Promise<string> => env.bargeOk(['copy', ...args], { cwd: ctx });

  it('a trailing slash makes DEST a directory, created when missing', async () => {
    await copy(ctr, 'a.txt', '/newdir/');
    expect(await find(ctr, '/newdir')).toEqual(['/newdir', '/newdir/a.txt']);
    expect(await sh(env, ctr, 'cat /newdir/a.txt')).toBe('alpha');
  });

  it('without a trailing slash a missing DEST is the file\'s new name', async () => {
    await copy(ctr, 'a.txt', '/renamed');
    expect(await sh(env, ctr, 'test -f /renamed && cat /renamed')).toBe('alpha');
  });

  it('an existing directory DEST receives the file', async () => {
    await copy(ctr, 'b.txt', '/etc');
    expect(await sh(env, ctr, 'cat /etc/b.txt')).toBe('bravo');
    expect(await sh(env, ctr, 'head -1 /etc/passwd')).toMatch(/^root:/);
  });

  it('missing parents of DEST are created', async () => {
    await copy(ctr, 'a.txt', '/x/y/z/file');
    expect(await sh(env, ctr, 'cat /x/y/z/file')).toBe('alpha');
  });

  it('a directory source copies its contents, not the directory itself', async () => {
    await copy(ctr, 'dir', '/tree');
    expect(await find(ctr, '/tree')).toEqual(['/tree', '/tree/d.txt', '/tree/link', '/tree/sub', '/tree/sub/s.txt']);
    expect(await sh(env, ctr, 'cat /tree/sub/s.txt')).toBe('sierra');
  });

  it('symlinks inside a directory source stay symlinks', async () => {
    expect(await sh(env, ctr, 'readlink /tree/link')).toBe('d.txt');
  });

  it('several sources go into a directory, made when missing', async () => {
    await copy(ctr, 'a.txt', 'b.txt', '/multi/');
    await copy(ctr, 'a.txt', 'b.txt', '/multi2');
    expect(await find(ctr, '/multi')).toEqual(['/multi', '/multi/a.txt', '/multi/b.txt']);
    expect(await find(ctr, '/multi2')).toEqual(['/multi2', '/multi2/a.txt', '/multi2/b.txt']);
  });

  it('several sources onto an existing file is an error', async () => {
    const r = await env.barge(['copy', ctr, 'a.txt', 'b.txt', '/etc/passwd'], { cwd: ctx });
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/^Error: .*not a directory/m);
    expect(await sh(env, ctr, 'head -1 /etc/passwd')).toMatch(/^root:/);
  });

  it('globs expand on the host', async () => {
    await copy(ctr, '*.txt', '/globbed/');
    expect(await find(ctr, '/globbed')).toEqual(['/globbed', '/globbed/a.txt', '/globbed/b.txt', '/globbed/owned.txt']);
    const r = await env.barge(['copy', ctr, '*.nomatch', '/nothing/'], { cwd: ctx });
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/^Error: /m);
  });

  it('a missing source exits 125 and names the source', async () => {
    const r = await env.barge(['copy', ctr, 'no-such-file', '/x'], { cwd: ctx });
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/^Error: .*no-such-file/m);
  });

  it('an unknown container exits 125', async () => {
    await expectError(env, ['copy', 'no-such-container', join(ctx, 'a.txt'), '/']);
  });

  it('relative DEST and a missing DEST are relative to the working directory', async () => {
    const wd = await from(env);
    await env.bargeOk(['config', '--workingdir', '/work/dir', wd]);
    await copy(wd, 'a.txt', 'rel.txt');
    await copy(wd, 'b.txt');
    await copy(wd, 'c.md', 'sub/');
    expect(await find(wd, '/work/dir')).toEqual(['/work/dir', '/work/dir/b.txt', '/work/dir/rel.txt', '/work/dir/sub', '/work/dir/sub/c.md']);
    expect(await sh(env, wd, 'cat rel.txt')).toBe('alpha');
  });

  it('"." and "x/." name directories, created when missing, as Buildah does', async () => {
    const wd = await from(env);
    await env.bargeOk(['config', '--workingdir', '/app', wd]);
    await copy(wd, 'a.txt', '.');
    await copy(wd, 'b.txt', '/abs/.');
    await copy(wd, 'c.md', './named');
    expect(await find(wd, '/app')).toEqual(['/app', '/app/a.txt', '/app/named']);
    expect(await find(wd, '/abs')).toEqual(['/abs', '/abs/b.txt']);
  });
});

describe('copy: ownership and modes', () => {
  let ctr: string;
  beforeAll(async () => {
    ctr = await from(env);
    // A user only this container knows, so a name resolved on the host could not pass.
    await sh(env, ctr, 'echo "builder:x:4242:4343::/home/builder:/bin/sh" >> /etc/passwd && echo "builders:x:4343:" >> /etc/group');
  });

  it('defaults to 0:0 whoever owns the source, keeping its mode', async () => {
    await env.bargeOk(['copy', ctr, join(ctx, 'owned.txt'), '/owned.txt']);
    expect(await owners(ctr, '/owned.txt')).toEqual(['0:0 751']);
  });

  it('--chown UID:GID applies to files and directories of a tree', async () => {
    await env.bargeOk(['copy', '--chown', '33:33', ctr, join(ctx, 'dir'), '/chowned/']);
    expect(await owners(ctr, '/chowned/d.txt', '/chowned/sub', '/chowned/sub/s.txt')).toEqual(['33:33 644', '33:33 755', '33:33 644']);
  });

  it('--chown NAME resolves the user (and primary group) in the container', async () => {
    await env.bargeOk(['copy', '--chown', 'www-data', ctr, join(ctx, 'a.txt'), '/www.txt']);
    await env.bargeOk(['copy', '--chown', 'builder', ctr, join(ctx, 'a.txt'), '/builder.txt']);
    await env.bargeOk(['copy', '--chown', 'builder:www-data', ctr, join(ctx, 'a.txt'), '/mixed.txt']);
    expect(await owners(ctr, '/www.txt', '/builder.txt', '/mixed.txt')).toEqual(['33:33 644', '4242:4343 644', '4242:33 644']);
  });

  it('--chown with an unknown user exits 125', async () => {
    expect(await expectError(env, ['copy', '--chown', 'nobody-here', ctr, join(ctx, 'a.txt'), '/x.txt'])).toContain('nobody-here');
  });

  it('--chmod sets the mode of what is copied', async () => {
    await env.bargeOk(['copy', '--chmod', '0640', ctr, join(ctx, 'a.txt'), '/chmod.txt']);
    await env.bargeOk(['copy', '--chmod', '700', '--chown', '33:33', ctr, join(ctx, 'dir', 'sub'), '/chmoddir/']);
    expect(await owners(ctr, '/chmod.txt', '/chmoddir/s.txt')).toEqual(['0:0 640', '33:33 700']);
  });

  it('--chmod with a non-octal mode exits 125', async () => {
    await expectError(env, ['copy', '--chmod', 'u+x', ctr, join(ctx, 'a.txt'), '/x.txt']);
  });
});

describe('copy --from', () => {
  let ctr: string;
  let other: string;
  beforeAll(async () => {
    ctr = await from(env);
    other = await from(env);
    await sh(env, other, 'mkdir -p /made && echo from-other > /made/file && echo two > /made/two');
  });

  it('copies from another working container', async () => {
    await env.bargeOk(['copy', '--from', other, ctr, '/made/file', '/got-file']);
    expect(await sh(env, ctr, 'cat /got-file')).toBe('from-other');
  });

  it('copies a directory\'s contents from an image, leaving no helper container behind', async () => {
    const before = await env.bargeOk(['containers', '-q']);
    await env.bargeOk(['copy', '--from', 'busybox', ctr, '/etc', '/image-etc/']);
    expect(await find(ctr, '/image-etc')).toEqual(['/image-etc', '/image-etc/group', '/image-etc/passwd']);
    expect(await env.bargeOk(['containers', '-q'])).toBe(before);
  });

  it('resolves relative sources against the source root, not the host\'s cwd', async () => {
    await env.bargeOk(['copy', '--from', other, ctr, 'made/two', '/got-two'], { cwd: ctx });
    expect(await sh(env, ctr, 'cat /got-two')).toBe('two');
  });

  it('an unknown --from exits 125', async () => {
    expect(await expectError(env, ['copy', '--from', 'nothing-like-this', ctr, '/etc/passwd', '/x'])).toContain('nothing-like-this');
  });
});

describe('add', () => {
  let ctr: string;
  beforeAll(async () => {
    ctr = await from(env);
  });

  it('extracts a plain tar into a directory', async () => {
    await env.bargeOk(['add', ctr, join(ctx, 'plain.tar'), '/plain/']);
    expect(await find(ctr, '/plain')).toEqual(['/plain', '/plain/inner', '/plain/inner/deep.txt', '/plain/top.txt']);
    expect(await sh(env, ctr, 'cat /plain/inner/deep.txt')).toBe('deep');
  });

  it('extracts a gzip tar, DEST without a slash being the directory', async () => {
    await env.bargeOk(['add', ctr, join(ctx, 'packed.tar.gz'), '/packed']);
    expect(await find(ctr, '/packed')).toEqual(['/packed', '/packed/inner', '/packed/inner/deep.txt', '/packed/top.txt']);
  });

  it('--chown applies to extracted entries', async () => {
    await env.bargeOk(['add', '--chown', '33:33', ctr, join(ctx, 'packed.tar.gz'), '/owned/']);
    expect(await owners(ctr, '/owned/top.txt', '/owned/inner', '/owned/inner/deep.txt')).toEqual(['33:33 644', '33:33 755', '33:33 644']);
  });

  it('copy does not extract archives', async () => {
    await env.bargeOk(['copy', ctr, join(ctx, 'packed.tar.gz'), '/notextracted/']);
    expect(await find(ctr, '/notextracted')).toEqual(['/notextracted', '/notextracted/packed.tar.gz']);
  });

  it('a file that is not an archive is copied as is', async () => {
    await env.bargeOk(['add', ctr, join(ctx, 'a.txt'), '/added.txt']);
    expect(await sh(env, ctr, 'cat /added.txt')).toBe('alpha');
  });

  describe('URLs', () => {
    let server: Awaited<ReturnType<typeof serve>>;
    beforeAll(async () => {
      server = await serve({
        '/files/remote.txt': { body: 'from the web\n', headers: { 'last-modified': 'Mon, 01 Jan 2024 00:00:00 GMT' } },
        '/files/archive.tar': { body: 'not really a tar' },
      });
    });
    afterAll(async () => {
      await server?.close();
    });

    it('fetches a URL into a directory under the URL\'s file name, mode 0600', async () => {
      await env.bargeOk(['add', ctr, `${server.url}/files/remote.txt`, '/web/']);
      expect(await sh(env, ctr, 'cat /web/remote.txt')).toBe('from the web');
      expect(await owners(ctr, '/web/remote.txt')).toEqual(['0:0 600']);
      // Last-Modified becomes the file's mtime, as in Buildah.
      expect(await env.bargeOk(['run', ctr, '--', 'stat', '-c', '%Y', '/web/remote.txt'])).toBe('1704067200');
    });

    it('fetches a URL to a file name, honouring --chown and --chmod', async () => {
      await env.bargeOk(['add', '--chown', '33:33', '--chmod', '0644', ctr, `${server.url}/files/remote.txt`, '/web/renamed.txt']);
      expect(await sh(env, ctr, 'cat /web/renamed.txt')).toBe('from the web');
      expect(await owners(ctr, '/web/renamed.txt')).toEqual(['33:33 644']);
    });

    it('a downloaded file is not extracted even when it is named like an archive', async () => {
      await env.bargeOk(['add', ctr, `${server.url}/files/archive.tar`, '/web/']);
      expect(await sh(env, ctr, 'cat /web/archive.tar')).toBe('not really a tar');
    });

    it('an HTTP error exits 125 and names the status', async () => {
      const stderr = await expectError(env, ['add', ctr, `${server.url}/files/missing`, '/web/']);
      expect(stderr).toContain('404');
      expect(await sh(env, ctr, 'test -e /web/missing || echo absent')).toBe('absent');
    });
  });
});
