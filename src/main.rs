//! `tandem`: the appliance binary. Subcommands arrive with the DPDK runtime (issue #3).

fn main() -> anyhow::Result<()> {
    println!("tandem {}", env!("CARGO_PKG_VERSION"));
    Ok(())
}
