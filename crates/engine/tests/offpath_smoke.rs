//! The off-path attacker of `fuzz/` (`offpath`) on random inputs (proptest), so that every
//! `cargo test` runs it a while on the stable toolchain.

mod attack_driver;

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Whatever an off-path attacker sends, the stream both ways stays byte-exact.
    #[test]
    fn an_off_path_attacker_changes_nothing_in_the_stream(seed in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let mut u = arbitrary::Unstructured::new(&seed);
        if let Ok(ops) = <Vec<attack_driver::Op> as arbitrary::Arbitrary>::arbitrary(&mut u) {
            attack_driver::run(&ops);
        }
    }

    /// The same against a flow made from a SYN cookie (§3.11).
    #[test]
    fn an_off_path_attacker_changes_nothing_in_a_cookie_made_stream(seed in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let mut u = arbitrary::Unstructured::new(&seed);
        if let Ok(ops) = <Vec<attack_driver::Op> as arbitrary::Arbitrary>::arbitrary(&mut u) {
            attack_driver::run_from(attack_driver::Start::Cookie, &ops);
        }
    }
}
