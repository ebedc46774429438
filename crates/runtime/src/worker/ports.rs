//! What a worker polls and feeds, as two small traits: [`Frame`] (a received frame as the
//! queues and rings carry it) and [`Ports`] (its receive and transmit queues, its rings to
//! and from the control core and the other workers, its buffer pool). [`DpdkPorts`] is
//! the production one: DPDK queues, `rte_ring`s and mbufs. The worker's golden test
//! (`golden.rs`) runs the same loop on plain memory.

use tandem_dpdk::ring::{Consumer, Producer};
use tandem_dpdk::{Burst, Mbuf, RxQueue, TxQueue};
use tandem_engine::{BufferPool, PacketBuf, Side};

use crate::buf::{MbufBuf, MbufPool};
use crate::clock::Clock;
use crate::msg::{Command, SignalMsg};

use super::tx::TX_BURST;

/// A received frame as a worker's queues and rings carry it.
pub trait Frame: Sized {
    /// What the engine works on.
    type Buf: PacketBuf;
    /// Its bytes.
    fn bytes(&self) -> &[u8];
    /// The engine's buffer, or the frame back where it cannot be one (a chained mbuf).
    fn into_buf(self) -> Result<Self::Buf, Self>;
    /// The frame of an engine buffer.
    fn from_buf(buf: Self::Buf) -> Self;
    /// The receive stamp it carries over a hand-off ring (0: none).
    fn stamp(&self) -> u64;
    /// Sets that stamp.
    fn set_stamp(&mut self, stamp: u64);
}

/// Which ring to the control core a frame takes (see `crate::gate`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ControlRing {
    /// Probe answers and ARP replies: their own ring, drained first.
    Answers,
    /// Everything else for the appliance itself.
    Control,
}

/// A worker's queues and rings.
pub trait Ports {
    /// The frame its queues carry.
    type Frame: Frame;
    /// Where copies and synthesised segments come from.
    type Pool: BufferPool<<Self::Frame as Frame>::Buf>;

    /// The side of each receive queue, in polling order.
    fn rx_sides(&self) -> &[Side];
    /// Appends what receive queue `q` has to `into`; returns how many came.
    fn rx_burst(&mut self, q: usize, into: &mut Burst<Self::Frame>) -> usize;
    /// Sends frames from the front of `burst` on `side`'s transmit queue; the ones the
    /// queue refused stay in `burst`.
    fn tx_burst(&mut self, side: Side, burst: &mut Burst<Self::Frame, TX_BURST>);
    /// Moves frames from the front of `burst` onto a ring to the control core; what does
    /// not fit stays.
    fn to_control(&mut self, ring: ControlRing, burst: &mut Burst<Self::Frame>);
    /// A signal for the control core; false when its ring is full.
    fn signal(&mut self, s: SignalMsg) -> bool;
    /// The control core's next order, if any.
    fn command(&mut self) -> Option<Command>;
    /// Appends frames the control core sends through this worker on `side` to `into`.
    fn control_frames(&mut self, side: Side, into: &mut Burst<Self::Frame>) -> usize;
    /// Moves frames from the front of `burst` onto the hand-off ring to worker `to` for
    /// `side`; what does not fit stays.
    fn hand_off(&mut self, to: usize, side: Side, burst: &mut Burst<Self::Frame>);
    /// How many hand-off rings bring this worker frames.
    fn handoff_inputs(&self) -> usize;
    /// Appends what hand-off ring `i` brings to `into`; returns its side and how many.
    fn handed_in(&mut self, i: usize, into: &mut Burst<Self::Frame>) -> (Side, usize);
    /// The buffer pool.
    fn pool(&mut self) -> &mut Self::Pool;
    /// Failed allocations from the pool so far.
    fn alloc_failures(&self) -> u64;
}

/// The worker's clock (nanoseconds; never 0).
pub trait Now {
    /// Now.
    fn now_ns(&self) -> u64;
}

impl Now for Clock {
    #[inline]
    fn now_ns(&self) -> u64 {
        Clock::now_ns(self)
    }
}

impl Frame for Mbuf {
    type Buf = MbufBuf;

    #[inline]
    fn bytes(&self) -> &[u8] {
        self.data()
    }

    #[inline]
    fn into_buf(self) -> Result<MbufBuf, Mbuf> {
        MbufBuf::new(self)
    }

    #[inline]
    fn from_buf(buf: MbufBuf) -> Mbuf {
        buf.into_mbuf()
    }

    #[inline]
    fn stamp(&self) -> u64 {
        self.note()
    }

    #[inline]
    fn set_stamp(&mut self, stamp: u64) {
        self.set_note(stamp);
    }
}

/// A worker's DPDK queues and rings.
pub struct DpdkPorts {
    /// The receive queues it polls.
    pub rx: Vec<RxQueue>,
    /// Their sides, in the same order.
    pub rx_sides: Vec<Side>,
    /// Its transmit queue on the outside port.
    pub tx_outside: TxQueue,
    /// Its transmit queue on the inside port.
    pub tx_inside: TxQueue,
    /// Frames for the control core (all but probe answers and ARP replies).
    pub to_control: Producer<Mbuf>,
    /// Probe answers and ARP replies for the control core.
    pub answers: Producer<Mbuf>,
    /// Signals for the control core.
    pub signals: Producer<SignalMsg>,
    /// Orders from the control core.
    pub commands: Consumer<Command>,
    /// Frames the control core sends through this worker (outside, inside).
    pub control_tx: [Option<Consumer<Mbuf>>; 2],
    /// Hand-off rings to each worker, by worker id, a ring per side; `None` for itself.
    pub handoff_to: Vec<Option<[Producer<Mbuf>; 2]>>,
    /// Hand-off rings from the other workers, with their side.
    pub handoff_from: Vec<(Side, Consumer<Mbuf>)>,
    /// The mempool's pool for the engine.
    pub pool: MbufPool,
}

/// Index of a side in per-side arrays.
#[inline]
pub fn side_index(side: Side) -> usize {
    match side {
        Side::Outside => 0,
        Side::Inside => 1,
    }
}

impl Ports for DpdkPorts {
    type Frame = Mbuf;
    type Pool = MbufPool;

    #[inline]
    fn rx_sides(&self) -> &[Side] {
        &self.rx_sides
    }

    #[inline]
    fn rx_burst(&mut self, q: usize, into: &mut Burst<Mbuf>) -> usize {
        self.rx.get_mut(q).map_or(0, |q| q.rx_burst(into))
    }

    #[inline]
    fn tx_burst(&mut self, side: Side, burst: &mut Burst<Mbuf, TX_BURST>) {
        match side {
            Side::Outside => self.tx_outside.tx_burst(burst),
            Side::Inside => self.tx_inside.tx_burst(burst),
        };
    }

    #[inline]
    fn to_control(&mut self, ring: ControlRing, burst: &mut Burst<Mbuf>) {
        match ring {
            ControlRing::Answers => self.answers.enqueue_burst(burst),
            ControlRing::Control => self.to_control.enqueue_burst(burst),
        };
    }

    #[inline]
    fn signal(&mut self, s: SignalMsg) -> bool {
        self.signals.enqueue(s).is_ok()
    }

    #[inline]
    fn command(&mut self) -> Option<Command> {
        self.commands.dequeue()
    }

    #[inline]
    fn control_frames(&mut self, side: Side, into: &mut Burst<Mbuf>) -> usize {
        match &mut self.control_tx[side_index(side)] {
            Some(ring) => ring.dequeue_burst(into),
            None => 0,
        }
    }

    #[inline]
    fn hand_off(&mut self, to: usize, side: Side, burst: &mut Burst<Mbuf>) {
        if let Some(Some(rings)) = self.handoff_to.get_mut(to) {
            rings[side_index(side)].enqueue_burst(burst);
        }
    }

    #[inline]
    fn handoff_inputs(&self) -> usize {
        self.handoff_from.len()
    }

    #[inline]
    fn handed_in(&mut self, i: usize, into: &mut Burst<Mbuf>) -> (Side, usize) {
        match self.handoff_from.get_mut(i) {
            Some((side, ring)) => (*side, ring.dequeue_burst(into)),
            None => (Side::Outside, 0),
        }
    }

    #[inline]
    fn pool(&mut self) -> &mut MbufPool {
        &mut self.pool
    }

    #[inline]
    fn alloc_failures(&self) -> u64 {
        self.pool.failures
    }
}
