//! The neighbours the control core resolves with ARP (RFC 826): each replica's next hop
//! (itself, or the inside gateway) and the gateways. Plain Rust: time is passed in, the
//! caller sends the requests and reads the frames ([`Neighbour::poll`],
//! [`Neighbour::heard`]), so it is tested without DPDK.
//!
//! - **Resolution.** An unresolved neighbour is asked for by broadcast every [`RETRY_NS`].
//! - **Refresh.** A resolved one is asked for every `timeouts.arp_refresh`, unicast to its
//!   known MAC (RFC 1122 §2.3.2.1). A request unanswered for [`REFRESH_RETRY_NS`] is
//!   sent again, [`REFRESH_RETRIES`] times: unicast, then broadcast last (a host that moved
//!   to another MAC answers that one). Only a whole round unanswered makes the neighbour
//!   *silent*, and then its replicas are probed in a burst (`Monitor::arp_silent`), which
//!   fails them over or clears them: one lost reply fails nothing (issue #14). A MAC is
//!   never forgotten: a stale MAC is better than a black hole.
//! - **MAC changes.** An ARP message (request or reply, asked for or not) that gives a
//!   resolved neighbour's address another MAC is a *claim*: logged and counted, not
//!   applied. It starts a refresh round to the known MAC (at once, unless one runs), and
//!   each request of the round goes to the claimed MAC as well. The claim is
//!   - *refused* as soon as the known MAC speaks (any ARP from it): the host is still
//!     there, and the claim a stale cache or a forgery;
//!   - *applied* when the round ends with the known MAC silent and the claimed MAC has
//!     spoken since it was first asked: the host moved;
//!   - *dropped* (unconfirmed) when the round ends with neither, and the neighbour is
//!     silent as above.
//!
//!   While a claim waits, and for [`CLAIM_HOLD_NS`] after one was refused or dropped,
//!   claims of other MACs are ignored and counted: forged messages cannot make the
//!   appliance ask its neighbours more than about once a second each. A forger that
//!   answers for a host that is really gone does win the claim; the probes then go to
//!   the forger's MAC.
//!
//!   Until a move is applied the workers send to the old MAC, so a replica that moved
//!   may fail its probes and fail over first; it comes back up on its probes once the new
//!   MAC is applied.

use std::net::Ipv4Addr;

use tandem_engine::{ReplicaId, Side};
use tandem_wire::MacAddr;

/// Time between ARP requests for a neighbour that has not answered.
pub const RETRY_NS: u64 = 1_000_000_000;
/// How long a refresh request waits for its answer before it is sent again (at most the
/// refresh period).
pub const REFRESH_RETRY_NS: u64 = 200_000_000;
/// Requests sent again in a refresh round before the neighbour is silent: a round is one
/// request and this many retries (the last one broadcast).
pub const REFRESH_RETRIES: u32 = 2;
/// No new claim of another MAC for a neighbour this long after one was refused or
/// dropped.
pub const CLAIM_HOLD_NS: u64 = 1_000_000_000;

/// A MAC claimed for a resolved neighbour's address, not applied yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim {
    /// The MAC claimed.
    pub mac: MacAddr,
    /// When the claim was first seen.
    pub since: u64,
    /// Whether a request has gone to it.
    asked: bool,
    /// Whether it has spoken since.
    answered: bool,
}

/// A neighbour the control core resolves.
#[derive(Debug, Clone)]
pub struct Neighbour {
    /// Its address.
    pub ip: Ipv4Addr,
    /// The side it is on.
    pub side: Side,
    /// Its MAC, once resolved.
    pub mac: Option<MacAddr>,
    /// What it is (`replica lab/primary`, `outside gateway`).
    pub what: String,
    /// Replicas whose next hop it is.
    pub replicas: Vec<ReplicaId>,
    /// When it was last asked for (0: never, or to be asked now).
    pub asked_at: u64,
    /// When its known MAC last spoke.
    pub seen_at: u64,
    /// Requests of the current refresh round so far, all unanswered (0: no round runs).
    tries: u32,
    /// When the current round's first request went.
    round_at: u64,
    /// Another MAC claimed for its address.
    claim: Option<Claim>,
    /// No new claim before this.
    claims_from: u64,
}

/// What [`Neighbour::poll`] asks of the control core.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Due {
    /// Send a request for the neighbour's address to this Ethernet destination.
    pub ask: Option<MacAddr>,
    /// Whether that request repeats an unanswered refresh.
    pub retry: bool,
    /// Send one to this claimed MAC as well.
    pub ask_claim: Option<MacAddr>,
    /// The round of requests that started at this time went unanswered: the neighbour's
    /// replicas are to be probed.
    pub silent_since: Option<u64>,
    /// A claim was decided at the end of a round.
    pub decided: Option<Decided>,
}

/// How a claim ended at the end of a refresh round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decided {
    /// The known MAC was silent and the claimed one spoke: it is the neighbour's MAC now.
    Applied {
        /// The MAC it had.
        old: MacAddr,
        /// The MAC it has.
        new: MacAddr,
    },
    /// Neither spoke: dropped.
    Unconfirmed(MacAddr),
}

/// What an ARP message from the neighbour's address did ([`Neighbour::heard`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Heard {
    /// Not a unicast MAC: ignored.
    Ignored,
    /// The neighbour is resolved (its first MAC).
    Resolved,
    /// Its known MAC spoke.
    Refreshed,
    /// Its known MAC spoke while another was claimed: that claim is refused.
    Refused(MacAddr),
    /// Another MAC is claimed for it: not applied until confirmed.
    Claim(MacAddr),
    /// The MAC claimed already spoke again.
    ClaimPending,
    /// Another MAC while a claim waits or just after one: ignored.
    ClaimIgnored(MacAddr),
}

impl Neighbour {
    /// An unresolved neighbour at `ip` on `side`, the next hop of `replicas`.
    pub fn new(ip: Ipv4Addr, side: Side, what: String, replicas: Vec<ReplicaId>) -> Neighbour {
        Neighbour {
            ip,
            side,
            mac: None,
            what,
            replicas,
            asked_at: 0,
            seen_at: 0,
            tries: 0,
            round_at: 0,
            claim: None,
            claims_from: 0,
        }
    }

    /// The MAC claimed for it and not applied yet, if any.
    pub fn claim(&self) -> Option<Claim> {
        self.claim
    }

    /// What is due at `now`, with `refresh_ns` between refresh rounds.
    pub fn poll(&mut self, now: u64, refresh_ns: u64) -> Due {
        let mut due = Due::default();
        let Some(mac) = self.mac else {
            if self.asked_at == 0 || now.saturating_sub(self.asked_at) >= RETRY_NS {
                self.asked_at = now;
                due.ask = Some(MacAddr::BROADCAST);
            }
            return due;
        };
        let gap = REFRESH_RETRY_NS.min(refresh_ns).max(1);
        if self.tries == 0 {
            let claim_waits = self.claim.is_some_and(|c| !c.asked);
            if !(self.asked_at == 0
                || now.saturating_sub(self.asked_at) >= refresh_ns
                || claim_waits)
            {
                return due;
            }
            self.tries = 1;
            self.round_at = now;
            due.ask = Some(mac);
        } else if now.saturating_sub(self.asked_at) < gap {
            return due;
        } else if self.tries <= REFRESH_RETRIES {
            self.tries += 1;
            due.retry = true;
            due.ask = Some(if self.tries > REFRESH_RETRIES {
                MacAddr::BROADCAST
            } else {
                mac
            });
        } else {
            // The whole round went unanswered by the known MAC.
            self.tries = 0;
            match self.claim {
                Some(c) if c.answered => {
                    self.claim = None;
                    self.mac = Some(c.mac);
                    self.seen_at = now;
                    due.decided = Some(Decided::Applied {
                        old: mac,
                        new: c.mac,
                    });
                    // The host is there, at its new MAC: not silent.
                    return due;
                }
                Some(c) if c.asked => {
                    self.claim = None;
                    self.claims_from = now.saturating_add(CLAIM_HOLD_NS);
                    due.decided = Some(Decided::Unconfirmed(c.mac));
                }
                // A claim that came too late in the round to be asked: the next round
                // (at once) asks it.
                _ => {}
            }
            due.silent_since = Some(self.round_at);
            return due;
        }
        self.asked_at = now;
        if let Some(c) = &mut self.claim {
            c.asked = true;
            due.ask_claim = Some(c.mac);
        }
        due
    }

    /// An ARP message (request or reply) from its address with sender MAC `mac`, at `now`.
    pub fn heard(&mut self, mac: MacAddr, now: u64) -> Heard {
        if !mac.is_unicast() {
            return Heard::Ignored;
        }
        let Some(known) = self.mac else {
            self.mac = Some(mac);
            self.seen_at = now;
            self.tries = 0;
            return Heard::Resolved;
        };
        if mac == known {
            self.seen_at = now;
            self.tries = 0;
            return match self.claim.take() {
                Some(c) => {
                    self.claims_from = now.saturating_add(CLAIM_HOLD_NS);
                    Heard::Refused(c.mac)
                }
                None => Heard::Refreshed,
            };
        }
        match &mut self.claim {
            Some(c) if c.mac == mac => {
                // Only what it says once asked counts as an answer.
                c.answered |= c.asked;
                Heard::ClaimPending
            }
            Some(_) => Heard::ClaimIgnored(mac),
            None if now < self.claims_from => Heard::ClaimIgnored(mac),
            None => {
                self.claim = Some(Claim {
                    mac,
                    since: now,
                    asked: false,
                    answered: false,
                });
                Heard::Claim(mac)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::{Cause, Monitor, Settings};

    const MS: u64 = 1_000_000;
    const S: u64 = 1_000 * MS;
    const REFRESH: u64 = 30 * S;
    const OLD: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x11]);
    const NEW: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x22]);
    const FORGED: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x33]);
    const IP: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 11);

    /// When a neighbour from [`resolved`] is first refreshed.
    const T0: u64 = MS + REFRESH;

    /// A neighbour asked for at 1 ms and resolved to `OLD` at 2 ms.
    fn resolved() -> Neighbour {
        let mut n = Neighbour::new(IP, Side::Inside, "replica lab/a".into(), vec![ReplicaId(0)]);
        assert_eq!(n.poll(MS, REFRESH).ask, Some(MacAddr::BROADCAST));
        assert_eq!(n.heard(OLD, 2 * MS), Heard::Resolved);
        n
    }

    /// Polls `n` every millisecond from `from` to `to`, answering from `answer(ask)` (the
    /// MAC that answers a request sent to `ask`, if any) 1 ms later; returns what was due.
    fn run(
        n: &mut Neighbour,
        from: u64,
        to: u64,
        answer: impl Fn(MacAddr) -> Option<MacAddr>,
    ) -> Vec<(u64, Due)> {
        let mut seen = Vec::new();
        let mut t = from;
        while t < to {
            let due = n.poll(t, REFRESH);
            for dst in due.ask.into_iter().chain(due.ask_claim) {
                if let Some(mac) = answer(dst) {
                    n.heard(mac, t + MS);
                }
            }
            if due != Due::default() {
                seen.push((t, due));
            }
            t += MS;
        }
        seen
    }

    #[test]
    fn one_lost_refresh_reply_is_retried_and_fails_nothing_when_the_retry_answers() {
        let mut n = resolved();
        // The reply to the 30 s refresh is lost; the host answers everything after.
        let lost = std::cell::Cell::new(true);
        let seen = run(&mut n, 3 * MS, 31 * S, |dst| {
            (!lost.replace(false) && dst == OLD).then_some(OLD)
        });
        let asks: Vec<(u64, Option<MacAddr>, bool)> =
            seen.iter().map(|(t, d)| (*t, d.ask, d.retry)).collect();
        assert_eq!(
            asks,
            [
                (T0, Some(OLD), false),
                (T0 + REFRESH_RETRY_NS, Some(OLD), true)
            ],
            "one refresh, one unicast retry"
        );
        assert!(
            seen.iter().all(|(_, d)| d.silent_since.is_none()),
            "{seen:?}"
        );
        assert_eq!(n.seen_at, T0 + REFRESH_RETRY_NS + MS);
        // A host that answers nothing is silent after the whole round (the last retry
        // broadcast), not before.
        let mut n = resolved();
        let seen = run(&mut n, 3 * MS, 31 * S, |_| None);
        let asks: Vec<Option<MacAddr>> = seen.iter().filter_map(|(_, d)| d.ask.map(Some)).collect();
        assert_eq!(asks, [Some(OLD), Some(OLD), Some(MacAddr::BROADCAST)]);
        let silent: Vec<(u64, Option<u64>)> = seen
            .iter()
            .filter(|(_, d)| d.silent_since.is_some())
            .map(|(t, d)| (*t, d.silent_since))
            .collect();
        let end = T0 + (1 + u64::from(REFRESH_RETRIES)) * REFRESH_RETRY_NS;
        assert_eq!(silent, [(end, Some(T0))]);
        assert_eq!(n.mac, Some(OLD), "a MAC is never forgotten");
    }

    #[test]
    fn a_silent_neighbour_is_probed_before_anything_fails_over() {
        let s = Settings {
            ports: vec![7000],
            interval_ns: 10 * MS,
            timeout_ns: 10 * MS,
            fall: 3,
            rise: 2,
            suspect_burst: 3,
            suspect_interval_ns: MS,
        };
        // The host answers its probes (its ARP replies are lost): the burst clears it.
        let mut m = Monitor::new();
        m.add(ReplicaId(0), IP, &s);
        let mut ch = Vec::new();
        assert!(m.arp_silent(ReplicaId(0), S, 2 * S));
        assert!(!m.arp_silent(ReplicaId(0), S, 2 * S), "one burst at a time");
        let mut t = 2 * S;
        while t < 2 * S + 100 * MS {
            let mut send = Vec::new();
            m.poll(t, t, |_| true, |_| 0, &mut send, &mut ch);
            for p in &send {
                let r = crate::health::ProbeReply {
                    src: p.addr,
                    src_port: p.dst_port,
                    dst_port: p.src_port,
                    seq: 1,
                    ack: p.seq.wrapping_add(1),
                    syn_ack: true,
                    src_mac: OLD,
                };
                assert!(m.reply(&r, t, &mut ch));
            }
            t += MS;
        }
        assert!(ch.is_empty() && !m.is_down(ReplicaId(0)), "{ch:?}");
        // A host that answers nothing: the burst confirms it.
        let mut m = Monitor::new();
        m.add(ReplicaId(0), IP, &s);
        m.arp_silent(ReplicaId(0), S, 2 * S);
        let mut t = 2 * S;
        while ch.is_empty() && t < 2 * S + 100 * MS {
            m.poll(t, t, |_| true, |_| 0, &mut Vec::new(), &mut ch);
            t += MS;
        }
        assert_eq!(ch.len(), 1, "{ch:?}");
        assert!(ch[0].down && ch[0].cause == Cause::ArpSilent(7000));
        assert_eq!(
            ch[0].first_sign_ns, S,
            "from the first unanswered ARP request"
        );
        assert!(ch[0].at_ns <= 2 * S + 20 * MS, "{ch:?}");
    }

    #[test]
    fn a_claimed_mac_is_applied_only_once_the_known_mac_stays_silent_and_the_new_one_answers() {
        // The host moved: the old MAC is gone, the new one announces itself and answers.
        let mut n = resolved();
        assert_eq!(n.heard(NEW, 5 * S), Heard::Claim(NEW));
        assert_eq!(n.mac, Some(OLD), "not applied on the word of one message");
        let seen = run(&mut n, 5 * S, 6 * S, |dst| {
            (dst == NEW || dst == MacAddr::BROADCAST).then_some(NEW)
        });
        // A round at once: each request to the old MAC and one to the new.
        assert_eq!(seen[0].1.ask, Some(OLD));
        assert_eq!(seen[0].1.ask_claim, Some(NEW));
        let (at, last) = seen.last().copied().unwrap_or_default();
        assert_eq!(last.decided, Some(Decided::Applied { old: OLD, new: NEW }));
        assert_eq!(last.silent_since, None, "it is there, at its new MAC");
        assert_eq!(
            at,
            5 * S + (1 + u64::from(REFRESH_RETRIES)) * REFRESH_RETRY_NS
        );
        assert!(
            seen[..seen.len() - 1]
                .iter()
                .all(|(_, d)| d.decided.is_none()),
            "{seen:?}"
        );
        assert_eq!(n.mac, Some(NEW));
        assert_eq!(n.heard(NEW, 6 * S), Heard::Refreshed);
    }

    #[test]
    fn a_claim_is_refused_while_the_known_mac_still_answers() {
        let mut n = resolved();
        assert_eq!(n.heard(FORGED, 5 * S), Heard::Claim(FORGED));
        // The forger answers whatever is sent to it; so does the real host.
        let seen = run(&mut n, 5 * S, 6 * S, |dst| {
            Some(if dst == FORGED { FORGED } else { OLD })
        });
        assert!(seen.iter().all(|(_, d)| d.decided.is_none()), "{seen:?}");
        assert_eq!(n.mac, Some(OLD));
        assert_eq!(n.claim(), None, "refused when the old MAC answered");
        // Forged claims right after are ignored for a while: they cannot make the
        // appliance ask its neighbours at their rate.
        assert_eq!(
            n.heard(FORGED, 5 * S + 500 * MS),
            Heard::ClaimIgnored(FORGED)
        );
        assert_eq!(n.poll(5 * S + 500 * MS, REFRESH), Due::default());
        assert_eq!(
            n.heard(FORGED, 5 * S + CLAIM_HOLD_NS + 2 * MS),
            Heard::Claim(FORGED)
        );
        // Another MAC while a claim waits is ignored; the known MAC speaking refuses it.
        assert_eq!(n.heard(NEW, 7 * S), Heard::ClaimIgnored(NEW));
        assert_eq!(n.heard(OLD, 7 * S), Heard::Refused(FORGED));
        assert_eq!(n.mac, Some(OLD));
        // A claim nobody confirms is dropped, and the round's silence reported.
        let mut n = resolved();
        n.heard(FORGED, 5 * S);
        let seen = run(&mut n, 5 * S, 6 * S, |_| None);
        let (_, last) = seen.last().copied().unwrap_or_default();
        assert_eq!(last.decided, Some(Decided::Unconfirmed(FORGED)));
        assert_eq!(last.silent_since, Some(5 * S));
        assert_eq!(n.mac, Some(OLD));
    }
}
