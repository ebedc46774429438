//! Failover with N established flows (issue #6): the control core's switch, and the
//! worker's sweep until every flow has moved to the backup.
//!
//! ```text
//! failover_bench [--flows 1,1000,100000,1000000] [--reps R] [--capacity C] [--out FILE]
//! ```
//!
//! For each N, R times (fewer for a million flows): one worker's engine with N mirror
//! flows (primary and backup) established through the engine's packet path, then
//! - `control_switch_ns`: `control::fail_over`, what `Control::apply` runs on a failover
//!   decision (the replica table's slot flipped, one sweep order per worker; the orders
//!   go to a vector here, to the workers' DPDK rings in the appliance);
//! - `sweep_*`: the order taken, then `Engine::poll` once a pass, as the worker's loop
//!   calls it, until the sweep is over; per pass at most `failover_sweep_batch` flows;
//! - a check that every flow has the backup active and that a segment each way is
//!   translated (else the run fails).
//!
//! Medians over the repetitions; `sweep_max_pass_ns` is the largest over all of them.
//! The table's capacity is N unless `--capacity` gives a larger one.

#[path = "support/failover.rs"]
mod failover;

use std::io::Write;

/// Errors go to the caller as text (no extra dependency for an example).
type Result<T> = std::result::Result<T, String>;

macro_rules! bail {
    ($($t:tt)*) => { return Err(format!($($t)*)) };
}

struct Args {
    flows: Vec<usize>,
    reps: Option<usize>,
    capacity: Option<usize>,
    out: Option<String>,
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        flows: vec![1, 1000, 100_000, 1_000_000],
        reps: None,
        capacity: None,
        out: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--flows" => {
                a.flows = value()?
                    .split(',')
                    .map(|s| s.parse().map_err(|e| format!("--flows: {s:?}: {e}")))
                    .collect::<Result<_>>()?
            }
            "--reps" => a.reps = Some(value()?.parse().map_err(|e| format!("--reps: {e}"))?),
            "--capacity" => {
                a.capacity = Some(value()?.parse().map_err(|e| format!("--capacity: {e}"))?)
            }
            "--out" => a.out = Some(value()?),
            _ => bail!("unknown argument {arg:?} (see the file's header)"),
        }
    }
    Ok(a)
}

fn median(v: &mut [u64]) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let mut lines = Vec::new();
    for &n in &args.flows {
        // Establishing a million flows takes seconds: fewer repetitions there.
        let reps = args
            .reps
            .unwrap_or(if n >= 1_000_000 { 3 } else { 5 })
            .max(1);
        let capacity = args.capacity.unwrap_or(n).max(n).max(1);
        let (mut switch, mut sweep, mut poll, mut passes) = (vec![], vec![], vec![], vec![]);
        let mut pass_median = vec![];
        let (mut max_pass, mut writes, mut orders_sent, mut tx) = (0, 0, 0, 0);
        let mut mem = (0, 0);
        for _ in 0..reps {
            let (table, primary, backup) = tandem_testkit::lab_replicas();
            let mut w = failover::Worker::establish(&table, primary, backup, n, capacity, 0)?;
            let on_primary = w.active_on(primary);
            if on_primary != n {
                bail!("{on_primary} of {n} flows established with the primary active");
            }
            let mut orders = Vec::with_capacity(1);
            let (ns, changed) = failover::control_switch(&table, primary, 1, &mut orders);
            let [(_, cmd)] = orders[..] else {
                bail!(
                    "the control core sent {} orders to one worker",
                    orders.len()
                );
            };
            let s = w.sweep(cmd);
            w.verify_moved()?;
            switch.push(ns);
            sweep.push(s.wall_ns);
            poll.push(s.poll_ns);
            passes.push(s.passes);
            pass_median.push(s.median_pass_ns);
            max_pass = max_pass.max(s.max_pass_ns);
            writes = changed;
            orders_sent = orders.len();
            tx = s.tx;
            mem = w.table_bytes();
        }
        let sweep_ns = median(&mut sweep);
        let line = format!(
            "flows={n} capacity={capacity} reps={reps} control_switch_ns={} \
             control_orders_per_worker={orders_sent} control_table_values_changed={writes} \
             sweep_ns={sweep_ns} sweep_poll_ns={} sweep_passes={} sweep_median_pass_ns={} sweep_max_pass_ns={max_pass} \
             sweep_ns_per_flow={:.1} sweep_tx={tx} table_bytes={} table_bytes_per_flow={:.0}",
            median(&mut switch),
            median(&mut poll),
            median(&mut passes),
            median(&mut pass_median),
            sweep_ns as f64 / n as f64,
            mem.0,
            mem.0 as f64 / mem.1 as f64,
        );
        println!("{line}");
        lines.push(line);
    }
    if let Some(path) = &args.out {
        let mut f = std::fs::File::create(path).map_err(|e| format!("creating {path}: {e}"))?;
        for l in &lines {
            writeln!(f, "{l}").map_err(|e| format!("writing {path}: {e}"))?;
        }
    }
    Ok(())
}
