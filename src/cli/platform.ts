import { parsePlatform, PLATFORM_PART, type PlatformSpec } from '../image/manifest.ts';

const nonEmpty = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/**
 * The platform a command asks for: --platform OS/ARCH[/VARIANT], or Podman's and Buildah's
 * --os/--arch/--variant, or Skopeo's --override-os/--override-arch/--override-variant.
 */
export function platformFlags(o: Record<string, unknown>): PlatformSpec | undefined {
  const os = nonEmpty(o.os) ?? nonEmpty(o.overrideOs);
  const architecture = nonEmpty(o.arch) ?? nonEmpty(o.overrideArch);
  const variant = nonEmpty(o.variant) ?? nonEmpty(o.overrideVariant);
  const p = nonEmpty(o.platform);
  if (p !== undefined) {
    if (os || architecture || variant) throw new Error('--platform cannot be combined with --os, --arch or --variant');
    return parsePlatform(p);
  }
  if (!os && !architecture && !variant) return undefined;
  // The same rule as for --platform: these end up in image configs and cache keys.
  for (const [flag, v] of [['--os', os], ['--arch', architecture], ['--variant', variant]] as const) {
    if (v !== undefined && !PLATFORM_PART.test(v)) throw new Error(`invalid ${flag} ${JSON.stringify(v)}: letters, digits, _ and - only`);
  }
  return { ...(os && { os }), ...(architecture && { architecture }), ...(variant && { variant }) };
}
