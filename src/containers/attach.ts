// `podman attach`: barge's stdio joined to a container that conmon monitors, through conmon's
// attach socket (SOCK_SEQPACKET: each packet from conmon is one byte naming the stream, 2 stdout
// or 3 stderr, then the data; what barge sends is the container's stdin as is) and its ctl FIFO
// (terminal resizes as "1 ROWS COLS\n"). Node has no SOCK_SEQPACKET, hence node-unix-socket.

import { closeSync, openSync, writeSync, constants } from 'node:fs';
import { join } from 'node:path';
import type { Store } from '../store/store.ts';
import { ContainerError, liveState, pathsOf, signalContainer, waitExited } from './lifecycle.ts';
import { loadContainer, type Container } from './record.ts';

const STDOUT = 2;
const STDERR = 3;
// conmon reads the socket into a buffer of this size: a larger packet would be cut.
const MAX_PACKET = 4096;
/** What Podman's signal proxy forwards (as for a foreground run). */
const PROXIED: NodeJS.Signals[] = ['SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGALRM', 'SIGTERM'];

export interface AttachOptions {
  /** Relay barge's stdin (only for a container created with -i). */
  stdin: boolean;
  /** Forward the signals barge receives to the container (not with a terminal: keys go through it). */
  sigProxy: boolean;
  /** --detach-keys, e.g. "ctrl-p,ctrl-q"; "" disables detaching. */
  detachKeys: string;
}

export const DEFAULT_DETACH_KEYS = 'ctrl-p,ctrl-q';

/** Podman's --detach-keys: comma-separated "ctrl-X" (X in a-z, @, [, \, ], ^, _) or single characters. */
export function parseDetachKeys(spec: string): number[] {
  if (spec === '') return [];
  return spec.split(',').map((k) => {
    const m = /^ctrl-([a-z@[\\\]^_])$/.exec(k);
    if (m) return m[1]!.charCodeAt(0) & 0x1f;
    if (k.length === 1) return k.charCodeAt(0);
    throw new ContainerError(`invalid detach keys "${spec}": expected comma-separated ctrl-<a-z@[\\]^_> or single characters`);
  });
}

/** Finds the detach sequence in a stream split into chunks (a sequence may span chunks). */
class DetachMatcher {
  private matched = 0;
  constructor(private readonly keys: number[]) {}

  /** The bytes to send on, and whether the sequence completed. */
  feed(chunk: Buffer): { send: Buffer; detach: boolean } {
    if (this.keys.length === 0) return { send: chunk, detach: false };
    const out: number[] = [];
    for (const b of chunk) {
      if (b === this.keys[this.matched]) {
        this.matched++;
        if (this.matched === this.keys.length) return { send: Buffer.from(out), detach: true };
        continue;
      }
      // A broken sequence is ordinary input after all.
      out.push(...this.keys.slice(0, this.matched));
      this.matched = 0;
      if (b === this.keys[0]) this.matched = 1;
      else out.push(b);
    }
    return { send: Buffer.from(out), detach: false };
  }
}

export type Seqpacket = InstanceType<(typeof import('node-unix-socket'))['SeqpacketSocket']>;

/**
 * Connects to conmon's attach socket. The path through /proc/self/fd keeps it under the 108 bytes
 * a socket address can hold, whatever the length of the runroot.
 */
export async function connectAttachSocket(bundleDir: string): Promise<Seqpacket> {
  const { default: unix } = (await import('node-unix-socket')) as { default: typeof import('node-unix-socket') };
  const dirFd = openSync(bundleDir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    const sock = new unix.SeqpacketSocket();
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      try {
        sock.connect(`/proc/self/fd/${dirFd}/attach`, () => {
          sock.off('error', reject);
          // Keep barge alive while attached, also when nothing else (stdin) would.
          sock.ref();
          resolve();
        });
      } catch (e) {
        reject(e as Error);
      }
    });
    return sock;
  } finally {
    closeSync(dirFd);
  }
}

/** Tells conmon the terminal's size (it sets it on the container's pty). */
function sendSize(ctlPath: string): void {
  const { rows, columns } = process.stdout;
  if (!rows || !columns) return;
  try {
    const fd = openSync(ctlPath, constants.O_WRONLY | constants.O_NONBLOCK);
    try {
      writeSync(fd, `1 ${rows} ${columns}\n`);
    } finally {
      closeSync(fd);
    }
  } catch {
    // conmon gone: the container is exiting.
  }
}

/**
 * Relays between barge's stdio and an attach socket until conmon closes it (the container
 * exited) or the user types the detach keys.
 */
export function relayAttach(
  sock: Seqpacket,
  o: { terminal: boolean; stdin: boolean; detachKeys: string; ctlPath: string; output?: boolean; signal?: AbortSignal },
): Promise<'exited' | 'detached'> {
  const { terminal, stdin } = o;
  const matcher = new DetachMatcher(parseDetachKeys(o.detachKeys));
  const raw = stdin && terminal && process.stdin.isTTY;
  return new Promise((resolve) => {
    let done = false;
    const finish = (how: 'exited' | 'detached'): void => {
      if (done) return;
      done = true;
      if (stdin) {
        process.stdin.off('data', onInput);
        process.stdin.pause();
        if (raw) process.stdin.setRawMode(false);
      }
      if (terminal) process.stdout.off('resize', onResize);
      sock.destroy();
      resolve(how);
    };
    const onInput = (b: Buffer): void => {
      const { send, detach } = matcher.feed(b);
      for (let i = 0; i < send.length; i += MAX_PACKET) sock.write(send.subarray(i, i + MAX_PACKET));
      if (detach) finish('detached');
    };
    const onResize = (): void => sendSize(o.ctlPath);
    sock.on('data', (b: Buffer) => {
      if (b.length === 0 || o.output === false) return;
      const data = b.subarray(1);
      if (b[0] === STDOUT) process.stdout.write(data);
      else if (b[0] === STDERR) process.stderr.write(data);
    });
    // The caller knows another way that the container has exited (its log and state).
    o.signal?.addEventListener('abort', () => finish('exited'));
    sock.once('end', () => finish('exited'));
    sock.once('close', () => finish('exited'));
    sock.once('error', () => finish('exited'));
    if (terminal) {
      sendSize(o.ctlPath);
      process.stdout.on('resize', onResize);
    }
    if (stdin) {
      if (raw) process.stdin.setRawMode(true);
      process.stdin.on('data', onInput);
      // The end of barge's input is the end of the container's (conmon closes its stdin).
      process.stdin.once('end', () => {
        if (!done) sock.end();
      });
      process.stdin.resume();
    }
  });
}

/** Forwards the signals barge receives to the container's process; returns the undo. */
export function proxySignals(store: Store, id: string): () => void {
  const handler = (sig: NodeJS.Signals): void => {
    void signalContainer(store, id, sig).catch(() => undefined);
  };
  for (const s of PROXIED) process.on(s, handler);
  return () => {
    for (const s of PROXIED) process.off(s, handler);
  };
}

/**
 * `podman attach`: resolves with the container's exit code once it exits, or 0 when the user
 * detaches (the container runs on).
 */
export async function attachContainer(store: Store, ref: string, o: AttachOptions): Promise<number> {
  const c = loadContainer(store, ref);
  const s = liveState(store, c);
  if (s.status !== 'running' || s.monitor !== 'conmon') {
    throw new ContainerError(
      s.status === 'running' ? `container ${c.record.name} runs in the foreground of another barge: only containers started with -d or start can be attached to` : 'you can only attach to running containers',
    );
  }
  const p = pathsOf(store, c);
  const sock = await connectAttachSocket(p.userdata).catch((e: unknown) => {
    throw new ContainerError(`attaching to ${c.record.name}: ${(e as Error).message}`);
  });
  return followAttached(store, c, sock, o, join(p.userdata, 'ctl'));
}

/** Relays until the container exits (its exit code) or the user detaches (0). */
export async function followAttached(store: Store, c: Container, sock: Seqpacket, o: AttachOptions, ctlPath: string): Promise<number> {
  // With a terminal, ^C and the like are keys the container's terminal turns into signals itself.
  const unproxy = o.sigProxy && !c.data.config.terminal ? proxySignals(store, c.record.id) : () => {};
  try {
    const how = await relayAttach(sock, {
      terminal: c.data.config.terminal, stdin: o.stdin && c.data.config.interactive, detachKeys: o.detachKeys, ctlPath,
    });
    if (how === 'detached') return 0;
  } finally {
    unproxy();
  }
  const st = await waitExited(store, c.record.id);
  return st?.exitCode ?? 0;
}
