import { GoTime } from './gotime.ts';

/**
 * JSON as Go's encoding/json writes it, for byte-faithful config blobs and `inspect` output:
 * <, > and & escaped as \u003c etc., and map keys in Go's sorted order even when some are
 * integer-like ("80" next to "443/tcp"), which a plain JS object cannot preserve by itself.
 * `indent` as for json.MarshalIndent (Buildah's inspect uses four spaces).
 */
export function goJSON(value: unknown, indent: string | number = ''): string {
  return encode(value, typeof indent === 'number' ? ' '.repeat(indent) : indent, '');
}

function encode(v: unknown, indent: string, prefix: string): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'string') return encodeString(v);
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error(`json: unsupported value: ${v}`);
    return JSON.stringify(v);
  }
  // time.Time marshals as RFC 3339 with only the fraction it needs.
  if (v instanceof Date) return encodeString(v.toISOString().replace(/\.?0*Z$/, 'Z'));
  if (v instanceof GoTime) return encodeString(v.toJSON());
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'bigint') return v.toString();
  const inner = prefix + indent;
  const nl = indent ? `\n${inner}` : '';
  const close = indent ? `\n${prefix}` : '';
  const sep = indent ? ': ' : ':';
  if (Array.isArray(v)) {
    if (!v.length) return '[]';
    return `[${nl}${v.map((x) => encode(x, indent, inner)).join(`,${nl}`)}${close}]`;
  }
  if (typeof v === 'object') {
    const obj = v as Record<string, unknown>;
    let keys = Object.keys(obj).filter((k) => obj[k] !== undefined && typeof obj[k] !== 'function');
    // Struct fields are never integer-like, so an object with such a key is a map: Go sorts it.
    if (keys.some((k) => /^(0|[1-9][0-9]*)$/.test(k))) keys = keys.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    if (!keys.length) return '{}';
    return `{${nl}${keys.map((k) => `${encodeString(k)}${sep}${encode(obj[k], indent, inner)}`).join(`,${nl}`)}${close}}`;
  }
  return 'null';
}

function encodeString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    const cu = s.charCodeAt(i);
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (cu < 0x20 || ch === '<' || ch === '>' || ch === '&' || cu === 0x2028 || cu === 0x2029) out += `\\u${cu.toString(16).padStart(4, '0')}`;
    else if (cu >= 0xd800 && cu <= 0xdbff && i + 1 < s.length && s.charCodeAt(i + 1) >= 0xdc00 && s.charCodeAt(i + 1) <= 0xdfff) {
      out += ch + s[i + 1]!;
      i++;
    } else if (cu >= 0xd800 && cu <= 0xdfff) out += '\\ufffd';
    else out += ch;
  }
  return `${out}"`;
}
