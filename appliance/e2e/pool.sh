#!/usr/bin/env bash
# End-to-end test of a replica pool run by an operator (issue #5), in the namespace lab:
#
#   1. `tandem run` with a pool of two (primary, backup), k=2, `selection: spread`, JSON
#      logs; the stream server (stream.py, port 7000, the only probed port) on all three
#      replica hosts;
#   2. `tandem add lab spare 198.19.0.13`: the spare comes up by its probes and takes
#      new flows: a pool of three with two copies per flow;
#   3. phase 1: TANDEM_E2E_CONNS (12) stream connections, data both ways, every byte
#      checked; `tandem flows` shows them spread over the three; the primary's server is
#      killed (kill -9) 1.5 s in. Every connection must survive; during the failover the
#      metrics must show the failover, the recovery-time and latency histograms moving,
#      unprotected flows, and `tandem status` the same failover count;
#   4. the primary's server is restarted: it comes back (probes) and serves new flows;
#   5. phase 2: new connections, the backup's server killed 1.5 s in: every connection
#      must survive (flows of phase 1 have ended: those that had lost the primary and
#      kept only the backup would have no copy left);
#   6. the backup is restarted; phase 3: new connections, `tandem remove spare` 1.5 s in:
#      the spare's flows move to their other copy, every connection survives, the spare
#      is gone from the pool;
#   7. the JSON log holds one failover event per failure with its cause and timing; no
#      flow lost.
#
# Needs root. Bounded in time; everything it started is stopped and the lab taken down
# on any exit.
#
#   appliance/e2e/pool.sh          # TANDEM_E2E_NO_BUILD=1 skips the cargo build
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/../.."
# shellcheck source=../lib.sh
. appliance/lib.sh
E2E_NAME=pool
# shellcheck source=common.sh
. appliance/e2e/common.sh
conns=${TANDEM_E2E_CONNS:-12}
secs=${TANDEM_E2E_SECONDS:-4}
e2e_setup python3 curl

# 1. A pool of two, spread, probing the stream port only, logging JSON.
profile="$tmp/pool.yaml"
"$bench" profile from configs/lab.yaml --replicas primary,backup --selection spread \
    --probe-ports 7000 --log-format json >"$profile" || { bad "could not make the pool profile"; exit 1; }
e2e_run_tandem "$profile"

# Flows with a copy on replica $1 (live or not), from `tandem flows`.
flows_on() { ctl flows --json --replica "$1" --limit 10000 | jq .matched; }
# Runs the stream clients in the background (phase $1).
clients() {
    lab_exec "$LAB_CLIENT_NS" timeout $((secs + 60)) python3 "$repo/appliance/e2e/stream.py" \
        client "$LAB_VIP" "$conns" "$secs" >"$tmp/client-$1.out" 2>&1 &
    client_pid=$!
}
clients_done() {
    local rc=0
    wait "$client_pid" || rc=$?
    if [ "$rc" = 0 ]; then
        ok "phase $1: $conns connections through $2: no reset, every byte right both ways ($(grep -oE 'bytes_in=[0-9]+' "$tmp/client-$1.out"))"
    else
        bad "phase $1: the stream clients failed through $2 (rc $rc)"
        cat "$tmp/client-$1.out"
    fi
}

for name in "${LAB_REPLICAS[@]}"; do start_server "$name"; done
wait_health primary up && wait_health backup up ||
    { bad "primary and backup not up: $(ctl status)"; exit 1; }

# 2. The spare joins.
answer=$(ctl add lab spare "$LAB_SPARE_IP" 2>&1) || true
if grep -q "lab/spare: added" <<<"$answer" && wait_health spare up; then
    ok "tandem add: $answer; up by its probes"
else
    bad "tandem add: '$answer'; status: $(ctl status)"
fi
answer=$(ctl add lab spare2 "$LAB_SPARE_IP" 2>&1) || true
if grep -q "is in the pool of lab already" <<<"$answer"; then
    ok "the same address twice is refused: $answer"
else
    bad "a second add of the same address: $answer"
fi
answer=$(ctl add web x 198.19.0.20 2>&1) || true
if grep -q "no service \`web\` (services: lab)" <<<"$answer"; then
    ok "an unknown service is refused with the valid ones: $answer"
else
    bad "unknown service: $answer"
fi

# 3. Phase 1: the primary's server fails under 12 connections.
before=$(scrape)
clients 1
sleep 1.5
ctl flows --limit 3 || true
per=""
for name in primary backup spare; do per="$per $name=$(flows_on "$name")"; done
total=$(ctl flows --json --limit 10000 | jq .matched)
if [ "${total:-0}" -ge "$conns" ] && ! grep -qE '(primary|backup|spare)=(0|)( |$)' <<<"$per "; then
    ok "tandem flows: $total flows, copies on each of the three:$per"
else
    bad "tandem flows: ${total:-?} flows,$per"
fi
log_mark=$(wc -l <"$tmp/tandem.log")
kill_server primary
sleep 0.3
during=$(scrape)
status=$(ctl status --json)
clients_done 1 "the failure of the primary"
fo0=$(metric tandem_control_failovers_total "$before")
fo1=$(metric tandem_control_failovers_total "$during")
rc0=$(metric tandem_recovery_seconds_count "$before")
rc1=$(metric tandem_recovery_seconds_count "$during")
lat0=$(metric tandem_added_latency_seconds_count "$before")
lat1=$(metric tandem_added_latency_seconds_count "$during")
p99=$(metric 'tandem_added_latency_seconds{quantile="0.99"}' "$during")
rec=$(metric 'tandem_recovery_seconds{quantile="0.5"}' "$during")
unprot=$(awk '$1 ~ /^tandem_flows_unprotected/ { s += $2 } END { print s + 0 }' <<<"$during")
newfps=$(metric tandem_new_flows_per_second "$during")
pf0=$(metric 'tandem_replica_failovers_total{replica="lab/primary"}' "$before")
pf1=$(metric 'tandem_replica_failovers_total{replica="lab/primary"}' "$during")
echo "e2e $E2E_NAME: metrics during the failover: failovers $fo0 -> $fo1 (the primary's $pf0 -> $pf1), recovery count $rc0 -> $rc1 (p50 ${rec}s), latency count $lat0 -> $lat1 (p99 ${p99}s), unprotected $unprot, new flows/s $newfps"
if [ -n "$fo1" ] && [ "$fo1" = $((fo0 + 1)) ] && [ -n "$rc1" ] && [ "$rc1" = $((rc0 + 1)) ] &&
    [ -n "$lat1" ] && [ "$lat1" -gt "${lat0:-0}" ] && [ "$unprot" -gt 0 ] &&
    [ -n "$pf1" ] && [ "$pf1" = $((pf0 + 1)) ] &&
    awk -v r="$rec" 'BEGIN { exit !(r > 0 && r < 1) }'; then
    ok "metrics moved: one failover, one recovery time (${rec}s), latency samples, $unprot flows unprotected"
else
    bad "metrics during the failover (above)"
fi
st_fo=$(jq .control.failovers <<<"$status")
st_pf=$(jq '.replicas[] | select(.name == "lab/primary") | .failovers' <<<"$status")
st_unprot=$(jq .data_path.unprotected <<<"$status")
if [ "$st_fo" = "$fo1" ] && [ "$st_pf" = "$pf1" ] && [ "${st_unprot:-0}" -gt 0 ]; then
    ok "tandem status agrees: failovers $st_fo (the primary's $st_pf), unprotected $st_unprot"
else
    bad "tandem status: failovers '$st_fo' (metrics $fo1), the primary's '$st_pf' (metrics $pf1), unprotected '$st_unprot'"
    echo "$status"
fi

# 4. The primary comes back: new flows only.
start_server primary
if wait_health primary up; then ok "the primary is up again (probes)"; else bad "the primary did not come back: $(ctl status)"; fi
sleep 2.5 # phase 1's flows linger 2 s after their FINs

# 5. Phase 2: the backup's server fails; the primary serves new flows again.
clients 2
sleep 1.5
on_primary=$(flows_on primary)
if [ "${on_primary:-0}" -gt 0 ]; then ok "the returned primary has copies of $on_primary new flows"; else bad "no new flow on the returned primary"; fi
kill_server backup
clients_done 2 "the failure of the backup, after the primary came back"

# 6. Phase 3: the spare is removed under load.
start_server backup
wait_health backup up || bad "the backup did not come back"
sleep 2.5
clients 3
sleep 1.5
on_spare=$(flows_on spare)
answer=$(ctl remove spare 2>&1) || true
if grep -q "lab/spare: removed" <<<"$answer" && [ "${on_spare:-0}" -gt 0 ]; then
    ok "tandem remove under load: $answer (it had copies of $on_spare flows)"
else
    bad "tandem remove: $answer (copies on the spare: ${on_spare:-?})"
fi
clients_done 3 "the removal of the spare"
status=$(ctl status --json) || status=""
if [ -n "$status" ] && jq -e 'all(.replicas[]; .name != "lab/spare")' <<<"$status" >/dev/null; then
    ok "the spare is gone from tandem status"
else
    bad "tandem status after the removal: ${status:-no answer}"
fi
answer=$(ctl flows --replica spare 2>&1) || true
if grep -q "no replica \`spare\` (replicas: lab/primary, lab/backup)" <<<"$answer"; then
    ok "a removed name is refused with the valid ones"
else
    bad "flows --replica spare: $answer"
fi

# 7. The log (JSON, one object a line) and the counters.
e2e_stop_tandem
python3 - "$tmp/tandem.log" "$log_mark" <<'PY' >"$tmp/events.txt" || bad "the log is not JSON lines: $(cat "$tmp/events.txt")"
import json, sys
lines = open(sys.argv[1]).read().splitlines()
for n, line in enumerate(lines, 1):
    if not line.strip():
        continue
    try:
        rec = json.loads(line)
    except ValueError as e:
        print(f"line {n}: {e}: {line[:120]}")
        sys.exit(1)
    f = rec.get("fields", {})
    if n > int(sys.argv[2]) and f.get("event") == "failover":
        print(f"failover addr={f.get('addr')} cause={f.get('cause')!r} first_sign_to_switch_us={f.get('first_sign_to_switch_us')}")
PY
cat "$tmp/events.txt"
for who in "$LAB_PRIMARY_IP:cause='(UnmatchedRst|UnmatchedFin) confirmed|probes failed" "$LAB_BACKUP_IP:cause='(UnmatchedRst|UnmatchedFin) confirmed|probes failed" "$LAB_SPARE_IP:cause='operator \(tandem remove\)"; do
    ip=${who%%:*}
    if grep -E "^failover addr=$ip " "$tmp/events.txt" | grep -qE "${who#*:}" &&
        grep -E "^failover addr=$ip " "$tmp/events.txt" | grep -qE 'first_sign_to_switch_us=[0-9]+$'; then
        ok "JSON log: a failover event for $ip with its cause and timing"
    else
        bad "JSON log: no failover event for $ip matching /${who#*:}/"
    fi
done
lost=$(awk '$1 == "flows_lost" { print $2; exit }' "$tmp/tandem.out")
if [ "${lost:-x}" = 0 ]; then ok "no flow lost (flows_lost 0)"; else bad "flows_lost is '${lost:-missing}'"; fi
e2e_finish
