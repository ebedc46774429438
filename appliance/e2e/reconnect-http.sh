#!/usr/bin/env bash
# End-to-end test of reconnect mode with `replay: http1` (issue #16, DESIGN §2): the
# cases of `appliance/e2e/reconnect.sh http` (see there), in one appliance run. Needs
# root. Everything is bounded in time; everything it started is stopped and the lab
# taken down on any exit.
#
#   appliance/e2e/reconnect-http.sh
#   TANDEM_E2E_NO_BUILD=1 skips the cargo build; TANDEM_E2E_CONNS (10) clients in case 1;
#   TANDEM_E2E_CASES="1 2 3 5 6 7" (the default) the cases to run
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=../lib.sh
. appliance/lib.sh
E2E_NAME="reconnect-http"
# shellcheck source=common.sh
. appliance/e2e/common.sh
conns=${TANDEM_E2E_CONNS:-10}
cases=" ${TANDEM_E2E_CASES:-1 2 3 5 6 7} "
want_case() { [[ $cases == *" $1 "* ]]; }

e2e_setup python3 nginx curl jq sha256sum

# The appliance: the primary and the backup, probed on nginx's port; each flow on the
# primary alone, its requests logged from the oldest unanswered one, at most 1 MiB.
profile="$tmp/lab-reconnect-http.yaml"
"$bench" profile from configs/lab.yaml --replicas primary,backup --probe-ports 80 \
    --mode reconnect --replay http1 --replay-limit 1MiB >"$profile" ||
    { bad "could not make the profile"; exit 1; }
e2e_run_tandem "$profile"

# The files: the same on both replicas (and the same mtime: the same Last-Modified and
# ETag), but `differ`, whose bytes are each replica's own.
for name in primary backup; do
    www="$tmp/www-$name"
    mkdir -p "$www"
    random_file "$www/big" 16 7
    for i in $(seq 1 24); do
        { head -c $((1 << 20)) "$www/big"; printf 'file %d\n' "$i"; } >"$www/k$i"
        { head -c $((4 << 10)) "$www/big"; printf 'small %d\n' "$i"; } >"$www/s$i"
    done
    seed=1
    [ "$name" = backup ] && seed=2
    # Larger than what the killed server's socket buffers hold: the replay is needed.
    random_file "$www/differ" 32 "$seed"
    chmod 644 "$www"/*
    touch -d @1700000000 "$www"/*
done

slow_port=8080
start_slow() {
    local name=$1 ns ip
    ns=$(lab_replica_ns "$name")
    ip=$(lab_replica_ip "$name")
    rm -f "$tmp/slow-$name.pid"
    lab_exec "$ns" timeout 300 python3 "$repo/appliance/e2e/http_slow.py" serve "$ip" \
        "$slow_port" "$tmp/slow-$name.pid" 300 >>"$tmp/slow-$name.log" 2>&1 &
    for _ in $(seq 1 300); do
        [ -s "$tmp/slow-$name.pid" ] && lab_exec "$ns" ss -ltnH "src $ip:$slow_port" | grep -q . && return 0
        sleep 0.1
    done
    bad "http_slow.py on $name did not start"
    exit 1
}

# The primary's servers, (re)started, and the replica up again.
primary_up() {
    if ! [ -s "$tmp/nginx-primary.pid" ] || ! kill -0 "$(cat "$tmp/nginx-primary.pid")" 2>/dev/null; then
        rm -f "$tmp/nginx-primary.pid"
        start_nginx primary "$tmp/www-primary" 300 256
    fi
    if ! [ -s "$tmp/slow-primary.pid" ] || ! kill -0 "$(cat "$tmp/slow-primary.pid")" 2>/dev/null; then
        start_slow primary
    fi
    wait_health primary up || { bad "the primary did not come back up"; exit 1; }
}

# kill -9 of every server on the primary (as `failover.sh kill`); returns when Tandem
# has it down.
kill_primary() {
    local master pids
    master=$(cat "$tmp/nginx-primary.pid")
    pids="$master $(pgrep -P "$master" | tr '\n' ' ') $(cat "$tmp/slow-primary.pid")"
    # shellcheck disable=SC2086  # a list of pids
    kill -KILL $pids 2>/dev/null || true
    echo "e2e $E2E_NAME: kill -9 of the primary's servers (pids $pids)"
    wait_health primary down || bad "primary not down after its servers were killed"
}

# A counter summed over the workers, from the metrics listener.
total() { awk -v k="$1" 'index($1, k "{") == 1 || $1 == k { n += $2 } END { print n + 0 }' <<<"$(scrape)"; }

# What the replays of a case came to (the counters' change since `replays_mark`).
replay_counters=(reconnects reconnects_spliced reconnects_mismatch reconnects_unsafe reconnects_refused reconnects_timeout)
replays_mark() { for c in "${replay_counters[@]}"; do eval "mark_$c=$(total "tandem_${c}_total")"; done; }
replays_since() {
    local c line="" v m
    for c in "${replay_counters[@]}"; do
        v=$(total "tandem_${c}_total")
        m="mark_$c"
        line="$line $c=$((v - ${!m}))"
    done
    echo "e2e $E2E_NAME: case $1:$line"
}

for name in primary backup; do
    start_nginx "$name" "$tmp/www-$name" 300 256
    start_slow "$name"
done
wait_health primary up && wait_health backup up ||
    { bad "replicas not up: primary $(health_of primary), backup $(health_of backup)"; exit 1; }
vip=$LAB_VIP
on_client() { lab_exec "$LAB_CLIENT_NS" "$@"; }
if [ -n "${TANDEM_E2E_PCAP:-}" ]; then
    # For a look at a failure: the client's side, to this file.
    lab_exec "$LAB_CLIENT_NS" timeout 300 tcpdump -i any -s 128 -w "$TANDEM_E2E_PCAP" tcp 2>/dev/null &
    sleep 1
fi

# ---- 1. kill: large files, killed mid-body -------------------------------------------
if want_case 1; then
    replays_mark
    want=$(sha256sum <"$tmp/www-primary/big" | cut -d' ' -f1)
    spliced0=$(total tandem_reconnects_spliced_total)
    pids=()
    for i in $(seq 1 "$conns"); do
        (
            rc=0
            on_client curl -sS --max-time 30 --limit-rate 4M -o "$tmp/big-$i" \
                "http://$vip/big" 2>"$tmp/big-$i.err" || rc=$?
            echo "$rc" >"$tmp/big-$i.rc"
        ) &
        pids+=($!)
    done
    sleep 1.5
    kill_primary
    wait "${pids[@]}"
    good=0
    rcs=""
    for i in $(seq 1 "$conns"); do
        rcs="$rcs $(cat "$tmp/big-$i.rc")"
        [ "$(cat "$tmp/big-$i.rc")" = 0 ] && [ "$(sha256sum <"$tmp/big-$i" | cut -d' ' -f1)" = "$want" ] &&
            good=$((good + 1))
    done
    spliced=$(($(total tandem_reconnects_spliced_total) - spliced0))
    if [ "$good" = "$conns" ]; then
        ok "1. kill mid-body: $good of $conns curls of 16 MiB complete, SHA-256 right ($spliced replays spliced)"
    else
        bad "1. kill mid-body: only $good of $conns curls whole and right (exit codes:$rcs)"
    fi
    [ "$spliced" -ge "$conns" ] || bad "1. kill mid-body: $spliced replays spliced (want >= $conns)"
    primary_up
    replays_since 1
fi

# ---- 2. keep-alive: many URLs on one connection ---------------------------------------
if want_case 2; then
    replays_mark
    keepalive() {
        local label=$1 prefix=$2 at=$3 extra=$4 urls=() outs=() rc=0 i n bad_files=0 spliced0
        spliced0=$(total tandem_reconnects_spliced_total)
        for i in $(seq 1 24); do
            urls+=("http://$vip/$prefix$i")
            outs+=(-o "$tmp/ka-$prefix$i")
        done
        rm -f "$tmp"/ka-"$prefix"*
        # shellcheck disable=SC2086  # the extra options
        (on_client curl -sS --max-time 30 $extra -w '%{num_connects}\n' "${outs[@]}" "${urls[@]}" \
            >"$tmp/ka-$prefix.connects" 2>"$tmp/ka-$prefix.err" || echo $? >"$tmp/ka-$prefix.rc") &
        local pid=$!
        sleep "$at"
        kill_primary
        wait "$pid" || true
        rc=$(cat "$tmp/ka-$prefix.rc" 2>/dev/null || echo 0)
        for i in $(seq 1 24); do
            cmp -s "$tmp/ka-$prefix$i" "$tmp/www-primary/$prefix$i" || bad_files=$((bad_files + 1))
        done
        n=$(awk '{ n += $1 } END { print n + 0 }' "$tmp/ka-$prefix.connects")
        spliced=$(($(total tandem_reconnects_spliced_total) - spliced0))
        if [ "$rc" = 0 ] && [ "$bad_files" = 0 ] && [ "$n" = 1 ] && [ "$spliced" = 1 ]; then
            ok "2. keep-alive, killed $label: 24 files right, on one connection, moved to the backup"
        else
            bad "2. keep-alive, killed $label: curl exit $rc, $bad_files files wrong, $n connections, $spliced replays spliced ($(cat "$tmp/ka-$prefix.err"))"
        fi
        primary_up
    }
    keepalive "during a response" k 1.5 "--limit-rate 4M"
    keepalive "between responses" s 2 "--rate 5/s"
    replays_since 2
fi

# ---- 3. a request in flight on a slow endpoint ----------------------------------------
if want_case 3; then
    replays_mark
    url="http://$vip:$slow_port/slow?ms=1500&kib=256"
    want=$(python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import http_slow, hashlib; print(hashlib.sha256(http_slow.body_for(sys.argv[2], 256)).hexdigest())' \
        "$repo/appliance/e2e" "/slow?ms=1500&kib=256")
    (on_client curl -sS --max-time 20 -o "$tmp/slow.out" "$url" 2>"$tmp/slow.err" || echo $? >"$tmp/slow.rc") &
    pid=$!
    sleep 0.5
    kill_primary
    wait "$pid" || true
    got=$(sha256sum <"$tmp/slow.out" 2>/dev/null | cut -d' ' -f1)
    if ! [ -s "$tmp/slow.rc" ] && [ "$got" = "$want" ]; then
        ok "3. a GET in flight on a slow endpoint: answered by the backup, SHA-256 right"
    else
        bad "3. a GET in flight on a slow endpoint: curl exit $(cat "$tmp/slow.rc" 2>/dev/null), body ${got:-none} ($(cat "$tmp/slow.err"))"
    fi
    primary_up
    replays_since 3
fi

# ---- 7. an upload beyond the log's limit: unprotected and counted ---------------------
if want_case 7; then
    replays_mark
    ended0=$(total tandem_replay_logs_ended_total)
    head -c $((2 << 20)) "$tmp/www-primary/big" >"$tmp/upload.body"
    want=$(sha256sum <"$tmp/upload.body" | cut -d' ' -f1)
    # Paced: a burst of the whole upload overruns the lab's af_packet port (a loss the
    # client recovers from only after its retransmission timer; not what this checks).
    got=$(on_client curl -sS --max-time 20 --limit-rate 1M -X POST --data-binary @"$tmp/upload.body" \
        "http://$vip:$slow_port/echo" 2>"$tmp/upload.err" || true)
    ended=$(($(total tandem_replay_logs_ended_total) - ended0))
    if [ "$got" = "$want" ] && [ "$ended" -ge 1 ]; then
        ok "7. a 2 MiB upload past the 1 MiB limit: answered, its log ended (counted $ended)"
    else
        bad "7. a 2 MiB upload: answer '${got:0:16}' (want ${want:0:16}), logs ended $ended ($(cat "$tmp/upload.err"))"
    fi
    replays_since 7
fi

# ---- 5. a POST in flight: not replayed, a RST -----------------------------------------
if want_case 5; then
    replays_mark
    unsafe0=$(total tandem_reconnects_unsafe_total)
    head -c $((64 << 10)) "$tmp/www-primary/big" >"$tmp/post.body"
    (on_client curl -sS --max-time 20 -X POST --data-binary @"$tmp/post.body" -o "$tmp/post.out" \
        "http://$vip:$slow_port/echo?ms=1500" 2>"$tmp/post.err" || echo $? >"$tmp/post.rc") &
    pid=$!
    sleep 0.5
    kill_primary
    wait "$pid" || true
    unsafe=$(($(total tandem_reconnects_unsafe_total) - unsafe0))
    if [ "$(cat "$tmp/post.rc" 2>/dev/null)" = 56 ] && [ "$unsafe" -ge 1 ]; then
        ok "5. a POST in flight: reset (curl exit 56), counted unsafe ($unsafe)"
    else
        bad "5. a POST in flight: curl exit $(cat "$tmp/post.rc" 2>/dev/null || echo 0), unsafe $unsafe ($(cat "$tmp/post.err"))"
    fi
    primary_up
    replays_since 5
fi

# ---- 6. a file that differs on the backup: a RST, a prefix of the primary's -----------
if want_case 6; then
    replays_mark
    mismatch0=$(total tandem_reconnects_mismatch_total)
    pids=()
    for i in 1 2 3 4 5; do
        (
            rc=0
            on_client curl -sS --max-time 20 --limit-rate 2M -o "$tmp/differ-$i" \
                "http://$vip/differ" 2>"$tmp/differ-$i.err" || rc=$?
            echo "$rc" >"$tmp/differ-$i.rc"
        ) &
        pids+=($!)
    done
    sleep 1.5
    kill_primary
    wait "${pids[@]}"
    # Each client holds a prefix of the primary's file, reset at the failover; or all of
    # it, where the killed server's kernel had sent the rest (its socket's buffer) before
    # the replay. Never a byte of the backup's.
    right=0
    resets=0
    rcs=""
    full=$(stat -c %s "$tmp/www-primary/differ")
    for i in 1 2 3 4 5; do
        rc=$(cat "$tmp/differ-$i.rc")
        rcs="$rcs $rc"
        size=$(stat -c %s "$tmp/differ-$i" 2>/dev/null || echo 0)
        echo "e2e $E2E_NAME: differ $i: exit $rc, $size bytes: $(cat "$tmp/differ-$i.err")"
        cmp -s -n "$size" "$tmp/differ-$i" "$tmp/www-primary/differ" || continue
        if [ "$rc" = 56 ]; then
            right=$((right + 1))
            resets=$((resets + 1))
        elif [ "$rc" = 0 ] && [ "$size" = "$full" ]; then
            right=$((right + 1))
        fi
    done
    mismatch=$(($(total tandem_reconnects_mismatch_total) - mismatch0))
    if [ "$right" = 5 ] && [ "$resets" -ge 1 ] && [ "$mismatch" -ge "$resets" ]; then
        ok "6. a different file on the backup: $resets of 5 reset holding a prefix of the primary's file, the others all of it ($mismatch mismatches)"
    else
        bad "6. a different file on the backup: $right of 5 hold the primary's bytes only, $resets reset (exit codes:$rcs), $mismatch mismatches"
    fi
    primary_up
    replays_since 6
fi

e2e_stop_tandem
grep -E '^\s+(reconnects[a-z_]*|replayed_bytes|replay_[a-z_]+|http1_[a-z_]+|reconnect_ns|flows_lost)\s' "$tmp/tandem.out" || true
e2e_finish
