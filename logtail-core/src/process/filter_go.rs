//! `processor_filter_regex`: LoongCollector's Go filter.
//!
//! An event is kept when **every** field named in `Include` exists and its
//! pattern is found in it, and no field named in `Exclude` has its pattern
//! found in it. Unlike `processor_filter_regex_native` (boost, whole-field
//! match), patterns are Go regular expressions ([`Dialect::Go`]) that
//! match **anywhere** in the value (Go's `MatchString`): `10\..*` keeps
//! `10.1.2.3` but also `x10.1`; anchor with `^...$` to match the whole
//! value. `.` does not match `\n` and `^`/`$` are the value's ends (Go's
//! defaults; write `(?s)` or `(?m)` to change them).
//!
//! Dropped events are counted in [`ParserStats::dropped`].
//!
//! [`Dialect::Go`]: crate::process::dialect::Dialect::Go

use std::sync::Arc;

use regex_automata::{meta, Input};

use crate::event::Event;
use crate::process::regex_go::compile_go;
use crate::process::{DropReason, ParserStats};
use crate::{EventBatch, Parser};

/// The LoongCollector type string.
pub const NAME: &str = "processor_filter_regex";

/// Options of `processor_filter_regex`.
///
/// Non-exhaustive: start from [`GoFilterOptions::default`] (no rules: every
/// event passes) and set fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GoFilterOptions {
    /// `Include`: (field, pattern) pairs that must all be found.
    pub include: Vec<(String, String)>,
    /// `Exclude`: (field, pattern) pairs; any one found drops the event.
    pub exclude: Vec<(String, String)>,
}

/// Why a `processor_filter_regex` could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{option}: {field}: invalid pattern at offset {offset}: {message}")]
#[non_exhaustive]
pub struct GoFilterError {
    /// `Include` or `Exclude`.
    pub option: &'static str,
    /// The field the pattern is for.
    pub field: String,
    /// Byte offset of the problem.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

type Rule = (Arc<str>, meta::Regex);

/// The `processor_filter_regex` step.
#[derive(Debug)]
pub struct GoFilterParser {
    include: Vec<Rule>,
    exclude: Vec<Rule>,
    stats: ParserStats,
}

impl GoFilterParser {
    /// Compiles the options.
    pub fn new(options: GoFilterOptions) -> Result<Self, GoFilterError> {
        let compile = |rules: Vec<(String, String)>, option: &'static str| {
            rules
                .into_iter()
                .map(|(field, pattern)| match compile_go(&pattern, false) {
                    Ok(re) => Ok((Arc::from(field), re)),
                    Err(e) => Err(GoFilterError {
                        option,
                        field,
                        offset: e.offset,
                        message: e.message,
                    }),
                })
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(GoFilterParser {
            include: compile(options.include, "Include")?,
            exclude: compile(options.exclude, "Exclude")?,
            stats: ParserStats::default(),
        })
    }

    /// Whether `event` passes the filter.
    pub fn keeps(&self, event: &Event) -> bool {
        let found = |(k, re): &Rule| {
            event
                .field(k)
                .is_some_and(|v| re.is_match(Input::new(v).earliest(true)))
        };
        self.include.iter().all(found) && !self.exclude.iter().any(found)
    }
}

impl Parser for GoFilterParser {
    fn name(&self) -> &str {
        NAME
    }

    fn drop_kind(&self) -> crate::process::DropKind {
        crate::process::DropKind::Filter
    }

    fn process(&mut self, batch: &mut EventBatch) {
        let before = batch.events.len();
        batch.events.retain(|e| self.keeps(e));
        self.stats.processed += before as u64;
        self.stats.dropped += (before - batch.events.len()) as u64;
    }

    fn stats(&self) -> ParserStats {
        self.stats
    }

    fn drop_reason(&self) -> Option<DropReason> {
        (!self.include.is_empty() || !self.exclude.is_empty()).then(|| DropReason {
            reason: "they did not pass its Include/Exclude patterns".into(),
            option: "Include/Exclude",
            remedy: "the filter's purpose; widen the patterns to keep more".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Timestamp;
    use bytes::Bytes;
    use proptest::prelude::*;

    fn ev(fields: &[(&str, &str)]) -> Event {
        let mut e = Event::line(Bytes::new(), 0, Timestamp::default());
        for (k, v) in fields {
            e.set_field(
                crate::event::FieldKey::interned(k),
                Bytes::copy_from_slice(v.as_bytes()),
            );
        }
        e
    }

    fn rules(r: &[(&str, &str)]) -> Vec<(String, String)> {
        r.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn documented_example() {
        // docs/cn/plugins/processor/extended/processor-filter-regex.md
        let o = GoFilterOptions {
            include: rules(&[("ip", r"10\..*"), ("method", "POST")]),
            exclude: rules(&[("brower", "aliyun.*")]),
        };
        let mut p = GoFilterParser::new(o).unwrap();
        let mut b = crate::process::test_batch(vec![
            ev(&[
                ("ip", "10.**.**.**"),
                ("method", "POST"),
                ("brower", "aliyun-sdk-java"),
            ]),
            ev(&[
                ("ip", "10.**.**.**"),
                ("method", "POST"),
                ("brower", "chrome"),
            ]),
            ev(&[
                ("ip", "192.168.**.**"),
                ("method", "POST"),
                ("brower", "aliyun-sls-ilogtail"),
            ]),
        ]);
        p.process(&mut b);
        assert_eq!(b.events.len(), 1);
        assert_eq!(b.events[0].field("brower"), Some(&b"chrome"[..]));
        let st = p.stats();
        assert_eq!((st.processed, st.dropped), (3, 2));
        assert!(p.drop_reason().is_some());
    }

    #[test]
    fn patterns_are_found_anywhere_and_missing_include_fields_drop() {
        let o = GoFilterOptions {
            include: rules(&[("content", r"(\w+-\d+-\d+-\w+\s\w+)")]),
            ..Default::default()
        };
        let p = GoFilterParser::new(o).unwrap();
        let line = "Jul 13 18:55:11 VM-4-4-centos sshd[17022]: x";
        assert!(p.keeps(&Event::line(
            Bytes::copy_from_slice(line.as_bytes()),
            0,
            Timestamp::default()
        )));
        assert!(!p.keeps(&ev(&[("other", "VM-4-4-centos sshd")])));
        // No rules: everything passes, nothing is a drop reason.
        let p = GoFilterParser::new(GoFilterOptions::default()).unwrap();
        assert!(p.keeps(&ev(&[])));
        assert!(p.drop_reason().is_none());
    }

    #[test]
    fn bad_patterns_name_option_and_field() {
        let o = GoFilterOptions {
            exclude: rules(&[("level", "(?=x)")]),
            ..Default::default()
        };
        let e = GoFilterParser::new(o).unwrap_err();
        assert!(
            e.to_string().starts_with("Exclude: level: invalid pattern"),
            "{e}"
        );
    }

    proptest! {
        #[test]
        fn agrees_with_a_reference(v in "[a-c0-9\n.]{0,12}", pat in 0..4usize) {
            let pattern = [r"a.c", r"^\d+$", r"b", r"(?s)a.c"][pat];
            let reference = ::regex::Regex::new(pattern).unwrap();
            let o = GoFilterOptions {
                include: rules(&[("f", pattern)]),
                ..Default::default()
            };
            let p = GoFilterParser::new(o).unwrap();
            prop_assert_eq!(p.keeps(&ev(&[("f", &v)])), reference.is_match(&v));
        }
    }
}
