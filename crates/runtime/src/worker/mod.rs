//! The worker lcore: the burst loop rx → parse → engine → tx (DESIGN §4), on the receive
//! queues the profile's worker plan gives it, with its own transmit queue on each port.
//!
//! A pass of [`Worker::pass`] reads as the l3fwd spine: receive → steer (hand-off) →
//! handle → flush → timers → horizon → commands → publish. The worker is generic over its
//! [`Ports`] (queues, rings, pool) and its clock: [`DpdkPorts`] in production, plain
//! memory in the golden test (`golden.rs`), which runs this same loop.
//!
//! On the packet path: no lock, no allocation (every buffer and vector is sized before
//! the loop), no system call and no log. Frames for the appliance itself go to the
//! control core through the worker's [`Gate`] (a token bucket per lane): probe answers and
//! ARP replies over the answer ring, everything else over the control ring, what finds
//! no token dropped and counted; signals over another ring; counters are published into
//! the worker's [`WorkerStats`] slot every millisecond.
//!
//! Added latency (DESIGN §4): each receive burst is stamped with the clock when it
//! arrives, every frame the engine puts out while processing it carries that stamp into
//! the transmit buffer ([`tx::StampedBurst`]), and the flush records, for each frame the
//! queue took, the time from the stamp to the `tx_burst` call in the worker's own
//! histogram. Frames not caused by a received burst (the engine's timers, frames the
//! control core sends through this worker) carry no stamp and are not recorded. Every
//! 100 ms the histogram is folded into the worker's slot without waiting (a busy lock
//! defers the fold to the next pass), for the metrics and `tandem status`. Where the
//! transmit buffers are flushed, and why, is in [`tx`].
//!
//! Flow affinity on the hand-off path ([`HandOff`], `tandem_engine::affinity`): when the
//! ports cannot hash on the client's fields, each received frame's owner is computed
//! here; frames owned by another worker go to it over a single-producer
//! single-consumer ring, carrying their receive stamp, and each pass processes what the
//! other workers passed to this one, as if received.

pub mod ports;
pub mod tx;

#[cfg(test)]
mod golden;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tandem_dpdk::ring::{Consumer, Producer};
use tandem_dpdk::{Burst, Mbuf, Mempool, RxQueue, TxQueue};
use tandem_engine::affinity::frame_owner;
use tandem_engine::{Engine, EngineConfig, HashKey, Output, PacketBuf, ReplicaTable, Side, BURST};

use crate::buf::MbufPool;
use crate::clock::Clock;
use crate::gate::{Admit, Gate, Lane};
use crate::listing::{FlowList, LIST_SLOTS_PER_PASS};
use crate::msg::{Command, EngineChange, Mailbox, SignalMsg};
use crate::pair::{ToPair, ToWorker, WorkerSync};
use crate::stats::{
    histogram, IoCounters, WorkerStats, LATENCY_FOLD_INTERVAL_NS, LATENCY_MAX_NS,
    PUBLISH_INTERVAL_NS,
};

use ports::side_index;
pub use ports::{ControlRing, DpdkPorts, Frame, Now, Ports};
use tx::TxSide;

/// Transmit slots of the engine's output per call: a full burst copied to three replicas
/// plus synthesised segments, with room to spare.
const TX_CAPACITY: usize = BURST * 8;
/// The longest a frame is assumed to wait in a receive ring while the worker is behind
/// (thousands of descriptors drained at a few hundred thousand frames a second, on the
/// slowest ports Tandem runs on). Bounds how long a backlog defers probe timeouts.
pub const MAX_RX_BACKLOG_NS: u64 = 100_000_000;

/// Frames in each hand-off ring (per ordered pair of workers and side): 32 bursts of the
/// sender's, so that a short stall of the owner does not lose frames. The profile's mbuf
/// budget counts them.
pub const HANDOFF_RING_SIZE: u32 = tandem_config::HANDOFF_RING_FRAMES;
/// Bursts an owner takes from one hand-off ring per pass, at most.
const HANDOFF_BURSTS_PER_PASS: usize = 4;
/// Pair sync: records from the peer installed per pass, at most (a few microseconds).
const SYNC_INSTALLS_PER_PASS: usize = 64;
/// Pair sync: records of the engine's outbox sent per pass, at most.
const SYNC_OUT_PER_PASS: usize = 256;
/// Pair sync: table slots a whole-table walk looks at per pass, at most.
const SYNC_WALK_SLOTS_PER_PASS: usize = 1024;

/// A worker's ends of the hand-off rings (DESIGN §4, flow affinity without RSS).
pub struct HandOff {
    /// How many workers share the flows.
    pub workers: usize,
    /// The appliance's own port addresses (outside, inside), host order: TCP to them is
    /// a health-probe answer, kept by the receiving worker for the control core.
    pub own: [u32; 2],
    /// The start's hash key: every worker computes the same owner.
    pub key: HashKey,
    /// To each worker, by worker id, a ring per side (outside, inside); `None` for this
    /// worker itself.
    pub to: Vec<Option<[Producer<Mbuf>; 2]>>,
    /// From each other worker, a ring per side.
    pub from: Vec<(Side, Consumer<Mbuf>)>,
}

/// Everything a worker owns, moved to its lcore.
pub struct WorkerIo {
    /// Worker index.
    pub id: usize,
    /// Its lcore.
    pub lcore: u32,
    /// The receive queues it polls, with their side.
    pub rx: Vec<(Side, RxQueue)>,
    /// Its transmit queue on the outside port.
    pub tx_outside: TxQueue,
    /// Its transmit queue on the inside port.
    pub tx_inside: TxQueue,
    /// Frames for the control core (all but probe answers and ARP replies).
    pub to_control: Producer<Mbuf>,
    /// Probe answers and ARP replies for the control core (see [`crate::gate`]).
    pub answers: Producer<Mbuf>,
    /// What may go to the control core.
    pub gate: Gate,
    /// Signals for the control core.
    pub signals: Producer<SignalMsg>,
    /// Orders from the control core.
    pub commands: Consumer<Command>,
    /// Frames the control core asks this worker to send (outside, inside), when the
    /// control core has no transmit queue of its own on that port.
    pub control_tx: [Option<Consumer<Mbuf>>; 2],
    /// Where its counters are published.
    pub stats: Arc<WorkerStats>,
    /// Where it lists its flows for `tandem flows`.
    pub flow_list: Arc<FlowList>,
    /// Where the control core leaves its engine changes (`tandem reload`).
    pub mailbox: Arc<Mailbox>,
    /// The mempool for copies and synthesised segments.
    pub pool: Mempool,
    /// Hand-off rings, when flows are not steered to their owner by the ports.
    pub handoff: Option<HandOff>,
    /// Its end of the appliance pair, when the profile has an `ha` section.
    pub sync: Option<WorkerSync>,
}

/// How a worker finds the owner of a frame on the hand-off path.
#[derive(Clone, Copy, Debug)]
pub struct Steering {
    /// This worker's id.
    pub me: usize,
    /// How many workers share the flows.
    pub workers: usize,
    /// The appliance's own port addresses (outside, inside), host order.
    pub own: [u32; 2],
    /// The start's hash key.
    pub key: HashKey,
}

/// What a worker shares with the control core.
pub struct Shared {
    /// Where its counters and its health horizon are published.
    pub stats: Arc<WorkerStats>,
    /// Where it lists its flows for `tandem flows`.
    pub flow_list: Arc<FlowList>,
    /// Where the control core leaves its engine changes (`tandem reload`).
    pub mailbox: Arc<Mailbox>,
}

/// A worker: its engine, its ports, and the buffers of one pass, all sized before the
/// first.
pub struct Worker<P: Ports, C: Now> {
    engine: Engine<<P::Frame as Frame>::Buf>,
    ports: P,
    clock: C,
    gate: Gate,
    shared: Shared,
    steering: Option<Steering>,
    /// The engine's output of one call.
    out: Output<<P::Frame as Frame>::Buf>,
    /// Frames for the engine, owned by this worker.
    bufs: Vec<<P::Frame as Frame>::Buf>,
    /// One receive (or ring) burst.
    rx: Burst<P::Frame>,
    /// Frames for other workers, by worker and side (hand-off path only).
    outgoing: Vec<[Burst<P::Frame>; 2]>,
    /// Frames for the control core, by ring, while they are gated.
    to_answers: Burst<P::Frame>,
    to_control: Burst<P::Frame>,
    tx: TxSide<P::Frame>,
    io: IoCounters,
    next_publish: u64,
    next_fold: u64,
    /// The health horizon last published.
    seen_until: u64,
    /// A `tandem flows` request whose list was locked: filled on a later pass.
    list_pending: bool,
    /// A [`Command::Reconfigure`] whose mailbox was busy.
    reconfig_pending: bool,
    /// Its end of the appliance pair, if it is one of a pair ([`crate::pair`]).
    sync: Option<WorkerSync>,
    /// A whole-table walk in progress: its stream and the next slot.
    walk: Option<(u64, usize)>,
    /// When the peer's bulk sync in progress started (this worker's clock).
    bulk_since: Option<u64>,
    /// The removal of what a finished bulk did not refresh: since when, the next slot.
    prune: Option<(u64, usize)>,
}

impl<P: Ports, C: Now> Worker<P, C> {
    /// A worker with its engine made from `cfg`; everything the loop needs is allocated
    /// here.
    pub fn new(
        cfg: EngineConfig,
        replicas: Arc<ReplicaTable>,
        ports: P,
        clock: C,
        gate: Gate,
        shared: Shared,
        steering: Option<Steering>,
    ) -> Self {
        let outgoing = match &steering {
            Some(s) => (0..s.workers)
                .map(|_| [Burst::new(), Burst::new()])
                .collect(),
            None => Vec::new(),
        };
        Worker {
            engine: Engine::new(cfg, replicas),
            ports,
            clock,
            gate,
            shared,
            steering,
            out: Output::with_capacity(TX_CAPACITY, BURST, 64),
            bufs: Vec::with_capacity(BURST),
            rx: Burst::new(),
            outgoing,
            to_answers: Burst::new(),
            to_control: Burst::new(),
            tx: TxSide::new(histogram(LATENCY_MAX_NS)),
            io: IoCounters::default(),
            next_publish: 0,
            next_fold: 0,
            seen_until: 0,
            list_pending: false,
            reconfig_pending: false,
            sync: None,
            walk: None,
            bulk_since: None,
            prune: None,
        }
    }

    /// Makes this worker one of a pair's: its engine's records go out through `sync`,
    /// the peer's come in, and it carries traffic only while `sync` says so. The engine
    /// must have been configured to export (`EngineConfig::sync`).
    pub fn set_sync(&mut self, sync: WorkerSync) {
        self.sync = Some(sync);
    }

    /// The engine (tests).
    #[cfg(test)]
    pub(crate) fn engine_mut(&mut self) -> &mut Engine<<P::Frame as Frame>::Buf> {
        &mut self.engine
    }

    /// Passes until `running` turns false, then sends what is buffered and publishes.
    pub fn run(&mut self, running: &AtomicBool) {
        while running.load(Ordering::Relaxed) {
            self.pass();
        }
        self.finish();
    }

    /// One pass of the loop.
    pub fn pass(&mut self) {
        let now = self.clock.now_ns();
        if self
            .sync
            .as_ref()
            .is_some_and(|s| !s.carrying.load(Ordering::Relaxed))
        {
            self.inactive_pass(now);
            return;
        }
        // Receive, steer and handle each queue's burst; out before the next queue is read.
        let mut drained = true;
        for q in 0..self.ports.rx_sides().len() {
            let side = self.ports.rx_sides()[q];
            let n = self.ports.rx_burst(q, &mut self.rx);
            drained &= n < self.rx.capacity();
            if n == 0 {
                continue;
            }
            self.io.rx_bursts += 1;
            // This burst's receive time: what the engine sends for it is measured from here.
            let stamp = self.clock.now_ns();
            self.steer(side, stamp);
            self.handle(side, now, stamp);
            self.tx
                .flush_all(&mut self.ports, &self.clock, &mut self.io);
        }
        // What other workers received for this one's flows, as if received here.
        self.handle_handed_in(now);
        // Out before the timers run: a sweep batch's time is not added to their latency.
        self.tx
            .flush_all(&mut self.ports, &self.clock, &mut self.io);
        self.timers(now);
        self.tx
            .flush_all(&mut self.ports, &self.clock, &mut self.io);
        self.horizon(now, drained);
        self.commands(now);
        self.sync_pass(now);
        self.publish(now);
    }

    /// A pass of a worker of a pair's appliance that is not carrying traffic: what
    /// arrives is dropped (the active peer carries it; a handover's endpoints resend
    /// it), but for ARP and the active's announcements, which go to the control core
    /// through the gate as on the active (by the announcements it hears its peer on the
    /// data ports, which the dead time counts besides the HA link; by ARP it learns its
    /// neighbours and answers for its own port addresses). No engine timer runs, so
    /// nothing leaves by the engine; the control core's frames still go out (it decides
    /// what a standby sends), and records come in.
    fn inactive_pass(&mut self, now: u64) {
        for q in 0..self.ports.rx_sides().len() {
            let side = self.ports.rx_sides()[q];
            if self.ports.rx_burst(q, &mut self.rx) == 0 {
                continue;
            }
            for f in self.rx.drain() {
                let room = self.out.to_control.len() < self.out.to_control.capacity();
                if !(room && for_control_core(f.bytes())) {
                    // Dropping the frame frees it.
                    self.io.pair_inactive_drops += 1;
                    continue;
                }
                match f.into_buf() {
                    Ok(b) => self.out.to_control.push(b),
                    Err(_) => self.io.nonlinear += 1,
                }
            }
            self.gate_to_control(side, now);
        }
        for i in 0..self.ports.handoff_inputs() {
            let (_, n) = self.ports.handed_in(i, &mut self.rx);
            self.io.pair_inactive_drops += n as u64;
            self.rx.clear();
        }
        for side in [Side::Outside, Side::Inside] {
            if self.ports.control_frames(side, &mut self.rx) > 0 {
                for f in self.rx.drain() {
                    self.tx
                        .push(&mut self.ports, &self.clock, side, f, 0, &mut self.io);
                }
            }
        }
        self.tx
            .flush_all(&mut self.ports, &self.clock, &mut self.io);
        // Nothing waits unseen: the horizon moves on.
        self.horizon(now, true);
        self.commands(now);
        self.sync_pass(now);
        self.publish(now);
    }

    /// The pair's sync between bursts: the peer's records and the control core's
    /// orders in (bounded per pass), the engine's records out while the ring has room
    /// (the rest waits in the engine's outbox), and a step of a whole-table walk.
    fn sync_pass(&mut self, now: u64) {
        let Some(sync) = self.sync.as_ref() else {
            return;
        };
        for _ in 0..SYNC_INSTALLS_PER_PASS {
            let Ok(msg) = sync.from_pair.try_recv() else {
                break;
            };
            match msg {
                ToWorker::Install(rec) => {
                    self.io.sync_installs += 1;
                    // A refusal is counted by the engine (`sync_installs_refused`).
                    let _ = self.engine.install_flow(&rec, now);
                }
                ToWorker::Takeover { grace_ns } => self.engine.takeover(now, grace_ns),
                ToWorker::Bulk { stream } => self.walk = Some((stream, 0)),
                ToWorker::BulkStart => {
                    self.bulk_since = Some(now);
                    self.prune = None;
                }
                ToWorker::BulkEnd => {
                    self.prune = self.bulk_since.take().map(|since| (since, 0));
                }
                ToWorker::StandBy => self.engine.stand_by(),
            }
        }
        if let Some((since, from)) = self.prune {
            self.prune = self
                .engine
                .prune_unsynced(since, from, SYNC_WALK_SLOTS_PER_PASS)
                .map(|next| (since, next));
        }
        let to_pair = &sync.to_pair;
        self.engine.drain_sync(SYNC_OUT_PER_PASS, |r| {
            to_pair.try_send(ToPair::Record(*r)).is_ok()
        });
        let Some((stream, mut slot)) = self.walk else {
            return;
        };
        let capacity = self.engine.flows().capacity();
        let end = capacity.min(slot.saturating_add(SYNC_WALK_SLOTS_PER_PASS));
        while slot < end {
            let Ok(idx) = u32::try_from(slot) else {
                slot = capacity;
                break;
            };
            if let Some(rec) = self
                .engine
                .export_slot(idx, tandem_engine::SyncEvent::Refresh)
            {
                if to_pair.try_send(ToPair::Record(rec)).is_err() {
                    // The ring is full: this slot again next pass.
                    self.walk = Some((stream, slot));
                    return;
                }
                self.io.sync_walked += 1;
            }
            slot += 1;
        }
        if slot < capacity {
            self.walk = Some((stream, slot));
        } else if to_pair.try_send(ToPair::BulkDone(stream)).is_ok() {
            self.walk = None;
        } else {
            self.walk = Some((stream, capacity));
        }
    }

    /// At the end: what is buffered goes out, the counters and latencies are published.
    pub fn finish(&mut self) {
        self.tx
            .flush_all(&mut self.ports, &self.clock, &mut self.io);
        self.io.alloc_failures = self.ports.alloc_failures();
        self.shared.stats.publish(self.engine.counters(), &self.io);
        self.shared.stats.fold_latency(&mut self.tx.latency);
    }

    /// Steer: the received burst's frames this worker owns become engine buffers; on the
    /// hand-off path the others go to their owners' rings, with the burst's stamp.
    #[inline]
    fn steer(&mut self, side: Side, stamp: u64) {
        let Some(s) = self.steering else {
            for f in self.rx.drain() {
                match f.into_buf() {
                    Ok(b) => self.bufs.push(b),
                    Err(_) => self.io.nonlinear += 1,
                }
            }
            return;
        };
        let i = side_index(side);
        for mut f in self.rx.drain() {
            let owner = frame_owner(f.bytes(), side, s.own, s.me, s.workers, &s.key);
            if owner == s.me {
                match f.into_buf() {
                    Ok(b) => self.bufs.push(b),
                    Err(_) => self.io.nonlinear += 1,
                }
            } else if let Some(b) = self.outgoing.get_mut(owner) {
                f.set_stamp(stamp);
                // It holds a whole receive burst; should it not, the frame is freed and
                // counted as a full ring.
                if b[i].push(f).is_err() {
                    self.io.handoff_ring_full += 1;
                }
            }
        }
        for (to, bursts) in self.outgoing.iter_mut().enumerate() {
            for (side, burst) in [Side::Outside, Side::Inside].into_iter().zip(bursts) {
                if burst.is_empty() {
                    continue;
                }
                let n = burst.len();
                self.ports.hand_off(to, side, burst);
                self.io.handed_off += (n - burst.len()) as u64;
                self.io.handoff_ring_full += burst.len() as u64;
                burst.clear();
            }
        }
    }

    /// Handle: the engine's burst path over what `steer` kept (received on `side`,
    /// stamped `stamp`), and its output drained.
    #[inline]
    fn handle(&mut self, side: Side, now: u64, stamp: u64) {
        let pool = self.ports.pool();
        self.engine
            .process_burst(side, now, &mut self.bufs, pool, &mut self.out);
        self.drain(side, now, stamp);
    }

    /// The engine's output: frames to the transmit buffers (stamped `stamp`), frames for
    /// the control core (received on `side`, gated at `now`) and signals to their rings.
    #[inline]
    fn drain(&mut self, side: Side, now: u64, stamp: u64) {
        for t in self.out.tx.drain(..) {
            let frame = P::Frame::from_buf(t.buf);
            self.tx.push(
                &mut self.ports,
                &self.clock,
                t.side,
                frame,
                stamp,
                &mut self.io,
            );
        }
        self.gate_to_control(side, now);
        for s in self.out.signals.drain(..) {
            if !self.ports.signal(SignalMsg::from(&s)) {
                self.io.signal_ring_full += 1;
            }
        }
    }

    /// The engine's frames for the control core, through the gate: each to its ring, or
    /// dropped and counted when its lane has no token.
    #[inline]
    fn gate_to_control(&mut self, side: Side, now: u64) {
        if self.out.to_control.is_empty() {
            return;
        }
        for b in self.out.to_control.drain(..) {
            let (ring, burst) = match self.gate.admit(b.bytes(), side, now) {
                Admit::Answer => (ControlRing::Answers, &mut self.to_answers),
                Admit::Control => (ControlRing::Control, &mut self.to_control),
                Admit::Limited(lane) => {
                    *match lane {
                        Lane::ProbeAnswer => &mut self.io.answers_rate_limited,
                        Lane::ArpReply => &mut self.io.arp_replies_rate_limited,
                        Lane::Other => &mut self.io.control_rate_limited,
                    } += 1;
                    // Dropping the buffer frees it.
                    continue;
                }
            };
            if let Err(f) = burst.push(P::Frame::from_buf(b)) {
                to_ring(&mut self.ports, ring, burst, &mut self.io);
                // The burst is empty now.
                let _ = burst.push(f);
            }
        }
        to_ring(
            &mut self.ports,
            ControlRing::Answers,
            &mut self.to_answers,
            &mut self.io,
        );
        to_ring(
            &mut self.ports,
            ControlRing::Control,
            &mut self.to_control,
            &mut self.io,
        );
    }

    /// What other workers received for this one's flows, with their receive stamps:
    /// processed in runs of one stamp (one sender's receive burst). Up to a few bursts a
    /// ring while they come full: a faster sender does not fill it, and this worker's own
    /// queues wait little.
    fn handle_handed_in(&mut self, now: u64) {
        for _ in 0..HANDOFF_BURSTS_PER_PASS {
            let mut more = false;
            for i in 0..self.ports.handoff_inputs() {
                let (side, n) = self.ports.handed_in(i, &mut self.rx);
                if n == 0 {
                    continue;
                }
                more |= self.rx.len() == self.rx.capacity();
                self.io.handoff_received += self.rx.len() as u64;
                let mut run_stamp = 0;
                let mut frames = core::mem::replace(&mut self.rx, Burst::new());
                for f in frames.drain() {
                    let stamp = f.stamp();
                    if stamp != run_stamp && !self.bufs.is_empty() {
                        self.handle(side, now, run_stamp);
                    }
                    run_stamp = stamp;
                    match f.into_buf() {
                        Ok(b) => self.bufs.push(b),
                        Err(_) => self.io.nonlinear += 1,
                    }
                }
                self.rx = frames;
                if !self.bufs.is_empty() {
                    self.handle(side, now, run_stamp);
                }
            }
            if !more {
                break;
            }
        }
    }

    /// Timers: what the engine's timers send answers no received frame (no stamp); then
    /// the frames the control core sends through this worker.
    fn timers(&mut self, now: u64) {
        let pool = self.ports.pool();
        self.engine.poll(now, pool, &mut self.out);
        // Timers put out nothing for the control core; were they to, it is gated as if
        // from outside (no answer lane).
        self.drain(Side::Outside, now, 0);
        for side in [Side::Outside, Side::Inside] {
            if self.ports.control_frames(side, &mut self.rx) > 0 {
                for f in self.rx.drain() {
                    self.tx
                        .push(&mut self.ports, &self.clock, side, f, 0, &mut self.io);
                }
            }
        }
    }

    /// The health horizon the control core depends on: what arrived before it is in the
    /// control or the answer ring now (or was dropped by the gate): all of it after a
    /// pass that emptied the queues; after a full one, what is older than the longest time
    /// a frame is assumed to wait in a receive ring.
    #[inline]
    fn horizon(&mut self, now: u64, drained: bool) {
        let seen = if drained {
            now
        } else {
            now.saturating_sub(MAX_RX_BACKLOG_NS)
        };
        if seen > self.seen_until {
            self.seen_until = seen;
            self.shared.stats.set_polled(seen);
        }
    }

    /// Applies what waits in the mailbox; false if the control core holds it (tried
    /// again next pass). A new service's `Vec` grows here: a reload is rare, and no
    /// burst is in flight between passes.
    fn reconfigure(&mut self) -> bool {
        let changes = match self.shared.mailbox.0.try_lock() {
            Ok(mut m) => std::mem::take(&mut *m),
            Err(_) => return false,
        };
        for c in changes {
            match c {
                EngineChange::Timeouts(t) => {
                    self.engine.set_timeouts(t);
                }
                EngineChange::ServiceLags {
                    service,
                    ack_lag_ns,
                    output_lag_ns,
                } => {
                    self.engine
                        .set_service_lags(service, ack_lag_ns, output_lag_ns);
                }
                EngineChange::AddService(s) => {
                    self.engine.add_service(*s);
                }
            }
        }
        true
    }

    /// The control core's orders, one a pass, and a `tandem flows` listing in steps.
    fn commands(&mut self, now: u64) {
        // Orders after a reconfiguration may depend on it (a new service's replicas):
        // none is taken before it is applied.
        if self.reconfig_pending {
            self.reconfig_pending = !self.reconfigure();
        }
        if let Some(cmd) = (!self.reconfig_pending)
            .then(|| self.ports.command())
            .flatten()
        {
            self.io.commands += 1;
            match cmd {
                Command::FailoverSweep => self.engine.request_failover_sweep(),
                Command::PublishStats => {
                    self.next_publish = 0;
                    self.next_fold = 0;
                }
                Command::PoolAdd { service, replica } => {
                    self.engine.pool_add(usize::from(service), replica);
                }
                Command::PoolRemove { service, replica } => {
                    self.engine.pool_remove(usize::from(service), replica);
                }
                Command::ListFlows => self.list_pending = true,
                Command::Reconfigure => self.reconfig_pending = !self.reconfigure(),
            }
        }
        if self.list_pending {
            let engine = &self.engine;
            self.list_pending = self.shared.flow_list.step(|from, filter, limit, records| {
                engine.list_flows(
                    from,
                    LIST_SLOTS_PER_PASS,
                    now,
                    |r| filter.keeps(r),
                    limit,
                    records,
                )
            });
        }
    }

    /// Counters every [`PUBLISH_INTERVAL_NS`]; the latency histogram every
    /// [`LATENCY_FOLD_INTERVAL_NS`] (a busy lock, a reader, leaves it to the next pass).
    #[inline]
    fn publish(&mut self, now: u64) {
        if now >= self.next_publish {
            self.next_publish = now + PUBLISH_INTERVAL_NS;
            self.io.alloc_failures = self.ports.alloc_failures();
            self.shared.stats.publish(self.engine.counters(), &self.io);
        }
        if now >= self.next_fold && self.shared.stats.fold_latency(&mut self.tx.latency) {
            self.next_fold = now + LATENCY_FOLD_INTERVAL_NS;
        }
    }
}

/// Moves `burst` onto the control core's `ring`; what does not fit is freed and counted.
#[inline]
fn to_ring<P: Ports>(
    ports: &mut P,
    ring: ControlRing,
    burst: &mut Burst<P::Frame>,
    io: &mut IoCounters,
) {
    if burst.is_empty() {
        return;
    }
    ports.to_control(ring, burst);
    *match ring {
        ControlRing::Answers => &mut io.answer_ring_full,
        ControlRing::Control => &mut io.control_ring_full,
    } += burst.len() as u64;
    burst.clear();
}

/// Whether a frame a standby receives goes to its control core: ARP, or the pair's
/// announcement (tagged or not); the rest is the active peer's to carry.
fn for_control_core(frame: &[u8]) -> bool {
    const ARP: [u8; 2] = [0x08, 0x06];
    let ethertype = match frame.get(12..14) {
        Some(&[0x81, 0x00]) => frame.get(16..18),
        t => t,
    };
    ethertype == Some(&ARP[..]) || tandem_engine::parse::is_pair_announce(frame)
}

/// Runs the worker on its lcore until `running` turns false; returns 0.
pub fn run(
    io: WorkerIo,
    cfg: EngineConfig,
    replicas: Arc<ReplicaTable>,
    running: Arc<AtomicBool>,
    clock: Clock,
) -> i32 {
    let steering = io.handoff.as_ref().map(|h| Steering {
        me: io.id,
        workers: h.workers,
        own: h.own,
        key: h.key,
    });
    let (handoff_to, handoff_from) = match io.handoff {
        Some(h) => (h.to, h.from),
        None => (Vec::new(), Vec::new()),
    };
    let (rx_sides, rx) = io.rx.into_iter().unzip();
    let ports = DpdkPorts {
        rx,
        rx_sides,
        tx_outside: io.tx_outside,
        tx_inside: io.tx_inside,
        to_control: io.to_control,
        answers: io.answers,
        signals: io.signals,
        commands: io.commands,
        control_tx: io.control_tx,
        handoff_to,
        handoff_from,
        pool: MbufPool::new(io.pool),
    };
    let shared = Shared {
        stats: io.stats,
        flow_list: io.flow_list,
        mailbox: io.mailbox,
    };
    let mut worker = Worker::new(cfg, replicas, ports, clock, io.gate, shared, steering);
    if let Some(sync) = io.sync {
        worker.set_sync(sync);
    }
    worker.run(&running);
    0
}
