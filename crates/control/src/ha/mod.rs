//! The appliance pair (DESIGN §6b, issue #17): the election between two appliances and
//! the flow-state sync between them, as plain Rust with no I/O. A [`Node`] is driven by
//! `(now, event)` calls (a datagram from the HA link, an announcement frame from a data
//! port, a command, a timer) and answers with [`Action`]s for the appliance and
//! datagrams for the peer ([`Node::poll_transmit`]); the sync records it receives go to
//! a callback, to be installed in the owning worker's table.
//!
//! ## Roles and the election
//!
//! - A node starts **initial** and listens for a dead time. It becomes **standby** as
//!   soon as it hears an active peer; if both start together, the preferred node (then
//!   the higher HA address) becomes active; if it hears nobody for a dead time, it
//!   becomes active (there is nothing to sync from).
//! - **Heartbeats** go both ways over the HA link every `interval`. The **active** also
//!   sends its heartbeat on both data ports ([`wire::announce_frame`], a broadcast of
//!   the IEEE local experimental EtherType), as evidence that it lives and owns the
//!   floating addresses. The standby sends nothing on the data ports.
//! - A standby **takes over** when it has heard no active peer, on either channel, for
//!   a dead time (the active died or froze), and when the active releases it in a
//!   handover. An active whose data ports go down hands over to a ready standby (a
//!   handover as below, so no flow is reset); a standby that sees the active's ports
//!   down for a dead time without a handover (it was still syncing) takes over anyway. Taking over bumps the **epoch** (the highest
//!   known plus one), sends gratuitous ARPs from both data ports, and makes the engines
//!   take over the installed flows.
//! - **Preference.** The preferred node wins the election when both start and a tie of
//!   epochs. It does not take the role back by itself when it rejoins: a switch back
//!   moves every flow once more, so the operator picks the time (`tandem ha active` on
//!   it, or `tandem ha standby` on the other).
//! - **A node that comes back never takes over before it has resynced**: it joins as a
//!   standby, gets a bulk sync, and says `ready` only at its end; a command to become
//!   active is refused until then. (Should the active die during the bulk, the standby
//!   does take over with what it has: some flows are better than none.)
//! - **Handover** (`tandem ha active` on the ready standby, or `tandem ha standby` on the
//!   active while its peer is ready): the active stops its data path (what arrives is
//!   dropped, and resent by the endpoints), offers every flow's final record, waits for
//!   the peer's ack of the last one, and then says *released*; the standby takes over
//!   with a new epoch and the active steps down on hearing it. No flow is reset: the new
//!   active's records are exact. A handover that does not complete within
//!   `handover_timeout` is given up and the active resumes.
//!
//! ## Split brain, and how it is fenced
//!
//! - **The HA link alone fails.** The standby still hears the active's announcements on
//!   the data ports, so it never takes over: one active, no flow lost (the sync stops;
//!   when the link returns the active's next heartbeat exchange restarts it with a bulk).
//! - **Both channels fail while both live** (a true partition of the segments): the
//!   standby takes over, and each side serves what it can reach. As soon as either
//!   channel carries a heartbeat again, the node of the older epoch steps down at once
//!   (an active that hears an active of a newer epoch, or of the same epoch that wins
//!   the tie, steps down), and a heartbeat of an older epoch counts for nothing.
//! - **A frozen active** (SIGSTOP) that resumes still thinks it is active with its old
//!   epoch: its claim is ignored by the peer. Its first call after a gap of half a dead
//!   time makes it stop its data path ([`Action::Suspend`]) until it hears its peer: it
//!   steps down on the peer's heartbeat or announcement of a newer epoch, and resumes
//!   if the peer did not take over (or stays silent for a dead time).
//! - Records from the peer reach an active node's table never: an active does not
//!   install records (counted), so a split brain cannot overwrite its flows.
//!
//! ## The sync transport
//!
//! See [`transport`]: numbered batches, cumulative acks (also carried by every
//! heartbeat), go-back-N resends, a bounded window; a full window loses records
//! (counted) instead of blocking a worker, and a bulk resync replaces them. A peer that
//! joins as standby (first heard, restarted, back after a dead time, or stepped down)
//! gets a bulk sync; it is `ready` once the bulk's end marker is in.
//!
//! ## The socket
//!
//! [`HaLink`] drives a node on a non-blocking UDP socket bound to the local address of
//! the HA link, from the control core's loop, a bounded number of datagrams per pass.

pub mod link;
mod node;
pub mod transport;
pub mod wire;

#[cfg(test)]
mod tests;

pub use link::HaLink;
pub use node::{Accepted, Action, Channel, Command, CommandError, Node, PeerView, Settings};
pub use transport::{Delivery, SyncSettings};
pub use wire::{Heartbeat, Role};

use serde::{Deserialize, Serialize};

tandem_engine::counters! {
    /// Counters and gauges of the pair (issue #17 item 4).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct HaCounters {
        /// This node's role (0 initial, 1 standby, 2 active).
        role: gauge "tandem_ha_role",
        /// The epoch this node knows (an active's: its term).
        epoch: gauge "tandem_ha_epoch",
        /// 1 while this node holds a complete copy of the active's flows.
        ready: gauge "tandem_ha_ready",
        /// Times this node became active in place of its peer.
        takeovers: counter "tandem_ha_takeovers_total",
        /// At the last takeover, how long the peer had been silent or inactive (ns).
        last_detection_ns: gauge "tandem_ha_last_detection_nanoseconds",
        /// Times this active node stepped down on hearing a newer active (split brain).
        step_downs: counter "tandem_ha_step_downs_total",
        /// Times this active node found it had been stalled and stopped its data path
        /// until it heard its peer.
        stalls: counter "tandem_ha_stalls_total",
        /// Handovers completed by this node taking over.
        handovers: counter "tandem_ha_handovers_total",
        /// Handovers given up (the peer did not take over in time).
        handovers_failed: counter "tandem_ha_handovers_failed_total",
        /// Takeovers because the active's data ports were down.
        peer_data_down_takeovers: counter "tandem_ha_peer_data_down_takeovers_total",
        /// Times the peer went unheard for a dead time.
        peer_losses: counter "tandem_ha_peer_losses_total",
        /// Heartbeats sent on the HA link.
        heartbeats_sent: counter "tandem_ha_heartbeats_sent_total",
        /// Heartbeats received on the HA link.
        heartbeats_received: counter "tandem_ha_heartbeats_received_total",
        /// The peer's announcements received on the data ports.
        announcements_received: counter "tandem_ha_announcements_received_total",
        /// This node's own announcements heard back (ignored).
        own_heard: counter "tandem_ha_own_heard_total",
        /// Heartbeats of an older epoch or incarnation (ignored as claims).
        stale_heartbeats: counter "tandem_ha_stale_heartbeats_total",
        /// Datagrams or frames that did not read (dropped).
        malformed: counter "tandem_ha_malformed_total",
        /// Records from the peer refused because this node is active.
        records_refused_active: counter "tandem_ha_records_refused_active_total",
        /// Sync records sent (first sends).
        sync_records_sent: counter "tandem_ha_sync_records_sent_total",
        /// Sync records sent again.
        sync_records_resent: counter "tandem_ha_sync_records_resent_total",
        /// Sync records lost to a full window (a bulk resync follows).
        sync_records_lost: counter "tandem_ha_sync_records_lost_total",
        /// Sync batches sent again.
        sync_batches_resent: counter "tandem_ha_sync_batches_resent_total",
        /// Bulk syncs started (a peer joined, or records were lost).
        sync_bulk_syncs: counter "tandem_ha_sync_bulk_syncs_total",
        /// Sync records received in order.
        sync_records_received: counter "tandem_ha_sync_records_received_total",
        /// Received sync records that did not decode (skipped).
        sync_records_malformed: counter "tandem_ha_sync_records_malformed_total",
        /// Sync batches received twice (dropped).
        sync_batches_duplicate: counter "tandem_ha_sync_batches_duplicate_total",
        /// Sync batches received past a gap (dropped, resent in order).
        sync_batches_out_of_order: counter "tandem_ha_sync_batches_out_of_order_total",
        /// Bulk syncs received whole.
        sync_bulks_received: counter "tandem_ha_sync_bulks_received_total",
        /// How long the oldest record not yet acked by the peer has waited (ns).
        sync_lag_ns: gauge "tandem_ha_sync_lag_nanoseconds",
        /// Sync batches sent and not yet acked.
        sync_unacked: gauge "tandem_ha_sync_unacked_batches",
        /// On a standby: batches the active has sent that are not here yet.
        sync_behind: gauge "tandem_ha_sync_behind_batches",
    }
}
