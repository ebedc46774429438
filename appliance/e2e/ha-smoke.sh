#!/usr/bin/env bash
# Smoke test of the appliance pair (issue #17) through `tandem run`, without the lab and
# without hugepages: two appliances on `net_null` ports (they carry nothing between the
# two), their HA link on the loopback of a network namespace of this test's own
# (198.18.255.1 and .2). Checks:
#
#   1. the preferred appliance A becomes active (epoch 1), B a ready standby (its bulk
#      sync received), as `tandem ha status` and the metrics say;
#   2. A sends gratuitous ARPs and announcements on its data ports; B, the standby, sends
#      nothing on its data ports (no ARP, no probe, no announcement: its control core's
#      tx is 0) and drops what its ports bring (net_null makes frames up);
#   3. A stopped (SIGTERM), B takes over within its dead time: active, epoch 2, one
#      takeover, gratuitous ARPs sent.
#
# Needs root (namespace, DPDK). Bounded in time; stops what it started and deletes its
# namespace on any exit. The sync of real flows is tested by the runtime's golden tests
# (crates/runtime/src/worker/golden.rs), on the same worker loop.
#
#   appliance/e2e/ha-smoke.sh        # TANDEM_E2E_NO_BUILD=1 skips the cargo build;
#                                    # TANDEM_BIN picks the binary (default: release)
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
if [ "${TANDEM_E2E_NO_BUILD:-0}" != 1 ]; then
    cargo build --release --locked -p tandem
fi
tandem=${TANDEM_BIN:-$repo/target/release/tandem}
ns=tandem-ha-smoke-$$
dir=$(mktemp -d /tmp/tandem-ha-smoke.XXXXXX)
pa=
pb=
cleanup() {
    for p in $pa $pb; do kill "$p" 2>/dev/null || true; done
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        alive=0
        for p in $pa $pb; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.5
    done
    for p in $pa $pb; do kill -9 "$p" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    for n in a b; do echo "--- $n.log (tail)" >&2; tail -20 "$dir/$n.log" >&2 || true; done
    exit 1
}

# The lab profile on net_null ports, with the pair's section.
profile() { # NAME LOCAL PEER PREFERRED METRICS_PORT
    python3 - "$@" "$dir" <<'EOF'
import sys
name, local, peer, preferred, mport, out = sys.argv[1:]
s = open("configs/lab.yaml").read()
for old, new in [
    ("    - tandem-lab\n", f"    - tandem-ha-smoke-{name}\n"),
    ("net_af_packet0,iface=out0,framecnt=4096", "net_null0"),
    ("net_af_packet1,iface=in0,framecnt=4096", "net_null1"),
    ("device: net_af_packet0", "device: net_null0"),
    ("device: net_af_packet1", "device: net_null1"),
    ("/run/tandem/tandem-lab.sock", f"{out}/{name}.sock"),
    ("127.0.0.1:9450", f"127.0.0.1:{mport}"),
]:
    assert old in s, old
    s = s.replace(old, new)
s += f"""
ha:
  interface: lo
  local: {local}:7788
  peer: {peer}:7788
  floating: [198.18.0.254, 198.19.0.254]
  heartbeat: 10ms
  dead_time: 100ms
  preferred: {preferred}
"""
open(f"{out}/{name}.yaml", "w").write(s)
EOF
}
profile a 198.18.255.1 198.18.255.2 true 9461
profile b 198.18.255.2 198.18.255.1 false 9462
"$tandem" check --profile "$dir/a.yaml" >/dev/null || fail "profile a"

ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" addr add 198.18.255.1/32 dev lo
ip -n "$ns" addr add 198.18.255.2/32 dev lo
ip netns exec "$ns" "$tandem" run --profile "$dir/a.yaml" >"$dir/a.log" 2>&1 &
pa=$!
ip netns exec "$ns" "$tandem" run --profile "$dir/b.yaml" >"$dir/b.log" 2>&1 &
pb=$!

metric() { # PORT NAME: the value of an unlabelled sample (or a labelled one, given whole)
    ip netns exec "$ns" curl -sf "127.0.0.1:$1/metrics" | awk -v k="$2" '$1 == k { print $2 }'
}
status() { "$tandem" ha status --socket "$dir/$1.sock" 2>/dev/null | head -1; }

# 1. Elected: A active, B a ready standby (60 s at most: two debug builds start slowly).
settled=0
for _ in $(seq 1 120); do
    if status a | grep -q "^ha: active (epoch 1" && status b | grep -q "^ha: standby (epoch 1, ready"; then
        settled=1
        break
    fi
    sleep 0.5
done
[ $settled = 1 ] || fail "no settled pair: A '$(status a)', B '$(status b)'"
echo "A: $(status a)"
echo "B: $(status b)"
[ "$(metric 9461 tandem_ha_role)" = 2 ] || fail "A's tandem_ha_role"
[ "$(metric 9462 tandem_ha_role)" = 1 ] || fail "B's tandem_ha_role"
[ "$(metric 9462 tandem_ha_ready)" = 1 ] || fail "B's tandem_ha_ready"
[ "$(metric 9462 tandem_ha_sync_bulks_received_total)" -ge 1 ] || fail "B got no bulk"

# 2. The active speaks on its data ports; the standby says nothing there.
sleep 1
[ "$(metric 9461 tandem_control_gratuitous_arps_total)" -gt 0 ] || fail "A sent no gratuitous ARP"
[ "$(metric 9461 tandem_control_announcements_total)" -gt 0 ] || fail "A sent no announcement"
for k in tandem_control_tx_packets_total tandem_control_gratuitous_arps_total \
    tandem_control_announcements_total tandem_control_probes_total \
    tandem_control_arp_requests_total; do
    v=$(metric 9462 "$k")
    [ "$v" = 0 ] || fail "the standby's $k is '$v'"
done
drops=$(metric 9462 'tandem_worker_io_total{lcore="1",event="pair_inactive_drops"}')
[ "${drops:-0}" -gt 0 ] || fail "the standby dropped nothing of what its ports brought"
echo "standby: control tx 0, $drops frames dropped"

# 3. A stops: B takes over.
kill "$pa"
wait "$pa" || true
pa=
took=0
for _ in $(seq 1 40); do
    if status b | grep -q "^ha: active (epoch 2"; then
        took=1
        break
    fi
    sleep 0.25
done
[ $took = 1 ] || fail "B did not take over: '$(status b)'"
[ "$(metric 9462 tandem_ha_takeovers_total)" = 1 ] || fail "B's takeovers"
[ "$(metric 9462 tandem_control_gratuitous_arps_total)" -gt 0 ] || fail "B sent no gratuitous ARP"
echo "B: $(status b); detection $(metric 9462 tandem_ha_last_detection_nanoseconds) ns"
echo "ha-smoke: ok"
