//! The generator's frames: one template per run, patched per packet with the flow's
//! address, its sequence number and a TSC stamp, checksums completed from precomputed
//! sums (a full checksum per packet would cost more than the rest of the send path).
//!
//! Layout (no VLAN, no IP or TCP options): Ethernet 14 + IPv4 20 + TCP 20 = 54 bytes of
//! headers, then the payload, whose first [`STAMP_LEN`] bytes hold the low 48 bits of the
//! sender's TSC. A 64-byte frame (60 without the FCS) has exactly those 6 payload bytes.
//! The IPv4 identification holds [`MAGIC_IDENT`], which marks the generator's frames: a
//! forwarder rewrites addresses and ports, not the identification.

use anyhow::{bail, Context, Result};
use tandem_wire::build::{self, TcpBuild};
use tandem_wire::checksum;
use tandem_wire::{ArpPacket, EtherType, Ipv4Addr, MacAddr, TcpFlags};

/// IPv4 identification of every generated frame.
pub const MAGIC_IDENT: u16 = 0x7d5e;
/// Ethernet + IPv4 + TCP headers, without options.
pub const HEADERS_LEN: usize = 54;
/// Bytes of TSC stamp at the start of the payload.
pub const STAMP_LEN: usize = 6;
/// The stamp keeps the TSC's low 48 bits (wraps after a day at 3 GHz; see [`unstamp`]).
const STAMP_MASK: u64 = (1 << 48) - 1;
/// Length of the Ethernet frame check sequence, counted in the frame sizes of the
/// command line (RFC 2544 sizes: 64 .. 1518) but not in the buffers.
pub const FCS_LEN: usize = 4;
/// Largest frame size (with FCS) the generator builds: one MTU-1500 frame.
pub const MAX_FRAME_SIZE: usize = 1518;

/// Offsets in the frame.
mod at {
    pub const IP_IDENT: usize = 18;
    pub const IP_PROTO: usize = 23;
    pub const IP_CSUM: usize = 24;
    pub const IP_SRC: usize = 26;
    pub const TCP_SRC_PORT: usize = 34;
    pub const TCP_SEQ: usize = 38;
    pub const TCP_DATA_OFF: usize = 46;
    pub const TCP_CSUM: usize = 50;
}

/// First client address: flows use 198.18.16.1 and up (198.18.0.0/24 is left to the
/// device under test and the VIP).
const CLIENT_BASE: u32 = u32::from_be_bytes([198, 18, 16, 0]);
/// Client addresses in use before the source port changes.
const CLIENT_HOSTS: u32 = 4000;
/// First client port.
const CLIENT_PORT_BASE: u32 = 10000;
/// The most flows: client ports stay below 65536.
pub const MAX_FLOWS: u32 = CLIENT_HOSTS * (65536 - CLIENT_PORT_BASE);

/// Flow `i`'s client address and port: 4000 addresses from 198.18.16.1, then the next
/// port (flow 1 000 000 is 198.18.31.160:10249).
pub fn flow_addr(i: u32) -> (Ipv4Addr, u16) {
    let ip = CLIENT_BASE + 1 + i % CLIENT_HOSTS;
    // i < MAX_FLOWS keeps the port below 65536; a larger i would wrap, never panic.
    let port = (CLIENT_PORT_BASE + i / CLIENT_HOSTS) as u16;
    (Ipv4Addr::from(ip), port)
}

/// Whether `ip` is one of the first `flows` client addresses (for ARP on the clients'
/// side).
pub fn is_client(ip: Ipv4Addr, flows: u32) -> bool {
    let v = u32::from(ip);
    let hosts = flows.min(CLIENT_HOSTS);
    v > CLIENT_BASE && v <= CLIENT_BASE + hosts
}

/// The frame every packet starts from, and the checksum sums of its fixed part.
#[derive(Debug, Clone)]
pub struct Template {
    /// The whole frame (without FCS), with zero source address, port, seq and stamp.
    frame: Vec<u8>,
    /// Unfolded sum of the IPv4 header as built (checksum field zero).
    ip_sum: u32,
    /// Unfolded sum of the TCP pseudo-header, header (checksum zero) and payload.
    tcp_sum: u32,
}

impl Template {
    /// A template for frames of `frame_size` bytes including the FCS (64 ..= 1518),
    /// ACK|PSH segments to `dst_ip:dst_port`, Ethernet `src_mac` → `dst_mac`.
    pub fn new(
        frame_size: usize,
        src_mac: MacAddr,
        dst_mac: MacAddr,
        dst_ip: Ipv4Addr,
        dst_port: u16,
    ) -> Result<Template> {
        if !(build::MIN_FRAME_LEN + FCS_LEN..=MAX_FRAME_SIZE).contains(&frame_size) {
            bail!("frame size {frame_size} is outside 64..=1518 (bytes with the FCS)");
        }
        let len = frame_size - FCS_LEN;
        let payload = vec![0u8; len - HEADERS_LEN];
        let mut frame = vec![0u8; len];
        let spec = TcpBuild {
            src_mac,
            dst_mac,
            vlan_tci: None,
            src_ip: Ipv4Addr::UNSPECIFIED,
            dst_ip,
            src_port: 0,
            dst_port,
            seq: 0,
            ack: 1,
            flags: TcpFlags::ACK | TcpFlags::PSH,
            window: 65535,
            ttl: 64,
            options: &[],
            payload: &payload,
        };
        let n = build::tcp(&mut frame, &spec).map_err(|e| anyhow::anyhow!("template: {e}"))?;
        if n != len {
            bail!("template: built {n} bytes, wanted {len}");
        }
        frame[at::IP_IDENT..at::IP_IDENT + 2].copy_from_slice(&MAGIC_IDENT.to_be_bytes());
        // Sums of the fixed parts: the checksum fields are zeroed, so adding the per-packet
        // words (zero in the template) to these gives the full sums.
        frame[at::IP_CSUM..at::IP_CSUM + 2].fill(0);
        frame[at::TCP_CSUM..at::TCP_CSUM + 2].fill(0);
        let ip_sum = checksum::sum(&frame[14..34], 0);
        let tcp_len = u16::try_from(len - 34).context("segment length")?;
        let pseudo = checksum::pseudo_header_v4(
            Ipv4Addr::UNSPECIFIED,
            dst_ip,
            tandem_wire::ipv4::protocol::TCP,
            tcp_len,
        );
        let tcp_sum = checksum::sum(&frame[34..], pseudo);
        Ok(Template {
            frame,
            ip_sum,
            tcp_sum,
        })
    }

    /// Frame length without the FCS.
    pub fn frame_len(&self) -> usize {
        self.frame.len()
    }

    /// The whole template frame, to fill a buffer once (payload bytes past the stamp stay
    /// zero as long as only [`write`](Self::write) touches the buffer afterwards).
    pub fn frame(&self) -> &[u8] {
        &self.frame
    }

    /// Writes one packet into `buf` (at least [`frame_len`](Self::frame_len) bytes, whose payload
    /// past the stamp is zero, as [`frame`](Self::frame) leaves it): the headers, the
    /// flow's source, `seq`, the stamp, and both checksums. Only the first 60 bytes are
    /// written.
    #[inline]
    pub fn write(&self, buf: &mut [u8], src: Ipv4Addr, src_port: u16, seq: u32, tsc: u64) {
        let buf = &mut buf[..HEADERS_LEN + STAMP_LEN];
        buf[..HEADERS_LEN].copy_from_slice(&self.frame[..HEADERS_LEN]);
        let s = u32::from(src);
        buf[at::IP_SRC..at::IP_SRC + 4].copy_from_slice(&s.to_be_bytes());
        buf[at::TCP_SRC_PORT..at::TCP_SRC_PORT + 2].copy_from_slice(&src_port.to_be_bytes());
        buf[at::TCP_SEQ..at::TCP_SEQ + 4].copy_from_slice(&seq.to_be_bytes());
        let stamp = tsc & STAMP_MASK;
        buf[HEADERS_LEN..].copy_from_slice(&stamp.to_be_bytes()[2..]);
        let addr = (s >> 16) + (s & 0xffff);
        let ip = checksum::finish(self.ip_sum + addr);
        buf[at::IP_CSUM..at::IP_CSUM + 2].copy_from_slice(&ip.to_be_bytes());
        let stamp_words = ((stamp >> 32) + ((stamp >> 16) & 0xffff) + (stamp & 0xffff)) as u32;
        let tcp = checksum::finish(
            self.tcp_sum + addr + u32::from(src_port) + (seq >> 16) + (seq & 0xffff) + stamp_words,
        );
        buf[at::TCP_CSUM..at::TCP_CSUM + 2].copy_from_slice(&tcp.to_be_bytes());
    }
}

/// What a received frame is, for the receive loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rx {
    /// One of ours, with the low 48 bits of its send TSC.
    Stamped(u64),
    /// An ARP request for `target`, from `sender_mac`/`sender_ip`.
    ArpRequest {
        /// The address asked for.
        target: Ipv4Addr,
        /// Who asks.
        sender_mac: MacAddr,
        /// Its address.
        sender_ip: Ipv4Addr,
    },
    /// Anything else.
    Other,
}

/// Classifies a received frame (any bytes: never panics).
#[inline]
pub fn classify(frame: &[u8]) -> Rx {
    let Some(et) = frame.get(12..14) else {
        return Rx::Other;
    };
    let et = u16::from_be_bytes([et[0], et[1]]);
    if et == EtherType::IPV4 {
        if frame.len() < HEADERS_LEN
            || frame[14] != 0x45
            || frame[at::IP_PROTO] != tandem_wire::ipv4::protocol::TCP
            || frame[at::IP_IDENT..at::IP_IDENT + 2] != MAGIC_IDENT.to_be_bytes()
        {
            return Rx::Other;
        }
        let start = 34 + usize::from(frame[at::TCP_DATA_OFF] >> 4) * 4;
        match frame.get(start..start + STAMP_LEN) {
            Some(s) => {
                let mut b = [0u8; 8];
                b[2..].copy_from_slice(s);
                Rx::Stamped(u64::from_be_bytes(b))
            }
            None => Rx::Other,
        }
    } else if et == EtherType::ARP {
        match frame.get(14..).map(ArpPacket::new_checked) {
            Some(Ok(a)) if a.operation() == ArpPacket::REQUEST => Rx::ArpRequest {
                target: a.target_ip(),
                sender_mac: a.sender_mac(),
                sender_ip: a.sender_ip(),
            },
            _ => Rx::Other,
        }
    } else {
        Rx::Other
    }
}

/// The full TSC value of a 48-bit `stamp` taken at or before `now` (the latest such
/// value, so a stamp taken just before the 48-bit counter wrapped comes out right).
#[inline]
pub fn unstamp(now: u64, stamp: u64) -> u64 {
    let full = (now & !STAMP_MASK) | (stamp & STAMP_MASK);
    if full > now {
        full.wrapping_sub(STAMP_MASK + 1)
    } else {
        full
    }
}

/// Writes an ARP reply from `mac` saying that `ip` is at `mac`, to the asker, into
/// `buf`; returns the frame length (60).
pub fn arp_reply(
    buf: &mut [u8],
    mac: MacAddr,
    ip: Ipv4Addr,
    asker_mac: MacAddr,
    asker_ip: Ipv4Addr,
) -> Result<usize> {
    build::arp(
        buf,
        ArpPacket::REPLY,
        asker_mac,
        mac,
        ip,
        asker_mac,
        asker_ip,
    )
    .map_err(|e| anyhow::anyhow!("ARP reply: {e}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tandem_wire::{EthernetFrame, Ipv4Packet, TcpSegment};

    fn template(size: usize) -> Template {
        Template::new(
            size,
            MacAddr([2, 0, 0, 0, 0, 1]),
            MacAddr([2, 0, 0, 0, 0, 2]),
            Ipv4Addr::new(198, 18, 0, 100),
            80,
        )
        .unwrap()
    }

    #[test]
    fn written_packets_have_valid_checksums_and_fields() {
        for size in [64, 65, 128, 1500, 1518] {
            let t = template(size);
            assert_eq!(t.frame_len(), size - 4);
            let mut buf = t.frame().to_vec();
            for (i, seq, tsc) in [
                (0u32, 0u32, 0u64),
                (999_999, 0xffff_fff0, 0xffff_ffff_ffff_ffff),
                (123_456, 0x8000_0000, 0x1234_5678_9abc),
            ] {
                let (ip, port) = flow_addr(i);
                t.write(&mut buf, ip, port, seq, tsc);
                let eth = EthernetFrame::new_checked(&buf[..]).unwrap();
                let ipv4 = Ipv4Packet::new_checked(eth.payload()).unwrap();
                assert!(ipv4.verify_checksum(), "ip checksum, size {size} flow {i}");
                assert_eq!(ipv4.src(), ip);
                assert_eq!(ipv4.ident(), MAGIC_IDENT);
                let seg = TcpSegment::new_checked(ipv4.payload()).unwrap();
                assert!(
                    seg.verify_checksum(ip, ipv4.dst()),
                    "tcp checksum, size {size} flow {i}"
                );
                assert_eq!((seg.src_port(), seg.seq()), (port, seq));
                assert_eq!(seg.flags(), TcpFlags::ACK | TcpFlags::PSH);
                assert_eq!(classify(&buf), Rx::Stamped(tsc & STAMP_MASK));
            }
        }
    }

    #[test]
    fn frame_sizes_out_of_range_are_refused() {
        assert!(Template::new(63, MacAddr::ZERO, MacAddr::ZERO, Ipv4Addr::LOCALHOST, 1).is_err());
        assert!(Template::new(1519, MacAddr::ZERO, MacAddr::ZERO, Ipv4Addr::LOCALHOST, 1).is_err());
    }

    #[test]
    fn flows_are_distinct_and_in_range() {
        let a = flow_addr(0);
        assert_eq!(a, (Ipv4Addr::new(198, 18, 16, 1), 10000));
        assert_eq!(flow_addr(999_999), (Ipv4Addr::new(198, 18, 31, 160), 10249));
        assert_ne!(flow_addr(4000), a);
        assert_eq!(flow_addr(4000).0, a.0);
        assert_eq!(flow_addr(MAX_FLOWS - 1).1, 65535);
        assert!(is_client(Ipv4Addr::new(198, 18, 16, 1), 1));
        assert!(!is_client(Ipv4Addr::new(198, 18, 16, 2), 1));
        assert!(is_client(Ipv4Addr::new(198, 18, 31, 160), 1_000_000));
        assert!(!is_client(Ipv4Addr::new(198, 18, 16, 0), 1_000_000));
    }

    #[test]
    fn unstamp_recovers_the_full_value_across_the_wrap() {
        let now = 5 << 48 | 10;
        assert_eq!(unstamp(now, 7), 5 << 48 | 7);
        // Stamped just before the low 48 bits wrapped.
        assert_eq!(unstamp(now, STAMP_MASK - 3), (5 << 48) - 4);
        assert_eq!(unstamp(now, 10), now);
    }

    #[test]
    fn classify_arp_and_garbage() {
        let mut buf = [0u8; 64];
        let mac = MacAddr([2, 0, 0, 0, 0, 9]);
        let n = build::arp(
            &mut buf,
            ArpPacket::REQUEST,
            MacAddr::BROADCAST,
            mac,
            Ipv4Addr::new(198, 19, 0, 1),
            MacAddr::ZERO,
            Ipv4Addr::new(198, 19, 0, 11),
        )
        .unwrap();
        assert_eq!(
            classify(&buf[..n]),
            Rx::ArpRequest {
                target: Ipv4Addr::new(198, 19, 0, 11),
                sender_mac: mac,
                sender_ip: Ipv4Addr::new(198, 19, 0, 1),
            }
        );
        let mut reply = [0u8; 64];
        let m = arp_reply(
            &mut reply,
            MacAddr([2, 0, 0, 0, 0, 7]),
            Ipv4Addr::new(198, 19, 0, 11),
            mac,
            Ipv4Addr::new(198, 19, 0, 1),
        )
        .unwrap();
        let a = ArpPacket::new_checked(&reply[14..m]).unwrap();
        assert_eq!(a.operation(), ArpPacket::REPLY);
        assert_eq!(a.sender_ip(), Ipv4Addr::new(198, 19, 0, 11));
        assert_eq!(a.target_mac(), mac);
        assert_eq!(classify(&reply[..m]), Rx::Other);
        for len in 0..60 {
            let t = template(64);
            // Truncated frames of ours are not taken for stamped ones.
            assert_eq!(classify(&t.frame()[..len]), Rx::Other);
        }
    }
}
