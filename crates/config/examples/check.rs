//! `tandem check` without the rest of tandem: validates profiles and prints every problem.
//!
//! ```text
//! cargo run -p tandem-config --example check -- configs/lab.yaml configs/appliance-2port.yaml
//! ```

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut status = ExitCode::SUCCESS;
    for arg in std::env::args().skip(1) {
        match tandem_config::load(Path::new(&arg)) {
            Ok(p) => println!(
                "{arg}: ok ({} services, {} workers)",
                p.services.len(),
                p.lcores.workers.len()
            ),
            Err(e) => {
                eprintln!("{e}");
                status = ExitCode::FAILURE;
            }
        }
    }
    status
}
