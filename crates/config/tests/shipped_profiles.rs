//! The profiles shipped in `configs/` load, validate and say what they mean.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use tandem_config::{
    load, Device, Mode, PortRole, Replay, ReplayScope, Selection, ServicePort, WorkerAssignment,
};

fn config(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../configs")
        .join(name)
}

#[test]
fn lab_profile_loads() {
    let p = match load(&config("lab.yaml")) {
        Ok(p) => p,
        Err(e) => panic!("lab.yaml: {e}"),
    };
    assert_eq!(p.lcores.control, 0);
    assert_eq!(p.lcores.workers, [1]);
    assert_eq!(
        p.ports.outside.device,
        Device::Virtual("net_af_packet0".into())
    );
    assert_eq!(
        p.ports.inside.device,
        Device::Virtual("net_af_packet1".into())
    );
    assert_eq!(p.ports.outside.address.to_string(), "198.18.0.1/24");
    assert_eq!(p.ports.inside.address.to_string(), "198.19.0.1/24");
    assert!(p.eal.args.iter().any(|a| a == "--no-huge"));
    assert!(p
        .eal
        .args
        .iter()
        .any(|a| a.starts_with("net_af_packet1,iface=in0,")));

    assert_eq!(p.services.len(), 1);
    let s = &p.services[0];
    assert_eq!(s.vip, Ipv4Addr::new(198, 18, 0, 100));
    assert_eq!(s.port, ServicePort::Any);
    assert_eq!(s.mode, Mode::Mirror);
    assert_eq!(s.copies, 2);
    assert_eq!(s.selection, Selection::Ordered);
    let names: Vec<&str> = s.replicas.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["primary", "backup", "spare"]);
    assert_eq!(s.replicas[2].address, Ipv4Addr::new(198, 19, 0, 13));
    assert_eq!(s.health.probe_ports, [7000, 80]);
    assert_eq!(s.health.interval, Duration::from_millis(10));
    assert_eq!(s.health.output_lag, None);
    assert_eq!(s.health.ack_lag, Some(Duration::from_millis(50)));
    assert_eq!(s.health.detection_time(), Duration::from_millis(30));

    // One worker polls queue 0 of both ports and owns transmit queue 0.
    assert_eq!(
        p.workers,
        [
            WorkerAssignment {
                lcore: 1,
                port: PortRole::Outside,
                queue: 0
            },
            WorkerAssignment {
                lcore: 1,
                port: PortRole::Inside,
                queue: 0
            },
        ]
    );
    let plan = p.worker_plan();
    assert_eq!(plan.len(), 1);
    assert_eq!(plan[0].rx, [(PortRole::Outside, 0), (PortRole::Inside, 0)]);
    assert_eq!(p.tx_queues_per_port(), 1);
    assert!(p
        .service_for(Ipv4Addr::new(198, 18, 0, 100), 12345)
        .is_some());
    assert!(p.service_for(Ipv4Addr::new(198, 18, 0, 101), 80).is_none());
    // The lab runs as root: no group may use its socket.
    assert_eq!(p.management.group, None);
}

#[test]
fn appliance_profile_loads() {
    let p = match load(&config("appliance-2port.yaml")) {
        Ok(p) => p,
        Err(e) => panic!("appliance-2port.yaml: {e}"),
    };
    assert!(matches!(p.ports.outside.device, Device::Pci(_)));
    assert_eq!(p.ports.outside.device.to_string(), "0000:3b:00.0");
    assert_eq!(p.ports.inside.device.to_string(), "0000:3b:00.1");
    assert_eq!(p.ports.outside.gateway, Some(Ipv4Addr::new(192, 0, 2, 1)));
    assert_eq!(p.lcores.workers, [1, 2, 3, 4]);
    assert_eq!(p.ports.outside.queues, 2);
    assert_eq!(p.ports.inside.queues, 2);
    assert!(!p.eal.args.iter().any(|a| a == "--no-huge"));
    let plan = p.worker_plan();
    assert_eq!(plan.len(), 4);
    assert_eq!(plan[2].lcore, 3);
    assert_eq!(plan[2].rx, [(PortRole::Inside, 0)]);
    assert_eq!(plan[2].tx_queue, 2);
    assert_eq!(p.tx_queues_per_port(), 4);

    let ports: Vec<ServicePort> = p.services.iter().map(|s| s.port).collect();
    assert_eq!(ports, [ServicePort::Single(6379), ServicePort::Single(80)]);
    assert_eq!(p.services[0].health.probe_ports, [6379]);
    assert_eq!(
        p.services[0].health.suspect_interval,
        Duration::from_micros(500)
    );
    assert_eq!(p.services[1].mode, Mode::Reconnect);
    assert_eq!(p.services[1].copies, 1);
    // The web service replays HTTP requests; redis, in mirror mode, has the defaults.
    assert_eq!(
        p.services[1].replay,
        Replay {
            scope: ReplayScope::Http1,
            limit: 256 << 10,
            methods: vec!["GET".into(), "HEAD".into(), "OPTIONS".into()],
            exclude_headers: vec!["Date".into(), "Server".into()],
            connect_timeout: Duration::from_millis(20),
            fin_hold: Duration::from_millis(50),
            parallel: 64,
        }
    );
    assert!(p.services[1].replay.fin_hold >= p.services[1].health.suspect_decision_time());
    assert_eq!(p.services[0].replay, Replay::default());
    assert_eq!(p.limits.replay_bytes_total, 256 << 20);
    assert_eq!(p.vips().len(), 2);
    assert_eq!(p.management.group.as_deref(), Some("tandem"));
}

/// The explicit `workers` list of the appliance profile is what the default would derive.
#[test]
fn appliance_workers_match_the_default() {
    let text = std::fs::read_to_string(config("appliance-2port.yaml")).expect("readable");
    let start = text.find("\nworkers:").expect("has workers");
    let end = text.find("\nservices:").expect("has services");
    let without = format!("{}{}", &text[..start], &text[end..]);
    let explicit = tandem_config::parse("a.yaml", &text).expect("valid");
    let derived = tandem_config::parse("b.yaml", &without).expect("valid");
    assert_eq!(explicit.workers, derived.workers);
}

/// Every field line of the shipped profiles carries a comment (on the line, or as the line
/// above).
#[test]
fn every_field_is_commented() {
    for name in ["lab.yaml", "appliance-2port.yaml"] {
        let text = std::fs::read_to_string(config(name)).expect("readable");
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let t = line.trim_start();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let above = i > 0 && lines[i - 1].trim_start().starts_with('#');
            // A list item continuing a commented item (`- name: x` then `address: y`) and
            // the value line of an EAL option count as commented by their first line.
            let continues = i > 0 && {
                let prev = lines[i - 1].trim_start();
                (prev.starts_with("- name:") && t.starts_with("address:"))
                    || (prev.starts_with("- -") && prev.contains('#'))
            };
            assert!(
                line.contains('#') || above || continues,
                "{name}:{}: no comment: {line}",
                i + 1
            );
        }
    }
}

/// Every shipped profile, written back by `Profile::to_yaml`, reads back the same.
#[test]
fn shipped_profiles_are_written_back() {
    for name in ["lab.yaml", "appliance-2port.yaml"] {
        let p = load(&config(name)).expect("valid");
        let text = p.to_yaml().expect("writes");
        let back = tandem_config::parse(name, &text)
            .unwrap_or_else(|e| panic!("{name} written back:\n{text}\n{e}"));
        assert_eq!(back, p, "{name} written back:\n{text}");
        // `workers` is left out where lcores and ports derive it.
        assert!(!text.contains("\nworkers:"), "{name}:\n{text}");
    }
}

/// A `workers` list that is not the derived one is written out, and reads back the same.
#[test]
fn explicit_workers_are_written_back() {
    let mut p = load(&config("appliance-2port.yaml")).expect("valid");
    p.workers.swap(0, 1);
    let (a, b) = (p.workers[0].lcore, p.workers[1].lcore);
    p.workers[0].lcore = b;
    p.workers[1].lcore = a;
    assert_ne!(
        p.workers,
        WorkerAssignment::derived(&p.lcores.workers, &p.ports)
    );
    let text = p.to_yaml().expect("writes");
    assert!(text.contains("\nworkers:"), "{text}");
    let back = tandem_config::parse("swapped.yaml", &text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back, p);
}

/// Replay settings are written as the service's mode allows them, and read back the same:
/// the HTTP ones only with the http1 scope, only what mirror mode uses, none in forward
/// mode.
#[test]
fn replay_settings_are_written_back() {
    let base = load(&config("appliance-2port.yaml")).expect("valid");
    let mut variants = Vec::new();
    let mut stream = base.clone();
    stream.services[1].replay.scope = ReplayScope::Stream;
    stream.services[1].replay.methods = Replay::default().methods;
    stream.services[1].replay.exclude_headers = Replay::default().exclude_headers;
    variants.push(("reconnect, stream", stream));
    let mut mirror = base.clone();
    mirror.services[0].replay.limit = 0;
    mirror.services[0].replay.parallel = 8;
    variants.push(("mirror, limit 0", mirror));
    let mut forward = base.clone();
    forward.services[0].mode = Mode::Forward;
    forward.services[0].copies = 1;
    variants.push(("forward", forward));
    let mut sizes = base;
    sizes.limits.replay_bytes_total = (1 << 30) + 1;
    sizes.limits.hold_bytes_total = 3 << 30;
    variants.push(("odd sizes", sizes));
    for (what, p) in variants {
        let text = p.to_yaml().expect("writes");
        let back = tandem_config::parse(what, &text)
            .unwrap_or_else(|e| panic!("{what} written back:\n{text}\n{e}"));
        assert_eq!(back, p, "{what} written back:\n{text}");
    }
}
