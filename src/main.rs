//! `tandem`: the appliance binary.
//!
//! ```text
//! tandem check --profile configs/lab.yaml     # validate a profile, print a summary (no DPDK)
//! tandem check --profile P --json             # the profile with its defaults, as JSON
//! tandem run --profile configs/lab.yaml       # run until SIGINT/SIGTERM, then print counters
//! tandem --version                            # version, git revision, DPDK version built against
//! tandem status [--profile P | --socket S]      # the running appliance: replicas, flows
//! tandem drain|fail|up REPLICA [--profile P | --socket S]   # no new flows / fail over now / undo
//! tandem flows [--service S] [--replica R] [--client IP[:PORT]] [--limit N]   # list flows
//! tandem add SERVICE NAME ADDRESS | tandem remove REPLICA    # change a pool while running
//! tandem reload [--dry-run] [--profile P | --socket S]     # re-read the profile (or SIGHUP)
//! tandem status --json                        # any of the five above: the answer as JSON
//! tandem host check --profile P [--json]      # can this machine run P? each fix named
//! tandem host setup --profile P [--dry-run]   # reserve hugepages, bind the NICs (root)
//! ```
//!
//! The management commands print the appliance's typed answer
//! ([`tandem_runtime::answer::Response`]) as text, or with `--json` as JSON for scripts;
//! a refusal exits with status 1 (with `--json`, after printing `{"error": ...}`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use tandem_config::{format_duration, LogFormat, Profile};
use tandem_runtime::answer::Response;
use tandem_runtime::mgmt::Request;

mod docs;

/// The version line: crate version, git revision, DPDK version found at build time.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (git ",
    env!("TANDEM_GIT_REV"),
    ", built with DPDK ",
    env!("TANDEM_DPDK_VERSION"),
    ")"
);

/// Transparent TCP failover appliance on DPDK.
#[derive(Parser, Debug)]
#[command(name = "tandem", version = VERSION, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

/// Log output format.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
    /// To the systemd journal, each event's fields as journal fields (human lines on
    /// stderr where there is no journal).
    Journald,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the appliance until SIGINT or SIGTERM, then print a summary of the counters.
    Run {
        /// The profile (YAML).
        #[arg(long, short)]
        profile: PathBuf,
        /// Log format (default: the profile's `logging.format`).
        #[arg(long)]
        log_format: Option<Format>,
        /// Log filter, e.g. `debug` or `tandem_runtime=debug` (default: the profile's
        /// `logging.level`; `RUST_LOG` overrides both).
        #[arg(long)]
        log_level: Option<String>,
    },
    /// Validate a profile and print a one-screen summary (no DPDK, no root).
    Check {
        /// The profile (YAML).
        #[arg(long, short)]
        profile: PathBuf,
        /// Print JSON (for scripts): the profile with every default filled in, and
        /// whether `tandem run` takes it; a refusal is `{"error": ...}`.
        #[arg(long)]
        json: bool,
    },
    /// Whether this machine can run a profile, and the setup of what can be fixed now.
    Host {
        #[command(subcommand)]
        command: HostCmd,
    },
    /// The running appliance: services, replicas and their health, flows per worker.
    Status {
        #[command(flatten)]
        at: Manage,
    },
    /// The replica takes no new flows; its flows stay (maintenance, step 1).
    Drain {
        /// `service/replica`, or the replica's name alone when it is unique.
        replica: String,
        #[command(flatten)]
        at: Manage,
    },
    /// The replica fails over now: its flows move to their standby; probes do not bring
    /// it back (maintenance, step 2).
    Fail {
        /// `service/replica`, or the replica's name alone when it is unique.
        replica: String,
        #[command(flatten)]
        at: Manage,
    },
    /// Undoes `drain` or `fail`: the replica takes new flows once probes say it is up.
    Up {
        /// `service/replica`, or the replica's name alone when it is unique.
        replica: String,
        #[command(flatten)]
        at: Manage,
    },
    /// The flows: client, service, phase, bytes each way, held standby bytes, age, idle
    /// time, replicas (the active one starred).
    Flows {
        /// Only this service's flows.
        #[arg(long)]
        service: Option<String>,
        /// Only flows with a copy on this replica.
        #[arg(long)]
        replica: Option<String>,
        /// Only this client: IP or IP:PORT.
        #[arg(long, value_parser = parse_client)]
        client: Option<(std::net::Ipv4Addr, Option<u16>)>,
        /// At most this many flows shown (1 to 10000).
        #[arg(long, default_value_t = tandem_runtime::mgmt::DEFAULT_FLOWS_LISTED,
              value_parser = parse_limit)]
        limit: usize,
        #[command(flatten)]
        at: Manage,
    },
    /// Adds a replica to a service's pool: probed from now on, it takes new flows once
    /// its probes answer; existing flows keep their replicas.
    Add {
        /// The service.
        service: String,
        /// The replica's name in it (letters, digits, - and _).
        name: String,
        /// Its IPv4 address (on the inside subnet, or behind the inside gateway).
        address: std::net::Ipv4Addr,
        #[command(flatten)]
        at: Manage,
    },
    /// Re-reads the profile and applies what changes without a restart (replicas added,
    /// removed or drained, health settings, the ARP refresh, the log level); refuses,
    /// changing nothing, a profile with any change that needs a restart, naming each.
    /// The same as SIGHUP (`systemctl reload`).
    Reload {
        /// Only show the differences; apply nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        at: Manage,
    },
    /// Takes a replica out of its pools: its flows fail over now to their other replicas.
    Remove {
        /// `service/replica`, or the replica's name alone when it is unique.
        replica: String,
        #[command(flatten)]
        at: Manage,
    },
    /// The appliance pair: this appliance's role, its peer and the sync (`status`), or a
    /// switch of roles without a reset (`active` on the standby, `standby` on the
    /// active: a handover once the peer holds every flow).
    Ha {
        #[command(subcommand)]
        command: HaCmd,
    },
    /// Writes the man pages and shell completions under OUT (for packaging).
    #[command(hide = true)]
    GenerateDocs {
        /// The directory to write `man/` and `completions/` into.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum HaCmd {
    /// Role, epoch, readiness, the peer as last heard, sync lag and counters.
    Status {
        #[command(flatten)]
        at: Manage,
    },
    /// Become the active appliance: refused until this standby has completed its sync;
    /// the active hands over once its final records are acked.
    Active {
        #[command(flatten)]
        at: Manage,
    },
    /// Hand the active role to the peer: refused unless the peer is a ready standby.
    Standby {
        #[command(flatten)]
        at: Manage,
    },
}

#[derive(Subcommand, Debug)]
enum HostCmd {
    /// Checks what the profile needs of this machine: free hugepages (per NUMA node),
    /// hugetlbfs, each PCI port on a DPDK driver, the IOMMU, the lcores present, online
    /// and isolated, the memlock limit. Each problem comes with the command that fixes
    /// it; exit status 1 when one would stop `tandem run`.
    Check {
        /// The profile (YAML).
        #[arg(long, short)]
        profile: PathBuf,
        /// Print the findings as JSON (for scripts).
        #[arg(long)]
        json: bool,
        /// Read sysfs and procfs under this directory instead of `/` (tests).
        #[arg(long, hide = true, default_value = "/")]
        root: PathBuf,
    },
    /// Does the fixable part: reserves the profile's hugepages (per NUMA node where
    /// --socket-mem names them), mounts hugetlbfs, loads vfio-pci (uio_pci_generic
    /// without an IOMMU) and binds the ports' PCI devices with dpdk-devbind.py. Says
    /// what it changed; a second run changes nothing. Root.
    Setup {
        /// The profile (YAML).
        #[arg(long, short)]
        profile: PathBuf,
        /// Print what would change, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Read and write sysfs and procfs under this directory instead of `/` (tests).
        #[arg(long, hide = true, default_value = "/")]
        root: PathBuf,
    },
}

/// `tandem host check`: the findings, as text or JSON; an error when one failed.
fn host_check(path: &Path, json: bool, root: &Path) -> anyhow::Result<()> {
    let profile = tandem_config::load(path)?;
    let needs = tandem_host::Needs::of(&profile);
    let setup = format!("tandem host setup --profile {}", path.display());
    let report = tandem_host::check(
        &needs,
        &tandem_host::Host::new(root),
        &tandem_host::Process::current(),
        &setup,
    );
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.text());
    }
    let failed = report
        .findings
        .iter()
        .filter(|f| f.status == tandem_host::Status::Fail)
        .count();
    if failed > 0 {
        anyhow::bail!(
            "host check: {failed} problem{} for {}",
            if failed == 1 { "" } else { "s" },
            path.display()
        );
    }
    Ok(())
}

/// `tandem host setup`: makes each change the plan lists, says so, then checks again.
fn host_setup(path: &Path, dry_run: bool, root: &Path) -> anyhow::Result<()> {
    let profile = tandem_config::load(path)?;
    let needs = tandem_host::Needs::of(&profile);
    let host = tandem_host::Host::new(root);
    let actions = tandem_host::plan(&needs, &host);
    if actions.is_empty() {
        println!("host setup: nothing to change");
    }
    for action in &actions {
        if dry_run {
            println!("would change: {action}");
            continue;
        }
        tandem_host::apply(
            std::slice::from_ref(action),
            &host,
            &mut tandem_host::SystemRunner,
        )
        .with_context(|| format!("host setup: {action}"))?;
        println!("changed: {action}");
    }
    if dry_run {
        return Ok(());
    }
    // What setup cannot change (IOMMU, CPUs, isolation, memlock) is the check's to say.
    let setup = format!("tandem host setup --profile {}", path.display());
    let report = tandem_host::check(&needs, &host, &tandem_host::Process::current(), &setup);
    let left: Vec<&tandem_host::Finding> = report
        .findings
        .iter()
        .filter(|f| f.status != tandem_host::Status::Ok)
        .collect();
    if !left.is_empty() {
        println!("left to the operator:");
        print!(
            "{}",
            tandem_host::Report {
                passed: report.passed,
                findings: left.into_iter().cloned().collect(),
            }
            .text()
        );
    }
    if !report.passed {
        anyhow::bail!("host setup: {} still cannot run here", path.display());
    }
    Ok(())
}

fn parse_limit(v: &str) -> Result<usize, String> {
    let max = tandem_runtime::mgmt::MAX_FLOWS_LISTED;
    v.parse::<usize>()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| format!("a number from 1 to {max}"))
}

fn parse_client(v: &str) -> Result<(std::net::Ipv4Addr, Option<u16>), String> {
    tandem_runtime::mgmt::parse_client(v)
}

/// Where the running appliance's management socket is, and how to print its answer.
#[derive(clap::Args, Debug)]
struct Manage {
    /// The socket (default: the profile's `management.socket`, else /run/tandem/tandem.sock).
    #[arg(long)]
    socket: Option<PathBuf>,
    /// The profile the appliance runs (for its `management.socket`).
    #[arg(long, short)]
    profile: Option<PathBuf>,
    /// Print the answer as JSON (for scripts) instead of text.
    #[arg(long)]
    json: bool,
}

impl Manage {
    fn path(&self) -> anyhow::Result<PathBuf> {
        if let Some(s) = &self.socket {
            return Ok(s.clone());
        }
        match &self.profile {
            Some(p) => Ok(tandem_config::load(p)?.management.socket),
            None => Ok(PathBuf::from("/run/tandem/tandem.sock")),
        }
    }
}

/// Sends a management request; prints the answer as text, or as JSON with `--json`; a
/// refusal is a failure.
fn manage(at: &Manage, request: Request) -> anyhow::Result<()> {
    let path = at.path()?;
    let answer = tandem_runtime::mgmt::ask(&path, &request).with_context(|| {
        format!(
            "{}: cannot reach the appliance (is `tandem run` running, and are you root?)",
            path.display()
        )
    })?;
    if at.json {
        println!("{}", answer.to_json_pretty());
    }
    match answer {
        Response::Error(e) => anyhow::bail!("{e}"),
        _ if at.json => {}
        answer => print!("{answer}"),
    }
    Ok(())
}

/// `tandem reload`: with `--profile P`, the appliance reads P (and runs it from then on:
/// a later SIGHUP reads P too); without, the file it runs.
fn reload(at: &Manage, dry_run: bool) -> anyhow::Result<()> {
    let profile = match &at.profile {
        Some(p) => Some(std::fs::canonicalize(p).with_context(|| format!("{}", p.display()))?),
        None => None,
    };
    manage(at, Request::Reload { dry_run, profile })
}

/// Starts logging; returns what changes the filter later. `RUST_LOG`, when set, stays
/// the filter: a reload of the profile's level does not override it.
fn init_logging(format: Format, level: &str) -> tandem_runtime::SetLogLevel {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::EnvFilter;
    let from_env = EnvFilter::try_from_default_env().ok();
    let pinned = from_env.is_some();
    let filter = from_env.unwrap_or_else(|| EnvFilter::new(level));
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        Format::Human => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(ansi),
            )
            .init(),
        Format::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr)
                    .with_ansi(ansi),
            )
            .init(),
        Format::Journald => match tracing_journald::layer() {
            Ok(journal) => registry.with(journal).init(),
            Err(e) => {
                // No journal here (a container, a test machine): the same events as lines.
                registry
                    .with(
                        tracing_subscriber::fmt::layer()
                            .with_writer(std::io::stderr)
                            .with_ansi(ansi),
                    )
                    .init();
                tracing::warn!(error = %e, "no systemd journal; logging human lines to stderr");
            }
        },
    }
    Box::new(move |level: &str| {
        if pinned {
            return Err("RUST_LOG is set: it stays the log filter".to_owned());
        }
        let filter = EnvFilter::try_new(level).map_err(|e| format!("log level `{level}`: {e}"))?;
        handle
            .reload(filter)
            .map_err(|e| format!("log level `{level}`: {e}"))
    })
}

/// The one-screen summary of `tandem check`.
fn describe(p: &Profile) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "lcores: control {}, workers {:?}",
        p.lcores.control, p.lcores.workers
    );
    for role in tandem_config::PortRole::ALL {
        let port = p.port(role);
        let _ = writeln!(
            s,
            "port {role}: {} {}{} queues {} rx/tx descriptors {}/{} mtu {}",
            port.device,
            port.address.address,
            port.gateway.map(|g| format!(" gw {g}")).unwrap_or_default(),
            port.queues,
            port.rx_descriptors,
            port.tx_descriptors,
            port.mtu
        );
    }
    for w in p.worker_plan() {
        let rx: Vec<String> = w.rx.iter().map(|(r, q)| format!("{r}/{q}")).collect();
        let _ = writeln!(
            s,
            "worker {} on lcore {}: rx {} tx queue {}",
            w.id,
            w.lcore,
            rx.join(", "),
            w.tx_queue
        );
    }
    for svc in &p.services {
        let reps: Vec<String> = svc
            .replicas
            .iter()
            .map(|r| format!("{} {}", r.name, r.address))
            .collect();
        let _ = writeln!(
            s,
            "service {}: {}:{} {} copies {} selection {:?} no_replica {}; replicas: {}",
            svc.name,
            svc.vip,
            svc.port,
            svc.mode,
            svc.copies,
            svc.selection,
            svc.no_replica,
            reps.join(", ")
        );
        if svc.health.probe_ports.is_empty() {
            // Forward mode may run unprobed: say so rather than a detection time.
            let _ = writeln!(s, "  health: no probing (replicas up until failed by hand)");
            continue;
        }
        let _ = writeln!(
            s,
            "  health: probe ports {:?}, every {}, down after {} (detection {})",
            svc.health.probe_ports,
            format_duration(svc.health.interval),
            svc.health.fall,
            format_duration(svc.health.detection_time())
        );
    }
    let t = &p.timeouts;
    let _ = writeln!(
        s,
        "timeouts: syn {} established {} linger {} synack_wait {} arp_refresh {}",
        format_duration(t.syn),
        format_duration(t.established),
        format_duration(t.linger),
        format_duration(t.synack_wait),
        format_duration(t.arp_refresh)
    );
    let l = &p.limits;
    let _ = writeln!(
        s,
        "limits: flows/worker {} hold/flow {} B hold total {} B / {} segments, mbufs {} (cache {}), \
         control frames/worker {}/s (burst {})",
        l.flows_per_worker,
        l.hold_bytes_per_flow,
        l.hold_bytes_total,
        l.hold_segments_total,
        l.mbufs,
        l.mbuf_cache,
        l.control_rate,
        l.control_burst
    );
    if let Some(ha) = &p.ha {
        let floating: Vec<String> = ha.floating.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            s,
            "ha: {} local {} peer {}{}; heartbeat {} dead time {}; sync {} records/datagram \
             within {}, window {}; floating: VIPs{}{}",
            ha.interface,
            ha.local,
            ha.peer,
            if ha.preferred { " (preferred)" } else { "" },
            format_duration(ha.heartbeat),
            format_duration(ha.dead_time),
            ha.sync_batch,
            format_duration(ha.sync_interval),
            ha.sync_window,
            if floating.is_empty() { "" } else { ", " },
            floating.join(", ")
        );
    }
    let _ = writeln!(s, "eal: {}", p.eal.args.join(" "));
    s
}

/// `tandem check --json`: the profile as `tandem run` would read it, and whether it runs.
fn check_json(path: &Path) -> anyhow::Result<()> {
    let profile = match tandem_config::load(path) {
        Ok(p) => p,
        Err(e) => {
            println!("{}", serde_json::json!({ "error": e.to_string() }));
            return Err(e.into());
        }
    };
    let document: serde_json::Value = serde_json::from_str(&profile.to_json()?)?;
    let (notes, refused) = match tandem_runtime::runnable(&profile) {
        Ok(warnings) => (warnings, None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    let answer = serde_json::json!({
        "profile": document,
        "runnable": refused.is_none(),
        "refused": refused,
        "notes": notes,
    });
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(())
}

fn check(path: &Path, json: bool) -> anyhow::Result<()> {
    if json {
        return check_json(path);
    }
    let profile = tandem_config::load(path)?;
    print!("{}", describe(&profile));
    // A valid profile may still ask for what this build cannot run yet (workers that
    // split a flow): `run` refuses it, `check` says so.
    match tandem_runtime::runnable(&profile) {
        Ok(warnings) => {
            for w in warnings {
                println!("note: {w}");
            }
            println!("{}: ok", path.display());
        }
        Err(e) => println!(
            "{}: ok (valid, but `tandem run` refuses it: {e})",
            path.display()
        ),
    }
    Ok(())
}

fn run(path: &Path, format: Option<Format>, level: Option<String>) -> anyhow::Result<()> {
    let profile = tandem_config::load(path)?;
    let format = format.unwrap_or(match profile.logging.format {
        LogFormat::Json => Format::Json,
        LogFormat::Journald => Format::Journald,
        LogFormat::Human => Format::Human,
    });
    let level = level.unwrap_or_else(|| profile.logging.level.as_str().to_owned());
    let set_log_level = init_logging(format, &level);
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())
            .with_context(|| format!("installing the handler of signal {sig}"))?;
    }
    // SIGHUP (`systemctl reload`): the control core re-reads the profile file.
    let hangup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, hangup.clone())
        .context("installing the handler of SIGHUP")?;
    // Absolute: `tandem reload` and SIGHUP read it again whatever the working directory.
    let path = std::fs::canonicalize(path).with_context(|| format!("{}", path.display()))?;
    tracing::info!(profile = %path.display(), version = VERSION, "starting");
    let reloading = tandem_runtime::Reloading {
        path,
        hangup,
        set_log_level,
    };
    let summary = tandem_runtime::run(&profile, &stop, Some(reloading))?;
    println!("{summary}");
    tracing::info!("stopped");
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Cmd::Check { profile, json } => check(profile, *json),
        Cmd::Host {
            command:
                HostCmd::Check {
                    profile,
                    json,
                    root,
                },
        } => host_check(profile, *json, root),
        Cmd::Host {
            command:
                HostCmd::Setup {
                    profile,
                    dry_run,
                    root,
                },
        } => host_setup(profile, *dry_run, root),
        Cmd::Run {
            profile,
            log_format,
            log_level,
        } => run(profile, *log_format, log_level.clone()),
        Cmd::Status { at } => manage(at, Request::Status),
        Cmd::Drain { replica, at } => manage(at, Request::Drain(replica.clone())),
        Cmd::Ha { command } => match command {
            HaCmd::Status { at } => manage(at, Request::Ha(None)),
            HaCmd::Active { at } => {
                manage(at, Request::Ha(Some(tandem_runtime::ha::Command::Active)))
            }
            HaCmd::Standby { at } => {
                manage(at, Request::Ha(Some(tandem_runtime::ha::Command::Standby)))
            }
        },
        Cmd::Fail { replica, at } => manage(at, Request::Fail(replica.clone())),
        Cmd::Up { replica, at } => manage(at, Request::Up(replica.clone())),
        Cmd::Flows {
            service,
            replica,
            client,
            limit,
            at,
        } => manage(
            at,
            Request::Flows(tandem_runtime::mgmt::FlowQuery {
                service: service.clone(),
                replica: replica.clone(),
                client: *client,
                limit: *limit,
            }),
        ),
        Cmd::Add {
            service,
            name,
            address,
            at,
        } => manage(
            at,
            Request::Add {
                service: service.clone(),
                name: name.clone(),
                address: *address,
            },
        ),
        Cmd::Remove { replica, at } => manage(at, Request::Remove(replica.clone())),
        Cmd::Reload { dry_run, at } => reload(at, *dry_run),
        Cmd::GenerateDocs { out } => docs::generate(Cli::command(), out),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tandem: {e:#}");
            ExitCode::FAILURE
        }
    }
}
