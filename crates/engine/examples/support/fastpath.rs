//! Shared by the fast-path benchmark and the callgrind driver: N established flows and a
//! generator of 64-byte frames that keeps every flow's sequence numbers consistent.

#![allow(dead_code)]

use tandem_engine::{EngineConfig, Output, Side};
use tandem_testkit::{
    engine_config, lab_replicas, mirror, Conn, Opts, Recycler, Rig, Seg, BACKUP, S,
};

/// Frames per burst.
pub const BURST: usize = 32;
/// 64-byte frames (60 without the FCS): 14 + 20 + 20 + 6 bytes of payload.
const PAYLOAD: usize = 6;
/// The options of the handshake's SYN and SYN-ACKs (data segments have none).
const SYN_OPTS: Opts = Opts::syn(1460, 7, 1);

/// A flow of the bench: its connection, and where it is in its round.
#[derive(Clone, Copy)]
struct FlowGen {
    c: Conn,
    step: u8,
    /// Forward mode: the replica that adopted the flow (primary: false, backup: true).
    on_backup: bool,
}

/// N established flows and the frames that drive them.
pub struct Bench {
    /// The engine under test, its pool and output.
    pub rig: Rig<Recycler>,
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
        let (replicas, p, b) = lab_replicas();
        let service = if forward {
            tandem_testkit::forward(&[p, b])
        } else {
            mirror(&[p, b])
        };
        let cfg = EngineConfig {
            hold_segments: 1 << 16,
            synack_wait_ns: 0,
            ..engine_config(vec![service], n)
        };
        let out = Output::with_capacity(BURST * 4, BURST, BURST);
        let mut bench = Bench {
            rig: Rig::with(cfg, replicas, Recycler::default(), out),
            flows: Vec::with_capacity(n),
            rng: seed | 1,
            outside: Vec::with_capacity(BURST),
            inside: Vec::with_capacity(BURST),
            packets: 0,
            now: 1_000_000_000,
            forward,
        };
        for i in 0..n {
            let c = Conn::nth(i);
            if forward {
                let on_backup = bench.adopt(c);
                bench.flows.push(FlowGen {
                    c,
                    step: 0,
                    on_backup,
                });
                continue;
            }
            bench.handshake(c);
            let c = Conn {
                c_nxt: c.c_nxt + 1,
                p_nxt: c.p_nxt + 1,
                b_nxt: c.b_nxt.wrapping_add(1),
                ..c
            };
            bench.flows.push(FlowGen {
                c,
                step: 0,
                on_backup: false,
            });
        }
        bench
    }

    /// `seg` as a frame in a recycled buffer.
    fn frame(&mut self, seg: Seg) -> Vec<u8> {
        let mut v = self.rig.pool.get();
        seg.write(&mut v);
        v
    }

    /// Runs `seg` through the engine (a burst of one) and recycles what it sent.
    fn one(&mut self, seg: Seg) {
        let f = self.frame(seg);
        self.rig.rx_one(seg.side, self.now, f);
        self.rig.recycle();
    }

    /// Forward mode: a client data segment adopts the flow; returns whether the backup
    /// took it.
    fn adopt(&mut self, c: Conn) -> bool {
        let f = self.frame(Seg {
            seq: c.c_nxt,
            ack: c.p_nxt,
            payload: &[0x5a; PAYLOAD],
            ..c.seg(Seg::CLIENT)
        });
        self.rig.rx_one(Side::Outside, self.now, f);
        let to = self.rig.out.tx.first().map(|t| t.buf[30..34].to_vec());
        self.rig.recycle();
        to.as_deref() == Some(&BACKUP.octets()[..])
    }

    fn handshake(&mut self, c: Conn) {
        self.one(Seg {
            seq: c.c_nxt,
            flags: S,
            opts: SYN_OPTS,
            ..c.seg(Seg::CLIENT)
        });
        for (isn, template) in [
            (c.p_nxt, Seg::PRIMARY_SYNACK),
            (c.b_nxt, Seg::BACKUP_SYNACK),
        ] {
            self.one(Seg {
                seq: isn,
                ack: c.c_nxt + 1,
                opts: SYN_OPTS,
                ..c.seg(template)
            });
        }
        self.one(Seg {
            seq: c.c_nxt + 1,
            ack: c.p_nxt + 1,
            ..c.seg(Seg::CLIENT)
        });
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
        let payload = [0x5au8; PAYLOAD];
        for _ in 0..BURST {
            let i = (self.next_rand() % self.flows.len() as u64) as usize;
            let g = self.flows[i];
            let seg = if self.forward {
                // Client data, then the replica's answer, alternately.
                if g.step == 0 {
                    Seg {
                        seq: g.c.c_nxt,
                        ack: g.c.p_nxt,
                        payload: &payload,
                        ..g.c.seg(Seg::CLIENT)
                    }
                } else {
                    let template = if g.on_backup {
                        Seg::BACKUP
                    } else {
                        Seg::PRIMARY
                    };
                    Seg {
                        seq: g.c.p_nxt,
                        ack: g.c.c_nxt,
                        payload: &payload,
                        ..g.c.seg(template)
                    }
                }
            } else {
                match g.step {
                    0 => Seg {
                        seq: g.c.c_nxt,
                        ack: g.c.p_nxt,
                        payload: &payload,
                        ..g.c.seg(Seg::CLIENT)
                    },
                    1 => Seg {
                        seq: g.c.p_nxt,
                        ack: g.c.c_nxt + PAYLOAD as u32,
                        payload: &payload,
                        ..g.c.seg(Seg::PRIMARY)
                    },
                    2 => Seg {
                        seq: g.c.b_nxt,
                        ack: g.c.c_nxt + PAYLOAD as u32,
                        payload: &payload,
                        ..g.c.seg(Seg::BACKUP)
                    },
                    _ => Seg {
                        seq: g.c.c_nxt + PAYLOAD as u32,
                        ack: g.c.p_nxt + PAYLOAD as u32,
                        ..g.c.seg(Seg::CLIENT)
                    },
                }
            };
            let f = self.frame(seg);
            match seg.side {
                Side::Outside => self.outside.push(f),
                Side::Inside => self.inside.push(f),
            }
            let g = &mut self.flows[i];
            if self.forward {
                g.step ^= 1;
                g.c.c_nxt = g.c.c_nxt.wrapping_add(PAYLOAD as u32);
                continue;
            }
            g.step = (g.step + 1) % 4;
            if g.step == 0 {
                g.c.c_nxt += PAYLOAD as u32;
                g.c.p_nxt += PAYLOAD as u32;
                g.c.b_nxt = g.c.b_nxt.wrapping_add(PAYLOAD as u32);
            }
        }
    }

    /// Runs the prepared burst through the engine (the timed part; not inlined, so that
    /// callgrind can count it alone with `--toggle-collect`).
    #[inline(never)]
    pub fn run_burst(&mut self) {
        self.packets += (self.outside.len() + self.inside.len()) as u64;
        self.now += 1_000;
        self.rig.rx(Side::Outside, self.now, &mut self.outside);
        self.rig.rx(Side::Inside, self.now, &mut self.inside);
        self.rig.poll(self.now);
    }

    /// Returns transmitted buffers to the pool.
    pub fn recycle(&mut self) {
        self.rig.recycle();
    }

    /// Bytes held by the flow table.
    pub fn table_bytes(&self) -> usize {
        self.rig.engine.flows().memory_bytes()
    }
}
