#!/usr/bin/env bash
# Recovery figures per failure kind (issue #4): runs appliance/e2e/failover.sh RUNS times
# for each kind and prints, per kind, the median and max of
#   detect_ms  the failure injected -> the appliance switched the replica (its log);
#   stall_ms   the clients' stall: each run's median and max over its 20 connections
#              (the longest gap in received bytes spanning or starting within 1 s after
#              the failure);
# and the clients' gap before the failure (the lab's background: the stream client
# pauses 5 ms between requests, and 20 Python clients share the host's cores).
#
# Needs root (the lab). Builds once. Raw `result:` lines go to perf/out/recovery-*.txt.
#
#   perf/recovery.sh [RUNS] [KIND...]     # default: 10 runs of kill silence drop freeze backup
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
shift || true
kinds=("$@")
[ ${#kinds[@]} -gt 0 ] || kinds=(kill silence drop freeze backup)
if [ "$(id -u)" != 0 ]; then
    echo "perf/recovery.sh: needs root (the namespace lab)" >&2
    exit 1
fi
if [ -d "$HOME/.cargo/bin" ]; then PATH="$HOME/.cargo/bin:$PATH"; fi
cargo build --release --locked -p tandem -p tandem-bench
mkdir -p perf/out
raw="perf/out/recovery-$(date -u +%Y%m%dT%H%M%SZ).txt"
{
    echo "# perf/recovery.sh $runs ${kinds[*]}, TANDEM_E2E_CONNS=${TANDEM_E2E_CONNS:-20}, on $(nproc) CPUs, $(uname -r), $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    grep -E '^\s+(interval|timeout|fall|rise|suspect_burst|suspect_interval|ack_lag|output_lag):' configs/lab.yaml |
        sed 's/^ */# /'
    echo "# (freeze runs with output_lag: 100ms: appliance/e2e/failover.sh)"
} >"$raw"
for kind in "${kinds[@]}"; do
    for i in $(seq 1 "$runs"); do
        log=$(mktemp /tmp/tandem-recovery.XXXXXX)
        rc=0
        TANDEM_E2E_NO_BUILD=1 appliance/e2e/failover.sh "$kind" >"$log" 2>&1 || rc=$?
        line=$(grep '^result:' "$log" || echo "result: kind=$kind ok=no detect_ms=unknown")
        echo "$line rc=$rc" | tee -a "$raw"
        if [ "$rc" != 0 ]; then grep -E 'FAILED' "$log" | sed 's/^/#   /' | tee -a "$raw"; fi
        rm -f "$log"
    done
done
echo
echo "raw results: $raw"
python3 - "$raw" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    if not line.startswith("result:"):
        continue
    kv = dict(f.split("=", 1) for f in line.split()[1:] if "=" in f)
    rows.setdefault(kv["kind"], []).append(kv)
def nums(rs, k):
    out = []
    for r in rs:
        try:
            out.append(float(r.get(k, "")))
        except ValueError:
            pass
    return out
def fmt(v):
    return "-" if not v else f"{statistics.median(v):.1f} / {max(v):.1f}"
print("| failure | runs passed | detect ms, median / max | stall ms (run medians), median / max | stall ms (run max), median / max | gap before ms, median |")
print("| --- | --- | --- | --- | --- | --- |")
for kind, rs in rows.items():
    passed = sum(r.get("ok") == "yes" for r in rs)
    gb = nums(rs, "gap_before_ms_median")
    before = f"{statistics.median(gb):.1f}" if gb else "-"
    print(f"| {kind} | {passed}/{len(rs)} | {fmt(nums(rs, 'detect_ms'))} | {fmt(nums(rs, 'stall_ms_median'))} "
          f"| {fmt(nums(rs, 'stall_ms_max'))} | {before} |")
PY
