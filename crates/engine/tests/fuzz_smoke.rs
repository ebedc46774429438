//! The fuzz drivers of `fuzz/` run here on random inputs (proptest), so that every
//! `cargo test` is a short fuzzing smoke run on the stable toolchain.

mod fuzz_driver;

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Arbitrary bytes as one frame on either port never panic the engine.
    #[test]
    fn any_bytes_as_a_frame(bytes in proptest::collection::vec(any::<u8>(), 0..200), inside in any::<bool>()) {
        fuzz_driver::run(&[fuzz_driver::Op::Raw { inside, bytes }]);
    }

    /// Arbitrary sequences of structured segments, failures and time never panic it.
    #[test]
    fn any_sequence_of_operations(seed in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let mut u = arbitrary::Unstructured::new(&seed);
        if let Ok(ops) = <Vec<fuzz_driver::Op> as arbitrary::Arbitrary>::arbitrary(&mut u) {
            fuzz_driver::run(&ops);
        }
    }
}
