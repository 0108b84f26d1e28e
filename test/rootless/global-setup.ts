// Global setup of the rootless project (runs as root in the main vitest process).
import buildBundle from '../global-setup.ts';
import { prepareRootlessUser } from './project.ts';

export default async function setup(): Promise<void> {
  // Also when this project runs alone (--project rootless).
  buildBundle();
  await prepareRootlessUser();
}
