// Podman's "file" events backend: every event is one JSON line appended to
// $runroot/events/events.log (Podman keeps it in its tmpdir, /run/libpod/events/events.log). Each
// line goes out in a single write(2) on an O_APPEND descriptor, so lines from concurrent barge
// processes (conmon's exit commands among them) never interleave. The log is rotated once it
// passes MAX_LOG_SIZE: renamed to events.log.1 (replacing the previous one), so it never holds
// more than about twice that; readers read events.log.1 first.

import { closeSync, mkdirSync, openSync, renameSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Store } from '../store/store.ts';
import type { Container } from './record.ts';

/** Podman's events_logfile_max_size default (1 MB). */
export const MAX_LOG_SIZE = 1_000_000;

export type EventType = 'container' | 'image' | 'volume' | 'pod' | 'system' | 'network';

/** One event, with the fields (and field order) of Podman's JSON lines. */
export interface BargeEvent {
  ContainerExitCode?: number;
  ID?: string;
  Image?: string;
  Name?: string;
  Network?: string;
  Status: string;
  /** RFC 3339 with nanoseconds, UTC. */
  Time: string;
  Type: EventType;
  /** A health_status event's status (Podman 4.3's JSON key, after Type). */
  health_status?: string;
  /** A container's labels; null for the other types, as Podman writes. */
  Attributes: Record<string, string> | null;
}

export function eventsLogPath(store: Store): string {
  return join(store.runroot, 'events', 'events.log');
}

/**
 * Now, in nanoseconds: the wall clock is read once (Date.now() has only milliseconds) and the
 * monotonic clock counts from there, so one process's events never go back in time.
 */
let clock: { wall: bigint; mono: bigint } | undefined;
function nowNs(): bigint {
  clock ??= { wall: BigInt(Date.now()) * 1_000_000n, mono: process.hrtime.bigint() };
  return clock.wall + (process.hrtime.bigint() - clock.mono);
}

/** Go's RFC3339Nano: the fraction without its trailing zeros. */
function rfc3339Nano(ns: bigint): string {
  const ms = Number(ns / 1_000_000n);
  const frac = String(ns % 1_000_000_000n).padStart(9, '0').replace(/0+$/, '');
  return `${new Date(ms).toISOString().slice(0, 19)}${frac ? `.${frac}` : ''}Z`;
}

/**
 * Appends the event to the log. An event that cannot be written never fails the command that
 * caused it (Podman only logs such errors).
 */
export function writeEvent(store: Store, e: Omit<BargeEvent, 'Time'>): void {
  // Podman's key order (its Go struct's): Time comes between Status and Type, health_status after Type.
  const { Type, health_status, Attributes, ...rest } = e;
  const line = `${JSON.stringify({ ...rest, Time: rfc3339Nano(nowNs()), Type, ...(health_status !== undefined && { health_status }), Attributes })}\n`;
  const path = eventsLogPath(store);
  try {
    mkdirSync(join(store.runroot, 'events'), { recursive: true, mode: 0o700 });
    rotate(path);
    const fd = openSync(path, 'a', 0o600);
    try {
      writeSync(fd, line);
    } finally {
      closeSync(fd);
    }
  } catch {
    // See above: the event is lost, the command goes on.
  }
}

function rotate(path: string): void {
  let size: number;
  try {
    size = statSync(path).size;
  } catch {
    return;
  }
  // Two processes may both rotate; the second then moves a nearly empty log over the first's .1,
  // losing at most the few lines written in between.
  if (size >= MAX_LOG_SIZE) renameSync(path, `${path}.1`);
}

/** What some container events carry besides the container: died's and exec_died's exit code, health_status's status. */
export interface ContainerEventExtra {
  exitCode?: number | null;
  health?: string;
}

/**
 * A container's event: its id, image and name, and its labels as attributes. An exit code of 0 is
 * left out, as Podman's Go struct omits a zero ContainerExitCode.
 */
export function containerEvent(store: Store, c: Container, status: string, extra: ContainerEventExtra = {}): void {
  const { exitCode, health } = extra;
  writeEvent(store, {
    ...(exitCode !== undefined && exitCode !== null && exitCode !== 0 && { ContainerExitCode: exitCode }),
    ID: c.record.id, Image: c.record.imageName ?? c.record.imageId ?? '', Name: c.record.name, Status: status, Type: 'container',
    ...(health !== undefined && { health_status: health }),
    Attributes: { ...c.data.config.labels },
  });
}

/** An image's event: `name` is the reference the user gave (pull, tag), `id` the image's id. */
export function imageEvent(store: Store, status: string, o: { id?: string; name?: string }): void {
  writeEvent(store, { ...(o.id && { ID: o.id }), ...(o.name && { Name: o.name }), Status: status, Type: 'image', Attributes: null });
}

export function volumeEvent(store: Store, status: string, name: string): void {
  writeEvent(store, { Name: name, Status: status, Type: 'volume', Attributes: null });
}
