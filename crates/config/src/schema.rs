//! The schema's words: default values and, for every field, what it allows. Both the
//! deserialiser's errors (wrong type) and validation's errors quote the "allowed" text
//! from here, so a field is described the same way whatever went wrong with it.

use std::time::Duration;

/// Default control lcore.
pub(crate) const CONTROL_LCORE: u32 = 0;
/// Highest lcore id accepted (DPDK's `RTE_MAX_LCORE` can be configured up to this).
pub(crate) const MAX_LCORE: u32 = 1023;
/// Default receive queues per port.
pub(crate) const QUEUES: u16 = 1;
/// Most queues per port (DPDK's `RTE_MAX_QUEUES_PER_PORT`).
pub(crate) const MAX_QUEUES: u16 = 1024;
/// Default ring sizes.
pub(crate) const DESCRIPTORS: u16 = 1024;
/// Ring size bounds.
pub(crate) const MIN_DESCRIPTORS: u16 = 64;
/// Ring size bounds.
pub(crate) const MAX_DESCRIPTORS: u16 = 32768;
/// Default MTU.
pub(crate) const MTU: u16 = 1500;
/// MTU bounds: the IPv4 minimum (RFC 791), and the most one mbuf holds: the runtime's
/// pool has DPDK's default data room (`RTE_MBUF_DEFAULT_DATAROOM`, 2048 bytes) and the
/// engine handles one-segment frames only, so a frame (MTU + Ethernet header + one
/// 802.1Q tag) must fit in it. Larger frames would be dropped as `nonlinear`.
pub(crate) const MIN_MTU: u16 = 68;
/// MTU bounds.
pub(crate) const MAX_MTU: u16 = 2048 - 14 - 4;
/// Default and most replicas per flow.
pub(crate) const COPIES: u8 = 2;
/// Most replicas per flow.
pub(crate) const MAX_COPIES: u8 = 3;
/// Longest service or replica name.
pub(crate) const MAX_NAME: usize = 32;

/// Default probe interval.
pub(crate) const INTERVAL: Duration = Duration::from_millis(10);
/// Default `fall`.
pub(crate) const FALL: u32 = 3;
/// Default `rise`.
pub(crate) const RISE: u32 = 2;
/// Default `suspect_burst`.
pub(crate) const SUSPECT_BURST: u32 = 3;
/// Bound of `fall`, `rise`, `suspect_burst`.
pub(crate) const MAX_COUNT: u32 = 1000;
/// Default `suspect_interval`.
pub(crate) const SUSPECT_INTERVAL: Duration = Duration::from_millis(1);
/// Default `ack_lag`.
pub(crate) const ACK_LAG: Duration = Duration::from_millis(50);

/// Default `timeouts.syn`.
pub(crate) const SYN: Duration = Duration::from_secs(5);
/// Default `timeouts.established`.
pub(crate) const ESTABLISHED: Duration = Duration::from_secs(300);
/// Default `timeouts.linger`.
pub(crate) const LINGER: Duration = Duration::from_secs(2);
/// Default `timeouts.synack_wait`.
pub(crate) const SYNACK_WAIT: Duration = Duration::from_millis(2);
/// Default `timeouts.arp_refresh`.
pub(crate) const ARP_REFRESH: Duration = Duration::from_secs(30);

/// Default `limits.flows_per_worker`.
pub(crate) const FLOWS_PER_WORKER: u32 = 1 << 20;
/// Most `limits.flows_per_worker`.
pub(crate) const MAX_FLOWS_PER_WORKER: u32 = 1 << 28;
/// Default `limits.hold_bytes_per_flow`.
pub(crate) const HOLD_BYTES_PER_FLOW: u32 = 256 * 1024;
/// Default `limits.hold_bytes_total`.
pub(crate) const HOLD_BYTES_TOTAL: u64 = 256 * 1024 * 1024;
/// Default `limits.hold_segments_total`.
pub(crate) const HOLD_SEGMENTS_TOTAL: u32 = 128 * 1024;
/// Default `limits.mbufs` (a power of two minus one suits the mempool's ring best).
pub(crate) const MBUFS: u32 = (1 << 18) - 1;
/// Frames a hand-off ring holds (one ring per ordered pair of workers and side); the
/// runtime sizes its rings by this, the mbuf budget counts them.
pub const HANDOFF_RING_FRAMES: u32 = 1024;
/// Default `limits.mbuf_cache`.
pub(crate) const MBUF_CACHE: u32 = 256;
/// Most `limits.mbuf_cache` (DPDK's `RTE_MEMPOOL_CACHE_MAX_SIZE`).
pub(crate) const MAX_MBUF_CACHE: u32 = 512;
/// Default `limits.control_rate`: frames a second per worker for the control core (but
/// probe answers and ARP replies). Neighbours ask for the appliance's MACs a few times a
/// minute and echo requests come from monitoring: a few thousand a second is far above
/// that, and several workers together stay well within what the control core answers.
pub(crate) const CONTROL_RATE: u32 = 4_000;
/// Default `limits.control_burst`.
pub(crate) const CONTROL_BURST: u32 = 256;
/// Default `limits.syn_backlog` (or half of `flows_per_worker`, if less): handshakes in
/// flight per worker before SYN cookies. Legitimate ones last a round trip: a thousand at
/// once is tens of thousands of new connections a second; a flood passes it at once.
pub(crate) const SYN_BACKLOG: u32 = 1_024;
/// Most `limits.control_rate`: the control core answers about a million frames a second
/// in all; more per worker would only move the drops into its ring.
pub(crate) const MAX_CONTROL_RATE: u32 = 1_000_000;
/// Most `limits.control_burst` (the control ring holds 4096 frames).
pub(crate) const MAX_CONTROL_BURST: u32 = 4_096;

/// Default `limits.replay_bytes_total`.
pub(crate) const REPLAY_BYTES_TOTAL: u64 = 256 << 20;
/// Default `ha.heartbeat`.
pub(crate) const HA_HEARTBEAT: Duration = Duration::from_millis(10);
/// Default `ha.dead_time`: three heartbeats.
pub(crate) const HA_DEAD_TIME: Duration = Duration::from_millis(30);
/// Default `ha.sync_batch`: five 256-byte records fill a 1500-byte datagram.
pub(crate) const HA_SYNC_BATCH: u16 = 5;
/// Largest `ha.sync_batch` (what one 1500-byte datagram holds: no IP fragments).
pub(crate) const HA_MAX_SYNC_BATCH: u16 = 5;
/// Default `ha.sync_interval`.
pub(crate) const HA_SYNC_INTERVAL: Duration = Duration::from_millis(1);
/// Default `ha.sync_window` (about 1.3 MB of datagrams).
pub(crate) const HA_SYNC_WINDOW: u32 = 1024;
/// Largest `ha.sync_window`.
pub(crate) const HA_MAX_SYNC_WINDOW: u32 = 65_536;

/// Default `replay.limit`.
pub(crate) const REPLAY_LIMIT: u64 = 1 << 20;
/// Default `replay.methods`: the safe methods of RFC 9110 §9.2.1 that answer alike when
/// run twice (TRACE, also safe, echoes the request and is rarely served).
pub(crate) const REPLAY_METHODS: &[&str] = &["GET", "HEAD", "OPTIONS"];
/// Most `replay.methods`, and the longest method name (the engine keeps them in a
/// fixed table and matches them in every request line).
pub(crate) const MAX_METHODS: usize = 16;
/// Longest method name.
pub(crate) const MAX_METHOD_LEN: usize = 32;
/// Methods never replayed, and why (RFC 9110 §9.3; PATCH: RFC 5789).
pub(crate) const NEVER_REPLAYED: &[(&str, &str)] = &[
    (
        "POST",
        "POST is not idempotent: a replay would run it a second time",
    ),
    (
        "PATCH",
        "PATCH is not idempotent: a replay would apply it a second time",
    ),
    (
        "PUT",
        "PUT is idempotent in its effect (RFC 9110 §9.2.2) but not in its answer or against \
         other writers: a replayed PUT answers 200 where the first one created (201), and \
         undoes a write another client made in between",
    ),
    (
        "DELETE",
        "DELETE is idempotent in its effect (RFC 9110 §9.2.2) but not in its answer: a \
         replayed DELETE answers 404 where the first one deleted",
    ),
    (
        "CONNECT",
        "CONNECT opens a tunnel: what went through it cannot be replayed",
    ),
];
/// Methods defined by RFC 9110 (§9.3), to catch one written in lower case.
pub(crate) const STANDARD_METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];
/// Default `replay.exclude_headers`.
pub(crate) const EXCLUDE_HEADERS: &[&str] = &["Date", "Server"];
/// Most `replay.exclude_headers` (each one costs a comparison per response header line).
pub(crate) const MAX_EXCLUDED_HEADERS: usize = 4;
/// Longest excluded header name (as long as a method name: one size of slot for both).
pub(crate) const MAX_HEADER_LEN: usize = MAX_METHOD_LEN;
/// Header fields that frame a message body (RFC 9112 §6): never left out of the
/// comparison, since a response framed differently is not the same response.
pub(crate) const FRAMING_HEADERS: &[&str] = &["Content-Length", "Transfer-Encoding"];
/// Default `replay.connect_timeout`.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_millis(50);
/// Default `replay.fin_hold`.
pub(crate) const FIN_HOLD: Duration = Duration::from_millis(100);
/// Default `replay.parallel`.
pub(crate) const REPLAY_PARALLEL: u32 = 64;
/// Most `replay.parallel`.
pub(crate) const MAX_REPLAY_PARALLEL: u32 = 4_096;

/// Default `management.socket`.
pub(crate) const SOCKET: &str = "/run/tandem/tandem.sock";
/// Default `management.metrics`.
pub(crate) const METRICS: &str = "127.0.0.1:9450";

/// A positive duration.
pub(crate) const POSITIVE_DURATION: &str =
    "a duration greater than zero, like 100us, 10ms, 1.5s, 2m";
/// A duration where 0 means off.
pub(crate) const DURATION_OR_OFF: &str = "a duration like 50ms, or 0 for off";
/// A name.
pub(crate) const NAME: &str = "1 to 32 letters, digits, `-` or `_`, unique";
/// An lcore id.
pub(crate) const LCORE: &str = "an lcore id 0..=1023 that the EAL starts";
/// A unicast IPv4 address.
pub(crate) const UNICAST: &str = "a unicast IPv4 address like 198.18.0.100";
/// A TCP port.
pub(crate) const TCP_PORT: &str = "a port number 1..=65535";

/// What the field at `path` allows: its own description, or else its nearest described
/// parent's (a value written inside a scalar field's place is judged by that field).
pub(crate) fn allowed_at(path: &crate::locate::FieldPath) -> String {
    let mut p = path.clone();
    loop {
        if let Some(text) = allowed(&p.pattern()) {
            return text.to_owned();
        }
        if p.0.pop().is_none() {
            return "see the profile reference".to_owned();
        }
    }
}

/// What the field at `pattern` (a path with blank indices, `services[].port`) allows.
pub(crate) fn allowed(pattern: &str) -> Option<&'static str> {
    let leaf = pattern.rsplit('.').next().unwrap_or(pattern);
    let in_port = pattern.starts_with("ports.outside.") || pattern.starts_with("ports.inside.");
    let in_health = pattern.starts_with("services[].health.");
    Some(match pattern {
        "" => "a mapping with eal, lcores, ports, workers, services, timeouts, limits, management, logging, ha",
        "eal" => "a mapping with `args`",
        "eal.args" => "a list of strings, passed to rte_eal_init after argv[0]",
        "eal.args[]" => "a string",
        "lcores" => "a mapping with `control`, `workers` and `affinity`",
        "lcores.affinity" => "auto, hand-off",
        "lcores.control" => "the EAL main lcore, an lcore id 0..=1023 (default 0)",
        "lcores.workers" => "a non-empty list of distinct lcore ids, none of them the control lcore",
        "lcores.workers[]" => LCORE,
        "ports" => "a mapping with `outside` and `inside`",
        "ports.outside" | "ports.inside" => {
            "a mapping with device, address, gateway, queues, rx_descriptors, tx_descriptors, mtu"
        }
        "workers" => "a list of { lcore, port, queue }: every receive queue of both ports once",
        "workers[]" => "a mapping { lcore, port, queue }",
        "workers[].lcore" => "one of lcores.workers",
        "workers[].port" => "outside, inside",
        "workers[].queue" => "a queue index below ports.<port>.queues",
        "services" => "a non-empty list of services",
        "services[]" => {
            "a mapping with name, vip, port, mode, copies, selection, verify, replay, replicas, health, no_replica"
        }
        "services[].name" | "services[].replicas[].name" => NAME,
        "services[].vip" => UNICAST,
        "services[].port" => "`any`, a port number 1..=65535, or a range like 8000-8100",
        "services[].mode" => "mirror, reconnect, forward",
        "services[].copies" => {
            "1..=3 and at most the number of replicas in mirror mode; 1 in reconnect and forward mode"
        }
        "services[].selection" => "spread, ordered",
        "services[].no_replica" => "reset (the default: a RST answers a SYN while no replica is live), drop",
        "services[].verify" => "true (the default: a standby takes over only where its output was checked equal to the active's) or false",
        "services[].replay" => {
            "a mapping with scope, limit, connect_timeout, parallel, and in reconnect mode fin_hold, \
             and with scope: http1 methods and exclude_headers (not in forward mode)"
        }
        "services[].replay.scope" => "stream (every client byte since the SYN; mirror mode's only scope) or http1 (from the oldest request not answered; reconnect mode)",
        "services[].replay.limit" => {
            "a size greater than zero, at most one worker's share of limits.replay_bytes_total, \
             like 64KiB or 1MiB (default 1MiB); 0 (nothing logged: a flow that loses its standby \
             runs without one) in mirror mode only"
        }
        "services[].replay.methods" => {
            "a non-empty list of at most 16 distinct HTTP methods that may run twice, like \
             [GET, HEAD, OPTIONS] (the default); never POST, PUT, DELETE, PATCH or CONNECT; \
             reconnect mode with scope: http1 only"
        }
        "services[].replay.methods[]" => {
            "an HTTP method: 1 to 32 token characters (RFC 9110 §5.6.2), case-sensitive, like GET"
        }
        "services[].replay.exclude_headers" => {
            "a list of at most 4 distinct header names, like [Date, Server] (the default), not \
             Content-Length or Transfer-Encoding; reconnect mode with scope: http1 only"
        }
        "services[].replay.exclude_headers[]" => {
            "a header name: 1 to 32 token characters (RFC 9110 §5.1), like Date"
        }
        "services[].replay.connect_timeout" => POSITIVE_DURATION,
        "services[].replay.fin_hold" => {
            "a duration greater than zero, best at least the suspect burst's (health.suspect_interval \
             × (suspect_burst − 1) + timeout), like 100ms (the default); reconnect mode only"
        }
        "services[].replay.parallel" => "replays in progress per worker, 1..=4096 (default 64)",
        "services[].replicas" => "a non-empty list of { name, address }",
        "services[].replicas[]" => "a mapping { name, address }",
        "services[].replicas[].address" => {
            "a unicast IPv4 address on the inside subnet (or any, with ports.inside.gateway)"
        }
        "services[].health" => {
            "a mapping with probe_ports, interval, timeout, fall, rise, suspect_burst, suspect_interval, ack_lag, output_lag"
        }
        "services[].health.probe_ports" => {
            "a non-empty list of distinct port numbers 1..=65535 ([] for no probing: forward mode only)"
        }
        "services[].health.probe_ports[]" => TCP_PORT,
        "timeouts" => "a mapping with syn, established, linger, synack_wait, arp_refresh",
        "timeouts.linger" => "a duration like 2s, or 0",
        "limits" => {
            "a mapping with flows_per_worker, hold_bytes_per_flow, hold_bytes_total, hold_segments_total, mbufs, mbuf_cache, control_rate, control_burst, syn_backlog, replay_bytes_total"
        }
        "limits.flows_per_worker" => "1..=268435456",
        "limits.hold_bytes_per_flow" => {
            "a size of 1 byte to 4GiB - 1 (like 262144 or 256KiB), at most limits.hold_bytes_total"
        }
        "limits.hold_bytes_total" => "a size greater than zero, like 268435456 or 256MiB",
        "limits.replay_bytes_total" => {
            "a size greater than zero, like 256MiB (the default): client logs of all workers \
             together, each worker an equal share"
        }
        "limits.hold_segments_total" => "1..=4294967295, below limits.mbufs",
        "limits.mbufs" => "enough mbufs for every ring, cache and the hold queue (see the message)",
        "limits.mbuf_cache" => "0..=512, at most limits.mbufs / 1.5",
        "limits.control_rate" => "frames a second per worker, 1..=1000000 (default 4000)",
        "limits.control_burst" => "frames, 1..=4096 (default 256)",
        "limits.syn_backlog" => {
            "half-open flows per worker, 0..=limits.flows_per_worker (default 1024, or half of flows_per_worker)"
        }
        "management" => "a mapping with `socket`, `metrics` and `group`",
        "management.socket" => "an absolute path",
        "management.metrics" => "an address and port like 127.0.0.1:9450 or [::1]:9450, or off",
        "management.group" => {
            "a group name: 1 to 32 letters, digits, `.`, `_` or `-`, not starting with `-`"
        }
        "logging" => "a mapping with `format` and `level`",
        "logging.format" => "human, json, journald",
        "logging.level" => "error, warn, info, debug, trace",
        "ha" => {
            "a mapping with interface, local, peer, floating, heartbeat, dead_time, sync_batch, \
             sync_interval, sync_window, preferred"
        }
        "ha.interface" => {
            "the HA link's kernel interface: 1 to 15 characters, no `/`, `:` or whitespace, like ha0"
        }
        "ha.local" | "ha.peer" => {
            "a unicast IPv4 address and UDP port on the HA link, like 198.18.255.1:7788, on \
             neither data subnet; local and peer differ"
        }
        "ha.floating" => {
            "a list of the shared addresses besides the VIPs (the clients' next hop, the \
             replicas' gateway), each on the outside or the inside subnet, not a port's own"
        }
        "ha.floating[]" => "a unicast IPv4 address on the outside or the inside subnet",
        "ha.heartbeat" => "a duration greater than zero, like 10ms (the default)",
        "ha.dead_time" => "a duration of at least two heartbeats, like 30ms (the default)",
        "ha.sync_batch" => "records per datagram, 1..=5 (default 5: 1296 bytes)",
        "ha.sync_interval" => "a duration greater than zero and at most the heartbeat, like 1ms (the default)",
        "ha.sync_window" => "datagrams unacked at once, 1..=65536 (default 1024)",
        "ha.preferred" => "true or false (the default)",
        _ if in_port => match leaf {
            "device" => {
                "a PCI address like 0000:3b:00.0, or a virtual device name given to --vdev like net_af_packet0"
            }
            "address" => "a unicast IPv4 address with its prefix length, like 198.18.0.1/24",
            "gateway" => "a unicast IPv4 address on the port's subnet",
            "queues" => "1..=1024",
            "rx_descriptors" | "tx_descriptors" => "a power of two 64..=32768",
            "mtu" => "68..=2030 (a frame must fit one 2048-byte mbuf; jumbo frames are not supported)",
            _ => return None,
        },
        _ if in_health => match leaf {
            "interval" | "suspect_interval" => POSITIVE_DURATION,
            "timeout" => "a duration greater than zero and at most `interval`",
            "fall" | "rise" | "suspect_burst" => "1..=1000",
            "ack_lag" | "output_lag" => DURATION_OR_OFF,
            _ => return None,
        },
        _ if pattern.starts_with("timeouts.") => POSITIVE_DURATION,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::allowed;

    #[test]
    fn every_leaf_is_described() {
        for p in [
            "ports.inside.mtu",
            "ports.outside.device",
            "services[].health.timeout",
            "services[].replay.fin_hold",
            "services[].replay.methods[]",
            "limits.replay_bytes_total",
            "timeouts.syn",
            "services[].replicas[].name",
            "workers[].queue",
            "ha.floating[]",
            "ha.sync_window",
        ] {
            assert!(allowed(p).is_some(), "{p}");
        }
        assert!(allowed("nonsense.field").is_none());
    }
}
