#!/usr/bin/env bash
# End-to-end test of two workers on the hand-off path (issue #6), in the namespace lab:
#
#   1. `tandem run` with two worker lcores, each port on net_af_packet with qpairs=2 (two
#      receive queues per port, which the kernel fills by its own flow hash: it sees the
#      VIP on one side and the replica on the other, so a flow's two directions often
#      land on different workers); the log must say the hand-off path runs;
#   2. TANDEM_E2E_CONNS (24) stream connections from many client ports, data both ways,
#      every byte checked; 1.5 s in, `tandem flows` must list each connection exactly
#      once across the two workers' tables, and both workers must own some;
#   3. the primary's server is killed 2 s in: every connection survives the failover
#      (each worker sweeps its own flows);
#   4. the metrics: both workers handed frames to the other and received some, no frame
#      lost to a full hand-off ring, no segment of an unknown flow dropped on either
#      worker, no flow lost.
#
# Needs root. Bounded in time; everything it started is stopped and the lab taken down
# on any exit.
#
#   appliance/e2e/workers.sh       # TANDEM_E2E_NO_BUILD=1 skips the cargo build
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/../.."
# shellcheck source=../lib.sh
. appliance/lib.sh
E2E_NAME=workers
# shellcheck source=common.sh
. appliance/e2e/common.sh
conns=${TANDEM_E2E_CONNS:-24}
secs=${TANDEM_E2E_SECONDS:-4}
e2e_setup python3 curl

# 1. Two workers, two queue pairs per port. The second worker gets the second CPU; the
# first shares CPU 0 with the control core, which sleeps when idle.
profile="$tmp/workers.yaml"
# Three busy lcores and the lab's hosts share two CPUs: a replica's SYN-ACK can take
# longer than the 2 ms a datacentre gets, and a flow whose backup is dropped for it
# would be unprotected before the test even fails the primary.
"$bench" profile from configs/lab.yaml --eal-lcores 0@0,1@0,2@1 --workers 1,2 --queues 2 \
    --probe-ports 7000 --synack-wait 200ms >"$profile" || { bad "could not make the profile"; exit 1; }
e2e_run_tandem "$profile"
if grep -q 'flow affinity.*path=hand-off.*workers=2' "$tmp/tandem.log" &&
    ! grep -q 'flow affinity.*path=rss' "$tmp/tandem.log"; then
    ok "two workers on the hand-off path: $(grep -o 'flow affinity.*' "$tmp/tandem.log" | head -n1)"
else
    bad "the log does not say the hand-off path runs for two workers"
    grep -i "affinity\|port started" "$tmp/tandem.log" || true
fi


start_server primary
start_server backup
wait_health primary up && wait_health backup up ||
    { bad "primary and backup not up: $(ctl status)"; exit 1; }

# 2. Many connections, listed once each.
lab_exec "$LAB_CLIENT_NS" timeout $((secs + 60)) python3 "$repo/appliance/e2e/stream.py" \
    client "$LAB_VIP" "$conns" "$secs" >"$tmp/client.out" 2>&1 &
client_pid=$!
sleep 1.5
listing=$(ctl flows --json --limit 10000)
# The client's connections, by port; each once.
client_ports=$(jq -r --arg ip "$LAB_CLIENT_IP" '.flows[] | select(.client == $ip) | .client_port' <<<"$listing")
listed=$(sort <<<"$client_ports" | grep -c . || true)
unique=$(sort -u <<<"$client_ports" | grep -c . || true)
if [ "$listed" = "$conns" ] && [ "$unique" = "$conns" ]; then
    ok "tandem flows: $conns connections, each listed once over the two workers' tables"
else
    bad "tandem flows: $listed listed, $unique distinct, $conns connections"
    ctl flows --limit 40 || true
fi
mid=$(scrape)
owned=()
for lc in 1 2; do owned+=("$(metric "tandem_flows{lcore=\"$lc\"}" "$mid")"); done
if [ "${owned[0]:-0}" -gt 0 ] && [ "${owned[1]:-0}" -gt 0 ]; then
    ok "both workers own flows: lcore 1 ${owned[0]}, lcore 2 ${owned[1]}"
else
    bad "flows per worker: lcore 1 '${owned[0]:-}', lcore 2 '${owned[1]:-}'"
fi

# 3. The primary fails under them: every flow has both copies first.
sleep 0.5
unprot=$(ctl status --json | jq .data_path.unprotected)
if [ "${unprot:-x}" = 0 ]; then
    ok "every flow has its two copies before the failure"
else
    bad "unprotected flows before the failure: '${unprot:-?}' (a reset of those is expected)"
fi
kill -KILL "$(cat "$tmp/stream-primary.pid")" 2>/dev/null || true
rc=0
wait "$client_pid" || rc=$?
if [ "$rc" = 0 ]; then
    ok "$conns connections through the primary's failure: no reset, every byte right both ways ($(grep -oE 'bytes_in=[0-9]+' "$tmp/client.out"))"
else
    bad "the stream clients failed (rc $rc)"
    cat "$tmp/client.out"
fi

# 4. The counters, once the last segments of the closed connections have passed.
sleep 1
end=$(scrape)
summary=""
good=1
for lc in 1 2; do
    out=$(metric "tandem_worker_io_total{lcore=\"$lc\",event=\"handed_off\"}" "$end")
    in=$(metric "tandem_worker_io_total{lcore=\"$lc\",event=\"handoff_received\"}" "$end")
    full=$(metric "tandem_worker_io_total{lcore=\"$lc\",event=\"handoff_ring_full\"}" "$end")
    noflow=$(metric "tandem_drops_total{lcore=\"$lc\",reason=\"no_flow\"}" "$end")
    fo=$(metric "tandem_flow_failovers_total{lcore=\"$lc\"}" "$end")
    summary="$summary lcore $lc: handed off ${out:-?}, received ${in:-?}, ring full ${full:-?}, no_flow ${noflow:-?}, flow failovers ${fo:-?};"
    [ "${out:-0}" -gt 0 ] && [ "${in:-0}" -gt 0 ] && [ "${full:-x}" = 0 ] && [ "${noflow:-x}" = 0 ] &&
        [ "${fo:-0}" -gt 0 ] || good=0
done
if [ "$good" = 1 ]; then
    ok "hand-offs both ways, none lost, no unknown-flow drop, both workers failed flows over:$summary"
else
    bad "hand-off counters:$summary"
fi
# Every frame one worker handed off, the other received (the clients are done: nothing
# is in flight).
io() { metric "tandem_worker_io_total{lcore=\"$1\",event=\"$2\"}" "$end"; }
if [ -n "$(io 1 handed_off)" ] && [ "$(io 1 handed_off)" = "$(io 2 handoff_received)" ] &&
    [ "$(io 2 handed_off)" = "$(io 1 handoff_received)" ]; then
    ok "hand-offs conserved: every frame handed off was received by the other worker"
else
    bad "hand-offs not conserved: 1→2 $(io 1 handed_off)/$(io 2 handoff_received), 2→1 $(io 2 handed_off)/$(io 1 handoff_received)"
fi
e2e_stop_tandem
lost=$(awk '$1 == "flows_lost" { print $2; exit }' "$tmp/tandem.out")
if [ "${lost:-x}" = 0 ]; then ok "no flow lost (flows_lost 0)"; else bad "flows_lost is '${lost:-missing}'"; fi
e2e_finish
