#!/usr/bin/env bash
# Reconnect-mode recovery figures (issue #16: MigWare recovered in 207-680 ms, 456 ms on
# average, at 20-200 connections): in the namespace lab, the service in reconnect mode with
# `replay: http1`, nginx on the primary and the backup (the same eight 256 KiB files, the
# same mtimes), and CONNS keep-alive HTTP/1.1 clients (perf/http_stall.py, one asyncio
# process) each fetching the files in turn at RATE KiB/s, every body's SHA-256 checked.
# The files are FILE_KIB each, so that less than that is skipped at a replay (the issue's
# target is for less than 1 MiB); `parallel: 256` lets every connection of a worker replay
# at once (the default, 64, resets the rest).
# Each run kills the primary's nginx with -9 three seconds in; every connection is then
# replayed to the backup from its oldest unanswered request, which it is answering: the
# part of that answer the client already has is checked and skipped.
#
# Per run: the connections that went on with every body right; each connection's stall
# (its longest gap between reads, less its median gap: the pacing), their median and
# max; and Tandem's own mean reconnect time (tandem_reconnect_nanoseconds_total over
# tandem_reconnects_spliced_total: from the replay's SYN to its splice). The primary is
# started again between runs. Needs root. Raw lines go to perf/out/reconnect-*.txt.
#
#   perf/reconnect.sh [RUNS] [CONNS]     # default: 10 runs of 200 connections
#   TANDEM_PERF_RATE (KiB/s per connection, default 20), TANDEM_PERF_FILE_KIB (64)
#   TANDEM_E2E_NO_BUILD=1 skips the cargo build
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
conns=${2:-200}
rate=${TANDEM_PERF_RATE:-20}
file_kib=${TANDEM_PERF_FILE_KIB:-64}
# shellcheck source=../appliance/lib.sh
. appliance/lib.sh
E2E_NAME="reconnect-perf"
# shellcheck source=../appliance/e2e/common.sh
. appliance/e2e/common.sh
e2e_setup python3 nginx curl jq

profile="$tmp/lab-reconnect-perf.yaml"
"$bench" profile from configs/lab.yaml --replicas primary,backup --probe-ports 80 \
    --mode reconnect --replay http1 --replay-limit 64KiB >"$profile" ||
    { bad "could not make the profile"; exit 1; }
sed -i 's/^    parallel: 64$/    parallel: 256/' "$profile"
grep -q '^    parallel: 256$' "$profile" || { bad "could not set replay.parallel"; exit 1; }
e2e_run_tandem "$profile"

for name in primary backup; do
    mkdir -p "$tmp/www-$name"
    for i in 1 2 3 4 5 6 7 8; do
        python3 -c '
import random, sys
random.seed(int(sys.argv[2]))
open(sys.argv[1], "wb").write(random.randbytes(int(sys.argv[3]) << 10))
' "$tmp/www-$name/r$i" "$i" "$file_kib"
    done
    chmod 644 "$tmp/www-$name"/*
    touch -d @1700000000 "$tmp/www-$name"/*
    start_nginx "$name" "$tmp/www-$name" 3600 2048
done
wait_health primary up && wait_health backup up ||
    { bad "replicas not up"; exit 1; }

total() { awk -v k="$1" 'index($1, k "{") == 1 || $1 == k { n += $2 } END { printf "%.0f\n", n }' <<<"$(scrape)"; }

mkdir -p perf/out
raw="perf/out/reconnect-$(date -u +%Y%m%dT%H%M%SZ).txt"
echo "# perf/reconnect.sh $runs $conns, TANDEM_PERF_RATE=$rate TANDEM_PERF_FILE_KIB=$file_kib, on $(nproc) CPUs, $(uname -r), $(git rev-parse --short HEAD 2>/dev/null || echo unknown)" >"$raw"
for run in $(seq 1 "$runs"); do
    # A quiet moment: the last run's 200 closes on the backup delay its probes' answers
    # past the lab's 10 ms timeout for a moment (it is failed over and back as silent).
    sleep 3
    if ! kill -0 "$(cat "$tmp/nginx-primary.pid" 2>/dev/null)" 2>/dev/null; then
        rm -f "$tmp/nginx-primary.pid"
        start_nginx primary "$tmp/www-primary" 3600 2048
    fi
    wait_health primary up || { bad "run $run: the primary did not come back"; break; }
    wait_health backup up || { bad "run $run: the backup is not up ($(health_of backup))"; break; }
    ns0=$(total tandem_reconnect_nanoseconds_total)
    sp0=$(total tandem_reconnects_spliced_total)
    mm0=$(total tandem_reconnects_mismatch_total)
    rc0=$(total tandem_reconnects_total)
    out="$tmp/stall-$run.json"
    lab_exec "$LAB_CLIENT_NS" timeout 60 python3 "$repo/perf/http_stall.py" "$LAB_VIP" 80 \
        "$conns" 8 "$rate" "$tmp/www-primary" "$out" &
    client=$!
    sleep 3
    master=$(cat "$tmp/nginx-primary.pid")
    # shellcheck disable=SC2046  # a list of pids
    kill -KILL "$master" $(pgrep -P "$master") 2>/dev/null || true
    wait "$client" || true
    ns=$(($(total tandem_reconnect_nanoseconds_total) - ns0))
    sp=$(($(total tandem_reconnects_spliced_total) - sp0))
    mm=$(($(total tandem_reconnects_mismatch_total) - mm0))
    rcs=$(($(total tandem_reconnects_total) - rc0))
    line=$(python3 - "$out" "$run" "$conns" "$ns" "$sp" "$mm" "$rcs" <<'PY'
import json, statistics, sys
out, run, conns, ns, sp, mm, rc = sys.argv[1:8]
try:
    res = json.load(open(out))
except (OSError, ValueError):
    res = []
ok = [r for r in res if r["ok"]]
stalls = sorted(1000 * (r["max_gap"] - r.get("median_gap", 0)) for r in ok)
errs = sorted({r["error"] for r in res if not r["ok"]})
mean = int(ns) / int(sp) / 1e6 if int(sp) else float("nan")
print(
    f"result: run={run} conns={conns} ok={len(ok)} reconnects={rc} spliced={sp} mismatch={mm}"
    f" stall_median_ms={statistics.median(stalls) if stalls else float('nan'):.1f}"
    f" stall_max_ms={max(stalls) if stalls else float('nan'):.1f}"
    f" tandem_mean_ms={mean:.1f}"
    + (f" errors={'|'.join(errs)[:200]!r}" if errs else "")
)
PY
)
    echo "$line" | tee -a "$raw"
    ok_n=$(sed -E 's/.* ok=([0-9]+).*/\1/' <<<"$line")
    if [ "$ok_n" = "$conns" ]; then
        ok "run $run: $conns of $conns connections went on, every body right"
    else
        bad "run $run: only $ok_n of $conns connections went on with every body right"
    fi
done
e2e_stop_tandem
grep -E '^\s+(reconnects[a-z_]*|replayed_bytes|replay_[a-z_]+|http1_[a-z_]+|reconnect_ns|flows_lost|drop\.(past_gap|dead_leg|no_flow|bad_state))\s' "$tmp/tandem.out" | tee -a "$raw" || true
echo
echo "raw results: $raw"
python3 - "$raw" <<'PY'
import statistics, sys
rows = []
for line in open(sys.argv[1]):
    if line.startswith("result:"):
        rows.append(dict(f.split("=", 1) for f in line.split()[1:] if "=" in f))
def col(k):
    return [float(r[k]) for r in rows if r.get(k) not in (None, "nan")]
med, mx, mean = col("stall_median_ms"), col("stall_max_ms"), col("tandem_mean_ms")
if med:
    print(f"runs {len(rows)}: stall per run, median of the medians {statistics.median(med):.1f} ms,"
          f" worst {max(mx):.1f} ms; Tandem's mean reconnect time per run, median"
          f" {statistics.median(mean):.1f} ms")
PY
e2e_finish
