//! ICMPv4 messages (RFC 792), enough to answer echo requests addressed to the appliance.
//!
//! The view covers the whole ICMP message (the IP payload); the checksum covers it all.
//! `ident` and `seq_no` are meaningful for echo messages only.

use crate::checksum;
use crate::{get_u16, put_u16, Error, Result};

/// Message type of an echo request.
pub const ECHO_REQUEST: u8 = 8;
/// Message type of an echo reply.
pub const ECHO_REPLY: u8 = 0;

mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    pub const IDENT: usize = 4;
    pub const SEQ_NO: usize = 6;
    pub const HEADER_LEN: usize = 8;
}

/// The length of the ICMP header (type, code, checksum and four bytes of rest-of-header).
pub const HEADER_LEN: usize = field::HEADER_LEN;

/// A view of an ICMPv4 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Icmpv4Packet<T> {
    buffer: T,
}

impl Icmpv4Packet<&'static [u8]> {
    /// Message type of an echo request (`Icmpv4Packet::ECHO_REQUEST`).
    pub const ECHO_REQUEST: u8 = ECHO_REQUEST;
    /// Message type of an echo reply (`Icmpv4Packet::ECHO_REPLY`).
    pub const ECHO_REPLY: u8 = ECHO_REPLY;
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    /// Wraps a buffer without checking it. The accessors panic if it is shorter than 8
    /// bytes; use [`Self::new_checked`] on untrusted input.
    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        Icmpv4Packet { buffer }
    }

    /// Wraps a buffer after checking that it holds the 8-byte header.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        if buffer.as_ref().len() < field::HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(Icmpv4Packet { buffer })
    }

    /// The message type.
    #[inline]
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// The message code.
    #[inline]
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// The checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The echo identifier.
    #[inline]
    pub fn ident(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::IDENT)
    }

    /// The echo sequence number.
    #[inline]
    pub fn seq_no(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::SEQ_NO)
    }

    /// True if the checksum over the whole buffer is valid.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::fold(checksum::sum(self.buffer.as_ref(), 0)) == 0xffff
    }

    /// The data after the 8-byte header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        self.buffer.as_ref().get(field::HEADER_LEN..).unwrap_or(&[])
    }

    /// Gives the buffer back.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<T> {
    /// Turns an echo request into the matching reply in place: type 8 becomes 0, the
    /// checksum is updated incrementally (RFC 1624) and everything else is kept. The
    /// caller swaps the IP addresses. Does nothing to other message types.
    #[inline]
    pub fn make_echo_reply(&mut self) {
        if self.msg_type() != ECHO_REQUEST {
            return;
        }
        let old = get_u16(self.buffer.as_ref(), field::TYPE);
        let new = (u16::from(ECHO_REPLY) << 8) | (old & 0x00ff);
        self.buffer.as_mut()[field::TYPE] = ECHO_REPLY;
        let c = checksum::update_u16(self.checksum(), old, new);
        self.set_checksum_raw(c);
    }

    /// Sets the message type; the checksum is left stale.
    #[inline]
    pub fn set_msg_type_raw(&mut self, msg_type: u8) {
        self.buffer.as_mut()[field::TYPE] = msg_type;
    }

    /// Sets the message code; the checksum is left stale.
    #[inline]
    pub fn set_code_raw(&mut self, code: u8) {
        self.buffer.as_mut()[field::CODE] = code;
    }

    /// Sets the echo identifier; the checksum is left stale.
    #[inline]
    pub fn set_ident_raw(&mut self, ident: u16) {
        put_u16(self.buffer.as_mut(), field::IDENT, ident);
    }

    /// Sets the echo sequence number; the checksum is left stale.
    #[inline]
    pub fn set_seq_no_raw(&mut self, seq_no: u16) {
        put_u16(self.buffer.as_mut(), field::SEQ_NO, seq_no);
    }

    /// Stores `checksum` in the checksum field as is.
    #[inline]
    pub fn set_checksum_raw(&mut self, checksum: u16) {
        put_u16(self.buffer.as_mut(), field::CHECKSUM, checksum);
    }

    /// Computes the checksum over the whole buffer and stores it.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum_raw(0);
        let c = checksum::internet_checksum(self.buffer.as_ref());
        self.set_checksum_raw(c);
    }

    /// The data after the header, writable (the checksum is not maintained).
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        self.buffer
            .as_mut()
            .get_mut(field::HEADER_LEN..)
            .unwrap_or(&mut [])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{fixtures, ipv4::protocol, Ipv4Packet};

    #[test]
    fn echo_request_and_reply() {
        let ip = Ipv4Packet::new_checked(&fixtures::ICMP_ECHO[..]).unwrap();
        assert_eq!(ip.protocol(), protocol::ICMP);
        let icmp = Icmpv4Packet::new_checked(ip.payload()).unwrap();
        assert_eq!(
            (icmp.msg_type(), icmp.code()),
            (Icmpv4Packet::ECHO_REQUEST, 0)
        );
        assert_eq!(
            (icmp.ident(), icmp.seq_no(), icmp.checksum()),
            (0x1234, 1, 0x2d0a)
        );
        assert!(icmp.verify_checksum());
        assert_eq!(icmp.payload().len(), 16);

        let mut b = [0u8; 24];
        b.copy_from_slice(ip.payload());
        let mut reply = Icmpv4Packet::new_checked(&mut b[..]).unwrap();
        reply.make_echo_reply();
        assert_eq!(reply.msg_type(), Icmpv4Packet::ECHO_REPLY);
        assert!(reply.verify_checksum());
        let incremental = reply.checksum();
        reply.fill_checksum();
        assert_eq!(reply.checksum(), incremental);
        // A second call changes nothing: it is not a request any more.
        reply.make_echo_reply();
        assert_eq!(reply.checksum(), incremental);
    }

    #[test]
    fn every_prefix() {
        let body = &fixtures::ICMP_ECHO[20..];
        for n in 0..=body.len() {
            match Icmpv4Packet::new_checked(&body[..n]) {
                Ok(p) => {
                    let _ = (p.msg_type(), p.code(), p.ident(), p.seq_no(), p.payload());
                    assert_eq!(p.verify_checksum(), n == body.len());
                }
                Err(e) => assert!(e == Error::Truncated && n < 8),
            }
        }
    }

    #[test]
    fn raw_setters() {
        let mut b = [0u8; 12];
        let mut p = Icmpv4Packet::new_unchecked(&mut b[..]);
        p.set_msg_type_raw(ECHO_REQUEST);
        p.set_code_raw(0);
        p.set_ident_raw(0xbeef);
        p.set_seq_no_raw(9);
        p.payload_mut().copy_from_slice(b"ping");
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert_eq!(
            (p.ident(), p.seq_no(), p.payload()),
            (0xbeef, 9, &b"ping"[..])
        );
    }
}
