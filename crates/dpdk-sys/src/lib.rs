//! tandem-dpdk-sys
