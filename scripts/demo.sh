#!/usr/bin/env bash
# The main job end to end, with a locally made busybox image and no registry:
# import a base image, build on it with barge's primitives, commit, and run the result.
# Uses a throwaway store under a temp dir (KEEP=1 keeps it for inspection).
set -euo pipefail

repo=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
barge_bin=$repo/bin/barge
if [ ! -f "$repo/dist/main.cjs" ]; then
  echo "demo.sh: barge is not built; run: sudo bash scripts/setup.sh" >&2
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/barge-demo.XXXXXX")
root=$work/root
runroot=$work/runroot
mkdir -p "$root" "$runroot"

# Mounts made by barge under the store must go before the directory can be removed:
# deepest first, lazily, so a busy mount does not block the rest.
unmount_under() {
  local dir=$1 round p
  for round in 1 2 3; do
    mapfile -t points < <(awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo |
      awk '{ print gsub("/", "/"), $0 }' | sort -rn | cut -d' ' -f2-)
    [ "${#points[@]}" -gt 0 ] || return 0
    for p in "${points[@]}"; do umount -l "$p" 2>/dev/null || true; done
  done
}
cleanup() {
  local rc=$?
  "$barge_bin" --root "$root" --runroot "$runroot" rm --all >/dev/null 2>&1 || true
  unmount_under "$work"
  if [ "${KEEP:-0}" = 1 ]; then
    echo "store kept in $work"
  else
    rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT

# Quotes an argument only when the shell would need it, so the trace can be pasted back.
shell_quote() {
  if [[ $1 =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then printf '%s' "$1"; else printf "'%s'" "${1//\'/\'\\\'\'}"; fi
}
# Shows each barge command as a user would type it (on stderr, like set -x, so $(...) captures
# only barge's output); the store flags are the same throughout and shown once.
barge() {
  local a line='$ barge'
  for a in "$@"; do line+=" $(shell_quote "$a")"; done
  printf '\n%s\n' "$line" >&2
  "$barge_bin" --root "$root" --runroot "$runroot" "$@"
}
say() { printf '\n# %s\n' "$*" >&2; }

say "store: --root $root --runroot $runroot"

say "make a busybox root filesystem tarball"
printf '$ scripts/make-busybox-rootfs.sh %s\n' "$work/rootfs.tar" >&2
bash "$repo/scripts/make-busybox-rootfs.sh" "$work/rootfs.tar"
echo "hello from the host" >"$work/some-file"

say "build: import a base image, make a working container, change it, commit it"
barge import "$work/rootfs.tar" busybox
ctr=$(barge from busybox)
echo "$ctr"
barge copy "$ctr" "$work/some-file" /srv/
barge run "$ctr" -- sh -c 'echo built > /srv/built'
barge config --cmd '["cat","/srv/built"]' --label demo=1 "$ctr"
barge commit "$ctr" demo-image

say "use: a new working container from the committed image"
ctr2=$(barge from demo-image)
echo "$ctr2"
out=$(barge run "$ctr2" -- cat /srv/built)
echo "$out"
copied=$(barge run "$ctr2" -- cat /srv/some-file)
echo "$copied"
barge images

say "build from a Containerfile (multi-stage), then run a container from the image, as podman run does"
barge build -t hello --build-arg VERSION=2.0 "$repo/containerfiles/multi-stage"
greeting=$(barge run --rm --network none hello)
echo "$greeting"
barge run --rm demo-image

if [ "$out" != built ] || [ "$copied" != "hello from the host" ]; then
  echo "demo.sh: FAILED: expected 'built' and the copied file in the committed image" >&2
  exit 1
fi
if [ "$greeting" != "hello from version 2.0" ]; then
  echo "demo.sh: FAILED: the built image printed '$greeting'" >&2
  exit 1
fi
say "demo OK"
