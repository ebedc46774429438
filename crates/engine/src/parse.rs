//! The edge of the packet path: one validating parse per frame, producing the offsets and
//! header fields every later step uses. After it, views are built unchecked over ranges
//! it has already validated.
//!
//! TCP checksums are not verified here: every rewrite updates them incrementally
//! (RFC 1624), which keeps a bad checksum bad, so the receiving stack still drops a
//! corrupted segment.

use tandem_wire::ipv4::protocol;
use tandem_wire::{EtherType, EthernetFrame, Ipv4Packet, TcpFlags, TcpSegment};

use crate::output::DropReason;
use crate::seq::Seq;
use crate::table::client_hash;

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
    /// Drop it.
    Drop(DropReason),
}

/// Parses one frame. `own` lists the appliance's addresses, `vips` the services'
/// addresses (as `u32`): ICMP to a VIP goes to the control core, which answers echo
/// requests for it as for its own addresses.
#[inline]
pub fn classify(frame: &[u8], own: &[u32], vips: &[u32]) -> Class {
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return Class::Drop(DropReason::Malformed);
    };
    let l3 = eth.header_len();
    match eth.ethertype() {
        EtherType::IPV4 => {}
        EtherType::ARP => return Class::Control,
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
            return Class::Control;
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

/// Sets `meta.hash` to the client-endpoint hash for a frame that arrived on `outside`
/// (client is the source) or inside (client is the destination).
#[inline]
pub fn set_hash(meta: &mut Meta, outside: bool) {
    meta.hash = if outside {
        client_hash(meta.src, meta.sport)
    } else {
        client_hash(meta.dst, meta.dport)
    };
}
