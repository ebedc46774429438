//! An off-path attacker against an established flow (made by the usual handshake or from a
//! SYN cookie): whatever it sends, the client's and the replicas' streams stay byte-exact
//! and the flow lives. `cargo fuzz run offpath`.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../crates/engine/tests/attack_driver/mod.rs"]
mod attack_driver;

fuzz_target!(|input: (attack_driver::Start, Vec<attack_driver::Op>)| {
    attack_driver::run_from(input.0, &input.1);
});
