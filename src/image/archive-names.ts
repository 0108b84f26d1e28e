import { existsSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { ImageIndex } from './types.ts';

const MAX_INDEX = 4 << 20;
const REF_NAME = 'org.opencontainers.image.ref.name';

export interface ArchiveImage {
  /** Appended to "TRANSPORT:FILE" to select this image. */
  selector: string;
  /** Names the archive records for it (docker RepoTags, or OCI ref names that are full references). */
  names: string[];
}

export interface ArchiveContents {
  transport: 'docker-archive' | 'oci-archive';
  images: ArchiveImage[];
}

/**
 * What a tar archive holds, read in one pass over it: a docker archive (manifest.json) or an
 * OCI one (index.json), and its images, so `load` can bring in all of them.
 */
export async function archiveContents(file: string): Promise<ArchiveContents> {
  const { TarArchive } = await import('./transports/oci-archive.ts');
  const a = await TarArchive.open(file);
  try {
    if (a.size('manifest.json') >= 0) {
      const items = parseJson(file, 'manifest.json', await a.readFile('manifest.json', MAX_INDEX)) as ({ RepoTags?: unknown } | null)[];
      if (!Array.isArray(items)) throw new Error(`${file}: manifest.json is not a list`);
      const images = items.map((it, i) => {
        const tags = typeof it === 'object' && it !== null ? (it.RepoTags ?? []) : undefined;
        if (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string')) throw new Error(`${file}: manifest.json entry ${i} is malformed`);
        return { selector: `:@${i}`, names: tags as string[] };
      });
      return { transport: 'docker-archive', images };
    }
    if (a.size('index.json') >= 0) return { transport: 'oci-archive', images: indexImages(file, await a.readFile('index.json', MAX_INDEX)) };
    throw new Error(`${file}: neither a docker archive (manifest.json) nor an OCI archive (index.json)`);
  } finally {
    await a.close();
  }
}

/** The images of an OCI layout directory (podman load takes those too). */
export async function layoutImages(dir: string): Promise<ArchiveImage[]> {
  if (!existsSync(join(dir, 'index.json'))) throw new Error(`${dir}: not an OCI layout directory (no index.json)`);
  return indexImages(dir, await readCapped(join(dir, 'index.json'), MAX_INDEX));
}

/** A bare "Unexpected end of JSON input" does not tell the user which file is broken. */
function parseJson(file: string, member: string, bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString());
  } catch (e) {
    throw new Error(`${file}: malformed ${member}: ${(e as Error).message}`);
  }
}

function indexImages(file: string, bytes: Buffer): ArchiveImage[] {
  const index = parseJson(file, 'index.json', bytes) as ImageIndex;
  if (typeof index !== 'object' || index === null) throw new Error(`${file}: index.json is not an image index`);
  const manifests: unknown = index.manifests ?? [];
  if (!Array.isArray(manifests)) throw new Error(`${file}: index.json has no manifests list`);
  const refs = (manifests as ({ annotations?: Record<string, unknown> } | null)[]).map((m) => {
    const r = m?.annotations?.[REF_NAME];
    return typeof r === 'string' ? r : undefined;
  });
  if (refs.length <= 1) return [{ selector: '', names: refs[0] && isFullName(refs[0]) ? [refs[0]] : [] }];
  return refs.filter((r): r is string => !!r).map((r) => ({ selector: `:${r}`, names: isFullName(r) ? [r] : [] }));
}

async function readCapped(file: string, limit: number): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    if ((await fh.stat()).size > limit) throw new Error(`${file} is larger than ${limit} bytes`);
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}

/** Names recorded for the image a "TRANSPORT:SPEC" pull selects. */
export async function archiveImageNames(transport: string, spec: string): Promise<string[]> {
  if (transport !== 'docker-archive' && transport !== 'oci-archive') return [];
  const [file, sel] = splitSelector(spec);
  const contents = await archiveContents(file).catch(() => undefined);
  const images = contents?.transport === transport ? contents.images : [];
  if (!sel) return images.length === 1 ? images[0]!.names : [];
  return images.find((im) => im.selector === `:${sel}`)?.names ?? (sel.startsWith('@') ? [] : [sel]);
}

function splitSelector(spec: string): [string, string | undefined] {
  const i = spec.indexOf(':');
  return i < 0 ? [spec, undefined] : [spec.slice(0, i), spec.slice(i + 1)];
}

/** An OCI ref name like "v1" is only a tag; "quay.io/x/y:v1" or "x:v1" names an image. */
function isFullName(ref: string): boolean {
  return /[/:]/.test(ref);
}
