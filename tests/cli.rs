//! The `tandem` binary without DPDK: `--version`, `check`, and the management commands
//! against a stand-in appliance.

use std::process::Command;

fn tandem(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| panic!("run tandem: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn version_names_git_and_dpdk() {
    let (ok, out, _) = tandem(&["--version"]);
    assert!(ok);
    assert!(out.starts_with("tandem 0."), "{out}");
    assert!(out.contains("(git ") && out.contains("DPDK "), "{out}");
}

#[test]
fn check_prints_a_summary_of_the_shipped_profiles() {
    for profile in ["configs/lab.yaml", "configs/appliance-2port.yaml"] {
        let (ok, out, err) = tandem(&["check", "--profile", profile]);
        assert!(ok, "{profile}: {err}");
        assert!(out.contains("service "), "{out}");
        assert!(out.contains(&format!("{profile}: ok")), "{out}");
    }
}

/// The lab's profile in reconnect mode with `replay: http1` and `methods` (a valid list,
/// 16 names) that the HTTP/1.1 framer cannot hold besides HEAD and CONNECT: `check`
/// takes it, `run` would not. Written to a file of its own; its path.
fn profile_run_refuses() -> std::path::PathBuf {
    let lab = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/configs/lab.yaml"))
        .expect("lab profile");
    let methods: Vec<String> = (0..16).map(|k| format!("M{k}")).collect();
    let text = lab
        .replacen("    mode: mirror ", "    mode: reconnect ", 1)
        .replacen(
            "    copies: 2 ",
            &format!(
                "    replay: {{ scope: http1, methods: [{}] }}\n    copies: 1 ",
                methods.join(", ")
            ),
            1,
        );
    let dir = std::env::temp_dir().join(format!("tandem-cli-refused-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("lab-refused.yaml");
    std::fs::write(&path, text).expect("write profile");
    path
}

#[test]
fn check_says_what_run_would_refuse() {
    let path = profile_run_refuses();
    let (ok, out, err) = tandem(&["check", "--profile", &path.to_string_lossy()]);
    assert!(ok, "{err}");
    assert!(out.contains("but `tandem run` refuses it: "), "{out}");
    assert!(out.contains("replay.methods"), "{out}");
    // The documented production profile (replay: http1 among its services) runs.
    let (ok, out, _) = tandem(&["check", "--profile", "configs/appliance-2port.yaml"]);
    assert!(ok);
    assert!(!out.contains("refuses"), "{out}");
}

#[test]
fn check_with_json_prints_the_profile_with_its_defaults_and_whether_run_takes_it() {
    let (ok, out, err) = tandem(&["check", "--profile", "configs/lab.yaml", "--json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["runnable"], true);
    assert_eq!(v["profile"]["services"][0]["name"], "lab");
    assert!(
        v["profile"]["limits"]["syn_backlog"].is_number(),
        "defaults filled: {out}"
    );
    let (ok, out, _) = tandem(&[
        "check",
        "--profile",
        "configs/appliance-2port.yaml",
        "--json",
    ]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["runnable"], true, "{out}");
    let refused = profile_run_refuses();
    let (ok, out, _) = tandem(&["check", "--profile", &refused.to_string_lossy(), "--json"]);
    assert!(ok);
    let r: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(r["runnable"], false);
    assert!(r["refused"].is_string(), "{out}");
    // Sizes written with units are numbers of bytes in the document.
    assert_eq!(v["profile"]["limits"]["replay_bytes_total"], 256 << 20);
    assert_eq!(v["profile"]["services"][1]["replay"]["scope"], "http1");
    assert_eq!(v["profile"]["services"][1]["replay"]["limit"], 256 << 10);
    let (ok, out, err) = tandem(&[
        "check",
        "--profile",
        "crates/config/tests/profiles/zero-interval.yaml",
        "--json",
    ]);
    assert!(!ok);
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.contains("zero-interval.yaml:")),
        "{out} {err}"
    );
}

#[test]
fn check_rejects_a_broken_profile_with_file_line_and_field() {
    let (ok, _, err) = tandem(&[
        "check",
        "--profile",
        "crates/config/tests/profiles/zero-interval.yaml",
    ]);
    assert!(!ok);
    assert!(err.contains("zero-interval.yaml:"), "{err}");
    assert!(err.contains("health.interval"), "{err}");
}

/// `tandem check` on ten broken variants of the lab profile: each is refused, and the
/// error names the file, the line of the broken field and its path.
#[test]
fn check_rejects_ten_broken_profiles_at_the_right_line_and_field() {
    let lab = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/configs/lab.yaml"))
        .expect("lab profile");
    // (text in lab.yaml, its replacement, field path in the error)
    let cases: &[(&str, &str, &str)] = &[
        (
            "interval: 10ms",
            "interval: 0ms",
            "services[0].health.interval",
        ),
        ("copies: 2 ", "copies: 5 ", "services[0].copies"),
        ("mode: mirror ", "mode: mirrorr ", "services[0].mode"),
        ("rise: 2 ", "rise: 0 ", "services[0].health.rise"),
        ("port: any ", "port: 70000 ", "services[0].port"),
        ("syn: 5s ", "syn: 5 ", "timeouts.syn"),
        (
            "address: 198.18.0.1/24 ",
            "address: 198.18.0.1/33 ",
            "ports.outside.address",
        ),
        (
            "queues: 1                     # receive queues;",
            "queues: 0 #",
            "ports.outside.queues",
        ),
        ("workers: [1] ", "workers: [0] ", "lcores.workers"),
        (
            "vip: 198.18.0.100 ",
            "vip: 198.18.0.100\n    colour: blue ",
            "services[0].colour",
        ),
    ];
    let dir = std::env::temp_dir().join(format!("tandem-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for (i, (from, to, field)) in cases.iter().enumerate() {
        let at = lab
            .find(from)
            .unwrap_or_else(|| panic!("{from:?} not in lab.yaml"));
        let mut line = lab[..at].matches('\n').count() + 1;
        if to.contains('\n') {
            line += 1; // the inserted key sits on the next line
        }
        let path = dir.join(format!("broken-{i}.yaml"));
        std::fs::write(&path, lab.replacen(from, to, 1)).expect("write profile");
        let p = path.to_string_lossy().into_owned();
        let (ok, _, err) = tandem(&["check", "--profile", &p]);
        assert!(!ok, "{field}: accepted");
        let want = format!("{p}:{line}:");
        assert!(err.contains(&want), "{field}: expected {want} in {err}");
        assert!(err.contains(field), "{field}: not named in {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn management_commands_say_when_no_appliance_answers() {
    let sock = std::env::temp_dir().join(format!("tandem-cli-test-{}.sock", std::process::id()));
    let s = sock.to_string_lossy().into_owned();
    for args in [
        vec!["status", "--socket", &s],
        vec!["fail", "lab/primary", "--socket", &s],
        vec!["flows", "--client", "198.18.0.2:4000", "--socket", &s],
        vec!["add", "lab", "extra", "198.19.0.14", "--socket", &s],
        vec!["remove", "lab/spare", "--socket", &s],
    ] {
        let (ok, _, err) = tandem(&args);
        assert!(!ok, "{args:?}");
        assert!(
            err.contains("cannot reach the appliance") && err.contains(&s),
            "{args:?}: {err}"
        );
    }
    let (ok, _, err) = tandem(&["drain", "--socket", &s]);
    assert!(!ok && err.contains("REPLICA"), "a name is required: {err}");
    let (ok, _, err) = tandem(&["flows", "--limit", "0", "--socket", &s]);
    assert!(!ok && err.contains("1 to 10000"), "{err}");
    let (ok, _, err) = tandem(&["flows", "--client", "198.18.0", "--socket", &s]);
    assert!(!ok && err.contains("not an IPv4 address"), "{err}");
    let (ok, _, err) = tandem(&["add", "lab", "extra", "198.19.0", "--socket", &s]);
    assert!(!ok && err.contains("ADDRESS"), "{err}");
}

/// A stand-in appliance: answers one request on a socket with `answer`, returns the
/// request line it read.
fn answer_once(
    sock: &std::path::Path,
    answer: &tandem_runtime::answer::Response,
) -> std::thread::JoinHandle<String> {
    use std::io::{BufRead, Write};
    let listener = std::os::unix::net::UnixListener::bind(sock).expect("bind");
    let wire = answer.to_wire();
    std::thread::spawn(move || {
        let (conn, _) = listener.accept().expect("accept");
        let mut line = String::new();
        let mut reader = std::io::BufReader::new(&conn);
        reader.read_line(&mut line).expect("request");
        (&conn).write_all(wire.as_bytes()).expect("answer");
        line
    })
}

#[test]
fn management_commands_print_the_answer_as_text_or_with_json_as_json() {
    use tandem_runtime::answer::{Change, ReplicaChange, Response};
    let dir = std::env::temp_dir().join(format!("tandem-cli-answer-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let sock = dir.join("t.sock");
    let s = sock.to_string_lossy().into_owned();
    let drained = Response::Replica(ReplicaChange {
        replica: "lab/spare".into(),
        address: "198.19.0.13".parse().expect("ip"),
        change: Change::Draining,
    });
    for json in [false, true] {
        let _ = std::fs::remove_file(&sock);
        let appliance = answer_once(&sock, &drained);
        let mut args = vec!["drain", "spare", "--socket", &s];
        if json {
            args.push("--json");
        }
        let (ok, out, err) = tandem(&args);
        assert_eq!(appliance.join().expect("appliance"), "drain spare\n");
        assert!(ok, "{err}");
        if json {
            let v: serde_json::Value = serde_json::from_str(&out).expect("JSON on stdout");
            assert_eq!(v["replica"], "lab/spare");
            assert_eq!(v["change"], "draining");
        } else {
            assert_eq!(out, "lab/spare: draining (no new flows; its flows stay)\n");
        }
    }
    // A refusal fails the command; with --json it is also on stdout, as JSON.
    for json in [false, true] {
        let _ = std::fs::remove_file(&sock);
        let appliance = answer_once(&sock, &Response::error("no replica `nope`"));
        let mut args = vec!["fail", "nope", "--socket", &s];
        if json {
            args.push("--json");
        }
        let (ok, out, err) = tandem(&args);
        appliance.join().expect("appliance");
        assert!(!ok);
        assert!(err.contains("no replica `nope`"), "{err}");
        if json {
            let v: serde_json::Value = serde_json::from_str(&out).expect("JSON on stdout");
            assert_eq!(v["error"], "no replica `nope`");
        } else {
            assert_eq!(out, "");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ha_commands_send_their_request_and_print_the_pair() {
    use tandem_runtime::answer::{HaPeerStatus, HaStatus, Response};
    use tandem_runtime::ha::Role;
    let dir = std::env::temp_dir().join(format!("tandem-cli-ha-answer-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let sock = dir.join("t.sock");
    let s = sock.to_string_lossy().into_owned();
    let status = HaStatus {
        role: Role::Standby,
        epoch: 3,
        ready: true,
        preferred: true,
        local: "198.18.255.1:7788".into(),
        peer: HaPeerStatus {
            address: "198.18.255.2:7788".into(),
            alive: true,
            role: Some(Role::Active),
            epoch: 3,
            ready: false,
            ha_heard_ms_ago: Some(4),
            data_heard_ms_ago: Some(2),
        },
        outcome: None,
        counters: Default::default(),
    };
    for (args, line) in [
        (vec!["ha", "status", "--socket", &s], "ha status\n"),
        (vec!["ha", "active", "--socket", &s], "ha active\n"),
        (
            vec!["ha", "standby", "--socket", &s, "--json"],
            "ha standby\n",
        ),
    ] {
        let _ = std::fs::remove_file(&sock);
        let appliance = answer_once(&sock, &Response::Ha(Box::new(status.clone())));
        let (ok, out, err) = tandem(&args);
        assert_eq!(appliance.join().expect("appliance"), line);
        assert!(ok, "{err}");
        if args.contains(&"--json") {
            let v: serde_json::Value = serde_json::from_str(&out).expect("JSON on stdout");
            assert_eq!(v["role"], "standby");
            assert_eq!(v["peer"]["role"], "active");
        } else {
            assert!(
                out.starts_with(
                    "ha: standby (epoch 3, ready, preferred), local 198.18.255.1:7788\n"
                ),
                "{out}"
            );
            assert!(
                out.contains("peer 198.18.255.2:7788: alive active, epoch 3;"),
                "{out}"
            );
        }
    }
    let (ok, _, err) = tandem(&["ha", "become", "--socket", &s]);
    assert!(!ok && err.contains("unrecognized subcommand"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn reload_sends_the_profiles_absolute_path_and_prints_the_differences() {
    use tandem_runtime::answer::{Reloaded, Response};
    use tandem_runtime::reload::Difference;
    let dir = std::env::temp_dir().join(format!("tandem-cli-reload-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let sock = dir.join("t.sock");
    let s = sock.to_string_lossy().into_owned();
    let lab = std::fs::canonicalize(concat!(env!("CARGO_MANIFEST_DIR"), "/configs/lab.yaml"))
        .expect("lab profile");
    let answer = Response::Reload(Reloaded {
        profile: lab.display().to_string(),
        applied: false,
        differences: vec![Difference::ReplicaDrain {
            service: "lab".into(),
            name: "backup".into(),
            drained: true,
        }],
    });
    let appliance = answer_once(&sock, &answer);
    // --socket says where; --profile says which file the appliance reads.
    let (ok, out, err) = tandem(&[
        "reload",
        "--dry-run",
        "--socket",
        &s,
        "--profile",
        "configs/lab.yaml",
    ]);
    assert_eq!(
        appliance.join().expect("appliance"),
        format!("reload --dry-run {}\n", lab.display())
    );
    assert!(ok, "{err}");
    assert_eq!(
        out,
        format!(
            "{}: 1 difference found (dry run, nothing applied)\n  ~ lab/backup: drained (no new flows, its flows stay)\n",
            lab.display()
        )
    );
    // Without --profile: the file the appliance runs.
    let _ = std::fs::remove_file(&sock);
    let appliance = answer_once(
        &sock,
        &Response::error("reload refused, nothing changed: x"),
    );
    let (ok, _, err) = tandem(&["reload", "--socket", &s]);
    assert_eq!(appliance.join().expect("appliance"), "reload\n");
    assert!(
        !ok && err.contains("reload refused, nothing changed"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn check_takes_a_port_range_and_run_would_too() {
    let lab = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/configs/lab.yaml"))
        .expect("lab profile");
    let dir = std::env::temp_dir().join(format!("tandem-cli-range-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("range.yaml");
    let text = lab.replacen("port: any ", "port: 8000-8100 ", 1);
    assert_ne!(text, lab, "lab.yaml has `port: any`");
    std::fs::write(&path, text).expect("write");
    let path = path.to_string_lossy().into_owned();
    let (ok, out, err) = tandem(&["check", "--profile", &path]);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(ok, "{err}");
    assert!(
        out.contains("service lab: 198.18.0.100:8000-8100 mirror"),
        "{out}"
    );
    assert!(out.contains("no_replica reset"), "{out}");
    assert!(out.contains(&format!("{path}: ok\n")), "{out}");
    assert!(!out.contains("refuses"), "{out}");
}

#[test]
fn check_summarises_an_ha_section_and_passes_it() {
    let lab = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/configs/lab.yaml"))
        .expect("lab profile");
    let dir = std::env::temp_dir().join(format!("tandem-cli-ha-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("ha.yaml");
    let text = format!(
        "{lab}\nha:\n  interface: ha0\n  local: 198.18.255.1:7788\n  \
         peer: 198.18.255.2:7788\n  preferred: true\n"
    );
    std::fs::write(&path, text).expect("write");
    let path = path.to_string_lossy().into_owned();
    let (ok, out, err) = tandem(&["check", "--profile", &path]);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(ok, "{err}");
    assert!(
        out.contains(
            "ha: ha0 local 198.18.255.1:7788 peer 198.18.255.2:7788 (preferred); \
             heartbeat 10ms dead time 30ms; sync 5 records/datagram within 1ms, window 1024; \
             floating: VIPs"
        ),
        "{out}"
    );
    assert!(out.contains("ha.yaml: ok"), "{out}");
    assert!(!out.contains("refuses it"), "{out}");
}

#[test]
fn host_check_passes_the_lab_profile_here_with_nothing_to_bind() {
    let (ok, out, err) = tandem(&["host", "check", "--profile", "configs/lab.yaml"]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("ok    hugepages  not needed: the EAL runs with --no-huge"),
        "{out}"
    );
    assert!(
        out.contains("outside: net_af_packet0 is a virtual device (--vdev): nothing to bind"),
        "{out}"
    );
    let (ok, out, _) = tandem(&[
        "host",
        "setup",
        "--profile",
        "configs/lab.yaml",
        "--dry-run",
    ]);
    assert!(ok);
    assert_eq!(out, "host setup: nothing to change\n");
}

/// A host with CPUs 0-7, no hugepages reserved, an IOMMU and the two-port profile's NICs
/// on ixgbe: `host check` fails naming each fix, `host setup --dry-run` lists the changes.
#[test]
fn host_check_and_setup_name_what_an_unprepared_host_lacks() {
    let root = std::env::temp_dir().join(format!("tandem-cli-host-{}", std::process::id()));
    let put = |p: &str, text: &str| {
        let p = root.join(p);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    };
    put("proc/meminfo", "Hugepagesize:       2048 kB\n");
    put("proc/mounts", "hugetlbfs /dev/hugepages hugetlbfs rw 0 0\n");
    let node = "sys/devices/system/node/node0/hugepages/hugepages-2048kB";
    put(&format!("{node}/nr_hugepages"), "0\n");
    put(&format!("{node}/free_hugepages"), "0\n");
    put("sys/devices/system/cpu/present", "0-7\n");
    put("sys/devices/system/cpu/online", "0-7\n");
    put("sys/kernel/iommu_groups/0/type", "DMA\n");
    std::fs::create_dir_all(root.join("sys/bus/pci/drivers/ixgbe")).expect("mkdir");
    for nic in ["0000:3b:00.0", "0000:3b:00.1"] {
        put(&format!("sys/bus/pci/devices/{nic}/numa_node"), "0\n");
        let _ = std::os::unix::fs::symlink(
            "../../../bus/pci/drivers/ixgbe",
            root.join(format!("sys/bus/pci/devices/{nic}/driver")),
        );
    }
    let r = root.to_string_lossy().into_owned();
    let profile = "configs/appliance-2port.yaml";
    let (ok, out, err) = tandem(&["host", "check", "--profile", profile, "--root", &r]);
    let (json_ok, json, _) = tandem(&[
        "host",
        "check",
        "--profile",
        profile,
        "--root",
        &r,
        "--json",
    ]);
    let (dry_ok, dry, _) = tandem(&[
        "host",
        "setup",
        "--profile",
        profile,
        "--root",
        &r,
        "--dry-run",
    ]);
    let _ = std::fs::remove_dir_all(&root);
    assert!(!ok);
    assert!(
        // 3 as root; without CAP_IPC_LOCK the memlock limit is a fourth.
        err.contains(" problems for configs/appliance-2port.yaml"),
        "{err}"
    );
    assert!(
        out.contains(
            "FAIL  hugepages  node 0: 0 of 0 pages of 2048 kB free, 1024 needed (2048 MiB)"
        ),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "fix: tandem host setup --profile {profile}, or: echo 1024 > /{node}/nr_hugepages"
        )),
        "{out}"
    );
    assert!(out.contains("FAIL  device     inside: 0000:3b:00.1 is bound to ixgbe, not a DPDK driver, NUMA node 0"), "{out}");
    assert!(
        out.contains("modprobe vfio-pci && dpdk-devbind.py --bind=vfio-pci 0000:3b:00.1"),
        "{out}"
    );
    assert!(!json_ok);
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(v["passed"], false);
    assert!(dry_ok);
    assert_eq!(
        dry,
        "would change: hugepages on node 0: 0 -> 1024\n\
         would change: module vfio-pci loaded\n\
         would change: 0000:3b:00.0 bound to vfio-pci (was ixgbe)\n\
         would change: 0000:3b:00.1 bound to vfio-pci (was ixgbe)\n"
    );
}

#[test]
fn generate_docs_writes_a_man_page_per_command_and_completions_without_itself() {
    let out = std::env::temp_dir().join(format!("tandem-docs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let dir = out.to_string_lossy().into_owned();
    let (ok, _, err) = tandem(&["generate-docs", "--out", &dir]);
    assert!(ok, "{err}");
    for page in [
        "tandem.1",
        "tandem-run.1",
        "tandem-check.1",
        "tandem-flows.1",
    ] {
        let text = std::fs::read_to_string(out.join("man").join(page))
            .unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains(".TH "), "{page} is not a man page");
    }
    let run = std::fs::read_to_string(out.join("man/tandem-run.1")).unwrap_or_default();
    // The synopsis as typed, the footer with the binary's version.
    assert!(run.contains("tandem run"), "{run}");
    assert!(run.contains("(git "), "{run}");
    assert!(!out.join("man/tandem-generate-docs.1").exists());
    for file in ["tandem.bash", "_tandem", "tandem.fish"] {
        let text = std::fs::read_to_string(out.join("completions").join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(text.contains("check"), "{file}");
        assert!(
            !text.contains("generate-docs"),
            "{file} offers the hidden command"
        );
    }
    let _ = std::fs::remove_dir_all(&out);
}
