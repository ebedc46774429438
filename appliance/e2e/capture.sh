#!/usr/bin/env bash
# End-to-end test of packet capture the DPDK way (issue #18), in the namespace lab:
#
#   1. reserves hugepages with `tandem host setup` for a variant of the lab profile that
#      runs on 256 MB of hugepages instead of `--no-huge` (a DPDK secondary process maps
#      the primary's memory: it cannot attach to one without hugepages), and runs it;
#      the primary and the backup serve a 4 MiB file with nginx (port 80, the only one
#      probed);
#   2. `dpdk-dumpcap` (Debian's dpdk-dev), a DPDK secondary process, captures each port of
#      the running appliance into a pcapng file (two at once: DPDK 22.11's takes one
#      port) while curl fetches the file through the VIP from a fixed client port
#      (SHA-256 checked);
#   3. the files are pcapng, and `tcpdump -r` finds that client's flow on both sides: with
#      the VIP on the outside port (the SYN, and the whole file towards the client), with
#      the primary and the backup on the inside port (each got the client's SYN: mirror
#      mode), the client's address and port kept on both;
#   4. the gauges an operator watches: the packet buffer pool in use and free, the hold
#      slots, each port's extended statistics, in the metrics and in `tandem status`;
#   5. Tandem stops cleanly; the hugepages, and hugetlbfs if it mounted it, are given back.
#
# Needs root and a host that can reserve 2 MB hugepages (/sys/kernel/mm/hugepages):
# without them it says "skipped" and why. Bounded in time; everything it started is
# stopped and the lab taken down on any exit.
#
#   appliance/e2e/capture.sh          # TANDEM_E2E_NO_BUILD=1 skips the cargo build
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/../.."
# shellcheck source=../lib.sh
. appliance/lib.sh
E2E_NAME=capture
# shellcheck source=common.sh
. appliance/e2e/common.sh

hugepages_mb=256
client_port=40123
nr_path=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages

# Before anything else: whether this host can have hugepages at all.
if [ "$(id -u)" != 0 ]; then
    echo "e2e $E2E_NAME: skipped: needs root"
    exit 0
fi
if [ ! -w "$nr_path" ]; then
    echo "e2e $E2E_NAME: skipped: $nr_path is not writable here (no 2 MB hugepages can be reserved: a container without them, or a kernel without hugetlbfs); dpdk-dumpcap cannot attach to an appliance without hugepages"
    exit 0
fi
nr_before=$(cat "$nr_path")
mounted_before=$(awk '$3 == "hugetlbfs" { print $2 }' /proc/mounts | head -1)

e2e_setup python3 nginx curl tcpdump dpdk-dumpcap

# Tandem first (it holds the pages), then the pages and the mount, then the lab.
capture_cleanup() {
    local rc=$?
    set +e
    if [ -n "$tandem_pid" ] && kill -0 "$tandem_pid" 2>/dev/null; then
        kill -TERM "$tandem_pid" 2>/dev/null
        for _ in $(seq 1 50); do kill -0 "$tandem_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$tandem_pid" 2>/dev/null
        for _ in $(seq 1 20); do kill -0 "$tandem_pid" 2>/dev/null || break; sleep 0.1; done
    fi
    for f in "$tmp"/dumpcap-*.pid; do [ -f "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null; done
    # DPDK leaves its hugepage files (tandem-labmap_N) behind at exit; they keep their
    # pages reserved until removed.
    local dir
    while read -r dir; do
        rm -f "$dir"/tandem-labmap_* 2>/dev/null
    done < <(awk '$3 == "hugetlbfs" { print $2 }' /proc/mounts)
    echo "$nr_before" >"$nr_path" 2>/dev/null
    if [ -z "$mounted_before" ] && mountpoint -q /dev/hugepages 2>/dev/null; then
        umount /dev/hugepages 2>/dev/null
    fi
    # Pages still mapped by a process on its way out are given back when it has gone.
    for _ in $(seq 1 30); do
        [ "$(cat "$nr_path" 2>/dev/null)" = "$nr_before" ] && break
        sleep 0.1
    done
    echo "e2e $E2E_NAME: hugepages back to $(cat "$nr_path" 2>/dev/null) (were $nr_before)"
    (exit "$rc")
    e2e_cleanup
}
trap capture_cleanup EXIT

# 1. The lab on hugepages; the pages reserved by `tandem host setup`.
profile="$tmp/lab-hugepages.yaml"
"$bench" profile from configs/lab.yaml --replicas primary,backup --probe-ports 80 \
    --hugepages "$hugepages_mb" >"$profile" || { bad "could not make the profile"; exit 1; }
if setup=$("$tandem" host setup --profile "$profile" 2>&1); then
    ok "tandem host setup: $(grep -E '^changed: hugepages|^host setup: nothing' <<<"$setup" | head -1)"
else
    # The check also reports what it cannot change (isolated CPUs, an IOMMU); only the
    # hugepages matter here.
    echo "$setup"
fi
free=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages)
if [ "$free" -lt $((hugepages_mb / 2)) ]; then
    echo "e2e $E2E_NAME: skipped: the kernel reserved $free free 2 MB hugepages of the $((hugepages_mb / 2)) asked (memory too fragmented); dpdk-dumpcap cannot attach to an appliance without them"
    exit 0
fi
e2e_run_tandem "$profile"
if grep -q "packet capture: dpdk-dumpcap --file-prefix=tandem-lab -i DEVICE can attach" "$tmp/tandem.log"; then
    ok "the appliance says dpdk-dumpcap can attach (file prefix tandem-lab)"
else
    bad "no capture line in the log: $(grep 'packet capture' "$tmp/tandem.log" || echo none)"
fi

www="$tmp/www"
mkdir -p "$www"
random_file "$www/file" 4 20261206
want=$(sha256sum "$www/file" | cut -d" " -f1)
for name in primary backup; do start_nginx "$name" "$www" 120 64; done
wait_health primary up && wait_health backup up || { bad "replicas not up: $(ctl status)"; exit 1; }

# 2. dpdk-dumpcap on each port (DPDK 22.11's takes one -i), two secondary processes of the
# appliance's file prefix at once.
#
# dpdk-dumpcap's messages for port $1; it counts the packets captured on one line,
# over-writing each count with backspaces: only the last count is kept.
dumpcap_said() {
    sed -E 's/\x08+ */ /g; s/Packets captured: ([0-9]+ +)*([0-9]+)/Packets captured: \2/' \
        "$tmp/dumpcap-$1.out"
}
for port in outside inside; do
    dev=net_af_packet0
    [ "$port" = inside ] && dev=net_af_packet1
    lab_exec "$LAB_APPLIANCE_NS" timeout -s INT 40 dpdk-dumpcap --file-prefix=tandem-lab \
        -i "$dev" -p -w "$tmp/$port.pcapng" >"$tmp/dumpcap-$port.out" 2>&1 &
    echo $! >"$tmp/dumpcap-$port.pid"
done
for port in outside inside; do
    capturing=0
    for _ in $(seq 1 100); do
        grep -q "^Packets captured:" "$tmp/dumpcap-$port.out" 2>/dev/null && { capturing=1; break; }
        kill -0 "$(cat "$tmp/dumpcap-$port.pid")" 2>/dev/null || break
        sleep 0.1
    done
    if [ "$capturing" = 1 ]; then
        ok "dpdk-dumpcap attached to the $port port: $(grep '^File:' "$tmp/dumpcap-$port.out")"
    else
        bad "dpdk-dumpcap did not attach to the $port port:"
        dumpcap_said "$port"
        exit 1
    fi
done
got=$(lab_exec "$LAB_CLIENT_NS" curl -sS --max-time 30 --local-port "$client_port" \
    -o "$tmp/got" -w '%{http_code}' "http://$LAB_VIP/file" || true)
sha=$(sha256sum "$tmp/got" 2>/dev/null | cut -d" " -f1 || true)
if [ "$got" = 200 ] && [ "$sha" = "$want" ]; then
    ok "4 MiB through the VIP from port $client_port while capturing, SHA-256 matches"
else
    bad "curl: HTTP '$got', SHA-256 '${sha:-none}'"
fi
sleep 0.5
for port in outside inside; do
    pid=$(cat "$tmp/dumpcap-$port.pid")
    kill -INT "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$tmp/dumpcap-$port.pid"
    dumpcap_said "$port" | grep -v "not driven by the primary\|device .* cannot be used" |
        sed "s/^/e2e $E2E_NAME: dpdk-dumpcap $port: /"
done

# 3. The client's flow on both sides.
for port in outside inside; do
    magic=$(od -An -tx1 -N4 "$tmp/$port.pcapng" 2>/dev/null | tr -d ' \n')
    if [ "$magic" = 0a0d0d0a ]; then
        ok "the $port capture is pcapng ($(stat -c %s "$tmp/$port.pcapng") bytes)"
    else
        bad "the $port capture is not pcapng: magic '$magic'"
    fi
done
# Frames of the client's flow in the capture of port $1 matching the filter $2, and their
# TCP payload bytes; its SYNs.
flow() {
    tcpdump -nr "$tmp/$1.pcapng" "tcp port $client_port and ($2)" 2>/dev/null |
        awk '{ n++; for (i = 1; i < NF; i++) if ($i == "length") b += $(i + 1) } END { printf "%d %d\n", n, b }'
}
syn() {
    tcpdump -nr "$tmp/$1.pcapng" "tcp port $client_port and ($2) and tcp[tcpflags] & tcp-syn != 0 and tcp[tcpflags] & tcp-ack == 0" 2>/dev/null | wc -l
}
read -r out_n out_bytes <<<"$(flow outside "src host $LAB_VIP and dst host $LAB_CLIENT_IP")"
read -r in_n _ <<<"$(flow outside "src host $LAB_CLIENT_IP and dst host $LAB_VIP")"
out_syn=$(syn outside "src host $LAB_CLIENT_IP and dst host $LAB_VIP")
if [ "$out_syn" -ge 1 ] && [ "$in_n" -ge 3 ] && [ "$out_bytes" -ge $((4 << 20)) ]; then
    ok "outside port: the client's SYN to the VIP, $in_n frames from $LAB_CLIENT_IP:$client_port, $out_n frames with $out_bytes payload bytes back from the VIP"
else
    bad "outside port: SYN $out_syn, $in_n frames from the client, $out_n frames ($out_bytes bytes) from the VIP"
fi
for name in primary backup; do
    ip=$(lab_replica_ip "$name")
    s=$(syn inside "src host $LAB_CLIENT_IP and dst host $ip")
    read -r back_n _ <<<"$(flow inside "src host $ip and dst host $LAB_CLIENT_IP")"
    if [ "$s" -ge 1 ] && [ "$back_n" -ge 1 ]; then
        ok "inside port: the $name ($ip) got the client's SYN from $LAB_CLIENT_IP:$client_port and answered it ($back_n frames)"
    else
        bad "inside port: the $name ($ip): SYN $s, frames back $back_n"
    fi
done

# 4. What an operator watches: the gauges in the metrics and in `tandem status`.
metrics=$(scrape)
in_use=$(metric 'tandem_mbufs_in_use{pool="tandem_mbufs"}' "$metrics")
free_mbufs=$(metric 'tandem_mbufs_free{pool="tandem_mbufs"}' "$metrics")
slots_free=$(metric 'tandem_hold_slots_free{lcore="1"}' "$metrics")
missed=$(metric 'tandem_port_xstat{port="outside",device="net_af_packet0",name="rx_missed_errors"}' "$metrics")
good=$(metric 'tandem_port_xstat{port="inside",device="net_af_packet1",name="rx_good_packets"}' "$metrics")
if [ -n "$in_use" ] && [ "$((in_use + free_mbufs))" = 32767 ] && [ "${slots_free:-0}" -gt 0 ] &&
    [ -n "$missed" ] && [ "${good:-0}" -gt 0 ]; then
    ok "metrics: mbufs in use $in_use, free $free_mbufs; hold slots free $slots_free; outside rx_missed_errors $missed, inside rx_good_packets $good"
else
    bad "metrics: mbufs '$in_use'/'$free_mbufs', hold slots free '$slots_free', rx_missed_errors '$missed', rx_good_packets '$good'"
fi
status=$(ctl status)
status_json=$(ctl status --json)
if grep -q "^packet buffers tandem_mbufs: in use [0-9]*, free [0-9]*$" <<<"$status" &&
    grep -q "^port outside (net_af_packet0): rx_missed_errors [0-9]*, rx_errors [0-9]*, tx_errors [0-9]*, rx_mbuf_allocation_errors [0-9]*$" <<<"$status" &&
    grep -q "^held for standbys: [0-9]* bytes in [0-9]* hold slots ([0-9]* free)$" <<<"$status" &&
    jq -e '(.mbufs[0].in_use + .mbufs[0].free) == 32767 and (.ports | length) == 2 and .data_path.hold_slots_free > 0' <<<"$status_json" >/dev/null; then
    ok "tandem status: $(grep -E '^(packet buffers|held for standbys)' <<<"$status" | tr '\n' ';')"
else
    bad "tandem status lacks the gauges:"
    echo "$status"
fi

# 5.
e2e_stop_tandem
e2e_finish
