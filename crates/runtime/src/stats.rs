//! Counters that workers publish for the control core, and the summary printed at exit.
//!
//! The counters are declared once, with their kind, Prometheus name and help
//! ([`tandem_engine::counters!`]): the engine's [`Counters`], and here the workers'
//! [`IoCounters`] and the control core's [`ControlCounters`]. A worker's slot holds them
//! as arrays of atomics in declaration order; the summary prints them by walking the
//! declarations.
//!
//! Each worker owns one [`WorkerStats`] slot and writes it every
//! [`PUBLISH_INTERVAL_NS`] (and once more when it stops) with relaxed atomic stores: no
//! lock, no read-modify-write, no shared cache line with another worker. Readers (the
//! control core, the exit summary) copy it with relaxed loads; each counter is exact, the
//! set is a snapshot within one publish interval.
//!
//! Added latency (DESIGN §4) travels differently, because a histogram is too big to copy
//! every millisecond: the worker records into a histogram of its own (`worker::tx`'s `StampedBurst`
//! stamps each buffered frame with its receive time and records at transmit), and every
//! [`LATENCY_FOLD_INTERVAL_NS`] adds it into its slot's shared histogram under a
//! `try_lock` ([`WorkerStats::fold_latency`]): a reader holding the lock only defers the
//! fold, it never makes the worker wait. Histograms have fixed bounds and no auto-resize,
//! so recording and folding never allocate; a value past the top is clamped to it.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, TryLockError};

use hdrhistogram::Histogram;
use tandem_engine::{CounterSet, Counters, DropReason};

pub use tandem_control::ControlCounters;

/// How often a worker publishes its counters.
pub const PUBLISH_INTERVAL_NS: u64 = 1_000_000;
/// How often a worker folds its latency histogram into its [`WorkerStats`] slot: a fold
/// walks the whole histogram (tens of microseconds), too much for every millisecond.
pub const LATENCY_FOLD_INTERVAL_NS: u64 = 100_000_000;
/// The top of the added-latency histograms (1 s): slower frames count as 1 s.
pub const LATENCY_MAX_NS: u64 = 1_000_000_000;
/// The top of the recovery-time histogram (1 h).
pub const RECOVERY_MAX_NS: u64 = 3_600_000_000_000;
/// Significant figures the histograms keep (0.1 % resolution).
const SIGNIFICANT_FIGURES: u8 = 3;

/// A nanosecond histogram from 1 ns to `max_ns` (at least 2 ns) at 3 significant
/// figures, without auto-resize: recording never allocates; record with
/// `saturating_record`, which clamps what is past the top.
pub fn histogram(max_ns: u64) -> Histogram<u64> {
    Histogram::new_with_bounds(1, max_ns.max(2), SIGNIFICANT_FIGURES)
        .expect("1 ns to at least 2 ns at 3 figures is a valid histogram")
}

/// Adds `from` into `into`. Allocation-free when both have the same bounds (the workers'
/// case); otherwise `from`'s values are re-recorded, clamped to `into`'s top.
pub fn merge(into: &mut Histogram<u64>, from: &Histogram<u64>) {
    if into.add(from).is_err() {
        for v in from.iter_recorded() {
            into.saturating_record_n(v.value_iterated_to(), v.count_at_value());
        }
    }
}

/// Adds `from` into `into` and empties `from` (see [`merge`]).
pub fn fold(into: &mut Histogram<u64>, from: &mut Histogram<u64>) {
    merge(into, from);
    from.reset();
}

/// Locks `m`, poisoned or not (a histogram stays valid if a holder panicked).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The figures `tandem status` and the metrics print from a histogram, in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LatencySummary {
    /// Values recorded.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// The largest value (to the histogram's resolution).
    pub max: u64,
    /// The sum of the values, from the histogram's buckets (within 0.1 %).
    pub sum: u64,
}

impl LatencySummary {
    /// The summary of `h`; `None` when it is empty.
    pub fn of(h: &Histogram<u64>) -> Option<LatencySummary> {
        if h.is_empty() {
            return None;
        }
        let count = h.len();
        Some(LatencySummary {
            count,
            p50: h.value_at_quantile(0.5),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            sum: (h.mean() * count as f64).round() as u64,
        })
    }
}

/// Upper bounds (`le`, nanoseconds) of the added-latency histogram's buckets in the
/// metrics: cumulative counts that a reader can subtract between two scrapes, which the
/// summary's quantiles (over the whole run) do not allow. Dense around the 10 µs target.
pub const LATENCY_BUCKETS_NS: [u64; 20] = [
    500,
    1_000,
    2_000,
    3_000,
    5_000,
    7_500,
    10_000,
    15_000,
    20_000,
    50_000,
    100_000,
    200_000,
    500_000,
    1_000_000,
    2_000_000,
    5_000_000,
    10_000_000,
    50_000_000,
    100_000_000,
    1_000_000_000,
];

/// Cumulative bucket counts of a latency histogram: values recorded at or below each of
/// [`LATENCY_BUCKETS_NS`] (to the histogram's 0.1 % resolution).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LatencyBuckets {
    /// Count at or below each bound, in the order of [`LATENCY_BUCKETS_NS`].
    pub le: [u64; LATENCY_BUCKETS_NS.len()],
    /// Values recorded (the `+Inf` bucket).
    pub count: u64,
    /// Their sum, nanoseconds, from the histogram's buckets (within 0.1 %).
    pub sum: u64,
}

impl LatencyBuckets {
    /// The buckets of `h` (all zero when it is empty).
    pub fn of(h: &Histogram<u64>) -> LatencyBuckets {
        let mut le = [0u64; LATENCY_BUCKETS_NS.len()];
        if !h.is_empty() {
            for (c, bound) in le.iter_mut().zip(LATENCY_BUCKETS_NS) {
                *c = h.count_between(0, bound);
            }
        }
        let count = h.len();
        LatencyBuckets {
            le,
            count,
            sum: if count == 0 {
                0
            } else {
                (h.mean() * count as f64).round() as u64
            },
        }
    }
}

/// Nanoseconds in a short human unit (`850 ns`, `12.3 µs`, `4.56 ms`, `1.20 s`).
fn human_ns(ns: u64) -> String {
    let v = ns as f64;
    if ns < 1_000 {
        format!("{ns} ns")
    } else if ns < 1_000_000 {
        format!("{:.1} µs", v / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.2} ms", v / 1e6)
    } else {
        format!("{:.2} s", v / 1e9)
    }
}

impl fmt::Display for LatencySummary {
    /// `n 1200, p50 12.3 µs, p99 40.1 µs, p99.9 85.0 µs, max 1.20 ms`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "n {}, p50 {}, p99 {}, p99.9 {}, max {}",
            self.count,
            human_ns(self.p50),
            human_ns(self.p99),
            human_ns(self.p999),
            human_ns(self.max)
        )
    }
}

tandem_engine::counters! {
    /// The worker's own counters, besides the engine's: one Prometheus family,
    /// `tandem_worker_io_total{event}`.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct IoCounters {
        /// Receive bursts that brought at least one frame.
        rx_bursts: counter,
        /// Frames the transmit queue refused (freed and counted).
        tx_refused: counter,
        /// Frames for the control core lost because its ring was full.
        control_ring_full: counter,
        /// Signals lost because the signal ring was full.
        signal_ring_full: counter,
        /// Chained mbufs that could not be linearised (dropped).
        nonlinear: counter,
        /// Failed buffer allocations (copies, synthesised segments).
        alloc_failures: counter,
        /// Commands received from the control core.
        commands: counter,
        /// Frames passed to the worker that owns their flow (hand-off path).
        handed_off: counter,
        /// Frames other workers passed to this one.
        handoff_received: counter,
        /// Frames lost because the owner's hand-off ring was full.
        handoff_ring_full: counter,
        /// Frames for the control core (all but probe answers and ARP replies) dropped by the
        /// worker's rate limit (`limits.control_rate`, see `gate`).
        control_rate_limited: counter,
        /// Probe answers dropped by their own rate limit (a flood to the probe ports).
        answers_rate_limited: counter,
        /// ARP replies dropped by their own rate limit.
        arp_replies_rate_limited: counter,
        /// Probe answers and ARP replies lost because the answer ring was full.
        answer_ring_full: counter,
        /// Frames received and dropped because this appliance is not the active one of
        /// its pair (standby, quiesced for a handover, or suspended after a stall).
        pair_inactive_drops: counter,
        /// Records from the appliance peer handed to the engine to install.
        sync_installs: counter,
        /// Records of whole-table walks (bulk syncs, a handover's final records) sent to
        /// the control core.
        sync_walked: counter,
    }
    family "tandem_worker_io_total" by "event",
        "The workers' own events (besides the engine's counters), by event";
}

/// One worker's published counters. Aligned to its own cache lines.
#[derive(Debug)]
#[repr(align(128))]
pub struct WorkerStats {
    engine: [AtomicU64; Counters::N],
    drops: [AtomicU64; DropReason::COUNT],
    io: [AtomicU64; IoCounters::N],
    /// Publishes so far (0: the worker has not started).
    publishes: AtomicU64,
    /// What the worker received before this time is in the control ring (the health
    /// monitor's horizon; see `worker::run`). Own line: written nearly every pass.
    polled: PolledStamp,
    /// Added latency, nanoseconds, since the worker started: the worker adds to it every
    /// [`LATENCY_FOLD_INTERVAL_NS`] without waiting; readers lock it briefly.
    latency: Mutex<Histogram<u64>>,
}

/// [`WorkerStats`]'s pass stamp, on a cache line of its own.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct PolledStamp(AtomicU64);

impl Default for WorkerStats {
    fn default() -> Self {
        WorkerStats {
            engine: [const { AtomicU64::new(0) }; Counters::N],
            drops: [const { AtomicU64::new(0) }; DropReason::COUNT],
            io: [const { AtomicU64::new(0) }; IoCounters::N],
            publishes: AtomicU64::new(0),
            polled: PolledStamp::default(),
            latency: Mutex::new(histogram(LATENCY_MAX_NS)),
        }
    }
}

impl WorkerStats {
    /// Worker: writes a snapshot.
    pub fn publish(&self, c: &Counters, io: &IoCounters) {
        for (slot, v) in self.engine.iter().zip(c.to_array()) {
            slot.store(v, Ordering::Relaxed);
        }
        for (slot, v) in self.drops.iter().zip(c.drops) {
            slot.store(v, Ordering::Relaxed);
        }
        for (slot, v) in self.io.iter().zip(io.to_array()) {
            slot.store(v, Ordering::Relaxed);
        }
        self.publishes.fetch_add(1, Ordering::Release);
    }

    /// Worker: every frame it received before `t` is in the control ring.
    #[inline]
    pub fn set_polled(&self, t: u64) {
        self.polled.0.store(t, Ordering::Release);
    }

    /// The worker's horizon (0: none yet).
    pub fn polled(&self) -> u64 {
        self.polled.0.load(Ordering::Acquire)
    }

    /// How many times the worker has published (it does every millisecond while its loop
    /// runs): a count that stops moving means the worker has stopped.
    pub fn publishes(&self) -> u64 {
        self.publishes.load(Ordering::Acquire)
    }

    /// Worker: adds `local` (same bounds as the slot's: [`histogram`]`(`[`LATENCY_MAX_NS`]`)`)
    /// to the slot's latency histogram and empties it. Does not wait: if a reader holds
    /// the lock, returns false and `local` keeps its values for the next try.
    pub fn fold_latency(&self, local: &mut Histogram<u64>) -> bool {
        let mut shared = match self.latency.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return false,
        };
        fold(&mut shared, local);
        true
    }

    /// Reader: runs `f` on the latency histogram (the worker's fold waits for the next
    /// try meanwhile, so keep it short).
    pub fn with_latency<R>(&self, f: impl FnOnce(&Histogram<u64>) -> R) -> R {
        f(&lock(&self.latency))
    }

    /// Reader: copies the last snapshot.
    pub fn read(&self) -> (Counters, IoCounters) {
        let _ = self.publishes.load(Ordering::Acquire);
        let load = |slot: &AtomicU64| slot.load(Ordering::Relaxed);
        let mut e = Counters::from_array(self.engine.each_ref().map(load));
        e.drops = self.drops.each_ref().map(load);
        (e, IoCounters::from_array(self.io.each_ref().map(load)))
    }
}

/// One port's DPDK counters at exit.
#[derive(Clone, Debug)]
pub struct PortSummary {
    /// `outside` or `inside`.
    pub role: &'static str,
    /// DPDK device name.
    pub device: String,
    /// The basic counters.
    pub stats: tandem_dpdk::PortStats,
}

/// What `tandem run` prints when it stops.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Seconds the data path ran.
    pub seconds: f64,
    /// Per worker: lcore, engine and I/O counters.
    pub workers: Vec<(u32, Counters, IoCounters)>,
    /// The control core.
    pub control: ControlCounters,
    /// Per port.
    pub ports: Vec<PortSummary>,
    /// Resolved neighbours: (address, MAC, what it is).
    pub neighbours: Vec<(std::net::Ipv4Addr, Option<tandem_wire::MacAddr>, String)>,
}

impl Summary {
    /// The engine counters of all workers added up.
    pub fn engine_total(&self) -> Counters {
        let mut t = Counters::default();
        for (_, e, _) in &self.workers {
            t.add(e);
        }
        t
    }

    /// The I/O counters of all workers added up.
    pub fn io_total(&self) -> IoCounters {
        let mut t = IoCounters::default();
        for (_, _, io) in &self.workers {
            t.add(io);
        }
        t
    }
}

fn mac_text(m: Option<tandem_wire::MacAddr>) -> String {
    match m {
        Some(tandem_wire::MacAddr(b)) => format!(
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        ),
        None => "unresolved".to_owned(),
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.engine_total();
        writeln!(f, "tandem summary after {:.1} s", self.seconds)?;
        writeln!(f, "data path (all workers):")?;
        for (c, v) in t.counters() {
            writeln!(f, "  {:<20} {v}", c.name)?;
        }
        writeln!(f, "drops by reason (all workers):")?;
        for r in DropReason::ALL {
            writeln!(f, "  drop.{:<15} {}", r.label(), t.dropped(*r))?;
        }
        writeln!(f, "worker I/O (all workers):")?;
        for (c, v) in self.io_total().counters() {
            writeln!(f, "  {:<20} {v}", c.name)?;
        }
        if self.workers.len() > 1 {
            for (lcore, e, _) in &self.workers {
                writeln!(
                    f,
                    "  worker lcore {lcore}: rx {} tx {} flows_created {}",
                    e.rx, e.tx, e.flows_created
                )?;
            }
        }
        writeln!(f, "control core:")?;
        for (c, v) in self.control.counters() {
            writeln!(f, "  control.{:<12} {v}", c.name)?;
        }
        writeln!(f, "neighbours:")?;
        for (ip, mac, what) in &self.neighbours {
            writeln!(f, "  {ip:<15} {:<17} {what}", mac_text(*mac))?;
        }
        writeln!(f, "ports (DPDK counters):")?;
        for p in &self.ports {
            let s = &p.stats;
            writeln!(
                f,
                "  {} ({}): ipackets {} ibytes {} opackets {} obytes {} imissed {} ierrors {} \
                 oerrors {} rx_nombuf {}",
                p.role,
                p.device,
                s.ipackets,
                s.ibytes,
                s.opackets,
                s.obytes,
                s.imissed,
                s.ierrors,
                s.oerrors,
                s.rx_nombuf
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_moves_the_values_and_empties_the_source() {
        let mut shared = histogram(LATENCY_MAX_NS);
        let mut local = histogram(LATENCY_MAX_NS);
        for v in [100, 200, 300] {
            local.saturating_record(v);
        }
        fold(&mut shared, &mut local);
        assert!(local.is_empty());
        assert_eq!(shared.len(), 3);
        local.saturating_record(400);
        fold(&mut shared, &mut local);
        assert_eq!((shared.len(), shared.max()), (4, 400));
        // Different bounds (a wider source): its values are clamped, not refused.
        let mut wide = histogram(RECOVERY_MAX_NS);
        wide.saturating_record(10 * LATENCY_MAX_NS);
        fold(&mut shared, &mut wide);
        assert_eq!(shared.len(), 5);
        assert!(shared.equivalent(shared.max(), LATENCY_MAX_NS));
    }

    #[test]
    fn a_worker_folds_into_its_slot_without_waiting() {
        let slot = WorkerStats::default();
        let mut local = histogram(LATENCY_MAX_NS);
        local.saturating_record(1_000);
        slot.with_latency(|_| {
            // A reader holds the lock: the fold is deferred, the values stay.
            assert!(!slot.fold_latency(&mut local));
        });
        assert_eq!(local.len(), 1);
        assert!(slot.fold_latency(&mut local));
        assert!(local.is_empty());
        assert_eq!(slot.with_latency(|h| h.len()), 1);
    }

    #[test]
    fn worker_and_control_counters_follow_the_prometheus_conventions() {
        use tandem_engine::{CounterKind, CounterSet, CounterSpec};
        let check = |specs: &[CounterSpec]| {
            for (i, c) in specs.iter().enumerate() {
                assert!(c.prometheus.starts_with("tandem_"), "{c:?}");
                let total = c.prometheus.ends_with("_total");
                assert_eq!(total, c.kind == CounterKind::Counter, "{c:?}");
                assert!(
                    !c.help.is_empty() && !c.help.contains(['\n', '\\']),
                    "{c:?}"
                );
                assert!(specs[..i].iter().all(|o| o.name != c.name), "{c:?} twice");
            }
        };
        check(IoCounters::SPECS);
        check(ControlCounters::SPECS);
        // One family, one type.
        assert!(IoCounters::SPECS
            .iter()
            .all(|c| c.kind == CounterKind::Counter));
        assert_eq!(ControlCounters::FAMILY, None);
        let names: Vec<&str> = ControlCounters::SPECS
            .iter()
            .map(|c| c.prometheus)
            .collect();
        assert!(
            names
                .iter()
                .enumerate()
                .all(|(i, n)| !names[..i].contains(n)),
            "{names:?}"
        );
    }

    #[test]
    fn summaries_have_monotone_quantiles() {
        let mut h = histogram(LATENCY_MAX_NS);
        assert_eq!(LatencySummary::of(&h), None);
        for v in 1..=10_000u64 {
            h.saturating_record(v * 100);
        }
        let s = LatencySummary::of(&h).expect("values");
        assert_eq!(s.count, 10_000);
        assert!(
            s.p50 <= s.p99 && s.p99 <= s.p999 && s.p999 <= s.max,
            "{s:?}"
        );
        assert!(h.equivalent(s.p50, 500_000), "{s:?}");
        assert!(h.equivalent(s.p99, 990_000), "{s:?}");
        assert!(h.equivalent(s.max, 1_000_000), "{s:?}");
        // 100 × (1 + … + 10 000) ns, to the buckets' resolution.
        let exact = 100.0 * 10_000.0 * 10_001.0 / 2.0;
        assert!((s.sum as f64 - exact).abs() < exact * 0.001, "{s:?}");
        assert_eq!(
            s.to_string(),
            "n 10000, p50 500.2 µs, p99 990.2 µs, p99.9 999.4 µs, max 1.00 ms"
        );
    }
}
