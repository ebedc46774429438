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

// ---- the appliance pair (crate::pair): two appliances' workers and control cores ----

/// A worker of one of a pair's appliances: `me` of `workers` on the hand-off path with
/// flow hash `key`, its engine exporting records.
fn pair_worker(key: HashKey, me: usize, workers: usize) -> Bench {
    let (replicas, primary, backup) = fixture::lab_replicas();
    let cfg = EngineConfig {
        outside_mac: OUT_MAC,
        inside_mac: IN_MAC,
        hash_key: key,
        sync: Some(tandem_engine::SyncExport::default()),
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
    let steering = Steering {
        me,
        workers,
        own: [u32::from(OUTSIDE), u32::from(INSIDE)],
        key,
    };
    let worker = Worker::new(
        cfg,
        replicas,
        MemPorts::new(),
        clock.clone(),
        Gate::new(4000, 256),
        shared,
        Some(steering),
    );
    Bench {
        worker,
        clock,
        stats,
    }
}

/// One appliance of a pair: its control core's pair and its workers.
struct Appliance {
    pair: crate::pair::Pair,
    workers: Vec<Bench>,
    key: HashKey,
}

impl Appliance {
    fn new(
        ip: Ipv4Addr,
        socket: std::net::UdpSocket,
        peer: std::net::SocketAddrV4,
        preferred: bool,
        workers: usize,
        key: HashKey,
        now: u64,
    ) -> Appliance {
        use tandem_control::ha::{HaLink, Node, Settings, SyncSettings};
        let settings = Settings {
            node: u32::from(ip),
            preferred,
            incarnation: now + u64::from(preferred),
            interval_ns: 5 * MS,
            // Generous: this host's two cores are shared with builds.
            dead_ns: 200 * MS,
            handover_timeout_ns: 2_000 * MS,
            sync: SyncSettings::default(),
        };
        let link = HaLink::new(socket, peer, Node::new(settings, now)).expect("link");
        let route = crate::pair::Route::HandOff { workers, key };
        let (pair, ends) = crate::pair::Pair::new(link, workers, route, 50 * MS);
        let workers = ends
            .into_iter()
            .enumerate()
            .map(|(me, end)| {
                let mut b = pair_worker(key, me, workers);
                b.worker.set_sync(end);
                b
            })
            .collect();
        Appliance { pair, workers, key }
    }

    /// A pass of the control core, then of every worker (their clocks move by 1 ms).
    fn pass(&mut self, now: u64) -> Vec<tandem_control::ha::Action> {
        let mut actions = Vec::new();
        self.pair.pass(now, &mut actions);
        for w in &mut self.workers {
            w.clock.advance(MS);
            w.worker.pass();
        }
        actions
    }

    fn owner(&self, port: u16) -> usize {
        tandem_engine::affinity::owner(
            tandem_engine::affinity::ClientEnd {
                ip: u32::from(CLIENT),
                port,
            },
            self.workers.len(),
            &self.key,
        )
    }

    fn flows(&mut self) -> Vec<usize> {
        self.workers
            .iter_mut()
            .map(|w| w.worker.engine_mut().flows().len())
            .collect()
    }
}

/// Worker `w`'s frames sent on `side`, parsed, taken.
fn sent(a: &mut Appliance, w: usize, side: Side) -> Vec<tandem_testkit::Seen> {
    a.workers[w].worker.ports.tx[side_index(side)]
        .drain(..)
        .map(|f| tandem_testkit::Seen::parse(side, &f))
        .collect()
}

/// The test's clock for the HA links: real time (the sockets are real), from 1 s.
fn link_now(start: std::time::Instant) -> u64 {
    start.elapsed().as_nanos() as u64 + 1_000 * MS
}

/// Two loopback sockets for A (127.0.0.1) and B (127.0.0.2) and their addresses.
fn link_sockets() -> [(Ipv4Addr, std::net::UdpSocket, std::net::SocketAddrV4); 2] {
    use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
    [Ipv4Addr::new(127, 0, 0, 1), Ipv4Addr::new(127, 0, 0, 2)].map(|ip| {
        let s = UdpSocket::bind(SocketAddrV4::new(ip, 0)).expect("a loopback socket");
        let a = match s.local_addr().expect("bound") {
            SocketAddr::V4(a) => a,
            SocketAddr::V6(_) => unreachable!("bound to IPv4"),
        };
        (ip, s, a)
    })
}

/// Passes `apps` until `done` holds (20 s at most).
fn settle(
    start: std::time::Instant,
    apps: &mut [&mut Appliance],
    what: &str,
    mut done: impl FnMut(&mut [&mut Appliance]) -> bool,
) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !done(apps) {
        assert!(std::time::Instant::now() < deadline, "{what}: not in 20 s");
        for a in apps.iter_mut() {
            a.pass(link_now(start));
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
}

/// The client's handshake from `port` through worker `w` of `a`; returns the visible
/// next sequence the client acks and the TSval it echoes.
fn handshake_through(a: &mut Appliance, w: usize, port: u16, now: u64) -> (u32, u32) {
    use tandem_testkit::Opts;
    let client = |seg: Seg<'static>| Seg { sport: port, ..seg };
    let rx = |a: &mut Appliance, side: Side, frame: Vec<u8>| {
        a.workers[w].worker.ports.rx[side_index(side)].push_back(frame);
        a.pass(now);
    };
    rx(
        a,
        Side::Outside,
        client(Seg {
            seq: 1000,
            ..Seg::CLIENT_SYN
        })
        .frame(),
    );
    let p_synack = Seg {
        dport: port,
        seq: 50_000,
        ack: 1001,
        ..Seg::PRIMARY_SYNACK
    };
    rx(a, Side::Inside, p_synack.frame());
    rx(
        a,
        Side::Inside,
        Seg {
            src_mac: tandem_testkit::BACKUP_MAC,
            src: BACKUP,
            seq: 900_000,
            opts: Seg::BACKUP_SYNACK.opts,
            ..p_synack
        }
        .frame(),
    );
    let synack = sent(a, w, Side::Outside)
        .into_iter()
        .find(|s| s.is_syn())
        .expect("the SYN-ACK to the client");
    let s1 = synack.seq.wrapping_add(1);
    let tsecr = synack.ts.map_or(0, |t| t.0);
    rx(
        a,
        Side::Outside,
        client(Seg {
            seq: 1001,
            ack: s1,
            opts: Opts::ts(101, tsecr),
            ..Seg::CLIENT
        })
        .frame(),
    );
    (s1, tsecr)
}

#[test]
fn a_pair_syncs_a_flow_into_the_owning_worker_of_a_peer_with_more_workers_which_carries_it_on_after_a_takeover(
) {
    use tandem_control::ha::{Action, Role};
    use tandem_testkit::Opts;

    let start = std::time::Instant::now();
    let [(a_ip, sa, a_addr), (b_ip, sb, b_addr)] = link_sockets();
    let t0 = link_now(start);
    // Two workers on A, three on B, each appliance with its own flow hash key.
    let mut a = Appliance::new(a_ip, sa, b_addr, true, 2, HashKey::fixed(1, 2), t0);
    let mut b = Appliance::new(b_ip, sb, a_addr, false, 3, HashKey::fixed(7, 9), t0);
    settle(start, &mut [&mut a, &mut b], "A active, B ready", |x| {
        x[0].pair.link().node().role() == Role::Active && x[1].pair.link().node().ready()
    });
    assert!(a.pair.carrying() && !b.pair.carrying());

    // A client port whose owners differ: worker 1 of A's two, worker 2 of B's three.
    let port = (40000..42000)
        .find(|&p| a.owner(p) == 1 && b.owner(p) == 2)
        .expect("a port");
    let (wa, wb) = (1, 2);
    let (s1, tsecr) = handshake_through(&mut a, wa, port, link_now(start));
    assert_eq!(a.flows(), [0, 1]);

    // Its record reaches B's worker 2 alone.
    settle(start, &mut [&mut a, &mut b], "the record installed", |x| {
        x[1].flows() == [0, 0, 1]
    });
    assert_eq!(b.pair.counters().records_routed, 1);
    // The standby drops what reaches its data ports, and sends nothing there.
    b.workers[0].worker.ports.rx[0].push_back(syn(port + 1));
    b.pass(link_now(start));
    for w in 0..3 {
        assert!(sent(&mut b, w, Side::Outside).is_empty());
        assert!(sent(&mut b, w, Side::Inside).is_empty());
    }
    b.workers[0].worker.finish();
    assert_eq!(b.workers[0].stats.read().1.pair_inactive_drops, 1);
    assert_eq!(b.flows(), [0, 0, 1]);

    // A is gone: B takes over, and its worker 2 restarts both ends of the flow.
    drop(a);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut took_over = false;
    while !took_over {
        assert!(std::time::Instant::now() < deadline, "no takeover in 20 s");
        took_over = b
            .pass(link_now(start))
            .iter()
            .any(|x| matches!(x, Action::BecomeActive { takeover: true, .. }));
        std::thread::sleep(std::time::Duration::from_micros(500));
    }
    assert!(b.pair.carrying());
    b.pass(link_now(start));
    let to_client = sent(&mut b, wb, Side::Outside);
    assert_eq!(to_client.len(), 3, "duplicate ACKs to the client");
    assert!(to_client.iter().all(|s| s.ack == 1001 && s.dport == port));
    let to_replicas = sent(&mut b, wb, Side::Inside);
    assert_eq!(to_replicas.len(), 6, "duplicate ACKs to each replica");
    // The client's next bytes go on to both replicas.
    b.workers[wb].worker.ports.rx[0].push_back(
        Seg {
            sport: port,
            seq: 1001,
            ack: s1,
            opts: Opts::ts(102, tsecr),
            payload: b"after the takeover",
            ..Seg::CLIENT
        }
        .frame(),
    );
    b.pass(link_now(start));
    let on = sent(&mut b, wb, Side::Inside);
    assert_eq!(on.len(), 2, "{on:?}");
    assert!(on.iter().all(|s| s.payload == b"after the takeover"));
    assert_eq!(b.flows(), [0, 0, 1]);
}

#[test]
fn a_peer_that_joins_later_gets_every_flow_by_a_bulk_sync_before_it_is_ready() {
    use tandem_control::ha::Role;

    let start = std::time::Instant::now();
    let [(a_ip, sa, a_addr), (b_ip, sb, b_addr)] = link_sockets();
    let mut a = Appliance::new(
        a_ip,
        sa,
        b_addr,
        false,
        2,
        HashKey::fixed(1, 2),
        link_now(start),
    );
    // Alone for a dead time, A becomes active and carries 6 flows.
    settle(start, &mut [&mut a], "A active alone", |x| {
        x[0].pair.link().node().role() == Role::Active
    });
    let ports: Vec<u16> = (40000..40006).collect();
    for &p in &ports {
        let w = a.owner(p);
        handshake_through(&mut a, w, p, link_now(start));
    }
    assert_eq!(a.flows().iter().sum::<usize>(), 6);
    // A seventh flow ends while B is away: its records wait for B, and cancel out.
    let gone = 40100;
    let wg = a.owner(gone);
    handshake_through(&mut a, wg, gone, link_now(start));
    let key = tandem_engine::FlowKey {
        client_ip: u32::from(CLIENT),
        client_port: gone,
        vip: u32::from(tandem_testkit::VIP),
        vip_port: tandem_testkit::PORT,
    };
    // B will hold a copy of a flow A never had (as if its Removed record had been lost
    // before B restarted), which the bulk must take away.
    let ghost = 40200;
    let mut stale = a.workers[wg]
        .worker
        .engine_mut()
        .export_flow(&key, tandem_engine::SyncEvent::Refresh)
        .expect("the flow's record");
    stale.key.client_port = ghost;
    a.workers[wg].worker.ports.rx[0].push_back(
        Seg {
            sport: gone,
            seq: 1001,
            flags: tandem_wire::TcpFlags::RST,
            ..Seg::CLIENT
        }
        .frame(),
    );
    a.pass(link_now(start));
    assert_eq!(a.flows().iter().sum::<usize>(), 6);

    // B starts (preferred, yet A keeps the role) and is ready once the bulk is in. Its
    // socket was bound all along: what A sent it meanwhile would have found no socket.
    sb.set_nonblocking(true).expect("non-blocking");
    let mut scratch = [0u8; 2048];
    while sb.recv(&mut scratch).is_ok() {}
    let mut b = Appliance::new(
        b_ip,
        sb,
        a_addr,
        true,
        3,
        HashKey::fixed(7, 9),
        link_now(start),
    );
    let t = b.workers[0].clock.now_ns();
    let ws = b.owner(ghost);
    b.workers[ws]
        .worker
        .engine_mut()
        .install_flow(&stale, t)
        .expect("the stale copy installs");
    settle(start, &mut [&mut a, &mut b], "B ready", |x| {
        x[1].pair.link().node().ready()
    });
    assert_eq!(a.pair.link().node().role(), Role::Active);
    assert_eq!(b.pair.link().node().role(), Role::Standby);
    let mut want = [0usize; 3];
    for &p in &ports {
        want[b.owner(p)] += 1;
    }
    // The bulk's end is acted on within a pass or two.
    b.pass(link_now(start));
    b.pass(link_now(start));
    assert_eq!(
        b.flows(),
        want,
        "each flow in its owner's table on B, the ghost gone"
    );
    b.workers[ws].worker.finish();
    assert_eq!(b.workers[ws].stats.read().0.sync_flows_pruned, 1);
    assert!(
        a.pair
            .link()
            .node()
            .counters(link_now(start))
            .sync_bulk_syncs
            >= 1
    );
}

#[test]
fn a_handover_moves_every_flow_with_its_final_record_and_the_old_active_becomes_a_ready_standby() {
    use tandem_control::ha::{Command as HaCommand, Role};
    use tandem_testkit::Opts;

    let start = std::time::Instant::now();
    let [(a_ip, sa, a_addr), (b_ip, sb, b_addr)] = link_sockets();
    let t0 = link_now(start);
    let mut a = Appliance::new(a_ip, sa, b_addr, true, 2, HashKey::fixed(1, 2), t0);
    let mut b = Appliance::new(b_ip, sb, a_addr, false, 3, HashKey::fixed(7, 9), t0);
    settle(start, &mut [&mut a, &mut b], "A active, B ready", |x| {
        x[0].pair.link().node().role() == Role::Active && x[1].pair.link().node().ready()
    });
    let port = (40000..42000)
        .find(|&p| a.owner(p) == 1 && b.owner(p) == 2)
        .expect("a port");
    let (wa, wb) = (1, 2);
    let (s1, tsecr) = handshake_through(&mut a, wa, port, link_now(start));
    settle(start, &mut [&mut a, &mut b], "the record installed", |x| {
        x[1].flows() == [0, 0, 1]
    });
    // Bytes that make no event, so no record: B's copy does not know them yet.
    let key = tandem_engine::FlowKey {
        client_ip: u32::from(CLIENT),
        client_port: port,
        vip: u32::from(tandem_testkit::VIP),
        vip_port: tandem_testkit::PORT,
    };
    a.workers[wa].worker.ports.rx[0].push_back(
        Seg {
            sport: port,
            seq: 1001,
            ack: s1,
            opts: Opts::ts(102, tsecr),
            payload: b"hello",
            ..Seg::CLIENT
        }
        .frame(),
    );
    a.pass(link_now(start));
    let copy = |b: &mut Appliance| {
        b.workers[wb]
            .worker
            .engine_mut()
            .export_flow(&key, tandem_engine::SyncEvent::Refresh)
            .map(|r| r.bytes_from_client)
    };
    assert_eq!(copy(&mut b), Some(0));

    // The operator makes B active: A stops, sends its final records, releases.
    b.pair
        .link_mut()
        .command(link_now(start), HaCommand::Active)
        .expect("a ready standby accepts");
    settle(start, &mut [&mut a, &mut b], "B active, A standby", |x| {
        x[0].pair.link().node().role() == Role::Standby
            && x[1].pair.link().node().role() == Role::Active
    });
    assert!(b.pair.carrying() && !a.pair.carrying());
    assert_eq!(
        copy(&mut b),
        Some(5),
        "the final record carried the client's bytes"
    );
    b.pass(link_now(start));
    let to_client = sent(&mut b, wb, Side::Outside);
    assert_eq!(to_client.len(), 3, "duplicate ACKs to the client");
    // At what the replicas acked (they have not acked "hello"): the client resends it.
    assert!(to_client.iter().all(|s| s.ack == 1001), "{to_client:?}");
    // A, now the standby, is resynced by B and ready again, its one flow B's copy.
    settle(start, &mut [&mut a, &mut b], "A ready", |x| {
        x[0].pair.link().node().ready()
    });
    assert_eq!(a.flows(), [0, 1]);
    assert_eq!(
        a.workers[wa]
            .worker
            .engine_mut()
            .export_flow(&key, tandem_engine::SyncEvent::Refresh)
            .map(|r| r.bytes_from_client),
        Some(5)
    );
}

#[test]
fn a_standby_worker_passes_arp_and_the_pairs_announcements_to_the_control_core_and_drops_the_rest()
{
    // Without its peer's announcements on the data ports, a standby counts only the HA
    // link: with that link down it would take over from a live active (split brain).
    let mut b = pair_worker(HashKey::fixed(1, 2), 0, 1);
    let (to_pair, _from_worker) = std::sync::mpsc::sync_channel(16);
    let (_to_worker, from_pair) = std::sync::mpsc::sync_channel(16);
    b.worker.set_sync(crate::pair::WorkerSync {
        to_pair,
        from_pair,
        carrying: Arc::new(std::sync::atomic::AtomicBool::new(false)),
    });
    let mut announcement = vec![0u8; 60];
    announcement[..6].fill(0xff);
    announcement[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 0x55]);
    announcement[12..14].copy_from_slice(&tandem_engine::parse::PAIR_ANNOUNCE.to_be_bytes());
    b.worker.ports.rx[0].push_back(announcement.clone());
    b.worker.ports.rx[0].push_back(syn(40000));
    b.worker.ports.rx[1].push_back(announcement);
    b.worker.ports.rx[1].push_back(arp(ArpPacket::<&[u8]>::REQUEST, PRIMARY, INSIDE, IN_MAC));
    b.worker.pass();
    b.worker.finish();
    let p = &b.worker.ports;
    assert_eq!(p.control.len(), 3, "two announcements and the ARP request");
    assert!(
        p.tx.iter().all(Vec::is_empty),
        "a standby sends nothing of its own"
    );
    assert_eq!(b.stats.read().1.pair_inactive_drops, 1, "the SYN");
    assert_eq!(b.worker.engine_mut().flows().len(), 0);
}
