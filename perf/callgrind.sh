#!/usr/bin/env bash
# Instructions per packet on the engine's fast path, from callgrind (stable across runs
# and machine load). Counts only Bench::run_burst (the engine's burst processing and
# poll), at two burst counts; the difference divided by the packets between them
# excludes setup.
#
#   perf/callgrind.sh [FLOWS] [MODE]     (default 10000 mirror; MODE: mirror, mirror-log
#                                          or forward)
#
# mirror-log: mirrored flows whose client bytes are logged for new standbys (mirror mode's
# `replay`, a profile's default; `mirror` is `replay: { limit: 0 }`).
# forward: forward-mode flows (mode: forward), adopted mid-stream, client data and the
# replica's answer alternately, NAT only.
set -euo pipefail
cd "$(dirname "$0")/.."
flows=${1:-10000}
mode=${2:-mirror}
case $mode in mirror | mirror-log | forward) ;; *) echo "MODE is mirror, mirror-log or forward" >&2; exit 2 ;; esac
cargo build -q --release -p tandem-engine --example fastpath_count
bin=${CARGO_TARGET_DIR:-target}/release/examples/fastpath_count
count() {
    valgrind --tool=callgrind --toggle-collect='*run_burst*' --callgrind-out-file=/dev/null \
        "$bin" "$flows" "$1" "$mode" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
a=$(count 2000)
b=$(count 4000)
packets=$((2000 * 32))
# The flow hash's unit (Avx2, Sse2 or Scalar) as the engine found it under valgrind: the
# count depends on it.
unit=$(valgrind -q --tool=none "$bin" "$flows" 1 "$mode" 2>/dev/null | sed -n 's/.*hash_unit=\([A-Za-z0-9]*\).*/\1/p')
echo "mode=$mode flows=$flows instructions_per_packet=$(( (b - a) / packets )) hash_unit=$unit"
