//! Packet buffers as the engine sees them.
//!
//! The engine never copies a buffer behind the caller's back: it keeps one (a held
//! segment), hands it back for transmission, or drops it (which frees it). A copy for a
//! second replica, and every synthesised packet, comes from the caller's [`BufferPool`].
//! Under DPDK the buffer is an mbuf and dropping it returns it to its mempool; in tests it
//! is a `Vec<u8>`.

/// A packet buffer: contiguous frame bytes starting at the Ethernet header.
pub trait PacketBuf {
    /// The frame.
    fn bytes(&self) -> &[u8];
    /// The frame, writable.
    fn bytes_mut(&mut self) -> &mut [u8];
    /// Shortens the frame to `len` bytes (no-op when already shorter).
    fn truncate(&mut self, len: usize);
    /// Removes the first `n` bytes of the frame (an 802.1Q tag, once the MACs have moved
    /// over it). False, and nothing changed, when the frame is shorter.
    fn trim_front(&mut self, n: usize) -> bool;
}

/// Where new buffers come from.
pub trait BufferPool<B: PacketBuf> {
    /// A buffer of exactly `len` bytes (contents unspecified), or `None` when exhausted.
    fn alloc(&mut self, len: usize) -> Option<B>;
    /// A second buffer with the same bytes as `src`, or `None` when exhausted.
    fn copy(&mut self, src: &B) -> Option<B>;
}

impl PacketBuf for Vec<u8> {
    fn bytes(&self) -> &[u8] {
        self
    }
    fn bytes_mut(&mut self) -> &mut [u8] {
        self
    }
    fn truncate(&mut self, len: usize) {
        Vec::truncate(self, len)
    }
    fn trim_front(&mut self, n: usize) -> bool {
        if n > self.len() {
            return false;
        }
        self.drain(..n);
        true
    }
}

/// A heap pool for tests and the simulation, with an optional limit on live allocations
/// to exercise pool exhaustion.
#[derive(Debug, Default)]
pub struct VecPool {
    /// Allocations still allowed; `None` is unlimited.
    pub remaining: Option<usize>,
}

impl VecPool {
    fn take(&mut self) -> bool {
        match &mut self.remaining {
            None => true,
            Some(0) => false,
            Some(n) => {
                *n -= 1;
                true
            }
        }
    }
}

impl BufferPool<Vec<u8>> for VecPool {
    fn alloc(&mut self, len: usize) -> Option<Vec<u8>> {
        self.take().then(|| vec![0; len])
    }
    fn copy(&mut self, src: &Vec<u8>) -> Option<Vec<u8>> {
        self.take().then(|| src.clone())
    }
}
