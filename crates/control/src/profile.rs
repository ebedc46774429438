//! From a profile (`tandem_config::Profile`) to what the engine and the control core
//! need: the [`EngineConfig`] of every worker and the shared [`ReplicaTable`].
//!
//! What the engine cannot represent, and what is done about it:
//! - A port range (`port: 8000-8100`) is the engine's `ServicePort::Range`: a lookup
//!   compares the port with its two ends, a cost that does not grow with the range (a
//!   range covering every port, `1-65535`, is taken as `any`).
//! - `no_replica` (`reset`, the default, or `drop`): the engine's `Service::no_replica`.
//! - `mode: reconnect`: the engine's `Service::replay` (its `limit`, `connect_timeout`,
//!   `parallel` and `fin_hold`); with `replay: { scope: http1 }` also `Service::http1`
//!   (the `methods` and `exclude_headers`, which the framer keeps in fixed tables: the
//!   profile's validation holds them to its limits, and a name the framer still cannot
//!   take is [`ProfileError::Http1Rules`]). `limits.replay_bytes_total`
//!   is shared out among the workers, as the hold budgets are.
//! - `replay` in mirror mode (new standbys for running flows, on unless `limit: 0`): the
//!   engine's `Service::reprotect` (its `limit`, `connect_timeout` and `parallel`).
//! - `mode: forward` (benchmarks): the engine's `Service::forward`; `copies` is 1 and
//!   `health.probe_ports: []` leaves its replicas unprobed (up until failed by hand).
//! - `selection`: `ordered` takes the first live replicas in list order, `spread`
//!   rotates the first replica from flow to flow.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use tandem_config::{Mode, NoReplica, Profile, ReplayScope, Selection, ServicePort as CfgPort};
use tandem_engine::{EngineConfig, OnNoReplica, ReplicaId, ReplicaTable, Service, ServicePort};
use tandem_wire::MacAddr;

/// A profile the runtime cannot run as written.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// `replay.methods` or `replay.exclude_headers` that the HTTP/1.1 framer cannot
    /// hold.
    #[error("services[{index}] ({name}): replay.{field}: {error}")]
    Http1Rules {
        /// Index of the service in the profile.
        index: usize,
        /// Its name.
        name: String,
        /// `methods` or `exclude_headers`.
        field: &'static str,
        /// What the framer said.
        error: tandem_engine::http1::Error,
    },
    /// More replicas than the replica table holds.
    #[error("too many replicas: the replica table holds {0}")]
    TooManyReplicas(usize),
}

/// The pair's settings from the profile's `ha` section, for a node started at
/// `incarnation` (wall-clock ns: it numbers the sync batches across restarts).
pub fn ha_settings(ha: &tandem_config::Ha, incarnation: u64) -> crate::ha::Settings {
    let dead_ns = ns(ha.dead_time);
    let heartbeat_ns = ns(ha.heartbeat);
    crate::ha::Settings {
        node: u32::from(*ha.local.ip()),
        preferred: ha.preferred,
        incarnation,
        interval_ns: heartbeat_ns,
        dead_ns,
        // Long enough for the final records of a full table over a busy link; short
        // enough that an operator sees a failed switch at once.
        handover_timeout_ns: dead_ns.saturating_mul(20).max(1_000_000_000),
        sync: crate::ha::SyncSettings {
            batch_records: usize::from(ha.sync_batch),
            batch_interval_ns: ns(ha.sync_interval),
            window: ha.sync_window as usize,
            // Two heartbeats: the peer acks within one (acks also ride on heartbeats).
            resend_ns: heartbeat_ns.saturating_mul(2),
        },
    }
}

/// Slots of the shared replica table: every replica of the profile plus room for the
/// pool changes of later issues.
pub const REPLICA_SLOTS: usize = 1024;

/// One replica as the control core knows it.
#[derive(Clone, Debug)]
pub struct ReplicaInfo {
    /// `service/replica`, for logs.
    pub name: String,
    /// Its slot in the replica table.
    pub id: ReplicaId,
    /// Its address.
    pub address: Ipv4Addr,
}

/// The profile mapped for the engine.
#[derive(Debug)]
pub struct Mapped {
    /// The engine settings, the same for every worker.
    pub engine: EngineConfig,
    /// The shared replica table, every replica `Up` with an unresolved MAC.
    pub replicas: Arc<ReplicaTable>,
    /// Every replica, in profile order (a replica in two services appears once).
    pub replica_list: Vec<ReplicaInfo>,
    /// Warnings about settings that run differently from what the profile says.
    pub warnings: Vec<String>,
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Maps `profile` for ports with the MACs `outside_mac` and `inside_mac`.
///
/// # Errors
///
/// A [`ProfileError`] for what the engine cannot represent.
pub fn map_profile(
    profile: &Profile,
    outside_mac: MacAddr,
    inside_mac: MacAddr,
) -> Result<Mapped, ProfileError> {
    let table = Arc::new(ReplicaTable::new(REPLICA_SLOTS));
    let mut replica_list: Vec<ReplicaInfo> = Vec::new();
    let mut services = Vec::new();
    // What runs differently from what the profile says (nothing, since `ordered` runs).
    let warnings = Vec::new();
    for (index, s) in profile.services.iter().enumerate() {
        let port = match s.port {
            CfgPort::Any | CfgPort::Range(1, u16::MAX) => ServicePort::Any,
            CfgPort::Single(p) => ServicePort::Port(p),
            CfgPort::Range(first, last) if first == last => ServicePort::Port(first),
            CfgPort::Range(first, last) => ServicePort::Range(first, last),
        };
        let http1 = match s.mode {
            Mode::Reconnect if s.replay.scope == ReplayScope::Http1 => {
                let rules_error = |field, error| ProfileError::Http1Rules {
                    index,
                    name: s.name.clone(),
                    field,
                    error,
                };
                Some(tandem_engine::Http1Rules {
                    methods: tandem_engine::http1::Methods::new(&s.replay.methods)
                        .map_err(|e| rules_error("methods", e))?,
                    exclude: tandem_engine::http1::Exclude::new(&s.replay.exclude_headers)
                        .map_err(|e| rules_error("exclude_headers", e))?,
                })
            }
            _ => None,
        };
        let replay = match s.mode {
            Mode::Reconnect => Some(tandem_engine::ReplayConfig {
                limit: u32::try_from(s.replay.limit).unwrap_or(u32::MAX),
                connect_timeout_ns: ns(s.replay.connect_timeout),
                parallel: s.replay.parallel as usize,
                fin_hold_ns: ns(s.replay.fin_hold),
            }),
            Mode::Mirror | Mode::Forward => None,
        };
        // Mirror mode: new standbys for running flows, unless `replay.limit: 0`.
        let reprotect = match s.mode {
            Mode::Mirror if s.replay.limit > 0 => Some(tandem_engine::ReplayConfig {
                limit: u32::try_from(s.replay.limit).unwrap_or(u32::MAX),
                connect_timeout_ns: ns(s.replay.connect_timeout),
                parallel: s.replay.parallel as usize,
                fin_hold_ns: 0,
            }),
            _ => None,
        };
        let mut ids = Vec::with_capacity(s.replicas.len());
        for r in &s.replicas {
            let id = match replica_list.iter().find(|i| i.address == r.address) {
                Some(known) => known.id,
                None => {
                    let id = table
                        .add(r.address)
                        .ok_or(ProfileError::TooManyReplicas(REPLICA_SLOTS))?;
                    replica_list.push(ReplicaInfo {
                        name: format!("{}/{}", s.name, r.name),
                        id,
                        address: r.address,
                    });
                    id
                }
            };
            ids.push(id);
        }
        services.push(Service {
            vip: s.vip,
            port,
            replicas: ids,
            copies: usize::from(s.copies),
            ordered: s.selection == Selection::Ordered,
            forward: s.mode == Mode::Forward,
            ack_lag_ns: Some(s.health.ack_lag.map_or(0, ns)),
            output_lag_ns: Some(s.health.output_lag.map_or(0, ns)),
            verify: s.verify,
            replay,
            reprotect,
            http1,
            no_replica: match s.no_replica {
                NoReplica::Reset => OnNoReplica::Reset,
                NoReplica::Drop => OnNoReplica::Drop,
            },
        });
    }
    let t = &profile.timeouts;
    let l = &profile.limits;
    // Each service has its own lag thresholds (above); the engine-wide ones are the first
    // service's, for a service added without its own.
    let (ack_lag, output_lag) = profile
        .services
        .first()
        .map(|s| (s.health.ack_lag, s.health.output_lag))
        .unwrap_or((None, None));
    // The profile's hold budgets are for the whole appliance; each worker gets its share.
    let workers = profile.lcores.workers.len().max(1);
    let defaults = EngineConfig::default();
    let engine = EngineConfig {
        outside_mac,
        inside_mac,
        own_addrs: vec![
            profile.ports.outside.address.address,
            profile.ports.inside.address.address,
        ],
        services,
        max_flows: l.flows_per_worker as usize,
        hold_bytes_per_flow: l.hold_bytes_per_flow,
        hold_bytes_total: l.hold_bytes_total / workers as u64,
        replay_bytes_total: l.replay_bytes_total / workers as u64,
        hold_segments: (l.hold_segments_total as usize / workers).max(1),
        synack_wait_ns: ns(t.synack_wait),
        syn_timeout_ns: ns(t.syn),
        idle_timeout_ns: ns(t.established),
        linger_ns: ns(t.linger),
        ack_lag_ns: ack_lag.map_or(0, ns),
        output_lag_ns: output_lag.map_or(0, ns),
        syn_backlog: l.syn_backlog as usize,
        // What a replica behind the inside port would announce itself.
        syn_cookie_mss: profile.ports.inside.mtu.saturating_sub(40),
        ..defaults
    };
    Ok(Mapped {
        engine,
        replicas: table,
        replica_list,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub use crate::testing::lab;

    #[test]
    fn an_ha_section_maps_to_the_pair_settings_and_runs() {
        let lab = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../configs/lab.yaml"
        ))
        .expect("lab profile");
        let text = format!(
            "{lab}\nha: {{ interface: ha0, local: 198.18.255.1:7788, peer: 198.18.255.2:7788, \
             heartbeat: 5ms, dead_time: 20ms, sync_batch: 3, preferred: true }}\n"
        );
        let p = tandem_config::parse("ha.yaml", &text).unwrap_or_else(|e| panic!("{e}"));
        let ha = p.ha.as_ref().expect("ha section");
        let s = ha_settings(ha, 42);
        assert_eq!(s.node, u32::from(Ipv4Addr::new(198, 18, 255, 1)));
        assert!(s.preferred);
        assert_eq!(
            (s.incarnation, s.interval_ns, s.dead_ns),
            (42, 5_000_000, 20_000_000)
        );
        assert_eq!((s.sync.batch_records, s.sync.window), (3, 1024));
        assert_eq!(
            (s.sync.batch_interval_ns, s.sync.resend_ns),
            (1_000_000, 10_000_000)
        );
        assert!(map_profile(&p, MacAddr::ZERO, MacAddr::ZERO).is_ok());
    }

    #[test]
    fn lab_profile_maps_to_the_engine() {
        let p = lab();
        let out_mac = MacAddr([2, 0x74, 0x64, 0x12, 0, 1]);
        let in_mac = MacAddr([2, 0x74, 0x64, 0x13, 0, 1]);
        let m = match map_profile(&p, out_mac, in_mac) {
            Ok(m) => m,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(m.engine.outside_mac, out_mac);
        assert_eq!(m.engine.inside_mac, in_mac);
        assert_eq!(
            m.engine.own_addrs,
            [Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 19, 0, 1)]
        );
        assert_eq!(m.engine.services.len(), 1);
        let s = &m.engine.services[0];
        assert_eq!(s.vip, Ipv4Addr::new(198, 18, 0, 100));
        assert_eq!(s.port, ServicePort::Any);
        assert_eq!(s.copies, 2);
        assert_eq!(s.replicas.len(), 3);
        assert_eq!(m.replica_list.len(), 3);
        assert_eq!(m.replica_list[0].name, "lab/primary");
        for r in &m.replica_list {
            assert_eq!(m.replicas.addr(r.id), r.address);
            assert_eq!(m.replicas.health(r.id), tandem_engine::Health::Up);
            assert_eq!(
                m.replicas.mac(r.id),
                None,
                "resolved by ARP, not configured"
            );
        }
        assert_eq!(m.engine.max_flows, 65536);
        assert_eq!(m.engine.synack_wait_ns, 2_000_000);
        assert_eq!(m.engine.idle_timeout_ns, 300_000_000_000);
        assert_eq!(m.engine.ack_lag_ns, 50_000_000);
        assert_eq!(m.engine.output_lag_ns, 0);
        // One worker: the whole hold budget.
        assert_eq!(m.engine.hold_bytes_total, 33_554_432);
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);
        assert!(m.engine.services[0].ordered);
    }

    #[test]
    fn ports_ranges_and_modes() {
        let mut p = lab();
        p.services[0].port = CfgPort::Single(80);
        let m = map_profile(&p, MacAddr::ZERO, MacAddr::ZERO).ok();
        assert_eq!(
            m.map(|m| m.engine.services[0].port),
            Some(ServicePort::Port(80))
        );

        p.services[0].port = CfgPort::Range(1, u16::MAX);
        let m = map_profile(&p, MacAddr::ZERO, MacAddr::ZERO).ok();
        assert_eq!(m.map(|m| m.engine.services[0].port), Some(ServicePort::Any));

        p.services[0].port = CfgPort::Range(8000, 8100);
        let m = map_profile(&p, MacAddr::ZERO, MacAddr::ZERO).ok();
        assert_eq!(
            m.map(|m| m.engine.services[0].port),
            Some(ServicePort::Range(8000, 8100))
        );

        p.services[0].port = CfgPort::Any;
        p.services[0].mode = Mode::Reconnect;
        p.services[0].copies = 1;
        p.services[0].replay.scope = ReplayScope::Http1;
        let m = map_profile(&p, MacAddr::ZERO, MacAddr::ZERO).expect("http1 maps");
        let rules = m.engine.services[0].http1.as_ref().expect("http1 rules");
        assert!(rules.methods.allows(b"GET") && !rules.methods.allows(b"POST"));
        // More methods than the framer keeps (it keeps HEAD and CONNECT besides).
        p.services[0].replay.methods = (0..16).map(|k| format!("M{k}")).collect();
        let e = map_profile(&p, MacAddr::ZERO, MacAddr::ZERO).err();
        assert!(
            e.as_ref().is_some_and(|e| e
                .to_string()
                .starts_with("services[0] (lab): replay.methods")),
            "{e:?}"
        );
    }

    #[test]
    fn no_replica_maps_to_the_engine_reset_by_default_or_drop() {
        let mut p = lab();
        let m = map_profile(&p, MacAddr::ZERO, MacAddr::ZERO).expect("maps");
        assert_eq!(m.engine.services[0].no_replica, OnNoReplica::Reset);
        p.services[0].no_replica = NoReplica::Drop;
        let m = map_profile(&p, MacAddr::ZERO, MacAddr::ZERO).expect("maps");
        assert_eq!(m.engine.services[0].no_replica, OnNoReplica::Drop);
    }

    #[test]
    fn reconnect_mode_with_a_stream_replay_maps_to_the_engine() {
        let mut p = lab();
        p.services[0].mode = Mode::Reconnect;
        p.services[0].copies = 1;
        let m = map_profile(&p, MacAddr::ZERO, MacAddr::ZERO).expect("maps");
        let s = &m.engine.services[0];
        assert_eq!(s.copies, 1);
        assert_eq!(
            s.replay,
            Some(tandem_engine::ReplayConfig {
                limit: 1 << 20,
                connect_timeout_ns: 50_000_000,
                parallel: 64,
                fin_hold_ns: 100_000_000,
            })
        );
        let workers = p.lcores.workers.len() as u64;
        assert_eq!(
            m.engine.replay_bytes_total,
            p.limits.replay_bytes_total / workers
        );
    }

    #[test]
    fn forward_mode_maps_to_the_engine() {
        let mut p = lab();
        assert!(
            map_profile(&p, MacAddr::ZERO, MacAddr::ZERO).is_ok_and(|m| m
                .engine
                .services
                .iter()
                .all(|s| !s.forward))
        );
        p.services[0].mode = Mode::Forward;
        p.services[0].copies = 1;
        p.services[0].health.probe_ports.clear();
        let m = match map_profile(&p, MacAddr::ZERO, MacAddr::ZERO) {
            Ok(m) => m,
            Err(e) => panic!("{e}"),
        };
        assert!(m.engine.services[0].forward);
        assert_eq!(m.engine.services[0].copies, 1);
    }
}
