#!/usr/bin/env bash
# The cost of measuring added latency (issue #6), from callgrind (instruction counts are
# stable across runs and machine load): the worker's stamped transmit buffering with its
# histogram records against the plain burst, per frame sent, and the cost of one fold of a
# worker's histogram into its slot (every 100 ms). Counts only the measure_* functions of
# crates/runtime/examples/latency_cost.rs, at two sizes: the difference excludes setup.
#
#   perf/latency-cost.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is missing (apt install valgrind)" >&2; exit 1; }
cargo build -q --release -p tandem-runtime --example latency_cost
bin=${CARGO_TARGET_DIR:-target}/release/examples/latency_cost
count() {
    valgrind --tool=callgrind --toggle-collect='*measure_*' --callgrind-out-file=/dev/null \
        "$bin" "$1" "$2" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
frames_per_burst=64 # 32 client frames, two copies each
for mode in without with; do
    a=$(count "$mode" 2000)
    b=$(count "$mode" 4000)
    per=$(awk -v a="$a" -v b="$b" -v f="$frames_per_burst" 'BEGIN { printf "%.1f", (b - a) / (2000 * f) }')
    echo "mode=$mode instructions_per_frame=$per"
    eval "per_$mode=$per"
done
# shellcheck disable=SC2154  # set by the eval above
echo "measuring_costs_instructions_per_frame=$(awk -v w="$per_with" -v o="$per_without" 'BEGIN { printf "%.1f", w - o }')"
a=$(count fold 2)
b=$(count fold 4)
echo "fold_instructions=$(( (b - a) / 2 ))"
