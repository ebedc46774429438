#!/usr/bin/env bash
# End-to-end test of the appliance pair (issue #17), in the namespace lab with two
# appliances (`lab.sh up --ha`: A in tandem-appliance, B in tandem-appliance-b, configs/
# lab-ha-a.yaml and lab-ha-b.yaml), for one event:
#
#   kill     kill -9 of the active appliance A: B takes over
#   stop     SIGSTOP of A: B takes over; A is let go on (SIGCONT) 1 s later and must find
#            itself the standby (epoch fencing: no second active)
#   outside  A's outside link down (its switch port): B takes over
#   halink   the HA link down (A's ha0): no takeover, A stays the only active one (B
#            still hears A's announcements on the data ports), no connection lost
#   rejoin   kill -9 of A, B takes over; A comes back, joins as a ready standby (its bulk
#            sync), then `tandem ha active` on A switches back (a handover)
#   replica  kill -9 of A, then, once B is active, kill -9 of the primary's servers: B
#            fails the flows over to the backup
#
# Each run:
#   1. lab up with the pair, both appliances started together: A active, B a ready standby;
#   2. on every replica the stream server (stream.py, port 7000) and nginx (port 80);
#   3. TANDEM_E2E_CONNS (20) stream connections through the VIP, data both ways, every
#      byte checked, and one curl of a 48 MiB file (16 MB/s: it spans the event), SHA-256
#      checked;
#   4. 1.5 s in, `tandem flows` on A and on B: B holds the same flows as A;
#   5. the event;
#   6. checks: no connection reset, every byte right, the SHA-256, the roles after it (one
#      active), the takeover time (the new active's log, less the event's time; and its
#      detection time from `tandem_ha_last_detection_nanoseconds`), the clients' stalls
#      (min / median / max over the connections, from the event on), flows reset for a
#      stale record or dropped as unknown. Prints one `result:` line.
#
# Needs root. Bounded in time (about a minute); everything it started is stopped and the
# lab taken down on any exit.
#
#   appliance/e2e/ha.sh [kill|stop|outside|halink|rejoin|replica]   # default: kill
#   TANDEM_E2E_NO_BUILD=1 skips the cargo build
set -euo pipefail
export LC_ALL=C # EPOCHREALTIME and awk with a decimal point
cd "$(dirname "$0")/../.."
# shellcheck source=../lib.sh
. appliance/lib.sh

kind=${1:-kill}
case "$kind" in
kill | stop | outside | halink | rejoin | replica) ;;
*)
    echo "usage: $0 [kill|stop|outside|halink|rejoin|replica]" >&2
    exit 2
    ;;
esac
E2E_NAME="ha-$kind"
# shellcheck source=common.sh
. appliance/e2e/common.sh
conns=${TANDEM_E2E_CONNS:-20}
secs=${TANDEM_E2E_SECONDS:-4}
# A rejoin runs long enough for A to come back and the switch back.
[ "$kind" = rejoin ] && secs=${TANDEM_E2E_SECONDS:-7}
e2e_setup python3 nginx curl jq

# 1. The pair.
e2e_run_pair configs/lab-ha-a.yaml configs/lab-ha-b.yaml

# 2. Servers on every replica: the stream server, and nginx with one file.
www="$tmp/www"
mkdir -p "$www"
random_file "$www/big" 48 4
want=$(sha256sum "$www/big" | cut -d" " -f1)
for name in "${LAB_REPLICAS[@]}"; do
    start_server "$name" 90
    start_nginx "$name" "$www" 90 64
done
# A probes them (B, the standby, sends nothing on the data ports): up after `rise`.
if ! wait_health primary up || ! wait_health backup up; then
    bad "primary and backup not up on A: $(ctl status | head -n 20)"
    exit 1
fi

# 3. The clients, through the VIP.
lab_exec "$LAB_CLIENT_NS" timeout $((secs + 60)) python3 "$repo/appliance/e2e/stream.py" \
    client "$LAB_VIP" "$conns" "$secs" "$tmp/failed_at" >"$tmp/client.out" 2>&1 &
client_pid=$!
lab_exec "$LAB_CLIENT_NS" curl -sS --max-time 40 --limit-rate 16M -o "$tmp/got" \
    -w '%{time_total} %{size_download} %{http_code}' "http://$LAB_VIP/big" >"$tmp/curl.out" 2>"$tmp/curl.err" &
curl_pid=$!

# 4. B holds A's flows: the same client ends on both (the handshakes' records reach B in
# milliseconds; a few tries for a connection that is just opening).
sleep 1.5
flows_of() { jq -r '.flows[] | select(.phase == "established") | "\(.client):\(.client_port)"' | sort; }
same=0
for _ in 1 2 3 4 5; do
    { ctl flows --json --limit 10000 || true; } | flows_of >"$tmp/flows-a"
    { ctl_b flows --json --limit 10000 || true; } | flows_of >"$tmp/flows-b"
    if [ -s "$tmp/flows-a" ] && cmp -s "$tmp/flows-a" "$tmp/flows-b"; then same=1; break; fi
    sleep 0.1
done
n_a=$(wc -l <"$tmp/flows-a")
n_b=$(wc -l <"$tmp/flows-b")
if [ "$same" = 1 ] && [ "$n_a" -ge $((conns + 1)) ]; then
    ok "B holds the same $n_b established flows as A (tandem flows on both)"
else
    bad "flows: A $n_a, B $n_b established (want the same, at least $((conns + 1))): $(diff "$tmp/flows-a" "$tmp/flows-b" | head -n 6 | tr '\n' ' ')"
fi
before_b=$(scrape_b)

# The primary's server processes (for `replica`).
server_pids() {
    local master
    master=$(cat "$tmp/nginx-primary.pid")
    echo "$(cat "$tmp/stream-primary.pid") $master $(pgrep -P "$master" | tr '\n' ' ')"
}

# 5. The event. Its time: a signal takes effect when `kill` (a builtin) sends it; `ip`
# runs in a namespace and takes milliseconds, so for it, when it returns.
log_mark_b=$(wc -l <"$tmp/tandem-b.log")
failed_at=$EPOCHREALTIME
case "$kind" in
kill | rejoin | replica)
    kill -KILL "$tandem_pid"
    what="kill -9 of A (pid $tandem_pid)"
    ;;
stop)
    kill -STOP "$tandem_pid"
    what="SIGSTOP of A (pid $tandem_pid)"
    ;;
outside)
    ip -n "$LAB_SWITCH_NS" link set out-app down
    failed_at=$EPOCHREALTIME
    what="A's outside link down (its switch port out-app)"
    ;;
halink)
    ip -n "$LAB_APPLIANCE_NS" link set "$LAB_HA_IF" down
    failed_at=$EPOCHREALTIME
    what="the HA link down ($LAB_HA_IF in $LAB_APPLIANCE_NS)"
    ;;
esac
echo "$failed_at" >"$tmp/failed_at"
echo "e2e $E2E_NAME: $what at $failed_at"

took=unknown
if [ "$kind" = halink ]; then
    # Three dead times and more: long enough for a wrong takeover to happen.
    sleep 1
    if [ "$(role_of a)" = active ] && [ "$(role_of b)" = standby ]; then
        ok "no split brain: A still active, B still the standby, 1 s after the HA link went down"
    else
        bad "roles after the HA link went down: A '$(role_line a)', B '$(role_line b)'"
    fi
else
    if wait_role b active "" 5; then
        # The time B logged that it became active, less the event's.
        line=$(tail -n +"$((log_mark_b + 1))" "$tmp/tandem-b.log" | grep -m1 'ha_active' || true)
        at=$(awk '{ print $1 }' <<<"$line")
        at_s=$(date -d "$at" +%s.%N 2>/dev/null || echo "")
        [ -n "$at_s" ] && took=$(awk -v a="$at_s" -v b="$failed_at" 'BEGIN { printf "%.1f", (a - b) * 1000 }')
        ok "B took over, active $took ms after the event: $(role_line b | sed 's/^ha: //')"
    else
        bad "B did not take over within 5 s: '$(role_line b)'"
    fi
fi
detect_ms=$(metric tandem_ha_last_detection_nanoseconds "$(scrape_b)" | awk '{ printf "%.1f", $1 / 1e6 }')

case "$kind" in
stop)
    # A wakes up: it must not act as the active one (its epoch is older).
    sleep 1
    kill -CONT "$tandem_pid"
    if wait_role a standby "" 5; then
        ok "A let go on (SIGCONT) is the standby now: $(role_line a | sed 's/^ha: //')"
    else
        bad "A after SIGCONT: '$(role_line a)'"
    fi
    if [ "$(role_of b)" = active ]; then ok "B is still the only active one"; else bad "B after A woke: '$(role_line b)'"; fi
    ;;
replica)
    pids=$(server_pids)
    # shellcheck disable=SC2086  # a list of pids
    kill -KILL $pids || true
    echo "e2e $E2E_NAME: kill -9 of the primary's servers (pids $pids) at $EPOCHREALTIME"
    ;;
rejoin)
    # A comes back (a new process), joins as the standby and resyncs; then the switch back.
    sleep 0.5
    ip netns exec "$LAB_APPLIANCE_NS" "$tandem" run --profile "$e2e_profile" \
        >"$tmp/tandem-a2.out" 2>"$tmp/tandem-a2.log" &
    tandem_pid=$!
    if wait_role a standby ready 15; then
        ok "A came back as a ready standby: $(role_line a | sed 's/^ha: //')"
    else
        bad "A did not come back as a ready standby: '$(role_line a)'"
    fi
    sleep 0.5
    back_at=$EPOCHREALTIME
    if ctl ha active >"$tmp/switch.out" 2>&1 && wait_role a active "" 5; then
        ok "tandem ha active on A: A active again after $(awk -v a="$EPOCHREALTIME" -v b="$back_at" 'BEGIN { printf "%.0f", (a - b) * 1000 }') ms; B $(role_of b)"
    else
        bad "the switch back: $(cat "$tmp/switch.out"); A '$(role_line a)', B '$(role_line b)'"
    fi
    if [ "$(role_of b)" = standby ]; then ok "B stood by again"; else bad "B after the switch back: '$(role_line b)'"; fi
    ;;
esac

client_rc=0
wait "$client_pid" || client_rc=$?
curl_rc=0
wait "$curl_pid" || curl_rc=$?
cat "$tmp/client.out"
field() { awk -v k="$1" '/^summary:/ { for (i = 1; i <= NF; i++) if (index($i, k "=") == 1) { print substr($i, length(k) + 2) } }' "$tmp/client.out"; }
if [ "$client_rc" = 0 ]; then
    ok "$conns connections: no reset, every byte right both ways ($(field bytes_in) in, $(field bytes_out) out)"
else
    bad "the stream clients failed (rc $client_rc)"
fi
got=$(sha256sum "$tmp/got" 2>/dev/null | cut -d" " -f1 || true)
read -r curl_secs curl_size curl_code <"$tmp/curl.out" || true
echo "e2e $E2E_NAME: curl: rc $curl_rc, HTTP ${curl_code:-?}, ${curl_size:-0} bytes in ${curl_secs:-?} s (3.0 s at the rate limit); $(cat "$tmp/curl.err")"
if [ "$curl_rc" = 0 ] && [ "$got" = "$want" ]; then
    ok "curl of 48 MiB through the event: SHA-256 matches"
else
    bad "curl of 48 MiB: rc $curl_rc, SHA-256 ${got:-none} (want $want)"
fi

# 6. The appliances' account of it: the one carrying now is A for halink and rejoin, B
# otherwise.
carrier=b
case "$kind" in halink | rejoin) carrier=a ;; esac
after_b=$(scrape_b)
after_a=$(scrape 2>/dev/null)
for k in tandem_sync_stale_resets_total tandem_sync_catch_ups_total tandem_sync_unknown_flow_drops_total \
    tandem_sync_flows_installed_total tandem_ha_takeovers_total tandem_ha_sync_records_lost_total \
    tandem_flows_lost_total; do
    printf 'e2e %s: %s: A %s, B %s\n' "$E2E_NAME" "$k" "$(metric_sum "$k" "$after_a")" "$(metric_sum "$k" "$after_b")"
done
stale=$(($(metric_sum tandem_sync_stale_resets_total "$after_b") + 0))
[ "$kind" = rejoin ] && stale=$((stale + $(metric_sum tandem_sync_stale_resets_total "$after_a") + 0))
if [ "$stale" = 0 ]; then ok "no flow reset for a stale record"; else bad "$stale flows reset for a stale record (tandem_sync_stale_resets_total)"; fi
case "$kind" in
halink)
    t=$(metric_sum tandem_ha_takeovers_total "$after_b")
    if [ "${t:-0}" = 0 ]; then ok "B never took over"; else bad "B took over $t times"; fi
    ;;
*)
    t0=$(metric_sum tandem_ha_takeovers_total "$before_b")
    t1=$(metric_sum tandem_ha_takeovers_total "$after_b")
    if [ "${t1:-0}" -gt "${t0:-0}" ]; then ok "B counted its takeover (detection $detect_ms ms)"; else bad "tandem_ha_takeovers_total on B: '$t0' -> '$t1'"; fi
    ;;
esac
if [ "$kind" = replica ]; then
    moved=$(metric_sum tandem_flow_failovers_total "$after_b")
    if [ "${moved:-0}" -gt 0 ]; then ok "B moved $moved flows to the backup"; else bad "B moved no flow (tandem_flow_failovers_total '${moved:-missing}')"; fi
fi
# Exactly one active at the end.
actives=0
for n in a b; do
    if [ "$(role_of $n)" = active ]; then actives=$((actives + 1)); fi
done
if [ "$actives" = 1 ]; then ok "one active appliance at the end ($carrier)"; else bad "$actives active appliances at the end"; fi

echo "result: kind=$kind conns=$conns ok=$([ "$fail" = 0 ] && echo yes || echo no) takeover_ms=$took detect_ms=${detect_ms:-unknown}" \
    "conns_ok=$(field conns_ok) bytes_in=$(field bytes_in) bytes_out=$(field bytes_out)" \
    "stall_ms_min=$(field stall_ms_min) stall_ms_median=$(field stall_ms_median)" \
    "stall_ms_max=$(field stall_ms_max) gap_before_ms_median=$(field gap_before_ms_median)" \
    "max_gap_ms=$(field max_gap_ms) curl_ok=$([ "$curl_rc" = 0 ] && [ "$got" = "$want" ] && echo yes || echo no)" \
    "curl_s=${curl_secs:-unknown} stale_resets=$stale"
e2e_finish
