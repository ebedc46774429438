//! The control core (the EAL main lcore): ARP and the neighbour table, ICMP echo, and
//! the rings to and from the workers (DESIGN §4).
//!
//! - **ARP** (RFC 826): answers requests for the outside address and every VIP on the
//!   outside port, for the inside address on the inside port, always with that port's
//!   MAC. Learns from every request and reply whose sender is a neighbour it tracks.
//! - **Neighbours** ([`crate::neighbour`]): each replica's next hop (itself, or the inside
//!   gateway) and the gateways. Unresolved ones are asked for every [`RETRY_NS`];
//!   resolved ones are refreshed every `timeouts.arp_refresh`, an unanswered refresh
//!   retried, and a message that would change a known MAC applied only once confirmed (a
//!   MAC is never forgotten: a stale MAC is better than a black hole). A replica's MAC
//!   goes to the shared replica table, where the workers read it.
//! - **ICMP echo** to the appliance's addresses (and to the VIPs) is answered in place.
//! - Everything else that reaches it is dropped and counted (`not_served`).
//!
//! - **Floods** (issue #14): each worker passes frames for the appliance through its
//!   [`crate::gate`]; probe answers and ARP replies come over an answer ring per worker,
//!   drained to the bottom every pass before the control rings, which are drained a
//!   bounded number of bursts a pass. The health horizon therefore depends on the
//!   answer rings only: a flood that keeps a control ring busy no longer holds it.
//!
//! - **Health** (DESIGN §5, [`crate::health`]): SYN probes from the inside address to
//!   every probe port of every replica, the workers' signals, and a replica whose ARP
//!   refresh and its retries go unanswered (confirmed by a probe burst), decide
//!   failovers: the replica is flipped to `Down` in the shared table and every worker is
//!   sent [`Command::FailoverSweep`]; after `rise` good probes it is `Up` again (new
//!   flows only). Every change is one `tracing` event with
//!   its cause and the time from the first sign to the switch.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tandem_dpdk::ring::{Consumer, Producer};
use tandem_dpdk::{Burst, Mbuf, Mempool, TxQueue};
use tandem_engine::{CounterSet, Counters, Health, ReplicaId, ReplicaTable, Side, SignalKind};
use tandem_wire::ipv4::protocol;
use tandem_wire::{build, ArpPacket, EtherType, EthernetFrame, Icmpv4Packet, Ipv4Packet, MacAddr};

use crate::answer::{
    self, Change as Changed, DataPath, Operator, Percentiles, ReplicaChange, ReplicaStatus,
    Response, ServiceStatus,
};
use crate::clock::Clock;
use crate::health::{self, Cause, Change, Monitor, ProbeReply, ProbeSend};
use crate::listing::{FlowFilter, FlowList, LIST_WAIT_NS};
use crate::mgmt::{Pending, Request};
use crate::msg::{Command, SignalMsg};
use crate::neighbour::{Decided, Heard};
pub use crate::neighbour::{Neighbour, RETRY_NS};
use crate::stats::{ControlCounters, IoCounters, WorkerStats};

/// Least time between two requests for an unresolved neighbour that workers need.
pub const HURRY_NS: u64 = 100_000_000;
/// A worker that has not published its counters for this long has stopped (it publishes
/// every millisecond): the control core stops the appliance rather than black-hole its
/// flows.
pub const WORKER_SILENCE_NS: u64 = 5_000_000_000;
/// How often the count of unprotected flows is read (and logged when it changed).
const REPORT_NS: u64 = 1_000_000_000;
/// How often the pools and the ports' extended statistics are read for the metrics.
const DEVICE_STATS_NS: u64 = 1_000_000_000;
/// Bursts taken from each worker's ring per pass of the control loop.
const DRAIN_BURSTS: usize = 64;
/// Sleep of the control loop when a pass found nothing to do.
const IDLE_SLEEP: Duration = Duration::from_micros(200);

/// How the control core sends on one port.
pub enum ControlTx {
    /// Its own transmit queue.
    Own(TxQueue),
    /// Through a worker that owns a queue (the port has no queue to spare).
    ViaWorker(Producer<Mbuf>),
}

/// One port as the control core sees it.
pub struct ControlPort {
    /// Which side.
    pub side: Side,
    /// DPDK port id (received mbufs carry it).
    pub port_id: u16,
    /// The port's MAC.
    pub mac: MacAddr,
    /// The appliance's address on it.
    pub address: Ipv4Addr,
    /// Addresses answered for in ARP and ICMP echo (the address, and the VIPs outside;
    /// with a pair, its floating addresses on this port's subnet).
    pub answers: Vec<Ipv4Addr>,
    /// Of `answers`, those that move with the active role of a pair (the VIPs and the
    /// `ha.floating` addresses on this port): answered only while this appliance owns
    /// them, announced by gratuitous ARPs when it takes them. Empty without a pair.
    pub floating: Vec<Ipv4Addr>,
    /// How to send.
    pub tx: ControlTx,
}

/// What an operator set on a replica (`tandem drain` / `tandem fail`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admin {
    /// No new flows; probes may take it down and up again, to `Draining`.
    Drained,
    /// Down now; probes do not bring it back.
    Failed,
}

/// Most replicas in one service's pool (`tandem add` refuses more).
pub use tandem_engine::MAX_POOL;
/// A `flows` answer goes this long before the client's deadline at the latest.
const ANSWER_MARGIN: Duration = Duration::from_millis(200);

/// A service as the control core knows it, for `flows`, `add` and `remove`.
#[derive(Clone, Debug)]
pub struct ServiceEntry {
    /// Its name.
    pub name: String,
    /// Its VIP.
    pub vip: Ipv4Addr,
    /// Its port(s).
    pub port: tandem_engine::ServicePort,
    /// Its pool, in the workers' order.
    pub pool: Vec<ReplicaId>,
    /// Its probe settings (for replicas added to it).
    pub health: health::Settings,
}

/// A `tandem flows` request waiting for the workers' lists.
pub struct Listing {
    /// The request and where its answer goes.
    pub pending: Pending,
    /// The request number written into the workers' lists.
    pub asked: u64,
    /// When it was asked (control clock).
    pub since_ns: u64,
    /// Flows to show.
    pub limit: usize,
}

/// Everything the control core owns.
pub struct Control {
    /// The services, for `flows`, `add` and `remove`.
    pub services: Vec<ServiceEntry>,
    /// The inside port: the next hop of a replica added at run time.
    pub inside: tandem_config::Port,
    /// Each worker's flow list (same order as `workers`).
    pub lists: Vec<Arc<FlowList>>,
    /// The `flows` request being answered.
    pub listing: Option<Listing>,
    /// Number of the last `flows` request.
    pub list_seq: u64,
    /// Where its counters are copied for the metrics listener.
    pub shared: Option<Arc<crate::metrics::Shared>>,
    /// Requests from the management socket (none: no socket).
    pub mgmt: Option<std::sync::mpsc::Receiver<crate::mgmt::Pending>>,
    /// Every replica's `service/replica` name.
    pub names: Vec<(String, ReplicaId)>,
    /// Operators' settings, by replica.
    pub admin: Vec<(ReplicaId, Admin)>,
    /// The services as `status` shows them.
    pub service_status: Vec<ServiceStatus>,
    /// Outside then inside.
    pub ports: [ControlPort; 2],
    /// Frames from each worker (all but probe answers and ARP replies).
    pub from_workers: Vec<Consumer<Mbuf>>,
    /// Probe answers and ARP replies from each worker (see [`crate::gate`]).
    pub answers: Vec<Consumer<Mbuf>>,
    /// Signals from each worker.
    pub signals: Vec<Consumer<SignalMsg>>,
    /// Orders to each worker.
    pub commands: Vec<Producer<Command>>,
    /// Buffers for the frames it writes.
    pub pool: Mempool,
    /// The neighbours it resolves.
    pub neighbours: Vec<Neighbour>,
    /// The shared replica table (MACs written here).
    pub replicas: Arc<ReplicaTable>,
    /// Refresh period of resolved neighbours.
    pub arp_refresh_ns: u64,
    /// Counters.
    pub counters: ControlCounters,
    /// Each worker's lcore and published counters, watched for liveness.
    pub workers: Vec<(u32, Arc<WorkerStats>)>,
    /// Health probes and failover decisions.
    pub monitor: Monitor,
    /// Flows on which each replica's output diverged (§3.12), and the out-of-sync alarm.
    pub divergence: tandem_control::divergence::Divergence,
    /// The profile it started with, or last reloaded (the pools as they run are in
    /// `services`).
    pub profile: tandem_config::Profile,
    /// Its file, SIGHUP and the log level, for `tandem reload` (none: reload refused).
    pub reloading: Option<crate::Reloading>,
    /// Each worker's engine changes (same order as `workers`).
    pub mailboxes: Vec<Arc<crate::msg::Mailbox>>,
    /// systemd (`Type=notify`): readiness on the first pass, the watchdog fed by every
    /// pass, so a control core that hangs gets the appliance restarted.
    pub service: tandem_control::notify::ServiceManager,
    /// The appliance pair, when the profile has an `ha` section ([`crate::pair`]).
    pub pair: Option<crate::pair::Pair>,
    /// The pair's actions of one pass (kept: no allocation per pass).
    pub pair_actions: Vec<tandem_control::ha::Action>,
    /// The packet buffer pools and the ports' extended statistics.
    pub device: crate::device::DeviceReader,
}

/// What to do with a frame that reached the control core.
enum Verdict {
    /// Send it (rewritten in place) out of the port it came in on.
    Reply,
    /// Free it.
    Drop,
}

impl Control {
    fn side_of(&self, port_id: u16) -> Option<usize> {
        self.ports.iter().position(|p| p.port_id == port_id)
    }

    /// Runs until `stop` is set.
    pub fn run(&mut self, stop: &AtomicBool, clock: &Clock) {
        let mut burst: Burst<Mbuf> = Burst::new();
        let mut out: [Burst<Mbuf>; 2] = [Burst::new(), Burst::new()];
        // (publishes seen, when they last moved) per worker.
        let mut alive: Vec<(u64, u64)> = vec![(0, clock.now_ns()); self.workers.len()];
        let (mut unprotected, mut next_report, mut next_device) = (0u64, 0u64, 0u64);
        while !stop.load(Ordering::Relaxed) {
            let now = clock.now_ns();
            self.service.tick(now);
            if now >= next_report {
                next_report = now + REPORT_NS;
                unprotected = self.report_unprotected(unprotected);
            }
            if now >= next_device {
                next_device = now + DEVICE_STATS_NS;
                if let Some(sh) = &self.shared {
                    let read = self.device.read();
                    // Never waits on the metrics thread: a busy lock skips one second.
                    if let Ok(mut d) = sh.device.try_lock() {
                        *d = read;
                    }
                }
            }
            for ((lcore, stats), seen) in self.workers.iter().zip(alive.iter_mut()) {
                let p = stats.publishes();
                if p != seen.0 {
                    *seen = (p, now);
                } else if now.saturating_sub(seen.1) >= WORKER_SILENCE_NS {
                    tracing::error!(
                        lcore,
                        "the worker has stopped (no counters for 5 s); stopping the appliance"
                    );
                    return;
                }
            }
            // Read the workers' pass stamps before draining their answer rings: every
            // answer they received before `horizon` is then handled in this pass (the
            // probes' timeouts are judged against it, see `health`).
            let horizon = self
                .workers
                .iter()
                .map(|(_, s)| s.polled())
                .min()
                .unwrap_or(now);
            let mut busy = false;
            for w in 0..self.answers.len() {
                // A ring's worth at most: all it held when the stamps were read, however
                // fast the worker refills it (see `drain_bounded`).
                let capacity = self.answers[w].capacity();
                let taken = drain_bounded(capacity, || {
                    let n = self.answers[w].dequeue_burst(&mut burst);
                    for m in burst.drain() {
                        self.counters.rx += 1;
                        self.handle(m, now, &mut out);
                    }
                    n
                });
                busy |= taken > 0;
            }
            for w in 0..self.from_workers.len() {
                // To the bottom of the ring, but a bounded number of bursts: a flood at
                // the appliance's addresses must not starve probes and signals. What is
                // left behind holds no probe answer (they come over the answer rings).
                let mut left = DRAIN_BURSTS;
                while left > 0 && self.from_workers[w].dequeue_burst(&mut burst) > 0 {
                    left -= 1;
                    busy = true;
                    for m in burst.drain() {
                        self.counters.rx += 1;
                        self.handle(m, now, &mut out);
                    }
                }
            }
            for w in 0..self.signals.len() {
                while let Some(sig) = self.signals[w].dequeue() {
                    self.counters.signals += 1;
                    tracing::debug!(replica = sig.replica.0, kind = ?sig.kind, "signal from a worker");
                    if sig.kind == SignalKind::NeighbourMissing {
                        self.hurry(sig.replica, now);
                    } else if sig.kind == SignalKind::Diverged {
                        self.diverged(sig.replica, sig.offset, now);
                    } else {
                        let mut changes = Vec::new();
                        self.monitor
                            .signal(sig.replica, sig.kind, now, &mut changes);
                        self.apply(&changes);
                    }
                }
            }
            self.run_pair(now, &mut out);
            // A pair's appliance that does not carry traffic sends nothing on the data
            // ports of its own: no ARP request, no probe (DESIGN §6b). It learns its
            // neighbours from what it hears, and its replicas keep the health they had.
            if self.pair.as_ref().is_none_or(crate::pair::Pair::carrying) {
                self.resolve(now, &mut out);
                self.probe(now, horizon, clock);
            }
            self.finish_listing(now);
            self.serve_mgmt(now);
            self.hangup(now);
            if let Some(sh) = &self.shared {
                // Never waits on the metrics thread: a busy lock skips one pass.
                if let Ok(mut c) = sh.control.try_lock() {
                    *c = self.counters;
                }
                if let Some(p) = &self.pair {
                    if let Ok(mut h) = sh.ha.try_lock() {
                        *h = Some((p.link().node().counters(now), p.counters()));
                    }
                }
            }
            for (i, b) in out.iter_mut().enumerate() {
                if !b.is_empty() {
                    busy = true;
                    self.send(i, b);
                }
            }
            if !busy {
                std::thread::sleep(IDLE_SLEEP);
            }
        }
    }

    /// Logs the number of unprotected flows (fewer replicas than asked for) when it changed
    /// since `last` (the workers' published gauges); returns it.
    fn report_unprotected(&self, last: u64) -> u64 {
        let n: u64 = self
            .workers
            .iter()
            .map(|(_, s)| s.read().0.flows_unprotected)
            .sum();
        if n != last {
            if n > 0 {
                tracing::warn!(
                    event = "unprotected",
                    flows_unprotected = n,
                    "flows with fewer replicas than their service asks for (unprotected)"
                );
            } else {
                tracing::info!(
                    event = "unprotected",
                    flows_unprotected = 0,
                    "every flow has all its replicas again"
                );
            }
        }
        n
    }

    /// Sends `b` on port `i`, counting (and freeing) what is refused; returns how many
    /// went (the first ones).
    fn send(&mut self, i: usize, b: &mut Burst<Mbuf>) -> usize {
        let n = b.len();
        let sent = match &mut self.ports[i].tx {
            ControlTx::Own(q) => q.tx_burst(b),
            ControlTx::ViaWorker(ring) => ring.enqueue_burst(b),
        };
        self.counters.tx += sent as u64;
        self.counters.tx_refused += (n - sent) as u64;
        b.clear();
        sent
    }

    /// Queues `m` for port `i`, sending the port's burst first when it is full.
    fn emit(&mut self, out: &mut [Burst<Mbuf>; 2], i: usize, m: Mbuf) {
        if let Err(m) = out[i].push(m) {
            self.send(i, &mut out[i]);
            if out[i].push(m).is_err() {
                self.counters.tx_refused += 1;
            }
        }
    }

    /// One frame from a worker.
    fn handle(&mut self, mut m: Mbuf, now: u64, out: &mut [Burst<Mbuf>; 2]) {
        let Some(i) = self.side_of(m.port()) else {
            self.counters.malformed += 1;
            return;
        };
        let verdict = match EthernetFrame::new_checked(m.data()).map(|e| e.ethertype()) {
            Ok(EtherType::ARP) => self.arp(i, &m, now, out),
            Ok(tandem_engine::parse::PAIR_ANNOUNCE) => {
                match self.pair.as_mut() {
                    Some(p) => p.link_mut().node_mut().on_announcement(now, m.data()),
                    None => self.counters.not_served += 1,
                }
                Verdict::Drop
            }
            Ok(EtherType::IPV4) => match m.data_mut() {
                Some(frame) => self.ipv4(i, frame, now, out),
                None => Verdict::Drop,
            },
            Ok(_) => {
                self.counters.not_served += 1;
                Verdict::Drop
            }
            Err(_) => {
                self.counters.malformed += 1;
                Verdict::Drop
            }
        };
        if let Verdict::Reply = verdict {
            self.emit(out, i, m);
        }
    }

    /// An ARP frame: learn, and answer a request for one of our addresses with a new
    /// frame. The received frame is always freed.
    fn arp(&mut self, i: usize, m: &Mbuf, now: u64, out: &mut [Burst<Mbuf>; 2]) -> Verdict {
        let Some(a) = ArpSeen::parse(m.data()) else {
            self.counters.malformed += 1;
            return Verdict::Drop;
        };
        let side = self.ports[i].side;
        self.learn(side, a.sender_ip, a.sender_mac, now);
        if a.is_request_for(&self.ports[i].answers) {
            if !crate::pair::answers_for(a.target_ip, &self.ports[i].floating, self.owns()) {
                self.counters.not_owner += 1;
                return Verdict::Drop;
            }
            let port_mac = self.ports[i].mac;
            if let Some(reply) = self.frame(|buf| a.write_reply(buf, port_mac)) {
                self.counters.arp_replies += 1;
                self.emit(out, i, reply);
            }
        } else if !self.ports[i].answers.contains(&a.target_ip) {
            self.counters.arp_ignored += 1;
        }
        Verdict::Drop
    }

    /// An ARP message says `ip` (on `side`) is at `mac`: resolves or refreshes a tracked
    /// neighbour, or, when it would change a known MAC, makes a claim that applies only
    /// once confirmed (see [`crate::neighbour`]).
    fn learn(&mut self, side: Side, ip: Ipv4Addr, mac: MacAddr, now: u64) {
        let c = &mut self.counters;
        for n in self
            .neighbours
            .iter_mut()
            .filter(|n| n.ip == ip && n.side == side)
        {
            match n.heard(mac, now) {
                Heard::Ignored | Heard::ClaimPending => {}
                Heard::Resolved => {
                    tracing::info!(neighbour = %ip, mac = %fmt_mac(mac), what = %n.what, "neighbour resolved");
                    for &r in &n.replicas {
                        self.replicas.set_mac(r, mac);
                    }
                    c.arp_learned += 1;
                }
                Heard::Refreshed => c.arp_learned += 1,
                Heard::Refused(claimed) => {
                    tracing::warn!(event = "arp_claim_refused", neighbour = %ip, what = %n.what,
                        mac = ?n.mac.map(fmt_mac), claimed = %fmt_mac(claimed),
                        "the known MAC still answers: the claim of another MAC is refused");
                    c.arp_learned += 1;
                    c.arp_mac_refused += 1;
                }
                Heard::Claim(claimed) => {
                    tracing::warn!(event = "arp_claim", neighbour = %ip, what = %n.what,
                        mac = ?n.mac.map(fmt_mac), claimed = %fmt_mac(claimed),
                        "an ARP message gives the neighbour another MAC: not applied until confirmed");
                    c.arp_mac_claims += 1;
                }
                Heard::ClaimIgnored(other) => {
                    tracing::debug!(neighbour = %ip, claimed = %fmt_mac(other),
                        "another MAC claimed while a claim waits or just after one: ignored");
                    c.arp_mac_ignored += 1;
                }
            }
        }
    }

    /// IPv4 to one of our addresses: echo requests are answered in place; answers to
    /// health probes are counted (a SYN-ACK is answered with a RST).
    fn ipv4(
        &mut self,
        i: usize,
        frame: &mut [u8],
        now: u64,
        out: &mut [Burst<Mbuf>; 2],
    ) -> Verdict {
        if self.ports[i].side == Side::Inside {
            if let Some(r) = ProbeReply::parse(frame) {
                let mut changes = Vec::new();
                let ours = self.monitor.reply(&r, now, &mut changes);
                self.apply(&changes);
                if ours {
                    self.counters.probe_replies += 1;
                } else {
                    self.counters.not_served += 1;
                }
                if r.syn_ack {
                    let (mac, addr) = (self.ports[i].mac, self.ports[i].address);
                    if let Some(rst) = self.frame(|buf| health::probe_rst(buf, &r, mac, addr)) {
                        self.emit(out, i, rst);
                    }
                }
                return Verdict::Drop;
            }
        }
        if let Some(dst) = ipv4_dst(frame) {
            if !crate::pair::answers_for(dst, &self.ports[i].floating, self.owns()) {
                self.counters.not_owner += 1;
                return Verdict::Drop;
            }
        }
        match echo_reply_in_place(frame, &self.ports[i].answers, self.ports[i].mac) {
            Echo::Replied => {
                self.counters.echo_replies += 1;
                Verdict::Reply
            }
            Echo::NotServed => {
                self.counters.not_served += 1;
                Verdict::Drop
            }
            Echo::Malformed => {
                self.counters.malformed += 1;
                Verdict::Drop
            }
        }
    }

    /// A new frame of up to 60 bytes written by `write` (which returns its length).
    fn frame<E>(&mut self, write: impl FnOnce(&mut [u8]) -> Result<usize, E>) -> Option<Mbuf> {
        self.frame_of(build::MIN_FRAME_LEN, write)
    }

    /// A new frame of up to `room` bytes written by `write` (which returns its length).
    fn frame_of<E>(
        &mut self,
        room: usize,
        write: impl FnOnce(&mut [u8]) -> Result<usize, E>,
    ) -> Option<Mbuf> {
        let Some(mut m) = self.pool.alloc() else {
            self.counters.no_buffer += 1;
            return None;
        };
        let room16 = u16::try_from(room).ok()?;
        let len = {
            let buf = m.append(room16)?;
            write(buf).ok()?
        };
        if len < room {
            m.trim(u16::try_from(room - len).ok()?);
        }
        Some(m)
    }

    /// Whether this appliance owns the floating addresses: always without a pair.
    fn owns(&self) -> bool {
        self.pair
            .as_ref()
            .is_none_or(|p| p.link().node().owns_addresses())
    }

    /// The pair's pass ([`crate::pair::Pair::pass`]) and what it asks of the ports.
    fn run_pair(&mut self, now: u64, out: &mut [Burst<Mbuf>; 2]) {
        let Some(pair) = self.pair.as_mut() else {
            return;
        };
        let mut actions = std::mem::take(&mut self.pair_actions);
        pair.pass(now, &mut actions);
        for a in actions.drain(..) {
            self.pair_action(a, out);
        }
        self.pair_actions = actions;
    }

    fn pair_action(&mut self, a: tandem_control::ha::Action, out: &mut [Burst<Mbuf>; 2]) {
        use tandem_control::ha::Action;
        match a {
            Action::BecomeActive { epoch, takeover } => {
                tracing::warn!(
                    event = "ha_active",
                    epoch,
                    takeover,
                    "this appliance is the active one of its pair"
                );
            }
            Action::BecomeStandby { epoch } => {
                tracing::warn!(
                    event = "ha_standby",
                    epoch,
                    "this appliance is the standby of its pair"
                );
            }
            Action::GratuitousArp => {
                for i in 0..self.ports.len() {
                    let (mac, floating) = (self.ports[i].mac, self.ports[i].floating.clone());
                    for ip in floating {
                        if let Some(m) = self.frame(|buf| crate::pair::gratuitous_arp(buf, mac, ip))
                        {
                            self.counters.gratuitous_arps += 1;
                            self.emit(out, i, m);
                        }
                    }
                }
            }
            Action::Announce => {
                let Some(hb) = self.pair.as_ref().map(|p| p.link().node().announcement()) else {
                    return;
                };
                for i in 0..self.ports.len() {
                    let mac = self.ports[i].mac;
                    let frame = self.frame_of(128, |buf| {
                        tandem_control::ha::wire::announce_frame(mac.0, &hb, buf).ok_or(())
                    });
                    if let Some(m) = frame {
                        self.counters.announcements += 1;
                        self.emit(out, i, m);
                    }
                }
            }
            // The pair does these itself (the workers' data path, their walks).
            Action::StartBulk { .. } | Action::Quiesce | Action::Suspend | Action::Resume => {}
        }
    }

    /// A worker could not send to `replica` for want of its MAC: ask for its next hop
    /// again now, unless it was asked for in the last [`HURRY_NS`].
    fn hurry(&mut self, replica: ReplicaId, now: u64) {
        for n in &mut self.neighbours {
            if n.mac.is_none()
                && n.replicas.contains(&replica)
                && now.saturating_sub(n.asked_at) >= HURRY_NS
            {
                n.asked_at = 0;
            }
        }
    }

    /// Asks for the neighbours that are due; carries out what their refresh rounds
    /// decided (see [`crate::neighbour`]).
    fn resolve(&mut self, now: u64, out: &mut [Burst<Mbuf>; 2]) {
        for k in 0..self.neighbours.len() {
            let due = self.neighbours[k].poll(now, self.arp_refresh_ns);
            let (ip, side) = (self.neighbours[k].ip, self.neighbours[k].side);
            let what = &self.neighbours[k].what;
            match due.decided {
                Some(Decided::Applied { old, new }) => {
                    tracing::warn!(event = "arp_mac_changed", neighbour = %ip, %what,
                        old = %fmt_mac(old), new = %fmt_mac(new),
                        "confirmed: the old MAC stopped answering and the new one answers; applied");
                    for &r in &self.neighbours[k].replicas {
                        self.replicas.set_mac(r, new);
                    }
                    self.counters.arp_mac_changes += 1;
                }
                Some(Decided::Unconfirmed(claimed)) => {
                    tracing::warn!(event = "arp_claim_unconfirmed", neighbour = %ip, %what,
                        claimed = %fmt_mac(claimed),
                        "neither the known nor the claimed MAC answered: the claim is dropped");
                    self.counters.arp_mac_unconfirmed += 1;
                }
                None => {}
            }
            if let Some(since) = due.silent_since {
                // A whole round unanswered: its replicas are probed, and fail over only
                // if the probes confirm.
                self.counters.arp_silent += 1;
                tracing::warn!(event = "arp_silent", neighbour = %ip, what = %self.neighbours[k].what,
                    "the neighbour left an ARP refresh and its retries unanswered: probing its replicas");
                let ids = self.neighbours[k].replicas.clone();
                for id in ids {
                    self.monitor.arp_silent(id, since, now);
                }
            }
            if due.retry {
                self.counters.arp_retries += 1;
            }
            for eth_dst in due.ask.into_iter().chain(due.ask_claim) {
                self.ask(ip, side, eth_dst, out);
            }
        }
    }

    /// Sends an ARP request for `ip` out of `side`'s port, to Ethernet `eth_dst` (a
    /// known MAC for a refresh, RFC 1122 §2.3.2.1; broadcast for a first resolution).
    fn ask(&mut self, ip: Ipv4Addr, side: Side, eth_dst: MacAddr, out: &mut [Burst<Mbuf>; 2]) {
        let i = usize::from(side == Side::Inside);
        let (mac, addr) = (self.ports[i].mac, self.ports[i].address);
        if let Some(req) = self.frame(|buf| {
            build::arp(
                buf,
                ArpPacket::<&[u8]>::REQUEST,
                eth_dst,
                mac,
                addr,
                MacAddr::ZERO,
                ip,
            )
        }) {
            self.counters.arp_requests += 1;
            self.emit(out, i, req);
        }
    }

    /// Sends the health probes that are due (from the inside port, at once) and times out
    /// the unanswered ones.
    fn probe(&mut self, now: u64, horizon: u64, clock: &Clock) {
        let mut send: Vec<ProbeSend> = Vec::new();
        let mut changes: Vec<Change> = Vec::new();
        let table = self.replicas.clone();
        self.monitor.poll(
            now,
            horizon,
            |id| table.mac(id).is_some(),
            |id| table.last_heard(id),
            &mut send,
            &mut changes,
        );
        self.counters.probes_lost = self.monitor.probes_lost();
        self.counters.probes_skipped = self.monitor.probes_skipped();
        self.counters.probes_past_horizon = self.monitor.probes_past_horizon();
        self.apply(&changes);
        let i = 1;
        let (mac, addr) = (self.ports[i].mac, self.ports[i].address);
        // Probes in bursts of their own, sent now: one the transmit path refuses is
        // forgotten, not timed out against the replica.
        let mut b: Burst<Mbuf> = Burst::new();
        for chunk in send.chunks(b.capacity()) {
            let mut built: Vec<&ProbeSend> = Vec::with_capacity(chunk.len());
            for p in chunk {
                let syn = self
                    .replicas
                    .mac(p.replica)
                    .and_then(|dst| self.frame(|buf| health::probe_syn(buf, p, mac, addr, dst)));
                match syn.map(|m| b.push(m)) {
                    Some(Ok(())) => built.push(p),
                    _ => self.monitor.cancel(p),
                }
            }
            let sent = self.send(i, &mut b);
            self.counters.probes += sent as u64;
            for p in &built[sent..] {
                self.monitor.cancel(p);
            }
        }
        self.monitor.queued(clock.now_ns());
    }

    /// Applies health changes: the shared table, a sweep order to every worker on a
    /// failover, and one log event each.
    fn apply(&mut self, changes: &[Change]) {
        for c in changes {
            let addr = self.replicas.addr(c.replica);
            let cause = match c.cause {
                Cause::Probes(port, silent) => format!(
                    "probes failed on port {port} (the last: {})",
                    if silent { "no answer" } else { "RST" }
                ),
                Cause::Confirmed(kind, port) => {
                    format!("{kind:?} confirmed by a probe burst on port {port}")
                }
                Cause::OutputLag => "output lag (needs no probe confirmation)".to_owned(),
                Cause::ArpSilent(port) => format!(
                    "the host left an ARP refresh and its retries unanswered, confirmed by a probe burst on port {port}"
                ),
                Cause::Recovered => "probes answered on every port".to_owned(),
            };
            let admin = self.admin_of(c.replica);
            if !c.down && admin == Some(Admin::Failed) {
                tracing::info!(replica = c.replica.0, %addr, %cause,
                    "replica answers probes again; it stays down (`tandem fail`; `tandem up` brings it back)");
                continue;
            }
            if c.down && admin == Some(Admin::Failed) {
                // Already down by `tandem fail`: no flow left to move, no second count.
                tracing::info!(replica = c.replica.0, %addr, %cause,
                    "replica (failed by the operator) also fails its probes");
                continue;
            }
            if c.down {
                let commands = &mut self.commands;
                fail_over(&self.replicas, c.replica, commands.len(), |w, cmd| {
                    let _ = commands[w].enqueue(cmd);
                });
                self.counters.failovers += 1;
                if let Some(sh) = &self.shared {
                    sh.record_recovery(c.at_ns.saturating_sub(c.first_sign_ns));
                    sh.count_failover(c.replica);
                }
                tracing::warn!(
                    event = "failover",
                    replica = c.replica.0,
                    %addr,
                    %cause,
                    first_sign_to_switch_us = c.elapsed_us(),
                    "replica down: its flows fail over"
                );
            } else {
                self.replicas.set_health(
                    c.replica,
                    if admin == Some(Admin::Drained) {
                        Health::Draining
                    } else {
                        Health::Up
                    },
                );
                tracing::info!(
                    event = "recovered",
                    replica = c.replica.0,
                    %addr,
                    %cause,
                    first_sign_to_switch_us = c.elapsed_us(),
                    "replica up: it takes new flows"
                );
            }
        }
    }

    fn admin_of(&self, id: ReplicaId) -> Option<Admin> {
        self.admin.iter().find(|(r, _)| *r == id).map(|(_, a)| *a)
    }

    /// §3.12: a worker found `id`'s output on one flow different from the active's after
    /// `offset` bytes checked equal; the replica left that flow. Counted, logged (one
    /// line a flow), and an alarm when it makes the replica out of sync.
    fn diverged(&mut self, id: ReplicaId, offset: u32, now: u64) {
        let name = self.name_of(id);
        let addr = self.replicas.addr(id);
        tracing::warn!(event = "diverged", replica = %name, %addr, checked_equal_bytes = offset,
            "a standby's output differed from the active's after the bytes checked equal: it left that flow, which runs unprotected");
        if self.divergence.record(id, now) {
            tracing::error!(event = "out_of_sync", replica = %name, %addr,
                flows = self.divergence.total(id),
                "replica out of sync: its output differs from the active's on many flows (at least {} in {} s); check its data and version",
                tandem_control::divergence::ALARM_FLOWS,
                tandem_control::divergence::ALARM_WINDOW_NS / 1_000_000_000);
        }
        if let Some(sh) = &self.shared {
            sh.set_diverged(id, self.divergence.total(id));
        }
    }

    /// A replica's `service/replica` name (the first, for a replica in two services).
    fn name_of(&self, id: ReplicaId) -> String {
        self.names
            .iter()
            .find(|(_, r)| *r == id)
            .map_or_else(|| format!("#{}", id.0), |(n, _)| n.clone())
    }

    /// Answers the management requests waiting (see [`crate::mgmt`]); a `flows` request
    /// is answered later, by [`Control::finish_listing`].
    fn serve_mgmt(&mut self, now: u64) {
        let Some(rx) = &self.mgmt else { return };
        let pending: Vec<Pending> = rx.try_iter().collect();
        let at = std::time::Instant::now();
        for p in pending {
            if at > p.deadline {
                // The client was told it failed: carrying it out now would surprise it.
                continue;
            }
            let answer = match &p.request {
                Request::Flows(q) => match self.start_listing(q, now) {
                    Ok((asked, limit)) => {
                        self.listing = Some(Listing {
                            pending: p,
                            asked,
                            since_ns: now,
                            limit,
                        });
                        continue;
                    }
                    Err(e) => Response::error(e),
                },
                Request::Add {
                    service,
                    name,
                    address,
                } => self
                    .add_replica(service, name, *address)
                    .map_or_else(Response::error, Response::Replica),
                Request::Remove(name) => self
                    .remove_replica(name)
                    .map_or_else(Response::error, Response::Replica),
                Request::Reload { dry_run, profile } => self
                    .reload(profile.as_deref(), *dry_run, now)
                    .map_or_else(Response::error, Response::Reload),
                Request::Ha(cmd) => match (self.pair.as_mut(), cmd) {
                    (None, _) => Response::error(
                        "this appliance is not one of a pair (its profile has no `ha` section)",
                    ),
                    (Some(p), None) => Response::Ha(Box::new(p.link().status(now))),
                    (Some(p), Some(c)) => p
                        .link_mut()
                        .command(now, *c)
                        .map_or_else(Response::error, |s| Response::Ha(Box::new(s))),
                },
                request => self.answer(request, now),
            };
            p.reply(&answer);
        }
    }

    fn answer(&mut self, req: &Request, now: u64) -> Response {
        let name = match req {
            Request::Status => return Response::Status(Box::new(self.status(now))),
            Request::Drain(n) | Request::Fail(n) | Request::Up(n) => n,
            Request::Flows(_)
            | Request::Add { .. }
            | Request::Remove(_)
            | Request::Reload { .. }
            | Request::Ha(_) => return Response::error("not answered here"),
        };
        let (full, id) = match crate::mgmt::resolve(name, &self.names) {
            Ok((full, id)) => (full.to_owned(), id),
            Err(e) => return Response::error(e),
        };
        self.admin.retain(|(r, _)| *r != id);
        let addr = self.replicas.addr(id);
        let change = match req {
            Request::Drain(_) => {
                self.admin.push((id, Admin::Drained));
                // Up, or down by `fail` only (the probes say it is well): draining.
                let health = self.replicas.health(id);
                if health == Health::Up || (health == Health::Down && !self.monitor.is_down(id)) {
                    self.replicas.set_health(id, Health::Draining);
                }
                tracing::warn!(event = "drain", replica = %full, %addr, "operator: no new flows");
                Changed::Draining
            }
            Request::Fail(_) => {
                self.admin.push((id, Admin::Failed));
                if self.replicas.health(id) != Health::Down {
                    let commands = &mut self.commands;
                    fail_over(&self.replicas, id, commands.len(), |w, cmd| {
                        let _ = commands[w].enqueue(cmd);
                    });
                    self.counters.failovers += 1;
                    if let Some(sh) = &self.shared {
                        sh.count_failover(id);
                    }
                }
                tracing::warn!(event = "failover", replica = id.0, %addr,
                    cause = %"operator (tandem fail)", first_sign_to_switch_us = 0u64,
                    "replica down: its flows fail over");
                Changed::FailedOver
            }
            Request::Up(_) => {
                let health = if self.monitor.is_down(id) {
                    Health::Down
                } else {
                    Health::Up
                };
                self.replicas.set_health(id, health);
                tracing::info!(event = "up", replica = %full, %addr, "operator: back in service");
                match health {
                    Health::Up => Changed::Up,
                    _ => Changed::UpWhenProbesAnswer,
                }
            }
            _ => return Response::error("not answered here"),
        };
        Response::Replica(ReplicaChange {
            replica: full,
            address: addr,
            change,
        })
    }

    /// Starts a `flows` request: resolves its filter, hands it to every worker's list
    /// and asks them to fill it. Returns the request number and the limit, or the error
    /// answer.
    fn start_listing(
        &mut self,
        q: &crate::mgmt::FlowQuery,
        now: u64,
    ) -> Result<(u64, usize), String> {
        if let Some(l) = &self.listing {
            if now.saturating_sub(l.since_ns) < LIST_WAIT_NS {
                return Err("another `tandem flows` is being answered; try again".into());
            }
        }
        let mut filter = FlowFilter::default();
        if let Some(name) = &q.service {
            let Some(svc) = self.services.iter().find(|s| &s.name == name) else {
                let all: Vec<&str> = self.services.iter().map(|s| s.name.as_str()).collect();
                return Err(format!(
                    "no service `{name}` (services: {})",
                    all.join(", ")
                ));
            };
            filter.service = Some((u32::from(svc.vip), svc.port));
        }
        if let Some(name) = &q.replica {
            let (_, id) = crate::mgmt::resolve(name, &self.names)?;
            filter.replica = Some((id, u32::from(self.replicas.addr(id))));
        }
        if let Some((ip, port)) = q.client {
            filter.client_ip = Some(u32::from(ip));
            filter.client_port = port;
        }
        // A worker holds its list only for a part of its walk: a busy one is refused
        // rather than waited for (the control core never blocks on a worker).
        let mut lists = Vec::with_capacity(self.lists.len());
        for list in &self.lists {
            match list.0.try_lock() {
                Ok(st) => lists.push(st),
                Err(_) => return Err("a worker is still listing; try again".to_owned()),
            }
        }
        self.list_seq += 1;
        let asked = self.list_seq;
        for mut st in lists {
            st.filter = filter;
            st.limit = q.limit;
            st.asked = asked;
        }
        self.broadcast(Command::ListFlows);
        Ok((asked, q.limit))
    }

    /// Answers the pending `flows` request once every worker has filled its list, or
    /// after [`LIST_WAIT_NS`] with the lists that came.
    fn finish_listing(&mut self, now: u64) {
        let Some(l) = &self.listing else { return };
        let ready: Vec<bool> = self
            .lists
            .iter()
            .map(|list| list.0.try_lock().is_ok_and(|st| st.done == l.asked))
            .collect();
        // Answer before the management thread gives up on the control core.
        let late = now.saturating_sub(l.since_ns) >= LIST_WAIT_NS
            || std::time::Instant::now() + ANSWER_MARGIN > l.pending.deadline;
        if !late && !ready.iter().all(|r| *r) {
            return;
        }
        let Some(l) = self.listing.take() else { return };
        let (mut records, mut matched, mut missing) = (Vec::new(), 0, Vec::new());
        for ((list, ok), (lcore, _)) in self.lists.iter().zip(&ready).zip(&self.workers) {
            let got = ok
                .then(|| list.0.try_lock().ok())
                .flatten()
                .filter(|st| st.done == l.asked);
            match got {
                Some(st) => {
                    matched += st.matched;
                    records.extend_from_slice(&st.records);
                }
                None => missing.push(*lcore),
            }
        }
        records.sort_by_key(|r| {
            (
                r.key.client_ip,
                r.key.client_port,
                r.key.vip,
                r.key.vip_port,
            )
        });
        let services: Vec<(String, u32, tandem_engine::ServicePort)> = self
            .services
            .iter()
            .map(|s| (s.name.clone(), u32::from(s.vip), s.port))
            .collect();
        let names: Vec<(String, ReplicaId, u32)> = self
            .names
            .iter()
            .map(|(n, id)| (n.clone(), *id, u32::from(self.replicas.addr(*id))))
            .collect();
        let flows = answer::Flows::of(&records, matched, l.limit, &names, &services, &missing);
        l.pending.reply(&Response::Flows(flows));
    }

    /// Sends `cmd` to every worker; false if a worker's command ring was full.
    fn send_all(&mut self, cmd: Command) -> bool {
        let mut ok = true;
        for p in &mut self.commands {
            ok &= p.enqueue(cmd).is_ok();
        }
        ok
    }

    /// The replica names changed: the metrics and telemetry see the new ones.
    fn names_changed(&self) {
        if let Some(sh) = &self.shared {
            if let Ok(mut n) = sh.names.lock() {
                n.clone_from(&self.names);
            }
        }
    }

    /// `tandem add SERVICE NAME ADDRESS`: a new replica in the service's pool. It is
    /// probed from now on and takes new flows once its probes answer (`rise` on every
    /// port); existing flows keep their replicas.
    fn add_replica(
        &mut self,
        service: &str,
        name: &str,
        address: Ipv4Addr,
    ) -> Result<ReplicaChange, String> {
        let Some(si) = self.services.iter().position(|s| s.name == service) else {
            let all: Vec<&str> = self.services.iter().map(|s| s.name.as_str()).collect();
            return Err(format!(
                "no service `{service}` (services: {})",
                all.join(", ")
            ));
        };
        if !tandem_config::valid_name(name) {
            return Err(format!(
                "`{name}` is not a valid replica name (1 to 32 letters, digits, - or _)"
            ));
        }
        let full = format!("{service}/{name}");
        if self.names.iter().any(|(n, _)| *n == full) {
            return Err(format!("{full} exists already"));
        }
        let own = self
            .ports
            .iter()
            .any(|p| p.answers.contains(&address) || p.address == address);
        if own
            || address.is_unspecified()
            || address.is_broadcast()
            || address.is_multicast()
            || address.is_loopback()
        {
            return Err(format!(
                "{address} cannot be a replica (the appliance's own, or not unicast)"
            ));
        }
        let svc = &self.services[si];
        if svc.pool.iter().any(|&r| self.replicas.addr(r) == address) {
            return Err(format!("{address} is in the pool of {service} already"));
        }
        if svc.pool.len() >= MAX_POOL {
            return Err(format!(
                "the pool of {service} is full ({MAX_POOL} replicas)"
            ));
        }
        let Some(hop) = self.inside.next_hop(address) else {
            return Err(format!(
                "{address} is not on the inside subnet ({}) and the inside port has no gateway",
                self.inside.address
            ));
        };
        let settings = svc.health.clone();
        // A replica of another service already: the same slot, probed already.
        let (id, new) = match self.replicas.find(address) {
            Some(id) => (id, false),
            None => match self.replicas.add(address) {
                Some(id) => (id, true),
                None => return Err("the replica table is full".to_owned()),
            },
        };
        let probed = new && !settings.ports.is_empty();
        if probed {
            // Down until its probes answer: it must not take flows before it can serve.
            self.replicas.set_health(id, Health::Down);
            self.monitor.add_down(id, address, &settings);
        }
        // A second name for a replica shared with another service: both resolve to it.
        self.names.push((full.clone(), id));
        self.names_changed();
        if new {
            match self
                .neighbours
                .iter_mut()
                .find(|n| n.ip == hop && n.side == Side::Inside)
            {
                Some(n) => {
                    n.replicas.push(id);
                    if let Some(mac) = n.mac {
                        self.replicas.set_mac(id, mac);
                    }
                }
                None => self.neighbours.push(Neighbour::new(
                    hop,
                    Side::Inside,
                    format!("replica {full}"),
                    vec![id],
                )),
            }
        }
        self.services[si].pool.push(id);
        if !self.send_all(Command::PoolAdd {
            service: si as u16,
            replica: id,
        }) {
            tracing::error!(replica = %full, "a worker's command ring is full: the replica is not in its pool");
            return Err(format!("{full}: a worker did not take the order (command ring full); `tandem remove {full}` and try again"));
        }
        tracing::warn!(event = "add", replica = %full, %address, id = id.0, "operator: replica added to the pool");
        Ok(ReplicaChange {
            replica: full,
            address,
            change: Changed::Added {
                rise: if probed { settings.rise } else { 0 },
                ports: if probed { settings.ports } else { Vec::new() },
            },
        })
    }

    /// `tandem remove NAME`: the replica leaves every pool; its flows fail over now to
    /// their other replicas (a flow with none left is reset, as on any failure).
    fn remove_replica(&mut self, name: &str) -> Result<ReplicaChange, String> {
        let (full, id) = match crate::mgmt::resolve(name, &self.names) {
            Ok((full, id)) => (full.to_owned(), id),
            Err(e) => return Err(e),
        };
        if let Some(s) = self.services.iter().find(|s| s.pool == [id]) {
            return Err(format!(
                "{full} is the last replica of {}: add another first",
                s.name
            ));
        }
        let addr = self.replicas.addr(id);
        let serving = self.replicas.health(id) != Health::Down;
        let mut ok = true;
        for si in 0..self.services.len() {
            if self.services[si].pool.contains(&id) {
                self.services[si].pool.retain(|r| *r != id);
                ok &= self.send_all(Command::PoolRemove {
                    service: si as u16,
                    replica: id,
                });
            }
        }
        // Unused bumps the slot's epoch: every leg on it is dead, and a replica added
        // later in the same slot is a stranger to the old flows. A worker that did not
        // take the order still has the slot in its pool: it stays down for good instead
        // (never reused, so no other replica can land in that worker's stale pool).
        self.replicas
            .set_health(id, if ok { Health::Unused } else { Health::Down });
        self.broadcast(Command::FailoverSweep);
        if serving {
            self.counters.failovers += 1;
        }
        if let Some(sh) = &self.shared {
            // The slot may serve another replica later: its count starts again.
            sh.forget_replica(id);
        }
        self.monitor.remove(id);
        self.divergence.forget(id);
        self.admin.retain(|(r, _)| *r != id);
        self.names.retain(|(_, r)| *r != id);
        self.names_changed();
        for n in &mut self.neighbours {
            n.replicas.retain(|r| *r != id);
        }
        self.neighbours
            .retain(|n| !(n.replicas.is_empty() && n.what.starts_with("replica ")));
        tracing::warn!(event = "failover", replica = id.0, %addr,
            cause = %"operator (tandem remove)", first_sign_to_switch_us = 0u64,
            "replica removed from its pools: its flows fail over");
        if !ok {
            tracing::error!(replica = %full, "a worker's command ring is full: the replica is down for good, its slot not reused");
            return Err(format!("{full}: its flows failed over, but a worker did not take the order (command ring full): its slot stays down and is not reused until a restart"));
        }
        Ok(ReplicaChange {
            replica: full,
            address: addr,
            change: Changed::Removed,
        })
    }

    /// SIGHUP: reloads the profile file the appliance runs and logs what came of it.
    fn hangup(&mut self, now: u64) {
        let hung_up = self
            .reloading
            .as_ref()
            .is_some_and(|r| r.hangup.swap(false, Ordering::Relaxed));
        if !hung_up {
            return;
        }
        match self.reload(None, false, now) {
            Ok(r) => {
                let differences: Vec<String> =
                    r.differences.iter().map(ToString::to_string).collect();
                tracing::warn!(event = "reload", profile = %r.profile, ?differences,
                    "SIGHUP: profile reloaded, {} difference(s) applied", differences.len());
            }
            Err(e) => {
                tracing::error!(event = "reload_refused", error = %e, "SIGHUP: reload refused");
            }
        }
    }

    /// The pools as they run, by name, for [`tandem_control::reload::diff`].
    fn live_pools(&self) -> Vec<tandem_control::reload::LivePool> {
        self.services
            .iter()
            .map(|s| tandem_control::reload::LivePool {
                service: s.name.clone(),
                replicas: s
                    .pool
                    .iter()
                    .filter_map(|&id| {
                        let prefix = format!("{}/", s.name);
                        let (full, _) = self
                            .names
                            .iter()
                            .find(|(n, r)| *r == id && n.starts_with(&prefix))?;
                        Some(tandem_control::reload::LiveReplica {
                            name: full[prefix.len()..].to_owned(),
                            address: self.replicas.addr(id),
                            drained: self.admin_of(id) == Some(Admin::Drained),
                        })
                    })
                    .collect(),
            })
            .collect()
    }

    /// `tandem reload [--dry-run] [PATH]`, and SIGHUP: reads the profile (`path`, or the
    /// one the appliance runs), compares it with the running appliance and, unless a
    /// difference needs a restart (then nothing changes) or it is a dry run, applies
    /// each difference through the paths of `tandem add`, `remove`, `drain` and `up`.
    fn reload(
        &mut self,
        path: Option<&std::path::Path>,
        dry_run: bool,
        now: u64,
    ) -> Result<answer::Reloaded, String> {
        use tandem_control::reload::{self, Difference};
        let Some(reloading) = &self.reloading else {
            return Err(
                "this appliance was started without its profile's path: reload is off".into(),
            );
        };
        let path = path.map_or_else(|| reloading.path.clone(), std::path::Path::to_path_buf);
        let new = tandem_config::load(&path)
            .map_err(|e| format!("reload refused, nothing changed: {e}"))?;
        crate::runnable(&new).map_err(|e| format!("reload refused, nothing changed: {e}"))?;
        let pools = self.live_pools();
        let plan = reload::diff(
            reload::Running {
                profile: &self.profile,
                pools: &pools,
            },
            &new,
        );
        if let Some(refusal) = plan.refusal() {
            return Err(refusal);
        }
        // A reconnect service replays from a log arena sized at the start: none exists
        // when no service replayed then.
        let arena = self
            .profile
            .services
            .iter()
            .any(|s| s.mode == tandem_config::Mode::Reconnect);
        for d in &plan.differences {
            if let Difference::ServiceAdded { service, .. } = d {
                let replays = new
                    .services
                    .iter()
                    .any(|s| &s.name == service && s.mode == tandem_config::Mode::Reconnect);
                if replays && !arena {
                    return Err(format!(
                        "reload refused, nothing changed: this change needs a restart: services[{service}] \
                         (new, reconnect mode): no service replayed at the start, so there is no replay log to share"
                    ));
                }
            }
        }
        let shown = path.display().to_string();
        if dry_run {
            return Ok(answer::Reloaded {
                profile: shown,
                applied: false,
                differences: plan.differences,
            });
        }
        let mut failed: Vec<String> = Vec::new();
        // Additions first: a pool whose replicas are all replaced is never empty.
        for d in &plan.differences {
            if let Difference::ReplicaAdded {
                service,
                name,
                address,
                drained,
            } = d
            {
                match self.add_replica(service, name, *address) {
                    Ok(_) if *drained => {
                        let _ = self.answer(&Request::Drain(format!("{service}/{name}")), now);
                    }
                    Ok(_) => {}
                    Err(e) => failed.push(format!("{d}: {e}")),
                }
            }
        }
        for d in &plan.differences {
            match d {
                Difference::ReplicaRemoved { service, name, .. } => {
                    if let Err(e) = self.remove_replica(&format!("{service}/{name}")) {
                        failed.push(format!("{d}: {e}"));
                    }
                }
                Difference::ReplicaDrain {
                    service,
                    name,
                    drained,
                } => {
                    let full = format!("{service}/{name}");
                    let req = if *drained {
                        Request::Drain(full)
                    } else {
                        Request::Up(full)
                    };
                    if let Response::Error(e) = self.answer(&req, now) {
                        failed.push(format!("{d}: {e}"));
                    }
                }
                Difference::LogLevel { new, .. } => {
                    if let Some(r) = &self.reloading {
                        if let Err(e) = (r.set_log_level)(new) {
                            failed.push(format!("{d}: {e}"));
                        }
                    }
                }
                Difference::Timeout { field, .. } if field == "arp_refresh" => {
                    self.arp_refresh_ns =
                        u64::try_from(new.timeouts.arp_refresh.as_nanos()).unwrap_or(u64::MAX);
                }
                _ => {}
            }
        }
        // The workers' engines: timers for new flows, lag thresholds, new services
        // (their replicas follow through the `tandem add` path).
        let mut changes: Vec<crate::msg::EngineChange> = Vec::new();
        let mapped =
            crate::map_profile(&new, tandem_wire::MacAddr::ZERO, tandem_wire::MacAddr::ZERO)
                .map_err(|e| format!("reload: {e}"))?;
        if plan
            .differences
            .iter()
            .any(|d| matches!(d, Difference::Timeout { field, .. } if field != "arp_refresh"))
        {
            changes.push(crate::msg::EngineChange::Timeouts(
                mapped.engine.flow_timeouts(),
            ));
        }
        let mut new_services = Vec::new();
        for (s, e) in new.services.iter().zip(&mapped.engine.services) {
            match self.services.iter().position(|x| x.name == s.name) {
                Some(si) => {
                    let lags = plan.differences.iter().any(|d| {
                        matches!(d,
                        Difference::Health { service, field, .. }
                            if *service == s.name && (field == "ack_lag" || field == "output_lag"))
                    });
                    if lags {
                        let (ack_lag_ns, output_lag_ns) = e.lags(&mapped.engine);
                        changes.push(crate::msg::EngineChange::ServiceLags {
                            service: si,
                            ack_lag_ns,
                            output_lag_ns,
                        });
                    }
                }
                None => {
                    let mut svc = e.clone();
                    svc.replicas.clear();
                    changes.push(crate::msg::EngineChange::AddService(Box::new(svc)));
                    new_services.push((s.clone(), e.port));
                }
            }
        }
        if !changes.is_empty() {
            for m in &self.mailboxes {
                match m.0.lock() {
                    Ok(mut q) => q.extend(changes.iter().cloned()),
                    Err(_) => failed.push("a worker's mailbox is poisoned".to_owned()),
                }
            }
            if !self.send_all(Command::Reconfigure) {
                failed.push("a worker's command ring is full: it takes the new settings with its next order".to_owned());
            }
        }
        for (s, port) in new_services {
            self.services.push(ServiceEntry {
                name: s.name.clone(),
                vip: s.vip,
                port,
                pool: Vec::new(),
                health: health::Settings::from_config(&s.health),
            });
            self.service_status.push(ServiceStatus {
                name: s.name.clone(),
                vip: s.vip,
                port: s.port.to_string(),
                mode: s.mode.to_string(),
                copies: usize::from(s.copies),
                selection: format!("{:?}", s.selection).to_lowercase(),
            });
            // ARP and ICMP echo for its VIP on the outside port.
            if !self.ports[0].answers.contains(&s.vip) {
                self.ports[0].answers.push(s.vip);
            }
            for r in &s.replicas {
                match self.add_replica(&s.name, &r.name, r.address) {
                    Ok(_) if r.drain => {
                        let _ = self.answer(&Request::Drain(format!("{}/{}", s.name, r.name)), now);
                    }
                    Ok(_) => {}
                    Err(e) => failed.push(format!("+ {}/{}: {e}", s.name, r.name)),
                }
            }
        }
        // Probe settings: every replica of a service whose health changed, from now on.
        for s in &new.services {
            let Some(si) = self.services.iter().position(|x| x.name == s.name) else {
                continue;
            };
            let settings = health::Settings::from_config(&s.health);
            if self.services[si].health == settings {
                continue;
            }
            self.services[si].health = settings.clone();
            for id in self.services[si].pool.clone() {
                self.monitor.set_settings(id, &settings);
            }
        }
        tracing::warn!(event = "reload", profile = %shown, differences = plan.differences.len(),
            failed = failed.len(), "profile reloaded");
        self.profile = new;
        if let Some(r) = &mut self.reloading {
            r.path = path;
        }
        if !failed.is_empty() {
            return Err(format!(
                "reload applied in part: {} of {} differences failed: {}",
                failed.len(),
                plan.differences.len(),
                failed.join("; ")
            ));
        }
        Ok(answer::Reloaded {
            profile: shown,
            applied: true,
            differences: plan.differences,
        })
    }

    /// The `status` answer.
    fn status(&self, now: u64) -> answer::Status {
        let replicas = self
            .names
            .iter()
            .map(|(name, id)| ReplicaStatus {
                name: name.clone(),
                address: self.replicas.addr(*id),
                health: self.replicas.health(*id).into(),
                operator: self.admin_of(*id).map(|a| match a {
                    Admin::Drained => Operator::Drain,
                    Admin::Failed => Operator::Fail,
                }),
                mac: self.replicas.mac(*id).map(fmt_mac),
                failovers: self.shared.as_ref().map_or(0, |sh| sh.failovers_of(*id)),
                diverged_flows: self.divergence.total(*id),
                out_of_sync: self.divergence.out_of_sync(*id, now),
            })
            .collect();
        let workers: Vec<(u32, Counters, IoCounters)> = self
            .workers
            .iter()
            .map(|(lcore, stats)| {
                let (e, io) = stats.read();
                (*lcore, e, io)
            })
            .collect();
        let mut status = answer::Status {
            services: self.service_status.clone(),
            replicas,
            data_path: DataPath::of(workers.iter().map(|(lcore, e, _)| (*lcore, e))),
            control: self.counters,
            to_control_dropped: to_control_dropped(workers.iter().map(|(_, _, io)| io)),
            ..answer::Status::default()
        };
        let device = self.device.read();
        status.mbufs = device.mbufs;
        status.ports = device.ports;
        if let Some(sh) = &self.shared {
            let percentiles = |l: crate::stats::LatencySummary| Percentiles {
                count: l.count,
                p50: l.p50,
                p99: l.p99,
                p999: l.p999,
                max: l.max,
            };
            status.new_flows_per_second = Some(sh.new_flows_per_second.load(Ordering::Relaxed));
            status.added_latency_ns = sh.latency_summary().map(percentiles);
            status.recovery_ns = sh.recovery_summary().map(percentiles);
            status.listeners = listener_drops(&sh.listeners.read());
        }
        status.ha = self.pair.as_ref().map(|p| p.link().status(now));
        status
    }

    /// Sends every worker a command (a failover sweep, a stats publish).
    pub fn broadcast(&mut self, cmd: Command) {
        for p in &mut self.commands {
            let _ = p.enqueue(cmd);
        }
    }
}

/// What the workers dropped on the way to the control core, all of them, from their
/// I/O counters.
pub(crate) fn to_control_dropped<'a>(
    workers: impl IntoIterator<Item = &'a IoCounters>,
) -> answer::ToControlDropped {
    let mut io = IoCounters::default();
    for w in workers {
        io.add(w);
    }
    answer::ToControlDropped {
        rate_limited: io.control_rate_limited,
        probe_answers_rate_limited: io.answers_rate_limited,
        arp_replies_rate_limited: io.arp_replies_rate_limited,
        control_ring_full: io.control_ring_full,
        answer_ring_full: io.answer_ring_full,
    }
}

/// The listeners' refused and cut connections, by reason.
fn listener_drops(listeners: &[(&str, [u64; 4])]) -> Vec<answer::ListenerDrops> {
    listeners
        .iter()
        .map(|(name, counts)| answer::ListenerDrops {
            listener: (*name).to_owned(),
            drops: crate::serve::ListenerCounters::REASONS
                .iter()
                .zip(counts)
                .map(|(reason, n)| answer::Count {
                    name: (*reason).to_owned(),
                    count: *n,
                })
                .collect(),
        })
        .collect()
}

/// Takes a ring's items in bursts with `take` (which returns how many it took) until the
/// ring is empty or `capacity` items (what the ring holds when full) were taken. Either
/// way every item the ring held when it was called has been taken, first in first out,
/// however fast its producer refills it, and the call ends. Returns the number taken.
pub fn drain_bounded(capacity: usize, mut take: impl FnMut() -> usize) -> usize {
    let mut taken = 0;
    while taken < capacity {
        let n = take();
        if n == 0 {
            break;
        }
        taken += n;
    }
    taken
}

/// The control core's whole part in a failover, once it has decided: the replica's slot
/// in the shared table goes `Down` (its epoch, its health and the table's down
/// generation: three atomic stores, which the workers' next look at a flow sees), and
/// `order(w, FailoverSweep)` for each of the `workers`. Nothing here depends on the number
/// of flows: the workers move them, each in its own table (`perf/failover.sh`).
pub fn fail_over(
    replicas: &ReplicaTable,
    replica: ReplicaId,
    workers: usize,
    mut order: impl FnMut(usize, Command),
) {
    replicas.set_health(replica, Health::Down);
    for w in 0..workers {
        order(w, Command::FailoverSweep);
    }
}

/// The fields of an Ethernet/IPv4 ARP frame the control core uses (RFC 826).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpSeen {
    /// Request or reply.
    pub op: u16,
    /// Sender hardware address.
    pub sender_mac: MacAddr,
    /// Sender protocol address.
    pub sender_ip: Ipv4Addr,
    /// Target protocol address.
    pub target_ip: Ipv4Addr,
}

impl ArpSeen {
    /// Reads an ARP frame; `None` if it is not a well-formed Ethernet/IPv4 ARP frame.
    pub fn parse(frame: &[u8]) -> Option<ArpSeen> {
        let eth = EthernetFrame::new_checked(frame).ok()?;
        if eth.ethertype() != EtherType::ARP {
            return None;
        }
        let arp = ArpPacket::new_checked(frame.get(eth.header_len()..)?).ok()?;
        Some(ArpSeen {
            op: arp.operation(),
            sender_mac: arp.sender_mac(),
            sender_ip: arp.sender_ip(),
            target_ip: arp.target_ip(),
        })
    }

    /// Whether it is a request, from a unicast sender, for one of `answers`.
    pub fn is_request_for(&self, answers: &[Ipv4Addr]) -> bool {
        self.op == ArpPacket::<&[u8]>::REQUEST
            && self.sender_mac.is_unicast()
            && answers.contains(&self.target_ip)
    }

    /// Writes the reply (from `port_mac`, for the requested address) into `buf`; returns
    /// its length (60).
    pub fn write_reply(&self, buf: &mut [u8], port_mac: MacAddr) -> tandem_wire::Result<usize> {
        build::arp(
            buf,
            ArpPacket::<&[u8]>::REPLY,
            self.sender_mac,
            port_mac,
            self.target_ip,
            self.sender_mac,
            self.sender_ip,
        )
    }
}

/// What [`echo_reply_in_place`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Echo {
    /// The frame is now the echo reply, to go back out of the port it came in on.
    Replied,
    /// Not an echo request to one of the addresses answered (left as it was).
    NotServed,
    /// Not a well-formed IPv4 frame (left as it was).
    Malformed,
}

/// The IPv4 destination of `frame` (tagged or not), if it is IPv4.
fn ipv4_dst(frame: &[u8]) -> Option<Ipv4Addr> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    let ip = Ipv4Packet::new_checked(frame.get(eth.header_len()..)?).ok()?;
    Some(ip.dst())
}

/// Turns an ICMP echo request (RFC 792) to one of `answers` into its reply, in place:
/// MACs and IP addresses swapped (the source MAC becomes `port_mac`), type 0, checksum
/// updated incrementally (RFC 1624). The IPv4 header checksum is unchanged by the swap.
pub fn echo_reply_in_place(frame: &mut [u8], answers: &[Ipv4Addr], port_mac: MacAddr) -> Echo {
    let Ok(eth) = EthernetFrame::new_checked(&*frame) else {
        return Echo::Malformed;
    };
    let l3 = eth.header_len();
    let src_mac = eth.src();
    let (hl, total, src, dst) = {
        let Ok(ip) = Ipv4Packet::new_checked(&frame[l3..]) else {
            return Echo::Malformed;
        };
        let echo = ip.protocol() == protocol::ICMP
            && !ip.is_fragment()
            && Icmpv4Packet::new_checked(ip.payload())
                .is_ok_and(|icmp| icmp.msg_type() == Icmpv4Packet::<&[u8]>::ECHO_REQUEST);
        if !echo || !answers.contains(&ip.dst()) {
            return Echo::NotServed;
        }
        (
            ip.header_len(),
            usize::from(ip.total_len()),
            ip.src(),
            ip.dst(),
        )
    };
    let mut eth = EthernetFrame::new_unchecked(&mut *frame);
    eth.set_dst(src_mac);
    eth.set_src(port_mac);
    let mut ip = Ipv4Packet::new_unchecked(&mut frame[l3..]);
    ip.set_src_raw(dst);
    ip.set_dst_raw(src);
    Icmpv4Packet::new_unchecked(&mut frame[l3 + hl..l3 + total]).make_echo_reply();
    Echo::Replied
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn fmt_mac(m: MacAddr) -> String {
    let b = m.0;
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        b[0], b[1], b[2], b[3], b[4], b[5]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_wire::checksum::internet_checksum;

    const CLIENT_MAC: MacAddr = MacAddr([2, 0x74, 0x64, 0x12, 0, 2]);
    const PORT_MAC: MacAddr = MacAddr([2, 0x74, 0x64, 0x12, 0, 1]);
    const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
    const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);

    /// An echo request from the client to `dst`, with valid checksums.
    fn echo_request(dst: Ipv4Addr) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&PORT_MAC.0);
        f.extend_from_slice(&CLIENT_MAC.0);
        f.extend_from_slice(&[0x08, 0x00]);
        let payload = b"tandem echo payload";
        let total = (20 + 8 + payload.len()) as u16;
        let mut ip = vec![0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, 1, 0, 0];
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip.extend_from_slice(&CLIENT.octets());
        ip.extend_from_slice(&dst.octets());
        let c = internet_checksum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        let mut icmp = vec![8, 0, 0, 0, 0xbe, 0xef, 0, 7];
        icmp.extend_from_slice(payload);
        let c = internet_checksum(&icmp);
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&icmp);
        f
    }

    #[test]
    fn echo_request_to_an_answered_address_is_turned_into_its_reply() {
        let mut f = echo_request(VIP);
        assert_eq!(echo_reply_in_place(&mut f, &[VIP], PORT_MAC), Echo::Replied);
        let eth = EthernetFrame::new_checked(&f[..]).ok();
        assert_eq!(
            eth.as_ref().map(|e| (e.dst(), e.src())),
            Some((CLIENT_MAC, PORT_MAC))
        );
        let ip = Ipv4Packet::new_checked(&f[14..]).ok();
        let ip = ip.as_ref();
        assert_eq!(ip.map(|i| (i.src(), i.dst())), Some((VIP, CLIENT)));
        assert!(ip.is_some_and(|i| i.verify_checksum()));
        let icmp = Icmpv4Packet::new_checked(&f[34..]).ok();
        assert_eq!(icmp.as_ref().map(|i| i.msg_type()), Some(0));
        assert!(icmp.is_some_and(|i| i.verify_checksum() && i.ident() == 0xbeef));
    }

    #[test]
    fn the_destination_of_an_echo_request_is_read_for_the_pairs_gate() {
        assert_eq!(ipv4_dst(&echo_request(VIP)), Some(VIP));
        assert_eq!(ipv4_dst(&echo_request(VIP)[..20]), None);
    }

    #[test]
    fn anything_else_is_left_alone() {
        let mut f = echo_request(Ipv4Addr::new(198, 18, 0, 200));
        let before = f.clone();
        assert_eq!(
            echo_reply_in_place(&mut f, &[VIP], PORT_MAC),
            Echo::NotServed
        );
        assert_eq!(f, before);
        let mut udp = echo_request(VIP);
        udp[23] = 17;
        assert_eq!(
            echo_reply_in_place(&mut udp, &[VIP], PORT_MAC),
            Echo::NotServed
        );
        let mut short = echo_request(VIP);
        short.truncate(20);
        assert_eq!(
            echo_reply_in_place(&mut short, &[VIP], PORT_MAC),
            Echo::Malformed
        );
    }

    #[test]
    fn an_answer_ring_kept_full_is_drained_of_all_it_held_and_the_pass_ends() {
        use std::collections::VecDeque;
        // A ring of 1024 that the worker refills to the top after every burst taken,
        // with frames numbered in arrival order: 0..1024 were there when the stamps
        // were read.
        let capacity = 1024;
        let mut ring: VecDeque<u32> = (0..capacity).collect();
        let mut next = capacity;
        let mut taken = Vec::new();
        let n = drain_bounded(capacity as usize, || {
            let k = ring.len().min(32);
            taken.extend(ring.drain(..k));
            while ring.len() < capacity as usize {
                ring.push_back(next);
                next += 1;
            }
            k
        });
        assert_eq!(n, capacity as usize);
        assert!((0..capacity).all(|f| taken.contains(&f)), "all it held");
        // An empty ring ends at once; a short one at its bottom.
        assert_eq!(drain_bounded(capacity as usize, || 0), 0);
        let mut left = 70;
        let n = drain_bounded(capacity as usize, || {
            let k = left.min(32);
            left -= k;
            k
        });
        assert_eq!((n, left), (70, 0));
    }

    #[test]
    fn arp_request_for_a_vip_gets_a_reply_from_the_port() {
        let mut req = [0u8; 60];
        let n = build::arp(
            &mut req,
            ArpPacket::<&[u8]>::REQUEST,
            MacAddr::BROADCAST,
            CLIENT_MAC,
            CLIENT,
            MacAddr::ZERO,
            VIP,
        );
        assert_eq!(n, Ok(60));
        let seen = ArpSeen::parse(&req);
        assert_eq!(
            seen,
            Some(ArpSeen {
                op: 1,
                sender_mac: CLIENT_MAC,
                sender_ip: CLIENT,
                target_ip: VIP
            })
        );
        let Some(seen) = seen else { return };
        assert!(seen.is_request_for(&[VIP]));
        assert!(!seen.is_request_for(&[Ipv4Addr::new(198, 18, 0, 1)]));
        let mut reply = [0u8; 60];
        assert_eq!(seen.write_reply(&mut reply, PORT_MAC), Ok(60));
        assert_eq!(
            ArpSeen::parse(&reply),
            Some(ArpSeen {
                op: 2,
                sender_mac: PORT_MAC,
                sender_ip: VIP,
                target_ip: CLIENT
            })
        );
        assert_eq!(&reply[..6], &CLIENT_MAC.0, "unicast to the asker");
        assert_eq!(&reply[6..12], &PORT_MAC.0);
        assert!(
            !ArpSeen { op: 2, ..seen }.is_request_for(&[VIP]),
            "a reply is no request"
        );
        assert_eq!(ArpSeen::parse(&reply[..30]), None);
    }

    #[test]
    fn status_names_each_listener_drop_by_reason() {
        let status = answer::Status {
            listeners: listener_drops(&[("management", [1, 2, 3, 4]), ("metrics", [0, 5, 0, 0])]),
            ..answer::Status::default()
        };
        assert!(status.to_string().contains(
            "listener drops: management: peer_refused 1, deadline 2, overload 3, too_long 4; \
             metrics: peer_refused 0, deadline 5, overload 0, too_long 0\n"
        ));
    }
}
