//! `logtail-agent status` renders whatever JSON the address answers:
//! any document must give tables (or nothing), never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(doc) = serde_json::from_slice::<serde_json::Value>(data) {
        let text = logtail_sdk::status_table::render_table("127.0.0.1:18689", &doc);
        assert!(text.contains("PIPELINES"));
    }
});
