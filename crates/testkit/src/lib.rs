//! # tandem-testkit
//!
//! The one test kit of Tandem's engine: everything a test, a fuzz driver, a simulation or
//! a benchmark needs to put frames through [`Engine::process_burst`], the entry point the
//! workers run, and to read what comes out.
//!
//! - [`addr`]: the lab's hosts: one client, a VIP, the appliance's two ports, a primary
//!   and a backup (198.18.0.0/15, the benchmarking range).
//! - [`fixture`]: replica tables and engine configurations for them.
//! - [`pool`]: buffer pools: [`VecPool`] (fresh buffers, optionally running dry) and
//!   [`Recycler`] (reused buffers, as a mempool hands them out, for benchmarks).
//! - [`rig`]: an engine with its pool and output, fed in bursts.
//! - [`seg`]: named segment templates ([`Seg::CLIENT`], [`Seg::PRIMARY`], …) in the style
//!   of smoltcp's test templates, and [`Seen`], a segment as it left the engine.
//! - [`conn`]: many connections, as the benchmarks drive them.
//! - [`lab`]: the rules tests' bench: a [`Lab`] with the lab's service on a rig, its
//!   handshake, and helpers to pick segments out of what the engine sent.
//!
//! ## Why a crate
//!
//! Its users live in three places: the engine's integration tests and examples, the
//! runtime's examples (the failover benchmark), and the `fuzz/` workspace, whose targets
//! include the engine's test drivers by `#[path]`. A `tests/common` module reaches none
//! but the first without more `#[path]` includes, and each include compiled the fixtures
//! again, differently. A crate is built once and named the same everywhere.
//!
//! It depends on `tandem-engine`, and `tandem-engine` has it as a dev-dependency: Cargo
//! allows that cycle for integration tests, examples and benches, which link the same
//! `tandem-engine` as the kit. The engine's unit tests (`#[cfg(test)]` in `src/`) cannot
//! use it: they are a second build of the engine, whose types are not the kit's.
//!
//! [`Engine::process_burst`]: tandem_engine::Engine::process_burst
//! [`VecPool`]: pool::VecPool
//! [`Recycler`]: pool::Recycler
//! [`Seg::CLIENT`]: seg::Seg::CLIENT
//! [`Seg::PRIMARY`]: seg::Seg::PRIMARY
//! [`Seen`]: seg::Seen
//! [`Lab`]: lab::Lab

pub mod addr;
pub mod conn;
pub mod fixture;
pub mod lab;
pub mod pool;
pub mod rig;
pub mod seg;

pub use addr::*;
pub use conn::Conn;
pub use fixture::{engine_config, forward, lab_replicas, mirror, replica_table};
pub use lab::{config, one, to, Hs, Lab, R};
pub use pool::{Recycler, VecPool};
pub use rig::Rig;
pub use seg::{data, Opts, Seen, Seg, A, S};

/// One millisecond in the engine's clock (nanoseconds).
pub const MS: u64 = 1_000_000;
