//! Zero-copy views over the packet bytes Tandem reads and rewrites: Ethernet (with one
//! 802.1Q tag), ARP, IPv4, TCP with its options, ICMPv4 echo, the Internet checksum with
//! incremental updates, and builders for the packets Tandem synthesises.
//!
//! Every header is a view in the smoltcp style: `Packet<T: AsRef<[u8]>>` wraps a buffer,
//! `new_checked` validates the lengths once at the edge, and after that no accessor
//! panics. Setters exist only when `T: AsMut<[u8]>`. `new_unchecked` skips the checks,
//! and then the fixed-offset accessors may panic on a buffer that is too short.
//!
//! The crate is `no_std`, allocates nothing and has no dependencies.

#![no_std]
#![cfg_attr(test, allow(clippy::unwrap_used))]

#[cfg(test)]
extern crate std;

pub mod arp;
pub mod build;
pub mod checksum;
pub mod ethernet;
pub mod icmpv4;
pub mod ipv4;
pub mod tcp;

pub use arp::ArpPacket;
pub use checksum::ChecksumDelta;
pub use ethernet::{EtherType, EthernetFrame, MacAddr};
pub use icmpv4::Icmpv4Packet;
pub use ipv4::{Ipv4Addr, Ipv4Packet};
pub use tcp::{TcpFlags, TcpOption, TcpSegment};

/// Why a buffer is not a valid packet of the kind asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The buffer is shorter than the header or the lengths it declares.
    Truncated,
    /// A field holds a value this crate does not accept (wrong version, bad length field,
    /// unsupported hardware type, malformed option, second VLAN tag, ...).
    Malformed,
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Error::Truncated => "truncated packet",
            Error::Malformed => "malformed packet",
        })
    }
}

impl core::error::Error for Error {}

/// The result of parsing or building a packet.
pub type Result<T> = core::result::Result<T, Error>;

/// Reads a big-endian `u16` at `at`. Panics if `b` is shorter than `at + 2`.
#[inline]
pub(crate) fn get_u16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Reads a big-endian `u32` at `at`. Panics if `b` is shorter than `at + 4`.
#[inline]
pub(crate) fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Writes a big-endian `u16` at `at`. Panics if `b` is shorter than `at + 2`.
#[inline]
pub(crate) fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// Writes a big-endian `u32` at `at`. Panics if `b` is shorter than `at + 4`.
#[inline]
pub(crate) fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

/// Reads four bytes at `at` as an IPv4 address. Panics if `b` is shorter than `at + 4`.
#[inline]
pub(crate) fn get_ipv4(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
}

/// Reads six bytes at `at` as a MAC address. Panics if `b` is shorter than `at + 6`.
#[inline]
pub(crate) fn get_mac(b: &[u8], at: usize) -> MacAddr {
    MacAddr([b[at], b[at + 1], b[at + 2], b[at + 3], b[at + 4], b[at + 5]])
}

#[cfg(test)]
mod fixtures;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_display() {
        use std::string::ToString;
        assert_eq!(Error::Truncated.to_string(), "truncated packet");
        assert_eq!(Error::Malformed.to_string(), "malformed packet");
    }
}
