#!/usr/bin/env bash
# Prints the path of a cached Debian bookworm minbase root filesystem tarball, making it first if
# it is missing (debootstrap from deb.debian.org, about 30 s; the only download the bench does).
# Usage: debootstrap-base.sh [CACHE_DIR]     (default $BENCH_CACHE or /var/cache/barge-bench)
# DEBOOTSTRAP_INCLUDE=gcc,libc6-dev adds packages (debootstrap --include); each package list is
# a tarball of its own (test/build's gcc base uses this).
#
# The tar holds numeric owners, and no device nodes (/dev is left empty, as in distribution
# images), so both `barge import` and `buildah add` can unpack it. It is written once and reused
# by every later run; delete it to refresh. Concurrent runs serialize on a lock file.
set -euo pipefail

cache=${1:-${BENCH_CACHE:-/var/cache/barge-bench}}
suite=${BENCH_SUITE_DIST:-bookworm}
mirror=${BENCH_MIRROR:-http://deb.debian.org/debian}
include=${DEBOOTSTRAP_INCLUDE:-}
out=$cache/$suite-minbase${include:+-${include//,/+}}.tar

# A cached base is renamed into place whole, so it needs no lock (nor write access) to be used.
if [ -s "$out" ]; then echo "$out"; exit 0; fi
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9

if [ ! -s "$out" ]; then
  command -v debootstrap >/dev/null || { echo "debootstrap-base: debootstrap not installed (apt-get install debootstrap)" >&2; exit 1; }
  stage=$(mktemp -d "$cache/stage.XXXXXX")
  trap 'rm -rf "$stage"' EXIT
  echo "bench: debootstrap --variant=minbase ${include:+--include=$include }$suite (once; cached as $out)" >&2
  if ! debootstrap --variant=minbase ${include:+--include="$include"} "$suite" "$stage/rootfs" "$mirror" >"$stage/log" 2>&1; then
    tail -20 "$stage/log" >&2
    echo "debootstrap-base: debootstrap failed" >&2
    exit 1
  fi
  tar --numeric-owner --sort=name -C "$stage/rootfs" --exclude='./dev/*' -cf "$stage/rootfs.tar" .
  mv "$stage/rootfs.tar" "$out"
fi
echo "$out"
