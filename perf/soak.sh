#!/usr/bin/env bash
# Soak (issue #18): one appliance running for DURATION in the namespace lab, with
# connection churn while replicas are killed, come back, are drained and added, again and
# again; after each cycle a quiet period in which flows, held bytes, hold slots and
# packet buffers in use must come back to their baseline.
#
# The appliance runs configs/lab.yaml with `selection: spread` and the stream port (7000)
# probed only: three replicas, two copies of each flow, so every replica carries flows
# and losing any one of them loses no connection. The stream server
# (appliance/e2e/stream.py) runs on all three. A cycle:
#
#   1. churn for CYCLE seconds (TANDEM_SOAK_CYCLE, default 8): LONG (6) stream.py
#      connections through the VIP for the whole time, data both ways, every byte
#      checked; and THREADS (4) threads of short connections (perf/soak.py), each closed,
#      reset by the client after its answer, reset before it, or closed by the server
#      first, in turn, every byte checked;
#   2. 2 s in, the cycle's replica event, in turn: kill -9 of a replica's server (it is
#      started again 1 s later and comes back by its probes), `tandem drain` (then `up`),
#      `tandem remove` (then `add` again), its host silenced (its link down for 1 s),
#      `tandem fail` (then `up`); the event hits the primary, the backup and the spare in
#      turn;
#   3. the quiet period: no traffic; every replica is up again, and `tandem status --json`
#      must show, within 20 s, flows, held bytes and hold slots in use at 0 and the
#      packet buffers in use at most their baseline (read after start, while idle) plus
#      MBUF_SLACK (32: probes and ARP in flight).
#
# At the end: cycles, connections, connections lost (any client error: must be 0, and so
# must Tandem's own flows_lost), the worst stall (the longest gap between received bytes
# on a long connection) and the slowest short connection, the quiet periods' longest
# wait, and each port's DPDK missed/error/no-mbuf counts. Exits non-zero on a loss or a
# leak. Each cycle is a line in perf/out/soak-<stamp>.txt.
#
#   perf/soak.sh [DURATION]      # 30m by default; 2m in CI (appliance/test.sh); 90s, 1h...
#   TANDEM_SOAK_EVENTS=silence,kill  only these events, in turn
#   TANDEM_E2E_NO_BUILD=1 skips the cargo build
#
# Needs root; the lab is shared: run it under `flock /tmp/tandem-lab.lock`. Bounded in
# time: cycles start until DURATION has passed, so the last one ends past it by a cycle
# at most (its churn, waits and quiet period are each bounded); everything it started is
# stopped and the lab taken down on any exit.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
duration=${1:-30m}
case $duration in
    *h) secs=$((${duration%h} * 3600)) ;;
    *m) secs=$((${duration%m} * 60)) ;;
    *s) secs=${duration%s} ;;
    *) secs=$duration ;;
esac
[[ $secs =~ ^[0-9]+$ ]] && [ "$secs" -ge 30 ] ||
    { echo "perf/soak.sh: DURATION is like 30m, 2m, 90s or 1h (at least 30s), not '$duration'" >&2; exit 2; }
cycle=${TANDEM_SOAK_CYCLE:-8}
long=${TANDEM_SOAK_LONG:-6}
threads=${TANDEM_SOAK_THREADS:-4}
mbuf_slack=32
quiet_max=20
# shellcheck source=../appliance/lib.sh
. appliance/lib.sh
E2E_NAME=soak
# shellcheck source=../appliance/e2e/common.sh
. appliance/e2e/common.sh
e2e_setup python3 jq

profile="$tmp/lab-soak.yaml"
"$bench" profile from configs/lab.yaml --selection spread --probe-ports 7000 >"$profile" ||
    { bad "could not make the soak profile"; exit 1; }
e2e_run_tandem "$profile"
for name in "${LAB_REPLICAS[@]}"; do start_server "$name" $((secs + 600)); done
for name in "${LAB_REPLICAS[@]}"; do
    wait_health "$name" up || { bad "$name is not up: $(ctl status)"; exit 1; }
done

# The figures the quiet periods are held to: flows, held bytes, hold slots in use,
# packet buffers in use, from one `tandem status --json`.
gauges() {
    ctl status --json | jq -r '[.data_path.flows, .data_path.held_bytes,
        .data_path.hold_slots_in_use, (.mbufs | map(.in_use) | add)] | @tsv'
}
sleep 3
mbuf_base=0
for _ in 1 2 3 4 5; do
    read -r f h s m <<<"$(gauges)"
    [ "$f" = 0 ] && [ "$h" = 0 ] && [ "$s" = 0 ] || { bad "not idle at start: flows $f, held $h, slots $s"; exit 1; }
    [ "$m" -gt "$mbuf_base" ] && mbuf_base=$m
    sleep 0.2
done
ok "baseline, idle: flows 0, held bytes 0, hold slots 0, packet buffers in use $mbuf_base (at most $((mbuf_base + mbuf_slack)) after each cycle)"

mkdir -p perf/out
raw="perf/out/soak-$(date -u +%Y%m%dT%H%M%SZ).txt"
echo "# perf/soak.sh $duration (cycle ${cycle}s, $long long connections, $threads churn threads), on $(nproc) CPUs, $(uname -r), $(git rev-parse --short HEAD 2>/dev/null || echo unknown)" >"$raw"

# The cycle's replica event: kind and replica, in turn (TANDEM_SOAK_EVENTS, comma-separated,
# takes some of them only).
IFS=, read -r -a events <<<"${TANDEM_SOAK_EVENTS:-kill,drain,remove,silence,fail}"
for kind in "${events[@]}"; do
    case $kind in
        kill | drain | remove | silence | fail) ;;
        *) echo "perf/soak.sh: TANDEM_SOAK_EVENTS: '$kind' is not kill, drain, remove, silence or fail" >&2; exit 2 ;;
    esac
done
# restart NAME: the killed server again (its pid file is rewritten by start_server).
restart() { start_server "$1" $((secs + 600)); }
event() {
    local kind=$1 name=$2
    case $kind in
        kill)
            kill_server "$name"
            sleep 1
            restart "$name"
            ;;
        drain)
            ctl drain "lab/$name" >/dev/null || return 1
            sleep 2
            ctl up "lab/$name" >/dev/null || return 1
            ;;
        remove)
            ctl remove "lab/$name" >/dev/null || return 1
            sleep 1
            ctl add lab "$name" "$(lab_replica_ip "$name")" >/dev/null || return 1
            ;;
        silence)
            # The host goes quiet: found by its probes, not by a RST.
            local ns
            ns=$(lab_replica_ns "$name")
            lab_exec "$ns" ip link set "$LAB_HOST_IF" down || return 1
            sleep 1
            lab_exec "$ns" ip link set "$LAB_HOST_IF" up || return 1
            # The link going down took the default route with it.
            lab_exec "$ns" ip route replace default via "$LAB_IN_IP" dev "$LAB_HOST_IF" || return 1
            ;;
        fail)
            ctl fail "lab/$name" >/dev/null || return 1
            sleep 1
            ctl up "lab/$name" >/dev/null || return 1
            ;;
    esac
}

end=$((SECONDS + secs))
cycles=0 conns=0 lost=0 leaks=0 worst_gap=0 slowest=0 quiet_worst=0
while [ "$SECONDS" -lt "$end" ]; do
    k=$cycles
    kind=${events[$((k % ${#events[@]}))]}
    name=${LAB_REPLICAS[$((k % ${#LAB_REPLICAS[@]}))]}
    rm -f "$tmp/killed"
    lab_exec "$LAB_CLIENT_NS" timeout $((cycle + 60)) python3 "$repo/appliance/e2e/stream.py" \
        client "$LAB_VIP" "$long" "$cycle" "$tmp/killed" >"$tmp/long.out" 2>&1 &
    long_pid=$!
    lab_exec "$LAB_CLIENT_NS" timeout $((cycle + 60)) python3 "$repo/perf/soak.py" \
        "$LAB_VIP" "$threads" "$cycle" >"$tmp/churn.out" 2>&1 &
    churn_pid=$!
    sleep 2
    date +%s.%N >"$tmp/killed"
    event_ok=1
    event "$kind" "$name" || event_ok=0
    long_rc=0 churn_rc=0
    wait "$long_pid" || long_rc=$?
    wait "$churn_pid" || churn_rc=$?
    # The cycle's figures.
    summary=$(grep '^summary:' "$tmp/long.out" || echo "summary: conns=$long conns_ok=0")
    long_ok=$(sed -E 's/.* conns_ok=([0-9]+).*/\1/' <<<"$summary")
    gap=$(sed -nE 's/.* max_gap_ms=([0-9.]+).*/\1/p' <<<"$summary")
    stall=$(sed -nE 's/.* stall_ms_max=([0-9.a-z]+).*/\1/p' <<<"$summary")
    churn=$(tail -n 1 "$tmp/churn.out")
    if ! jq -e . >/dev/null 2>&1 <<<"$churn"; then
        churn='{"connections":0,"lost":1,"errors":["no summary from perf/soak.py"],"slowest_ms":0}'
    fi
    c_conns=$(jq .connections <<<"$churn")
    c_lost=$(jq .lost <<<"$churn")
    c_slow=$(jq .slowest_ms <<<"$churn")
    cycle_lost=$((long - long_ok + c_lost))
    # The quiet period: every replica up again (10 s at most), then the gauges back to
    # the baseline.
    all_up=1
    for r in "${LAB_REPLICAS[@]}"; do wait_health "$r" up || wait_health "$r" up || all_up=0; done
    t0=$(date +%s.%N)
    back=0
    for _ in $(seq 1 $((quiet_max * 4))); do
        read -r f h s m <<<"$(gauges)"
        if [ "$f" = 0 ] && [ "$h" = 0 ] && [ "$s" = 0 ] && [ "$m" -le $((mbuf_base + mbuf_slack)) ]; then
            back=1
            break
        fi
        sleep 0.25
    done
    quiet=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
    health=""
    for r in "${LAB_REPLICAS[@]}"; do health="$health$r=$(health_of "$r") "; done
    cycles=$((cycles + 1))
    conns=$((conns + long + c_conns))
    lost=$((lost + cycle_lost))
    [ "$back" = 1 ] || leaks=$((leaks + 1))
    worst_gap=$(awk -v a="$worst_gap" -v b="${gap:-0}" 'BEGIN { print (b > a) ? b : a }')
    slowest=$(awk -v a="$slowest" -v b="$c_slow" 'BEGIN { print (b > a) ? b : a }')
    quiet_worst=$(awk -v a="$quiet_worst" -v b="$quiet" 'BEGIN { print (b > a) ? b : a }')
    line="cycle=$cycles event=$kind:$name event_ok=$event_ok long=$long long_ok=$long_ok max_gap_ms=${gap:-?} stall_ms_max=${stall:-?} churn=$c_conns churn_lost=$c_lost churn_slowest_ms=$c_slow quiet_s=$quiet back=$back flows=$f held_bytes=$h hold_slots=$s mbufs_in_use=$m mbufs_base=$mbuf_base ${health% }"
    echo "$line" | tee -a "$raw"
    if [ "$cycle_lost" != 0 ] || [ "$long_rc" != 0 ] || [ "$churn_rc" != 0 ] || [ "$event_ok" != 1 ]; then
        bad "cycle $cycles ($kind $name): $cycle_lost connections lost, event ok $event_ok"
        grep -v '^conn .* ok ' "$tmp/long.out" | head -n 5
        jq -r '.errors[]' <<<"$churn" | head -n 5
    fi
    [ "$all_up" = 1 ] || { bad "cycle $cycles ($kind $name): not every replica came back: ${health% }"; exit 1; }
    if [ "$back" != 1 ]; then
        bad "cycle $cycles ($kind $name): not back at the baseline within ${quiet_max}s: flows $f, held bytes $h, hold slots $s, mbufs in use $m (baseline $mbuf_base)"
        # What is left, for the report.
        ctl flows --limit 20 | tee -a "$raw" || true
        ctl flows --json --limit 20 >>"$raw" 2>&1 || true
    fi
done

status=$(ctl status --json)
xstats=$(jq -r '[.ports[] | .port as $p | .xstats[]
    | select(.name == "rx_missed_errors" or .name == "rx_errors" or .name == "tx_errors" or .name == "rx_mbuf_allocation_errors")
    | "\($p).\(.name)=\(.count)"] | join(" ")' <<<"$status")
failovers=$(jq .control.failovers <<<"$status")
e2e_stop_tandem
flows_lost=$(counter flows_lost)
result="result: duration=$duration cycles=$cycles connections=$conns lost=$lost flows_lost=${flows_lost:-?} leaks=$leaks failovers=$failovers worst_stall_ms=$worst_gap slowest_short_ms=$slowest quiet_max_s=$quiet_worst mbufs_base=$mbuf_base $xstats"
echo "$result" | tee -a "$raw"
echo "e2e $E2E_NAME: raw results in $raw"
if [ "$lost" = 0 ] && [ "${flows_lost:-x}" = 0 ]; then
    ok "$cycles cycles, $conns connections, none lost (Tandem's flows_lost 0); worst stall $worst_gap ms"
else
    bad "$lost connections lost by the clients, Tandem's flows_lost ${flows_lost:-missing}"
fi
if [ "$leaks" = 0 ]; then
    ok "every quiet period back at the baseline (at most ${quiet_worst}s): flows, held bytes, hold slots 0, packet buffers in use at most $((mbuf_base + mbuf_slack))"
else
    bad "$leaks of $cycles quiet periods not back at the baseline"
fi
e2e_finish
