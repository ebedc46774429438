//! `tandem host setup`: the part of the host check that can be fixed now, without a
//! reboot: hugepages reserved (per NUMA node where `--socket-mem` says so), hugetlbfs
//! mounted, the DPDK driver's module loaded and the ports' PCI devices bound to it with
//! `dpdk-devbind.py` (Debian's `dpdk` package).
//!
//! [`plan`] reads the host and lists what is missing; nothing listed means nothing to
//! change, so a second run changes nothing. [`apply`] performs a plan: hugepage counts
//! are written to sysfs under the host's root, programs run through a [`Runner`] (tests
//! record them), and each step is read back, so a change the kernel did not make (too
//! little unfragmented memory, a bind that `dpdk-devbind.py` skipped) is an error.

use std::fmt;
use std::fs;
use std::process::Command;

use crate::check::{dpdk_driver, pages_for};
use crate::needs::{HugepageNeed, Needs};
use crate::sysfs::Host;
use crate::{BIFURCATED_DRIVERS, DPDK_DRIVERS};

/// One change to the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Write `to` into the hugepage pool's `nr_hugepages` (an absolute host path).
    Reserve {
        /// The NUMA node, or `None` for the system's pool.
        node: Option<u32>,
        /// `nr_hugepages` of the pool.
        path: String,
        /// Pages reserved now.
        from: u64,
        /// Pages to reserve.
        to: u64,
    },
    /// Mount hugetlbfs on `dir`.
    Mount {
        /// The mount point.
        dir: String,
    },
    /// `modprobe` a driver.
    LoadModule {
        /// The module.
        module: &'static str,
    },
    /// `dpdk-devbind.py --bind=DRIVER ADDRESS`.
    Bind {
        /// The PCI address.
        address: String,
        /// The DPDK driver.
        driver: &'static str,
        /// The driver it had.
        from: Option<String>,
    },
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Reserve { node, from, to, .. } => {
                let pool = node.map_or("the system".to_owned(), |n| format!("node {n}"));
                write!(f, "hugepages on {pool}: {from} -> {to}")
            }
            Action::Mount { dir } => write!(f, "hugetlbfs mounted on {dir}"),
            Action::LoadModule { module } => write!(f, "module {module} loaded"),
            Action::Bind {
                address,
                driver,
                from,
            } => write!(
                f,
                "{address} bound to {driver} (was {})",
                from.as_deref().unwrap_or("no driver")
            ),
        }
    }
}

/// Runs the programs a setup needs. [`SystemRunner`] runs them; tests record them.
pub trait Runner {
    /// Runs `program` with `args`; an error carries what it printed on stderr.
    ///
    /// # Errors
    ///
    /// A sentence when the program could not start or exited unsuccessfully.
    fn run(&mut self, program: &str, args: &[String]) -> Result<(), String>;
}

/// Runs programs on this host.
#[derive(Debug, Default)]
pub struct SystemRunner;

impl Runner for SystemRunner {
    fn run(&mut self, program: &str, args: &[String]) -> Result<(), String> {
        let out = Command::new(program)
            .args(args)
            .output()
            .map_err(|e| format!("cannot run {program}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{program} {} exited with {}: {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }
}

/// A setup step that failed; the steps before it were made.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// Writing a sysfs file failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The host path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The kernel reserved fewer hugepages than asked.
    #[error(
        "{path}: asked for {asked} hugepages, the kernel reserved {got} (memory too \
         fragmented: reserve them at boot with hugepages={asked} on the kernel command line)"
    )]
    Short {
        /// `nr_hugepages`.
        path: String,
        /// Pages written.
        asked: u64,
        /// Pages read back.
        got: u64,
    },
    /// A program failed.
    #[error("{0}")]
    Command(String),
    /// A program succeeded but the host did not change as it should have.
    #[error("{0}")]
    Unchanged(String),
}

/// What must change on `host` for `needs`, in the order to do it.
pub fn plan(needs: &Needs, host: &Host) -> Vec<Action> {
    let mut actions = Vec::new();
    let kb = host.hugepage_kb();
    let pools: Vec<(Option<u32>, u64)> = match &needs.hugepages {
        HugepageNeed::PerNode(nodes) => nodes.iter().map(|(&n, &b)| (Some(n), b)).collect(),
        HugepageNeed::Total(bytes) => vec![(None, *bytes)],
        HugepageNeed::None | HugepageNeed::Unstated => Vec::new(),
    };
    for (node, bytes) in pools {
        let want = pages_for(bytes, kb);
        // A node this host lacks has no pool to write: the check reports it.
        if let Some(p) = host.hugepages(node) {
            if p.free < want {
                actions.push(Action::Reserve {
                    node,
                    path: host.nr_hugepages_path(node),
                    from: p.total,
                    to: p.total + (want - p.free),
                });
            }
        }
    }
    if needs.hugepages != HugepageNeed::None {
        let mounts = host.hugetlbfs_mounts();
        let mounted = match &needs.huge_dir {
            Some(d) => mounts.iter().any(|m| m == d.trim_end_matches('/')),
            None => !mounts.is_empty(),
        };
        if !mounted {
            actions.push(Action::Mount {
                dir: needs
                    .huge_dir
                    .clone()
                    .unwrap_or_else(|| "/dev/hugepages".to_owned()),
            });
        }
    }
    let driver = dpdk_driver(host);
    let mut module_needed = false;
    for address in needs.pci_devices() {
        let Some(dev) = host.pci(address) else {
            continue; // not on this host: nothing to bind (the check says so)
        };
        let current = dev.driver.as_deref();
        if current.is_some_and(|d| DPDK_DRIVERS.contains(&d) || BIFURCATED_DRIVERS.contains(&d)) {
            continue;
        }
        module_needed = true;
        actions.push(Action::Bind {
            address: address.to_owned(),
            driver,
            from: dev.driver,
        });
    }
    if module_needed && !host.module_loaded(driver) {
        let at = actions
            .iter()
            .position(|a| matches!(a, Action::Bind { .. }))
            .unwrap_or(actions.len());
        actions.insert(at, Action::LoadModule { module: driver });
    }
    actions
}

/// Performs `actions` on `host`, in order, each read back; stops at the first that fails.
///
/// # Errors
///
/// The [`SetupError`] of the step that failed; the ones before it were made.
pub fn apply(actions: &[Action], host: &Host, runner: &mut dyn Runner) -> Result<(), SetupError> {
    for action in actions {
        match action {
            Action::Reserve { path, to, .. } => {
                fs::write(host.path(path), to.to_string()).map_err(|source| SetupError::Write {
                    path: path.clone(),
                    source,
                })?;
                let got = fs::read_to_string(host.path(path))
                    .ok()
                    .and_then(|t| t.trim().parse().ok())
                    .unwrap_or(0);
                if got < *to {
                    return Err(SetupError::Short {
                        path: path.clone(),
                        asked: *to,
                        got,
                    });
                }
            }
            Action::Mount { dir } => {
                runner
                    .run("mkdir", &["-p".to_owned(), dir.clone()])
                    .map_err(SetupError::Command)?;
                runner
                    .run(
                        "mount",
                        &[
                            "-t".to_owned(),
                            "hugetlbfs".to_owned(),
                            "nodev".to_owned(),
                            dir.clone(),
                        ],
                    )
                    .map_err(SetupError::Command)?;
            }
            Action::LoadModule { module } => {
                runner
                    .run("modprobe", &[(*module).to_owned()])
                    .map_err(SetupError::Command)?;
                if !host.module_loaded(module) {
                    return Err(SetupError::Unchanged(format!(
                        "modprobe {module} succeeded but /sys/module/{} is absent",
                        module.replace('-', "_")
                    )));
                }
            }
            Action::Bind {
                address, driver, ..
            } => {
                runner
                    .run(
                        "dpdk-devbind.py",
                        &[format!("--bind={driver}"), address.clone()],
                    )
                    .map_err(SetupError::Command)?;
                // dpdk-devbind.py exits 0 when it skips an interface that is up.
                let now = host.pci(address).and_then(|d| d.driver);
                if now.as_deref() != Some(*driver) {
                    return Err(SetupError::Unchanged(format!(
                        "dpdk-devbind.py left {address} on {} (an interface still up? \
                         `ip link set IFACE down` first)",
                        now.as_deref().unwrap_or("no driver")
                    )));
                }
            }
        }
    }
    Ok(())
}
