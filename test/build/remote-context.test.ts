// Remote build contexts (`barge build URL`: a git repository, a tarball or a Containerfile fetched
// over http) and ADD of git repositories and checksummed downloads, as Buildah and BuildKit do.
// Everything is served on loopback by the test: a repository it makes, over `git daemon` (git://)
// and git's "dumb" http protocol from a small static server, which also serves the tarballs.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once as onceEvent } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { join, normalize } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeEnv, makeTar, type BargeResult, type Env } from '../helpers.ts';

const execFileP = promisify(execFile);

let env: Env;
let work: string; // the repository's working tree
let srv: string; // what the servers publish: srv/repo.git (bare)
let daemon: ChildProcess;
let server: Server;
let gitUrl = ''; // git://127.0.0.1:PORT/repo.git
let httpBase = ''; // http://127.0.0.1:PORT
/** Path → body the http server answers with ahead of the files under srv. */
const served = new Map<string, Buffer>();

const gitEnv = { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.com', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example.com' };
const git = async (...args: string[]): Promise<string> => (await execFileP('git', args, { cwd: work, env: gitEnv })).stdout.trim();

/** Writes files into the working tree, commits them on the current branch and publishes the branch; returns the commit. */
async function commit(files: Record<string, string>, msg: string): Promise<string> {
  for (const [p, body] of Object.entries(files)) {
    await mkdir(join(work, p, '..'), { recursive: true });
    await writeFile(join(work, p), body);
  }
  await git('add', '-A');
  await git('commit', '-q', '-m', msg);
  await publish();
  return git('rev-parse', 'HEAD');
}

/** Pushes every branch and tag to the served bare repository. */
async function publish(): Promise<void> {
  await git('push', '-q', '--force', '--all', join(srv, 'repo.git'));
  await git('push', '-q', '--force', '--tags', join(srv, 'repo.git'));
  // What the dumb http protocol reads instead of asking the server.
  await execFileP('git', ['update-server-info'], { cwd: join(srv, 'repo.git') });
}

async function freePort(): Promise<number> {
  const s = createNetServer().listen(0, '127.0.0.1');
  await onceEvent(s, 'listening');
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

beforeAll(async () => {
  env = await makeEnv();
  work = join(env.tmp, 'work');
  srv = join(env.tmp, 'srv');
  await mkdir(work, { recursive: true });
  await execFileP('git', ['init', '-q', '--bare', '-b', 'main', join(srv, 'repo.git')]);
  await git('init', '-q', '-b', 'main');
  await commit({
    Containerfile: 'FROM scratch\nCOPY hello.txt /\n',
    'hello.txt': 'main one\n',
    'Alt.containerfile': 'FROM scratch\nCOPY hello.txt /alt.txt\n',
    'sub/Containerfile': 'FROM scratch\nCOPY s.txt /\n',
    'sub/s.txt': 'sub on main\n',
  }, 'one');
  await git('checkout', '-q', '-b', 'feature');
  await commit({ 'hello.txt': 'feature\n', 'sub/s.txt': 'sub on feature\n' }, 'feature');
  await git('tag', 'v1');
  await git('checkout', '-q', 'main');
  await publish();

  const port = await freePort();
  daemon = spawn('git', ['daemon', '--verbose', '--export-all', `--base-path=${srv}`, '--listen=127.0.0.1', `--port=${port}`, '--reuseaddr', srv], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  await new Promise<void>((ok, fail) => {
    daemon.stderr!.on('data', (d: Buffer) => {
      log += d.toString();
      if (log.includes('Ready to rumble')) ok();
    });
    daemon.once('exit', (code) => fail(new Error(`git daemon exited (${code}): ${log}`)));
  });
  gitUrl = `git://127.0.0.1:${port}/repo.git`;

  server = createServer((req, res) => {
    const path = decodeURIComponent((req.url ?? '/').split('?')[0]!);
    const body = served.get(path);
    if (body) return void res.writeHead(200).end(body);
    const file = normalize(join(srv, path));
    if (!file.startsWith(`${srv}/`)) return void res.writeHead(403).end();
    readFile(file).then((b) => res.writeHead(200).end(b), () => res.writeHead(404).end('not found'));
  });
  server.listen(0, '127.0.0.1');
  await onceEvent(server, 'listening');
  httpBase = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  daemon?.kill();
  server?.close();
  await env?.cleanup();
});

let outCounter = 0;
/** `barge build ARGS -o DIR` (FROM scratch builds need no runtime), returning DIR with the image's files. */
async function buildFiles(args: string[], extraEnv?: Record<string, string>): Promise<string> {
  const out = join(env.tmp, `out-${++outCounter}`);
  await env.bargeOk(['build', '-o', out, ...args], extraEnv ? { env: extraEnv } : {});
  return out;
}

const read = (dir: string, p: string): Promise<string> => readFile(join(dir, p), 'utf8');

/** A context directory holding only a Containerfile. */
async function containerfile(text: string): Promise<string> {
  const dir = join(env.tmp, `ctx-${++outCounter}`);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'Containerfile'), text);
  return dir;
}

/** Runs a build that must fail with exit 125, with TMPDIR private so that leftovers show; returns stderr. */
async function failing(args: string[], extraEnv: Record<string, string> = {}): Promise<string> {
  const tmp = join(env.tmp, `tmpdir-${++outCounter}`);
  await mkdir(tmp);
  const r: BargeResult = await env.barge(['build', ...args], { env: { TMPDIR: tmp, ...extraEnv } });
  expect(r.code, r.stderr).toBe(125);
  // Clones and downloads live in barge's temporary directories, removed after a failure too.
  expect(await readdir(tmp)).toEqual([]);
  return r.stderr;
}

describe('barge build with a git repository as the context', () => {
  it('clones the default branch over git://, and #branch:subdir picks a branch and a directory of it', async () => {
    expect(await read(await buildFiles([gitUrl]), 'hello.txt')).toBe('main one\n');
    const sub = await buildFiles([`${gitUrl}#feature:sub`]);
    expect(await readdir(sub)).toEqual(['s.txt']);
    expect(await read(sub, 's.txt')).toBe('sub on feature\n');
    // A tag is a ref too.
    expect(await read(await buildFiles([`${gitUrl}#v1`]), 'hello.txt')).toBe('feature\n');
  });

  it('reads -f relative to the cloned context, as Buildah does', async () => {
    expect(await read(await buildFiles(['-f', 'Alt.containerfile', `${gitUrl}#feature`]), 'alt.txt')).toBe('feature\n');
    // The path is taken inside the context: ../ cannot reach the host's files.
    const err = await failing(['-f', '../../../../etc/passwd', gitUrl]);
    expect(err).toMatch(/does not exist/);
  });

  it('clones over git\'s dumb http protocol (no shallow clone there) and checks out a commit', async () => {
    const url = `${httpBase}/repo.git`;
    expect(await read(await buildFiles([`${url}#feature:sub`]), 's.txt')).toBe('sub on feature\n');
    const first = await git('rev-list', '--max-parents=0', 'main');
    // By commit, with main having moved on since; an abbreviated id and one with :subdir, over git:// too.
    await commit({ 'hello.txt': 'main two\n' }, 'two');
    expect(await read(await buildFiles([`${url}#${first}`]), 'hello.txt')).toBe('main one\n');
    expect(await read(await buildFiles([`${gitUrl}#${first.slice(0, 10)}:sub`]), 's.txt')).toBe('sub on main\n');
    expect(await read(await buildFiles([url]), 'hello.txt')).toBe('main two\n');
  });

  it('fails with exit 125 and no temporary files for a missing repository, ref, subdirectory or git', async () => {
    expect(await failing([`${gitUrl.replace('repo.git', 'nope.git')}`])).toMatch(/cloning git repository git:\/\/.*nope\.git: .*not exported/);
    expect(await failing([`${gitUrl}#no-such-branch`])).toMatch(/cloning git repository .*#no-such-branch: Remote branch no-such-branch not found/);
    expect(await failing([`${gitUrl}#deadbeefdeadbeef`])).toMatch(/no branch, tag or commit "deadbeefdeadbeef"/);
    expect(await failing([`${gitUrl}#main:nodir`])).toMatch(/no directory "nodir" in the repository/);
    expect(await failing([`${httpBase}/missing.git`])).toMatch(/cloning git repository http:.*missing\.git: repository '.*' not found/);
    expect(await failing([`${gitUrl}#--upload-pack=touch`])).toMatch(/invalid git reference "--upload-pack=touch"/);
    // A PATH that has everything barge needs but git.
    const bin = join(env.tmp, 'nogit-bin');
    await mkdir(bin);
    const seen = new Set<string>();
    for (const d of (process.env.PATH ?? '/usr/bin').split(':')) {
      for (const name of await readdir(d).catch(() => [] as string[])) {
        if (name === 'git' || name.startsWith('git-') || seen.has(name)) continue;
        seen.add(name);
        await symlink(join(d, name), join(bin, name));
      }
    }
    expect(await failing([gitUrl], { PATH: bin })).toMatch(/git is not installed \(Debian package git\)/);
  });

  it('takes a git repository as a --build-context', async () => {
    const ctx = await containerfile('FROM scratch\nCOPY --from=src s.txt /from-git.txt\n');
    expect(await read(await buildFiles(['--build-context', `src=${gitUrl}#feature:sub`, ctx]), 'from-git.txt')).toBe('sub on feature\n');
  });
});

describe('barge build with an http URL as the context', () => {
  it('unpacks a tarball as the context, and -f names a file inside it', async () => {
    served.set('/ctx.tar.gz', gzipSync(await makeTar([
      { name: 'Containerfile', data: 'FROM scratch\nCOPY data.txt /\n' },
      { name: 'dev/Containerfile', data: 'FROM scratch\nCOPY data.txt /dev.txt\n' },
      { name: 'data.txt', data: 'from the tarball\n' },
    ])));
    expect(await read(await buildFiles([`${httpBase}/ctx.tar.gz`]), 'data.txt')).toBe('from the tarball\n');
    expect(await read(await buildFiles(['-f', 'dev/Containerfile', `${httpBase}/ctx.tar.gz`]), 'dev.txt')).toBe('from the tarball\n');
  });

  it('uses a file that is no archive as the Containerfile, with an empty context', async () => {
    served.set('/Containerfile', Buffer.from('FROM scratch\nLABEL from=url\n'));
    const out = await env.bargeOk(['build', '-t', 'from-url', `${httpBase}/Containerfile`]);
    expect(out).toMatch(/STEP 2\/2: LABEL from=url/);
    const labels = JSON.parse(await env.bargeOk(['inspect', '--type', 'image', '--format', '{{json .OCIv1.Config.Labels}}', 'from-url'])) as Record<string, string>;
    expect(labels.from).toBe('url');
    served.set('/CopyFile', Buffer.from('FROM scratch\nCOPY x /\n'));
    expect(await failing([`${httpBase}/CopyFile`])).toMatch(/no such file or directory/);
  });

  it('refuses a tarball whose entries would leave the context', async () => {
    served.set('/hostile.tar', await makeTar([
      { name: 'Containerfile', data: 'FROM scratch\n' },
      { name: '../escape.txt', data: 'out\n' },
    ]));
    const tmp = join(env.tmp, 'hostile-tmp');
    await mkdir(tmp);
    const r = await env.barge(['build', `${httpBase}/hostile.tar`], { env: { TMPDIR: tmp } });
    expect(r.code, r.stderr).toBe(125);
    expect(r.stderr).toContain(`build context ${httpBase}/hostile.tar: layer entry "../escape.txt" escapes the layer root`);
    expect(existsSync(join(tmp, 'escape.txt'))).toBe(false);
    expect(await readdir(tmp)).toEqual([]);
    expect((await failing([`${httpBase}/no-such.tar.gz`]))).toMatch(/build context http:.*no-such\.tar\.gz: HTTP 404/);
  });
});

describe('ADD of a git repository', () => {
  it('puts the tree at the ref into DEST, without .git unless --keep-git-dir=true', async () => {
    const ctx = await containerfile([
      'FROM scratch',
      `ADD ${gitUrl}#feature /src`,
      `ADD --keep-git-dir=true ${httpBase}/repo.git#v1 /full/`,
      `ADD ${gitUrl}#feature:sub /sub`,
    ].join('\n'));
    const out = await buildFiles([ctx]);
    expect(await read(out, 'src/hello.txt')).toBe('feature\n');
    expect((await readdir(join(out, 'src'))).sort()).toEqual(['Alt.containerfile', 'Containerfile', 'hello.txt', 'sub']);
    expect(await read(out, 'full/hello.txt')).toBe('feature\n');
    expect((await read(out, 'full/.git/HEAD')).trim()).toMatch(/^[0-9a-f]{40}$|^ref: /);
    expect(await readdir(join(out, 'sub'))).toEqual(['Containerfile', 's.txt']);
  });

  it('checks --checksum against the commit, and fails at file:line for a missing ref', async () => {
    const feature = await git('rev-parse', 'feature');
    const ok = await containerfile(`FROM scratch\nADD --checksum=${feature} ${gitUrl}#feature /src\n`);
    expect(await read(await buildFiles([ok]), 'src/hello.txt')).toBe('feature\n');
    const bad = await containerfile(`FROM scratch\nADD --checksum=${'0'.repeat(40)} ${gitUrl}#feature /src\n`);
    expect(await failing([bad])).toMatch(/Containerfile:2: .*checksum mismatch: expected commit 0{40}, got [0-9a-f]{40}/);
    const missing = await containerfile(`FROM scratch\n\nADD ${gitUrl}#gone /src\n`);
    expect(await failing([missing])).toMatch(/Containerfile:3: .*Remote branch gone not found/);
  });

  it('keys the layer cache on the commit, so a moved branch is fetched again', async () => {
    const ctx = await containerfile(`FROM scratch\nADD ${gitUrl}#cached /src\n`);
    await git('checkout', '-q', '-b', 'cached');
    await commit({ 'hello.txt': 'cached one\n' }, 'cached one');
    const first = await env.bargeOk(['build', '--layers', '-t', 'gitcache', ctx]);
    const again = await env.bargeOk(['build', '--layers', '-t', 'gitcache', ctx]);
    expect(again).toMatch(/Using cache/);
    expect(again.split('\n').at(-1)).toBe(first.split('\n').at(-1));
    await commit({ 'hello.txt': 'cached two\n' }, 'cached two');
    await git('checkout', '-q', 'main');
    const moved = await env.bargeOk(['build', '--layers', '-t', 'gitcache', ctx]);
    expect(moved).not.toMatch(/Using cache/);
    expect(moved.split('\n').at(-1)).not.toBe(first.split('\n').at(-1));
    expect(await read(await buildFiles(['--layers', ctx]), 'src/hello.txt')).toBe('cached two\n');
  });
});

describe('ADD --checksum of a download', () => {
  const payload = Buffer.from('downloaded payload\n');
  const digest = `sha256:${createHash('sha256').update(payload).digest('hex')}`;
  beforeAll(() => {
    served.set('/payload.txt', payload);
  });

  it('keeps a download whose digest matches, and caches it under --layers', async () => {
    const ctx = await containerfile(`FROM scratch\nADD --checksum=${digest} ${httpBase}/payload.txt /p.txt\n`);
    expect(await read(await buildFiles([ctx]), 'p.txt')).toBe('downloaded payload\n');
    await env.bargeOk(['build', '--layers', ctx]);
    expect(await env.bargeOk(['build', '--layers', ctx])).toMatch(/Using cache/);
  });

  it('fails at file:line when the digest differs, and refuses --checksum where it has no meaning', async () => {
    const wrong = `sha256:${'1'.repeat(64)}`;
    const bad = await containerfile(`FROM scratch\n# pinned\nADD --checksum=${wrong} ${httpBase}/payload.txt /p.txt\n`);
    expect(await failing([bad])).toMatch(new RegExp(`Containerfile:3: .*checksum mismatch for ${httpBase}/payload.txt: expected ${wrong}, got ${digest}`));
    const local = await containerfile(`FROM scratch\nADD --checksum=${digest} Containerfile /\n`);
    expect(await failing([local])).toMatch(/Containerfile:2: .*checksum can't be specified for non-HTTP\(S\) sources/);
    const two = await containerfile(`FROM scratch\nADD --checksum=${digest} ${httpBase}/payload.txt ${httpBase}/payload.txt /d/\n`);
    expect(await failing([two])).toMatch(/checksum can't be specified for multiple sources/);
    const malformed = await containerfile(`FROM scratch\nADD --checksum=md5:abc ${httpBase}/payload.txt /p.txt\n`);
    expect(await failing([malformed])).toMatch(/invalid --checksum "md5:abc"/);
  });
});

describe('after all of the above', () => {
  it('leaves a consistent store behind, failed builds included', async () => {
    expect(await env.bargeOk(['system', 'check'])).toMatch(/No problems found/);
  });
});
