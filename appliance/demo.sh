#!/usr/bin/env bash
# The demonstration (README's first command): a live TCP service survives the death of
# its server, through Tandem, byte for byte.
#
#   1. installs what it needs (appliance/install-deps.sh) and builds `tandem`;
#   2. brings the namespace lab up and runs `tandem run --profile configs/lab.yaml`;
#   3. starts our deterministic stream server and nginx on every replica;
#   4. runs TANDEM_DEMO_CONNS (20) stream connections through the VIP, data both ways,
#      every byte checked, and a 48 MiB curl download from nginx;
#   5. kill -9 of the primary's servers in the middle;
#   6. prints a short report: connections that survived, bytes verified, each
#      connection's stall (min / median / max), what the appliance did, its counters.
#
# The lab is torn down afterwards, also on failure or Ctrl-C (the steps 2-6 are
# appliance/e2e/failover.sh, which the test suite runs for every failure kind).
# Needs root (namespaces): run it as root (a fresh Debian 12 without sudo works), or with
# sudo from a user, whose own Rust toolchain then builds, as that user (appliance/cargo.sh).
#
#   appliance/demo.sh            # TANDEM_DEMO_KIND=silence|drop|freeze|backup for another failure
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    echo "demo: needs root for the network namespaces: run it as root, or: sudo $0" >&2
    exit 1
fi
# shellcheck source=cargo.sh
. appliance/cargo.sh
tandem_find_cargo || true # install-deps.sh says what to do when there is none
kind=${TANDEM_DEMO_KIND:-kill}
echo "== Tandem demonstration: installing what it needs"
appliance/install-deps.sh
echo "== building tandem"
cargo build --release --locked
echo "== lab up, tandem running, 20 clients and a curl through the VIP, failure: $kind"
log=$(mktemp /tmp/tandem-demo.XXXXXX)
trap 'rm -f "$log"' EXIT
rc=0
TANDEM_E2E_NO_BUILD=1 TANDEM_E2E_CONNS=${TANDEM_DEMO_CONNS:-20} \
    appliance/e2e/failover.sh "$kind" 2>&1 | tee "$log" | grep -E '^e2e .*(ok:|FAILED:)|: (kill|SIGSTOP|eth0|every packet)' || rc=$?
result=$(grep '^result:' "$log" || true)
if [ -z "$result" ]; then
    echo "demo: the run stopped before its report (full log follows)" >&2
    cat "$log" >&2
    exit 1
fi
python3 - "$result" <<'PY'
import sys
kv = dict(f.split("=", 1) for f in sys.argv[1].split()[1:] if "=" in f)
g = lambda k: kv.get(k, "?")
mb = lambda k: f"{int(g(k)) / 1e6:.1f} MB" if g(k).isdigit() else "?"
what = {
    "kill": "kill -9 of the primary's servers",
    "silence": "the primary host silenced (eth0 down)",
    "drop": "the primary dropping every packet",
    "freeze": "the primary's servers frozen (SIGSTOP, output lag 100 ms)",
    "backup": "kill -9 of the backup's servers",
}.get(g("kind"), g("kind"))
print()
print(f"Tandem demonstration: {what}, mid-stream")
print(f"  connections survived   {g('conns_ok')} / {g('conns')} stream connections, "
      f"curl {'intact' if g('curl_ok') == 'yes' else 'FAILED'} ({mb('curl_bytes')}, SHA-256 checked)")
print(f"  bytes verified         {mb('bytes_in')} from the servers, {mb('bytes_out')} to them")
print(f"  stall per connection   min {g('stall_ms_min')} ms, median {g('stall_ms_median')} ms, "
      f"max {g('stall_ms_max')} ms   (normal gap before the failure: {g('gap_before_ms_median')} ms)")
print(f"  appliance              switched {g('detect_ms')} ms after the failure; "
      f"cause: {g('cause').replace('_', ' ')}")
print(f"  counters               flows {g('flows_created')}, moved {g('flow_failovers')}, "
      f"lost {g('flows_lost')}, held segments replayed {g('replayed_segments')}, "
      f"health probes {g('probes')}")
print(f"  verdict                {'PASSED' if g('ok') == 'yes' else 'FAILED'}")
PY
exit "$rc"
