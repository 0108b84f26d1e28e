// Git repositories as build contexts (`barge build URL`, `--build-context NAME=URL`) and as ADD
// sources: recognising their URLs, and cloning one ref of them into a private directory.
import { rm, stat } from 'node:fs/promises';
import { resolveInRoot } from '../store/secure-path.ts';
import { exec } from '../sys/exec.ts';

export interface GitSource {
  /** What `git clone` is given. */
  remote: string;
  /** Branch, tag or commit from the URL's fragment; null for the remote's default branch. */
  ref: string | null;
  /** Directory of the repository (from the fragment after `:`) that is the context; null for its root. */
  subdir: string | null;
  /** The URL as written, for messages. */
  url: string;
}

export interface ClonedRepo {
  /** The checked-out tree, or its subdirectory when the URL named one. */
  dir: string;
  /** The commit that was checked out: what a cache key must name, since branches move. */
  commit: string;
}

/**
 * Recognises a git URL as Buildah and BuildKit do: `git://…`, `ssh://…`, `git@host:path`,
 * `http(s)://…/repo.git`, and `github.com/owner/repo` (cloned over https, as Docker does; Buildah
 * 1.28 fetches GitHub's master tarball instead, which ignores the fragment). An optional
 * `#ref[:subdir]` picks a branch, tag or commit and a directory in it. Anything else is null.
 * `shorthand: false` leaves `github.com/…` alone: in ADD it names a path of the context, as in BuildKit.
 */
export function parseGitSource(url: string, o: { shorthand?: boolean } = {}): GitSource | null {
  const hash = url.indexOf('#');
  const base = hash < 0 ? url : url.slice(0, hash);
  const fragment = hash < 0 ? '' : url.slice(hash + 1);
  let remote: string;
  if (/^(git|ssh):\/\/./.test(base) || /^git@[^:/]+:./.test(base)) remote = base;
  else if (/^https?:\/\/[^/]+\/.+\.git\/?$/.test(base)) remote = base;
  else if (o.shorthand !== false && /^github\.com\/[^/]+\/[^/]+/.test(base)) remote = `https://${base}`;
  else return null;
  const colon = fragment.indexOf(':');
  const ref = colon < 0 ? fragment : fragment.slice(0, colon);
  const subdir = colon < 0 ? '' : fragment.slice(colon + 1);
  // A ref is handed to git as an argument: one that looks like an option must not become one.
  if (ref.startsWith('-') || /[\s\\]|\.\.|[~^:?*[]/.test(ref)) throw new Error(`invalid git reference "${ref}" in "${url}"`);
  return { remote, ref: ref || null, subdir: subdir.replace(/^\/+|\/+$/g, '') || null, url };
}

/** A ref that can only be a commit id: it must be fetched in full, since servers rarely let one ask for a commit. */
const looksLikeCommit = (ref: string): boolean => /^[0-9a-f]{7,64}$/i.test(ref);

class GitError extends Error {
  constructor(
    message: string,
    readonly stderr: string,
  ) {
    super(message);
  }
}

async function git(args: string[], cwd: string): Promise<string> {
  // The clone is barge's own directory. Rootless, barge runs git as root of its user namespace,
  // where the clone is its own too; but should the two ever differ (a TMPDIR made by another
  // uid's mapping), git would refuse the clone as of "dubious ownership": it is trusted explicitly.
  const argv = ['-c', 'safe.directory=*', '-c', 'advice.detachedHead=false', ...args];
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    // Never stop for an http username or password: a build may have nobody at its terminal.
    GIT_TERMINAL_PROMPT: '0',
    // Only network transports: `ext::` would run a command, `file://` read the host.
    GIT_ALLOW_PROTOCOL: 'git:http:https:ssh',
    // Messages in English, since the shallow-clone fallback below recognises one of them.
    LC_ALL: 'C',
  };
  const r = await exec('git', argv, { cwd, env, check: false }).catch((e: NodeJS.ErrnoException) => {
    throw e.code === 'ENOENT' ? new Error('git is not installed (Debian package git): it is needed to clone a git repository') : e;
  });
  if (r.exitCode === 0) return r.stdout;
  // git's own reason is its last "fatal:"/"error:" line; the rest is progress and hints.
  const lines = r.stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  const reason = lines.filter((l) => /^(fatal|error):/.test(l)).at(-1)?.replace(/^(fatal|error):\s*/, '') ?? lines.at(-1) ?? `Command failed: git ${argv.join(' ')}`;
  throw new GitError(reason, r.stderr);
}

/**
 * Clones `src` into `dest` (which must not exist yet; the caller removes it, also after a failure).
 * A branch or tag is cloned shallowly (`--depth 1 --branch REF`), falling back to a full clone where
 * the server cannot serve a shallow one (git's "dumb" http); a commit id is fetched in full and
 * checked out. Without `keepGitDir` the `.git` directory is removed afterwards.
 */
export async function cloneGit(src: GitSource, dest: string, keepGitDir: boolean): Promise<ClonedRepo> {
  const what = src.ref ? `${src.remote}#${src.ref}` : src.remote;
  const fail = (reason: string): never => {
    throw new Error(`cloning git repository ${what}: ${reason}`);
  };
  const clone = async (shallow: boolean): Promise<void> => {
    const ref = src.ref !== null && !looksLikeCommit(src.ref) ? ['--branch', src.ref] : [];
    await git(['clone', '-q', ...(shallow ? ['--depth', '1'] : []), ...(src.ref !== null && ref.length === 0 ? ['--no-checkout'] : []), ...ref, '--', src.remote, dest], '/');
  };
  try {
    const shallow = src.ref === null || !looksLikeCommit(src.ref);
    try {
      await clone(shallow);
    } catch (e) {
      if (!shallow || !(e instanceof GitError) || !/does not support shallow/.test(e.stderr)) throw e;
      await rm(dest, { recursive: true, force: true });
      await clone(false);
    }
    if (src.ref !== null && looksLikeCommit(src.ref)) {
      // A hex name may still be a branch or tag, which a full clone has as origin/NAME or NAME.
      let commit: string | null = null;
      for (const name of [src.ref, `origin/${src.ref}`]) {
        commit = await git(['rev-parse', '-q', '--verify', `${name}^{commit}`], dest).then((o) => o.trim(), () => null);
        if (commit) break;
      }
      if (!commit) fail(`no branch, tag or commit "${src.ref}" in the repository`);
      await git(['checkout', '-q', '--detach', commit!], dest);
    }
  } catch (e) {
    if (e instanceof GitError) fail(e.message);
    throw e;
  }
  const commit = (await git(['rev-parse', 'HEAD'], dest)).trim();
  if (!keepGitDir) await rm(`${dest}/.git`, { recursive: true, force: true });
  let dir = dest;
  if (src.subdir !== null) {
    // Resolved inside the clone: a symlink in an untrusted repository must not lead out of it.
    dir = await resolveInRoot(dest, src.subdir);
    if (!(await stat(dir).catch(() => null))?.isDirectory()) fail(`no directory "${src.subdir}" in the repository at ${commit.slice(0, 12)}`);
  }
  return { dir, commit };
}
