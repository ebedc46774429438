# shellcheck shell=bash disable=SC2034,SC2154  # variables for and from the scripts that source this
# Shared by the perf/ scripts that run DPDK processes on memif links (perf/run.sh,
# perf/mirror.sh, perf/steadiness.sh, perf/pktgen/run.sh); sourced, not run. Sourcing
# defines variables and functions only; it runs nothing and does not change shell options.
#
#   me=perf/run.sh          # messages start with it
#   . perf/lib.sh
#   perf_run_dir bench      # $run, $prefix, and the cleanup on exit
#
# Tandem's profiles come from `tandem-bench profile` (perf/bench/src/profile.rs).

# Fixed MACs of the DUT's and the generator's memif ports: the generator addresses the
# DUT's outside port by its MAC.
dut_mac0=02:54:00:00:00:01
dut_mac1=02:54:00:00:00:02
gen_mac0=02:47:00:00:00:01
gen_mac1=02:47:00:00:00:02

# perf_require_root : exit unless root (DPDK, memif sockets).
perf_require_root() {
    [ "$(id -u)" = 0 ] || { echo "$me: run as root (DPDK, memif sockets)" >&2; exit 1; }
}

# perf_need_testpmd : install dpdk-dev when dpdk-testpmd is missing.
perf_need_testpmd() {
    if ! command -v dpdk-testpmd >/dev/null; then
        echo "installing dpdk-dev (dpdk-testpmd)" >&2
        apt-get install -y --no-install-recommends dpdk-dev >&2
    fi
}

# perf_build PACKAGE... : builds the packages (release) unless $build is 0, and exits
# unless their binaries are there. Sets tandem and bench to the two binaries' paths.
perf_build() {
    local p packages=()
    for p in "$@"; do packages+=(-p "$p"); done
    if [ "$build" = 1 ]; then
        cargo build --release --locked "${packages[@]}"
    fi
    tandem=${CARGO_TARGET_DIR:-target}/release/tandem
    bench=${CARGO_TARGET_DIR:-target}/release/tandem-bench
    for p in "$@"; do
        [ -x "${CARGO_TARGET_DIR:-target}/release/$p" ] || { echo "$me: build first" >&2; exit 1; }
    done
}

# perf_run_dir NAME : $run, a directory for this run's memif sockets and files
# (/tmp/tandem-NAME.XXXXXX), and $prefix, the EAL file prefix of its DPDK processes
# (tNAME<pid>-...). On exit both go, after $gen_pid and $dut_pid are stopped.
perf_run_dir() {
    run=$(mktemp -d "/tmp/tandem-$1.XXXXXX")
    prefix=t$1$$
    dut_pid=""
    gen_pid=""
    trap perf_cleanup EXIT
    trap 'exit 130' INT TERM
}

# shellcheck disable=SC2317  # called by the trap
perf_cleanup() {
    stop_pid "$gen_pid"
    stop_pid "$dut_pid"
    rm -rf "$run" /var/run/dpdk/"$prefix"-*
}

# stop_pid PID [SIGNAL] : SIGNAL (TERM), up to 10 s, then SIGKILL; reaps it. An empty PID
# or a process already gone is nothing to do.
stop_pid() {
    local pid=$1 sig=${2:-TERM} _
    [ -n "$pid" ] || return 0
    kill -"$sig" "$pid" 2>/dev/null || return 0
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# memif INDEX ROLE MAC : the --vdev argument of memif port INDEX (socket in $run).
memif() {
    echo "net_memif$1,role=$2,socket=$run/memif$1.sock,socket-abstract=no,mac=$3"
}

# perf_eal : the EAL arguments of the DUT (array dut_eal: main lcore $gen_cpu, forwarding
# lcore $fwd_cpu, the memif servers) and of the generator (array gen_eal: lcore $gen_cpu,
# the memif clients). dpdk-testpmd and Tandem's profile get the same ones.
perf_eal() {
    dut_eal=(-l "$gen_cpu,$fwd_cpu" --main-lcore "$gen_cpu" --no-huge -m 1024 --no-pci
        --file-prefix "$prefix-dut"
        --vdev "$(memif 0 server $dut_mac0)" --vdev "$(memif 1 server $dut_mac1)")
    gen_eal=(-l "$gen_cpu" --no-huge -m 512 --no-pci --file-prefix "$prefix-gen"
        --vdev "$(memif 0 client $gen_mac0)" --vdev "$(memif 1 client $gen_mac1)")
}

# wait_for SECONDS FILE PATTERN PID : until PATTERN shows in FILE; fails when PID exits or
# the time is up.
wait_for() {
    local t=$1 file=$2 pat=$3 pid=$4 _
    for _ in $(seq $((t * 10))); do
        grep -q -- "$pat" "$file" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || { echo "$me: the DUT exited; see $file" >&2; return 1; }
        sleep 0.1
    done
    echo "$me: no \"$pat\" in $file after ${t}s" >&2
    return 1
}

# free_port : a free TCP port on 127.0.0.1 (for Tandem's metrics listener).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# perf_host_info : the first lines of a run.txt: date, commit, kernel, CPUs.
perf_host_info() {
    echo "date=$(date -u +%FT%TZ)"
    echo "commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo -dirty)"
    echo "kernel=$(uname -r)"
    echo "cpus=$(nproc)"
    echo "cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
}
