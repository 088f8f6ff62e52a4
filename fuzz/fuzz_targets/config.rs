//! Config text of any content gives a config or an error naming a key:
//! never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use logtail_sdk::config::PipelineConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for json in [false, true] {
        if let Err(e) = PipelineConfig::parse("fuzz", "fuzz.yaml", text, json) {
            assert_eq!(e.origin, "fuzz.yaml");
        }
    }
});
