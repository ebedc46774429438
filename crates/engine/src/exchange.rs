//! `replay: http1` in reconnect mode (DESIGN §2): the HTTP/1.1 exchange of one flow as
//! the client saw it, where a replay of it would start, and the check of a new replica's
//! answer against what the client already has.
//!
//! An [`Exchange`] is fed the client's bytes as they are logged and the server's bytes as
//! they go to the client, both in order, through an [`Http1`] framer. It keeps a CRC32C of
//! the server's *digest spans* (every byte but the excluded header lines, such as `Date`
//! and `Server`, which legitimately differ between replicas) from the stream's first
//! byte, and the same CRC at the start of the response to the oldest outstanding request
//! (the *base*), where a replay's answer starts.
//!
//! When the flow's replica dies, [`Exchange::plan`] says where to replay from: the client
//! stream from the oldest request not fully answered (`Plan::client`; the engine's log
//! starts there), while the client holds the server stream up to `Plan::client_has`.
//! The new replica's answer is fed to an [`Answer`]: its digest spans, appended to the
//! base CRC, must reach the CRC of what the client has at the same digest length. The
//! raw offset in the new stream right after that digest byte is the *splice point*: the
//! new replica's bytes from there on continue the client's stream (the sequence delta is
//! set there). A different CRC, a framing error or an early end is a mismatch: the
//! client gets a RST, never a mixed stream.
//!
//! Invariants:
//! - `digest` covers the digest spans of the server bytes fed, `base` the spans before
//!   the framer's `server_base` (found by feeding a segment again in two parts when a
//!   response ended inside it: the framer gives the same spans however its input is
//!   split).
//! - A replay is planned only where the client's last byte is a digested one (or the
//!   client has nothing of the outstanding response): the splice point is then right
//!   after the same digest byte of the new stream. A client holding part of an excluded
//!   line (its end would come from another server) is refused, as is a splice point the
//!   new stream reports late (a held header line, `Step::Late`).
//!
//! Memory: an [`Exchange`] per flow of an http1 service (a slot taken at its first byte,
//! see [`Exchanges`]) and an [`Answer`] per replay in progress.

use crate::http1::{Exclude, Http1, Methods, Reason, Replay};
use crate::verify::append;

/// No slot.
pub const NONE: u32 = u32::MAX;

/// A service's HTTP/1.1 replay rules (`services[].replay.methods`, `exclude_headers`);
/// the defaults are the profile's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Http1Rules {
    /// Methods that may be sent twice.
    pub methods: Methods,
    /// Response header fields not compared.
    pub exclude: Exclude,
}

/// The digest of a server stream's spans so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Digest {
    crc: u32,
    /// Digested bytes.
    len: u64,
    /// Raw stream offset after the last digested byte.
    end: u64,
}

impl Digest {
    fn add(&mut self, at: u64, span: &[u8]) {
        self.crc = append(self.crc, span);
        self.len += span.len() as u64;
        self.end = at + span.len() as u64;
    }
}

/// Why a flow cannot be replayed now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The framer's reason (a non-idempotent request outstanding, a tunnel, a stream it
    /// cannot frame).
    Unsafe(Reason),
    /// The client's last byte is inside a header line left out of the check: its rest
    /// would come from another server.
    MidLine,
}

/// Where a replay starts (offsets from each stream's first byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The client stream is replayed from here: the oldest request not fully answered
    /// (with nothing outstanding, the client stream's end).
    pub client: u64,
    /// The new replica's answer starts at this offset of the old server stream.
    pub server: u64,
    /// The client has the old server stream up to here.
    pub client_has: u64,
}

/// One flow's exchange as the client saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    http: Http1,
    digest: Digest,
    base: Digest,
    /// The flow was counted unreplayable for the current request (counted once until it
    /// is replayable again).
    pub counted_unsafe: bool,
    /// The [`Answer`] slot of a replay in progress ([`NONE`]: none).
    pub answer: u32,
}

impl Default for Exchange {
    fn default() -> Exchange {
        Exchange {
            http: Http1::new(),
            digest: Digest::default(),
            base: Digest::default(),
            counted_unsafe: false,
            answer: NONE,
        }
    }
}

/// What the server side did with a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fed {
    /// Its new bytes were fed (none, for a retransmission).
    InOrder,
    /// It lies past bytes not fed yet: the caller drops it (the server sends it again
    /// after the gap), so that the framer sees the stream in order.
    PastGap,
}

impl Exchange {
    /// Client bytes, in order after the previous ones.
    pub fn client(&mut self, bytes: &[u8], rules: &Http1Rules) {
        self.http.client(bytes, &rules.methods);
    }

    /// The client stream offset before which no replay needs the client's bytes.
    pub fn answered_client(&self) -> u64 {
        self.http.answered_client()
    }

    /// The server's bytes `bytes` at stream offset `at`: what is new is fed.
    pub fn server(&mut self, at: u64, bytes: &[u8], rules: &Http1Rules) -> Fed {
        let end = self.http.server_end();
        if at > end {
            return Fed::PastGap;
        }
        let skip = usize::try_from(end - at).unwrap_or(usize::MAX);
        if let Some(new) = bytes.get(skip..).filter(|b| !b.is_empty()) {
            self.feed_server(new, &rules.exclude);
        }
        Fed::InOrder
    }

    fn feed_server(&mut self, bytes: &[u8], exclude: &Exclude) {
        let at = self.http.server_end();
        let base_before = self.http.server_base();
        let before = self.http.clone();
        let mut d = self.digest;
        self.http.server(bytes, exclude, &mut |o, s| d.add(o, s));
        let base = self.http.server_base();
        let end = at + bytes.len() as u64;
        if base != base_before {
            if base == end {
                self.base = d;
            } else if base > at && base < end {
                // A response ended inside these bytes: again in two parts, for the
                // digest at its end (the framer gives the same spans for any split).
                self.http = before;
                let k = usize::try_from(base - at).unwrap_or(bytes.len());
                let (first, rest) = bytes.split_at(k.min(bytes.len()));
                d = self.digest;
                self.http.server(first, exclude, &mut |o, s| d.add(o, s));
                self.base = d;
                self.http.server(rest, exclude, &mut |o, s| d.add(o, s));
            }
        }
        self.digest = d;
    }

    /// The server's FIN, after its bytes: a close-delimited response ends there.
    pub fn server_fin(&mut self) {
        let base_before = self.http.server_base();
        self.http.server_fin();
        if self.http.server_base() != base_before {
            self.base = self.digest;
        }
    }

    /// Server bytes fed (the client's offset in the server stream).
    pub fn server_end(&self) -> u64 {
        self.http.server_end()
    }

    /// Whether a replay could start now (for counting unsafe flows as they become so).
    pub fn replayable(&self) -> Result<(), Reason> {
        match self.http.replay_point() {
            Replay::Unsafe(r) => Err(r),
            _ => Ok(()),
        }
    }

    /// Where a replay starts if the replica died now, or why there can be none.
    pub fn plan(&self) -> Result<Plan, Refusal> {
        let (client, server) = match self.http.replay_point() {
            Replay::Idle { client, server } | Replay::From { client, server } => (client, server),
            Replay::Unsafe(r) => return Err(Refusal::Unsafe(r)),
        };
        let client_has = self.http.server_end();
        if client_has != server && self.digest.end != client_has {
            return Err(Refusal::MidLine);
        }
        Ok(Plan {
            client,
            server,
            client_has,
        })
    }

    /// The check of a new replica's answer to the replay [`Exchange::plan`] planned:
    /// fed the replayed client bytes, then its output.
    pub fn answer(&self, plan: &Plan) -> Answer {
        // Its answer starts where the oldest outstanding response does (with nothing
        // outstanding, that is the stream's end): the digest there.
        let start = self.base;
        Answer {
            http: Http1::new(),
            digest: Digest {
                crc: start.crc,
                len: start.len,
                end: 0,
            },
            target: self.digest.len,
            want: self.digest.crc,
            fed: 0,
            failed: false,
            server: plan.server,
            client_has: plan.client_has,
        }
    }

    /// After a splice: the new replica's bytes from the splice point on continue the
    /// client's stream; the exchange goes on with them (the framers of both streams are
    /// at the same point of the same message, what differs lies in excluded lines). The
    /// answer's slot is the caller's to end ([`Exchanges::end_answer`]).
    pub fn spliced(&mut self, after: &[u8], rules: &Http1Rules) {
        if !after.is_empty() {
            self.feed_server(after, &rules.exclude);
        }
    }
}

/// A new replica's answer, checked against what the client has.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Answer {
    http: Http1,
    digest: Digest,
    /// The digest length of what the client has (the splice is there).
    target: u64,
    /// Its CRC.
    want: u32,
    /// Raw bytes of the new stream fed.
    pub fed: u64,
    failed: bool,
    /// [`Plan::server`]: the old stream's offset of the new stream's first byte.
    pub server: u64,
    /// [`Plan::client_has`]: the splice point is this offset of the client's stream.
    pub client_has: u64,
}

/// Where an answer's check stands after a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Equal so far; more is needed.
    More,
    /// Equal up to what the client has: the new stream continues the client's from this
    /// raw offset.
    Spliced(u64),
    /// Different, or not an answer the framer can follow: RST.
    Mismatch,
    /// Equal, but the splice point lies in bytes already taken (the new stream held a
    /// header line the digest reported late): no splice.
    Late,
}

impl Answer {
    /// The client bytes that go to the new replica (its requests), in order.
    pub fn client(&mut self, bytes: &[u8], rules: &Http1Rules) {
        self.http.client(bytes, &rules.methods);
    }

    /// Before any output: spliced at once when the client has nothing to compare.
    pub fn at_start(&self) -> Step {
        if self.digest.len == self.target {
            if self.digest.crc == self.want {
                Step::Spliced(0)
            } else {
                Step::Mismatch
            }
        } else {
            Step::More
        }
    }

    /// The new replica's output `bytes`, in order (at raw offset [`Answer::fed`]).
    pub fn output(&mut self, bytes: &[u8], rules: &Http1Rules) -> Step {
        if self.failed {
            return Step::Mismatch;
        }
        let at = self.fed;
        self.fed += bytes.len() as u64;
        let (target, mut d) = (self.target, self.digest);
        let mut splice = None;
        self.http.server(bytes, &rules.exclude, &mut |o, s| {
            if splice.is_some() {
                return;
            }
            let take = usize::try_from(target.saturating_sub(d.len))
                .unwrap_or(usize::MAX)
                .min(s.len());
            d.add(o, &s[..take]);
            if d.len == target {
                splice = Some(o + take as u64);
            }
        });
        self.digest = d;
        match splice {
            Some(_) if d.crc != self.want => {
                self.failed = true;
                Step::Mismatch
            }
            Some(r) if r < at => Step::Late,
            Some(r) => Step::Spliced(r),
            None => match self.http.replay_point() {
                // A stream it cannot frame, or a tunnel: not the same answer.
                Replay::Unsafe(r) if r != Reason::NonIdempotent => {
                    self.failed = true;
                    Step::Mismatch
                }
                _ => Step::More,
            },
        }
    }
}

/// Every http1 flow's [`Exchange`] and every replay's [`Answer`], for one worker:
/// allocated once at start, so that the packet path never allocates.
pub struct Exchanges {
    exchanges: Vec<Exchange>,
    free: Vec<u32>,
    answers: Vec<Answer>,
    free_answers: Vec<u32>,
}

impl Exchanges {
    /// Room for `flows` exchanges and `replays` answers.
    pub fn new(flows: usize, replays: usize) -> Exchanges {
        let flows = flows.min(NONE as usize - 1);
        let replays = replays.min(NONE as usize - 1);
        Exchanges {
            exchanges: vec![Exchange::default(); flows],
            free: (0..flows as u32).rev().collect(),
            answers: vec![Answer::default(); replays],
            free_answers: (0..replays as u32).rev().collect(),
        }
    }

    /// A fresh exchange's slot, or [`NONE`] when every one is taken.
    pub fn take(&mut self) -> u32 {
        match self.free.pop() {
            Some(k) => {
                self.exchanges[k as usize] = Exchange::default();
                k
            }
            None => NONE,
        }
    }

    /// Gives `slot` (and its answer) back; [`NONE`] is ignored.
    pub fn release(&mut self, slot: u32) {
        let Some(x) = self.exchanges.get_mut(slot as usize) else {
            return;
        };
        let a = std::mem::replace(&mut x.answer, NONE);
        if a != NONE {
            self.free_answers.push(a);
        }
        self.free.push(slot);
    }

    /// The exchange in `slot`.
    pub fn get_mut(&mut self, slot: u32) -> Option<&mut Exchange> {
        self.exchanges.get_mut(slot as usize)
    }

    /// Starts `slot`'s answer; false when every answer slot is in use.
    pub fn start_answer(&mut self, slot: u32, plan: &Plan) -> bool {
        let Some(x) = self.exchanges.get(slot as usize) else {
            return false;
        };
        if x.answer != NONE {
            return false;
        }
        let Some(a) = self.free_answers.pop() else {
            return false;
        };
        self.answers[a as usize] = x.answer(plan);
        self.exchanges[slot as usize].answer = a;
        true
    }

    /// `slot`'s exchange and its answer in progress.
    pub fn with_answer(&mut self, slot: u32) -> Option<(&mut Exchange, &mut Answer)> {
        let x = self.exchanges.get_mut(slot as usize)?;
        let a = self.answers.get_mut(x.answer as usize)?;
        Some((x, a))
    }

    /// How much of its new replica's output `slot`'s answer in progress took.
    pub fn answer_fed(&self, slot: u32) -> Option<u64> {
        let x = self.exchanges.get(slot as usize)?;
        self.answers.get(x.answer as usize).map(|a| a.fed)
    }

    /// Ends `slot`'s answer (spliced or failed).
    pub fn end_answer(&mut self, slot: u32) {
        if let Some(x) = self.exchanges.get_mut(slot as usize) {
            let a = std::mem::replace(&mut x.answer, NONE);
            if a != NONE {
                self.free_answers.push(a);
            }
        }
    }

    /// Exchanges in use.
    pub fn in_use(&self) -> usize {
        self.exchanges.len() - self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQ1: &[u8] = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
    const REQ2: &[u8] = b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n";
    const POST: &[u8] = b"POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi";

    fn response(server: &str, date: &str, body: &[u8]) -> Vec<u8> {
        let mut r = format!(
            "HTTP/1.1 200 OK\r\nServer: {server}\r\nDate: {date}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(body);
        r
    }

    fn body(n: usize, salt: u8) -> Vec<u8> {
        (0..n).map(|i| (i as u8).wrapping_mul(7) ^ salt).collect()
    }

    /// Feeds `bytes` to the exchange's server side in pieces of `piece` bytes.
    fn feed(x: &mut Exchange, bytes: &[u8], piece: usize, rules: &Http1Rules) {
        for chunk in bytes.chunks(piece.max(1)) {
            let at = x.server_end();
            assert_eq!(x.server(at, chunk, rules), Fed::InOrder);
        }
    }

    /// Runs the new stream through an answer in pieces; the step that ended it and the
    /// raw offset of the piece it ended in.
    fn check(a: &mut Answer, stream: &[u8], piece: usize, rules: &Http1Rules) -> Step {
        let start = a.at_start();
        if start != Step::More {
            return start;
        }
        for chunk in stream.chunks(piece.max(1)) {
            match a.output(chunk, rules) {
                Step::More => {}
                other => return other,
            }
        }
        Step::More
    }

    #[test]
    fn an_answer_that_differs_only_in_date_and_server_is_spliced_right_after_what_the_client_has() {
        let rules = Http1Rules::default();
        let old = response(
            "nginx/1.22.1",
            "Sun, 06 Dec 2026 05:00:00 GMT",
            &body(5000, 1),
        );
        let new = response("nginx", "Sun, 06 Dec 2026 05:00:07 GMT", &body(5000, 1));
        for has in [200usize, 1000, 4999] {
            for piece in [1usize, 7, 1460] {
                let mut x = Exchange::default();
                x.client(REQ1, &rules);
                feed(&mut x, &old[..has], piece, &rules);
                let plan = x.plan().expect("replayable");
                assert_eq!(
                    (plan.client, plan.server, plan.client_has),
                    (0, 0, has as u64)
                );
                let mut a = x.answer(&x.plan().expect("replayable"));
                a.client(REQ1, &rules);
                let step = check(&mut a, &new, piece, &rules);
                // The new header section is 7 bytes shorter (its Server line).
                let r = has as u64 - 7;
                assert_eq!(step, Step::Spliced(r), "has {has} piece {piece}");
                // What follows the splice point is what the client lacks.
                assert_eq!(new[r as usize..], old[has..]);
            }
        }
    }

    #[test]
    fn an_answer_with_a_different_body_is_a_mismatch() {
        let rules = Http1Rules::default();
        let old = response("nginx", "Sun, 06 Dec 2026 05:00:00 GMT", &body(3000, 1));
        let new = response("nginx", "Sun, 06 Dec 2026 05:00:00 GMT", &body(3000, 2));
        let mut x = Exchange::default();
        x.client(REQ1, &rules);
        feed(&mut x, &old[..2000], 1460, &rules);
        let mut a = x.answer(&x.plan().expect("replayable"));
        a.client(REQ1, &rules);
        assert_eq!(check(&mut a, &new, 1460, &rules), Step::Mismatch);
    }

    #[test]
    fn an_answer_that_ends_early_or_is_not_http_never_splices() {
        let rules = Http1Rules::default();
        let old = response("nginx", "d", &body(3000, 1));
        let mut x = Exchange::default();
        x.client(REQ1, &rules);
        feed(&mut x, &old[..2000], 1460, &rules);
        let mut a = x.answer(&x.plan().expect("replayable"));
        a.client(REQ1, &rules);
        assert_eq!(check(&mut a, &old[..1500], 100, &rules), Step::More);
        let mut a = x.answer(&x.plan().expect("replayable"));
        a.client(REQ1, &rules);
        assert_eq!(
            check(&mut a, b"SSH-2.0-OpenSSH_9.2\r\n", 100, &rules),
            Step::Mismatch
        );
    }

    #[test]
    fn a_replay_starts_at_the_oldest_request_not_fully_answered() {
        let rules = Http1Rules::default();
        let first = response("a", "d1", &body(100, 1));
        let second = response("a", "d1", &body(4000, 3));
        let mut x = Exchange::default();
        x.client(REQ1, &rules);
        x.client(REQ2, &rules);
        let mut stream = first.clone();
        stream.extend_from_slice(&second[..1000]);
        // One segment holds the end of the first response and the start of the second.
        feed(&mut x, &stream, 1460, &rules);
        assert_eq!(x.answered_client(), REQ1.len() as u64);
        let plan = x.plan().expect("replayable");
        assert_eq!(plan.client, REQ1.len() as u64);
        assert_eq!(plan.server, first.len() as u64);
        assert_eq!(plan.client_has, stream.len() as u64);
        // The new replica is sent the second request only, and answers it alone.
        let mut a = x.answer(&x.plan().expect("replayable"));
        a.client(REQ2, &rules);
        let new = response("bb", "d2", &body(4000, 3));
        assert_eq!(check(&mut a, &new, 536, &rules), Step::Spliced(1000 + 1));
    }

    #[test]
    fn with_every_request_answered_the_new_connection_is_spliced_at_once() {
        let rules = Http1Rules::default();
        let mut x = Exchange::default();
        x.client(REQ1, &rules);
        let r = response("a", "d", &body(10, 1));
        feed(&mut x, &r, 1460, &rules);
        let plan = x.plan().expect("replayable");
        assert_eq!(
            (plan.client, plan.server),
            (REQ1.len() as u64, r.len() as u64)
        );
        assert_eq!(x.answer(&plan).at_start(), Step::Spliced(0));
    }

    #[test]
    fn a_client_holding_part_of_an_excluded_line_is_refused() {
        let rules = Http1Rules::default();
        let r = response("nginx", "Sun, 06 Dec 2026 05:00:00 GMT", &body(10, 1));
        let date = r.windows(5).position(|w| w == b"Date:").expect("date line");
        let mut x = Exchange::default();
        x.client(REQ1, &rules);
        feed(&mut x, &r[..date + 10], 1460, &rules);
        assert_eq!(x.plan(), Err(Refusal::MidLine));
    }

    #[test]
    fn a_post_in_flight_is_unsafe_until_it_is_answered() {
        let rules = Http1Rules::default();
        let mut x = Exchange::default();
        x.client(POST, &rules);
        assert_eq!(x.plan(), Err(Refusal::Unsafe(Reason::NonIdempotent)));
        feed(&mut x, &response("a", "d", b"ok"), 1460, &rules);
        assert!(x.plan().is_ok());
    }

    #[test]
    fn the_exchange_goes_on_with_the_new_stream_after_a_splice() {
        let rules = Http1Rules::default();
        let old = response("nginx/1.22.1", "d0", &body(3000, 1));
        let new = response("x", "d1", &body(3000, 1));
        let mut x = Exchange::default();
        x.client(REQ1, &rules);
        feed(&mut x, &old[..1500], 1460, &rules);
        let mut a = x.answer(&x.plan().expect("replayable"));
        a.client(REQ1, &rules);
        let Step::Spliced(r) = check(&mut a, &new[..2000], 2000, &rules) else {
            panic!("not spliced");
        };
        x.spliced(&new[r as usize..2000], &rules);
        // The rest of the new stream, then a second request and its answer.
        feed(&mut x, &new[2000..], 1460, &rules);
        x.client(REQ2, &rules);
        assert_eq!(x.answered_client(), REQ1.len() as u64);
        let second = response("x", "d2", &body(50, 9));
        feed(&mut x, &second, 1460, &rules);
        assert_eq!(x.answered_client(), (REQ1.len() + REQ2.len()) as u64);
        assert!(x.plan().is_ok());
    }

    #[test]
    fn a_segment_past_a_gap_is_not_fed() {
        let rules = Http1Rules::default();
        let mut x = Exchange::default();
        x.client(REQ1, &rules);
        assert_eq!(x.server(10, b"abc", &rules), Fed::PastGap);
        assert_eq!(x.server_end(), 0);
    }

    #[test]
    fn slots_run_out_and_come_back() {
        let mut t = Exchanges::new(2, 1);
        let (a, b) = (t.take(), t.take());
        assert_ne!(a, NONE);
        assert_ne!(b, NONE);
        assert_eq!(t.take(), NONE);
        let plan = Plan {
            client: 0,
            server: 0,
            client_has: 0,
        };
        assert!(t.start_answer(a, &plan));
        assert!(!t.start_answer(b, &plan));
        t.release(a);
        assert!(t.start_answer(b, &plan));
        assert_eq!(t.in_use(), 1);
    }

    #[test]
    fn an_answer_slot_comes_back_after_every_splice() {
        let rules = Http1Rules::default();
        let mut t = Exchanges::new(1, 1);
        let slot = t.take();
        let first = response("a", "d", &body(100, 1));
        for _ in 0..3 {
            let x = t.get_mut(slot).expect("slot");
            x.client(REQ1, &rules);
            let at = x.server_end();
            x.server(at, &first[..50], &rules);
            let plan = x.plan().expect("replayable");
            assert!(t.start_answer(slot, &plan), "a free answer slot");
            let (x, a) = t.with_answer(slot).expect("answer");
            a.client(REQ1, &rules);
            let Step::Spliced(r) = a.output(&first, &rules) else {
                panic!("not spliced");
            };
            x.spliced(&first[r as usize..], &rules);
            t.end_answer(slot);
        }
    }
}

#[cfg(test)]
mod size {
    use super::*;

    #[test]
    fn an_exchange_and_an_answer_take_under_200_bytes_each() {
        let (x, a) = (size_of::<Exchange>(), size_of::<Answer>());
        println!("Exchange {x} bytes, Answer {a} bytes");
        assert!(x <= 200 && a <= 200, "Exchange {x}, Answer {a}");
    }
}
