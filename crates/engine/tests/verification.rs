//! Verified standbys (DESIGN §3.12): a standby takes over only where its output was
//! checked equal to the active's; a flow whose standby said something else gets a RST
//! at failover, never a stream spliced from two servers. Each test names what it checks;
//! the ones with a `trusting` twin fail without the defence.

use tandem_testkit::*;

use tandem_engine::{DropReason, EngineConfig, SignalKind};
use tandem_wire::TcpFlags;

/// Answers of `n` bytes that name the server that wrote them, the same length each.
fn answer(name: &str, n: usize) -> Vec<u8> {
    name.bytes().cycle().take(n).collect()
}

/// Both replicas answer 300 bytes; the backup's differ from the primary's at byte 200.
/// `backup_first`: the backup's answer reaches Tandem first (it is held) or last.
fn diverging(lab: &mut Lab, backup_first: bool) -> (u32, u32, u32) {
    let hs = Hs::default();
    lab.handshake(&hs);
    let (c1, p1, b1) = (hs.cisn + 1, hs.pisn + 1, hs.bisn + 1);
    let primary = answer("primary ", 300);
    let mut backup = primary.clone();
    backup[200..].copy_from_slice(&answer("backup! ", 100));
    let send_primary = |lab: &mut Lab| {
        lab.send(Seg {
            seq: p1,
            ack: c1,
            opts: Opts::ts(5001, 101),
            payload: &primary,
            ..Seg::PRIMARY
        })
    };
    let send_backup = |lab: &mut Lab| {
        lab.send(Seg {
            seq: b1,
            ack: c1,
            opts: Opts::ts(80_001, 101),
            payload: &backup,
            ..Seg::BACKUP
        })
    };
    if backup_first {
        send_backup(lab);
        send_primary(lab);
    } else {
        send_primary(lab);
        send_backup(lab);
    }
    (c1, p1, b1)
}

#[test]
fn a_standby_that_said_something_else_leaves_the_flow_whichever_answer_came_first() {
    for backup_first in [false, true] {
        let mut lab = Lab::new();
        diverging(&mut lab, backup_first);
        let c = lab.engine.counters().clone();
        assert_eq!(c.standbys_diverged, 1, "backup first: {backup_first}");
        assert_eq!(c.flows_unprotected, 1);
        assert!(lab
            .signals
            .iter()
            .any(|s| s.kind == SignalKind::Diverged && s.replica == lab.b));
    }
}

#[test]
fn at_failover_a_flow_whose_standby_diverged_gets_a_rst_never_the_standbys_bytes() {
    let mut lab = Lab::new();
    let (c1, p1, _) = diverging(&mut lab, true);
    lab.kill(R::P);
    let out = lab.send(Seg {
        seq: c1,
        ack: p1 + 100,
        opts: Opts::ts(102, 5001),
        ..Seg::CLIENT
    });
    let to_client = to(&out, CLIENT);
    assert!(
        to_client.iter().all(|s| s.payload.is_empty()),
        "{to_client:#?}"
    );
    assert!(to_client.iter().any(|s| s.flags.contains(TcpFlags::RST)));
    assert_eq!(lab.engine.counters().flows_lost, 1);
}

#[test]
fn trusting_replicas_the_same_failover_splices_the_other_servers_bytes() {
    // The defence's twin: without verification the client reads the backup's words.
    let mut lab = Lab::trusting();
    let (c1, p1, _) = diverging(&mut lab, true);
    assert_eq!(lab.engine.counters().standbys_diverged, 0);
    lab.kill(R::P);
    let out = lab.send(Seg {
        seq: c1,
        ack: p1 + 100,
        opts: Opts::ts(102, 5001),
        ..Seg::CLIENT
    });
    let spliced: Vec<u8> = to(&out, CLIENT)
        .iter()
        .flat_map(|s| s.payload.clone())
        .collect();
    assert!(
        spliced.windows(7).any(|w| w == b"backup!"),
        "{:?}",
        String::from_utf8_lossy(&spliced)
    );
}

#[test]
fn a_standby_behind_takes_over_only_once_it_is_checked_up_to_what_the_client_has() {
    for differs in [false, true] {
        let mut lab = Lab::new();
        let hs = Hs::default();
        lab.handshake(&hs);
        let (c1, p1, b1) = (hs.cisn + 1, hs.pisn + 1, hs.bisn + 1);
        let stream = answer("the same words ", 500);
        let mut backups = stream.clone();
        if differs {
            backups[250] ^= 1;
        }
        // The primary sent 300 bytes, the client has them; the backup only 100.
        for k in 0..3u32 {
            let at = 100 * k as usize;
            lab.send(Seg {
                seq: p1 + 100 * k,
                ack: c1,
                opts: Opts::ts(5001, 101),
                payload: &stream[at..at + 100],
                ..Seg::PRIMARY
            });
        }
        lab.send(Seg {
            seq: b1,
            ack: c1,
            opts: Opts::ts(80_001, 101),
            payload: &backups[..100],
            ..Seg::BACKUP
        });
        lab.kill(R::P);
        lab.engine.request_failover_sweep();
        lab.poll();
        assert_eq!(lab.engine.counters().catch_ups, 1);
        // Its next 100 bytes: checked, the client has them already.
        let out = lab.send(Seg {
            seq: b1 + 100,
            ack: c1,
            opts: Opts::ts(80_002, 101),
            payload: &backups[100..200],
            ..Seg::BACKUP
        });
        assert!(to(&out, CLIENT)
            .iter()
            .all(|s| !s.flags.contains(TcpFlags::RST)));
        // Up to and past what the client has, in one segment.
        let out = lab.send(Seg {
            seq: b1 + 200,
            ack: c1,
            opts: Opts::ts(80_003, 101),
            payload: &backups[200..400],
            ..Seg::BACKUP
        });
        let to_client = to(&out, CLIENT);
        if differs {
            assert!(
                to_client.iter().all(|s| s.payload.is_empty()),
                "{to_client:#?}"
            );
            assert!(to_client.iter().any(|s| s.flags.contains(TcpFlags::RST)));
            assert_eq!(lab.engine.counters().catch_ups_failed, 1);
        } else {
            let got: Vec<u8> = to_client.iter().flat_map(|s| s.payload.clone()).collect();
            assert_eq!(
                got,
                &stream[200..400],
                "the new bytes, after the checked ones"
            );
            assert_eq!(to_client[0].seq, p1 + 200);
        }
    }
}

#[test]
fn a_catch_up_that_never_reaches_what_the_client_has_ends_in_a_rst() {
    let mut lab = Lab::new();
    let hs = Hs::default();
    lab.handshake(&hs);
    let (c1, p1, b1) = (hs.cisn + 1, hs.pisn + 1, hs.bisn + 1);
    lab.send(Seg {
        seq: p1,
        ack: c1,
        opts: Opts::ts(5001, 101),
        payload: &data(300, 0),
        ..Seg::PRIMARY
    });
    lab.send(Seg {
        seq: b1,
        ack: c1,
        opts: Opts::ts(80_001, 101),
        payload: &data(100, 0),
        ..Seg::BACKUP
    });
    lab.kill(R::P);
    lab.engine.request_failover_sweep();
    lab.poll();
    lab.advance(tandem_engine::engine::CATCH_UP_NS + 1_000_000_000);
    let out = lab.poll();
    assert!(to(&out, CLIENT)
        .iter()
        .any(|s| s.flags.contains(TcpFlags::RST)));
    assert_eq!(lab.engine.counters().catch_ups_failed, 1);
}

#[test]
fn a_standby_ahead_past_its_hold_budget_stays_checked_and_takes_over_without_a_reset() {
    // The backup runs 5000 bytes ahead of the primary with room to hold 3000: its output
    // past that is refused before it is checked (it sends it again), never its oldest
    // unchecked held bytes released. Released, they would leave it unverifiable, and
    // the failover a RST.
    let mut lab = Lab::with(EngineConfig {
        hold_bytes_per_flow: 3000,
        ..config()
    });
    let hs = Hs::default();
    lab.handshake(&hs);
    let (c1, p1, b1) = (hs.cisn + 1, hs.pisn + 1, hs.bisn + 1);
    let stream = answer("the same words ", 5000);
    // Sent the `n`th time, segment `k` (a retransmission carries a later TSval).
    let backup = |lab: &mut Lab, k: u32, n: u32| {
        let at = 1000 * k as usize;
        lab.send(Seg {
            seq: b1 + 1000 * k,
            ack: c1,
            opts: Opts::ts(80_001 + k + 10 * n, 101),
            payload: &stream[at..at + 1000],
            ..Seg::BACKUP
        })
    };
    for k in 0..5 {
        backup(&mut lab, k, 0);
    }
    let c = lab.engine.counters().clone();
    assert_eq!(c.drops[DropReason::HoldBudget as usize], 2, "{c:#?}");
    for k in 0..3u32 {
        let at = 1000 * k as usize;
        lab.send(Seg {
            seq: p1 + 1000 * k,
            ack: c1,
            opts: Opts::ts(5001 + k, 101),
            payload: &stream[at..at + 1000],
            ..Seg::PRIMARY
        });
    }
    assert_eq!(lab.engine.counters().standbys_unverifiable, 0);
    lab.kill(R::P);
    lab.engine.request_failover_sweep();
    lab.poll();
    let c = lab.engine.counters().clone();
    assert_eq!(
        (c.flow_failovers, c.flows_lost, c.takeovers_refused),
        (1, 0, 0),
        "{c:#?}"
    );
    // The two refused segments come again, and go to the client after the checked ones.
    let mut got = Vec::new();
    for k in 3..5 {
        let out = backup(&mut lab, k, 1);
        got.extend(to(&out, CLIENT).iter().flat_map(|s| s.payload.clone()));
    }
    assert_eq!(got, &stream[3000..5000]);
}

#[test]
fn a_standby_whose_refused_output_the_client_already_has_is_asked_for_it_at_the_failover() {
    // As above, but the primary sent 4000 bytes: the backup was checked up to 3000, the
    // 1000 after were refused (never acked to it). It takes over catching up, and is
    // acked up to what it digested and asked for the rest at once, not after its timer.
    let mut lab = Lab::with(EngineConfig {
        hold_bytes_per_flow: 3000,
        ..config()
    });
    let hs = Hs::default();
    lab.handshake(&hs);
    let (c1, p1, b1) = (hs.cisn + 1, hs.pisn + 1, hs.bisn + 1);
    let stream = answer("the same words ", 5000);
    let backup = |lab: &mut Lab, k: u32, n: u32| {
        let at = 1000 * k as usize;
        lab.send(Seg {
            seq: b1 + 1000 * k,
            ack: c1,
            opts: Opts::ts(80_001 + k + 10 * n, 101),
            payload: &stream[at..at + 1000],
            ..Seg::BACKUP
        })
    };
    for k in 0..5 {
        backup(&mut lab, k, 0);
    }
    for k in 0..4u32 {
        let at = 1000 * k as usize;
        lab.send(Seg {
            seq: p1 + 1000 * k,
            ack: c1,
            opts: Opts::ts(5001 + k, 101),
            payload: &stream[at..at + 1000],
            ..Seg::PRIMARY
        });
    }
    lab.send(Seg {
        seq: c1,
        ack: p1 + 2000,
        opts: Opts::ts(102, 5004),
        ..Seg::CLIENT
    });
    lab.kill(R::P);
    lab.engine.request_failover_sweep();
    let out = lab.poll();
    assert_eq!(lab.engine.counters().catch_ups, 1);
    let acks: Vec<_> = to(&out, BACKUP)
        .into_iter()
        .filter(|s| s.payload.is_empty() && s.ack == b1 + 3000)
        .collect();
    assert!(acks.len() >= 4, "acked to 3000, then duplicates: {out:#?}");
    let mut got = Vec::new();
    for k in 3..5 {
        let out = backup(&mut lab, k, 1);
        got.extend(to(&out, CLIENT).iter().flat_map(|s| s.payload.clone()));
    }
    assert_eq!(
        got,
        &stream[3000..5000],
        "checked at 4000, then the new bytes"
    );
    let c = lab.engine.counters().clone();
    assert_eq!((c.catch_ups_failed, c.flows_lost), (0, 0), "{c:#?}");
}

#[test]
fn a_closed_flow_whose_standby_diverged_is_not_lost_when_its_active_dies_while_it_lingers() {
    let mut lab = Lab::new();
    let (c1, p1, _) = diverging(&mut lab, true);
    let out = lab.send(Seg {
        seq: p1 + 300,
        ack: c1,
        flags: TcpFlags::ACK | TcpFlags::FIN,
        opts: Opts::ts(5002, 101),
        ..Seg::PRIMARY
    });
    assert!(to(&out, CLIENT)
        .iter()
        .any(|s| s.flags.contains(TcpFlags::FIN)));
    lab.send(Seg {
        seq: c1,
        ack: p1 + 301,
        flags: TcpFlags::ACK | TcpFlags::FIN,
        opts: Opts::ts(102, 5002),
        ..Seg::CLIENT
    });
    lab.send(Seg {
        seq: p1 + 301,
        ack: c1 + 1,
        opts: Opts::ts(5003, 102),
        ..Seg::PRIMARY
    });
    assert_eq!(lab.phase(), tandem_engine::FlowPhase::Closed);
    lab.kill(R::P);
    lab.engine.request_failover_sweep();
    let out = lab.poll();
    assert!(
        to(&out, CLIENT)
            .iter()
            .all(|s| !s.flags.contains(TcpFlags::RST)),
        "{out:#?}"
    );
    assert_eq!(lab.engine.counters().flows_lost, 0);
}

#[test]
fn a_catching_up_standby_whose_output_comes_out_of_order_is_checked_once_the_gap_fills() {
    // The primary sent 300 bytes (the client has them), the backup only 100, then dies.
    // The backup's next segments come out of order: 200..400 before 100..200. The first
    // is held, not dropped, and digested once the gap fills: the catch-up completes
    // without the replica resending all it sent after the gap.
    let mut lab = Lab::new();
    let hs = Hs::default();
    lab.handshake(&hs);
    let (c1, p1, b1) = (hs.cisn + 1, hs.pisn + 1, hs.bisn + 1);
    let stream = answer("the same words ", 400);
    for k in 0..3u32 {
        let at = 100 * k as usize;
        lab.send(Seg {
            seq: p1 + 100 * k,
            ack: c1,
            opts: Opts::ts(5001, 101),
            payload: &stream[at..at + 100],
            ..Seg::PRIMARY
        });
    }
    let backup = |lab: &mut Lab, from: u32, to: u32, ts: u32| {
        lab.send(Seg {
            seq: b1 + from,
            ack: c1,
            opts: Opts::ts(ts, 101),
            payload: &stream[from as usize..to as usize],
            ..Seg::BACKUP
        })
    };
    backup(&mut lab, 0, 100, 80_001);
    lab.kill(R::P);
    lab.engine.request_failover_sweep();
    lab.poll();
    assert_eq!(lab.engine.counters().catch_ups, 1);
    let out = backup(&mut lab, 200, 400, 80_002);
    assert!(
        to(&out, CLIENT).iter().all(|s| s.payload.is_empty()),
        "{out:#?}"
    );
    let mut got = Vec::new();
    let out = backup(&mut lab, 100, 200, 80_003);
    for s in to(&out, CLIENT) {
        assert!(!s.flags.contains(TcpFlags::RST), "{s:#?}");
        let at = s.seq.wrapping_sub(p1) as usize;
        assert_eq!(s.payload, &stream[at..at + s.payload.len()], "at {at}");
        got.push((at, s.payload.len()));
    }
    assert!(
        got.iter().any(|&(at, n)| at + n == 400),
        "the bytes after 300 reach the client: {got:?}"
    );
    let c = lab.engine.counters().clone();
    assert_eq!((c.catch_ups_failed, c.flows_lost), (0, 0), "{c:#?}");
}
