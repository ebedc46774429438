#!/usr/bin/env bash
# End-to-end test of mirror mode's new standbys for running flows (issue #16 item 3,
# DESIGN §5 reintegration), in the namespace lab:
#
#   1. `tandem run` with a pool of two (primary, backup), two copies per flow, the stream
#      server (stream.py, port 7000, the only probed port) on all three replica hosts, and
#      a replay limit that holds every client byte of these connections (64 MiB);
#   2. a replica comes back: TANDEM_E2E_CONNS (10) stream connections, data both ways,
#      every byte checked; the backup's server is killed (kill -9) 1.5 s in: the flows
#      run unprotected; it is restarted, comes back by its probes, and every flow gets it
#      back as a new standby by replay (tandem_reprotected_total, no flow unprotected
#      any more); then the primary's server is killed: every connection must go on to its
#      end, byte-exact, no reset;
#   3. a spare is added: new connections, the backup killed for good, `tandem add lab
#      spare`: every flow gets a new standby on the spare; then the primary is killed:
#      every connection must survive, byte-exact;
#   4. no flow lost, no standby found diverged, no new standby failed.
#
# Needs root. Bounded in time; everything it started is stopped and the lab taken down
# on any exit.
#
#   appliance/e2e/reprotect.sh          # TANDEM_E2E_NO_BUILD=1 skips the cargo build
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/../.."
# shellcheck source=../lib.sh
. appliance/lib.sh
E2E_NAME=reprotect
# shellcheck source=common.sh
. appliance/e2e/common.sh
conns=${TANDEM_E2E_CONNS:-10}
secs=${TANDEM_E2E_SECONDS:-12}
e2e_setup python3 curl jq

# 1. A pool of two, probing the stream port only, with room in each flow's log.
profile="$tmp/reprotect.yaml"
"$bench" profile from configs/lab.yaml --replicas primary,backup --probe-ports 7000 \
    --replay-limit 64MiB >"$profile" || { bad "could not make the profile"; exit 1; }
e2e_run_tandem "$profile"
for name in "${LAB_REPLICAS[@]}"; do start_server "$name"; done
wait_health primary up && wait_health backup up ||
    { bad "primary and backup not up: $(ctl status)"; exit 1; }

# A counter or gauge summed over the workers.
total() { awk -v k="$1" '$1 == k || index($1, k "{") == 1 { s += $2 } END { print s + 0 }' <<<"$2"; }
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
        ok "phase $1: $conns connections through $2: no reset, every byte right both ways ($(grep -oE 'bytes_in=[0-9]+' "$tmp/client-$1.out"); $(grep -oE 'stall[^,]*max [0-9.]+ ms' "$tmp/client-$1.out" || true))"
    else
        bad "phase $1: the stream clients failed through $2 (rc $rc)"
        cat "$tmp/client-$1.out"
    fi
}
# Usage: wait_reprotected FROM   (until FROM + conns flows got a new standby and none
# is unprotected, 15 s at most; prints the seconds it took)
wait_reprotected() {
    local from=$1 t0 m
    t0=$(date +%s.%N)
    for _ in $(seq 1 150); do
        m=$(scrape)
        if [ "$(total tandem_reprotected_total "$m")" -ge $((from + conns)) ] &&
            [ "$(total tandem_flows_unprotected "$m")" = 0 ]; then
            awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# 2. The backup dies and comes back; then the primary dies.
clients a
sleep 1.5
kill_server backup
if wait_health backup down; then
    m=$(scrape)
    unprot=$(total tandem_flows_unprotected "$m")
    if [ "$unprot" -ge "$conns" ]; then
        ok "the backup's death left $unprot flows unprotected"
    else
        bad "after the backup's death: $unprot flows unprotected (expected $conns)"
    fi
else
    bad "the backup did not go down: $(ctl status)"
fi
start_server backup
wait_health backup up || bad "the backup did not come back: $(ctl status)"
if took=$(wait_reprotected 0); then
    m=$(scrape)
    ok "the backup back: $(total tandem_reprotected_total "$m") flows got it as a new standby by replay in ${took} s ($(total tandem_replayed_bytes_total "$m") client bytes replayed), none unprotected"
else
    m=$(scrape)
    bad "flows not re-protected: reprotects $(total tandem_reprotects_total "$m"), reprotected $(total tandem_reprotected_total "$m"), failed $(total tandem_reprotects_failed_total "$m"), beyond the limit $(total tandem_reprotect_beyond_limit_total "$m"), unprotected $(total tandem_flows_unprotected "$m")"
fi
kill_server primary
clients_done a "the backup's death and return, then the primary's death"
start_server primary
wait_health primary up || bad "the primary did not come back"
sleep 2.5 # phase a's flows linger 2 s after their FINs

# 3. The backup dies for good; a spare is added; then the primary dies.
before=$(total tandem_reprotected_total "$(scrape)")
clients b
sleep 1.5
kill_server backup
wait_health backup down || bad "the backup did not go down"
answer=$(ctl add lab spare "$LAB_SPARE_IP" 2>&1) || true
if grep -q "lab/spare: added" <<<"$answer" && wait_health spare up; then
    ok "tandem add: $answer; up by its probes"
else
    bad "tandem add: '$answer'; status: $(ctl status)"
fi
if took=$(wait_reprotected "$before"); then
    ok "the spare added: every flow got it as a new standby in ${took} s"
else
    m=$(scrape)
    bad "flows not re-protected on the spare: reprotected $(total tandem_reprotected_total "$m") (from $before), failed $(total tandem_reprotects_failed_total "$m"), unprotected $(total tandem_flows_unprotected "$m")"
fi
kill_server primary
clients_done b "the backup's death, a spare added, then the primary's death"

# 4. Nothing lost, nothing found different.
m=$(scrape)
lost=$(total tandem_flows_lost_total "$m")
diverged=$(total tandem_standbys_diverged_total "$m")
failed=$(total tandem_reprotects_failed_total "$m")
# (A new standby that fails, its SYN reset by a replica that still held the flow's old
# connection, say, leaves the flow as it was until a replica comes up again: counted and
# shown, not a failure of the test; every flow must have got one above.)
if [ "$lost" = 0 ] && [ "$diverged" = 0 ]; then
    ok "no flow lost, no standby diverged ($failed new standbys failed on the way and were begun again)"
else
    bad "flows lost $lost, standbys diverged $diverged, new standbys failed $failed"
fi
e2e_stop_tandem
e2e_finish
