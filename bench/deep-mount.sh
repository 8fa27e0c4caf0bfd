#!/bin/sh
# Times mounting a writable layer on a 500-layer stack (or LAYERS) through the storage library.
#   bench/deep-mount.sh [LAYERS] [DRIVER]     defaults: 500 overlay2
set -eu
cd "$(dirname "$0")/.."
exec cargo run --release -q -p strata-storage --example deep_mount -- "$@"
