// The run/create flags that hand a container some of the host: --add-host entries for its
// /etc/hosts, and --device nodes. Checked at create with Podman's messages (exit 125, and no
// container made); the devices are looked up again at each start, as the host's may change.

import { lstatSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { join, posix } from 'node:path';
import { deviceNode, type AddedDevice } from '../runtime/spec.ts';
import { ContainerError, type DeviceMapping } from './record.ts';

/** --add-host HOST:IP, checked as Podman's: split at the first colon, so HOST:IPv6 works. */
export function checkExtraHost(value: string): string {
  const colon = value.indexOf(':');
  if (colon <= 0) throw new ContainerError(`bad format for add-host: ${JSON.stringify(value)}`);
  const ip = value.slice(colon + 1);
  // Go's net.ParseIP, which Podman uses, knows no zone (fe80::1%eth0).
  if (ip.includes('%') || isIP(ip.trim()) === 0) throw new ContainerError(`invalid IP address in add-host: ${JSON.stringify(ip)}`);
  return value;
}

/** The /etc/hosts lines of --add-host values, first in the file as Podman writes them. */
export function extraHostLines(hosts: readonly string[]): string {
  return hosts.map((h) => {
    const colon = h.indexOf(':');
    return `${h.slice(colon + 1).trim()}\t${h.slice(0, colon)}\n`;
  }).join('');
}

/** r, w and m, each at most once (Podman's IsValidDeviceMode). */
function isDeviceMode(s: string): boolean {
  return s !== '' && /^[rwm]+$/.test(s) && new Set(s).size === s.length;
}

function statError(path: string, e: unknown): ContainerError {
  const err = e as NodeJS.ErrnoException;
  const why = err.code === 'ENOENT' ? 'no such file or directory' : err.code === 'EACCES' ? 'permission denied' : err.message;
  return new ContainerError(`stat ${path}: ${why}`);
}

/**
 * --device HOST[:CONTAINER][:PERMISSIONS], parsed as Podman's ParseDevice (its second field may
 * be the permissions), with the host path's symbolic links resolved and CONTAINER defaulting to
 * the resolved path. The host path must be a device node, or a directory holding some.
 */
export function parseDevice(spec: string): DeviceMapping {
  const parts = spec.split(':');
  if (parts.length > 3) throw new ContainerError(`invalid device specification: ${spec}`);
  let permissions = 'rwm';
  let dst: string | undefined;
  if (parts.length === 3) {
    if (!isDeviceMode(parts[2]!)) throw new ContainerError(`invalid device mode: ${parts[2]}`);
    permissions = parts[2]!;
  }
  if (parts.length >= 2) {
    const second = parts[1]!;
    if (isDeviceMode(second)) permissions = second;
    else if (second.startsWith('/')) dst = second;
    else throw new ContainerError(`invalid device mode: ${second}`);
  }
  const given = parts[0]!;
  let src: string;
  try {
    // realpath would take '' for the working directory.
    if (given === '') throw Object.assign(new Error(''), { code: 'ENOENT' });
    src = realpathSync(given);
  } catch (e) {
    throw statError(given, e);
  }
  const mapping = { pathOnHost: src, pathInContainer: dst ?? src, permissions };
  addedDevices([mapping]);
  return mapping;
}

/**
 * The device nodes of --device mappings as they are on the host now: a node, or every node in a
 * directory (at the same place under the container path). Errors are Podman's.
 */
export function addedDevices(mappings: readonly DeviceMapping[]): AddedDevice[] {
  return mappings.flatMap((m) => {
    let isDir: boolean;
    try {
      isDir = statSync(m.pathOnHost).isDirectory();
    } catch (e) {
      throw statError(m.pathOnHost, e);
    }
    const found = isDir ? nodesUnder(m.pathOnHost) : [m.pathOnHost];
    if (isDir && found.length === 0) throw new ContainerError(`no devices found in ${m.pathOnHost}: invalid argument`);
    return found.map((hostPath) => {
      const node = deviceNode(hostPath);
      if (!node) throw new ContainerError(`${hostPath} is not a valid device: not a device node`);
      const path = isDir ? posix.join(m.pathInContainer, posix.relative(m.pathOnHost, hostPath)) : m.pathInContainer;
      return { node: { ...node, path }, hostPath, access: m.permissions };
    });
  });
}

/** Device nodes anywhere under `dir`; symbolic links are not followed (as Go's filepath.Walk). */
function nodesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    const st = lstatSync(p);
    if (st.isDirectory()) out.push(...nodesUnder(p));
    else if (st.isCharacterDevice() || st.isBlockDevice()) out.push(p);
  }
  return out;
}
