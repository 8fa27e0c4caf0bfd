#!/usr/bin/env bash
# The overlayfs experiment of seed article 000, replayed through strata:
# a busybox image, a writable layer on it, copy-up, a new file, a whiteout, an opaque
# directory, and `strata diff`. Run as root on Debian. Leaves its store in $STRATA_ROOT.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

scripts/setup.sh
echo "== building strata"
cargo build --release -q -p strata
strata() { target/release/strata "$@"; }

export STRATA_ROOT=${STRATA_ROOT:-/tmp/strata-demo}
export STRATA_STORAGE_DRIVER=${STRATA_STORAGE_DRIVER:-overlay2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -d "$STRATA_ROOT" ]; then
  echo "== removing the previous demo store $STRATA_ROOT"
  for name in $(strata layers -q 2>/dev/null); do strata rm -f "$name" >/dev/null; done
  rm -rf "$STRATA_ROOT"
fi

echo "== making a base image from Debian's busybox-static"
rootfs=$work/rootfs
mkdir -p "$rootfs"/{bin,etc,tmp,root,srv/low,var/log}
cp /bin/busybox "$rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -s busybox "$rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$rootfs/etc/passwd"
echo 'root:x:0:' > "$rootfs/etc/group"
echo 'abs' > "$rootfs/srv/11.txt"                 # the seed's lower file
echo 'log line' > "$rootfs/var/log/boot.log"
for i in 1 2 3; do echo "old $i" > "$rootfs/srv/low/old-$i"; done
chmod 1777 "$rootfs/tmp"
tar --numeric-owner -C "$rootfs" -cf "$work/busybox.tar" .
strata import "$work/busybox.tar" busybox:latest
strata images

echo; echo "== strata info"
strata info

echo; echo "== mounting a writable layer on busybox:latest"
merged=$(strata mount --name demo busybox:latest)
upper=$(strata inspect demo | sed -n 's/.*"UpperDir": "\(.*\)".*/\1/p')
lower=$(strata inspect demo | sed -n 's/.*"LowerDir": "\([^:"]*\).*/\1/p')
echo "merged: $merged"
echo "upper:  $upper"
echo "lower:  $lower"
ls "$merged"

echo; echo "== modify an image file: it is copied up, the lower copy is untouched"
echo 'Hello ,overlayfs!' > "$merged/srv/11.txt"
echo "merged/srv/11.txt: $(cat "$merged/srv/11.txt")"
echo "upper/srv/11.txt:  $(cat "$upper/srv/11.txt")"
echo "lower/srv/11.txt:  $(cat "$lower/srv/11.txt")"

echo; echo "== create a file: it exists only in the upper dir"
echo 'xuxuebiao' > "$merged/srv/22.txt"
ls -l "$upper/srv/22.txt"

echo; echo "== delete an image file: a 0/0 character device (whiteout) appears in the upper dir"
rm "$merged/var/log/boot.log"
ls -l "$upper/var/log/boot.log"
ls "$merged/var/log"

echo; echo "== delete a directory and create it again: the new one is opaque"
rm -r "$merged/srv/low"
mkdir "$merged/srv/low" && echo new > "$merged/srv/low/new-1"
getfattr -n trusted.overlay.opaque "$upper/srv/low" 2>/dev/null || echo "(opaque xattr: $(getfattr --only-values -n trusted.overlay.opaque "$upper/srv/low"))"
ls "$merged/srv/low"

echo; echo "== strata diff demo"
strata diff demo

echo
echo "The store is in $STRATA_ROOT. Explore with: STRATA_ROOT=$STRATA_ROOT target/release/strata --help"
echo "Clean up with: STRATA_ROOT=$STRATA_ROOT target/release/strata rm -f demo && rm -rf $STRATA_ROOT"
