#!/bin/bash
# Starts N (100) containers at once from one image (`strata run -d IMG sleep 600`, each in its
# own process), checks all succeed and run, reports the memory of their monitors (sum and
# per monitor of the RSS of `strata __monitor` processes) and of strata itself (peak RSS of
# one `strata run -d`), then stops and removes them all and checks that nothing leaked: no
# mount under the store root, no runc state, no cgroup directory.
#
#   bench/concurrent.sh [N]
#   BENCH_DIR=/var/tmp/strata-bench
set -euo pipefail
. "$(dirname "$0")/lib.sh"
n=${1:-100}
build_strata
command -v busybox >/dev/null || { echo "needs a static busybox (apt-get install busybox-static)" >&2; exit 1; }

rootfs="$work/conc-rootfs"
rm -rf "$rootfs" && mkdir -p "$rootfs/bin"
cp "$(command -v busybox)" "$rootfs/bin/busybox"
for a in sh true sleep; do ln -s busybox "$rootfs/bin/$a"; done
tar -C "$rootfs" -cf "$work/conc-busybox.tar" .
root="$work/conc-root"
clean_root "$root"
s="$strata --root $root"
$s import "$work/conc-busybox.tar" bench-bb >/dev/null

echo "loadavg: $(cat /proc/loadavg)"
out="$work/conc-out"
rm -rf "$out" && mkdir -p "$out"
t0=$(date +%s.%N)
# A long sleep: on a loaded machine 100 starts can outlast a short one, and the first
# containers would have exited normally before the count below (rm -f ends them anyway).
for i in $(seq "$n"); do
    ($s run -d --network none --name "c$i" bench-bb sleep 600 >"$out/$i.id" 2>"$out/$i.err"; echo $? >"$out/$i.rc") &
done
wait
t1=$(date +%s.%N)
failed=$(grep -Lx 0 "$out"/*.rc | wc -l)
running=$($s ps -q | wc -l)
echo "$n concurrent 'strata run -d': $(secs "$(echo "$t1 - $t0" | bc)") s, $failed failed, $running running"
[ "$running" -eq "$n" ] || $s ps -a | grep -v ' Up ' >&2
if [ "$failed" -gt 0 ]; then
    for f in $(grep -Lx 0 "$out"/*.rc); do cat "${f%.rc}.err"; done | sort | uniq -c | head >&2
fi

# Monitors: found by their command line (this store's root), never by bare name.
rss_kb=$(for p in /proc/[0-9]*; do
    cmd=$({ tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null) || continue
    case "$cmd" in
    "$strata --root $root "*__monitor*) awk '/^VmRSS/ { r = $2 } /^RssAnon/ { a = $2 } END { print r, a }' "$p/status" 2>/dev/null ;;
    esac
done)
count=$(echo "$rss_kb" | grep -c . || true)
# RSS counts the shared pages of the strata binary in every monitor; RssAnon is each one's own.
echo "$rss_kb" | awk -v n="$count" '{ s += $1; a += $2; if ($1 > m) m = $1 }
    END { printf "monitors: %d, RSS sum %.1f MB, per monitor %.2f MB (max %.2f MB); private (RssAnon) sum %.1f MB, per monitor %.2f MB\n", n, s / 1024, s / 1024 / n, m / 1024, a / 1024, a / 1024 / n }'
echo "strata run -d peak RSS: $(peak_rss_mb "$s run -d --network none bench-bb sleep 1") MB"

t2=$(date +%s.%N)
$s rm -f $($s ps -aq) >/dev/null
echo "rm -f of all: $(secs "$(echo "$(date +%s.%N) - $t2" | bc)") s; left: $($s ps -aq | wc -l) containers"

# Leaks.
mounts=$(awk -v d="$root" 'index($5, d "/") == 1' /proc/self/mountinfo | wc -l)
state=$(find "$root/runtime" -mindepth 2 -maxdepth 2 2>/dev/null | wc -l)
cgroups=0
for ids in "$out"/*.id; do
    id=$(cat "$ids")
    [ -n "$id" ] || continue
    c=$(find /sys/fs/cgroup -maxdepth 4 -type d -name "*$id*" 2>/dev/null | wc -l)
    cgroups=$((cgroups + c))
done
echo "leaks: $mounts mounts under the root, $state runtime state entries, $cgroups cgroup dirs"
clean_root "$root"
[ "$failed" -eq 0 ] && [ "$mounts" -eq 0 ] && [ "$state" -eq 0 ] && [ "$cgroups" -eq 0 ]
