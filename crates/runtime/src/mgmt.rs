//! The management socket (DESIGN §6, issue #5): `tandem status | flows | drain | fail |
//! up | add | remove` against the running appliance.
//!
//! A Unix stream socket at the profile's `management.socket`, mode 0600 in a 0700
//! directory (root only, nothing on the network). One request per connection: a line
//! (`status`, `flows [service=S] [replica=R] [client=IP[:PORT]] [limit=N]`, `drain NAME`,
//! `fail NAME`, `up NAME`, `add SERVICE NAME ADDRESS`, `remove NAME`), then the answer
//! as text until the
//! server closes; an answer that starts with `error:` is a refusal. A thread of its own
//! (off the lcores) accepts and reads; the control core answers, between its passes, what
//! the thread hands it over a channel ([`Pending`]).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Longest request line read.
const MAX_LINE: u64 = 512;
/// How long a client may take to send its line, and the control core to answer.
const TIMEOUT: Duration = Duration::from_secs(2);

/// A management request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Services, replicas and their health, flows per worker.
    Status,
    /// The replica takes no new flows; its flows stay.
    Drain(String),
    /// The replica fails over now (maintenance); probes do not bring it back.
    Fail(String),
    /// Undoes `drain` or `fail`: the replica serves new flows again once probes say so.
    Up(String),
    /// Lists flows.
    Flows(FlowQuery),
    /// Adds a replica to a service's pool: it takes new flows once its probes answer.
    Add {
        /// The service.
        service: String,
        /// The replica's name in it.
        name: String,
        /// Its address.
        address: std::net::Ipv4Addr,
    },
    /// Takes a replica out of every pool: its flows fail over now.
    Remove(String),
}

/// Most flows one `flows` answer lists.
pub const MAX_FLOWS_LISTED: usize = 10_000;
/// Flows listed when no limit is given.
pub const DEFAULT_FLOWS_LISTED: usize = 100;

/// The filter of a `flows` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowQuery {
    /// Only this service's flows.
    pub service: Option<String>,
    /// Only flows with a leg on this replica.
    pub replica: Option<String>,
    /// Only this client address (and port).
    pub client: Option<(std::net::Ipv4Addr, Option<u16>)>,
    /// At most this many listed.
    pub limit: usize,
}

impl Default for FlowQuery {
    fn default() -> FlowQuery {
        FlowQuery {
            service: None,
            replica: None,
            client: None,
            limit: DEFAULT_FLOWS_LISTED,
        }
    }
}

impl FlowQuery {
    fn parse<'a>(words: impl Iterator<Item = &'a str>) -> Result<FlowQuery, String> {
        let mut q = FlowQuery::default();
        for w in words {
            let Some((k, v)) = w.split_once('=') else {
                return Err(format!(
                    "`{w}`: filters are KEY=VALUE (service=, replica=, client=, limit=)"
                ));
            };
            match k {
                "service" => q.service = Some(v.to_owned()),
                "replica" => q.replica = Some(v.to_owned()),
                "client" => q.client = Some(parse_client(v)?),
                "limit" => {
                    q.limit = v
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MAX_FLOWS_LISTED).contains(n))
                        .ok_or_else(|| {
                            format!("limit `{v}`: a number from 1 to {MAX_FLOWS_LISTED}")
                        })?
                }
                _ => {
                    return Err(format!(
                        "unknown filter `{k}` (allowed: service, replica, client, limit)"
                    ))
                }
            }
        }
        Ok(q)
    }

    fn words(&self) -> String {
        let mut s = String::new();
        if let Some(v) = &self.service {
            s.push_str(&format!(" service={v}"));
        }
        if let Some(v) = &self.replica {
            s.push_str(&format!(" replica={v}"));
        }
        match self.client {
            Some((ip, Some(port))) => s.push_str(&format!(" client={ip}:{port}")),
            Some((ip, None)) => s.push_str(&format!(" client={ip}")),
            None => {}
        }
        if self.limit != DEFAULT_FLOWS_LISTED {
            s.push_str(&format!(" limit={}", self.limit));
        }
        s
    }
}

/// `IP` or `IP:PORT`.
///
/// # Errors
///
/// What is wrong with it.
pub fn parse_client(v: &str) -> Result<(std::net::Ipv4Addr, Option<u16>), String> {
    let (ip, port) = match v.split_once(':') {
        Some((ip, port)) => (ip, Some(port)),
        None => (v, None),
    };
    let ip = ip
        .parse()
        .map_err(|_| format!("client `{v}`: not an IPv4 address (IP or IP:PORT)"))?;
    let port = match port {
        None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .map_err(|_| format!("client `{v}`: port `{p}` is not 0 to 65535"))?,
        ),
    };
    Ok((ip, port))
}

impl Request {
    /// Parses a request line.
    ///
    /// # Errors
    ///
    /// What is wrong with it, for the client.
    pub fn parse(line: &str) -> Result<Request, String> {
        let mut words = line.split_whitespace();
        let verb = words.next().unwrap_or("");
        let name = words.next();
        let extra = words.next();
        let named = |make: fn(String) -> Request| match (name, extra) {
            (Some(n), None) => Ok(make(n.to_owned())),
            (None, _) => Err(format!("`{verb}` needs a replica name")),
            (Some(_), Some(x)) => Err(format!("unexpected `{x}` after the replica name")),
        };
        match verb {
            "status" if name.is_none() => Ok(Request::Status),
            "status" => Err("`status` takes no argument".to_owned()),
            "drain" => named(Request::Drain),
            "fail" => named(Request::Fail),
            "up" => named(Request::Up),
            "remove" => named(Request::Remove),
            "flows" => {
                let rest = line.split_whitespace().skip(1);
                FlowQuery::parse(rest).map(Request::Flows)
            }
            "add" => {
                let mut w = line.split_whitespace().skip(1);
                let (Some(service), Some(name), Some(address), None) =
                    (w.next(), w.next(), w.next(), w.next())
                else {
                    return Err("`add` takes SERVICE NAME ADDRESS".to_owned());
                };
                let address = address
                    .parse()
                    .map_err(|_| format!("`{address}` is not an IPv4 address"))?;
                Ok(Request::Add {
                    service: service.to_owned(),
                    name: name.to_owned(),
                    address,
                })
            }
            "" => Err("empty request".to_owned()),
            other => Err(format!(
                "unknown request `{other}` (allowed: status, flows [FILTER=VALUE ...], \
                 drain NAME, fail NAME, up NAME, add SERVICE NAME ADDRESS, remove NAME)"
            )),
        }
    }

    /// The request line for the client to send.
    pub fn line(&self) -> String {
        match self {
            Request::Status => "status".to_owned(),
            Request::Drain(n) => format!("drain {n}"),
            Request::Fail(n) => format!("fail {n}"),
            Request::Up(n) => format!("up {n}"),
            Request::Remove(n) => format!("remove {n}"),
            Request::Flows(q) => format!("flows{}", q.words()),
            Request::Add {
                service,
                name,
                address,
            } => format!("add {service} {name} {address}"),
        }
    }
}

/// A request waiting for the control core's answer.
pub struct Pending {
    /// What was asked.
    pub request: Request,
    /// After this the client has been told the control core did not answer: the request
    /// must not be carried out late.
    pub deadline: std::time::Instant,
    /// Where the answer goes.
    pub answer: SyncSender<String>,
}

/// Resolves a replica name against `names` (`service/replica`): the full name, or the
/// replica part when it is unique.
///
/// # Errors
///
/// An answer that names the valid ones.
pub fn resolve<'a, T: Copy>(name: &str, names: &'a [(String, T)]) -> Result<(&'a str, T), String> {
    if let Some((n, id)) = names.iter().find(|(n, _)| n == name) {
        return Ok((n, *id));
    }
    let short: Vec<&(String, T)> = names
        .iter()
        .filter(|(n, _)| n.rsplit('/').next() == Some(name))
        .collect();
    match short.as_slice() {
        [(n, id)] => Ok((n, *id)),
        _ => {
            let all: Vec<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
            Err(format!(
                "error: no replica `{name}`{} (replicas: {})",
                if short.len() > 1 { " (ambiguous)" } else { "" },
                all.join(", ")
            ))
        }
    }
}

/// The running socket server; stops and removes the socket when dropped.
pub struct Server {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds `path` (its directory is created 0700; a stale socket left by a crashed run
    /// is replaced, a live one is an error) and serves it; requests go to the returned
    /// receiver.
    ///
    /// # Errors
    ///
    /// The directory or the socket cannot be made, or another appliance answers there.
    pub fn start(path: &Path) -> std::io::Result<(Server, Receiver<Pending>)> {
        use std::os::unix::fs::FileTypeExt;
        // Only a directory made here is given mode 0700: a profile naming /tmp/x.sock
        // must not change /tmp. The socket itself is 0600 either way.
        if let Some(dir) = path.parent() {
            if !dir.exists() {
                std::fs::create_dir_all(dir)?;
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
            }
        }
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_socket() => {
                if UnixStream::connect(path).is_ok() {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::AddrInUse,
                        format!("{}: another tandem answers there", path.display()),
                    ));
                }
                std::fs::remove_file(path)?;
            }
            Ok(_) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    format!(
                        "{}: exists and is not a socket (not removed)",
                        path.display()
                    ),
                ))
            }
            Err(_) => {}
        }
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        listener.set_nonblocking(true)?;
        let (tx, rx) = mpsc::sync_channel(8);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("tandem-mgmt".to_owned())
            .spawn(move || accept_loop(&listener, &tx, &flag))?;
        Ok((
            Server {
                path: path.to_owned(),
                stop,
                thread: Some(thread),
            },
            rx,
        ))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn accept_loop(listener: &UnixListener, tx: &SyncSender<Pending>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((conn, _)) => {
                if let Err(e) = serve_one(conn, tx) {
                    tracing::debug!(error = %e, "management connection");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => {
                tracing::warn!(error = %e, "management socket: accept failed");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

fn serve_one(mut conn: UnixStream, tx: &SyncSender<Pending>) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(TIMEOUT))?;
    conn.set_write_timeout(Some(TIMEOUT))?;
    let mut line = String::new();
    BufReader::new((&conn).take(MAX_LINE)).read_line(&mut line)?;
    let answer = match Request::parse(line.trim()) {
        Err(e) => format!("error: {e}\n"),
        Ok(request) => {
            let (atx, arx) = mpsc::sync_channel(1);
            match tx.try_send(Pending {
                request,
                deadline: std::time::Instant::now() + TIMEOUT,
                answer: atx,
            }) {
                Err(_) => "error: the control core is busy; try again\n".to_owned(),
                Ok(()) => arx
                    .recv_timeout(TIMEOUT)
                    .unwrap_or_else(|_| "error: the control core did not answer\n".to_owned()),
            }
        }
    };
    conn.write_all(answer.as_bytes())
}

/// Client side: sends `request` to the socket at `path`, returns the answer.
///
/// # Errors
///
/// The socket cannot be reached or read.
pub fn ask(path: &Path, request: &Request) -> std::io::Result<String> {
    let mut conn = UnixStream::connect(path)?;
    conn.set_read_timeout(Some(TIMEOUT * 2))?;
    conn.write_all(format!("{}\n", request.line()).as_bytes())?;
    let mut answer = String::new();
    conn.read_to_string(&mut answer)?;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_round_trip() {
        for r in [
            Request::Status,
            Request::Drain("lab/primary".into()),
            Request::Fail("spare".into()),
            Request::Up("lab/backup".into()),
            Request::Remove("lab/spare".into()),
            Request::Flows(FlowQuery::default()),
            Request::Flows(FlowQuery {
                service: Some("lab".into()),
                replica: Some("spare".into()),
                client: Some(("198.18.0.2".parse().expect("ip"), Some(4000))),
                limit: 7,
            }),
            Request::Add {
                service: "lab".into(),
                name: "extra".into(),
                address: "198.19.0.14".parse().expect("ip"),
            },
        ] {
            assert_eq!(Request::parse(&r.line()), Ok(r));
        }
        assert!(Request::parse("").is_err());
        assert!(Request::parse("drain").is_err_and(|e| e.contains("needs a replica")));
        assert!(Request::parse("fail a b").is_err_and(|e| e.contains("unexpected `b`")));
        assert!(Request::parse("reboot").is_err_and(|e| e.contains("allowed: status")));
        assert!(Request::parse("status now").is_err());
        assert!(Request::parse("flows client=1.2.3").is_err_and(|e| e.contains("IPv4")));
        assert!(Request::parse("flows client=1.2.3.4:x").is_err_and(|e| e.contains("port")));
        assert!(Request::parse("flows limit=0").is_err_and(|e| e.contains("1 to")));
        assert!(Request::parse("flows age=3").is_err_and(|e| e.contains("unknown filter")));
        assert!(Request::parse("flows lab").is_err_and(|e| e.contains("KEY=VALUE")));
        assert!(Request::parse("add lab x").is_err_and(|e| e.contains("SERVICE NAME ADDRESS")));
        assert!(Request::parse("add lab x 1.2.3").is_err_and(|e| e.contains("IPv4")));
        assert!(Request::parse("remove").is_err_and(|e| e.contains("needs a replica")));
    }

    #[test]
    fn names_resolve_in_full_or_by_a_unique_replica_part() {
        let names = vec![
            ("lab/primary".to_owned(), 0u16),
            ("lab/backup".to_owned(), 1),
            ("web/primary".to_owned(), 2),
        ];
        assert_eq!(resolve("lab/primary", &names), Ok(("lab/primary", 0)));
        assert_eq!(resolve("backup", &names), Ok(("lab/backup", 1)));
        let e = resolve("primary", &names).expect_err("ambiguous");
        assert!(e.contains("ambiguous") && e.contains("web/primary"), "{e}");
        let e = resolve("nope", &names).expect_err("unknown");
        assert!(
            e.starts_with("error: no replica `nope`") && e.contains("lab/backup"),
            "{e}"
        );
    }

    #[test]
    fn the_socket_is_private_and_answers_through_the_channel() {
        let dir = std::env::temp_dir().join(format!("tandem-mgmt-test-{}", std::process::id()));
        let path = dir.join("t.sock");
        let (server, rx) = Server::start(&path).expect("start");
        let mode = std::fs::metadata(&path)
            .expect("socket")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let control = std::thread::spawn(move || {
            // Two requests reach the "control core"; the bad one never does.
            for _ in 0..2 {
                let p = rx.recv_timeout(Duration::from_secs(5)).expect("request");
                let _ = p.answer.send(format!("ok {:?}\n", p.request));
            }
        });
        assert_eq!(
            ask(&path, &Request::Status).ok().as_deref(),
            Some("ok Status\n")
        );
        let bad = {
            let mut c = UnixStream::connect(&path).expect("connect");
            c.write_all(b"reboot\n").expect("write");
            let mut s = String::new();
            c.read_to_string(&mut s).expect("read");
            s
        };
        assert!(bad.starts_with("error: unknown request"), "{bad}");
        assert_eq!(
            ask(&path, &Request::Fail("x".into())).ok().as_deref(),
            Some("ok Fail(\"x\")\n")
        );
        control.join().expect("control");
        // A second server on a live socket is refused; dropping removes the socket.
        assert!(Server::start(&path).is_err());
        drop(server);
        assert!(!path.exists());
        let _ = std::fs::remove_dir(&dir);
    }
}
