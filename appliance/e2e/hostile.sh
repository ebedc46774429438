#!/usr/bin/env bash
# End-to-end test against hostile traffic (issue #14), in the namespace lab. Every attack
# is sent only into the lab's own addresses (198.18.0.0/15), is bounded in count or time,
# and runs against live stream connections:
#
#   1. blind segments from the outside, forged with a live connection's client address
#      and port and random sequence and ack numbers: RST, FIN, ACK, data, SYN, and ICMP
#      "fragmentation needed" quoting the connection at a random sequence number;
#   2. forged replica segments from the inside: RSTs and FINs with the primary's and the
#      backup's address and port, to the live connections' client ends;
#   3. an ARP reply (and a gratuitous ARP) claiming the primary's address for another MAC;
#   4. a mixture of malformed frames (truncated and inconsistent IPv4 and TCP headers,
#      QinQ, fragments, UDP, GRE, IPv6, an unknown ethertype, a RST with a bad checksum,
#      SYNs from the VIP's and the appliance's own address, a truncated ARP);
#   5. a spoofed SYN flood: TANDEM_E2E_FLOODERS (4) `hping3 --flood -S` at the VIP, each
#      from its own lab-range source address (the ports change with every SYN), while a
#      legitimate client opens TANDEM_E2E_ATTEMPTS (200) short connections to nginx
#      through the VIP: the success rate must be at least 99 %. The flooders run at
#      nice TANDEM_E2E_FLOOD_NICE (10): in this lab they share the appliance's CPUs, which
#      on a box are the workers' own; at nice 0 on 2 vCPUs they leave the worker half a
#      CPU and offer twice what that reads from its veth, and the established streams
#      stall for seconds (perf/RESULTS.md "Under attack" has both);
#   6. a client behind a 1280-byte-MTU link (a router whose route to the client's
#      network has MTU 1280; the client's own link is 1500, so it announces MSS 1460)
#      fetches 24 MiB through the VIP: the router's ICMP "fragmentation needed" must be
#      passed on to the replicas (path-MTU discovery through Tandem), SHA-256 checked;
#   7. an ICMP echo flood at the VIP (two `hping3 --flood --icmp`) while the primary's
#      servers are killed: the failover must stay within TANDEM_E2E_FAILOVER_BOUND_MS
#      (100 ms; appliance/e2e/failover.sh kill measures 18-48 ms with 20 connections on
#      a 2-vCPU VM, perf/RESULTS.md).
#
# After each phase: the appliance runs, every stream connection is still established,
# and the counters show the attack (tandem_drops_total by reason, the engine's and the
# control core's counters, from the metrics listener). At the end: every stream byte
# right both ways, no reset, tandem stops cleanly; one `result:` line with the flood's
# success rate, each phase's longest stall of the stream connections, the failover time
# and the drops by reason.
#
# The attackers are three namespaces of this test's own, removed on exit: tandem-x-out
# (198.18.0.250, on the clients' bridge; also the router of the 1280-MTU client),
# tandem-x-far (198.18.1.2, behind it) and tandem-x-in (198.19.0.250, on the replicas'
# bridge). scapy (python3-scapy) builds the frames (appliance/e2e/hostile.py); hping3
# floods.
#
# In the lab, DPDK's net_af_packet has the kernel reassemble IP fragments before the
# appliance reads them: the fragments in phase 4 never reach it (`fragment` stays 0).
#
#   appliance/e2e/hostile.sh           # needs root
#   TANDEM_E2E_NO_BUILD=1 skips the cargo build. Knobs (defaults): TANDEM_E2E_CONNS (10)
#   stream connections; TANDEM_E2E_BLIND (50) blind segments of each kind per connection;
#   TANDEM_E2E_FLOODERS (4), TANDEM_E2E_FLOOD_PACE (--flood, or e.g. "-i u100"),
#   TANDEM_E2E_FLOOD_NICE (10), TANDEM_E2E_FLOOD_SECONDS (8), TANDEM_E2E_ATTEMPTS (200);
#   TANDEM_E2E_FAILOVER_BOUND_MS (100).
set -euo pipefail
export LC_ALL=C # EPOCHREALTIME and awk with a decimal point
cd "$(dirname "$0")/../.."
# shellcheck source=../lib.sh
. appliance/lib.sh
E2E_NAME=hostile
# shellcheck source=common.sh
. appliance/e2e/common.sh

conns=${TANDEM_E2E_CONNS:-10}
flooders=${TANDEM_E2E_FLOODERS:-4}
flood_secs=${TANDEM_E2E_FLOOD_SECONDS:-8}
# hping3's pace for each flooder: --flood (as fast as it can), or e.g. "-i u100".
flood_pace=${TANDEM_E2E_FLOOD_PACE:---flood}
flood_nice=${TANDEM_E2E_FLOOD_NICE:-10} # the flooders' nice value (see 5. above)
attempts=${TANDEM_E2E_ATTEMPTS:-200}
bound_ms=${TANDEM_E2E_FAILOVER_BOUND_MS:-100}
blind=${TANDEM_E2E_BLIND:-50} # blind segments of each kind per connection
hostile_py="$repo/appliance/e2e/hostile.py"

# The attackers' namespaces and addresses (all in 198.18.0.0/15).
X_OUT_NS="tandem-x-out"
X_FAR_NS="tandem-x-far"
X_IN_NS="tandem-x-in"
X_NAMESPACES=("$X_OUT_NS" "$X_FAR_NS" "$X_IN_NS")
X_OUT_IP=198.18.0.250
X_OUT_MAC=02:74:64:12:00:fa
X_RTR_IP=198.18.1.1 # tandem-x-out's side of the far client's link
X_RTR_MAC=02:74:64:12:01:01
X_FAR_IP=198.18.1.2
X_FAR_MAC=02:74:64:12:01:02
X_FAR_NET=198.18.1.0/24
X_IN_IP=198.19.0.250
X_IN_MAC=02:74:64:13:00:fa
X_MTU=1280

x_remove() {
    local ns pids
    for ns in "${X_NAMESPACES[@]}"; do
        lab_ns_exists "$ns" || continue
        pids=$(ip netns pids "$ns" 2>/dev/null || true)
        # shellcheck disable=SC2086  # a list of pids
        [ -n "$pids" ] && kill -KILL $pids 2>/dev/null
        ip netns del "$ns" 2>/dev/null
    done
    return 0
}
hostile_cleanup() {
    local rc=$?
    set +e
    x_remove
    (exit "$rc")
    e2e_cleanup
}

e2e_setup python3 nginx curl hping3 ss ethtool sha256sum
trap hostile_cleanup EXIT
# scapy from Debian's python3-scapy: /usr/bin/python3 (python3 on PATH may be another).
scapy_py=""
for py in /usr/bin/python3 python3; do
    if "$py" -c 'import scapy.all' >/dev/null 2>&1; then scapy_py=$py; break; fi
done
[ -n "$scapy_py" ] || { bad "python3-scapy is missing (appliance/install-deps.sh)"; exit 1; }
x_remove # left over from an interrupted run

e2e_run_tandem configs/lab.yaml
# The lab's bridges must be a plain switch for malformed frames: with br_netfilter on the
# host, the kernel validates IPv4 headers (and drops the bad ones), reassembles fragments
# and checks ARP on the bridge before the appliance sees them. Off in the switch's
# namespace (the sysctls are per namespace; absent without br_netfilter).
for k in iptables ip6tables arptables; do
    ip netns exec "$LAB_SWITCH_NS" sysctl -q -w "net.bridge.bridge-nf-call-$k=0" >/dev/null 2>&1 || true
done

# --- the attackers' namespaces --------------------------------------------------------
# x_link NS IF MAC [MTU]: offloads off (as lab.sh does: complete checksums on the veths),
# IPv6 off, the MAC, up.
x_link() {
    ip -n "$1" link set dev "$2" address "$3" mtu "${4:-$LAB_MTU}"
    ip netns exec "$1" ethtool -K "$2" tx off rx off sg off tso off gso off gro off \
        txvlan off rxvlan off >/dev/null 2>&1 ||
        ip netns exec "$1" ethtool -K "$2" tx off rx off tso off gso off gro off >/dev/null
    ip netns exec "$1" sysctl -q -w "net.ipv6.conf.$2.disable_ipv6=1" >/dev/null
    ip -n "$1" link set dev "$2" up
}
# x_ns NS BRIDGE PORT IP MAC: a namespace with eth0 on one of the lab's bridges.
x_ns() {
    local ns=$1 br=$2 port=$3
    ip netns add "$ns"
    ip -n "$ns" link set dev lo up
    ip netns exec "$ns" sysctl -q -w net.ipv6.conf.default.disable_ipv6=1 >/dev/null
    ip -n "$LAB_SWITCH_NS" link add "$port" type veth peer name "$LAB_HOST_IF" netns "$ns"
    x_link "$LAB_SWITCH_NS" "$port" "02:74:64:ff:00:0${#X_PORTS[@]}"
    ip -n "$LAB_SWITCH_NS" link set dev "$port" master "$br"
    X_PORTS+=("$port")
    x_link "$ns" "$LAB_HOST_IF" "$5"
    ip -n "$ns" addr add "$4/$LAB_PREFIXLEN" dev "$LAB_HOST_IF"
}
X_PORTS=()
x_ns "$X_OUT_NS" "$LAB_OUT_BRIDGE" out-x "$X_OUT_IP" "$X_OUT_MAC"
x_ns "$X_IN_NS" "$LAB_IN_BRIDGE" in-x "$X_IN_IP" "$X_IN_MAC"
# The far client: its own link at 1500, behind tandem-x-out, whose route to it has MTU
# 1280 (the 1280-byte link): a forwarded segment over 1280 bytes with DF set is answered
# with ICMP "fragmentation needed", MTU 1280, to its source, the VIP.
ip netns add "$X_FAR_NS"
ip -n "$X_FAR_NS" link set dev lo up
ip netns exec "$X_FAR_NS" sysctl -q -w net.ipv6.conf.default.disable_ipv6=1 >/dev/null
ip -n "$X_OUT_NS" link add r1 type veth peer name "$LAB_HOST_IF" netns "$X_FAR_NS"
x_link "$X_OUT_NS" r1 "$X_RTR_MAC"
x_link "$X_FAR_NS" "$LAB_HOST_IF" "$X_FAR_MAC"
ip -n "$X_OUT_NS" addr add "$X_RTR_IP/24" dev r1
ip -n "$X_OUT_NS" route replace "$X_FAR_NET" dev r1 proto kernel scope link src "$X_RTR_IP" mtu lock "$X_MTU"
ip -n "$X_FAR_NS" addr add "$X_FAR_IP/24" dev "$LAB_HOST_IF"
ip -n "$X_FAR_NS" route add default via "$X_RTR_IP"

# --- servers on every replica: the stream server, nginx with two files -------------------
www="$tmp/www"
mkdir -p "$www"
random_file "$www/big" 24 14
python3 -c 'import random, sys; open(sys.argv[1], "wb").write(random.Random(15).randbytes(16384))' "$www/small"
chmod 644 "$www/small"
want_big=$(sha256sum "$www/big" | cut -d" " -f1)
want_small=$(sha256sum "$www/small" | cut -d" " -f1)
for name in "${LAB_REPLICAS[@]}"; do
    start_server "$name" 400
    start_nginx "$name" "$www" 400 512
done
sleep 0.5 # up again after `rise` good probes

# --- helpers ---------------------------------------------------------------------------
# msum TEXT NAME [LABEL]: the sum of metric NAME's samples (those with LABEL if given,
# e.g. 'reason="paws"'), over every lcore.
msum() {
    awk -v n="$2" -v l="${3:-}" '
        { name = $1; sub(/\{.*/, "", name) }
        name == n && (l == "" || index($1, l)) { s += $2 }
        END { printf "%.0f\n", s }' <<<"$1"
}
drops() { msum "$1" tandem_drops_total "reason=\"$2\""; }
# dsum BEFORE AFTER REASON...: the drops for those reasons between two scrapes.
dsum() {
    local b=$1 a=$2 r n=0
    shift 2
    for r in "$@"; do n=$((n + $(drops "$a" "$r") - $(drops "$b" "$r"))); done
    echo "$n"
}
# mdelta BEFORE AFTER NAME [LABEL]
mdelta() { echo $(($(msum "$2" "$3" "${4:-}") - $(msum "$1" "$3" "${4:-}"))); }
REASONS=(malformed not_ipv4 fragment not_tcp no_flow bad_state rst_out_of_window rst_in_window
    out_of_window ack_out_of_window paws bad_checksum no_ack bad_source icmp_error table_full
    control_full tx_full no_buffer)
# Drops that moved between two scrapes, as "reason=n ...".
moved() {
    local r d out=""
    for r in "${REASONS[@]}"; do
        d=$(dsum "$1" "$2" "$r")
        [ "$d" != 0 ] && out+="$r=$d "
    done
    echo "${out% }"
}
# Every stream connection's client port, comma-separated.
live_ports() {
    lab_exec "$LAB_CLIENT_NS" ss -tnH state established dst "$LAB_VIP" dport = :7000 |
        awk '{ n = split($3, a, ":"); print a[n] }' | sort -n | paste -sd, -
}
live_count() {
    local p
    p=$(live_ports)
    [ -z "$p" ] && { echo 0; return; }
    tr ',' '\n' <<<"$p" | wc -l
}
# Each phase: its name and window (for the stalls), the metrics before it.
PHASES=()
phase_start() {
    phase=$1
    phase_t0=$EPOCHREALTIME
    m0=$(scrape)
    echo "e2e $E2E_NAME: --- phase $phase"
}
# phase_end: the appliance runs, every stream connection is established, the metrics
# after it in m1.
phase_end() {
    local n
    m1=$(scrape)
    PHASES+=("$phase $phase_t0 $EPOCHREALTIME")
    n=$(live_count)
    if kill -0 "$tandem_pid" 2>/dev/null && kill -0 "$client_pid" 2>/dev/null && [ "$n" = "$conns" ]; then
        ok "$phase: tandem runs, $n/$conns stream connections established"
    else
        bad "$phase: tandem $(kill -0 "$tandem_pid" 2>/dev/null && echo runs || echo 'is GONE'), $n/$conns stream connections established"
    fi
    echo "e2e $E2E_NAME: $phase: drops moved: $(moved "$m0" "$m1")"
}
# expect_drops WHAT SENT REASON...: those drops moved by at least 90 % of SENT.
expect_drops() {
    local what=$1 sent=$2 d
    shift 2
    d=$(dsum "$m_before" "$m_after" "$@")
    if [ "$d" -ge $((sent * 9 / 10)) ]; then
        ok "$phase: $what: $sent sent, $d counted ($(moved "$m_before" "$m_after"))"
    else
        bad "$phase: $what: $sent sent, only $d counted as $* ($(moved "$m_before" "$m_after"))"
    fi
}
# attack NS ARGS...: hostile.py ARGS in NS; the metrics before and after in m_before,
# m_after; its "sent" count in sent.
attack() {
    local ns=$1 out
    shift
    m_before=$(scrape)
    out=$(lab_exec "$ns" timeout 60 "$scapy_py" "$hostile_py" "$@" 2>&1) || { bad "$phase: hostile.py $1 failed: $out"; sent=0; return 0; }
    attack_out=$out
    sent=$(awk '/^sent / { s += $3 } END { print s + 0 }' <<<"$out")
    sleep 0.3 # the worker's counters are published periodically
    m_after=$(scrape)
}

# --- the stream connections through the whole test -------------------------------------
lab_exec "$LAB_CLIENT_NS" env STREAM_STOP="$tmp/stop" STREAM_GAPS="$tmp/gaps" timeout 400 \
    python3 "$repo/appliance/e2e/stream.py" client "$LAB_VIP" "$conns" 300 "$tmp/failed_at" \
    >"$tmp/client.out" 2>&1 &
client_pid=$!
echo "$client_pid" >"$tmp/client.pid"
for _ in $(seq 1 100); do
    [ "$(live_count)" = "$conns" ] && break
    sleep 0.1
done
ports=$(live_ports)
if [ "$(live_count)" = "$conns" ]; then
    ok "$conns stream connections through the VIP (client ports $ports)"
else
    bad "only $(live_count)/$conns stream connections established"
    exit 1
fi
pairs_out=$(tr ',' '\n' <<<"$ports" | awk '{ printf "%s%s:7000", (NR > 1 ? "," : ""), $1 }')
pairs_in=$(tr ',' '\n' <<<"$ports" | awk '{ printf "%s7000:%s", (NR > 1 ? "," : ""), $1 }')
first_port=${ports%%,*}
start_metrics=$(scrape)

phase_start quiet
sleep 1.5
phase_end

# --- 1. blind segments from the outside ---------------------------------------------------
phase_start blind-outside
for spec in "R rst rst_out_of_window rst_in_window" \
    "FA fin out_of_window ack_out_of_window paws no_ack" \
    "A ack out_of_window ack_out_of_window paws" \
    "PA data out_of_window ack_out_of_window paws" \
    "S syn bad_state"; do
    read -r flags what reasons <<<"$spec"
    payload=0
    [ "$what" = data ] && payload=200
    attack "$X_OUT_NS" tcp "$LAB_HOST_IF" "$X_OUT_MAC" "$LAB_OUT_MAC" "$LAB_CLIENT_IP" "$LAB_VIP" \
        "$pairs_out" "$flags" "$blind" "$payload"
    # shellcheck disable=SC2086  # a list of reasons
    expect_drops "blind $what (random seq and ack, the client's address and port)" "$sent" $reasons
done
attack "$X_OUT_NS" icmp "$LAB_HOST_IF" "$X_OUT_MAC" "$LAB_OUT_MAC" "$X_OUT_IP" "$LAB_VIP" \
    "$LAB_CLIENT_IP" 7000 "$ports" "$blind"
expect_drops "blind ICMP fragmentation needed (MTU 576) quoting the connections" "$sent" icmp_error
fn=$(mdelta "$m_before" "$m_after" tandem_icmp_frag_needed_total)
if [ "$fn" = 0 ]; then
    ok "$phase: no blind ICMP passed on to a replica (icmp_frag_needed unchanged)"
else
    bad "$phase: $fn blind ICMP errors passed on to replicas (icmp_frag_needed)"
fi
phase_end

# --- 2. forged replica segments from the inside ---------------------------------------------
phase_start forged-replica
for replica in primary backup; do
    rip=$(lab_replica_ip "$replica")
    attack "$X_IN_NS" tcp "$LAB_HOST_IF" "$X_IN_MAC" "$LAB_IN_MAC" "$rip" "$LAB_CLIENT_IP" \
        "$pairs_in" R "$blind"
    expect_drops "forged RSTs as $replica ($rip:7000)" "$sent" rst_out_of_window rst_in_window
    attack "$X_IN_NS" tcp "$LAB_HOST_IF" "$X_IN_MAC" "$LAB_IN_MAC" "$rip" "$LAB_CLIENT_IP" \
        "$pairs_in" FA "$blind"
    expect_drops "forged FINs as $replica ($rip:7000)" "$sent" out_of_window ack_out_of_window paws no_ack
done
phase_end

# --- 3. an ARP claim of the primary's address ---------------------------------------------------
phase_start arp-claim
attack "$X_IN_NS" arp "$LAB_HOST_IF" "$X_IN_MAC" "$LAB_IN_MAC" "$LAB_PRIMARY_IP" "$LAB_IN_IP"
for _ in $(seq 1 30); do
    [ "$(mdelta "$m0" "$m_after" tandem_control_arp_mac_refused_total)" -gt 0 ] && break
    sleep 0.1
    m_after=$(scrape)
done
claims=$(mdelta "$m0" "$m_after" tandem_control_arp_mac_claims_total)
refused=$(mdelta "$m0" "$m_after" tandem_control_arp_mac_refused_total)
changes=$(mdelta "$m0" "$m_after" tandem_control_arp_mac_changes_total)
if [ "$claims" -ge 1 ] && [ "$refused" -ge 1 ] && [ "$changes" = 0 ]; then
    ok "$phase: $LAB_PRIMARY_IP claimed for $X_IN_MAC: arp_mac_claims +$claims, arp_mac_refused +$refused, arp_mac_changes +0"
else
    bad "$phase: arp_mac_claims +$claims, arp_mac_refused +$refused, arp_mac_changes +$changes (want >=1, >=1, 0)"
fi
phase_end

# --- 4. malformed frames ------------------------------------------------------------------------
phase_start malformed
attack "$X_OUT_NS" malformed "$LAB_HOST_IF" "$X_OUT_MAC" "$LAB_OUT_MAC" "$X_OUT_IP" "$LAB_VIP" 7000 \
    "$LAB_CLIENT_IP" "$first_port" "$LAB_OUT_IP" 20
expect_line=$(grep '^expect ' <<<"$attack_out" || true)
control_malformed_sent=0
for kv in ${expect_line#expect }; do
    reason=${kv%=*}
    n=${kv#*=}
    if [ "$reason" = control.malformed ]; then
        control_malformed_sent=$n # the control core's, in its summary at exit
        continue
    fi
    d=$(dsum "$m_before" "$m_after" "$reason")
    if [ "$reason" = fragment ] && [ "$d" = 0 ]; then
        # DPDK's net_af_packet joins its socket to a fanout group with
        # PACKET_FANOUT_FLAG_DEFRAG: the kernel reassembles fragments before the appliance
        # reads them, and holds incomplete ones. A NIC would hand them over.
        echo "e2e $E2E_NAME: $phase: $n fragments sent, none reached the appliance (net_af_packet reassembles)"
    elif [ "$d" -ge "$n" ]; then
        ok "$phase: $n frames for $reason sent, $d counted"
    else
        bad "$phase: $n frames for $reason sent, $d counted"
    fi
done
phase_end

# --- 5. spoofed SYN flood ------------------------------------------------------------------------
# CPU time, in clock ticks, of Tandem's worker lcores (DPDK 22.11 names them rte-worker-N):
# in this lab the flooders run on the appliance's own CPUs, so how much of one its worker
# keeps is part of the result.
worker_ticks() {
    local t s=0 comm
    for t in /proc/"$tandem_pid"/task/*; do
        comm=$(cat "$t/comm" 2>/dev/null) || continue
        case $comm in rte-worker-*) ;; *) continue ;; esac
        s=$((s + $(awk '{ print $14 + $15 }' "$t/stat" 2>/dev/null || echo 0)))
    done
    echo "$s"
}
phase_start syn-flood
for i in $(seq 1 "$flooders"); do
    # SIGINT: hping3 prints how many it sent.
    # shellcheck disable=SC2086  # the pace is one or two words
    lab_exec "$X_OUT_NS" nice -n "$flood_nice" timeout -s INT "$flood_secs" hping3 -q -S $flood_pace -p 80 \
        -a "198.18.0.$((200 + i))" "$LAB_VIP" >"$tmp/flood-$i.out" 2>&1 &
    echo $! >"$tmp/flood-$i.pid"
done
sleep 1
ticks0=$(worker_ticks)
t0=$(date +%s%N)
lab_exec "$LAB_CLIENT_NS" timeout $((flood_secs + 30)) python3 "$hostile_py" legit "$LAB_VIP" 80 \
    /small "$want_small" "$attempts" "$((flood_secs - 2))" "$tmp/legit.txt" >"$tmp/legit.out" 2>&1 || true
worker_cpu=$(awk -v d="$(($(worker_ticks) - ticks0))" -v hz="$(getconf CLK_TCK)" -v ns="$(($(date +%s%N) - t0))" \
    'BEGIN { printf "%.0f", 100 * d / hz / (ns / 1e9) }')
echo "e2e $E2E_NAME: $phase: the worker lcore had $worker_cpu % of a CPU during the flood" \
    "(flooders at nice $flood_nice, $(nproc) CPUs)"
for i in $(seq 1 "$flooders"); do wait "$(cat "$tmp/flood-$i.pid")" || true; done
flood_sent=$(cat "$tmp"/flood-*.out | awk '/packets transmitted/ { s += $1 } END { print s + 0 }')
legit_line=$(grep '^legit:' "$tmp/legit.out" || echo "legit: $(tail -n 3 "$tmp/legit.out" | tr '\n' ' ')")
echo "e2e $E2E_NAME: $legit_line"
legit_ok=$(grep -c '^ok ' "$tmp/legit.txt" 2>/dev/null || true)
legit_rate=$(awk -v o="${legit_ok:-0}" -v n="$attempts" 'BEGIN { printf "%.1f", 100 * o / n }')
if [ "${legit_ok:-0}" -ge $(((attempts * 99 + 99) / 100)) ]; then
    ok "$phase: $legit_ok/$attempts ($legit_rate %) legitimate connections served during $flooders floods ($flood_sent SYNs in ${flood_secs} s)"
else
    bad "$phase: $legit_ok/$attempts ($legit_rate %) legitimate connections served during the flood (want >= 99 %); failures:"
    grep -v '^ok ' "$tmp/legit.txt" | sort | uniq -c | sort -rn | head -n 5 || true
fi
sleep 1
m_after=$(scrape)
# The replicas' own account (their listeners under the flood): SYNs dropped, cookies sent.
for replica in primary backup; do
    echo "e2e $E2E_NAME: $phase: $replica's kernel: $(ip netns exec "$(lab_replica_ns "$replica")" nstat -az \
        TcpExtListenDrops TcpExtListenOverflows TcpExtSyncookiesSent TcpExtTCPReqQFullDrop 2>/dev/null |
        awk '/^Tcp/ { printf "%s=%s ", $1, $2 }')"
done
created=$(mdelta "$m0" "$m_after" tandem_flows_created_total)
evicted=$(mdelta "$m0" "$m_after" tandem_half_open_evicted_total)
expired=$(mdelta "$m0" "$m_after" tandem_half_open_expired_total)
cookies=$(mdelta "$m0" "$m_after" tandem_syn_cookies_sent_total)
cookies_ok=$(mdelta "$m0" "$m_after" tandem_syn_cookies_accepted_total)
cookies_bad=$(mdelta "$m0" "$m_after" tandem_syn_cookies_failed_total)
echo "e2e $E2E_NAME: $phase: flows_created +$created, half_open_evicted +$evicted, half_open_expired +$expired," \
    "syn_cookies_sent +$cookies, syn_cookies_accepted +$cookies_ok, syn_cookies_failed +$cookies_bad," \
    "table_full +$(dsum "$m0" "$m_after" table_full), answers_rate_limited +$(mdelta "$m0" "$m_after" tandem_worker_io_total 'event="answers_rate_limited"')"
if [ "$created" -gt "$attempts" ] && [ $((evicted + expired + cookies)) -gt 0 ]; then
    ok "$phase: the flood counted: flows_created +$created, half-open evicted +$evicted, expired +$expired, syn cookies sent +$cookies, accepted +$cookies_ok"
else
    bad "$phase: the flood is not in the counters (flows_created +$created, evicted +$evicted, expired +$expired, syn cookies +$cookies)"
fi
phase_end

# --- 6. a client behind a 1280-byte-MTU link --------------------------------------------------
phase_start mtu-1280
ip netns exec "$X_OUT_NS" sysctl -q -w net.ipv4.ip_forward=1 >/dev/null
got_far=$(lab_exec "$X_FAR_NS" curl -sS --max-time 60 "http://$LAB_VIP/big" 2>"$tmp/far.err" | sha256sum | cut -d" " -f1 || true)
ip netns exec "$X_OUT_NS" sysctl -q -w net.ipv4.ip_forward=0 >/dev/null
m_after=$(scrape)
if [ "$got_far" = "$want_big" ]; then
    ok "$phase: $X_FAR_IP fetched 24 MiB through a 1280-byte link: SHA-256 matches"
else
    bad "$phase: 24 MiB through a 1280-byte link: SHA-256 ${got_far:-none} (want $want_big) $(cat "$tmp/far.err")"
fi
fn=$(mdelta "$m0" "$m_after" tandem_icmp_frag_needed_total)
pmtu=""
for replica in primary backup; do
    r=$(ip -n "$(lab_replica_ns "$replica")" route get "$X_FAR_IP" 2>/dev/null | grep -oE 'mtu [0-9]+' || echo "mtu none")
    pmtu+="$replica ${r#mtu }, "
done
pmtu=${pmtu%, }
if [ "$fn" -gt 0 ] && [[ $pmtu == "primary $X_MTU, backup $X_MTU" ]]; then
    ok "$phase: the router's ICMP passed on to the replicas (icmp_frag_needed +$fn); path MTU to $X_FAR_IP: $pmtu"
else
    bad "$phase: icmp_frag_needed +$fn; path MTU to $X_FAR_IP: $pmtu (want $X_MTU on both)"
fi
phase_end

# --- 7. an ICMP flood at the VIP while the primary dies ----------------------------------------
phase_start icmp-flood-failover
log_mark=$(wc -l <"$tmp/tandem.log")
for i in 1 2; do
    lab_exec "$X_OUT_NS" timeout -s INT 4 hping3 -q --icmp --flood -a "198.18.0.$((210 + i))" "$LAB_VIP" \
        >"$tmp/icmp-$i.out" 2>&1 &
    echo $! >"$tmp/icmp-$i.pid"
done
sleep 1.5
# Flows already running with fewer replicas than asked (a legitimate connection of the
# SYN flood whose backup's SYN-ACK was lost, a standby that left its flow): the kill
# resets those, as it must.
unprotected_at_kill=$(awk '$1 ~ /^tandem_flows_unprotected/ { s += $2 } END { print s + 0 }' <<<"$(scrape)")
master=$(cat "$tmp/nginx-primary.pid")
pids="$(cat "$tmp/stream-primary.pid") $master $(pgrep -P "$master" | tr '\n' ' ')"
failed_at=$EPOCHREALTIME
# shellcheck disable=SC2086  # a list of pids
kill -KILL $pids || true
echo "$failed_at" >"$tmp/failed_at"
echo "e2e $E2E_NAME: kill -9 of the servers on primary (pids $pids) at $failed_at, under the ICMP flood"
for i in 1 2; do wait "$(cat "$tmp/icmp-$i.pid")" || true; done
icmp_sent=$(cat "$tmp"/icmp-*.out | awk '/packets transmitted/ { s += $1 } END { print s + 0 }')
sleep 0.5
m_after=$(scrape)
tail -n +"$((log_mark + 1))" "$tmp/tandem.log" >"$tmp/events.log"
down=$(grep -E 'event="?failover' "$tmp/events.log" | grep -E "addr=$LAB_PRIMARY_IP" | head -n 1 || true)
detect_ms=unknown
if [ -n "$down" ]; then
    at=$(awk '{ print $1 }' <<<"$down")
    at_s=$(date -d "$at" +%s.%N 2>/dev/null || echo "")
    [ -n "$at_s" ] && detect_ms=$(awk -v a="$at_s" -v b="$failed_at" 'BEGIN { printf "%.1f", (a - b) * 1000 }')
    if awk -v d="$detect_ms" -v b="$bound_ms" 'BEGIN { exit !(d != "unknown" && d + 0 <= b + 0) }'; then
        ok "$phase: primary failed over $detect_ms ms after the kill (bound $bound_ms ms): $(grep -oE 'cause=.*first_sign_to_switch_us=[0-9]+' <<<"$down" || echo "$down")"
    else
        bad "$phase: primary failed over $detect_ms ms after the kill, over the bound of $bound_ms ms: $down"
    fi
else
    bad "$phase: no failover of the primary in the tandem log"
fi
others=$(grep -E 'event="?failover' "$tmp/events.log" | grep -vE "addr=$LAB_PRIMARY_IP" || true)
if [ -z "$others" ]; then ok "$phase: no other replica failed over"; else bad "$phase: other replicas failed over: $others"; fi
limited=$(mdelta "$m0" "$m_after" tandem_worker_io_total 'event="control_rate_limited"')
echoes=$(mdelta "$m0" "$m_after" tandem_control_echo_replies_total)
if [ "$limited" -gt 0 ]; then
    ok "$phase: $icmp_sent echo requests: $echoes answered, $limited dropped by the control-plane rate limit"
else
    bad "$phase: $icmp_sent echo requests, control_rate_limited +$limited, echo replies +$echoes"
fi
phase_end

# --- the end: the stream connections, the appliance -------------------------------------------
touch "$tmp/stop"
client_rc=0
wait "$client_pid" || client_rc=$?
rm -f "$tmp/client.pid"
cat "$tmp/client.out"
field() { awk -v k="$1" '/^summary:/ { for (i = 1; i <= NF; i++) if (index($i, k "=") == 1) { print substr($i, length(k) + 2) } }' "$tmp/client.out"; }
if [ "$client_rc" = 0 ]; then
    ok "$conns stream connections through every phase: no reset, every byte right both ways ($(field bytes_in) in, $(field bytes_out) out)"
else
    bad "the stream clients failed (rc $client_rc)"
fi
# Each phase's longest stall: the longest part of any connection's gap between received
# bytes inside the phase's window (or the second after it).
stalls=""
for p in "${PHASES[@]}"; do
    read -r name t0 t1 <<<"$p"
    s=$(awk -v a0="$t0" -v a1="$t1" '
        { s = ($2 > a0 ? $2 : a0); e = ($3 < a1 + 1 ? $3 : a1 + 1); if (e - s > m) m = e - s }
        END { printf "%.0f", m * 1000 }' "$tmp/gaps" 2>/dev/null || echo unknown)
    stalls+="$name=$s "
    eval "stall_${name//-/_}=$s"
done
echo "e2e $E2E_NAME: longest stall of the stream connections per phase, ms: $stalls"
end_metrics=$(scrape)
drops_moved=$(moved "$start_metrics" "$end_metrics")
echo "e2e $E2E_NAME: drops by reason over the attacks: $drops_moved"

e2e_stop_tandem
grep -E '^\s+(flows_created|flow_failovers|flows_lost|half_open_[a-z]+|icmp_frag_needed|stray_resets|drop\.[a-z_]+|control_rate_limited|answers_rate_limited|control\.(malformed|echo_replies|arp_mac_[a-z]+|failovers))\s' "$tmp/tandem.out" || true
cm=$(counter control.malformed)
if [ "${cm:-0}" -ge "$control_malformed_sent" ] && [ "$control_malformed_sent" -gt 0 ]; then
    ok "malformed: $control_malformed_sent truncated ARP frames sent, control.malformed $cm"
else
    bad "malformed: $control_malformed_sent truncated ARP frames sent, control.malformed '${cm:-missing}'"
fi
pmac=$(awk -v ip="$LAB_PRIMARY_IP" '$1 == ip { print $2; exit }' "$tmp/tandem.out")
if [ "$pmac" = "$LAB_PRIMARY_MAC" ]; then
    ok "arp-claim: the primary's MAC is still $pmac (not $X_IN_MAC)"
else
    bad "arp-claim: the primary's MAC is '${pmac:-missing}' (want $LAB_PRIMARY_MAC)"
fi
lost=$(counter flows_lost)
# Flows that ran unprotected when the primary was killed (above) are reset, as they must
# be; those, and only those, may be lost.
left=${unprotected_at_kill:-0}
if [ "${lost:-x}" = 0 ]; then
    ok "no flow lost (flows_lost 0)"
elif [ "${lost:-x}" -le "$left" ] 2>/dev/null; then
    ok "flows_lost $lost: flows that ran unprotected when the primary was killed ($left), reset as they must be"
else
    bad "flows_lost is '${lost:-missing}' (flows unprotected at the kill: $left)"
fi

echo "result: ok=$([ "$fail" = 0 ] && echo yes || echo no) conns=$conns conns_ok=$(field conns_ok)" \
    "bytes_in=$(field bytes_in) bytes_out=$(field bytes_out)" \
    "flood_senders=$flooders flood_pace=${flood_pace// /} flood_nice=$flood_nice flood_syns=$flood_sent worker_cpu_pct=$worker_cpu" \
    "legit=$legit_ok/$attempts legit_rate=$legit_rate" \
    "stall_ms_quiet=${stall_quiet:-unknown} stall_ms_flood=${stall_syn_flood:-unknown} stall_ms_max=$(field max_gap_ms)" \
    "failover_ms=$detect_ms failover_stall_ms_max=$(field stall_ms_max) icmp_echo_sent=$icmp_sent" \
    "drops: ${drops_moved// /,}"
e2e_finish
