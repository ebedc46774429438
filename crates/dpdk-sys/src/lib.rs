//! Raw bindings to DPDK 22.11 for Tandem.
//!
//! This crate is generated at build time: `build.rs` asks `pkg-config` for `libdpdk`
//! (at least 22.11), runs bindgen over the DPDK headers with an allowlist (EAL, ethdev,
//! mbuf, mempool, ring, lcore, flow, pdump), compiles `csrc/shim.c` and links
//! dynamically to the DPDK shared libraries. The safe layer is `tandem-dpdk`; nothing
//! else in Tandem should use this crate.
//!
//! # Why Tandem binds DPDK itself
//!
//! Debian 12 ships DPDK 22.11, and none of the published Rust bindings works with it:
//! `capsule` 0.1.5 targets DPDK 19.11 (its build fails on removed headers and
//! libraries), the `dpdk-sys` crates target 16.07-era DPDK, and the ones that do target
//! 22.11 pass a single include directory and link the static and shared DPDK libraries
//! together, so every driver registers twice. A small `-sys` crate of our own, driven by
//! `pkg-config`, is less work than fixing any of them.
//!
//! # The shim
//!
//! DPDK's fast path (`rte_eth_rx_burst`, `rte_pktmbuf_alloc`, `rte_ring_enqueue_burst`,
//! `rte_rdtsc`, ...) is `static inline` in the headers and has no symbol to link to, and
//! `rte_errno` is a thread-local variable behind a macro. `csrc/shim.c` compiles one
//! out-of-line wrapper for each, named `tandem_<DPDK name>` with the DPDK function's
//! contract. Constants that DPDK defines with function-like macros (`RTE_BIT64`) are
//! exported as `TANDEM_<DPDK name>`.
//!
//! # Building
//!
//! Needs `sudo apt-get install libdpdk-dev dpdk pkg-config libclang-dev clang` (or
//! `appliance/install-deps.sh`); without them the build stops with one line saying so.

#![no_std]

/// Everything bindgen generated from `csrc/shim.h`, re-exported at the crate root.
#[allow(
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    dead_code,
    missing_docs,
    improper_ctypes,
    unsafe_op_in_unsafe_fn,
    unnecessary_transmutes,
    clippy::all,
    clippy::pedantic,
    clippy::restriction
)]
mod bindings {
    include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
}

pub use bindings::*;
