import type { ImageDestination, ImageSource, ParsedRef, Transport } from '../transport.ts';
import { dirTransport } from './dir.ts';
import { parseDockerArchiveSpec } from './docker-archive-ref.ts';
import { ociTransport, parseLayoutSpec } from './oci-layout.ts';

// The archive transports bring the tar code with them: loaded on first use, so that copies
// between registries and directories (and every command that only names an archive) start faster.
const ociArchiveTransport: Transport = {
  name: 'oci-archive',
  parse: (spec) => parseLayoutSpec('oci-archive', spec),
  openSource: async (ref) => (await import('./oci-archive.ts')).ociArchiveTransport.openSource(ref),
  openDestination: async (ref) => (await import('./oci-archive.ts')).ociArchiveTransport.openDestination(ref),
};
const dockerArchiveTransport: Transport = {
  name: 'docker-archive',
  parse: parseDockerArchiveSpec,
  openSource: async (ref) => (await import('./docker-archive.ts')).dockerArchiveTransport.openSource(ref),
  openDestination: async (ref) => (await import('./docker-archive.ts')).dockerArchiveTransport.openDestination(ref),
};

/** What a transport implemented elsewhere (containers-storage, docker) registers. `spec` is the text after "name:". */
export interface TransportFactory {
  openSource(spec: string): Promise<ImageSource>;
  openDestination(spec: string): Promise<ImageDestination>;
}

export interface ImageName {
  transport: string;
  /** Everything after "transport:", verbatim ("//quay.io/x" for docker://quay.io/x). */
  spec: string;
}

const builtins = new Map<string, Transport>(
  [ociTransport, ociArchiveTransport, dockerArchiveTransport, dirTransport].map((t) => [t.name, t]),
);
const registered = new Map<string, TransportFactory>();
// Recognised by parseImageName even before (or without) anything registering them, so callers
// can handle these names themselves.
const RESERVED = ['docker', 'containers-storage', 'docker-daemon'];

export function registerTransport(name: string, factory: TransportFactory): void {
  if (!/^[a-z][a-z0-9-]*$/.test(name)) throw new Error(`invalid transport name ${JSON.stringify(name)}`);
  if (builtins.has(name)) throw new Error(`transport ${name} is built in and cannot be replaced`);
  registered.set(name, factory);
}

export function knownTransports(): string[] {
  return [...new Set([...builtins.keys(), ...registered.keys(), ...RESERVED])];
}

export function getTransport(name: string): Transport | undefined {
  return builtins.get(name);
}

/**
 * Splits "transport:spec" (oci:/path:tag, oci-archive:/f.tar[:ref], docker-archive:/f.tar[:ref|:@N],
 * dir:/path, docker://…, containers-storage:…). Unknown transports are an error naming the known ones.
 */
export function parseImageName(s: string): ImageName {
  const m = /^([a-z][a-z0-9-]*):([\s\S]*)$/.exec(s);
  const known = knownTransports();
  if (!m) {
    throw new Error(`invalid image name ${JSON.stringify(s)}: expected TRANSPORT:REFERENCE with TRANSPORT one of ${known.join(', ')}`);
  }
  const transport = m[1]!;
  if (!known.includes(transport)) {
    throw new Error(`unknown transport ${JSON.stringify(transport)} in ${JSON.stringify(s)}; known transports: ${known.join(', ')}`);
  }
  return { transport, spec: m[2]! };
}

/** Parses a full name for one of the built-in transports. */
export function parseReference(name: string | ImageName): ParsedRef {
  const n = typeof name === 'string' ? parseImageName(name) : name;
  const t = builtins.get(n.transport);
  if (!t) throw new Error(`transport ${n.transport} has no local reference syntax`);
  return t.parse(n.spec);
}

function resolve(name: string | ImageName): { builtin: Transport; spec: string } | { factory: TransportFactory; spec: string } {
  const n = typeof name === 'string' ? parseImageName(name) : name;
  const builtin = builtins.get(n.transport);
  if (builtin) return { builtin, spec: n.spec };
  const factory = registered.get(n.transport);
  if (factory) return { factory, spec: n.spec };
  throw new Error(`transport ${n.transport} is not available in this build`);
}

/** Opens "transport:spec" for reading. The caller closes it. */
export async function openSource(name: string | ImageName): Promise<ImageSource> {
  const r = resolve(name);
  return 'builtin' in r ? r.builtin.openSource(r.builtin.parse(r.spec)) : r.factory.openSource(r.spec);
}

/** Opens "transport:spec" for writing. The caller commits and closes it. */
export async function openDestination(name: string | ImageName): Promise<ImageDestination> {
  const r = resolve(name);
  return 'builtin' in r ? r.builtin.openDestination(r.builtin.parse(r.spec)) : r.factory.openDestination(r.spec);
}

export { dirTransport, dockerArchiveTransport, ociArchiveTransport, ociTransport };
