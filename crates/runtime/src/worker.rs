//! The worker lcore: the burst loop rx → parse → engine → tx (DESIGN §4), on the receive
//! queues the profile's worker plan gives it, with its own transmit queue on each port.
//!
//! On the packet path: no lock, no allocation (every buffer and vector is sized before
//! the loop), no system call and no log. Frames for the appliance itself go to the
//! control core over a ring; signals over another; counters are published into the
//! worker's [`WorkerStats`] slot every millisecond.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tandem_dpdk::ring::{Consumer, Producer};
use tandem_dpdk::{Burst, Mbuf, Mempool, RxQueue, TxQueue};
use tandem_engine::{Engine, EngineConfig, Output, ReplicaTable, Side, BURST};

use crate::buf::{MbufBuf, MbufPool};
use crate::clock::Clock;
use crate::msg::{Command, SignalMsg};
use crate::stats::{IoCounters, WorkerStats, PUBLISH_INTERVAL_NS};

/// Transmit slots of the engine's output per call: a full burst copied to three replicas
/// plus synthesised segments, with room to spare.
const TX_CAPACITY: usize = BURST * 8;
/// The longest a frame is assumed to wait in a receive ring while the worker is behind
/// (thousands of descriptors drained at a few hundred thousand frames a second, on the
/// slowest ports Tandem runs on). Bounds how long a backlog defers probe timeouts.
pub const MAX_RX_BACKLOG_NS: u64 = 100_000_000;
/// Frames buffered per port before a transmit burst.
const TX_BURST: usize = 64;

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
    /// Frames for the control core.
    pub to_control: Producer<Mbuf>,
    /// Signals for the control core.
    pub signals: Producer<SignalMsg>,
    /// Orders from the control core.
    pub commands: Consumer<Command>,
    /// Frames the control core asks this worker to send (outside, inside), when the
    /// control core has no transmit queue of its own on that port.
    pub control_tx: [Option<Consumer<Mbuf>>; 2],
    /// Where its counters are published.
    pub stats: Arc<WorkerStats>,
    /// The mempool for copies and synthesised segments.
    pub pool: Mempool,
}

/// Sends what `burst` holds on `q`, freeing and counting what the queue refuses.
#[inline]
fn flush(q: &mut TxQueue, burst: &mut Burst<Mbuf, TX_BURST>, io: &mut IoCounters) {
    if burst.is_empty() {
        return;
    }
    q.tx_burst(burst);
    io.tx_refused += burst.len() as u64;
    burst.clear();
}

/// The worker's transmit side: a buffer per port.
struct TxSide {
    outside: TxQueue,
    inside: TxQueue,
    out_burst: Burst<Mbuf, TX_BURST>,
    in_burst: Burst<Mbuf, TX_BURST>,
}

impl TxSide {
    #[inline]
    fn push(&mut self, side: Side, m: Mbuf, io: &mut IoCounters) {
        let (q, b) = match side {
            Side::Outside => (&mut self.outside, &mut self.out_burst),
            Side::Inside => (&mut self.inside, &mut self.in_burst),
        };
        if let Err(m) = b.push(m) {
            flush(q, b, io);
            // The burst is empty now.
            let _ = b.push(m);
        }
    }

    #[inline]
    fn flush_all(&mut self, io: &mut IoCounters) {
        flush(&mut self.outside, &mut self.out_burst, io);
        flush(&mut self.inside, &mut self.in_burst, io);
    }
}

/// Drains the engine's output: frames to the transmit buffers, frames for the control
/// core and signals to their rings.
#[inline]
fn drain(
    out: &mut Output<MbufBuf>,
    tx: &mut TxSide,
    to_control: &mut Producer<Mbuf>,
    signals: &mut Producer<SignalMsg>,
    io: &mut IoCounters,
) {
    for t in out.tx.drain(..) {
        tx.push(t.side, t.buf.into_mbuf(), io);
    }
    if !out.to_control.is_empty() {
        let mut burst: Burst<Mbuf, BURST> = Burst::new();
        for b in out.to_control.drain(..) {
            if let Err(m) = burst.push(b.into_mbuf()) {
                to_control.enqueue_burst(&mut burst);
                io.control_ring_full += burst.len() as u64;
                burst.clear();
                let _ = burst.push(m);
            }
        }
        to_control.enqueue_burst(&mut burst);
        io.control_ring_full += burst.len() as u64;
    }
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
        mut to_control,
        mut signals,
        mut commands,
        mut control_tx,
        stats,
        pool,
        ..
    } = io;
    let mut engine: Engine<MbufBuf> = Engine::new(cfg, replicas);
    let mut pool = MbufPool::new(pool);
    let mut out: Output<MbufBuf> = Output::with_capacity(TX_CAPACITY, BURST, 64);
    let mut bufs: Vec<MbufBuf> = Vec::with_capacity(BURST);
    let mut rx: Burst<Mbuf> = Burst::new();
    let mut ctl: Burst<Mbuf> = Burst::new();
    let mut tx = TxSide {
        outside: tx_outside,
        inside: tx_inside,
        out_burst: Burst::new(),
        in_burst: Burst::new(),
    };
    let mut c = IoCounters::default();
    let mut next_publish = 0u64;
    let mut seen_until = 0u64;

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
            for m in rx.drain() {
                match MbufBuf::new(m) {
                    Ok(b) => bufs.push(b),
                    Err(_) => c.nonlinear += 1,
                }
            }
            engine.process_burst(side, now, &mut bufs, &mut pool, &mut out);
            drain(&mut out, &mut tx, &mut to_control, &mut signals, &mut c);
            if !ctl.is_empty() {
                to_control.enqueue_burst(&mut ctl);
                c.control_ring_full += ctl.len() as u64;
                ctl.clear();
            }
        }
        engine.poll(now, &mut pool, &mut out);
        drain(&mut out, &mut tx, &mut to_control, &mut signals, &mut c);
        // Frames the control core sends through this worker.
        for (side, ring) in [Side::Outside, Side::Inside]
            .into_iter()
            .zip(&mut control_tx)
        {
            if let Some(ring) = ring {
                if ring.dequeue_burst(&mut ctl) > 0 {
                    for m in ctl.drain() {
                        tx.push(side, m, &mut c);
                    }
                }
            }
        }
        tx.flush_all(&mut c);
        // What arrived before `seen` is in the control ring now: all of it after a pass
        // that emptied the queues; after a full one, what is older than the longest
        // time a frame is assumed to wait in a receive ring.
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
                Command::PublishStats => next_publish = 0,
            }
        }
        if now >= next_publish {
            next_publish = now + PUBLISH_INTERVAL_NS;
            c.alloc_failures = pool.failures;
            stats.publish(engine.counters(), &c);
        }
    }
    tx.flush_all(&mut c);
    c.alloc_failures = pool.failures;
    stats.publish(engine.counters(), &c);
    0
}
