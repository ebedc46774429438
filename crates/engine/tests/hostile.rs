//! DESIGN §3.11, acceptance: an off-path attacker who knows the addresses and ports but
//! not the sequence numbers changes nothing that a TCP endpoint would not let it change.
//! Each test fails on an engine that records what it is sent without checking it.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::net::Ipv4Addr;
use tandem_testkit::*;

use tandem_engine::{DropReason, EngineConfig, FlowPhase, Side, SignalKind, CHALLENGE_GAP_NS};
use tandem_wire::TcpFlags;

const F: TcpFlags = TcpFlags::FIN;
const RST: TcpFlags = TcpFlags::RST;

/// An established flow with 100 bytes each way; returns (client next, primary next,
/// backup next) after them.
fn established(lab: &mut Lab) -> (u32, u32, u32) {
    let hs = Hs::default();
    lab.handshake(&hs);
    let (c1, p1, b1) = (hs.cisn + 1, hs.pisn + 1, hs.bisn + 1);
    let out = lab.send(Seg {
        seq: c1,
        ack: p1,
        opts: Opts::ts(102, 5000),
        payload: &data(100, 1),
        ..Seg::CLIENT
    });
    assert_eq!(to(&out, PRIMARY).len() + to(&out, BACKUP).len(), 2);
    lab.send(Seg {
        seq: b1,
        ack: c1 + 100,
        opts: Opts::ts(80_001, 102),
        payload: &data(100, 7),
        ..Seg::BACKUP
    });
    let out = lab.send(Seg {
        seq: p1,
        ack: c1 + 100,
        opts: Opts::ts(5001, 102),
        payload: &data(100, 7),
        ..Seg::PRIMARY
    });
    assert_eq!(one(&out, CLIENT).payload, data(100, 7));
    lab.send(Seg {
        seq: c1 + 100,
        ack: p1 + 100,
        opts: Opts::ts(103, 5001),
        ..Seg::CLIENT
    });
    (c1 + 100, p1 + 100, b1 + 100)
}

/// The stream goes on both ways after an attack: 50 more bytes from the client reach
/// both replicas, and 50 from the primary reach the client, at the right places.
fn stream_goes_on(lab: &mut Lab, (c, p, b): (u32, u32, u32)) {
    let out = lab.send(Seg {
        seq: c,
        ack: p,
        opts: Opts::ts(200, 5001),
        payload: &data(50, 9),
        ..Seg::CLIENT
    });
    assert_eq!(one(&out, PRIMARY).payload, data(50, 9));
    assert_eq!(one(&out, BACKUP).payload, data(50, 9));
    assert_eq!(one(&out, BACKUP).seq, c);
    lab.send(Seg {
        seq: b,
        ack: c + 50,
        opts: Opts::ts(80_010, 200),
        payload: &data(50, 4),
        ..Seg::BACKUP
    });
    let out = lab.send(Seg {
        seq: p,
        ack: c + 50,
        opts: Opts::ts(5010, 200),
        payload: &data(50, 4),
        ..Seg::PRIMARY
    });
    let seg = one(&out, CLIENT);
    assert_eq!((seg.seq, seg.ack), (p, c + 50));
    assert_eq!(seg.payload, data(50, 4));
    assert_eq!(lab.engine.flows().len(), 1);
}

fn dropped(lab: &mut Lab, r: DropReason) -> u64 {
    lab.engine.counters().dropped(r)
}

// ---- RST from the client ------------------------------------------------------------------

#[test]
fn two_hundred_blind_rsts_from_the_client_leave_the_flow_and_its_stream_intact() {
    let mut lab = Lab::new();
    let next = established(&mut lab);
    let mut rng = ChaCha8Rng::seed_from_u64(5961);
    for _ in 0..200 {
        let seq: u32 = rng.random();
        if seq == next.0 {
            continue;
        }
        let out = lab.send(Seg {
            seq,
            flags: RST,
            window: 0,
            ..Seg::CLIENT
        });
        assert!(to(&out, PRIMARY).is_empty() && to(&out, BACKUP).is_empty());
    }
    let c = lab.engine.counters();
    assert_eq!(
        c.dropped(DropReason::RstOutOfWindow) + c.dropped(DropReason::RstInWindow),
        200
    );
    stream_goes_on(&mut lab, next);
}

#[test]
fn an_in_window_rst_is_answered_with_one_challenge_ack_and_the_flow_stays() {
    let mut lab = Lab::new();
    let next = established(&mut lab);
    let out = lab.send(Seg {
        seq: next.0 + 1000,
        flags: RST,
        window: 0,
        ..Seg::CLIENT
    });
    assert!(to(&out, PRIMARY).is_empty() && to(&out, BACKUP).is_empty());
    let ack = one(&out, CLIENT);
    assert_eq!(ack.flags, A, "a challenge ACK (RFC 5961 §3.2)");
    assert_eq!((ack.seq, ack.ack), (next.1, next.0));
    // A second within the gap is not answered: a flood is not reflected one for one.
    let out = lab.send(Seg {
        seq: next.0 + 2000,
        flags: RST,
        window: 0,
        ..Seg::CLIENT
    });
    assert!(out.is_empty());
    lab.advance(CHALLENGE_GAP_NS);
    let out = lab.send(Seg {
        seq: next.0 + 3000,
        flags: RST,
        window: 0,
        ..Seg::CLIENT
    });
    assert_eq!(one(&out, CLIENT).flags, A);
    assert_eq!(dropped(&mut lab, DropReason::RstInWindow), 3);
    stream_goes_on(&mut lab, next);
}

#[test]
fn the_exact_rst_ends_the_flow_and_reaches_every_replica() {
    let mut lab = Lab::new();
    let (c, _, _) = established(&mut lab);
    let out = lab.send(Seg {
        seq: c,
        flags: RST,
        window: 0,
        ..Seg::CLIENT
    });
    assert_eq!(one(&out, PRIMARY).flags, RST);
    assert_eq!(one(&out, BACKUP).flags, RST);
    assert_eq!(lab.engine.flows().len(), 0);
}

#[test]
fn an_exact_rst_with_a_wrong_checksum_changes_nothing() {
    let mut lab = Lab::new();
    let next = established(&mut lab);
    let mut f = Seg {
        seq: next.0,
        flags: RST,
        window: 0,
        ..Seg::CLIENT
    }
    .frame();
    // TCP checksum: Ethernet 14 + IPv4 20 + 16.
    f[50] ^= 0x5a;
    assert!(lab.feed(Side::Outside, f).is_empty());
    assert_eq!(dropped(&mut lab, DropReason::BadChecksum), 1);
    stream_goes_on(&mut lab, next);
}

// ---- FIN, data and ACK from the client ------------------------------------------------------

#[test]
fn blind_fins_and_data_outside_the_window_change_nothing() {
    let mut lab = Lab::new();
    let next = established(&mut lab);
    let mut rng = ChaCha8Rng::seed_from_u64(793);
    let mut sent = 0;
    while sent < 200 {
        // Outside [next - 8 MiB, next + 8 MiB]: beyond the window, and too old to be a
        // retransmission.
        let seq = next
            .0
            .wrapping_add(rng.random_range(1u32 << 24..u32::MAX - (1 << 24)));
        let flags = if sent % 2 == 0 { F | A } else { A };
        let out = lab.send(Seg {
            seq,
            ack: next.1,
            flags,
            opts: Opts::ts(150, 5001),
            payload: &data(10, 0),
            ..Seg::CLIENT
        });
        assert!(out.is_empty(), "nothing passed on: {out:?}");
        sent += 1;
    }
    assert_eq!(dropped(&mut lab, DropReason::OutOfWindow), 200);
    stream_goes_on(&mut lab, next);
    // No FIN was recorded: the replicas' FINs and the client's ACK of them leave the
    // flow open on the client's side, not closed.
    assert_eq!(lab.phase(), FlowPhase::Established);
}

#[test]
fn a_client_ack_of_bytes_never_sent_to_it_is_dropped_and_never_recorded() {
    let mut lab = Lab::new();
    let hs = Hs::default();
    lab.handshake(&hs);
    let (c1, p1, b1) = (hs.cisn + 1, hs.pisn + 1, hs.bisn + 1);
    // The backup runs ahead: its 300 bytes are held, the primary has sent 100.
    lab.send(Seg {
        seq: b1,
        ack: c1,
        opts: Opts::ts(80_001, 101),
        payload: &data(300, 3),
        ..Seg::BACKUP
    });
    let out = lab.send(Seg {
        seq: p1,
        ack: c1,
        opts: Opts::ts(5001, 101),
        payload: &data(100, 3),
        ..Seg::PRIMARY
    });
    assert_eq!(one(&out, CLIENT).payload, data(100, 3));
    // An ack of all 300, of which the client was sent 100.
    let out = lab.send(Seg {
        seq: c1,
        ack: p1 + 300,
        opts: Opts::ts(102, 5001),
        ..Seg::CLIENT
    });
    assert!(out.is_empty(), "not passed on: the replicas would take it");
    assert_eq!(dropped(&mut lab, DropReason::AckOutOfWindow), 1);
    assert_eq!(lab.engine.counters().held_bytes, 300, "nothing released");
    // The primary dies: the client gets the 200 bytes it lacks from what was held.
    lab.send(Seg {
        seq: c1,
        ack: p1 + 100,
        opts: Opts::ts(103, 5001),
        ..Seg::CLIENT
    });
    lab.kill(R::P);
    lab.engine.request_failover_sweep();
    let out = lab.poll();
    let segs = to(&out, CLIENT);
    assert_eq!(
        segs[0].seq, p1,
        "the held segment, whole: the client drops what it has"
    );
    let payload: Vec<u8> = segs.iter().flat_map(|s| s.payload.clone()).collect();
    assert_eq!(payload, data(300, 3));
}

#[test]
fn timestamps_are_recorded_only_from_accepted_segments() {
    let mut lab = Lab::new();
    let next = established(&mut lab);
    // Outside the window, with a timestamp far ahead of the client's clock.
    let out = lab.send(Seg {
        seq: next.0 + (1 << 30),
        ack: next.1,
        opts: Opts::ts(0x7000_0000, 5001),
        payload: b"x",
        ..Seg::CLIENT
    });
    assert!(out.is_empty());
    // A keepalive (one byte before the window): Tandem answers it, echoing TS.Recent,
    // which must be the client's own clock, from the last segment in the window.
    let out = lab.send(Seg {
        seq: next.0 - 1,
        ack: next.1,
        opts: Opts::ts(104, 5001),
        ..Seg::CLIENT
    });
    let ack = one(&out, CLIENT);
    assert_eq!(ack.ts.map(|t| t.1), Some(103));
    // A segment older than TS.Recent fails PAWS.
    let out = lab.send(Seg {
        seq: next.0,
        ack: next.1,
        opts: Opts::ts(90, 5001),
        payload: b"y",
        ..Seg::CLIENT
    });
    assert!(out.is_empty());
    assert_eq!(dropped(&mut lab, DropReason::Paws), 1);
    stream_goes_on(&mut lab, next);
}

// ---- forged replica segments from the inside -----------------------------------------------

#[test]
fn forged_replica_rsts_and_fins_outside_the_legs_window_kill_no_leg() {
    let mut lab = Lab::new();
    let next = established(&mut lab);
    let mut rng = ChaCha8Rng::seed_from_u64(1122);
    for k in 0..200u32 {
        let r = if k % 2 == 0 { R::P } else { R::B };
        let leg_next = if r == R::P { next.1 } else { next.2 };
        let seq = leg_next.wrapping_add(rng.random_range(1u32 << 24..u32::MAX - (1 << 24)));
        let flags = if k % 4 < 2 { RST | A } else { F | A };
        let out = lab.send(Seg {
            seq,
            ack: next.0,
            flags,
            ..Seg::replica(r)
        });
        assert!(out.is_empty(), "{out:?}");
    }
    assert_eq!(dropped(&mut lab, DropReason::RstOutOfWindow), 100);
    assert_eq!(dropped(&mut lab, DropReason::OutOfWindow), 100);
    lab.advance(100 * MS);
    lab.poll();
    assert_eq!(lab.engine.counters().legs_lost, 0);
    assert!(
        lab.signals.is_empty(),
        "no replica suspected: {:?}",
        lab.signals
    );
    stream_goes_on(&mut lab, next);
}

#[test]
fn a_replica_rst_in_its_window_but_not_exact_gets_a_challenge_ack_and_the_exact_one_kills_the_leg()
{
    let mut lab = Lab::new();
    let (c, _, b) = established(&mut lab);
    let out = lab.send(Seg {
        seq: b + 5000,
        ack: c,
        flags: RST | A,
        window: 0,
        ..Seg::BACKUP
    });
    let ack = one(&out, BACKUP);
    assert_eq!((ack.flags, ack.ack, ack.src), (A, b, CLIENT));
    assert_eq!(lab.engine.counters().legs_lost, 0);
    // A replica whose connection is gone answers it with a RST at that ack.
    let out = lab.send(Seg {
        seq: b,
        flags: RST,
        window: 0,
        ..Seg::BACKUP
    });
    assert!(to(&out, CLIENT).is_empty());
    assert_eq!(lab.engine.counters().legs_lost, 1);
    assert!(lab
        .signals
        .iter()
        .any(|s| s.replica == lab.b && s.kind == SignalKind::UnmatchedRst));
}

#[test]
fn a_replica_ack_of_bytes_the_client_never_sent_is_dropped() {
    let mut lab = Lab::new();
    let (c, p, _) = established(&mut lab);
    let out = lab.send(Seg {
        seq: p,
        ack: c + 5000,
        opts: Opts::ts(5002, 103),
        ..Seg::PRIMARY
    });
    assert!(out.is_empty());
    assert_eq!(dropped(&mut lab, DropReason::AckOutOfWindow), 1);
    // Had it been recorded, the synchronised ack would have let the client believe
    // bytes it never sent were received; the next answer still acks `c`.
    let out = lab.send(Seg {
        seq: 900_101,
        ack: c,
        opts: Opts::ts(80_002, 103),
        ..Seg::BACKUP
    });
    assert!(to(&out, CLIENT).iter().all(|s| s.ack == c));
}

// ---- SYN floods --------------------------------------------------------------------------

#[test]
fn a_syn_flood_on_a_full_table_evicts_the_oldest_half_open_flows_never_an_established_one() {
    let mut lab = Lab::with(EngineConfig {
        max_flows: 8,
        ..config()
    });
    let next = established(&mut lab);
    for i in 0..500 {
        let out = lab.send(Seg::spoofed_syn(i));
        assert_eq!(out.len(), 2, "every SYN reaches the replicas");
    }
    let c = lab.engine.counters();
    assert_eq!(c.flows, 8);
    assert_eq!(c.half_open_evicted, 500 - 7);
    assert_eq!(c.dropped(DropReason::TableFull), 0);
    // A legitimate client still gets in, and the established flow lives on.
    let out = lab.send(Seg {
        sport: CPORT + 1,
        seq: 77,
        opts: Opts::syn(1460, 7, 1),
        ..Seg::CLIENT_SYN
    });
    assert_eq!(to(&out, PRIMARY).len(), 1);
    assert_eq!(to(&out, BACKUP).len(), 1);
    stream_goes_on_among_many(&mut lab, next);
}

/// As [`stream_goes_on`], where the table holds other flows too.
fn stream_goes_on_among_many(lab: &mut Lab, (c, p, _): (u32, u32, u32)) {
    let out = lab.send(Seg {
        seq: c,
        ack: p,
        opts: Opts::ts(200, 5001),
        payload: &data(50, 9),
        ..Seg::CLIENT
    });
    assert_eq!(one(&out, PRIMARY).payload, data(50, 9));
    assert_eq!(one(&out, BACKUP).payload, data(50, 9));
}

#[test]
fn a_half_open_flow_is_evicted_with_a_rst_to_the_replicas_that_answered() {
    let mut lab = Lab::with(EngineConfig {
        max_flows: 1,
        synack_wait_ns: 0,
        ..config()
    });
    lab.send(Seg {
        seq: 1000,
        ..Seg::CLIENT_SYN
    });
    let out = lab.send(Seg {
        seq: 50_000,
        ack: 1001,
        opts: Opts::syn(1460, 7, 5),
        ..Seg::PRIMARY_SYNACK
    });
    assert_eq!(one(&out, CLIENT).flags, S | A);
    assert_eq!(lab.phase(), FlowPhase::SynAckSent);
    let out = lab.send(Seg::spoofed_syn(1));
    let rst = to(&out, PRIMARY)
        .into_iter()
        .find(|s| s.flags.contains(RST))
        .expect("a RST to the primary");
    assert_eq!((rst.seq, rst.dport), (1001, PORT));
    assert_eq!(lab.engine.counters().half_open_evicted, 1);
}

#[test]
fn a_flow_is_established_only_when_the_client_acks_the_syn_ack() {
    let mut lab = Lab::new();
    lab.send(Seg {
        seq: 1000,
        ..Seg::CLIENT_SYN
    });
    lab.send(Seg {
        seq: 50_000,
        ack: 1001,
        opts: Opts::syn(1460, 7, 5),
        ..Seg::PRIMARY_SYNACK
    });
    assert_eq!(lab.phase(), FlowPhase::SynSent);
    lab.send(Seg {
        seq: 900_000,
        ack: 1001,
        opts: Opts::syn(1460, 7, 9),
        ..Seg::BACKUP_SYNACK
    });
    assert_eq!(lab.phase(), FlowPhase::SynAckSent);
    // An ACK of another ISN completes nothing.
    lab.send(Seg {
        seq: 1001,
        ack: 60_001,
        opts: Opts::ts(101, 5),
        ..Seg::CLIENT
    });
    assert_eq!(lab.phase(), FlowPhase::SynAckSent);
    lab.send(Seg {
        seq: 1001,
        ack: 50_001,
        opts: Opts::ts(101, 5),
        ..Seg::CLIENT
    });
    assert_eq!(lab.phase(), FlowPhase::Established);
}

#[test]
fn a_half_open_flow_expires_on_the_syn_timeout_while_its_syn_ack_is_retransmitted() {
    let mut lab = Lab::new();
    let syn_timeout = config().syn_timeout_ns;
    lab.send(Seg {
        seq: 1000,
        ..Seg::CLIENT_SYN
    });
    lab.send(Seg {
        seq: 50_000,
        ack: 1001,
        opts: Opts::syn(1460, 7, 5),
        ..Seg::PRIMARY_SYNACK
    });
    lab.send(Seg {
        seq: 900_000,
        ack: 1001,
        opts: Opts::syn(1460, 7, 9),
        ..Seg::BACKUP_SYNACK
    });
    // The client never answers; the primary repeats its SYN-ACK every second.
    let mut t = 0;
    while t <= syn_timeout {
        lab.advance(1_000 * MS);
        t += 1_000 * MS;
        let out = lab.send(Seg {
            seq: 50_000,
            ack: 1001,
            opts: Opts::syn(1460, 7, 5),
            ..Seg::PRIMARY_SYNACK
        });
        lab.poll();
        if t <= syn_timeout {
            assert_eq!(one(&out, CLIENT).flags, S | A, "forwarded while half-open");
        }
    }
    assert_eq!(lab.engine.flows().len(), 0);
    assert_eq!(lab.engine.counters().half_open_expired, 1);
}

// ---- sources and tags ------------------------------------------------------------------

#[test]
fn syns_from_sources_no_client_can_have_create_no_flow() {
    let mut lab = Lab::new();
    let bad = [
        Ipv4Addr::new(0, 0, 0, 1),
        Ipv4Addr::new(127, 0, 0, 1),
        Ipv4Addr::new(224, 0, 0, 1),
        Ipv4Addr::new(239, 1, 2, 3),
        Ipv4Addr::new(255, 255, 255, 255),
        OUTSIDE,
        INSIDE,
        VIP,
    ];
    for src in bad {
        let syn = Seg {
            src,
            sport: 4000,
            seq: 1,
            window: 1024,
            opts: Opts::NONE,
            ..Seg::CLIENT_SYN
        };
        assert!(lab.send(syn).is_empty(), "from {src}");
    }
    assert_eq!(dropped(&mut lab, DropReason::BadSource), bad.len() as u64);
    assert_eq!(lab.engine.flows().len(), 0);
    // A client's own address is fine.
    assert_eq!(
        lab.send(Seg {
            seq: 1,
            opts: Opts::syn(1460, 7, 1),
            ..Seg::CLIENT_SYN
        })
        .len(),
        2
    );
}

#[test]
fn an_outside_senders_vlan_tag_never_reaches_the_inside_port() {
    let mut lab = Lab::new();
    let f = Seg {
        vlan: Some(42),
        seq: 1000,
        opts: Opts::NONE,
        ..Seg::CLIENT_SYN
    }
    .frame();
    let n = f.len();
    // Straight to the rig: the frames are checked before the kit parses them.
    lab.rig.rx_one(Side::Outside, lab.now, f);
    assert_eq!(lab.out.tx.len(), 2, "the SYN to both replicas");
    for t in lab.out.tx.drain(..) {
        assert_eq!(t.side, Side::Inside);
        assert_eq!(&t.buf[12..14], &[0x08, 0x00], "untagged IPv4");
        assert_eq!(t.buf.len(), n - 4);
        // It parses, its checksums hold (the kit checks them), and it is the SYN.
        let seen = Seen::parse(t.side, &t.buf);
        assert!(seen.dst == PRIMARY || seen.dst == BACKUP);
        assert_eq!((seen.seq, seen.flags), (1000, S));
    }
}

// ---- idle flows and strays -------------------------------------------------------------

#[test]
fn an_established_flow_that_idles_past_its_timeout_is_reset_on_both_sides() {
    let mut lab = Lab::new();
    let (c, p, b) = established(&mut lab);
    let idle = config().idle_timeout_ns;
    let mut rsts = Vec::new();
    // The sweep visits every flow within half the shortest timeout; poll past the idle one.
    for _ in 0..4 {
        lab.advance(idle / 2 + MS);
        rsts.extend(lab.poll().into_iter().filter(|s| s.flags.contains(RST)));
    }
    assert_eq!(lab.engine.flows().len(), 0);
    let to_client = one(&rsts, CLIENT);
    assert_eq!((to_client.seq, to_client.ack), (p, c));
    assert_eq!(one(&rsts, PRIMARY).seq, c);
    assert_eq!(one(&rsts, BACKUP).seq, c);
    let _ = b;
    assert_eq!(lab.engine.counters().idle_resets, 1);
}

#[test]
fn a_segment_of_no_flow_gets_a_rst_as_a_host_would_and_those_rsts_are_rate_limited() {
    let mut lab = Lab::new();
    // From the outside: an ACK to the VIP of no connection.
    let out = lab.send(Seg {
        seq: 5000,
        ack: 777,
        window: 500,
        payload: b"x",
        ..Seg::CLIENT
    });
    let rst = one(&out, CLIENT);
    assert_eq!((rst.src, rst.sport, rst.dport), (VIP, PORT, CPORT));
    assert_eq!((rst.seq, rst.flags), (777, RST), "at the segment's ack");
    // From the inside: a replica's segment to a client of no flow.
    let out = lab.send(Seg {
        seq: 300,
        flags: TcpFlags::PSH,
        payload: b"y",
        ..Seg::PRIMARY
    });
    let rst = one(&out, PRIMARY);
    assert_eq!((rst.src, rst.sport, rst.dport), (CLIENT, CPORT, PORT));
    assert_eq!((rst.seq, rst.ack, rst.flags), (0, 301, RST | A));
    // A RST is never answered.
    assert!(lab
        .send(Seg {
            seq: 5000,
            ack: 777,
            flags: RST,
            window: 0,
            ..Seg::CLIENT
        })
        .is_empty());
    // A flood gets at most the period's share.
    let mut sent = 2;
    for k in 0..1000u32 {
        sent += lab
            .send(Seg {
                seq: k,
                ack: k,
                window: 500,
                ..Seg::CLIENT
            })
            .len();
    }
    assert_eq!(sent as u32, tandem_engine::engine::STRAY_RSTS_PER_PERIOD);
    assert_eq!(
        lab.engine.counters().stray_resets,
        u64::from(tandem_engine::engine::STRAY_RSTS_PER_PERIOD)
    );
    lab.advance(tandem_engine::engine::STRAY_RST_PERIOD_NS);
    assert_eq!(
        lab.send(Seg {
            seq: 1,
            ack: 1,
            window: 500,
            ..Seg::CLIENT
        })
        .len(),
        1
    );
}

// ---- ICMP about flows ------------------------------------------------------------------

/// An ICMP error from a router on the client's path (`type_`, `code`) about the segment
/// VIP:PORT → client with sequence number `seq`, quoting its IP header and 8 bytes.
fn icmp_about(type_: u8, code: u8, seq: u32) -> Vec<u8> {
    use tandem_wire::checksum::internet_checksum;
    let router = Ipv4Addr::new(198, 18, 0, 254);
    let mut quoted = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 63, 6, 0, 0];
    quoted[2..4].copy_from_slice(&1440u16.to_be_bytes());
    quoted.extend_from_slice(&VIP.octets());
    quoted.extend_from_slice(&CLIENT.octets());
    let c = internet_checksum(&quoted);
    quoted[10..12].copy_from_slice(&c.to_be_bytes());
    quoted.extend_from_slice(&PORT.to_be_bytes());
    quoted.extend_from_slice(&CPORT.to_be_bytes());
    quoted.extend_from_slice(&seq.to_be_bytes());
    let mut icmp = vec![type_, code, 0, 0, 0, 0, 0x05, 0x00]; // next-hop MTU 1280
    icmp.extend_from_slice(&quoted);
    let c = internet_checksum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let mut ip = vec![0x45, 0, 0, 0, 0, 2, 0, 0, 64, 1, 0, 0];
    ip[2..4].copy_from_slice(&((20 + icmp.len()) as u16).to_be_bytes());
    ip.extend_from_slice(&router.octets());
    ip.extend_from_slice(&VIP.octets());
    let c = internet_checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut f = Vec::new();
    f.extend_from_slice(&[2, 0, 0, 0, 0, 1]);
    f.extend_from_slice(&CLIENT_MAC.0);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&ip);
    f.extend_from_slice(&icmp);
    f
}

#[test]
fn fragmentation_needed_about_a_flows_segment_reaches_every_replica_translated() {
    use tandem_wire::checksum::internet_checksum;
    let mut lab = Lab::new();
    let hs = Hs::default();
    let (c, p, b) = established(&mut lab);
    // The primary sends a segment the client's path cannot carry; the router says so,
    // quoting it (visible space: the primary's own ISN is the visible one).
    lab.send(Seg {
        seq: b,
        ack: c,
        opts: Opts::ts(80_005, 103),
        payload: &data(1000, 0),
        ..Seg::BACKUP
    });
    let out = lab.send(Seg {
        seq: p,
        ack: c,
        opts: Opts::ts(5005, 103),
        payload: &data(1000, 0),
        ..Seg::PRIMARY
    });
    assert_eq!(one(&out, CLIENT).seq, p);
    // Straight to the rig: the kit's parse is for TCP.
    lab.rig.rx_one(Side::Outside, lab.now, icmp_about(3, 4, p));
    let sent: Vec<_> = lab.out.tx.drain(..).collect();
    assert_eq!(sent.len(), 2, "one for each replica");
    for t in &sent {
        assert_eq!(t.side, Side::Inside);
        let f = &t.buf;
        let (outer, icmp) = (&f[14..34], &f[34..]);
        let dst = Ipv4Addr::new(outer[16], outer[17], outer[18], outer[19]);
        let (mac, own_seq) = if dst == PRIMARY {
            (PRIMARY_MAC, p)
        } else {
            assert_eq!(dst, BACKUP);
            (BACKUP_MAC, b)
        };
        assert_eq!(&f[..6], &mac.0);
        assert_eq!(internet_checksum(outer), 0, "outer IPv4 checksum");
        assert_eq!(internet_checksum(icmp), 0, "ICMP checksum");
        assert_eq!((icmp[0], icmp[1]), (3, 4));
        assert_eq!(&icmp[6..8], &[0x05, 0x00], "the MTU as the router said");
        let quoted = &icmp[8..28];
        assert_eq!(internet_checksum(quoted), 0, "quoted IPv4 checksum");
        assert_eq!(
            &quoted[12..16],
            &dst.octets(),
            "about the replica's own segment"
        );
        assert_eq!(&quoted[16..20], &CLIENT.octets());
        let seq = u32::from_be_bytes([icmp[32], icmp[33], icmp[34], icmp[35]]);
        assert_eq!(seq, own_seq, "in the replica's own sequence space");
    }
    let _ = hs;
    assert_eq!(lab.engine.counters().icmp_frag_needed, 2);
}

#[test]
fn icmp_errors_quoting_nothing_in_flight_or_of_other_kinds_are_counted_and_dropped() {
    let mut lab = Lab::new();
    let (_, p, _) = established(&mut lab);
    // Blind: a sequence number the flow never sent.
    assert!(lab
        .feed(Side::Outside, icmp_about(3, 4, p + 5_000_000))
        .is_empty());
    // Already acked by the client.
    assert!(lab.feed(Side::Outside, icmp_about(3, 4, p - 50)).is_empty());
    // Time exceeded: nothing a replica can act on.
    assert!(lab.feed(Side::Outside, icmp_about(11, 0, p - 1)).is_empty());
    assert_eq!(dropped(&mut lab, DropReason::IcmpError), 3);
    assert_eq!(lab.engine.counters().icmp_frag_needed, 0);
    // Echo to the VIP still goes to the control core.
    let mut echo = icmp_about(8, 0, 0);
    echo[34 + 2..34 + 4].fill(0);
    lab.feed(Side::Outside, echo);
    assert_eq!(lab.engine.counters().to_control, 1);
}

// ---- the hold pool, shared ---------------------------------------------------------------

/// A second flow, from the client's port `port`: the handshake, then `n` 10-byte segments
/// from its standby that the client never acks (from `k0` on).
fn second_flow_standby_data(lab: &mut Lab, port: u16, handshake: bool, k0: u32, n: u32) {
    // Replica segments to that port, with the window a replica opens.
    let to_port = |template: Seg<'static>| Seg {
        dport: port,
        window: 65535,
        opts: Opts::NONE,
        ..template
    };
    if handshake {
        let syn = Seg {
            sport: port,
            seq: 7000,
            opts: Opts::NONE,
            ..Seg::CLIENT_SYN
        };
        assert_eq!(lab.send(syn).len(), 2);
        lab.send(Seg {
            seq: 300,
            ack: 7001,
            ..to_port(Seg::PRIMARY_SYNACK)
        });
        let synack = lab.send(Seg {
            seq: 900,
            ack: 7001,
            ..to_port(Seg::BACKUP_SYNACK)
        });
        assert_eq!(one(&synack, CLIENT).flags, S | A);
        let ack = Seg {
            sport: port,
            seq: 7001,
            ack: 301,
            ..Seg::CLIENT
        };
        assert_eq!(lab.send(ack).len(), 2);
    }
    for k in k0..k0 + n {
        // Selection spreads: this flow's active replica is the backup, its standby the
        // primary.
        let out = lab.send(Seg {
            seq: 301 + 10 * k,
            ack: 7001,
            payload: &data(10, 0),
            ..to_port(Seg::PRIMARY)
        });
        assert!(out.is_empty(), "held, not sent: {out:?}");
    }
}

#[test]
fn a_flow_whose_client_never_acks_cannot_pin_the_hold_pool_against_other_flows() {
    let mut lab = Lab::with(EngineConfig {
        hold_segments: 8,
        ..config()
    });
    let hs = Hs::default();
    lab.handshake(&hs);
    // The backup of the first flow runs ahead and its client never acks: six of the
    // pool's eight slots, held.
    for k in 0..6u32 {
        let seq = hs.bisn + 1 + 10 * k;
        lab.send(Seg {
            seq,
            ack: hs.cisn + 1,
            opts: Opts::ts(80_001, 101),
            payload: &data(10, 0),
            ..Seg::BACKUP
        });
    }
    assert_eq!(lab.engine.counters().held_segments, 6);
    // A second flow's standby output gets what is left, and loses its own oldest beyond.
    second_flow_standby_data(&mut lab, CPORT + 1, true, 0, 4);
    assert_eq!(lab.engine.counters().held_segments, 8);
    let refused = dropped(&mut lab, DropReason::HoldBudget);
    assert!(refused > 0);
    // The sweep takes the first flow down to a fair share: the pool holds two legs and
    // room for one more, so each keeps at most a third of it.
    for _ in 0..4 {
        lab.advance(20 * MS);
        lab.poll();
    }
    assert!(lab.engine.counters().held_segments <= 6);
    // The second flow now keeps what its backup sends.
    let before = dropped(&mut lab, DropReason::HoldBudget);
    second_flow_standby_data(&mut lab, CPORT + 1, false, 4, 2);
    assert_eq!(
        dropped(&mut lab, DropReason::HoldBudget),
        before,
        "nothing refused"
    );
}
