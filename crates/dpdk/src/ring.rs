//! Typed lock-free rings between lcores (`rte_ring`): mbufs handed to the worker that
//! owns their flow, packets for the control core, boxed control messages.
//!
//! [`spsc`] makes a single-producer single-consumer ring (the fast case, one writer and
//! one reader lcore), [`mpsc`] one that several producers share. The two ends are
//! separate handles: each is `Send` (moved to its lcore) but not `Sync`, and the single
//! producer and the consumer are not `Clone`, so the ring's SP/SC flags are never
//! violated. The ring is freed, and the items still in it dropped, when the last end is
//! dropped.

use std::ffi::{c_void, CString};
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::Arc;

use tandem_dpdk_sys as sys;

use crate::burst::Burst;
use crate::eal::ensure_ready;
use crate::error::{Result, ToResult};
use crate::mbuf::Mbuf;
use crate::mempool::c_name;

/// Something that travels through a ring as one pointer.
///
/// Implemented for [`Mbuf`] and `Box<T>`; for a message type, box it.
pub trait RingItem: Send + Sized {
    /// Gives up ownership as a non-null pointer.
    fn into_ptr(self) -> NonNull<c_void>;

    /// Rebuilds the item.
    ///
    /// # Safety
    ///
    /// `ptr` came from [`into_ptr`](Self::into_ptr) of the same type, and is rebuilt
    /// once.
    unsafe fn from_ptr(ptr: NonNull<c_void>) -> Self;
}

impl RingItem for Mbuf {
    fn into_ptr(self) -> NonNull<c_void> {
        self.into_raw().cast()
    }

    unsafe fn from_ptr(ptr: NonNull<c_void>) -> Self {
        // SAFETY: the caller guarantees ptr came from Mbuf::into_ptr and is rebuilt once.
        unsafe { Mbuf::from_raw(ptr.cast()) }
    }
}

impl<T: Send> RingItem for Box<T> {
    fn into_ptr(self) -> NonNull<c_void> {
        // SAFETY: Box::into_raw never returns NULL.
        unsafe { NonNull::new_unchecked(Box::into_raw(self)) }.cast()
    }

    unsafe fn from_ptr(ptr: NonNull<c_void>) -> Self {
        // SAFETY: the caller guarantees ptr came from Box::<T>::into_ptr, once.
        unsafe { Box::from_raw(ptr.as_ptr().cast::<T>()) }
    }
}

/// The ring shared by its ends; frees it when the last end goes.
struct Shared<T: RingItem> {
    ring: NonNull<sys::rte_ring>,
    _items: PhantomData<T>,
}

// SAFETY: the ring holds T values (which are Send) as pointers; rte_ring is built for
// concurrent use by one producer and one consumer thread (or several, with MP/MC flags),
// and the end handles enforce who may call what.
unsafe impl<T: RingItem> Send for Shared<T> {}
// SAFETY: as above: Shared itself exposes nothing but the pointer to its ends.
unsafe impl<T: RingItem> Sync for Shared<T> {}

impl<T: RingItem> Shared<T> {
    /// Creates the ring, `RING_F_EXACT_SZ` so that it holds exactly `capacity` items.
    fn create(name: &str, capacity: u32, socket: Option<u32>, flags: u32) -> Result<Self> {
        const CALL: &str = "rte_ring_create";
        ensure_ready(CALL)?;
        let cname: CString = c_name(CALL, name)?;
        let socket = socket.map_or(sys::SOCKET_ID_ANY, |s| s as i32);
        // SAFETY: cname is a valid C string (copied by DPDK); returns NULL with rte_errno
        // on failure (EEXIST for a name in use, EINVAL for a bad size).
        let ring = unsafe {
            sys::rte_ring_create(
                cname.as_ptr(),
                capacity,
                socket,
                flags | sys::RING_F_EXACT_SZ,
            )
        };
        Ok(Shared {
            ring: ring.check(CALL)?,
            _items: PhantomData,
        })
    }

    /// Moves items from the front of `items` into the ring; returns how many.
    fn enqueue_burst<const N: usize>(&self, items: &mut Burst<T, N>) -> usize {
        let len = items.len();
        let mut ptrs = [std::ptr::null_mut::<c_void>(); N];
        let src = items.as_mut_ptr();
        // SAFETY: counts no items while they are moved out, so that a panicking
        // into_ptr leaks them instead of dropping them twice.
        unsafe { items.set_len(0) };
        for (i, slot) in ptrs.iter_mut().enumerate().take(len) {
            // SAFETY: item i is initialised; it is moved out here and either enqueued or
            // written back below.
            *slot = unsafe { src.add(i).read() }.into_ptr().as_ptr();
        }
        // SAFETY: ptrs holds len valid item pointers; the caller holds the producer end.
        let n = unsafe {
            sys::tandem_rte_ring_enqueue_burst(
                self.ring.as_ptr(),
                ptrs.as_ptr(),
                len as u32,
                std::ptr::null_mut(),
            )
        } as usize;
        for (i, &p) in ptrs.iter().enumerate().take(len).skip(n) {
            // SAFETY: the refused pointers came from into_ptr above and are rebuilt once,
            // into the slots they were read from.
            unsafe { src.add(i).write(T::from_ptr(NonNull::new_unchecked(p))) };
        }
        // SAFETY: slots 0..len are all initialised again (n of them bitwise copies of
        // enqueued items, which forget_front then discards without dropping).
        unsafe {
            items.set_len(len);
            items.forget_front(n);
        }
        n
    }

    /// Moves items from the ring to the end of `out`; returns how many.
    fn dequeue_burst<const N: usize>(&self, out: &mut Burst<T, N>) -> usize {
        let room = out.remaining();
        let mut ptrs = [std::ptr::null_mut::<c_void>(); N];
        // SAFETY: ptrs has room for `room` pointers; the caller holds the consumer end.
        let n = unsafe {
            sys::tandem_rte_ring_dequeue_burst(
                self.ring.as_ptr(),
                ptrs.as_mut_ptr(),
                room as u32,
                std::ptr::null_mut(),
            )
        } as usize;
        let dst = out.spare_ptr();
        for (i, &p) in ptrs.iter().enumerate().take(n) {
            // SAFETY: every dequeued pointer was enqueued from into_ptr of a T and leaves
            // the ring once; slot i of the spare room is free.
            unsafe { dst.add(i).write(T::from_ptr(NonNull::new_unchecked(p))) };
        }
        // SAFETY: the n slots after the current items were written above.
        unsafe { out.grow(n) };
        n
    }

    /// Items in the ring now.
    fn len(&self) -> usize {
        // SAFETY: reads the ring's indices.
        unsafe { sys::tandem_rte_ring_count(self.ring.as_ptr()) as usize }
    }

    /// The number of items the ring holds when full.
    fn capacity(&self) -> usize {
        // SAFETY: reads the ring's header.
        unsafe { sys::tandem_rte_ring_get_capacity(self.ring.as_ptr()) as usize }
    }
}

impl<T: RingItem> Drop for Shared<T> {
    fn drop(&mut self) {
        // The last end is gone: no other thread uses the ring, so draining it here does
        // not break its single-consumer rule.
        let mut rest: Burst<T, 32> = Burst::new();
        while self.dequeue_burst(&mut rest) > 0 {
            rest.clear();
        }
        // SAFETY: nothing refers to the ring any more.
        unsafe { sys::rte_ring_free(self.ring.as_ptr()) }
    }
}

/// The producer end of a single-producer ring: only one exists (not `Clone`, not
/// `Sync`).
pub struct Producer<T: RingItem> {
    shared: Arc<Shared<T>>,
    _not_sync: PhantomData<std::cell::Cell<()>>,
}

/// A producer end of a multi-producer ring: clone it once per producing lcore.
pub struct MultiProducer<T: RingItem> {
    shared: Arc<Shared<T>>,
    _not_sync: PhantomData<std::cell::Cell<()>>,
}

/// The consumer end of a ring: only one exists (not `Clone`, not `Sync`).
pub struct Consumer<T: RingItem> {
    shared: Arc<Shared<T>>,
    _not_sync: PhantomData<std::cell::Cell<()>>,
}

/// Creates a single-producer single-consumer ring named `name` (unique in the
/// process) holding up to `capacity` items, in NUMA socket `socket`'s memory (`None`:
/// any).
pub fn spsc<T: RingItem>(
    name: &str,
    capacity: u32,
    socket: Option<u32>,
) -> Result<(Producer<T>, Consumer<T>)> {
    let shared = Arc::new(Shared::create(
        name,
        capacity,
        socket,
        sys::RING_F_SP_ENQ | sys::RING_F_SC_DEQ,
    )?);
    Ok((
        Producer {
            shared: shared.clone(),
            _not_sync: PhantomData,
        },
        Consumer {
            shared,
            _not_sync: PhantomData,
        },
    ))
}

/// Creates a multi-producer single-consumer ring, as [`spsc`] otherwise.
pub fn mpsc<T: RingItem>(
    name: &str,
    capacity: u32,
    socket: Option<u32>,
) -> Result<(MultiProducer<T>, Consumer<T>)> {
    let shared = Arc::new(Shared::create(name, capacity, socket, sys::RING_F_SC_DEQ)?);
    Ok((
        MultiProducer {
            shared: shared.clone(),
            _not_sync: PhantomData,
        },
        Consumer {
            shared,
            _not_sync: PhantomData,
        },
    ))
}

/// The enqueue side, same for both producer kinds.
macro_rules! producer_methods {
    ($ty:ident) => {
        impl<T: RingItem> $ty<T> {
            /// Moves items from the front of `items` into the ring, as many as fit;
            /// the rest stay in `items`. Returns how many went.
            #[inline]
            pub fn enqueue_burst<const N: usize>(&mut self, items: &mut Burst<T, N>) -> usize {
                self.shared.enqueue_burst(items)
            }

            /// Enqueues one item, or gives it back if the ring is full.
            pub fn enqueue(&mut self, item: T) -> std::result::Result<(), T> {
                let mut one: Burst<T, 1> = Burst::new();
                // A new burst has room for one.
                let _ = one.push(item);
                if self.shared.enqueue_burst(&mut one) == 1 {
                    Ok(())
                } else {
                    one.pop().map_or(Ok(()), Err)
                }
            }

            /// Items in the ring now.
            pub fn len(&self) -> usize {
                self.shared.len()
            }

            /// Whether the ring is empty now.
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }

            /// The number of items the ring holds when full.
            pub fn capacity(&self) -> usize {
                self.shared.capacity()
            }
        }
    };
}

producer_methods!(Producer);
producer_methods!(MultiProducer);

impl<T: RingItem> Clone for MultiProducer<T> {
    fn clone(&self) -> Self {
        MultiProducer {
            shared: self.shared.clone(),
            _not_sync: PhantomData,
        }
    }
}

impl<T: RingItem> Consumer<T> {
    /// Moves items from the ring to the end of `out`, as many as are there and fit.
    /// Returns how many came.
    #[inline]
    pub fn dequeue_burst<const N: usize>(&mut self, out: &mut Burst<T, N>) -> usize {
        self.shared.dequeue_burst(out)
    }

    /// Dequeues one item, if any.
    pub fn dequeue(&mut self) -> Option<T> {
        let mut one: Burst<T, 1> = Burst::new();
        self.shared.dequeue_burst(&mut one);
        one.pop()
    }

    /// Items in the ring now.
    pub fn len(&self) -> usize {
        self.shared.len()
    }

    /// Whether the ring is empty now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of items the ring holds when full.
    pub fn capacity(&self) -> usize {
        self.shared.capacity()
    }
}
