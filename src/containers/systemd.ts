// `podman generate systemd`: a unit that starts a container at boot, the answer of a daemonless
// tool to restart policies across reboots. Two forms, as Podman writes them: one that starts and
// stops the existing container (Type=forking, PIDFile = its conmon's pid file), and with `--new`
// one that creates a fresh container each start from the command line it was created with and
// removes it afterwards.

import { GLOBAL_VALUE_OPTIONS } from '../cli/command-line.ts';
import type { Container } from './record.ts';

export const UNIT_RESTART_POLICIES = ['no', 'on-success', 'on-failure', 'on-abnormal', 'on-watchdog', 'on-abort', 'always'] as const;

export interface UnitOptions {
  /** Absolute path of the barge executable the unit runs. */
  barge: string;
  /** Global flags (--root, --runroot, ...) the unit passes to every barge command. */
  globalArgs: string[];
  /** Name the unit and its commands after the container's name rather than its id. */
  useName: boolean;
  new: boolean;
  restartPolicy: (typeof UNIT_RESTART_POLICIES)[number];
  restartSec?: number;
  startTimeout?: number;
  /** Seconds `stop` waits before SIGKILL; the container's own stop timeout when absent. */
  stopTimeout?: number;
  prefix: string;
  separator: string;
  header: boolean;
  /** The version line and time of the header. */
  version: string;
  now: Date;
  /** The runroot, which must be mounted before the unit starts. */
  runroot: string;
  /** The container's conmon pid file (the unit's PIDFile without --new). */
  conmonPidFile: string;
  /**
   * Option names of `run` that take a value (long and short spellings), so the container's
   * command line can be rewritten without mistaking a value for the image.
   */
  valueOptions: ReadonlySet<string>;
}

export interface Unit {
  name: string;
  text: string;
}

/** Systemd's quoting for one word of an Exec line. */
function quote(word: string): string {
  if (word !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `"${word.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\$/g, '$$$$').replace(/\n/g, '\\n')}"`;
}

/** An Exec line in Podman's layout: groups of words joined, groups separated by " \\\n\t". */
function execLine(key: string, groups: string[][]): string {
  return `${key}=${groups.map((g) => g.map(quote).join(' ')).join(' \\\n\t')}`;
}

/**
 * Rewrites the arguments `run`/`create` was given into those of the unit's `run`: the options the
 * unit sets itself (detach, --rm, --replace, --name, the id and pid files, the restart policy,
 * which systemd takes over) are dropped; everything else, image and command included, is kept.
 */
export function rewriteRunArgs(args: readonly string[], valueOptions: ReadonlySet<string>): string[] {
  const drop = new Set(['-d', '--detach', '--rm', '--replace', '--name', '--cidfile', '--conmon-pidfile', '--restart']);
  const out: string[] = [];
  let i = 0;
  for (; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--' || !a.startsWith('-') || a === '-') break;
    const eq = a.indexOf('=');
    const flag = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a;
    // Bundled short flags (-dit): keep all but -d.
    if (/^-[A-Za-z]{2,}$/.test(a) && ![...a.slice(1)].some((ch) => valueOptions.has(`-${ch}`))) {
      const kept = [...a.slice(1)].filter((ch) => ch !== 'd').join('');
      if (kept !== '') out.push(`-${kept}`);
      continue;
    }
    const takesValue = valueOptions.has(flag) && !(a.startsWith('--') && eq > 0);
    const value = takesValue ? args[++i] : undefined;
    if (drop.has(flag)) continue;
    out.push(a);
    if (value !== undefined) out.push(value);
  }
  return [...out, ...args.slice(i)];
}

/** The arguments of the verb in the command line create or run was given (after the global flags and `container`). */
function verbArgs(cmd: readonly string[]): string[] {
  for (let i = 0; i < cmd.length; i++) {
    const a = cmd[i]!;
    if (GLOBAL_VALUE_OPTIONS.has(a)) i++;
    else if (a === 'run' || a === 'create') return cmd.slice(i + 1);
    else if (!a.startsWith('-') && a !== 'container') return [];
  }
  return [];
}

/** Go's time.UnixDate in UTC ("Sun Nov 22 15:32:40 UTC 2026"), as Podman's header has it. */
function unixDate(d: Date): string {
  const day = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'][d.getUTCDay()]!;
  const month = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][d.getUTCMonth()]!;
  const time = d.toISOString().slice(11, 19);
  return `${day} ${month} ${String(d.getUTCDate()).padStart(2, ' ')} ${time} UTC ${d.getUTCFullYear()}`;
}

export function generateUnit(c: Container, o: UnitOptions): Unit {
  const cfg = c.data.config;
  const ident = o.useName ? c.record.name : c.record.id;
  const name = `${o.prefix}${o.separator}${ident}.service`;
  const stopT = o.stopTimeout ?? cfg.stopTimeout;
  const barge = [o.barge, ...o.globalArgs];
  const lines: string[] = [];
  if (o.header) {
    lines.push(`# ${name}`, `# autogenerated by barge ${o.version}`, `# ${unixDate(o.now)}`, '');
  }
  lines.push(
    '[Unit]',
    `Description=barge ${name}`,
    'Documentation=man:podman-generate-systemd(1)',
    'Wants=network-online.target',
    'After=network-online.target',
    `RequiresMountsFor=${o.runroot}`,
    '',
    '[Service]',
    'Environment=PODMAN_SYSTEMD_UNIT=%n',
    `Restart=${o.restartPolicy}`,
  );
  if (o.restartSec !== undefined) lines.push(`RestartSec=${o.restartSec}`);
  if (o.new && cfg.restart.name === 'on-failure' && cfg.restart.maxRetries > 0) lines.push(`StartLimitBurst=${cfg.restart.maxRetries}`);
  if (o.startTimeout !== undefined) lines.push(`TimeoutStartSec=${o.startTimeout}`);
  lines.push(`TimeoutStopSec=${stopT + 60}`);
  if (o.new) {
    const given = verbArgs(cfg.createCommand ?? []);
    if (given.length === 0) throw new Error(`container ${c.record.name} does not have a create command: cannot generate a unit with --new`);
    const runArgs = rewriteRunArgs(given, o.valueOptions);
    lines.push(
      execLine('ExecStartPre', [['/bin/rm'], ['-f', '%t/%n.ctr-id']]),
      execLine('ExecStart', [
        [...barge, 'run'],
        ['--cidfile=%t/%n.ctr-id'],
        ['--conmon-pidfile', '%t/%n.pid'],
        ['--rm'],
        ['-d'],
        ['--replace'],
        ['--name', c.record.name, ...runArgs],
      ]),
      execLine('ExecStop', [[...barge, 'stop'], ['--ignore', '-t', String(stopT)], ['--cidfile=%t/%n.ctr-id']]),
      execLine('ExecStopPost', [[...barge, 'rm'], ['-f'], ['--ignore'], ['--cidfile=%t/%n.ctr-id']]),
      'PIDFile=%t/%n.pid',
      'Type=forking',
    );
  } else {
    lines.push(
      execLine('ExecStart', [[...barge, 'start', ident]]),
      execLine('ExecStop', [[...barge, 'stop'], ['-t', String(stopT), ident]]),
      execLine('ExecStopPost', [[...barge, 'stop'], ['-t', String(stopT), ident]]),
      `PIDFile=${o.conmonPidFile}`,
      'Type=forking',
    );
  }
  lines.push('', '[Install]', 'WantedBy=default.target', '');
  return { name, text: lines.join('\n') };
}
