//! TCP sequence numbers as a named type: wrapping arithmetic and serial-number
//! comparison (RFC 1982), so that nothing compares raw `u32`s across the 2^32 wrap.

use core::cmp::Ordering;
use core::fmt;

/// A TCP sequence (or acknowledgement) number, mod 2^32.
///
/// `a < b` means "`b` is after `a`" in serial-number order: true when `b - a` (wrapping)
/// is in `1..2^31`. Two numbers exactly 2^31 apart are incomparable in RFC 1982; this type
/// orders them by the sign of the wrapping difference, which is what TCP stacks do.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Seq(pub u32);

impl Seq {
    /// The raw value.
    #[inline]
    pub const fn get(self) -> u32 {
        self.0
    }

    /// `self + n`, wrapping.
    #[inline]
    #[must_use]
    pub const fn wrapping_add(self, n: u32) -> Seq {
        Seq(self.0.wrapping_add(n))
    }

    /// `self - n`, wrapping.
    #[inline]
    #[must_use]
    pub const fn wrapping_sub(self, n: u32) -> Seq {
        Seq(self.0.wrapping_sub(n))
    }

    /// Signed distance `self - other` in serial-number space.
    #[inline]
    pub const fn diff(self, other: Seq) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }

    /// Bytes from `earlier` up to `self`, or 0 when `self` is not after `earlier`.
    #[inline]
    pub const fn bytes_after(self, earlier: Seq) -> u32 {
        let d = self.diff(earlier);
        if d > 0 {
            d as u32
        } else {
            0
        }
    }

    /// The later of the two in serial-number order.
    #[inline]
    #[must_use]
    pub fn later(self, other: Seq) -> Seq {
        if other > self {
            other
        } else {
            self
        }
    }

    /// The earlier of the two in serial-number order.
    #[inline]
    #[must_use]
    pub fn earlier(self, other: Seq) -> Seq {
        if other < self {
            other
        } else {
            self
        }
    }
}

impl PartialOrd for Seq {
    #[inline]
    fn partial_cmp(&self, other: &Seq) -> Option<Ordering> {
        Some(self.diff(*other).cmp(&0))
    }
}

impl fmt::Debug for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Seq({})", self.0)
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_across_the_wrap() {
        let a = Seq(u32::MAX - 10);
        let b = a.wrapping_add(20);
        assert_eq!(b, Seq(9));
        assert!(a < b);
        assert!(b > a);
        assert_eq!(b.diff(a), 20);
        assert_eq!(a.diff(b), -20);
        assert_eq!(b.bytes_after(a), 20);
        assert_eq!(a.bytes_after(b), 0);
        assert_eq!(a.later(b), b);
        assert_eq!(b.earlier(a), a);
    }

    #[test]
    fn half_space_is_the_horizon() {
        let a = Seq(0);
        assert!(Seq((1 << 31) - 1) > a);
        // 2^31 apart: the signed difference is negative, so it reads as "before".
        assert!(Seq(1 << 31) < a);
    }

    #[test]
    fn sub_then_add_round_trips() {
        for &v in &[0u32, 1, 0x7fff_ffff, 0x8000_0000, u32::MAX] {
            for &n in &[0u32, 1, 1000, u32::MAX] {
                assert_eq!(Seq(v).wrapping_sub(n).wrapping_add(n), Seq(v));
            }
        }
    }
}
