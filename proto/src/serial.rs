//! RFC 1982 serial number arithmetic with `SERIAL_BITS = 32`.
//!
//! RFC 7143 §4.2.2.1 says CmdSN, StatSN, DataSN, R2TSN, ExpCmdSN and MaxCmdSN are compared with
//! the serial number arithmetic of RFC 1982 §3.1/§3.2. A plain `u32` compare is wrong as soon as a
//! long-lived session wraps, so every sequence number in this crate is a [`SerialNumber`], which
//! deliberately has no `Ord` implementation: two serial numbers exactly 2^31 apart are not
//! comparable, and [`SerialNumber::partial_cmp`] returns `None` for them.

use core::cmp::Ordering;
use core::fmt;

/// Half of the serial number space, `2^(SERIAL_BITS - 1)` (RFC 1982 §3.1).
const HALF: u32 = 1 << 31;

/// A 32-bit serial number with RFC 1982 comparison and addition.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SerialNumber(pub u32);

impl SerialNumber {
    /// The largest increment RFC 1982 §3.1 allows in one addition: `2^31 - 1`.
    pub const MAX_INCREMENT: u32 = HALF - 1;

    /// Creates a serial number from its wire value.
    pub const fn new(value: u32) -> Self {
        SerialNumber(value)
    }

    /// The wire value.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// RFC 1982 §3.1 addition: `(s + n) mod 2^32`.
    ///
    /// Additions larger than [`Self::MAX_INCREMENT`] are undefined by the RFC; this function
    /// still wraps (it never panics), and callers that care use [`Self::checked_add`].
    pub const fn wrapping_add(self, n: u32) -> Self {
        SerialNumber(self.0.wrapping_add(n))
    }

    /// RFC 1982 §3.1 addition, `None` when `n > 2^31 - 1` (the addition is undefined).
    pub const fn checked_add(self, n: u32) -> Option<Self> {
        if n > Self::MAX_INCREMENT {
            None
        } else {
            Some(self.wrapping_add(n))
        }
    }

    /// The next serial number (`self + 1`, wrapping).
    pub const fn next(self) -> Self {
        self.wrapping_add(1)
    }

    /// RFC 1982 §3.2: `self < other`.
    pub const fn lt(self, other: Self) -> bool {
        let (i1, i2) = (self.0, other.0);
        (i1 < i2 && i2 - i1 < HALF) || (i1 > i2 && i1 - i2 > HALF)
    }

    /// RFC 1982 §3.2: `self > other`.
    pub const fn gt(self, other: Self) -> bool {
        other.lt(self)
    }

    /// `self <= other` in serial arithmetic (equal, or less than).
    pub const fn le(self, other: Self) -> bool {
        self.0 == other.0 || self.lt(other)
    }

    /// `self >= other` in serial arithmetic (equal, or greater than).
    pub const fn ge(self, other: Self) -> bool {
        self.0 == other.0 || self.gt(other)
    }

    /// Forward distance from `earlier` to `self`, `(self - earlier) mod 2^32`.
    pub const fn distance_from(self, earlier: Self) -> u32 {
        self.0.wrapping_sub(earlier.0)
    }

    /// Whether `self` lies in the closed window `[low, high]`, as used for the CmdSN window
    /// `ExpCmdSN <= CmdSN <= MaxCmdSN` (RFC 7143 §4.2.2.1).
    ///
    /// An empty window (`MaxCmdSN = ExpCmdSN - 1`) contains nothing.
    pub const fn in_window(self, low: Self, high: Self) -> bool {
        self.ge(low) && self.le(high)
    }
}

impl PartialOrd for SerialNumber {
    /// RFC 1982 §3.2 ordering; `None` when the two numbers are exactly 2^31 apart.
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        if self.0 == other.0 {
            Some(Ordering::Equal)
        } else if SerialNumber::lt(*self, *other) {
            Some(Ordering::Less)
        } else if SerialNumber::gt(*self, *other) {
            Some(Ordering::Greater)
        } else {
            None
        }
    }
}

impl From<u32> for SerialNumber {
    fn from(v: u32) -> Self {
        SerialNumber(v)
    }
}

impl From<SerialNumber> for u32 {
    fn from(v: SerialNumber) -> Self {
        v.0
    }
}

impl fmt::Debug for SerialNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SN({})", self.0)
    }
}

impl fmt::Display for SerialNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sn(v: u32) -> SerialNumber {
        SerialNumber(v)
    }

    #[test]
    fn simple_order() {
        assert!(sn(1).lt(sn(2)));
        assert!(sn(2).gt(sn(1)));
        assert!(sn(1) < sn(2));
        assert!(sn(5) == sn(5));
        assert!(sn(5).le(sn(5)) && sn(5).ge(sn(5)));
    }

    #[test]
    fn wraparound() {
        // RFC 1982 §3.2: 0xffff_ffff < 0 because 0 is "after" the maximum.
        assert!(sn(u32::MAX).lt(sn(0)));
        assert!(sn(0).gt(sn(u32::MAX)));
        assert!(sn(u32::MAX - 10) < sn(5));
        assert_eq!(sn(u32::MAX).next(), sn(0));
        assert_eq!(sn(u32::MAX - 1).wrapping_add(5), sn(3));
        assert_eq!(sn(3).distance_from(sn(u32::MAX - 1)), 5);
    }

    #[test]
    fn half_space_is_incomparable() {
        // RFC 1982 §3.2: s1 and s1 + 2^31 are neither less nor greater.
        let a = sn(7);
        let b = sn(7 + HALF);
        assert!(!a.lt(b) && !a.gt(b));
        assert_eq!(a.partial_cmp(&b), None);
    }

    #[test]
    fn checked_add_limits() {
        assert_eq!(
            sn(1).checked_add(SerialNumber::MAX_INCREMENT),
            Some(sn(HALF))
        );
        assert_eq!(sn(1).checked_add(HALF), None);
    }

    #[test]
    fn window() {
        // ExpCmdSN = 0xffff_fffe, MaxCmdSN = 1: window spans the wrap.
        let (lo, hi) = (sn(0xffff_fffe), sn(1));
        for v in [0xffff_fffe, 0xffff_ffff, 0, 1] {
            assert!(sn(v).in_window(lo, hi), "{v:#x}");
        }
        assert!(!sn(2).in_window(lo, hi));
        assert!(!sn(0xffff_fffd).in_window(lo, hi));
        // Empty window: MaxCmdSN = ExpCmdSN - 1.
        assert!(!sn(10).in_window(sn(10), sn(9)));
    }

    proptest! {
        #[test]
        fn add_is_greater(a in any::<u32>(), n in 1..=SerialNumber::MAX_INCREMENT) {
            let s = sn(a);
            let t = s.wrapping_add(n);
            prop_assert!(s.lt(t));
            prop_assert!(t.gt(s));
            prop_assert_eq!(t.distance_from(s), n);
        }

        #[test]
        fn antisymmetric(a in any::<u32>(), b in any::<u32>()) {
            let (x, y) = (sn(a), sn(b));
            prop_assert!(!(x.lt(y) && y.lt(x)));
            prop_assert_eq!(x.lt(y), y.gt(x));
        }
    }
}
