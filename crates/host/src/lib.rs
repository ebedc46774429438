//! # tandem-host
//!
//! What a profile asks of the machine it runs on, whether the machine has it, and the
//! setup of the part that can be fixed without a reboot (`tandem host check`, `tandem
//! host setup`).
//!
//! - [`needs`]: what the profile asks: hugepages (from the EAL's `--no-huge`, `-m`,
//!   `--socket-mem`), the PCI devices of its ports, its lcores.
//! - [`sysfs`]: what the host has, read from a root path (`/` in production, a fake tree
//!   in tests): hugepages per NUMA node, PCI drivers, IOMMU groups, CPUs, mounts; and
//!   the process's memlock limit.
//! - [`check`]: one finding per question, each with the command that fixes it.
//! - [`setup`]: reserves hugepages and binds the named devices (`dpdk-devbind.py` from
//!   Debian's `dpdk` package) through a [`setup::Runner`] that tests replace; idempotent.
//!
//! Things only a reboot or the operator can change (IOMMU, isolated CPUs, missing
//! CPUs, the memlock limit of a service manager) are reported, never changed.

pub mod check;
pub mod needs;
pub mod setup;
pub mod sysfs;

pub use check::{check, Finding, Report, Status};
pub use needs::{HugepageNeed, Needs};
pub use setup::{apply, plan, Action, Runner, SetupError, SystemRunner};
pub use sysfs::{Host, Process};

/// Drivers through which DPDK drives a PCI NIC after `dpdk-devbind.py` bound it.
pub const DPDK_DRIVERS: &[&str] = &["vfio-pci", "uio_pci_generic", "igb_uio"];

/// Kernel drivers of NICs that DPDK drives as they are (bifurcated: the kernel keeps the
/// device, the PMD shares it through verbs), so they need no binding.
pub const BIFURCATED_DRIVERS: &[&str] = &["mlx5_core", "mlx4_core"];
