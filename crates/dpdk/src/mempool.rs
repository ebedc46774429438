//! Packet buffer pools: [`Mempool`].

use std::ffi::{c_char, c_int, CStr, CString};
use std::ptr::NonNull;

use tandem_dpdk_sys as sys;

use crate::burst::Burst;
use crate::eal::ensure_ready;
use crate::error::{DpdkError, Result, ToResult};
use crate::mbuf::Mbuf;

/// The usual mbuf data room: 2048 bytes of data plus DPDK's 128-byte headroom
/// (`RTE_MBUF_DEFAULT_BUF_SIZE`), enough for a 1500-byte MTU frame in one segment.
pub const DEFAULT_DATA_ROOM: u16 = sys::TANDEM_RTE_MBUF_DEFAULT_BUF_SIZE as u16;

/// Bytes reserved in front of the data of every mbuf (`RTE_PKTMBUF_HEADROOM`).
pub const HEADROOM: u16 = sys::TANDEM_RTE_PKTMBUF_HEADROOM as u16;

/// A pool of packet buffers (`rte_mempool` created by `rte_pktmbuf_pool_create`).
///
/// A `Mempool` is a copyable handle: the pool lives until the process exits and is never
/// freed, since freeing it while an mbuf from it is still in flight (in a ring, a NIC
/// queue, another lcore) would be a use after free. Create pools once at startup, sized
/// for every queue's descriptors plus bursts in flight plus per-lcore caches.
///
/// `Send` and `Sync`: allocation and free are safe from any thread (the pool's ring is
/// multi-producer/multi-consumer; each lcore has its own cache, threads that are not
/// lcores bypass it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mempool {
    /// Valid for the rest of the process.
    ptr: NonNull<sys::rte_mempool>,
}

// SAFETY: rte_mempool get/put are thread-safe (see the type's docs); the handle itself
// is a pointer to a pool that is never freed.
unsafe impl Send for Mempool {}
// SAFETY: as above; no method needs exclusive access.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// Creates a pool of `n` packet buffers named `name` (unique in the process), with a
    /// per-lcore cache of `cache` buffers (0, or at most 512 and `n / 1.5`), each with
    /// `data_room` bytes of buffer including the [`HEADROOM`] (see
    /// [`DEFAULT_DATA_ROOM`]), in the memory of NUMA socket `socket` (`None`: any).
    ///
    /// `n` is best one less than a power of two (the pool's ring is a power of two).
    pub fn new_pktmbuf(
        name: &str,
        n: u32,
        cache: u32,
        data_room: u16,
        socket: Option<u32>,
    ) -> Result<Mempool> {
        const CALL: &str = "rte_pktmbuf_pool_create";
        ensure_ready(CALL)?;
        let cname = c_name(CALL, name)?;
        let socket = socket.map_or(sys::SOCKET_ID_ANY, |s| s as c_int);
        // SAFETY: cname is a valid C string for the call; DPDK copies it.
        let ptr =
            unsafe { sys::rte_pktmbuf_pool_create(cname.as_ptr(), n, cache, 0, data_room, socket) };
        Ok(Mempool {
            ptr: ptr.check(CALL)?,
        })
    }

    /// Finds a pool created earlier, in this process, by name.
    pub fn lookup(name: &str) -> Result<Mempool> {
        const CALL: &str = "rte_mempool_lookup";
        ensure_ready(CALL)?;
        let cname = c_name(CALL, name)?;
        // SAFETY: cname is a valid C string; returns NULL with rte_errno if not found.
        let ptr = unsafe { sys::rte_mempool_lookup(cname.as_ptr()) };
        Ok(Mempool {
            ptr: ptr.check(CALL)?,
        })
    }

    /// The raw pointer (for DPDK calls this crate does not wrap).
    pub fn as_ptr(&self) -> *mut sys::rte_mempool {
        self.ptr.as_ptr()
    }

    /// The pool's name.
    pub fn name(&self) -> String {
        let p = self.ptr.as_ptr();
        // SAFETY: the pool is valid and its name field, never written after creation, is
        // a NUL-terminated array.
        unsafe { CStr::from_ptr(std::ptr::addr_of!((*p).name).cast::<c_char>()) }
            .to_string_lossy()
            .into_owned()
    }

    /// Buffers currently free (in the pool and in the lcore caches).
    pub fn available(&self) -> u32 {
        // SAFETY: a read-only walk over a valid pool.
        unsafe { sys::rte_mempool_avail_count(self.ptr.as_ptr()) }
    }

    /// Buffers currently allocated (in mbufs, rings, NIC queues).
    pub fn in_use(&self) -> u32 {
        // SAFETY: a read-only walk over a valid pool.
        unsafe { sys::rte_mempool_in_use_count(self.ptr.as_ptr()) }
    }

    /// One mbuf, reset and empty (`rte_pktmbuf_alloc`); `None` when the pool is empty.
    #[inline]
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: the pool is valid; the result is a fresh mbuf or NULL.
        let ptr = unsafe { sys::tandem_rte_pktmbuf_alloc(self.ptr.as_ptr()) };
        // SAFETY: a non-null result is a new mbuf that nothing else owns.
        NonNull::new(ptr).map(|ptr| unsafe { Mbuf::from_raw(ptr) })
    }

    /// Appends `n` fresh mbufs to `out` (`rte_pktmbuf_alloc_bulk`): all or none.
    /// Returns `false`, changing nothing, if the pool has fewer than `n` or `out` lacks
    /// the room.
    pub fn alloc_bulk<const N: usize>(&self, out: &mut Burst<Mbuf, N>, n: usize) -> bool {
        if n > out.remaining() {
            return false;
        }
        let Ok(count) = u32::try_from(n) else {
            return false;
        };
        // SAFETY: the spare slots have room for n pointers; on success DPDK wrote n valid
        // mbufs there, which become owned by `out` (Mbuf is a transparent pointer).
        unsafe {
            let dst = out.spare_ptr().cast::<*mut sys::rte_mbuf>();
            if sys::tandem_rte_pktmbuf_alloc_bulk(self.ptr.as_ptr(), dst, count) != 0 {
                return false;
            }
            out.grow(n);
        }
        true
    }
}

/// `name` as a C string, or an `EINVAL` error for `call`.
pub(crate) fn c_name(call: &'static str, name: &str) -> Result<CString> {
    CString::new(name).map_err(|_| {
        DpdkError::usage(
            call,
            libc::EINVAL,
            format!("name {name:?} contains a NUL byte"),
        )
    })
}
