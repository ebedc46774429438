//! The generator's side of the two memif links: ports 0 and 1, claimed, configured,
//! started and up; shared by `stream` and `mirror`.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tandem_dpdk::{Mempool, Port, PortConfig, RxQueue, TxQueue};
use tandem_wire::MacAddr;

/// How long the links may take to come up.
const LINK_WAIT: Duration = Duration::from_secs(15);

/// The two ports and their queues.
pub struct Link {
    /// Port 0 (the client side) and port 1 (the replicas' side).
    pub ports: [Port; 2],
    /// Each port's receive queues.
    pub rx: [Vec<RxQueue>; 2],
    /// Each port's transmit queue.
    pub tx: [TxQueue; 2],
    /// Each port's MAC.
    pub macs: [MacAddr; 2],
}

/// Claims ports 0 and 1, configures one transmit queue and `rx_queues` receive queues on
/// each, starts them and waits for both links.
pub fn open(rx_queues: u16, pool: &Mempool) -> Result<Link> {
    let mut ports = Vec::new();
    let mut rx = Vec::new();
    let mut tx = Vec::new();
    let mut macs = Vec::new();
    for id in 0..2u16 {
        let mut port = Port::from_id(id)
            .with_context(|| format!("port {id}: two --vdev ports are needed in the EAL args"))?;
        let conf = PortConfig {
            rx_queues,
            tx_queues: 1,
            rx_desc: 1024,
            tx_desc: 1024,
            rss_hf: 0,
            rss_key: None,
            tx_checksum_offload: false,
            mtu: None,
            promiscuous: true,
        };
        let setup = port
            .configure(&conf, pool)
            .with_context(|| format!("port {id}: configure"))?;
        port.start().with_context(|| format!("port {id}: start"))?;
        macs.push(MacAddr(
            port.mac_addr().with_context(|| format!("port {id}: MAC"))?,
        ));
        rx.push(setup.rx);
        tx.extend(setup.tx.into_iter().take(1));
        ports.push(port);
    }
    let deadline = Instant::now() + LINK_WAIT;
    for p in &ports {
        loop {
            if p.link().context("link state")?.up {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "port {} ({}): link not up after {:?} (is the device's memif server running?)",
                    p.id(),
                    p.name().unwrap_or_default(),
                    LINK_WAIT
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let (Ok(ports), Ok(rx), Ok(tx), Ok(macs)) = (
        <[Port; 2]>::try_from(ports),
        <[Vec<RxQueue>; 2]>::try_from(rx),
        <[TxQueue; 2]>::try_from(tx),
        <[MacAddr; 2]>::try_from(macs),
    ) else {
        bail!("two ports with one transmit queue each were expected");
    };
    Ok(Link {
        ports,
        rx,
        tx,
        macs,
    })
}

/// Writes a results file.
pub fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
