#!/usr/bin/env bash
# Runs one of the pktgen-dpdk Lua scripts in this directory against a device under test
# (DUT) on this machine, over memif links (no NIC, no hugepages):
#
#   pktgen port 0 (memif client) ──> DUT port 0 (server) ── DUT ── DUT port 1 (server) ──> pktgen port 1 (client)
#
# Usage: perf/pktgen/run.sh PKTGEN_BIN SCRIPT [testpmd|tandem]
#   PKTGEN_BIN  the user's own pktgen-dpdk binary (built as perf/pktgen/README.md says)
#   SCRIPT      range-64.lua, syn-flood.lua, imix.lua or latency.lua (a path or a name here)
#   DUT         testpmd (default): dpdk-testpmd, io forwarding between its two memif ports;
#               tandem: target/release/tandem run with a forward-mode profile from
#               `tandem-bench profile forward`
#
# Results: key=value lines in $TANDEM_PKTGEN_OUT (default ./pktgen-<script>-<dut>.txt);
# logs beside it (<out>.pktgen.log, <out>.dut.log). Every TANDEM_PKTGEN_* variable the
# scripts read (see README.md) passes through. The CPU layout assumes 2 CPUs: the DUT's
# forwarding lcore on CPU 1, pktgen's sending lcore on CPU 0, pktgen's main lcore at nice 19
# on CPU 1.
set -euo pipefail

usage() { echo "usage: $0 PKTGEN_BIN SCRIPT [testpmd|tandem]" >&2; exit 2; }
[[ $# -ge 2 && $# -le 3 ]] || usage
PKTGEN_BIN=$1
SCRIPT=$2
DUT=${3:-testpmd}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
me=perf/pktgen/run.sh
# shellcheck source=../lib.sh
. "$REPO/perf/lib.sh"

[[ -x $PKTGEN_BIN ]] || { echo "pktgen binary not executable: $PKTGEN_BIN" >&2; exit 2; }
[[ -f $SCRIPT ]] || SCRIPT=$HERE/$SCRIPT
[[ -f $SCRIPT ]] || { echo "no such script: $2" >&2; exit 2; }
SCRIPT=$(cd "$(dirname "$SCRIPT")" && pwd)/$(basename "$SCRIPT")
case $DUT in
testpmd) command -v dpdk-testpmd >/dev/null || { echo "dpdk-testpmd not found (Debian: dpdk)" >&2; exit 2; } ;;
tandem)
    TANDEM_BIN=${TANDEM_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/release/tandem}
    TANDEM_BENCH_BIN=${TANDEM_BENCH_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/release/tandem-bench}
    for bin in "$TANDEM_BIN" "$TANDEM_BENCH_BIN"; do
        [[ -x $bin ]] || { echo "not found: $bin (cargo build --release -p tandem -p tandem-bench)" >&2; exit 2; }
    done
    ;;
*) usage ;;
esac
command -v script >/dev/null || { echo "script(1) not found (Debian: bsdutils)" >&2; exit 2; }

name=$(basename "$SCRIPT" .lua)
export TANDEM_PKTGEN_OUT=${TANDEM_PKTGEN_OUT:-$PWD/pktgen-$name-$DUT.txt}
duration=${TANDEM_PKTGEN_DURATION:-10}
[[ $duration =~ ^[0-9]+$ ]] || { echo "TANDEM_PKTGEN_DURATION must be whole seconds" >&2; exit 2; }
# pktgen needs ~20 s to map its --no-huge memory and come up, and the scripts wait a few
# seconds around the traffic (up to a minute each for links and counters on a loaded
# machine): anything past this is a hang.
limit=$((duration + 150))

# Fixed MACs on every memif port (devarg mac=), so the scripts can address the DUT.
PG_MAC0=02:00:00:00:10:00 PG_MAC1=02:00:00:00:10:01
DUT_MAC0=02:00:00:00:20:00 DUT_MAC1=02:00:00:00:20:01
export TANDEM_PKTGEN_DST_MAC=${TANDEM_PKTGEN_DST_MAC:-$DUT_MAC0}

# memif sockets and DPDK runtime files of this run; removed on exit, after the DUT and
# pktgen are stopped.
perf_run_dir pktgen
pg_log=$TANDEM_PKTGEN_OUT.pktgen.log
dut_log=$TANDEM_PKTGEN_OUT.dut.log
rm -f "$TANDEM_PKTGEN_OUT" "$pg_log" "$dut_log"

sock0=$run/memif0.sock
sock1=$run/memif1.sock
# The DUT's EAL arguments: its forwarding lcore 1 on CPU 1, main lcore 0 on CPU 0.
dut_eal=(--lcores "0@0,1@1" --main-lcore 0 --no-huge -m 512 --no-pci --file-prefix "$prefix-dut"
    --vdev "$(memif 0 server "$DUT_MAC0")" --vdev "$(memif 1 server "$DUT_MAC1")")

case $DUT in
testpmd)
    # io forwarding: port 0 -> port 1 and port 1 -> port 0, untouched frames. The stats
    # period keeps testpmd running without a terminal until it is signalled; it prints its
    # forwarding totals on exit.
    timeout -s INT $((limit + 10)) dpdk-testpmd "${dut_eal[@]}" \
        -- --forward-mode=io --nb-cores=1 --total-num-mbufs=32768 --auto-start --stats-period 5 \
        >"$dut_log" 2>&1 </dev/null &
    dut_pid=$!
    ;;
tandem)
    # Forward mode: pktgen port 0 is the client side, port 1 answers ARP as the one
    # replica. Tandem's addresses come from 198.18.0.0/15 like the traffic's.
    export TANDEM_PKTGEN_REPLICA_IP=${TANDEM_PKTGEN_REPLICA_IP:-198.19.0.11}
    vip=${TANDEM_PKTGEN_VIP:-198.18.0.100}
    profile=$run/profile.yaml
    "$TANDEM_BENCH_BIN" profile forward --control 0 --worker 1 --vip "$vip" --port any \
        --replica "$TANDEM_PKTGEN_REPLICA_IP" --flows-per-worker 262144 \
        --socket "$run/tandem.sock" -- "${dut_eal[@]}" >"$profile"
    "$TANDEM_BIN" check --profile "$profile" >"$dut_log" 2>&1 || {
        echo "generated profile refused by tandem check:" >&2; cat "$dut_log" >&2; exit 1; }
    timeout -s INT $((limit + 10)) "$TANDEM_BIN" run --profile "$profile" >>"$dut_log" 2>&1 </dev/null &
    dut_pid=$!
    ;;
esac

# The memif servers create their sockets once their ports are up.
for _ in $(seq 300); do
    [[ -S $sock0 && -S $sock1 ]] && break
    kill -0 "$dut_pid" 2>/dev/null || { echo "$DUT exited early; log:" >&2; tail -20 "$dut_log" >&2; exit 1; }
    sleep 0.1
done
[[ -S $sock0 && -S $sock1 ]] || { echo "$DUT did not create its memif sockets" >&2; exit 1; }

# pktgen: EAL lcore 1 (both ports' rx and tx) alone on CPU 0; lcore 0 (main: screen,
# timers, Lua; its command-line loop spins) on CPU 1 beside the DUT's forwarding lcore.
# pktgen starts at nice 19 so that spinning main lcore leaves the DUT nearly all of CPU 1
# (nice 0 against 19: ~98 %); its sending lcore goes back to nice 0 once it exists.
# -m 3072: 23.06 takes ~1.5 GB of --no-huge memory per port. It needs a terminal: script(1).
pg_cmd=(nice -n 19 "$PKTGEN_BIN"
    --lcores "0@1,1@0" --main-lcore 0 --no-huge -m 3072 --no-pci --file-prefix "$prefix-pg"
    --vdev "$(memif 0 client "$PG_MAC0")" --vdev "$(memif 1 client "$PG_MAC1")"
    -- -T -m "1.[0-1]" -f "$SCRIPT")
printf -v pg_line '%q ' "${pg_cmd[@]}"

# The thread of EAL lcore 1 of this run's pktgen (its --file-prefix is unique to the run).
pg_worker_tid() {
    local d tid
    for d in /proc/[0-9]*; do
        { tr '\0' ' ' <"$d/cmdline"; } 2>/dev/null | grep -q -- "--file-prefix $prefix-pg " || continue
        # DPDK 22.11 names the thread of EAL lcore N "rte-worker-N".
        tid=$(grep -lx 'rte-worker-1' "$d"/task/*/comm 2>/dev/null | head -1 | cut -d/ -f5)
        [[ -n $tid ]] && { echo "$tid"; return 0; }
    done
    return 0
}

echo "running $name through $DUT for ${duration}s (limit ${limit}s); results: $TANDEM_PKTGEN_OUT"
timeout -k 5 "$limit" script -qfec "$pg_line" /dev/null >"$pg_log" 2>&1 </dev/null &
gen_pid=$!
for _ in $(seq 300); do
    tid=$(pg_worker_tid)
    if [[ -n $tid ]]; then renice -n 0 -p "$tid" >/dev/null; break; fi
    kill -0 "$gen_pid" 2>/dev/null || break
    sleep 0.1
done
[[ -n ${tid:-} ]] || echo "warning: pktgen's sending lcore not found; it stays at nice 19" >&2
set +e
wait "$gen_pid"
pg_rc=$?
gen_pid=""
set -e

if [[ ! -s $TANDEM_PKTGEN_OUT ]]; then
    echo "pktgen wrote no results (exit $pg_rc); last lines of $pg_log:" >&2
    tail -c 3000 "$pg_log" | sed 's/\x1b\[[0-9;?]*[A-Za-z]//g' >&2
    exit 1
fi
[[ $pg_rc -eq 0 ]] || echo "warning: pktgen exited with $pg_rc after writing its results" >&2

# The DUT's own view, appended to the results: where the frames that did not come back
# were dropped.
echo "dut=$DUT" >>"$TANDEM_PKTGEN_OUT"
dut_alive=1
kill -0 "$dut_pid" 2>/dev/null || dut_alive=0
# A DUT that died during the run explains missing traffic; say so in the results.
[[ $dut_alive -eq 1 ]] || echo "dut_exited_early=1" >>"$TANDEM_PKTGEN_OUT"
case $DUT in
testpmd)
    stop_pid "$dut_pid" INT
    dut_pid=""
    # testpmd prints its forwarding totals on exit; TX-dropped counts frames its transmit
    # ring towards pktgen had no room for.
    awk '/Accumulated forward statistics/ { acc = 1 }
         acc && /TX-dropped:/ { print "dut_tx_dropped=" $4; exit }' "$dut_log" >>"$TANDEM_PKTGEN_OUT"
    ;;
tandem)
    "$TANDEM_BIN" status --socket "$run/tandem.sock" >"$TANDEM_PKTGEN_OUT.status" 2>&1 || true
    ;;
esac
cat "$TANDEM_PKTGEN_OUT"
[[ $dut_alive -eq 1 ]] || { echo "$DUT exited before pktgen finished; see $dut_log" >&2; exit 1; }
grep -qx 'status=ok' "$TANDEM_PKTGEN_OUT" || {
    echo "the script reported $(grep -m1 '^status=' "$TANDEM_PKTGEN_OUT")" >&2; exit 1; }
