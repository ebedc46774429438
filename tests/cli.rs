//! The `tandem` binary without DPDK: `--version` and `check`.

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
