//! Prometheus text metrics (issue #5) on the profile's `management.metrics` address
//! (off the DPDK ports; 127.0.0.1 by default), served by a thread of its own from what the
//! workers publish (their [`WorkerStats`]), the control core's counters (copied into
//! [`Shared`] between its passes) and the shared replica table.
//!
//! Names follow Prometheus conventions: `tandem_…_total` for counters, base units, one
//! label per dimension (`lcore`, `reason`, `replica`).
//!
//! The counters' metrics come from their declarations ([`tandem_engine::counters!`]):
//! name, type and `# HELP` of the engine's [`Counters`] (per `lcore`), the workers'
//! [`IoCounters`] (one family, `tandem_worker_io_total{lcore,event}`) and the control
//! core's [`ControlCounters`]; the drops come from [`DropReason`]. The telemetry
//! dictionary walks the same tables.
//!
//! Latency and recovery (issues #5, #6) are summaries in seconds, over the whole run:
//!
//! - `tandem_added_latency_seconds` (quantiles 0.5, 0.99, 0.999, `_sum`, `_count`): the
//!   time from a frame's receive burst to its transmit enqueue, all workers merged, and
//!   `tandem_added_latency_max_seconds`. Merged only, not per `lcore`: quantiles cannot
//!   be combined across series, so per-core summaries would leave the figure an operator
//!   asks for (the appliance's latency) uncomputable, and a merged series beside
//!   per-core ones in one family would be double counted by `sum()`. The per-core
//!   histograms stay in the workers' slots for a later per-core view.
//! - `tandem_added_latency_histogram_seconds` (histogram: `_bucket{le}`, `_sum`,
//!   `_count`): the same values in fixed buckets from 0.5 µs to 1 s, dense around 10 µs
//!   ([`crate::stats::LATENCY_BUCKETS_NS`]). Counts are cumulative, so the difference of
//!   two scrapes is the distribution of that window (`histogram_quantile(…, rate(…))`,
//!   or the benchmark's per-phase figures), which the summary's whole-run quantiles
//!   cannot give.
//! - `tandem_recovery_seconds` (same quantiles, `_sum`, `_count`): from the first sign of
//!   each failover to the switch ([`Shared::record_recovery`]), and
//!   `tandem_recovery_max_seconds`.
//!
//! With nothing recorded yet, the quantiles read `NaN` and the counts 0 (Prometheus's
//! convention for an empty summary), so that the families are always there. `_sum` is
//! computed from the histogram's buckets (within 0.1 %).
//!
//! New flows: `tandem_flows_created_total` (per `lcore`, a counter like the other engine
//! counters) for `rate()`, and `tandem_new_flows_per_second`, the flows created over the
//! last full second, sampled by the metrics thread itself once a second, for a reader
//! without PromQL (`tandem status`, DPDK telemetry).
//!
//! Forward mode (benchmarks): `tandem_flows_adopted_total` (per `lcore`) counts the flows
//! adopted from whatever segment came first; they are also in `tandem_flows_created_total`.
//!
//! Listeners (issue #14): `tandem_listener_drops_total` (`listener`: `management` or
//! `metrics`; `reason`: see [`ListenerCounters`]) counts the connections either listener
//! refused or cut short.
//!
//! The DPDK side (issue #18), as the control core last read it, once a second
//! ([`crate::device`]): `tandem_mbufs_in_use` and `tandem_mbufs_free` (gauges, per
//! `pool`), and `tandem_port_xstat{port,device,name}`, every extended statistic of each
//! port by DPDK's name (`rx_missed_errors`, `rx_errors`, `tx_errors`,
//! `rx_mbuf_allocation_errors` on every driver; most count since start, a few drivers add
//! gauges, so the family is `untyped`). The hold slots are the engine's gauges
//! `tandem_held_segments` (in use) and `tandem_hold_slots_free`, per `lcore`.
//!
//! The same figures answer the DPDK telemetry commands `/tandem/stats` and
//! `/tandem/status` ([`Shared::stats_dict`], [`Shared::status_dict`]).

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tandem_dpdk::telemetry::Value;
use tandem_engine::{
    CounterKind, CounterSet, Counters, DropReason, Health, ReplicaId, ReplicaTable,
};

use crate::device::DeviceStats;
use crate::serve::{Conns, Limits, Line, ListenerCounters, Reply};
use crate::stats::{
    histogram, lock, merge, ControlCounters, IoCounters, LatencyBuckets, LatencySummary,
    WorkerStats, LATENCY_BUCKETS_NS, LATENCY_MAX_NS,
};

/// What the metrics thread reads.
pub struct Shared {
    /// Each worker's lcore and published counters.
    pub workers: Vec<(u32, Arc<WorkerStats>)>,
    /// The control core's counters, as of its last pass.
    pub control: Mutex<ControlCounters>,
    /// The appliance pair's counters (the node's, the runtime's), as of the control
    /// core's last pass (none: not one of a pair).
    pub ha: Mutex<Option<(tandem_control::ha::HaCounters, crate::pair::PairCounters)>>,
    /// Health and addresses.
    pub replicas: Arc<ReplicaTable>,
    /// `service/replica` names (the control core updates them on `tandem add`/`remove`).
    pub names: Mutex<Vec<(String, ReplicaId)>>,
    /// Recovery times of the failovers, nanoseconds: make it with
    /// [`histogram`]`(`[`RECOVERY_MAX_NS`](crate::stats::RECOVERY_MAX_NS)`)`; record with
    /// [`Shared::record_recovery`].
    pub recovery: Mutex<Histogram<u64>>,
    /// Flows created over the last full second, all workers (the metrics thread samples
    /// it; see [`FlowRate`]).
    pub new_flows_per_second: AtomicU64,
    /// Failovers per replica (detected or ordered), kept by the control core.
    pub replica_failovers: Mutex<Vec<(ReplicaId, u64)>>,
    /// Flows on which each replica's output diverged from the active's (§3.12), kept by
    /// the control core.
    pub replica_diverged: Mutex<Vec<(ReplicaId, u64)>>,
    /// Connections the management socket and this listener refused or cut short.
    pub listeners: Listeners,
    /// The packet buffer pools and the ports' extended statistics, as the control core
    /// last read them.
    pub device: Mutex<DeviceStats>,
}

/// The counters of the two listeners (each served by its own thread).
#[derive(Debug, Default)]
pub struct Listeners {
    /// The management socket's.
    pub management: Arc<ListenerCounters>,
    /// The metrics listener's.
    pub metrics: Arc<ListenerCounters>,
}

impl Listeners {
    /// Each listener's name and counts, in the order of [`ListenerCounters::REASONS`].
    pub fn read(&self) -> [(&'static str, [u64; 4]); 2] {
        [
            ("management", self.management.read()),
            ("metrics", self.metrics.read()),
        ]
    }
}

impl Shared {
    /// A copy of the replica names (a poisoned lock reads as none: the metrics thread
    /// must never take the appliance down).
    pub fn names(&self) -> Vec<(String, ReplicaId)> {
        self.names.lock().map(|n| n.clone()).unwrap_or_default()
    }

    /// Control core: one more failover of `id`.
    pub fn count_failover(&self, id: ReplicaId) {
        let mut f = lock(&self.replica_failovers);
        match f.iter_mut().find(|(r, _)| *r == id) {
            Some((_, n)) => *n += 1,
            None => f.push((id, 1)),
        }
    }

    /// Control core: `id` left the table (`tandem remove`); its counts go with it.
    pub fn forget_replica(&self, id: ReplicaId) {
        lock(&self.replica_failovers).retain(|(r, _)| *r != id);
        lock(&self.replica_diverged).retain(|(r, _)| *r != id);
    }

    /// Control core: `id`'s flows diverged so far.
    pub fn set_diverged(&self, id: ReplicaId, n: u64) {
        let mut d = lock(&self.replica_diverged);
        match d.iter_mut().find(|(r, _)| *r == id) {
            Some((_, v)) => *v = n,
            None => d.push((id, n)),
        }
    }

    /// Flows on which `id` diverged so far.
    pub fn diverged_of(&self, id: ReplicaId) -> u64 {
        lock(&self.replica_diverged)
            .iter()
            .find(|(r, _)| *r == id)
            .map_or(0, |(_, n)| *n)
    }

    /// Failovers of `id` so far.
    pub fn failovers_of(&self, id: ReplicaId) -> u64 {
        lock(&self.replica_failovers)
            .iter()
            .find(|(r, _)| *r == id)
            .map_or(0, |(_, n)| *n)
    }

    /// Each worker's lcore and last published counters.
    fn snapshots(&self) -> Vec<(u32, Counters, IoCounters)> {
        self.workers
            .iter()
            .map(|(lc, s)| {
                let (e, io) = s.read();
                (*lc, e, io)
            })
            .collect()
    }

    /// The counters of all workers added up (as of their last publish).
    fn totals(&self) -> (Counters, IoCounters) {
        let (mut engine, mut io) = (Counters::default(), IoCounters::default());
        for (_, s) in &self.workers {
            let (e, w) = s.read();
            engine.add(&e);
            io.add(&w);
        }
        (engine, io)
    }

    fn render(&self) -> String {
        let workers = self.snapshots();
        let control = self.control.lock().map(|c| *c).unwrap_or_default();
        let ha = self.ha.lock().map(|h| *h).unwrap_or_default();
        let names = self.names();
        let replicas: Vec<(String, Ipv4Addr, Health, u64, u64)> = names
            .iter()
            .map(|(n, id)| {
                (
                    n.clone(),
                    self.replicas.addr(*id),
                    self.replicas.health(*id),
                    self.failovers_of(*id),
                    self.diverged_of(*id),
                )
            })
            .collect();
        let device = self.device.lock().map(|d| d.clone()).unwrap_or_default();
        render(
            &workers,
            &control,
            ha.as_ref().map(|(n, p)| (n, p)),
            &replicas,
            &self.listeners.read(),
            &self.derived(),
            &device,
        )
    }

    /// Records a failover's recovery time, `ns` from its first sign to the switch (values
    /// past the histogram's top count as the top). Waits only for a reader's summary; a
    /// poisoned lock is used as it is.
    pub fn record_recovery(&self, ns: u64) {
        lock(&self.recovery).saturating_record(ns);
    }

    /// Added latency, all workers merged, as of their last fold (up to 100 ms old);
    /// `None` before any frame was measured.
    pub fn latency_summary(&self) -> Option<LatencySummary> {
        LatencySummary::of(&self.latency_merged())
    }

    /// All workers' added-latency histograms, merged (as of their last fold).
    fn latency_merged(&self) -> Histogram<u64> {
        let mut all = histogram(LATENCY_MAX_NS);
        for (_, s) in &self.workers {
            s.with_latency(|h| merge(&mut all, h));
        }
        all
    }

    /// Recovery times of the failovers so far; `None` before the first.
    pub fn recovery_summary(&self) -> Option<LatencySummary> {
        LatencySummary::of(&lock(&self.recovery))
    }

    /// Flows created so far, all workers (as of their last publish).
    pub fn flows_created(&self) -> u64 {
        self.workers
            .iter()
            .map(|(_, s)| s.read().0.flows_created)
            .sum()
    }

    /// The figures computed from histograms and samples.
    fn derived(&self) -> Derived {
        let latency = self.latency_merged();
        Derived {
            latency: LatencySummary::of(&latency),
            latency_buckets: LatencyBuckets::of(&latency),
            recovery: self.recovery_summary(),
            new_flows_per_second: self.new_flows_per_second.load(Ordering::Relaxed),
        }
    }
}

/// Figures the metrics thread computes, beside the counters: latency and recovery
/// summaries, the rate of new flows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Derived {
    /// Added latency, all workers.
    pub latency: Option<LatencySummary>,
    /// The same values in fixed buckets, for windows between scrapes.
    pub latency_buckets: LatencyBuckets,
    /// Failover recovery times.
    pub recovery: Option<LatencySummary>,
    /// Flows created over the last full second.
    pub new_flows_per_second: u64,
}

/// Turns samples of a growing counter into a per-second rate, over at least a second.
#[derive(Clone, Copy, Debug, Default)]
pub struct FlowRate {
    /// The sample the next rate starts from: (time in ns, counter).
    last: Option<(u64, u64)>,
}

impl FlowRate {
    /// A sample of the counter at `now_ns` (`total` reads it, only when needed): once a
    /// second or more has passed since the previous rate's end, the rate per second over
    /// that span (rounded; a counter that went back counts as no growth), else `None`.
    pub fn sample(&mut self, now_ns: u64, total: impl FnOnce() -> u64) -> Option<u64> {
        let Some((t0, n0)) = self.last else {
            self.last = Some((now_ns, total()));
            return None;
        };
        let span = now_ns.saturating_sub(t0);
        if span < 1_000_000_000 {
            return None;
        }
        let total = total();
        self.last = Some((now_ns, total));
        let grown = u128::from(total.saturating_sub(n0));
        let rate = (grown * 1_000_000_000 + u128::from(span) / 2) / u128::from(span);
        Some(u64::try_from(rate).unwrap_or(u64::MAX))
    }
}

impl Shared {
    /// `/tandem/stats` (DPDK telemetry): every worker counter summed (the engine's by
    /// name, `drop/<reason>`, `io/<name>`), the control core's (`control/<name>`).
    pub fn stats_dict(&self) -> Vec<(String, Value)> {
        let (engine, io) = self.totals();
        let mut out = Vec::new();
        dict_set(&mut out, "", &engine);
        for r in DropReason::ALL {
            out.push((
                format!("drop/{}", r.label()),
                Value::U64(engine.dropped(*r)),
            ));
        }
        dict_set(&mut out, "io/", &io);
        let control = self.control.lock().map(|c| *c).unwrap_or_default();
        dict_set(&mut out, "control/", &control);
        let d = self.derived();
        for (prefix, sum) in [("latency", d.latency), ("recovery", d.recovery)] {
            let sum = sum.unwrap_or_default();
            for (l, v) in [
                ("p50_ns", sum.p50),
                ("p99_ns", sum.p99),
                ("p999_ns", sum.p999),
                ("max_ns", sum.max),
                ("count", sum.count),
            ] {
                out.push((format!("{prefix}/{l}"), Value::U64(v)));
            }
        }
        out.push((
            "new_flows_per_second".to_owned(),
            Value::U64(d.new_flows_per_second),
        ));
        for (listener, counts) in self.listeners.read() {
            for (reason, n) in ListenerCounters::REASONS.iter().zip(counts) {
                out.push((format!("listener/{listener}/{reason}"), Value::U64(n)));
            }
        }
        let device = self.device.lock().map(|d| d.clone()).unwrap_or_default();
        for p in &device.mbufs {
            let pool = telemetry_key(&p.name);
            out.push((format!("mbufs/{pool}/in_use"), Value::U64(p.in_use)));
            out.push((format!("mbufs/{pool}/free"), Value::U64(p.free)));
        }
        for p in &device.ports {
            for x in &p.xstats {
                let key = format!("port/{}/{}", p.port, telemetry_key(&x.name));
                out.push((key, Value::U64(x.count)));
            }
        }
        out
    }

    /// `/tandem/status` (DPDK telemetry): each replica's health, flows.
    pub fn status_dict(&self) -> Vec<(String, Value)> {
        let mut out: Vec<(String, Value)> = self
            .names()
            .iter()
            .map(|(n, id)| {
                let h = match self.replicas.health(*id) {
                    Health::Up => "up",
                    Health::Draining => "draining",
                    Health::Down => "down",
                    Health::Unused => "unused",
                };
                (
                    n.clone(),
                    Value::Str(format!("{} {h}", self.replicas.addr(*id))),
                )
            })
            .collect();
        let (engine, _) = self.totals();
        out.push(("flows".to_owned(), Value::U64(engine.flows)));
        out.push((
            "flows_unprotected".to_owned(),
            Value::U64(engine.flows_unprotected),
        ));
        out.push(("workers".to_owned(), Value::U64(self.workers.len() as u64)));
        out
    }
}

/// Appends each counter of `set` to a telemetry dictionary, keyed `<prefix><name>`.
fn dict_set<S: CounterSet>(out: &mut Vec<(String, Value)>, prefix: &str, set: &S) {
    out.extend(
        set.counters()
            .map(|(c, v)| (format!("{prefix}{}", c.name), Value::U64(v))),
    );
}

/// `name` with every character a telemetry key does not take (letters, digits, `_`)
/// as `_`.
fn telemetry_key(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// A label value as the exposition format writes it: `\`, `"` and newlines escaped.
fn label_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// The pools' gauges and the ports' extended statistics.
fn write_device(s: &mut String, device: &DeviceStats) {
    let pool = |p: &crate::answer::MbufPool| format!("pool=\"{}\"", label_value(&p.name));
    write_header(
        s,
        "tandem_mbufs_in_use",
        CounterKind::Gauge,
        "Packet buffers out of the pool now: in receive rings, in flight, held for standbys",
    );
    for p in &device.mbufs {
        write_sample(s, "tandem_mbufs_in_use", &pool(p), p.in_use);
    }
    write_header(
        s,
        "tandem_mbufs_free",
        CounterKind::Gauge,
        "Packet buffers in the pool and the lcores' caches now",
    );
    for p in &device.mbufs {
        write_sample(s, "tandem_mbufs_free", &pool(p), p.free);
    }
    let _ = writeln!(
        s,
        "# HELP tandem_port_xstat Each port's DPDK extended statistics by DPDK's name, read once a second (most count since start)"
    );
    let _ = writeln!(s, "# TYPE tandem_port_xstat untyped");
    for p in &device.ports {
        for x in &p.xstats {
            let labels = format!(
                "port=\"{}\",device=\"{}\",name=\"{}\"",
                label_value(&p.port),
                label_value(&p.device),
                label_value(&x.name)
            );
            write_sample(s, "tandem_port_xstat", &labels, x.count);
        }
    }
}

/// A metric's `# HELP` and `# TYPE` lines.
fn write_header(s: &mut String, name: &str, kind: CounterKind, help: &str) {
    let _ = writeln!(s, "# HELP {name} {help}");
    let _ = writeln!(s, "# TYPE {name} {}", kind.prometheus_type());
}

/// One sample line: `name{labels} value`, or `name value` with no labels.
fn write_sample(s: &mut String, name: &str, labels: &str, value: u64) {
    if labels.is_empty() {
        let _ = writeln!(s, "{name} {value}");
    } else {
        let _ = writeln!(s, "{name}{{{labels}}} {value}");
    }
}

/// The counters of a [`CounterSet`] from each of `sources` (its labels, such as
/// `lcore="1"`, or none, and its values), from the set's declarations: a metric per
/// counter, or one family with a series per counter when the set is declared as one.
fn write_set<S: CounterSet>(s: &mut String, sources: &[(String, &S)]) {
    if let Some(family) = S::FAMILY {
        // A family has one type: its counters are declared with the same kind.
        let kind = S::SPECS.first().map_or(CounterKind::Counter, |c| c.kind);
        write_header(s, family.name, kind, family.help);
        for (labels, set) in sources {
            for (c, v) in set.counters() {
                let sep = if labels.is_empty() { "" } else { "," };
                let labels = format!("{labels}{sep}{}=\"{}\"", family.label, c.name);
                write_sample(s, family.name, &labels, v);
            }
        }
        return;
    }
    // Metric by metric, each with all its sources' samples.
    let mut columns: Vec<(&str, _)> = sources
        .iter()
        .map(|(labels, set)| (labels.as_str(), set.values()))
        .collect();
    for c in S::SPECS {
        write_header(s, c.prometheus, c.kind, c.help);
        for (labels, values) in &mut columns {
            if let Some(v) = values.next() {
                write_sample(s, c.prometheus, labels, v);
            }
        }
    }
}

/// Seconds, from nanoseconds, as the exposition writes them.
fn seconds(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// A summary family in seconds (quantiles 0.5, 0.99, 0.999, `_sum`, `_count`) and its
/// `_max_seconds` gauge, from `sum` (`None`: nothing recorded).
fn write_summary(s: &mut String, name: &str, help: &str, sum: Option<LatencySummary>) {
    let _ = writeln!(s, "# HELP {name}_seconds {help}");
    let _ = writeln!(s, "# TYPE {name}_seconds summary");
    for (q, v) in [
        ("0.5", sum.map(|x| x.p50)),
        ("0.99", sum.map(|x| x.p99)),
        ("0.999", sum.map(|x| x.p999)),
    ] {
        let v = v.map_or(f64::NAN, seconds);
        let _ = writeln!(s, "{name}_seconds{{quantile=\"{q}\"}} {v}");
    }
    let (total, count) = sum.map_or((0.0, 0), |x| (seconds(x.sum), x.count));
    let _ = writeln!(s, "{name}_seconds_sum {total}");
    let _ = writeln!(s, "{name}_seconds_count {count}");
    let _ = writeln!(
        s,
        "# HELP {name}_max_seconds The largest of {name}_seconds (0: none yet)"
    );
    let _ = writeln!(s, "# TYPE {name}_max_seconds gauge");
    let max = sum.map_or(0.0, |x| seconds(x.max));
    let _ = writeln!(s, "{name}_max_seconds {max}");
}

/// A histogram family in seconds (`_bucket{le}`, `_sum`, `_count`) from `b`.
fn write_buckets(s: &mut String, name: &str, help: &str, b: &LatencyBuckets) {
    let _ = writeln!(s, "# HELP {name}_seconds {help}");
    let _ = writeln!(s, "# TYPE {name}_seconds histogram");
    for (bound, count) in LATENCY_BUCKETS_NS.iter().zip(b.le) {
        let le = seconds(*bound);
        let _ = writeln!(s, "{name}_seconds_bucket{{le=\"{le}\"}} {count}");
    }
    let _ = writeln!(s, "{name}_seconds_bucket{{le=\"+Inf\"}} {}", b.count);
    let _ = writeln!(s, "{name}_seconds_sum {}", seconds(b.sum));
    let _ = writeln!(s, "{name}_seconds_count {}", b.count);
}

/// The exposition text.
pub fn render(
    workers: &[(u32, Counters, IoCounters)],
    control: &ControlCounters,
    ha: Option<(&tandem_control::ha::HaCounters, &crate::pair::PairCounters)>,
    replicas: &[(String, Ipv4Addr, Health, u64, u64)],
    listeners: &[(&str, [u64; 4])],
    derived: &Derived,
    device: &DeviceStats,
) -> String {
    let mut s = String::new();
    let lcore = |lc: &u32| format!("lcore=\"{lc}\"");
    let engines: Vec<(String, &Counters)> =
        workers.iter().map(|(lc, e, _)| (lcore(lc), e)).collect();
    write_set(&mut s, &engines);
    let _ = writeln!(
        s,
        "# HELP tandem_drops_total Packets the data path dropped, by reason"
    );
    let _ = writeln!(s, "# TYPE tandem_drops_total counter");
    for (lcore, e, _) in workers {
        for r in DropReason::ALL {
            let _ = writeln!(
                s,
                "tandem_drops_total{{lcore=\"{lcore}\",reason=\"{}\"}} {}",
                r.label(),
                e.dropped(*r)
            );
        }
    }
    let ios: Vec<(String, &IoCounters)> =
        workers.iter().map(|(lc, _, io)| (lcore(lc), io)).collect();
    write_set(&mut s, &ios);
    write_set(&mut s, &[(String::new(), control)]);
    if let Some((node, pair)) = ha {
        write_set(&mut s, &[(String::new(), node)]);
        write_set(&mut s, &[(String::new(), pair)]);
    }
    let _ = writeln!(
        s,
        "# HELP tandem_replica_up 1: takes new flows; 0: draining or down (see tandem_replica_state)"
    );
    let _ = writeln!(s, "# TYPE tandem_replica_up gauge");
    for (name, addr, h, _, _) in replicas {
        let _ = writeln!(
            s,
            "tandem_replica_up{{replica=\"{name}\",address=\"{addr}\"}} {}",
            u8::from(*h == Health::Up)
        );
    }
    let _ = writeln!(s, "# TYPE tandem_replica_state gauge");
    for (name, _, h, _, _) in replicas {
        for (state, is) in [
            ("up", *h == Health::Up),
            ("draining", *h == Health::Draining),
            ("down", *h == Health::Down),
        ] {
            let _ = writeln!(
                s,
                "tandem_replica_state{{replica=\"{name}\",state=\"{state}\"}} {}",
                u8::from(is)
            );
        }
    }
    let _ = writeln!(
        s,
        "# HELP tandem_replica_failovers_total Times the replica failed (detected, or `tandem fail`/`remove`)"
    );
    let _ = writeln!(s, "# TYPE tandem_replica_failovers_total counter");
    for (name, _, _, n, _) in replicas {
        let _ = writeln!(
            s,
            "tandem_replica_failovers_total{{replica=\"{name}\"}} {n}"
        );
    }
    let _ = writeln!(
        s,
        "# HELP tandem_flows_diverged_total Flows on which the replica's output differed from the active's at the same offsets (DESIGN §3.12): it left them"
    );
    let _ = writeln!(s, "# TYPE tandem_flows_diverged_total counter");
    for (name, _, _, _, n) in replicas {
        let service = name.split('/').next().unwrap_or(name);
        let _ = writeln!(
            s,
            "tandem_flows_diverged_total{{service=\"{service}\",replica=\"{name}\"}} {n}"
        );
    }
    let _ = writeln!(
        s,
        "# HELP tandem_listener_drops_total Connections to the management socket or the metrics listener refused or cut short, by reason"
    );
    let _ = writeln!(s, "# TYPE tandem_listener_drops_total counter");
    for (listener, counts) in listeners {
        for (reason, n) in ListenerCounters::REASONS.iter().zip(counts) {
            let _ = writeln!(
                s,
                "tandem_listener_drops_total{{listener=\"{listener}\",reason=\"{reason}\"}} {n}"
            );
        }
    }
    write_summary(
        &mut s,
        "tandem_added_latency",
        "Time from a frame's receive burst to its transmit enqueue, all workers, since start",
        derived.latency,
    );
    write_buckets(
        &mut s,
        "tandem_added_latency_histogram",
        "tandem_added_latency_seconds in cumulative buckets: subtract two scrapes for a window",
        &derived.latency_buckets,
    );
    write_summary(
        &mut s,
        "tandem_recovery",
        "Failover recovery time, from the first sign of a failure to the switch, since start",
        derived.recovery,
    );
    let _ = writeln!(
        s,
        "# HELP tandem_new_flows_per_second Flows created over the last full second, all workers"
    );
    let _ = writeln!(s, "# TYPE tandem_new_flows_per_second gauge");
    let _ = writeln!(
        s,
        "tandem_new_flows_per_second {}",
        derived.new_flows_per_second
    );
    write_device(&mut s, device);
    s
}

/// The running metrics listener; stops when dropped.
pub struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Connections served at once (only the oldest still sending is closed to make room).
const MAX_CONNS: usize = 32;

const LIMITS: Limits = Limits {
    name: "metrics",
    // A scraper sends its request at once; a client that has not in 2 s never will.
    request: Duration::from_secs(2),
    life: Duration::from_secs(4),
    max_line: 1024,
    max_conns: MAX_CONNS,
    timeout_answer:
        "HTTP/1.0 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
};

impl Server {
    /// Listens on `addr` and serves `GET /metrics` from `shared`, to every client at once
    /// without waiting on any ([`crate::serve`]): a client has 2 s for its request line
    /// and 4 s in all; what is cut is counted in `shared.listeners.metrics`.
    ///
    /// # Errors
    ///
    /// The address cannot be bound.
    pub fn start(addr: SocketAddr, shared: Arc<Shared>) -> std::io::Result<Server> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("tandem-metrics".to_owned())
            .spawn(move || {
                let start = Instant::now();
                let mut rate = FlowRate::default();
                let mut conns = Conns::new(LIMITS);
                let counters = shared.listeners.metrics.clone();
                while !flag.load(Ordering::Relaxed) {
                    let now = Instant::now();
                    let ns =
                        u64::try_from(now.duration_since(start).as_nanos()).unwrap_or(u64::MAX);
                    if let Some(r) = rate.sample(ns, || shared.flows_created()) {
                        shared.new_flows_per_second.store(r, Ordering::Relaxed);
                    }
                    let mut moved = false;
                    for _ in 0..MAX_CONNS {
                        match listener.accept() {
                            Ok((conn, _)) => {
                                moved = true;
                                if conn.set_nonblocking(true).is_ok() {
                                    conns.admit(conn, now, None, &counters);
                                }
                            }
                            Err(_) => break,
                        }
                    }
                    moved |= conns.pass(now, &counters, |line| http_answer(line, &shared));
                    if !moved {
                        // Nothing ready: poll again soon (sooner while a client is open).
                        let nap = if conns.is_empty() { 20 } else { 5 };
                        std::thread::sleep(Duration::from_millis(nap));
                    }
                }
            })?;
        Ok(Server {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The HTTP answer to a request line: the metrics for `GET /metrics` (or `/`).
fn http_answer(line: Line<'_>, shared: &Shared) -> Reply {
    let (status, body) = match line {
        Line::TooLong => ("414 URI Too Long", "GET /metrics\n".to_owned()),
        Line::Text(line) => {
            let path = line.split_whitespace().nth(1).unwrap_or("");
            if line.starts_with("GET ") && (path == "/metrics" || path == "/") {
                ("200 OK", shared.render())
            } else {
                ("404 Not Found", "GET /metrics\n".to_owned())
            }
        }
    };
    Reply::Now(format!(
        "HTTP/1.0 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use tandem_engine::CounterSpec;

    /// A histogram of `ns` values, with bounds as the workers'.
    fn latencies(values: &[u64]) -> Histogram<u64> {
        let mut h = histogram(LATENCY_MAX_NS);
        for v in values {
            h.saturating_record(*v);
        }
        h
    }

    /// The sample lines of family `name`: (labels, value).
    fn samples<'a>(text: &'a str, name: &str) -> Vec<(&'a str, f64)> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (series, value) = l.rsplit_once(' ')?;
                let (n, labels) = match series.split_once('{') {
                    Some((n, rest)) => (n, rest.trim_end_matches('}')),
                    None => (series, ""),
                };
                (n == name).then(|| (labels, value.parse::<f64>().expect("a float")))
            })
            .collect()
    }

    fn exposition(derived: &Derived) -> String {
        let e = Counters {
            rx: 7,
            flows: 3,
            flows_created: 5,
            ..Counters::default()
        };
        let c = ControlCounters {
            failovers: 2,
            ..ControlCounters::default()
        };
        render(
            &[(1, e, IoCounters::default())],
            &c,
            None,
            &[(
                "lab/primary".into(),
                Ipv4Addr::new(198, 19, 0, 11),
                Health::Down,
                2,
                1,
            )],
            &[("management", [1, 2, 3, 4]), ("metrics", [0; 4])],
            derived,
            &DeviceStats {
                mbufs: vec![crate::answer::MbufPool {
                    name: "tandem_mbufs".into(),
                    in_use: 300,
                    free: 32_467,
                }],
                ports: vec![crate::answer::PortXstats {
                    port: "outside".into(),
                    device: "net_af_packet0".into(),
                    xstats: vec![
                        crate::answer::Count {
                            name: "rx_missed_errors".into(),
                            count: 5,
                        },
                        // Not a name any driver has: escaped all the same.
                        crate::answer::Count {
                            name: "odd\"name\\".into(),
                            count: 1,
                        },
                    ],
                }],
            },
        )
    }

    #[test]
    fn exposition_names_types_and_labels() {
        let derived = Derived {
            latency: LatencySummary::of(&latencies(&[10_000, 20_000, 30_000])),
            latency_buckets: LatencyBuckets::of(&latencies(&[10_000, 20_000, 30_000])),
            recovery: None,
            new_flows_per_second: 42,
        };
        let text = exposition(&derived);
        for want in [
            "# TYPE tandem_rx_packets_total counter",
            "tandem_rx_packets_total{lcore=\"1\"} 7",
            "# TYPE tandem_flows gauge",
            "tandem_flows{lcore=\"1\"} 3",
            "# TYPE tandem_flows_created_total counter",
            "tandem_flows_created_total{lcore=\"1\"} 5",
            "tandem_drops_total{lcore=\"1\",reason=\"no_flow\"} 0",
            "tandem_control_failovers_total 2",
            "tandem_replica_up{replica=\"lab/primary\",address=\"198.19.0.11\"} 0",
            "tandem_replica_state{replica=\"lab/primary\",state=\"down\"} 1",
            "# TYPE tandem_replica_failovers_total counter",
            "tandem_replica_failovers_total{replica=\"lab/primary\"} 2",
            "# TYPE tandem_flows_diverged_total counter",
            "tandem_flows_diverged_total{service=\"lab\",replica=\"lab/primary\"} 1",
            "# TYPE tandem_added_latency_seconds summary",
            "tandem_added_latency_seconds_count 3",
            "# TYPE tandem_added_latency_max_seconds gauge",
            "# TYPE tandem_added_latency_histogram_seconds histogram",
            "tandem_added_latency_histogram_seconds_bucket{le=\"0.00001\"} 1",
            "tandem_added_latency_histogram_seconds_bucket{le=\"0.00002\"} 2",
            "tandem_added_latency_histogram_seconds_bucket{le=\"+Inf\"} 3",
            "tandem_added_latency_histogram_seconds_count 3",
            "# TYPE tandem_recovery_seconds summary",
            "tandem_recovery_seconds{quantile=\"0.99\"} NaN",
            "tandem_recovery_seconds_sum 0",
            "tandem_recovery_seconds_count 0",
            "tandem_recovery_max_seconds 0",
            "# TYPE tandem_new_flows_per_second gauge",
            "tandem_new_flows_per_second 42",
            "# TYPE tandem_listener_drops_total counter",
            "tandem_listener_drops_total{listener=\"management\",reason=\"peer_refused\"} 1",
            "tandem_listener_drops_total{listener=\"management\",reason=\"too_long\"} 4",
            "tandem_listener_drops_total{listener=\"metrics\",reason=\"deadline\"} 0",
            "# TYPE tandem_mbufs_in_use gauge\ntandem_mbufs_in_use{pool=\"tandem_mbufs\"} 300\n",
            "# TYPE tandem_mbufs_free gauge\ntandem_mbufs_free{pool=\"tandem_mbufs\"} 32467\n",
            "# TYPE tandem_port_xstat untyped",
            "tandem_port_xstat{port=\"outside\",device=\"net_af_packet0\",name=\"rx_missed_errors\"} 5\n",
            "tandem_port_xstat{port=\"outside\",device=\"net_af_packet0\",name=\"odd\\\"name\\\\\"} 1\n",
        ] {
            assert!(text.contains(want), "missing `{want}` in:\n{text}");
        }
        // Every sample line's metric has a TYPE line (a summary's `_sum` and `_count`, a
        // histogram's `_bucket` too, belong to its family), and a HELP line comes before
        // its TYPE line.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let name = l.split(['{', ' ']).next().unwrap_or("");
            let family = [
                name.strip_suffix("_sum"),
                name.strip_suffix("_count"),
                name.strip_suffix("_bucket"),
            ]
            .into_iter()
            .flatten()
            .find(|f| {
                text.contains(&format!("# TYPE {f} summary"))
                    || text.contains(&format!("# TYPE {f} histogram"))
            })
            .unwrap_or(name);
            assert!(text.contains(&format!("# TYPE {family} ")), "{name}");
        }
        let lines: Vec<&str> = text.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            if let Some(rest) = l.strip_prefix("# HELP ") {
                let name = rest.split(' ').next().unwrap_or("");
                let next = lines.get(i + 1).copied().unwrap_or("");
                assert!(next.starts_with(&format!("# TYPE {name} ")), "{l}");
            }
        }
    }

    #[test]
    fn latency_summary_lines_parse_and_match_what_was_recorded() {
        // 1000 frames: 1 µs .. 1 ms, and one past the histogram's top (clamped to 1 s).
        let mut values: Vec<u64> = (1..=999).map(|i| i * 1_000).collect();
        values.push(5 * LATENCY_MAX_NS);
        let derived = Derived {
            latency: LatencySummary::of(&latencies(&values)),
            latency_buckets: LatencyBuckets::of(&latencies(&values)),
            recovery: LatencySummary::of(&latencies(&[2_500_000])),
            new_flows_per_second: 0,
        };
        let text = exposition(&derived);
        for (name, count, max) in [
            ("tandem_added_latency", 1000.0, 1.0),
            ("tandem_recovery", 1.0, 0.0025),
        ] {
            let q = samples(&text, &format!("{name}_seconds"));
            let labels: Vec<&str> = q.iter().map(|(l, _)| *l).collect();
            assert_eq!(
                labels,
                [
                    "quantile=\"0.5\"",
                    "quantile=\"0.99\"",
                    "quantile=\"0.999\"",
                ],
                "{text}"
            );
            assert!(q.windows(2).all(|w| w[0].1 <= w[1].1), "monotone: {q:?}");
            let top = samples(&text, &format!("{name}_max_seconds"));
            assert_eq!(top.len(), 1);
            assert!(q.iter().all(|(_, v)| *v <= top[0].1), "{q:?} {top:?}");
            assert!((top[0].1 - max).abs() <= max * 0.001, "{top:?}");
            assert_eq!(
                samples(&text, &format!("{name}_seconds_count")),
                [("", count)]
            );
            let sum = samples(&text, &format!("{name}_seconds_sum"));
            assert_eq!(sum.len(), 1);
            assert!(sum[0].1 > 0.0, "{sum:?}");
        }
        let q = samples(&text, "tandem_added_latency_seconds");
        // The median of 1..999 µs (and a 1 s outlier) is about 500 µs.
        assert!((q[0].1 - 500e-6).abs() < 1e-6, "{q:?}");
        // The sum: 1 + … + 999 µs, and 1 s clamped.
        let sum = samples(&text, "tandem_added_latency_seconds_sum")[0].1;
        let exact = 0.4995 + 1.0;
        assert!((sum - exact).abs() < exact * 0.001, "{sum}");
    }

    #[test]
    fn latency_buckets_are_cumulative_and_subtract_into_a_window() {
        // Before: 1000 frames at 1..1000 µs. After: 100 more at 3 µs, 1 at 40 ms.
        let before: Vec<u64> = (1..=1000).map(|i| i * 1_000).collect();
        let mut after = before.clone();
        after.extend(std::iter::repeat_n(3_000, 100));
        after.push(40_000_000);
        let scrape = |values: &[u64]| {
            let d = Derived {
                latency_buckets: LatencyBuckets::of(&latencies(values)),
                ..Derived::default()
            };
            samples(
                &exposition(&d),
                "tandem_added_latency_histogram_seconds_bucket",
            )
            .into_iter()
            .map(|(l, v)| (l.to_owned(), v))
            .collect::<Vec<_>>()
        };
        let (b, a) = (scrape(&before), scrape(&after));
        assert_eq!(b.len(), LATENCY_BUCKETS_NS.len() + 1, "{b:?}");
        assert_eq!(b.last(), Some(&("le=\"+Inf\"".to_owned(), 1000.0)));
        assert!(b.windows(2).all(|w| w[0].1 <= w[1].1), "cumulative: {b:?}");
        let at = |v: &[(String, f64)], le: &str| {
            v.iter()
                .find(|(l, _)| l == &format!("le=\"{le}\""))
                .map(|(_, c)| *c)
        };
        // 1..1000 µs: 10 at or below 10 µs, 500 at or below 500 µs, all at or below 1 ms.
        assert_eq!(at(&b, "0.00001"), Some(10.0));
        assert_eq!(at(&b, "0.0005"), Some(500.0));
        assert_eq!(at(&b, "0.001"), Some(1000.0));
        // The window between the scrapes: the 100 frames at 3 µs, and the one at 40 ms.
        let window: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x.1 - y.1).collect();
        let i_2us = LATENCY_BUCKETS_NS
            .iter()
            .position(|&n| n == 2_000)
            .expect("a 2 µs bound");
        let i_3us = i_2us + 1;
        let i_10ms = LATENCY_BUCKETS_NS
            .iter()
            .position(|&n| n == 10_000_000)
            .expect("a 10 ms bound");
        assert_eq!(window[i_2us], 0.0, "{window:?}");
        assert_eq!(window[i_3us], 100.0, "{window:?}");
        assert_eq!(window[i_10ms], 100.0, "{window:?}");
        assert_eq!(window[i_10ms + 1], 101.0, "{window:?}");
        assert_eq!(window.last(), Some(&101.0));
        let empty = scrape(&[]);
        assert!(empty.iter().all(|(_, v)| *v == 0.0), "{empty:?}");
    }

    #[test]
    fn the_flow_rate_is_per_second_over_at_least_a_second() {
        let mut r = FlowRate::default();
        let s = 1_000_000_000;
        assert_eq!(
            r.sample(s, || 100),
            None,
            "the first sample starts the span"
        );
        assert_eq!(
            r.sample(s + s / 2, || panic!("not read before a second")),
            None
        );
        assert_eq!(r.sample(2 * s, || 350), Some(250));
        // A late sample (a slow client held the thread): still per second.
        assert_eq!(r.sample(4 * s, || 1_350), Some(500));
        // A counter that went back (cannot happen; must not underflow).
        assert_eq!(r.sample(5 * s, || 10), Some(0));
    }

    fn shared(workers: Vec<(u32, Arc<WorkerStats>)>) -> Shared {
        Shared {
            workers,
            control: Mutex::new(ControlCounters::default()),
            ha: Mutex::new(None),
            replicas: Arc::new(ReplicaTable::new(4)),
            names: Mutex::new(Vec::new()),
            recovery: Mutex::new(histogram(crate::stats::RECOVERY_MAX_NS)),
            new_flows_per_second: AtomicU64::new(0),
            replica_failovers: Mutex::new(Vec::new()),
            replica_diverged: Mutex::new(Vec::new()),
            listeners: Listeners::default(),
            device: Mutex::new(DeviceStats::default()),
        }
    }

    /// The summary's lines as the e2e scripts read them (`awk '$1 == k { print $2 }'`):
    /// (key, value).
    fn summary_fields(summary: &str) -> Vec<(&str, &str)> {
        summary
            .lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                Some((f.next()?, f.next()?)).filter(|_| f.next().is_none())
            })
            .collect()
    }

    #[test]
    fn every_declared_counter_reaches_the_metrics_the_telemetry_and_the_summary() {
        // Each counter a value of its own, through a worker's slot as a worker publishes.
        let mut engine = Counters::from_array(std::array::from_fn(|i| 1_000 + i as u64));
        engine.drops = std::array::from_fn(|i| 2_000 + i as u64);
        let io = IoCounters::from_array(std::array::from_fn(|i| 3_000 + i as u64));
        let control = ControlCounters::from_array(std::array::from_fn(|i| 4_000 + i as u64));
        let slot = Arc::new(WorkerStats::default());
        slot.publish(&engine, &io);
        assert_eq!(
            slot.read(),
            (engine.clone(), io),
            "slots keep every counter"
        );
        let sh = shared(vec![(1, slot)]);
        *lock(&sh.control) = control;
        let text = sh.render();
        let dict = sh.stats_dict();
        let summary = crate::stats::Summary {
            workers: sh.snapshots(),
            control,
            ..crate::stats::Summary::default()
        }
        .to_string();
        let fields = summary_fields(&summary);
        let shown = |prometheus: &str, key: &str, summary_key: &str, v: u64| {
            assert!(
                text.contains(&format!("{prometheus} {v}\n")),
                "{prometheus}:\n{text}"
            );
            assert!(
                dict.iter()
                    .any(|(k, x)| k == key && matches!(x, Value::U64(n) if *n == v)),
                "telemetry {key}"
            );
            let in_summary: Vec<_> = fields.iter().filter(|(k, _)| *k == summary_key).collect();
            assert_eq!(in_summary, [&(summary_key, &*v.to_string())], "{summary}");
        };
        let described = |c: &CounterSpec, name: &str, help: &str| {
            let kind = c.kind.prometheus_type();
            let header = format!("# HELP {name} {help}\n# TYPE {name} {kind}\n");
            assert_eq!(text.matches(&header).count(), 1, "{header}");
        };
        for (c, v) in engine.counters() {
            described(c, c.prometheus, c.help);
            shown(
                &format!("{}{{lcore=\"1\"}}", c.prometheus),
                c.name,
                c.name,
                v,
            );
        }
        for r in DropReason::ALL {
            let (label, v) = (r.label(), engine.dropped(*r));
            shown(
                &format!("tandem_drops_total{{lcore=\"1\",reason=\"{label}\"}}"),
                &format!("drop/{label}"),
                &format!("drop.{label}"),
                v,
            );
        }
        let family = IoCounters::FAMILY.expect("the workers' I/O is one family");
        for (c, v) in io.counters() {
            described(c, family.name, family.help);
            let series = format!(
                "{}{{lcore=\"1\",{}=\"{}\"}}",
                family.name, family.label, c.name
            );
            shown(&series, &format!("io/{}", c.name), c.name, v);
        }
        for (c, v) in control.counters() {
            described(c, c.prometheus, c.help);
            let (key, summary_key) = (format!("control/{}", c.name), format!("control.{}", c.name));
            shown(c.prometheus, &key, &summary_key, v);
        }
    }

    #[test]
    fn a_counter_a_worker_publishes_shows_in_status_metrics_telemetry_and_summary() {
        // `syn_cookies_sent`, declared once in `Counters`, as a worker publishes it.
        let slot = Arc::new(WorkerStats::default());
        let engine = Counters {
            syn_cookies_sent: 5,
            flows: 3,
            flows_unprotected: 1,
            ..Counters::default()
        };
        slot.publish(&engine, &IoCounters::default());
        let sh = shared(vec![(4, slot)]);
        let workers = sh.snapshots();
        let status = tandem_control::answer::DataPath::of(workers.iter().map(|(l, e, _)| (*l, e)))
            .to_string();
        assert!(status.contains("syn cookies sent 5"), "{status}");
        assert!(
            status.starts_with(
                "flows: 3 (protected 2, unprotected 1)\n  worker lcore 4: flows 3, unprotected 1,"
            ),
            "{status}"
        );
        let text = sh.render();
        assert!(text.contains(
            "# HELP tandem_syn_cookies_sent_total SYNs answered with a SYN cookie, no flow made, \
             because `syn_backlog` half-open flows were waiting (§3.11).\n\
             # TYPE tandem_syn_cookies_sent_total counter\n\
             tandem_syn_cookies_sent_total{lcore=\"4\"} 5\n"
        ), "{text}");
        assert!(sh
            .stats_dict()
            .iter()
            .any(|(k, v)| k == "syn_cookies_sent" && matches!(v, Value::U64(5))));
        let summary = crate::stats::Summary {
            workers,
            ..crate::stats::Summary::default()
        }
        .to_string();
        assert!(
            summary_fields(&summary).contains(&("syn_cookies_sent", "5")),
            "{summary}"
        );
    }

    #[test]
    fn failovers_are_counted_per_replica_and_forgotten_with_it() {
        let sh = shared(Vec::new());
        let (a, b) = (ReplicaId(0), ReplicaId(1));
        sh.count_failover(a);
        sh.count_failover(a);
        sh.count_failover(b);
        assert_eq!((sh.failovers_of(a), sh.failovers_of(b)), (2, 1));
        sh.forget_replica(a);
        assert_eq!((sh.failovers_of(a), sh.failovers_of(b)), (0, 1));
    }

    #[test]
    fn summaries_merge_the_workers_and_record_recoveries() {
        let (a, b) = (
            Arc::new(WorkerStats::default()),
            Arc::new(WorkerStats::default()),
        );
        let sh = shared(vec![(1, a.clone()), (2, b.clone())]);
        assert_eq!(sh.latency_summary(), None);
        assert_eq!(sh.recovery_summary(), None);
        let mut local = latencies(&[1_000; 90]);
        assert!(a.fold_latency(&mut local));
        assert!(local.is_empty(), "a fold empties the worker's histogram");
        let mut local = latencies(&[100_000; 10]);
        assert!(b.fold_latency(&mut local));
        let l = sh.latency_summary().expect("recorded");
        assert_eq!(l.count, 100);
        assert!(l.p50 >= 1_000 && l.p50 < 1_001, "{l:?}");
        assert!(l.p99 >= 100_000 && l.p99 < 100_100, "{l:?}");
        assert_eq!(l.max, l.p999);
        sh.record_recovery(3_000_000);
        sh.record_recovery(u64::MAX); // clamped, not an error
        let r = sh.recovery_summary().expect("recorded");
        assert_eq!(r.count, 2);
        assert!(r.p50 >= 3_000_000 && r.p50 < 3_010_000, "{r:?}");
        *lock(&sh.device) = DeviceStats {
            mbufs: vec![crate::answer::MbufPool {
                name: "tandem_mbufs".into(),
                in_use: 7,
                free: 8,
            }],
            ports: vec![crate::answer::PortXstats {
                port: "inside".into(),
                device: "0000:3b:00.1".into(),
                xstats: vec![crate::answer::Count {
                    name: "rx_q0-packets".into(),
                    count: 9,
                }],
            }],
        };
        let dict = sh.stats_dict();
        let entry = |k: &str| {
            dict.iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("no {k}"))
        };
        for k in [
            "latency/p50_ns",
            "latency/p99_ns",
            "latency/p999_ns",
            "latency/max_ns",
            "recovery/p50_ns",
            "recovery/max_ns",
            "new_flows_per_second",
        ] {
            let _ = entry(k);
        }
        assert!(matches!(entry("latency/count"), Value::U64(100)));
        assert!(matches!(entry("recovery/count"), Value::U64(2)));
        assert!(matches!(entry("mbufs/tandem_mbufs/in_use"), Value::U64(7)));
        assert!(matches!(entry("mbufs/tandem_mbufs/free"), Value::U64(8)));
        assert!(matches!(entry("port/inside/rx_q0_packets"), Value::U64(9)));
        for (n, _) in &dict {
            assert!(
                n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '/'),
                "{n}"
            );
        }
    }

    /// A metrics listener on a free loopback port.
    fn listener() -> (Server, SocketAddr, Arc<Shared>) {
        let shared = Arc::new(shared(vec![(1, Arc::new(WorkerStats::default()))]));
        // An ephemeral port on loopback: find one, then serve it.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let server = Server::start(addr, shared.clone()).expect("start");
        (server, addr, shared)
    }

    fn get(addr: SocketAddr, path: &str) -> String {
        let mut c = TcpStream::connect(addr).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        write!(c, "GET {path} HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n").expect("write");
        let mut s = String::new();
        c.read_to_string(&mut s).expect("read");
        s
    }

    #[test]
    fn the_listener_serves_get_metrics() {
        let (server, addr, shared) = listener();
        let ok = get(addr, "/metrics");
        assert!(ok.starts_with("HTTP/1.0 200 OK") && ok.contains("tandem_rx_packets_total"));
        assert!(ok.contains("tandem_added_latency_seconds_count 0"), "{ok}");
        let body = ok.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        assert!(
            ok.contains(&format!("Content-Length: {}\r\n", body.len())),
            "{ok}"
        );
        assert!(get(addr, "/other").starts_with("HTTP/1.0 404"));
        let long = format!("/{}", "x".repeat(2000));
        assert!(get(addr, &long).starts_with("HTTP/1.0 414"));
        drop(server);
        assert_eq!(shared.listeners.metrics.read(), [0, 0, 0, 1]);
    }

    #[test]
    fn a_silent_client_does_not_delay_a_scrape() {
        let (server, addr, shared) = listener();
        let mut silent = TcpStream::connect(addr).expect("connect");
        silent
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        std::thread::sleep(Duration::from_millis(100)); // accepted first
        let t = Instant::now();
        assert!(get(addr, "/metrics").starts_with("HTTP/1.0 200 OK"));
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        let mut s = String::new();
        let _ = silent.read_to_string(&mut s);
        assert!(s.starts_with("HTTP/1.0 408"), "{s}");
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        drop(server);
        assert_eq!(shared.listeners.metrics.read(), [0, 1, 0, 0]);
    }

    #[test]
    fn a_slow_loris_is_cut_off_at_the_deadline_and_scrapes_go_on() {
        let (server, addr, shared) = listener();
        let c = TcpStream::connect(addr).expect("connect");
        c.set_read_timeout(Some(Duration::from_millis(500)))
            .expect("timeout");
        let loris = std::thread::spawn(move || {
            tandem_control::testing::slow_loris(c, b'G', Duration::from_secs(8))
        });
        // Scrapes while it dribbles are answered at once.
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(300));
            let t = Instant::now();
            assert!(get(addr, "/metrics").starts_with("HTTP/1.0 200 OK"));
            assert!(
                t.elapsed() < Duration::from_millis(500),
                "{:?}",
                t.elapsed()
            );
        }
        let (took, said) = loris.join().expect("loris");
        assert!(
            took >= Duration::from_millis(1900) && took < Duration::from_secs(3),
            "{took:?}"
        );
        assert!(said.starts_with("HTTP/1.0 408"), "{said}");
        drop(server);
        assert_eq!(shared.listeners.metrics.read(), [0, 1, 0, 0]);
    }

    #[test]
    fn a_flood_of_silent_clients_does_not_keep_a_scrape_out() {
        let (server, addr, shared) = listener();
        let flood: Vec<TcpStream> = (0..MAX_CONNS + 8)
            .map(|_| TcpStream::connect(addr).expect("connect"))
            .collect();
        std::thread::sleep(Duration::from_millis(200)); // all accepted
        let t = Instant::now();
        assert!(get(addr, "/metrics").starts_with("HTTP/1.0 200 OK"));
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        drop(server);
        // The table held MAX_CONNS: each one past it closed the oldest silent one.
        assert_eq!(shared.listeners.metrics.read(), [0, 0, 9, 0]);
        drop(flood);
    }

    #[test]
    fn a_pairs_counters_are_in_the_exposition_and_a_single_appliance_has_none() {
        let sh = shared(Vec::new());
        assert!(!sh.render().contains("tandem_ha_"));
        *lock(&sh.ha) = Some((
            tandem_control::ha::HaCounters {
                role: 2,
                takeovers: 1,
                sync_records_sent: 40,
                sync_lag_ns: 1_500,
                ..Default::default()
            },
            crate::pair::PairCounters {
                records_routed: 7,
                ..Default::default()
            },
        ));
        let text = sh.render();
        for line in [
            "tandem_ha_role 2",
            "tandem_ha_takeovers_total 1",
            "tandem_ha_sync_records_sent_total 40",
            "tandem_ha_sync_lag_nanoseconds 1500",
            "tandem_ha_records_routed_total 7",
            "tandem_ha_install_ring_full_total 0",
            "# TYPE tandem_ha_role gauge",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}
