//! The management socket (DESIGN §6, issue #5): `tandem status | flows | drain | fail |
//! up | add | remove` against the running appliance.
//!
//! A Unix stream socket at the profile's `management.socket` (nothing on the network):
//! mode 0600 in a 0700 directory, or, with `management.group`, 0660 in a 0750 directory,
//! owned by the group; the socket has its mode before it can be reached at its path
//! ([`stage`]). Each peer's credentials are checked after accept ([`crate::access`]):
//! root, or the group; others are answered `error: permission denied`. One request per
//! connection: a line (`status`, `flows [service=S] [replica=R] [client=IP[:PORT]]
//! [limit=N]`, `drain NAME`, `fail NAME`, `up NAME`, `add SERVICE NAME ADDRESS`,
//! `remove NAME`), then the answer, one line of JSON ([`crate::answer::Response`]), and
//! the server closes; `{"error": ...}` is a refusal. A thread of its own (off the lcores) serves every
//! connection at once without waiting on any ([`crate::serve`]): a client has 2 s for its
//! line and 6 s in all. The control core answers, between its passes, what the thread
//! hands it over a channel ([`Pending`]).

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::access::{self, Access};
use crate::answer::Response;
use crate::serve::{Conns, Limits, Line, ListenerCounters, LogEvery, Reply};

/// Longest request line read.
const MAX_LINE: usize = 512;
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
    /// Re-reads a profile and applies what changes without a restart
    /// ([`crate::reload`]), or with `dry_run` only shows it.
    Reload {
        /// Only show the differences.
        dry_run: bool,
        /// The profile file (absolute); `None`: the one the appliance runs.
        profile: Option<PathBuf>,
    },
    /// The pair (`ha status`), or a switch of roles (`ha active`, `ha standby`).
    Ha(Option<crate::ha::Command>),
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
            "reload" => {
                let rest = line
                    .trim_start()
                    .strip_prefix("reload")
                    .unwrap_or("")
                    .trim();
                let (dry_run, rest) = match rest.strip_prefix("--dry-run") {
                    Some(r) if r.is_empty() || r.starts_with(char::is_whitespace) => {
                        (true, r.trim())
                    }
                    _ => (false, rest),
                };
                // The rest of the line is the path (it may hold spaces).
                let profile = (!rest.is_empty()).then(|| PathBuf::from(rest));
                if profile.as_ref().is_some_and(|p| !p.is_absolute()) {
                    return Err(format!(
                        "`{rest}`: the profile's path must be absolute (the appliance reads it)"
                    ));
                }
                Ok(Request::Reload { dry_run, profile })
            }
            "ha" => match (name, extra) {
                (Some("status"), None) => Ok(Request::Ha(None)),
                (Some("active"), None) => Ok(Request::Ha(Some(crate::ha::Command::Active))),
                (Some("standby"), None) => Ok(Request::Ha(Some(crate::ha::Command::Standby))),
                (_, Some(x)) => Err(format!(
                    "unexpected `{x}` after `ha {}`",
                    name.unwrap_or("")
                )),
                _ => Err("`ha` takes status, active or standby".to_owned()),
            },
            "" => Err("empty request".to_owned()),
            other => Err(format!(
                "unknown request `{other}` (allowed: status, flows [FILTER=VALUE ...], \
                 drain NAME, fail NAME, up NAME, add SERVICE NAME ADDRESS, remove NAME, \
                 reload [--dry-run] [PATH], ha status|active|standby)"
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
            Request::Ha(None) => "ha status".to_owned(),
            Request::Ha(Some(crate::ha::Command::Active)) => "ha active".to_owned(),
            Request::Ha(Some(crate::ha::Command::Standby)) => "ha standby".to_owned(),
            Request::Reload { dry_run, profile } => {
                let mut s = "reload".to_owned();
                if *dry_run {
                    s.push_str(" --dry-run");
                }
                if let Some(p) = profile {
                    s.push(' ');
                    s.push_str(&p.to_string_lossy());
                }
                s
            }
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
    /// Where the answer goes, on the wire.
    answer: SyncSender<String>,
}

impl Pending {
    /// Answers the client (without waiting: a client that gave up is not waited for).
    pub fn reply(&self, response: &Response) {
        let _ = self.answer.try_send(response.to_wire());
    }
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

/// How long a client may take to send its line, and how long the control core has to
/// answer it.
const REQUEST_TIME: Duration = TIMEOUT;
/// The most any one connection lives: its request, the control core's answer, and the
/// same again for the client to read it.
const LIFE: Duration = Duration::from_secs(6);
/// Connections served at once (only the oldest still sending is closed to make room).
const MAX_CONNS: usize = 16;
/// The answer to a peer that is neither root nor in `management.group`
/// (`Response::error("permission denied")` on the wire).
const DENIED: &str = "{\"error\":\"permission denied\"}\n";
/// The answer to a client that sent no line in time, on the wire.
const NO_LINE: &str = "{\"error\":\"no request line within 2 s\"}\n";

const LIMITS: Limits = Limits {
    name: "management",
    request: REQUEST_TIME,
    life: LIFE,
    max_line: MAX_LINE,
    max_conns: MAX_CONNS,
    timeout_answer: NO_LINE,
};

impl Server {
    /// Binds `path` and serves it; requests go to the returned receiver. The socket is
    /// 0600 (0660 and owned by the group when `access` names one) before it can be
    /// reached at `path`, and its directory, if made here, 0700 (0750 with the group). A
    /// stale socket left by a crashed run is replaced, a live one is an error. Peers are
    /// judged by `access`; refusals and cut connections are counted in `counters`.
    ///
    /// # Errors
    ///
    /// The directory or the socket cannot be made, or another appliance answers there.
    pub fn start(
        path: &Path,
        access: Access,
        counters: Arc<ListenerCounters>,
    ) -> std::io::Result<(Server, Receiver<Pending>)> {
        use std::os::unix::fs::FileTypeExt;
        if let Some(dir) = path.parent() {
            make_dir(dir, &access)?;
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
        let (listener, staged) = stage(path, &access)?;
        staged.publish(path)?;
        drop(staged);
        listener.set_nonblocking(true)?;
        let (tx, rx) = mpsc::sync_channel(8);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("tandem-mgmt".to_owned())
            .spawn(move || accept_loop(&listener, &access, &tx, &flag, &counters))?;
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

/// Makes the socket's directory if it is missing: 0700, or 0750 and owned by the group so
/// that its members can reach the socket. Only a directory made here is changed: a
/// profile naming /tmp/x.sock must not change /tmp.
fn make_dir(dir: &Path, access: &Access) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let mode = if access.group.is_some() { 0o750 } else { 0o700 };
    if !dir.exists() {
        if let Some(up) = dir.parent() {
            std::fs::create_dir_all(up)?;
        }
        // Created narrow (mkdir's mode is only ever narrowed by the umask), then made
        // exactly `mode` with its group.
        match std::fs::DirBuilder::new().mode(mode).create(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
        std::os::unix::fs::chown(dir, None, access.gid())?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))?;
    } else if let Some((name, _)) = &access.group {
        let m = std::fs::metadata(dir)?.permissions().mode();
        if m & 0o010 == 0 {
            tracing::warn!(dir = %dir.display(), mode = format!("{:o}", m & 0o7777), group = %name,
                "management.group cannot reach the socket: its directory does not let the group in");
        }
    }
    Ok(())
}

/// A socket bound under a fresh private name beside its final one: the directory is
/// removed, with whatever is left in it, when this is dropped.
struct Staged {
    dir: PathBuf,
    sock: PathBuf,
}

/// Binds a socket in a new directory of mode 0700 beside `path` and gives it its final
/// mode and group there: until [`Staged::publish`] nobody but root can reach it, so it is
/// never connectable with a looser mode (binding at `path` and chmod'ing after leaves a
/// window; a umask held around the bind would narrow every file any other thread of the
/// process makes meanwhile).
fn stage(path: &Path, access: &Access) -> std::io::Result<(UnixListener, Staged)> {
    use std::os::unix::fs::DirBuilderExt;
    let bad = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{}: not a socket path", path.display()),
        )
    };
    let (dir, name) = (
        path.parent().ok_or_else(bad)?,
        path.file_name().ok_or_else(bad)?,
    );
    let private = dir.join(format!(
        ".{}.{}.new",
        name.to_string_lossy(),
        std::process::id()
    ));
    let make = || std::fs::DirBuilder::new().mode(0o700).create(&private);
    let made = match make() {
        // Left by a run of the same pid that died while starting (in a container the pid
        // is often the same every time): ours, so cleared; anyone else's is an error.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            use std::os::unix::fs::MetadataExt;
            let m = std::fs::symlink_metadata(&private)?;
            if m.is_dir() && m.uid() == access::own_uid() {
                let _ = std::fs::remove_file(private.join("socket"));
                std::fs::remove_dir(&private).and_then(|()| make())
            } else {
                Err(e)
            }
        }
        other => other,
    };
    made.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("{}: cannot make it: {e}", private.display()),
        )
    })?;
    let staged = Staged {
        sock: private.join("socket"),
        dir: private,
    };
    let listener = UnixListener::bind(&staged.sock)?;
    std::os::unix::fs::chown(&staged.sock, None, access.gid())?;
    let mode = if access.group.is_some() { 0o660 } else { 0o600 };
    std::fs::set_permissions(&staged.sock, std::fs::Permissions::from_mode(mode))?;
    Ok((listener, staged))
}

impl Staged {
    /// Gives the socket its public name. A link, not a rename: it never replaces what
    /// may have appeared at `path` since the stale-socket check.
    fn publish(&self, path: &Path) -> std::io::Result<()> {
        std::fs::hard_link(&self.sock, path)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.sock);
        let _ = std::fs::remove_dir(&self.dir);
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

fn accept_loop(
    listener: &UnixListener,
    access: &Access,
    tx: &SyncSender<Pending>,
    stop: &AtomicBool,
    counters: &ListenerCounters,
) {
    let mut conns = Conns::new(LIMITS);
    let mut refusals = LogEvery::default();
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        let mut moved = false;
        for _ in 0..MAX_CONNS {
            match listener.accept() {
                Ok((conn, _)) => {
                    moved = true;
                    if let Err(e) = conn.set_nonblocking(true) {
                        tracing::debug!(error = %e, "management connection");
                        continue;
                    }
                    let refusal = judge(&conn, access, now, counters, &mut refusals);
                    conns.admit(conn, now, refusal, counters);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::warn!(error = %e, "management socket: accept failed");
                    std::thread::sleep(Duration::from_millis(200));
                    break;
                }
            }
        }
        moved |= conns.pass(now, counters, |line| reply(line, tx));
        if !moved {
            // Nothing ready: poll again soon (sooner while a connection is open).
            let nap = if conns.is_empty() { 20 } else { 5 };
            std::thread::sleep(Duration::from_millis(nap));
        }
    }
}

/// `None` if `conn`'s peer may use the socket, else the refusal it is answered with
/// (counted, and logged at most once a second).
fn judge(
    conn: &UnixStream,
    access: &Access,
    now: Instant,
    counters: &ListenerCounters,
    log: &mut LogEvery,
) -> Option<&'static str> {
    let peer = access::peer_of(conn);
    if peer.as_ref().is_ok_and(|p| access.allows(p)) {
        return None;
    }
    counters.peer_refused.fetch_add(1, Ordering::Relaxed);
    if let Some(held) = log.allow(now) {
        let group = access.group.as_ref().map_or("(none)", |(n, _)| n.as_str());
        match peer {
            Ok(p) => tracing::warn!(pid = p.pid, uid = p.uid, gid = p.gid, groups = ?p.groups,
                group, refused_before_unlogged = held,
                "management socket: peer refused (neither root nor in management.group)"),
            Err(e) => tracing::warn!(error = %e, refused_before_unlogged = held,
                "management socket: peer refused (its credentials cannot be read)"),
        }
    }
    Some(DENIED)
}

/// The answer to a request line: an error now, or the control core's answer later.
fn reply(line: Line<'_>, tx: &SyncSender<Pending>) -> Reply {
    let text = match line {
        Line::TooLong => {
            return Reply::Now(
                Response::error(format!("request longer than {MAX_LINE} bytes")).to_wire(),
            )
        }
        Line::Text(t) => t,
    };
    match Request::parse(text.trim()) {
        Err(e) => Reply::Now(Response::error(e).to_wire()),
        Ok(request) => {
            let (atx, arx) = mpsc::sync_channel(1);
            let until = Instant::now() + TIMEOUT;
            match tx.try_send(Pending {
                request,
                deadline: until,
                answer: atx,
            }) {
                Err(_) => {
                    Reply::Now(Response::error("the control core is busy; try again").to_wire())
                }
                Ok(()) => Reply::Later {
                    answer: arx,
                    until,
                    fallback: Response::error("the control core did not answer").to_wire(),
                },
            }
        }
    }
}

/// Client side: sends `request` to the socket at `path`, returns the answer.
///
/// # Errors
///
/// The socket cannot be reached or read, or what came is no answer (nothing, or an
/// appliance of another version).
pub fn ask(path: &Path, request: &Request) -> std::io::Result<Response> {
    let mut conn = UnixStream::connect(path)?;
    conn.set_read_timeout(Some(TIMEOUT * 2))?;
    conn.write_all(format!("{}\n", request.line()).as_bytes())?;
    let mut answer = String::new();
    conn.read_to_string(&mut answer)?;
    if answer.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the appliance closed without an answer",
        ));
    }
    Response::from_wire(&answer).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "not an answer this tandem can read ({e}): {}",
                answer.trim_end()
            ),
        )
    })
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
            Request::Reload {
                dry_run: false,
                profile: None,
            },
            Request::Reload {
                dry_run: true,
                profile: None,
            },
            Request::Reload {
                dry_run: true,
                profile: Some("/etc/tandem/my profile.yaml".into()),
            },
            Request::Reload {
                dry_run: false,
                profile: Some("/etc/tandem/p.yaml".into()),
            },
            Request::Ha(None),
            Request::Ha(Some(crate::ha::Command::Active)),
            Request::Ha(Some(crate::ha::Command::Standby)),
        ] {
            assert_eq!(Request::parse(&r.line()), Ok(r));
        }
        assert!(Request::parse("ha").is_err_and(|e| e.contains("status, active or standby")));
        assert!(Request::parse("ha become").is_err_and(|e| e.contains("status, active or standby")));
        assert!(Request::parse("ha active now").is_err_and(|e| e.contains("unexpected `now`")));
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
        assert!(Request::parse("reload etc/p.yaml").is_err_and(|e| e.contains("absolute")));
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

    use std::os::unix::fs::MetadataExt;
    use std::time::Instant;

    /// A fresh directory for one test's socket (removed first if a killed run left it).
    fn test_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tandem-mgmt-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).expect("exists").permissions().mode() & 0o7777
    }

    /// The "control core"'s answer in these tests: any answer will do, these tests
    /// check that it reaches the client. A refusal naming the request is the shortest.
    fn echoed(r: &Request) -> Response {
        Response::Error(format!("echo {r:?}"))
    }

    /// Answers what reaches the "control core" with [`echoed`] until the server goes.
    fn control(rx: Receiver<Pending>) -> JoinHandle<usize> {
        std::thread::spawn(move || {
            let mut n = 0;
            while let Ok(p) = rx.recv_timeout(Duration::from_secs(15)) {
                p.reply(&echoed(&p.request));
                n += 1;
            }
            n
        })
    }

    #[test]
    fn the_listeners_own_refusals_are_answers_on_the_wire() {
        assert_eq!(DENIED, Response::error("permission denied").to_wire());
        assert_eq!(
            NO_LINE,
            Response::error("no request line within 2 s").to_wire()
        );
    }

    #[test]
    fn the_socket_is_private_and_answers_through_the_channel() {
        let dir = test_dir("private");
        let path = dir.join("t.sock");
        let counters = Arc::new(ListenerCounters::default());
        let (server, rx) =
            Server::start(&path, Access::default(), counters.clone()).expect("start");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir), 0o700);
        // Nothing of the private name it was bound under is left beside it.
        let names: Vec<_> = std::fs::read_dir(&dir)
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["t.sock"]);
        let control = std::thread::spawn(move || {
            // Two requests reach the "control core"; the bad one never does.
            for _ in 0..2 {
                let p = rx.recv_timeout(Duration::from_secs(5)).expect("request");
                p.reply(&echoed(&p.request));
            }
        });
        assert_eq!(
            ask(&path, &Request::Status).ok(),
            Some(echoed(&Request::Status))
        );
        let bad = {
            let mut c = UnixStream::connect(&path).expect("connect");
            c.write_all(b"reboot\n").expect("write");
            let mut s = String::new();
            c.read_to_string(&mut s).expect("read");
            s
        };
        assert!(
            matches!(Response::from_wire(&bad), Ok(Response::Error(e)) if e.starts_with("unknown request")),
            "{bad}"
        );
        let fail = Request::Fail("x".into());
        assert_eq!(ask(&path, &fail).ok(), Some(echoed(&fail)));
        control.join().expect("control");
        // A second server on a live socket is refused; dropping removes the socket.
        assert!(Server::start(&path, Access::default(), counters.clone()).is_err());
        drop(server);
        assert!(!path.exists());
        assert_eq!(counters.read(), [0; 4]);
        // A stale socket (its server gone without removing it) is replaced.
        drop(UnixListener::bind(&path).expect("stale"));
        let (server, _rx) = Server::start(&path, Access::default(), counters).expect("restart");
        assert_eq!(mode(&path), 0o600);
        drop(server);
        let _ = std::fs::remove_dir(&dir);
    }

    #[test]
    fn the_socket_has_its_mode_before_it_can_be_reached_at_its_path() {
        let dir = test_dir("staged");
        std::fs::create_dir_all(&dir).expect("dir");
        // A directory anyone may enter, as /tmp or /run can be.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let path = dir.join("t.sock");
        for (access, want) in [
            (Access::default(), 0o600),
            (
                Access {
                    group: Some(("nogroup".into(), 65534)),
                },
                0o660,
            ),
        ] {
            let (listener, staged) = stage(&path, &access).expect("stage");
            // Bound, but only under a name in a directory nobody else may enter, and
            // already with its final mode and group.
            assert!(!path.exists(), "not at its public name yet");
            let private = std::fs::metadata(&staged.dir).expect("private dir");
            assert_eq!(private.permissions().mode() & 0o7777, 0o700);
            assert_eq!(
                private.uid(),
                std::fs::metadata("/proc/self").expect("me").uid()
            );
            assert_eq!(staged.dir.parent(), Some(dir.as_path()), "same filesystem");
            assert_eq!(mode(&staged.sock), want);
            let gid = std::fs::metadata(&staged.sock).expect("socket").gid();
            assert_eq!(Some(gid).filter(|_| want == 0o660), access.gid());
            let inode = std::fs::metadata(&staged.sock).expect("socket").ino();
            staged.publish(&path).expect("publish");
            drop(staged);
            // The same socket, with the same mode, now at its path; the private name gone.
            assert_eq!(std::fs::metadata(&path).expect("published").ino(), inode);
            assert_eq!(mode(&path), want);
            assert!(!dir
                .read_dir()
                .expect("dir")
                .any(|e| e.expect("entry").file_name() != "t.sock"));
            let _client = UnixStream::connect(&path).expect("reachable through its path");
            listener.set_nonblocking(true).expect("nonblocking");
            assert!(listener.accept().is_ok(), "its listener is the one reached");
            // Publishing never replaces what is there.
            let (_l2, again) = stage(&path, &access).expect("stage again");
            // A private name left by a start that died is cleared.
            std::mem::forget(again);
            let (_l2, again) = stage(&path, &access).expect("stage over a leftover");
            assert!(again
                .publish(&path)
                .is_err_and(|e| e.kind() == std::io::ErrorKind::AlreadyExists));
            std::fs::remove_file(&path).expect("remove");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn with_a_group_the_socket_and_a_new_directory_let_the_group_in() {
        let dir = test_dir("group").join("sub");
        let path = dir.join("t.sock");
        let access = Access {
            group: Some(("nogroup".into(), 65534)),
        };
        let (server, _rx) = Server::start(&path, access, Arc::default()).expect("start");
        assert_eq!(mode(&path), 0o660);
        assert_eq!(mode(&dir), 0o750);
        for p in [&path, &dir] {
            assert_eq!(
                std::fs::metadata(p).expect("exists").gid(),
                65534,
                "{}",
                p.display()
            );
        }
        drop(server);
        let _ = std::fs::remove_dir_all(dir.parent().expect("parent"));
    }

    /// Not a test: a peer run by [`a_peer_neither_root_nor_in_the_group_is_refused`] as
    /// another user. It asks `status` on the socket named in its environment and prints
    /// the answer.
    #[test]
    #[ignore = "run by a_peer_neither_root_nor_in_the_group_is_refused as another user"]
    fn peer_helper() {
        let Some(path) = std::env::var_os("TANDEM_MGMT_TEST_SOCKET") else {
            return;
        };
        let answer = ask(Path::new(&path), &Request::Status);
        println!(
            "ANSWER[{}]",
            answer.map_or_else(|e| format!("io: {e}"), |r| r.to_wire())
        );
    }

    /// Runs [`peer_helper`] as uid and gid 65534 (nobody, nogroup, no other groups)
    /// against `path`; its answer.
    fn ask_as_nobody(path: &Path) -> String {
        use std::os::unix::process::CommandExt;
        let exe = std::env::current_exe().expect("test binary");
        let mut child = std::process::Command::new(exe)
            .args([
                "--exact",
                "mgmt::tests::peer_helper",
                "--ignored",
                "--nocapture",
            ])
            .env("TANDEM_MGMT_TEST_SOCKET", path)
            .uid(65534)
            .gid(65534)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn the peer");
        let start = Instant::now();
        while child.try_wait().expect("wait").is_none() {
            if start.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the peer did not finish");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut out = String::new();
        if let Some(mut o) = child.stdout.take() {
            let _ = o.read_to_string(&mut out);
        }
        let answer = out
            .split_once("ANSWER[")
            .and_then(|(_, rest)| rest.rsplit_once(']'))
            .map(|(a, _)| a.to_owned());
        answer.unwrap_or_else(|| panic!("no answer from the peer: {out}"))
    }

    #[test]
    fn a_peer_neither_root_nor_in_the_group_is_refused() {
        if access::own_uid() != 0 {
            eprintln!("skipped: only root can run a peer as another user");
            return;
        }
        let dir = test_dir("peers");
        let path = dir.join("t.sock");
        for (access, allowed) in [
            (Access::default(), false),
            (
                Access {
                    group: Some(("somegroup".into(), 4242)),
                },
                false,
            ),
            (
                Access {
                    group: Some(("nogroup".into(), 65534)),
                },
                true,
            ),
        ] {
            let counters = Arc::new(ListenerCounters::default());
            let (server, rx) = Server::start(&path, access, counters.clone()).expect("start");
            // A mode that lets anyone in (an operator's mistake, a bind mount): the
            // credentials still decide.
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("dir");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666))
                .expect("socket");
            let control = control(rx);
            let answer = ask_as_nobody(&path);
            drop(server);
            let served = control.join().expect("control");
            if allowed {
                assert_eq!(answer, echoed(&Request::Status).to_wire());
                assert_eq!((served, counters.read()), (1, [0; 4]));
            } else {
                assert_eq!(answer, DENIED);
                assert_eq!(
                    served, 0,
                    "a refused request never reaches the control core"
                );
                assert_eq!(counters.read(), [1, 0, 0, 0]);
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_silent_client_does_not_keep_a_second_client_waiting() {
        let dir = test_dir("silent");
        let path = dir.join("t.sock");
        let counters = Arc::new(ListenerCounters::default());
        let (server, rx) =
            Server::start(&path, Access::default(), counters.clone()).expect("start");
        let control = control(rx);
        let mut silent = UnixStream::connect(&path).expect("connect");
        silent
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        std::thread::sleep(Duration::from_millis(100)); // accepted first
        let t = Instant::now();
        assert_eq!(
            ask(&path, &Request::Status).ok(),
            Some(echoed(&Request::Status))
        );
        // Well before the silent one's 2 s are up.
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        // The silent one is told and closed at its deadline.
        let mut s = String::new();
        let _ = silent.read_to_string(&mut s);
        assert_eq!(s, NO_LINE);
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        drop(server);
        assert_eq!(control.join().expect("control"), 1);
        assert_eq!(counters.read(), [0, 1, 0, 0]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    pub use crate::testing::slow_loris;

    #[test]
    fn a_slow_loris_is_cut_off_at_the_deadline() {
        let dir = test_dir("loris");
        let path = dir.join("t.sock");
        let counters = Arc::new(ListenerCounters::default());
        let (server, rx) =
            Server::start(&path, Access::default(), counters.clone()).expect("start");
        let control = control(rx);
        let c = UnixStream::connect(&path).expect("connect");
        c.set_read_timeout(Some(Duration::from_millis(500)))
            .expect("timeout");
        let (took, said) = slow_loris(c, b's', Duration::from_secs(8));
        assert!(
            took >= Duration::from_millis(1900) && took < Duration::from_secs(3),
            "{took:?}"
        );
        assert_eq!(said, NO_LINE);
        assert_eq!(counters.read(), [0, 1, 0, 0]);
        drop(server);
        assert_eq!(control.join().expect("control"), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
