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

#[test]
fn check_says_what_run_would_refuse() {
    let (ok, out, _) = tandem(&["check", "--profile", "configs/appliance-2port.yaml"]);
    assert!(ok);
    assert!(out.contains("but `tandem run` refuses it: "), "{out}");
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
    assert_eq!(v["runnable"], false);
    assert!(v["refused"].is_string(), "{out}");
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
