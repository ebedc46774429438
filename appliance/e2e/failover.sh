#!/usr/bin/env bash
# End-to-end failover test (issue #4), in the namespace lab, for one failure kind:
#
#   kill     kill -9 of the primary's server processes (the stream server and nginx)
#   silence  the primary host silenced: its eth0 down
#   drop     the primary drops every packet (nftables, inet and arp, in and out)
#   freeze   SIGSTOP of the primary's server processes, `output_lag: 100ms` in the profile
#   backup   kill -9 on the backup instead: the clients must see nothing, and the flows
#            are reported unprotected
#   operator `tandem drain primary`, then `tandem fail primary` (maintenance): the flows
#            move; probes do not bring it back
#
# Each run:
#   1. lab up, `tandem run` (configs/lab.yaml; for freeze a copy with output lag on);
#   2. on every replica the deterministic stream server (stream.py, port 7000) and nginx
#      (port 80) serving one file; the lab profile probes both ports;
#   3. TANDEM_E2E_CONNS (20) stream connections through the VIP, data both ways, every
#      byte checked, and one curl of a 48 MiB file (rate-limited to 16 MB/s so that it
#      spans the failure), SHA-256 checked;
#   4. the failure, 1.5 s in;
#   5. checks: no connection reset, every byte right, the SHA-256, the appliance logged
#      the failover of the right replica with its cause, no flow lost; for `backup`, no
#      flow moved and flows reported unprotected. Prints the clients' stalls (min /
#      median / max) and one `result:` line (perf/recovery.sh reads it).
#
# Needs root. Everything is bounded in time; everything it started is stopped and the
# lab taken down on any exit.
#
#   appliance/e2e/failover.sh [kill|silence|drop|freeze|backup]    # default: kill
#   TANDEM_E2E_NO_BUILD=1 skips the cargo build
#   TANDEM_E2E_MODE=reconnect: the service in reconnect mode, `replay: stream`
#   (appliance/e2e/reconnect.sh): each flow on the primary alone, replayed to the backup
#   (kill, silence, drop only)
set -euo pipefail
export LC_ALL=C # EPOCHREALTIME and awk with a decimal point
cd "$(dirname "$0")/../.."
# shellcheck source=../lib.sh
. appliance/lib.sh

kind=${1:-kill}
case "$kind" in
kill | silence | drop | freeze | backup | operator) ;;
*)
    echo "usage: $0 [kill|silence|drop|freeze|backup|operator]" >&2
    exit 2
    ;;
esac
mode=${TANDEM_E2E_MODE:-mirror}
case "$mode/$kind" in
mirror/*) E2E_NAME="failover-$kind" ;;
reconnect/kill | reconnect/silence | reconnect/drop) E2E_NAME="reconnect-stream-$kind" ;;
*)
    echo "$0: TANDEM_E2E_MODE=$mode runs kill, silence or drop" >&2
    exit 2
    ;;
esac
# shellcheck source=common.sh
. appliance/e2e/common.sh
conns=${TANDEM_E2E_CONNS:-20}
secs=${TANDEM_E2E_SECONDS:-4}
victim=primary
[ "$kind" = backup ] && victim=backup
victim_ns=$(lab_replica_ns "$victim")
victim_ip_var="LAB_${victim^^}_IP"
victim_ip=${!victim_ip_var}

tools=(python3 nginx curl)
[ "$kind" = drop ] && tools+=(nft)
e2e_setup "${tools[@]}"

# 1. The appliance. A frozen process still has a kernel that answers SYNs: only the
# output-lag signal tells, and it is off in the lab profile.
profile=configs/lab.yaml
if [ "$mode" = reconnect ]; then
    # Every client byte since the SYN is logged: room for what the stream clients send
    # in the run (about 1.6 MB each by the failure, 5 MB in all).
    profile="$tmp/lab-reconnect.yaml"
    "$bench" profile from configs/lab.yaml --mode reconnect --replay stream \
        --replay-limit 12MiB >"$profile" || { bad "could not make the reconnect profile"; exit 1; }
fi
if [ "$kind" = freeze ]; then
    profile="$tmp/lab-output-lag.yaml"
    "$bench" profile from configs/lab.yaml --output-lag 100ms >"$profile" ||
        { bad "could not turn output_lag on"; exit 1; }
fi
e2e_run_tandem "$profile"

# 2. Servers on every replica: the stream server, and nginx with one file.
www="$tmp/www"
mkdir -p "$www"
random_file "$www/big" 48 4
want=$(sha256sum "$www/big" | cut -d" " -f1)
for name in "${LAB_REPLICAS[@]}"; do
    start_server "$name"
    start_nginx "$name" "$www" 120 64
done
# The replicas were down while nothing listened on the probed ports; up again after
# `rise` good probes.
sleep 0.5

# Metrics before the failure (the profile's listener, inside the appliance's namespace).
before=$(scrape)

# The victim's server processes: the stream server, nginx's master and its worker.
server_pids() {
    local master
    master=$(cat "$tmp/nginx-$victim.pid")
    echo "$(cat "$tmp/stream-$victim.pid") $master $(pgrep -P "$master" | tr '\n' ' ')"
}

# 3. The clients, through the VIP.
lab_exec "$LAB_CLIENT_NS" timeout $((secs + 60)) python3 "$repo/appliance/e2e/stream.py" \
    client "$LAB_VIP" "$conns" "$secs" "$tmp/failed_at" >"$tmp/client.out" 2>&1 &
client_pid=$!
lab_exec "$LAB_CLIENT_NS" curl -sS --max-time 30 --limit-rate 16M -o "$tmp/got" \
    -w '%{time_total} %{size_download} %{http_code}' "http://$LAB_VIP/big" >"$tmp/curl.out" 2>"$tmp/curl.err" &
curl_pid=$!

# 4. The failure.
sleep 1.5
pids=$(server_pids)
# Health events from here on are the test's (at start-up every replica is down until
# its servers listen).
log_mark=$(wc -l <"$tmp/tandem.log")
# The failure's time: a signal takes effect when `kill` (a builtin) sends it; `ip` and
# `nft` run in a namespace and take milliseconds, so for them it is when they return.
# EPOCHREALTIME: no fork.
failed_at=$EPOCHREALTIME
case "$kind" in
kill | backup)
    # shellcheck disable=SC2086  # a list of pids
    kill -KILL $pids || true
    what="kill -9 of the servers on $victim (pids $pids)"
    ;;
freeze)
    # shellcheck disable=SC2086
    kill -STOP $pids || true
    what="SIGSTOP of the servers on $victim (pids $pids)"
    ;;
operator)
    ctl drain "$victim" >/dev/null
    failed_at=$EPOCHREALTIME
    ctl fail "$victim" >/dev/null
    what="tandem drain, then tandem fail, of $victim"
    ;;
silence)
    lab_exec "$victim_ns" ip link set "$LAB_HOST_IF" down
    what="$LAB_HOST_IF down on $victim"
    ;;
drop)
    lab_exec "$victim_ns" nft -f - <<'NFT'
table inet tandem_e2e_drop {
    chain in { type filter hook input priority -300; policy drop; }
    chain out { type filter hook output priority -300; policy drop; }
}
table arp tandem_e2e_drop {
    chain in { type filter hook input priority -300; policy drop; }
    chain out { type filter hook output priority -300; policy drop; }
}
NFT
    what="every packet dropped on $victim (nftables)"
    ;;
esac
case "$kind" in silence | drop) failed_at=$EPOCHREALTIME ;; esac
echo "$failed_at" >"$tmp/failed_at"
echo "e2e $E2E_NAME: $what at $failed_at"

# A new connection while the victim is still failed: the first MiB of the file.
sleep 0.5
new_want=$(head -c 1048576 "$www/big" | sha256sum | cut -d" " -f1)
new_got=$(lab_exec "$LAB_CLIENT_NS" curl -sS --max-time 10 -r 0-1048575 "http://$LAB_VIP/big" | sha256sum | cut -d" " -f1 || true)
if [ "$new_got" = "$new_want" ]; then
    ok "a new connection after the failure is served (1 MiB, SHA-256 matches)"
else
    bad "a new connection after the failure: SHA-256 ${new_got:-none} (want $new_want)"
fi

# Metrics after it: the failover counted, the victim no longer up.
after=$(scrape)
fo0=$(metric tandem_control_failovers_total "$before")
fo1=$(metric tandem_control_failovers_total "$after")
up1=$(metric "tandem_replica_up{replica=\"lab/$victim\",address=\"$victim_ip\"}" "$after")
if [ -n "$fo0" ] && [ -n "$fo1" ] && [ "$fo1" -gt "$fo0" ] && [ "$up1" = 0 ]; then
    ok "metrics: tandem_control_failovers_total $fo0 -> $fo1, tandem_replica_up for $victim 0"
else
    bad "metrics: failovers '$fo0' -> '$fo1', $victim up '$up1'"
fi

client_rc=0
wait "$client_pid" || client_rc=$?
curl_rc=0
wait "$curl_pid" || curl_rc=$?
# shellcheck disable=SC2086
if [ "$kind" = freeze ]; then kill -CONT $pids 2>/dev/null || true; fi
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
curl_prefix=no
if [ -s "$tmp/got" ] && cmp -s -n "$(stat -c %s "$tmp/got")" "$tmp/got" "$www/big"; then curl_prefix=yes; fi
if [ "$curl_rc" = 0 ] && [ "$got" = "$want" ]; then
    ok "curl of 48 MiB through the failure: SHA-256 matches"
elif [ "$mode" = reconnect ] && [ "$curl_rc" = 56 ] && [ "$curl_prefix" = yes ]; then
    # A stream replay is byte for byte: the backup's answer carries its own Date header,
    # which differs from the primary's when the second changed in between. The client
    # then gets a RST and holds a prefix of the file, never the other server's bytes.
    ok "curl reset at its replay (the answers differ, their Date header): it holds a prefix of the file"
else
    bad "curl of 48 MiB: rc $curl_rc, SHA-256 ${got:-none} (want $want)"
fi

# 5. The appliance's account of it.
tail -n +"$((log_mark + 1))" "$tmp/tandem.log" >"$tmp/events.log"
echo "e2e $E2E_NAME: --- health events in the tandem log after the failure ---"
grep -E 'failover|recovered|suspect|unprotected|silent' "$tmp/events.log" | head -n 20 || true
echo "e2e $E2E_NAME: ---"
down=$(grep -E 'event="?failover' "$tmp/events.log" | grep -E "addr=$victim_ip" | head -n 1 || true)
detect_ms=unknown
if [ -n "$down" ]; then
    # The log's RFC 3339 time of the switch, less the time the failure was injected.
    at=$(awk '{ print $1 }' <<<"$down")
    at_s=$(date -d "$at" +%s.%N 2>/dev/null || echo "")
    [ -n "$at_s" ] && detect_ms=$(awk -v a="$at_s" -v b="$failed_at" 'BEGIN { printf "%.1f", (a - b) * 1000 }')
    ok "$victim failed over $detect_ms ms after the failure: $(grep -oE 'cause=.*first_sign_to_switch_us=[0-9]+' <<<"$down" || echo "$down")"
    # The cause each kind must be found by.
    case "$kind" in
    kill | backup) want_cause='cause=(Unmatched(Rst|Fin) confirmed|probes failed on port [0-9]+ \(the last: RST\))' ;;
    # A silent host is found by its probes going unanswered, or by its acks lagging
    # (the suspect burst then goes unanswered), whichever comes first.
    silence | drop) want_cause='cause=(probes failed on port [0-9]+ \(the last: no answer\)|the host stopped answering ARP|AckLag confirmed)' ;;
    freeze) want_cause='cause=output lag' ;;
    operator) want_cause='cause=operator' ;;
    esac
    if grep -qE "$want_cause" <<<"$down"; then
        ok "the cause matches the failure ($kind)"
    else
        bad "unexpected cause for a $kind failure (want /$want_cause/)"
    fi
else
    bad "no failover of $victim ($victim_ip) in the tandem log"
fi
others=$(grep -E 'event="?failover' "$tmp/events.log" | grep -vE "addr=$victim_ip" || true)
if [ -z "$others" ]; then
    ok "no other replica was failed over"
elif [ "$mode" = reconnect ] && ! grep -vqE 'cause=probes failed on port [0-9]+ \(the last: no answer\)' <<<"$others"; then
    # Known, not yet fixed (perf/RESULTS.md, reconnect): on this 2-core lab the stream
    # replays saturate the worker, the replicas' probe answers wait in the inside port's
    # queue past the probe timeout, and an idle replica is taken for silent. Reported,
    # not counted: the replays themselves are checked above.
    echo "e2e $E2E_NAME: NOTE: probes to another replica went unanswered in time during the replays: $others"
else
    bad "other replicas failed over: $others"
fi
if [ "$kind" = freeze ] || [ "$kind" = operator ]; then
    # Its kernel answers probes (frozen), or it is healthy (operator): it must not come back.
    if grep -E 'event="?recovered' "$tmp/events.log" | grep -qE "addr=$victim_ip"; then
        bad "$victim was taken back"
    else
        ok "$victim stayed out although it answers probes"
    fi
fi
unprotected=$(grep -oE 'flows_unprotected=[0-9]+' "$tmp/events.log" | cut -d= -f2 | sort -n | tail -n 1 || true)

e2e_stop_tandem
grep -E '^\s+(flows_created|flow_failovers|flows_lost|legs_lost|replayed_segments|drop\.[a-z_]+|control\.(probes|probe_replies|probes_lost|failovers|signals))\s' "$tmp/tandem.out" || true
lost=$(counter flows_lost)
# Reconnect mode: the curl's replay may end in a RST (its Date header, above).
# Reconnect mode: a replay whose new answer differs from what the client has ends in a
# RST (the curl's, its Date header, above; and any other, which the clients' own checks
# above judge: every stream byte right, the curl whole or a prefix). Those, and only
# those, may be lost; they are listed.
may_lose=0
if [ "$mode" = reconnect ]; then
    may_lose=$(counter reconnects_mismatch)
    may_lose=${may_lose:-0}
    if [ "$may_lose" -gt 0 ]; then
        echo "e2e $E2E_NAME: NOTE: $may_lose replay(s) found the new answer different and reset the flow (curl rc $curl_rc)"
    fi
fi
if [ "${lost:-x}" = "$may_lose" ]; then ok "no flow lost but replays that differed (flows_lost $lost)"; else bad "flows_lost is '${lost:-missing}' (replays that differed: $may_lose)"; fi
moved=$(counter flow_failovers)
if [ "$kind" = backup ]; then
    if [ "${moved:-x}" = 0 ]; then ok "no flow changed its active replica"; else bad "flow_failovers is '${moved:-missing}'"; fi
    if [ "${unprotected:-0}" -gt 0 ]; then
        ok "flows reported unprotected: $unprotected"
    else
        bad "no flows_unprotected report in the tandem log"
    fi
else
    if [ "${moved:-0}" -gt 0 ]; then ok "$moved flows moved to the backup"; else bad "flow_failovers is '${moved:-missing}'"; fi
fi
if [ "$mode" = reconnect ]; then
    grep -E '^\s+(reconnects[a-z_]*|replayed_bytes|replay_[a-z_]+)\s' "$tmp/tandem.out" || true
    spliced=$(counter reconnects_spliced)
    if [ "${spliced:-0}" -gt 0 ] && [ $((spliced + may_lose)) = "$(counter reconnects)" ]; then
        ok "$spliced flows replayed to the backup, every answer checked and spliced"
    else
        bad "reconnects '$(counter reconnects)', spliced '${spliced:-missing}'"
    fi
fi

curl_ok=no
[ "$curl_rc" = 0 ] && [ "$got" = "$want" ] && curl_ok=yes
echo "result: kind=$kind conns=$conns ok=$([ "$fail" = 0 ] && echo yes || echo no) detect_ms=$detect_ms" \
    "conns_ok=$(field conns_ok) bytes_in=$(field bytes_in) bytes_out=$(field bytes_out)" \
    "stall_ms_min=$(field stall_ms_min) stall_ms_median=$(field stall_ms_median)" \
    "stall_ms_max=$(field stall_ms_max) gap_before_ms_median=$(field gap_before_ms_median)" \
    "curl_ok=$curl_ok curl_bytes=${curl_size:-0} curl_s=${curl_secs:-unknown}" \
    "flows_created=$(counter flows_created) flow_failovers=${moved:-0} flows_lost=${lost:-unknown}" \
    "replayed_segments=$(counter replayed_segments) probes=$(counter control.probes)" \
    "cause=$(grep -oE 'cause=.*first_sign' <<<"$down" | sed 's/^cause=//; s/ first_sign$//; s/ /_/g' || true)"
e2e_finish
