//! `run`'s stages, in the order they happen: [`ports`], [`workers`], [`control`],
//! [`launch`] and, after the control core's loop, [`teardown`].

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tandem_config::{PortRole, Profile, WorkerPlan};
use tandem_dpdk::ring::{Consumer, Producer};
use tandem_dpdk::{lcore, ring, Mbuf, Mempool, Port, PortConfig, DEFAULT_DATA_ROOM};
use tandem_engine::{HashKey, Side};
use tandem_wire::MacAddr;

use crate::clock::Clock;
use crate::control::{self, Control, ControlPort, ControlTx, Neighbour};
use crate::msg::{Command, SignalMsg};
use crate::stats::{self, PortSummary, Summary, WorkerStats};
use crate::worker::{self, WorkerIo};
use crate::{
    access, affinity, gate, health, listing, metrics, mgmt, Context, Mapped, RuntimeError,
    MSG_RING_SIZE, RING_SIZE,
};

/// The ports, started, and what was decided with them.
pub(crate) struct DataPath {
    pub pool: Mempool,
    pub plan: Vec<WorkerPlan>,
    /// Workers (the plan's length).
    pub nw: u16,
    /// Outside, inside.
    pub ports: Vec<Started>,
    pub path: affinity::Affinity,
}

/// The control core's ends of the rings to the workers.
pub(crate) struct ControlEnds {
    from_workers: Vec<Consumer<Mbuf>>,
    answers: Vec<Consumer<Mbuf>>,
    signals: Vec<Consumer<SignalMsg>>,
    commands: Vec<Producer<Command>>,
    control_tx: [ControlTx; 2],
    lists: Vec<Arc<listing::FlowList>>,
    mailboxes: Vec<Arc<crate::msg::Mailbox>>,
}

/// The workers' I/O and the control core's ends.
pub(crate) struct Wiring {
    pub ios: Vec<WorkerIo>,
    pub ends: ControlEnds,
    /// Each worker's lcore and published counters.
    pub stats: Vec<(u32, Arc<WorkerStats>)>,
}

/// The control core and its listeners.
pub(crate) struct Serving {
    pub control: Control,
    mgmt: Option<mgmt::Server>,
    metrics: Option<metrics::Server>,
}

/// One configured and started port.
pub(crate) struct Started {
    role: PortRole,
    port: Port,
    device: String,
    pub mac: MacAddr,
    rx: Vec<Option<tandem_dpdk::RxQueue>>,
    tx: Vec<Option<tandem_dpdk::TxQueue>>,
    /// Whether the control core has its own transmit queue (the last one).
    control_queue: bool,
}

fn side(role: PortRole) -> Side {
    match role {
        PortRole::Outside => Side::Outside,
        PortRole::Inside => Side::Inside,
    }
}

/// A claimed port and what it can do.
struct Claimed {
    port: Port,
    device: String,
    info: tandem_dpdk::DevInfo,
}

/// Claims the port of `role` and reads its capabilities.
fn claim_port(profile: &Profile, role: PortRole) -> Result<Claimed, RuntimeError> {
    let device = profile.port(role).device.dpdk_name();
    let port = Port::by_name(&device).ctx(|| {
        format!(
            "ports.{role}: device {device} not found (is its --vdev in eal.args, or the PCI \
             device bound to vfio-pci?)"
        )
    })?;
    let info = port.info().ctx(|| format!("ports.{role}: device info"))?;
    Ok(Claimed { port, device, info })
}

/// Configures and starts the port of `role`, with RSS as flow affinity `path` needs.
fn start_port(
    profile: &Profile,
    role: PortRole,
    claimed: Claimed,
    pool: &Mempool,
    workers: u16,
    path: affinity::Affinity,
    hash_key: &tandem_engine::HashKey,
) -> Result<Started, RuntimeError> {
    let cfg = profile.port(role);
    let Claimed {
        mut port,
        device,
        info,
    } = claimed;
    // A memif port's rings are what its peer asked for: a generator with one receive
    // ring never sees an extra transmit queue's frames (ARP, probes). The control core
    // sends through worker 0 there.
    let control_queue = info.max_tx_queues > workers && info.driver_name != "net_memif";
    let tx_queues = if control_queue { workers + 1 } else { workers };
    if info.max_tx_queues < workers {
        return Err(RuntimeError::Lcores(format!(
            "ports.{role} ({device}, {}) has {} transmit queues; {workers} workers need one \
             each (net_af_packet: add qpairs=N to its --vdev)",
            info.driver_name, info.max_tx_queues
        )));
    }
    let (rss_hf, rss_key) = affinity::rss_settings(path, role, cfg.queues, &info, hash_key);
    let conf = PortConfig {
        rx_queues: cfg.queues,
        tx_queues,
        rx_desc: cfg.rx_descriptors,
        tx_desc: cfg.tx_descriptors,
        rss_hf,
        rss_key,
        // The engine keeps checksums right incrementally (RFC 1624).
        tx_checksum_offload: false,
        mtu: None,
        promiscuous: false,
    };
    let setup = port
        .configure(&conf, pool)
        .ctx(|| format!("ports.{role}: configure {device}"))?;
    if let Err(e) = port.set_mtu(cfg.mtu) {
        tracing::warn!(port = %role, mtu = cfg.mtu, error = %e, "could not set the MTU; keeping the device's");
    }
    let mac = MacAddr(
        port.mac_addr()
            .ctx(|| format!("ports.{role}: MAC address"))?,
    );
    port.start()
        .ctx(|| format!("ports.{role}: start {device}"))?;
    tracing::info!(
        port = %role,
        device = %device,
        mac = %mac,
        rx_queues = cfg.queues,
        tx_queues,
        control_queue,
        info = %info,
        "port started"
    );
    Ok(Started {
        role,
        port,
        device,
        mac,
        rx: setup.rx.into_iter().map(Some).collect(),
        tx: setup.tx.into_iter().map(Some).collect(),
        control_queue,
    })
}

/// DPDK's packet capture, for `dpdk-dumpcap` (README, "Capturing"): the capture server
/// registered; `false` when it could not be (the appliance runs without). Says in the log
/// whether a capturer can attach ([`dumpcap_prefix`]).
pub(crate) fn capture(profile: &Profile) -> bool {
    if let Err(e) = tandem_dpdk::pdump::init() {
        tracing::warn!(error = %e, "packet capture: no capture server; dpdk-dumpcap cannot attach");
        return false;
    }
    match dumpcap_prefix(&profile.eal.args) {
        Some(prefix) => tracing::info!(
            file_prefix = prefix,
            "packet capture: dpdk-dumpcap --file-prefix={prefix} -i DEVICE can attach"
        ),
        None => tracing::info!(
            "packet capture: the EAL runs without shared hugepage memory (--no-huge, \
             --in-memory or --no-shconf): dpdk-dumpcap cannot attach to this appliance"
        ),
    }
    true
}

/// The `--file-prefix` a DPDK secondary process (`dpdk-dumpcap`) must be given to attach
/// to a primary started with the EAL arguments `args` (DPDK's default, `rte`, when they
/// name none); `None` when it cannot attach: the primary's memory is not shared hugepage
/// memory (`--no-huge`, `--in-memory`), or it has no multi-process channel
/// (`--no-shconf`).
fn dumpcap_prefix(args: &[String]) -> Option<&str> {
    let has = |flag: &str| args.iter().any(|a| a == flag);
    if has("--no-huge") || has("--in-memory") || has("--no-shconf") {
        return None;
    }
    let prefix = args
        .iter()
        .position(|a| a == "--file-prefix")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
        .or_else(|| args.iter().find_map(|a| a.strip_prefix("--file-prefix=")));
    Some(prefix.unwrap_or("rte"))
}

/// Checks that the EAL started the lcores the profile names.
pub(crate) fn check_lcores(profile: &Profile) -> Result<(), RuntimeError> {
    let main = lcore::main_lcore();
    if main != profile.lcores.control {
        return Err(RuntimeError::Lcores(format!(
            "the EAL main lcore is {main}, the profile's control lcore is {}",
            profile.lcores.control
        )));
    }
    let enabled = lcore::worker_lcores();
    for w in &profile.lcores.workers {
        if !enabled.contains(w) {
            return Err(RuntimeError::Lcores(format!(
                "worker lcore {w} is not enabled by the EAL arguments (enabled: {enabled:?})"
            )));
        }
    }
    Ok(())
}

/// Stage 1, the ports: the mbuf pool, both ports claimed, configured and started, and the
/// flow-affinity path they allow.
pub(crate) fn ports(profile: &Profile, hash_key: HashKey) -> Result<DataPath, RuntimeError> {
    let l = &profile.limits;
    let pool = Mempool::new_pktmbuf(
        "tandem_mbufs",
        l.mbufs,
        l.mbuf_cache,
        DEFAULT_DATA_ROOM,
        None,
    )
    .ctx(|| {
        format!(
            "mbuf pool of {} (limits.mbufs; does it fit in the EAL's -m?)",
            l.mbufs
        )
    })?;
    let plan = profile.worker_plan();
    let nw = u16::try_from(plan.len()).unwrap_or(u16::MAX);
    let outside = claim_port(profile, PortRole::Outside)?;
    let inside = claim_port(profile, PortRole::Inside)?;
    let (mut path, mut why) = affinity::choose(profile, &outside.info, &inside.info);
    let mut ports = Vec::with_capacity(2);
    for (role, claimed) in PortRole::ALL.into_iter().zip([outside, inside]) {
        ports.push(start_port(
            profile, role, claimed, &pool, nw, path, &hash_key,
        )?);
    }
    if path == affinity::Affinity::Rss {
        // Both ports must hash the client fields with one key and send a hash to the same
        // queue index: set the tables, read everything back, else hand off.
        let (a, b) = ports.split_at_mut(1);
        if let Err(e) =
            affinity::settle_rss(&mut a[0].port, &mut b[0].port, profile.ports.outside.queues)
        {
            tracing::warn!(error = %e, "RSS on the client fields did not hold; handing frames off instead");
            (path, why) = (
                affinity::Affinity::HandOff,
                "the ports' RSS read back differently",
            );
        }
    }
    tracing::info!(path = %path, workers = plan.len(), why, "flow affinity");
    if path == affinity::Affinity::HandOff && plan.len() > affinity::MAX_HANDOFF_WORKERS {
        return Err(RuntimeError::Workers(format!(
            "{} workers on the hand-off path ({why}): at most {} (two rings per pair of \
             workers)",
            plan.len(),
            affinity::MAX_HANDOFF_WORKERS
        )));
    }
    Ok(DataPath {
        pool,
        plan,
        nw,
        ports,
        path,
    })
}

/// Stage 2, the workers: the rings between each worker and the control core (and between
/// the workers, on the hand-off path), and each worker's share of the queues.
pub(crate) fn workers(
    profile: &Profile,
    dp: &mut DataPath,
    hash_key: HashKey,
) -> Result<Wiring, RuntimeError> {
    let (plan, path, nw, pool) = (&dp.plan, dp.path, dp.nw, dp.pool);
    let ports = &mut dp.ports;
    let mut handoffs: Vec<Option<worker::HandOff>> = if path == affinity::Affinity::HandOff {
        let own = [
            u32::from(profile.ports.outside.address.address),
            u32::from(profile.ports.inside.address.address),
        ];
        affinity::handoff_rings(plan.len(), own, &hash_key)
            .ctx(|| "hand-off rings".to_owned())?
            .into_iter()
            .map(Some)
            .collect()
    } else {
        Vec::new()
    };
    // Rings and workers.
    let mut from_workers = Vec::new();
    let mut answers_rx = Vec::new();
    let mut signal_rx = Vec::new();
    let mut command_tx = Vec::new();
    let mut stats = Vec::new();
    let mut control_tx: [Option<ControlTx>; 2] = [None, None];
    let mut lists: Vec<Arc<listing::FlowList>> = Vec::new();
    let mut mailboxes: Vec<Arc<crate::msg::Mailbox>> = Vec::new();
    let mut ios = Vec::new();
    for w in plan {
        let (to_control, from) = ring::spsc(&format!("tandem_ctl_{}", w.id), RING_SIZE, None)
            .ctx(|| "ring to the control core".to_owned())?;
        let (answers_tx, answers) = ring::spsc(
            &format!("tandem_ans_{}", w.id),
            gate::ANSWER_RING_SIZE,
            None,
        )
        .ctx(|| "answer ring to the control core".to_owned())?;
        answers_rx.push(answers);
        let (sig_tx, sig_rx) = ring::spsc(&format!("tandem_sig_{}", w.id), MSG_RING_SIZE, None)
            .ctx(|| "signal ring".to_owned())?;
        let (cmd_tx, cmd_rx) = ring::spsc(&format!("tandem_cmd_{}", w.id), MSG_RING_SIZE, None)
            .ctx(|| "command ring".to_owned())?;
        from_workers.push(from);
        signal_rx.push(sig_rx);
        command_tx.push(cmd_tx);
        let slot = Arc::new(WorkerStats::default());
        stats.push((w.lcore, slot.clone()));
        let mut rx = Vec::new();
        for &(role, q) in &w.rx {
            let p = &mut ports[usize::from(role == PortRole::Inside)];
            let queue =
                p.rx.get_mut(usize::from(q))
                    .and_then(Option::take)
                    .ok_or_else(|| {
                        RuntimeError::Lcores(format!("{role} queue {q} is not configured"))
                    })?;
            rx.push((side(role), queue));
        }
        let mut txq = |i: usize| {
            ports[i]
                .tx
                .get_mut(usize::from(w.tx_queue))
                .and_then(Option::take)
                .ok_or_else(|| {
                    RuntimeError::Lcores(format!("transmit queue {} missing", w.tx_queue))
                })
        };
        let (tx_outside, tx_inside) = (txq(0)?, txq(1)?);
        let mut via: [Option<ring::Consumer<tandem_dpdk::Mbuf>>; 2] = [None, None];
        if w.id == 0 {
            for (i, p) in ports.iter_mut().enumerate() {
                control_tx[i] = Some(if p.control_queue {
                    let q =
                        p.tx.get_mut(usize::from(nw))
                            .and_then(Option::take)
                            .ok_or_else(|| {
                                RuntimeError::Lcores("control transmit queue missing".to_owned())
                            })?;
                    ControlTx::Own(q)
                } else {
                    let (prod, cons) =
                        ring::spsc(&format!("tandem_ctx_{}", p.role), RING_SIZE, None)
                            .ctx(|| "control transmit ring".to_owned())?;
                    via[i] = Some(cons);
                    tracing::info!(port = %p.role, "the control core sends through worker 0");
                    ControlTx::ViaWorker(prod)
                });
            }
        }
        ios.push(WorkerIo {
            id: w.id,
            lcore: w.lcore,
            rx,
            tx_outside,
            tx_inside,
            to_control,
            answers: answers_tx,
            gate: gate::Gate::new(profile.limits.control_rate, profile.limits.control_burst),
            signals: sig_tx,
            commands: cmd_rx,
            control_tx: via,
            flow_list: {
                let l = Arc::new(listing::FlowList::default());
                lists.push(l.clone());
                l
            },
            mailbox: {
                let m = Arc::new(crate::msg::Mailbox::default());
                mailboxes.push(m.clone());
                m
            },
            stats: slot,
            pool,
            handoff: handoffs.get_mut(w.id).and_then(Option::take),
            sync: None,
        });
    }

    let [Some(out_tx), Some(in_tx)] = control_tx else {
        return Err(RuntimeError::Lcores("no worker lcore".to_owned()));
    };
    Ok(Wiring {
        ios,
        ends: ControlEnds {
            from_workers,
            answers: answers_rx,
            signals: signal_rx,
            commands: command_tx,
            control_tx: [out_tx, in_tx],
            lists,
            mailboxes,
        },
        stats,
    })
}

/// Stage 3, the control core: its ports, neighbours, health monitor, the management
/// socket and the metrics listener (the data path runs without either; a warning says
/// why).
pub(crate) fn control(
    profile: &Profile,
    dp: &DataPath,
    mapped: &Mapped,
    ends: ControlEnds,
    stats: &[(u32, Arc<WorkerStats>)],
    access: access::Access,
    pair: Option<crate::pair::Pair>,
) -> Result<Serving, RuntimeError> {
    let ports = &dp.ports;
    let pool = dp.pool;
    let macs = (ports[0].mac, ports[1].mac);
    let vips: Vec<Ipv4Addr> = profile.vips();
    let ControlEnds {
        from_workers,
        answers: answers_rx,
        signals: signal_rx,
        commands: command_tx,
        control_tx: [out_tx, in_tx],
        lists,
        mailboxes,
    } = ends;
    let stats = stats.to_vec();
    // The control core's state. With a pair, the VIPs and the `ha.floating` addresses
    // move with the active role (DESIGN §6b).
    let mut answers_out = vec![profile.ports.outside.address.address];
    answers_out.extend(vips.iter().copied());
    let mut answers_in = vec![profile.ports.inside.address.address];
    let (mut floating_out, mut floating_in) = (Vec::new(), Vec::new());
    if let Some(ha) = &profile.ha {
        floating_out.extend(vips.iter().copied());
        for (answers, floating, role) in [
            (&mut answers_out, &mut floating_out, PortRole::Outside),
            (&mut answers_in, &mut floating_in, PortRole::Inside),
        ] {
            for ip in ha.floating_on(&profile.ports, role) {
                if !answers.contains(&ip) {
                    answers.push(ip);
                }
                if !floating.contains(&ip) {
                    floating.push(ip);
                }
            }
        }
    }
    let cports = [
        ControlPort {
            side: Side::Outside,
            port_id: ports[0].port.id(),
            mac: macs.0,
            address: profile.ports.outside.address.address,
            answers: answers_out,
            floating: floating_out,
            tx: out_tx,
        },
        ControlPort {
            side: Side::Inside,
            port_id: ports[1].port.id(),
            mac: macs.1,
            address: profile.ports.inside.address.address,
            answers: answers_in,
            floating: floating_in,
            tx: in_tx,
        },
    ];
    let mut neighbours: Vec<Neighbour> = Vec::new();
    let mut track =
        |ip: Ipv4Addr, side: Side, what: String, replica: Option<tandem_engine::ReplicaId>| {
            match neighbours.iter_mut().find(|n| n.ip == ip && n.side == side) {
                Some(n) => n.replicas.extend(replica),
                None => neighbours.push(Neighbour::new(
                    ip,
                    side,
                    what,
                    replica.into_iter().collect(),
                )),
            }
        };
    for r in &mapped.replica_list {
        match profile.ports.inside.next_hop(r.address) {
            Some(hop) if hop == r.address => {
                track(hop, Side::Inside, format!("replica {}", r.name), Some(r.id))
            }
            Some(hop) => track(hop, Side::Inside, "inside gateway".to_owned(), Some(r.id)),
            None => {
                tracing::warn!(replica = %r.name, "no route to the replica: not on the inside subnet and no gateway")
            }
        }
    }
    if let Some(gw) = profile.ports.outside.gateway {
        track(gw, Side::Outside, "outside gateway".to_owned(), None);
    }
    if let Some(gw) = profile.ports.inside.gateway {
        track(gw, Side::Inside, "inside gateway".to_owned(), None);
    }
    let mut monitor = health::Monitor::new();
    for s in &profile.services {
        let settings = health::Settings::from_config(&s.health);
        for r in &s.replicas {
            if let Some(info) = mapped.replica_list.iter().find(|i| i.address == r.address) {
                monitor.add(info.id, info.address, &settings);
            }
        }
    }
    let names: Vec<(String, tandem_engine::ReplicaId)> = mapped
        .replica_list
        .iter()
        .map(|r| (r.name.clone(), r.id))
        .collect();
    // The management socket: the data path runs without it (a warning says why).
    let listeners = metrics::Listeners::default();
    let group = access.group.as_ref().map(|(name, _)| name.clone());
    let (mgmt_server, mgmt_rx) = match mgmt::Server::start(
        &profile.management.socket,
        access,
        listeners.management.clone(),
    ) {
        Ok((s, rx)) => {
            tracing::info!(socket = %profile.management.socket.display(),
                group = group.as_deref().unwrap_or("(root only)"), "management socket up");
            (Some(s), Some(rx))
        }
        Err(e) => {
            tracing::warn!(socket = %profile.management.socket.display(), error = %e,
                "no management socket: `tandem status` and the other commands cannot reach this appliance");
            (None, None)
        }
    };
    let service_status: Vec<crate::answer::ServiceStatus> = profile
        .services
        .iter()
        .map(|s| crate::answer::ServiceStatus {
            name: s.name.clone(),
            vip: s.vip,
            port: s.port.to_string(),
            mode: s.mode.to_string(),
            copies: usize::from(s.copies),
            selection: format!("{:?}", s.selection).to_lowercase(),
        })
        .collect();
    // Prometheus metrics: the data path runs without them too.
    let shared = Arc::new(metrics::Shared {
        workers: stats.clone(),
        control: std::sync::Mutex::new(Default::default()),
        ha: std::sync::Mutex::new(None),
        replicas: mapped.replicas.clone(),
        names: std::sync::Mutex::new(names.clone()),
        recovery: std::sync::Mutex::new(stats::histogram(stats::RECOVERY_MAX_NS)),
        new_flows_per_second: std::sync::atomic::AtomicU64::new(0),
        replica_failovers: std::sync::Mutex::new(Vec::new()),
        replica_diverged: std::sync::Mutex::new(Vec::new()),
        listeners,
        device: std::sync::Mutex::new(Default::default()),
    });
    for (cmd, help) in [
        (
            "/tandem/stats",
            "Tandem's counters, all workers summed. No parameters",
        ),
        (
            "/tandem/status",
            "Tandem's replicas and their health, flows. No parameters",
        ),
    ] {
        let sh = shared.clone();
        let handler: tandem_dpdk::telemetry::Handler = if cmd == "/tandem/stats" {
            std::sync::Arc::new(move |_| sh.stats_dict())
        } else {
            std::sync::Arc::new(move |_| sh.status_dict())
        };
        if let Err(rc) = tandem_dpdk::telemetry::register(cmd, help, handler) {
            tracing::warn!(cmd, rc, "DPDK telemetry refused the command");
        }
    }
    let metrics_server = match profile.management.metrics {
        None => None,
        Some(addr) => match metrics::Server::start(addr, shared.clone()) {
            Ok(s) => {
                tracing::info!(%addr, "metrics at http://{addr}/metrics");
                Some(s)
            }
            Err(e) => {
                tracing::warn!(%addr, error = %e, "no metrics listener");
                None
            }
        },
    };
    // Replicas the profile drains: as `tandem drain` (no new flows).
    let mut admin = Vec::new();
    for s in &profile.services {
        for r in s.replicas.iter().filter(|r| r.drain) {
            if let Some(info) = mapped.replica_list.iter().find(|i| i.address == r.address) {
                mapped
                    .replicas
                    .set_health(info.id, tandem_engine::Health::Draining);
                admin.push((info.id, control::Admin::Drained));
            }
        }
    }
    let services = profile
        .services
        .iter()
        .zip(&mapped.engine.services)
        .map(|(s, e)| control::ServiceEntry {
            name: s.name.clone(),
            vip: s.vip,
            port: e.port,
            pool: e.replicas.clone(),
            health: health::Settings::from_config(&s.health),
        })
        .collect();
    let control = Control {
        services,
        inside: profile.ports.inside.clone(),
        lists,
        listing: None,
        list_seq: 0,
        shared: Some(shared),
        mgmt: mgmt_rx,
        names,
        admin,
        service_status,
        ports: cports,
        from_workers,
        answers: answers_rx,
        signals: signal_rx,
        commands: command_tx,
        pool,
        neighbours,
        replicas: mapped.replicas.clone(),
        arp_refresh_ns: u64::try_from(profile.timeouts.arp_refresh.as_nanos()).unwrap_or(u64::MAX),
        counters: Default::default(),
        workers: stats.clone(),
        monitor,
        divergence: Default::default(),
        profile: profile.clone(),
        reloading: None,
        mailboxes,
        service: tandem_control::notify::ServiceManager::from_env(),
        pair,
        pair_actions: Vec::with_capacity(16),
        device: crate::device::DeviceReader::new(
            vec![pool],
            ports
                .iter()
                .map(|p| (p.role.as_str(), p.device.clone(), p.port.stats_reader())),
        ),
    };

    Ok(Serving {
        control,
        mgmt: mgmt_server,
        metrics: metrics_server,
    })
}

/// Stage 4, the launch: each worker on its lcore. Returns the lcores launched, and the
/// error that stopped the launch, if one did.
pub(crate) fn launch(
    ios: Vec<WorkerIo>,
    mapped: &Mapped,
    running: &Arc<AtomicBool>,
    clock: Clock,
) -> (Vec<u32>, Option<RuntimeError>) {
    // Launch the workers.
    let mut launched = Vec::new();
    let mut launch_error = None;
    for io in ios {
        let lc = io.lcore;
        let (cfg, replicas, running) = (
            mapped.engine.clone(),
            mapped.replicas.clone(),
            running.clone(),
        );
        match lcore::launch_on(lc, move || worker::run(io, cfg, replicas, running, clock)) {
            Ok(()) => launched.push(lc),
            Err(e) => {
                launch_error = Some(RuntimeError::Dpdk {
                    what: format!("launching the worker on lcore {lc}"),
                    source: e,
                });
                break;
            }
        }
    }
    (launched, launch_error)
}

/// Stage 5, the teardown: workers first, then the control core and its listeners, then
/// the ports. Returns the summary and a worker's failure, if one failed. The EAL is left to
/// the caller.
pub(crate) fn teardown(
    running: &AtomicBool,
    launched: &[u32],
    started: Instant,
    stats: &[(u32, Arc<WorkerStats>)],
    serving: Serving,
    dp: DataPath,
) -> (Summary, Option<RuntimeError>) {
    let Serving {
        control,
        mgmt: mgmt_server,
        metrics: metrics_server,
    } = serving;
    let ports = dp.ports;
    running.store(false, Ordering::Relaxed);
    let mut worker_error = None;
    for lc in launched {
        match lcore::wait(*lc) {
            Ok(0) => {}
            Ok(rc) => worker_error = Some(RuntimeError::Worker(*lc, rc)),
            Err(e) => tracing::error!(lcore = lc, error = %e, "waiting for the worker"),
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let mut summary = Summary {
        seconds,
        workers: stats
            .iter()
            .map(|(lc, s)| {
                let (e, io) = s.read();
                (*lc, e, io)
            })
            .collect(),
        control: control.counters,
        ports: Vec::new(),
        neighbours: control
            .neighbours
            .iter()
            .map(|n| (n.ip, n.mac, n.what.clone()))
            .collect(),
    };
    drop(control);
    drop(mgmt_server);
    drop(metrics_server);
    for p in ports {
        let stats = p.port.stats().unwrap_or_default();
        summary.ports.push(PortSummary {
            role: p.role.as_str(),
            device: p.device.clone(),
            stats,
        });
        // Queue handles not handed out are dropped with `p`.
        let Started { port, rx, tx, .. } = p;
        drop((rx, tx));
        if let Err(e) = port.close() {
            tracing::warn!(error = %e, "closing a port");
        }
    }
    (summary, worker_error)
}

/// How this appliance's pair routes a record from its peer to the worker that owns the
/// flow here: as its own ports and workers do (`crate::affinity`).
pub(crate) fn pair_route(
    dp: &DataPath,
    hash_key: HashKey,
) -> Result<crate::pair::Route, RuntimeError> {
    Ok(match dp.path {
        affinity::Affinity::Single => crate::pair::Route::Single,
        affinity::Affinity::HandOff => crate::pair::Route::HandOff {
            workers: dp.plan.len(),
            key: hash_key,
        },
        affinity::Affinity::Rss => {
            // What the outside port hashes with (the inside one agrees: settled at start).
            let port = &dp.ports[0].port;
            let (_, key) = port
                .rss_conf()
                .ctx(|| "ports.outside: reading the RSS settings for the pair".to_owned())?;
            let reta = port
                .reta()
                .ctx(|| "ports.outside: reading the redirection table for the pair".to_owned())?;
            let mut worker_of_queue = Vec::new();
            for w in &dp.plan {
                for &(role, q) in &w.rx {
                    if role == PortRole::Outside {
                        let q = usize::from(q);
                        if worker_of_queue.len() <= q {
                            worker_of_queue.resize(q + 1, 0);
                        }
                        worker_of_queue[q] = w.id;
                    }
                }
            }
            crate::pair::Route::Rss {
                model: tandem_engine::affinity::RssModel::from_parts(key, reta),
                worker_of_queue,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::dumpcap_prefix;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn dumpcap_attaches_with_the_file_prefix_only_to_shared_hugepage_memory() {
        assert_eq!(
            dumpcap_prefix(&args("-l 0-1 -m 256 --file-prefix tandem-lab")),
            Some("tandem-lab")
        );
        assert_eq!(
            dumpcap_prefix(&args("-l 0-1 --file-prefix=lab2")),
            Some("lab2")
        );
        assert_eq!(dumpcap_prefix(&args("-l 0-1 -a 0000:3b:00.0")), Some("rte"));
        for without in ["--no-huge", "--in-memory", "--no-shconf"] {
            let a = args(&format!("-l 0-1 {without} --file-prefix tandem-lab"));
            assert_eq!(dumpcap_prefix(&a), None, "{without}");
        }
    }
}
