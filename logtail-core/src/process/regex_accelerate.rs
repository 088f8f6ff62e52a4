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
//!   same engine, same dialect); `DiscardUnmatch` (default **true**) drops
//!   records that do not match, `false` keeps them as they are;
//!   `EnableRawLog` keeps the record in `RawLogTag` (default `__raw__`);
//! - `FilterKey`/`FilterRegex` are [`FilterParser`] (whole-value match);
//! - `TimeFormat` parses the `time` key (or `TimeKey`) with
//!   [`TimestampParser`], in `LogTimezone` when `AdjustTimezone`;
//!   `EnablePreciseTimestamp` adds the parsed time to `PreciseTimestampKey`
//!   (default `precise_timestamp`) in `PreciseTimestampUnit` (`ms`, `us`,
//!   `ns`; default `ms`).

use crate::event::Event;
use crate::file::multiline::MultilineOptions;
use crate::process::filter::{FilterError, FilterOptions, FilterParser};
use crate::process::regex::{RegexError, RegexOptions, RegexParser};
use crate::process::timestamp::{TimestampError, TimestampOptions, TimestampParser};
use crate::process::{DropReason, ParserStats};
use crate::{EventBatch, Parser};

use bytes::Bytes;

/// The LoongCollector type string.
pub const NAME: &str = "processor_regex_accelerate";

/// The unit of `PreciseTimestampKey`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum PreciseUnit {
    /// `ms` (the default).
    #[default]
    Millis,
    /// `us`.
    Micros,
    /// `ns`.
    Nanos,
}

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
    /// `TimeFormat` on the time key: `None` without it.
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
}

impl RegexAccelerateParser {
    /// Builds the steps.
    pub fn new(options: RegexAccelerateOptions) -> Result<Self, RegexAccelerateError> {
        Ok(RegexAccelerateParser {
            regex: RegexParser::new(options.regex)?,
            filter: options.filter.map(FilterParser::new).transpose()?,
            time: options.time.map(TimestampParser::new).transpose()?,
            precise: options
                .precise
                .map(|(k, u)| (crate::event::FieldKey::interned(&k), u)),
        })
    }

    fn add_precise(&self, e: &mut Event) {
        let Some((key, unit)) = &self.precise else {
            return;
        };
        let (secs, nanos) = (i128::from(e.time.secs), i128::from(e.time.nanos));
        let v = match unit {
            PreciseUnit::Millis => secs * 1_000 + nanos / 1_000_000,
            PreciseUnit::Micros => secs * 1_000_000 + nanos / 1_000,
            PreciseUnit::Nanos => secs * 1_000_000_000 + nanos,
        };
        e.set_field(key.clone(), Bytes::from(v.to_string()));
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
        let mut parts = self.regex.stats_parts();
        if let Some(f) = &self.filter {
            parts.extend(f.stats_parts());
        }
        if let Some(t) = &self.time {
            parts.extend(t.stats_parts());
        }
        parts
    }

    fn process(&mut self, batch: &mut EventBatch) {
        self.regex.process(batch);
        if let Some(f) = &mut self.filter {
            f.process(batch);
        }
        if let Some(t) = &mut self.time {
            t.process(batch);
            if self.precise.is_some() {
                for e in &mut batch.events {
                    self.add_precise(e);
                }
            }
        }
    }

    fn stats(&self) -> ParserStats {
        let mut s = self.regex.stats();
        for other in [
            self.filter.as_ref().map(Parser::stats),
            self.time.as_ref().map(Parser::stats),
        ]
        .into_iter()
        .flatten()
        {
            s.failed += other.failed;
            s.dropped += other.dropped;
        }
        s
    }

    fn drop_reason(&self) -> Option<DropReason> {
        let parts: Vec<DropReason> = [
            self.regex.drop_reason(),
            self.filter.as_ref().and_then(Parser::drop_reason),
            self.time.as_ref().and_then(Parser::drop_reason),
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
                option: "DiscardUnmatch/FilterRegex/TimeFormat",
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
}
