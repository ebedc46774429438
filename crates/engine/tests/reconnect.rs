//! Reconnect mode (DESIGN §2, `replay: stream`): one replica carries each flow; Tandem
//! logs the client's bytes, and when the replica dies opens a connection to another with
//! the client's ISN and options, replays the log, checks the new answer against what the
//! client already has, and splices the rest in. Each test names what it checks.

use tandem_testkit::*;

use tandem_wire::TcpFlags;

/// An answer of `n` bytes that names its server.
fn answer(name: &str, n: usize) -> Vec<u8> {
    name.bytes().cycle().take(n).collect()
}

const REQ_A: &[u8] = b"GET /a\n";
const REQ_B: &[u8] = b"GET /b\n";

/// A reconnect flow with two requests answered by the primary: all of the first answer
/// (300 bytes) and 100 bytes of the second, the client having acked them. Returns the
/// client's and the primary's next sequence numbers at the start, and the answers.
fn two_requests_then_primary_dies(lab: &mut Lab) -> (u32, u32, Vec<u8>) {
    let hs = Hs::default();
    let (c1, p1) = (hs.cisn + 1, hs.pisn + 1);
    let out = lab.send(Seg {
        seq: hs.cisn,
        opts: hs.copts,
        ..Seg::CLIENT_SYN
    });
    assert_eq!(to(&out, PRIMARY).len(), 1, "the SYN to the primary");
    assert!(to(&out, BACKUP).is_empty(), "and to nobody else");
    let out = lab.send(Seg {
        seq: hs.pisn,
        ack: c1,
        window: hs.pwin,
        opts: hs.popts,
        ..Seg::PRIMARY_SYNACK
    });
    let synack = one(&out, CLIENT);
    assert_eq!(synack.seq, hs.pisn);
    lab.send(Seg {
        seq: c1,
        ack: p1,
        opts: Opts::ts(101, 5000),
        ..Seg::CLIENT
    });
    let stream = answer("the primary's words ", 800);
    let out = lab.send(Seg {
        seq: c1,
        ack: p1,
        opts: Opts::ts(102, 5000),
        payload: REQ_A,
        ..Seg::CLIENT
    });
    assert_eq!(one(&out, PRIMARY).payload, REQ_A);
    let out = lab.send(Seg {
        seq: p1,
        ack: c1 + 7,
        opts: Opts::ts(5001, 102),
        payload: &stream[..300],
        ..Seg::PRIMARY
    });
    assert_eq!(one(&out, CLIENT).payload, &stream[..300]);
    lab.send(Seg {
        seq: c1 + 7,
        ack: p1 + 300,
        opts: Opts::ts(103, 5001),
        payload: REQ_B,
        ..Seg::CLIENT
    });
    lab.send(Seg {
        seq: p1 + 300,
        ack: c1 + 14,
        opts: Opts::ts(5002, 103),
        payload: &stream[300..400],
        ..Seg::PRIMARY
    });
    lab.send(Seg {
        seq: c1 + 14,
        ack: p1 + 400,
        opts: Opts::ts(104, 5002),
        ..Seg::CLIENT
    });
    (c1, p1, stream)
}

/// The primary dies; the failover sweep finds it: Tandem's SYN to the backup, with the
/// client's ISN and options. Returns it.
fn fail_primary(lab: &mut Lab) -> Seen {
    lab.kill(R::P);
    lab.engine.request_failover_sweep();
    let out = lab.poll();
    assert!(
        to(&out, CLIENT).is_empty(),
        "the client sees nothing: {out:#?}"
    );
    let syn = one(&out, BACKUP);
    assert!(syn.is_syn(), "{syn:#?}");
    syn
}

/// The backup's SYN-ACK; returns what Tandem sent it: its ACK and the log.
fn backup_answers_syn(lab: &mut Lab, c1: u32) -> Vec<Seen> {
    let out = lab.send(Seg {
        seq: Hs::default().bisn,
        ack: c1,
        opts: Opts::syn(1460, 7, 80_000),
        ..Seg::BACKUP_SYNACK
    });
    to(&out, BACKUP)
}

#[test]
fn a_dead_replicas_flow_is_replayed_to_a_live_one_and_goes_on_byte_exact() {
    let mut lab = Lab::reconnecting();
    let (c1, p1, stream) = two_requests_then_primary_dies(&mut lab);
    let b1 = Hs::default().bisn + 1;
    let syn = fail_primary(&mut lab);
    let hs = Hs::default();
    assert_eq!(
        syn.seq, hs.cisn,
        "the client's ISN: the log keeps its numbers"
    );
    assert_eq!(
        (syn.mss, syn.wscale, syn.sack_ok),
        (Some(1460), Some(7), true)
    );
    assert!(syn.ts.is_some(), "the timestamps the client agreed to");
    // The backup answers 3 ms later: Tandem acks it and replays both requests.
    lab.advance(3 * MS);
    let to_backup = backup_answers_syn(&mut lab, c1);
    assert!(to_backup
        .iter()
        .any(|s| s.payload.is_empty() && s.ack == b1 && s.seq == c1));
    let replayed: Vec<u8> = to_backup.iter().flat_map(|s| s.payload.clone()).collect();
    assert_eq!(replayed, [REQ_A, REQ_B].concat());
    assert_eq!(
        to_backup
            .iter()
            .find(|s| !s.payload.is_empty())
            .map(|s| s.seq),
        Some(c1)
    );
    // It answers both: what the client has is checked and dropped...
    let out = lab.send(Seg {
        seq: b1,
        ack: c1 + 14,
        opts: Opts::ts(80_001, 104),
        payload: &stream[..400],
        ..Seg::BACKUP
    });
    assert!(
        to(&out, CLIENT).iter().all(|s| s.payload.is_empty()),
        "{out:#?}"
    );
    // ... and the rest goes on, in the client's sequence space.
    let out = lab.send(Seg {
        seq: b1 + 400,
        ack: c1 + 14,
        opts: Opts::ts(80_002, 104),
        payload: &stream[400..800],
        ..Seg::BACKUP
    });
    let seg = one(&out, CLIENT);
    assert_eq!(
        (seg.seq, seg.payload.as_slice()),
        (p1 + 400, &stream[400..800])
    );
    assert!(
        seg.ts.is_some_and(|(v, _)| v > 5002),
        "TSval never back: {seg:#?}"
    );
    let c = lab.engine.counters().clone();
    assert_eq!(
        (
            c.reconnects,
            c.reconnects_spliced,
            c.replay_skipped_bytes,
            c.flows_lost
        ),
        (1, 1, 400, 0),
        "{c:#?}"
    );
    assert_eq!(c.replayed_bytes, 14);
    assert_eq!(
        c.reconnect_ns,
        3 * MS,
        "from the replay's SYN to its splice"
    );
    // The client's next request goes to the backup directly, its ack translated.
    let out = lab.send(Seg {
        seq: c1 + 14,
        ack: p1 + 800,
        opts: Opts::ts(105, 80_002u32.wrapping_sub(80_001).wrapping_add(5002)),
        payload: b"GET /c\n",
        ..Seg::CLIENT
    });
    let seg = one(&out, BACKUP);
    assert_eq!(
        (seg.seq, seg.ack, seg.payload.as_slice()),
        (c1 + 14, b1 + 800, &b"GET /c\n"[..])
    );
    assert_eq!(lab.engine.counters().reconnects_in_progress, 0);
}

#[test]
fn a_new_answer_that_differs_from_what_the_client_has_ends_in_a_rst_never_a_splice() {
    let mut lab = Lab::reconnecting();
    let (c1, _, stream) = two_requests_then_primary_dies(&mut lab);
    let b1 = Hs::default().bisn + 1;
    fail_primary(&mut lab);
    backup_answers_syn(&mut lab, c1);
    let mut other = stream.clone();
    other[350] ^= 1;
    let out = lab.send(Seg {
        seq: b1,
        ack: c1 + 14,
        opts: Opts::ts(80_001, 104),
        payload: &other[..800],
        ..Seg::BACKUP
    });
    let to_client = to(&out, CLIENT);
    assert!(
        to_client.iter().all(|s| s.payload.is_empty()),
        "{to_client:#?}"
    );
    assert!(to_client.iter().any(|s| s.flags.contains(TcpFlags::RST)));
    let c = lab.engine.counters().clone();
    assert_eq!(
        (c.reconnects_mismatch, c.reconnects_spliced, c.flows_lost),
        (1, 0, 1)
    );
}

#[test]
fn with_no_other_live_replica_the_client_gets_a_rst_counted() {
    let mut lab = Lab::reconnecting();
    two_requests_then_primary_dies(&mut lab);
    lab.kill(R::B);
    lab.kill(R::P);
    lab.engine.request_failover_sweep();
    let out = lab.poll();
    assert!(to(&out, CLIENT)
        .iter()
        .any(|s| s.flags.contains(TcpFlags::RST)));
    let c = lab.engine.counters().clone();
    assert_eq!(
        (c.reconnects, c.reconnects_no_replica, c.flows_lost),
        (0, 1, 1)
    );
}

#[test]
fn a_new_replica_that_never_answers_the_syn_times_out_into_a_rst() {
    let mut lab = Lab::reconnecting();
    two_requests_then_primary_dies(&mut lab);
    fail_primary(&mut lab);
    lab.advance(60 * MS);
    let out = lab.poll();
    assert!(to(&out, CLIENT)
        .iter()
        .any(|s| s.flags.contains(TcpFlags::RST)));
    let c = lab.engine.counters().clone();
    assert_eq!(
        (c.reconnects_timeout, c.flows_lost, c.reconnects_in_progress),
        (1, 1, 0)
    );
}

#[test]
fn a_lost_replayed_segment_is_sent_again_from_the_new_replicas_ack() {
    let mut lab = Lab::reconnecting();
    let (c1, _, _) = two_requests_then_primary_dies(&mut lab);
    fail_primary(&mut lab);
    backup_answers_syn(&mut lab, c1); // the log, lost on the way
    lab.advance(60 * MS);
    let out = lab.poll();
    let again: Vec<u8> = to(&out, BACKUP)
        .iter()
        .flat_map(|s| s.payload.clone())
        .collect();
    assert_eq!(again, [REQ_A, REQ_B].concat());
}

#[test]
fn a_client_past_the_replay_limit_is_unprotected_and_its_failure_a_counted_rst() {
    let mut lab = Lab::reconnecting();
    let (c1, p1, _) = two_requests_then_primary_dies(&mut lab);
    // The limit is 1 MiB: 1.1 MiB more from the client.
    let chunk = vec![7u8; 1400];
    for k in 0..800u32 {
        lab.send(Seg {
            seq: c1 + 14 + 1400 * k,
            ack: p1 + 400,
            opts: Opts::ts(105 + k, 5002),
            payload: &chunk,
            ..Seg::CLIENT
        });
        lab.send(Seg {
            seq: p1 + 400,
            ack: c1 + 14 + 1400 * (k + 1),
            opts: Opts::ts(5003 + k, 105 + k),
            ..Seg::PRIMARY
        });
    }
    let c = lab.engine.counters().clone();
    assert_eq!((c.replay_logs_ended, c.flows_unprotected), (1, 1));
    lab.kill(R::P);
    lab.engine.request_failover_sweep();
    let out = lab.poll();
    assert!(to(&out, CLIENT)
        .iter()
        .any(|s| s.flags.contains(TcpFlags::RST)));
    assert_eq!(lab.engine.counters().reconnects_overflow, 1);
}

#[test]
fn a_replay_whose_new_replica_keeps_answering_is_not_timed_out() {
    let mut lab = Lab::reconnecting();
    let (c1, _, stream) = two_requests_then_primary_dies(&mut lab);
    let b1 = Hs::default().bisn + 1;
    fail_primary(&mut lab);
    backup_answers_syn(&mut lab, c1);
    for k in 0..8u32 {
        lab.advance(30 * MS);
        let out = lab.poll();
        assert!(
            to(&out, CLIENT)
                .iter()
                .all(|s| !s.flags.contains(TcpFlags::RST)),
            "poll {k}: {out:#?}"
        );
        lab.send(Seg {
            seq: b1 + 50 * k,
            ack: c1 + 14,
            opts: Opts::ts(80_001 + k, 104),
            payload: &stream[50 * k as usize..50 * (k as usize + 1)],
            ..Seg::BACKUP
        });
    }
    assert_eq!(lab.engine.counters().reconnects_timeout, 0);
}

#[test]
fn the_dying_replicas_rst_replays_the_flow_instead_of_resetting_the_client() {
    let mut lab = Lab::reconnecting();
    let (c1, p1, _) = two_requests_then_primary_dies(&mut lab);
    // A killed process's kernel resets its connection, at the sequence the client acked.
    let out = lab.send(Seg {
        seq: p1 + 400,
        flags: TcpFlags::RST,
        opts: Opts::NONE,
        ..Seg::PRIMARY
    });
    assert!(
        to(&out, CLIENT).is_empty(),
        "the client sees nothing: {out:#?}"
    );
    let syn = one(&out, BACKUP);
    assert!(syn.is_syn() && syn.seq == c1 - 1, "{syn:#?}");
    assert_eq!(lab.engine.counters().reconnects, 1);
}

#[test]
fn the_last_replicas_fin_is_held_while_health_decides_then_sent() {
    let mut lab = Lab::reconnecting();
    let (c1, p1, _) = two_requests_then_primary_dies(&mut lab);
    let out = lab.send(Seg {
        seq: p1 + 400,
        ack: c1 + 14,
        flags: TcpFlags::ACK | TcpFlags::FIN,
        opts: Opts::ts(5003, 104),
        ..Seg::PRIMARY
    });
    assert!(
        to(&out, CLIENT)
            .iter()
            .all(|s| !s.flags.contains(TcpFlags::FIN)),
        "held: {out:#?}"
    );
    // Health finds it alive: after fin_hold (100 ms) the FIN goes.
    let mut fin = false;
    for _ in 0..10 {
        lab.advance(20 * MS);
        let out = lab.poll();
        fin |= to(&out, CLIENT)
            .iter()
            .any(|s| s.flags.contains(TcpFlags::FIN) && s.seq == p1 + 400);
    }
    assert!(fin, "the FIN after the hold");
    assert_eq!(lab.engine.counters().reconnects, 0);
}

#[test]
fn a_fin_held_from_a_replica_that_dies_replays_the_flow() {
    let mut lab = Lab::reconnecting();
    let (c1, p1, _) = two_requests_then_primary_dies(&mut lab);
    lab.send(Seg {
        seq: p1 + 400,
        ack: c1 + 14,
        flags: TcpFlags::ACK | TcpFlags::FIN,
        opts: Opts::ts(5003, 104),
        ..Seg::PRIMARY
    });
    let syn = fail_primary(&mut lab);
    assert_eq!(syn.seq, c1 - 1);
    assert_eq!(lab.engine.counters().reconnects, 1);
}
#[test]
fn a_replay_syn_refused_by_the_new_replicas_rst_gives_the_client_a_counted_rst_at_its_sequence() {
    let mut lab = Lab::reconnecting();
    let (c1, p1, _) = two_requests_then_primary_dies(&mut lab);
    fail_primary(&mut lab);
    let out = lab.send(Seg {
        seq: 0,
        ack: c1,
        flags: TcpFlags::RST | TcpFlags::ACK,
        opts: Opts::NONE,
        ..Seg::BACKUP
    });
    let to_client = to(&out, CLIENT);
    let c = lab.engine.counters().clone();
    assert!(
        to_client
            .iter()
            .any(|s| s.flags.contains(TcpFlags::RST) && s.seq == p1 + 400),
        "a RST the client takes: {to_client:#?}"
    );
    assert_eq!(c.flows_lost, 1, "{c:#?}");
}

#[test]
fn a_log_that_overflows_during_a_replay_ends_it_at_once_with_a_rst() {
    let mut lab = Lab::reconnecting();
    let (p, b) = (lab.p, lab.b);
    let cfg = tandem_engine::EngineConfig {
        services: vec![tandem_engine::Service {
            replay: Some(tandem_engine::ReplayConfig {
                limit: 100,
                ..tandem_engine::ReplayConfig::default()
            }),
            ..tandem_testkit::fixture::reconnect(&[p, b])
        }],
        replay_bytes_total: 1 << 20,
        ..config()
    };
    lab.rig = Rig::new(cfg, lab.replicas.clone());
    let (c1, _p1, stream) = two_requests_then_primary_dies(&mut lab);
    let b1 = Hs::default().bisn + 1;
    fail_primary(&mut lab);
    backup_answers_syn(&mut lab, c1);
    // The backup acks the log.
    lab.send(Seg {
        seq: b1,
        ack: c1 + 14,
        opts: Opts::ts(80_001, 104),
        ..Seg::BACKUP
    });
    // The client sends 200 more bytes: past the limit of 100.
    let body = [9u8; 200];
    let out = lab.send(Seg {
        seq: c1 + 14,
        ack: _p1 + 400,
        opts: Opts::ts(105, 5002),
        payload: &body,
        ..Seg::CLIENT
    });
    // The new replica can be given the client's bytes only from the log: a RST at once.
    assert!(
        to(&out, CLIENT)
            .iter()
            .any(|s| s.flags.contains(TcpFlags::RST)),
        "{out:#?}"
    );
    let c = lab.engine.counters().clone();
    assert_eq!(
        (c.reconnects_overflow, c.flows_lost, c.flows),
        (1, 1, 0),
        "{c:#?}"
    );
    let _ = stream;
}
