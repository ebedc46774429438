//! The Internet checksum: full computation (RFC 1071) and incremental update (RFC 1624).
//!
//! A checksum is built in three steps: [`sum`] accumulates 16-bit big-endian words into a
//! `u32` (pieces may be summed one after another, as long as every piece but the last has
//! an even length), [`fold`] folds the carries into 16 bits, and [`finish`] complements
//! the result into the value stored in a checksum field. A packet whose stored checksum is
//! valid sums to `0xffff` (before complement).
//!
//! Incremental updates use RFC 1624 equation 3, `HC' = ~(~HC + ~m + m')`, which never
//! yields `0xffff` for a valid checksum and so always equals a full recomputation.
//! [`ChecksumDelta`] gathers several such changes and applies them at once.

use crate::Ipv4Addr;

/// Adds `data` to `initial` as a one's-complement sum of 16-bit big-endian words; an odd
/// trailing byte is padded with zero (RFC 1071).
///
/// The result is not folded; pass it to [`fold`] or [`finish`]. To sum a message in
/// pieces, feed each piece's result as the next one's `initial`; every piece but the last
/// must have an even length.
#[inline]
pub fn sum(data: &[u8], initial: u32) -> u32 {
    // Summing 32-bit words into a u64 is the same one's-complement sum as summing 16-bit
    // words (2^16 = 1 mod 2^16 - 1), with half the additions and no overflow below 16 GiB.
    let mut acc: u64 = u64::from(initial);
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        acc += u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
    }
    let mut rest = words.remainder();
    if rest.len() >= 2 {
        acc += u64::from(u16::from_be_bytes([rest[0], rest[1]]));
        rest = &rest[2..];
    }
    if let Some(&last) = rest.first() {
        acc += u64::from(last) << 8;
    }
    // Fold to 32 bits with end-around carry (twice covers the carry of the first fold).
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc as u32
}

/// Folds the carries of a one's-complement sum into 16 bits. The result is not
/// complemented.
#[inline]
pub fn fold(sum: u32) -> u16 {
    let s = (sum & 0xffff) + (sum >> 16);
    let s = (s & 0xffff) + (s >> 16);
    s as u16
}

/// Folds and complements a sum: the value to store in a checksum field.
#[inline]
pub fn finish(sum: u32) -> u16 {
    !fold(sum)
}

/// The checksum of `data` alone (RFC 1071): `finish(sum(data, 0))`.
#[inline]
pub fn internet_checksum(data: &[u8]) -> u16 {
    finish(sum(data, 0))
}

/// The unfolded sum of the IPv4 pseudo-header that TCP and UDP checksums cover
/// (RFC 9293 section 3.1): source, destination, zero + protocol, and the segment length.
#[inline]
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, length: u16) -> u32 {
    let s = u32::from(src);
    let d = u32::from(dst);
    (s >> 16) + (s & 0xffff) + (d >> 16) + (d & 0xffff) + u32::from(protocol) + u32::from(length)
}

/// The checksum after one 16-bit word of the covered data changed from `old` to `new`
/// (RFC 1624 equation 3). The word must sit at an even offset of the covered data; for an
/// odd offset use [`ChecksumDelta::u16_at`].
#[inline]
pub fn update_u16(checksum: u16, old: u16, new: u16) -> u16 {
    !fold(u32::from(!checksum) + u32::from(!old) + u32::from(new))
}

/// The checksum after a 32-bit field at an even offset of the covered data changed from
/// `old` to `new` (RFC 1624 equation 3, applied to both halves).
#[inline]
pub fn update_u32(checksum: u16, old: u32, new: u32) -> u16 {
    let mut d = ChecksumDelta::new();
    d.u32(old, new);
    d.apply(checksum)
}

/// Accumulates many field changes, then applies them at once (cheaper than one update per
/// field). Each change adds `~old + new` to a one's-complement sum (RFC 1624).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ChecksumDelta(u32);

impl ChecksumDelta {
    /// A delta that changes nothing.
    #[inline]
    pub fn new() -> Self {
        Self(0)
    }

    #[inline]
    fn add(&mut self, x: u32) {
        // One partial fold per addition keeps the accumulator below 2^18, whatever the
        // number of changes recorded.
        let s = self.0 + x;
        self.0 = (s & 0xffff) + (s >> 16);
    }

    /// Records that a 16-bit word at an even offset of the covered data changed.
    #[inline]
    pub fn u16(&mut self, old: u16, new: u16) {
        self.add(u32::from(!old) + u32::from(new));
    }

    /// Records that a 32-bit field at an even offset of the covered data changed.
    #[inline]
    pub fn u32(&mut self, old: u32, new: u32) {
        // Both halves in one addition (at most 4 * 0xffff): the same one's-complement sum
        // as two `u16` changes, and zero exactly when both would be, so every checksum
        // `apply` gives is bit-identical; one partial fold instead of two.
        let o = !old;
        self.add((o >> 16) + (o & 0xffff) + (new >> 16) + (new & 0xffff));
    }

    /// Records that an IPv4 address inside the covered data (or its pseudo-header) changed.
    #[inline]
    pub fn ipv4(&mut self, old: Ipv4Addr, new: Ipv4Addr) {
        self.u32(u32::from(old), u32::from(new));
    }

    /// Records that a 16-bit field at byte `offset` of the covered data changed. At an odd
    /// offset the field straddles two words; its contribution to the sum is then the
    /// byte-swapped value (RFC 1071 section 2 (B), byte-order independence).
    #[inline]
    pub fn u16_at(&mut self, offset: usize, old: u16, new: u16) {
        if offset.is_multiple_of(2) {
            self.u16(old, new);
        } else {
            self.u16(old.swap_bytes(), new.swap_bytes());
        }
    }

    /// Records that a 32-bit field at byte `offset` (even or odd) of the covered data
    /// changed.
    #[inline]
    pub fn u32_at(&mut self, offset: usize, old: u32, new: u32) {
        if offset.is_multiple_of(2) {
            self.u32(old, new);
        } else {
            // Both halves straddle words: each contributes byte-swapped (see `u16_at`).
            let swap_halves = |x: u32| ((x & 0x00ff_00ff) << 8) | ((x >> 8) & 0x00ff_00ff);
            self.u32(swap_halves(old), swap_halves(new));
        }
    }

    /// Records that the byte at `offset` of the covered data changed.
    #[inline]
    pub fn u8_at(&mut self, offset: usize, old: u8, new: u8) {
        if offset.is_multiple_of(2) {
            self.u16(u16::from(old) << 8, u16::from(new) << 8);
        } else {
            self.u16(u16::from(old), u16::from(new));
        }
    }

    /// Records that a run of bytes changed from `old` to `new`. Both must have the same
    /// even length and start at an even offset of the covered data.
    #[inline]
    pub fn bytes(&mut self, old: &[u8], new: &[u8]) {
        debug_assert_eq!(old.len(), new.len());
        debug_assert_eq!(old.len() % 2, 0);
        self.u16(fold(sum(old, 0)), fold(sum(new, 0)));
    }

    /// Merges the changes recorded in `other` into this delta.
    #[inline]
    pub fn merge(&mut self, other: ChecksumDelta) {
        self.add(other.0);
    }

    /// Applies the recorded changes to a valid checksum and returns the new checksum.
    #[inline]
    pub fn apply(self, checksum: u16) -> u16 {
        !fold(u32::from(!checksum) + self.0)
    }

    /// True if applying this delta leaves every valid checksum unchanged (nothing was
    /// recorded, or the changes cancel out).
    #[inline]
    pub fn is_empty(&self) -> bool {
        matches!(fold(self.0), 0 | 0xffff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: words 0001 f203 f4f5 f6f7 sum to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&data, 0)), 0xddf2);
        assert_eq!(internet_checksum(&data), 0x220d);
        // Appending the checksum makes the whole sum to 0xffff.
        let mut with = [0u8; 10];
        with[..8].copy_from_slice(&data);
        with[8..].copy_from_slice(&0x220du16.to_be_bytes());
        assert_eq!(fold(sum(&with, 0)), 0xffff);
        assert_eq!(internet_checksum(&with), 0);
    }

    #[test]
    fn odd_length_is_zero_padded() {
        assert_eq!(sum(&[0xab], 0), 0xab00);
        assert_eq!(fold(sum(&[1, 2, 3], 0)), 0x0402);
        assert_eq!(fold(sum(&[1, 2, 3, 4, 5], 0)), 0x0906);
        assert_eq!(sum(&[], 7), 7);
    }

    #[test]
    fn pieces_compose() {
        let data: std::vec::Vec<u8> = (0..=255u8).cycle().take(1001).collect();
        let whole = fold(sum(&data, 0));
        let pieces = sum(&data[600..], sum(&data[..600], 0));
        assert_eq!(fold(pieces), whole);
    }

    #[test]
    fn large_buffer_does_not_overflow() {
        let data = [0xffu8; 70_000];
        assert_eq!(fold(sum(&data, u32::MAX)), 0xffff);
    }

    #[test]
    fn known_ipv4_header() {
        // The classic example header (Wikipedia "IPv4 header checksum"): checksum b861.
        let hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(internet_checksum(&hdr), 0xb861);
    }

    #[test]
    fn pseudo_header() {
        let s = pseudo_header_v4(
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
            6,
            40,
        );
        assert_eq!(s, 0x0a00 + 0x0001 + 0x0a00 + 0x0002 + 6 + 40);
    }

    fn recompute_with(data: &mut [u8], at: usize, bytes: &[u8]) -> u16 {
        data[at..at + bytes.len()].copy_from_slice(bytes);
        internet_checksum(data)
    }

    #[test]
    fn update_equals_recompute() {
        let mut data: [u8; 24] = core::array::from_fn(|i| (i as u8).wrapping_mul(37) ^ 0x5a);
        let c0 = internet_checksum(&data);
        let old = crate::get_u16(&data, 6);
        let c1 = update_u16(c0, old, 0xbeef);
        assert_eq!(c1, recompute_with(&mut data, 6, &[0xbe, 0xef]));
        let old = crate::get_u32(&data, 12);
        let c2 = update_u32(c1, old, 0xdead_beef);
        assert_eq!(
            c2,
            recompute_with(&mut data, 12, &0xdead_beefu32.to_be_bytes())
        );
    }

    #[test]
    fn odd_offsets() {
        let mut data: [u8; 24] = core::array::from_fn(|i| (i as u8).wrapping_mul(91) ^ 0xc3);
        let c0 = internet_checksum(&data);
        let mut d = ChecksumDelta::new();
        d.u16_at(3, crate::get_u16(&data, 3), 0x1234);
        d.u32_at(9, crate::get_u32(&data, 9), 0x89ab_cdef);
        d.u8_at(15, data[15], 0x77);
        d.u8_at(16, data[16], 0x88);
        data[3..5].copy_from_slice(&[0x12, 0x34]);
        data[9..13].copy_from_slice(&0x89ab_cdefu32.to_be_bytes());
        data[15] = 0x77;
        data[16] = 0x88;
        assert_eq!(d.apply(c0), internet_checksum(&data));
    }

    #[test]
    fn delta_bytes_and_empty() {
        let mut data = [0x11u8; 16];
        let c0 = internet_checksum(&data);
        let mut d = ChecksumDelta::new();
        assert!(d.is_empty());
        d.u16(0x1234, 0x1234);
        assert!(d.is_empty());
        assert_eq!(d.apply(c0), c0);
        let new = [1, 2, 3, 4, 5, 6];
        d.bytes(&data[4..10], &new);
        assert!(!d.is_empty());
        data[4..10].copy_from_slice(&new);
        assert_eq!(d.apply(c0), internet_checksum(&data));
    }

    #[test]
    fn many_changes_do_not_overflow() {
        let mut d = ChecksumDelta::new();
        for _ in 0..100_000 {
            d.u16(0, 0xffff);
        }
        // Each change adds 0xffff + 0xffff = 2 * (-0) which is still zero.
        assert!(d.is_empty());
        assert_eq!(d.apply(0x1234), 0x1234);
    }

    /// The one-addition `u32` and `u32_at` against the two `u16` changes they stand for,
    /// on checksums as `apply` sees them (including the zero and 0xffff edges).
    #[test]
    fn u32_equals_two_u16() {
        use proptest::prelude::*;
        let edge = prop_oneof![
            Just(0u32),
            Just(0xffff_ffff),
            Just(0xffff),
            Just(0xffff_0000),
            any::<u32>()
        ];
        proptest!(ProptestConfig::with_cases(20_000), |(old in edge.clone(), new in edge, c in any::<u16>(), odd in any::<bool>(), pre in any::<(u16, u16)>())| {
            let offset = usize::from(odd);
            let mut one = ChecksumDelta::new();
            let mut two = ChecksumDelta::new();
            one.u16(pre.0, pre.1);
            two.u16(pre.0, pre.1);
            one.u32_at(offset, old, new);
            two.u16_at(offset, (old >> 16) as u16, (new >> 16) as u16);
            two.u16_at(offset + 2, old as u16, new as u16);
            prop_assert_eq!(one.apply(c), two.apply(c));
            prop_assert_eq!(one.is_empty(), two.is_empty());
            let (mut a, mut b) = (ChecksumDelta::new(), ChecksumDelta::new());
            a.u32(old, new);
            b.u16((old >> 16) as u16, (new >> 16) as u16);
            b.u16(old as u16, new as u16);
            prop_assert_eq!(a.apply(c), b.apply(c));
        });
    }

    #[test]
    fn merge_equals_sequential() {
        let mut a = ChecksumDelta::new();
        a.u16(1, 2);
        let mut b = ChecksumDelta::new();
        b.u32(0x1000_0000, 0x2000_0001);
        let mut both = a;
        both.merge(b);
        assert_eq!(both.apply(0x4321), b.apply(a.apply(0x4321)));
    }
}
