//! Drives the fast path for a fixed number of bursts, for instruction counts:
//!
//! ```text
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/fastpath_count FLOWS BURSTS
//! ```
//!
//! Run it with two burst counts; the difference in instructions divided by the difference
//! in packets is the per-packet cost, setup excluded (perf/callgrind.sh does this).

#[path = "support/fastpath.rs"]
mod fastpath_common;

fn main() {
    let mut args = std::env::args().skip(1);
    let flows: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let bursts: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let mut bench = fastpath_common::Bench::new(flows, 0x7a5d);
    for _ in 0..bursts {
        bench.prepare_burst();
        bench.run_burst();
        bench.recycle();
    }
    println!("flows={flows} bursts={bursts} packets={}", bench.packets);
}
