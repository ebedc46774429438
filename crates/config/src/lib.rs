//! Tandem profiles: the YAML file that says how an appliance runs (EAL arguments, lcores,
//! ports and queues, services and their replicas, health checking, timers, budgets,
//! management), read into typed structs and validated before anything starts.
//!
//! `tandem check --profile FILE` is [`load`] and nothing else: no DPDK, no root. Every
//! error names the file, line, column and field and says what the field allows:
//!
//! ```text
//! configs/bad.yaml:14:17: services[0].health.interval: must be greater than zero (allowed: a duration greater than zero, like 100us, 10ms, 1.5s, 2m)
//! ```
//!
//! How errors find their place: serde-saphyr reports the line and column of what it could
//! not deserialise (an unknown key, a value of the wrong type); validation afterwards
//! knows the field path of what it rejects. A tree of the document with the position of
//! every key and node (built from the YAML parser's events) turns one into the other, so
//! both kinds of error carry both. Unknown keys are errors everywhere (`deny_unknown_fields`).
//!
//! The other way, [`Profile::to_yaml`] writes a profile as YAML that [`parse`] reads back
//! (how `tandem-bench profile` makes the benchmarks' and the lab tests' profiles).
//!
//! The schema, with defaults (`configs/lab.yaml` and `configs/appliance-2port.yaml` are
//! commented examples):
//!
//! ```yaml
//! eal: { args: [...] }                # rte_eal_init arguments after argv[0]
//! lcores: { control: 0, workers: [1], affinity: auto }   # or affinity: hand-off
//! ports:
//!   outside: { device: net_af_packet0, address: 198.18.0.1/24, gateway: ~,
//!              queues: 1, rx_descriptors: 1024, tx_descriptors: 1024, mtu: 1500 }
//!   inside:  { ... }
//! workers: [{ lcore: 1, port: outside, queue: 0 }, ...]   # optional; derived otherwise
//! services:
//!   - name: lab
//!     vip: 198.18.0.100
//!     port: any                       # or 443, or 8000-8100
//!     mode: mirror                    # or reconnect, or forward (benchmarks)
//!     copies: 2                       # mirror: 1..=3 and <= replicas; reconnect, forward: 1
//!     selection: spread               # or ordered
//!     verify: true                    # mirror: a standby takes over only where checked
//!     replay:                         # reconnect mode; mirror: new standbys (not forward)
//!       scope: stream                 # or http1 (reconnect only): from the oldest request
//!                                     # not fully answered
//!       limit: 1MiB                   # client bytes logged per flow (mirror: 0 = none)
//!       methods: [GET, HEAD, OPTIONS] # http1: requests that may be replayed
//!       exclude_headers: [Date, Server]   # http1: answer lines not compared
//!       connect_timeout: 50ms         # the new replica's SYN-ACK
//!       fin_hold: 100ms               # reconnect: an early FIN or RST held for health
//!       parallel: 64                  # replays in progress per worker
//!     replicas: [{ name: primary, address: 198.19.0.11 }, ...]   # drain: true: no new flows
//!     health: { probe_ports: [7000], interval: 10ms, timeout: 10ms, fall: 3, rise: 2,
//!               suspect_burst: 3, suspect_interval: 1ms, ack_lag: 50ms, output_lag: 0 }
//!     no_replica: reset               # or drop: what a SYN gets while no replica is live
//! timeouts: { syn: 5s, established: 300s, linger: 2s, synack_wait: 2ms, arp_refresh: 30s }
//! limits: { flows_per_worker: 1048576, hold_bytes_per_flow: 256KiB,
//!           hold_bytes_total: 256MiB, hold_segments_total: 131072,
//!           mbufs: 262143, mbuf_cache: 256, control_rate: 4000, control_burst: 256,
//!           syn_backlog: 1024,                  # half-open flows before SYN cookies
//!           replay_bytes_total: 256MiB }        # replay logs, all workers together
//! management: { socket: /run/tandem/tandem.sock, metrics: 127.0.0.1:9450,  # or off
//!               group: tandem }                 # optional: may use the socket besides root
//! logging: { format: human, level: info }
//! ha:                                   # optional: one appliance of a pair (DESIGN §6b)
//!   interface: ha0                      # the HA link's kernel interface
//!   local: 198.18.255.1:7788            # this appliance on it (its node id)
//!   peer: 198.18.255.2:7788             # the other appliance
//!   floating: [198.18.0.254, 198.19.0.254]   # move with the role, besides the VIPs
//!   heartbeat: 10ms                     # also the active's announcement on the data ports
//!   dead_time: 30ms                     # a peer silent this long on both is dead
//!   sync_batch: 5                       # records per datagram (1..=5)
//!   sync_interval: 1ms                  # longest wait for a datagram to fill
//!   sync_window: 1024                   # datagrams unacked; beyond, records are lost
//!                                       # (counted) and a bulk resync follows
//!   preferred: false                    # wins the election when both start
//! ```
//!
//! Durations take a unit (`10ms`; `0` alone where zero means off). Sizes in bytes are a
//! whole number, or one with a binary unit: `262144`, `256KiB`, `1MiB`, `2GiB` (`KB`,
//! `MB`, `GB` are refused as ambiguous).
//!
//! ## Rules
//!
//! Besides the types (unknown keys, wrong types and out-of-range numbers are rejected
//! while deserialising), validation checks, by section:
//!
//! - `lcores`: ids 0..=1023; at least one worker; no worker twice, none the control lcore;
//!   when the EAL arguments name the lcores (`-l`, `-c`, `--lcores`), every lcore of the
//!   profile is among them and the control lcore is the EAL main lcore.
//! - `ports`: the device is a PCI address or a `--vdev` name; a vdev has its `--vdev`
//!   argument; a PCI device is not excluded by `--no-pci`, the allow-list or the
//!   block-list; the two ports use different devices. Addresses are unicast, not the
//!   network or broadcast address of their subnet; the subnets do not overlap; a gateway
//!   is on its port's subnet. Queues 1..=1024, rings a power of two 64..=32768, MTU
//!   68..=2030 (a frame in one 2048-byte mbuf).
//! - `workers` (explicit): each lcore is a worker lcore, each queue exists, no queue is
//!   polled twice, every queue is polled, every worker polls something. Derived: no more
//!   workers than receive queues.
//! - `services`: unique names; the VIP is unicast, not a port address, not on the inside
//!   subnet, not a replica; no two services share a VIP port; the pool is non-empty with
//!   unique names and addresses, each replica on the inside subnet (or anywhere when the
//!   inside port has a gateway), never on the outside subnet; `copies` 1..=3 and at most
//!   the pool in mirror mode, 1 in reconnect and forward mode; probe ports given when the
//!   service port is `any` or a range, and `probe_ports: []` (no probing) only in forward
//!   mode; intervals and counts greater than zero; the probe timeout at
//!   most the interval.
//! - `services[].replay`: none in forward mode (it replays nothing). In mirror mode, which
//!   replays a flow's whole stream to bring up a new standby, `scope` is `stream` and
//!   `methods`, `exclude_headers` and `fin_hold` are refused; in reconnect mode `methods`
//!   and `exclude_headers` only with `scope: http1`. `limit` greater than zero (0, no
//!   log, in mirror mode only), below 2GiB (a log spans sequence numbers) and at most one
//!   worker's share of `limits.replay_bytes_total` (a default limit that does not fit is
//!   reported there).
//!   `methods`: 1 to 16 distinct HTTP methods (RFC 9110 tokens of at most 32 characters,
//!   case-sensitive, a standard one in lower case refused), never `POST`, `PATCH` (not
//!   idempotent), `PUT`, `DELETE` (idempotent in effect, not in their answers) or
//!   `CONNECT` (a tunnel). `exclude_headers`: at most 4 distinct header names (tokens of
//!   at most 32 characters, compared without case), never `Content-Length` or
//!   `Transfer-Encoding` (they frame the body). `connect_timeout` and `fin_hold` greater
//!   than zero; `parallel` 1..=4096. Not checked but documented: a `fin_hold` shorter
//!   than the service's suspect burst ([`Health::suspect_decision_time`]) passes on the
//!   FIN of a replica that health would have failed over.
//! - `timeouts`: greater than zero (`linger` may be 0).
//! - `limits`: budgets greater than zero, per-flow at most total (`hold_bytes_per_flow`
//!   below 4GiB); the mbuf pool holds every ring, every cache and the hold queue;
//!   `control_rate` 1..=1000000 and `control_burst` 1..=4096; `syn_backlog` at most
//!   `flows_per_worker` (0: a cookie for every SYN).
//! - `ha`: the interface a Linux interface name (1 to 15 characters, no `/`, `:` or
//!   whitespace); `local` and `peer` unicast address:port (port not 0), different
//!   addresses, on neither data subnet; each floating address unicast, on the outside or
//!   the inside subnet, not a port's own address, not a VIP (VIPs always float), listed
//!   once; `heartbeat` greater than zero, `dead_time` at least two heartbeats,
//!   `sync_interval` greater than zero and at most the heartbeat, `sync_batch` 1..=5
//!   (one 1500-byte datagram), `sync_window` 1..=65536.
//! - `management`: an absolute socket path; metrics `off` or an address:port; the group,
//!   when given, a portable group name (whether it exists is checked by `tandem run`, on
//!   the host it runs on).

use std::path::Path;

mod duration;
mod eal;
mod error;
mod locate;
mod net;
mod profile;
mod raw;
mod schema;
mod size;
mod validate;
mod write;

/// Whether `name` may name a service or a replica: 1 to 32 ASCII letters, digits, `-`
/// and `_` (names appear in metrics labels and in `service/replica`).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= schema::MAX_NAME
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

pub use duration::{format_duration, parse_duration};
pub use error::{ConfigError, Diagnostic};
pub use net::{Device, Ipv4Cidr, PciAddress, ServicePort};
pub use profile::{
    Affinity, Eal, Ha, Health, Lcores, Limits, LogFormat, LogLevel, Logging, Management, Mode,
    NoReplica, Port, PortRole, Ports, Profile, Replay, ReplayScope, Replica, Selection, Service,
    Timeouts, WorkerAssignment, WorkerPlan,
};
pub use schema::HANDOFF_RING_FRAMES;
pub use size::{format_size, parse_size};
pub use write::WriteError;

use locate::{FieldPath, Hit, Pos, SourceMap};
use serde_saphyr::Error as YamlError;

/// Reads and validates the profile at `path`. Errors name `path` as given.
///
/// # Errors
///
/// [`ConfigError::Read`] when the file cannot be read; otherwise as [`parse`].
pub fn load(path: &Path) -> Result<Profile, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&path.display().to_string(), &text)
}

/// Parses and validates a profile from `text`; `source_name` is the file name that errors
/// carry.
///
/// # Errors
///
/// [`ConfigError::Syntax`] for malformed YAML, [`ConfigError::Schema`] for the first
/// unknown key, missing key or wrongly typed value, and [`ConfigError::Invalid`] with every
/// problem validation found.
pub fn parse(source_name: &str, text: &str) -> Result<Profile, ConfigError> {
    let raw: raw::RawProfile = match serde_saphyr::from_str(text) {
        Ok(raw) => raw,
        Err(err) => return Err(from_yaml_error(source_name, text, &err)),
    };
    validate::validate(raw).map_err(|problems| {
        let map = SourceMap::build(text);
        let mut diagnostics: Vec<Diagnostic> = problems
            .into_iter()
            .map(|p| {
                let pos = map.position_of(&p.path);
                Diagnostic {
                    file: source_name.to_owned(),
                    line: pos.line,
                    column: pos.column,
                    field: p.path.to_string(),
                    message: p.message,
                    allowed: p.allowed,
                }
            })
            .collect();
        diagnostics.sort_by_key(|d| (d.line, d.column));
        ConfigError::Invalid(diagnostics)
    })
}

/// Turns a deserialiser error into a diagnostic with the field path at its position.
fn from_yaml_error(source_name: &str, text: &str, err: &YamlError) -> ConfigError {
    let to_pos = |l: serde_saphyr::Location| Pos {
        line: u32::try_from(l.line()).unwrap_or(u32::MAX).max(1),
        column: u32::try_from(l.column()).unwrap_or(u32::MAX).max(1),
    };
    // An error inside a value reached through an alias (`*name`) is reported where the
    // anchored value is defined; name the place that uses it instead, where the path is.
    let mut inner = err.without_snippet();
    let mut alias_use: Option<Pos> = None;
    while let YamlError::AliasError {
        error, locations, ..
    } = inner
    {
        if alias_use.is_none() {
            alias_use = locations.primary_location().map(to_pos);
        }
        inner = error.without_snippet();
    }
    let map = SourceMap::build(text);
    let key_error = matches!(
        inner,
        YamlError::SerdeUnknownField { .. } | YamlError::DuplicateMappingKey { .. }
    );
    let (mut pos, mut path, hit) = match alias_use {
        Some(at) => {
            let (mut path, _) = map.path_at(at, false);
            if let YamlError::SerdeUnknownField { field, .. } = inner {
                path = path.key(field);
            }
            (at, path, Hit::Node)
        }
        None => {
            let pos = inner
                .location()
                .or_else(|| err.location())
                .map(to_pos)
                .unwrap_or(Pos::START);
            let (path, hit) = map.path_at(pos, key_error);
            (pos, path, hit)
        }
    };
    let allowed_here = schema::allowed_at;
    let (schema_error, message, allowed) = match inner {
        YamlError::SerdeUnknownField {
            field, expected, ..
        } => (
            true,
            format!("unknown key `{field}`"),
            if expected.is_empty() {
                "no keys here".to_owned()
            } else {
                expected.join(", ")
            },
        ),
        YamlError::SerdeMissingField { field, .. } => {
            // serde-saphyr places this error on the mapping's last key; the mapping
            // itself (its key, or its first line) is the place to name.
            if hit == Hit::Key {
                path.0.pop();
            }
            if alias_use.is_none() {
                pos = map.position_of(&path);
            }
            path = path.key(field);
            (
                true,
                format!("missing required key `{field}`"),
                allowed_here(&path),
            )
        }
        YamlError::SerdeUnknownVariant {
            variant, expected, ..
        } => (
            true,
            format!("unknown value `{variant}`"),
            expected.join(", "),
        ),
        YamlError::SerdeInvalidType {
            unexpected,
            expected,
            ..
        }
        | YamlError::SerdeInvalidValue {
            unexpected,
            expected,
            ..
        } => (
            true,
            format!("wrong type: found {unexpected}, expected {expected}"),
            allowed_here(&path),
        ),
        YamlError::InvalidScalar { ty, .. } => {
            let what = match *ty {
                "u8" | "u16" | "u32" | "u64" | "i8" | "i16" | "i32" | "i64" => {
                    format!("a whole number that fits {ty}")
                }
                other => other.to_owned(),
            };
            let message = match map.scalar_at(pos) {
                Some(s) => format!("`{s}` is not {what}"),
                None => format!("not {what}"),
            };
            (true, message, allowed_here(&path))
        }
        YamlError::Unexpected { expected, .. } => {
            let expected = match *expected {
                "sequence start" => "a list",
                "mapping start" => "a mapping",
                "string scalar" => "a single value",
                other => other,
            };
            (
                true,
                format!("wrong type: expected {expected}"),
                allowed_here(&path),
            )
        }
        YamlError::DuplicateMappingKey { key, .. } => (
            true,
            match key {
                Some(k) => format!("duplicate key `{k}`"),
                None => "duplicate key".to_owned(),
            },
            "each key once per mapping".to_owned(),
        ),
        YamlError::Eof { .. } => (
            true,
            "the profile is empty".to_owned(),
            allowed_here(&FieldPath::root()),
        ),
        other => {
            use serde_saphyr::MessageFormatter;
            let message: String = serde_saphyr::UserMessageFormatter
                .format_message(other)
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            // Errors of the YAML text itself; the rest are values that do not fit.
            let syntax = matches!(
                other,
                YamlError::ExternalMessage { .. }
                    | YamlError::IOError { .. }
                    | YamlError::MultipleDocuments { .. }
                    | YamlError::UnknownAnchor { .. }
                    | YamlError::IndentationError { .. }
                    | YamlError::ContainerEndMismatch { .. }
                    | YamlError::UnexpectedContainerEndWhileReadingKeyNode { .. }
                    | YamlError::UnexpectedSequenceEnd { .. }
                    | YamlError::UnexpectedMappingEnd { .. }
                    | YamlError::FoldedBlockScalarMustIndentContent { .. }
                    | YamlError::Budget { .. }
            );
            if syntax {
                (false, message, "well-formed YAML".to_owned())
            } else {
                (true, message, allowed_here(&path))
            }
        }
    };
    if !schema_error {
        // Where the text broke, the item being read is a guess; the key holding it is not.
        while matches!(path.0.last(), Some(locate::Seg::Index(_))) {
            path.0.pop();
        }
    }
    let diagnostic = Diagnostic {
        file: source_name.to_owned(),
        line: pos.line,
        column: pos.column,
        field: path.to_string(),
        message,
        allowed,
    };
    if schema_error {
        ConfigError::Schema(diagnostic)
    } else {
        ConfigError::Syntax(diagnostic)
    }
}
