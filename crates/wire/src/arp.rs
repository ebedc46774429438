//! ARP for IPv4 over Ethernet (RFC 826): 28 bytes, hardware type 1, protocol type 0x0800.
//!
//! Any other hardware or protocol type, or address length, is rejected as malformed.

use crate::ethernet::{EtherType, MacAddr};
use crate::{get_ipv4, get_mac, get_u16, put_u16, Error, Ipv4Addr, Result};

mod field {
    pub const HTYPE: usize = 0;
    pub const PTYPE: usize = 2;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: usize = 6;
    pub const SHA: usize = 8;
    pub const SPA: usize = 14;
    pub const THA: usize = 18;
    pub const TPA: usize = 24;
    pub const LEN: usize = 28;
}

/// The length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = field::LEN;

/// Hardware type for Ethernet.
const HTYPE_ETHERNET: u16 = 1;

/// A view of an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArpPacket<T> {
    buffer: T,
}

impl ArpPacket<&'static [u8]> {
    /// Operation code of a request (`ArpPacket::REQUEST`).
    pub const REQUEST: u16 = 1;
    /// Operation code of a reply (`ArpPacket::REPLY`).
    pub const REPLY: u16 = 2;
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Wraps a buffer without checking it. The accessors panic if it is shorter than 28
    /// bytes; use [`Self::new_checked`] on untrusted input.
    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        ArpPacket { buffer }
    }

    /// Wraps a buffer after checking that it is at least 28 bytes long (trailing padding
    /// is allowed) and describes Ethernet and IPv4 addresses.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < field::LEN {
            return Err(Error::Truncated);
        }
        if get_u16(b, field::HTYPE) != HTYPE_ETHERNET
            || get_u16(b, field::PTYPE) != EtherType::IPV4
            || b[field::HLEN] != 6
            || b[field::PLEN] != 4
        {
            return Err(Error::Malformed);
        }
        Ok(ArpPacket { buffer })
    }

    /// The operation: [`ArpPacket::REQUEST`], [`ArpPacket::REPLY`] or another value.
    #[inline]
    pub fn operation(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::OPER)
    }

    /// The sender hardware address.
    #[inline]
    pub fn sender_mac(&self) -> MacAddr {
        get_mac(self.buffer.as_ref(), field::SHA)
    }

    /// The sender protocol address.
    #[inline]
    pub fn sender_ip(&self) -> Ipv4Addr {
        get_ipv4(self.buffer.as_ref(), field::SPA)
    }

    /// The target hardware address (zero in a request).
    #[inline]
    pub fn target_mac(&self) -> MacAddr {
        get_mac(self.buffer.as_ref(), field::THA)
    }

    /// The target protocol address.
    #[inline]
    pub fn target_ip(&self) -> Ipv4Addr {
        get_ipv4(self.buffer.as_ref(), field::TPA)
    }

    /// Gives the buffer back.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    /// Writes the fixed fields: hardware type Ethernet, protocol type IPv4, address
    /// lengths 6 and 4.
    #[inline]
    pub fn set_ethernet_ipv4(&mut self) {
        let b = self.buffer.as_mut();
        put_u16(b, field::HTYPE, HTYPE_ETHERNET);
        put_u16(b, field::PTYPE, EtherType::IPV4);
        b[field::HLEN] = 6;
        b[field::PLEN] = 4;
    }

    /// Sets the operation.
    #[inline]
    pub fn set_operation(&mut self, op: u16) {
        put_u16(self.buffer.as_mut(), field::OPER, op);
    }

    /// Sets the sender hardware address.
    #[inline]
    pub fn set_sender_mac(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::SHA..field::SHA + 6].copy_from_slice(&mac.0);
    }

    /// Sets the sender protocol address.
    #[inline]
    pub fn set_sender_ip(&mut self, ip: Ipv4Addr) {
        self.buffer.as_mut()[field::SPA..field::SPA + 4].copy_from_slice(&ip.octets());
    }

    /// Sets the target hardware address.
    #[inline]
    pub fn set_target_mac(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::THA..field::THA + 6].copy_from_slice(&mac.0);
    }

    /// Sets the target protocol address.
    #[inline]
    pub fn set_target_ip(&mut self, ip: Ipv4Addr) {
        self.buffer.as_mut()[field::TPA..field::TPA + 4].copy_from_slice(&ip.octets());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{fixtures, EthernetFrame};

    #[test]
    fn parse_request() {
        let eth = EthernetFrame::new_checked(&fixtures::ARP_REQUEST_FRAME[..]).unwrap();
        assert_eq!(eth.ethertype(), EtherType::ARP);
        let arp = ArpPacket::new_checked(eth.payload()).unwrap();
        assert_eq!(arp.operation(), ArpPacket::REQUEST);
        assert_eq!(arp.sender_mac(), MacAddr([0x52, 0x54, 0, 0x12, 0x34, 0x56]));
        assert_eq!(arp.sender_ip(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(arp.target_mac(), MacAddr::ZERO);
        assert_eq!(arp.target_ip(), Ipv4Addr::new(10, 0, 0, 2));
    }

    #[test]
    fn every_prefix_and_bad_types() {
        let body = &fixtures::ARP_REQUEST_FRAME[14..42];
        for n in 0..body.len() {
            assert_eq!(ArpPacket::new_checked(&body[..n]), Err(Error::Truncated));
        }
        for (at, v) in [(1, 6u8), (3, 0xdd), (4, 8), (5, 16)] {
            let mut b = [0u8; 28];
            b.copy_from_slice(body);
            b[at] = v;
            assert_eq!(ArpPacket::new_checked(&b[..]), Err(Error::Malformed));
        }
    }

    #[test]
    fn build_reply_in_place() {
        let mut b = [0u8; 28];
        b.copy_from_slice(&fixtures::ARP_REQUEST_FRAME[14..42]);
        let mut arp = ArpPacket::new_checked(&mut b[..]).unwrap();
        let me = MacAddr([2, 0, 0, 0, 0, 9]);
        let (smac, sip, tip) = (arp.sender_mac(), arp.sender_ip(), arp.target_ip());
        arp.set_operation(ArpPacket::REPLY);
        arp.set_target_mac(smac);
        arp.set_target_ip(sip);
        arp.set_sender_mac(me);
        arp.set_sender_ip(tip);
        let arp = ArpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(arp.operation(), 2);
        assert_eq!(
            (arp.sender_mac(), arp.sender_ip()),
            (me, Ipv4Addr::new(10, 0, 0, 2))
        );
        assert_eq!(arp.target_mac(), MacAddr([0x52, 0x54, 0, 0x12, 0x34, 0x56]));
        assert_eq!(arp.target_ip(), Ipv4Addr::new(10, 0, 0, 1));

        let mut fresh = [0u8; 28];
        ArpPacket::new_unchecked(&mut fresh[..]).set_ethernet_ipv4();
        assert!(ArpPacket::new_checked(&fresh[..]).is_ok());
    }
}
