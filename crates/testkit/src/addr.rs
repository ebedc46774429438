//! The lab's hosts, as in the namespace lab (`appliance/`): one client outside, a VIP
//! and the appliance's own address on each port, and two replicas inside, all in
//! 198.18.0.0/15 (RFC 2544's benchmarking range).

use std::net::Ipv4Addr;

use tandem_wire::MacAddr;

/// The client.
pub const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
/// The service's virtual address.
pub const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
/// The appliance's address on its outside port.
pub const OUTSIDE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// The appliance's address on its inside port.
pub const INSIDE: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 1);
/// The primary replica.
pub const PRIMARY: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 11);
/// The backup replica.
pub const BACKUP: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 12);
/// The client's port.
pub const CPORT: u16 = 40000;
/// The service's port.
pub const PORT: u16 = 7000;
/// The client's MAC.
pub const CLIENT_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xc1]);
/// The primary's MAC.
pub const PRIMARY_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x11]);
/// The backup's MAC.
pub const BACKUP_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x12]);
/// The appliance's outside port, as the client addresses it.
pub const OUTSIDE_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
/// The appliance's inside port, as the replicas address it.
pub const INSIDE_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
