//! One test (or more) per rule of DESIGN §3, each failing if the rule is broken.
//! Segments are built by hand, fed to the engine, and what leaves it is parsed back.

use std::net::Ipv4Addr;
use tandem_testkit::*;

use tandem_engine::{DropReason, EngineConfig, SignalKind};
use tandem_wire::{MacAddr, TcpFlags};

const F: TcpFlags = TcpFlags::FIN;
const RST: TcpFlags = TcpFlags::RST;

// ---- §3.1 handshake ---------------------------------------------------------------------

#[test]
fn synack_waits_for_all_and_options_are_normalised() {
    let mut lab = Lab::new();
    let hs = Hs {
        popts: Opts::syn(1460, 7, 5000),
        bopts: Opts {
            mss: Some(1400),
            wscale: Some(7),
            sack_ok: false,
            ts: Some((80_000, 0)),
        },
        ..Hs::default()
    };
    let synack = lab.handshake(&hs);
    assert_eq!(synack.src, VIP);
    assert_eq!(synack.sport, PORT);
    assert_eq!(synack.dst_mac, CLIENT_MAC);
    assert_eq!(synack.seq, hs.pisn, "the primary's ISN is the visible one");
    assert_eq!(synack.ack, hs.cisn + 1);
    assert_eq!(synack.mss, Some(1400), "MSS is the minimum");
    assert!(!synack.sack_ok, "SACK only if every replica agreed");
    assert_eq!(
        synack.ts.map(|t| t.0),
        Some(5000),
        "timestamps kept: all agreed"
    );
    assert_eq!(synack.wscale, Some(7));
}

#[test]
fn timestamps_are_removed_when_one_replica_lacks_them() {
    let mut lab = Lab::new();
    let hs = Hs {
        bopts: Opts {
            mss: Some(1460),
            wscale: Some(7),
            sack_ok: true,
            ts: None,
        },
        ..Hs::default()
    };
    let synack = lab.handshake(&hs);
    assert_eq!(synack.ts, None);
    assert!(synack.sack_ok);
    // ...and the primary's later segments reach the client without them.
    let out = lab.send(Seg {
        seq: hs.pisn + 1,
        ack: hs.cisn + 1,
        opts: Opts::ts(5001, 101),
        payload: b"hello",
        ..Seg::PRIMARY
    });
    let seg = one(&out, CLIENT);
    assert_eq!(seg.ts, None);
    assert_eq!(seg.payload, b"hello");
}

#[test]
fn primary_that_never_answers_gives_way_to_the_backup() {
    let mut lab = Lab::new();
    let out = lab.send(Seg {
        seq: 7,
        opts: Opts::syn(1460, 7, 1),
        ..Seg::CLIENT_SYN
    });
    assert_eq!(out.len(), 2);
    let out = lab.send(Seg {
        seq: 4000,
        ack: 8,
        opts: Opts::syn(1460, 7, 9),
        ..Seg::BACKUP_SYNACK
    });
    assert!(out.is_empty(), "waits for the primary");
    lab.advance(MS);
    assert!(lab.poll().is_empty(), "still within the wait");
    // The primary is asked again, SYN_RETRIES times, one wait apart.
    for _ in 0..tandem_engine::engine::SYN_RETRIES {
        lab.advance(2 * MS);
        let out = lab.poll();
        let syn = one(&out, PRIMARY);
        assert_eq!((syn.seq, syn.flags), (7, S), "the client's SYN, rebuilt");
        assert_eq!(
            (syn.mss, syn.wscale, syn.sack_ok),
            (Some(1460), Some(7), true)
        );
        assert_eq!(syn.ts, Some((1, 0)));
        assert!(to(&out, CLIENT).is_empty());
    }
    lab.advance(2 * MS);
    let out = lab.poll();
    let synack = one(&out, CLIENT);
    assert_eq!(synack.seq, 4000, "the backup became active");
    let rst = one(&out, PRIMARY);
    assert!(
        rst.flags.contains(RST),
        "the silent primary is reset and dropped"
    );
    // Data now flows from the backup, and the client's ack goes only to it.
    let out = lab.send(Seg {
        seq: 4001,
        ack: 8,
        opts: Opts::ts(10, 2),
        payload: b"abc",
        ..Seg::BACKUP
    });
    assert_eq!(one(&out, CLIENT).payload, b"abc");
    let out = lab.send(Seg {
        seq: 8,
        ack: 4004,
        window: 500,
        opts: Opts::ts(3, 10),
        ..Seg::CLIENT
    });
    assert_eq!(one(&out, BACKUP).ack, 4004);
    assert!(to(&out, PRIMARY).is_empty());
}

#[test]
fn a_lost_syn_to_the_backup_is_repeated_and_the_flow_stays_protected() {
    let mut lab = Lab::new();
    lab.send(Seg {
        seq: 7,
        opts: Opts::syn(1460, 7, 1),
        ..Seg::CLIENT_SYN
    });
    lab.send(Seg {
        seq: 300,
        ack: 8,
        opts: Opts::syn(1460, 7, 9),
        ..Seg::PRIMARY_SYNACK
    });
    lab.advance(3 * MS);
    let out = lab.poll();
    assert_eq!(
        one(&out, BACKUP).flags,
        S,
        "the SYN the backup never got, again"
    );
    let out = lab.send(Seg {
        seq: 9000,
        ack: 8,
        opts: Opts::syn(1460, 7, 50),
        ..Seg::BACKUP_SYNACK
    });
    assert_eq!(one(&out, CLIENT).seq, 300);
    assert_eq!(lab.engine.counters().legs_lost, 0);
}

/// perf/soak.sh found it: a replica that kept a connection after its leg was dropped (its
/// link down for a second) answered a later connection's SYN on the same client port with
/// an ACK of the old one; the flow went on without it, unprotected, and was lost when its
/// other replica failed.
#[test]
fn a_replica_holding_an_older_connection_on_the_port_is_reset_and_answers_the_repeated_syn() {
    let mut lab = Lab::new();
    lab.send(Seg {
        seq: 7,
        opts: Opts::syn(1460, 7, 1),
        ..Seg::CLIENT_SYN
    });
    lab.send(Seg {
        seq: 300,
        ack: 8,
        opts: Opts::syn(1460, 7, 9),
        ..Seg::PRIMARY_SYNACK
    });
    // The backup's old connection on this address and port: its ACK (RFC 5961's
    // challenge ACK to a SYN in an established connection).
    let out = lab.send(Seg {
        seq: 70_000,
        ack: 123_456,
        flags: A,
        ..Seg::BACKUP
    });
    let rst = one(&out, BACKUP);
    assert_eq!((rst.flags, rst.seq), (RST, 123_456), "RFC 9293 §3.10.7.3");
    assert!(to(&out, CLIENT).is_empty());
    assert_eq!(lab.engine.counters().stale_replica_resets, 1);
    lab.advance(3 * MS);
    let out = lab.poll();
    assert_eq!(one(&out, BACKUP).flags, S, "the SYN again");
    let out = lab.send(Seg {
        seq: 9000,
        ack: 8,
        opts: Opts::syn(1460, 7, 50),
        ..Seg::BACKUP_SYNACK
    });
    assert_eq!(one(&out, CLIENT).seq, 300);
    let c = lab.engine.counters();
    assert_eq!((c.legs_lost, c.flows_unprotected), (0, 0), "protected");
    // An ACK of the SYN itself (a SYN-ACK's ACK half, out of order) is no stale one.
    let mut lab = Lab::new();
    lab.send(Seg {
        seq: 7,
        opts: Opts::syn(1460, 7, 1),
        ..Seg::CLIENT_SYN
    });
    let out = lab.send(Seg {
        seq: 9001,
        ack: 8,
        flags: A,
        ..Seg::BACKUP
    });
    assert!(to(&out, BACKUP).is_empty());
    assert_eq!(lab.engine.counters().stale_replica_resets, 0);
}

#[test]
fn primary_answering_late_still_wins_within_the_wait() {
    let mut lab = Lab::new();
    lab.send(Seg {
        seq: 7,
        opts: Opts::syn(1460, 7, 1),
        ..Seg::CLIENT_SYN
    });
    lab.send(Seg {
        seq: 4000,
        ack: 8,
        opts: Opts::syn(1460, 7, 9),
        ..Seg::BACKUP_SYNACK
    });
    lab.advance(MS);
    let out = lab.send(Seg {
        seq: 300,
        ack: 8,
        opts: Opts::syn(1460, 7, 9),
        ..Seg::PRIMARY_SYNACK
    });
    assert_eq!(
        one(&out, CLIENT).seq,
        300,
        "the designated primary is active"
    );
}

// ---- §3.2 sequence and ack --------------------------------------------------------------

#[test]
fn seq_and_ack_translate_across_the_2_32_wrap() {
    let mut lab = Lab::new();
    let hs = Hs {
        cisn: u32::MAX - 5,
        pisn: u32::MAX - 10,
        bisn: 3,
        ..Hs::default()
    };
    lab.handshake(&hs);
    let c1 = hs.cisn.wrapping_add(1);
    let p1 = hs.pisn.wrapping_add(1);
    let b1 = hs.bisn.wrapping_add(1);
    // Client data crosses the wrap; each replica gets its own ack.
    let out = lab.send(Seg {
        seq: c1,
        ack: p1,
        opts: Opts::ts(102, 5000),
        payload: &data(100, 1),
        ..Seg::CLIENT
    });
    assert_eq!(one(&out, PRIMARY).ack, p1);
    assert_eq!(one(&out, BACKUP).ack, b1);
    assert_eq!(
        one(&out, BACKUP).seq,
        c1,
        "client sequence is never translated"
    );
    // Both replicas answer 100 bytes each, starting from their own ISNs.
    let out = lab.send(Seg {
        seq: b1,
        ack: c1.wrapping_add(100),
        opts: Opts::ts(80_001, 102),
        payload: &data(100, 9),
        ..Seg::BACKUP
    });
    assert!(
        to(&out, CLIENT).iter().all(|s| s.payload.is_empty()),
        "standby output is held"
    );
    let out = lab.send(Seg {
        seq: p1,
        ack: c1.wrapping_add(100),
        opts: Opts::ts(5001, 102),
        payload: &data(100, 9),
        ..Seg::PRIMARY
    });
    let seg = one(&out, CLIENT);
    assert_eq!(seg.seq, p1, "visible sequence, wrapping");
    assert_eq!(seg.ack, c1.wrapping_add(100));
    // The client's ack of those bytes reaches the backup translated into its space.
    let out = lab.send(Seg {
        seq: c1.wrapping_add(100),
        ack: p1.wrapping_add(100),
        opts: Opts::ts(103, 5001),
        ..Seg::CLIENT
    });
    assert_eq!(one(&out, BACKUP).ack, b1.wrapping_add(100));
    assert_eq!(one(&out, PRIMARY).ack, p1.wrapping_add(100));
}

#[test]
fn backup_ahead_of_primary_is_held_then_released_by_the_client_ack() {
    let mut lab = Lab::new();
    let hs = Hs::default();
    lab.handshake(&hs);
    let (c1, p1, b1) = (hs.cisn + 1, hs.pisn + 1, hs.bisn + 1);
    lab.send(Seg {
        seq: b1,
        ack: c1,
        opts: Opts::ts(80_001, 101),
        payload: &data(300, 3),
        ..Seg::BACKUP
    });
    assert_eq!(lab.engine.counters().held_bytes, 300);
    let out = lab.send(Seg {
        seq: p1,
        ack: c1,
        opts: Opts::ts(5001, 101),
        payload: &data(300, 3),
        ..Seg::PRIMARY
    });
    assert_eq!(one(&out, CLIENT).payload, data(300, 3));
    lab.send(Seg {
        seq: c1,
        ack: p1 + 300,
        opts: Opts::ts(102, 5001),
        ..Seg::CLIENT
    });
    assert_eq!(
        lab.engine.counters().held_bytes,
        0,
        "released once the client acked"
    );
}

#[test]
fn primary_ahead_of_backup_the_backup_is_acked_only_up_to_what_it_sent() {
    let mut lab = Lab::new();
    let hs = Hs::default();
    lab.handshake(&hs);
    let (c1, p1, b1) = (hs.cisn + 1, hs.pisn + 1, hs.bisn + 1);
    lab.send(Seg {
        seq: p1,
        ack: c1,
        opts: Opts::ts(5001, 101),
        payload: &data(200, 3),
        ..Seg::PRIMARY
    });
    lab.send(Seg {
        seq: b1,
        ack: c1,
        opts: Opts::ts(80_001, 101),
        payload: &data(100, 3),
        ..Seg::BACKUP
    });
    let out = lab.send(Seg {
        seq: c1,
        ack: p1 + 200,
        opts: Opts::ts(102, 5001),
        ..Seg::CLIENT
    });
    assert_eq!(one(&out, PRIMARY).ack, p1 + 200);
    assert_eq!(
        one(&out, BACKUP).ack,
        b1 + 100,
        "§3.7: never ack unsent data"
    );
    // The backup catches up: the client already has those bytes, so Tandem acks them.
    let out = lab.send(Seg {
        seq: b1 + 100,
        ack: c1,
        opts: Opts::ts(80_002, 101),
        payload: &data(100, 103),
        ..Seg::BACKUP
    });
    assert!(to(&out, CLIENT).is_empty(), "not sent to the client twice");
    let ack = one(&out, BACKUP);
    assert_eq!(ack.ack, b1 + 200);
    assert_eq!(ack.src, CLIENT);
    assert!(ack.payload.is_empty());
    assert_eq!(lab.engine.counters().held_bytes, 0);
}

// ---- §3.3 timestamps --------------------------------------------------------------------

#[test]
fn timestamps_translate_per_replica_clock() {
    let mut lab = Lab::new();
    let hs = Hs::default(); // primary clock 5000, backup 80000 at the SYN-ACK
    lab.handshake(&hs);
    let (c1, p1) = (hs.cisn + 1, hs.pisn + 1);
    let out = lab.send(Seg {
        seq: c1,
        ack: p1,
        opts: Opts::ts(110, 5000),
        payload: b"x",
        ..Seg::CLIENT
    });
    assert_eq!(one(&out, PRIMARY).ts, Some((110, 5000)));
    assert_eq!(
        one(&out, BACKUP).ts,
        Some((110, 80_000)),
        "TSecr into the backup's clock"
    );
    let out = lab.send(Seg {
        seq: p1,
        ack: c1 + 1,
        opts: Opts::ts(5007, 110),
        payload: b"y",
        ..Seg::PRIMARY
    });
    assert_eq!(one(&out, CLIENT).ts, Some((5007, 110)));
}

#[test]
fn failover_rebases_timestamps_so_the_client_never_sees_them_go_back() {
    let mut lab = Lab::new();
    let hs = Hs::default();
    lab.handshake(&hs);
    let (c1, p1, b1) = (hs.cisn + 1, hs.pisn + 1, hs.bisn + 1);
    // The primary's clock runs far ahead; the backup's barely moves.
    let out = lab.send(Seg {
        seq: p1,
        ack: c1,
        opts: Opts::ts(9000, 101),
        payload: &data(10, 0),
        ..Seg::PRIMARY
    });
    assert_eq!(one(&out, CLIENT).ts.map(|t| t.0), Some(9000));
    lab.send(Seg {
        seq: b1,
        ack: c1,
        opts: Opts::ts(80_010, 101),
        payload: &data(10, 0),
        ..Seg::BACKUP
    });
    lab.send(Seg {
        seq: b1 + 10,
        ack: c1,
        opts: Opts::ts(80_020, 101),
        payload: &data(10, 10),
        ..Seg::BACKUP
    });
    lab.kill(R::P);
    let out = lab.send(Seg {
        seq: c1,
        ack: p1 + 10,
        opts: Opts::ts(120, 9000),
        ..Seg::CLIENT
    });
    let seg = one(&out, CLIENT);
    assert_eq!(seg.payload, data(10, 10), "held data replayed at once");
    let tsval = seg.ts.expect("ts").0;
    assert!(
        tsval >= 9000,
        "TSval {tsval} went backwards: PAWS would drop it"
    );
    // The backup's later segments keep increasing from there.
    let out = lab.send(Seg {
        seq: b1 + 20,
        ack: c1,
        opts: Opts::ts(80_021, 120),
        payload: &data(5, 20),
        ..Seg::BACKUP
    });
    assert!(one(&out, CLIENT).ts.expect("ts").0 > tsval);
    // The client's TSecr is mapped back into the backup's clock consistently.
    let out = lab.send(Seg {
        seq: c1,
        ack: p1 + 25,
        opts: Opts::ts(121, tsval),
        ..Seg::CLIENT
    });
    assert_eq!(one(&out, BACKUP).ts, Some((121, 80_020)));
}

/// The client sends `sent`, which both replicas ack, then `again` at the same sequence
/// number with its clock moved on (TSval 130); the backup, behind, catches up and Tandem
/// acks it on the client's behalf. Returns that ack's TSval.
fn tsval_of_tandems_ack_after_a_retransmission(sent: &[u8], again: &[u8]) -> u32 {
    let mut lab = Lab::new();
    let hs = Hs::default();
    lab.handshake(&hs);
    let (c1, p1, b1) = (hs.cisn + 1, hs.pisn + 1, hs.bisn + 1);
    let n = sent.len() as u32;
    lab.send(Seg {
        seq: p1,
        ack: c1,
        opts: Opts::ts(5001, 101),
        payload: &data(200, 3),
        ..Seg::PRIMARY
    });
    lab.send(Seg {
        seq: b1,
        ack: c1,
        opts: Opts::ts(80_001, 101),
        payload: &data(100, 3),
        ..Seg::BACKUP
    });
    let x = Seg {
        seq: c1,
        ack: p1 + 200,
        opts: Opts::ts(102, 5001),
        payload: sent,
        ..Seg::CLIENT
    };
    lab.send(x);
    for (seq, ts, from) in [
        (p1 + 200, 5002, Seg::PRIMARY),
        (b1 + 100, 80_002, Seg::BACKUP),
    ] {
        lab.send(Seg {
            seq,
            ack: c1 + n,
            opts: Opts::ts(ts, 102),
            ..from
        });
    }
    let out = lab.send(Seg {
        opts: Opts::ts(130, 5002),
        payload: again,
        ..x
    });
    assert_eq!(
        one(&out, BACKUP).ts.map(|t| t.0),
        Some(130),
        "passed on as it is"
    );
    let out = lab.send(Seg {
        seq: b1 + 100,
        ack: c1 + n,
        opts: Opts::ts(80_003, 130),
        payload: &data(100, 103),
        ..Seg::BACKUP
    });
    let ack = one(&out, BACKUP);
    assert_eq!(ack.ack, b1 + 200);
    ack.ts.expect("ts").0
}

#[test]
fn a_client_retransmission_with_a_newer_timestamp_raises_the_tsval_of_tandems_own_acks() {
    // RFC 7323 §4.3, as Linux applies it: a replica takes the TSval of a retransmission
    // that ends at what it acked as its TS.Recent. Tandem's own acks to it must not carry
    // an older TSval, or its PAWS check drops them (the lab's catch-up stalled so, found
    // with tcpdump).
    let tsval = tsval_of_tandems_ack_after_a_retransmission(b"x", b"x");
    assert!(
        tsval >= 130,
        "TSval {tsval} is older than the replica's TS.Recent (130)"
    );
}

#[test]
fn a_retransmission_ending_before_the_ack_leaves_the_tsval_of_tandems_own_acks() {
    // No replica takes that one's TSval; nor does Tandem, or a forged segment a window
    // back could set the TSval the replicas get from Tandem.
    let tsval = tsval_of_tandems_ack_after_a_retransmission(b"xy", b"x");
    assert_eq!(tsval, 102);
}

// ---- §3.4 window scale ------------------------------------------------------------------

#[test]
fn windows_of_replicas_with_different_scales_are_rescaled() {
    let mut lab = Lab::new();
    let hs = Hs {
        popts: Opts::syn(1460, 7, 5000),
        bopts: Opts::syn(1460, 2, 80_000),
        ..Hs::default()
    };
    let synack = lab.handshake(&hs);
    assert_eq!(synack.wscale, Some(7), "the client sees the active's scale");
    let (c1, p1, b1) = (hs.cisn + 1, hs.pisn + 1, hs.bisn + 1);
    lab.send(Seg {
        seq: b1,
        ack: c1,
        window: 1000, // 4000 bytes
        opts: Opts::ts(80_001, 101),
        ..Seg::BACKUP
    });
    let out = lab.send(Seg {
        seq: p1,
        ack: c1,
        window: 100, // 12800 bytes
        opts: Opts::ts(5001, 101),
        payload: b"z",
        ..Seg::PRIMARY
    });
    let seg = one(&out, CLIENT);
    assert_eq!(
        seg.window,
        4000 >> 7,
        "the smaller right edge, in the client's scale"
    );
}

// ---- SACK -------------------------------------------------------------------------------

#[test]
fn client_sack_blocks_are_translated_per_replica() {
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
        payload: &data(300, 0),
        ..Seg::BACKUP
    });
    let out = lab.send(Seg {
        seq: c1,
        ack: p1 + 100,
        opts: Opts::ts(105, 5001),
        sack: &[(p1 + 200, p1 + 300)],
        ..Seg::CLIENT
    });
    assert_eq!(one(&out, PRIMARY).sack, vec![(p1 + 200, p1 + 300)]);
    assert_eq!(one(&out, BACKUP).sack, vec![(b1 + 200, b1 + 300)]);
}

// ---- §3.5 ack and window synchronisation ------------------------------------------------

#[test]
fn client_is_told_the_minimum_ack_and_a_standby_ack_raising_it_makes_a_pure_ack() {
    let mut lab = Lab::new();
    let hs = Hs::default();
    lab.handshake(&hs);
    let (c1, p1, b1) = (hs.cisn + 1, hs.pisn + 1, hs.bisn + 1);
    lab.send(Seg {
        seq: c1,
        ack: p1,
        opts: Opts::ts(110, 5000),
        payload: &data(100, 0),
        ..Seg::CLIENT
    });
    // The primary acks and answers; the backup has not acked yet.
    let out = lab.send(Seg {
        seq: p1,
        ack: c1 + 100,
        opts: Opts::ts(5001, 110),
        payload: b"resp",
        ..Seg::PRIMARY
    });
    let seg = one(&out, CLIENT);
    assert_eq!(seg.ack, c1, "not acked until every live replica has it");
    // The backup's ack raises the minimum: Tandem sends the client a pure ACK itself.
    let out = lab.send(Seg {
        seq: b1,
        ack: c1 + 100,
        opts: Opts::ts(80_001, 110),
        ..Seg::BACKUP
    });
    let ack = one(&out, CLIENT);
    assert_eq!(ack.ack, c1 + 100);
    assert_eq!(ack.seq, p1 + 4, "at the client's next expected sequence");
    assert!(ack.payload.is_empty());
    assert!(ack.ts.is_some());
    // A redundant pure ACK from the primary tells the client nothing and is dropped.
    let out = lab.send(Seg {
        seq: p1 + 4,
        ack: c1 + 100,
        opts: Opts::ts(5002, 110),
        ..Seg::PRIMARY
    });
    assert!(out.is_empty());
}

// ---- §3.6 hold queue and failover replay ------------------------------------------------

/// The primary sent 100 bytes, the backup 300 (200 held past what the client acked),
/// the client acked the primary's 100; then the primary dies. Returns the lab and the
/// client's, primary's and backup's first sequence numbers.
fn backup_ahead_then_the_primary_dies() -> (Lab, u32, u32, u32) {
    let mut lab = Lab::new();
    let hs = Hs::default();
    lab.handshake(&hs);
    let (c1, p1, b1) = (hs.cisn + 1, hs.pisn + 1, hs.bisn + 1);
    lab.send(Seg {
        seq: p1,
        ack: c1,
        opts: Opts::ts(5001, 101),
        payload: &data(100, 0),
        ..Seg::PRIMARY
    });
    for k in 0..3u32 {
        lab.send(Seg {
            seq: b1 + 100 * k,
            ack: c1,
            opts: Opts::ts(80_001, 101),
            payload: &data(100, (100 * k) as u8),
            ..Seg::BACKUP
        });
    }
    lab.send(Seg {
        seq: c1,
        ack: p1 + 100,
        opts: Opts::ts(102, 5001),
        ..Seg::CLIENT
    });
    lab.kill(R::P);
    (lab, c1, p1, b1)
}

#[test]
fn held_standby_output_is_replayed_translated_on_failover() {
    let (mut lab, _c1, p1, _b1) = backup_ahead_then_the_primary_dies();
    // Idle flow: the control core asks for a sweep; the held bytes go out at once.
    lab.engine.request_failover_sweep();
    let out = lab.poll();
    let segs = to(&out, CLIENT);
    let payload: Vec<u8> = segs.iter().flat_map(|s| s.payload.clone()).collect();
    assert_eq!(payload, [data(100, 100), data(100, 200)].concat());
    assert_eq!(segs[0].seq, p1 + 100, "continues the visible stream");
    assert_eq!(segs[1].seq, p1 + 200);
    assert!(segs.iter().all(|s| s.src == VIP && s.dst_mac == CLIENT_MAC));
    assert_eq!(lab.engine.counters().flow_failovers, 1);
    assert_eq!(lab.engine.counters().replayed_segments, 2);
}

#[test]
fn a_replayed_copy_lost_on_the_way_to_the_client_goes_again_on_its_third_duplicate_ack() {
    let (mut lab, c1, p1, _b1) = backup_ahead_then_the_primary_dies();
    lab.engine.request_failover_sweep();
    let out = lab.poll();
    assert_eq!(to(&out, CLIENT).len(), 2, "the held copies went once");
    // The first copy was lost: the client's acks stay where they were.
    let dup = |lab: &mut Lab, ts: u32| {
        lab.send(Seg {
            seq: c1,
            ack: p1 + 100,
            opts: Opts::ts(ts, 5001),
            ..Seg::CLIENT
        })
    };
    assert!(to(&dup(&mut lab, 103), CLIENT).is_empty());
    assert!(to(&dup(&mut lab, 104), CLIENT).is_empty());
    let out = dup(&mut lab, 105);
    let again = one(&out, CLIENT);
    assert_eq!(again.seq, p1 + 100);
    assert_eq!(
        again.payload,
        data(100, 100),
        "Tandem's held copy, sent again"
    );
    assert_eq!(lab.engine.counters().held_resent, 1);
    // Once the client acks them, the copies are released.
    lab.send(Seg {
        seq: c1,
        ack: p1 + 300,
        opts: Opts::ts(106, 5001),
        ..Seg::CLIENT
    });
    assert_eq!(lab.engine.counters().held_bytes, 0);
}

#[test]
fn a_replayed_copy_the_client_never_acks_goes_again_after_200_ms() {
    // The last copy lost draws no duplicate ack: a retransmission timer's work.
    let mut lab = Lab::new();
    let hs = Hs::default();
    lab.handshake(&hs);
    let (c1, p1, b1) = (hs.cisn + 1, hs.pisn + 1, hs.bisn + 1);
    lab.send(Seg {
        seq: b1,
        ack: c1,
        opts: Opts::ts(80_001, 101),
        payload: &data(100, 0),
        ..Seg::BACKUP
    });
    lab.kill(R::P);
    lab.engine.request_failover_sweep();
    let out = lab.poll();
    assert_eq!(
        one(&out, CLIENT).payload,
        data(100, 0),
        "the held copy went"
    );
    lab.advance(150 * MS);
    assert!(to(&lab.poll(), CLIENT).is_empty(), "not before 200 ms");
    let mut again = Vec::new();
    for _ in 0..20 {
        lab.advance(10 * MS);
        again.extend(to(&lab.poll(), CLIENT));
        if !again.is_empty() {
            break;
        }
    }
    assert_eq!(again.len(), 1, "sent again once the timer ran out");
    assert_eq!(again[0].seq, p1);
    assert_eq!(again[0].payload, data(100, 0));
}

#[test]
fn failover_on_the_flows_next_packet_without_a_sweep() {
    let mut lab = Lab::new();
    let hs = Hs::default();
    lab.handshake(&hs);
    let (c1, p1, b1) = (hs.cisn + 1, hs.pisn + 1, hs.bisn + 1);
    lab.send(Seg {
        seq: b1,
        ack: c1,
        opts: Opts::ts(80_001, 101),
        payload: &data(50, 0),
        ..Seg::BACKUP
    });
    lab.kill(R::P);
    let out = lab.send(Seg {
        seq: c1,
        ack: p1,
        opts: Opts::ts(102, 5000),
        payload: b"more",
        ..Seg::CLIENT
    });
    assert_eq!(one(&out, CLIENT).payload, data(50, 0));
    assert!(to(&out, PRIMARY).is_empty(), "nothing to the dead primary");
    assert_eq!(one(&out, BACKUP).payload, b"more");
}

#[test]
fn over_budget_standby_output_is_refused_or_released_and_failover_asks_for_retransmission() {
    let cfg = EngineConfig {
        hold_bytes_per_flow: 1000,
        ..config()
    };
    let mut lab = Lab::with(cfg);
    let hs = Hs::default();
    lab.handshake(&hs);
    let (c1, p1, b1) = (hs.cisn + 1, hs.pisn + 1, hs.bisn + 1);
    for k in 0..3u32 {
        lab.send(Seg {
            seq: b1 + 600 * k,
            ack: c1,
            opts: Opts::ts(80_001, 101),
            payload: &data(600, 0),
            ..Seg::BACKUP
        });
    }
    assert!(lab.engine.counters().dropped(DropReason::HoldBudget) >= 2);
    assert!(lab.engine.counters().held_bytes <= 1000);
    lab.send(Seg {
        seq: c1,
        ack: p1,
        opts: Opts::ts(102, 5000),
        ..Seg::CLIENT
    });
    lab.kill(R::P);
    let out = lab.send(Seg {
        seq: c1,
        ack: p1,
        opts: Opts::ts(103, 5000),
        ..Seg::CLIENT
    });
    let dupacks: Vec<_> = to(&out, BACKUP)
        .into_iter()
        .filter(|s| s.payload.is_empty() && s.ack == b1)
        .collect();
    assert!(dupacks.len() >= 3, "three duplicate acks, got {dupacks:#?}");
}

#[test]
fn a_catching_up_replica_past_a_gap_is_told_by_a_sack_block_what_tandem_holds() {
    // Linux repairs a hole from SACK blocks, not from duplicate acks alone: without the
    // block it waits for its retransmission timer, and the catch-up with it.
    let mut lab = Lab::new();
    let hs = Hs::default();
    lab.handshake(&hs);
    let (c1, p1, b1) = (hs.cisn + 1, hs.pisn + 1, hs.bisn + 1);
    let out = lab.send(Seg {
        seq: p1,
        ack: c1,
        opts: Opts::ts(5001, 101),
        payload: &data(300, 0),
        ..Seg::PRIMARY
    });
    assert_eq!(one(&out, CLIENT).payload, data(300, 0));
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
    assert_eq!(
        lab.engine.counters().catch_ups,
        1,
        "the backup catches up to 300"
    );
    // Its bytes 100..200 are lost on the way; 200..300 arrive.
    let out = lab.send(Seg {
        seq: b1 + 200,
        ack: c1,
        opts: Opts::ts(80_002, 101),
        payload: &data(100, 200),
        ..Seg::BACKUP
    });
    assert!(to(&out, CLIENT).is_empty(), "not checked yet");
    let dupack = one(&out, BACKUP);
    assert_eq!(dupack.ack, b1 + 100);
    assert_eq!(dupack.sack, vec![(b1 + 200, b1 + 300)]);
    // The gap comes: checked at the primary's end, the client lacks nothing new.
    lab.send(Seg {
        seq: b1 + 100,
        ack: c1,
        opts: Opts::ts(80_003, 101),
        payload: &data(100, 100),
        ..Seg::BACKUP
    });
    assert_eq!(lab.engine.counters().catch_ups_failed, 0);
    assert_eq!(lab.engine.counters().flows_lost, 0);
}

// ---- §3.8 FIN and RST -------------------------------------------------------------------

#[test]
fn fin_is_forwarded_only_when_every_replica_sent_it_at_the_same_place() {
    let mut lab = Lab::new();
    let hs = Hs::default();
    lab.handshake(&hs);
    let (c1, p1, b1) = (hs.cisn + 1, hs.pisn + 1, hs.bisn + 1);
    let out = lab.send(Seg {
        seq: p1,
        ack: c1,
        flags: A | F,
        opts: Opts::ts(5001, 101),
        payload: b"bye",
        ..Seg::PRIMARY
    });
    let seg = one(&out, CLIENT);
    assert_eq!(seg.payload, b"bye");
    assert!(
        !seg.flags.contains(F),
        "the data goes, the lone FIN does not"
    );
    let out = lab.send(Seg {
        seq: b1,
        ack: c1,
        flags: A | F,
        opts: Opts::ts(80_001, 101),
        payload: b"bye",
        ..Seg::BACKUP
    });
    let fin = one(&out, CLIENT);
    assert!(fin.flags.contains(F));
    assert_eq!(fin.seq, p1 + 3);
    // Client acks the FIN and closes its side; both replicas ack: the flow closes, and
    // goes away after the linger time.
    lab.send(Seg {
        seq: c1,
        ack: p1 + 4,
        flags: A | F,
        opts: Opts::ts(102, 5001),
        ..Seg::CLIENT
    });
    lab.send(Seg {
        seq: p1 + 4,
        ack: c1 + 1,
        opts: Opts::ts(5002, 102),
        ..Seg::PRIMARY
    });
    lab.send(Seg {
        seq: b1 + 4,
        ack: c1 + 1,
        opts: Opts::ts(80_002, 102),
        ..Seg::BACKUP
    });
    assert_eq!(lab.engine.flows().len(), 1, "lingers");
    lab.advance(3_000 * MS);
    for _ in 0..10 {
        lab.poll();
    }
    assert_eq!(lab.engine.flows().len(), 0);
}

/// perf/soak.sh found it: a standby that goes silent after both sides sent their FIN,
/// before it acked the client's, held the flow open (established, idle, until the idle
/// timeout) once it was found down: the close was checked on segments only.
#[test]
fn a_standby_lost_after_both_sides_closed_lets_the_flow_close() {
    let mut lab = Lab::new();
    let hs = Hs::default();
    lab.handshake(&hs);
    let (c1, p1, b1) = (hs.cisn + 1, hs.pisn + 1, hs.bisn + 1);
    // Both replicas close first: the FIN reaches the client.
    lab.send(Seg {
        seq: p1,
        ack: c1,
        flags: A | F,
        opts: Opts::ts(5001, 101),
        ..Seg::PRIMARY
    });
    let out = lab.send(Seg {
        seq: b1,
        ack: c1,
        flags: A | F,
        opts: Opts::ts(80_001, 101),
        ..Seg::BACKUP
    });
    assert!(one(&out, CLIENT).flags.contains(F));
    // The client acks it and closes its side; the primary acks the client's FIN, the
    // backup never does: it went silent.
    lab.send(Seg {
        seq: c1,
        ack: p1 + 1,
        flags: A | F,
        opts: Opts::ts(102, 5001),
        ..Seg::CLIENT
    });
    lab.send(Seg {
        seq: p1 + 1,
        ack: c1 + 1,
        opts: Opts::ts(5002, 102),
        ..Seg::PRIMARY
    });
    assert_eq!(lab.phase(), tandem_engine::FlowPhase::Established);
    // Found down: every live replica has acked the client's FIN, so the flow is closed,
    // lingers, and goes.
    lab.kill(R::B);
    let out = lab.poll();
    let ack = one(&out, CLIENT);
    assert_eq!(ack.ack, c1 + 1, "the client's FIN is acked now");
    assert_eq!(lab.phase(), tandem_engine::FlowPhase::Closed);
    lab.advance(3_000 * MS);
    for _ in 0..10 {
        lab.poll();
    }
    assert_eq!(lab.engine.flows().len(), 0);
    let c = lab.engine.counters();
    assert_eq!((c.flows_lost, c.idle_resets), (0, 0));
}

#[test]
fn a_fin_overtaken_by_the_other_replicas_data_is_divergence() {
    let mut lab = Lab::new();
    let hs = Hs::default();
    lab.handshake(&hs);
    let (c1, p1, b1) = (hs.cisn + 1, hs.pisn + 1, hs.bisn + 1);
    // The primary's process dies: its kernel sends a FIN after 10 bytes.
    lab.send(Seg {
        seq: p1,
        ack: c1,
        flags: A | F,
        opts: Opts::ts(5001, 101),
        payload: &data(10, 0),
        ..Seg::PRIMARY
    });
    // The backup goes on past that point: the primary diverged.
    let out = lab.send(Seg {
        seq: b1,
        ack: c1,
        opts: Opts::ts(80_001, 101),
        payload: &data(50, 0),
        ..Seg::BACKUP
    });
    assert!(lab
        .signals
        .iter()
        .any(|s| s.replica == lab.p && s.kind == SignalKind::UnmatchedFin));
    let segs = to(&out, CLIENT);
    let payload: Vec<u8> = segs.iter().flat_map(|s| s.payload.clone()).collect();
    assert_eq!(
        payload,
        data(50, 0)[..].to_vec(),
        "the backup's bytes, from the visible start"
    );
    assert!(segs.iter().all(|s| !s.flags.contains(F)));
}

#[test]
fn unmatched_replica_rst_kills_that_leg_only() {
    let mut lab = Lab::new();
    let hs = Hs::default();
    lab.handshake(&hs);
    let (c1, p1, b1) = (hs.cisn + 1, hs.pisn + 1, hs.bisn + 1);
    let out = lab.send(Seg {
        seq: b1,
        ack: c1,
        flags: RST | A,
        window: 0,
        ..Seg::BACKUP
    });
    assert!(to(&out, CLIENT).is_empty(), "not forwarded");
    assert!(lab
        .signals
        .iter()
        .any(|s| s.replica == lab.b && s.kind == SignalKind::UnmatchedRst));
    let out = lab.send(Seg {
        seq: c1,
        ack: p1,
        opts: Opts::ts(102, 5000),
        payload: b"q",
        ..Seg::CLIENT
    });
    assert_eq!(to(&out, BACKUP).len(), 0);
    assert_eq!(to(&out, PRIMARY).len(), 1);
    // With one leg left, its ack alone is the synchronised ack.
    let out = lab.send(Seg {
        seq: p1,
        ack: c1 + 1,
        opts: Opts::ts(5001, 102),
        payload: b"a",
        ..Seg::PRIMARY
    });
    assert_eq!(one(&out, CLIENT).ack, c1 + 1);
    // The last live replica's RST is forwarded and ends the flow.
    let out = lab.send(Seg {
        seq: p1 + 1,
        ack: c1 + 1,
        flags: RST | A,
        window: 0,
        ..Seg::PRIMARY
    });
    assert!(one(&out, CLIENT).flags.contains(RST));
    assert_eq!(lab.engine.flows().len(), 0);
}

#[test]
fn client_rst_goes_to_every_replica_and_ends_the_flow() {
    let mut lab = Lab::new();
    let hs = Hs::default();
    lab.handshake(&hs);
    let out = lab.send(Seg {
        seq: hs.cisn + 1,
        ack: hs.pisn + 1,
        flags: RST | A,
        window: 0,
        ..Seg::CLIENT
    });
    assert!(one(&out, PRIMARY).flags.contains(RST));
    assert!(one(&out, BACKUP).flags.contains(RST));
    assert_eq!(lab.engine.flows().len(), 0);
}

// ---- §3.9 failover ----------------------------------------------------------------------

#[test]
fn a_dead_standby_changes_nothing_for_the_client() {
    let mut lab = Lab::new();
    let hs = Hs::default();
    lab.handshake(&hs);
    let (c1, p1) = (hs.cisn + 1, hs.pisn + 1);
    lab.kill(R::B);
    let out = lab.send(Seg {
        seq: c1,
        ack: p1,
        opts: Opts::ts(102, 5000),
        payload: b"req",
        ..Seg::CLIENT
    });
    assert_eq!(to(&out, PRIMARY).len(), 1);
    assert!(to(&out, BACKUP).is_empty());
    let out = lab.send(Seg {
        seq: p1,
        ack: c1 + 3,
        opts: Opts::ts(5001, 102),
        payload: b"resp",
        ..Seg::PRIMARY
    });
    let seg = one(&out, CLIENT);
    assert_eq!(
        (seg.seq, seg.ack),
        (p1, c1 + 3),
        "the primary alone sets the ack now"
    );
    assert_eq!(lab.engine.counters().legs_lost, 1);
    assert_eq!(lab.engine.counters().flow_failovers, 0);
    assert_eq!(
        lab.engine.counters().flows_unprotected,
        1,
        "the flow runs on without a standby, and says so"
    );
    // The flow ends (idle timeout here), and with it the count.
    lab.advance(301_000 * MS);
    lab.poll();
    assert_eq!(lab.engine.flows().len(), 0);
    assert_eq!(lab.engine.counters().flows_unprotected, 0);
}

#[test]
fn losing_every_replica_resets_the_client() {
    let mut lab = Lab::new();
    let hs = Hs::default();
    lab.handshake(&hs);
    lab.kill(R::P);
    lab.kill(R::B);
    let out = lab.send(Seg {
        seq: hs.cisn + 1,
        ack: hs.pisn + 1,
        opts: Opts::ts(102, 5000),
        payload: b"x",
        ..Seg::CLIENT
    });
    let rst = one(&out, CLIENT);
    assert!(rst.flags.contains(RST));
    assert_eq!(rst.seq, hs.pisn + 1);
    assert_eq!(lab.engine.flows().len(), 0);
    assert_eq!(lab.engine.counters().flows_lost, 1);
}

#[test]
fn a_replica_that_comes_back_serves_new_flows_only() {
    let mut lab = Lab::new();
    let hs = Hs::default();
    lab.handshake(&hs);
    lab.kill(R::B);
    lab.replicas.set_health(lab.b, tandem_engine::Health::Up);
    let out = lab.send(Seg {
        seq: hs.cisn + 1,
        ack: hs.pisn + 1,
        opts: Opts::ts(102, 5000),
        payload: b"x",
        ..Seg::CLIENT
    });
    assert!(
        to(&out, BACKUP).is_empty(),
        "the old flow has no state on it"
    );
}

// ---- §3.10 teardown, and bad input ------------------------------------------------------

#[test]
fn idle_and_half_open_flows_time_out() {
    let mut lab = Lab::new();
    lab.send(Seg {
        seq: 1,
        opts: Opts::syn(1460, 7, 1),
        ..Seg::CLIENT_SYN
    });
    assert_eq!(lab.engine.flows().len(), 1);
    lab.advance(6_000 * MS);
    lab.poll();
    assert_eq!(lab.engine.flows().len(), 0, "half-open flow timed out");
    let hs = Hs::default();
    lab.handshake(&hs);
    lab.advance(301_000 * MS);
    lab.poll();
    assert_eq!(lab.engine.flows().len(), 0, "idle flow timed out");
}

#[test]
fn bad_input_is_counted_never_forwarded() {
    let cfg = EngineConfig {
        max_flows: 1,
        ..config()
    };
    let mut lab = Lab::with(cfg);
    assert!(lab
        .feed(tandem_engine::Side::Outside, vec![0u8; 10])
        .is_empty());
    assert_eq!(lab.engine.counters().dropped(DropReason::Malformed), 1);
    // Not a SYN, no flow: a RST, as a host answers it (§3.10).
    let out = lab.send(Seg {
        seq: 5,
        ack: 5,
        window: 500,
        payload: b"x",
        ..Seg::CLIENT
    });
    assert_eq!(one(&out, CLIENT).flags, RST);
    assert_eq!(lab.engine.counters().dropped(DropReason::NoFlow), 1);
    // A port that is not served.
    assert!(lab
        .send(Seg {
            dst_mac: CLIENT_MAC,
            sport: 1,
            dport: 22,
            seq: 1,
            window: 1,
            opts: Opts::NONE,
            ..Seg::CLIENT_SYN
        })
        .is_empty());
    assert_eq!(lab.engine.counters().dropped(DropReason::NotServed), 1);
    // Data from a replica before its SYN-ACK: never forwarded; its ACK does not ack the
    // SYN, so the replica gets a RST at it, as a TCP in SYN-SENT answers (RFC 9293).
    lab.send(Seg {
        seq: 1000,
        ..Seg::CLIENT_SYN
    });
    let out = lab.send(Seg {
        seq: 1,
        ack: 1,
        window: 1,
        payload: b"x",
        ..Seg::PRIMARY
    });
    assert!(to(&out, CLIENT).is_empty());
    assert_eq!((one(&out, PRIMARY).flags, one(&out, PRIMARY).seq), (RST, 1));
    assert_eq!(lab.engine.counters().dropped(DropReason::BadState), 1);
    // The table is full of established flows: none is evicted for a new SYN.
    lab.handshake(&Hs::default());
    assert!(lab
        .send(Seg {
            dst_mac: CLIENT_MAC,
            sport: 2,
            seq: 1,
            window: 1,
            opts: Opts::NONE,
            ..Seg::CLIENT_SYN
        })
        .is_empty());
    assert_eq!(lab.engine.counters().dropped(DropReason::TableFull), 1);
    // A replica segment for no flow.
    let out = lab.send(Seg {
        dst_mac: CLIENT_MAC,
        dport: 9,
        seq: 1,
        ack: 1,
        window: 1,
        payload: b"x",
        ..Seg::PRIMARY
    });
    assert_eq!(
        one(&out, PRIMARY).flags,
        RST,
        "the replica is told, not the client"
    );
    assert_eq!(lab.engine.counters().dropped(DropReason::NoFlow), 2);
    // Traffic for the appliance itself goes to the control core.
    lab.send(Seg {
        dst_mac: CLIENT_MAC,
        sport: 1,
        dst: OUTSIDE,
        dport: 80,
        seq: 1,
        window: 1,
        opts: Opts::NONE,
        ..Seg::CLIENT_SYN
    });
    assert_eq!(lab.engine.counters().to_control, 1);
    // ICMP to a VIP too (the control core answers echo for it); other non-TCP is dropped.
    let mut f = Seg {
        dst_mac: CLIENT_MAC,
        sport: 1,
        dport: 80,
        seq: 1,
        window: 1,
        opts: Opts::NONE,
        ..Seg::CLIENT_SYN
    }
    .frame();
    f[23] = 1;
    lab.feed(tandem_engine::Side::Outside, f.clone());
    assert_eq!(lab.engine.counters().to_control, 2);
    f[23] = 17;
    lab.feed(tandem_engine::Side::Outside, f);
    assert_eq!(lab.engine.counters().dropped(DropReason::NotTcp), 1);
}

// ---- §5 passive signals -----------------------------------------------------------------

#[test]
fn a_replica_whose_acks_lag_is_signalled() {
    let cfg = EngineConfig {
        ack_lag_ns: 10 * MS,
        ..config()
    };
    let mut lab = Lab::with(cfg);
    let hs = Hs::default();
    lab.handshake(&hs);
    let (c1, p1) = (hs.cisn + 1, hs.pisn + 1);
    lab.send(Seg {
        seq: c1,
        ack: p1,
        opts: Opts::ts(102, 5000),
        payload: &data(100, 0),
        ..Seg::CLIENT
    });
    lab.send(Seg {
        seq: p1,
        ack: c1 + 100,
        opts: Opts::ts(5001, 102),
        ..Seg::PRIMARY
    });
    lab.advance(11 * MS);
    lab.send(Seg {
        seq: p1,
        ack: c1 + 100,
        opts: Opts::ts(5002, 102),
        ..Seg::PRIMARY
    });
    assert!(lab
        .signals
        .iter()
        .any(|s| s.replica == lab.b && s.kind == SignalKind::AckLag));
}

/// A lab whose engine-wide ack lag is `engine_lag`, and its one service's `service_lag`.
fn lab_with_lags(engine_lag: u64, service_lag: Option<u64>) -> Lab {
    let mut lab = Lab::with(EngineConfig {
        ack_lag_ns: engine_lag,
        ..config()
    });
    let mut cfg = lab.engine.config().clone();
    cfg.services[0].ack_lag_ns = service_lag;
    lab.engine = tandem_engine::Engine::new(cfg, lab.replicas.clone());
    lab
}

#[test]
fn each_service_times_ack_lag_by_its_own_threshold() {
    for (engine_lag, service_lag, signalled) in [
        (0, Some(10 * MS), true),
        (10 * MS, Some(0), false),
        (10 * MS, None, true),
    ] {
        let mut lab = lab_with_lags(engine_lag, service_lag);
        let hs = Hs::default();
        lab.handshake(&hs);
        let (c1, p1) = (hs.cisn + 1, hs.pisn + 1);
        lab.send(Seg {
            seq: c1,
            ack: p1,
            opts: Opts::ts(102, 5000),
            payload: &data(100, 0),
            ..Seg::CLIENT
        });
        lab.send(Seg {
            seq: p1,
            ack: c1 + 100,
            opts: Opts::ts(5001, 102),
            ..Seg::PRIMARY
        });
        lab.advance(11 * MS);
        lab.send(Seg {
            seq: p1,
            ack: c1 + 100,
            opts: Opts::ts(5002, 102),
            ..Seg::PRIMARY
        });
        let got = lab
            .signals
            .iter()
            .any(|s| s.replica == lab.b && s.kind == SignalKind::AckLag);
        assert_eq!(
            got, signalled,
            "engine {engine_lag}, service {service_lag:?}"
        );
    }
}

#[test]
fn a_frozen_active_whose_output_lags_is_signalled() {
    let cfg = EngineConfig {
        output_lag_ns: 10 * MS,
        ..config()
    };
    let mut lab = Lab::with(cfg);
    let hs = Hs::default();
    lab.handshake(&hs);
    let (c1, b1) = (hs.cisn + 1, hs.bisn + 1);
    lab.send(Seg {
        seq: b1,
        ack: c1,
        opts: Opts::ts(80_001, 101),
        payload: &data(100, 0),
        ..Seg::BACKUP
    });
    lab.advance(11 * MS);
    lab.send(Seg {
        seq: b1 + 100,
        ack: c1,
        opts: Opts::ts(80_002, 101),
        payload: &data(100, 0),
        ..Seg::BACKUP
    });
    assert!(lab
        .signals
        .iter()
        .any(|s| s.replica == lab.p && s.kind == SignalKind::OutputLag));
}

#[test]
fn a_frozen_active_is_signalled_by_the_sweep_when_everything_goes_quiet() {
    let cfg = EngineConfig {
        output_lag_ns: 10 * MS,
        ..config()
    };
    let mut lab = Lab::with(cfg);
    let hs = Hs::default();
    lab.handshake(&hs);
    let (c1, b1) = (hs.cisn + 1, hs.bisn + 1);
    // The backup answers, then waits for acks; the frozen primary sends nothing, and the
    // client has nothing to send: no segment arrives to time the lag on.
    lab.send(Seg {
        seq: b1,
        ack: c1,
        opts: Opts::ts(80_001, 101),
        payload: &data(100, 0),
        ..Seg::BACKUP
    });
    lab.advance(5 * MS);
    lab.poll();
    assert!(lab.signals.is_empty());
    lab.advance(6 * MS);
    lab.poll();
    assert!(
        lab.signals
            .iter()
            .any(|s| s.replica == lab.p && s.kind == SignalKind::OutputLag),
        "{:?}",
        lab.signals
    );
}

#[test]
fn ordered_selection_keeps_the_pool_order_and_spread_rotates() {
    // One copy per flow, so the replica a SYN goes to is the one chosen.
    let first_replicas = |ordered: bool, kill_primary: bool| -> Vec<Ipv4Addr> {
        let mut lab = Lab::new();
        let mut cfg = config();
        cfg.services = vec![tandem_engine::Service {
            copies: 1,
            ordered,
            ..mirror(&[lab.p, lab.b])
        }];
        lab.engine = tandem_engine::Engine::new(cfg, lab.replicas.clone());
        if kill_primary {
            lab.kill(R::P);
        }
        (0..4u16)
            .map(|k| {
                let out = lab.send(Seg {
                    sport: 40_000 + k,
                    seq: 1,
                    opts: Opts::syn(1460, 7, 1),
                    ..Seg::CLIENT_SYN
                });
                assert_eq!(out.len(), 1, "{out:#?}");
                out[0].dst
            })
            .collect()
    };
    assert_eq!(first_replicas(true, false), vec![PRIMARY; 4]);
    assert_eq!(
        first_replicas(false, false),
        vec![PRIMARY, BACKUP, PRIMARY, BACKUP]
    );
    assert_eq!(
        first_replicas(true, true),
        vec![BACKUP; 4],
        "the next live one stands in"
    );
}

#[test]
fn a_standby_whose_output_lags_is_not_signalled() {
    let cfg = EngineConfig {
        output_lag_ns: 10 * MS,
        ..config()
    };
    let mut lab = Lab::with(cfg);
    let hs = Hs::default();
    lab.handshake(&hs);
    let (c1, p1) = (hs.cisn + 1, hs.pisn + 1);
    // The primary (active) answers; the backup is slower, or retransmitting: the client
    // is served, and the backup catches up.
    lab.send(Seg {
        seq: p1,
        ack: c1,
        opts: Opts::ts(5001, 101),
        payload: &data(100, 0),
        ..Seg::PRIMARY
    });
    lab.advance(11 * MS);
    lab.send(Seg {
        seq: p1 + 100,
        ack: c1,
        opts: Opts::ts(5002, 101),
        payload: &data(100, 0),
        ..Seg::PRIMARY
    });
    lab.poll();
    assert!(
        !lab.signals.iter().any(|s| s.kind == SignalKind::OutputLag),
        "{:?}",
        lab.signals
    );
}

#[test]
fn an_active_waiting_to_retransmit_is_not_taken_for_frozen() {
    let cfg = EngineConfig {
        output_lag_ns: 10 * MS,
        ..config()
    };
    let mut lab = Lab::with(cfg);
    let hs = Hs::default();
    lab.handshake(&hs);
    let (c1, p1, b1) = (hs.cisn + 1, hs.pisn + 1, hs.bisn + 1);
    // The active's 100 bytes are in flight (the client has not acked them: lost on the
    // way, say); the standby is 100 bytes further.
    lab.send(Seg {
        seq: p1,
        ack: c1,
        opts: Opts::ts(5001, 101),
        payload: &data(100, 0),
        ..Seg::PRIMARY
    });
    lab.send(Seg {
        seq: b1,
        ack: c1,
        opts: Opts::ts(80_001, 101),
        payload: &data(200, 0),
        ..Seg::BACKUP
    });
    lab.advance(11 * MS);
    lab.poll();
    lab.advance(11 * MS);
    lab.poll();
    assert!(
        !lab.signals.iter().any(|s| s.kind == SignalKind::OutputLag),
        "{:?}",
        lab.signals
    );
    // The client acks all the active sent, and the active sends no more: frozen.
    lab.send(Seg {
        seq: c1,
        ack: p1 + 100,
        opts: Opts::ts(102, 5001),
        ..Seg::CLIENT
    });
    lab.advance(MS);
    lab.poll();
    lab.advance(11 * MS);
    lab.poll();
    assert!(lab
        .signals
        .iter()
        .any(|s| s.replica == lab.p && s.kind == SignalKind::OutputLag));
}

#[test]
fn an_active_missing_client_data_is_not_taken_for_frozen() {
    let cfg = EngineConfig {
        output_lag_ns: 10 * MS,
        ..config()
    };
    let mut lab = Lab::with(cfg);
    let hs = Hs::default();
    lab.handshake(&hs);
    let (c1, p1, b1) = (hs.cisn + 1, hs.pisn + 1, hs.bisn + 1);
    // A request reaches both; the copy to the active is lost (it acks only the handshake)
    // while the standby answers it.
    lab.send(Seg {
        seq: c1,
        ack: p1,
        opts: Opts::ts(102, 5000),
        payload: b"req",
        ..Seg::CLIENT
    });
    lab.send(Seg {
        seq: p1,
        ack: c1,
        opts: Opts::ts(5001, 102),
        ..Seg::PRIMARY
    });
    lab.send(Seg {
        seq: b1,
        ack: c1 + 3,
        opts: Opts::ts(80_001, 102),
        payload: &data(200, 0),
        ..Seg::BACKUP
    });
    for _ in 0..3 {
        lab.advance(11 * MS);
        lab.poll();
    }
    assert!(
        !lab.signals.iter().any(|s| s.kind == SignalKind::OutputLag),
        "{:?}",
        lab.signals
    );
}

#[test]
fn spread_selection_cycles_the_primary_over_the_live_pool() {
    let spare_ip = Ipv4Addr::new(198, 19, 0, 13);
    let count = |down: Option<Ipv4Addr>| -> std::collections::HashMap<Ipv4Addr, (u32, u32)> {
        let mut lab = Lab::new();
        let s = lab.replicas.add(spare_ip).expect("room");
        lab.replicas.set_mac(s, MacAddr([2, 0, 0, 0, 0, 0x13]));
        let mut cfg = config();
        cfg.max_flows = 1024;
        cfg.services = vec![tandem_engine::Service {
            copies: 2,
            ..mirror(&[lab.p, lab.b, s])
        }];
        lab.engine = tandem_engine::Engine::new(cfg, lab.replicas.clone());
        if let Some(addr) = down {
            let id = lab.replicas.find(addr).expect("known");
            lab.replicas.set_health(id, tandem_engine::Health::Down);
        }
        for k in 0..300u16 {
            lab.send(Seg {
                sport: 20_000 + k,
                seq: 1,
                opts: Opts::syn(1460, 7, 1),
                ..Seg::CLIENT_SYN
            });
        }
        // (designated primary, member) counts per replica address.
        let mut seen = std::collections::HashMap::new();
        let t = lab.engine.flows();
        let mut at = 0;
        // `next_used` wraps round the table: stop when it does.
        while let Some(idx) = t.next_used(at).filter(|&i| i >= at) {
            let f = t.get(idx);
            for (i, leg) in f.legs().iter().enumerate() {
                let e = seen.entry(Ipv4Addr::from(leg.addr)).or_insert((0u32, 0u32));
                e.0 += u32::from(i == 0);
                e.1 += 1;
            }
            at = idx + 1;
            if at as usize >= t.capacity() {
                break;
            }
        }
        seen
    };
    let all = count(None);
    for ip in [PRIMARY, BACKUP, spare_ip] {
        assert_eq!(all.get(&ip), Some(&(100, 200)), "{ip}: {all:?}");
    }
    let two = count(Some(BACKUP));
    assert_eq!(two.get(&PRIMARY), Some(&(150, 300)), "{two:?}");
    assert_eq!(two.get(&spare_ip), Some(&(150, 300)), "{two:?}");
    assert_eq!(two.get(&BACKUP), None);
}

#[test]
fn a_replica_added_to_the_pool_takes_new_flows_and_a_removed_one_none() {
    let spare_ip = Ipv4Addr::new(198, 19, 0, 13);
    let mut lab = Lab::new();
    let mut cfg = config();
    cfg.max_flows = 64;
    cfg.services = vec![mirror(&[lab.p, lab.b])];
    lab.engine = tandem_engine::Engine::new(cfg, lab.replicas.clone());
    let syn = |k: u16| Seg {
        sport: 30_000 + k,
        seq: 1,
        opts: Opts::syn(1460, 7, 1),
        ..Seg::CLIENT_SYN
    };
    // Flows from client port 30000 + `from` on with a copy on the replica at `of`.
    let members = |lab: &Lab, of: Ipv4Addr, from: u16| -> usize {
        let mut v = Vec::with_capacity(64);
        let keep = |r: &tandem_engine::FlowRecord| r.key.client_port >= 30_000 + from;
        lab.engine.list_flows(0, usize::MAX, 0, keep, 64, &mut v);
        v.iter()
            .filter(|r| r.addrs[..r.legs().len()].contains(&u32::from(of)))
            .count()
    };
    for k in 0..6 {
        lab.send(syn(k));
    }
    // The spare joins (as the control core does on `tandem add`): new flows only.
    let s = lab.replicas.add(spare_ip).expect("room");
    lab.replicas.set_mac(s, MacAddr([2, 0, 0, 0, 0, 0x13]));
    assert!(lab.engine.pool_add(0, s));
    assert!(!lab.engine.pool_add(0, s), "already in the pool");
    assert!(!lab.engine.pool_add(7, s), "no such service");
    assert_eq!(members(&lab, spare_ip, 0), 0, "old flows keep their legs");
    for k in 6..12 {
        lab.send(syn(k));
    }
    // Six new flows, two copies each, over three replicas: four each.
    for ip in [PRIMARY, BACKUP, spare_ip] {
        assert_eq!(members(&lab, ip, 6), 4, "{ip}");
    }
    // Out of the pool (still up in the table): no new flow picks it.
    assert!(lab.engine.pool_remove(0, s));
    assert!(!lab.engine.pool_remove(0, s));
    for k in 12..18 {
        lab.send(syn(k));
    }
    assert_eq!(members(&lab, spare_ip, 12), 0);
    assert_eq!(members(&lab, PRIMARY, 12), 6);
    assert_eq!(members(&lab, spare_ip, 6), 4, "its flows keep it");
}

#[test]
fn the_flow_list_shows_replicas_bytes_and_age_and_stops_at_its_capacity() {
    let mut lab = Lab::new();
    let hs = Hs::default();
    lab.handshake(&hs);
    lab.send(Seg {
        seq: hs.cisn + 1,
        ack: hs.pisn + 1,
        opts: Opts::ts(102, 5000),
        payload: b"hello",
        ..Seg::CLIENT
    });
    let now = lab.now + 7;
    let list = |lab: &Lab, keep: fn(&tandem_engine::FlowRecord) -> bool| {
        let mut v = Vec::with_capacity(4);
        let (n, next) = lab.engine.list_flows(0, usize::MAX, now, keep, 4, &mut v);
        assert_eq!(next, None, "one call walks the whole table");
        (n, v)
    };
    let (n, v) = list(&lab, |_| true);
    assert_eq!(n, 1);
    let r = v[0];
    assert_eq!(Ipv4Addr::from(r.key.client_ip), CLIENT);
    assert_eq!(r.phase, tandem_engine::FlowPhase::Established);
    assert_eq!(r.legs(), &[(lab.p, true), (lab.b, true)]);
    assert_eq!(r.active, lab.p);
    assert_eq!(r.bytes_from_client, 5);
    assert!(!r.unprotected);
    assert!(r.age_ns >= 7 && r.idle_ns >= 7, "{r:?}");
    // Nothing is allocated: a full list counts the flow but does not grow; the limit
    // likewise; the walk goes in parts.
    let mut none = Vec::new();
    let all = lab.engine.flows().capacity();
    assert_eq!(
        lab.engine.list_flows(0, all, now, |_| true, 4, &mut none),
        (1, None)
    );
    assert!(none.is_empty());
    let mut v = Vec::with_capacity(4);
    assert_eq!(
        lab.engine.list_flows(0, all, now, |_| true, 0, &mut v),
        (1, None)
    );
    assert!(v.is_empty());
    let (mut found, mut from) = (0, Some(0));
    while let Some(f) = from {
        let (n, next) = lab.engine.list_flows(f, 7, now, |_| true, 4, &mut v);
        found += n;
        from = next;
    }
    assert_eq!((found, v.len()), (1, 1));
    assert_eq!(list(&lab, |_| false).0, 0);
    // A dead leg shows at once; the switch of the active on the flow's next packet.
    lab.kill(R::P);
    let (_, v) = list(&lab, |_| true);
    assert_eq!(v[0].legs(), &[(lab.p, false), (lab.b, true)]);
    lab.send(Seg {
        seq: hs.cisn + 6,
        ack: hs.pisn + 1,
        opts: Opts::ts(103, 5000),
        ..Seg::CLIENT
    });
    let (_, v) = list(&lab, |_| true);
    assert_eq!(v[0].active, lab.b, "{:?}", v[0]);
    assert!(v[0].unprotected);
}

// ---- forward mode (benchmarks) ----------------------------------------------------------

/// A lab whose service is in forward mode (one copy, spread over primary and backup).
fn forward_lab(max_flows: usize) -> Lab {
    let mut lab = Lab::new();
    let mut cfg = config();
    cfg.max_flows = max_flows;
    cfg.services = vec![forward(&[lab.p, lab.b])];
    lab.engine = tandem_engine::Engine::new(cfg, lab.replicas.clone());
    lab
}

/// A client's data segment in the forward-mode tests (from `sport`, at `seq`, acking `ack`).
const FWD: Seg = Seg {
    seq: 1,
    ack: 1,
    window: 1000,
    payload: b"xy",
    ..Seg::CLIENT
};

#[test]
fn forward_adopts_a_mid_stream_segment_and_rewrites_both_ways() {
    let mut lab = forward_lab(64);
    let defaults = EngineConfig::default();
    // No SYN ever: a data segment in the middle of a stream, with timestamps.
    let out = lab.send(Seg {
        seq: 1000,
        ack: 5000,
        window: 1234,
        opts: Opts::ts(77, 88),
        payload: b"hello",
        ..Seg::CLIENT
    });
    let seg = one(&out, PRIMARY);
    assert_eq!((seg.src, seg.sport, seg.dport), (CLIENT, CPORT, PORT));
    assert_eq!(seg.dst_mac, PRIMARY_MAC);
    assert_eq!(seg.src_mac, defaults.inside_mac);
    assert_eq!(
        (seg.seq, seg.ack, seg.window, seg.ts),
        (1000, 5000, 1234, Some((77, 88))),
        "no translation: delta 0"
    );
    assert_eq!(seg.payload, b"hello");
    let c = lab.engine.counters().clone();
    assert_eq!((c.flows_adopted, c.flows_created, c.flows), (1, 1, 1));
    // The replica's answer, whatever its numbers, goes back as it is, from the VIP.
    let out = lab.send(Seg {
        seq: 5000,
        ack: 1005,
        window: 999,
        opts: Opts::ts(99, 77),
        payload: b"world",
        ..Seg::PRIMARY
    });
    let seg = one(&out, CLIENT);
    assert_eq!((seg.src, seg.sport, seg.dport), (VIP, PORT, CPORT));
    assert_eq!(seg.dst_mac, CLIENT_MAC);
    assert_eq!(seg.src_mac, defaults.outside_mac);
    assert_eq!(
        (seg.seq, seg.ack, seg.window, seg.ts),
        (5000, 1005, 999, Some((99, 77)))
    );
    assert_eq!(seg.payload, b"world");
    // Nothing is held or synthesised: one frame in, one frame out.
    let out = lab.send(Seg {
        seq: 1005,
        ack: 5005,
        window: 1234,
        ..Seg::CLIENT
    });
    assert_eq!(out.len(), 1);
    assert_eq!(one(&out, PRIMARY).ack, 5005);
    assert_eq!(
        lab.engine.counters().flows_adopted,
        1,
        "one flow, adopted once"
    );
    // A segment from the replica that does not carry the flow is not forwarded; the
    // replica is told there is no such connection.
    let out = lab.send(Seg {
        seq: 7000,
        ack: 1005,
        window: 999,
        payload: b"x",
        ..Seg::BACKUP
    });
    assert!(to(&out, CLIENT).is_empty());
    assert_eq!(one(&out, BACKUP).flags, RST);
    assert_eq!(lab.engine.counters().dropped(DropReason::NoFlow), 1);
}

#[test]
fn forward_spreads_flows_over_the_pool() {
    let mut lab = forward_lab(64);
    let dsts: Vec<Ipv4Addr> = (0..4u16)
        .map(|i| {
            let out = lab.send(Seg {
                sport: 41000 + i,
                ..FWD
            });
            assert_eq!(out.len(), 1);
            out[0].dst
        })
        .collect();
    assert_eq!(dsts, [PRIMARY, BACKUP, PRIMARY, BACKUP]);
}

#[test]
fn mirror_mode_still_refuses_synless_creation() {
    let mut lab = Lab::new();
    let out = lab.send(Seg {
        seq: 1000,
        ack: 5000,
        window: 1234,
        payload: b"hello",
        ..Seg::CLIENT
    });
    assert_eq!(
        one(&out, CLIENT).flags,
        RST,
        "a RST, as from a host without it"
    );
    let c = lab.engine.counters().clone();
    assert_eq!((c.flows_created, c.flows_adopted, c.flows), (0, 0, 0));
    assert_eq!(c.dropped(DropReason::NoFlow), 1);
}

#[test]
fn forward_flow_on_a_dead_replica_ends_and_is_readopted_on_a_live_one() {
    let mut lab = forward_lab(64);
    let out = lab.send(Seg {
        seq: 1000,
        ack: 5000,
        window: 1234,
        payload: b"a",
        ..Seg::CLIENT
    });
    one(&out, PRIMARY);
    lab.kill(R::P);
    // The next client segment ends the flow and adopts a new one on the backup.
    let out = lab.send(Seg {
        seq: 1001,
        ack: 5000,
        window: 1234,
        payload: b"b",
        ..Seg::CLIENT
    });
    let seg = one(&out, BACKUP);
    assert_eq!((seg.seq, seg.dst_mac), (1001, BACKUP_MAC));
    assert!(
        to(&out, CLIENT).is_empty(),
        "no RST: forward mode protects nothing"
    );
    let c = lab.engine.counters().clone();
    assert_eq!((c.flows_adopted, c.flows_removed, c.flows), (2, 1, 1));
    assert_eq!(c.legs_lost, 1);
    // The dead primary's late segments reach no client.
    let out = lab.send(Seg {
        seq: 5000,
        ack: 1002,
        window: 999,
        payload: b"late",
        ..Seg::PRIMARY
    });
    assert!(to(&out, CLIENT).is_empty());
    // The backup's answers do.
    let out = lab.send(Seg {
        seq: 9000,
        ack: 1002,
        window: 999,
        payload: b"ok",
        ..Seg::BACKUP
    });
    assert_eq!(one(&out, CLIENT).seq, 9000);
}

#[test]
fn forward_flow_of_a_dead_replica_is_swept_when_idle() {
    let mut lab = forward_lab(64);
    one(
        &lab.send(Seg {
            seq: 1000,
            ack: 5000,
            window: 1234,
            payload: b"a",
            ..Seg::CLIENT
        }),
        PRIMARY,
    );
    lab.kill(R::P);
    lab.advance(MS);
    let out = lab.poll();
    assert!(out.is_empty(), "nothing is sent for it");
    assert_eq!(lab.engine.counters().flows, 0);
}

#[test]
fn forward_table_full_is_a_counted_drop() {
    let mut lab = forward_lab(4);
    let cap = lab.engine.flows().capacity();
    for i in 0..cap as u16 {
        assert_eq!(
            lab.send(Seg {
                sport: 42000 + i,
                ..FWD
            })
            .len(),
            1
        );
    }
    let out = lab.send(Seg {
        sport: 43000,
        ..FWD
    });
    assert!(out.is_empty());
    let c = lab.engine.counters().clone();
    assert_eq!(c.dropped(DropReason::TableFull), 1);
    assert_eq!((c.flows_adopted, c.flows), (cap as u64, cap as u64));
    // An existing flow still passes.
    assert_eq!(
        lab.send(Seg {
            sport: 42000,
            seq: 3,
            ..FWD
        })
        .len(),
        1
    );
}

#[test]
fn forward_rst_ends_the_flow_and_fins_close_it_after_the_linger() {
    let mut lab = forward_lab(64);
    one(
        &lab.send(Seg {
            seq: 1,
            ack: 1,
            window: 1000,
            payload: b"a",
            ..Seg::CLIENT
        }),
        PRIMARY,
    );
    // Both FINs: the flow closes, and the last ACK still passes during the linger.
    one(
        &lab.send(Seg {
            seq: 2,
            ack: 1,
            flags: A | F,
            window: 1000,
            ..Seg::CLIENT
        }),
        PRIMARY,
    );
    one(
        &lab.send(Seg {
            seq: 1,
            ack: 3,
            flags: A | F,
            window: 1000,
            ..Seg::PRIMARY
        }),
        CLIENT,
    );
    one(
        &lab.send(Seg {
            seq: 3,
            ack: 2,
            window: 1000,
            ..Seg::CLIENT
        }),
        PRIMARY,
    );
    assert_eq!(lab.engine.counters().flows, 1);
    lab.advance(EngineConfig::default().linger_ns + MS);
    lab.poll();
    assert_eq!(lab.engine.counters().flows, 0, "removed after the linger");
    // A RST ends a flow at once (and is forwarded).
    one(
        &lab.send(Seg {
            seq: 10,
            ack: 1,
            window: 1000,
            payload: b"b",
            ..Seg::CLIENT
        }),
        BACKUP,
    );
    assert_eq!(lab.engine.counters().flows, 1);
    one(
        &lab.send(Seg {
            seq: 1,
            ack: 11,
            flags: RST,
            window: 0,
            ..Seg::BACKUP
        }),
        CLIENT,
    );
    assert_eq!(lab.engine.counters().flows, 0);
}

#[test]
fn the_background_sweep_covers_the_table_once_per_cover_period_and_no_faster() {
    // Polled every 20 µs (the sweep interval): 4 flows a step.
    sweep_covers_idle_flows(20_000, 4);
}

#[test]
fn the_background_sweep_keeps_its_pace_when_polls_come_late() {
    // A busy worker polls every 100 µs: each step makes up for the time since the last.
    sweep_covers_idle_flows(100_000, 20);
}

/// 2000 forward flows go idle at once; the idle timeout is 40 ms, the shortest other one
/// (fin grace) 20 ms: the sweep means to visit every flow every 10 ms, which is
/// `per_step` flows a poll every `gap_ns`, not the full batch of 64.
fn sweep_covers_idle_flows(gap_ns: u64, per_step: u64) {
    let flows = 2000u16;
    let mut lab = forward_lab(4096);
    let mut cfg = lab.engine.config().clone();
    cfg.idle_timeout_ns = 40 * MS;
    assert_eq!(cfg.sweep_cover_ns(), 10 * MS);
    lab.engine = tandem_engine::Engine::new(cfg.clone(), lab.replicas.clone());
    for port in 1..=flows {
        assert_eq!(lab.send(Seg { sport: port, ..FWD }).len(), 1);
    }
    assert_eq!(lab.engine.counters().flows, u64::from(flows));
    let start = lab.now;
    let mut most_in_a_step = 0;
    let mut all_gone_at = None;
    while lab.now < start + 60 * MS {
        lab.advance(gap_ns);
        let before = lab.engine.counters().flows;
        lab.poll();
        let after = lab.engine.counters().flows;
        most_in_a_step = most_in_a_step.max(before - after);
        if after == 0 && all_gone_at.is_none() {
            all_gone_at = Some(lab.now - start);
        }
    }
    let gone = all_gone_at.expect("every idle flow removed");
    assert!(
        most_in_a_step <= per_step,
        "a step removed {most_in_a_step} flows: more than it needs"
    );
    // Idle past 40 ms; every flow visited within one cover period after that.
    assert!(
        gone > 40 * MS && gone <= 50 * MS + gap_ns,
        "all gone after {gone} ns"
    );
}

#[test]
fn a_client_endpoint_reaches_a_replica_through_one_vip_at_a_time() {
    // Two VIPs on the same port, served by the same replicas: to a replica, the client's
    // address and port with the same port are one connection, whichever VIP it came by.
    let vip2 = Ipv4Addr::new(198, 18, 0, 101);
    let mut lab = Lab::new();
    let mut cfg = lab.engine.config().clone();
    let mut second = cfg.services[0].clone();
    second.vip = vip2;
    cfg.services.push(second);
    lab.engine = tandem_engine::Engine::new(cfg.clone(), lab.replicas.clone());
    let syn_to = |lab: &mut Lab, vip: Ipv4Addr, cport: u16| {
        lab.send(Seg {
            sport: cport,
            dst: vip,
            seq: 7,
            opts: Opts::syn(1460, 7, 1),
            ..Seg::CLIENT_SYN
        })
    };
    let out = syn_to(&mut lab, VIP, CPORT);
    assert_eq!((to(&out, PRIMARY).len(), to(&out, BACKUP).len()), (1, 1));
    // The same endpoint through the other VIP: refused and counted, nothing sent.
    assert!(syn_to(&mut lab, vip2, CPORT).is_empty());
    let c = lab.engine.counters().clone();
    assert_eq!(c.dropped(DropReason::EndpointInUse), 1);
    assert_eq!(c.flows, 1);
    // Another port of the same client is another connection.
    let out = syn_to(&mut lab, vip2, CPORT + 1);
    assert_eq!((to(&out, PRIMARY).len(), to(&out, BACKUP).len()), (1, 1));
    // Once the first flow has ended (and lingered, if it does), the endpoint is free.
    lab.send(Seg {
        seq: 8,
        flags: TcpFlags::RST,
        window: 0,
        ..Seg::CLIENT
    });
    lab.advance(cfg.linger_ns + cfg.sweep_cover_ns() + MS);
    for _ in 0..100 {
        lab.advance(cfg.sweep_interval_ns);
        lab.poll();
    }
    let out = syn_to(&mut lab, vip2, CPORT);
    assert_eq!((to(&out, PRIMARY).len(), to(&out, BACKUP).len()), (1, 1));
    assert_eq!(lab.engine.counters().dropped(DropReason::EndpointInUse), 1);
}

/// `tandem reload` of the timeouts: a flow keeps the timers it was created with; only
/// the flows created after the change get the new ones.
#[test]
fn new_timeouts_reach_only_the_flows_created_after_them() {
    let mut lab = forward_lab(64);
    assert_eq!(lab.send(Seg { sport: 1, ..FWD }).len(), 1);
    let mut t = lab.engine.config().flow_timeouts();
    let before = t;
    t.idle_ns = 40 * MS;
    assert!(lab.engine.set_timeouts(t));
    assert_eq!(lab.send(Seg { sport: 2, ..FWD }).len(), 1);
    assert_eq!(lab.engine.counters().flows, 2);
    let start = lab.now;
    while lab.now < start + 200 * MS {
        lab.advance(MS);
        lab.poll();
    }
    let table = lab.engine.flows();
    let ports: Vec<u16> = (0..table.capacity())
        .map(|i| i as tandem_engine::table::FlowIdx)
        .filter(|&i| table.is_used(i))
        .map(|i| table.get(i).key.client_port)
        .collect();
    assert_eq!(
        ports,
        [1],
        "the old flow keeps 300 s; the new one ended after 40 ms"
    );
    // Back to the first timers: the set no flow uses any more is taken again.
    assert!(lab.engine.set_timeouts(before));
    assert_eq!(lab.engine.config().flow_timeouts(), before);
}
