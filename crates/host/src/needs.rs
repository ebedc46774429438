//! What a profile asks of the host: read from its EAL arguments, ports and lcores the
//! way `rte_eal_init` reads them.

use std::collections::BTreeMap;

use serde::Serialize;
use tandem_config::{Device, PortRole, Profile};

/// Hugepage memory the EAL will ask for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HugepageNeed {
    /// `--no-huge`: ordinary memory (the lab's profiles).
    None,
    /// `--socket-mem A,B,...`: bytes per NUMA node (nodes with 0 left out).
    PerNode(BTreeMap<u32, u64>),
    /// `-m N`: bytes from any node.
    Total(u64),
    /// Neither: DPDK takes hugepages as it needs them, so no amount can be checked.
    Unstated,
}

/// A port's device as the host must provide it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PortDevice {
    /// `outside` or `inside`.
    pub role: &'static str,
    /// The PCI address, or `None` for a virtual device.
    pub pci: Option<String>,
    /// The device as the profile names it.
    pub name: String,
}

/// What a profile asks of the host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Needs {
    /// Hugepage memory.
    pub hugepages: HugepageNeed,
    /// `--huge-dir`, if given: where hugetlbfs must be mounted.
    pub huge_dir: Option<String>,
    /// The two ports' devices.
    pub devices: Vec<PortDevice>,
    /// The control lcore and the workers' (lcore ids are CPU ids under `-l` and `-c`).
    pub lcores: Vec<u32>,
    /// The worker lcores: the ones that poll, which should have their CPU alone.
    pub workers: Vec<u32>,
    /// The lcores map onto CPUs in a way this does not read (`--lcores` with `@` or
    /// groups): the CPU checks are skipped.
    pub lcore_map_unread: bool,
}

const MIB: u64 = 1 << 20;

impl Needs {
    /// Reads what `profile` asks.
    pub fn of(profile: &Profile) -> Needs {
        let args = &profile.eal.args;
        let mut no_huge = false;
        let mut total = None;
        let mut per_node = None;
        let mut huge_dir = None;
        let mut lcore_map_unread = false;
        let mut i = 0;
        while i < args.len() {
            let (opt, value, used) = option(&args[i], args.get(i + 1).map(String::as_str));
            i += used;
            match (opt, value) {
                ("--no-huge", _) => no_huge = true,
                ("-m", Some(v)) => total = v.trim().parse::<u64>().ok().map(|mb| mb * MIB),
                ("--socket-mem", Some(v)) => {
                    per_node = Some(
                        v.split(',')
                            .enumerate()
                            .filter_map(|(node, mb)| {
                                let mb = mb.trim().parse::<u64>().ok()?;
                                (mb > 0).then(|| (u32::try_from(node).ok(), mb * MIB))
                            })
                            .filter_map(|(node, bytes)| Some((node?, bytes)))
                            .collect(),
                    )
                }
                ("--huge-dir", Some(v)) => huge_dir = Some(v.to_owned()),
                ("--lcores", Some(v)) if v.contains(['@', '(']) => lcore_map_unread = true,
                _ => {}
            }
        }
        let hugepages = match (no_huge, per_node, total) {
            (true, _, _) => HugepageNeed::None,
            (false, Some(nodes), _) => HugepageNeed::PerNode(nodes),
            (false, None, Some(bytes)) => HugepageNeed::Total(bytes),
            (false, None, None) => HugepageNeed::Unstated,
        };
        let devices = [PortRole::Outside, PortRole::Inside]
            .into_iter()
            .map(|role| {
                let device = &profile.ports.get(role).device;
                PortDevice {
                    role: role.as_str(),
                    pci: match device {
                        Device::Pci(a) => Some(a.to_string()),
                        Device::Virtual(_) => None,
                    },
                    name: device.to_string(),
                }
            })
            .collect();
        let mut lcores = vec![profile.lcores.control];
        lcores.extend(&profile.lcores.workers);
        Needs {
            hugepages,
            huge_dir,
            devices,
            lcores,
            workers: profile.lcores.workers.clone(),
            lcore_map_unread,
        }
    }

    /// The ports' PCI devices, outside first (two functions of one NIC are two devices;
    /// one device for both ports is refused by validation).
    pub fn pci_devices(&self) -> Vec<&str> {
        self.devices
            .iter()
            .filter_map(|d| d.pci.as_deref())
            .collect()
    }
}

/// Splits an EAL argument into option and value, as `split_option` in the config crate
/// does: `--opt=value`, `--opt value`, `-mVALUE` or `-m VALUE`.
fn option<'a>(arg: &'a str, next: Option<&'a str>) -> (&'a str, Option<&'a str>, usize) {
    const WITH_VALUE: &[&str] = &["-m", "--socket-mem", "--huge-dir", "--lcores", "-l"];
    if let Some((name, value)) = arg.split_once('=') {
        if WITH_VALUE.contains(&name) {
            return (name, Some(value), 1);
        }
    }
    if WITH_VALUE.contains(&arg) {
        return (arg, next, if next.is_some() { 2 } else { 1 });
    }
    if !arg.starts_with("--") && arg.len() > 2 && arg.starts_with("-m") {
        return ("-m", Some(&arg[2..]), 1);
    }
    (arg, None, 1)
}
