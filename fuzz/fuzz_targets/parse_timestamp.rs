//! `processor_parse_timestamp_native` on arbitrary formats and values:
//! never panics, the cached parse always equals the uncached one, and the
//! step loses no event silently (kept, or dropped and counted).
#![no_main]
use std::sync::Arc;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use logtail_core::process::timestamp::{TimestampOptions, TimestampParser};
use logtail_core::{AckToken, Event, EventBatch, Parser, SourceTags, Timestamp};

const FORMATS: &[&str] = &[
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%dT%H:%M:%S.%f%z",
    "%d/%b/%Y:%H:%M:%S %z",
    "%c",
    "%A, %d %B %Y %r",
    "%Y%m%d%H%M%S%f",
    "%s.%f",
    "%s",
    "%y-%j %T",
    "%C%y %x %X",
    "%b %e %H:%M:%S",
    "%u %w %U %W %V %h%n%t%I %p",
];

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let (sel, tzq, rest) = (data[0], data[1], &data[2..]);
    // sel < 128: a known format; otherwise the format is the first line.
    let (format, values) = if sel < 128 {
        (FORMATS[sel as usize % FORMATS.len()].to_string(), rest)
    } else {
        let cut = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let values = rest.get(cut + 1..).unwrap_or_default();
        (String::from_utf8_lossy(&rest[..cut]).into_owned(), values)
    };
    let tz = i32::from(tzq as i8) % 56 * 900 / 2;
    let mut opts = TimestampOptions::new(format);
    opts.source_timezone = Some(format!(
        "GMT{}{:02}:{:02}",
        if tz < 0 { '-' } else { '+' },
        tz.abs() / 3600,
        tz.abs() % 3600 / 60
    ));
    opts.source_year = (sel & 64 != 0).then_some(2026);
    opts.discard_older_than_secs = u64::from(sel & 7) * 1000;
    let Ok(mut p) = TimestampParser::new(opts.clone()) else {
        return;
    };
    let now = Timestamp {
        secs: 1_795_440_053 + i64::from(tzq) * 40_000_000,
        nanos: 0,
    };
    let mut events = Vec::new();
    for v in values.split(|&b| b == b'\n') {
        let cached = p.parse_value(v, now);
        let fresh = p.parse_uncached(v, now);
        assert_eq!(cached, fresh, "{:?}", String::from_utf8_lossy(v));
        if let Some(t) = cached {
            assert!(t.nanos < 1_000_000_000);
        }
        events.push(Event::line(Bytes::copy_from_slice(v), 0, now));
    }
    let n = events.len() as u64;
    let mut p = TimestampParser::new(opts).expect("built once already");
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
    assert!(st.dropped + st.failed <= n);
});
