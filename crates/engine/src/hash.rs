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
//! round that does not read the message) is computed once, when the key is made: about 60
//! instructions a hash. Tested against the `siphasher` crate.

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
    siphash13_u64(key, (u64::from(client_ip) << 16) | u64::from(client_port))
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
