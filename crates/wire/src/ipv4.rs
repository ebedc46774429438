//! IPv4 packets (RFC 791): header fields, header checksum, fragments; options are skipped.
//!
//! `new_checked` accepts a buffer longer than the packet's total length (Ethernet pads
//! short frames to 60 bytes): the trailing bytes are ignored by [`Ipv4Packet::payload`].

use crate::checksum::{self, ChecksumDelta};
use crate::{get_ipv4, get_u16, put_u16, Error, Result};

pub use core::net::Ipv4Addr;

/// IP protocol numbers Tandem knows (IANA registry).
pub mod protocol {
    /// ICMP (RFC 792).
    pub const ICMP: u8 = 1;
    /// TCP (RFC 9293).
    pub const TCP: u8 = 6;
    /// UDP (RFC 768).
    pub const UDP: u8 = 17;
}

mod field {
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLG_OFF: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: usize = 12;
    pub const DST: usize = 16;
    pub const HEADER_LEN: usize = 20;
}

/// The length of an IPv4 header without options.
pub const HEADER_LEN: usize = field::HEADER_LEN;

const DF: u16 = 0x4000;
const MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// A view of an IPv4 packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv4Packet<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps a buffer without checking it. The accessors of fixed fields panic if it is
    /// shorter than 20 bytes; use [`Self::new_checked`] on untrusted input.
    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Wraps a buffer after checking version 4, a header length of at least 20 bytes, and
    /// `header_len <= total_len <= buffer length`. The checksum is not checked (see
    /// [`Self::verify_checksum`]).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < field::HEADER_LEN {
            return Err(Error::Truncated);
        }
        let p = Ipv4Packet { buffer };
        if p.version() != 4 || p.header_len() < field::HEADER_LEN {
            return Err(Error::Malformed);
        }
        let total = usize::from(p.total_len());
        if total < p.header_len() {
            return Err(Error::Malformed);
        }
        if total > p.buffer.as_ref().len() {
            return Err(Error::Truncated);
        }
        Ok(p)
    }

    /// The version field (4 for a checked packet).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// The header length in bytes (IHL * 4), options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// The DSCP and ECN byte.
    #[inline]
    pub fn dscp_ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN]
    }

    /// The total length field: header plus payload, in bytes.
    #[inline]
    pub fn total_len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// The identification field.
    #[inline]
    pub fn ident(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::IDENT)
    }

    /// The don't-fragment flag.
    #[inline]
    pub fn dont_fragment(&self) -> bool {
        get_u16(self.buffer.as_ref(), field::FLG_OFF) & DF != 0
    }

    /// The more-fragments flag.
    #[inline]
    pub fn more_fragments(&self) -> bool {
        get_u16(self.buffer.as_ref(), field::FLG_OFF) & MF != 0
    }

    /// The fragment offset, in bytes.
    #[inline]
    pub fn fragment_offset(&self) -> u16 {
        (get_u16(self.buffer.as_ref(), field::FLG_OFF) & OFFSET_MASK) * 8
    }

    /// True if this packet is a fragment: more-fragments set or a non-zero offset.
    #[inline]
    pub fn is_fragment(&self) -> bool {
        get_u16(self.buffer.as_ref(), field::FLG_OFF) & (MF | OFFSET_MASK) != 0
    }

    /// The time to live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// The payload's protocol number (see [`protocol`]).
    #[inline]
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    /// The header checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// True if the header checksum is valid (false too if the header is cut short).
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        match self.buffer.as_ref().get(..self.header_len()) {
            Some(h) => checksum::fold(checksum::sum(h, 0)) == 0xffff,
            None => false,
        }
    }

    /// The source address.
    #[inline]
    pub fn src(&self) -> Ipv4Addr {
        get_ipv4(self.buffer.as_ref(), field::SRC)
    }

    /// The destination address.
    #[inline]
    pub fn dst(&self) -> Ipv4Addr {
        get_ipv4(self.buffer.as_ref(), field::DST)
    }

    /// The option bytes between the fixed header and the payload (possibly empty).
    #[inline]
    pub fn options(&self) -> &[u8] {
        let hl = self.header_len();
        self.buffer
            .as_ref()
            .get(field::HEADER_LEN..hl)
            .unwrap_or(&[])
    }

    #[inline]
    fn payload_range(&self) -> core::ops::Range<usize> {
        let len = self.buffer.as_ref().len();
        let end = usize::from(self.total_len()).min(len);
        self.header_len().min(end)..end
    }

    /// The payload: from the end of the header to the total length; trailing bytes of
    /// the buffer (Ethernet padding) are left out.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let r = self.payload_range();
        &self.buffer.as_ref()[r]
    }

    /// The whole buffer.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Gives the buffer back.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    #[inline]
    fn set_checksum_raw_inner(&mut self, c: u16) {
        put_u16(self.buffer.as_mut(), field::CHECKSUM, c);
    }

    /// Sets the source address, keeping the header checksum valid (RFC 1624). The TCP
    /// checksum, which covers the address through its pseudo-header, is not touched: the
    /// change is returned, for [`crate::TcpSegment::adjust_checksum`].
    #[inline]
    pub fn set_src(&mut self, addr: Ipv4Addr) -> ChecksumDelta {
        let old = self.src();
        let mut d = ChecksumDelta::new();
        d.ipv4(old, addr);
        self.set_src_raw(addr);
        let c = d.apply(self.checksum());
        self.set_checksum_raw_inner(c);
        d
    }

    /// Sets the destination address, keeping the header checksum valid (RFC 1624). The
    /// TCP checksum is not touched: the change is returned (see [`Self::set_src`]).
    #[inline]
    pub fn set_dst(&mut self, addr: Ipv4Addr) -> ChecksumDelta {
        let old = self.dst();
        let mut d = ChecksumDelta::new();
        d.ipv4(old, addr);
        self.set_dst_raw(addr);
        let c = d.apply(self.checksum());
        self.set_checksum_raw_inner(c);
        d
    }

    /// Sets the time to live, keeping the header checksum valid (RFC 1624).
    #[inline]
    pub fn set_ttl(&mut self, ttl: u8) {
        let old = get_u16(self.buffer.as_ref(), field::TTL);
        let new = (u16::from(ttl) << 8) | (old & 0x00ff);
        self.buffer.as_mut()[field::TTL] = ttl;
        let c = checksum::update_u16(self.checksum(), old, new);
        self.set_checksum_raw_inner(c);
    }

    /// Sets the source address; the checksum is left stale.
    #[inline]
    pub fn set_src_raw(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC..field::SRC + 4].copy_from_slice(&addr.octets());
    }

    /// Sets the destination address; the checksum is left stale.
    #[inline]
    pub fn set_dst_raw(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::DST..field::DST + 4].copy_from_slice(&addr.octets());
    }

    /// Writes version 4 and the header length (`len / 4` into IHL; `len` should be a
    /// multiple of 4 between 20 and 60). The checksum is left stale.
    #[inline]
    pub fn set_header_len_raw(&mut self, len: usize) {
        self.buffer.as_mut()[field::VER_IHL] = 0x40 | ((len / 4) as u8 & 0x0f);
    }

    /// Sets the DSCP and ECN byte; the checksum is left stale.
    #[inline]
    pub fn set_dscp_ecn_raw(&mut self, v: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = v;
    }

    /// Sets the total length; the checksum is left stale.
    #[inline]
    pub fn set_total_len_raw(&mut self, len: u16) {
        put_u16(self.buffer.as_mut(), field::LENGTH, len);
    }

    /// Sets the identification; the checksum is left stale.
    #[inline]
    pub fn set_ident_raw(&mut self, ident: u16) {
        put_u16(self.buffer.as_mut(), field::IDENT, ident);
    }

    /// Sets the flags and the fragment offset (in bytes, a multiple of 8); the checksum
    /// is left stale.
    #[inline]
    pub fn set_fragment_raw(&mut self, dont_fragment: bool, more_fragments: bool, offset: u16) {
        let mut v = (offset / 8) & OFFSET_MASK;
        if dont_fragment {
            v |= DF;
        }
        if more_fragments {
            v |= MF;
        }
        put_u16(self.buffer.as_mut(), field::FLG_OFF, v);
    }

    /// Sets the time to live; the checksum is left stale.
    #[inline]
    pub fn set_ttl_raw(&mut self, ttl: u8) {
        self.buffer.as_mut()[field::TTL] = ttl;
    }

    /// Sets the protocol number; the checksum is left stale.
    #[inline]
    pub fn set_protocol_raw(&mut self, protocol: u8) {
        self.buffer.as_mut()[field::PROTOCOL] = protocol;
    }

    /// Stores `checksum` in the checksum field as is.
    #[inline]
    pub fn set_checksum_raw(&mut self, checksum: u16) {
        self.set_checksum_raw_inner(checksum);
    }

    /// Computes the header checksum from scratch and stores it. Does nothing if the
    /// header length runs past the buffer.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum_raw_inner(0);
        let hl = self.header_len();
        if let Some(h) = self.buffer.as_ref().get(..hl) {
            let c = checksum::internet_checksum(h);
            self.set_checksum_raw_inner(c);
        }
    }

    /// The payload, writable (see [`Self::payload`]).
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let r = self.payload_range();
        &mut self.buffer.as_mut()[r]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    #[test]
    fn icmp_packet() {
        let p = Ipv4Packet::new_checked(&fixtures::ICMP_ECHO[..]).unwrap();
        assert_eq!((p.version(), p.header_len(), p.total_len()), (4, 20, 44));
        assert_eq!(p.ident(), 0xabcd);
        assert!(p.dont_fragment() && !p.more_fragments() && !p.is_fragment());
        assert_eq!((p.ttl(), p.protocol()), (64, protocol::ICMP));
        assert_eq!(p.checksum(), 0xc34f);
        assert!(p.verify_checksum());
        assert_eq!(p.src(), Ipv4Addr::new(192, 168, 1, 10));
        assert_eq!(p.dst(), Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(p.payload().len(), 24);
        assert_eq!(p.payload()[0], 8);
        assert!(p.options().is_empty());
    }

    #[test]
    fn with_options() {
        let p = Ipv4Packet::new_checked(&fixtures::IPV4_ROUTER_ALERT[..]).unwrap();
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.options(), &[0x94, 0x04, 0x00, 0x00]);
        assert_eq!((p.ttl(), p.protocol()), (1, protocol::UDP));
        assert!(!p.dont_fragment());
        assert!(p.verify_checksum());
        assert_eq!(&p.payload()[..4], &[0x13, 0x88, 0x13, 0x89]);
        assert_eq!(p.payload().len(), 12);
    }

    #[test]
    fn fragment() {
        let p = Ipv4Packet::new_checked(&fixtures::IPV4_FRAGMENT[..]).unwrap();
        assert!(p.more_fragments() && p.is_fragment() && !p.dont_fragment());
        assert_eq!(p.fragment_offset(), 185 * 8);
        assert!(p.verify_checksum());
        assert_eq!(p.ident(), 0x4242);
        let mut b = fixtures::IPV4_FRAGMENT;
        b[6] = 0; // last fragment: offset 185 only
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert!(!p.more_fragments() && p.is_fragment());
        b[7] = 0;
        b[6] = 0x20; // first fragment: MF, offset 0
        assert!(Ipv4Packet::new_checked(&b[..]).unwrap().is_fragment());
    }

    #[test]
    fn trailing_padding_ignored() {
        let mut b = [0u8; 60];
        b[..44].copy_from_slice(&fixtures::ICMP_ECHO);
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.payload().len(), 24);
        assert!(p.verify_checksum());
    }

    #[test]
    fn every_prefix() {
        for fixture in [&fixtures::ICMP_ECHO[..], &fixtures::IPV4_ROUTER_ALERT[..]] {
            for n in 0..fixture.len() {
                assert_eq!(
                    Ipv4Packet::new_checked(&fixture[..n]),
                    Err(Error::Truncated)
                );
                // The unchecked view of a long-enough prefix must still not panic on
                // variable-length accessors.
                if n >= 20 {
                    let p = Ipv4Packet::new_unchecked(&fixture[..n]);
                    let _ = (p.payload(), p.options(), p.verify_checksum());
                }
            }
        }
    }

    #[test]
    fn malformed() {
        let mut b = fixtures::ICMP_ECHO;
        b[0] = 0x65; // version 6
        assert_eq!(Ipv4Packet::new_checked(&b[..]), Err(Error::Malformed));
        b[0] = 0x44; // IHL 4
        assert_eq!(Ipv4Packet::new_checked(&b[..]), Err(Error::Malformed));
        b[0] = 0x45;
        b[2..4].copy_from_slice(&19u16.to_be_bytes()); // total < header
        assert_eq!(Ipv4Packet::new_checked(&b[..]), Err(Error::Malformed));
        b[0] = 0x4f; // header 60 > buffer 44
        b[2..4].copy_from_slice(&44u16.to_be_bytes());
        assert_eq!(Ipv4Packet::new_checked(&b[..]), Err(Error::Malformed));
        b[2..4].copy_from_slice(&60u16.to_be_bytes());
        assert_eq!(Ipv4Packet::new_checked(&b[..]), Err(Error::Truncated));
    }

    #[test]
    fn incremental_setters_equal_recompute() {
        for fixture in [&fixtures::ICMP_ECHO[..], &fixtures::IPV4_ROUTER_ALERT[..]] {
            let mut b = [0u8; 64];
            let b = &mut b[..fixture.len()];
            b.copy_from_slice(fixture);
            let mut p = Ipv4Packet::new_checked(&mut b[..]).unwrap();
            p.set_src(Ipv4Addr::new(172, 16, 254, 1));
            p.set_dst(Ipv4Addr::new(10, 255, 0, 77));
            p.set_ttl(17);
            assert!(p.verify_checksum());
            let incremental = p.checksum();
            p.fill_checksum();
            assert_eq!(p.checksum(), incremental);
            assert_eq!(p.src(), Ipv4Addr::new(172, 16, 254, 1));
            assert_eq!(p.dst(), Ipv4Addr::new(10, 255, 0, 77));
            assert_eq!(p.ttl(), 17);
        }
    }

    #[test]
    fn raw_setters() {
        let mut b = [0u8; 40];
        let mut p = Ipv4Packet::new_unchecked(&mut b[..]);
        p.set_header_len_raw(20);
        p.set_dscp_ecn_raw(0x10);
        p.set_total_len_raw(28);
        p.set_ident_raw(7);
        p.set_fragment_raw(true, false, 0);
        p.set_ttl_raw(64);
        p.set_protocol_raw(protocol::TCP);
        p.set_src_raw(Ipv4Addr::new(1, 2, 3, 4));
        p.set_dst_raw(Ipv4Addr::new(5, 6, 7, 8));
        p.fill_checksum();
        p.payload_mut().fill(0xee);
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert!(p.verify_checksum() && p.dont_fragment() && !p.is_fragment());
        assert_eq!(
            (p.dscp_ecn(), p.ident(), p.payload()),
            (0x10, 7, &[0xee; 8][..])
        );
        assert_eq!(&b[28..], &[0; 12]);
        let mut p = Ipv4Packet::new_unchecked(&mut b[..]);
        p.set_fragment_raw(false, true, 1480);
        assert_eq!(p.fragment_offset(), 1480);
        p.set_checksum_raw(0);
        assert!(!p.verify_checksum());
    }
}
