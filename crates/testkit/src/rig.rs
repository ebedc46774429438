//! An engine as a worker holds it: with a buffer pool and an output, fed frames in
//! bursts through [`Engine::process_burst`], the one entry point the workers run.

use std::sync::Arc;

use tandem_engine::{BufferPool, Engine, EngineConfig, Output, ReplicaTable, Side};

use crate::pool::{Recycler, VecPool};
use crate::seg::Seen;

/// An engine, its pool and its output.
pub struct Rig<P = VecPool> {
    /// The engine under test.
    pub engine: Engine<Vec<u8>>,
    /// Where its copies and synthesised packets come from.
    pub pool: P,
    /// What it sent, passed to the control core and signalled, until taken.
    pub out: Output<Vec<u8>>,
    /// A burst of one, reused.
    one: Vec<Vec<u8>>,
}

impl Rig<VecPool> {
    /// An engine over `replicas`, fresh buffers, and room in its output for a large
    /// burst's answers (1024 frames, 64 for the control core, 64 signals).
    pub fn new(cfg: EngineConfig, replicas: Arc<ReplicaTable>) -> Rig {
        Rig::with(
            cfg,
            replicas,
            VecPool::default(),
            Output::with_capacity(1024, 64, 64),
        )
    }
}

impl<P: BufferPool<Vec<u8>>> Rig<P> {
    /// An engine over `replicas` with this pool and output.
    pub fn with(
        cfg: EngineConfig,
        replicas: Arc<ReplicaTable>,
        pool: P,
        out: Output<Vec<u8>>,
    ) -> Rig<P> {
        Rig {
            engine: Engine::new(cfg, replicas),
            pool,
            out,
            one: Vec::with_capacity(1),
        }
    }

    /// Hands `burst`, received on `side` at `now`, to the engine; leaves `burst` empty.
    #[inline]
    pub fn rx(&mut self, side: Side, now: u64, burst: &mut Vec<Vec<u8>>) {
        self.engine
            .process_burst(side, now, burst, &mut self.pool, &mut self.out);
    }

    /// Hands one frame to the engine, as a burst of one.
    pub fn rx_one(&mut self, side: Side, now: u64, frame: Vec<u8>) {
        let mut burst = std::mem::take(&mut self.one);
        burst.push(frame);
        self.rx(side, now, &mut burst);
        self.one = burst;
    }

    /// Runs the engine's timers at `now`.
    pub fn poll(&mut self, now: u64) {
        self.engine.poll(now, &mut self.pool, &mut self.out);
    }

    /// Takes what the engine sent, parsed (checksums checked); drops what it passed to
    /// the control core and leaves its signals in `out`.
    pub fn seen(&mut self) -> Vec<Seen> {
        self.out.to_control.clear();
        self.out
            .tx
            .drain(..)
            .map(|t| Seen::parse(t.side, &t.buf))
            .collect()
    }
}

impl Rig<Recycler> {
    /// Gives what the engine sent back to the pool, as a NIC's transmit completion does,
    /// and forgets its control frames and signals.
    pub fn recycle(&mut self) {
        for t in self.out.tx.drain(..) {
            self.pool.put(t.buf);
        }
        self.out.to_control.clear();
        self.out.signals.clear();
    }
}
