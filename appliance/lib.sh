# shellcheck shell=bash disable=SC2034  # variables are for the scripts that source this
# Tandem lab: names, addresses and helpers shared by lab.sh, the demo and the
# end-to-end tests. Source it:   . "$(dirname "$0")/lib.sh"
#
# Everything here is fixed on purpose, so that a test, a profile in configs/ and
# a person at a shell all agree. Addresses come only from 198.18.0.0/15 (RFC 2544
# benchmarking range). Sourcing this file defines variables and functions only;
# it runs nothing and does not change shell options.

# --- namespaces --------------------------------------------------------------
LAB_SWITCH_NS=tandem-switch        # holds the two bridges, nothing else
LAB_APPLIANCE_NS=tandem-appliance  # holds out0 / in0, opened by DPDK (net_af_packet)
LAB_CLIENT_NS=tandem-client        # client 1; client i>1 is tandem-client<i>
LAB_PRIMARY_NS=tandem-primary
LAB_BACKUP_NS=tandem-backup
LAB_SPARE_NS=tandem-spare
LAB_REPLICAS=(primary backup spare)          # replica short names, in order
LAB_APPLIANCE_B_NS=tandem-appliance-b # `lab.sh up --ha` only: the pair's second appliance

# --- interfaces --------------------------------------------------------------
LAB_OUT_BRIDGE=tandem-out-br       # in tandem-switch: clients + appliance outside
LAB_IN_BRIDGE=tandem-in-br         # in tandem-switch: replicas + appliance inside
LAB_APPLIANCE_OUT_IF=out0          # in tandem-appliance, no Linux address
LAB_APPLIANCE_IN_IF=in0            # in tandem-appliance, no Linux address
LAB_HOST_IF=eth0                   # the one interface of every client/replica
LAB_MTU=1500
LAB_HA_IF=ha0                      # `--ha`: the HA link, a veth pair between the two
                                   # appliance namespaces (kernel interfaces, not DPDK)

# --- addresses ---------------------------------------------------------------
LAB_PREFIXLEN=24
LAB_OUT_NET=198.18.0.0/24
LAB_IN_NET=198.19.0.0/24
LAB_OUT_IP=198.18.0.1              # appliance outside address (lives in DPDK)
LAB_IN_IP=198.19.0.1               # appliance inside address (lives in DPDK)
LAB_VIP=198.18.0.100               # the service address; ARP answered by the appliance
LAB_CLIENT_IP=198.18.0.2           # client i is 198.18.0.(i+1)
LAB_PRIMARY_IP=198.19.0.11
LAB_BACKUP_IP=198.19.0.12
LAB_SPARE_IP=198.19.0.13
LAB_MAX_CLIENTS=90                 # .2 … .91; .100 is the VIP

# The pair (`lab.sh up --ha`, configs/lab-ha-a.yaml and lab-ha-b.yaml). The clients' next
# hop ($LAB_OUT_IP) and the replicas' gateway ($LAB_IN_IP) float with the active role;
# each appliance's ports have an address of their own, and B's veths their own MACs.
LAB_HA_A_OUT_IP=198.18.0.251
LAB_HA_A_IN_IP=198.19.0.251
LAB_HA_B_OUT_IP=198.18.0.252
LAB_HA_B_IN_IP=198.19.0.252
LAB_HA_A_IP=198.18.255.1           # on $LAB_HA_IF in $LAB_APPLIANCE_NS
LAB_HA_B_IP=198.18.255.2           # on $LAB_HA_IF in $LAB_APPLIANCE_B_NS
LAB_HA_PREFIXLEN=30

# Fixed, locally administered MACs: 02:74:64 ("td"), then 12/13 for the
# 198.18/198.19 side, then the last address octet. DPDK's net_af_packet uses the
# interface's MAC, so the appliance's port MACs (and the VIP's) are these too.
LAB_OUT_MAC=02:74:64:12:00:01
LAB_IN_MAC=02:74:64:13:00:01
LAB_CLIENT_MAC=02:74:64:12:00:02
LAB_PRIMARY_MAC=02:74:64:13:00:0b
LAB_BACKUP_MAC=02:74:64:13:00:0c
LAB_SPARE_MAC=02:74:64:13:00:0d
LAB_B_OUT_MAC=02:74:64:12:00:fc    # B's out0 and in0 (its own addresses end in .252)
LAB_B_IN_MAC=02:74:64:13:00:fc

# DPDK devices for the appliance, for EAL's --vdev (run inside tandem-appliance).
LAB_DPDK_VDEV_OUT="net_af_packet0,iface=out0,framecnt=4096"
LAB_DPDK_VDEV_IN="net_af_packet1,iface=in0,framecnt=4096"

# --- helpers -----------------------------------------------------------------

lab_log() { printf 'tandem-lab: %s\n' "$*"; }
lab_warn() { printf 'tandem-lab: warning: %s\n' "$*" >&2; }
lab_die() {
    printf 'tandem-lab: error: %s\n' "$*" >&2
    exit 1
}

# lab_exec NS CMD... : run CMD inside namespace NS (ip netns exec).
lab_exec() {
    if [[ $# -lt 2 ]]; then
        echo "usage: lab_exec NAMESPACE COMMAND [ARG...]" >&2
        return 2
    fi
    local ns=$1
    shift
    ip netns exec "$ns" "$@"
}

# lab_client_ns I / lab_client_ip I / lab_client_mac I : client I (1-based).
lab_client_ns() {
    if [[ $1 -eq 1 ]]; then echo "$LAB_CLIENT_NS"; else echo "${LAB_CLIENT_NS}$1"; fi
}
lab_client_ip() { echo "198.18.0.$(($1 + 1))"; }
lab_client_mac() { printf '02:74:64:12:00:%02x\n' "$(($1 + 1))"; }

# lab_replica_ns NAME / lab_replica_ip NAME / lab_replica_mac NAME
#   NAME is primary, backup or spare.
lab_replica_ns() { echo "tandem-$1"; }
lab_replica_ip() {
    case $1 in
        primary) echo "$LAB_PRIMARY_IP" ;;
        backup) echo "$LAB_BACKUP_IP" ;;
        spare) echo "$LAB_SPARE_IP" ;;
        *) echo "lab_replica_ip: unknown replica '$1'" >&2; return 2 ;;
    esac
}
lab_replica_mac() {
    case $1 in
        primary) echo "$LAB_PRIMARY_MAC" ;;
        backup) echo "$LAB_BACKUP_MAC" ;;
        spare) echo "$LAB_SPARE_MAC" ;;
        *) echo "lab_replica_mac: unknown replica '$1'" >&2; return 2 ;;
    esac
}

# lab_ns_exists NS : true if the named namespace exists.
lab_ns_exists() {
    local n
    while read -r n _; do
        [[ $n == "$1" ]] && return 0
    done < <(ip netns list 2>/dev/null)
    return 1
}

# lab_namespaces : existing lab namespaces, one per line, in a fixed order:
# switch, appliance, appliance-b (with --ha), clients (by number), primary, backup, spare.
lab_namespaces() {
    local n have=() clients=()
    while read -r n _; do have+=("$n"); done < <(ip netns list 2>/dev/null)
    for n in "${have[@]}"; do
        if [[ $n == "$LAB_CLIENT_NS" ]]; then
            clients+=(1)
        elif [[ $n == "$LAB_CLIENT_NS"* && ${n#"$LAB_CLIENT_NS"} =~ ^[0-9]+$ ]]; then
            clients+=("${n#"$LAB_CLIENT_NS"}")
        fi
    done
    for n in "$LAB_SWITCH_NS" "$LAB_APPLIANCE_NS" "$LAB_APPLIANCE_B_NS"; do
        [[ " ${have[*]} " == *" $n "* ]] && echo "$n"
    done
    if [[ ${#clients[@]} -gt 0 ]]; then
        while read -r n; do
            if [[ $n == 1 ]]; then echo "$LAB_CLIENT_NS"; else echo "$LAB_CLIENT_NS$n"; fi
        done < <(printf '%s\n' "${clients[@]}" | sort -n)
    fi
    for n in "$LAB_PRIMARY_NS" "$LAB_BACKUP_NS" "$LAB_SPARE_NS"; do
        [[ " ${have[*]} " == *" $n "* ]] && echo "$n"
    done
    return 0
}

# lab_client_count : number of client namespaces present (consecutive from 1).
lab_client_count() {
    local i=0
    while lab_ns_exists "$(lab_client_ns $((i + 1)))"; do
        i=$((i + 1))
    done
    echo "$i"
}

# lab_require_root : exit unless running as root.
lab_require_root() {
    [[ $(id -u) -eq 0 ]] || lab_die "must run as root (network namespaces); try: sudo $0 $*"
}

# lab_require_netns : exit unless iproute2 with 'ip netns' is usable.
lab_require_netns() {
    command -v ip >/dev/null 2>&1 ||
        lab_die "'ip' not found: install iproute2 (appliance/install-deps.sh)"
    ip netns list >/dev/null 2>&1 ||
        lab_die "'ip netns' is unavailable here (kernel without network namespaces, or no permission)"
}
