#!/usr/bin/env bash
# The memif benchmark (issue #6): Tandem in forward mode against dpdk-testpmd in io
# forwarding mode, both between the same two net_memif links to tandem-bench, for every
# flow count and frame size; then the mirror path with a failure (perf/mirror.sh) and the
# failover of N flows (perf/failover.sh). Writes perf/out/<stamp>/ with the results,
# summary.md, the latency plots and the failover timeline. See perf/README.md.
#
#   sudo perf/run.sh
#   sudo TANDEM_BENCH_SECONDS=3 TANDEM_BENCH_FLOWS=1000 TANDEM_BENCH_SIZES=64 perf/run.sh   # smoke
set -euo pipefail
cd "$(dirname "$0")/.."
me=perf/run.sh
# shellcheck source=lib.sh
. perf/lib.sh

secs=${TANDEM_BENCH_SECONDS:-10}          # measured seconds per phase
warmup=${TANDEM_BENCH_WARMUP:-2}          # seconds sent before each measurement
# Rate of the latency phase: one both DUTs keep up with, so that it measures forwarding,
# not queueing. Default 1 Mpps, capped at 3 Gbit/s of frames (250 kpps of 1500 B: on two
# shared vCPUs even testpmd's memif io forwarding falls to about 1 Mpps of 1500 B).
paced_pps=${TANDEM_BENCH_PACED_PPS:-auto}
paced_rate() { # frame size -> packets/s
    if [ "$paced_pps" = auto ]; then
        local cap=$((3000000000 / ($1 * 8)))
        echo $((cap < 1000000 ? cap : 1000000))
    else
        echo "$paced_pps"
    fi
}
flows_list=${TANDEM_BENCH_FLOWS:-"1 10000 1000000"}
sizes=${TANDEM_BENCH_SIZES:-"64 1500"}    # frame bytes with the FCS
duts=${TANDEM_BENCH_DUTS:-"testpmd tandem"}
gen_cpu=${TANDEM_BENCH_GEN_CPU:-0}        # generator, and the DUT's main/control lcore
fwd_cpu=${TANDEM_BENCH_FWD_CPU:-1}        # testpmd's forwarding lcore, Tandem's worker
build=${TANDEM_BENCH_BUILD:-1}            # 0: use the binaries in target/release as they are
nice_=${TANDEM_BENCH_NICE:-0}             # niceness of the DUT and the generator (shared hosts)
out=${TANDEM_BENCH_OUT:-perf/out/$(date -u +%Y%m%dT%H%M%SZ)}
repeat=${TANDEM_BENCH_REPEAT:-1}          # runs of every case, interleaved; the report takes medians

perf_require_root
[[ $nice_ =~ ^-?[0-9]+$ ]] || { echo "perf/run.sh: bad TANDEM_BENCH_NICE $nice_" >&2; exit 1; }
[[ $paced_pps =~ ^(auto|[1-9][0-9]*)$ ]] || { echo "perf/run.sh: bad TANDEM_BENCH_PACED_PPS $paced_pps" >&2; exit 1; }
[[ $repeat =~ ^[1-9][0-9]*$ ]] || { echo "perf/run.sh: bad TANDEM_BENCH_REPEAT $repeat" >&2; exit 1; }
for v in "$secs" "$warmup"; do
    [[ $v =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "perf/run.sh: bad duration $v" >&2; exit 1; }
done
perf_need_testpmd
command -v python3 >/dev/null || apt-get install -y --no-install-recommends python3 >&2
perf_build tandem tandem-bench

mkdir -p "$out"
out=$(cd "$out" && pwd)
# memif sockets and DPDK runtime files of this run; removed on exit.
perf_run_dir bench
perf_eal
# Per run: seconds of traffic, plus start-up and slack; every wait below is bounded.
phase_s=$(awk -v s="$secs" -v w="$warmup" 'BEGIN { printf "%d", 2 * (s + w + 0.2) + 0.999 }')
gen_timeout=$((phase_s + 60))

start_testpmd() { # case
    rm -f "$run"/memif*.sock
    timeout $((gen_timeout + 30)) nice -n "$nice_" dpdk-testpmd "${dut_eal[@]}" \
        -- --forward-mode=io --auto-start --nb-cores=1 --rxq=1 --txq=1 \
        --total-num-mbufs=32768 --stats-period 5 >"$cdir/$1.dut.log" 2>&1 &
    dut_pid=$!
    wait_for 30 "$cdir/$1.dut.log" "start packet forwarding" "$dut_pid"
}

# Tandem's metrics listener, on loopback: the generator reads Tandem's own added latency
# for each measured window from it (tandem_added_latency_histogram_seconds).
metrics_port=$(free_port)

start_tandem() { # case flows
    local table
    rm -f "$run"/memif*.sock
    # Forward mode on the same EAL arguments as testpmd; room for every flow and a
    # quarter more.
    table=$(( $2 * 5 / 4 > 65536 ? $2 * 5 / 4 : 65536 ))
    "$bench" profile forward --control "$gen_cpu" --worker "$fwd_cpu" --flows-per-worker "$table" \
        --socket "$run/tandem.sock" --metrics "127.0.0.1:$metrics_port" -- "${dut_eal[@]}" \
        >"$cdir/$1.profile.yaml" || return 1
    timeout $((gen_timeout + 30)) nice -n "$nice_" "$tandem" run --profile "$cdir/$1.profile.yaml" \
        >"$cdir/$1.dut.log" 2>&1 &
    dut_pid=$!
    wait_for 60 "$cdir/$1.dut.log" "running; Ctrl-C or SIGTERM stops" "$dut_pid"
}

{
    perf_host_info
    echo "dpdk=$(pkg-config --modversion libdpdk 2>/dev/null || echo unknown)"
    echo "seconds=$secs warmup=$warmup paced_pps=$paced_pps repeat=$repeat"
    echo "flows=$flows_list sizes=$sizes duts=$duts"
    echo "layout=generator+dut-main cpu $gen_cpu, dut-forwarding cpu $fwd_cpu, nice $nice_"
    echo "loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$out/run.txt"

failed=0
for rep in $(seq 1 "$repeat"); do
# Repeats go to r1/, r2/, ... (the report takes each case's median run); one run stays in
# the output directory itself.
if [ "$repeat" = 1 ]; then cdir=$out; else cdir=$out/r$rep; mkdir -p "$cdir"; fi
for size in $sizes; do
    for flows in $flows_list; do
        for dut in $duts; do
            case_=$dut-$size-$flows
            echo "== $case_ (run $rep of $repeat)" >&2
            case $dut in
                testpmd) start_testpmd "$case_" || { failed=1; stop_pid "$dut_pid"; dut_pid=""; continue; }
                         rxq=1 ;;
                # On memif Tandem sends on one queue per worker (its control core's ARP
                # goes through worker 0); memif pairs them with the client's receive queues.
                tandem) start_tandem "$case_" "$flows" || { failed=1; stop_pid "$dut_pid"; dut_pid=""; continue; }
                        rxq=1 ;;
                *) echo "perf/run.sh: unknown DUT $dut" >&2; exit 1 ;;
            esac
            dut_metrics=()
            [ "$dut" = tandem ] && dut_metrics=(--dut-metrics "127.0.0.1:$metrics_port")
            timeout "$gen_timeout" nice -n "$nice_" "$bench" stream --flows "$flows" --frame-size "$size" \
                --phase max:0 --phase "paced:$(paced_rate "$size")" --seconds "$secs" --warmup "$warmup" \
                --dst-mac $dut_mac0 --rx-queues $rxq --out-dir "$cdir" --prefix "$case_" \
                --label "$dut" --linger 30 "${dut_metrics[@]}" -- \
                "${gen_eal[@]}" >"$cdir/$case_.gen.log" 2>&1 &
            gen_pid=$!
            # The DUT stops first, while its links are up (see tandem-bench --linger); the
            # generator's own timeout bounds this wait.
            while kill -0 "$gen_pid" 2>/dev/null \
                && ! grep -q '^tandem-bench: done' "$cdir/$case_.gen.log" 2>/dev/null; do
                sleep 0.2
            done
            if ! grep -q '^tandem-bench: done' "$cdir/$case_.gen.log"; then
                echo "perf/run.sh: the generator failed for $case_; see $cdir/$case_.gen.log" >&2
                failed=1
            fi
            grep '^tandem-bench: .*Mpps' "$cdir/$case_.gen.log" >&2 || true
            stop_pid "$dut_pid"
            dut_pid=""
            stop_pid "$gen_pid"
            gen_pid=""
            # testpmd ends with "Bye...", Tandem with "stopped" (after its counters).
            if grep -q 'INFO tandem: stopped\|^Bye' "$cdir/$case_.dut.log"; then
                echo "dut_exit_$case_-r$rep=clean" >>"$out/run.txt"
            else
                echo "dut_exit_$case_-r$rep=unclean" >>"$out/run.txt"
                echo "perf/run.sh: $case_: the DUT did not stop cleanly; see $cdir/$case_.dut.log" >&2
            fi
            rm -rf /var/run/dpdk/"$prefix"-*
        done
    done
done
done
echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/run.txt"

python3 perf/report.py "$out"

# The mirror path with a failure (its timeline plot) and the failover of N flows: the
# rest of issue #6's figures, in the same output directory. TANDEM_BENCH_SUITES picks
# (empty: the memif cases only).
suites=${TANDEM_BENCH_SUITES-"mirror failover"}
if [[ " $suites " == *" mirror "* ]]; then
    TANDEM_BENCH_OUT="$out/mirror" TANDEM_BENCH_BUILD=0 perf/mirror.sh || failed=1
    [ -f "$out/mirror/summary.md" ] && { echo; echo "# Mirror path"; echo; echo "See mirror/summary.md and mirror/*-timeline.svg."; } >>"$out/summary.md"
fi
if [[ " $suites " == *" failover "* ]]; then
    if TANDEM_FAILOVER_OUT="$out/failover.txt" perf/failover.sh >"$out/failover.md" 2>"$out/failover.log"; then
        { echo; echo "# Failover of N flows (perf/failover.sh)"; echo; grep '^|' "$out/failover.md"; } >>"$out/summary.md"
    else
        failed=1
        echo "perf/run.sh: perf/failover.sh failed; see $out/failover.log" >&2
    fi
fi
echo "results: $out (summary.md, latency-*.svg, mirror/, failover.txt)" >&2
exit $failed
