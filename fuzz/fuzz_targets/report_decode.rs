//! Arbitrary heartbeat extras as an agent report (what the config server
//! reads from untrusted agents): decoding gives a report and errors, never
//! a panic; what it keeps is within the documented limits, and a decoded
//! report written back decodes to itself.
#![no_main]
use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use logtail_sdk::fleet::report::{
    EXTRA_ALARMS, EXTRA_CPU, EXTRA_MEM, EXTRA_STATUS, MAX_ALARMS, MAX_MESSAGE_CHARS, MAX_NAME_CHARS,
};
use logtail_sdk::fleet::AgentReport;

fuzz_target!(|data: &[u8]| {
    // The first byte picks which keys get a part of the rest (split at 0xff).
    let Some((&mask, rest)) = data.split_first() else {
        return;
    };
    let keys = [EXTRA_STATUS, EXTRA_CPU, EXTRA_MEM, EXTRA_ALARMS];
    let mut parts = rest.split(|b| *b == 0xff);
    let mut extras = BTreeMap::new();
    for (i, key) in keys.iter().enumerate() {
        if mask & (1 << i) != 0 {
            extras.insert(key.to_string(), parts.next().unwrap_or(&[]).to_vec());
        }
    }
    let version = parts.next().unwrap_or(&[]);
    let (report, _errors) = AgentReport::from_extras(&extras, version);
    let Some(report) = report else {
        assert!(extras.is_empty());
        return;
    };
    assert!(report.alarms.len() <= MAX_ALARMS);
    assert!(report.status.chars().count() <= MAX_NAME_CHARS);
    assert!(report.cpu_cores.is_finite() && report.cpu_cores >= 0.0);
    for a in &report.alarms {
        assert!((1..=3).contains(&a.level) && a.count > 0 && !a.alarm_type.is_empty());
        assert!(a.message.chars().count() <= MAX_MESSAGE_CHARS);
    }
    let mut again = BTreeMap::new();
    report.write_extras(&mut again);
    let (back, errors) = AgentReport::from_extras(&again, report.version.as_bytes());
    assert!(errors.is_empty(), "{errors:?}");
    let back = back.expect("a report");
    assert_eq!(back.status, report.status.trim());
    assert_eq!(back.memory_bytes, report.memory_bytes);
    assert_eq!(back.alarms, report.alarms);
});
