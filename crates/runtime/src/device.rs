//! What an operator watches of the DPDK side (issue #18): the packet buffer pools, in use
//! and free, and each port's extended statistics (missed, errors, no-mbuf). Read by the
//! control core, once a second for the metrics and at each `tandem status`, never by a
//! worker: a read of a NIC's extended statistics may take microseconds, and allocates.

use std::cell::Cell;

use tandem_dpdk::{Mempool, StatsReader};

use crate::answer::{Count, MbufPool, PortXstats};

/// The pools and the ports' extended statistics, as last read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceStats {
    /// Each packet buffer pool.
    pub mbufs: Vec<MbufPool>,
    /// Each port's extended statistics (outside, then inside).
    pub ports: Vec<PortXstats>,
}

/// One port whose statistics are read.
struct PortReader {
    role: &'static str,
    device: String,
    stats: StatsReader,
    /// A failed read was logged (once per port: it fails the same way each second).
    warned: Cell<bool>,
}

/// Reads the pools and the ports' statistics (the control core's).
pub struct DeviceReader {
    pools: Vec<Mempool>,
    ports: Vec<PortReader>,
}

impl DeviceReader {
    /// Reads `pools` and each port (its role, its DPDK device name, its reader).
    pub fn new(
        pools: Vec<Mempool>,
        ports: impl IntoIterator<Item = (&'static str, String, StatsReader)>,
    ) -> DeviceReader {
        DeviceReader {
            pools,
            ports: ports
                .into_iter()
                .map(|(role, device, stats)| PortReader {
                    role,
                    device,
                    stats,
                    warned: Cell::new(false),
                })
                .collect(),
        }
    }

    /// The pools and the ports now. A port whose statistics cannot be read shows none
    /// (logged once).
    pub fn read(&self) -> DeviceStats {
        DeviceStats {
            mbufs: self
                .pools
                .iter()
                .map(|p| MbufPool {
                    name: p.name(),
                    in_use: u64::from(p.in_use()),
                    free: u64::from(p.available()),
                })
                .collect(),
            ports: self
                .ports
                .iter()
                .map(|p| PortXstats {
                    port: p.role.to_owned(),
                    device: p.device.clone(),
                    xstats: match p.stats.xstats() {
                        Ok(x) => x
                            .into_iter()
                            .map(|(name, count)| Count { name, count })
                            .collect(),
                        Err(e) => {
                            if !p.warned.replace(true) {
                                tracing::warn!(port = p.role, device = %p.device, error = %e,
                                    "cannot read the port's extended statistics");
                            }
                            Vec::new()
                        }
                    },
                })
                .collect(),
        }
    }
}
