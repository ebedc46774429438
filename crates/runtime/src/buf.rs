//! The engine's buffer traits over DPDK mbufs: [`MbufBuf`] (a [`PacketBuf`]) and
//! [`MbufPool`] (a [`BufferPool`] over a mempool).
//!
//! The engine needs contiguous, writable frames. Every `MbufBuf` is built through
//! [`MbufBuf::new`], which accepts only single-segment mbufs whose data this handle alone
//! owns (received chained mbufs are linearised first, or dropped and counted by the
//! worker), and the runtime never makes indirect clones; so the frame is always writable.

use tandem_dpdk::{Mbuf, Mempool};
use tandem_engine::{BufferPool, PacketBuf};

/// A single-segment, writable mbuf as the engine sees it.
#[derive(Debug)]
pub struct MbufBuf(Mbuf);

impl MbufBuf {
    /// Wraps `m` if it is one segment (linearising a chain if the first segment has the
    /// room) with unshared data; gives it back otherwise.
    #[inline]
    pub fn new(mut m: Mbuf) -> Result<MbufBuf, Mbuf> {
        if (m.is_contiguous() || m.linearize()) && m.is_writable() {
            Ok(MbufBuf(m))
        } else {
            Err(m)
        }
    }

    /// The mbuf, for transmission.
    #[inline]
    pub fn into_mbuf(self) -> Mbuf {
        self.0
    }

    /// The mbuf, read-only (its port, its length).
    #[inline]
    pub fn mbuf(&self) -> &Mbuf {
        &self.0
    }
}

impl PacketBuf for MbufBuf {
    #[inline]
    fn bytes(&self) -> &[u8] {
        self.0.data()
    }

    #[inline]
    fn bytes_mut(&mut self) -> &mut [u8] {
        // `new` admits only writable mbufs and nothing shares their data afterwards, so
        // the empty fallback is never taken; it keeps this path free of panics.
        self.0.data_mut().unwrap_or(&mut [])
    }

    #[inline]
    fn truncate(&mut self, len: usize) {
        let cur = self.0.len();
        if len < cur {
            // cur - len < cur <= u16::MAX: a segment length is a u16.
            let _ = self.0.trim(u16::try_from(cur - len).unwrap_or(0));
        }
    }

    #[inline]
    fn trim_front(&mut self, n: usize) -> bool {
        // rte_pktmbuf_adj: the data starts later, nothing is copied.
        u16::try_from(n).is_ok_and(|n| self.0.adj(n))
    }
}

/// New buffers for one worker's engine, from a mempool (per-lcore cached).
#[derive(Debug, Clone, Copy)]
pub struct MbufPool {
    pool: Mempool,
    /// Allocations that failed (pool empty or frame too long).
    pub failures: u64,
}

impl MbufPool {
    /// A pool handle over `pool`.
    pub fn new(pool: Mempool) -> MbufPool {
        MbufPool { pool, failures: 0 }
    }

    /// The mempool.
    pub fn mempool(&self) -> Mempool {
        self.pool
    }

    /// An mbuf of `len` bytes (unspecified contents), or `None`.
    #[inline]
    pub fn alloc_mbuf(&mut self, len: usize) -> Option<Mbuf> {
        let got = u16::try_from(len).ok().and_then(|n| {
            let mut m = self.pool.alloc()?;
            m.append(n)?;
            Some(m)
        });
        if got.is_none() {
            self.failures += 1;
        }
        got
    }
}

impl BufferPool<MbufBuf> for MbufPool {
    #[inline]
    fn alloc(&mut self, len: usize) -> Option<MbufBuf> {
        // A fresh mbuf from the pool is direct, single-segment and unshared.
        self.alloc_mbuf(len).and_then(|m| MbufBuf::new(m).ok())
    }

    #[inline]
    fn copy(&mut self, src: &MbufBuf) -> Option<MbufBuf> {
        let bytes = src.bytes();
        let mut dst = self.alloc(bytes.len())?;
        dst.bytes_mut().copy_from_slice(bytes);
        Some(dst)
    }
}
