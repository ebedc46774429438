//! The keyed hash of a client endpoint (address, port): flow-table buckets and tags, and
//! the owner of a flow on the hand-off path.
//!
//! Keyed, with a key drawn at random at every start: an outsider who chooses client
//! addresses and ports (a spoofed SYN flood does) must not be able to pick endpoints that
//! share a bucket and turn every lookup into a walk of the table. The hash before this one
//! was a fixed, invertible mix: anyone could compute colliding endpoints offline.
//!
//! SipHash-1-3 (Aumasson and Bernstein; the variant Rust's `HashMap` uses) over one
//! 64-bit word, written out for that one word: five rounds of add-rotate-xor, no table and
//! no branch. What depends on the key only (the initial state, and the half of the first
//! round that does not read the message) is computed once, when the key is made: about 75
//! instructions a hash. A burst's frames are hashed four at a time, side by side in vector
//! registers where the CPU has them ([`LaneHasher`]): about 30 instructions a frame with
//! AVX2. Tested against the `siphasher` crate.

/// The 128-bit key of [`client_hash`], kept as the SipHash state it determines.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct HashKey {
    /// SipHash's initial state v0..v3 (the key xored with its constants).
    init: [u64; 4],
    /// v0 and v1 after the first round's first half, which reads neither v2 nor v3 and
    /// so not the message: for a one-word message it is the same for every hash.
    first: [u64; 2],
}

impl HashKey {
    /// A fixed key (tests, and benchmarks that must be repeatable). Never in production:
    /// a known key lets anyone build colliding endpoints.
    pub const fn fixed(k0: u64, k1: u64) -> HashKey {
        let init = [
            k0 ^ 0x736f_6d65_7073_6575,
            k1 ^ 0x646f_7261_6e64_6f6d,
            k0 ^ 0x6c79_6765_6e65_7261,
            k1 ^ 0x7465_6462_7974_6573,
        ];
        // sip_round's first four steps.
        let v0 = init[0].wrapping_add(init[1]);
        let v1 = init[1].rotate_left(13) ^ v0;
        HashKey {
            init,
            first: [v0.rotate_left(32), v1],
        }
    }

    /// A key from the clock and an address of this process: the fallback of
    /// [`EngineConfig::default`](crate::EngineConfig) where the kernel gives no random
    /// bytes (it always does on Linux 3.17 and later); the runtime insists on
    /// [`random`](Self::random).
    pub fn from_clock() -> HashKey {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let here = &t as *const u64 as u64;
        HashKey::fixed(
            siphash13_u64(&HashKey::fixed(t, here), 1),
            siphash13_u64(&HashKey::fixed(here, t), 2),
        )
    }

    /// A key from the kernel's random source (`getrandom(2)`): one per start of the
    /// appliance, shared by its workers so that they agree on who owns a flow.
    ///
    /// # Errors
    ///
    /// The kernel gives no random bytes.
    pub fn random() -> std::io::Result<HashKey> {
        let mut b = [0u8; 16];
        let mut got = 0;
        // Bounded: getrandom returns at most 256 bytes a call, fewer only on a signal.
        for _ in 0..16 {
            if got == b.len() {
                break;
            }
            let rest = &mut b[got..];
            // SAFETY: the pointer and length describe `rest`, writable and ours.
            let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
            match n {
                n if n > 0 => got += n as usize,
                _ => {
                    let e = std::io::Error::last_os_error();
                    if e.kind() != std::io::ErrorKind::Interrupted {
                        return Err(e);
                    }
                }
            }
        }
        if got < b.len() {
            return Err(std::io::Error::other("getrandom: short read"));
        }
        let (lo, hi) = b.split_at(8);
        Ok(HashKey::fixed(
            u64::from_le_bytes(lo.try_into().unwrap_or_default()),
            u64::from_le_bytes(hi.try_into().unwrap_or_default()),
        ))
    }
}

#[inline(always)]
fn sip_round(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13);
    v[1] ^= v[0];
    v[0] = v[0].rotate_left(32);
    sip_round_second_half(v);
}

/// SipRound from its fifth step on (the first four touch only v0 and v1).
#[inline(always)]
fn sip_round_second_half(v: &mut [u64; 4]) {
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16);
    v[3] ^= v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21);
    v[3] ^= v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17);
    v[1] ^= v[2];
    v[2] = v[2].rotate_left(32);
}

/// SipHash-1-3 of the 8 little-endian bytes of `m` under `key`.
#[inline]
pub fn siphash13_u64(key: &HashKey, m: u64) -> u64 {
    // One message block (c = 1): v3 ^= m, then a round whose first half (v0, v1) the
    // key has done already.
    let mut v = [key.first[0], key.first[1], key.init[2], key.init[3] ^ m];
    sip_round_second_half(&mut v);
    v[0] ^= m;
    // The last block: no tail bytes, the length (8) in the top byte.
    let b = 8u64 << 56;
    v[3] ^= b;
    sip_round(&mut v);
    v[0] ^= b;
    // Finalisation (d = 3).
    v[2] ^= 0xff;
    sip_round(&mut v);
    sip_round(&mut v);
    sip_round(&mut v);
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

/// SipHash-1-3 of the little-endian bytes of `words` (8 bytes each) under `key`: the
/// general form of [`siphash13_u64`], for the SYN cookies ([`crate::cookie`]), which
/// authenticate a whole connection's identity and options.
pub fn siphash13_words(key: &HashKey, words: &[u64]) -> u64 {
    let mut v = key.init;
    for &m in words {
        v[3] ^= m;
        sip_round(&mut v);
        v[0] ^= m;
    }
    // The last block: no tail bytes, the length (mod 256) in the top byte.
    let b = ((words.len() as u64 * 8) & 0xff) << 56;
    v[3] ^= b;
    sip_round(&mut v);
    v[0] ^= b;
    v[2] ^= 0xff;
    sip_round(&mut v);
    sip_round(&mut v);
    sip_round(&mut v);
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

/// Hash of a client endpoint (address, port) under `key`.
#[inline]
pub fn client_hash(key: &HashKey, client_ip: u32, client_port: u16) -> u64 {
    siphash13_u64(key, client_word(client_ip, client_port))
}

/// The one word [`client_hash`] hashes for a client endpoint.
#[inline]
pub fn client_word(client_ip: u32, client_port: u16) -> u64 {
    (u64::from(client_ip) << 16) | u64::from(client_port)
}

/// Words [`LaneHasher::hash`] takes at a time: a burst's client endpoints are hashed in
/// groups of this many.
pub const LANES: usize = 4;

/// The way a [`LaneHasher`] computes its hashes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Unit {
    /// One word at a time, [`siphash13_u64`] itself.
    Scalar,
    /// Two words per SSE2 register (every x86_64 CPU has SSE2).
    Sse2,
    /// Four words per AVX2 register.
    Avx2,
}

impl Unit {
    /// Whether this CPU can run `self`.
    pub fn available(self) -> bool {
        match self {
            Unit::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Unit::Sse2 => true,
            #[cfg(target_arch = "x86_64")]
            Unit::Avx2 => std::is_x86_feature_detected!("avx2"),
            #[cfg(not(target_arch = "x86_64"))]
            Unit::Sse2 | Unit::Avx2 => false,
        }
    }

    /// The widest unit this CPU has.
    pub fn best() -> Unit {
        [Unit::Avx2, Unit::Sse2]
            .into_iter()
            .find(|u| u.available())
            .unwrap_or(Unit::Scalar)
    }
}

/// [`siphash13_u64`] of [`LANES`] words at once, the SipHash rounds run side by side in
/// vector registers: the same values as one word at a time, in fewer instructions (the
/// rounds are a chain of dependent steps that a single hash cannot spread out). The
/// unit is chosen once, when the hasher is made.
#[derive(Clone, Copy, Debug)]
pub struct LaneHasher {
    key: HashKey,
    unit: Unit,
}

impl LaneHasher {
    /// A hasher under `key` on the widest unit this CPU has.
    pub fn new(key: HashKey) -> LaneHasher {
        LaneHasher {
            key,
            unit: Unit::best(),
        }
    }

    /// A hasher under `key` on `unit`; `None` where this CPU lacks it.
    pub fn with_unit(key: HashKey, unit: Unit) -> Option<LaneHasher> {
        unit.available().then_some(LaneHasher { key, unit })
    }

    /// The unit it runs on.
    pub fn unit(&self) -> Unit {
        self.unit
    }

    /// `siphash13_u64(key, w)` of every word `w` of `words`.
    #[inline]
    pub fn hash(&self, words: &[u64; LANES]) -> [u64; LANES] {
        match self.unit {
            #[cfg(target_arch = "x86_64")]
            Unit::Avx2 => {
                // SAFETY: a hasher is made on AVX2 only where the CPU has it (`with_unit`
                // and `new` check).
                unsafe { lanes::siphash13_avx2(&self.key, words) }
            }
            #[cfg(target_arch = "x86_64")]
            Unit::Sse2 => {
                // SAFETY: every x86_64 CPU has SSE2.
                unsafe { lanes::siphash13_sse2(&self.key, words) }
            }
            _ => scalar_lanes(&self.key, words),
        }
    }
}

/// [`siphash13_u64`] of each word, one at a time (out of line: inlined four times, the
/// hashes crowded the burst loop's registers).
#[inline(never)]
fn scalar_lanes(key: &HashKey, words: &[u64; LANES]) -> [u64; LANES] {
    words.map(|w| siphash13_u64(key, w))
}

/// The vector forms of [`siphash13_u64`]: the scalar steps, one lane per word. x86_64 has
/// no 64-bit rotate in SSE2 or AVX2: rotations by 32 and 16 are shuffles, the others two
/// shifts and an or.
#[cfg(target_arch = "x86_64")]
mod lanes {
    use super::{HashKey, LANES};
    use core::arch::x86_64::*;

    /// The two 32-bit halves of each 64-bit lane swapped: a rotation by 32.
    const SWAP_HALVES: i32 = 0b10_11_00_01;
    /// The 16-bit words of each 64-bit lane taken as (3, 0, 1, 2): a rotation by 16.
    const WORDS_UP_ONE: i32 = 0b10_01_00_11;
    /// The last block of a one-word message: no tail bytes, the length (8) in the top byte.
    const LAST_BLOCK: i64 = 8 << 56;

    /// One SipRound on two lanes from its fifth step (see `super::sip_round_second_half`).
    #[inline]
    #[target_feature(enable = "sse2")]
    fn half_round_sse2(v: &mut [__m128i; 4]) {
        v[2] = _mm_add_epi64(v[2], v[3]);
        v[3] = _mm_shufflehi_epi16::<WORDS_UP_ONE>(_mm_shufflelo_epi16::<WORDS_UP_ONE>(v[3]));
        v[3] = _mm_xor_si128(v[3], v[2]);
        v[0] = _mm_add_epi64(v[0], v[3]);
        v[3] = _mm_or_si128(_mm_slli_epi64::<21>(v[3]), _mm_srli_epi64::<43>(v[3]));
        v[3] = _mm_xor_si128(v[3], v[0]);
        v[2] = _mm_add_epi64(v[2], v[1]);
        v[1] = _mm_or_si128(_mm_slli_epi64::<17>(v[1]), _mm_srli_epi64::<47>(v[1]));
        v[1] = _mm_xor_si128(v[1], v[2]);
        v[2] = _mm_shuffle_epi32::<SWAP_HALVES>(v[2]);
    }

    /// One SipRound on two lanes.
    #[inline]
    #[target_feature(enable = "sse2")]
    fn round_sse2(v: &mut [__m128i; 4]) {
        v[0] = _mm_add_epi64(v[0], v[1]);
        v[1] = _mm_or_si128(_mm_slli_epi64::<13>(v[1]), _mm_srli_epi64::<51>(v[1]));
        v[1] = _mm_xor_si128(v[1], v[0]);
        v[0] = _mm_shuffle_epi32::<SWAP_HALVES>(v[0]);
        half_round_sse2(v);
    }

    /// SipHash-1-3 of the two words of `m`, as `super::siphash13_u64`.
    #[inline]
    #[target_feature(enable = "sse2")]
    fn siphash13_sse2_pair(key: &HashKey, m: __m128i) -> __m128i {
        let k = |x: u64| _mm_set1_epi64x(x as i64);
        let mut v = [
            k(key.first[0]),
            k(key.first[1]),
            k(key.init[2]),
            _mm_xor_si128(k(key.init[3]), m),
        ];
        half_round_sse2(&mut v);
        v[0] = _mm_xor_si128(v[0], m);
        let b = _mm_set1_epi64x(LAST_BLOCK);
        v[3] = _mm_xor_si128(v[3], b);
        round_sse2(&mut v);
        v[0] = _mm_xor_si128(v[0], b);
        v[2] = _mm_xor_si128(v[2], _mm_set1_epi64x(0xff));
        round_sse2(&mut v);
        round_sse2(&mut v);
        round_sse2(&mut v);
        _mm_xor_si128(_mm_xor_si128(v[0], v[1]), _mm_xor_si128(v[2], v[3]))
    }

    /// `super::siphash13_u64` of each word of `m`, two at a time in SSE2 registers. (A
    /// caller must know the CPU has SSE2: every x86_64 CPU does.)
    #[inline]
    #[target_feature(enable = "sse2")]
    pub(super) fn siphash13_sse2(key: &HashKey, m: &[u64; LANES]) -> [u64; LANES] {
        let lo = siphash13_sse2_pair(key, _mm_set_epi64x(m[1] as i64, m[0] as i64));
        let hi = siphash13_sse2_pair(key, _mm_set_epi64x(m[3] as i64, m[2] as i64));
        let mut out = [0u64; LANES];
        // SAFETY: `out` has room for 32 bytes, the two unaligned 16-byte stores.
        unsafe {
            _mm_storeu_si128(out.as_mut_ptr().cast(), lo);
            _mm_storeu_si128(out.as_mut_ptr().add(2).cast(), hi);
        }
        out
    }

    /// A rotation left by `L` of each 64-bit lane (`R` = 64 - `L`).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn rotl_avx2<const L: i32, const R: i32>(x: __m256i) -> __m256i {
        _mm256_or_si256(_mm256_slli_epi64::<L>(x), _mm256_srli_epi64::<R>(x))
    }

    /// One SipRound on four lanes from its fifth step (see `super::sip_round_second_half`).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn half_round_avx2(v: &mut [__m256i; 4]) {
        // Bytes (6, 7, 0, 1, 2, 3, 4, 5) of each 64-bit lane: a rotation by 16.
        let rot16 = _mm256_setr_epi8(
            6, 7, 0, 1, 2, 3, 4, 5, 14, 15, 8, 9, 10, 11, 12, 13, //
            6, 7, 0, 1, 2, 3, 4, 5, 14, 15, 8, 9, 10, 11, 12, 13,
        );
        v[2] = _mm256_add_epi64(v[2], v[3]);
        v[3] = _mm256_shuffle_epi8(v[3], rot16);
        v[3] = _mm256_xor_si256(v[3], v[2]);
        v[0] = _mm256_add_epi64(v[0], v[3]);
        v[3] = rotl_avx2::<21, 43>(v[3]);
        v[3] = _mm256_xor_si256(v[3], v[0]);
        v[2] = _mm256_add_epi64(v[2], v[1]);
        v[1] = rotl_avx2::<17, 47>(v[1]);
        v[1] = _mm256_xor_si256(v[1], v[2]);
        v[2] = _mm256_shuffle_epi32::<SWAP_HALVES>(v[2]);
    }

    /// One SipRound on four lanes.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn round_avx2(v: &mut [__m256i; 4]) {
        v[0] = _mm256_add_epi64(v[0], v[1]);
        v[1] = rotl_avx2::<13, 51>(v[1]);
        v[1] = _mm256_xor_si256(v[1], v[0]);
        v[0] = _mm256_shuffle_epi32::<SWAP_HALVES>(v[0]);
        half_round_avx2(v);
    }

    /// `super::siphash13_u64` of each word of `m`, four at a time in AVX2 registers. (A
    /// caller must know the CPU has AVX2.)
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) fn siphash13_avx2(key: &HashKey, m: &[u64; LANES]) -> [u64; LANES] {
        let k = |x: u64| _mm256_set1_epi64x(x as i64);
        let m = _mm256_set_epi64x(m[3] as i64, m[2] as i64, m[1] as i64, m[0] as i64);
        let mut v = [
            k(key.first[0]),
            k(key.first[1]),
            k(key.init[2]),
            _mm256_xor_si256(k(key.init[3]), m),
        ];
        half_round_avx2(&mut v);
        v[0] = _mm256_xor_si256(v[0], m);
        let b = _mm256_set1_epi64x(LAST_BLOCK);
        v[3] = _mm256_xor_si256(v[3], b);
        round_avx2(&mut v);
        v[0] = _mm256_xor_si256(v[0], b);
        v[2] = _mm256_xor_si256(v[2], _mm256_set1_epi64x(0xff));
        round_avx2(&mut v);
        round_avx2(&mut v);
        round_avx2(&mut v);
        let h = _mm256_xor_si256(_mm256_xor_si256(v[0], v[1]), _mm256_xor_si256(v[2], v[3]));
        let mut out = [0u64; LANES];
        // SAFETY: `out` has room for the 32 bytes of the unaligned store.
        unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), h) };
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::hash::Hasher;

    #[test]
    fn the_one_word_siphash_is_siphash_1_3() {
        let keys = [
            (0, 0),
            (0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908),
            (u64::MAX, 0x1234_5678_9abc_def0),
        ];
        for (k0, k1) in keys {
            for m in [0u64, 1, 0xc612_0002_9c40, u64::MAX, 0x8000_0000_0000_0001] {
                let mut h = siphasher::sip::SipHasher13::new_with_keys(k0, k1);
                h.write(&m.to_le_bytes());
                assert_eq!(
                    siphash13_u64(&HashKey::fixed(k0, k1), m),
                    h.finish(),
                    "key {k0:#x}/{k1:#x}, m {m:#x}"
                );
            }
        }
    }

    #[test]
    fn the_many_word_siphash_is_siphash_1_3() {
        let key = (0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908);
        let words = [1u64, u64::MAX, 0xc612_0002_9c40, 42, 7];
        for n in 0..=words.len() {
            let mut h = siphasher::sip::SipHasher13::new_with_keys(key.0, key.1);
            for w in &words[..n] {
                h.write(&w.to_le_bytes());
            }
            assert_eq!(
                siphash13_words(&HashKey::fixed(key.0, key.1), &words[..n]),
                h.finish(),
                "{n} words"
            );
        }
    }

    proptest::proptest! {
        /// Every unit this CPU has gives the one-word hash's values, for any key and words.
        #[test]
        fn every_unit_gives_the_scalar_hash(
            k0: u64,
            k1: u64,
            words: [u64; LANES],
        ) {
            let key = HashKey::fixed(k0, k1);
            let want = words.map(|w| siphash13_u64(&key, w));
            for unit in [Unit::Scalar, Unit::Sse2, Unit::Avx2] {
                if let Some(h) = LaneHasher::with_unit(key, unit) {
                    proptest::prop_assert_eq!(h.hash(&words), want, "{:?}", unit);
                }
            }
        }
    }

    #[test]
    fn the_vector_units_are_there_on_x86_64() {
        assert!(Unit::Scalar.available());
        assert_eq!(Unit::Sse2.available(), cfg!(target_arch = "x86_64"));
        let best = LaneHasher::new(HashKey::fixed(1, 2)).unit();
        assert!(best.available());
        #[cfg(target_arch = "x86_64")]
        assert_ne!(best, Unit::Scalar);
    }

    #[test]
    fn random_keys_differ_and_change_every_hash() {
        let a = HashKey::random().expect("getrandom");
        let b = HashKey::random().expect("getrandom");
        assert_ne!(a, b);
        let same = (0..64u16)
            .filter(|&p| client_hash(&a, 0xc612_0002, p) == client_hash(&b, 0xc612_0002, p))
            .count();
        assert_eq!(same, 0);
    }
}
