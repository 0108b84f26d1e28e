#!/usr/bin/env bash
# A/B of barge's container start and stop against an earlier commit, on one machine and in one run:
# `bash scripts/bench/ab-run.sh REV [N]` builds REV in a worktree, then alternates the two builds
# (each with its own store and code cache) over N rounds of `run -d` + `stop` + `rm` + `run --rm … true`
# with crun, and prints the median of each step in ms. Needs root, crun and the repo's node_modules.
# A ratio against Podman moves with Podman's times and the machine's load; this compares barge alone.
set -euo pipefail
rev=${1:?usage: ab-run.sh REV [N]}
n=${2:-10}
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/barge-ab-XXXXXX)
trap 'git -C "$repo" worktree remove --force "$work/old" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
git -C "$repo" worktree add -q --detach "$work/old" "$rev"
ln -s "$repo/node_modules" "$work/old/node_modules"
(cd "$work/old" && node scripts/build.mjs)
bash "$repo/scripts/make-busybox-rootfs.sh" "$work/busybox.tar" >/dev/null
declare -A bin=([old]="$work/old/bin/barge" [new]="$repo/bin/barge")
barge() { # build, then its arguments
  local b=$1; shift
  XDG_CACHE_HOME="$work/$b/cache" "${bin[$b]}" --root "$work/$b/root" --runroot "$work/$b/run" --runtime crun "$@"
}
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
for b in old new; do barge "$b" import -q "$work/busybox.tar" localhost/busybox >/dev/null; done
for i in $(seq $((n + 3))); do
  for b in old new; do
    # Exits as soon as TERM arrives, as the bench's service does: stop measures barge, not a timeout.
    t=$(date +%s%N); id=$(barge "$b" run -d --network none localhost/busybox sh -c 'trap "exit 0" TERM; sleep 60 & wait'); d=$(ms "$t")
    t=$(date +%s%N); barge "$b" stop "$id" >/dev/null; s=$(ms "$t")
    t=$(date +%s%N); barge "$b" rm "$id" >/dev/null; r=$(ms "$t")
    t=$(date +%s%N); barge "$b" run --rm --network none localhost/busybox true; x=$(ms "$t")
    # The first rounds fill each build's code cache.
    [ "$i" -gt 3 ] && echo "$b $d $s $r $x"
  done
done | python3 -c '
import sys, statistics
rows = {}
for line in sys.stdin:
    b, *v = line.split(); rows.setdefault(b, []).append([int(x) for x in v])
print("build   run -d    stop      rm   run --rm   (median ms of %d rounds)" % len(rows["new"]))
for b in ("old", "new"):
    cols = list(zip(*rows[b])); print("%-6s %7.1f %7.1f %7.1f %9.1f" % (b, *(statistics.median(c) for c in cols)))
'
