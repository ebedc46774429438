//! One request line, one answer, for many clients at once on one thread (issue #14): the
//! management socket and the metrics listener both serve through [`Conns`].
//!
//! Every socket is non-blocking and each pass gives every connection what it has ready,
//! so a silent or slow client never delays another. Each connection has two deadlines
//! from its accept: its request line must be in by `request`, and it is closed at `life`
//! whatever it is doing (a client that reads its answer a byte at a time included). At
//! most `max_conns` are open; a new one past that closes the oldest still sending its
//! request (a flood of silent connections cannot keep a real one out), or, when every
//! one is past its request, is itself closed. Each cut is counted by reason in
//! [`ListenerCounters`].

use std::io::{ErrorKind, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

/// Connections refused or cut short by one listener, by reason.
#[derive(Debug, Default)]
pub struct ListenerCounters {
    /// A peer neither root nor in the profile's group (management socket only).
    pub peer_refused: AtomicU64,
    /// No request line by the request deadline, or the answer not taken by the end of
    /// the connection's life.
    pub deadline: AtomicU64,
    /// Closed to make room for a newer connection, or refused for want of room.
    pub overload: AtomicU64,
    /// A request line longer than allowed (answered with an error).
    pub too_long: AtomicU64,
}

impl ListenerCounters {
    /// The reasons, in the order of [`ListenerCounters::read`].
    pub const REASONS: [&'static str; 4] = ["peer_refused", "deadline", "overload", "too_long"];

    /// The counts, in the order of [`ListenerCounters::REASONS`].
    pub fn read(&self) -> [u64; 4] {
        [
            &self.peer_refused,
            &self.deadline,
            &self.overload,
            &self.too_long,
        ]
        .map(|c| c.load(Ordering::Relaxed))
    }
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// How long and how many.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The listener's name, for the log.
    pub name: &'static str,
    /// From accept to the end of the request line.
    pub request: Duration,
    /// From accept to the close, whatever happens.
    pub life: Duration,
    /// Longest request line, in bytes (its newline not counted).
    pub max_line: usize,
    /// Connections open at once.
    pub max_conns: usize,
    /// Written (best effort) to a client cut at its request deadline.
    pub timeout_answer: &'static str,
}

/// What a connection's request line gets.
pub enum Reply {
    /// This answer.
    Now(String),
    /// The answer comes on `answer`; if it has not by `until`, `fallback` is sent.
    Later {
        /// Where the answer comes from.
        answer: Receiver<String>,
        /// How long it is waited for.
        until: Instant,
        /// Sent if it does not come.
        fallback: String,
    },
}

/// A request line, or why there is none.
pub enum Line<'a> {
    /// The line, without its line ending (a last line without one as it came).
    Text(&'a str),
    /// Longer than `max_line`.
    TooLong,
}

enum State {
    Reading(Vec<u8>),
    Waiting {
        answer: Receiver<String>,
        until: Instant,
        fallback: String,
    },
    Writing {
        out: Vec<u8>,
        at: usize,
    },
}

struct Conn<S> {
    stream: S,
    since: Instant,
    /// Answered with this, whatever it asks (a refused peer: it still gets to send its
    /// line, so that it reads the refusal rather than a reset).
    refusal: Option<&'static str>,
    state: State,
}

/// The open connections of one listener.
pub struct Conns<S> {
    limits: Limits,
    conns: Vec<Conn<S>>,
}

/// Bytes of input thrown away after the request line (HTTP headers), so that closing
/// does not reset a connection that still has input queued.
const DRAIN: usize = 16 * 1024;

impl<S: Read + Write> Conns<S> {
    /// No connections yet.
    pub fn new(limits: Limits) -> Conns<S> {
        Conns {
            limits,
            conns: Vec::with_capacity(limits.max_conns),
        }
    }

    /// Connections open.
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    /// Whether none is open.
    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// Takes a new connection (already non-blocking), answered with `refusal` if given.
    /// When full, the oldest one still sending its request is closed to make room; if
    /// none is, the new one is closed.
    pub fn admit(
        &mut self,
        stream: S,
        now: Instant,
        refusal: Option<&'static str>,
        counters: &ListenerCounters,
    ) {
        if self.conns.len() >= self.limits.max_conns {
            bump(&counters.overload);
            let oldest = self
                .conns
                .iter()
                .enumerate()
                .filter(|(_, c)| matches!(c.state, State::Reading(_)))
                .min_by_key(|(_, c)| c.since)
                .map(|(i, _)| i);
            let Some(i) = oldest else {
                tracing::debug!(
                    listener = self.limits.name,
                    "connection refused: every slot is answering"
                );
                return;
            };
            self.conns.swap_remove(i);
            tracing::debug!(
                listener = self.limits.name,
                "oldest connection still sending closed to make room"
            );
        }
        self.conns.push(Conn {
            stream,
            since: now,
            refusal,
            state: State::Reading(Vec::new()),
        });
    }

    /// Moves every connection on as far as its socket allows without waiting: reads,
    /// hands a complete request line to `answer`, writes. Returns whether anything moved.
    pub fn pass(
        &mut self,
        now: Instant,
        counters: &ListenerCounters,
        mut answer: impl FnMut(Line<'_>) -> Reply,
    ) -> bool {
        let mut moved = false;
        let mut i = 0;
        while i < self.conns.len() {
            match self
                .conns
                .get_mut(i)
                .map(|c| c.step(now, &self.limits, counters, &mut answer))
            {
                Some(Step::Keep { moved: m }) => {
                    moved |= m;
                    i += 1;
                }
                Some(Step::Close) => {
                    moved = true;
                    self.conns.swap_remove(i);
                }
                None => break,
            }
        }
        moved
    }
}

enum Step {
    Keep { moved: bool },
    Close,
}

impl<S: Read + Write> Conn<S> {
    fn step(
        &mut self,
        now: Instant,
        limits: &Limits,
        counters: &ListenerCounters,
        answer: &mut impl FnMut(Line<'_>) -> Reply,
    ) -> Step {
        if now >= self.since + limits.life {
            bump(&counters.deadline);
            tracing::debug!(
                listener = limits.name,
                "connection closed: its answer was not taken in time"
            );
            return Step::Close;
        }
        // Each state hands over to the next at once (an answer ready now is written in
        // this pass); Writing always returns.
        let mut moved = false;
        loop {
            match &mut self.state {
                State::Reading(buf) => {
                    let (read, eof) = match read_some(&mut self.stream, buf, limits.max_line + 1) {
                        Ok(r) => r,
                        Err(_) => return Step::Close,
                    };
                    moved |= read;
                    let newline = buf.iter().position(|&b| b == b'\n');
                    let too_long = newline.is_none() && buf.len() > limits.max_line;
                    if newline.is_none() && !too_long && !eof {
                        if now < self.since + limits.request {
                            return Step::Keep { moved };
                        }
                        bump(&counters.deadline);
                        tracing::debug!(
                            listener = limits.name,
                            "connection closed: no request line in time"
                        );
                        // Best effort: a client that is still listening learns why.
                        let why = self.refusal.unwrap_or(limits.timeout_answer);
                        let _ = self.stream.write(why.as_bytes());
                        return Step::Close;
                    }
                    if newline.is_none() && buf.is_empty() {
                        return Step::Close;
                    }
                    let reply = if let Some(refusal) = self.refusal {
                        Reply::Now(refusal.to_owned())
                    } else if too_long {
                        bump(&counters.too_long);
                        answer(Line::TooLong)
                    } else {
                        // A last line without its newline is taken as it came.
                        let line = &buf[..newline.unwrap_or(buf.len())];
                        let line = String::from_utf8_lossy(line);
                        answer(Line::Text(line.trim_end_matches('\r')))
                    };
                    drain(&mut self.stream);
                    self.state = match reply {
                        Reply::Now(s) => State::Writing {
                            out: s.into_bytes(),
                            at: 0,
                        },
                        Reply::Later {
                            answer,
                            until,
                            fallback,
                        } => State::Waiting {
                            answer,
                            until,
                            fallback,
                        },
                    };
                    moved = true;
                }
                State::Waiting {
                    answer,
                    until,
                    fallback,
                } => {
                    let out = match answer.try_recv() {
                        Ok(s) => s,
                        Err(TryRecvError::Empty) if now < *until => return Step::Keep { moved },
                        Err(_) => std::mem::take(fallback),
                    };
                    self.state = State::Writing {
                        out: out.into_bytes(),
                        at: 0,
                    };
                    moved = true;
                }
                State::Writing { out, at } => {
                    while *at < out.len() {
                        match self.stream.write(&out[*at..]) {
                            Ok(0) => return Step::Close,
                            Ok(n) => {
                                *at += n;
                                moved = true;
                            }
                            Err(e) if e.kind() == ErrorKind::Interrupted => {}
                            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                                return Step::Keep { moved }
                            }
                            Err(_) => return Step::Close,
                        }
                    }
                    drain(&mut self.stream);
                    return Step::Close;
                }
            }
        }
    }
}

/// Reads what is ready into `buf`, up to `cap` bytes in all, stopping at a newline.
/// Returns whether anything was read and whether the peer closed its side.
fn read_some<S: Read>(s: &mut S, buf: &mut Vec<u8>, cap: usize) -> std::io::Result<(bool, bool)> {
    let mut chunk = [0u8; 512];
    let mut moved = false;
    while buf.len() < cap && !buf.contains(&b'\n') {
        let room = (cap - buf.len()).min(chunk.len());
        match s.read(&mut chunk[..room]) {
            Ok(0) => return Ok((moved, true)),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                moved = true;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    Ok((moved, false))
}

/// Throws away up to [`DRAIN`] bytes of queued input, without waiting.
fn drain<S: Read>(s: &mut S) {
    let mut chunk = [0u8; 1024];
    let mut left = DRAIN;
    while left > 0 {
        match s.read(&mut chunk[..left.min(1024)]) {
            Ok(0) => return,
            Ok(n) => left = left.saturating_sub(n),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Logs at most one line a second of something a client can cause at will, with the
/// number held back since.
#[derive(Debug, Default)]
pub struct LogEvery {
    last: Option<Instant>,
    held: u64,
}

impl LogEvery {
    /// Whether to log now; `Some(n)`: yes, and `n` were held back before.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(t) if now.duration_since(t) < Duration::from_secs(1) => {
                self.held += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.held))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    fn limits() -> Limits {
        Limits {
            name: "test",
            request: Duration::from_secs(2),
            life: Duration::from_secs(4),
            max_line: 16,
            max_conns: 2,
            timeout_answer: "timeout\n",
        }
    }

    fn pair() -> (UnixStream, UnixStream) {
        let (a, b) = UnixStream::pair().expect("pair");
        a.set_nonblocking(true).expect("nonblocking");
        b.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        (a, b)
    }

    fn echo(l: Line<'_>) -> Reply {
        Reply::Now(match l {
            Line::Text(t) => format!("got {t}\n"),
            Line::TooLong => "too long\n".to_owned(),
        })
    }

    fn answer_of(mut client: UnixStream) -> String {
        let mut s = String::new();
        let _ = client.read_to_string(&mut s);
        s
    }

    #[test]
    fn lines_are_answered_and_cut_by_their_deadlines_and_length() {
        let c = ListenerCounters::default();
        let mut conns = Conns::new(limits());
        let t0 = Instant::now();
        let (a, mut ca) = pair();
        let (b, mut cb) = pair();
        conns.admit(a, t0, None, &c);
        conns.admit(b, t0, None, &c);
        ca.write_all(b"status\r\n").expect("write");
        cb.write_all(b"0123456789abcdefXYZ").expect("write");
        conns.pass(t0, &c, echo);
        assert_eq!(conns.len(), 0);
        assert_eq!(answer_of(ca), "got status\n");
        assert_eq!(answer_of(cb), "too long\n");
        // Silent until its request deadline; then told and closed.
        let (s, cs) = pair();
        conns.admit(s, t0, None, &c);
        assert!(!conns.pass(t0 + Duration::from_millis(1999), &c, echo));
        assert_eq!(conns.len(), 1);
        conns.pass(t0 + Duration::from_secs(2), &c, echo);
        assert_eq!(conns.len(), 0);
        assert_eq!(answer_of(cs), "timeout\n");
        assert_eq!(c.read(), [0, 1, 0, 1]);
    }

    #[test]
    fn an_answer_not_taken_is_dropped_at_the_end_of_life() {
        let c = ListenerCounters::default();
        let mut conns = Conns::new(limits());
        let t0 = Instant::now();
        let (a, mut ca) = pair();
        conns.admit(a, t0, None, &c);
        ca.write_all(b"big\n").expect("write");
        // More than the socket buffer holds, never read by the client.
        conns.pass(t0, &c, |_| Reply::Now("x".repeat(8 << 20)));
        assert_eq!(conns.len(), 1);
        conns.pass(t0 + Duration::from_secs(4), &c, echo);
        assert_eq!(conns.len(), 0);
        assert_eq!(c.read(), [0, 1, 0, 0]);
    }

    #[test]
    fn a_full_table_closes_the_oldest_still_sending() {
        let c = ListenerCounters::default();
        let mut conns = Conns::new(limits());
        let t0 = Instant::now();
        let (old, cold) = pair();
        let (mid, _cmid) = pair();
        let (new, mut cnew) = pair();
        conns.admit(old, t0, None, &c);
        conns.admit(mid, t0 + Duration::from_millis(1), None, &c);
        conns.admit(new, t0 + Duration::from_millis(2), Some("refused\n"), &c);
        assert_eq!(conns.len(), 2);
        assert_eq!(answer_of(cold), "", "closed unanswered");
        cnew.write_all(b"status\n").expect("write");
        conns.pass(t0 + Duration::from_millis(3), &c, echo);
        assert_eq!(answer_of(cnew), "refused\n", "a refusal whatever was asked");
        assert_eq!(c.read(), [0, 0, 1, 0]);
    }

    #[test]
    fn a_late_answer_falls_back_at_its_deadline() {
        let c = ListenerCounters::default();
        let mut conns = Conns::new(limits());
        let t0 = Instant::now();
        let (a, mut ca) = pair();
        conns.admit(a, t0, None, &c);
        ca.write_all(b"status\n").expect("write");
        let (tx, rx) = std::sync::mpsc::sync_channel::<String>(1);
        let mut rx = Some(rx);
        conns.pass(t0, &c, |_| Reply::Later {
            answer: rx.take().expect("asked once"),
            until: t0 + Duration::from_secs(1),
            fallback: "late\n".to_owned(),
        });
        assert!(!conns.pass(t0 + Duration::from_millis(999), &c, echo));
        conns.pass(t0 + Duration::from_secs(1), &c, echo);
        conns.pass(t0 + Duration::from_secs(1), &c, echo);
        assert_eq!(answer_of(ca), "late\n");
        drop(tx);
    }

    #[test]
    fn logging_is_held_to_one_line_a_second() {
        let mut l = LogEvery::default();
        let t0 = Instant::now();
        assert_eq!(l.allow(t0), Some(0));
        assert_eq!(l.allow(t0 + Duration::from_millis(10)), None);
        assert_eq!(l.allow(t0 + Duration::from_millis(20)), None);
        assert_eq!(l.allow(t0 + Duration::from_secs(1)), Some(2));
    }
}
