// Pure helpers of the container code: k8s-file logs, --since, memory sizes, signals.
import { describe, expect, it } from 'vitest';
import { k8sLines, parseK8sLog, parseSince } from '../../src/containers/logs.ts';
import { restartDue, signalNumber } from '../../src/containers/lifecycle.ts';
import { parseMemory } from '../../src/containers/shared-run-flags.ts';
import { initialState, type ContainerState } from '../../src/containers/record.ts';
import { parseDetachKeys } from '../../src/containers/attach.ts';
import { rewriteRunArgs } from '../../src/containers/systemd.ts';

describe('k8s-file logs', () => {
  it('joins partial entries and keeps streams apart', () => {
    const log = [
      '2024-01-02T03:04:05.000000001+00:00 stdout P hel',
      '2024-01-02T03:04:05.100000000+00:00 stderr F oops',
      '2024-01-02T03:04:05.200000000+00:00 stdout F lo',
      '2024-01-02T03:04:06.000000000+00:00 stdout F ',
      '',
    ].join('\n');
    const e = parseK8sLog(log);
    expect(e.map((x) => [x.stream, x.text])).toEqual([
      ['stdout', 'hello\n'],
      ['stderr', 'oops\n'],
      ['stdout', '\n'],
    ]);
    expect(e[0]!.time).toBe('2024-01-02T03:04:05.000000001+00:00');
  });

  it('writes what it parses', () => {
    const text = k8sLines('stdout', Buffer.from('a\nb\npart'));
    expect(text).toMatch(/^\S+ stdout F a\n\S+ stdout F b\n\S+ stdout P part\n$/);
    expect(parseK8sLog(text).map((x) => x.text)).toEqual(['a\n', 'b\n', 'part']);
  });
});

describe('option values', () => {
  it('--since takes RFC 3339, Unix seconds and durations', () => {
    expect(parseSince('2024-01-02T03:04:05Z')).toBe(Date.UTC(2024, 0, 2, 3, 4, 5));
    expect(parseSince('1700000000')).toBe(1_700_000_000_000);
    expect(parseSince('1h30m', 10_000_000)).toBe(10_000_000 - 5_400_000);
    expect(() => parseSince('yesterday')).toThrow(/invalid time/);
  });

  it('memory sizes and signals as Podman spells them', () => {
    expect(parseMemory('512m')).toBe(512 * 1024 * 1024);
    expect(parseMemory('1g')).toBe(1024 ** 3);
    expect(parseMemory('4096')).toBe(4096);
    expect(() => parseMemory('lots')).toThrow();
    expect(signalNumber('SIGTERM')).toBe(15);
    expect(signalNumber('kill')).toBe(9);
    expect(signalNumber('USR1')).toBe(10);
    expect(signalNumber('2')).toBe(2);
    expect(() => signalNumber('NOPE')).toThrow(/invalid signal/);
  });
});

describe('restart policies, detach keys and unit command lines', () => {
  const exited = (exitCode: number, more: Partial<ContainerState> = {}): ContainerState => ({ ...initialState(), status: 'exited', exitCode, ...more });

  it('restartDue follows Podman: on-failure counts retries, a stop by the user is final', () => {
    expect(restartDue({ name: 'no', maxRetries: 0 }, exited(1))).toBe(false);
    expect(restartDue({ name: 'on-failure', maxRetries: 0 }, exited(0))).toBe(false);
    expect(restartDue({ name: 'on-failure', maxRetries: 0 }, exited(3, { restartCount: 99 }))).toBe(true);
    expect(restartDue({ name: 'on-failure', maxRetries: 2 }, exited(3, { restartCount: 1 }))).toBe(true);
    expect(restartDue({ name: 'on-failure', maxRetries: 2 }, exited(3, { restartCount: 2 }))).toBe(false);
    expect(restartDue({ name: 'always', maxRetries: 0 }, exited(0))).toBe(true);
    expect(restartDue({ name: 'unless-stopped', maxRetries: 0 }, exited(0, { stoppedByUser: true }))).toBe(false);
    expect(restartDue({ name: 'always', maxRetries: 0 }, { ...exited(0), status: 'running' })).toBe(false);
  });

  it('detach keys as Podman spells them', () => {
    expect(parseDetachKeys('ctrl-p,ctrl-q')).toEqual([0x10, 0x11]);
    expect(parseDetachKeys('ctrl-[,x')).toEqual([0x1b, 0x78]);
    expect(parseDetachKeys('')).toEqual([]);
    expect(() => parseDetachKeys('ctrl-')).toThrow(/invalid detach keys/);
    expect(() => parseDetachKeys('ab')).toThrow(/invalid detach keys/);
  });

  it('the --new unit drops the options it sets itself and keeps the rest', () => {
    const values = new Set(['--name', '-e', '--env', '--restart', '--cidfile', '-v']);
    expect(rewriteRunArgs(['-d', '--name', 'x', '-e', 'A=1', '--restart=always', '-dit', '-v', '/a:/b', 'img', '-d', 'arg'], values))
      .toEqual(['-e', 'A=1', '-it', '-v', '/a:/b', 'img', '-d', 'arg']);
    expect(rewriteRunArgs(['--rm', '--replace', 'img'], values)).toEqual(['img']);
  });
});
