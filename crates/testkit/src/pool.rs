//! Buffer pools for frames that are `Vec<u8>`: the engine's [`VecPool`] (fresh buffers,
//! optionally running dry; it stays in the engine for the runtime's unit tests), and
//! [`Recycler`] (reused buffers, as a mempool hands them out).

use tandem_engine::{BufferPool, PacketBuf};

pub use tandem_engine::VecPool;

/// A mempool stand-in for benchmarks: buffers are recycled, never freed, so that the
/// allocator's cost stays out of the engine's.
#[derive(Debug, Default)]
pub struct Recycler {
    free: Vec<Vec<u8>>,
}

impl Recycler {
    /// An empty buffer, with room for a full-size frame when it is new.
    // Inlined across the crate boundary: the engine's copies call it per packet, and the
    // instruction counts of `perf/callgrind.sh` are measured with it inlined.
    #[inline]
    pub fn get(&mut self) -> Vec<u8> {
        self.free.pop().unwrap_or_else(|| Vec::with_capacity(2048))
    }

    /// Takes `v` back.
    #[inline]
    pub fn put(&mut self, mut v: Vec<u8>) {
        v.clear();
        self.free.push(v);
    }
}

impl BufferPool<Vec<u8>> for Recycler {
    #[inline]
    fn alloc(&mut self, len: usize) -> Option<Vec<u8>> {
        let mut v = self.get();
        v.resize(len, 0);
        Some(v)
    }
    #[inline]
    fn copy(&mut self, src: &Vec<u8>) -> Option<Vec<u8>> {
        let mut v = self.get();
        v.extend_from_slice(src.bytes());
        Some(v)
    }
}
