//! `tandem-bench profile`: the Tandem profiles that the benchmarks and the lab tests run,
//! built as typed [`Profile`]s and written as YAML by [`Profile::to_yaml`] on stdout, once
//! tandem-config's validation (what `tandem check` runs) has accepted the text.
//!
//! - `forward` and `mirror`: Tandem between the two memif links of the benchmarks
//!   (perf/run.sh, perf/mirror.sh, perf/pktgen/run.sh). The script gives the EAL
//!   arguments (after `--`, the same ones it gives dpdk-testpmd), the lcores, the
//!   management socket and metrics listener; the rest is fixed here, and the addresses
//!   are the generators' defaults.
//! - `from FILE`: a profile (the lab's, `configs/lab.yaml`) with some values changed, for
//!   the end-to-end tests that need a variant of it (appliance/e2e/), reconnect-mode
//!   variants included (`--mode`, `--replay`, `--replay-limit`).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tandem_config::{
    parse_duration, parse_size, Affinity, Device, Eal, Health, Ipv4Cidr, Lcores, Limits, LogFormat,
    Logging, Management, Mode, NoReplica, Port, Ports, Profile, Replay, ReplayScope, Replica,
    Selection, Service, ServicePort, Timeouts, WorkerAssignment,
};

/// What `profile` makes.
#[derive(Debug, clap::Args)]
pub struct ProfileArgs {
    #[command(subcommand)]
    kind: Kind,
}

#[derive(Debug, clap::Subcommand)]
enum Kind {
    /// Forward mode, one replica, no probing (perf/run.sh, perf/pktgen/run.sh).
    Forward {
        #[command(flatten)]
        memif: MemifArgs,
        /// The replica's address (the one `tandem-bench stream` answers ARP for).
        #[arg(long, default_value = crate::PRIMARY)]
        replica: Ipv4Addr,
        /// Flow table capacity of the worker (`limits.flows_per_worker`).
        #[arg(long, default_value_t = 65536)]
        flows_per_worker: u32,
    },
    /// Mirror mode, two copies, ordered selection: a primary and a backup probed on the
    /// service port (perf/mirror.sh, against `tandem-bench mirror`).
    Mirror {
        #[command(flatten)]
        memif: MemifArgs,
        /// The primary replica's address.
        #[arg(long, default_value = crate::PRIMARY)]
        primary: Ipv4Addr,
        /// The backup replica's address.
        #[arg(long, default_value = crate::BACKUP)]
        backup: Ipv4Addr,
    },
    /// A profile file with values changed (the lab's variants in appliance/e2e/).
    From(FromArgs),
}

/// What the memif profiles take from the script.
#[derive(Debug, clap::Args)]
struct MemifArgs {
    /// The control lcore: the EAL main lcore.
    #[arg(long, default_value_t = 0)]
    control: u32,
    /// The worker lcore.
    #[arg(long, default_value_t = 1)]
    worker: u32,
    /// The VIP.
    #[arg(long, default_value = crate::VIP)]
    vip: Ipv4Addr,
    /// The service's TCP ports: a port, a range like 8000-8100, or `any`.
    #[arg(long, default_value = "80")]
    port: ServicePort,
    /// The management socket (an absolute path).
    #[arg(long)]
    socket: PathBuf,
    /// The Prometheus metrics listener, `address:port`; off when not given.
    #[arg(long)]
    metrics: Option<SocketAddr>,
    /// EAL arguments (after `--`); their `--vdev`s create `net_memif0` (outside) and
    /// `net_memif1` (inside).
    #[arg(last = true, required = true)]
    eal: Vec<String>,
}

/// `from`: the changes, each to every service where it is a service's value.
#[derive(Debug, clap::Args)]
struct FromArgs {
    /// The profile to start from.
    base: PathBuf,
    /// Worker lcores (`lcores.workers`); the queues are assigned to them as a profile
    /// without `workers` gets them.
    #[arg(long, value_delimiter = ',')]
    workers: Vec<u32>,
    /// Receive queues of each port; a `net_af_packet` port's `--vdev` gets `qpairs=N` to
    /// match.
    #[arg(long)]
    queues: Option<u16>,
    /// Replaces the EAL's lcore option (`-l`, `-c` or `--lcores`) with `--lcores MAP`.
    #[arg(long)]
    eal_lcores: Option<String>,
    /// Runs the EAL on MB megabytes of hugepages: drops `--no-huge` and sets `-m MB`, so
    /// that a DPDK secondary process (`dpdk-dumpcap`) can attach (appliance/e2e/capture.sh).
    #[arg(long, value_name = "MB")]
    hugepages: Option<u32>,
    /// Only these replicas, in this order (names).
    #[arg(long, value_delimiter = ',')]
    replicas: Vec<String>,
    /// Replicas drained (`drain: true`; names).
    #[arg(long, value_delimiter = ',')]
    drain: Vec<String>,
    /// `selection`: spread or ordered.
    #[arg(long, value_parser = parse_selection)]
    selection: Option<Selection>,
    /// `health.probe_ports`.
    #[arg(long, value_delimiter = ',')]
    probe_ports: Vec<u16>,
    /// `health.output_lag` (0: off).
    #[arg(long, value_parser = parse_duration)]
    output_lag: Option<Duration>,
    /// `verify`: on or off (the standbys' output checked against the active's).
    #[arg(long, value_parser = parse_on_off)]
    verify: Option<bool>,
    /// `mode`: mirror or reconnect. Reconnect sets `copies: 1`; mirror from another mode
    /// sets the default copies (2, or 1 for a pool of one) and drops the replay settings
    /// mirror mode does not take (methods, exclude_headers, fin_hold: back to defaults).
    #[arg(long, value_parser = parse_mode)]
    mode: Option<Mode>,
    /// `replay.scope`: stream or http1 (reconnect mode only).
    #[arg(long, value_parser = parse_scope)]
    replay: Option<ReplayScope>,
    /// `replay.limit`: client bytes logged per flow, like 65536 or 64KiB (0: none, mirror
    /// mode only).
    #[arg(long, value_parser = parse_size)]
    replay_limit: Option<u64>,
    /// `timeouts.synack_wait`.
    #[arg(long, value_parser = parse_duration)]
    synack_wait: Option<Duration>,
    /// A second service, `NAME=VIP`: the first one's copy (after the changes above)
    /// under that name and VIP.
    #[arg(long, value_parser = parse_named_vip)]
    add_service: Option<(String, Ipv4Addr)>,
    /// `logging.format`: human or json.
    #[arg(long, value_parser = parse_log_format)]
    log_format: Option<LogFormat>,
    /// `port`: a port, a range like 8000-8100, or `any`.
    #[arg(long)]
    port: Option<ServicePort>,
    /// `no_replica`: reset or drop.
    #[arg(long, value_parser = parse_no_replica)]
    no_replica: Option<NoReplica>,
}

/// The appliance's address on the clients' link: a /16, for the generators' clients from
/// 198.18.16.1 on.
const OUTSIDE: Ipv4Cidr = Ipv4Cidr {
    address: Ipv4Addr::new(198, 18, 0, 1),
    prefix_len: 16,
};
/// The appliance's address on the replicas' link.
const INSIDE: Ipv4Cidr = Ipv4Cidr {
    address: Ipv4Addr::new(198, 19, 0, 1),
    prefix_len: 24,
};
/// The memif benchmarks' packet buffers: far more than their rings and hold queue need.
const MBUFS: u32 = 32767;

/// Makes the profile, checks it as `tandem check` would and writes it on stdout.
pub fn run(args: &ProfileArgs) -> Result<()> {
    let text = yaml(&build(&args.kind)?)?;
    let command: Vec<String> = std::env::args().skip(1).collect();
    print!(
        "# Made by `tandem-bench {}` (perf/bench/src/profile.rs).\n{text}",
        command.join(" ")
    );
    Ok(())
}

/// The profile as YAML, refused unless tandem-config's validation accepts it.
fn yaml(profile: &Profile) -> Result<String> {
    let text = profile.to_yaml()?;
    if let Err(e) = tandem_config::parse("(the profile made)", &text) {
        bail!("the profile made is not valid:\n{e}\n--- the profile:\n{text}");
    }
    Ok(text)
}

fn build(kind: &Kind) -> Result<Profile> {
    match kind {
        Kind::Forward {
            memif,
            replica,
            flows_per_worker,
        } => {
            let service = Service {
                name: "bench".into(),
                vip: memif.vip,
                port: memif.port,
                mode: Mode::Forward,
                copies: 1,
                selection: Selection::Spread,
                // Forward mode has no standby to check.
                verify: false,
                // Nor anything to replay.
                replay: Replay::default(),
                replicas: vec![Replica {
                    name: "r1".into(),
                    address: *replica,
                    drain: false,
                }],
                // No probe ports: the generator answers no SYN.
                health: Health::default(),
                // Forward mode drops a segment with no live replica either way.
                no_replica: NoReplica::Drop,
            };
            let limits = Limits {
                flows_per_worker: *flows_per_worker,
                // Forward mode holds nothing back.
                hold_segments_total: 4096,
                mbufs: MBUFS,
                syn_backlog: Limits::default().syn_backlog.min(flows_per_worker / 2),
                ..Limits::default()
            };
            Ok(memif_profile(memif, service, limits))
        }
        Kind::Mirror {
            memif,
            primary,
            backup,
        } => {
            let probe = memif
                .port
                .single()
                .context("mirror mode probes the service port: give --port one port")?;
            let service = Service {
                name: "bench".into(),
                vip: memif.vip,
                port: memif.port,
                mode: Mode::Mirror,
                copies: 2,
                selection: Selection::Ordered,
                // The generator's replicas answer alike: the check's cost is measured.
                verify: true,
                replay: Replay::default(),
                replicas: vec![
                    Replica {
                        name: "primary".into(),
                        address: *primary,
                        drain: false,
                    },
                    Replica {
                        name: "backup".into(),
                        address: *backup,
                        drain: false,
                    },
                ],
                health: Health {
                    probe_ports: vec![probe],
                    ..Health::default()
                },
                no_replica: NoReplica::default(),
            };
            let limits = Limits {
                flows_per_worker: 65536,
                hold_bytes_total: 32 << 20,
                hold_segments_total: 16384,
                mbufs: MBUFS,
                ..Limits::default()
            };
            Ok(memif_profile(memif, service, limits))
        }
        Kind::From(args) => from(args),
    }
}

/// Tandem between the two memif links: one worker, one queue per port, one service.
fn memif_profile(m: &MemifArgs, service: Service, limits: Limits) -> Profile {
    let ports = Ports {
        outside: Port::new(Device::Virtual("net_memif0".into()), OUTSIDE),
        inside: Port::new(Device::Virtual("net_memif1".into()), INSIDE),
    };
    let lcores = Lcores {
        control: m.control,
        workers: vec![m.worker],
        affinity: Affinity::Auto,
    };
    Profile {
        eal: Eal {
            args: m.eal.clone(),
        },
        workers: WorkerAssignment::derived(&lcores.workers, &ports),
        lcores,
        ports,
        services: vec![service],
        timeouts: Timeouts::default(),
        limits,
        management: Management {
            socket: m.socket.clone(),
            metrics: m.metrics,
            group: None,
        },
        logging: Logging::default(),
        ha: None,
    }
}

/// `NAME=VIP`.
fn parse_named_vip(v: &str) -> Result<(String, Ipv4Addr), String> {
    let (name, vip) = v
        .split_once('=')
        .ok_or_else(|| format!("`{v}`: NAME=VIP"))?;
    let vip = vip
        .parse()
        .map_err(|_| format!("`{vip}` is not an IPv4 address"))?;
    Ok((name.to_owned(), vip))
}

fn from(args: &FromArgs) -> Result<Profile> {
    let mut p = tandem_config::load(&args.base)?;
    if let Some(map) = &args.eal_lcores {
        set_eal_lcores(&mut p.eal.args, map);
    }
    if let Some(mb) = args.hugepages {
        set_hugepages(&mut p.eal.args, mb);
    }
    if let Some(n) = args.queues {
        p.ports.outside.queues = n;
        p.ports.inside.queues = n;
        set_af_packet_qpairs(&mut p.eal.args, n);
    }
    if !args.workers.is_empty() {
        p.lcores.workers.clone_from(&args.workers);
    }
    if args.queues.is_some() || !args.workers.is_empty() {
        p.workers = WorkerAssignment::derived(&p.lcores.workers, &p.ports);
    }
    for s in &mut p.services {
        if !args.replicas.is_empty() {
            s.replicas = args
                .replicas
                .iter()
                .map(|name| {
                    s.replicas
                        .iter()
                        .find(|r| &r.name == name)
                        .cloned()
                        .with_context(|| format!("service {} has no replica {name}", s.name))
                })
                .collect::<Result<_>>()?;
        }
        for name in &args.drain {
            s.replicas
                .iter_mut()
                .find(|r| &r.name == name)
                .with_context(|| format!("service {} has no replica {name}", s.name))?
                .drain = true;
        }
        if let Some(selection) = args.selection {
            s.selection = selection;
        }
        if !args.probe_ports.is_empty() {
            s.health.probe_ports.clone_from(&args.probe_ports);
        }
        if let Some(lag) = args.output_lag {
            s.health.output_lag = (!lag.is_zero()).then_some(lag);
        }
        if let Some(verify) = args.verify {
            s.verify = verify;
        }
        match args.mode {
            Some(Mode::Reconnect) => {
                s.mode = Mode::Reconnect;
                s.copies = 1;
            }
            Some(Mode::Mirror) if s.mode != Mode::Mirror => {
                s.mode = Mode::Mirror;
                s.copies = u8::try_from(s.replicas.len())
                    .unwrap_or(u8::MAX)
                    .clamp(1, 2);
                let defaults = Replay::default();
                s.replay.methods = defaults.methods;
                s.replay.exclude_headers = defaults.exclude_headers;
                s.replay.fin_hold = defaults.fin_hold;
            }
            _ => {}
        }
        if let Some(scope) = args.replay {
            s.replay.scope = scope;
        }
        if let Some(limit) = args.replay_limit {
            s.replay.limit = limit;
        }
        if let Some(port) = args.port {
            s.port = port;
        }
        if let Some(action) = args.no_replica {
            s.no_replica = action;
        }
    }
    if let Some(wait) = args.synack_wait {
        p.timeouts.synack_wait = wait;
    }
    if let Some((name, vip)) = &args.add_service {
        let mut s = p
            .services
            .first()
            .cloned()
            .context("the profile has no service to copy")?;
        s.name.clone_from(name);
        s.vip = *vip;
        p.services.push(s);
    }
    if let Some(format) = args.log_format {
        p.logging.format = format;
    }
    Ok(p)
}

/// Replaces the lcore option (`-l`, `-c`, `--lcores`, joined or not) with `--lcores MAP`,
/// where it was (first when there was none).
fn set_eal_lcores(args: &mut Vec<String>, map: &str) {
    let mut out: Vec<String> = Vec::with_capacity(args.len() + 2);
    let mut at = None;
    let mut it = args.drain(..);
    while let Some(a) = it.next() {
        let separate = matches!(a.as_str(), "-l" | "-c" | "--lcores");
        let joined = a.starts_with("--lcores=")
            || (!a.starts_with("--")
                && a.len() > 2
                && (a.starts_with("-l") || a.starts_with("-c")));
        if separate || joined {
            if separate {
                it.next();
            }
            at.get_or_insert(out.len());
        } else {
            out.push(a);
        }
    }
    drop(it);
    let at = at.unwrap_or(0);
    out.splice(at..at, ["--lcores".to_owned(), map.to_owned()]);
    *args = out;
}

/// Drops `--no-huge` and the memory options (`-m`, `--socket-mem`, joined or not), then
/// puts `-m MB` where the first of them was (first when there was none).
fn set_hugepages(args: &mut Vec<String>, mb: u32) {
    let mut out: Vec<String> = Vec::with_capacity(args.len() + 2);
    let mut at = None;
    let mut it = args.drain(..);
    while let Some(a) = it.next() {
        let separate = matches!(a.as_str(), "-m" | "--socket-mem");
        let joined = a.starts_with("--socket-mem=") || (a.starts_with("-m") && a.len() > 2);
        if separate || joined || a == "--no-huge" {
            if separate {
                it.next();
            }
            at.get_or_insert(out.len());
        } else {
            out.push(a);
        }
    }
    drop(it);
    let at = at.unwrap_or(0);
    out.splice(at..at, ["-m".to_owned(), mb.to_string()]);
    *args = out;
}

/// Gives every `net_af_packet` vdev `qpairs=N` (its queue pairs; the port's queues must
/// not be more).
fn set_af_packet_qpairs(args: &mut [String], n: u16) {
    let mut vdev_next = false;
    for a in args.iter_mut() {
        let value = if vdev_next {
            Some(a.clone())
        } else {
            a.strip_prefix("--vdev=").map(str::to_owned)
        };
        let prefix = if vdev_next { "" } else { "--vdev=" };
        vdev_next = a == "--vdev";
        let Some(value) = value.filter(|v| v.starts_with("net_af_packet")) else {
            continue;
        };
        let mut parts: Vec<String> = value
            .split(',')
            .filter(|p| !p.starts_with("qpairs="))
            .map(str::to_owned)
            .collect();
        parts.push(format!("qpairs={n}"));
        *a = format!("{prefix}{}", parts.join(","));
    }
}

fn parse_selection(s: &str) -> Result<Selection, String> {
    match s {
        "spread" => Ok(Selection::Spread),
        "ordered" => Ok(Selection::Ordered),
        _ => Err(format!("`{s}`: spread or ordered")),
    }
}

fn parse_mode(s: &str) -> Result<Mode, String> {
    match s {
        "mirror" => Ok(Mode::Mirror),
        "reconnect" => Ok(Mode::Reconnect),
        _ => Err(format!("`{s}`: mirror or reconnect")),
    }
}

fn parse_scope(s: &str) -> Result<ReplayScope, String> {
    match s {
        "stream" => Ok(ReplayScope::Stream),
        "http1" => Ok(ReplayScope::Http1),
        _ => Err(format!("`{s}`: stream or http1")),
    }
}

fn parse_on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("`{s}`: on or off")),
    }
}

fn parse_no_replica(s: &str) -> Result<NoReplica, String> {
    match s {
        "reset" => Ok(NoReplica::Reset),
        "drop" => Ok(NoReplica::Drop),
        _ => Err(format!("`{s}`: reset or drop")),
    }
}

fn parse_log_format(s: &str) -> Result<LogFormat, String> {
    match s {
        "human" => Ok(LogFormat::Human),
        "json" => Ok(LogFormat::Json),
        "journald" => Ok(LogFormat::Journald),
        _ => Err(format!("`{s}`: human, json or journald")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use clap::Parser;

    /// The profile a `tandem-bench profile ...` command line makes, as written and read
    /// back by tandem-config (the validation `tandem check` runs).
    fn made(args: &[&str]) -> Profile {
        let cli =
            crate::Cli::try_parse_from(["tandem-bench", "profile"].iter().chain(args).copied())
                .unwrap();
        let crate::Command::Profile(p) = cli.command else {
            panic!("profile expected");
        };
        let profile = build(&p.kind).unwrap();
        let text = yaml(&profile).unwrap();
        let back = tandem_config::parse("made.yaml", &text).unwrap();
        assert_eq!(back, profile, "written and read back:\n{text}");
        back
    }

    fn lab() -> Profile {
        tandem_config::load(&lab_path()).unwrap()
    }

    fn lab_path() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs/lab.yaml")
    }

    /// The EAL arguments of perf/lib.sh's DUT (perf/run.sh, perf/mirror.sh).
    const EAL: [&str; 14] = [
        "--",
        "-l",
        "0,1",
        "--main-lcore",
        "0",
        "--no-huge",
        "-m",
        "1024",
        "--no-pci",
        "--file-prefix",
        "tbench1-dut",
        "--vdev",
        "net_memif0,role=server,socket=/tmp/t/memif0.sock,socket-abstract=no,mac=02:54:00:00:00:01",
        "--vdev",
    ];
    const VDEV1: &str =
        "net_memif1,role=server,socket=/tmp/t/memif1.sock,socket-abstract=no,mac=02:54:00:00:00:02";

    #[test]
    fn forward_profile_of_perf_run() {
        let mut args = vec![
            "forward",
            "--flows-per-worker",
            "1250000",
            "--socket",
            "/tmp/t/tandem.sock",
            "--metrics",
            "127.0.0.1:9999",
        ];
        args.extend(EAL);
        args.push(VDEV1);
        let p = made(&args);
        assert_eq!(p.lcores.control, 0);
        assert_eq!(p.lcores.workers, [1]);
        assert_eq!(p.ports.outside.device.to_string(), "net_memif0");
        assert_eq!(p.ports.outside.address.to_string(), "198.18.0.1/16");
        let s = &p.services[0];
        assert_eq!(s.mode, Mode::Forward);
        assert_eq!(s.port, ServicePort::Single(80));
        assert_eq!(s.vip, Ipv4Addr::new(198, 18, 0, 100));
        assert_eq!(s.replicas[0].address, Ipv4Addr::new(198, 19, 0, 11));
        assert!(s.health.probe_ports.is_empty());
        assert_eq!(p.limits.flows_per_worker, 1_250_000);
        assert_eq!(p.limits.mbufs, 32767);
        assert_eq!(
            p.management.metrics,
            Some("127.0.0.1:9999".parse().unwrap())
        );
        assert_eq!(p.eal.args.last().map(String::as_str), Some(VDEV1));
    }

    /// perf/pktgen/run.sh: any port, its own addresses, no metrics, a small flow table
    /// needs a smaller SYN backlog.
    #[test]
    fn forward_profile_of_pktgen() {
        let p = made(&[
            "forward",
            "--port",
            "any",
            "--vip",
            "198.18.0.200",
            "--replica",
            "198.19.0.50",
            "--flows-per-worker",
            "1000",
            "--socket",
            "/tmp/p/tandem.sock",
            "--",
            "-l",
            "0,1",
            "--main-lcore",
            "0",
            "--vdev",
            "net_memif0,role=server,socket=/tmp/p/memif0.sock",
            "--vdev",
            "net_memif1,role=server,socket=/tmp/p/memif1.sock",
        ]);
        let s = &p.services[0];
        assert_eq!(s.port, ServicePort::Any);
        assert_eq!(s.vip, Ipv4Addr::new(198, 18, 0, 200));
        assert_eq!(s.replicas[0].address, Ipv4Addr::new(198, 19, 0, 50));
        assert_eq!(p.management.metrics, None);
        assert_eq!(p.limits.syn_backlog, 500);
    }

    #[test]
    fn mirror_profile_of_perf_mirror() {
        let mut args = vec!["mirror", "--socket", "/tmp/t/tandem.sock"];
        args.extend(EAL);
        args.push(VDEV1);
        let p = made(&args);
        let s = &p.services[0];
        assert_eq!(
            (s.mode, s.copies, s.selection),
            (Mode::Mirror, 2, Selection::Ordered)
        );
        let names: Vec<&str> = s.replicas.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["primary", "backup"]);
        assert_eq!(s.replicas[1].address, Ipv4Addr::new(198, 19, 0, 12));
        assert_eq!(s.health.probe_ports, [80]);
        assert_eq!(s.health.interval, Duration::from_millis(10));
        assert_eq!(s.health.output_lag, None);
        assert_eq!(p.limits.hold_bytes_total, 33_554_432);
        // A port range has no single port to probe.
        let mut range = vec!["mirror", "--port", "80-81", "--socket", "/tmp/t/s"];
        range.extend(EAL);
        range.push(VDEV1);
        let cli =
            crate::Cli::try_parse_from(["tandem-bench", "profile"].iter().chain(&range).copied())
                .unwrap();
        let crate::Command::Profile(p) = cli.command else {
            panic!("profile expected");
        };
        assert!(build(&p.kind).is_err());
    }

    /// appliance/e2e/failover.sh freeze: the lab profile, output lag on.
    #[test]
    fn lab_with_output_lag() {
        let path = lab_path();
        let p = made(&["from", path.to_str().unwrap(), "--output-lag", "100ms"]);
        let mut want = lab();
        want.services[0].health.output_lag = Some(Duration::from_millis(100));
        assert_eq!(p, want);
    }

    /// appliance/e2e/diverged.sh off: the lab's first two replicas, port 80 probed,
    /// verification off.
    #[test]
    fn lab_without_verification() {
        let path = lab_path();
        let args = [
            "--replicas",
            "primary,backup",
            "--probe-ports",
            "80",
            "--verify",
        ];
        let p = made(&[&["from", path.to_str().unwrap()], &args[..], &["off"]].concat());
        let mut want = lab();
        let s = &mut want.services[0];
        s.replicas.truncate(2);
        s.health.probe_ports = vec![80];
        s.verify = false;
        assert_eq!(p, want);
        let on = made(&[&["from", path.to_str().unwrap()], &args[..], &["on"]].concat());
        assert!(on.services[0].verify);
    }

    /// A lab variant in reconnect mode: HTTP/1 replay with a 64KiB log per flow; and
    /// back to mirror mode, which takes only the stream scope.
    #[test]
    fn lab_in_reconnect_mode() {
        let path = lab_path();
        let base = ["from", path.to_str().unwrap()];
        let args = [
            "--mode",
            "reconnect",
            "--replay",
            "http1",
            "--replay-limit",
            "64KiB",
        ];
        let p = made(&[&base[..], &args[..]].concat());
        let mut want = lab();
        let s = &mut want.services[0];
        s.mode = Mode::Reconnect;
        s.copies = 1;
        s.replay.scope = ReplayScope::Http1;
        s.replay.limit = 64 << 10;
        assert_eq!(p, want);

        // Mirror mode with a log of 0: no new standby by replay.
        let p = made(&[&base[..], &["--mode", "mirror", "--replay-limit", "0"]].concat());
        let mut want = lab();
        want.services[0].replay.limit = 0;
        assert_eq!(p, want);

        // http1 in mirror mode, a limit of 0 in reconnect mode: refused by validation.
        for refused in [
            &["--replay", "http1"][..],
            &["--mode", "reconnect", "--replay-limit", "0"],
        ] {
            let line = [&["tandem-bench", "profile"][..], &base[..], refused].concat();
            let cli = crate::Cli::try_parse_from(line).unwrap();
            let crate::Command::Profile(args) = cli.command else {
                panic!("profile expected");
            };
            let err = yaml(&build(&args.kind).unwrap()).unwrap_err().to_string();
            assert!(err.contains("services[0].replay"), "{refused:?}: {err}");
        }
        let bad = [
            "tandem-bench",
            "profile",
            "from",
            "x.yaml",
            "--replay-limit",
            "1MB",
        ];
        assert!(crate::Cli::try_parse_from(bad).is_err());
        let bad = [
            "tandem-bench",
            "profile",
            "from",
            "x.yaml",
            "--mode",
            "forward",
        ];
        assert!(crate::Cli::try_parse_from(bad).is_err());
    }

    /// appliance/e2e/capture.sh: the lab on 256 MB of hugepages, so that dpdk-dumpcap
    /// can attach.
    #[test]
    fn lab_on_hugepages() {
        let path = lab_path();
        let p = made(&["from", path.to_str().unwrap(), "--hugepages", "256"]);
        let mut want = lab();
        let at = want.eal.args.iter().position(|a| a == "--no-huge").unwrap();
        // `--no-huge -m 512` becomes `-m 256`, in place; the rest stays.
        want.eal
            .args
            .splice(at..at + 3, ["-m".to_owned(), "256".to_owned()]);
        assert_eq!(p, want);
        assert!(!p.eal.args.iter().any(|a| a == "--no-huge"));
        let mut joined = vec![
            "-l".to_owned(),
            "0-1".to_owned(),
            "-m512".to_owned(),
            "--socket-mem=64".to_owned(),
        ];
        set_hugepages(&mut joined, 128);
        assert_eq!(joined, ["-l", "0-1", "-m", "128"]);
    }

    /// appliance/e2e/pool.sh: a pool of two (the spare is added while it runs), spread,
    /// the stream port probed only, JSON logs.
    #[test]
    fn lab_pool_of_two() {
        let path = lab_path();
        let p = made(&[
            "from",
            path.to_str().unwrap(),
            "--replicas",
            "primary,backup",
            "--selection",
            "spread",
            "--probe-ports",
            "7000",
            "--log-format",
            "json",
        ]);
        let mut want = lab();
        let s = &mut want.services[0];
        s.replicas.truncate(2);
        s.selection = Selection::Spread;
        s.health.probe_ports = vec![7000];
        want.logging.format = LogFormat::Json;
        assert_eq!(p, want);
        let missing = ["from", path.to_str().unwrap(), "--replicas", "primary,nope"];
        let cli =
            crate::Cli::try_parse_from(["tandem-bench", "profile"].iter().chain(&missing).copied())
                .unwrap();
        let crate::Command::Profile(args) = cli.command else {
            panic!("profile expected");
        };
        assert!(build(&args.kind).is_err());
    }

    /// appliance/e2e/workers.sh: two workers, two queue pairs per af_packet port.
    #[test]
    fn lab_with_two_workers() {
        let path = lab_path();
        let p = made(&[
            "from",
            path.to_str().unwrap(),
            "--eal-lcores",
            "0@0,1@0,2@1",
            "--workers",
            "1,2",
            "--queues",
            "2",
            "--probe-ports",
            "7000",
            "--synack-wait",
            "200ms",
        ]);
        let lab = lab();
        let mut want_eal = lab.eal.args.clone();
        let l = want_eal.iter().position(|a| a == "-l").unwrap();
        want_eal.splice(l..l + 2, ["--lcores".to_owned(), "0@0,1@0,2@1".to_owned()]);
        for a in &mut want_eal {
            if a.starts_with("net_af_packet") {
                a.push_str(",qpairs=2");
            }
        }
        assert_eq!(p.eal.args, want_eal);
        assert_eq!(p.lcores.workers, [1, 2]);
        assert_eq!((p.ports.outside.queues, p.ports.inside.queues), (2, 2));
        let plan = p.worker_plan();
        assert_eq!(
            plan[0].rx,
            [
                (tandem_config::PortRole::Outside, 0),
                (tandem_config::PortRole::Inside, 0)
            ]
        );
        assert_eq!(
            plan[1].rx,
            [
                (tandem_config::PortRole::Outside, 1),
                (tandem_config::PortRole::Inside, 1)
            ]
        );
        assert_eq!(p.timeouts.synack_wait, Duration::from_millis(200));
        assert_eq!(p.services[0].health.probe_ports, [7000]);
        assert_eq!(p.services[0].replicas, lab.services[0].replicas);
    }

    #[test]
    fn from_sets_a_port_range_and_no_replica() {
        let path = lab_path();
        let p = made(&[
            "from",
            path.to_str().unwrap(),
            "--port",
            "8000-8100",
            "--probe-ports",
            "8000",
            "--no-replica",
            "drop",
        ]);
        let s = &p.services[0];
        assert_eq!(s.port, ServicePort::Range(8000, 8100));
        assert_eq!(s.health.probe_ports, [8000]);
        assert_eq!(s.no_replica, NoReplica::Drop);
    }

    #[test]
    fn eal_lcore_options_are_replaced() {
        let args = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<String>>();
        for given in [
            &["-m", "512", "-l", "0-1", "--no-pci"][..],
            &["-m", "512", "-l0-1", "--no-pci"],
            &["-m", "512", "--lcores=0-1", "--no-pci"],
            &["-m", "512", "-c", "0x3", "--no-pci"],
        ] {
            let mut a = args(given);
            set_eal_lcores(&mut a, "0@0,1@1");
            assert_eq!(
                a,
                args(&["-m", "512", "--lcores", "0@0,1@1", "--no-pci"]),
                "{given:?}"
            );
        }
        let mut a = args(&["--no-pci"]);
        set_eal_lcores(&mut a, "0,1");
        assert_eq!(a, args(&["--lcores", "0,1", "--no-pci"]));
        let mut a = args(&[
            "--vdev",
            "net_af_packet0,iface=a,qpairs=1",
            "--vdev=net_af_packet1,iface=b",
            "--vdev",
            "net_memif0",
        ]);
        set_af_packet_qpairs(&mut a, 4);
        assert_eq!(
            a,
            args(&[
                "--vdev",
                "net_af_packet0,iface=a,qpairs=4",
                "--vdev=net_af_packet1,iface=b,qpairs=4",
                "--vdev",
                "net_memif0"
            ])
        );
    }
}
