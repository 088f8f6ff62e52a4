//! `processor_filter_regex_native`: keep or drop events by matching fields
//! against regular expressions.
//!
//! - `Include` (a map field → pattern; LoongCollector's current spelling is
//!   the two lists `FilterKey` + `FilterRegex`, which mean the same and map
//!   to the same option): an event is kept only if **every** listed field
//!   exists and matches.
//! - `Exclude` (field → pattern): an event is dropped if **any** listed
//!   field exists and matches. (LoongCollector's native filter has no
//!   `Exclude`; the Go `processor_filter_regex` has. We accept it here with
//!   the native matching rule below.)
//!
//! As in LoongCollector's native filter (boost `regex_match`), a pattern must
//! match the **whole** field value: `^(POST|PUT)$` and `POST|PUT` mean the
//! same, and to look for a word inside a field write `.*word.*`. Patterns are
//! byte-oriented with `.` matching `\n` (see [`crate::process::regex`]).
//!
//! Dropped events are counted in [`ParserStats::dropped`]; nothing is a
//! failure. With no rules every event passes.

use std::sync::Arc;

use crate::event::Event;
use crate::process::regex::FullMatcher;
use crate::process::{DropReason, ParserStats};
use crate::{EventBatch, Parser};

/// The LoongCollector type string.
pub const NAME: &str = "processor_filter_regex_native";

/// Options of `processor_filter_regex_native`.
///
/// Non-exhaustive: start from [`FilterOptions::default`] (no rules: every
/// event passes) and set fields.
///
/// ```
/// use logtail_core::process::filter::{FilterOptions, FilterParser};
///
/// let mut o = FilterOptions::default();
/// o.include = vec![("level".to_owned(), "WARN|ERROR".to_owned())];
/// let filter = FilterParser::new(o).unwrap();
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FilterOptions {
    /// `Include` (and `FilterKey[i]` → `FilterRegex[i]`): (field, pattern)
    /// pairs that must all match for the event to be kept.
    pub include: Vec<(String, String)>,
    /// `Exclude`: (field, pattern) pairs; any match drops the event.
    pub exclude: Vec<(String, String)>,
}

/// Why a `processor_filter_regex_native` could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FilterError {
    /// A pattern of `Include` (or `FilterRegex`) does not compile.
    #[error("Include: {field}: invalid pattern at offset {offset}: {message}")]
    Include {
        /// The field the pattern is for.
        field: String,
        /// Byte offset of the problem in the pattern.
        offset: usize,
        /// What is wrong.
        message: String,
    },
    /// A pattern of `Exclude` does not compile.
    #[error("Exclude: {field}: invalid pattern at offset {offset}: {message}")]
    Exclude {
        /// The field the pattern is for.
        field: String,
        /// Byte offset of the problem in the pattern.
        offset: usize,
        /// What is wrong.
        message: String,
    },
}

type Rule = (Arc<str>, FullMatcher);

/// The `processor_filter_regex_native` step.
#[derive(Debug)]
pub struct FilterParser {
    include: Vec<Rule>,
    exclude: Vec<Rule>,
    stats: ParserStats,
}

impl FilterParser {
    /// Compiles the options.
    pub fn new(options: FilterOptions) -> Result<Self, FilterError> {
        let compile = |rules: Vec<(String, String)>, include: bool| {
            rules
                .into_iter()
                .map(|(field, pattern)| match FullMatcher::new(&pattern) {
                    Ok(m) => Ok((Arc::from(field), m)),
                    Err(e) if include => Err(FilterError::Include {
                        field,
                        offset: e.offset,
                        message: e.message,
                    }),
                    Err(e) => Err(FilterError::Exclude {
                        field,
                        offset: e.offset,
                        message: e.message,
                    }),
                })
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(FilterParser {
            include: compile(options.include, true)?,
            exclude: compile(options.exclude, false)?,
            stats: ParserStats::default(),
        })
    }

    /// Whether `event` passes the filter.
    pub fn keeps(&self, event: &Event) -> bool {
        let included = self
            .include
            .iter()
            .all(|(k, m)| event.field(k).is_some_and(|v| m.matches(v)));
        included
            && !self
                .exclude
                .iter()
                .any(|(k, m)| event.field(k).is_some_and(|v| m.matches(v)))
    }

    /// Looks at one event and counts it. Returns `false` when it is to be
    /// dropped.
    pub fn filter_event(&mut self, event: &Event) -> bool {
        self.stats.processed += 1;
        let keep = self.keeps(event);
        if !keep {
            self.stats.dropped += 1;
        }
        keep
    }
}

impl Parser for FilterParser {
    fn name(&self) -> &str {
        NAME
    }

    fn drop_kind(&self) -> crate::process::DropKind {
        crate::process::DropKind::Filter
    }

    fn process(&mut self, batch: &mut EventBatch) {
        batch.events.retain(|e| self.filter_event(e));
    }

    fn stats(&self) -> ParserStats {
        self.stats
    }

    fn drop_reason(&self) -> Option<DropReason> {
        let names = |rules: &[Rule]| {
            rules
                .iter()
                .map(|(k, _)| format!("{k:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let reason = match (self.include.is_empty(), self.exclude.is_empty()) {
            (true, true) => return None,
            (false, true) => format!(
                "their fields {} do not all match Include",
                names(&self.include)
            ),
            (true, false) => format!(
                "one of their fields {} matches Exclude",
                names(&self.exclude)
            ),
            (false, false) => format!(
                "their fields {} do not all match Include, or one of {} matches Exclude",
                names(&self.include),
                names(&self.exclude)
            ),
        };
        Some(DropReason {
            reason,
            option: "Include (FilterKey/FilterRegex), Exclude",
            remedy: "change the patterns to keep them".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::CONTENT;
    use crate::Timestamp;
    use bytes::Bytes;
    use proptest::prelude::*;

    fn ev(fields: &[(&str, &str)]) -> Event {
        let mut e = Event::line(Bytes::new(), 0, Timestamp::default());
        for (k, v) in fields {
            e.set_field(Arc::from(*k), Bytes::copy_from_slice(v.as_bytes()));
        }
        e
    }

    fn rules(r: &[(&str, &str)]) -> Vec<(String, String)> {
        r.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn filter(include: &[(&str, &str)], exclude: &[(&str, &str)]) -> FilterParser {
        FilterParser::new(FilterOptions {
            include: rules(include),
            exclude: rules(exclude),
        })
        .unwrap()
    }

    #[test]
    fn loongcollector_doc_example() {
        let f = filter(&[("method", "^(POST|PUT)$"), ("status", "^200$")], &[]);
        assert!(f.keeps(&ev(&[("method", "POST"), ("status", "200")])));
        assert!(!f.keeps(&ev(&[("method", "Get"), ("status", "200")])));
        assert!(!f.keeps(&ev(&[("method", "PUT"), ("status", "404")])));
    }

    #[test]
    fn include_needs_every_field_present_and_whole_match() {
        let f = filter(&[("level", "ERROR|WARN")], &[]);
        assert!(f.keeps(&ev(&[("level", "WARN")])));
        assert!(
            !f.keeps(&ev(&[("level", "WARNING")])),
            "partial match is no match"
        );
        assert!(!f.keeps(&ev(&[("other", "WARN")])), "missing field");
        let f = filter(&[("level", ".*ERR.*")], &[]);
        assert!(f.keeps(&ev(&[("level", "xERRy")])));
    }

    #[test]
    fn exclude_drops_on_any_match() {
        let f = filter(&[], &[("level", "DEBUG"), ("path", "/health.*")]);
        assert!(!f.keeps(&ev(&[("level", "DEBUG")])));
        assert!(!f.keeps(&ev(&[("level", "INFO"), ("path", "/healthz")])));
        assert!(f.keeps(&ev(&[("level", "INFO"), ("path", "/api")])));
        assert!(f.keeps(&ev(&[])), "missing fields do not match");
        let both = filter(&[("level", "INFO|DEBUG")], &[("level", "DEBUG")]);
        assert!(both.keeps(&ev(&[("level", "INFO")])));
        assert!(!both.keeps(&ev(&[("level", "DEBUG")])));
    }

    #[test]
    fn no_rules_keep_everything() {
        assert!(filter(&[], &[]).keeps(&ev(&[])));
    }

    #[test]
    fn raw_content_crlf_empty_unicode() {
        let mut e = Event::line(Bytes::from_static(b"GET /\r"), 0, Timestamp::default());
        // The `\r` is part of the content: a whole match must allow for it.
        assert!(!filter(&[(CONTENT, "GET /")], &[]).keeps(&e));
        assert!(filter(&[(CONTENT, "GET /\\r?")], &[]).keeps(&e));
        e.content = Bytes::new();
        assert!(
            filter(&[(CONTENT, "")], &[]).keeps(&e),
            "empty field matches empty pattern"
        );
        assert!(!filter(&[(CONTENT, ".+")], &[]).keeps(&e));
        let e = ev(&[("msg", "用户 登录 ✓")]);
        assert!(filter(&[("msg", r"\S+ 登录 .*")], &[]).keeps(&e));
        assert!(filter(&[("msg", r"[用户]+ .*")], &[]).keeps(&e));
        let e = ev(&[("msg", r#"say "hi ""there""""#)]);
        assert!(filter(&[("msg", r#"say "(?:[^"]|"")*""#)], &[]).keeps(&e));
    }

    #[test]
    fn one_mib_field() {
        let big = "z".repeat(1 << 20);
        let e = ev(&[("msg", &format!("{big}!"))]);
        assert!(filter(&[("msg", "z+!")], &[]).keeps(&e));
        assert!(!filter(&[], &[("msg", ".*!")]).keeps(&e));
    }

    #[test]
    fn the_drop_reason_names_the_fields_and_options() {
        assert_eq!(filter(&[], &[]).drop_reason(), None);
        let r = filter(&[("status", "2..")], &[]).drop_reason().unwrap();
        assert!(
            r.reason.contains("\"status\"") && r.reason.contains("Include"),
            "{r}"
        );
        let r = filter(&[], &[("msg", ".*debug.*")]).drop_reason().unwrap();
        assert!(
            r.reason.contains("\"msg\"") && r.reason.contains("Exclude"),
            "{r}"
        );
        assert!(r.option.contains("Exclude") && r.option.contains("FilterRegex"));
    }

    #[test]
    fn errors_name_option_and_field() {
        let e = FilterParser::new(FilterOptions {
            include: rules(&[("status", "(2")]),
            exclude: vec![],
        })
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("Include: status: invalid pattern at offset 0"),
            "{e}"
        );
        let e = FilterParser::new(FilterOptions {
            include: vec![],
            exclude: rules(&[("level", "a{3,1}")]),
        })
        .unwrap_err();
        assert!(
            e.to_string().starts_with("Exclude: level: invalid pattern"),
            "{e}"
        );
    }

    #[test]
    fn process_counts_dropped() {
        let mut f = filter(&[("level", "ERROR")], &[]);
        assert_eq!(f.name(), NAME);
        let mut b = crate::process::test_batch(vec![
            ev(&[("level", "ERROR")]),
            ev(&[("level", "INFO")]),
            ev(&[]),
        ]);
        f.process(&mut b);
        assert_eq!(b.events.len(), 1);
        let st = f.stats();
        assert_eq!((st.processed, st.dropped, st.failed), (3, 2, 0));
        assert!(f.filter_event(&ev(&[("level", "ERROR")])));
    }

    proptest! {
        #[test]
        fn agrees_with_regex_crate(
            value in "[a-c0-9 \n]{0,12}",
            pat in prop::sample::select(vec!["a+", "[ab]*c", "\\d+ .*", "a|ab", "(?:a.)*", ".*b"]),
        ) {
            let reference = ::regex::bytes::Regex::new(&format!(r"(?s-u)\A(?:{pat})\z")).unwrap();
            let f = filter(&[("k", pat)], &[]);
            prop_assert_eq!(f.keeps(&ev(&[("k", &value)])), reference.is_match(value.as_bytes()));
            let f = filter(&[], &[("k", pat)]);
            prop_assert_eq!(f.keeps(&ev(&[("k", &value)])), !reference.is_match(value.as_bytes()));
        }
    }
}
