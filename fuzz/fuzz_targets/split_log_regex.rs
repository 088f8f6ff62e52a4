//! processor_split_log_regex on arbitrary multi-line values and patterns:
//! it never panics, the pieces are in order, non-empty, and put back
//! together they are the value.
#![no_main]
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use logtail_core::event::{Event, Timestamp};
use logtail_core::process::split_log_regex::{SplitLogRegexOptions, SplitLogRegexParser};

const PATTERNS: &[&str] = &[
    r"\d+-\d+-\d+\s\d+:\d+:\d+\s\[.*",
    r"\[\d+-\d+-\d+\s\d+:\d+:\d+]\s.*",
    r"[A-Z].*",
    ".*",
    "a|ab",
];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, value)) = data.split_first() else {
        return;
    };
    let mut o = SplitLogRegexOptions::default();
    o.split_regex = PATTERNS[mode as usize % PATTERNS.len()].to_owned();
    o.preserve_others = mode & 128 != 0;
    let Ok(mut p) = SplitLogRegexParser::new(o) else {
        return;
    };
    let mut out = Vec::new();
    p.split_event(
        Event::line(Bytes::copy_from_slice(value), 0, Timestamp::default()),
        &mut out,
    );
    let mut joined = Vec::new();
    for e in &out {
        assert!(!e.content.is_empty());
        joined.extend_from_slice(&e.content);
    }
    assert_eq!(joined, value);
});
