//! Many connections through the lab's service, as the benchmarks drive them: each a
//! client endpoint of its own and the next sequence number of every side.

use std::net::Ipv4Addr;

use crate::seg::Seg;

/// One client's connection: its endpoint, and the next sequence number of the client,
/// the primary and the backup, each in its own space.
#[derive(Clone, Copy, Debug)]
pub struct Conn {
    /// The client's address.
    pub client: Ipv4Addr,
    /// The client's port.
    pub port: u16,
    /// The client's next sequence number.
    pub c_nxt: u32,
    /// The primary's.
    pub p_nxt: u32,
    /// The backup's.
    pub b_nxt: u32,
}

impl Conn {
    /// The `i`th connection (`i` below 15 million): clients 198.18.2.2 on, 250 to a /24,
    /// ports 1024 on; the ISNs count up from the lab's handshake (client 1000, primary
    /// 50 000), the backup's from just below 2^32, so that its translation crosses the
    /// wrap.
    pub fn nth(i: usize) -> Conn {
        let i = i as u32;
        Conn {
            client: Ipv4Addr::from(0xc612_0000 | ((i / 60_000 + 2) << 8) | (i % 250 + 2)),
            port: 1024 + (i % 60_000) as u16,
            c_nxt: 1000u32.wrapping_add(i),
            p_nxt: 50_000u32.wrapping_add(i),
            b_nxt: 0xffff_ff00u32.wrapping_add(i),
        }
    }

    /// `template` for this connection's client, with the window the benchmarks have
    /// always sent (1000).
    pub fn seg(&self, template: Seg<'static>) -> Seg<'static> {
        Seg {
            window: 1000,
            ..template.for_client((self.client, self.port))
        }
    }
}
