// `podman commit`: a container made by run or create becomes an image. Its changes become one
// layer as a working container's do (primitives/commit.ts); the image's config is its image's,
// with the settings the container ran with, as Podman writes them: entrypoint, command, the whole
// environment, working directory, user and labels, then the --change instructions.

import type { Store } from '../store/store.ts';
import { findImage, readImageConfig, readImageManifest } from '../image/local-images.ts';
import { emptyImageConfig, type Builder } from '../primitives/builder.ts';
import { applyChanges } from '../primitives/config.ts';
import { containerFiles, liveState, pauseContainer } from './lifecycle.ts';
import { ContainerError, loadContainer, type Container } from './record.ts';
import { volumesOf } from './volumes.ts';
import { secretTargets } from './secrets.ts';
import { containerEvent } from './events.ts';

/** Podman's commit options that shape the image config (working containers take them too). */
export interface CommitConfigOptions {
  author?: string;
  message?: string;
  changes?: readonly string[];
  /** --unsetenv: variables removed from the image's environment. */
  unsetEnv?: readonly string[];
}

/**
 * The working-container view of a Podman-style container, with the image config its commit gets.
 * With `includeVolumes` the destinations of its --volume and --mount binds and volumes become image volumes.
 */
export async function builderOfContainer(store: Store, ref: string, includeVolumes = false): Promise<Builder> {
  const c = loadContainer(store, ref);
  const cfg = c.data.config;
  const img = findImage(store, cfg.imageId);
  // The image may be gone (rmi -f): its layers stay as long as the container does.
  const image = img ? await readImageConfig(store, img) : emptyImageConfig();
  const annotations = img ? { ...((await readImageManifest(store, img)).annotations ?? {}) } : {};
  image.config = {
    ...image.config,
    Entrypoint: cfg.entrypoint,
    Cmd: cfg.cmd,
    Env: cfg.env,
    WorkingDir: cfg.workingDir,
    ...(cfg.user !== '' && { User: cfg.user }),
    Labels: { ...image.config?.Labels, ...cfg.labels },
  };
  if (image.config.Entrypoint?.length === 0) delete image.config.Entrypoint;
  if (includeVolumes) {
    const binds = [...cfg.mounts.filter((m) => m.type !== 'tmpfs'), ...volumesOf(cfg)].map((m) => m.destination);
    image.config.Volumes = { ...image.config.Volumes, ...Object.fromEntries(binds.map((d) => [d, {}])) };
  }
  return {
    container: c.record,
    state: {
      fromImage: img?.names[0] ?? cfg.image, fromImageId: cfg.imageId, fromImageDigest: img?.manifestDigest ?? '',
      config: { image, annotations },
      runMountTargets: mountTargets(c), isolation: 'oci', ...(cfg.userns && { userns: cfg.userns }),
    },
  };
}

/** --author, --message and --change applied to what the commit will write. */
export function applyCommitOptions(b: Builder, o: CommitConfigOptions): void {
  const cfg = b.state.config;
  if (o.author !== undefined) cfg.image.author = o.author;
  if (o.message !== undefined) cfg.historyComment = o.message;
  cfg.image = applyChanges(cfg.image, o.changes ?? []);
  const unset = new Set(o.unsetEnv ?? []);
  const env = cfg.image.config?.Env;
  if (unset.size && env) cfg.image.config!.Env = env.filter((e) => !unset.has(e.split('=', 1)[0]!));
}

/**
 * Where the runtime may have made empty files and directories to mount on: left out of the layer
 * while they are still empty, as Podman leaves out its /etc/hosts and the like.
 */
function mountTargets(c: Container): string[] {
  const cfg = c.data.config;
  return [
    ...containerFiles(cfg).map((f) => f.destination), ...cfg.mounts.map((m) => m.destination), ...volumesOf(cfg).map((m) => m.destination),
    ...(cfg.devices ?? []).map((d) => d.pathInContainer),
    ...secretTargets(cfg),
    '/proc', '/dev', '/sys', '/dev/shm', '/run', '/tmp', cfg.workingDir || '/',
  ];
}

/** Runs `commit` with the container frozen when `pause` asks for it and the container is running. */
export async function withPaused<T>(store: Store, ref: string, pause: boolean, commit: () => Promise<T>): Promise<T> {
  // A container the user paused stays paused; one that is not running has nothing to freeze.
  if (!pause || liveState(store, loadContainer(store, ref)).status !== 'running') return commit();
  await pauseContainer(store, ref, true).catch((e: unknown) => {
    throw new ContainerError(`pausing container "${loadContainer(store, ref).record.id}" to commit: ${(e as Error).message}`);
  });
  try {
    return await commit();
  } finally {
    await pauseContainer(store, ref, false);
  }
}

/** Podman records a commit as an event of the container (the image it made gets none). */
export function recordCommit(store: Store, id: string): void {
  containerEvent(store, loadContainer(store, id), 'commit');
}
