// "Simple signing" (containers-signature(5)): a small JSON payload naming an image by Docker
// reference and manifest digest, signed with OpenPGP. barge shells out to the gpg binary, as
// signing needs the user's keys and agent and verification must see only the policy's keys.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exec } from '../sys/exec.ts';
import { algorithmOf, digestOf, isValidDigest } from './digest.ts';

export const SIGNATURE_TYPE = 'atomic container signature';
/** Bounds what is read from a lookaside or a dir: image per signature. */
export const MAX_SIGNATURE_SIZE = 4 * 1024 * 1024;
/** Reading stops here even if more signatures follow: their store is not trusted to be small. */
export const MAX_SIGNATURES = 128;

/** A signature that cannot be accepted: its text is what containers/image says after "Source image rejected: ". */
export class SignatureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SignatureError';
  }
}

export interface SignedClaims {
  dockerReference: string;
  manifestDigest: string;
}

/** The payload as containers/image writes it: compact JSON, "critical" then "optional". */
export function makePayload(dockerReference: string, manifestDigest: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      critical: { identity: { 'docker-reference': dockerReference }, image: { 'docker-manifest-digest': manifestDigest }, type: SIGNATURE_TYPE },
      optional: { creator: 'barge', timestamp: Math.floor(Date.now() / 1000) },
    }),
  );
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads the claims of a verified payload; anything but the documented shape is refused. */
export function parsePayload(bytes: Buffer): SignedClaims {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new SignatureError(`Invalid signature payload: ${(e as Error).message}`);
  }
  const critical = isObject(doc) ? doc.critical : undefined;
  if (!isObject(critical)) throw new SignatureError('Invalid signature payload: no "critical" object');
  if (critical.type !== SIGNATURE_TYPE) throw new SignatureError(`Unrecognized signature type ${JSON.stringify(critical.type)}`);
  const image = critical.image;
  const identity = critical.identity;
  const digest = isObject(image) ? image['docker-manifest-digest'] : undefined;
  const ref = isObject(identity) ? identity['docker-reference'] : undefined;
  if (typeof digest !== 'string' || !isValidDigest(digest)) throw new SignatureError('Invalid signature payload: critical.image.docker-manifest-digest is missing or not a digest');
  if (typeof ref !== 'string' || ref === '') throw new SignatureError('Invalid signature payload: critical.identity.docker-reference is missing');
  return { dockerReference: ref, manifestDigest: digest };
}

/** Whether a manifest has the digest a signature names (in the signature's algorithm). */
export function manifestMatchesDigest(manifest: Buffer, digest: string): boolean {
  return digestOf(manifest, algorithmOf(digest)) === digest;
}

// Newer containers/image may store a signature with a format prefix; the bare OpenPGP form is
// what skopeo 1.9 writes, and both mean the same bytes to gpg.
const SIMPLE_PREFIX = Buffer.from('\x00simple-signing\n');

/** The OpenPGP message inside a stored signature; sigstore and unknown formats are refused. */
export function openPGPMessage(blob: Buffer, where: string): Buffer {
  if (blob.length === 0) throw new SignatureError(`parsing signature ${JSON.stringify(where)}: empty signature`);
  if (blob[0] === 0) {
    if (blob.subarray(0, SIMPLE_PREFIX.length).equals(SIMPLE_PREFIX)) return blob.subarray(SIMPLE_PREFIX.length);
    const nl = blob.indexOf(0x0a);
    const format = blob.subarray(1, nl < 0 ? Math.min(blob.length, 32) : nl).toString('utf8');
    throw new SignatureError(`parsing signature ${JSON.stringify(where)}: ${JSON.stringify(format)} signatures are not supported (only simple signing)`);
  }
  // An OpenPGP packet header always has its top bit set.
  if ((blob[0]! & 0x80) === 0) throw new SignatureError(`parsing signature ${JSON.stringify(where)}: unrecognized signature format, starting with binary 0x${blob[0]!.toString(16)}`);
  return blob;
}

const GPG_BATCH = ['--batch', '--no-tty', '--yes'];

/**
 * Signs a payload with the user's key (their GNUPGHOME and agent). A passphrase file's first line
 * is handed to gpg through its standard input, never on the command line.
 */
export async function gpgSign(payload: Buffer, fingerprint: string, passphraseFile?: string): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), 'barge-sign-'));
  try {
    const input = join(dir, 'payload');
    const output = join(dir, 'signature');
    await writeFile(input, payload, { mode: 0o600 });
    const args = [...GPG_BATCH, '--local-user', fingerprint, '--output', output];
    let passphrase: string | undefined;
    if (passphraseFile !== undefined) {
      passphrase = (await readFile(passphraseFile, 'utf8')).split('\n')[0]!.replace(/\r$/, '');
      args.push('--pinentry-mode', 'loopback', '--passphrase-fd', '0');
    }
    args.push('--sign', input);
    const r = await exec('gpg', args, { check: false, ...(passphrase !== undefined && { input: `${passphrase}\n` }) });
    if (r.exitCode !== 0) throw new Error(`signing with key ${fingerprint} failed: ${gpgMessage(r.stderr)}`);
    return await readFile(output);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** gpg's own lines without its status chatter, for an error message. */
function gpgMessage(stderr: string): string {
  return stderr.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('[GNUPG:]')).map((l) => l.replace(/^gpg: /, '')).join('; ') || 'gpg failed';
}

/**
 * A keyring of its own for verification: only the keys given, never the user's keys or trust
 * database. gpg runs with --no-autostart, so no agent is left behind by a verification.
 */
export class TrustedKeys {
  readonly #dir: string;
  /** Fingerprints of the keys imported (primary keys and subkeys). */
  readonly fingerprints: ReadonlySet<string>;

  private constructor(dir: string, fingerprints: Set<string>) {
    this.#dir = dir;
    this.fingerprints = fingerprints;
  }

  static async create(keys: readonly Buffer[]): Promise<TrustedKeys> {
    const dir = await mkdtemp(join(tmpdir(), 'barge-gpg-'));
    try {
      for (const [i, key] of keys.entries()) {
        const file = join(dir, `key-${i}`);
        await writeFile(file, key, { mode: 0o600 });
        const r = await exec('gpg', ['--homedir', dir, '--no-autostart', ...GPG_BATCH, '--quiet', '--import', file], { check: false });
        if (r.exitCode !== 0) throw new Error(`importing the policy's GPG keys: ${gpgMessage(r.stderr)}`);
      }
      const listed = await exec('gpg', ['--homedir', dir, '--no-autostart', ...GPG_BATCH, '--with-colons', '--fingerprint', '--fingerprint', '--list-keys']);
      const fingerprints = new Set<string>();
      for (const line of listed.stdout.split('\n')) {
        const f = line.split(':');
        if (f[0] === 'fpr' && f[9]) fingerprints.add(f[9].toUpperCase());
      }
      if (fingerprints.size === 0) throw new Error('the policy\'s keyPath/keyPaths/keyData hold no GPG public keys');
      return new TrustedKeys(dir, fingerprints);
    } catch (e) {
      await rm(dir, { recursive: true, force: true });
      throw e;
    }
  }

  /**
   * Checks one OpenPGP message and returns its payload and the signing key. Fails unless it
   * carries exactly one good signature by one of these keys.
   */
  async verify(message: Buffer): Promise<{ payload: Buffer; fingerprint: string }> {
    const r = await exec(
      'gpg',
      ['--homedir', this.#dir, '--no-autostart', ...GPG_BATCH, '--trust-model', 'always', '--no-auto-key-retrieve', '--status-fd', '2', '--decrypt'],
      { check: false, input: message },
    );
    const status = r.stderr.split('\n').filter((l) => l.startsWith('[GNUPG:] ')).map((l) => l.slice(9).split(' '));
    const sigs = status.filter((s) => s[0] === 'NEWSIG').length;
    const bad = status.find((s) => ['BADSIG', 'ERRSIG', 'EXPSIG', 'EXPKEYSIG', 'REVKEYSIG'].includes(s[0]!));
    const valid = status.find((s) => s[0] === 'VALIDSIG');
    if (bad) {
      const key = bad[1];
      const why: Record<string, string> = {
        BADSIG: `the signature by key ${key} does not match the signed content`,
        EXPSIG: `the signature by key ${key} has expired`,
        EXPKEYSIG: `the signing key ${key} has expired`,
        REVKEYSIG: `the signing key ${key} has been revoked`,
        ERRSIG: bad[6] === '9' ? `signed by key ${key}, which the policy does not list` : `gpg cannot check the signature by key ${key} (code ${bad[6] ?? '?'})`,
      };
      throw new SignatureError(`Invalid GPG signature: ${why[bad[0]!]}`);
    }
    if (r.exitCode !== 0 || !valid) throw new SignatureError(`Invalid GPG signature: ${gpgMessage(r.stderr)}`);
    if (sigs > 1) throw new SignatureError('Invalid GPG signature: more than one signature in one message');
    // VALIDSIG names the signing (sub)key first and its primary key last.
    const signer = valid[1]!.toUpperCase();
    const primary = (valid[10] ?? signer).toUpperCase();
    if (!this.fingerprints.has(signer) && !this.fingerprints.has(primary)) throw new SignatureError(`Signature by key ${signer} is not accepted`);
    return { payload: Buffer.from(r.stdout, 'utf8'), fingerprint: primary };
  }

  async close(): Promise<void> {
    await rm(this.#dir, { recursive: true, force: true });
  }
}
