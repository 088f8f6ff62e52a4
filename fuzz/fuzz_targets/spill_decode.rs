//! Arbitrary bytes through the spill record decoder, and (as a segment
//! file) through `SpillQueue::open` and a full drain: never a panic; only
//! records whose CRCs check out come back.
#![no_main]
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use logtail_core::spill::record::{decode_all, encode_segment_header};
use logtail_core::spill::{ManualClock, SpillOptions, SpillQueue};

fuzz_target!(|data: &[u8]| {
    let all = decode_all(data);
    let mut end = 0;
    for (header, payload) in &all.records {
        assert!(header.payload_matches(&data[payload.clone()]));
        assert!(payload.start >= end);
        end = payload.end;
    }
    if let Some(torn) = all.torn_from {
        assert!(torn >= end && torn <= data.len());
    }

    // The same bytes as a segment in a fresh directory (on tmpfs where there
    // is one: open fsyncs), for one input in 32 so the decoder gets most of
    // the runs: with a valid segment header when the first byte is 0.
    if data.first().is_none_or(|b| b % 32 > 1) {
        return;
    }
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    };
    let Ok(dir) = dir else { return };
    let mut segment = Vec::new();
    if data[0].is_multiple_of(32) {
        encode_segment_header(&mut segment);
        segment.extend_from_slice(&data[1..]);
    } else {
        segment.extend_from_slice(data);
    }
    if std::fs::write(dir.path().join("00000000000000000001.spill"), &segment).is_err() {
        return;
    }
    let clock = Arc::new(ManualClock::default());
    let Ok(mut queue) = SpillQueue::open(dir.path(), SpillOptions::default(), clock) else {
        return;
    };
    while let Ok(Some(record)) = queue.oldest() {
        if queue.remove(record.id).is_err() {
            break;
        }
    }
});
