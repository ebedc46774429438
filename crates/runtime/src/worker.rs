//! The worker lcore: the burst loop rx → parse → engine → tx (DESIGN §4), on the receive
//! queues the profile's worker plan gives it, with its own transmit queue on each port.
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
//! the transmit buffer ([`StampedBurst`]), and the flush records, for each frame the
//! queue took, the time from the stamp to the `tx_burst` call in the worker's own
//! histogram. Frames not caused by a received burst (the engine's timers, frames the
//! control core sends through this worker) carry no stamp and are not recorded. Every
//! 100 ms the histogram is folded into the worker's slot without waiting (a busy lock
//! defers the fold to the next pass), for the metrics and `tandem status`.
//!
//! Flow affinity on the hand-off path ([`HandOff`], `tandem_engine::affinity`): when the
//! ports cannot hash on the client's fields, each received frame's owner is computed
//! here; frames owned by another worker go to it over a single-producer
//! single-consumer ring, carrying their receive stamp in the mbuf, and each pass
//! processes what the other workers passed to this one, as if received.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use hdrhistogram::Histogram;
use tandem_dpdk::ring::{Consumer, Producer};
use tandem_dpdk::{Burst, Mbuf, Mempool, RxQueue, TxQueue};
use tandem_engine::affinity::frame_owner;
use tandem_engine::{Engine, EngineConfig, Output, ReplicaTable, Side, BURST};

use crate::buf::{MbufBuf, MbufPool};
use crate::clock::Clock;
use crate::gate::{Admit, Gate, Lane};
use crate::listing::{FlowList, LIST_SLOTS_PER_PASS};
use crate::msg::{Command, SignalMsg};
use crate::stats::{
    histogram, IoCounters, StampedBurst, WorkerStats, LATENCY_FOLD_INTERVAL_NS, LATENCY_MAX_NS,
    PUBLISH_INTERVAL_NS,
};

/// Transmit slots of the engine's output per call: a full burst copied to three replicas
/// plus synthesised segments, with room to spare.
const TX_CAPACITY: usize = BURST * 8;
/// The longest a frame is assumed to wait in a receive ring while the worker is behind
/// (thousands of descriptors drained at a few hundred thousand frames a second, on the
/// slowest ports Tandem runs on). Bounds how long a backlog defers probe timeouts.
pub const MAX_RX_BACKLOG_NS: u64 = 100_000_000;
/// Frames buffered per port before a transmit burst.
const TX_BURST: usize = 64;

/// Frames in each hand-off ring (per ordered pair of workers and side): 32 bursts of the
/// sender's, so that a short stall of the owner does not lose frames. The profile's mbuf
/// budget counts them.
pub const HANDOFF_RING_SIZE: u32 = tandem_config::HANDOFF_RING_FRAMES;
/// Bursts an owner takes from one hand-off ring per pass, at most.
const HANDOFF_BURSTS_PER_PASS: usize = 4;

/// A worker's ends of the hand-off rings (DESIGN §4, flow affinity without RSS).
pub struct HandOff {
    /// How many workers share the flows.
    pub workers: usize,
    /// The appliance's own port addresses (outside, inside), host order: TCP to them is
    /// a health-probe answer, kept by the receiving worker for the control core.
    pub own: [u32; 2],
    /// The start's hash key: every worker computes the same owner.
    pub key: tandem_engine::HashKey,
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
    /// The mempool for copies and synthesised segments.
    pub pool: Mempool,
    /// Hand-off rings, when flows are not steered to their owner by the ports.
    pub handoff: Option<HandOff>,
}

/// Frames waiting to be handed to one worker, per side.
type Outgoing = [Burst<Mbuf, BURST>; 2];

/// Index of a side in per-side arrays.
#[inline]
fn side_index(side: Side) -> usize {
    match side {
        Side::Outside => 0,
        Side::Inside => 1,
    }
}

/// Passes what `outgoing` holds to the rings of `to`; frames that do not fit are freed
/// and counted.
fn send_handoffs(
    to: &mut [Option<[Producer<Mbuf>; 2]>],
    outgoing: &mut [Outgoing],
    io: &mut IoCounters,
) {
    for (rings, bursts) in to.iter_mut().zip(outgoing.iter_mut()) {
        let Some(rings) = rings else { continue };
        for (ring, burst) in rings.iter_mut().zip(bursts.iter_mut()) {
            if burst.is_empty() {
                continue;
            }
            io.handed_off += ring.enqueue_burst(burst) as u64;
            io.handoff_ring_full += burst.len() as u64;
            burst.clear();
        }
    }
}

/// Sends what `burst` holds on `q`, recording the latency of what it took, freeing and
/// counting what it refused.
#[inline]
fn flush(
    q: &mut TxQueue,
    burst: &mut StampedBurst<Mbuf, TX_BURST>,
    clock: &Clock,
    latency: &mut Histogram<u64>,
    io: &mut IoCounters,
) {
    let refused = burst.flush(
        |b| {
            q.tx_burst(b);
        },
        || clock.now_ns(),
        latency,
    );
    io.tx_refused += refused as u64;
}

/// The worker's transmit side: a buffer per port, and the added-latency histogram its
/// flushes record into.
struct TxSide {
    outside: TxQueue,
    inside: TxQueue,
    out_burst: StampedBurst<Mbuf, TX_BURST>,
    in_burst: StampedBurst<Mbuf, TX_BURST>,
    clock: Clock,
    /// Since the last fold into the worker's slot.
    latency: Histogram<u64>,
}

impl TxSide {
    /// Buffers `m` for `side`; `stamp` is its receive burst's time (0: none).
    #[inline]
    fn push(&mut self, side: Side, m: Mbuf, stamp: u64, io: &mut IoCounters) {
        let (q, b) = match side {
            Side::Outside => (&mut self.outside, &mut self.out_burst),
            Side::Inside => (&mut self.inside, &mut self.in_burst),
        };
        if let Err(m) = b.push(m, stamp) {
            flush(q, b, &self.clock, &mut self.latency, io);
            // The burst is empty now.
            let _ = b.push(m, stamp);
        }
    }

    #[inline]
    fn flush_all(&mut self, io: &mut IoCounters) {
        flush(
            &mut self.outside,
            &mut self.out_burst,
            &self.clock,
            &mut self.latency,
            io,
        );
        flush(
            &mut self.inside,
            &mut self.in_burst,
            &self.clock,
            &mut self.latency,
            io,
        );
    }
}

/// The worker's way to the control core: its gate and its two rings.
struct ToControl {
    gate: Gate,
    ring: Producer<Mbuf>,
    answers: Producer<Mbuf>,
}

/// Enqueues `burst` on `ring`; what does not fit is freed and counted in `lost`.
#[inline]
fn enqueue_all(ring: &mut Producer<Mbuf>, burst: &mut Burst<Mbuf, BURST>, lost: &mut u64) {
    ring.enqueue_burst(burst);
    *lost += burst.len() as u64;
    burst.clear();
}

impl ToControl {
    /// Passes `frames` (for the control core, received on `side`) through the gate at
    /// `now`: each to its ring, or dropped and counted when its lane has no token.
    #[inline]
    fn send(&mut self, frames: &mut Vec<MbufBuf>, side: Side, now: u64, io: &mut IoCounters) {
        if frames.is_empty() {
            return;
        }
        let mut ctl: Burst<Mbuf, BURST> = Burst::new();
        let mut ans: Burst<Mbuf, BURST> = Burst::new();
        for b in frames.drain(..) {
            let (ring, burst, lost) = match self.gate.admit(b.mbuf().data(), side, now) {
                Admit::Answer => (&mut self.answers, &mut ans, &mut io.answer_ring_full),
                Admit::Control => (&mut self.ring, &mut ctl, &mut io.control_ring_full),
                Admit::Limited(lane) => {
                    *match lane {
                        Lane::ProbeAnswer => &mut io.answers_rate_limited,
                        Lane::ArpReply => &mut io.arp_replies_rate_limited,
                        Lane::Other => &mut io.control_rate_limited,
                    } += 1;
                    // Dropping the buffer frees the mbuf.
                    continue;
                }
            };
            if let Err(m) = burst.push(b.into_mbuf()) {
                enqueue_all(ring, burst, lost);
                // The burst is empty now.
                let _ = burst.push(m);
            }
        }
        enqueue_all(&mut self.answers, &mut ans, &mut io.answer_ring_full);
        enqueue_all(&mut self.ring, &mut ctl, &mut io.control_ring_full);
    }
}

/// Drains the engine's output: frames to the transmit buffers (stamped `stamp`, the
/// receive burst they answer; 0 for none), frames for the control core (received on
/// `side`, gated at `now`) and signals to their rings.
#[allow(clippy::too_many_arguments)]
#[inline]
fn drain(
    out: &mut Output<MbufBuf>,
    side: Side,
    now: u64,
    stamp: u64,
    tx: &mut TxSide,
    to_control: &mut ToControl,
    signals: &mut Producer<SignalMsg>,
    io: &mut IoCounters,
) {
    for t in out.tx.drain(..) {
        tx.push(t.side, t.buf.into_mbuf(), stamp, io);
    }
    to_control.send(&mut out.to_control, side, now, io);
    for s in out.signals.drain(..) {
        if signals.enqueue(SignalMsg::from(&s)).is_err() {
            io.signal_ring_full += 1;
        }
    }
}

/// Runs the burst loop until `running` turns false; returns 0. Called on the worker's
/// lcore.
pub fn run(
    io: WorkerIo,
    cfg: EngineConfig,
    replicas: Arc<ReplicaTable>,
    running: Arc<AtomicBool>,
    clock: Clock,
) -> i32 {
    let WorkerIo {
        rx: mut rx_queues,
        tx_outside,
        tx_inside,
        to_control,
        answers,
        gate,
        mut signals,
        mut commands,
        mut control_tx,
        stats,
        flow_list,
        pool,
        mut handoff,
        id: me,
        ..
    } = io;
    let mut engine: Engine<MbufBuf> = Engine::new(cfg, replicas);
    let mut to_control = ToControl {
        gate,
        ring: to_control,
        answers,
    };
    let mut pool = MbufPool::new(pool);
    let mut out: Output<MbufBuf> = Output::with_capacity(TX_CAPACITY, BURST, 64);
    let mut bufs: Vec<MbufBuf> = Vec::with_capacity(BURST);
    let mut rx: Burst<Mbuf> = Burst::new();
    let mut ctl: Burst<Mbuf> = Burst::new();
    // Frames for other workers, by worker (hand-off path only).
    let mut outgoing: Vec<Outgoing> = match &handoff {
        Some(h) => (0..h.workers)
            .map(|_| [Burst::new(), Burst::new()])
            .collect(),
        None => Vec::new(),
    };
    let mut tx = TxSide {
        outside: tx_outside,
        inside: tx_inside,
        out_burst: StampedBurst::new(),
        in_burst: StampedBurst::new(),
        clock,
        latency: histogram(LATENCY_MAX_NS),
    };
    let mut c = IoCounters::default();
    let mut next_publish = 0u64;
    let mut next_fold = 0u64;
    let mut seen_until = 0u64;
    // A `tandem flows` request whose list was locked: filled on a later pass.
    let mut list_pending = false;

    while running.load(Ordering::Relaxed) {
        let now = clock.now_ns();
        // Whether every receive queue was emptied this pass (a short burst).
        let mut drained = true;
        for (side, q) in rx_queues.iter_mut() {
            let side = *side;
            let n = q.rx_burst(&mut rx);
            if n == rx.capacity() {
                drained = false;
            }
            if n == 0 {
                continue;
            }
            c.rx_bursts += 1;
            // This burst's receive time: what the engine sends for it is measured from here.
            let stamp = clock.now_ns();
            match &mut handoff {
                None => {
                    for m in rx.drain() {
                        match MbufBuf::new(m) {
                            Ok(b) => bufs.push(b),
                            Err(_) => c.nonlinear += 1,
                        }
                    }
                }
                Some(h) => {
                    let s = side_index(side);
                    for mut m in rx.drain() {
                        let owner = frame_owner(m.data(), side, h.own, me, h.workers, &h.key);
                        if owner == me {
                            match MbufBuf::new(m) {
                                Ok(b) => bufs.push(b),
                                Err(_) => c.nonlinear += 1,
                            }
                        } else if let Some(b) = outgoing.get_mut(owner) {
                            m.set_note(stamp);
                            // It holds a whole receive burst; should it not, the frame
                            // is freed and counted as a full ring.
                            if b[s].push(m).is_err() {
                                c.handoff_ring_full += 1;
                            }
                        }
                    }
                    send_handoffs(&mut h.to, &mut outgoing, &mut c);
                }
            }
            engine.process_burst(side, now, &mut bufs, &mut pool, &mut out);
            drain(
                &mut out,
                side,
                now,
                stamp,
                &mut tx,
                &mut to_control,
                &mut signals,
                &mut c,
            );
            // Out before the next queue is read: a frame waits for its own burst only,
            // not for the other side's (mirror mode receives on both at once).
            tx.flush_all(&mut c);
        }
        // What other workers received for this one's flows, with their receive stamps:
        // processed in runs of one stamp (one sender's receive burst).
        if let Some(h) = &mut handoff {
            // Up to a few bursts a ring while they come full: a faster sender does not
            // fill it, and this worker's own queues wait little.
            for _ in 0..HANDOFF_BURSTS_PER_PASS {
                let mut more = false;
                for (side, ring) in h.from.iter_mut() {
                    let side = *side;
                    if ring.dequeue_burst(&mut rx) == 0 {
                        continue;
                    }
                    more |= rx.len() == rx.capacity();
                    c.handoff_received += rx.len() as u64;
                    let mut run_stamp = 0;
                    for m in rx.drain() {
                        let stamp = m.note();
                        if stamp != run_stamp && !bufs.is_empty() {
                            engine.process_burst(side, now, &mut bufs, &mut pool, &mut out);
                            drain(
                                &mut out,
                                side,
                                now,
                                run_stamp,
                                &mut tx,
                                &mut to_control,
                                &mut signals,
                                &mut c,
                            );
                        }
                        run_stamp = stamp;
                        match MbufBuf::new(m) {
                            Ok(b) => bufs.push(b),
                            Err(_) => c.nonlinear += 1,
                        }
                    }
                    if !bufs.is_empty() {
                        engine.process_burst(side, now, &mut bufs, &mut pool, &mut out);
                        drain(
                            &mut out,
                            side,
                            now,
                            run_stamp,
                            &mut tx,
                            &mut to_control,
                            &mut signals,
                            &mut c,
                        );
                    }
                }
                if !more {
                    break;
                }
            }
        }
        // What the received frames produced goes out before the timers run: a sweep
        // batch's time is not added to their latency.
        tx.flush_all(&mut c);
        // Timers: what they send answers no received frame (no stamp).
        engine.poll(now, &mut pool, &mut out);
        // Timers put out nothing for the control core; were they to, it is gated as if
        // from outside (no answer lane).
        drain(
            &mut out,
            Side::Outside,
            now,
            0,
            &mut tx,
            &mut to_control,
            &mut signals,
            &mut c,
        );
        // Frames the control core sends through this worker.
        for (side, ring) in [Side::Outside, Side::Inside]
            .into_iter()
            .zip(&mut control_tx)
        {
            if let Some(ring) = ring {
                if ring.dequeue_burst(&mut ctl) > 0 {
                    for m in ctl.drain() {
                        tx.push(side, m, 0, &mut c);
                    }
                }
            }
        }
        tx.flush_all(&mut c);
        // What arrived before `seen` is in the control or the answer ring now (or was
        // dropped by the gate): all of it after a pass that emptied the queues; after a
        // full one, what is older than the longest time a frame is assumed to wait in a
        // receive ring.
        let seen = if drained {
            now
        } else {
            now.saturating_sub(MAX_RX_BACKLOG_NS)
        };
        if seen > seen_until {
            seen_until = seen;
            stats.set_polled(seen);
        }
        if let Some(cmd) = commands.dequeue() {
            c.commands += 1;
            match cmd {
                Command::FailoverSweep => engine.request_failover_sweep(),
                Command::PublishStats => {
                    next_publish = 0;
                    next_fold = 0;
                }
                Command::PoolAdd { service, replica } => {
                    engine.pool_add(usize::from(service), replica);
                }
                Command::PoolRemove { service, replica } => {
                    engine.pool_remove(usize::from(service), replica);
                }
                Command::ListFlows => list_pending = true,
            }
        }
        if list_pending {
            list_pending = flow_list.step(|from, filter, limit, records| {
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
        if now >= next_publish {
            next_publish = now + PUBLISH_INTERVAL_NS;
            c.alloc_failures = pool.failures;
            stats.publish(engine.counters(), &c);
        }
        // A busy lock (a reader) leaves next_fold as it is: the next pass tries again.
        if now >= next_fold && stats.fold_latency(&mut tx.latency) {
            next_fold = now + LATENCY_FOLD_INTERVAL_NS;
        }
    }
    tx.flush_all(&mut c);
    c.alloc_failures = pool.failures;
    stats.publish(engine.counters(), &c);
    stats.fold_latency(&mut tx.latency);
    0
}
