//! `processor_strptime` (LoongCollector's Go "extended" time processor):
//! sets the event's time from a field read with a C `strptime` format.
//!
//! The format is read by the native parser of
//! [`crate::process::timestamp`] (the same directives: `%Y %m %d %H %M %S
//! %f %z %s %b %j %p`…; the format must match a prefix of the value). The
//! zone follows LoongCollector:
//! - with `AdjustUTCOffset: true` and a `UTCOffset`, the time read is moved by `-UTCOffset`
//!   seconds (`UTCOffset: 28800` reads `12:00` as 12:00 UTC+8); with `%z`
//!   in the format the offset written in the value applies first and
//!   `UTCOffset` then shifts the result, as LoongCollector does;
//! - otherwise (also with `AdjustUTCOffset: true` but no `UTCOffset`, as
//!   Go leaves it unset then), for a format without `%z` that is not `%s`, the machine's
//!   local UTC offset at the time the processor is built is used (like
//!   LoongCollector's `time.Now().Zone()`); [`StrptimeOptions::local_offset`]
//!   overrides it;
//! - `%s` alone reads only the first 10 characters of the value (seconds of
//!   a millisecond timestamp), as LoongCollector does.
//!
//! `KeepSource` (default true) keeps the source field after a successful
//! parse. `EnablePreciseTimestamp` adds the time as a number in
//! `PreciseTimestampKey` (default `precise_timestamp`) in
//! `PreciseTimestampUnit` (`ms` default, `us`, `ns`). A value that does not
//! parse leaves the event as it was and counts as failed.
//!
//! Differences from LoongCollector, on purpose: a format without a year
//! takes the year of the event's read time (LoongCollector's Go parser gives
//! year 0 and so a time outside any sensible range); the event keeps
//! nanoseconds when the format has `%f`.

use std::sync::Arc;

use bytes::Bytes;

use crate::event::{Event, FieldKey};
use crate::process::timestamp::{TimestampError, TimestampOptions, TimestampParser};
use crate::process::ParserStats;
use crate::{EventBatch, Parser, Timestamp};

/// The LoongCollector type string of this processor.
pub const NAME: &str = "processor_strptime";

/// The unit of the precise timestamp field (shared with
/// `processor_regex_accelerate`).
pub use crate::process::PreciseUnit;

/// Options of `processor_strptime`, with LoongCollector's defaults.
///
/// Non-exhaustive: start from [`StrptimeOptions::new`] and set fields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StrptimeOptions {
    /// `SourceKey` (default `time`).
    pub source_key: String,
    /// `Format` (required).
    pub format: String,
    /// `KeepSource` (default true).
    pub keep_source: bool,
    /// `AdjustUTCOffset` (default false).
    pub adjust_utc_offset: bool,
    /// `UTCOffset`: seconds east of UTC, -43200..=50400 (used with
    /// `AdjustUTCOffset`; `None`, the default, is the local offset as
    /// without it).
    pub utc_offset: Option<i32>,
    /// `EnablePreciseTimestamp` (default false).
    pub enable_precise_timestamp: bool,
    /// `PreciseTimestampKey` (default `precise_timestamp`).
    pub precise_timestamp_key: String,
    /// `PreciseTimestampUnit` (default ms).
    pub precise_timestamp_unit: PreciseUnit,
    /// The offset used without `AdjustUTCOffset` for formats without a
    /// zone; `None` (the default) is the machine's local offset now.
    pub local_offset: Option<i32>,
}

impl StrptimeOptions {
    /// LoongCollector's defaults for the required `Format`.
    pub fn new(format: impl Into<String>) -> Self {
        StrptimeOptions {
            source_key: "time".into(),
            format: format.into(),
            keep_source: true,
            adjust_utc_offset: false,
            utc_offset: None,
            enable_precise_timestamp: false,
            precise_timestamp_key: "precise_timestamp".into(),
            precise_timestamp_unit: PreciseUnit::Millis,
            local_offset: None,
        }
    }
}

/// A configuration error of `processor_strptime`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StrptimeError {
    /// `Format` is empty.
    #[error("Format: must not be empty")]
    EmptyFormat,
    /// `UTCOffset` is outside UTC-12..UTC+14.
    #[error("UTCOffset: {0} is out of range (-43200 to 50400 seconds, UTC-12 to UTC+14)")]
    BadOffset(i32),
    /// The format does not compile.
    #[error("Format: {0}")]
    Format(String),
}

/// The `processor_strptime` step.
#[derive(Debug)]
pub struct StrptimeParser {
    source_key: Arc<str>,
    keep_source: bool,
    seconds_only: bool,
    shift: i64,
    precise: Option<(FieldKey, PreciseUnit)>,
    parser: TimestampParser,
    stats: ParserStats,
}

/// The machine's UTC offset now, in seconds east (0 if unknown).
pub fn local_utc_offset() -> i32 {
    let now = Timestamp::now().secs as libc::time_t;
    // SAFETY: `tm` is a plain C struct for which all-zero bytes are valid;
    // localtime_r only reads `now` and writes `tm`, both live locals.
    let off = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&now, &mut tm).is_null() {
            0
        } else {
            tm.tm_gmtoff
        }
    };
    i32::try_from(off).unwrap_or(0)
}

impl StrptimeParser {
    /// Checks the options, compiles the format and builds the step.
    pub fn new(opts: StrptimeOptions) -> Result<Self, StrptimeError> {
        if opts.format.is_empty() {
            return Err(StrptimeError::EmptyFormat);
        }
        let adjust = opts.utc_offset.filter(|_| opts.adjust_utc_offset);
        let shift = if let Some(off) = adjust {
            if !(-12 * 3600..=14 * 3600).contains(&off) {
                return Err(StrptimeError::BadOffset(off));
            }
            off
        } else if !opts.format.contains("%z") && opts.format != "%s" {
            opts.local_offset.unwrap_or_else(local_utc_offset)
        } else {
            0
        };
        // The Go strptime matches an offset written literally in the
        // format (`…%S+08:00`) as plain text; the zone is the one above.
        // The native parser takes such a literal as the zone, so take it
        // back out.
        let shift = shift - crate::process::timestamp::literal_offset(&opts.format).unwrap_or(0);
        let source_key: Arc<str> = if opts.source_key.is_empty() {
            Arc::from("time")
        } else {
            Arc::from(opts.source_key.as_str())
        };
        let mut t = TimestampOptions::new(opts.format.clone());
        t.source_key = Arc::clone(&source_key);
        t.discard_older_than_secs = 0;
        let parser = TimestampParser::new(t).map_err(|e| match e {
            TimestampError::EmptyFormat => StrptimeError::EmptyFormat,
            other => StrptimeError::Format(
                other
                    .to_string()
                    .trim_start_matches("SourceFormat: ")
                    .to_string(),
            ),
        })?;
        let precise = opts.enable_precise_timestamp.then(|| {
            let key = if opts.precise_timestamp_key.is_empty() {
                "precise_timestamp"
            } else {
                opts.precise_timestamp_key.as_str()
            };
            (FieldKey::interned(key), opts.precise_timestamp_unit)
        });
        Ok(StrptimeParser {
            source_key,
            keep_source: opts.keep_source,
            seconds_only: opts.format == "%s",
            shift: shift as i64,
            precise,
            parser,
            stats: ParserStats::default(),
        })
    }

    /// The time `value` gives (`now`: the reference time for year-less
    /// formats), or `None`. Never panics.
    pub fn parse(&mut self, value: &[u8], now: Timestamp) -> Option<Timestamp> {
        let value = if self.seconds_only {
            &value[..value.len().min(10)]
        } else {
            value
        };
        let ts = self.parser.parse_value(value, now)?;
        Some(Timestamp {
            secs: ts.secs.checked_sub(self.shift)?,
            nanos: ts.nanos,
        })
    }

    /// Processes one event: sets its time if its source parses.
    pub fn process_event(&mut self, event: &mut Event) {
        self.stats.processed += 1;
        let Some(src) = event.field(&self.source_key) else {
            return;
        };
        let now = event.time;
        let Some(ts) = self.parse(src, now) else {
            self.stats.failed += 1;
            return;
        };
        event.time = ts;
        if !self.keep_source {
            event.remove_field(&self.source_key);
        }
        if let Some((key, unit)) = &self.precise {
            event.set_field(key.clone(), Bytes::from(unit.count(ts).to_string()));
        }
    }
}

impl Parser for StrptimeParser {
    fn name(&self) -> &str {
        NAME
    }

    fn failure_kind(&self) -> crate::process::FailureKind {
        crate::process::FailureKind::ParseTime
    }

    fn process(&mut self, batch: &mut EventBatch) {
        for e in &mut batch.events {
            self.process_event(e);
        }
    }

    fn stats(&self) -> ParserStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev_with(key: &str, v: &str) -> Event {
        let mut e = Event::line(Bytes::new(), 0, Timestamp::default());
        e.set_field(FieldKey::interned(key), Bytes::from(v.to_string()));
        e
    }

    fn parser(o: StrptimeOptions) -> StrptimeParser {
        StrptimeParser::new(o).unwrap()
    }

    #[test]
    fn an_offset_written_in_the_format_is_plain_text_as_in_go() {
        // The nginx-json example: `+08:00` in the format, a UTC+8 machine.
        let mut o = StrptimeOptions::new("%Y-%m-%dT%H:%M:%S+08:00");
        o.source_key = "t".into();
        o.local_offset = Some(8 * 3600);
        let mut p = parser(o.clone());
        let mut e = ev_with("t", "2023-08-24T21:31:52+08:00");
        p.process_event(&mut e);
        assert_eq!(e.time.secs, 1_692_883_912);
        // On a UTC machine the same config reads it as UTC, like Go.
        o.local_offset = Some(0);
        let mut p = parser(o);
        let mut e = ev_with("t", "2023-08-24T21:31:52+08:00");
        p.process_event(&mut e);
        assert_eq!(e.time.secs, 1_692_883_912 + 8 * 3600);
    }

    #[test]
    fn documented_example_1_uses_the_machine_offset() {
        // processor-strptime.md, example 1, on a UTC+8 machine.
        let mut o = StrptimeOptions::new("%Y/%m/%d %H:%M:%S");
        o.source_key = "log_time".into();
        o.local_offset = Some(8 * 3600);
        let mut p = parser(o);
        let mut e = ev_with("log_time", "2016/01/02 12:59:59");
        p.process_event(&mut e);
        assert_eq!(e.time.secs, 1_451_710_799);
        assert_eq!(e.field("log_time").unwrap(), b"2016/01/02 12:59:59");
    }

    #[test]
    fn documented_example_2_uses_utc_offset() {
        let mut o = StrptimeOptions::new("%Y/%m/%d %H:%M:%S");
        o.source_key = "log_time".into();
        o.adjust_utc_offset = true;
        o.utc_offset = Some(25200);
        o.local_offset = Some(8 * 3600); // ignored with AdjustUTCOffset
        let mut p = parser(o);
        let mut e = ev_with("log_time", "2016/01/02 12:59:59");
        p.process_event(&mut e);
        assert_eq!(e.time.secs, 1_451_714_399);
    }

    #[test]
    fn adjust_without_an_offset_falls_back_to_the_local_offset_as_go_does() {
        // Go leaves UTCOffset unset (nilUTCOffset) and takes time.Now().Zone().
        let mut o = StrptimeOptions::new("%Y/%m/%d %H:%M:%S");
        o.source_key = "log_time".into();
        o.adjust_utc_offset = true;
        o.local_offset = Some(8 * 3600);
        let mut p = parser(o.clone());
        let mut e = ev_with("log_time", "2016/01/02 12:59:59");
        p.process_event(&mut e);
        assert_eq!(e.time.secs, 1_451_710_799);
        // An explicit 0 is UTC.
        o.utc_offset = Some(0);
        let mut p = parser(o);
        let mut e = ev_with("log_time", "2016/01/02 12:59:59");
        p.process_event(&mut e);
        assert_eq!(e.time.secs, 1_451_739_599);
    }

    #[test]
    fn zone_in_the_value_then_adjust_as_loongcollector_comments_say() {
        // "2016/01/02 12:59:59 +0700 => 2016/01/02 05:59:59 +0000".
        let mut o = StrptimeOptions::new("%Y/%m/%d %H:%M:%S %z");
        o.local_offset = Some(8 * 3600);
        let mut p = parser(o.clone());
        let utc = 1_451_739_599 - 7 * 3600;
        assert_eq!(
            p.parse(b"2016/01/02 12:59:59 +0700", Timestamp::default())
                .unwrap()
                .secs,
            utc
        );
        // "Set to UTC-8 (-28800): get 2016/01/02 05:59:59 -0800".
        o.adjust_utc_offset = true;
        o.utc_offset = Some(-28800);
        let mut p = parser(o);
        assert_eq!(
            p.parse(b"2016/01/02 12:59:59 +0700", Timestamp::default())
                .unwrap()
                .secs,
            utc + 28800
        );
    }

    #[test]
    fn epoch_seconds_read_ten_digits_and_precise_timestamp_is_added() {
        let mut o = StrptimeOptions::new("%s");
        o.keep_source = false;
        o.enable_precise_timestamp = true;
        let mut p = parser(o);
        let mut e = ev_with("time", "1690000000123");
        p.process_event(&mut e);
        assert_eq!(e.time.secs, 1_690_000_000);
        assert_eq!(e.field("time"), None);
        assert_eq!(e.field("precise_timestamp").unwrap(), b"1690000000000");

        let mut o = StrptimeOptions::new("%Y-%m-%d %H:%M:%S.%f");
        o.local_offset = Some(0);
        o.enable_precise_timestamp = true;
        o.precise_timestamp_unit = PreciseUnit::Micros;
        o.precise_timestamp_key = "ts".into();
        let mut p = parser(o);
        let mut e = ev_with("time", "2023-07-22 04:26:40.123456");
        p.process_event(&mut e);
        assert_eq!(
            e.time,
            Timestamp {
                secs: 1_690_000_000,
                nanos: 123_456_000
            }
        );
        assert_eq!(e.field("ts").unwrap(), b"1690000000123456");
    }

    #[test]
    fn failures_are_counted_and_leave_the_event() {
        let mut o = StrptimeOptions::new("%Y-%m-%d");
        o.local_offset = Some(0);
        let mut p = parser(o);
        let mut e = ev_with("time", "yesterday");
        p.process_event(&mut e);
        assert_eq!(e.time, Timestamp::default());
        assert_eq!(e.field("time").unwrap(), b"yesterday");
        let mut missing = Event::line(Bytes::from_static(b"x"), 0, Timestamp::default());
        p.process_event(&mut missing);
        assert_eq!((p.stats().processed, p.stats().failed), (2, 1));
    }

    #[test]
    fn bad_options_name_the_option() {
        assert_eq!(
            StrptimeParser::new(StrptimeOptions::new("")).unwrap_err(),
            StrptimeError::EmptyFormat
        );
        let mut o = StrptimeOptions::new("%Y");
        o.adjust_utc_offset = true;
        o.utc_offset = Some(15 * 3600);
        let e = StrptimeParser::new(o).unwrap_err();
        assert!(e.to_string().starts_with("UTCOffset: 54000"), "{e}");
        let e = StrptimeParser::new(StrptimeOptions::new("%Q")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("Format: unsupported directive %Q"),
            "{e}"
        );
    }

    /// A naive reference for the numeric directives: the same seconds as a
    /// civil-to-days computation, for any offset.
    #[test]
    fn matches_a_naive_reference_over_many_dates() {
        fn days(y: i64, m: i64, d: i64) -> i64 {
            // Days since 1970-01-01, month by month.
            let mut n = 0;
            for yy in 1970..y {
                n += if (yy % 4 == 0 && yy % 100 != 0) || yy % 400 == 0 {
                    366
                } else {
                    365
                };
            }
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let ml = [
                31,
                if leap { 29 } else { 28 },
                31,
                30,
                31,
                30,
                31,
                31,
                30,
                31,
                30,
                31,
            ];
            n + ml[..(m - 1) as usize].iter().sum::<i64>() + d - 1
        }
        let mut seed = 12345u64;
        let mut next = |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        for _ in 0..500 {
            let (y, m, d) = (
                1970 + next(100) as i64,
                1 + next(12) as i64,
                1 + next(28) as i64,
            );
            let (h, mi, s) = (next(24) as i64, next(60) as i64, next(60) as i64);
            let off = next(26 * 3600 + 1) as i32 - 12 * 3600;
            let mut o = StrptimeOptions::new("%Y/%m/%d %H:%M:%S");
            o.adjust_utc_offset = true;
            o.utc_offset = Some(off);
            let mut p = parser(o);
            let text = format!("{y:04}/{m:02}/{d:02} {h:02}:{mi:02}:{s:02}");
            let want = days(y, m, d) * 86400 + h * 3600 + mi * 60 + s - off as i64;
            assert_eq!(
                p.parse(text.as_bytes(), Timestamp::default()).unwrap().secs,
                want,
                "{text} {off}"
            );
        }
    }
}
