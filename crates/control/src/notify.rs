//! The systemd service protocol (`sd_notify(3)`), for `Type=notify` units: `READY=1` once
//! the ports are up and the control core runs, `WATCHDOG=1` from the control core's loop at
//! half the unit's `WatchdogSec=`, `STOPPING=1` when asked to stop. A datagram to
//! `$NOTIFY_SOCKET` (a path, or an abstract name when it starts with `@`); no crate needed.
//!
//! Outside systemd (`NOTIFY_SOCKET` unset) every call does nothing. A message that cannot
//! be sent is logged (the first of each kind) and never stops the appliance: the worst
//! case is that systemd restarts it, which is the watchdog's point.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Why the notification socket cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// `NOTIFY_SOCKET` is neither an absolute path nor `@name`.
    #[error("NOTIFY_SOCKET={0:?}: neither an absolute path nor an abstract name (@...)")]
    Address(String),
    /// The socket could not be made or addressed.
    #[error("NOTIFY_SOCKET={0:?}: {1}")]
    Socket(String, io::Error),
}

/// A datagram socket to the service manager.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    to: SocketAddr,
    name: String,
}

impl Notifier {
    /// To the socket `name`: an absolute path, or `@name` for an abstract socket.
    ///
    /// # Errors
    ///
    /// `name` is neither, or no socket could be made.
    pub fn connect(name: &str) -> Result<Self, NotifyError> {
        let to = if let Some(abstract_name) = name.strip_prefix('@') {
            SocketAddr::from_abstract_name(abstract_name.as_bytes())
        } else if name.starts_with('/') {
            SocketAddr::from_pathname(name)
        } else {
            return Err(NotifyError::Address(name.to_owned()));
        }
        .map_err(|e| NotifyError::Socket(name.to_owned(), e))?;
        let socket =
            UnixDatagram::unbound().map_err(|e| NotifyError::Socket(name.to_owned(), e))?;
        // The control core must never wait on the service manager.
        socket
            .set_nonblocking(true)
            .map_err(|e| NotifyError::Socket(name.to_owned(), e))?;
        Ok(Self {
            socket,
            to,
            name: name.to_owned(),
        })
    }

    /// Sends one message (`KEY=value` lines).
    ///
    /// # Errors
    ///
    /// The kernel refused the datagram (no listener, full queue).
    pub fn send(&self, state: &str) -> io::Result<()> {
        self.socket
            .send_to_addr(state.as_bytes(), &self.to)
            .map(|_| ())
    }

    /// The socket's name as given.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// How often to feed the watchdog: half of `WATCHDOG_USEC`, if the watchdog is meant for
/// this process (`WATCHDOG_PID` unset or equal to `pid`). `None`: no watchdog.
pub fn watchdog_period(
    usec: Option<&str>,
    watchdog_pid: Option<&str>,
    pid: u32,
) -> Option<Duration> {
    if let Some(p) = watchdog_pid {
        if p.trim().parse::<u32>().ok() != Some(pid) {
            return None;
        }
    }
    let usec = usec?.trim().parse::<u64>().ok().filter(|&u| u > 0)?;
    Some(Duration::from_micros(usec / 2))
}

/// The service manager as the control core sees it: readiness once, the watchdog on
/// time, stopping at the end.
#[derive(Debug, Default)]
pub struct ServiceManager {
    notifier: Option<Notifier>,
    watchdog_ns: Option<u64>,
    ready_sent: bool,
    next_feed_ns: u64,
    failed_once: bool,
}

impl ServiceManager {
    /// From the environment systemd gives a `Type=notify` service (`NOTIFY_SOCKET`,
    /// `WATCHDOG_USEC`, `WATCHDOG_PID`); one that does nothing outside systemd.
    pub fn from_env() -> Self {
        let Ok(name) = std::env::var("NOTIFY_SOCKET") else {
            return Self::default();
        };
        let notifier = match Notifier::connect(&name) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "no readiness or watchdog notifications");
                return Self::default();
            }
        };
        let period = watchdog_period(
            std::env::var("WATCHDOG_USEC").ok().as_deref(),
            std::env::var("WATCHDOG_PID").ok().as_deref(),
            std::process::id(),
        );
        Self::new(notifier, period)
    }

    /// To `notifier`, feeding the watchdog every `watchdog` (none: no watchdog).
    pub fn new(notifier: Notifier, watchdog: Option<Duration>) -> Self {
        Self {
            notifier: Some(notifier),
            watchdog_ns: watchdog.map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
            ..Self::default()
        }
    }

    /// Whether there is a service manager to tell anything.
    pub fn active(&self) -> bool {
        self.notifier.is_some()
    }

    /// Once per pass of the control core's loop, at `now_ns`: `READY=1` the first time,
    /// then `WATCHDOG=1` whenever a period has passed.
    pub fn tick(&mut self, now_ns: u64) {
        if self.notifier.is_none() {
            return;
        }
        if !self.ready_sent {
            self.ready_sent = true;
            self.send("READY=1\nSTATUS=running");
            self.next_feed_ns = now_ns.saturating_add(self.watchdog_ns.unwrap_or(0));
            return;
        }
        if let Some(period) = self.watchdog_ns {
            if now_ns >= self.next_feed_ns {
                self.next_feed_ns = now_ns.saturating_add(period);
                self.send("WATCHDOG=1");
            }
        }
    }

    /// `STOPPING=1`: the appliance was asked to stop and is closing down.
    pub fn stopping(&mut self) {
        if self.notifier.is_some() {
            self.send("STOPPING=1\nSTATUS=stopping");
        }
    }

    fn send(&mut self, state: &str) {
        let Some(n) = &self.notifier else { return };
        if let Err(e) = n.send(state) {
            // Once: a service manager that went away would otherwise fill the log.
            if !self.failed_once {
                self.failed_once = true;
                tracing::warn!(socket = n.name(), error = %e, "notifying the service manager");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receiver(dir: &std::path::Path) -> (UnixDatagram, String) {
        let path = dir.join("notify");
        let sock = UnixDatagram::bind(&path).expect("bind a datagram socket");
        sock.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("read timeout");
        (sock, path.to_string_lossy().into_owned())
    }

    fn next(sock: &UnixDatagram) -> String {
        let mut buf = [0u8; 256];
        let n = sock.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    fn no_more(sock: &UnixDatagram) -> bool {
        sock.set_nonblocking(true).expect("nonblocking");
        let mut buf = [0u8; 256];
        matches!(sock.recv(&mut buf), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    fn temp_dir(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("tandem-notify-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn ready_is_sent_once_then_the_watchdog_every_period() {
        let dir = temp_dir("period");
        let (sock, path) = receiver(&dir);
        let notifier = Notifier::connect(&path).expect("connect");
        let mut sm = ServiceManager::new(notifier, Some(Duration::from_millis(500)));
        sm.tick(1_000);
        assert_eq!(next(&sock), "READY=1\nSTATUS=running");
        sm.tick(1_000 + 499_999_999);
        sm.tick(1_000 + 500_000_000);
        assert_eq!(next(&sock), "WATCHDOG=1");
        sm.tick(1_000 + 700_000_000);
        assert!(no_more(&sock), "fed twice within one period");
        sm.stopping();
        sock.set_nonblocking(false).expect("blocking");
        assert_eq!(next(&sock), "STOPPING=1\nSTATUS=stopping");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn without_a_watchdog_only_readiness_is_sent() {
        let dir = temp_dir("nowd");
        let (sock, path) = receiver(&dir);
        let mut sm = ServiceManager::new(Notifier::connect(&path).expect("connect"), None);
        for t in 0..5 {
            sm.tick(t * 10_000_000_000);
        }
        assert_eq!(next(&sock), "READY=1\nSTATUS=running");
        assert!(no_more(&sock));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_abstract_socket_name_starts_with_an_at_sign() {
        let name = format!("tandem-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).expect("abstract address");
        let sock = UnixDatagram::bind_addr(&addr).expect("bind abstract");
        sock.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("read timeout");
        let n = Notifier::connect(&format!("@{name}")).expect("connect");
        n.send("READY=1").expect("send");
        assert_eq!(next(&sock), "READY=1");
    }

    #[test]
    fn a_relative_socket_name_is_refused() {
        assert!(matches!(
            Notifier::connect("run/notify"),
            Err(NotifyError::Address(_))
        ));
    }

    #[test]
    fn a_gone_service_manager_does_not_stop_the_loop() {
        let dir = temp_dir("gone");
        let (sock, path) = receiver(&dir);
        let mut sm = ServiceManager::new(
            Notifier::connect(&path).expect("connect"),
            Some(Duration::from_millis(1)),
        );
        drop(sock);
        std::fs::remove_file(&path).expect("remove the socket");
        for t in 0..3 {
            sm.tick(t * 2_000_000);
        }
        assert!(sm.failed_once);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_watchdog_period_is_half_of_watchdog_usec_for_this_process_only() {
        assert_eq!(
            watchdog_period(Some("10000000"), None, 42),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            watchdog_period(Some("10000000"), Some("42"), 42),
            Some(Duration::from_secs(5))
        );
        assert_eq!(watchdog_period(Some("10000000"), Some("7"), 42), None);
        assert_eq!(watchdog_period(Some("0"), None, 42), None);
        assert_eq!(watchdog_period(Some("soon"), None, 42), None);
        assert_eq!(watchdog_period(None, None, 42), None);
    }
}
