//! `processor_split_log_regex`: LoongCollector's Go multi-line splitter.
//!
//! The field `SplitKey` of an event holding several lines is cut before
//! each line (after the first) that `SplitRegex` matches whole (Go's
//! leftmost-first match spanning the line): each piece becomes an event of
//! its own, every piece but the last keeping its final `\n`, as in Go. With
//! `PreserveOthers` the other fields are copied into each piece; without it
//! they are dropped. An event without `SplitKey` is kept only with
//! `PreserveOthers` (a warning with `NoKeyError`); an event whose
//! `SplitKey` is empty gives no event (both as in Go, counted as drops).
//!
//! `SplitRegex` (default `.*`) is a Go regular expression
//! ([`Dialect::Go`](crate::process::dialect::Dialect::Go)); `.` does not
//! match `\n`, which no line contains anyway.
//!
//! The agent's file input delivers one line per event unless `Multiline` is
//! configured; LoongCollector's file input hands this processor whole read
//! chunks instead. The config loader bridges the two (see the README): as
//! the first processor on `content`, with no `Multiline` on the input, the
//! input is given `Multiline.StartPattern` = `SplitRegex`, so that the
//! lines of one record reach this processor together.

use std::sync::Arc;

use bytes::Bytes;
use regex_automata::{meta, Input};

use crate::event::{Event, FieldKey};
use crate::process::regex_go::{compile_go, worth_logging};
use crate::process::{DropReason, ParserStats, CONTENT};
use crate::{EventBatch, Parser};

/// The LoongCollector type string.
pub const NAME: &str = "processor_split_log_regex";

/// Options of `processor_split_log_regex`.
///
/// Non-exhaustive: start from [`SplitLogRegexOptions::default`] and set
/// fields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SplitLogRegexOptions {
    /// `SplitRegex` (default `.*`): the first line of a record.
    pub split_regex: String,
    /// `SplitKey` (default `content`; empty means `content`).
    pub split_key: String,
    /// `PreserveOthers` (default false): copy the other fields into each piece.
    pub preserve_others: bool,
    /// `NoKeyError` (default false): warn on events without `SplitKey`.
    pub no_key_error: bool,
}

impl Default for SplitLogRegexOptions {
    fn default() -> Self {
        SplitLogRegexOptions {
            split_regex: ".*".to_owned(),
            split_key: CONTENT.to_owned(),
            preserve_others: false,
            no_key_error: false,
        }
    }
}

/// Why a `processor_split_log_regex` could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SplitLogRegexError {
    /// `SplitRegex` does not compile.
    #[error("SplitRegex: invalid pattern at offset {offset}: {message}")]
    InvalidPattern {
        /// Byte offset of the problem.
        offset: usize,
        /// What is wrong.
        message: String,
    },
}

/// Whether the leftmost-first match of `re` in `line` spans all of it.
fn full_match(re: &meta::Regex, line: &[u8]) -> bool {
    re.find(Input::new(line))
        .is_some_and(|m| m.start() == 0 && m.end() == line.len())
}

/// Where `value` is cut: the byte ranges of its pieces, in order (Go's
/// algorithm: a piece ends before each line, other than the first, that
/// `re` matches whole; the last line counts even without a final `\n`).
pub fn split_ranges(re: &meta::Regex, value: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut line) = (0, 0);
    for i in memchr::memchr_iter(b'\n', value) {
        if line != 0 && full_match(re, &value[line..i]) {
            out.push(start..line);
            start = line;
        }
        line = i + 1;
    }
    if line != 0 && line < value.len() && full_match(re, &value[line..]) {
        out.push(start..line);
        start = line;
    }
    if start < value.len() {
        out.push(start..value.len());
    }
    out
}

/// The `processor_split_log_regex` step.
#[derive(Debug)]
pub struct SplitLogRegexParser {
    options: SplitLogRegexOptions,
    key: Arc<str>,
    field_key: FieldKey,
    re: meta::Regex,
    stats: ParserStats,
    no_key: u64,
}

impl SplitLogRegexParser {
    /// Compiles the options.
    pub fn new(options: SplitLogRegexOptions) -> Result<Self, SplitLogRegexError> {
        let re = compile_go(&options.split_regex, false).map_err(|e| {
            SplitLogRegexError::InvalidPattern {
                offset: e.offset,
                message: e.message,
            }
        })?;
        let key = if options.split_key.is_empty() {
            CONTENT
        } else {
            options.split_key.as_str()
        };
        Ok(SplitLogRegexParser {
            key: Arc::from(key),
            field_key: FieldKey::interned(key),
            re,
            options,
            stats: ParserStats::default(),
            no_key: 0,
        })
    }

    /// Splits `event` into the events it gives, appended to `out`.
    pub fn split_event(&mut self, mut event: Event, out: &mut Vec<Event>) {
        self.stats.processed += 1;
        let preserve = self.options.preserve_others;
        let Some(value) = event.field_value(&self.key) else {
            self.no_key += 1;
            if self.options.no_key_error && worth_logging(self.no_key) {
                tracing::warn!(
                    "{NAME}: {} event(s) without the field {:?} (LOG_REGEX_FIND_ALARM)",
                    self.no_key,
                    &*self.key
                );
            }
            if preserve {
                out.push(event);
            } else {
                self.stats.dropped += 1;
            }
            return;
        };
        let value: Bytes = value.to_bytes(event.retained());
        let ranges = split_ranges(&self.re, &value);
        if ranges.is_empty() {
            self.stats.dropped += 1;
            return;
        }
        let is_content = &*self.key == CONTENT;
        // The event the pieces are made from: the other fields (or none).
        if preserve {
            event.remove_field(&self.key);
        }
        for r in ranges {
            let piece = value.slice(r.clone());
            let mut e = if preserve {
                event.clone()
            } else {
                Event::line(Bytes::new(), event.offset, event.time)
            };
            if is_content {
                e.offset = event.offset + r.start as u64;
                e.content = piece;
            } else {
                e.set_field(self.field_key.clone(), piece);
            }
            out.push(e);
        }
    }
}

impl Parser for SplitLogRegexParser {
    fn name(&self) -> &str {
        NAME
    }

    fn drop_kind(&self) -> crate::process::DropKind {
        crate::process::DropKind::Split
    }

    fn process(&mut self, batch: &mut EventBatch) {
        let events = std::mem::take(&mut batch.events);
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            self.split_event(e, &mut out);
        }
        batch.events = out;
    }

    fn stats(&self) -> ParserStats {
        self.stats
    }

    fn drop_reason(&self) -> Option<DropReason> {
        Some(DropReason {
            reason: format!(
                "their field {:?} was empty{}",
                &*self.key,
                if self.options.preserve_others {
                    ""
                } else {
                    " or missing"
                }
            ),
            option: "PreserveOthers",
            remedy: "true keeps events without the field".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Timestamp;
    use proptest::prelude::*;

    fn parser(re: &str, preserve: bool) -> SplitLogRegexParser {
        SplitLogRegexParser::new(SplitLogRegexOptions {
            split_regex: re.into(),
            preserve_others: preserve,
            ..Default::default()
        })
        .unwrap()
    }

    fn contents(events: &[Event]) -> Vec<Vec<(String, String)>> {
        events
            .iter()
            .map(|e| {
                e.contents()
                    .map(|(k, v)| (k.to_owned(), String::from_utf8_lossy(v).into_owned()))
                    .collect()
            })
            .collect()
    }

    fn split(p: &mut SplitLogRegexParser, e: Event) -> Vec<Event> {
        let mut out = Vec::new();
        p.split_event(e, &mut out);
        out
    }

    #[test]
    fn documented_example() {
        // docs/cn/plugins/processor/extended/processor-split-log-regex.md
        let mut p = parser(r"\[\d+-\d+-\d+\s\d+:\d+:\d+]\s.*", true);
        let text =
            "[2022-03-03 18:00:00] xxx1\nyyyyy\nzzzzzz\n[2022-03-03 18:00:01] xxx2\nyyyyy\nzzzzzz";
        let out = split(
            &mut p,
            Event::line(Bytes::from(text), 100, Timestamp::default()),
        );
        assert_eq!(
            contents(&out),
            vec![
                vec![(
                    "content".to_string(),
                    "[2022-03-03 18:00:00] xxx1\nyyyyy\nzzzzzz\n".to_string()
                )],
                vec![(
                    "content".to_string(),
                    "[2022-03-03 18:00:01] xxx2\nyyyyy\nzzzzzz".to_string()
                )],
            ]
        );
        assert_eq!(out[1].offset, 100 + 40);
    }

    #[test]
    fn other_fields_and_missing_or_empty_keys() {
        let mut e = Event::line(Bytes::from_static(b"A 1\nx\nA 2"), 0, Timestamp::default());
        e.set_field("host", Bytes::from_static(b"h"));
        let out = split(&mut parser(r"A \d", true), e.clone());
        assert_eq!(
            contents(&out),
            vec![
                vec![
                    ("host".into(), "h".into()),
                    ("content".into(), "A 1\nx\n".into())
                ],
                vec![
                    ("host".into(), "h".into()),
                    ("content".into(), "A 2".into())
                ],
            ]
        );
        let out = split(&mut parser(r"A \d", false), e);
        assert_eq!(
            contents(&out)[1],
            vec![("content".to_string(), "A 2".to_string())]
        );
        // No such field: kept with PreserveOthers, else dropped.
        let mut p = SplitLogRegexParser::new(SplitLogRegexOptions {
            split_key: "msg".into(),
            ..Default::default()
        })
        .unwrap();
        assert!(split(
            &mut p,
            Event::line(Bytes::from_static(b"x"), 0, Timestamp::default())
        )
        .is_empty());
        assert_eq!(p.stats().dropped, 1);
        // An empty content gives nothing, as in Go.
        let mut p = parser(".*", true);
        assert!(split(&mut p, Event::line(Bytes::new(), 0, Timestamp::default())).is_empty());
        assert!(p.drop_reason().is_some());
    }

    #[test]
    fn invalid_utf8_lines_are_searched_without_panic() {
        // Found by fuzzing: an unanchored search over invalid UTF-8.
        let mut p = parser(".*", false);
        let out = split(
            &mut p,
            Event::line(
                Bytes::from_static(b"\n\xba\n\xff x"),
                0,
                Timestamp::default(),
            ),
        );
        let joined: Vec<u8> = out.iter().flat_map(|e| e.content.to_vec()).collect();
        assert_eq!(joined, b"\n\xba\n\xff x");
    }

    #[test]
    fn split_key_other_than_content() {
        let mut p = SplitLogRegexParser::new(SplitLogRegexOptions {
            split_key: "msg".into(),
            split_regex: r"\d.*".into(),
            preserve_others: true,
            ..Default::default()
        })
        .unwrap();
        let mut e = Event::line(Bytes::new(), 0, Timestamp::default());
        e.set_field("a", Bytes::from_static(b"1"));
        e.set_field("msg", Bytes::from_static(b"1 x\ny\n2 z"));
        let out = split(&mut p, e);
        assert_eq!(
            contents(&out),
            vec![
                vec![("a".into(), "1".into()), ("msg".into(), "1 x\ny\n".into())],
                vec![("a".into(), "1".into()), ("msg".into(), "2 z".into())],
            ]
        );
    }

    proptest! {
        /// Against a naive reference: split into lines, start a piece at
        /// each matching line but the first; the pieces put back together
        /// are the value.
        #[test]
        fn agrees_with_a_naive_split(v in "[ab\n]{0,16}") {
            let re = compile_go("a.*", false).unwrap();
            let got = split_ranges(&re, v.as_bytes());
            let mut want: Vec<String> = Vec::new();
            let mut cur = String::new();
            let lines: Vec<&str> = v.split_inclusive('\n').collect();
            for (i, l) in lines.iter().enumerate() {
                let bare = l.strip_suffix('\n').unwrap_or(l);
                if i > 0 && bare.starts_with('a') && !cur.is_empty() && !(bare.is_empty()) {
                    want.push(std::mem::take(&mut cur));
                }
                cur.push_str(l);
            }
            if !cur.is_empty() {
                want.push(cur);
            }
            let got: Vec<String> = got.iter().map(|r| v[r.clone()].to_string()).collect();
            prop_assert_eq!(got.concat(), v.clone());
            prop_assert_eq!(got, want);
        }
    }
}
