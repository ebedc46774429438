//! `tandem reload` (and SIGHUP, issue #18): what a new profile changes against the
//! running appliance, and whether it can change without a restart.
//!
//! [`diff`] compares the running appliance (the profile it last applied, with the pools
//! as they are now: replicas added or removed with `tandem add` / `remove`, drained
//! with `tandem drain`) against a new profile. It is pure: the control core carries out
//! the plan. A reload is all or nothing: when any difference needs a restart (EAL
//! arguments, lcores, ports, the worker plan, table sizes and budgets, the management
//! interface, the log format, an existing service's VIP, port, mode, copies, selection,
//! verification or replay, a service removed) the whole reload is refused, every such
//! field named, and nothing changes.
//!
//! What applies live: replicas added, removed, drained or brought back; a service's
//! health settings; the flow timeouts (for flows created after the reload); the ARP
//! refresh; the log level; a new service on a new VIP or port.

use std::fmt;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};
use tandem_config::{format_duration, Health, Profile, Service};

/// A replica in a running pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveReplica {
    /// Its name in the service.
    pub name: String,
    /// Its address.
    pub address: Ipv4Addr,
    /// Drained (by the profile or `tandem drain`).
    pub drained: bool,
}

/// A service's pool as it runs now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LivePool {
    /// The service.
    pub service: String,
    /// Its replicas, in pool order.
    pub replicas: Vec<LiveReplica>,
}

/// The running appliance, as [`diff`] compares it.
#[derive(Clone, Copy, Debug)]
pub struct Running<'a> {
    /// The profile it started with, or last reloaded.
    pub profile: &'a Profile,
    /// Every service's pool now (one per service of `profile`).
    pub pools: &'a [LivePool],
}

/// One difference that a reload applies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Difference {
    /// A replica joins a service's pool.
    ReplicaAdded {
        /// The service.
        service: String,
        /// The replica.
        name: String,
        /// Its address.
        address: Ipv4Addr,
        /// It joins drained.
        drained: bool,
    },
    /// A replica leaves a service's pool: its flows fail over to their other replicas.
    ReplicaRemoved {
        /// The service.
        service: String,
        /// The replica.
        name: String,
        /// Its address.
        address: Ipv4Addr,
        /// It was added with `tandem add` and is not in the profile.
        added_while_running: bool,
    },
    /// A replica is drained (no new flows; its flows stay), or brought back.
    ReplicaDrain {
        /// The service.
        service: String,
        /// The replica.
        name: String,
        /// Drained now (false: back in service).
        drained: bool,
    },
    /// A service's health setting.
    Health {
        /// The service.
        service: String,
        /// The field under `health` (`interval`, `probe_ports`, ...).
        field: String,
        /// Its running value.
        old: String,
        /// The new one.
        new: String,
    },
    /// A timer under `timeouts`; flow timeouts apply to flows created after the reload.
    Timeout {
        /// The field (`established`, `arp_refresh`, ...).
        field: String,
        /// Its running value.
        old: String,
        /// The new one.
        new: String,
    },
    /// `logging.level`.
    LogLevel {
        /// The running level.
        old: String,
        /// The new one.
        new: String,
    },
    /// A new service on a VIP and port no running service takes.
    ServiceAdded {
        /// Its name.
        service: String,
        /// Its VIP.
        vip: Ipv4Addr,
        /// Its port(s).
        port: String,
    },
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Difference::ReplicaAdded {
                service,
                name,
                address,
                drained,
            } => write!(
                f,
                "+ {service}/{name} {address}: added to the pool{}",
                if *drained { ", drained" } else { "" }
            ),
            Difference::ReplicaRemoved {
                service,
                name,
                address,
                added_while_running,
            } => write!(
                f,
                "- {service}/{name} {address}: removed from the pool (its flows fail over){}",
                if *added_while_running {
                    "; it was added with `tandem add` and is not in the profile"
                } else {
                    ""
                }
            ),
            Difference::ReplicaDrain {
                service,
                name,
                drained: true,
            } => write!(
                f,
                "~ {service}/{name}: drained (no new flows, its flows stay)"
            ),
            Difference::ReplicaDrain {
                service,
                name,
                drained: false,
            } => write!(f, "~ {service}/{name}: back in service (no longer drained)"),
            Difference::Health {
                service,
                field,
                old,
                new,
            } => write!(f, "~ services[{service}].health.{field}: {old} -> {new}"),
            Difference::Timeout { field, old, new } => {
                write!(f, "~ timeouts.{field}: {old} -> {new}")?;
                if field != "arp_refresh" {
                    f.write_str(" (flows created from now on)")?;
                }
                Ok(())
            }
            Difference::LogLevel { old, new } => write!(f, "~ logging.level: {old} -> {new}"),
            Difference::ServiceAdded { service, vip, port } => {
                write!(f, "+ service {service} on {vip}:{port}")
            }
        }
    }
}

/// A difference that needs a restart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// The profile field, as a path (`ports.outside.queues`, `services[lab].mode`).
    pub field: String,
    /// Its running value.
    pub old: String,
    /// The new one.
    pub new: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} -> {}", self.field, self.old, self.new)
    }
}

/// What a new profile changes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// What a reload applies, in the order it applies them.
    pub differences: Vec<Difference>,
    /// What needs a restart; if any, nothing is applied.
    pub refused: Vec<Refusal>,
}

impl Plan {
    /// The refusal's message: every field that needs a restart.
    pub fn refusal(&self) -> Option<String> {
        if self.refused.is_empty() {
            return None;
        }
        let fields: Vec<String> = self.refused.iter().map(ToString::to_string).collect();
        Some(format!(
            "reload refused, nothing changed: {} need{} a restart: {}",
            if fields.len() == 1 {
                "this change"
            } else {
                "these changes"
            },
            if fields.len() == 1 { "s" } else { "" },
            fields.join("; ")
        ))
    }
}

/// Collects differences between two values under a field path.
struct Cmp<'a> {
    refused: &'a mut Vec<Refusal>,
}

impl Cmp<'_> {
    /// `field` must not change.
    fn fixed<T: PartialEq + fmt::Debug>(&mut self, field: impl Into<String>, old: &T, new: &T) {
        if old != new {
            self.refused.push(Refusal {
                field: field.into(),
                old: format!("{old:?}"),
                new: format!("{new:?}"),
            });
        }
    }

    /// Like [`Cmp::fixed`], with values shown by `Display`.
    fn fixed_shown<T: PartialEq + fmt::Display>(
        &mut self,
        field: impl Into<String>,
        old: &T,
        new: &T,
    ) {
        if old != new {
            self.refused.push(Refusal {
                field: field.into(),
                old: old.to_string(),
                new: new.to_string(),
            });
        }
    }
}

/// What `new` changes against the running appliance.
pub fn diff(running: Running<'_>, new: &Profile) -> Plan {
    let old = running.profile;
    let mut plan = Plan::default();
    let mut c = Cmp {
        refused: &mut plan.refused,
    };
    c.fixed("eal.args", &old.eal.args, &new.eal.args);
    c.fixed("lcores.control", &old.lcores.control, &new.lcores.control);
    c.fixed("lcores.workers", &old.lcores.workers, &new.lcores.workers);
    c.fixed_shown(
        "lcores.affinity",
        &old.lcores.affinity,
        &new.lcores.affinity,
    );
    for role in tandem_config::PortRole::ALL {
        let (a, b) = (old.port(role), new.port(role));
        let p = format!("ports.{role}");
        c.fixed_shown(format!("{p}.device"), &a.device, &b.device);
        c.fixed_shown(format!("{p}.address"), &a.address, &b.address);
        c.fixed(format!("{p}.gateway"), &a.gateway, &b.gateway);
        c.fixed(format!("{p}.queues"), &a.queues, &b.queues);
        c.fixed(
            format!("{p}.rx_descriptors"),
            &a.rx_descriptors,
            &b.rx_descriptors,
        );
        c.fixed(
            format!("{p}.tx_descriptors"),
            &a.tx_descriptors,
            &b.tx_descriptors,
        );
        c.fixed(format!("{p}.mtu"), &a.mtu, &b.mtu);
    }
    if old.workers != new.workers {
        c.fixed("workers", &old.worker_plan(), &new.worker_plan());
    }
    let (a, b) = (&old.limits, &new.limits);
    for (field, x, y) in [
        (
            "flows_per_worker",
            u64::from(a.flows_per_worker),
            u64::from(b.flows_per_worker),
        ),
        (
            "hold_bytes_per_flow",
            u64::from(a.hold_bytes_per_flow),
            u64::from(b.hold_bytes_per_flow),
        ),
        ("hold_bytes_total", a.hold_bytes_total, b.hold_bytes_total),
        (
            "hold_segments_total",
            u64::from(a.hold_segments_total),
            u64::from(b.hold_segments_total),
        ),
        ("mbufs", u64::from(a.mbufs), u64::from(b.mbufs)),
        (
            "mbuf_cache",
            u64::from(a.mbuf_cache),
            u64::from(b.mbuf_cache),
        ),
        (
            "control_rate",
            u64::from(a.control_rate),
            u64::from(b.control_rate),
        ),
        (
            "control_burst",
            u64::from(a.control_burst),
            u64::from(b.control_burst),
        ),
        (
            "syn_backlog",
            u64::from(a.syn_backlog),
            u64::from(b.syn_backlog),
        ),
        (
            "replay_bytes_total",
            a.replay_bytes_total,
            b.replay_bytes_total,
        ),
    ] {
        c.fixed(format!("limits.{field}"), &x, &y);
    }
    let (a, b) = (&old.management, &new.management);
    c.fixed("management.socket", &a.socket, &b.socket);
    c.fixed("management.metrics", &a.metrics, &b.metrics);
    c.fixed("management.group", &a.group, &b.group);
    c.fixed("logging.format", &old.logging.format, &new.logging.format);
    // The pair's link, addresses and timing are read once at start (a restart moves the
    // role to the peer and back, without losing flows).
    c.fixed("ha", &old.ha, &new.ha);

    for s in &old.services {
        if !new.services.iter().any(|n| n.name == s.name) {
            c.refused.push(Refusal {
                field: format!("services[{}]", s.name),
                old: format!("{}:{}", s.vip, s.port),
                new: "removed".to_owned(),
            });
        }
    }
    let mut added = Vec::new();
    for n in &new.services {
        match old.services.iter().find(|s| s.name == n.name) {
            Some(s) => {
                service_fixed(&mut c, s, n);
                let pool = running.pools.iter().find(|p| p.service == n.name);
                pool_diff(s, pool, n, &mut plan.differences);
                health_diff(&n.name, &s.health, &n.health, &mut plan.differences);
            }
            None => added.push(n),
        }
    }
    for n in added {
        plan.differences.push(Difference::ServiceAdded {
            service: n.name.clone(),
            vip: n.vip,
            port: n.port.to_string(),
        });
    }
    let (a, b) = (&old.timeouts, &new.timeouts);
    for (field, x, y) in [
        ("syn", a.syn, b.syn),
        ("established", a.established, b.established),
        ("linger", a.linger, b.linger),
        ("synack_wait", a.synack_wait, b.synack_wait),
        ("arp_refresh", a.arp_refresh, b.arp_refresh),
    ] {
        if x != y {
            plan.differences.push(Difference::Timeout {
                field: field.to_owned(),
                old: format_duration(x),
                new: format_duration(y),
            });
        }
    }
    if old.logging.level != new.logging.level {
        plan.differences.push(Difference::LogLevel {
            old: old.logging.level.as_str().to_owned(),
            new: new.logging.level.as_str().to_owned(),
        });
    }
    plan
}

/// An existing service's fields that need a restart (the engine's service table and the
/// flows running on it depend on them).
fn service_fixed(c: &mut Cmp<'_>, s: &Service, n: &Service) {
    // Every field named: a field added to `Service` must be classed here (restart or
    // live) before this builds.
    let Service {
        name: _,
        vip: _,
        port: _,
        mode: _,
        copies: _,
        selection: _,
        verify: _,
        replay: _,
        no_replica: _,
        replicas: _, // pool_diff
        health: _,   // health_diff
    } = n;
    let p = format!("services[{}]", s.name);
    c.fixed(format!("{p}.vip"), &s.vip, &n.vip);
    c.fixed_shown(format!("{p}.port"), &s.port, &n.port);
    c.fixed_shown(format!("{p}.mode"), &s.mode, &n.mode);
    c.fixed(format!("{p}.copies"), &s.copies, &n.copies);
    c.fixed(format!("{p}.selection"), &s.selection, &n.selection);
    c.fixed(format!("{p}.verify"), &s.verify, &n.verify);
    c.fixed(format!("{p}.replay"), &s.replay, &n.replay);
    c.fixed_shown(format!("{p}.no_replica"), &s.no_replica, &n.no_replica);
}

/// The pool as it runs (or as the running profile has it, without a live pool) against
/// the new profile's: removals first (by name, or a name whose address changed), then
/// additions, then drains, so a replica moved to a new address is never in the pool
/// twice.
fn pool_diff(s: &Service, pool: Option<&LivePool>, n: &Service, out: &mut Vec<Difference>) {
    let live: Vec<LiveReplica> = match pool {
        Some(p) => p.replicas.clone(),
        None => s
            .replicas
            .iter()
            .map(|r| LiveReplica {
                name: r.name.clone(),
                address: r.address,
                drained: r.drain,
            })
            .collect(),
    };
    let mut adds = Vec::new();
    let mut drains = Vec::new();
    for r in &live {
        let kept = n
            .replicas
            .iter()
            .any(|x| x.name == r.name && x.address == r.address);
        if !kept {
            out.push(Difference::ReplicaRemoved {
                service: n.name.clone(),
                name: r.name.clone(),
                address: r.address,
                added_while_running: !s.replicas.iter().any(|x| x.name == r.name),
            });
        }
    }
    for x in &n.replicas {
        match live
            .iter()
            .find(|r| r.name == x.name && r.address == x.address)
        {
            Some(r) if r.drained != x.drain => drains.push(Difference::ReplicaDrain {
                service: n.name.clone(),
                name: x.name.clone(),
                drained: x.drain,
            }),
            Some(_) => {}
            None => adds.push(Difference::ReplicaAdded {
                service: n.name.clone(),
                name: x.name.clone(),
                address: x.address,
                drained: x.drain,
            }),
        }
    }
    out.append(&mut adds);
    out.append(&mut drains);
}

fn health_diff(service: &str, a: &Health, b: &Health, out: &mut Vec<Difference>) {
    let d = |x: std::time::Duration| format_duration(x);
    let off = |x: Option<std::time::Duration>| x.map_or_else(|| "off".to_owned(), format_duration);
    for (field, x, y) in [
        (
            "probe_ports",
            format!("{:?}", a.probe_ports),
            format!("{:?}", b.probe_ports),
        ),
        ("interval", d(a.interval), d(b.interval)),
        ("timeout", d(a.timeout), d(b.timeout)),
        ("fall", a.fall.to_string(), b.fall.to_string()),
        ("rise", a.rise.to_string(), b.rise.to_string()),
        (
            "suspect_burst",
            a.suspect_burst.to_string(),
            b.suspect_burst.to_string(),
        ),
        (
            "suspect_interval",
            d(a.suspect_interval),
            d(b.suspect_interval),
        ),
        ("ack_lag", off(a.ack_lag), off(b.ack_lag)),
        ("output_lag", off(a.output_lag), off(b.output_lag)),
    ] {
        if x != y {
            out.push(Difference::Health {
                service: service.to_owned(),
                field: field.to_owned(),
                old: x,
                new: y,
            });
        }
    }
}

/// The pools of `profile` as they start (for tests, and a control core that has not
/// changed them).
pub fn pools_of(profile: &Profile) -> Vec<LivePool> {
    profile
        .services
        .iter()
        .map(|s| LivePool {
            service: s.name.clone(),
            replicas: s
                .replicas
                .iter()
                .map(|r| LiveReplica {
                    name: r.name.clone(),
                    address: r.address,
                    drained: r.drain,
                })
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::lab;
    use std::time::Duration;
    use tandem_config::{LogFormat, LogLevel, Mode, NoReplica, ServicePort};

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().expect("address")
    }

    /// The lab running as it started.
    fn against(old: &Profile, new: &Profile) -> Plan {
        let pools = pools_of(old);
        diff(
            Running {
                profile: old,
                pools: &pools,
            },
            new,
        )
    }

    #[test]
    fn the_same_profile_changes_nothing() {
        let p = lab();
        assert_eq!(against(&p, &p.clone()), Plan::default());
    }

    #[test]
    fn a_replica_added_removed_or_drained_in_the_profile_is_applied() {
        let old = lab();
        let mut new = old.clone();
        let spare = new.services[0].replicas.remove(2);
        new.services[0].replicas[1].drain = true;
        new.services[0].replicas.push(tandem_config::Replica {
            name: "extra".into(),
            address: ip("198.19.0.14"),
            drain: false,
        });
        let plan = against(&old, &new);
        assert!(plan.refused.is_empty(), "{:?}", plan.refused);
        assert_eq!(
            plan.differences,
            [
                Difference::ReplicaRemoved {
                    service: "lab".into(),
                    name: spare.name,
                    address: spare.address,
                    added_while_running: false,
                },
                Difference::ReplicaAdded {
                    service: "lab".into(),
                    name: "extra".into(),
                    address: ip("198.19.0.14"),
                    drained: false,
                },
                Difference::ReplicaDrain {
                    service: "lab".into(),
                    name: "backup".into(),
                    drained: true,
                },
            ]
        );
        // And the drain undone by the next reload.
        let mut back = new.clone();
        back.services[0].replicas[1].drain = false;
        let pools = pools_of(&new);
        let plan = diff(
            Running {
                profile: &new,
                pools: &pools,
            },
            &back,
        );
        assert_eq!(
            plan.differences,
            [Difference::ReplicaDrain {
                service: "lab".into(),
                name: "backup".into(),
                drained: false,
            }]
        );
    }

    #[test]
    fn replicas_changed_while_running_are_reported_against_the_profile() {
        let p = lab();
        let mut pools = pools_of(&p);
        // `tandem add lab extra 198.19.0.14`, `tandem remove spare`, `tandem drain primary`.
        pools[0].replicas.retain(|r| r.name != "spare");
        pools[0].replicas[0].drained = true;
        pools[0].replicas.push(LiveReplica {
            name: "extra".into(),
            address: ip("198.19.0.14"),
            drained: false,
        });
        let plan = diff(
            Running {
                profile: &p,
                pools: &pools,
            },
            &p,
        );
        assert!(plan.refused.is_empty());
        assert_eq!(
            plan.differences,
            [
                Difference::ReplicaRemoved {
                    service: "lab".into(),
                    name: "extra".into(),
                    address: ip("198.19.0.14"),
                    added_while_running: true,
                },
                Difference::ReplicaAdded {
                    service: "lab".into(),
                    name: "spare".into(),
                    address: ip("198.19.0.13"),
                    drained: false,
                },
                Difference::ReplicaDrain {
                    service: "lab".into(),
                    name: "primary".into(),
                    drained: false,
                },
            ]
        );
        assert!(plan.differences[0]
            .to_string()
            .contains("added with `tandem add` and is not in the profile"));
    }

    #[test]
    fn a_replica_at_a_new_address_leaves_and_joins_again() {
        let old = lab();
        let mut new = old.clone();
        new.services[0].replicas[2].address = ip("198.19.0.20");
        let plan = against(&old, &new);
        assert!(plan.refused.is_empty());
        assert!(matches!(
            plan.differences.as_slice(),
            [
                Difference::ReplicaRemoved { address: a, .. },
                Difference::ReplicaAdded { address: b, .. },
            ] if *a == ip("198.19.0.13") && *b == ip("198.19.0.20")
        ));
    }

    #[test]
    fn health_timeouts_log_level_and_a_new_service_are_applied() {
        let old = lab();
        let mut new = old.clone();
        new.services[0].health.interval = Duration::from_millis(20);
        new.services[0].health.probe_ports = vec![7000];
        new.services[0].health.ack_lag = None;
        new.timeouts.established = Duration::from_secs(60);
        new.timeouts.arp_refresh = Duration::from_secs(10);
        new.logging.level = LogLevel::Debug;
        let mut web = new.services[0].clone();
        web.name = "web".into();
        web.vip = ip("198.18.0.101");
        web.port = ServicePort::Single(80);
        new.services.push(web);
        let plan = against(&old, &new);
        assert!(plan.refused.is_empty(), "{:?}", plan.refused);
        let shown: Vec<String> = plan.differences.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "~ services[lab].health.probe_ports: [7000, 80] -> [7000]",
                "~ services[lab].health.interval: 10ms -> 20ms",
                "~ services[lab].health.ack_lag: 50ms -> off",
                "+ service web on 198.18.0.101:80",
                "~ timeouts.established: 300s -> 60s (flows created from now on)",
                "~ timeouts.arp_refresh: 30s -> 10s",
                "~ logging.level: info -> debug",
            ]
        );
    }

    #[test]
    fn every_change_that_needs_a_restart_is_named_and_refuses_the_whole_reload() {
        let old = lab();
        let mut new = old.clone();
        new.ports.outside.queues = 2;
        new.lcores.workers = vec![1, 2];
        new.eal.args.push("--no-telemetry".into());
        new.limits.flows_per_worker = 1024;
        new.logging.format = LogFormat::Json;
        new.services[0].mode = Mode::Reconnect;
        new.services[0].no_replica = match old.services[0].no_replica {
            NoReplica::Reset => NoReplica::Drop,
            NoReplica::Drop => NoReplica::Reset,
        };
        // Applicable on its own, but not with the others.
        new.services[0].replicas[1].drain = true;
        let plan = against(&old, &new);
        let fields: Vec<&str> = plan.refused.iter().map(|r| r.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "eal.args",
                "lcores.workers",
                "ports.outside.queues",
                "limits.flows_per_worker",
                "logging.format",
                "services[lab].mode",
                "services[lab].no_replica",
            ]
        );
        let msg = plan.refusal().expect("refused");
        assert!(
            msg.starts_with("reload refused, nothing changed: these changes need a restart:"),
            "{msg}"
        );
        assert!(msg.contains("ports.outside.queues: 1 -> 2"), "{msg}");
        assert!(
            msg.contains("services[lab].mode: mirror -> reconnect"),
            "{msg}"
        );
    }

    #[test]
    fn a_service_removed_needs_a_restart() {
        let old = lab();
        let mut new = old.clone();
        let mut web = new.services[0].clone();
        web.name = "web".into();
        web.vip = ip("198.18.0.101");
        let mut two = old.clone();
        two.services.push(web);
        new.services.clear();
        new.services.push(two.services[1].clone());
        let plan = against(&two, &new);
        assert_eq!(
            plan.refused,
            [Refusal {
                field: "services[lab]".into(),
                old: "198.18.0.100:any".into(),
                new: "removed".into(),
            }]
        );
        assert_eq!(
            plan.refusal().as_deref(),
            Some(
                "reload refused, nothing changed: this change needs a restart: \
                 services[lab]: 198.18.0.100:any -> removed"
            )
        );
    }
}
