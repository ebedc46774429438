//! Flow affinity (DESIGN §4): which worker owns a flow, so that both directions of it
//! reach the one flow table that holds it.
//!
//! A flow is owned according to its client's address and port alone: the source fields
//! of a segment arriving on the outside port, the destination fields of one arriving on
//! the inside port (replies from a replica go back to the client's own address and
//! port). Two ways to get every frame to its owner:
//!
//! - **RSS**: the port hashes exactly those fields (`L3_SRC_ONLY | L4_SRC_ONLY` outside,
//!   `L3_DST_ONLY | L4_DST_ONLY` inside) with the same key and the same redirection table
//!   on both ports, so a flow's two directions land in the same queue index, and the
//!   worker that polls queue `k` on both ports owns them. Nothing is done per packet.
//!   [`RssModel`] computes what such a port computes (Toeplitz, [`toeplitz`]), for the
//!   tests and for operators checking a NIC.
//! - **Hand-off**: where the driver cannot hash like that (`net_af_packet` fans frames
//!   out by the kernel's flow hash, which sees the replica's address on one side and the
//!   VIP on the other), each worker computes the owner of every frame it receives in
//!   software ([`owner`]) and passes frames it does not own to their owner over a
//!   single-producer single-consumer ring.
//!
//! On the hand-off path frames of one direction of a flow can arrive out of order when
//! the port spreads one direction over two queues (`net_af_packet` rolls frames over to
//! another queue when one is full) and one of them is handed off: TCP copes, as with any
//! reordering network.
//!
//! Frames that belong to no flow (ARP, ICMP, anything not TCP over unfragmented IPv4,
//! and TCP addressed to the appliance's own port addresses: health-probe answers) are
//! handled where they arrive: they go to the control core either way, and probe answers
//! must not wait in a hand-off ring behind the horizon the receiving worker reports.

use tandem_wire::EtherType;

use crate::hash::{client_hash, siphash13_u64, HashKey};
use crate::output::Side;

/// The client end of a flow as seen in one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientEnd {
    /// Client IPv4 address (host order).
    pub ip: u32,
    /// Client TCP port.
    pub port: u16,
}

/// Ethernet header length without and with one 802.1Q tag.
const ETH_LEN: usize = 14;
const ETH_VLAN_LEN: usize = 18;

/// The client end of the TCP flow `frame` belongs to, arriving on `side`; `None` for a
/// frame that belongs to no flow (not TCP over unfragmented IPv4, truncated, or addressed
/// to one of `own`, the appliance's port addresses).
///
/// Reads only the few header bytes it needs, without validating more: a malformed frame
/// is judged by the engine of whichever worker gets it.
#[inline]
pub fn client_end(frame: &[u8], side: Side, own: [u32; 2]) -> Option<ClientEnd> {
    let ether = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    let l3 = if ether == EtherType::VLAN {
        let inner = u16::from_be_bytes([*frame.get(16)?, *frame.get(17)?]);
        if inner != EtherType::IPV4 {
            return None;
        }
        ETH_VLAN_LEN
    } else if ether == EtherType::IPV4 {
        ETH_LEN
    } else {
        return None;
    };
    let ip = frame.get(l3..l3 + 20)?;
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    if side == Side::Outside && ip[9] == 1 {
        return quoted_client_end(frame.get(l3 + ihl..)?);
    }
    // Version 4, TCP, not a fragment (offset 0, no more-fragments bit): only those carry
    // the ports.
    if ip[0] >> 4 != 4 || ihl < 20 || ip[9] != 6 || u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0
    {
        return None;
    }
    let src = u32::from_be_bytes([ip[12], ip[13], ip[14], ip[15]]);
    let dst = u32::from_be_bytes([ip[16], ip[17], ip[18], ip[19]]);
    let ports = frame.get(l3 + ihl..l3 + ihl + 4)?;
    let (sport, dport) = (
        u16::from_be_bytes([ports[0], ports[1]]),
        u16::from_be_bytes([ports[2], ports[3]]),
    );
    if own.contains(&dst) {
        return None;
    }
    Some(match side {
        Side::Outside => ClientEnd {
            ip: src,
            port: sport,
        },
        Side::Inside => ClientEnd {
            ip: dst,
            port: dport,
        },
    })
}

/// The client end of an ICMP error (`icmp`: the message) from the client's path: the
/// destination of the TCP segment it quotes, one Tandem sent a client. So that "fragmentation
/// needed" reaches the worker that owns the flow (the engine translates it, §3.11). On the
/// RSS path the port hashes it as it likes: there it finds its flow only on one worker.
fn quoted_client_end(icmp: &[u8]) -> Option<ClientEnd> {
    if !matches!(icmp.first()?, 3 | 4 | 11 | 12) {
        return None;
    }
    let inner = icmp.get(8..28)?;
    let ihl = usize::from(inner[0] & 0x0f) * 4;
    if inner[9] != 6 || ihl < 20 {
        return None;
    }
    let ports = icmp.get(8 + ihl..8 + ihl + 4)?;
    Some(ClientEnd {
        ip: u32::from_be_bytes([inner[16], inner[17], inner[18], inner[19]]),
        port: u16::from_be_bytes([ports[2], ports[3]]),
    })
}

/// The worker (0..`workers`) that owns the flows of client end `c` on the hand-off path.
///
/// The low half of the flow table's own hash under the same `key` (the engines'
/// [`EngineConfig::hash_key`](crate::EngineConfig)), reduced by multiply-shift (its top
/// bits pick the worker): the table indexes its buckets with the lowest bits, which stay
/// independent of the owner below 2^30 buckets, so each worker's table still spreads its
/// share of the flows over all of its buckets. Keyed, so that nobody outside can aim a
/// flood of endpoints at one worker.
#[inline]
pub fn owner(c: ClientEnd, workers: usize, key: &HashKey) -> usize {
    let low = client_hash(key, c.ip, c.port) & 0xffff_ffff;
    ((low * workers as u64) >> 32) as usize
}

/// The owner of `frame` received on `side` by worker `me`: `me` itself for a frame that
/// belongs to no flow.
#[inline]
pub fn frame_owner(
    frame: &[u8],
    side: Side,
    own: [u32; 2],
    me: usize,
    workers: usize,
    key: &HashKey,
) -> usize {
    match client_end(frame, side, own) {
        Some(c) => owner(c, workers, key),
        None => me,
    }
}

/// The Toeplitz hash of `input` under `key` (Microsoft's RSS hash, which NICs compute):
/// for each set bit of the input, most significant first, the 32 key bits starting at
/// that bit position are XORed into the result. `key` must be at least
/// `input.len() + 4` bytes; missing key bytes count as zero.
pub fn toeplitz(key: &[u8], input: &[u8]) -> u32 {
    let byte = |i: usize| key.get(i).copied().unwrap_or(0);
    let mut window = u32::from_be_bytes([byte(0), byte(1), byte(2), byte(3)]);
    let mut hash = 0u32;
    for (i, &b) in input.iter().enumerate() {
        let next = byte(i + 4);
        for bit in 0..8 {
            if b & (0x80 >> bit) != 0 {
                hash ^= window;
            }
            window = (window << 1) | u32::from((next >> (7 - bit)) & 1);
        }
    }
    hash
}

/// The RSS key Tandem gives both ports, `len` bytes drawn from `seed` (the start's
/// random [`HashKey`]): any key works as long as both ports have the same one, and a
/// key nobody outside knows keeps an attacker from aiming a flood of client endpoints at
/// one queue (drivers' default, Microsoft's published key, is known to everyone).
pub fn rss_key(len: usize, seed: &HashKey) -> Vec<u8> {
    (0..len.div_ceil(8) as u64)
        .flat_map(|i| siphash13_u64(seed, i).to_le_bytes())
        .take(len)
        .collect()
}

/// Microsoft's RSS verification key (40 bytes).
pub const RSS_DEFAULT_KEY: [u8; 40] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

/// What a port does with RSS configured the way Tandem configures it: the Toeplitz hash
/// of the client's address and port (the only fields it is told to hash), then the
/// redirection table, whose entry `i` is queue `i % queues`.
#[derive(Clone, Debug)]
pub struct RssModel {
    key: Vec<u8>,
    reta: Vec<u16>,
}

impl RssModel {
    /// A port with `key`, a redirection table of `reta_size` entries and `queues`
    /// receive queues (both at least 1).
    pub fn new(key: Vec<u8>, reta_size: u16, queues: u16) -> RssModel {
        let queues = queues.max(1);
        RssModel {
            key,
            reta: (0..reta_size.max(1)).map(|i| i % queues).collect(),
        }
    }

    /// A port with `key` and the redirection table `reta` (entry `i` → queue), as read
    /// back from a started port; an empty table is one entry, queue 0.
    pub fn from_parts(key: Vec<u8>, reta: Vec<u16>) -> RssModel {
        let reta = if reta.is_empty() { vec![0] } else { reta };
        RssModel { key, reta }
    }

    /// The receive queue `frame` lands in, arriving on `side`; `None` for a frame whose
    /// fields the hash does not cover (the port's own default queue, 0, in practice).
    pub fn queue(&self, frame: &[u8], side: Side) -> Option<u16> {
        self.queue_of(client_end(frame, side, [0, 0])?)
    }

    /// The receive queue of the frames of client end `c` (see [`RssModel::queue`]).
    pub fn queue_of(&self, c: ClientEnd) -> Option<u16> {
        let mut input = [0u8; 6];
        input[..4].copy_from_slice(&c.ip.to_be_bytes());
        input[4..].copy_from_slice(&c.port.to_be_bytes());
        let h = toeplitz(&self.key, &input);
        // Ports index the table with the hash's low bits.
        self.reta.get(h as usize % self.reta.len()).copied()
    }

    /// The redirection table: entry `i` → queue.
    pub fn reta(&self) -> &[u16] {
        &self.reta
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toeplitz_matches_microsofts_verification_suite() {
        // Microsoft's "Verifying the RSS hash calculation" vectors for IPv4 (source
        // 66.9.149.187:2794, destination 161.142.100.80:1766), with their default key.
        let src = [66u8, 9, 149, 187];
        let dst = [161u8, 142, 100, 80];
        let mut ip_only = Vec::new();
        ip_only.extend_from_slice(&src);
        ip_only.extend_from_slice(&dst);
        assert_eq!(toeplitz(&RSS_DEFAULT_KEY, &ip_only), 0x323e_8fc2);
        let mut tcp = ip_only.clone();
        tcp.extend_from_slice(&2794u16.to_be_bytes());
        tcp.extend_from_slice(&1766u16.to_be_bytes());
        assert_eq!(toeplitz(&RSS_DEFAULT_KEY, &tcp), 0x51cc_c178);
        // A second vector of the same suite: 199.92.111.2:14230 → 65.69.140.83:4739.
        let mut v2 = vec![199u8, 92, 111, 2, 65, 69, 140, 83];
        assert_eq!(toeplitz(&RSS_DEFAULT_KEY, &v2), 0xd718_262a);
        v2.extend_from_slice(&14230u16.to_be_bytes());
        v2.extend_from_slice(&4739u16.to_be_bytes());
        assert_eq!(toeplitz(&RSS_DEFAULT_KEY, &v2), 0xc626_b0ea);
    }

    #[test]
    fn the_rss_key_has_the_ports_length_and_follows_the_starts_random_key() {
        let a = HashKey::random().expect("getrandom");
        let b = HashKey::random().expect("getrandom");
        let k = rss_key(52, &a);
        assert_eq!(k.len(), 52);
        assert_eq!(k, rss_key(52, &a), "one key for both ports");
        assert_ne!(k, rss_key(52, &b), "another start, another key");
        assert_ne!(&k[..40], &RSS_DEFAULT_KEY[..]);
    }

    #[test]
    fn owners_spread_evenly() {
        let key = HashKey::random().expect("getrandom");
        for workers in [2usize, 3, 4, 8] {
            let mut n = vec![0u32; workers];
            for i in 0..80_000u32 {
                let c = ClientEnd {
                    ip: 0xc612_0000 | (i >> 4),
                    port: 40_000 + (i & 15) as u16,
                };
                n[owner(c, workers, &key)] += 1;
            }
            let fair = 80_000 / workers as u32;
            for (w, &k) in n.iter().enumerate() {
                assert!(
                    k > fair * 9 / 10 && k < fair * 11 / 10,
                    "{workers} workers: worker {w} owns {k} of 80000"
                );
            }
        }
    }
}
