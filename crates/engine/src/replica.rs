//! The shared replica-state table: one writer (the control core), many readers (the
//! workers), atomics only.
//!
//! A replica here is an endpoint that flows are mirrored to. Failover is O(1) for the
//! control core: it flips one slot to `Down` and bumps the slot's epoch. Workers compare
//! the epoch stored in each flow leg with the slot's current epoch on the flow's next
//! packet (and in the idle-flow sweep), so a replica that comes back up serves new flows
//! only: it has no state of the old ones.

use core::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::net::Ipv4Addr;

use tandem_wire::MacAddr;

/// Index of a replica in the [`ReplicaTable`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct ReplicaId(pub u16);

/// Health of a replica as decided by the control core.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum Health {
    /// Serves new and existing flows.
    Up = 0,
    /// Keeps its existing flows, takes no new ones.
    Draining = 1,
    /// Failed: its flows move to their next live replica.
    Down = 2,
    /// Slot not in use.
    Unused = 3,
}

impl Health {
    fn from_u8(v: u8) -> Health {
        match v {
            0 => Health::Up,
            1 => Health::Draining,
            2 => Health::Down,
            _ => Health::Unused,
        }
    }
}

#[derive(Debug)]
struct Slot {
    addr: AtomicU32,
    /// MAC in the low 48 bits; 0 while unresolved.
    mac: AtomicU64,
    health: AtomicU8,
    epoch: AtomicU32,
    /// When a worker last received a segment from it (ns, the workers' clock; 0: never),
    /// to [`HEARD_GRANULARITY_NS`]. The control core reads it as evidence of life: a probe
    /// whose answer is missing from a host that is still talking was lost, not failed.
    heard: AtomicU64,
}

/// Workers write a replica's [`ReplicaTable::heard`] stamp at most this often: a store
/// to a shared line per millisecond, not per packet.
pub const HEARD_GRANULARITY_NS: u64 = 1_000_000;

/// Fixed-capacity table of replica slots.
#[derive(Debug)]
pub struct ReplicaTable {
    slots: Box<[Slot]>,
    /// Bumped whenever any replica goes down: a flow that saw the same value on its
    /// previous packet need not check its legs one by one.
    downs: AtomicU32,
    /// Bumped whenever a replica comes up (back, or new): flows that lost a standby may
    /// get a new one there (mirror mode's reintegration, DESIGN §5).
    ups: AtomicU32,
}

impl ReplicaTable {
    /// A table with room for `capacity` replicas (at most 65535), all unused.
    pub fn new(capacity: usize) -> ReplicaTable {
        let capacity = capacity.min(u16::MAX as usize);
        let slots = (0..capacity)
            .map(|_| Slot {
                addr: AtomicU32::new(0),
                mac: AtomicU64::new(0),
                health: AtomicU8::new(Health::Unused as u8),
                epoch: AtomicU32::new(0),
                heard: AtomicU64::new(0),
            })
            .collect();
        ReplicaTable {
            slots,
            downs: AtomicU32::new(0),
            ups: AtomicU32::new(0),
        }
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Control core: takes the first unused slot for `addr`, marked `Up` with an unknown MAC.
    /// Returns `None` when the table is full.
    pub fn add(&self, addr: Ipv4Addr) -> Option<ReplicaId> {
        let i = self
            .slots
            .iter()
            .position(|s| s.health.load(Ordering::Acquire) == Health::Unused as u8)?;
        let slot = &self.slots[i];
        slot.addr.store(u32::from(addr), Ordering::Relaxed);
        slot.mac.store(0, Ordering::Relaxed);
        slot.heard.store(0, Ordering::Relaxed);
        slot.epoch.fetch_add(1, Ordering::Relaxed);
        slot.health.store(Health::Up as u8, Ordering::Release);
        self.ups.fetch_add(1, Ordering::Release);
        Some(ReplicaId(i as u16))
    }

    /// Control core: sets the health. Going `Down` (or `Unused`) bumps the epoch, so every
    /// flow that used the replica treats its leg as dead, even if the replica comes back.
    pub fn set_health(&self, id: ReplicaId, health: Health) {
        let Some(slot) = self.slots.get(id.0 as usize) else {
            return;
        };
        if matches!(health, Health::Down | Health::Unused) {
            slot.epoch.fetch_add(1, Ordering::Release);
        }
        let was = slot.health.swap(health as u8, Ordering::AcqRel);
        if matches!(health, Health::Down | Health::Unused) {
            self.downs.fetch_add(1, Ordering::Release);
        }
        if health == Health::Up && was != Health::Up as u8 {
            self.ups.fetch_add(1, Ordering::Release);
        }
    }

    /// Control core: records the replica's resolved MAC address.
    pub fn set_mac(&self, id: ReplicaId, mac: MacAddr) {
        if let Some(slot) = self.slots.get(id.0 as usize) {
            slot.mac.store(mac.to_u64(), Ordering::Release);
        }
    }

    /// Current health (`Unused` for an id out of range).
    #[inline]
    pub fn health(&self, id: ReplicaId) -> Health {
        self.slots.get(id.0 as usize).map_or(Health::Unused, |s| {
            Health::from_u8(s.health.load(Ordering::Acquire))
        })
    }

    /// Changes whenever any replica goes down (read it before the epochs it guards).
    #[inline]
    pub fn down_generation(&self) -> u32 {
        self.downs.load(Ordering::Acquire)
    }

    /// Changes whenever a replica comes up (back from down or draining, or added).
    #[inline]
    pub fn up_generation(&self) -> u32 {
        self.ups.load(Ordering::Acquire)
    }

    /// Current epoch: changes whenever the replica goes down.
    #[inline]
    pub fn epoch(&self, id: ReplicaId) -> u32 {
        self.slots
            .get(id.0 as usize)
            .map_or(u32::MAX, |s| s.epoch.load(Ordering::Acquire))
    }

    /// Whether a flow leg created at `epoch` may still use this replica.
    #[inline]
    pub fn leg_alive(&self, id: ReplicaId, epoch: u32) -> bool {
        let Some(s) = self.slots.get(id.0 as usize) else {
            return false;
        };
        let h = s.health.load(Ordering::Acquire);
        (h == Health::Up as u8 || h == Health::Draining as u8)
            && s.epoch.load(Ordering::Acquire) == epoch
    }

    /// The replica's address.
    #[inline]
    pub fn addr(&self, id: ReplicaId) -> Ipv4Addr {
        self.slots
            .get(id.0 as usize)
            .map_or(Ipv4Addr::UNSPECIFIED, |s| {
                Ipv4Addr::from(s.addr.load(Ordering::Relaxed))
            })
    }

    /// The replica's MAC, `None` while unresolved.
    #[inline]
    pub fn mac(&self, id: ReplicaId) -> Option<MacAddr> {
        let v = self.slots.get(id.0 as usize)?.mac.load(Ordering::Acquire);
        (v != 0).then(|| MacAddr::from_u64(v))
    }

    /// Worker: a segment from the replica arrived at `now`. Stores only when the stamp is
    /// [`HEARD_GRANULARITY_NS`] old, so the line stays shared between workers.
    #[inline]
    pub fn heard(&self, id: ReplicaId, now: u64) {
        if let Some(s) = self.slots.get(id.0 as usize) {
            if now
                >= s.heard
                    .load(Ordering::Relaxed)
                    .saturating_add(HEARD_GRANULARITY_NS)
            {
                s.heard.store(now, Ordering::Relaxed);
            }
        }
    }

    /// When a worker last heard from the replica (see [`ReplicaTable::heard`]; 0: never).
    pub fn last_heard(&self, id: ReplicaId) -> u64 {
        self.slots
            .get(id.0 as usize)
            .map_or(0, |s| s.heard.load(Ordering::Relaxed))
    }

    /// Finds the slot of an address (control core and tests).
    pub fn find(&self, addr: Ipv4Addr) -> Option<ReplicaId> {
        let a = u32::from(addr);
        self.slots
            .iter()
            .position(|s| {
                s.health.load(Ordering::Acquire) != Health::Unused as u8
                    && s.addr.load(Ordering::Relaxed) == a
            })
            .map(|i| ReplicaId(i as u16))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down_bumps_the_epoch_and_kills_old_legs() {
        let t = ReplicaTable::new(4);
        let id = t.add(Ipv4Addr::new(198, 19, 0, 11)).expect("room");
        let e = t.epoch(id);
        assert!(t.leg_alive(id, e));
        t.set_health(id, Health::Draining);
        assert!(t.leg_alive(id, e), "draining keeps existing flows");
        t.set_health(id, Health::Down);
        assert!(!t.leg_alive(id, e));
        t.set_health(id, Health::Up);
        assert!(
            !t.leg_alive(id, e),
            "a replica that comes back has no old flows"
        );
        assert!(t.leg_alive(id, t.epoch(id)));
    }

    #[test]
    fn full_table_and_lookups() {
        let t = ReplicaTable::new(2);
        let a = t.add(Ipv4Addr::new(198, 19, 0, 11)).expect("room");
        let b = t.add(Ipv4Addr::new(198, 19, 0, 12)).expect("room");
        assert!(t.add(Ipv4Addr::new(198, 19, 0, 13)).is_none());
        assert_eq!(t.find(Ipv4Addr::new(198, 19, 0, 12)), Some(b));
        assert_eq!(t.mac(a), None);
        t.set_mac(a, MacAddr([2, 0, 0, 0, 0, 1]));
        assert_eq!(t.mac(a), Some(MacAddr([2, 0, 0, 0, 0, 1])));
        assert_eq!(t.health(ReplicaId(99)), Health::Unused);
        assert!(!t.leg_alive(ReplicaId(99), 0));
    }
}
