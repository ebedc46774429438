//! What the host has, read from files under a root path: `/` on a real host, a tree of
//! plain files in tests. Every reader returns `None` or an empty list for what is absent
//! or unreadable; the check says so rather than failing.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// The host's files under `root`.
#[derive(Clone, Debug)]
pub struct Host {
    root: PathBuf,
}

/// Hugepages of one size in one pool (the system's, or one NUMA node's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pages {
    /// `nr_hugepages`: reserved.
    pub total: u64,
    /// `free_hugepages`: reserved and not in use.
    pub free: u64,
}

/// A PCI device as sysfs shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PciDevice {
    /// The driver bound to it (the name of its `driver` link), if any.
    pub driver: Option<String>,
    /// Its IOMMU group, if the IOMMU is on.
    pub iommu_group: Option<String>,
    /// Its NUMA node (`-1`: none).
    pub numa_node: Option<i64>,
    /// Kernel network interfaces on it (`net/*`), while a kernel driver has it.
    pub interfaces: Vec<String>,
}

impl Host {
    /// The host whose files are under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Host {
        Host { root: root.into() }
    }

    /// The path of `absolute` (e.g. `/sys/kernel/mm`) under the root.
    pub fn path(&self, absolute: &str) -> PathBuf {
        self.root.join(absolute.trim_start_matches('/'))
    }

    fn read(&self, absolute: &str) -> Option<String> {
        fs::read_to_string(self.path(absolute)).ok()
    }

    fn read_u64(&self, absolute: &str) -> Option<u64> {
        self.read(absolute)?.trim().parse().ok()
    }

    /// The default hugepage size in kB (`Hugepagesize` in `/proc/meminfo`; 2048 when
    /// it cannot be read, the x86 default).
    pub fn hugepage_kb(&self) -> u64 {
        self.read("/proc/meminfo")
            .and_then(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("Hugepagesize:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
            .unwrap_or(2048)
    }

    /// The `nr_hugepages` file of the default size: the system's (`node: None`) or one
    /// node's, as an absolute path on the host.
    pub fn nr_hugepages_path(&self, node: Option<u32>) -> String {
        let kb = self.hugepage_kb();
        match node {
            None => format!("/sys/kernel/mm/hugepages/hugepages-{kb}kB/nr_hugepages"),
            Some(n) => {
                format!("/sys/devices/system/node/node{n}/hugepages/hugepages-{kb}kB/nr_hugepages")
            }
        }
    }

    /// Hugepages of the default size: the system's (`node: None`) or one node's.
    pub fn hugepages(&self, node: Option<u32>) -> Option<Pages> {
        let nr = self.nr_hugepages_path(node);
        let dir = nr.trim_end_matches("nr_hugepages");
        Some(Pages {
            total: self.read_u64(&nr)?,
            free: self.read_u64(&format!("{dir}free_hugepages"))?,
        })
    }

    /// The NUMA nodes (`/sys/devices/system/node/node*`); empty on a kernel without NUMA.
    pub fn nodes(&self) -> Vec<u32> {
        let mut nodes: Vec<u32> = list_dir(&self.path("/sys/devices/system/node"))
            .iter()
            .filter_map(|n| n.strip_prefix("node")?.parse().ok())
            .collect();
        nodes.sort_unstable();
        nodes
    }

    /// Where hugetlbfs is mounted (`/proc/mounts`).
    pub fn hugetlbfs_mounts(&self) -> Vec<String> {
        self.read("/proc/mounts")
            .map(|m| {
                m.lines()
                    .filter_map(|l| {
                        let mut f = l.split_whitespace();
                        let (_, dir, kind) = (f.next()?, f.next()?, f.next()?);
                        (kind == "hugetlbfs").then(|| dir.to_owned())
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The PCI device at `address` (`0000:3b:00.0`), if the host has it.
    pub fn pci(&self, address: &str) -> Option<PciDevice> {
        let dir = self.path(&format!("/sys/bus/pci/devices/{address}"));
        if !dir.is_dir() {
            return None;
        }
        let link_name = |name: &str| {
            fs::read_link(dir.join(name))
                .ok()
                .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()))
        };
        let mut interfaces = list_dir(&dir.join("net"));
        interfaces.sort();
        Some(PciDevice {
            driver: link_name("driver"),
            iommu_group: link_name("iommu_group"),
            numa_node: fs::read_to_string(dir.join("numa_node"))
                .ok()
                .and_then(|n| n.trim().parse().ok()),
            interfaces,
        })
    }

    /// IOMMU groups (`/sys/kernel/iommu_groups`): none when the IOMMU is off.
    pub fn iommu_groups(&self) -> usize {
        list_dir(&self.path("/sys/kernel/iommu_groups")).len()
    }

    /// Whether vfio runs without an IOMMU (`enable_unsafe_noiommu_mode`).
    pub fn vfio_noiommu(&self) -> bool {
        self.read("/sys/module/vfio/parameters/enable_unsafe_noiommu_mode")
            .is_some_and(|v| matches!(v.trim(), "Y" | "1"))
    }

    /// Whether kernel module `name` is loaded (`/sys/module/NAME`; `-` read as `_`).
    pub fn module_loaded(&self, name: &str) -> bool {
        self.path(&format!("/sys/module/{}", name.replace('-', "_")))
            .is_dir()
    }

    /// A CPU list file (`present`, `online`, `isolated`) of `/sys/devices/system/cpu`.
    pub fn cpus(&self, which: &str) -> Option<BTreeSet<u32>> {
        parse_cpu_list(&self.read(&format!("/sys/devices/system/cpu/{which}"))?)
    }

    /// The kernel command line.
    pub fn cmdline(&self) -> String {
        self.read("/proc/cmdline").unwrap_or_default()
    }
}

fn list_dir(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// Parses a kernel CPU list (`0-3,8,10-11`; empty: none).
pub fn parse_cpu_list(text: &str) -> Option<BTreeSet<u32>> {
    let mut set = BTreeSet::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
                if b < a || b - a > 65_536 {
                    return None;
                }
                set.extend(a..=b);
            }
            None => {
                set.insert(part.parse().ok()?);
            }
        }
    }
    Some(set)
}

/// Writes a CPU set back as a kernel CPU list (`1-4,6`).
pub fn format_cpu_list(set: &BTreeSet<u32>) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut iter = set.iter().copied().peekable();
    while let Some(first) = iter.next() {
        let mut last = first;
        while iter.peek() == Some(&(last + 1)) {
            last += 1;
            iter.next();
        }
        out.push(if first == last {
            first.to_string()
        } else {
            format!("{first}-{last}")
        });
    }
    out.join(",")
}

/// The process's side: what bounds the memory DPDK may lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Process {
    /// `RLIMIT_MEMLOCK` soft limit in bytes; `None`: unlimited.
    pub memlock: Option<u64>,
    /// `CAP_IPC_LOCK` is effective (root has it): the limit does not apply.
    pub ipc_lock: bool,
}

impl Process {
    /// This process's limit and capability, from `/proc/self/limits` and
    /// `/proc/self/status` (what `getrlimit` and `capget` would say).
    pub fn current() -> Process {
        let read = |p: &str| fs::read_to_string(p).unwrap_or_default();
        Process {
            memlock: memlock_limit(&read("/proc/self/limits")),
            ipc_lock: effective_capability(&read("/proc/self/status"), 14),
        }
    }
}

/// The soft `Max locked memory` limit of a `/proc/PID/limits` text, in bytes; `None`:
/// unlimited (or not stated, which the kernel never does).
pub fn memlock_limit(limits: &str) -> Option<u64> {
    let line = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max locked memory"))?;
    line.split_whitespace().next()?.parse().ok()
}

/// Whether capability bit `bit` (14: `CAP_IPC_LOCK`) is in the `CapEff` line of a
/// `/proc/PID/status` text.
pub fn effective_capability(status: &str, bit: u32) -> bool {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << bit) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_read_and_write_back_as_the_kernel_writes_them() {
        let set = parse_cpu_list("0-3,8,10-11\n").unwrap_or_default();
        assert_eq!(set.len(), 7);
        assert_eq!(format_cpu_list(&set), "0-3,8,10-11");
        assert_eq!(parse_cpu_list("\n"), Some(BTreeSet::new()));
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("x"), None);
    }

    #[test]
    fn the_memlock_limit_is_read_from_proc_limits() {
        let limited = "Max processes  63 63 processes\nMax locked memory         8388608              8388608              bytes\n";
        assert_eq!(memlock_limit(limited), Some(8_388_608));
        let unlimited =
            "Max locked memory         unlimited            unlimited            bytes\n";
        assert_eq!(memlock_limit(unlimited), None);
    }

    #[test]
    fn cap_ipc_lock_is_read_from_the_effective_set() {
        assert!(effective_capability("CapEff:\t000001ffffffffff\n", 14));
        assert!(!effective_capability("CapEff:\t0000000000000000\n", 14));
        assert!(!effective_capability("", 14));
    }
}
