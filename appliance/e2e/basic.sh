#!/usr/bin/env bash
# End-to-end test of the DPDK data path (issue #3), in the namespace lab:
#
#   1. builds `tandem` (release), brings the lab up, runs `tandem run --profile
#      configs/lab.yaml` in tandem-appliance;
#   2. waits until the client reaches the VIP with ping (ARP for the VIP and the echo
#      reply both come from Tandem's control core: no static neighbour entry anywhere);
#   3. serves a deterministic 100 MB file with nginx on every replica, listening on the
#      probed ports 80 and 7000 as well (mirror mode sends
#      each flow to two of them, so all must serve the same bytes) and fetches it with curl
#      through the VIP; the SHA-256 must match and the transfer time is printed;
#   2a. before any replica serves its probed ports (every replica down), checks that a
#      connection to the VIP is refused at once (`no_replica: reset`);
#   4. sends TCP to an address nothing serves (198.18.0.200, static ARP entry towards
#      the appliance) and to an unserved port of the appliance itself;
#   5. stops tandem with SIGTERM and checks its exit summary: drop.not_served > 0 (and the
#      control core's not_served > 0), every replica resolved; the replicas learned
#      198.19.0.1 and the client the VIP dynamically (not PERMANENT).
#
# Needs root. Everything is bounded in time; everything it started is stopped, and the
# lab taken down, on any exit.
#
#   appliance/e2e/basic.sh              # TANDEM_E2E_NO_BUILD=1 skips the cargo build
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=../lib.sh
. appliance/lib.sh

E2E_NAME=basic
# shellcheck source=common.sh
. appliance/e2e/common.sh

e2e_start nginx curl python3

# 2a. No replica up: nothing listens on the probed ports yet, so every replica is down,
# and a new connection's SYN gets a RST at once (`no_replica: reset`, the default): the
# client's connect fails with ECONNREFUSED within a second, not after its SYN
# retransmissions. (curl 7.88 words ECONNREFUSED "Couldn't connect to server", as it does
# other errors: Python names the errno.)
all_down=1
for name in "${LAB_REPLICAS[@]}"; do wait_health "$name" down || all_down=0; done
# Under 1 s: before Linux's first SYN retransmission, so the first SYN was answered.
refused=$(lab_exec "$LAB_CLIENT_NS" python3 -c '
import socket, sys, time
t0 = time.monotonic()
try:
    socket.create_connection((sys.argv[1], 8088), timeout=10)
    print("connected", end=" ")
except OSError as e:
    print(type(e).__name__, e, end=" ")
print(int((time.monotonic() - t0) * 1000))' "$LAB_VIP" 2>&1 || true)
refused_ms=${refused##* }
resets=$(metric 'tandem_no_replica_resets_total{lcore="1"}' "$(scrape)")
if [ "$all_down" = 1 ] && grep -q "^ConnectionRefusedError" <<<"$refused" &&
    [ "$refused_ms" -ge 0 ] 2>/dev/null && [ "$refused_ms" -lt 1000 ] && [ "${resets:-0}" -ge 1 ]; then
    ok "no replica up: connect refused in $refused_ms ms, tandem_no_replica_resets_total $resets"
else
    bad "no replica up: all down $all_down, connect after $refused_ms ms: $refused; resets ${resets:-none}"
fi

# 3. 100 MB from nginx on every replica, through the VIP.
www="$tmp/www"
mkdir -p "$www"
random_file "$www/big" 100 20261123
want=$(sha256sum "$www/big" | cut -d" " -f1)
# The lab profile probes 7000 and 80 on every replica (health.probe_ports): nginx on both.
for name in "${LAB_REPLICAS[@]}"; do start_nginx "$name" "$www" 600 64 7000; done
# The replicas were down while nothing listened on the probed ports; they take new
# flows again after `rise` good probes (20 ms in the lab profile).
sleep 0.3
stats=$(lab_exec "$LAB_CLIENT_NS" curl -sS --max-time 120 -o "$tmp/got" \
    -w '%{time_total} %{speed_download} %{size_download} %{http_code}' "http://$LAB_VIP/big" || true)
got=$(sha256sum "$tmp/got" 2>/dev/null | cut -d" " -f1 || true)
read -r secs speed size code <<<"${stats:-0 0 0 000}"
echo "e2e basic: sha256 source   $want"
echo "e2e basic: sha256 received ${got:-none}"
echo "e2e basic: transfer: HTTP $code, $size bytes in $secs s ($(awk -v s="$speed" 'BEGIN{printf "%.1f", s*8/1e6}') Mbit/s)"
if [ -n "$got" ] && [ "$got" = "$want" ]; then
    ok "100 MB through the VIP, SHA-256 matches"
else
    bad "100 MB through the VIP: SHA-256 differs or the transfer failed"
fi

# 3a. Prometheus metrics, inside the appliance's namespace (the profile's 127.0.0.1:9450).
metrics=$(scrape)
rx=$(awk '$1 == "tandem_rx_packets_total{lcore=\"1\"}" { print $2 }' <<<"$metrics")
if [ "${rx:-0}" -gt 0 ] && grep -q '^tandem_replica_up{replica="lab/primary",address="198.19.0.11"} 1$' <<<"$metrics" &&
    grep -q '^# TYPE tandem_drops_total counter$' <<<"$metrics"; then
    ok "metrics: tandem_rx_packets_total $rx, every replica up, drops by reason"
else
    bad "metrics at 127.0.0.1:9450: unexpected ($(head -c 300 <<<"$metrics"))"
fi

# 3a'. DPDK telemetry: /tandem/stats and /tandem/status on the EAL's socket, as
# dpdk-telemetry.py would ask them (the lab profile's --file-prefix is tandem-lab).
tel=$(python3 - /var/run/dpdk/tandem-lab/dpdk_telemetry.v2 <<'PY' 2>&1 || true
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.settimeout(5)
s.connect(sys.argv[1])
json.loads(s.recv(1024))  # the greeting
for cmd in ("/tandem/stats", "/tandem/status"):
    s.send(cmd.encode())
    print(json.dumps(json.loads(s.recv(65536))))
PY
)
if grep -q '"/tandem/stats": {.*"rx": [1-9]' <<<"$tel" && grep -q '"drop/no_flow": [0-9]' <<<"$tel" &&
    grep -q '"control/failovers": [0-9]' <<<"$tel" && grep -q '"lab/primary": "198.19.0.11 up"' <<<"$tel"; then
    ok "DPDK telemetry: /tandem/stats and /tandem/status answer"
else
    bad "DPDK telemetry: unexpected answer: $(head -c 400 <<<"$tel")"
fi

# 3b. The management socket: status, drain, fail, up, and a wrong name.
# Whether the replica named $1 in `tandem status --json` passes the jq test $2.
replica_is() { ctl status --json 2>/dev/null | jq -e --arg n "$1" "any(.replicas[]; .name == \$n and ($2))" >/dev/null; }
st=$(ctl status 2>&1 || true)
echo "$st" | sed 's/^/e2e basic: status: /'
if replica_is lab/primary '.address == "198.19.0.11" and .health == "up"' &&
    ctl status --json | jq -e '.data_path.flows >= 0 and (.data_path.workers | length) == 1' >/dev/null; then
    ok "tandem status answers: replicas and flows (text above, and --json)"
else
    bad "tandem status: unexpected answer"
fi
ctl drain spare >/dev/null 2>&1 || true
if replica_is lab/spare '.health == "draining" and .operator == "drain"'; then
    ok "tandem drain spare: draining"
else
    bad "tandem drain spare did not take"
fi
ctl fail lab/spare >/dev/null 2>&1 || true
# The probes see the spare go down and come back meanwhile: they must not bring it back.
lab_exec "$(lab_replica_ns spare)" ip link set "$LAB_HOST_IF" down
sleep 0.3
lab_exec "$(lab_replica_ns spare)" ip link set "$LAB_HOST_IF" up
lab_exec "$(lab_replica_ns spare)" ip route replace default via "$LAB_IN_IP" dev "$LAB_HOST_IF" || true
sleep 0.5
if replica_is lab/spare '.health == "down" and .operator == "fail"' &&
    grep -qE 'addr=198\.19\.0\.13.*stays down|failed by the operator\) also fails' "$tmp/tandem.log"; then
    ok "tandem fail lab/spare: down, and its probes failing then answering again did not bring it back"
else
    bad "tandem fail lab/spare did not hold (or the probes never saw it down and up)"
    grep -E '198\.19\.0\.13' "$tmp/tandem.log" | tail -n 5
fi
ctl up spare >/dev/null 2>&1 || true
if replica_is lab/spare '.health == "up" and .operator == null and .mac != null'; then
    ok "tandem up spare: back in service"
else
    bad "tandem up spare did not take"
fi
if err=$(ctl fail nosuch 2>&1); then
    bad "tandem fail nosuch succeeded: $err"
elif grep -q 'lab/primary, lab/backup, lab/spare' <<<"$err"; then
    ok "a wrong name is refused with the valid ones: $(tail -n 1 <<<"$err")"
else
    bad "tandem fail nosuch: unexpected error: $err"
fi
if ! out=$(ctl fail nosuch --json 2>/dev/null) && jq -e '.error | startswith("no replica `nosuch`")' <<<"$out" >/dev/null; then
    ok "with --json the refusal is JSON too, and the exit status 1"
else
    bad "tandem fail nosuch --json: '$out'"
fi

# 4. Unserved traffic: an address no service has, and an unserved port of the appliance.
lab_exec "$LAB_CLIENT_NS" ip neigh replace 198.18.0.200 lladdr "$LAB_OUT_MAC" dev "$LAB_HOST_IF" nud permanent
for _ in 1 2 3; do
    lab_exec "$LAB_CLIENT_NS" curl -sS --max-time 0.3 "http://198.18.0.200:80/" >/dev/null 2>&1 || true
done
lab_exec "$LAB_CLIENT_NS" curl -sS --max-time 0.3 "http://$LAB_OUT_IP:9/" >/dev/null 2>&1 || true
lab_exec "$LAB_CLIENT_NS" ip neigh del 198.18.0.200 dev "$LAB_HOST_IF" || true

# 5. Neighbours learned dynamically.
vip_neigh=$(lab_exec "$LAB_CLIENT_NS" ip neigh show "$LAB_VIP" dev "$LAB_HOST_IF")
echo "e2e basic: client neighbour: $vip_neigh"
if grep -qi "lladdr $LAB_OUT_MAC" <<<"$vip_neigh" && ! grep -q PERMANENT <<<"$vip_neigh"; then
    ok "the client resolved the VIP by ARP"
else
    bad "the client's neighbour entry for the VIP: '$vip_neigh'"
fi
for name in "${LAB_REPLICAS[@]}"; do
    n=$(lab_exec "$(lab_replica_ns "$name")" ip neigh show "$LAB_IN_IP" dev "$LAB_HOST_IF")
    echo "e2e basic: $name neighbour: $n"
    if grep -qi "lladdr $LAB_IN_MAC" <<<"$n" && ! grep -q PERMANENT <<<"$n"; then
        ok "$name learned $LAB_IN_IP by ARP"
    else
        bad "$name's neighbour entry for $LAB_IN_IP: '$n'"
    fi
done

# Stop tandem and read its summary.
e2e_stop_tandem
echo "e2e basic: --- tandem exit summary (key lines) ---"
grep -E '^\s+(rx|tx|flows_created|to_control|drop\.not_served|drop\.not_tcp|drop\.no_neighbour|tx_refused|control\.(echo_replies|arp_replies|arp_requests|not_served|probes|probe_replies|failovers))\s' "$tmp/tandem.out" || true
grep -A3 '^neighbours:' "$tmp/tandem.out" || true
grep -A2 '^ports' "$tmp/tandem.out" || true
echo "e2e basic: ---"
ns_drop=$(counter drop.not_served)
ctl_drop=$(counter control.not_served)
if [ "${ns_drop:-0}" -gt 0 ]; then ok "drop.not_served = $ns_drop"; else bad "drop.not_served is '${ns_drop:-missing}'"; fi
if [ "${ctl_drop:-0}" -gt 0 ]; then ok "control.not_served = $ctl_drop"; else bad "control.not_served is '${ctl_drop:-missing}'"; fi
if grep -A3 '^neighbours:' "$tmp/tandem.out" | grep -q unresolved; then
    bad "a replica's MAC was not resolved"
else
    ok "every replica's MAC resolved by ARP"
fi

e2e_finish
