//! `now` for the engine: the TSC converted to nanoseconds with a fixed-point multiplier
//! (one multiply and a shift per call, no division, no system call).

use tandem_dpdk::lcore;

/// Where the clock starts: one second, so that no timestamp is ever 0 (which some engine
/// fields use as "not yet").
const EPOCH_NS: u64 = 1_000_000_000;

/// A TSC-based nanosecond clock shared (by copy) by every lcore.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    t0: u64,
    /// Nanoseconds per tick, in 32.32 fixed point.
    mult: u64,
}

impl Clock {
    /// A clock starting now; the EAL must be up (it measured the TSC frequency).
    pub fn new() -> Clock {
        let hz = lcore::tsc_hz().max(1);
        let mult = ((1_000_000_000u128 << 32) / u128::from(hz)) as u64;
        Clock {
            t0: lcore::tsc(),
            mult,
        }
    }

    /// Nanoseconds since the clock started, plus one second.
    #[inline]
    pub fn now_ns(&self) -> u64 {
        let ticks = lcore::tsc().wrapping_sub(self.t0);
        ((u128::from(ticks) * u128::from(self.mult)) >> 32) as u64 + EPOCH_NS
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}
