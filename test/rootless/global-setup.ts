// Global setup of the rootless project (runs as root in the main vitest process).
import type { TestProject } from 'vitest/node';
import buildBundle from '../global-setup.ts';
import { removeTree } from '../helpers.ts';
import { prepareRootlessUser } from './project.ts';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // Also when this project runs alone (--project rootless).
  buildBundle();
  const base = await prepareRootlessUser();
  project.provide('bargeRootlessBase', base);
  return () => removeTree(base);
}
