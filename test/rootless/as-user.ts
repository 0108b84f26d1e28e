// setupFiles entry of the rootless project: runs in each worker before its test file is loaded and
// drops the worker from root to the project's unprivileged user for good.
import { execFileSync } from 'node:child_process';
import { inject } from 'vitest';
import { ROOTLESS_USER_ENV, rootlessDirs } from './project.ts';

const name = process.env[ROOTLESS_USER_ENV];
if (!name) throw new Error(`${ROOTLESS_USER_ENV} is not set: this setup file belongs to the rootless project`);
if (process.getuid?.() === 0) {
  const id = (flag: string): number => Number(execFileSync('id', [flag, name], { encoding: 'utf8' }).trim());
  const uid = id('-u');
  const gid = id('-g');
  const { home, tmp, run } = rootlessDirs(inject('bargeRootlessBase'));
  // A login of the user with a session: its own HOME, runtime directory and temporary files (barge
  // without XDG_RUNTIME_DIR is tested in test/rootless).
  for (const k of Object.keys(process.env)) if (k.startsWith('XDG_') || k.startsWith('_BARGE')) delete process.env[k];
  Object.assign(process.env, { HOME: home, TMPDIR: tmp, XDG_RUNTIME_DIR: run, USER: name, LOGNAME: name });
  process.setgroups!([gid]);
  process.setgid!(gid);
  process.setuid!(uid);
}
if (process.getuid?.() === 0) throw new Error('the rootless project must not run tests as root');
