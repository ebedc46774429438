//! Records, for `tandem --version`, the DPDK version that `pkg-config` finds and the git
//! revision of the source (each "unknown" when it cannot be found).

use std::process::Command;

fn output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!s.is_empty()).then_some(s)
}

fn main() {
    let dpdk =
        output("pkg-config", &["--modversion", "libdpdk"]).unwrap_or_else(|| "unknown".into());
    let git = output("git", &["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=TANDEM_DPDK_VERSION={dpdk}");
    println!("cargo:rustc-env=TANDEM_GIT_REV={git}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    println!("cargo:rerun-if-changed=build.rs");
}
