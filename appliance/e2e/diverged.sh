#!/usr/bin/env bash
# End-to-end test of verified standbys (issue #16, DESIGN §3.12), in the namespace lab:
# replicas that are not deterministic. nginx on the primary and on the backup serves a
# file of the same name, size and mtime (so the same headers), whose every line names the
# replica that serves it. Mirror mode must never splice them.
#
#   verify  (the default) verification on, as profiles have it. The backup's output
#           differs from the first body line on: it leaves every flow, counted per
#           replica and logged once per flow, and is reported out of sync (a standby
#           still behind the active when it dies is found different by the failover's
#           catch-up instead, and its flow reset then: counted there). The primary's
#           nginx is killed with -9 1.5 s in: every client holds a prefix of the
#           primary's file, never a byte of the backup's, and its connection is reset
#           (or complete, where the killed server's kernel had sent all of the rest).
#   off     the same with `verify: false`: the failover splices the backup's bytes onto
#           the primary's, and at least one client reads both names. This shows that the
#           checks of `verify` catch a splice: without the defence, they fail.
#
# Needs root. Everything is bounded in time; everything it started is stopped and the
# lab taken down on any exit.
#
#   appliance/e2e/diverged.sh [verify|off]
#   TANDEM_E2E_NO_BUILD=1 skips the cargo build; TANDEM_E2E_CONNS (20) clients
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=../lib.sh
. appliance/lib.sh

mode=${1:-verify}
case "$mode" in
verify) verify=on ;;
off) verify=off ;;
*)
    echo "usage: $0 [verify|off]" >&2
    exit 2
    ;;
esac
E2E_NAME="diverged-$mode"
# shellcheck source=common.sh
. appliance/e2e/common.sh
conns=${TANDEM_E2E_CONNS:-20}
mib=8

e2e_setup python3 nginx curl jq

# 1. The appliance: the lab's primary and backup, probed on nginx's port only.
profile="$tmp/lab-diverged.yaml"
"$bench" profile from configs/lab.yaml --replicas primary,backup --probe-ports 80 \
    --verify "$verify" >"$profile" || { bad "could not make the profile"; exit 1; }
e2e_run_tandem "$profile"

# 2. Each replica's own file: "replica NAME     line N", the same length on both.
for name in primary backup; do
    mkdir -p "$tmp/www-$name"
    python3 -c '
import sys
name, path, size = sys.argv[1], sys.argv[2], int(sys.argv[3]) << 20
with open(path, "w") as f:
    n, i = 0, 0
    while n < size:
        line = "replica %-8s line %08d\n" % (name, i)
        f.write(line[: size - n])
        n += len(line)
        i += 1
' "$name" "$tmp/www-$name/named" "$mib"
    chmod 644 "$tmp/www-$name/named"
    # The same mtime: the same Last-Modified and ETag in both answers.
    touch -d @1700000000 "$tmp/www-$name/named"
    start_nginx "$name" "$tmp/www-$name" 120 64
done
if wait_health primary up && wait_health backup up; then
    ok "primary and backup up (nginx answers the probes)"
else
    bad "replicas not up: primary $(health_of primary), backup $(health_of backup)"
    exit 1
fi

# 3. The clients: rate-limited so that every transfer spans the kill.
curls=()
for i in $(seq 1 "$conns"); do
    (
        rc=0
        lab_exec "$LAB_CLIENT_NS" curl -sS --max-time 20 --limit-rate 2M -o "$tmp/got-$i" \
            "http://$LAB_VIP/named" 2>"$tmp/curl-$i.err" || rc=$?
        echo "$rc" >"$tmp/rc-$i"
    ) &
    curls+=($!)
done

# 4. kill -9 of the primary's nginx (master and worker), 1.5 s in.
sleep 1.5
master=$(cat "$tmp/nginx-primary.pid")
pids="$master $(pgrep -P "$master" | tr '\n' ' ')"
log_mark=$(wc -l <"$tmp/tandem.log")
# shellcheck disable=SC2086  # a list of pids
kill -KILL $pids || true
echo "e2e $E2E_NAME: kill -9 of nginx on primary (pids $pids)"
wait_health primary down || bad "primary not down after its nginx was killed"
# Every curl ends by itself (--max-time 20).
wait "${curls[@]}"

# 5. What each client holds.
mixed=0
prefix=0
reset=0
complete=0
early=0
rcs=""
for i in $(seq 1 "$conns"); do
    got="$tmp/got-$i"
    [ -f "$got" ] || : >"$got"
    rc=$(cat "$tmp/rc-$i" 2>/dev/null || echo missing)
    rcs="$rcs $rc"
    size=$(stat -c %s "$got")
    has_primary=no
    has_backup=no
    grep -q "^replica primary " "$got" && has_primary=yes
    grep -q "^replica backup " "$got" && has_backup=yes
    if [ "$has_primary" = yes ] && [ "$has_backup" = yes ]; then mixed=$((mixed + 1)); fi
    if cmp -s -n "$size" "$got" "$tmp/www-primary/named"; then prefix=$((prefix + 1)); fi
    [ "$rc" = 56 ] && reset=$((reset + 1))
    [ "$rc" = 0 ] && complete=$((complete + 1))
    [ "$rc" = 18 ] && early=$((early + 1))
done
echo "e2e $E2E_NAME: curl exit codes:$rcs (56: reset, 0: complete, 18: closed early)"
echo "e2e $E2E_NAME: $mixed of $conns clients read both names, $prefix hold a prefix of the primary's file"

after=$(scrape)
diverged=$(metric "tandem_flows_diverged_total{service=\"lab\",replica=\"lab/backup\"}" "$after")
# A standby still behind the active when it died had not sent its different bytes yet: its
# catch-up finds them at the failover (the flow is reset then, `catch_ups_failed`), not
# a standby's check before it. Every flow is found one way or the other.
caught=$(awk 'index($1, "tandem_catch_ups_failed_total{") == 1 { n += $2 } END { print n + 0 }' <<<"$after")
want_diverged=$((conns - caught))
[ "$want_diverged" -ge 1 ] || want_diverged=1
backup_status=$(ctl status --json | jq -c '.replicas[] | select(.name == "lab/backup")')
echo "e2e $E2E_NAME: backup in tandem status: $backup_status"
tail -n +"$((log_mark + 1))" "$tmp/tandem.log" >"$tmp/events.log"
diverged_lines=$(grep -cE 'event="?diverged' "$tmp/tandem.log" || true)

if [ "$mode" = verify ]; then
    if [ "$mixed" = 0 ]; then
        ok "no client read both names"
    else
        bad "$mixed clients read both names: a spliced stream"
    fi
    if [ "$prefix" = "$conns" ]; then
        ok "every client holds a prefix of the primary's file"
    else
        bad "only $prefix of $conns clients hold a prefix of the primary's file"
    fi
    # A killed server's kernel still sends what its socket buffer holds, then a FIN: a
    # client whose rest of the file was all there holds it whole; one whose FIN came
    # before the failover holds a prefix closed early (curl exit 18), as it would
    # without Tandem (that flow had no standby left: the FIN is its server's own).
    if [ "$reset" -ge 1 ] && [ $((reset + complete + early)) = "$conns" ]; then
        ok "$reset connections reset at the failover (curl exit 56), $complete complete, $early closed early by the primary's kernel"
    else
        bad "want every connection reset, complete or closed by the primary, some reset (exit codes:$rcs)"
    fi
    if [ "${diverged:-0}" -ge "$want_diverged" ]; then
        ok "tandem_flows_diverged_total for lab/backup: $diverged (and $caught found at the failover's catch-up)"
    else
        bad "tandem_flows_diverged_total for lab/backup is '${diverged:-missing}' (want >= $want_diverged: $conns less $caught caught up and found different)"
    fi
    if [ "$(jq -r .out_of_sync <<<"$backup_status")" = true ] &&
        [ "$(jq -r .diverged_flows <<<"$backup_status")" -ge "$want_diverged" ]; then
        ok "tandem status: backup out of sync, $(jq -r .diverged_flows <<<"$backup_status") diverged flows"
    else
        bad "tandem status does not report the backup out of sync: $backup_status"
    fi
    with_bytes=$(grep -E 'event="?diverged' "$tmp/tandem.log" | grep -c 'checked_equal_bytes=' || true)
    if [ "$diverged_lines" -ge "$want_diverged" ] && [ "$with_bytes" = "$diverged_lines" ]; then
        first=$(grep -E 'event="?diverged' "$tmp/tandem.log" | grep -oE 'replica=[^ ]+ .*checked_equal_bytes=[0-9]+' | head -n 1 || true)
        ok "$diverged_lines diverged flows logged, each with the bytes checked equal: $first"
    else
        bad "$diverged_lines diverged lines in the tandem log (want >= $want_diverged, with checked_equal_bytes)"
    fi
    if grep -qE 'event="?out_of_sync.*lab/backup' "$tmp/tandem.log"; then
        ok "the out_of_sync event names the backup"
    else
        bad "no out_of_sync event for the backup in the tandem log"
    fi
else
    if [ "$mixed" -gt 0 ]; then
        ok "without verification $mixed of $conns clients read both names: the checks above see a splice"
    else
        bad "without verification no client read both names: this test would not see a splice"
    fi
    if [ "${diverged:-0}" = 0 ] && [ "$diverged_lines" = 0 ]; then
        ok "nothing verified, nothing reported diverged"
    else
        bad "diverged flows reported with verification off: metric '${diverged:-}', $diverged_lines log lines"
    fi
fi

e2e_stop_tandem
grep -E '^\s+(flows_created|flow_failovers|flows_lost|standbys_diverged|standbys_unverifiable|takeovers_refused|catch_ups[a-z_]*)\s' "$tmp/tandem.out" || true
if [ "$mode" = verify ]; then
    n=$(counter standbys_diverged)
    if [ "${n:-0}" -ge "$want_diverged" ]; then
        ok "standbys_diverged $n"
    else
        bad "standbys_diverged is '${n:-missing}' (want >= $want_diverged)"
    fi
fi
echo "result: mode=$mode conns=$conns mixed=$mixed primary_prefix=$prefix reset=$reset complete=$complete early=$early diverged=${diverged:-0}"
e2e_finish
