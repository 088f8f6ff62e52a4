//! `processor_regex_accelerate`: Logtail's C++ "accelerated" regex mode,
//! run as the native steps it is made of.
//!
//! The accelerate plugin was one C++ step that split multi-line records
//! (`LogBeginRegex`/`LogContinueRegex`/`LogEndRegex`), parsed them with a
//! boost regex (whole-record match, `^`/`$` at line breaks), filtered
//! (`FilterKey`/`FilterRegex`) and parsed the `time` key (`TimeFormat`).
//! Here:
//! - the multi-line rules become the file input's `Multiline` (the config
//!   loader moves them there; see [`RegexAccelerateOptions::multiline`]);
//! - `Regex`/`Keys` are [`RegexParser`] (`processor_parse_regex_native`,
//!   same engine, same dialect); `EnableRawLog` keeps the matched record in
//!   `RawLogTag` (default `__raw__`);
//! - `TimeFormat` parses the `time` key (or `TimeKey`) with
//!   [`TimestampParser`], in `LogTimezone` when `AdjustTimezone`. As in
//!   LoongCollector's `RegexLogLineParser`, a time that does not parse fails
//!   the record like a regex failure, and a time older than the window
//!   (`DiscardOlderThanSecs`, default 43200 s: LoongCollector's
//!   `ilogtail_discard_interval`) drops it (a time-window drop in
//!   [`Parser::stats_parts`]);
//! - a record that does not match (or whose time does not parse) is dropped
//!   with `DiscardUnmatch` (default **true**); with `false` it is kept as
//!   LoongCollector's `AddUnmatchLog` keeps it: the raw record alone, under
//!   `__raw_log__`, with the time it was read;
//! - `EnablePreciseTimestamp` adds the parsed time to `PreciseTimestampKey`
//!   (default `precise_timestamp`) in `PreciseTimestampUnit` (`ms`, `us`,
//!   `ns`; default `ms`) and sets the record's sub-second time to it. When
//!   `TimeFormat` has no `%f`, the fraction is read, as LoongCollector's
//!   `GetPreciseTimestamp` reads it, from the text right after the format's
//!   match: `.`, `,`, `:` or a space, then the digits;
//! - `FilterKey`/`FilterRegex` are [`FilterParser`] (whole-value match),
//!   run on the parsed records.

use crate::event::{Event, FieldKey};
use crate::file::multiline::MultilineOptions;
use crate::process::filter::{FilterError, FilterOptions, FilterParser};
use crate::process::regex::{RegexError, RegexOptions, RegexParser};
use crate::process::timestamp::{TimestampError, TimestampOptions, TimestampParser};
use crate::process::{DropReason, ParserStats, CONTENT, RAW_LOG};
use crate::{EventBatch, Parser};

use bytes::Bytes;

/// The LoongCollector type string.
pub const NAME: &str = "processor_regex_accelerate";

/// The unit of `PreciseTimestampKey` (shared with `processor_strptime`).
pub use crate::process::PreciseUnit;

/// The default time window of `processor_regex_accelerate`
/// (`DiscardOlderThanSecs`): LoongCollector's `ilogtail_discard_interval`,
/// 12 hours.
pub const DEFAULT_DISCARD_OLDER_THAN_SECS: u64 = 43_200;

/// Options of `processor_regex_accelerate`.
///
/// Non-exhaustive: build it with [`RegexAccelerateOptions::new`] and set
/// fields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RegexAccelerateOptions {
    /// `Regex` (default `(.*)`) and `Keys` (default `[content]`), with the
    /// source handling `DiscardUnmatch` and `EnableRawLog` set.
    pub regex: RegexOptions,
    /// `LogBeginRegex`, `LogContinueRegex`, `LogEndRegex` (and
    /// `DiscardUnmatch` for lines outside records): `None` without them.
    /// Run by the file input, not by this processor.
    pub multiline: Option<MultilineOptions>,
    /// `FilterKey`/`FilterRegex`: `None` without them.
    pub filter: Option<FilterOptions>,
    /// `TimeFormat` on the time key: `None` without it. Its
    /// `discard_older_than_secs` is the window (set it to
    /// [`DEFAULT_DISCARD_OLDER_THAN_SECS`] for LoongCollector's).
    pub time: Option<TimestampOptions>,
    /// `EnablePreciseTimestamp`: the key and unit, `None` when off.
    pub precise: Option<(String, PreciseUnit)>,
}

impl RegexAccelerateOptions {
    /// The regex step alone.
    pub fn new(regex: RegexOptions) -> Self {
        RegexAccelerateOptions {
            regex,
            multiline: None,
            filter: None,
            time: None,
            precise: None,
        }
    }
}

/// Why a `processor_regex_accelerate` could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegexAccelerateError {
    /// `Regex`/`Keys`.
    #[error(transparent)]
    Regex(#[from] RegexError),
    /// `FilterKey`/`FilterRegex` (reported as `Include`).
    #[error("FilterRegex: {0}")]
    Filter(#[from] FilterError),
    /// `TimeFormat`/`LogTimezone`.
    #[error("TimeFormat: {0}")]
    Time(#[from] TimestampError),
}

/// The `processor_regex_accelerate` steps.
#[derive(Debug)]
pub struct RegexAccelerateParser {
    regex: RegexParser,
    filter: Option<FilterParser>,
    time: Option<TimestampParser>,
    precise: Option<(crate::event::FieldKey, PreciseUnit)>,
    /// `DiscardUnmatch`: unmatched records are dropped, else kept as
    /// `__raw_log__`.
    discard: bool,
    /// Time failures, and records dropped: unmatched or outside the window.
    own: ParserStats,
    /// Of `own.dropped`, the records outside the window.
    outdated: u64,
}

/// The fraction of a second LoongCollector's `GetPreciseTimestamp` reads
/// from the text after the time format's match: one of `.`, `,`, `:` or a
/// space, then digits (at most nine read; missing ones are zeros). Anything
/// else gives 0.
fn suffix_nanos(rest: &[u8]) -> u32 {
    let Some((&sep, digits)) = rest.split_first() else {
        return 0;
    };
    if !matches!(sep, b'.' | b',' | b':' | b' ') {
        return 0;
    }
    let mut v: u32 = 0;
    let mut n = 0;
    for &d in digits.iter().take(9) {
        if !d.is_ascii_digit() {
            break;
        }
        v = v * 10 + u32::from(d - b'0');
        n += 1;
    }
    v * 10u32.pow(9 - n)
}

/// What became of one record.
enum Fate {
    Keep,
    Unmatched,
    Outdated,
}

impl RegexAccelerateParser {
    /// Builds the steps.
    pub fn new(options: RegexAccelerateOptions) -> Result<Self, RegexAccelerateError> {
        let mut regex = options.regex;
        let discard = !regex.source.keep_source_on_fail;
        // Failures are handled here (the whole record, as __raw_log__).
        regex.source.keep_source_on_fail = true;
        regex.source.copying_raw_log = false;
        Ok(RegexAccelerateParser {
            regex: RegexParser::new(regex)?,
            filter: options.filter.map(FilterParser::new).transpose()?,
            time: options.time.map(TimestampParser::new).transpose()?,
            precise: options
                .precise
                .map(|(k, u)| (crate::event::FieldKey::interned(&k), u)),
            discard,
            own: ParserStats::default(),
            outdated: 0,
        })
    }

    /// Parses the record's time (and precise timestamp), as LoongCollector's
    /// `ParseLogTime`.
    fn parse_time(&mut self, e: &mut Event, now: crate::Timestamp) -> Fate {
        let Some(t) = &mut self.time else {
            return Fate::Keep;
        };
        let Some(value) = e.field(t.source_key()).map(Bytes::copy_from_slice) else {
            return Fate::Unmatched;
        };
        let Some((mut ts, end)) = t.parse_value_end(&value, now) else {
            return Fate::Unmatched;
        };
        if t.outside_window(ts, now) {
            return Fate::Outdated;
        }
        if let Some((key, unit)) = &self.precise {
            if !t.has_fraction() {
                ts.nanos = suffix_nanos(value.get(end..).unwrap_or_default());
            }
            ts.nanos -= ts.nanos % unit.nanos();
            e.set_field(key.clone(), Bytes::from(unit.count(ts).to_string()));
        }
        e.time = ts;
        Fate::Keep
    }

    /// One record: `false` when it is dropped.
    fn process_event(&mut self, e: &mut Event) -> bool {
        let Some(raw) = e.field(CONTENT).map(|_| e.content.clone()) else {
            // No raw line (already parsed): left alone, as the regex does.
            self.regex.parse_event(e);
            return true;
        };
        let before = e.clone();
        let failed = self.regex.stats().failed;
        self.regex.parse_event(e);
        let fate = if self.regex.stats().failed > failed {
            Fate::Unmatched
        } else {
            match self.parse_time(e, before.time) {
                Fate::Unmatched => {
                    self.own.failed += 1;
                    Fate::Unmatched
                }
                f => f,
            }
        };
        match fate {
            Fate::Keep => true,
            Fate::Outdated => {
                self.own.dropped += 1;
                self.outdated += 1;
                false
            }
            Fate::Unmatched if self.discard => {
                self.own.dropped += 1;
                false
            }
            Fate::Unmatched => {
                // LoongCollector's AddUnmatchLog: the record alone, under
                // `__raw_log__`, at the time it was read.
                *e = before;
                e.remove_field(CONTENT);
                e.set_field(FieldKey::from_static(&RAW_LOG), raw);
                true
            }
        }
    }
}

impl Parser for RegexAccelerateParser {
    fn name(&self) -> &str {
        NAME
    }

    fn failure_kind(&self) -> crate::process::FailureKind {
        crate::process::FailureKind::RegexMatch
    }

    /// The regex's failures (`RegexMatch`) and discarded lines, the
    /// filter's drops and the time's failures (`ParseTime`) and drops
    /// outside the window, each as its own part.
    fn stats_parts(&self) -> Vec<crate::process::StatsPart> {
        use crate::process::{DropKind, FailureKind, StatsPart};
        let mut parts = self.regex.stats_parts();
        // This step's own counters: times that did not parse, records
        // outside the window, and the unmatched records it discards.
        let part = |failed, dropped| ParserStats {
            failed,
            dropped,
            ..ParserStats::default()
        };
        parts.push(StatsPart::new(
            FailureKind::ParseTime,
            DropKind::TimeWindow,
            part(self.own.failed, self.outdated),
        ));
        parts.push(StatsPart::new(
            FailureKind::RegexMatch,
            DropKind::ParseFail,
            part(0, self.own.dropped.saturating_sub(self.outdated)),
        ));
        if let Some(f) = &self.filter {
            parts.extend(f.stats_parts());
        }
        parts
    }

    fn process(&mut self, batch: &mut EventBatch) {
        batch.events.retain_mut(|e| self.process_event(e));
        if let Some(f) = &mut self.filter {
            f.process(batch);
        }
    }

    fn stats(&self) -> ParserStats {
        let mut s = self.regex.stats();
        for other in [Some(self.own), self.filter.as_ref().map(Parser::stats)]
            .into_iter()
            .flatten()
        {
            s.failed += other.failed;
            s.dropped += other.dropped;
        }
        s
    }

    fn drop_reason(&self) -> Option<DropReason> {
        let unmatched = self.discard.then(|| DropReason {
            reason: format!(
                "they did not match Regex{}",
                if self.time.is_some() {
                    " or their time did not parse"
                } else {
                    ""
                }
            ),
            option: "DiscardUnmatch",
            remedy: "false keeps them as __raw_log__".into(),
        });
        let window = self.time.as_ref().and_then(Parser::drop_reason);
        let parts: Vec<DropReason> = [
            unmatched,
            self.filter.as_ref().and_then(Parser::drop_reason),
            window,
        ]
        .into_iter()
        .flatten()
        .collect();
        match parts.len() {
            0 => None,
            1 => parts.into_iter().next(),
            _ => Some(DropReason {
                reason: parts
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join("; or "),
                option: "DiscardUnmatch/FilterRegex/DiscardOlderThanSecs",
                remedy: "see each reason".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::CONTENT;
    use crate::Timestamp;

    fn ev(s: &str) -> Event {
        Event::line(
            Bytes::copy_from_slice(s.as_bytes()),
            0,
            Timestamp::default(),
        )
    }

    #[test]
    fn regex_then_filter_then_time() {
        let mut r = RegexOptions::new(
            r"(\S+) (\w+) (.*)",
            vec!["time".into(), "level".into(), "msg".into()],
        );
        r.source.keep_source_on_fail = false;
        let mut o = RegexAccelerateOptions::new(r);
        o.filter = Some(FilterOptions {
            include: vec![("level".into(), "ERROR|WARN".into())],
            ..Default::default()
        });
        let mut t = TimestampOptions::new("%Y-%m-%dT%H:%M:%S");
        t.source_key = "time".into();
        t.discard_older_than_secs = 0;
        o.time = Some(t);
        o.precise = Some(("precise_timestamp".into(), PreciseUnit::Millis));
        let mut p = RegexAccelerateParser::new(o).unwrap();
        let mut b = crate::process::test_batch(vec![
            ev("2022-07-07T10:43:27 ERROR boom"),
            ev("2022-07-07T10:43:28 INFO fine"),
            ev("junk"),
        ]);
        p.process(&mut b);
        assert_eq!(b.events.len(), 1);
        let e = &b.events[0];
        assert_eq!(e.field("msg"), Some(&b"boom"[..]));
        assert_eq!(e.time.secs, 1_657_190_607);
        assert_eq!(e.field("precise_timestamp"), Some(&b"1657190607000"[..]));
        assert_eq!(e.field(CONTENT), None);
        let st = p.stats();
        assert_eq!((st.processed, st.failed, st.dropped), (3, 1, 2));
        assert!(p.drop_reason().unwrap().to_string().contains("; or "));
    }

    /// The records dropped outside the time window, as the parts say.
    fn outdated(p: &RegexAccelerateParser) -> u64 {
        p.stats_parts()
            .iter()
            .filter(|part| part.drop == crate::process::DropKind::TimeWindow)
            .map(|part| part.stats.dropped)
            .sum()
    }

    fn at(s: &str, secs: i64) -> Event {
        Event::line(
            Bytes::copy_from_slice(s.as_bytes()),
            0,
            Timestamp { secs, nanos: 0 },
        )
    }

    fn timed(discard: bool) -> RegexAccelerateOptions {
        let mut r = RegexOptions::new(r"(\S+ \S+) (.*)", vec!["time".into(), "msg".into()]);
        r.source.keep_source_on_fail = !discard;
        let mut o = RegexAccelerateOptions::new(r);
        let mut t = TimestampOptions::new("%Y-%m-%d %H:%M:%S");
        t.source_key = "time".into();
        t.source_timezone = Some("GMT+08:00".into());
        t.discard_older_than_secs = 43_200;
        o.time = Some(t);
        o
    }

    #[test]
    fn only_times_older_than_the_window_are_dropped() {
        let mut p = RegexAccelerateParser::new(timed(true)).unwrap();
        // Read at 2023-06-30 15:06:14 +08:00.
        let now = 1_688_108_774;
        let mut b = crate::process::test_batch(vec![
            at("2023-06-30 05:06:14 ten hours old", now),
            at("2023-06-30 02:06:13 thirteen hours old", now),
        ]);
        p.process(&mut b);
        assert_eq!(b.events.len(), 1);
        assert_eq!(b.events[0].time.secs, now - 36_000);
        let st = p.stats();
        assert_eq!(
            (st.processed, st.failed, st.dropped, outdated(&p)),
            (2, 0, 1, 1)
        );
        let why = p.drop_reason().unwrap().to_string();
        assert!(
            why.contains("43200 s") && why.contains("DiscardOlderThanSecs"),
            "{why}"
        );
    }

    #[test]
    fn precise_timestamp_reads_the_fraction_after_the_format() {
        // LoongCollector's "High Resolution Time Raw Log" example.
        let mut o = timed(true);
        o.precise = Some(("precise_timestamp".into(), PreciseUnit::Millis));
        let mut p = RegexAccelerateParser::new(o.clone()).unwrap();
        let mut b = crate::process::test_batch(vec![ev("2023-06-30 15:06:14.812 hello")]);
        p.process(&mut b);
        let e = &b.events[0];
        assert_eq!(e.field("precise_timestamp"), Some(&b"1688108774812"[..]));
        assert_eq!((e.time.secs, e.time.nanos), (1_688_108_774, 812_000_000));
        assert_eq!(suffix_nanos(b",5"), 500_000_000);
        assert_eq!(suffix_nanos(b"x5"), 0);
        assert_eq!(suffix_nanos(b"."), 0);
        // Microseconds; missing digits are zeros; `%f` in the format wins.
        o.precise = Some(("p".into(), PreciseUnit::Micros));
        let mut p = RegexAccelerateParser::new(o.clone()).unwrap();
        let mut b = crate::process::test_batch(vec![ev("2023-06-30 15:06:14:81 x")]);
        p.process(&mut b);
        assert_eq!(b.events[0].field("p"), Some(&b"1688108774810000"[..]));
        if let Some(t) = &mut o.time {
            t.source_format = "%Y-%m-%d %H:%M:%S.%f".into();
        }
        let mut p = RegexAccelerateParser::new(o).unwrap();
        let mut b = crate::process::test_batch(vec![ev("2023-06-30 15:06:14.123456789 x")]);
        p.process(&mut b);
        assert_eq!(b.events[0].field("p"), Some(&b"1688108774123456"[..]));
    }

    #[test]
    fn a_bad_time_fails_the_record_like_a_regex_failure() {
        let mut p = RegexAccelerateParser::new(timed(true)).unwrap();
        let mut b = crate::process::test_batch(vec![ev("2023-13-30 15:06:14 bad month"), ev("x")]);
        p.process(&mut b);
        assert!(b.events.is_empty());
        let st = p.stats();
        assert_eq!((st.failed, st.dropped, outdated(&p)), (2, 2, 0));
        assert!(p
            .drop_reason()
            .unwrap()
            .to_string()
            .contains("time did not parse"));
        // DiscardUnmatch: false keeps both as __raw_log__, alone.
        let mut o = timed(false);
        o.regex.source.keep_source_on_success = true;
        o.regex.source.renamed_source_key = Some("__raw__".into());
        let mut p = RegexAccelerateParser::new(o).unwrap();
        let mut b = crate::process::test_batch(vec![
            at("2023-13-30 15:06:14 bad month", 7),
            at("x", 7),
            at("2023-06-30 15:06:14 fine", 1_688_108_774),
        ]);
        p.process(&mut b);
        assert_eq!(b.events.len(), 3);
        for (e, raw) in b.events[..2]
            .iter()
            .zip(["2023-13-30 15:06:14 bad month", "x"])
        {
            assert_eq!(e.field(RAW_LOG), Some(raw.as_bytes()));
            assert_eq!(e.field(CONTENT), None);
            assert_eq!(e.fields.len(), 1, "{e:?}");
            assert_eq!(e.time.secs, 7);
        }
        let ok = &b.events[2];
        assert_eq!(ok.field("msg"), Some(&b"fine"[..]));
        assert_eq!(ok.field("__raw__"), Some(&b"2023-06-30 15:06:14 fine"[..]));
        assert_eq!(ok.field(RAW_LOG), None);
        assert_eq!(p.stats().dropped, 0);
        assert_eq!(p.drop_reason().unwrap().option, "DiscardOlderThanSecs");
    }
}
