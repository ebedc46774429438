#!/usr/bin/env bash
# End-to-end test of reconnect mode (issue #16, DESIGN §2), in the namespace lab.
#
#   stream-kill | stream-silence | stream-drop
#       `replay: stream`: the service in reconnect mode, each flow on the primary alone
#       with every client byte since the SYN logged. The failure of appliance/e2e/
#       failover.sh (kill -9 of the primary's servers, its link down, every packet
#       dropped) 1.5 s into 10 stream.py connections and a 48 MiB curl: Tandem opens
#       each flow again on the backup, replays the log, checks the backup's answer
#       against what the client has and splices the rest. The checks are failover.sh's
#       (every byte right both ways, the SHA-256, no reset, no flow lost) and that every
#       replay was spliced; but the curl may end in a RST with a prefix of the file: a
#       stream replay is byte for byte, and nginx's Date header differs between the two
#       answers when the second changed (the http1 scope leaves it out).
#
#   http
#       `replay: http1`, with nginx (the same files, the same mtimes) and
#       appliance/e2e/http_slow.py (a slow endpoint; POST) on the primary and the
#       backup, one appliance run, the primary's servers killed with -9 in each case and
#       started again after it:
#         1. kill  10 curls of a 16 MiB file, killed mid-body: every SHA-256 right.
#         2. keepalive  one curl fetching 24 URLs on one connection, killed during a
#                  response; then one fetching 24 small URLs at 5 a second, killed
#                  between responses: every file right, one connection each.
#         3. slow  a GET in flight on a slow endpoint (nothing answered yet): answered.
#         5. post  a POST in flight: a RST (curl exit 56), counted unsafe.
#         6. differ  a 32 MiB file that differs on the backup (same name, size, mtime): a RST,
#                  every client holding a prefix of the primary's file, counted mismatch.
#         7. upload  a 2 MiB POST with a 1 MiB log limit (no kill): answered, its flow
#                  unprotected and counted (the log ended).
#       Case 4 is `replay: stream` above.
#
#   appliance/e2e/reconnect.sh [stream-kill|stream-silence|stream-drop|http]
#   TANDEM_E2E_NO_BUILD=1 skips the cargo build
set -euo pipefail
cd "$(dirname "$0")/../.."
case=${1:-stream-kill}
case "$case" in
stream-kill | stream-silence | stream-drop) ;;
http) exec appliance/e2e/reconnect-http.sh ;;
*)
    echo "usage: $0 [stream-kill|stream-silence|stream-drop|http]" >&2
    exit 2
    ;;
esac
# 10 connections: a stream replay sends each one's whole upload again (about 1.6 MB by
# the failure) and the backup's stream server computes every answer again, which on a
# 2-core lab starves the other replicas' probes at 20.
TANDEM_E2E_CONNS=${TANDEM_E2E_CONNS:-10} TANDEM_E2E_MODE=reconnect \
    exec appliance/e2e/failover.sh "${case#stream-}"
