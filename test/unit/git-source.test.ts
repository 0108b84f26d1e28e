// Which build contexts and ADD sources are git repositories, and what their #ref:subdir picks —
// including the forms (ssh, github.com) the black-box tests cannot reach without a network.
import { describe, expect, it } from 'vitest';
import { parseGitSource } from '../../src/containerfile/git-source.ts';

describe('parseGitSource', () => {
  it('recognises the URL forms Buildah and BuildKit clone', () => {
    expect(parseGitSource('git://example.com/repo')).toMatchObject({ remote: 'git://example.com/repo', ref: null, subdir: null });
    expect(parseGitSource('https://example.com/a/repo.git#v1.2')).toMatchObject({ remote: 'https://example.com/a/repo.git', ref: 'v1.2', subdir: null });
    expect(parseGitSource('http://example.com/repo.git#main:docs/site/')).toMatchObject({ remote: 'http://example.com/repo.git', ref: 'main', subdir: 'docs/site' });
    expect(parseGitSource('git@example.com:team/repo.git#:sub')).toMatchObject({ remote: 'git@example.com:team/repo.git', ref: null, subdir: 'sub' });
    expect(parseGitSource('ssh://git@example.com/repo#0123abcd')).toMatchObject({ remote: 'ssh://git@example.com/repo', ref: '0123abcd' });
    // As Docker: over https (Buildah 1.28 would fetch github's master tarball).
    expect(parseGitSource('github.com/owner/repo#dev')).toMatchObject({ remote: 'https://github.com/owner/repo', ref: 'dev' });
  });

  it('leaves other URLs and paths alone', () => {
    expect(parseGitSource('https://example.com/ctx.tar.gz')).toBeNull();
    expect(parseGitSource('https://example.com/repo')).toBeNull();
    expect(parseGitSource('./repo.git')).toBeNull();
    expect(parseGitSource('ext::sh -c touch% /tmp/x')).toBeNull();
    expect(parseGitSource('file:///srv/repo.git')).toBeNull();
    // In ADD, github.com/… is a path of the context, as in BuildKit.
    expect(parseGitSource('github.com/owner/repo', { shorthand: false })).toBeNull();
  });

  it('refuses refs that git would read as options or revision syntax', () => {
    expect(() => parseGitSource('git://h/r.git#--upload-pack=x')).toThrow(/invalid git reference "--upload-pack=x"/);
    expect(() => parseGitSource('git://h/r.git#a..b')).toThrow(/invalid git reference/);
    expect(() => parseGitSource('git://h/r.git#HEAD~1')).toThrow(/invalid git reference/);
  });
});
