//! Builders for the packets Tandem synthesises (pure ACKs, probe SYNs, RSTs, ARP), written
//! into a caller's buffer with complete checksums. Nothing is allocated.

use crate::arp::{self, ArpPacket};
use crate::ethernet::{self, EtherType, EthernetFrame, MacAddr};
use crate::ipv4::{self, protocol, Ipv4Packet};
use crate::tcp::{self, option_kind, TcpFlags, TcpSegment, MAX_OPTIONS_LEN};
use crate::{Error, Ipv4Addr, Result};

/// The minimum Ethernet frame length without the frame check sequence (IEEE 802.3).
pub const MIN_FRAME_LEN: usize = 60;

/// What to put in a TCP segment built by [`tcp()`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpBuild<'a> {
    /// Ethernet source address.
    pub src_mac: MacAddr,
    /// Ethernet destination address.
    pub dst_mac: MacAddr,
    /// The 802.1Q tag control information, if the frame is tagged.
    pub vlan_tci: Option<u16>,
    /// IPv4 source address.
    pub src_ip: Ipv4Addr,
    /// IPv4 destination address.
    pub dst_ip: Ipv4Addr,
    /// TCP source port.
    pub src_port: u16,
    /// TCP destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Flags.
    pub flags: TcpFlags,
    /// Window (as it goes on the wire, already scaled down).
    pub window: u16,
    /// IPv4 time to live.
    pub ttl: u8,
    /// The options area, already padded to a multiple of 4 bytes, at most 40 (see
    /// [`OptionWriter`]).
    pub options: &'a [u8],
    /// The payload.
    pub payload: &'a [u8],
}

/// Writes an Ethernet (tagged if `vlan_tci` is set) + IPv4 + TCP frame into `buf` and
/// returns its length. IPv4 has DF set, identification 0, no options; both checksums are
/// computed. The frame is not padded to [`MIN_FRAME_LEN`] (see [`pad_to_min_frame`]).
///
/// Errors: [`Error::Truncated`] if `buf` is too small, [`Error::Malformed`] if the options
/// are not a multiple of 4 bytes or longer than 40, or the IP packet would exceed 65535
/// bytes.
pub fn tcp(buf: &mut [u8], spec: &TcpBuild) -> Result<usize> {
    let olen = spec.options.len();
    if !olen.is_multiple_of(4) || olen > MAX_OPTIONS_LEN {
        return Err(Error::Malformed);
    }
    let eth_len = if spec.vlan_tci.is_some() {
        ethernet::TAGGED_HEADER_LEN
    } else {
        ethernet::HEADER_LEN
    };
    let tcp_hl = tcp::HEADER_LEN + olen;
    let ip_len = ipv4::HEADER_LEN + tcp_hl + spec.payload.len();
    let total_len = u16::try_from(ip_len).map_err(|_| Error::Malformed)?;
    let frame_len = eth_len + ip_len;
    let frame = buf.get_mut(..frame_len).ok_or(Error::Truncated)?;

    EthernetFrame::new_unchecked(&mut *frame).set_header_raw(
        spec.dst_mac,
        spec.src_mac,
        spec.vlan_tci,
        EtherType::IPV4,
    );
    let (_, ip_buf) = frame.split_at_mut(eth_len);
    let mut ip = Ipv4Packet::new_unchecked(&mut *ip_buf);
    ip.set_header_len_raw(ipv4::HEADER_LEN);
    ip.set_dscp_ecn_raw(0);
    ip.set_total_len_raw(total_len);
    ip.set_ident_raw(0);
    ip.set_fragment_raw(true, false, 0);
    ip.set_ttl_raw(spec.ttl);
    ip.set_protocol_raw(protocol::TCP);
    ip.set_src_raw(spec.src_ip);
    ip.set_dst_raw(spec.dst_ip);
    ip.fill_checksum();

    let (_, seg_buf) = ip_buf.split_at_mut(ipv4::HEADER_LEN);
    seg_buf[..tcp::HEADER_LEN].fill(0);
    seg_buf[tcp::HEADER_LEN..tcp_hl].copy_from_slice(spec.options);
    seg_buf[tcp_hl..].copy_from_slice(spec.payload);
    let mut seg = TcpSegment::new_unchecked(seg_buf);
    seg.set_src_port_raw(spec.src_port);
    seg.set_dst_port_raw(spec.dst_port);
    seg.set_seq_raw(spec.seq);
    seg.set_ack_raw(spec.ack);
    seg.set_header_len_raw(tcp_hl);
    seg.set_flags_raw(spec.flags);
    seg.set_window_raw(spec.window);
    seg.fill_checksum(spec.src_ip, spec.dst_ip);
    Ok(frame_len)
}

/// Writes an untagged Ethernet/IPv4 ARP frame (RFC 826) into `buf`, from `sender_mac`
/// to `eth_dst`, zero-padded to the 60-byte minimum frame, and returns 60.
/// [`Error::Truncated`] if `buf` is shorter than that.
pub fn arp(
    buf: &mut [u8],
    op: u16,
    eth_dst: MacAddr,
    sender_mac: MacAddr,
    sender_ip: Ipv4Addr,
    target_mac: MacAddr,
    target_ip: Ipv4Addr,
) -> Result<usize> {
    let frame = buf.get_mut(..MIN_FRAME_LEN).ok_or(Error::Truncated)?;
    frame.fill(0);
    EthernetFrame::new_unchecked(&mut *frame).set_header_raw(
        eth_dst,
        sender_mac,
        None,
        EtherType::ARP,
    );
    let body = &mut frame[ethernet::HEADER_LEN..ethernet::HEADER_LEN + arp::PACKET_LEN];
    let mut a = ArpPacket::new_unchecked(body);
    a.set_ethernet_ipv4();
    a.set_operation(op);
    a.set_sender_mac(sender_mac);
    a.set_sender_ip(sender_ip);
    a.set_target_mac(target_mac);
    a.set_target_ip(target_ip);
    Ok(MIN_FRAME_LEN)
}

/// Zero-fills `buf[len..60]` if a frame of `len` bytes is shorter than the 60-byte
/// minimum, and returns the padded length (`len` itself if already long enough).
/// [`Error::Truncated`] if `buf` cannot hold the result.
pub fn pad_to_min_frame(buf: &mut [u8], len: usize) -> Result<usize> {
    if len > buf.len() {
        return Err(Error::Truncated);
    }
    if len >= MIN_FRAME_LEN {
        return Ok(len);
    }
    buf.get_mut(len..MIN_FRAME_LEN)
        .ok_or(Error::Truncated)?
        .fill(0);
    Ok(MIN_FRAME_LEN)
}

/// Writes TCP options into a fixed 40-byte array, in 4-byte aligned units laid out like
/// Linux: `MSS`, `NOP NOP SACK-permitted` (or `SACK-permitted` merged before timestamps),
/// `NOP NOP TS`, `NOP WS`, `NOP NOP SACK`. The result is always a multiple of 4 bytes.
///
/// An option that would not fit in the 40 bytes is silently left out; a SACK option
/// keeps as many leading blocks as fit (at most 4) and is left out if none does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionWriter {
    buf: [u8; MAX_OPTIONS_LEN],
    len: usize,
}

impl Default for OptionWriter {
    fn default() -> Self {
        Self::new()
    }
}

const NOP: u8 = option_kind::NOP;
const SACK_PERMITTED_UNIT: [u8; 4] = [NOP, NOP, option_kind::SACK_PERMITTED, 2];

impl OptionWriter {
    /// An empty options area.
    #[inline]
    pub fn new() -> Self {
        OptionWriter {
            buf: [0; MAX_OPTIONS_LEN],
            len: 0,
        }
    }

    /// Appends `bytes` if they fit.
    #[inline]
    fn push(&mut self, bytes: &[u8]) -> bool {
        let end = self.len + bytes.len();
        match self.buf.get_mut(self.len..end) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                self.len = end;
                true
            }
            None => false,
        }
    }

    /// Adds a maximum segment size option (RFC 9293): 4 bytes.
    pub fn mss(&mut self, mss: u16) -> &mut Self {
        let [hi, lo] = mss.to_be_bytes();
        self.push(&[option_kind::MSS, 4, hi, lo]);
        self
    }

    /// Adds a window scale option (RFC 7323) after a NOP: 4 bytes.
    pub fn window_scale(&mut self, shift: u8) -> &mut Self {
        self.push(&[NOP, option_kind::WINDOW_SCALE, 3, shift]);
        self
    }

    /// Adds a SACK-permitted option (RFC 2018) after two NOPs: 4 bytes. Directly followed
    /// by [`Self::timestamps`], the NOPs are dropped and the two share a unit (Linux SYN
    /// layout).
    pub fn sack_permitted(&mut self) -> &mut Self {
        self.push(&SACK_PERMITTED_UNIT);
        self
    }

    /// Adds a timestamps option (RFC 7323) after two NOPs, or right after a
    /// SACK-permitted option just written: 12 bytes.
    pub fn timestamps(&mut self, tsval: u32, tsecr: u32) -> &mut Self {
        let mut unit = [0u8; 12];
        unit[..4].copy_from_slice(&[NOP, NOP, option_kind::TIMESTAMPS, 10]);
        unit[4..8].copy_from_slice(&tsval.to_be_bytes());
        unit[8..].copy_from_slice(&tsecr.to_be_bytes());
        let merge = self.len >= 4
            && self.buf[self.len - 4..self.len] == SACK_PERMITTED_UNIT
            && self.len + 8 <= MAX_OPTIONS_LEN;
        if merge {
            self.len -= 4;
            unit[..2].copy_from_slice(&[option_kind::SACK_PERMITTED, 2]);
        }
        self.push(&unit);
        self
    }

    /// Adds a SACK option (RFC 2018) with the leading `blocks` that fit, after two NOPs:
    /// 4 + 8 * n bytes.
    pub fn sack(&mut self, blocks: &[(u32, u32)]) -> &mut Self {
        let room = (MAX_OPTIONS_LEN - self.len).saturating_sub(4) / 8;
        let n = blocks.len().min(room).min(4);
        if n == 0 {
            return self;
        }
        self.push(&[NOP, NOP, option_kind::SACK, 2 + 8 * n as u8]);
        for &(left, right) in &blocks[..n] {
            self.push(&left.to_be_bytes());
            self.push(&right.to_be_bytes());
        }
        self
    }

    /// The options written so far, a multiple of 4 bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The length of [`Self::as_bytes`].
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if no option was written.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::TcpOption;
    use crate::{fixtures, TcpSegment};
    use std::vec::Vec;

    fn spec<'a>(options: &'a [u8], payload: &'a [u8]) -> TcpBuild<'a> {
        TcpBuild {
            src_mac: MacAddr([2, 0, 0, 0, 0, 1]),
            dst_mac: MacAddr([2, 0, 0, 0, 0, 2]),
            vlan_tci: None,
            src_ip: Ipv4Addr::new(192, 168, 1, 10),
            dst_ip: Ipv4Addr::new(10, 0, 0, 2),
            src_port: 54321,
            dst_port: 80,
            seq: 0x4e6f_7a12,
            ack: 0,
            flags: TcpFlags::SYN,
            window: 64240,
            ttl: 64,
            options,
            payload,
        }
    }

    #[test]
    fn linux_syn_options() {
        let mut w = OptionWriter::new();
        w.mss(1460)
            .sack_permitted()
            .timestamps(0x0a1b_2c3d, 0)
            .window_scale(7);
        assert_eq!(
            w.as_bytes(),
            [2, 4, 5, 0xb4, 4, 2, 8, 10, 0x0a, 0x1b, 0x2c, 0x3d, 0, 0, 0, 0, 1, 3, 3, 7]
        );
        assert_eq!(w.len(), 20);
    }

    #[test]
    fn builds_the_syn_fixture_exactly() {
        // The fixture has ident 0x1c46; everything else matches what the builder writes.
        let mut w = OptionWriter::new();
        w.mss(1460)
            .sack_permitted()
            .timestamps(0x0a1b_2c3d, 0)
            .window_scale(7);
        let mut buf = [0u8; 128];
        let n = tcp(&mut buf, &spec(w.as_bytes(), b"")).unwrap();
        assert_eq!(n, fixtures::SYN_FRAME.len());
        let mut expected = fixtures::SYN_FRAME;
        let mut ip = Ipv4Packet::new_unchecked(&mut expected[14..]);
        ip.set_ident_raw(0);
        ip.fill_checksum();
        assert_eq!(&buf[..n], &expected[..]);
    }

    #[test]
    fn pure_ack_with_timestamps_and_sack() {
        let mut w = OptionWriter::new();
        w.timestamps(5, 6).sack(&[(1, 2), (3, 4), (5, 6), (7, 8)]);
        // 12 bytes of timestamps leave room for 3 blocks.
        assert_eq!(w.len(), 12 + 4 + 24);
        assert_eq!(&w.as_bytes()[..4], &[1, 1, 8, 10]);
        let mut buf = [0u8; 128];
        let mut s = spec(w.as_bytes(), b"");
        s.flags = TcpFlags::ACK;
        s.vlan_tci = Some(100);
        let n = tcp(&mut buf, &s).unwrap();
        assert_eq!(n, 18 + 20 + 20 + 40);
        let eth = EthernetFrame::new_checked(&buf[..n]).unwrap();
        assert_eq!(eth.vlan_tci(), Some(100));
        let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
        assert!(ip.verify_checksum() && ip.dont_fragment() && ip.ident() == 0);
        let seg = TcpSegment::new_checked(ip.payload()).unwrap();
        assert!(seg.verify_checksum(s.src_ip, s.dst_ip));
        assert_eq!(seg.timestamps(), Some((5, 6)));
        assert_eq!(
            seg.sack_blocks().unwrap().collect::<Vec<_>>(),
            [(1, 2), (3, 4), (5, 6)]
        );
        assert!(seg.options().all(|o| o.is_ok()));
    }

    #[test]
    fn option_writer_limits() {
        let mut w = OptionWriter::new();
        w.sack(&[]);
        assert!(w.is_empty());
        w.sack(&[(1, 2); 6]);
        assert_eq!(w.len(), 4 + 32);
        w.mss(1).window_scale(1).timestamps(1, 1).sack_permitted();
        assert_eq!(w.len(), 40);
        let mut w = OptionWriter::new();
        w.sack_permitted()
            .mss(536)
            .timestamps(9, 9)
            .timestamps(8, 8)
            .timestamps(7, 7);
        assert_eq!(w.len(), 4 + 4 + 12 + 12);
        let opts: Vec<_> = crate::tcp::TcpOptions::new(w.as_bytes())
            .map(|o| o.unwrap())
            .collect();
        assert!(opts.contains(&TcpOption::SackPermitted) && opts.contains(&TcpOption::Mss(536)));
        // Every unit is a multiple of 4, and each call in any order parses back.
        let mut w = OptionWriter::new();
        w.window_scale(14)
            .sack_permitted()
            .timestamps(1, 2)
            .mss(9000);
        assert_eq!(w.len(), 4 + 12 + 4);
        assert_eq!(
            crate::tcp::TcpOptions::new(w.as_bytes())
                .filter(|o| o.is_err())
                .count(),
            0
        );
    }

    #[test]
    fn tcp_errors() {
        let mut buf = [0u8; 128];
        assert_eq!(tcp(&mut buf, &spec(&[1, 1, 1], b"")), Err(Error::Malformed));
        assert_eq!(tcp(&mut buf, &spec(&[1; 44], b"")), Err(Error::Malformed));
        assert_eq!(tcp(&mut buf[..53], &spec(&[], b"")), Err(Error::Truncated));
        assert_eq!(tcp(&mut buf[..54], &spec(&[], b"")), Ok(54));
        let big = std::vec![0u8; 70_000];
        let mut huge = std::vec![0u8; 70_100];
        assert_eq!(tcp(&mut huge, &spec(&[], &big)), Err(Error::Malformed));
    }

    #[test]
    fn arp_request() {
        let mut buf = [0xaau8; 64];
        let n = arp(
            &mut buf,
            ArpPacket::REQUEST,
            MacAddr::BROADCAST,
            MacAddr([0x52, 0x54, 0, 0x12, 0x34, 0x56]),
            Ipv4Addr::new(10, 0, 0, 1),
            MacAddr::ZERO,
            Ipv4Addr::new(10, 0, 0, 2),
        )
        .unwrap();
        assert_eq!(n, 60);
        assert_eq!(&buf[..60], &fixtures::ARP_REQUEST_FRAME[..]);
        assert_eq!(buf[60], 0xaa);
        let short = arp(
            &mut buf[..59],
            ArpPacket::REPLY,
            MacAddr::BROADCAST,
            MacAddr::ZERO,
            Ipv4Addr::UNSPECIFIED,
            MacAddr::ZERO,
            Ipv4Addr::UNSPECIFIED,
        );
        assert_eq!(short, Err(Error::Truncated));
    }

    #[test]
    fn padding() {
        let mut buf = [0xffu8; 64];
        assert_eq!(pad_to_min_frame(&mut buf, 54), Ok(60));
        assert_eq!(&buf[54..60], &[0; 6]);
        assert_eq!(buf[60], 0xff);
        assert_eq!(pad_to_min_frame(&mut buf, 62), Ok(62));
        assert_eq!(pad_to_min_frame(&mut buf[..58], 54), Err(Error::Truncated));
        assert_eq!(pad_to_min_frame(&mut buf[..10], 20), Err(Error::Truncated));
    }
}
