#!/usr/bin/env bash
# Parity check against a real dockerd: import the same busybox rootfs tar into dockerd and into
# strata, make the same changes in a container / writable layer, and compare
#   - the image layer's diffID (both should be sha256 of the uncompressed tar),
#   - `docker diff` against strata's change listing, side by side.
# Run on demand as root: bench/docker-parity.sh   (exit 0: match, 1: mismatch, 2: could not run)
#
# strata side: the `strata` CLI only (`import`, `mount --name`, `inspect`, `diff`); build it
# first with `cargo build --release -p strata`. STRATA_PARITY_DRIVER=vfs|overlay2 (default
# overlay2) picks strata's storage driver; dockerd always runs overlay2. The layer export is not
# compared: the CLI has no commit/export yet.

set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib/dockerd.sh

WORK=${STRATA_PARITY_WORK:-/tmp/strata-parity}
STRATA_BIN=${STRATA_BIN:-target/release/strata}
DRIVER=${STRATA_PARITY_DRIVER:-overlay2}

# The changes made on both sides, run by busybox sh inside the container / chroot.
CHANGES='
set -e
echo "extra:x:1000:1000:extra:/home/extra:/bin/sh" >> /etc/passwd
mkdir /srv/new && echo hello > /srv/new/file
rm /etc/motd
rm -r /opt/app && mkdir /opt/app && echo fresh > /opt/app/fresh
mv /usr/share/old /usr/share/renamed
chmod 700 /usr/bin/tool
'

# A small rootfs from busybox-static, with fixed mtimes so the tar is reproducible.
make_rootfs_tar() {
    local root=$WORK/rootfs out=$1 a
    rm -rf "$root"
    mkdir -p "$root"/{bin,etc,dev,proc,sys,tmp,root,srv,var/log,usr/bin} \
        "$root"/opt/app/sub "$root"/usr/share/old/deeper
    cp /bin/busybox "$root/bin/busybox"
    for a in $(/bin/busybox --list); do
        [ "$a" = busybox ] || ln -s busybox "$root/bin/$a"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
    echo "welcome" >"$root/etc/motd"
    echo a >"$root/opt/app/a"
    echo b >"$root/opt/app/sub/b"
    echo x >"$root/usr/share/old/x"
    echo y >"$root/usr/share/old/deeper/y"
    printf '#!/bin/sh\necho tool\n' >"$root/usr/bin/tool"
    chmod 755 "$root/usr/bin/tool"
    chmod 1777 "$root/tmp"
    # --sort/--mtime/--numeric-owner: the same bytes every run.
    tar --sort=name --mtime=@1700000000 --numeric-owner --owner=0 --group=0 \
        -C "$root" -cf "$out" .
}

# The strata CLI on this run's store, with the driver under test.
strata() { "$STRATA_BIN" --root "$WORK/strata" --storage-driver "$DRIVER" "$@"; }

strata_check() {
    if [ ! -x "$STRATA_BIN" ]; then
        echo "no strata binary at $STRATA_BIN (cargo build --release -p strata)" >&2
        exit 2
    fi
}

# The image layer's diffID: `inspect` gives ParentLayer, the image's top chainID, which for a
# one-layer image is its diffID.
strata_diff_id() {
    strata inspect w | python3 -c '
import json, sys
print(json.load(sys.stdin).get("ParentLayer") or "unknown (no ParentLayer in strata inspect)")'
}
strata_cleanup() {
    strata rm --force w >/dev/null 2>&1 || true
    _dockerd_unmount_under "$WORK/strata"
}

# Runs the changes in a container (kept, for `docker diff`). `docker run` works with this
# dockerd (cgroup v1 hierarchy, runc 1.1); were it not to, `docker cp` could not make the same
# deletions, so we stop rather than compare something else.
docker_changes() {
    docker run --name parity --network none busybox:latest /bin/sh -c "$CHANGES" && return 0
    echo "docker run failed (see $STRATA_REF_DOCKER_LOG); cannot make the changes in docker" >&2
    return 1
}

main() {
    [ "$(id -u)" = 0 ] || { echo "run as root (overlay mounts, dockerd)" >&2; exit 2; }
    rm -rf "$WORK"
    mkdir -p "$WORK"
    local tar=$WORK/busybox-rootfs.tar
    make_rootfs_tar "$tar"
    local want
    want=sha256:$(sha256sum "$tar" | cut -d' ' -f1)

    strata_check
    trap 'strata_cleanup; dockerd_stop' EXIT
    dockerd_start || exit 2

    docker import "$tar" busybox:latest >/dev/null
    local docker_id strata_id
    docker_id=$(docker image inspect -f '{{json .RootFS.Layers}}' busybox:latest | tr -d '[]"')
    strata import "$tar" busybox:latest >/dev/null

    local merged
    merged=$(strata mount --name w busybox:latest)
    if [ ! -x "$merged/bin/busybox" ]; then
        echo "strata ($DRIVER) mounted nothing usable at '$merged'" >&2
        exit 2
    fi
    strata_id=$(strata_diff_id)
    docker_changes || exit 2
    chroot "$merged" /bin/sh -c "$CHANGES"

    docker diff parity | sort -k2 >"$WORK/docker.diff"
    strata diff w | sort -k2 >"$WORK/strata.diff"

    echo "strata driver: $DRIVER (dockerd: overlay2)"
    echo "tar sha256:      $want"
    echo "docker diffID:   $docker_id"
    echo "strata diffID:   $strata_id"
    local ok=0
    if [ "$docker_id" = "$want" ] && [ "$strata_id" = "$want" ]; then
        echo "diffIDs: match"
    else
        echo "diffIDs: DIFFER"
        ok=1
    fi
    echo
    printf '%-40s %s\n' "docker diff" "strata diff"
    printf '%-40s %s\n' "-----------" "-----------"
    diff --side-by-side --width=81 "$WORK/docker.diff" "$WORK/strata.diff" || true
    if cmp -s "$WORK/docker.diff" "$WORK/strata.diff"; then
        echo "changes: match"
    else
        echo "changes: DIFFER (lines marked | < > above)"
        ok=1
    fi
    docker rm -f parity >/dev/null 2>&1 || true
    return $ok
}

main "$@"
