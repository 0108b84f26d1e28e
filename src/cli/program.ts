import { Command, InvalidArgumentError, Option } from 'commander';
import type { GlobalOptions } from './context.ts';
import { VERSION } from './version.ts';

// Only the command tree is built eagerly; each action loads its module on demand so a
// command pays start-up cost only for the code it runs.


const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

/** How a command reaches a registry: the options Podman's pulling and pushing commands share. */
function registryAccess(c: Command): Command {
  return c
    .option('--tls-verify [bool]', 'require HTTPS and verify certificates (default: as registries.conf says)')
    .option('--creds <user[:password]>', 'registry credentials')
    .option('--authfile <file>', 'auth.json with registry credentials')
    .option('--cert-dir <dir>', 'certificates (*.crt, *.cert, *.key) for the registry');
}

/** Podman's and Buildah's retries of registry requests (Skopeo's are --retry-times). */
function retryOptions(c: Command): Command {
  return c
    .option('--retry <n>', 'times to retry a failed registry request (default 3)')
    .option('--retry-delay <duration>', 'wait before the first retry, doubled for each next one (e.g. 2s)');
}

/**
 * Options of Buildah or Podman that barge does not implement: the parser knows them, so a script
 * using one gets the reason and exit 125 rather than "unknown option".
 */
function refusedOptions(c: Command, reason: string, ...flags: string[]): Command {
  const options = flags.map((f) => new Option(f, `not supported: ${reason}`).hideHelp());
  for (const opt of options) c.addOption(opt);
  return c.hook('preAction', (cmd) => {
    const given = options.find((opt) => cmd.getOptionValue(opt.attributeName()) !== undefined);
    if (given) throw new Error(`${given.long}: ${reason}`);
  });
}

/** What run and create cannot do: named, so that a script gets the reason and 125. */
function podmanCreateRefusals(c: Command): Command {
  refusedOptions(c, "barge's bridge networks are IPv4 only", '--ip6 <address>');
  refusedOptions(c, 'barge starts no other containers first', '--requires <containers>');
  refusedOptions(c, 'barge runs containers from images only', '--rootfs');
  return refusedOptions(c, 'barge does not chroot processes inside the container', '--chrootdirs <dir>');
}

/** Skopeo's registry commands add credentials spelt apart, anonymous access, a bearer token and retries. */
function registryOptions(c: Command): Command {
  return registryAccess(c)
    .option('--username <user>', 'username for the registry')
    .option('--password <password>', 'password for the registry')
    .option('--no-creds', 'access the registry anonymously')
    .option('--registry-token <token>', 'bearer token for the registry')
    .option('--retry-times <n>', 'retries for transient registry failures');
}

/**
 * Skopeo's global flags. Cobra lets them come before the subcommand or after it, so `skopeo` and
 * each of its subcommands take them; a preAction hook of `skopeo` hands the group's values down.
 * Subcommands that choose among platforms anyway already have the --override-* flags.
 */
function skopeoGlobalOptions(c: Command, platform: boolean): Command {
  c.option('--insecure-policy', 'run without any policy check (as skopeo: policy.json is not read)')
    .option('--policy <file>', 'trust policy file (policy.json) to consult')
    .option('--debug', 'enable debug output (stack traces of failures)')
    .option('--tmpdir <dir>', 'directory for temporary files')
    .option('--command-timeout <duration>', 'give up after this long (a Go duration: 30s, 5m)')
    .option('--registries.d <dir>', 'directory of registries.d YAML files naming signature storage (lookaside)');
  return platform ? platformOverrides(c) : c;
}

/** Skopeo's choice of one image from a multi-platform one. */
function platformOverrides(c: Command): Command {
  return c
    .option('--override-os <os>', 'OS to choose from a multi-platform image')
    .option('--override-arch <arch>', 'architecture to choose from a multi-platform image')
    .option('--override-variant <variant>', 'variant to choose from a multi-platform image');
}

/** What Skopeo's copy and sync take for image copies: each side's registry access, lists of images, compression, platform choice. */
function imageCopyOptions(c: Command): Command {
  return platformOverrides(c)
    .option('--src-tls-verify [bool]', 'require HTTPS and verify certificates of the source registry')
    .option('--dest-tls-verify [bool]', 'require HTTPS and verify certificates of the destination registry')
    .option('--src-creds <user[:password]>', 'credentials for the source registry')
    .option('--dest-creds <user[:password]>', 'credentials for the destination registry')
    .option('--src-username <user>', 'username for the source registry')
    .option('--src-password <password>', 'password for the source registry')
    .option('--dest-username <user>', 'username for the destination registry')
    .option('--dest-password <password>', 'password for the destination registry')
    .option('--src-no-creds', 'access the source registry anonymously')
    .option('--dest-no-creds', 'access the destination registry anonymously')
    .option('--src-registry-token <token>', 'bearer token for the source registry')
    .option('--dest-registry-token <token>', 'bearer token for the destination registry')
    .option('--src-cert-dir <dir>', 'certificates (*.crt, *.cert, *.key) for the source registry')
    .option('--dest-cert-dir <dir>', 'certificates (*.crt, *.cert, *.key) for the destination registry')
    .option('--authfile <file>', 'auth.json with registry credentials')
    .option('--src-authfile <file>', 'auth.json for the source registry')
    .option('--dest-authfile <file>', 'auth.json for the destination registry')
    .option('--retry-times <n>', 'retries for transient registry failures')
    .addOption(new Option('--multi-arch <mode>', 'for a list of images: copy the system\'s image or all of them').choices(['system', 'all']))
    .option('--dest-compress', 'compress layers that arrive uncompressed')
    .addOption(new Option('--dest-compress-format <format>', 'compression of the layers written').choices(['gzip', 'zstd']))
    .option('--preserve-digests', 'fail rather than change a manifest (and so its digest)')
    .option('--remove-signatures', 'do not copy the source\'s signatures')
    .option('--sign-by <fingerprint>', 'add a simple-signing (GPG) signature with this key')
    .option('--sign-passphrase-file <file>', 'read the signing key\'s passphrase from the first line of this file');
}

/** Buildah's user namespace options of from and build (Podman's run spells the maps --uidmap/--gidmap). */
function buildahUsernsOptions(c: Command): Command {
  return c
    .option('--userns <how>', 'user namespace for run: host, container (a new one), keep-id, nomap, or a namespace path')
    .option('--userns-uid-map <mapping>', 'CONTAINER:HOST:SIZE uid map for a new user namespace (HOST ids are barge\'s own when rootless)', collect)
    .option('--userns-gid-map <mapping>', 'CONTAINER:HOST:SIZE gid map (default: the uid map)', collect)
    .option('--userns-uid-map-user <user>', 'take the uid map from this user\'s /etc/subuid ranges')
    .option('--userns-gid-map-group <group>', 'take the gid map from this group\'s /etc/subgid ranges');
}

type KubeModule = () => Promise<typeof import('./commands/kube.ts')>;

/** `kube play` and its older spelling `play kube`. */
function kubePlayCommand(c: Command, kube: KubeModule): void {
  c.description('Create pods, containers and volumes from Kubernetes YAML (Pod, Deployment, PersistentVolumeClaim, ConfigMap) and start them')
    .argument('<file>', 'the YAML file, or - for standard input')
    .option('--replace', 'first stop and remove the pods of the same names that a previous play made')
    .option('--start [bool]', 'start the pods (default true; --start=false only creates them)')
    .option('--network <mode>', 'the pods\' network (default: slirp4netns rootless, the podman-default-kube-network bridge as root)')
    .option('--net <mode>', 'alias for --network')
    .option('-p, --publish <port>', 'publish another port of every pod', collect)
    .option('--build [bool]', 'build images from directories beside the YAML (barge does not: only --build=false is accepted)')
    .option('-q, --quiet', 'do not print pull progress')
    .action(action(async () => (await kube()).kubePlayCmd));
  registryAccess(c);
  refusedOptions(c, 'not supported yet for kube play',
    '--annotation <annotation>', '--configmap <path>', '--context-dir <dir>', '--ip <ip>', '--mac-address <mac>', '--log-driver <driver>',
    '--log-opt <opt>', '--seccomp-profile-root <path>', '--userns <mode>', '--down');
}

/** `generate kube` and its newer spelling `kube generate`. */
function kubeGenerateCommand(c: Command, kube: KubeModule): void {
  c.description('Generate Kubernetes YAML (a Pod, and with -s a Service) for containers or pods')
    .argument('<names...>', 'containers or pods')
    .option('-s, --service', 'also generate a Service of NodePorts for the published ports')
    .option('-f, --filename <file>', 'write the YAML to this file instead of standard output')
    .action(action(async () => (await kube()).generateKubeCmd));
}

type Action = (g: GlobalOptions, args: string[], opts: Record<string, unknown>) => Promise<number | void>;

function action(load: () => Promise<Action>) {
  return async (...params: unknown[]): Promise<void> => {
    const cmd = params[params.length - 1] as Command;
    const opts = params[params.length - 2] as Record<string, unknown>;
    const g = cmd.optsWithGlobals() as GlobalOptions;
    const code = await (await load())(g, cmd.args, opts);
    if (typeof code === 'number') process.exitCode = code;
  };
}

/** Stands in for every command but the invoked one: each chained call returns it again. */
const absent: Command = new Proxy(function absentCommand() {}, { get: () => () => absent }) as unknown as Command;

/**
 * The command tree. With `only`, the top-level commands of another name are not built (commander
 * spends a sizeable part of a short command's start-up on the ~500 options of the others); the
 * caller must fall back to the whole tree when no command answers to `only` (an alias).
 */
export function buildProgram(only?: string): Command {
  const program = new Command('barge')
    .description('A daemonless, rootless tool for building, running and moving OCI container images')
    .version(`barge version ${VERSION}`, '-v, --version', 'print the version')
    .option('--root <dir>', 'storage root directory (default: /var/lib/barge, or ~/.local/share/barge rootless)')
    .option('--runroot <dir>', 'storage state directory (default: /run/barge)')
    .addOption(new Option('--storage-driver <driver>', 'storage driver').choices(['overlay', 'vfs']))
    .addOption(new Option('--log-level <level>', 'log messages at and above this level').choices(['debug', 'info', 'warn', 'error']).default('warn'))
    .option('--runtime <path>', 'OCI runtime to use (crun or runc, by name or path)')
    .showHelpAfterError(false)
    // Global options only before the command, so `run -v` is --volume, not --version.
    .enablePositionalOptions()
    .configureHelp({ sortSubcommands: true });
  if (only !== undefined) {
    const real = program.command.bind(program) as (nameAndArgs: string) => Command;
    program.command = ((nameAndArgs: string) => (nameAndArgs.split(' ')[0] === only ? real(nameAndArgs) : absent)) as typeof program.command;
  }

  const w = (): Promise<typeof import('./commands/working.ts')> => import('./commands/working.ts');
  const im = (): Promise<typeof import('./commands/images.ts')> => import('./commands/images.ts');
  const tr = (): Promise<typeof import('./commands/transfer.ts')> => import('./commands/transfer.ts');
  const sys = (): Promise<typeof import('./commands/system.ts')> => import('./commands/system.ts');

  const fromCmd = buildahRunOptions(buildahUsernsOptions(
    registryAccess(
      program
        .command('from')
        .description('Create a working container based on an image')
        .argument('<image>', 'image name or id, or "scratch"')
        .option('--name <name>', 'name for the working container')
        .addOption(new Option('--pull <policy>', 'pull policy').choices(['always', 'missing', 'never', 'newer', 'true', 'false']).default('missing'))
        .option('-q, --quiet', 'do not print progress')
        .addOption(new Option('--isolation <type>', 'process isolation for run').choices(['oci', 'chroot', 'rootless']).env('BUILDAH_ISOLATION'))
        .option('--platform <os/arch[/variant]>', 'use the image for this platform (pulled if the local one is of another)')
        .option('--arch <arch>', 'architecture of the image to use (default: the host\'s)')
        .option('--os <os>', 'OS of the image to use (default: linux)')
        .option('--variant <variant>', 'architecture variant of the image to use'),
    ),
  ), 'from').action(action(async () => (await w()).fromCmd));
  retryOptions(fromCmd);

  // "copy SRC DST" with transport names is Skopeo's copy, not Buildah's: it goes straight to the
  // transfer code, without loading the working-container code and the store it needs.
  const imageCopy = /^(oci|oci-archive|docker-archive|dir|docker|containers-storage):/;
  const copyDispatch: Action = async (g, args, o) =>
    (args.length === 2 && imageCopy.test(args[0]!) && imageCopy.test(args[1]!) ? (await tr()).skopeoCopyCmd : (await w()).copyCmd)(g, args, o);
  for (const name of ['copy', 'add'] as const) {
    const cmd = program
      .command(name)
      .description(
        name === 'copy'
          ? 'Copy content into a working container (or, with transport names, copy an image as skopeo copy does)'
          : 'Add content into a working container; local archives are extracted and URLs fetched',
      )
      .argument('<container>', 'working container name or id')
      .argument('[src...]', 'sources, then the destination')
      .option('--chown <user:group>', 'owner of the copied content')
      .option('--chmod <mode>', 'permission bits of the copied content')
      .option('--from <image|container>', 'copy from this image or container instead of the host')
      .option('--contextdir <dir>', 'confine sources to this directory (its .containerignore applies)')
      .option('--ignorefile <file>', 'ignore file to use instead of the context\'s .containerignore (needs --contextdir)')
      .option('--add-history', 'add a history entry for this copy to the committed image (default: $BUILDAH_HISTORY)')
      .addOption(new Option('--no-add-history', 'add no history entry').hideHelp())
      .option('-q, --quiet', 'do not print the digest of the copied content')
      // The short forms are skopeo copy's, for `copy TRANSPORT:SRC TRANSPORT:DEST`; Buildah's copy has none.
      .option(`${name === 'copy' ? '-f, ' : ''}--format <format>`, 'manifest format for image copies (oci, v2s2)')
      .option(`${name === 'copy' ? '-a, ' : ''}--all`, 'copy all images of a list (image copies)')
      .option('--signature-policy <file>', 'policy.json to consult (image copies)')
      .option('--digestfile <file>', 'write the manifest digest to this file (image copies)');
    if (name === 'copy') imageCopyOptions(cmd);
    cmd.action(action(async () => (name === 'copy' ? copyDispatch : (await w()).addCmd)));
  }

  const ctr = (): Promise<typeof import('./commands/containers.ts')> => import('./commands/containers.ts');
  /**
   * The run options of Buildah's from (kept with the working container for its runs) and build
   * (for every RUN); build has its own --network, -v and --format already.
   */
  function buildahRunOptions(c: Command, kind: 'from' | 'build'): Command {
    c.option('--add-host <host:ip>', 'add a custom host-to-IP mapping (host:ip) to /etc/hosts', collect)
      .option('--cap-add <cap>', 'add the specified capability when running', collect)
      .option('--cap-drop <cap>', 'drop the specified capability when running', collect)
      .option('--cgroup-parent <path>', 'optional parent cgroup for the container')
      .option('--cgroupns <how>', "'private', or 'host'")
      .option('--cpu-period <us>', 'limit the CPU CFS (Completely Fair Scheduler) period')
      .option('--cpu-quota <us>', 'limit the CPU CFS (Completely Fair Scheduler) quota')
      .option('-c, --cpu-shares <n>', 'CPU shares (relative weight)')
      .option('--cpuset-cpus <cpus>', 'CPUs in which to allow execution (0-3, 0,1)')
      .option('--cpuset-mems <mems>', 'memory nodes (MEMs) in which to allow execution (0-3, 0,1)')
      .option('--decryption-key <key>', 'key needed to decrypt the image (refused: barge cannot decrypt images)', collect)
      .option('--device <device>', 'additional devices to be used within containers: HOST[:CONTAINER][:PERMISSIONS]', collect)
      .option('--dns <ip>', "set custom DNS servers, or 'none' to keep the image's /etc/resolv.conf", collect)
      .option('--dns-option <option>', 'set custom DNS options', collect)
      .option('--dns-search <domain>', 'set custom DNS search domains', collect)
      .option('--http-proxy [bool]', 'pass through HTTP Proxy environment variables (default true)')
      .option('--ipc <how>', "'private', ns:PATH of an IPC namespace to join, or 'host'")
      .option('-m, --memory <size>', 'memory limit (format: <number>[<unit>], where unit = b, k, m or g)')
      .option('--memory-swap <size>', "swap limit equal to memory plus swap: '-1' to enable unlimited swap")
      .option('--pid <how>', "'private', ns:PATH of a PID namespace to join, or 'host'")
      .option('--security-opt <opt>', 'no-new-privileges, seccomp=unconfined, label=disable, apparmor=unconfined', collect)
      .option('--shm-size <size>', "size of '/dev/shm' (<number><unit>, default 65536k)")
      .option('--ulimit <type=soft[:hard]>', 'ulimit options (never above barge\'s own hard limit)', collect)
      .option('--uts <how>', "'private', ns:PATH of a UTS namespace to join, or 'host'");
    if (kind === 'build') {
      return c.option('--no-hosts', 'do not create new /etc/hosts files for RUN instructions, use the one from the base image')
        .option('--runtime-flag <flag>', 'add global flags for the container runtime', collect);
    }
    return c.option('--network <mode>', "'private', 'none', 'ns:PATH' of a network namespace to join, or 'host'")
      .option('-v, --volume <vol>', 'bind mount HOST:CONTAINER[:OPTIONS] into every run', collect)
      .addOption(new Option('-f, --format <format>', 'format of the image manifest and metadata').choices(['oci', 'docker']))
      .option('--cidfile <file>', 'write the container ID to the file');
  }
  // The options of Podman's create and run; Buildah's run takes the first ten of them too.
  const podmanCreateOptions = (c: Command): Command =>
    c
      .option('-u, --user <user[:group]>', 'user to run as')
      .option('-e, --env <env>', 'environment variable KEY=VALUE', collect)
      .option('-v, --volume <vol>', 'bind mount HOST:CONTAINER[:OPTIONS], or a volume NAME:CONTAINER[:OPTIONS] or CONTAINER (anonymous)', collect)
      .option('--mount <mount>', 'mount type=bind|tmpfs|volume,...', collect)
      .option('--network <mode>', "network: 'private' (loopback only; the default without -p), 'none', 'host', 'slirp4netns[:OPTIONS]', or as root 'bridge' or NAME[,NAME...] of bridge networks", (v: string) => {
        if (!/^(host|none|private|slirp4netns(:.*)?|[a-zA-Z0-9][a-zA-Z0-9_.-]*(,[a-zA-Z0-9][a-zA-Z0-9_.-]*)*)$/.test(v)) {
          throw new InvalidArgumentError('Allowed choices are host, none, private, slirp4netns[:OPTIONS], bridge and NAME[,NAME...] of bridge networks.');
        }
        return v;
      })
      .option('--ip <address>', 'the IPv4 address of the container on its (one) bridge network')
      .option('--mac-address <address>', 'the MAC address of the container on its (one) bridge network')
      .option('--network-alias <alias>', 'another name of the container in the DNS of its (one) bridge network', collect)
      .option('-p, --publish <port>', "publish a container's port to the host: [[ip:][hostPort]:]containerPort[/tcp|udp]", collect)
      .option('-P, --publish-all', 'publish every exposed port to a free host port')
      .option('--net <mode>', 'alias for --network')
      .option('--cap-add <cap>', 'add a capability', collect)
      .option('--cap-drop <cap>', 'drop a capability', collect)
      .option('-t, --tty', 'allocate a pseudo-terminal')
      .option('--hostname <name>', 'hostname inside the container')
      .option('--name <name>', 'name of the container (Podman-style run)')
      .option('-i, --interactive', 'keep stdin open')
      .option('--rm', 'remove the container when it exits')
      .option('--env-file <file>', 'read environment variables from a file', collect)
      .option('-w, --workdir <dir>', 'working directory inside the container')
      .option('--entrypoint <cmd>', 'override the image entrypoint (JSON array or command; "" clears it)')
      .option('--tmpfs <dir[:options]>', 'mount a tmpfs', collect)
      .option('--read-only', 'mount the root filesystem read-only')
      .option('--read-only-tmpfs <bool>', 'with --read-only, tmpfs on /run, /tmp and /var/tmp (default true)')
      .option('-l, --label <label>', 'container label KEY=VALUE', collect)
      .option('--stop-signal <signal>', 'signal that stops the container')
      .option('--stop-timeout <seconds>', 'seconds before stop resorts to SIGKILL')
      .option('--log-driver <driver>', 'k8s-file, json-file or none')
      .option('--pids-limit <n>', 'cgroup pids limit')
      .option('-m, --memory <bytes>', 'memory limit (e.g. 512m)')
      .option('--cpus <n>', 'number of CPUs')
      .option('--ulimit <type=soft[:hard]>', 'resource limit (never above barge\'s own hard limit)', collect)
      .option('--security-opt <opt>', 'no-new-privileges, seccomp=unconfined, label=disable', collect)
      .option('--privileged', 'every capability, no seccomp filter, /proc and /sys unmasked, the host\'s devices')
      .option('--restart <policy>', 'no, on-failure[:N], always, unless-stopped')
      .option('--cidfile <file>', 'write the container id to this file (which must not exist)')
      .option('--replace', 'remove an existing container of the same --name first')
      .option('--conmon-pidfile <file>', 'where conmon writes its pid (for systemd units)')
      .option('--userns <mode>', 'user namespace: host, private, auto, keep-id[:uid=U,gid=G], nomap, ns:PATH')
      .option('--uidmap <mapping>', 'CONTAINER:HOST:SIZE uid map for a new user namespace', collect)
      .option('--gidmap <mapping>', 'CONTAINER:HOST:SIZE gid map (default: the uid map)', collect)
      .option('--init', 'run an init (catatonit) as pid 1 that forwards signals and reaps zombies')
      .option('--init-path <path>', 'the init binary for --init (default: containers.conf init_path, else catatonit)')
      .option('--add-host <host:ip>', 'add a custom host-to-IP mapping (host:ip) to /etc/hosts', collect)
      .option('--no-hosts', 'do not create /etc/hosts within the container, instead use the version from the image')
      .option('--group-add <group>', "add additional groups to the primary container process (names from the image's /etc/group, or numbers); 'keep-groups' (crun only) keeps barge's own supplementary groups", collect)
      .option('--shm-size <size>', 'size of /dev/shm (format: <number>[<unit>], where unit = b (bytes), k (kibibytes), m (mebibytes), or g (gibibytes)) (default "65536k")')
      .option('--device <device>', 'add a host device to the container: HOST-DEVICE[:CONTAINER-DEVICE][:PERMISSIONS], permissions combining r (read), w (write) and m (mknod)', collect)
      .option('--pull <policy>', 'pull the image: always, missing, never or newer (default missing)')
      .option('--platform <os/arch>', 'platform of the image to pull (conflicts with --arch and --os)')
      .option('--arch <arch>', 'architecture of the image to pull')
      .option('--os <os>', 'OS of the image to pull')
      .option('--variant <variant>', 'architecture variant of the image to pull')
      .option('--tls-verify [bool]', 'require HTTPS and verify certificates when pulling the image')
      .option('--authfile <file>', 'auth.json with registry credentials for the pull')
      .option('-q, --quiet', 'no progress output when pulling the image')
      .option('--disable-content-trust', 'accepted (Docker\'s; a no-op in Podman too)')
      .option('--image-volume <mode>', 'what the image\'s VOLUMEs become: bind (anonymous volumes), tmpfs or ignore (default bind)')
      .option('--unsetenv <name>', 'unset a default environment variable (the image\'s, PATH, TERM, container)', collect)
      .option('--unsetenv-all', 'unset all default environment variables')
      .option('--env-host', 'pass all of barge\'s environment variables into the container')
      .option('--env-merge <env>', 'rewrite a default variable, e.g. PATH=${PATH}:/opt/bin', collect)
      .option('--http-proxy [bool]', 'pass the host\'s proxy variables (http_proxy, no_proxy, ...) in (default true)')
      .option('--label-file <file>', 'read KEY=VALUE labels from a file', collect)
      .option('--annotation <key=value>', 'add an annotation to the container\'s OCI spec', collect)
      .option('--expose <port>', 'record a port or range (PORT[-PORT][/PROTO]) as exposed', collect)
      .option('--tz <timezone>', 'the container\'s /etc/localtime: an IANA zone (Asia/Tokyo) or local')
      .option('--umask <umask>', 'umask of the container\'s process (default 0022)')
      .option('--passwd [bool]', 'add an /etc/passwd entry for a user the image lacks (default true)')
      .option('--passwd-entry <entry>', 'the /etc/passwd line to add ($USERNAME, $UID, $GID, $NAME, $HOME expanded)')
      .option('--hostuser <user>', 'copy the host\'s /etc/passwd entry of this user into the container\'s', collect)
      .option('--sysctl <key=value>', 'namespaced kernel parameter (net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*)', collect)
      .option('--oom-score-adj <n>', 'the container process\'s oom_score_adj (-1000 to 1000)')
      .option('--personality <domain>', 'execution domain: LINUX or LINUX32')
      .option('--pidfile <file>', 'write the container process\'s pid to this file')
      .option('--preserve-fds <n>', 'pass file descriptors 3 to 3+N-1 into the container')
      .option('--rmi', 'remove the image after the container exits (implies --rm), unless another container uses it')
      .option('--timeout <seconds>', 'kill the container after this many seconds (0: no limit)')
      .option('-a, --attach <stream>', 'attach to stdin, stdout or stderr (default: stdout and stderr)', collect)
      .option('--detach-keys <keys>', 'key sequence that detaches (default "ctrl-p,ctrl-q"; "" disables it)')
      .option('--sdnotify <mode>', 'conmon or ignore (barge does not pass the notify socket into the container)')
      .option('--systemd <mode>', 'false, or true (systemd mode only for an init command, which barge refuses)')
      .option('--seccomp-policy <policy>', 'default (barge reads no seccomp profile from images)')
      .option('--secret <secret>', 'a secret as a file (NAME[,type=mount][,target=PATH][,uid=,gid=,mode=]: /run/secrets/NAME by default) or a variable (NAME,type=env[,target=VAR])', collect)
      .option('--health-cmd <command>', 'healthcheck command: a shell command, a JSON array, or none')
      .option('--health-interval <interval>', 'kept for inspect (default 30s); barge starts no timer: checks run on `healthcheck run`')
      .option('--health-retries <n>', 'consecutive failures that make the container unhealthy (default 3)')
      .option('--health-start-period <period>', 'time after the start in which failures do not count (default 0s)')
      .option('--health-timeout <timeout>', 'a check taking longer fails (default 30s)')
      .option('--health-on-failure <action>', 'when unhealthy: none, kill, restart or stop (default none)')
      .option('--no-healthcheck', 'disable the image\'s healthcheck')
      .option('--pod <pod>', 'join this pod (name or id), or new:NAME to create it first')
      .option('--pod-id-file <file>', 'join the pod whose id this file holds');

  podmanCreateRefusals(podmanCreateOptions(
    program
      .command('run')
      .description('Run a command in a new container from an image (Podman), or inside a working container (Buildah)')
      .argument('<container|image>', 'working container name or id (Buildah), else an image (Podman)')
      .argument('[command...]', 'command and arguments')
      // Buildah and Podman both stop parsing their own options at the command: `run C sh -c '…'` needs no `--`.
      .passThroughOptions()
      .option('--workingdir <dir>', 'working directory for the command')
      .addOption(new Option('--isolation <type>', 'process isolation (of a working container\'s run)').choices(['oci', 'chroot', 'rootless']).env('BUILDAH_ISOLATION'))
      .option('--terminal', 'alias for --tty')
      .option('-d, --detach', 'run the container in the background and print its id (Podman-style run)')
      .option('--sig-proxy [bool]', 'forward the signals barge receives to the container (default true)')
      .option('--pid <how>', "PID namespace of a working container's run: 'private', ns:PATH, or 'host'")
      .option('--ipc <how>', "IPC namespace of a working container's run: 'private', ns:PATH, or 'host'")
      .option('--uts <how>', "UTS namespace of a working container's run: 'private', ns:PATH, or 'host'")
      .option('--cgroupns <how>', "cgroup namespace of a working container's run: 'private' or 'host'")
      .option('--no-pivot', 'do not use pivot root to jail the process inside the rootfs (a working container\'s run)')
      .option('--runtime-flag <flag>', 'add global flags for the container runtime (a working container\'s run)', collect)
      .option('--contextdir <dir>', 'context directory: relative --mount sources are found there (a working container\'s run)'),
  )).action(action(async () => (await w()).runCmd));

  podmanCreateRefusals(podmanCreateOptions(
    program
      .command('create')
      .description('Create a container from an image without starting it')
      .argument('<image>')
      .argument('[command...]')
      .passThroughOptions(),
  )).action(action(async () => (await ctr()).createCmd));

  // Podman's container verbs, at top level and in the `container` group.
  const containerVerbs = (parent: Command, group: boolean): void => {
    parent
      .command('init')
      .description('Initialize one or more containers: the runtime creates them, `start` starts them')
      .argument('[containers...]')
      .option('-a, --all', 'initialize all containers')
      .option('-l, --latest', 'act on the latest container')
      .action(action(async () => (await import('./commands/init.ts')).initCmd));
    parent
      .command('start')
      .description('Start one or more containers')
      .argument('[containers...]')
      .option('-a, --attach', 'attach to the container\'s output and wait for it')
      .option('-i, --interactive', 'attach stdin')
      .option('--sig-proxy [bool]', 'with --attach, forward the signals barge receives to the container (default true)')
      .option('--all', 'start all containers')
      .option('-l, --latest', 'act on the latest container')
      .option('--detach-keys <keys>', 'with --attach, the key sequence that detaches (default "ctrl-p,ctrl-q")')
      .option('--filter <filter>', 'act on the containers ps --filter would list', collect)
      .action(action(async () => (await ctr()).startCmd));
    parent
      .command('stop')
      .description('Stop one or more running containers')
      .argument('[containers...]')
      .option('-t, --time <seconds>', 'seconds to wait before SIGKILL')
      .option('-a, --all', 'stop all running containers')
      .option('-l, --latest', 'act on the latest container')
      .option('--cidfile <file>', 'stop the container whose id this file holds', collect)
      .option('-i, --ignore', 'ignore containers that do not exist')
      .option('--filter <filter>', 'act on the containers ps --filter would list', collect)
      .action(action(async () => (await ctr()).stopCmd));
    parent
      .command('restart')
      .description('Restart one or more containers')
      .argument('[containers...]')
      .option('-t, --time <seconds>', 'seconds to wait before SIGKILL')
      .option('-a, --all', 'restart all containers')
      .option('--running', 'with --all, only running containers')
      .option('-l, --latest', 'act on the latest container')
      .option('--cidfile <file>', 'restart the container whose id this file holds', collect)
      .option('--filter <filter>', 'act on the containers ps --filter would list', collect)
      .action(action(async () => (await ctr()).restartCmd));
    parent
      .command('kill')
      .description('Send a signal to one or more running containers')
      .argument('[containers...]')
      .option('-s, --signal <signal>', 'signal to send (default SIGKILL)')
      .option('-a, --all', 'signal all running containers')
      .option('-l, --latest', 'act on the latest container')
      .option('--cidfile <file>', 'signal the container whose id this file holds', collect)
      .option('--filter <filter>', 'act on the containers ps --filter would list', collect)
      .action(action(async () => (await ctr()).killCmd));
    for (const verb of ['pause', 'unpause'] as const) {
      parent
        .command(verb)
        .description(verb === 'pause' ? 'Pause all the processes in one or more containers' : 'Unpause the processes in one or more containers')
        .argument('[containers...]')
        .option('-a, --all', verb === 'pause' ? 'pause all running containers' : 'unpause all paused containers')
        .option('-l, --latest', 'act on the latest container')
        .option('--cidfile <file>', `${verb} the container whose id this file holds`, collect)
        .option('--filter <filter>', 'act on the containers ps --filter would list', collect)
        .action(action(async () => (verb === 'pause' ? (await ctr()).pauseCmd : (await ctr()).unpauseCmd)));
    }
    parent
      .command('attach')
      .description('Attach to a running container\'s input and output')
      .argument('[container]')
      .option('--no-stdin', 'do not attach stdin')
      .option('--sig-proxy [bool]', 'forward the signals barge receives to the container (default true; not with a terminal)')
      .option('--detach-keys <keys>', 'key sequence that detaches (default "ctrl-p,ctrl-q"; "" disables it)')
      .option('-l, --latest', 'act on the latest container')
      .action(action(async () => (await ctr()).attachCmd));
    parent
      .command('port')
      .description('List the port mappings of a container')
      .argument('[container]')
      .argument('[port]', 'PRIVATE_PORT[/PROTO]')
      .option('-a, --all', 'all containers')
      .option('-l, --latest', 'act on the latest container')
      .action(action(async () => (await ctr()).portCmd));
    parent
      .command('wait')
      .description('Wait for containers to exit and print their exit codes')
      .argument('[containers...]')
      .option('-l, --latest', 'act on the latest container')
      .option('--condition <state>', 'wait for this state instead: running, paused, created, stopped or exited (default stopped)', collect)
      .option('-i, --interval <duration>', 'how often to look at a container\'s state (default 250ms)')
      .option('--ignore', 'ignore containers that do not exist')
      .action(action(async () => (await ctr()).waitCmd));
    parent
      .command('logs')
      .description('Print the logs of one or more containers')
      .argument('[containers...]')
      .option('-f, --follow', 'follow the log until the container exits')
      .option('--tail <n>', 'only the last N lines (-1: all)')
      .option('-t, --timestamps', 'show timestamps')
      .option('--since <time>', 'only entries since this time (RFC 3339, Unix seconds or a duration)')
      .option('--until <time>', 'only entries until this time')
      .option('-l, --latest', 'act on the latest container')
      .option('-n, --names', 'prefix each line with the container\'s name')
      .option('--color', 'accepted: barge writes no colours')
      .action(action(async () => (await ctr()).logsCmd));
    parent
      .command('exec')
      .description('Run a process in a running container')
      .argument('[container]', 'container name or id (omitted with --latest)')
      .argument('[command...]', 'command and arguments')
      .passThroughOptions()
      .option('-i, --interactive', 'keep stdin open')
      .option('-t, --tty', 'allocate a pseudo-terminal')
      .option('-d, --detach', 'run the process in the background and print its session id')
      .option('-e, --env <env>', 'environment variable KEY=VALUE (KEY alone: from barge\'s environment)', collect)
      .option('--env-file <file>', 'read environment variables from a file', collect)
      .option('-u, --user <user>', 'user[:group] to run as')
      .option('-w, --workdir <dir>', 'working directory of the process')
      .option('-l, --latest', 'act on the latest container')
      .option('--privileged', 'give the process every capability barge holds')
      .option('--detach-keys <keys>', 'accepted: the key sequence that detaches (barge detaches only with -d)')
      .option('--preserve-fds <n>', 'pass down this many file descriptors beyond stdio (3 and up)')
      .action(action(async () => (await ctr()).execCmd));
    parent
      .command('top')
      .description('Show the processes of a running container (ps descriptors such as user,pid,ppid,pcpu,etime,tty,time,args)')
      .argument('[container]')
      .argument('[descriptors...]')
      .option('-l, --latest', 'act on the latest container')
      .action(action(async () => (await ctr()).topCmd));
    parent
      .command('stats')
      .description('Show the resource use of containers (CPU, memory, network and block IO, pids)')
      .argument('[containers...]')
      .option('-a, --all', 'show all containers, not only running ones')
      .option('--format <template>', 'Go template, "table …" or "json"')
      .option('-i, --interval <seconds>', 'seconds between reports (default 5)')
      .option('-l, --latest', 'act on the latest container')
      .option('--no-reset', 'do not clear the terminal between reports')
      .option('--no-stream', 'print one report and exit')
      .option('--no-trunc', 'do not truncate output')
      .action(action(async () => (await import('./commands/stats.ts')).statsCmd));
    parent
      .command('cp')
      .description('Copy files between a container (CONTAINER:PATH) and the host')
      .argument('<src>')
      .argument('<dest>')
      .option('-a, --archive', 'files copied into a container are owned by its user (the default; --archive=false keeps their ids)')
      .addOption(new Option('--no-archive', 'keep the ids of the files copied into a container').hideHelp())
      .option('--overwrite', 'let a directory replace a non-directory and the other way round')
      .action(action(async () => (await ctr()).cpCmd));
    parent
      .command('diff')
      .description('Show files added (A), changed (C) and deleted (D) in a container')
      .argument('[container]')
      .option('--format <format>', '"json" for Podman\'s JSON')
      .option('-l, --latest', 'act on the latest container')
      .action(action(async () => (await ctr()).diffCmd));
    parent
      .command('export')
      .description('Export a container\'s root filesystem as a tar archive')
      .argument('<container>')
      .option('-o, --output <file>', 'write to this file instead of stdout')
      .action(action(async () => (await ctr()).exportCmd));
    parent
      .command('rename')
      .description('Give a container a new name')
      .argument('<container>')
      .argument('<name>', 'the new name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)')
      .action(action(async () => (await ctr()).renameCmd));
    const ps = parent
      .command(group ? 'ls' : 'ps')
      .description('List containers')
      .option('-a, --all', 'show all containers, not only running ones')
      .option('-q, --quiet', 'print only container ids')
      .option('--format <template>', 'Go template, "table …" or "json"')
      .option('-f, --filter <filter>', 'filter: id=, name=, status=, exited=, label=, ancestor=, since=, before=, until=, volume=, health=, restart-policy=, publish=, expose=, pod=', collect)
      .option('-n, --last <n>', 'the last N created containers (all states)')
      .option('-w, --watch <seconds>', 'print the list again every N seconds until interrupted (not with -q or --format json)')
      .option('-l, --latest', 'the latest created container')
      .option('--no-trunc', 'do not truncate output')
      .option('--noheading', 'omit the table header')
      .option('-s, --size', 'show each container\'s size: its own writes and (virtual) with its image')
      .option('--external', 'also list Buildah\'s working containers (state "storage")')
      .option('-p, --pod', 'show the pod id and name of each container')
      .option('--sort <key>', 'sort by command, created, id, image, names, runningfor or status (default created)')
      .option('--sync', 'accepted: barge reads each container\'s state from its runtime anyway')
      .action(action(async () => (await ctr()).psCmd));
    if (group) ps.alias('ps').alias('list');
  };
  containerVerbs(program, false);

  const containerGroup = program.command('container').description('Manage Podman-style containers');
  containerVerbs(containerGroup, true);
  containerGroup
    .command('rm')
    .alias('remove')
    .description('Remove one or more containers')
    .argument('[containers...]')
    .option('-f, --force', 'stop running containers first')
    .option('-a, --all', 'remove all containers')
    .option('-v, --volumes', 'also remove the anonymous volumes of the containers')
    .option('--cidfile <file>', 'remove the container whose id this file holds', collect)
    .option('-i, --ignore', 'ignore containers that do not exist')
    .option('-l, --latest', 'remove the latest created container')
    .option('-t, --time <seconds>', 'with --force, stop a running container as stop -t does instead of killing it')
    .option('--filter <filter>', 'remove the containers ps --filter would list', collect)
    .option('--depend', 'accepted: no container depends on another (a pod\'s infra container goes only with `pod rm`)')
    .action(action(async () => (await w()).rmCmd));
  containerGroup
    .command('inspect')
    .description('Show the configuration and state of containers (Podman\'s JSON)')
    .argument('[containers...]')
    .option('-f, --format <template>', 'Go template or "json"')
    .option('-l, --latest', 'act on the latest container')
    .action(action(async () => (await ctr()).containerInspectCmd));
  containerGroup
    .command('exists')
    .description('Exit 0 if the container exists, 1 if not')
    .argument('<container>')
    .option('--external', 'also count working containers (Buildah\'s)')
    .action(action(async () => (await ctr()).containerExistsCmd));
  containerGroup
    .command('prune')
    .description('Remove all containers that are not running')
    .option('-f, --force', 'do not ask for confirmation (barge never asks)')
    .action(action(async () => (await ctr()).containerPruneCmd));
  containerGroup
    .command('cleanup')
    .description('Record the exit of containers and release their resources (run by conmon)')
    .argument('[containers...]')
    .option('--rm', 'remove --rm containers')
    .option('-l, --latest', 'act on the latest container')
    .action(action(async () => (await ctr()).cleanupCmd));
  // Checkpoint/restore through CRIU (commands/checkpoint.ts).
  const ckpt = (): Promise<typeof import('./commands/checkpoint.ts')> => import('./commands/checkpoint.ts');
  containerGroup
    .command('checkpoint')
    .description('Checkpoint one or more running containers (CRIU)')
    .argument('[containers...]')
    .option('-a, --all', 'checkpoint all running containers')
    .option('-l, --latest', 'act on the latest container')
    .option('-k, --keep', 'keep CRIU\'s log and statistics files')
    .option('-R, --leave-running', 'leave the container running after the checkpoint')
    .option('--tcp-established', 'checkpoint established TCP connections')
    .option('-e, --export <file>', 'write the checkpoint to a tar archive (Podman\'s format)')
    .addOption(new Option('-c, --compress <algorithm>', 'compression of the exported archive').choices(['gzip', 'zstd', 'none']).default('zstd'))
    .option('--ignore-rootfs', 'leave the root filesystem\'s changes out of the export')
    .option('--create-image <image>', 'store the checkpoint as a checkpoint image (Podman\'s format)')
    .action(action(async () => (await ckpt()).checkpointCmd));
  containerGroup
    .command('restore')
    .description('Restore checkpointed containers, or new ones from a checkpoint archive or image')
    .argument('[containers...]', 'containers, or checkpoint images')
    .option('-a, --all', 'restore all checkpointed containers')
    .option('-l, --latest', 'act on the latest container')
    .option('-k, --keep', 'keep the checkpoint and CRIU\'s log and statistics files')
    .option('--tcp-established', 'restore established TCP connections')
    .option('-i, --import <file>', 'restore a new container from a checkpoint archive')
    .option('-n, --name <name>', 'name of the container restored from an archive or image (it gets a new id)')
    .option('--import-previous <file>', 'a pre-checkpoint archive to restore on top of (with --import)')
    .option('--ignore-rootfs', 'do not apply the root filesystem\'s changes from the archive')
    .action(action(async () => (await ckpt()).restoreCmd));
  containerGroup
    .command('migrate')
    .description('Move a running container to another store or host: checkpoint, copy, restore, then remove it here')
    .argument('<container>')
    .argument('<destination>', 'the root directory of another store, or ssh://[USER@]HOST[:PORT][/STORE-ROOT]')
    .option('--dest-runroot <dir>', 'runroot of the destination store, also on an ssh host (default: barge\'s default runroot there)')
    .option('-k, --keep', 'keep CRIU\'s log and statistics files on the destination')
    .option('--tcp-established', 'migrate established TCP connections')
    .action(action(async () => (await ckpt()).migrateCmd));

  const kube = (): Promise<typeof import('./commands/kube.ts')> => import('./commands/kube.ts');
  const generateGroup = program.command('generate').description('Generate structured data for containers');
  kubeGenerateCommand(generateGroup.command('kube'), kube);
  generateGroup
    .command('systemd')
    .description('Generate a systemd unit that starts a container (Podman\'s form)')
    .argument('<container>')
    .option('--new', 'create a new container at each start and remove it at stop')
    .option('-n, --name', 'name the unit and its commands after the container\'s name, not its id')
    .option('-f, --files', 'write the unit to ./PREFIX-NAME.service and print its path')
    .option('--restart-policy <policy>', 'systemd Restart= (no, on-success, on-failure, on-abnormal, on-watchdog, on-abort, always)', 'on-failure')
    .option('--restart-sec <seconds>', 'systemd RestartSec=')
    .option('--start-timeout <seconds>', 'systemd TimeoutStartSec=')
    .option('-t, --time <seconds>', 'stop timeout (default: the container\'s)')
    .option('--stop-timeout <seconds>', 'alias for --time')
    .option('--container-prefix <prefix>', 'prefix of the unit name', 'container')
    .option('--separator <sep>', 'between prefix and name', '-')
    .option('--no-header', 'omit the header comment')
    .action(action(async () => (await ctr()).generateSystemdCmd));

  program
    .command('mount')
    .description('Mount working containers\' root filesystems and print their paths')
    .argument('[containers...]')
    .option('--json', 'output as JSON')
    .action(action(async () => (await w()).mountCmd));

  program
    .command('umount')
    .alias('unmount')
    .description('Unmount the root filesystems of working containers')
    .argument('[containers...]')
    .option('-a, --all', 'unmount all working containers')
    .action(action(async () => (await w()).umountCmd));

  const config = program
    .command('config')
    .description('Update image configuration settings of a working container')
    .argument('<container>');
  const cfgOpts: [string, string, boolean?][] = [
    ['--annotation <annotation>', 'add an annotation KEY=VALUE (KEY- removes)', true],
    ['--arch <arch>', 'architecture of the image'],
    ['--author <author>', 'author of the image'],
    ['--cmd <cmd>', 'default command (JSON array or shell string)'],
    ['--comment <comment>', 'image comment (docker format)'],
    ['--created-by <text>', 'history "created by" text for the next commit'],
    ['--domainname <name>', 'domain name (docker format)'],
    ['--entrypoint <entrypoint>', 'entry point (JSON array or shell string)'],
    ['-e, --env <env>', 'environment variable KEY=VALUE (KEY- removes)', true],
    ['--healthcheck <cmd>', 'health check command (docker format)'],
    ['--healthcheck-interval <duration>', 'interval between health checks'],
    ['--healthcheck-retries <n>', 'failures before unhealthy'],
    ['--healthcheck-start-period <duration>', 'start period before checks count'],
    ['--healthcheck-start-interval <duration>', 'interval during the start period'],
    ['--healthcheck-timeout <duration>', 'timeout of one check'],
    ['--history-comment <comment>', 'history comment for the next commit'],
    ['--hostname <name>', 'hostname (docker format)'],
    ['-l, --label <label>', 'add a label KEY=VALUE (KEY- removes)', true],
    ['--onbuild <instruction>', 'ONBUILD trigger (docker format)', true],
    ['--os <os>', 'operating system of the image'],
    ['--os-version <version>', 'operating system version'],
    ['--os-feature <feature>', 'required operating system feature (FEATURE- removes it, - removes all)', true],
    ['-p, --port <port>', 'exposed port PORT[/PROTO] (PORT- removes)', true],
    ['--shell <shell>', 'default shell (docker format)'],
    ['--stop-signal <signal>', 'signal that stops the container'],
    ['-u, --user <user>', 'default user'],
    ['--variant <variant>', 'architecture variant'],
    ['-v, --volume <volume>', 'volume mount point (VOLUME- removes)', true],
    ['--workingdir <dir>', 'default working directory'],
    ['--unsetlabel <label>', 'remove a label', true],
  ];
  for (const [flags, desc, repeat] of cfgOpts) {
    if (repeat) config.option(flags, desc, collect);
    else config.option(flags, desc);
  }
  config.action(action(async () => (await w()).configCmd));

  const commitCmd = program
    .command('commit')
    .description('Create an image from a working container, or from a container of run/create')
    .argument('<container>')
    .argument('[image]', 'image name or TRANSPORT:DESTINATION')
    .option('-a, --author <author>', 'set the author of the image')
    .option('-c, --change <instruction>', 'apply a Containerfile instruction (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR)', collect)
    .addOption(new Option('-f, --format <format>', 'image format').choices(['oci', 'docker']).default('oci'))
    .option('--include-volumes', "make the destinations of a container's --volume and --mount binds image volumes")
    .option('-m, --message <message>', 'commit message for the history entry')
    .option('-p, --pause', 'pause a running container while it is committed')
    .option('-s, --squash', 'squash all layers into one')
    .option('--rm', 'remove the container after committing')
    .option('--timestamp <seconds>', 'set created time and file times to this Unix time')
    .option('-q, --quiet', 'print only the image id')
    .option('--iidfile <file>', 'write the image id to this file')
    .option('--omit-history', 'leave the image without history (the base image\'s too)')
    .option('--unsetenv <name>', 'remove this variable from the image\'s environment', collect)
    .option('--manifest <list>', 'add the image to this manifest list (made if missing)')
    .option('-D, --disable-compression [bool]', 'no effect: barge stores layers as it does by default')
    .option('--identity-label [bool]', 'accepted: barge adds no identity label to the images it commits')
    .option('--sign-by <fingerprint>', 'sign the image written to a TRANSPORT:DESTINATION with this GPG key (local storage keeps no signatures)')
    .action(action(async () => (await w()).commitCmd));
  retryOptions(registryAccess(commitCmd));
  refusedOptions(commitCmd, 'barge does not encrypt layers', '--encrypt-layer <layer>', '--encryption-key <key>');

  program
    .command('containers')
    .description('List working containers')
    .option('-a, --all', 'also list containers not created by barge from/build')
    .option('--format <template>', 'Go template or "json"')
    .option('--json', 'output as JSON')
    .option('-q, --quiet', 'print only container ids')
    .option('--noheading, -n', 'omit the table header')
    .option('-f, --filter <filter>', 'only the containers that match: id=PREFIX, name=REGEX, ancestor=IMAGE')
    .option('--notruncate', 'do not truncate ids and names')
    .action(action(async () => (await w()).containersCmd));

  program
    .command('rm')
    .description('Remove working containers and containers')
    .argument('[containers...]')
    .option('-a, --all', 'remove all working containers and containers')
    .option('-f, --force', 'stop running containers first')
    .option('-v, --volumes', 'also remove the anonymous volumes of the containers')
    .option('--cidfile <file>', 'remove the container whose id this file holds', collect)
    .option('-i, --ignore', 'ignore containers that do not exist')
    .option('-l, --latest', 'remove the latest created container')
    .option('-t, --time <seconds>', 'with --force, stop a running container as stop -t does instead of killing it')
    .option('--filter <filter>', 'remove the containers ps --filter would list', collect)
    .option('--depend', 'accepted: no container depends on another (a pod\'s infra container goes only with `pod rm`)')
    .action(action(async () => (await w()).rmCmd));

  program
    .command('unshare')
    .description('Run a command in barge\'s user and mount namespace')
    .argument('[command...]')
    .passThroughOptions()
    .option('--mount <var=container>', 'mount a container and set VAR to its path', collect)
    .action(action(async () => (await w()).unshareCmd));

  program
    .command('inspect')
    .description('Show the configuration of containers, working containers and images')
    .argument('[names...]')
    .addOption(new Option('-t, --type <type>', 'what to inspect').choices(['container', 'image', 'manifest']))
    .option('-f, --format <template>', 'Go template')
    .option('-l, --latest', 'the latest created container')
    .action(action(async () => (await im()).inspectCmd));

  // Image verbs at the top level (Buildah's and Podman's names) and under `image` (Podman's).
  const imageVerbs = (parent: Command, group: boolean): void => {
    parent
      .command(group ? 'ls' : 'images')
      .aliases(group ? ['list'] : [])
      .description('List images in local storage')
      .argument('[image]')
      .option('-a, --all', 'show all images')
      .option('--digests', 'show digests')
      .option('-f, --filter <filter>', 'filter: reference=, label=, dangling=, before=, since=, id=', collect)
      .option('--format <template>', 'Go template or "json"')
      .option('--json', 'output as JSON')
      .option('-n, --noheading', 'omit the table header')
      .option('--no-trunc', 'do not truncate ids')
      .option('-q, --quiet', 'print only image ids')
      .option('--sort <key>', 'sort by created, id, repository, size or tag (default created)')
      .option('--history', 'accepted: barge keeps no history of names')
      .action(action(async () => (await im()).imagesCmd));

    parent
      .command(group ? 'rm' : 'rmi')
      .aliases(group ? ['remove'] : [])
      .description('Remove images')
      .argument('[images...]')
      .option('-f, --force', 'also remove containers using the image')
      .option('-a, --all', 'remove all images')
      .option('-p, --prune', 'remove dangling images')
      .option('-i, --ignore', 'ignore images that do not exist')
      .option('--no-prune', 'accepted: barge removes no parent images')
      .action(action(async () => (await im()).rmiCmd));

    parent
      .command('tag')
      .description('Add names to a local image')
      .argument('<image>')
      .argument('<names...>')
      .action(action(async () => (await im()).tagCmd));

    parent
      .command('untag')
      .description('Remove names from a local image')
      .argument('<image>')
      .argument('[names...]')
      .action(action(async () => (await im()).untagCmd));

    parent
      .command('history')
      .description('Show the history of an image')
      .argument('<image>')
      .option('--format <template>', 'Go template or "json"')
      .option('--no-trunc', 'do not truncate output')
      .option('-H, --human <bool>', 'human readable sizes and dates', 'true')
      .option('-q, --quiet', 'print only ids')
      .action(action(async () => (await im()).historyCmd));

    parent
      .command('import')
      .description('Create an image from a root filesystem tarball')
      .argument('<tarball>', 'file, or - for standard input')
      .argument('[name]')
      .option('-c, --change <instruction>', 'Containerfile instruction to apply (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR)', collect)
      .option('-m, --message <message>', 'commit message for the history')
      .option('-q, --quiet', 'print only the image id')
      .action(action(async () => (await tr()).importCmd));

    parent
      .command('load')
      .description('Load images from a docker-archive or oci-archive tarball')
      .option('-i, --input <file>', 'read from this file (default: standard input)')
      .option('-q, --quiet', 'suppress progress output')
      .action(action(async () => (await tr()).loadCmd));

    parent
      .command('save')
      .description('Save images to an archive or directory')
      .argument('<images...>')
      .option('-o, --output <file>', 'write to this file (default: standard output)')
      .addOption(new Option('--format <format>', 'archive format').choices(['docker-archive', 'oci-archive', 'oci-dir', 'docker-dir']).default('docker-archive'))
      .option('-m, --multi-image-archive', 'store several images in one docker archive')
      .option('-q, --quiet', 'suppress progress output')
      .action(action(async () => (await tr()).saveCmd));

    const pullCmd = registryAccess(
      parent
        .command('pull')
        .description('Pull an image from a transport into local storage')
        .argument('<source>', 'NAME[:TAG] from a registry, or docker://…, oci:DIR[:TAG], oci-archive:FILE, docker-archive:FILE, dir:DIR')
        .option('-q, --quiet', 'suppress progress output')
        .option('--platform <os/arch>', 'platform to choose from a multi-platform image')
        .option('--arch <arch>', 'architecture to choose from a multi-platform image')
        .option('--os <os>', 'OS to choose from a multi-platform image')
        .option('--variant <variant>', 'architecture variant to choose from a multi-platform image'),
    )
      .option('--signature-policy <file>', 'policy.json to consult')
      .option('--policy <policy>', 'always, missing, never or newer: whether to pull an image that is local (default always, as Podman)')
      .option('-a, --all-tags', 'pull every tag of the repository')
      .option('--remove-signatures', 'accepted: signatures are verified as policy.json asks, but local storage keeps none')
      .option('--retry-times <n>', 'retries for transient registry failures')
      .action(action(async () => (await tr()).pullCmd));
    retryOptions(pullCmd);
    refusedOptions(pullCmd, 'barge does not decrypt encrypted images', '--decryption-key <key>');

    const pushCmd = registryAccess(
      parent
        .command('push')
        .description('Push an image from local storage to a transport')
        .argument('<image>')
        .argument('[destination]')
        .addOption(new Option('-f, --format <format>', 'manifest format').choices(['oci', 'v2s2', 'docker']))
        .option('-q, --quiet', 'suppress progress output')
        .option('--digestfile <file>', 'write the manifest digest to this file')
        .addOption(new Option('--compression-format <format>', 'compression of the layers pushed').choices(['gzip', 'zstd']))
        .option('--compression-level <level>', 'level of that compression (gzip 0-9, zstd 1-22); layers are recompressed at it'),
    )
      .option('--retry-times <n>', 'retries for transient registry failures')
      .option('--all', 'of a manifest list, push the images it names too (as manifest push --all)')
      .option('--rm', 'of a manifest list, remove it from local storage once pushed')
      .option('--remove-signatures', 'accepted: local storage keeps no signatures to copy')
      .option('--sign-by <fingerprint>', 'add a simple-signing (GPG) signature with this key')
      .option('--sign-passphrase-file <file>', 'read the signing key\'s passphrase from the first line of this file')
      .action(action(async () => (await tr()).pushCmd));
    retryOptions(pushCmd);
    refusedOptions(pushCmd, 'barge signs only with GPG (--sign-by), not with sigstore', '--sign-by-sigstore-private-key <path>');
    refusedOptions(pushCmd, 'barge does not encrypt layers', '--encrypt-layer <layer>', '--encryption-key <key>');
  };
  imageVerbs(program, false);
  const imageGroup = program.command('image').description('Manage images (Podman\'s image commands)');
  imageVerbs(imageGroup, true);
  imageGroup
    .command('inspect')
    .description('Show the configuration of images (Podman\'s JSON)')
    .argument('<images...>')
    .option('-f, --format <template>', 'Go template or "json"')
    .action(action(async () => (await im()).imageInspectCmd));
  imageGroup
    .command('exists')
    .description('Exit 0 if the image is in local storage, 1 if not')
    .argument('<image>')
    .action(action(async () => (await im()).imageExistsCmd));
  imageGroup
    .command('prune')
    .description('Remove images that have no name and no container')
    .option('-a, --all', 'remove every image no container uses')
    .option('-f, --force', 'do not ask for confirmation (barge never asks)')
    .action(action(async () => (await im()).imagePruneCmd));

  // Buildah's manifest-list commands.
  const mf = (): Promise<typeof import('./commands/manifest.ts')> => import('./commands/manifest.ts');
  const manifestGroup = program.command('manifest').description('Create, edit and push manifest lists (image indexes)');
  /** The per-entry settings of add and annotate. */
  const entryOptions = (c: Command): Command =>
    c
      .option('--arch <architecture>', 'architecture of the entry (default: from the image\'s config)')
      .option('--os <os>', 'operating system of the entry')
      .option('--variant <variant>', 'architecture variant of the entry')
      .option('--os-version <version>', 'operating system version of the entry')
      .option('--features <features>', 'features of the entry (comma-separated, repeatable)', collect)
      .option('--os-features <features>', 'OS features of the entry (comma-separated, repeatable)', collect)
      .option('--annotation <key=value>', 'annotation of the entry (repeatable)', collect);
  registryAccess(
    manifestGroup
      .command('create')
      .description('Create a manifest list in local storage and print its id')
      .argument('<list>', 'name of the new list')
      .argument('[images...]', 'images to add: local ones, or TRANSPORT:REFERENCE')
      .option('--all', 'add every image of an image that is itself a list')
      .option('--amend', 'add to the list of that name if there is one'),
  ).action(action(async () => (await mf()).createCmd));
  registryAccess(
    entryOptions(
      manifestGroup
        .command('add')
        .description('Add an image to a manifest list')
        .argument('<list>')
        .argument('<image>', 'a local image, or TRANSPORT:REFERENCE (docker://, oci:, dir:)')
        .option('--all', 'add every image of an image that is itself a list'),
    ),
  ).action(action(async () => (await mf()).addCmd));
  entryOptions(
    manifestGroup
      .command('annotate')
      .description('Change the platform or annotations of an entry of a manifest list')
      .argument('<list>')
      .argument('<image>', 'the entry\'s manifest digest, or a local image'),
  ).action(action(async () => (await mf()).annotateCmd));
  manifestGroup
    .command('remove')
    .description('Remove an entry from a manifest list')
    .argument('<list>')
    .argument('<digest>', 'the entry\'s manifest digest')
    .action(action(async () => (await mf()).removeCmd));
  registryAccess(
    manifestGroup
      .command('inspect')
      .description('Print a manifest list (a local one, or one read from a registry)')
      .argument('<list>'),
  ).action(action(async () => (await mf()).inspectCmd));
  manifestGroup
    .command('exists')
    .description('Exit 0 if the manifest list is in local storage, 1 if not')
    .argument('<list>')
    .action(action(async () => (await mf()).existsCmd));
  manifestGroup
    .command('rm')
    .description('Remove manifest lists from local storage (not the images they name)')
    .argument('<lists...>')
    .action(action(async () => (await mf()).rmCmd));
  registryAccess(
    manifestGroup
      .command('push')
      .description('Push a manifest list, with --all also the images it names')
      .argument('<list>')
      .argument('<destination>', 'TRANSPORT:REFERENCE, or a registry name')
      .option('--all', 'push the images of the list too (Buildah 1.28\'s default: only the list)')
      .addOption(new Option('-f, --format <format>', 'manifest type to push (default: the list\'s own)').choices(['oci', 'v2s2']))
      .option('--digestfile <file>', 'write the digest of the pushed list to this file')
      .option('--rm', 'remove the list from local storage once it is pushed')
      .option('-q, --quiet', 'suppress progress output')
      .option('--remove-signatures', 'do not copy signatures (accepted: barge never copies signatures)')
      .option('--sign-by <fingerprint>', 'not supported: barge signs single images (push, skopeo copy), not manifest lists'),
  ).action(action(async () => (await mf()).pushCmd));

  const vol = (): Promise<typeof import('./commands/volumes.ts')> => import('./commands/volumes.ts');
  const volumeGroup = program.command('volume').description('Manage volumes (Podman\'s volume commands)');
  volumeGroup
    .command('create')
    .description('Create a volume')
    .argument('[name]', 'volume name (default: a random 64-hex one)')
    .option('-l, --label <label>', 'volume label KEY=VALUE', collect)
    .option('--ignore', 'do nothing (and print the name) if the volume exists')
    .action(action(async () => (await vol()).volumeCreateCmd));
  volumeGroup
    .command('ls')
    .alias('list')
    .description('List volumes')
    .option('-q, --quiet', 'print only volume names')
    .option('--format <template>', 'Go template or "json"')
    .option('-f, --filter <filter>', 'name=REGEX, label=KEY[=VALUE], dangling=true|false, driver=, scope=', collect)
    .option('-n, --noheading', 'omit the table header')
    .action(action(async () => (await vol()).volumeLsCmd));
  volumeGroup
    .command('inspect')
    .description('Show volumes as JSON (Podman\'s)')
    .argument('[volumes...]')
    .option('-a, --all', 'inspect every volume')
    .option('-f, --format <template>', 'Go template or "json"')
    .action(action(async () => (await vol()).volumeInspectCmd));
  volumeGroup
    .command('rm')
    .alias('remove')
    .description('Remove volumes (in use: only with -f, which removes their containers first)')
    .argument('[volumes...]')
    .option('-a, --all', 'remove every volume')
    .option('-f, --force', 'remove the containers that use the volumes first')
    .action(action(async () => (await vol()).volumeRmCmd));
  volumeGroup
    .command('prune')
    .description('Remove every volume no container uses')
    .option('-f, --force', 'do not ask for confirmation (barge never asks)')
    .option('--filter <filter>', 'prune only the volumes that match (as ls --filter)', collect)
    .action(action(async () => (await vol()).volumePruneCmd));
  volumeGroup
    .command('exists')
    .description('Exit 0 if the volume exists, 1 if not')
    .argument('<volume>')
    .action(action(async () => (await vol()).volumeExistsCmd));

  // Podman's kube commands; `play kube` is the older spelling of `kube play`.
  const kubeGroup = program.command('kube').description('Play containers, pods and volumes from Kubernetes YAML, and generate it');
  kubePlayCommand(kubeGroup.command('play'), kube);
  kubeGroup
    .command('down')
    .description('Stop and remove the pods a Kubernetes YAML file describes (their volumes stay)')
    .argument('<file>', 'the YAML file, or - for standard input')
    .action(action(async () => (await kube()).kubeDownCmd));
  kubeGenerateCommand(kubeGroup.command('generate'), kube);
  kubePlayCommand(program.command('play').description('Play Kubernetes YAML (the older spelling of kube play)').command('kube'), kube);

  const pods = (): Promise<typeof import('./commands/pods.ts')> => import('./commands/pods.ts');
  const podGroup = program.command('pod').description('Manage pods (Podman\'s pod commands): containers sharing namespaces held by an infra container');
  const podCreate = podGroup
    .command('create')
    .description('Create a pod and its infra container; prints the pod id')
    .argument('[args...]')
    .option('--name <name>', 'name of the pod (default: ID-pod)')
    .option('--infra [bool]', 'create an infra container holding the shared namespaces (default true)')
    .option('--no-infra', 'no infra container (as --infra=false)')
    .option('--infra-command <command>', 'the infra container\'s command (default: the infra image\'s, /catatonit -P)')
    .option('--infra-image <image>', 'the infra container\'s image (default: a pause image barge builds from the host\'s catatonit)')
    .option('--infra-name <name>', 'name of the infra container (default: ID-infra)')
    .option('--share <namespaces>', 'namespaces the containers share: cgroup, ipc, net, pid, uts, or none; "+ns" adds to the default (ipc,net,uts)')
    .option('-l, --label <label>', 'pod label KEY=VALUE', collect)
    .option('--hostname <name>', 'hostname of the pod\'s UTS namespace (default: the pod\'s name)')
    .option('-p, --publish <port>', 'publish a port of the pod (through the infra container\'s slirp4netns)', collect)
    .option('--network <mode>', "the pod's network: 'private', 'none', 'host' or 'slirp4netns[:OPTIONS]'")
    .option('--net <mode>', 'alias for --network')
    .option('--pod-id-file <file>', 'write the pod id to this file')
    .action(action(async () => (await pods()).podCreateCmd));
  refusedOptions(podCreate, 'not supported yet for pods',
    '--infra-conmon-pidfile <file>', '--cgroup-parent <path>', '--exit-policy <policy>', '--replace', '--userns <mode>', '--uidmap <map>', '--gidmap <map>',
    '--cpus <n>', '--cpuset-cpus <cpus>', '--memory <size>', '--device <device>', '--volume <volume>', '--volumes-from <ctr>', '--security-opt <opt>',
    '--sysctl <sysctl>', '--shm-size <size>', '--add-host <host>', '--dns <dns>', '--dns-opt <opt>', '--dns-search <domain>', '--ip <ip>', '--ip6 <ip>',
    '--mac-address <mac>', '--network-alias <alias>', '--pid <mode>', '--share-parent [bool]', '--label-file <file>');
  const podPs = podGroup
    .command('ps')
    .alias('ls')
    .alias('list')
    .description('List pods')
    .option('-q, --quiet', 'print only pod ids')
    .option('--format <template>', 'Go template, "table …" or "json"')
    .option('-f, --filter <filter>', 'id=, name=, label=, status=, ctr-names=, ctr-ids=, ctr-status=, ctr-number=', collect)
    .option('--no-trunc', 'do not truncate ids')
    .option('--noheading', 'omit the table header')
    .option('--ctr-names', 'show the names of the pod\'s containers')
    .option('--ctr-ids', 'show the ids of the pod\'s containers')
    .option('--ctr-status', 'show the states of the pod\'s containers')
    .option('-l, --latest', 'the latest created pod')
    .option('--sort <key>', 'created, id, name, number or status')
    .action(action(async () => (await pods()).podPsCmd));
  refusedOptions(podPs, 'not supported yet for pods', '--ns');
  podGroup
    .command('inspect')
    .description('Show a pod\'s configuration and state (Podman\'s JSON)')
    .argument('[pod...]')
    .option('-f, --format <template>', 'Go template or "json"')
    .option('-l, --latest', 'the latest created pod')
    .action(action(async () => (await pods()).podInspectCmd));
  const podVerb = (name: string, description: string): Command =>
    podGroup
      .command(name)
      .description(description)
      .argument('[pods...]')
      .option('-a, --all', 'every pod')
      .option('-l, --latest', 'the latest created pod')
      .option('--pod-id-file <file>', 'the pod whose id this file holds', collect);
  podVerb('start', 'Start pods: the infra container first, then the others').action(action(async () => (await pods()).podStartCmd));
  podVerb('stop', 'Stop pods: their containers, then the infra container')
    .option('-t, --time <seconds>', 'seconds to wait before SIGKILL')
    .option('-i, --ignore', 'ignore pods that do not exist')
    .action(action(async () => (await pods()).podStopCmd));
  podVerb('restart', 'Stop and start pods').action(action(async () => (await pods()).podRestartCmd));
  podVerb('kill', 'Send a signal to the running containers of pods')
    .option('-s, --signal <signal>', 'signal to send (default SIGKILL)')
    .action(action(async () => (await pods()).podKillCmd));
  podVerb('rm', 'Remove pods with their containers')
    .alias('remove')
    .option('-f, --force', 'stop running containers first')
    .option('-i, --ignore', 'ignore pods that do not exist')
    .option('-t, --time <seconds>', 'with --force, seconds to wait before SIGKILL')
    .action(action(async () => (await pods()).podRmCmd));
  podGroup
    .command('prune')
    .description('Remove every pod none of whose containers is running')
    .option('-f, --force', 'do not ask for confirmation (barge never asks)')
    .action(action(async () => (await pods()).podPruneCmd));
  podGroup
    .command('exists')
    .description('Exit 0 if the pod exists, 1 if not')
    .argument('<pod>')
    .action(action(async () => (await pods()).podExistsCmd));
  podGroup
    .command('top')
    .description('Show the processes of a pod\'s running containers (ps descriptors as for top)')
    .argument('[pod]')
    .argument('[descriptors...]')
    .option('-l, --latest', 'the latest created pod')
    .action(action(async () => (await pods()).podTopCmd));
  for (const verb of ['stats', 'logs', 'pause', 'unpause', 'clone']) {
    podGroup
      .command(verb)
      .description(`not supported yet (Podman's pod ${verb})`)
      .allowUnknownOption()
      .argument('[args...]')
      .action(() => {
        throw new Error(`barge pod ${verb} is not supported yet`);
      });
  }
  const net = (): Promise<typeof import('./commands/networks.ts')> => import('./commands/networks.ts');
  const networkGroup = program.command('network').description("Manage bridge networks (Podman's network commands; root only for containers)");
  networkGroup
    .command('create')
    .description('Create a bridge network')
    .argument('[name]', 'network name (default: its bridge\'s, bargeN)')
    .option('-d, --driver <driver>', 'network driver (only bridge)', 'bridge')
    .option('--subnet <cidr>', 'IPv4 subnet (default: a free /24 of 10.80.0.0/13)', collect)
    .option('--gateway <ip>', 'gateway address in the subnet (default: its first)', collect)
    .option('--ip-range <cidr>', 'give containers addresses from this part of the subnet only', collect)
    .option('--internal', 'no route out of the network (no masquerading, no default route)')
    .option('--disable-dns', 'no aardvark-dns: containers do not find each other by name')
    .option('--label <label>', 'network label KEY=VALUE', collect)
    .option('-o, --opt <option>', 'bridge option KEY=VALUE: mtu, vlan, isolate', collect)
    .option('--ipv6', "not supported: barge's bridge networks are IPv4 only")
    .action(action(async () => (await net()).networkCreateCmd));
  networkGroup
    .command('ls')
    .alias('list')
    .description('List networks')
    .option('-q, --quiet', 'print only network names')
    .option('--format <template>', 'Go template or "json"')
    .option('-f, --filter <filter>', 'name=REGEX, id=PREFIX, driver=, label=KEY[=VALUE], dangling=true|false', collect)
    .option('--noheading', 'omit the table header')
    .action(action(async () => (await net()).networkLsCmd));
  networkGroup
    .command('inspect')
    .description("Show networks as JSON (Podman's)")
    .argument('<networks...>')
    .option('-f, --format <template>', 'Go template or "json"')
    .action(action(async () => (await net()).networkInspectCmd));
  networkGroup
    .command('rm')
    .alias('remove')
    .description('Remove networks (in use: only with -f, which removes their containers first)')
    .argument('<networks...>')
    .option('-f, --force', 'remove the containers that use the networks first')
    .option('-t, --time <seconds>', 'with -f, stop running containers this long before killing them')
    .action(action(async () => (await net()).networkRmCmd));
  networkGroup
    .command('prune')
    .description('Remove every network no container uses (never the default one)')
    .option('-f, --force', 'do not ask for confirmation (barge never asks)')
    .option('--filter <filter>', 'prune only the networks that match (as ls --filter)', collect)
    .action(action(async () => (await net()).networkPruneCmd));
  networkGroup
    .command('exists')
    .description('Exit 0 if the network exists, 1 if not')
    .argument('<network>')
    .action(action(async () => (await net()).networkExistsCmd));

  const sec = (): Promise<typeof import('./commands/secrets.ts')> => import('./commands/secrets.ts');
  const secretGroup = program.command('secret').description('Manage secrets (Podman\'s secret commands, file driver)');
  secretGroup
    .command('create')
    .description('Create a secret from a file, "-" (stdin), or with --env an environment variable')
    .argument('<name>')
    .argument('<file>', 'file with the content, - for stdin, or with --env the variable\'s name')
    .option('-d, --driver <driver>', 'secret driver (only file)', 'file')
    .option('--env', 'read the content from the environment variable FILE names')
    .option('-l, --label <label>', 'secret label KEY=VALUE', collect)
    .option('--replace', 'replace the content and labels of a secret of the same name, keeping its id')
    .action(action(async () => (await sec()).secretCreateCmd));
  secretGroup
    .command('ls')
    .alias('list')
    .description('List secrets')
    .option('--format <template>', 'Go template, or json')
    .option('-f, --filter <filter>', 'name=REGEX, id=REGEX or label=KEY[=VALUE]', collect)
    .option('--noheading', 'do not print the header')
    .option('-q, --quiet', 'print only secret ids')
    .action(action(async () => (await sec()).secretLsCmd));
  secretGroup
    .command('inspect')
    .description('Show secrets as JSON (Podman\'s), without their content unless --showsecret')
    .argument('[secrets...]')
    .option('-f, --format <template>', 'Go template')
    .option('--pretty', 'human-readable output')
    .option('--showsecret', 'include the content (SecretData)')
    .action(action(async () => (await sec()).secretInspectCmd));
  secretGroup
    .command('rm')
    .alias('remove')
    .description('Remove secrets (containers keep their copies of mount secrets)')
    .argument('[secrets...]')
    .option('-a, --all', 'remove every secret')
    .option('-i, --ignore', 'no error for a secret that does not exist')
    .action(action(async () => (await sec()).secretRmCmd));
  secretGroup
    .command('exists')
    .description('Exit 0 if the secret exists, 1 if not')
    .argument('<secret>')
    .action(action(async () => (await sec()).secretExistsCmd));
  program
    .command('healthcheck')
    .description('Run healthchecks (barge has no daemon: checks run only when asked, never on a timer)')
    .command('run')
    .description('Run a container\'s healthcheck once and record the result: exit 0 healthy, 1 unhealthy, 125 error')
    .argument('<container>')
    .action(action(async () => (await import('./commands/healthcheck.ts')).healthcheckRunCmd));

  program
    .command('update')
    .description('Update the cgroup limits of a running container (for this run only, as Podman 4.3)')
    .argument('<container>')
    .option('-m, --memory <size>', 'memory limit (format: <number>[<unit>], where unit = b, k, m or g)')
    .option('--memory-swap <size>', "swap limit equal to memory plus swap: '-1' to enable unlimited swap")
    .option('--cpus <n>', 'number of CPUs')
    .option('--cpu-period <us>', 'limit the CPU CFS (Completely Fair Scheduler) period')
    .option('--cpu-quota <us>', 'limit the CPU CFS (Completely Fair Scheduler) quota')
    .option('-c, --cpu-shares <n>', 'CPU shares (relative weight)')
    .option('--cpuset-cpus <cpus>', 'CPUs in which to allow execution (0-3, 0,1)')
    .option('--cpuset-mems <mems>', 'memory nodes (MEMs) in which to allow execution (0-3, 0,1)')
    .action(action(async () => (await import('./commands/update.ts')).updateCmd));

  program
    .command('search')
    .description('Search a registry for images (its /v2/_catalog), or with --list-tags list a repository\'s tags')
    .argument('<term>', 'REGISTRY/TERM, or a term searched in registries.conf\'s unqualified-search-registries')
    .option('--limit <n>', 'results per registry (default 25)')
    .option('--format <format>', 'json, or a Go template over each result')
    .option('--no-trunc', 'do not truncate the output (barge has no descriptions to truncate)')
    .option('-f, --filter <filter>', 'stars=N, is-official=BOOL, is-automated=BOOL', collect)
    .option('--compatible', 'also the stars, official and automated columns (Docker compatibility)')
    .option('--list-tags', 'list the tags of the repository TERM names')
    .option('--tls-verify [bool]', 'require HTTPS and verify certificates (default: as registries.conf says)')
    .option('--authfile <path>', 'path of the authentication file')
    .option('--cert-dir <dir>', 'directory of certificates (*.crt, *.cert, *.key) for the registry')
    .option('--creds <user:password>', 'credentials for the registry')
    .action(action(async () => (await import('./commands/search.ts')).searchCmd));

  program
    .command('events')
    .description('Show events (from the events log under the runroot, as Podman\'s "file" events backend)')
    .option('-f, --filter <filter>', 'only the events matching KEY=VALUE (container, event, image, label, pod, type, volume)', collect)
    .option('--format <format>', 'json, or a Go template over each event')
    .option('--since <time>', 'show the events since this time (RFC 3339, Unix seconds or a duration)')
    .option('--until <time>', 'show the events until this time')
    .option('--stream [bool]', 'follow the log and print new events as they come (default true)')
    .option('--no-trunc [bool]', 'do not truncate the ids (default true)')
    .action(action(async () => (await import('./commands/events.ts')).eventsCmd));

  const reg = (): Promise<typeof import('./commands/registry.ts')> => import('./commands/registry.ts');
  const loginOptions = (c: Command): Command =>
    c
      .option('--authfile <file>', 'auth.json to use')
      .option('--tls-verify [bool]', 'require HTTPS and verify certificates')
      .option('--cert-dir <dir>', 'certificates (*.crt, *.cert, *.key) for the registry');
  // Podman's login/logout, also under `barge skopeo`.
  const loginCommands = (parent: Command): void => {
    loginOptions(
      parent
        .command('login')
        .description('Log in to a container registry')
        .argument('[registry]')
        .option('-u, --username <username>', 'username')
        .option('-p, --password <password>', 'password')
        .option('--password-stdin', 'read the password from standard input')
        .option('--get-login', 'print the username stored for the registry'),
    ).action(action(async () => (await reg()).loginCmd));
    loginOptions(
      parent
        .command('logout')
        .description('Log out of a container registry')
        .argument('[registry]')
        .option('-a, --all', 'remove the credentials of all registries'),
    ).action(action(async () => (await reg()).logoutCmd));
  };
  loginCommands(program);
  registryOptions(
    program.command('list-tags').description('List the tags of a repository in a registry').argument('<repository>', 'docker://HOST/REPO'),
  ).action(action(async () => (await reg()).listTagsCmd));

  // Skopeo's spellings: `barge skopeo inspect docker://…` and friends.
  const skopeo = skopeoGlobalOptions(
    program
      .command('skopeo')
      .description('Skopeo-compatible commands: inspect, copy, sync, list-tags, delete, login, logout, manifest-digest, standalone-sign, standalone-verify')
      .version(`barge skopeo version ${VERSION}`, '-v, --version', 'print the version'),
    true,
  ).hook('preAction', async (group, sub) => {
    if (sub === group) return;
    for (const [k, v] of Object.entries(group.opts())) if (sub.getOptionValue(k) === undefined) sub.setOptionValue(k, v);
    await (await reg()).applySkopeoGlobals(sub.opts());
  });
  skopeoGlobalOptions(
    registryOptions(
      skopeo
        .command('inspect')
        .description('Inspect an image in a registry or another transport without pulling it')
        .argument('<image>', 'TRANSPORT:NAME, e.g. docker://HOST/REPO:TAG')
        .option('--raw', 'print the raw manifest (or config with --config)')
        .option('--config', 'print the image config')
        .option('-f, --format <template>', 'Go template over the output, e.g. \'{{.Digest}}\'')
        .option('-n, --no-tags', 'do not list the repository tags'),
    ),
    true,
  ).action(action(async () => (await reg()).inspectCmd));
  const skopeoCopy = skopeo
    .command('copy')
    .description('Copy an image from one transport to another')
    .argument('<source>')
    .argument('<destination>')
    .option('-q, --quiet', 'suppress progress output')
    .option('-f, --format <format>', 'manifest format (oci, v2s2)')
    .option('--signature-policy <file>', 'policy.json to consult')
    .option('-a, --all', 'copy every image of a list, and the list')
    .option('--digestfile <file>', 'write the manifest digest to this file')
    .option('--sign-identity <reference>', 'the fully specified docker reference the new signature names (default: the destination\'s)');
  skopeoGlobalOptions(imageCopyOptions(skopeoCopy), false).action(action(async () => (await tr()).skopeoCopyCmd));
  refusedOptions(skopeoCopy, 'barge signs only with GPG (--sign-by), not with sigstore', '--sign-by-sigstore-private-key <path>');
  skopeoGlobalOptions(
    skopeo
      .command('standalone-sign')
      .description('Sign a manifest file with a GPG key, writing the signature to a file')
      .argument('<manifest>', 'file holding the image manifest')
      .argument('<docker-reference>', 'the reference the signature names')
      .argument('<key-fingerprint>', 'the GPG key to sign with')
      .requiredOption('-o, --output <file>', 'write the signature to this file')
      .option('--passphrase-file <file>', 'read the key\'s passphrase from the first line of this file'),
    false,
  ).action(action(async () => (await reg()).standaloneSignCmd));
  skopeoGlobalOptions(
    skopeo
      .command('standalone-verify')
      .description('Verify a signature of a manifest file against a GPG key of the user\'s keyring; prints the digest')
      .argument('<manifest>', 'file holding the image manifest')
      .argument('<docker-reference>', 'the reference the signature must name')
      .argument('<key-fingerprint>', 'the key that must have signed it')
      .argument('<signature>', 'the signature file'),
    false,
  ).action(action(async () => (await reg()).standaloneVerifyCmd));
  // Skopeo's sync, also as `barge sync`.
  for (const parent of [program, skopeo]) {
    const sync = imageCopyOptions(
      parent
        .command('sync')
        .description('Synchronize images between registry repositories and local directories')
        .argument('<source>', 'a repository (--src docker), a directory (--src dir) or a YAML file (--src yaml)')
        .argument('<destination>', 'a registry with an optional path (--dest docker) or a directory (--dest dir)')
        .addOption(new Option('-s, --src <transport>', 'source transport').choices(['docker', 'dir', 'yaml']).makeOptionMandatory())
        .addOption(new Option('-d, --dest <transport>', 'destination transport').choices(['docker', 'dir']).makeOptionMandatory())
        .option('--scoped', 'prefix images with the source image path')
        .option('-a, --all', 'copy every image of a list, and the list')
        .option('--dry-run', 'show what would be copied without copying')
        .option('--keep-going', 'go on after an image fails, and fail at the end')
        .option('-f, --format <format>', 'manifest format (oci, v2s2)')
        .option('-q, --quiet', 'suppress progress output'),
    );
    (parent === skopeo ? skopeoGlobalOptions(sync, false) : sync).action(action(async () => (await tr()).syncCmd));
  }
  skopeoGlobalOptions(
    registryOptions(
      skopeo.command('list-tags').description('List the tags of a repository in a registry').argument('<repository>', 'docker://HOST/REPO'),
    ),
    true,
  ).action(action(async () => (await reg()).listTagsCmd));
  skopeoGlobalOptions(
    registryOptions(
      skopeo.command('delete').description('Delete an image from a registry').argument('<image>', 'docker://HOST/REPO:TAG or @DIGEST'),
    ),
    true,
  ).action(action(async () => (await reg()).deleteCmd));
  skopeoGlobalOptions(
    skopeo
      .command('manifest-digest')
      .description('Compute the digest of a manifest file')
      .argument('<file>'),
    true,
  ).action(action(async () => (await reg()).manifestDigestCmd));
  loginCommands(skopeo);

  // Containerfile builds (src/containerfile/); the handler is in commands/build.ts.
  const buildCmd = buildahRunOptions(registryAccess(
    program
      .command('build')
      .aliases(['bud', 'build-using-dockerfile'])
      .description('Build an image using instructions from Containerfiles')
      .argument('[context]', 'build context: a directory, a tarball, - for standard input, or a URL (git repository[#ref[:subdir]], tarball or Containerfile)'),
  ), 'build')
    .option('-f, --file <file>', 'Containerfile to use (default: CONTEXT/Containerfile, then CONTEXT/Dockerfile)')
    .option('-t, --tag <name>', 'name for the built image', collect)
    .option('--build-arg <arg=value>', 'value for an ARG', collect)
    .option('--build-arg-file <file>', 'file of ARG=value lines', collect)
    .option('--target <stage>', 'build up to and including this stage')
    .option('--layers [bool]', 'cache intermediate images: true or false (default false, as Buildah)')
    .option('--no-cache', 'do not use cached intermediate images')
    .option('--pull [policy]', 'pull policy for base images: always, missing, never, newer')
    .option('--label <label>', 'image label KEY=VALUE', collect)
    .option('--annotation <annotation>', 'manifest annotation KEY=VALUE', collect)
    .addOption(new Option('--format <format>', 'image format').choices(['oci', 'docker']))
    .option('--iidfile <file>', 'write the image id to this file')
    .option('-q, --quiet', 'do not print the steps')
    .option('--squash', 'squash the final stage into one layer on no base layers')
    .option('--timestamp <seconds>', 'set created time and file times to this Unix time')
    .option('--network <mode>', 'network for RUN: host, none, private')
    .option('-v, --volume <vol>', 'bind mount HOST:CONTAINER[:OPTIONS] into RUN steps', collect)
    .addOption(new Option('--isolation <type>', 'process isolation for RUN: oci, chroot, rootless').env('BUILDAH_ISOLATION'))
    .option('--userns <how>', 'user namespace for RUN: host, container (a new one), keep-id, nomap, or a namespace path')
    .option('--userns-uid-map <mapping>', 'CONTAINER:HOST:SIZE uid map for RUN (HOST ids are barge\'s own when rootless)', collect)
    .option('--userns-gid-map <mapping>', 'CONTAINER:HOST:SIZE gid map for RUN (default: the uid map)', collect)
    .option('--userns-uid-map-user <user>', 'take the uid map from this user\'s /etc/subuid ranges')
    .option('--userns-gid-map-group <group>', 'take the gid map from this group\'s /etc/subgid ranges')
    .option('--secret <spec>', 'secret for RUN --mount=type=secret: id=ID,src=FILE or id=ID,env=VAR', collect)
    .option('--platform <os/arch[/variant]>', 'build for this platform: bases are pulled for it and TARGETPLATFORM names it (RUN needs an emulator for a foreign architecture)')
    .option('--arch <arch>', 'build for this architecture (default: the host\'s)')
    .option('--os <os>', 'build for this OS (default: linux)')
    .option('--variant <variant>', 'build for this architecture variant')
    .option('--ssh <default|id[=socket]>', 'ssh-agent socket for RUN --mount=type=ssh (default: $SSH_AUTH_SOCK)', collect)
    .option('--cache-ttl <duration>', 'only use cached steps newer than this (e.g. 1h; 0 is --no-cache)')
    .option('--cache-from <repo>', 'registry repository to look up cached steps in (with --layers)', collect)
    .option('--cache-to <repo>', 'registry repository to push each built step to (with --layers)', collect)
    .option('--manifest <list>', 'add the built image to this manifest list (made if missing); with several --platform values, each platform\'s image')
    .option('--all-platforms', 'build for every platform the base images all offer (with --manifest)')
    .option('--build-context <name=value>', 'a named context for FROM, COPY --from and RUN --mount=from: a directory, docker-image://REF, oci-layout://DIR[:TAG], a git repository URL or an http(s) URL', collect)
    .option('--logfile <file>', 'write the build\'s output (RUN steps\' too) to this file instead of stdout and stderr')
    .option('--logsplit [bool]', 'with --logfile, one file per platform: FILE_OS_ARCH')
    .option('--omit-history', 'leave the built image without history (the base image\'s too)')
    .option('--stdin', 'let RUN steps read barge\'s standard input (without it they read nothing, as Buildah)')
    .option('--from <image>', 'use this image instead of the one the first FROM names')
    .option('--env <env>', 'set KEY=VALUE (or KEY, from barge\'s environment) in the built image', collect)
    .option('--unsetenv <name>', 'remove this variable from the built image\'s environment', collect)
    .option('--ignorefile <file>', 'ignore file to use instead of the context\'s .containerignore or .dockerignore')
    .option('--skip-unused-stages [bool]', 'build only the stages the target needs (default true)')
    .option('--os-version <version>', 'the OS version the built image requires')
    .option('--os-feature <feature>', 'an OS feature the built image requires, besides its base\'s', collect)
    .option('--runtime <path>', 'OCI runtime for RUN steps (default: the global --runtime)')
    .option('-o, --output <dest>', 'also write the built image\'s files: DIR, type=local,dest=DIR, type=tar,dest=FILE (- for standard output)')
    .option('--rm [bool]', 'remove intermediate containers after a successful build (default true: barge always does)')
    .option('--force-rm [bool]', 'remove intermediate containers also after a failed build (barge always does)')
    .option('--jobs <n>', 'stages to build in parallel (accepted: barge builds them one at a time, as Buildah\'s default)')
    .option('--compress', 'no effect, as in Buildah (a legacy option)')
    .option('-D, --disable-compression [bool]', 'no effect: barge stores layers as it does by default')
    .option('--disable-content-trust', 'no effect, as in Buildah (a Docker option)')
    .option('--identity-label [bool]', 'accepted: barge adds no identity label to the images it builds')
    .action(action(async () => (await import('./commands/build.ts')).buildCmd));
  retryOptions(buildCmd);
  refusedOptions(buildCmd, 'barge\'s local storage keeps no signatures; sign when pushing (push --sign-by)', '--sign-by <fingerprint>');
  refusedOptions(buildCmd, 'barge reads Containerfile.in without running the C preprocessor', '--cpp-flag <flag>');

  program
    .command('info')
    .description('Display information about the host and the store')
    .option('--format <template>', 'Go template')
    .action(action(async () => (await sys()).infoCmd));

  program
    .command('version')
    .description('Display barge version information')
    .option('--json', 'output as JSON')
    .action(action(async () => (await sys()).versionCmd));

  const system = program.command('system').description('Manage the store');
  system.command('check').description('Check the store for consistency').option('-r, --repair', 'fix what can be fixed')
    .option('-f, --force', 'also remove images and containers that are damaged')
    .action(action(async () => (await sys()).checkCmd));
  system.command('df').description('Show disk usage of the store').option('--format <template>', 'Go template').option('-v, --verbose', 'more detail')
    .action(action(async () => (await sys()).dfCmd));
  system.command('prune').description('Remove unused data').option('-a, --all', 'also remove images without containers').option('-f, --force', 'do not ask')
    .action(action(async () => (await sys()).pruneCmd));
  system.command('reset').description('Remove all images, containers and layers').option('-f, --force', 'do not ask')
    .action(action(async () => (await sys()).resetCmd));
  system.command('migrate').description('Rootless: end the pause process that keeps barge\'s namespaces, so the next command makes them again (after /etc/subuid or /etc/subgid changed)')
    .option('--new-runtime <runtime>', 'accepted for Podman\'s scripts; barge records no runtime to migrate')
    .action(action(async () => (await sys()).migrateCmd));

  program
    .command('completion')
    .description('Generate a shell completion script')
    .argument('<shell>', 'bash, zsh or fish')
    .action(action(async () => (await sys()).completionCmd));

  return program;
}

