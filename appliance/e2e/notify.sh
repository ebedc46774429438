#!/usr/bin/env bash
# The systemd protocol of `tandem run` (tandem@.service is Type=notify with a watchdog),
# end to end in the lab, against a datagram socket of our own in place of systemd's:
#
#   - READY=1 comes once, and when it has come the VIP answers ping (the ports are up and
#     the control core runs);
#   - WATCHDOG=1 comes every WATCHDOG_USEC/2 from the control core's loop (WATCHDOG_USEC
#     is 400 ms here: at least 5 in 2 s);
#   - SIGTERM gives STOPPING=1, and tandem exits 0.
#
#   appliance/e2e/notify.sh          # TANDEM_E2E_NO_BUILD=1 skips the cargo build
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=../lib.sh
. appliance/lib.sh

E2E_NAME=notify
# shellcheck source=common.sh
. appliance/e2e/common.sh

e2e_setup python3

sock="$tmp/notify.sock"
log="$tmp/notify.log"
# The receiver: one line per datagram (its lines joined by spaces), for 60 s at most.
timeout 60 python3 - "$sock" "$log" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "w", buffering=1) as log:
    while True:
        log.write(s.recv(4096).decode(errors="replace").replace("\n", " ") + "\n")
PY
echo $! >"$tmp/receiver.pid"
for _ in $(seq 1 50); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || { bad "the receiver did not bind $sock"; e2e_finish; }

e2e_profile=configs/lab.yaml
appliance/lab.sh up >/dev/null
# A path socket is reachable from the appliance's network namespace (an abstract one
# would not be).
ip netns exec "$LAB_APPLIANCE_NS" env NOTIFY_SOCKET="$sock" WATCHDOG_USEC=400000 \
    "$tandem" run --profile "$e2e_profile" >"$tmp/tandem.out" 2>"$tmp/tandem.log" &
tandem_pid=$!

ready=0
for _ in $(seq 1 300); do
    kill -0 "$tandem_pid" 2>/dev/null || break
    if grep -q '^READY=1' "$log"; then ready=1; break; fi
    sleep 0.1
done
if [ "$ready" = 1 ]; then
    ok "READY=1 received"
    # Readiness means the ports are up: the first ping already gets its answer (ARP
    # and the echo reply come from the control core).
    if lab_exec "$LAB_CLIENT_NS" ping -c1 -W2 "$LAB_VIP" >/dev/null 2>&1; then
        ok "the VIP answers the first ping after READY=1"
    else
        bad "the VIP does not answer ping after READY=1"
    fi
else
    bad "no READY=1 within 30 s (tandem log follows)"
    cat "$tmp/tandem.log"
fi

before=$(grep -c '^WATCHDOG=1' "$log" || true)
sleep 2
after=$(grep -c '^WATCHDOG=1' "$log" || true)
fed=$((after - before))
if [ "$fed" -ge 5 ] && [ "$fed" -le 12 ]; then
    ok "the watchdog was fed $fed times in 2 s (every 200 ms asked)"
else
    bad "the watchdog was fed $fed times in 2 s (every 200 ms asked: 5 to 12 expected)"
fi

e2e_stop_tandem
for _ in $(seq 1 20); do grep -q '^STOPPING=1' "$log" && break; sleep 0.1; done
if grep -q '^STOPPING=1' "$log"; then ok "STOPPING=1 received on SIGTERM"; else bad "no STOPPING=1 on SIGTERM"; fi
n_ready=$(grep -c '^READY=1' "$log" || true)
if [ "$n_ready" = 1 ]; then ok "READY=1 sent once"; else bad "READY=1 sent $n_ready times"; fi
e2e_finish
