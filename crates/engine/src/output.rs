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
    /// Its output on a flow differed from the active's at the same offsets (DESIGN
    /// §3.12): not a failure, but its leg left the flow. Many of them: out of sync.
    Diverged,
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
    /// For [`SignalKind::Diverged`]: the stream offset up to which the replica's output
    /// was checked equal (the first difference is after it); 0 otherwise.
    pub offset: u32,
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
    /// `replay: http1`: a replica's segment past bytes it has not delivered yet (lost on
    /// the way): dropped, so that its exchange is followed in order; it sends it again.
    PastGap => "past_gap",
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

crate::counters! {
    /// Per-worker counters: plain integers, written by one worker, read by copying. Each
    /// line is the counter's whole declaration (`crate::counters`): its kind, its
    /// Prometheus name and, in its doc comment, its help text. Listed in the order the
    /// exit summary prints them.
    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    pub struct Counters {
        /// Frames received.
        rx: counter "tandem_rx_packets_total",
        /// Frames queued for transmission (forwarded, copied and synthesised).
        tx: counter "tandem_tx_packets_total",
        /// Frames passed to the control core.
        to_control: counter "tandem_to_control_packets_total",
        /// Flows created.
        flows_created: counter "tandem_flows_created_total",
        /// Flows removed.
        flows_removed: counter "tandem_flows_removed_total",
        /// Flows whose active replica changed.
        flow_failovers: counter "tandem_flow_failovers_total",
        /// Flows reset towards the client because they lost their last replica.
        flows_lost: counter "tandem_flows_lost_total",
        /// Flow legs lost to a dead or diverged replica (each leaves the flow less
        /// protected).
        legs_lost: counter "tandem_legs_lost_total",
        /// Pure ACKs synthesised towards clients.
        acks_to_client: counter "tandem_acks_to_client_total",
        /// Pure ACKs synthesised towards replicas.
        acks_to_replica: counter "tandem_acks_to_replica_total",
        /// Held segments replayed to the client after a failover.
        replayed_segments: counter "tandem_replayed_segments_total",
        /// Held copies sent to the client again after a failover: its duplicate acks or
        /// the resend timer said the first copy was lost (§3.12).
        held_resent: counter "tandem_held_resent_total",
        /// Signals raised.
        signals: counter "tandem_signals_total",
        /// Signals lost because the signal queue was full.
        signals_lost: counter "tandem_signals_lost_total",
        /// Segments held now, one hold slot each: the hold slots in use.
        held_segments: gauge "tandem_held_segments",
        /// Hold slots free now (`limits.hold_segments_total` over the workers, less
        /// those in use): none left, a standby's output can no longer be held.
        hold_slots_free: gauge "tandem_hold_slots_free",
        /// Bytes held now.
        held_bytes: gauge "tandem_held_bytes",
        /// Flows in the table now.
        flows: gauge "tandem_flows",
        /// Flows running with fewer replicas than their service asks for: they lost one,
        /// or were created while too few were up (DESIGN §5).
        flows_unprotected: gauge "tandem_flows_unprotected",
        /// Forward-mode flows adopted: created from whatever segment came first, SYN or
        /// not (also counted in `flows_created`).
        flows_adopted: counter "tandem_flows_adopted_total",
        /// Standbys whose output differed from the active's at the same offsets (§3.12):
        /// each left its flow, which runs unprotected.
        standbys_diverged: counter "tandem_standbys_diverged_total",
        /// Standbys whose output could no longer be checked (too much out of order, or
        /// held output released before it was checked): each left its flow.
        standbys_unverifiable: counter "tandem_standbys_unverifiable_total",
        /// Failovers to a standby that was behind the active: its output was checked as
        /// it came, and reached the client only once checked equal (§3.12).
        catch_ups: counter "tandem_catch_ups_total",
        /// Catch-ups that ended the flow with RSTs: the new active's output differed from
        /// what the client has, or was not checked equal within 2 s (also in `flows_lost`).
        catch_ups_failed: counter "tandem_catch_ups_failed_total",
        /// Flows reset towards the client because no live standby was checked equal up
        /// to what the client has (also in `flows_lost`).
        takeovers_refused: counter "tandem_takeovers_refused_total",
        /// Reconnect mode: replays begun, a flow's replica having died (DESIGN §2).
        reconnects: counter "tandem_reconnects_total",
        /// Replays whose new replica's answer was checked equal to what the client has:
        /// the rest of it goes on to the client.
        reconnects_spliced: counter "tandem_reconnects_spliced_total",
        /// Replays whose new replica answered something else than the client has: RST
        /// (also in `flows_lost`).
        reconnects_mismatch: counter "tandem_reconnects_mismatch_total",
        /// Flows that could not be replayed although their log was whole: no leg slot,
        /// too many replays in progress, or nothing to check the answer against (RST,
        /// also in `flows_lost`).
        reconnects_refused: counter "tandem_reconnects_refused_total",
        /// Replays whose new replica did not answer in `connect_timeout`, or did not take
        /// the log within it after its last progress (RST, also in `flows_lost`).
        reconnects_timeout: counter "tandem_reconnects_timeout_total",
        /// Flows whose replica died with no other live replica to replay to (RST, also
        /// in `flows_lost`).
        reconnects_no_replica: counter "tandem_reconnects_no_replica_total",
        /// Flows whose replica died when they could not be replayed: the client had
        /// closed its side, the server had, or a client segment came past a gap (RST,
        /// also in `flows_lost`).
        reconnects_unsafe: counter "tandem_reconnects_unsafe_total",
        /// Flows whose replica died after their client sent more than the replay limit,
        /// or when the log arena was full (RST, also in `flows_lost`).
        reconnects_overflow: counter "tandem_reconnects_overflow_total",
        /// Client bytes sent from logs to new replicas (retransmissions included).
        replayed_bytes: counter "tandem_replayed_bytes_total",
        /// Bytes of new replicas' answers checked equal to what the client had, and not
        /// sent to it again.
        replay_skipped_bytes: counter "tandem_replay_skipped_bytes_total",
        /// Nanoseconds from the start of each spliced replay (its SYN) to its splice (the
        /// answer checked up to what the client has); over `reconnects_spliced`, the mean
        /// reconnect time.
        reconnect_ns: counter "tandem_reconnect_nanoseconds_total",
        /// Flows whose log ended (limit, gap, arena full): they can no longer be
        /// replayed and run unprotected.
        replay_logs_ended: counter "tandem_replay_logs_ended_total",
        /// Mirror mode: new standbys begun by replay for running flows that lost one
        /// (DESIGN §5, reintegration).
        reprotects: counter "tandem_reprotects_total",
        /// New standbys that took the flow's whole log: the flow is protected again
        /// (their output behind the active is checked against its as it comes).
        reprotected: counter "tandem_reprotected_total",
        /// New standbys that failed before they had the whole log (no answer in
        /// `connect_timeout`, the log's limit passed meanwhile, their replica died, or an
        /// answer the flow cannot use): the flow runs on unprotected.
        reprotects_failed: counter "tandem_reprotects_failed_total",
        /// Flows that lost a standby when their log no longer held every client byte since
        /// the SYN (past the limit, a client segment out of order, the arena full): they
        /// stay unprotected until they end (counted once each).
        reprotect_beyond_limit: counter "tandem_reprotect_beyond_limit_total",
        /// `replay: http1`: requests that made their flow unreplayable while outstanding
        /// (a method not in `methods`, a tunnel, a stream the framer cannot follow),
        /// counted once each time a flow becomes so; a replica's death meanwhile is a
        /// RST (`reconnects_unsafe`).
        http1_unreplayable: counter "tandem_http1_unreplayable_total",
        /// `replay: http1` flows that found every exchange slot taken: they run
        /// unprotected.
        http1_exchanges_full: counter "tandem_http1_exchanges_full_total",
        /// Bytes of client-log chunks in use now.
        replay_log_bytes: gauge "tandem_replay_log_bytes",
        /// Replays in progress now (reconnects, and mirror mode's new standbys).
        reconnects_in_progress: gauge "tandem_reconnects_in_progress",
        /// Half-open flows evicted, when the table was full, for a new SYN (as
        /// conntrack's early drop; also in `flows_removed`).
        half_open_evicted: counter "tandem_half_open_evicted_total",
        /// Half-open flows that reached the SYN timeout (also in `flows_removed`).
        half_open_expired: counter "tandem_half_open_expired_total",
        /// Established flows that idled past their timeout, ended with a RST to the
        /// client and to their replicas (also in `flows_removed`).
        idle_resets: counter "tandem_idle_resets_total",
        /// RSTs sent for segments of no flow, as a host answers them (rate-limited; the
        /// segments are also counted as `no_flow` drops).
        stray_resets: counter "tandem_stray_resets_total",
        /// SYNs of a service with no live replica answered with a RST (`no_replica:
        /// reset`, rate-limited with the stray RSTs; every such SYN is also a
        /// `no_replica` drop).
        no_replica_resets: counter "tandem_no_replica_resets_total",
        /// Replicas that answered a new flow's SYN with an ACK of an older connection on
        /// the same client address and port (one they kept after their leg was dropped
        /// while they lived), reset at that ACK so that the repeated SYN is answered.
        stale_replica_resets: counter "tandem_stale_replica_resets_total",
        /// ICMP "fragmentation needed" about a flow's segment, translated and delivered
        /// to each of its replicas (path-MTU discovery through the appliance).
        icmp_frag_needed: counter "tandem_icmp_frag_needed_total",
        /// Half-open flows now: a SYN seen, the client's ack of the SYN-ACK not yet.
        half_open: gauge "tandem_half_open",
        /// SYNs answered with a SYN cookie, no flow made, because `syn_backlog`
        /// half-open flows were waiting (§3.11).
        syn_cookies_sent: counter "tandem_syn_cookies_sent_total",
        /// Client ACKs whose SYN cookie checked: each made a flow.
        syn_cookies_accepted: counter "tandem_syn_cookies_accepted_total",
        /// ACKs of no flow, while SYN cookies were out, whose cookie did not check
        /// (forged, stale, or of a connection that ended; also counted as `no_flow`
        /// drops).
        syn_cookies_failed: counter "tandem_syn_cookies_failed_total",
        /// Flows installed from the appliance peer's sync records (crate::sync).
        sync_flows_installed: counter "tandem_sync_flows_installed_total",
        /// Sync records not installed: half-open, no service, no live leg, table full,
        /// or a flow already carried since the takeover.
        sync_installs_refused: counter "tandem_sync_installs_refused_total",
        /// Legs of synced flows on replica addresses this engine does not know: dead.
        sync_unknown_replicas: counter "tandem_sync_unknown_replicas_total",
        /// Installed flows ended with RSTs because a segment showed their record stale
        /// while a replay was in progress (an endpoint ahead of it; also in `flows_lost`).
        sync_stale_resets: counter "tandem_sync_stale_resets_total",
        /// Segments of installed flows that showed an endpoint ahead of the record: the
        /// flow's positions were brought up to them (crate::sync, "Staleness").
        sync_catch_ups: counter "tandem_sync_catch_ups_total",
        /// Segments of no flow dropped, not answered, during the grace time after a
        /// takeover (their record may still come).
        sync_unknown_flow_drops: counter "tandem_sync_unknown_flow_drops_total",
        /// Flows a bulk sync from the peer did not refresh (the peer no longer has them),
        /// removed at its end.
        sync_flows_pruned: counter "tandem_sync_flows_pruned_total",
        /// Sync records this engine made for the appliance peer (events and refreshes).
        sync_records_made: counter "tandem_sync_records_made_total",
        /// Sync records dropped because the engine's outbox was full (the pair's bulk
        /// resync covers them).
        sync_outbox_drops: counter "tandem_sync_outbox_drops_total",
    }
    and {
        /// Drops, indexed by `DropReason as usize`: not in the table, as [`DropReason`]
        /// declares them (one family, `tandem_drops_total{reason}`).
        pub drops: [u64; DropReason::COUNT],
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CounterKind, CounterSet};

    #[test]
    fn engine_counters_follow_the_prometheus_conventions() {
        for (i, c) in Counters::SPECS.iter().enumerate() {
            assert!(c.prometheus.starts_with("tandem_"), "{c:?}");
            let total = c.prometheus.ends_with("_total");
            assert_eq!(total, c.kind == CounterKind::Counter, "{c:?}");
            assert!(
                !c.help.is_empty() && !c.help.contains(['\n', '\\']),
                "{c:?}"
            );
            assert!(
                Counters::SPECS[..i]
                    .iter()
                    .all(|o| o.name != c.name && o.prometheus != c.prometheus),
                "{c:?} twice"
            );
        }
    }
}
