import { execFileSync } from 'node:child_process';

// Black-box tests run bin/barge, which runs the bundle: build it once before any test.
export default function setup(): void {
  execFileSync('node', ['scripts/build.mjs'], { stdio: 'inherit' });
}
