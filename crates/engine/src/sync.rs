//! Flow-state sync between the two appliances of a pair (DESIGN §6b, issue #17 item 2):
//! the record of one flow that the standby appliance needs to carry it on, its binary
//! encoding, and the batch framing of the HA link. Pure: no I/O, no clock, no allocation.
//!
//! ## What is synced
//!
//! Per flow: its key (client address and port, VIP and port), phase, the client's MAC,
//! the client's ISN, options (MSS, window scale, SACK, timestamps) and what was agreed
//! with it, the visible ISN, MSS and window scale; the client's acks, window, TSval and
//! next sequence; what was sent to it (next sequence, ack, window edge, highest TSval,
//! FIN); and per leg its replica *by address*, liveness, ISN, delta, timestamp offset,
//! window scales, MSS, options, acks and window edge, next sequence, latest TSval, FIN,
//! what was acked to it, and how far its output was verified (§3.12). Which leg is active
//! is its index among the record's legs. Internal ids (replica slots, flow slots, service
//! indexes) and epochs stay local to each appliance: the receiver resolves replicas by
//! address against its own [`crate::ReplicaTable`] and the service by VIP and port.
//!
//! ## What is not synced, and how the new active recovers it
//!
//! - **Held standby output** (§3.6). A standby replica is never acked past the client's
//!   ack (§3.7), so everything it sent that the client has not acked is still in its
//!   send queue. At takeover the new active sends each live replica duplicate ACKs at
//!   what was last acked to it: the replica resends from there at once (fast
//!   retransmit), and the new active holds that output again. The client likewise gets
//!   duplicate ACKs at the synchronised ack, so that it resends what it sent the dead
//!   appliance.
//! - **Verification state** (§3.12): only each leg's verified offset. An installed leg is
//!   marked no longer verifiable past it: after a takeover a verifying flow's standby may
//!   still take over for what was checked before, and a replica failure beyond that ends
//!   the flow with a RST, never a guess.
//! - **Reconnect mode's client log and exchange** ([`crate::replay`]): an installed
//!   reconnect flow cannot be replayed; it runs unprotected.
//! - **Timers' bookkeeping** (lag clocks, challenge-ACK times, signal marks): restarted.
//!
//! ## Staleness
//!
//! A record is a snapshot: the sync may be cut between any two records, so the record
//! the new active has may be older than what the endpoints saw. Sequence deltas,
//! timestamp offsets, window scales and options do not move after the handshake (a
//! switch of the active leg is an event and sends a record), so translation by an old
//! record is still right; what moves (acks, next sequences, timestamps) is only ever
//! behind. The rule at takeover:
//! - **Timestamps**: the installed flow's visible clock leaps [`TSVAL_LEAP`] ticks past
//!   the highest TSval in the record, and every leg's offset is re-based to continue from
//!   there, so the client never sees a TSval go backwards (PAWS) however stale the record.
//! - **Positions**: a segment of an installed flow that shows its sender *ahead* of the
//!   record (the client
//!   acking bytes the record never sent it, or sending past the window the record gave
//!   it; a replica acking client bytes the record never saw, or sending past the window
//!   it was given) brings the record's positions up to what it shows
//!   ([`catch_up_to`], counted `sync_catch_ups`): the dead appliance passed those bytes
//!   on by the same deltas, so they are where the record's translation puts them, and
//!   the flow carries on. A record is refreshed only every second or so, and at a kill
//!   every flow that moved data since is ahead: ending them all (the first rule) lost
//!   every busy connection at a takeover (found by `appliance/e2e/ha.sh kill`). What the
//!   catch-up never does is place a byte: the client only ever gets a leg's output at
//!   its fixed delta, so its stream is never mixed (checked by the takeover simulation,
//!   `tests/sync_takeover.rs`). Only a switch of the active leg, or a leg's death, lost
//!   with the dead appliance's last batch leaves the new active with another active leg
//!   than the client's bytes came from; with deterministic replicas those bytes are the
//!   same (§3.12), and where verification cannot tell, the flow ends with a RST.
//!   A segment behind or within the record is handled by the usual rules.
//!
//! ## Layout (version [`VERSION`])
//!
//! A record is [`RECORD_LEN`] = 256 bytes, big-endian, every field at a fixed offset
//! (see `mod field`): a 100-byte flow part and three 52-byte leg slots. Unused leg slots,
//! absent optional fields and reserved bits are zero, so an encoding is canonical: a
//! decoded record encodes to the same bytes. A batch is a 16-byte header (magic `TSYN`,
//! version, kind, record count, sequence number) and its records back to back; five
//! records fit a 1500-byte datagram. A `Removed` record may have no leg (`n_legs` 0,
//! every leg slot zero): only its key matters.

use std::net::Ipv4Addr;

use tandem_wire::{MacAddr, TcpFlags};

use crate::flow::{Flow, FlowKey, FlowPhase, Leg, MAX_COPIES};
use crate::parse::Meta;
use crate::replica::ReplicaId;
use crate::seq::Seq;
use crate::verify::{self, Check};

/// The record layout's version.
pub const VERSION: u8 = 1;
/// Bytes of one record.
pub const RECORD_LEN: usize = 256;
/// Bytes of one leg slot in a record.
pub const LEG_LEN: usize = 52;
/// Bytes of a batch header.
pub const BATCH_HEADER_LEN: usize = 16;
/// A batch's first four bytes.
pub const BATCH_MAGIC: [u8; 4] = *b"TSYN";
/// How far the visible timestamp clock leaps forward at an install: more than any
/// stale record can be behind (2^24 ticks: 4.6 hours of a 1 kHz clock), less than the
/// 2^31 that PAWS compares over. It is also more than Linux takes as an RTT sample
/// (`INT_MAX / 1000` ticks), so a replica that gets an echo of the old clock after the
/// takeover discards that sample instead of inflating its timer.
pub const TSVAL_LEAP: u32 = 1 << 24;
/// The largest window scale (RFC 7323 §2.3).
const MAX_WSCALE: u8 = 14;

/// Why a record (or batch) was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SyncEvent {
    /// A periodic refresh of the fields that move.
    #[default]
    Refresh = 0,
    /// The handshake completed.
    Handshake = 1,
    /// The active leg changed.
    Switch = 2,
    /// A leg died.
    LegDeath = 3,
    /// A FIN was seen or forwarded.
    Fin = 4,
    /// The flow was removed: the receiver removes it too.
    Removed = 5,
}

impl SyncEvent {
    fn from_u8(v: u8) -> Option<SyncEvent> {
        Some(match v {
            0 => SyncEvent::Refresh,
            1 => SyncEvent::Handshake,
            2 => SyncEvent::Switch,
            3 => SyncEvent::LegDeath,
            4 => SyncEvent::Fin,
            5 => SyncEvent::Removed,
            _ => return None,
        })
    }
}

/// One leg of a synced flow: a replica named by its address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncLeg {
    /// The replica's address.
    pub addr: Ipv4Addr,
    /// Still part of the flow.
    pub alive: bool,
    /// Its SYN-ACK was seen.
    pub answered: bool,
    /// Order in which it answered (1 = first; 0: not yet).
    pub answer_rank: u8,
    /// Its ISN.
    pub isn: Seq,
    /// `isn - visible isn` (wrapping).
    pub delta: u32,
    /// `replica TSval - visible TSval` (wrapping).
    pub ts_offset: u32,
    /// Shift of the window fields it sends.
    pub wscale: u8,
    /// Shift it applies to the window fields it receives.
    pub peer_wscale: u8,
    /// MSS it announced.
    pub mss: u16,
    /// It agreed to SACK.
    pub sack_ok: bool,
    /// It agreed to timestamps.
    pub ts_ok: bool,
    /// Highest ack it sent (client space).
    pub ack: Seq,
    /// Right edge of its receive window (client space).
    pub wnd_edge: Seq,
    /// Highest sequence it sent, plus length (its own space).
    pub snd_nxt: Seq,
    /// Its latest TSval.
    pub last_tsval: u32,
    /// It sent a FIN at this sequence (its own space).
    pub fin: Option<Seq>,
    /// Highest ack passed or sent to it (its own space).
    pub acked_to: Seq,
    /// Its output was checked equal to the active's up to here (visible space; §3.12).
    pub verified: Seq,
}

impl Default for SyncLeg {
    fn default() -> SyncLeg {
        SyncLeg {
            addr: Ipv4Addr::UNSPECIFIED,
            alive: false,
            answered: false,
            answer_rank: 0,
            isn: Seq(0),
            delta: 0,
            ts_offset: 0,
            wscale: 0,
            peer_wscale: 0,
            mss: 0,
            sack_ok: false,
            ts_ok: false,
            ack: Seq(0),
            wnd_edge: Seq(0),
            snd_nxt: Seq(0),
            last_tsval: 0,
            fin: None,
            acked_to: Seq(0),
            verified: Seq(0),
        }
    }
}

/// What a standby appliance needs to carry a flow on (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncRecord {
    /// Why it was made.
    pub event: SyncEvent,
    /// Identity.
    pub key: FlowKey,
    /// Life phase: `SynAckSent`, `Established` or `Closed`.
    pub phase: FlowPhase,
    /// Made from a SYN cookie.
    pub proxied: bool,
    /// A forward-mode flow.
    pub forward: bool,
    /// MAC to send to the client with.
    pub client_mac: MacAddr,
    /// Legs in `legs` (1 to [`MAX_COPIES`]; 0 only in a `Removed` record).
    pub n_legs: u8,
    /// Index into `legs` of the active leg.
    pub active: u8,
    /// The legs; `legs[..n_legs]` are meaningful, the rest default.
    pub legs: [SyncLeg; MAX_COPIES],
    /// Client's ISN.
    pub client_isn: Seq,
    /// Window scale the client offered.
    pub client_wscale: Option<u8>,
    /// Client offered SACK.
    pub client_sack_ok: bool,
    /// Client offered timestamps.
    pub client_ts_ok: bool,
    /// Client's MSS.
    pub client_mss: u16,
    /// Shift of the window fields the client sends.
    pub client_shift: u8,
    /// Shift of the window fields the client receives.
    pub visible_wscale: u8,
    /// Timestamps negotiated with the client.
    pub ts_on: bool,
    /// SACK negotiated with the client.
    pub sack_on: bool,
    /// MSS announced to the client.
    pub visible_mss: u16,
    /// ISN the client saw.
    pub visible_isn: Seq,
    /// Client's highest ack (visible space), if it acked anything.
    pub client_ack: Option<Seq>,
    /// Client's latest window field (unscaled).
    pub client_window: u16,
    /// Largest window the client offered, in bytes.
    pub client_max_wnd: u32,
    /// Client's latest TSval.
    pub client_tsval: u32,
    /// Highest client sequence seen, plus length.
    pub client_snd_nxt: Seq,
    /// The client sent a FIN at this sequence.
    pub client_fin: Option<Seq>,
    /// Highest visible sequence forwarded to the client, plus length.
    pub to_client_nxt: Seq,
    /// Last ack sent to the client.
    pub ack_sent: Seq,
    /// Last right window edge sent to the client.
    pub edge_sent: Seq,
    /// Highest TSval the client has seen (visible clock).
    pub max_tsval_sent: u32,
    /// A FIN was forwarded to the client at this visible sequence.
    pub fin_sent: Option<Seq>,
    /// Payload bytes forwarded to the client.
    pub bytes_to_client: u64,
    /// Payload bytes from the client.
    pub bytes_from_client: u64,
}

impl Default for SyncRecord {
    fn default() -> SyncRecord {
        SyncRecord {
            event: SyncEvent::Refresh,
            key: FlowKey::default(),
            phase: FlowPhase::Established,
            proxied: false,
            forward: false,
            client_mac: MacAddr::ZERO,
            n_legs: 1,
            active: 0,
            legs: [SyncLeg::default(); MAX_COPIES],
            client_isn: Seq(0),
            client_wscale: None,
            client_sack_ok: false,
            client_ts_ok: false,
            client_mss: 0,
            client_shift: 0,
            visible_wscale: 0,
            ts_on: false,
            sack_on: false,
            visible_mss: 0,
            visible_isn: Seq(0),
            client_ack: None,
            client_window: 0,
            client_max_wnd: 0,
            client_tsval: 0,
            client_snd_nxt: Seq(0),
            client_fin: None,
            to_client_nxt: Seq(0),
            ack_sent: Seq(0),
            edge_sent: Seq(0),
            max_tsval_sent: 0,
            fin_sent: None,
            bytes_to_client: 0,
            bytes_from_client: 0,
        }
    }
}

/// Why bytes are not a record or a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    /// Fewer bytes than the layout needs.
    #[error("sync data too short: {len} bytes, {need} needed")]
    Short {
        /// Bytes there were.
        len: usize,
        /// Bytes needed.
        need: usize,
    },
    /// A layout version this build does not read.
    #[error("sync version {0} (this build reads version {VERSION})")]
    Version(u8),
    /// A leg count outside 1 to [`MAX_COPIES`].
    #[error("sync record with {0} legs (1 to {MAX_COPIES} allowed)")]
    LegCount(u8),
    /// A field with a value it may not have.
    #[error("sync record field `{field}` out of range: {value}")]
    Field {
        /// The field's name.
        field: &'static str,
        /// Its value.
        value: u64,
    },
    /// A batch that does not start with [`BATCH_MAGIC`].
    #[error("not a sync batch (bad magic)")]
    Magic,
    /// A batch kind this build does not know.
    #[error("unknown sync batch kind {0}")]
    BatchKind(u8),
    /// A batch whose length is not its header plus its records.
    #[error("sync batch of {count} records is {len} bytes long, {need} expected")]
    BatchLength {
        /// Records the header announces.
        count: u16,
        /// Bytes there were.
        len: usize,
        /// Bytes the header announces.
        need: usize,
    },
    /// No room for one more record in the caller's buffer.
    #[error("no room for another record in the batch buffer")]
    Full,
}

/// Offsets of the record's fields.
mod field {
    pub const VERSION: usize = 0;
    pub const EVENT: usize = 1;
    pub const FLAGS: usize = 2;
    pub const PHASE: usize = 3;
    pub const N_LEGS: usize = 4;
    pub const ACTIVE: usize = 5;
    pub const CLIENT_WSCALE: usize = 6;
    pub const CLIENT_SHIFT: usize = 7;
    pub const VISIBLE_WSCALE: usize = 8;
    pub const FLAGS2: usize = 9;
    pub const CLIENT_MSS: usize = 10;
    pub const VISIBLE_MSS: usize = 12;
    pub const CLIENT_WINDOW: usize = 14;
    pub const CLIENT_IP: usize = 16;
    pub const VIP: usize = 20;
    pub const CLIENT_PORT: usize = 24;
    pub const VIP_PORT: usize = 26;
    pub const CLIENT_MAC: usize = 28;
    pub const RESERVED: usize = 34;
    pub const CLIENT_ISN: usize = 36;
    pub const VISIBLE_ISN: usize = 40;
    pub const CLIENT_ACK: usize = 44;
    pub const CLIENT_MAX_WND: usize = 48;
    pub const CLIENT_TSVAL: usize = 52;
    pub const CLIENT_SND_NXT: usize = 56;
    pub const CLIENT_FIN: usize = 60;
    pub const TO_CLIENT_NXT: usize = 64;
    pub const ACK_SENT: usize = 68;
    pub const EDGE_SENT: usize = 72;
    pub const MAX_TSVAL_SENT: usize = 76;
    pub const FIN_SENT: usize = 80;
    pub const BYTES_TO_CLIENT: usize = 84;
    pub const BYTES_FROM_CLIENT: usize = 92;
    pub const LEGS: usize = 100;

    /// Offsets inside a leg slot.
    pub mod leg {
        pub const ADDR: usize = 0;
        pub const FLAGS: usize = 4;
        pub const WSCALE: usize = 5;
        pub const PEER_WSCALE: usize = 6;
        pub const ANSWER_RANK: usize = 7;
        pub const MSS: usize = 8;
        pub const RESERVED: usize = 10;
        pub const ISN: usize = 12;
        pub const DELTA: usize = 16;
        pub const TS_OFFSET: usize = 20;
        pub const ACK: usize = 24;
        pub const WND_EDGE: usize = 28;
        pub const SND_NXT: usize = 32;
        pub const LAST_TSVAL: usize = 36;
        pub const FIN: usize = 40;
        pub const ACKED_TO: usize = 44;
        pub const VERIFIED: usize = 48;
    }

    /// Offsets in a batch header.
    pub mod batch {
        pub const MAGIC: usize = 0;
        pub const VERSION: usize = 4;
        pub const KIND: usize = 5;
        pub const COUNT: usize = 6;
        pub const SEQ: usize = 8;
    }
}

// Flag bits of `field::FLAGS`.
const F_PROXIED: u8 = 1 << 0;
const F_FORWARD: u8 = 1 << 1;
const F_TS_ON: u8 = 1 << 2;
const F_SACK_ON: u8 = 1 << 3;
const F_CLIENT_SACK_OK: u8 = 1 << 4;
const F_CLIENT_TS_OK: u8 = 1 << 5;
const F_CLIENT_WSCALE: u8 = 1 << 6;
const F_CLIENT_ACKED: u8 = 1 << 7;
// Flag bits of `field::FLAGS2`.
const F2_CLIENT_FIN: u8 = 1 << 0;
const F2_FIN_SENT: u8 = 1 << 1;
const F2_KNOWN: u8 = F2_CLIENT_FIN | F2_FIN_SENT;
// Flag bits of a leg's `field::leg::FLAGS`.
const L_ALIVE: u8 = 1 << 0;
const L_ANSWERED: u8 = 1 << 1;
const L_SACK_OK: u8 = 1 << 2;
const L_TS_OK: u8 = 1 << 3;
const L_FIN: u8 = 1 << 4;
const L_KNOWN: u8 = L_ALIVE | L_ANSWERED | L_SACK_OK | L_TS_OK | L_FIN;

/// A fixed-size view for writing: every offset is a constant inside the checked length.
struct Writer<'a>(&'a mut [u8]);

impl Writer<'_> {
    fn u8(&mut self, at: usize, v: u8) {
        self.0[at] = v;
    }
    fn u16(&mut self, at: usize, v: u16) {
        self.0[at..at + 2].copy_from_slice(&v.to_be_bytes());
    }
    fn u32(&mut self, at: usize, v: u32) {
        self.0[at..at + 4].copy_from_slice(&v.to_be_bytes());
    }
    fn u64(&mut self, at: usize, v: u64) {
        self.0[at..at + 8].copy_from_slice(&v.to_be_bytes());
    }
}

/// A fixed-size view for reading (`&[u8; N]`: no offset below can be out of bounds).
struct Reader<'a, const N: usize>(&'a [u8; N]);

impl<const N: usize> Reader<'_, N> {
    fn u8(&self, at: usize) -> u8 {
        self.0[at]
    }
    fn u16(&self, at: usize) -> u16 {
        u16::from_be_bytes([self.0[at], self.0[at + 1]])
    }
    fn u32(&self, at: usize) -> u32 {
        u32::from_be_bytes([self.0[at], self.0[at + 1], self.0[at + 2], self.0[at + 3]])
    }
    fn u64(&self, at: usize) -> u64 {
        (u64::from(self.u32(at)) << 32) | u64::from(self.u32(at + 4))
    }
}

fn out_of_range(field: &'static str, value: impl Into<u64>) -> SyncError {
    SyncError::Field {
        field,
        value: value.into(),
    }
}

fn wscale(field: &'static str, v: u8) -> Result<u8, SyncError> {
    if v > MAX_WSCALE {
        return Err(out_of_range(field, v));
    }
    Ok(v)
}

/// `Some(v)` when `present`; an absent value must be zero on the wire.
fn optional(field: &'static str, present: bool, v: u32) -> Result<Option<Seq>, SyncError> {
    match (present, v) {
        (true, v) => Ok(Some(Seq(v))),
        (false, 0) => Ok(None),
        (false, v) => Err(out_of_range(field, v)),
    }
}

fn phase_code(p: FlowPhase) -> u8 {
    match p {
        FlowPhase::Free => 0,
        FlowPhase::SynSent => 1,
        FlowPhase::SynAckSent => 2,
        FlowPhase::Established => 3,
        FlowPhase::Closed => 4,
    }
}

impl SyncRecord {
    /// Writes the record into the first [`RECORD_LEN`] bytes of `out`; returns
    /// [`RECORD_LEN`]. Fails only when `out` is shorter. Nothing is allocated.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, SyncError> {
        let Some(buf) = out.get_mut(..RECORD_LEN) else {
            return Err(SyncError::Short {
                len: out.len(),
                need: RECORD_LEN,
            });
        };
        buf.fill(0);
        let mut w = Writer(buf);
        let bit = |on: bool, b: u8| if on { b } else { 0 };
        w.u8(field::VERSION, VERSION);
        w.u8(field::EVENT, self.event as u8);
        w.u8(
            field::FLAGS,
            bit(self.proxied, F_PROXIED)
                | bit(self.forward, F_FORWARD)
                | bit(self.ts_on, F_TS_ON)
                | bit(self.sack_on, F_SACK_ON)
                | bit(self.client_sack_ok, F_CLIENT_SACK_OK)
                | bit(self.client_ts_ok, F_CLIENT_TS_OK)
                | bit(self.client_wscale.is_some(), F_CLIENT_WSCALE)
                | bit(self.client_ack.is_some(), F_CLIENT_ACKED),
        );
        w.u8(field::PHASE, phase_code(self.phase));
        w.u8(field::N_LEGS, self.n_legs);
        w.u8(field::ACTIVE, self.active);
        w.u8(field::CLIENT_WSCALE, self.client_wscale.unwrap_or(0));
        w.u8(field::CLIENT_SHIFT, self.client_shift);
        w.u8(field::VISIBLE_WSCALE, self.visible_wscale);
        w.u8(
            field::FLAGS2,
            bit(self.client_fin.is_some(), F2_CLIENT_FIN)
                | bit(self.fin_sent.is_some(), F2_FIN_SENT),
        );
        w.u16(field::CLIENT_MSS, self.client_mss);
        w.u16(field::VISIBLE_MSS, self.visible_mss);
        w.u16(field::CLIENT_WINDOW, self.client_window);
        w.u32(field::CLIENT_IP, self.key.client_ip);
        w.u32(field::VIP, self.key.vip);
        w.u16(field::CLIENT_PORT, self.key.client_port);
        w.u16(field::VIP_PORT, self.key.vip_port);
        w.0[field::CLIENT_MAC..field::CLIENT_MAC + 6].copy_from_slice(&self.client_mac.0);
        w.u32(field::CLIENT_ISN, self.client_isn.0);
        w.u32(field::VISIBLE_ISN, self.visible_isn.0);
        w.u32(field::CLIENT_ACK, self.client_ack.map_or(0, |s| s.0));
        w.u32(field::CLIENT_MAX_WND, self.client_max_wnd);
        w.u32(field::CLIENT_TSVAL, self.client_tsval);
        w.u32(field::CLIENT_SND_NXT, self.client_snd_nxt.0);
        w.u32(field::CLIENT_FIN, self.client_fin.map_or(0, |s| s.0));
        w.u32(field::TO_CLIENT_NXT, self.to_client_nxt.0);
        w.u32(field::ACK_SENT, self.ack_sent.0);
        w.u32(field::EDGE_SENT, self.edge_sent.0);
        w.u32(field::MAX_TSVAL_SENT, self.max_tsval_sent);
        w.u32(field::FIN_SENT, self.fin_sent.map_or(0, |s| s.0));
        w.u64(field::BYTES_TO_CLIENT, self.bytes_to_client);
        w.u64(field::BYTES_FROM_CLIENT, self.bytes_from_client);
        let used = usize::from(self.n_legs).min(MAX_COPIES);
        for (i, l) in self.legs[..used].iter().enumerate() {
            let at = field::LEGS + i * LEG_LEN;
            let mut w = Writer(&mut w.0[at..at + LEG_LEN]);
            use field::leg as f;
            w.u32(f::ADDR, u32::from(l.addr));
            w.u8(
                f::FLAGS,
                bit(l.alive, L_ALIVE)
                    | bit(l.answered, L_ANSWERED)
                    | bit(l.sack_ok, L_SACK_OK)
                    | bit(l.ts_ok, L_TS_OK)
                    | bit(l.fin.is_some(), L_FIN),
            );
            w.u8(f::WSCALE, l.wscale);
            w.u8(f::PEER_WSCALE, l.peer_wscale);
            w.u8(f::ANSWER_RANK, l.answer_rank);
            w.u16(f::MSS, l.mss);
            w.u32(f::ISN, l.isn.0);
            w.u32(f::DELTA, l.delta);
            w.u32(f::TS_OFFSET, l.ts_offset);
            w.u32(f::ACK, l.ack.0);
            w.u32(f::WND_EDGE, l.wnd_edge.0);
            w.u32(f::SND_NXT, l.snd_nxt.0);
            w.u32(f::LAST_TSVAL, l.last_tsval);
            w.u32(f::FIN, l.fin.map_or(0, |s| s.0));
            w.u32(f::ACKED_TO, l.acked_to.0);
            w.u32(f::VERIFIED, l.verified.0);
        }
        Ok(RECORD_LEN)
    }

    /// Reads a record from the first [`RECORD_LEN`] bytes of `bytes`. Never panics: any
    /// defect is an error that names it (the peer's input is input too).
    pub fn decode(bytes: &[u8]) -> Result<SyncRecord, SyncError> {
        let Some(Ok(buf)) = bytes.get(..RECORD_LEN).map(<&[u8; RECORD_LEN]>::try_from) else {
            return Err(SyncError::Short {
                len: bytes.len(),
                need: RECORD_LEN,
            });
        };
        let r = Reader(buf);
        let version = r.u8(field::VERSION);
        if version != VERSION {
            return Err(SyncError::Version(version));
        }
        let event_code = r.u8(field::EVENT);
        let event = SyncEvent::from_u8(event_code).ok_or(out_of_range("event", event_code))?;
        let flags = r.u8(field::FLAGS);
        let flags2 = r.u8(field::FLAGS2);
        if flags2 & !F2_KNOWN != 0 {
            return Err(out_of_range("flags2", flags2));
        }
        let phase = match r.u8(field::PHASE) {
            2 => FlowPhase::SynAckSent,
            3 => FlowPhase::Established,
            4 => FlowPhase::Closed,
            v => return Err(out_of_range("phase", v)),
        };
        let n_legs = r.u8(field::N_LEGS);
        // A `Removed` record may name no leg (only its key means anything).
        let legless = n_legs == 0 && event == SyncEvent::Removed;
        if (n_legs == 0 && !legless) || usize::from(n_legs) > MAX_COPIES {
            return Err(SyncError::LegCount(n_legs));
        }
        let active = r.u8(field::ACTIVE);
        if active >= n_legs.max(1) {
            return Err(out_of_range("active", active));
        }
        let client_wscale = match (flags & F_CLIENT_WSCALE != 0, r.u8(field::CLIENT_WSCALE)) {
            (true, v) => Some(wscale("client_wscale", v)?),
            (false, 0) => None,
            (false, v) => return Err(out_of_range("client_wscale", v)),
        };
        let reserved = r.u16(field::RESERVED);
        if reserved != 0 {
            return Err(out_of_range("reserved", reserved));
        }
        let mut client_mac = [0u8; 6];
        client_mac.copy_from_slice(&buf[field::CLIENT_MAC..field::CLIENT_MAC + 6]);
        let mut legs = [SyncLeg::default(); MAX_COPIES];
        for (i, slot) in legs.iter_mut().enumerate() {
            let at = field::LEGS + i * LEG_LEN;
            let Ok(raw) = <&[u8; LEG_LEN]>::try_from(&buf[at..at + LEG_LEN]) else {
                return Err(out_of_range("leg", i as u64));
            };
            if i >= usize::from(n_legs) {
                if raw.iter().any(|&b| b != 0) {
                    return Err(out_of_range("unused leg", i as u64));
                }
                continue;
            }
            *slot = decode_leg(&Reader(raw))?;
        }
        for (i, l) in legs[..usize::from(n_legs)].iter().enumerate() {
            if legs[..i].iter().any(|o| o.addr == l.addr) {
                return Err(out_of_range("leg address", u32::from(l.addr)));
            }
        }
        Ok(SyncRecord {
            event,
            key: FlowKey {
                client_ip: r.u32(field::CLIENT_IP),
                client_port: r.u16(field::CLIENT_PORT),
                vip: r.u32(field::VIP),
                vip_port: r.u16(field::VIP_PORT),
            },
            phase,
            proxied: flags & F_PROXIED != 0,
            forward: flags & F_FORWARD != 0,
            client_mac: MacAddr(client_mac),
            n_legs,
            active,
            legs,
            client_isn: Seq(r.u32(field::CLIENT_ISN)),
            client_wscale,
            client_sack_ok: flags & F_CLIENT_SACK_OK != 0,
            client_ts_ok: flags & F_CLIENT_TS_OK != 0,
            client_mss: r.u16(field::CLIENT_MSS),
            client_shift: wscale("client_shift", r.u8(field::CLIENT_SHIFT))?,
            visible_wscale: wscale("visible_wscale", r.u8(field::VISIBLE_WSCALE))?,
            ts_on: flags & F_TS_ON != 0,
            sack_on: flags & F_SACK_ON != 0,
            visible_mss: r.u16(field::VISIBLE_MSS),
            visible_isn: Seq(r.u32(field::VISIBLE_ISN)),
            client_ack: optional(
                "client_ack",
                flags & F_CLIENT_ACKED != 0,
                r.u32(field::CLIENT_ACK),
            )?,
            client_window: r.u16(field::CLIENT_WINDOW),
            client_max_wnd: r.u32(field::CLIENT_MAX_WND),
            client_tsval: r.u32(field::CLIENT_TSVAL),
            client_snd_nxt: Seq(r.u32(field::CLIENT_SND_NXT)),
            client_fin: optional(
                "client_fin",
                flags2 & F2_CLIENT_FIN != 0,
                r.u32(field::CLIENT_FIN),
            )?,
            to_client_nxt: Seq(r.u32(field::TO_CLIENT_NXT)),
            ack_sent: Seq(r.u32(field::ACK_SENT)),
            edge_sent: Seq(r.u32(field::EDGE_SENT)),
            max_tsval_sent: r.u32(field::MAX_TSVAL_SENT),
            fin_sent: optional(
                "fin_sent",
                flags2 & F2_FIN_SENT != 0,
                r.u32(field::FIN_SENT),
            )?,
            bytes_to_client: r.u64(field::BYTES_TO_CLIENT),
            bytes_from_client: r.u64(field::BYTES_FROM_CLIENT),
        })
    }

    /// The legs in use.
    pub fn legs(&self) -> &[SyncLeg] {
        &self.legs[..usize::from(self.n_legs).min(MAX_COPIES)]
    }
}

fn decode_leg(r: &Reader<'_, LEG_LEN>) -> Result<SyncLeg, SyncError> {
    use field::leg as f;
    let flags = r.u8(f::FLAGS);
    if flags & !L_KNOWN != 0 {
        return Err(out_of_range("leg flags", flags));
    }
    let reserved = r.u16(f::RESERVED);
    if reserved != 0 {
        return Err(out_of_range("leg reserved", reserved));
    }
    let addr = r.u32(f::ADDR);
    if addr == 0 {
        return Err(out_of_range("leg address", addr));
    }
    let answer_rank = r.u8(f::ANSWER_RANK);
    if usize::from(answer_rank) > MAX_COPIES {
        return Err(out_of_range("leg answer_rank", answer_rank));
    }
    Ok(SyncLeg {
        addr: Ipv4Addr::from(addr),
        alive: flags & L_ALIVE != 0,
        answered: flags & L_ANSWERED != 0,
        answer_rank,
        isn: Seq(r.u32(f::ISN)),
        delta: r.u32(f::DELTA),
        ts_offset: r.u32(f::TS_OFFSET),
        wscale: wscale("leg wscale", r.u8(f::WSCALE))?,
        peer_wscale: wscale("leg peer_wscale", r.u8(f::PEER_WSCALE))?,
        mss: r.u16(f::MSS),
        sack_ok: flags & L_SACK_OK != 0,
        ts_ok: flags & L_TS_OK != 0,
        ack: Seq(r.u32(f::ACK)),
        wnd_edge: Seq(r.u32(f::WND_EDGE)),
        snd_nxt: Seq(r.u32(f::SND_NXT)),
        last_tsval: r.u32(f::LAST_TSVAL),
        fin: optional("leg fin", flags & L_FIN != 0, r.u32(f::FIN))?,
        acked_to: Seq(r.u32(f::ACKED_TO)),
        verified: Seq(r.u32(f::VERIFIED)),
    })
}

/// What a batch on the HA link carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchKind {
    /// Records.
    Records = 0,
    /// The receiver has every batch up to and including `seq` (no records).
    Ack = 1,
    /// The sender's bulk sync for a joining peer ends with batch `seq` (no records): the
    /// peer may say `ready` once it has every batch up to it.
    BulkDone = 2,
    /// A full resync starts here (no records): the receiver takes it at any sequence
    /// number past what it has, forgets any gap before it, and is not `ready` until the
    /// [`BatchKind::BulkDone`] that ends it. Sent when a peer joins, and when the sender
    /// lost records (its buffer was full).
    BulkStart = 3,
}

/// A batch read from the link: its header checked, its records decoded one by one.
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a> {
    /// What it carries.
    pub kind: BatchKind,
    /// Its sequence number (the sender's, one per batch).
    pub seq: u64,
    records: &'a [u8],
}

impl<'a> Batch<'a> {
    /// Reads a batch: its header must be whole and its length exactly that of its
    /// records. The records themselves are decoded by [`Batch::records`].
    pub fn parse(bytes: &'a [u8]) -> Result<Batch<'a>, SyncError> {
        let Some(Ok(head)) = bytes
            .get(..BATCH_HEADER_LEN)
            .map(<&[u8; BATCH_HEADER_LEN]>::try_from)
        else {
            return Err(SyncError::Short {
                len: bytes.len(),
                need: BATCH_HEADER_LEN,
            });
        };
        let r = Reader(head);
        if head[field::batch::MAGIC..field::batch::MAGIC + 4] != BATCH_MAGIC {
            return Err(SyncError::Magic);
        }
        let version = r.u8(field::batch::VERSION);
        if version != VERSION {
            return Err(SyncError::Version(version));
        }
        let kind = match r.u8(field::batch::KIND) {
            0 => BatchKind::Records,
            1 => BatchKind::Ack,
            2 => BatchKind::BulkDone,
            3 => BatchKind::BulkStart,
            k => return Err(SyncError::BatchKind(k)),
        };
        let count = r.u16(field::batch::COUNT);
        let need = BATCH_HEADER_LEN + usize::from(count) * RECORD_LEN;
        if bytes.len() != need || (kind != BatchKind::Records && count != 0) {
            return Err(SyncError::BatchLength {
                count,
                len: bytes.len(),
                need: if kind == BatchKind::Records {
                    need
                } else {
                    BATCH_HEADER_LEN
                },
            });
        }
        Ok(Batch {
            kind,
            seq: r.u64(field::batch::SEQ),
            records: &bytes[BATCH_HEADER_LEN..],
        })
    }

    /// Records in the batch.
    pub fn len(&self) -> usize {
        self.records.len() / RECORD_LEN
    }

    /// Whether it has no records.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Each record, decoded: one bad record does not hide the others.
    pub fn records(&self) -> impl Iterator<Item = Result<SyncRecord, SyncError>> + 'a {
        self.records
            .chunks_exact(RECORD_LEN)
            .map(SyncRecord::decode)
    }
}

/// Writes a batch into a caller's buffer, a record at a time; nothing is allocated.
pub struct BatchWriter<'a> {
    buf: &'a mut [u8],
    kind: BatchKind,
    seq: u64,
    count: u16,
}

impl<'a> BatchWriter<'a> {
    /// A batch of `kind` numbered `seq` in `buf` (at least [`BATCH_HEADER_LEN`] bytes).
    pub fn new(buf: &'a mut [u8], kind: BatchKind, seq: u64) -> Result<BatchWriter<'a>, SyncError> {
        if buf.len() < BATCH_HEADER_LEN {
            return Err(SyncError::Short {
                len: buf.len(),
                need: BATCH_HEADER_LEN,
            });
        }
        Ok(BatchWriter {
            buf,
            kind,
            seq,
            count: 0,
        })
    }

    /// Records a batch of `len` bytes can carry.
    pub const fn capacity(len: usize) -> usize {
        len.saturating_sub(BATCH_HEADER_LEN) / RECORD_LEN
    }

    /// Appends `record`; [`SyncError::Full`] when the buffer has no room for it (or the
    /// batch is not of records).
    pub fn push(&mut self, record: &SyncRecord) -> Result<(), SyncError> {
        let at = BATCH_HEADER_LEN + usize::from(self.count) * RECORD_LEN;
        if self.kind != BatchKind::Records || self.count == u16::MAX {
            return Err(SyncError::Full);
        }
        let Some(slot) = self.buf.get_mut(at..at + RECORD_LEN) else {
            return Err(SyncError::Full);
        };
        record.encode(slot)?;
        self.count += 1;
        Ok(())
    }

    /// Records written so far.
    pub fn count(&self) -> usize {
        usize::from(self.count)
    }

    /// Writes the header; returns the batch's length in bytes.
    pub fn finish(self) -> usize {
        let mut w = Writer(&mut self.buf[..BATCH_HEADER_LEN]);
        w.0[field::batch::MAGIC..field::batch::MAGIC + 4].copy_from_slice(&BATCH_MAGIC);
        w.u8(field::batch::VERSION, VERSION);
        w.u8(field::batch::KIND, self.kind as u8);
        w.u16(field::batch::COUNT, self.count);
        w.u64(field::batch::SEQ, self.seq);
        BATCH_HEADER_LEN + usize::from(self.count) * RECORD_LEN
    }
}

/// Why a record was not installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InstallError {
    /// Only established or closing flows are carried on: a half-open one is left to
    /// the client's retransmissions (answered with a RST after the grace time).
    #[error("half-open flows are not installed")]
    HalfOpen,
    /// No service of this engine covers the record's VIP and port.
    #[error("no service for {vip}:{port}")]
    UnknownService {
        /// The record's VIP.
        vip: Ipv4Addr,
        /// The record's port.
        port: u16,
    },
    /// None of the record's live legs is on a replica this engine knows as live.
    #[error("no live leg on a replica this engine knows")]
    NoLiveLeg,
    /// The flow table is full.
    #[error("flow table full")]
    TableFull,
    /// After a takeover, a flow the engine carries is never overwritten by a record (a
    /// late one is older than what the engine saw since).
    #[error("flow already carried since the takeover")]
    Exists,
}

impl SyncRecord {
    /// The record that tells the peer flow `key` is gone: the key and the event, no leg
    /// (the one kind of record that may have none).
    pub fn removed(key: FlowKey) -> SyncRecord {
        SyncRecord {
            event: SyncEvent::Removed,
            key,
            n_legs: 0,
            ..SyncRecord::default()
        }
    }

    /// The record of flow `f` (its legs' replicas named by their cached addresses).
    pub fn of(f: &Flow, event: SyncEvent) -> SyncRecord {
        let mut legs = [SyncLeg::default(); MAX_COPIES];
        // A new standby still being given the log (mirror mode) has nothing the peer
        // could carry on: the log is not synced.
        let joining = f.joining();
        for (k, ((slot, l), check)) in legs.iter_mut().zip(f.legs()).zip(&f.checks).enumerate() {
            *slot = SyncLeg {
                addr: Ipv4Addr::from(l.addr),
                alive: l.alive && joining != Some(k),
                answered: l.answered,
                answer_rank: l.answer_rank,
                isn: l.isn,
                delta: l.delta,
                ts_offset: l.ts_offset,
                wscale: l.wscale,
                peer_wscale: l.peer_wscale,
                mss: l.mss,
                sack_ok: l.sack_ok,
                ts_ok: l.ts_ok,
                ack: l.ack,
                wnd_edge: l.wnd_edge,
                snd_nxt: l.snd_nxt,
                last_tsval: l.last_tsval,
                fin: l.fin,
                acked_to: l.acked_to,
                verified: check.verified,
            };
        }
        SyncRecord {
            event,
            key: f.key,
            phase: f.phase,
            proxied: f.proxied,
            forward: f.forward,
            client_mac: f.client_mac,
            n_legs: f.n_legs,
            active: f.active,
            legs,
            client_isn: f.client_isn,
            client_wscale: f.client_wscale,
            client_sack_ok: f.client_sack_ok,
            client_ts_ok: f.client_ts_ok,
            client_mss: f.client_mss,
            client_shift: f.client_shift,
            visible_wscale: f.visible_wscale,
            ts_on: f.ts_on,
            sack_on: f.sack_on,
            visible_mss: f.visible_mss,
            visible_isn: f.visible_isn,
            client_ack: f.client_acked.then_some(f.client_ack),
            client_window: f.client_window,
            client_max_wnd: f.client_max_wnd,
            client_tsval: f.client_tsval,
            client_snd_nxt: f.client_snd_nxt,
            client_fin: f.client_fin,
            to_client_nxt: f.to_client_nxt,
            ack_sent: f.ack_sent,
            edge_sent: f.edge_sent,
            max_tsval_sent: f.max_tsval_sent,
            fin_sent: f.fin_sent,
            bytes_to_client: f.bytes_to_client,
            bytes_from_client: f.bytes_from_client,
        }
    }

    /// The flow this record describes, on an engine whose service `service` it belongs
    /// to, at `now`: legs on the replicas `resolve` finds by address (with their epoch;
    /// `None`, or not live: the leg is dead). Held output empty, verification past each
    /// leg's verified offset given up, the visible timestamp clock leapt forward
    /// ([`TSVAL_LEAP`]), every endpoint unconfirmed and the flow due for its kick.
    pub(crate) fn flow_for(
        &self,
        service: u16,
        now: u64,
        verifies: bool,
        mut resolve: impl FnMut(Ipv4Addr) -> Option<(ReplicaId, u32)>,
    ) -> Result<Flow, InstallError> {
        if !matches!(self.phase, FlowPhase::Established | FlowPhase::Closed) {
            return Err(InstallError::HalfOpen);
        }
        let mut f = Flow::new(self.key);
        f.phase = self.phase;
        f.proxied = self.proxied;
        f.forward = self.forward;
        f.service = service;
        f.client_mac = self.client_mac;
        f.n_legs = self.n_legs.min(MAX_COPIES as u8);
        f.active = self.active;
        for ((leg, s), check) in f.legs.iter_mut().zip(self.legs()).zip(&mut f.checks) {
            let found = resolve(s.addr);
            *leg = Leg {
                replica: found.map_or(ReplicaId::default(), |(id, _)| id),
                epoch: found.map_or(0, |(_, epoch)| epoch),
                addr: u32::from(s.addr),
                alive: s.alive && found.is_some(),
                answered: s.answered,
                answer_rank: s.answer_rank,
                isn: s.isn,
                delta: s.delta,
                ts_offset: s.ts_offset,
                wscale: s.wscale,
                peer_wscale: s.peer_wscale,
                mss: s.mss,
                sack_ok: s.sack_ok,
                ts_ok: s.ts_ok,
                ack: s.ack,
                wnd_edge: s.wnd_edge,
                snd_nxt: s.snd_nxt,
                last_tsval: s.last_tsval,
                fin: s.fin,
                fin_since: if s.fin.is_some() { now } else { 0 },
                acked_to: s.acked_to,
                ..Leg::default()
            };
            if verifies {
                // Its output since `verified` was never seen here: it may take over for
                // what was checked, never beyond (§3.12).
                *check = Check::start(s.verified);
                check.state = verify::State::Lost;
            }
        }
        // The active leg must be live and answered; otherwise the next one that is.
        let usable = |l: &Leg| l.alive && l.answered;
        if !usable(&f.legs[usize::from(f.active)]) {
            let n = usize::from(f.n_legs);
            let next = (1..=n)
                .map(|k| (usize::from(f.active) + k) % n)
                .find(|&j| usable(&f.legs[j]));
            match next {
                Some(j) => f.active = j as u8,
                None => return Err(InstallError::NoLiveLeg),
            }
        }
        f.client_isn = self.client_isn;
        f.client_wscale = self.client_wscale;
        f.client_sack_ok = self.client_sack_ok;
        f.client_ts_ok = self.client_ts_ok;
        f.client_mss = self.client_mss;
        f.client_shift = self.client_shift;
        f.visible_wscale = self.visible_wscale;
        f.ts_on = self.ts_on;
        f.sack_on = self.sack_on;
        f.visible_mss = self.visible_mss;
        f.visible_isn = self.visible_isn;
        f.first_synack_at = now.max(1);
        f.handshake_queued = true;
        f.client_ack = self.client_ack.unwrap_or_default();
        f.client_acked = self.client_ack.is_some();
        f.client_window = self.client_window;
        f.client_max_wnd = self.client_max_wnd;
        f.client_tsval = self.client_tsval;
        // Not synced: the client's TS.Recent is the best this appliance knows (a record
        // that refreshes a flow never lowers what this appliance passed on itself).
        if f.tsval_to_legs == 0 || Seq(self.client_tsval) > Seq(f.tsval_to_legs) {
            f.tsval_to_legs = self.client_tsval;
        }
        f.client_snd_nxt = self.client_snd_nxt;
        f.client_fin = self.client_fin;
        f.to_client_nxt = self.to_client_nxt;
        f.ack_sent = self.ack_sent;
        f.edge_sent = self.edge_sent;
        f.fin_sent = self.fin_sent;
        f.created_at = now;
        f.last_seen = now;
        f.closed_at = if self.phase == FlowPhase::Closed {
            now
        } else {
            0
        };
        f.bytes_to_client = self.bytes_to_client;
        f.bytes_from_client = self.bytes_from_client;
        // §3.3 across appliances: the record may be behind the TSvals the client has
        // seen; the visible clock leaps past any it can have, and every leg continues
        // from there.
        f.max_tsval_sent = self.max_tsval_sent;
        if f.ts_on {
            let visible = self.max_tsval_sent.wrapping_add(TSVAL_LEAP);
            f.max_tsval_sent = visible;
            for leg in f.legs.iter_mut().take(usize::from(f.n_legs)) {
                if leg.ts_ok {
                    leg.ts_offset = leg.last_tsval.wrapping_sub(visible);
                }
            }
        }
        let live = f.legs().iter().enumerate().filter(|(_, l)| l.alive);
        f.synced = live.fold(1, |bits, (i, _)| bits | 1 << (1 + i));
        f.needs_kick = true;
        Ok(f)
    }
}

/// The staleness rule (module docs): whether segment `m` of an installed flow, from the
/// client (`leg` None) or from leg `leg`, shows its sender ahead of what the flow
/// holds. Asked for every segment of the flow's life, not only the first of each
/// sender: one delayed from before the takeover may come first and show nothing, and
/// the next, ahead, must still catch up (found by the takeover simulation, seed 38).
/// Once the flow holds what its endpoints do, nothing legitimate is ahead of it.
pub(crate) fn ahead_of_record(f: &Flow, leg: Option<usize>, m: &Meta) -> bool {
    let bit = leg.map_or(1, |i| 1u8 << (1 + i));
    if f.synced & bit == 0 || m.flags.contains(TcpFlags::RST) || m.flags.contains(TcpFlags::SYN) {
        return false;
    }
    match leg {
        None => client_ahead(f, m).is_some(),
        Some(i) => leg_ahead(f, i, m).is_some(),
    }
}

/// How far segment `m` reaches in its sender's sequence space: its end, or for a
/// segment without payload its sequence number (a pure ACK's is the sender's next).
fn reach(m: &Meta) -> Seq {
    m.seq.wrapping_add(m.seq_len())
}

/// Whether the client's segment `m` is ahead of the record: `(acks past, sends past)`,
/// each `None` when not (it acks bytes the record never sent it; it sends past the window
/// the record gave it, a pure ACK at a sequence past it included). `None` when neither.
fn client_ahead(f: &Flow, m: &Meta) -> Option<(Option<Seq>, Option<Seq>)> {
    let acks = (m.flags.contains(TcpFlags::ACK) && m.ack > f.to_client_nxt).then_some(m.ack);
    let right = f.edge_sent.later(f.ack_sent).wrapping_add(1);
    let end = reach(m);
    let past = if m.seq_len() > 0 {
        end > right
    } else {
        m.seq >= right
    };
    let sends = past.then_some(end);
    (acks.is_some() || sends.is_some()).then_some((acks, sends))
}

/// Whether leg `i`'s segment `m` is ahead of the record: `(acks past, sends past)` as
/// [`client_ahead`] (it acks client bytes the record never saw; it sends past the window
/// it was given, a pure ACK at a sequence past it included).
fn leg_ahead(f: &Flow, i: usize, m: &Meta) -> Option<(Option<Seq>, Option<Seq>)> {
    let l = f.legs.get(i)?;
    let acks = (m.flags.contains(TcpFlags::ACK) && m.ack > f.client_snd_nxt).then_some(m.ack);
    let right = l
        .acked_to
        .wrapping_add(f.client_max_wnd.max(1))
        .wrapping_add(1);
    let end = reach(m);
    let past = if m.seq_len() > 0 {
        end > right
    } else {
        m.seq >= right
    };
    let sends = past.then_some(end);
    (acks.is_some() || sends.is_some()).then_some((acks, sends))
}

/// Brings an installed flow's positions up to segment `m`, which [`ahead_of_record`]
/// found ahead of its record (module docs, "Staleness"): only ever forward, and never
/// past what the segment proves its sender has.
///
/// - The client acks bytes the record never sent it: the dead appliance sent them, from
///   the active leg at its delta. What was sent to the client (`to_client_nxt`) moves up
///   to the ack, and so does what the active leg is known to have sent, in its own space
///   (so that the client's acks reach the replica, rather than stop at the record's
///   point: a replica drops a segment whose ack is older than its largest window, and
///   would drop the client's next bytes with it).
/// - The client sends past the window the record gave it: it was given more; the edge
///   sent to it moves up to what it sent.
/// - A leg acks client bytes the record never saw: the client sent them
///   (`client_snd_nxt`).
/// - A leg sends past the window the record gave it: it was acked more. What it is
///   known to have sent moves up to its segment's reach, and what was acked to it up to
///   one client window before that (it sends only inside the window it was given, so
///   it was acked at least that far).
pub(crate) fn catch_up_to(f: &mut Flow, leg: Option<usize>, m: &Meta) {
    match leg {
        None => {
            let Some((acks, sends)) = client_ahead(f, m) else {
                return;
            };
            if let Some(ack) = acks {
                f.to_client_nxt = ack;
                let a = usize::from(f.active);
                if a < usize::from(f.n_legs) {
                    if let Some(l) = f.legs.get_mut(a) {
                        l.snd_nxt = l.snd_nxt.later(ack.wrapping_add(l.delta));
                    }
                }
            }
            if let Some(end) = sends {
                f.edge_sent = f.edge_sent.later(end);
            }
        }
        Some(i) => {
            let Some((acks, sends)) = leg_ahead(f, i, m) else {
                return;
            };
            if let Some(ack) = acks {
                f.client_snd_nxt = ack;
            }
            if let Some(end) = sends {
                let wnd = f.client_max_wnd.max(1);
                if let Some(l) = f.legs.get_mut(i) {
                    l.snd_nxt = l.snd_nxt.later(end);
                    l.acked_to = l.acked_to.later(end.wrapping_sub(wnd));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A valid record drawn from `words`: every field from its own word, options and
    /// ranges respected, unused legs default.
    fn record_from(words: &[u32]) -> SyncRecord {
        let mut w = words.iter().copied().cycle();
        let mut next = move || w.next().unwrap_or(0);
        let mut flag = {
            let bits = next();
            let mut i = 0;
            move || {
                i = (i + 1) % 32;
                bits & (1 << i) != 0
            }
        };
        let opt = |on: bool, v: u32| on.then_some(Seq(v));
        let n_legs = (next() % MAX_COPIES as u32) as u8 + 1;
        let mut legs = [SyncLeg::default(); MAX_COPIES];
        for (i, l) in legs.iter_mut().take(usize::from(n_legs)).enumerate() {
            *l = SyncLeg {
                // Distinct and nonzero.
                addr: Ipv4Addr::from((next() & 0xffff_ff00) | (i as u32 + 1)),
                alive: flag(),
                answered: flag(),
                answer_rank: (next() % 4) as u8,
                isn: Seq(next()),
                delta: next(),
                ts_offset: next(),
                wscale: (next() % 15) as u8,
                peer_wscale: (next() % 15) as u8,
                mss: next() as u16,
                sack_ok: flag(),
                ts_ok: flag(),
                ack: Seq(next()),
                wnd_edge: Seq(next()),
                snd_nxt: Seq(next()),
                last_tsval: next(),
                fin: opt(flag(), next()),
                acked_to: Seq(next()),
                verified: Seq(next()),
            };
        }
        let events = [
            SyncEvent::Refresh,
            SyncEvent::Handshake,
            SyncEvent::Switch,
            SyncEvent::LegDeath,
            SyncEvent::Fin,
            SyncEvent::Removed,
        ];
        let phases = [
            FlowPhase::SynAckSent,
            FlowPhase::Established,
            FlowPhase::Closed,
        ];
        let mac = next().to_be_bytes();
        let mac2 = next().to_be_bytes();
        SyncRecord {
            event: events[next() as usize % events.len()],
            key: FlowKey {
                client_ip: next(),
                client_port: next() as u16,
                vip: next(),
                vip_port: next() as u16,
            },
            phase: phases[next() as usize % phases.len()],
            proxied: flag(),
            forward: flag(),
            client_mac: MacAddr([mac[0], mac[1], mac[2], mac[3], mac2[0], mac2[1]]),
            n_legs,
            active: (next() % u32::from(n_legs)) as u8,
            legs,
            client_isn: Seq(next()),
            client_wscale: flag().then_some((next() % 15) as u8),
            client_sack_ok: flag(),
            client_ts_ok: flag(),
            client_mss: next() as u16,
            client_shift: (next() % 15) as u8,
            visible_wscale: (next() % 15) as u8,
            ts_on: flag(),
            sack_on: flag(),
            visible_mss: next() as u16,
            visible_isn: Seq(next()),
            client_ack: opt(flag(), next()),
            client_window: next() as u16,
            client_max_wnd: next(),
            client_tsval: next(),
            client_snd_nxt: Seq(next()),
            client_fin: opt(flag(), next()),
            to_client_nxt: Seq(next()),
            ack_sent: Seq(next()),
            edge_sent: Seq(next()),
            max_tsval_sent: next(),
            fin_sent: opt(flag(), next()),
            bytes_to_client: (u64::from(next()) << 32) | u64::from(next()),
            bytes_from_client: (u64::from(next()) << 32) | u64::from(next()),
        }
    }

    fn encoded(r: &SyncRecord) -> [u8; RECORD_LEN] {
        let mut b = [0u8; RECORD_LEN];
        assert_eq!(r.encode(&mut b), Ok(RECORD_LEN));
        b
    }

    proptest! {
        #[test]
        fn every_valid_record_decodes_to_itself(words in prop::collection::vec(any::<u32>(), 96)) {
            let r = record_from(&words);
            prop_assert_eq!(SyncRecord::decode(&encoded(&r)), Ok(r));
        }

        #[test]
        fn any_bytes_decode_without_panic_and_a_decoded_record_encodes_to_the_same_bytes(
            bytes in prop::collection::vec(any::<u8>(), 0..300),
        ) {
            if let Ok(r) = SyncRecord::decode(&bytes) {
                prop_assert_eq!(&encoded(&r)[..], &bytes[..RECORD_LEN]);
            }
        }

        #[test]
        fn a_valid_record_with_one_byte_changed_decodes_or_names_its_defect(
            words in prop::collection::vec(any::<u32>(), 96),
            at in 0..RECORD_LEN,
            value in any::<u8>(),
        ) {
            let mut b = encoded(&record_from(&words));
            b[at] = value;
            if let Ok(r) = SyncRecord::decode(&b) {
                prop_assert_eq!(encoded(&r), b);
            }
        }

        #[test]
        fn a_batch_carries_its_sequence_number_and_records_in_order(
            seq in any::<u64>(),
            words in prop::collection::vec(prop::collection::vec(any::<u32>(), 96), 0..6),
        ) {
            let records: Vec<SyncRecord> = words.iter().map(|w| record_from(w)).collect();
            let mut buf = [0u8; 1500];
            let mut w = BatchWriter::new(&mut buf, BatchKind::Records, seq).expect("header fits");
            for r in &records {
                w.push(r).expect("five records fit 1500 bytes");
            }
            let len = w.finish();
            let batch = Batch::parse(&buf[..len]).expect("valid batch");
            prop_assert_eq!(batch.kind, BatchKind::Records);
            prop_assert_eq!(batch.seq, seq);
            let back: Vec<_> = batch.records().collect();
            prop_assert_eq!(back, records.into_iter().map(Ok).collect::<Vec<_>>());
        }

        #[test]
        fn any_bytes_parse_as_a_batch_without_panic(bytes in prop::collection::vec(any::<u8>(), 0..1500)) {
            if let Ok(b) = Batch::parse(&bytes) {
                for r in b.records() {
                    let _ = r;
                }
            }
        }
    }

    #[test]
    fn a_record_is_256_bytes_and_five_fit_a_1500_byte_datagram() {
        assert_eq!(field::LEGS + MAX_COPIES * LEG_LEN, RECORD_LEN);
        assert_eq!(BatchWriter::capacity(1500 - 20 - 8), 5);
    }

    #[test]
    fn short_input_is_refused_with_its_length() {
        let b = encoded(&record_from(&[7; 96]));
        assert_eq!(
            SyncRecord::decode(&b[..100]),
            Err(SyncError::Short {
                len: 100,
                need: RECORD_LEN
            })
        );
        let mut small = [0u8; 10];
        assert!(matches!(
            record_from(&[7; 96]).encode(&mut small),
            Err(SyncError::Short { len: 10, .. })
        ));
    }

    #[test]
    fn each_defect_is_named() {
        let good = encoded(&SyncRecord {
            legs: [
                SyncLeg {
                    addr: Ipv4Addr::new(198, 18, 1, 2),
                    alive: true,
                    answered: true,
                    ..SyncLeg::default()
                },
                SyncLeg::default(),
                SyncLeg::default(),
            ],
            ..SyncRecord::default()
        });
        assert!(SyncRecord::decode(&good).is_ok());
        let with = |at: usize, v: u8| {
            let mut b = good;
            b[at] = v;
            SyncRecord::decode(&b)
        };
        assert_eq!(with(field::VERSION, 2), Err(SyncError::Version(2)));
        assert_eq!(with(field::N_LEGS, 0), Err(SyncError::LegCount(0)));
        assert_eq!(with(field::N_LEGS, 4), Err(SyncError::LegCount(4)));
        let field_err = |r: Result<SyncRecord, SyncError>| match r {
            Err(SyncError::Field { field, .. }) => field,
            other => panic!("expected a field error, got {other:?}"),
        };
        assert_eq!(field_err(with(field::EVENT, 6)), "event");
        assert_eq!(field_err(with(field::PHASE, 1)), "phase");
        assert_eq!(field_err(with(field::ACTIVE, 1)), "active");
        assert_eq!(field_err(with(field::VISIBLE_WSCALE, 15)), "visible_wscale");
        assert_eq!(field_err(with(field::CLIENT_WSCALE, 3)), "client_wscale");
        assert_eq!(field_err(with(field::FLAGS2, 4)), "flags2");
        assert_eq!(field_err(with(field::RESERVED, 1)), "reserved");
        assert_eq!(field_err(with(field::CLIENT_FIN + 3, 1)), "client_fin");
        assert_eq!(field_err(with(field::LEGS + LEG_LEN + 9, 1)), "unused leg");
        assert_eq!(
            field_err(with(field::LEGS + field::leg::FLAGS, 0x80)),
            "leg flags"
        );
        assert_eq!(
            field_err(with(field::LEGS + field::leg::WSCALE, 15)),
            "leg wscale"
        );
        // Two legs on one address.
        let mut b = good;
        b[field::N_LEGS] = 2;
        b.copy_within(field::LEGS..field::LEGS + LEG_LEN, field::LEGS + LEG_LEN);
        assert_eq!(field_err(SyncRecord::decode(&b)), "leg address");
    }

    #[test]
    fn a_batch_must_be_exactly_its_header_and_records() {
        let mut buf = [0u8; 600];
        let mut w = BatchWriter::new(&mut buf, BatchKind::Records, 9).expect("room");
        w.push(&record_from(&[3; 96])).expect("room");
        let len = w.finish();
        assert!(Batch::parse(&buf[..len]).is_ok());
        assert!(matches!(
            Batch::parse(&buf[..len - 1]),
            Err(SyncError::BatchLength { count: 1, .. })
        ));
        assert!(matches!(
            Batch::parse(&buf[..len + 1]),
            Err(SyncError::BatchLength { count: 1, .. })
        ));
        let mut bad = buf;
        bad[0] = b'X';
        assert!(matches!(Batch::parse(&bad[..len]), Err(SyncError::Magic)));
        let mut bad = buf;
        bad[field::batch::KIND] = 7;
        assert!(matches!(
            Batch::parse(&bad[..len]),
            Err(SyncError::BatchKind(7))
        ));
        // An ack carries no records.
        let mut ack = [0u8; BATCH_HEADER_LEN];
        let w = BatchWriter::new(&mut ack, BatchKind::Ack, 41).expect("room");
        assert_eq!(w.finish(), BATCH_HEADER_LEN);
        let b = Batch::parse(&ack).expect("ack");
        assert_eq!((b.kind, b.seq, b.len()), (BatchKind::Ack, 41, 0));
        // So do the bulk markers.
        for kind in [BatchKind::BulkStart, BatchKind::BulkDone] {
            let w = BatchWriter::new(&mut ack, kind, 42).expect("room");
            assert_eq!(w.finish(), BATCH_HEADER_LEN);
            let b = Batch::parse(&ack).expect("marker");
            assert_eq!((b.kind, b.seq, b.len()), (kind, 42, 0));
        }
        // A full buffer refuses the next record.
        let mut one = [0u8; BATCH_HEADER_LEN + RECORD_LEN];
        let mut w = BatchWriter::new(&mut one, BatchKind::Records, 1).expect("room");
        assert_eq!(w.push(&record_from(&[1; 96])), Ok(()));
        assert_eq!(w.push(&record_from(&[1; 96])), Err(SyncError::Full));
    }
}
