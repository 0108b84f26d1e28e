// Global setup of the rootless project (runs as root in the main vitest process).
import type { TestProject } from 'vitest/node';
import buildBundle from '../global-setup.ts';
import { removeTree } from '../helpers.ts';
import { prepareRootlessUser, rootlessDirs } from './project.ts';
import { stopPause } from '../../src/sys/pause.ts';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // Also when this project runs alone (--project rootless).
  buildBundle();
  const base = await prepareRootlessUser();
  project.provide('bargeRootlessBase', base);
  return async () => {
    // The pause process that kept barge's namespaces for this run's runtime directory (see
    // src/sys/pause.ts) would otherwise outlive it.
    stopPause(rootlessDirs(base).run);
    await removeTree(base);
  };
}
