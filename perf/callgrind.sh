#!/usr/bin/env bash
# Instructions per packet on the engine's fast path, from callgrind (stable across runs
# and machine load). Counts only Bench::run_burst (the engine's burst processing and
# poll), at two burst counts; the difference divided by the packets between them
# excludes setup.
#
#   perf/callgrind.sh [FLOWS]      (default 10000)
set -euo pipefail
cd "$(dirname "$0")/.."
flows=${1:-10000}
cargo build -q --release -p tandem-engine --example fastpath_count
bin=target/release/examples/fastpath_count
count() {
    valgrind --tool=callgrind --toggle-collect='*run_burst*' --callgrind-out-file=/dev/null \
        "$bin" "$flows" "$1" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
a=$(count 2000)
b=$(count 4000)
packets=$((2000 * 32))
echo "flows=$flows instructions_per_packet=$(( (b - a) / packets ))"
