//! `tandem flows`: each worker lists its own flows (only it may read its flow table)
//! into a list shared with the control core, which merges them into the answer
//! ([`crate::answer::Flows`]).
//!
//! The control core writes the filter, the limit and a request number into every
//! worker's [`FlowList`] and sends `tandem_runtime::msg::Command::ListFlows`; a worker walks its
//! table [`LIST_SLOTS_PER_PASS`] slots at a time, between its bursts (no burst waits for
//! a whole table), and stamps the list with the request number when it reaches the end;
//! the control core answers once every worker has, or after [`LIST_WAIT_NS`] with what
//! came. Both sides only `try_lock`: the worker goes on at its next pass, the control
//! core refuses a request while a list is busy. The list's capacity is reserved once:
//! listing allocates nothing on the worker.

use std::sync::Mutex;

use tandem_engine::{FlowRecord, ReplicaId, ServicePort};

use crate::mgmt::MAX_FLOWS_LISTED;

/// How long the control core waits for the workers' lists.
pub const LIST_WAIT_NS: u64 = 1_000_000_000;
/// Flow table slots a worker walks per pass while it lists (a few microseconds).
pub const LIST_SLOTS_PER_PASS: usize = 4096;

/// Which flows to list (resolved from a [`crate::mgmt::FlowQuery`] by the control core).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowFilter {
    /// The service's VIP and port.
    pub service: Option<(u32, ServicePort)>,
    /// A leg on this replica, at this address (a slot's earlier replica does not count).
    pub replica: Option<(ReplicaId, u32)>,
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
            && self.replica.is_none_or(|(id, addr)| r.has_leg_on(id, addr))
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
    /// Records wanted at most.
    pub limit: usize,
    /// The request being walked, and the next slot.
    pub walking: (u64, usize),
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
            limit: MAX_FLOWS_LISTED,
            walking: (0, 0),
            matched: 0,
            records: Vec::with_capacity(MAX_FLOWS_LISTED),
        }))
    }
}

/// What a worker's walk of `slots` from a slot did: flows matched, and the next slot
/// (`None`: the end of the table).
pub type Walked = (usize, Option<usize>);

impl FlowList {
    /// Worker: goes on with the pending request: `walk(from, filter, limit, records)`
    /// lists a part of its table (the engine's `list_flows`). Returns whether the request
    /// is still pending (the list was busy, or the table not walked to its end).
    pub fn step(
        &self,
        walk: impl FnOnce(usize, &FlowFilter, usize, &mut Vec<FlowRecord>) -> Walked,
    ) -> bool {
        let Ok(mut s) = self.0.try_lock() else {
            return true;
        };
        let st = &mut *s;
        if st.done == st.asked {
            return false;
        }
        if st.walking.0 != st.asked {
            // A new request: start from the top.
            st.records.clear();
            st.matched = 0;
            st.walking = (st.asked, 0);
        }
        let (matched, next) = walk(st.walking.1, &st.filter, st.limit, &mut st.records);
        st.matched += matched;
        match next {
            Some(n) => {
                st.walking.1 = n;
                true
            }
            None => {
                st.done = st.asked;
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::Flows;
    use std::net::Ipv4Addr;
    use tandem_engine::{FlowKey, FlowPhase};

    /// Replica `id`'s address in these tests.
    fn addr_of(id: u16) -> u32 {
        u32::from(Ipv4Addr::new(198, 19, 0, 11)) + u32::from(id)
    }

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
        for ((slot, addr), &(id, alive)) in r.legs.iter_mut().zip(&mut r.addrs).zip(legs) {
            *slot = (ReplicaId(id), alive);
            *addr = addr_of(id);
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
            replica: Some((ReplicaId(2), addr_of(2))),
            client_ip: Some(r.key.client_ip),
            client_port: Some(4000),
        }));
        assert!(!f(FlowFilter {
            service: Some((vip, ServicePort::Port(80))),
            ..FlowFilter::default()
        }));
        assert!(!f(FlowFilter {
            replica: Some((ReplicaId(1), addr_of(1))),
            ..FlowFilter::default()
        }));
        // Slot 2 reused by another replica: the flow has no copy on that one.
        assert!(!f(FlowFilter {
            replica: Some((ReplicaId(2), addr_of(9))),
            ..FlowFilter::default()
        }));
        assert!(!f(FlowFilter {
            client_port: Some(4001),
            ..FlowFilter::default()
        }));
    }

    #[test]
    fn a_worker_walks_its_table_in_parts_once_per_request_without_growing_the_list() {
        let list = FlowList::default();
        let cap = list.0.lock().map(|s| s.records.capacity()).unwrap_or(0);
        assert!(cap >= MAX_FLOWS_LISTED);
        let mut calls = Vec::new();
        // No request yet: nothing to do.
        assert!(!list.step(|from, _, _, _| {
            calls.push(from);
            (0, None)
        }));
        assert!(calls.is_empty());
        if let Ok(mut s) = list.0.lock() {
            s.asked = 1;
            s.limit = 1;
            s.filter.client_port = Some(4000);
        }
        // A table of three parts: each pass walks one, two flows match in each; one is
        // listed (the limit).
        let walk = |from: usize, f: &FlowFilter, limit: usize, v: &mut Vec<FlowRecord>| {
            for port in [4000, 4000, 4001] {
                let r = rec(port, &[(0, true)], 0);
                if f.keeps(&r) && v.len() < limit {
                    v.push(r);
                }
            }
            (2, (from < 2).then_some(from + 1))
        };
        assert!(list.step(walk));
        assert!(list.step(walk));
        assert!(!list.step(walk), "the end of the table");
        assert!(!list.step(|_, _, _, _| panic!("answered already")));
        {
            let s = list.0.lock().expect("lock");
            assert_eq!((s.done, s.matched, s.records.len()), (1, 6, 1));
            assert_eq!(s.records.capacity(), cap);
        }
        // A new request starts from the top; a held lock: the worker does not wait.
        let held = list.0.lock().expect("lock");
        assert!(list.step(|_, _, _, _| panic!("locked")));
        drop(held);
        if let Ok(mut s) = list.0.lock() {
            s.asked = 2;
        }
        let mut first = None;
        assert!(list.step(|from, _, _, _| {
            first = Some(from);
            (0, Some(from + 1))
        }));
        assert_eq!(first, Some(0));
        assert_eq!(
            list.0.lock().map(|s| (s.matched, s.records.len())).ok(),
            Some((0, 0))
        );
    }

    #[test]
    fn the_answer_names_replicas_marks_the_active_and_the_dead_and_counts() {
        let names = vec![
            ("lab/primary".to_owned(), ReplicaId(0), addr_of(0)),
            ("lab/backup".to_owned(), ReplicaId(1), addr_of(1)),
        ];
        let services = vec![(
            "lab".to_owned(),
            u32::from(Ipv4Addr::new(198, 18, 0, 100)),
            ServicePort::Any,
        )];
        let mut r2 = rec(4001, &[(0, false), (1, true)], 1);
        r2.unprotected = true;
        // A flow whose dead leg's slot now has another replica: shown by address.
        let mut r3 = rec(4002, &[(0, true), (1, false)], 0);
        r3.addrs[1] = addr_of(7);
        let records = [rec(4000, &[(0, true), (1, true)], 0), r2, r3];
        let text = Flows::of(&records, 4, 3, &names, &services, &[3]).to_string();
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
        assert!(
            lines[3].ends_with("lab/primary*,198.19.0.18(dead)"),
            "{text}"
        );
        assert_eq!(
            lines[4],
            "flows: 4 matched, 3 shown (limit=3; the others not shown)"
        );
        assert!(lines[5].contains("lcore 3 did not answer"), "{text}");
    }
}
