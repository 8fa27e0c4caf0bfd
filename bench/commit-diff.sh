#!/bin/bash
# Times `commit` and `diff`, strata (overlay2) and a reference dockerd side by side, medians of
# BENCH_RUNS runs (hyperfine), each next to its target (issue 3, "Targets"):
#   (a) commit of a one-file change on the ~500 MB / 20k-file fixture image and on a ~2 MB
#       image (created containers, the file put in with `cp`): at most dockerd's, and flat;
#   (b) commit of a running container that wrote a new 1 GiB file (`head -c` from
#       /dev/urandom inside it, via `exec`): at most 1/3 of dockerd's;
#   (c) diff of that container: at most 1/20 of dockerd's.
# Both pause a running container during commit (the default). The same container is committed
# every run (the same layer each time: both do the whole copy, then keep the existing layer).
# The machine is shared: /proc/loadavg is printed with the figures.
#
#   bench/commit-diff.sh [BIG_FIXTURE]   default: bench/fixtures/rootfs.tar (made if missing)
#   BENCH_RUNS=5 BENCH_DIR=/var/tmp/strata-bench BENCH_BIG_FILE_MB=1024
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$here/lib/dockerd.sh"

big=$(fixture "${1:-$here/fixtures/rootfs.tar}")
small=$(fixture "$here/fixtures/small.tar" BENCH_FILES=400 BENCH_BIG_COUNT=0)
big_mb=${BENCH_BIG_FILE_MB:-1024}
build_strata
root=$work/commit-diff
s="$strata --root $root --storage-driver overlay2"
results=$work/commit-diff.results
: >"$results"

# A busybox image to run `sleep` and `head` in.
busybox_tar() {
    local dir=$work/busybox-rootfs a
    rm -rf "$dir"
    mkdir -p "$dir/bin" "$dir/etc" "$dir/tmp"
    cp /bin/busybox "$dir/bin/busybox"
    for a in sh sleep head cat true; do ln -s busybox "$dir/bin/$a"; done
    printf 'root:x:0:0:root:/root:/bin/sh\n' >"$dir/etc/passwd"
    tar --numeric-owner -C "$dir" -cf "$work/busybox.tar" .
    echo "$work/busybox.tar"
}
bb=$(busybox_tar)
echo "one changed file" >"$work/onefile"

# record NAME SECONDS: keeps a figure for the table.
record() { echo "$1 $2" >>"$results"; }
fig() { awk -v k="$1" '$1 == k { print $2 }' "$results"; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

strata_side() {
    clean_root "$root"
    $s import "$small" small >/dev/null
    $s import "$big" big >/dev/null
    local img
    for img in small big; do
        $s create --name "one-$img" "$img" true >/dev/null
        $s cp "$work/onefile" "one-$img:/etc/onefile"
        echo "strata commit, one file, $img image (load $(load)):" >&2
        record "strata_one_$img" "$(median_seconds "true" "$s commit one-$img one-$img:x" -N --warmup 1)"
    done
    # The 1 GiB container runs on the big image (plus busybox), as the issue's dockerd figures.
    $s create --name mk big true >/dev/null
    $s cp "$work/busybox-rootfs/." mk:/
    $s commit mk bigbb >/dev/null
    $s rm mk >/dev/null
    $s run -d --name gib bigbb sleep 100000 >/dev/null
    $s exec gib sh -c "head -c $((big_mb << 20)) /dev/urandom > /big"
    sync
    echo "strata commit, new ${big_mb} MiB file (load $(load)):" >&2
    record strata_gib "$(median_seconds "sync" "$s commit gib gib:x" -N)"
    sync
    record strata_gib_cpu "$(/usr/bin/time -f '%U %S' $s commit gib gib:z 2>&1 >/dev/null | awk '{ print $1 + $2 }')"
    # Where the time goes, from strata's own debug log (one more run).
    sync
    STRATA_LOG=strata_storage=debug $s commit gib gib:y 2>&1 >/dev/null | sed 's/\x1b\[[0-9;]*m//g' |
        awk 'match($0, / commit: (copied|synced)[a-z ]*/) { what = substr($0, RSTART + 9, RLENGTH - 9)
             match($0, /elapsed=[^ ]+/); print "    " what ": " substr($0, RSTART + 8, RLENGTH - 8) }' >&2
    echo "strata diff of that container (load $(load)):" >&2
    record strata_diff "$(median_seconds "true" "$s diff gib" -N --warmup 2)"
    $s rm -f gib one-small one-big >/dev/null
    clean_root "$root"
}

# docker_cpu COMMAND...: CPU seconds dockerd and its reaped children (the untar) spent on it.
docker_cpu() {
    local pid before after
    pid=$(cat "$STRATA_REF_DOCKER_PIDFILE")
    before=$(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$pid/stat")
    "$@" >/dev/null
    after=$(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$pid/stat")
    awk -v a="$before" -v b="$after" -v hz="$(getconf CLK_TCK)" 'BEGIN { print (b - a) / hz }'
}

docker_side() {
    dockerd_start || return 0
    trap dockerd_stop EXIT
    docker import "$small" small >/dev/null
    docker import "$big" big >/dev/null
    local img
    for img in small big; do
        docker create --network none --name "one-$img" "$img" true >/dev/null
        docker cp "$work/onefile" "one-$img:/etc/onefile"
        echo "docker commit, one file, $img image (load $(load)):" >&2
        record "docker_one_$img" "$(median_seconds "true" "docker commit one-$img one-$img:x" -N --warmup 1)"
    done
    docker create --network none --name mk big true >/dev/null
    docker cp "$work/busybox-rootfs/." mk:/
    docker commit mk bigbb >/dev/null
    docker rm mk >/dev/null
    docker run -d --network none --name gib bigbb sleep 100000 >/dev/null
    docker exec gib sh -c "head -c $((big_mb << 20)) /dev/urandom > /big"
    sync
    echo "docker commit, new ${big_mb} MiB file (load $(load)):" >&2
    record docker_gib "$(median_seconds "sync" "docker commit gib gib:x" -N)"
    sync
    record docker_gib_cpu "$(docker_cpu docker commit gib gib:z)"
    echo "docker diff of that container (load $(load)):" >&2
    record docker_diff "$(median_seconds "true" "docker diff gib" -N --warmup 2)"
    docker rm -f gib one-small one-big >/dev/null
    dockerd_stop
    trap - EXIT
}

strata_side
docker_side

secs3() { awk -v a="$1" 'BEGIN { printf "%.3f", a }'; }

# row LABEL STRATA_KEY DOCKER_KEY TARGET_FACTOR TARGET_TEXT
row() {
    local st dk
    st=$(fig "$2"); dk=$(fig "$3")
    if [ -z "$dk" ]; then
        printf '%-34s %9s s %9s   %-22s\n' "$1" "$(secs3 "$st")" "-" "$5"
        return
    fi
    local verdict
    verdict=$(awk -v a="$st" -v b="$dk" -v f="$4" 'BEGIN { print (a <= b * f) ? "met" : "MISSED" }')
    printf '%-34s %9s s %9s s %7s   %-22s %s\n' "$1" "$(secs3 "$st")" "$(secs3 "$dk")" \
        "$(ratio "$st" "$dk")" "$5" "$verdict"
}
echo
printf '%-34s %11s %11s %7s   %-22s\n' "median of $runs" strata dockerd ratio target
row "commit, one file, ~2 MB image" strata_one_small docker_one_small 1 "<= dockerd"
row "commit, one file, ~500 MB image" strata_one_big docker_one_big 1 "<= dockerd"
row "commit, new ${big_mb} MiB file" strata_gib docker_gib 0.3334 "<= 1/3 dockerd"
row "diff of that container" strata_diff docker_diff 0.05 "<= 1/20 dockerd"
echo "CPU seconds of one ${big_mb} MiB commit: strata $(fig strata_gib_cpu), dockerd $(fig docker_gib_cpu)"
echo "flatness (big/small image, one-file commit): strata $(ratio "$(fig strata_one_big)" "$(fig strata_one_small)")" \
    "$( [ -n "$(fig docker_one_big)" ] && echo "dockerd $(ratio "$(fig docker_one_big)" "$(fig docker_one_small)")")"
echo "load average at the end: $(cat /proc/loadavg)"
