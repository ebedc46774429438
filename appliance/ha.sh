#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# The appliance pair in the namespace lab (issue #17; README "The appliance pair"):
#
#   appliance/ha.sh start    the lab with the pair (`lab.sh up --ha`, if it is not up so),
#                            A (configs/lab-ha-a.yaml) in tandem-appliance, then once it
#                            is active B (configs/lab-ha-b.yaml) in tandem-appliance-b;
#                            returns once B is a ready standby (60 s at most), or fails
#                            with their logs. (Started together, the one whose EAL is up
#                            first may win before it hears the other.)
#   appliance/ha.sh stop     stops both (SIGTERM, then SIGKILL after 10 s); the lab stays
#   appliance/ha.sh status   both roles (`tandem ha status` of each)
#
# The election is the appliances' own (the heartbeat on the HA link, `ha:` in the
# profiles): nothing else runs. Switch roles with `tandem ha active|standby --profile
# configs/lab-ha-a.yaml` (or -b). The replicas run no server here: start what you need in
# them (`ip netns exec tandem-primary ...`); appliance/e2e/ha.sh runs the stream server and
# nginx and tests failures of the pair. Logs and pid files: $TANDEM_HA_DIR (default
# /run/tandem/ha-lab). The binary: $TANDEM_BIN, default the release build
# (${CARGO_TARGET_DIR:-target}/release/tandem). Run as root.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
cd "$HERE/.."
repo=$(pwd)

dir=${TANDEM_HA_DIR:-/run/tandem/ha-lab}
target=${CARGO_TARGET_DIR:-$repo/target}
tandem=${TANDEM_BIN:-$target/release/tandem}
profile_a=$repo/configs/lab-ha-a.yaml
profile_b=$repo/configs/lab-ha-b.yaml

usage() {
    echo "usage: $0 start | stop | status" >&2
    exit 2
}

ha_line() { "$tandem" ha status --profile "$1" 2>/dev/null | grep -m1 '^ha: ' || true; }

# pid_of a|b : the pid in its file when that process still runs.
pid_of() {
    local p
    p=$(cat "$dir/$1.pid" 2>/dev/null || true)
    if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then echo "$p"; fi
}

cmd_start() {
    [ -x "$tandem" ] || lab_die "no tandem binary at $tandem: build it (cargo build --release --locked -p tandem) or set TANDEM_BIN"
    if [ -n "$(pid_of a)$(pid_of b)" ]; then
        lab_die "the pair already runs (pids $(pid_of a) $(pid_of b)): appliance/ha.sh stop first"
    fi
    "$tandem" check --profile "$profile_a" >/dev/null
    "$tandem" check --profile "$profile_b" >/dev/null
    "$HERE/lab.sh" up --ha
    mkdir -p "$dir"
    local la="" lb="" until=$((SECONDS + 60))
    start_one a "$LAB_APPLIANCE_NS" "$profile_a"
    while [ "$SECONDS" -le "$until" ] && [ -n "$(pid_of a)" ]; do
        la=$(ha_line "$profile_a")
        [[ $la == "ha: active "* ]] && break
        sleep 0.1
    done
    if [[ $la == "ha: active "* ]]; then
        start_one b "$LAB_APPLIANCE_B_NS" "$profile_b"
        while [ "$SECONDS" -le "$until" ] && [ -n "$(pid_of b)" ]; do
            lb=$(ha_line "$profile_b")
            if [[ $lb == "ha: standby "*", ready"* ]]; then
                lab_log "ha: A: $(ha_line "$profile_a" | sed 's/^ha: //')"
                lab_log "ha: B: ${lb#ha: }"
                return 0
            fi
            sleep 0.1
        done
    fi
    lab_warn "ha: the pair did not settle: A '${la:-no answer}', B '${lb:-no answer}'"
    tail -n 15 "$dir/a.log" "$dir/b.log" >&2 || true
    cmd_stop
    exit 1
}

# start_one a|b NS PROFILE : runs it in NS, in its own session (a Ctrl-C at this shell
# later does not reach it), its pid in its file.
start_one() {
    setsid ip netns exec "$2" "$tandem" run --profile "$3" \
        >"$dir/$1.out" 2>"$dir/$1.log" </dev/null &
    echo $! >"$dir/$1.pid"
    lab_log "ha: started $1 in $2 (pid $!, log $dir/$1.log)"
}

cmd_stop() {
    local n p stopped=0
    for n in a b; do
        p=$(pid_of "$n")
        [ -n "$p" ] || { rm -f "$dir/$n.pid"; continue; }
        kill -CONT "$p" 2>/dev/null || true # a stopped process does not act on TERM
        kill -TERM "$p" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$p" 2>/dev/null; then
            lab_warn "ha: $n (pid $p) still runs 10 s after SIGTERM: SIGKILL"
            kill -KILL "$p" 2>/dev/null || true
        fi
        rm -f "$dir/$n.pid"
        stopped=$((stopped + 1))
        lab_log "ha: stopped $n (pid $p)"
    done
    [ "$stopped" -gt 0 ] || lab_log "ha: nothing runs"
}

cmd_status() {
    local n profile rc=0
    for n in a b; do
        if [ "$n" = a ]; then profile=$profile_a; else profile=$profile_b; fi
        echo "== ${n^^} ($profile, pid $(pid_of "$n"))"
        "$tandem" ha status --profile "$profile" || rc=1
    done
    return $rc
}

lab_require_root "$@"
[ $# -eq 1 ] || usage
case $1 in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
*) usage ;;
esac
