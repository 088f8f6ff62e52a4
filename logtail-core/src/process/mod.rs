//! Processing steps ([`crate::Parser`] implementations), sans-I/O.
//!
//! Each `processor_*_native` of LoongCollector, and each of its Go
//! processors of the regex family (`processor_regex`,
//! `processor_filter_regex`, `processor_split_char`,
//! `processor_split_log_regex`; [`dialect`] translates their patterns), has
//! a module here that takes events and gives events: no files, no sockets,
//! no clocks except those passed in. This module holds what they share: how a parser finds its
//! source field, and what happens to the source after a parse succeeded or
//! failed ([`SourceOptions`]).
//!
//! The raw line is the field `content`; an event whose `content` is empty
//! and which has fields is a parsed record whose source was removed.

pub mod add_fields;
pub mod delimiter;
pub mod desensitize;
pub mod dialect;
pub mod filter;
pub mod filter_go;
pub mod grok;
pub mod json;
pub mod json_expand;
pub mod regex;
pub mod regex_accelerate;
pub mod regex_go;
pub mod split_char;
pub mod split_log_regex;
pub mod strptime;
pub mod timestamp;

use std::sync::Arc;

use bytes::Bytes;

use crate::event::{Base, Event, Field, FieldKey, FieldValue};

/// The name of the raw line's field.
pub const CONTENT: &str = "content";

/// The field `CopingRawLog` adds on a parse failure.
pub const RAW_LOG: &str = "__raw_log__";

/// Counters every parser keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ParserStats {
    /// Events looked at.
    pub processed: u64,
    /// Events whose source did not parse (kept as they were unless told otherwise).
    pub failed: u64,
    /// Events removed (filters, discarded failures, events outside the time window).
    pub dropped: u64,
}

impl std::fmt::Display for ParserStats {
    /// `1000 events, 3 failed to parse, 997 dropped`: events always, the
    /// other counters when they are not zero.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ParserStats {
            processed,
            failed,
            dropped,
        } = *self;
        write!(
            f,
            "{processed} {}",
            if processed == 1 { "event" } else { "events" }
        )?;
        if failed > 0 {
            write!(f, ", {failed} failed to parse")?;
        }
        if dropped > 0 {
            write!(f, ", {dropped} dropped")?;
        }
        Ok(())
    }
}

/// The unit of a precise timestamp field (`PreciseTimestampUnit` of
/// `processor_strptime` and `processor_regex_accelerate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum PreciseUnit {
    /// Milliseconds (`ms`, the default).
    #[default]
    Millis,
    /// Microseconds (`us`).
    Micros,
    /// Nanoseconds (`ns`).
    Nanos,
}

impl PreciseUnit {
    /// The unit named `ms`, `us` or `ns`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "ms" => Some(PreciseUnit::Millis),
            "us" => Some(PreciseUnit::Micros),
            "ns" => Some(PreciseUnit::Nanos),
            _ => None,
        }
    }

    /// Nanoseconds per unit.
    pub fn nanos(self) -> u32 {
        match self {
            PreciseUnit::Millis => 1_000_000,
            PreciseUnit::Micros => 1_000,
            PreciseUnit::Nanos => 1,
        }
    }

    /// `ts` in this unit since the epoch, rounded down: the value of the
    /// precise timestamp field.
    ///
    /// ```
    /// use logtail_core::process::PreciseUnit;
    /// let ts = logtail_core::Timestamp { secs: 1_688_108_774, nanos: 812_345_678 };
    /// assert_eq!(PreciseUnit::Millis.count(ts), 1_688_108_774_812);
    /// ```
    pub fn count(self, ts: crate::Timestamp) -> i128 {
        (i128::from(ts.secs) * 1_000_000_000 + i128::from(ts.nanos))
            .div_euclid(i128::from(self.nanos()))
    }
}

/// What the events a step counts in [`ParserStats::failed`] have in
/// common, as the step declares it ([`crate::Parser::failure_kind`]): the
/// agent raises LoongCollector's alarm for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum FailureKind {
    /// A source that did not parse (JSON, delimiter…):
    /// `PARSE_LOG_FAIL_ALARM`.
    #[default]
    ParseLog,
    /// A regular expression that did not match: `REGEX_MATCH_ALARM`.
    RegexMatch,
    /// A time that did not parse: `PARSE_TIME_FAIL_ALARM`.
    ParseTime,
}

/// Why a step removes the events it counts in [`ParserStats::dropped`],
/// as it declares it ([`crate::Parser::drop_kind`]): the `reason` label of
/// the agent's discarded-events counter and the alarm it raises, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum DropKind {
    /// Failures discarded (`KeepingSourceWhenParseFail: false`,
    /// `DiscardUnmatch`…): already counted as failures.
    #[default]
    ParseFail,
    /// A filter left them out.
    Filter,
    /// Their time was outside the time window: `OUTDATED_LOG_ALARM`.
    TimeWindow,
    /// They could not be split into records (`processor_split_log_regex`
    /// without its field): `SPLIT_LOG_FAIL_ALARM`.
    Split,
}

/// The counters of one kind of a step's failures and drops; a step made
/// of several (`processor_regex_accelerate`) has one per part
/// ([`crate::Parser::stats_parts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct StatsPart {
    /// What its failures are.
    pub failure: FailureKind,
    /// Why it drops.
    pub drop: DropKind,
    /// Its counters.
    pub stats: ParserStats,
}

impl StatsPart {
    /// A part with these kinds and counters.
    pub fn new(failure: FailureKind, drop: DropKind, stats: ParserStats) -> Self {
        StatsPart {
            failure,
            drop,
            stats,
        }
    }
}

/// Why a processor removes events: said whenever it does (no drop is
/// silent), with the option that controls it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropReason {
    /// What the dropped events have in common, e.g. `their time is more
    /// than 300 s before they were read`.
    pub reason: String,
    /// The option that controls the drop, e.g. `DiscardOlderThanSecs`.
    pub option: &'static str,
    /// How to keep such events with that option, e.g. `0 keeps them`.
    pub remedy: String,
}

impl std::fmt::Display for DropReason {
    /// `REASON; controlled by OPTION (REMEDY)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}; controlled by {} ({})",
            self.reason, self.option, self.remedy
        )
    }
}

/// The source-field options of the `processor_parse_*_native` processors.
///
/// Non-exhaustive: start from [`SourceOptions::default`] and set fields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SourceOptions {
    /// `SourceKey` (default `content`).
    pub source_key: Arc<str>,
    /// `KeepingSourceWhenParseFail`. Our default is **true** (LoongCollector's
    /// is false, which drops unparsable lines): a line is never lost silently.
    pub keep_source_on_fail: bool,
    /// `KeepingSourceWhenParseSucceed` (default false).
    pub keep_source_on_success: bool,
    /// `RenamedSourceKey`: the name the kept source gets (default: unchanged).
    pub renamed_source_key: Option<Arc<str>>,
    /// `CopingRawLog`: on failure, also copy the source into `__raw_log__`.
    pub copying_raw_log: bool,
}

impl Default for SourceOptions {
    fn default() -> Self {
        SourceOptions {
            source_key: Arc::from(CONTENT),
            keep_source_on_fail: true,
            keep_source_on_success: false,
            renamed_source_key: None,
            copying_raw_log: false,
        }
    }
}

/// What a parse of one event's source gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Parsed: these fields are added to the event.
    Parsed(Vec<Field>),
    /// The source did not parse.
    Failed,
    /// The event has no such source field: left as it is (not a failure).
    NoSource,
}

impl Event {
    /// The value of field `key` (`content` is the raw line; an empty content
    /// of a parsed record counts as absent).
    pub fn field(&self, key: &str) -> Option<&[u8]> {
        if key == CONTENT {
            return (!self.content_removed()).then_some(&self.content[..]);
        }
        self.fields
            .iter()
            .rev()
            .find(|f| &*f.key == key)
            .map(|f| f.value.resolve(self.retained()))
    }

    /// Whether `content` was consumed by a parser (empty, with fields).
    fn content_removed(&self) -> bool {
        self.content.is_empty() && !self.fields.is_empty()
    }

    /// Removes field `key` (for `content`: empties it).
    pub fn remove_field(&mut self, key: &str) {
        if key == CONTENT {
            self.content = Bytes::new();
        } else {
            self.fields.retain(|f| &*f.key != key);
        }
    }

    /// Sets field `key`, replacing an earlier value (for `content`: the raw line).
    pub fn set_field(&mut self, key: impl Into<FieldKey>, value: Bytes) {
        let key = key.into();
        if &*key == CONTENT {
            self.content = value;
            return;
        }
        self.set_value(key, FieldValue::from(value));
    }

    /// [`Event::set_field`] for a value already in this event's frame and a
    /// key that is not `content`.
    fn set_value(&mut self, key: FieldKey, value: FieldValue) {
        match self.fields.iter_mut().find(|f| f.key == key) {
            Some(f) => f.value = value,
            None => self.fields.push(Field { key, value }),
        }
    }

    /// The value of field `key` in this event's frame (a copy of the
    /// handle, not of the bytes).
    fn field_value(&self, key: &str) -> Option<FieldValue> {
        if key == CONTENT {
            return (!self.content_removed()).then(|| FieldValue::from(self.content.clone()));
        }
        self.fields
            .iter()
            .rev()
            .find(|f| &*f.key == key)
            .map(|f| f.value.clone())
    }

    /// Where the source `key` lies, so that values parsed from it can be
    /// moved into this event's frame, and its value in that frame. `content`
    /// becomes the retained bytes when nothing else is retained; with
    /// `take` it is moved there (and so removed) instead of shared.
    fn anchor(&mut self, key: &str, take: bool) -> Option<(Base, FieldValue)> {
        if key != CONTENT {
            let v = self.field_value(key)?;
            let base = match v.as_span() {
                Some(r) => Base::At {
                    offset: r.start,
                    len: r.len(),
                },
                None => Base::Owned(v.to_bytes(self.retained())),
            };
            return Some((base, v));
        }
        if self.content_removed() {
            return None;
        }
        let len = self.content.len();
        let (c, r) = (
            self.content.as_ptr() as usize,
            self.retained().as_ptr() as usize,
        );
        let offset = if len == 0 {
            Some(0)
        } else if c >= r && c + len <= r + self.retained().len() {
            // The same memory (live buffers never overlap): already retained.
            Some(c - r)
        } else if self.fields.iter().all(|f| f.value.as_span().is_none()) {
            self.retained = Some(if take {
                std::mem::take(&mut self.content)
            } else {
                self.content.clone()
            });
            Some(0)
        } else {
            None
        };
        Some(match offset {
            Some(offset) => (
                Base::At { offset, len },
                FieldValue::span(offset, offset + len),
            ),
            None => (
                Base::Owned(self.content.clone()),
                FieldValue::from(self.content.clone()),
            ),
        })
    }
}

impl SourceOptions {
    /// Why a parser with these options drops events: a source that does not
    /// parse, with `KeepingSourceWhenParseFail: false`. `None` when it keeps
    /// them (the default).
    pub fn drop_reason(&self) -> Option<DropReason> {
        (!self.keep_source_on_fail).then(|| DropReason {
            reason: format!("their field {:?} did not parse", &*self.source_key),
            option: "KeepingSourceWhenParseFail",
            remedy: "true keeps them as they were".into(),
        })
    }

    /// Applies `outcome` to `event` as the options say. Returns `false` when
    /// the event is to be dropped (a failure with `keep_source_on_fail` off).
    ///
    /// The values of a parsed outcome are relative to the value of the
    /// source field, as the parsers return them.
    pub fn apply(&self, event: &mut Event, outcome: Outcome, stats: &mut ParserStats) -> bool {
        self.apply_inner(event, outcome, stats, false)
    }

    fn apply_inner(
        &self,
        event: &mut Event,
        outcome: Outcome,
        stats: &mut ParserStats,
        distinct: bool,
    ) -> bool {
        stats.processed += 1;
        match outcome {
            Outcome::NoSource => true,
            Outcome::Parsed(mut fields) => {
                let remove = !self.keep_source_on_success || self.renamed_source_key.is_some();
                let (base, source) = match event.anchor(&self.source_key, remove) {
                    Some((base, source)) => (base, Some(source)),
                    None => (Base::Owned(Bytes::new()), None),
                };
                for f in &mut fields {
                    f.value = std::mem::take(&mut f.value).rebase(&base);
                }
                if remove {
                    event.remove_field(&self.source_key);
                }
                if let (true, Some(src), Some(new)) = (
                    self.keep_source_on_success,
                    source,
                    &self.renamed_source_key,
                ) {
                    if &**new == CONTENT {
                        event.content = src.to_bytes(event.retained());
                    } else {
                        event.set_value(FieldKey::from(new), src);
                    }
                }
                if distinct && event.fields.is_empty() {
                    event.fields = fields;
                } else {
                    for f in fields {
                        if &*f.key == CONTENT && f.value.is_empty() {
                            // An empty `content` would read as "removed":
                            // kept as an empty field instead, as
                            // LoongCollector keeps the key.
                            event.content = Bytes::new();
                            event.fields.retain(|g| &*g.key != CONTENT);
                            event.fields.push(f);
                        } else if &*f.key == CONTENT {
                            event.content = f.value.to_bytes(event.retained());
                        } else {
                            event.set_value(f.key, f.value);
                        }
                    }
                }
                true
            }
            Outcome::Failed => {
                stats.failed += 1;
                let source = event.field_value(&self.source_key);
                if self.copying_raw_log {
                    if let Some(src) = &source {
                        event.set_value(FieldKey::from_static(&RAW_LOG), src.clone());
                    }
                }
                if !self.keep_source_on_fail {
                    stats.dropped += 1;
                    return false;
                }
                if let (Some(src), Some(new)) = (source, &self.renamed_source_key) {
                    event.remove_field(&self.source_key);
                    if &**new == CONTENT {
                        event.content = src.to_bytes(event.retained());
                    } else {
                        event.set_value(FieldKey::from(new), src);
                    }
                }
                true
            }
        }
    }
}

impl SourceOptions {
    /// Whether fields named `keys` are pairwise distinct and none is the raw
    /// line, the renamed source or `__raw_log__`: then their outcomes may go
    /// through [`SourceOptions::apply_distinct`].
    pub fn keys_are_distinct<'a>(&self, keys: impl IntoIterator<Item = &'a str>) -> bool {
        let mut seen = std::collections::HashSet::new();
        keys.into_iter().all(|k| {
            seen.insert(k)
                && k != CONTENT
                && k != RAW_LOG
                && self.renamed_source_key.as_deref() != Some(k)
        })
    }

    /// [`SourceOptions::apply`] for an outcome whose field names are
    /// pairwise distinct and none is `content`: on a raw event (no fields
    /// yet) the list is handed over whole instead of set one field at a
    /// time, each a search for an earlier value. The event comes out the same.
    pub fn apply_distinct(
        &self,
        event: &mut Event,
        outcome: Outcome,
        stats: &mut ParserStats,
    ) -> bool {
        self.apply_inner(event, outcome, stats, true)
    }
}

/// A batch of `events` from a dummy source with a detached token, for the
/// processors' tests.
#[cfg(test)]
pub(crate) fn test_batch(events: Vec<Event>) -> crate::EventBatch {
    crate::EventBatch {
        source: std::sync::Arc::new(crate::SourceTags {
            path: "/x.log".into(),
            dev: 0,
            inode: 0,
            config: std::sync::Arc::from("t"),
        }),
        events,
        bytes: 0,
        ack: crate::AckToken::detached(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Timestamp;

    fn ev(s: &'static str) -> Event {
        Event::line(Bytes::from_static(s.as_bytes()), 0, Timestamp::default())
    }

    fn f(k: &str, v: &'static str) -> Field {
        Field {
            key: FieldKey::interned(k),
            value: FieldValue::from(Bytes::from_static(v.as_bytes())),
        }
    }

    #[test]
    fn stats_read_as_words() {
        let s = ParserStats {
            processed: 1000,
            failed: 3,
            dropped: 997,
        };
        assert_eq!(s.to_string(), "1000 events, 3 failed to parse, 997 dropped");
        assert_eq!(ParserStats::default().to_string(), "0 events");
        let one = ParserStats {
            processed: 1,
            ..Default::default()
        };
        assert_eq!(one.to_string(), "1 event");
    }

    #[test]
    fn a_parser_that_keeps_failures_gives_no_drop_reason() {
        assert_eq!(SourceOptions::default().drop_reason(), None);
        let o = SourceOptions {
            keep_source_on_fail: false,
            ..Default::default()
        };
        let r = o.drop_reason().unwrap();
        assert_eq!(r.option, "KeepingSourceWhenParseFail");
        assert!(r.to_string().contains("\"content\" did not parse"), "{r}");
    }

    #[test]
    fn success_removes_source_by_default() {
        let mut e = ev("a b");
        let mut st = ParserStats::default();
        assert!(SourceOptions::default().apply(
            &mut e,
            Outcome::Parsed(vec![f("x", "a")]),
            &mut st
        ));
        assert_eq!(e.field(CONTENT), None);
        assert_eq!(e.field("x").unwrap(), b"a");
    }

    #[test]
    fn failure_keeps_source_by_default_and_counts() {
        let mut e = ev("junk");
        let mut st = ParserStats::default();
        assert!(SourceOptions::default().apply(&mut e, Outcome::Failed, &mut st));
        assert_eq!(e.field(CONTENT).unwrap(), b"junk");
        assert_eq!(st.failed, 1);
    }

    #[test]
    fn failure_with_keep_off_drops_and_raw_log_renames() {
        let o = SourceOptions {
            keep_source_on_fail: false,
            ..Default::default()
        };
        let mut st = ParserStats::default();
        assert!(!o.apply(&mut ev("junk"), Outcome::Failed, &mut st));
        assert_eq!(st.dropped, 1);

        let o = SourceOptions {
            renamed_source_key: Some(Arc::from("raw")),
            copying_raw_log: true,
            ..Default::default()
        };
        let mut e = ev("junk");
        assert!(o.apply(&mut e, Outcome::Failed, &mut st));
        assert_eq!(e.field("raw").unwrap(), b"junk");
        assert_eq!(e.field(RAW_LOG).unwrap(), b"junk");
        assert_eq!(e.field(CONTENT), None);
    }

    #[test]
    fn keep_on_success_with_rename() {
        let o = SourceOptions {
            keep_source_on_success: true,
            renamed_source_key: Some(Arc::from("src")),
            ..Default::default()
        };
        let mut e = ev("a");
        o.apply(
            &mut e,
            Outcome::Parsed(vec![f("k", "a")]),
            &mut ParserStats::default(),
        );
        assert_eq!(e.field("src").unwrap(), b"a");
        assert_eq!(e.field(CONTENT), None);
    }
    #[test]
    fn append_shortcut_equals_apply() {
        let f = |k: &str, v: &'static str| Field {
            key: FieldKey::interned(k),
            value: FieldValue::from(Bytes::from_static(v.as_bytes())),
        };
        for (keep, renamed, fail_keep) in [
            (false, None, true),
            (true, None, true),
            (true, Some("raw"), true),
            (false, Some("raw"), false),
        ] {
            let o = SourceOptions {
                keep_source_on_success: keep,
                renamed_source_key: renamed.map(Arc::from),
                keep_source_on_fail: fail_keep,
                ..Default::default()
            };
            assert!(o.keys_are_distinct(["a", "b"]));
            let (mut e1, mut e2) = (ev("a b"), ev("a b"));
            let (mut s1, mut s2) = (ParserStats::default(), ParserStats::default());
            let fields = vec![f("a", "a"), f("b", "b")];
            let r1 = o.apply(&mut e1, Outcome::Parsed(fields.clone()), &mut s1);
            let r2 = o.apply_distinct(&mut e2, Outcome::Parsed(fields), &mut s2);
            assert_eq!((r1, e1, s1), (r2, e2, s2));
        }
        let o = SourceOptions::default();
        assert!(!o.keys_are_distinct(["a", "a"]));
        assert!(!o.keys_are_distinct(["a", CONTENT]));
        assert!(!o.keys_are_distinct([RAW_LOG]));
    }

    #[test]
    fn a_parsed_empty_content_is_kept_as_an_empty_field() {
        // Keys name the source; its group is empty: the key stays, empty.
        let mut re = regex::RegexParser::new(regex::RegexOptions::new(
            r"(\w+):(\d*)",
            vec!["level".into(), CONTENT.into()],
        ))
        .unwrap();
        let mut e = ev("INFO:");
        assert!(re.parse_event(&mut e));
        let got: Vec<_> = e.contents().collect();
        assert_eq!(got, vec![("level", &b"INFO"[..]), (CONTENT, &b""[..])]);
        let mut e = ev("INFO:42");
        assert!(re.parse_event(&mut e));
        let got: Vec<_> = e.contents().collect();
        assert_eq!(got, vec![("level", &b"INFO"[..]), (CONTENT, &b"42"[..])]);
    }

    #[test]
    fn parsed_values_are_spans_of_the_retained_line() {
        let mut p = delimiter::DelimiterParser::new(delimiter::DelimiterOptions::new(
            ",",
            vec!["a".into(), "b".into()],
        ))
        .unwrap();
        let line = Bytes::from(b"1,22".to_vec());
        let mut e = Event::line(line.clone(), 0, Timestamp::default());
        assert!(p.parse_event(&mut e));
        assert!(e.content.is_empty(), "content consumed");
        assert_eq!(e.retained().as_ptr(), line.as_ptr(), "moved, not copied");
        assert!(e.fields.iter().all(|f| f.value.as_span().is_some()));
        let got: Vec<_> = e.contents().collect();
        assert_eq!(got, vec![("a", &b"1"[..]), ("b", &b"22"[..])]);
        drop(line);
        // The event alone keeps its bytes alive.
        assert_eq!(e.field("b"), Some(&b"22"[..]));
    }

    #[test]
    fn a_parser_on_a_parsed_field_gives_spans_in_the_event() {
        // regex on the line, then the delimiter on one of its fields.
        let mut re = regex::RegexParser::new(regex::RegexOptions::new(
            r"(\S+) (.*)",
            vec!["level".into(), "rest".into()],
        ))
        .unwrap();
        let mut o = delimiter::DelimiterOptions::new(",", vec!["x".into(), "y".into()]);
        o.source.source_key = Arc::from("rest");
        let mut dl = delimiter::DelimiterParser::new(o).unwrap();
        let mut e = ev("INFO p,q");
        assert!(re.parse_event(&mut e));
        assert!(dl.parse_event(&mut e));
        let got: Vec<_> = e.contents().collect();
        assert_eq!(
            got,
            vec![("level", &b"INFO"[..]), ("x", &b"p"[..]), ("y", &b"q"[..])]
        );
        assert!(e.fields.iter().all(|f| f.value.as_span().is_some()));
    }

    #[test]
    fn a_new_content_next_to_spans_is_parsed_into_copies() {
        // Fields span the first line; `content` is then replaced by other
        // bytes and parsed while keeping the source: the old spans must
        // stay right, the new values are slices of the new content.
        let mut re = regex::RegexParser::new(regex::RegexOptions::new(
            r"(\S+) (\S+)",
            vec!["a".into(), "b".into()],
        ))
        .unwrap();
        let mut e = ev("1 2");
        assert!(re.parse_event(&mut e));
        e.set_field(CONTENT, Bytes::from_static(b"x y"));
        let mut o = regex::RegexOptions::new(r"(\S+) (\S+)", vec!["c".into(), "d".into()]);
        o.source.keep_source_on_success = true;
        let mut re2 = regex::RegexParser::new(o).unwrap();
        assert!(re2.parse_event(&mut e));
        let got: Vec<_> = e.contents().collect();
        assert_eq!(
            got,
            vec![
                ("a", &b"1"[..]),
                ("b", &b"2"[..]),
                ("c", &b"x"[..]),
                ("d", &b"y"[..]),
                (CONTENT, &b"x y"[..]),
            ]
        );
    }
}
