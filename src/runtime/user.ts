// Resolves a --user / USER value against the passwd and group files of a container rootfs.
// The rootfs is untrusted image content, so its files are looked up as if chrooted into it.

import { readFile } from 'node:fs/promises';
import { resolveInRoot } from '../store/secure-path.ts';

export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  home: string;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

async function readRootFile(rootfs: string, file: string): Promise<string | null> {
  try {
    // Resolved as the container would see it: a symlinked /etc/passwd cannot point at the host's.
    return await readFile(await resolveInRoot(rootfs, file), 'utf8');
  } catch {
    return null;
  }
}

function parseId(s: string): number | null {
  if (!/^\d+$/.test(s)) return null;
  const n = Number(s);
  // (uid_t)-1 is reserved by the kernel as "unchanged".
  return n < 0xffffffff ? n : null;
}

export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 4) continue;
    const uid = parseId(f[2]!);
    const gid = parseId(f[3]!);
    if (uid === null || gid === null) continue;
    out.push({ name: f[0]!, uid, gid, home: f[5] ?? '' });
  }
  return out;
}

export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 3) continue;
    const gid = parseId(f[2]!);
    if (gid === null) continue;
    const members = (f[3] ?? '').split(',').map((m) => m.trim()).filter((m) => m !== '');
    out.push({ name: f[0]!, gid, members });
  }
  return out;
}

/**
 * Resolves "name", "uid", "uid:gid", "name:group", "uid:groupname" (empty/undefined = root).
 * A uid missing from passwd runs with gid 0, as Podman does. Supplementary groups come from the
 * group file only when the group was not given explicitly: naming a group means "exactly this group".
 */
export async function resolveUser(rootfs: string, spec: string | undefined): Promise<ResolvedUser> {
  const value = (spec ?? '').trim();
  const colon = value.indexOf(':');
  const userPart = colon < 0 ? value : value.slice(0, colon);
  const groupPart = colon < 0 ? '' : value.slice(colon + 1);
  if (colon >= 0 && groupPart === '') throw new Error(`invalid user spec "${value}": empty group`);

  const passwd = parsePasswd((await readRootFile(rootfs, '/etc/passwd')) ?? '');
  let groups: GroupEntry[] | undefined;
  const loadGroups = async (): Promise<GroupEntry[]> =>
    (groups ??= parseGroup((await readRootFile(rootfs, '/etc/group')) ?? ''));

  let uid: number;
  let gid = 0;
  let home = '/';
  let entry: PasswdEntry | undefined;
  const numericUid = userPart === '' ? 0 : parseId(userPart);
  if (numericUid !== null) {
    uid = numericUid;
    entry = passwd.find((p) => p.uid === uid);
  } else {
    entry = passwd.find((p) => p.name === userPart);
    if (!entry) throw new Error(`unable to find user ${userPart}: no matching entries in passwd file`);
    uid = entry.uid;
  }
  if (entry) {
    gid = entry.gid;
    if (entry.home !== '') home = entry.home;
  }

  let additionalGids: number[] = [];
  if (groupPart !== '') {
    const numericGid = parseId(groupPart);
    if (numericGid !== null) gid = numericGid;
    else {
      const g = (await loadGroups()).find((e) => e.name === groupPart);
      if (!g) throw new Error(`unable to find group ${groupPart}: no matching entries in group file`);
      gid = g.gid;
    }
  } else if (entry) {
    const name = entry.name;
    additionalGids = [
      ...new Set((await loadGroups()).filter((g) => g.members.includes(name) && g.gid !== gid).map((g) => g.gid)),
    ];
  }
  return { uid, gid, additionalGids, home };
}

/** Podman's bounds for a --group-add number (those of runc's libcontainer/user). */
const MAX_GROUP_ADD_ID = 2 ** 31 - 1;

/**
 * The gids of --group-add values: a name in the rootfs's group file, else a number; as Podman
 * (and runc's user package), a name is looked up first, and numbers outside 0..2^31-1 are refused.
 * Duplicates are dropped (runc's lookup fails on a name given twice, a quirk not kept here).
 */
export async function resolveGroups(rootfs: string, groups: readonly string[]): Promise<number[]> {
  if (groups.length === 0) return [];
  const entries = parseGroup((await readRootFile(rootfs, '/etc/group')) ?? '');
  const out: number[] = [];
  for (const g of groups) {
    const named = entries.find((e) => e.name === g);
    let gid = named?.gid;
    if (gid === undefined) {
      if (!/^[+-]?\d+$/.test(g)) throw new Error(`Unable to find group ${g}: no matching entries in group file`);
      gid = Number(g);
      if (gid < 0 || gid > MAX_GROUP_ADD_ID) throw new Error(`uids and gids must be in range 0-${MAX_GROUP_ADD_ID}`);
    }
    if (!out.includes(gid)) out.push(gid);
  }
  return out;
}
