//! DPDK's packet-capture framework (`librte_pdump`), served by this primary process so
//! that `dpdk-dumpcap` (Debian's `dpdk-dev` package), a secondary process, can capture
//! any port to pcapng while the appliance runs.
//!
//! [`init`] registers the capture server on DPDK's multi-process channel; from then on a
//! `dpdk-dumpcap -i PORT` attaches, and the primary copies each burst of that port (both
//! directions) into the capturer's ring through ethdev's receive and transmit callbacks,
//! until it detaches. Nothing is copied while no one captures. [`uninit`] undoes it and
//! must run before [`Eal::cleanup`](crate::Eal::cleanup).
//!
//! A secondary process maps the primary's memory: it attaches only to a primary that runs
//! on hugepages (not `--no-huge`), without `--in-memory` or `--no-shconf`, and is given
//! the same `--file-prefix`.

use tandem_dpdk_sys as sys;

use crate::eal::ensure_ready;
use crate::error::{check_rte_errno, Result};

/// Registers the packet-capture server (`rte_pdump_init`). Without a multi-process
/// channel (`--in-memory`, `--no-shconf`) DPDK succeeds and no capturer can attach.
///
/// # Errors
///
/// The EAL is not up, or DPDK could not reserve the capture statistics' memzone (the
/// reason is in the error).
pub fn init() -> Result<()> {
    const CALL: &str = "rte_pdump_init";
    ensure_ready(CALL)?;
    check_rte_errno(CALL, || {
        // SAFETY: the EAL is up; the call reserves a memzone and registers a handler on
        // the multi-process channel, nothing else.
        unsafe { sys::rte_pdump_init() }
    })
    .map(drop)
}

/// Unregisters the capture server (`rte_pdump_uninit`); capturers still attached stop
/// getting packets.
///
/// # Errors
///
/// The EAL is not up, or DPDK refused (the reason is in the error).
pub fn uninit() -> Result<()> {
    const CALL: &str = "rte_pdump_uninit";
    ensure_ready(CALL)?;
    check_rte_errno(CALL, || {
        // SAFETY: the EAL is up; unregisters the handler and frees the memzone that
        // `rte_pdump_init` reserved (a no-op for what it did not).
        unsafe { sys::rte_pdump_uninit() }
    })
    .map(drop)
}
