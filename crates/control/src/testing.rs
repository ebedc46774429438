//! Helpers for tests, here and in `tandem-runtime` (feature `testing`).

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use tandem_config::Profile;

/// The shipped lab profile.
pub fn lab() -> Profile {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../configs/lab.yaml");
    match tandem_config::load(std::path::Path::new(path)) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

/// Sends a byte every 500 ms, never a newline, and returns how long the server took
/// to close the connection (at most `within`) and what it said.
pub fn slow_loris(mut c: impl Read + Write, byte: u8, within: Duration) -> (Duration, String) {
    let t = Instant::now();
    let mut said = Vec::new();
    while t.elapsed() < within {
        if c.write_all(&[byte]).is_err() {
            break;
        }
        // Waits up to 500 ms (the read timeout) for the server to answer or close.
        let mut buf = [0u8; 256];
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => said.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    (t.elapsed(), String::from_utf8_lossy(&said).into_owned())
}
