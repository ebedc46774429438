//! Per-flow state of mirror mode (DESIGN §3): the client's side of the connection, and for
//! each replica leg its ISN, deltas, window scale, acks, sent sequence, hold queue and
//! liveness.
//!
//! Sequence spaces: the client's sequence numbers are the same for every replica (all saw
//! the same SYN), so replica acks need no translation. Each replica numbers its own bytes
//! from its own ISN; the client sees them in the *visible* space, the one of the SYN-ACK
//! Tandem forwarded: `visible = replica_seq - delta`.

use crate::hold::HoldList;
use crate::replay::ClientLog;
use crate::replica::ReplicaId;
use crate::seq::Seq;
use crate::verify::Check;
use tandem_wire::MacAddr;

/// Most replicas one flow is mirrored to.
pub const MAX_COPIES: usize = 3;

/// A flow's identity: (client ip, client port, VIP, VIP port).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct FlowKey {
    /// Client address.
    pub client_ip: u32,
    /// Client port.
    pub client_port: u16,
    /// Virtual address.
    pub vip: u32,
    /// Virtual port (replicas are reached on the same port).
    pub vip_port: u16,
}

/// Where a flow is in its life.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum FlowPhase {
    /// Unused slot.
    #[default]
    Free,
    /// Client SYN sent to the replicas; waiting for their SYN-ACKs.
    SynSent,
    /// The SYN-ACK was forwarded to the client; waiting for the client's ACK of it. Still
    /// half-open (DESIGN §3.11): it expires on the SYN timeout, replicas' retransmitted
    /// SYN-ACKs or not, and a new SYN may evict it when the table is full.
    SynAckSent,
    /// The client acknowledged the SYN-ACK.
    Established,
    /// Both directions closed (or reset); removed after the linger time.
    Closed,
}

/// One replica's copy of the connection.
#[derive(Clone, Copy, Debug, Default)]
pub struct Leg {
    /// Replica slot.
    pub replica: ReplicaId,
    /// Replica epoch when the flow was created (see [`crate::replica`]).
    pub epoch: u32,
    /// Replica address (cached from the table).
    pub addr: u32,
    /// Still part of the flow.
    pub alive: bool,
    /// Its SYN-ACK was seen.
    pub answered: bool,
    /// Order in which it answered (1 = first).
    pub answer_rank: u8,
    /// Its ISN.
    pub isn: Seq,
    /// `isn - visible isn` (wrapping): replica seq = visible seq + delta.
    pub delta: u32,
    /// `replica TSval - visible TSval` (wrapping).
    pub ts_offset: u32,
    /// Shift of the window fields it sends (RFC 7323 §2).
    pub wscale: u8,
    /// Shift it applies to the window fields it receives.
    pub peer_wscale: u8,
    /// MSS it announced.
    pub mss: u16,
    /// It agreed to SACK.
    pub sack_ok: bool,
    /// It agreed to timestamps.
    pub ts_ok: bool,
    /// Highest ack it sent (client space); valid once `answered`.
    pub ack: Seq,
    /// Right edge of its receive window (client space).
    pub wnd_edge: Seq,
    /// Highest sequence it sent, plus length (its own space).
    pub snd_nxt: Seq,
    /// Its latest TSval.
    pub last_tsval: u32,
    /// It sent a FIN at this sequence (its own space).
    pub fin: Option<Seq>,
    /// When its unmatched FIN was first seen.
    pub fin_since: u64,
    /// Highest ack passed or sent to it (its own space).
    pub acked_to: Seq,
    /// Its held output.
    pub hold: HoldList,
    /// Held data was released over budget: a failover must make it retransmit.
    pub hold_gap: bool,
    /// Since when its acks lag (0: not lagging).
    pub ack_lag_since: u64,
    /// Since when its output lags without moving (0: not lagging).
    pub out_lag_since: u64,
    /// Its visible `snd_nxt` at `out_lag_since`: any progress restarts the clock.
    pub out_lag_at: Seq,
    /// Kinds of signal already raised for this leg (bit `1 << SignalKind`): one of each.
    pub signalled: u8,
}

impl Leg {
    /// Visible sequence of its next byte.
    #[inline]
    pub fn visible_snd_nxt(&self) -> Seq {
        self.snd_nxt.wrapping_sub(self.delta)
    }
}

/// A mirrored flow.
#[derive(Clone, Debug, Default)]
pub struct Flow {
    /// Identity.
    pub key: FlowKey,
    /// Life phase.
    pub phase: FlowPhase,
    /// Made from a SYN cookie (§3.11): the client completed its handshake with Tandem,
    /// which then opened the replicas' connections itself; until they answer the flow
    /// is `SynSent` towards them while the client is established.
    pub proxied: bool,
    /// A forward-mode flow: one leg, NAT only (see [`crate::engine`]).
    pub forward: bool,
    /// Index of its service in the engine's configuration.
    pub service: u16,
    /// Index of its timers in the engine's timer sets (those in force when it was
    /// created).
    pub timeouts: u8,
    /// MAC to send to the client with (the source MAC of its SYN: the client or its router).
    pub client_mac: MacAddr,
    /// Number of legs in `legs`.
    pub n_legs: u8,
    /// The replica table's down generation when the legs were last checked.
    pub checked_downs: u32,
    /// Index into `legs` of the active replica.
    pub active: u8,
    /// The legs; `legs[..n_legs]` are meaningful.
    pub legs: [Leg; MAX_COPIES],
    /// Client's ISN.
    pub client_isn: Seq,
    /// Window scale the client offered (None: no option).
    pub client_wscale: Option<u8>,
    /// Client offered SACK.
    pub client_sack_ok: bool,
    /// Client offered timestamps.
    pub client_ts_ok: bool,
    /// Client's MSS.
    pub client_mss: u16,
    /// Shift of the window fields the client sends (0 unless scaling was negotiated).
    pub client_shift: u8,
    /// Shift of the window fields the client receives (the active replica's at handshake).
    pub visible_wscale: u8,
    /// Timestamps negotiated with the client.
    pub ts_on: bool,
    /// SACK negotiated with the client.
    pub sack_on: bool,
    /// MSS announced to the client (the minimum of the replicas').
    pub visible_mss: u16,
    /// ISN the client saw.
    pub visible_isn: Seq,
    /// When the first SYN-ACK arrived (0: none yet).
    pub first_synack_at: u64,
    /// The end of the SYN-ACK wait is queued.
    pub handshake_queued: bool,
    /// Times the SYN was repeated to replicas that had not answered.
    pub syn_retries: u8,
    /// Counted in `Counters::flows_unprotected`: the flow has fewer live replicas than its
    /// service asks for.
    pub unprotected: bool,
    /// Client's highest ack (visible space); valid once `client_acked`.
    pub client_ack: Seq,
    /// The client has acked something.
    pub client_acked: bool,
    /// Client's latest window field (unscaled, as sent).
    pub client_window: u16,
    /// Largest window the client has offered, in bytes: the bound of how far back its
    /// acks and how far ahead a replica's sequence numbers may plausibly be (RFC 5961 §5).
    pub client_max_wnd: u32,
    /// When a challenge ACK was last sent for this flow, to either side (0: never): at
    /// most one per [`crate::engine::CHALLENGE_GAP_NS`], so a flood of in-window RSTs is
    /// not reflected at the client or a replica one for one.
    pub last_challenge_at: u64,
    /// Client's latest TSval (TS.Recent): from segments in its window only (RFC 7323
    /// §4.3), checked by PAWS and echoed to the client.
    pub client_tsval: u32,
    /// The TSval of Tandem's own segments to the replicas: the highest the client sent
    /// them in any segment Tandem accepted and passed on, also one wholly below the
    /// window (a retransmission), which a replica may take as its TS.Recent (Linux does
    /// when it ends at its last ack). Older, Tandem's acks would fail their PAWS check.
    pub tsval_to_legs: u32,
    /// Highest client sequence seen, plus length.
    pub client_snd_nxt: Seq,
    /// The client sent a FIN at this sequence.
    pub client_fin: Option<Seq>,
    /// Highest visible sequence forwarded to the client, plus length.
    pub to_client_nxt: Seq,
    /// The client's duplicate acks in a row (pure, at [`Flow::client_ack`], below
    /// [`Flow::to_client_nxt`]), modulo 3: each third resends the held copy there
    /// (DESIGN §3.12).
    pub client_dup_acks: u8,
    /// When held copies last went to the client (0: never), for their resend timer.
    pub held_sent_at: u64,
    /// Last ack sent to the client.
    pub ack_sent: Seq,
    /// Last right window edge sent to the client.
    pub edge_sent: Seq,
    /// Highest TSval the client has seen (visible clock).
    pub max_tsval_sent: u32,
    /// A FIN was forwarded to the client, at this visible sequence.
    pub fin_sent: Option<Seq>,
    /// Creation time.
    pub created_at: u64,
    /// Last packet time.
    pub last_seen: u64,
    /// When the flow closed (phase `Closed`).
    pub closed_at: u64,
    /// Payload bytes forwarded to the client.
    pub bytes_to_client: u64,
    /// Payload bytes from the client.
    pub bytes_from_client: u64,
    /// Each leg's output checked against the active's (DESIGN §3.12; `checks[..n_legs]`,
    /// started with the handshake, unused when the service does not verify).
    pub checks: [Check; MAX_COPIES],
    /// After a failover to a leg that was behind: the dead active's leg, the end of what
    /// the client has, and when it started. Until the new active is checked equal up to
    /// there, nothing it sends reaches the client (see [`crate::verify::take_over`]); past
    /// [`crate::engine::CATCH_UP_NS`] the flow ends with a RST.
    pub catch_up: Option<(u8, Seq, u64)>,
    /// Reconnect mode: the client's bytes since its SYN ([`crate::replay`]).
    pub log: ClientLog,
    /// Reconnect mode: the replay in progress, after the flow's replica died. Mirror
    /// mode: a new standby being given the log ([`Replaying::reprotect`]).
    pub replay: Option<Replaying>,
    /// Mirror mode: the replica table's up generation, plus one, when a new standby last
    /// failed (0: never): the flow tries again only once a replica has come up since.
    pub reprotect_failed_at: u32,
    /// Reconnect mode, `replay: http1`: its slot in the worker's exchanges
    /// ([`crate::exchange`]), taken at its first byte.
    pub exchange: Option<u32>,
    /// Installed from a sync record ([`crate::sync`]): the endpoints the record was made
    /// for (bit 0 the client, bit `1 + i` leg `i`, each live at the install). A segment
    /// of one of them that shows it ahead of what the flow holds brings the flow's
    /// positions up to it (`crate::sync`, "Staleness").
    pub synced: u8,
    /// Installed from a sync record and not yet sent the duplicate ACKs that restart
    /// both ends at a takeover ([`crate::Engine::takeover`]).
    pub needs_kick: bool,
    /// Flow-state export ([`crate::Engine::drain_sync`]): what the last record queued
    /// showed of the events that make one (`sync_marks`; 0: none queued yet), and when.
    pub sync_mark: u16,
    /// When the flow's last record was queued.
    pub sync_at: u64,
}

/// A replay in progress (DESIGN §2, reconnect mode): Tandem opened a connection to a live
/// replica with the client's ISN and options, and sends it the client's logged bytes;
/// its answer is checked against what the client has (the dead leg's digest) before any
/// of it goes on (`Flow::catch_up`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Replaying {
    /// The new leg.
    pub leg: u8,
    /// The next client byte to send it from the log.
    pub next: Seq,
    /// The end of what was sent it so far (`next` goes back to resend; its acks may
    /// reach up to here).
    pub high: Seq,
    /// The most of the log it acked so far.
    pub acked: Seq,
    /// Its acks since `acked` last moved, while some of the log was unacked (before it
    /// answered, for a new standby: the RSTs its SYN got).
    pub dup_acks: u8,
    /// When the replay began (its SYN went out).
    pub since: u64,
    /// When the new leg last acked more of the log (or answered the SYN): the log goes
    /// again from its ack when this is long past.
    pub progress_at: u64,
    /// When the new leg last sent anything: a replay ends when it is silent too long.
    pub heard_at: u64,
    /// The engine has it in its list of replays to time.
    pub queued: bool,
    /// `replay: http1`: its answer is being checked up to the splice point
    /// ([`crate::exchange::Answer`]); what it sends meanwhile goes to Tandem, not the client.
    pub answering: bool,
    /// Mirror mode: the new leg is a new standby for a flow that lost one (DESIGN §5,
    /// reintegration), not a replacement for the active. Its output is checked like any
    /// standby's, behind the active; a failure takes only the new leg out.
    pub reprotect: bool,
}

impl Flow {
    /// A new flow in `SynSent`.
    pub fn new(key: FlowKey) -> Flow {
        Flow {
            key,
            phase: FlowPhase::SynSent,
            ..Flow::default()
        }
    }

    /// The legs in use.
    #[inline]
    pub fn legs(&self) -> &[Leg] {
        &self.legs[..self.n_legs as usize]
    }

    /// The active leg.
    #[inline]
    pub fn active_leg(&self) -> &Leg {
        &self.legs[self.active as usize]
    }

    /// Index of the leg for replica address `addr`.
    #[inline]
    pub fn leg_of(&self, addr: u32) -> Option<usize> {
        self.legs().iter().position(|l| l.addr == addr)
    }

    /// Whether the handshake has not completed: the client has not acked a SYN-ACK.
    #[inline]
    pub fn is_half_open(&self) -> bool {
        matches!(self.phase, FlowPhase::SynSent | FlowPhase::SynAckSent)
    }

    /// Live legs.
    #[inline]
    pub fn live_legs(&self) -> usize {
        self.legs().iter().filter(|l| l.alive).count()
    }

    /// Mirror mode: the new standby still being given the flow's log (DESIGN §5,
    /// reintegration). Until it has all of it, it is behind by design: its acks, window,
    /// FIN and lags say nothing about the flow.
    #[inline]
    pub fn joining(&self) -> Option<usize> {
        self.replay
            .filter(|r| r.reprotect && r.leg != self.active)
            .map(|r| usize::from(r.leg))
    }
}

/// A flow as `tandem flows` lists it: a copy of what an operator wants to see, small and
/// `Copy`, so that a worker can fill a preallocated list between its bursts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowRecord {
    /// Identity.
    pub key: FlowKey,
    /// Life phase.
    pub phase: FlowPhase,
    /// Replica of each leg, and whether the leg is still part of the flow.
    pub legs: [(ReplicaId, bool); MAX_COPIES],
    /// Each leg's replica address: a slot reused by another replica later has another.
    pub addrs: [u32; MAX_COPIES],
    /// Number of legs in `legs`.
    pub n_legs: u8,
    /// The active replica.
    pub active: ReplicaId,
    /// Fewer live legs than the service asks for.
    pub unprotected: bool,
    /// Payload bytes from the client.
    pub bytes_from_client: u64,
    /// Payload bytes forwarded to the client.
    pub bytes_to_client: u64,
    /// Standby output held for it (all legs).
    pub held_bytes: u64,
    /// Nanoseconds since it was created.
    pub age_ns: u64,
    /// Nanoseconds since its last packet.
    pub idle_ns: u64,
}

impl FlowRecord {
    /// The record of `f` at `now`.
    pub fn of(f: &Flow, now: u64) -> FlowRecord {
        let mut legs = [(ReplicaId::default(), false); MAX_COPIES];
        let mut addrs = [0; MAX_COPIES];
        for ((slot, addr), l) in legs.iter_mut().zip(&mut addrs).zip(f.legs()) {
            *slot = (l.replica, l.alive);
            *addr = l.addr;
        }
        FlowRecord {
            key: f.key,
            phase: f.phase,
            legs,
            addrs,
            n_legs: f.n_legs,
            active: f.active_leg().replica,
            unprotected: f.unprotected,
            bytes_from_client: f.bytes_from_client,
            bytes_to_client: f.bytes_to_client,
            held_bytes: f.legs().iter().map(|l| u64::from(l.hold.bytes)).sum(),
            age_ns: now.saturating_sub(f.created_at),
            idle_ns: now.saturating_sub(f.last_seen),
        }
    }

    /// The legs in use.
    pub fn legs(&self) -> &[(ReplicaId, bool)] {
        &self.legs[..usize::from(self.n_legs).min(MAX_COPIES)]
    }

    /// Whether a leg is on `replica` at `addr` (its slot's address now), not on a replica
    /// that had the slot before.
    pub fn has_leg_on(&self, replica: ReplicaId, addr: u32) -> bool {
        self.legs()
            .iter()
            .zip(&self.addrs)
            .any(|((r, _), a)| *r == replica && *a == addr)
    }
}
