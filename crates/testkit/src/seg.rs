//! Segments in and out: [`Seg`], a TCP segment with every field named, built from
//! templates as smoltcp's tests build theirs (`TcpRepr { seq_number, ..SEND_TEMPL }`),
//! and [`Seen`], a segment the engine sent, parsed back with its checksums checked.
//!
//! ```
//! use tandem_testkit::{Opts, Seg};
//!
//! // The backup's 100 bytes at b1, acking the client's c1, with its timestamps.
//! let (b1, c1) = (900_001, 1001);
//! let payload = [7u8; 100];
//! let seg = Seg {
//!     seq: b1,
//!     ack: c1,
//!     opts: Opts::ts(80_002, 101),
//!     payload: &payload,
//!     ..Seg::BACKUP
//! };
//! assert_eq!(seg.frame().len(), 14 + 20 + 32 + 100);
//! ```

use std::net::Ipv4Addr;

use tandem_engine::Side;
use tandem_wire::build::{self, OptionWriter, TcpBuild};
use tandem_wire::{EthernetFrame, Ipv4Packet, MacAddr, TcpFlags, TcpSegment};

use crate::addr::*;

/// ACK.
pub const A: TcpFlags = TcpFlags::ACK;
/// SYN.
pub const S: TcpFlags = TcpFlags::SYN;
const SYN_ACK: TcpFlags = TcpFlags(TcpFlags::SYN.0 | TcpFlags::ACK.0);

/// `n` bytes counting up from `tag`: a payload whose every byte says where it was.
pub fn data(n: usize, tag: u8) -> Vec<u8> {
    (0..n).map(|i| tag.wrapping_add(i as u8)).collect()
}

/// The TCP options of a segment, written in the order Linux writes a SYN's: MSS,
/// SACK-permitted, timestamps, window scale (then SACK blocks, from [`Seg::sack`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Opts {
    /// Maximum segment size.
    pub mss: Option<u16>,
    /// Window scale shift.
    pub wscale: Option<u8>,
    /// SACK permitted.
    pub sack_ok: bool,
    /// Timestamps: (TSval, TSecr).
    pub ts: Option<(u32, u32)>,
}

impl Opts {
    /// No options.
    pub const NONE: Opts = Opts {
        mss: None,
        wscale: None,
        sack_ok: false,
        ts: None,
    };

    /// A SYN's options: MSS, window scale, SACK permitted and timestamps with TSval `ts`.
    pub const fn syn(mss: u16, wscale: u8, ts: u32) -> Opts {
        Opts {
            mss: Some(mss),
            wscale: Some(wscale),
            sack_ok: true,
            ts: Some((ts, 0)),
        }
    }

    /// Timestamps alone, as on every segment after the handshake.
    pub const fn ts(tsval: u32, tsecr: u32) -> Opts {
        Opts {
            ts: Some((tsval, tsecr)),
            ..Opts::NONE
        }
    }
}

/// One TCP segment over IPv4 over Ethernet, every field named, and the appliance port it
/// arrives on. Start from a template and name what differs:
/// `Seg { seq, ack, payload: b"hello", ..Seg::PRIMARY }`.
#[derive(Clone, Copy, Debug)]
pub struct Seg<'a> {
    /// The appliance port it arrives on.
    pub side: Side,
    /// Ethernet source.
    pub src_mac: MacAddr,
    /// Ethernet destination.
    pub dst_mac: MacAddr,
    /// An 802.1Q tag's control information, if the frame is tagged.
    pub vlan: Option<u16>,
    /// IPv4 source.
    pub src: Ipv4Addr,
    /// TCP source port.
    pub sport: u16,
    /// IPv4 destination.
    pub dst: Ipv4Addr,
    /// TCP destination port.
    pub dport: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Flags.
    pub flags: TcpFlags,
    /// Window, as on the wire.
    pub window: u16,
    /// Options.
    pub opts: Opts,
    /// SACK blocks, after the other options (as many as fit).
    pub sack: &'a [(u32, u32)],
    /// Payload.
    pub payload: &'a [u8],
}

impl Seg<'static> {
    /// The client's ACK to the VIP: no options, no payload, sequence numbers 0.
    pub const CLIENT: Seg<'static> = Seg {
        side: Side::Outside,
        src_mac: CLIENT_MAC,
        dst_mac: OUTSIDE_MAC,
        vlan: None,
        src: CLIENT,
        sport: CPORT,
        dst: VIP,
        dport: PORT,
        seq: 0,
        ack: 0,
        flags: A,
        window: 502,
        opts: Opts::NONE,
        sack: &[],
        payload: &[],
    };

    /// The client's SYN, as Linux sends it (the lab's handshake: TSval 100).
    pub const CLIENT_SYN: Seg<'static> = Seg {
        flags: S,
        window: 64240,
        opts: Opts::syn(1460, 7, 100),
        ..Seg::CLIENT
    };

    /// The primary's ACK to the client: no options, no payload, sequence numbers 0.
    pub const PRIMARY: Seg<'static> = Seg {
        side: Side::Inside,
        src_mac: PRIMARY_MAC,
        dst_mac: INSIDE_MAC,
        vlan: None,
        src: PRIMARY,
        sport: PORT,
        dst: CLIENT,
        dport: CPORT,
        seq: 0,
        ack: 0,
        flags: A,
        window: 500,
        opts: Opts::NONE,
        sack: &[],
        payload: &[],
    };

    /// The primary's SYN-ACK (the lab's handshake: its clock at 5000).
    pub const PRIMARY_SYNACK: Seg<'static> = Seg {
        flags: SYN_ACK,
        window: 65535,
        opts: Opts::syn(1460, 7, 5000),
        ..Seg::PRIMARY
    };

    /// The backup's ACK to the client: no options, no payload, sequence numbers 0.
    pub const BACKUP: Seg<'static> = Seg {
        src_mac: BACKUP_MAC,
        src: BACKUP,
        ..Seg::PRIMARY
    };

    /// The backup's SYN-ACK (the lab's handshake: its clock at 80 000).
    pub const BACKUP_SYNACK: Seg<'static> = Seg {
        flags: SYN_ACK,
        window: 65535,
        opts: Opts::syn(1460, 7, 80_000),
        ..Seg::BACKUP
    };
}

impl<'a> Seg<'a> {
    /// The same segment for another client, `(address, port)`: its source if the segment
    /// is the client's (it arrives outside), else its destination.
    pub const fn for_client(self, (addr, port): (Ipv4Addr, u16)) -> Seg<'a> {
        match self.side {
            Side::Outside => Seg {
                src: addr,
                sport: port,
                ..self
            },
            Side::Inside => Seg {
                dst: addr,
                dport: port,
                ..self
            },
        }
    }

    /// The frame: Ethernet, IPv4 (TTL 64, DF) and TCP, checksums filled in.
    pub fn frame(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        self.write(&mut buf);
        buf
    }

    /// Writes the frame into `buf` (its old contents replaced): for a benchmark whose
    /// buffers come from a [`crate::Recycler`].
    pub fn write(&self, buf: &mut Vec<u8>) {
        let mut w = OptionWriter::new();
        if let Some(m) = self.opts.mss {
            w.mss(m);
        }
        if self.opts.sack_ok {
            w.sack_permitted();
        }
        if let Some((v, e)) = self.opts.ts {
            w.timestamps(v, e);
        }
        if let Some(s) = self.opts.wscale {
            w.window_scale(s);
        }
        if !self.sack.is_empty() {
            w.sack(self.sack);
        }
        // Ethernet with a tag, IPv4 and TCP headers with the longest options.
        buf.resize(18 + 20 + 60 + self.payload.len(), 0);
        let n = build::tcp(
            buf,
            &TcpBuild {
                src_mac: self.src_mac,
                dst_mac: self.dst_mac,
                vlan_tci: self.vlan,
                src_ip: self.src,
                dst_ip: self.dst,
                src_port: self.sport,
                dst_port: self.dport,
                seq: self.seq,
                ack: self.ack,
                flags: self.flags,
                window: self.window,
                ttl: 64,
                options: w.as_bytes(),
                payload: self.payload,
            },
        )
        .expect("a segment of at most 64 KiB fits the buffer sized for it");
        buf.truncate(n);
    }
}

/// A segment as it left the engine, every field parsed back.
#[derive(Clone, Debug)]
pub struct Seen {
    /// The port it left by.
    pub side: Side,
    /// Ethernet source.
    pub src_mac: MacAddr,
    /// Ethernet destination.
    pub dst_mac: MacAddr,
    /// IPv4 source.
    pub src: Ipv4Addr,
    /// IPv4 destination.
    pub dst: Ipv4Addr,
    /// TCP source port.
    pub sport: u16,
    /// TCP destination port.
    pub dport: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Flags.
    pub flags: TcpFlags,
    /// Window, as on the wire.
    pub window: u16,
    /// Maximum segment size option.
    pub mss: Option<u16>,
    /// Window scale option.
    pub wscale: Option<u8>,
    /// SACK-permitted option.
    pub sack_ok: bool,
    /// Timestamps option.
    pub ts: Option<(u32, u32)>,
    /// SACK blocks.
    pub sack: Vec<(u32, u32)>,
    /// Payload.
    pub payload: Vec<u8>,
}

impl Seen {
    /// Parses a frame the engine sent on `side`; panics unless it is TCP over IPv4 with
    /// both checksums right.
    pub fn parse(side: Side, frame: &[u8]) -> Seen {
        Seen::try_parse(side, frame).unwrap_or_else(|e| panic!("{e}"))
    }

    /// As [`Seen::parse`], the fault as text: for a benchmark that reports rather than
    /// panics.
    pub fn try_parse(side: Side, frame: &[u8]) -> Result<Seen, String> {
        let eth = EthernetFrame::new_checked(frame).map_err(|e| format!("ethernet: {e:?}"))?;
        let ip = Ipv4Packet::new_checked(eth.payload()).map_err(|e| format!("ipv4: {e:?}"))?;
        if !ip.verify_checksum() {
            return Err("IPv4 checksum".into());
        }
        let tcp = TcpSegment::new_checked(ip.payload()).map_err(|e| format!("tcp: {e:?}"))?;
        if !tcp.verify_checksum(ip.src(), ip.dst()) {
            return Err(format!("TCP checksum of {:?}", tcp.flags()));
        }
        Ok(Seen {
            side,
            src_mac: eth.src(),
            dst_mac: eth.dst(),
            src: ip.src(),
            dst: ip.dst(),
            sport: tcp.src_port(),
            dport: tcp.dst_port(),
            seq: tcp.seq(),
            ack: tcp.ack(),
            flags: tcp.flags(),
            window: tcp.window(),
            mss: tcp.mss(),
            wscale: tcp.window_scale(),
            sack_ok: tcp.sack_permitted(),
            ts: tcp.timestamps(),
            sack: tcp.sack_blocks().map(|b| b.collect()).unwrap_or_default(),
            payload: tcp.payload().to_vec(),
        })
    }

    /// Whether it is a SYN (or SYN-ACK).
    pub fn is_syn(&self) -> bool {
        self.flags.contains(TcpFlags::SYN)
    }
}
