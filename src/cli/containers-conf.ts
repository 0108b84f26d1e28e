import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseConfToml } from '../sys/conf-toml.ts';

/** The containers.conf settings barge honours. */
export interface ContainersConf {
  runtime?: string;
  defaultUlimits?: string[];
  defaultCapabilities?: string[];
  /** [containers] init_path: the init that --init runs. */
  initPath?: string;
  /** [containers] pids_limit (0: none). */
  pidsLimit?: number;
  /** [containers] netns: the network of a container without --network (bridge, private, host, none, slirp4netns). */
  netns?: string;
}

/**
 * containers.conf as Podman reads it: the system files, then drop-ins, then the user's file;
 * later files override earlier keys. CONTAINERS_CONF replaces them all.
 */
export function loadContainersConf(): ContainersConf {
  const files: string[] = [];
  if (process.env.CONTAINERS_CONF) files.push(process.env.CONTAINERS_CONF);
  else {
    for (const base of ['/usr/share/containers/containers.conf', '/etc/containers/containers.conf']) {
      files.push(base);
      const dropins = `${base}.d`;
      if (existsSync(dropins)) for (const f of readdirSync(dropins).filter((n) => n.endsWith('.conf')).sort()) files.push(join(dropins, f));
    }
    const cfgHome = process.env.XDG_CONFIG_HOME || join(homedir(), '.config');
    files.push(join(cfgHome, 'containers', 'containers.conf'));
  }
  const out: ContainersConf = {};
  for (const f of files) {
    if (!existsSync(f)) continue;
    let doc: Record<string, unknown>;
    try {
      doc = parseConfToml(readFileSync(f, 'utf8'));
    } catch (e) {
      throw new Error(`${f}: ${(e as Error).message}`);
    }
    const engine = (doc.engine ?? {}) as Record<string, unknown>;
    const containers = (doc.containers ?? {}) as Record<string, unknown>;
    if (typeof engine.runtime === 'string' && engine.runtime) out.runtime = engine.runtime;
    if (Array.isArray(containers.default_ulimits)) out.defaultUlimits = containers.default_ulimits.map(String);
    if (Array.isArray(containers.default_capabilities)) out.defaultCapabilities = containers.default_capabilities.map(String);
    if (typeof containers.init_path === 'string' && containers.init_path) out.initPath = containers.init_path;
    if (typeof containers.pids_limit === 'number') out.pidsLimit = containers.pids_limit;
    if (typeof containers.netns === 'string' && containers.netns) out.netns = containers.netns;
  }
  return out;
}
