//! Replica tables and engine configurations: the lab's service as every test and
//! benchmark sets it up, to be adjusted with struct update syntax
//! (`EngineConfig { hold_segments: 8, ..engine_config(…) }`).

use std::net::Ipv4Addr;
use std::sync::Arc;

use tandem_engine::{EngineConfig, ReplicaId, ReplicaTable, Service, ServicePort};
use tandem_wire::MacAddr;

use crate::addr::{BACKUP, BACKUP_MAC, INSIDE, OUTSIDE, PORT, PRIMARY, PRIMARY_MAC, VIP};

/// Slots in a kit's replica table: room for the lab's replicas and a few added later.
pub const REPLICA_SLOTS: usize = 8;

/// A replica table holding `hosts`, each resolved (its MAC known), in order; returns the
/// table and the hosts' ids.
pub fn replica_table(hosts: &[(Ipv4Addr, MacAddr)]) -> (Arc<ReplicaTable>, Vec<ReplicaId>) {
    let table = Arc::new(ReplicaTable::new(REPLICA_SLOTS));
    let ids = hosts
        .iter()
        .map(|&(addr, mac)| {
            let id = table.add(addr).expect("a slot for every replica");
            table.set_mac(id, mac);
            id
        })
        .collect();
    (table, ids)
}

/// The lab's primary and backup, resolved: the table, the primary's id, the backup's.
pub fn lab_replicas() -> (Arc<ReplicaTable>, ReplicaId, ReplicaId) {
    let (table, ids) = replica_table(&[(PRIMARY, PRIMARY_MAC), (BACKUP, BACKUP_MAC)]);
    (table, ids[0], ids[1])
}

/// The lab's service, VIP:PORT, mirrored to every one of `replicas`; the primary is
/// picked by spreading over them.
pub fn mirror(replicas: &[ReplicaId]) -> Service {
    Service {
        vip: VIP,
        port: ServicePort::Port(PORT),
        replicas: replicas.to_vec(),
        copies: replicas.len(),
        ordered: false,
        forward: false,
        ack_lag_ns: None,
        output_lag_ns: None,
        verify: true,
        replay: None,
        reprotect: None,
        http1: None,
        no_replica: tandem_engine::OnNoReplica::Reset,
    }
}

/// The lab's mirror service whose flows get a new standby by replay when they lose one
/// (`replay` in mirror mode): their client bytes since the SYN are logged.
pub fn mirror_reprotect(replicas: &[ReplicaId], copies: usize) -> Service {
    Service {
        copies,
        ordered: true,
        reprotect: Some(tandem_engine::ReplayConfig::default()),
        ..mirror(replicas)
    }
}

/// The lab's service in reconnect mode: each flow on one of `replicas`, its client bytes
/// logged and replayed to another when its replica dies.
pub fn reconnect(replicas: &[ReplicaId]) -> Service {
    Service {
        copies: 1,
        ordered: true,
        replay: Some(tandem_engine::ReplayConfig::default()),
        ..mirror(replicas)
    }
}

/// The lab's service in reconnect mode with `replay: http1`: a replay starts at the
/// oldest request not fully answered, and the answers are compared without their `Date`
/// and `Server` lines.
pub fn reconnect_http1(replicas: &[ReplicaId]) -> Service {
    Service {
        http1: Some(tandem_engine::Http1Rules::default()),
        ..reconnect(replicas)
    }
}

/// The lab's service in forward mode: each flow to one of `replicas` (NAT only).
pub fn forward(replicas: &[ReplicaId]) -> Service {
    Service {
        copies: 1,
        forward: true,
        verify: false,
        ..mirror(replicas)
    }
}

/// The engine of the lab's appliance: its own addresses on both ports, `services`, and
/// room for `max_flows`; every other setting the default.
pub fn engine_config(services: Vec<Service>, max_flows: usize) -> EngineConfig {
    EngineConfig {
        own_addrs: vec![OUTSIDE, INSIDE],
        services,
        max_flows,
        ..EngineConfig::default()
    }
}
