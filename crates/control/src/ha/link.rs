//! The HA link's socket: a non-blocking UDP socket bound to this appliance's address on
//! the link, driving a [`Node`] from the control core's loop. Only the peer's address
//! is listened to; what else arrives is counted and dropped. Each call does a bounded
//! amount of work, so that the control core never waits on the link.

use std::io;
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};

use super::transport::Delivery;
use super::{Accepted, Command, Node};
use crate::answer::{HaPeerStatus, HaStatus};

/// Datagrams read per [`HaLink::poll`] at most.
pub const MAX_RX_PER_POLL: usize = 256;
/// Datagrams sent per [`HaLink::poll`] at most (the rest go on the next call).
pub const MAX_TX_PER_POLL: usize = 256;
/// The largest datagram read or sent (a batch of 5 records is 1296 bytes).
pub const MAX_DATAGRAM: usize = 2048;

/// What the socket counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkCounters {
    /// Datagrams read from the peer.
    pub received: u64,
    /// Datagrams sent to the peer.
    pub sent: u64,
    /// Datagrams from another address (dropped).
    pub foreign: u64,
    /// Sends that failed (the datagram is lost: heartbeats go again, batches are resent).
    pub send_errors: u64,
    /// Reads that failed for another reason than an empty socket.
    pub receive_errors: u64,
}

/// A node on its HA link socket.
#[derive(Debug)]
pub struct HaLink {
    socket: UdpSocket,
    peer: SocketAddrV4,
    node: Node,
    buf: Box<[u8; MAX_DATAGRAM]>,
    /// Counters.
    pub counters: LinkCounters,
}

impl HaLink {
    /// Binds `local` (non-blocking) for `node`, talking to `peer`.
    ///
    /// # Errors
    ///
    /// The socket's, with the address in the message.
    pub fn bind(local: SocketAddrV4, peer: SocketAddrV4, node: Node) -> io::Result<HaLink> {
        let socket = UdpSocket::bind(local)
            .map_err(|e| io::Error::new(e.kind(), format!("HA link: binding {local}: {e}")))?;
        HaLink::new(socket, peer, node)
    }

    /// `node` on an already bound `socket` (made non-blocking here), talking to `peer`.
    ///
    /// # Errors
    ///
    /// Setting the socket non-blocking failed.
    pub fn new(socket: UdpSocket, peer: SocketAddrV4, node: Node) -> io::Result<HaLink> {
        socket.set_nonblocking(true)?;
        Ok(HaLink {
            socket,
            peer,
            node,
            buf: Box::new([0u8; MAX_DATAGRAM]),
            counters: LinkCounters::default(),
        })
    }

    /// The node.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The node, to offer records, give commands and take its actions.
    pub fn node_mut(&mut self) -> &mut Node {
        &mut self.node
    }

    /// The socket's own address.
    ///
    /// # Errors
    ///
    /// The socket's.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// One pass at `now`: reads what the peer sent (records to `deliver`, in order), runs
    /// the node's timers, and sends what it has for the peer.
    pub fn poll(&mut self, now: u64, mut deliver: impl FnMut(Delivery<'_>)) {
        for _ in 0..MAX_RX_PER_POLL {
            match self.socket.recv_from(&mut self.buf[..]) {
                Ok((len, from)) => {
                    if from != SocketAddr::V4(self.peer) {
                        self.counters.foreign += 1;
                        continue;
                    }
                    self.counters.received += 1;
                    self.node.on_datagram(now, &self.buf[..len], &mut deliver);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    // ICMP errors of earlier sends (the peer's port closed) and the like:
                    // the heartbeats tell whether the peer lives.
                    self.counters.receive_errors += 1;
                    break;
                }
            }
        }
        self.node.poll(now);
        self.flush(now);
    }

    /// `tandem ha status` at `now`.
    pub fn status(&self, now: u64) -> HaStatus {
        let n = &self.node;
        let local = self
            .socket
            .local_addr()
            .map_or_else(|_| "?".to_owned(), |a| a.to_string());
        let peer = n.peer();
        let ago = |t: u64| (t > 0).then(|| now.saturating_sub(t) / 1_000_000);
        HaStatus {
            role: n.role(),
            epoch: n.epoch(),
            ready: n.ready(),
            preferred: n.preferred(),
            local,
            peer: HaPeerStatus {
                address: self.peer.to_string(),
                alive: peer.is_some_and(|p| p.alive),
                role: peer.map(|p| p.last.role),
                epoch: peer.map_or(0, |p| p.last.epoch),
                ready: peer.is_some_and(|p| p.last.flags.has(super::wire::Flags::READY)),
                ha_heard_ms_ago: peer.and_then(|p| ago(p.ha_heard)),
                data_heard_ms_ago: peer.and_then(|p| ago(p.data_heard)),
            },
            outcome: None,
            counters: n.counters(now),
        }
    }

    /// `tandem ha active|standby` at `now`: the status with what the command did, or why
    /// it was refused.
    ///
    /// # Errors
    ///
    /// The refusal, for the operator.
    pub fn command(&mut self, now: u64, cmd: Command) -> Result<HaStatus, String> {
        let accepted = self.node.command(now, cmd).map_err(|e| e.to_string())?;
        self.flush(now);
        let word = match cmd {
            Command::Active => "active",
            Command::Standby => "standby",
        };
        let outcome = match accepted {
            Accepted::Already => format!("already {word}"),
            Accepted::Done => "the peer is dead: this appliance took over".to_owned(),
            Accepted::Started => format!(
                "handover started: this appliance becomes {word} once the active's final \
                 records are acked (`tandem ha status` shows it)"
            ),
        };
        let mut status = self.status(now);
        status.outcome = Some(outcome);
        Ok(status)
    }

    /// Sends what the node has for the peer now (after a command or an offer).
    pub fn flush(&mut self, now: u64) {
        for _ in 0..MAX_TX_PER_POLL {
            let Some(len) = self.node.poll_transmit(now, &mut self.buf[..]) else {
                break;
            };
            match self.socket.send_to(&self.buf[..len], self.peer) {
                Ok(_) => self.counters.sent += 1,
                Err(_) => self.counters.send_errors += 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::net::Ipv4Addr;
    use std::time::{Duration, Instant};

    use tandem_engine::sync::{SyncEvent, SyncLeg, SyncRecord};
    use tandem_engine::{FlowKey, MAX_COPIES};

    use super::*;
    use crate::ha::{Action, Role, Settings, SyncSettings};

    const MS: u64 = 1_000_000;

    fn settings(node: Ipv4Addr, preferred: bool, incarnation: u64) -> Settings {
        Settings {
            node: u32::from(node),
            preferred,
            incarnation,
            interval_ns: 5 * MS,
            // Generous: this host's two cores are shared with builds.
            dead_ns: 200 * MS,
            handover_timeout_ns: 2_000 * MS,
            sync: SyncSettings::default(),
        }
    }

    fn record(port: u16, version: u64) -> SyncRecord {
        let mut legs = [SyncLeg::default(); MAX_COPIES];
        legs[0].addr = Ipv4Addr::new(198, 19, 0, 11);
        legs[0].alive = true;
        SyncRecord {
            event: SyncEvent::Handshake,
            key: FlowKey {
                client_ip: u32::from(Ipv4Addr::new(198, 18, 0, 10)),
                client_port: port,
                vip: u32::from(Ipv4Addr::new(198, 18, 0, 100)),
                vip_port: 80,
            },
            legs,
            bytes_to_client: version,
            ..SyncRecord::default()
        }
    }

    fn bound(ip: Ipv4Addr) -> UdpSocket {
        UdpSocket::bind(SocketAddrV4::new(ip, 0)).expect("a loopback socket")
    }

    fn v4(s: &UdpSocket) -> SocketAddrV4 {
        match s.local_addr().expect("bound") {
            SocketAddr::V4(a) => a,
            SocketAddr::V6(_) => unreachable!("bound to IPv4"),
        }
    }

    #[test]
    fn two_nodes_on_loopback_sockets_elect_sync_and_the_standby_takes_over_when_one_is_gone() {
        let start = Instant::now();
        let now = || start.elapsed().as_nanos() as u64 + 1_000 * MS;
        let (a_ip, b_ip) = (Ipv4Addr::new(127, 0, 0, 1), Ipv4Addr::new(127, 0, 0, 2));
        let (sa, sb) = (bound(a_ip), bound(b_ip));
        let (a_addr, b_addr) = (v4(&sa), v4(&sb));
        let t0 = now();
        let mut a =
            HaLink::new(sa, b_addr, Node::new(settings(a_ip, true, t0), t0)).expect("link a");
        let mut b =
            HaLink::new(sb, a_addr, Node::new(settings(b_ip, false, t0 + 1), t0)).expect("link b");
        let mut b_table: BTreeMap<u16, u64> = BTreeMap::new();
        let mut stream = None;
        let mut offered = 0u16;
        let deadline = Instant::now() + Duration::from_secs(20);
        // Until A is active, B a ready standby, and B holds the 50 flows A offered.
        loop {
            assert!(Instant::now() < deadline, "no settled pair in 20 s");
            let t = now();
            a.poll(t, |_| {});
            while let Some(action) = a.node_mut().poll_action() {
                if let Action::StartBulk { stream: s } = action {
                    stream = Some(s);
                }
            }
            if let Some(s) = stream.take() {
                // A's table is empty at its first bulk.
                a.node_mut().bulk_done(s);
            }
            if a.node().role() == Role::Active && b.node().ready() && offered < 50 {
                offered += 1;
                assert!(a
                    .node_mut()
                    .offer(t, &record(offered, u64::from(offered) * 10)));
                a.flush(t);
            }
            b.poll(t, |d| {
                if let Delivery::Record(r) = d {
                    b_table.insert(r.key.client_port, r.bytes_to_client);
                }
            });
            while b.node_mut().poll_action().is_some() {}
            if b_table.len() == 50 && a.node().counters(t).sync_unacked == 0 {
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        assert_eq!(
            (a.node().role(), b.node().role()),
            (Role::Active, Role::Standby)
        );
        assert_eq!(b_table.get(&7), Some(&70));
        assert_eq!(a.counters.foreign + b.counters.foreign, 0);
        // A is gone: B takes over once a dead time passes without it.
        drop(a);
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut took_over = false;
        while !took_over {
            assert!(Instant::now() < deadline, "no takeover in 20 s");
            b.poll(now(), |_| {});
            while let Some(action) = b.node_mut().poll_action() {
                took_over |= matches!(action, Action::BecomeActive { takeover: true, .. });
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        assert_eq!((b.node().role(), b.node().epoch()), (Role::Active, 2));
    }

    #[test]
    fn datagrams_from_another_address_are_counted_and_dropped() {
        let ip = Ipv4Addr::new(127, 0, 0, 1);
        let (s, peer, stranger) = (bound(ip), bound(ip), bound(ip));
        let t0 = 1_000 * MS;
        let mut link =
            HaLink::new(s, v4(&peer), Node::new(settings(ip, false, t0), t0)).expect("link");
        let me = link.local_addr().expect("bound");
        let hb = crate::ha::Heartbeat {
            role: Role::Active,
            node: 99,
            incarnation: 1,
            epoch: 7,
            ..crate::ha::Heartbeat::default()
        };
        stranger.send_to(&hb.encode(), me).expect("sent");
        let deadline = Instant::now() + Duration::from_secs(5);
        while link.counters.foreign == 0 && Instant::now() < deadline {
            link.poll(t0 + MS, |_| {});
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(link.counters.foreign, 1);
        // The stranger's claim changed nothing.
        assert_eq!(
            (link.node().role(), link.node().epoch()),
            (Role::Initial, 0)
        );
    }
}
