//! Verified standbys (DESIGN §3.12): a standby may take over only for the part of the
//! stream where its output was checked equal to the active's at the same offsets.
//!
//! Offsets are client-visible sequence numbers, so that the same byte of the stream has
//! the same number on every leg. Each leg keeps a CRC32C of its output in order
//! ([`Check::at`], [`Check::crc`]); a *checked* leg (a standby) is compared with its
//! *reference* (the active) wherever both CRCs are known at one offset. Both CRCs run
//! from the first byte, so one equal pair covers every byte before it: every byte is
//! compared, not a sample (a difference goes unseen with CRC32C's odds, 2^-32; the
//! replicas are the appliance's own servers, not an adversary choosing their output).
//!
//! Where the check lands:
//! - **A standby behind the active** passes the active's *marks* (its CRC at the end of
//!   each advance while a standby was behind, [`MARKS`] kept; when more are due the
//!   oldest goes) and its current end, and computes its own CRC there from the
//!   bytes in hand.
//! - **A standby ahead of the active** has its output held (DESIGN §3.6): when the active
//!   advances, the standby's held bytes from its last verified offset are read up to the
//!   active's new end and compared there ([`HeldOutput`]).
//! - **Out of order:** a segment past a gap is digested when the gap fills ([`PENDING`]
//!   pieces a leg, joined with CRC32C's combine). More pieces, a retransmission that
//!   overlaps a piece in part, or held bytes that are gone before they were checked
//!   (released over budget) leave the leg [`State::Lost`]: not wrong, but no longer
//!   verifiable, so it is no standby any more (a lost reference loses its standbys).
//! - **At failover** ([`take_over`]) the new active must be verified up to what the
//!   client has. Ahead, it is already (or is refused); behind, it *catches up*: its
//!   output is compared with the dead active's CRC at that point as it arrives, and none
//!   of it reaches the client unverified ([`Check::verified`]).
//!
//! Cost: a CRC32C of every payload byte of every leg (the SSE4.2 instruction, 8 bytes a
//! step, where the CPU has it), and for a standby ahead of the active a walk of its held
//! segments. Memory: `size_of::<Check>()` per leg (see `perf/RESULTS.md`).

use crate::seq::Seq;

/// Marks a leg keeps for the legs behind it.
pub const MARKS: usize = 8;
/// Out-of-order pieces a leg keeps until the gap before them fills.
pub const PENDING: usize = 6;

/// Where a leg's verification stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum State {
    /// Checked equal so far ([`Check::verified`]).
    #[default]
    Checking,
    /// Its output differs from its reference's between [`Check::verified`] and
    /// [`Check::diverged_by`]: it may never take over.
    Diverged,
    /// Its output can no longer be checked (see the module docs): it may not take over
    /// beyond [`Check::verified`].
    Lost,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Mark {
    at: Seq,
    crc: u32,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Piece {
    seq: Seq,
    len: u32,
    crc: u32,
}

/// One leg's verification state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Check {
    /// Its output is digested up to here: every byte before, in order.
    pub at: Seq,
    /// CRC32C of its output from the first byte up to [`Check::at`].
    pub crc: u32,
    /// Checked equal to its reference up to here.
    pub verified: Seq,
    /// CRC32C of its output up to [`Check::verified`] (the reference's, too).
    pub verified_crc: u32,
    /// Where it stands.
    pub state: State,
    /// When diverged: the offset of the check that failed (the first difference lies
    /// after [`Check::verified`] and before this).
    pub diverged_by: Seq,
    marks: [Mark; MARKS],
    n_marks: u8,
    pending: [Piece; PENDING],
    n_pending: u8,
}

/// Who a leg is compared with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Links {
    /// The leg it is checked against (a standby's: the active).
    pub reference: Option<usize>,
    /// The legs checked against it (the active's: its live standbys), a bit per leg.
    pub checked: u8,
}

/// What one segment changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Legs (a bit each) found diverged by this segment.
    pub diverged: u8,
    /// Legs (a bit each) that became unverifiable.
    pub lost: u8,
}

/// A leg's held output, for checking a standby that is ahead of the active.
pub trait HeldOutput {
    /// Calls `each` with every held segment of leg `leg` that carries data, oldest first
    /// (the client-visible sequence number of its first payload byte, and the payload),
    /// until `each` returns false.
    fn held(&self, leg: usize, each: &mut dyn FnMut(Seq, &[u8]) -> bool);
}

/// No held output (tests, and legs that hold nothing).
pub struct NothingHeld;

impl HeldOutput for NothingHeld {
    fn held(&self, _: usize, _: &mut dyn FnMut(Seq, &[u8]) -> bool) {}
}

/// CRC32C of `bytes` appended to a stream whose CRC32C so far is `crc`.
#[inline]
pub(crate) fn append(crc: u32, bytes: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    if bytes.len() < SHORT && std::is_x86_feature_detected!("sse4.2") {
        // SAFETY: the CPU has SSE4.2, checked just above (a cached flag).
        return unsafe { append_short_sse42(crc, bytes) };
    }
    crc32c::crc32c_append(crc, bytes)
}

/// Below this many bytes, [`append`] runs the CRC instruction in a plain loop: the
/// `crc32c` crate's setup for its three-way parallel loop, which wins on full-size
/// segments, costs more than a short payload's whole CRC (about 250 instructions a call
/// under callgrind, against 20 for a 6-byte payload here).
const SHORT: usize = 256;

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse4.2")]
unsafe fn append_short_sse42(crc: u32, bytes: &[u8]) -> u32 {
    use core::arch::x86_64::{_mm_crc32_u64, _mm_crc32_u8};
    // The instruction runs on the register form (the CRC inverted).
    let mut state = u64::from(!crc);
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let word = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        state = _mm_crc32_u64(state, word);
    }
    let mut state = state as u32;
    for &b in words.remainder() {
        state = _mm_crc32_u8(state, b);
    }
    !state
}

impl Check {
    /// A leg whose first byte of output is at `start` (the visible ISN plus one).
    pub fn start(start: Seq) -> Check {
        Check {
            at: start,
            verified: start,
            ..Check::default()
        }
    }

    /// Whether it may still take over for what it checked.
    #[inline]
    pub fn usable(&self) -> bool {
        self.state == State::Checking
    }

    /// Forgets the pieces kept past a gap: a leg that catches up after a failover must
    /// not jump over the point it is checked at (a joined piece carries no bytes to
    /// check there); its replica sends them again, as nothing past the gap is acked to it.
    pub fn drop_pieces(&mut self) {
        self.n_pending = 0;
    }

    /// Records its CRC at its current end for the legs behind it.
    fn mark(&mut self) {
        let m = Mark {
            at: self.at,
            crc: self.crc,
        };
        if usize::from(self.n_marks) < MARKS {
            self.marks[usize::from(self.n_marks)] = m;
            self.n_marks += 1;
        } else {
            // Full: the oldest goes. Every byte stays covered (the CRCs run from the
            // first byte); the check points kept are the latest, where a leg catching up
            // after a failover needs them: the output the client may still lack.
            self.marks.copy_within(1.., 0);
            self.marks[MARKS - 1] = m;
        }
    }

    /// Forgets the marks every leg behind has passed.
    fn forget_marks_to(&mut self, to: Seq) {
        let n = usize::from(self.n_marks);
        let keep = self.marks[..n].iter().filter(|m| m.at > to).count();
        self.marks.copy_within(n - keep..n, 0);
        self.n_marks = keep as u8;
    }

    /// Its CRC at `at`, where known: its end, or a mark.
    fn crc_at(&self, at: Seq) -> Option<u32> {
        if at == self.at {
            return Some(self.crc);
        }
        self.marks[..usize::from(self.n_marks)]
            .iter()
            .find(|m| m.at == at)
            .map(|m| m.crc)
    }

    /// The result of one comparison at `at`, where its CRC is `mine` and its
    /// reference's `theirs`. Returns whether it diverged now.
    fn compared(&mut self, at: Seq, mine: u32, theirs: u32) -> bool {
        if self.state != State::Checking || at <= self.verified {
            return false;
        }
        if mine == theirs {
            self.verified = at;
            self.verified_crc = mine;
            false
        } else {
            self.state = State::Diverged;
            self.diverged_by = at;
            true
        }
    }

    fn lose(&mut self) -> bool {
        if self.state == State::Checking {
            self.state = State::Lost;
            return true;
        }
        false
    }

    /// Keeps a piece past a gap, joined to a kept piece it continues or precedes (a
    /// run after one lost segment stays one piece); false when it cannot be kept (no
    /// room, or it overlaps a kept piece in part).
    fn keep_piece(&mut self, seq: Seq, bytes: &[u8]) -> bool {
        let len = bytes.len() as u32;
        let end = seq.wrapping_add(len);
        let n = usize::from(self.n_pending);
        let crc = crc32c::crc32c(bytes);
        for p in &mut self.pending[..n] {
            let p_end = p.seq.wrapping_add(p.len);
            if p.seq <= seq && end <= p_end {
                return true; // within a kept piece: a retransmission
            }
            if seq == p_end {
                p.crc = crc32c::crc32c_combine(p.crc, crc, len as usize);
                p.len += len;
                return self.join_kept();
            }
            if end == p.seq {
                p.crc = crc32c::crc32c_combine(crc, p.crc, p.len as usize);
                p.seq = seq;
                p.len += len;
                return self.join_kept();
            }
            if seq < p_end && p.seq < end {
                // Overlapping it in part (a retransmission cut differently): the piece
                // grows by what this segment has beyond it, on either side.
                if seq < p.seq {
                    let head = &bytes[..p.seq.bytes_after(seq) as usize];
                    p.crc = crc32c::crc32c_combine(crc32c::crc32c(head), p.crc, p.len as usize);
                    p.len += head.len() as u32;
                    p.seq = seq;
                }
                if end > p_end {
                    let tail = &bytes[p_end.bytes_after(seq) as usize..];
                    p.crc = crc32c::crc32c_combine(p.crc, crc32c::crc32c(tail), tail.len());
                    p.len += tail.len() as u32;
                }
                return self.join_kept();
            }
        }
        if n == PENDING {
            return false;
        }
        self.pending[n] = Piece { seq, len, crc };
        self.n_pending += 1;
        true
    }

    /// Joins kept pieces that became adjacent; false if two now overlap.
    fn join_kept(&mut self) -> bool {
        let n = usize::from(self.n_pending);
        for a in 0..n {
            for b in 0..n {
                if a == b {
                    continue;
                }
                let (pa, pb) = (self.pending[a], self.pending[b]);
                let a_end = pa.seq.wrapping_add(pa.len);
                if a_end == pb.seq {
                    self.pending[a] = Piece {
                        seq: pa.seq,
                        len: pa.len + pb.len,
                        crc: crc32c::crc32c_combine(pa.crc, pb.crc, pb.len as usize),
                    };
                    self.pending.copy_within(b + 1..n, b);
                    self.n_pending -= 1;
                    return self.join_kept();
                }
                if pa.seq < pb.seq.wrapping_add(pb.len) && pb.seq < a_end {
                    return false;
                }
            }
        }
        true
    }

    /// Joins the kept pieces that now follow [`Check::at`]; false when one overlaps it
    /// in part (its bytes are gone, the stream can no longer be digested).
    fn join_pieces(&mut self, seq: Seq, bytes: &[u8]) -> bool {
        loop {
            let n = usize::from(self.n_pending);
            let Some(k) = self.pending[..n].iter().position(|p| p.seq <= self.at) else {
                return true;
            };
            let p = self.pending[k];
            self.pending.copy_within(k + 1..n, k);
            self.n_pending -= 1;
            let end = p.seq.wrapping_add(p.len);
            if end <= self.at {
                continue; // covered already
            }
            // Its head may have come again in the segment in hand (a retransmission
            // cut differently): the rest's CRC is the piece's less its head's.
            let tail = match p.seq.bytes_after(seq) as usize {
                0 if p.seq == self.at => p.crc,
                from if p.seq >= seq && self.at <= seq.wrapping_add(bytes.len() as u32) => {
                    let head = &bytes[from..self.at.bytes_after(seq) as usize];
                    let rest = end.bytes_after(self.at) as usize;
                    p.crc ^ crc32c::crc32c_combine(crc32c::crc32c(head), 0, rest)
                }
                _ => return false,
            };
            self.crc = crc32c::crc32c_combine(self.crc, tail, end.bytes_after(self.at) as usize);
            self.at = end;
        }
    }
}

/// Leg `i` sent `payload` at visible sequence `seq` (its data in order or not, new or a
/// retransmission): digests it and compares it, or the legs checked against it, wherever
/// both CRCs are now known. `held` reads a leg's held output.
pub fn feed(
    checks: &mut [Check],
    i: usize,
    links: Links,
    seq: Seq,
    payload: &[u8],
    held: &dyn HeldOutput,
) -> Outcome {
    let mut out = Outcome::default();
    let Some(&me) = checks.get(i) else {
        return out;
    };
    if me.state == State::Lost || payload.is_empty() {
        return out;
    }
    let end = seq.wrapping_add(payload.len() as u32);
    if end <= me.at {
        return out; // all digested already: a retransmission
    }
    if seq > me.at {
        // Past a gap: kept until the gap fills.
        if !checks[i].keep_piece(seq, payload) {
            out.lost |= lose(checks, i, links);
        }
        return out;
    }
    let from = me.at;
    let fresh = &payload[from.bytes_after(seq) as usize..];
    if links.reference.is_none() && links.checked == 0 {
        // Compared with nobody (an active without standbys): digested only, so that a
        // standby added later (or the pieces past a gap) can still be checked.
        let c = &mut checks[i];
        c.crc = append(c.crc, fresh);
        c.at = end;
        c.n_marks = 0;
        if !c.join_pieces(seq, payload) {
            out.lost |= lose(checks, i, links);
        }
        return out;
    }
    // Where this leg's CRC is wanted inside the fresh bytes: its reference's marks and
    // end (it is checked there), and the ends of the legs behind it (they are checked
    // there). Sorted, at most MARKS + 1 + the legs.
    let mut wanted: [(Seq, u32, Option<usize>); MARKS + 1 + crate::flow::MAX_COPIES] =
        [(Seq(0), 0, None); MARKS + 1 + crate::flow::MAX_COPIES];
    let mut n = 0;
    let inside = |at: Seq| from < at && at <= end;
    if let Some(r) = links.reference.and_then(|r| checks.get(r)) {
        for m in r.marks[..usize::from(r.n_marks)]
            .iter()
            .chain(core::iter::once(&Mark {
                at: r.at,
                crc: r.crc,
            }))
        {
            if inside(m.at) && !wanted[..n].iter().any(|w| w.0 == m.at && w.2.is_none()) {
                wanted[n] = (m.at, m.crc, None);
                n += 1;
            }
        }
    }
    for (j, c) in checks.iter().enumerate() {
        if links.checked & (1 << j) != 0 && c.usable() && inside(c.at) {
            wanted[n] = (c.at, c.crc, Some(j));
            n += 1;
        }
    }
    let wanted = &mut wanted[..n];
    wanted.sort_unstable_by(|a, b| a.0.diff(b.0).cmp(&0));
    let (mut crc, mut pos) = (me.crc, from);
    for &(at, theirs, who) in wanted.iter() {
        crc = append(
            crc,
            &fresh[pos.bytes_after(from) as usize..at.bytes_after(from) as usize],
        );
        pos = at;
        match who {
            None => {
                if checks[i].compared(at, crc, theirs) {
                    out.diverged |= 1 << i;
                }
            }
            Some(j) => {
                if checks[j].compared(at, theirs, crc) {
                    out.diverged |= 1 << j;
                }
            }
        }
    }
    let c = &mut checks[i];
    c.crc = append(crc, &fresh[pos.bytes_after(from) as usize..]);
    c.at = end;
    if !c.join_pieces(seq, payload) {
        out.lost |= lose(checks, i, links);
        return out;
    }
    // Pieces joined past its reference's check points: checked there from its held
    // output (a standby's output is held whatever its order).
    if let Some(r) = links.reference.and_then(|r| checks.get(r).copied()) {
        let joined_to = checks[i].at;
        let mut points = r.marks;
        let mut n = usize::from(r.n_marks);
        if n < MARKS {
            points[n] = Mark {
                at: r.at,
                crc: r.crc,
            };
            n += 1;
        } else {
            points[MARKS - 1] = Mark {
                at: r.at,
                crc: r.crc,
            };
        }
        let points = &mut points[..n];
        points.sort_unstable_by(|a, b| a.at.diff(b.at).cmp(&0));
        for m in points.iter().filter(|m| end < m.at && m.at <= joined_to) {
            if let Some(mine) = crc_of_held(&checks[i], i, m.at, held) {
                if checks[i].compared(m.at, mine, m.crc) {
                    out.diverged |= 1 << i;
                }
            }
        }
    }
    // The legs ahead of it: their held output is read up to its new end.
    let (at, crc) = (checks[i].at, checks[i].crc);
    for (j, c) in checks.iter_mut().enumerate() {
        if links.checked & (1 << j) == 0 || !c.usable() || c.at < at {
            continue;
        }
        match crc_of_held(c, j, at, held) {
            Some(theirs) => {
                if c.compared(at, theirs, crc) {
                    out.diverged |= 1 << j;
                }
            }
            // Sent, but no longer held from where it was last checked: gone.
            None => {
                if c.lose() {
                    out.lost |= 1 << j;
                }
            }
        }
    }
    // Marks for the legs still behind it; those all have passed are forgotten.
    let behind = (0..checks.len())
        .filter(|&j| links.checked & (1 << j) != 0 && checks[j].usable())
        .map(|j| checks[j].at)
        .filter(|&a| a < at)
        .reduce(|a, b| a.earlier(b));
    let c = &mut checks[i];
    match behind {
        Some(slowest) => {
            c.forget_marks_to(slowest);
            c.mark();
        }
        None => c.n_marks = 0,
    }
    out
}

/// Leg `i` can no longer be digested: it is lost, and so are the legs checked against
/// it (their reference's CRC is unknown from here). Returns the legs that became lost.
fn lose(checks: &mut [Check], i: usize, links: Links) -> u8 {
    let mut lost = 0;
    for (j, c) in checks.iter_mut().enumerate() {
        if (j == i || links.checked & (1 << j) != 0) && c.lose() {
            lost |= 1 << j;
        }
    }
    lost
}

/// Leg `j`'s CRC at `to`, from its last verified point through its held output.
fn crc_of_held(c: &Check, j: usize, to: Seq, held: &dyn HeldOutput) -> Option<u32> {
    if to <= c.verified {
        return Some(c.verified_crc).filter(|_| to == c.verified);
    }
    held_crc(held, j, c.verified, c.verified_crc, to)
}

/// The CRC32C `crc` of a stream up to `from` continued through leg `j`'s held output up
/// to `to`; `None` where a byte between is not held.
fn held_crc(held: &dyn HeldOutput, j: usize, from: Seq, crc: u32, to: Seq) -> Option<u32> {
    let (mut pos, mut crc) = (from, crc);
    // Held in arrival order, which a lost segment's retransmission breaks: passes until
    // one makes no progress.
    loop {
        let before = pos;
        held.held(j, &mut |seq, bytes| {
            let end = seq.wrapping_add(bytes.len() as u32);
            if seq <= pos && pos < end {
                let stop = to.earlier(end);
                let skip = pos.bytes_after(seq) as usize;
                crc = append(crc, &bytes[skip..skip + stop.bytes_after(pos) as usize]);
                pos = stop;
            }
            pos != to
        });
        if pos == to || pos == before {
            break;
        }
    }
    (pos == to).then_some(crc)
}

/// What a failover to a standby may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TakeOver {
    /// It was checked equal up to what the client has: it takes over now.
    Verified,
    /// It is behind what the client has, and was checked equal so far: it takes over,
    /// but nothing it sends reaches the client until it is checked equal to the dead
    /// active's CRC at this point (its output is compared as it arrives).
    CatchUp(Seq),
    /// It diverged, or cannot be checked up to what the client has: it must not take over.
    Refused,
}

/// Whether leg `new` may take over from leg `old`, the client having every byte before
/// `client_has` (the old active's output it was sent). `held` reads the new one's held
/// output, where a last check may still be made.
pub fn take_over(
    checks: &mut [Check],
    old: usize,
    new: usize,
    client_has: Seq,
    held: &dyn HeldOutput,
) -> TakeOver {
    let (Some(&o), Some(&n)) = (checks.get(old), checks.get(new)) else {
        return TakeOver::Refused;
    };
    if !n.usable() {
        return TakeOver::Refused;
    }
    if client_has <= n.verified {
        return TakeOver::Verified;
    }
    // The client has the old active's output in order up to its digest's end, and past a
    // gap (a segment lost on the way to Tandem, so to the client too) the pieces it kept.
    // Those must be matched byte for byte by the new one's held output; the gaps are
    // new to the client.
    for p in &o.pending[..usize::from(o.n_pending)] {
        if p.seq >= client_has {
            continue;
        }
        let end = p.seq.wrapping_add(p.len);
        if n.at < end || held_crc(held, new, p.seq, 0, end) != Some(p.crc) {
            return TakeOver::Refused;
        }
    }
    let upto = o.at.earlier(client_has);
    if upto <= n.verified {
        return TakeOver::Verified;
    }
    let Some(theirs) = o.crc_at(upto) else {
        return TakeOver::Refused;
    };
    if n.at < upto {
        // Behind: checked as its output comes (with a gap after, nothing to check there).
        return if o.n_pending == 0 {
            TakeOver::CatchUp(upto)
        } else {
            TakeOver::Refused
        };
    }
    // Ahead, but not checked up to there yet: from its held output, now.
    match crc_of_held(&n, new, upto, held) {
        Some(mine) if !checks[new].compared(upto, mine, theirs) => TakeOver::Verified,
        _ => TakeOver::Refused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: Seq = Seq(1000);

    /// A leg's held output in these tests: (seq, bytes) per leg.
    #[derive(Default)]
    struct Held(Vec<Vec<(Seq, Vec<u8>)>>);

    impl HeldOutput for Held {
        fn held(&self, leg: usize, each: &mut dyn FnMut(Seq, &[u8]) -> bool) {
            for (seq, b) in self.0.get(leg).into_iter().flatten() {
                if !each(*seq, b) {
                    return;
                }
            }
        }
    }

    /// The active is leg 0, the standby leg 1.
    const ACTIVE: Links = Links {
        reference: None,
        checked: 0b10,
    };
    const STANDBY: Links = Links {
        reference: Some(0),
        checked: 0,
    };

    fn stream(n: usize) -> Vec<u8> {
        (0..n).map(|k| (k * 7 + k / 251) as u8).collect()
    }

    fn legs() -> Vec<Check> {
        vec![Check::start(START), Check::start(START)]
    }

    /// Sends `data[a..b]` from leg `i`.
    fn send(c: &mut [Check], i: usize, data: &[u8], a: usize, b: usize, held: &Held) -> Outcome {
        let links = if i == 0 { ACTIVE } else { STANDBY };
        feed(c, i, links, START.wrapping_add(a as u32), &data[a..b], held)
    }

    #[test]
    fn a_standby_behind_the_active_is_verified_at_the_actives_marks_as_it_passes_them() {
        let data = stream(10_000);
        let mut c = legs();
        let held = Held::default();
        for (a, b) in [(0, 1448), (1448, 2896), (2896, 5000)] {
            assert_eq!(send(&mut c, 0, &data, a, b, &held), Outcome::default());
        }
        // Its own segmentation: checked at the active's marks it passes.
        send(&mut c, 1, &data, 0, 2000, &held);
        assert_eq!(c[1].verified, START.wrapping_add(1448));
        send(&mut c, 1, &data, 2000, 5000, &held);
        assert_eq!(c[1].verified, START.wrapping_add(5000));
        assert_eq!(c[1].state, State::Checking);
        // The marks it passed are forgotten at the active's next advance.
        send(&mut c, 0, &data, 5000, 6000, &held);
        assert_eq!(
            c[0].marks[..usize::from(c[0].n_marks)],
            [Mark {
                at: START.wrapping_add(6000),
                crc: crc32c::crc32c(&data[..6000])
            }]
        );
    }

    #[test]
    fn a_standby_ahead_is_verified_from_its_held_output_up_to_the_actives_end() {
        let data = stream(10_000);
        let mut c = legs();
        let mut held = Held(vec![vec![], vec![]]);
        for (a, b) in [(0, 3000), (3000, 6000)] {
            send(&mut c, 1, &data, a, b, &held);
            held.0[1].push((START.wrapping_add(a as u32), data[a..b].to_vec()));
        }
        assert_eq!(c[1].verified, START);
        send(&mut c, 0, &data, 0, 1448, &held);
        assert_eq!(c[1].verified, START.wrapping_add(1448));
        send(&mut c, 0, &data, 1448, 4000, &held);
        assert_eq!(c[1].verified, START.wrapping_add(4000));
        assert_eq!(c[1].verified_crc, crc32c::crc32c(&data[..4000]));
    }

    #[test]
    fn one_byte_different_anywhere_is_found_by_the_next_check_whichever_leg_is_ahead() {
        let data = stream(6000);
        for flip in [0usize, 1447, 1448, 2999, 5999] {
            let mut other = data.clone();
            other[flip] ^= 0x20;
            for standby_first in [false, true] {
                let mut c = legs();
                let mut held = Held(vec![vec![], vec![]]);
                let mut diverged = 0;
                let standby = |c: &mut Vec<Check>, held: &mut Held, a: usize, b: usize| {
                    let o = send(c, 1, &other, a, b, held);
                    held.0[1].push((START.wrapping_add(a as u32), other[a..b].to_vec()));
                    o.diverged
                };
                if standby_first {
                    diverged |= standby(&mut c, &mut held, 0, 3000);
                    diverged |= standby(&mut c, &mut held, 3000, 6000);
                    diverged |= send(&mut c, 0, &data, 0, 1448, &held).diverged;
                    diverged |= send(&mut c, 0, &data, 1448, 6000, &held).diverged;
                } else {
                    diverged |= send(&mut c, 0, &data, 0, 1448, &held).diverged;
                    diverged |= send(&mut c, 0, &data, 1448, 6000, &held).diverged;
                    diverged |= standby(&mut c, &mut held, 0, 3000);
                    diverged |= standby(&mut c, &mut held, 3000, 6000);
                }
                assert_eq!(diverged, 0b10, "flip {flip}, standby first {standby_first}");
                assert_eq!(c[1].state, State::Diverged);
                let (v, by) = (c[1].verified, c[1].diverged_by);
                let at = START.wrapping_add(flip as u32);
                assert!(v <= at && at < by, "{v:?} <= {at:?} < {by:?}");
                assert_eq!(
                    take_over(&mut c, 0, 1, START.wrapping_add(6000), &held),
                    TakeOver::Refused
                );
            }
        }
    }

    #[test]
    fn segments_out_of_order_are_digested_when_the_gap_fills() {
        let data = stream(6000);
        let mut c = legs();
        let held = Held::default();
        send(&mut c, 0, &data, 0, 1000, &held);
        send(&mut c, 0, &data, 2000, 3000, &held);
        send(&mut c, 0, &data, 3000, 4000, &held);
        assert_eq!(c[0].at, START.wrapping_add(1000));
        send(&mut c, 0, &data, 1000, 2000, &held);
        assert_eq!(c[0].at, START.wrapping_add(4000));
        assert_eq!(c[0].crc, crc32c::crc32c(&data[..4000]));
        send(&mut c, 1, &data, 0, 4000, &held);
        assert_eq!(c[1].verified, START.wrapping_add(4000));
        // A run after one gap is one piece, joined as it grows, whichever side it grows
        // on, and a retransmission cut differently joins it too.
        let data = stream(20_000);
        let mut c = legs();
        send(&mut c, 0, &data, 0, 1000, &held);
        for (a, b) in [(3000, 4000), (2000, 3000), (4000, 5000), (1500, 2500)] {
            assert_eq!(send(&mut c, 0, &data, a, b, &held), Outcome::default());
        }
        assert_eq!(c[0].n_pending, 1);
        send(&mut c, 0, &data, 900, 1600, &held);
        assert_eq!(c[0].at, START.wrapping_add(5000));
        assert_eq!(c[0].crc, crc32c::crc32c(&data[..5000]));
        // More separate gaps than pieces are kept: the standby goes with it.
        let mut c = legs();
        send(&mut c, 0, &data, 0, 1000, &held);
        for k in 1..=PENDING {
            let a = 2000 * k;
            assert_eq!(
                send(&mut c, 0, &data, a, a + 1000, &held),
                Outcome::default()
            );
        }
        let a = 2000 * (PENDING + 1);
        let o = send(&mut c, 0, &data, a, a + 1000, &held);
        assert_eq!(o.lost, 0b11);
        assert_eq!((c[0].state, c[1].state), (State::Lost, State::Lost));
    }

    #[test]
    fn a_standby_whose_held_output_is_gone_before_it_was_checked_is_lost() {
        let data = stream(4000);
        let mut c = legs();
        send(&mut c, 1, &data, 0, 4000, &Held::default());
        let o = send(&mut c, 0, &data, 0, 2000, &Held::default());
        assert_eq!(o.lost, 0b10);
        assert_eq!(
            take_over(&mut c, 0, 1, START.wrapping_add(2000), &Held::default()),
            TakeOver::Refused
        );
    }

    #[test]
    fn at_failover_a_standby_behind_catches_up_and_one_ahead_takes_over_at_once() {
        let data = stream(6000);
        let held = Held::default();
        let mut c = legs();
        send(&mut c, 0, &data, 0, 4000, &held);
        send(&mut c, 1, &data, 0, 1000, &held);
        let client_has = START.wrapping_add(4000);
        assert_eq!(
            take_over(&mut c, 0, 1, client_has, &held),
            TakeOver::CatchUp(client_has)
        );
        // Now active, checked against the dead one until it passes what the client has.
        let catch_up = Links {
            reference: Some(0),
            checked: 0,
        };
        feed(
            &mut c,
            1,
            catch_up,
            START.wrapping_add(1000),
            &data[1000..3000],
            &held,
        );
        assert!(c[1].verified < client_has);
        feed(
            &mut c,
            1,
            catch_up,
            START.wrapping_add(3000),
            &data[3000..5000],
            &held,
        );
        assert_eq!(c[1].verified, client_has);
        assert_eq!(
            take_over(&mut c, 0, 1, client_has, &held),
            TakeOver::Verified
        );
        // A different byte in the catch-up: diverged.
        let mut c = legs();
        send(&mut c, 0, &data, 0, 4000, &held);
        let mut other = data.clone();
        other[3500] ^= 1;
        let o = feed(&mut c, 1, catch_up, START, &other[..5000], &held);
        assert_eq!((o.diverged, c[1].state), (0b10, State::Diverged));
    }

    #[test]
    fn marks_past_the_ring_still_cover_every_byte() {
        let data = stream(40_000);
        let mut other = data.clone();
        other[20_000] ^= 4;
        let mut c = legs();
        let held = Held::default();
        for k in 0..20 {
            send(&mut c, 0, &data, k * 2000, (k + 1) * 2000, &held);
        }
        assert_eq!(usize::from(c[0].n_marks), MARKS);
        let o = send(&mut c, 1, &other, 0, 40_000, &held);
        assert_eq!(o.diverged, 0b10, "found at a later mark");
    }

    #[test]
    fn retransmissions_change_nothing() {
        let data = stream(3000);
        let mut c = legs();
        let held = Held::default();
        send(&mut c, 0, &data, 0, 3000, &held);
        let before = c[0];
        send(&mut c, 0, &data, 1000, 2000, &held);
        assert_eq!(c[0], before);
    }

    #[test]
    fn offsets_wrap_past_two_to_the_32() {
        let start = Seq(u32::MAX - 1000);
        let data = stream(3000);
        let mut c = vec![Check::start(start), Check::start(start)];
        let held = Held::default();
        feed(&mut c, 0, ACTIVE, start, &data[..2000], &held);
        feed(&mut c, 1, STANDBY, start, &data[..3000], &held);
        assert_eq!(c[1].verified, start.wrapping_add(2000));
        assert_eq!(c[0].crc, crc32c::crc32c(&data[..2000]));
    }

    proptest::proptest! {
        /// The short-payload CRC loop gives the `crc32c` crate's answer, appended to any
        /// CRC so far, at every length around its word size and its cut-over.
        #[test]
        fn the_short_crc_loop_agrees_with_the_crc32c_crate(
            crc in proptest::num::u32::ANY,
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..SHORT + 20),
        ) {
            proptest::prop_assert_eq!(append(crc, &bytes), crc32c::crc32c_append(crc, &bytes));
        }

        /// Two legs send the same stream (or one with a byte changed), each cut into its
        /// own segments, interleaved at random: equal streams are verified to the end and
        /// never diverge; a changed byte is always found, never verified past.
        #[test]
        fn any_segmentation_and_interleaving_finds_exactly_the_differences(
            len in 1usize..20_000,
            cuts_a in proptest::collection::vec(1usize..3000, 1..40),
            cuts_s in proptest::collection::vec(1usize..3000, 1..40),
            order in proptest::collection::vec(proptest::bool::ANY, 80),
            flip in proptest::option::of(0usize..20_000),
        ) {
            let data = stream(len);
            let mut other = data.clone();
            let flip = flip.filter(|&k| k < len);
            if let Some(k) = flip {
                other[k] ^= 0x80;
            }
            let segments = |cuts: &[usize]| {
                let mut v = Vec::new();
                let mut a = 0;
                for c in cuts.iter().cycle() {
                    if a == len {
                        break;
                    }
                    let b = (a + c).min(len);
                    v.push((a, b));
                    a = b;
                }
                v
            };
            let (sa, ss) = (segments(&cuts_a), segments(&cuts_s));
            let (mut ia, mut is) = (0, 0);
            let mut c = legs();
            let mut held = Held(vec![vec![], vec![]]);
            let mut k = 0;
            while ia < sa.len() || is < ss.len() {
                let active_next = is == ss.len() || (ia < sa.len() && order[k % order.len()]);
                k += 1;
                if active_next {
                    let (a, b) = sa[ia];
                    ia += 1;
                    send(&mut c, 0, &data, a, b, &held);
                } else {
                    let (a, b) = ss[is];
                    is += 1;
                    send(&mut c, 1, &other, a, b, &held);
                    held.0[1].push((START.wrapping_add(a as u32), other[a..b].to_vec()));
                }
                if let Some(f) = flip {
                    proptest::prop_assert!(c[1].verified <= START.wrapping_add(f as u32));
                }
            }
            match flip {
                None => {
                    proptest::prop_assert_eq!(c[1].state, State::Checking);
                    proptest::prop_assert_eq!(c[1].verified, START.wrapping_add(len as u32));
                }
                Some(_) => proptest::prop_assert_eq!(c[1].state, State::Diverged),
            }
        }
    }
}
