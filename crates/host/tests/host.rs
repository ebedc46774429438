//! `tandem host check` and `setup` against fake hosts: sysfs and procfs trees of plain
//! files in a temporary directory, and a runner that records the programs setup runs and
//! makes their effect on the tree as the real ones would on a host.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use tandem_config::Profile;
use tandem_host::{apply, check, plan, Action, Host, Needs, Process, Runner, SetupError, Status};

const NIC0: &str = "0000:3b:00.0";
const NIC1: &str = "0000:3b:00.1";
const SETUP: &str = "tandem host setup --profile P";
const ROOT: Process = Process {
    memlock: Some(8 << 20),
    ipc_lock: true,
};

/// A fake host's root: removed when dropped.
struct Tree(PathBuf);

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

impl Tree {
    /// A host with CPUs 0-7, NUMA node 0, 2 MiB hugepages (none reserved), hugetlbfs on
    /// /dev/hugepages, an IOMMU, and the two-port profile's NICs on ixgbe (eth1, eth2).
    fn new(name: &str) -> Tree {
        let root = std::env::temp_dir().join(format!("tandem-host-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let t = Tree(root);
        t.write(
            "/proc/meminfo",
            "HugePages_Total:       0\nHugepagesize:       2048 kB\n",
        );
        t.write(
            "/proc/mounts",
            "sysfs /sys sysfs rw 0 0\nhugetlbfs /dev/hugepages hugetlbfs rw,pagesize=2M 0 0\n",
        );
        t.write("/proc/cmdline", "quiet\n");
        t.pages(None, 0, 0);
        t.pages(Some(0), 0, 0);
        t.write("/sys/devices/system/cpu/present", "0-7\n");
        t.write("/sys/devices/system/cpu/online", "0-7\n");
        t.write("/sys/devices/system/cpu/isolated", "\n");
        for g in 0..4 {
            t.mkdir(&format!("/sys/kernel/iommu_groups/{g}"));
        }
        t.nic(NIC0, Some("ixgbe"), "eth1");
        t.nic(NIC1, Some("ixgbe"), "eth2");
        t
    }

    fn path(&self, absolute: &str) -> PathBuf {
        self.0.join(absolute.trim_start_matches('/'))
    }

    fn write(&self, absolute: &str, text: &str) {
        let p = self.path(absolute);
        fs::create_dir_all(p.parent().unwrap_or(Path::new("/"))).expect("mkdir");
        fs::write(p, text).expect("write");
    }

    fn read(&self, absolute: &str) -> String {
        fs::read_to_string(self.path(absolute)).unwrap_or_default()
    }

    fn mkdir(&self, absolute: &str) {
        fs::create_dir_all(self.path(absolute)).expect("mkdir");
    }

    /// The 2 MiB pool of the system or of a node: `total` reserved, `free` of them free.
    fn pages(&self, node: Option<u32>, total: u64, free: u64) {
        let dir = match node {
            None => "/sys/kernel/mm/hugepages/hugepages-2048kB".to_owned(),
            Some(n) => format!("/sys/devices/system/node/node{n}/hugepages/hugepages-2048kB"),
        };
        self.write(&format!("{dir}/nr_hugepages"), &format!("{total}\n"));
        self.write(&format!("{dir}/free_hugepages"), &format!("{free}\n"));
    }

    /// A PCI NIC on node 0 in an IOMMU group, bound to `driver`, with a kernel interface
    /// while its driver is not a DPDK one.
    fn nic(&self, address: &str, driver: Option<&str>, iface: &str) {
        let dev = format!("/sys/bus/pci/devices/{address}");
        self.write(&format!("{dev}/numa_node"), "0\n");
        let _ = symlink(
            "../../../kernel/iommu_groups/1",
            self.path(&format!("{dev}/iommu_group")),
        );
        self.bind(address, driver);
        if driver.is_some_and(|d| !d.contains("pci") && d != "igb_uio") {
            self.mkdir(&format!("{dev}/net/{iface}"));
        }
    }

    /// Points a device's `driver` link at `driver`, as the kernel does on a bind.
    fn bind(&self, address: &str, driver: Option<&str>) {
        let link = self.path(&format!("/sys/bus/pci/devices/{address}/driver"));
        let _ = fs::remove_file(&link);
        if let Some(d) = driver {
            self.mkdir(&format!("/sys/bus/pci/drivers/{d}"));
            symlink(format!("../../../bus/pci/drivers/{d}"), link).expect("symlink");
        }
    }

    fn host(&self) -> Host {
        Host::new(&self.0)
    }
}

/// Records each program run, and does to the tree what it would do to a host.
struct FakeRunner<'a> {
    tree: &'a Tree,
    ran: Vec<String>,
    /// `dpdk-devbind.py` exits 0 but binds nothing (as with an interface that is up).
    skip_binds: bool,
}

impl<'a> FakeRunner<'a> {
    fn new(tree: &'a Tree) -> FakeRunner<'a> {
        FakeRunner {
            tree,
            ran: Vec::new(),
            skip_binds: false,
        }
    }
}

impl Runner for FakeRunner<'_> {
    fn run(&mut self, program: &str, args: &[String]) -> Result<(), String> {
        self.ran.push(format!("{program} {}", args.join(" ")));
        match (program, args) {
            ("modprobe", [module]) => self
                .tree
                .mkdir(&format!("/sys/module/{}", module.replace('-', "_"))),
            ("dpdk-devbind.py", [bind, address]) if !self.skip_binds => {
                let driver = bind.strip_prefix("--bind=").ok_or("no --bind")?;
                self.tree.bind(address, Some(driver));
                let _ = fs::remove_dir_all(
                    self.tree
                        .path(&format!("/sys/bus/pci/devices/{address}/net")),
                );
            }
            ("mount", [_, _, _, dir]) => {
                let mounts = self.tree.read("/proc/mounts");
                self.tree.write(
                    "/proc/mounts",
                    &format!("{mounts}hugetlbfs {dir} hugetlbfs rw 0 0\n"),
                );
            }
            _ => {}
        }
        Ok(())
    }
}

fn profile(name: &str) -> Profile {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../configs")
        .join(name);
    tandem_config::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn two_port() -> Needs {
    Needs::of(&profile("appliance-2port.yaml"))
}

fn finding<'a>(
    report: &'a tandem_host::Report,
    topic: &str,
    phrase: &str,
) -> &'a tandem_host::Finding {
    report
        .findings
        .iter()
        .find(|f| f.topic == topic && f.what.contains(phrase))
        .unwrap_or_else(|| panic!("no {topic} finding with `{phrase}` in:\n{}", report.text()))
}

#[test]
fn the_lab_profile_needs_no_hugepages_and_no_binding_and_passes() {
    let tree = Tree::new("lab");
    let needs = Needs::of(&profile("lab.yaml"));
    let report = check(&needs, &tree.host(), &ROOT, SETUP);
    assert!(report.passed, "{}", report.text());
    finding(
        &report,
        "hugepages",
        "not needed: the EAL runs with --no-huge",
    );
    finding(
        &report,
        "device",
        "outside: net_af_packet0 is a virtual device (--vdev): nothing to bind",
    );
    finding(
        &report,
        "device",
        "inside: net_af_packet1 is a virtual device",
    );
    finding(&report, "memlock", "not needed");
    assert_eq!(
        finding(&report, "isolation", "not isolated").status,
        Status::Warn
    );
    assert!(plan(&needs, &tree.host()).is_empty());
}

#[test]
fn the_two_port_profile_reads_its_hugepages_per_node_devices_and_lcores() {
    let needs = two_port();
    assert_eq!(
        needs.hugepages,
        tandem_host::HugepageNeed::PerNode(BTreeMap::from([(0, 2048 << 20)]))
    );
    assert_eq!(needs.huge_dir.as_deref(), Some("/dev/hugepages"));
    assert_eq!(needs.pci_devices(), vec![NIC0, NIC1]);
    assert_eq!(needs.lcores, vec![0, 1, 2, 3, 4]);
}

#[test]
fn an_unprepared_host_fails_with_the_command_that_fixes_each_finding() {
    let tree = Tree::new("unprepared");
    let report = check(&two_port(), &tree.host(), &ROOT, SETUP);
    assert!(!report.passed);
    let pages = finding(
        &report,
        "hugepages",
        "node 0: 0 of 0 pages of 2048 kB free, 1024 needed",
    );
    assert_eq!(pages.status, Status::Fail);
    assert_eq!(
        pages.fix.as_deref(),
        Some("tandem host setup --profile P, or: echo 1024 > /sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages")
    );
    let nic = finding(
        &report,
        "device",
        "outside: 0000:3b:00.0 is bound to ixgbe (interface eth1), not a DPDK driver",
    );
    assert_eq!(nic.status, Status::Fail);
    assert_eq!(
        nic.fix.as_deref(),
        Some("tandem host setup --profile P, or: ip link set eth1 down && modprobe vfio-pci && dpdk-devbind.py --bind=vfio-pci 0000:3b:00.0")
    );
    finding(&report, "iommu", "on (4 groups)");
    finding(&report, "lcores", "CPU 0-4 present and online");
    let iso = finding(&report, "isolation", "worker CPU 1-4 not isolated");
    assert!(iso
        .fix
        .as_deref()
        .is_some_and(|f| f.contains("isolcpus=1-4 nohz_full=1-4")));
    finding(&report, "memlock", "CAP_IPC_LOCK");
}

#[test]
fn setup_reserves_hugepages_per_node_binds_the_nics_and_a_second_run_has_nothing_to_change() {
    let tree = Tree::new("setup");
    let needs = two_port();
    let actions = plan(&needs, &tree.host());
    assert_eq!(
        actions,
        vec![
            Action::Reserve {
                node: Some(0),
                path: "/sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages"
                    .into(),
                from: 0,
                to: 1024,
            },
            Action::LoadModule { module: "vfio-pci" },
            Action::Bind {
                address: NIC0.into(),
                driver: "vfio-pci",
                from: Some("ixgbe".into())
            },
            Action::Bind {
                address: NIC1.into(),
                driver: "vfio-pci",
                from: Some("ixgbe".into())
            },
        ]
    );
    assert_eq!(actions[0].to_string(), "hugepages on node 0: 0 -> 1024");
    assert_eq!(
        actions[2].to_string(),
        "0000:3b:00.0 bound to vfio-pci (was ixgbe)"
    );
    let mut runner = FakeRunner::new(&tree);
    apply(&actions, &tree.host(), &mut runner).expect("setup");
    assert_eq!(
        runner.ran,
        vec![
            "modprobe vfio-pci",
            "dpdk-devbind.py --bind=vfio-pci 0000:3b:00.0",
            "dpdk-devbind.py --bind=vfio-pci 0000:3b:00.1",
        ]
    );
    assert_eq!(
        tree.read("/sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages"),
        "1024"
    );
    // The kernel makes the reserved pages free.
    tree.pages(Some(0), 1024, 1024);
    assert!(plan(&needs, &tree.host()).is_empty(), "nothing to change");
    let report = check(&needs, &tree.host(), &ROOT, SETUP);
    assert!(report.passed, "{}", report.text());
    finding(
        &report,
        "device",
        "outside: 0000:3b:00.0 is bound to vfio-pci, NUMA node 0",
    );
}

#[test]
fn setup_only_adds_what_the_free_pages_lack_when_some_are_reserved_already() {
    let tree = Tree::new("partly");
    tree.pages(Some(0), 600, 400); // another DPDK process holds 200
    let actions = plan(&two_port(), &tree.host());
    assert!(
        matches!(
            actions[0],
            Action::Reserve {
                from: 600,
                to: 1224,
                ..
            }
        ),
        "{actions:?}"
    );
}

#[test]
fn without_an_iommu_the_nics_bind_to_uio_pci_generic_and_the_check_warns() {
    let tree = Tree::new("noiommu");
    fs::remove_dir_all(tree.path("/sys/kernel/iommu_groups")).expect("rm");
    let actions = plan(&two_port(), &tree.host());
    assert!(actions.contains(&Action::LoadModule {
        module: "uio_pci_generic"
    }));
    assert!(actions.contains(&Action::Bind {
        address: NIC1.into(),
        driver: "uio_pci_generic",
        from: Some("ixgbe".into())
    }));
    let report = check(&two_port(), &tree.host(), &ROOT, SETUP);
    let iommu = finding(&report, "iommu", "off: devices bind to uio_pci_generic");
    assert_eq!(iommu.status, Status::Warn);
    assert!(iommu
        .fix
        .as_deref()
        .is_some_and(|f| f.contains("intel_iommu=on iommu=pt")));
    let nic = finding(&report, "device", "inside: 0000:3b:00.1 is bound to ixgbe");
    assert!(nic.fix.as_deref().is_some_and(|f| f.ends_with(
        "modprobe uio_pci_generic && dpdk-devbind.py --bind=uio_pci_generic 0000:3b:00.1"
    )));
}

#[test]
fn nics_on_vfio_or_on_a_bifurcated_driver_need_nothing_and_a_loaded_module_is_not_loaded_again() {
    let tree = Tree::new("bound");
    tree.nic(NIC0, Some("vfio-pci"), "eth1");
    tree.nic(NIC1, Some("mlx5_core"), "eth2");
    tree.pages(Some(0), 1024, 1024);
    assert!(plan(&two_port(), &tree.host()).is_empty());
    let report = check(&two_port(), &tree.host(), &ROOT, SETUP);
    assert!(report.passed, "{}", report.text());
    finding(
        &report,
        "device",
        "inside: 0000:3b:00.1 is driven by mlx5_core, which DPDK shares",
    );
    tree.nic(NIC1, None, "eth2");
    tree.mkdir("/sys/module/vfio_pci");
    let actions = plan(&two_port(), &tree.host());
    assert_eq!(
        actions,
        vec![Action::Bind {
            address: NIC1.into(),
            driver: "vfio-pci",
            from: None
        }]
    );
}

#[test]
fn a_bind_that_dpdk_devbind_skipped_is_an_error_not_a_success() {
    let tree = Tree::new("skipped");
    tree.pages(Some(0), 1024, 1024);
    let actions = plan(&two_port(), &tree.host());
    let mut runner = FakeRunner::new(&tree);
    runner.skip_binds = true;
    let e = apply(&actions, &tree.host(), &mut runner).err();
    assert!(
        matches!(e, Some(SetupError::Unchanged(ref m)) if m.contains("left 0000:3b:00.0 on ixgbe")),
        "{e:?}"
    );
}

#[test]
fn a_missing_device_a_missing_cpu_and_an_offline_cpu_fail() {
    let tree = Tree::new("missing");
    fs::remove_dir_all(tree.path(&format!("/sys/bus/pci/devices/{NIC1}"))).expect("rm");
    tree.write("/sys/devices/system/cpu/present", "0-3\n");
    tree.write("/sys/devices/system/cpu/online", "0-2\n");
    let report = check(&two_port(), &tree.host(), &ROOT, SETUP);
    assert_eq!(
        finding(&report, "device", "inside: no PCI device 0000:3b:00.1").status,
        Status::Fail
    );
    assert_eq!(
        finding(&report, "lcores", "CPU 4 not on this host (present: 0-3)").status,
        Status::Fail
    );
    let off = finding(&report, "lcores", "CPU 3 offline");
    assert_eq!(
        off.fix.as_deref(),
        Some("echo 1 > /sys/devices/system/cpu/cpu3/online")
    );
    assert!(!plan(&two_port(), &tree.host())
        .iter()
        .any(|a| matches!(a, Action::Bind { address, .. } if address == NIC1)));
}

#[test]
fn isolated_workers_pass_and_a_small_memlock_limit_without_cap_ipc_lock_fails() {
    let tree = Tree::new("memlock");
    tree.write("/sys/devices/system/cpu/isolated", "1-4\n");
    let user = Process {
        memlock: Some(64 << 10),
        ipc_lock: false,
    };
    let report = check(&two_port(), &tree.host(), &user, SETUP);
    finding(&report, "isolation", "worker CPU 1-4 isolated");
    let m = finding(&report, "memlock", "64 KiB without CAP_IPC_LOCK");
    assert_eq!(m.status, Status::Fail);
    assert!(m
        .fix
        .as_deref()
        .is_some_and(|f| f.contains("LimitMEMLOCK=infinity")));
    let unlimited = Process {
        memlock: None,
        ipc_lock: false,
    };
    finding(
        &check(&two_port(), &tree.host(), &unlimited, SETUP),
        "memlock",
        "unlimited",
    );
}

#[test]
fn setup_mounts_hugetlbfs_where_the_profile_says_when_nothing_is_mounted_there() {
    let tree = Tree::new("mount");
    tree.write("/proc/mounts", "sysfs /sys sysfs rw 0 0\n");
    tree.pages(Some(0), 1024, 1024);
    let needs = two_port();
    let report = check(&needs, &tree.host(), &ROOT, SETUP);
    assert_eq!(
        finding(&report, "hugetlbfs", "not mounted on /dev/hugepages").status,
        Status::Fail
    );
    let actions = plan(&needs, &tree.host());
    assert_eq!(
        actions[0],
        Action::Mount {
            dir: "/dev/hugepages".into()
        }
    );
    let mut runner = FakeRunner::new(&tree);
    apply(&actions, &tree.host(), &mut runner).expect("setup");
    assert_eq!(
        runner.ran[..2],
        [
            "mkdir -p /dev/hugepages",
            "mount -t hugetlbfs nodev /dev/hugepages"
        ]
    );
    assert!(plan(&needs, &tree.host()).is_empty());
}

#[test]
fn the_report_reads_as_json() {
    let tree = Tree::new("json");
    let report = check(&two_port(), &tree.host(), &ROOT, SETUP);
    let v = serde_json::to_value(&report).expect("json");
    assert_eq!(v["passed"], false);
    assert_eq!(v["findings"][0]["topic"], "hugepages");
    assert_eq!(v["findings"][0]["status"], "fail");
}
