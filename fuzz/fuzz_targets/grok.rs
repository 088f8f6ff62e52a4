//! `processor_grok` on arbitrary expressions, custom patterns and lines:
//! building never panics (a bad expression is an error), matching never
//! panics, every value lies inside the line, and the step loses no event
//! silently.
#![no_main]
use std::sync::Arc;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use logtail_core::process::grok::{GrokMatch, GrokOptions, GrokParser};
use logtail_core::{AckToken, Event, EventBatch, Parser, SourceTags, Timestamp};

const MATCHES: &[&str] = &[
    "%{COMBINEDAPACHELOG}",
    "%{SYSLOGBASE} %{GREEDYDATA:msg}",
    "%{IP:client} %{WORD:method} %{URIPATHPARAM:request} %{NUMBER:bytes} %{NUMBER:duration}",
    "%{TIMESTAMP_ISO8601:time} %{LOGLEVEL:level} %{GREEDYDATA:msg}",
    "%{QS:q} %{INT:n}",
];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let mut lines = rest.split(|&b| b == b'\n');
    let mut o = if sel < 128 {
        GrokOptions::new(vec![MATCHES[sel as usize % MATCHES.len()].to_string()])
    } else {
        // The first line is an expression, the second a custom pattern X.
        let expr = String::from_utf8_lossy(lines.next().unwrap_or_default()).into_owned();
        let custom = String::from_utf8_lossy(lines.next().unwrap_or_default()).into_owned();
        let mut o = GrokOptions::new(vec![expr]);
        o.custom_patterns = vec![("X".into(), custom)];
        o
    };
    o.ignore_parse_failure = sel & 1 == 0;
    o.keep_source = sel & 2 != 0;
    let Ok(p) = GrokParser::new(o.clone()) else {
        return;
    };
    let mut events = Vec::new();
    for line in lines {
        if let GrokMatch::Fields(fields) = p.parse(line) {
            assert!(!fields.is_empty());
            for f in &fields {
                let r = f.value.as_span().expect("spans of the line");
                assert!(r.start < r.end && r.end <= line.len());
            }
        }
        events.push(Event::line(
            Bytes::copy_from_slice(line),
            0,
            Timestamp::default(),
        ));
    }
    let n = events.len() as u64;
    let mut p = GrokParser::new(o).expect("built once already");
    let mut batch = EventBatch {
        source: Arc::new(SourceTags {
            path: "/f.log".into(),
            dev: 0,
            inode: 0,
            config: Arc::from("fuzz"),
        }),
        events,
        bytes: 0,
        ack: AckToken::detached(),
    };
    p.process(&mut batch);
    let st = p.stats();
    assert_eq!(st.processed, n);
    assert_eq!(batch.events.len() as u64, n - st.dropped);
    assert!(st.dropped <= st.failed);
});
