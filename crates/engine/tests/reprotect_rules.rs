//! Mirror mode's new standbys for running flows (DESIGN §5, reintegration), rule by rule:
//! a flow that lost its standby gets a new one by replay when a replica comes up, not
//! when its log no longer holds every client byte since the SYN, and a replica that still
//! holds the flow's old connection is cleared with the exact RST. Each test names what it
//! checks. (`tests/reprotect.rs` runs whole connections over the smoltcp simulation.)

use tandem_testkit::*;

use tandem_wire::TcpFlags;

const REQ: &[u8] = b"GET /a\n";

/// The lab with its mirror service giving flows new standbys, `limit` client bytes
/// logged per flow.
fn lab(limit: u32) -> Lab {
    let mut lab = Lab::new();
    let (p, b) = (lab.p, lab.b);
    let cfg = tandem_engine::EngineConfig {
        services: vec![tandem_engine::Service {
            reprotect: Some(tandem_engine::ReplayConfig {
                limit,
                ..tandem_engine::ReplayConfig::default()
            }),
            ..mirror(&[p, b])
        }],
        replay_bytes_total: 1 << 20,
        ..config()
    };
    lab.rig = Rig::new(cfg, lab.replicas.clone());
    lab
}

/// A flow with the client's request on both replicas, then the backup's server killed:
/// its kernel's FIN, and the control core finds it down. Returns the client's next
/// sequence number.
fn request_then_backup_dies(lab: &mut Lab) -> u32 {
    let hs = Hs::default();
    let synack = lab.handshake(&hs);
    let c1 = hs.cisn + 1;
    let out = lab.send(Seg {
        seq: c1,
        ack: synack.seq.wrapping_add(1),
        payload: REQ,
        ..Seg::CLIENT
    });
    assert_eq!(to(&out, BACKUP).len(), 1, "the request to the backup");
    lab.send(Seg {
        seq: hs.bisn + 1,
        ack: c1 + REQ.len() as u32,
        flags: TcpFlags::FIN | TcpFlags::ACK,
        ..Seg::BACKUP
    });
    lab.kill(R::B);
    lab.engine.request_failover_sweep();
    lab.poll();
    assert_eq!(lab.engine.counters().flows_unprotected, 1);
    c1 + REQ.len() as u32
}

/// The replica table says the backup is up again.
fn backup_comes_back(lab: &mut Lab) -> Vec<Seen> {
    let b = lab.b;
    lab.replicas.set_health(b, tandem_engine::Health::Up);
    lab.advance(MS);
    lab.poll()
}

#[test]
fn a_flow_that_lost_its_standby_gets_a_new_one_by_replay_when_the_replica_comes_back() {
    let mut lab = lab(1 << 16);
    let c_next = request_then_backup_dies(&mut lab);
    let hs = Hs::default();
    let out = backup_comes_back(&mut lab);
    let syn = one(&out, BACKUP);
    assert!(syn.is_syn(), "{syn:?}");
    assert_eq!(syn.src, CLIENT, "from the client's address");
    assert_eq!(
        syn.seq, hs.cisn,
        "with the client's ISN: the log keeps its numbers"
    );
    assert_eq!(lab.engine.counters().reprotects, 1);
    assert!(to(&out, CLIENT).is_empty(), "the client sees nothing");
    // Its SYN-ACK: Tandem acks it and gives it the log.
    let out = lab.send(Seg {
        seq: 700_000,
        ack: hs.cisn + 1,
        ..Seg::BACKUP_SYNACK
    });
    let to_backup = to(&out, BACKUP);
    assert!(
        to_backup.iter().any(|s| s.payload == REQ),
        "the log: {out:#?}"
    );
    assert!(
        to(&out, CLIENT).is_empty(),
        "the client sees nothing: {out:#?}"
    );
    // It takes the whole log: the flow is protected again.
    lab.send(Seg {
        seq: 700_001,
        ack: c_next,
        ..Seg::BACKUP
    });
    let c = lab.engine.counters();
    assert_eq!((c.reprotected, c.flows_unprotected), (1, 0), "{c:?}");
}

#[test]
fn a_flow_whose_log_passed_its_limit_stays_unprotected_and_is_counted() {
    let mut lab = lab(4);
    request_then_backup_dies(&mut lab);
    assert_eq!(lab.engine.counters().reprotect_beyond_limit, 1);
    let out = backup_comes_back(&mut lab);
    assert!(to(&out, BACKUP).is_empty(), "no replay: {out:#?}");
    let c = lab.engine.counters();
    assert_eq!((c.reprotects, c.flows_unprotected), (0, 1));
}

#[test]
fn a_replica_holding_the_old_connection_is_reset_at_the_sequence_its_challenge_ack_names() {
    let mut lab = lab(1 << 16);
    request_then_backup_dies(&mut lab);
    let hs = Hs::default();
    backup_comes_back(&mut lab);
    // Its old socket (RFC 5961 §4): an ACK of what it expects instead of a SYN-ACK.
    let expects = hs.cisn + 1 + REQ.len() as u32;
    let out = lab.send(Seg {
        seq: hs.bisn + 2,
        ack: expects,
        ..Seg::BACKUP
    });
    let to_backup = to(&out, BACKUP);
    let rst = to_backup
        .iter()
        .find(|s| s.flags.contains(TcpFlags::RST))
        .unwrap_or_else(|| panic!("a RST: {out:#?}"));
    assert_eq!(rst.seq, expects, "exactly where it expects");
    assert!(
        to_backup.iter().any(|s| s.is_syn() && s.seq == hs.cisn),
        "the SYN again: {out:#?}"
    );
}

#[test]
fn a_replay_syn_reset_by_a_replica_that_came_back_is_sent_again_a_few_times() {
    let mut lab = lab(1 << 16);
    request_then_backup_dies(&mut lab);
    let hs = Hs::default();
    backup_comes_back(&mut lab);
    // Its kernel still holds the old connection's state and resets the SYN (RST+ACK of
    // the SYN): Tandem asks again, three times, then gives up on this standby.
    let reset = |lab: &mut Lab| {
        lab.send(Seg {
            seq: 0,
            ack: hs.cisn + 1,
            flags: TcpFlags::RST | TcpFlags::ACK,
            ..Seg::BACKUP
        })
    };
    for k in 0..3 {
        let out = reset(&mut lab);
        assert!(
            to(&out, BACKUP)
                .iter()
                .any(|s| s.is_syn() && s.seq == hs.cisn),
            "SYN again after RST {k}: {out:#?}"
        );
    }
    let out = reset(&mut lab);
    assert!(to(&out, BACKUP).is_empty(), "given up: {out:#?}");
    assert!(
        to(&out, CLIENT).is_empty(),
        "the client sees nothing: {out:#?}"
    );
    let c = lab.engine.counters();
    assert_eq!(
        (c.reprotects_failed, c.flows_lost, c.flows_unprotected),
        (1, 0, 1)
    );
    // Not again until a replica comes up.
    lab.advance(MS);
    lab.engine.request_failover_sweep();
    assert!(to(&lab.poll(), BACKUP).is_empty());
}
