//! Shared by the failover benchmark (`examples/failover_bench.rs`) and its test
//! (`tests/failover_ops.rs`): a worker's engine with N established mirror flows (primary
//! and backup), the control core's failover ([`fail_over`]), the worker's sweep driven
//! as its loop drives it, and a check that every flow really moved.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Instant;

use tandem_engine::{FlowKey, FlowPhase, Output, ReplicaId, ReplicaTable, Service, BURST};
use tandem_runtime::control::fail_over;
use tandem_runtime::msg::Command;
use tandem_testkit::{
    engine_config, mirror, Conn, Opts, Recycler, Rig, Seen, Seg, BACKUP, PORT, S, VIP,
};

/// Bytes of each data segment.
const DATA: u32 = 100;
/// The worker's transmit buffer (`worker.rs`: `TX_CAPACITY`): the sweep stops a pass
/// when it is nearly full, so the bench gives it the same room.
const TX_CAPACITY: usize = BURST * 8;
/// The options of the handshake's SYN and SYN-ACKs (no timestamps).
const SYN_OPTS: Opts = Opts {
    ts: None,
    ..Opts::syn(1460, 7, 0)
};

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
    /// The worker's engine, its pool and output.
    pub rig: Rig<Recycler>,
    flows: Vec<Conn>,
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
        let service = Service {
            // A fixed primary: every flow has the failed replica active.
            ordered: true,
            ..mirror(&[primary, backup])
        };
        let cfg = engine_config(vec![service], capacity.max(n));
        let out = Output::with_capacity(TX_CAPACITY, BURST, 64);
        let mut w = Worker {
            rig: Rig::with(cfg, table.clone(), Recycler::default(), out),
            flows: Vec::with_capacity(n),
            now: 1_000_000_000,
            primary,
            backup,
        };
        for i in first..first + n {
            let g = w.open(Conn::nth(i))?;
            w.flows.push(g);
        }
        Ok(w)
    }

    /// Runs `seg` through the engine (a burst of one); returns what it sent, parsed. The
    /// clock moves 1 µs a frame.
    fn one(&mut self, seg: Seg) -> Vec<Seen> {
        self.now += 1_000;
        let mut f = self.rig.pool.get();
        seg.write(&mut f);
        self.rig.rx_one(seg.side, self.now, f);
        self.drain()
    }

    /// Recycles what the engine sent (the worker's transmit), parsed on the way.
    fn drain(&mut self) -> Vec<Seen> {
        let seen = self
            .rig
            .out
            .tx
            .iter()
            .filter_map(|t| Seen::try_parse(t.side, &t.buf).ok())
            .collect();
        self.rig.recycle();
        seen
    }

    /// The handshake and one exchange of data each way.
    fn open(&mut self, mut g: Conn) -> Result<Conn, String> {
        let data = [0x5au8; DATA as usize];
        self.one(Seg {
            seq: g.c_nxt,
            flags: S,
            opts: SYN_OPTS,
            ..g.seg(Seg::CLIENT)
        });
        g.c_nxt = g.c_nxt.wrapping_add(1);
        self.one(Seg {
            seq: g.p_nxt,
            ack: g.c_nxt,
            opts: SYN_OPTS,
            ..g.seg(Seg::PRIMARY_SYNACK)
        });
        let out = self.one(Seg {
            seq: g.b_nxt,
            ack: g.c_nxt,
            opts: SYN_OPTS,
            ..g.seg(Seg::BACKUP_SYNACK)
        });
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
        self.one(Seg {
            seq: g.c_nxt,
            ack: g.p_nxt,
            ..g.seg(Seg::CLIENT)
        });
        // Data each way; the client acks the primary's (the backup's copy was held).
        self.one(Seg {
            seq: g.c_nxt,
            ack: g.p_nxt,
            payload: &data,
            ..g.seg(Seg::CLIENT)
        });
        g.c_nxt = g.c_nxt.wrapping_add(DATA);
        self.one(Seg {
            seq: g.p_nxt,
            ack: g.c_nxt,
            payload: &data,
            ..g.seg(Seg::PRIMARY)
        });
        self.one(Seg {
            seq: g.b_nxt,
            ack: g.c_nxt,
            payload: &data,
            ..g.seg(Seg::BACKUP)
        });
        g.p_nxt = g.p_nxt.wrapping_add(DATA);
        g.b_nxt = g.b_nxt.wrapping_add(DATA);
        self.one(Seg {
            seq: g.c_nxt,
            ack: g.p_nxt,
            ..g.seg(Seg::CLIENT)
        });
        // The worker's loop polls between bursts: handshake timers, background sweep.
        self.rig.poll(self.now);
        self.drain();
        Ok(g)
    }

    fn key(g: &Conn) -> FlowKey {
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
                self.rig
                    .engine
                    .flows()
                    .find_key(&Self::key(g))
                    .is_some_and(|i| {
                        let f = self.rig.engine.flows().get(i);
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
        let mut passes = Vec::with_capacity(self.rig.engine.flows().capacity() / 64 + 16);
        let t0 = Instant::now();
        if cmd == Command::FailoverSweep {
            self.rig.engine.request_failover_sweep();
        }
        while self.rig.engine.failover_sweep_pending() {
            self.now += 1_000;
            let p0 = Instant::now();
            self.rig.poll(self.now);
            let ns = p0.elapsed().as_nanos() as u64;
            s.passes += 1;
            s.poll_ns += ns;
            s.max_pass_ns = s.max_pass_ns.max(ns);
            passes.push(ns);
            s.tx += self.rig.out.tx.len() as u64;
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
        let data = [0x5au8; DATA as usize];
        for k in 0..self.flows.len() {
            let mut g = self.flows[k];
            let out = self.one(Seg {
                seq: g.c_nxt,
                ack: g.p_nxt,
                payload: &data,
                ..g.seg(Seg::CLIENT)
            });
            let want = (BACKUP, g.c_nxt, g.b_nxt, DATA as usize);
            match out.as_slice() {
                [x] if (x.dst, x.seq, x.ack, x.payload.len()) == want => {}
                _ => {
                    return Err(format!(
                        "{}:{}: client data gave {out:?}, not one segment to the backup \
                         seq {} ack {}",
                        g.client, g.port, g.c_nxt, g.b_nxt
                    ))
                }
            }
            g.c_nxt = g.c_nxt.wrapping_add(DATA);
            let out = self.one(Seg {
                seq: g.b_nxt,
                ack: g.c_nxt,
                payload: &data,
                ..g.seg(Seg::BACKUP)
            });
            let want = (g.client, g.p_nxt, g.c_nxt, DATA as usize);
            match out.as_slice() {
                [x] if (x.dst, x.seq, x.ack, x.payload.len()) == want => {}
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
        let t = self.rig.engine.flows();
        (t.memory_bytes(), t.capacity())
    }
}
