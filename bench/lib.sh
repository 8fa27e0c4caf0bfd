# Shared by the bench scripts: paths, building the CLI, timing medians, cleaning store roots.
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
work=${BENCH_DIR:-/var/tmp/strata-bench}
runs=${BENCH_RUNS:-5}
driver=${BENCH_DRIVER:-overlay2}
# STRATA_BIN: time that binary instead of building this checkout (to compare two builds).
strata=${STRATA_BIN:-$repo/target/release/strata}
mkdir -p "$work"

build_strata() {
    [ -n "${STRATA_BIN:-}" ] || (cd "$repo" && cargo build --release -q -p strata)
    "$strata" --help >/dev/null 2>&1 || { echo "$strata does not run; is the CLI written yet?" >&2; exit 1; }
}

# fixture PATH [env settings...]: makes the fixture tar if it is missing.
fixture() {
    local path=$1; shift
    [ -f "$path" ] || env "$@" "$here/make-fixture.sh" "$path" >&2
    echo "$path"
}

clean_root() {
    "$here/clean-root.sh" "$@"
}

# median_seconds PREPARE COMMAND [hyperfine options]: median wall time of $runs runs of
# COMMAND (run by sh), PREPARE run before each. Uses hyperfine when installed.
median_seconds() {
    local prepare=$1 command=$2
    shift 2
    if command -v hyperfine >/dev/null; then
        local json="$work/hyperfine.json"
        hyperfine --style none --runs "$runs" --prepare "$prepare" --export-json "$json" "$@" "$command" >&2
        jq -r '.results[0].median' "$json"
    else
        local i t0 t1
        for i in $(seq "$runs"); do
            sh -c "$prepare"
            t0=$(date +%s.%N); sh -c "$command" >/dev/null; t1=$(date +%s.%N)
            echo "$t1 - $t0" | bc
        done | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
    fi
}

# peak_rss_mb COMMAND: maximum resident set size of one run, in MB.
peak_rss_mb() {
    /usr/bin/time -v sh -c "$1" 2>&1 >/dev/null | awk -F: '/Maximum resident/ { printf "%.1f", $2 / 1024 }'
}

ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'
}

secs() {
    awk -v a="$1" 'BEGIN { printf "%.2f", a }'
}

ms() {
    awk -v a="$1" 'BEGIN { printf "%.1f", a * 1000 }'
}
