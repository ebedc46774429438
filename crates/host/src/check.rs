//! `tandem host check`: one finding per question the profile asks of the host, each with
//! what was found and, where something is wrong, the command that fixes it.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde::Serialize;

use crate::needs::{HugepageNeed, Needs};
use crate::sysfs::{format_cpu_list, Host, Process};
use crate::{BIFURCATED_DRIVERS, DPDK_DRIVERS};

/// How a finding stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// As the profile needs.
    Ok,
    /// Runs, but not as well or as safely as it could (the exit status stays 0).
    Warn,
    /// `tandem run` would fail, or run without what the profile asks.
    Fail,
}

/// One answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What it is about: `hugepages`, `hugetlbfs`, `device`, `iommu`, `lcores`,
    /// `isolation`, `memlock`.
    pub topic: &'static str,
    /// How it stands.
    pub status: Status,
    /// What was found, in a sentence.
    pub what: String,
    /// The command that fixes it, where something is wrong.
    pub fix: Option<String>,
}

/// Every finding of one check.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// No finding failed.
    pub passed: bool,
    /// The findings, in the order asked.
    pub findings: Vec<Finding>,
}

impl Report {
    /// The findings as lines for people: `ok`, `warn` or `FAIL`, the topic, what was
    /// found, and a `fix:` line under each that has one.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for f in &self.findings {
            let tag = match f.status {
                Status::Ok => "ok  ",
                Status::Warn => "warn",
                Status::Fail => "FAIL",
            };
            let _ = writeln!(out, "{tag}  {:<10} {}", f.topic, f.what);
            if let Some(fix) = &f.fix {
                let _ = writeln!(out, "      {:<10} fix: {fix}", "");
            }
        }
        out
    }
}

fn ok(topic: &'static str, what: String) -> Finding {
    Finding {
        topic,
        status: Status::Ok,
        what,
        fix: None,
    }
}

fn bad(topic: &'static str, status: Status, what: String, fix: String) -> Finding {
    Finding {
        topic,
        status,
        what,
        fix: Some(fix),
    }
}

/// The driver that binds a PCI NIC for DPDK on this host: `vfio-pci` where there is an
/// IOMMU (or vfio runs in no-IOMMU mode), `uio_pci_generic` otherwise.
pub fn dpdk_driver(host: &Host) -> &'static str {
    if host.iommu_groups() > 0 || host.vfio_noiommu() {
        "vfio-pci"
    } else {
        "uio_pci_generic"
    }
}

/// Hugepages needed in a pool of `kb`-kB pages for `bytes` (rounded up).
pub fn pages_for(bytes: u64, kb: u64) -> u64 {
    bytes.div_ceil(kb.max(1) * 1024)
}

/// Checks `host` and `process` against `needs`; `setup` is the command that runs the
/// setup for this profile (named in fixes that it performs).
pub fn check(needs: &Needs, host: &Host, process: &Process, setup: &str) -> Report {
    let mut findings = Vec::new();
    hugepages(needs, host, setup, &mut findings);
    devices(needs, host, setup, &mut findings);
    lcores(needs, host, &mut findings);
    memlock(needs, process, &mut findings);
    Report {
        passed: findings.iter().all(|f| f.status != Status::Fail),
        findings,
    }
}

fn hugepages(needs: &Needs, host: &Host, setup: &str, out: &mut Vec<Finding>) {
    const T: &str = "hugepages";
    let kb = host.hugepage_kb();
    let mib = |pages: u64| pages * kb / 1024;
    let pool = |node: Option<u32>| match node {
        Some(n) => format!("node {n}"),
        None => "the system".to_owned(),
    };
    // A pool is enough when its free pages cover the need: pages DPDK processes already
    // hold are not free for this one.
    let mut one_pool = |node: Option<u32>, bytes: u64| {
        let want = pages_for(bytes, kb);
        match host.hugepages(node) {
            None => out.push(bad(
                T,
                Status::Fail,
                format!(
                    "{}: no {kb} kB hugepage pool (needs {want} pages, {} MiB)",
                    pool(node),
                    mib(want)
                ),
                "check the NUMA node in --socket-mem against `ls /sys/devices/system/node`"
                    .to_owned(),
            )),
            Some(p) if p.free >= want => out.push(ok(
                T,
                format!(
                    "{}: {} of {} pages of {kb} kB free, {want} needed ({} MiB)",
                    pool(node),
                    p.free,
                    p.total,
                    mib(want)
                ),
            )),
            Some(p) => {
                let to = p.total + (want - p.free);
                out.push(bad(
                    T,
                    Status::Fail,
                    format!(
                        "{}: {} of {} pages of {kb} kB free, {want} needed ({} MiB)",
                        pool(node),
                        p.free,
                        p.total,
                        mib(want)
                    ),
                    format!("{setup}, or: echo {to} > {}", host.nr_hugepages_path(node)),
                ));
            }
        }
    };
    match &needs.hugepages {
        HugepageNeed::None => {
            out.push(ok(T, "not needed: the EAL runs with --no-huge".to_owned()));
            return;
        }
        HugepageNeed::PerNode(nodes) => {
            for (&node, &bytes) in nodes {
                one_pool(Some(node), bytes);
            }
        }
        HugepageNeed::Total(bytes) => one_pool(None, *bytes),
        HugepageNeed::Unstated => match host.hugepages(None) {
            Some(p) if p.free > 0 => out.push(bad(
                T,
                Status::Warn,
                format!(
                    "{} pages of {kb} kB free ({} MiB); the profile names no amount, so \
                     whether that is enough shows only at start",
                    p.free,
                    mib(p.free)
                ),
                "name the memory in eal.args: --socket-mem MB,MB (per NUMA node) or -m MB"
                    .to_owned(),
            )),
            _ => out.push(bad(
                T,
                Status::Fail,
                format!("no free hugepages of {kb} kB, and the profile names no amount"),
                format!(
                    "add --socket-mem MB,MB (or -m MB) to eal.args, then {setup}; or: echo \
                     512 > {}",
                    host.nr_hugepages_path(None)
                ),
            )),
        },
    }
    let mounts = host.hugetlbfs_mounts();
    let dir = needs.huge_dir.clone();
    let mounted = match &dir {
        Some(d) => mounts.iter().any(|m| m == d.trim_end_matches('/')),
        None => !mounts.is_empty(),
    };
    if mounted {
        out.push(ok(
            "hugetlbfs",
            format!("mounted on {}", dir.unwrap_or_else(|| mounts.join(", "))),
        ));
    } else {
        let d = dir.unwrap_or_else(|| "/dev/hugepages".to_owned());
        out.push(bad(
            "hugetlbfs",
            Status::Fail,
            format!("not mounted on {d}: DPDK maps its hugepages from there"),
            format!("{setup}, or: mkdir -p {d} && mount -t hugetlbfs nodev {d}"),
        ));
    }
}

fn devices(needs: &Needs, host: &Host, setup: &str, out: &mut Vec<Finding>) {
    const T: &str = "device";
    let driver = dpdk_driver(host);
    let mut any_pci = false;
    for d in &needs.devices {
        let Some(address) = &d.pci else {
            out.push(ok(
                T,
                format!(
                    "{}: {} is a virtual device (--vdev): nothing to bind",
                    d.role, d.name
                ),
            ));
            continue;
        };
        any_pci = true;
        let Some(dev) = host.pci(address) else {
            out.push(bad(
                T,
                Status::Fail,
                format!("{}: no PCI device {address} on this host", d.role),
                "dpdk-devbind.py --status-dev net lists the NICs and their addresses".to_owned(),
            ));
            continue;
        };
        let node = match dev.numa_node {
            Some(n) if n >= 0 => format!(", NUMA node {n}"),
            _ => String::new(),
        };
        match dev.driver.as_deref() {
            Some("vfio-pci") if dev.iommu_group.is_none() && !host.vfio_noiommu() => {
                out.push(bad(
                    T,
                    Status::Fail,
                    format!(
                        "{}: {address} is bound to vfio-pci but has no IOMMU group{node}",
                        d.role
                    ),
                    format!(
                        "dpdk-devbind.py --bind=uio_pci_generic {address} (or turn the IOMMU on)"
                    ),
                ));
            }
            Some(drv) if DPDK_DRIVERS.contains(&drv) => out.push(ok(
                T,
                format!("{}: {address} is bound to {drv}{node}", d.role),
            )),
            Some(drv) if BIFURCATED_DRIVERS.contains(&drv) => out.push(ok(
                T,
                format!(
                    "{}: {address} is driven by {drv}, which DPDK shares (bifurcated): \
                     nothing to bind{node}",
                    d.role
                ),
            )),
            other => {
                let down: String = dev
                    .interfaces
                    .iter()
                    .map(|i| format!("ip link set {i} down && "))
                    .collect();
                let on = match other {
                    Some(drv) => format!("bound to {drv}"),
                    None => "bound to no driver".to_owned(),
                };
                let ifaces = if dev.interfaces.is_empty() {
                    String::new()
                } else {
                    format!(" (interface {})", dev.interfaces.join(", "))
                };
                out.push(bad(
                    T,
                    Status::Fail,
                    format!(
                        "{}: {address} is {on}{ifaces}, not a DPDK driver{node}",
                        d.role
                    ),
                    format!(
                        "{setup}, or: {down}modprobe {driver} && dpdk-devbind.py --bind={driver} {address}"
                    ),
                ));
            }
        }
        if let (HugepageNeed::PerNode(nodes), Some(n)) = (&needs.hugepages, dev.numa_node) {
            if let Ok(n) = u32::try_from(n) {
                if !nodes.contains_key(&n) {
                    out.push(bad(
                        "hugepages",
                        Status::Warn,
                        format!(
                            "{}: {address} is on NUMA node {n}, but --socket-mem gives that \
                             node no memory: its mbufs cross the interconnect",
                            d.role
                        ),
                        format!("give node {n} memory in --socket-mem"),
                    ));
                }
            }
        }
    }
    let groups = host.iommu_groups();
    out.push(if !any_pci {
        ok(
            "iommu",
            format!("not needed: no PCI device ({groups} IOMMU groups)"),
        )
    } else if groups > 0 {
        ok(
            "iommu",
            format!("on ({groups} groups): devices bind to vfio-pci"),
        )
    } else {
        let mode = if host.vfio_noiommu() {
            "vfio runs in unsafe no-IOMMU mode"
        } else {
            "devices bind to uio_pci_generic"
        };
        bad(
            "iommu",
            Status::Warn,
            format!("off: {mode}, without DMA isolation"),
            "add intel_iommu=on iommu=pt (AMD: amd_iommu=on) to GRUB_CMDLINE_LINUX in \
             /etc/default/grub, update-grub, reboot"
                .to_owned(),
        )
    });
}

fn lcores(needs: &Needs, host: &Host, out: &mut Vec<Finding>) {
    const T: &str = "lcores";
    if needs.lcore_map_unread {
        out.push(bad(
            T,
            Status::Warn,
            "--lcores maps lcores onto CPUs with @ or groups: not checked".to_owned(),
            "use -l with CPU numbers to have them checked".to_owned(),
        ));
        return;
    }
    let wanted: BTreeSet<u32> = needs.lcores.iter().copied().collect();
    let list = format_cpu_list(&wanted);
    let (Some(present), Some(online)) = (host.cpus("present"), host.cpus("online")) else {
        out.push(bad(
            T,
            Status::Fail,
            format!("{list}: /sys/devices/system/cpu/present or online unreadable"),
            "mount sysfs on /sys".to_owned(),
        ));
        return;
    };
    let missing: BTreeSet<u32> = wanted.difference(&present).copied().collect();
    let offline: BTreeSet<u32> = wanted
        .intersection(&present)
        .filter(|c| !online.contains(c))
        .copied()
        .collect();
    if !missing.is_empty() {
        out.push(bad(
            T,
            Status::Fail,
            format!(
                "CPU {} not on this host (present: {})",
                format_cpu_list(&missing),
                format_cpu_list(&present)
            ),
            "change lcores and eal.args -l to CPUs this host has".to_owned(),
        ));
    }
    if !offline.is_empty() {
        let fix: Vec<String> = offline
            .iter()
            .map(|c| format!("echo 1 > /sys/devices/system/cpu/cpu{c}/online"))
            .collect();
        out.push(bad(
            T,
            Status::Fail,
            format!("CPU {} offline", format_cpu_list(&offline)),
            fix.join(" && "),
        ));
    }
    if missing.is_empty() && offline.is_empty() {
        out.push(ok(T, format!("CPU {list} present and online")));
    }
    let isolated = host.cpus("isolated").unwrap_or_default();
    let workers: BTreeSet<u32> = needs.workers.iter().copied().collect();
    let shared: BTreeSet<u32> = workers.difference(&isolated).copied().collect();
    if shared.is_empty() {
        out.push(ok(
            "isolation",
            format!("worker CPU {} isolated", format_cpu_list(&workers)),
        ));
    } else {
        let s = format_cpu_list(&shared);
        out.push(bad(
            "isolation",
            Status::Warn,
            format!(
                "worker CPU {s} not isolated (isolated: {}): the kernel schedules other \
                 tasks on them, and a worker's poll loop waits behind them",
                if isolated.is_empty() {
                    "none".to_owned()
                } else {
                    format_cpu_list(&isolated)
                }
            ),
            format!(
                "add isolcpus={s} nohz_full={s} rcu_nocbs={s} to GRUB_CMDLINE_LINUX in \
                 /etc/default/grub, update-grub, reboot"
            ),
        ));
    }
}

fn memlock(needs: &Needs, process: &Process, out: &mut Vec<Finding>) {
    const T: &str = "memlock";
    if needs.pci_devices().is_empty() {
        out.push(ok(
            T,
            "not needed: no PCI device, no DMA memory to pin".to_owned(),
        ));
        return;
    }
    let need = match &needs.hugepages {
        HugepageNeed::PerNode(n) => Some(n.values().sum::<u64>()),
        HugepageNeed::Total(b) => Some(*b),
        HugepageNeed::None | HugepageNeed::Unstated => None,
    };
    match (process.ipc_lock, process.memlock) {
        (true, _) => out.push(ok(
            T,
            "CAP_IPC_LOCK (root): vfio may pin any amount".to_owned(),
        )),
        (false, None) => out.push(ok(T, "unlimited".to_owned())),
        (false, Some(limit)) if need.is_some_and(|n| limit >= n) => out.push(ok(
            T,
            format!("{} MiB, enough for the profile's hugepages", limit >> 20),
        )),
        (false, Some(limit)) => out.push(bad(
            T,
            Status::Fail,
            format!(
                "{} KiB without CAP_IPC_LOCK: vfio cannot pin the DMA memory",
                limit >> 10
            ),
            "run as root, or `ulimit -l unlimited` in the shell that starts tandem \
             (systemd: LimitMEMLOCK=infinity)"
                .to_owned(),
        )),
    }
}
