import type { ImageIndex } from './types.ts';

const MAX_INDEX = 4 << 20;
const REF_NAME = 'org.opencontainers.image.ref.name';

export interface ArchiveImage {
  /** Appended to "TRANSPORT:FILE" to select this image. */
  selector: string;
  /** Names the archive records for it (docker RepoTags, or OCI ref names that are full references). */
  names: string[];
}

/** Lists the images of a docker-archive or oci-archive file, so `load` can bring in all of them. */
export async function archiveImages(transport: string, file: string): Promise<ArchiveImage[]> {
  const { TarArchive } = await import('./transports/oci-archive.ts');
  const a = await TarArchive.open(file);
  try {
    if (transport === 'docker-archive') {
      const items = JSON.parse((await a.readFile('manifest.json', MAX_INDEX)).toString()) as { RepoTags?: string[] | null }[];
      if (!Array.isArray(items)) throw new Error(`${file}: manifest.json is not a list`);
      return items.map((it, i) => ({ selector: `:@${i}`, names: it.RepoTags ?? [] }));
    }
    const index = JSON.parse((await a.readFile('index.json', MAX_INDEX)).toString()) as ImageIndex;
    const refs = (index.manifests ?? []).map((m) => m.annotations?.[REF_NAME]);
    if (refs.length <= 1) return [{ selector: '', names: refs[0] && isFullName(refs[0]) ? [refs[0]] : [] }];
    return refs.filter((r): r is string => !!r).map((r) => ({ selector: `:${r}`, names: isFullName(r) ? [r] : [] }));
  } finally {
    await a.close();
  }
}

/** Names recorded for the image a "TRANSPORT:SPEC" pull selects. */
export async function archiveImageNames(transport: string, spec: string): Promise<string[]> {
  if (transport !== 'docker-archive' && transport !== 'oci-archive') return [];
  const [file, sel] = splitSelector(spec);
  const images = await archiveImages(transport, file).catch(() => []);
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
