//! Packet buffers: [`Mbuf`], an owned handle to one `rte_mbuf`.

use std::ffi::c_void;
use std::ptr::{addr_of_mut, NonNull};
use std::sync::atomic::{AtomicU16, Ordering};

use tandem_dpdk_sys as sys;

use crate::mempool::Mempool;

/// `ol_flags` bits a worker sets (with [`Mbuf::set_tx_offload`]) to have the port compute
/// checksums on transmit. Valid only on a port configured with
/// [`PortConfig::tx_checksum_offload`](crate::PortConfig::tx_checksum_offload) whose
/// [`PortSetup::tx_offloads`](crate::PortSetup::tx_offloads) include them.
pub mod tx_offload {
    use tandem_dpdk_sys as sys;

    /// The packet is IPv4 (`RTE_MBUF_F_TX_IPV4`); goes with the checksum flags.
    pub const IPV4: u64 = sys::RTE_MBUF_F_TX_IPV4;
    /// Compute the IPv4 header checksum (`RTE_MBUF_F_TX_IP_CKSUM`).
    pub const IP_CKSUM: u64 = sys::RTE_MBUF_F_TX_IP_CKSUM;
    /// Compute the TCP checksum (`RTE_MBUF_F_TX_TCP_CKSUM`). The TCP checksum field must
    /// hold the pseudo-header checksum (RFC 9293 §3.1), or run
    /// [`TxQueue::prepare`](crate::TxQueue::prepare) first.
    pub const TCP_CKSUM: u64 = sys::RTE_MBUF_F_TX_TCP_CKSUM;
    /// Compute the UDP checksum (`RTE_MBUF_F_TX_UDP_CKSUM`), same rule as TCP.
    pub const UDP_CKSUM: u64 = sys::RTE_MBUF_F_TX_UDP_CKSUM;
}

/// `ol_flags` bit: the port put an RSS hash in the mbuf.
const RX_RSS_HASH: u64 = sys::RTE_MBUF_F_RX_RSS_HASH as u64;

/// An owned packet buffer (`rte_mbuf`), freed back to its mempool on drop.
///
/// [`data`](Self::data) and [`data_mut`](Self::data_mut) cover the first segment only.
/// Tandem receives into mbufs big enough for a frame, so its packets are single-segment;
/// a worker that meets a chained mbuf ([`is_contiguous`](Self::is_contiguous) false)
/// linearises it ([`linearize`](Self::linearize)) or drops it.
///
/// # Shared data
///
/// [`clone_indirect`](Self::clone_indirect) makes a second mbuf that shares this one's
/// data buffer (DPDK's indirect mbuf, for sending one packet twice without a copy).
/// Shared data must not be written: every method that writes packet bytes checks
/// [`is_writable`](Self::is_writable) (a direct mbuf whose buffer has no other user) and
/// refuses otherwise. Metadata (offsets, lengths) is per mbuf and always adjustable.
///
/// # Threads
///
/// `Mbuf` is `Send`: handing a packet to another lcore (over a ring, or to a tx queue
/// served elsewhere) is how DPDK works, and freeing it from any thread is supported by
/// the mempool. It is not `Sync`: [`clone_indirect`](Self::clone_indirect) takes `&self`
/// but updates the buffer's reference count, which DPDK does without atomics while the
/// count is 1; two threads cloning through `&Mbuf` at once would race.
#[repr(transparent)]
#[derive(Debug)]
pub struct Mbuf {
    /// Owned: no other `Mbuf` holds this pointer. `repr(transparent)` makes an array of
    /// `Mbuf` an array of `struct rte_mbuf *` for the burst functions.
    ptr: NonNull<sys::rte_mbuf>,
}

// SAFETY: an Mbuf is the sole owner of its rte_mbuf; DPDK mbufs may be used and freed on
// any thread (the mempool is multi-producer/multi-consumer). See the type's docs for why
// it is not Sync.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Takes ownership of a raw mbuf.
    ///
    /// # Safety
    ///
    /// `ptr` points to a valid, allocated `rte_mbuf` that nothing else owns or frees
    /// (for instance one returned by [`into_raw`](Self::into_raw) or by a DPDK call that
    /// hands mbufs over).
    pub unsafe fn from_raw(ptr: NonNull<sys::rte_mbuf>) -> Mbuf {
        Mbuf { ptr }
    }

    /// Gives up ownership; the caller must free the mbuf (or rebuild it with
    /// [`from_raw`](Self::from_raw)).
    pub fn into_raw(self) -> NonNull<sys::rte_mbuf> {
        let ptr = self.ptr;
        std::mem::forget(self);
        ptr
    }

    /// The raw pointer, still owned by `self` (for DPDK calls this crate does not wrap).
    pub fn as_ptr(&self) -> *mut sys::rte_mbuf {
        self.ptr.as_ptr()
    }

    /// Copies `src` into a new mbuf from `pool` (`rte_pktmbuf_copy`: allocation plus
    /// memcpy of all segments and the metadata; chained only if the data does not fit one
    /// mbuf of `pool`). The copy is direct and writable. `None` when `pool` is empty.
    pub fn copy_from(pool: &Mempool, src: &Mbuf) -> Option<Mbuf> {
        // SAFETY: src is a valid mbuf, only read; the pool pointer is valid for the
        // process. The result is a new mbuf we own, or NULL.
        let ptr = unsafe { sys::rte_pktmbuf_copy(src.ptr.as_ptr(), pool.as_ptr(), 0, u32::MAX) };
        // SAFETY: a non-null result is a fresh mbuf that nothing else owns.
        NonNull::new(ptr).map(|ptr| unsafe { Mbuf::from_raw(ptr) })
    }

    /// A new mbuf from `pool` that shares this one's data (`rte_pktmbuf_clone`: an
    /// indirect mbuf, no copy). Neither is writable while both exist (see the type's
    /// docs). `None` when `pool` is empty.
    pub fn clone_indirect(&self, pool: &Mempool) -> Option<Mbuf> {
        // SAFETY: self is a valid mbuf; rte_pktmbuf_clone only raises its buffer's
        // reference count, which no other thread can be doing through this handle
        // (Mbuf is not Sync). The result is a new mbuf we own, or NULL.
        let ptr = unsafe { sys::rte_pktmbuf_clone(self.ptr.as_ptr(), pool.as_ptr()) };
        // SAFETY: a non-null result is a fresh mbuf that nothing else owns.
        NonNull::new(ptr).map(|ptr| unsafe { Mbuf::from_raw(ptr) })
    }

    /// The first segment's bytes.
    #[inline]
    pub fn data(&self) -> &[u8] {
        let m = self.ptr.as_ptr();
        // SAFETY: m is valid; buf_addr + data_off is the start of data_len initialised
        // bytes inside the data buffer, which nobody writes while it is shared, and which
        // lives as long as this mbuf.
        unsafe {
            let start = (*m).buf_addr.cast::<u8>().add(usize::from((*m).data_off));
            std::slice::from_raw_parts(start, usize::from((*m).data_len))
        }
    }

    /// The first segment's bytes, writable; `None` if the data is shared with another
    /// mbuf (see [`is_writable`](Self::is_writable)).
    #[inline]
    pub fn data_mut(&mut self) -> Option<&mut [u8]> {
        if !self.is_writable() {
            return None;
        }
        let m = self.ptr.as_ptr();
        // SAFETY: as in data(); the buffer has no other user (checked above) and &mut self
        // excludes other borrows of this mbuf.
        unsafe {
            let start = (*m).buf_addr.cast::<u8>().add(usize::from((*m).data_off));
            Some(std::slice::from_raw_parts_mut(
                start,
                usize::from((*m).data_len),
            ))
        }
    }

    /// Whether the data buffer belongs to this mbuf alone: a direct mbuf (not a clone,
    /// not an external buffer) whose reference count is 1.
    #[inline]
    pub fn is_writable(&self) -> bool {
        let m = self.ptr.as_ptr();
        // RTE_MBUF_DIRECT, read here rather than through the shim: this runs for every
        // frame the engine rewrites, and the call was 1.4 % of a worker at 5.6 Mpps.
        const NOT_DIRECT: u64 = sys::RTE_MBUF_F_INDIRECT | sys::RTE_MBUF_F_EXTERNAL;
        // SAFETY: m is valid; ol_flags is a plain field only this owner writes. The refcnt
        // is read atomically with Acquire, pairing with the release decrement of a clone
        // freed on another thread, so that clone's reads of the data happen before our
        // writes.
        unsafe {
            (*m).ol_flags & NOT_DIRECT == 0
                && AtomicU16::from_ptr(addr_of_mut!((*m).refcnt)).load(Ordering::Acquire) == 1
        }
    }

    /// Length of the first segment's data (what [`data`](Self::data) covers).
    #[inline]
    pub fn len(&self) -> usize {
        // SAFETY: m is valid; a plain read of a field only this owner writes.
        usize::from(unsafe { (*self.ptr.as_ptr()).data_len })
    }

    /// Whether the first segment holds no data.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Length of the whole packet, all segments.
    #[inline]
    pub fn pkt_len(&self) -> u32 {
        // SAFETY: as in len().
        unsafe { (*self.ptr.as_ptr()).pkt_len }
    }

    /// Number of segments in the chain.
    #[inline]
    pub fn nb_segs(&self) -> u16 {
        // SAFETY: as in len().
        unsafe { (*self.ptr.as_ptr()).nb_segs }
    }

    /// Whether the packet is one segment, so that [`data`](Self::data) is all of it.
    #[inline]
    pub fn is_contiguous(&self) -> bool {
        self.nb_segs() == 1
    }

    /// Copies a chained packet into its first segment and frees the others
    /// (`rte_pktmbuf_linearize`). Fails if the first segment lacks the room or the data
    /// is shared; returns `true` on success (or if already contiguous).
    pub fn linearize(&mut self) -> bool {
        if self.is_contiguous() {
            return true;
        }
        if !self.is_writable() {
            return false;
        }
        // SAFETY: m is a valid mbuf we own exclusively with writable data.
        unsafe { sys::tandem_rte_pktmbuf_linearize(self.ptr.as_ptr()) == 0 }
    }

    /// Free bytes before the data in the first segment.
    pub fn headroom(&self) -> u16 {
        // SAFETY: reads fields of a valid mbuf.
        unsafe { sys::tandem_rte_pktmbuf_headroom(self.ptr.as_ptr()) }
    }

    /// Free bytes after the data in the last segment.
    pub fn tailroom(&self) -> u16 {
        // SAFETY: reads fields of a valid mbuf.
        unsafe { sys::tandem_rte_pktmbuf_tailroom(self.ptr.as_ptr()) }
    }

    /// Grows the data by `n` bytes at the end (of the last segment) and returns them to
    /// be written: they hold whatever the buffer held before. `None` if the tailroom is
    /// too small or the data is shared.
    pub fn append(&mut self, n: u16) -> Option<&mut [u8]> {
        if !self.is_writable() {
            return None;
        }
        // SAFETY: a valid mbuf we own with unshared data; returns NULL without change if
        // the room is too small.
        let p = unsafe { sys::tandem_rte_pktmbuf_append(self.ptr.as_ptr(), n) };
        // SAFETY: a non-null result points to n bytes inside our unshared data buffer:
        // memory that DPDK allocated and only ever fills with bytes (C memory, which Rust
        // treats as initialised).
        NonNull::new(p).map(|p| unsafe {
            std::slice::from_raw_parts_mut(p.as_ptr().cast::<u8>(), usize::from(n))
        })
    }

    /// Grows the data by `n` bytes at the front and returns them (to write a header).
    /// `None` if the headroom is too small or the data is shared.
    pub fn prepend(&mut self, n: u16) -> Option<&mut [u8]> {
        if !self.is_writable() {
            return None;
        }
        // SAFETY: as in append().
        let p = unsafe { sys::tandem_rte_pktmbuf_prepend(self.ptr.as_ptr(), n) };
        // SAFETY: as in append().
        NonNull::new(p).map(|p| unsafe {
            std::slice::from_raw_parts_mut(p.as_ptr().cast::<u8>(), usize::from(n))
        })
    }

    /// Removes `n` bytes from the front of the first segment (`rte_pktmbuf_adj`).
    /// Returns `false`, changing nothing, if the segment is shorter than `n`.
    pub fn adj(&mut self, n: u16) -> bool {
        // SAFETY: moves this mbuf's own data offset; fails without change if too long.
        !unsafe { sys::tandem_rte_pktmbuf_adj(self.ptr.as_ptr(), n) }.is_null()
    }

    /// Removes `n` bytes from the end of the last segment (`rte_pktmbuf_trim`).
    /// Returns `false`, changing nothing, if the segment is shorter than `n`.
    pub fn trim(&mut self, n: u16) -> bool {
        // SAFETY: shortens this mbuf's own lengths; fails without change if too long.
        unsafe { sys::tandem_rte_pktmbuf_trim(self.ptr.as_ptr(), n) == 0 }
    }

    /// The port the packet was received on (as the driver set it).
    #[inline]
    pub fn port(&self) -> u16 {
        // SAFETY: as in len().
        unsafe { (*self.ptr.as_ptr()).port }
    }

    /// The RSS hash the port computed, if it delivered one.
    #[inline]
    pub fn rss_hash(&self) -> Option<u32> {
        let m = self.ptr.as_ptr();
        // SAFETY: reads fields of a valid mbuf that only this owner writes.
        unsafe { ((*m).ol_flags & RX_RSS_HASH != 0).then(|| sys::tandem_rte_mbuf_rss_hash(m)) }
    }

    /// Stores 8 bytes of the application's own in the mbuf's hash field (the RSS hash
    /// is gone afterwards, and [`rss_hash`](Self::rss_hash) says `None`: read it first). Tandem stamps frames it hands to another
    /// worker with their receive time.
    #[inline]
    pub fn set_note(&mut self, note: u64) {
        // SAFETY: writes metadata of a valid mbuf this handle owns.
        unsafe { sys::tandem_rte_mbuf_set_note(self.ptr.as_ptr(), note) }
    }

    /// What [`set_note`](Self::set_note) stored (else whatever the port left there).
    #[inline]
    pub fn note(&self) -> u64 {
        // SAFETY: reads metadata of a valid mbuf.
        unsafe { sys::tandem_rte_mbuf_note(self.ptr.as_ptr()) }
    }

    /// The offload flags (`ol_flags`).
    #[inline]
    pub fn ol_flags(&self) -> u64 {
        // SAFETY: as in len().
        unsafe { (*self.ptr.as_ptr()).ol_flags }
    }

    /// Asks the port to compute checksums on transmit: ORs `flags` (from
    /// [`tx_offload`]) into `ol_flags` and records the header lengths, which are
    /// truncated to DPDK's bitfields (L2 7 bits, L3 9 bits, L4 8 bits). The port writes
    /// the checksums into the packet, so this refuses (returns `false`) when the data is
    /// shared.
    pub fn set_tx_offload(&mut self, flags: u64, l2_len: u8, l3_len: u16, l4_len: u8) -> bool {
        if !self.is_writable() {
            return false;
        }
        // SAFETY: writes metadata of a valid mbuf we own.
        unsafe {
            sys::tandem_rte_mbuf_set_tx_offload(
                self.ptr.as_ptr(),
                flags,
                u16::from(l2_len),
                l3_len,
                u16::from(l4_len),
            );
        }
        true
    }

    /// Starts loading the packet's first cache line (`rte_prefetch0`).
    #[inline]
    pub fn prefetch(&self) {
        let m = self.ptr.as_ptr();
        // SAFETY: computes the data address of a valid mbuf; a prefetch never faults.
        unsafe {
            let start = (*m).buf_addr.cast::<u8>().add(usize::from((*m).data_off));
            sys::tandem_rte_prefetch0(start.cast::<c_void>());
        }
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: we own the mbuf; rte_pktmbuf_free frees the whole chain (or drops one
        // reference of a shared buffer).
        unsafe { sys::tandem_rte_pktmbuf_free(self.ptr.as_ptr()) }
    }
}
