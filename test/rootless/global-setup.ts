// Global setup of the rootless project (runs as root in the main vitest process).
import type { TestProject } from 'vitest/node';
import buildBundle from '../global-setup.ts';
import { removeTree } from '../helpers.ts';
import { prepareRootlessUser, rootlessDirs } from './project.ts';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // Also when this project runs alone (--project rootless).
  buildBundle();
  const base = await prepareRootlessUser();
  project.provide('bargeRootlessBase', base);
  return async () => {
    // The pause process that kept barge's namespaces for this run's runtime directory (see
    // src/sys/pause.ts) would otherwise outlive it.
    try {
      process.kill(Number(readFileSync(join(rootlessDirs(base).run, 'barge', 'pause.pid'), 'utf8').split(' ')[0]), 'SIGKILL');
    } catch {
      // None was started, or it is gone.
    }
    await removeTree(base);
  };
}
