//! A deterministic simulation of one client connection through the engine to two
//! replicas, with a replica killed at a seeded point (see `tests/simulation.rs`).
//!
//! Everything is driven by one `ChaCha8Rng` seed and a simulated clock: three smoltcp
//! hosts (client, primary, backup), six link directions with delay, jitter, reordering,
//! loss and duplication, the engine in the middle, and the test playing the control core
//! (ARP answers, replica MACs, health, failover sweeps).

pub mod apps;
pub mod net;

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::sync::Arc;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use smoltcp::socket::tcp::State;
use tandem_engine::sync::RECORD_LEN;
use tandem_engine::{
    Counters, DropReason, EngineConfig, FlowPhase, Health, ReplicaId, ReplicaTable, ServicePort,
    Side, Signal, SyncEvent, SyncRecord,
};
use tandem_testkit::{engine_config, mirror, replica_table, Rig, VecPool};
use tandem_wire::arp::ArpPacket;
use tandem_wire::{build, EtherType, EthernetFrame, Ipv4Packet, MacAddr, TcpFlags, TcpSegment};

use apps::{ClientApp, Request, ServerApp};
use net::{set_clock, Host, LinkParams, SockParams, MS, US};

// The kit's lab, in the forms smoltcp's hosts take.
pub use tandem_testkit::VIP;
pub const CLIENT_IP: Ipv4Addr = tandem_testkit::CLIENT;
pub const OUTSIDE_IP: Ipv4Addr = tandem_testkit::OUTSIDE;
pub const INSIDE_IP: Ipv4Addr = tandem_testkit::INSIDE;
pub const REPLICA_IPS: [Ipv4Addr; 2] = [tandem_testkit::PRIMARY, tandem_testkit::BACKUP];
pub const CLIENT_MAC: [u8; 6] = tandem_testkit::CLIENT_MAC.0;
pub const REPLICA_MACS: [[u8; 6]; 2] =
    [tandem_testkit::PRIMARY_MAC.0, tandem_testkit::BACKUP_MAC.0];

/// Simulated time at which a run starts.
const T0: u64 = 1_000 * MS;
/// A run that has not finished by then fails.
const TIME_LIMIT: u64 = 120_000 * MS;
/// Frames kept for the failure dump.
const TRACE_LEN: usize = 400;

/// What is killed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kill {
    /// Nothing.
    None,
    /// The flow's active replica, mid-stream.
    Active,
    /// The flow's standby replica, mid-stream.
    Standby,
    /// The designated primary, during the handshake.
    Handshake,
}

/// When the kill happens.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Trigger {
    /// At this simulated time.
    At(u64),
    /// When the client has received this many bytes.
    ClientReceived(usize),
    /// When the client has handed this many bytes to its socket.
    ClientSent(usize),
}

/// The appliance dies and its peer takes over with the flow records it was synced
/// (`tests/sync_takeover.rs`).
#[derive(Clone, Debug)]
pub struct Takeover {
    /// When the first appliance dies.
    pub trigger: Trigger,
    /// Chance, each simulated millisecond, that the flow's record is synced: the sync is
    /// cut at a random point, and the last record the peer has may be stale.
    pub sync_chance: f64,
    /// The sync is not cut: the last record is made as the appliance dies.
    pub fresh: bool,
    /// The peer's flow table size (another layout than the first's).
    pub peer_flows: usize,
}

/// Mirror mode's new standbys (`tests/reprotect.rs`, DESIGN §5 reintegration): the
/// standby is killed at the scenario's trigger, comes back (a restarted server: no old
/// socket) `revive_ns` after the control core found it down, the flow gets it back as a
/// new standby by replay, and then the active is killed: `active_ns` after the new
/// standby has the whole log, or, with `mid_replay`, as soon as it answered, while it is
/// still being given the log.
#[derive(Clone, Debug)]
pub struct Reprotect {
    pub revive_ns: u64,
    pub active_ns: u64,
    pub mid_replay: bool,
}

/// Grace time after a takeover for segments of flows the peer does not know.
pub const TAKEOVER_GRACE_NS: u64 = 50 * MS;

/// Everything a seed decides.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub seed: u64,
    pub kill: Kill,
    pub trigger: Trigger,
    /// From the kill to the control core declaring the replica down.
    pub detect_ns: u64,
    /// Frames the victim already sent are lost too (link down rather than a crash).
    pub drop_in_flight: bool,
    /// client→engine, engine→client, r0→engine, engine→r0, r1→engine, engine→r1.
    pub links: [LinkParams; 6],
    pub client: SockParams,
    pub replicas: [SockParams; 2],
    pub requests: Vec<Request>,
    pub depth: usize,
    pub port: u16,
    pub any_port: bool,
    pub hold_per_flow: u32,
    /// The service is in reconnect mode (`replay: stream`): one replica per flow, the
    /// flow replayed to the other when it dies.
    pub reconnect: bool,
    /// Reconnect mode: the other replica is not deterministic (it answers as a liar);
    /// a replay to it must end in a RST unless the client has nothing it differs on.
    pub liar: bool,
    /// The appliance is taken over by its peer (no replica is killed then).
    pub takeover: Option<Takeover>,
    /// Mirror mode with new standbys: the standby dies and comes back, then the active
    /// dies.
    pub reprotect: Option<Reprotect>,
}

impl Scenario {
    pub fn generate(seed: u64) -> Scenario {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let kill = match seed % 8 {
            0 => Kill::None,
            1 => Kill::Standby,
            2 => Kill::Handshake,
            _ => Kill::Active,
        };
        let lossy = rng.random_bool(0.75);
        // Now and then one replica sits behind a slow link, so that the backup runs well
        // ahead of (or behind) the primary.
        let slow = rng.random_bool(0.2).then(|| rng.random_range(0..2usize));
        let links = [
            LinkParams::draw(&mut rng, lossy, false),
            LinkParams::draw(&mut rng, lossy, false),
            LinkParams::draw(&mut rng, lossy, slow == Some(0)),
            LinkParams::draw(&mut rng, lossy, slow == Some(0)),
            LinkParams::draw(&mut rng, lossy, slow == Some(1)),
            LinkParams::draw(&mut rng, lossy, slow == Some(1)),
        ];
        let ts = |rng: &mut ChaCha8Rng| rng.random_bool(0.85).then(|| rng.random_range(0..4usize));
        let ack_delay = |rng: &mut ChaCha8Rng| match rng.random_range(0..3) {
            0 => None,
            1 => Some(1_000),
            _ => Some(10_000),
        };
        let client = SockParams {
            rx_buf: [16 * 1024, 64 * 1024, 128 * 1024][rng.random_range(0..3)],
            tx_buf: [8 * 1024, 32 * 1024, 64 * 1024][rng.random_range(0..3)],
            ip_mtu: 1500,
            ts_clock: ts(&mut rng),
            ack_delay_us: ack_delay(&mut rng),
            nagle: rng.random_bool(0.5),
            stack_seed: rng.random(),
        };
        let replica = |rng: &mut ChaCha8Rng| SockParams {
            rx_buf: [8 * 1024, 64 * 1024, 128 * 1024, 256 * 1024][rng.random_range(0..4)],
            tx_buf: [8 * 1024, 32 * 1024, 64 * 1024][rng.random_range(0..3)],
            ip_mtu: [1500, 1500, 1400, 1280][rng.random_range(0..4)],
            ts_clock: ts(rng),
            ack_delay_us: ack_delay(rng),
            nagle: rng.random_bool(0.5),
            stack_seed: rng.random(),
        };
        let replicas = [replica(&mut rng), replica(&mut rng)];
        let n = rng.random_range(2..=24usize);
        let requests: Vec<Request> = (0..n)
            .map(|_| {
                let len = match rng.random_range(0..10) {
                    0..=5 => rng.random_range(1..2_000),
                    6..=8 => rng.random_range(2_000..16_000),
                    _ => rng.random_range(16_000..60_000),
                };
                let fill_len = if rng.random_bool(0.7) {
                    rng.random_range(0..64)
                } else {
                    rng.random_range(64..4_000)
                };
                let fill = (0..fill_len).map(|_| rng.random()).collect();
                Request { len, fill }
            })
            .collect();
        let total_out: usize = requests.iter().map(|r| r.len).sum();
        let total_in: usize = requests
            .iter()
            .enumerate()
            .map(|(i, r)| apps::encode(i, r).len())
            .sum();
        let depth = [1, 2, 4, usize::MAX][rng.random_range(0..4)];
        let trigger = match kill {
            Kill::Handshake => {
                let rtt =
                    links[0].delay_ns + links[1].delay_ns + links[2].delay_ns + links[3].delay_ns;
                Trigger::At(T0 + rng.random_range(0..rtt * 3 / 2 + 100 * US))
            }
            _ if rng.random_bool(0.6) => Trigger::ClientReceived(rng.random_range(1..=total_out)),
            _ => Trigger::ClientSent(rng.random_range(1..=total_in)),
        };
        let mut sc = Scenario {
            seed,
            kill,
            trigger,
            detect_ns: rng.random_range(500 * US..5 * MS),
            drop_in_flight: rng.random_bool(0.5),
            links,
            client,
            replicas,
            requests,
            depth,
            port: rng.random_range(1..=65535),
            any_port: rng.random_bool(0.3),
            hold_per_flow: if rng.random_bool(0.2) {
                rng.random_range(2 * 1024..32 * 1024)
            } else {
                256 * 1024
            },
            reconnect: false,
            liar: false,
            takeover: None,
            reprotect: None,
        };
        // Drawn last, so that every other draw of a seed is what it was before.
        sc.reconnect = rng.random_bool(0.3);
        sc.liar = sc.reconnect && rng.random_bool(0.4);
        sc
    }

    /// The world of `seed` in mirror mode with new standbys: the standby killed early in
    /// the stream and brought back, then the active killed ([`Reprotect`]). The stream
    /// is long enough (at least 256 KiB from the servers) for both to happen mid-stream.
    #[allow(dead_code)] // tests/reprotect.rs only (each test crate builds `sim`)
    pub fn generate_reprotect(seed: u64) -> Scenario {
        let mut sc = Scenario::generate(seed);
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x4e70_407e_c700_0001);
        sc.reconnect = false;
        sc.liar = false;
        sc.kill = Kill::Standby;
        while sc.requests.iter().map(|r| r.len).sum::<usize>() < 256 * 1024 {
            let len = rng.random_range(2_000..60_000);
            let fill = (0..rng.random_range(0..256))
                .map(|_| rng.random())
                .collect();
            sc.requests.push(Request { len, fill });
        }
        let total_out: usize = sc.requests.iter().map(|r| r.len).sum();
        sc.trigger = Trigger::ClientReceived(rng.random_range(1..=total_out / 8));
        sc.reprotect = Some(Reprotect {
            revive_ns: rng.random_range(500 * US..10 * MS),
            active_ns: rng.random_range(0..5 * MS),
            mid_replay: rng.random_bool(0.2),
        });
        sc
    }

    /// The world of `seed` in mirror mode, no replica killed, and the appliance taken
    /// over by its peer at a seeded point, with the flow's record synced at seeded times.
    #[allow(dead_code)] // tests/sync_takeover.rs only (each test crate builds `sim`)
    pub fn generate_takeover(seed: u64) -> Scenario {
        let mut sc = Scenario::generate(seed);
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7a4e_0fe5_0000_0001);
        sc.kill = Kill::None;
        sc.reconnect = false;
        sc.liar = false;
        let total_out: usize = sc.requests.iter().map(|r| r.len).sum();
        let trigger = if rng.random_bool(0.15) {
            Trigger::At(T0 + rng.random_range(0..20 * MS))
        } else {
            Trigger::ClientReceived(rng.random_range(1..=total_out))
        };
        sc.takeover = Some(Takeover {
            trigger,
            sync_chance: [0.02, 0.2, 1.0][rng.random_range(0..3)],
            fresh: rng.random_bool(0.4),
            peer_flows: [8, 64, 1024][rng.random_range(0..3)],
        });
        sc
    }
}

/// What a passing run measured.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub kill: Kill,
    /// The flow had a single replica when its last one was killed (the engine dropped the
    /// other during the handshake): the client is reset, as §3.9 says.
    pub unprotected: bool,
    /// Verification (§3.12) took the standby out (its output could no longer be
    /// checked), refused a failover, or ended a catch-up: the flow may end in a RST.
    pub verification_gave_up: bool,
    /// Longest gap between arrivals at the client around a failover of the active
    /// replica (ns).
    pub stall_ns: Option<u64>,
    pub sim_ns: u64,
    pub frames: u64,
    pub lost: u64,
    pub signals: usize,
    pub replayed: u64,
    pub acks_to_client: u64,
    /// Reconnect mode: (replays begun, replays spliced, the other replica unlike the first:
    /// a liar, or without the timestamps the client agreed to).
    pub reconnect: Option<(u64, u64, bool)>,
    /// A takeover: whether the peer installed a record, whether the record was fresh,
    /// and whether the client's connection ended in a RST.
    #[allow(dead_code)] // tests/sync_takeover.rs only (each test crate builds `sim`)
    pub takeover: Option<(bool, bool, bool)>,
    /// New standbys: (the standby came back, the flow got it back by replay, the active
    /// was then killed, the client's connection ended in a RST, the flow's log had ended
    /// (a client segment out of order), a new standby failed).
    #[allow(dead_code)] // tests/reprotect.rs only (each test crate builds `sim`)
    pub reprotect: Option<(bool, bool, bool, bool, bool, bool)>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Node {
    Client,
    Replica(usize),
    Engine(Side),
}

struct Ev {
    at: u64,
    n: u64,
    from: Node,
    to: Node,
    frame: Vec<u8>,
}

impl PartialEq for Ev {
    fn eq(&self, o: &Ev) -> bool {
        (self.at, self.n) == (o.at, o.n)
    }
}
impl Eq for Ev {}
impl PartialOrd for Ev {
    fn partial_cmp(&self, o: &Ev) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Ev {
    // Reversed: BinaryHeap pops the earliest.
    fn cmp(&self, o: &Ev) -> Ordering {
        (o.at, o.n).cmp(&(self.at, self.n))
    }
}

/// A frame on a link, for the failure dump.
#[derive(Clone, Copy)]
struct TraceRec {
    at: u64,
    link: usize,
    copies: u8,
    arp: bool,
    flags: u8,
    seq: u32,
    ack: u32,
    len: u16,
    win: u16,
    ts: Option<(u32, u32)>,
}

const LINK_NAMES: [&str; 6] = ["client>T", "T>client", "r0>T", "T>r0", "r1>T", "T>r1"];

/// The TCP segment of an Ethernet/IPv4/TCP frame.
fn tcp_of(frame: &[u8]) -> Option<TcpSegment<&[u8]>> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EtherType::IPV4 {
        return None;
    }
    let l3 = eth.header_len();
    let ip = Ipv4Packet::new_checked(&frame[l3..]).ok()?;
    let l4 = l3 + ip.header_len();
    let end = l3 + usize::from(ip.total_len());
    TcpSegment::new_checked(frame.get(l4..end)?).ok()
}

fn link_index(from: Node, to: Node) -> usize {
    match (from, to) {
        (Node::Client, _) => 0,
        (Node::Engine(_), Node::Client) => 1,
        (Node::Replica(r), _) => 2 + 2 * r,
        (Node::Engine(_), Node::Replica(r)) => 3 + 2 * r,
        (Node::Engine(_), Node::Engine(_)) => unreachable!("no link between engine ports"),
    }
}

/// The client's PAWS test (RFC 7323 §5.3) as Linux runs it (`TCP_PAWS_WINDOW` = 1 tick),
/// applied to the engine's output towards the client in the order it is emitted: a
/// segment whose TSval is more than one tick behind a TSval already sent would be
/// dropped. Reordering on the link after the engine is the network's doing, and is not
/// counted.
#[derive(Default)]
struct Paws {
    max_sent: Option<u32>,
    violation: Option<String>,
}

impl Paws {
    fn on_emitted(&mut self, now: u64, tcp: &TcpSegment<&[u8]>) {
        let Some((tsval, _)) = tcp.timestamps() else {
            return;
        };
        if tcp.flags().contains(TcpFlags::RST) {
            return;
        }
        if let Some(max) = self.max_sent {
            let behind = max.wrapping_sub(tsval) as i32;
            if behind > 1 && self.violation.is_none() {
                self.violation = Some(format!(
                    "at {} µs the engine sent the client seq {} (len {}) with TSval {tsval}, \
                     {behind} ticks behind TSval {max} it sent before: a Linux client drops it \
                     (PAWS, DESIGN §3.3)",
                    (now - T0) / US,
                    tcp.seq(),
                    tcp.payload().len()
                ));
            }
            if behind >= 0 {
                return;
            }
        }
        self.max_sent = Some(tsval);
    }
}

struct Appliance {
    rig: Rig,
    table: Arc<ReplicaTable>,
    ids: [ReplicaId; 2],
    outside_mac: MacAddr,
    inside_mac: MacAddr,
    signals: Vec<Signal>,
    arp_answered: u64,
}

struct World {
    sc: Scenario,
    now: u64,
    rng: ChaCha8Rng,
    events: BinaryHeap<Ev>,
    ev_n: u64,
    client: Host,
    servers: [Host; 2],
    capp: ClientApp,
    sapps: [ServerApp; 2],
    t: Appliance,
    killed: [bool; 2],
    /// Replica `r` carried the flow at some point (in reconnect mode the second joins only
    /// by a replay).
    joined: [bool; 2],
    down: [bool; 2],
    victim: Option<usize>,
    kill_at: Option<u64>,
    detect_at: Option<u64>,
    /// A replica the engine dropped during the handshake.
    handshake_dropped: Option<usize>,
    handshake_seen: bool,
    unprotected: bool,
    client_rsts: u64,
    /// RSTs the engine sent towards the client.
    rsts_sent: u64,
    client_state: State,
    /// When the client's socket reached TIME-WAIT.
    client_closed_at: Option<u64>,
    /// Every surviving replica has closed its side too.
    servers_closed: bool,
    client_states: Vec<(u64, State)>,
    paws: Paws,
    failure: Option<String>,
    trace: VecDeque<TraceRec>,
    link_tail: [u64; 6],
    frames: u64,
    lost: u64,
    engine_next: u64,
    /// Takeover runs: the flow's last synced record, as it crossed the HA link.
    record: Option<[u8; RECORD_LEN]>,
    /// When the next sync chance comes.
    sync_next: u64,
    /// When the peer took over, and the highest TSval the first appliance had sent the
    /// client then.
    took_over_at: Option<u64>,
    max_tsval_before: Option<u32>,
    /// The peer installed the record.
    installed: bool,
    /// New standbys: when the killed standby is to come back, when it came back, the
    /// active's kill armed (and whether the new standby was still being given the log).
    revive_at: Option<u64>,
    revived_at: Option<u64>,
    active_armed: bool,
    killed_mid_replay: bool,
    /// Both kills' victims' legs (for the legs-lost count).
    earlier_victims: u64,
}

/// Runs one seed. `Err` carries a full dump.
pub fn run(seed: u64) -> Result<Outcome, String> {
    let sc = Scenario::generate(seed);
    let mut w = World::new(sc);
    w.run()
}

/// Runs one seed's new-standby world ([`Scenario::generate_reprotect`]).
#[allow(dead_code)] // tests/reprotect.rs only (each test crate builds `sim`)
pub fn run_reprotect(seed: u64) -> Result<Outcome, String> {
    let sc = Scenario::generate_reprotect(seed);
    let mut w = World::new(sc);
    w.run()
}

/// Runs one seed's takeover world ([`Scenario::generate_takeover`]).
#[allow(dead_code)] // tests/sync_takeover.rs only (each test crate builds `sim`)
pub fn run_takeover(seed: u64) -> Result<Outcome, String> {
    let sc = Scenario::generate_takeover(seed);
    let mut w = World::new(sc);
    w.run()
}

/// The appliance for `sc`, its replica table in `order` (replica indexes; the peer's
/// differs from the first's, so that its internal ids do too), with `max_flows` slots.
fn appliance(sc: &Scenario, order: [usize; 2], max_flows: usize) -> Appliance {
    let (table, slots) = replica_table(&[
        (REPLICA_IPS[order[0]], MacAddr(REPLICA_MACS[order[0]])),
        (REPLICA_IPS[order[1]], MacAddr(REPLICA_MACS[order[1]])),
    ]);
    // `ids[r]` is replica r's slot.
    let mut ids = slots.clone();
    ids[order[0]] = slots[0];
    ids[order[1]] = slots[1];
    let port = if sc.any_port {
        ServicePort::Any
    } else {
        ServicePort::Port(sc.port)
    };
    let service = tandem_engine::Service {
        port,
        ..if sc.reconnect {
            tandem_testkit::fixture::reconnect(&ids)
        } else if sc.reprotect.is_some() {
            tandem_engine::Service {
                reprotect: Some(tandem_engine::ReplayConfig::default()),
                ..mirror(&ids)
            }
        } else {
            mirror(&ids)
        }
    };
    let cfg = EngineConfig {
        hold_bytes_per_flow: sc.hold_per_flow,
        hold_segments: 4096,
        // Longer than the spread of the replicas' round trips (up to ~6 ms on a slow
        // link), as an operator would set it: a slow backup is not dropped.
        synack_wait_ns: 10 * MS,
        replay_bytes_total: 4 << 20,
        ..engine_config(vec![service], max_flows)
    };
    let (outside_mac, inside_mac) = (cfg.outside_mac, cfg.inside_mac);
    let rig = Rig::with(
        cfg,
        table.clone(),
        VecPool::default(),
        tandem_engine::Output::with_capacity(256, 64, 64),
    );
    Appliance {
        rig,
        table,
        ids: [ids[0], ids[1]],
        outside_mac,
        inside_mac,
        signals: Vec::new(),
        arp_answered: 0,
    }
}

impl World {
    fn new(sc: Scenario) -> World {
        let rng = ChaCha8Rng::seed_from_u64(sc.seed ^ 0x5eed_0f7a_4de1_1a00);
        set_clock(T0);
        let t = appliance(&sc, [0, 1], 16);
        let mut client = Host::new(CLIENT_MAC, CLIENT_IP, OUTSIDE_IP, &sc.client, T0);
        let servers = [0, 1].map(|r| {
            let mut h = Host::new(
                REPLICA_MACS[r],
                REPLICA_IPS[r],
                INSIDE_IP,
                &sc.replicas[r],
                T0,
            );
            h.sock().listen(sc.port).expect("listen");
            h
        });
        let local_port = 49152 + (sc.seed % 16000) as u16;
        {
            let Host {
                iface,
                sockets,
                tcp,
                ..
            } = &mut client;
            sockets
                .get_mut::<smoltcp::socket::tcp::Socket>(*tcp)
                .connect(iface.context(), (VIP, sc.port), local_port)
                .expect("connect");
            if sc.takeover.is_some() {
                // A client whose flow the peer never got a record of learns it only when
                // it sends: a keepalive makes an idle one send (answered with a RST).
                sockets
                    .get_mut::<smoltcp::socket::tcp::Socket>(*tcp)
                    .set_keep_alive(Some(smoltcp::time::Duration::from_millis(1000)));
            }
        }
        let joined = [true, !sc.reconnect];
        let capp = if sc.liar {
            ClientApp::with_liar(&sc.requests, sc.depth)
        } else {
            ClientApp::new(&sc.requests, sc.depth)
        };
        World {
            now: T0,
            rng,
            events: BinaryHeap::new(),
            ev_n: 0,
            client,
            servers,
            capp,
            sapps: [ServerApp::default(), ServerApp::liar(sc.liar)],
            t,
            killed: [false; 2],
            joined,
            down: [false; 2],
            victim: None,
            kill_at: None,
            detect_at: None,
            handshake_dropped: None,
            handshake_seen: false,
            unprotected: false,
            client_rsts: 0,
            rsts_sent: 0,
            client_state: State::SynSent,
            client_closed_at: None,
            servers_closed: false,
            client_states: vec![(T0, State::SynSent)],
            paws: Paws::default(),
            failure: None,
            trace: VecDeque::with_capacity(TRACE_LEN),
            link_tail: [0; 6],
            frames: 0,
            lost: 0,
            engine_next: T0,
            record: None,
            sync_next: T0,
            took_over_at: None,
            max_tsval_before: None,
            installed: false,
            revive_at: None,
            revived_at: None,
            active_armed: false,
            killed_mid_replay: false,
            earlier_victims: 0,
            sc,
        }
    }

    // ---- the appliance pair (takeover runs) --------------------------------------------

    /// Syncs the flow's record now and then: the sync is cut wherever the last one was.
    fn maybe_sync(&mut self) {
        let Some(plan) = self.sc.takeover.clone() else {
            return;
        };
        if self.took_over_at.is_some() || self.now < self.sync_next {
            return;
        }
        self.sync_next = self.now + MS;
        if self.rng.random_bool(plan.sync_chance) {
            self.sync_record();
        }
    }

    /// The flow's record, encoded as the HA link carries it.
    fn sync_record(&mut self) {
        let Some(key) = self.flow().map(|f| f.key) else {
            return;
        };
        if let Some(rec) = self.t.rig.engine.export_flow(&key, SyncEvent::Refresh) {
            let mut bytes = [0u8; RECORD_LEN];
            if rec.encode(&mut bytes).is_ok() {
                self.record = Some(bytes);
            }
        }
    }

    /// The appliance dies when the plan says: its peer, with another replica table
    /// layout and table size, installs the last record it got and takes over.
    fn maybe_take_over(&mut self) {
        let Some(plan) = self.sc.takeover.clone() else {
            return;
        };
        let due = match plan.trigger {
            Trigger::At(t) => self.now >= t,
            Trigger::ClientReceived(n) => self.capp.received.len() >= n,
            Trigger::ClientSent(n) => self.capp.sent >= n,
        };
        if self.took_over_at.is_some() || !due {
            return;
        }
        if plan.fresh {
            self.sync_record();
        }
        let mut peer = appliance(&self.sc, [1, 0], plan.peer_flows);
        if let Some(bytes) = self.record {
            match SyncRecord::decode(&bytes) {
                Ok(rec) => {
                    self.installed = peer.rig.engine.install_flow(&rec, self.now).is_ok();
                }
                Err(e) => self.fail(format!("the synced record does not decode: {e}")),
            }
        }
        peer.rig.engine.takeover(self.now, TAKEOVER_GRACE_NS);
        self.t = peer;
        self.took_over_at = Some(self.now);
        self.max_tsval_before = self.paws.max_sent;
        self.poll_engine();
    }

    /// The control core resolves the replicas at start: its ARP requests also leave the
    /// appliance's inside MAC in their neighbour caches (a warm cache, as in service).
    fn warm_up(&mut self) {
        for (r, ip) in REPLICA_IPS.iter().enumerate() {
            let mut buf = vec![0u8; 64];
            let n = build::arp(
                &mut buf,
                ArpPacket::REQUEST,
                MacAddr::BROADCAST,
                self.t.inside_mac,
                INSIDE_IP,
                MacAddr::ZERO,
                *ip,
            )
            .expect("arp");
            buf.truncate(n);
            self.send(Node::Engine(Side::Inside), Node::Replica(r), buf);
        }
    }

    fn fail(&mut self, msg: String) {
        if self.failure.is_none() {
            self.failure = Some(msg);
        }
    }

    // ---- links ------------------------------------------------------------------------

    fn send(&mut self, from: Node, to: Node, frame: Vec<u8>) {
        let link = link_index(from, to);
        let fate = self.sc.links[link].fate(&mut self.rng, self.now, &mut self.link_tail[link]);
        let copies = fate.iter().flatten().count() as u8;
        self.frames += 1;
        if copies == 0 {
            self.lost += 1;
        }
        self.record(link, copies, &frame);
        let times: Vec<u64> = fate.iter().flatten().copied().collect();
        let mut frame = Some(frame);
        for (i, &at) in times.iter().enumerate() {
            let f = if i + 1 < times.len() {
                frame.clone().expect("frame")
            } else {
                frame.take().expect("frame")
            };
            self.ev_n += 1;
            self.events.push(Ev {
                at,
                n: self.ev_n,
                from,
                to,
                frame: f,
            });
        }
    }

    fn record(&mut self, link: usize, copies: u8, frame: &[u8]) {
        if self.trace.len() == TRACE_LEN {
            self.trace.pop_front();
        }
        let mut rec = TraceRec {
            at: self.now,
            link,
            copies,
            arp: false,
            flags: 0,
            seq: 0,
            ack: 0,
            len: 0,
            win: 0,
            ts: None,
        };
        if let Ok(eth) = EthernetFrame::new_checked(frame) {
            if eth.ethertype() == EtherType::ARP {
                rec.arp = true;
            } else if let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) {
                if let Ok(tcp) = TcpSegment::new_checked(ip.payload()) {
                    rec.flags = tcp.flags().0;
                    rec.seq = tcp.seq();
                    rec.ack = tcp.ack();
                    rec.len = tcp.payload().len() as u16;
                    rec.win = tcp.window();
                    rec.ts = tcp.timestamps();
                }
            }
        }
        self.trace.push_back(rec);
    }

    /// Delivers the events due now. The appliance receives its frames in bursts, as a
    /// worker does: one burst for each run of frames due on the same port.
    fn deliver(&mut self) {
        let mut burst = Vec::new();
        let mut burst_side = Side::Outside;
        while self.events.peek().is_some_and(|e| e.at <= self.now) {
            let ev = self.events.pop().expect("peeked");
            match ev.to {
                Node::Engine(side) => {
                    if let Node::Replica(r) = ev.from {
                        if self.killed[r] && self.sc.drop_in_flight {
                            continue;
                        }
                    }
                    if side != burst_side {
                        self.rx_burst(burst_side, &mut burst);
                        burst_side = side;
                    }
                    burst.push(ev.frame);
                }
                Node::Client => {
                    self.inspect_client_rx(&ev.frame);
                    self.client.nic.rx.push_back(ev.frame);
                }
                Node::Replica(r) => {
                    if !self.killed[r] {
                        self.servers[r].nic.rx.push_back(ev.frame);
                    }
                }
            }
        }
        self.rx_burst(burst_side, &mut burst);
    }

    /// The engine's handling of a burst received on `side`, and of what it sent.
    fn rx_burst(&mut self, side: Side, burst: &mut Vec<Vec<u8>>) {
        if burst.is_empty() {
            return;
        }
        self.t.rig.rx(side, self.now, burst);
        self.drain_engine();
    }

    /// Counts the RSTs that reach the client.
    fn inspect_client_rx(&mut self, frame: &[u8]) {
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            return;
        };
        let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) else {
            return;
        };
        let Ok(tcp) = TcpSegment::new_checked(ip.payload()) else {
            return;
        };
        if tcp.flags().contains(TcpFlags::RST) {
            self.client_rsts += 1;
        }
    }

    // ---- the appliance and its control core --------------------------------------------

    fn drain_engine(&mut self) {
        let tx: Vec<_> = self.t.rig.out.tx.drain(..).collect();
        for t in tx {
            if let Err(e) = self.check_emitted(&t.buf) {
                self.fail(format!("engine emitted a bad frame on {:?}: {e}", t.side));
            }
            if t.side == Side::Outside {
                if let Some(tcp) = tcp_of(&t.buf) {
                    self.check_peer_tsval(&tcp);
                    self.paws.on_emitted(self.now, &tcp);
                    if tcp.flags().contains(TcpFlags::RST) {
                        self.rsts_sent += 1;
                    }
                }
            }
            let dst = EthernetFrame::new_unchecked(&t.buf[..]).dst();
            let to = match t.side {
                Side::Outside if dst.0 == CLIENT_MAC => Node::Client,
                Side::Inside if dst.0 == REPLICA_MACS[0] => Node::Replica(0),
                Side::Inside if dst.0 == REPLICA_MACS[1] => Node::Replica(1),
                side => {
                    self.fail(format!(
                        "engine sent a frame to unknown MAC {dst} on {side:?}"
                    ));
                    continue;
                }
            };
            self.send(Node::Engine(t.side), to, t.buf);
        }
        self.t.signals.append(&mut self.t.rig.out.signals);
        let control: Vec<_> = self.t.rig.out.to_control.drain(..).collect();
        for f in control {
            self.control(&f);
        }
    }

    /// After a takeover: no segment of the peer carries a TSval older than one the first
    /// appliance sent the client (§3.3 across the pair).
    fn check_peer_tsval(&mut self, tcp: &TcpSegment<&[u8]>) {
        let (Some(max), Some((tsval, _))) = (self.max_tsval_before, tcp.timestamps()) else {
            return;
        };
        if self.took_over_at.is_some()
            && !tcp.flags().contains(TcpFlags::RST)
            && (tsval.wrapping_sub(max) as i32) < 0
        {
            self.fail(format!(
                "after the takeover the peer sent the client TSval {tsval}, older than \
                 TSval {max} the first appliance sent"
            ));
        }
    }

    /// Checksums of a TCP frame the engine emitted.
    fn check_emitted(&self, frame: &[u8]) -> Result<(), String> {
        let eth = EthernetFrame::new_checked(frame).map_err(|e| format!("ethernet: {e}"))?;
        if eth.ethertype() != EtherType::IPV4 {
            return Ok(());
        }
        let ip = Ipv4Packet::new_checked(eth.payload()).map_err(|e| format!("ipv4: {e}"))?;
        if !ip.verify_checksum() {
            return Err("IPv4 checksum".into());
        }
        let tcp = TcpSegment::new_checked(ip.payload()).map_err(|e| format!("tcp: {e}"))?;
        if !tcp.verify_checksum(ip.src(), ip.dst()) {
            return Err(format!(
                "TCP checksum ({} -> {}, flags {:#x}, seq {})",
                ip.src(),
                ip.dst(),
                tcp.flags().0,
                tcp.seq()
            ));
        }
        Ok(())
    }

    /// The control core: answers ARP for the VIP and the appliance's own addresses.
    fn control(&mut self, frame: &[u8]) {
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            return;
        };
        if eth.ethertype() != EtherType::ARP {
            return;
        }
        let Ok(arp) = ArpPacket::new_checked(eth.payload()) else {
            return;
        };
        if arp.operation() != ArpPacket::REQUEST {
            return;
        }
        let target = arp.target_ip();
        let (side, mac) = if target == VIP || target == OUTSIDE_IP {
            (Side::Outside, self.t.outside_mac)
        } else if target == INSIDE_IP {
            (Side::Inside, self.t.inside_mac)
        } else {
            return;
        };
        let mut buf = vec![0u8; 64];
        let n = build::arp(
            &mut buf,
            ArpPacket::REPLY,
            arp.sender_mac(),
            mac,
            target,
            arp.sender_mac(),
            arp.sender_ip(),
        )
        .expect("arp");
        buf.truncate(n);
        let to = match (side, arp.sender_mac().0) {
            (Side::Outside, m) if m == CLIENT_MAC => Node::Client,
            (Side::Inside, m) if m == REPLICA_MACS[0] => Node::Replica(0),
            (Side::Inside, m) if m == REPLICA_MACS[1] => Node::Replica(1),
            _ => return,
        };
        self.t.arp_answered += 1;
        self.send(Node::Engine(side), to, buf);
    }

    /// Whether the flow may end in a RST: it ran unprotected when its active died, or
    /// verification (§3.12) took its standby out or refused the failover (a standby
    /// whose output could not be checked: out of order past what is kept, or held output
    /// released over a small budget).
    /// A replay to a replica without timestamps, for a client that agreed to them with the
    /// first, is refused (its segments could not carry the clock the client expects).
    fn ts_differ(&self) -> bool {
        self.sc.client.ts_clock.is_some()
            && self.sc.replicas[0].ts_clock.is_some() != self.sc.replicas[1].ts_clock.is_some()
    }

    fn exposed(&mut self) -> bool {
        let (liar, reconnect, ts_differ) = (self.sc.liar, self.sc.reconnect, self.ts_differ());
        let took_over = self.took_over_at.is_some() && self.rsts_sent > 0;
        let c = self.t.rig.engine.counters();
        // After a takeover a RST is a right end: the record was stale or missing (the
        // client's stream is checked never mixed).
        took_over
            || self.unprotected
            // The active died while the new standby was still being given the log: it
            // takes over only if its output is checked equal to what the client has.
            || self.killed_mid_replay
            || c.standbys_unverifiable + c.takeovers_refused + c.catch_ups_failed > 0
            // A replay to the liar whose answer differs from what the client has: a RST
            // is the right answer.
            || (liar && c.reconnects_mismatch > 0)
            || (ts_differ && c.reconnects_refused > 0)
            // A replay that could not finish (the dead replica's output had a gap the
            // client holds data past, the new one stalled on losses): a RST is a right
            // end, the client's stream is checked never mixed (`ClientApp`), and the
            // share of replays spliced is checked over all seeds (simulation.rs).
            || (reconnect
                && c.reconnects_refused
                    + c.reconnects_timeout
                    + c.reconnects_unsafe
                    + c.reconnects_no_replica
                    > 0)
    }

    /// Whether verification took replica `r`'s leg out of the flow (it is then no
    /// longer in the flow, whatever its connection's state).
    fn left_by_verification(&mut self, r: usize) -> bool {
        let c = self.t.rig.engine.counters();
        if c.standbys_unverifiable + c.takeovers_refused + c.catch_ups_failed == 0 {
            return false;
        }
        let addr = u32::from(REPLICA_IPS[r]);
        self.flow()
            .is_none_or(|f| f.legs().iter().any(|l| l.addr == addr && !l.alive))
    }

    /// Whether replica `r` carries the flow now, its replay done (reconnect mode: the
    /// other replica joins only by a replay, and has the log only at its end).
    fn in_flow(&mut self, r: usize) -> bool {
        let addr = u32::from(REPLICA_IPS[r]);
        let now = match self.flow() {
            None => self.joined[r],
            Some(f) => {
                f.legs().iter().any(|l| l.addr == addr && l.alive)
                    && f.replay
                        .is_none_or(|p| f.legs[usize::from(p.leg)].addr != addr)
            }
        };
        self.joined[r] |= now;
        now
    }

    fn flow(&self) -> Option<&tandem_engine::Flow> {
        let flows = self.t.rig.engine.flows();
        flows.next_used(0).map(|i| flows.get(i))
    }

    /// Replica index of the flow's active leg, and whether another leg is alive.
    fn roles(&self) -> Option<(usize, Option<usize>)> {
        let f = self.flow()?;
        if f.phase == FlowPhase::SynSent {
            return None;
        }
        let idx = |addr: u32| REPLICA_IPS.iter().position(|a| u32::from(*a) == addr);
        let active = idx(f.active_leg().addr)?;
        let standby = f
            .legs()
            .iter()
            .enumerate()
            .find(|(i, l)| *i != f.active as usize && l.alive && l.answered)
            .and_then(|(_, l)| idx(l.addr));
        Some((active, standby))
    }

    // ---- kills ------------------------------------------------------------------------

    fn maybe_kill(&mut self) {
        if self.kill_at.is_some() || self.sc.kill == Kill::None {
            return;
        }
        let due = match self.sc.trigger {
            Trigger::At(t) => self.now >= t,
            Trigger::ClientReceived(n) => self.capp.received.len() >= n,
            Trigger::ClientSent(n) => self.capp.sent >= n,
        };
        if !due {
            return;
        }
        let victim = match (self.sc.kill, self.roles()) {
            (Kill::Handshake, _) | (_, None) => 0,
            (Kill::Active, Some((a, standby))) => {
                // Reconnect mode: the replay protects it.
                self.unprotected = standby.is_none() && !self.sc.reconnect;
                a
            }
            (Kill::Standby, Some((a, _))) => 1 - a,
            (Kill::None, _) => unreachable!(),
        };
        self.killed[victim] = true;
        self.victim = Some(victim);
        self.kill_at = Some(self.now);
        self.detect_at = Some(self.now + self.sc.detect_ns);
        self.servers[victim].nic.rx.clear();
        self.servers[victim].nic.tx.clear();
    }

    fn maybe_detect(&mut self) {
        let (Some(at), Some(v)) = (self.detect_at, self.victim) else {
            return;
        };
        if self.now < at || self.down[v] {
            return;
        }
        self.down[v] = true;
        self.t.table.set_health(self.t.ids[v], Health::Down);
        self.t.rig.engine.request_failover_sweep();
        self.poll_engine();
    }

    /// New standbys: the killed standby comes back once it was found down; once the
    /// flow has it back (or, with `mid_replay`, as soon as it answered the replay's SYN),
    /// the active's kill is armed.
    fn maybe_reprotect(&mut self) {
        let Some(plan) = self.sc.reprotect.clone() else {
            return;
        };
        if self.revived_at.is_none() {
            let Some(v) = self.victim.filter(|&v| self.down[v]) else {
                return;
            };
            let at = *self.revive_at.get_or_insert(self.now + plan.revive_ns);
            if self.now >= at {
                self.revive(v);
            }
            return;
        }
        if self.active_armed {
            return;
        }
        let (reprotected, joining_answered) = {
            let reprotected = self.t.rig.engine.counters().reprotected > 0;
            let joining = self.flow().and_then(|f| {
                f.replay
                    .filter(|r| r.reprotect)
                    .map(|r| f.legs[usize::from(r.leg)].answered)
            });
            (reprotected, joining == Some(true))
        };
        let mid = plan.mid_replay && joining_answered && !reprotected;
        if !(reprotected || mid) {
            return;
        }
        self.active_armed = true;
        self.killed_mid_replay = mid;
        self.sc.kill = Kill::Active;
        self.sc.trigger = Trigger::At(self.now + if mid { 0 } else { plan.active_ns });
        self.earlier_victims += 1;
        self.kill_at = None;
        self.victim = None;
        self.detect_at = None;
    }

    /// Replica `r` restarted: a new server, listening, with no socket of the old flow;
    /// the control core finds it up.
    fn revive(&mut self, r: usize) {
        let mut h = Host::new(
            REPLICA_MACS[r],
            REPLICA_IPS[r],
            INSIDE_IP,
            &self.sc.replicas[r],
            self.now,
        );
        h.sock().listen(self.sc.port).expect("listen");
        self.servers[r] = h;
        self.sapps[r] = ServerApp::default();
        self.killed[r] = false;
        self.down[r] = false;
        self.joined[r] = false;
        self.detect_at = None;
        self.t.table.set_health(self.t.ids[r], Health::Up);
        self.revived_at = Some(self.now);
        self.poll_engine();
    }

    fn poll_engine(&mut self) {
        self.t.rig.poll(self.now);
        self.drain_engine();
        self.engine_next = self.now + MS;
    }

    // ---- hosts ------------------------------------------------------------------------

    fn step_hosts(&mut self) {
        let now = self.now;
        // Client.
        let due = |h: &mut Host| !h.nic.rx.is_empty() || h.poll_at(now).is_some_and(|t| t <= now);
        if due(&mut self.client) {
            for _ in 0..4 {
                self.client.poll(now);
                let busy = self.capp.step(now, self.client.sock());
                if !busy {
                    break;
                }
            }
            let tx = std::mem::take(&mut self.client.nic.tx);
            for f in tx {
                self.send(Node::Client, Node::Engine(Side::Outside), f);
            }
        }
        for r in 0..2 {
            if self.killed[r] {
                continue;
            }
            if !due(&mut self.servers[r]) {
                continue;
            }
            for _ in 0..4 {
                self.servers[r].poll(now);
                let busy = self.sapps[r].step(self.servers[r].sock());
                if !busy {
                    break;
                }
            }
            let tx = std::mem::take(&mut self.servers[r].nic.tx);
            for f in tx {
                self.send(Node::Replica(r), Node::Engine(Side::Inside), f);
            }
        }
    }

    // ---- properties -------------------------------------------------------------------

    fn check_step(&mut self) {
        // The client's connection.
        let st = self.client.state();
        if st != self.client_state {
            self.client_states.push((self.now, st));
            if st == State::Closed && self.client_state != State::TimeWait && !self.exposed() {
                self.fail(format!(
                    "client connection went {:?} -> Closed (RSTs received: {})",
                    self.client_state, self.client_rsts
                ));
            }
            self.client_state = st;
            if st == State::TimeWait && self.client_closed_at.is_none() {
                self.client_closed_at = Some(self.now);
            }
        }
        if self.client_rsts > 0 && !self.exposed() {
            self.fail(format!("the client received {} RST(s)", self.client_rsts));
        }
        if let Some(e) = &self.capp.error {
            let e = e.clone();
            self.fail(e);
        }
        if let Some(v) = &self.paws.violation {
            let v = v.clone();
            self.fail(v);
        }
        // The flow's handshake dropped a replica (looked at once, when it completes: a
        // new standby joining later is not answered for a while either).
        if !self.handshake_seen {
            let seen = self
                .flow()
                .filter(|f| f.phase != FlowPhase::SynSent)
                .map(|f| {
                    f.legs()
                        .iter()
                        .find(|l| !l.answered)
                        .and_then(|l| REPLICA_IPS.iter().position(|a| u32::from(*a) == l.addr))
                });
            if let Some(dropped) = seen {
                self.handshake_seen = true;
                self.handshake_dropped = dropped;
            }
        }
        // §3.5: what the client saw acknowledged has reached every replica still in the
        // flow, byte for byte.
        let acked = self.capp.acked(self.client.sock());
        for r in 0..2 {
            let input = &self.sapps[r].input;
            if input[..] != self.capp.stream[..input.len().min(self.capp.stream.len())]
                || input.len() > self.capp.stream.len()
            {
                let at = input
                    .iter()
                    .zip(&self.capp.stream)
                    .position(|(a, b)| a != b)
                    .unwrap_or(self.capp.stream.len());
                self.fail(format!(
                    "replica {r} read bytes the client did not send (from byte {at})"
                ));
            }
            if let Some(e) = &self.sapps[r].error {
                let e = format!("replica {r}: {e}");
                self.fail(e);
            }
            if self.down[r]
                || self.handshake_dropped == Some(r)
                || self.left_by_verification(r)
                || !self.in_flow(r)
            {
                continue;
            }
            let received = self.sapps[r].received(self.servers[r].sock());
            if acked > received {
                self.fail(format!(
                    "the client saw {acked} bytes acknowledged but replica {r} (still in the flow) \
                     has received only {received}"
                ));
            }
        }
    }

    fn finished(&mut self) -> bool {
        if self.exposed() && self.rsts_sent > 0 {
            // The engine reset the client (whether that RST survives the link is the
            // network's business).
            return true;
        }
        let Some(since) = self.client_closed_at else {
            return false;
        };
        if !self.capp.complete() {
            return false;
        }
        // The replicas close too, unless their last ACK was lost and the engine forgot
        // the flow after its linger time (their FIN retransmissions then go nowhere; the
        // client is not concerned).
        self.servers_closed = (0..2).all(|r| {
            self.killed[r]
                || !self.sapps[r].connected
                || matches!(self.servers[r].state(), State::Closed | State::TimeWait)
        });
        self.servers_closed || self.now >= since + 3_000 * MS
    }

    fn final_checks(&mut self) {
        let c = self.t.rig.engine.counters().clone();
        let mut bad = Vec::new();
        if c.standbys_diverged != 0 {
            // The replicas are deterministic here: a divergence is a false alarm.
            bad.push(format!("standbys_diverged = {}", c.standbys_diverged));
        }
        if !self.exposed() && self.took_over_at.is_some() && !self.capp.complete() {
            bad.push("client stream incomplete".to_string());
        }
        if !self.exposed() && self.took_over_at.is_none() {
            if !self.capp.complete() {
                bad.push("client stream incomplete".to_string());
            }
            if c.flows_lost != 0 {
                bad.push(format!("flows_lost = {}", c.flows_lost));
            }
            let expect_failovers = match self.sc.kill {
                // New standbys: the active's kill is armed late, and the stream may end
                // first.
                Kill::Active => u64::from(self.kill_at.is_some()),
                Kill::None | Kill::Standby => 0,
                Kill::Handshake => c.flow_failovers.min(1),
            };
            if c.flow_failovers != expect_failovers {
                bad.push(format!(
                    "flow_failovers = {}, expected {expect_failovers}",
                    c.flow_failovers
                ));
            }
            // A handshake kill can cost the first flow both legs without the client seeing
            // it: the primary answered and died, the backup's SYN was lost, and the flow
            // ends unanswered at the SYN-ACK deadline; the client's SYN retransmission
            // opens a second flow.
            let handshake_redo = self.sc.kill == Kill::Handshake && c.flows_created == 2;
            let max_legs_lost = if handshake_redo {
                2
            } else if self.sc.reprotect.is_some() {
                // A replica dropped at the handshake comes back as a new standby: each
                // kill may cost a leg besides.
                u64::from(self.victim.is_some())
                    + u64::from(self.handshake_dropped.is_some())
                    + self.earlier_victims
            } else {
                u64::from(self.victim.is_some() || self.handshake_dropped.is_some())
            };
            if c.legs_lost > max_legs_lost {
                bad.push(format!(
                    "legs_lost = {} (at most {max_legs_lost})",
                    c.legs_lost
                ));
            }
            if c.flows_created != 1 && !handshake_redo {
                bad.push(format!("flows_created = {}", c.flows_created));
            }
            if let Some(f) = self.flow().filter(|_| self.servers_closed) {
                if f.phase != FlowPhase::Closed {
                    bad.push(format!("flow is {:?} after both sides closed", f.phase));
                }
            }
        }
        for r in [
            DropReason::NoBuffer,
            DropReason::TxFull,
            DropReason::ControlFull,
            DropReason::NoNeighbour,
            DropReason::TableFull,
        ] {
            if c.dropped(r) != 0 {
                bad.push(format!("{r:?} drops = {}", c.dropped(r)));
            }
        }
        if c.signals_lost != 0 {
            bad.push(format!("signals_lost = {}", c.signals_lost));
        }
        if !bad.is_empty() {
            self.fail(format!("engine counters: {}", bad.join(", ")));
        }
    }

    fn stall(&self) -> Option<u64> {
        if self.sc.kill != Kill::Active || self.unprotected {
            return None;
        }
        let (kill, detect) = (self.kill_at?, self.detect_at?);
        let arr = &self.capp.arrivals;
        let before = arr.iter().rev().find(|a| a.0 <= kill).map_or(kill, |a| a.0);
        let after = arr.iter().position(|a| a.0 > detect)?;
        let mut prev = before;
        let mut worst = 0;
        for a in arr
            .iter()
            .filter(|a| a.0 > before)
            .take_while(|a| a.0 <= arr[after].0)
        {
            worst = worst.max(a.0 - prev);
            prev = a.0;
        }
        Some(worst)
    }

    // ---- the loop ---------------------------------------------------------------------

    fn run(&mut self) -> Result<Outcome, String> {
        self.warm_up();
        let mut steps = 0u64;
        loop {
            steps += 1;
            set_clock(self.now);
            self.maybe_kill();
            self.maybe_detect();
            self.maybe_reprotect();
            self.deliver();
            if self.now >= self.engine_next {
                self.poll_engine();
            }
            self.maybe_sync();
            self.maybe_take_over();
            self.step_hosts();
            self.maybe_kill();
            self.check_step();
            if self.failure.is_some() {
                break;
            }
            if self.finished() {
                self.final_checks();
                break;
            }
            if self.now > T0 + TIME_LIMIT || steps > 5_000_000 {
                self.fail(format!(
                    "no completion after {} ms simulated ({steps} steps)",
                    (self.now - T0) / MS
                ));
                break;
            }
            // Next event.
            let mut next = self.engine_next;
            if let Some(e) = self.events.peek() {
                next = next.min(e.at);
            }
            if let Some(t) = self
                .detect_at
                .filter(|_| self.victim.is_some_and(|v| !self.down[v]))
            {
                next = next.min(t);
            }
            if let Some(t) = self.revive_at.filter(|_| self.revived_at.is_none()) {
                next = next.min(t);
            }
            if self.took_over_at.is_none() {
                if let Some(Trigger::At(t)) = self.sc.takeover.as_ref().map(|p| p.trigger) {
                    next = next.min(t);
                }
                if self.sc.takeover.is_some() {
                    next = next.min(self.sync_next);
                }
            }
            if let (Trigger::At(t), None) = (self.sc.trigger, self.kill_at) {
                if self.sc.kill != Kill::None {
                    next = next.min(t);
                }
            }
            let now = self.now;
            if let Some(t) = self.client.poll_at(now) {
                next = next.min(t);
            }
            for r in 0..2 {
                if !self.killed[r] {
                    if let Some(t) = self.servers[r].poll_at(now) {
                        next = next.min(t);
                    }
                }
            }
            self.now = next.max(now + US);
        }
        if std::env::var_os("TANDEM_SIM_DUMP").is_some() {
            let why = self.failure.clone().unwrap_or_else(|| "passed".into());
            println!("{}", self.dump(&why));
        }
        match self.failure.take() {
            None => Ok(Outcome {
                kill: self.sc.kill,
                unprotected: self.unprotected,
                verification_gave_up: !self.unprotected && self.exposed(),
                stall_ns: self.stall(),
                sim_ns: self.now - T0,
                frames: self.frames,
                lost: self.lost,
                signals: self.t.signals.len(),
                replayed: self.t.rig.engine.counters().replayed_segments,
                acks_to_client: self.t.rig.engine.counters().acks_to_client,
                reprotect: self.sc.reprotect.as_ref().map(|_| {
                    let c = self.t.rig.engine.counters();
                    (
                        self.revived_at.is_some(),
                        c.reprotected > 0,
                        self.active_armed && self.kill_at.is_some(),
                        self.rsts_sent > 0,
                        c.replay_logs_ended > 0,
                        c.reprotects_failed > 0,
                    )
                }),
                takeover: self.sc.takeover.as_ref().map(|p| {
                    let reset = self.took_over_at.is_some() && self.rsts_sent > 0;
                    (self.installed, p.fresh, reset)
                }),
                reconnect: self.sc.reconnect.then(|| {
                    // The other replica without the timestamps the client agreed to
                    // counts as not like the first, as a liar does: refused.
                    let alike = !self.sc.liar && !self.ts_differ();
                    let c = self.t.rig.engine.counters();
                    (c.reconnects, c.reconnects_spliced, !alike)
                }),
            }),
            Some(f) => Err(self.dump(&f)),
        }
    }

    fn dump(&mut self, why: &str) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "seed {}: {why}", self.sc.seed);
        let _ = writeln!(s, "  at {} µs simulated", (self.now - T0) / US);
        let sc = &self.sc;
        let _ = writeln!(
            s,
            "  scenario: kill {:?} trigger {:?} detect {} µs drop_in_flight {} victim {:?} \
             kill_at {:?} µs unprotected {} handshake_dropped {:?} reconnect {} liar {}",
            sc.kill,
            sc.trigger,
            sc.detect_ns / US,
            sc.drop_in_flight,
            self.victim,
            self.kill_at.map(|t| (t - T0) / US),
            self.unprotected,
            self.handshake_dropped,
            sc.reconnect,
            sc.liar
        );
        let _ = writeln!(
            s,
            "  requests {} depth {} port {} any_port {} hold_per_flow {}",
            sc.requests.len(),
            sc.depth,
            sc.port,
            sc.any_port,
            sc.hold_per_flow
        );
        let _ = writeln!(s, "  client {:?}", sc.client);
        for r in 0..2 {
            let _ = writeln!(s, "  replica {r} {:?}", sc.replicas[r]);
        }
        for (i, l) in sc.links.iter().enumerate() {
            let _ = writeln!(s, "  link {} {:?}", LINK_NAMES[i], l);
        }
        let acked = self.capp.sent - self.client.sock().send_queue();
        let _ = writeln!(
            s,
            "  client: state {:?} sent {}/{} acked {} received {}/{} rsts {} states {:?}",
            self.client.state(),
            self.capp.sent,
            self.capp.stream.len(),
            acked,
            self.capp.received.len(),
            self.capp.expected.len(),
            self.client_rsts,
            self.client_states
                .iter()
                .map(|(t, st)| ((t - T0) / US, *st))
                .collect::<Vec<_>>()
        );
        for r in 0..2 {
            let st = self.servers[r].state();
            let q = self.servers[r].sock().recv_queue();
            let a = &self.sapps[r];
            let _ = writeln!(
                s,
                "  replica {r}: killed {} down {} state {st:?} read {} queued {q} answered {} \
                 output {}/{}",
                self.killed[r],
                self.down[r],
                a.input.len(),
                a.answered,
                a.written,
                a.output.len()
            );
        }
        let c: Counters = self.t.rig.engine.counters().clone();
        let drops: Vec<String> = DropReason::ALL
            .iter()
            .filter(|&&r| c.dropped(r) > 0)
            .map(|&r| format!("{}={}", r.label(), c.dropped(r)))
            .collect();
        let _ = writeln!(s, "  engine counters: {c:?}");
        let _ = writeln!(s, "  drops: {}", drops.join(" "));
        let _ = writeln!(s, "  signals: {:?}", self.t.signals);
        match self.flow() {
            Some(f) => {
                let _ = writeln!(s, "  flow: {f:#?}");
            }
            None => {
                let _ = writeln!(s, "  flow: none");
            }
        }
        let _ = writeln!(
            s,
            "  last {} frames (time µs, link, copies delivered):",
            self.trace.len()
        );
        for t in &self.trace {
            let what = if t.arp {
                "ARP".to_string()
            } else {
                let f = TcpFlags(t.flags);
                let mut fl = String::new();
                for (bit, c) in [
                    (TcpFlags::SYN, 'S'),
                    (TcpFlags::FIN, 'F'),
                    (TcpFlags::RST, 'R'),
                    (TcpFlags::ACK, '.'),
                ] {
                    if f.contains(bit) {
                        fl.push(c);
                    }
                }
                format!(
                    "[{fl}] seq {} ack {} len {} win {} ts {:?}",
                    t.seq, t.ack, t.len, t.win, t.ts
                )
            };
            let _ = writeln!(
                s,
                "    {:>10} {:<9} x{} {what}",
                (t.at - T0) / US,
                LINK_NAMES[t.link],
                t.copies
            );
        }
        s
    }
}
