//! tandem-dpdk
