import { readdir, rm } from 'node:fs/promises';
import { arch, cpus, hostname, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { closeStore, driverReason, openStore, print, humanSize, isRootless, type GlobalOptions } from '../context.ts';
import { findRuntime } from '../../runtime/oci-runtime.ts';
import { hostArch } from '../../primitives/builder.ts';
import { exec } from '../../sys/exec.ts';
import { inBargeUserns, readIdMap, usernsMode } from '../../sys/userns.ts';
import { stopPause } from '../../sys/pause.ts';
import { VERSION } from '../version.ts';

type Opts = Record<string, unknown>;

export async function versionCmd(_g: GlobalOptions, _args: string[], o: Opts): Promise<void> {
  const v = { Version: VERSION, GoVersion: `node ${process.version}`, BuiltTime: '', OsArch: `linux/${hostArch()}` };
  if (o.json) print(JSON.stringify(v, null, 4));
  else print(`Version:         ${v.Version}\nNode Version:    ${process.version}\nOS/Arch:         ${v.OsArch}`);
}

export async function infoCmd(g: GlobalOptions, _args: string[], o: Opts): Promise<void> {
  const store = await openStore(g);
  let runtime: { name: string; path: string; version: string } | { error: string };
  try {
    const r = findRuntime(g.runtime);
    const v = (await exec(r.path, ['--version'], { check: false })).stdout.split('\n')[0] ?? '';
    runtime = { ...r, version: v };
  } catch (e) {
    runtime = { error: (e as Error).message };
  }
  const info = {
    host: {
      arch: hostArch(), cpus: cpus().length, hostname: hostname(), kernel: release(), os: 'linux', memTotal: totalmem(),
      rootless: isRootless(), ociRuntime: runtime, nodeArch: arch(),
      ...((isRootless() || inBargeUserns()) && { idMappings: { uidmap: readIdMap('uid'), gidmap: readIdMap('gid'), mode: usernsMode() } }),
    },
    store: {
      graphRoot: store.root, runRoot: store.runroot, graphDriverName: store.driver,
      graphDriverReason: driverReason(),
      ...(store.overlayMountProgram && { graphOptions: { 'overlay.mount_program': { Executable: store.overlayMountProgram } } }),
      imageStore: { number: store.listImages().length },
      containerStore: { number: store.listContainers().length },
    },
    version: { Version: VERSION, Node: process.version },
  };
  const format = typeof o.format === 'string' ? o.format : undefined;
  if (format && format !== 'json') {
    const [{ parseTemplate }, { writeBuildahTemplateOutput }] = await Promise.all([import('../gotemplate.ts'), import('../table.ts')]);
    writeBuildahTemplateOutput(parseTemplate(format, undefined, { name: 'info' }).execute(info));
  }
  else print(JSON.stringify(info, null, 4));
}

export async function checkCmd(g: GlobalOptions, _args: string[], o: Opts): Promise<number> {
  const store = await openStore(g);
  const { leaseIssues } = await import('../../containers/lifecycle.ts');
  const issues = [...(await store.check()), ...leaseIssues(store)];
  if (!issues.length) {
    print('No problems found');
    return 0;
  }
  for (const i of issues) print(`${i.what}${o.repair ? ` — ${i.repair}` : ''}`);
  if (!o.repair) {
    print(`${issues.length} problem(s) found; run "barge system check --repair" to fix them`);
    return 1;
  }
  for (const i of issues) await i.fix();
  await store.collectGarbage();
  const left = [...(await store.check()), ...leaseIssues(store)];
  print(left.length ? `${left.length} problem(s) remain` : 'Repaired');
  return left.length ? 1 : 0;
}

export async function dfCmd(g: GlobalOptions, _args: string[], o: Opts): Promise<void> {
  const store = await openStore(g);
  const images = store.listImages();
  const containers = store.listContainers();
  const used = new Set(containers.map((c) => c.imageId));
  const layerBytes = store.db.get<{ s: number | null }>('SELECT SUM(diff_size) AS s FROM layers')?.s ?? 0;
  const imgUnused = images.filter((i) => !used.has(i.id));
  const ctrBytes = await Promise.all(containers.map((c) => duBytes(store.upperDir(c))));
  const rows = [
    { Type: 'Images', Total: images.length, Active: images.length - imgUnused.length, Size: humanSize(layerBytes), Reclaimable: humanSize(imgUnused.reduce((s, i) => s + i.size, 0)) },
    { Type: 'Containers', Total: containers.length, Active: containers.filter((c) => store.isMounted(c)).length, Size: humanSize(ctrBytes.reduce((a, b) => a + b, 0)), Reclaimable: '0 B' },
    { Type: 'Local Volumes', Total: 0, Active: 0, Size: '0 B', Reclaimable: '0 B' },
  ];
  const format = typeof o.format === 'string' ? o.format : undefined;
  const { formatRows } = await import('../table.ts');
  process.stdout.write(formatRows(rows, {
    ...(format !== undefined && { format }),
    defaultTable: 'table {{.Type}}\t{{.Total}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}',
  }));
}

async function duBytes(dir: string): Promise<number> {
  const r = await exec('du', ['-sb', dir], { check: false });
  return Number(r.stdout.split('\t')[0]) || 0;
}

export async function pruneCmd(g: GlobalOptions, _args: string[], o: Opts): Promise<void> {
  const store = await openStore(g);
  const used = new Set(store.listContainers().map((c) => c.imageId));
  let removed = 0;
  for (const img of store.listImages()) {
    if (used.has(img.id)) continue;
    if (o.all || img.names.length === 0) {
      await store.deleteImage(img.id);
      removed++;
    }
  }
  const gc = await store.collectGarbage();
  for (const i of (await store.check()).filter((i) => i.what.startsWith('leftover temporary'))) await i.fix();
  print(`Deleted ${removed} image(s), ${gc.layers} layer(s)`);
}

export async function resetCmd(g: GlobalOptions, _args: string[], o: Opts): Promise<void> {
  if (!o.force && process.stdin.isTTY) {
    process.stderr.write('WARNING! This will remove all images, containers and layers. Use --force to confirm.\n');
    return;
  }
  const store = await openStore(g);
  for (const c of store.listContainers()) await store.deleteContainer(c);
  for (const img of store.listImages()) await store.deleteImage(img.id);
  await store.collectGarbage();
  const root = store.root;
  // Through the CLI's handle, which main() would otherwise close a second time.
  closeStore();
  for (const d of await readdir(root)) await rm(join(root, d), { recursive: true, force: true });
  // As Podman's reset: rootless, the namespaces go too.
  stopOwnPause();
}

/** `system migrate`: the rootless namespaces are made again by the next command (new id ranges take effect). */
export async function migrateCmd(): Promise<void> {
  stopOwnPause();
}

function stopOwnPause(): void {
  const rt = process.env.XDG_RUNTIME_DIR;
  if (rt && inBargeUserns()) stopPause(rt);
}

export async function completionCmd(_g: GlobalOptions, args: string[]): Promise<void> {
  const shell = args[0];
  // From the real command tree, so completions never drift from the commands barge has.
  const { buildProgram } = await import('../program.ts');
  const program = buildProgram();
  const COMMANDS = program.commands.flatMap((c) => [c.name(), ...c.aliases()]).sort();
  const words = COMMANDS.join(' ');
  // Groups (container, image, system, …) complete their subcommands as the second word.
  const groups = program.commands
    .filter((c) => c.commands.length > 0)
    .map((c) => `    ${c.name()}) COMPREPLY=( $(compgen -W "${c.commands.flatMap((s) => [s.name(), ...s.aliases()]).sort().join(' ')}" -- "$cur") ) ;;`);
  if (shell === 'bash') {
    print(`# barge bash completion
_barge() {
  local cur=\${COMP_WORDS[COMP_CWORD]}
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=( $(compgen -W "${words}" -- "$cur") )
    return
  fi
  if [ "$COMP_CWORD" -eq 2 ]; then
    case "\${COMP_WORDS[1]}" in
${groups.join('\n')}
    esac
    [ \${#COMPREPLY[@]} -gt 0 ] && return
  fi
  case "\${COMP_WORDS[1]}" in
    run|mount|umount|rm|config|commit|copy|add) COMPREPLY=( $(compgen -W "$(barge containers -q --notruncate 2>/dev/null; barge containers --format '{{.ContainerName}}' 2>/dev/null)" -- "$cur") ) ;;
    rmi|tag|history|inspect|push|save|from) COMPREPLY=( $(compgen -W "$(barge images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null)" -- "$cur") ) ;;
    completion) COMPREPLY=( $(compgen -W "bash zsh fish" -- "$cur") ) ;;
    *) COMPREPLY=( $(compgen -f -- "$cur") ) ;;
  esac
}
complete -F _barge barge`);
  } else if (shell === 'zsh') {
    print(`#compdef barge
_barge() {
  local -a cmds
  cmds=(${COMMANDS.map((c) => `'${c}'`).join(' ')})
  if (( CURRENT == 2 )); then _describe 'command' cmds; else _files; fi
}
compdef _barge barge`);
  } else if (shell === 'fish') {
    print(COMMANDS.map((c) => `complete -c barge -n '__fish_use_subcommand' -a ${c}`).join('\n'));
  } else {
    throw new Error(`unsupported shell "${shell ?? ''}" (bash, zsh, fish)`);
  }
}
