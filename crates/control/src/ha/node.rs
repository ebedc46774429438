//! One appliance of the pair: the election (heartbeats, roles, epochs, handover) and
//! the sync transport it gates, driven by `(now, event)` calls that queue [`Action`]s
//! and datagrams. See the module docs of [`crate::ha`] for the rules.

use std::collections::VecDeque;

use tandem_engine::sync::{BatchKind, BatchWriter, BATCH_HEADER_LEN};

use super::transport::{Delivery, Receiver, Sender, SyncSettings};
use super::wire::{Flags, Heartbeat, Message, Role, HEARTBEAT_LEN};
use super::HaCounters;

/// How a node runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// This node's id: its address on the HA link (the pair's two differ).
    pub node: u32,
    /// The preferred node wins the election when both start, and ties.
    pub preferred: bool,
    /// When this node started (ns, wall clock): numbers its sync batches, so that they
    /// never go back across restarts, and tells the peer of a restart.
    pub incarnation: u64,
    /// Heartbeats (and the active's announcements on the data ports) this often (ns).
    pub interval_ns: u64,
    /// A peer not heard this long, on the HA link or the data ports, is dead (ns).
    pub dead_ns: u64,
    /// The longest a handover (`tandem ha active|standby`) may take before it is given
    /// up and the active resumes (ns).
    pub handover_timeout_ns: u64,
    /// The sync transport's batching and resends.
    pub sync: SyncSettings,
}

/// What the node asks of the appliance. Each is done once, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Own the floating addresses: answer ARP for them and carry traffic. With
    /// `takeover`, the engines take over the installed flows (kicks, grace drops).
    BecomeActive {
        /// The epoch of this term.
        epoch: u64,
        /// The node was a standby holding the peer's flows.
        takeover: bool,
    },
    /// Carry nothing, send nothing on the data ports, answer no ARP for the floating
    /// addresses; install the peer's records.
    BecomeStandby {
        /// The epoch of the peer's term.
        epoch: u64,
    },
    /// Send a gratuitous ARP for every floating address from both data ports.
    GratuitousArp,
    /// Send the announcement frame ([`Node::announcement`]) on both data ports.
    Announce,
    /// Offer every flow's record ([`Node::offer`], paced by [`Node::sync_room`]), then
    /// call [`Node::bulk_done`] with `stream`.
    StartBulk {
        /// The stream the bulk belongs to.
        stream: u64,
    },
    /// A handover: stop the data path (drop what arrives), offer every flow's final
    /// record, then call [`Node::quiesced`].
    Quiesce,
    /// This active node was stalled (its loop did not run for half a dead time: it was
    /// frozen or starved), so its peer may have taken over: stop the data path until
    /// [`Action::Resume`] (the peer's next heartbeat shows it did not) or
    /// [`Action::BecomeStandby`] (it did).
    Suspend,
    /// Carry traffic again (a handover given up, or a stall cleared).
    Resume,
}

/// A manual command (`tandem ha active|standby`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Command {
    /// Become the active node.
    Active,
    /// Become the standby node.
    Standby,
}

/// What a command did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accepted {
    /// Nothing to do: the node already has that role.
    Already,
    /// Done at once (the peer is dead: this node took over).
    Done,
    /// The handover started; it completes over the next heartbeats.
    Started,
}

/// Why a command was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// This standby has no complete copy of the active's flows yet.
    #[error("this node has not completed its sync with the active: it would lose every flow")]
    NotReady,
    /// The peer is dead or has no complete copy of this node's flows.
    #[error("the peer is not a ready standby: standing down would lose every flow")]
    PeerNotReady,
    /// The node has not taken a side yet.
    #[error("this node is still starting (initial role): try again once it has a role")]
    Starting,
    /// A handover is already under way.
    #[error("a handover is already under way")]
    Busy,
}

/// Which channel a heartbeat came on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    /// The HA link.
    HaLink,
    /// A data port (the active's announcement).
    DataPort,
}

/// The peer as last heard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerView {
    /// Its last heartbeat.
    pub last: Heartbeat,
    /// When it was last heard on the HA link (ns; 0: never).
    pub ha_heard: u64,
    /// When it was last heard on a data port (ns; 0: never).
    pub data_heard: u64,
    /// Whether it is alive (heard within the dead time, on either channel).
    pub alive: bool,
}

/// The handover of an active node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Handover {
    None,
    /// The data path is being stopped and the final records offered.
    Quiescing {
        since: u64,
    },
    /// Waiting for the peer's ack of batch `mark`, the last of the final records.
    Flushing {
        since: u64,
        mark: u64,
    },
    /// The peer has everything: it may take over.
    Released {
        since: u64,
    },
}

/// One appliance of the pair (see [`crate::ha`]).
#[derive(Debug)]
pub struct Node {
    cfg: Settings,
    role: Role,
    epoch: u64,
    started_at: u64,
    peer: Option<PeerView>,
    /// When an active peer (of an epoch not older than ours) was last heard, or when
    /// this node became a standby.
    active_heard: u64,
    /// When the peer was first heard with its data ports down, while it is.
    peer_data_down_since: Option<u64>,
    want_active: Option<u64>,
    handover: Handover,
    data_ok: bool,
    /// When the node's loop last called in (ns).
    last_call: u64,
    /// When a stall of this active node was noticed, and the counter of its first
    /// heartbeat after it: a peer heartbeat that echoes it clears the stall.
    stalled: Option<(u64, u32)>,
    /// The counter of the peer's last heartbeat on the HA link.
    echo: u32,
    counter: u32,
    heartbeat_due: bool,
    next_heartbeat: u64,
    next_announce: u64,
    garps_left: u8,
    next_garp: u64,
    pub(super) sender: Sender,
    pub(super) receiver: Receiver,
    actions: VecDeque<Action>,
    counters: HaCounters,
}

/// Gratuitous ARPs sent on becoming active, one per heartbeat interval (one lost
/// frame does not leave a host on the old MAC).
const GARP_REPEATS: u8 = 3;

impl Node {
    /// A node starting at `now`: initial, listening for its peer.
    pub fn new(cfg: Settings, now: u64) -> Node {
        Node {
            cfg,
            role: Role::Initial,
            epoch: 0,
            started_at: now,
            peer: None,
            active_heard: now,
            peer_data_down_since: None,
            want_active: None,
            handover: Handover::None,
            data_ok: true,
            last_call: now,
            stalled: None,
            echo: 0,
            counter: 0,
            heartbeat_due: true,
            next_heartbeat: now,
            next_announce: now,
            garps_left: 0,
            next_garp: now,
            sender: Sender::new(cfg.sync, cfg.incarnation),
            receiver: Receiver::default(),
            actions: VecDeque::new(),
            counters: HaCounters::default(),
        }
    }

    /// Its role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether it is the preferred node.
    pub fn preferred(&self) -> bool {
        self.cfg.preferred
    }

    /// The epoch it knows.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Whether it owns the floating addresses now: active, its data path not stopped
    /// for a handover.
    pub fn owns_addresses(&self) -> bool {
        self.role == Role::Active && self.handover == Handover::None && self.stalled.is_none()
    }

    /// Every entry point first: a gap of half a dead time since the last call means this
    /// node was frozen or starved, long enough for its peer to have taken over. An
    /// active node then stops its data path until it hears the peer (the self-fence
    /// of a SIGSTOP: the frozen node's workers would otherwise carry flows for a
    /// heartbeat interval after it resumes).
    fn touch(&mut self, now: u64) {
        let gap = now.saturating_sub(self.last_call);
        self.last_call = self.last_call.max(now);
        if self.role == Role::Active
            && self.stalled.is_none()
            && self.handover == Handover::None
            && gap >= self.cfg.dead_ns / 2
        {
            self.stalled = Some((now, self.counter.wrapping_add(1)));
            self.counters.stalls += 1;
            self.heartbeat_due = true;
            self.actions.push_back(Action::Suspend);
        }
    }

    fn clear_stall(&mut self, now: u64) {
        if self.stalled.take().is_some() && self.role == Role::Active {
            self.next_announce = now;
            self.actions.push_back(Action::Resume);
        }
    }

    /// Whether it holds a complete copy of the active's flows.
    pub fn ready(&self) -> bool {
        self.receiver.ready()
    }

    /// The peer as last heard, if it ever was.
    pub fn peer(&self) -> Option<PeerView> {
        self.peer
    }

    /// Its counters, with the gauges read at `now`.
    pub fn counters(&self, now: u64) -> HaCounters {
        let mut c = self.counters;
        let (s, r) = (&self.sender.counters, &self.receiver.counters);
        c.role = self.role as u64;
        c.epoch = self.epoch;
        c.sync_records_sent = s.records_sent;
        c.sync_records_resent = s.records_resent;
        c.sync_records_lost = s.records_lost;
        c.sync_batches_resent = s.batches_resent;
        c.sync_bulk_syncs = s.bulk_syncs;
        c.sync_records_received = r.records_received;
        c.sync_records_malformed = r.records_malformed;
        c.sync_batches_duplicate = r.batches_duplicate;
        c.sync_batches_out_of_order = r.batches_out_of_order;
        c.sync_bulks_received = r.bulks_received;
        c.sync_lag_ns = self.sender.lag_ns(now);
        c.sync_unacked = self.sender.unacked() as u64;
        c.sync_behind = self
            .peer
            .filter(|p| p.last.role == Role::Active)
            .map_or(0, |p| p.last.sync_sent.saturating_sub(self.receiver.cum()));
        c.ready = u64::from(self.ready());
        c
    }

    /// The heartbeat this node would send now.
    pub fn heartbeat(&self) -> Heartbeat {
        let flags = Flags::default()
            .with(Flags::READY, self.ready())
            .with(Flags::PREFERRED, self.cfg.preferred)
            .with(Flags::WANT_ACTIVE, self.want_active.is_some())
            .with(
                Flags::RELEASED,
                matches!(self.handover, Handover::Released { .. }),
            )
            .with(Flags::DATA_OK, self.data_ok);
        Heartbeat {
            role: self.role,
            flags,
            node: self.cfg.node,
            counter: self.counter,
            incarnation: self.cfg.incarnation,
            epoch: self.epoch,
            sync_sent: if self.sender.stream().is_some() {
                self.sender.last_seq()
            } else {
                0
            },
            sync_acked: self.receiver.cum(),
            echo: self.echo,
        }
    }

    /// The announcement the active sends on the data ports (a heartbeat; see
    /// [`super::wire::announce_frame`]).
    pub fn announcement(&self) -> Heartbeat {
        self.heartbeat()
    }

    /// The next action, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// This node's data ports are up (`true`) or one is down.
    pub fn set_data_ok(&mut self, now: u64, ok: bool) {
        self.touch(now);
        if self.data_ok != ok {
            self.data_ok = ok;
            self.heartbeat_due = true;
            self.poll(now);
        }
    }

    /// A datagram from the peer's HA address: a heartbeat, an ack, or a sync batch whose
    /// records go to `deliver` (in the sender's order). Anything malformed is counted
    /// and dropped.
    pub fn on_datagram(&mut self, now: u64, bytes: &[u8], mut deliver: impl FnMut(Delivery<'_>)) {
        self.touch(now);
        match Message::parse(bytes) {
            Err(_) => self.counters.malformed += 1,
            Ok(Message::Heartbeat(hb)) => self.on_heartbeat(now, hb, Channel::HaLink),
            Ok(Message::Batch(b)) if b.kind == BatchKind::Ack => self.on_ack(now, b.seq),
            Ok(Message::Batch(b)) => {
                if self.role == Role::Active {
                    // Only the active sends records: an active that gets some is in
                    // a split brain that the heartbeats are resolving. Its own table
                    // is never overwritten by them.
                    self.counters.records_refused_active += b.len() as u64;
                    return;
                }
                let was_ready = self.receiver.ready();
                self.receiver.on_batch(&b, bytes, &mut deliver);
                if self.receiver.ready() != was_ready {
                    self.heartbeat_due = true;
                }
            }
        }
    }

    /// A frame of the announcement EtherType from a data port (see
    /// [`super::wire::parse_announce`]); `frame` is the whole Ethernet frame.
    pub fn on_announcement(&mut self, now: u64, frame: &[u8]) {
        self.touch(now);
        match super::wire::parse_announce(frame) {
            Some(Ok(hb)) => {
                self.counters.announcements_received += 1;
                self.on_heartbeat(now, hb, Channel::DataPort);
            }
            Some(Err(_)) | None => self.counters.malformed += 1,
        }
    }

    /// A heartbeat of the peer, from `channel`.
    pub fn on_heartbeat(&mut self, now: u64, hb: Heartbeat, channel: Channel) {
        self.touch(now);
        if hb.node == self.cfg.node {
            // Our own announcement, looped back by the segment.
            self.counters.own_heard += 1;
            return;
        }
        if channel == Channel::HaLink {
            self.counters.heartbeats_received += 1;
        }
        let previous = self.peer;
        if let Some(p) = previous {
            if hb.incarnation < p.last.incarnation {
                // A late heartbeat of the peer before its restart.
                self.counters.stale_heartbeats += 1;
                return;
            }
        }
        let restarted = previous.is_some_and(|p| p.last.incarnation != hb.incarnation);
        let revived = previous.is_none_or(|p| !p.alive) || restarted;
        let was_standby = previous.is_some_and(|p| p.last.role == Role::Standby) && !revived;
        let mut view = previous.unwrap_or(PeerView {
            last: hb,
            ha_heard: 0,
            data_heard: 0,
            alive: true,
        });
        view.last = hb;
        view.alive = true;
        match channel {
            Channel::HaLink => view.ha_heard = now,
            Channel::DataPort => view.data_heard = now,
        }
        self.peer = Some(view);
        if channel == Channel::HaLink {
            self.echo = hb.counter;
        }
        if let Some((_, first)) = self.stalled {
            // A heartbeat sent after the peer heard this node's first one since the stall
            // (serial comparison, RFC 1982), and not of a newer active: the peer did not
            // take over.
            let after = (hb.echo.wrapping_sub(first) as i32) >= 0;
            if after
                && channel == Channel::HaLink
                && !(hb.role == Role::Active && hb.epoch >= self.epoch)
            {
                self.clear_stall(now);
            }
        }
        if revived {
            self.heartbeat_due = true;
        }
        if channel == Channel::HaLink {
            self.on_ack(now, hb.sync_acked);
        }

        if hb.role == Role::Active {
            if hb.epoch < self.epoch {
                // An active of an older term: a node that was frozen or cut off and
                // has not yet heard ours. It steps down when it does; its claim
                // counts for nothing here.
                self.counters.stale_heartbeats += 1;
                self.heartbeat_due = true;
            } else {
                match self.role {
                    Role::Active if self.loses_to(&hb) => self.step_down(now, hb.epoch),
                    Role::Active => {
                        // Same epoch and this node wins the tie: the peer steps down.
                        self.heartbeat_due = true;
                    }
                    Role::Initial => self.become_standby(now, hb.epoch),
                    Role::Standby => {
                        self.epoch = hb.epoch;
                        self.active_heard = now;
                    }
                }
                if self.role == Role::Standby {
                    self.on_active_peer(now, &hb);
                }
            }
        }

        if self.role == Role::Active
            && hb.role == Role::Standby
            && (!was_standby || revived)
            && self.handover == Handover::None
        {
            // A peer that (re)joins as standby gets a bulk sync.
            self.start_stream();
        }
        if self.role == Role::Active
            && hb.role == Role::Standby
            && hb.flags.has(Flags::WANT_ACTIVE)
            && hb.flags.has(Flags::READY)
            && self.handover == Handover::None
        {
            self.start_handover(now);
        }
        self.poll(now);
    }

    /// What a standby does on its active peer's heartbeat: a release (handover) makes
    /// it take over, and so does the peer's data ports being down for a dead time.
    fn on_active_peer(&mut self, now: u64, hb: &Heartbeat) {
        if hb.flags.has(Flags::RELEASED) && self.ready() {
            self.counters.handovers += 1;
            self.take_over(now, true);
            return;
        }
        if hb.flags.has(Flags::DATA_OK) {
            self.peer_data_down_since = None;
            return;
        }
        let since = *self.peer_data_down_since.get_or_insert(now);
        // A ready standby gets a handover from the active (its final records, then a
        // release); if none comes within a dead time (this standby was still syncing,
        // or the handover stalls), it takes over with what it has.
        if self.data_ok && now.saturating_sub(since) >= self.cfg.dead_ns {
            self.counters.peer_data_down_takeovers += 1;
            self.take_over(now, true);
        }
    }

    /// Whether this active node yields to the active peer of `hb` (not older: checked).
    fn loses_to(&self, hb: &Heartbeat) -> bool {
        if hb.epoch != self.epoch {
            return hb.epoch > self.epoch;
        }
        let theirs = (hb.flags.has(Flags::PREFERRED), hb.node);
        theirs > (self.cfg.preferred, self.cfg.node)
    }

    /// Whether this node wins an election against the initial peer of `hb`.
    fn wins_election(&self, hb: &Heartbeat) -> bool {
        (self.cfg.preferred, self.cfg.node) > (hb.flags.has(Flags::PREFERRED), hb.node)
    }

    fn on_ack(&mut self, now: u64, seq: u64) {
        self.sender.on_ack(seq);
        if let Some(stream) = self.sender.take_restart() {
            self.actions.push_back(Action::StartBulk { stream });
        }
        if let Handover::Flushing { mark, .. } = self.handover {
            if self.sender.acked() >= mark {
                self.handover = Handover::Released { since: now };
                self.heartbeat_due = true;
            }
        }
    }

    /// A manual command at `now`.
    pub fn command(&mut self, now: u64, cmd: Command) -> Result<Accepted, CommandError> {
        self.touch(now);
        let peer_alive = self.peer.is_some_and(|p| p.alive);
        let result = match (cmd, self.role) {
            (_, Role::Initial) => Err(CommandError::Starting),
            (Command::Active, Role::Active) | (Command::Standby, Role::Standby) => {
                Ok(Accepted::Already)
            }
            (Command::Active, Role::Standby) if !peer_alive => {
                self.take_over(now, true);
                Ok(Accepted::Done)
            }
            (Command::Active, Role::Standby) if !self.ready() => Err(CommandError::NotReady),
            (Command::Active, Role::Standby) => {
                self.want_active = Some(now);
                self.heartbeat_due = true;
                Ok(Accepted::Started)
            }
            (Command::Standby, Role::Active) if self.handover != Handover::None => {
                Err(CommandError::Busy)
            }
            (Command::Standby, Role::Active) => {
                let peer_ready = self.peer.is_some_and(|p| {
                    p.alive && p.last.role == Role::Standby && p.last.flags.has(Flags::READY)
                });
                if !peer_ready {
                    return Err(CommandError::PeerNotReady);
                }
                self.start_handover(now);
                Ok(Accepted::Started)
            }
        };
        self.poll(now);
        result
    }

    /// The appliance stopped its data path and offered every flow's final record (after
    /// [`Action::Quiesce`]).
    pub fn quiesced(&mut self, now: u64) {
        if let Handover::Quiescing { since } = self.handover {
            let mark = self.sender.flush();
            self.handover = Handover::Flushing { since, mark };
            self.on_ack(now, self.sender.acked());
        }
    }

    /// A flow's record from a worker. `false`: not sent (no standby to sync, or lost
    /// and counted; see [`Sender::offer`]).
    pub fn offer(&mut self, now: u64, rec: &tandem_engine::SyncRecord) -> bool {
        self.role == Role::Active && self.sender.offer(now, rec)
    }

    /// Records that can be offered now without a loss.
    pub fn sync_room(&self) -> usize {
        if self.role == Role::Active {
            self.sender.room()
        } else {
            0
        }
    }

    /// The bulk of `stream` has been offered (after [`Action::StartBulk`]).
    pub fn bulk_done(&mut self, stream: u64) {
        self.sender.bulk_done(stream);
    }

    /// Timers at `now`: elections and takeovers on silence, heartbeats, announcements,
    /// gratuitous ARPs, the handover's deadline, the sync's batching and resends.
    pub fn poll(&mut self, now: u64) {
        self.touch(now);
        let dead = self.cfg.dead_ns;
        if self
            .stalled
            .is_some_and(|(since, _)| now.saturating_sub(since) >= dead)
        {
            // Nobody answered for a dead time: the peer is gone, this node carries on.
            self.clear_stall(now);
        }
        if let Some(p) = self.peer.as_mut() {
            let heard = p.ha_heard.max(p.data_heard);
            if p.alive && now.saturating_sub(heard) >= dead {
                p.alive = false;
                self.counters.peer_losses += 1;
                self.sender.stop();
                self.heartbeat_due = true;
            }
        }
        let peer = self.peer.filter(|p| p.alive);
        match self.role {
            Role::Initial => match peer {
                None if now.saturating_sub(self.started_at) >= dead => {
                    // Nobody there: nothing to sync from.
                    self.become_active(now, false);
                }
                Some(p) if p.last.role == Role::Initial && self.wins_election(&p.last) => {
                    self.become_active(now, false);
                }
                _ => {}
            },
            Role::Standby => {
                if now.saturating_sub(self.active_heard) >= dead {
                    // No active heard on either channel for a dead time: the HA link
                    // alone being cut never gets here while the active announces
                    // itself on the data ports.
                    self.take_over(now, true);
                } else if self
                    .want_active
                    .is_some_and(|t| now.saturating_sub(t) >= self.cfg.handover_timeout_ns)
                {
                    self.want_active = None;
                    self.counters.handovers_failed += 1;
                    self.heartbeat_due = true;
                }
            }
            Role::Active => {
                let peer_ready = peer.is_some_and(|p| {
                    p.last.role == Role::Standby
                        && p.last.flags.has(Flags::READY)
                        && p.last.flags.has(Flags::DATA_OK)
                });
                if !self.data_ok && peer_ready && self.handover == Handover::None {
                    // A data port is down: hand the role to the ready standby.
                    self.start_handover(now);
                }
                self.poll_handover(now);
            }
        }
        if self.role == Role::Active {
            if now >= self.next_announce && self.owns_addresses() {
                self.actions.push_back(Action::Announce);
                self.next_announce = now.saturating_add(self.cfg.interval_ns);
            }
            if self.garps_left > 0 && now >= self.next_garp {
                self.garps_left -= 1;
                self.next_garp = now.saturating_add(self.cfg.interval_ns);
                self.actions.push_back(Action::GratuitousArp);
            }
        }
        if now >= self.next_heartbeat {
            self.heartbeat_due = true;
        }
        self.sender.poll(now);
    }

    fn poll_handover(&mut self, now: u64) {
        let since = match self.handover {
            Handover::None => return,
            Handover::Quiescing { since }
            | Handover::Flushing { since, .. }
            | Handover::Released { since } => since,
        };
        let peer_gone = !self.peer.is_some_and(|p| p.alive);
        if peer_gone || now.saturating_sub(since) >= self.cfg.handover_timeout_ns {
            // The peer did not take over: carry on as before.
            self.handover = Handover::None;
            self.counters.handovers_failed += 1;
            self.heartbeat_due = true;
            self.next_announce = now;
            self.actions.push_back(Action::Resume);
        }
    }

    /// The next datagram for the peer's HA address, in `buf` (at least 1500 bytes, or
    /// a batch's length); its length. Heartbeats first, then acks, then sync batches.
    pub fn poll_transmit(&mut self, now: u64, buf: &mut [u8]) -> Option<usize> {
        if self.heartbeat_due {
            let out = buf.get_mut(..HEARTBEAT_LEN)?;
            self.heartbeat_due = false;
            self.next_heartbeat = now.saturating_add(self.cfg.interval_ns);
            self.counter = self.counter.wrapping_add(1);
            out.copy_from_slice(&self.heartbeat().encode());
            self.counters.heartbeats_sent += 1;
            return Some(HEARTBEAT_LEN);
        }
        if self.role != Role::Active {
            if let Some(seq) = self.receiver.poll_ack() {
                let out = buf.get_mut(..BATCH_HEADER_LEN)?;
                return BatchWriter::new(out, BatchKind::Ack, seq)
                    .ok()
                    .map(BatchWriter::finish);
            }
        }
        self.sender.poll_transmit(now, buf)
    }

    fn start_stream(&mut self) {
        let stream = self.sender.start_stream();
        self.actions.push_back(Action::StartBulk { stream });
    }

    fn start_handover(&mut self, now: u64) {
        self.handover = Handover::Quiescing { since: now };
        self.actions.push_back(Action::Quiesce);
    }

    /// Becomes active at `now` (with a new epoch): on peer silence, a release, the
    /// peer's data ports down, or a command. `takeover`: the engines take over the
    /// installed flows.
    fn take_over(&mut self, now: u64, takeover: bool) {
        let heard = self.peer.map_or(0, |p| p.ha_heard.max(p.data_heard));
        self.counters.takeovers += 1;
        self.counters.last_detection_ns = now.saturating_sub(heard.max(self.active_heard));
        self.become_active(now, takeover);
    }

    fn become_active(&mut self, now: u64, takeover: bool) {
        let peer_epoch = self.peer.map_or(0, |p| p.last.epoch);
        // Saturating: a peer that claims the last epoch is not out-bid, ties decide.
        self.epoch = self.epoch.max(peer_epoch).saturating_add(1);
        self.role = Role::Active;
        self.want_active = None;
        self.handover = Handover::None;
        self.peer_data_down_since = None;
        self.stalled = None;
        self.receiver.unready();
        self.actions.push_back(Action::BecomeActive {
            epoch: self.epoch,
            takeover,
        });
        self.actions.push_back(Action::GratuitousArp);
        self.garps_left = GARP_REPEATS - 1;
        self.next_garp = now.saturating_add(self.cfg.interval_ns);
        self.next_announce = now;
        self.heartbeat_due = true;
        self.sender.stop();
        if self
            .peer
            .is_some_and(|p| p.alive && p.last.role == Role::Standby)
        {
            self.start_stream();
        }
    }

    fn become_standby(&mut self, now: u64, epoch: u64) {
        self.role = Role::Standby;
        self.stalled = None;
        self.epoch = self.epoch.max(epoch);
        self.active_heard = now;
        self.handover = Handover::None;
        self.want_active = None;
        self.garps_left = 0;
        self.sender.stop();
        self.heartbeat_due = true;
        self.actions
            .push_back(Action::BecomeStandby { epoch: self.epoch });
    }

    /// An active node that heard an active peer of a newer term (or one that wins
    /// the tie) steps down at once: the fence of a split brain.
    fn step_down(&mut self, now: u64, epoch: u64) {
        if self.handover == Handover::None {
            self.counters.step_downs += 1;
        }
        self.become_standby(now, epoch);
    }
}
