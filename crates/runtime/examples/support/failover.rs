//! Shared by the failover benchmark (`examples/failover_bench.rs`) and its test
//! (`tests/failover_ops.rs`): a worker's engine with N established mirror flows (primary
//! and backup), the control core's failover ([`fail_over`]), the worker's sweep driven
//! as its loop drives it, and a check that every flow really moved.

#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Instant;

use tandem_engine::{
    BufferPool, Engine, EngineConfig, FlowKey, FlowPhase, Output, PacketBuf, ReplicaId,
    ReplicaTable, Service, ServicePort, Side, BURST,
};
use tandem_runtime::control::fail_over;
use tandem_runtime::msg::Command;
use tandem_wire::build::{self, OptionWriter, TcpBuild};
use tandem_wire::{EthernetFrame, Ipv4Packet, MacAddr, TcpFlags, TcpSegment};

const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
pub const PRIMARY: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 11);
pub const BACKUP: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 12);
const PORT: u16 = 7000;
const MAC_C: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xc1]);
const MAC_P: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x11]);
const MAC_B: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x12]);
/// Bytes of each data segment.
const DATA: u32 = 100;
/// The worker's transmit buffer (`worker.rs`: `TX_CAPACITY`): the sweep stops a pass
/// when it is nearly full, so the bench gives it the same room.
const TX_CAPACITY: usize = BURST * 8;

/// A mempool stand-in: buffers are recycled, never freed.
#[derive(Default)]
pub struct Recycler {
    free: Vec<Vec<u8>>,
}

impl Recycler {
    fn get(&mut self) -> Vec<u8> {
        self.free.pop().unwrap_or_else(|| Vec::with_capacity(256))
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

/// The replica table of the lab: primary and backup, both resolved.
pub fn replica_table() -> (Arc<ReplicaTable>, ReplicaId, ReplicaId) {
    let t = Arc::new(ReplicaTable::new(4));
    let p = t.add(PRIMARY).expect("room for the primary");
    let b = t.add(BACKUP).expect("room for the backup");
    t.set_mac(p, MAC_P);
    t.set_mac(b, MAC_B);
    (t, p, b)
}

/// What the replica table holds, slot by slot, as the workers read it.
pub fn snapshot(t: &ReplicaTable) -> Vec<u64> {
    let mut v = vec![u64::from(t.down_generation())];
    for i in 0..t.capacity() {
        let id = ReplicaId(i as u16);
        v.push(t.health(id) as u64);
        v.push(u64::from(t.epoch(id)));
        v.push(u64::from(u32::from(t.addr(id))));
        v.push(t.mac(id).map_or(0, |m| m.to_u64()));
    }
    v
}

/// The control core's failover of `replica` for `workers` workers, as `Control::apply`
/// runs it, the orders collected in `orders` (a worker's command ring in the appliance;
/// the DPDK ring is not part of this measurement). Returns the nanoseconds it took and
/// how many values of the replica table changed.
pub fn control_switch(
    table: &ReplicaTable,
    replica: ReplicaId,
    workers: usize,
    orders: &mut Vec<(usize, Command)>,
) -> (u64, usize) {
    let before = snapshot(table);
    let t0 = Instant::now();
    fail_over(table, replica, workers, |w, cmd| orders.push((w, cmd)));
    let ns = t0.elapsed().as_nanos() as u64;
    let after = snapshot(table);
    let changed = before.iter().zip(&after).filter(|(a, b)| a != b).count();
    (ns, changed)
}

#[derive(Clone, Copy)]
struct FlowGen {
    client: Ipv4Addr,
    port: u16,
    /// Next sequence of the client, the primary, the backup (each in its own space).
    c_nxt: u32,
    p_nxt: u32,
    b_nxt: u32,
}

/// What a worker's sweep took.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sweep {
    /// `poll` calls until the sweep was over.
    pub passes: u64,
    /// Their time together.
    pub poll_ns: u64,
    /// The longest one.
    pub max_pass_ns: u64,
    /// The median one.
    pub median_pass_ns: u64,
    /// From the order's receipt to the end, the draining of the transmit buffer included.
    pub wall_ns: u64,
    /// Frames the sweep sent.
    pub tx: u64,
}

/// One worker: its engine and N established flows.
pub struct Worker {
    pub engine: Engine<Vec<u8>>,
    pool: Recycler,
    out: Output<Vec<u8>>,
    flows: Vec<FlowGen>,
    now: u64,
    primary: ReplicaId,
    backup: ReplicaId,
}

impl Worker {
    /// `n` flows in a table of `capacity` (≥ n), each through the engine's packet path:
    /// the client's SYN, both SYN-ACKs, the client's ACK, then DATA bytes from the client
    /// (to both replicas), DATA from each replica, and the client's ack of them. `first`
    /// numbers the clients (distinct across workers sharing a table).
    pub fn establish(
        table: &Arc<ReplicaTable>,
        primary: ReplicaId,
        backup: ReplicaId,
        n: usize,
        capacity: usize,
        first: usize,
    ) -> Result<Worker, String> {
        let cfg = EngineConfig {
            own_addrs: vec![Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 19, 0, 1)],
            services: vec![Service {
                vip: VIP,
                port: ServicePort::Port(PORT),
                replicas: vec![primary, backup],
                copies: 2,
                // A fixed primary: every flow has the failed replica active.
                ordered: true,
                forward: false,
                ack_lag_ns: None,
                output_lag_ns: None,
            }],
            max_flows: capacity.max(n),
            ..EngineConfig::default()
        };
        let mut w = Worker {
            engine: Engine::new(cfg, table.clone()),
            pool: Recycler::default(),
            out: Output::with_capacity(TX_CAPACITY, BURST, 64),
            flows: Vec::with_capacity(n),
            now: 1_000_000_000,
            primary,
            backup,
        };
        for i in first..first + n {
            // Clients in 198.18.2.0–198.18.255.255, ports 1024.. .
            let g = FlowGen {
                client: Ipv4Addr::from(
                    0xc612_0000u32 | ((i as u32 / 60_000 + 2) << 8) | (i as u32 % 250 + 2),
                ),
                port: 1024 + (i % 60_000) as u16,
                c_nxt: 1000u32.wrapping_add(i as u32),
                p_nxt: 50_000u32.wrapping_add(i as u32),
                // Near the wrap, so that the translation crosses 2^32.
                b_nxt: 0xffff_ff00u32.wrapping_add(i as u32),
            };
            let g = w.open(g)?;
            w.flows.push(g);
        }
        Ok(w)
    }

    #[allow(clippy::too_many_arguments)]
    fn frame(
        &mut self,
        src: (MacAddr, Ipv4Addr, u16),
        dst: (Ipv4Addr, u16),
        seq: u32,
        ack: u32,
        flags: TcpFlags,
        len: u32,
        syn_opts: bool,
    ) -> Vec<u8> {
        let mut v = self.pool.get();
        v.resize(14 + 20 + 40 + DATA as usize, 0);
        let mut w = OptionWriter::new();
        if syn_opts {
            w.mss(1460).window_scale(7).sack_permitted();
        }
        let payload = [0x5au8; DATA as usize];
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
                payload: &payload[..len as usize],
            },
        )
        .expect("the frame fits its buffer");
        v.truncate(n);
        v
    }

    /// Runs one frame through the engine; returns what it sent, parsed. The clock moves
    /// 1 µs a frame.
    fn one(&mut self, side: Side, f: Vec<u8>) -> Vec<Seen> {
        self.now += 1_000;
        self.engine
            .process(side, self.now, f, &mut self.pool, &mut self.out);
        self.drain()
    }

    /// Recycles what the engine sent (the worker's transmit), parsed on the way.
    fn drain(&mut self) -> Vec<Seen> {
        let mut out = std::mem::take(&mut self.out.tx);
        let seen = out.iter().filter_map(|t| Seen::parse(&t.buf)).collect();
        for t in out.drain(..) {
            self.pool.put(t.buf);
        }
        self.out.tx = out;
        self.out.to_control.clear();
        self.out.signals.clear();
        seen
    }

    fn client(&self, g: &FlowGen) -> (MacAddr, Ipv4Addr, u16) {
        (MAC_C, g.client, g.port)
    }

    /// The handshake and one exchange of data each way.
    fn open(&mut self, mut g: FlowGen) -> Result<FlowGen, String> {
        let (a, s) = (TcpFlags::ACK, TcpFlags::SYN);
        let f = self.frame(self.client(&g), (VIP, PORT), g.c_nxt, 0, s, 0, true);
        self.one(Side::Outside, f);
        g.c_nxt = g.c_nxt.wrapping_add(1);
        let dst = (g.client, g.port);
        let f = self.frame(
            (MAC_P, PRIMARY, PORT),
            dst,
            g.p_nxt,
            g.c_nxt,
            s | a,
            0,
            true,
        );
        self.one(Side::Inside, f);
        let f = self.frame((MAC_B, BACKUP, PORT), dst, g.b_nxt, g.c_nxt, s | a, 0, true);
        let out = self.one(Side::Inside, f);
        g.p_nxt = g.p_nxt.wrapping_add(1);
        g.b_nxt = g.b_nxt.wrapping_add(1);
        // The SYN-ACK goes out on the backup's (the last awaited): both legs answered.
        if !out
            .iter()
            .any(|x| x.dst == g.client && x.seq == g.p_nxt.wrapping_sub(1))
        {
            return Err(format!(
                "{}:{}: no SYN-ACK from the primary",
                g.client, g.port
            ));
        }
        let f = self.frame(self.client(&g), (VIP, PORT), g.c_nxt, g.p_nxt, a, 0, false);
        self.one(Side::Outside, f);
        // Data each way; the client acks the primary's (the backup's copy was held).
        let f = self.frame(
            self.client(&g),
            (VIP, PORT),
            g.c_nxt,
            g.p_nxt,
            a,
            DATA,
            false,
        );
        self.one(Side::Outside, f);
        g.c_nxt = g.c_nxt.wrapping_add(DATA);
        let f = self.frame(
            (MAC_P, PRIMARY, PORT),
            dst,
            g.p_nxt,
            g.c_nxt,
            a,
            DATA,
            false,
        );
        self.one(Side::Inside, f);
        let f = self.frame((MAC_B, BACKUP, PORT), dst, g.b_nxt, g.c_nxt, a, DATA, false);
        self.one(Side::Inside, f);
        g.p_nxt = g.p_nxt.wrapping_add(DATA);
        g.b_nxt = g.b_nxt.wrapping_add(DATA);
        let f = self.frame(self.client(&g), (VIP, PORT), g.c_nxt, g.p_nxt, a, 0, false);
        self.one(Side::Outside, f);
        // The worker's loop polls between bursts: handshake timers, background sweep.
        self.engine.poll(self.now, &mut self.pool, &mut self.out);
        self.drain();
        Ok(g)
    }

    fn key(g: &FlowGen) -> FlowKey {
        FlowKey {
            client_ip: u32::from(g.client),
            client_port: g.port,
            vip: u32::from(VIP),
            vip_port: PORT,
        }
    }

    /// How many flows are established with `replica` active (and alive).
    pub fn active_on(&self, replica: ReplicaId) -> usize {
        self.flows
            .iter()
            .filter(|g| {
                self.engine
                    .flows()
                    .find_key(&Self::key(g))
                    .is_some_and(|i| {
                        let f = self.engine.flows().get(i);
                        let l = &f.legs[f.active as usize];
                        f.phase == FlowPhase::Established && l.replica == replica && l.alive
                    })
            })
            .count()
    }

    /// The worker's part: the sweep order taken from its ring, then `poll` once a pass of
    /// its loop (each pass sweeps at most `failover_sweep_batch` flows) until it is over.
    /// `now` moves 1 µs a pass (the worker's loop with nothing received).
    pub fn sweep(&mut self, cmd: Command) -> Sweep {
        let mut s = Sweep::default();
        let mut passes = Vec::with_capacity(self.engine.flows().capacity() / 64 + 16);
        let t0 = Instant::now();
        if cmd == Command::FailoverSweep {
            self.engine.request_failover_sweep();
        }
        while self.engine.failover_sweep_pending() {
            self.now += 1_000;
            let p0 = Instant::now();
            self.engine.poll(self.now, &mut self.pool, &mut self.out);
            let ns = p0.elapsed().as_nanos() as u64;
            s.passes += 1;
            s.poll_ns += ns;
            s.max_pass_ns = s.max_pass_ns.max(ns);
            passes.push(ns);
            s.tx += self.out.tx.len() as u64;
            self.drain();
        }
        s.wall_ns = t0.elapsed().as_nanos() as u64;
        passes.sort_unstable();
        s.median_pass_ns = passes.get(passes.len() / 2).copied().unwrap_or(0);
        s
    }

    /// Checks every flow after the sweep: its active leg is the backup, and a client
    /// segment reaches the backup alone with the ack in the backup's space, and the
    /// backup's answer reaches the client in the visible (former primary's) space.
    pub fn verify_moved(&mut self) -> Result<(), String> {
        let moved = self.active_on(self.backup);
        if moved != self.flows.len() {
            return Err(format!(
                "{moved} of {} flows have the backup active",
                self.flows.len()
            ));
        }
        let a = TcpFlags::ACK;
        for k in 0..self.flows.len() {
            let mut g = self.flows[k];
            let f = self.frame(
                self.client(&g),
                (VIP, PORT),
                g.c_nxt,
                g.p_nxt,
                a,
                DATA,
                false,
            );
            let out = self.one(Side::Outside, f);
            let want = (BACKUP, g.c_nxt, g.b_nxt, DATA as usize);
            match out.as_slice() {
                [x] if (x.dst, x.seq, x.ack, x.len) == want => {}
                _ => {
                    return Err(format!(
                        "{}:{}: client data gave {out:?}, not one segment to the backup \
                         seq {} ack {}",
                        g.client, g.port, g.c_nxt, g.b_nxt
                    ))
                }
            }
            g.c_nxt = g.c_nxt.wrapping_add(DATA);
            let dst = (g.client, g.port);
            let f = self.frame((MAC_B, BACKUP, PORT), dst, g.b_nxt, g.c_nxt, a, DATA, false);
            let out = self.one(Side::Inside, f);
            let want = (g.client, g.p_nxt, g.c_nxt, DATA as usize);
            match out.as_slice() {
                [x] if (x.dst, x.seq, x.ack, x.len) == want => {}
                _ => {
                    return Err(format!(
                        "{}:{}: backup data gave {out:?}, not one segment to the client \
                         seq {} ack {}",
                        g.client, g.port, g.p_nxt, g.c_nxt
                    ))
                }
            }
            g.p_nxt = g.p_nxt.wrapping_add(DATA);
            g.b_nxt = g.b_nxt.wrapping_add(DATA);
            self.flows[k] = g;
        }
        Ok(())
    }

    /// Bytes of the flow table and its capacity.
    pub fn table_bytes(&self) -> (usize, usize) {
        let t = self.engine.flows();
        (t.memory_bytes(), t.capacity())
    }
}

/// A transmitted segment, the fields the checks compare.
#[derive(Debug)]
pub struct Seen {
    pub dst: Ipv4Addr,
    pub seq: u32,
    pub ack: u32,
    pub len: usize,
}

impl Seen {
    fn parse(frame: &[u8]) -> Option<Seen> {
        let eth = EthernetFrame::new_checked(frame).ok()?;
        let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
        let tcp = TcpSegment::new_checked(ip.payload()).ok()?;
        Some(Seen {
            dst: ip.dst(),
            seq: tcp.seq(),
            ack: tcp.ack(),
            len: tcp.payload().len(),
        })
    }
}
