//! Which way both directions of a flow reach the worker that owns it (DESIGN §4), chosen
//! from what the two ports can do, and the hand-off rings when they cannot.
//!
//! | Path | When | Per packet |
//! |------|------|------------|
//! | [`Affinity::Single`] | one worker | nothing |
//! | [`Affinity::Rss`] | both ports have the same driver, a redirection table, a settable key and hash TCP/IPv4 on chosen fields (`L3_SRC_ONLY`, `L4_SRC_ONLY`, `L3_DST_ONLY`, `L4_DST_ONLY` in their `flow_type_rss_offloads`): in DPDK 22.11 `net_ice`, `net_i40e`, `net_mlx5` | nothing: outside hashes the source fields, inside the destination fields, same key and table on both |
//! | [`Affinity::HandOff`] | every other driver: `net_af_packet` (the kernel's fan-out hash), `net_af_xdp`, `net_ixgbe`, `net_virtio`, `net_vmxnet3`, `net_memif`, `net_tap`, … | the receiving worker computes the owner and passes it frames it does not own over an SPSC ring |
//!
//! On the hand-off path a port with RSS still spreads frames over its queues by its
//! usual hash (so every worker receives), and the owner is [`tandem_engine::affinity::owner`].

use std::fmt;

use tandem_config::PortRole;
use tandem_dpdk::{ring, rss, DevInfo, Mbuf};
use tandem_engine::Side;

use crate::worker::{HandOff, HANDOFF_RING_SIZE};

/// How flows reach their owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Affinity {
    /// One worker owns every flow.
    Single,
    /// The ports' RSS hashes the client's fields only: no work per packet.
    Rss,
    /// Workers pass each other the frames they do not own.
    HandOff,
}

impl fmt::Display for Affinity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Affinity::Single => "single worker",
            Affinity::Rss => "rss",
            Affinity::HandOff => "hand-off",
        })
    }
}

/// The RSS fields that make a port of `role` hash a flow's client end only.
pub fn client_fields(role: PortRole) -> u64 {
    rss::NONFRAG_IPV4_TCP
        | match role {
            PortRole::Outside => rss::L3_SRC_ONLY | rss::L4_SRC_ONLY,
            PortRole::Inside => rss::L3_DST_ONLY | rss::L4_DST_ONLY,
        }
}

/// Whether a port can hash like [`client_fields`] for both roles, with a table and key
/// Tandem can set.
fn rss_capable(info: &DevInfo) -> bool {
    let want = client_fields(PortRole::Outside) | client_fields(PortRole::Inside);
    info.flow_type_rss_offloads & want == want && info.reta_size > 0 && info.hash_key_size > 0
}

/// The path for `workers` workers over ports with `queues` receive queues each and the
/// capabilities `outside`, `inside`.
pub fn choose(workers: usize, queues: u16, outside: &DevInfo, inside: &DevInfo) -> Affinity {
    if workers <= 1 {
        Affinity::Single
    } else if queues > 1
        && rss_capable(outside)
        && rss_capable(inside)
        // Same driver: the same field layout in the hash input on both ports.
        && outside.driver_name == inside.driver_name
        && outside.hash_key_size == inside.hash_key_size
    {
        Affinity::Rss
    } else {
        Affinity::HandOff
    }
}

/// The RSS settings (hash fields, key) for a port of `role` on path `a`.
pub fn rss_settings(
    a: Affinity,
    role: PortRole,
    queues: u16,
    info: &DevInfo,
) -> (u64, Option<Vec<u8>>) {
    match a {
        Affinity::Rss => (
            client_fields(role) | (rss::IPV4 & info.flow_type_rss_offloads),
            Some(tandem_engine::affinity::rss_key(usize::from(
                info.hash_key_size,
            ))),
        ),
        // Spread over the queues by the port's usual hash; the workers sort it out.
        Affinity::HandOff | Affinity::Single if queues > 1 => {
            (rss::IPV4 | rss::NONFRAG_IPV4_TCP, None)
        }
        _ => (0, None),
    }
}

/// The hand-off rings of `workers` workers, as each worker's [`HandOff`] (index = worker
/// id); `own` is the appliance's address on each side (outside, inside), host order.
pub fn handoff_rings(workers: usize, own: [u32; 2]) -> tandem_dpdk::Result<Vec<HandOff>> {
    let mut hs: Vec<HandOff> = (0..workers)
        .map(|_| HandOff {
            workers,
            own,
            to: (0..workers).map(|_| None).collect(),
            from: Vec::with_capacity(2 * workers.saturating_sub(1)),
        })
        .collect();
    for from in 0..workers {
        for to in 0..workers {
            if from == to {
                continue;
            }
            let name = |tag: &str| format!("tandem_ho{from}_{to}{tag}");
            let (out_p, out_c) = ring::spsc::<Mbuf>(&name("o"), HANDOFF_RING_SIZE, None)?;
            let (in_p, in_c) = ring::spsc::<Mbuf>(&name("i"), HANDOFF_RING_SIZE, None)?;
            hs[to].from.push((Side::Outside, out_c));
            hs[to].from.push((Side::Inside, in_c));
            hs[from].to[to] = Some([out_p, in_p]);
        }
    }
    Ok(hs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(driver: &str, rss: u64, reta: u16, key: u8) -> DevInfo {
        DevInfo {
            driver_name: driver.to_owned(),
            max_rx_queues: 8,
            max_tx_queues: 8,
            max_rx_pktlen: 9000,
            min_mtu: 68,
            max_mtu: 9000,
            flow_type_rss_offloads: rss,
            hash_key_size: key,
            reta_size: reta,
            rx_offload_capa: 0,
            tx_offload_capa: 0,
            rx_desc_max: 4096,
            tx_desc_max: 4096,
        }
    }

    #[test]
    fn the_path_follows_what_the_ports_can_do() {
        let all = client_fields(PortRole::Outside) | client_fields(PortRole::Inside) | rss::IPV4;
        let ice = info("net_ice", all, 512, 52);
        let ixgbe = info("net_ixgbe", rss::IPV4 | rss::NONFRAG_IPV4_TCP, 128, 40);
        let af_packet = info("net_af_packet", 0, 0, 0);
        assert_eq!(choose(1, 4, &ice, &ice), Affinity::Single);
        assert_eq!(choose(4, 4, &ice, &ice), Affinity::Rss);
        assert_eq!(
            choose(4, 4, &ixgbe, &ixgbe),
            Affinity::HandOff,
            "no *_ONLY fields"
        );
        assert_eq!(choose(2, 2, &af_packet, &af_packet), Affinity::HandOff);
        assert_eq!(
            choose(4, 4, &ice, &ixgbe),
            Affinity::HandOff,
            "one port cannot"
        );
        let i40e = info("net_i40e", all, 512, 52);
        assert_eq!(choose(4, 4, &ice, &i40e), Affinity::HandOff, "two drivers");
        assert_eq!(
            choose(4, 4, &info("net_ice", all, 0, 52), &ice),
            Affinity::HandOff,
            "no redirection table"
        );
    }

    #[test]
    fn rss_settings_hash_the_client_end_with_one_key() {
        let all = client_fields(PortRole::Outside) | client_fields(PortRole::Inside) | rss::IPV4;
        let ice = info("net_ice", all, 512, 52);
        let (out_hf, out_key) = rss_settings(Affinity::Rss, PortRole::Outside, 4, &ice);
        let (in_hf, in_key) = rss_settings(Affinity::Rss, PortRole::Inside, 4, &ice);
        assert_eq!(out_hf & (rss::L3_DST_ONLY | rss::L4_DST_ONLY), 0);
        assert_eq!(in_hf & (rss::L3_SRC_ONLY | rss::L4_SRC_ONLY), 0);
        assert_ne!(out_hf & rss::L4_SRC_ONLY, 0);
        assert_ne!(in_hf & rss::L4_DST_ONLY, 0);
        assert_eq!(out_key, in_key);
        assert_eq!(out_key.map(|k| k.len()), Some(52));
        let ixgbe = info("net_ixgbe", rss::IPV4 | rss::NONFRAG_IPV4_TCP, 128, 40);
        assert_eq!(
            rss_settings(Affinity::HandOff, PortRole::Inside, 4, &ixgbe).1,
            None
        );
        assert_eq!(
            rss_settings(Affinity::Single, PortRole::Inside, 1, &ixgbe).0,
            0
        );
    }
}
