//! The per-worker engine: rx burst → parse → flow lookup → mirror-mode translation →
//! tx batch. It owns its flow table and hold pool; it reads the shared replica table.
//!
//! Every rule of DESIGN §3 lives in [`Ctx`], one method per step, in the order a packet
//! meets them. The engine never reads a clock or allocates on the packet path: the caller
//! passes `now` (nanoseconds) and the buffers; new buffers come from the caller's pool.
//!
//! Decisions the design leaves open, taken here:
//! - The primary's SYN-ACK waits for the other replicas' (so that the options can be
//!   normalised over all of them). A replica that has not answered within `synack_wait`
//!   is sent the client's SYN again (rebuilt from the flow's record of it), up to
//!   [`SYN_RETRIES`] times, each with a new `synack_wait`; one still silent then is
//!   dropped from the flow (sent a RST) and the flow runs with fewer copies.
//! - A replica RST kills that replica's leg of the flow at once (its connection is gone);
//!   a FIN is held until every live replica has sent one at the same sequence. A replica
//!   whose FIN another replica's data overtakes has diverged: its leg is killed. Both raise
//!   a signal for the control core.
//! - A replica's pure ACK is forwarded only when it tells the client something: a higher
//!   synchronised ack or window, SACK blocks, or a duplicate ack from the replica that
//!   holds the synchronised ack back. A standby's output is never forwarded; when it moves
//!   the synchronised ack, Tandem sends the client a pure ACK of its own.
//! - When hold budgets overflow, the oldest held segments of the leg are released; a
//!   failover onto such a leg sends it three duplicate ACKs so it retransmits.
//! - SYN floods (§3.11): past `syn_backlog` half-open flows a SYN makes no flow; Tandem
//!   answers it with a SYN cookie ([`crate::cookie`]) and a zero window, and the ACK that
//!   brings the cookie back makes a flow whose client side Tandem agreed itself (its ISN,
//!   options, timestamp clock and window scale [`COOKIE_WSCALE`]). Tandem then opens the
//!   replicas' connections with the client's ISN and options, acks their SYN-ACKs and
//!   translates every replica into the client's spaces, as an active replica after a
//!   failover; the window update that ends the handshake lets the client send.
//! - 802.1Q: frames with one tag are accepted. A client frame's tag is removed before it
//!   goes to the replicas (an outside sender must not choose the inside port's VLAN);
//!   replicas' frames keep theirs; synthesised frames are untagged.
//!
//! Forward mode (`Service::forward`, for benchmarks with stateless generators such as
//! pktgen; off unless a profile says `mode: forward`): any segment to the VIP that
//! matches no flow, SYN or not, *adopts* a flow onto one live replica picked by the
//! service's selection (counted in `flows_adopted`). Its segments are passed with DNAT
//! (client → replica) or SNAT (replica → client), MACs and the incremental checksum
//! only: no seq/ack/timestamp/SACK translation (delta 0), no holding, no ack
//! synchronisation, no option normalisation, no signals but a missing neighbour. A RST
//! ends the flow; once both sides sent a FIN it lingers as `Closed`; the idle timeout is
//! the established one. A flow whose replica is down or removed ends (no RST to the
//! client) and the client's next segment adopts a new flow on a live replica: forward
//! mode protects nothing, and a real TCP connection on a dead replica breaks. A full
//! table drops the segment (`TableFull`).

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::sync::Arc;

use tandem_wire::build::{self, OptionWriter, TcpBuild};
use tandem_wire::checksum::ChecksumDelta;
use tandem_wire::tcp::option_kind;
use tandem_wire::{EthernetFrame, Icmpv4Packet, Ipv4Packet, MacAddr, TcpFlags, TcpSegment};

use crate::buffer::{BufferPool, PacketBuf};
use crate::config::{EngineConfig, FlowTimeouts, OnNoReplica, ReplayConfig, SyncExport, MAX_POOL};
use crate::cookie::{self, SynOptions};
use crate::exchange::{self, Exchanges, Fed, Http1Rules, Step};
use crate::flow::Replaying;
use crate::flow::{Flow, FlowKey, FlowPhase, FlowRecord, Leg, MAX_COPIES};
use crate::hash::{LaneHasher, Unit, LANES};
use crate::hold::{HeldRef, HoldPool};
use crate::output::{Counters, DropReason, Output, Side, Signal, SignalKind};
use crate::parse::{classify, client_word_of, Class, Meta};
use crate::replay::{Appended, LogArena, LogState};
use crate::replica::{Health, ReplicaId, ReplicaTable};
use crate::seq::Seq;
use crate::sync::{InstallError, SyncEvent, SyncRecord};
use crate::table::{FlowIdx, FlowTable};
use crate::verify::{self, Check, Links, TakeOver};

/// Frames handled together for prefetching.
pub const BURST: usize = 32;
/// Table slots a sweep batch may scan per flow of its budget (one bitmap word).
const SWEEP_SLOTS_PER_FLOW: usize = 64;
/// Mirror mode: how many times a new standby's SYN goes again after its replica reset it
/// (before it answered; `Replaying::dup_acks` counts them).
const REPROTECT_SYN_TRIES: u8 = 3;
/// Mirror mode: the largest gap in a client's bytes that its log keeps a hole for
/// (`LogArena::append_past_gap`); past it the log ends.
const MAX_LOG_HOLE: u32 = 64 * 1024;
/// Slots ahead of the one it visits that the sweep asks the CPU to fetch: a visit is short,
/// so a flow's fetch from memory (a large table is not in cache) needs a few visits' lead.
const SWEEP_PREFETCH_AHEAD: FlowIdx = 8;

/// Times the client's SYN is repeated to a replica that has not answered, each after
/// `synack_wait`, before the flow goes on without it.
pub const SYN_RETRIES: u8 = 3;

/// Longest a leg that took over behind the dead active may take to be checked equal up
/// to what the client has (§3.12) before the flow ends with a RST.
pub const CATCH_UP_NS: u64 = 2_000_000_000;
/// How long after a takeover an installed flow's positions may be brought up to what its
/// endpoints show (`sync::catch_up_to`): the records are refreshed about once a second,
/// and every endpoint of a busy flow has spoken well within this.
pub const SYNC_CATCH_UP_NS: u64 = 3_000_000_000;
/// How long held copies sent to the client after a failover may go unacked before the
/// first of them goes again (a retransmission timer's floor, RFC 6298's 200 ms as Linux
/// uses it).
pub const HELD_RESEND_NS: u64 = 200_000_000;

/// Least time a replay waits for the new replica to take the log before it sends it again
/// from the replica's ack (a segment lost on the inside link).
const REPLAY_RTO_MIN_NS: u64 = 20_000_000;

/// The most window a new replica gets while its answer is checked up to what the client
/// has (`replay_window`).
const REPLAY_CATCH_UP_WINDOW: u32 = 64 * 1024;

/// A replay whose new replica sent nothing for this long ends in a RST.
const REPLAY_SILENCE_NS: u64 = 10_000_000_000;

/// Segments of the log sent per call of `replay_send`, at most.
const REPLAY_SEGMENTS_PER_CALL: u32 = 4;
/// Transmit slots a replay leaves free in the output.
const REPLAY_TX_ROOM: usize = BURST;

/// Why a replay could not go on (each its counter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Why {
    Refused,
    Unsafe,
    Overflow,
    NoReplica,
    Timeout,
}

/// Least time between two challenge ACKs of one flow (RFC 5961 §7: challenge ACKs are
/// rate-limited): a flood of in-window RSTs is answered at most 1000 times a second.
pub const CHALLENGE_GAP_NS: u64 = 1_000_000;

/// RSTs for segments of no flow, at most, per worker and [`STRAY_RST_PERIOD_NS`]: a host
/// answers them, but a flood of them must not turn the appliance into a reflector.
pub const STRAY_RSTS_PER_PERIOD: u32 = 100;
/// The period of [`STRAY_RSTS_PER_PERIOD`] (100 ms: 1000 RSTs a second).
pub const STRAY_RST_PERIOD_NS: u64 = 100_000_000;

/// Half-open flows expired from the front of their queue per poll, at most: the rest wait
/// for the next poll, so a burst of expiries never holds up a receive burst.
const HALF_OPEN_EXPIRY_BATCH: usize = 64;

/// Size of the buffers the engine asks for when it synthesises a segment.
const SYNTH_LEN: usize = 14 + 20 + 60;

/// The window scale a SYN cookie's SYN-ACK announces (Linux's with its default buffers):
/// the replicas' windows are rescaled to it, as to an active replica's after a failover.
pub const COOKIE_WSCALE: u8 = 7;
/// How long a cookie-made flow waits for its replicas' SYN-ACKs before it sends their SYN
/// again (the client does not: it is established), and how often, at most.
const COOKIE_SYN_RTO_NS: u64 = 200_000_000;
const COOKIE_SYN_RETRIES: u8 = 5;
/// How long after a SYN cookie went out ACKs of no flow are checked for one: the two
/// time slots [`cookie::check`] accepts.
const COOKIE_LIFE_NS: u64 = 1 << 36;

/// The rules' context, borrowed from the engine's fields apart from the flow table.
macro_rules! ctx {
    ($engine:ident, $pool:expr, $out:expr, $now:expr) => {
        Ctx {
            cfg: &$engine.cfg,
            timeouts: &$engine.timeouts,
            replicas: &$engine.replicas,
            hold: &mut $engine.hold,
            logs: &mut $engine.logs,
            exchanges: &mut $engine.exchanges,
            c: &mut $engine.counters,
            pool: $pool,
            out: $out,
            now: $now,
        }
    };
}

/// What to do with a flow after a handler ran.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fate {
    Keep,
    Remove,
}

/// The mirror-mode engine of one worker.
pub struct Engine<B: PacketBuf> {
    cfg: EngineConfig,
    own: Vec<u32>,
    vips: Vec<u32>,
    replicas: Arc<ReplicaTable>,
    flows: FlowTable,
    hold: HoldPool<B>,
    counters: Counters,
    /// Per-service rotation of the designated primary.
    rotation: Vec<usize>,
    /// The flow timer sets in force since the start ([`Flow::timeouts`] indexes them),
    /// and how many flows use each; the last one set is `timeouts_now`.
    timeouts: Vec<FlowTimeouts>,
    timeouts_used: Vec<u32>,
    timeouts_now: u8,
    /// Flows waiting for the rest of their SYN-ACKs: (slot, key, deadline).
    synack_queue: VecDeque<(FlowIdx, FlowKey, u64)>,
    /// Flows in creation order while they may still be half-open: (slot, key, created).
    /// The front is the oldest, the one a full table evicts for a new SYN and the next to
    /// reach the SYN timeout. Entries of flows that completed their handshake or ended are
    /// skipped when met (stale).
    half_open: VecDeque<(FlowIdx, FlowKey, u64)>,
    sweep_cursor: FlowIdx,
    next_sweep_at: u64,
    /// [`EngineConfig::sweep_cover_ns`], computed once.
    sweep_cover_ns: u64,
    /// Flows in the table when the sweep's current round began.
    sweep_round_flows: usize,
    /// When the last background sweep step ran (0: none yet).
    last_sweep_at: u64,
    failover_sweep_left: usize,
    /// Mirror mode's new standbys (DESIGN §5): the replica table's up generation last
    /// seen, and the reprotects count when the current pass over the table began (a pass
    /// that began some may have left others for `parallel`: another follows).
    seen_ups: u32,
    reprotect_pass: Option<u64>,
    /// Start of the current period of stray RSTs, and the RSTs sent in it.
    stray_rst_period: (u64, u32),
    /// Until when an ACK of no flow may carry a SYN cookie (0: none ever sent).
    cookies_until: u64,
    /// Cookie-made flows waiting for their replicas' first SYN-ACK: (slot, key, when the
    /// SYN is sent again). Deadlines in order: every entry waits the same time.
    cookie_syn_queue: VecDeque<(FlowIdx, FlowKey, u64)>,
    /// Reconnect mode: every flow's client-byte log ([`crate::replay`]).
    logs: LogArena,
    /// Reconnect mode, `replay: http1`: every flow's exchange and every replay's answer
    /// ([`crate::exchange`]).
    exchanges: Exchanges,
    /// Reconnect mode: flows whose replay is in progress, timed by `poll`.
    replaying: Vec<(FlowIdx, FlowKey)>,
    /// The parse of the burst being handled (taken out of the engine meanwhile).
    classes: Vec<Class>,
    /// The flow table's hash, a group of a burst's frames at a time.
    hasher: LaneHasher,
    /// Flow-state sync ([`crate::sync`]): when this engine took over from its peer.
    takeover_at: Option<u64>,
    /// Until when segments of no flow are dropped, not answered: records may still be
    /// on their way from the peer.
    sync_grace_until: u64,
    /// Where the takeover's kicks go on from, and the slots left to visit.
    kick_cursor: FlowIdx,
    kick_left: usize,
    /// Flow-state export to the appliance peer: `None` unless this engine is one of a
    /// pair ([`EngineConfig::sync`]).
    sync_out: Option<SyncOutbox>,
}

impl<B: PacketBuf> Engine<B> {
    /// An engine with its tables allocated for `cfg`'s limits.
    pub fn new(cfg: EngineConfig, replicas: Arc<ReplicaTable>) -> Engine<B> {
        let mut cfg = cfg;
        // Room for the pool changes of `tandem add`: none allocates on the worker.
        for s in &mut cfg.services {
            s.replicas
                .reserve(MAX_POOL.saturating_sub(s.replicas.len()));
        }
        let own = cfg.own_addrs.iter().map(|a| u32::from(*a)).collect();
        let vips = cfg.services.iter().map(|s| u32::from(s.vip)).collect();
        Engine {
            own,
            vips,
            flows: FlowTable::new(cfg.max_flows, cfg.hash_key),
            hold: HoldPool::new(cfg.hold_segments),
            counters: Counters::default(),
            rotation: vec![0; cfg.services.len()],
            timeouts: vec![cfg.flow_timeouts()],
            timeouts_used: vec![0],
            timeouts_now: 0,
            synack_queue: VecDeque::with_capacity(cfg.max_flows.min(1 << 16)),
            half_open: VecDeque::with_capacity(cfg.max_flows),
            sweep_cursor: 0,
            next_sweep_at: 0,
            sweep_cover_ns: cfg.sweep_cover_ns(),
            sweep_round_flows: 0,
            last_sweep_at: 0,
            failover_sweep_left: 0,
            seen_ups: replicas.up_generation(),
            reprotect_pass: None,
            stray_rst_period: (0, 0),
            cookies_until: 0,
            cookie_syn_queue: VecDeque::with_capacity(cfg.max_flows.min(1 << 16)),
            logs: LogArena::new(if cfg.services.iter().any(|s| s.log_config().is_some()) {
                cfg.replay_bytes_total
            } else {
                0
            }),
            exchanges: {
                let http1 = cfg.services.iter().filter(|s| s.http1.is_some());
                let replays = http1
                    .clone()
                    .filter_map(|s| s.replay.map(|r| r.parallel))
                    .max();
                match replays {
                    Some(parallel) => Exchanges::new(cfg.max_flows, parallel),
                    None => Exchanges::new(0, 0),
                }
            },
            replaying: Vec::with_capacity(
                cfg.services
                    .iter()
                    .filter_map(|s| s.log_config().map(|r| r.parallel))
                    .max()
                    .unwrap_or(0),
            ),
            classes: Vec::with_capacity(BURST),
            hasher: LaneHasher::new(cfg.hash_key),
            takeover_at: None,
            sync_grace_until: 0,
            kick_cursor: 0,
            kick_left: 0,
            sync_out: cfg.sync.map(SyncOutbox::new),
            cfg,
            replicas,
        }
    }

    /// Counters, with the gauges brought up to date.
    pub fn counters(&mut self) -> &Counters {
        self.counters.flows = self.flows.len() as u64;
        self.counters.held_bytes = self.hold.bytes();
        self.counters.held_segments = self.hold.segments() as u64;
        self.counters.hold_slots_free = (self.hold.capacity() - self.hold.segments()) as u64;
        self.counters.replay_log_bytes = self.logs.used_bytes();
        &self.counters
    }

    /// The flow table (listing, tests, memory figures).
    pub fn flows(&self) -> &FlowTable {
        &self.flows
    }

    /// How the burst path computes the flow hash on this CPU (the instruction counts of
    /// the benchmarks depend on it).
    pub fn hash_unit(&self) -> Unit {
        self.hasher.unit()
    }

    /// The settings.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// The shared replica table.
    pub fn replicas(&self) -> &Arc<ReplicaTable> {
        &self.replicas
    }

    /// Lists the flows in table slots `from..from + slots` that `keep` accepts: appended
    /// to `out` as records at `now` while it holds fewer than `limit` (and has room:
    /// nothing is allocated here). Returns how many matched, listed or not, and the slot
    /// to go on from (`None`: the end of the table). A caller lists a whole table a few
    /// thousand slots at a time, between bursts, so that no burst waits for the walk.
    pub fn list_flows(
        &self,
        from: usize,
        slots: usize,
        now: u64,
        mut keep: impl FnMut(&FlowRecord) -> bool,
        limit: usize,
        out: &mut Vec<FlowRecord>,
    ) -> (usize, Option<usize>) {
        let end = from.saturating_add(slots).min(self.flows.capacity());
        let mut matched = 0;
        for slot in from..end {
            let idx = slot as FlowIdx;
            if !self.flows.is_used(idx) {
                continue;
            }
            let f = self.flows.get(idx);
            let mut r = FlowRecord::of(f, now);
            // A leg whose replica went down is dead even before the flow's next packet.
            for (rec, leg) in r.legs.iter_mut().zip(f.legs()) {
                rec.1 = rec.1 && self.replicas.leg_alive(leg.replica, leg.epoch);
            }
            if keep(&r) {
                matched += 1;
                if out.len() < limit && out.len() < out.capacity() {
                    out.push(r);
                }
            }
        }
        (matched, (end < self.flows.capacity()).then_some(end))
    }

    /// Adds `replica` to the pool of service `service` (at the end: an ordered service
    /// prefers it last). New flows only: existing flows keep their legs. Returns false
    /// for an unknown service, a replica already in the pool, or a full pool
    /// ([`MAX_POOL`]).
    pub fn pool_add(&mut self, service: usize, replica: ReplicaId) -> bool {
        match self.cfg.services.get_mut(service) {
            Some(s) if !s.replicas.contains(&replica) && s.replicas.len() < MAX_POOL => {
                s.replicas.push(replica);
                true
            }
            _ => false,
        }
    }

    /// Takes `replica` out of the pool of service `service`: no new flow picks it. Its
    /// flows lose their leg when the replica table says so (the caller marks it unused).
    /// Returns false if it was not in the pool.
    pub fn pool_remove(&mut self, service: usize, replica: ReplicaId) -> bool {
        let Some(s) = self.cfg.services.get_mut(service) else {
            return false;
        };
        let before = s.replicas.len();
        s.replicas.retain(|r| *r != replica);
        s.replicas.len() != before
    }

    /// Sets the flow timers of the flows created from now on (`tandem reload`); flows
    /// already running keep theirs. A set no flow uses any more is reused; at most 256
    /// sets are in use at once. Returns false, changing nothing, when all 256 are.
    pub fn set_timeouts(&mut self, t: FlowTimeouts) -> bool {
        let now = usize::from(self.timeouts_now);
        if self.timeouts.get(now) == Some(&t) {
            return true;
        }
        let slot = match self.timeouts_used.iter().position(|&n| n == 0) {
            Some(free) => free,
            None if self.timeouts.len() <= usize::from(u8::MAX) => {
                self.timeouts.push(t);
                self.timeouts_used.push(0);
                self.timeouts.len() - 1
            }
            None => return false,
        };
        self.timeouts[slot] = t;
        self.timeouts_now = u8::try_from(slot).unwrap_or(u8::MAX);
        self.cfg.synack_wait_ns = t.synack_wait_ns;
        self.cfg.syn_timeout_ns = t.syn_ns;
        self.cfg.idle_timeout_ns = t.idle_ns;
        self.cfg.linger_ns = t.linger_ns;
        // Older flows' timers still count: the sweep covers the shortest of all.
        self.sweep_cover_ns = self.sweep_cover_ns.min(self.cfg.sweep_cover_ns());
        true
    }

    /// The timers of flow `f`.
    fn timeouts_of(&self, f: &Flow) -> FlowTimeouts {
        timers(&self.timeouts, f)
    }

    /// A new flow takes the timers in force.
    fn new_flow_timeouts(&mut self, idx: FlowIdx) {
        let now = self.timeouts_now;
        self.flows.get_mut(idx).timeouts = now;
        if let Some(n) = self.timeouts_used.get_mut(usize::from(now)) {
            *n += 1;
        }
    }

    /// Sets a service's ack-lag and output-lag thresholds (`tandem reload` of its
    /// health); its running flows are judged by them from now on. Returns false for an
    /// unknown service.
    pub fn set_service_lags(
        &mut self,
        service: usize,
        ack_lag_ns: u64,
        output_lag_ns: u64,
    ) -> bool {
        let Some(s) = self.cfg.services.get_mut(service) else {
            return false;
        };
        s.ack_lag_ns = Some(ack_lag_ns);
        s.output_lag_ns = Some(output_lag_ns);
        self.sweep_cover_ns = self.sweep_cover_ns.min(self.cfg.sweep_cover_ns());
        true
    }

    /// Adds a service on a VIP and port no other service takes (`tandem reload`); it
    /// is service number `services.len()` from now on. Returns false, changing nothing,
    /// when it overlaps one, or when the engine could not take its replay settings
    /// (a service that logs its clients' bytes, reconnect mode or mirror mode's new
    /// standbys, where none did at the start: there is no log arena).
    pub fn add_service(&mut self, mut s: crate::config::Service) -> bool {
        // Two port selectors overlap when either takes the other's first or last port.
        let bounds = |p: crate::ServicePort| match p {
            crate::ServicePort::Any => (1, u16::MAX),
            crate::ServicePort::Port(n) => (n, n),
            crate::ServicePort::Range(a, b) => (a, b),
        };
        let (first, last) = bounds(s.port);
        let overlaps = self.cfg.services.iter().any(|x| {
            let (a, b) = bounds(x.port);
            x.vip == s.vip && a <= last && first <= b
        });
        if overlaps || (s.log_config().is_some() && self.logs.capacity_bytes() == 0) {
            return false;
        }
        s.replicas
            .reserve(MAX_POOL.saturating_sub(s.replicas.len()));
        if let Some(r) = s.log_config() {
            self.replaying
                .reserve(r.parallel.saturating_sub(self.replaying.capacity()));
        }
        let vip = u32::from(s.vip);
        if !self.vips.contains(&vip) {
            self.vips.push(vip);
        }
        self.cfg.services.push(s);
        self.rotation.push(0);
        self.sweep_cover_ns = self.sweep_cover_ns.min(self.cfg.sweep_cover_ns());
        true
    }

    /// Asks for a sweep of every flow over the next polls: flows of replicas that went
    /// down switch and send their held data even if no packet of theirs arrives.
    pub fn request_failover_sweep(&mut self) {
        self.failover_sweep_left = self.flows.capacity();
    }

    /// Mirror mode: when a replica comes up, a pass over the table gives the flows that
    /// lost a standby a new one there (`Ctx::reprotect`, at most `parallel` replays at a
    /// time per worker); while passes begin new standbys, another follows once one of
    /// those is done. The background sweep reaches the rest too, more slowly.
    fn reprotect_passes(&mut self) {
        let ups = self.replicas.up_generation();
        if ups != self.seen_ups {
            self.seen_ups = ups;
            if self.cfg.services.iter().any(|s| s.reprotect.is_some()) {
                self.reprotect_pass = Some(self.counters.reprotects);
                self.request_failover_sweep();
            }
            return;
        }
        let Some(began_at) = self.reprotect_pass else {
            return;
        };
        if self.failover_sweep_left > 0 {
            return;
        }
        let parallel = self
            .cfg
            .services
            .iter()
            .filter_map(|s| s.reprotect.map(|r| r.parallel as u64))
            .max()
            .unwrap_or(0);
        if self.counters.reprotects == began_at || self.counters.flows_unprotected == 0 {
            // The last pass found nothing to begin: done.
            self.reprotect_pass = None;
        } else if self.counters.reconnects_in_progress < parallel {
            self.reprotect_pass = Some(self.counters.reprotects);
            self.request_failover_sweep();
        }
    }

    /// Whether a requested failover sweep is still running.
    pub fn failover_sweep_pending(&self) -> bool {
        self.failover_sweep_left > 0
    }

    /// Handles a burst received on `side`, draining `bufs`. Lookups of the whole burst
    /// are issued with prefetches before any packet is handled.
    pub fn process_burst<P: BufferPool<B>>(
        &mut self,
        side: Side,
        now: u64,
        bufs: &mut Vec<B>,
        pool: &mut P,
        out: &mut Output<B>,
    ) {
        let outside = side == Side::Outside;
        // The parse results stay in place and are handed on by reference: a `Meta` is
        // large, and moving it per packet cost more than the parse itself.
        let mut classes = core::mem::take(&mut self.classes);
        while !bufs.is_empty() {
            let n = bufs.len().min(BURST);
            // Parse; hash the client endpoints a group of frames at a time (side by side
            // in vector registers), and prefetch each bucket once its hash is known.
            classes.clear();
            for group in bufs[..n].chunks(LANES) {
                let first = classes.len();
                let mut words = [0u64; LANES];
                for (buf, word) in group.iter().zip(&mut words) {
                    let class = classify(buf.bytes(), &self.own, &self.vips);
                    if let Class::Tcp(m) = &class {
                        *word = client_word_of(m, outside);
                    }
                    classes.push(class);
                }
                let hashes = self.hasher.hash(&words);
                for (class, hash) in classes[first..].iter_mut().zip(hashes) {
                    if let Class::Tcp(m) = class {
                        m.hash = hash;
                        self.flows.prefetch_bucket(hash);
                    }
                }
            }
            // Prefetch the flows the buckets point at, before any flow is read.
            for class in &classes {
                if let Class::Tcp(m) = class {
                    if let Some(idx) = self.flows.first_candidate(m.hash) {
                        self.flows.prefetch_flow(idx);
                    }
                }
            }
            // Look up and translate, a frame at a time.
            for (buf, class) in bufs.drain(..n).zip(&classes) {
                self.counters.rx += 1;
                self.dispatch(side, now, buf, class, pool, out);
            }
        }
        self.classes = classes;
    }

    #[inline]
    fn lookup(&self, side: Side, m: &Meta) -> Option<FlowIdx> {
        match side {
            Side::Outside => self.flows.find(m.hash, |f| {
                f.key.client_ip == m.src
                    && f.key.client_port == m.sport
                    && f.key.vip == m.dst
                    && f.key.vip_port == m.dport
            }),
            Side::Inside => self.flows.find(m.hash, |f| {
                f.key.client_ip == m.dst
                    && f.key.client_port == m.dport
                    && f.key.vip_port == m.sport
                    && f.leg_of(m.src).is_some()
            }),
        }
    }

    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn dispatch<P: BufferPool<B>>(
        &mut self,
        side: Side,
        now: u64,
        mut buf: B,
        class: &Class,
        pool: &mut P,
        out: &mut Output<B>,
    ) {
        let m = match class {
            Class::Tcp(m) => m,
            Class::Control => {
                // The pair's announcement is only for an appliance of a pair: elsewhere it
                // is a protocol Tandem does not speak, dropped here as such (a flood of it
                // must not reach the control core).
                if self.cfg.sync.is_none() && crate::parse::is_pair_announce(buf.bytes()) {
                    self.counters.drop(DropReason::NotIpv4);
                    return;
                }
                match out.push_control(buf) {
                    Ok(()) => self.counters.to_control += 1,
                    Err(_) => self.counters.drop(DropReason::ControlFull),
                }
                return;
            }
            Class::Drop(reason) => {
                self.counters.drop(*reason);
                return;
            }
            Class::IcmpError => {
                self.on_icmp_error(side, buf, pool, out);
                return;
            }
        };
        // Here, after the match on the parse, rather than in the burst loop: matching the
        // parse twice and passing the result on cost 10-30 instructions a frame.
        let found = self.lookup(side, m);
        // An outside sender's 802.1Q tag never reaches the inside port (§3.11).
        let untagged;
        let m = if side == Side::Outside && m.l3 != 14 {
            match untag(&mut buf, m) {
                Some(u) => {
                    untagged = u;
                    &untagged
                }
                None => {
                    self.counters.drop(DropReason::VlanTag);
                    return;
                }
            }
        } else {
            m
        };
        let Some(idx) = found else {
            if now < self.sync_grace_until && !is_syn(m) {
                // Just after a takeover: its record may still come (crate::sync).
                self.counters.sync_unknown_flow_drops += 1;
                return;
            }
            match side {
                Side::Outside => self.new_flow(now, buf, m, pool, out),
                Side::Inside => {
                    self.counters.drop(DropReason::NoFlow);
                    self.reset_stray(side, now, &buf, m, pool, out);
                }
            }
            return;
        };
        if self.flows.get(idx).forward {
            self.forward_existing(side, idx, now, buf, m, pool, out);
            return;
        }
        // A record's staleness is that of the takeover: past `SYNC_CATCH_UP_NS` after it,
        // an installed flow follows the ordinary rules, and a segment ahead of it is
        // outside its windows (dropped, as an endpoint drops it), so that a blind
        // attacker who knows the addresses and ports cannot move it on.
        let catch_up_over = self
            .takeover_at
            .is_some_and(|t| now.saturating_sub(t) > SYNC_CATCH_UP_NS);
        let mut ctx = ctx!(self, pool, out, now);
        let flow = self.flows.get_mut(idx);
        if flow.synced != 0 && catch_up_over {
            flow.synced = 0;
        }
        if flow.synced != 0 && ctx.stale_record(flow, side, &buf, m) {
            self.remove_flow(idx);
            return;
        }
        let fate = match side {
            Side::Outside => {
                if flow.phase == FlowPhase::Closed
                    && m.flags.contains(TcpFlags::SYN)
                    && !m.flags.contains(TcpFlags::ACK)
                    && m.seq != flow.client_isn
                {
                    // A new connection on the ports of a closed one (TIME-WAIT reuse).
                    self.remove_flow(idx);
                    self.new_flow(now, buf, m, pool, out);
                    return;
                }
                ctx.on_client(flow, buf, m)
            }
            Side::Inside => match flow.leg_of(m.src) {
                Some(i) => ctx.on_replica(flow, i, buf, m),
                None => {
                    ctx.c.drop(DropReason::NoFlow);
                    Fate::Keep
                }
            },
        };
        if fate == Fate::Remove {
            self.remove_flow(idx);
            return;
        }
        self.queue_replay(idx);
        if self.sync_out.is_some() {
            self.note_sync(idx, now);
        }
        let flow = self.flows.get_mut(idx);
        if flow.phase == FlowPhase::SynSent && flow.first_synack_at != 0 && !flow.handshake_queued {
            flow.handshake_queued = true;
            let wait = timers(&self.timeouts, flow).synack_wait_ns;
            let (key, deadline) = (flow.key, now + wait);
            if !self.queue_handshake(idx, key, deadline) {
                // No room to wait: forward what we have now.
                self.synack_queue_full_handshake(idx, now, pool, out);
            }
        }
    }

    fn synack_queue_full_handshake<P: BufferPool<B>>(
        &mut self,
        idx: FlowIdx,
        now: u64,
        pool: &mut P,
        out: &mut Output<B>,
    ) {
        let mut ctx = ctx!(self, pool, out, now);
        let f = self.flows.get_mut(idx);
        if ctx.complete_handshake(f) == Fate::Remove {
            self.remove_flow(idx);
        } else if self.sync_out.is_some() {
            self.note_sync(idx, now);
        }
    }

    /// A segment to a VIP that matches no flow: only a SYN may create one.
    fn new_flow<P: BufferPool<B>>(
        &mut self,
        now: u64,
        buf: B,
        m: &Meta,
        pool: &mut P,
        out: &mut Output<B>,
    ) {
        let Some(si) = self
            .cfg
            .services
            .iter()
            .position(|s| u32::from(s.vip) == m.dst && s.port.covers(m.dport))
        else {
            self.counters.drop(DropReason::NotServed);
            return;
        };
        if !client_source(m.src) || self.own.contains(&m.src) || self.vips.contains(&m.src) {
            self.counters.drop(DropReason::BadSource);
            return;
        }
        if self.cfg.services[si].forward {
            self.adopt(si, now, buf, m, pool, out);
            return;
        }
        let handshake =
            m.flags.0 & (TcpFlags::SYN.0 | TcpFlags::ACK.0 | TcpFlags::RST.0 | TcpFlags::FIN.0);
        if handshake == TcpFlags::ACK.0 && now < self.cookies_until {
            // Perhaps the ACK of a SYN cookie's SYN-ACK (§3.11).
            match self.check_cookie(now, &buf, m) {
                Some((isn, o)) => return self.cookie_flow(si, now, &buf, m, isn, o, pool, out),
                None => self.counters.syn_cookies_failed += 1,
            }
        }
        if handshake != TcpFlags::SYN.0 {
            self.counters.drop(DropReason::NoFlow);
            self.reset_stray(Side::Outside, now, &buf, m, pool, out);
            return;
        }
        // Read before the choice: a replica that goes down while it is made bumps the
        // generation past this, and the flow's first packet then drops that leg.
        let downs = self.replicas.down_generation();
        let (chosen, n) = self.choose(si);
        if n == 0 {
            self.refuse_no_replica(si, now, &buf, m, pool, out);
            return;
        }
        // §3.11, SYN floods: past the backlog a SYN makes no flow; Tandem answers it
        // with a cookie, and the client's ACK makes the flow (`cookie_flow`).
        if self.counters.half_open as usize >= self.cfg.syn_backlog {
            self.send_cookie(now, &buf, m, pool, out);
            return;
        }
        if self.endpoint_in_use(m, &chosen[..n]) {
            self.counters.drop(DropReason::EndpointInUse);
            return;
        }
        let copies = self.cfg.services[si].copies;
        self.rotation[si] = self.rotation[si].wrapping_add(1);
        let key = FlowKey {
            client_ip: m.src,
            client_port: m.sport,
            vip: m.dst,
            vip_port: m.dport,
        };
        // §3.11, SYN floods: a full table gives up its oldest half-open flow, never an
        // established one (conntrack's early drop).
        let mut slot = self.flows.insert(key);
        if slot.is_none() && self.evict_half_open(now, pool, out) {
            slot = self.flows.insert(key);
        }
        let Some(idx) = slot else {
            self.counters.drop(DropReason::TableFull);
            return;
        };
        self.new_flow_timeouts(idx);
        self.counters.flows_created += 1;
        self.counters.half_open += 1;
        if self.half_open.len() == self.half_open.capacity() {
            // Full of older entries (most of them stale): the oldest record goes; that
            // flow still expires by the sweep.
            self.half_open.pop_front();
        }
        self.half_open.push_back((idx, key, now));
        let frame = buf.bytes();
        let client_mac = EthernetFrame::new_unchecked(frame).src();
        let tcp = m.tcp(frame);
        let f = self.flows.get_mut(idx);
        f.client_mac = client_mac;
        f.client_isn = m.seq;
        f.client_snd_nxt = m.seq.wrapping_add(1);
        f.client_mss = tcp.mss().unwrap_or(536);
        f.client_wscale = tcp.window_scale().map(|s| s.min(14));
        f.client_sack_ok = tcp.sack_permitted();
        if let Some((tsval, _)) = tcp.timestamps() {
            f.client_ts_ok = true;
            f.client_tsval = tsval;
            f.tsval_to_legs = tsval;
        }
        f.service = u16::try_from(si).unwrap_or(u16::MAX);
        f.client_window = tcp.window();
        // Windows in a SYN are never scaled (RFC 7323 §2.2).
        f.client_max_wnd = u32::from(tcp.window());
        start_legs(
            f,
            now,
            &chosen[..n],
            copies,
            downs,
            &self.replicas,
            &mut self.counters,
        );
        let mut ctx = ctx!(self, pool, out, now);
        ctx.copy_to_legs(f, buf, m);
    }

    /// §3.11, SYN floods: answers the SYN `m` with a SYN-ACK whose ISN is a SYN cookie
    /// ([`cookie`]), and keeps nothing. Its window is zero: the client may send no data
    /// until the replicas have answered, when `complete_cookie_handshake` opens it (a
    /// window update, which Linux acts on at once); nothing the client sends is lost.
    fn send_cookie<P: BufferPool<B>>(
        &mut self,
        now: u64,
        buf: &B,
        m: &Meta,
        pool: &mut P,
        out: &mut Output<B>,
    ) {
        let frame = buf.bytes();
        let tcp = m.tcp(frame);
        let ts = tcp.timestamps();
        let o = SynOptions::from_syn(
            tcp.mss(),
            tcp.window_scale(),
            tcp.sack_permitted(),
            ts.is_some(),
        );
        let key = FlowKey {
            client_ip: m.src,
            client_port: m.sport,
            vip: m.dst,
            vip_port: m.dport,
        };
        let isn = cookie::make(&self.cfg.hash_key, now, &key, m.seq, o);
        let mut opts = OptionWriter::new();
        opts.mss(self.cfg.syn_cookie_mss);
        if o.sack {
            opts.sack_permitted();
        }
        if let Some((tsval, _)) = ts {
            // Tandem's clock, in milliseconds; replicas' are shifted onto it later.
            opts.timestamps((now / 1_000_000) as u32, tsval);
        }
        if o.wscale.is_some() {
            opts.window_scale(COOKIE_WSCALE);
        }
        let spec = TcpBuild {
            src_mac: MacAddr::ZERO, // `Ctx::emit` sets the port's own
            dst_mac: EthernetFrame::new_unchecked(frame).src(),
            vlan_tci: None,
            src_ip: Ipv4Addr::from(m.dst),
            dst_ip: Ipv4Addr::from(m.src),
            src_port: m.dport,
            dst_port: m.sport,
            seq: isn.0,
            ack: m.seq.wrapping_add(1).0,
            flags: TcpFlags::SYN | TcpFlags::ACK,
            window: 0,
            ttl: 64,
            options: opts.as_bytes(),
            payload: &[],
        };
        let mut ctx = ctx!(self, pool, out, now);
        if ctx.emit(Side::Outside, &spec) {
            self.counters.syn_cookies_sent += 1;
            self.cookies_until = now + COOKIE_LIFE_NS;
        }
    }

    /// The client's ISN and SYN options if ACK `m` acks a SYN cookie. Its sequence number
    /// is the ISN plus one, or, in a zero-window probe (Linux sends one when the ACK that
    /// should have made the flow was lost), the ISN itself.
    fn check_cookie(&self, now: u64, buf: &B, m: &Meta) -> Option<(Seq, SynOptions)> {
        let key = FlowKey {
            client_ip: m.src,
            client_port: m.sport,
            vip: m.dst,
            vip_port: m.dport,
        };
        let cookie = m.ack.wrapping_sub(1);
        let k = &self.cfg.hash_key;
        let isn = m.seq.wrapping_sub(1);
        let found = match cookie::check(k, now, &key, isn, cookie) {
            Some(o) => Some((isn, o)),
            None if m.payload_len == 0 => {
                cookie::check(k, now, &key, m.seq, cookie).map(|o| (m.seq, o))
            }
            None => None,
        }?;
        // A client that agreed to timestamps sends them on every segment (RFC 7323).
        (!found.1.ts || m.timestamps(buf.bytes()).is_some()).then_some(found)
    }

    /// A flow from a SYN cookie the client's ACK `m` brought back: the client is
    /// established with Tandem, which now opens the replicas' connections with the
    /// client's ISN and options (`resend_syn`) and completes them itself when they answer
    /// (`complete_cookie_handshake`). Where none can be made the client gets a RST at
    /// once, as a host that lost the connection would send.
    #[allow(clippy::too_many_arguments)]
    fn cookie_flow<P: BufferPool<B>>(
        &mut self,
        si: usize,
        now: u64,
        buf: &B,
        m: &Meta,
        isn: Seq,
        o: SynOptions,
        pool: &mut P,
        out: &mut Output<B>,
    ) {
        let downs = self.replicas.down_generation();
        let (chosen, n) = self.choose(si);
        let refused = if n == 0 {
            Some(DropReason::NoReplica)
        } else if self.endpoint_in_use(m, &chosen[..n]) {
            Some(DropReason::EndpointInUse)
        } else {
            None
        };
        let key = FlowKey {
            client_ip: m.src,
            client_port: m.sport,
            vip: m.dst,
            vip_port: m.dport,
        };
        let mut slot = None;
        if refused.is_none() {
            slot = self.flows.insert(key);
            if slot.is_none() && self.evict_half_open(now, pool, out) {
                slot = self.flows.insert(key);
            }
        }
        let Some(idx) = slot else {
            self.counters.drop(refused.unwrap_or(DropReason::TableFull));
            self.reset_stray(Side::Outside, now, buf, m, pool, out);
            return;
        };
        self.new_flow_timeouts(idx);
        self.counters.syn_cookies_accepted += 1;
        self.counters.flows_created += 1;
        self.rotation[si] = self.rotation[si].wrapping_add(1);
        let copies = self.cfg.services[si].copies;
        let frame = buf.bytes();
        let tcp = m.tcp(frame);
        let f = self.flows.get_mut(idx);
        f.proxied = true;
        f.client_mac = EthernetFrame::new_unchecked(frame).src();
        f.service = u16::try_from(si).unwrap_or(u16::MAX);
        f.client_isn = isn;
        f.client_snd_nxt = isn.wrapping_add(1);
        f.client_mss = o.mss;
        f.client_wscale = o.wscale;
        f.client_sack_ok = o.sack;
        if let (true, Some((tsval, tsecr))) = (o.ts, tcp.timestamps()) {
            f.client_ts_ok = true;
            f.client_tsval = tsval;
            f.tsval_to_legs = tsval;
            // The TSval of the cookie's SYN-ACK, echoed: the client's view of the clock.
            f.max_tsval_sent = tsecr;
        }
        // What Tandem's SYN-ACK agreed with the client (`send_cookie`).
        f.client_shift = o.wscale.unwrap_or(0);
        f.visible_wscale = if o.wscale.is_some() { COOKIE_WSCALE } else { 0 };
        f.visible_mss = self.cfg.syn_cookie_mss;
        f.sack_on = o.sack;
        f.ts_on = o.ts;
        f.visible_isn = m.ack.wrapping_sub(1);
        f.to_client_nxt = m.ack;
        f.client_ack = m.ack;
        f.client_acked = true;
        f.ack_sent = f.client_snd_nxt;
        f.edge_sent = f.client_snd_nxt;
        f.client_window = tcp.window();
        f.client_max_wnd = u32::from(tcp.window()) << f.client_shift;
        start_legs(
            f,
            now,
            &chosen[..n],
            copies,
            downs,
            &self.replicas,
            &mut self.counters,
        );
        let mut ctx = ctx!(self, pool, out, now);
        ctx.resend_syn(f);
        if self.cookie_syn_queue.len() < self.cookie_syn_queue.capacity() {
            self.cookie_syn_queue
                .push_back((idx, key, now + COOKIE_SYN_RTO_NS));
        }
    }

    /// Picks up to `copies` replicas for a new flow of service `si` from the live (not
    /// draining) replicas of its pool: for an ordered service the first ones in pool
    /// order; otherwise the live replicas that follow a rotating offset over the *live*
    /// ones, so that with N live the designated primary cycles through all N and each is
    /// in k of every N new flows, whichever replicas are down. The caller advances the
    /// rotation once it has used the pick.
    fn choose(&self, si: usize) -> ([ReplicaId; MAX_COPIES], usize) {
        let svc = &self.cfg.services[si];
        let k = svc.copies.min(MAX_COPIES);
        let up = |r: ReplicaId| self.replicas.health(r) == Health::Up;
        let live = svc.replicas.iter().filter(|&&r| up(r)).count();
        let skip = if svc.ordered || live == 0 {
            0
        } else {
            self.rotation[si] % live
        };
        // Two forward passes, each replica visited at most once per pass and the second
        // only over the positions before the first pick: no replica twice, even if the
        // control core changes a health between the count and the picks.
        let mut chosen = [ReplicaId(0); MAX_COPIES];
        let mut n = 0;
        let (mut j, mut first) = (0, svc.replicas.len());
        for (pos, &r) in svc.replicas.iter().enumerate() {
            if n == k {
                break;
            }
            if !up(r) {
                continue;
            }
            if j >= skip {
                first = first.min(pos);
                chosen[n] = r;
                n += 1;
            }
            j += 1;
        }
        for &r in &svc.replicas[..first] {
            if n == k {
                break;
            }
            if up(r) {
                chosen[n] = r;
                n += 1;
            }
        }
        (chosen, n)
    }

    /// Forward mode: a segment of no flow, SYN or not, adopts a flow onto one live
    /// replica (mid-stream for a stateless generator) and is forwarded.
    fn adopt<P: BufferPool<B>>(
        &mut self,
        si: usize,
        now: u64,
        buf: B,
        m: &Meta,
        pool: &mut P,
        out: &mut Output<B>,
    ) {
        let downs = self.replicas.down_generation();
        let (chosen, n) = self.choose(si);
        if n == 0 {
            self.counters.drop(DropReason::NoReplica);
            return;
        }
        if self.endpoint_in_use(m, &chosen[..1]) {
            self.counters.drop(DropReason::EndpointInUse);
            return;
        }
        let key = FlowKey {
            client_ip: m.src,
            client_port: m.sport,
            vip: m.dst,
            vip_port: m.dport,
        };
        let Some(idx) = self.flows.insert(key) else {
            self.counters.drop(DropReason::TableFull);
            return;
        };
        self.new_flow_timeouts(idx);
        self.rotation[si] = self.rotation[si].wrapping_add(1);
        self.counters.flows_created += 1;
        self.counters.flows_adopted += 1;
        let r = chosen[0];
        let client_mac = EthernetFrame::new_unchecked(buf.bytes()).src();
        let f = self.flows.get_mut(idx);
        f.forward = true;
        f.service = u16::try_from(si).unwrap_or(u16::MAX);
        f.phase = FlowPhase::Established;
        f.client_mac = client_mac;
        f.created_at = now;
        f.n_legs = 1;
        f.active = 0;
        f.checked_downs = downs;
        f.legs[0] = Leg {
            replica: r,
            epoch: self.replicas.epoch(r),
            addr: u32::from(self.replicas.addr(r)),
            alive: true,
            answered: true,
            ..Leg::default()
        };
        let mut ctx = ctx!(self, pool, out, now);
        if ctx.forward_from_client(f, buf, m) == Fate::Remove {
            self.remove_flow(idx);
        }
    }

    /// Forward mode: a segment of an existing forward-mode flow. A flow whose replica is
    /// gone ends; a client segment then adopts a new flow on a live replica (the TCP
    /// connection behind it breaks: forward mode protects nothing).
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn forward_existing<P: BufferPool<B>>(
        &mut self,
        side: Side,
        idx: FlowIdx,
        now: u64,
        buf: B,
        m: &Meta,
        pool: &mut P,
        out: &mut Output<B>,
    ) {
        let downs = self.replicas.down_generation();
        let f = self.flows.get_mut(idx);
        if downs != f.checked_downs {
            f.checked_downs = downs;
            let leg = &f.legs[0];
            if !self.replicas.leg_alive(leg.replica, leg.epoch) {
                self.counters.legs_lost += 1;
                self.remove_flow(idx);
                match side {
                    Side::Outside => self.new_flow(now, buf, m, pool, out),
                    Side::Inside => self.counters.drop(DropReason::DeadLeg),
                }
                return;
            }
        }
        let mut ctx = ctx!(self, pool, out, now);
        let fate = match side {
            Side::Outside => ctx.forward_from_client(f, buf, m),
            Side::Inside => ctx.forward_from_replica(f, buf, m),
        };
        if fate == Fate::Remove {
            self.remove_flow(idx);
        }
    }

    /// Timers and the background sweep; call it every loop iteration (it is cheap when
    /// there is nothing to do).
    pub fn poll<P: BufferPool<B>>(&mut self, now: u64, pool: &mut P, out: &mut Output<B>) {
        self.time_replays(now, pool, out);
        self.expire_half_open(now, pool, out);
        self.repeat_cookie_syns(now, pool, out);
        // Handshakes whose SYN-ACK wait is over.
        while let Some(&(idx, key, deadline)) = self.synack_queue.front() {
            if deadline > now || out.tx_room() < MAX_COPIES + 1 {
                break;
            }
            self.synack_queue.pop_front();
            if !self.flows.is_used(idx) {
                continue;
            }
            let mut ctx = ctx!(self, pool, out, now);
            let f = self.flows.get_mut(idx);
            if f.key != key || f.phase != FlowPhase::SynSent {
                continue;
            }
            // A replica that has not answered may have lost the SYN or its SYN-ACK: ask
            // again (Linux answers a repeated SYN with its SYN-ACK) before giving up on it.
            let pending = f.legs().iter().any(|l| l.alive && !l.answered);
            if pending && f.syn_retries < SYN_RETRIES {
                f.syn_retries += 1;
                ctx.resend_syn(f);
                let deadline = now + timers(&self.timeouts, f).synack_wait_ns;
                if self.synack_queue.len() < self.synack_queue.capacity() {
                    self.synack_queue.push_back((idx, key, deadline));
                    continue;
                }
            }
            let f = self.flows.get_mut(idx);
            if ctx.complete_handshake(f) == Fate::Remove {
                self.remove_flow(idx);
            } else if self.sync_out.is_some() {
                self.note_sync(idx, now);
            }
        }
        self.reprotect_passes();
        self.sweep(now, pool, out);
        if self.kick_left > 0 {
            self.kick_installed(now, pool, out);
        }
    }

    fn sweep<P: BufferPool<B>>(&mut self, now: u64, pool: &mut P, out: &mut Output<B>) {
        let (mut budget, batch) = if self.failover_sweep_left > 0 {
            (self.cfg.failover_sweep_batch, self.cfg.failover_sweep_batch)
        } else if now >= self.next_sweep_at {
            // The background sweep only serves timeouts: a step per interval, visiting
            // just enough flows to cover the table once per cover period. Each visit
            // misses the cache; a fixed batch of 64 spent a quarter of a worker
            // re-sweeping 10 000 flows every 3 ms (perf record, memif benchmark).
            self.next_sweep_at = now + self.cfg.sweep_interval_ns;
            // Sized by the time since the last step (a busy worker polls late, and the
            // pace must not fall behind with it) and by the flows of the current round
            // of the table, or more if it grew: flows removed on the way do not slow
            // the rest of the round (sized by what is left, a round of expiring flows
            // would decay and never end).
            let since = match self.last_sweep_at {
                0 => self.cfg.sweep_interval_ns,
                t => now.saturating_sub(t),
            };
            self.last_sweep_at = now;
            let flows = self.flows.len().max(self.sweep_round_flows);
            let per_step = (flows as u128 * u128::from(since.max(1)))
                .div_ceil(u128::from(self.sweep_cover_ns));
            let per_step = usize::try_from(per_step).unwrap_or(usize::MAX);
            (
                per_step.clamp(1, self.cfg.sweep_batch.max(1)),
                self.cfg.sweep_batch,
            )
        } else {
            return;
        };
        let cap = self.flows.capacity() as FlowIdx;
        if self.flows.is_empty() || cap == 0 {
            self.failover_sweep_left = 0;
            return;
        }
        let failover = self.failover_sweep_left > 0;
        let cursor_at_start = self.sweep_cursor;
        if let Some(sync) = self.sync_out.as_mut() {
            sync.refresh_left = sync.cfg.refresh_per_poll;
        }
        // Slots a batch may look at: a few bitmap words per flow of the full batch (not
        // of a step's smaller budget, so a sparse table is still crossed quickly), and
        // never the same slot twice. A sparse table (one flow in a million slots) costs
        // a bounded scan, not a walk of the whole bitmap per flow of the budget.
        let mut slots = batch.saturating_mul(SWEEP_SLOTS_PER_FLOW).min(cap as usize);
        // The walk is in slot order: fetch the first slots now, then each one
        // `SWEEP_PREFETCH_AHEAD` past the flow visited (a hint: for a free slot, wasted).
        for k in 0..SWEEP_PREFETCH_AHEAD.min(cap) {
            self.flows
                .prefetch_flow(self.sweep_cursor.wrapping_add(k) % cap);
        }
        while budget > 0 && slots > 0 && out.tx_room() >= 2 * MAX_COPIES + 4 {
            // A failover sweep ends once it has covered the table.
            if failover && self.failover_sweep_left == 0 {
                break;
            }
            let Some(idx) = self.flows.next_used_within(self.sweep_cursor, slots) else {
                // The rest of the window is free: step over it.
                self.failover_sweep_left = self.failover_sweep_left.saturating_sub(slots);
                self.sweep_cursor =
                    ((self.sweep_cursor as usize + slots) % cap as usize) as FlowIdx;
                break;
            };
            // Progress over the slots, counting the empty ones skipped.
            let skipped = (idx + cap - self.sweep_cursor) % cap;
            slots = slots.saturating_sub(skipped as usize + 1);
            self.failover_sweep_left = self
                .failover_sweep_left
                .saturating_sub(skipped as usize + 1);
            self.sweep_cursor = (idx + 1) % cap;
            budget -= 1;
            self.flows
                .prefetch_flow(idx.wrapping_add(SWEEP_PREFETCH_AHEAD) % cap);
            let mut ctx = ctx!(self, pool, out, now);
            let f = self.flows.get_mut(idx);
            if ctx.sweep_flow(f) == Fate::Remove {
                self.remove_flow(idx);
            } else {
                self.queue_replay(idx);
                if self.sync_out.is_some() {
                    self.note_sync(idx, now);
                    self.refresh_sync(idx, now);
                }
            }
        }
        // Past the end of the table: a new round, sized by the flows there are now.
        if self.sweep_cursor < cursor_at_start || self.sweep_round_flows == 0 {
            self.sweep_round_flows = self.flows.len();
        }
    }

    /// Reconnect mode: a flow that began a replay is timed from here on (`time_replays`).
    fn queue_replay(&mut self, idx: FlowIdx) {
        let f = self.flows.get_mut(idx);
        let Some(r) = f.replay.as_mut() else {
            return;
        };
        if r.queued {
            return;
        }
        r.queued = true;
        // Room was checked when it began (`Ctx::start_replay`: at most `parallel`).
        self.replaying.push((idx, f.key));
        self.counters.reconnects_in_progress = self.replaying.len() as u64;
    }

    /// Reconnect mode: every replay in progress, each poll: the connect timeout, the
    /// log sent again from the new replica's ack when it stops taking it, and the end.
    fn time_replays<P: BufferPool<B>>(&mut self, now: u64, pool: &mut P, out: &mut Output<B>) {
        let mut k = 0;
        while k < self.replaying.len() {
            let (idx, key) = self.replaying[k];
            let live = self.flows.is_used(idx) && {
                let f = self.flows.get(idx);
                f.key == key && f.replay.is_some()
            };
            if !live {
                self.replaying.swap_remove(k);
                continue;
            }
            let mut ctx = ctx!(self, pool, out, now);
            let f = self.flows.get_mut(idx);
            if ctx.time_replay(f) == Fate::Remove {
                self.remove_flow(idx);
                self.replaying.swap_remove(k);
                continue;
            }
            if self.sync_out.is_some() {
                self.note_sync(idx, now);
            }
            if self.flows.get(idx).replay.is_none() {
                self.replaying.swap_remove(k);
                continue;
            }
            k += 1;
        }
        self.counters.reconnects_in_progress = self.replaying.len() as u64;
    }

    /// Cookie-made flows whose replicas have not answered get their SYN again: the client,
    /// established, repeats nothing that would. The sweep ends those still silent at the
    /// SYN timeout.
    fn repeat_cookie_syns<P: BufferPool<B>>(
        &mut self,
        now: u64,
        pool: &mut P,
        out: &mut Output<B>,
    ) {
        while let Some(&(idx, key, due)) = self.cookie_syn_queue.front() {
            if due > now || out.tx_room() < MAX_COPIES {
                return;
            }
            self.cookie_syn_queue.pop_front();
            if !self.flows.is_used(idx) {
                continue;
            }
            let f = self.flows.get_mut(idx);
            let waiting = f.key == key && f.proxied && f.phase == FlowPhase::SynSent;
            if !waiting || f.first_synack_at != 0 || f.syn_retries >= COOKIE_SYN_RETRIES {
                continue;
            }
            f.syn_retries += 1;
            let mut ctx = ctx!(self, pool, out, now);
            ctx.resend_syn(f);
            if self.cookie_syn_queue.len() < self.cookie_syn_queue.capacity() {
                self.cookie_syn_queue
                    .push_back((idx, key, now + COOKIE_SYN_RTO_NS));
            }
        }
    }

    /// The front of the half-open queue if it is still a half-open flow, else `None`
    /// after dropping the stale entries before it (at most `limit` of them).
    fn oldest_half_open(&mut self, limit: usize) -> Option<(FlowIdx, u64)> {
        for _ in 0..limit {
            let &(idx, key, created) = self.half_open.front()?;
            if self.flows.is_used(idx) {
                let f = self.flows.get(idx);
                if f.key == key && f.created_at == created && f.is_half_open() && !f.proxied {
                    return Some((idx, created));
                }
            }
            self.half_open.pop_front();
        }
        None
    }

    /// §3.11: half-open flows never outlive `syn_timeout`, counted from their SYN: a
    /// replica retransmitting its SYN-ACK keeps none alive. Their replicas get a RST, so
    /// their own half-open connections end too.
    fn expire_half_open<P: BufferPool<B>>(&mut self, now: u64, pool: &mut P, out: &mut Output<B>) {
        let mut budget = HALF_OPEN_EXPIRY_BATCH;
        while budget > 0 && out.tx_room() >= MAX_COPIES {
            let Some((idx, created)) = self.oldest_half_open(HALF_OPEN_EXPIRY_BATCH) else {
                return;
            };
            let syn = self.timeouts_of(self.flows.get(idx)).syn_ns;
            if now.saturating_sub(created) <= syn {
                return;
            }
            budget -= 1;
            self.half_open.pop_front();
            self.end_half_open(idx, now, pool, out);
            self.counters.half_open_expired += 1;
        }
    }

    /// A full table's room for a new SYN: the oldest half-open flow ends (its replicas
    /// get a RST). False when there is none: established flows are never evicted.
    fn evict_half_open<P: BufferPool<B>>(
        &mut self,
        now: u64,
        pool: &mut P,
        out: &mut Output<B>,
    ) -> bool {
        // Bounded: a table of established flows may have queued many stale entries.
        let Some((idx, _)) = self.oldest_half_open(4 * BURST) else {
            return false;
        };
        self.half_open.pop_front();
        self.end_half_open(idx, now, pool, out);
        self.counters.half_open_evicted += 1;
        true
    }

    /// Ends half-open flow `idx`: a RST to each replica that answered (at the sequence
    /// its half-open connection expects), then out of the table.
    fn end_half_open<P: BufferPool<B>>(
        &mut self,
        idx: FlowIdx,
        now: u64,
        pool: &mut P,
        out: &mut Output<B>,
    ) {
        let mut ctx = ctx!(self, pool, out, now);
        let f = self.flows.get_mut(idx);
        let seq = f.client_isn.wrapping_add(1);
        for i in 0..f.n_legs as usize {
            if f.legs[i].alive && f.legs[i].answered {
                ctx.synth_rst_to_leg(f, i, seq);
            }
        }
        self.remove_flow(idx);
    }

    /// §3.11, path-MTU discovery: an ICMP "fragmentation needed" from the client's path
    /// about a segment Tandem sent the client goes to every replica of the flow, as if
    /// about the segment that replica sent: addressed to it, quoting its address and its
    /// own sequence number. Only when the quoted sequence number is one the flow has in
    /// flight (RFC 5927 §4.1), so a blind ICMP cannot shrink anybody's MSS. Other ICMP
    /// errors are counted and dropped: a TCP connection outlives them (RFC 1122
    /// §4.2.3.9), and a replica cannot act on them.
    #[cold]
    fn on_icmp_error<P: BufferPool<B>>(
        &mut self,
        side: Side,
        mut buf: B,
        pool: &mut P,
        out: &mut Output<B>,
    ) {
        let Some(mut q) = QuotedTcp::parse(buf.bytes()) else {
            self.counters.drop(DropReason::Malformed);
            return;
        };
        let key = FlowKey {
            client_ip: q.dst,
            client_port: q.dport,
            vip: q.src,
            vip_port: q.sport,
        };
        let found = self.flows.find_key(&key);
        let (Side::Outside, Some(idx), true) = (side, found, q.frag_needed) else {
            self.counters.drop(DropReason::IcmpError);
            return;
        };
        let f = self.flows.get(idx);
        // In flight: sent to the client and not yet acked by it.
        let una = if f.client_acked {
            f.client_ack
        } else {
            f.visible_isn
        };
        if f.is_half_open() || q.seq < una || q.seq >= f.to_client_nxt.later(una.wrapping_add(1)) {
            self.counters.drop(DropReason::IcmpError);
            return;
        }
        if q.l3 != 14 {
            // An outside sender's tag stays outside (see `untag`).
            buf.bytes_mut().copy_within(0..12, 4);
            if !buf.trim_front(4) {
                self.counters.drop(DropReason::VlanTag);
                return;
            }
            q = q.shifted(4);
        }
        let n = f.n_legs as usize;
        let targets = |l: &Leg| l.alive && l.answered;
        let Some(last) = f.legs[..n].iter().rposition(targets) else {
            self.counters.drop(DropReason::NoReplica);
            return;
        };
        let mut original = Some(buf);
        for i in 0..=last {
            let leg = f.legs[i];
            if !targets(&leg) {
                continue;
            }
            let Some(mac) = self.replicas.mac(leg.replica) else {
                self.counters.drop(DropReason::NoNeighbour);
                continue;
            };
            let copy = if i == last {
                original.take()
            } else {
                original.as_ref().and_then(|b| pool.copy(b))
            };
            let Some(mut copy) = copy else {
                self.counters.drop(DropReason::NoBuffer);
                continue;
            };
            q.rewrite_for(copy.bytes_mut(), leg.addr, q.seq.wrapping_add(leg.delta));
            set_macs(copy.bytes_mut(), mac, self.cfg.inside_mac);
            match out.push_tx(Side::Inside, copy) {
                Ok(()) => {
                    self.counters.tx += 1;
                    self.counters.icmp_frag_needed += 1;
                }
                Err(_) => self.counters.drop(DropReason::TxFull),
            }
        }
    }

    /// §3.10: a segment of no flow gets a RST, as a host without the connection answers
    /// it (RFC 793 §3.4: at the segment's ack, or acking it when it has none), never one
    /// for a RST, and at most [`STRAY_RSTS_PER_PERIOD`] a period.
    fn reset_stray<P: BufferPool<B>>(
        &mut self,
        side: Side,
        now: u64,
        buf: &B,
        m: &Meta,
        pool: &mut P,
        out: &mut Output<B>,
    ) {
        if self.rst_as_host(side, now, buf, m, pool, out) {
            self.counters.stray_resets += 1;
        }
    }

    /// Answers the segment `m` with a RST as a host with no such connection would
    /// (RFC 9293 §3.10.7.1), at most [`STRAY_RSTS_PER_PERIOD`] a period for this worker;
    /// whether one was sent. Never for a RST.
    fn rst_as_host<P: BufferPool<B>>(
        &mut self,
        side: Side,
        now: u64,
        buf: &B,
        m: &Meta,
        pool: &mut P,
        out: &mut Output<B>,
    ) -> bool {
        if m.flags.contains(TcpFlags::RST) {
            return false;
        }
        let (start, sent) = &mut self.stray_rst_period;
        if now.saturating_sub(*start) >= STRAY_RST_PERIOD_NS {
            (*start, *sent) = (now, 0);
        }
        if *sent >= STRAY_RSTS_PER_PERIOD {
            return false;
        }
        *sent += 1;
        let (seq, ack, flags) = if m.flags.contains(TcpFlags::ACK) {
            (m.ack.0, 0, TcpFlags::RST)
        } else {
            (
                0,
                m.seq.wrapping_add(m.seq_len()).0,
                TcpFlags::RST | TcpFlags::ACK,
            )
        };
        let eth = EthernetFrame::new_unchecked(buf.bytes());
        let spec = TcpBuild {
            src_mac: MacAddr::ZERO, // `Ctx::emit` sets the port's own
            dst_mac: eth.src(),
            vlan_tci: None,
            src_ip: Ipv4Addr::from(m.dst),
            dst_ip: Ipv4Addr::from(m.src),
            src_port: m.dport,
            dst_port: m.sport,
            seq,
            ack,
            flags,
            window: 0,
            ttl: 64,
            options: &[],
            payload: &[],
        };
        let mut ctx = ctx!(self, pool, out, now);
        ctx.emit(side, &spec)
    }

    /// Whether a flow of the client endpoint of `m` (address and port) on the same port,
    /// through another VIP, uses one of `replicas`. A replica knows a connection by the
    /// client's address and port, its own address and the port, so to it both flows
    /// would be one, and the way back (`lookup` on the inside) could not tell them apart.
    fn endpoint_in_use(&self, m: &Meta, replicas: &[ReplicaId]) -> bool {
        self.flows
            .find(m.hash, |f| {
                f.key.client_ip == m.src
                    && f.key.client_port == m.sport
                    && f.key.vip_port == m.dport
                    && replicas
                        .iter()
                        .any(|&r| f.leg_of(u32::from(self.replicas.addr(r))).is_some())
            })
            .is_some()
    }

    /// Frees what flow `idx` holds and takes it out of the table.
    fn remove_flow(&mut self, idx: FlowIdx) {
        let f = self.flows.get_mut(idx);
        for l in f.legs.iter_mut() {
            self.hold.clear(&mut l.hold);
        }
        self.logs.free(&mut f.log);
        if let Some(x) = f.exchange.take() {
            self.exchanges.release(x);
        }
        if f.unprotected {
            self.counters.flows_unprotected = self.counters.flows_unprotected.saturating_sub(1);
        }
        if f.is_half_open() && !f.proxied {
            self.counters.half_open = self.counters.half_open.saturating_sub(1);
        }
        if let Some(n) = self.timeouts_used.get_mut(usize::from(f.timeouts)) {
            *n = n.saturating_sub(1);
        }
        // The peer has this flow (a record of it was queued): it removes it too.
        if f.sync_mark != 0 {
            if let Some(sync) = self.sync_out.as_mut() {
                sync.push(&mut self.counters, idx, f.key, SyncEvent::Removed);
            }
        }
        f.phase = FlowPhase::Free;
        self.flows.remove(idx);
        self.counters.flows_removed += 1;
    }

    /// Queues `idx` for the end of its SYN-ACK wait.
    fn queue_handshake(&mut self, idx: FlowIdx, key: FlowKey, deadline: u64) -> bool {
        if self.synack_queue.len() == self.synack_queue.capacity() {
            return false;
        }
        self.synack_queue.push_back((idx, key, deadline));
        true
    }

    /// A SYN for service `si`, none of whose replicas is live: a counted `no_replica`
    /// drop, answered as the service says. With [`OnNoReplica::Reset`] the client gets a
    /// RST+ACK as from a closed port (seq 0, ack its ISN + 1 + any SYN data), so it fails
    /// at once ("connection refused") instead of after its SYN retransmissions. That RST
    /// cannot make Tandem an amplifier: one at most per SYN, no larger than the SYN (a
    /// 54-byte frame), to the SYN's source; and it shares the stray RSTs' limit (1000 a
    /// second per worker), so a spoofed SYN flood at a dead service reflects no more than
    /// that at its forged sources. A client whose RST the limit swallowed retransmits
    /// its SYN and is answered then.
    fn refuse_no_replica<P: BufferPool<B>>(
        &mut self,
        si: usize,
        now: u64,
        buf: &B,
        m: &Meta,
        pool: &mut P,
        out: &mut Output<B>,
    ) {
        self.counters.drop(DropReason::NoReplica);
        if self.cfg.services[si].no_replica == OnNoReplica::Reset
            && self.rst_as_host(Side::Outside, now, buf, m, pool, out)
        {
            self.counters.no_replica_resets += 1;
        }
    }
}

/// Everything a rule needs besides the flow, borrowed apart from the flow table.
struct Ctx<'a, B: PacketBuf, P: BufferPool<B>> {
    cfg: &'a EngineConfig,
    timeouts: &'a [FlowTimeouts],
    replicas: &'a ReplicaTable,
    hold: &'a mut HoldPool<B>,
    logs: &'a mut LogArena,
    exchanges: &'a mut Exchanges,
    c: &'a mut Counters,
    pool: &'a mut P,
    out: &'a mut Output<B>,
    now: u64,
}

/// The timers of flow `f` among `sets` (the first set if its index is out of range,
/// which no flow's is).
#[inline]
fn timers(sets: &[FlowTimeouts], f: &Flow) -> FlowTimeouts {
    sets.get(usize::from(f.timeouts))
        .or_else(|| sets.first())
        .copied()
        .unwrap_or_default()
}

/// Window field for `bytes` of window at `shift`, clamped to the 16-bit field
/// (RFC 7323 §2.3).
#[inline]
fn scaled_window(bytes: u32, shift: u8) -> u16 {
    (bytes >> shift).min(u32::from(u16::MAX)) as u16
}

/// Rewrites a window field from one scale to another.
#[inline]
fn rescale(field: u16, from: u8, to: u8) -> u16 {
    if from == to {
        field
    } else {
        scaled_window(u32::from(field) << from, to)
    }
}

impl<'a, B: PacketBuf, P: BufferPool<B>> Ctx<'a, B, P> {
    // ---- output -----------------------------------------------------------------------

    #[inline]
    fn tx(&mut self, side: Side, buf: B) {
        match self.out.push_tx(side, buf) {
            Ok(()) => self.c.tx += 1,
            Err(_) => self.c.drop(DropReason::TxFull),
        }
    }

    fn signal(&mut self, leg: &mut Leg, kind: SignalKind) {
        self.signal_at(leg, kind, 0);
    }

    /// [`Self::signal`] with the stream offset a divergence was found after.
    fn signal_at(&mut self, leg: &mut Leg, kind: SignalKind, offset: u32) {
        // Once per kind and leg: an unconfirmed suspicion of one kind must not mute
        // another (ack lag first, then the output lag of a frozen process).
        let bit = 1u8 << (kind as u8);
        if leg.signalled & bit != 0 {
            return;
        }
        leg.signalled |= bit;
        self.raise(Signal {
            replica: leg.replica,
            kind,
            at: self.now,
            offset,
        });
    }

    fn raise(&mut self, s: Signal) {
        if self.out.push_signal(s) {
            self.c.signals += 1;
        } else {
            self.c.signals_lost += 1;
        }
    }

    // ---- client → replicas ------------------------------------------------------------

    /// A segment from the client of an existing flow.
    fn on_client(&mut self, f: &mut Flow, buf: B, m: &Meta) -> Fate {
        let flags = m.flags;
        if flags.contains(TcpFlags::RST) {
            return self.on_client_rst(f, buf, m);
        }
        if flags.contains(TcpFlags::SYN) {
            // A retransmitted SYN: the replicas answer it themselves. (Not of a cookie-made
            // flow: its client has its SYN-ACK, from Tandem.)
            if m.seq == f.client_isn && !f.proxied {
                if self.refresh_legs(f) == Fate::Remove {
                    return Fate::Remove;
                }
                self.copy_to_legs(f, buf, m);
            } else {
                self.c.drop(DropReason::BadState);
            }
            return Fate::Keep;
        }
        if f.phase == FlowPhase::SynSent {
            // Nothing but a SYN can come before the client has seen a SYN-ACK.
            self.c.drop(DropReason::BadState);
            return Fate::Keep;
        }
        // §3.11: a segment the client's peer would not accept changes nothing.
        let in_window = match self.accept_from_client(f, &buf, m) {
            Ok(w) => w,
            Err(reason) => {
                self.c.drop(reason);
                return Fate::Keep;
            }
        };
        if !in_window && m.seq.wrapping_add(m.seq_len()) == f.ack_sent {
            // A retransmission that ends at the ack: a replica whose ack that is takes its
            // TSval (Linux accepts it), so Tandem's own segments carry it too
            // (`tsval_to_legs`; in the window, `record_client`). One ending before it no
            // replica takes: neither does Tandem, or a forged one could move the TSval
            // the replicas get from it.
            if let Some((tsval, _)) = m.timestamps(buf.bytes()) {
                if Seq(tsval) > Seq(f.tsval_to_legs) {
                    f.tsval_to_legs = tsval;
                }
            }
        }
        if in_window && flags.contains(TcpFlags::FIN) && !checksum_ok(buf.bytes(), m) {
            self.c.drop(DropReason::BadChecksum);
            return Fate::Keep;
        }
        f.last_seen = self.now;
        // RFC 5681's duplicate ack: pure, at the ack it sent before, with bytes beyond it
        // sent (counted here, acted on below, once the segment is recorded).
        let dup_ack = in_window
            && f.client_acked
            && m.seq_len() == 0
            && m.ack == f.client_ack
            && m.ack < f.to_client_nxt;
        if in_window {
            // First what the client says, so that a failover below replays only what
            // the client still lacks.
            self.record_client(f, &buf, m);
            if self.log_client(f, &buf, m) == Fate::Remove {
                return Fate::Remove;
            }
        }
        if f.phase == FlowPhase::SynAckSent && m.ack == f.visible_isn.wrapping_add(1) {
            // The client acked the SYN-ACK: the handshake is complete (§3.11).
            f.phase = FlowPhase::Established;
            self.c.half_open = self.c.half_open.saturating_sub(1);
        }
        if self.refresh_legs(f) == Fate::Remove {
            return Fate::Remove;
        }
        // A segment wholly below the ack the client was sent (a retransmission, or a
        // keepalive probe) means that ack did not arrive. The replicas' answers tell
        // nothing new and are not forwarded, so Tandem answers, as the client's peer would.
        let end = m.seq.wrapping_add(m.seq_len());
        if m.seq < f.ack_sent && end <= f.ack_sent {
            let seq = f.to_client_nxt;
            if self.synth_to_client(f, TcpFlags::ACK, seq) {
                self.c.acks_to_client += 1;
            }
        }
        self.release_acked(f);
        if dup_ack {
            f.client_dup_acks += 1;
            if f.client_dup_acks == 3 {
                f.client_dup_acks = 0;
                self.resend_held_to_client(f);
            }
        }
        self.copy_to_legs(f, buf, m);
        if f.replay.is_some() {
            // Its bytes go to the new replica from the log, in order.
            self.replay_send(f);
        }
        self.check_closed(f);
        Fate::Keep
    }

    /// §3.11: whether the client's peer would accept segment `m` (neither SYN nor RST)
    /// of a flow whose SYN-ACK went out: `Ok(true)` in the receive window, `Ok(false)`
    /// wholly before it (a retransmission or a keepalive: answered and passed on, nothing
    /// recorded), or why it is dropped. The window is the one Tandem told the client.
    fn accept_from_client(&self, f: &Flow, buf: &B, m: &Meta) -> Result<bool, DropReason> {
        if !m.flags.contains(TcpFlags::ACK) {
            return Err(DropReason::NoAck);
        }
        // RFC 5961 §5: SND.UNA - MAX.SND.WND <= SEG.ACK <= SND.NXT, in the visible space:
        // an ack of bytes Tandem never sent the client is never recorded.
        let una = if f.client_acked {
            f.client_ack
        } else {
            f.visible_isn.wrapping_add(1)
        };
        if m.ack > f.to_client_nxt || m.ack < una.wrapping_sub(f.client_max_wnd.max(1)) {
            return Err(DropReason::AckOutOfWindow);
        }
        // RFC 793 §3.3 acceptance, one byte past the edge for a zero-window probe.
        let left = f.ack_sent;
        let right = f.edge_sent.later(left).wrapping_add(1);
        let in_window = in_window(m, left, right);
        if !in_window {
            // A retransmission from at most one largest window back.
            let back = u32::from(u16::MAX) << f.visible_wscale;
            let end = m.seq.wrapping_add(m.seq_len());
            if !(end <= left && m.seq >= left.wrapping_sub(back)) {
                return Err(DropReason::OutOfWindow);
            }
        }
        // PAWS (RFC 7323 §5): never older than the last timestamp accepted.
        if f.ts_on {
            if let Some((tsval, _)) = m.timestamps(buf.bytes()) {
                if Seq(tsval) < Seq(f.client_tsval) {
                    return Err(DropReason::Paws);
                }
            }
        }
        Ok(in_window)
    }

    /// §3.11 and RFC 5961 §3: a client RST ends the flow only at the exact sequence
    /// number expected (what the client has sent, or what a replica has acked); one
    /// elsewhere in the window is answered with a challenge ACK, so that a real client
    /// sends the exact RST; anything else is dropped. Tandem answers the challenge itself
    /// rather than pass the RST on: a replica whose own next expected byte Tandem has not
    /// seen acked yet could take it for exact, and leave the others diverged.
    fn on_client_rst(&mut self, f: &mut Flow, buf: B, m: &Meta) -> Fate {
        if !checksum_ok(buf.bytes(), m) {
            self.c.drop(DropReason::BadChecksum);
            return Fate::Keep;
        }
        let exact = if f.is_half_open() {
            m.seq == f.client_isn.wrapping_add(1)
        } else {
            m.seq == f.client_snd_nxt
                || m.seq == f.ack_sent
                || f.legs()
                    .iter()
                    .any(|l| l.alive && l.answered && l.ack == m.seq)
        };
        if exact {
            if self.refresh_legs(f) == Fate::Remove {
                return Fate::Remove;
            }
            // §3.8: a client RST goes to every replica; the flow ends with it.
            self.copy_to_legs(f, buf, m);
            // A new replica being replayed to has had the log up to `next` only.
            if let Some(r) = f.replay {
                let i = usize::from(r.leg);
                if f.legs[i].alive && f.legs[i].answered {
                    self.synth_rst_to_leg(f, i, r.next);
                }
            }
            return Fate::Remove;
        }
        let right = f.edge_sent.later(f.ack_sent).wrapping_add(1);
        if f.phase != FlowPhase::SynSent && m.seq >= f.ack_sent && m.seq < right {
            self.c.drop(DropReason::RstInWindow);
            if self.may_challenge(f) {
                let seq = f.to_client_nxt;
                if self.synth_to_client(f, TcpFlags::ACK, seq) {
                    self.c.acks_to_client += 1;
                }
            }
        } else {
            self.c.drop(DropReason::RstOutOfWindow);
        }
        Fate::Keep
    }

    /// Whether flow `f` may send a challenge ACK now ([`CHALLENGE_GAP_NS`]); if so, the
    /// time is taken.
    fn may_challenge(&self, f: &mut Flow) -> bool {
        if f.last_challenge_at != 0
            && self.now.saturating_sub(f.last_challenge_at) < CHALLENGE_GAP_NS
        {
            return false;
        }
        f.last_challenge_at = self.now.max(1);
        true
    }

    /// The client's ack, window, TS.Recent, sequence and FIN, from an accepted segment.
    fn record_client(&mut self, f: &mut Flow, buf: &B, m: &Meta) {
        let frame = buf.bytes();
        if m.flags.contains(TcpFlags::ACK) && (!f.client_acked || m.ack > f.client_ack) {
            f.client_ack = m.ack;
            f.client_acked = true;
            f.client_dup_acks = 0;
        }
        f.client_window = m.tcp(frame).window();
        f.client_max_wnd = f
            .client_max_wnd
            .max(u32::from(f.client_window) << f.client_shift);
        if let Some((tsval, _)) = m.timestamps(frame) {
            if Seq(tsval) > Seq(f.client_tsval) {
                f.client_tsval = tsval;
            }
            if Seq(tsval) > Seq(f.tsval_to_legs) {
                f.tsval_to_legs = tsval;
            }
        }
        let end = m.seq.wrapping_add(m.seq_len());
        if end > f.client_snd_nxt {
            f.client_snd_nxt = end;
        }
        if m.flags.contains(TcpFlags::FIN) {
            f.client_fin = Some(m.seq.wrapping_add(m.payload_len));
        }
        f.bytes_from_client += u64::from(m.payload_len);
    }

    /// §3.6: held standby output that the client's ack covers is no longer needed.
    fn release_acked(&mut self, f: &mut Flow) {
        if !f.client_acked {
            return;
        }
        let active = f.active as usize;
        let verify = self.verifies(f);
        for (i, leg) in f.legs[..f.n_legs as usize].iter_mut().enumerate() {
            if i == active {
                // Its copies sent to the client (`replay_held`), once acked; and while it
                // catches up, what it held that the client acked, once digested (the rest
                // is digested from the hold, `feed_held_in_order`).
                let keep_from = match verify {
                    true => f.client_ack.earlier(f.checks[i].at),
                    false => f.client_ack,
                };
                while let Some((seq, len)) = self.hold.front(&leg.hold) {
                    if seq.wrapping_sub(leg.delta).wrapping_add(len) > keep_from {
                        break;
                    }
                    self.hold.pop_front(&mut leg.hold);
                }
                continue;
            }
            // §3.12: what was not checked yet stays, to be checked when the active's
            // output gets there (it may reach the client before Tandem can check it:
            // an active segment that came out of order is sent on at once).
            let keep_from = match verify {
                true => f.client_ack.earlier(f.checks[i].verified),
                false => f.client_ack,
            };
            while let Some((seq, len)) = self.hold.front(&leg.hold) {
                let visible_end = seq.wrapping_sub(leg.delta).wrapping_add(len);
                if visible_end > keep_from {
                    break;
                }
                self.hold.pop_front(&mut leg.hold);
            }
        }
    }

    /// Sends a client segment to every live leg, a copy each (the original to the last).
    fn copy_to_legs(&mut self, f: &mut Flow, buf: B, m: &Meta) {
        let is_syn = m.flags.contains(TcpFlags::SYN);
        let n = f.n_legs as usize;
        // A leg being replayed to gets the client's bytes from the log (`replay_send`).
        let replaying = f.replay.map_or(usize::MAX, |r| usize::from(r.leg));
        let targets = |(i, l): (usize, &Leg)| {
            i != replaying && l.alive && (l.answered || is_syn || m.flags.contains(TcpFlags::RST))
        };
        let Some(last) = (0..n).rev().find(|&i| targets((i, &f.legs[i]))) else {
            if f.replay.is_none() {
                self.c.drop(DropReason::NoReplica);
            }
            // Replaying: the log has its bytes.
            return;
        };
        let mut original = Some(buf);
        for i in 0..=last {
            if !targets((i, &f.legs[i])) {
                continue;
            }
            let copy = if i == last {
                original.take()
            } else {
                match original.as_ref() {
                    Some(b) => self.pool.copy(b),
                    None => None,
                }
            };
            let Some(mut copy) = copy else {
                self.c.drop(DropReason::NoBuffer);
                continue;
            };
            if self.rewrite_to_leg(f, i, &mut copy, m) {
                self.tx(Side::Inside, copy);
            }
        }
    }

    /// Rewrites a client segment for leg `i` (§1 DNAT, §3.2 ack, §3.3 TSecr, §3.4 window,
    /// §3.7 ack clamp, SACK edges). False when it cannot be sent (no neighbour).
    fn rewrite_to_leg(&mut self, f: &mut Flow, i: usize, buf: &mut B, m: &Meta) -> bool {
        let ts_on = f.ts_on;
        let client_shift = f.client_shift;
        let limit = self.ack_limit(f, i);
        let leg = &mut f.legs[i];
        let Some(mac) = self.replicas.mac(leg.replica) else {
            self.c.drop(DropReason::NoNeighbour);
            self.signal(leg, SignalKind::NeighbourMissing);
            return false;
        };
        let frame = buf.bytes_mut();
        set_macs(frame, mac, self.cfg.inside_mac);
        let mut sum = ipv4_mut(frame, m).set_dst(Ipv4Addr::from(leg.addr));
        let mut tcp = m.tcp_mut(frame);
        if leg.answered && !m.flags.contains(TcpFlags::SYN) {
            if m.flags.contains(TcpFlags::ACK) {
                // Never ack what the replica has not sent (Linux ignores such acks), nor
                // what was not checked of it (§3.12).
                let ack = m.ack.wrapping_add(leg.delta).earlier(limit);
                sum.u32(m.ack.0, ack.0);
                tcp.set_ack_raw(ack.0);
                leg.acked_to = leg.acked_to.later(ack);
            }
            let w = tcp.window();
            let w2 = rescale(w, client_shift, leg.peer_wscale);
            if w2 != w {
                sum.u16(w, w2);
                tcp.set_window_raw(w2);
            }
        }
        if leg.answered && ts_on && m.ts_at != 0 {
            let off = leg.ts_offset;
            tcp.map_tsecr(&mut sum, usize::from(m.ts_at), |e| {
                (e != 0).then(|| e.wrapping_add(off))
            });
        }
        tcp.adjust_checksum(sum);
        if leg.answered && m.sack && leg.delta != 0 {
            let delta = leg.delta;
            tcp.map_sack_blocks(|edge| edge.wrapping_add(delta));
        }
        true
    }

    // ---- forward mode ------------------------------------------------------------------

    /// Forward mode, client → replica: DNAT and MACs, nothing else (the replica's
    /// sequence space is the client's peer's own: delta 0, no holding, no ack sync).
    #[inline]
    fn forward_from_client(&mut self, f: &mut Flow, mut buf: B, m: &Meta) -> Fate {
        f.last_seen = self.now;
        let flags = m.flags;
        if f.phase == FlowPhase::Closed
            && flags.0 & (TcpFlags::SYN.0 | TcpFlags::ACK.0) == TcpFlags::SYN.0
        {
            // A new connection on the ports of a closed one (TIME-WAIT reuse): the same
            // replica takes it; the flow lives on.
            f.phase = FlowPhase::Established;
            f.client_fin = None;
            f.fin_sent = None;
        }
        let leg = &mut f.legs[0];
        let Some(mac) = self.replicas.mac(leg.replica) else {
            self.c.drop(DropReason::NoNeighbour);
            self.signal(leg, SignalKind::NeighbourMissing);
            return Fate::Keep;
        };
        let addr = leg.addr;
        let frame = buf.bytes_mut();
        set_macs(frame, mac, self.cfg.inside_mac);
        let sum = ipv4_mut(frame, m).set_dst(Ipv4Addr::from(addr));
        m.tcp_mut(frame).adjust_checksum(sum);
        self.tx(Side::Inside, buf);
        self.forward_fate(f, flags, m, true)
    }

    /// Forward mode, replica → client: SNAT and MACs, nothing else.
    #[inline]
    fn forward_from_replica(&mut self, f: &mut Flow, mut buf: B, m: &Meta) -> Fate {
        f.last_seen = self.now;
        // Evidence of life for the control core's probes, as in mirror mode.
        self.replicas.heard(f.legs[0].replica, self.now);
        let flags = m.flags;
        let frame = buf.bytes_mut();
        let sum = self.nat_to_client(f, frame, m);
        m.tcp_mut(frame).adjust_checksum(sum);
        self.tx(Side::Outside, buf);
        self.forward_fate(f, flags, m, false)
    }

    /// Forward mode: a RST ends the flow; once both sides sent a FIN it lingers as
    /// `Closed` (for the last ACKs), then the sweep removes it.
    #[inline]
    fn forward_fate(&mut self, f: &mut Flow, flags: TcpFlags, m: &Meta, client: bool) -> Fate {
        if flags.0 & (TcpFlags::RST.0 | TcpFlags::FIN.0) == 0 {
            return Fate::Keep;
        }
        if flags.contains(TcpFlags::RST) {
            return Fate::Remove;
        }
        let at = Some(m.seq.wrapping_add(m.payload_len));
        if client {
            f.client_fin = at;
        } else {
            f.fin_sent = at;
        }
        if f.phase == FlowPhase::Established && f.client_fin.is_some() && f.fin_sent.is_some() {
            f.phase = FlowPhase::Closed;
            f.closed_at = self.now;
        }
        Fate::Keep
    }

    /// Forward mode sweep step: a flow whose replica is gone ends (no RST: the client's
    /// next segment adopts a new flow); idle and linger timeouts as in mirror mode.
    fn sweep_forward(&mut self, f: &mut Flow) -> Fate {
        let leg = &f.legs[0];
        if !self.replicas.leg_alive(leg.replica, leg.epoch) {
            self.c.legs_lost += 1;
            return Fate::Remove;
        }
        let t = timers(self.timeouts, f);
        let expired = match f.phase {
            FlowPhase::Closed => self.now.saturating_sub(f.closed_at) > t.linger_ns,
            _ => self.now.saturating_sub(f.last_seen) > t.idle_ns,
        };
        if expired {
            Fate::Remove
        } else {
            Fate::Keep
        }
    }

    // ---- replica → client -------------------------------------------------------------

    /// A segment from leg `i` of an existing flow.
    fn on_replica(&mut self, f: &mut Flow, i: usize, buf: B, m: &Meta) -> Fate {
        if self.refresh_legs(f) == Fate::Remove {
            return Fate::Remove;
        }
        if !f.legs[i].alive {
            self.c.drop(DropReason::DeadLeg);
            return Fate::Keep;
        }
        let flags = m.flags;
        if flags.contains(TcpFlags::RST) {
            return self.on_replica_rst(f, i, buf, m);
        }
        if flags.contains(TcpFlags::SYN) {
            if flags.contains(TcpFlags::ACK) {
                return self.on_synack(f, i, buf, m);
            }
            self.c.drop(DropReason::BadState);
            return Fate::Keep;
        }
        if !f.legs[i].answered
            && f.replay.is_some_and(|r| usize::from(r.leg) == i)
            && flags.0 & (TcpFlags::ACK.0 | TcpFlags::FIN.0) == TcpFlags::ACK.0
            && m.payload_len == 0
        {
            return self.replay_challenged(f, i, m);
        }
        if !f.legs[i].answered {
            // RFC 9293 §3.10.7.3, SYN-SENT: an ACK that does not ack the client's SYN
            // comes from a connection the replica still holds on this client's address
            // and port (a leg dropped while its replica lived: a network blip, `tandem
            // fail`); a RST at its ack ends that one, and the repeated SYN
            // (`SYN_RETRIES`) gets its SYN-ACK. Else the flow would go on without this
            // replica. (A replay's SYN is answered the same way, above.)
            if m.flags.contains(TcpFlags::ACK) && m.ack != f.client_isn.wrapping_add(1) {
                self.synth_rst_to_leg(f, i, m.ack);
                self.c.stale_replica_resets += 1;
            }
            self.c.drop(DropReason::BadState);
            return Fate::Keep;
        }
        if f.phase == FlowPhase::SynSent {
            self.c.drop(DropReason::BadState);
            return Fate::Keep;
        }
        // §3.11: a segment outside the leg's sequence space changes nothing.
        if let Err(reason) = self.accept_from_leg(f, i, &buf, m) {
            self.c.drop(reason);
            return Fate::Keep;
        }
        if flags.contains(TcpFlags::FIN) && !checksum_ok(buf.bytes(), m) {
            self.c.drop(DropReason::BadChecksum);
            return Fate::Keep;
        }
        self.heard_from(f, i);
        self.update_leg(f, i, &buf, m);
        if f.replay.is_some_and(|r| usize::from(r.leg) == i) {
            let pure = m.payload_len == 0 && !flags.contains(TcpFlags::FIN);
            self.replay_progress(f, pure);
        }
        if self.check_divergence(f) == Fate::Remove {
            return Fate::Remove;
        }
        // `replay: http1`: the active's output is followed (a new replica's first checked)
        // before it goes to the client.
        if let Some(rules) = self.http1_rules(f).filter(|_| i == f.active as usize) {
            if let Some(fate) = self.http1_answer(f, i, &buf, m, rules) {
                return fate;
            }
            if !self.http1_server(f, i, &buf, m, rules) {
                return Fate::Keep;
            }
        }
        // §3.12: its output is checked against the active's (the active's against its
        // standbys') before it goes anywhere; a standby's that cannot be held is refused.
        if m.payload_len > 0 && self.verifies(f) {
            if i != f.active as usize && !self.hold_room_for(f, i, m) {
                // At a failover, duplicate acks make it send this again at once.
                f.legs[i].hold_gap = true;
                self.c.drop(DropReason::HoldBudget);
                return Fate::Keep;
            }
            let catching_up = i == f.active as usize && f.catch_up.is_some();
            let past_gap = m.seq.wrapping_sub(f.legs[i].delta) > f.checks[i].at;
            if self.check_output(f, i, &buf, m) == Fate::Remove {
                return Fate::Remove;
            }
            if catching_up && past_gap {
                let _ = self.catch_up_out_of_order(f, i, buf, m);
                // A duplicate ack, as its peer would send (with what is held past the
                // gap), makes the replica send the gap again.
                let ack = self.catch_up_ack(f, i);
                if self.dupack_to_leg(f, i, ack) {
                    self.c.acks_to_replica += 1;
                }
                return Fate::Keep;
            }
            if catching_up && self.feed_held_in_order(f, i) == Fate::Remove {
                return Fate::Remove;
            }
            if catching_up && self.unchecked_for_client(f, i, m) {
                // §3.12: digested, not checked yet, and perhaps lacked by the client:
                // held (a copy goes once checked, `replay_held`), so that the replica may
                // be acked for it now and Tandem has it if the client's copy is lost.
                let vend = m
                    .seq
                    .wrapping_sub(f.legs[i].delta)
                    .wrapping_add(m.seq_len());
                let held = if vend > self.held_run_end(f, i, client_from(f)) {
                    self.catch_up_out_of_order(f, i, buf, m)
                } else {
                    self.c.drop(DropReason::Suppressed); // held already: a retransmission
                    true
                };
                let replaying = f.replay.is_some_and(|r| usize::from(r.leg) == i);
                let ack = match held || !replaying {
                    true => self.catch_up_ack(f, i),
                    // A replay's leg past the hold budget: acked as digested all the same.
                    // Its window is kept small while it is checked (`replay_window`), so
                    // unacked it could never reach its check point; a copy lost on the way
                    // to the client then has no second source. (Any other leg catching up
                    // has the client's window, which reaches the check point: the dead
                    // active sent no further.)
                    false => {
                        let leg = &f.legs[i];
                        f.checks[i].at.wrapping_add(leg.delta).later(leg.acked_to)
                    }
                };
                if ack > f.legs[i].acked_to && self.synth_to_leg(f, i, TcpFlags::ACK, ack) {
                    self.c.acks_to_replica += 1;
                }
                self.after_leg_segment(f, i, m);
                return Fate::Keep;
            }
        }
        if !f.legs[i].alive {
            // Its own FIN was overtaken, or its output differs: it diverged, and the
            // segment goes nowhere.
            self.c.drop(DropReason::DeadLeg);
            return Fate::Keep;
        }
        let carries = m.payload_len > 0 || flags.contains(TcpFlags::FIN);
        if i == f.active as usize {
            if carries {
                self.forward_from_active(f, buf, m);
            } else {
                self.forward_pure_ack(f, buf, m);
            }
        } else if carries {
            self.hold_standby(f, i, buf, m);
        } else {
            self.c.drop(DropReason::Suppressed);
        }
        self.after_leg_segment(f, i, m);
        Fate::Keep
    }

    /// What follows every accepted segment of leg `i`, whatever became of it.
    fn after_leg_segment(&mut self, f: &mut Flow, i: usize, m: &Meta) {
        // §3.5: a standby's ack, or a dead leg, may have raised the synchronised ack.
        self.ack_client_if_moved(f);
        // §3.7: bytes the client already acked are acked to the replica by Tandem.
        self.ack_leg_if_behind(f, i, m);
        // A FIN the active never sends (it died) may now be matched by the others.
        self.fin_if_agreed(f);
        self.check_lag(f);
        self.check_closed(f);
    }

    /// §3.12: whether segment `m` of leg `i`, catching up, carries bytes the client may
    /// lack that are not checked yet (so not to be sent now).
    fn unchecked_for_client(&self, f: &Flow, i: usize, m: &Meta) -> bool {
        let Some((_, until, _)) = f.catch_up else {
            return false;
        };
        let vend = m
            .seq
            .wrapping_sub(f.legs[i].delta)
            .wrapping_add(m.seq_len());
        vend > client_from(f) && vend.earlier(until) > f.checks[i].verified
    }

    /// §3.12: how far leg `i`, catching up, may be acked (its own space): what it
    /// digested, but past the client's ack only where Tandem holds a copy of every byte
    /// (`held_run_end`): the replica forgets what it is acked for, and the client may
    /// still need it.
    fn catch_up_ack(&self, f: &Flow, i: usize) -> Seq {
        let upto = f.checks[i]
            .at
            .earlier(self.held_run_end(f, i, client_from(f)));
        upto.wrapping_add(f.legs[i].delta).later(f.legs[i].acked_to)
    }

    /// An accepted segment of leg `i`: the flow is not idle, and the replica is alive
    /// (evidence for the control core's probes, see `ReplicaTable::heard`). Never from a
    /// segment that was not accepted: a forged one must not keep a dead replica up.
    fn heard_from(&mut self, f: &mut Flow, i: usize) {
        f.last_seen = self.now;
        self.replicas.heard(f.legs[i].replica, self.now);
    }

    /// §3.11: whether the client would accept segment `m` (neither SYN nor RST) from leg
    /// `i` of an answered flow: its ack no further than what the client has sent, its
    /// sequence inside the window the leg was given (or a retransmission from at most one
    /// window before it), its timestamp not older than the leg's last (PAWS).
    fn accept_from_leg(&self, f: &Flow, i: usize, buf: &B, m: &Meta) -> Result<(), DropReason> {
        let leg = &f.legs[i];
        if !m.flags.contains(TcpFlags::ACK) {
            return Err(DropReason::NoAck);
        }
        let leg_wnd = u32::from(u16::MAX) << leg.wscale;
        if m.ack > f.client_snd_nxt || m.ack < leg.ack.wrapping_sub(leg_wnd) {
            return Err(DropReason::AckOutOfWindow);
        }
        let wnd = f.client_max_wnd.max(1);
        let left = leg.acked_to;
        let right = left.wrapping_add(wnd).wrapping_add(1);
        let end = m.seq.wrapping_add(m.seq_len());
        let old = end <= left && m.seq >= left.wrapping_sub(wnd);
        if !in_window(m, left, right) && !old {
            return Err(DropReason::OutOfWindow);
        }
        if leg.ts_ok {
            if let Some((tsval, _)) = m.timestamps(buf.bytes()) {
                if Seq(tsval) < Seq(leg.last_tsval) {
                    return Err(DropReason::Paws);
                }
            }
        }
        Ok(())
    }

    /// §3.7 with §3.12: the furthest leg `i` may be acked (its own space): what it sent,
    /// and while its output is checked only what was digested of it (and its FIN), so
    /// that a segment of it Tandem never saw is sent again rather than acked away
    /// unchecked (the client may have had those bytes from the active).
    #[inline]
    fn ack_limit(&self, f: &Flow, i: usize) -> Seq {
        let leg = &f.legs[i];
        if f.phase == FlowPhase::SynSent
            || f.checks[i].state != verify::State::Checking
            || !self.verifies(f)
        {
            return leg.snd_nxt;
        }
        let digested = f.checks[i].at.wrapping_add(leg.delta);
        if leg.fin == Some(digested) {
            leg.snd_nxt
        } else {
            digested.earlier(leg.snd_nxt)
        }
    }

    /// §3.12: the flow cannot go on without a mixed stream: RSTs to the client and to
    /// every live replica, and the flow is lost.
    fn reset_all(&mut self, f: &mut Flow) -> Fate {
        for k in 0..f.n_legs as usize {
            if f.legs[k].alive {
                let seq = f.legs[k].ack;
                self.synth_rst_to_leg(f, k, seq);
            }
        }
        self.reset_client(f);
        self.c.flows_lost += 1;
        Fate::Remove
    }

    /// Whether flow `f`'s service verifies its standbys (§3.12).
    #[inline]
    fn verifies(&self, f: &Flow) -> bool {
        // Reconnect mode checks every replay's answer against the dead leg's digest.
        !f.forward
            && self
                .cfg
                .services
                .get(usize::from(f.service))
                // `replay: http1` checks answers by their exchange ([`crate::exchange`]).
                .is_some_and(|s| s.http1.is_none() && (s.verify || s.replay.is_some()))
    }

    /// §3.12: digests leg `i`'s payload and compares it with its reference's (a standby
    /// with the active; the active with its standbys, and after a failover to a leg that
    /// was behind, with the dead active's). A standby that diverged, or can no longer be
    /// checked, leaves the flow (a RST to its replica; the flow runs unprotected). An
    /// active that catches up and differs from what the client has ends the flow: RSTs
    /// to the client and the replicas.
    fn check_output(&mut self, f: &mut Flow, i: usize, buf: &B, m: &Meta) -> Fate {
        let payload = buf.bytes().get(m.payload()).unwrap_or(&[]);
        self.check_output_bytes(f, i, m.seq, payload)
    }

    /// [`Self::check_output`] of `payload`, leg `i`'s output at its sequence `rseq`.
    fn check_output_bytes(&mut self, f: &mut Flow, i: usize, rseq: Seq, payload: &[u8]) -> Fate {
        let n = f.n_legs as usize;
        let active = f.active as usize;
        let others = (0..n)
            .filter(|&j| j != i && f.legs[j].alive)
            .fold(0u8, |bits, j| bits | 1 << j);
        let links = if i == active {
            Links {
                reference: f.catch_up.map(|(old, _, _)| usize::from(old)),
                checked: others,
            }
        } else {
            Links {
                reference: Some(active),
                checked: 0,
            }
        };
        let seq = rseq.wrapping_sub(f.legs[i].delta);
        if i == active && f.catch_up.is_some() && seq > f.checks[i].at {
            // Catching up, past a gap: not digested here (see `Check::drop_pieces`; the
            // caller holds it, `catch_up_out_of_order`, and asks for the gap).
            return Fate::Keep;
        }
        let held = HeldView {
            pool: self.hold,
            legs: &f.legs[..n],
        };
        let out = verify::feed(&mut f.checks[..n], i, links, seq, payload, &held);
        // Held output kept only until it was checked may go now.
        if f.legs[..n]
            .iter()
            .enumerate()
            .any(|(j, l)| j != active && !l.hold.is_empty())
        {
            self.release_acked(f);
        }
        if let Some((_, until, _)) = f.catch_up {
            if f.checks[active].verified >= until {
                f.catch_up = None;
                // What it held through the catch-up goes first, in order.
                self.replay_held(f);
                match f.replay {
                    // A new standby took over while it was given the log (mirror mode).
                    Some(r) if r.reprotect => self.replay_done(f),
                    Some(_) => {
                        let skipped = until.bytes_after(f.visible_isn.wrapping_add(1));
                        self.replay_checked(f, u64::from(skipped));
                    }
                    None => {}
                }
            }
        }
        for j in 0..n {
            let (diverged, lost) = (out.diverged & (1 << j) != 0, out.lost & (1 << j) != 0);
            if !(diverged || lost) || !f.legs[j].alive {
                continue;
            }
            if j == active {
                if f.catch_up.is_none() {
                    // The active's own digest stopped: its standbys (in the same
                    // outcome) can no longer be checked; it goes on.
                    continue;
                }
                self.c.catch_ups_failed += 1;
                if f.replay.is_some_and(|r| !r.reprotect) {
                    self.c.reconnects_mismatch += 1;
                }
                return self.reset_all(f);
            }
            if diverged {
                self.c.standbys_diverged += 1;
                let offset = f.checks[j]
                    .verified
                    .bytes_after(f.visible_isn.wrapping_add(1));
                self.signal_at(&mut f.legs[j], SignalKind::Diverged, offset);
            } else {
                self.c.standbys_unverifiable += 1;
            }
            let seq = f.legs[j].ack;
            self.synth_rst_to_leg(f, j, seq);
            if self.kill_leg(f, j) == Fate::Remove {
                return Fate::Remove;
            }
        }
        Fate::Keep
    }

    /// §3.12, a leg catching up: its segment past a gap is held (not digested: its
    /// check must pass the point it is compared at byte by byte), to be digested in order
    /// once the gap is filled (`feed_held_in_order`), so that the replica resends only
    /// the gap, not all it sent after it. Without room it is dropped: resent later.
    /// Whether it was held.
    fn catch_up_out_of_order(&mut self, f: &mut Flow, i: usize, buf: B, m: &Meta) -> bool {
        // What the client has not acked stays: the replica may have been acked for it.
        let keep_from = client_from(f);
        let leg = &mut f.legs[i];
        let len = m.seq_len();
        if !self.make_room(leg, len, Some(keep_from)) {
            self.c.drop(DropReason::HoldBudget);
            return false;
        }
        let data = (m.payload().start as u32, m.payload_len);
        match self.hold.push(&mut leg.hold, buf, m.seq, len, data) {
            Ok(()) => {
                self.c.drop(DropReason::Suppressed);
                true
            }
            Err(_) => {
                self.c.drop(DropReason::HoldBudget);
                false
            }
        }
    }

    /// §3.12, a leg catching up: digests its held segments that the last one made in
    /// order (copied out of the hold, as `check_output` digests a segment in hand).
    fn feed_held_in_order(&mut self, f: &mut Flow, i: usize) -> Fate {
        let mut scratch = [0u8; 9216];
        loop {
            if f.catch_up.is_none() || f.active as usize != i {
                return Fate::Keep;
            }
            let (at, delta) = (f.checks[i].at, f.legs[i].delta);
            let mut next = None;
            self.hold.each(&f.legs[i].hold, |buf, rseq, (off, len)| {
                let vseq = rseq.wrapping_sub(delta);
                if len == 0 || vseq > at || vseq.wrapping_add(len) <= at {
                    return true;
                }
                let payload = buf.bytes().get(off as usize..(off + len) as usize);
                if let Some(p) = payload.filter(|p| p.len() <= scratch.len()) {
                    scratch[..p.len()].copy_from_slice(p);
                    next = Some((rseq, p.len()));
                }
                false
            });
            let Some((rseq, n)) = next else {
                return Fate::Keep;
            };
            if self.check_output_bytes(f, i, rseq, &scratch[..n]) == Fate::Remove {
                return Fate::Remove;
            }
            if f.checks[i].at == at {
                return Fate::Keep;
            }
        }
    }

    /// Records what leg `i` has sent and acknowledged.
    fn update_leg(&mut self, f: &mut Flow, i: usize, buf: &B, m: &Meta) {
        let frame = buf.bytes();
        let window = u32::from(m.tcp(frame).window());
        let ts = m.timestamps(frame);
        let leg = &mut f.legs[i];
        if m.flags.contains(TcpFlags::ACK) && m.ack >= leg.ack {
            leg.ack = m.ack;
            leg.wnd_edge = m.ack.wrapping_add(window << leg.wscale);
        }
        let end = m.seq.wrapping_add(m.seq_len());
        if end > leg.snd_nxt {
            leg.snd_nxt = end;
        }
        if let Some((tsval, _)) = ts {
            leg.last_tsval = Seq(tsval).later(Seq(leg.last_tsval)).0;
        }
        if m.flags.contains(TcpFlags::FIN) && leg.fin.is_none() {
            leg.fin = Some(m.seq.wrapping_add(m.payload_len));
            leg.fin_since = self.now;
        }
    }

    /// §3.8 divergence: a leg whose FIN another leg's data has overtaken is killed.
    fn check_divergence(&mut self, f: &mut Flow) -> Fate {
        let n = f.n_legs as usize;
        if f.legs[..n].iter().all(|l| l.fin.is_none()) {
            return Fate::Keep;
        }
        for i in 0..n {
            let leg = f.legs[i];
            let Some(fin) = leg.fin else { continue };
            if !leg.alive {
                continue;
            }
            let vfin = fin.wrapping_sub(leg.delta);
            let overtaken = f.legs[..n].iter().enumerate().any(|(j, o)| {
                j != i && o.alive && o.answered && o.visible_snd_nxt() > vfin.wrapping_add(1)
            });
            if overtaken {
                self.signal(&mut f.legs[i], SignalKind::UnmatchedFin);
                if self.kill_leg(f, i) == Fate::Remove {
                    return Fate::Remove;
                }
            } else if f.phase != FlowPhase::Closed
                && self.fin_agreed(f).is_none()
                && self.cfg.fin_grace_ns > 0
                && self.now.saturating_sub(leg.fin_since) > self.cfg.fin_grace_ns
            {
                self.signal(&mut f.legs[i], SignalKind::UnmatchedFin);
            }
        }
        Fate::Keep
    }

    /// Visible sequence of the FIN when every live leg has sent one there (§3.8).
    fn fin_agreed(&self, f: &Flow) -> Option<Seq> {
        // Reconnect mode: a FIN that ends the stream may be a dying server's (its kernel
        // closes the socket of a killed process): held `fin_hold`, while health decides.
        // If the replica is declared down, the flow is replayed instead.
        let hold = self.replay_config(f).map_or(0, |r| r.fin_hold_ns);
        let joining = f.joining().unwrap_or(MAX_COPIES);
        let mut at = None;
        for (k, l) in f.legs().iter().enumerate() {
            if !l.alive || !l.answered || k == joining {
                continue;
            }
            let v = l.fin?.wrapping_sub(l.delta);
            if hold > 0 && self.now.saturating_sub(l.fin_since) < hold {
                return None;
            }
            match at {
                None => at = Some(v),
                Some(a) if a != v => return None,
                _ => {}
            }
        }
        at
    }

    /// Forwards a data or FIN segment of the active leg to the client (live or replayed).
    fn forward_from_active(&mut self, f: &mut Flow, mut buf: B, m: &Meta) {
        let leg = f.legs[f.active as usize];
        let vstart = m.seq.wrapping_sub(leg.delta);
        let mut vend = vstart.wrapping_add(m.seq_len());
        let mut strip_fin = false;
        let mut fin_at = None;
        if m.flags.contains(TcpFlags::FIN) {
            match self.fin_agreed(f) {
                Some(v) => fin_at = Some(v),
                None => {
                    strip_fin = true;
                    vend = vend.wrapping_sub(1);
                }
            }
        }
        if let Some((_, until, _)) = f.catch_up {
            // §3.12, after a failover to a leg that was behind: only what was checked
            // equal to what the client has reaches it.
            if vend.earlier(until) > f.checks[f.active as usize].verified {
                self.c.drop(DropReason::Suppressed);
                return;
            }
        }
        if vend == vstart
            || (f.client_acked && vend <= f.client_ack && !m.flags.contains(TcpFlags::FIN))
        {
            // Nothing the client lacks: a stripped bare FIN, or bytes it already acked.
            self.c.drop(DropReason::Suppressed);
            return;
        }
        // The FIN is sent only now that the segment goes (not when it was suppressed).
        if fin_at.is_some() {
            f.fin_sent = fin_at;
        }
        if strip_fin {
            let mut tcp = m.tcp_mut(buf.bytes_mut());
            let flags = tcp.flags();
            tcp.set_flags(TcpFlags(flags.0 & !TcpFlags::FIN.0));
        }
        let active = f.active as usize;
        self.rewrite_to_client(f, active, &mut buf, m);
        if vend > f.to_client_nxt {
            f.to_client_nxt = vend;
        }
        f.bytes_to_client += u64::from(m.payload_len);
        self.tx(Side::Outside, buf);
    }

    /// A pure ACK from the active leg: forwarded only when it tells the client something.
    fn forward_pure_ack(&mut self, f: &mut Flow, mut buf: B, m: &Meta) {
        let Some((ack, edge)) = sync_ack(f) else {
            self.c.drop(DropReason::RedundantAck);
            return;
        };
        let leg = f.active_leg();
        let informative = ack > f.ack_sent
            || edge > f.edge_sent
            || m.tcp(buf.bytes()).sack_blocks().is_some_and(|b| b.len() > 0)
            // A duplicate ack from the leg holding the synchronised ack back: the client
            // needs it for fast retransmit.
            || (leg.ack == ack && m.ack == ack && f.client_snd_nxt > ack);
        if !informative {
            self.c.drop(DropReason::RedundantAck);
            return;
        }
        let active = f.active as usize;
        self.rewrite_to_client(f, active, &mut buf, m);
        self.tx(Side::Outside, buf);
    }

    /// Addresses a replica's frame to the client: MACs, and the VIP as source (IPv4
    /// checksum kept). Returns the TCP checksum change for the pseudo-header.
    #[inline]
    fn nat_to_client(&self, f: &Flow, frame: &mut [u8], m: &Meta) -> ChecksumDelta {
        set_macs(frame, f.client_mac, self.cfg.outside_mac);
        ipv4_mut(frame, m).set_src(Ipv4Addr::from(f.key.vip))
    }

    /// Rewrites a segment of leg `i` for the client: source VIP, seq −delta, ack and
    /// window synchronised over the live legs, TSval into the visible clock.
    fn rewrite_to_client(&mut self, f: &mut Flow, i: usize, buf: &mut B, m: &Meta) {
        let (ack, edge) = sync_ack(f).unwrap_or((f.ack_sent, f.edge_sent));
        let leg = f.legs[i];
        let frame = buf.bytes_mut();
        let mut sum = self.nat_to_client(f, frame, m);
        let mut tcp = m.tcp_mut(frame);
        let seq = m.seq.wrapping_sub(leg.delta);
        sum.u32(m.seq.0, seq.0);
        tcp.set_seq_raw(seq.0);
        if m.flags.contains(TcpFlags::ACK) {
            sum.u32(m.ack.0, ack.0);
            tcp.set_ack_raw(ack.0);
            let w = if m.flags.contains(TcpFlags::SYN) {
                // Windows in SYN segments are never scaled (RFC 7323 §2.2).
                scaled_window(edge.bytes_after(ack), 0)
            } else {
                scaled_window(edge.bytes_after(ack), f.visible_wscale)
            };
            sum.u16(tcp.window(), w);
            tcp.set_window_raw(w);
            f.ack_sent = ack;
            f.edge_sent = edge;
        }
        if f.ts_on && m.ts_at != 0 {
            // Never backwards for the client (§3.3): held segments replayed after a
            // failover (and reordered ones) carry older TSvals, which the client's PAWS
            // test would drop.
            let (off, max) = (leg.ts_offset, Seq(f.max_tsval_sent));
            f.max_tsval_sent = tcp.map_tsval(&mut sum, usize::from(m.ts_at), |v| {
                Some(Seq(v.wrapping_sub(off)).later(max).0)
            });
        }
        tcp.adjust_checksum(sum);
        if !f.ts_on && m.ts_at != 0 {
            tcp.nop_out(option_kind::TIMESTAMPS);
        }
        if !f.sack_on && m.sack {
            tcp.nop_out(option_kind::SACK);
        }
    }

    /// §3.6: keeps a standby's data until the client's ack covers it.
    fn hold_standby(&mut self, f: &mut Flow, i: usize, buf: B, m: &Meta) {
        // Not needed once the client has it, unless not checked yet (§3.12).
        let needed_to = match self.verifies(f) {
            true => f.client_ack.earlier(f.checks[i].verified),
            false => f.client_ack,
        };
        let leg = &mut f.legs[i];
        let len = m.seq_len();
        let vend = m.seq.wrapping_sub(leg.delta).wrapping_add(len);
        if f.client_acked && vend <= needed_to {
            self.c.drop(DropReason::Suppressed);
            return;
        }
        let checked_to = self.verifies(f).then_some(f.checks[i].verified);
        let leg = &mut f.legs[i];
        self.trim_to_fair_share(leg);
        self.make_room(leg, len, checked_to);
        let data = (m.payload().start as u32, m.payload_len);
        match self.hold.push(&mut leg.hold, buf, m.seq, len, data) {
            Ok(()) => self.c.drop(DropReason::Suppressed),
            Err(_) => {
                leg.hold_gap = true;
                self.c.drop(DropReason::HoldBudget);
            }
        }
    }

    /// §3.6, shared fairly: while the hold pool is three-quarters full (bytes or slots),
    /// no leg keeps more than an equal share among the legs holding and one more (room
    /// for a newcomer); its oldest segments beyond that are released, as over any
    /// budget. Without it, a few flows whose clients never ack pin the whole pool and every
    /// other flow's standby output is refused. Called when a leg holds more, and from the
    /// sweep, which reaches the legs that no longer grow.
    ///
    /// With verification it may release a standby's unchecked output: that standby can
    /// then no longer be checked and leaves its flow (`standbys_unverifiable`), the price
    /// of a flow that pins the pool.
    fn trim_to_fair_share(&mut self, leg: &mut Leg) {
        let total = self.cfg.hold_bytes_total;
        let slots = self.hold.capacity();
        let pressed = self.hold.bytes().saturating_mul(4) > total.saturating_mul(3)
            || self.hold.segments() * 4 > slots * 3;
        if !pressed || leg.hold.is_empty() {
            return;
        }
        let shares = self.hold.holders() + 1;
        let (bytes, segments) = (total / shares as u64, slots / shares);
        while u64::from(leg.hold.bytes) > bytes || leg.hold.segments as usize > segments {
            if !self.release_over_budget(leg, None) {
                break;
            }
        }
    }

    /// Releases the leg's oldest held segments until `len` more bytes fit every hold
    /// budget; whether they fit.
    fn make_room(&mut self, leg: &mut Leg, len: u32, checked_to: Option<Seq>) -> bool {
        let per_flow = self.cfg.hold_bytes_per_flow;
        let total = self.cfg.hold_bytes_total;
        while leg.hold.bytes + len > per_flow
            || self.hold.bytes() + u64::from(len) > total
            || !self.hold.has_room()
        {
            if !self.release_over_budget(leg, checked_to) {
                return false;
            }
        }
        true
    }

    /// Releases the leg's oldest held segment over a budget (a failover then makes the
    /// replica send it again, see `hold_gap`). With verification (§3.12) only one checked
    /// up to `checked_to`: the unchecked ones are what the leg's check reads when the
    /// active's output gets there; past them a standby's new output is refused instead
    /// (`hold_room_for`). Whether one went.
    fn release_over_budget(&mut self, leg: &mut Leg, checked_to: Option<Seq>) -> bool {
        if let (Some(to), Some((seq, len))) = (checked_to, self.hold.front(&leg.hold)) {
            if seq.wrapping_sub(leg.delta).wrapping_add(len) > to {
                return false;
            }
        }
        if self.hold.pop_front(&mut leg.hold).is_none() {
            return false;
        }
        leg.hold_gap = true;
        self.c.drop(DropReason::HoldBudget);
        true
    }

    /// §3.12 with the hold budgets full: a standby's output past what the client acked
    /// (so not acked to the replica either) that cannot be held is refused before it is
    /// checked, as a receiver with a full buffer drops a segment: its replica sends it
    /// again. Checked and held, it would cost an unchecked held segment, and with it the
    /// standby's check. Whether there is room (or no need for it).
    fn hold_room_for(&mut self, f: &mut Flow, i: usize, m: &Meta) -> bool {
        let leg = &f.legs[i];
        let vend = m.seq.wrapping_sub(leg.delta).wrapping_add(m.seq_len());
        if f.client_acked && vend <= f.client_ack {
            return true;
        }
        let checked_to = Some(f.checks[i].verified);
        let leg = &mut f.legs[i];
        self.trim_to_fair_share(leg);
        self.make_room(leg, m.seq_len(), checked_to)
    }

    /// §3.5: a pure ACK of Tandem's own when the synchronised ack or window moved.
    fn ack_client_if_moved(&mut self, f: &mut Flow) {
        if f.phase == FlowPhase::SynSent {
            return;
        }
        let Some((ack, edge)) = sync_ack(f) else {
            return;
        };
        if ack > f.ack_sent || edge > f.edge_sent {
            let seq = f.to_client_nxt;
            if self.synth_to_client(f, TcpFlags::ACK, seq) {
                self.c.acks_to_client += 1;
            }
        }
    }

    /// §3.8: when the last live leg's FIN completes the agreement, Tandem sends the FIN.
    fn fin_if_agreed(&mut self, f: &mut Flow) {
        if f.fin_sent.is_some() || f.phase == FlowPhase::SynSent {
            return;
        }
        let Some(vfin) = self.fin_agreed(f) else {
            return;
        };
        // Only once the client has every byte before it.
        if f.to_client_nxt != vfin && !(f.client_acked && f.client_ack == vfin) {
            return;
        }
        f.fin_sent = Some(vfin);
        if self.synth_to_client(f, TcpFlags::FIN | TcpFlags::ACK, vfin) {
            f.to_client_nxt = vfin.wrapping_add(1);
        }
    }

    /// §3.7: acks bytes to leg `i` that the client has acknowledged but the leg was not
    /// told (it sent them after the client's ack went by, or is catching up after a
    /// failover), or was told by an ack that got lost (`m` is a retransmission).
    fn ack_leg_if_behind(&mut self, f: &mut Flow, i: usize, m: &Meta) {
        if !f.client_acked {
            return;
        }
        let limit = self.ack_limit(f, i);
        let leg = &f.legs[i];
        let want = f.client_ack.wrapping_add(leg.delta).earlier(limit);
        // A segment wholly below the ack the leg was given is a retransmission: that ack
        // was lost on the way. The client never sees this copy (it acked it already), so
        // Tandem answers it, or the replica retransmits it forever.
        let resent = m.seq_len() > 0 && m.seq.wrapping_add(m.seq_len()) <= leg.acked_to;
        if (want > leg.acked_to || resent) && self.synth_to_leg(f, i, TcpFlags::ACK, want) {
            self.c.acks_to_replica += 1;
        }
    }

    /// Ack and output lag (§5 passive signals).
    fn check_lag(&mut self, f: &mut Flow) {
        // The flow's own service's thresholds (§5: each service has its health settings).
        let (ack_lag, out_lag) = self
            .cfg
            .services
            .get(usize::from(f.service))
            .map_or((self.cfg.ack_lag_ns, self.cfg.output_lag_ns), |s| {
                s.lags(self.cfg)
            });
        if ack_lag == 0 && out_lag == 0 {
            return;
        }
        let n = f.n_legs as usize;
        let joining = f.joining().unwrap_or(MAX_COPIES);
        // The furthest ack and output among the live legs, in one pass.
        let mut furthest = None;
        for (k, l) in f.legs[..n].iter().enumerate() {
            if !l.alive || !l.answered || k == joining {
                continue;
            }
            let (ack, out) = (l.ack, l.visible_snd_nxt());
            furthest = Some(match furthest {
                None => (ack, out),
                Some((a, o)) => (Seq::later(a, ack), Seq::later(o, out)),
            });
        }
        let Some((max_ack, max_out)) = furthest else {
            return;
        };
        let now = self.now;
        for i in 0..n {
            let leg = &mut f.legs[i];
            if !leg.alive || !leg.answered || i == joining {
                continue;
            }
            let mut kind = None;
            if ack_lag > 0 {
                if leg.ack < max_ack {
                    if leg.ack_lag_since == 0 {
                        leg.ack_lag_since = now;
                    } else if now - leg.ack_lag_since > ack_lag {
                        kind = Some(SignalKind::AckLag);
                    }
                } else {
                    leg.ack_lag_since = 0;
                }
            }
            // Output lag is the active's only, and means no progress: a frozen active
            // sends nothing, with nothing in flight, while a standby has sent more. A standby behind (slower, or
            // retransmitting what the hold budget refused) stalls nobody; an active that
            // is merely behind but sending is not frozen.
            if out_lag > 0 && i == f.active as usize {
                let at = leg.visible_snd_nxt();
                // Nothing in flight either way: an active waiting for an RTO to resend a
                // lost segment, or for the client's lost one, is not frozen (a frozen
                // one's kernel still sends what its send buffer holds, and still acks).
                let drained =
                    (!f.client_acked || f.client_ack >= at) && leg.ack >= f.client_snd_nxt;
                if at < max_out && drained {
                    if leg.out_lag_since == 0 || at != leg.out_lag_at {
                        leg.out_lag_since = now;
                        leg.out_lag_at = at;
                    } else if now - leg.out_lag_since > out_lag {
                        kind = Some(SignalKind::OutputLag);
                    }
                } else {
                    leg.out_lag_since = 0;
                }
            }
            if let Some(kind) = kind {
                self.signal(&mut f.legs[i], kind);
            }
        }
    }

    /// §3.10: both directions closed once the client acked our FIN and every live leg
    /// acked the client's.
    fn check_closed(&mut self, f: &mut Flow) {
        if f.phase != FlowPhase::Established {
            return;
        }
        let (Some(vfin), Some(cfin)) = (f.fin_sent, f.client_fin) else {
            return;
        };
        let Some((ack, _)) = sync_ack(f) else {
            return;
        };
        if f.client_acked && f.client_ack > vfin && ack > cfin {
            f.phase = FlowPhase::Closed;
            f.closed_at = self.now;
        }
    }

    // ---- handshake --------------------------------------------------------------------

    /// §3.1: records a replica's SYN-ACK; the flow's is forwarded once all answered or
    /// the wait is over.
    fn on_synack(&mut self, f: &mut Flow, i: usize, buf: B, m: &Meta) -> Fate {
        if f.replay.is_some_and(|r| usize::from(r.leg) == i) {
            return self.replay_synack(f, i, buf, m);
        }
        if f.phase != FlowPhase::SynSent {
            let leg = f.legs[i];
            if f.proxied {
                // The replica lost Tandem's ACK of its SYN-ACK (the client had Tandem's own).
                if leg.alive && leg.answered && m.seq == leg.isn {
                    if self.synth_to_leg(f, i, TcpFlags::ACK, leg.isn.wrapping_add(1)) {
                        self.c.acks_to_replica += 1;
                    }
                } else {
                    self.c.drop(DropReason::BadState);
                }
                return Fate::Keep;
            }
            // A retransmitted SYN-ACK: the client's SYN-ACK may have been lost.
            if i == f.active as usize && f.legs[i].answered && m.seq == f.legs[i].isn {
                // Not `heard_from`: a SYN-ACK repeated keeps neither the flow (half-open
                // flows expire from their SYN) nor, forged, the replica alive.
                let mut buf = buf;
                self.normalise_synack(f, &mut buf, m);
                self.rewrite_to_client(f, i, &mut buf, m);
                self.tx(Side::Outside, buf);
            } else {
                self.c.drop(DropReason::Suppressed);
            }
            return Fate::Keep;
        }
        let expected = f.client_isn.wrapping_add(1);
        if m.ack != expected || f.legs[i].answered {
            self.c.drop(DropReason::BadState);
            return Fate::Keep;
        }
        self.heard_from(f, i);
        let tcp = m.tcp(buf.bytes());
        let rank = f.legs().iter().filter(|l| l.answered).count() as u8 + 1;
        let client_ws = f.client_wscale;
        let leg = &mut f.legs[i];
        leg.answered = true;
        leg.answer_rank = rank;
        leg.isn = m.seq;
        leg.snd_nxt = m.seq.wrapping_add(1);
        leg.acked_to = leg.snd_nxt;
        leg.mss = tcp.mss().unwrap_or(536);
        match (client_ws, tcp.window_scale()) {
            (Some(cws), Some(ws)) => {
                leg.wscale = ws.min(14);
                leg.peer_wscale = cws;
            }
            _ => {
                leg.wscale = 0;
                leg.peer_wscale = 0;
            }
        }
        leg.sack_ok = tcp.sack_permitted();
        match tcp.timestamps() {
            Some((tsval, _)) => {
                leg.ts_ok = true;
                leg.last_tsval = tsval;
            }
            None => leg.ts_ok = false,
        }
        leg.ack = m.ack;
        leg.wnd_edge = m.ack.wrapping_add(u32::from(tcp.window()));
        if self
            .hold
            .push(&mut leg.hold, buf, m.seq, 1, (0, 0))
            .is_err()
        {
            // No slot to keep it: the replica will retransmit its SYN-ACK.
            leg.answered = false;
            self.c.drop(DropReason::HoldBudget);
            return Fate::Keep;
        }
        let all = f.legs().iter().all(|l| !l.alive || l.answered);
        if all || timers(self.timeouts, f).synack_wait_ns == 0 {
            return self.complete_handshake(f);
        }
        if f.first_synack_at == 0 {
            // `Engine::dispatch` queues the deadline when it sees this.
            f.first_synack_at = self.now.max(1);
        }
        Fate::Keep
    }

    /// Picks the active leg, normalises options and forwards its SYN-ACK.
    fn complete_handshake(&mut self, f: &mut Flow) -> Fate {
        let n = f.n_legs as usize;
        // Replicas that have not answered leave the flow.
        for i in 0..n {
            if f.legs[i].alive && !f.legs[i].answered {
                let seq = f.client_isn.wrapping_add(1);
                f.legs[i].alive = false;
                self.c.legs_lost += 1;
                self.synth_rst_to_leg(f, i, seq);
            }
        }
        self.note_protection(f);
        let Some(active) = (0..n)
            .filter(|&i| f.legs[i].alive && f.legs[i].answered)
            .min_by_key(|&i| if i == 0 { 0 } else { f.legs[i].answer_rank })
        else {
            if f.proxied {
                self.reset_client(f);
                self.c.flows_lost += 1;
            }
            return Fate::Remove;
        };
        if f.proxied {
            return self.complete_cookie_handshake(f, active);
        }
        f.active = active as u8;
        let a = f.legs[active];
        f.visible_isn = a.isn;
        let mut mss = u16::MAX;
        let (mut sack, mut ts) = (f.client_sack_ok, f.client_ts_ok);
        for l in f.legs[..n].iter().filter(|l| l.alive) {
            mss = mss.min(l.mss);
            sack &= l.sack_ok;
            ts &= l.ts_ok;
        }
        f.visible_mss = mss;
        f.sack_on = sack;
        f.ts_on = ts;
        let a_tsval = a.last_tsval;
        for l in f.legs[..n].iter_mut() {
            l.delta = l.isn.0.wrapping_sub(a.isn.0);
            l.ts_offset = l.last_tsval.wrapping_sub(a_tsval);
        }
        f.checks = [Check::start(f.visible_isn.wrapping_add(1)); MAX_COPIES];
        // Take the active's SYN-ACK; free the others'.
        let mut synack = None;
        for (i, l) in f.legs[..n].iter_mut().enumerate() {
            while let Some(h) = self.hold.pop_front(&mut l.hold) {
                if i == active && synack.is_none() {
                    synack = Some(h.buf);
                }
            }
        }
        let Some(mut buf) = synack else {
            return Fate::Remove;
        };
        let Class::Tcp(m) = classify(buf.bytes(), &[], &[]) else {
            return Fate::Remove;
        };
        let active_has_ws = m.tcp(buf.bytes()).window_scale().is_some();
        if f.client_wscale.is_some() && active_has_ws {
            f.client_shift = f.client_wscale.unwrap_or(0);
            f.visible_wscale = a.wscale;
        } else {
            f.client_shift = 0;
            f.visible_wscale = 0;
        }
        // Established only once the client acks this SYN-ACK (§3.11).
        f.phase = FlowPhase::SynAckSent;
        f.to_client_nxt = f.visible_isn.wrapping_add(1);
        f.max_tsval_sent = a_tsval;
        f.ack_sent = f.client_isn.wrapping_add(1);
        self.normalise_synack(f, &mut buf, &m);
        self.rewrite_to_client(f, active, &mut buf, &m);
        self.tx(Side::Outside, buf);
        Fate::Keep
    }

    /// The replicas of a cookie-made flow have answered (or the wait is over): Tandem
    /// acks their SYN-ACKs, shifts each into the sequence and timestamp spaces it agreed
    /// with the client, and opens the client's window. A replica that refused timestamps
    /// the client was promised cannot carry the flow and leaves it.
    fn complete_cookie_handshake(&mut self, f: &mut Flow, first: usize) -> Fate {
        let n = f.n_legs as usize;
        if f.ts_on {
            for i in 0..n {
                if f.legs[i].alive && !f.legs[i].ts_ok {
                    let seq = f.client_snd_nxt;
                    f.legs[i].alive = false;
                    self.c.legs_lost += 1;
                    self.synth_rst_to_leg(f, i, seq);
                }
            }
            self.note_protection(f);
        }
        let active = if f.legs[first].alive {
            Some(first)
        } else {
            (0..n)
                .filter(|&i| f.legs[i].alive && f.legs[i].answered)
                .min_by_key(|&i| f.legs[i].answer_rank)
        };
        let Some(active) = active else {
            self.reset_client(f);
            self.c.flows_lost += 1;
            return Fate::Remove;
        };
        f.active = active as u8;
        f.checks = [Check::start(f.visible_isn.wrapping_add(1)); MAX_COPIES];
        for l in f.legs[..n].iter_mut() {
            l.delta = l.isn.0.wrapping_sub(f.visible_isn.0);
            l.ts_offset = l.last_tsval.wrapping_sub(f.max_tsval_sent);
            // Their SYN-ACKs have done their work.
            while self.hold.pop_front(&mut l.hold).is_some() {}
        }
        f.phase = FlowPhase::Established;
        for i in 0..n {
            let leg = f.legs[i];
            if leg.alive && self.synth_to_leg(f, i, TcpFlags::ACK, leg.isn.wrapping_add(1)) {
                self.c.acks_to_replica += 1;
            }
        }
        // The window update the client waits for (its SYN-ACK had a zero window).
        let seq = f.to_client_nxt;
        if self.synth_to_client(f, TcpFlags::ACK, seq) {
            self.c.acks_to_client += 1;
        }
        Fate::Keep
    }

    /// §3.1 option normalisation of the forwarded SYN-ACK: MSS the minimum, SACK and
    /// timestamps only if every replica agreed (NOPs otherwise, length unchanged).
    fn normalise_synack(&mut self, f: &Flow, buf: &mut B, m: &Meta) {
        let mut tcp = m.tcp_mut(buf.bytes_mut());
        if tcp.mss().is_some_and(|v| v != f.visible_mss) {
            tcp.set_mss(f.visible_mss);
        }
        if !f.sack_on {
            tcp.nop_out(option_kind::SACK_PERMITTED);
        }
        if !f.ts_on {
            tcp.nop_out(option_kind::TIMESTAMPS);
        }
    }

    /// A replica RST kills its leg; forwarded only when it was the last live leg (§3.8).
    /// Only a RST the client would take (§3.11): at the leg's next sequence number, or at
    /// the ack it was last given (a closed socket answering a segment); one that refuses
    /// the SYN acks it. One elsewhere in the leg's window gets a challenge ACK: a replica
    /// whose connection is gone answers it with the exact RST.
    fn on_replica_rst(&mut self, f: &mut Flow, i: usize, mut buf: B, m: &Meta) -> Fate {
        if !checksum_ok(buf.bytes(), m) {
            self.c.drop(DropReason::BadChecksum);
            return Fate::Keep;
        }
        let leg = f.legs[i];
        let exact = if leg.answered {
            m.seq == leg.snd_nxt || m.seq == leg.acked_to
        } else {
            m.flags.contains(TcpFlags::ACK) && m.ack == f.client_isn.wrapping_add(1)
        };
        if !exact {
            let right = leg.acked_to.wrapping_add(f.client_max_wnd.max(1));
            if leg.answered && m.seq >= leg.acked_to && m.seq < right {
                self.c.drop(DropReason::RstInWindow);
                if self.may_challenge(f) && self.synth_to_leg(f, i, TcpFlags::ACK, leg.acked_to) {
                    self.c.acks_to_replica += 1;
                }
            } else {
                self.c.drop(DropReason::RstOutOfWindow);
            }
            return Fate::Keep;
        }
        self.heard_from(f, i);
        if f.phase == FlowPhase::Closed {
            // Both directions are closed: the replica answers a late or duplicate segment
            // (say the client's last ACK, twice) of a connection it has already closed.
            // Nothing failed, and the client in TIME-WAIT needs nothing.
            self.c.drop(DropReason::Suppressed);
            return Fate::Keep;
        }
        let last = f.live_legs() == 1;
        if last
            && f.phase == FlowPhase::Established
            && f.legs[i].answered
            && self.replay_config(f).is_some()
        {
            // Reconnect mode: the last replica's RST (a killed process's kernel answers
            // so) ends its connection, not the client's: replayed to another. A server
            // that resets deliberately resets the replay too, and then the client gets it.
            self.signal(&mut f.legs[i], SignalKind::UnmatchedRst);
            self.c.drop(DropReason::DeadLeg);
            return self.kill_leg(f, i);
        }
        if f.joining() == Some(i) && !f.legs[i].answered {
            if let Some(r) = f
                .replay
                .as_mut()
                .filter(|r| r.dup_acks < REPROTECT_SYN_TRIES)
            {
                // A replica that came back may still hold the flow's old connection (in
                // TIME-WAIT, say), and reset a SYN that reuses its client's ISN, ending
                // that state: the SYN goes again, a few times.
                r.dup_acks += 1;
                self.c.drop(DropReason::BadState);
                self.replay_syn(f, i);
                return Fate::Keep;
            }
        }
        if f.replay.is_some_and(|r| usize::from(r.leg) == i) && !f.legs[i].answered {
            // The new replica refused the replay's SYN: the client gets a RST at its
            // sequence, counted.
            f.legs[i].alive = false;
            return self.replay_failed(f, Why::Refused);
        }
        if !last {
            self.signal(&mut f.legs[i], SignalKind::UnmatchedRst);
            self.c.drop(DropReason::DeadLeg);
            return self.kill_leg(f, i);
        }
        if f.phase == FlowPhase::SynSent || !f.legs[i].answered {
            // Connection refused by every replica: the client learns it as from a server.
            let frame = buf.bytes_mut();
            let sum = self.nat_to_client(f, frame, m);
            m.tcp_mut(frame).adjust_checksum(sum);
        } else {
            self.rewrite_to_client(f, i, &mut buf, m);
        }
        self.tx(Side::Outside, buf);
        f.legs[i].alive = false;
        Fate::Remove
    }

    // ---- failover ---------------------------------------------------------------------

    /// §3.9: legs whose replica went down (or came back: new epoch) leave the flow.
    /// Every segment of a mirrored flow asks, and nearly always nothing has changed: that
    /// answer inline, the work out of line (`refresh_legs_now`).
    #[inline(always)]
    fn refresh_legs(&mut self, f: &mut Flow) -> Fate {
        let downs = self.replicas.down_generation();
        let replay = f.phase != FlowPhase::SynSent && !f.legs[f.active as usize].hold.is_empty();
        if downs == f.checked_downs && !replay {
            return Fate::Keep;
        }
        self.refresh_legs_now(f)
    }

    /// Out of line and cold: it runs after a replica went down, and while a failover's
    /// replay is left to send.
    #[cold]
    #[inline(never)]
    fn refresh_legs_now(&mut self, f: &mut Flow) -> Fate {
        let downs = self.replicas.down_generation();
        if downs != f.checked_downs {
            f.checked_downs = downs;
            if self.check_legs(f) == Fate::Remove {
                return Fate::Remove;
            }
        }
        // An active leg never holds: anything held there is a replay still to send.
        if f.phase != FlowPhase::SynSent && !f.legs[f.active as usize].hold.is_empty() {
            self.replay_held(f);
        }
        Fate::Keep
    }

    /// Kills the legs whose replica went down since the flow last looked.
    fn check_legs(&mut self, f: &mut Flow) -> Fate {
        for i in 0..f.n_legs as usize {
            let l = &f.legs[i];
            if l.alive
                && !self.replicas.leg_alive(l.replica, l.epoch)
                && self.kill_leg(f, i) == Fate::Remove
            {
                return Fate::Remove;
            }
        }
        Fate::Keep
    }

    /// Takes leg `i` out of the flow; switches the active leg if it was it; resets the
    /// client when no leg is left.
    fn kill_leg(&mut self, f: &mut Flow, i: usize) -> Fate {
        if f.joining() == Some(i) {
            // A new standby that died before it had the whole log.
            f.replay = None;
            f.reprotect_failed_at = self.replicas.up_generation().wrapping_add(1);
            self.c.reprotects_failed += 1;
        }
        let leg = &mut f.legs[i];
        leg.alive = false;
        self.hold.clear(&mut leg.hold);
        self.c.legs_lost += 1;
        self.note_protection(f);
        if f.live_legs() == 0 {
            if f.phase == FlowPhase::Closed {
                // Both sides had closed: it only lingered, and nothing is lost.
                return Fate::Remove;
            }
            if f.phase == FlowPhase::Established && self.replay_config(f).is_some() {
                return self.start_replay(f);
            }
            if f.phase == FlowPhase::SynSent && !f.proxied && self.replay_config(f).is_some() {
                // Reconnect mode: its one replica died before answering; the client, not
                // answered either, repeats its SYN, which makes a flow on a live one.
                return Fate::Remove;
            }
            self.reset_client(f);
            self.c.flows_lost += 1;
            return Fate::Remove;
        }
        if f.phase == FlowPhase::SynSent {
            if f.legs().iter().all(|l| !l.alive || l.answered) {
                return self.complete_handshake(f);
            }
            return Fate::Keep;
        }
        if i == f.active as usize && self.switch_active(f) == Fate::Remove {
            return Fate::Remove;
        }
        self.ack_client_if_moved(f);
        self.fin_if_agreed(f);
        // The leg may have been the last not to ack the client's FIN: with no segment to
        // come from either side, only here can the flow see that it is closed.
        self.check_closed(f);
        Fate::Keep
    }

    /// Counts the flow in `flows_unprotected` once it has lost a replica (DESIGN §5; it
    /// stays counted until it ends, or gets a new standby by replay: `reprotect`).
    fn note_protection(&mut self, f: &mut Flow) {
        if !f.unprotected && f.live_legs() < f.n_legs as usize {
            f.unprotected = true;
            self.c.flows_unprotected += 1;
            // (A log with a hole is still open: the client fills it.)
            if self.log_config(f).is_some()
                && self.replay_config(f).is_none()
                && !matches!(f.log.state, LogState::Open | LogState::Off)
            {
                self.c.reprotect_beyond_limit += 1;
            }
        }
    }

    /// Makes the next live leg active: re-bases its timestamps so the client's TSval
    /// never goes backwards (§3.3), sends its held data at once (§3.6). With
    /// verification (§3.12) only a leg checked equal up to what the client has takes
    /// over at once, or one behind that catches up; the others leave the flow, and a flow
    /// with none left is reset (`Fate::Remove`).
    fn switch_active(&mut self, f: &mut Flow) -> Fate {
        let n = f.n_legs as usize;
        let from = f.active as usize;
        let verify = self.verifies(f);
        // What the client has: the old active's output it was sent (its FIN aside).
        let client_has = match f.fin_sent {
            Some(_) => f.to_client_nxt.wrapping_sub(1),
            None => f.to_client_nxt,
        };
        let mut chosen = None;
        for j in (1..=n).map(|k| (from + k) % n) {
            if !(f.legs[j].alive && f.legs[j].answered) {
                continue;
            }
            if !verify {
                chosen = Some((j, None));
                break;
            }
            // A second failover while one catches up: nothing but the first active's
            // CRC says what the client has, and no other leg was checked against it
            // since. The flow ends rather than risk a mixed stream.
            let decision = if f.catch_up.is_some() {
                TakeOver::Refused
            } else {
                let held = HeldView {
                    pool: self.hold,
                    legs: &f.legs[..n],
                };
                verify::take_over(&mut f.checks[..n], from, j, client_has, &held)
            };
            match decision {
                TakeOver::Verified => {
                    chosen = Some((j, None));
                    break;
                }
                TakeOver::CatchUp(until) => {
                    chosen = Some((j, Some((from as u8, until, self.now))));
                    break;
                }
                TakeOver::Refused => {
                    let seq = f.legs[j].ack;
                    self.synth_rst_to_leg(f, j, seq);
                    let leg = &mut f.legs[j];
                    leg.alive = false;
                    self.hold.clear(&mut leg.hold);
                    self.c.legs_lost += 1;
                }
            }
        }
        let Some((next, catch_up)) = chosen else {
            if verify && f.live_legs() == 0 {
                self.c.takeovers_refused += 1;
                self.c.flows_lost += 1;
                self.reset_client(f);
                return Fate::Remove;
            }
            return Fate::Keep;
        };
        f.catch_up = catch_up;
        if catch_up.is_some() {
            self.c.catch_ups += 1;
            f.checks[next].drop_pieces();
        }
        f.active = next as u8;
        self.c.flow_failovers += 1;
        // Where Tandem holds every byte of the new active's output from the client's
        // ack on (below, the most it may be acked for).
        let held_to = self.held_run_end(f, next, client_from(f));
        let max_ts = f.max_tsval_sent;
        let leg = &mut f.legs[next];
        if f.ts_on {
            let visible = leg.last_tsval.wrapping_sub(leg.ts_offset);
            if Seq(visible) < Seq(max_ts) {
                leg.ts_offset = leg.last_tsval.wrapping_sub(max_ts);
            }
        }
        match f.catch_up {
            // §3.12: it sends again what was not checked of it, at once: acked up to
            // what it digested (no further than what the client has: the rest must
            // reach the client before the replica forgets it), then duplicate acks
            // there. Otherwise it would wait, unacked, for its own timer, and the
            // catch-up time would run out.
            // Acked for what the client may still lack only where Tandem holds a copy
            // (`resend_held_to_client`): past a copy released over the hold budget, the
            // replica keeps its own.
            Some((_, until, _)) => {
                let upto = f.checks[next].at.earlier(until).earlier(held_to);
                leg.hold_gap = false;
                let ack = upto
                    .wrapping_add(leg.delta)
                    .later(leg.acked_to)
                    .earlier(leg.snd_nxt);
                for _ in 0..4 {
                    self.dupack_to_leg(f, next, ack);
                }
            }
            // Held data released over budget, or refused, must come from the replica
            // itself: three duplicate acks make it retransmit without waiting for its
            // timer.
            None if leg.hold_gap && f.client_acked => {
                leg.hold_gap = false;
                let ack = f.client_ack.wrapping_add(leg.delta).earlier(leg.snd_nxt);
                for _ in 0..3 {
                    self.dupack_to_leg(f, next, ack);
                }
            }
            None => {}
        }
        self.replay_held(f);
        Fate::Keep
    }

    /// Sends the active leg's held segments that the client has not acked: a copy of
    /// each, once; the originals stay until the client acks them (`release_acked`). The
    /// replica may have been acked for them on the client's behalf (a catch-up, §3.12):
    /// lost on the way to the client, they come again only from here
    /// (`resend_held_to_client`).
    fn replay_held(&mut self, f: &mut Flow) {
        self.release_acked(f);
        let active = f.active as usize;
        while self.out.tx_room() > 1 {
            let leg = &f.legs[active];
            let Some((at, seq, len)) = self.hold.find(&leg.hold, |_, _, sent| !sent) else {
                break;
            };
            if let Some((_, until, _)) = f.catch_up {
                // §3.12: what is not checked yet stays held until the catch-up checks
                // it (the replica was acked for it: it will not come again).
                let vend = seq.wrapping_sub(leg.delta).wrapping_add(len);
                if vend.earlier(until) > f.checks[active].verified {
                    break;
                }
            }
            self.hold.mark_sent(at);
            if self.send_held_copy(f, at) {
                self.c.replayed_segments += 1;
            }
        }
    }

    /// The visible end of leg `i`'s held output that runs from `from` without a gap
    /// (`from` itself when nothing held starts at or before it).
    fn held_run_end(&self, f: &Flow, i: usize, from: Seq) -> Seq {
        let delta = f.legs[i].delta;
        let mut end = from;
        self.hold.each(&f.legs[i].hold, |_, seq, (_, len)| {
            let start = seq.wrapping_sub(delta);
            if start > end {
                return false;
            }
            end = end.later(start.wrapping_add(len));
            true
        });
        end
    }

    /// Sends a copy of the active leg's held segment `at` to the client; whether it went
    /// (not when the client has acked all of it).
    fn send_held_copy(&mut self, f: &mut Flow, at: HeldRef) -> bool {
        let pool = &mut *self.pool;
        let Some(copy) = self.hold.frame(at).and_then(|b| pool.copy(b)) else {
            self.c.drop(DropReason::NoBuffer);
            return false;
        };
        let Class::Tcp(m) = classify(copy.bytes(), &[], &[]) else {
            return false;
        };
        f.held_sent_at = self.now.max(1);
        let before = self.c.tx;
        self.forward_from_active(f, copy, &m);
        self.c.tx > before
    }

    /// §3.12: the held copy of what the client lacks at its ack goes again (its third
    /// duplicate ack, or the resend timer): the replica may have been acked for it, so
    /// nobody else has it.
    fn resend_held_to_client(&mut self, f: &mut Flow) {
        if !f.client_acked {
            return;
        }
        let leg = &f.legs[f.active as usize];
        let (delta, ack) = (leg.delta, f.client_ack);
        let found = self.hold.find(&leg.hold, |seq, len, sent| {
            sent && seq.wrapping_sub(delta).wrapping_add(len) > ack
        });
        if let Some((at, _, _)) = found {
            if self.send_held_copy(f, at) {
                self.c.held_resent += 1;
            }
        }
    }

    /// Sweep step for one flow: failover of idle flows, timeouts, FIN grace.
    fn sweep_flow(&mut self, f: &mut Flow) -> Fate {
        if f.forward {
            return self.sweep_forward(f);
        }
        if self.refresh_legs(f) == Fate::Remove {
            return Fate::Remove;
        }
        // (A replay's catch-up is timed by its progress: `time_replay`.)
        if f.replay.is_none()
            && f.catch_up
                .is_some_and(|(_, _, since)| self.now.saturating_sub(since) > CATCH_UP_NS)
        {
            // §3.12: the new active never got checked up to what the client has (its
            // output there depends on what the client cannot get): a RST, never a guess.
            self.c.catch_ups_failed += 1;
            return self.reset_all(f);
        }
        let idle = self.now.saturating_sub(f.last_seen);
        let t = timers(self.timeouts, f);
        let expired = match f.phase {
            // From the SYN, not the last packet: retransmitted SYN-ACKs keep nothing alive.
            // (The half-open queue ends most of them sooner; this catches the rest.)
            FlowPhase::SynSent | FlowPhase::SynAckSent => {
                self.now.saturating_sub(f.created_at) > t.syn_ns
            }
            FlowPhase::Established => idle > t.idle_ns,
            FlowPhase::Closed => self.now.saturating_sub(f.closed_at) > t.linger_ns,
            FlowPhase::Free => true,
        };
        if expired {
            if f.proxied && f.phase == FlowPhase::SynSent {
                // The client is established (with Tandem): it learns at once that no
                // replica took its connection.
                self.reset_client(f);
                self.c.flows_lost += 1;
                for i in 0..f.n_legs as usize {
                    if f.legs[i].alive && f.legs[i].answered {
                        let seq = f.client_snd_nxt;
                        self.synth_rst_to_leg(f, i, seq);
                    }
                }
                return Fate::Remove;
            }
            if f.phase == FlowPhase::Established {
                // §3.10: nobody is left holding a connection that no longer exists: the
                // client and every replica get a RST, at the sequence each expects.
                self.reset_client(f);
                for i in 0..f.n_legs as usize {
                    if f.legs[i].alive && f.legs[i].answered {
                        let seq = f.client_snd_nxt;
                        self.synth_rst_to_leg(f, i, seq);
                    }
                }
                self.c.idle_resets += 1;
            }
            return Fate::Remove;
        }
        if f.phase == FlowPhase::Established {
            let active = f.active as usize;
            if f.held_sent_at != 0
                && !f.legs[active].hold.is_empty()
                && self.now.saturating_sub(f.held_sent_at) > HELD_RESEND_NS
            {
                // The last held copy may have been lost with nothing after it to draw a
                // duplicate ack: what a sender's retransmission timer does.
                self.resend_held_to_client(f);
            }
            for (i, leg) in f.legs[..f.n_legs as usize].iter_mut().enumerate() {
                if i != active {
                    self.trim_to_fair_share(leg);
                }
            }
            self.ack_client_if_moved(f);
            // A frozen replica sends nothing, and its peers soon nothing either (they wait
            // for acks): the lags are timed here too, not only when segments arrive.
            self.check_lag(f);
            if self.check_divergence(f) == Fate::Remove {
                return Fate::Remove;
            }
            // Reconnect mode: a FIN held while health decided goes now, if it is due.
            self.fin_if_agreed(f);
            // Mirror mode: a flow that lost a standby may get a new one.
            self.reprotect(f);
        }
        Fate::Keep
    }

    // ---- mirror mode: new standbys for running flows (DESIGN §5, reintegration) -------

    /// Sweep step: a mirror flow that lost a standby (or began with too few replicas up)
    /// gets a new one by replay, when a replica of its pool is up and not in the flow,
    /// and its log still holds every client byte since the SYN. The new leg is a
    /// connection of Tandem's own with the client's address, port and ISN (`replay_syn`);
    /// it is given the log (`replay_send`) while the active goes on serving the client,
    /// and its output, behind the active's, is digested, checked at the active's marks
    /// (§3.12) and acked as the client has it, never sent anywhere. Once it has the whole
    /// log it takes the client's segments like any standby (`replay_done`).
    fn reprotect(&mut self, f: &mut Flow) {
        let cfg: &'a EngineConfig = self.cfg;
        let Some(svc) = cfg.services.get(usize::from(f.service)) else {
            return;
        };
        let Some(rc) = svc.reprotect else {
            return;
        };
        if !f.unprotected || f.replay.is_some() || f.catch_up.is_some() || f.proxied {
            return;
        }
        // A new standby failed, and no replica came up since: not again for now.
        if f.reprotect_failed_at == self.replicas.up_generation().wrapping_add(1) {
            return;
        }
        // A closing flow: a new standby could not be brought to where the others are.
        // (A dead leg's FIN does not count: a killed server's kernel closes its socket.)
        if f.client_fin.is_some()
            || f.fin_sent.is_some()
            || f.legs().iter().any(|l| l.alive && l.fin.is_some())
        {
            return;
        }
        if f.live_legs() >= svc.copies.min(MAX_COPIES) {
            return;
        }
        match f.log.state {
            LogState::Open => {}
            // No client byte yet: an empty log.
            LogState::Off if f.client_snd_nxt == f.client_isn.wrapping_add(1) => {
                self.logs.open(&mut f.log, f.client_isn.wrapping_add(1));
            }
            _ => return,
        }
        let active = f.active as usize;
        // Nothing to check a new standby against.
        if self.verifies(f) && !f.checks[active].usable() {
            return;
        }
        if self.c.reconnects_in_progress >= rc.parallel as u64 {
            return;
        }
        let in_flow = |r: ReplicaId| f.legs().iter().any(|l| l.alive && l.replica == r);
        let Some(replica) = svc
            .replicas
            .iter()
            .copied()
            .find(|&r| self.replicas.health(r) == Health::Up && !in_flow(r))
        else {
            return;
        };
        // A slot: a dead leg's, or a new one.
        let n = f.n_legs as usize;
        let Some(slot) = (0..n)
            .find(|&k| k != active && !f.legs[k].alive)
            .or_else(|| {
                (n < MAX_COPIES).then(|| {
                    f.n_legs += 1;
                    n
                })
            })
        else {
            return;
        };
        self.begin_replay(f, slot, replica, false, true);
        self.c.reprotects += 1;
    }

    // ---- reconnect mode: replay (DESIGN §2) -------------------------------------------

    /// The flow's service's replay settings, if it replays.
    fn replay_config(&self, f: &Flow) -> Option<ReplayConfig> {
        self.cfg
            .services
            .get(usize::from(f.service))
            .and_then(|s| s.replay)
    }

    /// Reconnect mode, and mirror mode's new standbys: an accepted client segment's
    /// bytes go to the flow's log (opened at the byte after the SYN by the first). A log
    /// that ends (limit, gap, full arena) leaves a reconnect flow unprotected, and a
    /// mirror flow without new standbys.
    fn log_client(&mut self, f: &mut Flow, buf: &B, m: &Meta) -> Fate {
        if m.payload_len == 0 {
            return Fate::Keep;
        }
        let Some(rc) = self.log_config(f) else {
            return Fate::Keep;
        };
        let reconnect = self.replay_config(f).is_some();
        if f.log.state == LogState::Off {
            if !reconnect && m.seq != f.client_isn.wrapping_add(1) {
                // Mirror mode, the first bytes not at hand (out of order, or a flow
                // installed by the appliance pair's sync): no new standby could be
                // given every byte since the SYN.
                self.logs.end(&mut f.log, LogState::Gap);
                self.log_ended(f);
                return Fate::Keep;
            }
            self.logs.open(&mut f.log, f.client_isn.wrapping_add(1));
        }
        let payload = buf.bytes().get(m.payload()).unwrap_or(&[]);
        let appended = if reconnect {
            self.logs.append(&mut f.log, m.seq, payload, rc.limit)
        } else {
            // Mirror mode: a segment past a gap is logged behind a hole that the client's
            // retransmission fills (the replicas lack the gap too, and hold the client's
            // ack back until then); a second gap ends the log: the flow keeps its
            // standbys, and only loses the chance of new ones.
            self.logs
                .append_past_gap(&mut f.log, m.seq, payload, rc.limit, MAX_LOG_HOLE)
        };
        match appended {
            Appended::Ended(_) => {
                if reconnect {
                    self.c.replay_logs_ended += 1;
                } else {
                    self.log_ended(f);
                }
                if f.replay.is_some() {
                    // The new replica gets the client's bytes only from the log: it
                    // cannot be given these.
                    return self.replay_failed(f, Why::Overflow);
                }
                if reconnect {
                    self.mark_unprotected(f);
                }
            }
            Appended::Logged(n) => {
                if let Some(rules) = self.http1_rules(f) {
                    let new = payload.get(payload.len().saturating_sub(n as usize)..);
                    self.http1_client(f, new.unwrap_or(&[]), rules);
                }
            }
            Appended::Nothing => {}
        }
        Fate::Keep
    }

    /// Mirror mode: the flow's log ended; a flow that has lost a standby already stays
    /// unprotected for good.
    fn log_ended(&mut self, f: &mut Flow) {
        self.c.replay_logs_ended += 1;
        if f.unprotected {
            self.c.reprotect_beyond_limit += 1;
        }
    }

    /// The flow's service's log settings, if its flows log their client bytes
    /// (reconnect mode, or mirror mode's new standbys).
    fn log_config(&self, f: &Flow) -> Option<ReplayConfig> {
        self.cfg
            .services
            .get(usize::from(f.service))
            .and_then(|s| s.log_config())
    }

    /// The flow runs with fewer replicas than it should (counted while it lasts).
    fn mark_unprotected(&mut self, f: &mut Flow) {
        if !f.unprotected {
            f.unprotected = true;
            self.c.flows_unprotected += 1;
        }
    }

    /// The flow's last replica died: a new connection to a live one, with the client's
    /// ISN and options, into which the log is replayed (`replay_synack`, `replay_send`).
    /// Where it cannot be, the client gets a RST, counted by why.
    fn start_replay(&mut self, f: &mut Flow) -> Fate {
        let Some(rc) = self.replay_config(f) else {
            return self.replay_failed(f, Why::Refused);
        };
        // A second failure during a replay: nothing but the first leg's digest says what
        // the client has, and the new leg was not checked against it yet.
        if f.replay.is_some() || f.catch_up.is_some() {
            return self.replay_failed(f, Why::Refused);
        }
        // The server's FIN went to the client: its stream is complete (a client FIN is
        // replayed after the log).
        if f.fin_sent.is_some() {
            return self.replay_failed(f, Why::Unsafe);
        }
        match f.log.state {
            LogState::Open => {}
            // No client byte yet: an empty log.
            LogState::Off => self.logs.open(&mut f.log, f.client_isn.wrapping_add(1)),
            LogState::Gap => return self.replay_failed(f, Why::Unsafe),
            LogState::Overflow | LogState::Full => return self.replay_failed(f, Why::Overflow),
        }
        let dead = f.active as usize;
        if let Some(rules) = self.http1_rules(f) {
            if let Err(why) = self.http1_plan(f, rules) {
                return self.replay_failed(f, why);
            }
        } else if !f.checks[dead].usable() {
            return self.replay_failed(f, Why::Refused);
        }
        if self.c.reconnects_in_progress >= rc.parallel as u64 {
            return self.replay_failed(f, Why::Refused);
        }
        let Some(svc) = self.cfg.services.get(usize::from(f.service)) else {
            return self.replay_failed(f, Why::Refused);
        };
        let taken = |r: ReplicaId| f.legs().iter().any(|l| l.replica == r);
        let Some(replica) = svc
            .replicas
            .iter()
            .copied()
            .find(|&r| self.replicas.health(r) == Health::Up && !taken(r))
        else {
            return self.replay_failed(f, Why::NoReplica);
        };
        // A slot: a new one, or a dead leg's other than the one whose digest is checked.
        let n = f.n_legs as usize;
        let slot = if n < MAX_COPIES {
            f.n_legs += 1;
            n
        } else {
            match (0..n).find(|&k| k != dead && !f.legs[k].alive) {
                Some(k) => k,
                None => return self.replay_failed(f, Why::Refused),
            }
        };
        let answering = self.http1_rules(f).is_some();
        self.begin_replay(f, slot, replica, answering, false);
        self.c.reconnects += 1;
        Fate::Keep
    }

    /// A replay's new leg in slot `slot` on `replica`: its check from the stream's first
    /// byte, the log from its start, counted in progress, and its SYN. `reprotect`: a new
    /// standby (mirror mode) rather than the flow's replacement (reconnect mode).
    fn begin_replay(
        &mut self,
        f: &mut Flow,
        slot: usize,
        replica: ReplicaId,
        answering: bool,
        reprotect: bool,
    ) {
        f.legs[slot] = Leg {
            replica,
            epoch: self.replicas.epoch(replica),
            addr: u32::from(self.replicas.addr(replica)),
            alive: true,
            answer_rank: if reprotect { MAX_COPIES as u8 } else { 0 },
            ..Leg::default()
        };
        f.checks[slot] = Check::start(f.visible_isn.wrapping_add(1));
        f.replay = Some(Replaying {
            leg: slot as u8,
            next: f.log.start,
            high: f.log.start,
            acked: f.log.start,
            dup_acks: 0,
            since: self.now,
            heard_at: self.now,
            progress_at: self.now,
            queued: false,
            answering,
            reprotect,
        });
        self.c.reconnects_in_progress += 1;
        self.replay_syn(f, slot);
    }

    /// The SYN of a replay: the client's ISN, and the options the client agreed to with
    /// the flow's first replica (what the new one's answer must fit).
    fn replay_syn(&mut self, f: &mut Flow, i: usize) {
        let leg = f.legs[i];
        let Some(mac) = self.replicas.mac(leg.replica) else {
            self.c.drop(DropReason::NoNeighbour);
            return;
        };
        let mut opts = OptionWriter::new();
        opts.mss(f.client_mss);
        if f.sack_on {
            opts.sack_permitted();
        }
        if f.ts_on {
            opts.timestamps(f.tsval_to_legs, 0);
        }
        // Scaling was agreed when the client's windows are shifted, or Tandem's.
        if let Some(ws) = f
            .client_wscale
            .filter(|_| f.client_shift != 0 || f.visible_wscale != 0)
        {
            opts.window_scale(ws);
        }
        // The replayed bytes keep the client's sequence numbers: the connection starts
        // right before the log (with `replay: http1`, at the oldest unanswered request).
        let isn = f.log.start.wrapping_sub(1);
        self.emit(
            Side::Inside,
            &syn_to_leg(f, &leg, mac, isn, opts.as_bytes()),
        );
    }

    /// A replay that cannot go on: RST to the client (and the new replica), counted.
    /// A new standby's (mirror mode) takes only the new leg out: the flow goes on,
    /// unprotected.
    fn replay_failed(&mut self, f: &mut Flow, why: Why) -> Fate {
        if let Some(i) = f.joining() {
            f.reprotect_failed_at = self.replicas.up_generation().wrapping_add(1);
            f.replay = None;
            self.c.reprotects_failed += 1;
            self.c.reconnects_in_progress = self.c.reconnects_in_progress.saturating_sub(1);
            if f.legs[i].alive && f.legs[i].answered {
                let seq = f.legs[i].ack;
                self.synth_rst_to_leg(f, i, seq);
            }
            let leg = &mut f.legs[i];
            leg.alive = false;
            self.hold.clear(&mut leg.hold);
            return Fate::Keep;
        }
        match why {
            Why::Refused => self.c.reconnects_refused += 1,
            Why::Unsafe => self.c.reconnects_unsafe += 1,
            Why::Overflow => self.c.reconnects_overflow += 1,
            Why::NoReplica => self.c.reconnects_no_replica += 1,
            Why::Timeout => self.c.reconnects_timeout += 1,
        }
        if let Some(r) = f.replay.take() {
            let i = usize::from(r.leg);
            if f.legs[i].alive && f.legs[i].answered {
                self.synth_rst_to_leg(f, i, r.next);
            }
        }
        self.c.flows_lost += 1;
        self.reset_client(f);
        Fate::Remove
    }

    /// A pure ACK where the SYN-ACK of a replay was due: the replica still has an old
    /// connection of the client's address and port (a replica that came back to a flow
    /// it served before, its sockets alive), and answers the SYN with a challenge ACK
    /// (RFC 5961 §4) whose ack is the sequence that connection expects. A RST exactly
    /// there ends it (Tandem is the client to this replica); the SYN goes again.
    fn replay_challenged(&mut self, f: &mut Flow, i: usize, m: &Meta) -> Fate {
        self.c.drop(DropReason::BadState);
        self.synth_rst_to_leg(f, i, m.ack);
        self.replay_syn(f, i);
        Fate::Keep
    }

    /// The new replica's SYN-ACK: its sequence space and options are recorded, it takes
    /// over (catching up to what the client has, §3.12) and the log goes to it.
    fn replay_synack(&mut self, f: &mut Flow, i: usize, buf: B, m: &Meta) -> Fate {
        let leg = f.legs[i];
        if leg.answered {
            // Tandem's ACK of it was lost.
            if m.seq == leg.isn && self.synth_to_leg(f, i, TcpFlags::ACK, leg.isn.wrapping_add(1)) {
                self.c.acks_to_replica += 1;
            } else {
                self.c.drop(DropReason::BadState);
            }
            return Fate::Keep;
        }
        if m.ack != f.log.start {
            self.c.drop(DropReason::BadState);
            return Fate::Keep;
        }
        let tcp = m.tcp(buf.bytes());
        let ts = tcp.timestamps();
        if f.ts_on && ts.is_none() {
            // The client's segments carry timestamps the new replica would not take.
            return self.replay_failed(f, Why::Refused);
        }
        self.heard_from(f, i);
        let client_ws = f.client_wscale;
        let (visible_isn, max_tsval) = (f.visible_isn, f.max_tsval_sent);
        let leg = &mut f.legs[i];
        leg.answered = true;
        leg.answer_rank = 1;
        leg.isn = m.seq;
        leg.snd_nxt = m.seq.wrapping_add(1);
        leg.acked_to = leg.snd_nxt;
        leg.mss = tcp.mss().unwrap_or(536);
        (leg.wscale, leg.peer_wscale) = match (client_ws, tcp.window_scale()) {
            (Some(cws), Some(ws)) => (ws.min(14), cws),
            _ => (0, 0),
        };
        leg.sack_ok = tcp.sack_permitted();
        leg.ts_ok = ts.is_some();
        leg.last_tsval = ts.map_or(0, |(v, _)| v);
        leg.ack = m.ack;
        leg.wnd_edge = m.ack.wrapping_add(u32::from(tcp.window()));
        leg.delta = m.seq.0.wrapping_sub(visible_isn.0);
        // Its clock continues the one the client saw (§3.3): never backwards.
        leg.ts_offset = leg.last_tsval.wrapping_sub(max_tsval);
        drop(buf);
        if self.synth_to_leg(f, i, TcpFlags::ACK, m.seq.wrapping_add(1)) {
            self.c.acks_to_replica += 1;
        }
        if f.joining() == Some(i) {
            // A new standby: the active goes on; the log goes to it.
            if let Some(r) = f.replay.as_mut() {
                r.progress_at = self.now;
                r.heard_at = self.now;
            }
            self.replay_send(f);
            return Fate::Keep;
        }
        if let Some(rules) = self.http1_rules(f) {
            return self.http1_synack(f, i, rules);
        }
        // §3.12: it takes over only for what is checked equal to what the client has.
        let dead = f.active as usize;
        let client_has = match f.fin_sent {
            Some(_) => f.to_client_nxt.wrapping_sub(1),
            None => f.to_client_nxt,
        };
        let n = f.n_legs as usize;
        match verify::take_over(
            &mut f.checks[..n],
            dead,
            i,
            client_has,
            &verify::NothingHeld,
        ) {
            TakeOver::Verified => {
                f.catch_up = None;
            }
            TakeOver::CatchUp(until) => {
                f.catch_up = Some((dead as u8, until, self.now));
                f.checks[i].drop_pieces();
            }
            TakeOver::Refused => return self.replay_failed(f, Why::Refused),
        }
        f.active = i as u8;
        self.c.flow_failovers += 1;
        if let Some(r) = f.replay.as_mut() {
            r.progress_at = self.now;
            r.heard_at = self.now;
        }
        if f.catch_up.is_none() {
            self.replay_checked(f, 0);
        }
        self.replay_send(f);
        Fate::Keep
    }

    /// Sends the new replica what its window takes of the log, from `Replaying::next`.
    fn replay_send(&mut self, f: &mut Flow) {
        let Some(mut r) = f.replay else {
            return;
        };
        let i = usize::from(r.leg);
        let leg = f.legs[i];
        if !leg.alive || !leg.answered {
            return;
        }
        let Some(mac) = self.replicas.mac(leg.replica) else {
            self.c.drop(DropReason::NoNeighbour);
            return;
        };
        // Its output is acked as it is checked, and during a catch-up no further than
        // what the client has (the rest must reach the client before it is acked); past
        // the client's ack, as a new active (reconnect mode) only where Tandem holds a
        // copy (`catch_up_ack`), as a new standby (mirror mode) not at all: its output is
        // not held, and the client may lack those bytes when it takes over.
        let mut ack = self.ack_limit(f, i);
        match f.catch_up {
            Some((_, until, _)) if i == f.active as usize => {
                ack = ack
                    .earlier(until.wrapping_add(leg.delta))
                    .earlier(self.catch_up_ack(f, i))
            }
            Some(_) => {
                ack = ack.earlier(client_from(f).wrapping_add(leg.delta).later(leg.acked_to))
            }
            None if f.client_acked => {
                ack = ack.earlier(f.client_ack.wrapping_add(leg.delta).later(leg.acked_to))
            }
            None => {}
        }
        // `replay: http1`, its answer being checked: what was taken of it.
        if let Some(fed) = f.exchange.and_then(|x| self.exchanges.answer_fed(x)) {
            ack = leg.isn.wrapping_add(1).wrapping_add(fed as u32);
        }
        // (Mirror mode: not past a hole in the log, until the client fills it.)
        let end = f.log.contiguous_end();
        let edge = leg.wnd_edge;
        let window = replay_window(f, i, &leg);
        let mut opts = OptionWriter::new();
        if f.ts_on && leg.ts_ok {
            opts.timestamps(f.tsval_to_legs, leg.last_tsval);
        }
        // The MSS it announced counts no options (RFC 9293 §3.7.1): a segment's own
        // come off it.
        let mss = u32::from(leg.mss.clamp(64, 1460)) - opts.as_bytes().len() as u32;
        // A few segments a call, with room left for the rest of the burst: the replica's
        // acks clock the rest out (a long log sent at once overflows the port's queue,
        // and what is lost there is sent again).
        let mut budget = REPLAY_SEGMENTS_PER_CALL;
        while budget > 0 && r.next < end && r.next < edge && self.out.tx_room() > REPLAY_TX_ROOM {
            budget -= 1;
            let room = end
                .bytes_after(r.next)
                .min(edge.bytes_after(r.next))
                .min(mss);
            let bytes = self.logs.slice_at(&f.log, r.next, room as usize);
            if bytes.is_empty() {
                break;
            }
            let len = bytes.len() as u32;
            let spec = TcpBuild {
                payload: bytes,
                ..to_leg(
                    f,
                    &leg,
                    mac,
                    TcpFlags::ACK | TcpFlags::PSH,
                    r.next.0,
                    ack.0,
                    window,
                    opts.as_bytes(),
                )
            };
            if !emit_with(
                self.pool,
                self.out,
                self.c,
                self.cfg.inside_mac,
                Side::Inside,
                &spec,
            ) {
                break;
            }
            r.next = r.next.wrapping_add(len);
            r.high = r.high.later(r.next);
            self.c.replayed_bytes += u64::from(len);
        }
        // The client closed its side after the log: so does the replay (its FIN is
        // not in the log; the client will not send it again once acked).
        if r.next == end && f.client_fin == Some(end) && r.next < edge {
            let spec = to_leg(
                f,
                &leg,
                mac,
                TcpFlags::FIN | TcpFlags::ACK,
                r.next.0,
                ack.0,
                window,
                opts.as_bytes(),
            );
            if emit_with(
                self.pool,
                self.out,
                self.c,
                self.cfg.inside_mac,
                Side::Inside,
                &spec,
            ) {
                r.next = r.next.wrapping_add(1);
                r.high = r.high.later(r.next);
            }
        }
        f.replay = Some(r);
        f.legs[i].acked_to = f.legs[i].acked_to.later(ack);
        self.replay_done(f);
    }

    /// An accepted segment of the new replica: it is alive and working through the log
    /// (a long log's answer takes a while to check); more of the log goes if its ack or
    /// window moved.
    fn replay_progress(&mut self, f: &mut Flow, pure_ack: bool) {
        let Some(r) = f.replay.as_mut() else {
            return;
        };
        r.heard_at = self.now;
        let ack = f.legs[usize::from(r.leg)].ack;
        if ack > r.acked {
            r.acked = ack;
            r.progress_at = self.now;
            r.dup_acks = 0;
        } else if pure_ack && ack < r.next {
            // Its ack stuck below what was sent: a replayed segment was lost. The third
            // duplicate (a pure ACK, RFC 5681) sends the log again from there.
            r.dup_acks = r.dup_acks.saturating_add(1);
            if r.dup_acks == 3 {
                r.next = ack.later(f.log.start);
                r.progress_at = self.now;
            }
        }
        self.replay_send(f);
    }

    /// The new replica's answer was checked equal to what the client has, its first
    /// `skipped` bytes dropped: what follows goes on to the client.
    fn replay_checked(&mut self, f: &mut Flow, skipped: u64) {
        self.c.reconnects_spliced += 1;
        if let Some(r) = f.replay {
            self.c.reconnect_ns += self.now.saturating_sub(r.since);
        }
        self.c.replay_skipped_bytes += skipped;
        self.replay_done(f);
    }

    /// The replay is over once the log is sent and acked and the answer checked: the new
    /// leg is the flow's, and takes the client's segments directly.
    fn replay_done(&mut self, f: &mut Flow) {
        let Some(r) = f.replay else {
            return;
        };
        let leg = &f.legs[usize::from(r.leg)];
        let end = f
            .log
            .end()
            .wrapping_add(u32::from(f.client_fin == Some(f.log.end())));
        let answering = f
            .exchange
            .is_some_and(|x| self.exchanges.answer_fed(x).is_some());
        if f.catch_up.is_none() && !answering && leg.answered && r.next == end && leg.ack >= r.next
        {
            let joined = f.joining().is_some();
            f.replay = None;
            self.c.reconnects_in_progress = self.c.reconnects_in_progress.saturating_sub(1);
            if joined {
                self.reprotected(f);
            }
        }
    }

    /// A new standby has the whole log: it takes the client's segments from now on, and
    /// the flow counts as protected again once it has as many live legs as its service
    /// asks for.
    fn reprotected(&mut self, f: &mut Flow) {
        self.c.reprotected += 1;
        let copies = self
            .cfg
            .services
            .get(usize::from(f.service))
            .map_or(MAX_COPIES, |s| s.copies.min(MAX_COPIES));
        if f.unprotected && f.live_legs() >= copies {
            f.unprotected = false;
            self.c.flows_unprotected = self.c.flows_unprotected.saturating_sub(1);
        }
    }

    /// Each poll, for a replay in progress: the connect timeout, and the log sent again
    /// from the new replica's ack when it took nothing for a while (a lost segment).
    fn time_replay(&mut self, f: &mut Flow) -> Fate {
        let Some(rc) = self.log_config(f) else {
            return Fate::Keep;
        };
        let Some(mut r) = f.replay else {
            return Fate::Keep;
        };
        let i = usize::from(r.leg);
        let leg = f.legs[i];
        let idle = self.now.saturating_sub(r.progress_at);
        if !leg.answered {
            if idle > rc.connect_timeout_ns {
                return self.replay_failed(f, Why::Timeout);
            }
            // Its SYN (or SYN-ACK) may have been lost: again, four times a timeout.
            if self.now.saturating_sub(r.heard_at) > rc.connect_timeout_ns / 4 {
                r.heard_at = self.now;
                f.replay = Some(r);
                self.replay_syn(f, i);
            }
            return Fate::Keep;
        }
        // A replica silent for this long is not coming back (its retransmission timer
        // backs off to seconds when segments are lost while it catches up).
        if self.now.saturating_sub(r.heard_at) > REPLAY_SILENCE_NS {
            return self.replay_failed(f, Why::Timeout);
        }
        let rto = rc.connect_timeout_ns.max(REPLAY_RTO_MIN_NS);
        if leg.ack < r.next && idle > rto {
            // Go back to what it acked (its window may have dropped a segment).
            r.next = leg.ack.later(f.log.start);
            r.progress_at = self.now;
            f.replay = Some(r);
            self.replay_send(f);
        }
        Fate::Keep
    }

    // ---- reconnect mode, `replay: http1` (DESIGN §2, crate::exchange) ------------------

    /// The flow's service's HTTP/1.1 rules, if it replays from request boundaries.
    fn http1_rules(&self, f: &Flow) -> Option<&'a Http1Rules> {
        let cfg: &'a EngineConfig = self.cfg;
        cfg.services
            .get(usize::from(f.service))
            .and_then(|s| s.http1.as_ref())
    }

    /// The flow's exchange, taken at its first byte. With none left the flow cannot be
    /// replayed: its log ends, and it runs unprotected (counted).
    fn exchange_slot(&mut self, f: &mut Flow) -> Option<u32> {
        if f.exchange.is_some() {
            return f.exchange;
        }
        if !matches!(f.log.state, LogState::Off | LogState::Open) {
            return None;
        }
        let x = self.exchanges.take();
        if x == exchange::NONE {
            self.c.http1_exchanges_full += 1;
            self.logs.end(&mut f.log, LogState::Full);
            self.mark_unprotected(f);
            return None;
        }
        f.exchange = Some(x);
        Some(x)
    }

    /// The client's new bytes, logged: to the flow's exchange (and during a replay to
    /// the new replica's answer, whose requests they are). The log keeps only what a
    /// replay needs: from the oldest request not fully answered.
    fn http1_client(&mut self, f: &mut Flow, bytes: &[u8], rules: &Http1Rules) {
        let Some(slot) = self.exchange_slot(f) else {
            return;
        };
        let Some(x) = self.exchanges.get_mut(slot) else {
            return;
        };
        x.client(bytes, rules);
        let answered = x.answered_client();
        self.count_unreplayable(slot);
        if let Some((_, a)) = self.exchanges.with_answer(slot) {
            a.client(bytes, rules);
        } else if f.replay.is_none() {
            // Offsets count from the byte after the SYN; sequence numbers wrap.
            let to = f.client_isn.wrapping_add(1).wrapping_add(answered as u32);
            self.logs.trim(&mut f.log, to);
        }
    }

    /// Counts a flow that became unreplayable (a request that may not run twice, a
    /// tunnel, a stream the framer cannot follow), once until it is replayable again.
    fn count_unreplayable(&mut self, slot: u32) {
        let Some(x) = self.exchanges.get_mut(slot) else {
            return;
        };
        match x.replayable() {
            Err(_) if !x.counted_unsafe => {
                x.counted_unsafe = true;
                self.c.http1_unreplayable += 1;
            }
            Ok(()) => x.counted_unsafe = false,
            Err(_) => {}
        }
    }

    /// The active replica's output as it goes to the client, to the flow's exchange in
    /// order. False: it lies past a gap and is dropped (the replica sends it again; a
    /// duplicate ack, as the client would send, hastens that).
    fn http1_server(
        &mut self,
        f: &mut Flow,
        i: usize,
        buf: &B,
        m: &Meta,
        rules: &Http1Rules,
    ) -> bool {
        if m.payload_len == 0 {
            return true;
        }
        let Some(slot) = self.exchange_slot(f) else {
            return true;
        };
        let Some(x) = self.exchanges.get_mut(slot) else {
            return true;
        };
        // Its offset in the stream, from the exchange's end (a stream may pass 4 GiB).
        let end = x.server_end();
        let end_seq = f.visible_isn.wrapping_add(1).wrapping_add(end as u32);
        let vseq = m.seq.wrapping_sub(f.legs[i].delta);
        let rel = i64::from(vseq.0.wrapping_sub(end_seq.0) as i32);
        let at = end.checked_add_signed(rel).unwrap_or(0);
        let payload = buf.bytes().get(m.payload()).unwrap_or(&[]);
        if x.server(at, payload, rules) == Fed::PastGap {
            self.c.drop(DropReason::PastGap);
            let ack = f.legs[i].acked_to;
            if self.synth_to_leg(f, i, TcpFlags::ACK, ack) {
                self.c.acks_to_replica += 1;
            }
            return false;
        }
        self.count_unreplayable(slot);
        true
    }

    /// At the replica's death: where the replay starts ([`crate::exchange::Exchange::plan`]),
    /// the log trimmed to it, and the new replica's answer set up with the requests it
    /// will be sent.
    fn http1_plan(&mut self, f: &mut Flow, rules: &Http1Rules) -> Result<(), Why> {
        let slot = self.exchange_slot(f).ok_or(Why::Overflow)?;
        let plan = self
            .exchanges
            .get_mut(slot)
            .ok_or(Why::Refused)?
            .plan()
            .map_err(|_| Why::Unsafe)?;
        let from = f
            .client_isn
            .wrapping_add(1)
            .wrapping_add(plan.client as u32);
        self.logs.trim(&mut f.log, from);
        if f.log.start != from {
            // The log lost bytes the replay needs (it cannot: trims stop at the plan).
            return Err(Why::Unsafe);
        }
        if !self.exchanges.start_answer(slot, &plan) {
            return Err(Why::Refused);
        }
        let (mut at, end) = (f.log.start, f.log.end());
        while at < end {
            let bytes = self.logs.slice_at(&f.log, at, usize::MAX);
            if bytes.is_empty() {
                break;
            }
            if let Some((_, a)) = self.exchanges.with_answer(slot) {
                a.client(bytes, rules);
            }
            at = at.wrapping_add(bytes.len() as u32);
        }
        Ok(())
    }

    /// The new replica's SYN-ACK: it takes over; until its answer reaches the splice
    /// point its byte 0 stands for the old stream's `Plan::server` (the delta is set
    /// again at the splice, where excluded header lines of other lengths moved it).
    fn http1_synack(&mut self, f: &mut Flow, i: usize, rules: &Http1Rules) -> Fate {
        let Some((slot, server, step)) = f.exchange.and_then(|slot| {
            self.exchanges
                .with_answer(slot)
                .map(|(_, a)| (slot, a.server, a.at_start()))
        }) else {
            return self.replay_failed(f, Why::Refused);
        };
        let vis = f.visible_isn.wrapping_add(1).wrapping_add(server as u32);
        let leg = &mut f.legs[i];
        leg.delta = leg.isn.wrapping_add(1).0.wrapping_sub(vis.0);
        f.catch_up = None;
        f.active = i as u8;
        self.c.flow_failovers += 1;
        if let Some(r) = f.replay.as_mut() {
            r.progress_at = self.now;
            r.heard_at = self.now;
        }
        match step {
            Step::Spliced(r) => self.http1_splice(f, i, slot, r, None, rules),
            Step::Mismatch | Step::Late => {
                self.exchanges.end_answer(slot);
                self.c.reconnects_mismatch += 1;
                return self.reset_all(f);
            }
            Step::More => {}
        }
        self.replay_send(f);
        Fate::Keep
    }

    /// A segment of the new replica while its answer is checked: digested in order,
    /// acked and dropped until the splice point; there the delta is set and the segment
    /// goes on as any of the active's (`None`, also when no answer is being checked). A
    /// different answer ends the flow with RSTs.
    fn http1_answer(
        &mut self,
        f: &mut Flow,
        i: usize,
        buf: &B,
        m: &Meta,
        rules: &Http1Rules,
    ) -> Option<Fate> {
        let slot = f.exchange?;
        let (_, a) = self.exchanges.with_answer(slot)?;
        let fin = m.flags.contains(TcpFlags::FIN);
        if m.payload_len == 0 && !fin {
            // Its acks of the replayed requests: the client may learn of them.
            self.c.drop(DropReason::RedundantAck);
            self.ack_client_if_moved(f);
            return Some(Fate::Keep);
        }
        let start = f.legs[i].isn.wrapping_add(1);
        let taken = start.wrapping_add(a.fed as u32);
        let rel = m.seq.0.wrapping_sub(taken.0) as i32;
        if rel > 0 {
            // Past a gap: a duplicate ack at what was taken, as its peer would send.
            self.c.drop(DropReason::PastGap);
            if self.synth_to_leg(f, i, TcpFlags::ACK, taken) {
                self.c.acks_to_replica += 1;
            }
            return Some(Fate::Keep);
        }
        let payload = buf.bytes().get(m.payload()).unwrap_or(&[]);
        let new_at = a.fed;
        let new = payload.get(rel.unsigned_abs() as usize..).unwrap_or(&[]);
        let mut step = if new.is_empty() {
            Step::More
        } else {
            a.output(new, rules)
        };
        let fed = a.fed;
        if step == Step::More && fin {
            // It closed before it said what the client has.
            step = Step::Mismatch;
        }
        match step {
            Step::More => {
                self.c.drop(DropReason::Suppressed);
                if !new.is_empty() || rel < 0 {
                    let ack = start.wrapping_add(fed as u32);
                    if self.synth_to_leg(f, i, TcpFlags::ACK, ack) {
                        self.c.acks_to_replica += 1;
                    }
                }
                Some(Fate::Keep)
            }
            Step::Mismatch => {
                self.exchanges.end_answer(slot);
                self.c.reconnects_mismatch += 1;
                Some(self.reset_all(f))
            }
            Step::Late => {
                self.exchanges.end_answer(slot);
                Some(self.replay_failed(f, Why::Refused))
            }
            Step::Spliced(r) => {
                self.http1_splice(f, i, slot, r, Some((new_at, new)), rules);
                None
            }
        }
    }

    /// The new replica's answer is equal up to what the client has: its byte `r` is the
    /// client's next, the delta is set so, and the exchange goes on with the new stream
    /// (`seg`: the segment in hand, its bytes from offset `.0`).
    fn http1_splice(
        &mut self,
        f: &mut Flow,
        i: usize,
        slot: u32,
        r: u64,
        seg: Option<(u64, &[u8])>,
        rules: &Http1Rules,
    ) {
        let Some((x, a)) = self.exchanges.with_answer(slot) else {
            return;
        };
        let new_seq = f.legs[i].isn.wrapping_add(1).wrapping_add(r as u32);
        let vis = f
            .visible_isn
            .wrapping_add(1)
            .wrapping_add(a.client_has as u32);
        f.legs[i].delta = new_seq.0.wrapping_sub(vis.0);
        let after = match seg {
            Some((at, bytes)) => usize::try_from(r.saturating_sub(at))
                .ok()
                .and_then(|k| bytes.get(k..))
                .unwrap_or(&[]),
            None => &[],
        };
        x.spliced(after, rules);
        self.exchanges.end_answer(slot);
        if let Some(rp) = f.replay.as_mut() {
            rp.answering = false;
        }
        self.replay_checked(f, r);
    }

    // ---- synthesised segments ---------------------------------------------------------

    /// Builds a segment from the VIP to the client: `seq`, the synchronised ack, window.
    fn synth_to_client(&mut self, f: &mut Flow, flags: TcpFlags, seq: Seq) -> bool {
        let (ack, edge) = sync_ack(f).unwrap_or((f.ack_sent, f.edge_sent));
        let mut opts = OptionWriter::new();
        if f.ts_on {
            opts.timestamps(f.max_tsval_sent, f.client_tsval);
        }
        let spec = to_client(
            f,
            flags,
            seq.0,
            ack.0,
            scaled_window(edge.bytes_after(ack), f.visible_wscale),
            opts.as_bytes(),
        );
        if self.emit(Side::Outside, &spec) {
            f.ack_sent = ack;
            f.edge_sent = edge;
            true
        } else {
            false
        }
    }

    /// Builds a segment from the client to leg `i`.
    fn synth_to_leg(&mut self, f: &mut Flow, i: usize, flags: TcpFlags, ack: Seq) -> bool {
        self.synth_to_leg_with(f, i, flags, ack, None)
    }

    /// A duplicate ack to leg `i` at `ack` (its space) that says, as a receiver's would
    /// (RFC 2018), which of its later bytes Tandem holds: Linux repairs a hole from SACK
    /// blocks (RACK), not from duplicate acks alone, and would otherwise wait for its
    /// retransmission timer (backed off, after a standby's refused segments).
    fn dupack_to_leg(&mut self, f: &mut Flow, i: usize, ack: Seq) -> bool {
        let block = match f.legs[i].sack_ok {
            true => self.held_after(f, i, ack),
            false => None,
        };
        self.synth_to_leg_with(f, i, TcpFlags::ACK, ack, block)
    }

    /// The first run of leg `i`'s held output wholly after `after` (its space), as a
    /// SACK block.
    fn held_after(&self, f: &Flow, i: usize, after: Seq) -> Option<(Seq, Seq)> {
        let mut run: Option<(Seq, Seq)> = None;
        self.hold.each(&f.legs[i].hold, |_, seq, (_, len)| {
            let end = seq.wrapping_add(len);
            match run {
                None if seq > after && len > 0 => run = Some((seq, end)),
                None => {}
                Some((start, to)) if seq <= to => run = Some((start, to.later(end))),
                Some(_) => return false,
            }
            true
        });
        run
    }

    fn synth_to_leg_with(
        &mut self,
        f: &mut Flow,
        i: usize,
        flags: TcpFlags,
        ack: Seq,
        sack: Option<(Seq, Seq)>,
    ) -> bool {
        let leg = f.legs[i];
        let Some(mac) = self.replicas.mac(leg.replica) else {
            self.c.drop(DropReason::NoNeighbour);
            return false;
        };
        let mut opts = OptionWriter::new();
        if f.ts_on && leg.ts_ok {
            opts.timestamps(f.tsval_to_legs, leg.last_tsval);
        }
        if let Some((left, right)) = sack {
            opts.sack(&[(left.0, right.0)]);
        }
        // A leg being replayed to has had the log up to `next` only.
        let seq = match f.replay {
            Some(r) if usize::from(r.leg) == i => r.next,
            _ => f.client_snd_nxt,
        };
        let window = replay_window(f, i, &leg);
        let spec = to_leg(f, &leg, mac, flags, seq.0, ack.0, window, opts.as_bytes());
        let sent = self.emit(Side::Inside, &spec);
        if sent && flags.contains(TcpFlags::ACK) {
            f.legs[i].acked_to = f.legs[i].acked_to.later(ack);
        }
        sent
    }

    /// The client's SYN again, to every live leg that has not answered, rebuilt from what
    /// the flow recorded of it (sequence, MSS, window scale, SACK, TSval).
    fn resend_syn(&mut self, f: &mut Flow) {
        let mut opts = OptionWriter::new();
        opts.mss(f.client_mss);
        if f.client_sack_ok {
            opts.sack_permitted();
        }
        if f.client_ts_ok {
            opts.timestamps(f.tsval_to_legs, 0);
        }
        if let Some(ws) = f.client_wscale {
            opts.window_scale(ws);
        }
        for i in 0..f.n_legs as usize {
            let leg = f.legs[i];
            if !leg.alive || leg.answered {
                continue;
            }
            let Some(mac) = self.replicas.mac(leg.replica) else {
                self.c.drop(DropReason::NoNeighbour);
                continue;
            };
            let isn = f.client_isn;
            self.emit(
                Side::Inside,
                &syn_to_leg(f, &leg, mac, isn, opts.as_bytes()),
            );
        }
    }

    /// A RST from the client to leg `i` (cleans up a replica dropped from the flow).
    fn synth_rst_to_leg(&mut self, f: &mut Flow, i: usize, seq: Seq) {
        let leg = f.legs[i];
        let Some(mac) = self.replicas.mac(leg.replica) else {
            return;
        };
        let spec = to_leg(f, &leg, mac, TcpFlags::RST, seq.0, 0, 0, &[]);
        self.emit(Side::Inside, &spec);
    }

    /// §3.9: the flow lost its last replica: the client gets a RST.
    fn reset_client(&mut self, f: &mut Flow) {
        let (seq, flags) = if f.phase == FlowPhase::SynSent && !f.proxied {
            (Seq(0), TcpFlags::RST | TcpFlags::ACK)
        } else {
            (f.to_client_nxt, TcpFlags::RST | TcpFlags::ACK)
        };
        let ack = f.client_snd_nxt;
        let spec = to_client(f, flags, seq.0, ack.0, 0, &[]);
        self.emit(Side::Outside, &spec);
    }

    fn emit(&mut self, side: Side, spec: &TcpBuild<'_>) -> bool {
        let mac = match side {
            Side::Outside => self.cfg.outside_mac,
            Side::Inside => self.cfg.inside_mac,
        };
        emit_with(self.pool, self.out, self.c, mac, side, spec)
    }
}

/// The first byte the client has not acked (visible space).
#[inline]
fn client_from(f: &Flow) -> Seq {
    match f.client_acked {
        true => f.client_ack,
        false => f.visible_isn.wrapping_add(1),
    }
}

/// The window Tandem gives leg `i`: the client's, but for a new replica catching up after
/// a replay at most [`REPLAY_CATCH_UP_WINDOW`]: its answer up to what the client has is
/// only checked and dropped, and at the client's window it would come as fast as the
/// replica can send, a burst that overruns the inside port's receive ring (and with it
/// the probes' answers) when many flows replay at once.
fn replay_window(f: &Flow, i: usize, leg: &Leg) -> u16 {
    let field = rescale(f.client_window, f.client_shift, leg.peer_wscale);
    match (f.replay, f.catch_up) {
        // `replay: http1`: its answer up to the splice point goes to Tandem alone.
        (Some(r), _) if usize::from(r.leg) == i && r.answering => {
            let bytes = (u32::from(u16::MAX) << leg.peer_wscale).min(REPLAY_CATCH_UP_WINDOW);
            scaled_window(bytes, leg.peer_wscale).max(1)
        }
        (Some(r), Some(_)) if usize::from(r.leg) == i => {
            let bytes = (u32::from(field) << leg.peer_wscale).min(REPLAY_CATCH_UP_WINDOW);
            scaled_window(bytes, leg.peer_wscale).max(1)
        }
        _ => field,
    }
}

/// Builds `spec` (from the port's own MAC `src_mac`) in a new buffer and queues it on
/// `side`; whether it was. Apart from `Ctx` so that a payload may be borrowed from the
/// engine's other fields (a replay's from the log).
fn emit_with<B: PacketBuf, P: BufferPool<B>>(
    pool: &mut P,
    out: &mut Output<B>,
    c: &mut Counters,
    src_mac: MacAddr,
    side: Side,
    spec: &TcpBuild<'_>,
) -> bool {
    let spec = TcpBuild { src_mac, ..*spec };
    let Some(mut buf) = pool.alloc(SYNTH_LEN + spec.payload.len()) else {
        c.drop(DropReason::NoBuffer);
        return false;
    };
    match build::tcp(buf.bytes_mut(), &spec) {
        Ok(len) => {
            buf.truncate(len);
            match out.push_tx(side, buf) {
                Ok(()) => {
                    c.tx += 1;
                    true
                }
                Err(_) => {
                    c.drop(DropReason::TxFull);
                    false
                }
            }
        }
        Err(_) => {
            c.drop(DropReason::NoBuffer);
            false
        }
    }
}

/// A flow's held standby output as [`verify`] reads it: each segment's payload at its
/// client-visible sequence number.
struct HeldView<'a, B> {
    pool: &'a HoldPool<B>,
    legs: &'a [Leg],
}

impl<B: PacketBuf> verify::HeldOutput for HeldView<'_, B> {
    fn held(&self, leg: usize, each: &mut dyn FnMut(Seq, &[u8]) -> bool) {
        let Some(l) = self.legs.get(leg) else {
            return;
        };
        self.pool.each(&l.hold, |buf, seq, (at, len)| {
            match buf
                .bytes()
                .get(at as usize..(at as usize).saturating_add(len as usize))
            {
                Some(p) if !p.is_empty() => each(seq.wrapping_sub(l.delta), p),
                _ => true,
            }
        });
    }
}

/// A segment from the VIP to the client of `f`.
fn to_client<'o>(
    f: &Flow,
    flags: TcpFlags,
    seq: u32,
    ack: u32,
    window: u16,
    options: &'o [u8],
) -> TcpBuild<'o> {
    TcpBuild {
        src_mac: MacAddr::ZERO, // `Ctx::emit` sets the port's own
        dst_mac: f.client_mac,
        vlan_tci: None,
        src_ip: Ipv4Addr::from(f.key.vip),
        dst_ip: Ipv4Addr::from(f.key.client_ip),
        src_port: f.key.vip_port,
        dst_port: f.key.client_port,
        seq,
        ack,
        flags,
        window,
        ttl: 64,
        options,
        payload: &[],
    }
}

/// A segment from the client of `f` to a leg's replica (at `mac`).
#[allow(clippy::too_many_arguments)]
fn to_leg<'o>(
    f: &Flow,
    leg: &Leg,
    mac: MacAddr,
    flags: TcpFlags,
    seq: u32,
    ack: u32,
    window: u16,
    options: &'o [u8],
) -> TcpBuild<'o> {
    TcpBuild {
        src_mac: MacAddr::ZERO, // `Ctx::emit` sets the port's own
        dst_mac: mac,
        vlan_tci: None,
        src_ip: Ipv4Addr::from(f.key.client_ip),
        dst_ip: Ipv4Addr::from(leg.addr),
        src_port: f.key.client_port,
        dst_port: f.key.vip_port,
        seq,
        ack,
        flags,
        window,
        ttl: 64,
        options,
        payload: &[],
    }
}

/// The client's SYN to `leg` (its ISN and window) with `options`: a SYN the replicas
/// did not see from the client itself (a cookie-made flow, a replay).
fn syn_to_leg<'o>(f: &Flow, leg: &Leg, mac: MacAddr, isn: Seq, options: &'o [u8]) -> TcpBuild<'o> {
    to_leg(
        f,
        leg,
        mac,
        TcpFlags::SYN,
        isn.0,
        0,
        f.client_window,
        options,
    )
}

/// A new flow's legs on `chosen` (its replica set at `downs`, the down generation read
/// before the choice), its times, and whether it runs with fewer than `copies` replicas.
fn start_legs(
    f: &mut Flow,
    now: u64,
    chosen: &[ReplicaId],
    copies: usize,
    downs: u32,
    replicas: &ReplicaTable,
    c: &mut Counters,
) {
    f.created_at = now;
    f.last_seen = now;
    f.n_legs = chosen.len() as u8;
    f.unprotected = chosen.len() < copies.min(MAX_COPIES);
    c.flows_unprotected += u64::from(f.unprotected);
    f.checked_downs = downs;
    for (leg, &r) in f.legs.iter_mut().zip(chosen) {
        *leg = Leg {
            replica: r,
            epoch: replicas.epoch(r),
            addr: u32::from(replicas.addr(r)),
            alive: true,
            ..Leg::default()
        };
    }
}

/// Whether segment `m` lies in the receive window `[left, right)` (RFC 793 §3.3): a
/// segment without length at a sequence number inside it (or at its left edge for a
/// zero window), one with length overlapping it.
#[inline]
fn in_window(m: &Meta, left: Seq, right: Seq) -> bool {
    let len = m.seq_len();
    if len == 0 {
        m.seq >= left && m.seq < right
    } else {
        m.seq < right && m.seq.wrapping_add(len) > left
    }
}

/// An ICMP error quoting a TCP segment (RFC 792: the quoted IP header and at least the
/// first 8 bytes of its payload, which hold the ports and the sequence number).
#[derive(Clone, Copy, Debug)]
struct QuotedTcp {
    /// Offset of the outer IPv4 header.
    l3: usize,
    /// Offset of the ICMP message.
    icmp: usize,
    /// Offset of the quoted IPv4 header.
    inner: usize,
    /// Offset of the quoted TCP header.
    inner_l4: usize,
    /// End of the outer IPv4 packet.
    end: usize,
    /// Type 3 code 4: fragmentation needed and DF set.
    frag_needed: bool,
    /// The quoted segment's addresses, ports and sequence number.
    src: u32,
    dst: u32,
    sport: u16,
    dport: u16,
    seq: Seq,
}

impl QuotedTcp {
    /// The quoted segment of an ICMP error frame that `classify` found to be one.
    fn parse(frame: &[u8]) -> Option<QuotedTcp> {
        let l3 = if frame.get(12..14)? == [0x81, 0x00] {
            18
        } else {
            14
        };
        let ip = frame.get(l3..l3 + 20)?;
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let end = l3 + usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        let icmp = l3 + ihl;
        let msg = frame.get(icmp..end)?;
        let inner_ip = msg.get(8..28)?;
        let inner_ihl = usize::from(inner_ip[0] & 0x0f) * 4;
        if inner_ip[0] >> 4 != 4 || inner_ihl < 20 || inner_ip[9] != 6 {
            return None;
        }
        let inner = icmp + 8;
        let inner_l4 = inner + inner_ihl;
        let tcp = frame
            .get(inner_l4..inner_l4 + 8)
            .filter(|_| inner_l4 + 8 <= end)?;
        let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        Some(QuotedTcp {
            l3,
            icmp,
            inner,
            inner_l4,
            end,
            frag_needed: msg[0] == 3 && msg[1] == 4,
            src: be32(&inner_ip[12..16]),
            dst: be32(&inner_ip[16..20]),
            sport: u16::from_be_bytes([tcp[0], tcp[1]]),
            dport: u16::from_be_bytes([tcp[2], tcp[3]]),
            seq: Seq(be32(&tcp[4..8])),
        })
    }

    /// The same offsets `n` bytes earlier (a tag removed in front).
    fn shifted(self, n: usize) -> QuotedTcp {
        QuotedTcp {
            l3: self.l3 - n,
            icmp: self.icmp - n,
            inner: self.inner - n,
            inner_l4: self.inner_l4 - n,
            end: self.end - n,
            ..self
        }
    }

    /// Readdresses the error to replica `addr` about its own segment: the outer
    /// destination and the quoted source become `addr`, the quoted sequence number
    /// `seq`; the outer, quoted and ICMP checksums are made right again.
    fn rewrite_for(&self, frame: &mut [u8], addr: u32, seq: Seq) {
        let addr = Ipv4Addr::from(addr);
        // The ICMP message carries no pseudo-header: the outer change stops at the IPv4
        // checksum.
        let _ = Ipv4Packet::new_unchecked(&mut frame[self.l3..self.icmp]).set_dst(addr);
        // The quoted TCP header is 8 bytes at least: its ports and sequence number.
        TcpSegment::new_unchecked(&mut frame[self.inner_l4..self.end]).set_seq_raw(seq.0);
        // The quoted header's checksum is recomputed whole: it is short, and a router
        // may have quoted it with fields (TTL) changed since it was sent.
        let mut inner = Ipv4Packet::new_unchecked(&mut frame[self.inner..self.inner_l4]);
        inner.set_src_raw(addr);
        inner.fill_checksum();
        Icmpv4Packet::new_unchecked(&mut frame[self.icmp..self.end]).fill_checksum();
    }
}

/// Whether `src` can be a client's address: not "this network" (0.0.0.0/8), loopback,
/// multicast, or 240.0.0.0/4 with the limited broadcast (RFC 1122 §3.2.1.3, RFC 5735).
#[inline]
fn client_source(src: u32) -> bool {
    let first = src >> 24;
    first != 0 && first != 127 && first < 224
}

/// Removes the 802.1Q tag of `buf` (the MACs move over it), and returns `m` with its
/// offsets moved to match. `None` when the buffer would not shorten.
#[cold]
fn untag<B: PacketBuf>(buf: &mut B, m: &Meta) -> Option<Meta> {
    const TAG: usize = 4;
    buf.bytes_mut().copy_within(0..12, TAG);
    if !buf.trim_front(TAG) {
        return None;
    }
    let ethertype = buf.bytes().get(12..14)?;
    if ethertype != [0x08, 0x00] {
        return None;
    }
    Some(Meta {
        l3: m.l3 - TAG,
        l4: m.l4 - TAG,
        end: m.end - TAG,
        ..*m
    })
}

/// Whether `m`'s TCP checksum is right, checked in software: only RSTs and FINs pay for
/// it, before they change any state (the rewrites keep a wrong checksum wrong for every
/// other segment, so the receiving stack drops it).
fn checksum_ok(frame: &[u8], m: &Meta) -> bool {
    m.tcp(frame)
        .verify_checksum(Ipv4Addr::from(m.src), Ipv4Addr::from(m.dst))
}

/// Writes the Ethernet destination and source.
#[inline]
fn set_macs(frame: &mut [u8], dst: MacAddr, src: MacAddr) {
    EthernetFrame::new_unchecked(frame).set_addrs(dst, src);
}

/// The IPv4 header of `m`'s frame, writable. Its address setters keep the header checksum
/// and return the change for the TCP checksum, whose pseudo-header covers the addresses:
/// one RFC 1624 delta serves both. The old address is read from the frame, not taken from
/// the parse, so the checksums stay right whatever rewrote the frame since.
///
/// A fixed-size header: the view's field accesses need no bounds checks of their own.
#[inline]
fn ipv4_mut<'f>(frame: &'f mut [u8], m: &Meta) -> Ipv4Packet<&'f mut [u8; 20]> {
    let header: &mut [u8; 20] = match (&mut frame[m.l3..m.l3 + 20]).try_into() {
        Ok(h) => h,
        // A 20-byte range is 20 bytes long.
        Err(_) => unreachable!(),
    };
    Ipv4Packet::new_unchecked(header)
}

/// §3.5: the ack and right window edge the client may be told: the minimum over the live
/// legs that have answered. `None` when no such leg is left.
#[inline]
fn sync_ack(f: &Flow) -> Option<(Seq, Seq)> {
    // A new standby being given the log is left out (`Flow::joining`): a slot index no
    // leg has when there is none.
    let joining = f.joining().unwrap_or(MAX_COPIES);
    let mut sync: Option<(Seq, Seq)> = None;
    for (k, l) in f.legs().iter().enumerate() {
        if !l.alive || !l.answered || k == joining {
            continue;
        }
        sync = Some(match sync {
            None => (l.ack, l.wnd_edge),
            Some((a, e)) => (a.earlier(l.ack), e.earlier(l.wnd_edge)),
        });
    }
    let (mut ack, edge) = sync?;
    // Reconnect mode: a client byte is acked to the client only once it is in the log,
    // so that one that came out of order (not logged) is sent again by the client.
    if f.log.usable() {
        // (Its FIN, after the last logged byte, is not in the log.)
        let end = f.log.end();
        let fin = u32::from(f.client_fin == Some(end));
        ack = ack.earlier(end.wrapping_add(fin));
    }
    Some((ack, edge))
}

// ---- flow-state sync between the appliances of a pair (crate::sync) ------------------

/// A SYN without ACK: a new connection, never held up by a takeover's grace time.
fn is_syn(m: &Meta) -> bool {
    m.flags.contains(TcpFlags::SYN) && !m.flags.contains(TcpFlags::ACK)
}

/// A flow whose record is due, as the engine's outbox keeps it: its record is made when
/// the worker drains the outbox (the flow's state then, not a copy taken at the event:
/// a slot and a key, no 256-byte copy on the packet path).
#[derive(Clone, Copy, Debug)]
struct SyncNotice {
    idx: FlowIdx,
    key: FlowKey,
    event: SyncEvent,
}

/// The producer side of flow-state sync: a bounded queue, allocated at start.
struct SyncOutbox {
    cfg: SyncExport,
    notices: VecDeque<SyncNotice>,
    /// Refreshes the current sweep step may still queue.
    refresh_left: usize,
}

impl SyncOutbox {
    fn new(cfg: SyncExport) -> SyncOutbox {
        let cap = cfg.outbox.max(1);
        SyncOutbox {
            cfg: SyncExport { outbox: cap, ..cfg },
            notices: VecDeque::with_capacity(cap),
            refresh_left: 0,
        }
    }

    /// Queues a notice, or counts it dropped when the outbox is full (never grows).
    fn push(&mut self, c: &mut Counters, idx: FlowIdx, key: FlowKey, event: SyncEvent) -> bool {
        if self.notices.len() >= self.cfg.outbox {
            c.sync_outbox_drops += 1;
            return false;
        }
        self.notices.push_back(SyncNotice { idx, key, event });
        true
    }
}

/// What of flow `f` makes a sync event when it changes: carried (established or
/// closing, not forward mode: bit 0), its phase (bit 1: closed), the active leg (bits
/// 2-3), each leg alive (bits 4-6) and its FIN (bits 7-9), the client's FIN (bit 10)
/// and the FIN sent to the client (bit 11). 0 for a flow no record is made of.
fn sync_marks(f: &Flow) -> u16 {
    let carried = matches!(f.phase, FlowPhase::Established | FlowPhase::Closed);
    if !carried || f.forward {
        return 0;
    }
    let mut m = 1 | u16::from(f.phase == FlowPhase::Closed) << 1 | u16::from(f.active & 3) << 2;
    for (i, l) in f.legs().iter().enumerate() {
        m |= u16::from(l.alive) << (4 + i) | u16::from(l.fin.is_some()) << (7 + i);
    }
    m | u16::from(f.client_fin.is_some()) << 10 | u16::from(f.fin_sent.is_some()) << 11
}

/// The event that a change of `sync_marks` from `old` to `new` (both non-zero, or `old`
/// zero for a flow never synced) stands for.
fn sync_event_of(old: u16, new: u16) -> SyncEvent {
    const ACTIVE: u16 = 3 << 2;
    const ALIVE: u16 = 7 << 4;
    if old == 0 {
        SyncEvent::Handshake
    } else if (old ^ new) & ACTIVE != 0 {
        SyncEvent::Switch
    } else if old & ALIVE & !new != 0 {
        SyncEvent::LegDeath
    } else {
        SyncEvent::Fin
    }
}

impl<B: PacketBuf> Engine<B> {
    /// Queues flow `idx`'s record if one of its events happened since the last one
    /// (handshake completion, a switch of the active leg, a leg's death, a FIN either
    /// way, closing). Only for an engine of a pair.
    #[inline]
    fn note_sync(&mut self, idx: FlowIdx, now: u64) {
        let Some(sync) = self.sync_out.as_mut() else {
            return;
        };
        let f = self.flows.get_mut(idx);
        let marks = sync_marks(f);
        if marks == f.sync_mark || marks == 0 {
            return;
        }
        let event = sync_event_of(f.sync_mark, marks);
        // Marked even when dropped: the bulk resync that a loss brings covers it, and a
        // flow is not re-queued on each of its segments meanwhile.
        f.sync_mark = marks;
        f.sync_at = now;
        sync.push(&mut self.counters, idx, f.key, event);
    }

    /// The sweep's periodic refresh of flow `idx`: the fields that move (acks, next
    /// sequences, timestamps), for a synced flow that saw a segment since its last record,
    /// at most every `refresh_ns`, `refresh_per_poll` per sweep step, and only while the
    /// outbox is less than half full (room is kept for events).
    fn refresh_sync(&mut self, idx: FlowIdx, now: u64) {
        let Some(sync) = self.sync_out.as_mut() else {
            return;
        };
        let f = self.flows.get_mut(idx);
        let due = f.sync_mark != 0
            && f.last_seen > f.sync_at
            && now.saturating_sub(f.sync_at) >= sync.cfg.refresh_ns;
        if !due || sync.refresh_left == 0 || sync.notices.len() >= sync.cfg.outbox / 2 {
            return;
        }
        sync.refresh_left -= 1;
        f.sync_at = now;
        sync.push(&mut self.counters, idx, f.key, SyncEvent::Refresh);
    }

    /// Records waiting in the outbox.
    pub fn sync_pending(&self) -> usize {
        self.sync_out.as_ref().map_or(0, |s| s.notices.len())
    }

    /// Hands the due sync records, oldest first, to `send` while it takes them (returns
    /// true), at most `max`; returns how many it took. Each record shows its flow as it
    /// is now; a flow removed since its notice gets none (its `Removed` record follows).
    /// Call it between bursts. Nothing is due unless the engine is one of a pair.
    pub fn drain_sync(&mut self, max: usize, mut send: impl FnMut(&SyncRecord) -> bool) -> usize {
        let mut taken = 0;
        while taken < max {
            let Some(sync) = self.sync_out.as_mut() else {
                break;
            };
            let Some(&n) = sync.notices.front() else {
                break;
            };
            let rec = if n.event == SyncEvent::Removed {
                Some(SyncRecord::removed(n.key))
            } else if self.flows.is_used(n.idx) && self.flows.get(n.idx).key == n.key {
                self.export_slot(n.idx, n.event)
            } else {
                None
            };
            if let Some(rec) = rec {
                if !send(&rec) {
                    break;
                }
                taken += 1;
                self.counters.sync_records_made += 1;
            }
            if let Some(sync) = self.sync_out.as_mut() {
                sync.notices.pop_front();
            }
        }
        taken
    }
}

impl<B: PacketBuf> Engine<B> {
    /// The sync record of the flow of `key`, if there is one this engine would carry on
    /// elsewhere (established or closing, not forward mode).
    pub fn export_flow(&self, key: &FlowKey, event: SyncEvent) -> Option<SyncRecord> {
        let idx = self.flows.find_key(key)?;
        self.export_slot(idx, event)
    }

    /// The sync record of the flow in table slot `idx` (see [`Engine::export_flow`]).
    pub fn export_slot(&self, idx: FlowIdx, event: SyncEvent) -> Option<SyncRecord> {
        if !self.flows.is_used(idx) {
            return None;
        }
        let f = self.flows.get(idx);
        let carried = matches!(f.phase, FlowPhase::Established | FlowPhase::Closed);
        (carried && !f.forward).then(|| SyncRecord::of(f, event))
    }

    /// Every flow's record, as a bulk sync for a joining peer sends them. It walks the
    /// whole table: call it between bursts, a part at a time (`take`), or off the
    /// worker on a copy.
    pub fn export_all(&self) -> impl Iterator<Item = SyncRecord> + '_ {
        (0..self.flows.capacity() as FlowIdx)
            .filter_map(|idx| self.export_slot(idx, SyncEvent::Refresh))
    }

    /// Installs a synced flow straight into this engine's table, at `now`: no commit
    /// step at takeover. Its replicas are found by address in the engine's replica
    /// table; a leg on an address it does not know, or on a replica not live here, is
    /// dead (counted in `sync_unknown_replicas` when unknown). A `Removed` record removes
    /// the flow. Before [`Engine::takeover`] a record replaces the flow of its key; after
    /// it, it never replaces a flow the engine carries ([`InstallError::Exists`]).
    pub fn install_flow(
        &mut self,
        rec: &SyncRecord,
        now: u64,
    ) -> Result<Option<FlowIdx>, InstallError> {
        let existing = self.flows.find_key(&rec.key);
        if rec.event == SyncEvent::Removed {
            if let Some(idx) = existing {
                self.remove_flow(idx);
            }
            return Ok(None);
        }
        let result = self.install_record(rec, existing, now);
        match result {
            Ok(_) => self.counters.sync_flows_installed += 1,
            Err(_) => self.counters.sync_installs_refused += 1,
        }
        result.map(Some)
    }

    fn install_record(
        &mut self,
        rec: &SyncRecord,
        existing: Option<FlowIdx>,
        now: u64,
    ) -> Result<FlowIdx, InstallError> {
        if existing.is_some() && self.takeover_at.is_some() {
            return Err(InstallError::Exists);
        }
        let vip = Ipv4Addr::from(rec.key.vip);
        let Some(si) = self
            .cfg
            .services
            .iter()
            .position(|s| s.vip == vip && s.port.covers(rec.key.vip_port))
        else {
            return Err(InstallError::UnknownService {
                vip,
                port: rec.key.vip_port,
            });
        };
        let service = &self.cfg.services[si];
        let (verifies, copies, replays) =
            (service.verify, service.copies, service.replay.is_some());
        let replicas = &self.replicas;
        let mut unknown = 0;
        let mut flow = rec.flow_for(si as u16, now, verifies, |addr| {
            let Some(id) = replicas.find(addr) else {
                unknown += 1;
                return None;
            };
            let epoch = replicas.epoch(id);
            replicas.leg_alive(id, epoch).then_some((id, epoch))
        })?;
        self.counters.sync_unknown_replicas += unknown;
        flow.checked_downs = self.replicas.down_generation();
        if let Some(idx) = existing {
            self.remove_flow(idx);
        }
        let idx = self.flows.insert(rec.key).ok_or(InstallError::TableFull)?;
        // Fewer live legs than the service asks for, or a reconnect flow without its log:
        // unprotected (§5).
        flow.unprotected = flow.live_legs() < copies || replays;
        if flow.unprotected {
            self.counters.flows_unprotected += 1;
        }
        // What the record shows is what the peer has: no record of it goes back.
        flow.sync_mark = sync_marks(&flow);
        flow.sync_at = now;
        *self.flows.get_mut(idx) = flow;
        Ok(idx)
    }

    /// This engine takes over from its peer at `now`: every installed flow gets the
    /// ACKs that restart both ends (over the next [`Engine::poll`]s, as room in the
    /// output allows), and for `grace_ns` segments of no flow are dropped and counted
    /// (`sync_unknown_flow_drops`) rather than answered with a RST, while the peer's last
    /// records may still arrive.
    ///
    /// The kick of a flow (`needs_kick`): three duplicate ACKs to the client at the
    /// synchronised ack, with the TSval continuing the client-visible clock (leapt at the
    /// install: never backwards), so that it resends at once what the dead appliance
    /// never passed on; and three duplicate ACKs to each live replica at what was last
    /// acked to it (never past the client's ack), so that it resends at once what the
    /// client may lack, the standbys' output the peer held among it. Neither waits for
    /// a backed-off retransmission timer.
    pub fn takeover(&mut self, now: u64, grace_ns: u64) {
        self.takeover_at = Some(now);
        self.sync_grace_until = now.saturating_add(grace_ns);
        self.kick_cursor = 0;
        self.kick_left = self.flows.capacity();
    }

    /// This engine's appliance became (again) the standby of its pair: it no longer
    /// carries flows of its own, so records replace the flows of their keys again (see
    /// [`Engine::install_flow`]) and no kick or grace of an earlier takeover goes on.
    pub fn stand_by(&mut self) {
        self.takeover_at = None;
        self.sync_grace_until = 0;
        self.kick_left = 0;
    }

    /// The end of a bulk sync from the peer (a standby's table after a resync): removes
    /// the flows in `slots` table slots from `from` on whose last record came before
    /// `since` (the bulk's start; installed flows carry their install time): the peer no
    /// longer has them. Returns the slot to go on from, or `None` once past the table's
    /// end. A step of a walk, between bursts.
    pub fn prune_unsynced(&mut self, since: u64, from: usize, slots: usize) -> Option<usize> {
        let cap = self.flows.capacity();
        let end = cap.min(from.saturating_add(slots));
        for slot in from..end {
            let Ok(idx) = FlowIdx::try_from(slot) else {
                return None;
            };
            if self.flows.is_used(idx) && self.flows.get(idx).sync_at < since {
                self.remove_flow(idx);
                self.counters.sync_flows_pruned += 1;
            }
        }
        (end < cap).then_some(end)
    }

    /// Whether a takeover's kicks are still to be sent.
    pub fn takeover_pending(&self) -> bool {
        self.kick_left > 0
    }

    /// Sends the takeover's kicks while the output has room.
    fn kick_installed<P: BufferPool<B>>(&mut self, now: u64, pool: &mut P, out: &mut Output<B>) {
        let room = 3 * (MAX_COPIES + 1);
        while self.kick_left > 0 && out.tx_room() >= room {
            let Some(idx) = self
                .flows
                .next_used_within(self.kick_cursor, self.kick_left)
            else {
                self.kick_left = 0;
                break;
            };
            let visited = (idx.wrapping_sub(self.kick_cursor) as usize) + 1;
            self.kick_left = self.kick_left.saturating_sub(visited);
            self.kick_cursor = idx.wrapping_add(1);
            if self.kick_cursor as usize >= self.flows.capacity() {
                self.kick_cursor = 0;
            }
            let mut ctx = ctx!(self, pool, out, now);
            let f = self.flows.get_mut(idx);
            if f.needs_kick {
                f.needs_kick = false;
                ctx.kick(f);
            }
        }
    }
}

impl<'a, B: PacketBuf, P: BufferPool<B>> Ctx<'a, B, P> {
    /// The staleness rule of [`crate::sync`]: a segment that shows its sender ahead of
    /// the installed record brings the record's positions up to it
    /// ([`crate::sync::catch_up_to`]); the segment then goes through the usual rules.
    /// A segment of a flow in a replay (whose new leg's delta the record may not have)
    /// ends the flow with RSTs instead (the client's stream is a prefix, then the RST:
    /// never mixed). True when the flow is to be removed.
    fn stale_record(&mut self, f: &mut Flow, side: Side, buf: &B, m: &Meta) -> bool {
        let leg = match side {
            Side::Outside => None,
            Side::Inside => match f.leg_of(m.src) {
                Some(i) => Some(i),
                None => return false,
            },
        };
        if !crate::sync::ahead_of_record(f, leg, m) {
            return false;
        }
        if f.replay.is_none() {
            crate::sync::catch_up_to(f, leg, m);
            self.c.sync_catch_ups += 1;
            self.kick_caught_up(f, leg, buf, m);
            return false;
        }
        self.c.sync_stale_resets += 1;
        self.reset_all(f);
        true
    }

    /// The takeover's kick again after a catch-up, now at the positions the segment
    /// showed (the first kick's ACKs were at the stale record's: older than what the
    /// endpoints had acked, they restart nothing). The client caught up: three duplicate
    /// ACKs to each live replica at the client's ack (never past what the replica is
    /// known to have sent), so that the active one resends at once what the dead
    /// appliance never passed on; their sequence is the client's next, so that the
    /// replica accepts them. A replica caught up: its ack and window are taken now, and
    /// the client gets three duplicate ACKs at the synchronised ack, so that it resends
    /// what the replicas lack.
    fn kick_caught_up(&mut self, f: &mut Flow, leg: Option<usize>, buf: &B, m: &Meta) {
        if f.phase != FlowPhase::Established || !m.flags.contains(TcpFlags::ACK) {
            return;
        }
        match leg {
            None => {
                f.client_snd_nxt = f.client_snd_nxt.later(m.seq.wrapping_add(m.seq_len()));
                for i in 0..usize::from(f.n_legs) {
                    let l = f.legs[i];
                    if !(l.alive && l.answered) {
                        continue;
                    }
                    let ack = m.ack.wrapping_add(l.delta).earlier(l.snd_nxt);
                    for _ in 0..3 {
                        if self.synth_to_leg(f, i, TcpFlags::ACK, ack) {
                            self.c.acks_to_replica += 1;
                        }
                    }
                }
            }
            Some(i) => {
                let window = u32::from(m.tcp(buf.bytes()).window());
                let l = &mut f.legs[i];
                if m.ack >= l.ack {
                    l.ack = m.ack;
                    l.wnd_edge = m.ack.wrapping_add(window << l.wscale);
                }
                // Not while another replica's record still holds the window down: a
                // zero or shrunk window would stop the client.
                let Some((ack, edge)) = sync_ack(f) else {
                    return;
                };
                if ack < f.ack_sent || edge < f.edge_sent || edge.bytes_after(ack) == 0 {
                    return;
                }
                let seq = f.to_client_nxt;
                for _ in 0..3 {
                    if self.synth_to_client(f, TcpFlags::ACK, seq) {
                        self.c.acks_to_client += 1;
                    }
                }
            }
        }
    }

    /// A takeover's kick of flow `f` (see [`Engine::takeover`]).
    fn kick(&mut self, f: &mut Flow) {
        if f.phase != FlowPhase::Established && f.phase != FlowPhase::Closed {
            return;
        }
        let seq = f.to_client_nxt;
        for _ in 0..3 {
            if self.synth_to_client(f, TcpFlags::ACK, seq) {
                self.c.acks_to_client += 1;
            }
        }
        for i in 0..f.n_legs as usize {
            let leg = f.legs[i];
            if !(leg.alive && leg.answered) {
                continue;
            }
            for _ in 0..3 {
                if self.synth_to_leg(f, i, TcpFlags::ACK, leg.acked_to) {
                    self.c.acks_to_replica += 1;
                }
            }
        }
    }
}
