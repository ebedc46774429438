//! # tandem-runtime
//!
//! Tandem on a real DPDK data path (DESIGN §4): [`run`] initialises the EAL from the
//! profile, configures and starts both ports, launches one worker per worker lcore (the
//! engine's burst loop, [`worker`]), runs the control core ([`control`]: ARP, neighbours,
//! ICMP echo, health probes and failover) on the EAL main lcore until asked to stop, then
//! stops everything and returns a [`Summary`] of the counters. The stages of a run
//! (ports, workers, control, launch, teardown) are in `stages.rs`.
//!
//! - [`worker`]: the worker loop, a `Worker` over a small ports trait.
//! - [`control`]: the control core's loop (ARP, ICMP echo, probes) and its answers to the
//!   operator's commands (typed: [`answer`]).
//! - [`buf`]: the engine's buffer traits over mbufs.
//! - [`gate`]: the workers' rate limits on frames for the control core (pure Rust).
//! - [`msg`]: typed ring messages (signals, commands), allocation-free.
//! - [`stats`]: counters published by the workers, and the exit summary.
//! - [`clock`]: the TSC as nanoseconds.
//! - [`metrics`]: the Prometheus listener and the DPDK telemetry dictionary.
//! - [`device`]: the packet buffer pools and the ports' extended statistics, read by the
//!   control core.
//! - From `tandem-control` (no DPDK; re-exported under their old paths): [`profile`]
//!   (profile → engine settings and the shared replica table), [`health`] (probes,
//!   suspects, the failover decision), [`neighbour`] (ARP resolution and confirmed MAC
//!   changes), [`mgmt`] (the management socket), [`serve`] (the listeners' connections,
//!   under deadlines), [`access`] (who may use the socket), [`listing`] (`tandem flows`),
//!   [`reload`] (what a new profile changes, `tandem reload`),
//!   [`answer`] (the commands' typed answers, shown as text or JSON).
//!
//! ## Queues
//!
//! Each port gets the profile's receive queues (each polled by exactly one worker, per
//! `Profile::worker_plan`) and one transmit queue per worker plus one for the control
//! core. A port that cannot give the control core a queue of its own (`net_af_packet`
//! has as many queues as its `qpairs`, 1 by default, and its receive side fans packets
//! out over all of them, so extra queues cannot simply be added), or whose queues its
//! peer decides (`net_memif`: a generator with one receive ring never reads a second
//! transmit queue), is served through worker 0: the control core hands it the frames
//! over a ring and it sends them on its queue.
//!
//! ## Flow affinity
//!
//! Both directions of a flow must reach the same worker ([`affinity`]): with one worker
//! trivially; with several, the ports' RSS hashes the client's address and port only
//! (source fields outside, destination fields inside, one key and one redirection table
//! on both) where both ports can, and otherwise each worker hands the frames it does not
//! own to their owner over single-producer single-consumer rings. The log says which
//! path runs; `tandem_worker_io_total{event="handed_off"}` counts the hand-offs.

pub mod affinity;
pub mod buf;
pub mod clock;
pub mod control;
pub mod device;
pub mod gate;
pub mod metrics;
pub mod msg;
pub mod pair;
mod stages;
pub mod stats;
pub mod worker;

// The decisions without DPDK live in tandem-control; their paths here stay as they were.
pub use tandem_control::{
    access, answer, ha, health, listing, mgmt, neighbour, profile, reload, serve,
};

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use tandem_config::Profile;
use tandem_dpdk::Eal;
use tandem_wire::MacAddr;

pub use profile::{map_profile, Mapped, ProfileError};
pub use stats::Summary;

/// Why the runtime could not start (or stop cleanly).
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A DPDK call failed.
    #[error("{what}: {source}")]
    Dpdk {
        /// What the runtime was doing.
        what: String,
        /// The DPDK error.
        source: tandem_dpdk::DpdkError,
    },
    /// The profile cannot run as written.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// The EAL's lcores do not match the profile's.
    #[error("lcores: {0}")]
    Lcores(String),
    /// The worker plan would split a flow's two directions between workers.
    #[error("workers: {0}")]
    Workers(String),
    /// A worker lcore panicked or failed.
    #[error("worker on lcore {0} ended with status {1}")]
    Worker(u32, i32),
    /// The kernel gave no random bytes for the start's hash key.
    #[error("hash key: getrandom: {0}")]
    Random(std::io::Error),
    /// The management settings cannot be used on this host (an unknown group).
    #[error("{0}")]
    Management(String),
    /// The control core stopped the appliance: a worker stopped publishing its counters.
    #[error("a worker stopped (no counters for 5 s); the appliance stopped")]
    Stalled,
    /// The HA link's socket could not be set up.
    #[error("ha: {0}")]
    Ha(String),
}

trait Context<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, RuntimeError>;
}

impl<T> Context<T> for tandem_dpdk::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, RuntimeError> {
        self.map_err(|source| RuntimeError::Dpdk {
            what: what(),
            source,
        })
    }
}

/// Ring sizes (items).
const RING_SIZE: u32 = 4096;
/// Rings of commands and signals.
const MSG_RING_SIZE: u32 = 1024;

/// Whether this build can run `profile` (a valid one may still ask for what the runtime
/// does not do yet). Returns the warnings about what runs
/// differently from what it says.
///
/// # Errors
///
/// The first reason `run` would refuse it.
pub fn runnable(profile: &Profile) -> Result<Vec<String>, RuntimeError> {
    Ok(map_profile(profile, MacAddr::ZERO, MacAddr::ZERO)?.warnings)
}

/// Sets the log filter of the running process (its argument: `logging.level`).
pub type SetLogLevel = Box<dyn Fn(&str) -> Result<(), String> + Send>;

/// What `tandem reload` and SIGHUP need from the caller of [`run`].
pub struct Reloading {
    /// The profile file the appliance runs (re-read on SIGHUP and a plain `reload`).
    pub path: std::path::PathBuf,
    /// Set by the SIGHUP handler; the control core clears it and reloads `path`.
    pub hangup: Arc<AtomicBool>,
    /// Sets the log filter (`logging.level`) of the running process.
    pub set_log_level: SetLogLevel,
}

/// Runs the appliance described by `profile` until `stop` is set (by a signal handler),
/// then stops the workers and the ports, cleans the EAL up and returns the counters.
/// With `reloading`, `tandem reload` and SIGHUP re-read the profile ([`control`]).
///
/// # Errors
///
/// A [`RuntimeError`] when something cannot start; once running, errors while stopping
/// are logged and the summary is still returned.
pub fn run(
    profile: &Profile,
    stop: &AtomicBool,
    reloading: Option<Reloading>,
) -> Result<Summary, RuntimeError> {
    runnable(profile)?;
    // Before the EAL: a group this host does not have is the profile's mistake; say so
    // rather than run with a socket its operators cannot use.
    let access = access::Access::resolve(profile.management.group.as_deref())
        .map_err(RuntimeError::Management)?;
    // DPDK's own lines through our logger (JSON when asked), the EAL's first ones too.
    if let Err(e) = tandem_dpdk::log::redirect(|line| tracing::info!(target: "dpdk", "{line}")) {
        tracing::warn!(error = %e, "DPDK logs to stderr directly");
    }
    let eal = Eal::init(&profile.eal.args).ctx(|| "EAL initialisation (eal.args)".to_owned())?;
    tracing::info!(version = %tandem_dpdk::version(), "EAL up");
    let capture = stages::capture(profile);
    stages::check_lcores(profile)?;
    // One random key per start for every client-endpoint hash: the flow tables, the
    // owner of a flow, the ports' RSS (tandem_engine::hash).
    let hash_key = tandem_engine::HashKey::random().map_err(RuntimeError::Random)?;
    let mut dp = stages::ports(profile, hash_key)?;
    let mut wiring = stages::workers(profile, &mut dp, hash_key)?;
    let mut mapped = map_profile(profile, dp.ports[0].mac, dp.ports[1].mac)?;
    mapped.engine.hash_key = hash_key;
    for w in &mapped.warnings {
        tracing::warn!("{w}");
    }
    let clock = clock::Clock::new();
    let pair = match &profile.ha {
        Some(ha) => {
            let route = stages::pair_route(&dp, hash_key)?;
            let (pair, ends) = start_pair(ha, wiring.ios.len(), route, &clock)?;
            for (io, end) in wiring.ios.iter_mut().zip(ends) {
                io.sync = Some(end);
            }
            mapped.engine.sync = Some(tandem_engine::SyncExport::default());
            Some(pair)
        }
        None => None,
    };
    let mut serving = stages::control(
        profile,
        &dp,
        &mapped,
        wiring.ends,
        &wiring.stats,
        access,
        pair,
    )?;
    serving.control.reloading = reloading;
    let running = Arc::new(AtomicBool::new(true));
    let (launched, launch_error) = stages::launch(wiring.ios, &mapped, &running, clock);
    let started = Instant::now();
    if launch_error.is_none() {
        tracing::info!(
            workers = launched.len(),
            vips = ?profile.vips(),
            replicas = mapped.replica_list.len(),
            "running; Ctrl-C or SIGTERM stops"
        );
        serving.control.run(stop, &clock);
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            serving.control.service.stopping();
        }
        tracing::info!("stopping");
    }
    let (summary, worker_error) =
        stages::teardown(&running, &launched, started, &wiring.stats, serving, dp);
    if capture {
        if let Err(e) = tandem_dpdk::pdump::uninit() {
            tracing::warn!(error = %e, "packet capture: stopping the capture server");
        }
    }
    let runtime_dir = eal.runtime_dir();
    // SAFETY: every worker has returned (waited in the teardown, and cleanup waits again);
    // the workers' queues, rings and mbufs were dropped when their closures ended; the
    // control core's rings, queues and mbufs were dropped with it; the ports are closed.
    // The pool handle (`Mempool` is a plain pointer) is not used after this point.
    if let Err(e) = unsafe { eal.cleanup() } {
        tracing::warn!(error = %e, "EAL cleanup");
    }
    // DPDK leaves its runtime directory (multi-process socket, config) behind.
    let _ = std::fs::remove_dir_all(&runtime_dir);
    // The control core returns without being asked only when a worker went silent: a
    // failure, so that systemd's `Restart=on-failure` starts the appliance again.
    let stalled = (launch_error.is_none() && !stop.load(std::sync::atomic::Ordering::Relaxed))
        .then_some(RuntimeError::Stalled);
    if let Some(e) = launch_error.or(worker_error).or(stalled) {
        tracing::error!(error = %e, "the data path failed");
        println!("{summary}");
        return Err(e);
    }
    Ok(summary)
}

/// The pair of `ha`: its node on the HA link's socket, and each of `workers` workers'
/// end ([`pair`]).
fn start_pair(
    ha: &tandem_config::Ha,
    workers: usize,
    route: pair::Route,
    clock: &clock::Clock,
) -> Result<(pair::Pair, Vec<pair::WorkerSync>), RuntimeError> {
    // Wall-clock nanoseconds: it numbers the sync batches across restarts.
    let incarnation = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    let now = clock.now_ns();
    let node = ha::Node::new(tandem_control::profile::ha_settings(ha, incarnation), now);
    let link = ha::HaLink::bind(ha.local, ha.peer, node).map_err(|e| {
        RuntimeError::Ha(format!(
            "binding {} on the HA link ({}): {e}",
            ha.local, ha.interface
        ))
    })?;
    // Segments of no flow are dropped, not reset, this long after a takeover: records
    // the peer sent just before may still be on the way.
    let grace_ns =
        u64::try_from((ha.sync_interval * 2 + ha.heartbeat).as_nanos()).unwrap_or(u64::MAX);
    tracing::info!(local = %ha.local, peer = %ha.peer, interface = %ha.interface,
        preferred = ha.preferred, "the pair's HA link is up; electing");
    Ok(pair::Pair::new(link, workers, route, grace_ns))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_config::WorkerAssignment;

    use tandem_control::testing::lab;

    #[test]
    fn the_lab_is_runnable() {
        assert!(runnable(&lab()).is_ok());
    }

    #[test]
    fn workers_that_split_a_flow_run_on_the_hand_off_path() {
        let mut p = lab();
        p.lcores.workers = vec![1, 2];
        p.workers = vec![
            WorkerAssignment {
                lcore: 1,
                port: tandem_config::PortRole::Outside,
                queue: 0,
            },
            WorkerAssignment {
                lcore: 2,
                port: tandem_config::PortRole::Inside,
                queue: 0,
            },
        ];
        // Each worker owns the flows the hash gives it, whatever queue it polls: the
        // directions meet through the rings, never through RSS.
        assert!(runnable(&p).is_ok());
        assert!(!affinity::plan_aligned(&p));
    }
}
