#!/usr/bin/env bash
# End-to-end test of what a service promises for new connections (issue #18, item 5), in
# the namespace lab, with the lab profile made to serve a port range and to drop SYNs
# while no replica is up (`tandem-bench profile from configs/lab.yaml --port 8000-8100
# --probe-ports 8000 --no-replica drop`):
#
#   1. nothing listens on the probed port 8000 yet: every replica is down, and a connect
#      to VIP:8050 times out (the SYN dropped, not answered), counted as a `no_replica`
#      drop with no RST sent;
#   2. nginx on every replica on 8000 (the probe) and 8050: a curl to VIP:8050, inside
#      the range, gets the file;
#   3. a connect to VIP:8101, one past the range, times out and counts as `not_served`.
#
# Needs root. About 15 s; every wait is bounded; everything it started is stopped, and the
# lab taken down, on any exit.
#
#   appliance/e2e/ports.sh              # TANDEM_E2E_NO_BUILD=1 skips the cargo build
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=../lib.sh
. appliance/lib.sh

E2E_NAME=ports
# shellcheck source=common.sh
. appliance/e2e/common.sh

e2e_setup nginx curl python3 jq
profile="$tmp/ports.yaml"
"$bench" profile from configs/lab.yaml --port 8000-8100 --probe-ports 8000 --no-replica drop \
    >"$profile"
e2e_run_tandem "$profile"

# Usage: connect PORT   a TCP connect from the client to VIP:PORT, 1.5 s at most; prints
# the outcome (`connected`, or the error's class) and the milliseconds it took.
connect() {
    lab_exec "$LAB_CLIENT_NS" python3 -c '
import socket, sys, time
t0 = time.monotonic()
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1.5).close()
    print("connected", end=" ")
except OSError as e:
    print(type(e).__name__, end=" ")
print(int((time.monotonic() - t0) * 1000))' "$LAB_VIP" "$1" 2>&1 || true
}
drops() { metric "tandem_drops_total{lcore=\"1\",reason=\"$1\"}" "$2"; }

# 1. No replica up, `no_replica: drop`: silence, counted.
all_down=1
for name in "${LAB_REPLICAS[@]}"; do wait_health "$name" down || all_down=0; done
got=$(connect 8050)
m=$(scrape)
noreplica=$(drops no_replica "$m")
resets=$(metric 'tandem_no_replica_resets_total{lcore="1"}' "$m")
if [ "$all_down" = 1 ] && [[ $got == TimeoutError* ]] && [ "${noreplica:-0}" -ge 1 ] &&
    [ "${resets:-x}" = 0 ]; then
    ok "no replica up, no_replica: drop: connect timed out ($got ms), no_replica drops $noreplica, no RST"
else
    bad "no replica up: all down $all_down, connect: $got, no_replica drops ${noreplica:-none}, RSTs ${resets:-none}"
fi

# 2. A port inside the range, once the replicas answer their probes on 8000.
www="$tmp/www"
mkdir -p "$www"
random_file "$www/file" 1 20261206
want=$(sha256sum "$www/file" | cut -d" " -f1)
for name in "${LAB_REPLICAS[@]}"; do start_nginx "$name" "$www" 60 64 8000 8050; done
all_up=1
for name in "${LAB_REPLICAS[@]}"; do wait_health "$name" up || all_up=0; done
lab_exec "$LAB_CLIENT_NS" curl -sS --max-time 10 -o "$tmp/got" "http://$LAB_VIP:8050/file" || true
got_sum=$(sha256sum "$tmp/got" 2>/dev/null | cut -d" " -f1 || true)
if [ "$all_up" = 1 ] && [ "$got_sum" = "$want" ]; then
    ok "port 8050, inside 8000-8100: 1 MiB through the VIP, SHA-256 matches"
else
    bad "port 8050: replicas up $all_up, SHA-256 ${got_sum:-none} (want $want)"
fi

# 3. One past the range: not served (dropped, counted).
before=$(drops not_served "$(scrape)")
got=$(connect 8101)
after=$(drops not_served "$(scrape)")
if [[ $got == TimeoutError* ]] && [ "${after:-0}" -gt "${before:-0}" ]; then
    ok "port 8101, past the range: not served ($got ms), not_served $before -> $after"
else
    bad "port 8101: connect: $got, not_served ${before:-none} -> ${after:-none}"
fi

e2e_stop_tandem
e2e_finish
