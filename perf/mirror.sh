#!/usr/bin/env bash
# The mirror-path benchmark (issue #6): Tandem in mirror mode (copies 2, ordered
# selection) between two net_memif links to `tandem-bench mirror`, which plays the clients
# on one link and a primary and a backup replica on the other. Three phases, each with a
# fresh Tandem: `lowload` (one connection, one request in flight: the unloaded
# request->response latency), `steady` (no failure: the mirror path's request rate and
# latency under load) and `failover` (the primary dies at TANDEM_MIRROR_FAIL_AT). Writes perf/out/mirror-<stamp>/
# with the results, the timeline CSV and the failover timeline SVG (perf/timeline.py).
#
#   sudo perf/mirror.sh
#   sudo TANDEM_MIRROR_FAIL_KIND=silence perf/mirror.sh
#   sudo TANDEM_MIRROR_PHASES=failover TANDEM_MIRROR_GEN_ARGS=--diverge-backup perf/mirror.sh
#        (a non-deterministic backup: the clients must count wrong bytes after the failover)
set -euo pipefail
cd "$(dirname "$0")/.."
me=perf/mirror.sh
# shellcheck source=lib.sh
. perf/lib.sh

secs=${TANDEM_MIRROR_SECONDS:-6}            # seconds of requests per phase
fail_at=${TANDEM_MIRROR_FAIL_AT:-3s}        # failure time in the failover phase
fail_kind=${TANDEM_MIRROR_FAIL_KIND:-rst}   # rst (killed process) or silence (dead host)
conns=${TANDEM_MIRROR_CONNS:-64}
req=${TANDEM_MIRROR_REQUEST:-128}           # request bytes
resp=${TANDEM_MIRROR_RESPONSE:-1024}        # response bytes
depth=${TANDEM_MIRROR_DEPTH:-2}             # requests in flight per connection
phases=${TANDEM_MIRROR_PHASES:-"lowload steady failover"}
read -r -a gen_extra <<<"${TANDEM_MIRROR_GEN_ARGS:-}"   # more tandem-bench mirror options
gen_cpu=${TANDEM_BENCH_GEN_CPU:-0}          # generator, and Tandem's control lcore
fwd_cpu=${TANDEM_BENCH_FWD_CPU:-1}          # Tandem's worker
build=${TANDEM_BENCH_BUILD:-1}              # 0: use the binaries in target/release as they are
out=${TANDEM_BENCH_OUT:-perf/out/mirror-$(date -u +%Y%m%dT%H%M%SZ)}

perf_require_root
[[ $secs =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "perf/mirror.sh: bad duration $secs" >&2; exit 1; }
case $fail_kind in rst|silence) ;; *) echo "perf/mirror.sh: fail kind rst or silence" >&2; exit 1 ;; esac
command -v python3 >/dev/null || apt-get install -y --no-install-recommends python3 >&2
perf_build tandem tandem-bench

mkdir -p "$out"
out=$(cd "$out" && pwd)
# memif sockets and DPDK runtime files of this run; removed on exit.
perf_run_dir mirror
perf_eal
# Settle 1 s, handshakes, the phase, 0.5 s drain, start-up: every wait below is bounded.
gen_timeout=$(awk -v s="$secs" 'BEGIN { printf "%d", s + 60 }')

# Tandem's metrics on a free loopback port: its own added latency over each phase's run is
# read from it before it stops (<phase>.tandem-metrics.txt).
metrics_port=$(free_port)

{
    perf_host_info
    echo "seconds=$secs conns=$conns request=$req response=$resp depth=$depth"
    echo "fail_at=$fail_at fail_kind=$fail_kind phases=$phases"
    echo "layout=generator+tandem-control cpu $gen_cpu, tandem-worker cpu $fwd_cpu"
    echo "loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$out/run.txt"
# Mirror mode (copies 2, ordered: primary, backup) on the memif links.
"$bench" profile mirror --control "$gen_cpu" --worker "$fwd_cpu" --socket "$run/tandem.sock" \
    --metrics "127.0.0.1:$metrics_port" -- "${dut_eal[@]}" >"$out/profile.yaml"
"$tandem" check --profile "$out/profile.yaml" >/dev/null

failed=0
for phase in $phases; do
    echo "== $phase" >&2
    rm -f "$run"/memif*.sock
    timeout $((gen_timeout + 30)) "$tandem" run --profile "$out/profile.yaml" \
        >"$out/$phase.tandem.log" 2>&1 &
    dut_pid=$!
    if ! wait_for 60 "$out/$phase.tandem.log" "running; Ctrl-C or SIGTERM stops" "$dut_pid"; then
        failed=1; stop_pid "$dut_pid"; dut_pid=""; continue
    fi
    fail=()
    [ "$phase" = failover ] && fail=(--fail-at "$fail_at" --fail-kind "$fail_kind")
    load=(--conns "$conns" --depth "$depth")
    [ "$phase" = lowload ] && load=(--conns 1 --depth 1)
    # Tandem sends on workers + 1 queues per port (the control core's last): 2 rx queues.
    timeout "$gen_timeout" "$bench" mirror "${load[@]}" --request-size "$req" \
        --response-size "$resp" --seconds "$secs" "${fail[@]}" "${gen_extra[@]}" \
        --dst-mac $dut_mac0 --rx-queues 1 --out-dir "$out" --prefix "$phase" \
        --label "tandem mirror $phase" -- \
        "${gen_eal[@]}" >"$out/$phase.gen.log" 2>&1 &
    gen_pid=$!
    if ! wait "$gen_pid"; then
        echo "perf/mirror.sh: the generator failed in $phase; see $out/$phase.gen.log" >&2
        failed=1
    fi
    gen_pid=""
    # Scheduler view of Tandem's threads (their whole life): on-CPU and run-queue wait
    # nanoseconds, to tell a stall of Tandem's from its lcores waiting for a shared CPU.
    tpid=$(pgrep -P "$dut_pid" | head -1 || true)
    if [ -n "$tpid" ]; then
        for t in /proc/"$tpid"/task/*; do
            echo "$(cat "$t/comm" 2>/dev/null) $(cat "$t/schedstat" 2>/dev/null)"
        done >"$out/$phase.tandem-sched.txt" 2>/dev/null || true
    fi
    grep '^tandem-bench: ' "$out/$phase.gen.log" >&2 || true
    # Tandem's own added latency over its run (handshakes and the phase), before it stops;
    # a failed read leaves the file out, the figures stand.
    python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' \
        "http://127.0.0.1:$metrics_port/metrics" >"$out/$phase.tandem-metrics.txt" 2>/dev/null \
        || rm -f "$out/$phase.tandem-metrics.txt"
    stop_pid "$dut_pid"
    dut_pid=""
    rm -rf /var/run/dpdk/"$prefix"-*
    # Tandem's exit summary (counters) is the end of its log.
    sed -n '/^tandem summary after/,$p' "$out/$phase.tandem.log" >"$out/$phase.tandem-summary.txt" || true
done
echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/run.txt"

python3 perf/timeline.py "$out" || failed=1
echo "results: $out (summary.md, failover-timeline.svg)" >&2
exit $failed
