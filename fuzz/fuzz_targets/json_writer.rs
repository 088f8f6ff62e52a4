//! Any bytes written as a JSON string parse back as JSON, and valid UTF-8
//! comes back unchanged.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut out = Vec::new();
    logtail_sdk::json::write_str(&mut out, data);
    let back: String = serde_json::from_slice(&out).expect("valid JSON string");
    if let Ok(text) = std::str::from_utf8(data) {
        assert_eq!(back, text);
    }
});
