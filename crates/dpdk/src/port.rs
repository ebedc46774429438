//! Ethernet ports (`rte_ethdev`): finding, configuring, starting, statistics, and the
//! per-queue receive and transmit handles the workers own.

use std::cell::Cell;
use std::ffi::{c_char, CStr};
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};

use tandem_dpdk_sys as sys;

use crate::burst::Burst;
use crate::eal::ensure_ready;
use crate::error::{DpdkError, Result, ToResult};
use crate::mbuf::{tx_offload, Mbuf};
use crate::mempool::{c_name, Mempool};

/// RSS hash function bits (`RTE_ETH_RSS_*`) for [`PortConfig::rss_hf`].
pub mod rss {
    use tandem_dpdk_sys as sys;

    /// IPv4 addresses, any IPv4 packet.
    pub const IPV4: u64 = sys::TANDEM_RTE_ETH_RSS_IPV4;
    /// IPv4 fragments.
    pub const FRAG_IPV4: u64 = sys::TANDEM_RTE_ETH_RSS_FRAG_IPV4;
    /// IPv4 addresses and TCP ports of unfragmented TCP.
    pub const NONFRAG_IPV4_TCP: u64 = sys::TANDEM_RTE_ETH_RSS_NONFRAG_IPV4_TCP;
    /// IPv4 addresses and UDP ports of unfragmented UDP.
    pub const NONFRAG_IPV4_UDP: u64 = sys::TANDEM_RTE_ETH_RSS_NONFRAG_IPV4_UDP;
    /// Other unfragmented IPv4.
    pub const NONFRAG_IPV4_OTHER: u64 = sys::TANDEM_RTE_ETH_RSS_NONFRAG_IPV4_OTHER;
    /// IPv6 addresses.
    pub const IPV6: u64 = sys::TANDEM_RTE_ETH_RSS_IPV6;
    /// IPv6 addresses and TCP ports.
    pub const NONFRAG_IPV6_TCP: u64 = sys::TANDEM_RTE_ETH_RSS_NONFRAG_IPV6_TCP;
    /// All IP kinds (`RTE_ETH_RSS_IP`).
    pub const IP: u64 = sys::TANDEM_RTE_ETH_RSS_IP;
    /// All TCP kinds (`RTE_ETH_RSS_TCP`).
    pub const TCP: u64 = sys::TANDEM_RTE_ETH_RSS_TCP;
    /// All UDP kinds (`RTE_ETH_RSS_UDP`).
    pub const UDP: u64 = sys::TANDEM_RTE_ETH_RSS_UDP;
    /// Hash the source address only (with a protocol bit), where the port supports it.
    pub const L3_SRC_ONLY: u64 = sys::TANDEM_RTE_ETH_RSS_L3_SRC_ONLY;
    /// Hash the destination address only.
    pub const L3_DST_ONLY: u64 = sys::TANDEM_RTE_ETH_RSS_L3_DST_ONLY;
    /// Hash the source port only.
    pub const L4_SRC_ONLY: u64 = sys::TANDEM_RTE_ETH_RSS_L4_SRC_ONLY;
    /// Hash the destination port only.
    pub const L4_DST_ONLY: u64 = sys::TANDEM_RTE_ETH_RSS_L4_DST_ONLY;
}

/// Offload capability bits (`RTE_ETH_TX_OFFLOAD_*`, `RTE_ETH_RX_OFFLOAD_*`) as reported
/// in [`DevInfo`] and [`PortSetup`].
pub mod offload {
    use tandem_dpdk_sys as sys;

    /// Transmit: IPv4 header checksum.
    pub const TX_IPV4_CKSUM: u64 = sys::TANDEM_RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
    /// Transmit: TCP checksum.
    pub const TX_TCP_CKSUM: u64 = sys::TANDEM_RTE_ETH_TX_OFFLOAD_TCP_CKSUM;
    /// Transmit: UDP checksum.
    pub const TX_UDP_CKSUM: u64 = sys::TANDEM_RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
    /// Transmit: chained mbufs.
    pub const TX_MULTI_SEGS: u64 = sys::TANDEM_RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
    /// Receive: the RSS hash is delivered in the mbuf.
    pub const RX_RSS_HASH: u64 = sys::TANDEM_RTE_ETH_RX_OFFLOAD_RSS_HASH;
    /// Receive: IPv4 header checksum checked.
    pub const RX_IPV4_CKSUM: u64 = sys::TANDEM_RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
    /// Receive: TCP checksum checked.
    pub const RX_TCP_CKSUM: u64 = sys::TANDEM_RTE_ETH_RX_OFFLOAD_TCP_CKSUM;
}

/// `RTE_MAX_ETHPORTS`.
const MAX_PORTS: usize = sys::TANDEM_RTE_MAX_ETHPORTS as usize;

/// Which port ids have a [`Port`] handle; a port is claimed once per process so that its
/// queue handles are unique.
static CLAIMED: [AtomicBool; MAX_PORTS] = [const { AtomicBool::new(false) }; MAX_PORTS];

/// What a port can do (`rte_eth_dev_info`), in short.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevInfo {
    /// The driver, e.g. `net_ixgbe`, `net_null`, `net_af_packet`.
    pub driver_name: String,
    /// The most receive queues.
    pub max_rx_queues: u16,
    /// The most transmit queues.
    pub max_tx_queues: u16,
    /// The largest frame it receives.
    pub max_rx_pktlen: u32,
    /// Smallest MTU.
    pub min_mtu: u16,
    /// Largest MTU.
    pub max_mtu: u16,
    /// RSS hash functions it supports ([`rss`] bits).
    pub flow_type_rss_offloads: u64,
    /// RSS key length in bytes (0 if unknown).
    pub hash_key_size: u8,
    /// Redirection table size.
    pub reta_size: u16,
    /// Receive offloads ([`offload`] `RX_*` bits).
    pub rx_offload_capa: u64,
    /// Transmit offloads ([`offload`] `TX_*` bits).
    pub tx_offload_capa: u64,
    /// Most receive descriptors per queue.
    pub rx_desc_max: u16,
    /// Most transmit descriptors per queue.
    pub tx_desc_max: u16,
}

impl DevInfo {
    /// Whether the port computes IPv4 and TCP checksums on transmit.
    pub fn tx_checksum_capable(&self) -> bool {
        let want = offload::TX_IPV4_CKSUM | offload::TX_TCP_CKSUM;
        self.tx_offload_capa & want == want
    }
}

impl fmt::Display for DevInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "driver {} queues rx {} tx {} mtu {}..{} rss {:#x} tx-offloads {:#x} \
             rx-offloads {:#x} tx-csum {}",
            self.driver_name,
            self.max_rx_queues,
            self.max_tx_queues,
            self.min_mtu,
            self.max_mtu,
            self.flow_type_rss_offloads,
            self.tx_offload_capa,
            self.rx_offload_capa,
            if self.tx_checksum_capable() {
                "yes"
            } else {
                "no"
            },
        )
    }
}

/// How to set a port up, for [`Port::configure`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortConfig {
    /// Receive queues (one per worker).
    pub rx_queues: u16,
    /// Transmit queues (one per worker that sends on this port).
    pub tx_queues: u16,
    /// Descriptors per receive queue (adjusted to the port's limits).
    pub rx_desc: u16,
    /// Descriptors per transmit queue (adjusted to the port's limits).
    pub tx_desc: u16,
    /// RSS hash functions wanted ([`rss`] bits); masked by what the port supports, RSS
    /// is off if nothing is left.
    pub rss_hf: u64,
    /// RSS key, of the port's `hash_key_size`; `None` keeps the driver's key.
    pub rss_key: Option<Vec<u8>>,
    /// Ask for IPv4 and TCP checksum offload on transmit, if the port has both.
    pub tx_checksum_offload: bool,
    /// MTU to set; `None` keeps the port's.
    pub mtu: Option<u16>,
    /// Receive frames for any destination MAC.
    pub promiscuous: bool,
}

impl Default for PortConfig {
    /// One queue each way, 1024 descriptors, RSS on IP and TCP, checksum offload where
    /// available, MTU unchanged, not promiscuous.
    fn default() -> Self {
        PortConfig {
            rx_queues: 1,
            tx_queues: 1,
            rx_desc: 1024,
            tx_desc: 1024,
            rss_hf: rss::IP | rss::TCP,
            rss_key: None,
            tx_checksum_offload: true,
            mtu: None,
            promiscuous: false,
        }
    }
}

/// What [`Port::configure`] set up: the queue handles and the settings in effect.
#[derive(Debug)]
pub struct PortSetup {
    /// One handle per receive queue, in queue order; give each to the worker that polls
    /// it.
    pub rx: Vec<RxQueue>,
    /// One handle per transmit queue, in queue order.
    pub tx: Vec<TxQueue>,
    /// The RSS hash functions in effect (0: RSS off).
    pub rss_hf: u64,
    /// The transmit offloads in effect ([`offload`] bits).
    pub tx_offloads: u64,
    /// The receive offloads in effect.
    pub rx_offloads: u64,
    /// Descriptors per receive queue after adjustment.
    pub rx_desc: u16,
    /// Descriptors per transmit queue after adjustment.
    pub tx_desc: u16,
}

/// Link state (`rte_eth_link`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// Link up.
    pub up: bool,
    /// Speed in Mb/s (0 if unknown).
    pub speed_mbps: u32,
    /// Full duplex.
    pub full_duplex: bool,
    /// Speed negotiated.
    pub autoneg: bool,
}

/// The basic port counters (`rte_eth_stats`), since start or the last reset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Packets received.
    pub ipackets: u64,
    /// Packets sent.
    pub opackets: u64,
    /// Bytes received.
    pub ibytes: u64,
    /// Bytes sent.
    pub obytes: u64,
    /// Packets dropped by the port because the receive queues were full.
    pub imissed: u64,
    /// Erroneous packets received.
    pub ierrors: u64,
    /// Failed transmits.
    pub oerrors: u64,
    /// Receive buffer allocation failures (mempool empty).
    pub rx_nombuf: u64,
}

/// An Ethernet port, claimed by this handle for the process.
///
/// A port id is claimed once ([`by_name`](Self::by_name), [`from_id`](Self::from_id)) and
/// configured once ([`configure`](Self::configure)), so its [`RxQueue`] and [`TxQueue`]
/// handles are unique: DPDK's burst functions are not thread-safe per queue. Dropping a
/// `Port` leaves the device as it is (running, if started) and the id claimed.
///
/// `Send` (the control core may own it) and not `Sync`.
#[derive(Debug)]
pub struct Port {
    id: u16,
    configured: bool,
    _not_sync: PhantomData<Cell<()>>,
}

impl Port {
    /// Claims the port whose device name is `name` (e.g. `net_null0`, `0000:3b:00.0`).
    pub fn by_name(name: &str) -> Result<Port> {
        const CALL: &str = "rte_eth_dev_get_port_by_name";
        ensure_ready(CALL)?;
        let cname = c_name(CALL, name)?;
        let mut id = 0u16;
        // SAFETY: cname is a valid C string, id a valid out-pointer.
        unsafe { sys::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut id) }.check(CALL)?;
        Self::claim(id)
    }

    /// Claims port `id`.
    pub fn from_id(id: u16) -> Result<Port> {
        const CALL: &str = "rte_eth_dev_is_valid_port";
        ensure_ready(CALL)?;
        // SAFETY: accepts any id.
        if unsafe { sys::rte_eth_dev_is_valid_port(id) } == 0 {
            return Err(DpdkError::from_errno(CALL, libc::ENODEV));
        }
        Self::claim(id)
    }

    /// The ids of all ports DPDK found (`--vdev`s and probed devices).
    pub fn ids() -> Vec<u16> {
        if !crate::Eal::is_ready() {
            return Vec::new();
        }
        (0..MAX_PORTS as u16)
            // SAFETY: accepts any id.
            .filter(|&id| unsafe { sys::rte_eth_dev_is_valid_port(id) } != 0)
            .collect()
    }

    fn claim(id: u16) -> Result<Port> {
        let Some(flag) = CLAIMED.get(usize::from(id)) else {
            return Err(DpdkError::from_errno("Port::claim", libc::ENODEV));
        };
        if flag.swap(true, Ordering::AcqRel) {
            return Err(DpdkError::usage(
                "Port::claim",
                libc::EBUSY,
                format!("port {id} already has a Port handle"),
            ));
        }
        Ok(Port {
            id,
            configured: false,
            _not_sync: PhantomData,
        })
    }

    /// The port id.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// The device name.
    pub fn name(&self) -> Result<String> {
        let mut buf = [0 as c_char; sys::TANDEM_RTE_ETH_NAME_MAX_LEN as usize];
        // SAFETY: buf has the RTE_ETH_NAME_MAX_LEN bytes the call may write.
        unsafe { sys::rte_eth_dev_get_name_by_port(self.id, buf.as_mut_ptr()) }
            .check("rte_eth_dev_get_name_by_port")?;
        // SAFETY: the call wrote a NUL-terminated name into buf.
        Ok(unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned())
    }

    /// The NUMA socket of the device, `None` if unknown (virtual devices).
    pub fn socket_id(&self) -> Option<u32> {
        // SAFETY: any valid port id.
        let s = unsafe { sys::rte_eth_dev_socket_id(self.id) };
        u32::try_from(s).ok()
    }

    /// The port's capabilities.
    pub fn info(&self) -> Result<DevInfo> {
        let raw = self.raw_info()?;
        let driver_name = if raw.driver_name.is_null() {
            String::new()
        } else {
            // SAFETY: the driver name is a static NUL-terminated string of the driver.
            unsafe { CStr::from_ptr(raw.driver_name) }
                .to_string_lossy()
                .into_owned()
        };
        Ok(DevInfo {
            driver_name,
            max_rx_queues: raw.max_rx_queues,
            max_tx_queues: raw.max_tx_queues,
            max_rx_pktlen: raw.max_rx_pktlen,
            min_mtu: raw.min_mtu,
            max_mtu: raw.max_mtu,
            flow_type_rss_offloads: raw.flow_type_rss_offloads,
            hash_key_size: raw.hash_key_size,
            reta_size: raw.reta_size,
            rx_offload_capa: raw.rx_offload_capa,
            tx_offload_capa: raw.tx_offload_capa,
            rx_desc_max: raw.rx_desc_lim.nb_max,
            tx_desc_max: raw.tx_desc_lim.nb_max,
        })
    }

    fn raw_info(&self) -> Result<sys::rte_eth_dev_info> {
        let mut info = sys::rte_eth_dev_info::default();
        // SAFETY: info is a valid out-struct for the call.
        unsafe { sys::rte_eth_dev_info_get(self.id, &mut info) }.check("rte_eth_dev_info_get")?;
        Ok(info)
    }

    /// Configures the port (queues, descriptors, RSS, offloads, MTU, promiscuous mode) and
    /// sets its receive queues up to fill from `pool`. Once per port: a second call fails
    /// with `EALREADY`, so that the queue handles stay unique. Start the port afterwards.
    pub fn configure(&mut self, conf: &PortConfig, pool: &Mempool) -> Result<PortSetup> {
        if self.configured {
            return Err(DpdkError::usage(
                "Port::configure",
                libc::EALREADY,
                format!("port {} is already configured", self.id),
            ));
        }
        let info = self.raw_info()?;

        let mut eth = sys::rte_eth_conf::default();
        let rss_hf = conf.rss_hf & info.flow_type_rss_offloads;
        // The key must outlive rte_eth_dev_configure, which copies it.
        let mut key = conf.rss_key.clone();
        if rss_hf != 0 {
            eth.rxmode.mq_mode = sys::RTE_ETH_MQ_RX_RSS;
            eth.rx_adv_conf.rss_conf.rss_hf = rss_hf;
            if let Some(key) = key.as_mut() {
                let len = u8::try_from(key.len())
                    .ok()
                    .filter(|&l| l != 0 && (info.hash_key_size == 0 || l == info.hash_key_size));
                let Some(len) = len else {
                    return Err(DpdkError::usage(
                        "Port::configure",
                        libc::EINVAL,
                        format!(
                            "RSS key of {} bytes, port {} wants {}",
                            key.len(),
                            self.id,
                            info.hash_key_size
                        ),
                    ));
                };
                eth.rx_adv_conf.rss_conf.rss_key = key.as_mut_ptr();
                eth.rx_adv_conf.rss_conf.rss_key_len = len;
            }
            eth.rxmode.offloads |= info.rx_offload_capa & offload::RX_RSS_HASH;
        } else {
            eth.rxmode.mq_mode = sys::RTE_ETH_MQ_RX_NONE;
        }
        if conf.tx_checksum_offload {
            let want = offload::TX_IPV4_CKSUM | offload::TX_TCP_CKSUM;
            if info.tx_offload_capa & want == want {
                eth.txmode.offloads |= want;
            }
        }

        // SAFETY: eth is a valid configuration; the key it points to is alive.
        unsafe { sys::rte_eth_dev_configure(self.id, conf.rx_queues, conf.tx_queues, &eth) }
            .check("rte_eth_dev_configure")?;
        drop(key);

        let (mut rx_desc, mut tx_desc) = (conf.rx_desc, conf.tx_desc);
        // SAFETY: valid out-pointers to the counts.
        unsafe { sys::rte_eth_dev_adjust_nb_rx_tx_desc(self.id, &mut rx_desc, &mut tx_desc) }
            .check("rte_eth_dev_adjust_nb_rx_tx_desc")?;

        // Queues in the device's memory where it has a socket (SOCKET_ID_ANY is -1, and
        // the setup calls take it as unsigned).
        let socket = self.socket_id().unwrap_or(sys::SOCKET_ID_ANY as u32);
        for q in 0..conf.rx_queues {
            // SAFETY: q < the configured count; NULL rx_conf takes the driver's defaults
            // plus the port's offloads; the pool lives for the process.
            unsafe {
                sys::rte_eth_rx_queue_setup(
                    self.id,
                    q,
                    rx_desc,
                    socket,
                    std::ptr::null(),
                    pool.as_ptr(),
                )
            }
            .check("rte_eth_rx_queue_setup")?;
        }
        for q in 0..conf.tx_queues {
            // SAFETY: as for receive; NULL tx_conf takes the driver's defaults.
            unsafe { sys::rte_eth_tx_queue_setup(self.id, q, tx_desc, socket, std::ptr::null()) }
                .check("rte_eth_tx_queue_setup")?;
        }
        if let Some(mtu) = conf.mtu {
            self.set_mtu(mtu)?;
        }
        self.set_promiscuous(conf.promiscuous)?;

        self.configured = true;
        Ok(PortSetup {
            rx: (0..conf.rx_queues)
                .map(|queue| RxQueue {
                    port: self.id,
                    queue,
                    _not_sync: PhantomData,
                })
                .collect(),
            tx: (0..conf.tx_queues)
                .map(|queue| TxQueue {
                    port: self.id,
                    queue,
                    _not_sync: PhantomData,
                })
                .collect(),
            rss_hf,
            tx_offloads: eth.txmode.offloads,
            rx_offloads: eth.rxmode.offloads,
            rx_desc,
            tx_desc,
        })
    }

    /// Programs the RSS redirection table so that entry `i` sends to queue
    /// `i % queues` (`rte_eth_dev_rss_reta_update`): two ports given the same key, hash
    /// fields and queue count then send the same hash to the same queue index, whatever
    /// their drivers' defaults. Returns the table's size.
    pub fn spread_reta(&mut self, queues: u16) -> Result<u16> {
        const CALL: &str = "rte_eth_dev_rss_reta_update";
        let size = self.raw_info()?.reta_size;
        if size == 0 || queues == 0 {
            return Err(DpdkError::usage(
                CALL,
                libc::ENOTSUP,
                format!("port {} has no redirection table", self.id),
            ));
        }
        let group = sys::TANDEM_RTE_ETH_RETA_GROUP_SIZE as usize;
        let mut conf =
            vec![sys::rte_eth_rss_reta_entry64::default(); usize::from(size).div_ceil(group)];
        for i in 0..usize::from(size) {
            let e = &mut conf[i / group];
            e.mask |= 1u64 << (i % group);
            // i % queues < queues <= u16::MAX.
            e.reta[i % group] = (i % usize::from(queues)) as u16;
        }
        // SAFETY: conf holds size entries' worth of groups, as the call reads.
        unsafe { sys::rte_eth_dev_rss_reta_update(self.id, conf.as_mut_ptr(), size) }
            .check(CALL)?;
        Ok(size)
    }

    /// The RSS redirection table in effect (`rte_eth_dev_rss_reta_query`): entry `i` →
    /// queue.
    pub fn reta(&self) -> Result<Vec<u16>> {
        const CALL: &str = "rte_eth_dev_rss_reta_query";
        let size = self.raw_info()?.reta_size;
        let group = sys::TANDEM_RTE_ETH_RETA_GROUP_SIZE as usize;
        let mut conf =
            vec![sys::rte_eth_rss_reta_entry64::default(); usize::from(size).div_ceil(group)];
        for e in conf.iter_mut() {
            e.mask = u64::MAX;
        }
        // SAFETY: conf holds size entries' worth of groups, as the call writes.
        unsafe { sys::rte_eth_dev_rss_reta_query(self.id, conf.as_mut_ptr(), size) }.check(CALL)?;
        Ok((0..usize::from(size))
            .map(|i| conf[i / group].reta[i % group])
            .collect())
    }

    /// The RSS hash functions and key in effect (`rte_eth_dev_rss_hash_conf_get`), read
    /// back from the device.
    pub fn rss_conf(&self) -> Result<(u64, Vec<u8>)> {
        const CALL: &str = "rte_eth_dev_rss_hash_conf_get";
        let len = self.raw_info()?.hash_key_size;
        let mut key = vec![0u8; usize::from(len.max(40))];
        let mut conf = sys::rte_eth_rss_conf {
            rss_key: key.as_mut_ptr(),
            rss_key_len: len,
            ..Default::default()
        };
        // SAFETY: conf points at a key buffer of at least rss_key_len bytes.
        unsafe { sys::rte_eth_dev_rss_hash_conf_get(self.id, &mut conf) }.check(CALL)?;
        key.truncate(usize::from(conf.rss_key_len.min(len.max(40))));
        Ok((conf.rss_hf, key))
    }

    /// Starts the port: its queues begin to receive and send.
    pub fn start(&mut self) -> Result<()> {
        // SAFETY: any valid port id; DPDK checks the configuration.
        unsafe { sys::rte_eth_dev_start(self.id) }
            .check("rte_eth_dev_start")
            .map(drop)
    }

    /// Stops the port. Its queue handles stay valid: bursts on a stopped port return
    /// nothing (DPDK swaps in dummy burst functions).
    pub fn stop(&mut self) -> Result<()> {
        // SAFETY: any valid port id.
        unsafe { sys::rte_eth_dev_stop(self.id) }
            .check("rte_eth_dev_stop")
            .map(drop)
    }

    /// Stops (if needed) and closes the port, releasing its queues; the port id stays
    /// claimed. Workers must be done with its queue handles (bursts on a closed port
    /// return nothing).
    pub fn close(mut self) -> Result<()> {
        // A stopped port refuses a second stop with an error we do not care about.
        let _ = self.stop();
        // SAFETY: any valid port id.
        unsafe { sys::rte_eth_dev_close(self.id) }
            .check("rte_eth_dev_close")
            .map(drop)
    }

    /// Sets the MTU (bytes of L3 packet, not counting the Ethernet header).
    pub fn set_mtu(&mut self, mtu: u16) -> Result<()> {
        // SAFETY: any valid port id.
        unsafe { sys::rte_eth_dev_set_mtu(self.id, mtu) }
            .check("rte_eth_dev_set_mtu")
            .map(drop)
    }

    /// Turns promiscuous mode on or off.
    pub fn set_promiscuous(&mut self, on: bool) -> Result<()> {
        // SAFETY: any valid port id.
        let rc = unsafe {
            if on {
                sys::rte_eth_promiscuous_enable(self.id)
            } else {
                sys::rte_eth_promiscuous_disable(self.id)
            }
        };
        match rc.check("rte_eth_promiscuous_enable/disable") {
            // Drivers without the operation (virtual ones) are as good as promiscuous.
            Err(e) if e.errno() == libc::ENOTSUP => Ok(()),
            other => other.map(drop),
        }
    }

    /// The port's MAC address.
    pub fn mac_addr(&self) -> Result<[u8; 6]> {
        let mut addr = sys::rte_ether_addr::default();
        // SAFETY: valid out-pointer.
        unsafe { sys::rte_eth_macaddr_get(self.id, &mut addr) }.check("rte_eth_macaddr_get")?;
        Ok(addr.addr_bytes)
    }

    /// The link state, without waiting for negotiation.
    pub fn link(&self) -> Result<Link> {
        let mut link = sys::rte_eth_link::default();
        // SAFETY: valid out-pointer.
        unsafe { sys::rte_eth_link_get_nowait(self.id, &mut link) }
            .check("rte_eth_link_get_nowait")?;
        Ok(Link {
            up: u32::from(link.link_status()) == sys::RTE_ETH_LINK_UP,
            speed_mbps: link.link_speed,
            full_duplex: u32::from(link.link_duplex()) == sys::RTE_ETH_LINK_FULL_DUPLEX,
            autoneg: link.link_autoneg() != 0,
        })
    }

    /// The basic counters.
    pub fn stats(&self) -> Result<PortStats> {
        let mut s = sys::rte_eth_stats::default();
        // SAFETY: valid out-pointer.
        unsafe { sys::rte_eth_stats_get(self.id, &mut s) }.check("rte_eth_stats_get")?;
        Ok(PortStats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            ibytes: s.ibytes,
            obytes: s.obytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        })
    }

    /// Zeroes the basic counters.
    pub fn reset_stats(&mut self) -> Result<()> {
        // SAFETY: any valid port id.
        unsafe { sys::rte_eth_stats_reset(self.id) }
            .check("rte_eth_stats_reset")
            .map(drop)
    }

    /// One extended counter by its name (as listed by [`xstats`](Self::xstats)).
    pub fn xstat(&self, name: &str) -> Result<u64> {
        const CALL: &str = "rte_eth_xstats_get_id_by_name";
        let cname = c_name(CALL, name)?;
        let mut id = 0u64;
        // SAFETY: valid C string and out-pointer.
        unsafe { sys::rte_eth_xstats_get_id_by_name(self.id, cname.as_ptr(), &mut id) }
            .check(CALL)?;
        let mut value = 0u64;
        // SAFETY: one id in, room for one value out.
        unsafe { sys::rte_eth_xstats_get_by_id(self.id, &id, &mut value, 1) }
            .check("rte_eth_xstats_get_by_id")?;
        Ok(value)
    }

    /// All extended counters, by name (allocates; for the control core).
    pub fn xstats(&self) -> Result<Vec<(String, u64)>> {
        xstats_of(self.id)
    }

    /// A handle that reads this port's counters from another thread (the control core),
    /// while the port itself stays with whoever starts, stops and closes it.
    pub fn stats_reader(&self) -> StatsReader {
        StatsReader {
            id: self.id,
            _not_sync: PhantomData,
        }
    }
}

/// Reads one port's counters ([`Port::stats_reader`]): `Send`, not `Sync` and not
/// `Clone`, so that one thread at a time reads them (DPDK's statistics calls are not
/// thread-safe against each other on one port; against the bursts of the workers they
/// are: a value read is at worst one burst old).
///
/// After its port is closed, reads fail (`ENODEV`); DPDK's table of ports is static, so a
/// read never touches freed memory.
#[derive(Debug)]
pub struct StatsReader {
    id: u16,
    _not_sync: PhantomData<Cell<()>>,
}

impl StatsReader {
    /// The port id.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// All extended counters, by DPDK's names (allocates).
    pub fn xstats(&self) -> Result<Vec<(String, u64)>> {
        xstats_of(self.id)
    }
}

/// All extended counters of port `id`, by name.
fn xstats_of(id: u16) -> Result<Vec<(String, u64)>> {
    // SAFETY: a NULL array with size 0 asks for the count.
    let n = unsafe { sys::rte_eth_xstats_get_names(id, std::ptr::null_mut(), 0) }
        .check("rte_eth_xstats_get_names")?;
    let n = n as usize;
    let mut names = vec![sys::rte_eth_xstat_name::default(); n];
    // SAFETY: names has room for n entries.
    let got = unsafe { sys::rte_eth_xstats_get_names(id, names.as_mut_ptr(), n as u32) }
        .check("rte_eth_xstats_get_names")? as usize;
    let mut values = vec![sys::rte_eth_xstat::default(); n];
    // SAFETY: values has room for n entries.
    let got_values = unsafe { sys::rte_eth_xstats_get(id, values.as_mut_ptr(), n as u32) }
        .check("rte_eth_xstats_get")? as usize;
    Ok(values
        .iter()
        .take(got_values.min(n))
        .filter_map(|v| {
            let name = names
                .get(usize::try_from(v.id).ok()?)
                .filter(|_| got <= n)?;
            // SAFETY: DPDK NUL-terminates the names it writes; the array is zeroed
            // otherwise, so it is NUL-terminated either way.
            let name = unsafe { CStr::from_ptr(name.name.as_ptr()) };
            Some((name.to_string_lossy().into_owned(), v.value))
        })
        .collect())
}

/// The receive side of one queue of one port, owned by the worker that polls it.
///
/// `Send` (moved to the worker's lcore), not `Sync` and not `Clone`: DPDK's receive
/// function is not thread-safe per queue, and [`Port::configure`] makes one handle per
/// queue.
#[derive(Debug)]
pub struct RxQueue {
    port: u16,
    queue: u16,
    _not_sync: PhantomData<Cell<()>>,
}

impl RxQueue {
    /// The port id.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The queue index.
    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Receives up to `out.remaining()` packets, appended to `out`
    /// (`rte_eth_rx_burst`). Returns how many came. No allocation.
    #[inline]
    pub fn rx_burst<const N: usize>(&mut self, out: &mut Burst<Mbuf, N>) -> usize {
        let room = out.remaining().min(usize::from(u16::MAX)) as u16;
        // SAFETY: the spare slots have room for `room` mbuf pointers (Mbuf is a
        // transparent non-null pointer); this handle is the queue's only user; the queue
        // was set up by configure (a stopped or closed port has dummy functions that
        // return 0). The received mbufs are handed over to us, non-null.
        unsafe {
            let dst = out.spare_ptr().cast::<*mut sys::rte_mbuf>();
            let n = usize::from(sys::tandem_rte_eth_rx_burst(
                self.port, self.queue, dst, room,
            ));
            out.grow(n);
            n
        }
    }
}

/// The transmit side of one queue of one port, owned by one worker.
///
/// `Send`, not `Sync`, not `Clone`, for the same reason as [`RxQueue`].
#[derive(Debug)]
pub struct TxQueue {
    port: u16,
    queue: u16,
    _not_sync: PhantomData<Cell<()>>,
}

impl TxQueue {
    /// The port id.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The queue index.
    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Sends packets from the front of `pkts` (`rte_eth_tx_burst`): the sent ones leave
    /// `pkts` (the driver frees them once transmitted), the ones the queue refused stay,
    /// moved to the front, for the caller to retry or drop and count, as l3fwd does.
    /// Returns how many were sent.
    #[inline]
    pub fn tx_burst<const N: usize>(&mut self, pkts: &mut Burst<Mbuf, N>) -> usize {
        let len = pkts.len().min(usize::from(u16::MAX)) as u16;
        // SAFETY: the first `len` slots hold owned mbufs (transparent pointers); this
        // handle is the queue's only user. The driver takes ownership of the first n it
        // reports sent, which forget_front removes without freeing.
        unsafe {
            let src = pkts.as_mut_ptr().cast::<*mut sys::rte_mbuf>();
            let n = usize::from(sys::tandem_rte_eth_tx_burst(
                self.port, self.queue, src, len,
            ));
            pkts.forget_front(n);
            n
        }
    }

    /// Prepares packets with transmit offload flags for the port (`rte_eth_tx_prepare`:
    /// writes the pseudo-header checksums the hardware needs, checks limits). Returns how
    /// many packets from the front are ready; if fewer than all, the next one is invalid
    /// for this port (or its data is shared, which preparing would write), and
    /// [`rte_errno`](crate::rte_errno) says why.
    pub fn prepare<const N: usize>(&mut self, pkts: &mut Burst<Mbuf, N>) -> usize {
        let flags = tx_offload::IP_CKSUM | tx_offload::TCP_CKSUM | tx_offload::UDP_CKSUM;
        let ok = pkts
            .iter()
            .position(|m| m.ol_flags() & flags != 0 && !m.is_writable())
            .unwrap_or(pkts.len())
            .min(usize::from(u16::MAX)) as u16;
        // SAFETY: the first `ok` slots hold owned mbufs with unshared data where the
        // preparation may write; ownership does not change.
        unsafe {
            let p = pkts.as_mut_ptr().cast::<*mut sys::rte_mbuf>();
            usize::from(sys::tandem_rte_eth_tx_prepare(self.port, self.queue, p, ok))
        }
    }
}
