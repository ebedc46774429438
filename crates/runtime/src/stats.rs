//! Counters that workers publish for the control core, and the summary printed at exit.
//!
//! Each worker owns one [`WorkerStats`] slot and writes it every
//! [`PUBLISH_INTERVAL_NS`] (and once more when it stops) with relaxed atomic stores: no
//! lock, no read-modify-write, no shared cache line with another worker. Readers (the
//! control core, the exit summary) copy it with relaxed loads; each counter is exact, the
//! set is a snapshot within one publish interval.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use tandem_engine::{Counters, DropReason};

/// How often a worker publishes its counters.
pub const PUBLISH_INTERVAL_NS: u64 = 1_000_000;

macro_rules! io_counters {
    ($($(#[doc = $doc:literal])* $name:ident => $label:literal,)*) => {
        /// The worker's own counters, besides the engine's.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct IoCounters { $($(#[doc = $doc])* pub $name: u64,)* }

        impl IoCounters {
            const N: usize = [$($label,)*].len();
            /// Labels, in field order.
            pub const LABELS: &'static [&'static str] = &[$($label,)*];

            /// The values, in [`IoCounters::LABELS`] order.
            pub fn to_array(self) -> [u64; Self::N] { [$(self.$name,)*] }

            fn from_array(a: [u64; Self::N]) -> IoCounters {
                let mut it = a.into_iter();
                IoCounters { $($name: it.next().unwrap_or(0),)* }
            }
        }
    };
}

io_counters! {
    /// Receive bursts that brought at least one frame.
    rx_bursts => "rx_bursts",
    /// Frames the transmit queue refused (freed and counted).
    tx_refused => "tx_refused",
    /// Frames for the control core lost because its ring was full.
    control_ring_full => "control_ring_full",
    /// Signals lost because the signal ring was full.
    signal_ring_full => "signal_ring_full",
    /// Chained mbufs that could not be linearised (dropped).
    nonlinear => "nonlinear",
    /// Failed buffer allocations (copies, synthesised segments).
    alloc_failures => "alloc_failures",
    /// Commands received from the control core.
    commands => "commands",
}

/// Number of plain engine counters published (see [`EngineSnapshot`]).
const ENGINE_N: usize = 17;

/// The engine counters in a snapshot (drops apart).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EngineSnapshot {
    /// `Counters` without the drop array, in [`ENGINE_LABELS`] order.
    pub values: [u64; ENGINE_N],
    /// Drops, indexed by `DropReason as usize`.
    pub drops: [u64; DropReason::COUNT],
}

/// Labels of [`EngineSnapshot::values`].
pub const ENGINE_LABELS: [&str; ENGINE_N] = [
    "rx",
    "tx",
    "to_control",
    "flows_created",
    "flows_removed",
    "flow_failovers",
    "flows_lost",
    "legs_lost",
    "acks_to_client",
    "acks_to_replica",
    "replayed_segments",
    "signals",
    "signals_lost",
    "held_segments",
    "held_bytes",
    "flows",
    "flows_unprotected",
];

impl EngineSnapshot {
    /// The snapshot of `c`.
    pub fn of(c: &Counters) -> EngineSnapshot {
        EngineSnapshot {
            values: [
                c.rx,
                c.tx,
                c.to_control,
                c.flows_created,
                c.flows_removed,
                c.flow_failovers,
                c.flows_lost,
                c.legs_lost,
                c.acks_to_client,
                c.acks_to_replica,
                c.replayed_segments,
                c.signals,
                c.signals_lost,
                c.held_segments,
                c.held_bytes,
                c.flows,
                c.flows_unprotected,
            ],
            drops: c.drops,
        }
    }

    /// The value of the counter labelled `label`.
    pub fn get(&self, label: &str) -> Option<u64> {
        ENGINE_LABELS
            .iter()
            .position(|l| *l == label)
            .map(|i| self.values[i])
    }

    /// Drops counted for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize]
    }

    fn add(&mut self, o: &EngineSnapshot) {
        for (a, b) in self.values.iter_mut().zip(o.values) {
            *a += b;
        }
        for (a, b) in self.drops.iter_mut().zip(o.drops) {
            *a += b;
        }
    }
}

/// One worker's published counters. Aligned to its own cache lines.
#[derive(Debug)]
#[repr(align(128))]
pub struct WorkerStats {
    engine: [AtomicU64; ENGINE_N],
    drops: [AtomicU64; DropReason::COUNT],
    io: [AtomicU64; IoCounters::N],
    /// Publishes so far (0: the worker has not started).
    publishes: AtomicU64,
    /// What the worker received before this time is in the control ring (the health
    /// monitor's horizon; see `worker::run`). Own line: written nearly every pass.
    polled: PolledStamp,
}

/// [`WorkerStats`]'s pass stamp, on a cache line of its own.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct PolledStamp(AtomicU64);

impl Default for WorkerStats {
    fn default() -> Self {
        WorkerStats {
            engine: [const { AtomicU64::new(0) }; ENGINE_N],
            drops: [const { AtomicU64::new(0) }; DropReason::COUNT],
            io: [const { AtomicU64::new(0) }; IoCounters::N],
            publishes: AtomicU64::new(0),
            polled: PolledStamp::default(),
        }
    }
}

impl WorkerStats {
    /// Worker: writes a snapshot.
    pub fn publish(&self, c: &Counters, io: &IoCounters) {
        let e = EngineSnapshot::of(c);
        for (slot, v) in self.engine.iter().zip(e.values) {
            slot.store(v, Ordering::Relaxed);
        }
        for (slot, v) in self.drops.iter().zip(e.drops) {
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

    /// Reader: copies the last snapshot.
    pub fn read(&self) -> (EngineSnapshot, IoCounters) {
        let _ = self.publishes.load(Ordering::Acquire);
        let mut e = EngineSnapshot::default();
        for (v, slot) in e.values.iter_mut().zip(&self.engine) {
            *v = slot.load(Ordering::Relaxed);
        }
        for (v, slot) in e.drops.iter_mut().zip(&self.drops) {
            *v = slot.load(Ordering::Relaxed);
        }
        let io =
            IoCounters::from_array(std::array::from_fn(|i| self.io[i].load(Ordering::Relaxed)));
        (e, io)
    }
}

/// Counters of the control core.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ControlCounters {
    /// Frames taken from the workers' rings.
    pub rx: u64,
    /// Frames sent (ARP replies and requests, echo replies).
    pub tx: u64,
    /// Frames its transmit queues refused.
    pub tx_refused: u64,
    /// ARP requests answered.
    pub arp_replies: u64,
    /// ARP requests sent (resolution and refresh).
    pub arp_requests: u64,
    /// Neighbour entries learned or refreshed.
    pub arp_learned: u64,
    /// ARP frames not for the appliance (ignored).
    pub arp_ignored: u64,
    /// ICMP echo requests answered.
    pub echo_replies: u64,
    /// Frames to the appliance's addresses that nothing serves (dropped).
    pub not_served: u64,
    /// Malformed frames (dropped).
    pub malformed: u64,
    /// Buffer allocations that failed.
    pub no_buffer: u64,
    /// Signals received from workers.
    pub signals: u64,
    /// Health probes (SYNs) sent.
    pub probes: u64,
    /// Answers to health probes (SYN-ACK or RST) matched to a probe.
    pub probe_replies: u64,
    /// Routine probes unanswered while the data path heard from the host (not failures).
    pub probes_lost: u64,
    /// Replicas declared down.
    pub failovers: u64,
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
    pub workers: Vec<(u32, EngineSnapshot, IoCounters)>,
    /// The control core.
    pub control: ControlCounters,
    /// Per port.
    pub ports: Vec<PortSummary>,
    /// Resolved neighbours: (address, MAC, what it is).
    pub neighbours: Vec<(std::net::Ipv4Addr, Option<tandem_wire::MacAddr>, String)>,
}

impl Summary {
    /// The engine counters of all workers added up.
    pub fn engine_total(&self) -> EngineSnapshot {
        let mut t = EngineSnapshot::default();
        for (_, e, _) in &self.workers {
            t.add(e);
        }
        t
    }

    /// The I/O counters of all workers added up.
    pub fn io_total(&self) -> IoCounters {
        let mut t = [0u64; IoCounters::N];
        for (_, _, io) in &self.workers {
            for (a, b) in t.iter_mut().zip(io.to_array()) {
                *a += b;
            }
        }
        IoCounters::from_array(t)
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
        for (label, v) in ENGINE_LABELS.iter().zip(t.values) {
            writeln!(f, "  {label:<20} {v}")?;
        }
        writeln!(f, "drops by reason (all workers):")?;
        for r in DropReason::ALL {
            writeln!(f, "  drop.{:<15} {}", r.label(), t.dropped(*r))?;
        }
        let io = self.io_total();
        writeln!(f, "worker I/O (all workers):")?;
        for (label, v) in IoCounters::LABELS.iter().zip(io.to_array()) {
            writeln!(f, "  {label:<20} {v}")?;
        }
        if self.workers.len() > 1 {
            for (lcore, e, _) in &self.workers {
                writeln!(
                    f,
                    "  worker lcore {lcore}: rx {} tx {} flows_created {}",
                    e.values[0], e.values[1], e.values[3]
                )?;
            }
        }
        let c = &self.control;
        writeln!(f, "control core:")?;
        for (label, v) in [
            ("rx", c.rx),
            ("tx", c.tx),
            ("tx_refused", c.tx_refused),
            ("arp_replies", c.arp_replies),
            ("arp_requests", c.arp_requests),
            ("arp_learned", c.arp_learned),
            ("arp_ignored", c.arp_ignored),
            ("echo_replies", c.echo_replies),
            ("not_served", c.not_served),
            ("malformed", c.malformed),
            ("no_buffer", c.no_buffer),
            ("signals", c.signals),
            ("probes", c.probes),
            ("probe_replies", c.probe_replies),
            ("probes_lost", c.probes_lost),
            ("failovers", c.failovers),
        ] {
            writeln!(f, "  control.{label:<12} {v}")?;
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
