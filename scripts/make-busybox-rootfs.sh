#!/usr/bin/env bash
# Writes a minimal busybox root filesystem as an uncompressed tar: the test and demo base image.
# Usage: make-busybox-rootfs.sh OUT.tar        (BUSYBOX=/path/to/static/busybox to override)
#
# The tar is reproducible (sorted names, fixed mtimes, numeric owners), so importing it twice
# yields the same layer digest. It needs neither root nor a user namespace: ownership is set by
# tar's --owner/--group instead of chown.
set -euo pipefail

out=${1:?usage: make-busybox-rootfs.sh OUT.tar}
busybox=${BUSYBOX:-}
if [ -z "$busybox" ]; then
  for c in /bin/busybox /usr/bin/busybox "$(command -v busybox || true)"; do
    [ -n "$c" ] && [ -x "$c" ] && { busybox=$c; break; }
  done
fi
[ -n "$busybox" ] || { echo "make-busybox-rootfs: busybox not found (apt-get install busybox-static)" >&2; exit 1; }
# A dynamically linked busybox would need the host's libc inside the image.
if ldd "$busybox" >/dev/null 2>&1; then
  echo "make-busybox-rootfs: $busybox is dynamically linked; install busybox-static" >&2
  exit 1
fi

# Fixed timestamps keep the layer digest stable across machines and runs.
mtime=${SOURCE_DATE_EPOCH:-1704067200}

stage=$(mktemp -d "${TMPDIR:-/tmp}/busybox-rootfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT
r=$stage/rootfs
umask 022
mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc,dev,proc,sys,run,home,root,tmp,var/tmp,var/www,srv}

install -m 0755 "$busybox" "$r/bin/busybox"
# --list-full gives each applet's conventional directory (bin/sh, usr/bin/env, sbin/ip, ...).
"$busybox" --list-full | while IFS= read -r applet; do
  [ -n "$applet" ] || continue
  [ "$applet" = bin/busybox ] && continue
  mkdir -p "$r/$(dirname "$applet")"
  ln -sfn /bin/busybox "$r/$applet"
done
[ -e "$r/bin/sh" ] || ln -s /bin/busybox "$r/bin/sh"

cat >"$r/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$r/etc/group" <<'EOF'
root:x:0:
daemon:x:1:
bin:x:2:
tty:x:5:
www-data:x:33:
users:x:100:
nogroup:x:65534:
EOF
chmod 0644 "$r/etc/passwd" "$r/etc/group"
chmod 0700 "$r/root"
chmod 1777 "$r/tmp" "$r/var/tmp"

tarflags=(--format=gnu --sort=name --mtime="@$mtime" --numeric-owner)
tmp_out=$out.tmp.$$
# Everything root-owned, except /var/www which belongs to www-data (33:33): tests check that
# ownership survives import, copy and commit.
# Entry names without a "./" prefix, as in layers that registries serve.
mapfile -t top < <(cd "$r" && LC_ALL=C ls -A)
tar -C "$r" "${tarflags[@]}" --owner=0 --group=0 --exclude=var/www -cf "$tmp_out" "${top[@]}"
tar -C "$r" "${tarflags[@]}" --owner=33 --group=33 -rf "$tmp_out" var/www
mv -f "$tmp_out" "$out"
