//! Typed messages between the control core and the workers, each carried through an
//! `rte_ring` as one pointer-sized value (no allocation): the value is the message
//! itself, encoded, with the top bit set so that it is never zero. It is never
//! dereferenced.

use std::ffi::c_void;
use std::ptr::NonNull;

use tandem_dpdk::RingItem;
use tandem_engine::{ReplicaId, Signal, SignalKind};

/// Marks an encoded message (keeps it non-zero).
const TAG: u64 = 1 << 63;

/// Turns an encoded value into the ring's pointer.
fn to_ptr(v: u64) -> NonNull<c_void> {
    // An integer, not an address: the ring stores it and gives it back, nobody reads
    // through it. TAG makes it non-zero.
    NonNull::new((v | TAG) as usize as *mut c_void).unwrap_or(NonNull::dangling())
}

fn from_ptr(p: NonNull<c_void>) -> u64 {
    (p.as_ptr() as usize as u64) & !TAG
}

/// A replica signal from a worker (DESIGN §5), without its timestamp (the control core
/// stamps it when it reads it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignalMsg {
    /// The replica.
    pub replica: ReplicaId,
    /// What was seen.
    pub kind: SignalKind,
    /// A divergence's stream offset ([`Signal::offset`]).
    pub offset: u32,
}

const KINDS: [SignalKind; 6] = [
    SignalKind::UnmatchedFin,
    SignalKind::UnmatchedRst,
    SignalKind::AckLag,
    SignalKind::OutputLag,
    SignalKind::NeighbourMissing,
    SignalKind::Diverged,
];

impl From<&Signal> for SignalMsg {
    fn from(s: &Signal) -> SignalMsg {
        SignalMsg {
            replica: s.replica,
            kind: s.kind,
            offset: s.offset,
        }
    }
}

impl RingItem for SignalMsg {
    fn into_ptr(self) -> NonNull<c_void> {
        let kind = KINDS.iter().position(|k| *k == self.kind).unwrap_or(0) as u64;
        // replica: 16 bits, kind: 8, offset: 32 (under the tag bit).
        to_ptr(u64::from(self.replica.0) | (kind << 16) | (u64::from(self.offset) << 24))
    }

    unsafe fn from_ptr(ptr: NonNull<c_void>) -> SignalMsg {
        let v = from_ptr(ptr);
        SignalMsg {
            replica: ReplicaId((v & 0xffff) as u16),
            kind: KINDS[(((v >> 16) & 0xff) as usize).min(KINDS.len() - 1)],
            offset: (v >> 24) as u32,
        }
    }
}

/// An order from the control core to a worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// A replica went down: sweep every flow so that idle ones fail over too
    /// (`Engine::request_failover_sweep`).
    FailoverSweep,
    /// Publish counters now.
    PublishStats,
    /// Fill the worker's flow list (`tandem flows`; see [`crate::listing`]).
    ListFlows,
    /// Add a replica to a service's pool (`tandem add`).
    PoolAdd {
        /// Index of the service.
        service: u16,
        /// The replica.
        replica: ReplicaId,
    },
    /// Take a replica out of a service's pool (`tandem remove`).
    PoolRemove {
        /// Index of the service.
        service: u16,
        /// The replica.
        replica: ReplicaId,
    },
    /// Apply the changes waiting in the worker's [`Mailbox`] (`tandem reload`).
    Reconfigure,
}

/// A change of a worker's engine settings too large for a ring message (`tandem
/// reload`), left in its [`Mailbox`].
#[derive(Clone, Debug)]
pub enum EngineChange {
    /// The timers of the flows created from now on.
    Timeouts(tandem_engine::FlowTimeouts),
    /// A service's ack-lag and output-lag thresholds.
    ServiceLags {
        /// Index of the service.
        service: usize,
        /// Ack lag, ns (0: off).
        ack_lag_ns: u64,
        /// Output lag, ns (0: off).
        output_lag_ns: u64,
    },
    /// A new service, the next index; its replicas follow as [`Command::PoolAdd`].
    AddService(Box<tandem_engine::Service>),
}

/// Where the control core leaves a worker's [`EngineChange`]s before it sends
/// [`Command::Reconfigure`]; the worker takes them with `try_lock` (it never waits: the
/// control core holds the lock only to push).
#[derive(Debug, Default)]
pub struct Mailbox(pub std::sync::Mutex<Vec<EngineChange>>);

impl RingItem for Command {
    fn into_ptr(self) -> NonNull<c_void> {
        // The kind in the low byte; a pool change's service and replica above it.
        let pool = |kind: u64, service: u16, replica: ReplicaId| {
            kind | u64::from(service) << 8 | u64::from(replica.0) << 24
        };
        to_ptr(match self {
            Command::FailoverSweep => 1,
            Command::PublishStats => 2,
            Command::ListFlows => 3,
            Command::PoolAdd { service, replica } => pool(4, service, replica),
            Command::PoolRemove { service, replica } => pool(5, service, replica),
            Command::Reconfigure => 6,
        })
    }

    unsafe fn from_ptr(ptr: NonNull<c_void>) -> Command {
        let v = from_ptr(ptr);
        let service = ((v >> 8) & 0xffff) as u16;
        let replica = ReplicaId(((v >> 24) & 0xffff) as u16);
        match v & 0xff {
            1 => Command::FailoverSweep,
            3 => Command::ListFlows,
            4 => Command::PoolAdd { service, replica },
            5 => Command::PoolRemove { service, replica },
            6 => Command::Reconfigure,
            _ => Command::PublishStats,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        for kind in KINDS {
            let m = SignalMsg {
                replica: ReplicaId(65535),
                kind,
                offset: u32::MAX,
            };
            // SAFETY: the pointer comes from into_ptr of the same type.
            assert_eq!(unsafe { SignalMsg::from_ptr(m.into_ptr()) }, m);
        }
        for c in [
            Command::FailoverSweep,
            Command::PublishStats,
            Command::ListFlows,
            Command::Reconfigure,
            Command::PoolAdd {
                service: 65535,
                replica: ReplicaId(65535),
            },
            Command::PoolRemove {
                service: 3,
                replica: ReplicaId(1023),
            },
        ] {
            // SAFETY: as above.
            assert_eq!(unsafe { Command::from_ptr(c.into_ptr()) }, c);
        }
    }
}
