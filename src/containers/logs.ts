// The k8s-file log format conmon writes (and barge writes for foreground runs):
//   2024-01-02T03:04:05.123456789+00:00 stdout F a whole line
//   2024-01-02T03:04:05.123456789+00:00 stdout P a partial line, continued by the next entry

import { appendFileSync, closeSync, openSync, readSync, fstatSync } from 'node:fs';
import { Writable } from 'node:stream';
import { parseDuration } from '../primitives/config.ts';

export interface LogEntry {
  /** The timestamp as written (RFC 3339 with nanoseconds). */
  time: string;
  ms: number;
  stream: 'stdout' | 'stderr';
  /** Whole line (with its newline unless the log ends in a partial line). */
  text: string;
}

// The text may hold a carriage return (a terminal's output ends its lines with \r\n): dotAll.
const LINE = /^(\S+) (stdout|stderr) ([PF]) ?(.*)$/s;

/** Parses whole log lines, joining partial (P) entries with what follows on the same stream. */
export function parseK8sLog(text: string): LogEntry[] {
  const out: LogEntry[] = [];
  const pending: Partial<Record<'stdout' | 'stderr', LogEntry>> = {};
  for (const raw of text.split('\n')) {
    if (raw === '') continue;
    const m = LINE.exec(raw);
    if (!m) continue;
    const stream = m[2] as 'stdout' | 'stderr';
    const p = pending[stream];
    const entry: LogEntry = p ?? { time: m[1]!, ms: parseTime(m[1]!), stream, text: '' };
    entry.text += m[4]!;
    if (m[3] === 'F') {
      entry.text += '\n';
      out.push(entry);
      delete pending[stream];
    } else pending[stream] = entry;
  }
  for (const s of ['stdout', 'stderr'] as const) {
    const p = pending[s];
    if (p) out.push(p);
  }
  return out.sort((a, b) => a.ms - b.ms);
}

function parseTime(t: string): number {
  // Date.parse does not take nanoseconds: keep milliseconds.
  const ms = Date.parse(t.replace(/(\.\d{3})\d+/, '$1'));
  return Number.isNaN(ms) ? 0 : ms;
}

/** RFC 3339 with nanoseconds and a numeric offset, as conmon writes. */
export function logTimestamp(d = new Date()): string {
  const iso = d.toISOString(); // 2024-01-02T03:04:05.123Z
  const ns = process.hrtime.bigint() % 1_000_000n;
  return `${iso.slice(0, 23)}${ns.toString().padStart(6, '0')}+00:00`;
}

/** Turns a chunk of output into k8s-file lines; a trailing piece without newline is a partial entry. */
export function k8sLines(stream: 'stdout' | 'stderr', chunk: Buffer): string {
  const ts = logTimestamp();
  const text = chunk.toString('utf8');
  const parts = text.split('\n');
  let out = '';
  parts.forEach((p, i) => {
    const last = i === parts.length - 1;
    if (last && p === '') return;
    out += `${ts} ${stream} ${last ? 'P' : 'F'} ${p}\n`;
  });
  return out;
}

/** A writable that copies what it gets to `dest` and appends it to the log file. */
export function teeToLog(dest: NodeJS.WritableStream, stream: 'stdout' | 'stderr', logPath: string | null): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (logPath) {
        try {
          appendFileSync(logPath, k8sLines(stream, chunk));
        } catch {
          // A log that cannot be written must not break the container's output.
        }
      }
      if (dest.write(chunk)) cb();
      else dest.once('drain', () => cb());
    },
  });
}

/** Reads the bytes of a file from `offset` on. */
export function readFrom(path: string, offset: number): { text: string; size: number } {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return { text: '', size: offset };
  }
  try {
    const size = fstatSync(fd).size;
    if (size <= offset) return { text: '', size };
    const buf = Buffer.alloc(size - offset);
    let got = 0;
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, offset + got);
      if (n === 0) break;
      got += n;
    }
    return { text: buf.subarray(0, got).toString('utf8'), size: offset + got };
  } finally {
    closeSync(fd);
  }
}

/** --since/--until: RFC 3339 time, Unix seconds, or a Go duration before now (10s, 5m, 1h30m). */
export function parseSince(v: string, now = Date.now()): number {
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v) * 1000;
  // Only unsigned durations: "-5s" is not a time before now.
  if (/^(?:\d+(?:\.\d+)?(?:ns|us|\u00b5s|\u03bcs|ms|s|m|h))+$/.test(v)) return now - parseDuration(v) / 1e6;
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new Error(`invalid time "${v}": use RFC 3339, Unix seconds or a duration like 10m`);
  return t;
}

/**
 * Reads whole log lines from `offset` on and hands them to `emit`; with `follow`, keeps reading
 * (polling, as the log is a plain file conmon appends to) until `follow()` returns false, then
 * reads once more so nothing written before the end is lost. Resolves with the new offset.
 */
export async function readLog(path: string, offset: number, emit: (entries: LogEntry[]) => void, follow?: () => boolean): Promise<number> {
  for (let delay = 20; ; delay = Math.min(delay * 2, 250)) {
    const going = follow?.() ?? false;
    const { text } = readFrom(path, offset);
    // Only whole lines: a partial last line is read again next time.
    const cut = text.lastIndexOf('\n') + 1;
    if (cut > 0) {
      emit(parseK8sLog(text.slice(0, cut)));
      offset += Buffer.byteLength(text.slice(0, cut));
      delay = 20;
    }
    if (!going) return offset;
    await new Promise((r) => setTimeout(r, delay));
  }
}

/** Writes log entries to barge's stdout and stderr, as they were written by the container. */
export function writeEntries(entries: LogEntry[], decorate: (e: LogEntry) => string = (e) => e.text): void {
  for (const e of entries) (e.stream === 'stderr' ? process.stderr : process.stdout).write(decorate(e));
}
