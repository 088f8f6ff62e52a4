//! Checkpoint files of any content decode to an error or to positions that
//! encode back to something that decodes the same: never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use logtail_core::checkpoint::{decode, encode};

fuzz_target!(|data: &[u8]| {
    if let Ok(mut positions) = decode(data) {
        let again = decode(&encode(&positions)).expect("our own encoding decodes");
        positions.sort_by_key(|p| p.id);
        let mut again = again;
        again.sort_by_key(|p| p.id);
        // Duplicate ids collapse (last wins) only when the input had them.
        if positions.windows(2).all(|w| w[0].id != w[1].id) {
            assert_eq!(positions, again);
        }
    }
});
