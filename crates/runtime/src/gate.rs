//! What a worker lets through to the control core (issue #14, control-plane floods).
//!
//! Every frame the engine classifies as for the appliance itself (ARP, ICMP echo, anything
//! to its addresses) passes a [`Gate`] on the worker before it is enqueued for the control
//! core. The gate sorts it into a [`Lane`] and takes a token from that lane's own
//! [`TokenBucket`]; a frame without a token is dropped and counted under its lane's reason.
//!
//! - **Probe answers** (a SYN-ACK or RST from the inside port to a probe source port,
//!   exactly what [`ProbeReply::parse`] accepts there) and **ARP replies** go to a ring of
//!   their own, the *answer ring*, which the control core drains to the bottom on every
//!   pass before anything else: a flood of echo requests or ARP requests never sits in
//!   front of them, and never delays the health horizon (see `control`).
//! - Probe answers and ARP replies have separate buckets: a flood of forged ARP replies on
//!   the outside network cannot use up the tokens of the replicas' probe answers.
//! - **Everything else** shares the bucket the profile sizes (`limits.control_rate`,
//!   `limits.control_burst`) and the control ring.
//!
//! Plain Rust: no allocation, no system call, no clock of its own (the worker passes its
//! pass time); tested without DPDK.

use tandem_engine::Side;
use tandem_wire::ArpPacket;

use crate::control::ArpSeen;
use crate::health::ProbeReply;

/// Nanoseconds in a second: a token is worth this much of `rate × elapsed`.
const NS_PER_S: u64 = 1_000_000_000;

/// Probe answers a worker passes per second, at most. Not in the profile: they come only
/// from the inside (replica) network, one per probe sent, and this is every answer to 100
/// replicas with 10 probe ports each probed every 10 ms, all reaching one worker.
pub const ANSWER_RATE: u32 = 100_000;
/// Probe answers a worker passes at once (a full answer ring).
pub const ANSWER_BURST: u32 = ANSWER_RING_SIZE;
/// ARP replies a worker passes per second, at most: the appliance asks a few neighbours
/// a few times a minute, so anything near this is a flood.
pub const ARP_REPLY_RATE: u32 = 1_000;
/// ARP replies a worker passes at once.
pub const ARP_REPLY_BURST: u32 = 64;
/// Frames in each worker's answer ring (probe answers and ARP replies).
pub const ANSWER_RING_SIZE: u32 = 1024;

/// A token bucket in integer nanoseconds (no division): `rate` tokens a second, up to
/// `burst` at once. It starts full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenBucket {
    /// Tokens a second.
    rate: u64,
    /// `burst` tokens, in token-nanoseconds.
    cap: u64,
    /// Tokens now, in token-nanoseconds (one token is [`NS_PER_S`]).
    level: u64,
    /// When it was last filled.
    last_ns: u64,
}

impl TokenBucket {
    /// `rate` tokens a second, `burst` at most (at least one: a bucket that can never
    /// hold a token would drop everything).
    pub const fn new(rate: u32, burst: u32) -> TokenBucket {
        let burst = if burst == 0 { 1 } else { burst as u64 };
        let cap = burst * NS_PER_S;
        TokenBucket {
            rate: rate as u64,
            cap,
            level: cap,
            last_ns: 0,
        }
    }

    /// Takes a token at `now` (ns, the worker's clock); false if there is none.
    #[inline]
    pub fn take(&mut self, now: u64) -> bool {
        // A clock read earlier than the last one adds nothing (and takes nothing back).
        let elapsed = now.saturating_sub(self.last_ns);
        self.last_ns = self.last_ns.max(now);
        self.level = self
            .level
            .saturating_add(elapsed.saturating_mul(self.rate))
            .min(self.cap);
        if self.level >= NS_PER_S {
            self.level -= NS_PER_S;
            true
        } else {
            false
        }
    }
}

/// Which way a frame for the control core goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    /// A probe answer: the answer ring, its own bucket.
    ProbeAnswer,
    /// An ARP reply: the answer ring, its own bucket.
    ArpReply,
    /// Anything else (ARP requests, ICMP echo, other traffic to the appliance): the
    /// control ring, the profile's bucket.
    Other,
}

impl Lane {
    /// The lane of `frame`, received on `side`. The same tests as the control core's:
    /// a probe answer is what it takes for one ([`ProbeReply::parse`], inside only), an
    /// ARP reply what [`ArpSeen::parse`] reads as one.
    #[inline]
    pub fn of(frame: &[u8], side: Side) -> Lane {
        if side == Side::Inside && ProbeReply::parse(frame).is_some() {
            return Lane::ProbeAnswer;
        }
        match ArpSeen::parse(frame) {
            Some(a) if a.op == ArpPacket::<&[u8]>::REPLY => Lane::ArpReply,
            _ => Lane::Other,
        }
    }
}

/// What the gate decided for one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    /// Enqueue it on the answer ring.
    Answer,
    /// Enqueue it on the control ring.
    Control,
    /// Drop it: its lane's bucket is empty.
    Limited(Lane),
}

/// A worker's buckets, one per [`Lane`].
#[derive(Clone, Copy, Debug)]
pub struct Gate {
    answers: TokenBucket,
    arp_replies: TokenBucket,
    other: TokenBucket,
}

impl Gate {
    /// A gate passing `rate` other frames a second, `burst` at once (the profile's
    /// `limits.control_rate` and `limits.control_burst`), and answers at their fixed rates.
    pub const fn new(rate: u32, burst: u32) -> Gate {
        Gate {
            answers: TokenBucket::new(ANSWER_RATE, ANSWER_BURST),
            arp_replies: TokenBucket::new(ARP_REPLY_RATE, ARP_REPLY_BURST),
            other: TokenBucket::new(rate, burst),
        }
    }

    /// Sorts `frame` (received on `side`) and takes a token for it at `now`.
    #[inline]
    pub fn admit(&mut self, frame: &[u8], side: Side, now: u64) -> Admit {
        let lane = Lane::of(frame, side);
        let (bucket, pass) = match lane {
            Lane::ProbeAnswer => (&mut self.answers, Admit::Answer),
            Lane::ArpReply => (&mut self.arp_replies, Admit::Answer),
            Lane::Other => (&mut self.other, Admit::Control),
        };
        if bucket.take(now) {
            pass
        } else {
            Admit::Limited(lane)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::SRC_PORT_BASE;
    use std::net::Ipv4Addr;
    use tandem_wire::tcp::TcpFlags;
    use tandem_wire::{build, MacAddr};

    const MS: u64 = 1_000_000;
    const PORT_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
    const PEER_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
    const ME: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 1);
    const REPLICA: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 11);

    fn tcp(dst_port: u16, flags: TcpFlags) -> Vec<u8> {
        let mut buf = vec![0u8; 128];
        let n = build::tcp(
            &mut buf,
            &build::TcpBuild {
                src_mac: PEER_MAC,
                dst_mac: PORT_MAC,
                vlan_tci: None,
                src_ip: REPLICA,
                dst_ip: ME,
                src_port: 7000,
                dst_port,
                seq: 42,
                ack: 0x7d00_0002,
                flags,
                window: 100,
                ttl: 64,
                options: &[],
                payload: &[],
            },
        )
        .unwrap_or(0);
        buf.truncate(n);
        buf
    }

    fn arp(op: u16) -> Vec<u8> {
        let mut buf = vec![0u8; 60];
        let n = build::arp(&mut buf, op, PORT_MAC, PEER_MAC, REPLICA, PORT_MAC, ME).unwrap_or(0);
        buf.truncate(n);
        buf
    }

    /// An ICMP echo request to the appliance (only its ethertype and protocol matter here).
    fn echo() -> Vec<u8> {
        let mut f = tcp(SRC_PORT_BASE, TcpFlags::SYN | TcpFlags::ACK);
        f[23] = 1;
        f
    }

    #[test]
    fn a_bucket_passes_its_burst_then_its_rate() {
        let mut b = TokenBucket::new(1_000, 10);
        let passed = (0..100).filter(|_| b.take(5 * MS)).count();
        assert_eq!(passed, 10, "the burst, at once");
        // One token a millisecond from then on, however many ask.
        let passed = (0..100).filter(|_| b.take(5 * MS + MS / 2)).count();
        assert_eq!(passed, 0);
        let passed = (0..100).filter(|_| b.take(8 * MS)).count();
        assert_eq!(passed, 3);
        // A long idle fills it to its burst, not beyond; an older clock adds nothing.
        let passed = (0..100).filter(|_| b.take(u64::MAX / 2)).count();
        assert_eq!(passed, 10);
        assert!(!b.take(MS));
    }

    #[test]
    fn frames_are_sorted_by_what_the_control_core_would_make_of_them() {
        let synack = tcp(SRC_PORT_BASE + 3, TcpFlags::SYN | TcpFlags::ACK);
        let rst = tcp(SRC_PORT_BASE, TcpFlags::RST);
        assert_eq!(Lane::of(&synack, Side::Inside), Lane::ProbeAnswer);
        assert_eq!(Lane::of(&rst, Side::Inside), Lane::ProbeAnswer);
        // Only from the replicas' side; only to a probe port; only SYN-ACK or RST.
        assert_eq!(Lane::of(&synack, Side::Outside), Lane::Other);
        assert_eq!(Lane::of(&tcp(80, TcpFlags::RST), Side::Inside), Lane::Other);
        assert_eq!(
            Lane::of(&tcp(SRC_PORT_BASE, TcpFlags::SYN), Side::Inside),
            Lane::Other
        );
        assert_eq!(Lane::of(&arp(2), Side::Outside), Lane::ArpReply);
        assert_eq!(Lane::of(&arp(1), Side::Inside), Lane::Other);
        assert_eq!(Lane::of(&echo(), Side::Inside), Lane::Other);
        assert_eq!(Lane::of(&[0u8; 10], Side::Inside), Lane::Other);
    }

    #[test]
    fn a_flood_beyond_the_bucket_is_dropped_while_probe_answers_still_pass() {
        let mut g = Gate::new(4_000, 256);
        let (echo, synack, reply) = (
            echo(),
            tcp(SRC_PORT_BASE + 1, TcpFlags::SYN | TcpFlags::ACK),
            arp(2),
        );
        let (mut to_control, mut limited, mut answers) = (0u64, 0u64, 0u64);
        // One second of 1 Mpps of echo requests (a frame a microsecond), with a probe
        // answer every 100 µs and an ARP reply every 100 ms among them.
        for us in 0..1_000_000u64 {
            let now = us * 1_000;
            match g.admit(&echo, Side::Inside, now) {
                Admit::Control => to_control += 1,
                Admit::Limited(Lane::Other) => limited += 1,
                other => panic!("an echo request went {other:?}"),
            }
            if us % 100 == 0 {
                assert_eq!(
                    g.admit(&synack, Side::Inside, now),
                    Admit::Answer,
                    "{us} µs"
                );
                answers += 1;
            }
            if us % 100_000 == 0 {
                assert_eq!(g.admit(&reply, Side::Outside, now), Admit::Answer);
            }
        }
        // The burst and a second's rate, no more.
        assert!(
            to_control <= 256 + 4_000,
            "{to_control} echo requests passed"
        );
        assert!(to_control >= 4_000, "{to_control} echo requests passed");
        assert_eq!(limited + to_control, 1_000_000);
        assert_eq!(answers, 10_000);
        // A flood of forged ARP replies takes the ARP replies' tokens, not the probes'.
        let mut g = Gate::new(4_000, 256);
        let forged = (0..10_000)
            .filter(|_| g.admit(&reply, Side::Outside, MS) == Admit::Answer)
            .count();
        assert_eq!(forged, ARP_REPLY_BURST as usize);
        assert_eq!(
            g.admit(&reply, Side::Outside, MS),
            Admit::Limited(Lane::ArpReply)
        );
        assert_eq!(g.admit(&synack, Side::Inside, MS), Admit::Answer);
    }
}
