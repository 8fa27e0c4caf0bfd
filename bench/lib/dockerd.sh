# shellcheck shell=bash
# A reference dockerd for benches and parity checks: its own data root, socket, exec root and
# containerd, no networking set-up (no iptables, no bridge), storage driver overlay2. It never
# touches a system dockerd at /var/run/docker.sock.
#
# Usage (sourced):
#   source bench/lib/dockerd.sh
#   dockerd_start || exit 0     # prints why and returns 1 if dockerd is missing or won't start
#   docker import ...           # DOCKER_HOST points at the reference daemon
#   dockerd_stop
#
# Environment (all optional):
#   STRATA_REF_DOCKER_ROOT     data root (default /tmp/strata-ref-docker)
#   STRATA_REF_DOCKER_TIMEOUT  seconds to wait for `docker info` (default 30)
#   STRATA_REF_DOCKER_KEEP=1   keep the data root on stop (default: removed)

STRATA_REF_DOCKER_ROOT=${STRATA_REF_DOCKER_ROOT:-/tmp/${STRATA_REF_DOCKER_NAME:-strata-ref}-docker}
# STRATA_REF_DOCKER_NAME (default strata-ref) names the socket, exec root, pid file and log:
# a bench that must not share its daemon with another one running at the same time (which
# would stop it at start-up) sets its own name.
STRATA_REF_DOCKER_NAME=${STRATA_REF_DOCKER_NAME:-strata-ref}
STRATA_REF_DOCKER_SOCK=/tmp/$STRATA_REF_DOCKER_NAME-docker.sock
STRATA_REF_DOCKER_EXEC=/tmp/$STRATA_REF_DOCKER_NAME-exec
STRATA_REF_DOCKER_PIDFILE=/tmp/$STRATA_REF_DOCKER_NAME-docker.pid
STRATA_REF_DOCKER_LOG=/tmp/$STRATA_REF_DOCKER_NAME-docker.log

# Starts the reference dockerd and exports DOCKER_HOST. Returns 1 (with a message on stderr)
# if dockerd is not installed or does not answer in time; nothing is left running then.
dockerd_start() {
    if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
        echo "dockerd not installed: reference figures skipped" >&2
        return 1
    fi
    if [ "$(id -u)" != 0 ]; then
        echo "dockerd needs root: reference figures skipped" >&2
        return 1
    fi
    if _dockerd_running; then
        echo "reference dockerd already running (pid $(cat "$STRATA_REF_DOCKER_PIDFILE")); stopping it first" >&2
        dockerd_stop
    fi
    mkdir -p "$STRATA_REF_DOCKER_ROOT" "$STRATA_REF_DOCKER_EXEC"
    rm -f "$STRATA_REF_DOCKER_SOCK"
    # setsid: its own process group, so stop can signal dockerd and the containerd it spawned.
    setsid dockerd \
        --data-root "$STRATA_REF_DOCKER_ROOT" \
        --exec-root "$STRATA_REF_DOCKER_EXEC" \
        --pidfile "$STRATA_REF_DOCKER_PIDFILE" \
        --host "unix://$STRATA_REF_DOCKER_SOCK" \
        --storage-driver overlay2 \
        --iptables=false --ip6tables=false --ip-masq=false --bridge=none \
        --userland-proxy=false \
        >"$STRATA_REF_DOCKER_LOG" 2>&1 </dev/null &
    _STRATA_REF_DOCKER_PID=$!
    export DOCKER_HOST="unix://$STRATA_REF_DOCKER_SOCK"
    local timeout=${STRATA_REF_DOCKER_TIMEOUT:-30} waited=0
    until docker info >/dev/null 2>&1; do
        if ! kill -0 "$_STRATA_REF_DOCKER_PID" 2>/dev/null; then
            echo "reference dockerd exited at start-up; last lines of $STRATA_REF_DOCKER_LOG:" >&2
            tail -n 15 "$STRATA_REF_DOCKER_LOG" >&2
            dockerd_stop
            return 1
        fi
        if [ "$waited" -ge $((timeout * 10)) ]; then
            echo "reference dockerd did not answer 'docker info' within ${timeout}s" \
                "(STRATA_REF_DOCKER_TIMEOUT); see $STRATA_REF_DOCKER_LOG" >&2
            dockerd_stop
            return 1
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
}

# Stops the reference dockerd and its containerd, unmounts whatever is left under its data
# and exec roots, and removes the data root unless STRATA_REF_DOCKER_KEEP=1.
dockerd_stop() {
    local pid=${_STRATA_REF_DOCKER_PID:-}
    [ -z "$pid" ] && [ -s "$STRATA_REF_DOCKER_PIDFILE" ] && pid=$(cat "$STRATA_REF_DOCKER_PIDFILE")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        # dockerd stops its own containerd on SIGTERM; the group kill below catches stragglers.
        kill -TERM "$pid" 2>/dev/null
        local i
        for i in $(seq 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    fi
    _dockerd_kill_leftovers
    _dockerd_unmount_under "$STRATA_REF_DOCKER_EXEC"
    _dockerd_unmount_under "$STRATA_REF_DOCKER_ROOT"
    rm -rf "$STRATA_REF_DOCKER_EXEC"
    if [ "${STRATA_REF_DOCKER_KEEP:-0}" != 1 ]; then
        rm -rf "$STRATA_REF_DOCKER_ROOT"
    fi
    rm -f "$STRATA_REF_DOCKER_SOCK" "$STRATA_REF_DOCKER_PIDFILE"
    unset _STRATA_REF_DOCKER_PID
    if [ "${DOCKER_HOST:-}" = "unix://$STRATA_REF_DOCKER_SOCK" ]; then
        unset DOCKER_HOST
    fi
    return 0
}

_dockerd_running() {
    [ -s "$STRATA_REF_DOCKER_PIDFILE" ] && kill -0 "$(cat "$STRATA_REF_DOCKER_PIDFILE")" 2>/dev/null
}

# containerd and shims started by our dockerd: found by their state/socket paths under our
# exec root, never by bare process name (other daemons may run on this machine).
_dockerd_kill_leftovers() {
    local p cmd
    for p in /proc/[0-9]*; do
        # Processes may exit while we look: ignore those.
        cmd=$({ tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null) || continue
        case "$cmd" in
        *containerd*"$STRATA_REF_DOCKER_EXEC"*) kill -KILL "${p#/proc/}" 2>/dev/null ;;
        esac
    done
}

# Unmounts every mount point under $1, deepest first.
_dockerd_unmount_under() {
    local dir=$1 m
    [ -d "$dir" ] || return 0
    dir=$(realpath "$dir")
    awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo |
        sort -r | while read -r m; do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
    done
}
