//! The pair in a simulation: two [`Node`]s, each with a model of its engines' flow
//! table, over an HA link and a data segment that lose, duplicate, delay and reorder
//! what they carry, can be cut, and appliances that can be killed, restarted and frozen.

use std::collections::{BTreeMap, BTreeSet};

use tandem_engine::sync::SyncLeg;
use tandem_engine::sync::{SyncEvent, SyncRecord};
use tandem_engine::{FlowKey, MAX_COPIES};

use super::transport::Delivery;
use super::wire::{announce_frame, Flags, Heartbeat, Role};
use super::*;

const MS: u64 = 1_000_000;
const INTERVAL: u64 = 2 * MS;
const DEAD: u64 = 10 * MS;
const STEP: u64 = 100_000;
/// Wall-clock start of the simulation (incarnations are start times in ns).
const T0: u64 = 1_000_000_000_000;

/// splitmix64: deterministic per seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// True with probability `per_mille` / 1000.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.next() % 1000 < per_mille
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// What a channel does to what it carries.
#[derive(Clone, Copy, Default)]
struct Impair {
    loss: u64,
    dup: u64,
    /// Extra delay up to this (ns), drawn per datagram: reorders.
    jitter: u64,
    cut: bool,
}

const LATENCY: u64 = 50_000;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Chan {
    Ha,
    Data,
}

struct InFlight {
    at: u64,
    id: u64,
    to: usize,
    chan: Chan,
    bytes: Vec<u8>,
}

/// One appliance: its node and a model of its engines' flow table (flow → version).
struct Appliance {
    node: Node,
    running: bool,
    frozen: bool,
    /// Its data path carries traffic (set and cleared by the node's actions only).
    carrying: bool,
    flows: BTreeMap<u16, u64>,
    refreshed: BTreeSet<u16>,
    bulk: Option<(u64, Vec<u16>)>,
    quiescing: Option<Vec<u16>>,
    takeovers: Vec<u64>,
}

fn settings(node: u32, preferred: bool, incarnation: u64) -> Settings {
    Settings {
        node,
        preferred,
        incarnation,
        interval_ns: INTERVAL,
        dead_ns: DEAD,
        handover_timeout_ns: 300 * MS,
        sync: SyncSettings {
            batch_records: 5,
            batch_interval_ns: MS,
            window: 64,
            resend_ns: 5 * MS,
        },
    }
}

fn record(key: u16, version: u64, event: SyncEvent) -> SyncRecord {
    let mut legs = [SyncLeg::default(); MAX_COPIES];
    legs[0].addr = std::net::Ipv4Addr::new(198, 19, 1, 1);
    legs[0].alive = true;
    SyncRecord {
        legs,
        event,
        key: FlowKey {
            client_ip: 0xc612_0a01,
            client_port: key,
            vip: 0xc613_0001,
            vip_port: 80,
        },
        bytes_to_client: version,
        ..SyncRecord::default()
    }
}

impl Appliance {
    fn new(cfg: Settings, now: u64) -> Appliance {
        Appliance {
            node: Node::new(cfg, now),
            running: true,
            frozen: false,
            carrying: false,
            flows: BTreeMap::new(),
            refreshed: BTreeSet::new(),
            bulk: None,
            quiescing: None,
            takeovers: Vec::new(),
        }
    }

    fn deliver(&mut self, d: Delivery<'_>) {
        match d {
            Delivery::Record(r) if r.event == SyncEvent::Removed => {
                self.flows.remove(&r.key.client_port);
                self.refreshed.insert(r.key.client_port);
            }
            Delivery::Record(r) => {
                self.flows.insert(r.key.client_port, r.bytes_to_client);
                self.refreshed.insert(r.key.client_port);
            }
            Delivery::BulkStart => self.refreshed.clear(),
            Delivery::BulkDone => {
                let keep = std::mem::take(&mut self.refreshed);
                self.flows.retain(|k, _| keep.contains(k));
            }
        }
    }
}

struct Sim {
    now: u64,
    rng: Rng,
    boxes: [Appliance; 2],
    ha: Impair,
    data: Impair,
    in_flight: Vec<InFlight>,
    /// New flows, updates and removals per step, per mille.
    workload: u64,
    next_version: u64,
    /// Steps at which two running appliances owned the floating addresses.
    both_owned: u64,
    /// Datagrams and frames sent.
    sent: u64,
}

impl Sim {
    fn new(seed: u64, preferred_a: bool) -> Sim {
        Sim {
            now: T0,
            rng: Rng(seed),
            boxes: [
                Appliance::new(settings(1, preferred_a, T0), T0),
                Appliance::new(settings(2, false, T0 + 1), T0),
            ],
            ha: Impair::default(),
            data: Impair::default(),
            in_flight: Vec::new(),
            workload: 0,
            next_version: 1,
            both_owned: 0,
            sent: 0,
        }
    }

    fn send(&mut self, from: usize, chan: Chan, bytes: Vec<u8>) {
        let imp = match chan {
            Chan::Ha => self.ha,
            Chan::Data => self.data,
        };
        if imp.cut || self.rng.chance(imp.loss) {
            return;
        }
        let copies = if self.rng.chance(imp.dup) { 2 } else { 1 };
        for _ in 0..copies {
            let at = self.now + LATENCY + self.rng.below(imp.jitter + 1);
            self.sent += 1;
            self.in_flight.push(InFlight {
                at,
                id: self.sent,
                to: 1 - from,
                chan,
                bytes: bytes.clone(),
            });
        }
    }

    fn step(&mut self) {
        self.now += STEP;
        let now = self.now;
        // Deliveries due, to running appliances, in the order they are due (then sent);
        // a frozen one's socket keeps them.
        let boxes = &self.boxes;
        let (mut due, keep): (Vec<InFlight>, Vec<InFlight>) = std::mem::take(&mut self.in_flight)
            .into_iter()
            .partition(|p| p.at <= now && !(boxes[p.to].running && boxes[p.to].frozen));
        self.in_flight = keep;
        due.sort_by_key(|p| (p.at, p.id));
        for p in due {
            let b = &mut self.boxes[p.to];
            if !b.running {
                continue;
            }
            match p.chan {
                Chan::Ha => {
                    let Appliance {
                        node,
                        flows,
                        refreshed,
                        ..
                    } = b;
                    let mut sink = Appliance {
                        flows: std::mem::take(flows),
                        refreshed: std::mem::take(refreshed),
                        ..Appliance::new(settings(9, false, 0), 0)
                    };
                    node.on_datagram(now, &p.bytes, |d| sink.deliver(d));
                    *flows = sink.flows;
                    *refreshed = sink.refreshed;
                }
                Chan::Data => b.node.on_announcement(now, &p.bytes),
            }
        }
        for k in 0..2 {
            if self.boxes[k].running && !self.boxes[k].frozen {
                self.run_box(k);
            }
        }
        let owners = self
            .boxes
            .iter()
            .filter(|b| b.running && !b.frozen && b.node.owns_addresses())
            .count();
        if owners > 1 {
            self.both_owned += 1;
        }
        for b in &self.boxes {
            if b.running && !b.frozen {
                assert_eq!(
                    b.carrying,
                    b.node.owns_addresses(),
                    "the data path follows the node's actions"
                );
            }
        }
    }

    fn run_box(&mut self, k: usize) {
        let now = self.now;
        // The workload: only an appliance that carries traffic sees flows change.
        if self.boxes[k].carrying && self.rng.chance(self.workload) {
            let key = self.rng.below(200) as u16;
            let version = self.next_version;
            self.next_version += 1;
            let b = &mut self.boxes[k];
            let rec = match b.flows.get(&key) {
                None => {
                    b.flows.insert(key, version);
                    record(key, version, SyncEvent::Handshake)
                }
                Some(_) if self.rng.chance(300) => {
                    b.flows.remove(&key);
                    record(key, version, SyncEvent::Removed)
                }
                Some(_) => {
                    b.flows.insert(key, version);
                    record(key, version, SyncEvent::Refresh)
                }
            };
            b.node.offer(now, &rec);
        }
        let b = &mut self.boxes[k];
        // A bulk and a handover's final records, as fast as the window takes them.
        if let Some((stream, keys)) = b.bulk.as_mut() {
            while b.node.sync_room() > 0 {
                let Some(key) = keys.pop() else { break };
                if let Some(&v) = b.flows.get(&key) {
                    b.node.offer(now, &record(key, v, SyncEvent::Refresh));
                }
            }
            if keys.is_empty() {
                b.node.bulk_done(*stream);
                b.bulk = None;
            }
        }
        if let Some(keys) = b.quiescing.as_mut() {
            while b.node.sync_room() > 0 {
                let Some(key) = keys.pop() else { break };
                if let Some(&v) = b.flows.get(&key) {
                    b.node.offer(now, &record(key, v, SyncEvent::Refresh));
                }
            }
            if keys.is_empty() {
                b.quiescing = None;
                b.node.quiesced(now);
            }
        }
        b.node.poll(now);
        self.act(k);
        let mut buf = [0u8; 2048];
        for _ in 0..1000 {
            let Some(len) = self.boxes[k].node.poll_transmit(now, &mut buf) else {
                break;
            };
            self.send(k, Chan::Ha, buf[..len].to_vec());
        }
    }

    fn act(&mut self, k: usize) {
        while let Some(a) = self.boxes[k].node.poll_action() {
            let b = &mut self.boxes[k];
            match a {
                Action::BecomeActive { takeover, .. } => {
                    b.carrying = true;
                    b.quiescing = None;
                    if takeover {
                        b.takeovers.push(self.now);
                    }
                }
                Action::BecomeStandby { .. } | Action::Suspend => {
                    b.carrying = false;
                    b.bulk = None;
                    b.quiescing = None;
                }
                Action::Resume => b.carrying = true,
                Action::GratuitousArp => {}
                Action::Announce => {
                    let hb = b.node.announcement();
                    let mut frame = [0u8; 128];
                    let len = announce_frame([2, 0, 0, 0, 0, k as u8], &hb, &mut frame)
                        .expect("room for the frame");
                    self.send(k, Chan::Data, frame[..len].to_vec());
                }
                Action::StartBulk { stream } => {
                    b.bulk = Some((stream, b.flows.keys().copied().collect()));
                }
                Action::Quiesce => {
                    b.carrying = false;
                    b.quiescing = Some(b.flows.keys().copied().collect());
                }
            }
        }
    }

    fn run(&mut self, ns: u64) {
        for _ in 0..ns / STEP {
            self.step();
        }
    }

    /// Runs until `done` holds, at most `ns`; whether it did.
    fn run_until(&mut self, ns: u64, mut done: impl FnMut(&Sim) -> bool) -> bool {
        for _ in 0..ns / STEP {
            if done(self) {
                return true;
            }
            self.step();
        }
        done(self)
    }

    fn role(&self, k: usize) -> Role {
        self.boxes[k].node.role()
    }

    fn kill(&mut self, k: usize) {
        self.boxes[k].running = false;
        self.in_flight.retain(|p| p.to != k);
    }

    fn restart(&mut self, k: usize, preferred: bool) {
        let cfg = settings(k as u32 + 1, preferred, self.now);
        self.boxes[k] = Appliance::new(cfg, self.now);
    }

    fn command(&mut self, k: usize, cmd: Command) -> Result<Accepted, CommandError> {
        let r = self.boxes[k].node.command(self.now, cmd);
        self.act(k);
        r
    }

    /// Settled: one active, the other a ready standby whose table equals the active's.
    fn in_sync(&self, active: usize) -> bool {
        let (a, s) = (&self.boxes[active], &self.boxes[1 - active]);
        a.node.role() == Role::Active
            && s.node.role() == Role::Standby
            && s.node.ready()
            && a.node.counters(self.now).sync_unacked == 0
            && a.flows == s.flows
    }
}

fn settle(sim: &mut Sim) {
    assert!(
        sim.run_until(3_000 * MS, |s| s.role(0) != Role::Initial
            && s.role(1) != Role::Initial
            && (s.in_sync(0) || s.in_sync(1))),
        "the pair settles: roles {:?} {:?}, ready {} {}, unacked {} {}, flows {} {}, differ {:?}",
        sim.role(0),
        sim.role(1),
        sim.boxes[0].node.ready(),
        sim.boxes[1].node.ready(),
        sim.boxes[0].node.counters(sim.now).sync_unacked,
        sim.boxes[1].node.counters(sim.now).sync_unacked,
        sim.boxes[0].flows.len(),
        sim.boxes[1].flows.len(),
        sim.boxes[0]
            .flows
            .iter()
            .filter(|(k, v)| sim.boxes[1].flows.get(k) != Some(v))
            .take(5)
            .collect::<Vec<_>>(),
    );
}

#[test]
fn two_nodes_started_together_elect_the_preferred_one_and_the_other_becomes_a_ready_standby() {
    let mut sim = Sim::new(1, true);
    settle(&mut sim);
    assert_eq!((sim.role(0), sim.role(1)), (Role::Active, Role::Standby));
    assert_eq!(sim.boxes[0].node.epoch(), 1);
    assert_eq!(sim.boxes[1].node.epoch(), 1);
    assert!(sim.boxes[1].node.ready());
    assert_eq!(sim.both_owned, 0);
    // Without a preferred node, the higher HA address wins.
    let mut sim = Sim::new(1, false);
    settle(&mut sim);
    assert_eq!((sim.role(0), sim.role(1)), (Role::Standby, Role::Active));
}

#[test]
fn a_lone_node_becomes_active_after_a_dead_time_and_a_late_peer_joins_as_standby() {
    let mut sim = Sim::new(2, false);
    sim.kill(1);
    sim.run(DEAD - STEP);
    assert_eq!(sim.role(0), Role::Initial);
    sim.run(2 * STEP);
    assert_eq!(sim.role(0), Role::Active);
    // A node that finds an active peer becomes its standby, whatever its preference.
    sim.restart(1, true);
    sim.workload = 300;
    sim.run(50 * MS);
    sim.workload = 0;
    settle(&mut sim);
    assert_eq!((sim.role(0), sim.role(1)), (Role::Active, Role::Standby));
    assert_eq!(sim.both_owned, 0);
}

#[test]
fn the_standby_copy_equals_the_active_table_over_a_lossy_duplicating_reordering_link() {
    for seed in 0..16 {
        let mut sim = Sim::new(100 + seed, true);
        sim.ha = Impair {
            loss: 150,
            dup: 100,
            jitter: 3 * MS,
            cut: false,
        };
        // Announcements keep the standby from taking over when heartbeats are lost.
        sim.data = Impair::default();
        sim.workload = 500;
        sim.run(400 * MS);
        sim.workload = 0;
        settle(&mut sim);
        assert_eq!(sim.role(0), Role::Active, "seed {seed}");
        let c = sim.boxes[0].node.counters(sim.now);
        assert!(
            c.sync_records_resent > 0,
            "seed {seed}: losses were repaired"
        );
        let r = sim.boxes[1].node.counters(sim.now);
        assert!(r.sync_batches_duplicate > 0 && r.sync_batches_out_of_order > 0);
        assert_eq!(sim.both_owned, 0, "seed {seed}");
        assert!(!sim.boxes[0].flows.is_empty());
    }
}

#[test]
fn the_standby_takes_over_within_a_dead_time_of_the_active_being_killed_with_its_flows() {
    let mut sim = Sim::new(3, true);
    sim.workload = 400;
    sim.run(200 * MS);
    sim.workload = 0;
    settle(&mut sim);
    let at_kill = sim.boxes[0].flows.clone();
    sim.kill(0);
    let killed = sim.now;
    assert!(sim.run_until(DEAD + 2 * INTERVAL, |s| s.role(1) == Role::Active));
    let took = sim.boxes[1].takeovers[0];
    assert!(took - killed <= DEAD + INTERVAL, "{} ns", took - killed);
    assert_eq!(sim.boxes[1].node.epoch(), 2);
    assert_eq!(sim.boxes[1].flows, at_kill);
    let c = sim.boxes[1].node.counters(sim.now);
    assert_eq!(c.takeovers, 1);
    assert!(c.last_detection_ns >= DEAD && c.last_detection_ns <= DEAD + INTERVAL);
}

#[test]
fn cutting_only_the_ha_link_never_makes_a_second_active_and_the_sync_resumes_with_a_bulk() {
    for seed in 0..8 {
        let mut sim = Sim::new(200 + seed, true);
        settle(&mut sim);
        sim.workload = 400;
        sim.ha.cut = true;
        sim.run(500 * MS);
        assert_eq!((sim.role(0), sim.role(1)), (Role::Active, Role::Standby));
        assert_eq!(sim.both_owned, 0, "seed {seed}");
        let bulks = sim.boxes[0].node.counters(sim.now).sync_bulk_syncs;
        sim.ha.cut = false;
        sim.workload = 0;
        settle(&mut sim);
        assert!(sim.boxes[0].node.counters(sim.now).sync_bulk_syncs > bulks);
        assert_eq!(sim.boxes[1].node.counters(sim.now).takeovers, 0);
    }
}

#[test]
fn a_partition_of_both_channels_makes_two_actives_and_the_older_epoch_steps_down_when_they_meet() {
    let mut sim = Sim::new(4, true);
    settle(&mut sim);
    sim.ha.cut = true;
    sim.data.cut = true;
    sim.run(3 * DEAD);
    // Each side serves what it can reach: that is all a partition allows.
    assert_eq!((sim.role(0), sim.role(1)), (Role::Active, Role::Active));
    assert_eq!(sim.boxes[1].node.epoch(), 2);
    // The data segment comes back first: the announcements alone end it.
    sim.data.cut = false;
    assert!(sim.run_until(3 * INTERVAL, |s| s.role(0) == Role::Standby));
    assert_eq!(sim.role(1), Role::Active);
    assert_eq!(sim.boxes[0].node.counters(sim.now).step_downs, 1);
    let owned = sim.both_owned;
    sim.ha.cut = false;
    settle(&mut sim);
    assert_eq!(sim.both_owned, owned, "no second owner after they met");
}

#[test]
fn a_frozen_active_stops_its_data_path_on_resuming_and_steps_down_to_the_new_active() {
    let mut sim = Sim::new(5, true);
    sim.workload = 300;
    sim.run(100 * MS);
    sim.workload = 0;
    settle(&mut sim);
    sim.boxes[0].frozen = true;
    sim.run(5 * DEAD);
    assert_eq!(sim.role(1), Role::Active);
    sim.boxes[0].frozen = false;
    // Whatever it does first on resuming, it never owns the addresses again.
    sim.run(2 * INTERVAL);
    assert_eq!(sim.role(0), Role::Standby);
    assert_eq!(sim.both_owned, 0);
    let c = sim.boxes[0].node.counters(sim.now);
    assert_eq!((c.stalls, c.step_downs), (1, 1));
    // It becomes the new active's ready standby.
    settle(&mut sim);
    assert!(sim.in_sync(1));
}

#[test]
fn an_active_that_was_only_starved_resumes_when_its_peer_did_not_take_over() {
    let mut sim = Sim::new(6, true);
    settle(&mut sim);
    // A stall shorter than the dead time: the standby keeps waiting.
    sim.boxes[0].frozen = true;
    sim.run(DEAD * 6 / 10);
    sim.boxes[0].frozen = false;
    sim.step();
    assert!(!sim.boxes[0].node.owns_addresses());
    assert!(sim.run_until(2 * INTERVAL, |s| s.boxes[0].node.owns_addresses()));
    assert_eq!((sim.role(0), sim.role(1)), (Role::Active, Role::Standby));
}

#[test]
fn the_preferred_node_rejoins_as_a_standby_and_may_not_become_active_before_its_bulk_ends() {
    let mut sim = Sim::new(7, true);
    sim.workload = 400;
    sim.run(100 * MS);
    sim.kill(0);
    sim.run(2 * DEAD);
    assert_eq!(sim.role(1), Role::Active);
    sim.run(100 * MS);
    // A slow link: its bulk takes a while.
    sim.ha.jitter = 2 * MS;
    sim.restart(0, true);
    assert!(sim.run_until(DEAD, |s| s.role(0) == Role::Standby));
    assert!(!sim.boxes[0].node.ready());
    assert_eq!(sim.command(0, Command::Active), Err(CommandError::NotReady));
    sim.workload = 0;
    settle(&mut sim);
    assert!(sim.in_sync(1));
    assert_eq!(
        sim.role(0),
        Role::Standby,
        "a rejoining node does not preempt"
    );
    assert_eq!(sim.both_owned, 0);
}

#[test]
fn a_manual_switch_back_hands_over_only_once_every_final_record_is_acked() {
    let mut sim = Sim::new(8, true);
    sim.kill(0);
    sim.run(2 * DEAD);
    sim.restart(0, true);
    sim.workload = 400;
    sim.run(200 * MS);
    settle(&mut sim);
    assert!(sim.in_sync(1));
    // The workload goes on during the switch: what arrives while the active is
    // quiesced is dropped, and its final records are all at the peer before it lets go.
    assert_eq!(sim.command(0, Command::Active), Ok(Accepted::Started));
    let mut at_switch = None;
    let switched = sim.run_until(100 * MS, |s| {
        if s.boxes[0].takeovers.len() == 1 && at_switch.is_none() {
            at_switch = Some((s.boxes[0].flows.clone(), s.boxes[1].flows.clone()));
        }
        s.role(0) == Role::Active && s.role(1) == Role::Standby
    });
    assert!(switched);
    let (new_active, old_active) = at_switch.expect("a takeover");
    assert_eq!(
        new_active, old_active,
        "the new active has every final record"
    );
    assert_eq!(sim.both_owned, 0);
    assert_eq!(sim.boxes[0].node.counters(sim.now).handovers, 1);
    assert_eq!(sim.boxes[1].node.counters(sim.now).step_downs, 0);
    sim.workload = 0;
    settle(&mut sim);
    assert!(sim.in_sync(0));
    // And back again from the other side.
    assert_eq!(sim.command(0, Command::Standby), Ok(Accepted::Started));
    assert!(sim.run_until(100 * MS, |s| s.role(1) == Role::Active
        && s.role(0) == Role::Standby));
    assert_eq!(sim.command(1, Command::Active), Ok(Accepted::Already));
}

#[test]
fn standing_down_is_refused_while_the_peer_is_not_a_ready_standby() {
    let mut sim = Sim::new(9, true);
    sim.kill(1);
    sim.run(2 * DEAD);
    assert_eq!(
        sim.command(0, Command::Standby),
        Err(CommandError::PeerNotReady)
    );
    assert_eq!(sim.command(0, Command::Active), Ok(Accepted::Already));
    assert_eq!(sim.role(0), Role::Active);
}

#[test]
fn a_handover_the_peer_never_completes_is_given_up_and_the_active_resumes() {
    let mut sim = Sim::new(10, true);
    settle(&mut sim);
    assert_eq!(sim.command(0, Command::Standby), Ok(Accepted::Started));
    // The peer dies before it takes over; the data segment still carries nothing of it.
    sim.kill(1);
    assert!(sim.run_until(2 * DEAD, |s| s.boxes[0].node.owns_addresses()));
    assert_eq!(sim.role(0), Role::Active);
    assert_eq!(sim.boxes[0].node.counters(sim.now).handovers_failed, 1);
}

#[test]
fn a_heartbeat_of_an_older_epoch_is_ignored() {
    let mut sim = Sim::new(11, true);
    settle(&mut sim);
    sim.kill(0);
    sim.run(2 * DEAD);
    assert_eq!(sim.boxes[1].node.epoch(), 2);
    // A late heartbeat of the dead active's term changes nothing.
    let now = sim.now;
    let stale = Heartbeat {
        role: Role::Active,
        flags: Flags(Flags::READY | Flags::DATA_OK | Flags::PREFERRED),
        node: 1,
        incarnation: T0,
        epoch: 1,
        ..Heartbeat::default()
    };
    sim.boxes[1].node.on_heartbeat(now, stale, Channel::HaLink);
    sim.act(1);
    assert_eq!(sim.role(1), Role::Active);
    assert!(sim.boxes[1].node.counters(now).stale_heartbeats >= 1);
    // On a standby, only stale claims: it takes over when the dead time runs out.
    let mut node = Node::new(settings(2, false, T0), T0);
    let current = Heartbeat { epoch: 5, ..stale };
    node.on_heartbeat(T0 + MS, current, Channel::HaLink);
    assert_eq!((node.role(), node.epoch()), (Role::Standby, 5));
    for t in 1..=DEAD / MS {
        node.on_heartbeat(T0 + MS + t * MS, stale, Channel::HaLink);
        node.poll(T0 + MS + t * MS);
    }
    assert_eq!((node.role(), node.epoch()), (Role::Active, 6));
}

#[test]
fn the_active_data_ports_down_hand_the_role_to_a_ready_standby() {
    let mut sim = Sim::new(12, true);
    sim.workload = 300;
    sim.run(100 * MS);
    sim.workload = 0;
    settle(&mut sim);
    let now = sim.now;
    sim.boxes[0].node.set_data_ok(now, false);
    sim.act(0);
    assert!(sim.run_until(3 * INTERVAL, |s| s.role(1) == Role::Active));
    assert!(sim.run_until(3 * INTERVAL, |s| s.role(0) == Role::Standby));
    let c = sim.boxes[1].node.counters(sim.now);
    assert_eq!((c.handovers, c.peer_data_down_takeovers), (1, 0));
    assert_eq!(sim.both_owned, 0);
    assert!(sim.run_until(100 * MS, |s| s.in_sync(1)));
}

#[test]
fn a_full_window_loses_records_counted_without_blocking_and_a_bulk_resync_replaces_them() {
    let mut sim = Sim::new(13, true);
    settle(&mut sim);
    // The peer lives (announcements) but acks nothing: the window fills.
    sim.ha.cut = true;
    sim.workload = 1000;
    // Shorter than a dead time: the active still counts the peer as alive and streams.
    sim.run(DEAD - 2 * MS);
    let c = sim.boxes[0].node.counters(sim.now);
    assert!(c.sync_unacked > 0);
    let mut lost = c.sync_records_lost;
    if lost == 0 {
        // Fill the rest of the window by hand, then one more.
        let now = sim.now;
        for i in 0..(64 * 5 + 10) {
            sim.boxes[0]
                .node
                .offer(now, &record(i as u16, 1, SyncEvent::Refresh));
        }
        lost = sim.boxes[0].node.counters(now).sync_records_lost;
    }
    assert!(lost > 0, "a full window loses records");
    let bulks = sim.boxes[0].node.counters(sim.now).sync_bulk_syncs;
    sim.ha.cut = false;
    sim.workload = 0;
    settle(&mut sim);
    let c = sim.boxes[0].node.counters(sim.now);
    assert!(c.sync_bulk_syncs > bulks, "a bulk resync followed the loss");
    assert!(sim.in_sync(0));
}

#[test]
fn garbage_from_the_peer_is_counted_and_never_a_panic() {
    let mut rng = Rng(14);
    let mut node = Node::new(settings(1, false, T0), T0);
    let mut good = Heartbeat::default().encode();
    good[8..12].copy_from_slice(&2u32.to_be_bytes());
    for i in 0..20_000u64 {
        let len = rng.below(1400) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // Half of them start like a real message, to get past the magic.
        if i % 2 == 0 && len >= 4 {
            let magic: &[u8; 4] = if i % 4 == 0 { b"THBT" } else { b"TSYN" };
            bytes[..4].copy_from_slice(magic);
        }
        node.on_datagram(T0 + i, &bytes, |_| {});
        node.on_announcement(T0 + i, &bytes);
        node.poll(T0 + i);
    }
    assert!(node.counters(T0).malformed > 30_000);
}

#[test]
fn a_peer_claiming_the_last_epoch_overflows_nothing() {
    // Found by the ha_decode fuzz target: a standby that adopted u64::MAX took over.
    let mut node = Node::new(settings(1, false, T0), T0);
    let last = Heartbeat {
        role: Role::Active,
        node: 2,
        incarnation: T0,
        epoch: u64::MAX,
        ..Heartbeat::default()
    };
    node.on_heartbeat(T0 + MS, last, Channel::HaLink);
    assert_eq!((node.role(), node.epoch()), (Role::Standby, u64::MAX));
    node.poll(T0 + MS + DEAD);
    assert_eq!((node.role(), node.epoch()), (Role::Active, u64::MAX));
    node.poll(u64::MAX);
}
