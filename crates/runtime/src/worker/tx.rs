//! The transmit side of a worker: a buffer per port, each frame stamped with the receive
//! burst it answers, and the flush that sends a buffer and records the latency the
//! appliance added to each frame the queue took (DESIGN §4).
//!
//! Where a flush happens, and why (the one place this is said):
//! - a buffer that fills is sent at once ([`TxSide::push`]);
//! - after each receive queue's burst is handled: a frame waits for its own burst only,
//!   not for the other port's (mirror mode receives on both at once);
//! - after the hand-off input, before the timers run: a sweep batch's time is not added to
//!   the received frames' latency;
//! - after the timers and the control core's frames, at the end of the pass.
//!
//! l3fwd instead drains its buffers on a timer (about 100 µs) and otherwise sends only full
//! bursts, trading latency for fewer, fuller `tx_burst` calls. `perf/flush-cost.sh`
//! measured both here (`perf/RESULTS.md`, "The worker's transmit flush"): under load (32
//! frames a burst) waiting saves 1.4 instructions a frame of 57; with bursts of one frame
//! it saves 90 of 219, but then the worker is idle anyway and the wait would add up to
//! 100 µs to every frame. So a flush per burst. On a NIC whose doorbell write is costly (a
//! `tx_burst` of one frame costing as much as one of 32), measure again: that cost is not
//! in these counts.

use hdrhistogram::Histogram;
use tandem_dpdk::Burst;
use tandem_engine::Side;

use crate::stats::IoCounters;

use super::ports::{Now, Ports};

/// Frames buffered per port before a transmit burst.
pub const TX_BURST: usize = 64;

/// A transmit buffer: up to `N` frames, each with the receive stamp of the burst it came
/// from (0: not from a received frame — frames the control core hands over, segments the
/// engine's timers synthesise — and not recorded).
///
/// At [`flush`](Self::flush) the clock is read once and each stamped frame the queue
/// took is recorded as `now - stamp`: the latency the appliance added to it, from its
/// receive burst to its transmit enqueue. Frames of one receive burst share its stamp and
/// sit side by side, so stamps are kept as runs and recorded one run at a time
/// (`perf/latency-cost.sh`: a record per frame cost 68 instructions a frame).
pub struct StampedBurst<T, const N: usize> {
    frames: Burst<T, N>,
    /// Runs of frames with the same stamp, in frame order: `(stamp, frames)`.
    runs: [(u64, u32); N],
    /// Runs in use.
    n_runs: usize,
    /// Whether any frame has a nonzero stamp (none: no clock read at flush).
    stamped: bool,
}

impl<T, const N: usize> StampedBurst<T, N> {
    /// An empty buffer.
    pub const fn new() -> Self {
        StampedBurst {
            frames: Burst::new(),
            runs: [(0, 0); N],
            n_runs: 0,
            stamped: false,
        }
    }

    /// The number of frames.
    #[inline]
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether there are none.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Adds `frame` received at `stamp` (0: none), or gives it back when full.
    #[inline]
    pub fn push(&mut self, frame: T, stamp: u64) -> Result<(), T> {
        self.frames.push(frame)?;
        match self.n_runs.checked_sub(1).map(|k| &mut self.runs[k]) {
            Some(run) if run.0 == stamp => run.1 += 1,
            // A run per frame at most: `runs` has room for N.
            _ => {
                self.runs[self.n_runs] = (stamp, 1);
                self.n_runs += 1;
            }
        }
        self.stamped |= stamp != 0;
        Ok(())
    }

    /// Sends the frames: `send` takes frames from the front of the burst and leaves the
    /// ones it refused; those are dropped (mbufs freed). Records the latency of every
    /// stamped frame taken into `latency`, reading `now` once (and only if there is one).
    /// Returns the number refused.
    #[inline]
    pub fn flush(
        &mut self,
        send: impl FnOnce(&mut Burst<T, N>),
        now: impl FnOnce() -> u64,
        latency: &mut Histogram<u64>,
    ) -> usize {
        let n = self.frames.len();
        if n == 0 {
            return 0;
        }
        send(&mut self.frames);
        let refused = self.frames.len().min(n);
        let mut sent = (n - refused) as u64;
        if self.stamped && sent > 0 {
            let t = now();
            for &(stamp, frames) in &self.runs[..self.n_runs] {
                let taken = u64::from(frames).min(sent);
                if stamp != 0 {
                    latency.saturating_record_n(t.saturating_sub(stamp), taken);
                }
                sent -= taken;
                if sent == 0 {
                    break;
                }
            }
        }
        self.frames.clear();
        self.n_runs = 0;
        self.stamped = false;
        refused
    }
}

impl<T, const N: usize> Default for StampedBurst<T, N> {
    fn default() -> Self {
        StampedBurst::new()
    }
}

/// The worker's transmit buffers, one per port, and the added-latency histogram their
/// flushes record into.
pub struct TxSide<F> {
    outside: StampedBurst<F, TX_BURST>,
    inside: StampedBurst<F, TX_BURST>,
    /// Since the last fold into the worker's slot.
    pub latency: Histogram<u64>,
}

impl<F> TxSide<F> {
    /// Empty buffers; latencies recorded up to `max_ns`.
    pub fn new(latency: Histogram<u64>) -> TxSide<F> {
        TxSide {
            outside: StampedBurst::new(),
            inside: StampedBurst::new(),
            latency,
        }
    }

    /// Buffers `frame` for `side`; `stamp` is its receive burst's time (0: none). A full
    /// buffer is sent first.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub fn push<P: Ports<Frame = F>>(
        &mut self,
        ports: &mut P,
        clock: &impl Now,
        side: Side,
        frame: F,
        stamp: u64,
        io: &mut IoCounters,
    ) {
        let b = match side {
            Side::Outside => &mut self.outside,
            Side::Inside => &mut self.inside,
        };
        if let Err(frame) = b.push(frame, stamp) {
            io.tx_refused += flush(ports, clock, side, b, &mut self.latency) as u64;
            // The buffer is empty now.
            let _ = b.push(frame, stamp);
        }
    }

    /// Sends both buffers.
    #[inline]
    pub fn flush_all<P: Ports<Frame = F>>(
        &mut self,
        ports: &mut P,
        clock: &impl Now,
        io: &mut IoCounters,
    ) {
        let (out, ins, h) = (&mut self.outside, &mut self.inside, &mut self.latency);
        io.tx_refused += flush(ports, clock, Side::Outside, out, h) as u64;
        io.tx_refused += flush(ports, clock, Side::Inside, ins, h) as u64;
    }
}

/// Sends what `burst` holds on `side`'s queue, recording the latency of what it took;
/// returns how many it refused (freed).
#[inline]
fn flush<P: Ports>(
    ports: &mut P,
    clock: &impl Now,
    side: Side,
    burst: &mut StampedBurst<P::Frame, TX_BURST>,
    latency: &mut Histogram<u64>,
) -> usize {
    // Checked here too, not only in `StampedBurst::flush`: the buffer of the port that
    // got nothing is the common case, and this keeps it to one compare (0.6 instructions
    // a frame, perf/flush-cost.sh).
    if burst.is_empty() {
        return 0;
    }
    burst.flush(|b| ports.tx_burst(side, b), || clock.now_ns(), latency)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{histogram, LATENCY_MAX_NS};

    /// A transmit queue that takes the first `k` frames and leaves the rest.
    fn takes<const N: usize>(
        k: usize,
        sent: &mut Vec<u32>,
    ) -> impl FnOnce(&mut Burst<u32, N>) + '_ {
        move |b| {
            let all: Vec<u32> = b.drain().collect();
            for (i, f) in all.into_iter().enumerate() {
                if i < k {
                    sent.push(f);
                } else {
                    let _ = b.push(f);
                }
            }
        }
    }

    #[test]
    fn a_flush_records_the_stamped_frames_the_queue_took() {
        let mut b: StampedBurst<u32, 4> = StampedBurst::new();
        let mut h = histogram(LATENCY_MAX_NS);
        // Two frames of a burst received at 1000, one from the control core (no stamp),
        // one received at 1500.
        for (f, stamp) in [(1, 1_000), (2, 1_000), (3, 0), (4, 1_500)] {
            assert!(b.push(f, stamp).is_ok());
        }
        assert_eq!(b.push(5, 2_000), Err(5), "full");
        let mut sent = Vec::new();
        // The queue takes three: the unstamped one is not recorded, the fourth is refused.
        let refused = b.flush(takes(3, &mut sent), || 1_200, &mut h);
        assert_eq!((refused, sent.as_slice()), (1, &[1, 2, 3][..]));
        assert!(b.is_empty());
        assert_eq!(h.len(), 2);
        assert_eq!(h.count_at(200), 2);
        // The stamps start over with the buffer.
        assert!(b.push(6, 1_100).is_ok());
        let refused = b.flush(takes(4, &mut sent), || 1_300, &mut h);
        assert_eq!(refused, 0);
        assert_eq!((h.len(), h.count_at(200)), (3, 3));
        // A run of one burst's frames cut by the queue: only those taken count.
        for f in 7..10 {
            assert!(b.push(f, 2_000).is_ok());
        }
        let refused = b.flush(takes(2, &mut sent), || 2_050, &mut h);
        assert_eq!((refused, h.len(), h.count_at(50)), (1, 5, 2));
    }

    #[test]
    fn a_flush_reads_the_clock_only_for_stamped_frames_sent() {
        let mut b: StampedBurst<u32, 4> = StampedBurst::new();
        let mut h = histogram(LATENCY_MAX_NS);
        let mut sent = Vec::new();
        let never = || -> u64 { panic!("no clock read") };
        assert_eq!(b.flush(takes(4, &mut sent), never, &mut h), 0);
        let _ = b.push(1, 0);
        assert_eq!(b.flush(takes(4, &mut sent), never, &mut h), 0);
        let _ = b.push(2, 5);
        assert_eq!(b.flush(takes(0, &mut sent), never, &mut h), 1);
        assert!(h.is_empty());
    }

    #[test]
    fn latencies_past_the_top_or_before_the_stamp_are_clamped() {
        let mut b: StampedBurst<u32, 4> = StampedBurst::new();
        let mut h = histogram(LATENCY_MAX_NS);
        let mut sent = Vec::new();
        let _ = b.push(1, 1);
        let _ = b.push(2, u64::MAX - 1); // a stamp after the flush's clock: 0, not a wrap
        b.flush(takes(4, &mut sent), || u64::MAX, &mut h);
        assert_eq!(h.len(), 2);
        assert!(h.equivalent(h.max(), LATENCY_MAX_NS), "{}", h.max());
        let _ = b.push(3, 10);
        b.flush(takes(4, &mut sent), || 5, &mut h);
        assert_eq!((h.len(), h.min()), (3, 0));
    }
}
