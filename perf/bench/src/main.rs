//! `tandem-bench`: the traffic generator of Tandem's memif benchmark (issue #6; see
//! perf/README.md).
//!
//! `tandem-bench stream [OPTIONS] -- <EAL ARGS>` drives two DPDK ports, normally two
//! `net_memif` clients of the device under test: port 0 on the clients' side, port 1 on
//! the servers' side. One lcore sends TCP ACK|PSH segments of F flows on port 0, as fast
//! as the link takes them or at a set rate, each stamped with the TSC, and receives on
//! port 1, where it counts them and records their latency (same machine, same TSC) in a
//! histogram. It answers ARP for the replica address on port 1 and for the client
//! addresses on port 0, so that a device that resolves its neighbours (Tandem) can
//! forward. Each phase (warm-up, measurement, drain) writes `key=value` results and the
//! latency percentile distribution as CSV.
//!
//! `tandem-bench mirror` plays clients and two replicas through Tandem's mirror path, with
//! a failure (see `mirror.rs`). `tandem-bench profile` writes the profiles Tandem runs with
//! in the benchmarks and the lab tests (see `profile.rs`).

mod dut_latency;
mod link;
mod mirror;
mod packet;
mod profile;
mod stream;

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use tandem_wire::{Ipv4Addr, MacAddr};

/// The VIP of the benchmarks: where the generators send, what the profiles give Tandem.
const VIP: &str = "198.18.0.100";
/// The (primary) replica's address, answered for by the generators on port 1.
const PRIMARY: &str = "198.19.0.11";
/// The backup replica's address (`mirror`).
const BACKUP: &str = "198.19.0.12";

/// Command line.
#[derive(Debug, Parser)]
#[command(
    name = "tandem-bench",
    version,
    about = "Traffic generator for Tandem's memif benchmark"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Send a stamped TCP stream on port 0, receive and time it on port 1.
    Stream(StreamArgs),
    /// Play clients and two replicas through the mirror path, with a failure.
    Mirror(mirror::MirrorArgs),
    /// Write a Tandem profile for a benchmark or a lab test (YAML, on stdout).
    Profile(profile::ProfileArgs),
}

/// What `stream` does; see the crate docs.
#[derive(Debug, clap::Args)]
pub struct StreamArgs {
    /// Flows: client address/port pairs from 198.18.16.1:10000 on (4000 addresses, then
    /// the next port), sent to round-robin.
    #[arg(long, default_value_t = 1)]
    pub flows: u32,
    /// Frame size in bytes, FCS included (RFC 2544 sizes: 64 ..= 1518).
    #[arg(long, default_value_t = 64)]
    pub frame_size: usize,
    /// A phase `NAME:RATE`: RATE packets per second, 0 for as fast as port 0 takes them.
    /// Repeat for several phases, run in order.
    #[arg(long = "phase", value_parser = parse_phase, required = true)]
    pub phases: Vec<Phase>,
    /// Seconds measured per phase.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Seconds sent before each measurement (not counted): lets the device learn flows,
    /// resolve neighbours and fill its caches.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Milliseconds to keep receiving after a phase's last packet was sent.
    #[arg(long, default_value_t = 200)]
    pub drain_ms: u64,
    /// Seconds to keep the links up, idle, after the results are written (prints
    /// `tandem-bench: done` first), so that the device under test can be stopped while
    /// its links are still connected.
    #[arg(long, default_value_t = 0)]
    pub linger: u64,
    /// Destination MAC of the frames sent on port 0 (the device's port on that side).
    #[arg(long, value_parser = parse_mac)]
    pub dst_mac: MacAddr,
    /// Destination address of the stream (the VIP).
    #[arg(long, default_value = VIP)]
    pub vip: Ipv4Addr,
    /// Destination TCP port.
    #[arg(long, default_value_t = 80)]
    pub vip_port: u16,
    /// The replica address answered for in ARP on port 1.
    #[arg(long, default_value = PRIMARY)]
    pub replica: Ipv4Addr,
    /// Receive queues per port: as many as the device's transmit queues on that link
    /// (memif pairs queues by index; Tandem with one worker sends on one).
    #[arg(long, default_value_t = 1)]
    pub rx_queues: u16,
    /// Directory for the result files.
    #[arg(long)]
    pub out_dir: PathBuf,
    /// File name prefix: results go to `<out-dir>/<prefix>-<phase>.txt` and
    /// `<prefix>-<phase>.hist.csv`.
    #[arg(long)]
    pub prefix: String,
    /// The device's Prometheus metrics listener (Tandem's `management.metrics`): its own
    /// added latency over each measured window is scraped from it and written as
    /// `dut_lat_*` results (see `dut_latency.rs`).
    #[arg(long)]
    pub dut_metrics: Option<std::net::SocketAddr>,
    /// Free text written as `label=` into the results (e.g. the device under test).
    #[arg(long, default_value = "")]
    pub label: String,
    /// EAL arguments (after `--`): lcores, memory, the two `--vdev`s.
    #[arg(last = true, required = true)]
    pub eal: Vec<String>,
}

/// One phase of a stream: a name and a rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phase {
    /// Used in file names.
    pub name: String,
    /// Packets per second; 0 = as fast as possible.
    pub rate: u64,
}

fn parse_phase(s: &str) -> Result<Phase> {
    let Some((name, rate)) = s.split_once(':') else {
        bail!("phase {s:?}: expected NAME:RATE");
    };
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        bail!("phase name {name:?}: letters, digits and _ only");
    }
    let rate = rate
        .parse()
        .with_context(|| format!("phase {s:?}: rate {rate:?} is not a number of packets/s"))?;
    Ok(Phase {
        name: name.to_owned(),
        rate,
    })
}

fn parse_mac(s: &str) -> Result<MacAddr> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut mac {
        let p = parts
            .next()
            .with_context(|| format!("MAC {s:?}: too short"))?;
        *b = u8::from_str_radix(p, 16).with_context(|| format!("MAC {s:?}: byte {p:?}"))?;
    }
    if parts.next().is_some() {
        bail!("MAC {s:?}: too long");
    }
    Ok(MacAddr(mac))
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Stream(args) => stream::run(&args),
        Command::Mirror(args) => mirror::run(&args),
        Command::Profile(args) => profile::run(&args),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn phases_and_macs_parse() {
        assert_eq!(
            parse_phase("paced:1000000").unwrap(),
            Phase {
                name: "paced".into(),
                rate: 1_000_000
            }
        );
        assert!(parse_phase("x").is_err());
        assert!(parse_phase("a/b:1").is_err());
        assert!(parse_phase("a:fast").is_err());
        assert_eq!(
            parse_mac("02:00:00:aa:bb:0c").unwrap(),
            MacAddr([2, 0, 0, 0xaa, 0xbb, 0x0c])
        );
        assert!(parse_mac("02:00:00:aa:bb").is_err());
        assert!(parse_mac("02:00:00:aa:bb:0c:01").is_err());
        assert!(parse_mac("02:00:00:aa:bb:zz").is_err());
    }

    #[test]
    fn command_line_parses() {
        let cli = Cli::try_parse_from([
            "tandem-bench",
            "stream",
            "--flows",
            "10000",
            "--phase",
            "max:0",
            "--phase",
            "paced:100",
            "--dst-mac",
            "02:00:00:00:00:01",
            "--out-dir",
            "/tmp",
            "--prefix",
            "x",
            "--",
            "-l",
            "0",
        ])
        .unwrap();
        let Command::Stream(a) = cli.command else {
            panic!("stream expected");
        };
        assert_eq!(a.flows, 10000);
        assert_eq!(a.phases.len(), 2);
        assert_eq!(a.eal, ["-l", "0"]);
    }
}
