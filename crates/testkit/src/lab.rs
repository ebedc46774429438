//! The bench of the engine's rules tests: the lab's service (VIP:PORT mirrored to the
//! primary and the backup) on a [`Rig`], a clock, and what the engine signalled.
//! Segments go in as [`Seg`]s, come out as [`Seen`]s:
//!
//! ```
//! use tandem_testkit::*;
//!
//! let mut lab = Lab::new();
//! let hs = Hs::default();
//! lab.handshake(&hs);
//! let (c1, p1) = (hs.cisn + 1, hs.pisn + 1);
//! let out = lab.send(Seg { seq: p1, ack: c1, payload: b"hello", ..Seg::PRIMARY });
//! assert_eq!(one(&out, CLIENT).payload, b"hello");
//! ```

use std::net::Ipv4Addr;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use tandem_engine::{EngineConfig, FlowPhase, Health, ReplicaId, ReplicaTable, Side, Signal};
use tandem_wire::MacAddr;

use crate::addr::*;
use crate::fixture::{engine_config, lab_replicas, mirror};
use crate::rig::Rig;
use crate::seg::{Opts, Seen, Seg};
use crate::MS;

/// Which of the lab's replicas.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum R {
    /// The primary.
    P,
    /// The backup.
    B,
}

impl Seg<'static> {
    /// The template of replica `r`'s segments: [`Seg::PRIMARY`] or [`Seg::BACKUP`].
    pub const fn replica(r: R) -> Seg<'static> {
        match r {
            R::P => Seg::PRIMARY,
            R::B => Seg::BACKUP,
        }
    }

    /// A SYN from the `i`th spoofed source of the lab's range (198.18.16.0 on), no
    /// options: a SYN flood's.
    pub fn spoofed_syn(i: u32) -> Seg<'static> {
        Seg {
            src_mac: MacAddr([2, 0, 0, 0, 0, 0x99]),
            src: Ipv4Addr::from(0xc612_1000 + i),
            sport: 1024 + (i % 60_000) as u16,
            seq: i.wrapping_mul(7919),
            window: 1024,
            opts: Opts::NONE,
            ..Seg::CLIENT_SYN
        }
    }
}

/// The lab's engine configuration before [`Lab::with`] adds the lab's service: the
/// appliance's addresses, room for 64 flows.
pub fn config() -> EngineConfig {
    engine_config(Vec::new(), 64)
}

/// The lab: the rig (reached through it: `lab.engine`, `lab.out`), the replica table, the
/// clock, and the signals the engine raised so far.
pub struct Lab {
    /// The engine, its pool and output.
    pub rig: Rig,
    /// The replica table the engine reads.
    pub replicas: Arc<ReplicaTable>,
    /// The primary's id.
    pub p: ReplicaId,
    /// The backup's id.
    pub b: ReplicaId,
    /// The clock, in nanoseconds.
    pub now: u64,
    /// Every signal the engine raised.
    pub signals: Vec<Signal>,
}

// A lab is a rig with hosts around it: tests reach the engine as `lab.engine`.
impl Deref for Lab {
    type Target = Rig;
    fn deref(&self) -> &Rig {
        &self.rig
    }
}

impl DerefMut for Lab {
    fn deref_mut(&mut self) -> &mut Rig {
        &mut self.rig
    }
}

impl Default for Lab {
    fn default() -> Lab {
        Lab::new()
    }
}

impl Lab {
    /// The lab with [`config`].
    pub fn new() -> Lab {
        Lab::with(config())
    }

    /// The lab with `cfg`, its services replaced by the lab's: VIP:PORT mirrored to the
    /// primary and the backup.
    pub fn with(mut cfg: EngineConfig) -> Lab {
        let (replicas, p, b) = lab_replicas();
        cfg.services = vec![mirror(&[p, b])];
        Lab {
            rig: Rig::new(cfg, replicas.clone()),
            replicas,
            p,
            b,
            now: 1_000 * MS,
            signals: Vec::new(),
        }
    }

    /// The lab whose service trusts its replicas: no verified standbys (DESIGN §3.12),
    /// as a profile with `verify: false`.
    pub fn trusting() -> Lab {
        let mut lab = Lab::new();
        let (p, b) = (lab.p, lab.b);
        let cfg = tandem_engine::EngineConfig {
            services: vec![tandem_engine::Service {
                verify: false,
                ..mirror(&[p, b])
            }],
            ..config()
        };
        lab.rig = Rig::new(cfg, lab.replicas.clone());
        lab
    }

    /// The lab's service in reconnect mode (DESIGN §2): each flow on the primary alone,
    /// its client bytes logged and replayed to the backup when the primary dies.
    pub fn reconnecting() -> Lab {
        let mut lab = Lab::new();
        let (p, b) = (lab.p, lab.b);
        let cfg = tandem_engine::EngineConfig {
            services: vec![crate::fixture::reconnect(&[p, b])],
            replay_bytes_total: 1 << 20,
            ..config()
        };
        lab.rig = Rig::new(cfg, lab.replicas.clone());
        lab
    }

    /// The lab's service in reconnect mode with `replay: http1`: a replay starts at the
    /// oldest request not fully answered; answers are compared without `Date` and
    /// `Server` lines.
    pub fn reconnecting_http1() -> Lab {
        let mut lab = Lab::new();
        let (p, b) = (lab.p, lab.b);
        let cfg = tandem_engine::EngineConfig {
            services: vec![crate::fixture::reconnect_http1(&[p, b])],
            replay_bytes_total: 1 << 20,
            ..config()
        };
        lab.rig = Rig::new(cfg, lab.replicas.clone());
        lab
    }

    /// Takes what the engine sent, keeping its signals.
    fn drain(&mut self) -> Vec<Seen> {
        self.signals.append(&mut self.rig.out.signals);
        self.rig.seen()
    }

    /// Sends `seg` into the appliance on its side; returns what the engine sent.
    pub fn send(&mut self, seg: Seg) -> Vec<Seen> {
        self.feed(seg.side, seg.frame())
    }

    /// Feeds a raw frame on `side`, as a burst of one; returns what the engine sent.
    pub fn feed(&mut self, side: Side, frame: Vec<u8>) -> Vec<Seen> {
        self.rig.rx_one(side, self.now, frame);
        self.drain()
    }

    /// Runs the timers; returns what the engine sent.
    pub fn poll(&mut self) -> Vec<Seen> {
        self.rig.poll(self.now);
        self.drain()
    }

    /// Moves the clock on.
    pub fn advance(&mut self, ns: u64) {
        self.now += ns;
    }

    /// Marks replica `r` down, as the control core does.
    pub fn kill(&mut self, r: R) {
        let id = match r {
            R::P => self.p,
            R::B => self.b,
        };
        self.replicas.set_health(id, Health::Down);
    }

    /// The phase of the lab's one flow; panics unless there is exactly one.
    pub fn phase(&self) -> FlowPhase {
        let mut list = Vec::with_capacity(4);
        self.engine
            .list_flows(0, 64, self.now, |_| true, 4, &mut list);
        assert_eq!(list.len(), 1, "one flow");
        list[0].phase
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

/// A handshake's ISNs, options and windows.
pub struct Hs {
    /// The client's ISN.
    pub cisn: u32,
    /// The primary's ISN.
    pub pisn: u32,
    /// The backup's ISN.
    pub bisn: u32,
    /// The client's SYN options.
    pub copts: Opts,
    /// The primary's SYN-ACK options.
    pub popts: Opts,
    /// The backup's SYN-ACK options.
    pub bopts: Opts,
    /// The primary's SYN-ACK window.
    pub pwin: u16,
    /// The backup's SYN-ACK window.
    pub bwin: u16,
}

impl Default for Hs {
    /// The templates' handshake: [`Seg::CLIENT_SYN`], [`Seg::PRIMARY_SYNACK`],
    /// [`Seg::BACKUP_SYNACK`], with ISNs 1000, 50 000 and 900 000.
    fn default() -> Hs {
        Hs {
            cisn: 1000,
            pisn: 50_000,
            bisn: 900_000,
            copts: Seg::CLIENT_SYN.opts,
            popts: Seg::PRIMARY_SYNACK.opts,
            bopts: Seg::BACKUP_SYNACK.opts,
            pwin: Seg::PRIMARY_SYNACK.window,
            bwin: Seg::BACKUP_SYNACK.window,
        }
    }
}

impl Lab {
    /// Client SYN, both SYN-ACKs (primary first), client ACK. Returns the SYN-ACK the
    /// client saw.
    pub fn handshake(&mut self, hs: &Hs) -> Seen {
        let c1 = hs.cisn.wrapping_add(1);
        let out = self.send(Seg {
            seq: hs.cisn,
            opts: hs.copts,
            ..Seg::CLIENT_SYN
        });
        assert_eq!(to(&out, PRIMARY).len(), 1, "SYN to the primary");
        assert_eq!(to(&out, BACKUP).len(), 1, "SYN to the backup");
        let out = self.send(Seg {
            seq: hs.pisn,
            ack: c1,
            window: hs.pwin,
            opts: hs.popts,
            ..Seg::PRIMARY_SYNACK
        });
        assert!(
            to(&out, CLIENT).is_empty(),
            "primary SYN-ACK waits for the backup's"
        );
        let out = self.send(Seg {
            seq: hs.bisn,
            ack: c1,
            window: hs.bwin,
            opts: hs.bopts,
            ..Seg::BACKUP_SYNACK
        });
        let synack = one(&out, CLIENT);
        assert!(synack.is_syn());
        let cts = hs
            .copts
            .ts
            .map(|(v, _)| (v + 1, synack.ts.map_or(0, |t| t.0)));
        let out = self.send(Seg {
            seq: c1,
            ack: synack.seq.wrapping_add(1),
            opts: Opts {
                ts: cts,
                ..Opts::NONE
            },
            ..Seg::CLIENT
        });
        assert_eq!(to(&out, PRIMARY).len(), 1);
        assert_eq!(to(&out, BACKUP).len(), 1);
        synack
    }
}
