//! The cost of measuring added latency (issue #6), for `perf/latency-cost.sh` under
//! callgrind: the worker's transmit buffering with the per-frame stamps and histogram
//! records ([`StampedBurst`]), against the plain burst it replaced, on the same frames.
//!
//! ```text
//! latency_cost with|without BURSTS    # BURSTS bursts of 32 frames, two flushes each
//! latency_cost fold FOLDS             # FOLDS folds of a worker's histogram into its slot
//! ```
//!
//! The clock is the TSC (what the worker's `Clock` reads, less its scaling). Only the
//! `measure_*` functions are counted (callgrind's `--toggle-collect`).

use std::hint::black_box;

use tandem_dpdk::Burst;
use tandem_runtime::stats::{histogram, WorkerStats, LATENCY_MAX_NS};
use tandem_runtime::worker::tx::StampedBurst;

/// Frames per receive burst, as the lab's worker gets under load.
const FRAMES: u64 = 32;

fn tsc() -> u64 {
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

/// With the measurement: one clock read per burst (the stamp), a stamp per frame, and at
/// each flush one clock read and a record per frame.
#[inline(never)]
fn measure_with(bursts: u64) -> u64 {
    let mut out: StampedBurst<u64, 64> = StampedBurst::new();
    let mut latency = histogram(LATENCY_MAX_NS);
    let mut refused = 0;
    for b in 0..bursts {
        let stamp = tsc();
        for f in 0..FRAMES {
            // Two copies per client frame (k=2): 64 frames, one full buffer a burst.
            for copy in 0..2 {
                let frame = black_box(b * FRAMES + f + copy);
                if let Err(frame) = out.push(frame, stamp) {
                    refused += out.flush(|q| q.clear(), tsc, &mut latency);
                    let _ = out.push(frame, stamp);
                }
            }
        }
        refused += out.flush(|q| q.clear(), tsc, &mut latency);
    }
    black_box(latency.len()) + refused as u64
}

/// Without: the plain burst the worker had before.
#[inline(never)]
fn measure_without(bursts: u64) -> u64 {
    let mut out: Burst<u64, 64> = Burst::new();
    let mut sent = 0;
    for b in 0..bursts {
        for f in 0..FRAMES {
            for copy in 0..2 {
                let frame = black_box(b * FRAMES + f + copy);
                if let Err(frame) = out.push(frame) {
                    sent += out.len();
                    out.clear();
                    let _ = out.push(frame);
                }
            }
        }
        sent += out.len();
        out.clear();
    }
    black_box(sent as u64)
}

/// A worker's fold (every 100 ms) of a histogram holding a spread of values.
#[inline(never)]
fn measure_fold(stats: &WorkerStats, local: &mut hdrhistogram::Histogram<u64>) -> bool {
    stats.fold_latency(local)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_default();
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    match mode.as_str() {
        "with" => println!("{}", measure_with(n)),
        "without" => println!("{}", measure_without(n)),
        "fold" => {
            let stats = WorkerStats::default();
            let mut local = histogram(LATENCY_MAX_NS);
            for _ in 0..n {
                for v in (1..200_000u64).step_by(97) {
                    local.saturating_record(v);
                }
                println!("{}", measure_fold(&stats, &mut local));
            }
        }
        _ => {
            eprintln!("usage: latency_cost with|without|fold N");
            std::process::exit(2);
        }
    }
}
