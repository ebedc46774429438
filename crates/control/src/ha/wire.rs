//! What the pair says on the HA link: heartbeats (this module's layout) and the sync
//! batches of [`tandem_engine::sync`] (records, acks, bulk markers), told apart by their
//! magic. The active's data-path announcement carries a heartbeat too. Everything read
//! here comes from the peer or the wire and is bad input: a [`WireError`], never a panic.
//!
//! ## Heartbeat layout (version [`VERSION`])
//!
//! [`HEARTBEAT_LEN`] = 52 bytes, big-endian, every field at a fixed offset; reserved bits
//! and bytes are zero, so that an encoding is canonical (a decoded heartbeat encodes to
//! the same bytes).
//!
//! | offset | bytes | field |
//! |---|---|---|
//! | 0 | 4 | magic `THBT` |
//! | 4 | 1 | version |
//! | 5 | 1 | role (0 initial, 1 standby, 2 active) |
//! | 6 | 1 | flags ([`Flags`]) |
//! | 7 | 1 | reserved |
//! | 8 | 4 | node (the sender's HA address) |
//! | 12 | 4 | heartbeat counter (wrapping) |
//! | 16 | 8 | incarnation (the sender's start; a new one is a restart) |
//! | 24 | 8 | epoch |
//! | 32 | 8 | the highest sync batch it sent |
//! | 40 | 8 | the highest sync batch of the peer's it has in order (a cumulative ack) |
//! | 48 | 4 | the counter of the peer's last heartbeat it heard (an echo) |

use tandem_engine::sync::{Batch, SyncError, BATCH_MAGIC};

/// The heartbeat layout's version.
pub const VERSION: u8 = 1;
/// Bytes of a heartbeat.
pub const HEARTBEAT_LEN: usize = 52;
/// A heartbeat's first four bytes.
pub const HEARTBEAT_MAGIC: [u8; 4] = *b"THBT";
/// The EtherType of the active's announcement on the data ports (IEEE 802 local
/// experimental EtherType 1: never forwarded as anything else by a standard device).
pub const ANNOUNCE_ETHERTYPE: u16 = 0x88b5;
// The workers' parse hands frames of this type to the control core.
const _: () = assert!(ANNOUNCE_ETHERTYPE == tandem_engine::parse::PAIR_ANNOUNCE);

/// A node's role in the pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Just started: listening for a peer before it takes a side.
    #[default]
    Initial = 0,
    /// Carries nothing, sends nothing on the data ports, installs the active's records.
    Standby = 1,
    /// Owns the floating addresses and carries the flows.
    Active = 2,
}

impl Role {
    fn from_u8(v: u8) -> Option<Role> {
        Some(match v {
            0 => Role::Initial,
            1 => Role::Standby,
            2 => Role::Active,
            _ => return None,
        })
    }

    /// Its name, as `tandem ha status` prints it.
    pub fn name(self) -> &'static str {
        match self {
            Role::Initial => "initial",
            Role::Standby => "standby",
            Role::Active => "active",
        }
    }
}

/// A heartbeat's flag bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Flags(pub u8);

impl Flags {
    /// The sender has a complete copy of its peer's flows (its bulk sync ended).
    pub const READY: u8 = 1 << 0;
    /// The sender is the preferred node.
    pub const PREFERRED: u8 = 1 << 1;
    /// The sender (a standby) was told to become active (`tandem ha active`).
    pub const WANT_ACTIVE: u8 = 1 << 2;
    /// The sender (an active) has stopped its data path and its peer has all its
    /// records: the peer may take over now.
    pub const RELEASED: u8 = 1 << 3;
    /// The sender's data ports are up.
    pub const DATA_OK: u8 = 1 << 4;
    /// Every bit that has a meaning.
    pub const ALL: u8 =
        Self::READY | Self::PREFERRED | Self::WANT_ACTIVE | Self::RELEASED | Self::DATA_OK;

    /// Whether `bit` is set.
    pub fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }

    /// With `bit` set or cleared.
    pub fn with(self, bit: u8, on: bool) -> Flags {
        Flags(if on { self.0 | bit } else { self.0 & !bit })
    }
}

/// One heartbeat (see the module docs for its layout).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Heartbeat {
    /// The sender's role.
    pub role: Role,
    /// Its flags.
    pub flags: Flags,
    /// The sender's node id (its HA address).
    pub node: u32,
    /// Its heartbeat counter (wrapping).
    pub counter: u32,
    /// When it started: a new value is a restart.
    pub incarnation: u64,
    /// The epoch it knows (an active's: the epoch of its term).
    pub epoch: u64,
    /// The highest sync batch it sent (0: none).
    pub sync_sent: u64,
    /// The highest of the peer's sync batches it has in order (0: none).
    pub sync_acked: u64,
    /// The counter of the peer's last heartbeat it heard: proof that this heartbeat was
    /// sent after that one arrived.
    pub echo: u32,
}

/// Offsets of a heartbeat's fields.
mod field {
    pub const MAGIC: usize = 0;
    pub const VERSION: usize = 4;
    pub const ROLE: usize = 5;
    pub const FLAGS: usize = 6;
    pub const RESERVED: usize = 7;
    pub const NODE: usize = 8;
    pub const COUNTER: usize = 12;
    pub const INCARNATION: usize = 16;
    pub const EPOCH: usize = 24;
    pub const SYNC_SENT: usize = 32;
    pub const SYNC_ACKED: usize = 40;
    pub const ECHO: usize = 48;
}

/// Why bytes from the HA link or a data port are not a message of the pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Shorter than a message's header.
    #[error("HA message too short: {len} bytes, {need} needed")]
    Short {
        /// Bytes there were.
        len: usize,
        /// Bytes needed.
        need: usize,
    },
    /// Neither a heartbeat's nor a sync batch's magic.
    #[error("not an HA message (unknown magic)")]
    Magic,
    /// A heartbeat of a layout version this build does not read.
    #[error("heartbeat version {0} (this build reads version {VERSION})")]
    Version(u8),
    /// A heartbeat whose length is not [`HEARTBEAT_LEN`].
    #[error("heartbeat of {0} bytes ({HEARTBEAT_LEN} expected)")]
    Length(usize),
    /// A role this build does not know.
    #[error("heartbeat with unknown role {0}")]
    Role(u8),
    /// Flag or reserved bits that have no meaning set.
    #[error("heartbeat with reserved bits set ({0:#04x})")]
    Reserved(u8),
    /// A sync batch that does not read (see [`SyncError`]).
    #[error("sync batch: {0}")]
    Sync(#[from] SyncError),
}

fn u32_at(b: &[u8; HEARTBEAT_LEN], at: usize) -> u32 {
    let mut v = [0u8; 4];
    v.copy_from_slice(&b[at..at + 4]);
    u32::from_be_bytes(v)
}

fn u64_at(b: &[u8; HEARTBEAT_LEN], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(v)
}

impl Heartbeat {
    /// Its encoding.
    pub fn encode(&self) -> [u8; HEARTBEAT_LEN] {
        let mut b = [0u8; HEARTBEAT_LEN];
        b[field::MAGIC..field::MAGIC + 4].copy_from_slice(&HEARTBEAT_MAGIC);
        b[field::VERSION] = VERSION;
        b[field::ROLE] = self.role as u8;
        b[field::FLAGS] = self.flags.0 & Flags::ALL;
        b[field::NODE..field::NODE + 4].copy_from_slice(&self.node.to_be_bytes());
        b[field::COUNTER..field::COUNTER + 4].copy_from_slice(&self.counter.to_be_bytes());
        b[field::ECHO..field::ECHO + 4].copy_from_slice(&self.echo.to_be_bytes());
        for (at, v) in [
            (field::INCARNATION, self.incarnation),
            (field::EPOCH, self.epoch),
            (field::SYNC_SENT, self.sync_sent),
            (field::SYNC_ACKED, self.sync_acked),
        ] {
            b[at..at + 8].copy_from_slice(&v.to_be_bytes());
        }
        b
    }

    /// Reads a heartbeat: exactly [`HEARTBEAT_LEN`] bytes, the magic, this version, a
    /// known role, no reserved bit set.
    pub fn decode(bytes: &[u8]) -> Result<Heartbeat, WireError> {
        let b: &[u8; HEARTBEAT_LEN] = match bytes.try_into() {
            Ok(b) => b,
            Err(_) if bytes.len() < 5 => {
                return Err(WireError::Short {
                    len: bytes.len(),
                    need: HEARTBEAT_LEN,
                })
            }
            Err(_) => {
                // The magic and version first: a newer peer's longer heartbeat is a
                // version error, not a length error.
                check_head(bytes)?;
                return Err(WireError::Length(bytes.len()));
            }
        };
        check_head(b)?;
        let role = Role::from_u8(b[field::ROLE]).ok_or(WireError::Role(b[field::ROLE]))?;
        let flags = b[field::FLAGS];
        if flags & !Flags::ALL != 0 {
            return Err(WireError::Reserved(flags & !Flags::ALL));
        }
        if b[field::RESERVED] != 0 {
            return Err(WireError::Reserved(b[field::RESERVED]));
        }
        Ok(Heartbeat {
            role,
            flags: Flags(flags),
            node: u32_at(b, field::NODE),
            counter: u32_at(b, field::COUNTER),
            incarnation: u64_at(b, field::INCARNATION),
            epoch: u64_at(b, field::EPOCH),
            sync_sent: u64_at(b, field::SYNC_SENT),
            sync_acked: u64_at(b, field::SYNC_ACKED),
            echo: u32_at(b, field::ECHO),
        })
    }
}

fn check_head(b: &[u8]) -> Result<(), WireError> {
    if b.get(field::MAGIC..field::MAGIC + 4) != Some(&HEARTBEAT_MAGIC[..]) {
        return Err(WireError::Magic);
    }
    match b.get(field::VERSION) {
        Some(&VERSION) => Ok(()),
        Some(&v) => Err(WireError::Version(v)),
        None => Err(WireError::Short {
            len: b.len(),
            need: HEARTBEAT_LEN,
        }),
    }
}

/// One datagram of the HA link, read.
#[derive(Clone, Copy, Debug)]
pub enum Message<'a> {
    /// A heartbeat.
    Heartbeat(Heartbeat),
    /// A sync batch (records, an ack or a bulk marker); its records are decoded one by
    /// one by [`Batch::records`].
    Batch(Batch<'a>),
}

impl<'a> Message<'a> {
    /// Reads a datagram by its magic.
    pub fn parse(bytes: &'a [u8]) -> Result<Message<'a>, WireError> {
        match bytes.get(..4) {
            None => Err(WireError::Short {
                len: bytes.len(),
                need: 4,
            }),
            Some(m) if m == HEARTBEAT_MAGIC => Heartbeat::decode(bytes).map(Message::Heartbeat),
            Some(m) if m == BATCH_MAGIC => Ok(Message::Batch(Batch::parse(bytes)?)),
            Some(_) => Err(WireError::Magic),
        }
    }
}

/// The announcement frame of the active on a data port: Ethernet to broadcast from
/// `src`, EtherType [`ANNOUNCE_ETHERTYPE`], the heartbeat, padded to the Ethernet
/// minimum. Returns its length, or `None` when `out` is shorter than 64 bytes.
pub fn announce_frame(src: [u8; 6], hb: &Heartbeat, out: &mut [u8]) -> Option<usize> {
    const LEN: usize = 14 + HEARTBEAT_LEN;
    let frame = out.get_mut(..LEN.max(60))?;
    frame.fill(0);
    frame[..6].fill(0xff);
    frame[6..12].copy_from_slice(&src);
    frame[12..14].copy_from_slice(&ANNOUNCE_ETHERTYPE.to_be_bytes());
    frame[14..LEN].copy_from_slice(&hb.encode());
    Some(LEN.max(60))
}

/// The heartbeat in an announcement frame (Ethernet header first, any padding after);
/// `None` for a frame of another EtherType.
pub fn parse_announce(frame: &[u8]) -> Option<Result<Heartbeat, WireError>> {
    if frame.get(12..14)? != ANNOUNCE_ETHERTYPE.to_be_bytes() {
        return None;
    }
    let body = &frame[14..];
    Some(Heartbeat::decode(body.get(..HEARTBEAT_LEN).unwrap_or(body)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_engine::sync::{BatchKind, BatchWriter, BATCH_HEADER_LEN};

    fn heartbeat() -> Heartbeat {
        Heartbeat {
            role: Role::Active,
            flags: Flags(Flags::READY | Flags::DATA_OK),
            node: 0xc612_0001,
            counter: 7,
            incarnation: 1_700_000_000_000_000_000,
            epoch: 3,
            sync_sent: 1_700_000_000_000_000_042,
            sync_acked: 0,
            echo: 5,
        }
    }

    #[test]
    fn a_heartbeat_round_trips_and_its_encoding_is_canonical() {
        let hb = heartbeat();
        let bytes = hb.encode();
        assert_eq!(Heartbeat::decode(&bytes), Ok(hb));
        assert_eq!(Heartbeat::decode(&bytes).map(|h| h.encode()), Ok(bytes));
        assert!(matches!(Message::parse(&bytes), Ok(Message::Heartbeat(h)) if h == hb));
    }

    #[test]
    fn every_defect_of_a_heartbeat_is_named() {
        let good = heartbeat().encode();
        assert_eq!(
            Heartbeat::decode(&good[..3]),
            Err(WireError::Short { len: 3, need: 52 })
        );
        assert_eq!(Heartbeat::decode(&good[..51]), Err(WireError::Length(51)));
        let mut long = good.to_vec();
        long.push(0);
        assert_eq!(Heartbeat::decode(&long), Err(WireError::Length(53)));
        let mut bad = good;
        bad[4] = 2;
        assert_eq!(Heartbeat::decode(&bad), Err(WireError::Version(2)));
        let mut bad = good;
        bad[5] = 9;
        assert_eq!(Heartbeat::decode(&bad), Err(WireError::Role(9)));
        let mut bad = good;
        bad[6] |= 0x80;
        assert_eq!(Heartbeat::decode(&bad), Err(WireError::Reserved(0x80)));
        let mut bad = good;
        bad[7] = 1;
        assert_eq!(Heartbeat::decode(&bad), Err(WireError::Reserved(1)));
        let mut bad = good;
        bad[0] = b'X';
        assert_eq!(Heartbeat::decode(&bad), Err(WireError::Magic));
        assert!(matches!(Message::parse(&bad), Err(WireError::Magic)));
        assert!(matches!(
            Message::parse(b"TH"),
            Err(WireError::Short { .. })
        ));
    }

    #[test]
    fn a_datagram_is_a_heartbeat_or_a_sync_batch_by_its_magic() {
        let mut buf = [0u8; BATCH_HEADER_LEN];
        let len = BatchWriter::new(&mut buf, BatchKind::Ack, 12)
            .expect("room")
            .finish();
        match Message::parse(&buf[..len]) {
            Ok(Message::Batch(b)) => assert_eq!((b.kind, b.seq), (BatchKind::Ack, 12)),
            other => panic!("not an ack: {other:?}"),
        }
        assert!(matches!(
            Message::parse(&buf[..len - 1]),
            Err(WireError::Sync(SyncError::Short { .. }))
        ));
    }

    #[test]
    fn an_announcement_frame_carries_the_heartbeat_and_other_frames_are_not_one() {
        let hb = heartbeat();
        let mut frame = [0u8; 128];
        let len = announce_frame([2, 0, 0, 0, 0, 1], &hb, &mut frame).expect("room");
        assert_eq!(len, 66);
        assert_eq!(parse_announce(&frame[..len]), Some(Ok(hb)));
        // Padded by a NIC, still read.
        assert_eq!(parse_announce(&frame[..80]), Some(Ok(hb)));
        let mut arp = frame;
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        assert_eq!(parse_announce(&arp[..len]), None);
        assert_eq!(parse_announce(&frame[..13]), None);
        assert!(matches!(parse_announce(&frame[..20]), Some(Err(_))));
        assert_eq!(announce_frame([0; 6], &hb, &mut [0u8; 30]), None);
    }
}
