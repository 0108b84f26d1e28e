// A two-platform OCI layout for tests of multi-arch images, made from a one-image layout that
// `barge push IMAGE oci:DIR` wrote: no registry and nothing from outside the machine.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Env } from '../helpers.ts';
import { harmlessLayer, readJson, sha256Hex } from '../images/lib.ts';

export interface Desc {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { architecture: string; os: string; variant?: string };
  annotations?: Record<string, string>;
}
export interface Index {
  mediaType?: string;
  manifests: Desc[];
}

export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

export async function putBlob(dir: string, data: Buffer): Promise<string> {
  const hex = sha256Hex(data);
  await writeFile(join(dir, 'blobs', 'sha256', hex), data);
  return `sha256:${hex}`;
}

/**
 * Builds LAYOUT:multi, an index of busybox for linux/amd64 and for linux/arm64 (its config says
 * arm64, and a gzip layer adds /etc/marker = "arm64"), from the single image in SINGLE.
 */
export async function makeTwoArchLayout(single: string, out: string): Promise<string> {
  const idx = await readJson<Index>(join(single, 'index.json'));
  const blob = (d: string): Promise<Buffer> => readFile(join(single, 'blobs', 'sha256', d.slice(7)));
  const amdDesc = idx.manifests[0]!;
  const amdManifest = JSON.parse((await blob(amdDesc.digest)).toString()) as { config: Desc; layers: Desc[] };
  const config = JSON.parse((await blob(amdManifest.config.digest)).toString()) as { architecture: string; rootfs: { diff_ids: string[] } };
  await mkdir(join(out, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(out, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  for (const d of [amdDesc, amdManifest.config, ...amdManifest.layers]) await putBlob(out, await blob(d.digest));

  const markerTar = await harmlessLayer('arm64');
  const marker = gzipSync(markerTar);
  const markerDigest = await putBlob(out, marker);
  const armConfig = Buffer.from(JSON.stringify({ ...config, architecture: 'arm64', rootfs: { type: 'layers', diff_ids: [...config.rootfs.diff_ids, `sha256:${sha256Hex(markerTar)}`] } }));
  const armConfigDigest = await putBlob(out, armConfig);
  const armManifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: armConfigDigest, size: armConfig.length },
    layers: [...amdManifest.layers, { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: markerDigest, size: marker.length }],
  }));
  const armDigest = await putBlob(out, armManifest);
  const index = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [
      { mediaType: amdDesc.mediaType, digest: amdDesc.digest, size: amdDesc.size, platform: { architecture: 'amd64', os: 'linux' } },
      { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: armDigest, size: armManifest.length, platform: { architecture: 'arm64', os: 'linux' } },
    ],
  }));
  const digest = await putBlob(out, index);
  await writeFile(join(out, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{ mediaType: OCI_INDEX, digest, size: index.length, annotations: { 'org.opencontainers.image.ref.name': 'multi' } }],
  }));
  return digest;
}

/**
 * Pushes the two-platform index of makeTwoArchLayout, made from ENV's busybox, to the registry
 * image DEST (plain HTTP) with `ok` (a hermetic barge that expects success); `extra` is added to
 * the copy (credentials).
 */
export async function pushTwoArch(ok: (e: Env, args: string[]) => Promise<string>, env: Env, dest: string, extra: string[] = []): Promise<void> {
  const single = join(env.tmp, 'single');
  await ok(env, ['push', '-q', 'busybox', `oci:${single}:v1`]);
  const layout = join(env.tmp, 'two-arch');
  await makeTwoArchLayout(single, layout);
  await ok(env, ['copy', '-q', '--all', `oci:${layout}:multi`, `docker://${dest}`, '--dest-tls-verify=false', ...extra]);
}
