#!/usr/bin/env bash
# End-to-end test of `tandem reload` (issue #18, item 4) under live stream connections:
#
#   1. `tandem run` with a copy of the lab profile: a pool of two (primary, backup),
#      `selection: spread`, probes on port 7000, JSON logs; the stream server on all
#      three replica hosts;
#   2. `tandem add lab spare` and a `reload --dry-run` of the unchanged profile: the
#      replica added while running is reported as a difference (its removal), nothing
#      applied; `tandem remove spare` again;
#   3. TANDEM_E2E_CONNS (12) stream connections for TANDEM_E2E_SECONDS (8), data both
#      ways, every byte checked; while they run:
#      (a) the profile gains the spare and a longer synack_wait: `tandem reload` adds
#          it, it comes up by its probes; the timer is for new flows;
#      (b) the profile drains the backup: `tandem reload` drains it;
#      (c) the profile asks for two queues per port: `tandem reload` is refused, naming
#          ports.outside.queues, and nothing changes (`tandem status`);
#      (d) the drain is taken out of the profile, a service `web` on a new VIP put in,
#          and SIGHUP sent: the appliance reloads its own file, the backup is back, the
#          new service's replicas come up and it serves two stream connections;
#   4. every connection ends byte-exact with no reset; `tandem status` shows both pools
#      of three; no flow lost.
#
# Needs root. Bounded in time (under 60 s); everything it started is stopped and the lab
# taken down on any exit.
#
#   appliance/e2e/reload.sh          # TANDEM_E2E_NO_BUILD=1 skips the cargo build
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/../.."
# shellcheck source=../lib.sh
. appliance/lib.sh
E2E_NAME=reload
# shellcheck source=common.sh
. appliance/e2e/common.sh
conns=${TANDEM_E2E_CONNS:-12}
web_vip=198.18.0.101
secs=${TANDEM_E2E_SECONDS:-8}
e2e_setup python3 jq

# 1. The profile the appliance runs, rewritten in place for each reload.
profile="$tmp/reload.yaml"
variant() {
    "$bench" profile from configs/lab.yaml --selection spread --probe-ports 7000 \
        --log-format json "$@" >"$tmp/next.yaml" && mv "$tmp/next.yaml" "$profile"
}
variant --replicas primary,backup || { bad "could not make the profile"; exit 1; }
e2e_run_tandem "$profile"
for name in "${LAB_REPLICAS[@]}"; do start_server "$name"; done
wait_health primary up && wait_health backup up ||
    { bad "primary and backup not up: $(ctl status)"; exit 1; }
pool() { ctl status --json | jq -r '[.replicas[] | "\(.name)=\(.health)"] | join(" ")'; }

# 2. A replica added while running is a difference; a dry run applies nothing.
ctl add lab spare "$LAB_SPARE_IP" >/dev/null && wait_health spare up || bad "tandem add spare"
answer=$(ctl reload --dry-run 2>&1) || true
if grep -q "lab/spare $LAB_SPARE_IP: removed from the pool.*added with \`tandem add\` and is not in the profile" <<<"$answer" &&
    grep -q "1 difference found (dry run, nothing applied)" <<<"$answer" && [ "$(health_of spare)" = up ]; then
    ok "reload --dry-run reports the replica added while running, applies nothing: $(tr '\n' ' ' <<<"$answer")"
else
    bad "reload --dry-run: $answer; pool: $(pool)"
fi
ctl remove spare >/dev/null || bad "tandem remove spare"

# 3. Live connections through three reloads and a SIGHUP.
lab_exec "$LAB_CLIENT_NS" timeout $((secs + 60)) python3 "$repo/appliance/e2e/stream.py" \
    client "$LAB_VIP" "$conns" "$secs" >"$tmp/client.out" 2>&1 &
client_pid=$!
sleep 1.5
flows_before=$(ctl flows --json --limit 10000 | jq .matched)

# (a) A replica added, a timeout for new flows changed.
variant --replicas primary,backup,spare --synack-wait 3ms
answer=$(ctl reload 2>&1) || true
if grep -q "+ lab/spare $LAB_SPARE_IP: added to the pool" <<<"$answer" &&
    grep -q "timeouts.synack_wait: 2ms -> 3ms (flows created from now on)" <<<"$answer" && wait_health spare up; then
    ok "reload adds a replica and a timer: $(tr '\n' ' ' <<<"$answer"); up by its probes"
else
    bad "reload adding the spare: $answer; pool: $(pool)"
fi
sleep 1

# (b) Another drained.
variant --replicas primary,backup,spare --synack-wait 3ms --drain backup
answer=$(ctl reload 2>&1) || true
if grep -q "~ lab/backup: drained" <<<"$answer" && [ "$(health_of backup)" = draining ]; then
    ok "reload drains a replica: $(tr '\n' ' ' <<<"$answer")"
else
    bad "reload draining the backup: $answer; pool: $(pool)"
fi
sleep 1

# (c) A change that needs a restart: refused, named, nothing changed.
before=$(pool)
variant --replicas primary,backup --synack-wait 3ms --drain backup --queues 2
rc=0
answer=$(ctl reload 2>&1) || rc=$?
after=$(pool)
if [ "$rc" = 1 ] && grep -q "reload refused, nothing changed" <<<"$answer" &&
    grep -q "ports.outside.queues: 1 -> 2" <<<"$answer" && grep -q "ports.inside.queues: 1 -> 2" <<<"$answer" &&
    [ "$before" = "$after" ]; then
    ok "a reload that changes the queues is refused (exit 1), the pool as it was ($after): $answer"
else
    bad "the refused reload: rc $rc, '$answer'; pool before '$before', after '$after'"
fi

# (d) SIGHUP: the appliance reloads its own file; the backup back in service, and a new
# service on a new VIP, which a client reaches (ARP, then a stream connection).
variant --replicas primary,backup,spare --synack-wait 3ms --add-service web="$web_vip"
log_mark=$(wc -l <"$tmp/tandem.log")
kill -HUP "$tandem_pid"
if wait_health backup up && tail -n +"$((log_mark + 1))" "$tmp/tandem.log" | grep -q '"event":"reload"'; then
    ok "SIGHUP reloads the profile file: the backup is back in service"
else
    bad "SIGHUP: pool $(pool); log: $(tail -n +"$((log_mark + 1))" "$tmp/tandem.log" | grep -i reload)"
fi
web_up=0
for _ in $(seq 1 50); do
    [ "$(ctl status --json | jq '[.replicas[] | select(.name | startswith("web/")) | select(.health == "up")] | length')" = 3 ] &&
        { web_up=1; break; }
    sleep 0.1
done
if [ "$web_up" = 1 ] && lab_exec "$LAB_CLIENT_NS" timeout 30 python3 "$repo/appliance/e2e/stream.py" \
    client "$web_vip" 2 1 >"$tmp/client-web.out" 2>&1; then
    ok "the new service web on $web_vip serves: 2 stream connections byte-exact"
else
    bad "the new service web on $web_vip: $(ctl status); $(cat "$tmp/client-web.out" 2>/dev/null)"
fi

# 4. Every connection byte-exact, no reset; the pool of three.
rc=0
wait "$client_pid" || rc=$?
if [ "$rc" = 0 ]; then
    ok "$conns stream connections through the reloads: no reset, every byte right both ways ($(grep -oE 'bytes_in=[0-9]+' "$tmp/client.out"))"
else
    bad "the stream clients failed through the reloads (rc $rc)"
    cat "$tmp/client.out"
fi
final=$(pool)
if [ "$final" = "lab/primary=up lab/backup=up lab/spare=up web/primary=up web/backup=up web/spare=up" ] && [ "${flows_before:-0}" -ge "$conns" ]; then
    ok "tandem status: $final ($flows_before flows were running during the reloads)"
else
    bad "tandem status: $final; flows during the reloads: ${flows_before:-?}"
fi
e2e_stop_tandem
lost=$(counter flows_lost)
if [ "${lost:-x}" = 0 ]; then ok "no flow lost (flows_lost 0)"; else bad "flows_lost is '${lost:-missing}'"; fi
e2e_finish
