//! DESIGN §3.11, SYN floods: past `syn_backlog` half-open flows, a SYN makes no flow;
//! Tandem answers it with a SYN cookie, and the client's ACK makes the flow, opens the
//! replicas' connections and splices them in with the translation of every other flow.

use std::net::Ipv4Addr;
use tandem_testkit::*;

use tandem_engine::{DropReason, EngineConfig, FlowPhase, Side};
use tandem_wire::TcpFlags;

const RST: TcpFlags = TcpFlags::RST;

/// Every SYN past none: a cookie.
fn cookies_always() -> EngineConfig {
    EngineConfig {
        syn_backlog: 0,
        ..config()
    }
}

/// The client's SYN (ISN 1000, TSval 100), answered with a cookie; returns the SYN-ACK.
fn cookie_synack(lab: &mut Lab) -> Seen {
    let out = lab.send(Seg {
        seq: 1000,
        ..Seg::CLIENT_SYN
    });
    assert!(to(&out, PRIMARY).is_empty() && to(&out, BACKUP).is_empty());
    one(&out, CLIENT)
}

/// A cookie-made flow, both replicas answered: returns (the cookie, Tandem's TSval).
fn cookie_flow(lab: &mut Lab) -> (u32, u32) {
    let synack = cookie_synack(lab);
    let cookie = synack.seq;
    let our_ts = synack.ts.expect("timestamps").0;
    let out = lab.send(Seg {
        seq: 1001,
        ack: cookie + 1,
        opts: Opts::ts(101, our_ts),
        ..Seg::CLIENT
    });
    assert_eq!(one(&out, PRIMARY).flags, S);
    lab.send(Seg {
        seq: 50_000,
        ack: 1001,
        ..Seg::PRIMARY_SYNACK
    });
    lab.send(Seg {
        seq: 900_000,
        ack: 1001,
        ..Seg::BACKUP_SYNACK
    });
    (cookie, our_ts)
}

#[test]
fn past_the_backlog_a_syn_is_answered_with_a_cookie_and_makes_no_flow() {
    let mut lab = Lab::with(EngineConfig {
        syn_backlog: 4,
        ..config()
    });
    for i in 0..10 {
        let out = lab.send(Seg::spoofed_syn(i));
        if i < 4 {
            assert_eq!(out.len(), 2, "SYN {i} to both replicas");
        } else {
            assert_eq!(out.len(), 1, "SYN {i}: one answer");
            let a = &out[0];
            assert_eq!((a.side, a.flags, a.window), (Side::Outside, S | A, 0));
            assert_eq!((a.src, a.dst), (VIP, Ipv4Addr::from(0xc612_1000 + i)));
            assert_eq!(a.ack, i.wrapping_mul(7919) + 1);
        }
    }
    let c = lab.engine.counters();
    assert_eq!((c.flows, c.half_open, c.syn_cookies_sent), (4, 4, 6));
}

#[test]
fn a_cookies_syn_ack_carries_the_clients_options_and_a_closed_window() {
    let mut lab = Lab::with(cookies_always());
    let synack = cookie_synack(&mut lab);
    assert_eq!((synack.flags, synack.ack, synack.window), (S | A, 1001, 0));
    assert_eq!(synack.mss, Some(1460));
    assert_eq!(synack.wscale, Some(7));
    assert!(synack.sack_ok);
    assert_eq!(
        synack.ts.map(|t| t.1),
        Some(100),
        "the client's TSval echoed"
    );
    assert_eq!(lab.engine.flows().len(), 0);
    // The same SYN again gets the same cookie: nothing was kept, nothing needed.
    assert_eq!(cookie_synack(&mut lab).seq, synack.seq);
    // A client without options gets none.
    let out = lab.send(Seg {
        seq: 2000,
        opts: Opts::NONE,
        ..Seg::CLIENT_SYN
    });
    let bare = one(&out, CLIENT);
    assert_eq!((bare.wscale, bare.sack_ok, bare.ts), (None, false, None));
}

#[test]
fn the_ack_of_a_cookie_opens_both_replicas_with_the_clients_isn_and_options() {
    let mut lab = Lab::with(cookies_always());
    let synack = cookie_synack(&mut lab);
    let our_ts = synack.ts.expect("ts").0;
    let out = lab.send(Seg {
        seq: 1001,
        ack: synack.seq + 1,
        opts: Opts::ts(101, our_ts),
        ..Seg::CLIENT
    });
    for r in [PRIMARY, BACKUP] {
        let syn = one(&out, r);
        assert_eq!(
            (syn.flags, syn.seq, syn.sport, syn.src),
            (S, 1000, CPORT, CLIENT)
        );
        assert_eq!(
            (syn.mss, syn.wscale, syn.sack_ok),
            (Some(1460), Some(7), true)
        );
        assert_eq!(syn.ts.map(|t| t.0), Some(101));
    }
    assert_eq!(lab.phase(), FlowPhase::SynSent);
    assert_eq!(lab.engine.counters().syn_cookies_accepted, 1);
    assert_eq!(
        lab.engine.counters().half_open,
        0,
        "the client is established"
    );
    // The primary answers: its SYN-ACK waits for the backup's, as for any flow.
    let out = lab.send(Seg {
        seq: 50_000,
        ack: 1001,
        ..Seg::PRIMARY_SYNACK
    });
    assert!(out.is_empty());
    let out = lab.send(Seg {
        seq: 900_000,
        ack: 1001,
        ..Seg::BACKUP_SYNACK
    });
    // Tandem completes each replica's handshake, and opens the client's window.
    let p = one(&out, PRIMARY);
    assert_eq!(
        (p.flags, p.seq, p.ack, p.ts),
        (A, 1001, 50_001, Some((101, 5000)))
    );
    let b = one(&out, BACKUP);
    assert_eq!(
        (b.flags, b.seq, b.ack, b.ts),
        (A, 1001, 900_001, Some((101, 80_000)))
    );
    let c = one(&out, CLIENT);
    assert_eq!((c.flags, c.seq, c.ack), (A, synack.seq + 1, 1001));
    assert_eq!(
        c.window,
        65535 >> 7,
        "the replicas' window, in the scale Tandem gave"
    );
    assert_eq!(c.ts, Some((our_ts, 101)));
    assert_eq!(lab.phase(), FlowPhase::Established);
}

#[test]
fn a_cookie_flows_stream_is_translated_both_ways_and_survives_a_failover_byte_exact() {
    let mut lab = Lab::with(cookies_always());
    let (cookie, our_ts) = cookie_flow(&mut lab);
    let v1 = cookie + 1;
    // Client → both replicas, acks and echoed timestamps in each one's space.
    let out = lab.send(Seg {
        seq: 1001,
        ack: v1,
        opts: Opts::ts(102, our_ts),
        payload: &data(100, 1),
        ..Seg::CLIENT
    });
    let p = one(&out, PRIMARY);
    assert_eq!(
        (p.seq, p.ack, p.ts, &p.payload),
        (1001, 50_001, Some((102, 5000)), &data(100, 1))
    );
    let b = one(&out, BACKUP);
    assert_eq!((b.ack, b.ts), (900_001, Some((102, 80_000))));
    // Replicas → client: the primary's bytes, in the cookie's sequence space and
    // Tandem's clock.
    let out = lab.send(Seg {
        seq: 900_001,
        ack: 1101,
        opts: Opts::ts(80_001, 102),
        payload: &data(100, 7),
        ..Seg::BACKUP
    });
    assert!(to(&out, CLIENT).is_empty(), "the backup's output is held");
    let out = lab.send(Seg {
        seq: 50_001,
        ack: 1101,
        opts: Opts::ts(5001, 102),
        payload: &data(100, 7),
        ..Seg::PRIMARY
    });
    let seg = one(&out, CLIENT);
    assert_eq!((seg.seq, seg.ack, &seg.payload), (v1, 1101, &data(100, 7)));
    assert_eq!(seg.ts, Some((our_ts + 1, 102)));
    // The primary sends 50 more that the client never gets; then it dies.
    lab.send(Seg {
        seq: 900_101,
        ack: 1101,
        opts: Opts::ts(80_002, 102),
        payload: &data(50, 3),
        ..Seg::BACKUP
    });
    lab.send(Seg {
        seq: 1101,
        ack: v1 + 100,
        opts: Opts::ts(103, our_ts + 1),
        ..Seg::CLIENT
    });
    lab.kill(R::P);
    let mut out = lab.send(Seg {
        seq: 1101,
        ack: v1 + 100,
        opts: Opts::ts(104, our_ts + 1),
        ..Seg::CLIENT
    });
    out.extend(lab.poll());
    // The backup's held bytes follow on at the client's next sequence number.
    let seg = to(&out, CLIENT)
        .into_iter()
        .find(|s| !s.payload.is_empty())
        .expect("the backup's held data replayed");
    assert_eq!((seg.seq, &seg.payload), (v1 + 100, &data(50, 3)));
    assert!(seg.ts.expect("ts").0 > our_ts, "TSval never goes backwards");
    assert_eq!(lab.engine.counters().flow_failovers, 1);
}

#[test]
fn a_forged_or_stale_cookie_makes_no_flow_and_is_counted() {
    let mut lab = Lab::with(cookies_always());
    let synack = cookie_synack(&mut lab);
    // Off by one, and a thousand blind guesses.
    let out = lab.send(Seg {
        seq: 1001,
        ack: synack.seq + 2,
        opts: Opts::ts(101, 1),
        ..Seg::CLIENT
    });
    assert_eq!(
        one(&out, CLIENT).flags,
        RST,
        "a host's answer to a stray ACK"
    );
    for i in 0..1000u32 {
        lab.send(Seg {
            seq: 1001,
            ack: i.wrapping_mul(2_654_435_761),
            opts: Opts::ts(101, 1),
            ..Seg::CLIENT
        });
    }
    assert_eq!(lab.engine.flows().len(), 0);
    let c = lab.engine.counters();
    assert_eq!(c.syn_cookies_failed, 1001);
    assert_eq!(c.syn_cookies_accepted, 0);
    assert_eq!(c.dropped(DropReason::NoFlow), 1001);
    // The right cookie with another client ISN, or without the timestamps it promised.
    lab.send(Seg {
        seq: 1002,
        ack: synack.seq + 1,
        opts: Opts::ts(101, 1),
        payload: &[1],
        ..Seg::CLIENT
    });
    lab.send(Seg {
        seq: 1001,
        ack: synack.seq + 1,
        ..Seg::CLIENT
    });
    assert_eq!(lab.engine.flows().len(), 0);
    // The right one, two time slots (about 69 s) later.
    lab.advance(1 << 36);
    lab.send(Seg {
        seq: 1001,
        ack: synack.seq + 1,
        opts: Opts::ts(101, 1),
        ..Seg::CLIENT
    });
    assert_eq!(lab.engine.flows().len(), 0);
    assert_eq!(lab.engine.counters().syn_cookies_accepted, 0);
}

#[test]
fn a_lost_ack_of_a_cookie_is_made_good_by_the_clients_zero_window_probe() {
    let mut lab = Lab::with(cookies_always());
    let synack = cookie_synack(&mut lab);
    // Linux probes a zero window at snd_una - 1: the client's ISN itself.
    let out = lab.send(Seg {
        seq: 1000,
        ack: synack.seq + 1,
        opts: Opts::ts(150, 1),
        ..Seg::CLIENT
    });
    assert_eq!(one(&out, PRIMARY).seq, 1000);
    assert_eq!(lab.engine.counters().syn_cookies_accepted, 1);
}

#[test]
fn a_syn_flood_past_the_backlog_cannot_push_out_a_client_whose_handshake_spans_it() {
    // With cookies, and without (eviction only: the defence before cookies).
    for (backlog, gets_in) in [(4, true), (usize::MAX, false)] {
        let mut lab = Lab::with(EngineConfig {
            max_flows: 8,
            syn_backlog: backlog,
            ..config()
        });
        for i in 0..100 {
            lab.send(Seg::spoofed_syn(i));
        }
        let out = lab.send(Seg {
            seq: 1000,
            ..Seg::CLIENT_SYN
        });
        let (synack_seq, our_ts) = match to(&out, CLIENT).first() {
            Some(s) => (s.seq, s.ts.map_or(0, |t| t.0)),
            None => {
                // No cookie: the flow waits for the replicas' SYN-ACKs.
                lab.send(Seg {
                    seq: 50_000,
                    ack: 1001,
                    ..Seg::PRIMARY_SYNACK
                });
                let out = lab.send(Seg {
                    seq: 900_000,
                    ack: 1001,
                    ..Seg::BACKUP_SYNACK
                });
                let s = one(&out, CLIENT);
                (s.seq, s.ts.map_or(0, |t| t.0))
            }
        };
        for i in 100..1100 {
            lab.send(Seg::spoofed_syn(i));
        }
        let out = lab.send(Seg {
            seq: 1001,
            ack: synack_seq + 1,
            opts: Opts::ts(101, our_ts),
            ..Seg::CLIENT
        });
        let reset = to(&out, CLIENT).iter().any(|s| s.flags.contains(RST));
        let opened = !to(&out, PRIMARY).is_empty();
        assert_eq!((opened, !reset), (gets_in, gets_in), "backlog {backlog}");
        // The flood holds what it may: the backlog, or the whole table.
        let flows = lab.engine.counters().flows;
        assert_eq!(flows, if gets_in { 4 + 1 } else { 8 }, "backlog {backlog}");
    }
}

#[test]
fn a_replica_that_refuses_the_timestamps_the_client_was_promised_leaves_a_cookie_flow() {
    let mut lab = Lab::with(cookies_always());
    let synack = cookie_synack(&mut lab);
    let our_ts = synack.ts.expect("ts").0;
    lab.send(Seg {
        seq: 1001,
        ack: synack.seq + 1,
        opts: Opts::ts(101, our_ts),
        ..Seg::CLIENT
    });
    lab.send(Seg {
        seq: 50_000,
        ack: 1001,
        ..Seg::PRIMARY_SYNACK
    });
    let no_ts = Opts {
        ts: None,
        ..Opts::syn(1460, 7, 0)
    };
    let out = lab.send(Seg {
        seq: 900_000,
        ack: 1001,
        opts: no_ts,
        ..Seg::BACKUP_SYNACK
    });
    assert!(one(&out, BACKUP).flags.contains(RST));
    assert_eq!(one(&out, PRIMARY).ack, 50_001);
    assert!(one(&out, CLIENT).window > 0);
    let c = lab.engine.counters();
    assert_eq!((c.legs_lost, c.flows_unprotected), (1, 1));
}

#[test]
fn a_cookie_flow_whose_replicas_stay_silent_gets_its_syn_repeated_then_a_rst() {
    let mut lab = Lab::with(cookies_always());
    let synack = cookie_synack(&mut lab);
    lab.send(Seg {
        seq: 1001,
        ack: synack.seq + 1,
        opts: Opts::ts(101, 1),
        ..Seg::CLIENT
    });
    let mut repeats = 0;
    let mut reset = None;
    for _ in 0..80 {
        lab.advance(100 * MS);
        let out = lab.poll();
        repeats += to(&out, PRIMARY).iter().filter(|s| s.flags == S).count();
        if let Some(r) = to(&out, CLIENT).into_iter().find(|s| s.flags.contains(RST)) {
            reset = Some(r);
            break;
        }
    }
    assert_eq!(repeats, 5, "the SYN again every 200 ms, five times");
    let r = reset.expect("a RST once the SYN timeout is over");
    assert_eq!(
        r.seq,
        synack.seq + 1,
        "at the client's next expected sequence"
    );
    assert_eq!(lab.engine.flows().len(), 0);
    assert_eq!(lab.engine.counters().flows_lost, 1);
}

#[test]
fn the_half_open_gauge_follows_handshakes_in_and_out() {
    let mut lab = Lab::new();
    lab.send(Seg {
        seq: 1000,
        ..Seg::CLIENT_SYN
    });
    assert_eq!(lab.engine.counters().half_open, 1);
    lab.send(Seg {
        seq: 50_000,
        ack: 1001,
        ..Seg::PRIMARY_SYNACK
    });
    let out = lab.send(Seg {
        seq: 900_000,
        ack: 1001,
        ..Seg::BACKUP_SYNACK
    });
    let s = one(&out, CLIENT);
    assert_eq!(lab.engine.counters().half_open, 1);
    lab.send(Seg {
        seq: 1001,
        ack: s.seq + 1,
        opts: Opts::ts(101, 5000),
        ..Seg::CLIENT
    });
    assert_eq!(lab.engine.counters().half_open, 0);
    lab.send(Seg::spoofed_syn(1));
    assert_eq!(lab.engine.counters().half_open, 1);
    lab.advance(config().syn_timeout_ns + MS);
    lab.poll();
    assert_eq!(lab.engine.counters().half_open, 0);
}
