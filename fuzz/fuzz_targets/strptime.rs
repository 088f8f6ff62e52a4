//! `processor_strptime` on arbitrary formats, values and offsets: never
//! panics, gives valid nanoseconds, and `UTCOffset` shifts the result by
//! exactly its seconds.
#![no_main]
use libfuzzer_sys::fuzz_target;
use logtail_core::process::strptime::{StrptimeOptions, StrptimeParser};
use logtail_core::Timestamp;

const FORMATS: &[&str] = &[
    "%Y/%m/%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S+08:00",
    "%Y-%m-%d %H:%M:%S %z",
    "%s",
    "%d/%b/%Y:%H:%M:%S.%f",
    "%b %e %H:%M:%S",
];

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let (sel, offq, rest) = (data[0], data[1], &data[2..]);
    let (format, value) = if sel < 128 {
        (FORMATS[sel as usize % FORMATS.len()].to_string(), rest)
    } else {
        let cut = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let value = rest.get(cut + 1..).unwrap_or_default();
        (String::from_utf8_lossy(&rest[..cut]).into_owned(), value)
    };
    let offset = (i32::from(offq as i8) % 48) * 900;
    let now = Timestamp {
        secs: 1_795_440_053,
        nanos: 0,
    };
    let mut base = StrptimeOptions::new(format);
    base.local_offset = Some(0);
    let Ok(mut plain) = StrptimeParser::new(base.clone()) else {
        return;
    };
    let mut adjusted_opts = base;
    adjusted_opts.adjust_utc_offset = true;
    adjusted_opts.utc_offset = Some(offset);
    let mut adjusted = StrptimeParser::new(adjusted_opts).expect("offset in range");
    let a = plain.parse(value, now);
    let b = adjusted.parse(value, now);
    assert_eq!(a.is_some(), b.is_some());
    if let (Some(a), Some(b)) = (a, b) {
        assert!(a.nanos < 1_000_000_000);
        assert_eq!(a.nanos, b.nanos);
        assert_eq!(a.secs - b.secs, i64::from(offset));
    }
});
