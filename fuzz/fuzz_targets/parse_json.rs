//! `processor_parse_json_native` on arbitrary bytes: never panics, accepts
//! every object serde_json accepts with the same members, rejects what is
//! not JSON (beyond serde_json's own limits), and the step loses no event.
#![no_main]
use std::sync::Arc;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use logtail_core::process::json::{parse_object, JsonOptions, JsonParser, JsonScratch};
use logtail_core::{AckToken, Event, EventBatch, Parser, SourceTags, Timestamp};
use serde_json::{Map, Value};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    let src = Bytes::copy_from_slice(body);
    let ours = parse_object(&src, &mut JsonScratch::default());
    match serde_json::from_slice::<Map<String, Value>>(body) {
        Ok(map) => {
            let fields = ours.expect("serde_json accepted it");
            // Duplicates: the last member wins on both sides.
            let mut last = std::collections::BTreeMap::new();
            for f in &fields {
                last.insert(f.key.to_string(), f.value.resolve(&src).to_vec());
            }
            assert_eq!(last.len(), map.len());
            for (k, v) in &map {
                let got = &last[k];
                match v {
                    Value::String(s) => assert_eq!(&got[..], s.as_bytes()),
                    other => {
                        let back: Value = serde_json::from_slice(got).expect("raw JSON text");
                        assert_eq!(&back, other);
                    }
                }
            }
        }
        Err(e) => {
            if ours.is_some() && std::str::from_utf8(body).is_ok() {
                let msg = e.to_string();
                assert!(
                    msg.contains("number out of range") || msg.contains("recursion limit"),
                    "accepted what serde_json rejects: {msg}"
                );
            }
        }
    }

    // The step: no event lost silently.
    let mut opts = JsonOptions::default();
    opts.source.keep_source_on_fail = flags & 1 == 0;
    opts.source.keep_source_on_success = flags & 2 != 0;
    opts.source.renamed_source_key = (flags & 4 != 0).then(|| Arc::from("raw"));
    opts.source.copying_raw_log = flags & 8 != 0;
    let mut p = JsonParser::new(opts).expect("valid options");
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
});
