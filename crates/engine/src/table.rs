//! The per-worker flow table: fixed capacity, open addressing with linear probing,
//! no allocation after construction.
//!
//! Buckets are hashed on the client's address and port only, the same fields the NICs
//! steer on (DESIGN §4), so one hash finds a flow from either direction: client→VIP
//! packets carry them as source, replica→client packets as destination. A bucket holds a
//! hash tag and a slot index; the flow itself lives in a slab. Deletion shifts later
//! entries back (no tombstones), so lookups never degrade with churn.
//!
//! The hash is keyed ([`crate::hash`], a random key per start): linear probing is only as
//! good as the spread of the hash, and with a key nobody outside knows, an attacker who
//! picks the client endpoints cannot pile them into one probe run.

use crate::flow::{Flow, FlowKey};
use crate::hash::{client_hash, HashKey};

#[derive(Clone, Copy, Default)]
struct Bucket {
    /// Upper hash bits | 1; 0 marks an empty bucket.
    tag: u32,
    slot: u32,
}

#[inline]
fn tag_of(hash: u64) -> u32 {
    ((hash >> 32) as u32) | 1
}

/// Slot index of a flow in the table.
pub type FlowIdx = u32;

/// Fixed-capacity flow table.
pub struct FlowTable {
    buckets: Box<[Bucket]>,
    mask: usize,
    flows: Box<[Flow]>,
    in_use: Box<[u64]>,
    free: Vec<FlowIdx>,
    key: HashKey,
}

impl FlowTable {
    /// A table for `capacity` flows (buckets: the next power of two ≥ 2 × capacity),
    /// hashing client endpoints under `key`.
    pub fn new(capacity: usize, key: HashKey) -> FlowTable {
        let capacity = capacity.clamp(1, u32::MAX as usize / 2);
        let nbuckets = (capacity * 2).next_power_of_two();
        FlowTable {
            buckets: huge_slice(nbuckets, Bucket::default),
            mask: nbuckets - 1,
            flows: huge_slice(capacity, Flow::default),
            in_use: vec![0; capacity.div_ceil(64)].into_boxed_slice(),
            free: (0..capacity as FlowIdx).rev().collect(),
            key,
        }
    }

    /// The hash of a client endpoint in this table (and for the owner of its flows).
    #[inline]
    pub fn hash(&self, client_ip: u32, client_port: u16) -> u64 {
        client_hash(&self.key, client_ip, client_port)
    }

    /// The hash of `key`'s client endpoint.
    #[inline]
    pub fn hash_of(&self, key: &FlowKey) -> u64 {
        self.hash(key.client_ip, key.client_port)
    }

    /// Buckets a lookup of `hash` reads before it meets an empty one: the cost of a miss.
    pub fn probe_len(&self, hash: u64) -> usize {
        let mut i = (hash as usize) & self.mask;
        let mut n = 1;
        while self.buckets[i].tag != 0 && n <= self.buckets.len() {
            i = (i + 1) & self.mask;
            n += 1;
        }
        n
    }

    /// Maximum number of flows.
    pub fn capacity(&self) -> usize {
        self.flows.len()
    }

    /// Flows in the table.
    pub fn len(&self) -> usize {
        self.flows.len() - self.free.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of memory the table holds (for the memory-per-flow figure).
    pub fn memory_bytes(&self) -> usize {
        self.buckets.len() * core::mem::size_of::<Bucket>()
            + self.flows.len() * core::mem::size_of::<Flow>()
            + self.in_use.len() * 8
            + self.free.capacity() * core::mem::size_of::<FlowIdx>()
    }

    /// Hints the CPU to fetch the first bucket for `hash` (burst lookups).
    #[inline]
    pub fn prefetch_bucket(&self, hash: u64) {
        prefetch(&self.buckets[(hash as usize) & self.mask]);
    }

    /// Hints the CPU to fetch every cache line of a flow (burst lookups).
    #[inline]
    pub fn prefetch_flow(&self, idx: FlowIdx) {
        if let Some(f) = self.flows.get(idx as usize) {
            let base = (f as *const Flow).cast::<u8>();
            let mut off = 0;
            while off < core::mem::size_of::<Flow>() {
                // Only an address for the hint, never dereferenced.
                prefetch_addr(base.wrapping_add(off));
                off += 64;
            }
        }
    }

    /// The slot of the first bucket in `hash`'s probe run whose tag matches, without
    /// touching any flow: what a burst prefetches before the real lookup.
    #[inline]
    pub fn first_candidate(&self, hash: u64) -> Option<FlowIdx> {
        let tag = tag_of(hash);
        let mut i = (hash as usize) & self.mask;
        loop {
            let b = self.buckets[i];
            if b.tag == 0 {
                return None;
            }
            if b.tag == tag {
                return Some(b.slot);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Finds the first flow in `hash`'s probe sequence that satisfies `matches`.
    #[inline]
    pub fn find(&self, hash: u64, mut matches: impl FnMut(&Flow) -> bool) -> Option<FlowIdx> {
        let tag = tag_of(hash);
        let mut i = (hash as usize) & self.mask;
        loop {
            let b = self.buckets[i];
            if b.tag == 0 {
                return None;
            }
            if b.tag == tag && matches(&self.flows[b.slot as usize]) {
                return Some(b.slot);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Finds a flow by its key, from the client's direction.
    #[inline]
    pub fn find_key(&self, key: &FlowKey) -> Option<FlowIdx> {
        self.find(self.hash_of(key), |f| f.key == *key)
    }

    /// Inserts a fresh flow for `key`; `None` when the table is full. The caller must have
    /// checked that the key is not present.
    pub fn insert(&mut self, key: FlowKey) -> Option<FlowIdx> {
        let slot = self.free.pop()?;
        let hash = self.hash_of(&key);
        let mut i = (hash as usize) & self.mask;
        while self.buckets[i].tag != 0 {
            i = (i + 1) & self.mask;
        }
        self.buckets[i] = Bucket {
            tag: tag_of(hash),
            slot,
        };
        self.flows[slot as usize] = Flow::new(key);
        self.in_use[slot as usize / 64] |= 1 << (slot % 64);
        Some(slot)
    }

    /// Removes the flow in `slot`, shifting later buckets of its probe run back.
    pub fn remove(&mut self, slot: FlowIdx) {
        if !self.is_used(slot) {
            return;
        }
        let hash = self.hash_of(&self.flows[slot as usize].key);
        let mut i = (hash as usize) & self.mask;
        loop {
            let b = self.buckets[i];
            if b.tag == 0 {
                return; // not indexed: cannot happen for a used slot
            }
            if b.slot == slot {
                break;
            }
            i = (i + 1) & self.mask;
        }
        // Backward-shift deletion (Knuth 6.4 algorithm R).
        let mut hole = i;
        let mut j = i;
        loop {
            j = (j + 1) & self.mask;
            let b = self.buckets[j];
            if b.tag == 0 {
                break;
            }
            let home = (self.hash_of(&self.flows[b.slot as usize].key) as usize) & self.mask;
            // Move b into the hole unless its home lies cyclically in (hole, j].
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                self.buckets[hole] = b;
                hole = j;
            }
        }
        self.buckets[hole] = Bucket::default();
        self.in_use[slot as usize / 64] &= !(1 << (slot % 64));
        self.free.push(slot);
    }

    /// Whether `slot` holds a flow.
    #[inline]
    pub fn is_used(&self, slot: FlowIdx) -> bool {
        self.in_use
            .get(slot as usize / 64)
            .is_some_and(|w| w & (1 << (slot % 64)) != 0)
    }

    /// The next used slot at or after `from`, wrapping around once; `None` when empty.
    pub fn next_used(&self, from: FlowIdx) -> Option<FlowIdx> {
        let n = self.flows.len();
        if self.free.len() == n {
            return None;
        }
        let start = (from as usize) % n;
        let mut word = start / 64;
        let mut bits = self.in_use[word] & (!0u64 << (start % 64));
        for _ in 0..=self.in_use.len() {
            if bits != 0 {
                let slot = word * 64 + bits.trailing_zeros() as usize;
                if slot < n {
                    return Some(slot as FlowIdx);
                }
            }
            word = (word + 1) % self.in_use.len();
            bits = self.in_use[word];
        }
        None
    }

    /// The first used slot among the `limit` slots from `from` on (wrapping at the end,
    /// never past `from` again); `None` when they are all free. Reads `limit / 64` words
    /// of the bitmap at most, however sparse the table.
    pub fn next_used_within(&self, from: FlowIdx, limit: usize) -> Option<FlowIdx> {
        let n = self.flows.len();
        if n == 0 || self.free.len() == n {
            return None;
        }
        let mut pos = from as usize % n;
        let mut left = limit.min(n);
        while left > 0 {
            let (word, off) = (pos / 64, pos % 64);
            // The bits of this word inside the window and the table.
            let span = (64 - off).min(left).min(n - pos);
            let mask = if span == 64 {
                !0u64
            } else {
                ((1u64 << span) - 1) << off
            };
            let bits = self.in_use.get(word).copied().unwrap_or(0) & mask;
            if bits != 0 {
                return Some((word * 64 + bits.trailing_zeros() as usize) as FlowIdx);
            }
            left -= span;
            pos += span;
            if pos >= n {
                pos = 0;
            }
        }
        None
    }

    /// The flow in `slot`.
    #[inline]
    pub fn get(&self, slot: FlowIdx) -> &Flow {
        &self.flows[slot as usize]
    }

    /// The flow in `slot`, writable.
    #[inline]
    pub fn get_mut(&mut self, slot: FlowIdx) -> &mut Flow {
        &mut self.flows[slot as usize]
    }
}

/// A slice of `n` values from `f`, in memory the kernel is asked to back with huge pages
/// (transparent huge pages in `madvise` mode, Debian's default) before it is first
/// touched: flows of a large table are reached at random, and with 4 KiB pages nearly
/// every lookup also missed the TLB. A hint only; where refused, ordinary pages serve.
fn huge_slice<T>(n: usize, f: impl FnMut() -> T) -> Box<[T]> {
    let mut v: Vec<T> = Vec::with_capacity(n);
    advise_huge(
        v.as_mut_ptr().cast::<u8>(),
        n.saturating_mul(core::mem::size_of::<T>()),
    );
    v.extend(core::iter::repeat_with(f).take(n));
    v.into_boxed_slice()
}

/// Below this, a table fits the TLB's reach anyway.
const HUGE_HINT_MIN_BYTES: usize = 4 << 20;

#[cfg(target_os = "linux")]
fn advise_huge(p: *mut u8, len: usize) {
    const PAGE: usize = 4096;
    if len < HUGE_HINT_MIN_BYTES {
        return;
    }
    // madvise wants a page-aligned start: the whole pages inside the allocation.
    let start = (p as usize).div_ceil(PAGE) * PAGE;
    let end = (p as usize + len) / PAGE * PAGE;
    if end > start {
        // SAFETY: the range lies inside an allocation this function's caller owns and
        // has not touched yet; MADV_HUGEPAGE changes how it is backed, not its contents.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge(_p: *mut u8, _len: usize) {}

#[inline(always)]
fn prefetch<T>(p: &T) {
    prefetch_addr((p as *const T).cast::<u8>());
}

#[inline(always)]
fn prefetch_addr(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetch is a hint; it never faults, whatever the address.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: HashKey = HashKey::fixed(1, 2);

    fn key(i: u32) -> FlowKey {
        FlowKey {
            client_ip: 0xc612_0000 | (i >> 16),
            client_port: i as u16,
            vip: 0xc612_0064,
            vip_port: 80,
        }
    }

    #[test]
    fn insert_find_remove_with_churn() {
        let mut t = FlowTable::new(1000, KEY);
        let mut live = std::collections::HashMap::new();
        for i in 0..1000u32 {
            live.insert(i, t.insert(key(i)).expect("room"));
        }
        assert!(t.insert(key(5000)).is_none(), "full table refuses");
        for i in (0..1000u32).step_by(3) {
            t.remove(live.remove(&i).expect("present"));
        }
        for i in 0..1000u32 {
            assert_eq!(t.find_key(&key(i)), live.get(&i).copied(), "key {i}");
        }
        for i in 2000..2333u32 {
            live.insert(i, t.insert(key(i)).expect("room after removals"));
        }
        for (i, slot) in &live {
            assert_eq!(t.find_key(&key(*i)), Some(*slot));
        }
        assert_eq!(t.len(), live.len());
    }

    #[test]
    fn same_client_endpoint_different_vips() {
        let mut t = FlowTable::new(8, KEY);
        let a = key(1);
        let b = FlowKey {
            vip: 0xc612_0065,
            ..a
        };
        let sa = t.insert(a).expect("room");
        let sb = t.insert(b).expect("room");
        assert_eq!(t.find_key(&a), Some(sa));
        assert_eq!(t.find_key(&b), Some(sb));
        t.remove(sa);
        assert_eq!(t.find_key(&a), None);
        assert_eq!(t.find_key(&b), Some(sb));
    }

    #[test]
    fn next_used_walks_and_wraps() {
        let mut t = FlowTable::new(200, KEY);
        assert_eq!(t.next_used(0), None);
        let slots: Vec<_> = (0..5).map(|i| t.insert(key(i)).expect("room")).collect();
        let mut seen = Vec::new();
        let mut at = 0;
        while let Some(s) = t.next_used(at) {
            if seen.contains(&s) {
                break;
            }
            seen.push(s);
            at = s + 1;
        }
        seen.sort_unstable();
        let mut want = slots.clone();
        want.sort_unstable();
        assert_eq!(seen, want);
    }

    #[test]
    fn next_used_within_looks_only_inside_its_window() {
        let mut t = FlowTable::new(1000, KEY);
        assert_eq!(t.next_used_within(0, 1000), None);
        let slots: Vec<FlowIdx> = (0..3).map(|i| t.insert(key(i)).expect("room")).collect();
        // A brute-force answer for every start and window length.
        let used = |s: FlowIdx| slots.contains(&s);
        let n = t.capacity();
        for from in [0usize, 1, 63, 64, 65, 500, 998, 999] {
            for limit in [1usize, 2, 63, 64, 65, 130, 999, 1000, 5000] {
                let want = (0..limit.min(n))
                    .map(|k| ((from + k) % n) as FlowIdx)
                    .find(|&s| used(s));
                assert_eq!(
                    t.next_used_within(from as FlowIdx, limit),
                    want,
                    "from {from} limit {limit}"
                );
            }
        }
    }

    /// The table's hash before it was keyed: a fixed, invertible mix (splitmix64's
    /// finaliser) of the client endpoint, known to anyone who reads the code.
    fn unkeyed_hash(ip: u32, port: u16) -> u64 {
        let x = (u64::from(ip) << 16) | u64::from(port);
        let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    #[test]
    fn endpoints_brute_forced_to_collide_under_the_old_hash_spread_under_the_keyed_one() {
        // What a SYN flood from spoofed sources can do against a known hash: search the
        // lab's client range for endpoints whose home bucket is the same.
        const FLOWS: usize = 4096;
        const COLLIDING: usize = 1500;
        let mut t = FlowTable::new(FLOWS, HashKey::random().expect("getrandom"));
        let mask = t.mask as u64;
        let mut found = Vec::with_capacity(COLLIDING);
        'search: for ip in 0xc612_0000u32..0xc614_0000 {
            for port in (1024u16..=65535).step_by(7) {
                if unkeyed_hash(ip, port) & mask == 0x2a {
                    found.push((ip, port));
                    if found.len() == COLLIDING {
                        break 'search;
                    }
                }
            }
        }
        assert_eq!(found.len(), COLLIDING, "the search found its endpoints");
        // Under the old hash they all have one home: one probe run of every one of them,
        // and a lookup that misses walks it all.
        let old_run = found
            .iter()
            .filter(|(ip, port)| unkeyed_hash(*ip, *port) & mask == 0x2a)
            .count();
        assert_eq!(old_run, COLLIDING);
        for (i, &(ip, port)) in found.iter().enumerate() {
            let k = FlowKey {
                client_ip: ip,
                client_port: port,
                vip: 0xc612_0064,
                vip_port: 80,
            };
            assert!(t.insert(k).is_some(), "flow {i} fits");
        }
        // Under the keyed hash the probe runs stay short, for these and for a miss.
        let longest = found
            .iter()
            .map(|&(ip, port)| t.probe_len(t.hash(ip, port)))
            .max()
            .unwrap_or(0);
        assert!(
            longest <= 32,
            "longest probe {longest} buckets for {COLLIDING} flows in {} buckets",
            t.mask + 1
        );
        let miss = t.probe_len(t.hash(0xc612_0001, 1));
        assert!(miss <= 32, "a miss reads {miss} buckets");
    }
}
