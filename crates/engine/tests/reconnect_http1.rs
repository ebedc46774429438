//! Reconnect mode with `replay: http1` (DESIGN §2): the replay starts at the oldest
//! request not fully answered, with an ISN that keeps the client's sequence numbers; the
//! new server's answer is compared with what the client has, leaving out the `Date` and
//! `Server` lines, and spliced right after it. Each test names what it checks.

use tandem_testkit::*;

use tandem_wire::TcpFlags;

const REQ_A: &[u8] = b"GET /a HTTP/1.1\r\nHost: vip\r\n\r\n";
const REQ_B: &[u8] = b"GET /b HTTP/1.1\r\nHost: vip\r\n\r\n";
const POST: &[u8] = b"POST /c HTTP/1.1\r\nHost: vip\r\nContent-Length: 2\r\n\r\nhi";

fn response(server: &str, date: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 200 OK\r\nServer: {server}\r\nDate: {date}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

fn body(n: usize, salt: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(13) ^ salt).collect()
}

/// The handshake through the primary; returns the client's and the primary's first data
/// sequence numbers.
fn handshake(lab: &mut Lab) -> (u32, u32) {
    let hs = Hs::default();
    let (c1, p1) = (hs.cisn + 1, hs.pisn + 1);
    lab.send(Seg {
        seq: hs.cisn,
        opts: hs.copts,
        ..Seg::CLIENT_SYN
    });
    lab.send(Seg {
        seq: hs.pisn,
        ack: c1,
        window: hs.pwin,
        opts: hs.popts,
        ..Seg::PRIMARY_SYNACK
    });
    lab.send(Seg {
        seq: c1,
        ack: p1,
        opts: Opts::ts(101, 5000),
        ..Seg::CLIENT
    });
    (c1, p1)
}

/// The client sends `req` at `c`; the primary answers `answer` at `p` (client acks it).
/// Timestamps grow with the sequence numbers (PAWS).
fn exchange(lab: &mut Lab, c: u32, p: u32, req: &[u8], answer: &[u8]) {
    let hs = Hs::default();
    let cts = |c: u32| 1000 + c.wrapping_sub(hs.cisn);
    let pts = |p: u32| 5000 + p.wrapping_sub(hs.pisn);
    let out = lab.send(Seg {
        seq: c,
        ack: p,
        opts: Opts::ts(cts(c), pts(p)),
        payload: req,
        ..Seg::CLIENT
    });
    assert_eq!(one(&out, PRIMARY).payload, req);
    let c2 = c + req.len() as u32;
    for (k, piece) in answer.chunks(1000).enumerate() {
        let at = p + (k * 1000) as u32;
        let out = lab.send(Seg {
            seq: at,
            ack: c2,
            opts: Opts::ts(pts(at), cts(c2)),
            payload: piece,
            ..Seg::PRIMARY
        });
        assert_eq!(one(&out, CLIENT).payload, piece);
    }
    let p2 = p + answer.len() as u32;
    lab.send(Seg {
        seq: c2,
        ack: p2,
        opts: Opts::ts(cts(c2), pts(p2)),
        ..Seg::CLIENT
    });
}

/// The primary dies; returns Tandem's SYN to the backup.
fn fail_primary(lab: &mut Lab) -> Seen {
    lab.kill(R::P);
    lab.engine.request_failover_sweep();
    let out = lab.poll();
    assert!(to(&out, CLIENT).is_empty(), "{out:#?}");
    let syn = one(&out, BACKUP);
    assert!(syn.is_syn(), "{syn:#?}");
    syn
}

/// The backup's SYN-ACK to a SYN at `isn`; returns what Tandem sent it.
fn backup_answers_syn(lab: &mut Lab, isn: u32) -> Vec<Seen> {
    let out = lab.send(Seg {
        seq: Hs::default().bisn,
        ack: isn + 1,
        opts: Opts::syn(1460, 7, 80_000),
        ..Seg::BACKUP_SYNACK
    });
    to(&out, BACKUP)
}

/// The backup's answer from offset `from`, in segments of 1000; what reached the client.
fn backup_sends(lab: &mut Lab, ack: u32, answer: &[u8], from: usize) -> Vec<Seen> {
    let b1 = Hs::default().bisn + 1;
    let mut seen = Vec::new();
    for (k, piece) in answer[from..].chunks(1000).enumerate() {
        let out = lab.send(Seg {
            seq: b1 + (from + k * 1000) as u32,
            ack,
            opts: Opts::ts(80_001 + k as u32, 1000),
            payload: piece,
            ..Seg::BACKUP
        });
        seen.extend(to(&out, CLIENT));
    }
    seen
}

/// What the client's stream gets from `seen` past `has` (its next sequence number),
/// in order: bytes the client already has are not counted twice.
fn client_stream_after(seen: &[Seen], has: u32) -> Vec<u8> {
    let mut next = has;
    let mut out = Vec::new();
    let mut segs: Vec<&Seen> = seen.iter().filter(|s| !s.payload.is_empty()).collect();
    segs.sort_by_key(|s| s.seq.wrapping_sub(has) as i32);
    for s in segs {
        let end = s.seq.wrapping_add(s.payload.len() as u32);
        if (end.wrapping_sub(next) as i32) <= 0 {
            continue;
        }
        let skip = next.wrapping_sub(s.seq) as i32;
        assert!(skip >= 0, "a gap before {}: {seen:#?}", s.seq);
        out.extend_from_slice(&s.payload[skip as usize..]);
        next = end;
    }
    out
}

#[test]
fn a_replay_starts_at_the_oldest_unanswered_request_and_the_answer_is_spliced_byte_exact() {
    let mut lab = Lab::reconnecting_http1();
    let (c1, p1) = handshake(&mut lab);
    let first = response(
        "nginx/1.22.1",
        "Sun, 06 Dec 2026 05:00:00 GMT",
        &body(1500, 1),
    );
    exchange(&mut lab, c1, p1, REQ_A, &first);
    // The second request is answered in part (its head and 2000 bytes) when the
    // primary dies.
    let second = response(
        "nginx/1.22.1",
        "Sun, 06 Dec 2026 05:00:01 GMT",
        &body(6000, 2),
    );
    let c2 = c1 + REQ_A.len() as u32;
    let p2 = p1 + first.len() as u32;
    let has = 2100;
    exchange(&mut lab, c2, p2, REQ_B, &second[..has]);
    let syn = fail_primary(&mut lab);
    assert_eq!(
        syn.seq,
        c2 - 1,
        "the connection starts right before the oldest unanswered request"
    );
    lab.advance(2 * MS);
    let to_backup = backup_answers_syn(&mut lab, syn.seq);
    let replayed: Vec<u8> = to_backup.iter().flat_map(|s| s.payload.clone()).collect();
    assert_eq!(replayed, REQ_B, "only the unanswered request is replayed");
    // Another server: its Server line is 7 bytes shorter, its Date another.
    let new = response("nginx", "Sun, 06 Dec 2026 05:00:09 GMT", &body(6000, 2));
    let c3 = c2 + REQ_B.len() as u32;
    let seen = backup_sends(&mut lab, c3, &new, 0);
    let client_has = p2 + has as u32;
    assert_eq!(
        client_stream_after(&seen, client_has),
        second[has..],
        "the client's stream goes on with exactly the bytes it lacks"
    );
    assert!(
        seen.iter().all(|s| !s.flags.contains(TcpFlags::RST)),
        "{seen:#?}"
    );
    let c = lab.engine.counters().clone();
    assert_eq!(
        (c.reconnects, c.reconnects_spliced, c.flows_lost),
        (1, 1, 0),
        "{c:#?}"
    );
    assert_eq!(c.replayed_bytes, REQ_B.len() as u64);
    assert_eq!(c.replay_skipped_bytes, has as u64 - 7);
    // The client's next request goes to the backup directly, in its own numbers.
    let out = lab.send(Seg {
        seq: c3,
        ack: p2 + second.len() as u32,
        opts: Opts::ts(900_000, 5100),
        payload: REQ_A,
        ..Seg::CLIENT
    });
    let seg = one(&out, BACKUP);
    assert_eq!((seg.seq, seg.payload.as_slice()), (c3, REQ_A));
    assert_eq!(seg.ack, Hs::default().bisn + 1 + new.len() as u32);
}

#[test]
fn a_different_answer_is_a_rst_and_the_client_gets_none_of_it() {
    let mut lab = Lab::reconnecting_http1();
    let (c1, p1) = handshake(&mut lab);
    let old = response("nginx", "d0", &body(6000, 1));
    exchange(&mut lab, c1, p1, REQ_A, &old[..2100]);
    let syn = fail_primary(&mut lab);
    backup_answers_syn(&mut lab, syn.seq);
    let new = response("nginx", "d0", &body(6000, 9));
    let seen = backup_sends(&mut lab, c1 + REQ_A.len() as u32, &new, 0);
    assert!(
        seen.iter().all(|s| s.payload.is_empty()),
        "no byte of the other answer: {seen:#?}"
    );
    assert!(
        seen.iter().any(|s| s.flags.contains(TcpFlags::RST)),
        "{seen:#?}"
    );
    let c = lab.engine.counters().clone();
    assert_eq!((c.reconnects_mismatch, c.flows_lost), (1, 1), "{c:#?}");
}

#[test]
fn an_answer_that_closes_before_what_the_client_has_is_a_rst() {
    let mut lab = Lab::reconnecting_http1();
    let (c1, p1) = handshake(&mut lab);
    let old = response("nginx", "d0", &body(6000, 1));
    exchange(&mut lab, c1, p1, REQ_A, &old[..3000]);
    let syn = fail_primary(&mut lab);
    backup_answers_syn(&mut lab, syn.seq);
    let out = lab.send(Seg {
        seq: Hs::default().bisn + 1,
        ack: c1 + REQ_A.len() as u32,
        flags: TcpFlags::ACK | TcpFlags::FIN,
        opts: Opts::ts(80_001, 1000),
        payload: &old[..1000],
        ..Seg::BACKUP
    });
    let seen = to(&out, CLIENT);
    assert!(seen.iter().all(|s| s.payload.is_empty()), "{seen:#?}");
    assert!(
        seen.iter().any(|s| s.flags.contains(TcpFlags::RST)),
        "{seen:#?}"
    );
}

#[test]
fn a_post_in_flight_is_counted_and_its_flow_gets_a_rst_when_the_replica_dies() {
    let mut lab = Lab::reconnecting_http1();
    let (c1, p1) = handshake(&mut lab);
    let out = lab.send(Seg {
        seq: c1,
        ack: p1,
        opts: Opts::ts(1001, 5000),
        payload: POST,
        ..Seg::CLIENT
    });
    assert_eq!(one(&out, PRIMARY).payload, POST);
    assert_eq!(lab.engine.counters().http1_unreplayable, 1);
    lab.kill(R::P);
    lab.engine.request_failover_sweep();
    let out = lab.poll();
    assert!(to(&out, BACKUP).is_empty(), "no replay: {out:#?}");
    assert!(
        to(&out, CLIENT)
            .iter()
            .any(|s| s.flags.contains(TcpFlags::RST)),
        "{out:#?}"
    );
    let c = lab.engine.counters().clone();
    assert_eq!((c.reconnects_unsafe, c.flows_lost), (1, 1), "{c:#?}");
}

#[test]
fn with_every_request_answered_the_new_connection_carries_the_next_one() {
    let mut lab = Lab::reconnecting_http1();
    let (c1, p1) = handshake(&mut lab);
    let first = response("a", "d", &body(500, 3));
    exchange(&mut lab, c1, p1, REQ_A, &first);
    let c2 = c1 + REQ_A.len() as u32;
    let syn = fail_primary(&mut lab);
    assert_eq!(syn.seq, c2 - 1);
    let to_backup = backup_answers_syn(&mut lab, syn.seq);
    assert!(to_backup.iter().all(|s| s.payload.is_empty()));
    let c = lab.engine.counters().clone();
    assert_eq!((c.reconnects_spliced, c.replayed_bytes), (1, 0), "{c:#?}");
    // The next request and its answer, through the backup.
    let p2 = p1 + first.len() as u32;
    let out = lab.send(Seg {
        seq: c2,
        ack: p2,
        opts: Opts::ts(900_000, 5100),
        payload: REQ_B,
        ..Seg::CLIENT
    });
    assert_eq!(one(&out, BACKUP).payload, REQ_B);
    let second = response("b", "d", &body(300, 4));
    let seen = backup_sends(&mut lab, c2 + REQ_B.len() as u32, &second, 0);
    let seg = one(&seen, CLIENT);
    assert_eq!((seg.seq, seg.payload.as_slice()), (p2, second.as_slice()));
}

#[test]
fn the_log_keeps_only_the_requests_not_yet_answered() {
    let mut lab = Lab::reconnecting_http1();
    let (mut c, mut p) = handshake(&mut lab);
    let answer = response("a", "d", &body(100, 5));
    for _ in 0..50 {
        exchange(&mut lab, c, p, REQ_A, &answer);
        c += REQ_A.len() as u32;
        p += answer.len() as u32;
    }
    // 50 requests of which none is outstanding: the log holds at most a chunk.
    assert!(lab.engine.counters().replay_log_bytes <= 2048);
    let syn = fail_primary(&mut lab);
    assert_eq!(syn.seq, c - 1);
}
