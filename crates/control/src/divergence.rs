//! Replicas whose output differs from the active's (DESIGN §3.12): each such flow is
//! counted for its replica; a replica that diverges on many flows within a minute is
//! *out of sync*, an alarm for the operator (its data or its program differs from the
//! others'), shown in `tandem status` and raised as one event per episode.
//!
//! Control core only; no DPDK.

use tandem_engine::ReplicaId;

/// Flows within [`ALARM_WINDOW_NS`] that make a replica out of sync.
pub const ALARM_FLOWS: u32 = 10;
/// The alarm's window.
pub const ALARM_WINDOW_NS: u64 = 60_000_000_000;

#[derive(Clone, Copy, Debug, Default)]
struct Tally {
    total: u64,
    window_start: u64,
    in_window: u32,
    last_window: u32,
    alarmed: bool,
}

impl Tally {
    /// Moves the window to `now`: a window that ended is the last one.
    fn roll(&mut self, now: u64) {
        let elapsed = now.saturating_sub(self.window_start);
        if elapsed >= ALARM_WINDOW_NS {
            self.last_window = if elapsed < 2 * ALARM_WINDOW_NS {
                self.in_window
            } else {
                0
            };
            self.in_window = 0;
            self.window_start = now;
        }
    }

    fn out_of_sync(&self) -> bool {
        self.in_window >= ALARM_FLOWS || self.last_window >= ALARM_FLOWS
    }
}

/// Divergences by replica.
#[derive(Debug, Default)]
pub struct Divergence {
    by_replica: Vec<(ReplicaId, Tally)>,
}

impl Divergence {
    /// `id` diverged on one more flow at `now`. True when this makes it out of sync (once
    /// per episode: the alarm is raised again only after it was in sync for a window).
    pub fn record(&mut self, id: ReplicaId, now: u64) -> bool {
        let t = match self.by_replica.iter_mut().find(|(r, _)| *r == id) {
            Some((_, t)) => t,
            None => {
                self.by_replica.push((
                    id,
                    Tally {
                        window_start: now,
                        ..Tally::default()
                    },
                ));
                let Some((_, t)) = self.by_replica.last_mut() else {
                    return false;
                };
                t
            }
        };
        t.roll(now);
        if !t.out_of_sync() {
            t.alarmed = false;
        }
        t.total += 1;
        t.in_window += 1;
        if t.out_of_sync() && !t.alarmed {
            t.alarmed = true;
            return true;
        }
        false
    }

    /// Flows on which `id` diverged so far.
    pub fn total(&self, id: ReplicaId) -> u64 {
        self.by_replica
            .iter()
            .find(|(r, _)| *r == id)
            .map_or(0, |(_, t)| t.total)
    }

    /// Whether `id` is out of sync at `now`: [`ALARM_FLOWS`] divergences in this window
    /// or the last one.
    pub fn out_of_sync(&self, id: ReplicaId, now: u64) -> bool {
        self.by_replica
            .iter()
            .find(|(r, _)| *r == id)
            .is_some_and(|(_, t)| {
                let mut t = *t;
                t.roll(now);
                t.out_of_sync()
            })
    }

    /// `id` left the table (`tandem remove`): its slot may serve another replica.
    pub fn forget(&mut self, id: ReplicaId) {
        self.by_replica.retain(|(r, _)| *r != id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn a_replica_diverging_on_many_flows_in_a_minute_is_out_of_sync_once_per_episode() {
        let mut d = Divergence::default();
        let (r, other) = (ReplicaId(1), ReplicaId(2));
        let alarms: Vec<bool> = (0..ALARM_FLOWS + 5)
            .map(|k| d.record(r, 10 * S + u64::from(k) * S))
            .collect();
        assert_eq!(alarms.iter().filter(|a| **a).count(), 1);
        assert!(alarms[ALARM_FLOWS as usize - 1], "the tenth flow raises it");
        assert!(d.out_of_sync(r, 30 * S));
        assert!(!d.out_of_sync(other, 30 * S));
        assert_eq!(d.total(r), u64::from(ALARM_FLOWS) + 5);
        // Quiet for two windows: in sync again; a new episode alarms again.
        assert!(!d.out_of_sync(r, 10 * S + 3 * ALARM_WINDOW_NS));
        let later = 10 * S + 3 * ALARM_WINDOW_NS;
        let again = (0..ALARM_FLOWS)
            .map(|k| d.record(r, later + u64::from(k)))
            .filter(|a| *a);
        assert_eq!(again.count(), 1);
    }

    #[test]
    fn a_few_divergences_now_and_then_are_counted_but_raise_no_alarm() {
        let mut d = Divergence::default();
        let r = ReplicaId(0);
        for k in 0..30u64 {
            assert!(!d.record(r, k * ALARM_WINDOW_NS / 5));
        }
        assert_eq!(d.total(r), 30);
        assert!(!d.out_of_sync(r, 6 * ALARM_WINDOW_NS));
        d.forget(r);
        assert_eq!(d.total(r), 0);
    }
}
