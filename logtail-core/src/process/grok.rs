//! `processor_grok` (LoongCollector's Go "extended" grok processor): named
//! patterns such as `%{IP:client} %{WORD:method}` extract fields.
//!
//! - `Match`: grok expressions tried in order; the first one that yields
//!   a non-empty named capture wins. As in LoongCollector the expression is
//!   *searched* (not anchored: add `^`/`$` to anchor) and every
//!   non-overlapping match contributes its named captures; empty captures
//!   are skipped (a later value of the same name replaces an earlier one).
//! - `%{NAME}` inserts a pattern (no field), `%{NAME:field}` captures a
//!   field, `%{NAME:field:int}` too (the type is accepted and ignored: every
//!   value is text, as in LoongCollector).
//! - Patterns: the standard library shipped in `grok/grok-patterns`, then
//!   the files of `CustomPatternDir` (each line `NAME pattern`; empty lines
//!   and lines starting with `#` or `"` are skipped), then
//!   `CustomPatterns`; a later definition of a name replaces an earlier one.
//!
//! The expressions are compiled to the finite-automaton engine of the
//! `regex` family (linear time: no catastrophic backtracking, so a
//! `TimeoutMilliSeconds` is rarely reached; it is checked between
//! expressions and between matches). Oniguruma/.NET constructs are
//! translated: `(?<name>…)` and `(?P<name>…)` capture `name`, atomic
//! groups `(?>…)` become plain groups, possessive quantifiers (`*+`, `++`,
//! `?+`, `}+`) become greedy ones. Look-around (`(?=`, `(?!`, `(?<=`,
//! `(?<!`) and back-references cannot be translated: they are a build
//! error naming the pattern.
//!
//! Outcome: on success the source is kept unless `KeepSource: false`; on
//! failure (no expression matched, or the timeout passed) it is removed
//! when `IgnoreParseFailure: false`, and an event left with no field at all
//! is then dropped and counted (LoongCollector ships it as an empty log).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use regex_automata::meta;
use regex_automata::util::syntax;
use regex_automata::PatternID;

use crate::event::{Event, Field, FieldKey, FieldValue};
use crate::process::{DropReason, Outcome, ParserStats, SourceOptions, CONTENT};
use crate::{EventBatch, Parser};

/// The LoongCollector type string of this processor.
pub const NAME: &str = "processor_grok";

/// The standard pattern library (`NAME pattern` lines).
pub const DEFAULT_PATTERNS: &str = include_str!("grok/grok-patterns");

/// How deep `%{…}` references may nest.
const MAX_NESTING: usize = 64;

/// The longest regular expression an expression may expand to.
pub const MAX_EXPANDED_BYTES: usize = 1 << 20;

/// Options of `processor_grok`, with LoongCollector's defaults.
///
/// Non-exhaustive: start from [`GrokOptions::new`] and set fields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GrokOptions {
    /// `SourceKey` (default `content`).
    pub source_key: String,
    /// `Match`: the expressions, tried in order (required).
    pub matches: Vec<String>,
    /// `CustomPatterns`: name → pattern.
    pub custom_patterns: Vec<(String, String)>,
    /// `CustomPatternDir`: directories (all their files) or files of patterns.
    pub custom_pattern_dirs: Vec<PathBuf>,
    /// `TimeoutMilliSeconds` (0 = none).
    pub timeout_ms: u64,
    /// `IgnoreParseFailure` (default true): keep the source on failure.
    pub ignore_parse_failure: bool,
    /// `KeepSource` (default true): keep the source on success.
    pub keep_source: bool,
    /// `NoKeyError` (default false): an event without the source counts as failed.
    pub no_key_error: bool,
}

impl GrokOptions {
    /// LoongCollector's defaults for the required `Match`.
    pub fn new(matches: Vec<String>) -> Self {
        GrokOptions {
            source_key: CONTENT.into(),
            matches,
            custom_patterns: Vec::new(),
            custom_pattern_dirs: Vec::new(),
            timeout_ms: 0,
            ignore_parse_failure: true,
            keep_source: true,
            no_key_error: false,
        }
    }
}

/// Why a `processor_grok` could not be built; each names the pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GrokError {
    /// `Match` is empty.
    #[error("Match: at least one grok expression is required")]
    NoMatch,
    /// `SourceKey` is empty.
    #[error("SourceKey: must not be empty")]
    EmptySourceKey,
    /// A `%{NAME}` names no pattern.
    #[error("{place}: no pattern named {name:?} (in {within})")]
    UnknownPattern {
        /// `Match[i]` or `CustomPatterns`.
        place: String,
        /// The missing name.
        name: String,
        /// The expression or pattern that refers to it.
        within: String,
    },
    /// A `%{…}` is malformed.
    #[error("{place}: invalid reference %{{{reference}}}: expected %{{NAME}}, %{{NAME:field}} or %{{NAME:field:type}}")]
    BadReference {
        /// `Match[i]`.
        place: String,
        /// The text between the braces.
        reference: String,
    },
    /// Patterns refer to each other in a cycle (or nest too deeply).
    #[error("{place}: pattern {name:?} refers to itself (through {chain})")]
    Cycle {
        /// `Match[i]`.
        place: String,
        /// The pattern met again.
        name: String,
        /// The chain of references.
        chain: String,
    },
    /// A construct the engine cannot run and that has no translation.
    #[error("{place}: pattern {pattern:?} uses {construct}, which is not supported (the regex engine has no look-around or back-references); rewrite it without")]
    Unsupported {
        /// `Match[i]`.
        place: String,
        /// The named pattern (or the expression) holding it.
        pattern: String,
        /// The construct, e.g. `look-behind (?<!`.
        construct: String,
    },
    /// The expression expands to more than [`MAX_EXPANDED_BYTES`].
    #[error("{place}: the expression expands to more than {MAX_EXPANDED_BYTES} bytes of regular expression (patterns referring to patterns many times over)")]
    TooLarge {
        /// `Match[i]`.
        place: String,
    },
    /// The expanded expression does not compile.
    #[error("{place}: invalid regular expression after expanding the grok patterns: {message}")]
    Regex {
        /// `Match[i]`.
        place: String,
        /// The engine's message.
        message: String,
    },
    /// A `CustomPatternDir` entry cannot be read.
    #[error("CustomPatternDir: {path}: {reason}")]
    PatternDir {
        /// The path.
        path: String,
        /// Why.
        reason: String,
    },
    /// A pattern file line is not `NAME pattern`.
    #[error("CustomPatternDir: {path}:{line}: expected `NAME pattern`")]
    PatternLine {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
    },
}

/// What matching one value gave.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GrokMatch {
    /// The fields of the first expression that captured something (values
    /// relative to the value matched).
    Fields(Vec<Field>),
    /// No expression captured anything.
    NoMatch,
    /// `TimeoutMilliSeconds` passed before an expression matched.
    TimedOut,
}

/// One compiled `Match` expression: the engine and the field of each
/// named group (by group index).
#[derive(Debug)]
struct Compiled {
    re: meta::Regex,
    groups: Vec<(usize, FieldKey)>,
}

/// The `processor_grok` step.
#[derive(Debug)]
pub struct GrokParser {
    compiled: Vec<Compiled>,
    source: SourceOptions,
    opts: GrokOptions,
    timeout: Option<Duration>,
    stats: ParserStats,
    timeouts: u64,
}

/// Reads `NAME pattern` lines into `into`.
fn read_patterns(
    text: &str,
    path: &str,
    into: &mut HashMap<String, String>,
) -> Result<(), GrokError> {
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') || line.starts_with('"') {
            continue;
        }
        let Some((name, pattern)) = line.split_once([' ', '\t']) else {
            return Err(GrokError::PatternLine {
                path: path.into(),
                line: i + 1,
            });
        };
        into.insert(name.to_string(), pattern.trim_start().to_string());
    }
    Ok(())
}

/// The standard library as a map.
pub fn default_patterns() -> HashMap<String, String> {
    let mut m = HashMap::new();
    // The shipped file is well-formed (tested).
    let _ = read_patterns(DEFAULT_PATTERNS, "grok-patterns", &mut m);
    m
}

fn load_dir(path: &Path, into: &mut HashMap<String, String>) -> Result<(), GrokError> {
    let shown = path.display().to_string();
    let err = |e: std::io::Error| GrokError::PatternDir {
        path: shown.clone(),
        reason: e.to_string(),
    };
    let meta = std::fs::metadata(path).map_err(err)?;
    let mut files = Vec::new();
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).map_err(err)? {
            let p = entry.map_err(err)?.path();
            if p.is_file() {
                files.push(p);
            }
        }
        files.sort();
    } else {
        files.push(path.to_path_buf());
    }
    for f in files {
        let fshown = f.display().to_string();
        let text = std::fs::read(&f).map_err(|e| GrokError::PatternDir {
            path: fshown.clone(),
            reason: e.to_string(),
        })?;
        read_patterns(&String::from_utf8_lossy(&text), &fshown, into)?;
    }
    Ok(())
}

/// Expands grok references and translates a pattern into the engine's
/// syntax, naming each capture `g<N>` and recording its field.
struct Expander<'a> {
    patterns: &'a HashMap<String, String>,
    place: String,
    fields: Vec<String>,
    stack: Vec<String>,
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.split(['-', '.'])
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_alphanumeric() || c == '_'))
}

fn valid_field(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '@' | '[' | ']'))
}

impl Expander<'_> {
    fn capture(&mut self, field: &str, out: &mut String) {
        out.push_str(&format!("(?P<g{}>", self.fields.len()));
        self.fields.push(field.to_string());
    }

    /// Appends the translation of `text` (the pattern `name`) to `out`.
    fn expand(&mut self, name: &str, text: &str, out: &mut String) -> Result<(), GrokError> {
        let place = self.place.clone();
        let unsupported = |construct: &str| GrokError::Unsupported {
            place: place.clone(),
            pattern: name.to_string(),
            construct: construct.to_string(),
        };
        let b = text.as_bytes();
        let mut i = 0;
        let mut start = 0; // start of the literal run not yet copied
        let mut in_class = false;
        while i < b.len() {
            let c = b[i];
            if c == b'\\' {
                if !in_class && matches!(b.get(i + 1), Some(b'1'..=b'9') | Some(b'k')) {
                    return Err(unsupported("a back-reference"));
                }
                i += 2;
                continue;
            }
            if in_class {
                if c == b'[' && b.get(i + 1) == Some(&b':') {
                    // [:alpha:] inside a class.
                    if let Some(end) = text[i + 2..].find(":]") {
                        i += end + 4;
                        continue;
                    }
                } else if c == b']' {
                    in_class = false;
                }
                i += 1;
                continue;
            }
            match c {
                b'[' => {
                    in_class = true;
                    i += 1;
                    if b.get(i) == Some(&b'^') {
                        i += 1;
                    }
                    if b.get(i) == Some(&b']') {
                        i += 1; // a literal ] first in the class
                    }
                }
                b'%' if b.get(i + 1) == Some(&b'{') => {
                    let Some(close) = text[i + 2..].find('}') else {
                        i += 1;
                        continue;
                    };
                    out.push_str(&text[start..i]);
                    let reference = &text[i + 2..i + 2 + close];
                    self.reference(reference, out)?;
                    i += close + 3;
                    start = i;
                }
                b'(' if b.get(i + 1) == Some(&b'?') => {
                    let rest = &text[i + 2..];
                    let look = [
                        ("<=", "look-behind (?<="),
                        ("<!", "negative look-behind (?<!"),
                        ("=", "look-ahead (?="),
                        ("!", "negative look-ahead (?!"),
                    ];
                    if let Some((_, what)) = look.iter().find(|(p, _)| rest.starts_with(p)) {
                        return Err(unsupported(what));
                    }
                    let named = rest
                        .strip_prefix("P<")
                        .map(|r| (r, 4))
                        .or_else(|| rest.strip_prefix('<').map(|r| (r, 3)));
                    if let Some((r, skip)) = named {
                        if let Some(end) = r.find('>') {
                            out.push_str(&text[start..i]);
                            let field = r[..end].to_string();
                            self.capture(&field, out);
                            i += skip + end + 1;
                            start = i;
                            continue;
                        }
                    }
                    if rest.starts_with('>') {
                        out.push_str(&text[start..i]);
                        out.push_str("(?:");
                        i += 3;
                        start = i;
                        continue;
                    }
                    i += 2;
                }
                b'*' | b'+' | b'?' | b'}' if b.get(i + 1) == Some(&b'+') => {
                    // A possessive quantifier: drop its `+`.
                    out.push_str(&text[start..=i]);
                    i += 2;
                    start = i;
                }
                _ => i += 1,
            }
        }
        out.push_str(&text[start..]);
        Ok(())
    }

    fn reference(&mut self, reference: &str, out: &mut String) -> Result<(), GrokError> {
        let mut parts = reference.splitn(3, ':');
        let name = parts.next().unwrap_or_default();
        let field = parts.next();
        let bad = || GrokError::BadReference {
            place: self.place.clone(),
            reference: reference.to_string(),
        };
        if !valid_name(name) || field.is_some_and(|f| !valid_field(f)) {
            return Err(bad());
        }
        if let Some(t) = parts.next() {
            if !matches!(
                t,
                "string" | "int" | "float" | "long" | "double" | "boolean"
            ) {
                return Err(bad());
            }
        }
        let Some(pattern) = self.patterns.get(name) else {
            return Err(GrokError::UnknownPattern {
                place: self.place.clone(),
                name: name.to_string(),
                within: self
                    .stack
                    .last()
                    .cloned()
                    .unwrap_or_else(|| self.place.clone()),
            });
        };
        if self.stack.iter().any(|s| s == name) || self.stack.len() >= MAX_NESTING {
            let mut chain = self.stack.clone();
            chain.push(name.to_string());
            return Err(GrokError::Cycle {
                place: self.place.clone(),
                name: name.to_string(),
                chain: chain.join(" -> "),
            });
        }
        match field {
            Some(f) => self.capture(f, out),
            None => out.push_str("(?:"),
        }
        if out.len() + pattern.len() > MAX_EXPANDED_BYTES {
            return Err(GrokError::TooLarge {
                place: self.place.clone(),
            });
        }
        self.stack.push(name.to_string());
        let r = self.expand(name, pattern, out);
        self.stack.pop();
        r?;
        out.push(')');
        Ok(())
    }
}

/// Expands and translates one grok expression into the engine's syntax;
/// returns the regex and the field of each capture `g<N>`.
pub fn expand(
    expression: &str,
    patterns: &HashMap<String, String>,
    place: &str,
) -> Result<(String, Vec<String>), GrokError> {
    let mut e = Expander {
        patterns,
        place: place.to_string(),
        fields: Vec::new(),
        stack: Vec::new(),
    };
    let mut out = String::with_capacity(expression.len() * 4);
    e.expand(expression, expression, &mut out)?;
    Ok((out, e.fields))
}

impl GrokParser {
    /// Loads the patterns, compiles every expression and builds the step.
    pub fn new(opts: GrokOptions) -> Result<Self, GrokError> {
        if opts.matches.is_empty() {
            return Err(GrokError::NoMatch);
        }
        if opts.source_key.is_empty() {
            return Err(GrokError::EmptySourceKey);
        }
        let mut patterns = default_patterns();
        for d in &opts.custom_pattern_dirs {
            load_dir(d, &mut patterns)?;
        }
        for (k, v) in &opts.custom_patterns {
            patterns.insert(k.clone(), v.clone());
        }
        let mut compiled = Vec::with_capacity(opts.matches.len());
        for (i, m) in opts.matches.iter().enumerate() {
            let place = format!("Match[{i}]");
            let (regex, fields) = expand(m, &patterns, &place)?;
            let re = meta::Regex::builder()
                .syntax(syntax::Config::new().utf8(false))
                .configure(
                    meta::Config::new()
                        .nfa_size_limit(Some(16 << 20))
                        .utf8_empty(false),
                )
                .build(&regex)
                .map_err(|e| GrokError::Regex {
                    place: place.clone(),
                    message: e.to_string(),
                })?;
            let mut groups = Vec::new();
            for (gi, name) in re.group_info().pattern_names(PatternID::ZERO).enumerate() {
                let Some(n) = name.and_then(|n| n.strip_prefix('g')) else {
                    continue;
                };
                if let Some(f) = n.parse::<usize>().ok().and_then(|k| fields.get(k)) {
                    groups.push((gi, FieldKey::interned(f)));
                }
            }
            compiled.push(Compiled { re, groups });
        }
        let source = SourceOptions {
            source_key: Arc::from(opts.source_key.as_str()),
            keep_source_on_success: opts.keep_source,
            ..Default::default()
        };
        Ok(GrokParser {
            compiled,
            source,
            timeout: (opts.timeout_ms > 0).then(|| Duration::from_millis(opts.timeout_ms)),
            opts,
            stats: ParserStats::default(),
            timeouts: 0,
        })
    }

    /// Matches `text` against the expressions in order. Never panics.
    pub fn parse(&self, text: &[u8]) -> GrokMatch {
        let start = Instant::now();
        let late = || self.timeout.is_some_and(|t| start.elapsed() > t);
        for c in &self.compiled {
            let mut fields = Vec::new();
            for caps in c.re.captures_iter(text) {
                for (gi, key) in &c.groups {
                    if let Some(s) = caps.get_group(*gi) {
                        if !s.is_empty() {
                            fields.push(Field {
                                key: key.clone(),
                                value: FieldValue::span(s.start, s.end),
                            });
                        }
                    }
                }
                if late() {
                    return GrokMatch::TimedOut;
                }
            }
            if !fields.is_empty() {
                return GrokMatch::Fields(fields);
            }
            if late() {
                return GrokMatch::TimedOut;
            }
        }
        GrokMatch::NoMatch
    }

    /// Events whose matching passed `TimeoutMilliSeconds` (counted in `failed` too).
    pub fn timeouts(&self) -> u64 {
        self.timeouts
    }

    /// Processes one event; returns `false` when it is to be dropped.
    pub fn process_event(&mut self, event: &mut Event) -> bool {
        let Some(src) = event.field(&self.opts.source_key) else {
            self.stats.processed += 1;
            if self.opts.no_key_error {
                self.stats.failed += 1;
            }
            return true;
        };
        match self.parse(src) {
            GrokMatch::Fields(fields) => {
                self.source
                    .apply(event, Outcome::Parsed(fields), &mut self.stats)
            }
            failure => {
                if failure == GrokMatch::TimedOut {
                    self.timeouts += 1;
                }
                self.stats.processed += 1;
                self.stats.failed += 1;
                if self.opts.ignore_parse_failure {
                    return true;
                }
                event.remove_field(&self.opts.source_key);
                if event.contents().all(|(k, v)| k == CONTENT && v.is_empty()) {
                    self.stats.dropped += 1;
                    return false;
                }
                true
            }
        }
    }
}

impl Parser for GrokParser {
    fn name(&self) -> &str {
        NAME
    }

    fn process(&mut self, batch: &mut EventBatch) {
        batch.events.retain_mut(|e| self.process_event(e));
    }

    fn stats(&self) -> ParserStats {
        self.stats
    }

    fn drop_reason(&self) -> Option<DropReason> {
        (!self.opts.ignore_parse_failure).then(|| DropReason {
            reason: format!(
                "no Match expression matched their field {:?}, their only field",
                self.opts.source_key
            ),
            option: "IgnoreParseFailure",
            remedy: "true keeps them as they were".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Timestamp;
    use bytes::Bytes;

    fn ev(s: &str) -> Event {
        Event::line(Bytes::from(s.to_string()), 0, Timestamp::default())
    }

    fn fields_of(m: GrokMatch) -> Vec<Field> {
        match m {
            GrokMatch::Fields(f) => f,
            other => panic!("{other:?}"),
        }
    }

    fn pairs(e: &Event) -> Vec<(String, String)> {
        e.contents()
            .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v).into_owned()))
            .collect()
    }

    fn owned(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// processor-grok.md's configuration.
    fn documented() -> GrokParser {
        let mut o = GrokOptions::new(vec![
            "%{HTTP}".into(),
            "%{WORD:word1} %{NUMBER:request_time} %{WORD:word2}".into(),
            "%{YEAR:year} %{MONTH:month} %{MONTHDAY:day} %{QUOTEDSTRING:motto}".into(),
        ]);
        o.keep_source = false;
        o.ignore_parse_failure = false;
        o.custom_patterns = vec![(
            "HTTP".into(),
            "%{IP:client} %{WORD:method} %{URIPATHPARAM:request} %{NUMBER:bytes} %{NUMBER:duration}"
                .into(),
        )];
        GrokParser::new(o).unwrap()
    }

    #[test]
    fn documented_example_gives_the_documented_records() {
        let mut p = documented();
        let mut e = ev("begin 123.456 end");
        assert!(p.process_event(&mut e));
        assert_eq!(
            pairs(&e),
            owned(&[
                ("word1", "begin"),
                ("request_time", "123.456"),
                ("word2", "end")
            ])
        );
        let mut e = ev(r#"2019 June 24 "I am iron man""#);
        assert!(p.process_event(&mut e));
        assert_eq!(
            pairs(&e),
            owned(&[
                ("year", "2019"),
                ("month", "June"),
                ("day", "24"),
                ("motto", r#""I am iron man""#)
            ])
        );
        // Nothing matches and IgnoreParseFailure is false: the content is
        // removed, nothing is left, the event is dropped (counted).
        let mut e = ev("WRONG LOG");
        assert!(!p.process_event(&mut e));
        let mut e = ev("10.0.0.0 GET /index.html 15824 0.043");
        assert!(p.process_event(&mut e));
        assert_eq!(
            pairs(&e),
            owned(&[
                ("client", "10.0.0.0"),
                ("method", "GET"),
                ("request", "/index.html"),
                ("bytes", "15824"),
                ("duration", "0.043")
            ])
        );
        let st = p.stats();
        assert_eq!((st.processed, st.failed, st.dropped), (4, 1, 1));
    }

    #[test]
    fn documented_layered_example_splits_in_two_steps() {
        let mut o = GrokOptions::new(vec![
            r"%{IPORHOST:clientip} %{DATA:process_name}\[%{NUMBER:process_id}\]: %{GREEDYDATA:content_2}".into(),
        ]);
        o.keep_source = false;
        let mut first = GrokParser::new(o).unwrap();
        let mut o = GrokOptions::new(vec![
            "%{WORD:word_1} %{WORD:word_2} %{NUMBER:number_1} %{NUMBER:number_2} %{GREEDYDATA:data}".into(),
            "%{WORD:word_1} %{NUMBER:number_1} %{NUMBER:number_2} %{NUMBER:number_3} %{DATA:data};%{NUMBER:number_4}".into(),
            r"%{DATA:data} \| %{NUMBER:number}".into(),
        ]);
        o.source_key = "content_2".into();
        o.keep_source = false;
        let mut second = GrokParser::new(o).unwrap();
        let run = |line: &str, first: &mut GrokParser, second: &mut GrokParser| {
            let mut e = ev(line);
            assert!(first.process_event(&mut e));
            assert!(second.process_event(&mut e));
            pairs(&e)
        };
        assert_eq!(
            run(
                "8.8.8.8 process-name[666]: a b 1 2 a lot of text at the end",
                &mut first,
                &mut second
            ),
            owned(&[
                ("clientip", "8.8.8.8"),
                ("process_name", "process-name"),
                ("process_id", "666"),
                ("word_1", "a"),
                ("word_2", "b"),
                ("number_1", "1"),
                ("number_2", "2"),
                ("data", "a lot of text at the end"),
            ])
        );
        assert_eq!(
            run(
                "8.8.8.8 process-name[421]: a completely different format | 1111",
                &mut first,
                &mut second
            ),
            owned(&[
                ("clientip", "8.8.8.8"),
                ("process_name", "process-name"),
                ("process_id", "421"),
                ("data", "a completely different format"),
                ("number", "1111"),
            ])
        );
    }

    #[test]
    fn every_shipped_pattern_compiles() {
        let lib = default_patterns();
        assert!(lib.len() > 80, "{}", lib.len());
        for name in lib.keys() {
            let o = GrokOptions::new(vec![format!("%{{{name}:x}}")]);
            GrokParser::new(o).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn common_log_formats_parse() {
        let p = GrokParser::new(GrokOptions::new(vec!["%{COMBINEDAPACHELOG}".into()])).unwrap();
        let line = br#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 "http://www.example.com/start.html" "Mozilla/4.08""#;
        let f = fields_of(p.parse(line));
        let got: HashMap<&str, &[u8]> =
            f.iter().map(|f| (&*f.key, f.value.resolve(line))).collect();
        assert_eq!(got["clientip"], b"127.0.0.1");
        assert_eq!(got["auth"], b"frank");
        assert_eq!(got["timestamp"], b"10/Oct/2000:13:55:36 -0700");
        assert_eq!(got["verb"], b"GET");
        assert_eq!(got["request"], b"/apache_pb.gif");
        assert_eq!(got["httpversion"], b"1.0");
        assert_eq!(got["response"], b"200");
        assert_eq!(got["bytes"], b"2326");
        assert_eq!(got["referrer"], br#""http://www.example.com/start.html""#);
        assert_eq!(got["agent"], br#""Mozilla/4.08""#);

        let p = GrokParser::new(GrokOptions::new(vec![
            "%{SYSLOGBASE} %{GREEDYDATA:msg}".into()
        ]))
        .unwrap();
        let line = b"Mar  7 04:02:16 host1 sshd[1234]: Accepted publickey";
        let f = fields_of(p.parse(line));
        let got: Vec<(&str, &[u8])> = f.iter().map(|f| (&*f.key, f.value.resolve(line))).collect();
        assert_eq!(
            got,
            vec![
                ("timestamp", &b"Mar  7 04:02:16"[..]),
                ("logsource", b"host1"),
                ("program", b"sshd"),
                ("pid", b"1234"),
                ("msg", b"Accepted publickey"),
            ]
        );
    }

    #[test]
    fn oniguruma_constructs_are_translated_or_refused_by_name() {
        let mut o = GrokOptions::new(vec![r"(?<user>\w++) (?P<n>(?>\d+)) %{WORD:w:int}".into()]);
        let p = GrokParser::new(o.clone()).unwrap();
        let line = b"bob 42 x";
        let f = fields_of(p.parse(line));
        let got: Vec<(&str, &[u8])> = f.iter().map(|f| (&*f.key, f.value.resolve(line))).collect();
        assert_eq!(got, vec![("user", &b"bob"[..]), ("n", b"42"), ("w", b"x")]);

        o.custom_patterns = vec![("NUM".into(), r"(?<![0-9.])\d+".into())];
        o.matches = vec!["%{NUM:n}".into()];
        let e = GrokParser::new(o.clone()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Match[0]: pattern \"NUM\" uses negative look-behind (?<!, which is not supported (the regex engine has no look-around or back-references); rewrite it without"
        );
        o.matches = vec![r"(a)\1".into()];
        assert!(GrokParser::new(o.clone())
            .unwrap_err()
            .to_string()
            .contains("back-reference"));
        o.matches = vec!["%{NOPE:x}".into()];
        assert!(matches!(
            GrokParser::new(o.clone()).unwrap_err(),
            GrokError::UnknownPattern { .. }
        ));
        o.custom_patterns = vec![("A".into(), "%{B}".into()), ("B".into(), "x%{A}".into())];
        o.matches = vec!["%{A}".into()];
        let e = GrokParser::new(o.clone()).unwrap_err();
        assert!(e.to_string().contains("A -> B -> A"), "{e}");
        // Patterns that double at each level would expand to 2^40 copies.
        o.custom_patterns = (0..40)
            .map(|i| (format!("P{i}"), format!("%{{P{}}}%{{P{}}}", i + 1, i + 1)))
            .chain([("P40".to_string(), "x".to_string())])
            .collect();
        o.matches = vec!["%{P0}".into()];
        assert!(matches!(
            GrokParser::new(o.clone()).unwrap_err(),
            GrokError::TooLarge { .. }
        ));
        o.matches = vec!["%{WORD:a b}".into()];
        assert!(matches!(
            GrokParser::new(o.clone()).unwrap_err(),
            GrokError::BadReference { .. }
        ));
        // A class holding `(?=` is text, not a look-ahead.
        o.custom_patterns.clear();
        o.matches = vec![r"[(?=]+%{WORD:w}".into()];
        GrokParser::new(o).unwrap();
    }

    #[test]
    fn duplicate_field_names_and_repeated_matches_take_the_last_value() {
        // Go appends every match's captures; the same name twice keeps the last.
        let p = GrokParser::new(GrokOptions::new(vec!["%{INT:n}".into()])).unwrap();
        let mut e = ev("1 2 3");
        let mut p = p;
        assert!(p.process_event(&mut e));
        assert_eq!(e.field("n").unwrap(), b"3");
        // HTTPD_ERRORLOG names `timestamp` in both branches.
        GrokParser::new(GrokOptions::new(vec!["%{HTTPD_ERRORLOG}".into()])).unwrap();
    }

    #[test]
    fn custom_pattern_dir_files_load_and_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("mine"),
            "# comment\n\"\"\" docs \"\"\"\nORDER ORD-%{INT}\n\nCUST C%{INT:cust_no}\n",
        )
        .unwrap();
        let mut o = GrokOptions::new(vec!["%{ORDER:order} by %{CUST}".into()]);
        o.custom_pattern_dirs = vec![dir.path().to_path_buf()];
        let p = GrokParser::new(o.clone()).unwrap();
        let line = b"ORD-17 by C9";
        let f = fields_of(p.parse(line));
        let got: Vec<(&str, &[u8])> = f.iter().map(|f| (&*f.key, f.value.resolve(line))).collect();
        assert_eq!(got, vec![("order", &b"ORD-17"[..]), ("cust_no", b"9")]);

        std::fs::write(dir.path().join("zbad"), "NOSPACE\n").unwrap();
        let e = GrokParser::new(o.clone()).unwrap_err();
        assert!(
            e.to_string().contains("zbad:1: expected `NAME pattern`"),
            "{e}"
        );
        o.custom_pattern_dirs = vec![dir.path().join("missing")];
        assert!(matches!(
            GrokParser::new(o).unwrap_err(),
            GrokError::PatternDir { .. }
        ));
    }

    #[test]
    fn a_timeout_counts_as_a_failure() {
        let mut o = GrokOptions::new(vec!["%{INT:n}".into()]);
        o.timeout_ms = 1;
        let mut p = GrokParser::new(o).unwrap();
        let line = "1 ".repeat(2_000_000);
        let mut e = ev(&line);
        assert!(p.process_event(&mut e), "kept: IgnoreParseFailure");
        assert_eq!(p.timeouts(), 1);
        assert_eq!(p.stats().failed, 1);
        assert_eq!(e.field("n"), None);
    }

    /// A naive reference for `%{WORD:a} %{INT:b}`-shaped expressions: split
    /// by hand.
    #[test]
    fn word_int_matches_a_naive_reference() {
        let p = GrokParser::new(GrokOptions::new(vec!["^%{WORD:a} %{INT:b}$".into()])).unwrap();
        let mut seed = 7u64;
        for _ in 0..2000 {
            let mut s = String::new();
            for _ in 0..(seed % 9) {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                s.push(b"ab1 -+_x9 "[(seed >> 40) as usize % 10] as char);
            }
            let naive = s.split_once(' ').and_then(|(w, n)| {
                let wok =
                    !w.is_empty() && w.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_');
                let digits = n.strip_prefix(['+', '-']).unwrap_or(n);
                let nok = !digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit());
                (wok && nok).then(|| (w.to_string(), n.to_string()))
            });
            let got = match p.parse(s.as_bytes()) {
                GrokMatch::Fields(f) => Some(f),
                _ => None,
            }
            .map(|f| {
                (
                    String::from_utf8_lossy(f[0].value.resolve(s.as_bytes())).into_owned(),
                    String::from_utf8_lossy(f[1].value.resolve(s.as_bytes())).into_owned(),
                )
            });
            assert_eq!(got, naive, "{s:?}");
        }
    }
}
