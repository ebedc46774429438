//! The edge of the packet path: one validating parse per frame, producing the offsets and
//! header fields every later step uses. After it, views are built unchecked over ranges
//! it has already validated.
//!
//! TCP checksums are not verified here: every rewrite updates them incrementally
//! (RFC 1624), which keeps a bad checksum bad, so the receiving stack still drops a
//! corrupted segment.

use tandem_wire::ipv4::protocol;
use tandem_wire::{EtherType, TcpFlags, TcpSegment};

use crate::hash::client_word;
use crate::output::DropReason;
use crate::seq::Seq;

/// Header fields and offsets of a TCP/IPv4 frame.
#[derive(Clone, Copy, Debug, Default)]
pub struct Meta {
    /// Offset of the IPv4 header.
    pub l3: usize,
    /// Offset of the TCP header.
    pub l4: usize,
    /// End of the IPv4 packet (Ethernet padding excluded).
    pub end: usize,
    /// Source address.
    pub src: u32,
    /// Destination address.
    pub dst: u32,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Sequence number.
    pub seq: Seq,
    /// Acknowledgement number.
    pub ack: Seq,
    /// Flags.
    pub flags: TcpFlags,
    /// Payload length.
    pub payload_len: u32,
    /// Offset of the timestamps option's TSval within the TCP segment (0: no option).
    pub ts_at: u16,
    /// The segment carries SACK blocks.
    pub sack: bool,
    /// Client-endpoint hash (set by the caller, depends on direction).
    pub hash: u64,
}

impl Meta {
    /// Where the payload is in the frame.
    #[inline]
    pub fn payload(&self) -> core::ops::Range<usize> {
        self.end.saturating_sub(self.payload_len as usize)..self.end
    }

    /// Sequence space the segment occupies: payload, plus one for SYN and for FIN.
    #[inline]
    pub fn seq_len(&self) -> u32 {
        self.payload_len
            + u32::from(self.flags.contains(TcpFlags::SYN))
            + u32::from(self.flags.contains(TcpFlags::FIN))
    }

    /// TSval and TSecr, read at the offset the parse found (RFC 7323).
    #[inline]
    pub fn timestamps(&self, frame: &[u8]) -> Option<(u32, u32)> {
        if self.ts_at == 0 {
            return None;
        }
        let at = self.l4 + usize::from(self.ts_at);
        let b = frame.get(at..at + 8)?;
        Some((
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        ))
    }

    /// The TCP segment bytes of `frame`.
    #[inline]
    pub fn tcp<'a>(&self, frame: &'a [u8]) -> TcpSegment<&'a [u8]> {
        TcpSegment::new_unchecked(&frame[self.l4..self.end])
    }

    /// The TCP segment bytes of `frame`, writable.
    #[inline]
    pub fn tcp_mut<'a>(&self, frame: &'a mut [u8]) -> TcpSegment<&'a mut [u8]> {
        TcpSegment::new_unchecked(&mut frame[self.l4..self.end])
    }
}

/// What the parse says to do with a frame.
#[derive(Clone, Copy, Debug)]
pub enum Class {
    /// A TCP segment through the appliance.
    Tcp(Meta),
    /// For the control core (ARP, or IPv4 to one of the appliance's addresses).
    Control,
    /// An ICMP error (destination unreachable, source quench, time exceeded, parameter
    /// problem) to a VIP: about a segment Tandem sent a client, for the engine (§3.11).
    IcmpError,
    /// Drop it.
    Drop(DropReason),
}

/// The EtherType of the active appliance's announcement on the data ports (the pair's
/// heartbeat, DESIGN §6b; IEEE local experimental): for the control core, which hears
/// its peer by it.
pub const PAIR_ANNOUNCE: u16 = 0x88b5;

/// Whether `frame` is the pair's announcement ([`PAIR_ANNOUNCE`], tagged or not).
pub fn is_pair_announce(frame: &[u8]) -> bool {
    match frame.get(12..14) {
        Some(&[0x81, 0x00]) => frame.get(16..18) == Some(&PAIR_ANNOUNCE.to_be_bytes()[..]),
        Some(t) => t == PAIR_ANNOUNCE.to_be_bytes(),
        None => false,
    }
}

/// Parses one frame. `own` lists the appliance's addresses, `vips` the services'
/// addresses (as `u32`): ICMP to a VIP goes to the control core, which answers echo
/// requests for it as for its own addresses.
///
/// The checks and their order are those of `EthernetFrame::new_checked`,
/// `Ipv4Packet::new_checked` and `TcpSegment::new_checked`, done here on fixed-size
/// header arrays: one length check per header, then field reads the compiler knows are
/// in bounds (this runs for every frame). Out of line: inlined into the burst loop, next
/// to the hashing of a group of frames, it crowded the registers and cost more.
#[inline(never)]
pub fn classify(frame: &[u8], own: &[u32], vips: &[u32]) -> Class {
    let Some(eth) = frame.first_chunk::<14>() else {
        return Class::Drop(DropReason::Malformed);
    };
    let (l3, ethertype) = match be16(eth, 12) {
        EtherType::VLAN => {
            let Some(tagged) = frame.first_chunk::<18>() else {
                return Class::Drop(DropReason::Malformed);
            };
            let inner = be16(tagged, 16);
            if inner == EtherType::VLAN || inner == EtherType::QINQ {
                return Class::Drop(DropReason::Malformed);
            }
            (18, inner)
        }
        outer => (14, outer),
    };
    match ethertype {
        EtherType::IPV4 => {}
        EtherType::ARP | PAIR_ANNOUNCE => return Class::Control,
        _ => return Class::Drop(DropReason::NotIpv4),
    }
    // `l3` ≤ `frame.len()`: the Ethernet header was there.
    let ip_bytes = &frame[l3..];
    let Some(ip) = ip_bytes.first_chunk::<20>() else {
        return Class::Drop(DropReason::Malformed);
    };
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    if ip[0] >> 4 != 4 || ihl < 20 {
        return Class::Drop(DropReason::Malformed);
    }
    let total = usize::from(be16(ip, 2));
    if total < ihl || total > ip_bytes.len() {
        return Class::Drop(DropReason::Malformed);
    }
    let dst = u32::from_be_bytes([ip[16], ip[17], ip[18], ip[19]]);
    // A plain loop: `contains` on a `u32` slice is an out-of-line SIMD search, a call
    // per frame for the two or so addresses a port has.
    for &a in own {
        if a == dst {
            return Class::Control;
        }
    }
    // More fragments, or a fragment offset.
    if be16(ip, 6) & 0x3fff != 0 {
        return Class::Drop(DropReason::Fragment);
    }
    if ip[9] != protocol::TCP {
        if ip[9] == protocol::ICMP && vips.contains(&dst) {
            // Echo is the control core's to answer; errors quote a flow's segment.
            // `total` ≤ `ip_bytes.len()`: checked above.
            return match ip_bytes[..total].get(ihl) {
                Some(3 | 4 | 11 | 12) => Class::IcmpError,
                _ => Class::Control,
            };
        }
        return Class::Drop(DropReason::NotTcp);
    }
    let l4 = l3 + ihl;
    let end = l3 + total;
    // `l4` ≤ `end` ≤ `frame.len()`: checked against `total` above.
    let seg = &frame[l4..end];
    let Some(tcp) = seg.first_chunk::<20>() else {
        return Class::Drop(DropReason::Malformed);
    };
    let thl = usize::from(tcp[12] >> 4) * 4;
    if thl < 20 || thl > seg.len() {
        return Class::Drop(DropReason::Malformed);
    }
    // Most segments carry no options (data offset 5): nothing to scan.
    let (ts_at, sack) = if thl > 20 {
        scan_options(&seg[20..thl])
    } else {
        (0, false)
    };
    Class::Tcp(Meta {
        ts_at,
        sack,
        l3,
        l4,
        end,
        src: u32::from_be_bytes([ip[12], ip[13], ip[14], ip[15]]),
        dst,
        sport: be16(tcp, 0),
        dport: be16(tcp, 2),
        seq: Seq(u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]])),
        ack: Seq(u32::from_be_bytes([tcp[8], tcp[9], tcp[10], tcp[11]])),
        flags: TcpFlags(tcp[13]),
        payload_len: (seg.len() - thl) as u32,
        hash: 0,
    })
}

/// The big-endian `u16` at `at` of a fixed-size header. The callers pass constant
/// offsets inside the header, so the bounds checks fold away.
#[inline(always)]
fn be16<const N: usize>(h: &[u8; N], at: usize) -> u16 {
    u16::from_be_bytes([h[at], h[at + 1]])
}

/// One pass over the options for what the fast path rewrites: where the timestamps are
/// (offset within the segment), and whether SACK blocks are present. Malformed options
/// end the scan (RFC 9293 §3.1 lengths).
#[inline]
fn scan_options(opts: &[u8]) -> (u16, bool) {
    let (mut ts_at, mut sack) = (0u16, false);
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            0 => break,
            1 => i += 1,
            kind => {
                let Some(&len) = opts.get(i + 1) else { break };
                let len = usize::from(len);
                if len < 2 || i + len > opts.len() {
                    break;
                }
                if kind == 8 && len == 10 && ts_at == 0 {
                    ts_at = (20 + i + 2) as u16;
                } else if kind == 5 {
                    sack = true;
                }
                i += len;
            }
        }
    }
    (ts_at, sack)
}

/// The word the client-endpoint hash is taken of ([`client_word`]), for a frame that
/// arrived on `outside` (client is the source) or inside (client is the destination).
#[inline]
pub fn client_word_of(meta: &Meta, outside: bool) -> u64 {
    if outside {
        client_word(meta.src, meta.sport)
    } else {
        client_word(meta.dst, meta.dport)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;
    use tandem_wire::build::{self, OptionWriter, TcpBuild};
    use tandem_wire::{EthernetFrame, Ipv4Packet, MacAddr};

    /// The parse as it was written over the checked views: `classify` must agree with it
    /// on every frame.
    fn reference(frame: &[u8], own: &[u32], vips: &[u32]) -> Class {
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            return Class::Drop(DropReason::Malformed);
        };
        let l3 = eth.header_len();
        match eth.ethertype() {
            EtherType::IPV4 => {}
            EtherType::ARP | PAIR_ANNOUNCE => return Class::Control,
            _ => return Class::Drop(DropReason::NotIpv4),
        }
        let Ok(ip) = Ipv4Packet::new_checked(&frame[l3..]) else {
            return Class::Drop(DropReason::Malformed);
        };
        let dst = u32::from(ip.dst());
        if own.contains(&dst) {
            return Class::Control;
        }
        if ip.is_fragment() {
            return Class::Drop(DropReason::Fragment);
        }
        if ip.protocol() != protocol::TCP {
            if ip.protocol() == protocol::ICMP && vips.contains(&dst) {
                return match ip.payload().first() {
                    Some(3 | 4 | 11 | 12) => Class::IcmpError,
                    _ => Class::Control,
                };
            }
            return Class::Drop(DropReason::NotTcp);
        }
        let l4 = l3 + ip.header_len();
        let end = l3 + usize::from(ip.total_len());
        let Ok(tcp) = TcpSegment::new_checked(&frame[l4..end]) else {
            return Class::Drop(DropReason::Malformed);
        };
        let (ts_at, sack) = scan_options(tcp.options_bytes());
        Class::Tcp(Meta {
            ts_at,
            sack,
            l3,
            l4,
            end,
            src: u32::from(ip.src()),
            dst,
            sport: tcp.src_port(),
            dport: tcp.dst_port(),
            seq: Seq(tcp.seq()),
            ack: Seq(tcp.ack()),
            flags: tcp.flags(),
            payload_len: (end - l4 - tcp.header_len()) as u32,
            hash: 0,
        })
    }

    fn frame(vlan: bool, opts: u8, payload: usize) -> Vec<u8> {
        let mut w = OptionWriter::new();
        if opts & 1 != 0 {
            w.mss(1460).window_scale(7);
        }
        if opts & 2 != 0 {
            w.sack_permitted().timestamps(7, 9);
        }
        if opts & 4 != 0 {
            w.sack(&[(1, 2), (3, 4)]);
        }
        let mut v = vec![0; 200];
        let n = build::tcp(
            &mut v,
            &TcpBuild {
                src_mac: MacAddr([2, 0, 0, 0, 0, 1]),
                dst_mac: MacAddr([2, 0, 0, 0, 0, 2]),
                vlan_tci: vlan.then_some(5),
                src_ip: Ipv4Addr::new(198, 18, 2, 3),
                dst_ip: Ipv4Addr::new(198, 18, 0, 100),
                src_port: 1234,
                dst_port: 7000,
                seq: 0xfeed_f00d,
                ack: 0x1234_5678,
                flags: TcpFlags::ACK,
                window: 1000,
                ttl: 64,
                options: w.as_bytes(),
                payload: &vec![0x5a; payload],
            },
        )
        .expect("frame");
        v.truncate(n);
        v
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

        /// Valid frames, then some bytes overwritten (in the headers mostly) and the frame
        /// cut or padded: every branch of the parse, against the reference.
        #[test]
        fn agrees_with_the_checked_views(
            vlan in any::<bool>(),
            opts in 0u8..8,
            payload in 0usize..20,
            edits in proptest::collection::vec((0usize..80, any::<u8>()), 0..4),
            cut in proptest::option::of(0usize..120),
            pad in 0usize..8,
        ) {
            let mut f = frame(vlan, opts, payload);
            for (at, v) in edits {
                if let Some(b) = f.get_mut(at) {
                    *b = v;
                }
            }
            f.resize(f.len() + pad, 0);
            if let Some(cut) = cut {
                f.truncate(cut);
            }
            let own = [u32::from(Ipv4Addr::new(198, 18, 0, 1))];
            let vips = [u32::from(Ipv4Addr::new(198, 18, 0, 100))];
            prop_assert_eq!(
                format!("{:?}", classify(&f, &own, &vips)),
                format!("{:?}", reference(&f, &own, &vips))
            );
        }
    }
}
