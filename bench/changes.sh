#!/bin/bash
# Times `strata diff` of a container with one small file changed, on a small (~2 MB) and on
# the big fixture image: overlay2 reads only the container's own diff dir, so the two figures
# should be the same (flat), where dockerd 20.10 walks the whole image (0.03 s vs 1.30 s).
#
#   bench/changes.sh [BIG_FIXTURE]   default: bench/fixtures/rootfs.tar (made if missing)
#   BENCH_RUNS=5 BENCH_DIR=/var/tmp/strata-bench BENCH_DRIVER=overlay2
set -euo pipefail
. "$(dirname "$0")/lib.sh"

big=$(fixture "${1:-$here/fixtures/rootfs.tar}")
small=$(fixture "$here/fixtures/small.tar" BENCH_FILES=400 BENCH_BIG_COUNT=0)
build_strata
runs=${BENCH_RUNS:-20}

# diff_seconds NAME TAR: imports TAR, changes one file in a container, prints diff's median.
diff_seconds() {
    local name=$1 tarfile=$2 root="$work/changes-$1"
    local s="$strata --root $root --storage-driver $driver"
    clean_root "$root"
    $s import "$tarfile" bench:latest >/dev/null 2>"$work/import.log" || { cat "$work/import.log" >&2; exit 1; }
    local merged
    merged=$($s mount --name w bench:latest | tail -n 1)
    [ -d "$merged" ] || { echo "strata mount printed $merged, not a directory" >&2; exit 1; }
    echo "changed" >>"$merged/etc/passwd"
    echo "$name image, strata diff w:" >&2
    $s diff w | sed 's/^/    /' >&2
    # Without a shell (-N): a few ms per run, where shell start-up would be noise.
    median_seconds "true" "$s diff w" -N --warmup 3
    $s umount w >/dev/null
    $s rm -f w >/dev/null
    clean_root "$root"
}

t_small=$(diff_seconds small "$small")
t_big=$(diff_seconds big "$big")
echo "strata diff, one small file changed: small image $(ms "$t_small") ms, big image $(ms "$t_big") ms," \
    "big/small $(ratio "$t_big" "$t_small") (flat is ~1; dockerd 20.10: 30 ms vs 1300 ms)"
