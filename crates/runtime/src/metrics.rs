//! Prometheus text metrics (issue #5) on the profile's `management.metrics` address
//! (off the DPDK ports; 127.0.0.1 by default), served by a thread of its own from what the
//! workers publish (their [`WorkerStats`]), the control core's counters (copied into
//! [`Shared`] between its passes) and the shared replica table.
//!
//! Names follow Prometheus conventions: `tandem_…_total` for counters, base units, one
//! label per dimension (`lcore`, `reason`, `replica`). Latency and recovery-time
//! histograms are not here yet (issue #6 brings the per-core latency histograms).
//!
//! The same figures answer the DPDK telemetry commands `/tandem/stats` and
//! `/tandem/status` ([`Shared::stats_dict`], [`Shared::status_dict`]).

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tandem_dpdk::telemetry::Value;
use tandem_engine::{DropReason, Health, ReplicaId, ReplicaTable};

use crate::stats::{ControlCounters, EngineSnapshot, IoCounters, WorkerStats, ENGINE_LABELS};

/// Engine values that are gauges (the others are counters).
const GAUGES: [&str; 4] = ["held_segments", "held_bytes", "flows", "flows_unprotected"];

/// What the metrics thread reads.
pub struct Shared {
    /// Each worker's lcore and published counters.
    pub workers: Vec<(u32, Arc<WorkerStats>)>,
    /// The control core's counters, as of its last pass.
    pub control: Mutex<ControlCounters>,
    /// Health and addresses.
    pub replicas: Arc<ReplicaTable>,
    /// `service/replica` names (the control core updates them on `tandem add`/`remove`).
    pub names: Mutex<Vec<(String, ReplicaId)>>,
}

impl Shared {
    /// A copy of the replica names (a poisoned lock reads as none: the metrics thread
    /// must never take the appliance down).
    pub fn names(&self) -> Vec<(String, ReplicaId)> {
        self.names.lock().map(|n| n.clone()).unwrap_or_default()
    }

    fn render(&self) -> String {
        let workers: Vec<(u32, EngineSnapshot, IoCounters)> = self
            .workers
            .iter()
            .map(|(lc, s)| {
                let (e, io) = s.read();
                (*lc, e, io)
            })
            .collect();
        let control = self.control.lock().map(|c| *c).unwrap_or_default();
        let names = self.names();
        let replicas: Vec<(String, Ipv4Addr, Health)> = names
            .iter()
            .map(|(n, id)| {
                (
                    n.clone(),
                    self.replicas.addr(*id),
                    self.replicas.health(*id),
                )
            })
            .collect();
        render(&workers, &control, &replicas)
    }
}

impl Shared {
    /// `/tandem/stats` (DPDK telemetry): every worker counter summed, drops by reason,
    /// the control core's counters.
    pub fn stats_dict(&self) -> Vec<(String, Value)> {
        let mut total = EngineSnapshot::default();
        for (_, s) in &self.workers {
            let (e, _) = s.read();
            for (t, v) in total.values.iter_mut().zip(e.values) {
                *t += v;
            }
            for (t, v) in total.drops.iter_mut().zip(e.drops) {
                *t += v;
            }
        }
        let mut out: Vec<(String, Value)> = ENGINE_LABELS
            .iter()
            .zip(total.values)
            .map(|(l, v)| ((*l).to_owned(), Value::U64(v)))
            .collect();
        for r in DropReason::ALL {
            out.push((format!("drop/{}", r.label()), Value::U64(total.dropped(*r))));
        }
        let c = self.control.lock().map(|c| *c).unwrap_or_default();
        for (l, v) in [
            ("control/probes", c.probes),
            ("control/probe_answers", c.probe_replies),
            ("control/probes_lost", c.probes_lost),
            ("control/failovers", c.failovers),
            ("control/signals", c.signals),
        ] {
            out.push((l.to_owned(), Value::U64(v)));
        }
        out
    }

    /// `/tandem/status` (DPDK telemetry): each replica's health, flows.
    pub fn status_dict(&self) -> Vec<(String, Value)> {
        let mut out: Vec<(String, Value)> = self
            .names()
            .iter()
            .map(|(n, id)| {
                let h = match self.replicas.health(*id) {
                    Health::Up => "up",
                    Health::Draining => "draining",
                    Health::Down => "down",
                    Health::Unused => "unused",
                };
                (
                    n.clone(),
                    Value::Str(format!("{} {h}", self.replicas.addr(*id))),
                )
            })
            .collect();
        let (mut flows, mut unprotected) = (0, 0);
        for (_, s) in &self.workers {
            let (e, _) = s.read();
            flows += e.get("flows").unwrap_or(0);
            unprotected += e.get("flows_unprotected").unwrap_or(0);
        }
        out.push(("flows".to_owned(), Value::U64(flows)));
        out.push(("flows_unprotected".to_owned(), Value::U64(unprotected)));
        out.push(("workers".to_owned(), Value::U64(self.workers.len() as u64)));
        out
    }
}

/// The exposition text.
pub fn render(
    workers: &[(u32, EngineSnapshot, IoCounters)],
    control: &ControlCounters,
    replicas: &[(String, Ipv4Addr, Health)],
) -> String {
    let mut s = String::new();
    for (i, label) in ENGINE_LABELS.iter().enumerate() {
        let gauge = GAUGES.contains(label);
        let name = match *label {
            "rx" => "tandem_rx_packets_total".to_owned(),
            "tx" => "tandem_tx_packets_total".to_owned(),
            "to_control" => "tandem_to_control_packets_total".to_owned(),
            "held_bytes" => "tandem_held_bytes".to_owned(),
            l if gauge => format!("tandem_{l}"),
            l => format!("tandem_{l}_total"),
        };
        let _ = writeln!(
            s,
            "# TYPE {name} {}",
            if gauge { "gauge" } else { "counter" }
        );
        for (lcore, e, _) in workers {
            let _ = writeln!(s, "{name}{{lcore=\"{lcore}\"}} {}", e.values[i]);
        }
    }
    let _ = writeln!(s, "# TYPE tandem_drops_total counter");
    for (lcore, e, _) in workers {
        for r in DropReason::ALL {
            let _ = writeln!(
                s,
                "tandem_drops_total{{lcore=\"{lcore}\",reason=\"{}\"}} {}",
                r.label(),
                e.dropped(*r)
            );
        }
    }
    let _ = writeln!(s, "# TYPE tandem_worker_io_total counter");
    for (lcore, _, io) in workers {
        for (label, v) in IoCounters::LABELS.iter().zip(io.to_array()) {
            let _ = writeln!(
                s,
                "tandem_worker_io_total{{lcore=\"{lcore}\",event=\"{label}\"}} {v}"
            );
        }
    }
    for (name, v) in [
        ("probes", control.probes),
        ("probe_answers", control.probe_replies),
        ("probes_lost", control.probes_lost),
        ("failovers", control.failovers),
        ("signals", control.signals),
        ("arp_requests", control.arp_requests),
        ("arp_replies", control.arp_replies),
        ("echo_replies", control.echo_replies),
        ("not_served", control.not_served),
        ("tx_refused", control.tx_refused),
    ] {
        let _ = writeln!(s, "# TYPE tandem_control_{name}_total counter");
        let _ = writeln!(s, "tandem_control_{name}_total {v}");
    }
    let _ = writeln!(
        s,
        "# HELP tandem_replica_up 1: takes new flows; 0: draining or down (see tandem_replica_state)"
    );
    let _ = writeln!(s, "# TYPE tandem_replica_up gauge");
    for (name, addr, h) in replicas {
        let _ = writeln!(
            s,
            "tandem_replica_up{{replica=\"{name}\",address=\"{addr}\"}} {}",
            u8::from(*h == Health::Up)
        );
    }
    let _ = writeln!(s, "# TYPE tandem_replica_state gauge");
    for (name, _, h) in replicas {
        for (state, is) in [
            ("up", *h == Health::Up),
            ("draining", *h == Health::Draining),
            ("down", *h == Health::Down),
        ] {
            let _ = writeln!(
                s,
                "tandem_replica_state{{replica=\"{name}\",state=\"{state}\"}} {}",
                u8::from(is)
            );
        }
    }
    s
}

/// The running metrics listener; stops when dropped.
pub struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Listens on `addr` and serves `GET /metrics` from `shared`.
    ///
    /// # Errors
    ///
    /// The address cannot be bound.
    pub fn start(addr: SocketAddr, shared: Arc<Shared>) -> std::io::Result<Server> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("tandem-metrics".to_owned())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((conn, _)) => {
                            let _ = serve_one(conn, &shared);
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
            })?;
        Ok(Server {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_one(mut conn: TcpStream, shared: &Shared) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(2)))?;
    conn.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut line = String::new();
    BufReader::new(std::io::Read::take(&conn, 1024)).read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("");
    let (status, body) = if line.starts_with("GET ") && (path == "/metrics" || path == "/") {
        ("200 OK", shared.render())
    } else {
        ("404 Not Found", "GET /metrics\n".to_owned())
    };
    write!(
        conn,
        "HTTP/1.0 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn exposition_names_types_and_labels() {
        let mut e = EngineSnapshot::default();
        e.values[0] = 7; // rx
        let flows = ENGINE_LABELS
            .iter()
            .position(|l| *l == "flows")
            .unwrap_or(0);
        e.values[flows] = 3;
        let c = ControlCounters {
            failovers: 2,
            ..ControlCounters::default()
        };
        let text = render(
            &[(1, e, IoCounters::default())],
            &c,
            &[(
                "lab/primary".into(),
                Ipv4Addr::new(198, 19, 0, 11),
                Health::Down,
            )],
        );
        for want in [
            "# TYPE tandem_rx_packets_total counter",
            "tandem_rx_packets_total{lcore=\"1\"} 7",
            "# TYPE tandem_flows gauge",
            "tandem_flows{lcore=\"1\"} 3",
            "tandem_drops_total{lcore=\"1\",reason=\"no_flow\"} 0",
            "tandem_control_failovers_total 2",
            "tandem_replica_up{replica=\"lab/primary\",address=\"198.19.0.11\"} 0",
            "tandem_replica_state{replica=\"lab/primary\",state=\"down\"} 1",
        ] {
            assert!(text.contains(want), "missing `{want}` in:\n{text}");
        }
        // Every sample line's metric has a TYPE line.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let name = l.split(['{', ' ']).next().unwrap_or("");
            assert!(text.contains(&format!("# TYPE {name} ")), "{name}");
        }
    }

    #[test]
    fn the_listener_serves_get_metrics() {
        let shared = Arc::new(Shared {
            workers: vec![(1, Arc::new(WorkerStats::default()))],
            control: Mutex::new(ControlCounters::default()),
            replicas: Arc::new(ReplicaTable::new(4)),
            names: Mutex::new(Vec::new()),
        });
        // An ephemeral port on loopback: find one, then serve it.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let server = Server::start(addr, shared).expect("start");
        let get = |path: &str| {
            let mut c = TcpStream::connect(addr).expect("connect");
            write!(c, "GET {path} HTTP/1.0\r\n\r\n").expect("write");
            let mut s = String::new();
            c.read_to_string(&mut s).expect("read");
            s
        };
        let ok = get("/metrics");
        assert!(ok.starts_with("HTTP/1.0 200 OK") && ok.contains("tandem_rx_packets_total"));
        assert!(get("/other").starts_with("HTTP/1.0 404"));
        drop(server);
    }
}
