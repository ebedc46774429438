//! Golden tests of the worker loop: the real [`Worker::pass`] on plain memory (frames in
//! receive queues; frames, ring contents, counters and the health horizon out).

use std::cell::Cell;
use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::rc::Rc;
use std::sync::Arc;

use tandem_dpdk::Burst;
use tandem_engine::{EngineConfig, HashKey, Side, VecPool};
use tandem_testkit::addr::{
    BACKUP, CLIENT, INSIDE, INSIDE_MAC as IN_MAC, OUTSIDE, OUTSIDE_MAC as OUT_MAC, PRIMARY,
};
use tandem_testkit::{fixture, Seg};
use tandem_wire::build;
use tandem_wire::{ArpPacket, MacAddr};

use super::ports::{ControlRing, Frame, Now, Ports};
use super::tx::TX_BURST;
use super::{Shared, Steering, Worker, MAX_RX_BACKLOG_NS};
use crate::gate::Gate;
use crate::listing::FlowList;
use crate::msg::{Command, EngineChange, SignalMsg};
use crate::stats::WorkerStats;

const MS: u64 = 1_000_000;

/// A frame in memory, with the stamp a hand-off ring carries.
#[derive(Debug)]
struct MemFrame {
    bytes: Vec<u8>,
    stamp: u64,
}

impl Frame for MemFrame {
    type Buf = Vec<u8>;

    fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    fn into_buf(self) -> Result<Vec<u8>, MemFrame> {
        Ok(self.bytes)
    }

    fn from_buf(bytes: Vec<u8>) -> MemFrame {
        MemFrame { bytes, stamp: 0 }
    }

    fn stamp(&self) -> u64 {
        self.stamp
    }

    fn set_stamp(&mut self, stamp: u64) {
        self.stamp = stamp;
    }
}

/// Queues and rings in memory; every ring takes all it is given.
#[derive(Default)]
struct MemPorts {
    rx_sides: Vec<Side>,
    rx: Vec<VecDeque<Vec<u8>>>,
    /// Sent, per side (outside, inside).
    tx: [Vec<Vec<u8>>; 2],
    answers: Vec<Vec<u8>>,
    control: Vec<Vec<u8>>,
    signals: Vec<SignalMsg>,
    commands: VecDeque<Command>,
    /// What the control core sends through the worker, per side.
    control_tx: [VecDeque<Vec<u8>>; 2],
    /// Handed off: (to worker, side, frame).
    handed_off: Vec<(usize, Side, MemFrame)>,
    /// Handed in, per ring: its side and frames.
    handed_in: Vec<(Side, VecDeque<MemFrame>)>,
    pool: VecPool,
}

fn side_index(side: Side) -> usize {
    usize::from(side == Side::Inside)
}

impl MemPorts {
    fn new() -> MemPorts {
        MemPorts {
            rx_sides: vec![Side::Outside, Side::Inside],
            rx: vec![VecDeque::new(), VecDeque::new()],
            ..MemPorts::default()
        }
    }
}

impl Ports for MemPorts {
    type Frame = MemFrame;
    type Pool = VecPool;

    fn rx_sides(&self) -> &[Side] {
        &self.rx_sides
    }

    fn rx_burst(&mut self, q: usize, into: &mut Burst<MemFrame>) -> usize {
        let mut n = 0;
        while into.remaining() > 0 {
            let Some(bytes) = self.rx[q].pop_front() else {
                break;
            };
            let _ = into.push(MemFrame { bytes, stamp: 0 });
            n += 1;
        }
        n
    }

    fn tx_burst(&mut self, side: Side, burst: &mut Burst<MemFrame, TX_BURST>) {
        for f in burst.drain() {
            self.tx[side_index(side)].push(f.bytes);
        }
    }

    fn to_control(&mut self, ring: ControlRing, burst: &mut Burst<MemFrame>) {
        let to = match ring {
            ControlRing::Answers => &mut self.answers,
            ControlRing::Control => &mut self.control,
        };
        to.extend(burst.drain().map(|f| f.bytes));
    }

    fn signal(&mut self, s: SignalMsg) -> bool {
        self.signals.push(s);
        true
    }

    fn command(&mut self) -> Option<Command> {
        self.commands.pop_front()
    }

    fn control_frames(&mut self, side: Side, into: &mut Burst<MemFrame>) -> usize {
        let mut n = 0;
        while into.remaining() > 0 {
            let Some(bytes) = self.control_tx[side_index(side)].pop_front() else {
                break;
            };
            let _ = into.push(MemFrame { bytes, stamp: 0 });
            n += 1;
        }
        n
    }

    fn hand_off(&mut self, to: usize, side: Side, burst: &mut Burst<MemFrame>) {
        self.handed_off.extend(burst.drain().map(|f| (to, side, f)));
    }

    fn handoff_inputs(&self) -> usize {
        self.handed_in.len()
    }

    fn handed_in(&mut self, i: usize, into: &mut Burst<MemFrame>) -> (Side, usize) {
        let (side, ring) = &mut self.handed_in[i];
        let mut n = 0;
        while into.remaining() > 0 {
            let Some(f) = ring.pop_front() else { break };
            let _ = into.push(f);
            n += 1;
        }
        (*side, n)
    }

    fn pool(&mut self) -> &mut VecPool {
        &mut self.pool
    }

    fn alloc_failures(&self) -> u64 {
        0
    }
}

/// A clock the test moves.
#[derive(Clone, Default)]
struct TestClock(Rc<Cell<u64>>);

impl Now for TestClock {
    fn now_ns(&self) -> u64 {
        self.0.get()
    }
}

impl TestClock {
    fn advance(&self, ns: u64) {
        self.0.set(self.0.get() + ns);
    }
}

/// A client's SYN to the VIP from `port`.
fn syn(port: u16) -> Vec<u8> {
    Seg {
        sport: port,
        seq: 1000,
        ..Seg::CLIENT_SYN
    }
    .frame()
}

/// An ARP frame of operation `op` from `sender`, to the port with `mac`.
fn arp(op: u16, sender: Ipv4Addr, target: Ipv4Addr, mac: MacAddr) -> Vec<u8> {
    let mut buf = vec![0u8; 64];
    let n = build::arp(
        &mut buf,
        op,
        mac,
        MacAddr([2, 0, 0, 0, 0, 0x77]),
        sender,
        MacAddr([0; 6]),
        target,
    )
    .expect("room");
    buf.truncate(n);
    buf
}

struct Bench {
    worker: Worker<MemPorts, TestClock>,
    clock: TestClock,
    stats: Arc<WorkerStats>,
}

fn bench(steering: Option<Steering>, ports: MemPorts) -> Bench {
    // The lab's mirrored service on its primary and backup, the flow hash fixed.
    let (replicas, primary, backup) = fixture::lab_replicas();
    let cfg = EngineConfig {
        outside_mac: OUT_MAC,
        inside_mac: IN_MAC,
        hash_key: HashKey::fixed(1, 2),
        ..fixture::engine_config(vec![fixture::mirror(&[primary, backup])], 64)
    };
    let clock = TestClock::default();
    clock.advance(1_000 * MS);
    let stats = Arc::new(WorkerStats::default());
    let shared = Shared {
        stats: stats.clone(),
        flow_list: Arc::new(FlowList::default()),
        mailbox: Arc::default(),
    };
    let worker = Worker::new(
        cfg,
        replicas,
        ports,
        clock.clone(),
        Gate::new(4000, 256),
        shared,
        steering,
    );
    Bench {
        worker,
        clock,
        stats,
    }
}

#[test]
fn a_pass_sends_a_syn_to_both_replicas_and_the_appliances_own_frames_to_their_rings() {
    let mut ports = MemPorts::new();
    ports.rx[0].push_back(syn(40000));
    ports.rx[0].push_back(arp(ArpPacket::<&[u8]>::REQUEST, CLIENT, OUTSIDE, OUT_MAC));
    ports.rx[1].push_back(arp(ArpPacket::<&[u8]>::REPLY, PRIMARY, INSIDE, IN_MAC));
    ports.control_tx[1].push_back(arp(ArpPacket::<&[u8]>::REQUEST, INSIDE, BACKUP, IN_MAC));
    let mut b = bench(None, ports);
    b.worker.pass();
    let p = &b.worker.ports;
    // The SYN went to both replicas, readdressed; then the control core's frame.
    let inside: Vec<Ipv4Addr> = p.tx[1]
        .iter()
        .take(2)
        .map(|f| Ipv4Addr::new(f[30], f[31], f[32], f[33]))
        .collect();
    assert_eq!(inside.len(), 2);
    assert!(
        inside.contains(&PRIMARY) && inside.contains(&BACKUP),
        "{inside:?}"
    );
    assert_eq!(
        p.tx[1].len(),
        3,
        "the SYN twice, the control core's ARP request"
    );
    assert!(p.tx[0].is_empty());
    // The ARP request for the appliance went to the control ring, the reply to the
    // answer ring.
    assert_eq!((p.control.len(), p.answers.len()), (1, 1));
    // Counters are published on the first pass; the horizon is this pass's time.
    let (engine, io) = b.stats.read();
    assert_eq!((engine.rx, engine.tx, engine.flows), (3, 2, 1));
    assert_eq!((io.rx_bursts, io.tx_refused), (2, 0));
    assert_eq!(b.stats.polled(), b.clock.now_ns());
}

#[test]
fn the_health_horizon_waits_while_a_receive_queue_is_backed_up() {
    let mut b = bench(None, MemPorts::new());
    b.worker.pass();
    let first = b.clock.now_ns();
    assert_eq!(b.stats.polled(), first);
    // A full burst and one more: this pass cannot tell what waits behind them.
    b.clock.advance(MS);
    for port in 0..33 {
        b.worker.ports.rx[0].push_back(syn(41000 + port));
    }
    b.worker.pass();
    assert_eq!(b.stats.polled(), first, "not past a backed-up queue");
    // The pass after a backlog of more than the assumed longest wait moves it to that.
    b.clock.advance(MAX_RX_BACKLOG_NS + MS);
    for port in 0..32 {
        b.worker.ports.rx[0].push_back(syn(42000 + port));
    }
    b.worker.pass();
    assert_eq!(b.stats.polled(), b.clock.now_ns() - MAX_RX_BACKLOG_NS);
    // Drained: the horizon is now.
    b.clock.advance(MS);
    b.worker.pass();
    assert_eq!(b.stats.polled(), b.clock.now_ns());
}

#[test]
fn every_frame_sent_for_a_received_burst_records_the_latency_the_worker_added() {
    let mut ports = MemPorts::new();
    ports.rx[0].push_back(syn(40000));
    let mut b = bench(None, ports);
    b.worker.pass();
    b.worker.finish();
    // Two frames (the SYN to each replica); the clock stood still: 0 ns added.
    let (n, max) = b.stats.with_latency(|h| (h.len(), h.max()));
    assert_eq!((n, max), (2, 0));
}

#[test]
fn on_the_hand_off_path_a_frame_goes_to_its_owner_with_its_stamp_and_is_handled_there() {
    let key = HashKey::fixed(1, 2);
    let own = [u32::from(OUTSIDE), u32::from(INSIDE)];
    let owner = |port: u16| {
        tandem_engine::affinity::owner(
            tandem_engine::affinity::ClientEnd {
                ip: u32::from(CLIENT),
                port,
            },
            2,
            &key,
        )
    };
    // A client port that worker 1 owns, received by worker 0.
    let port = (40000..41000)
        .find(|&p| owner(p) == 1)
        .expect("a port of worker 1");
    let steering = |me| Steering {
        me,
        workers: 2,
        own,
        key,
    };
    let mut ports = MemPorts::new();
    ports.rx[0].push_back(syn(port));
    let mut w0 = bench(Some(steering(0)), ports);
    w0.worker.pass();
    let stamp = w0.clock.now_ns();
    let handed: Vec<(usize, Side, MemFrame)> = w0.worker.ports.handed_off.drain(..).collect();
    assert_eq!(handed.len(), 1);
    assert_eq!(
        (handed[0].0, handed[0].1, handed[0].2.stamp),
        (1, Side::Outside, stamp)
    );
    assert!(
        w0.worker.ports.tx.iter().all(Vec::is_empty),
        "not handled by worker 0"
    );
    // Worker 1 handles it as if received, with worker 0's stamp.
    let mut ports = MemPorts::new();
    ports.handed_in = vec![(Side::Outside, handed.into_iter().map(|h| h.2).collect())];
    let mut w1 = bench(Some(steering(1)), ports);
    w1.clock.advance(5 * MS);
    w1.worker.pass();
    w1.worker.finish();
    assert_eq!(w1.worker.ports.tx[1].len(), 2, "the SYN to both replicas");
    let (_, io) = w1.stats.read();
    assert_eq!(io.handoff_received, 1);
    let (_, io0) = w0.stats.read();
    assert_eq!(io0.handed_off, 1);
    // Its latency counts from worker 0's receive: 5 ms.
    let max = w1.stats.with_latency(|h| h.max());
    assert!(
        w1.stats.with_latency(|h| h.equivalent(max, 5 * MS)),
        "{max}"
    );
}

#[test]
fn a_service_added_by_a_reload_takes_its_first_flow_once_its_pool_follows() {
    let web = Ipv4Addr::new(198, 18, 0, 101);
    let syn_to_web = |port: u16| {
        Seg {
            sport: port,
            dst: web,
            ..Seg::CLIENT_SYN
        }
        .frame()
    };
    let mut ports = MemPorts::new();
    ports.rx[0].push_back(syn_to_web(40000));
    let mut b = bench(None, ports);
    b.worker.pass();
    assert!(b.worker.ports.tx[1].is_empty(), "no service on {web} yet");
    // The control core's reload: the service in the mailbox, then its pool by orders.
    let (_, primary, backup) = fixture::lab_replicas();
    let mut svc = fixture::mirror(&[]);
    svc.vip = web;
    svc.copies = 2;
    b.worker
        .shared
        .mailbox
        .0
        .lock()
        .expect("mailbox")
        .push(EngineChange::AddService(Box::new(svc)));
    let p = &mut b.worker.ports;
    p.commands.push_back(Command::Reconfigure);
    for replica in [primary, backup] {
        p.commands.push_back(Command::PoolAdd {
            service: 1,
            replica,
        });
    }
    for _ in 0..3 {
        b.worker.pass();
    }
    assert!(b
        .worker
        .shared
        .mailbox
        .0
        .lock()
        .expect("mailbox")
        .is_empty());
    b.worker.ports.rx[0].push_back(syn_to_web(40001));
    b.worker.pass();
    let to: Vec<Ipv4Addr> = b.worker.ports.tx[1]
        .iter()
        .map(|f| Ipv4Addr::new(f[30], f[31], f[32], f[33]))
        .collect();
    assert_eq!(to.len(), 2, "{to:?}");
    assert!(to.contains(&PRIMARY) && to.contains(&BACKUP), "{to:?}");
}
