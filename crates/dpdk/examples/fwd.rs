//! Forwards packets from one port to another in an l3fwd-style burst loop on the main
//! lcore, and prints the rate: a sanity check of the binding's fast path.
//!
//! ```text
//! cargo run --release -p tandem-dpdk --example fwd -- [--secs S] [--packets N] [-- EAL ARGS]
//! ```
//!
//! Without EAL arguments it runs on lcore 0 without hugepages between two `net_null`
//! ports (`net_null0` receives generated 64-byte packets, `net_null1` frees what it
//! sends), which measures the per-packet cost of the loop itself. The first two ports
//! found are used.

use std::process::ExitCode;

use tandem_dpdk::{lcore, Burst, Eal, Mempool, Port, PortConfig, DEFAULT_DATA_ROOM};

/// What the command line asks for.
struct Args {
    secs: f64,
    packets: u64,
    eal: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        secs: 5.0,
        packets: u64::MAX,
        eal: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--secs" => {
                args.secs = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--secs wants a number of seconds")?;
            }
            "--packets" => {
                args.packets = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--packets wants a count")?;
            }
            "--" => args.eal.extend(it.by_ref()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if args.eal.is_empty() {
        let prefix = format!("tandem-fwd-{}", std::process::id());
        args.eal = [
            "-l",
            "0",
            "--no-huge",
            "-m",
            "256",
            "--no-pci",
            "--no-telemetry",
            "--file-prefix",
            &prefix,
            "--vdev",
            "net_null0",
            "--vdev",
            "net_null1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
    }
    Ok(args)
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fwd: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let eal = Eal::init(&args.eal)?;
    let ids = Port::ids();
    let (&rx_id, &tx_id) = match ids.as_slice() {
        [a, b, ..] => (a, b),
        _ => return Err("fwd needs two ports".into()),
    };
    let pool = Mempool::new_pktmbuf("fwd_pool", 8191, 256, DEFAULT_DATA_ROOM, None)?;
    let conf = PortConfig::default();
    let mut rx_port = Port::from_id(rx_id)?;
    let mut tx_port = Port::from_id(tx_id)?;
    println!("rx port {rx_id} {}: {}", rx_port.name()?, rx_port.info()?);
    println!("tx port {tx_id} {}: {}", tx_port.name()?, tx_port.info()?);
    let mut rx_setup = rx_port.configure(&conf, &pool)?;
    let mut tx_setup = tx_port.configure(&conf, &pool)?;
    rx_port.start()?;
    tx_port.start()?;
    let mut rxq = rx_setup.rx.remove(0);
    let mut txq = tx_setup.tx.remove(0);

    let hz = lcore::tsc_hz();
    let end = lcore::tsc() + (args.secs * hz as f64) as u64;
    let (mut received, mut sent, mut refused) = (0u64, 0u64, 0u64);
    let mut burst: Burst = Burst::new();
    let start = lcore::tsc();
    let mut now = start;
    while now < end && sent < args.packets {
        // Check the clock once every 256 bursts, not every burst.
        for _ in 0..256 {
            received += rxq.rx_burst(&mut burst) as u64;
            sent += txq.tx_burst(&mut burst) as u64;
            refused += burst.len() as u64;
            burst.clear();
        }
        now = lcore::tsc();
    }
    let secs = (now - start) as f64 / hz as f64;
    println!(
        "{} packets in {secs:.2} s: {:.2} Mpps ({:.1} ns/packet); received {received}, refused {refused}",
        sent,
        sent as f64 / secs / 1e6,
        secs * 1e9 / sent.max(1) as f64,
    );
    let (rs, ts) = (rx_port.stats()?, tx_port.stats()?);
    println!(
        "port stats: rx ipackets {} rx_nombuf {}, tx opackets {} oerrors {}",
        rs.ipackets, rs.rx_nombuf, ts.opackets, ts.oerrors
    );
    drop((rxq, txq, rx_setup, tx_setup));
    rx_port.close()?;
    tx_port.close()?;
    let dir = eal.runtime_dir();
    // SAFETY: every mbuf is back in the pool and every port and queue handle dropped;
    // only the Copy pool handle remains, unused from here.
    unsafe { eal.cleanup()? };
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}
