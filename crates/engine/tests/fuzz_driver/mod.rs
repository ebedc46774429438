//! Drives the engine with an arbitrary sequence of operations: raw frames, and
//! structured segments from the client and the replicas whose sequence numbers are
//! derived (with arbitrary offsets) from what the engine has sent, so that the fuzzer
//! reaches established flows, holds and failovers instead of only the parser's errors.
//! Replicas die and come back; time jumps; the pool and output run dry. Nothing may
//! panic, and the counters' gauges must stay consistent.
//!
//! Shared by the `engine` cargo-fuzz target and a proptest smoke test.

#![allow(dead_code)]

use std::net::Ipv4Addr;

use arbitrary::Arbitrary;
use tandem_engine::{EngineConfig, Health, Output, Side};
use tandem_testkit::{self as kit, Opts, Rig, VecPool, CLIENT, PORT, VIP};
use tandem_wire::{EthernetFrame, Ipv4Packet, MacAddr, TcpFlags, TcpSegment};

/// The lab's primary and backup, and a third replica.
const REPLICAS: [Ipv4Addr; 3] = [kit::PRIMARY, kit::BACKUP, Ipv4Addr::new(198, 19, 0, 13)];

/// A segment's fields, relative to what the harness has seen.
#[derive(Arbitrary, Debug, Clone)]
pub struct Seg {
    /// Which client port (a few flows).
    pub flow: u8,
    /// Added to the expected sequence number.
    pub seq_off: i16,
    /// Added to the expected ack.
    pub ack_off: i16,
    /// Raw flag bits.
    pub flags: u8,
    pub window: u16,
    pub mss: Option<u16>,
    pub wscale: Option<u8>,
    pub sack_ok: bool,
    pub ts: Option<(u16, u16)>,
    pub sack: Vec<(i16, i16)>,
    pub payload_len: u16,
}

#[derive(Arbitrary, Debug, Clone)]
pub enum Op {
    Raw { inside: bool, bytes: Vec<u8> },
    Client(Seg),
    Replica { which: u8, seg: Seg },
    Advance(u32),
    Kill(u8),
    Revive(u8),
    Sweep,
    DrainPool(u8),
}

#[derive(Default, Clone, Copy)]
struct Track {
    c_nxt: u32,
    to_client_nxt: u32,
    r_nxt: [u32; 3],
}

pub fn run(ops: &[Op]) {
    let hosts: Vec<_> = (0u8..)
        .zip(REPLICAS)
        .map(|(i, a)| (a, MacAddr([2, 0, 0, 0, 0, 0x11 + i])))
        .collect();
    let (replicas, ids) = kit::replica_table(&hosts);
    let cfg = EngineConfig {
        hold_segments: 8,
        hold_bytes_per_flow: 3000,
        hold_bytes_total: 6000,
        ack_lag_ns: 1000,
        output_lag_ns: 1000,
        fin_grace_ns: 1000,
        ..kit::engine_config(vec![kit::mirror(&ids)], 4)
    };
    // A small output, so that it runs full.
    let mut rig = Rig::with(
        cfg,
        replicas.clone(),
        VecPool::default(),
        Output::with_capacity(12, 4, 4),
    );
    let mut now = 1u64 << 40;
    let mut track = [Track::default(); 4];
    for op in ops {
        match op {
            Op::Raw { inside, bytes } => {
                let side = if *inside { Side::Inside } else { Side::Outside };
                rig.rx_one(side, now, bytes.clone());
            }
            Op::Client(seg) => {
                let t = &mut track[usize::from(seg.flow % 4)];
                let f = frame(
                    (CLIENT, 40000 + u16::from(seg.flow % 4)),
                    (VIP, PORT),
                    t.c_nxt,
                    t.to_client_nxt,
                    seg,
                );
                let len = u32::from(seg.payload_len.min(1400));
                t.c_nxt = t.c_nxt.wrapping_add(seg.seq_off as u32).wrapping_add(len);
                rig.rx_one(Side::Outside, now, f);
            }
            Op::Replica { which, seg } => {
                let r = usize::from(which % 3);
                let t = &mut track[usize::from(seg.flow % 4)];
                let f = frame(
                    (REPLICAS[r], PORT),
                    (CLIENT, 40000 + u16::from(seg.flow % 4)),
                    t.r_nxt[r],
                    t.c_nxt,
                    seg,
                );
                let len = u32::from(seg.payload_len.min(1400));
                t.r_nxt[r] = t.r_nxt[r]
                    .wrapping_add(seg.seq_off as u32)
                    .wrapping_add(len);
                rig.rx_one(Side::Inside, now, f);
            }
            Op::Advance(ns) => now += u64::from(*ns),
            Op::Kill(r) => {
                replicas.set_health(ids[usize::from(r % 3)], Health::Down);
                rig.engine.request_failover_sweep();
            }
            Op::Revive(r) => replicas.set_health(ids[usize::from(r % 3)], Health::Up),
            Op::Sweep => rig.engine.request_failover_sweep(),
            Op::DrainPool(n) => rig.pool.remaining = Some(usize::from(*n % 4)),
        }
        rig.poll(now);
        // Learn the sequence numbers the engine sent, as the endpoints would.
        for tx in rig.out.tx.drain(..) {
            learn(&tx.buf, tx.side, &mut track);
        }
        rig.out.to_control.clear();
        rig.out.signals.clear();
        let c = rig.engine.counters().clone();
        assert!(c.flows <= 4);
        assert!(c.held_segments <= 8);
        assert!(c.held_bytes <= 6000 + 1500);
    }
}

fn learn(frame: &[u8], side: Side, track: &mut [Track; 4]) {
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        panic!("engine emitted a malformed frame");
    };
    let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) else {
        panic!("engine emitted a malformed IPv4 packet");
    };
    let Ok(tcp) = TcpSegment::new_checked(ip.payload()) else {
        panic!("engine emitted a malformed TCP segment");
    };
    let port = match side {
        Side::Outside => tcp.dst_port(),
        Side::Inside => tcp.src_port(),
    };
    let Some(t) = track.get_mut(usize::from(port.wrapping_sub(40000))) else {
        return;
    };
    let end = tcp.seq().wrapping_add(tcp.payload().len() as u32);
    if side == Side::Outside {
        t.to_client_nxt = end.wrapping_add(u32::from(tcp.flags().contains(TcpFlags::SYN)));
    } else if let Some(r) = REPLICAS.iter().position(|a| *a == ip.dst()) {
        // What a replica would ack next is what the client sent; its own seq is unknown
        // to the engine's output, so start replicas at a fixed ISN per replica.
        if tcp.flags().contains(TcpFlags::SYN) {
            t.r_nxt[r] = 0x1000_0000u32.wrapping_mul(r as u32 + 1);
            t.c_nxt = tcp.seq().wrapping_add(1);
        }
    }
}

/// The frame of `s`, its sequence numbers `seq` and `ack` moved by its offsets, SACK
/// blocks relative to `ack`. Every frame has the client's MAC, as the driver always sent.
fn frame(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), seq: u32, ack: u32, s: &Seg) -> Vec<u8> {
    let sack: Vec<(u32, u32)> = s
        .sack
        .iter()
        .take(4)
        .map(|(l, r)| (ack.wrapping_add(*l as u32), ack.wrapping_add(*r as u32)))
        .collect();
    let payload = vec![0xa5u8; usize::from(s.payload_len.min(1400))];
    kit::Seg {
        src: src.0,
        sport: src.1,
        dst: dst.0,
        dport: dst.1,
        seq: seq.wrapping_add(s.seq_off as u32),
        ack: ack.wrapping_add(s.ack_off as u32),
        flags: TcpFlags(s.flags),
        window: s.window,
        opts: Opts {
            mss: s.mss,
            wscale: s.wscale,
            sack_ok: s.sack_ok,
            ts: s.ts.map(|(v, e)| (u32::from(v), u32::from(e))),
        },
        sack: &sack,
        payload: &payload,
        ..kit::Seg::CLIENT
    }
    .frame()
}
