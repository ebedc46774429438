#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Tandem lab: network namespaces on one machine, fixed names and addresses.
# See appliance/README.md for the diagram; names and addresses are in lib.sh.
#
#   lab.sh up [--clients N] [--ha]   create the lab (idempotent); --ha: the appliance pair
#   lab.sh down               kill lab processes, delete everything (idempotent)
#   lab.sh status             show namespaces, links, addresses, routes, neighbours, processes
#   lab.sh selftest           check the plumbing with a plain Linux router in place of the appliance
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

PROG=$(basename "$0")

usage() {
    cat <<EOF
usage: $PROG up [--clients N] [--ha] | down | status | selftest

  up [--clients N] [--ha]
                    create the lab: namespaces $LAB_SWITCH_NS, $LAB_APPLIANCE_NS,
                    $LAB_CLIENT_NS (…${LAB_CLIENT_NS}N), $LAB_PRIMARY_NS, $LAB_BACKUP_NS, $LAB_SPARE_NS.
                    N clients (default 1, at most $LAB_MAX_CLIENTS) at 198.18.0.2, .3, …
                    --ha adds the appliance pair's second appliance, $LAB_APPLIANCE_B_NS
                    ($LAB_APPLIANCE_OUT_IF and $LAB_APPLIANCE_IN_IF of its own on the same two bridges,
                    MACs $LAB_B_OUT_MAC, $LAB_B_IN_MAC), and the HA link: $LAB_HA_IF in both
                    appliance namespaces, $LAB_HA_A_IP/$LAB_HA_PREFIXLEN (A) and $LAB_HA_B_IP/$LAB_HA_PREFIXLEN (B).
                    A second 'up' with the same N and --ha or not reports it is up (and
                    re-applies the offload/MTU/IPv6 settings); with another N, --ha
                    where there is none or none where there is, or over a partial lab,
                    it recreates the lab.
  down              kill the processes in the lab namespaces, delete them (and with
                    them every lab link and bridge). Never fails when already down.
  status            namespaces, links, addresses, routes, neighbours, processes.
                    Exit 0 when up (with or without the pair), 1 when partial, 3 when down.
  selftest          put a plain Linux router in $LAB_APPLIANCE_NS ($LAB_OUT_IP on $LAB_APPLIANCE_OUT_IF,
                    $LAB_IN_IP on $LAB_APPLIANCE_IN_IF), ping and move TCP data through it, then
                    restore the lab as 'up' left it. Needs the lab up and no appliance running.
Run as root.
EOF
}

# --- small helpers -------------------------------------------------------------

# nsx NS CMD... : quiet wrapper for ip netns exec.
nsx() { lab_exec "$@"; }

# ns_sysctl NS KEY=VALUE... : set sysctls in a namespace, quietly.
ns_sysctl() {
    local ns=$1
    shift
    nsx "$ns" sysctl -q -w "$@" >/dev/null
}

# tune_if NS IF [MAC] : MTU, offloads off, IPv6 off, optional fixed MAC, up.
# Offloads: with tx checksum offload on, the kernel leaves TCP/UDP checksums
# partial on veth, and what DPDK reads through net_af_packet (and what DPDK
# sends back) carries bad checksums (DPDK-NOTES.md). rx off makes receivers
# verify checksums instead of trusting the veth, so a wrong one is caught.
tune_if() {
    local ns=$1 dev=$2 mac=${3:-}
    if [[ -n $mac ]]; then
        ip -n "$ns" link set dev "$dev" address "$mac"
    fi
    tune_settings "$ns" "$dev"
    ip -n "$ns" link set dev "$dev" up
}

# tune_settings NS IF : MTU, offloads off, IPv6 off (not the link state).
tune_settings() {
    local ns=$1 dev=$2
    ip -n "$ns" link set dev "$dev" mtu "$LAB_MTU"
    nsx "$ns" ethtool -K "$dev" tx off rx off sg off tso off gso off gro off \
        txvlan off rxvlan off >/dev/null 2>&1 ||
        nsx "$ns" ethtool -K "$dev" tx off rx off tso off gso off gro off >/dev/null
    ns_sysctl "$ns" "net.ipv6.conf.$dev.disable_ipv6=1"
}

# veth_ends N [HA] : every veth end of a lab with N clients (HA 1: with the pair), as
# NS:IF lines.
veth_ends() {
    local i r
    echo "$LAB_APPLIANCE_NS:$LAB_APPLIANCE_OUT_IF"
    echo "$LAB_APPLIANCE_NS:$LAB_APPLIANCE_IN_IF"
    echo "$LAB_SWITCH_NS:out-app"
    echo "$LAB_SWITCH_NS:in-app"
    if [[ ${2:-0} == 1 ]]; then
        echo "$LAB_APPLIANCE_B_NS:$LAB_APPLIANCE_OUT_IF"
        echo "$LAB_APPLIANCE_B_NS:$LAB_APPLIANCE_IN_IF"
        echo "$LAB_SWITCH_NS:out-app-b"
        echo "$LAB_SWITCH_NS:in-app-b"
        echo "$LAB_APPLIANCE_NS:$LAB_HA_IF"
        echo "$LAB_APPLIANCE_B_NS:$LAB_HA_IF"
    fi
    for ((i = 1; i <= $1; i++)); do
        echo "$(lab_client_ns "$i"):$LAB_HOST_IF"
        echo "$LAB_SWITCH_NS:$(client_port "$i")"
    done
    for r in "${LAB_REPLICAS[@]}"; do
        echo "$(lab_replica_ns "$r"):$LAB_HOST_IF"
        echo "$LAB_SWITCH_NS:$(replica_port "$r")"
    done
}

# new_ns NS : create a namespace with lo up and IPv6 off for new interfaces.
new_ns() {
    local ns=$1
    ip netns add "$ns"
    ip -n "$ns" link set dev lo up
    # Interfaces created from now on start with IPv6 disabled: no router
    # solicitations, DAD or MLD reach the appliance. lo keeps ::1.
    ns_sysctl "$ns" net.ipv6.conf.default.disable_ipv6=1 net.ipv6.conf.default.accept_ra=0
}

# veth_to_switch NS IF BRIDGE PORT [MAC] : veth pair IF (in NS) <-> PORT (in the switch, on BRIDGE).
veth_to_switch() {
    local ns=$1 dev=$2 br=$3 port=$4 mac=${5:-}
    ip -n "$LAB_SWITCH_NS" link add "$port" type veth peer name "$dev" netns "$ns"
    tune_if "$LAB_SWITCH_NS" "$port"
    ip -n "$LAB_SWITCH_NS" link set dev "$port" master "$br"
    tune_if "$ns" "$dev" "$mac"
}

client_port() { echo "out-c$1"; }
replica_port() { echo "in-$1"; }

# expected_namespaces N [HA] : every namespace of a lab with N clients (HA 1: the pair).
expected_namespaces() {
    local i
    echo "$LAB_SWITCH_NS"
    echo "$LAB_APPLIANCE_NS"
    if [[ ${2:-0} == 1 ]]; then echo "$LAB_APPLIANCE_B_NS"; fi
    for ((i = 1; i <= $1; i++)); do lab_client_ns "$i"; done
    for r in "${LAB_REPLICAS[@]}"; do lab_replica_ns "$r"; done
}

has_link() { ip -n "$1" link show dev "$2" >/dev/null 2>&1; }

# lab_ha : 1 when the pair's second appliance namespace exists, else 0.
lab_ha() { if lab_ns_exists "$LAB_APPLIANCE_B_NS"; then echo 1; else echo 0; fi; }

# lab_complete N [HA] : true when a lab with exactly N clients is fully there, with the
# pair when HA is 1 and without it otherwise.
lab_complete() {
    local n=$1 ha=${2:-0} ns i r
    while read -r ns; do lab_ns_exists "$ns" || return 1; done < <(expected_namespaces "$n" "$ha")
    lab_ns_exists "$(lab_client_ns $((n + 1)))" && return 1
    [[ $(lab_ha) == "$ha" ]] || return 1
    has_link "$LAB_SWITCH_NS" "$LAB_OUT_BRIDGE" || return 1
    has_link "$LAB_SWITCH_NS" "$LAB_IN_BRIDGE" || return 1
    has_link "$LAB_APPLIANCE_NS" "$LAB_APPLIANCE_OUT_IF" || return 1
    has_link "$LAB_APPLIANCE_NS" "$LAB_APPLIANCE_IN_IF" || return 1
    if [[ $ha == 1 ]]; then
        has_link "$LAB_APPLIANCE_B_NS" "$LAB_APPLIANCE_OUT_IF" || return 1
        has_link "$LAB_APPLIANCE_B_NS" "$LAB_APPLIANCE_IN_IF" || return 1
        ip -n "$LAB_APPLIANCE_NS" -4 addr show dev "$LAB_HA_IF" 2>/dev/null |
            grep -q "inet $LAB_HA_A_IP/" || return 1
        ip -n "$LAB_APPLIANCE_B_NS" -4 addr show dev "$LAB_HA_IF" 2>/dev/null |
            grep -q "inet $LAB_HA_B_IP/" || return 1
    fi
    for ((i = 1; i <= n; i++)); do
        ns=$(lab_client_ns "$i")
        ip -n "$ns" -4 addr show dev "$LAB_HOST_IF" 2>/dev/null |
            grep -q "inet $(lab_client_ip "$i")/" || return 1
    done
    for r in "${LAB_REPLICAS[@]}"; do
        ip -n "$(lab_replica_ns "$r")" -4 addr show dev "$LAB_HOST_IF" 2>/dev/null |
            grep -q "inet $(lab_replica_ip "$r")/" || return 1
    done
    return 0
}

require_tools() {
    lab_require_root "$@"
    lab_require_netns
    local t
    for t in ethtool sysctl; do
        command -v "$t" >/dev/null 2>&1 || lab_die "'$t' not found: run appliance/install-deps.sh"
    done
}

# --- down ------------------------------------------------------------------------

do_down() {
    local nss ns pids all=() p i
    mapfile -t nss < <(lab_namespaces)
    if [[ ${#nss[@]} -eq 0 ]]; then
        lab_log "down: nothing to remove (already down)"
        return 0
    fi
    for ns in "${nss[@]}"; do
        pids=$(ip netns pids "$ns" 2>/dev/null || true)
        for p in $pids; do all+=("$p"); done
    done
    if [[ ${#all[@]} -gt 0 ]]; then
        lab_log "down: stopping ${#all[@]} process(es) in lab namespaces: ${all[*]}"
        kill -TERM "${all[@]}" 2>/dev/null || true
        local alive=()
        for ((i = 0; i < 30; i++)); do
            alive=()
            for p in "${all[@]}"; do kill -0 "$p" 2>/dev/null && alive+=("$p"); done
            [[ ${#alive[@]} -eq 0 ]] && break
            sleep 0.1
        done
        if [[ ${#alive[@]} -gt 0 ]]; then
            lab_log "down: SIGKILL to ${alive[*]}"
            kill -KILL "${alive[@]}" 2>/dev/null || true
            sleep 0.2
        fi
    fi
    # Deleting a namespace destroys its veth ends (and so their peers) and the
    # bridges; nothing of the lab lives in the root namespace.
    for ns in "${nss[@]}"; do
        ip netns del "$ns" 2>/dev/null || lab_warn "could not delete namespace $ns"
    done
    lab_log "down: removed ${#nss[@]} namespace(s): ${nss[*]}"
}

cmd_down() {
    [[ $# -eq 0 ]] || { usage >&2; exit 2; }
    require_tools down
    do_down
}

# --- up ----------------------------------------------------------------------------

cmd_up() {
    local n=1 ha=0
    while [[ $# -gt 0 ]]; do
        case $1 in
            --ha)
                ha=1
                shift
                ;;
            --clients)
                [[ $# -ge 2 ]] || { usage >&2; exit 2; }
                n=$2
                shift 2
                ;;
            --clients=*)
                n=${1#--clients=}
                shift
                ;;
            *) usage >&2; exit 2 ;;
        esac
    done
    if ! [[ $n =~ ^[0-9]+$ ]] || ((n < 1 || n > LAB_MAX_CLIENTS)); then
        lab_die "--clients wants a number from 1 to $LAB_MAX_CLIENTS, got '$n'"
    fi
    require_tools up

    local what="$n client(s)"
    [[ $ha == 1 ]] && what+=", the appliance pair"
    if [[ -n $(lab_namespaces) ]]; then
        if lab_complete "$n" "$ha"; then
            local v
            while read -r v; do tune_settings "${v%%:*}" "${v#*:}"; done < <(veth_ends "$n" "$ha")
            lab_log "up: already up ($what); offload/MTU/IPv6 settings re-applied ('lab.sh down' first to recreate)"
            return 0
        fi
        lab_log "up: partial lab, another client count, or the pair where none is asked for (or none where it is): recreating"
        do_down
    fi

    # Any failure from here on removes the half-built lab again.
    UP_DONE=0
    UP_FAILED_AT=
    set -o errtrace
    trap '[[ -n $UP_FAILED_AT ]] || UP_FAILED_AT=$BASH_COMMAND' ERR
    trap 'if [[ $UP_DONE -eq 0 ]]; then lab_warn "up failed${UP_FAILED_AT:+ at: $UP_FAILED_AT}; removing what was created"; do_down >/dev/null 2>&1 || true; fi' EXIT

    local i ns r
    lab_log "up: namespaces"
    while read -r ns; do new_ns "$ns"; done < <(expected_namespaces "$n" "$ha")

    lab_log "up: bridges $LAB_OUT_BRIDGE, $LAB_IN_BRIDGE in $LAB_SWITCH_NS (no addresses, no STP)"
    for br in "$LAB_OUT_BRIDGE" "$LAB_IN_BRIDGE"; do
        ip -n "$LAB_SWITCH_NS" link add "$br" type bridge stp_state 0 forward_delay 0 mcast_snooping 0
        ip -n "$LAB_SWITCH_NS" link set dev "$br" mtu "$LAB_MTU"
        ns_sysctl "$LAB_SWITCH_NS" "net.ipv6.conf.$br.disable_ipv6=1"
        ip -n "$LAB_SWITCH_NS" link set dev "$br" up
    done

    lab_log "up: appliance ports $LAB_APPLIANCE_OUT_IF ($LAB_OUT_MAC), $LAB_APPLIANCE_IN_IF ($LAB_IN_MAC) in $LAB_APPLIANCE_NS, no Linux addresses"
    veth_to_switch "$LAB_APPLIANCE_NS" "$LAB_APPLIANCE_OUT_IF" "$LAB_OUT_BRIDGE" out-app "$LAB_OUT_MAC"
    veth_to_switch "$LAB_APPLIANCE_NS" "$LAB_APPLIANCE_IN_IF" "$LAB_IN_BRIDGE" in-app "$LAB_IN_MAC"
    # The kernel here must stay out of the way: no forwarding, no ARP answers.
    ns_sysctl "$LAB_APPLIANCE_NS" net.ipv4.ip_forward=0

    if [[ $ha == 1 ]]; then
        # B's ports on the same two bridges as A's: the floating addresses move between
        # them by gratuitous ARP, the bridges learn the new MACs from them.
        lab_log "up: appliance B ports $LAB_APPLIANCE_OUT_IF ($LAB_B_OUT_MAC), $LAB_APPLIANCE_IN_IF ($LAB_B_IN_MAC) in $LAB_APPLIANCE_B_NS, no Linux addresses"
        veth_to_switch "$LAB_APPLIANCE_B_NS" "$LAB_APPLIANCE_OUT_IF" "$LAB_OUT_BRIDGE" out-app-b "$LAB_B_OUT_MAC"
        veth_to_switch "$LAB_APPLIANCE_B_NS" "$LAB_APPLIANCE_IN_IF" "$LAB_IN_BRIDGE" in-app-b "$LAB_B_IN_MAC"
        ns_sysctl "$LAB_APPLIANCE_B_NS" net.ipv4.ip_forward=0
        lab_log "up: HA link $LAB_HA_IF: $LAB_HA_A_IP/$LAB_HA_PREFIXLEN in $LAB_APPLIANCE_NS, $LAB_HA_B_IP/$LAB_HA_PREFIXLEN in $LAB_APPLIANCE_B_NS"
        ip -n "$LAB_APPLIANCE_NS" link add "$LAB_HA_IF" type veth peer name "$LAB_HA_IF" netns "$LAB_APPLIANCE_B_NS"
        tune_if "$LAB_APPLIANCE_NS" "$LAB_HA_IF"
        tune_if "$LAB_APPLIANCE_B_NS" "$LAB_HA_IF"
        ip -n "$LAB_APPLIANCE_NS" addr add "$LAB_HA_A_IP/$LAB_HA_PREFIXLEN" dev "$LAB_HA_IF"
        ip -n "$LAB_APPLIANCE_B_NS" addr add "$LAB_HA_B_IP/$LAB_HA_PREFIXLEN" dev "$LAB_HA_IF"
    fi

    for ((i = 1; i <= n; i++)); do
        ns=$(lab_client_ns "$i")
        lab_log "up: client $ns $LAB_HOST_IF $(lab_client_ip "$i")/$LAB_PREFIXLEN via $LAB_OUT_IP"
        veth_to_switch "$ns" "$LAB_HOST_IF" "$LAB_OUT_BRIDGE" "$(client_port "$i")" "$(lab_client_mac "$i")"
        ip -n "$ns" addr add "$(lab_client_ip "$i")/$LAB_PREFIXLEN" dev "$LAB_HOST_IF"
        ip -n "$ns" route add default via "$LAB_OUT_IP" dev "$LAB_HOST_IF"
    done

    for r in "${LAB_REPLICAS[@]}"; do
        ns=$(lab_replica_ns "$r")
        lab_log "up: replica $ns $LAB_HOST_IF $(lab_replica_ip "$r")/$LAB_PREFIXLEN via $LAB_IN_IP"
        veth_to_switch "$ns" "$LAB_HOST_IF" "$LAB_IN_BRIDGE" "$(replica_port "$r")" "$(lab_replica_mac "$r")"
        ip -n "$ns" addr add "$(lab_replica_ip "$r")/$LAB_PREFIXLEN" dev "$LAB_HOST_IF"
        ip -n "$ns" route add default via "$LAB_IN_IP" dev "$LAB_HOST_IF"
    done
    UP_DONE=1
    trap - EXIT ERR
    set +o errtrace

    lab_complete "$n" "$ha" || lab_die "up: lab incomplete after creation (see 'lab.sh status')"
    lab_log "up: lab is up ($what); VIP $LAB_VIP is answered by the appliance on $LAB_APPLIANCE_OUT_IF"
}

# --- status --------------------------------------------------------------------------

cmd_status() {
    [[ $# -eq 0 ]] || { usage >&2; exit 2; }
    require_tools status
    local nss ns pids n br ha
    mapfile -t nss < <(lab_namespaces)
    if [[ ${#nss[@]} -eq 0 ]]; then
        lab_log "status: down (no lab namespaces)"
        return 3
    fi
    n=$(lab_client_count)
    ha=$(lab_ha)
    for ns in "${nss[@]}"; do
        echo "=== $ns"
        echo "--- links"
        ip -n "$ns" -br link show | sed 's/^/  /'
        echo "--- addresses"
        ip -n "$ns" -br addr show | sed 's/^/  /'
        echo "--- routes"
        ip -n "$ns" route show | sed 's/^/  /'
        echo "--- neighbours"
        ip -n "$ns" neigh show | sed 's/^/  /'
        if [[ $ns == "$LAB_SWITCH_NS" ]]; then
            echo "--- bridge ports"
            for br in "$LAB_OUT_BRIDGE" "$LAB_IN_BRIDGE"; do
                printf '  %s: %s\n' "$br" "$(ip -n "$ns" -o link show master "$br" 2>/dev/null |
                    awk -F': ' '{ sub(/@.*/, "", $2); printf "%s ", $2 }')"
            done
        fi
        echo "--- processes"
        pids=$(ip netns pids "$ns" 2>/dev/null | paste -sd, - || true)
        if [[ -n $pids ]]; then
            ps -o pid=,user=,args= -p "$pids" | sed 's/^/  /' || true
        else
            echo "  (none)"
        fi
    done
    echo "==="
    if [[ $n -ge 1 ]] && lab_complete "$n" "$ha"; then
        if [[ $ha == 1 ]]; then
            lab_log "status: up ($n client(s), the appliance pair: $LAB_APPLIANCE_B_NS, HA link $LAB_HA_IF)"
        else
            lab_log "status: up ($n client(s))"
        fi
        return 0
    fi
    lab_log "status: PARTIAL lab (run 'lab.sh down' then 'lab.sh up')"
    return 1
}

# --- selftest --------------------------------------------------------------------------

ST_PASS=0
ST_FAIL=0
ST_TMP=
ST_PIDS=()

st_check() {
    local desc=$1 out
    shift
    if out=$("$@" 2>&1); then
        ST_PASS=$((ST_PASS + 1))
        printf '  ok    %s\n' "$desc"
    else
        ST_FAIL=$((ST_FAIL + 1))
        printf '  FAIL  %s\n' "$desc"
        [[ -n $out ]] && printf '%s\n' "$out" | tail -n 5 | sed 's/^/        /'
    fi
    return 0
}

st_ping() { nsx "$1" ping -n -q -c 2 -i 0.2 -W 1 -w 3 "$2"; }
st_no_ping() { ! nsx "$1" ping -n -q -c 1 -W 1 -w 1 "$2"; }

# st_offloads NS IF : offloads off, IPv6 off, MTU 1500.
st_offloads() {
    local ns=$1 dev=$2 k feats
    feats=$(nsx "$ns" ethtool -k "$dev")
    for k in tx-checksumming rx-checksumming tcp-segmentation-offload \
        generic-segmentation-offload generic-receive-offload; do
        grep -q "^$k: off" <<<"$feats" || { echo "$ns/$dev: $k not off"; return 1; }
    done
    [[ $(nsx "$ns" sysctl -n "net.ipv6.conf.$dev.disable_ipv6") == 1 ]] ||
        { echo "$ns/$dev: IPv6 enabled"; return 1; }
    [[ $(ip -n "$ns" -o link show dev "$dev") == *" mtu $LAB_MTU "* ]] ||
        { echo "$ns/$dev: MTU not $LAB_MTU"; return 1; }
}

# st_neigh NS IP MAC : NS resolved IP to MAC.
st_neigh() {
    local got
    got=$(ip -n "$1" neigh show "$2")
    [[ $got == *"lladdr $3"* ]] || { echo "neighbour $2 in $1: '$got', want $3"; return 1; }
}

# st_wait_listen NS PORT : wait (<= 5 s) until something listens on PORT in NS.
st_wait_listen() {
    local i
    for ((i = 0; i < 50; i++)); do
        nsx "$1" ss -Hltn "sport = :$2" | grep -q . && return 0
        sleep 0.1
    done
    echo "nothing listens on :$2 in $1 after 5 s"
    return 1
}

# st_bg NS CMD... : start a bounded background command in NS, remember its pid.
st_bg() {
    local ns=$1
    shift
    # A plain command (not a function) so that $! is the process itself:
    # ip netns exec execs timeout, which relays TERM/INT to its child.
    ip netns exec "$ns" "$@" &
    ST_PIDS+=("$!")
}

st_curl() {
    local ns=$1 url=$2 out=$3 want=$4
    nsx "$ns" curl -sS --noproxy '*' --connect-timeout 3 --max-time 20 -o "$out" "$url" || return 1
    cmp -s "$out" "$want" || { echo "download of $url differs"; return 1; }
}

st_socat_get() {
    local ns=$1 ip=$2 port=$3 out=$4 want=$5
    nsx "$ns" timeout 20 socat -u "TCP:$ip:$port,connect-timeout=3" "CREATE:$out" || return 1
    cmp -s "$out" "$want" || { echo "socat download from $ip:$port differs"; return 1; }
}

st_socat_put() {
    local ns=$1 ip=$2 port=$3 src=$4
    nsx "$ns" timeout 20 socat -u "OPEN:$src,rdonly" "TCP:$ip:$port,connect-timeout=3"
}

# st_wait_pid PID SECONDS : wait for a background pid to exit.
st_wait_pid() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        kill -0 "$1" 2>/dev/null || { wait "$1" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    return 1
}

# st_appliance_bare : no Linux addresses on the appliance ports, no forwarding.
st_appliance_bare() {
    local a
    a=$(ip -n "$LAB_APPLIANCE_NS" addr show dev "$LAB_APPLIANCE_OUT_IF" | grep inet || true)
    a+=$(ip -n "$LAB_APPLIANCE_NS" addr show dev "$LAB_APPLIANCE_IN_IF" | grep inet || true)
    [[ -z $a ]] || { echo "addresses left: $a"; return 1; }
    [[ $(nsx "$LAB_APPLIANCE_NS" sysctl -n net.ipv4.ip_forward) == 0 ]] ||
        { echo "ip_forward is on in $LAB_APPLIANCE_NS"; return 1; }
}

# st_no_procs : no process left in any lab namespace.
st_no_procs() {
    local ns p rc=0
    while read -r ns; do
        p=$(ip netns pids "$ns" 2>/dev/null | paste -sd' ' - || true)
        [[ -z $p ]] || { echo "$ns: $p"; rc=1; }
    done < <(lab_namespaces)
    return $rc
}

# st_resolves NS IP MAC : after one ping, NS has IP -> MAC in its neighbour table.
st_resolves() {
    nsx "$1" ping -n -q -c 1 -W 1 -w 2 "$2" >/dev/null || true
    st_neigh "$@"
}

# st_veths_ok N HA : every veth end of a lab with N clients (HA 1: the pair) passes
# st_offloads.
st_veths_ok() {
    local v rc=0 vifs
    mapfile -t vifs < <(veth_ends "$1" "$2")
    for v in "${vifs[@]}"; do
        st_offloads "${v%%:*}" "${v#*:}" || rc=1
    done
    [[ $rc -eq 0 ]] && echo "${#vifs[@]} veth ends checked"
    return $rc
}

# st_put_spare SRC DST : client 1 sends SRC to the spare's socat, which writes DST.
st_put_spare() {
    local i
    st_socat_put "$LAB_CLIENT_NS" "$LAB_SPARE_IP" 9001 "$1" || return 1
    for ((i = 0; i < 50; i++)); do
        cmp -s "$2" "$1" && return 0
        sleep 0.1
    done
    echo "spare received different bytes"
    return 1
}

st_no_bad_checksums() {
    local pcap=$1 n total
    [[ -s $pcap ]] || { echo "no capture"; return 1; }
    local dump good
    dump=$(tcpdump -nn -vv -r "$pcap" 2>/dev/null)
    total=$(grep -c ' IP ' <<<"$dump" || true)
    good=$(grep -c 'cksum 0x[0-9a-f]* (correct)' <<<"$dump" || true)
    n=$(grep -c 'incorrect' <<<"$dump" || true)
    echo "$total TCP frames captured, checksum verified correct in $good, incorrect in $n"
    [[ $good -gt 0 && $n -eq 0 ]]
}

st_cleanup() {
    local p
    for p in "${ST_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${ST_PIDS[@]}"; do st_wait_pid "$p" 3 || kill -KILL "$p" 2>/dev/null || true; done
    ST_PIDS=()
    ip -n "$LAB_APPLIANCE_NS" addr flush dev "$LAB_APPLIANCE_OUT_IF" 2>/dev/null || true
    ip -n "$LAB_APPLIANCE_NS" addr flush dev "$LAB_APPLIANCE_IN_IF" 2>/dev/null || true
    ns_sysctl "$LAB_APPLIANCE_NS" net.ipv4.ip_forward=0 2>/dev/null || true
    local ns
    while read -r ns; do
        ip -n "$ns" neigh flush all 2>/dev/null || true
    done < <(lab_namespaces)
    [[ -n $ST_TMP && -d $ST_TMP ]] && rm -rf "$ST_TMP"
    ST_TMP=
}

cmd_selftest() {
    [[ $# -eq 0 ]] || { usage >&2; exit 2; }
    require_tools selftest
    local t
    for t in ping curl socat python3 ss tcpdump timeout cmp; do
        command -v "$t" >/dev/null 2>&1 || lab_die "'$t' not found: run appliance/install-deps.sh"
    done
    local n i r ns ip ha
    n=$(lab_client_count)
    ha=$(lab_ha)
    if [[ $n -lt 1 ]] || ! lab_complete "$n" "$ha"; then
        lab_die "selftest: the lab is not up: run 'lab.sh up' first"
    fi
    if [[ -n $(ip -n "$LAB_APPLIANCE_NS" -4 addr show dev "$LAB_APPLIANCE_OUT_IF") ||
        -n $(ip netns pids "$LAB_APPLIANCE_NS") ]]; then
        lab_die "selftest: $LAB_APPLIANCE_NS is in use (addresses or processes): stop the appliance first"
    fi

    trap 'st_cleanup' EXIT
    trap 'st_cleanup; exit 130' INT TERM
    ST_TMP=$(mktemp -d /tmp/tandem-selftest.XXXXXX)
    chmod 755 "$ST_TMP"

    echo "selftest: lab plumbing ($n client(s))"
    st_check "$LAB_APPLIANCE_NS: no Linux addresses on $LAB_APPLIANCE_OUT_IF/$LAB_APPLIANCE_IN_IF, ip_forward off" \
        st_appliance_bare
    st_check "every veth end: tx/rx checksum, sg, tso, gso, gro offload off; IPv6 off; MTU $LAB_MTU" \
        st_veths_ok "$n" "$ha"
    st_check "isolation: client cannot reach $LAB_PRIMARY_IP with no appliance" \
        st_no_ping "$LAB_CLIENT_NS" "$LAB_PRIMARY_IP"

    echo "selftest: Linux router in $LAB_APPLIANCE_NS ($LAB_OUT_IP on $LAB_APPLIANCE_OUT_IF, $LAB_IN_IP on $LAB_APPLIANCE_IN_IF, VIP $LAB_VIP)"
    ip -n "$LAB_APPLIANCE_NS" addr add "$LAB_OUT_IP/$LAB_PREFIXLEN" dev "$LAB_APPLIANCE_OUT_IF"
    ip -n "$LAB_APPLIANCE_NS" addr add "$LAB_VIP/32" dev "$LAB_APPLIANCE_OUT_IF"
    ip -n "$LAB_APPLIANCE_NS" addr add "$LAB_IN_IP/$LAB_PREFIXLEN" dev "$LAB_APPLIANCE_IN_IF"
    ns_sysctl "$LAB_APPLIANCE_NS" net.ipv4.ip_forward=1

    for ((i = 1; i <= n; i++)); do
        ns=$(lab_client_ns "$i")
        st_check "ping $ns -> $LAB_VIP (VIP on the outside /24)" st_ping "$ns" "$LAB_VIP"
        st_check "$ns resolves $LAB_OUT_IP to $LAB_APPLIANCE_OUT_IF's MAC $LAB_OUT_MAC" \
            st_resolves "$ns" "$LAB_OUT_IP" "$LAB_OUT_MAC"
        for r in "${LAB_REPLICAS[@]}"; do
            st_check "ping $ns -> $r $(lab_replica_ip "$r")" st_ping "$ns" "$(lab_replica_ip "$r")"
        done
    done
    for r in "${LAB_REPLICAS[@]}"; do
        ns=$(lab_replica_ns "$r")
        for ((i = 1; i <= n; i++)); do
            st_check "ping $r -> $(lab_client_ns "$i") $(lab_client_ip "$i")" st_ping "$ns" "$(lab_client_ip "$i")"
        done
        st_check "$ns resolves $LAB_IN_IP to $LAB_APPLIANCE_IN_IF's MAC $LAB_IN_MAC" \
            st_resolves "$ns" "$LAB_IN_IP" "$LAB_IN_MAC"
    done

    # TCP: 8 MiB over HTTP from the primary, socat both ways with backup and spare.
    local blob=$ST_TMP/blob
    mkdir -p "$ST_TMP/www"
    head -c $((8 * 1024 * 1024)) /dev/urandom >"$ST_TMP/www/blob"
    cp "$ST_TMP/www/blob" "$blob"
    st_bg "$LAB_APPLIANCE_NS" timeout 30 tcpdump -i "$LAB_APPLIANCE_OUT_IF" -nn -U -c 2000 \
        -w "$ST_TMP/out0.pcap" tcp 2>"$ST_TMP/tcpdump.log"
    st_bg "$LAB_PRIMARY_NS" timeout 30 python3 -m http.server 8080 --bind "$LAB_PRIMARY_IP" \
        --directory "$ST_TMP/www" >/dev/null 2>&1
    # Listener first, so that each forked child opens the file afresh (-U: right to left).
    st_bg "$LAB_BACKUP_NS" timeout 30 socat -U \
        "TCP-LISTEN:9000,bind=$LAB_BACKUP_IP,reuseaddr,fork" "OPEN:$blob,rdonly"
    st_bg "$LAB_SPARE_NS" timeout 30 socat -u \
        "TCP-LISTEN:9001,bind=$LAB_SPARE_IP,reuseaddr" "CREATE:$ST_TMP/spare.in"
    local i2
    for ((i2 = 0; i2 < 50; i2++)); do
        grep -q 'listening on' "$ST_TMP/tcpdump.log" 2>/dev/null && break
        sleep 0.1
    done
    st_check "http server listening in $LAB_PRIMARY_NS on :8080" st_wait_listen "$LAB_PRIMARY_NS" 8080
    st_check "socat listening in $LAB_BACKUP_NS on :9000" st_wait_listen "$LAB_BACKUP_NS" 9000
    st_check "socat listening in $LAB_SPARE_NS on :9001" st_wait_listen "$LAB_SPARE_NS" 9001
    for ((i = 1; i <= n; i++)); do
        ns=$(lab_client_ns "$i")
        st_check "TCP: $ns GET 8 MiB from primary (curl <- python3 http.server), byte-exact" \
            st_curl "$ns" "http://$LAB_PRIMARY_IP:8080/blob" "$ST_TMP/got.$i" "$blob"
        st_check "TCP: $ns gets 8 MiB from backup (socat), byte-exact" \
            st_socat_get "$ns" "$LAB_BACKUP_IP" 9000 "$ST_TMP/got2.$i" "$blob"
    done
    st_check "TCP: $LAB_CLIENT_NS puts 8 MiB to spare (socat), byte-exact" \
        st_put_spare "$blob" "$ST_TMP/spare.in"
    # The capture on out0 sees what DPDK's net_af_packet will read there.
    sleep 0.3
    kill -INT "${ST_PIDS[0]}" 2>/dev/null || true
    st_wait_pid "${ST_PIDS[0]}" 3 || true
    local ck
    ck=$(st_no_bad_checksums "$ST_TMP/out0.pcap" 2>&1 || true)
    st_check "TCP checksums complete on $LAB_APPLIANCE_OUT_IF, as DPDK will read them ($ck)" \
        st_no_bad_checksums "$ST_TMP/out0.pcap"

    echo "selftest: restoring the lab"
    st_cleanup
    trap - EXIT INT TERM
    st_check "restored: $LAB_APPLIANCE_NS has no addresses, ip_forward off" st_appliance_bare
    st_check "restored: no processes left in lab namespaces" st_no_procs
    st_check "restored: client cannot reach $LAB_PRIMARY_IP again" \
        st_no_ping "$LAB_CLIENT_NS" "$LAB_PRIMARY_IP"
    ip -n "$LAB_CLIENT_NS" neigh flush all 2>/dev/null || true
    st_check "lab complete as 'up' left it ($n client(s))" lab_complete "$n" "$ha"

    echo "selftest: $ST_PASS passed, $ST_FAIL failed"
    [[ $ST_FAIL -eq 0 ]]
}

# --- main ----------------------------------------------------------------------------

main() {
    [[ $# -ge 1 ]] || { usage >&2; exit 2; }
    local cmd=$1
    shift
    case $cmd in
        up) cmd_up "$@" ;;
        down) cmd_down "$@" ;;
        status) cmd_status "$@" ;;
        selftest) cmd_selftest "$@" ;;
        -h | --help | help) usage ;;
        *) usage >&2; exit 2 ;;
    esac
}

main "$@"
