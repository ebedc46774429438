//! The control core's part of a failover does not grow with the number of flows: the
//! same orders and the same replica-table changes whether the workers hold 1 flow or
//! 1000, and the workers then move every flow themselves. Counted, not timed.

#[path = "../examples/support/failover.rs"]
mod failover;

use failover::{control_switch, Worker};
use tandem_runtime::msg::Command;
use tandem_testkit::lab_replicas;

/// The control core's failover with `workers` workers of `n` flows each: what it sent and
/// how many replica-table values it changed. Fails unless every flow then moved.
fn fail_primary(workers: usize, n: usize) -> (Vec<(usize, Command)>, usize) {
    let (table, primary, backup) = lab_replicas();
    let mut ws: Vec<Worker> = (0..workers)
        .map(|w| Worker::establish(&table, primary, backup, n, n, w * n).expect("established"))
        .collect();
    for w in &ws {
        assert_eq!(w.active_on(primary), n, "every flow starts on the primary");
    }
    let mut orders = Vec::new();
    let (_, changed) = control_switch(&table, primary, workers, &mut orders);
    for &(w, cmd) in &orders {
        let s = ws[w].sweep(cmd);
        assert!(s.passes >= 1);
    }
    for w in &mut ws {
        w.verify_moved()
            .expect("every flow on the backup, translated");
    }
    (orders, changed)
}

#[test]
fn control_work_of_a_failover_does_not_depend_on_the_flows() {
    let workers = 2;
    let (few, few_changed) = fail_primary(workers, 1);
    let (many, many_changed) = fail_primary(workers, 1000);
    let want: Vec<_> = (0..workers).map(|w| (w, Command::FailoverSweep)).collect();
    assert_eq!(few, want, "one sweep order per worker");
    assert_eq!(
        many, want,
        "one sweep order per worker, with 1000 flows each"
    );
    // The slot's health and epoch, and the table's down generation.
    assert_eq!(few_changed, 3);
    assert_eq!(many_changed, 3);
}
