#!/usr/bin/env bash
# The cost of the worker's transmit flushes (issue #15), from callgrind: flushing both
# buffers after every receive burst (what the worker does) against sending only full
# buffers (the limit of l3fwd's timed drain under load), in instructions per frame, for
# receive bursts of 1, 4 and 32 frames. Counts only the measure_* functions of
# crates/runtime/examples/flush_cost.rs, at two sizes: the difference excludes setup.
# The transmit queue is a sink: a NIC's doorbell write per tx_burst is not counted.
#
#   perf/flush-cost.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is missing (apt install valgrind)" >&2; exit 1; }
cargo build -q --release -p tandem-runtime --example flush_cost
bin=${CARGO_TARGET_DIR:-target}/release/examples/flush_cost
count() {
    valgrind --tool=callgrind --toggle-collect='*measure_*' --callgrind-out-file=/dev/null \
        "$bin" "$@" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
for frames in 1 4 32; do
    for mode in per-burst drain; do
        a=$(count "$mode" "$frames" 2048)
        b=$(count "$mode" "$frames" 4096)
        echo "mode=$mode frames_per_burst=$frames instructions_per_frame=$(awk -v a="$a" -v b="$b" -v f="$frames" 'BEGIN { printf "%.1f", (b - a) / (2048 * f) }')"
    done
done
