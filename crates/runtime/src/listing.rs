//! `tandem flows`: each worker lists its own flows (only it may read its flow table)
//! into a list shared with the control core, which merges and formats them.
//!
//! The control core writes the filter and a request number into every worker's
//! [`FlowList`] and sends [`crate::msg::Command::ListFlows`]; a worker fills the list
//! between two bursts (a pass over its table: tens of microseconds per thousand flows,
//! the price of an operator's command) and stamps it with the request number; the
//! control core answers once every worker has, or after [`LIST_WAIT_NS`] with what came.
//! Both sides only `try_lock`: the worker retries on its next pass, the control core on
//! its next loop. The list's capacity is reserved once: listing allocates nothing on the
//! worker.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::sync::Mutex;

use tandem_engine::{FlowPhase, FlowRecord, ReplicaId, ServicePort};

use crate::mgmt::MAX_FLOWS_LISTED;

/// How long the control core waits for the workers' lists.
pub const LIST_WAIT_NS: u64 = 1_000_000_000;

/// Which flows to list (resolved from a [`crate::mgmt::FlowQuery`] by the control core).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowFilter {
    /// The service's VIP and port.
    pub service: Option<(u32, ServicePort)>,
    /// A leg on this replica.
    pub replica: Option<ReplicaId>,
    /// The client's address.
    pub client_ip: Option<u32>,
    /// The client's port.
    pub client_port: Option<u16>,
}

impl FlowFilter {
    /// Whether `r` passes.
    pub fn keeps(&self, r: &FlowRecord) -> bool {
        self.service
            .is_none_or(|(vip, port)| r.key.vip == vip && port.covers(r.key.vip_port))
            && self
                .replica
                .is_none_or(|id| r.legs().iter().any(|(l, _)| *l == id))
            && self.client_ip.is_none_or(|ip| r.key.client_ip == ip)
            && self.client_port.is_none_or(|p| r.key.client_port == p)
    }
}

/// A request and its answer, shared by the control core and one worker.
#[derive(Debug)]
pub struct ListState {
    /// The control core's request number (0: none yet).
    pub asked: u64,
    /// The request number the records answer.
    pub done: u64,
    /// The request's filter.
    pub filter: FlowFilter,
    /// Flows that passed the filter, listed or not.
    pub matched: usize,
    /// The first of them, up to the capacity.
    pub records: Vec<FlowRecord>,
}

/// One worker's flow list.
#[derive(Debug)]
pub struct FlowList(pub Mutex<ListState>);

impl Default for FlowList {
    fn default() -> FlowList {
        FlowList(Mutex::new(ListState {
            asked: 0,
            done: 0,
            filter: FlowFilter::default(),
            matched: 0,
            records: Vec::with_capacity(MAX_FLOWS_LISTED),
        }))
    }
}

impl FlowList {
    /// Worker: answers the pending request with `list` (the engine's `list_flows`).
    /// Returns false if the list was locked (try again on the next pass).
    pub fn fill(&self, list: impl FnOnce(&FlowFilter, &mut Vec<FlowRecord>) -> usize) -> bool {
        let Ok(mut s) = self.0.try_lock() else {
            return false;
        };
        if s.done != s.asked {
            let st = &mut *s;
            st.records.clear();
            st.matched = list(&st.filter, &mut st.records);
            st.done = st.asked;
        }
        true
    }
}

/// What the control core shows of one replica: its `service/replica` name.
pub type Names<'a> = &'a [(String, ReplicaId)];

fn name_of(names: Names<'_>, id: ReplicaId) -> &str {
    names
        .iter()
        .find(|(_, r)| *r == id)
        .map_or("(removed)", |(n, _)| n.as_str())
}

/// Seconds with one decimal, for ages.
fn secs(ns: u64) -> String {
    format!("{:.1}s", ns as f64 / 1e9)
}

/// The `flows` answer: a header, one line per flow (at most `limit`), and a total.
/// `services` maps a flow's VIP and port to its service's name. A leg is written
/// `name*` when active and `name(dead)` when it is no longer part of the flow.
pub fn format_flows(
    records: &[FlowRecord],
    matched: usize,
    limit: usize,
    names: Names<'_>,
    services: &[(String, u32, ServicePort)],
    missing: &[u32],
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<21} {:<10} {:<11} {:>12} {:>12} {:>9} {:>8} {:>7}  replicas (* active)",
        "client", "service", "phase", "from_client", "to_client", "held", "age", "idle"
    );
    for r in records.iter().take(limit) {
        let service = services
            .iter()
            .find(|(_, vip, port)| *vip == r.key.vip && port.covers(r.key.vip_port))
            .map_or("?", |(n, _, _)| n.as_str());
        let phase = match r.phase {
            FlowPhase::Free => "free",
            FlowPhase::SynSent => "syn-sent",
            FlowPhase::Established => "established",
            FlowPhase::Closed => "closed",
        };
        let legs: Vec<String> = r
            .legs()
            .iter()
            .map(|&(id, alive)| {
                let n = name_of(names, id);
                match (alive, id == r.active) {
                    (false, _) => format!("{n}(dead)"),
                    (true, true) => format!("{n}*"),
                    (true, false) => n.to_owned(),
                }
            })
            .collect();
        let client = format!("{}:{}", Ipv4Addr::from(r.key.client_ip), r.key.client_port);
        let _ = writeln!(
            s,
            "{client:<21} {service:<10} {phase:<11} {:>12} {:>12} {:>9} {:>8} {:>7}  {}{}",
            r.bytes_from_client,
            r.bytes_to_client,
            r.held_bytes,
            secs(r.age_ns),
            secs(r.idle_ns),
            legs.join(","),
            if r.unprotected { " (unprotected)" } else { "" }
        );
    }
    let shown = records.len().min(limit);
    let _ = write!(s, "flows: {matched} matched, {shown} shown");
    if matched > shown {
        let _ = write!(s, " (limit={limit}; the others not shown)");
    }
    s.push('\n');
    if !missing.is_empty() {
        let l: Vec<String> = missing.iter().map(u32::to_string).collect();
        let _ = writeln!(
            s,
            "warning: the worker(s) on lcore {} did not answer in time: their flows are missing",
            l.join(", ")
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_engine::FlowKey;

    fn rec(client_port: u16, legs: &[(u16, bool)], active: u16) -> FlowRecord {
        let mut r = FlowRecord {
            key: FlowKey {
                client_ip: u32::from(Ipv4Addr::new(198, 18, 0, 2)),
                client_port,
                vip: u32::from(Ipv4Addr::new(198, 18, 0, 100)),
                vip_port: 7000,
            },
            phase: FlowPhase::Established,
            n_legs: legs.len() as u8,
            active: ReplicaId(active),
            bytes_from_client: 16384,
            bytes_to_client: 32768,
            held_bytes: 1448,
            age_ns: 12_340_000_000,
            idle_ns: 50_000_000,
            ..FlowRecord::default()
        };
        for (slot, &(id, alive)) in r.legs.iter_mut().zip(legs) {
            *slot = (ReplicaId(id), alive);
        }
        r
    }

    #[test]
    fn the_filter_keeps_what_it_names() {
        let r = rec(4000, &[(0, true), (2, true)], 0);
        let vip = u32::from(Ipv4Addr::new(198, 18, 0, 100));
        assert!(FlowFilter::default().keeps(&r));
        let f = |f: FlowFilter| f.keeps(&r);
        assert!(f(FlowFilter {
            service: Some((vip, ServicePort::Any)),
            replica: Some(ReplicaId(2)),
            client_ip: Some(r.key.client_ip),
            client_port: Some(4000),
        }));
        assert!(!f(FlowFilter {
            service: Some((vip, ServicePort::Port(80))),
            ..FlowFilter::default()
        }));
        assert!(!f(FlowFilter {
            replica: Some(ReplicaId(1)),
            ..FlowFilter::default()
        }));
        assert!(!f(FlowFilter {
            client_port: Some(4001),
            ..FlowFilter::default()
        }));
    }

    #[test]
    fn a_worker_fills_the_list_once_per_request_without_growing_it() {
        let list = FlowList::default();
        let cap = list.0.lock().map(|s| s.records.capacity()).unwrap_or(0);
        assert!(cap >= MAX_FLOWS_LISTED);
        let mut calls = 0;
        // No request yet: nothing to do.
        assert!(list.fill(|_, _| {
            calls += 1;
            0
        }));
        assert_eq!(calls, 0);
        if let Ok(mut s) = list.0.lock() {
            s.asked = 1;
            s.filter.client_port = Some(4000);
        }
        assert!(list.fill(|f, v| {
            calls += 1;
            let r = rec(4000, &[(0, true)], 0);
            if f.keeps(&r) {
                v.push(r);
            }
            5
        }));
        assert!(list.fill(|_, _| {
            calls += 1;
            0
        }));
        assert_eq!(calls, 1, "answered once");
        let s = list.0.lock().expect("lock");
        assert_eq!((s.done, s.matched, s.records.len()), (1, 5, 1));
        assert_eq!(s.records.capacity(), cap);
        // A held lock: the worker does not wait.
        assert!(!list.fill(|_, _| 0));
    }

    #[test]
    fn the_answer_names_replicas_marks_the_active_and_the_dead_and_counts() {
        let names = vec![
            ("lab/primary".to_owned(), ReplicaId(0)),
            ("lab/backup".to_owned(), ReplicaId(1)),
        ];
        let services = vec![(
            "lab".to_owned(),
            u32::from(Ipv4Addr::new(198, 18, 0, 100)),
            ServicePort::Any,
        )];
        let mut r2 = rec(4001, &[(0, false), (1, true)], 1);
        r2.unprotected = true;
        let records = [rec(4000, &[(0, true), (1, true)], 0), r2];
        let text = format_flows(&records, 3, 2, &names, &services, &[3]);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("client"), "{text}");
        assert!(
            lines[1].starts_with("198.18.0.2:4000")
                && lines[1].contains(" lab ")
                && lines[1].contains("established")
                && lines[1].contains("16384")
                && lines[1].contains("12.3s")
                && lines[1].ends_with("lab/primary*,lab/backup"),
            "{text}"
        );
        assert!(
            lines[2].ends_with("lab/primary(dead),lab/backup* (unprotected)"),
            "{text}"
        );
        assert_eq!(
            lines[3],
            "flows: 3 matched, 2 shown (limit=2; the others not shown)"
        );
        assert!(lines[4].contains("lcore 3 did not answer"), "{text}");
    }
}
