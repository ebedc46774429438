//! Shared by the fast-path benchmark and the callgrind driver: N established flows and a
//! generator of 64-byte frames that keeps every flow's sequence numbers consistent.

#![allow(dead_code, clippy::too_many_arguments)]

use std::net::Ipv4Addr;
use std::sync::Arc;

use tandem_engine::{
    BufferPool, Engine, EngineConfig, Output, PacketBuf, ReplicaTable, Service, ServicePort, Side,
};
use tandem_wire::build::{self, OptionWriter, TcpBuild};
use tandem_wire::{MacAddr, TcpFlags};

/// Frames per burst.
pub const BURST: usize = 32;
/// 64-byte frames (60 without the FCS): 14 + 20 + 20 + 6 bytes of payload.
const PAYLOAD: usize = 6;

const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
const PRIMARY: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 11);
const BACKUP: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 12);
const PORT: u16 = 7000;
const MAC_C: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xc1]);
const MAC_P: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x11]);
const MAC_B: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x12]);

/// A mempool stand-in: buffers are recycled, never freed.
#[derive(Default)]
pub struct Recycler {
    free: Vec<Vec<u8>>,
}

impl Recycler {
    fn get(&mut self) -> Vec<u8> {
        self.free.pop().unwrap_or_else(|| Vec::with_capacity(2048))
    }
    fn put(&mut self, mut v: Vec<u8>) {
        v.clear();
        self.free.push(v);
    }
}

impl BufferPool<Vec<u8>> for Recycler {
    fn alloc(&mut self, len: usize) -> Option<Vec<u8>> {
        let mut v = self.get();
        v.resize(len, 0);
        Some(v)
    }
    fn copy(&mut self, src: &Vec<u8>) -> Option<Vec<u8>> {
        let mut v = self.get();
        v.extend_from_slice(src.bytes());
        Some(v)
    }
}

#[derive(Clone, Copy)]
struct FlowGen {
    client: Ipv4Addr,
    port: u16,
    c_nxt: u32,
    p_nxt: u32,
    b_nxt: u32,
    step: u8,
    /// Forward mode: the replica that adopted the flow (primary: false, backup: true).
    on_backup: bool,
}

/// N established flows and the frames that drive them.
pub struct Bench {
    /// The engine under test.
    pub engine: Engine<Vec<u8>>,
    pool: Recycler,
    out: Output<Vec<u8>>,
    flows: Vec<FlowGen>,
    rng: u64,
    outside: Vec<Vec<u8>>,
    inside: Vec<Vec<u8>>,
    /// Frames run through the engine so far.
    pub packets: u64,
    now: u64,
    /// Forward mode: flows adopted from a data segment, rounds of client data and the
    /// replica's answer, NAT only.
    forward: bool,
}

impl Bench {
    /// `n` established flows (handshakes run through the engine).
    pub fn new(n: usize, seed: u64) -> Bench {
        Bench::build(n, seed, false)
    }

    /// `n` forward-mode flows (one copy each, spread over primary and backup), each
    /// adopted by a client data segment: no handshake, as from a stateless generator.
    pub fn new_forward(n: usize, seed: u64) -> Bench {
        Bench::build(n, seed, true)
    }

    fn build(n: usize, seed: u64, forward: bool) -> Bench {
        let replicas = Arc::new(ReplicaTable::new(4));
        let p = replicas.add(PRIMARY).expect("room");
        let b = replicas.add(BACKUP).expect("room");
        replicas.set_mac(p, MAC_P);
        replicas.set_mac(b, MAC_B);
        let cfg = EngineConfig {
            own_addrs: vec![Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 19, 0, 1)],
            services: vec![Service {
                vip: VIP,
                port: ServicePort::Port(PORT),
                replicas: vec![p, b],
                copies: if forward { 1 } else { 2 },
                ordered: false,
                forward,
                ack_lag_ns: None,
                output_lag_ns: None,
            }],
            max_flows: n,
            hold_segments: 1 << 16,
            synack_wait_ns: 0,
            ..EngineConfig::default()
        };
        let mut bench = Bench {
            engine: Engine::new(cfg, replicas),
            pool: Recycler::default(),
            out: Output::with_capacity(BURST * 4, BURST, BURST),
            flows: Vec::with_capacity(n),
            rng: seed | 1,
            outside: Vec::with_capacity(BURST),
            inside: Vec::with_capacity(BURST),
            packets: 0,
            now: 1_000_000_000,
            forward,
        };
        for i in 0..n {
            // Clients spread over 198.18.0.0/15's first /16, ports 1024.. .
            let client = Ipv4Addr::from(
                0xc612_0000u32 | ((i as u32 / 60_000 + 2) << 8) | (i as u32 % 250 + 2),
            );
            let port = 1024 + (i % 60_000) as u16;
            let g = FlowGen {
                client,
                port,
                c_nxt: 1000 + i as u32,
                p_nxt: 50_000 + i as u32,
                b_nxt: 0xffff_ff00u32.wrapping_add(i as u32),
                step: 0,
                on_backup: false,
            };
            if forward {
                let on_backup = bench.adopt(g);
                bench.flows.push(FlowGen { on_backup, ..g });
                continue;
            }
            bench.handshake(g);
            let g = FlowGen {
                c_nxt: g.c_nxt + 1,
                p_nxt: g.p_nxt + 1,
                b_nxt: g.b_nxt.wrapping_add(1),
                ..g
            };
            bench.flows.push(g);
        }
        bench
    }

    fn frame(
        &mut self,
        src: (MacAddr, Ipv4Addr, u16),
        dst: (Ipv4Addr, u16),
        seq: u32,
        ack: u32,
        flags: TcpFlags,
        payload: &[u8],
        ts: Option<u32>,
    ) -> Vec<u8> {
        let mut v = self.pool.get();
        v.resize(128, 0);
        let mut w = OptionWriter::new();
        if let Some(t) = ts {
            w.mss(1460)
                .window_scale(7)
                .sack_permitted()
                .timestamps(t, 0);
        }
        let n = build::tcp(
            &mut v,
            &TcpBuild {
                src_mac: src.0,
                dst_mac: MacAddr([2, 0, 0, 0, 0, 1]),
                vlan_tci: None,
                src_ip: src.1,
                dst_ip: dst.0,
                src_port: src.2,
                dst_port: dst.1,
                seq,
                ack,
                flags,
                window: 1000,
                ttl: 64,
                options: w.as_bytes(),
                payload,
            },
        )
        .expect("frame");
        v.truncate(n);
        v
    }

    fn one(&mut self, side: Side, f: Vec<u8>) {
        self.engine
            .process(side, self.now, f, &mut self.pool, &mut self.out);
        self.recycle();
    }

    /// Forward mode: a client data segment adopts the flow; returns whether the backup
    /// took it.
    fn adopt(&mut self, g: FlowGen) -> bool {
        let f = self.frame(
            (MAC_C, g.client, g.port),
            (VIP, PORT),
            g.c_nxt,
            g.p_nxt,
            TcpFlags::ACK,
            &[0x5a; PAYLOAD],
            None,
        );
        self.engine
            .process(Side::Outside, self.now, f, &mut self.pool, &mut self.out);
        let to = self.out.tx.first().map(|t| t.buf[30..34].to_vec());
        self.recycle();
        to.as_deref() == Some(&BACKUP.octets()[..])
    }

    fn handshake(&mut self, g: FlowGen) {
        let a = TcpFlags::ACK;
        let s = TcpFlags::SYN;
        let f = self.frame(
            (MAC_C, g.client, g.port),
            (VIP, PORT),
            g.c_nxt,
            0,
            s,
            b"",
            Some(1),
        );
        self.one(Side::Outside, f);
        let f = self.frame(
            (MAC_P, PRIMARY, PORT),
            (g.client, g.port),
            g.p_nxt,
            g.c_nxt + 1,
            s | a,
            b"",
            Some(1),
        );
        self.one(Side::Inside, f);
        let f = self.frame(
            (MAC_B, BACKUP, PORT),
            (g.client, g.port),
            g.b_nxt,
            g.c_nxt + 1,
            s | a,
            b"",
            Some(1),
        );
        self.one(Side::Inside, f);
        let f = self.frame(
            (MAC_C, g.client, g.port),
            (VIP, PORT),
            g.c_nxt + 1,
            g.p_nxt + 1,
            a,
            b"",
            None,
        );
        self.one(Side::Outside, f);
    }

    fn next_rand(&mut self) -> u64 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Builds the next burst: 32 frames for random flows, each the next step of its round
    /// (client data, primary data, backup data, client ack), split by receiving port.
    pub fn prepare_burst(&mut self) {
        let a = TcpFlags::ACK;
        let payload = [0x5au8; PAYLOAD];
        for _ in 0..BURST {
            let i = (self.next_rand() % self.flows.len() as u64) as usize;
            let g = self.flows[i];
            if self.forward {
                // Client data, then the replica's answer, alternately.
                let (side, f) = if g.step == 0 {
                    let f = self.frame(
                        (MAC_C, g.client, g.port),
                        (VIP, PORT),
                        g.c_nxt,
                        g.p_nxt,
                        a,
                        &payload,
                        None,
                    );
                    (Side::Outside, f)
                } else {
                    let (mac, ip) = if g.on_backup {
                        (MAC_B, BACKUP)
                    } else {
                        (MAC_P, PRIMARY)
                    };
                    let f = self.frame(
                        (mac, ip, PORT),
                        (g.client, g.port),
                        g.p_nxt,
                        g.c_nxt,
                        a,
                        &payload,
                        None,
                    );
                    (Side::Inside, f)
                };
                let g = &mut self.flows[i];
                g.step ^= 1;
                g.c_nxt = g.c_nxt.wrapping_add(PAYLOAD as u32);
                match side {
                    Side::Outside => self.outside.push(f),
                    Side::Inside => self.inside.push(f),
                }
                continue;
            }
            let (side, f) = match g.step {
                0 => (
                    Side::Outside,
                    self.frame(
                        (MAC_C, g.client, g.port),
                        (VIP, PORT),
                        g.c_nxt,
                        g.p_nxt,
                        a,
                        &payload,
                        None,
                    ),
                ),
                1 => (
                    Side::Inside,
                    self.frame(
                        (MAC_P, PRIMARY, PORT),
                        (g.client, g.port),
                        g.p_nxt,
                        g.c_nxt + PAYLOAD as u32,
                        a,
                        &payload,
                        None,
                    ),
                ),
                2 => (
                    Side::Inside,
                    self.frame(
                        (MAC_B, BACKUP, PORT),
                        (g.client, g.port),
                        g.b_nxt,
                        g.c_nxt + PAYLOAD as u32,
                        a,
                        &payload,
                        None,
                    ),
                ),
                _ => (
                    Side::Outside,
                    self.frame(
                        (MAC_C, g.client, g.port),
                        (VIP, PORT),
                        g.c_nxt + PAYLOAD as u32,
                        g.p_nxt + PAYLOAD as u32,
                        a,
                        b"",
                        None,
                    ),
                ),
            };
            let g = &mut self.flows[i];
            g.step = (g.step + 1) % 4;
            if g.step == 0 {
                g.c_nxt += PAYLOAD as u32;
                g.p_nxt += PAYLOAD as u32;
                g.b_nxt = g.b_nxt.wrapping_add(PAYLOAD as u32);
            }
            match side {
                Side::Outside => self.outside.push(f),
                Side::Inside => self.inside.push(f),
            }
        }
    }

    /// Runs the prepared burst through the engine (the timed part; not inlined, so that
    /// callgrind can count it alone with `--toggle-collect`).
    #[inline(never)]
    pub fn run_burst(&mut self) {
        self.packets += (self.outside.len() + self.inside.len()) as u64;
        self.now += 1_000;
        self.engine.process_burst(
            Side::Outside,
            self.now,
            &mut self.outside,
            &mut self.pool,
            &mut self.out,
        );
        self.engine.process_burst(
            Side::Inside,
            self.now,
            &mut self.inside,
            &mut self.pool,
            &mut self.out,
        );
        self.engine.poll(self.now, &mut self.pool, &mut self.out);
    }

    /// Returns transmitted buffers to the pool.
    pub fn recycle(&mut self) {
        let mut out = std::mem::take(&mut self.out.tx);
        for t in out.drain(..) {
            self.pool.put(t.buf);
        }
        self.out.tx = out;
        self.out.to_control.clear();
        self.out.signals.clear();
    }

    /// Bytes held by the flow table.
    pub fn table_bytes(&self) -> usize {
        self.engine.flows().memory_bytes()
    }
}
