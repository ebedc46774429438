//! An off-path attacker against one established flow (DESIGN §3.11): the client and two
//! deterministic replicas exchange their streams through the engine, while the attacker,
//! who knows the addresses and ports but not the sequence numbers, sends segments of any
//! kind from the outside (as the client) and from the inside (as either replica). Its
//! sequence and ack numbers are at least 2^24 away from the true ones (an 8 MiB window at
//! the lab's scale is 2^23): the guesses of someone who cannot see the flow.
//!
//! The check: every byte the client receives is the replicas' stream at its offset, every
//! byte a replica receives is the client's, nobody is sent a RST, and the flow lives.
//! The flow is made either by the usual handshake or from a SYN cookie (§3.11): the
//! client's sequence space is then Tandem's cookie, and every replica is translated.
//!
//! Shared by the `offpath` cargo-fuzz target and a proptest smoke test.

#![allow(dead_code)]

use arbitrary::Arbitrary;
use tandem_engine::EngineConfig;
use tandem_testkit::*;
use tandem_wire::TcpFlags;

/// How the flow under attack was made.
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The client's SYN reached the replicas; the primary's SYN-ACK reached the client.
    Handshake,
    /// The SYN came past the backlog: Tandem's cookie, the replicas opened by Tandem.
    Cookie,
}

/// What happens next.
#[derive(Arbitrary, Debug, Clone)]
pub enum Op {
    /// The client sends its next `n % 200 + 1` bytes.
    ClientData(u8),
    /// Both replicas send their next `n % 200 + 1` bytes (the same bytes), the backup's
    /// first or the primary's.
    ServerData { n: u8, backup_first: bool },
    /// The client acks what it has received in order.
    ClientAck,
    /// Each replica acks what it has received in order.
    ServerAck,
    /// A blind segment from the outside, as the client.
    Blind(Guess),
    /// A forged segment from the inside, as the primary or the backup.
    Forged { backup: bool, guess: Guess },
    /// Time goes on (`ms % 10` milliseconds).
    Advance(u8),
}

/// A segment by someone who does not know the sequence numbers.
#[derive(Arbitrary, Debug, Clone)]
pub struct Guess {
    pub flags: u8,
    pub seq_off: u32,
    pub ack_off: u32,
    pub len: u8,
    pub ts: Option<(u32, u32)>,
}

/// `x` mapped into `[2^24, 2^32 - 2^24]`: an offset no window reaches.
fn far(x: u32) -> u32 {
    const EDGE: u32 = 1 << 24;
    EDGE + x % (u32::MAX - 2 * EDGE + 1)
}

/// The attacker's payload: `g.len` bytes.
fn payload_of(g: &Guess) -> Vec<u8> {
    (0..u32::from(g.len)).map(|i| i as u8).collect()
}

/// The client's stream at offset `k`, and the replicas'.
fn client_byte(k: u32) -> u8 {
    (k.wrapping_mul(7) ^ 0x5a) as u8
}
fn server_byte(k: u32) -> u8 {
    (k.wrapping_mul(13) ^ 0xa5) as u8
}

struct Run {
    lab: Lab,
    hs: Hs,
    /// The client's view of the replicas' ISN: the primary's, or the cookie.
    visible: u32,
    /// Bytes the client has sent; the replicas have sent.
    c_sent: u32,
    s_sent: u32,
    /// Bytes received in order: by the client; by the primary and the backup.
    c_rcv: u32,
    r_rcv: [u32; 2],
}

impl Run {
    fn c1(&self) -> u32 {
        self.hs.cisn.wrapping_add(1)
    }

    /// Checks what left the engine and moves the receivers on.
    fn take(&mut self, out: Vec<Seen>) {
        for s in out {
            assert!(!s.flags.contains(TcpFlags::RST), "a RST was sent: {s:?}");
            let (base, rcv, byte): (u32, &mut u32, fn(u32) -> u8) = if s.dst == CLIENT {
                (self.visible.wrapping_add(1), &mut self.c_rcv, server_byte)
            } else if s.dst == PRIMARY {
                (self.c1(), &mut self.r_rcv[0], client_byte)
            } else if s.dst == BACKUP {
                (self.c1(), &mut self.r_rcv[1], client_byte)
            } else {
                panic!("a segment to {}: {s:?}", s.dst);
            };
            let off = s.seq.wrapping_sub(base);
            for (i, b) in s.payload.iter().enumerate() {
                let k = off.wrapping_add(i as u32);
                assert_eq!(*b, byte(k), "byte {k} to {} is not the stream's", s.dst);
            }
            let end = off.wrapping_add(s.payload.len() as u32);
            if off <= *rcv && end > *rcv {
                *rcv = end;
            }
        }
    }

    fn server_data(&mut self, r: R, from: u32, n: u32) {
        let isn = if r == R::P {
            self.hs.pisn
        } else {
            self.hs.bisn
        };
        let payload: Vec<u8> = (from..from + n).map(server_byte).collect();
        let ack = self.c1().wrapping_add(self.r_rcv[usize::from(r == R::B)]);
        let seq = isn.wrapping_add(1).wrapping_add(from);
        let out = self.lab.send(Seg {
            seq,
            ack,
            payload: &payload,
            ..Seg::replica(r)
        });
        self.take(out);
    }

    /// The attacker's segment `g` with `payload`, as the client (`None`) or as replica
    /// `r`: its sequence and ack numbers far from the true ones. (SYN|ACK and bare SYN
    /// from the outside make no new flow here: the flow exists.)
    fn guess<'a>(&self, g: &Guess, from: Option<R>, payload: &'a [u8]) -> Seg<'a> {
        let (template, seq, ack) = match from {
            None => (
                Seg::CLIENT,
                self.c1().wrapping_add(self.c_sent),
                self.visible.wrapping_add(1).wrapping_add(self.s_sent),
            ),
            Some(r) => {
                let isn = if r == R::P {
                    self.hs.pisn
                } else {
                    self.hs.bisn
                };
                (
                    Seg::replica(r),
                    isn.wrapping_add(1).wrapping_add(self.s_sent),
                    self.c1().wrapping_add(self.c_sent),
                )
            }
        };
        Seg {
            seq: seq.wrapping_add(far(g.seq_off)),
            ack: ack.wrapping_add(far(g.ack_off)),
            flags: TcpFlags(g.flags),
            window: 500,
            opts: Opts {
                ts: g.ts,
                ..Opts::NONE
            },
            payload,
            ..template
        }
    }
}

/// A flow made from a cookie, both replicas answered; returns the cookie.
fn cookie_handshake(lab: &mut Lab, hs: &Hs) -> u32 {
    let out = lab.send(Seg {
        seq: hs.cisn,
        opts: Opts::NONE,
        ..Seg::CLIENT_SYN
    });
    let cookie = one(&out, CLIENT).seq;
    let out = lab.send(Seg {
        seq: hs.cisn.wrapping_add(1),
        ack: cookie.wrapping_add(1),
        window: 500,
        ..Seg::CLIENT
    });
    assert_eq!(
        to(&out, PRIMARY).len() + to(&out, BACKUP).len(),
        2,
        "SYNs to both"
    );
    lab.send(Seg {
        seq: hs.pisn,
        ack: hs.cisn.wrapping_add(1),
        opts: Opts::NONE,
        ..Seg::PRIMARY_SYNACK
    });
    let out = lab.send(Seg {
        seq: hs.bisn,
        ack: hs.cisn.wrapping_add(1),
        opts: Opts::NONE,
        ..Seg::BACKUP_SYNACK
    });
    assert!(one(&out, CLIENT).window > 0, "the client's window opened");
    cookie
}

/// Plays `ops` against a fresh flow; panics if the attacker changed anything.
pub fn run(ops: &[Op]) {
    run_from(Start::Handshake, ops);
}

/// Plays `ops` against a fresh flow made as `start` says.
pub fn run_from(start: Start, ops: &[Op]) {
    let hs = Hs::default();
    let (lab, visible) = match start {
        Start::Handshake => {
            let mut lab = Lab::new();
            lab.handshake(&hs);
            (lab, hs.pisn)
        }
        Start::Cookie => {
            let mut lab = Lab::with(EngineConfig {
                syn_backlog: 0,
                ..config()
            });
            let cookie = cookie_handshake(&mut lab, &hs);
            (lab, cookie)
        }
    };
    let mut run = Run {
        lab,
        hs,
        visible,
        c_sent: 0,
        s_sent: 0,
        c_rcv: 0,
        r_rcv: [0, 0],
    };
    for op in ops.iter().take(2000) {
        match op {
            Op::ClientData(n) => {
                let n = u32::from(*n % 200) + 1;
                let from = run.c_sent;
                let payload: Vec<u8> = (from..from + n).map(client_byte).collect();
                let seq = run.c1().wrapping_add(from);
                let ack = run.visible.wrapping_add(1).wrapping_add(run.c_rcv);
                let out = run.lab.send(Seg {
                    seq,
                    ack,
                    window: 500,
                    payload: &payload,
                    ..Seg::CLIENT
                });
                run.c_sent += n;
                run.take(out);
            }
            Op::ServerData { n, backup_first } => {
                let n = u32::from(*n % 200) + 1;
                let from = run.s_sent;
                let order = if *backup_first {
                    [R::B, R::P]
                } else {
                    [R::P, R::B]
                };
                for r in order {
                    run.server_data(r, from, n);
                }
                run.s_sent += n;
            }
            Op::ClientAck => {
                let seq = run.c1().wrapping_add(run.c_sent);
                let ack = run.visible.wrapping_add(1).wrapping_add(run.c_rcv);
                let out = run.lab.send(Seg {
                    seq,
                    ack,
                    window: 500,
                    ..Seg::CLIENT
                });
                run.take(out);
            }
            Op::ServerAck => {
                for (r, isn) in [(R::P, run.hs.pisn), (R::B, run.hs.bisn)] {
                    let seq = isn.wrapping_add(1).wrapping_add(run.s_sent);
                    let ack = run.c1().wrapping_add(run.r_rcv[usize::from(r == R::B)]);
                    let out = run.lab.send(Seg {
                        seq,
                        ack,
                        ..Seg::replica(r)
                    });
                    run.take(out);
                }
            }
            Op::Blind(g) => {
                let payload = payload_of(g);
                let out = run.lab.send(run.guess(g, None, &payload));
                // A challenge ACK is all the client may get.
                for s in &out {
                    assert!(s.dst == CLIENT && s.payload.is_empty(), "{s:?}");
                }
                run.take(out);
            }
            Op::Forged { backup, guess } => {
                let r = if *backup { R::B } else { R::P };
                let payload = payload_of(guess);
                let out = run.lab.send(run.guess(guess, Some(r), &payload));
                // At most a challenge ACK to that replica.
                for s in &out {
                    assert!(s.src == CLIENT && s.payload.is_empty(), "{s:?}");
                }
                run.take(out);
            }
            Op::Advance(ms) => {
                run.lab.advance(u64::from(*ms % 10) * MS);
                let out = run.lab.poll();
                run.take(out);
            }
        }
        assert_eq!(run.lab.engine.flows().len(), 1, "the flow lives");
        let c = run.lab.engine.counters();
        assert_eq!(c.legs_lost, 0, "no leg lost to the attacker");
    }
    // Everything sent arrived, in order: nothing was lost to the attack either.
    let out = run.lab.poll();
    run.take(out);
    assert_eq!(
        run.r_rcv,
        [run.c_sent, run.c_sent],
        "the replicas have the client's bytes"
    );
    assert_eq!(run.c_rcv, run.s_sent, "the client has the replicas' bytes");
}
