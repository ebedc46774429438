//! The appliance pair in the runtime (DESIGN §6b, issue #17): the control core's
//! [`Pair`] drives the protocol node on the HA link ([`HaLink`]) and connects it to the
//! workers; each worker's [`WorkerSync`] is its end.
//!
//! - **Records out.** A worker drains its engine's outbox (`Engine::drain_sync`: records
//!   made at each flow event and refresh) into its ring to the control core, which offers
//!   them to the node as the sync window has room. A ring that is full leaves them in
//!   the engine's outbox, which drops and counts when it is full in turn: the
//!   transport's bulk resync covers a loss, a worker never waits.
//! - **Records in.** The control core routes each record from the peer to the worker that
//!   owns its flow *here*, by this appliance's own affinity (the peer may run another
//!   number of workers), over that worker's ring from the control core; the worker
//!   installs it (`Engine::install_flow`) between its bursts.
//! - **Orders** travel on that same ring, after the records before them: a takeover
//!   (`Engine::takeover`: the installed flows are kicked; an install never overwrites a
//!   flow carried since) must come after every record routed before it, which a separate
//!   command ring would not keep.
//! - **Bulk sync** (a peer joins, or records were lost) and the **final records** of a
//!   handover: every worker walks its table, a bounded number of slots a pass, and says
//!   when it is done; when all are, the node is told.
//! - **The data path**: while this appliance is not the active one (standby, a
//!   handover's quiesce, a suspended stall), each worker drops what it receives, runs no
//!   engine timer, and so sends nothing on the data ports from its engine
//!   ([`WorkerSync::carrying`]).
//!
//! The rings are bounded `std::sync::mpsc::sync_channel`s: preallocated slots, no lock
//! on the way, `try_send`/`try_recv` only (neither side ever blocks).

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;

use tandem_control::ha::{Action, Delivery, HaLink};
use tandem_engine::affinity::{owner, ClientEnd, RssModel};
use tandem_engine::{HashKey, SyncRecord};
use tandem_wire::{build, ArpPacket, MacAddr};

/// Messages in each ring between a worker and the control core, each way.
pub const SYNC_RING: usize = 8192;
/// Records the control core takes from one worker's ring per pass, at most.
const FROM_WORKER_PER_PASS: usize = 1024;
/// The stream number a handover's final records are walked under.
const FINAL_RECORDS: u64 = u64::MAX;

/// From a worker to the control core.
// Records travel by value in the ring's preallocated slots: a box would allocate each.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug)]
pub enum ToPair {
    /// A flow's record.
    Record(SyncRecord),
    /// The worker has walked its whole table for bulk `stream`.
    BulkDone(u64),
}

/// From the control core to a worker.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug)]
pub enum ToWorker {
    /// A record from the peer, for this worker's table.
    Install(SyncRecord),
    /// This appliance takes over from its peer: the installed flows are kicked, and
    /// segments of no flow are dropped for `grace_ns`.
    Takeover {
        /// The grace time.
        grace_ns: u64,
    },
    /// Walk the whole table into the ring, then say [`ToPair::BulkDone`] with `stream`.
    Bulk {
        /// The bulk's stream.
        stream: u64,
    },
    /// The peer's bulk sync starts: the records that follow, up to [`ToWorker::BulkEnd`],
    /// are its whole table.
    BulkStart,
    /// The peer's bulk sync is complete: a flow it did not refresh since
    /// [`ToWorker::BulkStart`] is no longer the peer's, and goes.
    BulkEnd,
    /// This appliance is the standby now (`Engine::stand_by`): records replace flows.
    StandBy,
}

/// A worker's end of the pair.
pub struct WorkerSync {
    /// Records and bulk ends to the control core.
    pub to_pair: SyncSender<ToPair>,
    /// Records and orders from the control core.
    pub from_pair: Receiver<ToWorker>,
    /// Whether this appliance carries traffic now (active, not quiesced or suspended).
    pub carrying: Arc<AtomicBool>,
}

/// The control core's end of one worker's rings.
struct WorkerEnd {
    from_worker: Receiver<ToPair>,
    to_worker: SyncSender<ToWorker>,
    /// A takeover this worker has not been given yet (its ring was full).
    takeover_due: bool,
}

/// How this appliance finds the worker that owns a flow (`crate::affinity`).
#[derive(Clone, Debug)]
pub enum Route {
    /// One worker.
    Single,
    /// The hand-off path: [`tandem_engine::affinity::owner`] over `workers`.
    HandOff {
        /// The workers.
        workers: usize,
        /// The start's flow hash key.
        key: HashKey,
    },
    /// The RSS path: the queue the ports' hash gives the client end, and the worker
    /// that polls each queue.
    Rss {
        /// The ports' hash.
        model: RssModel,
        /// Worker of each queue index.
        worker_of_queue: Vec<usize>,
    },
}

impl Route {
    /// The worker that owns the flow of client `ip`:`port`.
    pub fn owner(&self, ip: u32, port: u16) -> usize {
        match self {
            Route::Single => 0,
            Route::HandOff { workers, key } => owner(ClientEnd { ip, port }, *workers, key),
            Route::Rss {
                model,
                worker_of_queue,
            } => model
                .queue_of(ClientEnd { ip, port })
                .and_then(|q| worker_of_queue.get(usize::from(q)).copied())
                .unwrap_or(0),
        }
    }
}

tandem_engine::counters! {
    /// Counters of the runtime's part of the pair (the node's own are `HaCounters`).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct PairCounters {
        /// Records from the peer handed to the worker that owns their flow here.
        records_routed: counter "tandem_ha_records_routed_total",
        /// Records and bulk marks from the peer dropped because a worker's ring was full.
        install_ring_full: counter "tandem_ha_install_ring_full_total",
        /// Records from the workers not offered: this appliance was not active, or had
        /// no standby peer to sync (a peer that joins gets a bulk sync instead).
        records_unsent: counter "tandem_ha_records_unsent_total",
        /// Records from the workers the node did not take (lost to a full window; the
        /// node counts them too and resyncs).
        records_refused: counter "tandem_ha_records_refused_total",
        /// Takeovers handed to the workers (one per worker and takeover).
        worker_takeovers: counter "tandem_ha_worker_takeovers_total",
    }
}

/// A walk of every worker's table: which have finished.
struct Walk {
    stream: u64,
    done: Vec<bool>,
}

/// The control core's side of the pair: the node on the HA link and the workers' rings.
pub struct Pair {
    link: HaLink,
    ends: Vec<WorkerEnd>,
    route: Route,
    carrying: Arc<AtomicBool>,
    grace_ns: u64,
    walk: Option<Walk>,
    /// A handover's final records: walked after the bulk in progress, if any.
    quiesce_due: bool,
    counters: PairCounters,
}

impl Pair {
    /// The pair over `link` for `workers` workers whose flows are routed by `route`; a
    /// takeover drops segments of unknown flows for `grace_ns`. Returns each worker's end.
    pub fn new(
        link: HaLink,
        workers: usize,
        route: Route,
        grace_ns: u64,
    ) -> (Pair, Vec<WorkerSync>) {
        // A node starts carrying nothing: it becomes active by the election.
        let carrying = Arc::new(AtomicBool::new(false));
        let mut ends = Vec::with_capacity(workers);
        let mut syncs = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (to_pair, from_worker) = sync_channel(SYNC_RING);
            let (to_worker, from_pair) = sync_channel(SYNC_RING);
            ends.push(WorkerEnd {
                from_worker,
                to_worker,
                takeover_due: false,
            });
            syncs.push(WorkerSync {
                to_pair,
                from_pair,
                carrying: carrying.clone(),
            });
        }
        let pair = Pair {
            link,
            ends,
            route,
            carrying,
            grace_ns,
            walk: None,
            quiesce_due: false,
            counters: PairCounters::default(),
        };
        (pair, syncs)
    }

    /// The link (status, commands).
    pub fn link(&self) -> &HaLink {
        &self.link
    }

    /// The link, to command it.
    pub fn link_mut(&mut self) -> &mut HaLink {
        &mut self.link
    }

    /// The runtime's counters of the pair.
    pub fn counters(&self) -> PairCounters {
        self.counters
    }

    /// Whether this appliance carries traffic now.
    pub fn carrying(&self) -> bool {
        self.carrying.load(Ordering::Relaxed)
    }

    /// One pass at `now`: the workers' records to the node, the peer's to their workers,
    /// the node's timers and datagrams; what the node asks of the appliance's ports
    /// (gratuitous ARPs, announcements, the role) is appended to `actions` for the
    /// control core. The rest (takeover, bulk, quiesce, the data path) is done here.
    pub fn pass(&mut self, now: u64, actions: &mut Vec<Action>) {
        self.take_from_workers(now);
        let (ends, route, counters) = (&self.ends, &self.route, &mut self.counters);
        self.link.poll(now, |d| match d {
            Delivery::Record(r) => {
                let w = route.owner(r.key.client_ip, r.key.client_port);
                let Some(end) = ends.get(w) else {
                    return;
                };
                match end.to_worker.try_send(ToWorker::Install(*r)) {
                    Ok(()) => counters.records_routed += 1,
                    Err(_) => counters.install_ring_full += 1,
                }
            }
            // To every worker, in order with the records: each marks its table at the
            // start and removes at the end what the bulk did not refresh. A mark lost to
            // a full ring leaves stale flows until the next bulk; an end lost, the same.
            Delivery::BulkStart | Delivery::BulkDone => {
                let msg = match d {
                    Delivery::BulkStart => ToWorker::BulkStart,
                    _ => ToWorker::BulkEnd,
                };
                for end in ends {
                    if end.to_worker.try_send(msg).is_err() {
                        counters.install_ring_full += 1;
                    }
                }
            }
        });
        while let Some(a) = self.link.node_mut().poll_action() {
            self.act(a, actions);
        }
        self.give_takeovers();
        // A handover waits for a bulk in progress to end (its records are as final).
        if self.quiesce_due && self.walk.is_none() {
            self.quiesce_due = false;
            self.start_walk(FINAL_RECORDS);
        }
    }

    /// What the workers sent: offered to the node while its window has room (the rest
    /// waits in the rings); a finished walk of every worker tells the node.
    fn take_from_workers(&mut self, now: u64) {
        use tandem_control::ha::Role;
        let node = self.link.node();
        let standby_peer = node
            .peer()
            .is_some_and(|p| p.alive && p.last.role == Role::Standby);
        // Offered only to a standby peer; otherwise taken and dropped, so that the rings
        // and the engines' outboxes do not fill while there is nobody to sync.
        let active = node.role() == Role::Active && standby_peer;
        for w in 0..self.ends.len() {
            for _ in 0..FROM_WORKER_PER_PASS {
                if active && self.link.node().sync_room() == 0 {
                    break;
                }
                let msg = match self.ends[w].from_worker.try_recv() {
                    Ok(m) => m,
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                };
                match msg {
                    ToPair::Record(_) if !active => self.counters.records_unsent += 1,
                    ToPair::Record(r) => {
                        if !self.link.node_mut().offer(now, &r) {
                            self.counters.records_refused += 1;
                        }
                    }
                    ToPair::BulkDone(stream) => self.walked(w, stream, now),
                }
            }
        }
    }

    /// Worker `w` finished walking its table for `stream`.
    fn walked(&mut self, w: usize, stream: u64, now: u64) {
        let Some(walk) = self.walk.as_mut() else {
            return;
        };
        if walk.stream != stream {
            return;
        }
        if let Some(d) = walk.done.get_mut(w) {
            *d = true;
        }
        if walk.done.iter().all(|&d| d) {
            self.walk = None;
            if stream == FINAL_RECORDS {
                self.link.node_mut().quiesced(now);
            } else {
                self.link.node_mut().bulk_done(stream);
            }
        }
    }

    /// Every worker walks its table for `stream`. Orders on a full ring are dropped:
    /// with [`SYNC_RING`] slots per worker and the control core taking each pass what
    /// it routes, a ring full of installs means the worker is far behind; the walk then
    /// never ends and the node's handover times out, or the next bulk replaces it.
    fn start_walk(&mut self, stream: u64) {
        for end in &self.ends {
            let _ = end.to_worker.try_send(ToWorker::Bulk { stream });
        }
        self.walk = Some(Walk {
            stream,
            done: vec![false; self.ends.len()],
        });
    }

    fn act(&mut self, a: Action, actions: &mut Vec<Action>) {
        match a {
            Action::BecomeActive { takeover, .. } => {
                if takeover {
                    for end in &mut self.ends {
                        end.takeover_due = true;
                    }
                }
                self.carrying.store(true, Ordering::Relaxed);
                actions.push(a);
            }
            Action::BecomeStandby { .. } => {
                self.carrying.store(false, Ordering::Relaxed);
                self.walk = None;
                self.quiesce_due = false;
                for end in &mut self.ends {
                    end.takeover_due = false;
                    if end.to_worker.try_send(ToWorker::StandBy).is_err() {
                        self.counters.install_ring_full += 1;
                    }
                }
                actions.push(a);
            }
            Action::StartBulk { stream } => self.start_walk(stream),
            Action::Quiesce => {
                self.carrying.store(false, Ordering::Relaxed);
                self.quiesce_due = true;
            }
            Action::Suspend => self.carrying.store(false, Ordering::Relaxed),
            Action::Resume => self.carrying.store(true, Ordering::Relaxed),
            Action::GratuitousArp | Action::Announce => actions.push(a),
        }
    }

    /// Takeovers due, to each worker whose ring has room (the rest next pass).
    fn give_takeovers(&mut self) {
        let grace_ns = self.grace_ns;
        for end in &mut self.ends {
            if !end.takeover_due {
                continue;
            }
            match end.to_worker.try_send(ToWorker::Takeover { grace_ns }) {
                Ok(()) => {
                    end.takeover_due = false;
                    self.counters.worker_takeovers += 1;
                }
                Err(TrySendError::Full(_)) => {}
                Err(TrySendError::Disconnected(_)) => end.takeover_due = false,
            }
        }
    }
}

/// Whether the control core answers an ARP request or an echo request for `target` on a
/// port whose floating addresses are `floating`: one that floats is answered only by the
/// appliance that owns them (the active; `owns`), every other one always.
pub fn answers_for(target: Ipv4Addr, floating: &[Ipv4Addr], owns: bool) -> bool {
    owns || !floating.contains(&target)
}

/// A gratuitous ARP for `ip` at `mac` into `buf`: a broadcast request whose sender and
/// target are both `ip` (an ARP announcement, RFC 5227 §2.3), which makes every host and
/// switch of the segment send `ip`'s traffic to `mac`. Returns its length.
///
/// # Errors
///
/// `buf` is shorter than a minimum frame.
pub fn gratuitous_arp(buf: &mut [u8], mac: MacAddr, ip: Ipv4Addr) -> tandem_wire::Result<usize> {
    build::arp(
        buf,
        ArpPacket::<&[u8]>::REQUEST,
        MacAddr::BROADCAST,
        mac,
        ip,
        MacAddr::ZERO,
        ip,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::ArpSeen;

    const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
    const GATEWAY: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const OWN: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

    #[test]
    fn only_the_owner_answers_for_a_floating_address_and_anyone_for_its_own() {
        let floating = [VIP, GATEWAY];
        for ip in floating {
            assert!(answers_for(ip, &floating, true));
            assert!(!answers_for(ip, &floating, false), "{ip}");
        }
        assert!(answers_for(OWN, &floating, false));
        assert!(answers_for(OWN, &floating, true));
    }

    #[test]
    fn a_gratuitous_arp_is_a_broadcast_request_from_and_for_the_address() {
        let mac = MacAddr([2, 0, 0, 0, 0, 9]);
        let mut buf = [0u8; 64];
        let n = gratuitous_arp(&mut buf, mac, VIP).expect("room");
        assert_eq!(&buf[..6], &[0xff; 6], "broadcast");
        let seen = ArpSeen::parse(&buf[..n]).expect("an ARP frame");
        assert_eq!(seen.op, ArpPacket::<&[u8]>::REQUEST);
        assert_eq!((seen.sender_ip, seen.target_ip), (VIP, VIP));
        assert_eq!(seen.sender_mac, mac);
        assert!(gratuitous_arp(&mut [0u8; 20], mac, VIP).is_err());
    }

    #[test]
    fn the_route_of_a_record_is_this_appliances_own_owner_of_the_client() {
        let key = HashKey::fixed(3, 4);
        let route = Route::HandOff { workers: 3, key };
        let mut seen = [0usize; 3];
        for port in 1000..1300u16 {
            let w = route.owner(0xc612_0002, port);
            assert_eq!(
                w,
                owner(
                    ClientEnd {
                        ip: 0xc612_0002,
                        port
                    },
                    3,
                    &key
                )
            );
            seen[w] += 1;
        }
        assert!(seen.iter().all(|&n| n > 50), "{seen:?}");
        assert_eq!(Route::Single.owner(1, 2), 0);
        let rss = Route::Rss {
            model: RssModel::new(tandem_engine::affinity::RSS_DEFAULT_KEY.to_vec(), 128, 2),
            worker_of_queue: vec![1, 0],
        };
        let mut seen = [0usize; 2];
        for port in 1000..1300u16 {
            seen[rss.owner(0xc612_0002, port)] += 1;
        }
        assert!(seen.iter().all(|&n| n > 50), "{seen:?}");
    }
}
