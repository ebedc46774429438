//! From the profile as written ([`crate::raw`]) to the validated [`Profile`]: parse the
//! strings, fill in defaults, and check every rule a network engineer would otherwise find
//! out about at start-up or, worse, at the first failover.
//!
//! The rules are listed in the crate documentation.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

use crate::duration::{format_duration, parse_duration, DURATION_FORMS};
use crate::eal::EalFacts;
use crate::locate::FieldPath;
use crate::net::{Device, Ipv4Cidr, ServicePort};
use crate::profile::{
    Eal, Ha, Health, Lcores, Limits, Logging, Management, Mode, Port, PortRole, Ports, Profile,
    Replay, ReplayScope, Replica, Service, Timeouts, WorkerAssignment,
};
use crate::raw::{
    RawHa, RawHealth, RawLcores, RawLimits, RawManagement, RawPort, RawPorts, RawProfile,
    RawReplay, RawService, RawTimeouts, RawWorker,
};
use crate::schema::{self, allowed_at};
use crate::size::{format_size, RawSize, SIZE_FORMS};

/// One problem found by validation, before it is given a line.
#[derive(Debug)]
pub(crate) struct Problem {
    /// Where.
    pub path: FieldPath,
    /// What is wrong.
    pub message: String,
    /// What is allowed.
    pub allowed: String,
}

struct Checker {
    problems: Vec<Problem>,
}

impl Checker {
    /// Records a problem; the allowed text is the field's own.
    fn bad(&mut self, path: &FieldPath, message: impl Into<String>) {
        self.bad_allowing(path, message, allowed_at(path));
    }

    /// Records a problem with a specific allowed text.
    fn bad_allowing(
        &mut self,
        path: &FieldPath,
        message: impl Into<String>,
        allowed: impl Into<String>,
    ) {
        self.problems.push(Problem {
            path: path.clone(),
            message: message.into(),
            allowed: allowed.into(),
        });
    }

    fn duration(
        &mut self,
        path: &FieldPath,
        raw: Option<&str>,
        default: Duration,
        zero_ok: bool,
    ) -> Duration {
        let Some(text) = raw else { return default };
        match parse_duration(text) {
            Ok(d) if d.is_zero() && !zero_ok => {
                self.bad(path, "must be greater than zero");
                default
            }
            Ok(d) => d,
            Err(why) => {
                let forms = if zero_ok {
                    format!("{DURATION_FORMS}; 0")
                } else {
                    DURATION_FORMS.to_owned()
                };
                self.bad_allowing(path, format!("not a duration: {why}"), forms);
                default
            }
        }
    }

    /// A size in bytes; the default when left out or not a size.
    fn size(&mut self, path: &FieldPath, raw: Option<&RawSize>, default: u64) -> u64 {
        match raw.map(RawSize::bytes) {
            None => default,
            Some(Ok(n)) => n,
            Some(Err(why)) => {
                self.bad_allowing(path, format!("not a size: {why}"), SIZE_FORMS);
                default
            }
        }
    }

    fn count(&mut self, path: &FieldPath, raw: Option<u32>, default: u32) -> u32 {
        match raw {
            None => default,
            Some(0) => {
                self.bad(path, "must be greater than zero");
                default
            }
            Some(n) if n > schema::MAX_COUNT => {
                self.bad(path, format!("{n} is too many"));
                default
            }
            Some(n) => n,
        }
    }

    fn unicast(&mut self, path: &FieldPath, text: &str) -> Option<Ipv4Addr> {
        let Ok(ip) = text.trim().parse::<Ipv4Addr>() else {
            self.bad(path, format!("`{text}` is not an IPv4 address"));
            return None;
        };
        if let Some(why) = not_unicast(ip) {
            self.bad(path, format!("{ip} is {why}"));
            return None;
        }
        Some(ip)
    }

    fn name(&mut self, path: &FieldPath, name: &str) {
        if !crate::valid_name(name) {
            self.bad(path, format!("`{name}` is not a valid name"));
        }
    }
}

fn not_unicast(ip: Ipv4Addr) -> Option<&'static str> {
    if ip.is_unspecified() {
        Some("the unspecified address")
    } else if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if ip.is_broadcast() {
        Some("the broadcast address")
    } else if u32::from(ip) >> 28 == 0xf {
        Some("a reserved (class E) address")
    } else {
        None
    }
}

/// Validates a deserialised profile.
pub(crate) fn validate(raw: RawProfile) -> Result<Profile, Vec<Problem>> {
    let mut c = Checker {
        problems: Vec::new(),
    };
    let root = FieldPath::root();
    let eal_args = raw.eal.map(|e| e.args).unwrap_or_default();
    let facts = EalFacts::read(&eal_args);

    let lcores = check_lcores(&mut c, &root.key("lcores"), raw.lcores, &facts);
    let ports = check_ports(&mut c, &root.key("ports"), raw.ports, &facts);
    let workers = check_workers(&mut c, &root, raw.workers, &lcores, &ports);
    let limits = check_limits(
        &mut c,
        &root.key("limits"),
        raw.limits.unwrap_or_default(),
        &ports,
        lcores.workers.len(),
    );
    let budget = ReplayBudget::of(&c, &root.key("limits"), &limits, lcores.workers.len());
    let services = check_services(&mut c, &root.key("services"), raw.services, &ports, &budget);
    let timeouts = check_timeouts(
        &mut c,
        &root.key("timeouts"),
        raw.timeouts.unwrap_or_default(),
    );
    let management = check_management(
        &mut c,
        &root.key("management"),
        raw.management.unwrap_or_default(),
    );
    let ha = raw
        .ha
        .map(|h| check_ha(&mut c, &root.key("ha"), h, &ports, &services));
    let logging = raw.logging.unwrap_or_default();
    let logging = Logging {
        format: logging.format.unwrap_or_default(),
        level: logging.level.unwrap_or_default(),
    };

    if !c.problems.is_empty() {
        return Err(c.problems);
    }
    Ok(Profile {
        eal: Eal { args: eal_args },
        lcores,
        ports,
        workers,
        services,
        timeouts,
        limits,
        management,
        logging,
        ha,
    })
}

fn fmt_set(set: &BTreeSet<u32>) -> String {
    let v: Vec<String> = set.iter().map(u32::to_string).collect();
    v.join(", ")
}

fn check_lcores(c: &mut Checker, p: &FieldPath, raw: RawLcores, eal: &EalFacts) -> Lcores {
    let control = raw.control.unwrap_or(schema::CONTROL_LCORE);
    let cp = p.key("control");
    if control > schema::MAX_LCORE {
        c.bad(
            &cp,
            format!("lcore {control} is above {}", schema::MAX_LCORE),
        );
    }
    let wp = p.key("workers");
    if raw.workers.is_empty() {
        c.bad(&wp, "no worker lcore: the data path needs at least one");
    }
    for (i, &w) in raw.workers.iter().enumerate() {
        let ip = wp.index(i);
        if w > schema::MAX_LCORE {
            c.bad(&ip, format!("lcore {w} is above {}", schema::MAX_LCORE));
        } else if w == control {
            c.bad_allowing(
                &ip,
                format!("lcore {w} is the control lcore"),
                format!("an lcore other than lcores.control ({control})"),
            );
        } else if let Some(j) = raw.workers[..i].iter().position(|&x| x == w) {
            c.bad_allowing(
                &ip,
                format!("lcore {w} is listed twice (also lcores.workers[{j}])"),
                "each worker lcore once",
            );
        }
    }
    if let Some((set, written)) = &eal.lcores {
        let allowed = format!("an lcore the EAL starts ({written}): {}", fmt_set(set));
        if control <= schema::MAX_LCORE && !set.contains(&control) {
            c.bad_allowing(
                &cp,
                format!("lcore {control} is not started by the EAL arguments ({written})"),
                allowed.clone(),
            );
        }
        for (i, &w) in raw.workers.iter().enumerate() {
            if w <= schema::MAX_LCORE && w != control && !set.contains(&w) {
                c.bad_allowing(
                    &wp.index(i),
                    format!("lcore {w} is not started by the EAL arguments ({written})"),
                    allowed.clone(),
                );
            }
        }
    }
    if let Some(main) = eal.main_lcore() {
        let in_list = eal
            .lcores
            .as_ref()
            .is_none_or(|(s, _)| s.contains(&control));
        if main != control && in_list {
            c.bad_allowing(
                &cp,
                format!(
                    "the control plane runs on the EAL main lcore, which is {main} (the first \
                     EAL lcore, or --main-lcore), not {control}"
                ),
                format!("{main}, or --main-lcore {control} in eal.args"),
            );
        }
    }
    Lcores {
        control,
        workers: raw.workers,
        affinity: raw.affinity.unwrap_or_default(),
    }
}

fn check_ports(c: &mut Checker, p: &FieldPath, raw: RawPorts, eal: &EalFacts) -> Ports {
    let outside = check_port(c, &p.key("outside"), raw.outside, eal);
    let inside = check_port(c, &p.key("inside"), raw.inside, eal);
    if outside.device == inside.device && !c.has_problem_at(&p.key("inside").key("device")) {
        c.bad_allowing(
            &p.key("inside").key("device"),
            format!("{} is also ports.outside.device", inside.device),
            "a device other than the outside port's",
        );
    }
    if outside.address.prefix_len > 0
        && inside.address.prefix_len > 0
        && outside.address.overlaps(&inside.address)
    {
        c.bad_allowing(
            &p.key("inside").key("address"),
            format!(
                "subnet {}/{} overlaps the outside subnet {}/{}",
                inside.address.network(),
                inside.address.prefix_len,
                outside.address.network(),
                outside.address.prefix_len
            ),
            "a subnet apart from ports.outside.address",
        );
    }
    Ports { outside, inside }
}

impl Checker {
    fn has_problem_at(&self, path: &FieldPath) -> bool {
        self.problems.iter().any(|pr| &pr.path == path)
    }
}

/// A placeholder for a port whose address did not parse (prefix 0 marks it: real
/// addresses are /1 or longer, so it never takes part in subnet checks).
const NO_ADDRESS: Ipv4Cidr = Ipv4Cidr {
    address: Ipv4Addr::UNSPECIFIED,
    prefix_len: 0,
};

fn check_port(c: &mut Checker, p: &FieldPath, raw: RawPort, eal: &EalFacts) -> Port {
    let dp = p.key("device");
    let device = match Device::parse(&raw.device) {
        Ok(d) => {
            check_device_in_eal(c, &dp, &d, eal);
            d
        }
        Err(why) => {
            c.bad(&dp, why);
            Device::Virtual(String::new())
        }
    };

    let ap = p.key("address");
    let address = match raw.address.parse::<Ipv4Cidr>() {
        Err(why) => {
            c.bad(&ap, why);
            NO_ADDRESS
        }
        Ok(cidr) if cidr.prefix_len == 0 => {
            c.bad(&ap, "a /0 prefix is not a subnet");
            NO_ADDRESS
        }
        Ok(cidr) => {
            if let Some(why) = not_unicast(cidr.address) {
                c.bad(&ap, format!("{} is {why}", cidr.address));
                NO_ADDRESS
            } else if cidr.is_reserved_host(cidr.address) {
                c.bad(
                    &ap,
                    format!(
                        "{} is the {} address of {}/{}",
                        cidr.address,
                        if cidr.address == cidr.network() {
                            "network"
                        } else {
                            "broadcast"
                        },
                        cidr.network(),
                        cidr.prefix_len
                    ),
                );
                NO_ADDRESS
            } else {
                cidr
            }
        }
    };

    let gp = p.key("gateway");
    let gateway = raw.gateway.as_deref().and_then(|g| c.unicast(&gp, g));
    if let Some(g) = gateway {
        if address.prefix_len > 0 {
            if !address.contains(g) {
                c.bad(
                    &gp,
                    format!(
                        "{g} is not on the port's subnet {}/{}",
                        address.network(),
                        address.prefix_len
                    ),
                );
            } else if g == address.address {
                c.bad(&gp, format!("{g} is the port's own address"));
            } else if address.is_reserved_host(g) {
                c.bad(
                    &gp,
                    format!("{g} is the network or broadcast address of the subnet"),
                );
            }
        }
    }

    let queues = raw.queues.unwrap_or(schema::QUEUES);
    if queues == 0 || queues > schema::MAX_QUEUES {
        c.bad(&p.key("queues"), format!("{queues} queues"));
    }
    let mut ring = |key: &str, value: Option<u16>| {
        let n = value.unwrap_or(schema::DESCRIPTORS);
        if !(schema::MIN_DESCRIPTORS..=schema::MAX_DESCRIPTORS).contains(&n) || !n.is_power_of_two()
        {
            c.bad(&p.key(key), format!("{n} descriptors"));
        }
        n
    };
    let rx_descriptors = ring("rx_descriptors", raw.rx_descriptors);
    let tx_descriptors = ring("tx_descriptors", raw.tx_descriptors);
    let mtu = raw.mtu.unwrap_or(schema::MTU);
    if !(schema::MIN_MTU..=schema::MAX_MTU).contains(&mtu) {
        c.bad(&p.key("mtu"), format!("MTU {mtu} is out of range"));
    }
    Port {
        device,
        address,
        gateway,
        queues: queues.max(1),
        rx_descriptors,
        tx_descriptors,
        mtu,
    }
}

fn check_device_in_eal(c: &mut Checker, p: &FieldPath, device: &Device, eal: &EalFacts) {
    match device {
        Device::Virtual(name) => {
            if !eal.vdevs.iter().any(|v| v == name) {
                c.bad_allowing(
                    p,
                    format!("virtual device {name} is not created by any --vdev in eal.args"),
                    format!(
                        "a device named by eal.args --vdev ({})",
                        list_or_none(&eal.vdevs)
                    ),
                );
            }
        }
        Device::Pci(pci) => {
            if eal.no_pci {
                c.bad_allowing(
                    p,
                    format!("PCI device {pci}, but eal.args has --no-pci"),
                    "a --vdev device, or remove --no-pci",
                );
            } else if eal.block.contains(pci) {
                c.bad_allowing(
                    p,
                    format!("PCI device {pci} is blocked by -b in eal.args"),
                    "a device that eal.args does not block",
                );
            } else if !eal.allow.is_empty() && !eal.allow.contains(pci) {
                let allowed: Vec<String> = eal.allow.iter().map(|a| a.to_string()).collect();
                c.bad_allowing(
                    p,
                    format!("PCI device {pci} is not in the EAL allow-list (-a)"),
                    format!("a device of eal.args -a: {}", allowed.join(", ")),
                );
            }
        }
    }
}

fn list_or_none(v: &[String]) -> String {
    if v.is_empty() {
        "none given".to_owned()
    } else {
        v.join(", ")
    }
}

fn check_workers(
    c: &mut Checker,
    root: &FieldPath,
    raw: Option<Vec<RawWorker>>,
    lcores: &Lcores,
    ports: &Ports,
) -> Vec<WorkerAssignment> {
    let mut queue_ids: Vec<(PortRole, u16)> = Vec::new();
    for role in PortRole::ALL {
        queue_ids.extend((0..ports.get(role).queues).map(|q| (role, q)));
    }
    let Some(list) = raw else {
        // Derived (WorkerAssignment::derived): queue i to worker i mod W.
        let w = lcores.workers.len();
        if w > queue_ids.len() {
            c.bad_allowing(
                &root.key("lcores").key("workers"),
                format!(
                    "{w} worker lcores but only {} receive queues (ports.outside.queues + \
                     ports.inside.queues): a worker would have nothing to poll",
                    queue_ids.len()
                ),
                "at most as many workers as receive queues; raise `queues` or list `workers`",
            );
        }
        return WorkerAssignment::derived(&lcores.workers, ports);
    };

    let wp = root.key("workers");
    let mut polled: BTreeMap<(PortRole, u16), usize> = BTreeMap::new();
    let mut out = Vec::new();
    for (i, w) in list.iter().enumerate() {
        let ip = wp.index(i);
        if w.lcore == lcores.control {
            c.bad_allowing(
                &ip.key("lcore"),
                format!("lcore {} is the control lcore", w.lcore),
                "one of lcores.workers",
            );
        } else if !lcores.workers.contains(&w.lcore) {
            c.bad_allowing(
                &ip.key("lcore"),
                format!("lcore {} is not in lcores.workers", w.lcore),
                format!(
                    "one of lcores.workers: {}",
                    fmt_set(&lcores.workers.iter().copied().collect())
                ),
            );
        }
        let n = ports.get(w.port).queues;
        if w.queue >= n {
            c.bad_allowing(
                &ip.key("queue"),
                format!(
                    "queue {} does not exist: ports.{}.queues is {n}",
                    w.queue, w.port
                ),
                format!("a queue index 0..={}", n - 1),
            );
            continue;
        }
        if let Some(j) = polled.get(&(w.port, w.queue)) {
            c.bad_allowing(
                &ip,
                format!(
                    "{} queue {} is already polled by workers[{j}]",
                    w.port, w.queue
                ),
                "each receive queue polled by exactly one lcore",
            );
            continue;
        }
        polled.insert((w.port, w.queue), i);
        out.push(WorkerAssignment {
            lcore: w.lcore,
            port: w.port,
            queue: w.queue,
        });
    }
    for (port, queue) in queue_ids {
        if !polled.contains_key(&(port, queue)) {
            c.bad_allowing(
                &wp,
                format!("{port} queue {queue} is polled by no worker: its packets would be lost"),
                "every receive queue of both ports listed once",
            );
        }
    }
    for (k, &l) in lcores.workers.iter().enumerate() {
        if l != lcores.control && !list.iter().any(|w| w.lcore == l) {
            c.bad_allowing(
                &root.key("lcores").key("workers").index(k),
                format!("worker lcore {l} polls no queue in `workers`"),
                "a worker lcore that `workers` gives at least one queue",
            );
        }
    }
    out
}

fn check_services(
    c: &mut Checker,
    p: &FieldPath,
    raw: Vec<RawService>,
    ports: &Ports,
    budget: &ReplayBudget,
) -> Vec<Service> {
    if raw.is_empty() {
        c.bad(p, "no service: the appliance would drop everything");
    }
    let inside = ports.inside.address;
    let outside = ports.outside.address;
    let port_addresses = [
        (PortRole::Outside, outside.address),
        (PortRole::Inside, inside.address),
    ];
    // Every VIP and every replica address, to keep the two apart.
    let vips: Vec<Option<Ipv4Addr>> = raw.iter().map(|s| s.vip.trim().parse().ok()).collect();
    let mut out: Vec<Service> = Vec::new();
    for (i, s) in raw.into_iter().enumerate() {
        let sp = p.index(i);
        c.name(&sp.key("name"), &s.name);
        if let Some(j) = out.iter().position(|o| o.name == s.name) {
            c.bad(
                &sp.key("name"),
                format!("`{}` is also the name of services[{j}]", s.name),
            );
        }

        let vp = sp.key("vip");
        let vip = c.unicast(&vp, &s.vip);
        if let Some(vip) = vip {
            if let Some((role, _)) = port_addresses.iter().find(|(_, a)| *a == vip) {
                c.bad_allowing(
                    &vp,
                    format!("{vip} is the address of ports.{role}"),
                    "an address other than the ports' own",
                );
            } else if inside.prefix_len > 0 && inside.contains(vip) {
                c.bad_allowing(
                    &vp,
                    format!(
                        "{vip} is on the inside subnet {}/{}: clients reach VIPs on the outside",
                        inside.network(),
                        inside.prefix_len
                    ),
                    "an address on the outside subnet, or routed to ports.outside",
                );
            } else if outside.prefix_len > 0 && outside.is_reserved_host(vip) {
                c.bad(
                    &vp,
                    format!("{vip} is the network or broadcast address of the outside subnet"),
                );
            }
        }

        let pp = sp.key("port");
        let port = match s.port.parse::<ServicePort>() {
            Ok(port) => Some(port),
            Err(why) => {
                c.bad(&pp, why);
                None
            }
        };
        if let (Some(vip), Some(port)) = (vip, port) {
            if let Some((j, other)) = out
                .iter()
                .enumerate()
                .find(|(_, o)| o.vip == vip && o.port.overlaps(&port))
            {
                c.bad_allowing(
                    &pp,
                    format!(
                        "{vip} port {port} is already taken by services[{j}] ({}, port {})",
                        other.name, other.port
                    ),
                    "ports of this VIP that no other service takes",
                );
            }
        }

        let mode = s.mode.unwrap_or_default();
        let rp = sp.key("replicas");
        if s.replicas.is_empty() {
            c.bad(&rp, "the pool is empty");
        }
        let mut replicas: Vec<Replica> = Vec::new();
        for (k, r) in s.replicas.iter().enumerate() {
            let ip = rp.index(k);
            c.name(&ip.key("name"), &r.name);
            if let Some(j) = s.replicas[..k].iter().position(|o| o.name == r.name) {
                c.bad(
                    &ip.key("name"),
                    format!("`{}` is also the name of replicas[{j}]", r.name),
                );
            }
            let ap = ip.key("address");
            let Some(a) = c.unicast(&ap, &r.address) else {
                continue;
            };
            if let Some(j) = replicas.iter().position(|o| o.address == a) {
                c.bad_allowing(
                    &ap,
                    format!(
                        "{a} is also the address of replicas[{j}] ({})",
                        replicas[j].name
                    ),
                    "a different address for each replica of the pool",
                );
            } else if let Some((role, _)) = port_addresses.iter().find(|(_, x)| *x == a) {
                c.bad(&ap, format!("{a} is the address of ports.{role}"));
            } else if let Some(j) = vips.iter().position(|v| *v == Some(a)) {
                c.bad(&ap, format!("{a} is the VIP of services[{j}]"));
            } else if outside.prefix_len > 0 && outside.contains(a) {
                c.bad(
                    &ap,
                    format!(
                        "{a} is on the outside subnet {}/{}: replicas are reached through the inside port",
                        outside.network(),
                        outside.prefix_len
                    ),
                );
            } else if inside.prefix_len > 0 && !inside.contains(a) && ports.inside.gateway.is_none()
            {
                c.bad_allowing(
                    &ap,
                    format!(
                        "{a} is not on the inside subnet {}/{} and ports.inside has no gateway",
                        inside.network(),
                        inside.prefix_len
                    ),
                    format!(
                        "an address in {}/{}, or set ports.inside.gateway",
                        inside.network(),
                        inside.prefix_len
                    ),
                );
            } else if inside.prefix_len > 0 && inside.is_reserved_host(a) {
                c.bad(
                    &ap,
                    format!("{a} is the network or broadcast address of the inside subnet"),
                );
            }
            replicas.push(Replica {
                name: r.name.clone(),
                address: a,
                drain: r.drain.unwrap_or(false),
            });
        }

        let pool = s.replicas.len();
        let cp = sp.key("copies");
        let copies = match (mode, s.copies) {
            (Mode::Reconnect, None) => 1,
            (Mode::Reconnect, Some(1)) => 1,
            (Mode::Reconnect, Some(n)) => {
                c.bad_allowing(
                    &cp,
                    format!("{n} copies: in reconnect mode only the primary carries a flow"),
                    "1 in reconnect mode (or mode: mirror)",
                );
                1
            }
            (Mode::Forward, None | Some(1)) => 1,
            (Mode::Forward, Some(n)) => {
                c.bad_allowing(
                    &cp,
                    format!("{n} copies: in forward mode a flow goes to one replica"),
                    "1 in forward mode (or mode: mirror)",
                );
                1
            }
            (Mode::Mirror, None) => schema::COPIES
                .min(u8::try_from(pool).unwrap_or(u8::MAX))
                .max(1),
            (Mode::Mirror, Some(n)) => {
                if n == 0 || n > schema::MAX_COPIES {
                    c.bad(&cp, format!("{n} copies"));
                } else if usize::from(n) > pool && pool > 0 {
                    c.bad_allowing(
                        &cp,
                        format!(
                            "{n} copies but the pool has {pool} replica{}",
                            if pool == 1 { "" } else { "s" }
                        ),
                        format!("1..={}: at most the number of replicas", pool.min(3)),
                    );
                }
                n
            }
        };

        let health = check_health(
            c,
            &sp.key("health"),
            s.health.unwrap_or_default(),
            port,
            mode,
        );
        let replay = check_replay(c, &sp.key("replay"), s.replay, mode, budget, i);
        out.push(Service {
            name: s.name,
            vip: vip.unwrap_or(Ipv4Addr::UNSPECIFIED),
            port: port.unwrap_or(ServicePort::Any),
            mode,
            copies,
            selection: s.selection.unwrap_or_default(),
            verify: s.verify.unwrap_or(true),
            replay,
            replicas,
            health,
            no_replica: s.no_replica.unwrap_or_default(),
        });
    }
    out
}

/// What a service's `replay.limit` is held to: one worker's share of
/// `limits.replay_bytes_total`, since a flow's log is kept by the worker that owns it.
struct ReplayBudget {
    /// `limits.replay_bytes_total`, where it was valid.
    total: Option<u64>,
    /// Worker lcores (at least 1).
    workers: u64,
    /// Where a default limit that does not fit is reported.
    total_path: FieldPath,
}

impl ReplayBudget {
    fn of(c: &Checker, limits: &FieldPath, l: &Limits, workers: usize) -> ReplayBudget {
        let total_path = limits.key("replay_bytes_total");
        ReplayBudget {
            total: (!c.has_problem_at(&total_path)).then_some(l.replay_bytes_total),
            workers: u64::try_from(workers.max(1)).unwrap_or(u64::MAX),
            total_path,
        }
    }

    /// One worker's share, and how it was reached (`256MiB over 2 workers: 128MiB`).
    fn share(&self) -> Option<(u64, String)> {
        let total = self.total?;
        let share = total / self.workers;
        let how = if self.workers == 1 {
            format_size(total)
        } else {
            format!(
                "{} over {} workers: {}",
                format_size(total),
                self.workers,
                format_size(share)
            )
        };
        Some((share, how))
    }
}

/// `true` for an RFC 9110 token (§5.6.2): method and header field names.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

fn check_replay(
    c: &mut Checker,
    p: &FieldPath,
    raw: Option<RawReplay>,
    mode: Mode,
    budget: &ReplayBudget,
    service: usize,
) -> Replay {
    let defaults = Replay::default();
    let Some(raw) = raw else {
        // The default limit must fit the budget too where the service replays.
        if mode != Mode::Forward {
            check_default_limit(c, budget, service, defaults.limit);
        }
        return defaults;
    };
    if mode == Mode::Forward {
        c.bad_allowing(
            p,
            "forward mode replays nothing: a flow on a replica that fails breaks",
            "no `replay` in forward mode; it is for mode: reconnect, and mirror mode's new standbys",
        );
        return defaults;
    }
    let mirror = mode == Mode::Mirror;
    // A field that only reconnect mode uses.
    let not_in_mirror = |c: &mut Checker, key: &str, why: &str| {
        c.bad_allowing(
            &p.key(key),
            format!("`{key}` in mirror mode: {why}"),
            format!("no `{key}` in mirror mode (it is for mode: reconnect)"),
        );
    };

    let scope = raw.scope.unwrap_or_default();
    if mirror && scope == ReplayScope::Http1 {
        c.bad_allowing(
            &p.key("scope"),
            "http1 in mirror mode: a new standby joins a running flow only if it is given \
             every client byte since the SYN",
            "stream in mirror mode (http1 is for mode: reconnect)",
        );
    }

    let lp = p.key("limit");
    let limit = c.size(&lp, raw.limit.as_ref(), defaults.limit);
    if raw.limit.is_none() {
        check_default_limit(c, budget, service, limit);
    } else if c.has_problem_at(&lp) {
        // Not a size: said.
    } else if limit == 0 {
        if !mirror {
            c.bad(
                &lp,
                "0 in reconnect mode: no flow could be replayed (for no protection, mode: forward)",
            );
        }
    } else if limit >= 1 << 31 {
        // A log spans TCP sequence numbers: past 2^31 bytes they no longer order.
        c.bad(
            &lp,
            format!(
                "{}: a flow's log is at most 2GiB less a byte (TCP sequence numbers order \
                 only within 2^31)",
                format_size(limit)
            ),
        );
    } else if let Some((share, how)) = budget.share() {
        if limit > share {
            c.bad(
                &lp,
                format!(
                    "{} is more than a worker has for all its flows' logs (limits.replay_bytes_total, \
                     {how})",
                    format_size(limit)
                ),
            );
        }
    }

    let http1_only = |c: &mut Checker, key: &str| {
        c.bad_allowing(
            &p.key(key),
            format!(
                "`{key}` with scope: stream: a stream replay sends every client byte since the \
                 SYN and reads no HTTP"
            ),
            format!("no `{key}` with scope: stream, or scope: http1"),
        );
    };
    let methods = match raw.methods {
        None => defaults.methods,
        Some(list) => {
            if mirror {
                not_in_mirror(
                    c,
                    "methods",
                    "a new standby is given the whole stream, whatever its requests",
                );
            } else if scope == ReplayScope::Stream {
                http1_only(c, "methods");
            } else {
                check_methods(c, &p.key("methods"), &list);
            }
            list
        }
    };
    let exclude_headers = match raw.exclude_headers {
        None => defaults.exclude_headers,
        Some(list) => {
            if mirror {
                not_in_mirror(
                    c,
                    "exclude_headers",
                    "mirror mode's replicas answer byte for byte alike, headers included",
                );
            } else if scope == ReplayScope::Stream {
                http1_only(c, "exclude_headers");
            } else {
                check_exclude_headers(c, &p.key("exclude_headers"), &list);
            }
            list
        }
    };
    let connect_timeout = c.duration(
        &p.key("connect_timeout"),
        raw.connect_timeout.as_deref(),
        defaults.connect_timeout,
        false,
    );
    let fin_hold = if mirror && raw.fin_hold.is_some() {
        not_in_mirror(
            c,
            "fin_hold",
            "the standbys carry the rest of the flow, nothing is held for a replay",
        );
        defaults.fin_hold
    } else {
        c.duration(
            &p.key("fin_hold"),
            raw.fin_hold.as_deref(),
            defaults.fin_hold,
            false,
        )
    };
    let parallel = match raw.parallel {
        None => defaults.parallel,
        Some(n) if n == 0 || n > schema::MAX_REPLAY_PARALLEL => {
            c.bad(&p.key("parallel"), format!("{n} replays at once"));
            defaults.parallel
        }
        Some(n) => n,
    };
    Replay {
        scope,
        limit,
        methods,
        exclude_headers,
        connect_timeout,
        fin_hold,
        parallel,
    }
}

/// A service that leaves `replay.limit` out gets the default, which must fit the budget:
/// said once, at `limits.replay_bytes_total`, for the first such service.
fn check_default_limit(c: &mut Checker, budget: &ReplayBudget, service: usize, limit: u64) {
    let Some((share, how)) = budget.share() else {
        return;
    };
    if limit > share && !c.has_problem_at(&budget.total_path) {
        c.bad_allowing(
            &budget.total_path,
            format!(
                "a worker has less for all its flows' logs ({how}) than one flow may keep \
                 (services[{service}].replay.limit, {} by default)",
                format_size(limit)
            ),
            format!(
                "at least {} (the replay limit) per worker, or a smaller services[].replay.limit",
                format_size(limit)
            ),
        );
    }
}

fn check_methods(c: &mut Checker, p: &FieldPath, list: &[String]) {
    if list.is_empty() {
        c.bad(p, "no method: no request could be replayed");
    } else if list.len() > schema::MAX_METHODS {
        c.bad(
            p,
            format!("{} methods: at most {}", list.len(), schema::MAX_METHODS),
        );
    }
    for (i, m) in list.iter().enumerate() {
        let ip = p.index(i);
        let upper = m.to_ascii_uppercase();
        if !is_token(m) {
            c.bad(&ip, format!("`{m}` is not a method name"));
        } else if m.len() > schema::MAX_METHOD_LEN {
            c.bad(
                &ip,
                format!("`{m}` is longer than {} characters", schema::MAX_METHOD_LEN),
            );
        } else if *m != upper && schema::STANDARD_METHODS.contains(&upper.as_str()) {
            c.bad(
                &ip,
                format!("`{m}` is not {upper}: methods are case-sensitive (RFC 9110 §9.1)"),
            );
        } else if let Some((_, why)) = schema::NEVER_REPLAYED.iter().find(|(n, _)| n == m) {
            c.bad_allowing(
                &ip,
                format!("{why}; never replayed"),
                "a method that may run twice, like GET, HEAD or OPTIONS; never POST, PUT, \
                 DELETE, PATCH or CONNECT",
            );
        } else if let Some(j) = list[..i].iter().position(|o| o == m) {
            c.bad(&ip, format!("`{m}` is listed twice (also methods[{j}])"));
        }
    }
}

fn check_exclude_headers(c: &mut Checker, p: &FieldPath, list: &[String]) {
    if list.len() > schema::MAX_EXCLUDED_HEADERS {
        c.bad(
            p,
            format!(
                "{} headers: at most {} (each is looked for in every response header line)",
                list.len(),
                schema::MAX_EXCLUDED_HEADERS
            ),
        );
    }
    for (i, h) in list.iter().enumerate() {
        let ip = p.index(i);
        if !is_token(h) {
            c.bad(&ip, format!("`{h}` is not a header name"));
        } else if h.len() > schema::MAX_HEADER_LEN {
            c.bad(
                &ip,
                format!("`{h}` is longer than {} characters", schema::MAX_HEADER_LEN),
            );
        } else if schema::FRAMING_HEADERS
            .iter()
            .any(|f| f.eq_ignore_ascii_case(h))
        {
            c.bad(
                &ip,
                format!(
                    "`{h}` frames the body (RFC 9112 §6): a response framed differently is \
                     not the same response"
                ),
            );
        } else if let Some(j) = list[..i].iter().position(|o| o.eq_ignore_ascii_case(h)) {
            c.bad(
                &ip,
                format!(
                    "`{h}` is listed twice (also exclude_headers[{j}], `{}`; header names \
                     ignore case)",
                    list[j]
                ),
            );
        }
    }
}

fn check_health(
    c: &mut Checker,
    p: &FieldPath,
    raw: RawHealth,
    port: Option<ServicePort>,
    mode: Mode,
) -> Health {
    let pp = p.key("probe_ports");
    let probe_ports = match raw.probe_ports {
        None => match port {
            Some(ServicePort::Single(n)) => vec![n],
            Some(other) => {
                c.bad_allowing(
                    &pp,
                    format!(
                        "missing: the service port is `{other}`, and probing needs concrete ports"
                    ),
                    "a list of port numbers 1..=65535, like [7000, 80]",
                );
                Vec::new()
            }
            None => Vec::new(),
        },
        Some(list) => {
            // Stateless generators (pktgen) cannot answer a SYN probe: forward mode may
            // run unprobed. Mirror and reconnect fail over on probes and must have them.
            if list.is_empty() && mode != Mode::Forward {
                c.bad_allowing(
                    &pp,
                    format!("no probe port in {mode} mode"),
                    "a non-empty list of port numbers 1..=65535 ([] only with mode: forward)",
                );
            }
            let mut ports: Vec<u16> = Vec::new();
            for (i, &n) in list.iter().enumerate() {
                let ip = pp.index(i);
                match u16::try_from(n) {
                    Ok(0) | Err(_) => c.bad(&ip, format!("{n} is not a TCP port")),
                    Ok(n) if ports.contains(&n) => c.bad(&ip, format!("port {n} is listed twice")),
                    Ok(n) => ports.push(n),
                }
            }
            ports
        }
    };
    let interval = c.duration(
        &p.key("interval"),
        raw.interval.as_deref(),
        schema::INTERVAL,
        false,
    );
    let tp = p.key("timeout");
    let timeout = c.duration(&tp, raw.timeout.as_deref(), interval, false);
    if timeout > interval {
        c.bad(
            &tp,
            format!(
                "{} is longer than the interval {}",
                format_duration(timeout),
                format_duration(interval)
            ),
        );
    }
    let fall = c.count(&p.key("fall"), raw.fall, schema::FALL);
    let rise = c.count(&p.key("rise"), raw.rise, schema::RISE);
    let suspect_burst = c.count(
        &p.key("suspect_burst"),
        raw.suspect_burst,
        schema::SUSPECT_BURST,
    );
    let suspect_interval = c.duration(
        &p.key("suspect_interval"),
        raw.suspect_interval.as_deref(),
        schema::SUSPECT_INTERVAL,
        false,
    );
    let off = |d: Duration| (!d.is_zero()).then_some(d);
    let ack_lag = off(c.duration(
        &p.key("ack_lag"),
        raw.ack_lag.as_deref(),
        schema::ACK_LAG,
        true,
    ));
    let output_lag = off(c.duration(
        &p.key("output_lag"),
        raw.output_lag.as_deref(),
        Duration::ZERO,
        true,
    ));
    Health {
        probe_ports,
        interval,
        timeout,
        fall,
        rise,
        suspect_burst,
        suspect_interval,
        ack_lag,
        output_lag,
    }
}

fn check_timeouts(c: &mut Checker, p: &FieldPath, raw: RawTimeouts) -> Timeouts {
    Timeouts {
        syn: c.duration(&p.key("syn"), raw.syn.as_deref(), schema::SYN, false),
        established: c.duration(
            &p.key("established"),
            raw.established.as_deref(),
            schema::ESTABLISHED,
            false,
        ),
        linger: c.duration(
            &p.key("linger"),
            raw.linger.as_deref(),
            schema::LINGER,
            true,
        ),
        synack_wait: c.duration(
            &p.key("synack_wait"),
            raw.synack_wait.as_deref(),
            schema::SYNACK_WAIT,
            false,
        ),
        arp_refresh: c.duration(
            &p.key("arp_refresh"),
            raw.arp_refresh.as_deref(),
            schema::ARP_REFRESH,
            false,
        ),
    }
}

fn check_limits(
    c: &mut Checker,
    p: &FieldPath,
    raw: RawLimits,
    ports: &Ports,
    workers: usize,
) -> Limits {
    let flows_per_worker = raw.flows_per_worker.unwrap_or(schema::FLOWS_PER_WORKER);
    if flows_per_worker == 0 || flows_per_worker > schema::MAX_FLOWS_PER_WORKER {
        c.bad(
            &p.key("flows_per_worker"),
            format!("{flows_per_worker} flows"),
        );
    }
    let hpp = p.key("hold_bytes_per_flow");
    let hold_bytes_per_flow = c.size(
        &hpp,
        raw.hold_bytes_per_flow.as_ref(),
        schema::HOLD_BYTES_PER_FLOW.into(),
    );
    let hold_bytes_per_flow = u32::try_from(hold_bytes_per_flow).unwrap_or_else(|_| {
        c.bad(
            &hpp,
            format!("{} is too large", format_size(hold_bytes_per_flow)),
        );
        schema::HOLD_BYTES_PER_FLOW
    });
    let hold_bytes_total = c.size(
        &p.key("hold_bytes_total"),
        raw.hold_bytes_total.as_ref(),
        schema::HOLD_BYTES_TOTAL,
    );
    let hold_segments_total = raw
        .hold_segments_total
        .unwrap_or(schema::HOLD_SEGMENTS_TOTAL);
    let mbufs = raw.mbufs.unwrap_or(schema::MBUFS);
    let mbuf_cache = raw.mbuf_cache.unwrap_or(schema::MBUF_CACHE);
    if hold_bytes_per_flow == 0 {
        c.bad(&hpp, "must be greater than zero");
    }
    if hold_bytes_total == 0 {
        c.bad(&p.key("hold_bytes_total"), "must be greater than zero");
    } else if u64::from(hold_bytes_per_flow) > hold_bytes_total {
        c.bad(
            &hpp,
            format!("{hold_bytes_per_flow} is more than hold_bytes_total ({hold_bytes_total})"),
        );
    }
    if hold_segments_total == 0 {
        c.bad(&p.key("hold_segments_total"), "must be greater than zero");
    }
    if mbuf_cache > schema::MAX_MBUF_CACHE || u64::from(mbuf_cache) * 3 > u64::from(mbufs) * 2 {
        c.bad(
            &p.key("mbuf_cache"),
            format!("a cache of {mbuf_cache} for {mbufs} mbufs"),
        );
    }
    // Every rx ring full, every tx ring full, every lcore cache full and the hold queue at
    // its budget, all at once: the pool must still not run dry.
    let w = u64::try_from(workers).unwrap_or(u64::MAX);
    let rings: u64 = PortRole::ALL
        .iter()
        .map(|&r| {
            let port = ports.get(r);
            u64::from(port.queues) * u64::from(port.rx_descriptors)
                + w * u64::from(port.tx_descriptors)
        })
        .sum();
    let caches = (w + 1) * u64::from(mbuf_cache);
    let needed = rings + caches + u64::from(hold_segments_total);
    if u64::from(mbufs) < needed {
        c.bad_allowing(
            &p.key("mbufs"),
            format!(
                "{mbufs} mbufs cannot fill the rings ({rings}), the lcore caches ({caches}) \
                 and the hold queue (hold_segments_total {hold_segments_total})"
            ),
            format!(
                "at least {needed} (a power of two minus one is best, like {})",
                pow2_minus_one(needed)
            ),
        );
    }
    let control_rate = raw.control_rate.unwrap_or(schema::CONTROL_RATE);
    if control_rate == 0 || control_rate > schema::MAX_CONTROL_RATE {
        c.bad(
            &p.key("control_rate"),
            format!("{control_rate} frames a second"),
        );
    }
    let control_burst = raw.control_burst.unwrap_or(schema::CONTROL_BURST);
    if control_burst == 0 || control_burst > schema::MAX_CONTROL_BURST {
        c.bad(&p.key("control_burst"), format!("{control_burst} frames"));
    }
    let syn_backlog = raw
        .syn_backlog
        .unwrap_or(schema::SYN_BACKLOG.min(flows_per_worker / 2));
    if syn_backlog > flows_per_worker {
        c.bad(
            &p.key("syn_backlog"),
            format!(
                "{syn_backlog} half-open flows, more than flows_per_worker ({flows_per_worker})"
            ),
        );
    }
    let rp = p.key("replay_bytes_total");
    let replay_bytes_total = c.size(
        &rp,
        raw.replay_bytes_total.as_ref(),
        schema::REPLAY_BYTES_TOTAL,
    );
    if replay_bytes_total == 0 {
        c.bad_allowing(
            &rp,
            "must be greater than zero",
            "a size greater than zero; for no replay in mirror mode, services[].replay.limit: 0",
        );
    }
    Limits {
        flows_per_worker,
        hold_bytes_per_flow,
        hold_bytes_total,
        hold_segments_total,
        mbufs,
        mbuf_cache,
        control_rate,
        control_burst,
        syn_backlog,
        replay_bytes_total,
    }
}

fn pow2_minus_one(n: u64) -> u64 {
    n.saturating_add(1)
        .checked_next_power_of_two()
        .map_or(u64::MAX, |p| p - 1)
}

fn check_management(c: &mut Checker, p: &FieldPath, raw: RawManagement) -> Management {
    let sp = p.key("socket");
    let socket = PathBuf::from(raw.socket.as_deref().unwrap_or(schema::SOCKET));
    if !socket.is_absolute() {
        c.bad(
            &sp,
            format!("`{}` is not an absolute path", socket.display()),
        );
    }
    let metrics = match raw.metrics.as_deref().map(str::trim) {
        Some("off") => None,
        other => {
            let text = other.unwrap_or(schema::METRICS);
            match text.parse::<SocketAddr>() {
                Ok(a) if a.port() == 0 => {
                    c.bad(&p.key("metrics"), "port 0 is not a listening port");
                    None
                }
                Ok(a) => Some(a),
                Err(_) => {
                    c.bad(
                        &p.key("metrics"),
                        format!("`{text}` is not an address:port"),
                    );
                    None
                }
            }
        }
    };
    let group = raw.group.map(|g| {
        if !is_group_name(&g) {
            c.bad(&p.key("group"), format!("`{g}` is not a group name"));
        }
        g
    });
    Management {
        socket,
        metrics,
        group,
    }
}

/// A portable POSIX group name (what `groupadd` accepts by default, without the
/// trailing `$`), at most 32 bytes as Linux allows.
fn is_group_name(g: &str) -> bool {
    !g.is_empty()
        && g.len() <= 32
        && !g.starts_with('-')
        && g.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The `ha` section: the HA link's interface and addresses, the floating addresses, and
/// the election's and the sync's timing.
fn check_ha(c: &mut Checker, p: &FieldPath, raw: RawHa, ports: &Ports, services: &[Service]) -> Ha {
    let ip = p.key("interface");
    if !is_interface_name(&raw.interface) {
        c.bad(&ip, format!("`{}` is not an interface name", raw.interface));
    }
    let port_addrs = [ports.outside.address.address, ports.inside.address.address];
    let on_data =
        |a: Ipv4Addr| ports.outside.address.contains(a) || ports.inside.address.contains(a);
    let link = |c: &mut Checker, field: &str, text: &str| -> Option<SocketAddrV4> {
        let fp = p.key(field);
        let Ok(sa) = text.trim().parse::<SocketAddrV4>() else {
            c.bad(&fp, format!("`{text}` is not an IPv4 address:port"));
            return None;
        };
        if sa.port() == 0 {
            c.bad(&fp, "port 0 is not a listening port");
            return None;
        }
        if let Some(why) = not_unicast(*sa.ip()) {
            c.bad(&fp, format!("{} is {why}", sa.ip()));
            return None;
        }
        if on_data(*sa.ip()) {
            c.bad(
                &fp,
                format!(
                    "{} is on a data port's subnet: the HA link is a kernel interface of its own",
                    sa.ip()
                ),
            );
            return None;
        }
        Some(sa)
    };
    let local = link(c, "local", &raw.local);
    let peer = link(c, "peer", &raw.peer);
    if let (Some(l), Some(r)) = (local, peer) {
        if l.ip() == r.ip() {
            c.bad(
                &p.key("peer"),
                format!(
                    "{} is also `local`: the two appliances need their own addresses",
                    r.ip()
                ),
            );
        }
    }

    let mut floating = Vec::new();
    for (i, text) in raw.floating.unwrap_or_default().iter().enumerate() {
        let fp = p.key("floating").index(i);
        let Some(a) = c.unicast(&fp, text) else {
            continue;
        };
        if !on_data(a) {
            c.bad(
                &fp,
                format!("{a} is on neither the outside nor the inside subnet"),
            );
        } else if port_addrs.contains(&a) {
            c.bad(
                &fp,
                format!("{a} is a port's own address: each appliance keeps its own, only shared addresses float"),
            );
        } else if services.iter().any(|s| s.vip == a) {
            c.bad(&fp, format!("{a} is a VIP: every VIP floats already"));
        } else if floating.contains(&a) {
            c.bad(&fp, format!("{a} is listed twice"));
        } else {
            floating.push(a);
        }
    }

    let heartbeat = c.duration(
        &p.key("heartbeat"),
        raw.heartbeat.as_deref(),
        schema::HA_HEARTBEAT,
        false,
    );
    let dead_time = c.duration(
        &p.key("dead_time"),
        raw.dead_time.as_deref(),
        schema::HA_DEAD_TIME,
        false,
    );
    if dead_time < heartbeat * 2 {
        c.bad(
            &p.key("dead_time"),
            format!(
                "{} is less than two heartbeats ({}): one late heartbeat would fail the peer over",
                format_duration(dead_time),
                format_duration(heartbeat * 2)
            ),
        );
    }
    let sync_batch = match raw.sync_batch {
        None => schema::HA_SYNC_BATCH,
        Some(n) if (1..=schema::HA_MAX_SYNC_BATCH).contains(&n) => n,
        Some(n) => {
            c.bad(&p.key("sync_batch"), format!("{n} records per datagram"));
            schema::HA_SYNC_BATCH
        }
    };
    let sync_interval = c.duration(
        &p.key("sync_interval"),
        raw.sync_interval.as_deref(),
        schema::HA_SYNC_INTERVAL,
        false,
    );
    if sync_interval > heartbeat {
        c.bad(
            &p.key("sync_interval"),
            format!(
                "{} is longer than a heartbeat ({})",
                format_duration(sync_interval),
                format_duration(heartbeat)
            ),
        );
    }
    let sync_window = match raw.sync_window {
        None => schema::HA_SYNC_WINDOW,
        Some(n) if (1..=schema::HA_MAX_SYNC_WINDOW).contains(&n) => n,
        Some(n) => {
            c.bad(&p.key("sync_window"), format!("{n} datagrams"));
            schema::HA_SYNC_WINDOW
        }
    };
    let unset: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0);
    Ha {
        interface: raw.interface,
        local: local.unwrap_or(unset),
        peer: peer.unwrap_or(unset),
        floating,
        heartbeat,
        dead_time,
        sync_batch,
        sync_interval,
        sync_window,
        preferred: raw.preferred.unwrap_or(false),
    }
}

/// A Linux interface name: 1 to 15 bytes (`IFNAMSIZ` less its NUL), no `/`, no
/// whitespace, no `:` (an alias), not `.` or `..`.
fn is_interface_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 15
        && n != "."
        && n != ".."
        && n.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b':')
}
