#!/bin/bash
# The docker CLI against `strata daemon` versus against a reference dockerd
# (bench/lib/dockerd.sh), on the same static-busybox image:
#   - `docker run --rm --network none IMG true`: medians, ratio next to the target
#     (strata <= 1/4 of dockerd);
#   - idle RSS of the strata daemon versus dockerd + its containerd (target <= 1/5).
#
#   bench/daemon.sh
#   BENCH_RUNS=20 BENCH_DIR=/var/tmp/strata-bench bench/daemon.sh
set -euo pipefail
. "$(dirname "$0")/lib.sh"
runs=${BENCH_RUNS:-10}
build_strata
command -v docker >/dev/null || { echo "needs the docker CLI (apt-get install docker.io)" >&2; exit 1; }
command -v busybox >/dev/null || { echo "needs a static busybox (apt-get install busybox-static)" >&2; exit 1; }

rootfs="$work/daemon-rootfs"
rm -rf "$rootfs" && mkdir -p "$rootfs/bin" "$rootfs/etc"
cp "$(command -v busybox)" "$rootfs/bin/busybox"
for a in sh true echo sleep; do ln -s busybox "$rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$rootfs/etc/passwd"
echo 'root:x:0:' >"$rootfs/etc/group"
tar -C "$rootfs" -cf "$work/daemon-busybox.tar" .

# rss_kb PID...: the summed VmRSS of the processes, in KiB.
rss_kb() {
    local total=0 pid kb
    for pid in "$@"; do
        kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)
        total=$((total + ${kb:-0}))
    done
    echo "$total"
}

# The strata daemon, on its own store and socket.
root="$work/daemon-root"
sock="$work/strata-daemon.sock"
clean_root "$root"
setsid "$strata" --root "$root" --storage-driver "$driver" daemon -H "unix://$sock" \
    >"$work/strata-daemon.log" 2>&1 </dev/null &
strata_pid=$!
stop_strata() {
    kill -TERM "$strata_pid" 2>/dev/null || true
    wait "$strata_pid" 2>/dev/null || true
}
trap stop_strata EXIT
for _ in $(seq 200); do [ -S "$sock" ] && break; sleep 0.05; done
export DOCKER_HOST="unix://$sock"
docker import "$work/daemon-busybox.tar" bench-bb >/dev/null
docker run --rm --network none bench-bb true # warms the init layer and the page cache
sleep 2
strata_rss=$(rss_kb "$strata_pid")
echo "loadavg before: $(cat /proc/loadavg)" >&2
strata_s=$(median_seconds "true" "docker run --rm --network none bench-bb true" -N --warmup 3)
stop_strata
trap - EXIT
unset DOCKER_HOST
clean_root "$root"

docker_s="" docker_rss=""
if source "$here/lib/dockerd.sh" && dockerd_start; then
    trap dockerd_stop EXIT
    docker import "$work/daemon-busybox.tar" bench-bb >/dev/null
    docker run --rm --network none bench-bb true
    sleep 2
    pids=("$_STRATA_REF_DOCKER_PID")
    for p in /proc/[0-9]*; do
        cmd=$({ tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null) || continue
        case "$cmd" in *containerd*"$STRATA_REF_DOCKER_EXEC"*) pids+=("${p#/proc/}") ;; esac
    done
    docker_rss=$(rss_kb "${pids[@]}")
    docker_s=$(median_seconds "true" "docker run --rm --network none bench-bb true" -N --warmup 3)
fi

echo "docker run --rm --network none IMG true, via strata daemon: $(ms "$strata_s") ms (median of $runs)"
echo "idle RSS, strata daemon: $((strata_rss / 1024)) MiB ($strata_rss KiB)"
if [ -n "$docker_s" ]; then
    echo "docker run --rm --network none IMG true, via dockerd: $(ms "$docker_s") ms (median of $runs)"
    echo "ratio strata/dockerd $(ratio "$strata_s" "$docker_s") (target <= 0.25)"
    echo "idle RSS, dockerd + containerd: $((docker_rss / 1024)) MiB ($docker_rss KiB)"
    echo "ratio strata/dockerd RSS $(ratio "$strata_rss" "$docker_rss") (target <= 0.20)"
else
    echo "dockerd: reference figures skipped"
fi
