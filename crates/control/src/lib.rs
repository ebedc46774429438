//! # tandem-control
//!
//! The control core's decisions, with no DPDK in them (DESIGN §4, §5), so that they build
//! and are tested on any machine: `cargo test -p tandem-control` needs no libdpdk.
//! `tandem-runtime` keeps the I/O (ports, workers, rings, the control lcore's loop) and
//! drives what is here.
//!
//! - [`health`]: probes and the decisions of DESIGN §5 (up, suspect, down; failover).
//! - [`neighbour`]: ARP resolution of the replicas, and when a MAC change is believed.
//! - [`mgmt`]: the management socket's protocol and listener ([`serve`] for the
//!   listeners' connection handling, [`access`] for who may use them); [`answer`]: its
//!   typed answers, which the CLI prints as text or JSON.
//! - [`counters`]: the control core's counters.
//! - [`divergence`]: replicas whose output differs from the active's, and the alarm
//!   when one is out of sync.
//! - [`ha`]: the appliance pair: election, heartbeats, handover and the sync transport
//!   (DESIGN §6b).
//! - [`listing`]: `tandem flows`, collected from the workers in steps.
//! - [`profile`]: a profile mapped to the engine's and the runtime's settings.
//! - [`reload`]: what a new profile changes against the running appliance, and whether
//!   it can without a restart (`tandem reload`).
//! - [`notify`]: readiness, watchdog and stopping for systemd (`Type=notify`).

pub mod access;
pub mod answer;
pub mod counters;
pub mod divergence;
pub mod ha;
pub mod health;
pub mod listing;
pub mod mgmt;
pub mod neighbour;
pub mod notify;
pub mod profile;
pub mod reload;
pub mod serve;

pub use answer::Response;
pub use counters::ControlCounters;

#[cfg(any(test, feature = "testing"))]
pub mod testing;
