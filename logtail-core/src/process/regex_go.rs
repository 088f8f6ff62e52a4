//! `processor_regex`: LoongCollector's Go regex processor (RE2 semantics).
//!
//! Unlike `processor_parse_regex_native` (boost, whole-field match), this
//! processor:
//! - **searches** the field (Go's `FindStringSubmatchIndex`, leftmost-first)
//!   and with `FullMatch: true` accepts the first match only if it spans
//!   the whole field; with `FullMatch: false` (Go's default) a match
//!   anywhere extracts;
//! - compiles `(?s)` + `Regex` in Go's syntax ([`Dialect::Go`]): `.`
//!   matches `\n`, `^`/`$` are the ends of the field, `\d`/`\w`/`\s` are
//!   ASCII;
//! - adds one field per key whose group took part in the match (a group
//!   that did not take part adds nothing; an empty one adds an empty value);
//! - on more `Keys` than capture groups, fails **each event** (an error per
//!   event, as in Go), not the config;
//! - removes the source field unless `KeepSource`, or `KeepSourceIfParseError`
//!   (default true) on a failure. A failure never drops the event.
//!
//! `NoMatchError` (default true) and `NoKeyError` (default false) log a
//! warning: at the 1st, 2nd, 4th, 8th… occurrence (never the content, which
//! may hold secrets); failures are counted in [`ParserStats::failed`].

use std::sync::Arc;

use regex_automata::meta;
use regex_automata::util::primitives::NonMaxUsize;
use regex_automata::Input;

use crate::event::{Event, Field, FieldKey, FieldValue};
use crate::process::dialect::Dialect;
use crate::process::regex::{build_meta, PatternError, Syntax};
use crate::process::{Outcome, ParserStats, SourceOptions, CONTENT};
use crate::{EventBatch, Parser};

/// The LoongCollector type string.
pub const NAME: &str = "processor_regex";

/// Compiles a pattern of a Go processor as Go's `regexp` reads it: `.` and
/// negated classes match whole UTF-8 characters, `\d`, `\w`, `\s`, `\b`
/// are ASCII (see [`Syntax::parse`]). `dot_nl`: `.` matches `\n` (`(?s)`).
pub(crate) fn compile_go(pattern: &str, dot_nl: bool) -> Result<meta::Regex, PatternError> {
    let mut s = Syntax::new(Dialect::Go);
    s.dot_nl = dot_nl;
    let hir = s.parse(pattern)?;
    build_meta(&hir).map_err(|message| PatternError { offset: 0, message })
}

/// Whether `n` (a count, from 1) is one to log: 1, 2, 4, 8…
pub(crate) fn worth_logging(n: u64) -> bool {
    n.is_power_of_two()
}

/// Options of `processor_regex`.
///
/// Non-exhaustive: build it with [`GoRegexOptions::new`] and set fields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GoRegexOptions {
    /// `Regex` (Go syntax; compiled as `(?s)` + it).
    pub regex: String,
    /// `Keys`: one name per capture group, in order.
    pub keys: Vec<String>,
    /// `SourceKey` (default `content`).
    pub source_key: String,
    /// `FullMatch` (default false, as the Go plugin's code: its documentation
    /// says true): the first match must span the whole field.
    pub full_match: bool,
    /// `KeepSource` (default false): keep the source field after a parse.
    pub keep_source: bool,
    /// `KeepSourceIfParseError` (default true): keep it after a failure.
    pub keep_source_if_parse_error: bool,
    /// `NoKeyError` (default false): warn when an event lacks the field.
    pub no_key_error: bool,
    /// `NoMatchError` (default true): warn when the field does not match.
    pub no_match_error: bool,
}

impl GoRegexOptions {
    /// The required `Regex` and `Keys` with the Go plugin's defaults.
    pub fn new(regex: impl Into<String>, keys: Vec<String>) -> Self {
        GoRegexOptions {
            regex: regex.into(),
            keys,
            source_key: CONTENT.to_owned(),
            full_match: false,
            keep_source: false,
            keep_source_if_parse_error: true,
            no_key_error: false,
            no_match_error: true,
        }
    }
}

/// Why a `processor_regex` could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GoRegexError {
    /// `Regex` does not compile.
    #[error("Regex: invalid pattern at offset {offset}: {message}")]
    InvalidPattern {
        /// Byte offset of the problem.
        offset: usize,
        /// What is wrong.
        message: String,
    },
    /// `Keys` is empty (the Go plugin refuses it too).
    #[error("Keys: at least one key is required")]
    NoKeys,
}

/// The `processor_regex` step.
#[derive(Debug)]
pub struct GoRegexParser {
    options: GoRegexOptions,
    keys: Vec<FieldKey>,
    /// How the source is removed or kept after a parse.
    source: SourceOptions,
    re: meta::Regex,
    cache: meta::Cache,
    slots: Vec<Option<NonMaxUsize>>,
    stats: ParserStats,
    no_key: u64,
}

impl GoRegexParser {
    /// Compiles the options.
    pub fn new(options: GoRegexOptions) -> Result<Self, GoRegexError> {
        if options.keys.is_empty() {
            return Err(GoRegexError::NoKeys);
        }
        let re = compile_go(&options.regex, true).map_err(|e| GoRegexError::InvalidPattern {
            offset: e.offset,
            message: e.message,
        })?;
        let source = SourceOptions {
            source_key: Arc::from(options.source_key.as_str()),
            keep_source_on_success: options.keep_source,
            ..SourceOptions::default()
        };
        Ok(GoRegexParser {
            keys: options.keys.iter().map(|k| FieldKey::interned(k)).collect(),
            source,
            cache: re.create_cache(),
            slots: vec![None; re.group_info().slot_len()],
            re,
            options,
            stats: ParserStats::default(),
            no_key: 0,
        })
    }

    /// Parses one source value: the fields of the participating groups
    /// (values relative to `source`), or [`Outcome::Failed`].
    pub fn parse(&mut self, source: &[u8]) -> Outcome {
        self.slots.fill(None);
        let found =
            self.re
                .search_slots_with(&mut self.cache, &Input::new(source), &mut self.slots);
        let span = |i: usize, slots: &[Option<NonMaxUsize>]| match (
            slots.get(2 * i).copied().flatten(),
            slots.get(2 * i + 1).copied().flatten(),
        ) {
            (Some(s), Some(e)) if s.get() <= e.get() && e.get() <= source.len() => {
                Some((s.get(), e.get()))
            }
            _ => None,
        };
        let Some(whole) = found.and_then(|_| span(0, &self.slots)) else {
            return Outcome::Failed;
        };
        if self.options.full_match && whole != (0, source.len()) {
            return Outcome::Failed;
        }
        // More keys than groups: a failure of this event, as in Go.
        if self.re.captures_len() - 1 < self.keys.len() {
            return Outcome::Failed;
        }
        let fields = self
            .keys
            .iter()
            .enumerate()
            .filter_map(|(i, key)| {
                span(i + 1, &self.slots).map(|(s, e)| Field {
                    key: key.clone(),
                    value: FieldValue::span(s, e),
                })
            })
            .collect();
        Outcome::Parsed(fields)
    }

    /// Parses one event in place (never drops it).
    pub fn parse_event(&mut self, event: &mut Event) {
        let outcome = match event.field(&self.source.source_key) {
            None => {
                self.no_key += 1;
                if self.options.no_key_error && worth_logging(self.no_key) {
                    tracing::warn!(
                        "{NAME}: {} event(s) without the field {:?} (REGEX_FIND_ALARM)",
                        self.no_key,
                        &*self.source.source_key
                    );
                }
                Outcome::NoSource
            }
            Some(src) => self.parse(src),
        };
        if outcome == Outcome::Failed {
            self.stats.processed += 1;
            self.stats.failed += 1;
            if self.options.no_match_error && worth_logging(self.stats.failed) {
                tracing::warn!(
                    "{NAME}: {} event(s) whose field {:?} did not match Regex (REGEX_UNMATCHED_ALARM)",
                    self.stats.failed,
                    &*self.source.source_key
                );
            }
            if !self.options.keep_source && !self.options.keep_source_if_parse_error {
                event.remove_field(&self.source.source_key);
            }
            return;
        }
        self.source.apply(event, outcome, &mut self.stats);
    }
}

impl Parser for GoRegexParser {
    fn name(&self) -> &str {
        NAME
    }

    fn failure_kind(&self) -> crate::process::FailureKind {
        crate::process::FailureKind::RegexMatch
    }

    fn process(&mut self, batch: &mut EventBatch) {
        for e in &mut batch.events {
            self.parse_event(e);
        }
    }

    fn stats(&self) -> ParserStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Timestamp;
    use bytes::Bytes;
    use proptest::prelude::*;

    fn keys(k: &[&str]) -> Vec<String> {
        k.iter().map(|s| s.to_string()).collect()
    }

    fn ev(s: &str) -> Event {
        Event::line(
            Bytes::copy_from_slice(s.as_bytes()),
            0,
            Timestamp::default(),
        )
    }

    fn run(o: GoRegexOptions, line: &str) -> (Vec<(String, String)>, ParserStats) {
        let mut p = GoRegexParser::new(o).unwrap();
        let mut e = ev(line);
        p.parse_event(&mut e);
        let got = e
            .contents()
            .map(|(k, v)| (k.to_owned(), String::from_utf8_lossy(v).into_owned()))
            .collect();
        (got, p.stats())
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn chinese_text_matches_whole_characters_with_ascii_perl_classes() {
        let (got, _) = run(GoRegexOptions::new("(.{2})", keys(&["a"])), "中文日志");
        assert_eq!(got, pairs(&[("a", "中文")]));
        let (got, _) = run(
            GoRegexOptions::new("([^,]{3}),(.)", keys(&["a", "b"])),
            "日志行,级",
        );
        assert_eq!(got, pairs(&[("a", "日志行"), ("b", "级")]));
        // \w, \d, \s stay ASCII, even beside a non-ASCII class.
        let (got, st) = run(GoRegexOptions::new(r"^(\w+)$", keys(&["a"])), "中");
        assert_eq!((got, st.failed), (pairs(&[("content", "中")]), 1));
        let (got, _) = run(
            GoRegexOptions::new(r"([中\w]+) (\d+)", keys(&["a", "b"])),
            "中ab 12٣",
        );
        assert_eq!(got, pairs(&[("a", "中ab"), ("b", "12")]));
        let (got, _) = run(
            GoRegexOptions::new(r"(\W+)(\w+)", keys(&["a", "b"])),
            "日志x1",
        );
        assert_eq!(got, pairs(&[("a", "日志"), ("b", "x1")]));
        let (got, _) = run(
            GoRegexOptions::new(r"(\S+)\s(\S+)", keys(&["a", "b"])),
            "日志\u{3000}x y",
        );
        assert_eq!(got, pairs(&[("a", "日志\u{3000}x"), ("b", "y")]));
        // \b is an ASCII word boundary: none between 中 and a.
        let (got, st) = run(GoRegexOptions::new(r"\b(a)", keys(&["a"])), "中a");
        assert_eq!((got, st.failed), (pairs(&[("a", "a")]), 0));
        let (_, st) = run(GoRegexOptions::new(r"é\b(a)", keys(&["a"])), "éa");
        assert_eq!(st.failed, 0);
        // The byte alternative, when nothing else matches (README: a
        // difference; Go does not match this).
        let (_, st) = run(GoRegexOptions::new(r"^(.{3})$", keys(&["a"])), "中");
        assert_eq!(st.failed, 0);
        // Invalid UTF-8 still matches `.` (one byte, Go's U+FFFD).
        let mut p = GoRegexParser::new(GoRegexOptions::new("^(.*)$", keys(&["a"]))).unwrap();
        let mut e = Event::line(
            Bytes::from_static(b"bad \xff\xe6\x97 end"),
            0,
            Timestamp::default(),
        );
        p.parse_event(&mut e);
        assert_eq!(e.field("a"), Some(&b"bad \xff\xe6\x97 end"[..]));
    }

    #[test]
    fn documented_example() {
        // docs/cn/plugins/processor/extended/processor-regex.md, as written
        // in its YAML (a plain scalar: backslashes are literal).
        let re = r#"([\d\.]+) \S+ \S+ \[(\S+) \S+\] \"(\w+) ([^\\"]*)\" ([\d\.]+) (\d+) (\d+) (\d+|-) \"([^\\"]*)\" \"([^\\"]*)\""#;
        let k = [
            "ip",
            "time",
            "method",
            "url",
            "request_time",
            "request_length",
            "status",
            "length",
            "ref_url",
            "browser",
        ];
        let (got, st) = run(
            GoRegexOptions::new(re, keys(&k)),
            r#"127.0.0.1 - - [10/Aug/2017:14:57:51 +0800] "POST /PutData?Category=YunOsAccountOpLog" 0.024 18204 200 37 "-" "aliyun-sdk-java""#,
        );
        assert_eq!(
            got,
            pairs(&[
                ("ip", "127.0.0.1"),
                ("time", "10/Aug/2017:14:57:51"),
                ("method", "POST"),
                ("url", "/PutData?Category=YunOsAccountOpLog"),
                ("request_time", "0.024"),
                ("request_length", "18204"),
                ("status", "200"),
                ("length", "37"),
                ("ref_url", "-"),
                ("browser", "aliyun-sdk-java"),
            ])
        );
        assert_eq!((st.processed, st.failed), (1, 0));
    }

    #[test]
    fn full_match_and_partial_match() {
        let o = GoRegexOptions::new(r"(\d+)", keys(&["n"]));
        // Go's default: a match inside the field extracts.
        assert_eq!(run(o.clone(), "ab 12 cd").0, pairs(&[("n", "12")]));
        let mut full = o;
        full.full_match = true;
        let (got, st) = run(full.clone(), "ab 12 cd");
        assert_eq!(got, pairs(&[("content", "ab 12 cd")]));
        assert_eq!(st.failed, 1);
        assert_eq!(run(full, "12").0, pairs(&[("n", "12")]));
        // Leftmost-first: `a|ab` takes "a", which is not the whole "ab".
        let mut o = GoRegexOptions::new(r"(a|ab)", keys(&["x"]));
        o.full_match = true;
        assert_eq!(run(o, "ab").1.failed, 1);
    }

    #[test]
    fn keep_source_options() {
        let mut o = GoRegexOptions::new(r"(\d+)", keys(&["n"]));
        o.keep_source = true;
        assert_eq!(
            run(o.clone(), "12").0,
            pairs(&[("n", "12"), ("content", "12")])
        );
        o.keep_source = false;
        o.keep_source_if_parse_error = false;
        // A failure removes the source but keeps the event.
        let mut p = GoRegexParser::new(o).unwrap();
        let mut b = crate::process::test_batch(vec![ev("x"), ev("7")]);
        p.process(&mut b);
        assert_eq!(b.events.len(), 2);
        // (An event left without fields ships an empty content.)
        assert_eq!(b.events[0].field(CONTENT).unwrap_or_default(), b"");
        assert_eq!(b.events[1].field("n"), Some(&b"7"[..]));
    }

    #[test]
    fn more_keys_than_groups_fails_each_event() {
        let (got, st) = run(GoRegexOptions::new(r"(\w+)", keys(&["a", "b"])), "x");
        assert_eq!(got, pairs(&[("content", "x")]));
        assert_eq!(st.failed, 1);
        assert_eq!(
            GoRegexParser::new(GoRegexOptions::new("x", vec![])).unwrap_err(),
            GoRegexError::NoKeys
        );
    }

    #[test]
    fn unmatched_groups_add_no_field_and_dot_matches_newline() {
        let o = GoRegexOptions::new(r"(\w+)(?:=(\d+))?(.*)", keys(&["k", "v", "rest"]));
        assert_eq!(run(o, "ab\ncd").0, pairs(&[("k", "ab"), ("rest", "\ncd")]));
    }

    #[test]
    fn missing_source_is_left_alone() {
        let mut o = GoRegexOptions::new(r"(\w+)", keys(&["a"]));
        o.source_key = "msg".into();
        o.no_key_error = true;
        let (got, st) = run(o, "x");
        assert_eq!(got, pairs(&[("content", "x")]));
        assert_eq!(st.failed, 0);
    }

    #[test]
    fn go_syntax_loads() {
        let (got, _) = run(
            GoRegexOptions::new(r"\[([^[]*)\] \Q{x}\E (\S+)", keys(&["a", "b"])),
            "[p q] {x} r",
        );
        assert_eq!(got, pairs(&[("a", "p q"), ("b", "r")]));
        let e = GoRegexParser::new(GoRegexOptions::new(r"(a)\1", keys(&["a"]))).unwrap_err();
        assert!(e.to_string().contains("back-reference"), "{e}");
    }

    const PATTERNS: &[&str] = &[
        r"(\w+) (\w+)",
        r"(\S+) - (\S+) \[([^\]]*)\] (.*)",
        r#"(\S*) "([^"]*)" (\d+)"#,
        r"(a|ab)(c|bcd)?(.*)",
        r"(\d+)",
        r"^(\w+)",
        r"(\w+)$",
        r"(x*)(y?)",
    ];

    proptest! {
        /// Against the `regex` crate's leftmost-first captures (the same
        /// semantics as Go's RE2), FullMatch on and off.
        #[test]
        fn agrees_with_a_leftmost_first_reference(
            pat in 0..PATTERNS.len(),
            full in any::<bool>(),
            line in "[ -~\n]{0,30}|[abcdxy\" \\-\\[\\]0-9]{0,20}",
        ) {
            let pattern = PATTERNS[pat];
            let reference = ::regex::bytes::Regex::new(&format!("(?s-u){pattern}")).unwrap();
            let n = reference.captures_len() - 1;
            let names: Vec<String> = (0..n).map(|i| format!("k{i}")).collect();
            let mut o = GoRegexOptions::new(pattern, names);
            o.full_match = full;
            let mut p = GoRegexParser::new(o).unwrap();
            let got = p.parse(line.as_bytes());
            let want = reference
                .captures(line.as_bytes())
                .filter(|c| !full || c.get(0).is_some_and(|m| m.start() == 0 && m.end() == line.len()));
            match want {
                None => prop_assert_eq!(got, Outcome::Failed),
                Some(c) => {
                    let Outcome::Parsed(f) = got else {
                        return Err(TestCaseError::fail("reference matched, parser did not"));
                    };
                    let want: Vec<(String, &[u8])> = (0..n)
                        .filter_map(|i| c.get(i + 1).map(|m| (format!("k{i}"), m.as_bytes())))
                        .collect();
                    let got: Vec<(String, &[u8])> = f
                        .iter()
                        .map(|f| (f.key.as_str().to_owned(), f.value.resolve(line.as_bytes())))
                        .collect();
                    prop_assert_eq!(got, want);
                }
            }
        }
    }
}
