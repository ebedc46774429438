//! Any bytes from the HA link as a sync batch and as a record: never a panic, and a
//! record that decodes encodes to the same bytes (the encoding is canonical).
//! `cargo fuzz run sync_decode`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_engine::sync::{Batch, SyncRecord, RECORD_LEN};

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = SyncRecord::decode(data) {
        let mut again = [0u8; RECORD_LEN];
        assert_eq!(r.encode(&mut again), Ok(RECORD_LEN));
        assert_eq!(&again[..], &data[..RECORD_LEN]);
    }
    if let Ok(batch) = Batch::parse(data) {
        for r in batch.records() {
            let _ = r;
        }
    }
});
