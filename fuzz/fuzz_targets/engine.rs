//! Arbitrary sequences of packets, replica failures and time through the engine: never a
//! panic, gauges within their limits. `cargo fuzz run engine`.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../crates/engine/tests/fuzz_driver/mod.rs"]
mod fuzz_driver;

fuzz_target!(|ops: Vec<fuzz_driver::Op>| {
    fuzz_driver::run(&ops);
});
