//! SYN cookies (DESIGN §3.11, SYN floods): under a flood Tandem answers a SYN itself,
//! keeping nothing, and makes the flow only when the client's ACK brings the cookie back.
//!
//! The cookie is the ISN of Tandem's SYN-ACK. It carries what the ACK does not repeat
//! and the flow needs (the client's MSS, window scale, SACK and timestamps), a coarse
//! time, and a keyed hash over all of it and the connection's identity:
//!
//! ```text
//!  31  30 29                 22 21                                   0
//! +------+---------------------+--------------------------------------+
//! | slot |  options (8 bits)   |  SipHash-1-3(key, slot, endpoints,   |
//! | mod 4| mss(2) ws(4) sack ts|  client ISN, options) & 0x3fffff     |
//! +------+---------------------+--------------------------------------+
//! ```
//!
//! - `slot` is the time in units of 2^35 ns (about 34 s); a cookie is good in its own slot
//!   and the next (34–69 s), long enough for any handshake's retransmissions.
//! - The options are the client's own, in the clear but covered by the hash, so an ACK
//!   cannot change them. The MSS is rounded down to [`MSS_TABLE`] (up to 536 below it, as
//!   Linux does); a window scale of 15 means none.
//! - The hash has 22 bits: an off-path attacker's forged ACK makes a flow with
//!   probability 2^-22 (Linux's cookies give about 2^-24); such a flow is one connection
//!   the attacker cannot see answers of, and it expires like any other.
//!
//! Pure functions: the engine decides when to use them ([`crate::EngineConfig::syn_backlog`]).

use crate::flow::FlowKey;
use crate::hash::{siphash13_words, HashKey};
use crate::seq::Seq;

/// MSS values a cookie can carry (as Linux's `msstab`).
pub const MSS_TABLE: [u16; 4] = [536, 1220, 1440, 1460];

/// log2 of a cookie's time slot in nanoseconds (about 34 s).
const SLOT_SHIFT: u32 = 35;

/// Bits of the hash in a cookie.
const HASH_BITS: u32 = 22;

/// Domain separation from the flow-table hash, which uses the same key.
const DOMAIN: u64 = 0x7379_6e2d_636f_6f6b; // "syn-cook"

/// The client's SYN options a cookie carries.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct SynOptions {
    /// MSS, one of [`MSS_TABLE`].
    pub mss: u16,
    /// Window scale (0..=14), `None` without the option.
    pub wscale: Option<u8>,
    /// SACK permitted.
    pub sack: bool,
    /// Timestamps.
    pub ts: bool,
}

impl SynOptions {
    /// The options of a SYN, as a cookie can carry them (MSS rounded to the table).
    pub fn from_syn(mss: Option<u16>, wscale: Option<u8>, sack: bool, ts: bool) -> SynOptions {
        SynOptions {
            mss: MSS_TABLE[mss_index(mss.unwrap_or(536))],
            wscale: wscale.map(|w| w.min(14)),
            sack,
            ts,
        }
    }

    fn bits(self) -> u32 {
        let ws = u32::from(self.wscale.map_or(15, |w| w.min(14)));
        mss_index(self.mss) as u32 | ws << 2 | u32::from(self.sack) << 6 | u32::from(self.ts) << 7
    }

    fn from_bits(b: u32) -> SynOptions {
        let ws = (b >> 2 & 0xf) as u8;
        SynOptions {
            mss: MSS_TABLE[(b & 3) as usize],
            wscale: (ws != 15).then_some(ws),
            sack: b >> 6 & 1 == 1,
            ts: b >> 7 & 1 == 1,
        }
    }
}

/// The largest table entry not above `mss` (the first below all of them).
fn mss_index(mss: u16) -> usize {
    MSS_TABLE.iter().rposition(|&m| m <= mss).unwrap_or(0)
}

fn hash(key: &HashKey, slot: u64, k: &FlowKey, client_isn: Seq, opts: u32) -> u32 {
    let words = [
        DOMAIN ^ slot,
        u64::from(k.client_ip) << 32 | u64::from(k.vip),
        u64::from(k.client_port) << 48 | u64::from(k.vip_port) << 32 | u64::from(client_isn.0),
        u64::from(opts),
    ];
    (siphash13_words(key, &words) & ((1 << HASH_BITS) - 1)) as u32
}

/// The cookie (Tandem's ISN) for a SYN of `k` with `client_isn` and options `o`, at
/// time `now_ns`.
pub fn make(key: &HashKey, now_ns: u64, k: &FlowKey, client_isn: Seq, o: SynOptions) -> Seq {
    let slot = now_ns >> SLOT_SHIFT;
    let opts = o.bits();
    Seq(((slot & 3) as u32) << 30 | opts << HASH_BITS | hash(key, slot, k, client_isn, opts))
}

/// The options in `cookie` if it is one [`make`] gave for `k` and `client_isn` in this
/// time slot or the one before; `None` for anything else.
pub fn check(
    key: &HashKey,
    now_ns: u64,
    k: &FlowKey,
    client_isn: Seq,
    cookie: Seq,
) -> Option<SynOptions> {
    let now_slot = now_ns >> SLOT_SHIFT;
    let tag = u64::from(cookie.0 >> 30);
    // The slot whose low two bits the cookie names: now's, or the one before.
    let slot = if now_slot & 3 == tag {
        now_slot
    } else if now_slot.wrapping_sub(1) & 3 == tag && now_slot > 0 {
        now_slot - 1
    } else {
        return None;
    };
    let opts = cookie.0 >> HASH_BITS & 0xff;
    (cookie.0 & ((1 << HASH_BITS) - 1) == hash(key, slot, k, client_isn, opts))
        .then(|| SynOptions::from_bits(opts))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: HashKey = HashKey::fixed(0x1234, 0x5678);
    const K: FlowKey = FlowKey {
        client_ip: 0xc612_0002,
        client_port: 40000,
        vip: 0xc612_6464,
        vip_port: 80,
    };
    const SLOT: u64 = 1 << SLOT_SHIFT;

    fn opts() -> SynOptions {
        SynOptions::from_syn(Some(1460), Some(7), true, true)
    }

    #[test]
    fn a_cookie_gives_back_the_options_it_was_made_with() {
        for o in [
            opts(),
            SynOptions::from_syn(None, None, false, false),
            SynOptions::from_syn(Some(1400), Some(14), false, true),
            SynOptions::from_syn(Some(9000), Some(0), true, false),
        ] {
            let c = make(&KEY, 5 * SLOT + 7, &K, Seq(99), o);
            assert_eq!(check(&KEY, 5 * SLOT + 9, &K, Seq(99), c), Some(o));
        }
    }

    #[test]
    fn the_mss_is_rounded_down_to_the_table() {
        assert_eq!(
            SynOptions::from_syn(Some(1400), None, false, false).mss,
            1220
        );
        assert_eq!(
            SynOptions::from_syn(Some(1460), None, false, false).mss,
            1460
        );
        assert_eq!(
            SynOptions::from_syn(Some(8960), None, false, false).mss,
            1460
        );
        assert_eq!(SynOptions::from_syn(Some(200), None, false, false).mss, 536);
    }

    #[test]
    fn a_cookie_is_good_for_its_slot_and_the_next_only() {
        let c = make(&KEY, 5 * SLOT + 1, &K, Seq(99), opts());
        assert!(check(&KEY, 5 * SLOT + 2, &K, Seq(99), c).is_some());
        assert!(check(&KEY, 6 * SLOT + 2, &K, Seq(99), c).is_some());
        assert!(check(&KEY, 7 * SLOT, &K, Seq(99), c).is_none());
        assert!(check(&KEY, 9 * SLOT + 1, &K, Seq(99), c).is_none());
        assert!(check(&KEY, 4 * SLOT, &K, Seq(99), c).is_none());
    }

    #[test]
    fn a_cookie_is_bound_to_the_connection_its_isn_and_its_options() {
        let now = 5 * SLOT;
        let c = make(&KEY, now, &K, Seq(99), opts());
        assert!(check(&KEY, now, &K, Seq(100), c).is_none());
        let other = FlowKey {
            client_port: 40001,
            ..K
        };
        assert!(check(&KEY, now, &other, Seq(99), c).is_none());
        // Flipping an option bit (here: SACK) breaks the hash.
        assert!(check(&KEY, now, &K, Seq(99), Seq(c.0 ^ 1 << 28)).is_none());
        assert!(check(&HashKey::fixed(1, 2), now, &K, Seq(99), c).is_none());
    }

    #[test]
    fn random_acks_almost_never_pass() {
        // 2^-22 each: a million guesses pass about once in four runs; 100 000 hardly ever.
        let now = 5 * SLOT;
        let mut x = 0x9e37_79b9u32;
        let passed = (0..100_000)
            .filter(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                check(&KEY, now, &K, Seq(99), Seq(x)).is_some()
            })
            .count();
        assert!(passed <= 2, "{passed} of 100 000 random cookies passed");
    }
}
