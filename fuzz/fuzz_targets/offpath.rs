//! An off-path attacker against an established flow: whatever it sends, the client's and
//! the replicas' streams stay byte-exact and the flow lives. `cargo fuzz run offpath`.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../crates/engine/tests/attack_driver/mod.rs"]
mod attack_driver;

fuzz_target!(|ops: Vec<attack_driver::Op>| {
    attack_driver::run(&ops);
});
