#!/bin/bash
# N concurrent Docker API clients (default 200) against a fresh `strata daemon` for D seconds
# (default 60), each looping over a short busybox container's life (`docker run --rm IMG
# true` and attached `docker run IMG echo` + `docker rm`; crates/api/examples/api_load.rs).
# Reports cycles, errors, p50/p90/p99/max latency, then what was left: mounts under the
# store root, cgroup dirs of the containers made, containers in `ps -a`, `strata check`.
# Target (issue 5): no error, no leaked mount or cgroup, p99 reported.
#
#   bench/api-concurrency.sh [CLIENTS] [SECONDS]
#   BENCH_DIR=/var/tmp/strata-bench
set -euo pipefail
. "$(dirname "$0")/lib.sh"
clients=${1:-200}
secs=${2:-60}
build_strata
(cd "$repo" && cargo build --release -q -p strata-api --example api_load)
load=$repo/target/release/examples/api_load
command -v busybox >/dev/null || { echo "needs a static busybox (apt-get install busybox-static)" >&2; exit 1; }
command -v runc >/dev/null || { echo "needs runc (apt-get install runc)" >&2; exit 1; }

rootfs="$work/apiconc-rootfs"
rm -rf "$rootfs" && mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp"
cp "$(command -v busybox)" "$rootfs/bin/busybox"
for a in sh true echo; do ln -s busybox "$rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$rootfs/etc/passwd"
echo 'root:x:0:' >"$rootfs/etc/group"
tar -C "$rootfs" -cf "$work/apiconc-busybox.tar" .

root="$work/apiconc-root"
sock="$work/apiconc.sock"
clean_root "$root"
s="$strata --root $root --storage-driver $driver"
$s import "$work/apiconc-busybox.tar" bb >/dev/null
setsid $s daemon -H "unix://$sock" >"$work/apiconc-daemon.log" 2>&1 </dev/null &
daemon_pid=$!
stop_daemon() {
    kill -TERM "$daemon_pid" 2>/dev/null || true
    wait "$daemon_pid" 2>/dev/null || true
}
trap stop_daemon EXIT
for _ in $(seq 200); do [ -S "$sock" ] && break; sleep 0.05; done

echo "loadavg before: $(cat /proc/loadavg)"
status=0
"$load" "$sock" --clients "$clients" --secs "$secs" --root "$root" || status=1
echo "loadavg after: $(cat /proc/loadavg)"
echo "daemon RSS after: $(awk '/^VmRSS/ { printf "%.1f MiB", $2 / 1024 }' /proc/$daemon_pid/status)"
stop_daemon
trap - EXIT

left=$($s ps -a -q | wc -l)
echo "containers left in ps -a: $left"
[ "$left" -eq 0 ] || { $s ps -a | head; status=1; }
mounts=$(awk -v d="$root" 'index($5, d "/") == 1' /proc/self/mountinfo | wc -l)
echo "mounts under the root after the daemon stopped: $mounts"
[ "$mounts" -eq 0 ] || status=1
if $s check >"$work/apiconc-check.txt" 2>&1; then
    echo "strata check: clean"
else
    echo "strata check: NOT clean"; head -20 "$work/apiconc-check.txt"; status=1
fi
errors=$(grep -ci 'error\|panic' "$work/apiconc-daemon.log" || true)
echo "daemon log: $errors lines mentioning error/panic ($work/apiconc-daemon.log)"
clean_root "$root"
exit $status
