#!/bin/bash
# Times `strata run --rm --network none IMG true` against `docker run --rm --network none IMG
# true` on a reference dockerd (bench/lib/dockerd.sh), both on the same static-busybox image;
# prints the medians, their ratio next to the target (strata <= 1/5 of docker), and where
# strata's time goes: the median of each phase over a few `STRATA_LOG=debug` runs (spans of
# the CLI and its monitor, which shares the CLI's stderr at debug level).
#
#   bench/run.sh
#   BENCH_RUNS=20 BENCH_DIR=/var/tmp/strata-bench
set -euo pipefail
. "$(dirname "$0")/lib.sh"
runs=${BENCH_RUNS:-20}
build_strata
command -v busybox >/dev/null || { echo "needs a static busybox (apt-get install busybox-static)" >&2; exit 1; }

# A minimal image: busybox and a few applet links.
rootfs="$work/run-rootfs"
rm -rf "$rootfs" && mkdir -p "$rootfs/bin" "$rootfs/etc"
cp "$(command -v busybox)" "$rootfs/bin/busybox"
for a in sh true echo sleep; do ln -s busybox "$rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$rootfs/etc/passwd"
echo 'root:x:0:' >"$rootfs/etc/group"
tar -C "$rootfs" -cf "$work/run-busybox.tar" .

root="$work/run-root"
clean_root "$root"
s="$strata --root $root"
$s import "$work/run-busybox.tar" bench-bb >/dev/null
$s run --rm --network none bench-bb true # warms the init layer path and the page cache

echo "loadavg before: $(cat /proc/loadavg)" >&2
strata_s=$(median_seconds "true" "$s run --rm --network none bench-bb true" -N --warmup 3)
echo "loadavg after strata: $(cat /proc/loadavg)" >&2

# Where the time goes: phases named by the debug spans, median over 7 runs.
phases="$work/run-phases.txt"
: >"$phases"
for _ in $(seq 7); do
    STRATA_LOG=debug $s run --rm --network none bench-bb true 2>&1 >/dev/null |
        sed -nE 's/^[^ ]+ +DEBUG ([^:]+):.* close time\.busy=([0-9.]+)(ms|µs|s) .*/\1\t\2\t\3/p' |
        awk -F'\t' '{ v = $2; if ($3 == "µs") v /= 1000; if ($3 == "s") v *= 1000; printf "%s\t%.3f\n", $1, v }' >>"$phases"
done

docker_s=""
if source "$here/lib/dockerd.sh" && dockerd_start; then
    trap dockerd_stop EXIT
    docker import "$work/run-busybox.tar" bench-bb >/dev/null
    docker run --rm --network none bench-bb true
    docker_s=$(median_seconds "true" "docker run --rm --network none bench-bb true" -N --warmup 3)
fi

echo "strata run --rm --network none IMG true: $(ms "$strata_s") ms (median of $runs)"
if [ -n "$docker_s" ]; then
    echo "docker run --rm --network none IMG true: $(ms "$docker_s") ms (median of $runs)"
    echo "ratio strata/docker $(ratio "$strata_s" "$docker_s") (target <= 0.20)"
else
    echo "docker: reference figure skipped"
fi
echo "strata phases (median ms of 7 debug runs; the CLI waits for the monitor's spans):"
cut -f1 "$phases" | awk '!seen[$0]++' | while IFS= read -r phase; do
    awk -F'\t' -v p="$phase" '$1 == p { print $2 }' "$phases" | sort -n |
        awk -v p="$phase" '{ a[NR] = $1 } END { printf "    %-36s %7.2f\n", p, a[int((NR + 1) / 2)] }'
done
clean_root "$root"
