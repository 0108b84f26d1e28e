// Podman's run/create options that shape what a container sees beyond its mounts: the default
// environment (--unsetenv, --env-merge, --env-host, --http-proxy), the image's VOLUMEs
// (--image-volume), --sysctl, --expose, --tz, --umask, and the /etc/passwd and /etc/group entries
// Podman adds (--passwd, --passwd-entry, --hostuser). Checked at create, as Podman does, so that no
// container is made that could never start.

import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { appendFile, readFile } from 'node:fs/promises';
import { posix } from 'node:path';
import { resolveInRoot } from '../store/secure-path.ts';
import { expandWord, ExpandError } from '../containerfile/expand.ts';
import { parseGroup, parsePasswd } from '../runtime/user.ts';
// --http-proxy (default true) copies the same variables from the host as Buildah's (containers.conf's ProxyEnv).
import { mergeEnv, PROXY_VARS } from '../primitives/run.ts';
import type { MountSpec } from '../runtime/spec.ts';
import { ContainerError, type ContainerConfig } from './record.ts';
import type { VolumeRequest } from './volumes.ts';

export interface EnvOptions {
  unsetEnv?: string[];
  unsetEnvAll?: boolean;
  envMerge?: string[];
  envHost?: boolean;
  /** Default true. */
  httpProxy?: boolean;
}

const keyOf = (e: string): string => (e.includes('=') ? e.slice(0, e.indexOf('=')) : e);

/**
 * The container's environment before -e and --env-file: the defaults (PATH, TERM, container) and
 * the image's, rewritten by --env-merge and thinned by --unsetenv, then the host's variables
 * (--env-host: all of them; else the proxy ones). Podman's order: unsetting never removes a
 * variable given on the command line or taken from the host.
 */
export function defaultEnv(defaults: readonly string[], o: EnvOptions): string[] {
  const vars = new Map(mergeEnv([...defaults], []).map((e) => [keyOf(e), e.slice(keyOf(e).length + 1)]));
  for (const m of o.envMerge ?? []) {
    let word: string;
    try {
      word = expandWord(m, vars, '\\');
    } catch (e) {
      if (!(e instanceof ExpandError)) throw e;
      throw new ContainerError(`unable to process variables for --env-merge ${m}: ${e.message}`);
    }
    // As Podman: only a variable the defaults have is rewritten.
    const k = keyOf(word);
    if (vars.has(k)) vars.set(k, word.slice(k.length + 1));
  }
  for (const u of o.unsetEnv ?? []) vars.delete(u);
  if (o.unsetEnvAll) vars.clear();
  const host = Object.entries(process.env).filter(
    (kv): kv is [string, string] => kv[1] !== undefined && (o.envHost ? !kv[0].startsWith('_BARGE') : (o.httpProxy ?? true) && PROXY_VARS.includes(kv[0])),
  );
  return mergeEnv([...vars].map(([k, v]) => `${k}=${v}`), host.map(([k, v]) => `${k}=${v}`));
}

/**
 * --image-volume: each VOLUME of the image that no -v, --mount or --tmpfs covers becomes an
 * anonymous volume (bind, filled from the image at the first start), a tmpfs holding a copy of
 * the image's content there, or nothing (ignore).
 */
export function imageVolumes(mode: string | undefined, volumes: readonly string[], mounts: MountSpec[], requests: VolumeRequest[]): void {
  const m = mode ?? 'bind';
  if (m !== 'bind' && m !== 'tmpfs' && m !== 'ignore') throw new ContainerError(`invalid image volume mode "${m}" required value: bind, tmpfs, ignore`);
  if (m === 'ignore') return;
  const clean = (d: string): string => posix.normalize(d).replace(/(.)\/$/, '$1');
  const taken = new Set([...mounts.map((x) => clean(x.destination)), ...requests.map((r) => clean(r.destination))]);
  for (const v of volumes) {
    const destination = clean(v);
    if (!destination.startsWith('/') || taken.has(destination)) continue;
    taken.add(destination);
    if (m === 'bind') requests.push({ name: undefined, destination, options: ['rbind'], noCopy: false });
    else mounts.push({ destination, type: 'tmpfs', source: 'tmpfs', options: ['rw', 'nosuid', 'nodev', 'tmpcopyup'] });
  }
}

/** The sysctls Podman lets a container set: those of the namespaces it has of its own. */
const NAMESPACED_SYSCTLS = new Set(['kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced']);

/** --sysctl KEY=VALUE values, with Podman's checks and messages. */
export function parseSysctls(values: readonly string[], network: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const parts = v.split('=');
    if (parts.length < 2) throw new ContainerError(`${v} is invalid, sysctl values must be in the form of KEY=VALUE`);
    const [key, value] = parts as [string, string];
    if (`${key.trim()}=${value.trim()}` !== v) throw new ContainerError(`'${v}' is invalid, extra spaces found`);
    if (!NAMESPACED_SYSCTLS.has(key) && !key.startsWith('net.') && !key.startsWith('fs.mqueue.')) throw new ContainerError(`sysctl '${key}' is not allowed`);
    if (key.startsWith('net.') && network === 'host') throw new ContainerError(`sysctl ${v} can't be set since Network Namespace set to host: invalid argument`);
    out[key] = value;
  }
  return out;
}

/** --expose PORT[-PORT][/PROTO] values, as the "PORT/PROTO" keys Podman's inspect lists. */
export function parseExpose(values: readonly string[], what = '--expose'): string[] {
  const out: string[] = [];
  for (const v of values) {
    const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/.exec(v);
    if (!m) throw new ContainerError(`invalid range format for ${what}: ${v}: expected PORT[-PORT][/tcp|udp|sctp]`);
    const first = Number(m[1]);
    const last = m[2] === undefined ? first : Number(m[2]);
    for (const n of [first, last]) if (n < 1 || n > 65535) throw new ContainerError(`port numbers must be between 1 and 65535 (inclusive), got ${n}`);
    if (last < first) throw new ContainerError(`invalid range format for ${what}: ${v}: the end is below the start`);
    for (let p = first; p <= last; p++) out.push(`${p}/${m[3] ?? 'tcp'}`);
  }
  return [...new Set(out)];
}

/** --umask: octal, at most 0777; shown as Podman shows it (four digits). */
export function parseUmask(v: string): string {
  if (!/^[0-7]+$/.test(v) || parseInt(v, 8) > 0o777) throw new ContainerError(`running container create option: invalid umask string ${v}: invalid argument`);
  return parseInt(v, 8).toString(8).padStart(4, '0');
}

const ZONEINFO = '/usr/share/zoneinfo';

/** The host file of a --tz zone ("local": the host's own /etc/localtime). */
export function timezoneFile(tz: string): string {
  if (tz === 'local') return realpathSync('/etc/localtime');
  const file = posix.join(ZONEINFO, tz);
  if (tz.startsWith('/') || !file.startsWith(`${ZONEINFO}/`) || !existsSync(file)) {
    throw new ContainerError(`running container create option: stat ${file}: no such file or directory`);
  }
  return file;
}

/** --systemd: "false", or "true" for a command that is not an init; barge has no systemd mode. */
export function checkSystemd(mode: string | undefined, command: readonly string[]): void {
  if (mode === undefined || mode === 'false') return;
  if (mode !== 'true' && mode !== 'always') throw new ContainerError('invalid config provided: --systemd values must be one of "true, false, always": invalid configuration');
  const arg0 = command[0] ?? '';
  const init = ['/sbin/init', '/usr/sbin/init', '/usr/local/sbin/init'].includes(arg0) || posix.basename(arg0) === 'systemd';
  if (mode === 'always' || init) {
    throw new ContainerError(`--systemd ${mode}${init ? ` (the command is ${arg0})` : ''}: barge has no systemd mode (the tmpfs mounts, cgroup and stop signal systemd needs as pid 1); use --systemd=false`);
  }
}

/** --sdnotify: conmon and ignore are what barge can do; "container" needs the notify socket passed in. */
export function checkSdNotify(mode: string | undefined): void {
  if (mode === undefined || mode === 'conmon' || mode === 'ignore') return;
  if (mode === 'container') throw new ContainerError('--sdnotify container: barge does not pass the notify socket into the container; use conmon or ignore');
  throw new ContainerError(`invalid config provided: invalid argument: invalid sdnotify value "${mode}": must be container, conmon or ignore`);
}

/** --seccomp-policy: only "default"; "image" would read a profile from the image's annotations. */
export function checkSeccompPolicy(policy: string | undefined): void {
  if (policy === undefined || policy === 'default') return;
  if (policy === 'image') throw new ContainerError('--seccomp-policy image: barge reads no seccomp profile from images; use default');
  throw new ContainerError(`invalid seccomp policy "${policy}": valid policies are ["default" "image"]`);
}

/** --personality: the execution domains the runtimes know. */
export function checkPersonality(p: string | undefined): void {
  if (p !== undefined && p !== 'LINUX' && p !== 'LINUX32') throw new ContainerError(`invalid personality "${p}": use LINUX or LINUX32`);
}

/** --oom-score-adj: the kernel's range. */
export function parseOomScoreAdj(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^-?\d+$/.test(v) || n < -1000 || n > 1000) throw new ContainerError(`invalid --oom-score-adj "${v}": expected an integer from -1000 to 1000`);
  return n;
}

/**
 * --preserve-fds: every descriptor from 3 on that is to be passed must have been given to barge.
 * Node's own descriptors fill the free numbers, so the launcher (bin/barge) counts the ones given.
 */
export function checkPreservedFds(n: number): void {
  const given = Number(process.env._BARGE_INHERITED_FDS ?? 0);
  if (n > given) throw new ContainerError(`file descriptor ${3 + given} is not available - the preserve-fds option requires that file descriptors must be passed`);
}

/**
 * At start, in the mounted rootfs: the entries Podman adds to the container's own /etc/passwd
 * and /etc/group (it edits the files in place). A uid without an entry gets one (--passwd-entry's
 * template, else "UID:*:UID:GID:container user:WORKDIR:/bin/sh"), an explicit numeric group
 * without an entry gets one, and each --hostuser the image lacks gets the host's line. Returns
 * the home directory of an entry added for the container's user.
 */
export async function addPasswdEntries(rootfs: string, cfg: ContainerConfig, user: { uid: number; gid: number }, containerId: string): Promise<string | undefined> {
  if (cfg.passwd === false) return undefined;
  const passwdPath = await resolveInRoot(rootfs, '/etc/passwd');
  const text = await readFile(passwdPath, 'utf8').catch(() => null);
  if (text === null) return undefined;
  const entries = parsePasswd(text);
  const lines: string[] = [];
  for (const name of cfg.hostUsers ?? []) {
    if (entries.some((e) => e.name === name || String(e.uid) === name)) continue;
    const host = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => {
      const f = l.split(':');
      return f[0] === name || (/^\d+$/.test(name) && f[2] === name);
    });
    if (!host) throw new ContainerError(`creating temporary passwd file for container ${containerId}: user: unknown user ${name}`, 126);
    lines.push(host);
  }
  const [userPart = '', groupPart] = cfg.user.split(':');
  let home: string | undefined;
  if (/^\d+$/.test(userPart) && !entries.some((e) => e.uid === user.uid)) {
    home = cfg.workingDir;
    const vars: Record<string, string> = { USERNAME: userPart, UID: String(user.uid), GID: String(user.gid), NAME: 'container user', HOME: home };
    lines.push(cfg.passwdEntry !== undefined ? cfg.passwdEntry.replace(/\$(USERNAME|UID|GID|NAME|HOME)/g, (_, k: string) => vars[k]!) : `${userPart}:*:${user.uid}:${user.gid}:container user:${home}:/bin/sh`);
  }
  if (lines.length) await appendFile(passwdPath, `${text.endsWith('\n') || text === '' ? '' : '\n'}${lines.join('\n')}\n`);
  if (groupPart !== undefined && /^\d+$/.test(groupPart)) {
    const groupPath = await resolveInRoot(rootfs, '/etc/group');
    const groups = await readFile(groupPath, 'utf8').catch(() => null);
    if (groups !== null && !parseGroup(groups).some((g) => g.gid === user.gid)) {
      await appendFile(groupPath, `${groups.endsWith('\n') || groups === '' ? '' : '\n'}${user.gid}:x:${user.gid}:${userPart}\n`);
    }
  }
  return home;
}
