#!/usr/bin/env bash
# End-to-end failover test (issue #4), in the namespace lab:
#
#   1. brings the lab up and runs `tandem run --profile configs/lab.yaml` in
#      tandem-appliance (like basic.sh);
#   2. runs the deterministic stream server (appliance/e2e/stream.py) on every replica,
#      on port 7000 (and 80: the lab profile probes both);
#   3. opens TANDEM_E2E_CONNS (default 20) connections from tandem-client through the
#      VIP to port 7000; each sends requests and checks every byte of every answer;
#   4. kill -9 the server process on the primary mid-stream;
#   5. checks: no connection reset, every byte correct, the appliance logged the
#      failover (cause, first sign to switch); prints the longest gap between received
#      bytes a client saw over the whole run, and the longest one spanning or following
#      the kill (the failover stall; the whole-run figure includes the Python clients'
#      own scheduling on a busy host).
#
# Needs root. Everything is bounded in time; everything it started is stopped, and the
# lab taken down, on any exit.
#
#   appliance/e2e/failover.sh           # TANDEM_E2E_NO_BUILD=1 skips the cargo build
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=../lib.sh
. appliance/lib.sh

E2E_NAME=failover
# shellcheck source=common.sh
. appliance/e2e/common.sh
conns=${TANDEM_E2E_CONNS:-20}
secs=${TANDEM_E2E_SECONDS:-4}

e2e_start python3

# 2. The stream server on every replica.
for name in "${LAB_REPLICAS[@]}"; do
    ns=$(lab_replica_ns "$name")
    ip_var="LAB_${name^^}_IP"
    lab_exec "$ns" timeout 120 python3 "$repo/appliance/e2e/stream.py" serve "${!ip_var}" \
        "$tmp/server-$name.pid" >"$tmp/server-$name.log" 2>&1 &
done
for name in "${LAB_REPLICAS[@]}"; do
    ns=$(lab_replica_ns "$name")
    ip_var="LAB_${name^^}_IP"
    for _ in $(seq 1 50); do
        [ -s "$tmp/server-$name.pid" ] && lab_exec "$ns" ss -ltnH "src ${!ip_var}:7000" | grep -q . && break
        sleep 0.1
    done
    [ -s "$tmp/server-$name.pid" ] || { bad "the stream server on $name did not start"; cat "$tmp/server-$name.log"; exit 1; }
done
# Down while nothing listened on the probed ports: up again after `rise` good probes.
sleep 0.5

# 3. The clients, through the VIP.
lab_exec "$LAB_CLIENT_NS" timeout $((secs + 60)) python3 "$repo/appliance/e2e/stream.py" \
    client "$LAB_VIP" "$conns" "$secs" "$tmp/killed" >"$tmp/client.out" 2>&1 &
client_pid=$!

# 4. kill -9 the primary's server mid-stream.
sleep 1.5
victim=$(cat "$tmp/server-primary.pid")
killed_at=$(date +%s.%N)
kill -KILL "$victim"
echo "$killed_at" >"$tmp/killed"
echo "e2e failover: killed the server on the primary (pid $victim) at $killed_at"

client_rc=0
wait "$client_pid" || client_rc=$?
cat "$tmp/client.out"
if [ "$client_rc" = 0 ]; then
    ok "$conns connections: no reset, every byte correct"
else
    bad "the clients failed (rc $client_rc)"
fi
stall=$(awk '/^summary:/ { for (i = 1; i <= NF; i++) if ($i ~ /^max_stall_ms=/) { sub(/max_stall_ms=/, "", $i); print $i } }' "$tmp/client.out")
fstall=$(awk '/^summary:/ { for (i = 1; i <= NF; i++) if ($i ~ /^failover_stall_ms=/) { sub(/failover_stall_ms=/, "", $i); print $i } }' "$tmp/client.out")
echo "e2e failover: longest gap between received bytes, whole run: ${stall:-unknown} ms"
echo "e2e failover: longest gap spanning or following the kill (within 1 s): ${fstall:-unknown} ms"
bytes=$(awk '/^summary:/ { for (i = 1; i <= NF; i++) if ($i ~ /^bytes=/) { sub(/bytes=/, "", $i); print $i } }' "$tmp/client.out")
if [ "${bytes:-0}" -gt 0 ]; then ok "$bytes bytes checked"; else bad "no bytes received"; fi

# 5. The appliance's account of it.
echo "e2e failover: --- health events in the tandem log ---"
grep -E 'failover|recovered|suspect' "$tmp/tandem.log" | tail -n 20 || true
echo "e2e failover: ---"
primary_down=$(grep -E 'failover' "$tmp/tandem.log" | grep -E "addr=$LAB_PRIMARY_IP" | tail -n 1 || true)
if [ -n "$primary_down" ]; then
    ok "the primary was failed over: $(grep -oE 'cause=[^=]*first_sign_to_switch_us=[0-9]+' <<<"$primary_down" || echo "$primary_down")"
else
    bad "no failover of the primary in the tandem log"
fi

e2e_stop_tandem
grep -E '^\s+(flows_created|control\.(probes|probe_replies|failovers|signals))\s' "$tmp/tandem.out" || true

e2e_finish
