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
    /// The replica that adopted the flow (forward mode) or is its active (mirror mode):
    /// primary (false) or backup (true).
    on_backup: bool,
    /// Mirror mode: rounds so far; on odd ones the standby answers before the active, so
    /// that both of its paths (checked behind the active, held ahead of it) are counted.
    round: u32,
    /// Mirror mode: the last burst that holds one of its frames.
    burst: u64,
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
    /// Bursts prepared so far.
    bursts: u64,
}

impl Bench {
    /// `n` established flows (handshakes run through the engine).
    pub fn new(n: usize, seed: u64) -> Bench {
        Bench::build(n, seed, false, false)
    }

    /// As [`Bench::new`], the service giving its flows new standbys (mirror mode's
    /// `replay`, the profile's default): every client byte is logged.
    #[allow(dead_code)] // examples/fastpath_count.rs only
    pub fn new_logging(n: usize, seed: u64) -> Bench {
        Bench::build(n, seed, false, true)
    }

    /// `n` forward-mode flows (one copy each, spread over primary and backup), each
    /// adopted by a client data segment: no handshake, as from a stateless generator.
    pub fn new_forward(n: usize, seed: u64) -> Bench {
        Bench::build(n, seed, true, false)
    }

    fn build(n: usize, seed: u64, forward: bool, logging: bool) -> Bench {
        let (replicas, p, b) = lab_replicas();
        let service = if forward {
            tandem_testkit::forward(&[p, b])
        } else if logging {
            tandem_engine::Service {
                reprotect: Some(tandem_engine::ReplayConfig::default()),
                ..mirror(&[p, b])
            }
        } else {
            mirror(&[p, b])
        };
        let cfg = EngineConfig {
            hold_segments: 1 << 16,
            // Both SYN-ACKs come within it: every mirrored flow has two live legs, so the
            // standby's path (its output checked, held, released) is counted too.
            synack_wait_ns: 2_000_000,
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
            bursts: 0,
        };
        for i in 0..n {
            let c = Conn::nth(i);
            if forward {
                let on_backup = bench.adopt(c);
                bench.flows.push(FlowGen {
                    c,
                    step: 0,
                    on_backup,
                    round: 0,
                    burst: 0,
                });
                continue;
            }
            let on_backup = bench.handshake(c);
            if i % 1024 == 1023 {
                // Past the SYN-ACK wait: the handshakes waiting on it leave its queue
                // (bounded, as against a flood).
                bench.now += 3_000_000;
                bench.rig.poll(bench.now);
                bench.rig.recycle();
            }
            let c = Conn {
                c_nxt: c.c_nxt + 1,
                p_nxt: c.p_nxt + 1,
                b_nxt: c.b_nxt.wrapping_add(1),
                ..c
            };
            bench.flows.push(FlowGen {
                c,
                step: 0,
                on_backup,
                round: 0,
                burst: 0,
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

    /// Runs the handshake (both replicas answer within `synack_wait`); returns whether the
    /// engine made the backup the active (its ISN is the one the client sees).
    fn handshake(&mut self, c: Conn) -> bool {
        self.one(Seg {
            seq: c.c_nxt,
            flags: S,
            opts: SYN_OPTS,
            ..c.seg(Seg::CLIENT)
        });
        let mut client_isn = None;
        for (isn, template) in [
            (c.p_nxt, Seg::PRIMARY_SYNACK),
            (c.b_nxt, Seg::BACKUP_SYNACK),
        ] {
            let f = self.frame(Seg {
                seq: isn,
                ack: c.c_nxt + 1,
                opts: SYN_OPTS,
                ..c.seg(template)
            });
            self.rig.rx_one(Side::Inside, self.now, f);
            // The SYN-ACK the client gets: its sequence number is the active's ISN.
            for t in self.rig.out.tx.iter().filter(|t| t.side == Side::Outside) {
                client_isn = t
                    .buf
                    .get(38..42)
                    .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
            }
            self.rig.recycle();
        }
        let on_backup = client_isn == Some(c.b_nxt);
        self.one(Seg {
            seq: c.c_nxt + 1,
            ack: if on_backup { c.b_nxt } else { c.p_nxt }.wrapping_add(1),
            ..c.seg(Seg::CLIENT)
        });
        on_backup
    }

    fn next_rand(&mut self) -> u64 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Builds the next burst: 32 frames for random flows, each the next step of its round
    /// (client data, the active's and the standby's answers, the standby's first every
    /// other round, client ack), split by receiving port.
    pub fn prepare_burst(&mut self) {
        let payload = [0x5au8; PAYLOAD];
        self.bursts += 1;
        for _ in 0..BURST {
            let mut i = (self.next_rand() % self.flows.len() as u64) as usize;
            // Mirror mode: one frame per flow and burst. The engine takes a burst's
            // outside frames before its inside ones, so a client's ack could otherwise
            // pass the answer it acknowledges and be dropped as out of window.
            while !self.forward && self.flows.len() > BURST && self.flows[i].burst == self.bursts {
                i = (self.next_rand() % self.flows.len() as u64) as usize;
            }
            self.flows[i].burst = self.bursts;
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
                // The active's and the standby's sequence numbers and templates.
                let (a_nxt, s_nxt, a_tpl, s_tpl) = if g.on_backup {
                    (g.c.b_nxt, g.c.p_nxt, Seg::BACKUP, Seg::PRIMARY)
                } else {
                    (g.c.p_nxt, g.c.b_nxt, Seg::PRIMARY, Seg::BACKUP)
                };
                let standby_first = g.round % 2 == 1;
                let replica = |active: bool| {
                    let (seq, template) = if active {
                        (a_nxt, a_tpl)
                    } else {
                        (s_nxt, s_tpl)
                    };
                    Seg {
                        seq,
                        ack: g.c.c_nxt + PAYLOAD as u32,
                        payload: &payload,
                        ..g.c.seg(template)
                    }
                };
                match g.step {
                    0 => Seg {
                        seq: g.c.c_nxt,
                        ack: a_nxt,
                        payload: &payload,
                        ..g.c.seg(Seg::CLIENT)
                    },
                    1 => replica(!standby_first),
                    2 => replica(standby_first),
                    _ => Seg {
                        seq: g.c.c_nxt + PAYLOAD as u32,
                        ack: a_nxt.wrapping_add(PAYLOAD as u32),
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
                g.round += 1;
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
