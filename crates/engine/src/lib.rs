//! # tandem-engine
//!
//! The pure-Rust heart of Tandem (DESIGN §3 and §4): everything that decides what happens
//! to a packet, with no DPDK, no clock and no I/O, so that it is tested and benchmarked
//! anywhere.
//!
//! - [`seq`]: sequence numbers with wrapping arithmetic and RFC 1982 comparison.
//! - [`replica`]: the shared replica-state table (atomics, one writer).
//! - [`table`]: the per-worker flow table (fixed capacity, burst lookups with prefetch).
//! - [`hash`]: the keyed hash of a client endpoint (SipHash-1-3, a random key per start).
//! - [`cookie`]: SYN cookies, for SYN floods.
//! - [`flow`]: per-flow mirror-mode state.
//! - [`hold`]: the hold queue for standby output.
//! - [`replay`]: the client-byte log of replayable flows (reconnect mode).
//! - [`verify`]: verified standbys: each leg's output compared with the active's (CRC32C).
//! - [`http1`]: HTTP/1.1 request and response boundaries and digest spans, for reconnect
//!   mode's `replay: http1`.
//! - [`exchange`]: a reconnect flow's HTTP/1.1 exchange as the client saw it, and the
//!   check of a replayed answer against it (`replay: http1`).
//! - [`engine`]: the mirror-mode rules, packet by packet, and forward mode (NAT only, for
//!   benchmarks).
//! - [`sync`]: a flow's state as the appliance pair syncs it (record, encoding, batches,
//!   the staleness rule).
//! - [`affinity`]: which worker owns a flow (RSS model, hand-off owner).
//! - [`counters`](mod@counters): counters declared once (field, kind, Prometheus name,
//!   help), for the engine's [`Counters`] and the runtime's own.
//! - [`buffer`], [`output`], [`config`], [`parse`]: the interface to the I/O layer.
//!
//! The caller (a worker lcore, or a test) hands the engine a buffer, the port it came
//! in on and `now`; the engine rewrites it in place and queues it for transmission, keeps
//! it (held standby output), or drops it with a counted reason; it copies or synthesises
//! packets through the caller's [`buffer::BufferPool`], and raises [`output::Signal`]s for
//! the control core.

pub mod affinity;
pub mod buffer;
pub mod config;
pub mod cookie;
pub mod counters;
pub mod engine;
pub mod exchange;
pub mod flow;
pub mod hash;
pub mod hold;
pub mod http1;
pub mod output;
pub mod parse;
pub mod replay;
pub mod replica;
pub mod seq;
pub mod sync;
pub mod table;
pub mod verify;

pub use buffer::{BufferPool, PacketBuf, VecPool};
pub use config::{
    EngineConfig, FlowTimeouts, OnNoReplica, ReplayConfig, Service, ServicePort, SyncExport,
    MAX_POOL,
};
pub use counters::{Accumulate, CounterFamily, CounterKind, CounterSet, CounterSpec};
pub use engine::{Engine, BURST, CHALLENGE_GAP_NS};
pub use exchange::Http1Rules;
pub use flow::{Flow, FlowKey, FlowPhase, FlowRecord, Leg, Replaying, MAX_COPIES};
pub use hash::HashKey;
pub use output::{Counters, DropReason, Output, Side, Signal, SignalKind, Tx};
pub use replica::{Health, ReplicaId, ReplicaTable, HEARD_GRANULARITY_NS};
pub use seq::Seq;
pub use sync::{
    Batch, BatchKind, BatchWriter, InstallError, SyncError, SyncEvent, SyncLeg, SyncRecord,
};
