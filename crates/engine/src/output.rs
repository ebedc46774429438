//! What the engine tells its caller: packets to transmit, packets for the control core,
//! signals about replicas, and counters.

use crate::buffer::PacketBuf;
use crate::replica::ReplicaId;

/// One of the appliance's two ports.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Side {
    /// Towards the clients (or their router).
    Outside,
    /// Towards the replicas.
    Inside,
}

/// A buffer to send out of a port. Its MACs, addresses and checksums are already final.
#[derive(Debug)]
pub struct Tx<B> {
    /// Port to send it on.
    pub side: Side,
    /// The frame.
    pub buf: B,
}

/// Why a replica is suspect, raised by a worker for the control core (DESIGN §5).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SignalKind {
    /// The replica sent a FIN that the other replicas did not match.
    UnmatchedFin,
    /// The replica sent a RST that the other replicas did not match.
    UnmatchedRst,
    /// Its acks lagged the other replicas' by more than `ack_lag` with data outstanding.
    AckLag,
    /// Its output lagged the other replicas' by more than `output_lag`.
    OutputLag,
    /// Traffic for it could not be sent: its MAC is not resolved.
    NeighbourMissing,
}

/// A signal about one replica.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Signal {
    /// The replica.
    pub replica: ReplicaId,
    /// What was seen.
    pub kind: SignalKind,
    /// When (the `now` of the packet that raised it).
    pub at: u64,
}

/// Bounded output of one burst or poll. The caller drains it after every call; what does
/// not fit is dropped and counted, never allocated for.
#[derive(Debug)]
pub struct Output<B> {
    /// Frames to transmit.
    pub tx: Vec<Tx<B>>,
    /// Frames addressed to the appliance itself (ARP, ICMP, probe replies).
    pub to_control: Vec<B>,
    /// Signals for the control core.
    pub signals: Vec<Signal>,
}

impl<B: PacketBuf> Output<B> {
    /// Room for `tx` frames, `control` frames and `signals` signals.
    pub fn with_capacity(tx: usize, control: usize, signals: usize) -> Output<B> {
        Output {
            tx: Vec::with_capacity(tx),
            to_control: Vec::with_capacity(control),
            signals: Vec::with_capacity(signals),
        }
    }

    /// Free transmit slots.
    #[inline]
    pub fn tx_room(&self) -> usize {
        self.tx.capacity() - self.tx.len()
    }

    /// Queues a frame, or gives it back when full.
    #[inline]
    pub(crate) fn push_tx(&mut self, side: Side, buf: B) -> Result<(), B> {
        if self.tx.len() < self.tx.capacity() {
            self.tx.push(Tx { side, buf });
            Ok(())
        } else {
            Err(buf)
        }
    }

    #[inline]
    pub(crate) fn push_control(&mut self, buf: B) -> Result<(), B> {
        if self.to_control.len() < self.to_control.capacity() {
            self.to_control.push(buf);
            Ok(())
        } else {
            Err(buf)
        }
    }

    #[inline]
    pub(crate) fn push_signal(&mut self, signal: Signal) -> bool {
        if self.signals.len() < self.signals.capacity() {
            self.signals.push(signal);
            true
        } else {
            false
        }
    }
}

macro_rules! drop_reasons {
    ($($(#[doc = $doc:literal])* $name:ident => $label:literal,)*) => {
        /// Why a packet was dropped. Each has a counter.
        #[derive(Clone, Copy, PartialEq, Eq, Debug)]
        #[repr(u8)]
        pub enum DropReason { $($(#[doc = $doc])* $name,)* }

        impl DropReason {
            /// Every reason, in counter order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$name,)*];
            /// Number of reasons.
            pub const COUNT: usize = Self::ALL.len();
            /// Label for metrics and logs.
            pub const fn label(self) -> &'static str {
                match self { $(DropReason::$name => $label,)* }
            }
        }
    };
}

drop_reasons! {
    /// The frame is not a well-formed Ethernet/IPv4/TCP packet.
    Malformed => "malformed",
    /// Neither IPv4 nor ARP.
    NotIpv4 => "not_ipv4",
    /// IPv4 fragment (TCP through the appliance must not be fragmented).
    Fragment => "fragment",
    /// IPv4 but not TCP, and not for the appliance itself.
    NotTcp => "not_tcp",
    /// TCP to an address or port that is not a configured service.
    NotServed => "not_served",
    /// A non-SYN segment of no known flow.
    NoFlow => "no_flow",
    /// The flow table is full.
    TableFull => "table_full",
    /// The service has no live replica for a new flow.
    NoReplica => "no_replica",
    /// A replica segment for a replica this flow no longer uses.
    DeadLeg => "dead_leg",
    /// A segment a replica must not send in this state (e.g. data before its SYN-ACK).
    BadState => "bad_state",
    /// A standby's output: held or not needed (not an error).
    Suppressed => "suppressed",
    /// A replica's pure ACK that told the client nothing new (not an error).
    RedundantAck => "redundant_ack",
    /// The replica's MAC is not resolved yet.
    NoNeighbour => "no_neighbour",
    /// The buffer pool was empty when a copy or synthesised packet was needed.
    NoBuffer => "no_buffer",
    /// The output batch was full.
    TxFull => "tx_full",
    /// The control-core ring was full.
    ControlFull => "control_full",
    /// Held data released early because a hold budget was exceeded.
    HoldBudget => "hold_budget",
    /// A new flow's client address and port already have a flow through another VIP on
    /// the same port to one of the replicas chosen: to that replica both would be one
    /// connection, and its answers could not be told apart. Refused until the first ends.
    EndpointInUse => "endpoint_in_use",
    /// A RST whose sequence number is outside the receiver's window (RFC 5961 §3): a
    /// blind guess, never acted on.
    RstOutOfWindow => "rst_out_of_window",
    /// A RST inside the receiver's window but not at the exact expected sequence number:
    /// not acted on; the sender is sent a challenge ACK instead (RFC 5961 §3.2), so that
    /// a real peer answers with the exact RST.
    RstInWindow => "rst_in_window",
    /// Data or a FIN outside the receiver's window (RFC 793 §3.3 acceptance test): it
    /// changes no state.
    OutOfWindow => "out_of_window",
    /// An ACK of data never sent, or older than the largest window allows (RFC 5961 §5):
    /// never recorded.
    AckOutOfWindow => "ack_out_of_window",
    /// A timestamp older than the last one accepted from that sender (PAWS, RFC 7323
    /// §5).
    Paws => "paws",
    /// A RST or FIN whose TCP checksum is wrong: it changes no state.
    BadChecksum => "bad_checksum",
    /// A segment that is not an ACK where every segment after the SYN must be one.
    NoAck => "no_ack",
    /// A SYN from a source no client can have (0.0.0.0/8, 127.0.0.0/8, multicast,
    /// 240.0.0.0/4 and broadcast, the appliance's own addresses, a VIP): no flow.
    BadSource => "bad_source",
    /// An 802.1Q-tagged client frame whose tag could not be removed before it went to
    /// the inside port.
    VlanTag => "vlan_tag",
    /// An ICMP error to a VIP that is not passed on: about no flow, quoting a sequence
    /// number the flow never had in flight, or of a kind no replica needs (only
    /// "fragmentation needed" is, for path-MTU discovery).
    IcmpError => "icmp_error",
}

/// Per-worker counters: plain integers, written by one worker, read by copying.
#[derive(Clone, Debug, Default)]
pub struct Counters {
    /// Frames received.
    pub rx: u64,
    /// Frames queued for transmission (forwarded, copied and synthesised).
    pub tx: u64,
    /// Frames passed to the control core.
    pub to_control: u64,
    /// Drops, indexed by `DropReason as usize`.
    pub drops: [u64; DropReason::COUNT],
    /// Flows created.
    pub flows_created: u64,
    /// Forward-mode flows adopted: created from whatever segment came first, SYN or not
    /// (also counted in `flows_created`).
    pub flows_adopted: u64,
    /// Flows removed.
    pub flows_removed: u64,
    /// Half-open flows evicted, when the table was full, for a new SYN (as conntrack's
    /// early drop; also in `flows_removed`).
    pub half_open_evicted: u64,
    /// Half-open flows that reached the SYN timeout (also in `flows_removed`).
    pub half_open_expired: u64,
    /// SYNs answered with a SYN cookie, no flow made, because `syn_backlog` half-open
    /// flows were waiting (§3.11).
    pub syn_cookies_sent: u64,
    /// Client ACKs whose SYN cookie checked: each made a flow.
    pub syn_cookies_accepted: u64,
    /// ACKs of no flow, while SYN cookies were out, whose cookie did not check (forged,
    /// stale, or of a connection that ended; also counted as `no_flow` drops).
    pub syn_cookies_failed: u64,
    /// Established flows that idled past their timeout, ended with a RST to the client
    /// and to their replicas (also in `flows_removed`).
    pub idle_resets: u64,
    /// ICMP "fragmentation needed" about a flow's segment, translated and delivered to
    /// each of its replicas (path-MTU discovery through the appliance).
    pub icmp_frag_needed: u64,
    /// RSTs sent for segments of no flow, as a host answers them (rate-limited; the
    /// segments are also counted as `no_flow` drops).
    pub stray_resets: u64,
    /// Flows whose active replica changed.
    pub flow_failovers: u64,
    /// Flows reset towards the client because they lost their last replica.
    pub flows_lost: u64,
    /// Flow legs lost to a dead or diverged replica (each leaves the flow less protected).
    pub legs_lost: u64,
    /// Pure ACKs synthesised towards clients.
    pub acks_to_client: u64,
    /// Pure ACKs synthesised towards replicas.
    pub acks_to_replica: u64,
    /// Held segments replayed to the client after a failover.
    pub replayed_segments: u64,
    /// Signals raised.
    pub signals: u64,
    /// Signals lost because the signal queue was full.
    pub signals_lost: u64,
    /// Segments currently held (gauge).
    pub held_segments: u64,
    /// Bytes currently held (gauge).
    pub held_bytes: u64,
    /// Flows currently in the table (gauge).
    pub flows: u64,
    /// Half-open flows: a SYN seen, the client's ack of the SYN-ACK not yet (gauge).
    pub half_open: u64,
    /// Flows running with fewer replicas than their service asks for: they lost one, or
    /// were created while too few were up (gauge; DESIGN §5).
    pub flows_unprotected: u64,
}

impl Counters {
    /// Counts a drop.
    #[inline]
    pub fn drop(&mut self, reason: DropReason) {
        self.drops[reason as usize] += 1;
    }

    /// Drops counted for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize]
    }
}
