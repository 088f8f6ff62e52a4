//! `processor_parse_delimiter_native`: split a field at a separator into
//! the fields named by `Keys`.
//!
//! What LoongCollector does, and so what this does:
//! - Spaces at both ends of the source, and `\r` at its end (CRLF lines),
//!   are trimmed before splitting. A source that is empty after trimming is
//!   left untouched and counted as failed (even with
//!   `KeepingSourceWhenParseFail: false`, as in LoongCollector).
//! - With a one-byte `Separator` (and a `Quote` different from it), a field
//!   that starts with the quote is quoted: separators inside it are data, a
//!   doubled quote is one literal quote, and the closing quote must be
//!   followed by a separator or the end. A quote anywhere else in a field,
//!   data after a closing quote, or a quote left open fail the line.
//! - A longer `Separator` (e.g. `@@`, or `丨`, which is three bytes) splits
//!   plainly: quotes are data.
//! - `OverflowedFieldsTreatment` for columns beyond `Keys`:
//!   - `extend` (default): each becomes a field `__column$i__`, with `$i`
//!     the column's 0-based position in the line (so with three keys the
//!     first extra column is `__column3__`: LoongCollector's code and tests,
//!     although its docs say counting starts at 0);
//!   - `keep`: everything from the separator before the first extra column
//!     to the end becomes one field `__column$n__` (`n` = number of keys),
//!     separator included: keys `a,b,c` on `1@@2@@3@@4@@5` give
//!     `__column3__ = "@@4@@5"`;
//!   - `discard`: extra columns are dropped, and so are columns whose key
//!     is `_`.
//! - `AllowingShortenedFields` (default true): fewer columns than keys is a
//!   success that sets only the columns present; when false it is a failure.
//!
//! Values are spans of the source (no copy, no reference count), except
//! quoted fields holding doubled quotes (and `keep` overflow with quoted
//! columns), which are copied once with the quotes removed. Keys are
//! interned names ([`FieldKey::interned`]), so handing one to an event is a
//! copy.

use std::str::FromStr;

use memchr::memmem;

use crate::event::{Event, Field, FieldKey, FieldValue};
use crate::process::{Outcome, ParserStats, SourceOptions};
use crate::{EventBatch, Parser};

/// The LoongCollector type string.
pub const NAME: &str = "processor_parse_delimiter_native";

/// `OverflowedFieldsTreatment`: what to do with columns beyond `Keys`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Overflow {
    /// `extend`: one field `__column$i__` per extra column.
    #[default]
    Extend,
    /// `keep`: the rest of the line, from the separator on, as `__column$n__`.
    Keep,
    /// `discard`: extra columns (and columns keyed `_`) are dropped.
    Discard,
}

impl FromStr for Overflow {
    type Err = DelimiterError;

    /// Parses the LoongCollector value (`extend`, `keep`, `discard`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "extend" => Ok(Overflow::Extend),
            "keep" => Ok(Overflow::Keep),
            "discard" => Ok(Overflow::Discard),
            other => Err(DelimiterError::Overflow(other.to_owned())),
        }
    }
}

/// Options of `processor_parse_delimiter_native`.
///
/// Non-exhaustive: build it with [`DelimiterOptions::new`] and set the
/// other fields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DelimiterOptions {
    /// `SourceKey`, `KeepingSourceWhenParseFail`,
    /// `KeepingSourceWhenParseSucceed`, `RenamedSourceKey`, `CopingRawLog`.
    pub source: SourceOptions,
    /// `Separator`: one or more bytes; the two characters `\t` (backslash,
    /// t) mean a tab, as in LoongCollector.
    pub separator: String,
    /// `Quote` (default `"`; empty means the default): a single byte, used
    /// only with a one-byte separator.
    pub quote: String,
    /// `Keys`: the field names of the columns, in order.
    pub keys: Vec<String>,
    /// `AllowingShortenedFields` (default true).
    pub allowing_shortened_fields: bool,
    /// `OverflowedFieldsTreatment` (default `extend`).
    pub overflowed_fields_treatment: Overflow,
}

impl DelimiterOptions {
    /// Options with LoongCollector's defaults for everything but the
    /// separator and keys (both required).
    ///
    /// ```
    /// use logtail_core::process::delimiter::DelimiterOptions;
    ///
    /// let mut o = DelimiterOptions::new("|", vec!["time".into(), "level".into(), "msg".into()]);
    /// o.allowing_shortened_fields = false;
    /// ```
    pub fn new(separator: impl Into<String>, keys: Vec<String>) -> Self {
        DelimiterOptions {
            source: SourceOptions::default(),
            separator: separator.into(),
            quote: "\"".to_owned(),
            keys,
            allowing_shortened_fields: true,
            overflowed_fields_treatment: Overflow::Extend,
        }
    }
}

/// Why a `processor_parse_delimiter_native` could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DelimiterError {
    /// `Separator` is empty.
    #[error("Separator: must not be empty")]
    EmptySeparator,
    /// `Quote` is longer than one byte.
    #[error("Quote: must be a single one-byte character, got {0:?}")]
    Quote(String),
    /// `Keys` is empty (LoongCollector would fail every line).
    #[error("Keys: at least one key is required")]
    NoKeys,
    /// `OverflowedFieldsTreatment` is not one of the three values.
    #[error("OverflowedFieldsTreatment: expected extend, keep or discard, got {0:?}")]
    Overflow(String),
}

/// One column found in the source: `start..end` of its text (inside the
/// quotes when quoted), and whether it holds doubled quotes to collapse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Column {
    start: usize,
    end: usize,
    quoted: bool,
    doubled: bool,
}

/// The `processor_parse_delimiter_native` step.
#[derive(Debug)]
pub struct DelimiterParser {
    source: SourceOptions,
    separator: Vec<u8>,
    finder: memmem::Finder<'static>,
    /// The quote byte, when quoting applies (one-byte separator, other quote).
    quote: Option<u8>,
    /// Interned ([`FieldKey::intern`]): a key is made without a branch.
    keys: Vec<&'static &'static str>,
    /// See [`SourceOptions::keys_are_distinct`]; `__column$i__` names are never user keys.
    can_append: bool,
    allow_short: bool,
    overflow: Overflow,
    /// `__column$i__` names made so far, index = column position.
    extra_keys: Vec<FieldKey>,
    columns: Vec<Column>,
    stats: ParserStats,
}

impl DelimiterParser {
    /// Checks and compiles the options.
    pub fn new(options: DelimiterOptions) -> Result<Self, DelimiterError> {
        let separator = if options.separator == "\\t" {
            b"\t".to_vec()
        } else {
            options.separator.into_bytes()
        };
        if separator.is_empty() {
            return Err(DelimiterError::EmptySeparator);
        }
        let quote = match options.quote.as_bytes() {
            [] => b'"',
            [q] => *q,
            _ => return Err(DelimiterError::Quote(options.quote)),
        };
        if options.keys.is_empty() {
            return Err(DelimiterError::NoKeys);
        }
        let quote = (separator.len() == 1 && separator[0] != quote).then_some(quote);
        let can_append = options
            .source
            .keys_are_distinct(options.keys.iter().map(String::as_str))
            && !options.keys.iter().any(|k| k.starts_with("__column"));
        Ok(DelimiterParser {
            can_append,
            source: options.source,
            finder: memmem::Finder::new(&separator).into_owned(),
            separator,
            quote,
            keys: options.keys.iter().map(|k| FieldKey::intern(k)).collect(),
            allow_short: options.allowing_shortened_fields,
            overflow: options.overflowed_fields_treatment,
            extra_keys: Vec::new(),
            columns: Vec::new(),
            stats: ParserStats::default(),
        })
    }

    /// Parses one source value; the values are relative to `source` (see
    /// [`FieldValue::resolve`]). A source that is blank after trimming is a
    /// failure here; [`DelimiterParser::parse_event`] leaves such events
    /// untouched.
    pub fn parse(&mut self, source: &[u8]) -> Outcome {
        let Some((begin, end)) = trim(source) else {
            return Outcome::Failed;
        };
        self.columns.clear();
        let ok = match self.quote {
            Some(q) => split_quoted(source, begin, end, self.separator[0], q, &mut self.columns),
            None => {
                split_plain(source, begin, end, &self.finder, &mut self.columns);
                true
            }
        };
        let n_keys = self.keys.len();
        if !ok || (!self.allow_short && self.columns.len() < n_keys) {
            return Outcome::Failed;
        }
        let mut fields = Vec::with_capacity(self.columns.len().min(n_keys + 1));
        let discard = self.overflow == Overflow::Discard;
        for (&key, col) in self.keys.iter().zip(&self.columns) {
            if discard && *key == "_" {
                continue;
            }
            let key = FieldKey::from_static(key);
            // One push per kind of value rather than one push of a value
            // chosen by a branch: the compiler then writes the field in
            // place instead of through a stack copy (measured: ~10% of the
            // whole step).
            match (col.doubled, self.quote) {
                (true, Some(q)) => fields.push(Field {
                    key,
                    value: FieldValue::from(unquote(&source[col.start..col.end], q)),
                }),
                _ => fields.push(Field {
                    key,
                    value: FieldValue::span(col.start, col.end),
                }),
            }
        }
        if self.columns.len() > n_keys {
            match self.overflow {
                Overflow::Discard => {}
                Overflow::Extend => {
                    for i in n_keys..self.columns.len() {
                        let value = column_value(source, &self.columns[i], self.quote);
                        let key = extra_key(&mut self.extra_keys, i);
                        fields.push(Field { key, value });
                    }
                }
                Overflow::Keep => {
                    let value = overflow_value(
                        source,
                        &self.columns[n_keys..],
                        &self.separator,
                        self.quote,
                    );
                    let key = extra_key(&mut self.extra_keys, n_keys);
                    fields.push(Field { key, value });
                }
            }
        }
        Outcome::Parsed(fields)
    }

    /// Parses one event in place. Returns `false` when the event is to be
    /// dropped (a failure with `KeepingSourceWhenParseFail: false`).
    pub fn parse_event(&mut self, event: &mut Event) -> bool {
        let outcome = match event.field(&self.source.source_key) {
            None => Outcome::NoSource,
            Some(src) if trim(src).is_none() => {
                // LoongCollector leaves blank sources alone: count only.
                self.stats.processed += 1;
                self.stats.failed += 1;
                return true;
            }
            Some(src) => self.parse(src),
        };
        if self.can_append {
            self.source.apply_distinct(event, outcome, &mut self.stats)
        } else {
            self.source.apply(event, outcome, &mut self.stats)
        }
    }
}

/// The non-blank part of `s` (LoongCollector trims spaces at the start and
/// spaces and `\r` at the end), or `None` if nothing is left.
fn trim(s: &[u8]) -> Option<(usize, usize)> {
    let end = s.len()
        - s.iter()
            .rev()
            .take_while(|&&b| b == b' ' || b == b'\r')
            .count();
    let begin = s[..end].iter().take_while(|&&b| b == b' ').count();
    (begin < end).then_some((begin, end))
}

/// Splits `s[begin..end]` at every occurrence of the separator.
fn split_plain(
    s: &[u8],
    begin: usize,
    end: usize,
    finder: &memmem::Finder<'_>,
    out: &mut Vec<Column>,
) {
    let step = finder.needle().len();
    let mut start = begin;
    for pos in finder.find_iter(&s[begin..end]) {
        out.push(Column {
            start,
            end: begin + pos,
            quoted: false,
            doubled: false,
        });
        start = begin + pos + step;
    }
    out.push(Column {
        start,
        end,
        quoted: false,
        doubled: false,
    });
}

/// Splits `s[begin..end]` at separators outside quotes (LoongCollector's
/// delimiter state machine). Returns `false` for a malformed line.
fn split_quoted(
    s: &[u8],
    begin: usize,
    end: usize,
    sep: u8,
    quote: u8,
    out: &mut Vec<Column>,
) -> bool {
    let mut pos = begin;
    loop {
        if pos < end && s[pos] == quote {
            // Quoted field: find the closing quote, skipping doubled ones.
            let mut i = pos + 1;
            let mut doubled = false;
            let close = loop {
                let Some(k) = memchr::memchr(quote, &s[i..end]) else {
                    return false; // never closed
                };
                let j = i + k;
                if j + 1 < end && s[j + 1] == quote {
                    doubled = true;
                    i = j + 2;
                } else {
                    break j;
                }
            };
            out.push(Column {
                start: pos + 1,
                end: close,
                quoted: true,
                doubled,
            });
            let after = close + 1;
            if after == end {
                return true;
            }
            if s[after] != sep {
                return false; // data after the closing quote
            }
            pos = after + 1;
        } else {
            match find2(sep, quote, &s[pos..end]) {
                None => {
                    out.push(Column {
                        start: pos,
                        end,
                        quoted: false,
                        doubled: false,
                    });
                    return true;
                }
                Some(k) if s[pos + k] == quote => return false, // quote inside data
                Some(k) => {
                    out.push(Column {
                        start: pos,
                        end: pos + k,
                        quoted: false,
                        doubled: false,
                    });
                    pos += k + 1;
                }
            }
        }
    }
}

/// The first `a` or `b` in `hay`. Log fields are mostly short, where a
/// plain loop beats `memchr2`'s set-up; long fields go to `memchr2`.
#[inline]
fn find2(a: u8, b: u8, hay: &[u8]) -> Option<usize> {
    const SHORT: usize = 32;
    let head = &hay[..hay.len().min(SHORT)];
    if let Some(i) = head.iter().position(|&c| c == a || c == b) {
        return Some(i);
    }
    if hay.len() <= SHORT {
        return None;
    }
    memchr::memchr2(a, b, &hay[SHORT..]).map(|i| i + SHORT)
}

/// The value of one column: a span, or a copy with doubled quotes collapsed.
#[inline]
fn column_value(s: &[u8], col: &Column, quote: Option<u8>) -> FieldValue {
    match (col.doubled, quote) {
        (true, Some(q)) => FieldValue::from(unquote(&s[col.start..col.end], q)),
        _ => FieldValue::span(col.start, col.end),
    }
}

fn unquote(text: &[u8], quote: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        out.push(text[i]);
        // Inside a closed quoted field every quote is the first of a pair.
        i += if text[i] == quote { 2 } else { 1 };
    }
    out
}

/// `keep`: the separator before the first extra column and everything
/// after it. A slice of the source unless an extra column was quoted, in
/// which case LoongCollector joins the unquoted values.
fn overflow_value(s: &[u8], extra: &[Column], sep: &[u8], quote: Option<u8>) -> FieldValue {
    let Some(first) = extra.first() else {
        return FieldValue::default();
    };
    if !extra.iter().any(|c| c.quoted) {
        let last = extra.last().map_or(first.end, |c| c.end);
        return FieldValue::span(first.start.saturating_sub(sep.len()), last);
    }
    let mut out = Vec::new();
    for c in extra {
        out.extend_from_slice(sep);
        match (c.doubled, quote) {
            (true, Some(q)) => out.extend_from_slice(&unquote(&s[c.start..c.end], q)),
            _ => out.extend_from_slice(&s[c.start..c.end]),
        }
    }
    FieldValue::from(out)
}

/// Positions whose `__column{i}__` name is interned; the names of columns
/// beyond (only lines with that many separators make them) are shared, so
/// data cannot grow the global table.
const INTERNED_COLUMNS: usize = 256;

/// The name `__column{i}__`, made once per position and parser.
fn extra_key(cache: &mut Vec<FieldKey>, i: usize) -> FieldKey {
    while cache.len() <= i {
        let n = cache.len();
        let name = format!("__column{n}__");
        cache.push(if n < INTERNED_COLUMNS {
            FieldKey::interned(&name)
        } else {
            FieldKey::shared(name.into())
        });
    }
    cache[i].clone()
}

impl Parser for DelimiterParser {
    fn name(&self) -> &str {
        NAME
    }

    fn process(&mut self, batch: &mut EventBatch) {
        batch.events.retain_mut(|e| self.parse_event(e));
    }

    fn stats(&self) -> ParserStats {
        self.stats
    }

    fn drop_reason(&self) -> Option<crate::process::DropReason> {
        self.source.drop_reason()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::CONTENT;
    use crate::Timestamp;
    use bytes::Bytes;
    use proptest::prelude::*;

    fn keys(k: &[&str]) -> Vec<String> {
        k.iter().map(|s| s.to_string()).collect()
    }

    fn opts(sep: &str, k: &[&str]) -> DelimiterOptions {
        DelimiterOptions::new(sep, keys(k))
    }

    fn run(o: DelimiterOptions, line: &str) -> Option<Vec<(String, String)>> {
        let mut p = DelimiterParser::new(o).unwrap();
        match p.parse(line.as_bytes()) {
            Outcome::Parsed(f) => Some(
                f.into_iter()
                    .map(|f| {
                        (
                            f.key.to_string(),
                            String::from_utf8_lossy(f.value.resolve(line.as_bytes())).into_owned(),
                        )
                    })
                    .collect(),
            ),
            _ => None,
        }
    }

    fn kv(pairs: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn ev(s: &str) -> Event {
        Event::line(
            Bytes::copy_from_slice(s.as_bytes()),
            0,
            Timestamp::default(),
        )
    }

    #[test]
    fn loongcollector_doc_example() {
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
        let got = run(opts(",", &k), "127.0.0.1,07/Jul/2022:10:43:30 +0800,POST,PutData?Category=YunOsAccountOpLog,0.024,18204,200,37,-,aliyun-sdk-java").unwrap();
        assert_eq!(got.len(), 10);
        assert_eq!(got[1].1, "07/Jul/2022:10:43:30 +0800");
        assert_eq!(got[9], ("browser".into(), "aliyun-sdk-java".into()));
    }

    #[test]
    fn loongcollector_empty_and_quote_cases() {
        // The cases of LoongCollector's TestEmpty, Quote `'`.
        let mut o = opts(",", &["time", "method", "url", "request_time"]);
        o.quote = "'".into();
        o.allowing_shortened_fields = false;
        let r = |l: &str| run(o.clone(), l);
        assert_eq!(
            r(",POST,,"),
            kv(&[
                ("time", ""),
                ("method", "POST"),
                ("url", ""),
                ("request_time", "")
            ])
        );
        assert_eq!(r("t,POST,'',0.024").unwrap()[2].1, "");
        assert_eq!(r("t,POST,''',0.024"), None);
        assert_eq!(r("t,POST,'''',0.024").unwrap()[2].1, "'");
        assert_eq!(r("t,POST,',0.024"), None);
        assert_eq!(r("t,POST,'a,b',1").unwrap()[2].1, "a,b");
    }

    #[test]
    fn quotes_inside_quotes() {
        let o = opts(",", &["a", "b", "c"]);
        let got = run(o.clone(), r#"x,"say ""hi"", ok",z"#).unwrap();
        assert_eq!(got[1].1, r#"say "hi", ok"#);
        assert_eq!(run(o.clone(), r#""""""#).unwrap()[0].1, "\"");
        // A quote inside an unquoted field, or data after the closing quote.
        assert_eq!(run(o.clone(), r#"a"b,c"#), None);
        assert_eq!(run(o.clone(), r#""a"b,c"#), None);
        assert_eq!(run(o, r#""open,c"#), None);
    }

    #[test]
    fn unquoted_values_are_slices_quoted_with_pairs_are_copies() {
        let mut p = DelimiterParser::new(opts(",", &["a", "b", "c"])).unwrap();
        let src = Bytes::from_static(br#"ab,"cd","e""f""#);
        let Outcome::Parsed(f) = p.parse(&src) else {
            panic!()
        };
        assert_eq!(f[0].value.as_span(), Some(0..2));
        assert_eq!(f[1].value.as_span(), Some(4..6));
        assert_eq!(f[2].value.as_span(), None);
        assert_eq!(f[2].value.resolve(&src), b"e\"f");
    }

    #[test]
    fn separators() {
        assert_eq!(
            run(opts("@@", &["a", "b", "c"]), "1@@2@@@3"),
            kv(&[("a", "1"), ("b", "2"), ("c", "@3")])
        );
        // Quotes are data with a multi-byte separator.
        assert_eq!(
            run(opts("||", &["a", "b"]), r#""x||y"||z"#),
            kv(&[("a", "\"x"), ("b", "y\""), ("__column2__", "z")])
        );
        assert_eq!(
            run(opts("\\t", &["a", "b"]), "1\t2"),
            kv(&[("a", "1"), ("b", "2")])
        );
        assert_eq!(
            run(opts("丨", &["a", "b"]), "中丨文"),
            kv(&[("a", "中"), ("b", "文")])
        );
        // Quote equal to the separator: no quoting.
        let mut o = opts("'", &["a", "b"]);
        o.quote = "'".into();
        assert_eq!(run(o, "x'y"), kv(&[("a", "x"), ("b", "y")]));
    }

    #[test]
    fn build_errors_name_the_option() {
        let e = DelimiterParser::new(opts("", &["a"])).unwrap_err();
        assert_eq!(e.to_string(), "Separator: must not be empty");
        let mut o = opts(",", &["a"]);
        o.quote = "ab".into();
        assert!(DelimiterParser::new(o)
            .unwrap_err()
            .to_string()
            .starts_with("Quote: "));
        let e = DelimiterParser::new(opts(",", &[])).unwrap_err();
        assert!(e.to_string().starts_with("Keys: "));
        let e = "squash".parse::<Overflow>().unwrap_err();
        assert!(e.to_string().starts_with("OverflowedFieldsTreatment: "));
        assert_eq!("keep".parse::<Overflow>(), Ok(Overflow::Keep));
        // Empty quote means the default.
        let mut o = opts(",", &["a", "b"]);
        o.quote = String::new();
        assert_eq!(run(o, r#""x,y",z"#).unwrap()[0].1, "x,y");
    }

    #[test]
    fn overflow_extend_keep_discard() {
        let k = ["a", "b", "c"];
        let line = "123@@456@@1@@2@@3";
        assert_eq!(
            run(opts("@@", &k), line),
            kv(&[
                ("a", "123"),
                ("b", "456"),
                ("c", "1"),
                ("__column3__", "2"),
                ("__column4__", "3")
            ])
        );
        let mut o = opts("@@", &k);
        o.overflowed_fields_treatment = Overflow::Keep;
        assert_eq!(
            run(o, line),
            kv(&[
                ("a", "123"),
                ("b", "456"),
                ("c", "1"),
                ("__column3__", "@@2@@3")
            ])
        );
        let mut o = opts("@@", &["a", "_", "c"]);
        o.overflowed_fields_treatment = Overflow::Discard;
        assert_eq!(run(o, line), kv(&[("a", "123"), ("c", "1")]));
        // Quoted mode: keep joins the unquoted extra columns.
        let mut o = opts(",", &["a"]);
        o.overflowed_fields_treatment = Overflow::Keep;
        assert_eq!(
            run(o.clone(), r#"1,2,"x""y""#),
            kv(&[("a", "1"), ("__column1__", r#",2,x"y"#)])
        );
        assert_eq!(run(o, "1,2,"), kv(&[("a", "1"), ("__column1__", ",2,")]));
    }

    #[test]
    fn allowing_shortened_fields() {
        assert_eq!(
            run(opts(",", &["a", "b", "c"]), "1,2"),
            kv(&[("a", "1"), ("b", "2")])
        );
        let mut o = opts(",", &["a", "b", "c"]);
        o.allowing_shortened_fields = false;
        assert_eq!(run(o.clone(), "1,2"), None);
        assert!(run(o, "1,2,3").is_some());
    }

    #[test]
    fn crlf_and_spaces_are_trimmed() {
        assert_eq!(
            run(opts(",", &["a", "b"]), "  1,2 \r"),
            kv(&[("a", "1"), ("b", "2")])
        );
        assert_eq!(
            run(opts(",", &["a", "b"]), "1,\"x\"\r"),
            kv(&[("a", "1"), ("b", "x")])
        );
    }

    #[test]
    fn empty_fields_and_blank_source() {
        assert_eq!(
            run(opts(",", &["a", "b", "c"]), ",,"),
            kv(&[("a", ""), ("b", ""), ("c", "")])
        );
        let mut o = opts(",", &["a"]);
        o.source.keep_source_on_fail = false;
        let mut p = DelimiterParser::new(o).unwrap();
        for line in ["", "  \r"] {
            let mut e = ev(line);
            assert!(p.parse_event(&mut e), "blank lines are never dropped");
            assert_eq!(e, ev(line));
        }
        assert_eq!(p.stats().failed, 2);
    }

    #[test]
    fn unicode() {
        assert_eq!(
            run(opts(",", &["a", "b"]), "héllo,\"世,界\""),
            kv(&[("a", "héllo"), ("b", "世,界")])
        );
    }

    #[test]
    fn one_mib_field() {
        let big = "y".repeat(1 << 20);
        let got = run(opts(",", &["a", "b", "c"]), &format!("a,{big},\"{big}\"")).unwrap();
        assert_eq!(got[1].1.len(), 1 << 20);
        assert_eq!(got[2].1.len(), 1 << 20);
    }

    #[test]
    fn process_batch_counts_and_drops() {
        let mut o = opts(",", &["a", "b"]);
        o.allowing_shortened_fields = false;
        o.source.keep_source_on_fail = false;
        let mut p = DelimiterParser::new(o).unwrap();
        assert_eq!(p.name(), NAME);
        let mut b = crate::process::test_batch(vec![ev("1,2"), ev("bad"), ev("3,4")]);
        p.process(&mut b);
        assert_eq!(b.events.len(), 2);
        assert_eq!(b.events[1].field("a"), Some(&b"3"[..]));
        assert_eq!(b.events[1].field(CONTENT), None);
        let st = p.stats();
        assert_eq!((st.processed, st.failed, st.dropped), (3, 1, 1));
    }

    /// A straightforward character-by-character reading of LoongCollector's
    /// delimiter state machine (one-byte separator, quotes on), with
    /// `extend` overflow.
    fn reference(line: &[u8], sep: u8, q: u8) -> Option<Vec<Vec<u8>>> {
        #[derive(PartialEq)]
        enum St {
            Initial,
            Data,
            Quote,
            DoubleQuote,
        }
        let mut end = line.len();
        while end > 0 && (line[end - 1] == b' ' || line[end - 1] == b'\r') {
            end -= 1;
        }
        let mut begin = 0;
        while begin < end && line[begin] == b' ' {
            begin += 1;
        }
        if begin >= end {
            return None;
        }
        let mut cols = Vec::new();
        let mut field = Vec::new();
        let mut st = St::Initial;
        for &c in &line[begin..end] {
            st = if c == sep {
                match st {
                    St::Quote => {
                        field.push(c);
                        St::Quote
                    }
                    _ => {
                        cols.push(std::mem::take(&mut field));
                        St::Initial
                    }
                }
            } else if c == q {
                match st {
                    St::Initial => St::Quote,
                    St::Quote => St::DoubleQuote,
                    St::DoubleQuote => {
                        field.push(c);
                        St::Quote
                    }
                    St::Data => return None,
                }
            } else {
                match st {
                    St::DoubleQuote => return None,
                    _ => {
                        field.push(c);
                        if st == St::Initial {
                            St::Data
                        } else {
                            st
                        }
                    }
                }
            };
        }
        if st == St::Quote {
            return None;
        }
        cols.push(field);
        Some(cols)
    }

    proptest! {
        #[test]
        fn agrees_with_reference(line in proptest::collection::vec(
            prop_oneof![Just(b','), Just(b'"'), Just(b' '), Just(b'\r'), Just(b'a'), Just(0xe4u8), Just(b'b')],
            0..40,
        )) {
            let mut p = DelimiterParser::new(opts(",", &["k0", "k1", "k2"])).unwrap();
            let src = Bytes::from(line.clone());
            let got = p.parse(&src);
            match reference(&line, b',', b'"') {
                None => prop_assert_eq!(got, Outcome::Failed),
                Some(cols) => {
                    let Outcome::Parsed(f) = got else {
                        return Err(TestCaseError::fail("reference parsed, parser did not"));
                    };
                    prop_assert_eq!(f.len(), cols.len());
                    for (i, (field, col)) in f.iter().zip(&cols).enumerate() {
                        let want = if i < 3 { format!("k{i}") } else { format!("__column{i}__") };
                        prop_assert_eq!(&*field.key, want.as_str());
                        prop_assert_eq!(field.value.resolve(&src), &col[..]);
                    }
                }
            }
        }

        #[test]
        fn multi_byte_separator_is_plain_split(line in "[ab@\" ]{0,30}") {
            let mut p = DelimiterParser::new(opts("@@", &["k"])).unwrap();
            let trimmed = line.trim_end_matches([' ', '\r']).trim_start_matches(' ');
            let got = p.parse(line.as_bytes());
            if trimmed.is_empty() {
                prop_assert_eq!(got, Outcome::Failed);
            } else {
                let Outcome::Parsed(f) = got else {
                    return Err(TestCaseError::fail("no parse"));
                };
                let want: Vec<&str> = trimmed.split("@@").collect();
                let have: Vec<&[u8]> = f.iter().map(|f| f.value.resolve(line.as_bytes())).collect();
                prop_assert_eq!(have, want.iter().map(|s| s.as_bytes()).collect::<Vec<_>>());
            }
        }
    }
}
