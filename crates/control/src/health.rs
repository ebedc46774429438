//! Health monitoring on the control core (DESIGN §5): active TCP SYN probes, the
//! `fall`/`rise` state machine, suspect bursts on the workers' passive signals, and the
//! failover decision. Plain Rust: time is passed in (ns), frames are built and read by the
//! caller (see [`probe_syn`], [`ProbeReply::parse`]), so it is tested without DPDK.
//!
//! - **Probes.** Every `interval`, a SYN from the appliance's inside address to each probe
//!   port of each replica, from a source port of [`SRC_PORT_BASE`]`..+`[`SRC_PORTS`] and
//!   with a sequence number that names the probe ([`SEQ_TAG`] in the top byte). A SYN-ACK
//!   is a success (the caller answers it with a RST so the replica frees its socket); a
//!   RST, or no answer within `timeout`, a failure.
//! - **No answer means no answer.** A probe is timed out only once the appliance has
//!   looked for its answer after the deadline: the `horizon` passed to [`Monitor::poll`]
//!   is the time up to which every worker has handed the control core what it received
//!   (a worker or a control loop descheduled on a busy host proves nothing), and the
//!   timeout runs from the first worker pass that started after the probe was queued
//!   ([`Monitor::queued`]). A routine probe that times out while the data path keeps
//!   hearing from the host (`last_heard`, stamped by the workers) was lost, not failed:
//!   counted, not held against the replica, until [`LOST_RUN_SUSPECT`] in a row make it
//!   suspect.
//!   (DESIGN §5 counts silence as a failure outright; on a shared or overloaded host
//!   that failed every replica at once, so the data path is asked first.)
//! - **Silence.** A routine probe that times out with the host silent makes the replica
//!   suspect at once (a burst, as below), so a dead host is down after about one
//!   interval, one timeout and the burst, not `fall` intervals.
//! - **Endpoints.** The unit of failure is (replica, port). One endpoint with `fall`
//!   failures in a row takes its replica down in the shared table (the table has one slot
//!   per replica address). A down replica comes back up, for new flows only, when every
//!   endpoint has answered `rise` probes in a row.
//! - **Suspects.** An unmatched FIN or RST, or ack lag, from a worker makes the replica
//!   suspect: `suspect_burst` probes to every port, `suspect_interval` apart, start at
//!   once; a RST to one of them, or `suspect_burst` timeouts in a row on one port,
//!   confirm it (down); a burst that ends without that clears it. Burst probes count when they time out whatever the
//!   data path hears: a host that drops what it receives may still be sending.
//! - **Output lag** (a frozen process: the kernel still answers SYNs, so probes succeed)
//!   is sufficient on its own: the replica goes down without probe confirmation, and
//!   probes cannot bring it back for [`OUTPUT_LAG_HOLD_NS`]. Workers raise it only when
//!   the profile sets `output_lag` above 0, for the active replica of a flow whose output
//!   stopped while a standby's went on.
//! - **ARP.** A host that leaves an ARP refresh and its retries unanswered is suspect
//!   ([`Monitor::arp_silent`]): a probe burst confirms it (down, [`Cause::ArpSilent`]) or
//!   clears it. One lost ARP reply fails nothing.
//! - **Bounds** (issue #14). The horizon cannot hold a probe forever: one the workers'
//!   horizon has not judged [`HORIZON_MAX_LAG_NS`] after it was queued is judged against
//!   the control core's clock less that lag, so a dead host is failed over even while a
//!   worker's stamp stands still. And an endpoint has at most
//!   [`MAX_ROUTINE_OUTSTANDING`] routine probes and `suspect_burst` burst probes
//!   outstanding (a probe due beyond that is skipped and counted), so the list of
//!   outstanding probes holds at most (`MAX_ROUTINE_OUTSTANDING` + `suspect_burst`) per
//!   probed port of every replica, whatever the horizon does.

use std::net::Ipv4Addr;

use tandem_engine::{ReplicaId, SignalKind};
use tandem_wire::tcp::TcpFlags;
use tandem_wire::{build, EtherType, EthernetFrame, Ipv4Packet, MacAddr, TcpSegment};

/// First source port of the probes.
pub const SRC_PORT_BASE: u16 = 61_000;
/// Number of probe source ports (a probe's port is `base + id % SRC_PORTS`).
pub const SRC_PORTS: u16 = 1_000;
/// Top byte of every probe's sequence number.
pub const SEQ_TAG: u32 = 0x7d00_0000;

/// Routine probes in a row unanswered by a host the data path still hears from, before
/// it is made suspect anyway (200 ms at 10 ms intervals: longer than the overloads seen
/// in the lab, where answers queue behind data).
pub const LOST_RUN_SUSPECT: u32 = 20;

/// The longest the workers' horizon may hold back a probe's timeout: past it, the probe is
/// judged against the control core's clock less this lag ([`Monitor::probes_past_horizon`]
/// counts those timed out so). Ten times the longest a worker's own stamp lags while its
/// receive queues stay full (`worker::MAX_RX_BACKLOG_NS`), so a busy but running data
/// path never reaches it; a worker stopped this long is lost anyway (the control core
/// stops the appliance after `control::WORKER_SILENCE_NS`). A probe is thus declared
/// lost at most this long after its deadline.
pub const HORIZON_MAX_LAG_NS: u64 = 1_000_000_000;

/// Routine probes an endpoint may have outstanding. The profile's timeout is at most the
/// interval, so with a current horizon an endpoint has one or two; eight lets the horizon
/// lag six intervals (a busy host's stalls, 60 ms at the default 10 ms interval) without
/// skipping any. A probe due beyond that is skipped: it would be judged only after the
/// eight already waiting, so it adds nothing but memory.
pub const MAX_ROUTINE_OUTSTANDING: u32 = 8;

/// A replica taken down for output lag comes back no sooner than this: its kernel answers
/// probes while its process is frozen, so `rise` good probes prove nothing about it.
pub const OUTPUT_LAG_HOLD_NS: u64 = 10_000_000_000;

/// The settings of the monitor, in ns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Ports probed on every replica.
    pub ports: Vec<u16>,
    /// Time between probes of one endpoint.
    pub interval_ns: u64,
    /// How long a probe waits for its answer.
    pub timeout_ns: u64,
    /// Failures in a row before down.
    pub fall: u32,
    /// Successes in a row (every endpoint) before up.
    pub rise: u32,
    /// Probes per port in a suspect burst.
    pub suspect_burst: u32,
    /// Gap between them.
    pub suspect_interval_ns: u64,
}

impl Settings {
    /// From a service's health section.
    pub fn from_config(h: &tandem_config::Health) -> Settings {
        let ns = |d: std::time::Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Settings {
            ports: h.probe_ports.clone(),
            interval_ns: ns(h.interval).max(1),
            timeout_ns: ns(h.timeout).max(1),
            fall: h.fall.max(1),
            rise: h.rise.max(1),
            suspect_burst: h.suspect_burst.max(1),
            suspect_interval_ns: ns(h.suspect_interval),
        }
    }
}

/// Why a replica changed state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// `fall` probes in a row failed on the port; the last one by silence (`true`) or
    /// a RST (`false`).
    Probes(u16, bool),
    /// A worker's signal, confirmed by a suspect burst on the port.
    Confirmed(SignalKind, u16),
    /// A worker's output-lag signal, which needs no confirmation.
    OutputLag,
    /// The host left an ARP refresh and its retries unanswered, confirmed by a suspect
    /// burst on the port.
    ArpSilent(u16),
    /// `rise` good probes on every port.
    Recovered,
}

/// A health change, for the caller to apply and log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change {
    /// The replica.
    pub replica: ReplicaId,
    /// Down (true) or up (false).
    pub down: bool,
    /// Why.
    pub cause: Cause,
    /// When the first sign of it was seen (the first failed probe was sent, or the first
    /// signal arrived; for `Recovered`, the first good probe was sent).
    pub first_sign_ns: u64,
    /// When it was decided.
    pub at_ns: u64,
}

impl Change {
    /// First sign to switch, in µs.
    pub fn elapsed_us(&self) -> u64 {
        self.at_ns.saturating_sub(self.first_sign_ns) / 1_000
    }
}

/// A probe the caller is to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeSend {
    /// The replica.
    pub replica: ReplicaId,
    /// Its address.
    pub addr: Ipv4Addr,
    /// Our source port.
    pub src_port: u16,
    /// The probed port.
    pub dst_port: u16,
    /// The SYN's sequence number.
    pub seq: u32,
}

#[derive(Clone, Copy, Debug, Default)]
struct Endpoint {
    port: u16,
    fails: u32,
    oks: u32,
    /// Routine probes in a row that went unanswered while the host was heard from.
    lost: u32,
    /// When the first failure of the current run was sent (0: none).
    first_fail_ns: u64,
    first_ok_ns: u64,
    /// Routine probes outstanding (at most [`MAX_ROUTINE_OUTSTANDING`]).
    routine_out: u32,
    /// Burst probes outstanding (at most `suspect_burst`).
    burst_out: u32,
}

/// What made a replica suspect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Why {
    /// A worker's signal.
    Signal(SignalKind),
    /// A routine probe went unanswered.
    Unanswered,
    /// The host left an ARP refresh and its retries unanswered.
    ArpSilent,
}

#[derive(Clone, Copy, Debug)]
struct Suspect {
    why: Why,
    since_ns: u64,
    left: u32,
    next_ns: u64,
}

#[derive(Clone, Debug)]
struct Replica {
    id: ReplicaId,
    addr: Ipv4Addr,
    down: bool,
    /// No recovery before this (see [`OUTPUT_LAG_HOLD_NS`]).
    hold_until_ns: u64,
    endpoints: Vec<Endpoint>,
    next_ns: u64,
    suspect: Option<Suspect>,
}

#[derive(Clone, Copy, Debug)]
struct Outstanding {
    replica: usize,
    endpoint: usize,
    src_port: u16,
    seq: u32,
    /// When the control core queued it.
    sent_ns: u64,
    /// The first horizon seen past `sent_ns` (0: not yet): the probe had gone out by then,
    /// and its timeout runs from here.
    out_ns: u64,
    /// Part of a suspect burst.
    burst: bool,
}

/// The health state of every probed replica.
#[derive(Debug)]
pub struct Monitor {
    settings: Vec<Settings>,
    replicas: Vec<(Replica, usize)>,
    outstanding: Vec<Outstanding>,
    counter: u32,
    /// Routine probes that went unanswered while the host was heard on the data path.
    lost: u64,
    /// Probes not sent because their endpoint had its most outstanding.
    skipped: u64,
    /// Probes timed out by [`HORIZON_MAX_LAG_NS`] rather than by the workers' horizon.
    past_horizon: u64,
    /// `outstanding[fresh..]` were emitted by the last [`Monitor::poll`].
    fresh: usize,
}

impl Monitor {
    /// An empty monitor.
    pub fn new() -> Monitor {
        Monitor {
            settings: Vec::new(),
            replicas: Vec::new(),
            outstanding: Vec::new(),
            counter: 0,
            lost: 0,
            skipped: 0,
            past_horizon: 0,
            fresh: 0,
        }
    }

    /// Probes `id` at `addr` with `s` (ignored if it is probed already, or `s` has no
    /// port). Every replica starts up.
    pub fn add(&mut self, id: ReplicaId, addr: Ipv4Addr, s: &Settings) {
        if s.ports.is_empty() || self.replicas.iter().any(|(r, _)| r.id == id) {
            return;
        }
        let si = match self.settings.iter().position(|x| x == s) {
            Some(i) => i,
            None => {
                self.settings.push(s.clone());
                self.settings.len() - 1
            }
        };
        let endpoints = s
            .ports
            .iter()
            .map(|&port| Endpoint {
                port,
                ..Endpoint::default()
            })
            .collect();
        self.replicas.push((
            Replica {
                id,
                addr,
                down: false,
                hold_until_ns: 0,
                endpoints,
                next_ns: 0,
                suspect: None,
            },
            si,
        ));
    }

    /// Probes `id` like [`Monitor::add`], but it starts down: it comes up after `rise`
    /// good probes on every port (a replica added while running, `tandem add`). Returns
    /// false if it is not probed (no port, or probed already).
    pub fn add_down(&mut self, id: ReplicaId, addr: Ipv4Addr, s: &Settings) -> bool {
        if s.ports.is_empty() || self.replicas.iter().any(|(r, _)| r.id == id) {
            return false;
        }
        self.add(id, addr, s);
        if let Some((r, _)) = self.replicas.last_mut() {
            r.down = true;
        }
        true
    }

    /// Stops probing `id` (`tandem remove`) and forgets its outstanding probes. Called
    /// between polls: every outstanding probe has been queued.
    pub fn remove(&mut self, id: ReplicaId) {
        let Some(k) = self.replicas.iter().position(|(r, _)| r.id == id) else {
            return;
        };
        self.replicas.remove(k);
        self.outstanding.retain(|o| o.replica != k);
        for o in &mut self.outstanding {
            if o.replica > k {
                o.replica -= 1;
            }
        }
        self.fresh = self.outstanding.len();
    }

    /// Probes `id` with new settings from now on (`tandem reload`): its state stays, each
    /// port still probed keeps its counts and outstanding probes; a port no longer
    /// probed is forgotten, a new one starts with no history. Settings without a port
    /// stop probing it. Called between polls, like [`Monitor::remove`].
    pub fn set_settings(&mut self, id: ReplicaId, s: &Settings) {
        let Some(k) = self.replicas.iter().position(|(r, _)| r.id == id) else {
            return;
        };
        if s.ports.is_empty() {
            self.remove(id);
            return;
        }
        let si = match self.settings.iter().position(|x| x == s) {
            Some(i) => i,
            None => {
                self.settings.push(s.clone());
                self.settings.len() - 1
            }
        };
        let (r, old_si) = &mut self.replicas[k];
        *old_si = si;
        if r.endpoints
            .iter()
            .map(|e| e.port)
            .eq(s.ports.iter().copied())
        {
            return;
        }
        let old: Vec<Endpoint> = std::mem::take(&mut r.endpoints);
        r.endpoints = s
            .ports
            .iter()
            .map(|&port| {
                old.iter()
                    .find(|e| e.port == port)
                    .copied()
                    .unwrap_or(Endpoint {
                        port,
                        ..Endpoint::default()
                    })
            })
            .collect();
        let moved: Vec<Option<usize>> = old
            .iter()
            .map(|e| s.ports.iter().position(|&p| p == e.port))
            .collect();
        self.outstanding.retain_mut(|o| {
            if o.replica != k {
                return true;
            }
            match moved.get(o.endpoint).copied().flatten() {
                Some(e) => {
                    o.endpoint = e;
                    true
                }
                None => false,
            }
        });
        self.fresh = self.outstanding.len();
    }

    /// Routine probes unanswered while the host was heard from (not counted as failures).
    pub fn probes_lost(&self) -> u64 {
        self.lost
    }

    /// Probes not sent because their endpoint had [`MAX_ROUTINE_OUTSTANDING`] routine (or
    /// `suspect_burst` burst) probes outstanding.
    pub fn probes_skipped(&self) -> u64 {
        self.skipped
    }

    /// Probes timed out [`HORIZON_MAX_LAG_NS`] after they were queued because the workers'
    /// horizon had not reached their deadline (a worker's stamp stood still).
    pub fn probes_past_horizon(&self) -> u64 {
        self.past_horizon
    }

    /// Takes `outstanding[k]` off the list (and off its endpoint's count).
    fn take(&mut self, k: usize) -> Outstanding {
        let o = self.outstanding.swap_remove(k);
        if let Some(ep) = self
            .replicas
            .get_mut(o.replica)
            .and_then(|(r, _)| r.endpoints.get_mut(o.endpoint))
        {
            let n = if o.burst {
                &mut ep.burst_out
            } else {
                &mut ep.routine_out
            };
            *n = n.saturating_sub(1);
        }
        o
    }

    /// Whether `id` is down here.
    pub fn is_down(&self, id: ReplicaId) -> bool {
        self.replicas.iter().any(|(r, _)| r.id == id && r.down)
    }

    /// Probes that have been answered by nobody yet.
    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    fn next_probe(&mut self) -> (u16, u32) {
        self.counter = self.counter.wrapping_add(1) & 0x00ff_ffff;
        let id = self.counter;
        // A source port comes round again every SRC_PORTS probes: scatter the sequence
        // numbers (an odd multiplier is a bijection) so that a SYN on a reused port does
        // not land in the window of a half-open connection the replica still holds
        // (which it would answer with a RST).
        (
            SRC_PORT_BASE + (id % u32::from(SRC_PORTS)) as u16,
            SEQ_TAG | (id.wrapping_mul(0x9e37_79b1) & 0x00ff_ffff),
        )
    }

    /// The probes emitted by the last [`Monitor::poll`] were handed to the transmit path
    /// at `t` (their timeouts count from the first worker pass after it).
    pub fn queued(&mut self, t: u64) {
        let from = self.fresh.min(self.outstanding.len());
        for o in &mut self.outstanding[from..] {
            o.sent_ns = o.sent_ns.max(t);
        }
    }

    /// The probe `p` was not sent (the transmit path refused it): forget it.
    pub fn cancel(&mut self, p: &ProbeSend) {
        if let Some(k) = self
            .outstanding
            .iter()
            .position(|o| o.src_port == p.src_port && o.seq == p.seq)
        {
            self.take(k);
        }
    }

    /// Times out unanswered probes and emits the probes due at `now` into `send`; health
    /// changes go to `changes`.
    ///
    /// - `horizon`: every frame the workers received before it has been given to
    ///   [`Monitor::reply`] (the caller reads the workers' stamps, then drains their
    ///   answer rings). A horizon more than [`HORIZON_MAX_LAG_NS`] behind `now` is taken
    ///   as `now` less that lag.
    /// - `can_probe(id)`: a probe can be sent now (the next hop is resolved).
    /// - `last_heard(id)`: when the data path last received from the host (0: never).
    pub fn poll(
        &mut self,
        now: u64,
        horizon: u64,
        can_probe: impl Fn(ReplicaId) -> bool,
        last_heard: impl Fn(ReplicaId) -> u64,
        send: &mut Vec<ProbeSend>,
        changes: &mut Vec<Change>,
    ) {
        let floor = now.saturating_sub(HORIZON_MAX_LAG_NS);
        let forced = horizon < floor;
        let horizon = horizon.max(floor);
        let mut k = 0;
        while k < self.outstanding.len() {
            let o = &mut self.outstanding[k];
            if o.out_ns == 0 {
                if horizon > o.sent_ns {
                    o.out_ns = horizon;
                }
                k += 1;
                continue;
            }
            let timeout = self.settings[self.replicas[o.replica].1].timeout_ns;
            if horizon.saturating_sub(o.out_ns) < timeout {
                k += 1;
                continue;
            }
            let o = self.take(k);
            if forced {
                self.past_horizon += 1;
            }
            let id = self.replicas[o.replica].0.id;
            if !o.burst && last_heard(id) > o.out_ns {
                // The host is talking: the probe or its answer was lost on the way. But a
                // listener that drops SYNs on a busy host looks the same: a long run of
                // these makes it suspect, and burst probes count whatever is heard.
                self.lost += 1;
                let (r, si) = &mut self.replicas[o.replica];
                let ep = &mut r.endpoints[o.endpoint];
                ep.lost = ep.lost.saturating_add(1);
                if ep.lost >= LOST_RUN_SUSPECT && r.suspect.is_none() && !r.down {
                    ep.lost = 0;
                    tracing::info!(replica = r.id.0, addr = %r.addr, port = ep.port,
                        "probes unanswered by a host that is still sending: probing it now");
                    r.suspect = Some(Suspect {
                        why: Why::Unanswered,
                        since_ns: o.sent_ns,
                        left: self.settings[*si].suspect_burst,
                        next_ns: now,
                    });
                }
                continue;
            }
            self.outcome(o, false, true, now, changes);
        }
        self.fresh = self.outstanding.len();
        for ri in 0..self.replicas.len() {
            let s = &self.settings[self.replicas[ri].1];
            let (interval, burst_gap, burst_max) =
                (s.interval_ns, s.suspect_interval_ns.max(1), s.suspect_burst);
            let id = self.replicas[ri].0.id;
            if !can_probe(id) {
                continue;
            }
            let r = &mut self.replicas[ri].0;
            let mut due = now >= r.next_ns;
            let mut burst = false;
            if let Some(sp) = &mut r.suspect {
                if sp.left > 0 && now >= sp.next_ns {
                    sp.left -= 1;
                    sp.next_ns = now + burst_gap;
                    due = true;
                    burst = true;
                }
            }
            if !due {
                continue;
            }
            if now >= r.next_ns {
                r.next_ns = now + interval;
            }
            for ei in 0..self.replicas[ri].0.endpoints.len() {
                let ep = &mut self.replicas[ri].0.endpoints[ei];
                let (out, max) = if burst {
                    (&mut ep.burst_out, burst_max)
                } else {
                    (&mut ep.routine_out, MAX_ROUTINE_OUTSTANDING)
                };
                if *out >= max {
                    self.skipped += 1;
                    continue;
                }
                *out += 1;
                let (src_port, seq) = self.next_probe();
                let r = &self.replicas[ri].0;
                send.push(ProbeSend {
                    replica: r.id,
                    addr: r.addr,
                    src_port,
                    dst_port: r.endpoints[ei].port,
                    seq,
                });
                self.outstanding.push(Outstanding {
                    replica: ri,
                    endpoint: ei,
                    src_port,
                    seq,
                    sent_ns: now,
                    out_ns: 0,
                    burst,
                });
            }
        }
        // A suspect whose burst is over and answered without confirming is cleared.
        for ri in 0..self.replicas.len() {
            let r = &self.replicas[ri].0;
            if let Some(sp) = r.suspect {
                let pending = self.outstanding.iter().any(|o| o.replica == ri);
                if sp.left == 0 && !pending {
                    tracing::info!(replica = r.id.0, addr = %r.addr, why = ?sp.why,
                        "suspect cleared: the burst did not confirm");
                    self.replicas[ri].0.suspect = None;
                }
            }
        }
    }

    /// An answer to a probe (a SYN-ACK or a RST, see [`ProbeReply::parse`]). Returns
    /// whether it answered one of our probes.
    pub fn reply(&mut self, r: &ProbeReply, now: u64, changes: &mut Vec<Change>) -> bool {
        let Some(k) = self.outstanding.iter().position(|o| {
            o.src_port == r.dst_port
                && o.seq.wrapping_add(1) == r.ack
                && self.replicas[o.replica].0.addr == r.src
                && self.replicas[o.replica].0.endpoints[o.endpoint].port == r.src_port
        }) else {
            return false;
        };
        let o = self.take(k);
        self.outcome(o, r.syn_ack, false, now, changes);
        true
    }

    fn outcome(
        &mut self,
        o: Outstanding,
        ok: bool,
        silent: bool,
        now: u64,
        changes: &mut Vec<Change>,
    ) {
        let (r, si) = &mut self.replicas[o.replica];
        let s = &self.settings[*si];
        let ep = &mut r.endpoints[o.endpoint];
        if !silent {
            ep.lost = 0;
        }
        if ok {
            if ep.oks == 0 {
                ep.first_ok_ns = o.sent_ns;
            }
            ep.oks = ep.oks.saturating_add(1);
            ep.fails = 0;
            ep.first_fail_ns = 0;
            if r.down && now >= r.hold_until_ns && r.endpoints.iter().all(|e| e.oks >= s.rise) {
                r.down = false;
                let first = r
                    .endpoints
                    .iter()
                    .map(|e| e.first_ok_ns)
                    .min()
                    .unwrap_or(now);
                changes.push(Change {
                    replica: r.id,
                    down: false,
                    cause: Cause::Recovered,
                    first_sign_ns: first,
                    at_ns: now,
                });
            }
            return;
        }
        if ep.fails == 0 {
            ep.first_fail_ns = o.sent_ns;
        }
        ep.fails = ep.fails.saturating_add(1);
        ep.oks = 0;
        if r.down {
            return;
        }
        let port = ep.port;
        let (fails, first_fail) = (ep.fails, ep.first_fail_ns);
        let cause = match r.suspect {
            // A RST is an answer, not a silence that loss could explain: nothing listens
            // on the port any more, and one is proof enough for a suspect.
            Some(sp) if !silent || fails >= s.suspect_burst.min(s.fall) => {
                let cause = match sp.why {
                    Why::Signal(kind) => Cause::Confirmed(kind, port),
                    Why::Unanswered => Cause::Probes(port, silent),
                    Why::ArpSilent => Cause::ArpSilent(port),
                };
                Some((cause, sp.since_ns.min(first_fail)))
            }
            _ if fails >= s.fall => Some((Cause::Probes(port, silent), first_fail)),
            _ => None,
        };
        if let Some((cause, first)) = cause {
            Self::down(r, cause, first, now, changes);
        } else if silent && !o.burst && r.suspect.is_none() {
            // A silent host: confirm it now rather than after `fall` intervals.
            tracing::info!(replica = r.id.0, addr = %r.addr, port,
                "probe unanswered by a silent host: probing it now");
            r.suspect = Some(Suspect {
                why: Why::Unanswered,
                since_ns: first_fail,
                left: s.suspect_burst,
                next_ns: now,
            });
        }
    }

    fn down(r: &mut Replica, cause: Cause, first: u64, now: u64, changes: &mut Vec<Change>) {
        r.down = true;
        r.suspect = None;
        if cause == Cause::OutputLag {
            r.hold_until_ns = now.saturating_add(OUTPUT_LAG_HOLD_NS);
        }
        for e in &mut r.endpoints {
            e.oks = 0;
        }
        changes.push(Change {
            replica: r.id,
            down: true,
            cause,
            first_sign_ns: first,
            at_ns: now,
        });
    }

    /// A worker's signal about `id`. Output lag takes it down at once; the others start
    /// a suspect burst (unless one runs); `NeighbourMissing` and `Diverged` are no health
    /// signals.
    pub fn signal(&mut self, id: ReplicaId, kind: SignalKind, now: u64, changes: &mut Vec<Change>) {
        let Some((r, si)) = self.replicas.iter_mut().find(|(r, _)| r.id == id) else {
            return;
        };
        if r.down {
            return;
        }
        match kind {
            // Neither says the replica is dead: a missing MAC is the control core's to
            // resolve, a divergence its to count and report.
            SignalKind::NeighbourMissing | SignalKind::Diverged => {}
            SignalKind::OutputLag => Self::down(r, Cause::OutputLag, now, now, changes),
            _ => {
                if r.suspect.is_none() {
                    tracing::info!(replica = id.0, addr = %r.addr, ?kind, "replica suspect: probing it now");
                    r.suspect = Some(Suspect {
                        why: Why::Signal(kind),
                        since_ns: now,
                        left: self.settings[*si].suspect_burst,
                        next_ns: now,
                    });
                }
            }
        }
    }

    /// The host `id` left an ARP refresh and its retries unanswered since `since`: it is
    /// suspect, and a probe burst starts at `now` (unless one runs). The burst confirms it
    /// (down, [`Cause::ArpSilent`]) as it confirms a worker's signal, or clears it: a host
    /// that answers its probes keeps its flows, whatever became of its ARP replies.
    /// Returns whether a burst started.
    pub fn arp_silent(&mut self, id: ReplicaId, since: u64, now: u64) -> bool {
        let Some((r, si)) = self
            .replicas
            .iter_mut()
            .find(|(r, _)| r.id == id && !r.down)
        else {
            return false;
        };
        if r.suspect.is_some() {
            return false;
        }
        tracing::info!(replica = id.0, addr = %r.addr,
            "host silent to ARP: probing it now before anything fails over");
        r.suspect = Some(Suspect {
            why: Why::ArpSilent,
            since_ns: since,
            left: self.settings[*si].suspect_burst,
            next_ns: now,
        });
        true
    }
}

impl Default for Monitor {
    fn default() -> Self {
        Monitor::new()
    }
}

/// Writes the probe SYN `p` (from `src_mac`/`src_ip` to `dst_mac`) into `buf`; returns
/// its length.
pub fn probe_syn(
    buf: &mut [u8],
    p: &ProbeSend,
    src_mac: MacAddr,
    src_ip: Ipv4Addr,
    dst_mac: MacAddr,
) -> tandem_wire::Result<usize> {
    build::tcp(
        buf,
        &build::TcpBuild {
            src_mac,
            dst_mac,
            vlan_tci: None,
            src_ip,
            dst_ip: p.addr,
            src_port: p.src_port,
            dst_port: p.dst_port,
            seq: p.seq,
            ack: 0,
            flags: TcpFlags::SYN,
            window: 1024,
            ttl: 64,
            options: &[],
            payload: &[],
        },
    )
}

/// A TCP answer to a probe, as read from a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeReply {
    /// The replica's address.
    pub src: Ipv4Addr,
    /// Its port.
    pub src_port: u16,
    /// Our probe's source port.
    pub dst_port: u16,
    /// Its sequence number.
    pub seq: u32,
    /// Its ack.
    pub ack: u32,
    /// SYN-ACK (true) or RST (false).
    pub syn_ack: bool,
    /// The source MAC (where to send the RST).
    pub src_mac: MacAddr,
}

impl ProbeReply {
    /// Reads a SYN-ACK or RST to a probe source port; `None` for anything else.
    pub fn parse(frame: &[u8]) -> Option<ProbeReply> {
        let eth = EthernetFrame::new_checked(frame).ok()?;
        if eth.ethertype() != EtherType::IPV4 {
            return None;
        }
        let ip = Ipv4Packet::new_checked(frame.get(eth.header_len()..)?).ok()?;
        if ip.protocol() != tandem_wire::ipv4::protocol::TCP || ip.is_fragment() {
            return None;
        }
        let seg = TcpSegment::new_checked(ip.payload()).ok()?;
        if !(SRC_PORT_BASE..SRC_PORT_BASE + SRC_PORTS).contains(&seg.dst_port()) {
            return None;
        }
        let f = seg.flags();
        let syn_ack = f.contains(TcpFlags::SYN) && f.contains(TcpFlags::ACK);
        if !syn_ack && !f.contains(TcpFlags::RST) {
            return None;
        }
        Some(ProbeReply {
            src: ip.src(),
            src_port: seg.src_port(),
            dst_port: seg.dst_port(),
            seq: seg.seq(),
            ack: seg.ack(),
            syn_ack,
            src_mac: eth.src(),
        })
    }
}

/// Writes the RST that frees the replica's socket after the SYN-ACK `r` (to `r`'s
/// sender, from `src_mac`/`src_ip`); returns its length.
pub fn probe_rst(
    buf: &mut [u8],
    r: &ProbeReply,
    src_mac: MacAddr,
    src_ip: Ipv4Addr,
) -> tandem_wire::Result<usize> {
    build::tcp(
        buf,
        &build::TcpBuild {
            src_mac,
            dst_mac: r.src_mac,
            vlan_tci: None,
            src_ip,
            dst_ip: r.src,
            src_port: r.dst_port,
            dst_port: r.src_port,
            seq: r.ack,
            ack: 0,
            flags: TcpFlags::RST,
            window: 0,
            ttl: 64,
            options: &[],
            payload: &[],
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 11);
    const MS: u64 = 1_000_000;

    fn settings() -> Settings {
        Settings {
            ports: vec![7000, 80],
            interval_ns: 10 * MS,
            timeout_ns: 10 * MS,
            fall: 3,
            rise: 2,
            suspect_burst: 3,
            suspect_interval_ns: MS,
        }
    }

    fn monitor() -> Monitor {
        let mut m = Monitor::new();
        m.add(ReplicaId(0), A, &settings());
        m
    }

    /// One control pass at `now` with the workers up to date, and the workers' pass that
    /// sends what it queued 1 µs later. Nothing is heard on the data path.
    fn pass(m: &mut Monitor, now: u64, send: &mut Vec<ProbeSend>, changes: &mut Vec<Change>) {
        m.poll(now, now, |_| true, |_| 0, send, changes);
        m.poll(now + 1_000, now + 1_000, |_| true, |_| 0, send, changes);
    }

    /// Polls at `now`, answers every probe sent with `answer(port)` (Some(ok)) or not at
    /// all (None), after `delay`.
    /// What `p`'s replica answers, acking `ack`.
    fn answer_to(p: &ProbeSend, ack: u32, syn_ack: bool) -> ProbeReply {
        ProbeReply {
            src: p.addr,
            src_port: p.dst_port,
            dst_port: p.src_port,
            seq: 42,
            ack,
            syn_ack,
            src_mac: MacAddr([2, 0, 0, 0, 0, 2]),
        }
    }

    fn step(
        m: &mut Monitor,
        now: u64,
        delay: u64,
        answer: impl Fn(u16) -> Option<bool>,
        changes: &mut Vec<Change>,
    ) -> usize {
        let mut send = Vec::new();
        pass(m, now, &mut send, changes);
        for p in &send {
            if let Some(ok) = answer(p.dst_port) {
                assert!(m.reply(
                    &answer_to(p, p.seq.wrapping_add(1), ok),
                    now + delay,
                    changes
                ));
            }
        }
        send.len()
    }

    #[test]
    fn fall_after_consecutive_failures_rise_after_successes() {
        let mut m = monitor();
        let mut ch = Vec::new();
        // Healthy: both ports answer.
        for t in 0..5 {
            assert_eq!(
                step(&mut m, t * 10 * MS, 100_000, |_| Some(true), &mut ch),
                2
            );
        }
        assert!(ch.is_empty());
        // Port 7000 answers RST: down on the third failure.
        for t in 5..7 {
            step(&mut m, t * 10 * MS, 100_000, |p| Some(p != 7000), &mut ch);
            assert!(ch.is_empty());
        }
        step(&mut m, 70 * MS, 100_000, |p| Some(p != 7000), &mut ch);
        assert_eq!(ch.len(), 1);
        assert!(ch[0].down && m.is_down(ReplicaId(0)));
        assert_eq!(ch[0].cause, Cause::Probes(7000, false));
        assert_eq!(ch[0].first_sign_ns, 50 * MS);
        assert_eq!(ch[0].elapsed_us(), 20_100);
        ch.clear();
        // Recovery: up after `rise` good probes on every port.
        step(&mut m, 80 * MS, 100_000, |_| Some(true), &mut ch);
        assert!(ch.is_empty());
        step(&mut m, 90 * MS, 100_000, |_| Some(true), &mut ch);
        assert_eq!(ch.len(), 1);
        assert!(!ch[0].down && ch[0].cause == Cause::Recovered);
        assert!(!m.is_down(ReplicaId(0)));
    }

    #[test]
    fn an_added_replica_starts_down_and_a_removed_one_is_forgotten() {
        let b = Ipv4Addr::new(198, 19, 0, 12);
        let mut m = monitor();
        assert!(m.add_down(ReplicaId(1), b, &settings()));
        assert!(!m.add_down(ReplicaId(1), b, &settings()), "probed already");
        assert!(m.is_down(ReplicaId(1)));
        let mut ch = Vec::new();
        step(&mut m, 0, 100_000, |_| Some(true), &mut ch);
        assert!(ch.is_empty(), "{ch:?}");
        step(&mut m, 10 * MS, 100_000, |_| Some(true), &mut ch);
        assert_eq!(ch.len(), 1, "{ch:?}");
        assert!(!ch[0].down && ch[0].replica == ReplicaId(1));
        // Removed with probes outstanding: they are forgotten, the other replica's kept
        // and still matched to it.
        let mut send = Vec::new();
        pass(&mut m, 20 * MS, &mut send, &mut ch);
        assert_eq!(send.len(), 4);
        m.remove(ReplicaId(0));
        assert_eq!(m.outstanding(), 2);
        for p in &send {
            let mine = p.addr == b;
            assert_eq!(
                m.reply(&answer_to(p, p.seq.wrapping_add(1), true), 21 * MS, &mut ch),
                mine
            );
        }
        assert_eq!(m.outstanding(), 0);
        // Not probed any more: only the other replica's probes go out.
        send.clear();
        pass(&mut m, 30 * MS, &mut send, &mut ch);
        assert_eq!(send.len(), 2, "{send:?}");
        assert!(send.iter().all(|p| p.addr == b), "{send:?}");
    }

    #[test]
    fn new_settings_keep_the_ports_still_probed_and_their_outstanding_probes() {
        let mut m = monitor();
        let mut ch = Vec::new();
        let mut send = Vec::new();
        pass(&mut m, 0, &mut send, &mut ch);
        assert_eq!(send.len(), 2);
        // Reloaded: port 80 no longer probed, 9000 now, a slower interval.
        let s = Settings {
            ports: vec![9000, 7000],
            interval_ns: 50 * MS,
            ..settings()
        };
        m.set_settings(ReplicaId(0), &s);
        assert_eq!(m.outstanding(), 1, "the probe of port 80 is forgotten");
        for p in &send {
            // The probe of 7000 is still matched to its port; that of 80 is not ours.
            assert_eq!(
                m.reply(&answer_to(p, p.seq.wrapping_add(1), true), MS, &mut ch),
                p.dst_port == 7000
            );
        }
        assert!(ch.is_empty() && !m.is_down(ReplicaId(0)), "its state stays");
        send.clear();
        pass(&mut m, 10 * MS, &mut send, &mut ch);
        let ports: Vec<u16> = send.iter().map(|p| p.dst_port).collect();
        assert_eq!(ports, [9000, 7000]);
        for p in &send {
            assert!(m.reply(&answer_to(p, p.seq.wrapping_add(1), true), 11 * MS, &mut ch));
        }
        // The next probes after the new interval only.
        send.clear();
        pass(&mut m, 30 * MS, &mut send, &mut ch);
        assert!(send.is_empty(), "{send:?}");
        pass(&mut m, 61 * MS, &mut send, &mut ch);
        assert_eq!(send.len(), 2);
        // No port: not probed any more.
        m.set_settings(
            ReplicaId(0),
            &Settings {
                ports: Vec::new(),
                ..settings()
            },
        );
        send.clear();
        pass(&mut m, 200 * MS, &mut send, &mut ch);
        assert!(send.is_empty() && m.outstanding() == 0);
    }

    #[test]
    fn a_silent_host_is_down_after_one_interval_one_timeout_and_a_burst() {
        let mut m = monitor();
        let mut ch = Vec::new();
        // Healthy at 0, dead just after: the 10 ms probes go unanswered.
        step(&mut m, 0, 0, |_| Some(true), &mut ch);
        let mut t = MS;
        while ch.is_empty() && t < 200 * MS {
            pass(&mut m, t, &mut Vec::new(), &mut ch);
            t += MS;
        }
        assert_eq!(ch.len(), 1);
        assert!(ch[0].down);
        assert!(matches!(ch[0].cause, Cause::Probes(_, true)));
        assert_eq!(ch[0].first_sign_ns, 10 * MS, "the first unanswered probe");
        // Timed out at 20 ms; the burst at 20, 21, 22 ms: the second burst probe's
        // timeout is the third failure in a row.
        assert!(
            ch[0].at_ns <= 32 * MS,
            "down at {} µs, later than 3 intervals + 2 ms",
            ch[0].at_ns / 1_000
        );
    }

    #[test]
    fn a_success_resets_the_count_of_failures() {
        let mut m = monitor();
        let mut ch = Vec::new();
        // RST twice, a SYN-ACK, RST twice: never three in a row.
        for (t, ok) in [
            (0, false),
            (10, false),
            (20, true),
            (30, false),
            (40, false),
        ] {
            step(&mut m, t * MS, 0, |_| Some(ok), &mut ch);
        }
        assert!(ch.is_empty());
        step(&mut m, 50 * MS, 0, |_| Some(false), &mut ch);
        assert_eq!(ch.len(), 1);
        assert!(matches!(ch[0].cause, Cause::Probes(_, false)));
        assert_eq!(ch[0].first_sign_ns, 30 * MS);
    }

    #[test]
    fn probes_unanswered_while_the_data_path_hears_the_host_are_lost_not_failed() {
        let mut m = monitor();
        let mut ch = Vec::new();
        let mut send = Vec::new();
        // Overload: no probe answer for 150 ms, but segments from the host keep coming.
        for t in 0..150 {
            let now = t * MS;
            m.poll(now, now, |_| true, |_| now, &mut send, &mut ch);
        }
        assert!(ch.is_empty(), "{ch:?}");
        assert!(m.probes_lost() >= 20, "lost {}", m.probes_lost());
        // A run that long is suspect even so (a listener that drops SYNs on a busy host
        // looks the same): the burst's silences count.
        for t in 150..400 {
            let now = t * MS;
            m.poll(now, now, |_| true, |_| now, &mut send, &mut ch);
        }
        assert!(ch.len() == 1 && ch[0].down, "{ch:?}");
        // An answer breaks the run.
        let mut m = monitor();
        let mut ch = Vec::new();
        for t in 0..400 {
            let now = t * MS;
            let mut send = Vec::new();
            m.poll(now, now, |_| true, |_| now, &mut send, &mut ch);
            if t % 100 == 0 {
                for p in &send {
                    m.reply(&answer_to(p, p.seq.wrapping_add(1), true), now, &mut ch);
                }
            }
        }
        assert!(ch.is_empty(), "{ch:?}");
    }

    #[test]
    fn no_probe_times_out_before_the_workers_have_looked_for_its_answer() {
        let mut m = monitor();
        let mut ch = Vec::new();
        let mut send = Vec::new();
        // The workers are descheduled from 0.5 ms to 60 ms: their stamp stays at 0.5 ms
        // while the control core goes on queueing probes.
        for t in 0..60 {
            m.poll(t * MS, MS / 2, |_| true, |_| 0, &mut send, &mut ch);
        }
        assert!(ch.is_empty());
        assert_eq!(send.len(), 12, "a probe per port every 10 ms");
        // They run again, and hand over the answers that came meanwhile.
        for p in &send {
            m.reply(&answer_to(p, p.seq.wrapping_add(1), true), 60 * MS, &mut ch);
        }
        m.poll(60 * MS, 60 * MS, |_| true, |_| 0, &mut Vec::new(), &mut ch);
        assert!(
            ch.is_empty() && m.outstanding() == 2,
            "only the 60 ms probes"
        );
        // A probe queued while the workers slept starts its timeout when they send it.
        let mut m = monitor();
        let mut send = Vec::new();
        m.poll(0, 0, |_| true, |_| 0, &mut send, &mut ch);
        m.poll(MS / 100, MS / 100, |_| true, |_| 0, &mut send, &mut ch);
        m.poll(40 * MS, MS / 50, |_| true, |_| 0, &mut send, &mut ch);
        let fails = |m: &Monitor| m.replicas[0].0.endpoints[0].fails;
        assert_eq!(
            (fails(&m), send.len()),
            (0, 4),
            "the workers have not looked"
        );
        m.poll(41 * MS, 41 * MS, |_| true, |_| 0, &mut send, &mut ch);
        assert_eq!(
            fails(&m),
            1,
            "the 0 ms probes went out at 10 µs and timed out"
        );
        m.poll(50 * MS, 50 * MS, |_| true, |_| 0, &mut send, &mut ch);
        assert_eq!(fails(&m), 1, "the 40 ms probes went out at 41 ms: not yet");
        m.poll(51 * MS, 51 * MS, |_| true, |_| 0, &mut send, &mut ch);
        assert_eq!(fails(&m), 2, "now they have");
    }

    #[test]
    fn a_confirmed_suspect_burst_takes_the_replica_down_in_milliseconds() {
        let mut m = monitor();
        let mut ch = Vec::new();
        step(&mut m, 0, 0, |_| Some(true), &mut ch);
        // The server process dies: the kernel answers RST on 7000.
        m.signal(ReplicaId(0), SignalKind::UnmatchedFin, 2 * MS, &mut ch);
        assert!(ch.is_empty());
        // The first burst probe's RST confirms it.
        let dead = |p: u16| Some(p != 7000);
        assert_eq!(step(&mut m, 2 * MS, 50_000, dead, &mut ch), 2);
        assert_eq!(ch.len(), 1);
        assert_eq!(
            ch[0].cause,
            Cause::Confirmed(SignalKind::UnmatchedFin, 7000)
        );
        assert_eq!(ch[0].first_sign_ns, 2 * MS);
        assert_eq!(ch[0].elapsed_us(), 50);
        assert_eq!(step(&mut m, 3 * MS, 50_000, dead, &mut ch), 0, "burst over");
    }

    #[test]
    fn an_unconfirmed_burst_clears_the_suspect() {
        let mut m = monitor();
        let mut ch = Vec::new();
        m.signal(ReplicaId(0), SignalKind::AckLag, 0, &mut ch);
        for k in 0..4 {
            step(&mut m, k * MS, 10_000, |_| Some(true), &mut ch);
        }
        assert!(ch.is_empty() && !m.is_down(ReplicaId(0)));
        assert!(m.replicas[0].0.suspect.is_none());
        // A new signal starts a new burst.
        m.signal(ReplicaId(0), SignalKind::UnmatchedRst, 5 * MS, &mut ch);
        assert!(m.replicas[0].0.suspect.is_some());
    }

    #[test]
    fn output_lag_needs_no_confirmation_but_arp_silence_does() {
        let mut m = monitor();
        let mut ch = Vec::new();
        m.signal(ReplicaId(0), SignalKind::NeighbourMissing, 0, &mut ch);
        assert!(ch.is_empty());
        m.signal(ReplicaId(0), SignalKind::OutputLag, 7 * MS, &mut ch);
        assert_eq!(ch.len(), 1);
        assert_eq!(ch[0].cause, Cause::OutputLag);
        m.signal(ReplicaId(0), SignalKind::OutputLag, 8 * MS, &mut ch);
        assert_eq!(ch.len(), 1, "a down replica changes no more");
        assert!(!m.arp_silent(ReplicaId(0), MS, 9 * MS), "down already");
        // ARP silence only starts a burst; a host that answers none of it is down.
        let mut m = monitor();
        ch.clear();
        assert!(m.arp_silent(ReplicaId(0), MS, 3 * MS));
        assert!(ch.is_empty() && !m.is_down(ReplicaId(0)));
        let mut t = 3 * MS;
        while ch.is_empty() && t < 100 * MS {
            pass(&mut m, t, &mut Vec::new(), &mut ch);
            t += MS;
        }
        assert_eq!(ch.len(), 1, "{ch:?}");
        assert!(matches!(ch[0].cause, Cause::ArpSilent(_)), "{ch:?}");
        assert_eq!(
            ch[0].first_sign_ns, MS,
            "from the first unanswered ARP request"
        );
    }

    #[test]
    fn a_stalled_horizon_still_fails_a_silent_replica_over_within_a_bound() {
        // A flood keeps a worker's stamp at 5 ms (the old control loop held the horizon
        // wherever a ring stayed busy); the host dies at 5 ms and answers nothing more.
        let mut m = monitor();
        let mut ch = Vec::new();
        step(&mut m, 0, 0, |_| Some(true), &mut ch);
        let stalled = 5 * MS;
        let mut t = MS;
        while ch.is_empty() && t < 10 * HORIZON_MAX_LAG_NS {
            m.poll(t, stalled, |_| true, |_| 0, &mut Vec::new(), &mut ch);
            assert!(m.outstanding() <= 2 * (MAX_ROUTINE_OUTSTANDING as usize + 3));
            t += MS;
        }
        assert_eq!(ch.len(), 1, "never failed over");
        assert!(ch[0].down && matches!(ch[0].cause, Cause::Probes(_, true)));
        // The first probe after the death (10 ms) is judged a lag past its deadline; the
        // burst it starts is judged the same way.
        let bound = 10 * MS + 2 * (HORIZON_MAX_LAG_NS + 10 * MS) + 10 * MS;
        assert!(
            ch[0].at_ns <= bound,
            "down at {} ms, later than {} ms",
            ch[0].at_ns / MS,
            bound / MS
        );
        assert!(m.probes_past_horizon() >= 3, "{}", m.probes_past_horizon());
        // A horizon that lags less than the bound still holds the timeouts (the workers
        // have not looked for the answers yet): nothing is judged before it.
        let mut m = monitor();
        let mut ch = Vec::new();
        for t in 0..900 {
            m.poll(t * MS, 0, |_| true, |_| 0, &mut Vec::new(), &mut ch);
        }
        assert!(ch.is_empty() && m.probes_past_horizon() == 0, "{ch:?}");
    }

    #[test]
    fn outstanding_probes_stay_bounded_whatever_the_horizon() {
        let mut m = monitor();
        let mut ch = Vec::new();
        let mut send = Vec::new();
        // Workers stamped once at 1 µs, then a horizon that never moves; a suspect burst
        // on top. Routine probes every 10 ms on two ports for a second would be 200.
        m.signal(ReplicaId(0), SignalKind::AckLag, 0, &mut ch);
        let bound = 2 * (MAX_ROUTINE_OUTSTANDING as usize + 3);
        for t in 0..HORIZON_MAX_LAG_NS / MS {
            m.poll(t * MS, 1_000, |_| true, |_| 0, &mut send, &mut ch);
            assert!(m.outstanding() <= bound, "{} at {t} ms", m.outstanding());
        }
        assert_eq!(
            m.outstanding(),
            2 * (MAX_ROUTINE_OUTSTANDING as usize + 3),
            "each port: its routine probes and the burst"
        );
        assert!(m.probes_skipped() > 150, "{}", m.probes_skipped());
        assert!(ch.is_empty(), "nothing judged: {ch:?}");
        // Once the horizon moves past them, they are judged and probing goes on.
        let now = HORIZON_MAX_LAG_NS;
        m.poll(now, now, |_| true, |_| 0, &mut Vec::new(), &mut ch);
        let mut send = Vec::new();
        let later = now + 11 * MS;
        m.poll(later, later, |_| true, |_| 0, &mut send, &mut ch);
        assert_eq!(send.len(), 2, "{send:?}");
        assert_eq!(m.outstanding(), 2, "only the new ones");
    }

    #[test]
    fn a_frozen_replica_is_not_brought_back_by_its_kernel_answering_probes() {
        let mut m = monitor();
        let mut ch = Vec::new();
        m.signal(ReplicaId(0), SignalKind::OutputLag, MS, &mut ch);
        assert!(ch.len() == 1 && ch[0].down);
        ch.clear();
        // The kernel of a frozen process answers every probe.
        let mut t = 10 * MS;
        while t < OUTPUT_LAG_HOLD_NS {
            step(&mut m, t, 10_000, |_| Some(true), &mut ch);
            t += 10 * MS;
        }
        assert!(ch.is_empty(), "held down: {ch:?}");
        step(&mut m, t, 10_000, |_| Some(true), &mut ch);
        step(&mut m, t + 10 * MS, 10_000, |_| Some(true), &mut ch);
        assert!(ch.len() == 1 && !ch[0].down, "{ch:?}");
    }

    #[test]
    fn a_refused_probe_is_forgotten_and_timeouts_run_from_the_hand_off() {
        let mut m = monitor();
        let mut ch = Vec::new();
        let mut send = Vec::new();
        m.poll(0, 0, |_| true, |_| 0, &mut send, &mut ch);
        assert_eq!(m.outstanding(), 2);
        m.cancel(&send[0]);
        assert_eq!(m.outstanding(), 1);
        // Handed to the transmit path at 5 ms: a worker pass stamped 4 ms had not sent it.
        m.queued(5 * MS);
        m.poll(MS, 4 * MS, |_| true, |_| 0, &mut Vec::new(), &mut ch);
        m.poll(
            14 * MS,
            14 * MS + 1,
            |_| true,
            |_| 0,
            &mut Vec::new(),
            &mut ch,
        );
        let fails = |m: &Monitor| {
            m.replicas[0]
                .0
                .endpoints
                .iter()
                .map(|e| e.fails)
                .sum::<u32>()
        };
        assert_eq!(
            fails(&m),
            0,
            "sent by the 5+ ms pass: not timed out at 14 ms"
        );
        m.poll(25 * MS, 25 * MS, |_| true, |_| 0, &mut Vec::new(), &mut ch);
        assert_eq!(fails(&m), 1, "the cancelled probe never counts");
    }

    #[test]
    fn wrong_answers_are_ignored_and_frames_round_trip() {
        let mut m = monitor();
        let mut ch = Vec::new();
        let mut send = Vec::new();
        m.poll(0, 0, |_| true, |_| 0, &mut send, &mut ch);
        let p = send[0];
        assert!(!m.reply(&answer_to(&p, p.seq, true), 0, &mut ch));
        let stranger = ProbeReply {
            src: Ipv4Addr::new(1, 2, 3, 4),
            ..answer_to(&p, p.seq.wrapping_add(1), true)
        };
        assert!(!m.reply(&stranger, 0, &mut ch));
        assert_eq!(m.outstanding(), 2);
        let (mac_a, mac_b) = (MacAddr([2, 0, 0, 0, 0, 1]), MacAddr([2, 0, 0, 0, 0, 2]));
        let me = Ipv4Addr::new(198, 19, 0, 1);
        let mut buf = [0u8; 128];
        let n = probe_syn(&mut buf, &p, mac_a, me, mac_b).unwrap_or(0);
        assert_eq!(n, 54);
        // The probe itself is no reply (a SYN only).
        assert_eq!(ProbeReply::parse(&buf[..n]), None);
        // A SYN-ACK from the replica.
        let synack = build::TcpBuild {
            src_mac: mac_b,
            dst_mac: mac_a,
            vlan_tci: None,
            src_ip: A,
            dst_ip: me,
            src_port: p.dst_port,
            dst_port: p.src_port,
            seq: 42,
            ack: p.seq.wrapping_add(1),
            flags: TcpFlags::SYN | TcpFlags::ACK,
            window: 100,
            ttl: 64,
            options: &[],
            payload: &[],
        };
        let n = build::tcp(&mut buf, &synack).unwrap_or(0);
        let r = ProbeReply::parse(&buf[..n]);
        assert!(r.is_some_and(|r| r.syn_ack && r.ack == p.seq.wrapping_add(1) && r.src == A));
        let Some(r) = r else { return };
        let n = probe_rst(&mut buf, &r, mac_a, me).unwrap_or(0);
        let ip = Ipv4Packet::new_checked(&buf[14..n]).ok();
        let seg = ip
            .as_ref()
            .and_then(|ip| TcpSegment::new_checked(ip.payload()).ok());
        assert!(seg.is_some_and(|s| s.flags() == TcpFlags::RST
            && s.seq() == p.seq.wrapping_add(1)
            && s.dst_port() == p.dst_port));
        assert!(m.reply(&r, 0, &mut ch));
    }
}
