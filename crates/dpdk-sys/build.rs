//! Build script for `tandem-dpdk-sys`.
//!
//! 1. Asks the `pkg-config` binary for `libdpdk` (at least 22.11). The flags are taken
//!    verbatim from `pkg-config --cflags`: DPDK needs `-include rte_config.h` and
//!    `-march=...`, which the `pkg-config` crate drops.
//! 2. Generates Rust bindings with bindgen (allowlisted) into `$OUT_DIR/bindings.rs`.
//! 3. Compiles `csrc/shim.c`, which wraps DPDK's `static inline` fast path.
//! 4. Links dynamically to the libraries `pkg-config --libs libdpdk` names.
//!
//! Any missing prerequisite ends the build with one line naming the install command.

use std::env;
use std::path::PathBuf;
use std::process::{exit, Command};

/// The oldest DPDK release these bindings are written for.
const MIN_VERSION: (u32, u32) = (22, 11);

/// What to run when a prerequisite is missing.
const INSTALL: &str = "install it with `sudo apt-get install libdpdk-dev dpdk pkg-config libclang-dev clang` (or run appliance/install-deps.sh)";

/// Ends the build with one clear line.
fn fail(what: &str) -> ! {
    eprintln!("error: tandem-dpdk-sys: {what}; {INSTALL}");
    exit(1);
}

/// Runs `pkg-config ARGS libdpdk` and returns its standard output.
fn pkg_config(args: &[&str]) -> String {
    let program = env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".to_owned());
    let output = match Command::new(&program).args(args).arg("libdpdk").output() {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fail(&format!("`{program}` was not found"))
        }
        Err(e) => fail(&format!("could not run `{program}`: {e}")),
    };
    if !output.status.success() {
        fail("pkg-config does not know libdpdk (DPDK development files are missing)");
    }
    match String::from_utf8(output.stdout) {
        Ok(s) => s,
        Err(_) => fail("pkg-config printed something that is not UTF-8"),
    }
}

/// Parses "22.11.11" into (22, 11).
fn parse_version(v: &str) -> Option<(u32, u32)> {
    let mut parts = v.trim().split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=csrc/shim.c");
    println!("cargo:rerun-if-changed=csrc/shim.h");
    for var in [
        "PKG_CONFIG",
        "PKG_CONFIG_PATH",
        "PKG_CONFIG_LIBDIR",
        "LIBCLANG_PATH",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }

    let version = pkg_config(&["--modversion"]);
    let version = version.trim();
    match parse_version(version) {
        Some(v) if v >= MIN_VERSION => {}
        Some(_) => fail(&format!(
            "libdpdk {version} is too old, DPDK {}.{} or newer is needed",
            MIN_VERSION.0, MIN_VERSION.1
        )),
        None => fail(&format!("cannot read the libdpdk version `{version}`")),
    }
    println!("cargo:version={version}");

    let cflags: Vec<String> = pkg_config(&["--cflags"])
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let libs = pkg_config(&["--libs"]);

    let manifest =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let header = manifest.join("csrc/shim.h");

    // The C shim, with DPDK's flags one by one, in order.
    let mut build = cc::Build::new();
    build
        .file(manifest.join("csrc/shim.c"))
        .include(manifest.join("csrc"))
        .opt_level(2);
    for flag in &cflags {
        build.flag(flag);
    }
    if let Err(e) = build.try_compile("tandem_dpdk_shim") {
        fail(&format!("cannot compile the C shim ({e})"));
    }

    generate_bindings(&header, &cflags, &out.join("bindings.rs"));

    // Link dynamically to what pkg-config names. rustc adds --as-needed itself, so only
    // the libraries actually called end up in DT_NEEDED.
    for token in libs.split_whitespace() {
        if let Some(dir) = token.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={dir}");
        } else if let Some(lib) = token.strip_prefix("-l") {
            println!("cargo:rustc-link-lib=dylib={lib}");
        }
    }
}

/// Runs bindgen over `header`; a missing libclang or unreadable DPDK headers end the
/// build with one line.
fn generate_bindings(header: &std::path::Path, cflags: &[String], dest: &std::path::Path) {
    let header = header
        .to_str()
        .unwrap_or_else(|| fail("the source path is not UTF-8"))
        .to_owned();
    let cflags = cflags.to_vec();
    // bindgen panics when it cannot load libclang: catch that and say it in one line.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(move || {
        let target = bindgen::RustTarget::stable(80, 0).expect("1.80 is a valid target");
        bindgen::Builder::default()
            .header(header)
            .clang_args(cflags)
            .rust_target(target)
            .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
            .use_core()
            .ctypes_prefix("::core::ffi")
            .generate_comments(false)
            .derive_default(true)
            .derive_debug(false)
            .layout_tests(true)
            .default_enum_style(bindgen::EnumVariation::Consts)
            .prepend_enum_name(false)
            .allowlist_function("tandem_.*")
            .allowlist_function("rte_eal_.*")
            .allowlist_function("rte_eth_.*")
            .allowlist_function("rte_pktmbuf_.*")
            .allowlist_function("rte_mempool_.*")
            .allowlist_function("rte_mbuf_.*")
            .allowlist_function("rte_lcore_.*")
            .allowlist_function("rte_ring_.*")
            .allowlist_function("rte_flow_.*")
            .allowlist_function("rte_ether_.*")
            .allowlist_function("rte_strerror")
            .allowlist_function("rte_pdump_init")
            .allowlist_function("rte_pdump_uninit")
            .allowlist_function("rte_get_tsc_hz")
            .allowlist_function("rte_get_main_lcore")
            .allowlist_function("rte_get_next_lcore")
            .allowlist_function("rte_socket_id")
            .allowlist_function("rte_socket_count")
            .allowlist_function("rte_delay_us_block")
            .allowlist_function("rte_version")
            .allowlist_function("rte_thread_register")
            .allowlist_function("rte_thread_unregister")
            .allowlist_function("rte_openlog_stream")
            .allowlist_function("rte_telemetry_register_cmd")
            .allowlist_function("rte_tel_data_start_dict")
            .allowlist_function("rte_tel_data_add_dict_u64")
            .allowlist_function("rte_tel_data_add_dict_string")
            .allowlist_var("RTE_TEL_.*")
            .allowlist_type("rte_mbuf")
            .allowlist_type("rte_ether_hdr")
            .allowlist_var("TANDEM_.*")
            .allowlist_var("RTE_ETH_.*")
            .allowlist_var("RTE_MBUF_.*")
            .allowlist_var("RTE_MEMPOOL_.*")
            .allowlist_var("RTE_ETHER_.*")
            .allowlist_var("RTE_MAX_.*")
            .allowlist_var("RTE_FLOW_.*")
            .allowlist_var("RING_F_.*")
            .allowlist_var("SOCKET_ID_ANY")
            .allowlist_var("RTE_PTYPE_.*")
            .generate()
    });
    std::panic::set_hook(hook);
    match result {
        Ok(Ok(bindings)) => {
            if let Err(e) = bindings.write_to_file(dest) {
                fail(&format!("cannot write {}: {e}", dest.display()));
            }
        }
        Ok(Err(e)) => fail(&format!(
            "bindgen cannot read the DPDK headers ({})",
            e.to_string().lines().next().unwrap_or("unknown error")
        )),
        Err(_) => fail("bindgen cannot load libclang"),
    }
}
