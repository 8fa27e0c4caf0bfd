#!/bin/bash
# Times applying the fixture rootfs tar as a layer through the CLI (`strata import`, which
# returns durable) against GNU `tar -x` of the same tar into the same filesystem, both followed
# by `sync`; medians of BENCH_RUNS runs. Also strata's peak RSS, and `docker import` when
# Debian's dockerd is installed.
#
#   bench/apply.sh [FIXTURE]     default: bench/fixtures/rootfs.tar (made if missing)
#   BENCH_RUNS=5 BENCH_DIR=/var/tmp/strata-bench BENCH_DRIVER=overlay2
set -euo pipefail
. "$(dirname "$0")/lib.sh"

tarfile=$(fixture "${1:-$here/fixtures/rootfs.tar}")
build_strata
root=$work/apply-root
extract=$work/apply-tar
import="'$strata' --root '$root' --storage-driver $driver import '$tarfile' bench:latest >/dev/null && sync"

echo "fixture: $tarfile ($(du -m --apparent-size "$tarfile" | cut -f1) MB), $runs runs, driver $driver, in $work"
cat "$tarfile" >/dev/null # both start from a warm page cache
t_strata=$(median_seconds "'$here/clean-root.sh' '$root'; sync" "$import")
t_tar=$(median_seconds "rm -rf '$extract'; mkdir -p '$extract'; sync" "tar -xf '$tarfile' -C '$extract' && sync")
echo "strata $(secs "$t_strata") s, tar -x $(secs "$t_tar") s, ratio $(ratio "$t_strata" "$t_tar") (target <= 1.5)"

clean_root "$root"; sync
rss=$(peak_rss_mb "'$strata' --root '$root' --storage-driver $driver import '$tarfile' bench:latest")
echo "strata import peak RSS $rss MB (target < 64 MB)"
clean_root "$root"; rm -rf "$extract"

if ! command -v dockerd >/dev/null; then
    echo "dockerd not installed: reference figure skipped"
    exit 0
fi
sock=/tmp/strata-bench-docker.sock
droot=$work/docker
dockerd --data-root "$droot" --exec-root "$work/docker-exec" --pidfile "$work/docker.pid" \
    --host "unix://$sock" --iptables=false --bridge=none >"$work/dockerd.log" 2>&1 &
dockerd_pid=$!
trap 'kill $dockerd_pid 2>/dev/null; wait $dockerd_pid 2>/dev/null; clean_root "$droot" "$work/docker-exec"' EXIT
for _ in $(seq 100); do docker -H "unix://$sock" info >/dev/null 2>&1 && break; sleep 0.2; done
docker="docker -H unix://$sock"
t_docker=$(median_seconds "$docker rmi -f bench:latest >/dev/null 2>&1 || true; sync" \
    "$docker import '$tarfile' bench:latest >/dev/null && sync")
echo "docker import $(secs "$t_docker") s, strata/docker ratio $(ratio "$t_strata" "$t_docker") (dockerd $($docker version -f '{{.Server.Version}}'))"
