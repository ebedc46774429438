# shellcheck shell=bash
# Shared by the end-to-end tests (sourced, not run): the checks' bookkeeping, cleanup on
# any exit, the build, the lab, and `tandem run` with the VIP answering.
#
#   E2E_NAME=basic; . appliance/e2e/common.sh
#   e2e_start TOOL...    # e2e_setup TOOL... then e2e_run_tandem configs/lab.yaml
#   e2e_setup TOOL...    # root check, tools, "$tmp", cleanup trap, build; sets tandem, bench
#   e2e_run_tandem PROFILE   # lab up, tandem run PROFILE, wait for the VIP
#   ... checks with ok / bad; extra processes' pid files go in "$tmp"/*.pid ...
#   e2e_stop_tandem      # SIGTERM, then checks it stopped cleanly
#   e2e_finish           # "N passed, M failed" and the exit status
#
# The appliance pair (appliance/e2e/ha.sh): `e2e_run_pair PROFILE_A PROFILE_B` brings the
# lab up with `--ha` and runs A in tandem-appliance, B in tandem-appliance-b; `ctl_b`,
# `role_of a|b`, `wait_role a|b ROLE [ready] [SECONDS]`, `scrape_b`, `metric_sum KEY TEXT`
# are their checks; the cleanup stops B too.
#
# And for the checks: `ctl CMD...` (the management commands against the profile that
# runs), `health_of NAME` / `wait_health NAME STATE` (from `tandem status --json`),
# `start_server NAME [SECONDS]` / `kill_server NAME` (the stream server on a replica),
# `start_nginx NAME ROOT SECONDS CONNS [PORT...]` (nginx on a replica), `random_file PATH
# MIB SEED`, `scrape` and `metric KEY TEXT` (the metrics listener), `counter KEY` (the
# exit summary).
#
# The caller is at the repository root with `set -euo pipefail`, and has sourced
# appliance/lib.sh. TANDEM_E2E_NO_BUILD=1 skips the cargo build. A test that runs a
# variant of the lab profile makes it with `"$bench" profile from configs/lab.yaml ...`
# (tandem-bench, perf/bench/src/profile.rs).

repo=$(pwd)
tmp=""
tandem_pid=""
tandem_b_pid=""
e2e_profile=""
e2e_profile_b=""
pass=0
fail=0
ok() { pass=$((pass + 1)); printf 'e2e %s: ok: %s\n' "$E2E_NAME" "$*"; }
bad() { fail=$((fail + 1)); printf 'e2e %s: FAILED: %s\n' "$E2E_NAME" "$*"; }

e2e_cleanup() {
    local rc=$?
    set +e
    local p
    for p in $tandem_pid $tandem_b_pid; do
        kill -0 "$p" 2>/dev/null || continue
        # CONT first: a stopped appliance (appliance/e2e/ha.sh stop) does not act on TERM.
        kill -CONT "$p" 2>/dev/null
        kill -TERM "$p" 2>/dev/null
        for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
    done
    if [ -n "$tmp" ]; then
        for f in "$tmp"/*.pid; do
            # CONT first: a stopped process does not act on TERM.
            [ -f "$f" ] && kill -CONT "$(cat "$f")" 2>/dev/null && kill -TERM "$(cat "$f")" 2>/dev/null
        done
    fi
    appliance/lab.sh down >/dev/null 2>&1
    if [ -n "$tmp" ] && [ -n "${TANDEM_E2E_KEEP:-}" ]; then cp -r "$tmp" "$TANDEM_E2E_KEEP"; fi
    [ -n "$tmp" ] && rm -rf "$tmp"
    exit "$rc"
}

# Usage: e2e_start TOOL...   (the tools the test needs besides ip)
e2e_start() {
    e2e_setup "$@"
    e2e_run_tandem configs/lab.yaml
}

# Usage: e2e_setup TOOL...
e2e_setup() {
    if [ "$(id -u)" != 0 ]; then
        echo "e2e $E2E_NAME: skipped: needs root"
        exit 0
    fi
    local tool
    for tool in ip "$@"; do
        command -v "$tool" >/dev/null || {
            echo "e2e $E2E_NAME: $tool is missing (appliance/install-deps.sh)" >&2
            exit 1
        }
    done
    # Root's toolchain, or under sudo the user's, run as the user (appliance/cargo.sh).
    # shellcheck source=../cargo.sh
    . appliance/cargo.sh
    tandem_find_cargo || true
    tmp=$(mktemp -d /tmp/tandem-e2e.XXXXXX)
    trap e2e_cleanup EXIT
    if [ "${TANDEM_E2E_NO_BUILD:-0}" != 1 ]; then
        cargo build --release --locked -p tandem -p tandem-bench
    fi
    tandem="$repo/target/release/tandem"
    # shellcheck disable=SC2034  # for the tests that make a variant of the lab profile
    bench="$repo/target/release/tandem-bench"
}

# Usage: e2e_run_tandem PROFILE
e2e_run_tandem() {
    e2e_profile=$1
    appliance/lab.sh up >/dev/null
    ip netns exec "$LAB_APPLIANCE_NS" "$tandem" run --profile "$1" \
        >"$tmp/tandem.out" 2>"$tmp/tandem.log" &
    tandem_pid=$!
    # Ping the VIP: ARP and the echo reply both come from Tandem's control core. Bounded.
    local up=0
    for _ in $(seq 1 30); do
        kill -0 "$tandem_pid" 2>/dev/null || break
        if lab_exec "$LAB_CLIENT_NS" ping -c1 -W1 "$LAB_VIP" >/dev/null 2>&1; then up=1; break; fi
        sleep 0.5
    done
    if [ "$up" != 1 ]; then
        bad "the VIP $LAB_VIP does not answer ping (tandem log follows)"
        cat "$tmp/tandem.log"
        exit 1
    fi
    ok "ping $LAB_VIP answered by the appliance"
}

# Usage: e2e_run_pair PROFILE_A PROFILE_B   the lab with the pair (`lab.sh up --ha`), A
# (tandem-appliance) started, then once it is active B (tandem-appliance-b); returns once
# B is a ready standby (its bulk sync done) and the VIP answers ping. (Started together,
# the one whose EAL is up first may win before it hears the other: A, preferred, wins
# only a tie.)
e2e_run_pair() {
    e2e_profile=$1
    e2e_profile_b=$2
    appliance/lab.sh up --ha >/dev/null
    ip netns exec "$LAB_APPLIANCE_NS" "$tandem" run --profile "$1" \
        >"$tmp/tandem.out" 2>"$tmp/tandem.log" &
    tandem_pid=$!
    local settled=0
    if wait_role a active "" 30; then
        ip netns exec "$LAB_APPLIANCE_B_NS" "$tandem" run --profile "$2" \
            >"$tmp/tandem-b.out" 2>"$tmp/tandem-b.log" &
        tandem_b_pid=$!
        wait_role b standby ready 30 && settled=1
    fi
    if [ "$settled" != 1 ]; then
        bad "the pair did not settle: A '$(role_line a)', B '$(role_line b)' (logs follow)"
        tail -n 20 "$tmp/tandem.log" "$tmp/tandem-b.log"
        exit 1
    fi
    ok "the pair settled: A $(role_line a | sed 's/^ha: //'); B $(role_line b | sed 's/^ha: //')"
    local up=0
    for _ in $(seq 1 30); do
        if lab_exec "$LAB_CLIENT_NS" ping -c1 -W1 "$LAB_VIP" >/dev/null 2>&1; then up=1; break; fi
        sleep 0.5
    done
    if [ "$up" != 1 ]; then
        bad "the VIP $LAB_VIP does not answer ping (A's log follows)"
        tail -n 20 "$tmp/tandem.log"
        exit 1
    fi
    ok "ping $LAB_VIP answered by the active appliance"
}

# The management commands against B; the first line of `tandem ha status` of A or B.
ctl_b() { "$tandem" "$@" --profile "$e2e_profile_b"; }
role_line() {
    if [ "$1" = a ]; then ctl ha status 2>/dev/null | grep -m1 '^ha: ' || true
    else ctl_b ha status 2>/dev/null | grep -m1 '^ha: ' || true; fi
}
# role_of a|b: active, standby, ... (empty when it does not answer).
role_of() { role_line "$1" | awk '{ print $2 }'; }
# Usage: wait_role a|b ROLE [ready] [SECONDS]   (10 s by default; polled every 50 ms)
wait_role() {
    local until=$((SECONDS + ${4:-10})) line
    while [ "$SECONDS" -le "$until" ]; do
        line=$(role_line "$1")
        if [ "$(awk '{ print $2 }' <<<"$line")" = "$2" ] &&
            { [ -z "${3:-}" ] || grep -q ', ready' <<<"$line"; }; then
            return 0
        fi
        sleep 0.05
    done
    return 1
}
# B's metrics (its listener in its own namespace, configs/lab-ha-b.yaml).
scrape_b() { lab_exec "$LAB_APPLIANCE_B_NS" curl -sS --max-time 5 http://127.0.0.1:9451/metrics || true; }
# Usage: metric_sum KEY TEXT   the sum of KEY's samples over all their labels (per worker).
metric_sum() { awk -v k="$1" '{ n = $1; sub(/\{.*/, "", n) } n == k { s += $2; f = 1 } END { if (f) print s + 0 }' <<<"$2"; }

# Stops tandem with SIGTERM (10 s at most) and checks that it exited cleanly.
e2e_stop_tandem() {
    kill -TERM "$tandem_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$tandem_pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$tandem_pid" 2>/dev/null; then
        bad "tandem did not stop within 10 s of SIGTERM"
    else
        local rc=0
        wait "$tandem_pid" || rc=$?
        tandem_pid=""
        if [ "$rc" = 0 ]; then ok "tandem stopped cleanly on SIGTERM"; else bad "tandem exited with $rc"; fi
    fi
}

e2e_finish() {
    echo "e2e $E2E_NAME: $pass passed, $fail failed"
    if [ "$fail" != 0 ] && [ -s "$tmp/tandem.out" ]; then
        # What the data path counted, for a failure seen only in CI's log.
        echo "e2e $E2E_NAME: tandem's summary (counters that are not 0):"
        grep -vE '[[:space:]]0$' "$tmp/tandem.out" | head -80
    fi
    [ "$fail" = 0 ]
}

# The management commands (`tandem status`, `flows`, `drain`, ...) against the appliance
# e2e_run_tandem started.
ctl() { "$tandem" "$@" --profile "$e2e_profile"; }

# A replica's health in `tandem status --json`: up, draining, down.
health_of() { ctl status --json | jq -r --arg n "lab/$1" '.replicas[] | select(.name == $n) | .health'; }

# Usage: wait_health NAME STATE   (5 s at most)
wait_health() {
    for _ in $(seq 1 50); do
        [ "$(health_of "$1")" = "$2" ] && return 0
        sleep 0.1
    done
    return 1
}

# Usage: start_server NAME [SECONDS]   (the stream server, e2e/stream.py, on replica NAME:
# port 7000, for SECONDS at most, default 120)
start_server() {
    local name=$1 ns ip
    ns=$(lab_replica_ns "$name")
    ip=$(lab_replica_ip "$name")
    rm -f "$tmp/stream-$name.pid"
    lab_exec "$ns" timeout "${2:-120}" python3 "$repo/appliance/e2e/stream.py" serve "$ip" \
        "$tmp/stream-$name.pid" >>"$tmp/stream-$name.log" 2>&1 &
    for _ in $(seq 1 50); do
        [ -s "$tmp/stream-$name.pid" ] && lab_exec "$ns" ss -ltnH "src $ip" | grep -q ":7000" && return 0
        sleep 0.1
    done
    bad "the stream server on $name did not start"
    cat "$tmp/stream-$name.log"
    exit 1
}
kill_server() { kill -KILL "$(cat "$tmp/stream-$1.pid")" 2>/dev/null || true; }

# The metrics listener's text (inside the appliance's namespace); one value from it.
scrape() { lab_exec "$LAB_APPLIANCE_NS" curl -sS --max-time 5 http://127.0.0.1:9450/metrics || true; }
metric() { awk -v k="$1" '$1 == k { print $2 }' <<<"$2"; }

# A counter of the summary `tandem run` printed when it stopped.
counter() { awk -v k="$1" '$1 == k { print $2; exit }' "$tmp/tandem.out"; }

# Usage: random_file PATH MIB SEED   (the same bytes for the same seed; nginx may read it)
random_file() {
    python3 -c '
import random, sys
r = random.Random(int(sys.argv[3]))
with open(sys.argv[1], "wb") as f:
    for _ in range(int(sys.argv[2])):
        f.write(r.randbytes(1 << 20))
' "$1" "$2" "$3"
    chmod 644 "$1"
}

# Usage: start_nginx NAME ROOT SECONDS CONNS [PORT...]   nginx on replica NAME serving ROOT
# on port 80 and each PORT (backlog 1024), CONNS connections, for SECONDS at most; returns
# once it listens. Its workers run unprivileged: ROOT and "$tmp" are made 0755.
start_nginx() {
    local name=$1 root=$2 secs=$3 conns=$4 ns ip listen="" port
    shift 4
    ns=$(lab_replica_ns "$name")
    ip=$(lab_replica_ip "$name")
    for port in 80 "$@"; do listen="$listen    listen $ip:$port backlog=1024;"$'\n'; done
    chmod 755 "$tmp" "$root"
    cat >"$tmp/nginx-$name.conf" <<CONF
daemon off;
worker_processes 1;
pid $tmp/nginx-$name.pid;
error_log $tmp/nginx-$name.err warn;
events { worker_connections $conns; }
http {
    access_log $tmp/nginx-$name.access;
    server_tokens off;
    sendfile on;
    server {
$listen        root $root;
    }
}
CONF
    lab_exec "$ns" timeout "$secs" nginx -p "$tmp" -e "$tmp/nginx-$name.err" -c "$tmp/nginx-$name.conf" &
    for _ in $(seq 1 50); do
        [ -s "$tmp/nginx-$name.pid" ] && lab_exec "$ns" ss -ltnH "src $ip:80" | grep -q . && return 0
        sleep 0.1
    done
    bad "nginx on $name did not start"
    cat "$tmp/nginx-$name.err" 2>/dev/null
    exit 1
}
