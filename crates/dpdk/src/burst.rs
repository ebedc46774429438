//! [`Burst`]: a fixed-capacity, allocation-free batch of owned items (mbufs, or boxed
//! messages), the unit of receive, transmit and ring transfers.

use std::fmt;
use std::mem::MaybeUninit;
use std::ops::{Deref, DerefMut};
use std::ptr;

use crate::mbuf::Mbuf;

/// The burst size DPDK applications use by default (l3fwd's `MAX_PKT_BURST`).
pub const BURST_SIZE: usize = 32;

/// Up to `N` owned items in an inline array: an `ArrayVec` for the data path.
///
/// Receive appends to it ([`RxQueue::rx_burst`](crate::RxQueue::rx_burst)), transmit
/// takes from its front and leaves what the port refused
/// ([`TxQueue::tx_burst`](crate::TxQueue::tx_burst)). It dereferences to a slice, and
/// [`drain`](Self::drain) moves the items out one by one. Items left in it are dropped
/// (mbufs freed) when it is cleared or dropped.
///
/// ```no_run
/// use tandem_dpdk::{Burst, RxQueue, TxQueue};
///
/// fn forward(rxq: &mut RxQueue, txq: &mut TxQueue) -> usize {
///     let mut burst: Burst = Burst::new(); // Burst<Mbuf, 32>
///     rxq.rx_burst(&mut burst);
///     let sent = txq.tx_burst(&mut burst);
///     burst.clear(); // free what the port refused
///     sent
/// }
/// ```
pub struct Burst<T = Mbuf, const N: usize = BURST_SIZE> {
    /// Items `0..len` are initialised and owned.
    len: usize,
    slots: [MaybeUninit<T>; N],
}

impl<T, const N: usize> Burst<T, N> {
    /// An empty burst.
    pub const fn new() -> Self {
        Burst {
            len: 0,
            slots: [const { MaybeUninit::uninit() }; N],
        }
    }

    /// The number of items.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no items.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether no more items fit.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.len == N
    }

    /// The maximum number of items, `N`.
    #[inline]
    pub const fn capacity(&self) -> usize {
        N
    }

    /// How many more items fit.
    #[inline]
    pub fn remaining(&self) -> usize {
        N - self.len
    }

    /// Adds `item` at the end, or gives it back if the burst is full.
    #[inline]
    pub fn push(&mut self, item: T) -> Result<(), T> {
        if self.len == N {
            return Err(item);
        }
        self.slots[self.len].write(item);
        self.len += 1;
        Ok(())
    }

    /// Removes and returns the last item.
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        // SAFETY: slot `len` was initialised and is now outside 0..len, so it is read
        // exactly once.
        Some(unsafe { self.slots[self.len].assume_init_read() })
    }

    /// Drops every item (frees the mbufs).
    pub fn clear(&mut self) {
        let len = self.len;
        // Set first: if a drop panics the rest leak instead of being dropped twice.
        self.len = 0;
        // SAFETY: slots 0..len were initialised and are no longer counted.
        unsafe {
            ptr::drop_in_place(ptr::slice_from_raw_parts_mut(
                self.slots.as_mut_ptr().cast::<T>(),
                len,
            ));
        }
    }

    /// Moves every item out, front to back; the burst is empty afterwards (items the
    /// iterator did not yield are dropped with it).
    pub fn drain(&mut self) -> Drain<'_, T, N> {
        let end = self.len;
        self.len = 0;
        Drain {
            burst: self,
            next: 0,
            end,
        }
    }

    /// Removes the first `n` items without dropping them: their ownership has passed
    /// elsewhere. The rest move to the front.
    ///
    /// # Safety
    ///
    /// `n <= len`, and the first `n` items have been moved out (bitwise) by the caller.
    pub(crate) unsafe fn forget_front(&mut self, n: usize) {
        debug_assert!(n <= self.len);
        let rest = self.len - n;
        // SAFETY: n <= len, so both ranges are in bounds; copy handles the overlap. The
        // first n were moved out, so overwriting them drops nothing.
        unsafe {
            let base = self.slots.as_mut_ptr();
            ptr::copy(base.add(n), base, rest);
        }
        self.len = rest;
    }

    /// Pointer to the first slot (initialised up to `len`).
    pub(crate) fn as_mut_ptr(&mut self) -> *mut T {
        self.slots.as_mut_ptr().cast::<T>()
    }

    /// Pointer to the first free slot (room for [`remaining`](Self::remaining) items).
    pub(crate) fn spare_ptr(&mut self) -> *mut T {
        // SAFETY: len <= N, so the pointer is in bounds or one past the end.
        unsafe { self.slots.as_mut_ptr().add(self.len).cast::<T>() }
    }

    /// Sets the number of items counted as initialised.
    ///
    /// # Safety
    ///
    /// `len <= N` and slots `0..len` hold valid, owned values.
    pub(crate) unsafe fn set_len(&mut self, len: usize) {
        debug_assert!(len <= N);
        self.len = len;
    }

    /// Counts `n` more items as initialised.
    ///
    /// # Safety
    ///
    /// `n <= remaining()`, and the `n` slots after the current items hold valid, owned
    /// values.
    pub(crate) unsafe fn grow(&mut self, n: usize) {
        debug_assert!(n <= self.remaining());
        self.len += n;
    }
}

impl<T, const N: usize> Default for Burst<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, const N: usize> Drop for Burst<T, N> {
    fn drop(&mut self) {
        self.clear();
    }
}

impl<T, const N: usize> Deref for Burst<T, N> {
    type Target = [T];
    #[inline]
    fn deref(&self) -> &[T] {
        // SAFETY: slots 0..len are initialised; MaybeUninit<T> has T's layout.
        unsafe { std::slice::from_raw_parts(self.slots.as_ptr().cast::<T>(), self.len) }
    }
}

impl<T, const N: usize> DerefMut for Burst<T, N> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in deref, with exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.slots.as_mut_ptr().cast::<T>(), self.len) }
    }
}

impl<T: fmt::Debug, const N: usize> fmt::Debug for Burst<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a, T, const N: usize> IntoIterator for &'a Burst<T, N> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<T, const N: usize> Extend<T> for Burst<T, N> {
    /// Pushes items until the burst is full; the items that do not fit are dropped.
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        for item in iter {
            if self.push(item).is_err() {
                break;
            }
        }
    }
}

/// The iterator of [`Burst::drain`].
pub struct Drain<'a, T, const N: usize> {
    burst: &'a mut Burst<T, N>,
    /// Slots `next..end` still hold items owned by this iterator.
    next: usize,
    end: usize,
}

impl<T, const N: usize> Iterator for Drain<'_, T, N> {
    type Item = T;
    #[inline]
    fn next(&mut self) -> Option<T> {
        if self.next == self.end {
            return None;
        }
        let i = self.next;
        self.next += 1;
        // SAFETY: slot i is initialised and owned by the iterator (the burst's len was
        // set to 0), and read once since next moved past it.
        Some(unsafe { self.burst.slots[i].assume_init_read() })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.end - self.next;
        (n, Some(n))
    }
}

impl<T, const N: usize> ExactSizeIterator for Drain<'_, T, N> {}

impl<T, const N: usize> Drop for Drain<'_, T, N> {
    fn drop(&mut self) {
        let (start, len) = (self.next, self.end - self.next);
        self.next = self.end;
        // SAFETY: slots start..end are initialised and owned by the iterator, and no
        // longer reachable after this.
        unsafe {
            ptr::drop_in_place(ptr::slice_from_raw_parts_mut(
                self.burst.slots.as_mut_ptr().add(start).cast::<T>(),
                len,
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_pop_drain_and_drop_are_balanced() {
        let counter = std::rc::Rc::new(());
        let mut b: Burst<std::rc::Rc<()>, 4> = Burst::new();
        for _ in 0..4 {
            assert!(b.push(counter.clone()).is_ok());
        }
        assert!(b.is_full());
        assert!(b.push(counter.clone()).is_err());
        assert_eq!(std::rc::Rc::strong_count(&counter), 5);
        drop(b.pop());
        assert_eq!(b.len(), 3);
        let mut drain = b.drain();
        drop(drain.next());
        drop(drain); // drops the other two
        assert!(b.is_empty());
        assert_eq!(std::rc::Rc::strong_count(&counter), 1);
        b.extend(std::iter::repeat_with(|| counter.clone()).take(10));
        assert_eq!(b.len(), 4);
        drop(b);
        assert_eq!(std::rc::Rc::strong_count(&counter), 1);
    }

    #[test]
    fn forget_front_shifts_the_rest() {
        let mut b: Burst<Box<u32>, 8> = Burst::new();
        b.extend((0..5).map(Box::new));
        // Move the first two out as a driver would.
        // SAFETY: two initialised items are read out, then forgotten from the burst.
        let taken: Vec<Box<u32>> =
            unsafe { (0..2).map(|i| b.as_mut_ptr().add(i).read()).collect() };
        // SAFETY: 2 <= len and both were moved out above.
        unsafe { b.forget_front(2) };
        assert_eq!(*taken[1], 1);
        assert_eq!(b.iter().map(|x| **x).collect::<Vec<_>>(), vec![2, 3, 4]);
    }
}
