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

/// Parses one frame. `own` lists the appliance's addresses (as `u32`).
#[inline]
pub fn classify(frame: &[u8], own: &[u32]) -> Class {
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
        return Class::Drop(DropReason::NotTcp);
    }
    let l4 = l3 + ip.header_len();
    let end = l3 + usize::from(ip.total_len());
    let Ok(tcp) = TcpSegment::new_checked(&frame[l4..end]) else {
        return Class::Drop(DropReason::Malformed);
    };
    Class::Tcp(Meta {
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
