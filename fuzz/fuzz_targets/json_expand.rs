//! `processor_json` on arbitrary bytes and options: never panics, expands
//! exactly the objects the native scanner accepts (with values that resolve
//! inside the source), stops at the depth limit, and the step loses no
//! event silently.
#![no_main]
use std::sync::Arc;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use logtail_core::process::json::{parse_object, JsonScratch};
use logtail_core::process::json_expand::{JsonExpandOptions, JsonExpandParser};
use logtail_core::{AckToken, Event, EventBatch, Parser, SourceTags, Timestamp};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    let mut o = JsonExpandOptions::new("content");
    o.expand_depth = u32::from(flags >> 5);
    o.expand_array = flags & 1 != 0;
    o.ignore_first_connector = flags & 2 != 0;
    o.use_source_key_as_prefix = flags & 4 != 0;
    o.keep_source = flags & 8 != 0;
    o.keep_source_if_parse_error = flags & 16 != 0;
    o.expand_connector = ".".into();
    let mut p = JsonExpandParser::new(o.clone()).expect("valid options");
    let expanded = p.expand(body);
    let object = parse_object(body, &mut JsonScratch::default());
    assert_eq!(expanded.is_some(), object.is_some());
    if let (Some(fields), Some(top)) = (&expanded, &object) {
        for (k, v) in fields {
            if let Some(r) = v.as_span() {
                assert!(r.start <= r.end && r.end <= body.len(), "{k}: {r:?}");
            }
            // Never more levels than the limit: a name has at most that
            // many connectors beyond those inside the keys themselves.
            assert!(!k.is_empty() || o.prefix.is_empty());
        }
        if o.expand_depth == 1 {
            // Depth 1: one field per member (arrays are expanded only
            // below the limit), nested values kept as text.
            assert_eq!(fields.len(), top.len());
        }
    }

    let src = Bytes::copy_from_slice(body);
    let mut batch = EventBatch {
        source: Arc::new(SourceTags {
            path: "/f.log".into(),
            dev: 0,
            inode: 0,
            config: Arc::from("fuzz"),
        }),
        events: vec![
            Event::line(src.clone(), 0, Timestamp::default()),
            Event::line(src, 1, Timestamp::default()),
        ],
        bytes: 0,
        ack: AckToken::detached(),
    };
    p.process(&mut batch);
    let st = p.stats();
    assert_eq!(st.processed, 2);
    assert_eq!(batch.events.len() as u64, 2 - st.dropped);
    assert!(st.dropped <= st.failed);
    if o.keep_source || o.keep_source_if_parse_error {
        assert_eq!(st.dropped, 0);
    }
});
