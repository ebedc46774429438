//! A bench for the engine's rules: one client, a primary and a backup, hand-built
//! segments in, parsed segments out.

#![allow(dead_code, clippy::too_many_arguments)]

use std::net::Ipv4Addr;
use std::sync::Arc;

use tandem_engine::{
    Engine, EngineConfig, Output, ReplicaId, ReplicaTable, Service, ServicePort, Side, Signal,
    VecPool,
};
use tandem_wire::build::{self, OptionWriter, TcpBuild};
use tandem_wire::{EthernetFrame, Ipv4Packet, MacAddr, TcpFlags, TcpSegment};

pub const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
pub const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
pub const OUTSIDE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
pub const INSIDE: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 1);
pub const PRIMARY: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 11);
pub const BACKUP: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 12);
pub const CPORT: u16 = 40000;
pub const PORT: u16 = 7000;
pub const CLIENT_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xc1]);
pub const PRIMARY_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x11]);
pub const BACKUP_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x12]);
pub const MS: u64 = 1_000_000;

pub const A: TcpFlags = TcpFlags::ACK;
pub const S: TcpFlags = TcpFlags::SYN;

/// Which replica.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum R {
    P,
    B,
}

/// A segment as it left the engine.
#[derive(Clone, Debug)]
pub struct Seen {
    pub side: Side,
    pub src_mac: MacAddr,
    pub dst_mac: MacAddr,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    pub window: u16,
    pub mss: Option<u16>,
    pub wscale: Option<u8>,
    pub sack_ok: bool,
    pub ts: Option<(u32, u32)>,
    pub sack: Vec<(u32, u32)>,
    pub payload: Vec<u8>,
}

impl Seen {
    pub fn parse(side: Side, frame: &[u8]) -> Seen {
        let eth = EthernetFrame::new_checked(frame).expect("ethernet");
        let ip = Ipv4Packet::new_checked(eth.payload()).expect("ipv4");
        assert!(ip.verify_checksum(), "IPv4 checksum");
        let tcp = TcpSegment::new_checked(ip.payload()).expect("tcp");
        assert!(
            tcp.verify_checksum(ip.src(), ip.dst()),
            "TCP checksum of {:?}",
            tcp.flags()
        );
        Seen {
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
        }
    }

    pub fn is_syn(&self) -> bool {
        self.flags.contains(TcpFlags::SYN)
    }
}

/// Options for a hand-built segment.
#[derive(Clone, Copy, Default)]
pub struct Opts {
    pub mss: Option<u16>,
    pub wscale: Option<u8>,
    pub sack_ok: bool,
    pub ts: Option<(u32, u32)>,
}

impl Opts {
    pub fn syn(mss: u16, wscale: u8, ts: u32) -> Opts {
        Opts {
            mss: Some(mss),
            wscale: Some(wscale),
            sack_ok: true,
            ts: Some((ts, 0)),
        }
    }
    pub fn ts(tsval: u32, tsecr: u32) -> Opts {
        Opts {
            ts: Some((tsval, tsecr)),
            ..Opts::default()
        }
    }
}

pub struct Lab {
    pub engine: Engine<Vec<u8>>,
    pub pool: VecPool,
    pub out: Output<Vec<u8>>,
    pub replicas: Arc<ReplicaTable>,
    pub p: ReplicaId,
    pub b: ReplicaId,
    pub now: u64,
    pub signals: Vec<Signal>,
}

pub fn config() -> EngineConfig {
    EngineConfig {
        own_addrs: vec![OUTSIDE, INSIDE],
        max_flows: 64,
        ..EngineConfig::default()
    }
}

impl Lab {
    pub fn new() -> Lab {
        Lab::with(config())
    }

    pub fn with(mut cfg: EngineConfig) -> Lab {
        let replicas = Arc::new(ReplicaTable::new(8));
        let p = replicas.add(PRIMARY).expect("room");
        let b = replicas.add(BACKUP).expect("room");
        replicas.set_mac(p, PRIMARY_MAC);
        replicas.set_mac(b, BACKUP_MAC);
        cfg.services = vec![Service {
            vip: VIP,
            port: ServicePort::Port(PORT),
            replicas: vec![p, b],
            copies: 2,
            ordered: false,
            forward: false,
            ack_lag_ns: None,
            output_lag_ns: None,
        }];
        Lab {
            engine: Engine::new(cfg, replicas.clone()),
            pool: VecPool::default(),
            out: Output::with_capacity(1024, 64, 64),
            replicas,
            p,
            b,
            now: 1_000 * MS,
            signals: Vec::new(),
        }
    }

    pub fn frame(
        src_mac: MacAddr,
        dst_mac: MacAddr,
        src: (Ipv4Addr, u16),
        dst: (Ipv4Addr, u16),
        seq: u32,
        ack: u32,
        flags: TcpFlags,
        window: u16,
        o: Opts,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut w = OptionWriter::new();
        if let Some(m) = o.mss {
            w.mss(m);
        }
        if o.sack_ok {
            w.sack_permitted();
        }
        if let Some((v, e)) = o.ts {
            w.timestamps(v, e);
        }
        if let Some(s) = o.wscale {
            w.window_scale(s);
        }
        let mut buf = vec![0u8; 1600];
        let n = build::tcp(
            &mut buf,
            &TcpBuild {
                src_mac,
                dst_mac,
                vlan_tci: None,
                src_ip: src.0,
                dst_ip: dst.0,
                src_port: src.1,
                dst_port: dst.1,
                seq,
                ack,
                flags,
                window,
                ttl: 64,
                options: w.as_bytes(),
                payload,
            },
        )
        .expect("build");
        buf.truncate(n);
        buf
    }

    fn drain(&mut self) -> Vec<Seen> {
        self.signals.append(&mut self.out.signals);
        self.out.to_control.clear();
        self.out
            .tx
            .drain(..)
            .map(|t| Seen::parse(t.side, &t.buf))
            .collect()
    }

    /// Feeds a raw frame, as a burst of one through the entry point the workers use.
    pub fn feed(&mut self, side: Side, frame: Vec<u8>) -> Vec<Seen> {
        let mut burst = vec![frame];
        self.engine
            .process_burst(side, self.now, &mut burst, &mut self.pool, &mut self.out);
        self.drain()
    }

    /// A segment from the client.
    pub fn client(
        &mut self,
        seq: u32,
        ack: u32,
        flags: TcpFlags,
        window: u16,
        o: Opts,
        payload: &[u8],
    ) -> Vec<Seen> {
        let f = Lab::frame(
            CLIENT_MAC,
            MacAddr([2, 0, 0, 0, 0, 1]),
            (CLIENT, CPORT),
            (VIP, PORT),
            seq,
            ack,
            flags,
            window,
            o,
            payload,
        );
        self.feed(Side::Outside, f)
    }

    /// A segment from a replica.
    pub fn replica(
        &mut self,
        r: R,
        seq: u32,
        ack: u32,
        flags: TcpFlags,
        window: u16,
        o: Opts,
        payload: &[u8],
    ) -> Vec<Seen> {
        let (mac, ip) = match r {
            R::P => (PRIMARY_MAC, PRIMARY),
            R::B => (BACKUP_MAC, BACKUP),
        };
        let f = Lab::frame(
            mac,
            MacAddr([2, 0, 0, 0, 0, 2]),
            (ip, PORT),
            (CLIENT, CPORT),
            seq,
            ack,
            flags,
            window,
            o,
            payload,
        );
        self.feed(Side::Inside, f)
    }

    /// Runs timers.
    pub fn poll(&mut self) -> Vec<Seen> {
        self.engine.poll(self.now, &mut self.pool, &mut self.out);
        self.drain()
    }

    pub fn advance(&mut self, ns: u64) {
        self.now += ns;
    }

    pub fn kill(&mut self, r: R) {
        let id = match r {
            R::P => self.p,
            R::B => self.b,
        };
        self.replicas.set_health(id, tandem_engine::Health::Down);
    }
}

/// The segments of `out` sent to `dst`.
pub fn to(out: &[Seen], dst: Ipv4Addr) -> Vec<Seen> {
    out.iter().filter(|s| s.dst == dst).cloned().collect()
}

/// The single segment of `out` sent to `dst`.
pub fn one(out: &[Seen], dst: Ipv4Addr) -> Seen {
    let v = to(out, dst);
    assert_eq!(v.len(), 1, "expected one segment to {dst}, got {v:#?}");
    v.into_iter().next().expect("one")
}

/// A handshake with the given ISNs and options; returns the SYN-ACK the client saw.
pub struct Hs {
    pub cisn: u32,
    pub pisn: u32,
    pub bisn: u32,
    pub copts: Opts,
    pub popts: Opts,
    pub bopts: Opts,
    pub pwin: u16,
    pub bwin: u16,
}

impl Default for Hs {
    fn default() -> Hs {
        Hs {
            cisn: 1000,
            pisn: 50_000,
            bisn: 900_000,
            copts: Opts::syn(1460, 7, 100),
            popts: Opts::syn(1460, 7, 5000),
            bopts: Opts::syn(1460, 7, 80_000),
            pwin: 65535,
            bwin: 65535,
        }
    }
}

impl Lab {
    /// Client SYN, both SYN-ACKs (primary first), client ACK. Returns the SYN-ACK the
    /// client saw.
    pub fn handshake(&mut self, hs: &Hs) -> Seen {
        let out = self.client(hs.cisn, 0, S, 64240, hs.copts, b"");
        assert_eq!(to(&out, PRIMARY).len(), 1, "SYN to the primary");
        assert_eq!(to(&out, BACKUP).len(), 1, "SYN to the backup");
        let out = self.replica(
            R::P,
            hs.pisn,
            hs.cisn.wrapping_add(1),
            S | A,
            hs.pwin,
            hs.popts,
            b"",
        );
        assert!(
            to(&out, CLIENT).is_empty(),
            "primary SYN-ACK waits for the backup's"
        );
        let out = self.replica(
            R::B,
            hs.bisn,
            hs.cisn.wrapping_add(1),
            S | A,
            hs.bwin,
            hs.bopts,
            b"",
        );
        let synack = one(&out, CLIENT);
        assert!(synack.is_syn());
        let cts = hs
            .copts
            .ts
            .map(|(v, _)| (v + 1, synack.ts.map_or(0, |t| t.0)));
        let out = self.client(
            hs.cisn.wrapping_add(1),
            synack.seq.wrapping_add(1),
            A,
            502,
            Opts {
                ts: cts,
                ..Opts::default()
            },
            b"",
        );
        assert_eq!(to(&out, PRIMARY).len(), 1);
        assert_eq!(to(&out, BACKUP).len(), 1);
        synack
    }
}

impl Lab {
    /// A client ACK with raw, already padded options.
    pub fn frame_raw_opts(seq: u32, ack: u32, options: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; 200];
        let n = build::tcp(
            &mut buf,
            &TcpBuild {
                src_mac: CLIENT_MAC,
                dst_mac: MacAddr([2, 0, 0, 0, 0, 1]),
                vlan_tci: None,
                src_ip: CLIENT,
                dst_ip: VIP,
                src_port: CPORT,
                dst_port: PORT,
                seq,
                ack,
                flags: A,
                window: 502,
                ttl: 64,
                options,
                payload: &[],
            },
        )
        .expect("build");
        buf.truncate(n);
        buf
    }
}
