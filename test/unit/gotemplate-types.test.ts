import { describe, expect, it } from 'vitest';
import { TemplateError, goTyped, parseTemplate, withGoJSONTimes, type GoType } from '../../src/cli/gotemplate.ts';
import { formatRows } from '../../src/cli/table.ts';
import { goJSON } from '../../src/image/gojson.ts';
import { GoTime } from '../../src/image/gotime.ts';
import { CONTAINER_DATA, IMAGE_REPORTER, PS_REPORTER } from '../../src/cli/gotypes.ts';

const run = (src: string, data: unknown, name?: string): string => parseTemplate(src, undefined, name === undefined ? {} : { name }).execute(data);

const failure = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(TemplateError);
    return (e as Error).message;
  }
  throw new Error('expected a TemplateError');
};

const time = (s: string): GoTime => {
  const t = GoTime.parse(s);
  if (!t) throw new Error(`not a time: ${s}`);
  return t;
};

describe('GoTime', () => {
  it("prints Go's time.Time String(), keeping nanoseconds and trimming trailing zeros", () => {
    expect(time('2026-11-23T05:01:02.123456789Z').toString()).toBe('2026-11-23 05:01:02.123456789 +0000 UTC');
    expect(time('2026-11-23T05:01:02.820Z').toString()).toBe('2026-11-23 05:01:02.82 +0000 UTC');
    expect(time('2026-11-23T05:01:02Z').toString()).toBe('2026-11-23 05:01:02 +0000 UTC');
    expect(time('0001-01-01T00:00:00Z').toString()).toBe('0001-01-01 00:00:00 +0000 UTC');
    expect(GoTime.ZERO.toString()).toBe('0001-01-01 00:00:00 +0000 UTC');
  });

  it('keeps a fixed offset, which Go prints as the offset twice', () => {
    expect(time('2026-11-23T05:01:02.5-07:00').toString()).toBe('2026-11-23 05:01:02.5 -0700 -0700');
    expect(time('2026-11-23T05:01:02.5-07:00').toJSON()).toBe('2026-11-23T05:01:02.5-07:00');
    expect(time('2026-11-23T05:01:02-07:00').UTC().toString()).toBe('2026-11-23 12:01:02 +0000 UTC');
  });

  it("marshals as Go's JSON does: RFC 3339 with the fraction it needs", () => {
    expect(goJSON({ t: time('2026-11-23T05:01:02.123456780Z') })).toBe('{"t":"2026-11-23T05:01:02.12345678Z"}');
    expect(goJSON(GoTime.ZERO)).toBe('"0001-01-01T00:00:00Z"');
    expect(JSON.stringify(time('2026-11-23T05:01:02Z'))).toBe('"2026-11-23T05:01:02Z"');
  });

  it('converts Dates, Unix seconds and bad input', () => {
    expect(GoTime.from(new Date('2026-11-23T05:01:02.25Z')).toString()).toBe('2026-11-23 05:01:02.25 +0000 UTC');
    expect(GoTime.from(0).UTC().toString()).toBe('1970-01-01 00:00:00 +0000 UTC');
    expect(GoTime.from('yesterday')).toBe(GoTime.ZERO);
    expect(GoTime.parse('2026-13-45')).toBeUndefined();
    expect(GoTime.parse('2026-02-30T00:00:00Z')).toBeUndefined();
    expect(time('2024-02-29T23:59:59Z').toString()).toBe('2024-02-29 23:59:59 +0000 UTC');
    expect(time('0099-12-31T00:00:00Z').toString()).toBe('0099-12-31 00:00:00 +0000 UTC');
  });

  it('formats with reference-time layouts', () => {
    const t = time('2026-03-04T15:06:07.089Z');
    expect(t.Format('2006-01-02T15:04:05Z07:00')).toBe('2026-03-04T15:06:07Z');
    expect(t.Format('Jan _2 3:04PM')).toBe('Mar  4 3:06PM');
    expect(t.Format('Monday, 02-Jan-06 15:04:05.000 MST')).toBe('Wednesday, 04-Mar-26 15:06:07.089 UTC');
    expect(t.Format('.999999999|,000000|-0700|002')).toBe('.089|,089000|+0000|063');
    expect(time('2026-03-04T15:06:07Z').Format('05.999')).toBe('07');
    expect(t.Unix()).toBe(1772636767);
    expect(t.UnixNano()).toBe(1772636767089000000n);
    expect(GoTime.ZERO.IsZero()).toBe(true);
    expect(t.IsZero()).toBe(false);
  });
});

describe('Go types in templates', () => {
  const state: GoType = { ptr: { struct: 'define.State', fields: { StartedAt: 'time', Health: { struct: 'define.Health', fields: { Log: { slice: 'any' } } } } } };
  const data: GoType = {
    struct: 'define.Data',
    fields: { ID: 'string', Created: 'time', State: state, Labels: { map: 'string' }, Args: { slice: 'string' }, History: { slice: { struct: 'v1.History', fields: { Created: 'time', CreatedBy: 'string' } } } },
  };
  const obj = (): Record<string, unknown> =>
    goTyped(
      {
        Id: 'abc',
        Created: '2026-11-23T05:01:02.123456789Z',
        State: { Status: 'exited', StartedAt: '0001-01-01T00:00:00Z', Health: { Status: '' } },
        Labels: null,
        History: [{ created: '2026-01-02T03:04:05Z', created_by: '/bin/sh' }],
        Extra: 7,
      },
      data,
    );

  it('prints time fields as time.Time, and json keeps RFC 3339', () => {
    expect(run('{{.Created}}', obj())).toBe('2026-11-23 05:01:02.123456789 +0000 UTC');
    expect(run('{{.State.StartedAt}}', obj())).toBe('0001-01-01 00:00:00 +0000 UTC');
    expect(run('{{json .Created}}', obj())).toBe('"2026-11-23T05:01:02.123456789Z"');
    expect(run('{{printf "%s|%v" .Created .State.StartedAt}}', obj())).toBe('2026-11-23 05:01:02.123456789 +0000 UTC|0001-01-01 00:00:00 +0000 UTC');
    expect(run('{{.Created.Unix}} {{.Created.Format "2006-01-02"}} {{.State.StartedAt.IsZero}}', obj())).toBe('1795410062 2026-11-23 true');
    expect(run('{{if eq .Created .Created}}same{{end}}', obj())).toBe('same');
  });

  it('gives nil maps and slices and absent fields their Go zero values', () => {
    expect(run('{{.Labels}}|{{.Args}}|{{.State.Health.Log}}|{{len .Labels}}|{{json .Labels}}|{{json .Args}}', obj())).toBe('map[]|[]|[]|0|null|null');
    expect(run('{{if .Labels}}yes{{else}}no{{end}}{{range .Args}}x{{end}}', obj())).toBe('no');
    expect(run('{{.Labels.missing}}', obj())).toBe('<no value>');
  });

  it('finds a field under its Go name when the data has the JSON key', () => {
    expect(run('{{.ID}} {{.Id}} {{.Extra}}', obj())).toBe('abc abc 7');
    expect(run('{{range .History}}{{.Created}} {{.CreatedBy}}{{end}}', obj())).toBe('2026-01-02 03:04:05 +0000 UTC /bin/sh');
    expect(run('{{(index .History 0).Created}}', obj())).toBe('2026-01-02 03:04:05 +0000 UTC');
  });

  it("fails on a field the struct lacks, naming the type as Go does", () => {
    expect(failure(() => run('{{.NoSuch}}', obj(), 'inspect'))).toBe(
      'template: inspect:1:2: executing "inspect" at <.NoSuch>: can\'t evaluate field NoSuch in type define.Data',
    );
    expect(failure(() => run('{{.State.NoSuch}}', obj(), 'inspect'))).toContain("at <.State.NoSuch>: can't evaluate field NoSuch in type *define.State");
    expect(failure(() => run('{{.State.Health.NoSuch}}', obj(), 'x'))).toContain('in type define.Health');
    expect(failure(() => run('{{range .History}}{{.Nope}}{{end}}', obj(), 'x'))).toContain("can't evaluate field Nope in type v1.History");
    expect(failure(() => run('{{.Created.Nope}}', obj(), 'x'))).toContain("can't evaluate field Nope in type time.Time");
    expect(failure(() => run('{{.NoSuch}}', goTyped(obj(), { iface: data }), 'x'))).toContain('in type interface {}');
    expect(failure(() => run('{{.ID 1}}', obj(), 'x'))).toContain('ID has arguments but cannot be invoked as function');
  });

  it('prints a struct as {…} with its times and zero values', () => {
    const v = goTyped({ Name: 'v', CreatedAt: '2026-01-02T03:04:05Z', Options: null }, { struct: 'T', fields: { CreatedAt: 'time', Options: { map: 'string' }, UID: 'int' } });
    expect(run('{{.}}', v)).toBe('{v 2026-01-02 03:04:05 +0000 UTC map[] 0}');
    expect(run('{{printf "%T" .}} {{printf "%T" .CreatedAt}}', v)).toBe('T time.Time');
  });

  it('calls methods before fields', () => {
    const t: GoType = { struct: 'R', methods: { Size: (self) => `${String(self['Bytes'])} B`, Twice: (_self, n) => Number(n) * 2 } };
    const r = goTyped({ Size: 1, Bytes: 5 }, t);
    expect(run('{{.Size}} {{.Twice 4}}', r)).toBe('5 B 8');
  });

  it("json writes a struct's own JSON when its type has one", () => {
    const t: GoType = { struct: 'R', json: (self) => ({ id: self['ID'] }) };
    expect(run('{{json .}}|{{.ID}}', goTyped({ ID: 'x', Extra: 1 }, t))).toBe('{"id":"x"}|x');
  });

  it("rewrites time fields for JSON as Go's MarshalJSON writes them, leaving the input alone", () => {
    const o = obj();
    o['Created'] = '2026-11-23T05:01:02.710Z';
    const out = withGoJSONTimes(o) as Record<string, unknown>;
    expect(out['Created']).toBe('2026-11-23T05:01:02.71Z');
    expect(goJSON((out['History'] as unknown[])[0])).toBe('{"created":"2026-01-02T03:04:05Z","created_by":"/bin/sh"}');
    expect(withGoJSONTimes({ At: '2026-01-01T00:00:00.000Z', N: 1 }, { map: 'time' })).toEqual({ At: '2026-01-01T00:00:00Z', N: 1 });
    expect(o['Created']).toBe('2026-11-23T05:01:02.710Z');
    expect(withGoJSONTimes({ a: 1 })).toEqual({ a: 1 });
  });

  it('knows the types of Podman containers', () => {
    const c = goTyped({ Id: 'x', Created: '2026-11-23T05:01:02Z', State: { FinishedAt: '2026-11-23T05:01:03.5Z' }, Config: { Labels: null } }, CONTAINER_DATA);
    expect(run('{{.Created}}|{{.State.FinishedAt}}|{{.State.CheckpointedAt}}|{{.Config.Labels}}|{{.HostConfig.Binds}}', c)).toBe(
      '2026-11-23 05:01:02 +0000 UTC|2026-11-23 05:01:03.5 +0000 UTC|0001-01-01 00:00:00 +0000 UTC|map[]|<no value>',
    );
  });
});

describe('error positions and names', () => {
  it('counts columns from 0 as Go does, after the caller’s prefix', () => {
    const t = parseTemplate('{{.A}} {{.B.C}}', undefined, { name: 'ps', prefix: 11 });
    expect(failure(() => t.execute(goTyped({ A: 1, B: {} }, { struct: 'R', fields: { B: { struct: 'S' } } })))).toBe(
      'template: ps:1:22: executing "ps" at <.B.C>: can\'t evaluate field C in type S',
    );
    // On later lines the prefix does not count.
    const t2 = parseTemplate('{{.A}}\n{{.Nope}}', undefined, { name: 'ps', prefix: 11 });
    expect(failure(() => t2.execute(goTyped({ A: 1 }, { struct: 'R' })))).toContain('template: ps:2:2: executing "ps" at <.Nope>');
  });

  it('gives parse errors with the line only', () => {
    expect(failure(() => parseTemplate('{{foo .ID}}', undefined, { name: 'images' }))).toBe('template: images:1: function "foo" not defined');
  });

  it('names list errors after the command and runs {{range .}} formats once over all rows', () => {
    const rows = [{ ID: 'a' }, { ID: 'b' }];
    expect(failure(() => formatRows(rows, { format: '{{.Nope}}', defaultTable: '', name: 'ps', type: PS_REPORTER }))).toBe(
      'template: ps:1:13: executing "ps" at <.Nope>: can\'t evaluate field Nope in type containers.psReporter',
    );
    expect(formatRows(rows, { format: '{{range .}}{{.ID}}{{end}}', defaultTable: '', name: 'ps', type: PS_REPORTER })).toBe('ab\n');
    // Only a bare `{{range .}}` counts (Podman's regexp): with variables it ranges over each row.
    expect(formatRows(rows, { format: '{{range $k, $v := .}}{{$k}}={{$v}}{{end}}', defaultTable: '' })).toBe('ID=a\nID=b\n');
  });

  it("computes Podman's image columns from the summary", () => {
    const row = { ID: 'abc', Names: ['localhost/a:1', 'localhost/a:2'], CreatedAtRaw: '2026-01-02T03:04:05.5Z', ReadOnly: false, Labels: {} };
    const out = formatRows([row], { format: '{{.History}}|{{.IsReadOnly}}|{{.RepoDigests}}|{{.Containers}}', defaultTable: '', name: 'images', type: IMAGE_REPORTER });
    expect(out).toBe('localhost/a:1, localhost/a:2|false|[]|0\n');
    expect(failure(() => formatRows([row], { format: '{{.CreatedAt.Unix}}', defaultTable: '', name: 'images', type: IMAGE_REPORTER }))).toContain(
      "can't evaluate field Unix in type string",
    );
  });
});
