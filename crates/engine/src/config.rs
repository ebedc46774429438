//! The engine's view of a profile: addresses, services and their replica pools, limits
//! and timers. All times are nanoseconds on the caller's clock.

use std::net::Ipv4Addr;

use tandem_wire::MacAddr;

use crate::exchange::Http1Rules;
use crate::hash::HashKey;
use crate::replica::ReplicaId;

/// Which TCP ports of a VIP a service covers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ServicePort {
    /// Every port.
    Any,
    /// One port.
    Port(u16),
    /// An inclusive range `first..=last`: two comparisons per lookup, whatever its size.
    Range(u16, u16),
}

impl ServicePort {
    /// Whether `port` is covered.
    #[inline]
    pub fn covers(self, port: u16) -> bool {
        match self {
            ServicePort::Any => true,
            ServicePort::Port(p) => p == port,
            ServicePort::Range(first, last) => first <= port && port <= last,
        }
    }
}

/// What a SYN for a service with no live replica gets (`services[].no_replica`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum OnNoReplica {
    /// A RST+ACK as a host with no listener sends (RFC 9293 §3.10.7.1), so the client
    /// learns at once instead of after its SYN retransmissions.
    #[default]
    Reset,
    /// Nothing: the client retransmits its SYN until a replica comes back or it gives up.
    Drop,
}

/// Most replicas in one service's pool (room is reserved for them: `tandem add` does
/// not allocate on a worker).
pub const MAX_POOL: usize = 64;

/// A service: a virtual address and port mirrored to a pool of replicas.
#[derive(Clone, Debug)]
pub struct Service {
    /// Virtual address the clients connect to.
    pub vip: Ipv4Addr,
    /// Port(s) served.
    pub port: ServicePort,
    /// The pool, in preference order.
    pub replicas: Vec<ReplicaId>,
    /// Replicas per flow (1 to [`crate::MAX_COPIES`]).
    pub copies: usize,
    /// New flows take the first live replicas in pool order (a fixed primary and backup,
    /// the others standing in while one of them is down); otherwise the first replica
    /// rotates from flow to flow, spreading the load.
    pub ordered: bool,
    /// Forward mode (benchmarks, off by default): any segment to the VIP adopts a flow
    /// onto one live replica and is passed through with NAT only, no translation and no
    /// protection (see [`crate::engine`]). `copies` is 1.
    pub forward: bool,
    /// This service's [`EngineConfig::ack_lag_ns`] (`None`: the engine's).
    pub ack_lag_ns: Option<u64>,
    /// This service's [`EngineConfig::output_lag_ns`] (`None`: the engine's).
    pub output_lag_ns: Option<u64>,
    /// Verified standbys (DESIGN §3.12, [`crate::verify`]): a standby takes over only
    /// where its output was checked equal to the active's. Off: replicas are trusted.
    pub verify: bool,
    /// Reconnect mode (DESIGN §2, [`crate::replay`]): the flow's client bytes are logged
    /// and, when its replica dies, replayed into a new connection to a live one, whose
    /// answer is checked against what the client has before it goes on. `None`: no
    /// replay. `copies` is 1.
    pub replay: Option<ReplayConfig>,
    /// Mirror mode's new standbys for running flows (DESIGN §5, reintegration): the
    /// flow's client bytes since the SYN are logged up to `limit`, and a flow that lost a
    /// standby gets a new one by replay when a replica of the pool is up and not in the
    /// flow (`connect_timeout_ns` and `parallel` as in reconnect mode; `fin_hold_ns` is not
    /// used). `None`: a flow that loses a standby runs unprotected until it ends.
    pub reprotect: Option<ReplayConfig>,
    /// Reconnect mode with `replay: http1` ([`crate::exchange`]): the replay starts at
    /// the oldest request not fully answered, only idempotent requests are replayed, and
    /// the check leaves the excluded header lines out. `None`: the whole stream
    /// (`replay: stream`).
    pub http1: Option<Http1Rules>,
    /// What a SYN gets when no replica of the pool is live (counted either way).
    pub no_replica: OnNoReplica,
}

/// How a reconnect-mode service replays (`services[].replay` in a profile).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplayConfig {
    /// Client bytes logged per flow; a flow past it cannot be replayed (unprotected).
    pub limit: u32,
    /// How long the new replica has to answer Tandem's SYN.
    pub connect_timeout_ns: u64,
    /// Replays in progress per worker, at most; a failure beyond is a RST.
    pub parallel: usize,
    /// How long the last replica's FIN is held before it goes to the client: if health
    /// finds the replica dead meanwhile, the flow is replayed instead (0: not held).
    pub fin_hold_ns: u64,
}

impl Default for ReplayConfig {
    fn default() -> ReplayConfig {
        ReplayConfig {
            limit: 1 << 20,
            connect_timeout_ns: 50_000_000,
            parallel: 64,
            fin_hold_ns: 100_000_000,
        }
    }
}

impl Service {
    /// The ack-lag and output-lag thresholds of this service's flows under `cfg`.
    pub fn lags(&self, cfg: &EngineConfig) -> (u64, u64) {
        (
            self.ack_lag_ns.unwrap_or(cfg.ack_lag_ns),
            self.output_lag_ns.unwrap_or(cfg.output_lag_ns),
        )
    }

    /// How this service's flows log their client bytes: reconnect mode's replay, or
    /// mirror mode's new standbys. `None`: no log.
    #[inline]
    pub fn log_config(&self) -> Option<ReplayConfig> {
        self.replay.or(self.reprotect)
    }
}

/// A flow's timers, fixed when the flow is created: a reload that changes them reaches
/// the flows created after it only (`Engine::set_timeouts`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowTimeouts {
    /// [`EngineConfig::synack_wait_ns`].
    pub synack_wait_ns: u64,
    /// [`EngineConfig::syn_timeout_ns`].
    pub syn_ns: u64,
    /// [`EngineConfig::idle_timeout_ns`].
    pub idle_ns: u64,
    /// [`EngineConfig::linger_ns`].
    pub linger_ns: u64,
}

/// Engine settings.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// MAC of the outside port (source of frames to clients).
    pub outside_mac: MacAddr,
    /// MAC of the inside port (source of frames to replicas).
    pub inside_mac: MacAddr,
    /// The appliance's own addresses: traffic to them goes to the control core.
    pub own_addrs: Vec<Ipv4Addr>,
    /// Services.
    pub services: Vec<Service>,
    /// Flow table capacity (fixed at start).
    pub max_flows: usize,
    /// Held bytes per flow leg before the oldest are released.
    pub hold_bytes_per_flow: u32,
    /// Held bytes per worker before the oldest of a leg are released.
    pub hold_bytes_total: u64,
    /// Held segments per worker (the hold pool's slots).
    pub hold_segments: usize,
    /// How long the primary's SYN-ACK waits for the other replicas' before it is forwarded.
    pub synack_wait_ns: u64,
    /// Idle timeout of a flow whose handshake has not completed.
    pub syn_timeout_ns: u64,
    /// Idle timeout of an established flow.
    pub idle_timeout_ns: u64,
    /// How long a closed flow lingers (to absorb retransmitted FINs and ACKs).
    pub linger_ns: u64,
    /// A replica whose acks lag the others' this long with data outstanding is signalled
    /// (0: off), for services that do not set their own.
    pub ack_lag_ns: u64,
    /// A replica whose output lags the others' this long is signalled (0: off), for
    /// services that do not set their own.
    pub output_lag_ns: u64,
    /// How long an unmatched FIN may wait for the other replicas' before it is signalled.
    pub fin_grace_ns: u64,
    /// Most flows examined per background sweep step (timeouts); a step examines only
    /// as many as visit every flow once per [`sweep_cover_ns`](Self::sweep_cover_ns),
    /// for the time since the previous step.
    pub sweep_batch: usize,
    /// Least time between background sweep steps (a step runs on the first poll after
    /// it): `sweep_batch` per interval bounds the flows visited within the cover period.
    pub sweep_interval_ns: u64,
    /// Flows examined per `poll` while a requested failover sweep is running. Switching a
    /// flow costs ~100 ns: 512 keep a worker's pass near 50 µs, so its receive queues
    /// are served while a million flows are swept (perf/failover.sh).
    pub failover_sweep_batch: usize,
    /// Key of the client-endpoint hash (flow table, owner of a flow): random per start,
    /// the same for every worker ([`crate::hash`]).
    pub hash_key: HashKey,
    /// Half-open flows (a SYN seen, the client's ACK not yet) beyond which a new SYN is
    /// answered with a SYN cookie instead of a flow (§3.11; [`crate::cookie`]). 0: every
    /// SYN; above `max_flows`: never.
    pub syn_backlog: usize,
    /// Client-log bytes per worker for every replaying flow together (allocated at
    /// start, only when a service replays).
    pub replay_bytes_total: u64,
    /// The MSS a SYN cookie's SYN-ACK announces to the client for the replicas: the
    /// inside port's MTU less 40.
    pub syn_cookie_mss: u16,
    /// Flow-state export to the appliance peer ([`crate::sync`]): `None` for an appliance
    /// that is not one of a pair, whose engine then makes no records at all.
    pub sync: Option<SyncExport>,
}

/// How an engine of a pair exports its flows' state ([`crate::Engine::drain_sync`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SyncExport {
    /// Records waiting for the worker to take them (allocated at start). A record due
    /// when it is full is dropped and counted (`sync_outbox_drops`): the pair's bulk
    /// resync covers it.
    pub outbox: usize,
    /// Least time between two periodic refreshes of one flow (a flow that saw no segment
    /// since its last record gets none).
    pub refresh_ns: u64,
    /// Most refreshes queued per `poll`.
    pub refresh_per_poll: usize,
}

impl Default for SyncExport {
    fn default() -> SyncExport {
        SyncExport {
            outbox: 4096,
            refresh_ns: 1_000_000_000,
            refresh_per_poll: 16,
        }
    }
}

impl EngineConfig {
    /// The flow timers of this configuration.
    pub fn flow_timeouts(&self) -> FlowTimeouts {
        FlowTimeouts {
            synack_wait_ns: self.synack_wait_ns,
            syn_ns: self.syn_timeout_ns,
            idle_ns: self.idle_timeout_ns,
            linger_ns: self.linger_ns,
        }
    }

    /// How often the background sweep means to visit every flow: half the shortest
    /// timeout it serves, so that a timeout T is acted on by 1.5 T at the latest (when
    /// `sweep_batch` per `sweep_interval_ns` is enough for the table; a million flows
    /// take longer). At least one interval.
    pub fn sweep_cover_ns(&self) -> u64 {
        let lags = self.services.iter().flat_map(|s| {
            let (a, o) = s.lags(self);
            [a, o]
        });
        let shortest = [
            self.syn_timeout_ns,
            self.idle_timeout_ns,
            self.linger_ns,
            self.ack_lag_ns,
            self.output_lag_ns,
            self.fin_grace_ns,
        ]
        .into_iter()
        .chain(lags)
        .filter(|&t| t > 0)
        .min()
        .unwrap_or(u64::MAX);
        (shortest / 2).max(self.sweep_interval_ns).max(1)
    }
}

impl Default for EngineConfig {
    fn default() -> EngineConfig {
        const MS: u64 = 1_000_000;
        EngineConfig {
            outside_mac: MacAddr([0x02, 0, 0, 0, 0, 0x01]),
            inside_mac: MacAddr([0x02, 0, 0, 0, 0, 0x02]),
            own_addrs: Vec::new(),
            services: Vec::new(),
            max_flows: 65536,
            hold_bytes_per_flow: 256 * 1024,
            hold_bytes_total: 64 * 1024 * 1024,
            hold_segments: 65536,
            synack_wait_ns: 2 * MS,
            syn_timeout_ns: 5_000 * MS,
            idle_timeout_ns: 300_000 * MS,
            linger_ns: 2_000 * MS,
            ack_lag_ns: 50 * MS,
            output_lag_ns: 0,
            fin_grace_ns: 20 * MS,
            sweep_batch: 64,
            sweep_interval_ns: 20_000,
            failover_sweep_batch: 512,
            hash_key: HashKey::random().unwrap_or_else(|_| HashKey::from_clock()),
            syn_backlog: 1024,
            syn_cookie_mss: 1460,
            replay_bytes_total: 256 << 20,
            sync: None,
        }
    }
}
