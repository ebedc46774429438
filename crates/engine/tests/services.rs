//! What a service promises for a new connection: which ports it takes (`port: A-B`), and
//! what a SYN gets when none of its replicas is live (`no_replica: reset | drop`).

use tandem_engine::engine::STRAY_RSTS_PER_PERIOD;
use tandem_engine::{DropReason, OnNoReplica, Service, ServicePort};
use tandem_testkit::*;
use tandem_wire::TcpFlags;

const RST: TcpFlags = TcpFlags::RST;

/// The lab with its service changed by `edit`.
fn lab_with(edit: impl FnOnce(&mut Service)) -> Lab {
    let mut lab = Lab::new();
    let mut service = mirror(&[lab.p, lab.b]);
    edit(&mut service);
    let cfg = tandem_engine::EngineConfig {
        services: vec![service],
        ..config()
    };
    lab.rig = Rig::new(cfg, lab.replicas.clone());
    lab
}

/// The client's SYN to `port` of the VIP.
fn syn_to(lab: &mut Lab, port: u16, cport: u16) -> Vec<Seen> {
    lab.send(Seg {
        dport: port,
        sport: cport,
        seq: 1000,
        ..Seg::CLIENT_SYN
    })
}

#[test]
fn a_port_range_takes_a_syn_to_either_end_and_refuses_one_past_them() {
    let mut lab = lab_with(|s| s.port = ServicePort::Range(8000, 8100));
    for (i, port) in [8000u16, 8050, 8100].into_iter().enumerate() {
        let out = syn_to(&mut lab, port, 40_000 + i as u16);
        let to_primary = one(&out, PRIMARY);
        assert_eq!((to_primary.dport, to_primary.flags), (port, S));
        assert_eq!(one(&out, BACKUP).dport, port);
    }
    assert_eq!(lab.engine.flows().len(), 3);
    for port in [7999u16, 8101, 80] {
        assert!(syn_to(&mut lab, port, 41_000).is_empty(), "port {port}");
    }
    assert_eq!(lab.engine.counters().dropped(DropReason::NotServed), 3);
    assert_eq!(lab.engine.flows().len(), 3);
}

#[test]
fn a_syn_with_no_live_replica_is_answered_with_a_rst_as_from_a_closed_port() {
    let mut lab = lab_with(|s| s.no_replica = OnNoReplica::Reset);
    lab.kill(R::P);
    lab.kill(R::B);
    let out = lab.send(Seg {
        seq: 1000,
        payload: b"early data",
        ..Seg::CLIENT_SYN
    });
    let rst = one(&out, CLIENT);
    assert_eq!((rst.src, rst.sport, rst.dport), (VIP, PORT, CPORT));
    // RFC 9293 §3.10.7.1: no ACK in the SYN, so seq 0 and ack its ISN + 1 + its data.
    assert_eq!((rst.seq, rst.ack, rst.flags), (0, 1011, RST | A));
    assert!(rst.payload.is_empty());
    assert_eq!(out.len(), 1, "one RST, nothing to any replica");
    let c = lab.engine.counters();
    assert_eq!(
        (c.no_replica_resets, c.dropped(DropReason::NoReplica)),
        (1, 1)
    );
    assert_eq!(lab.engine.flows().len(), 0);
}

#[test]
fn a_syn_with_no_live_replica_is_dropped_and_counted_when_the_service_says_drop() {
    let mut lab = lab_with(|s| s.no_replica = OnNoReplica::Drop);
    lab.kill(R::P);
    lab.kill(R::B);
    assert!(syn_to(&mut lab, PORT, CPORT).is_empty());
    let c = lab.engine.counters();
    assert_eq!(
        (c.no_replica_resets, c.dropped(DropReason::NoReplica)),
        (0, 1)
    );
    assert_eq!(lab.engine.flows().len(), 0);
}

#[test]
fn a_flood_of_syns_at_a_dead_service_gets_at_most_one_rst_each_and_no_more_than_the_limit() {
    let mut lab = lab_with(|s| s.no_replica = OnNoReplica::Reset);
    lab.kill(R::P);
    lab.kill(R::B);
    let mut rsts = 0;
    for k in 0..1000u16 {
        let out = syn_to(&mut lab, PORT, 20_000 + k);
        assert!(out.len() <= 1, "at most one answer per SYN");
        rsts += out.len();
    }
    assert_eq!(rsts as u32, STRAY_RSTS_PER_PERIOD);
    let c = lab.engine.counters();
    assert_eq!(c.no_replica_resets, u64::from(STRAY_RSTS_PER_PERIOD));
    assert_eq!(c.dropped(DropReason::NoReplica), 1000);
    // The next period answers again.
    lab.advance(tandem_engine::engine::STRAY_RST_PERIOD_NS);
    assert_eq!(syn_to(&mut lab, PORT, 30_000).len(), 1);
}

#[test]
fn a_syn_is_served_again_once_a_replica_is_back() {
    let mut lab = lab_with(|s| s.no_replica = OnNoReplica::Reset);
    lab.kill(R::P);
    lab.kill(R::B);
    assert_eq!(one(&syn_to(&mut lab, PORT, CPORT), CLIENT).flags, RST | A);
    lab.replicas.set_health(lab.b, tandem_engine::Health::Up);
    let out = syn_to(&mut lab, PORT, CPORT);
    assert_eq!(one(&out, BACKUP).flags, S);
    assert!(to(&out, CLIENT).is_empty());
}
