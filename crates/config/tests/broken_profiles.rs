//! `tandem check` on broken profiles: each must be rejected with the right
//! `file:line:column: field` and a message that says what is wrong.
//!
//! Most cases take [`BASE`], a small valid lab profile, and change one line of it, so the
//! expected line numbers can be read off `BASE` below.

use std::time::Duration;

use tandem_config::{parse, ConfigError, Mode, NoReplica, Replay, ReplayScope, ServicePort};

/// A valid profile; the numbers on the right are line numbers.
const BASE: &str = "\
eal:
  args: [-l, \"0-2\", --no-huge, -m, \"512\", --no-pci, --file-prefix, t,
         --vdev, \"net_af_packet0,iface=out0\", --vdev, \"net_af_packet1,iface=in0\"]
lcores:
  control: 0
  workers: [1, 2]
ports:
  outside:
    device: net_af_packet0
    address: 198.18.0.1/24
  inside:
    device: net_af_packet1
    address: 198.19.0.1/24
services:
  - name: lab
    vip: 198.18.0.100
    port: any
    mode: mirror
    copies: 2
    replicas:
      - name: primary
        address: 198.19.0.11
      - name: backup
        address: 198.19.0.12
    health:
      probe_ports: [7000, 80]
      interval: 10ms
      fall: 3
timeouts:
  syn: 5s
limits:
  mbufs: 32767
  hold_segments_total: 16384
";
//  1 eal:
//  6   workers: [1, 2]
// 10     address: 198.18.0.1/24
// 13     address: 198.19.0.1/24
// 15   - name: lab
// 16     vip: 198.18.0.100
// 17     port: any
// 18     mode: mirror
// 19     copies: 2
// 23       - name: backup
// 24         address: 198.19.0.12
// 26       probe_ports: [7000, 80]
// 27       interval: 10ms
// 28       fall: 3
// 30   syn: 5s
// 32   mbufs: 32767
// 33   hold_segments_total: 16384

/// `BASE` with the one occurrence of `from` replaced by `to`.
fn edit(from: &str, to: &str) -> String {
    assert_eq!(
        BASE.matches(from).count(),
        1,
        "`{from}` must occur once in BASE"
    );
    BASE.replace(from, to)
}

/// Parses `text` as `configs/bad.yaml`, expects it rejected, and checks that the first
/// diagnostic starts with `prefix` (`file:line:column: field:`) and contains `phrase`.
/// Returns the error for further checks.
#[track_caller]
fn rejects(text: &str, prefix: &str, phrase: &str) -> ConfigError {
    let err = match parse("configs/bad.yaml", text) {
        Ok(_) => panic!("accepted a broken profile; expected `{prefix} … {phrase}`"),
        Err(e) => e,
    };
    let first = err
        .diagnostics()
        .first()
        .map(ToString::to_string)
        .unwrap_or_else(|| panic!("no diagnostic: {err}"));
    assert!(
        first.starts_with(prefix),
        "expected prefix `{prefix}`, got:\n{err}"
    );
    assert!(first.contains(phrase), "expected `{phrase}` in:\n{err}");
    assert!(first.contains("(allowed: "), "no allowed part in:\n{first}");
    // The Display of the whole error starts with the first diagnostic.
    assert!(err.to_string().starts_with(&first));
    err
}

#[test]
fn base_is_valid() {
    if let Err(e) = parse("base.yaml", BASE) {
        panic!("{e}");
    }
}

// ---- values that parse but are not allowed -------------------------------------------

#[test]
fn zero_interval() {
    let err = rejects(
        &edit("interval: 10ms", "interval: 0ms"),
        "configs/bad.yaml:27:17: services[0].health.interval: ",
        "must be greater than zero (allowed: a duration greater than zero",
    );
    assert!(
        matches!(err, ConfigError::Invalid(ref d) if d.len() == 1),
        "{err}"
    );
}

#[test]
fn duration_without_unit() {
    rejects(
        &edit("interval: 10ms", "interval: 10"),
        "configs/bad.yaml:27:17: services[0].health.interval: ",
        "`10` has no unit",
    );
}

#[test]
fn fall_zero() {
    rejects(
        &edit("fall: 3", "fall: 0"),
        "configs/bad.yaml:28:13: services[0].health.fall: ",
        "must be greater than zero (allowed: 1..=1000)",
    );
}

#[test]
fn copies_more_than_replicas() {
    rejects(
        &edit("copies: 2", "copies: 3"),
        "configs/bad.yaml:19:13: services[0].copies: ",
        "3 copies but the pool has 2 replicas (allowed: 1..=2",
    );
}

#[test]
fn copies_above_three() {
    let text = edit("copies: 2", "copies: 4");
    rejects(
        &text,
        "configs/bad.yaml:19:13: services[0].copies: ",
        "4 copies",
    );
}

#[test]
fn duplicate_replica_name() {
    rejects(
        &edit("- name: backup", "- name: primary"),
        "configs/bad.yaml:23:15: services[0].replicas[1].name: ",
        "`primary` is also the name of replicas[0]",
    );
}

#[test]
fn duplicate_replica_address() {
    rejects(
        &edit("address: 198.19.0.12", "address: 198.19.0.11"),
        "configs/bad.yaml:24:18: services[0].replicas[1].address: ",
        "198.19.0.11 is also the address of replicas[0] (primary)",
    );
}

#[test]
fn replica_off_the_inside_subnet() {
    rejects(
        &edit("address: 198.19.0.12", "address: 10.1.2.3"),
        "configs/bad.yaml:24:18: services[0].replicas[1].address: ",
        "10.1.2.3 is not on the inside subnet 198.19.0.0/24 and ports.inside has no gateway",
    );
}

#[test]
fn replica_off_the_inside_subnet_is_fine_with_a_gateway() {
    let text = edit("address: 198.19.0.12", "address: 10.1.2.3").replace(
        "    address: 198.19.0.1/24\n",
        "    address: 198.19.0.1/24\n    gateway: 198.19.0.254\n",
    );
    if let Err(e) = parse("ok.yaml", &text) {
        panic!("{e}");
    }
}

#[test]
fn replica_on_the_outside_subnet() {
    rejects(
        &edit("address: 198.19.0.12", "address: 198.18.0.12"),
        "configs/bad.yaml:24:18: services[0].replicas[1].address: ",
        "is on the outside subnet",
    );
}

#[test]
fn vip_is_a_port_address() {
    rejects(
        &edit("vip: 198.18.0.100", "vip: 198.18.0.1"),
        "configs/bad.yaml:16:10: services[0].vip: ",
        "198.18.0.1 is the address of ports.outside",
    );
}

#[test]
fn vip_on_the_inside_subnet() {
    rejects(
        &edit("vip: 198.18.0.100", "vip: 198.19.0.100"),
        "configs/bad.yaml:16:10: services[0].vip: ",
        "is on the inside subnet 198.19.0.0/24",
    );
}

#[test]
fn worker_is_the_control_lcore() {
    rejects(
        &edit("workers: [1, 2]", "workers: [0, 2]"),
        "configs/bad.yaml:6:13: lcores.workers[0]: ",
        "lcore 0 is the control lcore",
    );
}

#[test]
fn worker_listed_twice() {
    rejects(
        &edit("workers: [1, 2]", "workers: [1, 1]"),
        "configs/bad.yaml:6:16: lcores.workers[1]: ",
        "lcore 1 is listed twice",
    );
}

#[test]
fn worker_not_started_by_the_eal() {
    rejects(
        &edit("workers: [1, 2]", "workers: [1, 5]"),
        "configs/bad.yaml:6:16: lcores.workers[1]: ",
        "lcore 5 is not started by the EAL arguments (-l 0-2)",
    );
}

#[test]
fn more_workers_than_queues() {
    let text = edit("workers: [1, 2]", "workers: [1, 2, 3]").replace("\"0-2\"", "\"0-3\"");
    rejects(
        &text,
        "configs/bad.yaml:6:3: lcores.workers: ",
        "3 worker lcores but only 2 receive queues",
    );
}

#[test]
fn service_port_zero() {
    rejects(
        &edit("port: any", "port: 0"),
        "configs/bad.yaml:17:11: services[0].port: ",
        "port 0 is not a TCP port (allowed: `any`, a port number 1..=65535",
    );
}

#[test]
fn service_port_too_large() {
    rejects(
        &edit("port: any", "port: 65536"),
        "configs/bad.yaml:17:11: services[0].port: ",
        "65536 is above 65535",
    );
}

#[test]
fn probe_port_zero() {
    rejects(
        &edit("probe_ports: [7000, 80]", "probe_ports: [7000, 0]"),
        "configs/bad.yaml:26:27: services[0].health.probe_ports[1]: ",
        "0 is not a TCP port",
    );
}

#[test]
fn probing_any_needs_ports() {
    rejects(
        &edit("      probe_ports: [7000, 80]\n", ""),
        "configs/bad.yaml:25:5: services[0].health.probe_ports: ",
        "the service port is `any`, and probing needs concrete ports",
    );
}

#[test]
fn address_without_prefix() {
    rejects(
        &edit("address: 198.19.0.1/24", "address: 198.19.0.1"),
        "configs/bad.yaml:13:14: ports.inside.address: ",
        "`198.19.0.1` has no prefix length",
    );
}

#[test]
fn overlapping_subnets() {
    rejects(
        &edit("address: 198.19.0.1/24", "address: 198.18.200.1/16"),
        "configs/bad.yaml:13:14: ports.inside.address: ",
        "overlaps the outside subnet 198.18.0.0/24",
    );
}

#[test]
fn device_without_its_vdev() {
    rejects(
        &edit("device: net_af_packet1", "device: net_af_packet2"),
        "configs/bad.yaml:12:13: ports.inside.device: ",
        "net_af_packet2 is not created by any --vdev",
    );
}

#[test]
fn pci_device_with_no_pci() {
    rejects(
        &edit("device: net_af_packet1", "device: \"0000:3b:00.1\""),
        "configs/bad.yaml:12:13: ports.inside.device: ",
        "eal.args has --no-pci",
    );
}

#[test]
fn timeout_zero() {
    rejects(
        &edit("syn: 5s", "syn: 0s"),
        "configs/bad.yaml:30:8: timeouts.syn: ",
        "must be greater than zero",
    );
}

#[test]
fn mbuf_pool_too_small() {
    rejects(
        &edit("mbufs: 32767", "mbufs: 4095"),
        "configs/bad.yaml:32:10: limits.mbufs: ",
        "4095 mbufs cannot fill the rings",
    );
}

/// `BASE` with a `management` section (lines 34 to 36) giving `group`.
#[test]
fn logging_format_journald_is_read() {
    let text = format!("{BASE}logging:\n  format: journald\n");
    match parse("configs/ok.yaml", &text) {
        Ok(p) => assert_eq!(p.logging.format, tandem_config::LogFormat::Journald),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn logging_format_that_is_not_known_names_the_three_allowed() {
    rejects(
        &format!("{BASE}logging:\n  format: syslog\n"),
        "configs/bad.yaml:35:11: logging.format: ",
        "human, json, journald",
    );
}

fn with_group(group: &str) -> String {
    format!("{BASE}management:\n  socket: /run/tandem/t.sock\n  group: {group}\n")
}

#[test]
fn management_group_is_optional_and_kept() {
    match parse("configs/ok.yaml", &with_group("tandem-ops")) {
        Ok(p) => assert_eq!(p.management.group.as_deref(), Some("tandem-ops")),
        Err(e) => panic!("{e}"),
    }
    match parse("configs/ok.yaml", BASE) {
        Ok(p) => assert_eq!(p.management.group, None),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn management_group_that_is_not_a_group_name() {
    for bad in [
        "\"ops team\"",
        "-ops",
        "\"\"",
        "ops/x",
        "a23456789012345678901234567890123",
    ] {
        rejects(
            &with_group(bad),
            "configs/bad.yaml:36:10: management.group: ",
            "is not a group name (allowed: a group name: 1 to 32 letters",
        );
    }
}

#[test]
fn control_rate_zero_or_too_high() {
    rejects(
        &edit("mbufs: 32767\n", "mbufs: 32767\n  control_rate: 0\n"),
        "configs/bad.yaml:33:17: limits.control_rate: ",
        "0 frames a second",
    );
    rejects(
        &edit("mbufs: 32767\n", "mbufs: 32767\n  control_burst: 5000\n"),
        "configs/bad.yaml:33:18: limits.control_burst: ",
        "5000 frames",
    );
}

#[test]
fn an_empty_key_is_named() {
    // Found by the robustness test's splice: `'':` put at the start of a line.
    rejects(
        &edit("limits:\n", "'': 1\nlimits:\n"),
        "configs/bad.yaml:31:1: \"\": ",
        "unknown key ``",
    );
}

#[test]
fn a_syn_backlog_larger_than_the_flow_table() {
    rejects(
        &edit("mbufs: 32767\n", "mbufs: 32767\n  syn_backlog: 99999999\n"),
        "configs/bad.yaml:33:16: limits.syn_backlog: ",
        "more than flows_per_worker",
    );
}

// ---- explicit worker mapping --------------------------------------------------------

/// `BASE` with an explicit `workers` list appended (`workers:` is line 34, its items 35 and on).
fn with_workers(items: &[&str]) -> String {
    let mut text = format!("{BASE}workers:\n");
    for item in items {
        text.push_str("  - ");
        text.push_str(item);
        text.push('\n');
    }
    text
}

#[test]
fn explicit_workers_are_accepted() {
    let text = with_workers(&[
        "{ lcore: 2, port: outside, queue: 0 }",
        "{ lcore: 1, port: inside, queue: 0 }",
    ]);
    let p = parse("ok.yaml", &text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        p.worker_plan()[0].rx,
        [(tandem_config::PortRole::Inside, 0)]
    );
}

#[test]
fn queue_index_out_of_range() {
    rejects(
        &with_workers(&[
            "{ lcore: 1, port: outside, queue: 0 }",
            "{ lcore: 1, port: inside, queue: 0 }",
            "{ lcore: 2, port: inside, queue: 1 }",
        ]),
        "configs/bad.yaml:37:38: workers[2].queue: ",
        "queue 1 does not exist: ports.inside.queues is 1 (allowed: a queue index 0..=0)",
    );
}

#[test]
fn queue_polled_twice() {
    let err = rejects(
        &with_workers(&[
            "{ lcore: 1, port: outside, queue: 0 }",
            "{ lcore: 2, port: outside, queue: 0 }",
        ]),
        "configs/bad.yaml:34:1: workers: ",
        "inside queue 0 is polled by no worker",
    );
    // Every problem is reported, in file order.
    let all = err.to_string();
    assert!(
        all.contains(
            "configs/bad.yaml:36:5: workers[1]: outside queue 0 is already polled by workers[0]"
        ),
        "{all}"
    );
}

#[test]
fn worker_mapping_names_a_non_worker_lcore() {
    rejects(
        &with_workers(&[
            "{ lcore: 1, port: outside, queue: 0 }",
            "{ lcore: 7, port: inside, queue: 0 }",
        ]),
        "configs/bad.yaml:6:16: lcores.workers[1]: ",
        "worker lcore 2 polls no queue",
    );
}

// ---- services against each other ----------------------------------------------------

#[test]
fn duplicate_vip_and_port() {
    let text = edit(
        "timeouts:\n",
        "  - name: web\n    vip: 198.18.0.100\n    port: 80\n    replicas:\n      - { name: w, address: 198.19.0.21 }\ntimeouts:\n",
    );
    rejects(
        &text,
        "configs/bad.yaml:31:11: services[1].port: ",
        "198.18.0.100 port 80 is already taken by services[0] (lab, port any)",
    );
}

#[test]
fn duplicate_service_name() {
    let text = edit(
        "timeouts:\n",
        "  - name: lab\n    vip: 198.18.0.101\n    port: 80\n    replicas:\n      - { name: w, address: 198.19.0.21 }\ntimeouts:\n",
    );
    rejects(
        &text,
        "configs/bad.yaml:29:11: services[1].name: ",
        "`lab` is also the name of services[0]",
    );
}

#[test]
fn reconnect_with_two_copies() {
    rejects(
        &edit("mode: mirror", "mode: reconnect"),
        "configs/bad.yaml:19:13: services[0].copies: ",
        "in reconnect mode only the primary carries a flow",
    );
}

// ---- schema errors (from the deserialiser) ------------------------------------------

#[test]
fn unknown_key() {
    let err = rejects(
        &edit("fall: 3", "fal: 3"),
        "configs/bad.yaml:28:7: services[0].health.fal: ",
        "unknown key `fal` (allowed: probe_ports, interval, timeout, fall, rise",
    );
    assert!(matches!(err, ConfigError::Schema(_)));
}

#[test]
fn unknown_top_level_key() {
    rejects(
        &format!("{BASE}telemetry: on\n"),
        "configs/bad.yaml:34:1: telemetry: ",
        "unknown key `telemetry` (allowed: eal, lcores, ports, workers, services",
    );
}

#[test]
fn unknown_mode() {
    rejects(
        &edit("mode: mirror", "mode: hot"),
        "configs/bad.yaml:18:11: services[0].mode: ",
        "unknown value `hot` (allowed: mirror, reconnect, forward)",
    );
}

#[test]
fn wrong_type_list_for_scalar() {
    rejects(
        &edit("port: any", "port: [80]"),
        "configs/bad.yaml:17:11: services[0].port: ",
        "wrong type",
    );
}

#[test]
fn wrong_type_scalar_for_list() {
    rejects(
        &edit("workers: [1, 2]", "workers: 1"),
        "configs/bad.yaml:6:12: lcores.workers: ",
        "wrong type: expected a list",
    );
}

#[test]
fn negative_count() {
    rejects(
        &edit("fall: 3", "fall: -1"),
        "configs/bad.yaml:28:13: services[0].health.fall: ",
        "`-1` is not a whole number",
    );
}

#[test]
fn mtu_out_of_type_range() {
    rejects(
        &edit(
            "    address: 198.19.0.1/24\n",
            "    address: 198.19.0.1/24\n    mtu: 70000\n",
        ),
        "configs/bad.yaml:14:10: ports.inside.mtu: ",
        "`70000` is not a whole number that fits u16 (allowed: 68..=2030",
    );
}

#[test]
fn mtu_larger_than_one_mbuf_holds() {
    rejects(
        &edit(
            "    address: 198.19.0.1/24\n",
            "    address: 198.19.0.1/24\n    mtu: 9000\n",
        ),
        "configs/bad.yaml:14:10: ports.inside.mtu: ",
        "MTU 9000 is out of range (allowed: 68..=2030 (a frame must fit one 2048-byte mbuf",
    );
}

#[test]
fn missing_required_key() {
    rejects(
        &edit("    vip: 198.18.0.100\n", ""),
        "configs/bad.yaml:15:5: services[0].vip: ",
        "missing required key `vip`",
    );
}

#[test]
fn missing_section() {
    let text = BASE.replace("lcores:\n  control: 0\n  workers: [1, 2]\n", "");
    rejects(
        &text,
        "configs/bad.yaml:1:1: lcores: ",
        "missing required key `lcores`",
    );
}

#[test]
fn duplicate_key() {
    rejects(
        &edit("      fall: 3\n", "      fall: 3\n      fall: 4\n"),
        "configs/bad.yaml:29:7: services[0].health.fall: ",
        "duplicate key `fall`",
    );
}

#[test]
fn yaml_syntax_error() {
    // The unclosed list swallows the next line, where the parser gives up.
    let err = rejects(
        &edit("probe_ports: [7000, 80]", "probe_ports: [7000, 80"),
        "configs/bad.yaml:27:15: services[0].health.probe_ports: ",
        "(allowed: well-formed YAML)",
    );
    assert!(matches!(err, ConfigError::Syntax(_)), "{err}");
}

#[test]
fn tab_indentation() {
    let err = rejects(
        &edit("      fall: 3\n", "\tfall: 3\n"),
        "configs/bad.yaml:27:17: services[0].health.interval: ",
        "found a tab (allowed: well-formed YAML)",
    );
    assert!(matches!(err, ConfigError::Syntax(_)), "{err}");
}

#[test]
fn empty_profile() {
    rejects(
        "",
        "configs/bad.yaml:1:1: (top level): ",
        "the profile is empty",
    );
}

// ---- several problems at once -------------------------------------------------------

#[test]
fn reports_every_problem_in_file_order() {
    let text = edit("interval: 10ms", "interval: 0")
        .replace("copies: 2", "copies: 3")
        .replace("workers: [1, 2]", "workers: [1, 1]");
    let err = match parse("configs/bad.yaml", &text) {
        Err(e) => e,
        Ok(_) => panic!("accepted"),
    };
    let fields: Vec<(u32, &str)> = err
        .diagnostics()
        .iter()
        .map(|d| (d.line, d.field.as_str()))
        .collect();
    assert_eq!(
        fields,
        [
            (6, "lcores.workers[1]"),
            (19, "services[0].copies"),
            (27, "services[0].health.interval"),
        ]
    );
}

// ---- forward mode ----------------------------------------------------------------------

#[test]
fn forward_mode_needs_one_copy() {
    rejects(
        &edit("mode: mirror", "mode: forward"),
        "configs/bad.yaml:19:13: services[0].copies: ",
        "2 copies: in forward mode a flow goes to one replica (allowed: 1 in forward mode",
    );
}

#[test]
fn no_probe_ports_refused_in_mirror_mode() {
    rejects(
        &edit("probe_ports: [7000, 80]", "probe_ports: []"),
        "configs/bad.yaml:26:7: services[0].health.probe_ports: ",
        "no probe port in mirror mode (allowed: a non-empty list of port numbers 1..=65535 ([] only with mode: forward)",
    );
}

#[test]
fn forward_mode_without_probes_is_accepted() {
    let text = edit("mode: mirror", "mode: forward")
        .replace("copies: 2", "copies: 1")
        .replace("probe_ports: [7000, 80]", "probe_ports: []");
    let p = match parse("configs/ok.yaml", &text) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    };
    let s = &p.services[0];
    assert_eq!(s.mode, tandem_config::Mode::Forward);
    assert_eq!(s.copies, 1);
    assert!(s.health.probe_ports.is_empty());
    // `copies` left out defaults to 1 in forward mode.
    let text = edit("mode: mirror", "mode: forward").replace("    copies: 2\n", "");
    match parse("configs/ok.yaml", &text) {
        Ok(p) => assert_eq!(p.services[0].copies, 1),
        Err(e) => panic!("{e}"),
    }
}

// ---- files ----------------------------------------------------------------------------

#[test]
fn errors_name_the_file_loaded() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/profiles/zero-interval.yaml");
    let err = match tandem_config::load(&path) {
        Err(e) => e,
        Ok(_) => panic!("accepted"),
    };
    let text = err.to_string();
    let expected = format!(
        "{}:27:17: services[0].health.interval: must be greater than zero",
        path.display()
    );
    assert!(text.starts_with(&expected), "{text}");
}

#[test]
fn missing_file() {
    let err = match tandem_config::load(std::path::Path::new("/nonexistent/tandem.yaml")) {
        Err(e) => e,
        Ok(_) => panic!("accepted"),
    };
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(err
        .to_string()
        .starts_with("/nonexistent/tandem.yaml: cannot read the profile"));
}

#[test]
fn verify_is_on_unless_a_service_turns_it_off() {
    let on = parse("base.yaml", BASE).unwrap_or_else(|e| panic!("{e}"));
    assert!(on.services[0].verify, "on by default");
    let off = parse(
        "off.yaml",
        &edit("    copies: 2\n", "    copies: 2\n    verify: false\n"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(!off.services[0].verify);
    rejects(
        &edit("    copies: 2\n", "    copies: 2\n    verify: sometimes\n"),
        "configs/bad.yaml:20:13: services[0].verify: ",
        "true (the default",
    );
}

// ---- replay (reconnect mode; mirror mode's new standbys) ---------------------------------

/// `BASE` with its service in `mode` and a `replay:` mapping of `fields` (one `key: value`
/// a line): `mode` stays on line 18, `replay:` is line 19, the fields start on line 20
/// (`copies` is left to its default: 2 in mirror mode, 1 in the others).
fn with_replay(mode: &str, fields: &[&str]) -> String {
    let mut lines = format!("    mode: {mode}\n    replay:\n");
    for f in fields {
        lines.push_str(&format!("      {f}\n"));
    }
    edit("    mode: mirror\n    copies: 2\n", &lines)
}

/// Expects `text` rejected, with exactly `diagnostic` as its first diagnostic.
#[track_caller]
fn rejects_exactly(text: &str, diagnostic: &str) {
    let (prefix, phrase) = diagnostic.split_at(diagnostic.find(": ").unwrap_or(0));
    let err = rejects(text, prefix, phrase);
    assert_eq!(err.diagnostics()[0].to_string(), diagnostic);
}

/// The allowed text of `methods`.
const METHODS_FOR_HTTP1: &str = "a non-empty list of at most 16 distinct HTTP methods that \
     may run twice, like [GET, HEAD, OPTIONS] (the default); never POST, PUT, DELETE, PATCH or \
     CONNECT; reconnect mode with scope: http1 only";
/// The allowed text of one method.
const METHOD: &str = "an HTTP method: 1 to 32 token characters (RFC 9110 §5.6.2), \
     case-sensitive, like GET";
/// The allowed text of a method that is never replayed.
const REPLAYABLE: &str = "a method that may run twice, like GET, HEAD or OPTIONS; never POST, \
     PUT, DELETE, PATCH or CONNECT";
/// The allowed text of `limit`.
const LIMIT: &str = "a size greater than zero, at most one worker's share of \
     limits.replay_bytes_total, like 64KiB or 1MiB (default 1MiB); 0 (nothing logged: a flow \
     that loses its standby runs without one) in mirror mode only";
/// The allowed text of a size that does not parse.
const SIZE: &str =
    "a whole number of bytes, or one with a unit (B, KiB, MiB, GiB), like 262144, 256KiB or 1GiB";
/// The allowed text of one excluded header.
const HEADER: &str = "a header name: 1 to 32 token characters (RFC 9110 §5.1), like Date";

#[test]
fn replay_defaults_when_left_out() {
    let p = parse("base.yaml", BASE).unwrap_or_else(|e| panic!("{e}"));
    let r = &p.services[0].replay;
    assert_eq!(*r, Replay::default());
    assert_eq!(r.scope, ReplayScope::Stream);
    assert_eq!(r.limit, 1 << 20);
    assert_eq!(r.methods, ["GET", "HEAD", "OPTIONS"]);
    assert_eq!(r.exclude_headers, ["Date", "Server"]);
    assert_eq!(r.connect_timeout, Duration::from_millis(50));
    assert_eq!(r.fin_hold, Duration::from_millis(100));
    assert_eq!(r.parallel, 64);
    assert_eq!(p.limits.replay_bytes_total, 256 << 20);
}

#[test]
fn reconnect_with_every_replay_field() {
    let text = with_replay(
        "reconnect",
        &[
            "scope: http1",
            "limit: 64KiB",
            "methods: [GET, HEAD, TRACE, PROPFIND]",
            "exclude_headers: [Date, Server, X-Served-By]",
            "connect_timeout: 20ms",
            "fin_hold: 1s",
            "parallel: 4096",
        ],
    );
    let p = parse("reconnect.yaml", &text).unwrap_or_else(|e| panic!("{e}"));
    let s = &p.services[0];
    assert_eq!((s.mode, s.copies), (Mode::Reconnect, 1));
    assert_eq!(
        s.replay,
        Replay {
            scope: ReplayScope::Http1,
            limit: 64 << 10,
            methods: vec![
                "GET".into(),
                "HEAD".into(),
                "TRACE".into(),
                "PROPFIND".into()
            ],
            exclude_headers: vec!["Date".into(), "Server".into(), "X-Served-By".into()],
            connect_timeout: Duration::from_millis(20),
            fin_hold: Duration::from_secs(1),
            parallel: 4096,
        }
    );
}

#[test]
fn mirror_takes_scope_stream_limit_connect_timeout_and_parallel() {
    let text = with_replay(
        "mirror",
        &[
            "scope: stream",
            "limit: 0",
            "connect_timeout: 10ms",
            "parallel: 8",
        ],
    );
    let p = parse("mirror.yaml", &text).unwrap_or_else(|e| panic!("{e}"));
    let r = &p.services[0].replay;
    // limit 0: nothing logged, no new standby by replay.
    assert_eq!((r.scope, r.limit, r.parallel), (ReplayScope::Stream, 0, 8));
    assert_eq!(r.connect_timeout, Duration::from_millis(10));
    // What mirror mode does not use keeps its default.
    assert_eq!(r.methods, Replay::default().methods);
    assert_eq!(r.fin_hold, Replay::default().fin_hold);
}

#[test]
fn replay_in_forward_mode() {
    rejects_exactly(
        &with_replay("forward", &["limit: 1MiB"]),
        "configs/bad.yaml:19:5: services[0].replay: forward mode replays nothing: a flow on a \
         replica that fails breaks (allowed: no `replay` in forward mode; it is for mode: \
         reconnect, and mirror mode's new standbys)",
    );
}

#[test]
fn http1_in_mirror_mode() {
    rejects_exactly(
        &with_replay("mirror", &["scope: http1"]),
        "configs/bad.yaml:20:14: services[0].replay.scope: http1 in mirror mode: a new standby \
         joins a running flow only if it is given every client byte since the SYN (allowed: \
         stream in mirror mode (http1 is for mode: reconnect))",
    );
}

#[test]
fn methods_in_mirror_mode() {
    rejects_exactly(
        &with_replay("mirror", &["methods: [GET]"]),
        "configs/bad.yaml:20:7: services[0].replay.methods: `methods` in mirror mode: a new \
         standby is given the whole stream, whatever its requests (allowed: no `methods` in \
         mirror mode (it is for mode: reconnect))",
    );
}

#[test]
fn exclude_headers_in_mirror_mode() {
    rejects_exactly(
        &with_replay("mirror", &["exclude_headers: [Date]"]),
        "configs/bad.yaml:20:7: services[0].replay.exclude_headers: `exclude_headers` in mirror \
         mode: mirror mode's replicas answer byte for byte alike, headers included (allowed: no \
         `exclude_headers` in mirror mode (it is for mode: reconnect))",
    );
}

#[test]
fn fin_hold_in_mirror_mode() {
    rejects_exactly(
        &with_replay("mirror", &["fin_hold: 100ms"]),
        "configs/bad.yaml:20:17: services[0].replay.fin_hold: `fin_hold` in mirror mode: the \
         standbys carry the rest of the flow, nothing is held for a replay (allowed: no \
         `fin_hold` in mirror mode (it is for mode: reconnect))",
    );
}

#[test]
fn http_fields_with_scope_stream() {
    for (field, line) in [
        ("methods", "methods: [GET]"),
        ("exclude_headers", "exclude_headers: [Date]"),
    ] {
        rejects_exactly(
            &with_replay("reconnect", &[line]),
            &format!(
                "configs/bad.yaml:20:7: services[0].replay.{field}: `{field}` with scope: \
                 stream: a stream replay sends every client byte since the SYN and reads no \
                 HTTP (allowed: no `{field}` with scope: stream, or scope: http1)"
            ),
        );
    }
}

#[test]
fn replay_limit_zero_in_reconnect_mode() {
    rejects_exactly(
        &with_replay("reconnect", &["limit: 0"]),
        &format!(
            "configs/bad.yaml:20:14: services[0].replay.limit: 0 in reconnect mode: no flow \
             could be replayed (for no protection, mode: forward) (allowed: {LIMIT})"
        ),
    );
}

#[test]
fn replay_limit_past_what_sequence_numbers_order() {
    rejects_exactly(
        &with_replay("reconnect", &["limit: 2GiB"]),
        &format!(
            "configs/bad.yaml:20:14: services[0].replay.limit: 2GiB: a flow's log is at most \
             2GiB less a byte (TCP sequence numbers order only within 2^31) (allowed: {LIMIT})"
        ),
    );
}

#[test]
fn replay_limit_above_a_workers_share() {
    // BASE has two workers: each has half of the default 256MiB.
    rejects_exactly(
        &with_replay("reconnect", &["limit: 200MiB"]),
        &format!(
            "configs/bad.yaml:20:14: services[0].replay.limit: 200MiB is more than a worker has \
             for all its flows' logs (limits.replay_bytes_total, 256MiB over 2 workers: \
             128MiB) (allowed: {LIMIT})"
        ),
    );
    let fits = with_replay("reconnect", &["limit: 128MiB"]);
    parse("fits.yaml", &fits).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn replay_total_below_the_default_limit() {
    rejects_exactly(
        &edit(
            "  mbufs: 32767\n",
            "  mbufs: 32767\n  replay_bytes_total: 1MiB\n",
        ),
        "configs/bad.yaml:33:23: limits.replay_bytes_total: a worker has less for all its \
         flows' logs (1MiB over 2 workers: 512KiB) than one flow may keep \
         (services[0].replay.limit, 1MiB by default) (allowed: at least 1MiB (the replay \
         limit) per worker, or a smaller services[].replay.limit)",
    );
    // A forward service replays nothing: its default limit asks for nothing.
    let forward = edit("mode: mirror", "mode: forward")
        .replace("    copies: 2\n", "")
        .replace(
            "  mbufs: 32767\n",
            "  mbufs: 32767\n  replay_bytes_total: 1MiB\n",
        );
    parse("forward.yaml", &forward).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn replay_total_zero() {
    rejects_exactly(
        &edit(
            "  mbufs: 32767\n",
            "  mbufs: 32767\n  replay_bytes_total: 0\n",
        ),
        "configs/bad.yaml:33:23: limits.replay_bytes_total: must be greater than zero (allowed: \
         a size greater than zero; for no replay in mirror mode, services[].replay.limit: 0)",
    );
}

#[test]
fn sizes_that_are_not_sizes() {
    for (written, why) in [
        (
            "1MB",
            "`MB` is ambiguous (a power of 1000 or of 1024?): write KiB, MiB or GiB",
        ),
        ("1 MiB", "`1 MiB` has a space before its unit (write 1MiB)"),
        ("-5", "`-5` is negative"),
        ("1.5MiB", "`1.5MiB` is not a whole number"),
        ("lots", "`lots` does not start with a number"),
    ] {
        rejects_exactly(
            &with_replay("reconnect", &[&format!("limit: {written}")]),
            &format!(
                "configs/bad.yaml:20:14: services[0].replay.limit: not a size: {why} (allowed: \
                 {SIZE})"
            ),
        );
    }
    rejects_exactly(
        &with_replay("reconnect", &["limit: [1]"]),
        &format!(
            "configs/bad.yaml:20:14: services[0].replay.limit: wrong type: expected a single \
             value (allowed: {LIMIT})"
        ),
    );
}

/// The budgets in bytes take units too; the plain integers they took before still read.
#[test]
fn byte_budgets_take_units() {
    let text = edit(
        "  mbufs: 32767\n",
        "  mbufs: 32767\n  hold_bytes_per_flow: 256KiB\n  hold_bytes_total: 0x2000000\n  \
         replay_bytes_total: 1GiB\n",
    );
    let p = parse("units.yaml", &text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.limits.hold_bytes_per_flow, 256 << 10);
    assert_eq!(p.limits.hold_bytes_total, 32 << 20);
    assert_eq!(p.limits.replay_bytes_total, 1 << 30);
    rejects_exactly(
        &edit(
            "  mbufs: 32767\n",
            "  mbufs: 32767\n  hold_bytes_per_flow: 4GiB\n",
        ),
        "configs/bad.yaml:33:24: limits.hold_bytes_per_flow: 4GiB is too large (allowed: a size \
         of 1 byte to 4GiB - 1 (like 262144 or 256KiB), at most limits.hold_bytes_total)",
    );
}

#[test]
fn methods_empty() {
    rejects_exactly(
        &with_replay("reconnect", &["scope: http1", "methods: []"]),
        &format!(
            "configs/bad.yaml:21:7: services[0].replay.methods: no method: no request could be \
             replayed (allowed: {METHODS_FOR_HTTP1})"
        ),
    );
}

#[test]
fn methods_too_many() {
    rejects_exactly(
        &with_replay(
            "reconnect",
            &[
                "scope: http1",
                "methods: [A, B, C, D, E, F, G, H, I, J, K, L, M, N, O, P, Q]",
            ],
        ),
        &format!(
            "configs/bad.yaml:21:7: services[0].replay.methods: 17 methods: at most 16 \
             (allowed: {METHODS_FOR_HTTP1})"
        ),
    );
}

#[test]
fn methods_that_are_not_methods() {
    for (written, column, why) in [
        ("\"GE T\"", 17, "`GE T` is not a method name"),
        (
            "ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFG",
            17,
            "`ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFG` is longer than 32 characters",
        ),
        (
            "get",
            17,
            "`get` is not GET: methods are case-sensitive (RFC 9110 §9.1)",
        ),
    ] {
        rejects_exactly(
            &with_replay(
                "reconnect",
                &["scope: http1", &format!("methods: [{written}]")],
            ),
            &format!(
                "configs/bad.yaml:21:{column}: services[0].replay.methods[0]: {why} (allowed: \
                 {METHOD})"
            ),
        );
    }
    rejects_exactly(
        &with_replay("reconnect", &["scope: http1", "methods: [GET, HEAD, GET]"]),
        &format!(
            "configs/bad.yaml:21:28: services[0].replay.methods[2]: `GET` is listed twice (also \
             methods[0]) (allowed: {METHOD})"
        ),
    );
}

/// The methods that are never replayed, each with its reason.
#[test]
fn methods_never_replayed() {
    for (method, why) in [
        (
            "POST",
            "POST is not idempotent: a replay would run it a second time",
        ),
        (
            "PATCH",
            "PATCH is not idempotent: a replay would apply it a second time",
        ),
        (
            "PUT",
            "PUT is idempotent in its effect (RFC 9110 §9.2.2) but not in its answer or \
             against other writers: a replayed PUT answers 200 where the first one created \
             (201), and undoes a write another client made in between",
        ),
        (
            "DELETE",
            "DELETE is idempotent in its effect (RFC 9110 §9.2.2) but not in its answer: a \
             replayed DELETE answers 404 where the first one deleted",
        ),
        (
            "CONNECT",
            "CONNECT opens a tunnel: what went through it cannot be replayed",
        ),
    ] {
        rejects_exactly(
            &with_replay(
                "reconnect",
                &["scope: http1", &format!("methods: [GET, {method}]")],
            ),
            &format!(
                "configs/bad.yaml:21:22: services[0].replay.methods[1]: {why}; never replayed \
                 (allowed: {REPLAYABLE})"
            ),
        );
    }
}

#[test]
fn exclude_headers_too_many() {
    rejects_exactly(
        &with_replay(
            "reconnect",
            &[
                "scope: http1",
                "exclude_headers: [Date, Server, Age, Via, Expires]",
            ],
        ),
        "configs/bad.yaml:21:7: services[0].replay.exclude_headers: 5 headers: at most 4 (each \
         is looked for in every response header line) (allowed: a list of at most 4 distinct \
         header names, like [Date, Server] (the default), not Content-Length or \
         Transfer-Encoding; reconnect mode with scope: http1 only)",
    );
}

#[test]
fn exclude_headers_that_are_not_allowed() {
    for (written, column, why) in [
        ("\"X: y\"", 25, "`X: y` is not a header name"),
        (
            "X-Abcdefghijklmnopqrstuvwxyz-1234",
            25,
            "`X-Abcdefghijklmnopqrstuvwxyz-1234` is longer than 32 characters",
        ),
        (
            "content-length",
            25,
            "`content-length` frames the body (RFC 9112 §6): a response framed differently is \
             not the same response",
        ),
        (
            "Transfer-Encoding",
            25,
            "`Transfer-Encoding` frames the body (RFC 9112 §6): a response framed differently \
             is not the same response",
        ),
    ] {
        rejects_exactly(
            &with_replay(
                "reconnect",
                &["scope: http1", &format!("exclude_headers: [{written}]")],
            ),
            &format!(
                "configs/bad.yaml:21:{column}: services[0].replay.exclude_headers[0]: {why} \
                 (allowed: {HEADER})"
            ),
        );
    }
    rejects_exactly(
        &with_replay(
            "reconnect",
            &["scope: http1", "exclude_headers: [Date, date]"],
        ),
        &format!(
            "configs/bad.yaml:21:31: services[0].replay.exclude_headers[1]: `date` is listed \
             twice (also exclude_headers[0], `Date`; header names ignore case) (allowed: \
             {HEADER})"
        ),
    );
    // No header left out: the whole answer is compared.
    let none = with_replay("reconnect", &["scope: http1", "exclude_headers: []"]);
    let p = parse("none.yaml", &none).unwrap_or_else(|e| panic!("{e}"));
    assert!(p.services[0].replay.exclude_headers.is_empty());
}

#[test]
fn replay_durations_and_parallel() {
    rejects_exactly(
        &with_replay("reconnect", &["connect_timeout: 0"]),
        "configs/bad.yaml:20:24: services[0].replay.connect_timeout: must be greater than zero \
         (allowed: a duration greater than zero, like 100us, 10ms, 1.5s, 2m)",
    );
    rejects_exactly(
        &with_replay("reconnect", &["fin_hold: 0ms"]),
        "configs/bad.yaml:20:17: services[0].replay.fin_hold: must be greater than zero \
         (allowed: a duration greater than zero, best at least the suspect burst's \
         (health.suspect_interval × (suspect_burst − 1) + timeout), like 100ms (the default); \
         reconnect mode only)",
    );
    rejects_exactly(
        &with_replay("reconnect", &["fin_hold: 10"]),
        "configs/bad.yaml:20:17: services[0].replay.fin_hold: not a duration: `10` has no unit \
         (allowed: a number with a unit (ns, us, ms, s, m, h), like 100us, 10ms, 1.5s, 2m or \
         1m30s)",
    );
    for n in [0, 4097] {
        rejects_exactly(
            &with_replay("reconnect", &[&format!("parallel: {n}")]),
            &format!(
                "configs/bad.yaml:20:17: services[0].replay.parallel: {n} replays at once \
                 (allowed: replays in progress per worker, 1..=4096 (default 64))"
            ),
        );
    }
}

#[test]
fn replay_schema_errors() {
    rejects_exactly(
        &with_replay("reconnect", &["scope: tcp"]),
        "configs/bad.yaml:20:14: services[0].replay.scope: unknown value `tcp` (allowed: \
         stream, http1)",
    );
    rejects_exactly(
        &with_replay("reconnect", &["window: 3"]),
        "configs/bad.yaml:20:7: services[0].replay.window: unknown key `window` (allowed: \
         scope, limit, methods, exclude_headers, connect_timeout, fin_hold, parallel)",
    );
    rejects_exactly(
        &with_replay("reconnect", &["scope: http1", "methods: GET"]),
        &format!(
            "configs/bad.yaml:21:16: services[0].replay.methods: wrong type: expected a list \
             (allowed: {METHODS_FOR_HTTP1})"
        ),
    );
}

#[test]
fn a_port_range_is_accepted() {
    let p = parse("range.yaml", &edit("port: any", "port: 8000-8100"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.services[0].port, ServicePort::Range(8000, 8100));
    assert!(p.services[0].port.contains(8050) && !p.services[0].port.contains(8101));
}

#[test]
fn a_port_range_without_probe_ports_is_refused() {
    let text = edit("port: any", "port: 8000-8100").replace("      probe_ports: [7000, 80]\n", "");
    rejects(
        &text,
        "configs/bad.yaml:25:5: services[0].health.probe_ports: ",
        "the service port is `8000-8100`, and probing needs concrete ports",
    );
}

#[test]
fn a_port_range_that_ends_before_it_starts_is_refused() {
    rejects(
        &edit("port: any", "port: 8100-8000"),
        "configs/bad.yaml:17:11: services[0].port: ",
        "range `8100-8000` ends before it starts",
    );
}

#[test]
fn no_replica_is_reset_by_default_and_may_be_drop() {
    let p = parse("base.yaml", BASE).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.services[0].no_replica, NoReplica::Reset);
    let p = parse(
        "drop.yaml",
        &edit(
            "    mode: mirror\n",
            "    mode: mirror\n    no_replica: drop\n",
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.services[0].no_replica, NoReplica::Drop);
}

#[test]
fn an_unknown_no_replica_action_is_refused() {
    rejects(
        &edit(
            "    mode: mirror\n",
            "    mode: mirror\n    no_replica: ignore\n",
        ),
        "configs/bad.yaml:19:17: services[0].no_replica: ",
        "unknown value `ignore` (allowed: reset, drop)",
    );
}

// ---- the appliance pair ------------------------------------------------------------

/// `BASE` with an `ha` section (lines 34 to 41) whose `field: value` lines are `lines`.
fn with_ha(lines: &str) -> String {
    format!("{BASE}ha:\n{lines}")
}

const HA: &str = "  interface: ha0
  local: 198.18.255.1:7788
  peer: 198.18.255.2:7788
  floating: [198.18.0.254, 198.19.0.254]
  heartbeat: 5ms
  dead_time: 20ms
  preferred: true
";
// 35   interface: ha0
// 36   local: 198.18.255.1:7788
// 37   peer: 198.18.255.2:7788
// 38   floating: [198.18.0.254, 198.19.0.254]
// 39   heartbeat: 5ms
// 40   dead_time: 20ms

#[test]
fn an_ha_section_is_read_with_its_defaults() {
    let p = parse("ha.yaml", &with_ha(HA)).unwrap_or_else(|e| panic!("{e}"));
    let ha = p.ha.expect("an ha section");
    assert_eq!(ha.interface, "ha0");
    assert_eq!(ha.local.to_string(), "198.18.255.1:7788");
    assert_eq!(ha.peer.to_string(), "198.18.255.2:7788");
    assert_eq!(ha.heartbeat, Duration::from_millis(5));
    assert_eq!(ha.dead_time, Duration::from_millis(20));
    assert_eq!((ha.sync_batch, ha.sync_window), (5, 1024));
    assert_eq!(ha.sync_interval, Duration::from_millis(1));
    assert!(ha.preferred);
    assert_eq!(
        ha.floating_on(&p.ports, tandem_config::PortRole::Inside),
        vec!["198.19.0.254"
            .parse::<std::net::Ipv4Addr>()
            .expect("address")]
    );
    // Written back and read again, the same.
    let yaml = parse("ha.yaml", &with_ha(HA))
        .expect("valid")
        .to_yaml()
        .expect("writes");
    let again = parse("again.yaml", &yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    assert_eq!(again.ha, parse("ha.yaml", &with_ha(HA)).expect("valid").ha);
    // Without the section, a lone appliance.
    assert_eq!(parse("base.yaml", BASE).expect("valid").ha, None);
}

#[test]
fn ha_link_addresses_on_a_data_subnet_are_refused() {
    rejects(
        &with_ha(&HA.replace("198.18.255.2:7788", "198.19.0.2:7788")),
        "configs/bad.yaml:37:9: ha.peer: ",
        "198.19.0.2 is on a data port's subnet",
    );
    rejects(
        &with_ha(&HA.replace("198.18.255.2:7788", "198.18.255.1:7789")),
        "configs/bad.yaml:37:9: ha.peer: ",
        "is also `local`",
    );
    rejects(
        &with_ha(&HA.replace("198.18.255.1:7788", "198.18.255.1")),
        "configs/bad.yaml:36:10: ha.local: ",
        "is not an IPv4 address:port",
    );
}

#[test]
fn floating_addresses_must_be_shared_addresses_on_a_data_subnet() {
    rejects(
        &with_ha(&HA.replace("198.18.0.254,", "198.18.0.100,")),
        "configs/bad.yaml:38:14: ha.floating[0]: ",
        "is a VIP: every VIP floats already",
    );
    rejects(
        &with_ha(&HA.replace("198.18.0.254,", "198.18.0.1,")),
        "configs/bad.yaml:38:14: ha.floating[0]: ",
        "is a port's own address",
    );
    rejects(
        &with_ha(&HA.replace("198.18.0.254,", "10.0.0.1,")),
        "configs/bad.yaml:38:14: ha.floating[0]: ",
        "on neither the outside nor the inside subnet",
    );
}

#[test]
fn a_dead_time_under_two_heartbeats_is_refused() {
    rejects(
        &with_ha(&HA.replace("dead_time: 20ms", "dead_time: 8ms")),
        "configs/bad.yaml:40:14: ha.dead_time: ",
        "less than two heartbeats (10ms)",
    );
}

#[test]
fn ha_interface_and_sync_limits_are_checked() {
    rejects(
        &with_ha(&HA.replace("interface: ha0", "interface: eth0:1")),
        "configs/bad.yaml:35:14: ha.interface: ",
        "`eth0:1` is not an interface name",
    );
    rejects(
        &with_ha(&format!("{HA}  sync_batch: 6\n")),
        "configs/bad.yaml:42:15: ha.sync_batch: ",
        "6 records per datagram (allowed: records per datagram, 1..=5",
    );
    rejects(
        &with_ha(&format!("{HA}  sync_interval: 6ms\n")),
        "configs/bad.yaml:42:18: ha.sync_interval: ",
        "longer than a heartbeat",
    );
    rejects(
        &with_ha(&format!("{HA}  preempt: true\n")),
        "configs/bad.yaml:42:",
        "preempt",
    );
}
