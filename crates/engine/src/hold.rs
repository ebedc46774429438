//! The hold queue: a standby replica's output, kept (the buffers themselves, not copies)
//! until the client's ack covers it, so that a failover can send it at once (DESIGN §3.6).
//!
//! One pool of slots per worker, allocated at start; each flow leg threads its held
//! segments through the pool as a FIFO list. No allocation on the packet path.

use crate::seq::Seq;

const NIL: u32 = u32::MAX;

struct Slot<B> {
    buf: Option<B>,
    seq: Seq,
    len: u32,
    /// Where its payload is in the frame: start and length (for verification, which
    /// reads a standby's held output; see [`crate::verify`]).
    data: (u32, u32),
    /// A copy went to the client (the active's held output after a failover): it stays
    /// until the client acks it.
    sent: bool,
    next: u32,
}

/// A held segment's place in its pool, valid until the segment leaves the hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeldRef(u32);

/// A leg's FIFO of held segments (indices into the [`HoldPool`]).
#[derive(Clone, Copy, Debug)]
pub struct HoldList {
    head: u32,
    tail: u32,
    /// Payload bytes held.
    pub bytes: u32,
    /// Segments held.
    pub segments: u32,
}

impl Default for HoldList {
    fn default() -> HoldList {
        HoldList {
            head: NIL,
            tail: NIL,
            bytes: 0,
            segments: 0,
        }
    }
}

impl HoldList {
    /// Whether nothing is held.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.head == NIL
    }
}

/// A segment taken out of the hold queue.
pub struct Held<B> {
    /// The frame as the replica sent it.
    pub buf: B,
    /// Its sequence number, in the replica's space.
    pub seq: Seq,
    /// Its payload length (plus one for a FIN).
    pub len: u32,
}

/// Fixed pool of hold slots shared by one worker's flows.
pub struct HoldPool<B> {
    slots: Vec<Slot<B>>,
    free: Vec<u32>,
    bytes: u64,
    /// Lists holding at least one segment.
    holders: usize,
}

impl<B> HoldPool<B> {
    /// A pool of `capacity` slots.
    pub fn new(capacity: usize) -> HoldPool<B> {
        let capacity = capacity.min(NIL as usize - 1);
        HoldPool {
            slots: (0..capacity)
                .map(|_| Slot {
                    buf: None,
                    seq: Seq(0),
                    len: 0,
                    data: (0, 0),
                    sent: false,
                    next: NIL,
                })
                .collect(),
            free: (0..capacity as u32).rev().collect(),
            bytes: 0,
            holders: 0,
        }
    }

    /// Slots in all.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Lists that hold at least one segment.
    #[inline]
    pub fn holders(&self) -> usize {
        self.holders
    }

    /// Bytes held over all lists.
    #[inline]
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Segments held over all lists.
    #[inline]
    pub fn segments(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Whether a slot is free.
    #[inline]
    pub fn has_room(&self) -> bool {
        !self.free.is_empty()
    }

    /// Appends a segment to `list`: the frame, its sequence number and length (payload
    /// and FIN), and where its payload is in the frame (start, length). Gives the buffer
    /// back when no slot is free.
    pub fn push(
        &mut self,
        list: &mut HoldList,
        buf: B,
        seq: Seq,
        len: u32,
        data: (u32, u32),
    ) -> Result<(), B> {
        let Some(i) = self.free.pop() else {
            return Err(buf);
        };
        let s = &mut self.slots[i as usize];
        s.buf = Some(buf);
        s.seq = seq;
        s.len = len;
        s.data = data;
        s.sent = false;
        s.next = NIL;
        if list.tail == NIL {
            self.holders += 1;
            list.head = i;
        } else {
            self.slots[list.tail as usize].next = i;
        }
        list.tail = i;
        list.bytes += len;
        list.segments += 1;
        self.bytes += u64::from(len);
        Ok(())
    }

    /// Sequence number and length of the oldest segment of `list`.
    #[inline]
    pub fn front(&self, list: &HoldList) -> Option<(Seq, u32)> {
        (list.head != NIL).then(|| {
            let s = &self.slots[list.head as usize];
            (s.seq, s.len)
        })
    }

    /// Calls `each` with every segment of `list`, oldest first (the frame, its sequence
    /// number, and where its payload is: start and length), until it returns false.
    pub fn each(&self, list: &HoldList, mut each: impl FnMut(&B, Seq, (u32, u32)) -> bool) {
        let mut i = list.head;
        while i != NIL {
            let s = &self.slots[i as usize];
            if let Some(buf) = &s.buf {
                if !each(buf, s.seq, s.data) {
                    return;
                }
            }
            i = s.next;
        }
    }

    /// The oldest segment of `list` for which `pred(seq, len, sent)` holds: where it is,
    /// its sequence number and length.
    pub fn find(
        &self,
        list: &HoldList,
        mut pred: impl FnMut(Seq, u32, bool) -> bool,
    ) -> Option<(HeldRef, Seq, u32)> {
        let mut i = list.head;
        while i != NIL {
            let s = &self.slots[i as usize];
            if s.buf.is_some() && pred(s.seq, s.len, s.sent) {
                return Some((HeldRef(i), s.seq, s.len));
            }
            i = s.next;
        }
        None
    }

    /// The frame of a held segment.
    pub fn frame(&self, at: HeldRef) -> Option<&B> {
        self.slots.get(at.0 as usize).and_then(|s| s.buf.as_ref())
    }

    /// Marks a held segment as sent to the client (a copy of it).
    pub fn mark_sent(&mut self, at: HeldRef) {
        if let Some(s) = self.slots.get_mut(at.0 as usize) {
            s.sent = true;
        }
    }

    /// Takes the oldest segment of `list`.
    pub fn pop_front(&mut self, list: &mut HoldList) -> Option<Held<B>> {
        if list.head == NIL {
            return None;
        }
        let i = list.head;
        let s = &mut self.slots[i as usize];
        let held = Held {
            buf: s.buf.take()?,
            seq: s.seq,
            len: s.len,
        };
        list.head = s.next;
        if list.head == NIL {
            list.tail = NIL;
            self.holders -= 1;
        }
        list.bytes -= held.len;
        list.segments -= 1;
        self.bytes -= u64::from(held.len);
        self.free.push(i);
        Some(held)
    }

    /// Drops (frees) everything in `list`.
    pub fn clear(&mut self, list: &mut HoldList) {
        while self.pop_front(list).is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_per_list_and_slot_reuse() {
        let mut pool = HoldPool::<u32>::new(3);
        let (mut a, mut b) = (HoldList::default(), HoldList::default());
        pool.push(&mut a, 1, Seq(100), 10, (0, 10)).expect("slot");
        pool.push(&mut b, 2, Seq(500), 5, (0, 5)).expect("slot");
        pool.push(&mut a, 3, Seq(110), 10, (0, 10)).expect("slot");
        assert_eq!(
            pool.push(&mut b, 4, Seq(505), 5, (0, 5)),
            Err(4),
            "pool full"
        );
        assert_eq!((a.bytes, a.segments, pool.bytes()), (20, 2, 25));
        assert_eq!(pool.front(&a), Some((Seq(100), 10)));
        let mut seen = Vec::new();
        pool.each(&a, |buf, seq, _| {
            seen.push((*buf, seq));
            true
        });
        assert_eq!(seen, [(1, Seq(100)), (3, Seq(110))]);
        let h = pool.pop_front(&mut a).expect("held");
        assert_eq!((h.buf, h.seq), (1, Seq(100)));
        pool.push(&mut b, 4, Seq(505), 5, (0, 5))
            .expect("slot freed");
        pool.clear(&mut b);
        assert!(b.is_empty());
        assert_eq!(pool.segments(), 1);
        assert_eq!(pool.pop_front(&mut a).map(|h| h.buf), Some(3));
        assert!(a.is_empty() && pool.bytes() == 0);
    }
}
