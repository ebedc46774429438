//! The client-byte log of a replayable flow (DESIGN §2, `mode: reconnect`): what the
//! client sent since its SYN, kept so that Tandem can send it again to a replica that
//! never saw the connection.
//!
//! One [`LogArena`] per worker holds every log's bytes in fixed chunks, allocated once at
//! start (`limits.replay_bytes_total`): appending never allocates, and the total is a
//! hard bound. A flow's [`ClientLog`] is a small handle in its `Flow`: a chain of chunks
//! from `head` to `tail`, and the client sequence numbers it covers.
//!
//! Invariants:
//! - A chunk is in exactly one place: the free list, or one log's chain.
//! - An open log holds the client's bytes `[start, start + len)` in order and without a
//!   gap: the first at `head_off` in the head chunk, each chunk full up to the tail.
//! - `len` never exceeds the flow's limit: the append that would pass it ends the log
//!   instead ([`LogState::Overflow`]), as does an exhausted arena ([`LogState::Full`]). An
//!   ended log holds no chunk; the flow is unprotected, and the caller counts why.
//! - A segment past a gap is not logged ([`LogArena::append`]). The engine never acks a
//!   client byte past the log's end to the client, so the client sends it again once the
//!   gap is filled (reconnect mode).
//! - Or, where the log's owner asks ([`LogArena::append_past_gap`], mirror mode, whose
//!   replicas lack the missing bytes as Tandem does, and hold the client's ack back until
//!   the client sends them again), it is logged after a *hole* of the gap's size: one
//!   hole at most, filled in place by the retransmission. A log with a hole is not
//!   [`ClientLog::usable`]; bytes are replayed only up to the hole
//!   ([`ClientLog::contiguous_end`]).

use crate::seq::Seq;

/// Bytes per chunk: a full-size segment's payload fits, so most replayed segments are
/// one slice of one chunk.
pub const CHUNK: usize = 2048;

const NIL: u32 = u32::MAX;

/// Where a flow's log stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogState {
    /// No log (the service does not replay, or the flow has not started one).
    #[default]
    Off,
    /// Logging: every client byte since `start` is here.
    Open,
    /// The flow passed its limit: it cannot be replayed.
    Overflow,
    /// Not used: a segment past a gap is left for the client to send again.
    Gap,
    /// The arena had no free chunk: it cannot be replayed.
    Full,
}

/// One flow's log (in its `Flow`; the bytes are in the worker's [`LogArena`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientLog {
    /// Where it stands.
    pub state: LogState,
    /// Client sequence number of its first byte.
    pub start: Seq,
    /// Bytes held.
    pub len: u32,
    head: u32,
    tail: u32,
    /// Offset of the first byte in the head chunk.
    head_off: u32,
    /// Bytes used in the tail chunk.
    tail_len: u32,
    /// The bytes `[hole_start, hole_start + hole_len)` are not here yet (0: no hole).
    hole_start: Seq,
    hole_len: u32,
}

impl Default for ClientLog {
    fn default() -> ClientLog {
        ClientLog {
            state: LogState::Off,
            start: Seq(0),
            len: 0,
            head: NIL,
            tail: NIL,
            head_off: 0,
            tail_len: 0,
            hole_start: Seq(0),
            hole_len: 0,
        }
    }
}

impl ClientLog {
    /// The client sequence number after its last byte.
    #[inline]
    pub fn end(&self) -> Seq {
        self.start.wrapping_add(self.len)
    }

    /// Whether it holds every client byte since `start`: a replay may use it.
    #[inline]
    pub fn usable(&self) -> bool {
        self.state == LogState::Open && self.hole_len == 0
    }

    /// The end of the bytes it holds without a gap: its end, or the start of its hole.
    #[inline]
    pub fn contiguous_end(&self) -> Seq {
        if self.hole_len == 0 {
            self.end()
        } else {
            self.hole_start
        }
    }
}

/// What an append did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Appended {
    /// New bytes were logged (how many; old bytes of a retransmission are skipped).
    Logged(u32),
    /// Nothing new: the log is not open, or the segment is all before its end.
    Nothing,
    /// The log ended now, for this reason (its state says it too).
    Ended(LogState),
}

/// Every log's bytes, for one worker.
pub struct LogArena {
    bytes: Box<[u8]>,
    /// Next chunk in a chain or in the free list.
    next: Box<[u32]>,
    free: u32,
    free_chunks: u32,
}

impl LogArena {
    /// An arena of `total` bytes (rounded down to whole chunks; 0: none, every log ends
    /// `Full` at its first byte).
    pub fn new(total: u64) -> LogArena {
        let chunks = usize::try_from(total / CHUNK as u64)
            .unwrap_or(usize::MAX)
            .min(NIL as usize - 1);
        let next: Box<[u32]> = (0..chunks)
            .map(|i| if i + 1 < chunks { i as u32 + 1 } else { NIL })
            .collect();
        LogArena {
            bytes: vec![0u8; chunks * CHUNK].into_boxed_slice(),
            next,
            free: if chunks > 0 { 0 } else { NIL },
            free_chunks: chunks as u32,
        }
    }

    /// Bytes of the chunks in use (the `tandem_replay_log_bytes` gauge).
    pub fn used_bytes(&self) -> u64 {
        (self.next.len() as u64 - u64::from(self.free_chunks)) * CHUNK as u64
    }

    /// Bytes of all chunks.
    pub fn capacity_bytes(&self) -> u64 {
        self.next.len() as u64 * CHUNK as u64
    }

    /// Starts `log` at client sequence `start` (the byte after the SYN), empty; an old
    /// log's chunks are freed first.
    pub fn open(&mut self, log: &mut ClientLog, start: Seq) {
        self.free(log);
        *log = ClientLog {
            state: LogState::Open,
            start,
            ..ClientLog::default()
        };
    }

    /// Ends `log` with `why`, freeing its chunks.
    pub fn end(&mut self, log: &mut ClientLog, why: LogState) {
        self.free(log);
        log.state = why;
    }

    /// Frees `log`'s chunks; it is `Off` after.
    pub fn free(&mut self, log: &mut ClientLog) {
        let mut c = log.head;
        while c != NIL {
            let n = self.next[c as usize];
            self.release(c);
            c = n;
        }
        *log = ClientLog::default();
    }

    /// Logs the client's segment `bytes` at `seq`; a flow may hold at most `limit`
    /// bytes.
    pub fn append(&mut self, log: &mut ClientLog, seq: Seq, bytes: &[u8], limit: u32) -> Appended {
        if log.state != LogState::Open || bytes.is_empty() {
            return Appended::Nothing;
        }
        let end = log.end();
        if seq > end {
            // Past a gap: not logged. Nothing past the log's end is acked to the client
            // (the engine's ack sync), so the client sends it again after the gap.
            return Appended::Nothing;
        }
        if log.hole_len > 0 && !self.fill_hole(log, seq, bytes) {
            return Appended::Ended(LogState::Gap);
        }
        // A retransmission: only what follows the log's end is new.
        let skip = end.bytes_after(seq) as usize;
        let Some(new) = bytes.get(skip..).filter(|b| !b.is_empty()) else {
            return Appended::Nothing;
        };
        let Ok(n) = u32::try_from(new.len()) else {
            self.end(log, LogState::Overflow);
            return Appended::Ended(LogState::Overflow);
        };
        if log.len.checked_add(n).is_none_or(|total| total > limit) {
            self.end(log, LogState::Overflow);
            return Appended::Ended(LogState::Overflow);
        }
        let mut rest = new;
        while !rest.is_empty() {
            if log.tail == NIL || log.tail_len as usize == CHUNK {
                let Some(c) = self.take() else {
                    self.end(log, LogState::Full);
                    return Appended::Ended(LogState::Full);
                };
                if log.tail == NIL {
                    log.head = c;
                    log.head_off = 0;
                } else {
                    self.next[log.tail as usize] = c;
                }
                log.tail = c;
                log.tail_len = 0;
            }
            let at = log.tail as usize * CHUNK + log.tail_len as usize;
            let k = rest.len().min(CHUNK - log.tail_len as usize);
            self.bytes[at..at + k].copy_from_slice(&rest[..k]);
            log.tail_len += k as u32;
            log.len += k as u32;
            rest = &rest[k..];
        }
        Appended::Logged(n)
    }

    /// Logs a segment that came past a gap (`seq` after the log's end) behind a hole of
    /// the gap's size, at most `max_hole` bytes, to be filled in place when the client
    /// sends the gap again ([`LogArena::append`]). A second gap while the log has a hole,
    /// or a larger one, ends the log (`Gap`); the limit and the arena as in `append`.
    pub fn append_past_gap(
        &mut self,
        log: &mut ClientLog,
        seq: Seq,
        bytes: &[u8],
        limit: u32,
        max_hole: u32,
    ) -> Appended {
        if log.state != LogState::Open || bytes.is_empty() {
            return Appended::Nothing;
        }
        let end = log.end();
        if seq <= end {
            return self.append(log, seq, bytes, limit);
        }
        let gap = seq.bytes_after(end);
        if log.hole_len > 0 || gap > max_hole {
            self.end(log, LogState::Gap);
            return Appended::Ended(LogState::Gap);
        }
        // The hole's bytes are zeros until filled.
        const ZEROS: [u8; 256] = [0; 256];
        let mut left = gap;
        while left > 0 {
            let n = left.min(ZEROS.len() as u32);
            let at = log.end();
            if let Appended::Ended(why) = self.append(log, at, &ZEROS[..n as usize], limit) {
                return Appended::Ended(why);
            }
            left -= n;
        }
        log.hole_start = end;
        log.hole_len = gap;
        match self.append(log, seq, bytes, limit) {
            Appended::Logged(n) => Appended::Logged(n + gap),
            other => other,
        }
    }

    /// Writes what `bytes` at `seq` has of the log's hole into it; the hole shrinks from
    /// either end (false: the segment falls inside it, leaving two holes; not kept).
    fn fill_hole(&mut self, log: &mut ClientLog, seq: Seq, bytes: &[u8]) -> bool {
        let (hs, he) = (log.hole_start, log.hole_start.wrapping_add(log.hole_len));
        let se = seq.wrapping_add(bytes.len() as u32);
        let from = seq.later(hs);
        let to = se.earlier(he);
        if from >= to {
            return true; // nothing of the hole
        }
        if from != hs && to != he {
            return false;
        }
        let part = &bytes[from.bytes_after(seq) as usize..to.bytes_after(seq) as usize];
        self.write_at(log, from, part);
        if from == hs && to == he {
            log.hole_len = 0;
        } else if from == hs {
            log.hole_start = to;
            log.hole_len = he.bytes_after(to);
        } else {
            log.hole_len = from.bytes_after(hs);
        }
        true
    }

    /// Overwrites the logged bytes at `from` (within the log) with `bytes`.
    fn write_at(&mut self, log: &ClientLog, from: Seq, bytes: &[u8]) {
        let mut off = (log.head_off + from.bytes_after(log.start)) as usize;
        let mut c = log.head;
        let mut rest = bytes;
        while c != NIL && !rest.is_empty() {
            if off >= CHUNK {
                off -= CHUNK;
                c = self.next[c as usize];
                continue;
            }
            let k = rest.len().min(CHUNK - off);
            let at = c as usize * CHUNK + off;
            self.bytes[at..at + k].copy_from_slice(&rest[..k]);
            rest = &rest[k..];
            off = 0;
            c = self.next[c as usize];
        }
    }

    /// Drops the bytes before `to` (the client bytes no replay needs any more); whole
    /// chunks go back to the arena.
    pub fn trim(&mut self, log: &mut ClientLog, to: Seq) {
        if log.state != LogState::Open || to <= log.start {
            return;
        }
        let drop = to.bytes_after(log.start).min(log.len);
        log.start = log.start.wrapping_add(drop);
        log.len -= drop;
        let mut off = log.head_off + drop;
        while log.head != NIL && off as usize >= CHUNK && log.head != log.tail {
            let n = self.next[log.head as usize];
            self.release(log.head);
            log.head = n;
            off -= CHUNK as u32;
        }
        if log.len == 0 && log.head != NIL {
            // Empty: the tail chunk goes too; the next byte starts a new one.
            self.release(log.head);
            log.head = NIL;
            log.tail = NIL;
            log.tail_len = 0;
            off = 0;
        }
        log.head_off = off;
    }

    /// The logged bytes from `from` on, as far as they lie in one chunk (at most `max`):
    /// empty when `from` is not within the log.
    pub fn slice_at(&self, log: &ClientLog, from: Seq, max: usize) -> &[u8] {
        if log.state != LogState::Open || from < log.start || from >= log.end() {
            return &[];
        }
        let mut off = (log.head_off + from.bytes_after(log.start)) as usize;
        let mut c = log.head;
        while off >= CHUNK {
            c = self.next[c as usize];
            off -= CHUNK;
        }
        let in_chunk = if c == log.tail {
            log.tail_len as usize - off
        } else {
            CHUNK - off
        };
        let at = c as usize * CHUNK + off;
        &self.bytes[at..at + in_chunk.min(max)]
    }

    fn take(&mut self) -> Option<u32> {
        let c = self.free;
        if c == NIL {
            return None;
        }
        self.free = self.next[c as usize];
        self.next[c as usize] = NIL;
        self.free_chunks -= 1;
        Some(c)
    }

    fn release(&mut self, c: u32) {
        self.next[c as usize] = self.free;
        self.free = c;
        self.free_chunks += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: u32 = 1 << 20;

    fn read_all(a: &LogArena, log: &ClientLog) -> Vec<u8> {
        let mut out = Vec::new();
        let mut at = log.start;
        while at < log.end() {
            let s = a.slice_at(log, at, 1460);
            assert!(!s.is_empty());
            out.extend_from_slice(s);
            at = at.wrapping_add(s.len() as u32);
        }
        out
    }

    #[test]
    fn a_log_holds_the_client_bytes_in_order_across_chunks_and_the_sequence_wrap() {
        let mut a = LogArena::new(64 * CHUNK as u64);
        let mut log = ClientLog::default();
        let start = Seq(u32::MAX - 3000);
        a.open(&mut log, start);
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
        for (k, piece) in data.chunks(1448).enumerate() {
            let seq = start.wrapping_add((k * 1448) as u32);
            assert_eq!(
                a.append(&mut log, seq, piece, LIMIT),
                Appended::Logged(piece.len() as u32)
            );
        }
        assert_eq!(log.len, 10_000);
        assert_eq!(read_all(&a, &log), data);
        assert_eq!(a.used_bytes(), 5 * CHUNK as u64);
    }

    #[test]
    fn a_retransmission_adds_only_what_is_new_and_a_segment_past_a_gap_is_left_out() {
        let mut a = LogArena::new(8 * CHUNK as u64);
        let mut log = ClientLog::default();
        a.open(&mut log, Seq(100));
        assert_eq!(
            a.append(&mut log, Seq(100), b"hello", LIMIT),
            Appended::Logged(5)
        );
        assert_eq!(
            a.append(&mut log, Seq(100), b"hello", LIMIT),
            Appended::Nothing
        );
        assert_eq!(
            a.append(&mut log, Seq(103), b"lo world", LIMIT),
            Appended::Logged(6)
        );
        assert_eq!(read_all(&a, &log), b"hello world");
        assert_eq!(
            a.append(&mut log, Seq(200), b"late", LIMIT),
            Appended::Nothing
        );
        assert!(log.usable(), "left out, not ended");
        assert_eq!(
            a.append(&mut log, Seq(111), b"more", LIMIT),
            Appended::Logged(4)
        );
        assert_eq!(read_all(&a, &log), b"hello worldmore");
    }

    #[test]
    fn a_flow_past_its_limit_or_an_arena_out_of_chunks_ends_its_log_and_frees_it() {
        let mut a = LogArena::new(2 * CHUNK as u64);
        let mut log = ClientLog::default();
        a.open(&mut log, Seq(1));
        assert_eq!(
            a.append(&mut log, Seq(1), &[1; 1000], 1500),
            Appended::Logged(1000)
        );
        assert_eq!(
            a.append(&mut log, Seq(1001), &[2; 501], 1500),
            Appended::Ended(LogState::Overflow)
        );
        assert_eq!(a.used_bytes(), 0);
        let (mut x, mut y) = (ClientLog::default(), ClientLog::default());
        a.open(&mut x, Seq(1));
        a.open(&mut y, Seq(1));
        assert_eq!(
            a.append(&mut x, Seq(1), &[1; CHUNK + 1], LIMIT),
            Appended::Logged(CHUNK as u32 + 1)
        );
        assert_eq!(
            a.append(&mut y, Seq(1), &[1; 10], LIMIT),
            Appended::Ended(LogState::Full)
        );
        a.free(&mut x);
        assert_eq!(a.used_bytes(), 0);
        a.open(&mut y, Seq(1));
        assert_eq!(
            a.append(&mut y, Seq(1), &[1; 10], LIMIT),
            Appended::Logged(10)
        );
    }

    #[test]
    fn an_arena_of_nothing_ends_every_log_full() {
        let mut a = LogArena::new(0);
        let mut log = ClientLog::default();
        a.open(&mut log, Seq(1));
        assert_eq!(
            a.append(&mut log, Seq(1), b"x", LIMIT),
            Appended::Ended(LogState::Full)
        );
    }

    proptest::proptest! {
        /// Any mix of in-order segments, retransmissions that overlap, trims and reads
        /// matches a plain byte vector, and every chunk comes back when the logs end.
        #[test]
        fn the_log_matches_a_byte_vector_under_any_appends_and_trims(
            start in proptest::num::u32::ANY,
            ops in proptest::collection::vec((0u8..4, 1usize..3000, 0usize..3000), 1..80),
        ) {
            let mut a = LogArena::new(32 * CHUNK as u64);
            let mut log = ClientLog::default();
            let start = Seq(start);
            a.open(&mut log, start);
            // The model: every byte the client sent, and how many the log dropped in front.
            let mut sent: Vec<u8> = Vec::new();
            let mut trimmed = 0usize;
            for (k, (op, n, back)) in ops.into_iter().enumerate() {
                match op {
                    0 | 1 => {
                        let new: Vec<u8> = (0..n).map(|i| (i + k * 31) as u8).collect();
                        let from = sent.len().saturating_sub(back).max(trimmed);
                        let mut seg = sent[from..].to_vec();
                        seg.extend_from_slice(&new);
                        let seq = start.wrapping_add(from as u32);
                        let got = a.append(&mut log, seq, &seg, 40_000);
                        if sent.len() + n - trimmed > 40_000 {
                            proptest::prop_assert_eq!(got, Appended::Ended(LogState::Overflow));
                            break;
                        }
                        if got == Appended::Ended(LogState::Full) {
                            break;
                        }
                        proptest::prop_assert_eq!(got, Appended::Logged(n as u32));
                        sent.extend_from_slice(&new);
                    }
                    2 => {
                        let to = (trimmed + back).min(sent.len());
                        a.trim(&mut log, start.wrapping_add(to as u32));
                        trimmed = trimmed.max(to);
                    }
                    _ => {
                        let from = trimmed + back % (sent.len() - trimmed + 1);
                        let s = a.slice_at(&log, start.wrapping_add(from as u32), n);
                        let want = &sent[from..(from + s.len()).min(sent.len())];
                        proptest::prop_assert_eq!(s, want);
                        proptest::prop_assert!(from == sent.len() || !s.is_empty());
                    }
                }
                proptest::prop_assert_eq!(log.start, start.wrapping_add(trimmed as u32));
                proptest::prop_assert_eq!(read_all(&a, &log), &sent[trimmed..]);
                let chunks_needed = (log.len as usize).div_ceil(CHUNK) as u64 + 1;
                proptest::prop_assert!(a.used_bytes() <= chunks_needed * CHUNK as u64);
            }
            a.free(&mut log);
            proptest::prop_assert_eq!(a.used_bytes(), 0);
        }
    }

    #[test]
    fn a_segment_past_a_gap_is_kept_behind_a_hole_that_the_retransmission_fills() {
        let mut a = LogArena::new(8 * CHUNK as u64);
        let mut log = ClientLog::default();
        a.open(&mut log, Seq(u32::MAX - 2));
        let data: Vec<u8> = (0..3000u32).map(|i| (i * 13) as u8).collect();
        let at = |k: usize| Seq(u32::MAX - 2).wrapping_add(k as u32);
        assert_eq!(
            a.append_past_gap(&mut log, at(0), &data[..1000], LIMIT, 4096),
            Appended::Logged(1000)
        );
        // 1000..2000 lost on the way: 2000..3000 waits behind a hole.
        assert_eq!(
            a.append_past_gap(&mut log, at(2000), &data[2000..], LIMIT, 4096),
            Appended::Logged(2000)
        );
        assert!(!log.usable());
        assert_eq!(log.contiguous_end(), at(1000));
        // Filled from its front in two pieces (a retransmission cut differently).
        a.append_past_gap(&mut log, at(1000), &data[1000..1400], LIMIT, 4096);
        assert_eq!(log.contiguous_end(), at(1400));
        a.append_past_gap(&mut log, at(900), &data[900..2100], LIMIT, 4096);
        assert!(log.usable());
        assert_eq!(log.end(), at(3000));
        assert_eq!(read_all(&a, &log), data);
    }

    #[test]
    fn a_second_gap_or_a_piece_inside_the_hole_ends_the_log() {
        let mut a = LogArena::new(8 * CHUNK as u64);
        let mut log = ClientLog::default();
        a.open(&mut log, Seq(0));
        a.append_past_gap(&mut log, Seq(0), &[1; 100], LIMIT, 4096);
        a.append_past_gap(&mut log, Seq(200), &[2; 100], LIMIT, 4096);
        assert_eq!(
            a.append_past_gap(&mut log, Seq(400), &[3; 100], LIMIT, 4096),
            Appended::Ended(LogState::Gap)
        );
        assert_eq!(log.state, LogState::Gap);
        assert_eq!(a.used_bytes(), 0);

        a.open(&mut log, Seq(0));
        a.append_past_gap(&mut log, Seq(0), &[1; 100], LIMIT, 4096);
        a.append_past_gap(&mut log, Seq(300), &[2; 100], LIMIT, 4096);
        assert_eq!(
            a.append_past_gap(&mut log, Seq(150), &[3; 50], LIMIT, 4096),
            Appended::Ended(LogState::Gap)
        );
        // And a gap larger than the hole allowed.
        a.open(&mut log, Seq(0));
        assert_eq!(
            a.append_past_gap(&mut log, Seq(5000), &[1; 10], LIMIT, 4096),
            Appended::Ended(LogState::Gap)
        );
    }
}
