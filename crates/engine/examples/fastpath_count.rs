//! Drives the fast path for a fixed number of bursts, for instruction counts:
//!
//! ```text
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/fastpath_count FLOWS BURSTS
//! ```
//!
//! A third argument `forward` runs forward-mode flows (adopted mid-stream, NAT only)
//! instead of mirrored ones; `mirror-log`, mirrored flows whose client bytes are logged
//! for new standbys (mirror mode's `replay`, on in a profile by default).
//!
//! Run it with two burst counts; the difference in instructions divided by the difference
//! in packets is the per-packet cost, setup excluded (perf/callgrind.sh does this).

#[path = "support/fastpath.rs"]
mod fastpath_common;

fn main() {
    let mut args = std::env::args().skip(1);
    let flows: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let bursts: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let kind = args.next().unwrap_or_default();
    let mut bench = match kind.as_str() {
        "forward" => fastpath_common::Bench::new_forward(flows, 0x7a5d),
        "mirror-log" => fastpath_common::Bench::new_logging(flows, 0x7a5d),
        _ => fastpath_common::Bench::new(flows, 0x7a5d),
    };
    for _ in 0..bursts {
        bench.prepare_burst();
        bench.run_burst();
        bench.recycle();
    }
    let mode = match kind.as_str() {
        "forward" | "mirror-log" => kind.as_str(),
        _ => "mirror",
    };
    let unit = bench.rig.engine.hash_unit();
    let table_bytes = bench.table_bytes();
    let c = bench.rig.engine.counters();
    // tx and adopted show that the frames were forwarded, not dropped; the hash unit, which
    // way the flow hash was computed (valgrind reports the host's AVX2).
    println!(
        "mode={mode} flows={flows} bursts={bursts} packets={} tx={} flows_adopted={} drops={} \
         hash_unit={unit:?} table_bytes_per_flow={} held={}{}",
        bench.packets,
        c.tx,
        c.flows_adopted,
        c.drops.iter().sum::<u64>(),
        table_bytes / flows.max(1),
        c.held_segments,
        tandem_engine::DropReason::ALL
            .iter()
            .zip(c.drops)
            .filter(|(_, n)| *n > 0)
            .map(|(r, n)| format!(" drop.{}={n}", r.label()))
            .collect::<String>()
    );
}
