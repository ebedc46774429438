//! The validated profile: what the runtime reads after [`crate::load`] or [`crate::parse`]
//! accepted a file. Every value here has been checked (the rules are in the crate
//! documentation); defaults are filled in.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::net::{Device, Ipv4Cidr, ServicePort};
use crate::schema;

/// A whole appliance profile.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    /// EAL arguments.
    pub eal: Eal,
    /// Which lcore runs the control plane and which run workers.
    pub lcores: Lcores,
    /// The two DPDK ports.
    pub ports: Ports,
    /// Which worker lcore polls which receive queue of which port: the explicit `workers`
    /// list of the profile, or the mapping derived from `lcores.workers` (see
    /// [`Profile::worker_plan`]). Every receive queue of both ports appears exactly once.
    pub workers: Vec<WorkerAssignment>,
    /// The services, in profile order.
    pub services: Vec<Service>,
    /// Flow and neighbour timers.
    pub timeouts: Timeouts,
    /// Table sizes and memory budgets.
    pub limits: Limits,
    /// The management interface.
    pub management: Management,
    /// Log output.
    pub logging: Logging,
    /// The appliance pair (DESIGN §6b); `None`: a lone appliance.
    pub ha: Option<Ha>,
}

/// Arguments for `rte_eal_init`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Eal {
    /// Passed verbatim after `argv[0]`.
    pub args: Vec<String>,
}

/// The lcore plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lcores {
    /// The lcore of the control plane (ARP, health probes, failover, management). It is the
    /// EAL main lcore: the thread that called `rte_eal_init`.
    pub control: u32,
    /// Worker lcores, in profile order; the index in this list is the worker's id.
    pub workers: Vec<u32>,
    /// How both directions of a flow reach the worker that owns it.
    pub affinity: Affinity,
}

/// How both directions of a flow reach their worker (DESIGN §4; `tandem_runtime::affinity`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Affinity {
    /// The ports' RSS on the client's fields where both ports can and every worker polls
    /// the same queue index on both; hand-off rings otherwise.
    #[default]
    Auto,
    /// Always the hand-off rings, whatever the ports can do (for a NIC whose hash on
    /// chosen fields does not send both directions to one queue).
    HandOff,
}

impl std::fmt::Display for Affinity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Affinity::Auto => "auto",
            Affinity::HandOff => "hand-off",
        })
    }
}

/// Which side of the appliance a port is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PortRole {
    /// Towards the clients (or the router in front of them); VIPs are answered here.
    Outside,
    /// Towards the replicas.
    Inside,
}

impl PortRole {
    /// Both roles, outside first.
    pub const ALL: [PortRole; 2] = [PortRole::Outside, PortRole::Inside];

    /// The role's name as written in a profile.
    pub fn as_str(&self) -> &'static str {
        match self {
            PortRole::Outside => "outside",
            PortRole::Inside => "inside",
        }
    }
}

impl std::fmt::Display for PortRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The two ports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ports {
    /// The clients' side.
    pub outside: Port,
    /// The replicas' side.
    pub inside: Port,
}

impl Ports {
    /// The port of a role.
    pub fn get(&self, role: PortRole) -> &Port {
        match role {
            PortRole::Outside => &self.outside,
            PortRole::Inside => &self.inside,
        }
    }
}

/// One DPDK port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Port {
    /// The DPDK device.
    pub device: Device,
    /// The appliance's own address and subnet on this port; it answers ARP and ICMP echo
    /// for it, and sources health probes (inside) from it.
    pub address: Ipv4Cidr,
    /// Next hop for destinations off the subnet: on `outside`, clients behind a router;
    /// on `inside`, replicas on other subnets. `None`: only the subnet is reachable.
    pub gateway: Option<Ipv4Addr>,
    /// Receive queues (RSS spreads flows over them). Transmit queues are not configured
    /// here: every worker gets its own on each port ([`Profile::tx_queues_per_port`]).
    pub queues: u16,
    /// Receive ring size per queue.
    pub rx_descriptors: u16,
    /// Transmit ring size per queue.
    pub tx_descriptors: u16,
    /// IP MTU of the port.
    pub mtu: u16,
}

impl Port {
    /// A port with the schema's defaults: no gateway, one receive queue, rings of 1024,
    /// MTU 1500.
    pub fn new(device: Device, address: Ipv4Cidr) -> Port {
        Port {
            device,
            address,
            gateway: None,
            queues: schema::QUEUES,
            rx_descriptors: schema::DESCRIPTORS,
            tx_descriptors: schema::DESCRIPTORS,
            mtu: schema::MTU,
        }
    }

    /// The next hop for `destination`: itself on the subnet, else the gateway (if any).
    pub fn next_hop(&self, destination: Ipv4Addr) -> Option<Ipv4Addr> {
        if self.address.contains(destination) {
            Some(destination)
        } else {
            self.gateway
        }
    }
}

/// One receive queue polled by one worker lcore.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WorkerAssignment {
    /// The worker lcore that polls the queue.
    pub lcore: u32,
    /// The port of the queue.
    pub port: PortRole,
    /// The receive queue index, below the port's `queues`.
    pub queue: u16,
}

impl WorkerAssignment {
    /// The assignment a profile without a `workers` list gets: receive queue i (outside
    /// queues first, then inside) goes to worker lcore i mod W. With as many workers as
    /// queues per port, worker k polls queue k of both ports; with twice as many, each
    /// worker polls one queue. Empty without workers.
    pub fn derived(workers: &[u32], ports: &Ports) -> Vec<WorkerAssignment> {
        if workers.is_empty() {
            return Vec::new();
        }
        PortRole::ALL
            .into_iter()
            .flat_map(|port| (0..ports.get(port).queues).map(move |queue| (port, queue)))
            .enumerate()
            .map(|(i, (port, queue))| WorkerAssignment {
                lcore: workers[i % workers.len()],
                port,
                queue,
            })
            .collect()
    }
}

/// One worker as the runtime starts it: its lcore, the receive queues it polls and the
/// transmit queue it owns on every port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerPlan {
    /// Worker id: the index of its lcore in `lcores.workers`.
    pub id: usize,
    /// The lcore it runs on.
    pub lcore: u32,
    /// The (port, receive queue) pairs it polls, in profile order.
    pub rx: Vec<(PortRole, u16)>,
    /// Its transmit queue index, the same on both ports (equal to `id`).
    pub tx_queue: u16,
}

/// How a service protects its connections (DESIGN.md section 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Hot standby: every client segment goes to all the flow's replicas; one replica's
    /// output reaches the client; failover loses nothing. Replicas must be deterministic.
    #[default]
    Mirror,
    /// Cold standby: only the primary carries the flow; on failure Tandem opens a
    /// connection to a backup and replays the request in flight. Request/response
    /// protocols with re-executable requests only.
    Reconnect,
    /// Plain forwarding for benchmarks (off unless a profile asks for it): any segment
    /// to the VIP, SYN or not, adopts a flow onto one live replica and is passed with NAT
    /// only. Protects nothing: a connection on a replica that fails breaks. `copies` is
    /// 1; `health.probe_ports: []` turns probing off (only in this mode).
    Forward,
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Mirror => "mirror",
            Mode::Reconnect => "reconnect",
            Mode::Forward => "forward",
        })
    }
}

/// How a new flow picks its replicas from the live replicas of the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Selection {
    /// The first replica rotates from one new flow to the next over the live pool: load
    /// spreads over every replica.
    #[default]
    Spread,
    /// The first live replicas in pool order: the first listed is the primary of every
    /// flow, the next its backup; later ones stand in when an earlier one is down.
    Ordered,
}

/// What a client's SYN gets when no replica of its service is live (mirror and
/// reconnect mode; forward mode, for stateless benchmark generators, drops either way).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NoReplica {
    /// A RST, as from a closed port: the client fails at once ("connection refused").
    #[default]
    Reset,
    /// Nothing: the client retransmits its SYN until a replica is back or it gives up.
    Drop,
}

impl std::fmt::Display for NoReplica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NoReplica::Reset => "reset",
            NoReplica::Drop => "drop",
        })
    }
}

/// A virtual service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    /// Unique name, used in logs, metrics and management commands.
    pub name: String,
    /// The virtual address clients connect to.
    pub vip: Ipv4Addr,
    /// Which TCP ports of the VIP it takes.
    pub port: ServicePort,
    /// Mirror, reconnect or forward.
    pub mode: Mode,
    /// Replicas per flow: in mirror mode the active one plus its standbys (1..=3); in
    /// reconnect and forward mode 1.
    pub copies: u8,
    /// How a new flow picks its replicas from the pool.
    pub selection: Selection,
    /// Verified standbys (DESIGN §3.12, on by default): a standby takes over only where
    /// its output was checked equal to the active's; a flow whose standbys diverged
    /// gets a RST at failover, never a spliced stream. Off: replicas are trusted to be
    /// deterministic (the operator's risk). Forward mode protects nothing either way.
    pub verify: bool,
    /// How a flow is brought back by replaying its client's bytes to another replica:
    /// in reconnect mode at failover, in mirror mode to give a running flow a new
    /// standby (DESIGN §2, §5). Always present; the schema's defaults where the profile
    /// says nothing (in forward mode, which replays nothing, unused).
    pub replay: Replay,
    /// The pool, in profile order.
    pub replicas: Vec<Replica>,
    /// Health checking and failover triggers.
    pub health: Health,
    /// What a new connection's SYN gets while no replica is live (counted either way).
    pub no_replica: NoReplica,
}

impl Service {
    /// Whether this service takes TCP connections to `vip:port`.
    pub fn matches(&self, vip: Ipv4Addr, port: u16) -> bool {
        self.vip == vip && self.port.contains(port)
    }
}

/// Replay: the client bytes a flow logs, and how they are replayed to a new replica that
/// is then spliced into the flow (DESIGN §2 reconnect mode; §5 new standbys in mirror
/// mode). What a replay must reproduce is checked by digest against what the client
/// already received; a mismatch, a request that may not be replayed, or a log over its
/// limit gives a RST or an unprotected flow (counted), never a mixed stream.
///
/// Mirror mode uses `scope` (always [`ReplayScope::Stream`]), `limit`,
/// `connect_timeout` and `parallel`; the other fields keep their defaults there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replay {
    /// Which client bytes are kept and replayed.
    pub scope: ReplayScope,
    /// Client bytes kept per flow for a replay. A flow whose log would grow beyond it
    /// is unprotected (counted); with [`ReplayScope::Http1`] the log is trimmed as
    /// requests are answered, so the limit bounds the requests in flight.
    /// At most one worker's share of [`Limits::replay_bytes_total`]. 0 only in mirror
    /// mode: nothing logged, a flow that loses its standby runs without one.
    pub limit: u64,
    /// [`ReplayScope::Http1`]: the request methods that may be replayed, as written
    /// (methods are case-sensitive, RFC 9110 §9.1). A flow with any other request in
    /// flight at failover is not replayed (RST). Never `POST`, `PATCH` (not
    /// idempotent), `PUT`, `DELETE` (idempotent in effect, RFC 9110 §9.2.2, but not in
    /// their answers: a replayed DELETE answers 404 where the first one deleted, a
    /// replayed PUT 200 where the first created, and either undoes a write another
    /// client made in between) or `CONNECT` (a tunnel). Any other method named is
    /// taken as safe to run twice on the operator's word. At most
    /// [`Replay::MAX_METHODS`], each at most [`Replay::MAX_NAME_LEN`] bytes.
    pub methods: Vec<String>,
    /// [`ReplayScope::Http1`]: response header fields whose lines are left out of the
    /// comparison of the replayed answer with what the client received, because they
    /// differ between servers (`Date`, `Server`); matched case-insensitively. At most
    /// [`Replay::MAX_EXCLUDED_HEADERS`] of at most [`Replay::MAX_NAME_LEN`] bytes, never
    /// the framing fields `Content-Length` and `Transfer-Encoding`.
    pub exclude_headers: Vec<String>,
    /// How long the new replica has to answer the replay's SYN with a SYN-ACK.
    pub connect_timeout: Duration,
    /// Reconnect mode: a FIN or RST from the replica that ends a response early is held
    /// back from the client this long, until health decides whether the replica died
    /// (then the flow is replayed) or meant it (then it is passed on). Best at least
    /// [`Health::suspect_decision_time`] of the service: a shorter hold passes on the
    /// FIN of a replica that health would have failed over.
    pub fin_hold: Duration,
    /// Replays in progress at once per worker; a flow whose replica dies beyond them gets
    /// a RST (counted in `tandem_reconnects_refused_total`).
    pub parallel: u32,
}

impl Replay {
    /// Most `methods`.
    pub const MAX_METHODS: usize = schema::MAX_METHODS;
    /// Longest method name, and longest excluded header name (bytes).
    pub const MAX_NAME_LEN: usize = schema::MAX_METHOD_LEN;
    /// Most `exclude_headers`.
    pub const MAX_EXCLUDED_HEADERS: usize = schema::MAX_EXCLUDED_HEADERS;
}

impl Default for Replay {
    /// The schema's defaults.
    fn default() -> Replay {
        Replay {
            scope: ReplayScope::default(),
            limit: schema::REPLAY_LIMIT,
            methods: schema::REPLAY_METHODS
                .iter()
                .map(|&m| m.to_owned())
                .collect(),
            exclude_headers: schema::EXCLUDE_HEADERS
                .iter()
                .map(|&h| h.to_owned())
                .collect(),
            connect_timeout: schema::CONNECT_TIMEOUT,
            fin_hold: schema::FIN_HOLD,
            parallel: schema::REPLAY_PARALLEL,
        }
    }
}

/// Which client bytes a replay sends to the new replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ReplayScope {
    /// Every client byte since the SYN, up to the limit: any protocol, as long as the
    /// replica answers the same bytes the same way. The only scope of mirror mode.
    #[default]
    Stream,
    /// HTTP/1.x in plaintext: from the oldest request not fully answered; answered
    /// requests leave the log. Reconnect mode only.
    Http1,
}

impl std::fmt::Display for ReplayScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ReplayScope::Stream => "stream",
            ReplayScope::Http1 => "http1",
        })
    }
}

/// One replica server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replica {
    /// Unique name within the service.
    pub name: String,
    /// Its address, reached through the inside port.
    pub address: Ipv4Addr,
    /// Drained: it takes no new flows, its flows stay (as `tandem drain`; a reload
    /// that sets or clears it drains the replica or brings it back).
    pub drain: bool,
}

/// Health checking of a service's replicas (DESIGN.md section 5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    /// TCP ports probed with a SYN on every replica; a replica is up when each answers
    /// with a SYN-ACK. Empty only in forward mode: no probing, replicas are up unless
    /// the operator fails them.
    pub probe_ports: Vec<u16>,
    /// Time between probes of one replica.
    pub interval: Duration,
    /// How long a probe waits for its SYN-ACK; at most `interval`.
    pub timeout: Duration,
    /// Consecutive failed probes before a replica is declared down.
    pub fall: u32,
    /// Consecutive good probes before a down replica takes new flows again.
    pub rise: u32,
    /// Probes sent back to back when a worker reports a replica suspect.
    pub suspect_burst: u32,
    /// Gap between the probes of a suspect burst.
    pub suspect_interval: Duration,
    /// A replica whose acks trail the others' by more than this, while data is
    /// outstanding, is suspect. `None`: off.
    pub ack_lag: Option<Duration>,
    /// A standby replica whose output trails the active one's by more than this is
    /// suspect. `None`: off.
    pub output_lag: Option<Duration>,
}

impl Default for Health {
    /// The schema's defaults, without probe ports (no probing: forward mode only; a
    /// profile without `probe_ports` probes its service port).
    fn default() -> Health {
        Health {
            probe_ports: Vec::new(),
            interval: schema::INTERVAL,
            timeout: schema::INTERVAL,
            fall: schema::FALL,
            rise: schema::RISE,
            suspect_burst: schema::SUSPECT_BURST,
            suspect_interval: schema::SUSPECT_INTERVAL,
            ack_lag: Some(schema::ACK_LAG),
            output_lag: None,
        }
    }
}

impl Health {
    /// Worst-case time to declare a silent replica down by probing alone:
    /// `interval × (fall − 1) + timeout`.
    pub fn detection_time(&self) -> Duration {
        self.interval
            .saturating_mul(self.fall.saturating_sub(1))
            .saturating_add(self.timeout)
    }

    /// How long a suspect burst takes at most to decide, once a worker reported the
    /// replica suspect (an unmatched FIN or RST, ack lag): `suspect_interval ×
    /// (suspect_burst − 1) + timeout`, the last probe's deadline, plus however late the
    /// workers hand over what they received (control's health.rs). A RST to a probe (a
    /// process that died) decides sooner.
    pub fn suspect_decision_time(&self) -> Duration {
        self.suspect_interval
            .saturating_mul(self.suspect_burst.saturating_sub(1))
            .saturating_add(self.timeout)
    }
}

/// Flow and neighbour timers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Idle time after which a half-open flow (handshake not complete) is removed.
    pub syn: Duration,
    /// Idle time after which an established flow is removed.
    pub established: Duration,
    /// How long a flow stays after both directions closed, to absorb retransmitted FINs
    /// and the last ACK.
    pub linger: Duration,
    /// After a standby's SYN-ACK arrived, how long to wait for the primary's before the
    /// standby is made active.
    pub synack_wait: Duration,
    /// How often a neighbour (replica, gateway) entry is re-resolved with ARP.
    pub arp_refresh: Duration,
}

impl Default for Timeouts {
    /// The schema's defaults.
    fn default() -> Timeouts {
        Timeouts {
            syn: schema::SYN,
            established: schema::ESTABLISHED,
            linger: schema::LINGER,
            synack_wait: schema::SYNACK_WAIT,
            arp_refresh: schema::ARP_REFRESH,
        }
    }
}

/// Table sizes and memory budgets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Flow table capacity of each worker.
    pub flows_per_worker: u32,
    /// Bytes of suppressed standby output held for one flow.
    pub hold_bytes_per_flow: u32,
    /// Bytes held for all flows together.
    pub hold_bytes_total: u64,
    /// Segments (mbufs) held for all flows together.
    pub hold_segments_total: u32,
    /// Size of the packet buffer pool (mbufs); best a power of two minus one.
    pub mbufs: u32,
    /// Per-lcore mbuf cache of the pool.
    pub mbuf_cache: u32,
    /// Frames for the appliance itself (ARP requests, ICMP echo, anything to its
    /// addresses; not probe answers or ARP replies) each worker passes to the control
    /// core per second; the rest are dropped and counted.
    pub control_rate: u32,
    /// How many of them a worker passes at once (the rate limit's burst).
    pub control_burst: u32,
    /// Half-open flows per worker beyond which a new SYN is answered with a SYN cookie
    /// instead of a flow (DESIGN §3.11); 0: every SYN.
    pub syn_backlog: u32,
    /// Bytes of client logs kept for replay ([`Replay`]), for all flows of all workers
    /// together, as `hold_bytes_total`: each worker gets an equal share. A flow whose
    /// log finds its worker's share spent is unprotected (counted).
    pub replay_bytes_total: u64,
}

impl Default for Limits {
    /// The schema's defaults (`syn_backlog` as for the default `flows_per_worker`).
    fn default() -> Limits {
        Limits {
            flows_per_worker: schema::FLOWS_PER_WORKER,
            hold_bytes_per_flow: schema::HOLD_BYTES_PER_FLOW,
            hold_bytes_total: schema::HOLD_BYTES_TOTAL,
            hold_segments_total: schema::HOLD_SEGMENTS_TOTAL,
            mbufs: schema::MBUFS,
            mbuf_cache: schema::MBUF_CACHE,
            control_rate: schema::CONTROL_RATE,
            control_burst: schema::CONTROL_BURST,
            syn_backlog: schema::SYN_BACKLOG.min(schema::FLOWS_PER_WORKER / 2),
            replay_bytes_total: schema::REPLAY_BYTES_TOTAL,
        }
    }
}

/// The management interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Management {
    /// Unix socket of the command line (`tandem stats`, `drain`, ...).
    pub socket: PathBuf,
    /// Address of the Prometheus metrics listener; `None`: off.
    pub metrics: Option<SocketAddr>,
    /// A group whose members may use the socket besides root (resolved when the appliance
    /// starts, on its host); `None`: root only.
    pub group: Option<String>,
}

/// The appliance pair: the HA link and the election's and the sync's timing (DESIGN
/// §6b; `tandem_control::ha`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ha {
    /// The kernel interface of the HA link (the data ports belong to DPDK).
    pub interface: String,
    /// This appliance's address and UDP port on the HA link; the address is its node id.
    pub local: SocketAddrV4,
    /// The peer appliance's address and UDP port on the HA link.
    pub peer: SocketAddrV4,
    /// Addresses that move with the active role besides the VIPs (which always do): the
    /// clients' next hop on the outside subnet, the replicas' gateway on the inside one.
    pub floating: Vec<Ipv4Addr>,
    /// Heartbeats (and the active's announcements on the data ports) this often.
    pub heartbeat: Duration,
    /// A peer not heard this long, on the HA link or the data ports, is dead.
    pub dead_time: Duration,
    /// Sync records per datagram (256 bytes each).
    pub sync_batch: u16,
    /// The longest a sync record waits for its datagram to fill.
    pub sync_interval: Duration,
    /// Sync datagrams that may be unacked at once (the sender's buffer).
    pub sync_window: u32,
    /// This node wins the election when both start, and ties; it does not take the
    /// role back by itself when it rejoins.
    pub preferred: bool,
}

impl Ha {
    /// The port a floating address is on: the one whose subnet holds it.
    pub fn floating_on(&self, ports: &Ports, role: PortRole) -> Vec<Ipv4Addr> {
        let subnet = ports.get(role).address;
        self.floating
            .iter()
            .copied()
            .filter(|&a| subnet.contains(a))
            .collect()
    }
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Human,
    /// One JSON object per event.
    Json,
    /// Straight to the systemd journal, each field of an event a journal field
    /// (`journalctl -o verbose`); on stderr as human lines where there is no journal.
    Journald,
}

/// Least severe level logged.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Warnings and errors.
    Warn,
    /// Normal operation (failovers, replica state changes).
    #[default]
    Info,
    /// Detail for debugging.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    /// The level's name, as `tracing` filters spell it.
    pub fn as_str(&self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// Log output.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Logging {
    /// Human or JSON lines, or the journal's fields.
    pub format: LogFormat,
    /// Least severe level logged.
    pub level: LogLevel,
}

impl Profile {
    /// The port of a role.
    pub fn port(&self, role: PortRole) -> &Port {
        self.ports.get(role)
    }

    /// The workers as the runtime starts them, in `lcores.workers` order: each with its
    /// receive queues and its own transmit queue.
    pub fn worker_plan(&self) -> Vec<WorkerPlan> {
        self.lcores
            .workers
            .iter()
            .enumerate()
            .map(|(id, &lcore)| WorkerPlan {
                id,
                lcore,
                rx: self
                    .workers
                    .iter()
                    .filter(|a| a.lcore == lcore)
                    .map(|a| (a.port, a.queue))
                    .collect(),
                // Validation bounds the number of workers by the number of queues, so
                // this always fits.
                tx_queue: u16::try_from(id).unwrap_or(u16::MAX),
            })
            .collect()
    }

    /// Transmit queues to configure on each port: one per worker, since any worker may
    /// send on either port.
    pub fn tx_queues_per_port(&self) -> u16 {
        u16::try_from(self.lcores.workers.len()).unwrap_or(u16::MAX)
    }

    /// The service that takes TCP connections to `vip:port`, if any (services never
    /// overlap).
    pub fn service_for(&self, vip: Ipv4Addr, port: u16) -> Option<&Service> {
        self.services.iter().find(|s| s.matches(vip, port))
    }

    /// Every VIP, once each, in profile order: the addresses the outside port answers ARP
    /// for besides its own.
    pub fn vips(&self) -> Vec<Ipv4Addr> {
        let mut out: Vec<Ipv4Addr> = Vec::new();
        for s in &self.services {
            if !out.contains(&s.vip) {
                out.push(s.vip);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `Default`s and `Port::new` are what a profile that leaves the fields out gets.
    #[test]
    fn defaults_are_the_schemas() {
        let text = "\
lcores: { workers: [1] }
ports:
  outside: { device: 0000:01:00.0, address: 198.18.0.1/24 }
  inside: { device: 0000:01:00.1, address: 198.19.0.1/24 }
services:
  - { name: s, vip: 198.18.0.100, port: 80, mode: forward, copies: 1,
      replicas: [{ name: r, address: 198.19.0.11 }], health: { probe_ports: [] } }
";
        let p = match crate::parse("defaults.yaml", text) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(p.timeouts, Timeouts::default());
        assert_eq!(p.limits, Limits::default());
        assert_eq!(p.services[0].health, Health::default());
        assert_eq!(p.services[0].replay, Replay::default());
        assert_eq!(
            p.ports.outside,
            Port::new(p.ports.outside.device.clone(), p.ports.outside.address)
        );
        assert_eq!(
            p.workers,
            WorkerAssignment::derived(&p.lcores.workers, &p.ports)
        );
    }

    /// A suspect burst decides by its last probe's deadline: with the defaults, probes at
    /// 0, 1 and 2 ms, the last one timed out 10 ms later.
    #[test]
    fn suspect_decision_time_is_the_last_probes_deadline() {
        let h = Health::default();
        assert_eq!(h.suspect_decision_time(), Duration::from_millis(12));
        let one = Health {
            suspect_burst: 1,
            ..Health::default()
        };
        assert_eq!(one.suspect_decision_time(), one.timeout);
        // The default hold outlasts the default burst.
        assert!(Replay::default().fin_hold > h.suspect_decision_time());
    }
}
