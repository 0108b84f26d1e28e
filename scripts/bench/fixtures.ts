// Deterministic fixture trees: both tools get byte-identical inputs, every run, on every machine.
// Runs directly under Node 24 (type stripping): erasable TypeScript only, no imports from src/.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** xorshift128 with a fixed seed per fixture. */
export class Rng {
  private x: number;
  private y = 0x9abcdef0;
  private z = 0x0badf00d;
  private w = 0xdeadbeef;

  constructor(seed = 0x12345678) {
    this.x = seed >>> 0;
  }

  next(): number {
    const t = this.x ^ (this.x << 11);
    this.x = this.y;
    this.y = this.z;
    this.z = this.w;
    this.w = (this.w ^ (this.w >>> 19) ^ (t ^ (t >>> 8))) >>> 0;
    return this.w;
  }

  /** uniform in [0, 1) */
  float(): number {
    return this.next() / 0x100000000;
  }

  bytes(n: number): Buffer {
    const words = new Uint32Array(Math.ceil(n / 4));
    for (let j = 0; j < words.length; j++) words[j] = this.next();
    return Buffer.from(words.buffer, 0, n);
  }
}

/** Sizes from weights, summing exactly to total. */
function apportion(weights: number[], total: number): number[] {
  const sum = weights.reduce((a, b) => a + b, 0);
  const sizes = weights.map((w) => Math.floor((w / sum) * total));
  sizes[0]! += total - sizes.reduce((a, b) => a + b, 0);
  return sizes;
}

// Text-like content (gzip shrinks it about 3x, as source trees and scripts shrink): random lines
// of words from a small vocabulary, cut from one 256 KiB block at random offsets.
const WORDS = ('const let return function import export from default class interface type if else for while ' +
  'switch case break continue new this null undefined true false string number boolean await async ' +
  'module require package version license install build test src lib index main config value key name')
  .split(' ');
let textBlock: Buffer | null = null;
function text(rng: Rng, n: number): Buffer {
  if (textBlock === null) {
    const r = new Rng(0x7e57);
    const parts: string[] = [];
    let len = 0;
    while (len < 256 * 1024 + 4096) {
      const indent = '  '.repeat(r.next() % 4);
      const words = Array.from({ length: 3 + (r.next() % 9) }, () => WORDS[r.next() % WORDS.length]!);
      const line = `${indent}${words.join(' ')}; // ${(r.next() % 100000).toString(36)}\n`;
      parts.push(line);
      len += line.length;
    }
    textBlock = Buffer.from(parts.join(''));
  }
  const out = Buffer.allocUnsafe(n);
  let off = 0;
  while (off < n) {
    const chunk = Math.min(n - off, 1024 + (rng.next() % 3072));
    const start = rng.next() % (textBlock.length - chunk);
    textBlock.copy(out, off, start, start + chunk);
    off += chunk;
  }
  return out;
}

export interface TreeSpec {
  seed: number;
  bytes: number;
  files: number;
  /** directory of file i, relative to the root */
  dirOf: (i: number) => string;
  /** max/min file size ratio: sizes are log-uniform over it (1 = all equal-ish, 50%..150%) */
  spread: number;
  /** share of files (0..1) with text-like, compressible content; the rest is random bytes */
  textShare: number;
  ext?: (isText: boolean) => string;
}

export function makeTree(root: string, spec: TreeSpec): void {
  const rng = new Rng(spec.seed);
  const weights = Array.from({ length: spec.files }, () =>
    spec.spread <= 1 ? 0.5 + rng.float() : Math.exp(rng.float() * Math.log(spec.spread)));
  const sizes = apportion(weights, spec.bytes);
  const made = new Set<string>();
  for (let i = 0; i < spec.files; i++) {
    const dir = join(root, spec.dirOf(i));
    if (!made.has(dir)) {
      mkdirSync(dir, { recursive: true });
      made.add(dir);
    }
    const isText = rng.float() < spec.textShare;
    const ext = spec.ext?.(isText) ?? (isText ? 'txt' : 'bin');
    writeFileSync(join(dir, `f${i}.${ext}`), isText ? text(rng, sizes[i]!) : rng.bytes(sizes[i]!));
  }
}

/** The primitives suite's 20 MiB, 200-file tree (10 top dirs x 4 subdirs x 5 files), random bytes. */
export const COPY_TREE: TreeSpec = {
  seed: 0x12345678,
  bytes: 20 * 1024 * 1024,
  files: 200,
  dirOf: (i) => join(`d${i % 10}`, `s${Math.floor(i / 10) % 4}`),
  spread: 1,
  textShare: 0,
};

/**
 * The build suite's context, shaped like a source checkout with vendored dependencies and some
 * assets: 170 MiB in 3000 files under 20 x 10 directories, sizes log-uniform (1:500, so from
 * under 1 KiB to about 400 KiB), 60% of the files text-like.
 */
export const BUILD_CONTEXT: TreeSpec = {
  seed: 0x00c0ffee,
  bytes: 170 * 1024 * 1024,
  files: 3000,
  dirOf: (i) => join(`pkg${i % 20}`, `mod${Math.floor(i / 20) % 10}`),
  spread: 500,
  textShare: 0.6,
  ext: (t) => (t ? 'js' : 'dat'),
};

/** The pull suite's three application layers on top of the debootstrap base. */
export const PULL_LAYERS: { dest: string; spec: TreeSpec }[] = [
  // binaries: a few large incompressible files
  { dest: '/opt/app/bin', spec: { seed: 0x1a7e1, bytes: 8 * 1024 * 1024, files: 12, dirOf: () => '.', spread: 8, textShare: 0 } },
  // a library tree: many small text files
  {
    dest: '/opt/app/lib',
    spec: { seed: 0x1a7e2, bytes: 6 * 1024 * 1024, files: 600, dirOf: (i) => `m${i % 30}`, spread: 40, textShare: 1, ext: () => 'py' },
  },
  // assets: mixed
  {
    dest: '/opt/app/share',
    spec: { seed: 0x1a7e3, bytes: 4 * 1024 * 1024, files: 80, dirOf: (i) => `a${i % 8}`, spread: 20, textShare: 0.5 },
  },
];
