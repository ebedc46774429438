#!/usr/bin/env bash
# Is this machine steady enough for perf/run.sh's ratios? One dpdk-testpmd (io forwarding)
# and one tandem-bench, both kept up, with many back-to-back `max` windows between them on
# the kit's memif links and cores. Nothing changes between the windows but time, so their
# spread is the machine's (the host's scheduling, its memory bandwidth between the two
# cores), not a DUT's. Prints each window's rate and the spread (max / min); where that is
# well above the differences you want to see, a median of a few runs cannot settle them.
#
#   sudo perf/steadiness.sh
#   sudo TANDEM_STEADY_SIZE=64 TANDEM_STEADY_WINDOWS=20 perf/steadiness.sh
set -euo pipefail
cd "$(dirname "$0")/.."
me=perf/steadiness.sh
# shellcheck source=lib.sh
. perf/lib.sh

windows=${TANDEM_STEADY_WINDOWS:-10}   # measured windows, back to back
secs=${TANDEM_STEADY_SECONDS:-2}       # seconds per window
size=${TANDEM_STEADY_SIZE:-1500}       # frame bytes with the FCS
flows=${TANDEM_STEADY_FLOWS:-1}
gen_cpu=${TANDEM_BENCH_GEN_CPU:-0}     # the same layout as perf/run.sh
fwd_cpu=${TANDEM_BENCH_FWD_CPU:-1}
build=${TANDEM_BENCH_BUILD:-1}

perf_require_root
for v in "$windows" "$secs" "$size" "$flows"; do
    [[ $v =~ ^[1-9][0-9]*$ ]] || { echo "perf/steadiness.sh: bad number $v" >&2; exit 1; }
done
[ "$windows" -le 100 ] || { echo "perf/steadiness.sh: at most 100 windows" >&2; exit 1; }
perf_need_testpmd
perf_build tandem-bench

perf_run_dir steady
perf_eal
total_s=$(( windows * (secs + 1) + 60 ))

timeout "$total_s" dpdk-testpmd "${dut_eal[@]}" \
    -- --forward-mode=io --auto-start --nb-cores=1 --rxq=1 --txq=1 \
    --total-num-mbufs=32768 --stats-period 60 >"$run/dut.log" 2>&1 &
dut_pid=$!
wait_for 30 "$run/dut.log" "start packet forwarding" "$dut_pid" || { cat "$run/dut.log" >&2; exit 1; }

phases=()
for _ in $(seq "$windows"); do phases+=(--phase max:0); done
echo "perf/steadiness.sh: $windows windows of ${secs}s, $size-byte frames, $flows flows, testpmd io on CPU $fwd_cpu" >&2
timeout "$total_s" "$bench" stream --flows "$flows" --frame-size "$size" "${phases[@]}" \
    --seconds "$secs" --warmup 1 --dst-mac "$dut_mac0" --rx-queues 1 \
    --out-dir "$run" --prefix steady --label testpmd --linger 2 -- "${gen_eal[@]}" \
    >"$run/gen.log" 2>&1 || { cat "$run/gen.log" >&2; exit 1; }

# "tandem-bench: steady max: tx X Mpps rx Y Mpps ...": the received rate of each window.
grep '^tandem-bench: steady max:' "$run/gen.log" | awk '
    { for (i = 1; i < NF; i++) if ($i == "rx") { r[n++] = $(i + 1); break } }
    END {
        if (n == 0) { print "perf/steadiness.sh: no windows measured" > "/dev/stderr"; exit 1 }
        printf "rx Mpps per window:"; for (i = 0; i < n; i++) printf " %s", r[i]; print ""
        for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (r[j] < r[i]) { t = r[i]; r[i] = r[j]; r[j] = t }
        med = (n % 2) ? r[int(n / 2)] : (r[n / 2 - 1] + r[n / 2]) / 2
        printf "windows=%d min=%.3f median=%.3f max=%.3f spread=%.2f\n", n, r[0], med, r[n - 1], r[n - 1] / r[0]
    }'
