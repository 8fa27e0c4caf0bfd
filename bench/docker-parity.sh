#!/usr/bin/env bash
# Parity check against a real dockerd: import the same busybox rootfs tar into dockerd and into
# strata, make the same changes in a container / writable layer, and compare
#   - the image layer's diffID (both should be sha256 of the uncompressed tar),
#   - `docker diff` against strata's change listing, side by side.
# Run on demand as root: bench/docker-parity.sh   (exit 0: match, 1: mismatch, 2: could not run)
#
# strata side: the `strata` CLI if it works (`import`, `mount --name`, `diff`), else the
# driver-level example crates/storage/examples/parity.rs. Set STRATA_PARITY_USE=example|cli to
# force one; STRATA_PARITY_DRIVER=vfs makes the example use the vfs driver (full copies).

set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib/dockerd.sh

WORK=${STRATA_PARITY_WORK:-/tmp/strata-parity}
STRATA_BIN=${STRATA_BIN:-target/release/strata}
EXAMPLE_BIN=target/release/examples/parity

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

# strata through the CLI, or the example; sets STRATA_KIND.
strata_pick() {
    local want=${STRATA_PARITY_USE:-auto}
    if [ "$want" != example ] && [ -x "$STRATA_BIN" ] &&
        [ -n "$("$STRATA_BIN" --root "$WORK/strata-probe" info 2>/dev/null)" ]; then
        STRATA_KIND=cli
    elif [ "$want" = cli ]; then
        echo "strata CLI at $STRATA_BIN does not work yet" >&2
        exit 2
    else
        cargo build -q --release -p strata-storage --example parity
        STRATA_KIND=example
    fi
    rm -rf "$WORK/strata-probe"
}

strata_import() { # TAR -> prints the layer's diffID (example; the CLI's is read after mount)
    if [ "$STRATA_KIND" = cli ]; then
        "$STRATA_BIN" --root "$WORK/strata" import "$1" busybox:latest >/dev/null
    else
        "$EXAMPLE_BIN" "$WORK/strata" import "$1"
    fi
}
strata_cli_diff_id() { # the image layer's diffID, from `strata inspect w` (after mount)
    # For a one-layer image the parent's chainID is its diffID, so either key will do.
    "$STRATA_BIN" --root "$WORK/strata" inspect w | python3 -c '
import json, re, sys
def walk(v):
    if isinstance(v, dict):
        for k, x in v.items():
            if isinstance(x, str) and re.search(r"(diff|chain).?id", k, re.I) and x.startswith("sha256:"):
                yield x
            yield from walk(x)
    elif isinstance(v, list):
        for x in v:
            yield from walk(x)
print(next(walk(json.load(sys.stdin)), "unknown (strata inspect shows no diffID)"))'
}
strata_mount() {
    if [ "$STRATA_KIND" = cli ]; then
        "$STRATA_BIN" --root "$WORK/strata" mount --name w busybox:latest
    else
        "$EXAMPLE_BIN" "$WORK/strata" mount
    fi
}
strata_diff() {
    if [ "$STRATA_KIND" = cli ]; then
        "$STRATA_BIN" --root "$WORK/strata" diff w
    else
        "$EXAMPLE_BIN" "$WORK/strata" diff
    fi
}
strata_cleanup() {
    if [ "$STRATA_KIND" = cli ]; then
        "$STRATA_BIN" --root "$WORK/strata" umount --force w >/dev/null 2>&1 || true
    else
        "$EXAMPLE_BIN" "$WORK/strata" umount >/dev/null 2>&1 || true
    fi
    _dockerd_unmount_under "$WORK/strata"
}

# Runs the changes in a container (kept, for `docker diff` and `docker commit`). `docker run`
# works with this dockerd (cgroup v1 hierarchy, runc 1.1); were it not to, `docker cp` could not
# make the same deletions, so we stop rather than compare something else.
docker_changes() {
    docker run --name parity --network none busybox:latest /bin/sh -c "$CHANGES" && return 0
    echo "docker run failed (see $STRATA_REF_DOCKER_LOG); cannot make the changes in docker" >&2
    return 1
}

# Lists a layer tar's entries as "TYPE MODE UID/GID NAME", sorted. Left out: mtimes (the two
# runs differ), the file-type bits Docker 20.10 puts in the mode field (Go's FileInfoHeader;
# newer Docker and strata write permission bits only), and whiteout modes, for which there is
# no convention (Docker overlay2: 0600, opaque marker = its dir's mode; Docker naive diff and
# containerd: 0; strata: 0, with mtime 0, so exports are reproducible).
tar_listing() {
    python3 - "$1" <<'PY'
import sys, tarfile
with tarfile.open(sys.argv[1]) as t:
    rows = []
    for m in t.getmembers():
        name = m.name[2:] if m.name.startswith("./") else m.name
        base = name.rstrip("/").rsplit("/", 1)[-1]
        mode = "-" if base.startswith(".wh.") else f"{m.mode & 0o7777:04o}"
        rows.append(f"{m.type.decode() or '0'} {mode} {m.uid}/{m.gid} {name.rstrip('/')}")
for r in sorted(rows, key=lambda r: r.split(" ", 3)[3]):
    print(r)
PY
}

# The container's layer as `docker commit` + `docker save` give it, against strata's export.
compare_exports() {
    if [ "$STRATA_KIND" != example ]; then
        echo "exports: skipped (the CLI has no export yet)"
        return 0
    fi
    docker commit parity parity:committed >/dev/null
    mkdir -p "$WORK/save"
    docker save parity:committed | tar -C "$WORK/save" -xf -
    local layer
    layer=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["Layers"][-1])' \
        "$WORK/save/manifest.json")
    "$EXAMPLE_BIN" "$WORK/strata" export "$WORK/strata-layer.tar"
    tar_listing "$WORK/save/$layer" >"$WORK/docker.export"
    tar_listing "$WORK/strata-layer.tar" >"$WORK/strata.export"
    echo
    printf '%-40s %s\n' "docker commit layer" "strata export"
    diff --side-by-side --width=81 "$WORK/docker.export" "$WORK/strata.export" || true
    if cmp -s "$WORK/docker.export" "$WORK/strata.export"; then
        echo "exports: match"
    elif [ "${STRATA_PARITY_DRIVER:-}" = vfs ]; then
        # A full-copy diff cannot tell a re-created directory from an emptied one, so it writes
        # one .wh.<name> per hidden name where overlay2 writes .wh..wh..opq (Docker's own vfs
        # driver does the same); applied, both give the same tree.
        echo "exports: differ as expected for vfs (per-name whiteouts instead of an opaque marker)"
    else
        echo "exports: DIFFER"
        return 1
    fi
}

main() {
    [ "$(id -u)" = 0 ] || { echo "run as root (overlay mounts, dockerd)" >&2; exit 2; }
    rm -rf "$WORK"
    mkdir -p "$WORK"
    local tar=$WORK/busybox-rootfs.tar
    make_rootfs_tar "$tar"
    local want
    want=sha256:$(sha256sum "$tar" | cut -d' ' -f1)

    strata_pick
    trap 'strata_cleanup; dockerd_stop' EXIT
    dockerd_start || exit 2

    docker import "$tar" busybox:latest >/dev/null
    local docker_id strata_id
    docker_id=$(docker image inspect -f '{{json .RootFS.Layers}}' busybox:latest | tr -d '[]"')
    strata_id=$(strata_import "$tar")

    local merged
    merged=$(strata_mount)
    if [ ! -x "$merged/bin/busybox" ]; then
        echo "strata ($STRATA_KIND) mounted nothing usable at '$merged'" >&2
        exit 2
    fi
    [ "$STRATA_KIND" = cli ] && strata_id=$(strata_cli_diff_id)
    docker_changes || exit 2
    chroot "$merged" /bin/sh -c "$CHANGES"

    docker diff parity | sort -k2 >"$WORK/docker.diff"
    strata_diff | sort -k2 >"$WORK/strata.diff"

    echo "strata via: $STRATA_KIND (driver ${STRATA_PARITY_DRIVER:-overlay2})"
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
    compare_exports || ok=1
    docker rm -f parity >/dev/null 2>&1 || true
    return $ok
}

main "$@"
