//! `processor_split_char`: LoongCollector's Go single-byte splitter.
//!
//! The field `SourceKey` is cut at each `SplitSep` byte; piece *i* becomes
//! field `SplitKeys[i]`. With `QuoteFlag`, a piece that starts with `Quote`
//! runs to the next quote that is followed by `SplitSep` or the end, `""`
//! inside standing for one quote (`a,"b,""c"""` gives `a` and `b,"c"`).
//! Bytes left after the last key go to `_split_preserve_` when
//! `PreserveOthers` (default true), else are dropped; fewer pieces than keys
//! fill the first keys only (a warning with `NoMatchError`).
//!
//! A quote that is closed by neither `SplitSep` nor the end (`"a"b`) is a
//! parse failure: the pieces before it are kept, and so is the source field
//! with `KeepSourceIfParseError` (default true). Otherwise the source field
//! is removed unless `KeepSource`. Events are never dropped.
//!
//! These are the Go plugin's rules, byte for byte, including its quirks: an
//! unclosed quote at the end of the value is given, whole and with its
//! opening quote, to the key after the one it started.

use std::sync::Arc;

use bytes::Bytes;

use crate::event::{Event, Field, FieldKey, FieldValue};
use crate::process::regex_go::worth_logging;
use crate::process::{Outcome, ParserStats, SourceOptions, CONTENT};
use crate::{EventBatch, Parser};

/// The LoongCollector type string.
pub const NAME: &str = "processor_split_char";

/// The field that takes what is left after the last key.
pub const PRESERVE_KEY: &str = "_split_preserve_";

/// Options of `processor_split_char`.
///
/// Non-exhaustive: start from [`SplitCharOptions::default`] (the Go
/// plugin's defaults) and set fields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SplitCharOptions {
    /// `SourceKey` (default `content`).
    pub source_key: String,
    /// `SplitSep`: exactly one byte (default `\n`).
    pub split_sep: String,
    /// `SplitKeys`: the names of the pieces, in order.
    pub split_keys: Vec<String>,
    /// `QuoteFlag` (default false): honour `Quote`.
    pub quote_flag: bool,
    /// `Quote`: its first byte quotes pieces (with `QuoteFlag`).
    pub quote: String,
    /// `PreserveOthers` (default true): keep the rest in `_split_preserve_`.
    pub preserve_others: bool,
    /// `KeepSource` (default false).
    pub keep_source: bool,
    /// `KeepSourceIfParseError` (default true).
    pub keep_source_if_parse_error: bool,
    /// `NoKeyError` (default false): warn when the field is missing.
    pub no_key_error: bool,
    /// `NoMatchError` (default false): warn on fewer pieces than keys.
    pub no_match_error: bool,
}

impl Default for SplitCharOptions {
    fn default() -> Self {
        SplitCharOptions {
            source_key: CONTENT.to_owned(),
            split_sep: "\n".to_owned(),
            split_keys: Vec::new(),
            quote_flag: false,
            quote: String::new(),
            preserve_others: true,
            keep_source: false,
            keep_source_if_parse_error: true,
            no_key_error: false,
            no_match_error: false,
        }
    }
}

/// Why a `processor_split_char` could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SplitCharError {
    /// `SplitSep` is not exactly one byte.
    #[error("SplitSep: must be exactly one byte, found {0:?}")]
    Separator(String),
}

/// One value of a split: a span of the source, or (for a quoted piece with
/// doubled quotes) new bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// `source[start..end]`.
    Span(usize, usize),
    /// Unquoted bytes.
    Owned(Vec<u8>),
}

/// What [`split`] gives: (key index, or `None` for `_split_preserve_`,
/// value) in order, whether the split succeeded, and how many keys got a
/// value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// The pieces, in the order the Go plugin appends them.
    pub pieces: Vec<(Option<usize>, Piece)>,
    /// False on a quote closed by neither the separator nor the end.
    pub ok: bool,
    /// Keys filled.
    pub filled: usize,
}

/// Splits `value` with separator `sep`, optional quote byte, `nkeys` keys,
/// as the Go plugin does.
pub fn split(value: &[u8], sep: u8, quote: Option<u8>, nkeys: usize, preserve: bool) -> Split {
    let mut pieces = Vec::new();
    let n = value.len();
    if nkeys == 0 {
        if preserve {
            pieces.push((None, Piece::Span(0, n)));
        }
        return Split {
            pieces,
            ok: true,
            filled: 0,
        };
    }
    let mut key = 0;
    let mut last = 0;
    let mut i = 0;
    if let Some(q) = quote {
        while key < nkeys && i < n {
            if value[i] == sep {
                pieces.push((Some(key), Piece::Span(i, i)));
                last = i + 1;
                i += 1;
            } else if value[i] == q {
                i += 1;
                let mut unquoted = Vec::new();
                while i < n {
                    if value[i] == q {
                        if i == n - 1 || value[i + 1] == sep {
                            i += 1;
                            pieces.push((Some(key), Piece::Owned(std::mem::take(&mut unquoted))));
                            last = i + 1;
                            i += 1;
                            break;
                        }
                        if value[i + 1] == q {
                            i += 1;
                            unquoted.push(value[i]);
                        } else {
                            return Split {
                                pieces,
                                ok: false,
                                filled: key,
                            };
                        }
                    } else {
                        unquoted.push(value[i]);
                    }
                    i += 1;
                }
            } else if let Some(next) = memchr::memchr(sep, &value[i..]) {
                pieces.push((Some(key), Piece::Span(i, i + next)));
                last = i + next + 1;
                i = last;
            } else {
                break;
            }
            key += 1;
        }
        if key >= nkeys && last < n && preserve {
            pieces.push((None, Piece::Span(last, n)));
            last = n;
        }
    } else {
        for (i, &b) in value.iter().enumerate() {
            if b == sep {
                pieces.push((Some(key), Piece::Span(last, i)));
                key += 1;
                last = i + 1;
                if key >= nkeys && i != n - 1 {
                    if preserve {
                        pieces.push((None, Piece::Span(i + 1, n)));
                    }
                    break;
                }
            }
        }
    }
    if key < nkeys && last < n {
        pieces.push((Some(key), Piece::Span(last, n)));
        key += 1;
    }
    Split {
        pieces,
        ok: true,
        filled: key,
    }
}

/// The `processor_split_char` step.
#[derive(Debug)]
pub struct SplitCharParser {
    options: SplitCharOptions,
    sep: u8,
    quote: Option<u8>,
    keys: Vec<FieldKey>,
    preserve_key: FieldKey,
    /// Source handling after a success, and after a failure.
    on_ok: SourceOptions,
    on_fail: SourceOptions,
    stats: ParserStats,
    no_key: u64,
    short: u64,
}

impl SplitCharParser {
    /// Checks the options.
    pub fn new(options: SplitCharOptions) -> Result<Self, SplitCharError> {
        let &[sep] = options.split_sep.as_bytes() else {
            return Err(SplitCharError::Separator(options.split_sep.clone()));
        };
        // As in Go: with QuoteFlag and no Quote, the quote byte is 0.
        let quote = options
            .quote_flag
            .then(|| options.quote.as_bytes().first().copied().unwrap_or(0));
        let source = |keep: bool| SourceOptions {
            source_key: Arc::from(options.source_key.as_str()),
            keep_source_on_success: keep,
            ..SourceOptions::default()
        };
        Ok(SplitCharParser {
            sep,
            quote,
            keys: options
                .split_keys
                .iter()
                .map(|k| FieldKey::interned(k))
                .collect(),
            preserve_key: FieldKey::interned(PRESERVE_KEY),
            on_ok: source(options.keep_source),
            on_fail: source(options.keep_source || options.keep_source_if_parse_error),
            options,
            stats: ParserStats::default(),
            no_key: 0,
            short: 0,
        })
    }

    /// Splits one event in place (never drops it).
    pub fn parse_event(&mut self, event: &mut Event) {
        let Some(src) = event.field(&self.on_ok.source_key) else {
            self.no_key += 1;
            if self.options.no_key_error && worth_logging(self.no_key) {
                tracing::warn!(
                    "{NAME}: {} event(s) without the field {:?} (SPLIT_FIND_ALARM)",
                    self.no_key,
                    &*self.on_ok.source_key
                );
            }
            return;
        };
        let s = split(
            src,
            self.sep,
            self.quote,
            self.keys.len(),
            self.options.preserve_others,
        );
        if s.ok && s.filled < self.keys.len() {
            self.short += 1;
            if self.options.no_match_error && worth_logging(self.short) {
                tracing::warn!(
                    "{NAME}: {} event(s) with fewer pieces than SplitKeys (SPLIT_LOG_ALARM)",
                    self.short
                );
            }
        }
        let fields = s
            .pieces
            .into_iter()
            .map(|(k, piece)| Field {
                key: match k {
                    Some(i) => self.keys[i].clone(),
                    None => self.preserve_key.clone(),
                },
                value: match piece {
                    Piece::Span(a, b) => FieldValue::span(a, b),
                    Piece::Owned(v) => FieldValue::from(Bytes::from(v)),
                },
            })
            .collect();
        if s.ok {
            self.on_ok
                .apply(event, Outcome::Parsed(fields), &mut self.stats);
        } else {
            self.on_fail
                .apply(event, Outcome::Parsed(fields), &mut self.stats);
            self.stats.failed += 1;
        }
    }
}

impl Parser for SplitCharParser {
    fn name(&self) -> &str {
        NAME
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
    use proptest::prelude::*;

    fn run(o: SplitCharOptions, line: &str) -> (Vec<(String, String)>, ParserStats) {
        let mut p = SplitCharParser::new(o).unwrap();
        let mut e = Event::line(
            Bytes::copy_from_slice(line.as_bytes()),
            0,
            Timestamp::default(),
        );
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

    fn opts(sep: &str, keys: &[&str]) -> SplitCharOptions {
        SplitCharOptions {
            split_sep: sep.into(),
            split_keys: keys.iter().map(|k| k.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn plain_split_preserve_and_short() {
        assert_eq!(
            run(opts("|", &["a", "b"]), "1|2|3|4").0,
            pairs(&[("a", "1"), ("b", "2"), (PRESERVE_KEY, "3|4")])
        );
        let mut o = opts("|", &["a", "b"]);
        o.preserve_others = false;
        assert_eq!(run(o, "1|2|3").0, pairs(&[("a", "1"), ("b", "2")]));
        assert_eq!(
            run(opts("|", &["a", "b", "c"]), "1|2").0,
            pairs(&[("a", "1"), ("b", "2")])
        );
        // A trailing separator ends the last piece; nothing follows.
        assert_eq!(
            run(opts("|", &["a", "b", "c"]), "1|2|").0,
            pairs(&[("a", "1"), ("b", "2")])
        );
        assert_eq!(
            run(opts("|", &["a", "b"]), "1||").0,
            pairs(&[("a", "1"), ("b", "")])
        );
    }

    #[test]
    fn quotes() {
        let mut o = opts(",", &["a", "b", "c"]);
        o.quote_flag = true;
        o.quote = "\"".into();
        assert_eq!(
            run(o.clone(), r#"x,"y,""z""",w"#).0,
            pairs(&[("a", "x"), ("b", r#"y,"z""#), ("c", "w")])
        );
        assert_eq!(
            run(o.clone(), r#",,"q""#).0,
            pairs(&[("a", ""), ("b", ""), ("c", "q")])
        );
        // A quote followed by neither separator nor end: a failure, the
        // source kept (KeepSourceIfParseError), earlier pieces kept too.
        let (got, st) = run(o.clone(), r#"x,"y"z,w"#);
        assert_eq!(got, pairs(&[("a", "x"), (CONTENT, r#"x,"y"z,w"#)]));
        assert_eq!(st.failed, 1);
        // Go's quirk: an unclosed quote at the end goes to the next key.
        assert_eq!(run(o, r#"x,"yz"#).0, pairs(&[("a", "x"), ("c", r#""yz"#)]));
    }

    #[test]
    fn keep_source_and_missing_key() {
        let mut o = opts(" ", &["a"]);
        o.keep_source = true;
        assert_eq!(run(o, "1").0, pairs(&[("a", "1"), (CONTENT, "1")]));
        let mut o = opts(" ", &["a"]);
        o.source_key = "msg".into();
        assert_eq!(run(o, "1 2").0, pairs(&[(CONTENT, "1 2")]));
        assert_eq!(
            SplitCharParser::new(opts("ab", &["a"])).unwrap_err(),
            SplitCharError::Separator("ab".into())
        );
        assert!(SplitCharParser::new(opts("", &["a"])).is_err());
    }

    /// A naive reference without quotes: split at every separator, pair
    /// with keys, the rest joined back.
    fn naive(v: &[u8], sep: u8, nkeys: usize, preserve: bool) -> Vec<(Option<usize>, Vec<u8>)> {
        let mut parts: Vec<&[u8]> = v.split(|&b| b == sep).collect();
        if v.is_empty() {
            parts.clear();
        }
        let mut out = Vec::new();
        for (i, p) in parts.iter().enumerate().take(nkeys) {
            // The last piece after a trailing separator is empty and Go
            // does not emit it.
            if i + 1 == parts.len() && p.is_empty() {
                break;
            }
            out.push((Some(i), p.to_vec()));
        }
        if parts.len() > nkeys && preserve && nkeys > 0 {
            let rest = parts[nkeys..].join(&sep);
            if !rest.is_empty() {
                out.push((None, rest));
            }
        }
        if nkeys == 0 && preserve {
            out.push((None, v.to_vec()));
        }
        out
    }

    proptest! {
        #[test]
        fn agrees_with_a_naive_split(v in "[ab|]{0,12}", nkeys in 0..5usize, preserve in any::<bool>()) {
            let s = split(v.as_bytes(), b'|', None, nkeys, preserve);
            let got: Vec<(Option<usize>, Vec<u8>)> = s
                .pieces
                .iter()
                .map(|(k, p)| match p {
                    Piece::Span(a, b) => (*k, v.as_bytes()[*a..*b].to_vec()),
                    Piece::Owned(o) => (*k, o.clone()),
                })
                .collect();
            prop_assert_eq!(got, naive(v.as_bytes(), b'|', nkeys, preserve));
        }

        #[test]
        fn quoted_pieces_round_trip(vals in proptest::collection::vec("[ab,\"]{0,5}", 1..5)) {
            // Quote every value (doubling quotes): the split gives them back.
            let line = vals
                .iter()
                .map(|v| format!("\"{}\"", v.replace('"', "\"\"")))
                .collect::<Vec<_>>()
                .join(",");
            let s = split(line.as_bytes(), b',', Some(b'"'), vals.len(), true);
            prop_assert!(s.ok);
            let got: Vec<Vec<u8>> = s
                .pieces
                .iter()
                .map(|(_, p)| match p {
                    Piece::Span(a, b) => line.as_bytes()[*a..*b].to_vec(),
                    Piece::Owned(o) => o.clone(),
                })
                .collect();
            let want: Vec<Vec<u8>> = vals.iter().map(|v| v.as_bytes().to_vec()).collect();
            prop_assert_eq!(got, want);
        }
    }
}
