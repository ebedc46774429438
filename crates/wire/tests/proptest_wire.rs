//! Property tests: arbitrary bytes never make a view panic; every checksum-preserving
//! rewrite of a built segment keeps its checksum equal to a full recompute; RFC 1624
//! incremental updates equal recomputation on random data.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use tandem_wire::build::{self, OptionWriter, TcpBuild};
use tandem_wire::checksum::{self, ChecksumDelta};
use tandem_wire::tcp::option_kind;
use tandem_wire::{
    ArpPacket, EthernetFrame, Icmpv4Packet, Ipv4Addr, Ipv4Packet, MacAddr, TcpFlags, TcpSegment,
};

// ---------------------------------------------------------------------------------------
// (a) Arbitrary bytes.

fn exercise_tcp(b: &[u8]) {
    let Ok(s) = TcpSegment::new_checked(b) else {
        return;
    };
    let _ = (
        s.src_port(),
        s.dst_port(),
        s.seq(),
        s.ack(),
        s.flags(),
        s.header_len(),
    );
    let _ = (
        s.window(),
        s.checksum(),
        s.urgent(),
        s.payload(),
        s.options_bytes(),
    );
    let _ = (
        s.mss(),
        s.window_scale(),
        s.sack_permitted(),
        s.timestamps(),
    );
    let _ = s.sack_blocks().map(Iterator::count);
    let _ = s.sequence_len();
    let _ = s.verify_checksum(Ipv4Addr::new(1, 2, 3, 4), Ipv4Addr::new(5, 6, 7, 8));
    // The iterator ends, and yields at most one error, as its last item.
    let items: Vec<_> = s.options().collect();
    if let Some(i) = items.iter().position(Result::is_err) {
        assert_eq!(i, items.len() - 1);
    }
    let mut copy = b.to_vec();
    let mut m = TcpSegment::new_checked(&mut copy[..]).unwrap();
    let _ = (m.set_mss(1), m.set_window_scale(2), m.set_timestamps(3, 4));
    let _ = m.map_sack_blocks(|e| e.wrapping_add(5));
    for kind in [0, 1, 2, 3, 4, 5, 8, 0x22] {
        let _ = m.nop_out(kind);
    }
    m.set_seq(9);
    m.set_flags(TcpFlags::RST);
    let _ = (m.payload_mut().len(), m.options_bytes_mut().len());
}

fn exercise_ipv4(b: &[u8]) {
    let Ok(p) = Ipv4Packet::new_checked(b) else {
        return;
    };
    let _ = (
        p.version(),
        p.header_len(),
        p.dscp_ecn(),
        p.total_len(),
        p.ident(),
    );
    let _ = (
        p.dont_fragment(),
        p.more_fragments(),
        p.fragment_offset(),
        p.is_fragment(),
    );
    let _ = (
        p.ttl(),
        p.protocol(),
        p.checksum(),
        p.verify_checksum(),
        p.src(),
        p.dst(),
    );
    let _ = p.options();
    assert!(p.payload().len() <= b.len());
    exercise_tcp(p.payload());
    if let Ok(i) = Icmpv4Packet::new_checked(p.payload()) {
        let _ = (
            i.msg_type(),
            i.code(),
            i.checksum(),
            i.ident(),
            i.seq_no(),
            i.payload(),
        );
        let _ = i.verify_checksum();
    }
    let mut copy = b.to_vec();
    let mut m = Ipv4Packet::new_checked(&mut copy[..]).unwrap();
    m.set_dst(Ipv4Addr::new(9, 9, 9, 9));
    m.set_ttl(3);
    let _ = m.payload_mut().len();
}

fn exercise_frame(b: &[u8]) {
    let Ok(f) = EthernetFrame::new_checked(b) else {
        return;
    };
    let _ = (
        f.dst(),
        f.src(),
        f.vlan_tci(),
        f.ethertype(),
        f.header_len(),
        f.as_bytes(),
    );
    assert!(f.header_len() <= b.len());
    exercise_ipv4(f.payload());
    if let Ok(a) = ArpPacket::new_checked(f.payload()) {
        let _ = (
            a.operation(),
            a.sender_mac(),
            a.sender_ip(),
            a.target_mac(),
            a.target_ip(),
        );
    }
}

/// A TCP header whose data offset fits the buffer, with random option bytes: reaches the
/// option parser far more often than uniform bytes do.
fn tcp_with_random_options() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(any::<u8>(), 20),
        prop::collection::vec(any::<u8>(), 0..=40),
        prop::collection::vec(any::<u8>(), 0..8),
    )
        .prop_map(|(mut hdr, opts, payload)| {
            let olen = opts.len() / 4 * 4;
            hdr[12] = (((20 + olen) / 4) as u8) << 4 | (hdr[12] & 0x0f);
            hdr.extend_from_slice(&opts[..olen]);
            hdr.extend_from_slice(&payload);
            hdr
        })
}

/// Option-shaped random bytes: well-formed and malformed options of the known kinds.
fn option_soup() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(vec![0u8]),
        Just(vec![1u8]),
        (any::<u8>(), 0u8..12).prop_map(|(k, l)| vec![k, l]),
        (
            prop::sample::select(vec![2u8, 3, 4, 5, 8]),
            0u8..40,
            prop::collection::vec(any::<u8>(), 34)
        )
            .prop_map(|(k, l, body)| {
                let mut v = vec![k, l];
                v.extend_from_slice(&body[..usize::from(l.saturating_sub(2)).min(34)]);
                v
            }),
    ];
    prop::collection::vec(piece, 0..8).prop_map(|ps| {
        let mut v: Vec<u8> = ps.concat();
        v.truncate(40);
        v
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..128)) {
        exercise_frame(&b);
        exercise_ipv4(&b);
        exercise_tcp(&b);
        let _ = ArpPacket::new_checked(&b[..]).map(|a| a.operation());
    }

    #[test]
    fn random_options_never_panic(seg in tcp_with_random_options()) {
        exercise_tcp(&seg);
    }

    #[test]
    fn option_soup_never_panics(opts in option_soup(), payload in prop::collection::vec(any::<u8>(), 0..4)) {
        let olen = opts.len().div_ceil(4) * 4;
        let mut seg = vec![0u8; 20 + olen];
        seg[12] = (((20 + olen) / 4) as u8) << 4;
        seg[20..20 + opts.len()].copy_from_slice(&opts);
        seg.extend_from_slice(&payload);
        exercise_tcp(&seg);
    }
}

// ---------------------------------------------------------------------------------------
// (b) Rewrites of valid segments keep the checksum exact.

#[derive(Debug, Clone)]
enum OptCall {
    Mss(u16),
    WindowScale(u8),
    SackPermitted,
    Timestamps(u32, u32),
    Sack(Vec<(u32, u32)>),
}

fn opt_call() -> impl Strategy<Value = OptCall> {
    prop_oneof![
        any::<u16>().prop_map(OptCall::Mss),
        (0u8..15).prop_map(OptCall::WindowScale),
        Just(OptCall::SackPermitted),
        any::<(u32, u32)>().prop_map(|(a, b)| OptCall::Timestamps(a, b)),
        prop::collection::vec(any::<(u32, u32)>(), 1..5).prop_map(OptCall::Sack),
    ]
}

/// The options either as [`OptionWriter`] lays them out (aligned), or packed back to back
/// with no padding between them (so fields land at odd offsets), END-padded to 4.
fn options() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(opt_call(), 0..6),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(calls, aligned, lead_nop)| {
            if aligned {
                let mut w = OptionWriter::new();
                for c in &calls {
                    match c {
                        OptCall::Mss(v) => w.mss(*v),
                        OptCall::WindowScale(v) => w.window_scale(*v),
                        OptCall::SackPermitted => w.sack_permitted(),
                        OptCall::Timestamps(a, b) => w.timestamps(*a, *b),
                        OptCall::Sack(blocks) => w.sack(blocks),
                    };
                }
                return w.as_bytes().to_vec();
            }
            let mut v = Vec::new();
            if lead_nop {
                v.push(option_kind::NOP);
            }
            for c in &calls {
                let mut o = match c {
                    OptCall::Mss(m) => {
                        let [h, l] = m.to_be_bytes();
                        vec![2, 4, h, l]
                    }
                    OptCall::WindowScale(s) => vec![3, 3, *s],
                    OptCall::SackPermitted => vec![4, 2],
                    OptCall::Timestamps(a, b) => {
                        let mut o = vec![8, 10];
                        o.extend_from_slice(&a.to_be_bytes());
                        o.extend_from_slice(&b.to_be_bytes());
                        o
                    }
                    OptCall::Sack(blocks) => {
                        let mut o = vec![5, 2 + 8 * blocks.len() as u8];
                        for (l, r) in blocks {
                            o.extend_from_slice(&l.to_be_bytes());
                            o.extend_from_slice(&r.to_be_bytes());
                        }
                        o
                    }
                };
                if v.len() + o.len() <= 40 {
                    v.append(&mut o);
                }
            }
            while v.len() % 4 != 0 {
                v.push(option_kind::END);
            }
            v
        })
}

fn ipv4() -> impl Strategy<Value = Ipv4Addr> {
    any::<u32>().prop_map(Ipv4Addr::from)
}

#[derive(Debug, Clone)]
enum Op {
    Seq(u32),
    Ack(u32),
    Window(u16),
    SrcPort(u16),
    DstPort(u16),
    Flags(u8),
    Timestamps(u32, u32),
    SackShift(u32),
    NopOut(u8),
    Mss(u16),
    WindowScale(u8),
    Src(Ipv4Addr),
    Dst(Ipv4Addr),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        any::<u32>().prop_map(Op::Seq),
        any::<u32>().prop_map(Op::Ack),
        any::<u16>().prop_map(Op::Window),
        any::<u16>().prop_map(Op::SrcPort),
        any::<u16>().prop_map(Op::DstPort),
        any::<u8>().prop_map(Op::Flags),
        any::<(u32, u32)>().prop_map(|(a, b)| Op::Timestamps(a, b)),
        any::<u32>().prop_map(Op::SackShift),
        prop::sample::select(vec![2u8, 3, 4, 5, 8]).prop_map(Op::NopOut),
        any::<u16>().prop_map(Op::Mss),
        any::<u8>().prop_map(Op::WindowScale),
        ipv4().prop_map(Op::Src),
        ipv4().prop_map(Op::Dst),
    ]
}

#[derive(Debug, Clone)]
struct Spec {
    vlan: Option<u16>,
    src_ip: Ipv4Addr,
    dst_ip: Ipv4Addr,
    ports: (u16, u16),
    seq_ack: (u32, u32),
    flags: u8,
    window: u16,
    ttl: u8,
    options: Vec<u8>,
    payload: Vec<u8>,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        prop::option::of(any::<u16>()),
        ipv4(),
        ipv4(),
        any::<(u16, u16)>(),
        any::<(u32, u32)>(),
        any::<(u8, u16, u8)>(),
        options(),
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(
            |(vlan, src_ip, dst_ip, ports, seq_ack, (flags, window, ttl), options, payload)| Spec {
                vlan,
                src_ip,
                dst_ip,
                ports,
                seq_ack,
                flags,
                window,
                ttl,
                options,
                payload,
            },
        )
}

/// Checks both checksums are valid and equal to a full recompute.
fn check_frame(frame: &[u8]) -> Result<(), TestCaseError> {
    let eth = EthernetFrame::new_checked(frame).unwrap();
    let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
    prop_assert!(ip.verify_checksum());
    let mut ip_copy = ip.as_bytes().to_vec();
    let mut full = Ipv4Packet::new_checked(&mut ip_copy[..]).unwrap();
    full.fill_checksum();
    prop_assert_eq!(ip.checksum(), full.checksum());

    let seg = TcpSegment::new_checked(ip.payload()).unwrap();
    prop_assert!(seg.verify_checksum(ip.src(), ip.dst()));
    let mut seg_copy = seg.as_bytes().to_vec();
    let mut full = TcpSegment::new_checked(&mut seg_copy[..]).unwrap();
    full.fill_checksum(ip.src(), ip.dst());
    prop_assert_eq!(seg.checksum(), full.checksum());
    Ok(())
}

fn apply(frame: &mut [u8], op: &Op) {
    let mut eth = EthernetFrame::new_checked(&mut frame[..]).unwrap();
    let mut ip = Ipv4Packet::new_checked(eth.payload_mut()).unwrap();
    let (src, dst) = (ip.src(), ip.dst());
    let mut delta = ChecksumDelta::new();
    match op {
        Op::Src(a) => {
            ip.set_src(*a);
            delta.ipv4(src, *a);
        }
        Op::Dst(a) => {
            ip.set_dst(*a);
            delta.ipv4(dst, *a);
        }
        _ => {}
    }
    let mut seg = TcpSegment::new_checked(ip.payload_mut()).unwrap();
    match op {
        Op::Seq(v) => seg.set_seq(*v),
        Op::Ack(v) => seg.set_ack(*v),
        Op::Window(v) => seg.set_window(*v),
        Op::SrcPort(v) => seg.set_src_port(*v),
        Op::DstPort(v) => seg.set_dst_port(*v),
        Op::Flags(v) => seg.set_flags(TcpFlags(*v)),
        Op::Timestamps(a, b) => {
            if seg.set_timestamps(*a, *b) {
                assert_eq!(seg.timestamps(), Some((*a, *b)));
            }
        }
        Op::SackShift(d) => {
            let before: Vec<_> = seg.sack_blocks().map(|b| b.collect()).unwrap_or_default();
            let n = seg.map_sack_blocks(|e| e.wrapping_add(*d));
            assert!(n >= before.len());
            let after: Vec<_> = seg.sack_blocks().map(|b| b.collect()).unwrap_or_default();
            let expect: Vec<_> = before
                .iter()
                .map(|(l, r)| (l.wrapping_add(*d), r.wrapping_add(*d)))
                .collect();
            assert_eq!(after, expect);
        }
        Op::NopOut(k) => {
            let hl = seg.header_len();
            seg.nop_out(*k);
            assert_eq!(seg.header_len(), hl);
            assert!(seg.options().all(|o| o.is_ok()));
        }
        Op::Mss(v) => {
            if seg.set_mss(*v) {
                assert_eq!(seg.mss(), Some(*v));
            }
        }
        Op::WindowScale(v) => {
            if seg.set_window_scale(*v) {
                assert_eq!(seg.window_scale(), Some(*v));
            }
        }
        Op::Src(_) | Op::Dst(_) => seg.adjust_checksum(delta),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn rewrites_keep_checksums_exact(s in spec(), ops in prop::collection::vec(op(), 1..12)) {
        let mut buf = [0u8; 256];
        let b = TcpBuild {
            src_mac: MacAddr([2, 0, 0, 0, 0, 1]),
            dst_mac: MacAddr([2, 0, 0, 0, 0, 2]),
            vlan_tci: s.vlan,
            src_ip: s.src_ip,
            dst_ip: s.dst_ip,
            src_port: s.ports.0,
            dst_port: s.ports.1,
            seq: s.seq_ack.0,
            ack: s.seq_ack.1,
            flags: TcpFlags(s.flags),
            window: s.window,
            ttl: s.ttl,
            options: &s.options,
            payload: &s.payload,
        };
        let n = build::tcp(&mut buf, &b).unwrap();
        let frame = &mut buf[..n];
        check_frame(frame)?;
        {
            let eth = EthernetFrame::new_checked(&frame[..]).unwrap();
            let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
            let seg = TcpSegment::new_checked(ip.payload()).unwrap();
            prop_assert!(seg.options().all(|o| o.is_ok()));
            prop_assert_eq!(seg.payload(), &s.payload[..]);
        }
        for op in &ops {
            apply(frame, op);
            check_frame(frame)?;
        }
    }
}

// ---------------------------------------------------------------------------------------
// (c) RFC 1624 updates equal recomputation.

/// Random data that is never all zero (real checksummed data never is: the pseudo-header
/// holds the protocol number), where one's-complement zero has a single representation.
fn data() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 8..80).prop_map(|mut v| {
        v[0] |= 0x01;
        v
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn update_u16_equals_recompute(mut d in data(), at in any::<prop::sample::Index>(), new in any::<u16>()) {
        let at = at.index(d.len() / 2 - 1) * 2 + 2; // even, past the nonzero first word
        let c0 = checksum::internet_checksum(&d);
        let old = u16::from_be_bytes([d[at], d[at + 1]]);
        d[at..at + 2].copy_from_slice(&new.to_be_bytes());
        prop_assert_eq!(checksum::update_u16(c0, old, new), checksum::internet_checksum(&d));
    }

    #[test]
    fn update_u32_equals_recompute(mut d in data(), at in any::<prop::sample::Index>(), new in any::<u32>()) {
        let at = at.index(d.len() / 2 - 2) * 2 + 2;
        if at + 4 > d.len() { return Ok(()); }
        let c0 = checksum::internet_checksum(&d);
        let old = u32::from_be_bytes([d[at], d[at + 1], d[at + 2], d[at + 3]]);
        d[at..at + 4].copy_from_slice(&new.to_be_bytes());
        prop_assert_eq!(checksum::update_u32(c0, old, new), checksum::internet_checksum(&d));
    }

    #[test]
    fn delta_at_any_offset_equals_recompute(
        mut d in data(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u32>(), 0u8..3), 1..6),
    ) {
        let c0 = checksum::internet_checksum(&d);
        let mut delta = ChecksumDelta::new();
        for (at, v, width) in edits {
            // Any offset from 2 on (odd ones too), keeping the first word nonzero.
            let width = [1usize, 2, 4][usize::from(width)];
            let at = 2 + at.index(d.len() - 2 - width + 1);
            match width {
                1 => { delta.u8_at(at, d[at], v as u8); d[at] = v as u8; }
                2 => {
                    let old = u16::from_be_bytes([d[at], d[at + 1]]);
                    delta.u16_at(at, old, v as u16);
                    d[at..at + 2].copy_from_slice(&(v as u16).to_be_bytes());
                }
                _ => {
                    let old = u32::from_be_bytes([d[at], d[at + 1], d[at + 2], d[at + 3]]);
                    delta.u32_at(at, old, v);
                    d[at..at + 4].copy_from_slice(&v.to_be_bytes());
                }
            }
        }
        prop_assert_eq!(delta.apply(c0), checksum::internet_checksum(&d));
    }

    #[test]
    fn sum_in_pieces(d in prop::collection::vec(any::<u8>(), 0..200), split in any::<prop::sample::Index>()) {
        let at = split.index(d.len() / 2 + 1) * 2;
        let whole = checksum::fold(checksum::sum(&d, 0));
        let pieces = checksum::fold(checksum::sum(&d[at..], checksum::sum(&d[..at], 0)));
        prop_assert_eq!(whole, pieces);
    }
}
