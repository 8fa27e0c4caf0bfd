#!/bin/sh
# Crash torture, long variant: SIGKILLs `strata load/import/create/start/commit/mount/rm/
# rmi/prune` at random instants, checks the store before and after recovery after each kill
# (crates/cli/tests/crash_torture.rs). Needs root, runc and a static /bin/busybox.
#
#   bench/crash-torture.sh [KILLS] [SEED]     (default 1000 kills, a random seed)
#
# Prints runs, kills by operation, the leftovers found before recovery, and problems (zero
# is the target; the test fails and prints each one otherwise).
set -eu
cd "$(dirname "$0")/.."
STRATA_TORTURE_KILLS="${1:-1000}"
export STRATA_TORTURE_KILLS
if [ -n "${2:-}" ]; then
    STRATA_TORTURE_SEED="$2"
    export STRATA_TORTURE_SEED
fi
cargo test -p strata --test crash_torture -- --nocapture 2>&1 | grep -E 'crash torture|^after|test result|panicked'
