//! Fast-path cost: established mirror-mode flows, 64-byte frames in both directions,
//! bursts of 32, with 10k and 1M flows in the table.
//!
//! Each round of a flow is four frames: client data, the primary's data (forwarded), the
//! backup's data (held), and the client's ack (releases it). Frames are prepared outside
//! the timed section into recycled buffers (as a mempool would hand them out); only
//! `Engine::process_burst` is timed. Output buffers go back to the pool, like a tx
//! completion.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

#[path = "../examples/support/fastpath.rs"]
mod fastpath_common;
use fastpath_common::Bench;

fn fast_path(c: &mut Criterion) {
    let mut group = c.benchmark_group("fast_path");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(8));
    for &flows in &[10_000usize, 1_000_000] {
        let mut bench = Bench::new(flows, 0x7a5d);
        group.throughput(Throughput::Elements(fastpath_common::BURST as u64));
        group.bench_function(format!("burst32_{}k_flows", flows / 1000), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    bench.prepare_burst();
                    let t = Instant::now();
                    bench.run_burst();
                    total += t.elapsed();
                    bench.recycle();
                }
                total
            })
        });
        eprintln!(
            "{} flows: table {} bytes = {} bytes per flow; flow struct {} bytes",
            flows,
            bench.table_bytes(),
            bench.table_bytes() / flows,
            core::mem::size_of::<tandem_engine::Flow>()
        );
    }
    group.finish();
}

criterion_group!(benches, fast_path);
criterion_main!(benches);
