//! Which way both directions of a flow reach the worker that owns it (DESIGN §4), chosen
//! from what the two ports can do, and the hand-off rings when they cannot.
//!
//! | Path | When | Per packet |
//! |------|------|------------|
//! | [`Affinity::Single`] | one worker | nothing |
//! | [`Affinity::Rss`] | `lcores.affinity: auto`; both ports have the same driver, the same queue count, redirection table size and key size, and advertise TCP/IPv4 hashing on chosen fields (`L3_SRC_ONLY`, `L4_SRC_ONLY`, `L3_DST_ONLY`, `L4_DST_ONLY` in `flow_type_rss_offloads`; in DPDK 22.11 `net_mlx5`, `net_hns3`, `net_cnxk`); every worker polls the same queue indices on both ports; and the settings read back from both ports after start agree | nothing: outside hashes the source fields, inside the destination fields, same key and table on both |
//! | [`Affinity::HandOff`] | every other case: `net_af_packet` (the kernel's fan-out hash), `net_af_xdp`, `net_ixgbe`, `net_ice` and `net_i40e` (in 22.11 they hash chosen fields only through `rte_flow` rules, not used yet), `net_virtio`, `net_vmxnet3`, `net_memif`, `net_tap`, …, or `lcores.affinity: hand-off` | the receiving worker computes the owner and passes it frames it does not own over an SPSC ring |
//!
//! On the hand-off path a port with RSS still spreads frames over its queues by its
//! usual hash (so every worker receives), and the owner is [`tandem_engine::affinity::owner`].
//! The RSS path also assumes that a port hashing "source fields only" and one hashing
//! "destination fields only" feed the Toeplitz hash the same bytes for the same address
//! and port; no NIC in the lab can show it. `lcores.affinity: hand-off` is the way out
//! when a NIC does otherwise (`no_flow` drops on the inside port would show it).

use std::fmt;

use tandem_config::{PortRole, Profile};
use tandem_dpdk::{ring, rss, DevInfo, Mbuf, Port};
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

/// Whether every worker of `profile` polls the same receive queue indices on both ports,
/// which have as many queues each: then queue `k` of both ports is one worker's.
pub fn plan_aligned(profile: &Profile) -> bool {
    profile.ports.outside.queues == profile.ports.inside.queues
        && profile.worker_plan().iter().all(|w| {
            let queues = |role: PortRole| {
                let mut q: Vec<u16> =
                    w.rx.iter()
                        .filter(|(r, _)| *r == role)
                        .map(|(_, q)| *q)
                        .collect();
                q.sort_unstable();
                q
            };
            queues(PortRole::Outside) == queues(PortRole::Inside)
        })
}

/// The path for `profile` over ports with the capabilities `outside`, `inside`, and why.
pub fn choose(profile: &Profile, outside: &DevInfo, inside: &DevInfo) -> (Affinity, &'static str) {
    let workers = profile.lcores.workers.len();
    if workers <= 1 {
        return (Affinity::Single, "one worker");
    }
    if profile.lcores.affinity == tandem_config::Affinity::HandOff {
        return (Affinity::HandOff, "lcores.affinity is hand-off");
    }
    if !(rss_capable(outside) && rss_capable(inside)) {
        return (
            Affinity::HandOff,
            "a port cannot hash TCP on the client's fields alone",
        );
    }
    // Same driver, table and key size: the same field layout and queue for a hash.
    if outside.driver_name != inside.driver_name
        || outside.hash_key_size != inside.hash_key_size
        || outside.reta_size != inside.reta_size
    {
        return (
            Affinity::HandOff,
            "the two ports differ in driver, key or redirection table size",
        );
    }
    if profile.ports.outside.queues < 2 || !plan_aligned(profile) {
        return (
            Affinity::HandOff,
            "the workers do not poll the same queue indices on both ports",
        );
    }
    (Affinity::Rss, "both ports hash the client's fields")
}

/// Sets both ports' redirection tables to `i → i % queues` and reads back what is in
/// effect: the client fields hashed on each port, one key, one table. An error says what
/// differs; the caller hands frames off instead.
pub fn settle_rss(outside: &mut Port, inside: &mut Port, queues: u16) -> Result<(), String> {
    let mut keys = Vec::with_capacity(2);
    let mut tables = Vec::with_capacity(2);
    for (role, port) in [(PortRole::Outside, outside), (PortRole::Inside, inside)] {
        port.spread_reta(queues)
            .map_err(|e| format!("ports.{role}: setting the redirection table: {e}"))?;
        let (hf, key) = port
            .rss_conf()
            .map_err(|e| format!("ports.{role}: reading the RSS settings: {e}"))?;
        let want = client_fields(role);
        if hf & want != want {
            return Err(format!(
                "ports.{role}: hashes {hf:#x}, not the client fields {want:#x}"
            ));
        }
        keys.push(key);
        tables.push(
            port.reta()
                .map_err(|e| format!("ports.{role}: reading the redirection table: {e}"))?,
        );
    }
    if keys[0] != keys[1] {
        return Err("the two ports have different RSS keys".to_owned());
    }
    if tables[0] != tables[1] || tables[0].is_empty() {
        return Err("the two ports have different redirection tables".to_owned());
    }
    Ok(())
}

/// The RSS settings (hash fields, key) for a port of `role` on path `a`.
pub fn rss_settings(
    a: Affinity,
    role: PortRole,
    queues: u16,
    info: &DevInfo,
    key: &tandem_engine::HashKey,
) -> (u64, Option<Vec<u8>>) {
    match a {
        Affinity::Rss => (
            client_fields(role) | (rss::IPV4 & info.flow_type_rss_offloads),
            Some(tandem_engine::affinity::rss_key(
                usize::from(info.hash_key_size),
                key,
            )),
        ),
        // Spread over the queues by the port's usual hash; the workers sort it out.
        Affinity::HandOff | Affinity::Single if queues > 1 => {
            (rss::IPV4 | rss::NONFRAG_IPV4_TCP, None)
        }
        _ => (0, None),
    }
}

/// Most workers on the hand-off path: each ordered pair has two rings, each a DPDK
/// memzone, and DPDK 22.11 has 2560 memzones for everything.
pub const MAX_HANDOFF_WORKERS: usize = 32;

/// The hand-off rings of `workers` workers (at most [`MAX_HANDOFF_WORKERS`]), as each
/// worker's [`HandOff`] (index = worker id); `own` is the appliance's address on each
/// side (outside, inside), host order.
pub fn handoff_rings(
    workers: usize,
    own: [u32; 2],
    key: &tandem_engine::HashKey,
) -> tandem_dpdk::Result<Vec<HandOff>> {
    let mut hs: Vec<HandOff> = (0..workers)
        .map(|_| HandOff {
            workers,
            own,
            key: *key,
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

    /// A profile of `workers` workers over `queues` queues per port, derived plan.
    fn profile(workers: u32, queues: u16, explicit: Option<&str>) -> Profile {
        let list: Vec<String> = (1..=workers).map(|w| w.to_string()).collect();
        let text = format!(
            "eal: {{ args: [--no-huge, --no-pci, --vdev, net_null0, --vdev, net_null1] }}\n\
             lcores: {{ control: 0, workers: [{}] }}\n\
             ports:\n  outside: {{ device: net_null0, address: 198.18.0.1/24, queues: {queues} }}\n  \
             inside: {{ device: net_null1, address: 198.19.0.1/24, queues: {queues} }}\n{}\
             services:\n  - {{ name: s, vip: 198.18.0.100, port: 80, replicas: [{{ name: a, address: 198.19.0.11 }}] }}\n",
            list.join(", "),
            explicit.unwrap_or("")
        );
        tandem_config::parse("test.yaml", &text).expect("a valid profile")
    }

    #[test]
    fn the_path_follows_what_the_ports_can_do() {
        let all = client_fields(PortRole::Outside) | client_fields(PortRole::Inside) | rss::IPV4;
        // DPDK 22.11's masks: mlx5 advertises the *_ONLY bits; ice, i40e and ixgbe do not.
        let mlx5 = info("net_mlx5", all, 512, 40);
        let ice = info("net_ice", rss::IPV4 | rss::NONFRAG_IPV4_TCP, 512, 52);
        let af_packet = info("net_af_packet", 0, 0, 0);
        let p4 = profile(4, 4, None);
        assert_eq!(
            choose(&profile(1, 1, None), &mlx5, &mlx5).0,
            Affinity::Single
        );
        assert_eq!(choose(&p4, &mlx5, &mlx5).0, Affinity::Rss);
        assert_eq!(
            choose(&p4, &ice, &ice).0,
            Affinity::HandOff,
            "no *_ONLY fields"
        );
        assert_eq!(
            choose(&profile(2, 2, None), &af_packet, &af_packet).0,
            Affinity::HandOff
        );
        assert_eq!(
            choose(&p4, &mlx5, &ice).0,
            Affinity::HandOff,
            "one port cannot"
        );
        let hns3 = info("net_hns3", all, 512, 40);
        assert_eq!(
            choose(&p4, &mlx5, &hns3).0,
            Affinity::HandOff,
            "two drivers"
        );
        assert_eq!(
            choose(&p4, &info("net_mlx5", all, 0, 40), &mlx5).0,
            Affinity::HandOff,
            "no redirection table"
        );
        assert_eq!(
            choose(&p4, &info("net_mlx5", all, 256, 40), &mlx5).0,
            Affinity::HandOff,
            "tables of two sizes"
        );
        // 3 workers over 4 queues: the derived plan gives outside q0 and inside q0 to
        // different workers.
        assert!(!plan_aligned(&profile(3, 4, None)));
        assert_eq!(
            choose(&profile(3, 4, None), &mlx5, &mlx5).0,
            Affinity::HandOff
        );
        // configs/appliance-2port.yaml's plan: lcores 1, 2 poll the outside queues, 3, 4
        // the inside ones.
        let split = "workers:\n  - { lcore: 1, port: outside, queue: 0 }\n  \
                     - { lcore: 2, port: outside, queue: 1 }\n  - { lcore: 3, port: inside, queue: 0 }\n  \
                     - { lcore: 4, port: inside, queue: 1 }\n";
        let p = profile(4, 2, Some(split));
        assert!(!plan_aligned(&p));
        assert_eq!(choose(&p, &mlx5, &mlx5).0, Affinity::HandOff);
        let mut forced = p4.clone();
        forced.lcores.affinity = tandem_config::Affinity::HandOff;
        assert_eq!(choose(&forced, &mlx5, &mlx5).0, Affinity::HandOff);
    }

    #[test]
    fn rss_settings_hash_the_client_end_with_one_key() {
        let all = client_fields(PortRole::Outside) | client_fields(PortRole::Inside) | rss::IPV4;
        let mlx5 = info("net_mlx5", all, 512, 52);
        let key = tandem_engine::HashKey::random().expect("getrandom");
        let (out_hf, out_key) = rss_settings(Affinity::Rss, PortRole::Outside, 4, &mlx5, &key);
        let (in_hf, in_key) = rss_settings(Affinity::Rss, PortRole::Inside, 4, &mlx5, &key);
        assert_eq!(out_hf & (rss::L3_DST_ONLY | rss::L4_DST_ONLY), 0);
        assert_eq!(in_hf & (rss::L3_SRC_ONLY | rss::L4_SRC_ONLY), 0);
        assert_ne!(out_hf & rss::L4_SRC_ONLY, 0);
        assert_ne!(in_hf & rss::L4_DST_ONLY, 0);
        assert_eq!(out_key, in_key);
        assert_eq!(out_key.map(|k| k.len()), Some(52));
        let ixgbe = info("net_ixgbe", rss::IPV4 | rss::NONFRAG_IPV4_TCP, 128, 40);
        assert_eq!(
            rss_settings(Affinity::HandOff, PortRole::Inside, 4, &ixgbe, &key).1,
            None
        );
        assert_eq!(
            rss_settings(Affinity::Single, PortRole::Inside, 1, &ixgbe, &key).0,
            0
        );
    }
}
