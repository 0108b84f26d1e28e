/**
 * A Go `time.Time` value for templates and JSON: our records keep times as RFC 3339 strings
 * (often with nanoseconds from other tools), and Podman prints them through Go's String() in
 * templates (`2026-11-23 05:01:02.123456789 +0000 UTC`) and through MarshalJSON (RFC 3339 with
 * the fraction it needs) in JSON. JS Dates keep milliseconds only, so the nanoseconds are kept
 * apart.
 */

const NS_PER_S = 1_000_000_000n;
const RFC3339 = /^(\d{4,})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9})\d*)?(?:([Zz])|([+-])(\d\d):?(\d\d))$/;

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

function pad(n: number, w = 2): string {
  return String(n).padStart(w, '0');
}

/** The offset and abbreviation Go's time.Local gives at `ms`, from the process's TZ. */
function localZone(ms: number): { offset: number; name: string } {
  const offset = -new Date(ms).getTimezoneOffset() * 60;
  const tz = process.env['TZ'];
  if (offset === 0 && (tz === undefined || tz === '' || tz === 'UTC' || tz === 'Etc/UTC')) return { offset, name: 'UTC' };
  const part = new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' }).formatToParts(new Date(ms)).find((p) => p.type === 'timeZoneName');
  // Go shows tzdata's abbreviation; where Intl has none it shows a "GMT+1" that Go never would.
  const name = part && /^[A-Z]{2,5}$/.test(part.value) ? part.value : '';
  return { offset, name };
}

export class GoTime {
  private constructor(
    /** Seconds since the Unix epoch. */
    readonly sec: number,
    /** Nanoseconds within the second, 0 ≤ nsec < 1e9. */
    readonly nsec: number,
    /** Seconds east of UTC of the time's location. */
    readonly offset: number,
    /** The location's abbreviation ("UTC"; "" for a fixed offset, which Go prints as the offset). */
    readonly zone: string,
  ) {}

  static readonly ZERO = new GoTime(-62135596800, 0, 0, 'UTC');

  /** Parses RFC 3339 (what Go's UnmarshalJSON takes); undefined if `s` is not such a time. */
  static parse(s: string): GoTime | undefined {
    const m = RFC3339.exec(s);
    if (!m) return undefined;
    const [, y, mo, d, h, mi, se, frac, z, sign, oh, om] = m;
    // Set field by field: Date.UTC maps years 0-99 to 1900-1999.
    const base = new Date(0);
    base.setUTCFullYear(Number(y), Number(mo) - 1, Number(d));
    base.setUTCHours(Number(h), Number(mi), Number(se), 0);
    // Out-of-range fields (month 13, Feb 30, hour 24) roll over in a Date; Go rejects them.
    if (Number.isNaN(base.getTime()) || base.getUTCMonth() !== Number(mo) - 1 || base.getUTCDate() !== Number(d) || base.getUTCHours() !== Number(h) || Number(mi) > 59 || Number(se) > 59) return undefined;
    const nsec = frac === undefined ? 0 : Number(frac.padEnd(9, '0'));
    const offset = z ? 0 : (sign === '-' ? -1 : 1) * (Number(oh) * 3600 + Number(om) * 60);
    const sec = base.getTime() / 1000 - offset;
    if (z) return new GoTime(sec, nsec, 0, 'UTC');
    // Go keeps time.Local when the offset is the local one, and an unnamed fixed zone otherwise.
    const local = localZone(sec * 1000);
    return local.offset === offset ? new GoTime(sec, nsec, offset, local.name) : new GoTime(sec, nsec, offset, '');
  }

  /** A time from a JS Date (millisecond precision), in UTC. */
  static fromDate(d: Date): GoTime {
    const ms = d.getTime();
    return new GoTime(Math.floor(ms / 1000), (((ms % 1000) + 1000) % 1000) * 1_000_000, 0, 'UTC');
  }

  /** Go's time.Unix(sec, nsec): a time in the local zone. */
  static unix(sec: number, nsec = 0): GoTime {
    const local = localZone(sec * 1000);
    return new GoTime(sec, nsec, local.offset, local.name);
  }

  /** RFC 3339 text, a Date, seconds since the epoch or a GoTime as a GoTime; the zero time otherwise. */
  static from(v: unknown): GoTime {
    if (v instanceof GoTime) return v;
    if (v instanceof Date) return GoTime.fromDate(v);
    if (typeof v === 'number' && Number.isFinite(v)) return GoTime.unix(Math.floor(v));
    if (typeof v === 'string') return GoTime.parse(v) ?? GoTime.ZERO;
    return GoTime.ZERO;
  }

  /** The wall clock of the time's location, as a UTC Date (for its calendar fields). */
  private wall(): Date {
    return new Date((this.sec + this.offset) * 1000);
  }

  private fraction(digits: number, trim: boolean): string {
    let f = pad(this.nsec, 9).slice(0, digits);
    if (trim) f = f.replace(/0+$/, '');
    return f === '' ? '' : `.${f}`;
  }

  private numericOffset(colon: boolean, utcZ: boolean, withMinutes = true): string {
    if (utcZ && this.offset === 0) return 'Z';
    const abs = Math.abs(this.offset);
    const sign = this.offset < 0 ? '-' : '+';
    const hh = pad(Math.floor(abs / 3600));
    if (!withMinutes) return sign + hh;
    return sign + hh + (colon ? ':' : '') + pad(Math.floor(abs / 60) % 60);
  }

  private date(sep: string, tsep: string): string {
    const w = this.wall();
    const year = w.getUTCFullYear();
    return (
      `${year < 0 ? '-' : ''}${pad(Math.abs(year), 4)}-${pad(w.getUTCMonth() + 1)}-${pad(w.getUTCDate())}${sep}` +
      `${pad(w.getUTCHours())}${tsep}${pad(w.getUTCMinutes())}${tsep}${pad(w.getUTCSeconds())}`
    );
  }

  /** Go's Time.String(): "2006-01-02 15:04:05.999999999 -0700 MST". */
  toString(): string {
    return `${this.date(' ', ':')}${this.fraction(9, true)} ${this.numericOffset(false, false)} ${this.zone || this.numericOffset(false, false)}`;
  }

  /** Go's MarshalJSON: RFC 3339 with nanoseconds, trailing zeros dropped. */
  toJSON(): string {
    return `${this.date('T', ':')}${this.fraction(9, true)}${this.numericOffset(true, true)}`;
  }

  // Methods templates call, with Go's names ({{.Created.Unix}}, {{.Created.Format "2006-01-02"}}).

  String(): string {
    return this.toString();
  }

  Unix(): number {
    return this.sec;
  }

  UnixNano(): bigint {
    return BigInt(this.sec) * NS_PER_S + BigInt(this.nsec);
  }

  IsZero(): boolean {
    return this.sec === GoTime.ZERO.sec && this.nsec === 0;
  }

  UTC(): GoTime {
    return new GoTime(this.sec, this.nsec, 0, 'UTC');
  }

  Local(): GoTime {
    return GoTime.unix(this.sec, this.nsec);
  }

  Year(): number {
    return this.wall().getUTCFullYear();
  }

  /** Go's Time.Format with a reference-time layout ("2006-01-02T15:04:05Z07:00"). */
  Format(layout: string): string {
    const w = this.wall();
    const hour = w.getUTCHours();
    const h12 = hour % 12 === 0 ? 12 : hour % 12;
    const jan1 = new Date(0);
    jan1.setUTCFullYear(w.getUTCFullYear(), 0, 1);
    const yday = Math.floor((w.getTime() - jan1.getTime()) / 86_400_000) + 1;
    // Longest chunks first, in the order Go's nextStdChunk tries them.
    const chunks: [string | RegExp, (m: string) => string][] = [
      ['January', () => MONTHS[w.getUTCMonth()] ?? ''],
      ['Jan', () => (MONTHS[w.getUTCMonth()] ?? '').slice(0, 3)],
      ['Monday', () => DAYS[w.getUTCDay()] ?? ''],
      ['Mon', () => (DAYS[w.getUTCDay()] ?? '').slice(0, 3)],
      ['MST', () => this.zone || this.numericOffset(false, false)],
      ['2006', () => pad(w.getUTCFullYear(), 4)],
      ['2', () => String(w.getUTCDate())],
      ['_2', () => String(w.getUTCDate()).padStart(2, ' ')],
      ['__2', () => String(yday).padStart(3, ' ')],
      ['002', () => pad(yday, 3)],
      ['01', () => pad(w.getUTCMonth() + 1)],
      ['02', () => pad(w.getUTCDate())],
      ['03', () => pad(h12)],
      ['04', () => pad(w.getUTCMinutes())],
      ['05', () => pad(w.getUTCSeconds())],
      ['06', () => pad(w.getUTCFullYear() % 100)],
      ['15', () => pad(hour)],
      ['1', () => String(w.getUTCMonth() + 1)],
      ['3', () => String(h12)],
      ['4', () => String(w.getUTCMinutes())],
      ['5', () => String(w.getUTCSeconds())],
      ['PM', () => (hour >= 12 ? 'PM' : 'AM')],
      ['pm', () => (hour >= 12 ? 'pm' : 'am')],
      ['Z07:00:00', () => this.numericOffset(true, true) + (this.offset === 0 ? '' : ':00')],
      ['-07:00:00', () => this.numericOffset(true, false) + ':00'],
      ['Z0700', () => this.numericOffset(false, true)],
      ['Z07:00', () => this.numericOffset(true, true)],
      ['Z07', () => (this.offset === 0 ? 'Z' : this.numericOffset(false, false, false))],
      ['-0700', () => this.numericOffset(false, false)],
      ['-07:00', () => this.numericOffset(true, false)],
      ['-07', () => this.numericOffset(false, false, false)],
      [/^[.,](0+|9+)(?!\d)/, (m) => this.fraction(m.length - 1, m[1] === '9').replace('.', m[0] ?? '.')],
    ];
    let out = '';
    let i = 0;
    outer: while (i < layout.length) {
      const rest = layout.slice(i);
      for (const [pat, fn] of chunks) {
        let m: string | undefined;
        if (typeof pat === 'string') {
          if (!rest.startsWith(pat)) continue;
          // "Jan"/"Mon" must not run into a lower-case letter ("Janet" is text), as in Go.
          if ((pat === 'Jan' || pat === 'Mon') && /^[a-z]/.test(rest.slice(pat.length))) continue;
          m = pat;
        } else {
          m = pat.exec(rest)?.[0];
          if (m === undefined) continue;
        }
        out += fn(m);
        i += m.length;
        continue outer;
      }
      out += layout[i];
      i++;
    }
    return out;
  }
}
