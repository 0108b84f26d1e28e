import type { CopyProgress } from '../image/copy.ts';
import type { BlobInfo } from '../image/transport.ts';

const BAR = 30;

/** Binary sizes as Buildah's progress bars print them: 8.1MiB. */
export function binarySize(n: number): string {
  const units = ['b', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v}${units[0]}` : `${v.toFixed(1)}${units[i]}`;
}

/**
 * What Buildah and Podman print on stderr when they write an image into local storage (commit,
 * import), as their copy reports it without a terminal.
 */
export function storedImageReport(blobDigests: readonly string[], configDigest: string): string {
  return [
    'Getting image source signatures', ...blobDigests.map((d) => `Copying blob ${d}`), `Copying config ${configDigest}`,
    'Writing manifest to image destination', 'Storing signatures', '',
  ].join('\n');
}

interface Line {
  label: string;
  total: number;
  done: number;
  finished: string | null;
}

/**
 * Copy progress on stderr: live bars redrawn in place on a terminal, one plain line per
 * finished blob otherwise (CI logs stay readable), nothing with -q.
 */
export class Progress {
  private readonly lines: Line[] = [];
  private readonly byDigest = new Map<string, Line>();
  private drawn = 0;
  private lastDraw = 0;
  private readonly tty: boolean;
  private started = false;

  constructor(private readonly quiet: boolean, private readonly out: NodeJS.WriteStream = process.stderr) {
    this.tty = !!out.isTTY;
  }

  private begin(): void {
    if (this.started || this.quiet) return;
    this.started = true;
    this.out.write('Getting image source signatures\n');
  }

  callbacks(): CopyProgress {
    return {
      onBlobStart: (info: BlobInfo) => {
        this.begin();
        const line: Line = { label: label(info), total: info.size, done: 0, finished: null };
        this.lines.push(line);
        this.byDigest.set(info.digest, line);
        this.draw();
      },
      onBlobProgress: (info: BlobInfo, bytes: number) => {
        const line = this.byDigest.get(info.digest);
        if (!line) return;
        line.done = bytes;
        if (Date.now() - this.lastDraw > 100) this.draw();
      },
      onBlobDone: (info: BlobInfo, skipped: boolean) => {
        this.begin();
        let line = this.byDigest.get(info.digest);
        if (!line) {
          line = { label: label(info), total: info.size, done: 0, finished: null };
          this.lines.push(line);
          this.byDigest.set(info.digest, line);
        }
        line.finished = skipped ? 'skipped: already exists' : 'done';
        if (!this.tty && !this.quiet) this.out.write(`${line.label} ${line.finished}\n`);
        this.draw();
      },
      onManifest: () => {
        this.begin();
        this.draw(true);
        if (!this.quiet) this.out.write('Writing manifest to image destination\n');
      },
    };
  }

  private draw(force = false): void {
    if (this.quiet || !this.tty) return;
    if (!force && Date.now() - this.lastDraw < 50) return;
    this.lastDraw = Date.now();
    if (this.drawn) this.out.write(`\x1b[${this.drawn}A`);
    for (const l of this.lines) this.out.write(`\x1b[2K${render(l)}\n`);
    this.drawn = this.lines.length;
  }

  done(): void {
    if (this.quiet) return;
    this.draw(true);
    if (this.started) this.out.write('Storing signatures\n');
  }
}

const CONFIG_TYPES = new Set(['application/vnd.oci.image.config.v1+json', 'application/vnd.docker.container.image.v1+json']);

/** Skopeo and Podman call the config "config", not "blob"; logs that grep for either rely on it. */
function label(info: BlobInfo): string {
  return `Copying ${info.mediaType && CONFIG_TYPES.has(info.mediaType) ? 'config' : 'blob'} ${shortDigest(info.digest)}`;
}

function shortDigest(d: string): string {
  return d.slice(d.indexOf(':') + 1, d.indexOf(':') + 13);
}

function render(l: Line): string {
  if (l.finished) return `${l.label} ${l.finished}`;
  if (l.total <= 0) return `${l.label} ${binarySize(l.done)}`;
  const frac = Math.min(1, l.done / l.total);
  const filled = Math.round(frac * BAR);
  const bar = '='.repeat(Math.max(0, filled - 1)) + (filled ? '>' : '') + '-'.repeat(BAR - filled);
  return `${l.label} [${bar}] ${binarySize(l.done)} / ${binarySize(l.total)}`;
}
