//! Ethernet II frames (IEEE 802.3) with at most one IEEE 802.1Q VLAN tag.
//!
//! The frame check sequence is not part of the buffer (NICs strip it). A frame with a
//! second tag (QinQ) is rejected as malformed: Tandem does not carry stacked VLANs.

use crate::{get_mac, get_u16, put_u16, Error, Result};

/// A 48-bit Ethernet MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// The broadcast address `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// The all-zero address (unknown target in an ARP request).
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// True for `ff:ff:ff:ff:ff:ff`.
    #[inline]
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// True if the group bit (least significant bit of the first octet) is set; broadcast
    /// is multicast too.
    #[inline]
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// True if neither multicast nor broadcast.
    #[inline]
    pub fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }

    /// The address as the low 48 bits of a `u64` (first octet most significant).
    #[inline]
    pub fn to_u64(&self) -> u64 {
        let b = self.0;
        u64::from_be_bytes([0, 0, b[0], b[1], b[2], b[3], b[4], b[5]])
    }

    /// The address held in the low 48 bits of `v`; the high 16 bits are ignored.
    #[inline]
    pub fn from_u64(v: u64) -> Self {
        let b = v.to_be_bytes();
        MacAddr([b[2], b[3], b[4], b[5], b[6], b[7]])
    }
}

impl core::fmt::Display for MacAddr {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

/// EtherType values Tandem knows (IEEE registry). A namespace of constants, not a value.
pub struct EtherType;

impl EtherType {
    /// IPv4 (RFC 894).
    pub const IPV4: u16 = 0x0800;
    /// ARP (RFC 826).
    pub const ARP: u16 = 0x0806;
    /// IEEE 802.1Q VLAN tag.
    pub const VLAN: u16 = 0x8100;
    /// IEEE 802.1ad service tag (QinQ outer tag).
    pub const QINQ: u16 = 0x88a8;
    /// IPv6 (RFC 2464), recognised only to be dropped.
    pub const IPV6: u16 = 0x86dd;
}

mod field {
    pub const DST: usize = 0;
    pub const SRC: usize = 6;
    pub const ETHERTYPE: usize = 12;
    pub const HEADER_LEN: usize = 14;
    pub const TCI: usize = 14;
    pub const INNER_ETHERTYPE: usize = 16;
    pub const TAGGED_HEADER_LEN: usize = 18;
}

/// The length of an untagged Ethernet header.
pub const HEADER_LEN: usize = field::HEADER_LEN;
/// The length of an Ethernet header with one 802.1Q tag.
pub const TAGGED_HEADER_LEN: usize = field::TAGGED_HEADER_LEN;

/// A view of an Ethernet II frame, optionally with one 802.1Q tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EthernetFrame<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wraps a buffer without checking it. The accessors panic if the buffer is shorter
    /// than the header (14 bytes, or 18 with a tag); use [`Self::new_checked`] on
    /// untrusted input.
    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        EthernetFrame { buffer }
    }

    /// Wraps a buffer after checking that it holds a whole header: 14 bytes, 18 if the
    /// frame carries an 802.1Q tag. A second tag (QinQ) is [`Error::Malformed`].
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < field::HEADER_LEN {
            return Err(Error::Truncated);
        }
        if get_u16(b, field::ETHERTYPE) == EtherType::VLAN {
            if b.len() < field::TAGGED_HEADER_LEN {
                return Err(Error::Truncated);
            }
            let inner = get_u16(b, field::INNER_ETHERTYPE);
            if inner == EtherType::VLAN || inner == EtherType::QINQ {
                return Err(Error::Malformed);
            }
        }
        Ok(EthernetFrame { buffer })
    }

    /// The destination MAC address.
    #[inline]
    pub fn dst(&self) -> MacAddr {
        get_mac(self.buffer.as_ref(), field::DST)
    }

    /// The source MAC address.
    #[inline]
    pub fn src(&self) -> MacAddr {
        get_mac(self.buffer.as_ref(), field::SRC)
    }

    /// True if the frame carries an 802.1Q tag.
    #[inline]
    pub fn is_tagged(&self) -> bool {
        get_u16(self.buffer.as_ref(), field::ETHERTYPE) == EtherType::VLAN
    }

    /// The tag control information (PCP, DEI, VLAN id) of the 802.1Q tag, if any.
    #[inline]
    pub fn vlan_tci(&self) -> Option<u16> {
        if self.is_tagged() {
            Some(get_u16(self.buffer.as_ref(), field::TCI))
        } else {
            None
        }
    }

    /// The EtherType of the payload: after a tag, the inner one.
    #[inline]
    pub fn ethertype(&self) -> u16 {
        let b = self.buffer.as_ref();
        let outer = get_u16(b, field::ETHERTYPE);
        if outer == EtherType::VLAN {
            get_u16(b, field::INNER_ETHERTYPE)
        } else {
            outer
        }
    }

    /// The header length: 14, or 18 with a tag.
    #[inline]
    pub fn header_len(&self) -> usize {
        if self.is_tagged() {
            field::TAGGED_HEADER_LEN
        } else {
            field::HEADER_LEN
        }
    }

    /// The bytes after the header (including any Ethernet padding).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let hl = self.header_len();
        self.buffer.as_ref().get(hl..).unwrap_or(&[])
    }

    /// The whole frame.
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

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Sets the destination MAC address.
    #[inline]
    pub fn set_dst(&mut self, addr: MacAddr) {
        self.buffer.as_mut()[field::DST..field::DST + 6].copy_from_slice(&addr.0);
    }

    /// Sets the source MAC address.
    #[inline]
    pub fn set_src(&mut self, addr: MacAddr) {
        self.buffer.as_mut()[field::SRC..field::SRC + 6].copy_from_slice(&addr.0);
    }

    /// Sets both MAC addresses (a frame readdressed for its next hop).
    #[inline]
    pub fn set_addrs(&mut self, dst: MacAddr, src: MacAddr) {
        let h = &mut self.buffer.as_mut()[..field::SRC + 6];
        h[field::DST..field::DST + 6].copy_from_slice(&dst.0);
        h[field::SRC..field::SRC + 6].copy_from_slice(&src.0);
    }

    /// Sets the tag control information of an existing 802.1Q tag; does nothing on an
    /// untagged frame (adding a tag changes the header length, which a view cannot do).
    #[inline]
    pub fn set_vlan_tci(&mut self, tci: u16) {
        if self.is_tagged() {
            put_u16(self.buffer.as_mut(), field::TCI, tci);
        }
    }

    /// Writes an untagged header (`tci: None`, 14 bytes) or a tagged one (18 bytes) with
    /// the given payload EtherType. The buffer must be long enough for it.
    #[inline]
    pub fn set_header_raw(&mut self, dst: MacAddr, src: MacAddr, tci: Option<u16>, ethertype: u16) {
        self.set_dst(dst);
        self.set_src(src);
        let b = self.buffer.as_mut();
        match tci {
            Some(tci) => {
                put_u16(b, field::ETHERTYPE, EtherType::VLAN);
                put_u16(b, field::TCI, tci);
                put_u16(b, field::INNER_ETHERTYPE, ethertype);
            }
            None => put_u16(b, field::ETHERTYPE, ethertype),
        }
    }

    /// The bytes after the header, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        self.buffer.as_mut().get_mut(hl..).unwrap_or(&mut [])
    }

    /// The whole frame, writable.
    #[inline]
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    /// An ARP request head: broadcast destination, untagged.
    static UNTAGGED: [u8; 16] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0xaa,
        0xbb,
    ];

    /// A tagged frame: VLAN 100, priority 3, carrying IPv4 (payload truncated to 2 bytes).
    static TAGGED: [u8; 20] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x81, 0x00, 0x60,
        0x64, 0x08, 0x00, 0x45, 0x00,
    ];

    #[test]
    fn untagged() {
        let f = EthernetFrame::new_checked(&UNTAGGED[..]).unwrap();
        assert_eq!(f.dst(), MacAddr::BROADCAST);
        assert!(f.dst().is_broadcast() && f.dst().is_multicast());
        assert_eq!(f.src(), MacAddr([2, 0, 0, 0, 0, 1]));
        assert!(f.src().is_unicast());
        assert_eq!(f.ethertype(), EtherType::ARP);
        assert_eq!(f.vlan_tci(), None);
        assert_eq!(f.header_len(), 14);
        assert_eq!(f.payload(), &[0xaa, 0xbb]);
    }

    #[test]
    fn tagged() {
        let f = EthernetFrame::new_checked(&TAGGED[..]).unwrap();
        assert_eq!(f.vlan_tci(), Some(0x6064));
        assert_eq!(f.vlan_tci().map(|t| t & 0x0fff), Some(100));
        assert_eq!(f.ethertype(), EtherType::IPV4);
        assert_eq!(f.header_len(), 18);
        assert_eq!(f.payload(), &[0x45, 0x00]);
    }

    #[test]
    fn qinq_is_malformed() {
        let mut b = TAGGED;
        b[16..18].copy_from_slice(&EtherType::VLAN.to_be_bytes());
        assert_eq!(EthernetFrame::new_checked(&b[..]), Err(Error::Malformed));
        b[16..18].copy_from_slice(&EtherType::QINQ.to_be_bytes());
        assert_eq!(EthernetFrame::new_checked(&b[..]), Err(Error::Malformed));
    }

    #[test]
    fn every_prefix() {
        for fixture in [&UNTAGGED[..], &TAGGED[..]] {
            for n in 0..=fixture.len() {
                let Ok(f) = EthernetFrame::new_checked(&fixture[..n]) else {
                    assert!(n < 18);
                    continue;
                };
                let _ = (f.dst(), f.src(), f.vlan_tci(), f.ethertype(), f.payload());
                assert!(f.header_len() <= n);
            }
        }
        assert_eq!(
            EthernetFrame::new_checked(&TAGGED[..17]),
            Err(Error::Truncated)
        );
        assert_eq!(
            EthernetFrame::new_checked(&UNTAGGED[..13]),
            Err(Error::Truncated)
        );
    }

    #[test]
    fn setters() {
        let mut b = TAGGED;
        let mut f = EthernetFrame::new_checked(&mut b[..]).unwrap();
        f.set_dst(MacAddr([1, 2, 3, 4, 5, 6]));
        f.set_src(MacAddr::from_u64(0x0a0b_0c0d_0e0f));
        f.set_vlan_tci(0x0065);
        f.payload_mut()[0] = 0x46;
        assert_eq!(f.dst(), MacAddr([1, 2, 3, 4, 5, 6]));
        assert_eq!(f.src().to_u64(), 0x0a0b_0c0d_0e0f);
        assert_eq!(f.vlan_tci(), Some(0x0065));
        assert_eq!(b[18], 0x46);

        let mut raw = [0u8; 18];
        let mut f = EthernetFrame::new_unchecked(&mut raw[..]);
        f.set_header_raw(MacAddr::BROADCAST, MacAddr::ZERO, None, EtherType::ARP);
        assert_eq!(f.header_len(), 14);
        assert_eq!(f.ethertype(), EtherType::ARP);
        f.set_header_raw(MacAddr::BROADCAST, MacAddr::ZERO, Some(7), EtherType::IPV4);
        assert_eq!(
            (f.header_len(), f.vlan_tci(), f.ethertype()),
            (18, Some(7), 0x0800)
        );
    }

    #[test]
    fn mac_display_and_u64() {
        let m = MacAddr([0xaa, 0xbb, 0x0c, 0xdd, 0xee, 0x01]);
        assert_eq!(m.to_string(), "aa:bb:0c:dd:ee:01");
        assert_eq!(MacAddr::from_u64(m.to_u64()), m);
        assert_eq!(
            MacAddr::from_u64(0xffff_0000_0000_0001),
            MacAddr([0, 0, 0, 0, 0, 1])
        );
        assert_eq!(MacAddr::BROADCAST.to_u64(), 0xffff_ffff_ffff);
    }
}
