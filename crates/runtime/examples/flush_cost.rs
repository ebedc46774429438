//! The cost of the worker's transmit flushes (issue #15): flushing after every receive
//! burst, as `worker::tx` does, against a drain that sends only full buffers (what
//! l3fwd's timed drain comes to under load: its timer, about 100 µs, fires less often than
//! the buffer fills). For `perf/flush-cost.sh` under callgrind: the worker's own
//! [`TxSide`] buffers, stamps and latency records, onto a transmit queue that takes every
//! frame and does nothing else (a NIC's doorbell write is not in these counts).
//!
//! ```text
//! flush_cost per-burst|drain FRAMES BURSTS    # BURSTS bursts of FRAMES frames
//! ```
//!
//! Only the `measure_*` functions are counted (callgrind's `--toggle-collect`).

use std::hint::black_box;

use tandem_dpdk::Burst;
use tandem_engine::{Side, VecPool};
use tandem_runtime::msg::{Command, SignalMsg};
use tandem_runtime::stats::{histogram, IoCounters, LATENCY_MAX_NS};
use tandem_runtime::worker::tx::{TxSide, TX_BURST};
use tandem_runtime::worker::{ControlRing, Frame, Now, Ports};

/// A frame that is only a number.
struct Token(u64);

impl Frame for Token {
    type Buf = Vec<u8>;
    fn bytes(&self) -> &[u8] {
        &[]
    }
    fn into_buf(self) -> Result<Vec<u8>, Token> {
        Err(self)
    }
    fn from_buf(_: Vec<u8>) -> Token {
        Token(0)
    }
    fn stamp(&self) -> u64 {
        self.0
    }
    fn set_stamp(&mut self, stamp: u64) {
        self.0 = stamp;
    }
}

/// A transmit queue that takes everything; nothing else.
#[derive(Default)]
struct Sink {
    sent: u64,
    calls: u64,
    pool: VecPool,
}

impl Ports for Sink {
    type Frame = Token;
    type Pool = VecPool;
    fn rx_sides(&self) -> &[Side] {
        &[]
    }
    fn rx_burst(&mut self, _: usize, _: &mut Burst<Token>) -> usize {
        0
    }
    #[inline(never)]
    fn tx_burst(&mut self, _: Side, burst: &mut Burst<Token, TX_BURST>) {
        self.calls += 1;
        for t in burst.drain() {
            self.sent = self.sent.wrapping_add(black_box(t.0));
        }
    }
    fn to_control(&mut self, _: ControlRing, _: &mut Burst<Token>) {}
    fn signal(&mut self, _: SignalMsg) -> bool {
        true
    }
    fn command(&mut self) -> Option<Command> {
        None
    }
    fn control_frames(&mut self, _: Side, _: &mut Burst<Token>) -> usize {
        0
    }
    fn hand_off(&mut self, _: usize, _: Side, _: &mut Burst<Token>) {}
    fn handoff_inputs(&self) -> usize {
        0
    }
    fn handed_in(&mut self, _: usize, _: &mut Burst<Token>) -> (Side, usize) {
        (Side::Outside, 0)
    }
    fn pool(&mut self) -> &mut VecPool {
        &mut self.pool
    }
    fn alloc_failures(&self) -> u64 {
        0
    }
}

/// The TSC, as the worker's clock reads it (less its scaling).
struct Tsc;

impl Now for Tsc {
    fn now_ns(&self) -> u64 {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: RDTSC has no preconditions on x86-64.
            unsafe { core::arch::x86_64::_rdtsc() }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            std::time::UNIX_EPOCH
                .elapsed()
                .map_or(0, |d| d.as_nanos() as u64)
        }
    }
}

/// A burst's frames pushed (stamped), then a flush of both buffers: the worker today.
#[inline(never)]
fn measure_per_burst(tx: &mut TxSide<Token>, sink: &mut Sink, frames: u64, bursts: u64) {
    let mut io = IoCounters::default();
    for _ in 0..bursts {
        let stamp = Tsc.now_ns();
        for f in 0..frames {
            tx.push(sink, &Tsc, Side::Inside, Token(f), stamp, &mut io);
        }
        tx.flush_all(sink, &Tsc, &mut io);
    }
}

/// The same frames, sent only when a buffer is full.
#[inline(never)]
fn measure_drain(tx: &mut TxSide<Token>, sink: &mut Sink, frames: u64, bursts: u64) {
    let mut io = IoCounters::default();
    for _ in 0..bursts {
        let stamp = Tsc.now_ns();
        for f in 0..frames {
            tx.push(sink, &Tsc, Side::Inside, Token(f), stamp, &mut io);
        }
    }
    tx.flush_all(sink, &Tsc, &mut io);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_default();
    let frames: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(32);
    let bursts: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let mut tx: TxSide<Token> = TxSide::new(histogram(LATENCY_MAX_NS));
    let mut sink = Sink::default();
    match mode.as_str() {
        "per-burst" => measure_per_burst(&mut tx, &mut sink, frames, bursts),
        "drain" => measure_drain(&mut tx, &mut sink, frames, bursts),
        _ => {
            eprintln!("usage: flush_cost per-burst|drain FRAMES BURSTS");
            std::process::exit(2);
        }
    }
    println!(
        "mode={mode} frames={frames} bursts={bursts} tx_calls={} recorded={}",
        sink.calls,
        tx.latency.len()
    );
}
