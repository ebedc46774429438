#!/usr/bin/env bash
# Failover with N established flows (issue #6): the control core's switch and the
# worker's sweep until every flow has moved to the backup, for N = 1, 1k, 100k, 1M
# (crates/runtime/examples/failover_bench.rs; pure Rust, no DPDK, no root).
#
#   perf/failover.sh [FLOWS]        # FLOWS: comma-separated, default 1,1000,100000,1000000
#
# Raw key=value lines go to perf/out/failover-<stamp>.txt (or $TANDEM_FAILOVER_OUT); a
# table is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
flows=${1:-1,1000,100000,1000000}
if [ -d "$HOME/.cargo/bin" ]; then PATH="$HOME/.cargo/bin:$PATH"; fi
cargo build --release --locked -p tandem-runtime --example failover_bench
mkdir -p perf/out
raw=${TANDEM_FAILOVER_OUT:-perf/out/failover-$(date -u +%Y%m%dT%H%M%SZ).txt}
tmp=$(mktemp /tmp/tandem-failover.XXXXXX)
trap 'rm -f "$tmp"' EXIT
"${CARGO_TARGET_DIR:-target}"/release/examples/failover_bench --flows "$flows" --out "$tmp"
{
    echo "# perf/failover.sh $flows, on $(nproc) CPUs, $(uname -r), $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    cat "$tmp"
} >"$raw"
echo
echo "raw results: $raw"
python3 - "$raw" <<'PY'
import sys
print("| flows | control switch ns | orders/worker | table values changed | sweep ms | passes | median pass µs | max pass µs | ns/flow | table B/flow |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for line in open(sys.argv[1]):
    if line.startswith("#") or "=" not in line:
        continue
    kv = dict(f.split("=", 1) for f in line.split())
    print(f"| {kv['flows']} | {kv['control_switch_ns']} | {kv['control_orders_per_worker']} "
          f"| {kv['control_table_values_changed']} | {int(kv['sweep_ns']) / 1e6:.3f} | {kv['sweep_passes']} "
          f"| {int(kv['sweep_median_pass_ns']) / 1e3:.0f} | {int(kv['sweep_max_pass_ns']) / 1e3:.0f} | {kv['sweep_ns_per_flow']} | {kv['table_bytes_per_flow']} |")
PY
