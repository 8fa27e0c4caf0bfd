#!/usr/bin/env bash
# Image archives in and out, strata against the reference dockerd 20.10 (issue 4 targets):
#   load   >= 3x dockerd's throughput     save   >= 2x     import >= 3x
#   peak RSS of strata < 128 MB whatever the image size
# on a ~500 MB / 20k-file image (1-8 KiB files plus four 100 MiB files). Each figure is the
# median of 3 runs, each run followed by `sync` on both sides (strata returns with the data
# durable; dockerd does not, so its sync is part of its time). strata's peak RSS comes from
# /usr/bin/time -v (the largest of all its runs).
#
# Fairness: every timed run, strata's and dockerd's alike, gets a FRESH ext4 (a sparse 4 GiB
# file, mkfs'd and loop-mounted, unmounted and deleted after the run) holding the store root
# (strata --root, dockerd --data-root; dockerd is restarted on each one). Reusing one
# filesystem made the figures swing 2-3x from run to run: ext4's inode allocator
# (recently_deleted, find_inode_bit) crawls over the 20k inodes the previous run freed.
# The rootfs tar, the archive `load` reads and the files `save` writes stay on the main disk.
# The fs is mounted noinit_itable so ext4lazyinit does not zero inode tables during a run.
#
# Run on demand as root: bench/load-save.sh   (build first: cargo build --release -p strata)
# Environment: STRATA_BIN (default target/release/strata), STRATA_BENCH_DRIVER (overlay2),
# STRATA_BENCH_WORK (/tmp/strata-bench-load-save; the generated image is kept there between
# runs), STRATA_BENCH_RUNS (3). Without dockerd only strata's figures are printed.

set -euo pipefail
cd "$(dirname "$0")/.."
# Its own reference dockerd: docker-parity.sh run meanwhile would otherwise stop ours.
STRATA_REF_DOCKER_NAME=${STRATA_REF_DOCKER_NAME:-strata-ref-load-save}
source bench/lib/dockerd.sh

BIN=$(realpath "${STRATA_BIN:-target/release/strata}")
DRIVER=${STRATA_BENCH_DRIVER:-overlay2}
WORK=${STRATA_BENCH_WORK:-/tmp/strata-bench-load-save}
RUNS=${STRATA_BENCH_RUNS:-3}
[ -x "$BIN" ] || { echo "no strata binary at $BIN: cargo build --release -p strata" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "run as root (overlay2 mounts, dockerd)" >&2; exit 2; }
mkdir -p "$WORK"

# The rootfs tar: bench/make-fixture.sh when present, else our own generator (same shape).
make_rootfs_tar() {
    local out=$WORK/rootfs.tar
    [ -s "$out" ] && return 0
    if [ -x bench/make-fixture.sh ]; then
        bench/make-fixture.sh "$out"
        [ -s "$out" ] && return 0
        echo "bench/make-fixture.sh did not write $out; generating here" >&2
    fi
    echo "generating a ~500 MB / 20k-file rootfs in $WORK/rootfs ..." >&2
    rm -rf "$WORK/rootfs"
    python3 - "$WORK/rootfs" <<'EOF'
import os, random, sys
root = sys.argv[1]
rng = random.Random(4)
for i in range(20000):
    d = os.path.join(root, "usr/lib/d%03d" % (i // 100))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d" % i), "wb") as f:
        f.write(rng.randbytes(rng.randint(1024, 8192)))
os.makedirs(os.path.join(root, "opt/big"), exist_ok=True)
for i in range(4):
    with open(os.path.join(root, "opt/big/blob%d" % i), "wb") as f:
        for _ in range(100):
            f.write(rng.randbytes(1 << 20))
EOF
    tar -C "$WORK/rootfs" --sort=name --owner=0 --group=0 --numeric-owner \
        --mtime=2024-01-01T00:00:00Z -cf "$out.tmp" .
    mv "$out.tmp" "$out"
    rm -rf "$WORK/rootfs"
}

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b - a}'; }

IMG=$WORK/fs.img
MNT=$WORK/mnt

# A new empty ext4 at $MNT (see the header for why each run gets one).
fs_up() {
    fs_down
    truncate -s 4G "$IMG"
    mkfs.ext4 -q -F "$IMG"
    mkdir -p "$MNT"
    mount -o loop,noinit_itable "$IMG" "$MNT"
}

# Unmounts whatever is under $MNT, then $MNT, and deletes the image file.
fs_down() {
    if [ -d "$MNT" ]; then
        awk -v d="$(realpath "$MNT")" '$5 == d || index($5, d "/") == 1 { print $5 }' \
            /proc/self/mountinfo | sort -r | while read -r m; do umount "$m"; done
    fi
    rm -f "$IMG"
}

cleanup() {
    [ "$HAVE_DOCKER" = 1 ] && dockerd_stop
    fs_down
}

# Runs the strata command "$@" under /usr/bin/time -v on the store at $MNT/strata, then
# sync; prints the seconds and appends the peak RSS (KiB) to $WORK/peaks (a file: callers
# run this in a subshell).
strata_timed() {
    local t0 t1 kb
    t0=$(now)
    /usr/bin/time -v -o "$WORK/time.txt" "$BIN" --root "$MNT/strata" --storage-driver "$DRIVER" "$@" \
        >"$WORK/strata.out" 2>"$WORK/strata.err" || {
        echo "strata $* failed:" >&2
        cat "$WORK/strata.err" >&2
        exit 1
    }
    sync
    t1=$(now)
    kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time.txt")
    echo "${kb:?no peak RSS in $WORK/time.txt} $1" >>"$WORK/peaks"
    secs "$t0" "$t1"
}

docker_timed() {
    local t0 t1
    t0=$(now)
    docker "$@" >/dev/null || { echo "docker $* failed; see $STRATA_REF_DOCKER_LOG" >&2; return 1; }
    sync
    t1=$(now)
    secs "$t0" "$t1"
}

# The reference dockerd on the fresh fs: started after fs_up, stopped before fs_down (its
# data root goes with the fs, so dockerd_stop need not delete it file by file).
docker_up() {
    STRATA_REF_DOCKER_ROOT=$MNT/docker
    STRATA_REF_DOCKER_KEEP=1
    dockerd_start || { echo "reference dockerd failed to start on $MNT" >&2; exit 1; }
}

make_rootfs_tar
rm -f "$WORK/peaks"
# Left over from the old layout (one store root reused across runs).
rm -rf "$WORK/strata-root"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
TAR=$WORK/rootfs.tar
ARCHIVE=$WORK/image.tar
HAVE_DOCKER=0
if command -v dockerd >/dev/null 2>&1 && command -v docker >/dev/null 2>&1; then
    HAVE_DOCKER=1
else
    echo "dockerd not installed: reference figures skipped" >&2
fi
trap cleanup EXIT

# --- import, then save from the store that import made (one fresh fs per run and side) ---
declare -a s_import=() d_import=() s_save=() d_save=() s_load=() d_load=()
for _ in $(seq "$RUNS"); do
    fs_up
    t=$(strata_timed import "$TAR" bench:img) || exit 1
    s_import+=("$t")
    rm -f "$WORK/strata-save.tar"
    t=$(strata_timed save -o "$WORK/strata-save.tar" bench:img) || exit 1
    s_save+=("$t")
    fs_down
    if [ $HAVE_DOCKER = 1 ]; then
        fs_up
        docker_up
        t=$(docker_timed import "$TAR" bench:img) || exit 1
        d_import+=("$t")
        rm -f "$ARCHIVE"
        t=$(docker_timed save -o "$ARCHIVE" bench:img) || exit 1
        d_save+=("$t")
        dockerd_stop
        fs_down
    fi
done
# The archive both load: dockerd's own when it ran, else strata's.
[ $HAVE_DOCKER = 1 ] || cp "$WORK/strata-save.tar" "$ARCHIVE"

# --- load ---
for _ in $(seq "$RUNS"); do
    fs_up
    t=$(strata_timed load -q -i "$ARCHIVE") || exit 1
    s_load+=("$t")
    fs_down
    if [ $HAVE_DOCKER = 1 ]; then
        fs_up
        docker_up
        t=$(docker_timed load -q -i "$ARCHIVE") || exit 1
        d_load+=("$t")
        dockerd_stop
        fs_down
    fi
done

MB=$(stat -c %s "$ARCHIVE" | awk '{printf "%.0f", $1 / 1e6}')
echo
echo "image: $MB MB archive ($(tar -tf "$TAR" | wc -l) entries), strata driver $DRIVER, median of $RUNS"
printf '%-8s %10s %12s %10s %12s %8s %8s\n' op strata_s strata_MB/s docker_s docker_MB/s ratio target
report() { # op target strata-times... -- docker-times...
    local op=$1 target=$2 s d ratio verdict
    shift 2
    local -a st=() dt=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do st+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    dt=("$@")
    s=$(median "${st[@]}")
    if [ ${#dt[@]} -gt 0 ]; then
        d=$(median "${dt[@]}")
        ratio=$(awk -v s="$s" -v d="$d" 'BEGIN {printf "%.2f", d / s}')
        verdict=$(awk -v r="$ratio" -v t="$target" 'BEGIN {print (r >= t) ? "ok" : "MISSED"}')
        printf '%-8s %10s %12.1f %10s %12.1f %7sx %6sx %s\n' "$op" "$s" "$(awk -v m="$MB" -v s="$s" 'BEGIN {print m / s}')" \
            "$d" "$(awk -v m="$MB" -v s="$d" 'BEGIN {print m / s}')" "$ratio" "$target" "$verdict"
    else
        printf '%-8s %10s %12.1f %10s %12s %8s %6sx (no dockerd)\n' "$op" "$s" \
            "$(awk -v m="$MB" -v s="$s" 'BEGIN {print m / s}')" - - - "$target"
    fi
}
report import 3 "${s_import[@]}" -- "${d_import[@]}"
report save 2 "${s_save[@]}" -- "${d_save[@]}"
report load 3 "${s_load[@]}" -- "${d_load[@]}"
PEAK_MB=$(sort -n "$WORK/peaks" | tail -n 1 | awk '{printf "%.1f MB (%s)", $1 / 1024, $2}')
echo "strata peak RSS: $PEAK_MB (target < 128 MB): $(sort -n "$WORK/peaks" | tail -n 1 |
    awk '{print ($1 / 1024 < 128) ? "ok" : "MISSED"}')"
echo "all runs, seconds: import strata ${s_import[*]} / docker ${d_import[*]:-}; save strata ${s_save[*]} / docker ${d_save[*]:-}; load strata ${s_load[*]} / docker ${d_load[*]:-}"
echo "load average (1/5/15 min): $LOAD_BEFORE at start, $(cut -d' ' -f1-3 /proc/loadavg) at end ($(nproc) CPUs)"
