//! A thin safe layer over DPDK 22.11 for Tandem's data path.
//!
//! - [`Eal`]: DPDK's initialisation, once per process.
//! - [`Mempool`] and [`Mbuf`]: packet buffers; [`Burst`], an inline batch of them (or of
//!   any [`RingItem`]), the unit of every transfer, allocation-free.
//! - [`Port`], configured with a [`PortConfig`] into per-queue [`RxQueue`] and
//!   [`TxQueue`] handles that workers own.
//! - [`ring`]: typed rings between lcores ([`ring::spsc`], [`ring::mpsc`]).
//! - [`lcore`]: launching closures on worker lcores, the TSC clock.
//! - [`log`]: DPDK's log lines handed to the appliance's logger.
//! - [`pdump`]: DPDK's packet capture, for `dpdk-dumpcap` attached to the running process.
//!
//! Every DPDK error comes back as a [`DpdkError`] naming the call, the errno and DPDK's
//! text for it. `unsafe` stays inside this crate and `tandem-dpdk-sys`; each block says
//! why it is sound.
//!
//! # Threads
//!
//! Handles that own a DPDK resource used by one thread at a time (an [`Mbuf`], a queue,
//! a ring end, a [`Port`]) are `Send` but not `Sync`: they move to the lcore that uses
//! them. [`Mempool`] is `Send + Sync` and `Copy`, since its operations are thread-safe.
//! [`Eal`] is neither: it stays on the main lcore.
//!
//! # Lifetime of DPDK objects
//!
//! Mempools live until the process exits. The EAL is not torn down when [`Eal`] is
//! dropped; see [`Eal::cleanup`] for why, and for how to tear it down explicitly.

mod burst;
mod eal;
mod error;
pub mod lcore;
pub mod log;
mod mbuf;
mod mempool;
pub mod pdump;
mod port;
pub mod ring;
pub mod telemetry;

pub use burst::{Burst, Drain, BURST_SIZE};
pub use eal::Eal;
pub use error::{rte_errno, DpdkError, Result};
pub use mbuf::{tx_offload, Mbuf};
pub use mempool::{Mempool, DEFAULT_DATA_ROOM, HEADROOM};
pub use port::{
    offload, rss, DevInfo, Link, Port, PortConfig, PortSetup, PortStats, RxQueue, StatsReader,
    TxQueue,
};
pub use ring::RingItem;

/// The raw bindings, for what this crate does not wrap (rte_flow rules, for instance).
pub use tandem_dpdk_sys as sys;

/// The DPDK version this program runs with, e.g. `"DPDK 22.11.11"`.
pub fn version() -> String {
    // SAFETY: rte_version returns a static NUL-terminated string.
    unsafe { std::ffi::CStr::from_ptr(sys::rte_version()) }
        .to_string_lossy()
        .into_owned()
}
