//! The management socket's answers, typed: what `tandem status`, `flows`, `drain`, `fail`,
//! `up`, `add` and `remove` return (DESIGN §6).
//!
//! The control core builds a [`Response`]; the socket carries it as one line of JSON
//! ([`Response::to_wire`]); the CLI reads it back ([`Response::from_wire`]) and prints
//! either the text of its `Display` (the default) or the JSON of what it holds
//! (`--json`, for scripts). So the text and the JSON can never disagree, and a script
//! never parses text meant for people.
//!
//! Every refusal, whether from the listener (a bad line, a peer not allowed, a deadline)
//! or from the control core (no such replica), is a [`Response::Error`].

use std::fmt;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};
use tandem_engine::{
    CounterSet, Counters, DropReason, FlowPhase, FlowRecord, ReplicaId, ServicePort,
};

use crate::ControlCounters;

/// One answer of the management socket.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    /// `status`.
    Status(Box<Status>),
    /// `flows`.
    Flows(Flows),
    /// `drain`, `fail`, `up`, `add`, `remove`: what changed.
    Replica(ReplicaChange),
    /// `reload`: the differences applied (or, in a dry run, found).
    Reload(Reloaded),
    /// `ha status|active|standby`: the pair as this appliance sees it.
    Ha(Box<HaStatus>),
    /// A refusal: nothing was changed, except where the message says so.
    Error(String),
}

impl Response {
    /// A refusal; a leading `error: ` and trailing newlines are dropped (the text
    /// rendering puts them back).
    pub fn error(message: impl Into<String>) -> Response {
        let m: String = message.into();
        let m = m.strip_prefix("error: ").unwrap_or(&m).trim_end();
        Response::Error(m.to_owned())
    }

    /// The answer as it goes on the socket: one line of JSON.
    pub fn to_wire(&self) -> String {
        match serde_json::to_string(self) {
            Ok(mut s) => {
                s.push('\n');
                s
            }
            // Only a map with non-string keys fails, and there is none.
            Err(e) => format!("{{\"error\":\"cannot encode the answer: {e}\"}}\n"),
        }
    }

    /// An answer read from the socket.
    ///
    /// # Errors
    ///
    /// It is not an answer of this version (an older or newer appliance, or no answer).
    pub fn from_wire(text: &str) -> Result<Response, serde_json::Error> {
        serde_json::from_str(text.trim_end())
    }

    /// What the answer holds as pretty JSON, for `--json`: the status, the listing, the
    /// change or `{"error": ...}`, without the enum's outer key.
    pub fn to_json_pretty(&self) -> String {
        let inner = match self {
            Response::Status(s) => serde_json::to_string_pretty(s),
            Response::Flows(f) => serde_json::to_string_pretty(f),
            Response::Replica(r) => serde_json::to_string_pretty(r),
            Response::Reload(r) => serde_json::to_string_pretty(r),
            Response::Ha(h) => serde_json::to_string_pretty(h),
            Response::Error(e) => serde_json::to_string_pretty(&serde_json::json!({ "error": e })),
        };
        inner.unwrap_or_else(|e| format!("{{\"error\": \"cannot encode the answer: {e}\"}}"))
    }
}

impl fmt::Display for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Response::Status(s) => s.fmt(f),
            Response::Flows(l) => l.fmt(f),
            Response::Replica(c) => c.fmt(f),
            Response::Reload(r) => r.fmt(f),
            Response::Ha(h) => h.fmt(f),
            Response::Error(e) => writeln!(f, "error: {e}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// status

/// `tandem status`: services, replicas, flows, the data path's drops and defences, the
/// control core, and (when the metrics run) latency, recovery and the listeners.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The profile's services.
    pub services: Vec<ServiceStatus>,
    /// Every replica name (a replica in two services has two).
    pub replicas: Vec<ReplicaStatus>,
    /// The data path: flows, each worker, drops, defences.
    pub data_path: DataPath,
    /// The control core's counters.
    pub control: ControlCounters,
    /// What the workers dropped on the way to the control core.
    pub to_control_dropped: ToControlDropped,
    /// New flows in the last second (with the metrics).
    pub new_flows_per_second: Option<u64>,
    /// The latency the workers add, in nanoseconds (with the metrics, once measured).
    pub added_latency_ns: Option<Percentiles>,
    /// Failovers' first sign to switch, in nanoseconds (once one was detected).
    pub recovery_ns: Option<Percentiles>,
    /// The listeners' refused and cut connections (with the metrics).
    pub listeners: Vec<ListenerDrops>,
    /// The pair: role, peer, sync lag (an appliance with an `ha` section).
    #[serde(default)]
    pub ha: Option<HaStatus>,
    /// The packet buffer pools now.
    pub mbufs: Vec<MbufPool>,
    /// Each port's DPDK extended statistics now.
    pub ports: Vec<PortXstats>,
}

/// A packet buffer pool (a DPDK mempool) now.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MbufPool {
    /// The pool's name.
    pub name: String,
    /// Buffers out of the pool: in receive rings, in flight, held for standbys.
    pub in_use: u64,
    /// Buffers in the pool and the lcores' caches.
    pub free: u64,
}

/// One port's DPDK extended statistics (`rte_eth_xstats_get`), by DPDK's names.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortXstats {
    /// `outside` or `inside`.
    pub port: String,
    /// The DPDK device (`net_af_packet0`, a PCI address).
    pub device: String,
    /// Every extended counter the driver has, in its order.
    pub xstats: Vec<Count>,
}

/// The extended statistics `tandem status` shows of each port (every driver has them:
/// ethdev derives them from its basic counters); the JSON and the metrics have all.
pub const WATCHED_XSTATS: [&str; 4] = [
    "rx_missed_errors",
    "rx_errors",
    "tx_errors",
    "rx_mbuf_allocation_errors",
];

/// A service as the profile has it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// Its name.
    pub name: String,
    /// The VIP.
    pub vip: Ipv4Addr,
    /// The port, a range, or `any`.
    pub port: String,
    /// `mirror`, `forward`, ...
    pub mode: String,
    /// Replicas per flow.
    pub copies: usize,
    /// How replicas are chosen for a new flow.
    pub selection: String,
}

/// A replica's health as the control core decided it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplicaHealth {
    /// Takes new flows.
    Up,
    /// Keeps its flows, takes no new ones.
    Draining,
    /// Failed: its flows moved.
    Down,
    /// Its slot is free (removed).
    Unused,
}

impl From<tandem_engine::Health> for ReplicaHealth {
    fn from(h: tandem_engine::Health) -> ReplicaHealth {
        match h {
            tandem_engine::Health::Up => ReplicaHealth::Up,
            tandem_engine::Health::Draining => ReplicaHealth::Draining,
            tandem_engine::Health::Down => ReplicaHealth::Down,
            tandem_engine::Health::Unused => ReplicaHealth::Unused,
        }
    }
}

impl ReplicaHealth {
    fn word(self) -> &'static str {
        match self {
            ReplicaHealth::Up => "up",
            ReplicaHealth::Draining => "draining",
            ReplicaHealth::Down => "down",
            ReplicaHealth::Unused => "unused",
        }
    }
}

/// An operator's order that holds a replica where it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operator {
    /// `tandem drain`: no new flows.
    Drain,
    /// `tandem fail`: failed over; probes do not bring it back.
    Fail,
}

/// One replica in `status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaStatus {
    /// `service/replica`.
    pub name: String,
    /// Its address.
    pub address: Ipv4Addr,
    /// Its health.
    pub health: ReplicaHealth,
    /// The operator's order on it, if any.
    pub operator: Option<Operator>,
    /// Its MAC, once resolved (`aa:bb:...`).
    pub mac: Option<String>,
    /// Times it failed over (with the metrics).
    pub failovers: u64,
    /// Flows on which its output differed from the active's (DESIGN §3.12).
    pub diverged_flows: u64,
    /// It diverged on many flows lately: its data or program differs from the others'.
    pub out_of_sync: bool,
}

/// Flows and what the workers did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DataPath {
    /// Flows now, all workers.
    pub flows: u64,
    /// Of them, with all the copies their service asks for.
    pub protected: u64,
    /// Of them, with fewer.
    pub unprotected: u64,
    /// Standby output held now, bytes.
    pub held_bytes: u64,
    /// Hold slots in use now (one per held segment).
    pub hold_slots_in_use: u64,
    /// Hold slots free now.
    pub hold_slots_free: u64,
    /// Each worker.
    pub workers: Vec<WorkerStatus>,
    /// Frames dropped, by reason (every reason, in declaration order).
    pub drops: Vec<Count>,
    /// The defences that acted (DESIGN §3.11).
    pub defences: Defences,
    /// What the check of the standbys' output did (DESIGN §3.12).
    pub verification: Verification,
}

/// The verified standbys' counts (DESIGN §3.12), all workers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    /// Standbys whose output differed from the active's: they left their flows.
    pub standbys_diverged: u64,
    /// Standbys whose output could no longer be checked: they left their flows.
    pub standbys_unverifiable: u64,
    /// Failovers to a standby behind the active, checked as its output came.
    pub catch_ups: u64,
    /// Of them, ended with RSTs (different, or not checked in time).
    pub catch_ups_failed: u64,
    /// Flows reset at failover: no standby checked equal up to what the client has.
    pub takeovers_refused: u64,
}

/// A name and a count.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    /// What was counted.
    pub name: String,
    /// How many.
    pub count: u64,
}

/// One worker in `status`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerStatus {
    /// Its lcore.
    pub lcore: u32,
    /// Its flows now.
    pub flows: u64,
    /// Of them, unprotected.
    pub unprotected: u64,
    /// Flows it moved to another replica.
    pub failovers: u64,
    /// Frames received.
    pub rx: u64,
    /// Frames sent.
    pub tx: u64,
    /// Standby output it holds now, bytes.
    pub held_bytes: u64,
    /// Its hold slots in use now.
    pub hold_slots_in_use: u64,
    /// Its hold slots free now.
    pub hold_slots_free: u64,
}

/// The defences' counts (DESIGN §3.11), all workers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Defences {
    /// Half-open flows pushed out by new SYNs (table full).
    pub half_open_evicted: u64,
    /// Half-open flows expired at the SYN timeout.
    pub half_open_expired: u64,
    /// Flows reset after their idle timeout.
    pub idle_resets: u64,
    /// RSTs answering segments of no flow.
    pub stray_resets: u64,
    /// ICMP fragmentation-needed messages translated.
    pub icmp_frag_needed: u64,
    /// SYNs answered with a SYN cookie.
    pub syn_cookies_sent: u64,
    /// Cookies returned valid: the flow was made.
    pub syn_cookies_accepted: u64,
    /// ACKs with a cookie that did not check.
    pub syn_cookies_failed: u64,
}

/// What the workers dropped on the way to the control core, all workers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToControlDropped {
    /// Frames for the control core over its rate.
    pub rate_limited: u64,
    /// Probe answers over their rate.
    pub probe_answers_rate_limited: u64,
    /// ARP replies over their rate.
    pub arp_replies_rate_limited: u64,
    /// The control ring was full.
    pub control_ring_full: u64,
    /// The probe answers' ring was full.
    pub answer_ring_full: u64,
}

/// A distribution's summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Values recorded.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest.
    pub max: u64,
}

/// One listener's refused and cut connections, by reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerDrops {
    /// `management` or `metrics`.
    pub listener: String,
    /// Each reason ([`crate::serve::ListenerCounters::REASONS`]) and its count.
    pub drops: Vec<Count>,
}

impl DataPath {
    /// The data path of the workers' snapshots (lcore, engine counters).
    pub fn of<'a>(workers: impl IntoIterator<Item = (u32, &'a Counters)>) -> DataPath {
        let mut total = Counters::default();
        let mut each = Vec::new();
        for (lcore, e) in workers {
            total.add(e);
            each.push(WorkerStatus {
                lcore,
                flows: e.flows,
                unprotected: e.flows_unprotected,
                failovers: e.flow_failovers,
                rx: e.rx,
                tx: e.tx,
                held_bytes: e.held_bytes,
                hold_slots_in_use: e.held_segments,
                hold_slots_free: e.hold_slots_free,
            });
        }
        DataPath {
            flows: total.flows,
            protected: total.flows.saturating_sub(total.flows_unprotected),
            unprotected: total.flows_unprotected,
            held_bytes: total.held_bytes,
            hold_slots_in_use: total.held_segments,
            hold_slots_free: total.hold_slots_free,
            workers: each,
            drops: DropReason::ALL
                .iter()
                .map(|r| Count {
                    name: r.label().to_owned(),
                    count: total.dropped(*r),
                })
                .collect(),
            defences: Defences {
                half_open_evicted: total.half_open_evicted,
                half_open_expired: total.half_open_expired,
                idle_resets: total.idle_resets,
                stray_resets: total.stray_resets,
                icmp_frag_needed: total.icmp_frag_needed,
                syn_cookies_sent: total.syn_cookies_sent,
                syn_cookies_accepted: total.syn_cookies_accepted,
                syn_cookies_failed: total.syn_cookies_failed,
            },
            verification: Verification {
                standbys_diverged: total.standbys_diverged,
                standbys_unverifiable: total.standbys_unverifiable,
                catch_ups: total.catch_ups,
                catch_ups_failed: total.catch_ups_failed,
                takeovers_refused: total.takeovers_refused,
            },
        }
    }
}

/// `name n, name n, ...`.
fn counts(list: impl IntoIterator<Item = (impl fmt::Display, u64)>) -> String {
    let v: Vec<String> = list.into_iter().map(|(n, c)| format!("{n} {c}")).collect();
    v.join(", ")
}

impl fmt::Display for DataPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "flows: {} (protected {}, unprotected {})",
            self.flows, self.protected, self.unprotected
        )?;
        for w in &self.workers {
            writeln!(
                f,
                "  worker lcore {}: flows {}, unprotected {}, failovers {}, rx {}, tx {}, \
                 held {} bytes in {} slots ({} free)",
                w.lcore,
                w.flows,
                w.unprotected,
                w.failovers,
                w.rx,
                w.tx,
                w.held_bytes,
                w.hold_slots_in_use,
                w.hold_slots_free
            )?;
        }
        writeln!(
            f,
            "held for standbys: {} bytes in {} hold slots ({} free)",
            self.held_bytes, self.hold_slots_in_use, self.hold_slots_free
        )?;
        let drops = counts(
            self.drops
                .iter()
                .filter(|c| c.count > 0)
                .map(|c| (&c.name, c.count)),
        );
        writeln!(
            f,
            "data path drops: {}",
            if drops.is_empty() { "none" } else { &drops }
        )?;
        let d = &self.defences;
        writeln!(
            f,
            "defences: {}",
            counts([
                ("half-open evicted", d.half_open_evicted),
                ("half-open expired", d.half_open_expired),
                ("idle resets", d.idle_resets),
                ("stray resets", d.stray_resets),
                ("icmp frag-needed translated", d.icmp_frag_needed),
                ("syn cookies sent", d.syn_cookies_sent),
                ("syn cookies accepted", d.syn_cookies_accepted),
                ("syn cookies failed", d.syn_cookies_failed),
            ])
        )?;
        let v = &self.verification;
        writeln!(
            f,
            "verification: {}",
            counts([
                ("standbys diverged", v.standbys_diverged),
                ("unverifiable", v.standbys_unverifiable),
                ("catch-ups", v.catch_ups),
                ("catch-ups failed", v.catch_ups_failed),
                ("take-overs refused", v.takeovers_refused),
            ])
        )
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "services:")?;
        for s in &self.services {
            writeln!(
                f,
                "  {}: {} port {}, {}, copies {}, {} selection",
                s.name, s.vip, s.port, s.mode, s.copies, s.selection
            )?;
        }
        writeln!(f, "replicas:")?;
        for r in &self.replicas {
            let operator = match r.operator {
                Some(Operator::Drain) => " (operator: drain)",
                Some(Operator::Fail) => " (operator: fail)",
                None => "",
            };
            writeln!(
                f,
                "  {:<24} {:<15} {}{operator}, mac {}, failovers {}, diverged flows {}{}",
                r.name,
                r.address.to_string(),
                r.health.word(),
                r.mac.as_deref().unwrap_or("unresolved"),
                r.failovers,
                r.diverged_flows,
                if r.out_of_sync { " (OUT OF SYNC)" } else { "" }
            )?;
        }
        if let Some(ha) = &self.ha {
            ha.fmt(f)?;
        }
        self.data_path.fmt(f)?;
        let c = &self.control;
        writeln!(
            f,
            "control: probes {}, answered {}, lost {}, failovers {}, signals {}",
            c.probes, c.probe_replies, c.probes_lost, c.failovers, c.signals
        )?;
        writeln!(
            f,
            "  probes skipped (most outstanding) {}, timed out past the horizon {}",
            c.probes_skipped, c.probes_past_horizon
        )?;
        writeln!(
            f,
            "  arp: retries {}, silent {}, mac claims {}, changed {}, refused {}, unconfirmed {}, ignored {}",
            c.arp_retries,
            c.arp_silent,
            c.arp_mac_claims,
            c.arp_mac_changes,
            c.arp_mac_refused,
            c.arp_mac_unconfirmed,
            c.arp_mac_ignored
        )?;
        let w = &self.to_control_dropped;
        writeln!(
            f,
            "  dropped on the way (workers): rate limited {}, probe answers rate limited {}, \
             arp replies rate limited {}, control ring full {}, answer ring full {}",
            w.rate_limited,
            w.probe_answers_rate_limited,
            w.arp_replies_rate_limited,
            w.control_ring_full,
            w.answer_ring_full
        )?;
        for p in &self.mbufs {
            writeln!(
                f,
                "packet buffers {}: in use {}, free {}",
                p.name, p.in_use, p.free
            )?;
        }
        for p in &self.ports {
            let watched = WATCHED_XSTATS.iter().filter_map(|name| {
                p.xstats
                    .iter()
                    .find(|c| c.name == *name)
                    .map(|c| (name, c.count))
            });
            writeln!(f, "port {} ({}): {}", p.port, p.device, counts(watched))?;
        }
        if let Some(n) = self.new_flows_per_second {
            writeln!(f, "new flows: {n} per second")?;
        }
        let us = |ns: u64| ns as f64 / 1e3;
        match &self.added_latency_ns {
            Some(l) => writeln!(
                f,
                "added latency: p50 {:.1} us, p99 {:.1} us, p99.9 {:.1} us, max {:.1} us ({} packets)",
                us(l.p50),
                us(l.p99),
                us(l.p999),
                us(l.max),
                l.count
            )?,
            None => writeln!(f, "added latency: nothing measured yet")?,
        }
        match &self.recovery_ns {
            Some(r) => writeln!(
                f,
                "recovery (first sign to switch): p50 {:.1} ms, max {:.1} ms ({} failovers detected)",
                r.p50 as f64 / 1e6,
                r.max as f64 / 1e6,
                r.count
            )?,
            None => writeln!(f, "recovery (first sign to switch): no failover detected yet")?,
        }
        if !self.listeners.is_empty() {
            let parts: Vec<String> = self
                .listeners
                .iter()
                .map(|l| {
                    format!(
                        "{}: {}",
                        l.listener,
                        counts(l.drops.iter().map(|c| (&c.name, c.count)))
                    )
                })
                .collect();
            writeln!(f, "listener drops: {}", parts.join("; "))?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// flows

/// `tandem flows`: the flows that passed the filter, up to the limit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flows {
    /// The flows listed, sorted by client, then service.
    pub flows: Vec<FlowEntry>,
    /// Flows that passed the filter, listed or not.
    pub matched: usize,
    /// The request's limit.
    pub limit: usize,
    /// Workers (lcores) that did not answer in time: their flows are missing.
    pub missing_workers: Vec<u32>,
}

/// A flow's phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// An unused slot (never listed).
    Free,
    /// The client's SYN went to the replicas.
    SynSent,
    /// The SYN-ACK went to the client.
    SynAckSent,
    /// Open.
    Established,
    /// Closed or reset, lingering.
    Closed,
}

impl From<FlowPhase> for Phase {
    fn from(p: FlowPhase) -> Phase {
        match p {
            FlowPhase::Free => Phase::Free,
            FlowPhase::SynSent => Phase::SynSent,
            FlowPhase::SynAckSent => Phase::SynAckSent,
            FlowPhase::Established => Phase::Established,
            FlowPhase::Closed => Phase::Closed,
        }
    }
}

impl Phase {
    fn word(self) -> &'static str {
        match self {
            Phase::Free => "free",
            Phase::SynSent => "syn-sent",
            Phase::SynAckSent => "syn-ack-sent",
            Phase::Established => "established",
            Phase::Closed => "closed",
        }
    }
}

/// One of a flow's copies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leg {
    /// The replica's `service/replica` name, or its address if its slot has another
    /// replica now.
    pub replica: String,
    /// The copy the client hears.
    pub active: bool,
    /// Still part of the flow.
    pub alive: bool,
}

/// One flow in `tandem flows`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowEntry {
    /// The client's address.
    pub client: Ipv4Addr,
    /// The client's port.
    pub client_port: u16,
    /// The service's name (`None`: no service has its VIP and port any more).
    pub service: Option<String>,
    /// Its phase.
    pub phase: Phase,
    /// Payload bytes from the client.
    pub bytes_from_client: u64,
    /// Payload bytes forwarded to the client.
    pub bytes_to_client: u64,
    /// Standby output held for it.
    pub held_bytes: u64,
    /// Nanoseconds since it was made.
    pub age_ns: u64,
    /// Nanoseconds since its last packet.
    pub idle_ns: u64,
    /// Its copies.
    pub legs: Vec<Leg>,
    /// Fewer live copies than its service asks for.
    pub unprotected: bool,
}

/// The replicas as the control core knows them: `service/replica` name, slot, address.
pub type Names<'a> = &'a [(String, ReplicaId, u32)];

/// The name of the replica at `addr` in slot `id`; its address if the slot has another
/// replica now (it was removed).
fn name_of(names: Names<'_>, id: ReplicaId, addr: u32) -> String {
    names
        .iter()
        .find(|(_, r, a)| *r == id && *a == addr)
        .map_or_else(|| Ipv4Addr::from(addr).to_string(), |(n, _, _)| n.clone())
}

impl Flows {
    /// The answer from the workers' records (sorted), of which `matched` passed the
    /// filter; at most `limit` listed. `services` maps a flow's VIP and port to its
    /// service's name; `missing` are the lcores of workers that did not answer.
    pub fn of(
        records: &[FlowRecord],
        matched: usize,
        limit: usize,
        names: Names<'_>,
        services: &[(String, u32, ServicePort)],
        missing: &[u32],
    ) -> Flows {
        Flows {
            flows: records
                .iter()
                .take(limit)
                .map(|r| FlowEntry::of(r, names, services))
                .collect(),
            matched,
            limit,
            missing_workers: missing.to_vec(),
        }
    }
}

impl FlowEntry {
    /// The entry of a worker's record. `services` maps a VIP and port to its service's
    /// name.
    pub fn of(r: &FlowRecord, names: Names<'_>, services: &[(String, u32, ServicePort)]) -> Self {
        FlowEntry {
            client: Ipv4Addr::from(r.key.client_ip),
            client_port: r.key.client_port,
            service: services
                .iter()
                .find(|(_, vip, port)| *vip == r.key.vip && port.covers(r.key.vip_port))
                .map(|(n, _, _)| n.clone()),
            phase: r.phase.into(),
            bytes_from_client: r.bytes_from_client,
            bytes_to_client: r.bytes_to_client,
            held_bytes: r.held_bytes,
            age_ns: r.age_ns,
            idle_ns: r.idle_ns,
            legs: r
                .legs()
                .iter()
                .zip(&r.addrs)
                .map(|(&(id, alive), &addr)| Leg {
                    replica: name_of(names, id, addr),
                    active: id == r.active,
                    alive,
                })
                .collect(),
            unprotected: r.unprotected,
        }
    }
}

/// Seconds with one decimal, for ages.
fn secs(ns: u64) -> String {
    format!("{:.1}s", ns as f64 / 1e9)
}

impl fmt::Display for Flows {
    /// A header, one line per flow, and a total. A leg is written `name*` when active
    /// and `name(dead)` when it is no longer part of the flow.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<21} {:<10} {:<11} {:>12} {:>12} {:>9} {:>8} {:>7}  replicas (* active)",
            "client", "service", "phase", "from_client", "to_client", "held", "age", "idle"
        )?;
        for e in &self.flows {
            let legs: Vec<String> = e
                .legs
                .iter()
                .map(|l| match (l.alive, l.active) {
                    (false, _) => format!("{}(dead)", l.replica),
                    (true, true) => format!("{}*", l.replica),
                    (true, false) => l.replica.clone(),
                })
                .collect();
            writeln!(
                f,
                "{:<21} {:<10} {:<11} {:>12} {:>12} {:>9} {:>8} {:>7}  {}{}",
                format!("{}:{}", e.client, e.client_port),
                e.service.as_deref().unwrap_or("?"),
                e.phase.word(),
                e.bytes_from_client,
                e.bytes_to_client,
                e.held_bytes,
                secs(e.age_ns),
                secs(e.idle_ns),
                legs.join(","),
                if e.unprotected { " (unprotected)" } else { "" }
            )?;
        }
        let shown = self.flows.len();
        write!(f, "flows: {} matched, {shown} shown", self.matched)?;
        if self.matched > shown {
            write!(f, " (limit={}; the others not shown)", self.limit)?;
        }
        writeln!(f)?;
        if !self.missing_workers.is_empty() {
            let l: Vec<String> = self.missing_workers.iter().map(u32::to_string).collect();
            writeln!(
                f,
                "warning: the worker(s) on lcore {} did not answer in time: their flows are missing",
                l.join(", ")
            )?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// drain, fail, up, add, remove

/// What an operator's order did to a replica.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaChange {
    /// `service/replica`.
    pub replica: String,
    /// Its address.
    pub address: Ipv4Addr,
    /// What changed.
    pub change: Change,
}

/// The change an order made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// `drain`: no new flows; its flows stay.
    Draining,
    /// `fail`: its flows move; probes will not bring it back.
    FailedOver,
    /// `up`: it takes new flows.
    Up,
    /// `up`, but its probes say it is down: it comes up when they answer.
    UpWhenProbesAnswer,
    /// `add`: in the pool; it takes new flows once its probes answer (`rise` good ones
    /// on each of `ports`), or now when the service probes nothing.
    Added {
        /// Good probes needed.
        rise: u32,
        /// The ports probed (empty: not probed).
        ports: Vec<u16>,
    },
    /// `remove`: out of every pool; its flows fail over to their other replicas.
    Removed,
}

impl fmt::Display for ReplicaChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, addr) = (&self.replica, self.address);
        match &self.change {
            Change::Draining => writeln!(f, "{name}: draining (no new flows; its flows stay)"),
            Change::FailedOver => writeln!(
                f,
                "{name}: failed over (its flows move; probes will not bring it back)"
            ),
            Change::Up => writeln!(f, "{name}: up (takes new flows)"),
            Change::UpWhenProbesAnswer => writeln!(
                f,
                "{name}: probes say it is down; it comes up when they answer"
            ),
            Change::Added { ports, .. } if ports.is_empty() => {
                writeln!(f, "{name}: added ({addr}); it takes new flows now")
            }
            Change::Added { rise, ports } => writeln!(
                f,
                "{name}: added ({addr}); it takes new flows once its probes answer ({rise} good on ports {ports:?})"
            ),
            Change::Removed => writeln!(
                f,
                "{name}: removed ({addr}); its flows fail over to their other replicas"
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------
// reload

/// What `tandem reload` did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reloaded {
    /// The profile read.
    pub profile: String,
    /// False for `--dry-run`: nothing was applied.
    pub applied: bool,
    /// The differences, in the order they were applied.
    pub differences: Vec<crate::reload::Difference>,
}

impl fmt::Display for Reloaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.differences.len();
        let verb = if self.applied {
            "applied"
        } else {
            "found (dry run, nothing applied)"
        };
        writeln!(
            f,
            "{}: {n} difference{} {verb}",
            self.profile,
            if n == 1 { "" } else { "s" }
        )?;
        for d in &self.differences {
            writeln!(f, "  {d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().expect("ip")
    }

    fn status() -> Status {
        let mut a = Counters {
            flows: 3,
            flows_unprotected: 1,
            rx: 10,
            tx: 9,
            half_open_evicted: 7,
            held_bytes: 2_896,
            held_segments: 2,
            hold_slots_free: 8_190,
            ..Counters::default()
        };
        a.drop(DropReason::RstOutOfWindow);
        a.drop(DropReason::RstOutOfWindow);
        let mut b = Counters {
            stray_resets: 3,
            syn_cookies_sent: 5,
            hold_slots_free: 8_192,
            ..Counters::default()
        };
        b.drop(DropReason::RstOutOfWindow);
        b.drop(DropReason::Paws);
        Status {
            services: vec![ServiceStatus {
                name: "lab".into(),
                vip: ip("198.18.0.100"),
                port: "7000".into(),
                mode: "mirror".into(),
                copies: 2,
                selection: "hash".into(),
            }],
            replicas: vec![ReplicaStatus {
                name: "lab/spare".into(),
                address: ip("198.19.0.13"),
                health: ReplicaHealth::Draining,
                operator: Some(Operator::Drain),
                mac: None,
                failovers: 2,
                diverged_flows: 12,
                out_of_sync: true,
            }],
            data_path: DataPath::of([(4, &a), (5, &b)]),
            control: ControlCounters {
                probes: 11,
                failovers: 1,
                ..ControlCounters::default()
            },
            listeners: vec![ListenerDrops {
                listener: "management".into(),
                drops: vec![Count {
                    name: "deadline".into(),
                    count: 2,
                }],
            }],
            mbufs: vec![MbufPool {
                name: "tandem_mbufs".into(),
                in_use: 300,
                free: 32_467,
            }],
            ports: vec![PortXstats {
                port: "outside".into(),
                device: "net_af_packet0".into(),
                xstats: [
                    ("rx_good_packets", 10),
                    ("rx_missed_errors", 1),
                    ("rx_errors", 2),
                    ("tx_errors", 0),
                    ("rx_mbuf_allocation_errors", 4),
                ]
                .iter()
                .map(|(n, c)| Count {
                    name: (*n).into(),
                    count: *c,
                })
                .collect(),
            }],
            ..Status::default()
        }
    }

    #[test]
    fn status_text_names_each_replica_each_worker_each_drop_by_reason_and_each_defence() {
        let text = Response::Status(Box::new(status())).to_string();
        for line in [
            "  lab: 198.18.0.100 port 7000, mirror, copies 2, hash selection\n",
            "  lab/spare                198.19.0.13     draining (operator: drain), mac unresolved, failovers 2, diverged flows 12 (OUT OF SYNC)\n",
            "flows: 3 (protected 2, unprotected 1)\n  worker lcore 4: flows 3, unprotected 1, failovers 0, rx 10, tx 9, held 2896 bytes in 2 slots (8190 free)\n",
            "held for standbys: 2896 bytes in 2 hold slots (16382 free)\n",
            "packet buffers tandem_mbufs: in use 300, free 32467\n",
            "port outside (net_af_packet0): rx_missed_errors 1, rx_errors 2, tx_errors 0, rx_mbuf_allocation_errors 4\n",
            "data path drops: rst_out_of_window 3, paws 1\n",
            "defences: half-open evicted 7, half-open expired 0, idle resets 0, stray resets 3, \
             icmp frag-needed translated 0, syn cookies sent 5, syn cookies accepted 0, \
             syn cookies failed 0\n",
            "control: probes 11, answered 0, lost 0, failovers 1, signals 0\n",
            "added latency: nothing measured yet\n",
            "listener drops: management: deadline 2\n",
        ] {
            assert!(text.contains(line), "{line:?} not in:\n{text}");
        }
        assert!(!text.contains("new flows:"), "no metrics: no rate");
        let quiet = Status::default().to_string();
        assert!(quiet.contains("data path drops: none\n"), "{quiet}");
    }

    #[test]
    fn every_answer_crosses_the_socket_as_one_json_line_and_comes_back_the_same() {
        let flows = Flows {
            flows: vec![FlowEntry {
                client: ip("198.18.0.2"),
                client_port: 4000,
                service: Some("lab".into()),
                phase: Phase::SynAckSent,
                bytes_from_client: 1,
                bytes_to_client: 2,
                held_bytes: 3,
                age_ns: 4,
                idle_ns: 5,
                legs: vec![Leg {
                    replica: "lab/primary".into(),
                    active: true,
                    alive: true,
                }],
                unprotected: true,
            }],
            matched: 2,
            limit: 1,
            missing_workers: vec![3],
        };
        for r in [
            Response::Status(Box::new(status())),
            Response::Flows(flows),
            Response::Replica(ReplicaChange {
                replica: "lab/extra".into(),
                address: ip("198.19.0.14"),
                change: Change::Added {
                    rise: 2,
                    ports: vec![7000, 80],
                },
            }),
            Response::Reload(Reloaded {
                profile: "/etc/tandem/lab.yaml".into(),
                applied: true,
                differences: vec![
                    crate::reload::Difference::ReplicaAdded {
                        service: "lab".into(),
                        name: "spare".into(),
                        address: ip("198.19.0.13"),
                        drained: false,
                    },
                    crate::reload::Difference::LogLevel {
                        old: "info".into(),
                        new: "debug".into(),
                    },
                ],
            }),
            Response::error("error: no replica `x`\n"),
        ] {
            let wire = r.to_wire();
            assert_eq!(wire.matches('\n').count(), 1, "{wire}");
            assert!(wire.ends_with('\n'));
            assert_eq!(Response::from_wire(&wire).expect("parses"), r);
        }
        assert!(Response::from_wire("error: something\n").is_err());
    }

    #[test]
    fn the_json_of_an_answer_is_what_it_holds_with_fields_named_as_in_the_types() {
        let s = Response::Status(Box::new(status())).to_json_pretty();
        let v: serde_json::Value = serde_json::from_str(&s).expect("json");
        assert_eq!(v["replicas"][0]["health"], "draining");
        assert_eq!(v["replicas"][0]["operator"], "drain");
        assert_eq!(v["data_path"]["unprotected"], 1);
        assert_eq!(v["data_path"]["defences"]["syn_cookies_sent"], 5);
        assert_eq!(v["control"]["probes"], 11);
        assert_eq!(v["data_path"]["held_bytes"], 2_896);
        assert_eq!(v["data_path"]["hold_slots_in_use"], 2);
        assert_eq!(v["data_path"]["workers"][1]["hold_slots_free"], 8_192);
        assert_eq!(v["mbufs"][0]["in_use"], 300);
        assert_eq!(v["ports"][0]["xstats"][0]["name"], "rx_good_packets");
        assert_eq!(
            v["data_path"]["drops"][0]["name"],
            DropReason::ALL[0].label()
        );
        let e = Response::error("no replica `x`").to_json_pretty();
        let v: serde_json::Value = serde_json::from_str(&e).expect("json");
        assert_eq!(v["error"], "no replica `x`");
        assert_eq!(Response::error("x").to_string(), "error: x\n");
    }
}

// ---------------------------------------------------------------------------------------
// the pair

/// The peer as this appliance last heard it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HaPeerStatus {
    /// Its address and port on the HA link.
    pub address: String,
    /// Heard within the dead time, on the HA link or the data ports.
    pub alive: bool,
    /// Its role, if it was ever heard.
    pub role: Option<crate::ha::Role>,
    /// The epoch it announced.
    pub epoch: u64,
    /// It holds a complete copy of this appliance's flows.
    pub ready: bool,
    /// Milliseconds since it was last heard on the HA link (never: `None`).
    pub ha_heard_ms_ago: Option<u64>,
    /// Milliseconds since its announcement was last seen on a data port (never: `None`).
    pub data_heard_ms_ago: Option<u64>,
}

/// `tandem ha status` (and the outcome of `tandem ha active|standby`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HaStatus {
    /// This appliance's role.
    pub role: crate::ha::Role,
    /// The epoch it knows.
    pub epoch: u64,
    /// It holds a complete copy of the active's flows (a standby's readiness).
    pub ready: bool,
    /// It is the preferred node.
    pub preferred: bool,
    /// Its address and port on the HA link.
    pub local: String,
    /// The peer.
    pub peer: HaPeerStatus,
    /// What a command did (`None` for `ha status`).
    pub outcome: Option<String>,
    /// Counters and gauges (sync lag among them).
    pub counters: crate::ha::HaCounters,
}

impl fmt::Display for HaStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(o) = &self.outcome {
            writeln!(f, "{o}")?;
        }
        let c = &self.counters;
        writeln!(
            f,
            "ha: {} (epoch {}{}{}), local {}",
            self.role.name(),
            self.epoch,
            if self.ready { ", ready" } else { "" },
            if self.preferred { ", preferred" } else { "" },
            self.local
        )?;
        let p = &self.peer;
        let ago =
            |t: Option<u64>| t.map_or_else(|| "never".to_owned(), |ms| format!("{ms} ms ago"));
        writeln!(
            f,
            "  peer {}: {}{}, epoch {}{}; heard on the HA link {}, on the data ports {}",
            p.address,
            if p.alive { "alive" } else { "dead" },
            p.role
                .map_or_else(String::new, |r| format!(" {}", r.name())),
            p.epoch,
            if p.ready { ", ready" } else { "" },
            ago(p.ha_heard_ms_ago),
            ago(p.data_heard_ms_ago)
        )?;
        writeln!(
            f,
            "  sync: lag {} us, {} batches unacked, {} behind; records sent {} resent {} lost {} \
             received {}; bulk syncs {} sent {} received",
            c.sync_lag_ns / 1_000,
            c.sync_unacked,
            c.sync_behind,
            c.sync_records_sent,
            c.sync_records_resent,
            c.sync_records_lost,
            c.sync_records_received,
            c.sync_bulk_syncs,
            c.sync_bulks_received
        )?;
        writeln!(
            f,
            "  takeovers {} (last detection {} ms), handovers {} (failed {}), step-downs {}, stalls {}",
            c.takeovers,
            c.last_detection_ns / 1_000_000,
            c.handovers,
            c.handovers_failed,
            c.step_downs,
            c.stalls
        )
    }
}
